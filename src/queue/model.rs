//! The semantics of one SQS queue as plain data: visibility timeouts,
//! receipt handles that go stale on the next receive, receive counts, FIFO
//! message groups (a group with a message in flight hands out nothing more,
//! and delivers in send order) and the five-minute deduplication window,
//! size limits and batch rules.
//!
//! Pure: no I/O, no clock, no randomness. The time (milliseconds since the
//! epoch), new message ids and receipt nonces are passed in, so the rules are
//! unit-tested with a fixed clock. Every state change is a [`Change`]: an
//! operation decides, applies its changes and returns them, and
//! [`QueueModel::apply`] replays them. The directory queue writes them to its
//! journal and replays the journal on open; the in-memory test client simply
//! drops them. This module must not touch files, clocks or the network.
//!
//! Deliberate difference from SQS: a stale receipt handle is refused
//! (`ReceiptHandleIsInvalid`) where SQS would accept it and maybe do nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ServiceError};
use crate::queue::{PreparedMessage, QueueStats, ReceiptHandle, ReceivedMessage, SentMessage};

/// How long FIFO deduplication ids are remembered, as in SQS.
pub const DEDUP_WINDOW_MS: u64 = 300_000;
/// Visibility timeout when a receive names none (the SQS default).
pub const DEFAULT_VISIBILITY: u32 = 30;
/// `MaximumMessageSize` of a queue that sets none, and the most a send batch
/// may carry in all (the SQS limits).
pub const DEFAULT_MAXIMUM_MESSAGE_SIZE: u32 = 1 << 20;
/// Entries in one batch call, at most.
pub const MAX_BATCH: usize = 10;
/// The longest visibility timeout SQS allows: 12 hours.
const LONGEST_VISIBILITY_MS: u64 = 43_200_000;

/// The model's clock: milliseconds since the Unix epoch.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One message and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub sent_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// FIFO only: the deduplication id it was sent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// FIFO only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    #[serde(default)]
    pub receive_count: u32,
    /// Visible again from this instant; 0 before its first receive.
    #[serde(default)]
    pub visible_ms: u64,
    /// The nonce of the current receipt; `None` until first received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_receive_ms: Option<u64>,
}

/// One change of a queue's state, as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A message arrived (or, in a compacted journal, is still there).
    Sent(Message),
    /// A receive handed the message out under a new receipt.
    Received {
        id: String,
        receipt: String,
        visible_ms: u64,
        at_ms: u64,
    },
    /// Its visibility was changed.
    Hidden {
        id: String,
        visible_ms: u64,
    },
    Deleted {
        id: String,
    },
    /// A compacted journal's memory of a deduplication id whose message is gone.
    Dedup {
        key: String,
        id: String,
        at_ms: u64,
    },
}

/// Why the queue refused a call or an entry; [`Refusal::into_error`] words
/// it as SQS does, so callers see one kind of refusal whatever the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The body is over the queue's `MaximumMessageSize`.
    TooLong {
        limit: u32,
    },
    /// A send batch's bodies together are over the service's limit.
    BatchTooLong {
        total: usize,
    },
    EmptyBatch,
    TooManyEntries(usize),
    /// Not a receipt handle this queue hands out.
    MalformedReceipt,
    /// The message was received again since this receipt was handed out.
    StaleReceipt,
    /// The message is no longer on the queue.
    Gone,
}

impl Refusal {
    /// The service error SQS answers with, for `action`.
    pub fn into_error(self, action: &'static str) -> Error {
        let (code, message) = match self {
            Refusal::TooLong { limit } => (
                "InvalidParameterValue",
                format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
                ),
            ),
            Refusal::BatchTooLong { total } => (
                "BatchRequestTooLong",
                format!(
                    "Batch requests cannot be longer than {DEFAULT_MAXIMUM_MESSAGE_SIZE} bytes; this one is {total}."
                ),
            ),
            Refusal::EmptyBatch => (
                "EmptyBatchRequest",
                "There should be at least one entry in the request.".into(),
            ),
            Refusal::TooManyEntries(n) => (
                "TooManyEntriesInBatchRequest",
                format!("Maximum number of entries per request are {MAX_BATCH}; got {n}."),
            ),
            Refusal::MalformedReceipt => {
                ("ReceiptHandleIsInvalid", "malformed receipt handle".into())
            }
            Refusal::StaleReceipt => (
                "ReceiptHandleIsInvalid",
                "the receipt handle is stale: the message was received again since".into(),
            ),
            Refusal::Gone => (
                "ReceiptHandleIsInvalid",
                "the message no longer exists".into(),
            ),
        };
        Error::Service(ServiceError {
            action,
            status: 400,
            code: code.into(),
            message,
            request_id: None,
        })
    }
}

