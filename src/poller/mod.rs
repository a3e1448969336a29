//! `poll_messages`: receive archive requests, run one handler per request on
//! a fixed pool of worker threads, report each outcome to the completion
//! queue, then delete the request.
//!
//! Threads, all joined before `run` returns:
//! - the receiver (the calling thread) asks for at most as many messages as
//!   there are idle workers, validates them, and hands them to the workers
//!   over a crossbeam channel;
//! - `workers` worker threads each run one handler at a time
//!   ([`handler::run`]), extending the message's visibility while it runs,
//!   and turn its ending into an [`outcome::Outcome`];
//! - the reporter batches outcomes: completions first, and only for those the
//!   completion queue accepted, the request's deletion. A request whose
//!   completion could not be sent stays on the queue.
//! - the signal thread (see [`Shutdown`]).

pub mod handler;
pub mod outcome;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use self::handler::{Spec, Supervisor};
use self::outcome::{Ending, Outcome, RetryRules, Run};
use crate::args::{COMMON_HELP, Common, next, number};
use crate::client::{ArchiveClient, ReceiptHandle, ReceiveRequest, ReceivedMessage};
use crate::config::{QueueRole, Settings};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::outgoing;
use crate::schema::MessageSchema;

const HELP: &str = "\
poll_messages: receive archive requests and run process_message for each.

Usage: poll_messages [OPTIONS]

By default it drains the request queue: it receives until a receive returns
nothing, lets running handlers finish, prints a summary and exits (for cron).
A second run that starts while one is running exits 0 at once (lock_file).

Options:
  --loop               keep polling until SIGTERM or SIGINT
  --quiet              for cron: print only warnings and errors on stderr, so a run
                       that goes well prints nothing (a failing run prints its errors
                       and its summary)
  --max-messages N     stop receiving after N messages
  --max-runtime S      stop receiving after S seconds
";

/// How long this run goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollOptions {
    pub keep_polling: bool,
    /// Only warnings and errors on stderr (cron mails any output).
    pub quiet: bool,
    pub max_messages: Option<u64>,
    pub max_runtime: Option<Duration>,
}

/// Parses `poll_messages`'s arguments.
pub fn parse_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(Common, PollOptions)> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut common = Common::default();
    let mut options = PollOptions::default();
    while let Some(flag) = next(&mut parser)? {
        if common.take(&flag, &mut parser)? {
            continue;
        }
        match flag.name() {
            "--loop" => options.keep_polling = true,
            "--quiet" => options.quiet = true,
            "--max-messages" => {
                options.max_messages = Some(number(&mut parser, "--max-messages", 1, u64::MAX)?)
            }
            "--max-runtime" => {
                options.max_runtime = Some(Duration::from_secs(number(
                    &mut parser,
                    "--max-runtime",
                    1,
                    365 * 86_400,
                )?))
            }
            _ => return Err(flag.unexpected()),
        }
    }
    Ok((common, options))
}

/// Counts for the summary line.
#[derive(Debug, Default)]
pub struct Summary {
    pub received: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub invalid: AtomicU64,
    pub returned: AtomicU64,
    /// Completions that could not be sent; their requests stay on the queue.
    pub unreported: AtomicU64,
}

impl Summary {
    /// Settled requests by outcome, for the metrics file.
    pub fn counts(&self) -> crate::metrics::Counts {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::metrics::Counts([
            n(&self.succeeded),
            n(&self.failed),
            n(&self.retried),
            n(&self.invalid),
            n(&self.returned),
            n(&self.unreported),
        ])
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self, elapsed: Duration) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "summary: received={} succeeded={} failed={} retried={} invalid={} returned={} unreported={} elapsed={:.3}s",
            n(&self.received),
            n(&self.succeeded),
            n(&self.failed),
            n(&self.retried),
            n(&self.invalid),
            n(&self.returned),
            n(&self.unreported),
            elapsed.as_secs_f64()
        ) + &match crate::usage::own() {
            Some(u) => format!(
                " cpu={:.3}s sys={:.3}s peak_rss={}KiB",
                u.cpu.as_secs_f64(),
                u.sys.as_secs_f64(),
                u.peak_rss_kib
            ),
            None => String::new(),
        }
    }
}

