//! Configuration: profile files, `.env`, environment variables, flags.
//!
//! Precedence, lowest first: built-in defaults, the profile file
//! (`--profile NAME` or `--config FILE`), the environment (a `.env` file
//! fills in only variables the process does not already have), then
//! command-line flags. Relative paths are relative to the working directory,
//! as in the prototype; run the tools from the install directory.
//!
//! `--profile NAME` looks for `NAME.json` in `$SQS_ARCHIVE_CONFIG_DIR`, then
//! `./config`, then `/etc/sqs-archive` ([`search_dirs`]); the first file found
//! is read, and when there is none the error lists every place searched.
//!
//! Every key is declared once, in the [`keys!`] table below: its name, the
//! variables that override it, its type, range and default, and a line of
//! help. That table drives parsing ([`Settings::resolve`] reads each key
//! through its [`K`] identifier, so a misspelt key does not compile), the
//! `--help` text ([`keys_help`]) and the README check (`tests/it/docs.rs`).
//! Loading is a pure function of the file text, an [`Env`] and the flags;
//! every configuration problem is an [`Error::Config`] (exit 78).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

mod target;

use crate::aws::credentials::ConfigKeys;
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::files::{ReadProblem, read_config_file};
use crate::secret::Secret;
pub use target::Target;

/// Which queue service to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Amazon SQS or an emulator, over HTTP.
    Sqs,
    /// The durable directory queue (`mock_dir`); needs no AWS account.
    Mock,
}

pub use crate::sqs::Protocol;

/// The system-wide configuration directory, searched last.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/sqs-archive";

/// The type, range and default of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One of a few words; the first is the default.
    Choice(&'static [&'static str]),
    /// Text (a URL, a name, a path); `default` as written, or `None` when
    /// there is none or it is derived (the help says how).
    Text { default: Option<&'static str> },
    /// A whole number from `min` to `max`.
    Int { min: u64, max: u64, default: u64 },
    /// `true` or `false` (also `1`/`0`, `yes`/`no` in variables and flags).
    Bool { default: bool },
    /// A non-empty list of strings (a program and its arguments); profile file only.
    Argv,
    /// Text read from the profile file only: its variables belong to the credential chain.
    FileText,
}

impl Kind {
    /// The default as the README and `--help` show it; `None` when there is none.
    pub fn default_text(&self) -> Option<String> {
        match self {
            Kind::Choice(words) => words.first().map(|w| w.to_string()),
            Kind::Text { default } => default.map(String::from),
            Kind::Int { default, .. } => Some(default.to_string()),
            Kind::Bool { default } => Some(default.to_string()),
            Kind::Argv | Kind::FileText => None,
        }
    }

    /// What a value must look like, for errors and help.
    pub fn expected(&self) -> String {
        match self {
            Kind::Choice(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
                quoted.join(" or ")
            }
            Kind::Text { .. } | Kind::FileText => "a string".into(),
            Kind::Int { min, max, .. } => format!("a whole number from {min} to {max}"),
            Kind::Bool { .. } => "true or false".into(),
            Kind::Argv => "a non-empty list of strings (program and arguments)".into(),
        }
    }
}

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// How the code names it.
    pub id: K,
    /// Its name in the profile file (and, with dashes, as a flag).
    pub name: &'static str,
    /// Variables that override the file, first found wins.
    pub env: &'static [&'static str],
    pub kind: Kind,
    /// One line for `--help` and the README.
    pub help: &'static str,
}

/// Declares the keys: `name [VARIABLES] kind => "help";`. The name is an
/// identifier, so code that reads a key that does not exist fails to compile.
macro_rules! keys {
    ($($name:ident [$($env:literal),*] $kind:expr => $help:literal;)*) => {
        /// A configuration key, by name; [`KEYS`] describes each.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum K {
            $($name),*
        }

        /// Every key a profile may hold, in the order of [`K`].
        pub const KEYS: &[Key] = &[
            $(Key {
                id: K::$name,
                name: stringify!($name),
                env: &[$($env),*],
                kind: $kind,
                help: $help,
            }),*
        ];
    };
}

const fn int(min: u64, max: u64, default: u64) -> Kind {
    Kind::Int { min, max, default }
}

const fn text(default: Option<&'static str>) -> Kind {
    Kind::Text { default }
}