/// A body must fit the queue's `MaximumMessageSize`.
pub fn check_size(body: &str, limit: u32) -> Result<(), Refusal> {
    if body.len() > limit as usize {
        return Err(Refusal::TooLong { limit });
    }
    Ok(())
}

/// A batch call takes 1 to 10 entries. (SQS also wants distinct entry ids:
/// the trait's batches carry none, and the SQS client numbers them.)
pub fn check_batch(entries: usize) -> Result<(), Refusal> {
    match entries {
        0 => Err(Refusal::EmptyBatch),
        n if n > MAX_BATCH => Err(Refusal::TooManyEntries(n)),
        _ => Ok(()),
    }
}

/// A send batch: 1 to 10 entries whose bodies together fit the service's limit.
pub fn check_send_batch<'b>(bodies: impl ExactSizeIterator<Item = &'b str>) -> Result<(), Refusal> {
    check_batch(bodies.len())?;
    let total: usize = bodies.map(str::len).sum();
    if total > DEFAULT_MAXIMUM_MESSAGE_SIZE as usize {
        return Err(Refusal::BatchTooLong { total });
    }
    Ok(())
}

/// A receipt handle is `<message id>:<nonce>`, both of letters, digits, `-` and `_`.
fn split_receipt(receipt: &ReceiptHandle) -> Result<(&str, &str), Refusal> {
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    receipt
        .as_str()
        .split_once(':')
        .filter(|(id, nonce)| word(id) && word(nonce))
        .ok_or(Refusal::MalformedReceipt)
}

/// One queue's messages, in send order, and its deduplication memory.
#[derive(Clone, Debug, Default)]
pub struct QueueModel {
    fifo: bool,
    messages: BTreeMap<u64, Message>,
    /// Message id to its key in `messages`.
    order: HashMap<String, u64>,
    next: u64,
    /// Deduplication id to the message id it gave and when.
    dedup: HashMap<String, (String, u64)>,
    last_prune_ms: u64,
    last_sequence: u64,
}

impl QueueModel {
    /// An empty queue; `fifo` for a `.fifo` queue.
    pub fn new(fifo: bool) -> QueueModel {
        QueueModel {
            fifo,
            ..QueueModel::default()
        }
    }

    /// Messages on the queue (visible or not).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// About how many records [`QueueModel::snapshot`] gives: the messages
    /// and the deduplication ids remembered.
    pub fn retained(&self) -> usize {
        self.messages.len() + self.dedup.len()
    }

    /// The messages in send order.
    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// Sends a prepared message (see [`crate::queue::prepare`]) under `id`,
    /// unless its deduplication id was seen in the last five minutes: then
    /// the earlier message's id is returned and nothing changes.
    pub fn send(
        &mut self,
        now: u64,
        id: String,
        message: &PreparedMessage<'_>,
        limit: u32,
    ) -> Result<(SentMessage, Option<Change>), Refusal> {
        check_size(message.body, limit)?;
        self.prune(now);
        if let Some(key) = &message.dedup_id
            && let Some((earlier, at)) = self.dedup.get(key)
            && now < at + DEDUP_WINDOW_MS
        {
            let sent = SentMessage {
                message_id: earlier.clone(),
                sequence_number: None,
            };
            return Ok((sent, None));
        }
        let sequence = self.fifo.then(|| {
            format!(
                "{:020}",
                (self.last_sequence + 1).max(now.saturating_mul(1000))
            )
        });
        let change = Change::Sent(Message {
            id: id.clone(),
            body: message.body.to_string(),
            sent_ms: now,
            group: message.group_id.map(str::to_string),
            dedup: message.dedup_id.clone(),
            sequence: sequence.clone(),
            receive_count: 0,
            visible_ms: 0,
            receipt: None,
            first_receive_ms: None,
        });
        self.apply(&change);
        let sent = SentMessage {
            message_id: id,
            sequence_number: sequence,
        };
        Ok((sent, Some(change)))
    }

