//! The reporter thread: carries out outcomes in batches. Completions first,
//! and only for those the completion queue accepted, the request's deletion:
//! a request whose completion could not be sent stays on the queue.
//!
//! A completion is shrunk to the completion queue's `MaximumMessageSize`
//! before it is sent. One the queue still refuses as permanent (too long, an
//! invalid parameter: no retry can mend it) is shrunk to what identifies the
//! request and sent again; if even that is refused, the request is
//! undeliverable: logged at error level, counted, hidden for as long as SQS
//! allows and left to the queue's redrive. The handler is never run again
//! because a completion was too big.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::outcome::{self, LONGEST_VISIBILITY, Outcome};
use super::setup::Poller;
use super::summary::{Count, Summary};
use super::work::{Event, Report};
use crate::error::Error;
use crate::message::outgoing;
use crate::queue::{ArchiveClient, OutgoingMessage, ReceiptHandle, ReceivedMessage, SentMessage};

/// How long the reporter waits for more outcomes to fill a batch: fewer,
/// fuller calls, for a delay no one waits on (the worker has moved on).
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Settles reports as they arrive, up to 10 at a time.
pub(super) fn report(poller: &Poller, reports: Receiver<Report>, events: Sender<Event>) {
    let queues = Queues {
        requests: &poller.request_queue,
        completions: &poller.completion_queue,
        completion_limit: poller.completion_limit(),
    };
    while let Ok(first) = reports.recv() {
        let until = std::time::Instant::now() + BATCH_WINDOW;
        let mut batch = vec![first];
        while batch.len() < 10 {
            match reports.recv_deadline(until) {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let mut held = Vec::new();
        let outcomes: Vec<Settling> = batch
            .into_iter()
            .map(|r| {
                if let Some(group) = r.holds_group {
                    held.push((group, r.message.receipt_handle.clone()));
                }
                Settling {
                    message: r.message,
                    context: r.context,
                    outcome: r.outcome,
                }
            })
            .collect();
        let settled = settle(poller.client.as_ref(), &queues, outcomes);
        settled.count_into(&poller.summary);
        for (group, receipt) in held {
            let kept = settled.kept(&receipt);
            let _ = events.send(Event::GroupSettled { group, kept });
        }
        let _ = events.send(Event::Settled {
            count: n,
            put_back: settled.put_back(),
        });
    }
}

/// Where settling sends and deletes.
#[derive(Clone, Copy, Debug)]
pub struct Queues<'a> {
    /// The request queue: deletes and visibility changes.
    pub requests: &'a str,
    /// The completion queue: completions.
    pub completions: &'a str,
    /// The completion queue's size limit: completions are shrunk to it.
    pub completion_limit: usize,
}

/// An outcome to carry out for a request.
#[derive(Clone, Debug)]
pub struct Settling {
    pub message: ReceivedMessage,
    /// `msg <id> aipid <aipid>`, escaped, for log lines.
    pub context: String,
    pub outcome: Outcome,
}

/// What became of a batch of outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Requests whose completion the completion queue accepted, and whose
    /// deletion was then asked for; every other request stays on the queue.
    pub completed: Vec<ReceiptHandle>,
    /// Of those, the ones the request queue confirmed deleted.
    pub deleted: Vec<ReceiptHandle>,
    /// Success completions sent.
    pub succeeded: u64,
    /// Failure completions sent.
    pub failed: u64,
    /// Requests hidden for a later retry.
    pub retried: u64,
    /// Requests made visible again at once.
    pub returned: u64,
    /// Completions not sent for now; their requests stay for a retry.
    pub unreported: u64,
    /// Completions refused even at their smallest; their requests are hidden
    /// for 12 hours and left to the queue's redrive.
    pub undeliverable: u64,
}

