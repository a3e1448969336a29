//! A worker thread: runs one handler at a time ([`supervise::run`]), keeps
//! its request hidden while it runs, and turns its ending into an
//! [`Outcome`] for the reporter.

use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::outcome::{self, Ending, Outcome, Run};
use super::setup::Poller;
use super::shutdown::Alarm;
use super::shutdown::Shutdown;
use super::slots::Slot;
use super::supervise::{self, Spec};
use super::work::{Event, Job, Report};
use crate::queue::{ArchiveClient, ReceiptHandle};
use crate::subprocess::Hooks;

/// The channels a worker talks through.
pub(super) struct Channels {
    pub jobs: Receiver<Job>,
    pub reports: Sender<Report>,
    pub events: Sender<Event>,
    /// Closed when the run stops receiving.
    pub stopped: Receiver<()>,
    /// A token here: one idle worker is no longer needed (the queue is drained).
    pub retire: Receiver<()>,
}

/// Runs jobs in its handler slot until the job channel closes, or, idle,
/// until the run stops receiving or retires it (the queue is drained and
/// fewer workers can finish what is in hand); the slot is given back when
/// it returns.
pub(super) fn work(poller: &Poller, channels: Channels, shutdown: &Shutdown, slot: Slot) {
    let Channels {
        jobs,
        reports,
        events,
        stopped,
        retire,
    } = channels;
    let alarm = shutdown.alarm();
    let run_stopped = || {
        matches!(
            stopped.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    };
    loop {
        let job = crossbeam_channel::select! {
            recv(jobs) -> job => match job {
                Ok(job) => job,
                Err(_) => break,
            },
            recv(stopped) -> _ => break,
            recv(retire) -> _ => break,
        };
        if !poller.fifo {
            let _ = events.send(Event::Started(job.message.receipt_handle.clone()));
        }
        let outcome = if shutdown.stopping() || run_stopped() {
            Outcome::Release {
                reason: "not started before shutdown or the run's end".into(),
            }
        } else {
            handle(poller, &job, shutdown, alarm.as_ref())
        };
        let _ = reports.send(Report {
            message: job.message,
            context: job.context,
            outcome,
            holds_group: job.group,
        });
        let _ = events.send(Event::Finished);
    }
    log::debug!("handler slot {} given back", slot.index);
}

fn handle(poller: &Poller, job: &Job, shutdown: &Shutdown, alarm: Option<&Alarm>) -> Outcome {
    let message = &job.message;
    let context = &job.context;
    let aipid = job
        .request
        .get("aipid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut set_env = poller.handler_env.clone();
    set_env.push(("SQS_MESSAGE_ID".into(), message.message_id.clone()));
    set_env.push((
        "SQS_RECEIVE_COUNT".into(),
        message.receive_count.to_string(),
    ));
    let settings = &poller.settings;
    let spec = Spec {
        launcher: &poller.launcher,
        argv: &poller.handler,
        aipid,
        body: &message.body,
        set_env,
        remove_env: &poller.remove_env,
        timeout: settings.handler_timeout,
        kill_grace: settings.kill_grace,
        context,
    };
    let mut heartbeat = Heartbeat {
        client: poller.client.as_ref(),
        queue: &poller.request_queue,
        receipt: &message.receipt_handle,
        visibility: poller.visibility(),
        every: poller.heartbeat_every(),
        shutdown,
        alarm,
        context,
    };
    let finished = supervise::run(&spec, &mut heartbeat);
    poller.metrics.handler_finished(finished.elapsed);
    if let Ending::SpawnFailed(e) = &finished.ending {
        shutdown.fail(format!(
            "handler {} cannot be started: {e}",
            crate::text::quoted(&poller.handler[0], 200)
        ));
    }
    log::debug!(
        "{context}: handler ended {:?} after {} ms",
        finished.ending,
        finished.elapsed.as_millis()
    );
    let run = Run {
        message_id: &message.message_id,
        body: &message.body,
        request: &job.request,
        receive_count: message.receive_count,
        ending: finished.ending.clone(),
        stdout: &finished.stdout,
        stderr_tail: &finished.stderr_tail,
    };
    let outcome = outcome::decide(&run, &poller.rules(), SystemTime::now());
    if let Some(line) = outcome::failure_line(context, &outcome) {
        // A permanent failure reaches a person: WARN passes --quiet (cron
        // mails it; journald files it at priority 4).
        log::warn!("{line}");
    }
    if let Outcome::Complete {
        completion,
        success: true,
    } = &outcome
        && completion["result"].get("unparsed_stdout").is_some()
    {
        if finished.stdout_truncated {
            log::warn!(
                "{context}: the handler succeeded but wrote more than {} MiB; kept the start as result.unparsed_stdout",
                supervise::MAX_STDOUT >> 20
            );
        } else {
            log::warn!(
                "{context}: the handler succeeded but its output is not JSON; kept as result.unparsed_stdout"
            );
        }
    }
    outcome
}

/// Keeps a running request hidden, and tells the handler when to stop.
struct Heartbeat<'a> {
    client: &'a dyn ArchiveClient,
    queue: &'a str,
    receipt: &'a ReceiptHandle,
    visibility: Duration,
    every: Duration,
    shutdown: &'a Shutdown,
    alarm: Option<&'a Alarm>,
    context: &'a str,
}

impl Hooks for Heartbeat<'_> {
    fn tick(&mut self) {
        match self
            .client
            .change_visibility(self.queue, self.receipt, self.visibility)
        {
            Ok(()) => log::debug!(
                "{}: visibility extended by {} s",
                self.context,
                self.visibility.as_secs()
            ),
            Err(e) => log::warn!(
                "{}: cannot extend visibility; the request may be delivered again: {e}",
                self.context
            ),
        }
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(self.every)
    }

    fn stop_at(&self) -> Option<Instant> {
        self.shutdown.kill_at()
    }

    fn wake_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.alarm.map(Alarm::fd)
    }

    fn woken(&mut self) {
        if let Some(alarm) = self.alarm {
            alarm.clear();
        }
    }
}
