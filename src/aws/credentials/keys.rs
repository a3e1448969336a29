//! The [`Credentials`] value: keys, token, expiry and where they came from;
//! masking for messages and the freshness rules of the cache.
//!
//! A plain value: it does no I/O and must not import the chain, its sources
//! or anything above `aws`.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::aws::sign::SigningKeys;
use crate::secret::Secret;

/// Temporary credentials are replaced this long before they expire, so a
/// request signed just before the switch still reaches AWS in time.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// A set of AWS credentials. `Debug` masks the key id and never shows the secret or the token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// When temporary credentials stop working.
    pub expiry: Option<SystemTime>,
    /// Which source supplied them, e.g. `environment`,
    /// `shared credentials file /root/.aws/credentials (profile default)`,
    /// `instance metadata (role NAME)`.
    pub source: String,
}

impl Credentials {
    /// The access key id with its middle hidden (`AKIA…WXYZ`), for messages.
    pub fn masked_access_key_id(&self) -> String {
        mask_access_key_id(&self.access_key_id)
    }

    /// What [`crate::aws::sign`] needs to sign a request with these keys.
    pub fn signing_keys(&self) -> SigningKeys<'_> {
        SigningKeys {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            session_token: self.session_token.as_ref().map(Secret::expose),
        }
    }

    /// One line for a person: which key, from where, until when. Never the secret.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "access key {} from {}",
            self.masked_access_key_id(),
            self.source
        );
        if self.session_token.is_some() {
            text.push_str(", with a session token");
        }
        if let Some(expiry) = self.expiry {
            text.push_str(", expires ");
            text.push_str(&crate::time::format_rfc3339(expiry));
        }
        text
    }

    /// True once `now` has reached the expiry (never for long-lived keys).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expiry.is_some_and(|expiry| now >= expiry)
    }

    /// True while the credentials can be handed out without asking the chain:
    /// long-lived keys always, temporary ones until [`REFRESH_BEFORE_EXPIRY`]
    /// before they expire.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        match self.expiry {
            None => true,
            Some(expiry) => expiry
                .duration_since(now)
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY),
        }
    }
}

impl fmt::Debug for Credentials {
    // Written by hand so the key id is masked too; the secrets are `Secret`s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.masked_access_key_id())
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiry", &self.expiry.map(crate::time::format_rfc3339))
            .field("source", &self.source)
            .finish()
    }
}

/// `AKIA…WXYZ`; ids too short to hide anything are masked entirely.
fn mask_access_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_id_is_masked() {
        assert_eq!(mask_access_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_access_key_id("AKIDSHORT"), "…");
        assert_eq!(mask_access_key_id(""), "…");
    }

    #[test]
    fn signing_keys_carry_the_keys_and_debug_hides_them() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("the-secret"),
            session_token: Some(Secret::new("the-token")),
            expiry: None,
            source: "test".into(),
        };
        let keys = credentials.signing_keys();
        assert_eq!(keys.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(keys.secret_access_key, "the-secret");
        assert_eq!(keys.session_token, Some("the-token"));
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("the-secret") && !shown.contains("the-token"),
            "{shown}"
        );
    }
}
