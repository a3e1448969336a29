//! sqs-archive: request, carry out and confirm archiving jobs over AWS SQS.
//!
//! See `ARCHITECTURE.md` for how a message flows through these modules.
#![deny(unsafe_code)]

pub mod archive;
pub mod client;
pub mod credentials;
pub mod env;
pub mod error;
pub mod exit;
pub mod secret;
pub mod message;
pub mod schema;
pub mod time;
pub mod config;
pub mod random;
pub mod sqs;
pub mod mock;
