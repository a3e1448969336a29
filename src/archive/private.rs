//! Our private directory in the archive, `archive_dir/.sqs-archive/`: the
//! lock that lets one writer at a time work on an AIP, and the staging
//! directories files are written in before they are renamed into the AIP.
//!
//! An aipid never starts with `.` and a requested name lives below
//! `archive_dir/<aipid>/`, so no request can name, collide with or plant
//! anything in here; the audit skips hidden directories. Everything is
//! reached through directory handles, created with `mkdirat` and opened
//! `O_NOFOLLOW`, on the same file system as the AIPs (so a staged file is
//! renamed, never copied, into place).
//!
//! - `locks/<aipid>.lock`: `flock(LOCK_EX)` on it for the whole run. A
//!   second run for the same aipid (a redelivery, another host on shared
//!   storage: `flock` works across NFSv4 clients) waits up to
//!   [`LOCK_WAIT`], then gives up with a temporary failure (exit 75); it
//!   never interleaves. The lock files stay (removing one would race a
//!   waiter holding its descriptor); they are empty.
//! - `staging/<aipid>.<pid>.<random>/`: mode 0700, made by this run, its
//!   files named by a counter; removed on every exit path. One a crash left
//!   behind is removed by the next run for that aipid, which holds the lock.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, Dir, FlockOperation, Mode, OFlags, flock, mkdirat, openat, unlinkat};
use rustix::io::Errno;

use crate::error::Error;

/// The private directory's name in `archive_dir`.
pub const PRIVATE_DIR: &str = ".sqs-archive";
/// How long a run waits for another run on the same AIP to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
/// The pause between two tries of the lock.
const LOCK_POLL: Duration = Duration::from_millis(25);
const PRIVATE_MODE: u32 = 0o750;
const STAGING_MODE: u32 = 0o700;

/// The exclusive lock on one AIP, held until dropped (closing the file
/// releases it; so does the end of the process, however it ends).
pub struct AipLock {
    _file: OwnedFd,
}

/// Takes the lock of `aipid`, waiting up to `wait` for another holder.
pub fn lock_aip(
    archive_dir: &OwnedFd,
    shown_archive: &Path,
    aipid: &str,
    wait: Duration,
) -> Result<AipLock, Error> {
    let locks = private_subdir(archive_dir, shown_archive, "locks")?;
    let name = format!("{aipid}.lock");
    let shown = shown_archive.join(PRIVATE_DIR).join("locks").join(&name);
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = openat(&locks, name.as_str(), flags, Mode::from_raw_mode(0o640))
        .map_err(|e| Error::io("open the lock file", &shown, e.into()))?;
    let deadline = Instant::now() + wait;
    let mut waited = false;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                if waited {
                    log::info!("AIP {aipid} is free now; its lock is taken");
                }
                return Ok(AipLock { _file: file });
            }
            Err(Errno::WOULDBLOCK | Errno::INTR) => {}
            Err(errno) => return Err(Error::io("lock", &shown, errno.into())),
        }
        if !waited {
            log::info!("AIP {aipid} is being written by another run; waiting for it");
            waited = true;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::io(
                "lock",
                &shown,
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "AIP busy: another run has been writing AIP {aipid} for over {} s; try again later",
                        wait.as_secs()
                    ),
                ),
            ));
        }
        std::thread::sleep(LOCK_POLL.min(deadline - now));
    }
}

/// A staging directory of this run's own; removed with what is left in it
/// when dropped.
pub struct Staging {
    parent: OwnedFd,
    name: String,
    fd: OwnedFd,
    shown: PathBuf,
    counter: u64,
}

