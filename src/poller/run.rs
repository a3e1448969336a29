//! [`Poller::run`]: starts the threads of a run (workers, reporter, receive
//! thread, the receiver on the calling thread), joins them all, and says how
//! the run ends.

use std::time::Instant;

use super::receiver;
use super::reporter;
use super::setup::{PollOptions, Poller};
use super::shutdown::Shutdown;
use super::work::{Event, Job, Report};
use super::worker;
use crate::error::{Error, Result};
use crate::exit::Exit;

impl Poller {
    /// Receives and handles requests until the queue is drained (or the options or a signal say stop).
    pub fn run(&self, options: &PollOptions, shutdown: &Shutdown) -> Result<Exit> {
        let started = Instant::now();
        let workers = self.settings.workers;
        log::info!(
            "polling {} with {workers} workers, handler {}",
            crate::text::url(&self.request_queue),
            crate::text::quoted(&self.handler.join(" "), 300)
        );
        self.check_queues();
        let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (report_tx, report_rx) = crossbeam_channel::unbounded::<Report>();
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<Event>();
        let (ask_tx, ask_rx) = crossbeam_channel::bounded(1);
        let wake = shutdown.subscribe();
        let outcome = std::thread::scope(|s| {
            for _ in 0..workers {
                let (jobs, reports, events) = (job_rx.clone(), report_tx.clone(), event_tx.clone());
                s.spawn(move || worker::work(self, jobs, reports, events, shutdown));
            }
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
            };
            let receiving = receiver::Receiving::new(self, options, shutdown, started, channels);
            receiving.run(&event_rx, &wake)
        });
        let line = self.summary.line(started.elapsed());
        let result = outcome.and_then(|()| self.verdict(shutdown));
        // A failing run's summary is a warning: quiet mode (cron) shows it.
        match result {
            Ok(Exit::Ok) => log::info!("{line}"),
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
        Ok(Exit::Ok)
    }
}