    /// Hands out up to `max` (1 to 10) visible messages in send order,
    /// hiding each for `visibility` under a new receipt (`nonce` makes its
    /// unique part). On a FIFO queue a group with a message in flight hands
    /// out nothing.
    pub fn receive(
        &mut self,
        now: u64,
        max: usize,
        visibility: Duration,
        nonce: &mut dyn FnMut() -> String,
    ) -> (Vec<ReceivedMessage>, Vec<Change>) {
        let max = max.clamp(1, MAX_BATCH);
        let hide = (visibility.as_millis() as u64).min(LONGEST_VISIBILITY_MS);
        // Groups order a FIFO queue only.
        let blocked: HashSet<&str> = match self.fifo {
            true => self
                .messages
                .values()
                .filter(|m| m.visible_ms > now)
                .filter_map(|m| m.group.as_deref())
                .collect(),
            false => HashSet::new(),
        };
        let chosen: Vec<String> = self
            .messages
            .values()
            .filter(|m| m.visible_ms <= now)
            .filter(|m| m.group.as_deref().is_none_or(|g| !blocked.contains(g)) || !self.fifo)
            .take(max)
            .map(|m| m.id.clone())
            .collect();
        let mut out = Vec::with_capacity(chosen.len());
        let mut changes = Vec::with_capacity(chosen.len());
        for id in chosen {
            let receipt = nonce();
            let change = Change::Received {
                id: id.clone(),
                receipt: receipt.clone(),
                visible_ms: now + hide,
                at_ms: now,
            };
            self.apply(&change);
            let m = self.get(&id).expect("a chosen message is on the queue");
            out.push(received(m, &receipt));
            changes.push(change);
        }
        (out, changes)
    }

    /// The message a receipt names, if the receipt is current; `None` when
    /// the message is gone.
    pub fn current(&self, receipt: &ReceiptHandle) -> Result<Option<&Message>, Refusal> {
        let (id, nonce) = split_receipt(receipt)?;
        match self.get(id) {
            None => Ok(None),
            Some(m) if m.receipt.as_deref() == Some(nonce) => Ok(Some(m)),
            Some(_) => Err(Refusal::StaleReceipt),
        }
    }

    /// Deletes the message a current receipt names. Deleting a message that
    /// is already gone succeeds, as in SQS, and changes nothing.
    pub fn delete(&mut self, receipt: &ReceiptHandle) -> Result<Option<Change>, Refusal> {
        let Some(m) = self.current(receipt)? else {
            return Ok(None);
        };
        let change = Change::Deleted { id: m.id.clone() };
        self.apply(&change);
        Ok(Some(change))
    }

