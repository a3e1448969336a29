//! An [`ArchiveClient`] that keeps its queues in memory, with injected
//! faults: the poller's outcome contract is unit-tested on it in
//! milliseconds, as ureq tests against an in-memory transport. Test builds
//! only.
//!
//! Its queues are [`QueueModel`]s, the same SQS semantics as the directory
//! queue's: visibility timeouts, receipt handles that go stale on the next
//! receive, receive counts, FIFO groups and deduplication, size limits and
//! batch rules. On top it injects faults, sets `MaximumMessageSize` and
//! `RedrivePolicy`, and keeps a log of every call for the tests to read.
//! Nothing here touches the disk or the network.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result, ServiceError};
use crate::queue::model::{self, Change, DEFAULT_VISIBILITY, QueueModel};
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, PreparedMessage, QueueAttributes, ReceiptHandle,
    ReceiveRequest, ReceivedMessage, RedrivePolicy, SentMessage, is_fifo, prepare,
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
    /// Drop the next N received messages as a client does whose MD5 check
    /// failed: not returned, counted in `damaged_received`.
    pub damage_received: u32,
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

#[derive(Debug)]
struct Queue {
    model: QueueModel,
    max_message_size: Option<u32>,
    redrive: Option<RedrivePolicy>,
}

#[derive(Debug, Default)]
struct State {
    queues: BTreeMap<String, Queue>,
    faults: Faults,
    calls: Vec<Call>,
    next: u64,
    damaged: u64,
}

