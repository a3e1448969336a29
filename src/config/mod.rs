//! Configuration: profile files, `.env`, environment variables, flags.
//!
//! Precedence, lowest first: built-in defaults, the profile file
//! (`--profile NAME` or `--config FILE`), the environment (a `.env` file
//! fills in only variables the process does not already have), then
//! command-line flags. Relative paths are relative to the working directory,
//! as in the prototype; run the tools from the install directory.
//!
//! `--profile NAME` looks for `NAME.json` in `$SQS_ARCHIVE_CONFIG_DIR`, then
//! `./config`, then `/etc/sqs-archive` ([`search_dirs`]); the first file found
//! is read, and when there is none the error lists every place searched.
//!
//! Every key is declared once, in the [`keys!`] table below: its name, the
//! variables that override it, its type, range and default, and a line of
//! help. That table drives parsing ([`Settings::resolve`] reads each key
//! through its [`K`] identifier, so a misspelt key does not compile), the
//! the configuration reference ([`reference_table`], checked against
//! `docs/configuration.md` by `tests/it/docs.rs`) and the man pages.
//! Loading is a pure function of the file text, an [`Env`] and the flags;
//! every configuration problem is an [`Error::Config`] (exit 78).

mod keys;
mod layers;
mod settings;
mod sources;
mod target;

pub use crate::sqs::Protocol;
pub use keys::{K, KEYS, Key, Kind, RETIRED_VARIABLES, reference_table};
pub use layers::{Given, Provenance};
pub use settings::{
    Backend, QueueRole, S3Location, S3Settings, SYSTEM_CONFIG_DIR, Settings, missing,
    warn_if_secret_readable,
};
pub use sources::{Source, search_dirs};
pub use target::Target;

#[cfg(test)]
mod tests;
