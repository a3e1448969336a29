//! Small file-system helpers shared by the poller, the logger, the lock, the
//! mock queue, the metrics file and `process_message`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::Error;

/// How hard [`write_atomic`] tries to survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The file and its directory entry are synced before it returns.
    Synced,
    /// Atomic (readers see the old file or the new one) but not synced:
    /// after a crash the file may be in its earlier state.
    Atomic,
}

/// Replaces `path` with `bytes` through a temporary file beside it
/// (`.NAME.PID.tmp`, created exclusively, so a link planted at that name is
/// never followed) and a rename. `mode`, when given, is set exactly,
/// whatever the umask. On failure the temporary file is removed and `path`
/// is untouched. The archive does not use this: it writes beneath directory
/// handles (`archive::target`).
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    durability: Durability,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let create = || OpenOptions::new().write(true).create_new(true).open(&temp);
    let result = (|| {
        let mut f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by an earlier process with our pid that did not finish.
                std::fs::remove_file(&temp)?;
                create()?
            }
            other => other?,
        };
        if let Some(mode) = mode {
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        if durability == Durability::Synced {
            f.sync_all()?;
        }
        std::fs::rename(&temp, path)?;
        if durability == Durability::Synced {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Opens a file for appending, created with mode 0600 (logs may name hosts and queues).
pub fn open_append_private(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Takes an exclusive, non-blocking lock on `path` (created 0600). `None`
/// when another process holds it. The lock ends with the returned file, or
/// with the process, however it ends: no stale PID files.
///
/// The lock file must be a regular file: a symlink is not followed (nothing
/// is created where a planted link points) and a FIFO does not block the
/// open (a cron run that never ends).
pub fn try_lock(path: &Path) -> crate::error::Result<Option<File>> {
    let open_error = |e| crate::error::Error::io("open lock file", path, e);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(open_error)?;
    if !file.metadata().map_err(open_error)?.is_file() {
        return Err(open_error(std::io::Error::other(
            "it is not a regular file",
        )));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_never_follows_a_planted_temp_link() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-fsutil-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.prom");
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let temp = dir.join(format!(".f.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        write_atomic(&path, b"one", Some(0o644), Durability::Synced).unwrap();
        write_atomic(&path, b"two", None, Durability::Atomic).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!temp.exists());
        let _ = std::fs::remove_dir_all(&dir);
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
