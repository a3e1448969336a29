//! What travels between the threads of a run: a [`Job`] from the receiver
//! to a worker, a [`Report`] from a worker (or the receiver) to the
//! reporter, an [`Event`] back to the receiver. Plain data; no I/O.

use serde_json::Value;

use super::outcome::Outcome;
use crate::error::Result;
use crate::queue::ReceivedMessage;

/// A validated request on its way to a worker.
#[derive(Debug)]
pub struct Job {
    pub message: ReceivedMessage,
    pub request: Value,
    /// `msg <id> aipid <aipid>`, escaped, for log lines.
    pub context: String,
    /// FIFO queues: its `MessageGroupId`.
    pub group: Option<String>,
}

/// A decided outcome on its way to the reporter.
#[derive(Debug)]
pub struct Report {
    pub message: ReceivedMessage,
    pub context: String,
    pub outcome: Outcome,
    /// FIFO queues: the group a worker held for this request. The group
    /// stays busy until the reporter settled the outcome, so a later request
    /// of the group never starts before this one was deleted or kept.
    pub holds_group: Option<String>,
}

/// What the receiver hears about.
pub enum Event {
    /// A worker finished a request (its report is on the way).
    Finished,
    /// The reporter settled the request of a FIFO group a worker held:
    /// `kept` when it stays on the queue (retried, completion not sent).
    GroupSettled { group: String, kept: bool },
    /// A worker took this request from the job channel.
    Started(crate::queue::ReceiptHandle),
    /// The reporter settled `count` outcomes; `put_back` of them left their
    /// request on the queue to come back (returned, retried, kept, not
    /// deleted).
    Settled { count: usize, put_back: u64 },
    /// A receive came back.
    Received(Result<Vec<ReceivedMessage>>),
}

/// `msg <id> aipid <aipid>` for log lines.
pub fn context(message: &ReceivedMessage, request: Option<&Value>) -> String {
    let aipid = request
        .or(serde_json::from_str::<Value>(&message.body).ok().as_ref())
        .and_then(|r| {
            r.get("aipid")
                .and_then(Value::as_str)
                .map(|s| crate::text::excerpt(s, 64))
        })
        .unwrap_or_else(|| "?".into());
    // Both are foreign text: escaped, bounded.
    format!(
        "msg {} aipid {aipid}",
        crate::text::excerpt(&message.message_id, 100)
    )
}
