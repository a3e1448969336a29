//! A [`Poller`]: everything a run needs, resolved once from the settings
//! (client, queues, schema, handler and its environment, retry rules, the
//! completion queue's size limit). Starts no thread; [`super::run`] does.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::outcome::RetryRules;
use super::summary::Summary;
use crate::config::{QueueRole, Settings};
use crate::error::{Error, Result};
use crate::message::schema::MessageSchema;
use crate::queue::{ArchiveClient, is_fifo};

/// How long this run goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollOptions {
    pub keep_polling: bool,
    /// Only warnings and errors on stderr (cron mails any output).
    pub quiet: bool,
    pub max_messages: Option<u64>,
    pub max_runtime: Option<Duration>,
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
    /// Put before `handler` when it runs: empty for `process_message`, which
    /// arms its own parent-death signal; `poll_messages --run-handler --`
    /// for a handler of the profile's, which may not.
    pub launcher: Vec<String>,
    pub handler_env: Vec<(String, String)>,
    pub remove_env: Vec<&'static str>,
    pub settings: Settings,
    pub summary: Summary,
    /// The completion queue's size limit, read once per run.
    pub(super) completion_limit: OnceLock<usize>,
    /// `max_receive_count` after the redrive check.
    pub(super) max_receive_count: OnceLock<u32>,
    /// The metrics file (`metrics_file`); disabled unless `main` sets one.
    pub metrics: crate::metrics::Recorder,
}

impl Poller {
    /// Resolves queues, schema, client and handler from the settings;
    /// `handler_env` is what the handler needs to find the same configuration.
    pub fn new(settings: Settings, handler_env: Vec<(String, String)>) -> Result<Poller> {
        let client = crate::connect::connect(&settings)?;
        let (handler, launcher) = match &settings.handler {
            Some(argv) => {
                check_startable(&argv[0], &settings.env)?;
                let exe = std::env::current_exe()
                    .map_err(|e| Error::io("find own executable", "poll_messages", e))?;
                let launcher = vec![
                    exe.display().to_string(),
                    RUN_HANDLER.to_string(),
                    "--".to_string(),
                ];
                (argv.clone(), launcher)
            }
            None => (vec![default_handler()?.display().to_string()], Vec::new()),
        };
        let mut poller = Poller::with_client(settings, client, handler, handler_env)?;
        poller.launcher = launcher;
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
            launcher: Vec::new(),
            handler_env,
            remove_env,
            settings,
            summary: Summary::default(),
            completion_limit: OnceLock::new(),
            max_receive_count: OnceLock::new(),
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

    /// Reads the queues' attributes once: the completion size limit, and the
    /// request queue's redrive policy against `max_receive_count`.
    pub(super) fn check_queues(&self) {
        // Both backends answer: SQS, and the directory queue from its
        // attributes.json (MaximumMessageSize, RedrivePolicy) as SQS would.
        self.completion_limit();
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

    /// How long a received request stays hidden, and what each heartbeat
    /// extends it to (`visibility_timeout`, at least a second: zero would
    /// hand a running request to the next receive at once).
    pub fn visibility(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.visibility_timeout.max(1)))
    }

    /// How often a held request's visibility is extended: a third of the
    /// timeout leaves two chances before it runs out.
    pub fn heartbeat_every(&self) -> Duration {
        (self.visibility() / 3).max(Duration::from_millis(500))
    }

    pub(super) fn rules(&self) -> RetryRules {
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

/// `process_message` in the directory of the running executable.
/// `poll_messages`'s own launcher mode: arm the parent-death signal, then
/// become the handler (`poll_messages --run-handler -- PROGRAM ARGS`).
pub const RUN_HANDLER: &str = "--run-handler";

/// A handler that cannot be started stops the run before anything is
/// received (78), rather than at the first request.
fn check_startable(program: &str, env: &crate::environment::Env) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(std::path::Path::new(program))
    } else {
        let path = env.get("PATH").unwrap_or("/usr/local/bin:/usr/bin:/bin");
        path.split(':')
            .filter(|d| !d.is_empty())
            .any(|d| executable(&std::path::Path::new(d).join(program)))
    };
    if found {
        return Ok(());
    }
    Err(Error::config(
        "handler",
        format!(
            "handler {} cannot be started: no executable file there (or on PATH)",
            crate::text::quoted(program, 200)
        ),
    ))
}

fn default_handler() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find own executable", "poll_messages", e))?;
    Ok(exe.with_file_name("process_message"))
}