impl Staging {
    /// Makes a new staging directory for `aipid`, after removing the ones
    /// earlier runs for it left behind. Call with the AIP's lock held.
    pub fn create(
        archive_dir: &OwnedFd,
        shown_archive: &Path,
        aipid: &str,
    ) -> Result<Staging, Error> {
        let parent = private_subdir(archive_dir, shown_archive, "staging")?;
        let shown_parent = shown_archive.join(PRIVATE_DIR).join("staging");
        remove_stale(&parent, &shown_parent, aipid);
        for _ in 0..16 {
            let name = format!(
                "{aipid}.{}.{:016x}",
                std::process::id(),
                crate::random::u64()
            );
            let shown = shown_parent.join(&name);
            match mkdirat(&parent, name.as_str(), Mode::from_raw_mode(STAGING_MODE)) {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(errno) => return Err(Error::io("create directory", &shown, errno.into())),
            }
            let fd = open_dir(&parent, &name).map_err(|e| Error::io("open", &shown, e.into()))?;
            return Ok(Staging {
                parent,
                name,
                fd,
                shown,
                counter: 0,
            });
        }
        Err(Error::io(
            "create a staging directory in",
            shown_parent,
            io::Error::new(io::ErrorKind::AlreadyExists, "every name tried was taken"),
        ))
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// A name not yet used in this staging directory.
    pub fn next_name(&mut self) -> String {
        self.counter += 1;
        self.counter.to_string()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: an error being returned matters more than this one.
        empty_dir(&self.fd);
        let _ = unlinkat(&self.parent, self.name.as_str(), AtFlags::REMOVEDIR);
    }
}

/// Removes the staging directories of `aipid` that runs which ended without
/// cleaning up (killed, crashed) left behind.
fn remove_stale(parent: &OwnedFd, shown_parent: &Path, aipid: &str) {
    let Ok(listing) = openat(
        parent,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let Ok(dir) = Dir::read_from(&listing) else {
        return;
    };
    let prefix = format!("{aipid}.");
    for entry in dir.flatten() {
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        // `<aipid>.<pid>.<random>`: the rest has no dot, so another aipid
        // that starts with this one and a dot is not taken for it.
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        if rest.matches('.').count() != 1 {
            continue;
        }
        if let Ok(stale) = open_dir(parent, name) {
            log::warn!(
                "removing {}, left behind by a run that did not finish",
                shown_parent.join(name).display()
            );
            empty_dir(&stale);
            let _ = unlinkat(parent, name, AtFlags::REMOVEDIR);
        }
    }
}

/// Unlinks every entry of a flat directory.
fn empty_dir(dir: &OwnedFd) {
    let Ok(listing) = openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let Ok(entries) = Dir::read_from(&listing) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            let _ = unlinkat(dir, name, AtFlags::empty());
        }
    }
}

fn open_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `archive_dir/.sqs-archive/<name>`, created when missing.
fn private_subdir(
    archive_dir: &OwnedFd,
    shown_archive: &Path,
    name: &str,
) -> Result<OwnedFd, Error> {
    let shown_private = shown_archive.join(PRIVATE_DIR);
    let private = ensure(archive_dir, PRIVATE_DIR, &shown_private)?;
    ensure(&private, name, &shown_private.join(name))
}

fn ensure(parent: &OwnedFd, name: &str, shown: &Path) -> Result<OwnedFd, Error> {
    match mkdirat(parent, name, Mode::from_raw_mode(PRIVATE_MODE)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(errno) => return Err(Error::io("create directory", shown, errno.into())),
    }
    open_dir(parent, name).map_err(|errno| match errno {
        Errno::LOOP | Errno::NOTDIR => Error::io(
            "open",
            shown,
            io::Error::other("not a directory (a symlink or a file is in the way); remove it"),
        ),
        other => Error::io("open directory", shown, other.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> (PathBuf, OwnedFd) {
        let root =
            std::env::temp_dir().join(format!("sqs-archive-private-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let fd = rustix::fs::open(
            &root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (root, fd)
    }

    #[test]
    fn a_second_lock_on_one_aip_waits_then_is_busy() {
        let (root, fd) = scratch("lock");
        let held = lock_aip(&fd, &root, "a1", LOCK_WAIT).unwrap();
        let started = Instant::now();
        let busy = lock_aip(&fd, &root, "a1", Duration::from_millis(200));
        let waited = started.elapsed();
        let error = busy.err().expect("busy");
        assert_eq!(error.exit(), crate::exit::Exit::TempFail);
        assert!(error.to_string().contains("AIP busy"), "{error}");
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        // Another AIP is not held up.
        let other = lock_aip(&fd, &root, "a2", Duration::ZERO).unwrap();
        drop(held);
        let again = lock_aip(&fd, &root, "a1", Duration::ZERO).unwrap();
        drop((other, again));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn staging_directories_are_private_and_removed() {
        let (root, fd) = scratch("staging");
        let staging_root = root.join(PRIVATE_DIR).join("staging");
        let mut staging = Staging::create(&fd, &root, "a1").unwrap();
        let path = staging.shown().to_path_buf();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(staging.next_name(), "1");
        std::fs::write(path.join("1"), b"x").unwrap();
        drop(staging);
        assert!(!path.exists());
        // One left by a killed run is removed by the next run for that AIP
        // only.
        std::fs::create_dir_all(staging_root.join("a1.99.ff")).unwrap();
        std::fs::write(staging_root.join("a1.99.ff/1"), b"x").unwrap();
        std::fs::create_dir_all(staging_root.join("a1.b.99.ff")).unwrap();
        let other = Staging::create(&fd, &root, "a2").unwrap();
        assert!(staging_root.join("a1.99.ff").exists());
        let again = Staging::create(&fd, &root, "a1").unwrap();
        assert!(!staging_root.join("a1.99.ff").exists());
        assert!(staging_root.join("a1.b.99.ff").exists());
        drop((other, again));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
