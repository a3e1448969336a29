//! The JSON credential document: `AccessKeyId`, `SecretAccessKey`, a session
//! token and an optional `Expiration`, as the container and instance
//! metadata endpoints answer it and a `credential_process` prints it. The
//! one parser of it; each source adds its own checks (`Code` for metadata,
//! `Version: 1` for a process).
//!
//! Pure. Errors never quote the document, which holds the secret. Must not
//! import the chain or any source.

use serde_json::Value;

use super::keys::Credentials;
use crate::secret::Secret;

/// A parsed credential document and who wrote it, for messages.
pub(super) struct CredentialDocument {
    value: Value,
    /// `the answer` or `its output`: the subject of every error text.
    writer: &'static str,
}

impl CredentialDocument {
    /// Parses `text`; `writer` starts the error texts (`the answer is not JSON`).
    pub(super) fn parse(
        text: &str,
        writer: &'static str,
    ) -> std::result::Result<CredentialDocument, String> {
        let value = serde_json::from_str(text).map_err(|e| {
            format!(
                "{writer} is not JSON (error at line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        Ok(CredentialDocument { value, writer })
    }

    /// A non-empty string member.
    pub(super) fn text(&self, name: &str) -> Option<&str> {
        self.value
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    }

    /// A whole-number member.
    pub(super) fn number(&self, name: &str) -> Option<u64> {
        self.value.get(name).and_then(Value::as_u64)
    }

    /// The credentials it holds, the session token read from `token_member`
    /// (`Token` from metadata endpoints, `SessionToken` from a process).
    pub(super) fn credentials(
        &self,
        token_member: &str,
        source: String,
    ) -> std::result::Result<Credentials, String> {
        let writer = self.writer;
        let access_key_id = self
            .text("AccessKeyId")
            .ok_or_else(|| format!("{writer} has no AccessKeyId"))?;
        let secret = self
            .text("SecretAccessKey")
            .ok_or_else(|| format!("{writer} has no SecretAccessKey"))?;
        let expiry = match self.text("Expiration") {
            Some(text) => Some(
                crate::time::parse_rfc3339(text)
                    .ok_or_else(|| format!("{writer}'s Expiration is not an RFC 3339 time"))?,
            ),
            None => None,
        };
        Ok(Credentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: self.text(token_member).map(Secret::new),
            expiry,
            source,
        })
    }
}

/// Reads the answer of the container and instance metadata endpoints:
/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`, plus `Code`
/// from IMDS, which must be `Success` when present.
pub(super) fn metadata_answer(
    body: &str,
    source: String,
) -> std::result::Result<Credentials, String> {
    let document = CredentialDocument::parse(body, "the answer")?;
    if let Some(code) = document.text("Code")
        && code != "Success"
    {
        let shown = if code.chars().all(|c| c.is_ascii_alphanumeric()) && code.len() <= 64 {
            code
        } else {
            "(not shown)"
        };
        return Err(format!("the answer reports failure, Code {shown}"));
    }
    document.credentials("Token", source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";

    #[test]
    fn metadata_answers_are_read_and_errors_never_quote_them() {
        let c = metadata_answer(
            &format!(
                r#"{{"Code":"Success","AccessKeyId":"AKIAMETADATA0001","SecretAccessKey":"{SECRET}","Token":"tok","Expiration":"2026-11-28T18:00:00Z"}}"#
            ),
            "test".into(),
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIAMETADATA0001");
        assert_eq!(c.session_token.unwrap().expose(), "tok");
        assert!(c.expiry.is_some());
        assert_eq!(c.source, "test");
        for (text, expected) in [
            (
                format!("{{{SECRET}"),
                "the answer is not JSON (error at line 1",
            ),
            (
                format!(r#"{{"Code":"Expired","SecretAccessKey":"{SECRET}"}}"#),
                "the answer reports failure, Code Expired",
            ),
            (format!(r#"{{"Code":"{SECRET} x"}}"#), "Code (not shown)"),
            (
                format!(r#"{{"SecretAccessKey":"{SECRET}"}}"#),
                "the answer has no AccessKeyId",
            ),
            (
                r#"{"AccessKeyId":"A","SecretAccessKey":""}"#.to_string(),
                "the answer has no SecretAccessKey",
            ),
            (
                format!(r#"{{"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"{SECRET}"}}"#),
                "the answer's Expiration is not an RFC 3339 time",
            ),
        ] {
            let e = metadata_answer(&text, String::new()).unwrap_err();
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains(SECRET), "{e}");
        }
    }

    #[test]
    fn the_token_member_is_the_callers() {
        let text = r#"{"AccessKeyId":"A","SecretAccessKey":"s","Token":"t1","SessionToken":"t2"}"#;
        let document = CredentialDocument::parse(text, "its output").unwrap();
        let token = |member| {
            document
                .credentials(member, String::new())
                .unwrap()
                .session_token
                .unwrap()
                .expose()
                .to_string()
        };
        assert_eq!(
            (token("Token"), token("SessionToken")),
            ("t1".into(), "t2".into())
        );
        assert_eq!(document.number("Version"), None);
    }
}