impl State {
    fn queue(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.into()).or_insert_with(|| Queue {
            model: QueueModel::new(is_fifo(name)),
            max_message_size: None,
            redrive: None,
        })
    }

    fn next_id(&mut self) -> String {
        self.next += 1;
        format!("m{}", self.next)
    }

    fn take_drop(&mut self) -> bool {
        if self.faults.drop_answers > 0 {
            self.faults.drop_answers -= 1;
            true
        } else {
            false
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemoryArchiveClient {
    state: Mutex<State>,
}

fn now_ms() -> u64 {
    model::epoch_ms(SystemTime::now())
}

fn unavailable(action: &'static str) -> Error {
    Error::Service(ServiceError {
        action,
        status: 503,
        code: "ServiceUnavailable".into(),
        message: "injected".into(),
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

    /// Sets a queue's `MaximumMessageSize` and `RedrivePolicy`.
    pub fn configure(
        &self,
        queue: &str,
        max_message_size: Option<u32>,
        redrive: Option<RedrivePolicy>,
    ) {
        let mut state = self.state();
        let q = state.queue(queue);
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
            .map(|q| q.model.messages().map(|m| m.body.clone()).collect())
            .unwrap_or_default()
    }

    /// How long until each message on a queue is visible (zero when it is), by body.
    pub fn hidden_for(&self, queue: &str) -> Vec<(String, Duration)> {
        let now = now_ms();
        self.state()
            .queues
            .get(queue)
            .map(|q| {
                q.model
                    .messages()
                    .map(|m| {
                        let ms = m.visible_ms.saturating_sub(now);
                        (m.body.clone(), Duration::from_millis(ms))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes every message visible now, as if their timeouts ran out.
    pub fn expire_all(&self, queue: &str) {
        let now = now_ms();
        if let Some(q) = self.state().queues.get_mut(queue) {
            let ids: Vec<String> = q.model.messages().map(|m| m.id.clone()).collect();
            for id in ids {
                q.model.apply(&Change::Hidden {
                    id,
                    visible_ms: now,
                });
            }
        }
    }

    /// Puts a message on a queue without the faults (test set-up); its id.
    pub fn push(&self, queue: &str, body: &str, group: Option<&str>) -> String {
        let mut state = self.state();
        let id = state.next_id();
        let prepared = PreparedMessage {
            body,
            group_id: group,
            dedup_id: None,
        };
        state
            .queue(queue)
            .model
            .send(now_ms(), id.clone(), &prepared, u32::MAX)
            .expect("a pushed message fits");
        id
    }

    fn send_one(
        state: &mut State,
        queue: &str,
        message: &OutgoingMessage,
        action: &'static str,
    ) -> Result<SentMessage> {
        state.calls.push(Call::Send {
            queue: queue.into(),
            body: message.body.clone(),
        });
        let prepared = prepare(queue, message, usize::MAX)?;
        let configured = state.queue(queue).max_message_size;
        let limit = match state.faults.refuse_longer_than {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None => configured.unwrap_or(u32::MAX),
        };
        model::check_size(&message.body, limit).map_err(|r| r.into_error(action))?;
        if state.faults.refuse_sends > 0 {
            state.faults.refuse_sends -= 1;
            return Err(unavailable(action));
        }
        if let Some(text) = &state.faults.refuse_bodies_containing
            && message.body.contains(text.as_str())
        {
            return Err(unavailable(action));
        }
        let id = state.next_id();
        let (sent, _) = state
            .queue(queue)
            .model
            .send(now_ms(), id, &prepared, limit)
            .map_err(|r| r.into_error(action))?;
        if state.faults.drop_send_answers > 0 {
            state.faults.drop_send_answers -= 1;
            return Err(dropped(action));
        }
        if state.take_drop() {
            return Err(dropped(action));
        }
        Ok(sent)
    }

    fn delete_one(
        state: &mut State,
        queue: &str,
        receipt: &ReceiptHandle,
        action: &'static str,
    ) -> Result<()> {
        let q = state.queue(queue);
        let current = q.model.current(receipt).map_err(|r| r.into_error(action))?;
        let Some(id) = current.map(|m| m.id.clone()) else {
            return Ok(()); // already gone, as SQS
        };
        state.calls.push(Call::Delete {
            queue: queue.into(),
            message_id: id,
        });
        if state.faults.fail_deletes > 0 {
            state.faults.fail_deletes -= 1;
            return Err(unavailable(action));
        }
        state
            .queue(queue)
            .model
            .delete(receipt)
            .map_err(|r| r.into_error(action))?;
        if state.take_drop() {
            return Err(dropped(action));
        }
        Ok(())
    }

    fn hide(
        state: &mut State,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
        action: &'static str,
    ) -> Result<()> {
        let change = state
            .queue(queue)
            .model
            .change_visibility(now_ms(), receipt, timeout)
            .map_err(|r| r.into_error(action))?;
        let Change::Hidden { id, .. } = change else {
            unreachable!("a visibility change hides")
        };
        state.calls.push(Call::Visibility {
            queue: queue.into(),
            message_id: id,
            timeout,
        });
        if state.take_drop() {
            return Err(dropped(action));
        }
        Ok(())
    }
}

impl ArchiveClient for MemoryArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        Self::send_one(&mut self.state(), queue, message, "SendMessage")
    }

    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>> {
        let action = "SendMessageBatch";
        model::check_send_batch(messages.iter().map(|m| m.body.as_str()))
            .map_err(|r| r.into_error(action))?;
        let mut state = self.state();
        Ok(messages
            .iter()
            .map(|m| Self::send_one(&mut state, queue, m, action))
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
        let round = state.next_id();
        let hide = Duration::from_secs(u64::from(
            request.visibility_timeout.unwrap_or(DEFAULT_VISIBILITY),
        ));
        let mut n = 0;
        let mut nonce = || {
            n += 1;
            format!("r{round}-{n}")
        };
        let (out, _) = state.queue(queue).model.receive(
            now_ms(),
            request.max_messages as usize,
            hide,
            &mut nonce,
        );
        if state.take_drop() {
            return Err(dropped("ReceiveMessage"));
        }
        let mut kept = Vec::with_capacity(out.len());
        for message in out {
            if state.faults.damage_received > 0 {
                state.faults.damage_received -= 1;
                state.damaged += 1;
            } else {
                kept.push(message);
            }
        }
        Ok(kept)
    }

    fn damaged_received(&self) -> u64 {
        self.state().damaged
    }

    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        Self::delete_one(&mut self.state(), queue, receipt, "DeleteMessage")
    }

    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>> {
        let action = "DeleteMessageBatch";
        model::check_batch(receipts.len()).map_err(|r| r.into_error(action))?;
        let mut state = self.state();
        Ok(receipts
            .iter()
            .map(|r| Self::delete_one(&mut state, queue, r, action))
            .collect())
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        Self::hide(
            &mut self.state(),
            queue,
            receipt,
            timeout,
            "ChangeMessageVisibility",
        )
    }

    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>> {
        let action = "ChangeMessageVisibilityBatch";
        model::check_batch(entries.len()).map_err(|r| r.into_error(action))?;
        let mut state = self.state();
        Ok(entries
            .iter()
            .map(|(r, t)| Self::hide(&mut state, queue, r, *t, action))
            .collect())
    }

    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes> {
        let mut state = self.state();
        let q = state.queue(queue);
        Ok(QueueAttributes {
            stats: q.model.stats(now_ms()),
            maximum_message_size: q.max_message_size,
            visibility_timeout: Some(DEFAULT_VISIBILITY),
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
