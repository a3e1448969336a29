//! Configuration: profiles in `config/`, `.env`, environment variables, flags.
//!
//! Precedence, lowest first: built-in defaults, the profile file
//! (`config/NAME.json` or `--config FILE`), the environment (a `.env` file
//! fills in only variables the process does not already have), then
//! command-line flags. Relative paths are relative to the working directory,
//! as in the prototype; run the tools from the install directory.
//!
//! Every key is listed once in [`KEYS`], with the variable that overrides it,
//! so an error can always say where a value can be set. Loading is a pure
//! function of the file text, an [`Env`] and the flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::credentials::ConfigKeys;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Which queue service to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Amazon SQS or an emulator, over HTTP.
    Sqs,
    /// The durable directory queue (`mock_dir`); needs no AWS account.
    Mock,
}

/// The SQS wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Form-encoded query API with XML answers (`Version=2012-11-05`).
    Query,
    /// AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`).
    Json,
}

/// One configuration key: its name in the profile file and the variables that override it.
pub struct Key {
    pub name: &'static str,
    pub env: &'static [&'static str],
    pub help: &'static str,
}

/// Every key a profile may hold.
pub const KEYS: &[Key] = &[
    Key {
        name: "backend",
        env: &["SQS_ARCHIVE_BACKEND"],
        help: "\"sqs\" or \"mock\"",
    },
    Key {
        name: "request_queue_url",
        env: &["SQS_REQUEST_QUEUE_URL"],
        help: "URL of the request queue",
    },
    Key {
        name: "completion_queue_url",
        env: &["SQS_COMPLETION_QUEUE_URL"],
        help: "URL of the completion queue",
    },
    Key {
        name: "region",
        env: &["AWS_REGION", "AWS_DEFAULT_REGION"],
        help: "AWS region, e.g. eu-west-1",
    },
    Key {
        name: "endpoint_url",
        env: &["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"],
        help: "SQS endpoint; default https://sqs.<region>.amazonaws.com",
    },
    Key {
        name: "protocol",
        env: &["SQS_ARCHIVE_PROTOCOL"],
        help: "\"query\" (default) or \"json\"",
    },
    Key {
        name: "aws_access_key_id",
        env: &["AWS_ACCESS_KEY_ID"],
        help: "access key id",
    },
    Key {
        name: "aws_secret_access_key",
        env: &["AWS_SECRET_ACCESS_KEY"],
        help: "secret access key",
    },
    Key {
        name: "aws_session_token",
        env: &["AWS_SESSION_TOKEN"],
        help: "session token",
    },
    Key {
        name: "schema_file",
        env: &["SCHEMA_FILE"],
        help: "JSON schema for messages; default: the built-in one",
    },
    Key {
        name: "max_number_of_messages",
        env: &["MAX_NUMBER_OF_MESSAGES"],
        help: "messages per receive, 1 to 10",
    },
    Key {
        name: "wait_time_seconds",
        env: &["WAIT_TIME_SECONDS"],
        help: "long-poll wait, 0 to 20",
    },
    Key {
        name: "visibility_timeout",
        env: &["VISIBILITY_TIMEOUT"],
        help: "seconds a received message stays hidden, 0 to 43200",
    },
    Key {
        name: "max_attempts",
        env: &["AWS_MAX_ATTEMPTS"],
        help: "tries per SQS call, 1 to 20",
    },
    Key {
        name: "http_timeout_seconds",
        env: &["SQS_ARCHIVE_HTTP_TIMEOUT"],
        help: "HTTP timeout beyond the long-poll wait",
    },
    Key {
        name: "max_message_size",
        env: &["SQS_ARCHIVE_MAX_MESSAGE_SIZE"],
        help: "largest body in bytes, default 1048576",
    },
    Key {
        name: "mock_dir",
        env: &["SQS_ARCHIVE_MOCK_DIR"],
        help: "directory of the mock queues",
    },
    Key {
        name: "workers",
        env: &["SQS_ARCHIVE_WORKERS"],
        help: "handler threads, 1 to 64",
    },
    Key {
        name: "handler",
        env: &[],
        help: "handler argv list; default: process_message next to poll_messages",
    },
    Key {
        name: "handler_timeout",
        env: &["SQS_ARCHIVE_HANDLER_TIMEOUT"],
        help: "seconds before a handler is killed (SQS hides a message 12 hours at most)",
    },
    Key {
        name: "kill_grace_seconds",
        env: &[],
        help: "seconds between SIGTERM and SIGKILL",
    },
    Key {
        name: "shutdown_grace_seconds",
        env: &[],
        help: "seconds running handlers get to finish after SIGTERM",
    },
    Key {
        name: "max_receive_count",
        env: &[],
        help: "receives before a failing request is given up",
    },
    Key {
        name: "use_redrive_policy",
        env: &[],
        help: "leave given-up requests to the queue's dead-letter policy",
    },
    Key {
        name: "retry_base_seconds",
        env: &[],
        help: "first retry delay of a failed request",
    },
    Key {
        name: "retry_max_seconds",
        env: &[],
        help: "longest retry delay of a failed request",
    },
    Key {
        name: "pass_aws_credentials_to_handler",
        env: &[],
        help: "let the handler see AWS_* secrets",
    },
    Key {
        name: "lock_file",
        env: &["SQS_ARCHIVE_LOCK_FILE"],
        help: "lock that keeps poll_messages runs from overlapping",
    },
    Key {
        name: "log_file",
        env: &["SQS_ARCHIVE_LOG_FILE"],
        help: "append logs here instead of stderr",
    },
    Key {
        name: "source_dir",
        env: &["ARCHIVE_SOURCE_DIR"],
        help: "where files to archive are read",
    },
    Key {
        name: "archive_dir",
        env: &["ARCHIVE_DIR"],
        help: "where archives are written",
    },
];