/// Shutdown state, shared by all threads.
///
/// The first SIGTERM/SIGINT stops receiving, returns messages not yet started
/// and gives running handlers `grace` to finish; the second (or the end of
/// the grace period) stops the handlers and returns their messages too.
#[derive(Debug)]
pub struct Shutdown {
    signals: AtomicUsize,
    first_at: Mutex<Option<Instant>>,
    grace: Duration,
    fatal: Mutex<Option<String>>,
}

impl Shutdown {
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            signals: AtomicUsize::new(0),
            first_at: Mutex::new(None),
            grace,
            fatal: Mutex::new(None),
        }
    }

    /// Records a signal.
    pub fn signal(&self) {
        let n = self.signals.fetch_add(1, Ordering::SeqCst) + 1;
        let mut first = self.first_at.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(Instant::now);
        if n == 1 {
            log::warn!(
                "signal received: no new requests; running handlers get {} s to finish",
                self.grace.as_secs()
            );
        } else {
            log::warn!("second signal: stopping running handlers");
        }
    }

    /// Stops the run because something is wrong with this host (e.g. no handler).
    fn fail(&self, reason: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            log::error!("stopping: {reason}");
            *fatal = Some(reason);
        }
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// No new work may start.
    pub fn stopping(&self) -> bool {
        self.signals.load(Ordering::SeqCst) > 0 || self.fatal().is_some()
    }

    /// Running handlers must stop now.
    pub fn must_kill(&self) -> bool {
        match self.signals.load(Ordering::SeqCst) {
            0 => false,
            1 => self
                .first_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some_and(|t| t.elapsed() >= self.grace),
            _ => true,
        }
    }
}

/// The receiver's ends of the channels.
struct Channels<'a> {
    jobs: &'a Sender<Job>,
    reports: &'a Sender<Report>,
    /// A worker finished a handler.
    idle: &'a Receiver<()>,
    /// The reporter settled this many outcomes.
    settled: &'a Receiver<usize>,
}

/// A validated request on its way to a worker.
struct Job {
    message: ReceivedMessage,
    request: Value,
    /// `msg <id> aipid <aipid>`, for log lines.
    context: String,
}

/// A decided outcome on its way to the reporter.
struct Report {
    message: ReceivedMessage,
    context: String,
    outcome: Outcome,
}

/// Everything a run needs, resolved from the settings.
pub struct Poller {
    pub client: Arc<dyn ArchiveClient>,
    pub schema: MessageSchema,
    pub request_queue: String,
    pub completion_queue: String,
    pub handler: Vec<String>,
    pub handler_env: Vec<(String, String)>,
    pub remove_env: Vec<&'static str>,
    pub settings: Settings,
    pub summary: Summary,
    /// The metrics file (`metrics_file`); disabled unless `main` sets one.
    pub metrics: crate::metrics::Recorder,
}

