//! Log set-up: one line per event, with time, level and process id.
//!
//! Logs go to stderr, or are appended to `log_file`; with `log_file`,
//! warnings and errors go to stderr as well, so cron mails them and the
//! journal files them under their priority. The level comes from
//! `--log-level`, else `SQS_ARCHIVE_LOG`, else the program's default. HTTP
//! and TLS libraries are held at `warn` below `trace`, so debug logs show
//! our calls without their internals; even at `trace`, ureq's dump of the
//! raw bytes stays off (it would show the session token). Each line is
//! escaped by [`crate::text::escape`]: one event, one inert line.
//!
//! Three deployment details:
//! - under systemd (`JOURNAL_STREAM` names the stderr we have), lines carry
//!   a `<N>` syslog priority prefix and no timestamp: journald adds its own
//!   and files each line under its level ([`error_prefix`] gives the final
//!   error line its `<3>`);
//! - quiet mode (`poll_messages --quiet`, for cron) keeps stderr to warnings
//!   and errors, so a run that goes well prints nothing;
//! - `log_file` is reopened on SIGHUP (after logrotate moved it), at the next
//!   line written. It is opened the safe way for configured files
//!   ([`crate::files::open_append_regular`]): a symlink at the path is never
//!   followed and a FIFO never blocks; either is a configuration error (78)
//!   at start, before the lock is taken.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter};

use crate::environment::Env;
use crate::error::{Error, Result};

/// Installs the logger. Call once, first thing in `main`.
pub fn init(
    flag: Option<LevelFilter>,
    env: &Env,
    default: LevelFilter,
    file: Option<&Path>,
) -> Result<()> {
    init_quiet(flag, env, default, file, false)
}

/// [`init`], with quiet mode: logging to stderr, only warnings and errors
/// are written unless `--log-level` asks for more.
pub fn init_quiet(
    flag: Option<LevelFilter>,
    env: &Env,
    default: LevelFilter,
    file: Option<&Path>,
    quiet: bool,
) -> Result<()> {
    let configured = match env.get("SQS_ARCHIVE_LOG") {
        Some(text) => text.parse().map_err(|_| {
            Error::config(
                "environment variable SQS_ARCHIVE_LOG",
                format!("invalid level {text:?}: use error, warn, info, debug or trace"),
            )
        })?,
        None => default,
    };
    let level = match flag {
        Some(l) => l,
        None if quiet && file.is_none() => configured.min(LevelFilter::Warn),
        None => configured,
    };
    if let Some(path) = file {
        // The full log goes to the file; warnings and errors to stderr as
        // well, so cron mails them and journald files them by priority.
        let target = ReopeningFile::open(path)?;
        let file_logger = builder(level, false)
            .target(env_logger::Target::Pipe(Box::new(target)))
            .build();
        let stderr_logger = builder(level.min(LevelFilter::Warn), stderr_is_journal(env)).build();
        let max = file_logger.filter().max(stderr_logger.filter());
        // A second call (tests) keeps the first logger; that is fine.
        if log::set_boxed_logger(Box::new(Tee(file_logger, stderr_logger))).is_ok() {
            log::set_max_level(max);
        }
    } else {
        let _ = builder(level, stderr_is_journal(env)).try_init();
    }
    Ok(())
}

/// A logger for one destination: `level` for our lines, HTTP and TLS
/// libraries held at `warn` below `trace`; `journal` for `<N>` prefixes.
fn builder(level: LevelFilter, journal: bool) -> env_logger::Builder {
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
        .format(move |buf, record| {
            let line = record.args().to_string();
            let line = crate::text::escape(&line);
            if journal {
                writeln!(
                    buf,
                    "<{}>{} [{}] {}",
                    priority(record.level()),
                    record.level(),
                    std::process::id(),
                    line
                )
            } else {
                writeln!(
                    buf,
                    "{} {:<5} [{}] {}",
                    buf.timestamp_millis(),
                    record.level(),
                    std::process::id(),
                    line
                )
            }
        });
    builder
}

/// Two loggers, each with its own filter: `log_file` and stderr.
struct Tee(env_logger::Logger, env_logger::Logger);

impl log::Log for Tee {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata) || self.1.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        // Each checks its own filter.
        self.0.log(record);
        self.1.log(record);
    }

    fn flush(&self) {
        self.0.flush();
        self.1.flush();
    }
}

/// What the final error line starts with: `<3>` when stderr is journald's
/// stream (so it is filed as an error), else nothing.
pub fn error_prefix() -> &'static str {
    if stderr_is_journal(&Env::from_process()) {
        "<3>"
    } else {
        ""
    }
}

/// The syslog priority journald files a line under (`sd-daemon(3)`).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// True when `JOURNAL_STREAM` (`device:inode`) names the file our stderr is:
/// systemd set it, and stderr was not redirected since.
fn stderr_is_journal(env: &Env) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = env.get("JOURNAL_STREAM") else {
        return false;
    };
    // /proc/self/fd/2 follows the descriptor, whatever it is (a socket here).
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => journal_stream_matches(stream, meta.dev(), meta.ino()),
        Err(_) => false,
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>`, both decimal.
pub fn journal_stream_matches(stream: &str, dev: u64, ino: u64) -> bool {
    stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

/// The log file; reopened by path after a SIGHUP, so logrotate can move it.
struct ReopeningFile {
    path: PathBuf,
    file: File,
    /// Set by SIGHUP: reopen before the next line.
    hangup: Arc<AtomicBool>,
}

impl ReopeningFile {
    fn open(path: &Path) -> Result<ReopeningFile> {
        let file = crate::files::open_append_regular(path)
            .map_err(|e| e.into_error("open log file", "log_file", path))?;
        // signal-hook's flag handler only stores to an atomic: async-signal-safe.
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
            .map_err(|e| Error::io("install signal handler", "SIGHUP", e))?;
        Ok(ReopeningFile {
            path: path.to_path_buf(),
            file,
            hangup,
        })
    }

    fn reopen_if_asked(&mut self) {
        if !self.hangup.swap(false, Ordering::SeqCst) {
            return;
        }
        match crate::files::open_append_regular(&self.path) {
            Ok(file) => self.file = file,
            // Keep writing to the old file rather than lose lines.
            Err(e) => {
                let _ = writeln!(
                    self.file,
                    "log file {} not reopened after SIGHUP: {e}",
                    self.path.display()
                );
            }
        }
    }
}

impl Write for ReopeningFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.reopen_if_asked();
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.reopen_if_asked();
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_priorities_and_stream_match() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Trace), 7);
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 1));
        assert!(!journal_stream_matches("garbage", 8, 12345));
    }

    #[test]
    fn log_file_is_reopened_after_sighup() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("poll.log");
        let mut log = ReopeningFile::open(&path).unwrap();
        log.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("poll.log.1")).unwrap();
        log.write_all(b"two\n").unwrap();
        log.hangup.store(true, Ordering::SeqCst);
        log.write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("poll.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_planted_at_the_log_file_is_not_followed_on_reopen() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-log-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("poll.log");
        let target = dir.join("target");
        std::fs::write(&target, "keep\n").unwrap();
        let mut log = ReopeningFile::open(&path).unwrap();
        std::fs::rename(&path, dir.join("poll.log.1")).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        log.hangup.store(true, Ordering::SeqCst);
        log.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        let old = std::fs::read_to_string(dir.join("poll.log.1")).unwrap();
        assert!(
            old.contains("not reopened") && old.contains("symbolic link"),
            "{old}"
        );
        assert!(old.ends_with("after\n"), "{old}");
        assert!(ReopeningFile::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