/// Where to find the configuration, as chosen on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub profile: Option<String>,
    pub config: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    /// Flag values by key name; they win over everything.
    pub flags: BTreeMap<&'static str, String>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: Backend,
    pub request_queue_url: Option<String>,
    pub completion_queue_url: Option<String>,
    pub region: String,
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
    pub source_dir: PathBuf,
    pub archive_dir: PathBuf,
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
                let text = read_config_file(&path).map_err(|e| match (&e, &source.profile) {
                    (ReadProblem::NotFound(_), Some(p)) => Error::config(
                        path.display().to_string(),
                        format!("profile {p:?} does not exist (looked for this file); pass --profile with a file in config/ or --config FILE"),
                    ),
                    (ReadProblem::NotFound(_), None) => {
                        Error::config(path.display().to_string(), "file not found")
                    }
                    _ => e.into_error("read profile", &path),
                })?;
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
        };
        let backend = match layers
            .string("backend")?
            .as_ref()
            .map(|v| (v.0.as_str(), &v.1))
        {
            None | Some(("sqs", _)) => Backend::Sqs,
            Some(("mock", _)) => Backend::Mock,
            Some((other, at)) => return Err(at.invalid("backend", other)),
        };
        let protocol = match layers
            .string("protocol")?
            .as_ref()
            .map(|v| (v.0.as_str(), &v.1))
        {
            None | Some(("query", _)) => Protocol::Query,
            Some(("json", _)) => Protocol::Json,
            Some((other, at)) => return Err(at.invalid("protocol", other)),
        };
        let request_queue_url = layers.string("request_queue_url")?.map(|v| v.0);
        let completion_queue_url = layers.string("completion_queue_url")?.map(|v| v.0);
        let region = match layers.string("region")? {
            Some((r, _)) => r,
            None => request_queue_url
                .as_deref()
                .or(completion_queue_url.as_deref())
                .and_then(region_from_url)
                .unwrap_or_else(|| "us-east-1".into()),
        };
        let endpoint_url = layers.string("endpoint_url")?.map(|v| v.0);
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(layers
                .origin_of("endpoint_url")
                .invalid("endpoint_url", &crate::text::url(url)));
        }
        let wait_time_seconds = layers.int("wait_time_seconds", 0, 20, 20)? as u32;
        let http_timeout_seconds = layers.int("http_timeout_seconds", 1, 3600, 10)?;
        let handler = match layers.file.get("handler") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if !items.is_empty() => Some(
                items
                    .iter()
                    .map(|i| i.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        layers
                            .origin_of("handler")
                            .wrong_type("handler", "a list of strings")
                    })?,
            ),
            Some(_) => {
                return Err(layers.origin_of("handler").wrong_type(
                    "handler",
                    "a non-empty list of strings (program and arguments)",
                ));
            }
        };
        let path = |key: &str, default: &str| -> Result<PathBuf> {
            Ok(layers
                .string(key)?
                .map(|v| v.0)
                .unwrap_or_else(|| default.to_string())
                .into())
        };
        Ok(Settings {
            backend,
            protocol,
            region,
            endpoint_url,
            config_keys: ConfigKeys {
                access_key_id: layers.file_string("aws_access_key_id")?,
                secret_access_key: layers
                    .file_string("aws_secret_access_key")?
                    .map(Secret::new),
                session_token: layers.file_string("aws_session_token")?.map(Secret::new),
                origin: origin.clone(),
            },
            schema_file: layers.string("schema_file")?.map(|v| PathBuf::from(v.0)),
            max_number_of_messages: layers.int("max_number_of_messages", 1, 10, 10)? as u32,
            wait_time_seconds,
            visibility_timeout: layers.int("visibility_timeout", 0, 43_200, 60)? as u32,
            max_attempts: layers.int("max_attempts", 1, 20, 5)? as u32,
            // Long polls hold the connection for the wait; the timeout must outlast it.
            http_timeout: Duration::from_secs(u64::from(wait_time_seconds) + http_timeout_seconds),
            max_message_size: layers.int("max_message_size", 1024, 1 << 30, 1 << 20)? as usize,
            mock_dir: path("mock_dir", "var/mock-queues")?,
            workers: layers.int("workers", 1, 64, 4)? as usize,
            handler,
            // SQS keeps a message hidden 12 hours after its receipt at most.
            handler_timeout: Duration::from_secs(layers.int("handler_timeout", 1, 43_000, 3600)?),
            kill_grace: Duration::from_secs(layers.int("kill_grace_seconds", 0, 3600, 10)?),
            shutdown_grace: Duration::from_secs(layers.int(
                "shutdown_grace_seconds",
                0,
                86_400,
                60,
            )?),
            max_receive_count: layers.int("max_receive_count", 1, 1000, 5)? as u32,
            use_redrive_policy: layers.bool("use_redrive_policy", false)?,
            retry_base: Duration::from_secs(layers.int("retry_base_seconds", 0, 43_200, 10)?),
            retry_max: Duration::from_secs(layers.int("retry_max_seconds", 0, 43_200, 900)?),
            pass_aws_credentials_to_handler: layers
                .bool("pass_aws_credentials_to_handler", false)?,
            lock_file: path("lock_file", "var/poll_messages.lock")?,
            log_file: layers.string("log_file")?.map(|v| PathBuf::from(v.0)),
            source_dir: path("source_dir", "examples/source")?,
            archive_dir: path("archive_dir", "var/archive")?,
            request_queue_url,
            completion_queue_url,
            file,
            source: source.clone(),
            env,
        })
    }

    /// The URL of a queue, or an error that says where to set it.
    pub fn queue_url(&self, role: QueueRole) -> Result<&str> {
        let (value, key) = match role {
            QueueRole::Request => (&self.request_queue_url, "request_queue_url"),
            QueueRole::Completion => (&self.completion_queue_url, "completion_queue_url"),
        };
        value
            .as_deref()
            .ok_or_else(|| missing(key, self.file.as_deref()))
    }

    /// The endpoint requests are sent to: `endpoint_url` if set, else the regional one.
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://sqs.{}.amazonaws.com", self.region))
    }
}