keys! {
    backend ["SQS_ARCHIVE_BACKEND"] Kind::Choice(&["sqs", "mock"])
        => "sqs, or mock for the directory queue";
    request_queue_url ["SQS_REQUEST_QUEUE_URL"] text(None)
        => "URL of the request queue (required)";
    completion_queue_url ["SQS_COMPLETION_QUEUE_URL"] text(None)
        => "URL of the completion queue (required)";
    region ["AWS_REGION", "AWS_DEFAULT_REGION"] text(None)
        => "AWS region, e.g. eu-west-1; default: the shared config's, else from the queue URL";
    aws_profile ["AWS_PROFILE"] text(None)
        => "profile of the shared files ~/.aws/config and ~/.aws/credentials";
    endpoint_url ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"] text(None)
        => "SQS endpoint (http:// or https://); default: the region's SQS endpoint";
    protocol ["SQS_ARCHIVE_PROTOCOL"] Kind::Choice(&["query", "json"])
        => "query (XML) or json (AWS JSON 1.0)";
    aws_access_key_id [] Kind::FileText
        => "access key id (AWS_ACCESS_KEY_ID is read by the credential chain)";
    aws_secret_access_key [] Kind::FileText
        => "secret access key (AWS_SECRET_ACCESS_KEY is read by the credential chain)";
    aws_session_token [] Kind::FileText
        => "session token (AWS_SESSION_TOKEN is read by the credential chain)";
    schema_file ["SCHEMA_FILE"] text(None)
        => "JSON schema for messages; default: the built-in one";
    max_number_of_messages ["MAX_NUMBER_OF_MESSAGES"] int(1, 10, 10)
        => "messages per receive";
    wait_time_seconds ["WAIT_TIME_SECONDS"] int(0, 20, 20)
        => "long-poll wait in seconds";
    visibility_timeout ["VISIBILITY_TIMEOUT"] int(0, 43_200, 60)
        => "seconds a received message stays hidden";
    max_attempts ["AWS_MAX_ATTEMPTS"] int(1, 20, 5)
        => "tries per SQS call";
    http_timeout_seconds ["SQS_ARCHIVE_HTTP_TIMEOUT"] int(1, 3600, 10)
        => "HTTP timeout in seconds beyond the long-poll wait";
    max_message_size ["SQS_ARCHIVE_MAX_MESSAGE_SIZE"] int(1024, 1 << 30, 1 << 20)
        => "largest message body in bytes; larger ones are refused before sending";
    mock_dir ["SQS_ARCHIVE_MOCK_DIR"] text(Some("var/mock-queues"))
        => "directory of the mock queues";
    workers ["SQS_ARCHIVE_WORKERS"] int(1, 64, 4)
        => "handler threads";
    handler [] Kind::Argv
        => "handler argv list; default: process_message next to poll_messages";
    handler_timeout ["SQS_ARCHIVE_HANDLER_TIMEOUT"] int(1, 43_000, 3600)
        => "seconds before a handler is stopped (SQS hides a message 12 hours at most)";
    kill_grace_seconds [] int(0, 3600, 10)
        => "seconds between SIGTERM and SIGKILL of a handler";
    shutdown_grace_seconds [] int(0, 86_400, 60)
        => "seconds running handlers get to finish after SIGTERM";
    max_receive_count [] int(1, 1000, 5)
        => "receives before a failing request is given up";
    use_redrive_policy [] Kind::Bool { default: false }
        => "leave given-up requests to the queue's dead-letter (redrive) policy";
    retry_base_seconds [] int(0, 43_200, 10)
        => "first retry delay of a failed request";
    retry_max_seconds [] int(0, 43_200, 900)
        => "longest retry delay of a failed request";
    pass_aws_credentials_to_handler [] Kind::Bool { default: false }
        => "let the handler see AWS_* secrets";
    lock_file ["SQS_ARCHIVE_LOCK_FILE"] text(Some("var/poll_messages.lock"))
        => "lock that keeps poll_messages runs from overlapping";
    log_file ["SQS_ARCHIVE_LOG_FILE"] text(None)
        => "append poll_messages' log here instead of stderr; reopened on SIGHUP";
    metrics_file ["SQS_ARCHIVE_METRICS_FILE"] text(None)
        => "Prometheus text file poll_messages writes after each run; default: none";
    metrics_interval ["SQS_ARCHIVE_METRICS_INTERVAL"] int(1, 86_400, 60)
        => "seconds between metrics_file writes under --loop";
    source_dir ["ARCHIVE_SOURCE_DIR"] text(Some("examples/source"))
        => "where files to archive are read";
    archive_dir ["ARCHIVE_DIR"] text(Some("var/archive"))
        => "where archives are written";
    verify [] Kind::Bool { default: true }
        => "read each archived file back after it is durable and compare its SHA-256";
}

impl K {
    /// This key's row of [`KEYS`].
    pub fn key(self) -> &'static Key {
        &KEYS[self as usize]
    }

    /// The key's name in the profile file.
    pub fn name(self) -> &'static str {
        self.key().name
    }
}

