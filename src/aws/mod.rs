//! What every AWS service call needs, and nothing of any one service:
//! signing ([`sign`]), the HTTP agents ([`http`]), query-protocol form and
//! XML helpers ([`form`], [`xml`]), endpoints ([`endpoint`]) and the partition table ([`partition`]),
//! retries ([`retry`]), trusted roots and TLS failures ([`trust`]), secrets masked in foreign text ([`redact`]), the `~/.aws` files ([`shared_config`]) and the
//! credential chain ([`credentials`]).
//!
//! Nothing here imports `config`, `sqs`, `queue` or anything above them;
//! callers pass plain values.

pub mod credentials;
pub mod endpoint;
pub mod form;
pub mod http;
pub mod partition;
pub mod redact;
pub mod retry;
pub mod shared_config;
pub mod sign;
pub mod trust;
pub mod xml;
