//! `poll_messages`: receive archive requests, run one handler per request on
//! a fixed pool of worker threads, report each outcome to the completion
//! queue, then delete the request.
//!
//! Threads, all joined before [`Poller::run`] returns:
//! - the receiver ([`receiver`], the calling thread) holds what was received
//!   and hands it to idle workers, asking a receive thread for the next batch
//!   before the workers run out; FIFO groups run one request at a time;
//! - `workers` worker threads ([`worker`]) each run one handler at a time,
//!   supervised by one `poll` ([`supervise`]), and turn its ending into an
//!   [`outcome::Outcome`] (pure: [`outcome`]);
//! - the reporter ([`reporter`]) settles outcomes in batches: completions
//!   first, and only for those the completion queue accepted, the request's
//!   deletion;
//! - the signal thread feeding [`Shutdown`].
//!
//! [`Summary`] counts what happened; [`Summary::counts`] is the snapshot a
//! metrics writer reads.

#[cfg(test)]
mod contract;
pub mod outcome;
pub mod receiver;
pub mod reporter;
pub mod shutdown;
pub mod summary;
pub mod supervise;
pub mod worker;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use self::outcome::{Outcome, RetryRules};
pub use self::shutdown::Shutdown;
pub use self::summary::{Counts, Summary};
use crate::config::{QueueRole, Settings};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::schema::MessageSchema;
use crate::queue::{ArchiveClient, ReceivedMessage, is_fifo};

/// How long this run goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollOptions {
    pub keep_polling: bool,
    /// Only warnings and errors on stderr (cron mails any output).
    pub quiet: bool,
    pub max_messages: Option<u64>,
    pub max_runtime: Option<Duration>,
}

/// A validated request on its way to a worker.
pub(crate) struct Job {
    message: ReceivedMessage,
    request: Value,
    /// `msg <id> aipid <aipid>`, escaped, for log lines.
    context: String,
    /// FIFO queues: its `MessageGroupId`.
    group: Option<String>,
}

/// A decided outcome on its way to the reporter.
pub(crate) struct Report {
    message: ReceivedMessage,
    context: String,
    outcome: Outcome,
    /// FIFO queues: the group a worker held for this request. The group
    /// stays busy until the reporter settled the outcome, so a later request
    /// of the group never starts before this one was deleted or kept.
    holds_group: Option<String>,
}

/// What the receiver hears about.
pub(crate) enum Event {
    /// A worker finished a request (its report is on the way).
    Finished,
    /// The reporter settled the request of a FIFO group a worker held:
    /// `kept` when it stays on the queue (retried, completion not sent).
    GroupSettled { group: String, kept: bool },
    /// A worker took this request from the job channel.
    Started(crate::queue::ReceiptHandle),
    /// The reporter settled this many outcomes.
    Settled(usize),
    /// A receive came back.
    Received(Result<Vec<ReceivedMessage>>),
}

/// Everything a run needs, resolved from the settings.
pub struct Poller {
    pub client: Arc<dyn ArchiveClient>,
    pub schema: MessageSchema,
    pub request_queue: String,
    pub completion_queue: String,
    /// The request queue is FIFO: one request per message group at a time.
    pub fifo: bool,
    pub handler: Vec<String>,
    pub handler_env: Vec<(String, String)>,
    pub remove_env: Vec<&'static str>,
    pub settings: Settings,
    pub summary: Summary,
    /// The completion queue's size limit, read once per run.
    completion_limit: OnceLock<usize>,
    /// `max_receive_count` after the redrive check.
    max_receive_count: OnceLock<u32>,
    /// Read the queues' attributes at start. Off for the directory mock,
    /// which has neither a size attribute nor a redrive policy and would
    /// read every message file to count them.
    read_attributes: bool,
    /// The metrics file (`metrics_file`); disabled unless `main` sets one.
    pub metrics: crate::metrics::Recorder,
}

impl Poller {
    /// Resolves queues, schema, client and handler from the settings;
    /// `handler_env` is what the handler needs to find the same configuration.
    pub fn new(settings: Settings, handler_env: Vec<(String, String)>) -> Result<Poller> {
        let client = crate::queue::connect::connect(&settings)?;
        let handler = match &settings.handler {
            Some(argv) => argv.clone(),
            None => vec![default_handler()?.display().to_string()],
        };
        let mock = settings.backend == crate::config::Backend::Mock;
        let mut poller = Poller::with_client(settings, client, handler, handler_env)?;
        poller.read_attributes = !mock;
        Ok(poller)
    }