impl Settled {
    /// Completions the completion queue accepted.
    pub fn completions_sent(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Requests left on the queue to come back, sooner or later: returned,
    /// hidden for a retry, not reported, or reported but not deleted.
    pub fn put_back(&self) -> u64 {
        let not_deleted = self.completed.len().saturating_sub(self.deleted.len()) as u64;
        self.returned + self.retried + self.unreported + not_deleted
    }

    /// True when the request stays on the queue (its completion was not
    /// accepted): a later request of its FIFO group must not overtake it.
    pub fn kept(&self, receipt: &ReceiptHandle) -> bool {
        !self.completed.contains(receipt)
    }

    /// Adds the counts to the run's summary.
    pub fn count_into(&self, summary: &Summary) {
        for (count, n) in [
            (Count::Succeeded, self.succeeded),
            (Count::Failed, self.failed),
            (Count::Retried, self.retried),
            (Count::Returned, self.returned),
            (Count::Unreported, self.unreported),
            (Count::Undeliverable, self.undeliverable),
        ] {
            summary.add_many(count, n);
        }
    }
}

/// A completion on its way, with the request it answers.
struct Completing {
    message: ReceivedMessage,
    context: String,
    completion: Value,
    success: bool,
}

/// A change of a request's visibility, with why.
struct Hiding {
    message: ReceivedMessage,
    context: String,
    delay: Duration,
}

/// What became of one completion.
enum Delivery {
    Sent(SentMessage),
    /// Refused for what it is; sending it again as it is cannot succeed.
    Refused(Error),
    /// Not sent for now (the service is unavailable, the batch failed).
    NotSent(String),
}

/// Carries out a batch of outcomes: completions, then deletes of the
/// requests whose completion was accepted, and nothing else's; retries and
/// releases. Says what was settled; every request not in
/// [`Settled::completed`] stays on the queue.
pub fn settle(client: &dyn ArchiveClient, queues: &Queues, batch: Vec<Settling>) -> Settled {
    let mut settled = Settled::default();
    let mut completing = Vec::new();
    let mut hiding = Vec::new();
    for item in batch {
        let context = item.context;
        match item.outcome {
            Outcome::Complete {
                completion,
                success,
            } => completing.push(Completing {
                message: item.message,
                context,
                completion: outcome::fit(completion, queues.completion_limit),
                success,
            }),
            Outcome::Retry { delay, reason } => {
                log::warn!(
                    "{context}: will be retried in {} s: {reason}",
                    delay.as_secs()
                );
                settled.retried += 1;
                hiding.push(Hiding {
                    message: item.message,
                    context,
                    delay,
                });
            }
            Outcome::Release { reason } => {
                log::info!("{context}: returned to the queue: {reason}");
                settled.returned += 1;
                hiding.push(Hiding {
                    message: item.message,
                    context,
                    delay: Duration::ZERO,
                });
            }
        }
    }
    let mut delete = Vec::new();
    if !completing.is_empty() {
        let outgoing: Vec<OutgoingMessage> =
            completing.iter().map(|c| outgoing(&c.completion)).collect();
        let deliveries = send_in_batches(
            client,
            queues.completions,
            &outgoing,
            queues.completion_limit,
        );
        for (c, delivery) in completing.into_iter().zip(deliveries) {
            let delivery = match delivery {
                Delivery::Refused(e) => resend_identity(client, queues.completions, &c, e),
                other => other,
            };
            match delivery {
                Delivery::Sent(sent) => {
                    log::info!(
                        "{}: completion {} sent (success: {})",
                        c.context,
                        crate::text::excerpt(&sent.message_id, 100),
                        c.success
                    );
                    if c.success {
                        settled.succeeded += 1;
                    } else {
                        settled.failed += 1;
                    }
                    delete.push((c.message, c.context));
                }
                Delivery::Refused(e) => {
                    log::error!(
                        "{}: the completion queue refuses even the smallest completion ({e}); the request is hidden for 12 h and left to the queue's redrive; its handler is not run again now",
                        c.context
                    );
                    settled.undeliverable += 1;
                    hiding.push(Hiding {
                        message: c.message,
                        context: c.context,
                        delay: LONGEST_VISIBILITY,
                    });
                }
                Delivery::NotSent(e) => {
                    // The request is kept: it comes back and is done again, which is harmless.
                    log::error!(
                        "{}: completion not sent, request kept for a retry: {e}",
                        c.context
                    );
                    settled.unreported += 1;
                }
            }
        }
    }
    settled.deleted = delete_requests(client, queues.requests, &delete);
    change_visibility(client, queues.requests, &hiding);
    settled.completed = delete.into_iter().map(|(m, _)| m.receipt_handle).collect();
    settled
}

/// Sends a refused completion again, shrunk to what identifies its request.
fn resend_identity(
    client: &dyn ArchiveClient,
    queue: &str,
    c: &Completing,
    refusal: Error,
) -> Delivery {
    let identity = outcome::identity(&c.completion);
    if identity == c.completion {
        return Delivery::Refused(refusal);
    }
    log::warn!(
        "{}: the completion queue refused the completion ({refusal}); sending it shrunk to the request's identity",
        c.context
    );
    match client.send_message(queue, &outgoing(&identity)) {
        Ok(sent) => Delivery::Sent(sent),
        Err(e) if e.is_permanent_refusal() => Delivery::Refused(e),
        Err(e) => Delivery::NotSent(e.to_string()),
    }
}

/// Deletes the requests; those the queue confirmed deleted.
fn delete_requests(
    client: &dyn ArchiveClient,
    queue: &str,
    delete: &[(ReceivedMessage, String)],
) -> Vec<ReceiptHandle> {
    let mut deleted = Vec::new();
    for chunk in delete.chunks(10) {
        let receipts: Vec<ReceiptHandle> = chunk
            .iter()
            .map(|(m, _)| m.receipt_handle.clone())
            .collect();
        match client.delete_message_batch(queue, &receipts) {
            Ok(results) => {
                for ((message, context), result) in chunk.iter().zip(results) {
                    match result {
                        Ok(()) => {
                            log::debug!("{context}: request deleted");
                            deleted.push(message.receipt_handle.clone());
                        }
                        Err(e) => log::warn!(
                            "{context}: completed but not deleted; it may be done again: {e}"
                        ),
                    }
                }
            }
            Err(e) => log::warn!(
                "{} completed requests not deleted; they may be done again: {e}",
                chunk.len()
            ),
        }
    }
    deleted
}

fn change_visibility(client: &dyn ArchiveClient, queue: &str, hiding: &[Hiding]) {
    for chunk in hiding.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .map(|h| (h.message.receipt_handle.clone(), h.delay))
            .collect();
        match client.change_visibility_batch(queue, &entries) {
            Ok(results) => {
                for (h, result) in chunk.iter().zip(results) {
                    if let Err(e) = result {
                        log::warn!(
                            "{}: visibility not changed (it returns after its timeout): {e}",
                            h.context
                        );
                    }
                }
            }
            Err(e) => log::warn!(
                "visibility of {} requests not changed (they return after their timeout): {e}",
                chunk.len()
            ),
        }
    }
}

