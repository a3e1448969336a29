//! sqs-archive: request, carry out and confirm archiving jobs over AWS SQS.
//!
//! See `ARCHITECTURE.md` for how a message flows through these modules.
#![forbid(unsafe_code)]

pub mod archive;
pub mod args;
pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod doctor;
pub mod endpoint;
pub mod env;
pub mod error;
pub mod exit;
pub mod fsutil;
pub mod logging;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod mock;
pub mod poller;
pub mod process;
pub mod random;
pub mod schema;
pub mod secret;
pub mod sqs;
pub mod stdio;
pub mod text;
pub mod time;
pub mod usage;