/// Runs `poll_messages` with the process's arguments and environment.
pub fn main() -> Exit {
    crate::error::run_main("poll_messages", || {
        let (common, options) = parse_args(std::env::args_os().skip(1))?;
        if common.help {
            println!("{HELP}\n{COMMON_HELP}\n\n{}", crate::config::keys_help());
            return Ok(Exit::Ok);
        }
        if common.version {
            println!("poll_messages {}", env!("CARGO_PKG_VERSION"));
            return Ok(Exit::Ok);
        }
        let settings = Settings::load(&common.source, Env::from_process())?;
        crate::logging::init_quiet(
            common.log_level,
            &settings.env,
            log::LevelFilter::Info,
            settings.log_file.as_deref(),
            options.quiet,
        )?;
        crate::fsutil::warn_if_secret_readable(&settings);
        let Some(_lock) = crate::fsutil::try_lock(&settings.lock_file)? else {
            log::info!(
                "another poll_messages run holds {}; nothing to do",
                settings.lock_file.display()
            );
            return Ok(Exit::Ok);
        };
        let metrics = crate::metrics::Recorder::new(
            settings.metrics_file.clone(),
            settings.metrics_interval,
            SystemTime::now(),
        );
        let poller = match Poller::new(settings, &common) {
            Ok(poller) => Poller { metrics, ..poller },
            Err(e) => {
                metrics.write(&Default::default(), e.exit().as_u8(), SystemTime::now());
                return Err(e);
            }
        };
        let shutdown = Shutdown::new(poller.settings.shutdown_grace);
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])
        .map_err(|e| Error::io("install signal handlers", "SIGTERM", e))?;
        let handle = signals.handle();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in signals.forever() {
                    shutdown.signal();
                }
            });
            let result = poller.run(&options, &shutdown);
            handle.close();
            let code = match &result {
                Ok(exit) => exit.as_u8(),
                Err(e) => e.exit().as_u8(),
            };
            poller.write_metrics(code);
            result
        })
    })
}

impl Poller {
    /// Resolves queues, schema, client and handler from the settings.
    pub fn new(settings: Settings, common: &Common) -> Result<Poller> {
        let request_queue = settings.queue_url(QueueRole::Request)?.to_string();
        let completion_queue = settings.queue_url(QueueRole::Completion)?.to_string();
        let schema = MessageSchema::load(settings.schema_file.as_deref())?;
        let client = crate::backend::connect(&settings)?;
        let handler = match &settings.handler {
            Some(argv) => argv.clone(),
            None => vec![default_handler()?.display().to_string()],
        };
        let handler_env = handler_env(&settings, common)?;
        let remove_env = if settings.pass_aws_credentials_to_handler {
            Vec::new()
        } else {
            vec![
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            ]
        };
        Ok(Poller {
            client,
            schema,
            request_queue,
            completion_queue,
            handler,
            handler_env,
            remove_env,
            settings,
            summary: Summary::default(),
            metrics: crate::metrics::Recorder::disabled(),
        })
    }

    /// Writes the metrics file (if any): queue counts, then this run's figures.
    pub fn write_metrics(&self, exit_code: u8) {
        if !self.metrics.enabled() {
            return;
        }
        self.metrics.sample_queues(
            self.client.as_ref(),
            [
                ("request", &self.request_queue),
                ("completion", &self.completion_queue),
            ],
        );
        self.metrics
            .write(&self.summary.counts(), exit_code, SystemTime::now());
    }

