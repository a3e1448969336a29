//! The archive client abstraction: what the CLI and the poller need from a queue.
//!
//! Two implementations exist: [`crate::sqs::SqsArchiveClient`] talks to SQS
//! (or an emulator) over HTTP, and [`crate::queue::dir::DirArchiveClient`] keeps the
//! queue in a directory; test builds add `memory`, an in-memory fake with
//! injected faults. Both local ones follow one pure model of SQS semantics,
//! [`model`]. Nothing above this trait knows which client it has.
//! Queues are named by URL; the directory queue uses the URL's last path segment.
//! This module and its children must not import anything above `queue` but
//! `connect` (which reads `config::Settings` to build a client).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub mod dir;
mod journal;
#[cfg(test)]
pub mod memory;
pub mod model;
mod replica;

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
    /// The message attributes a producer set (`aws sqs send-message
    /// --message-attributes`), by name; empty when there are none.
    pub message_attributes: BTreeMap<String, MessageAttribute>,
}

/// One message attribute as SQS returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageAttribute {
    /// `String`, `Number`, `Binary`, or one of those with a `.label`.
    pub data_type: String,
    pub string_value: Option<String>,
    /// Base64, as the wire carries it.
    pub binary_value: Option<String>,
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

/// A queue's dead-letter policy (`RedrivePolicy`): after `max_receive_count`
/// receives, SQS itself moves a message to `dead_letter_target_arn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

/// A queue's counts and the parts of its configuration the tools check
/// against their own settings (completion size, visibility, redrive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueAttributes {
    pub stats: QueueStats,
    /// `MaximumMessageSize` in bytes; `None` when the queue does not say.
    pub maximum_message_size: Option<u32>,
    /// `VisibilityTimeout`: the queue's default, in seconds.
    pub visibility_timeout: Option<u32>,
    /// `RedrivePolicy`, when the queue has a dead-letter queue.
    pub redrive_policy: Option<RedrivePolicy>,
}

impl QueueAttributes {
    /// The attribute names [`QueueAttributes::from_attributes`] reads.
    pub const NAMES: [&'static str; 6] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "MaximumMessageSize",
        "VisibilityTimeout",
        "RedrivePolicy",
    ];

    /// Reads a `GetQueueAttributes` answer. Missing or unreadable values are
    /// left unknown (`None`, or 0 for the counts), never guessed.
    pub fn from_attributes(a: &BTreeMap<String, String>) -> QueueAttributes {
        let count = |k: &str| a.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        let number = |k: &str| a.get(k).and_then(|v| v.trim().parse().ok());
        QueueAttributes {
            stats: QueueStats {
                visible: count("ApproximateNumberOfMessages"),
                in_flight: count("ApproximateNumberOfMessagesNotVisible"),
                delayed: count("ApproximateNumberOfMessagesDelayed"),
            },
            maximum_message_size: number("MaximumMessageSize"),
            visibility_timeout: number("VisibilityTimeout"),
            redrive_policy: a.get("RedrivePolicy").and_then(|p| parse_redrive_policy(p)),
        }
    }
}

/// `RedrivePolicy` is a JSON document inside an attribute; SQS writes
/// `maxReceiveCount` as a number or as a string, depending on who set it.
fn parse_redrive_policy(text: &str) -> Option<RedrivePolicy> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let arn = v.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match v.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(RedrivePolicy {
        dead_letter_target_arn: arn,
        max_receive_count: count,
    })
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
    fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        Ok(self.queue_attributes(queue)?.stats)
    }

    /// Messages received whose body did not match the checksum the server
    /// sent with it, so far: dropped unacted (they return after their
    /// visibility timeout), logged, and counted here so a run can say so.
    fn damaged_received(&self) -> u64 {
        0
    }

    /// Counts plus the configuration the tools check (size limit, visibility,
    /// redrive policy), in one `GetQueueAttributes` call.
    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes>;
}

/// True when the queue URL names a FIFO queue.
pub fn is_fifo(queue: &str) -> bool {
    queue.trim_end_matches('/').ends_with(".fifo")
}

/// A message as it goes to a queue: checked, FIFO fields resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedMessage<'a> {
    pub body: &'a str,
    /// FIFO queues only.
    pub group_id: Option<&'a str>,
    /// FIFO queues only: the given id, or the body's SHA-256 in hex.
    pub dedup_id: Option<String>,
}