/// The keys as `--help` lists them: name, variables, default, help.
pub fn keys_help() -> String {
    let mut out = String::from(
        "Configuration keys (in the profile file; the variables named override it):\n",
    );
    for key in KEYS {
        let _ = write!(out, "  {}", key.name);
        if !key.env.is_empty() {
            let _ = write!(out, " (${})", key.env.join(", $"));
        }
        let _ = write!(out, "\n      {}", key.help);
        match key.kind {
            Kind::Int { min, max, default } => {
                let _ = write!(out, "; {min} to {max}, default {default}");
            }
            _ => {
                if let Some(d) = key.kind.default_text() {
                    let _ = write!(out, "; default {d}");
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Where to find the configuration, as chosen on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub profile: Option<String>,
    pub config: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    /// Values given on the command line, by key; they win over everything.
    pub flags: BTreeMap<K, String>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: Backend,
    pub request_queue_url: Option<String>,
    pub completion_queue_url: Option<String>,
    /// The region set by a flag, the environment or the profile file; see
    /// [`crate::config::Target::resolve`] for the rest of the search.
    pub region: Option<crate::aws::endpoint::Region>,
    /// The shared-file profile (`aws_profile`, `AWS_PROFILE`, `--aws-profile`).
    pub aws_profile: Option<String>,
    /// Who named it, as the user wrote it: `AWS_PROFILE`, `--aws-profile`
    /// or `aws_profile` (a named profile must exist).
    pub aws_profile_by: Option<String>,
    pub endpoint_url: Option<String>,
    pub protocol: Protocol,
    pub config_keys: ConfigKeys,
    pub schema_file: Option<PathBuf>,
    pub max_number_of_messages: u32,
    pub wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub max_attempts: u32,
    pub http_timeout: Duration,
    pub max_message_size: usize,
    pub mock_dir: PathBuf,
    pub workers: usize,
    pub handler: Option<Vec<String>>,
    pub handler_timeout: Duration,
    pub kill_grace: Duration,
    pub shutdown_grace: Duration,
    pub max_receive_count: u32,
    pub use_redrive_policy: bool,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub pass_aws_credentials_to_handler: bool,
    pub lock_file: PathBuf,
    pub log_file: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    pub metrics_interval: Duration,
    pub source_dir: PathBuf,
    pub archive_dir: PathBuf,
    /// Read archived files back after they are durable (process_message).
    pub verify: bool,
    /// The environment the settings were read with (`.env` applied).
    pub env: Env,
    /// How the configuration was chosen, to pass on to `process_message`.
    pub source: Source,
    /// The profile file that was read, if any.
    pub file: Option<PathBuf>,
}

/// Which queue a command addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRole {
    Request,
    Completion,
}

impl Settings {
    /// Reads `.env`, the profile file and the environment, and applies the flags.
    pub fn load(source: &Source, process_env: Env) -> Result<Settings> {
        let env = apply_env_file(source, process_env)?;
        let (file, text) = match profile_path(source, &env)? {
            Some(path) => {
                let text = read_profile(&path)?;
                (Some(path), Some(text))
            }
            None => (None, None),
        };
        Self::resolve(source, env, file, text.as_deref())
    }

    /// The pure part of [`Settings::load`]: resolves from file text, environment and flags.
    pub fn resolve(
        source: &Source,
        env: Env,
        file: Option<PathBuf>,
        text: Option<&str>,
    ) -> Result<Settings> {
        let origin = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no profile file)".into());
        let map = match text {
            Some(t) => parse_file(t, &origin)?,
            None => Map::new(),
        };
        let layers = Layers {
            file: map,
            origin: origin.clone(),
            env: &env,
            flags: &source.flags,
            read: RefCell::new(BTreeSet::new()),
        };
        let backend = match layers.choice(K::backend)? {
            "mock" => Backend::Mock,
            _ => Backend::Sqs,
        };
        let protocol = match layers.choice(K::protocol)? {
            "json" => Protocol::Json,
            _ => Protocol::Query,
        };
        let request_queue_url = layers.text(K::request_queue_url)?;
        let completion_queue_url = layers.text(K::completion_queue_url)?;
        let region = layers
            .text_at(K::region)?
            .map(|(name, at)| crate::aws::endpoint::Region { name, origin: at.0 });
        let endpoint_url = layers.text(K::endpoint_url)?;
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(layers
                .origin_of(K::endpoint_url)
                .invalid(K::endpoint_url, &crate::text::url(url)));
        }
        let wait_time_seconds = layers.int(K::wait_time_seconds)? as u32;
        let http_timeout_seconds = layers.int(K::http_timeout_seconds)?;
        let secs = |k: K| -> Result<Duration> { Ok(Duration::from_secs(layers.int(k)?)) };
        let path = |k: K| -> Result<PathBuf> { Ok(layers.text(k)?.unwrap_or_default().into()) };
        let mut settings = Settings {
            backend,
            protocol,
            region,
            aws_profile: layers.text(K::aws_profile)?,
            aws_profile_by: layers.named_by(K::aws_profile),
            endpoint_url,
            config_keys: ConfigKeys {
                access_key_id: layers.file_text(K::aws_access_key_id)?,
                secret_access_key: layers.file_text(K::aws_secret_access_key)?.map(Secret::new),
                session_token: layers.file_text(K::aws_session_token)?.map(Secret::new),
                origin: origin.clone(),
            },
            schema_file: layers.text(K::schema_file)?.map(PathBuf::from),
            max_number_of_messages: layers.int(K::max_number_of_messages)? as u32,
            wait_time_seconds,
            visibility_timeout: layers.int(K::visibility_timeout)? as u32,
            max_attempts: layers.int(K::max_attempts)? as u32,
            // Long polls hold the connection for the wait; the timeout must outlast it.
            http_timeout: Duration::from_secs(u64::from(wait_time_seconds) + http_timeout_seconds),
            max_message_size: layers.int(K::max_message_size)? as usize,
            mock_dir: path(K::mock_dir)?,
            workers: layers.int(K::workers)? as usize,
            handler: layers.argv(K::handler)?,
            handler_timeout: secs(K::handler_timeout)?,
            kill_grace: secs(K::kill_grace_seconds)?,
            shutdown_grace: secs(K::shutdown_grace_seconds)?,
            max_receive_count: layers.int(K::max_receive_count)? as u32,
            use_redrive_policy: layers.bool(K::use_redrive_policy)?,
            retry_base: secs(K::retry_base_seconds)?,
            retry_max: secs(K::retry_max_seconds)?,
            pass_aws_credentials_to_handler: layers.bool(K::pass_aws_credentials_to_handler)?,
            lock_file: path(K::lock_file)?,
            log_file: layers.text(K::log_file)?.map(PathBuf::from),
            metrics_file: layers.text(K::metrics_file)?.map(PathBuf::from),
            metrics_interval: secs(K::metrics_interval)?,
            source_dir: path(K::source_dir)?,
            archive_dir: path(K::archive_dir)?,
            verify: layers.bool(K::verify)?,
            request_queue_url,
            completion_queue_url,
            file,
            source: source.clone(),
            env: Env::default(),
        };
        // Every declared key is read: a key in the table that nothing uses is a bug.
        debug_assert_eq!(
            layers.read.borrow().len(),
            KEYS.len(),
            "keys declared but not read: {:?}",
            KEYS.iter()
                .filter(|k| !layers.read.borrow().contains(&k.id))
                .map(|k| k.name)
                .collect::<Vec<_>>()
        );
        drop(layers);
        settings.env = env;
        Ok(settings)
    }

    /// The URL of a queue, or an error that says where to set it.
    pub fn queue_url(&self, role: QueueRole) -> Result<&str> {
        let (value, key) = match role {
            QueueRole::Request => (&self.request_queue_url, K::request_queue_url),
            QueueRole::Completion => (&self.completion_queue_url, K::completion_queue_url),
        };
        value
            .as_deref()
            .ok_or_else(|| missing(key, self.file.as_deref()))
    }
}

/// Error for a required key that has no value anywhere.
pub fn missing(key: K, file: Option<&Path>) -> Error {
    let key = key.key();
    let place = match file {
        Some(f) => format!("in {}", f.display()),
        None => "in a profile (--profile NAME)".into(),
    };
    let or_env = if key.env.is_empty() {
        String::new()
    } else {
        format!(" or with {}", key.env.join(" or "))
    };
    Error::config(
        key.name,
        format!("no value: set {} {place}{or_env}", key.name),
    )
}

fn apply_env_file(source: &Source, mut env: Env) -> Result<Env> {
    // poll_messages passes its --env-file on to the handler in SQS_ARCHIVE_ENV_FILE.
    let (path, required) = match (&source.env_file, env.get("SQS_ARCHIVE_ENV_FILE")) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(".env"), false),
    };
    let text = match read_config_file(&path) {
        Ok(text) => text,
        Err(ReadProblem::NotFound(_)) if !required => return Ok(env),
        Err(e) => return Err(e.into_error("read env file", &path)),
    };
    for (k, v) in parse_env_file(&text, &path)? {
        env.set_default(k, v);
    }
    Ok(env)
}

