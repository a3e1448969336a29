//! The receiver: asks the queue for requests, holds a small prefetch, and
//! hands requests to idle workers.
//!
//! It keeps the workers fed: the next receive is asked for (on its own
//! thread, so handing out never waits for a round trip) while workers still
//! run, as soon as there is room for a batch. At most `workers` requests wait
//! beside the `workers` running ones; their visibility is extended like a
//! running request's, and on shutdown they are returned at once (visibility 0).
//!
//! On a FIFO queue, two requests of one `MessageGroupId` never run at once,
//! and they run in the order received: a later one waits (visibility
//! extended) while an earlier one runs, and is returned at once when the
//! earlier one stays on the queue (a retry), so the queue hands them out
//! again in order.

use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use super::in_hand::InHand;
use super::outcome::Outcome;
use super::pace::Pace;
use super::setup::{PollOptions, Poller};
use super::shutdown::Shutdown;
use super::summary::Count;
use super::work::{Event, Job, Report, context};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::queue::{ReceiptHandle, ReceiveRequest, ReceivedMessage};

/// The receive thread: one call per ask, each answer sent back as an event.
pub(super) fn receive_thread(
    poller: &Poller,
    asks: Receiver<ReceiveRequest>,
    events: Sender<Event>,
) {
    for request in asks {
        let answer = poller
            .client
            .receive_messages(&poller.request_queue, &request);
        if events.send(Event::Received(answer)).is_err() {
            break;
        }
    }
}

/// The channels the receiver talks through.
pub(super) struct Channels {
    pub jobs: Sender<Job>,
    /// The receiver's own end of the job channel, to take back what no
    /// worker has started when the run stops.
    pub unstarted: Receiver<Job>,
    pub reports: Sender<Report>,
    pub asks: Sender<ReceiveRequest>,
    /// Dropped when the run stops receiving: idle workers end then, giving
    /// their handler slot back to the host.
    pub stop_workers: Sender<()>,
    /// One token per idle worker to end (the queue is drained and fewer can
    /// finish what is in hand).
    pub retire_workers: Sender<()>,
}

/// The receiver's state: what is in hand, the pace of receives, and why it stops.
pub(super) struct Receiving<'a> {
    poller: &'a Poller,
    options: &'a PollOptions,
    shutdown: &'a Shutdown,
    started: Instant,
    jobs: Sender<Job>,
    unstarted: Receiver<Job>,
    reports: Sender<Report>,
    asks: Option<Sender<ReceiveRequest>>,
    stop_workers: Option<Sender<()>>,
    retire_workers: Sender<()>,
    /// Worker threads of this run still working (one per handler slot held).
    workers: usize,
    hand: InHand,
    pace: Pace,
    received: u64,
    /// Why no more receives are asked for; `None` while they are.
    stopped: Option<&'static str>,
    error: Option<Error>,
}

