//! The SQS operations this toolkit uses, independent of the wire protocol.
//!
//! A [`Call`] is what to ask; a [`Reply`] is what came back. A [`Codec`]
//! (query/XML in `query.rs`, JSON 1.0 in `json.rs`) turns one into bytes and
//! bytes into the other. Codecs are pure: no I/O, no clock, no signing.

use std::collections::BTreeMap;

use crate::error::{Result, ServiceError};
use crate::queue::ReceiptHandle;

/// One message of a send call: [`crate::queue::prepare`] made it.
pub type SendEntry<'a> = crate::queue::PreparedMessage<'a>;

/// An SQS request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call<'a> {
    SendMessage {
        queue: &'a str,
        entry: SendEntry<'a>,
    },
    SendMessageBatch {
        queue: &'a str,
        entries: Vec<SendEntry<'a>>,
    },
    ReceiveMessage {
        queue: &'a str,
        max_messages: u32,
        wait_seconds: u32,
        visibility_timeout: Option<u32>,
        /// FIFO queues: `ReceiveRequestAttemptId`, the same on every try of
        /// one receive, so a retry after a lost answer gets the same messages
        /// instead of leaving them hidden until their visibility runs out.
        attempt_id: Option<&'a str>,
    },
    DeleteMessage {
        queue: &'a str,
        receipt: &'a ReceiptHandle,
    },
    DeleteMessageBatch {
        queue: &'a str,
        receipts: &'a [ReceiptHandle],
    },
    ChangeMessageVisibility {
        queue: &'a str,
        receipt: &'a ReceiptHandle,
        timeout: u32,
    },
    ChangeMessageVisibilityBatch {
        queue: &'a str,
        entries: Vec<(&'a ReceiptHandle, u32)>,
    },
    GetQueueAttributes {
        queue: &'a str,
        names: &'a [&'a str],
    },
    /// For set-up and tests: creates a queue (idempotent) and returns its URL.
    CreateQueue {
        name: &'a str,
        attributes: &'a [(&'a str, &'a str)],
    },
}

impl Call<'_> {
    /// The API action name.
    pub fn action(&self) -> &'static str {
        match self {
            Call::SendMessage { .. } => "SendMessage",
            Call::SendMessageBatch { .. } => "SendMessageBatch",
            Call::ReceiveMessage { .. } => "ReceiveMessage",
            Call::DeleteMessage { .. } => "DeleteMessage",
            Call::DeleteMessageBatch { .. } => "DeleteMessageBatch",
            Call::ChangeMessageVisibility { .. } => "ChangeMessageVisibility",
            Call::ChangeMessageVisibilityBatch { .. } => "ChangeMessageVisibilityBatch",
            Call::GetQueueAttributes { .. } => "GetQueueAttributes",
            Call::CreateQueue { .. } => "CreateQueue",
        }
    }
}

/// A message as it came off the wire, before the MD5 check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub md5_of_body: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, crate::queue::MessageAttribute>,
}

/// A sent message as the server acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireSent {
    pub message_id: String,
    pub md5_of_body: String,
    pub sequence_number: Option<String>,
}

/// A batch entry's outcome, by its position in the call.
pub type WireBatch<T> = Vec<std::result::Result<T, ServiceError>>;

/// An SQS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Sent(WireSent),
    SentBatch(WireBatch<WireSent>),
    Received(Vec<WireMessage>),
    Done,
    DoneBatch(WireBatch<()>),
    Attributes(BTreeMap<String, String>),
    QueueUrl(String),
}

/// A request ready to sign and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Headers besides host and the signature (content type, target).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A wire protocol.
pub trait Codec: Send + Sync + std::fmt::Debug {
    /// The request for a call.
    fn encode(&self, call: &Call) -> Encoded;

    /// The reply to a call from the HTTP status, headers (lower-case names) and body.
    /// Error responses become `Error::Service`; unreadable ones `Error::Protocol`.
    fn decode(
        &self,
        call: &Call,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Reply>;
}

/// Batch entry ids are the entries' positions: "0", "1", ...
pub fn entry_index(id: &str, len: usize) -> Option<usize> {
    id.parse::<usize>().ok().filter(|i| *i < len)
}

/// Puts entry outcomes found by id into call order; an entry the server did
/// not mention becomes an error, so nothing is silently taken as done.
pub fn order_batch<T>(
    action: &'static str,
    len: usize,
    found: Vec<(String, std::result::Result<T, ServiceError>)>,
) -> Result<WireBatch<T>> {
    let mut slots: Vec<Option<std::result::Result<T, ServiceError>>> =
        (0..len).map(|_| None).collect();
    for (id, outcome) in found {
        let i = entry_index(&id, len).ok_or_else(|| crate::error::Error::Protocol {
            action,
            detail: format!("batch answer names unknown entry id {id:?}"),
        })?;
        slots[i] = Some(outcome);
    }
    Ok(slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(ServiceError {
                    action,
                    status: 200,
                    code: "MissingBatchEntry".into(),
                    message: "the server did not report this entry".into(),
                    request_id: None,
                })
            })
        })
        .collect())
}
