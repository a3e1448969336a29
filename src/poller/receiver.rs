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

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use super::outcome::Outcome;
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

/// A request received and not yet started.
struct Waiting {
    job: Job,
    /// When its visibility was last set (received or extended).
    hidden_at: Instant,
}

/// The receiver's state: what is in hand and what the queue said last.
pub(super) struct Receiving<'a> {
    poller: &'a Poller,
    options: &'a PollOptions,
    shutdown: &'a Shutdown,
    started: Instant,
    jobs: Sender<Job>,
    /// The receiver's own end of the job channel, to take back what no
    /// worker has started when the run stops.
    unstarted: Receiver<Job>,
    reports: Sender<Report>,
    asks: Option<Sender<ReceiveRequest>>,
    waiting: VecDeque<Waiting>,
    /// Standard queues: requests already in the job channel, not yet taken
    /// by a worker, and when their visibility was last set. A worker finishing
    /// one request takes the next without waiting for the receiver.
    queued: HashMap<ReceiptHandle, Instant>,
    busy_groups: HashSet<String>,
    /// Workers running a handler.
    running: usize,
    /// Requests handed out (to a worker or straight to the reporter) and not yet settled.
    unsettled: usize,
    /// A receive is on its way.
    asking: bool,
    received: u64,
    /// The last receive came back empty, and nothing has finished since.
    empty: bool,
    /// Finished and settled events so far, and their number when the
    /// receive on its way was asked for: an empty answer to a receive asked
    /// before something settled says nothing about the queue after it.
    progress: u64,
    asked_at: u64,
    /// No receive before this (after an outage, or between short polls).
    pause_until: Option<Instant>,
    outage: u32,
    /// Why no more receives are asked for; `None` while they are.
    stopped: Option<&'static str>,
    error: Option<Error>,
}

