//! An [`ArchiveClient`] that keeps its queues in memory, with injected
//! faults: the poller's outcome contract is unit-tested on it in
//! milliseconds, as ureq tests against an in-memory transport.
//!
//! It behaves like SQS where the poller can tell: visibility timeouts,
//! receipt handles that go stale on the next receive, receive counts, FIFO
//! groups (a group with a message in flight hands out nothing more), and
//! `MaximumMessageSize` / `RedrivePolicy` in its attributes. It keeps a log
//! of every call for the tests to read. Nothing here touches the disk or the
//! network.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, ServiceError};
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, QueueAttributes, QueueStats, ReceiptHandle,
    ReceiveRequest, ReceivedMessage, RedrivePolicy, SentMessage, is_fifo,
};

/// Faults to inject; each counter is used up one call (or entry) at a time.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Refuse the next N sent messages with a temporary error (503).
    pub refuse_sends: u32,
    /// Refuse every sent message whose body holds this text, temporarily.
    pub refuse_bodies_containing: Option<String>,
    /// Refuse every sent message longer than this many bytes as too long
    /// (a permanent refusal); `Some(0)` refuses them all.
    pub refuse_longer_than: Option<usize>,
    /// Fail the next N deletes (entries).
    pub fail_deletes: u32,
    /// Carry out the next N calls but lose their answer (a transport error).
    pub drop_answers: u32,
    /// The same, for sends only.
    pub drop_send_answers: u32,
}

/// One call, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Send {
        queue: String,
        body: String,
    },
    Receive {
        queue: String,
        max: u32,
    },
    Delete {
        queue: String,
        message_id: String,
    },
    Visibility {
        queue: String,
        message_id: String,
        timeout: Duration,
    },
}

#[derive(Clone, Debug)]
struct Stored {
    id: String,
    body: String,
    group: Option<String>,
    receive_count: u32,
    visible_at: Instant,
    /// The receipt of the latest receive; older ones are stale.
    receipt: Option<String>,
}

#[derive(Debug, Default)]
struct Queue {
    messages: Vec<Stored>,
    max_message_size: Option<u32>,
    visibility_timeout: u32,
    redrive: Option<RedrivePolicy>,
}

#[derive(Debug, Default)]
struct State {
    queues: BTreeMap<String, Queue>,
    faults: Faults,
    calls: Vec<Call>,
    next: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryArchiveClient {
    state: Mutex<State>,
}

fn service(action: &'static str, status: u16, code: &str, message: &str) -> Error {
    Error::Service(ServiceError {
        action,
        status,
        code: code.into(),
        message: message.into(),
        request_id: None,
    })
}

fn dropped(action: &'static str) -> Error {
    Error::Transport {
        action,
        endpoint: "memory".into(),
        detail: "the answer was lost (injected)".into(),
    }
}

impl MemoryArchiveClient {
    pub fn new() -> MemoryArchiveClient {
        MemoryArchiveClient::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the faults.
    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.state().faults);
    }

