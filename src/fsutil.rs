//! Small file-system helpers shared by the poller, the logger and the lock.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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
pub fn try_lock(path: &Path) -> crate::error::Result<Option<File>> {
    let file = open_append_private(path)
        .map_err(|e| crate::error::Error::io("open lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(crate::error::Error::io("lock", path, e)),
    }
}

/// Warns when the profile file holds a secret and others may read it.
pub fn warn_if_secret_readable(settings: &crate::config::Settings) {
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
