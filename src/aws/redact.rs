//! Secrets masked in foreign text: a server's error body, a process's
//! stderr, a library's error line. Two nets: every secret value in use
//! (secret key, session token, web-identity token, container authorization
//! token) is replaced wherever it appears, and the value after a name that
//! announces a secret (`x-amz-security-token:`, `aws_secret_access_key =`,
//! `"SessionToken": "…"`, `Authorization:`) is replaced even when the value
//! is one this process never held.
//!
//! Pure: imports nothing of the crate.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Values shorter than this are not searched for: masking every `a` of a
/// test secret would garble the text and protect nothing.
const MIN_SECRET_CHARS: usize = 8;

/// Names whose value is a secret, compared case-insensitively, with `-`
/// and `_` alike.
const SECRET_NAMES: &[&str] = &[
    "x-amz-security-token",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "secret_access_key",
    "session_token",
    "secretaccesskey",
    "sessiontoken",
    "authorization",
    "token",
    "webidentitytoken",
    "aws_container_authorization_token",
];

/// `text` with every value of `secrets` and every value announced by a
/// secret's name replaced by [`MASK`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut shown = text.to_string();
    for secret in secrets {
        if secret.len() >= MIN_SECRET_CHARS {
            shown = shown.replace(secret, MASK);
        }
    }
    mask_named_values(&shown)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_value_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '<' | '&' | ';' | '}' | ']' | ')'))
}

/// Replaces the value after `NAME:`, `NAME=`, `NAME = `, `"NAME": "` for
/// the names in [`SECRET_NAMES`]; `Authorization: AWS4-HMAC-SHA256 …`
/// keeps its scheme word and loses the rest of the line.
fn mask_named_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_name_char) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        out.push_str(name);
        rest = after;
        let normal = name.to_ascii_lowercase().replace('-', "_");
        if !SECRET_NAMES.iter().any(|n| n.replace('-', "_") == normal) {
            continue;
        }
        // Separator: optional closing quote, spaces, `:` or `=`, spaces, optional quote.
        let sep_len = separator_len(rest);
        if sep_len == 0 {
            continue;
        }
        out.push_str(&rest[..sep_len]);
        rest = &rest[sep_len..];
        let authorization = normal == "authorization";
        let value_end = if authorization {
            rest.find(['\n', '\r', '"', '<']).unwrap_or(rest.len())
        } else {
            rest.find(|c| !is_value_char(c)).unwrap_or(rest.len())
        };
        if value_end > 0 {
            out.push_str(MASK);
            rest = &rest[value_end..];
        }
    }
    out.push_str(rest);
    out
}

fn separator_len(text: &str) -> usize {
    let mut chars = text.char_indices().peekable();
    let mut seen_separator = false;
    let mut len = 0;
    while let Some(&(i, c)) = chars.peek() {
        match c {
            '"' | '\'' if !seen_separator => {}
            ':' | '=' if !seen_separator => seen_separator = true,
            ' ' | '\t' => {}
            '"' | '\'' => {
                len = i + 1;
                break;
            }
            _ => {
                len = i;
                break;
            }
        }
        chars.next();
        len = i + c.len_utf8();
    }
    if seen_separator { len } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_named_values_are_masked() {
        let echoed = "<Error><Message>bad request: x-amz-security-token: IQoJb3JpZ2luEXAMPLETOKEN\n\
                      authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc\n\
                      host: sqs</Message></Error>";
        let shown = redact(echoed, &["IQoJb3JpZ2luEXAMPLETOKEN"]);
        assert!(!shown.contains("IQoJb3JpZ2luEXAMPLETOKEN"), "{shown}");
        assert!(!shown.contains("Signature=abc"), "{shown}");
        assert!(shown.contains("x-amz-security-token: ***"), "{shown}");
        assert!(shown.contains("host: sqs"), "{shown}");

        let stderr = "config: aws_secret_access_key = wJalrXUtnFEMI/K7MDENG and more";
        assert_eq!(
            redact(stderr, &[]),
            "config: aws_secret_access_key = *** and more"
        );
        let json =
            r#"{"AccessKeyId": "AKIA1", "SecretAccessKey": "abc/def+", "SessionToken":"tok"}"#;
        let shown = redact(json, &[]);
        assert!(
            !shown.contains("abc/def+") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("AKIA1"), "{shown}");
        // A secret value anywhere, even without a name.
        assert_eq!(
            redact("echo s3cr3t-value-1 back", &["s3cr3t-value-1", "short"]),
            "echo *** back"
        );
        // Words that only contain a name are left alone.
        assert_eq!(redact("tokens are fine", &[]), "tokens are fine");
    }
}