    /// A poller on a given client (the in-memory one in tests).
    pub fn with_client(
        settings: Settings,
        client: Arc<dyn ArchiveClient>,
        handler: Vec<String>,
        handler_env: Vec<(String, String)>,
    ) -> Result<Poller> {
        let request_queue = settings.queue_url(QueueRole::Request)?.to_string();
        let completion_queue = settings.queue_url(QueueRole::Completion)?.to_string();
        let schema = MessageSchema::load(settings.schema_file.as_deref())?;
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
            fifo: is_fifo(&request_queue),
            request_queue,
            completion_queue,
            handler,
            handler_env,
            remove_env,
            settings,
            summary: Summary::default(),
            completion_limit: OnceLock::new(),
            max_receive_count: OnceLock::new(),
            read_attributes: true,
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
        self.metrics.write(
            &self.summary.counts().by_outcome(),
            exit_code,
            SystemTime::now(),
        );
    }

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
            let receiving = receiver::Receiving::new(
                self,
                options,
                shutdown,
                started,
                (job_tx, job_rx),
                report_tx,
                ask_tx,
            );
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

    /// Reads the queues' attributes once: the completion size limit, and the
    /// request queue's redrive policy against `max_receive_count`.
    fn check_queues(&self) {
        self.completion_limit();
        if !self.read_attributes {
            return;
        }
        let configured = self.settings.max_receive_count;
        let count = match self.client.queue_attributes(&self.request_queue) {
            Ok(attributes) => redrive_check(
                &attributes.redrive_policy,
                configured,
                self.settings.use_redrive_policy,
            ),
            Err(e) => {
                log::warn!(
                    "cannot read the request queue's attributes (redrive policy not checked): {e}"
                );
                configured
            }
        };
        let _ = self.max_receive_count.set(count);
    }

    /// The largest completion the completion queue takes: its
    /// `MaximumMessageSize`, never more than `max_message_size`.
    pub fn completion_limit(&self) -> usize {
        *self.completion_limit.get_or_init(|| {
            let configured = self.settings.max_message_size;
            if !self.read_attributes {
                return configured;
            }
            match self.client.queue_attributes(&self.completion_queue) {
                Ok(a) => match a.maximum_message_size {
                    Some(n) if (n as usize) < configured => {
                        log::info!(
                            "the completion queue takes messages up to {n} bytes; completions are shrunk to fit"
                        );
                        n as usize
                    }
                    _ => configured,
                },
                Err(e) => {
                    log::warn!(
                        "cannot read the completion queue's MaximumMessageSize; using max_message_size ({configured} bytes): {e}"
                    );
                    configured
                }
            }
        })
    }

    fn rules(&self) -> RetryRules {
        RetryRules {
            max_receive_count: *self
                .max_receive_count
                .get()
                .unwrap_or(&self.settings.max_receive_count),
            use_redrive_policy: self.settings.use_redrive_policy,
            base: self.settings.retry_base,
            max: self.settings.retry_max,
        }
    }
}

/// Compares the request queue's `RedrivePolicy` with `max_receive_count`;
/// warns once where they disagree. Returns the count to give up at.
pub fn redrive_check(
    policy: &Option<crate::queue::RedrivePolicy>,
    max_receive_count: u32,
    use_redrive_policy: bool,
) -> u32 {
    match (policy, use_redrive_policy) {
        (Some(p), false) if p.max_receive_count <= max_receive_count => {
            log::warn!(
                "the request queue's RedrivePolicy moves a request to its dead-letter queue after {} receives, at or before max_receive_count {max_receive_count}: requests may go there without a failure completion; set max_receive_count below {} or use_redrive_policy",
                p.max_receive_count,
                p.max_receive_count
            );
            max_receive_count
        }
        (Some(p), true) => p.max_receive_count,
        (None, true) => {
            log::warn!(
                "use_redrive_policy is on but the request queue has no RedrivePolicy: a request that keeps failing is retried until its retention ends"
            );
            max_receive_count
        }
        _ => max_receive_count,
    }
}

/// `msg <id> aipid <aipid>` for log lines.
fn context(message: &ReceivedMessage, request: Option<&Value>) -> String {
    let aipid = request
        .or(serde_json::from_str::<Value>(&message.body).ok().as_ref())
        .and_then(|r| {
            r.get("aipid")
                .and_then(Value::as_str)
                .map(|s| crate::text::excerpt(s, 64))
        })
        .unwrap_or_else(|| "?".into());
    // Both are foreign text: escaped, bounded.
    format!(
        "msg {} aipid {aipid}",
        crate::text::excerpt(&message.message_id, 100)
    )
}

/// `process_message` in the directory of the running executable.
fn default_handler() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find own executable", "poll_messages", e))?;
    Ok(exe.with_file_name("process_message"))
}
