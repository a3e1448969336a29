//! sqs-archive: request, carry out and confirm archiving jobs over AWS SQS.
//!
//! See `ARCHITECTURE.md` for how a message flows through these modules and
//! which floor each one stands on.
#![forbid(unsafe_code)]

// The programs.
pub mod cmd;

// What the programs are made of.
pub mod archive;
pub mod archive_s3;
pub mod audit;
pub mod config;
pub mod connect;
pub mod message;
pub mod metrics;
pub mod poller;
pub mod queue;

// Services over AWS, and the service-agnostic AWS floor beneath them.
pub mod aws;
pub mod s3;
pub mod sqs;

// Small leaves that import nothing above them.
pub mod digest;
pub mod environment;
pub mod error;
pub mod exit;
pub mod files;
pub mod json;
pub mod logging;
pub mod notify;
pub mod random;
pub mod rusage;
pub mod secret;
pub mod stdio;
pub mod subprocess;
pub mod text;
pub mod time;
