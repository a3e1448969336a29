//! Keys written in the sqs-archive profile file: the chain's second step.
//! Pure: the settings layer hands them in as [`ConfigKeys`]; this module
//! must not import `config` or anything above `aws`.

use super::keys::Credentials;
use super::provide::Lookup;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Keys written in the profile's config file, if any.
#[derive(Clone, Debug, Default)]
pub struct ConfigKeys {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Names the file, for messages.
    pub origin: String,
}

pub(super) fn from_config_keys(keys: &ConfigKeys) -> Result<Lookup> {
    let label = if keys.origin.is_empty() {
        "profile config".to_string()
    } else {
        format!("profile config {}", keys.origin)
    };
    let id = keys.access_key_id.as_deref().filter(|id| !id.is_empty());
    let secret = keys.secret_access_key.as_ref().filter(|s| !s.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Lookup::Found(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.clone(),
            session_token: keys.session_token.clone().filter(|t| !t.is_empty()),
            expiry: None,
            source: label,
        })),
        (Some(_), None) => Err(Error::Credentials(format!(
            "{label}: the profile has aws_access_key_id but no aws_secret_access_key; both are needed"
        ))),
        (None, Some(_)) => Err(Error::Credentials(format!(
            "{label}: the profile has aws_secret_access_key but no aws_access_key_id; both are needed"
        ))),
        (None, None) => Ok(Lookup::NotFound(format!("{label} (no keys)"))),
    }
}
