//! This process's replica of one directory queue: the queue's directory
//! opened without following a symlink, its lock, and its journal read into a
//! [`QueueModel`] (incrementally: only what other processes appended since
//! the last call), appended to, and compacted. What the file holds is
//! [`crate::queue::journal`]'s; what the records mean is the model's; the
//! client calls are [`crate::queue::dir`]'s. Damaged records and journals
//! are set aside in `corrupt/` here, with one error line each.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::queue::journal;
use crate::queue::model::{Change, QueueModel};

/// Where unreadable records and journals are moved, in the queue's directory.
pub const CORRUPT_DIR: &str = "corrupt";
/// The journal, in the queue's directory.
pub const JOURNAL_FILE: &str = "journal";
const LOCK_FILE: &str = ".lock";
/// A journal is compacted once it holds at least this many records and
/// twice what a compacted one would (see [`QueueModel::retained`]).
const COMPACT_AFTER: usize = 1024;

/// One queue as this process last read it.
#[derive(Debug, Default)]
pub(super) struct Replica {
    pub(super) model: QueueModel,
    journal: Option<File>,
    /// Device and inode of `journal`: a compaction replaces the file.
    identity: (u64, u64),
    /// Bytes of the journal applied to `model`.
    offset: u64,
    /// Records in the journal.
    records: usize,
    /// A damaged record was set aside: rewrite the journal without it.
    damaged: bool,
    /// The old-format warning was given.
    warned: bool,
}

/// A queue's name and directory.
pub(super) struct Queue {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) fifo: bool,
}

impl Queue {
    /// The queue's directory, created if need be; a symlink is not followed.
    pub(super) fn open_dir(&self) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let open = || rustix::fs::open(&self.path, flags, Mode::empty());
        let opened = match open() {
            Err(Errno::NOENT) => {
                std::fs::create_dir_all(&self.path)
                    .map_err(|e| Error::io("create mock queue", &self.path, e))?;
                open()
            }
            other => other,
        };
        opened.map_err(|e| {
            let e = match e {
                Errno::LOOP | Errno::NOTDIR => {
                    std::io::Error::other("it is not a directory (a symlink there is not followed)")
                }
                e => e.into(),
            };
            Error::io("open mock queue", &self.path, e)
        })
    }

    /// Holds the queue's lock until the returned handle is dropped.
    pub(super) fn lock(&self, dir: &OwnedFd) -> Result<OwnedFd> {
        let path = || self.path.join(LOCK_FILE);
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, LOCK_FILE, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| Error::io("open lock", path(), e.into()))?;
        loop {
            match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::io("lock", path(), e.into())),
                Ok(()) => return Ok(fd),
            }
        }
    }

    fn io(&self, action: &'static str, file: &str, e: impl Into<std::io::Error>) -> Error {
        Error::io(action, self.path.join(file), e.into())
    }

    /// Moves a journal that cannot be read into `corrupt/`.
    fn set_aside(&self, dir: &OwnedFd, problem: &str, now: u64) -> Result<()> {
        let target = format!("{CORRUPT_DIR}/{JOURNAL_FILE}-{now}");
        self.make_corrupt_dir(dir)?;
        rustix::fs::renameat(dir, JOURNAL_FILE, dir, &target)
            .map_err(|e| self.io("move aside", JOURNAL_FILE, e))?;
        log::error!(
            "mock queue {}: its journal cannot be read ({problem}); moved to {}, the queue starts empty",
            crate::text::escape(&self.name),
            crate::text::escape(&self.path.join(&target).display().to_string()),
        );
        Ok(())
    }

    /// Keeps a damaged record in `corrupt/` for a person, with one error line.
    fn keep_damaged(
        &self,
        dir: &OwnedFd,
        (at, bytes): (u64, &[u8]),
        problem: &str,
        now: u64,
    ) -> Result<()> {
        self.make_corrupt_dir(dir)?;
        let name = format!("{CORRUPT_DIR}/{JOURNAL_FILE}-{now}-at-{at}.record");
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, &name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.io("create", &name, e))?;
        File::from(fd)
            .write_all(bytes)
            .map_err(|e| self.io("write", &name, e))?;
        log::error!(
            "mock queue {}: a journal record at byte {at} cannot be read ({problem}); moved to {}",
            crate::text::escape(&self.name),
            crate::text::escape(&self.path.join(&name).display().to_string()),
        );
        Ok(())
    }

    fn make_corrupt_dir(&self, dir: &OwnedFd) -> Result<()> {
        match rustix::fs::mkdirat(dir, CORRUPT_DIR, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(self.io("create", CORRUPT_DIR, e)),
        }
    }
}

impl Replica {
    /// Starts again from nothing: the next call replays the journal.
    pub(super) fn forget(&mut self, fifo: bool) {
        let warned = self.warned;
        *self = Replica {
            model: QueueModel::new(fifo),
            warned,
            ..Replica::default()
        };
    }

