//! The one declarative table of configuration keys: name, variables, type
//! and range, default, help. It drives parsing, `--help` and the README
//! check; a key is read through its [`K`] identifier, so a misspelt key does
//! not compile.

use std::fmt::Write as _;

use crate::environment::Env;
use crate::error::{Error, Result};

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
    schema_file ["SQS_ARCHIVE_SCHEMA_FILE"] text(None)
        => "JSON schema for messages; default: the built-in one";
    max_number_of_messages ["SQS_ARCHIVE_MAX_NUMBER_OF_MESSAGES"] int(1, 10, 10)
        => "messages per receive";
    wait_time_seconds ["SQS_ARCHIVE_WAIT_TIME_SECONDS"] int(0, 20, 20)
        => "long-poll wait in seconds";
    visibility_timeout ["SQS_ARCHIVE_VISIBILITY_TIMEOUT"] int(0, 43_200, 60)
        => "seconds a received message stays hidden";
    max_attempts ["AWS_MAX_ATTEMPTS"] int(1, u32::MAX as u64, 5)
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
    audit_metrics_file ["SQS_ARCHIVE_AUDIT_METRICS_FILE"] text(None)
        => "Prometheus text file sqs_archive audit writes after each audit; default: none";
    source_dir ["SQS_ARCHIVE_SOURCE_DIR"] text(Some("examples/source"))
        => "where files to archive are read";
    archive_dir ["SQS_ARCHIVE_ARCHIVE_DIR"] text(Some("var/archive"))
        => "where archives are written: a directory, or s3://BUCKET/PREFIX";
    verify [] Kind::Bool { default: true }
        => "read each archived file back after it is durable and compare its SHA-256";
    s3_endpoint_url ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] text(None)
        => "S3 endpoint for an s3:// archive_dir; default: the profile's endpoint_url, else AWS's";
    s3_storage_class ["SQS_ARCHIVE_S3_STORAGE_CLASS"] Kind::Choice(&["STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"])
        => "storage class of archived S3 objects";
    s3_sse ["SQS_ARCHIVE_S3_SSE"] Kind::Choice(&["none", "AES256", "aws:kms"])
        => "server-side encryption of archived S3 objects";
    s3_sse_kms_key_id ["SQS_ARCHIVE_S3_SSE_KMS_KEY_ID"] text(None)
        => "KMS key id or ARN for s3_sse = aws:kms; default: the account's aws/s3 key";
    s3_part_size ["SQS_ARCHIVE_S3_PART_SIZE"] int(5, 5120, 16)
        => "MiB per S3 part; larger files go in parts (memory: (s3_threads + 1) x part)";
    s3_threads ["SQS_ARCHIVE_S3_THREADS"] int(1, 64, 4)
        => "S3 parts in flight at once (small files: 4 per thread)";
    s3_addressing_style ["SQS_ARCHIVE_S3_ADDRESSING_STYLE"] Kind::Choice(&["auto", "path", "virtual"])
        => "S3 addressing; default: the profile's s3.addressing_style, else auto";
}

/// Variables the toolkit once read, refused with the name that replaced
/// them: an unprefixed name in a cron environment or an implicit `.env`
/// must not silently steer the archive. The prototype's five
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `SQS_REQUEST_QUEUE_URL`, `SQS_COMPLETION_QUEUE_URL`) and the AWS SDKs' own
/// stay as they are; every other variable is `SQS_ARCHIVE_…`.
pub const RETIRED_VARIABLES: [(&str, &str); 6] = [
    ("ARCHIVE_DIR", "SQS_ARCHIVE_ARCHIVE_DIR"),
    ("ARCHIVE_SOURCE_DIR", "SQS_ARCHIVE_SOURCE_DIR"),
    ("SCHEMA_FILE", "SQS_ARCHIVE_SCHEMA_FILE"),
    ("VISIBILITY_TIMEOUT", "SQS_ARCHIVE_VISIBILITY_TIMEOUT"),
    ("WAIT_TIME_SECONDS", "SQS_ARCHIVE_WAIT_TIME_SECONDS"),
    (
        "MAX_NUMBER_OF_MESSAGES",
        "SQS_ARCHIVE_MAX_NUMBER_OF_MESSAGES",
    ),
];

/// A configuration error for the first retired variable set in `env`.
pub fn refuse_retired_variables(env: &Env) -> Result<()> {
    for (old, new) in RETIRED_VARIABLES {
        if env.get(old).is_some() {
            return Err(Error::config(
                format!("environment variable {old}"),
                format!("{old} is no longer read; use {new}"),
            ));
        }
    }
    Ok(())
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

/// The configuration reference: one Markdown table row per key (name,
/// variables, default, values, meaning), as `docs/configuration.md` holds it
/// between its `keys:begin`/`keys:end` markers (checked by
/// `tests/it/docs.rs`, so the document cannot drift from the table).
pub fn reference_table() -> String {
    let mut out =
        String::from("| key | variables | default | values | meaning |\n|---|---|---|---|---|\n");
    for key in KEYS {
        let vars: Vec<String> = key.env.iter().map(|v| format!("`{v}`")).collect();
        let default = match key.kind {
            Kind::Int { default, .. } => default.to_string(),
            Kind::Bool { default } => default.to_string(),
            _ => key
                .kind
                .default_text()
                .map(|d| format!("`{d}`"))
                .unwrap_or_default(),
        };
        let values = match key.kind {
            Kind::Choice(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Kind::Int { min, max, .. } => format!("{min}-{max}"),
            Kind::Bool { .. } => "true, false".into(),
            Kind::Argv => "list of strings".into(),
            Kind::Text { .. } | Kind::FileText => "text".into(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {default} | {values} | {} |",
            key.name,
            vars.join(", "),
            key.help.replace('|', "\\|")
        );
    }
    out
}
