//! [`ProvideCredentials`]: what a service client asks for credentials, and
//! [`Lookup`], what one source of the chain found.
//!
//! Only the contract: it must not import the chain or any source.

use super::keys::Credentials;
use crate::error::Result;

/// Something that hands out credentials, refreshing them when needed.
pub trait ProvideCredentials: Send + Sync + std::fmt::Debug {
    /// Current, unexpired credentials.
    fn credentials(&self) -> Result<Credentials>;
}

/// Fixed credentials supply themselves (tests, benchmarks, callers that
/// resolved them already).
impl ProvideCredentials for Credentials {
    fn credentials(&self) -> Result<Credentials> {
        Ok(self.clone())
    }
}

/// What one source of the chain found.
pub(crate) enum Lookup {
    Found(Credentials),
    /// Nothing configured here; the text says why, for the final error.
    NotFound(String),
}