impl<'a> Receiving<'a> {
    pub(super) fn new(
        poller: &'a Poller,
        options: &'a PollOptions,
        shutdown: &'a Shutdown,
        started: Instant,
        workers: usize,
        channels: Channels,
    ) -> Receiving<'a> {
        Receiving {
            poller,
            options,
            shutdown,
            started,
            jobs: channels.jobs,
            unstarted: channels.unstarted,
            reports: channels.reports,
            asks: Some(channels.asks),
            stop_workers: Some(channels.stop_workers),
            retire_workers: channels.retire_workers,
            workers,
            hand: InHand::default(),
            pace: Pace::default(),
            received: 0,
            stopped: None,
            error: None,
        }
    }

    fn workers(&self) -> usize {
        self.workers
    }

    /// Runs until the queue is drained (or the options or a signal say stop)
    /// and everything in hand is settled.
    pub(super) fn run(mut self, events: &Receiver<Event>, wake: &Receiver<()>) -> Result<()> {
        loop {
            if self.shutdown.stopping() && self.stopped.is_none() {
                self.stop("shutting down");
            }
            self.check_limits();
            if self.options.keep_polling && self.poller.metrics.due() {
                // A loop that rides out an outage is not a success.
                let code = if self.pace.outage() == 0 {
                    Exit::Ok
                } else {
                    Exit::TempFail
                };
                self.poller.write_metrics(code.as_u8());
            }
            if self.stopped.is_some() {
                let jobs = self.hand.release(|_| true);
                self.return_jobs(jobs, "not started before shutdown or the run's end");
                self.release_unstarted();
            }
            self.retire_idle();
            self.dispatch();
            self.hold_in_hand();
            self.maybe_ask();
            if self.finished() {
                break;
            }
            let wake_at = self.next_wake();
            crossbeam_channel::select! {
                recv(events) -> event => match event {
                    Ok(event) => self.on_event(event),
                    Err(_) => break,
                },
                recv(wake) -> _ => {}
                default(wake_at.saturating_duration_since(Instant::now())) => {}
            }
        }
        // Closing the ask channel ends the receive thread.
        self.asks = None;
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stop(&mut self, why: &'static str) {
        if self.stopped.is_none() {
            log::info!("{why}; no new requests");
            self.stopped = Some(why);
            // Idle workers end now and give their handler slot back, so a
            // later run is not kept waiting by this one's long handlers.
            self.stop_workers = None;
        }
    }

    /// A drained queue needs no more workers than what is in hand may use:
    /// the others end and give their handler slot back, so a later run can
    /// start while this one's long handlers finish.
    fn retire_idle(&mut self) {
        if self.options.keep_polling || self.stopped.is_some() || !self.pace.drained() {
            return;
        }
        let needed = self.hand.may_need_workers().min(self.workers);
        let surplus = self.workers - needed;
        if surplus > 0 {
            log::debug!("queue drained: {surplus} idle workers give their handler slot back");
            for _ in 0..surplus {
                let _ = self.retire_workers.send(());
            }
            self.workers = needed;
        }
    }

    fn check_limits(&mut self) {
        if self.stopped.is_some() {
            return;
        }
        if self
            .options
            .max_runtime
            .is_some_and(|limit| self.started.elapsed() >= limit)
        {
            self.stop("--max-runtime reached");
        } else if self
            .options
            .max_messages
            .is_some_and(|m| self.received >= m)
        {
            self.stop("--max-messages reached");
        }
    }

    fn finished(&self) -> bool {
        let idle = !self.pace.asking() && self.hand.idle();
        idle && (self.stopped.is_some() || (self.pace.drained() && !self.options.keep_polling))
    }

    /// Hands out every waiting request that may start, oldest first.
    fn dispatch(&mut self) {
        // FIFO groups are decided here, one request at a time; standard
        // queues fill the job channel up to the prefetch.
        let fifo = self.poller.fifo;
        let limit = if fifo {
            self.workers()
        } else {
            2 * self.workers()
        };
        while let Some(job) = self.hand.next_to_start(limit, !fifo) {
            if self.jobs.send(job).is_err() {
                unreachable!("workers live until the job channel closes");
            }
        }
    }

    /// Takes back what is in the job channel and returns it at once.
    fn release_unstarted(&mut self) {
        while let Ok(job) = self.unstarted.try_recv() {
            // Counted as unsettled when it was handed out; no worker will finish it.
            self.hand.take_back(&job);
            self.send_release(job, "not started before shutdown or the run's end");
        }
    }

    /// Extends the visibility of requests in hand (waiting, or in the job
    /// channel) before it runs out; returns the waiting ones it cannot extend.
    fn hold_in_hand(&mut self) {
        let every = self.poller.heartbeat_every();
        let now = Instant::now();
        // Requests about to start: tried once a period, whatever the answer
        // (a worker takes them soon and its heartbeat takes over).
        let queued = self.hand.queued_due(now, every);
        self.extend(&queued);
        self.hand.hidden(&queued, now);
        let waiting = self.hand.waiting_due(now, every);
        let lost = self.extend(&waiting);
        let held: Vec<ReceiptHandle> = waiting.into_iter().filter(|r| !lost.contains(r)).collect();
        self.hand.hidden(&held, now);
        if !lost.is_empty() {
            let jobs = self
                .hand
                .release(|w| lost.contains(&w.job.message.receipt_handle));
            self.return_jobs(jobs, "its visibility could not be extended while it waited");
        }
    }

    /// Extends these requests' visibility; those it could not extend.
    fn extend(&self, receipts: &[ReceiptHandle]) -> Vec<ReceiptHandle> {
        let visibility = self.poller.visibility();
        let mut lost = Vec::new();
        for chunk in receipts.chunks(10) {
            let entries: Vec<_> = chunk.iter().map(|r| (r.clone(), visibility)).collect();
            let results = self
                .poller
                .client
                .change_visibility_batch(&self.poller.request_queue, &entries);
            if let Err(e) = &results {
                log::warn!("cannot extend the visibility of requests in hand: {e}");
            }
            for (n, r) in chunk.iter().enumerate() {
                let ok = match &results {
                    Ok(results) => results.get(n).is_some_and(|r| r.is_ok()),
                    Err(_) => false,
                };
                if !ok {
                    lost.push(r.clone());
                }
            }
        }
        lost
    }

    /// Returns requests taken from the waiting ones to the queue at once (visibility 0).
    fn return_jobs(&mut self, jobs: Vec<Job>, reason: &str) {
        for job in jobs {
            self.send_release(job, reason);
        }
    }

    fn send_release(&self, job: Job, reason: &str) {
        let _ = self.reports.send(Report {
            message: job.message,
            context: job.context,
            outcome: Outcome::Release {
                reason: reason.to_string(),
            },
            holds_group: None,
        });
    }

    /// Asks for the next batch when there is room for one (or a worker has
    /// nothing to start).
    fn maybe_ask(&mut self) {
        if self.stopped.is_some() || !self.pace.may_ask(self.options.keep_polling, Instant::now()) {
            return;
        }
        let settings = &self.poller.settings;
        let quota = self
            .options
            .max_messages
            .map_or(u64::MAX, |m| m.saturating_sub(self.received));
        let batch = (10u64)
            .min(u64::from(settings.max_number_of_messages))
            .min(quota) as usize;
        let Some(max) = self.hand.ask_size(self.workers(), batch) else {
            return;
        };
        let request = ReceiveRequest {
            max_messages: max as u32,
            // A long poll returns as soon as there is a message; the client
            // derives the call's HTTP timeout from this wait.
            wait_seconds: settings.wait_time_seconds,
            // Zero would hand a running message to the next receive at once.
            visibility_timeout: Some(self.poller.visibility().as_secs() as u32),
        };
        if let Some(asks) = &self.asks
            && asks.send(request).is_ok()
        {
            self.pace.asked();
        }
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let every = self.poller.heartbeat_every();
        let at = [
            Some(now + Duration::from_secs(3600)),
            self.hand.next_due(every),
            self.pace.paused_until(),
            self.poller
                .metrics
                .next_due()
                .filter(|_| self.options.keep_polling),
            self.options
                .max_runtime
                .filter(|_| self.stopped.is_none())
                .map(|limit| self.started + limit),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
        at.max(now)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            // A finished request is not back on the queue: its settlement says.
            Event::Finished => self.hand.finished(),
            Event::GroupSettled { group, kept } => {
                // When its request stays on the queue, the later ones of the
                // group must not overtake it.
                let jobs = self.hand.group_settled(&group, kept);
                self.return_jobs(
                    jobs,
                    "an earlier request of its FIFO group stays on the queue",
                );
            }
            Event::Started(receipt) => self.hand.started(&receipt),
            Event::Settled { count, put_back } => {
                self.hand.settled(count);
                // On a FIFO queue a deletion unblocks the rest of its group.
                if put_back > 0 || self.poller.fifo {
                    self.pace.put_back();
                }
            }
            Event::Received(answer) => self.on_answer(answer),
        }
    }

    fn on_answer(&mut self, answer: Result<Vec<ReceivedMessage>>) {
        let messages = match answer {
            Ok(messages) if messages.is_empty() => {
                let short_poll = self.poller.settings.wait_time_seconds == 0;
                let drained =
                    self.pace
                        .answered_empty(self.options.keep_polling, short_poll, Instant::now());
                if drained {
                    log::info!("queue drained; finishing what is in hand");
                }
                return;
            }
            Ok(messages) => {
                self.pace.answered();
                messages
            }
            // A long-running poller rides out an outage; a cron run reports it.
            Err(e) if self.options.keep_polling && e.is_retryable() => {
                let pause = self.pace.failed(Instant::now());
                log::error!(
                    "receive failed ({} in a row), trying again in {} s: {e}",
                    self.pace.outage(),
                    pause.as_secs()
                );
                return;
            }
            Err(e) => {
                self.pace.failed(Instant::now());
                log::error!("receive failed: {e}");
                self.error = Some(e);
                self.stop("receive failed");
                return;
            }
        };
        let now = Instant::now();
        for message in messages {
            self.received += 1;
            self.poller.summary.add(Count::Received);
            if self.stopped.is_some() {
                // Came back after the run stopped: someone else may take it now.
                let context = context(&message, None);
                self.hand.reported();
                let _ = self.reports.send(Report {
                    message,
                    context,
                    outcome: Outcome::Release {
                        reason: "received after the run stopped".into(),
                    },
                    holds_group: None,
                });
                continue;
            }
            match self.poller.schema.parse(&message.body) {
                Ok(request) => {
                    let context = context(&message, Some(&request));
                    log::debug!(
                        "{context}: received (receive count {})",
                        message.receive_count
                    );
                    let group = if self.poller.fifo {
                        message.attributes.get("MessageGroupId").cloned()
                    } else {
                        None
                    };
                    self.hand.receive(
                        Job {
                            message,
                            request,
                            context,
                            group,
                        },
                        now,
                    );
                }
                Err(e) => {
                    let context = context(&message, None);
                    // Its one WARN line (passes --quiet), like a failed request's.
                    log::warn!(
                        "{context}: request invalid: {}; a failure completion is sent",
                        crate::text::excerpt(&e.to_string(), 500)
                    );
                    self.poller.summary.add(Count::Invalid);
                    let completion = crate::message::failure_completion(
                        &message.body,
                        &message.message_id,
                        &e.to_string(),
                        SystemTime::now(),
                    );
                    self.hand.reported();
                    let _ = self.reports.send(Report {
                        message,
                        context,
                        outcome: Outcome::Complete {
                            completion,
                            success: false,
                        },
                        holds_group: None,
                    });
                }
            }
        }
    }
}
