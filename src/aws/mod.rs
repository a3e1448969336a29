//! What every AWS service call needs, and nothing of any one service:
//! signing, the one HTTP agent, form encoding, endpoints and partitions,
//! retries, and the credential chain with the shared config files.
//!
//! Nothing here imports `config`, `sqs`, `queue` or anything above them;
//! callers pass plain values.

pub mod credentials;
pub mod endpoint;
pub mod form;
pub mod http;
pub mod retry;
pub mod shared_config;
pub mod sign;
pub mod xml;
