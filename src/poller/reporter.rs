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

use std::collections::HashSet;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::outcome::{self, LONGEST_VISIBILITY, Outcome};
use super::summary::Count;
use super::{Event, Poller, Report};
use crate::error::Error;
use crate::message::outgoing;
use crate::queue::{ArchiveClient, OutgoingMessage, ReceiptHandle, ReceivedMessage, SentMessage};

/// How long the reporter waits for more outcomes to fill a batch: fewer,
/// fuller calls, for a delay no one waits on (the worker has moved on).
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Settles reports as they arrive, up to 10 at a time.
pub(super) fn report(poller: &Poller, reports: Receiver<Report>, events: Sender<Event>) {
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
        let held: Vec<(String, ReceiptHandle)> = batch
            .iter()
            .filter_map(|r| Some((r.holds_group.clone()?, r.message.receipt_handle.clone())))
            .collect();
        let deleted = settle(poller, batch);
        for (group, receipt) in held {
            let kept = !deleted.contains(&receipt);
            let _ = events.send(Event::GroupSettled { group, kept });
        }
        let _ = events.send(Event::Settled(n));
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

/// Carries out a batch of outcomes: completions, then deletes; retries and
/// releases. Returns the requests whose completion was accepted (and so
/// were deleted, or tried to be); every other one stays on the queue.
pub(super) fn settle(poller: &Poller, batch: Vec<Report>) -> HashSet<ReceiptHandle> {
    let mut completing = Vec::new();
    let mut hiding = Vec::new();
    for report in batch {
        let context = report.context;
        match report.outcome {
            Outcome::Complete {
                completion,
                success,
            } => completing.push(Completing {
                message: report.message,
                context,
                completion: outcome::fit(completion, poller.completion_limit()),
                success,
            }),
            Outcome::Retry { delay, reason } => {
                log::warn!(
                    "{context}: will be retried in {} s: {reason}",
                    delay.as_secs()
                );
                poller.summary.add(Count::Retried);
                hiding.push(Hiding {
                    message: report.message,
                    context,
                    delay,
                });
            }
            Outcome::Release { reason } => {
                log::info!("{context}: returned to the queue: {reason}");
                poller.summary.add(Count::Returned);
                hiding.push(Hiding {
                    message: report.message,
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
            poller.client.as_ref(),
            &poller.completion_queue,
            &outgoing,
            poller.completion_limit(),
        );
        for (c, delivery) in completing.into_iter().zip(deliveries) {
            let delivery = match delivery {
                Delivery::Refused(e) => resend_identity(poller, &c, e),
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
                    poller.summary.add(if c.success {
                        Count::Succeeded
                    } else {
                        Count::Failed
                    });
                    delete.push((c.message, c.context));
                }
                Delivery::Refused(e) => {
                    log::error!(
                        "{}: the completion queue refuses even the smallest completion ({e}); the request is hidden for 12 h and left to the queue's redrive; its handler is not run again now",
                        c.context
                    );
                    poller.summary.add(Count::Undeliverable);
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
                    poller.summary.add(Count::Unreported);
                }
            }
        }
    }
    delete_requests(poller, &delete);
    change_visibility(poller, &hiding);
    delete.into_iter().map(|(m, _)| m.receipt_handle).collect()
}

/// Sends a refused completion again, shrunk to what identifies its request.
fn resend_identity(poller: &Poller, c: &Completing, refusal: Error) -> Delivery {
    let identity = outcome::identity(&c.completion);
    if identity == c.completion {
        return Delivery::Refused(refusal);
    }
    log::warn!(
        "{}: the completion queue refused the completion ({refusal}); sending it shrunk to the request's identity",
        c.context
    );
    match poller
        .client
        .send_message(&poller.completion_queue, &outgoing(&identity))
    {
        Ok(sent) => Delivery::Sent(sent),
        Err(e) if e.is_permanent_refusal() => Delivery::Refused(e),
        Err(e) => Delivery::NotSent(e.to_string()),
    }
}

fn delete_requests(poller: &Poller, delete: &[(ReceivedMessage, String)]) {
    for chunk in delete.chunks(10) {
        let receipts: Vec<ReceiptHandle> = chunk
            .iter()
            .map(|(m, _)| m.receipt_handle.clone())
            .collect();
        match poller
            .client
            .delete_message_batch(&poller.request_queue, &receipts)
        {
            Ok(results) => {
                for ((_, context), result) in chunk.iter().zip(results) {
                    match result {
                        Ok(()) => log::debug!("{context}: request deleted"),
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
}

fn change_visibility(poller: &Poller, hiding: &[Hiding]) {
    for chunk in hiding.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .map(|h| (h.message.receipt_handle.clone(), h.delay))
            .collect();
        match poller
            .client
            .change_visibility_batch(&poller.request_queue, &entries)
        {
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