    /// Sets a queue's `MaximumMessageSize`, `VisibilityTimeout` and `RedrivePolicy`.
    pub fn configure(
        &self,
        queue: &str,
        max_message_size: Option<u32>,
        redrive: Option<RedrivePolicy>,
    ) {
        let mut state = self.state();
        let q = state.queues.entry(queue.into()).or_default();
        q.max_message_size = max_message_size;
        q.redrive = redrive;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Bodies on a queue, in order (visible or not).
    pub fn bodies(&self, queue: &str) -> Vec<String> {
        self.state()
            .queues
            .get(queue)
            .map(|q| q.messages.iter().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    /// How long until each message on a queue is visible (zero when it is), by body.
    pub fn hidden_for(&self, queue: &str) -> Vec<(String, Duration)> {
        let now = Instant::now();
        self.state()
            .queues
            .get(queue)
            .map(|q| {
                q.messages
                    .iter()
                    .map(|m| (m.body.clone(), m.visible_at.saturating_duration_since(now)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes every message visible now, as if their timeouts ran out.
    pub fn expire_all(&self, queue: &str) {
        let now = Instant::now();
        if let Some(q) = self.state().queues.get_mut(queue) {
            for m in &mut q.messages {
                m.visible_at = now;
            }
        }
    }

    /// Puts a message on a queue without the faults (test set-up).
    pub fn push(&self, queue: &str, body: &str, group: Option<&str>) -> String {
        let mut state = self.state();
        state.next += 1;
        let id = format!("m{}", state.next);
        state
            .queues
            .entry(queue.into())
            .or_default()
            .messages
            .push(Stored {
                id: id.clone(),
                body: body.into(),
                group: group.map(Into::into),
                receive_count: 0,
                visible_at: Instant::now(),
                receipt: None,
            });
        id
    }

    fn take_drop(state: &mut State) -> bool {
        if state.faults.drop_answers > 0 {
            state.faults.drop_answers -= 1;
            true
        } else {
            false
        }
    }

    fn send_one(state: &mut State, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        state.calls.push(Call::Send {
            queue: queue.into(),
            body: message.body.clone(),
        });
        let limit = state
            .queues
            .get(queue)
            .and_then(|q| q.max_message_size)
            .map(|n| n as usize);
        if let Some(max) = state.faults.refuse_longer_than.or(limit)
            && message.body.len() > max
        {
            return Err(service(
                "SendMessage",
                400,
                "InvalidParameterValue",
                "One or more parameters are invalid. Reason: Message must be shorter than the queue's MaximumMessageSize.",
            ));
        }
        if state.faults.refuse_sends > 0 {
            state.faults.refuse_sends -= 1;
            return Err(service(
                "SendMessage",
                503,
                "ServiceUnavailable",
                "injected",
            ));
        }
        if let Some(text) = &state.faults.refuse_bodies_containing
            && message.body.contains(text.as_str())
        {
            return Err(service(
                "SendMessage",
                503,
                "ServiceUnavailable",
                "injected",
            ));
        }
        state.next += 1;
        let id = format!("m{}", state.next);
        let group = message
            .group_id
            .clone()
            .or_else(|| is_fifo(queue).then(|| "default".to_string()));
        state
            .queues
            .entry(queue.into())
            .or_default()
            .messages
            .push(Stored {
                id: id.clone(),
                body: message.body.clone(),
                group,
                receive_count: 0,
                visible_at: Instant::now(),
                receipt: None,
            });
        if state.faults.drop_send_answers > 0 {
            state.faults.drop_send_answers -= 1;
            return Err(dropped("SendMessage"));
        }
        if Self::take_drop(state) {
            return Err(dropped("SendMessage"));
        }
        Ok(SentMessage {
            message_id: id,
            sequence_number: None,
        })
    }

    fn find<'a>(
        state: &'a mut State,
        queue: &str,
        receipt: &ReceiptHandle,
    ) -> Option<&'a mut Stored> {
        state
            .queues
            .get_mut(queue)?
            .messages
            .iter_mut()
            .find(|m| m.receipt.as_deref() == Some(receipt.as_str()))
    }

    fn delete_one(state: &mut State, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        let id = Self::find(state, queue, receipt).map(|m| m.id.clone());
        let Some(id) = id else {
            return Err(service(
                "DeleteMessage",
                400,
                "ReceiptHandleIsInvalid",
                "stale",
            ));
        };
        state.calls.push(Call::Delete {
            queue: queue.into(),
            message_id: id.clone(),
        });
        if state.faults.fail_deletes > 0 {
            state.faults.fail_deletes -= 1;
            return Err(service(
                "DeleteMessage",
                503,
                "ServiceUnavailable",
                "injected",
            ));
        }
        if let Some(q) = state.queues.get_mut(queue) {
            q.messages.retain(|m| m.id != id);
        }
        if Self::take_drop(state) {
            return Err(dropped("DeleteMessage"));
        }
        Ok(())
    }

    fn hide(
        state: &mut State,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        let Some(m) = Self::find(state, queue, receipt) else {
            return Err(service(
                "ChangeMessageVisibility",
                400,
                "ReceiptHandleIsInvalid",
                "stale",
            ));
        };
        m.visible_at = Instant::now() + timeout;
        let id = m.id.clone();
        state.calls.push(Call::Visibility {
            queue: queue.into(),
            message_id: id,
            timeout,
        });
        if Self::take_drop(state) {
            return Err(dropped("ChangeMessageVisibility"));
        }
        Ok(())
    }
}

impl ArchiveClient for MemoryArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        Self::send_one(&mut self.state(), queue, message)
    }

    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>> {
        let mut state = self.state();
        Ok(messages
            .iter()
            .map(|m| Self::send_one(&mut state, queue, m))
            .collect())
    }

    fn receive_messages(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>> {
        let mut state = self.state();
        state.calls.push(Call::Receive {
            queue: queue.into(),
            max: request.max_messages,
        });
        state.next += 1;
        let round = state.next;
        let now = Instant::now();
        let q = state.queues.entry(queue.into()).or_default();
        let hide = Duration::from_secs(u64::from(
            request
                .visibility_timeout
                .unwrap_or(q.visibility_timeout.max(30)),
        ));
        // A FIFO group with a message in flight hands out nothing more.
        let blocked: Vec<String> = q
            .messages
            .iter()
            .filter(|m| m.visible_at > now && m.receipt.is_some())
            .filter_map(|m| m.group.clone())
            .collect();
        let mut out = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for (n, m) in q.messages.iter_mut().enumerate() {
            if out.len() >= request.max_messages as usize {
                break;
            }
            let group_blocked = m
                .group
                .as_ref()
                .is_some_and(|g| blocked.contains(g) || skipped.contains(g));
            if m.visible_at > now || group_blocked {
                if let Some(g) = &m.group {
                    skipped.push(g.clone());
                }
                continue;
            }
            m.receive_count += 1;
            m.visible_at = now + hide;
            let receipt = format!("r{round}-{n}-{}", m.id);
            m.receipt = Some(receipt.clone());
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "ApproximateReceiveCount".to_string(),
                m.receive_count.to_string(),
            );
            if let Some(g) = &m.group {
                attributes.insert("MessageGroupId".to_string(), g.clone());
            }
            out.push(ReceivedMessage {
                message_id: m.id.clone(),
                receipt_handle: ReceiptHandle(receipt),
                body: m.body.clone(),
                receive_count: m.receive_count,
                attributes,
            });
        }
        if Self::take_drop(&mut state) {
            return Err(dropped("ReceiveMessage"));
        }
        Ok(out)
    }

    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        Self::delete_one(&mut self.state(), queue, receipt)
    }

    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>> {
        let mut state = self.state();
        Ok(receipts
            .iter()
            .map(|r| Self::delete_one(&mut state, queue, r))
            .collect())
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        Self::hide(&mut self.state(), queue, receipt, timeout)
    }

    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>> {
        let mut state = self.state();
        Ok(entries
            .iter()
            .map(|(r, t)| Self::hide(&mut state, queue, r, *t))
            .collect())
    }

    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes> {
        let state = self.state();
        let now = Instant::now();
        let Some(q) = state.queues.get(queue) else {
            return Ok(QueueAttributes::default());
        };
        let visible = q.messages.iter().filter(|m| m.visible_at <= now).count() as u64;
        Ok(QueueAttributes {
            stats: QueueStats {
                visible,
                in_flight: q.messages.len() as u64 - visible,
                delayed: 0,
            },
            maximum_message_size: q.max_message_size,
            visibility_timeout: Some(q.visibility_timeout),
            redrive_policy: q.redrive.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(c: &MemoryArchiveClient, q: &str, max: u32) -> Vec<ReceivedMessage> {
        c.receive_messages(
            q,
            &ReceiveRequest {
                max_messages: max,
                wait_seconds: 0,
                visibility_timeout: Some(30),
            },
        )
        .unwrap()
    }

    #[test]
    fn receipts_go_stale_and_fifo_groups_wait_for_their_head() {
        let c = MemoryArchiveClient::new();
        let q = "mem://q.fifo";
        c.push(q, "a1", Some("a"));
        c.push(q, "a2", Some("a"));
        c.push(q, "b1", Some("b"));
        let first = receive(&c, q, 1);
        assert_eq!(first[0].body, "a1");
        // a2 waits while a1 is in flight; b1 does not.
        let second = receive(&c, q, 10);
        assert_eq!(
            second.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["b1"]
        );
        c.change_visibility(q, &first[0].receipt_handle, Duration::ZERO)
            .unwrap();
        let again = receive(&c, q, 10);
        assert_eq!(
            again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["a1", "a2"]
        );
        assert_eq!(again[0].receive_count, 2);
        assert!(
            c.delete_message(q, &first[0].receipt_handle).is_err(),
            "stale"
        );
        c.delete_message(q, &again[0].receipt_handle).unwrap();
        assert_eq!(c.bodies(q), ["a2", "b1"]);
    }

    #[test]
    fn faults_are_used_up_and_size_is_enforced() {
        let c = MemoryArchiveClient::new();
        c.configure("mem://done", Some(10), None);
        c.faults(|f| f.refuse_sends = 1);
        let m = OutgoingMessage::new("short");
        assert!(c.send_message("mem://done", &m).unwrap_err().is_retryable());
        c.send_message("mem://done", &m).unwrap();
        let long = OutgoingMessage::new("x".repeat(11));
        assert!(
            c.send_message("mem://done", &long)
                .unwrap_err()
                .is_permanent_refusal()
        );
        c.faults(|f| f.drop_answers = 1);
        assert!(c.send_message("mem://done", &m).is_err());
        assert_eq!(
            c.bodies("mem://done"),
            ["short", "short"],
            "carried out all the same"
        );
    }
}
