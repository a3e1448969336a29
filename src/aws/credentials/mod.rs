//! AWS credentials and where they come from: the value ([`keys`]), the
//! contract service clients use ([`provide`]), the chain with its cache
//! ([`chain`]), and one module per source (environment [`variables`],
//! [`config_keys`], shared-file [`profile`]s, [`process`], [`sts`],
//! [`container`], [`imds`]), with the JSON credential [`document`] they
//! share. Metadata and STS calls go through [`crate::aws::http`].
//!
//! This file only declares the modules and re-exports the public names.
//! Children import their siblings, never this file; nothing here imports
//! `config`, `sqs` or anything above `aws`. Secrets are wrapped in
//! [`crate::secret::Secret`] as soon as they are read, and no error or log
//! line quotes a file line, a process's output or a response body that may
//! hold a key.

pub mod chain;
pub mod config_keys;
pub mod container;
mod document;
pub mod imds;
pub mod keys;
pub mod process;
pub mod profile;
pub mod provide;
pub mod sts;
pub mod variables;

#[cfg(test)]
pub(crate) mod test_support;

pub use self::chain::{CredentialChain, Step};
pub use self::config_keys::ConfigKeys;
pub use self::container::ECS_CONTAINER_ENDPOINT;
pub use self::imds::IMDS_ENDPOINT;
pub use self::keys::{Credentials, REFRESH_BEFORE_EXPIRY};
pub use self::provide::ProvideCredentials;
