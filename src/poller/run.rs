//! [`Poller::run`]: starts the threads of a run (workers, reporter, receive
//! thread, the receiver on the calling thread), joins them all, and says how
//! the run ends.

use std::time::Instant;

use super::receiver;
use super::reporter;
use super::setup::{PollOptions, Poller};
use super::shutdown::Shutdown;
use super::slots::Slot;
use super::work::{Event, Job, Report};
use super::worker;
use crate::error::{Error, Result};
use crate::exit::Exit;

impl Poller {
    /// Receives and handles requests until the queue is drained (or the
    /// options or a signal say stop), with `workers` workers and no
    /// host-wide slots (a run driven in-process).
    pub fn run(&self, options: &PollOptions, shutdown: &Shutdown) -> Result<Exit> {
        let slots = (0..self.settings.workers).map(Slot::unlocked).collect();
        self.run_in(options, shutdown, slots)
    }

    /// [`Poller::run`] with one worker per handler slot held ([`super::slots`]);
    /// each worker gives its slot back when it has nothing left to run.
    pub fn run_in(
        &self,
        options: &PollOptions,
        shutdown: &Shutdown,
        slots: Vec<Slot>,
    ) -> Result<Exit> {
        let started = Instant::now();
        let workers = slots.len();
        if workers == 0 {
            log::info!("no handler slot held; nothing to do");
            return Ok(Exit::Ok);
        }
        log::info!(
            "polling {} with {workers} workers (of {}), handler {}",
            crate::text::url(&self.request_queue),
            self.settings.workers,
            crate::text::quoted(&self.handler.join(" "), 300)
        );
        self.check_queues();
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (report_tx, report_rx) = crossbeam_channel::unbounded::<Report>();
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<Event>();
        let (ask_tx, ask_rx) = crossbeam_channel::bounded(1);
        // Closed when the run stops receiving: idle workers end, giving their slot back.
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        // One token per idle worker no longer needed once the queue is drained.
        let (retire_tx, retire_rx) = crossbeam_channel::unbounded::<()>();
        let wake = shutdown.subscribe();
        let outcome = std::thread::scope(|s| {
            for slot in slots {
                let channels = worker::Channels {
                    jobs: job_rx.clone(),
                    reports: report_tx.clone(),
                    events: event_tx.clone(),
                    stopped: stop_rx.clone(),
                    retire: retire_rx.clone(),
                };
                s.spawn(move || worker::work(self, channels, shutdown, slot));
            }
            drop((stop_rx, retire_rx));
            let events = event_tx.clone();
            s.spawn(move || reporter::report(self, report_rx, events));
            let events = event_tx.clone();
            s.spawn(move || receiver::receive_thread(self, ask_rx, events));
            drop(event_tx);
            let channels = receiver::Channels {
                jobs: job_tx,
                unstarted: job_rx,
                reports: report_tx,
                asks: ask_tx,
                stop_workers: stop_tx,
                retire_workers: retire_tx,
            };
            let receiving =
                receiver::Receiving::new(self, options, shutdown, started, workers, channels);
            receiving.run(&event_rx, &wake)
        });
        let line = self.summary.line(started.elapsed());
        let result = outcome.and_then(|()| self.verdict(shutdown));
        // A failing run's summary is a warning: quiet mode (cron) shows it;
        // so is the summary of a run where a request failed for good.
        let counts = self.summary.counts();
        let lost = counts.failed + counts.invalid + counts.undeliverable;
        match result {
            Ok(Exit::Ok) if lost == 0 => log::info!("{line}"),
            _ => log::warn!("{line}"),
        }
        result
    }

    /// How a run that received without error ends.
    fn verdict(&self, shutdown: &Shutdown) -> Result<Exit> {
        if let Some(reason) = shutdown.fatal() {
            return Err(Error::config("handler", reason));
        }
        let counts = self.summary.counts();
        if counts.unreported > 0 {
            return Ok(Exit::TempFail);
        }
        if counts.undeliverable > 0 {
            // Trying again will not help: the completion queue needs a look.
            return Ok(Exit::DataErr);
        }
        let damaged = self.client.damaged_received();
        if damaged > 0 {
            // Each was logged as an error and left on the queue; the run
            // must not look like a success (nor like nothing came).
            log::error!(
                "{damaged} received message(s) did not match the MD5 the server sent with them; left on the queue"
            );
            return Ok(Exit::Protocol);
        }
        Ok(Exit::Ok)
    }
}