/// The directories `--profile NAME` searches, in order.
pub fn search_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = env.get("SQS_ARCHIVE_CONFIG_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("config"));
    dirs.push(PathBuf::from(SYSTEM_CONFIG_DIR));
    dirs
}

/// Reads a profile file; every failure is a configuration error (78).
fn read_profile(path: &Path) -> Result<String> {
    read_config_file(path).map_err(|e| match e {
        ReadProblem::NotFound(_) => Error::config(path.display().to_string(), "file not found"),
        e => e.into_error("read profile", path),
    })
}

/// The variables of a `.env` file. A malformed line is reported by its
/// number alone: its text may be `SECRET=...` with a typo.
fn parse_env_file(text: &str, path: &Path) -> Result<Vec<(String, String)>> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            item.map_err(|e| {
                let message = match &e {
                    dotenvy::Error::LineParse(rest, _) => match line_of(text, rest) {
                        Some(n) => format!("line {n} is not NAME=value (or a comment)"),
                        None => "a line is not NAME=value (or a comment)".to_string(),
                    },
                    dotenvy::Error::EnvVar(_) => "a variable it refers to is not set".to_string(),
                    _ => "cannot be parsed".to_string(),
                };
                Error::config(path.display().to_string(), message)
            })
        })
        .collect()
}