/// Sends messages in batches of at most 10 and at most `max_bytes` in all;
/// deliveries in input order. A batch refused as a whole for what it holds
/// is sent again one by one, so one bad entry does not condemn the others.
fn send_in_batches(
    client: &dyn ArchiveClient,
    queue: &str,
    messages: &[OutgoingMessage],
    max_bytes: usize,
) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(messages.len());
    let mut start = 0;
    while start < messages.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < messages.len()
            && end - start < 10
            && (end == start || bytes + messages[end].body.len() <= max_bytes)
        {
            bytes += messages[end].body.len();
            end += 1;
        }
        let chunk = &messages[start..end];
        if chunk.len() == 1 {
            out.push(deliver(client.send_message(queue, &chunk[0])));
        } else {
            match client.send_message_batch(queue, chunk) {
                Ok(results) => {
                    out.extend(results.into_iter().map(deliver));
                    // A short answer leaves the rest unknown: not sent.
                    while out.len() < end {
                        out.push(Delivery::NotSent("no answer for this entry".into()));
                    }
                }
                Err(e) if e.is_permanent_refusal() => {
                    out.extend(chunk.iter().map(|m| deliver(client.send_message(queue, m))));
                }
                Err(e) => {
                    let text = e.to_string();
                    out.extend(chunk.iter().map(|_| Delivery::NotSent(text.clone())));
                }
            }
        }
        out.truncate(end);
        start = end;
    }
    out
}