/// The send rules every client applies before a message leaves, in one
/// place: the body must fit `max_size` (the profile's `max_message_size`),
/// and on a FIFO queue it needs a group id and gets a deduplication id
/// derived from the body when it has none, so the queue needs no
/// content-based deduplication. A standard queue ignores the FIFO fields.
/// The errors are permanent refusals ([`crate::error::Error::is_permanent_refusal`]).
pub fn prepare<'a>(
    queue: &str,
    message: &'a OutgoingMessage,
    max_size: usize,
) -> Result<PreparedMessage<'a>> {
    if message.body.len() > max_size {
        return Err(crate::error::Error::InvalidData(format!(
            "message body is {} bytes, over the queue's limit of {max_size} bytes (max_message_size)",
            message.body.len(),
        )));
    }
    if !is_fifo(queue) {
        return Ok(PreparedMessage {
            body: &message.body,
            group_id: None,
            dedup_id: None,
        });
    }
    let group_id = message.group_id.as_deref().ok_or_else(|| {
        crate::error::Error::InvalidData("a FIFO queue needs a message group id".into())
    })?;
    Ok(PreparedMessage {
        body: &message.body,
        group_id: Some(group_id),
        dedup_id: Some(
            message
                .dedup_id
                .clone()
                .unwrap_or_else(|| crate::digest::sha256_hex(&message.body)),
        ),
    })
}

/// A batch's bodies together must fit `max_size` too (SQS counts the sum).
pub fn check_batch_size(messages: &[OutgoingMessage], max_size: usize) -> Result<()> {
    let total: usize = messages.iter().map(|m| m.body.len()).sum();
    if total > max_size {
        return Err(crate::error::Error::InvalidData(format!(
            "batch of {total} bytes is over the limit of {max_size} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prepare_checks_size_and_fills_fifo_fields() {
        let m = OutgoingMessage::new("body");
        let p = prepare("https://sqs/1/q", &m, 10).unwrap();
        assert_eq!((p.group_id, p.dedup_id), (None, None));
        let e = prepare("https://sqs/1/q", &m, 3).unwrap_err();
        assert!(e.is_permanent_refusal(), "{e}");
        let e = prepare("https://sqs/1/q.fifo", &m, 10).unwrap_err();
        assert!(e.to_string().contains("group id"), "{e}");
        let fifo = OutgoingMessage {
            group_id: Some("g".into()),
            ..m.clone()
        };
        let p = prepare("mock://q.fifo", &fifo, 10).unwrap();
        assert_eq!(p.group_id, Some("g"));
        assert_eq!(
            p.dedup_id.as_deref(),
            Some("230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5")
        );
        assert!(check_batch_size(&[m.clone(), m.clone()], 7).is_err());
        check_batch_size(&[m.clone(), m], 8).unwrap();
    }

    #[test]
    fn reads_counts_size_visibility_and_redrive() {
        let a = QueueAttributes::from_attributes(&attrs(&[
            ("ApproximateNumberOfMessages", "7"),
            ("ApproximateNumberOfMessagesNotVisible", "2"),
            ("MaximumMessageSize", "262144"),
            ("VisibilityTimeout", "30"),
            (
                "RedrivePolicy",
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":"3"}"#,
            ),
        ]));
        assert_eq!(a.stats.visible, 7);
        assert_eq!(a.stats.in_flight, 2);
        assert_eq!(a.stats.delayed, 0);
        assert_eq!(a.maximum_message_size, Some(262_144));
        assert_eq!(a.visibility_timeout, Some(30));
        let r = a.redrive_policy.unwrap();
        assert_eq!(r.max_receive_count, 3);
        assert_eq!(r.dead_letter_target_arn, "arn:aws:sqs:us-east-1:1:dlq");
    }

    #[test]
    fn redrive_count_as_number_and_garbage_as_unknown() {
        let a = QueueAttributes::from_attributes(&attrs(&[(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":5}"#,
        )]));
        assert_eq!(a.redrive_policy.unwrap().max_receive_count, 5);
        let b = QueueAttributes::from_attributes(&attrs(&[
            ("RedrivePolicy", "{not json"),
            ("MaximumMessageSize", "big"),
        ]));
        assert_eq!(b.redrive_policy, None);
        assert_eq!(b.maximum_message_size, None);
    }
}