/// The 1-based line number where `fragment` (the text dotenvy could not
/// parse, from the bad line on) starts in `text`.
fn line_of(text: &str, fragment: &str) -> Option<usize> {
    let fragment = fragment.trim_end();
    if fragment.is_empty() {
        return None;
    }
    // Where the fragment starts a line: `X` must not be found inside `AX=1`.
    let (at, _) = text
        .match_indices(fragment)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    Some(text[..at].matches('\n').count() + 1)
}

fn profile_path(source: &Source, env: &Env) -> Result<Option<PathBuf>> {
    if let Some(path) = &source.config {
        return Ok(Some(path.clone()));
    }
    let profile = source
        .profile
        .clone()
        .or_else(|| env.get("SQS_ARCHIVE_PROFILE").map(String::from));
    if let Some(name) = profile {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            return Err(Error::Usage(format!(
                "invalid profile name {name:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        let candidates: Vec<PathBuf> = search_dirs(env)
            .into_iter()
            .map(|d| d.join(format!("{name}.json")))
            .collect();
        // A file that exists but cannot be read (or sits in a directory that
        // cannot be searched) is taken, so its error is reported, not skipped.
        let exists = |p: &PathBuf| match std::fs::metadata(p) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if let Some(found) = candidates.iter().find(|p| exists(p)) {
            return Ok(Some(found.clone()));
        }
        let searched: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::config(
            "--profile",
            format!(
                "profile {name:?} does not exist; searched {} (set SQS_ARCHIVE_CONFIG_DIR, or pass --config FILE)",
                searched.join(", ")
            ),
        ));
    }
    Ok(env.get("SQS_ARCHIVE_CONFIG").map(PathBuf::from))
}

fn parse_file(text: &str, origin: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::config(origin, format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::config(origin, "expected a JSON object of settings"));
    };
    for key in map.keys() {
        if !KEYS.iter().any(|k| k.name == key) {
            let near = KEYS
                .iter()
                .filter(|k| k.name.contains(key.as_str()) || key.contains(k.name))
                .map(|k| k.name)
                .next();
            let hint = near
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            return Err(Error::config(origin, format!("unknown key {key:?}{hint}")));
        }
    }
    Ok(map)
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
struct Origin(String);

impl Origin {
    fn invalid(&self, key: K, value: &str) -> Error {
        let key = key.key();
        let expected = match key.kind {
            Kind::Choice(_) => key.kind.expected(),
            _ => key.help.to_string(),
        };
        Error::config(
            &self.0,
            format!("invalid {} {value:?}: expected {expected}", key.name),
        )
    }

    fn wrong_type(&self, key: K, value: Option<&Value>) -> Error {
        let key = key.key();
        let not = value.map(|v| format!(", not {v}")).unwrap_or_default();
        Error::config(
            &self.0,
            format!("{} must be {}{not}", key.name, key.kind.expected()),
        )
    }
}

/// The file, the environment and the flags, read through the key table.
struct Layers<'a> {
    file: Map<String, Value>,
    origin: String,
    env: &'a Env,
    flags: &'a BTreeMap<K, String>,
    /// Keys read so far (every key must be).
    read: RefCell<BTreeSet<K>>,
}

impl Layers<'_> {
    /// The highest-precedence raw value of a key, with its origin.
    fn raw(&self, id: K) -> Option<(Value, Origin)> {
        let key = id.key();
        self.read.borrow_mut().insert(id);
        if let Some(v) = self.flags.get(&id) {
            return Some((
                Value::String(v.clone()),
                Origin(format!("flag --{}", key.name.replace('_', "-"))),
            ));
        }
        for var in key.env {
            if let Some(v) = self.env.get(var) {
                return Some((
                    Value::String(v.to_string()),
                    Origin(format!("environment variable {var}")),
                ));
            }
        }
        match self.file.get(key.name) {
            None | Some(Value::Null) => None,
            Some(v) => Some((
                v.clone(),
                Origin(format!("{} key {:?}", self.origin, key.name)),
            )),
        }
    }

    /// Which layer set a key, as a short name for messages: its flag, its
    /// variable, or the key itself (a profile file).
    fn named_by(&self, id: K) -> Option<String> {
        let key = id.key();
        if self.flags.contains_key(&id) {
            return Some(format!("--{}", key.name.replace('_', "-")));
        }
        if let Some(var) = key.env.iter().find(|v| self.env.get(v).is_some()) {
            return Some(var.to_string());
        }
        self.file.get(key.name).map(|_| key.name.to_string())
    }

    fn origin_of(&self, id: K) -> Origin {
        self.raw(id)
            .map(|v| v.1)
            .unwrap_or_else(|| Origin(self.origin.clone()))
    }

    /// A text key: its value, else its default; an empty string counts as unset.
    fn text(&self, id: K) -> Result<Option<String>> {
        let Kind::Text { default } = id.key().kind else {
            unreachable!("{id:?} is not a text key");
        };
        Ok(self
            .text_at(id)?
            .map(|(v, _)| v)
            .or(default.map(String::from)))
    }

    /// A text key's own value (no default), with where it was set.
    fn text_at(&self, id: K) -> Result<Option<(String, Origin)>> {
        match self.raw(id) {
            Some((Value::String(s), at)) if !s.is_empty() => Ok(Some((s, at))),
            None | Some((Value::String(_), _)) => Ok(None),
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }

    /// One of the key's words (the first when unset).
    fn choice(&self, id: K) -> Result<&'static str> {
        let Kind::Choice(words) = id.key().kind else {
            unreachable!("{id:?} is not a choice key");
        };
        match self.raw(id) {
            None => Ok(words[0]),
            Some((Value::String(s), _)) if s.is_empty() => Ok(words[0]),
            Some((Value::String(s), at)) => words
                .iter()
                .find(|w| **w == s)
                .copied()
                .ok_or_else(|| at.invalid(id, &s)),
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }

    /// A string that may only come from the file (keys whose variables the credential chain reads itself).
    fn file_text(&self, id: K) -> Result<Option<String>> {
        debug_assert_eq!(id.key().kind, Kind::FileText);
        self.read.borrow_mut().insert(id);
        match self.file.get(id.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // The value is never shown: these keys hold credentials.
            Some(_) => {
                Err(Origin(format!("{} key {:?}", self.origin, id.name())).wrong_type(id, None))
            }
        }
    }

    fn argv(&self, id: K) -> Result<Option<Vec<String>>> {
        debug_assert_eq!(id.key().kind, Kind::Argv);
        self.read.borrow_mut().insert(id);
        let at = || Origin(format!("{} key {:?}", self.origin, id.name()));
        match self.file.get(id.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|i| i.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    Error::config(at().0, format!("{} must be a list of strings", id.name()))
                }),
            Some(v) => Err(at().wrong_type(id, Some(v))),
        }
    }

    fn int(&self, id: K) -> Result<u64> {
        let Kind::Int { min, max, default } = id.key().kind else {
            unreachable!("{id:?} is not a number key");
        };
        let Some((value, at)) = self.raw(id) else {
            return Ok(default);
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(at.wrong_type(id, Some(&value))),
        }
    }

    fn bool(&self, id: K) -> Result<bool> {
        let Kind::Bool { default } = id.key().kind else {
            unreachable!("{id:?} is not a true/false key");
        };
        match self.raw(id) {
            None => Ok(default),
            Some((Value::Bool(b), _)) => Ok(b),
            Some((Value::String(s), at)) => match s.as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(at.wrong_type(id, Some(&Value::String(s)))),
            },
            Some((v, at)) => Err(at.wrong_type(id, Some(&v))),
        }
    }
}
/// Warns when the profile file holds a secret and others may read it.
pub fn warn_if_secret_readable(settings: &Settings) {
    use std::os::unix::fs::PermissionsExt;
    let Some(file) = &settings.file else { return };
    let keys = &settings.config_keys;
    if keys.secret_access_key.is_none() && keys.session_token.is_none() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{} holds a secret key but its mode is {:o}; run: chmod 600 {}",
                file.display(),
                mode & 0o777,
                file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: &[(K, &str)], env: &[(&str, &str)], file: Option<&str>) -> Result<Settings> {
        let source = Source {
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            ..Source::default()
        };
        Settings::resolve(
            &source,
            Env::from_pairs(env.iter().copied()),
            file.map(|_| PathBuf::from("config/test.json")),
            file,
        )
    }

    const PROTOTYPE: &str = r#"{
        "request_queue_url": "https://sqs.eu-west-1.amazonaws.com/123/req",
        "completion_queue_url": "https://sqs.eu-west-1.amazonaws.com/123/done",
        "region": "eu-west-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG",
        "schema_file": "schemas/archive-message.schema.json",
        "max_number_of_messages": 5,
        "wait_time_seconds": 10
    }"#;

    #[test]
    fn prototype_keys_load_unchanged() {
        let s = resolve(&[], &[], Some(PROTOTYPE)).unwrap();
        assert_eq!(s.backend, Backend::Sqs);
        assert_eq!(s.region.as_ref().unwrap().name, "eu-west-1");
        assert_eq!(s.max_number_of_messages, 5);
        assert_eq!(s.wait_time_seconds, 10);
        assert_eq!(s.config_keys.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(
            s.queue_url(QueueRole::Completion).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/123/done"
        );
        assert!(
            s.http_timeout > Duration::from_secs(10),
            "read timeout outlasts the long poll"
        );
        assert!(
            !format!("{s:?}").contains("wJalrXUtnFEMI"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn a_mistyped_credential_key_never_shows_its_value() {
        for file in [
            r#"{"aws_secret_access_key": ["wJalrXUtnFEMI/K7MDENG"]}"#,
            r#"{"aws_session_token": {"v": "wJalrXUtnFEMI/K7MDENG"}}"#,
            r#"{"aws_access_key_id": 12345678}"#,
        ] {
            let e = resolve(&[], &[], Some(file)).unwrap_err().to_string();
            assert!(e.contains("must be a string"), "{e}");
            assert!(!e.contains("wJalr") && !e.contains("12345678"), "{e}");
        }
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let s = resolve(&[], &[("WAIT_TIME_SECONDS", "3")], Some(PROTOTYPE)).unwrap();
        assert_eq!(s.wait_time_seconds, 3, "environment beats file");
        let s = resolve(
            &[(K::wait_time_seconds, "7")],
            &[("WAIT_TIME_SECONDS", "3")],
            Some(PROTOTYPE),
        )
        .unwrap();
        assert_eq!(s.wait_time_seconds, 7, "flag beats environment");
        let s = resolve(
            &[],
            &[("AWS_DEFAULT_REGION", "ap-south-1")],
            Some(r#"{"region":"x-1"}"#),
        )
        .unwrap();
        assert_eq!(s.region.as_ref().unwrap().name, "ap-south-1");
        let s = resolve(
            &[],
            &[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")],
            None,
        )
        .unwrap();
        let region = s.region.unwrap();
        assert_eq!(region.name, "a", "AWS_REGION before AWS_DEFAULT_REGION");
        assert_eq!(region.origin, "environment variable AWS_REGION");
        let s = resolve(
            &[],
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:2"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            s.endpoint_url.as_deref(),
            Some("http://127.0.0.1:2"),
            "service-specific endpoint wins"
        );
    }

    #[test]
    fn errors_name_file_key_and_where_to_set_it() {
        let e = resolve(&[], &[], Some(r#"{"wait_time_seconds": 30}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("config/test.json")
                && e.contains("wait_time_seconds")
                && e.contains("0 to 20"),
            "{e}"
        );
        let e = resolve(&[], &[], Some(r#"{"wait_time_second": 3}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key \"wait_time_second\"")
                && e.contains("did you mean \"wait_time_seconds\""),
            "{e}"
        );
        let e = resolve(&[], &[], Some(r#"{"region": 3}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("region must be a string"), "{e}");
        let e = resolve(&[], &[], Some("{not json")).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        assert_eq!(e.exit(), crate::exit::Exit::Config);
        let e = resolve(&[], &[("MAX_NUMBER_OF_MESSAGES", "eleven")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("environment variable MAX_NUMBER_OF_MESSAGES"),
            "{e}"
        );
        let e = resolve(&[], &[], Some("{}"))
            .unwrap()
            .queue_url(QueueRole::Request)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("config/test.json") && e.contains("SQS_REQUEST_QUEUE_URL"),
            "{e}"
        );
        let e = resolve(&[], &[], Some(r#"{"backend": "kafka"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"sqs\" or \"mock\""), "{e}");
        let e = resolve(&[], &[], Some(r#"{"handler": "process_message --x"}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("list of strings"), "{e}");
    }

    #[test]
    fn search_order_ends_in_etc() {
        assert_eq!(
            search_dirs(&Env::default()),
            [PathBuf::from("config"), PathBuf::from("/etc/sqs-archive")]
        );
        let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", "/tmp/x")]);
        assert_eq!(
            search_dirs(&env),
            [
                PathBuf::from("/tmp/x"),
                PathBuf::from("config"),
                PathBuf::from("/etc/sqs-archive")
            ]
        );
    }

    #[test]
    fn config_problems_all_exit_78() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-78-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("adir.json")).unwrap();
        std::fs::write(dir.join("latin1.json"), b"{\"region\": \"caf\xe9\"}").unwrap();
        std::fs::write(dir.join("bad.json"), "{").unwrap();
        let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", dir.to_str().unwrap())]);
        for (profile, needle) in [
            ("adir", "is a directory"),
            ("latin1", "not UTF-8"),
            ("bad", "not valid JSON"),
            ("absent", "does not exist"),
        ] {
            let source = Source {
                profile: Some(profile.into()),
                ..Source::default()
            };
            let e = Settings::load(&source, env.clone()).unwrap_err();
            assert_eq!(e.exit(), crate::exit::Exit::Config, "{profile}: {e}");
            assert!(e.to_string().contains(needle), "{profile}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn table_drives_defaults_and_help() {
        let s = resolve(&[], &[], None).unwrap();
        assert_eq!(s.wait_time_seconds, 20);
        assert_eq!(s.metrics_file, None);
        assert_eq!(s.metrics_interval, Duration::from_secs(60));
        assert_eq!(s.lock_file, PathBuf::from("var/poll_messages.lock"));
        let help = keys_help();
        for key in KEYS {
            assert!(help.contains(key.name), "{} not in --help", key.name);
            assert_eq!(key.id.name(), key.name, "KEYS is in the order of K");
            if let Kind::Choice(words) = key.kind {
                assert!(!words.is_empty());
            }
        }
        assert!(help.contains("0 to 20, default 20"), "{help}");
        let s = resolve(
            &[(K::metrics_interval, "5")],
            &[("SQS_ARCHIVE_METRICS_FILE", "m.prom")],
            None,
        )
        .unwrap();
        assert_eq!(s.metrics_file, Some(PathBuf::from("m.prom")));
        assert_eq!(s.metrics_interval, Duration::from_secs(5));
        let e = resolve(&[], &[], Some(r#"{"metrics_interval": 0}"#)).unwrap_err();
        assert!(e.to_string().contains("1 to 86400"), "{e}");
    }

    #[test]
    fn missing_profile_and_env_file() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", dir.to_str().unwrap())]);
        let source = Source {
            profile: Some("nope".into()),
            ..Source::default()
        };
        let e = Settings::load(&source, env.clone())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profile \"nope\" does not exist") && e.contains("nope.json"),
            "{e}"
        );
        for place in [
            dir.join("nope.json").display().to_string(),
            "config/nope.json".into(),
            "/etc/sqs-archive/nope.json".into(),
        ] {
            assert!(e.contains(&place), "{place} not in: {e}");
        }
        let source = Source {
            profile: Some("../etc".into()),
            ..Source::default()
        };
        assert_eq!(
            Settings::load(&source, env.clone()).unwrap_err().exit(),
            crate::exit::Exit::Usage
        );

        std::fs::write(dir.join("p.json"), r#"{"backend":"mock"}"#).unwrap();
        std::fs::write(
            dir.join("vars.env"),
            "SQS_ARCHIVE_BACKEND=sqs\nWAIT_TIME_SECONDS=4\n",
        )
        .unwrap();
        let mut env = env;
        env.set("WAIT_TIME_SECONDS", "2");
        let source = Source {
            profile: Some("p".into()),
            env_file: Some(dir.join("vars.env")),
            ..Source::default()
        };
        let s = Settings::load(&source, env.clone()).unwrap();
        assert_eq!(s.backend, Backend::Sqs, ".env beats the profile file");
        assert_eq!(s.wait_time_seconds, 2, "the process environment beats .env");
        let source = Source {
            env_file: Some(dir.join("missing.env")),
            ..source
        };
        assert!(
            Settings::load(&source, env)
                .unwrap_err()
                .to_string()
                .contains("missing.env")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_file_errors_name_the_line_never_its_text() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.env");
        std::fs::write(
            &path,
            "# comment\nA=1 # AWS_SECRET_ACCESS_KEY wJalrXUtnFEMI/K7MDENG\u{1b}[2J\n\nAWS_SECRET_ACCESS_KEY wJalrXUtnFEMI/K7MDENG\u{1b}[2J\nB=2\n",
        )
        .unwrap();
        let source = Source {
            env_file: Some(path.clone()),
            ..Source::default()
        };
        let e = Settings::load(&source, Env::from_pairs::<&str, &str>([])).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{text}");
        assert!(
            text.contains("bad.env") && text.contains("line 4"),
            "{text}"
        );
        assert!(
            !text.contains("wJalr") && !text.contains("AWS_SECRET"),
            "{text}"
        );
        // A directory, bytes that are not UTF-8: configuration problems too.
        for (name, make) in [("d.env", 0), ("latin1.env", 1)] {
            let p = dir.join(name);
            if make == 0 {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::write(&p, b"A=\xe9t\xe9\n").unwrap();
            }
            let source = Source {
                env_file: Some(p),
                ..Source::default()
            };
            let e = Settings::load(&source, Env::from_pairs::<&str, &str>([])).unwrap_err();
            assert_eq!(e.exit(), crate::exit::Exit::Config, "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
