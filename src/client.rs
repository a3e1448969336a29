//! The archive client abstraction: what the CLI and the poller need from a queue.
//!
//! Two implementations exist: [`crate::sqs::SqsArchiveClient`] talks to SQS
//! (or an emulator) over HTTP, and [`crate::mock::MockArchiveClient`] keeps the
//! queue in a directory. Nothing above this trait knows which one it has.
//! Queues are named by URL; the mock uses the URL's last path segment.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::error::Result;

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The message body (JSON text in this project).
    pub body: String,
    /// FIFO queues only: the message group. Ignored by standard queues.
    pub group_id: Option<String>,
    /// FIFO queues only: the deduplication id. When `None` on a FIFO queue the
    /// client derives one from the body's SHA-256.
    pub dedup_id: Option<String>,
}

impl OutgoingMessage {
    /// A message with a body and no FIFO fields.
    pub fn new(body: impl Into<String>) -> OutgoingMessage {
        OutgoingMessage {
            body: body.into(),
            group_id: None,
            dedup_id: None,
        }
    }
}

/// What the queue said about a message it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: String,
    /// FIFO queues only.
    pub sequence_number: Option<String>,
}

/// An opaque token that names one receipt of one message.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReceiptHandle(pub String);

impl ReceiptHandle {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ReceiptHandle {
    // Receipt handles are long; the head is enough to tell them apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0.chars().take(16).collect();
        write!(f, "ReceiptHandle({head}…)")
    }
}

/// How to receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// 1 to 10.
    pub max_messages: u32,
    /// Long-poll wait, 0 to 20 seconds.
    pub wait_seconds: u32,
    /// How long received messages stay hidden; `None` uses the queue's default.
    pub visibility_timeout: Option<u32>,
}

/// A message as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: ReceiptHandle,
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on first delivery.
    pub receive_count: u32,
    /// All system attributes the server returned (`SentTimestamp`, `MessageGroupId`, ...).
    pub attributes: BTreeMap<String, String>,
}

/// Approximate message counts of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// `ApproximateNumberOfMessages`: visible, waiting to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received, not yet deleted.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: u64,
}

/// One entry's outcome in a batch call; entries keep the order of the input.
pub type BatchOutcome<T> = Vec<Result<T>>;

/// A queue service that can carry archive requests and completions.
///
/// Batch calls take at most 10 entries (the SQS limit); a call-level error
/// means nothing is known about the entries, an entry-level error concerns
/// that entry alone.
pub trait ArchiveClient: Send + Sync {
    /// Sends one message.
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage>;

    /// Sends up to 10 messages in one call.
    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>>;

    /// Receives up to `max_messages` messages, waiting up to `wait_seconds` for the first.
    fn receive_messages(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>>;

    /// Deletes one received message.
    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()>;

    /// Deletes up to 10 received messages.
    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>>;

    /// Sets how long a received message stays hidden, counted from now.
    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()>;

    /// Sets the visibility of up to 10 received messages.
    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>>;

    /// Approximate message counts.
    fn queue_stats(&self, queue: &str) -> Result<QueueStats>;
}

/// True when the queue URL names a FIFO queue.
pub fn is_fifo(queue: &str) -> bool {
    queue.trim_end_matches('/').ends_with(".fifo")
}
