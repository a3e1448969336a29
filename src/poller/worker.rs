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
use super::supervise::{self, Spec};
use super::work::{Event, Job, Report};
use crate::queue::{ArchiveClient, ReceiptHandle};
use crate::subprocess::Hooks;

/// Runs jobs until the job channel closes.
pub(super) fn work(
    poller: &Poller,
    jobs: Receiver<Job>,
    reports: Sender<Report>,
    events: Sender<Event>,
    shutdown: &Shutdown,
) {
    let alarm = shutdown.alarm();
    for job in jobs {
        if !poller.fifo {
            let _ = events.send(Event::Started(job.message.receipt_handle.clone()));
        }
        let outcome = if shutdown.stopping() {
            Outcome::Release {
                reason: "not started before shutdown".into(),
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
