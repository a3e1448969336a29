//! AWS credentials and where they come from.
//!
//! INTERFACE STUB: the full chain (shared files, container, IMDSv2, refresh)
//! is being written; the types below are the contract the rest of the crate uses.

use std::time::SystemTime;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// A set of AWS credentials. `Debug` never shows the secret or the token.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// When temporary credentials stop working.
    pub expiry: Option<SystemTime>,
    /// Which source supplied them, e.g. `environment`, `profile config`, `imds`.
    pub source: String,
}

/// Something that hands out credentials, refreshing them when needed.
pub trait ProvideCredentials: Send + Sync + std::fmt::Debug {
    /// Current, unexpired credentials.
    fn credentials(&self) -> Result<Credentials>;
}

/// Keys written in the profile's config file, if any.
#[derive(Clone, Debug, Default)]
pub struct ConfigKeys {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Names the file, for messages.
    pub origin: String,
}

/// The standard chain: environment, then keys in the profile config.
#[derive(Debug)]
pub struct CredentialChain {
    env: Env,
    config: ConfigKeys,
}

impl CredentialChain {
    pub fn new(env: Env, config: ConfigKeys) -> CredentialChain {
        CredentialChain { env, config }
    }
}

impl ProvideCredentials for CredentialChain {
    fn credentials(&self) -> Result<Credentials> {
        if let (Some(id), Some(secret)) = (
            self.env.get("AWS_ACCESS_KEY_ID"),
            self.env.get("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Credentials {
                access_key_id: id.to_string(),
                secret_access_key: Secret::new(secret),
                session_token: self.env.get("AWS_SESSION_TOKEN").map(Secret::new),
                expiry: None,
                source: "environment".into(),
            });
        }
        if let (Some(id), Some(secret)) = (&self.config.access_key_id, &self.config.secret_access_key)
        {
            return Ok(Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: self.config.session_token.clone(),
                expiry: None,
                source: format!("profile config {}", self.config.origin),
            });
        }
        Err(Error::Credentials(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or aws_access_key_id and aws_secret_access_key in the profile".into(),
        ))
    }
}