    /// Receives and handles requests until the queue is drained (or the options or a signal say stop).
    pub fn run(&self, options: &PollOptions, shutdown: &Shutdown) -> Result<Exit> {
        let started = Instant::now();
        let workers = self.settings.workers;
        log::info!(
            "polling {} with {workers} workers, handler {:?}",
            self.request_queue,
            self.handler
        );
        let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers);
        let (report_tx, report_rx) = crossbeam_channel::unbounded::<Report>();
        let (idle_tx, idle_rx) = crossbeam_channel::unbounded::<()>();
        let (settled_tx, settled_rx) = crossbeam_channel::unbounded::<usize>();
        let receive_error = std::thread::scope(|s| {
            for _ in 0..workers {
                let (jobs, reports, idle) = (job_rx.clone(), report_tx.clone(), idle_tx.clone());
                s.spawn(move || self.work(jobs, reports, idle, shutdown));
            }
            s.spawn(|| self.report(report_rx, settled_tx));
            let channels = Channels {
                jobs: &job_tx,
                reports: &report_tx,
                idle: &idle_rx,
                settled: &settled_rx,
            };
            let outcome = self.receive_loop(options, shutdown, started, channels);
            drop(job_tx);
            drop(report_tx);
            outcome
        });
        let line = self.summary.line(started.elapsed());
        let result = receive_error.and_then(|()| {
            if let Some(reason) = shutdown.fatal() {
                return Err(Error::config("handler", reason));
            }
            if self.summary.unreported.load(Ordering::Relaxed) > 0 {
                return Ok(Exit::TempFail);
            }
            Ok(Exit::Ok)
        });
        // A failing run's summary is a warning: quiet mode (cron) shows it.
        match result {
            Ok(Exit::Ok) => log::info!("{line}"),
            _ => log::warn!("{line}"),
        }
        result
    }

    fn receive_loop(
        &self,
        options: &PollOptions,
        shutdown: &Shutdown,
        started: Instant,
        ch: Channels,
    ) -> Result<()> {
        let workers = self.settings.workers;
        // Workers running a handler, and messages whose outcome is not yet settled.
        let (mut busy, mut unsettled) = (0usize, 0usize);
        let mut received = 0u64;
        let mut outage = 0u32;
        loop {
            while ch.idle.try_recv().is_ok() {
                busy -= 1;
            }
            while let Ok(n) = ch.settled.try_recv() {
                unsettled -= n;
            }
            if shutdown.stopping() {
                return Ok(());
            }
            if options.keep_polling && self.metrics.due() {
                // A loop that rides out an outage is not a success.
                self.write_metrics(if outage == 0 {
                    0
                } else {
                    Exit::TempFail.as_u8()
                });
            }
            if options
                .max_runtime
                .is_some_and(|limit| started.elapsed() >= limit)
            {
                log::info!("--max-runtime reached; no new requests");
                return Ok(());
            }
            let quota = options.max_messages.map(|m| m.saturating_sub(received));
            if quota == Some(0) {
                log::info!("--max-messages reached; no new requests");
                return Ok(());
            }
            let free = workers.saturating_sub(busy);
            if free == 0 {
                // Never receive more than can start now: a waiting message's visibility runs for nothing.
                if ch.idle.recv_timeout(Duration::from_millis(200)).is_ok() {
                    busy -= 1;
                }
                continue;
            }
            let max = (free as u64)
                .min(10)
                .min(u64::from(self.settings.max_number_of_messages));
            let max = quota.map_or(max, |q| max.min(q)) as u32;
            let request = ReceiveRequest {
                max_messages: max,
                wait_seconds: self.settings.wait_time_seconds,
                // Zero would hand a running message to the next receive at once.
                visibility_timeout: Some(self.settings.visibility_timeout.max(1)),
            };
            let messages = match self.client.receive_messages(&self.request_queue, &request) {
                Ok(messages) => {
                    outage = 0;
                    messages
                }
                // A long-running poller rides out an outage; a cron run reports it.
                Err(e) if options.keep_polling && e.is_retryable() => {
                    outage += 1;
                    let pause = Duration::from_secs(5 * u64::from(outage.min(12)));
                    log::error!(
                        "receive failed ({outage} in a row), trying again in {} s: {e}",
                        pause.as_secs()
                    );
                    idle_pause(shutdown, pause);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if messages.is_empty() {
                if options.keep_polling {
                    if self.settings.wait_time_seconds == 0 {
                        // Short polling: pause so an idle loop does not hammer the queue.
                        idle_pause(shutdown, Duration::from_secs(1));
                    }
                    continue;
                }
                if unsettled == 0 {
                    log::info!("queue drained");
                    return Ok(());
                }
                // Work in progress may put messages back (retries): look again once some settles.
                crossbeam_channel::select! {
                    recv(ch.settled) -> n => unsettled -= n.unwrap_or(0),
                    recv(ch.idle) -> _ => busy -= 1,
                    default(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for message in messages {
                received += 1;
                Summary::add(&self.summary.received);
                match self.schema.parse(&message.body) {
                    Ok(request) => {
                        let context = context(&message, Some(&request));
                        log::info!(
                            "{context}: received (receive count {})",
                            message.receive_count
                        );
                        busy += 1;
                        unsettled += 1;
                        let job = Job {
                            message,
                            request,
                            context,
                        };
                        if ch.jobs.send(job).is_err() {
                            unreachable!("workers live until the job channel closes");
                        }
                    }
                    Err(e) => {
                        let context = context(&message, None);
                        log::warn!("{context}: invalid request: {e}");
                        Summary::add(&self.summary.invalid);
                        let completion = crate::message::failure_completion(
                            &message.body,
                            &message.message_id,
                            &e.to_string(),
                            SystemTime::now(),
                        );
                        unsettled += 1;
                        let _ = ch.reports.send(Report {
                            message,
                            context,
                            outcome: Outcome::Complete {
                                completion,
                                success: false,
                            },
                        });
                    }
                }
            }
        }
    }

    fn work(
        &self,
        jobs: Receiver<Job>,
        reports: Sender<Report>,
        idle: Sender<()>,
        shutdown: &Shutdown,
    ) {
        for job in jobs {
            let outcome = if shutdown.stopping() {
                Outcome::Release {
                    reason: "not started before shutdown".into(),
                }
            } else {
                self.handle(&job, shutdown)
            };
            let _ = reports.send(Report {
                message: job.message,
                context: job.context,
                outcome,
            });
            let _ = idle.send(());
        }
    }

    fn handle(&self, job: &Job, shutdown: &Shutdown) -> Outcome {
        let message = &job.message;
        let context = &job.context;
        let aipid = job
            .request
            .get("aipid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut set_env = self.handler_env.clone();
        set_env.push(("SQS_MESSAGE_ID".into(), message.message_id.clone()));
        set_env.push((
            "SQS_RECEIVE_COUNT".into(),
            message.receive_count.to_string(),
        ));
        let spec = Spec {
            argv: &self.handler,
            aipid,
            body: &message.body,
            set_env,
            remove_env: &self.remove_env,
            timeout: self.settings.handler_timeout,
            kill_grace: self.settings.kill_grace,
            context,
        };
        let visibility = Duration::from_secs(u64::from(self.settings.visibility_timeout.max(1)));
        let mut heartbeat = Heartbeat {
            client: self.client.as_ref(),
            queue: &self.request_queue,
            receipt: &message.receipt_handle,
            visibility,
            shutdown,
            context,
        };
        let finished = handler::run(&spec, &mut heartbeat);
        self.metrics.handler_finished(finished.elapsed);
        if let Ending::SpawnFailed(e) = &finished.ending {
            shutdown.fail(format!(
                "handler {:?} cannot be started: {e}",
                self.handler[0]
            ));
        }
        log::info!(
            "{context}: handler ended {:?} after {} ms",
            finished.ending,
            finished.elapsed.as_millis()
        );
        if finished.ending == Ending::Exited(0)
            && serde_json::from_slice::<Value>(&finished.stdout).is_err()
        {
            log::warn!(
                "{context}: the handler succeeded but its output is not JSON; kept as result.unparsed_stdout"
            );
        }
        let run = Run {
            message_id: &message.message_id,
            body: &message.body,
            request: &job.request,
            receive_count: message.receive_count,
            ending: finished.ending.clone(),
            stdout: &finished.stdout,
            stderr_tail: &finished.stderr_tail,
        };
        outcome::decide(&run, &self.rules(), SystemTime::now())
    }

    fn rules(&self) -> RetryRules {
        RetryRules {
            max_receive_count: self.settings.max_receive_count,
            use_redrive_policy: self.settings.use_redrive_policy,
            base: self.settings.retry_base,
            max: self.settings.retry_max,
        }
    }

    /// The reporter thread: batches outcomes as they arrive.
    fn report(&self, reports: Receiver<Report>, settled: Sender<usize>) {
        while let Ok(first) = reports.recv() {
            let mut batch = vec![first];
            while batch.len() < 10 {
                match reports.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let n = batch.len();
            self.settle(batch);
            let _ = settled.send(n);
        }
    }

    /// Carries out a batch of outcomes: completions, then deletes; retries and releases.
    fn settle(&self, batch: Vec<Report>) {
        let mut completions = Vec::new();
        let mut visibility = Vec::new();
        for report in batch {
            let context = &report.context;
            match report.outcome {
                Outcome::Complete {
                    completion,
                    success,
                } => {
                    let completion = outcome::fit(completion, self.settings.max_message_size);
                    let message = outgoing(&completion);
                    completions.push((report.message, report.context, message, success));
                }
                Outcome::Retry { delay, reason } => {
                    log::warn!(
                        "{context}: will be retried in {} s: {reason}",
                        delay.as_secs()
                    );
                    Summary::add(&self.summary.retried);
                    visibility.push((report.message, report.context, delay));
                }
                Outcome::Release { reason } => {
                    log::info!("{context}: returned to the queue: {reason}");
                    Summary::add(&self.summary.returned);
                    visibility.push((report.message, report.context, Duration::ZERO));
                }
            }
        }
        let mut delete = Vec::new();
        if !completions.is_empty() {
            let outgoing: Vec<_> = completions.iter().map(|(_, _, o, _)| o.clone()).collect();
            let results = send_in_batches(
                self.client.as_ref(),
                &self.completion_queue,
                &outgoing,
                self.settings.max_message_size,
            );
            for ((message, context, _, success), result) in completions.into_iter().zip(results) {
                match result {
                    Ok(sent) => {
                        log::info!(
                            "{context}: completion {} sent (success: {success})",
                            sent.message_id
                        );
                        if success {
                            Summary::add(&self.summary.succeeded);
                        } else {
                            Summary::add(&self.summary.failed);
                        }
                        delete.push((message, context));
                    }
                    Err(e) => {
                        // The request is kept: it comes back and is done again, which is harmless.
                        log::error!(
                            "{context}: completion not sent, request kept for a retry: {e}"
                        );
                        Summary::add(&self.summary.unreported);
                    }
                }
            }
        }
        if !delete.is_empty() {
            let receipts: Vec<ReceiptHandle> = delete
                .iter()
                .map(|(m, _)| m.receipt_handle.clone())
                .collect();
            match self
                .client
                .delete_message_batch(&self.request_queue, &receipts)
            {
                Ok(results) => {
                    for ((_, context), result) in delete.iter().zip(results) {
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
                    delete.len()
                ),
            }
        }
        if !visibility.is_empty() {
            let entries: Vec<_> = visibility
                .iter()
                .map(|(m, _, d)| (m.receipt_handle.clone(), *d))
                .collect();
            match self
                .client
                .change_visibility_batch(&self.request_queue, &entries)
            {
                Ok(results) => {
                    for ((_, context, _), result) in visibility.iter().zip(results) {
                        if let Err(e) = result {
                            log::warn!(
                                "{context}: visibility not changed (it returns after its timeout): {e}"
                            );
                        }
                    }
                }
                Err(e) => log::warn!(
                    "visibility of {} requests not changed (they return after their timeout): {e}",
                    visibility.len()
                ),
            }
        }
    }
}

/// Sends messages in batches of at most 10 and at most `max_bytes` in all;
/// results in input order.
fn send_in_batches(
    client: &dyn ArchiveClient,
    queue: &str,
    messages: &[crate::client::OutgoingMessage],
    max_bytes: usize,
) -> Vec<Result<crate::client::SentMessage>> {
    let mut results = Vec::with_capacity(messages.len());
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
        let outcome = if chunk.len() == 1 {
            client.send_message(queue, &chunk[0]).map(|s| vec![Ok(s)])
        } else {
            client.send_message_batch(queue, chunk)
        };
        match outcome {
            Ok(r) => results.extend(r),
            Err(e) => {
                let text = e.to_string();
                results.push(Err(e));
                results.extend(
                    (1..chunk.len())
                        .map(|_| Err(Error::InvalidData(format!("batch not sent: {text}")))),
                );
            }
        }
        start = end;
    }
    results
}

/// Sleeps, waking early for a signal.
fn idle_pause(shutdown: &Shutdown, total: Duration) {
    let until = Instant::now() + total;
    while Instant::now() < until && !shutdown.stopping() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keeps a running message hidden, and tells the handler when to stop.
struct Heartbeat<'a> {
    client: &'a dyn ArchiveClient,
    queue: &'a str,
    receipt: &'a ReceiptHandle,
    visibility: Duration,
    shutdown: &'a Shutdown,
    context: &'a str,
}

impl Supervisor for Heartbeat<'_> {
    fn heartbeat(&mut self) {
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

    fn every(&self) -> Duration {
        // A third of the timeout leaves two chances before it runs out.
        (self.visibility / 3).max(Duration::from_millis(500))
    }

    fn must_stop(&self) -> bool {
        self.shutdown.must_kill()
    }
}

/// `msg <id> aipid <aipid>` for log lines.
fn context(message: &ReceivedMessage, request: Option<&Value>) -> String {
    let aipid = request
        .or(serde_json::from_str::<Value>(&message.body).ok().as_ref())
        .and_then(|r| {
            r.get("aipid")
                .and_then(Value::as_str)
                .map(|s| crate::schema::truncate(s, 64))
        })
        .unwrap_or_else(|| "?".into());
    format!("msg {} aipid {aipid}", message.message_id)
}

/// `process_message` in the directory of the running executable.
fn default_handler() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find own executable", "poll_messages", e))?;
    Ok(exe.with_file_name("process_message"))
}

/// How the handler finds the same configuration: absolute paths, so its working directory does not matter.
fn handler_env(settings: &Settings, common: &Common) -> Result<Vec<(String, String)>> {
    let absolute = |p: &std::path::Path| -> Result<String> {
        std::path::absolute(p)
            .map(|p| p.display().to_string())
            .map_err(|e| Error::io("resolve", p, e))
    };
    let mut env = Vec::new();
    if let Some(file) = &settings.file {
        env.push(("SQS_ARCHIVE_CONFIG".to_string(), absolute(file)?));
        env.push(("SQS_ARCHIVE_PROFILE".to_string(), String::new()));
    }
    if let Some(env_file) = &common.source.env_file {
        env.push(("SQS_ARCHIVE_ENV_FILE".to_string(), absolute(env_file)?));
    }
    if let Some(level) = common.log_level {
        env.push(("SQS_ARCHIVE_LOG".to_string(), level.to_string()));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let (_, o) = parse_args(
            [
                "--loop",
                "--quiet",
                "--max-messages",
                "5",
                "--max-runtime",
                "60",
            ]
            .map(Into::into),
        )
        .unwrap();
        assert_eq!(
            o,
            PollOptions {
                keep_polling: true,
                quiet: true,
                max_messages: Some(5),
                max_runtime: Some(Duration::from_secs(60))
            }
        );
        let e = parse_args(["--max-messages", "0"].map(Into::into)).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        assert!(
            parse_args(["--bogus"].map(Into::into))
                .unwrap_err()
                .to_string()
                .contains("--bogus")
        );
    }

    #[test]
    fn shutdown_escalates() {
        let s = Shutdown::new(Duration::from_millis(50));
        assert!(!s.stopping() && !s.must_kill());
        s.signal();
        assert!(s.stopping() && !s.must_kill());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.must_kill(), "grace period over");
        let s = Shutdown::new(Duration::from_secs(60));
        s.signal();
        s.signal();
        assert!(s.must_kill(), "second signal");
    }
}