    /// Applies what the journal holds beyond what this replica has read.
    pub(super) fn catch_up(&mut self, queue: &Queue, dir: &OwnedFd, now: u64) -> Result<()> {
        if !self.warned {
            self.warned = true;
            self.model = QueueModel::new(queue.fifo);
            if rustix::fs::statat(dir, "messages", AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                log::warn!(
                    "mock queue {}: {} is in the format of an earlier version (a file per message), which is not read; send those requests again",
                    crate::text::escape(&queue.name),
                    crate::text::escape(&queue.path.join("messages").display().to_string()),
                );
            }
        }
        let stat = match rustix::fs::statat(dir, JOURNAL_FILE, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {
                if self.journal.is_some() || !self.model.is_empty() {
                    self.forget(queue.fifo); // the queue was removed
                }
                return Ok(());
            }
            Err(e) => return Err(queue.io("read", JOURNAL_FILE, e)),
            Ok(stat) => stat,
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            queue.set_aside(dir, "not a regular file", now)?;
            self.forget(queue.fifo);
            return Ok(());
        }
        let identity = (stat.st_dev as u64, stat.st_ino as u64);
        if self.journal.is_none()
            || identity != self.identity
            || (stat.st_size as u64) < self.offset
        {
            self.forget(queue.fifo);
            let flags = OFlags::RDWR
                | OFlags::APPEND
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(dir, JOURNAL_FILE, flags, Mode::empty())
                .map_err(|e| queue.io("open", JOURNAL_FILE, e))?;
            let file = File::from(fd);
            let meta = file
                .metadata()
                .map_err(|e| queue.io("read", JOURNAL_FILE, e))?;
            self.identity = (meta.dev(), meta.ino());
            self.journal = Some(file);
        }
        let file = self.journal.as_ref().expect("opened above");
        let size = stat.st_size as u64;
        if size <= self.offset {
            return Ok(());
        }
        let mut bytes = vec![0; (size - self.offset) as usize];
        file.read_exact_at(&mut bytes, self.offset)
            .map_err(|e| queue.io("read", JOURNAL_FILE, e))?;
        let decoded = journal::decode(&bytes);
        for change in &decoded.changes {
            self.model.apply(change);
        }
        self.records += decoded.changes.len();
        for (range, problem) in &decoded.bad {
            let at = self.offset + range.start as u64;
            queue.keep_damaged(dir, (at, &bytes[range.clone()]), problem, now)?;
            self.damaged = true;
        }
        self.offset += decoded.complete as u64;
        if decoded.complete < bytes.len() {
            log::warn!(
                "mock queue {}: dropped the unfinished last record of its journal ({} bytes, a write cut short)",
                crate::text::escape(&queue.name),
                bytes.len() - decoded.complete,
            );
            file.set_len(self.offset)
                .map_err(|e| queue.io("truncate", JOURNAL_FILE, e))?;
        }
        Ok(())
    }

    /// Appends `changes` in one write; synced when `durable`, and always
    /// when this creates the journal (its directory entry too).
    pub(super) fn append(
        &mut self,
        queue: &Queue,
        dir: &OwnedFd,
        changes: &[Change],
        durable: bool,
    ) -> Result<()> {
        let created = self.journal.is_none();
        if created {
            let flags = OFlags::RDWR
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(dir, JOURNAL_FILE, flags, Mode::from_raw_mode(0o600))
                .map_err(|e| queue.io("create", JOURNAL_FILE, e))?;
            let file = File::from(fd);
            let meta = file
                .metadata()
                .map_err(|e| queue.io("create", JOURNAL_FILE, e))?;
            self.identity = (meta.dev(), meta.ino());
            self.journal = Some(file);
        }
        let mut file = self.journal.as_ref().expect("opened above");
        let bytes = journal::encode(changes);
        file.write_all(&bytes)
            .map_err(|e| queue.io("write", JOURNAL_FILE, e))?;
        if durable || created {
            file.sync_data()
                .map_err(|e| queue.io("sync", JOURNAL_FILE, e))?;
        }
        if created {
            rustix::fs::fsync(dir).map_err(|e| queue.io("sync", ".", e))?;
        }
        self.offset += bytes.len() as u64;
        self.records += changes.len();
        Ok(())
    }

    /// Rewrites the journal as the changes that rebuild the present state:
    /// a new file, synced, renamed over the old one, the directory synced.
    pub(super) fn compact(&mut self, queue: &Queue, dir: &OwnedFd, now: u64) -> Result<()> {
        let snapshot = self.model.snapshot(now);
        let bytes = journal::encode(&snapshot);
        let temp = format!(".{JOURNAL_FILE}.{}.tmp", std::process::id());
        let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
        let flags = OFlags::RDWR
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, &temp, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| queue.io("create", &temp, e))?;
        let mut file = File::from(fd);
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        let renamed = written
            .map_err(|e| queue.io("write", &temp, e))
            .and_then(|()| {
                rustix::fs::renameat(dir, &temp, dir, JOURNAL_FILE)
                    .map_err(|e| queue.io("rename", &temp, e))
            });
        if let Err(e) = renamed {
            let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
            return Err(e);
        }
        rustix::fs::fsync(dir).map_err(|e| queue.io("sync", ".", e))?;
        let meta = file
            .metadata()
            .map_err(|e| queue.io("read", JOURNAL_FILE, e))?;
        self.identity = (meta.dev(), meta.ino());
        self.journal = Some(file);
        self.offset = bytes.len() as u64;
        self.records = snapshot.len();
        self.damaged = false;
        Ok(())
    }

    /// True when the journal should be rewritten: a damaged record was set
    /// aside, or most of its records are dead.
    pub(super) fn wants_compaction(&self) -> bool {
        self.damaged || self.records >= COMPACT_AFTER.max(2 * self.model.retained())
    }
}