/// Error for a required key that has no value anywhere.
pub fn missing(key: &str, file: Option<&Path>) -> Error {
    let k = KEYS.iter().find(|k| k.name == key);
    let vars = k.map(|k| k.env.join(" or ")).unwrap_or_default();
    let place = match file {
        Some(f) => format!("in {}", f.display()),
        None => "in a profile (--profile NAME)".into(),
    };
    let or_env = if vars.is_empty() {
        String::new()
    } else {
        format!(" or with {vars}")
    };
    Error::config(key, format!("no value: set {key} {place}{or_env}"))
}

/// `https://sqs.eu-west-1.amazonaws.com/...` → `eu-west-1`.
fn region_from_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sqs"), Some(region), Some("amazonaws")) => Some(region.to_string()),
        _ => None,
    }
}

/// Why a configuration file could not be read: a configuration problem
/// (exit 78), or a file named on purpose that is not there (66). The file is
/// named, its content never shown (a `.env` line may hold a secret).
#[derive(Debug)]
pub enum ReadProblem {
    NotFound(std::io::Error),
    IsDirectory,
    NotUtf8,
    Other(std::io::Error),
}

impl ReadProblem {
    /// The error for `path` (`action` is e.g. `"read CA bundle"`): a
    /// configuration error (78), except a file named on purpose that does
    /// not exist (66, as the README says).
    pub fn into_error(self, action: &'static str, path: &Path) -> Error {
        let why = match self {
            ReadProblem::NotFound(e) => return Error::io(action, path, e),
            ReadProblem::IsDirectory => "it is a directory, not a file".to_string(),
            ReadProblem::NotUtf8 => "it is not UTF-8 text".to_string(),
            ReadProblem::Other(e) => e.to_string(),
        };
        Error::config(
            path.display().to_string(),
            format!("cannot {action}: {why}"),
        )
    }
}

