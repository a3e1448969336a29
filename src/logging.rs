//! Log set-up: one line per event, with time, level and process id.
//!
//! Logs go to stderr, or are appended to `log_file`. The level comes from
//! `--log-level`, else `SQS_ARCHIVE_LOG`, else the program's default. HTTP
//! and TLS libraries are held at `warn` below `trace`, so debug logs show
//! our calls without their internals; even at `trace`, ureq's dump of the
//! raw bytes stays off (it would show the session token). Each line is
//! escaped by [`crate::text::escape`]: one event, one inert line.

use std::io::Write;
use std::path::Path;

use log::LevelFilter;

use crate::env::Env;
use crate::error::{Error, Result};

/// Installs the logger. Call once, first thing in `main`.
pub fn init(
    flag: Option<LevelFilter>,
    env: &Env,
    default: LevelFilter,
    file: Option<&Path>,
) -> Result<()> {
    let level = match flag {
        Some(l) => l,
        None => match env.get("SQS_ARCHIVE_LOG") {
            Some(text) => text.parse().map_err(|_| {
                Error::config(
                    "environment variable SQS_ARCHIVE_LOG",
                    format!("invalid level {text:?}: use error, warn, info, debug or trace"),
                )
            })?,
            None => default,
        },
    };
    let libraries = if level >= LevelFilter::Trace {
        level
    } else {
        level.min(LevelFilter::Warn)
    };
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .filter_module("ureq", libraries)
        // Its trace level dumps every byte on the wire: the session token,
        // the signature, the messages. Never worth that.
        .filter_module("ureq_proto", libraries.min(LevelFilter::Debug))
        .filter_module("rustls", libraries)
        // Every line escaped (`text::escape`): log lines quote servers,
        // handlers and messages, and a log is read on a terminal. Text
        // escaped before is left as it is (escaping is idempotent).
        .format(|buf, record| {
            let line = record.args().to_string();
            writeln!(
                buf,
                "{} {:<5} [{}] {}",
                buf.timestamp_millis(),
                record.level(),
                std::process::id(),
                crate::text::escape(&line)
            )
        });
    if let Some(path) = file {
        let f = crate::fsutil::open_append_private(path)
            .map_err(|e| Error::io("open log file", path, e))?;
        builder.target(env_logger::Target::Pipe(Box::new(f)));
    }
    // A second call (tests) keeps the first logger; that is fine.
    let _ = builder.try_init();
    Ok(())
}
