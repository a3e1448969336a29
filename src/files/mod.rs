//! File-system helpers shared by the configuration, the poller, the logger,
//! the lock, the mock queue, the metrics file and `process_message`; above
//! all the one safe way to open a file a user or a variable names:
//! [`read_config_file`] to read one ([`read`]), [`write_configured`] and
//! [`open_append_regular`] to write one ([`write`]).

pub mod read;
pub mod write;

use std::fs::File;
use std::path::Path;

pub use read::{ConfigFile, ReadProblem, read_capped, read_config_file};
pub use write::{
    Durability, WriteProblem, check_write_target, open_append_regular, same_file, write_atomic,
    write_configured,
};

/// Takes an exclusive, non-blocking lock on `path` (created 0600). `None`
/// when another process holds it. The lock ends with the returned file, or
/// with the process, however it ends: no stale PID files.
///
/// The lock file must be a regular file ([`open_append_regular`]): a
/// symlink is not followed (nothing is created where a planted link points)
/// and a FIFO does not block the open (a cron run that never ends); either
/// is a configuration error (78).
pub fn try_lock(path: &Path) -> crate::error::Result<Option<File>> {
    let file =
        open_append_regular(path).map_err(|e| e.into_error("open lock file", "lock_file", path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(crate::error::Error::io("lock", path, e)),
    }
}

/// Raises this process's soft limit on open files to its hard limit.
/// `process_message` holds a handle on each directory of an AIP and on up to
/// 32 files being written; the usual soft limit of 1024 would make a large
/// tree fail (and be retried) for no reason of its own.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    // `None` is "unlimited".
    let limit = getrlimit(Resource::Nofile);
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            log::debug!("cannot raise the open-file limit: {e}");
        }
    }
}

/// Test helper: makes a FIFO at `path` (mode 0600), for tests that check a
/// FIFO is refused without blocking.
#[cfg(test)]
pub fn make_fifo(path: &std::path::Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}