/// Reads a configuration file (profile, `.env`, schema, CA bundle) as text.
pub fn read_config_file(path: &Path) -> std::result::Result<String, ReadProblem> {
    if path.is_dir() {
        return Err(ReadProblem::IsDirectory);
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadProblem::NotFound(e),
        std::io::ErrorKind::IsADirectory => ReadProblem::IsDirectory,
        std::io::ErrorKind::InvalidData => ReadProblem::NotUtf8,
        _ => ReadProblem::Other(e),
    })
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
        let dir = env.get("SQS_ARCHIVE_CONFIG_DIR").unwrap_or("config");
        return Ok(Some(Path::new(dir).join(format!("{name}.json"))));
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
    fn invalid(&self, key: &str, value: &str) -> Error {
        let help = KEYS
            .iter()
            .find(|k| k.name == key)
            .map(|k| k.help)
            .unwrap_or("");
        Error::config(&self.0, format!("invalid {key} {value:?}: expected {help}"))
    }

    fn wrong_type(&self, key: &str, expected: &str) -> Error {
        Error::config(&self.0, format!("{key} must be {expected}"))
    }
}

struct Layers<'a> {
    file: Map<String, Value>,
    origin: String,
    env: &'a Env,
    flags: &'a BTreeMap<&'static str, String>,
}

impl Layers<'_> {
    /// The highest-precedence raw value of a key, as text, with its origin.
    fn raw(&self, name: &str) -> Result<Option<(Value, Origin)>> {
        if let Some(v) = self.flags.get(name) {
            return Ok(Some((
                Value::String(v.clone()),
                Origin(format!("flag --{}", name.replace('_', "-"))),
            )));
        }
        let key = KEYS
            .iter()
            .find(|k| k.name == name)
            .expect("every key is in KEYS");
        for var in key.env {
            if let Some(v) = self.env.get(var) {
                return Ok(Some((
                    Value::String(v.to_string()),
                    Origin(format!("environment variable {var}")),
                )));
            }
        }
        Ok(match self.file.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some((v.clone(), Origin(format!("{} key {name:?}", self.origin)))),
        })
    }

    fn origin_of(&self, name: &str) -> Origin {
        self.raw(name)
            .ok()
            .flatten()
            .map(|v| v.1)
            .unwrap_or_else(|| Origin(self.origin.clone()))
    }

    fn string(&self, name: &str) -> Result<Option<(String, Origin)>> {
        match self.raw(name)? {
            None => Ok(None),
            Some((Value::String(s), _)) if s.is_empty() => Ok(None),
            Some((Value::String(s), at)) => Ok(Some((s, at))),
            Some((_, at)) => Err(at.wrong_type(name, "a string")),
        }
    }

    /// A string that may only come from the file (keys whose variables the credential chain reads itself).
    fn file_string(&self, name: &str) -> Result<Option<String>> {
        match self.file.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => {
                Err(Origin(format!("{} key {name:?}", self.origin)).wrong_type(name, "a string"))
            }
        }
    }

    fn int(&self, name: &str, min: u64, max: u64, default: u64) -> Result<u64> {
        let Some((value, at)) = self.raw(name)? else {
            return Ok(default);
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(at.wrong_type(
                name,
                &format!("a whole number from {min} to {max}, not {value}"),
            )),
        }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.raw(name)? {
            None => Ok(default),
            Some((Value::Bool(b), _)) => Ok(b),
            Some((Value::String(s), at)) => match s.as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(at.wrong_type(name, "true or false")),
            },
            Some((_, at)) => Err(at.wrong_type(name, "true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        flags: &[(&'static str, &str)],
        env: &[(&str, &str)],
        file: Option<&str>,
    ) -> Result<Settings> {
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
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.max_number_of_messages, 5);
        assert_eq!(s.wait_time_seconds, 10);
        assert_eq!(s.config_keys.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(
            s.queue_url(QueueRole::Completion).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/123/done"
        );
        assert_eq!(s.endpoint(), "https://sqs.eu-west-1.amazonaws.com");
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
    fn precedence_is_file_then_env_then_flags() {
        let s = resolve(&[], &[("WAIT_TIME_SECONDS", "3")], Some(PROTOTYPE)).unwrap();
        assert_eq!(s.wait_time_seconds, 3, "environment beats file");
        let s = resolve(
            &[("wait_time_seconds", "7")],
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
        assert_eq!(s.region, "ap-south-1");
        let s = resolve(
            &[],
            &[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")],
            None,
        )
        .unwrap();
        assert_eq!(s.region, "a", "AWS_REGION before AWS_DEFAULT_REGION");
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
            s.endpoint(),
            "http://127.0.0.1:2",
            "service-specific endpoint wins"
        );
    }

    #[test]
    fn region_defaults_from_queue_url() {
        let s = resolve(
            &[],
            &[(
                "SQS_REQUEST_QUEUE_URL",
                "https://sqs.ca-central-1.amazonaws.com/1/q",
            )],
            None,
        )
        .unwrap();
        assert_eq!(s.region, "ca-central-1");
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