    /// Hides the message a current receipt names for `timeout` from now
    /// (zero makes it visible at once).
    pub fn change_visibility(
        &mut self,
        now: u64,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<Change, Refusal> {
        let m = self.current(receipt)?.ok_or(Refusal::Gone)?;
        let change = Change::Hidden {
            id: m.id.clone(),
            visible_ms: now + (timeout.as_millis() as u64).min(LONGEST_VISIBILITY_MS),
        };
        self.apply(&change);
        Ok(change)
    }

    /// Visible and in-flight counts at `now`.
    pub fn stats(&self, now: u64) -> QueueStats {
        let visible = self
            .messages
            .values()
            .filter(|m| m.visible_ms <= now)
            .count() as u64;
        QueueStats {
            visible,
            in_flight: self.messages.len() as u64 - visible,
            delayed: 0,
        }
    }

    /// Applies one change. Replaying a journal applies its changes in
    /// order; a change about a message that is not there does nothing.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Sent(m) => {
                if self.order.contains_key(&m.id) {
                    return;
                }
                if let Some(key) = &m.dedup {
                    self.dedup.insert(key.clone(), (m.id.clone(), m.sent_ms));
                }
                if let Some(s) = m.sequence.as_deref().and_then(|s| s.parse().ok()) {
                    self.last_sequence = self.last_sequence.max(s);
                }
                self.next += 1;
                self.order.insert(m.id.clone(), self.next);
                self.messages.insert(self.next, m.clone());
            }
            Change::Received {
                id,
                receipt,
                visible_ms,
                at_ms,
            } => {
                if let Some(m) = self.get_mut(id) {
                    m.receive_count += 1;
                    m.visible_ms = *visible_ms;
                    m.receipt = Some(receipt.clone());
                    m.first_receive_ms.get_or_insert(*at_ms);
                }
            }
            Change::Hidden { id, visible_ms } => {
                if let Some(m) = self.get_mut(id) {
                    m.visible_ms = *visible_ms;
                }
            }
            Change::Deleted { id } => {
                if let Some(key) = self.order.remove(id) {
                    self.messages.remove(&key);
                }
            }
            Change::Dedup { key, id, at_ms } => {
                self.dedup.insert(key.clone(), (id.clone(), *at_ms));
            }
        }
    }

    /// The changes that rebuild this state from nothing: what a compacted
    /// journal holds. Deduplication ids older than the window are left out.
    pub fn snapshot(&self, now: u64) -> Vec<Change> {
        let mut changes: Vec<Change> = self
            .dedup
            .iter()
            .filter(|(_, (id, at))| now < at + DEDUP_WINDOW_MS && !self.order.contains_key(id))
            .map(|(key, (id, at))| Change::Dedup {
                key: key.clone(),
                id: id.clone(),
                at_ms: *at,
            })
            .collect();
        changes.sort_by_key(|c| match c {
            Change::Dedup { at_ms, .. } => *at_ms,
            _ => 0,
        });
        changes.extend(self.messages.values().cloned().map(Change::Sent));
        changes
    }

    fn get(&self, id: &str) -> Option<&Message> {
        self.messages.get(self.order.get(id)?)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Message> {
        self.messages.get_mut(self.order.get(id)?)
    }

    /// Forgets deduplication ids older than the window, once a minute.
    fn prune(&mut self, now: u64) {
        if now < self.last_prune_ms + 60_000 {
            return;
        }
        self.last_prune_ms = now;
        self.dedup.retain(|_, (_, at)| now < *at + DEDUP_WINDOW_MS);
    }
}