impl<'a> Receiving<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        poller: &'a Poller,
        options: &'a PollOptions,
        shutdown: &'a Shutdown,
        started: Instant,
        jobs: (Sender<Job>, Receiver<Job>),
        reports: Sender<Report>,
        asks: Sender<ReceiveRequest>,
    ) -> Receiving<'a> {
        let (jobs, unstarted) = jobs;
        Receiving {
            poller,
            options,
            shutdown,
            started,
            jobs,
            unstarted,
            reports,
            asks: Some(asks),
            waiting: VecDeque::new(),
            queued: HashMap::new(),
            busy_groups: HashSet::new(),
            running: 0,
            unsettled: 0,
            asking: false,
            received: 0,
            empty: false,
            progress: 0,
            asked_at: 0,
            pause_until: None,
            outage: 0,
            stopped: None,
            error: None,
        }
    }

    fn workers(&self) -> usize {
        self.poller.settings.workers
    }

    fn visibility(&self) -> Duration {
        Duration::from_secs(u64::from(self.poller.settings.visibility_timeout.max(1)))
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
                let code = if self.outage == 0 {
                    Exit::Ok
                } else {
                    Exit::TempFail
                };
                self.poller.write_metrics(code.as_u8());
            }
            if self.stopped.is_some() {
                self.release_waiting(|_| true, "not started before shutdown or the run's end");
                self.release_unstarted();
            }
            self.dispatch();
            self.hold_waiting();
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
        let idle =
            !self.asking && self.waiting.is_empty() && self.running == 0 && self.unsettled == 0;
        idle && (self.stopped.is_some() || (self.empty && !self.options.keep_polling))
    }

    /// Hands out every waiting request that may start, oldest first.
    fn dispatch(&mut self) {
        // FIFO groups are decided here, one request at a time; standard
        // queues fill the job channel up to the prefetch.
        let limit = if self.poller.fifo {
            self.workers()
        } else {
            2 * self.workers()
        };
        let mut i = 0;
        while self.running < limit && i < self.waiting.len() {
            let group = self.waiting[i].job.group.clone();
            if group.as_ref().is_some_and(|g| self.busy_groups.contains(g)) {
                i += 1;
                continue;
            }
            let Some(waiting) = self.waiting.remove(i) else {
                break;
            };
            if let Some(g) = group {
                self.busy_groups.insert(g);
            }
            self.running += 1;
            self.unsettled += 1;
            if !self.poller.fifo {
                self.queued.insert(
                    waiting.job.message.receipt_handle.clone(),
                    waiting.hidden_at,
                );
            }
            if self.jobs.send(waiting.job).is_err() {
                unreachable!("workers live until the job channel closes");
            }
        }
    }

    /// Takes back what is in the job channel and returns it at once.
    fn release_unstarted(&mut self) {
        while let Ok(job) = self.unstarted.try_recv() {
            // Counted as unsettled when it was handed out; no worker will finish it.
            self.running -= 1;
            self.queued.remove(&job.message.receipt_handle);
            if let Some(g) = &job.group {
                self.busy_groups.remove(g);
            }
            let _ = self.reports.send(Report {
                message: job.message,
                context: job.context,
                outcome: Outcome::Release {
                    reason: "not started before shutdown or the run's end".into(),
                },
                holds_group: None,
            });
        }
    }

    /// Extends the visibility of requests in the job channel before it runs out.
    fn hold_queued(&mut self) {
        let every = heartbeat_every(self.visibility());
        let now = Instant::now();
        let due: Vec<ReceiptHandle> = self
            .queued
            .iter()
            .filter(|(_, at)| now >= **at + every)
            .map(|(r, _)| r.clone())
            .collect();
        let visibility = self.visibility();
        for chunk in due.chunks(10) {
            let entries: Vec<_> = chunk.iter().map(|r| (r.clone(), visibility)).collect();
            if let Err(e) = self
                .poller
                .client
                .change_visibility_batch(&self.poller.request_queue, &entries)
            {
                log::warn!("cannot extend the visibility of requests about to start: {e}");
            }
            for r in chunk {
                self.queued.insert(r.clone(), now);
            }
        }
    }

    /// Extends the visibility of waiting requests before it runs out; returns
    /// those it cannot extend.
    fn hold_waiting(&mut self) {
        self.hold_queued();
        let every = heartbeat_every(self.visibility());
        let now = Instant::now();
        let due: Vec<usize> = (0..self.waiting.len())
            .filter(|i| now >= self.waiting[*i].hidden_at + every)
            .collect();
        if due.is_empty() {
            return;
        }
        let visibility = self.visibility();
        let mut lost = HashSet::new();
        for chunk in due.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .map(|i| {
                    (
                        self.waiting[*i].job.message.receipt_handle.clone(),
                        visibility,
                    )
                })
                .collect();
            let results = self
                .poller
                .client
                .change_visibility_batch(&self.poller.request_queue, &entries);
            for (n, i) in chunk.iter().enumerate() {
                let ok = match &results {
                    Ok(r) => r.get(n).is_some_and(|r| r.is_ok()),
                    Err(_) => false,
                };
                if ok {
                    self.waiting[*i].hidden_at = now;
                } else {
                    lost.insert(self.waiting[*i].job.message.receipt_handle.clone());
                }
            }
        }
        if !lost.is_empty() {
            self.release_waiting(
                |w| lost.contains(&w.job.message.receipt_handle),
                "its visibility could not be extended while it waited",
            );
        }
    }

    /// Returns waiting requests to the queue at once (visibility 0).
    fn release_waiting(&mut self, which: impl Fn(&Waiting) -> bool, reason: &str) {
        let (release, keep): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|w| which(w));
        self.waiting = keep.into();
        for w in release {
            self.unsettled += 1;
            let _ = self.reports.send(Report {
                message: w.job.message,
                context: w.job.context,
                outcome: Outcome::Release {
                    reason: reason.to_string(),
                },
                holds_group: None,
            });
        }
    }

    /// Asks for the next batch when there is room for one (or a worker has
    /// nothing to start).
    fn maybe_ask(&mut self) {
        if self.asking || self.stopped.is_some() {
            return;
        }
        if self.empty && !self.options.keep_polling {
            // Drained: look again only once something in hand finishes.
            return;
        }
        if self.pause_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let settings = &self.poller.settings;
        let capacity = 2 * self.workers();
        let room = capacity.saturating_sub(self.waiting.len() + self.running);
        let quota = self
            .options
            .max_messages
            .map_or(u64::MAX, |m| m.saturating_sub(self.received));
        let batch = (10u64)
            .min(u64::from(settings.max_number_of_messages))
            .min(quota) as usize;
        let max = batch.min(room);
        let starving = self.running < self.workers() && self.startable() == 0;
        if max == 0 || (max < batch.min(self.workers()) && !starving) {
            return;
        }
        let request = ReceiveRequest {
            max_messages: max as u32,
            // A long poll returns as soon as there is a message; the client
            // derives the call's HTTP timeout from this wait.
            wait_seconds: settings.wait_time_seconds,
            // Zero would hand a running message to the next receive at once.
            visibility_timeout: Some(settings.visibility_timeout.max(1)),
        };
        if let Some(asks) = &self.asks
            && asks.send(request).is_ok()
        {
            self.asking = true;
            self.asked_at = self.progress;
        }
    }

    /// How many waiting requests could start now.
    fn startable(&self) -> usize {
        self.waiting
            .iter()
            .filter(|w| {
                !w.job
                    .group
                    .as_ref()
                    .is_some_and(|g| self.busy_groups.contains(g))
            })
            .count()
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut at = now + Duration::from_secs(3600);
        let every = heartbeat_every(self.visibility());
        if let Some(w) = self
            .waiting
            .iter()
            .map(|w| w.hidden_at)
            .chain(self.queued.values().copied())
            .min()
        {
            at = at.min(w + every);
        }
        if let Some(t) = self.pause_until {
            at = at.min(t);
        }
        if let Some(t) = self.poller.metrics.next_due()
            && self.options.keep_polling
        {
            at = at.min(t);
        }
        if let Some(limit) = self.options.max_runtime
            && self.stopped.is_none()
        {
            at = at.min(self.started + limit);
        }
        at.max(now)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Finished => {
                self.running -= 1;
                self.empty = false;
                self.progress += 1;
            }
            Event::GroupSettled { group, kept } => {
                self.busy_groups.remove(&group);
                if kept {
                    // Its request stays on the queue: the later ones of the
                    // group must not overtake it.
                    self.release_waiting(
                        |w| w.job.group.as_ref() == Some(&group),
                        "an earlier request of its FIFO group stays on the queue",
                    );
                }
            }
            Event::Started(receipt) => {
                self.queued.remove(&receipt);
            }
            Event::Settled(n) => {
                self.unsettled -= n;
                self.empty = false;
                self.progress += 1;
            }
            Event::Received(answer) => {
                self.asking = false;
                self.on_answer(answer);
            }
        }
    }

    fn on_answer(&mut self, answer: Result<Vec<ReceivedMessage>>) {
        let messages = match answer {
            Ok(messages) => {
                self.outage = 0;
                messages
            }
            // A long-running poller rides out an outage; a cron run reports it.
            Err(e) if self.options.keep_polling && e.is_retryable() => {
                self.outage += 1;
                let pause = Duration::from_secs(5 * u64::from(self.outage.min(12)));
                log::error!(
                    "receive failed ({} in a row), trying again in {} s: {e}",
                    self.outage,
                    pause.as_secs()
                );
                self.pause_until = Some(Instant::now() + pause);
                return;
            }
            Err(e) => {
                log::error!("receive failed: {e}");
                self.error = Some(e);
                self.stop("receive failed");
                return;
            }
        };
        if messages.is_empty() {
            if self.options.keep_polling {
                if self.poller.settings.wait_time_seconds == 0 {
                    // Short polling: pause so an idle loop does not hammer the queue.
                    self.pause_until = Some(Instant::now() + Duration::from_secs(1));
                }
            } else if self.progress == self.asked_at {
                if self.waiting.is_empty() && self.running == 0 && self.unsettled == 0 {
                    log::info!("queue drained");
                }
                self.empty = true;
            }
            return;
        }
        let now = Instant::now();
        for message in messages {
            self.received += 1;
            self.poller.summary.add(Count::Received);
            if self.stopped.is_some() {
                // Came back after the run stopped: someone else may take it now.
                let context = context(&message, None);
                self.unsettled += 1;
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
                    self.waiting.push_back(Waiting {
                        job: Job {
                            message,
                            request,
                            context,
                            group,
                        },
                        hidden_at: now,
                    });
                }
                Err(e) => {
                    let context = context(&message, None);
                    log::warn!("{context}: invalid request: {e}");
                    self.poller.summary.add(Count::Invalid);
                    let completion = crate::message::failure_completion(
                        &message.body,
                        &message.message_id,
                        &e.to_string(),
                        SystemTime::now(),
                    );
                    self.unsettled += 1;
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

/// How often a held request's visibility is extended: a third of the
/// timeout leaves two chances before it runs out.
pub(super) fn heartbeat_every(visibility: Duration) -> Duration {
    (visibility / 3).max(Duration::from_millis(500))
}