fn deliver(result: crate::error::Result<SentMessage>) -> Delivery {
    match result {
        Ok(sent) => Delivery::Sent(sent),
        Err(e) if e.is_permanent_refusal() => Delivery::Refused(e),
        Err(e) => Delivery::NotSent(e.to_string()),
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The guarantee where it lives: a request is deleted only after its
    //! completion was accepted. Each test settles one batch against the
    //! in-memory client with a fault and reads the calls it made.

    use std::time::{SystemTime, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::queue::ReceiveRequest;
    use crate::queue::memory::{Call, MemoryArchiveClient};

    const REQ: &str = "mem://req";
    const DONE: &str = "mem://done";

    fn queues(requests: &'static str) -> Queues<'static> {
        Queues {
            requests,
            completions: DONE,
            completion_limit: 262_144,
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_856_051)
    }

    /// Puts requests for these aipids on `queue` (in groups when given) and
    /// receives them.
    fn received(
        client: &MemoryArchiveClient,
        queue: &str,
        aipids: &[(&str, Option<&str>)],
    ) -> Vec<ReceivedMessage> {
        for (aipid, group) in aipids {
            let body = json!({"action": "archive", "aipid": aipid, "filenames": ["x"],
                              "timestamp": "2026-11-28T00:00:00Z"});
            client.push(queue, &body.to_string(), *group);
        }
        let mut out = Vec::new();
        while out.len() < aipids.len() {
            let got = client
                .receive_messages(
                    queue,
                    &ReceiveRequest {
                        max_messages: 10,
                        wait_seconds: 0,
                        visibility_timeout: Some(30),
                    },
                )
                .unwrap();
            assert!(
                !got.is_empty(),
                "only {} of {} received",
                out.len(),
                aipids.len()
            );
            out.extend(got);
        }
        out
    }

    fn complete(message: &ReceivedMessage) -> Settling {
        let request: Value = serde_json::from_str(&message.body).unwrap();
        let note = "archived 0 file(s)";
        Settling {
            context: format!("msg {}", message.message_id),
            outcome: Outcome::Complete {
                completion: crate::message::success_completion(
                    &request,
                    &message.message_id,
                    note,
                    json!({"files": []}),
                    now(),
                ),
                success: true,
            },
            message: message.clone(),
        }
    }

    /// A success completion whose result holds `bytes` bytes.
    fn big(message: &ReceivedMessage, bytes: usize) -> Settling {
        let mut item = complete(message);
        if let Outcome::Complete { completion, .. } = &mut item.outcome {
            completion["result"] = json!({"blob": "x".repeat(bytes)});
        }
        item
    }

    fn with(message: &ReceivedMessage, outcome: Outcome) -> Settling {
        Settling {
            context: format!("msg {}", message.message_id),
            outcome,
            message: message.clone(),
        }
    }

    /// Settles a success completion for each message, on `REQ`.
    fn complete_all(client: &MemoryArchiveClient, messages: &[ReceivedMessage]) -> Settled {
        settle(
            client,
            &queues(REQ),
            messages.iter().map(complete).collect(),
        )
    }

    /// How many sends the client saw.
    fn sends(client: &MemoryArchiveClient) -> usize {
        client
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Send { .. }))
            .count()
    }

    /// Visibility changes, by message id (also read by the contract tests).
    pub(in crate::poller) fn visibility(client: &MemoryArchiveClient) -> Vec<(String, Duration)> {
        client
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Visibility {
                    message_id,
                    timeout,
                    ..
                } => Some((message_id, timeout)),
                _ => None,
            })
            .collect()
    }

    /// The message ids deleted, in call order.
    fn deletes(client: &MemoryArchiveClient) -> Vec<String> {
        client
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Delete { message_id, .. } => Some(message_id),
                _ => None,
            })
            .collect()
    }

    /// Every delete of a request comes after an accepted send of its completion.
    fn assert_sent_before_deleted(client: &MemoryArchiveClient) {
        let calls = client.calls();
        let accepted: Vec<String> = client.bodies(DONE);
        for (at, call) in calls.iter().enumerate() {
            let Call::Delete { message_id, .. } = call else {
                continue;
            };
            let sent = calls[..at].iter().any(|c| match c {
                Call::Send { body, .. } => {
                    accepted.contains(body)
                        && serde_json::from_str::<Value>(body).unwrap()["request_message_id"]
                            == json!(message_id)
                }
                _ => false,
            });
            assert!(
                sent,
                "{message_id} deleted before its completion: {calls:?}"
            );
        }
    }

    #[test]
    fn an_accepted_completion_is_sent_then_its_request_deleted() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None), ("a2", None)]);
        let settled = complete_all(&client, &messages);
        assert_eq!(settled.completions_sent(), 2);
        assert_eq!(settled.succeeded, 2);
        let receipts: Vec<_> = messages.iter().map(|m| m.receipt_handle.clone()).collect();
        assert_eq!(settled.completed, receipts);
        assert_eq!(settled.deleted, receipts);
        assert!(client.bodies(REQ).is_empty());
        assert_eq!(client.bodies(DONE).len(), 2);
        assert_sent_before_deleted(&client);
    }

    #[test]
    fn a_refused_completion_means_no_delete() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None)]);
        client.faults(|f| f.refuse_sends = 10);
        let settled = complete_all(&client, &messages);
        assert_eq!(
            settled,
            Settled {
                unreported: 1,
                ..Settled::default()
            }
        );
        assert!(settled.kept(&messages[0].receipt_handle));
        assert!(deletes(&client).is_empty(), "{:?}", client.calls());
        assert_eq!(client.bodies(REQ).len(), 1);
    }

    #[test]
    fn a_lost_answer_to_a_completion_keeps_its_request() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None)]);
        client.faults(|f| f.drop_send_answers = 1);
        let settled = complete_all(&client, &messages);
        assert_eq!(settled.unreported, 1);
        assert_eq!(client.bodies(DONE).len(), 1, "it did arrive");
        assert!(deletes(&client).is_empty());
    }

    #[test]
    fn a_partial_batch_failure_deletes_only_the_accepted_entries() {
        let client = MemoryArchiveClient::new();
        let aipids = [("a1", None), ("bad2", None), ("a3", None), ("bad4", None)];
        let messages = received(&client, REQ, &aipids);
        client.faults(|f| f.refuse_bodies_containing = Some("\"aipid\":\"bad".into()));
        let settled = complete_all(&client, &messages);
        // One SendMessageBatch of four entries, two of them failed.
        assert_eq!(sends(&client), 4);
        assert_eq!((settled.succeeded, settled.unreported), (2, 2));
        let ids = |pick: &[usize]| -> Vec<String> {
            pick.iter()
                .map(|i| messages[*i].message_id.clone())
                .collect()
        };
        assert_eq!(deletes(&client), ids(&[0, 2]));
        assert_eq!(
            settled.completed,
            [
                messages[0].receipt_handle.clone(),
                messages[2].receipt_handle.clone()
            ]
        );
        let left = client.bodies(REQ);
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|b| b.contains("bad")), "{left:?}");
        assert_sent_before_deleted(&client);
    }

    #[test]
    fn a_failed_delete_is_reported_but_the_completion_stands() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None), ("a2", None)]);
        client.faults(|f| f.fail_deletes = 1);
        let settled = complete_all(&client, &messages);
        assert_eq!(settled.completed.len(), 2);
        assert_eq!(settled.deleted, [messages[1].receipt_handle.clone()]);
        assert_eq!(
            client.bodies(REQ).len(),
            1,
            "it comes back and is done again"
        );
    }

    #[test]
    fn a_permanent_refusal_is_resent_as_the_identity_then_undeliverable() {
        // Refused as too long: sent again as the request's identity.
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None)]);
        let item = big(&messages[0], 2000);
        client.faults(|f| f.refuse_longer_than = Some(600));
        let settled = settle(&client, &queues(REQ), vec![item]);
        assert_eq!(settled.succeeded, 1);
        let sent = client.bodies(DONE);
        assert_eq!(sent.len(), 1);
        let identity: Value = serde_json::from_str(&sent[0]).unwrap();
        assert_eq!(
            (&identity["aipid"], &identity["truncated"]),
            (&json!("a1"), &json!(true))
        );
        assert_eq!(deletes(&client), [messages[0].message_id.clone()]);
        assert_sent_before_deleted(&client);

        // Refused even so: undeliverable, hidden for 12 hours, not deleted.
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None)]);
        client.faults(|f| f.refuse_longer_than = Some(0));
        let settled = complete_all(&client, &messages);
        assert_eq!(
            settled,
            Settled {
                undeliverable: 1,
                ..Settled::default()
            }
        );
        assert_eq!(sends(&client), 2, "the completion, then its identity");
        assert!(deletes(&client).is_empty());
        assert_eq!(
            client.calls().last(),
            Some(&Call::Visibility {
                queue: REQ.into(),
                message_id: messages[0].message_id.clone(),
                timeout: LONGEST_VISIBILITY,
            })
        );
    }

    #[test]
    fn retries_and_releases_change_visibility_only() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None), ("a2", None)]);
        let settled = settle(
            &client,
            &queues(REQ),
            vec![
                with(
                    &messages[0],
                    Outcome::Retry {
                        delay: Duration::from_secs(40),
                        reason: "exit 1".into(),
                    },
                ),
                with(
                    &messages[1],
                    Outcome::Release {
                        reason: "shutdown".into(),
                    },
                ),
            ],
        );
        assert_eq!((settled.retried, settled.returned), (1, 1));
        assert!(settled.completed.is_empty());
        let hidden = visibility(&client);
        assert_eq!(
            hidden,
            [
                (messages[0].message_id.clone(), Duration::from_secs(40)),
                (messages[1].message_id.clone(), Duration::ZERO)
            ]
        );
        assert!(deletes(&client).is_empty());
        assert!(client.bodies(DONE).is_empty());
    }

    #[test]
    fn fifo_group_settlement_keeps_what_stays_on_the_queue() {
        // Three groups: a completed, b retried, c whose completion is refused.
        const FIFO: &str = "mem://req.fifo";
        let client = MemoryArchiveClient::new();
        let messages = received(
            &client,
            FIFO,
            &[("a1", Some("a")), ("b1", Some("b")), ("c1", Some("c"))],
        );
        client.faults(|f| f.refuse_bodies_containing = Some("\"aipid\":\"c1\"".into()));
        let settled = settle(
            &client,
            &queues(FIFO),
            vec![
                complete(&messages[0]),
                with(
                    &messages[1],
                    Outcome::Retry {
                        delay: Duration::from_secs(10),
                        reason: "exit 1".into(),
                    },
                ),
                complete(&messages[2]),
            ],
        );
        let kept: Vec<bool> = messages
            .iter()
            .map(|m| settled.kept(&m.receipt_handle))
            .collect();
        assert_eq!(kept, [false, true, true]);
        assert_eq!(deletes(&client), [messages[0].message_id.clone()]);
        assert_sent_before_deleted(&client);
    }

    #[test]
    fn completions_are_fitted_to_the_completion_queue() {
        let client = MemoryArchiveClient::new();
        let messages = received(&client, REQ, &[("a1", None)]);
        let item = big(&messages[0], 5000);
        let settled = settle(
            &client,
            &Queues {
                completion_limit: 1024,
                ..queues(REQ)
            },
            vec![item],
        );
        assert_eq!(settled.succeeded, 1);
        let sent = client.bodies(DONE);
        assert!(sent[0].len() <= 1024, "{}", sent[0].len());
        assert_eq!(deletes(&client).len(), 1);
    }
}