/// A message as a receive hands it out, with the system attributes SQS sends.
fn received(m: &Message, nonce: &str) -> ReceivedMessage {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "ApproximateReceiveCount".to_string(),
        m.receive_count.to_string(),
    );
    attributes.insert("SentTimestamp".to_string(), m.sent_ms.to_string());
    if let Some(first) = m.first_receive_ms {
        attributes.insert(
            "ApproximateFirstReceiveTimestamp".to_string(),
            first.to_string(),
        );
    }
    if let Some(g) = &m.group {
        attributes.insert("MessageGroupId".to_string(), g.clone());
    }
    if let Some(s) = &m.sequence {
        attributes.insert("SequenceNumber".to_string(), s.clone());
    }
    ReceivedMessage {
        message_id: m.id.clone(),
        receipt_handle: ReceiptHandle(format!("{}:{nonce}", m.id)),
        body: m.body.clone(),
        receive_count: m.receive_count,
        attributes,
        // The directory queue and the memory fake take none on send.
        message_attributes: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;
    const LIMIT: u32 = 1 << 20;

    /// A model with counters for ids and nonces.
    struct Q {
        model: QueueModel,
        ids: u32,
        nonces: u32,
    }

    impl Q {
        fn new(fifo: bool) -> Q {
            Q {
                model: QueueModel::new(fifo),
                ids: 0,
                nonces: 0,
            }
        }

        fn send(&mut self, now: u64, body: &str, group: Option<&str>) -> SentMessage {
            self.ids += 1;
            let prepared = PreparedMessage {
                body,
                group_id: group,
                dedup_id: group.map(|_| crate::digest::sha256_hex(body)),
            };
            let id = format!("m{}", self.ids);
            self.model.send(now, id, &prepared, LIMIT).unwrap().0
        }

        fn receive(&mut self, now: u64, max: usize, seconds: u64) -> Vec<ReceivedMessage> {
            let nonces = &mut self.nonces;
            let mut nonce = || {
                *nonces += 1;
                format!("n{nonces}")
            };
            let (got, changes) =
                self.model
                    .receive(now, max, Duration::from_secs(seconds), &mut nonce);
            assert_eq!(got.len(), changes.len());
            got
        }
    }

    fn bodies(got: &[ReceivedMessage]) -> Vec<&str> {
        got.iter().map(|m| m.body.as_str()).collect()
    }

    #[test]
    fn a_received_message_hides_then_returns_with_a_new_receipt() {
        let mut q = Q::new(false);
        let sent = q.send(T0, "one", None);
        q.send(T0, "two", None);
        let first = q.receive(T0, 1, 30);
        assert_eq!(bodies(&first), ["one"], "send order");
        assert_eq!(first[0].message_id, sent.message_id);
        assert_eq!(first[0].receive_count, 1);
        assert_eq!(first[0].attributes["SentTimestamp"], T0.to_string());
        assert_eq!(
            q.model.stats(T0),
            QueueStats {
                visible: 1,
                in_flight: 1,
                delayed: 0
            }
        );
        assert_eq!(bodies(&q.receive(T0 + 1, 10, 30)), ["two"], "one is hidden");
        let later = T0 + 31_000;
        let again = q.receive(later, 10, 30);
        assert_eq!(
            bodies(&again),
            ["one", "two"],
            "both back after their timeout"
        );
        assert_eq!(again[0].receive_count, 2);
        assert_eq!(
            again[0].attributes["ApproximateFirstReceiveTimestamp"],
            T0.to_string()
        );
        assert_ne!(again[0].receipt_handle, first[0].receipt_handle);
        assert_eq!(
            q.model.delete(&first[0].receipt_handle),
            Err(Refusal::StaleReceipt)
        );
        assert!(q.model.delete(&again[0].receipt_handle).unwrap().is_some());
        assert_eq!(
            q.model.delete(&again[0].receipt_handle),
            Ok(None),
            "gone: fine"
        );
        assert_eq!(q.model.len(), 1);
    }

    #[test]
    fn visibility_changes_extend_release_and_need_a_current_receipt() {
        let mut q = Q::new(false);
        q.send(T0, "x", None);
        let m = q.receive(T0, 1, 1).remove(0);
        q.model
            .change_visibility(T0, &m.receipt_handle, Duration::from_secs(60))
            .unwrap();
        assert!(q.receive(T0 + 2_000, 1, 1).is_empty(), "extended");
        q.model
            .change_visibility(T0 + 2_000, &m.receipt_handle, Duration::ZERO)
            .unwrap();
        let back = q.receive(T0 + 2_000, 1, 30);
        assert_eq!(back.len(), 1, "visibility 0 returns it at once");
        assert_eq!(
            q.model
                .change_visibility(T0, &m.receipt_handle, Duration::ZERO),
            Err(Refusal::StaleReceipt)
        );
        q.model.delete(&back[0].receipt_handle).unwrap();
        assert_eq!(
            q.model
                .change_visibility(T0, &back[0].receipt_handle, Duration::ZERO),
            Err(Refusal::Gone)
        );
        // Never longer than 12 hours.
        q.send(T0, "y", None);
        let y = q.receive(T0, 1, 100_000).remove(0);
        let hidden_until = q.model.messages().next().unwrap().visible_ms;
        assert_eq!(hidden_until, T0 + LONGEST_VISIBILITY_MS);
        assert_eq!(y.body, "y");
    }

    #[test]
    fn malformed_receipts_are_refused() {
        let mut q = Q::new(false);
        for r in ["", "no-colon", "../../etc/passwd:x", "m1:", ":n1", "m1:n 1"] {
            assert_eq!(
                q.model.delete(&ReceiptHandle(r.into())),
                Err(Refusal::MalformedReceipt),
                "{r:?}"
            );
        }
    }

    #[test]
    fn fifo_groups_deliver_in_order_and_wait_while_one_is_in_flight() {
        let mut q = Q::new(true);
        q.send(T0, "a1", Some("a"));
        q.send(T0, "a2", Some("a"));
        q.send(T0, "b1", Some("b"));
        let first = q.receive(T0, 1, 30);
        assert_eq!(bodies(&first), ["a1"]);
        assert_eq!(first[0].attributes["MessageGroupId"], "a");
        assert!(first[0].attributes.contains_key("SequenceNumber"));
        // a2 waits while a1 is in flight; b1 does not.
        assert_eq!(bodies(&q.receive(T0, 10, 30)), ["b1"]);
        q.model
            .change_visibility(T0, &first[0].receipt_handle, Duration::ZERO)
            .unwrap();
        // Back in order, several of one group in one receive, as SQS does.
        let again = q.receive(T0, 10, 30);
        assert_eq!(bodies(&again), ["a1", "a2"]);
        // a2 in flight keeps a1 (made visible) from being handed out.
        q.model
            .change_visibility(T0, &again[0].receipt_handle, Duration::ZERO)
            .unwrap();
        assert!(q.receive(T0, 10, 30).is_empty());
    }

    #[test]
    fn fifo_sends_are_deduplicated_for_five_minutes() {
        let mut q = Q::new(true);
        let a = q.send(T0, "same", Some("g"));
        let b = q.send(T0 + 1_000, "same", Some("g"));
        assert_eq!(a.message_id, b.message_id);
        assert_eq!(b.sequence_number, None);
        assert_eq!(q.model.len(), 1);
        // Still remembered after the message is gone.
        let m = q.receive(T0, 1, 30).remove(0);
        q.model.delete(&m.receipt_handle).unwrap();
        let c = q.send(T0 + 2_000, "same", Some("g"));
        assert_eq!(c.message_id, a.message_id);
        assert!(q.model.is_empty());
        let d = q.send(T0 + DEDUP_WINDOW_MS, "same", Some("g"));
        assert_ne!(d.message_id, a.message_id, "the window has passed");
        let s1: u64 = a.sequence_number.unwrap().parse().unwrap();
        let s2: u64 = d.sequence_number.unwrap().parse().unwrap();
        assert!(s2 > s1);
    }

    #[test]
    fn size_and_batch_rules() {
        let mut q = QueueModel::new(false);
        let body = "x".repeat(11);
        let prepared = PreparedMessage {
            body: &body,
            group_id: None,
            dedup_id: None,
        };
        assert_eq!(
            q.send(T0, "m1".into(), &prepared, 10).unwrap_err(),
            Refusal::TooLong { limit: 10 }
        );
        assert!(q.send(T0, "m1".into(), &prepared, 11).is_ok());
        assert_eq!(check_batch(0), Err(Refusal::EmptyBatch));
        assert_eq!(check_batch(11), Err(Refusal::TooManyEntries(11)));
        check_batch(10).unwrap();
        let big = "x".repeat(600_000);
        assert!(matches!(
            check_send_batch([big.as_str(), big.as_str()].into_iter()),
            Err(Refusal::BatchTooLong { .. })
        ));
        let e = Refusal::TooLong { limit: 10 }.into_error("SendMessage");
        assert!(e.is_permanent_refusal(), "{e}");
        let e = Refusal::StaleReceipt.into_error("DeleteMessage");
        assert!(
            matches!(&e, Error::Service(s) if s.is_stale_receipt()),
            "{e}"
        );
    }

    #[test]
    fn replaying_the_changes_or_the_snapshot_gives_the_same_state() {
        let mut log = Vec::new();
        // Drive the model through every kind of change, keeping the changes.
        let mut model = QueueModel::new(true);
        let p = |body: &'static str| PreparedMessage {
            body,
            group_id: Some("a"),
            dedup_id: Some(body.to_string()),
        };
        for (i, body) in ["a1", "a2", "a3"].into_iter().enumerate() {
            let (_, c) = model.send(T0, format!("m{i}"), &p(body), LIMIT).unwrap();
            log.extend(c);
        }
        let mut n = 0;
        let mut nonce = || {
            n += 1;
            format!("n{n}")
        };
        let (got, c) = model.receive(T0, 2, Duration::from_secs(30), &mut nonce);
        log.extend(c);
        log.push(model.delete(&got[0].receipt_handle).unwrap().unwrap());
        log.push(
            model
                .change_visibility(T0, &got[1].receipt_handle, Duration::from_secs(5))
                .unwrap(),
        );
        let mut replayed = QueueModel::new(true);
        for c in &log {
            replayed.apply(c);
        }
        let mut restored = QueueModel::new(true);
        for c in model.snapshot(T0) {
            restored.apply(&c);
        }
        for other in [&replayed, &restored] {
            assert_eq!(
                other.messages().collect::<Vec<_>>(),
                model.messages().collect::<Vec<_>>()
            );
            // The deleted message's deduplication id survives.
            let (sent, change) = other
                .clone()
                .send(T0 + 1, "new".into(), &p("a1"), LIMIT)
                .unwrap();
            assert_eq!((sent.message_id.as_str(), change), ("m0", None));
        }
        // The receipt handed out before is still current after a replay.
        assert!(restored.current(&got[1].receipt_handle).unwrap().is_some());
    }
}
