//! [`DirArchiveClient`]: a durable queue in a directory, with the SQS
//! semantics of [`crate::queue::model`].
//!
//! Layout: `<mock_dir>/<queue name>/` holds `journal`, the queue's changes
//! one per line (format in [`crate::queue::journal`]), a `.lock` file, an
//! optional `attributes.json` and `corrupt/`. Every call takes an exclusive
//! lock on `.lock` (`flock`), catches up with what other processes appended,
//! applies the model, appends its changes in one write, and lets go: several
//! processes can send and receive at once, and two receivers never get the
//! same visible message. Each process keeps its replayed state between
//! calls, keyed by the journal's inode and length, so it reads only what
//! others appended since.
//!
//! Durability: a send and a delete are synced (`fdatasync`, one per batch
//! call), so a sent message survives `kill -9` and power loss once `send`
//! returned, and a deleted one never comes back. Receives and visibility
//! changes are appended but not synced: a power loss may bring a message
//! back (at-least-once delivery, as SQS). A journal is created, and
//! compacted when most of its records are dead, by writing a new file,
//! syncing it, renaming it over the old one and syncing the directory.
//!
//! A damaged record is set aside in `corrupt/` with one error line and the
//! journal rewritten without it, so the queue carries on without it and it
//! is reported once. An unfinished last record (a write cut short by a
//! crash) is dropped with a warning: it was never acknowledged. A journal
//! that is not a regular file (a directory, a FIFO, a symlink, which is
//! never followed) is moved into `corrupt/` and the queue starts afresh. The
//! queue directory itself is opened without following a symlink.
//!
//! Queue attributes: an optional `attributes.json` in the queue's directory
//! holds SQS attribute names and values, e.g. `{"MaximumMessageSize": 1024}`
//! (numbers or strings). `MaximumMessageSize` (default 1 MiB, as SQS) is
//! enforced: a larger body is refused as SQS refuses it
//! (`InvalidParameterValue`, a permanent refusal); `VisibilityTimeout` and
//! `RedrivePolicy` are reported by `queue_attributes`, not acted on.
//!
//! Queues written by versions before the journal (one JSON file per message
//! in `messages/`) are not read: this is a development and test backend;
//! a warning names such a directory.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::queue::journal;
use crate::queue::model::{
    self, Change, DEFAULT_MAXIMUM_MESSAGE_SIZE, DEFAULT_VISIBILITY, QueueModel,
};
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, QueueAttributes, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, SentMessage, is_fifo, prepare,
};

/// The file of a queue's attributes, in its directory.
pub const ATTRIBUTES_FILE: &str = "attributes.json";
/// Where unreadable records and journals are moved, in the queue's directory.
pub const CORRUPT_DIR: &str = "corrupt";
/// The journal, in the queue's directory.
pub const JOURNAL_FILE: &str = "journal";
const LOCK_FILE: &str = ".lock";
/// How often a waiting receive looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A journal is compacted once it holds at least this many records and
/// twice what a compacted one would (see [`QueueModel::retained`]).
const COMPACT_AFTER: usize = 1024;

/// The directory-backed queue client.
#[derive(Clone, Debug)]
pub struct DirArchiveClient {
    root: PathBuf,
    max_message_size: usize,
    /// This process's replica of each queue it has used, by name.
    replicas: Arc<Mutex<HashMap<String, Arc<Mutex<Replica>>>>>,
}

/// One queue as this process last read it.
#[derive(Debug, Default)]
struct Replica {
    model: QueueModel,
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
struct Queue {
    name: String,
    path: PathBuf,
    fifo: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DirArchiveClient {
    /// Queues live in subdirectories of `root`, created on first use.
    pub fn new(root: impl Into<PathBuf>, max_message_size: usize) -> DirArchiveClient {
        DirArchiveClient {
            root: root.into(),
            max_message_size,
            replicas: Arc::default(),
        }
    }

    fn queue(&self, url: &str) -> Result<Queue> {
        let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let valid = !name.is_empty()
            && name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.');
        if !valid {
            return Err(Error::config(
                crate::text::url(url),
                "a mock queue URL must end in a queue name of letters, digits, '-', '_' or '.' (e.g. mock://archive-requests)",
            ));
        }
        Ok(Queue {
            fifo: is_fifo(name),
            name: name.to_string(),
            path: self.root.join(name),
        })
    }

    /// Runs `op` on the queue's state under its lock, after catching up with
    /// the journal, and appends the changes it returns (synced when
    /// `durable`). `op` must leave the model unchanged when it fails.
    fn with_queue<T>(
        &self,
        url: &str,
        durable: bool,
        op: impl FnOnce(&Queue, &mut QueueModel, u64) -> Result<(T, Vec<Change>)>,
    ) -> Result<T> {
        let queue = self.queue(url)?;
        let replica = Arc::clone(lock(&self.replicas).entry(queue.name.clone()).or_default());
        let mut replica = lock(&replica);
        let dir = queue.open_dir()?;
        let _lock = queue.lock(&dir)?;
        if let Err(e) = replica.catch_up(&queue, &dir) {
            replica.forget(queue.fifo);
            return Err(e);
        }
        let now = now_ms();
        let (out, changes) = op(&queue, &mut replica.model, now)?;
        if !changes.is_empty()
            && let Err(e) = replica.append(&queue, &dir, &changes, durable)
        {
            // The model holds changes the journal may not: read it again.
            replica.forget(queue.fifo);
            return Err(e);
        }
        if replica.damaged || replica.records >= COMPACT_AFTER.max(2 * replica.model.retained()) {
            // What was asked is done and on disk; a failed compaction only
            // leaves the longer journal.
            if let Err(e) = replica.compact(&queue, &dir, now) {
                log::warn!(
                    "mock queue {}: compacting its journal failed: {e}",
                    crate::text::escape(&queue.name)
                );
                replica.forget(queue.fifo);
            }
        }
        Ok(out)
    }

    /// Sends one message; its change, if any, goes into `changes`.
    fn send_one(
        &self,
        (queue, now, limit): (&Queue, u64, u32),
        model: &mut QueueModel,
        message: &OutgoingMessage,
        action: &'static str,
        changes: &mut Vec<Change>,
    ) -> Result<SentMessage> {
        let prepared = prepare(&queue.name, message, self.max_message_size)?;
        let (sent, change) = model
            .send(now, crate::random::hex_id(), &prepared, limit)
            .map_err(|r| r.into_error(action))?;
        changes.extend(change);
        Ok(sent)
    }

    /// Applies `each` to every entry of a batch, gathering the changes.
    fn batch<E, T>(
        entries: &[E],
        mut each: impl FnMut(&E, &mut Vec<Change>) -> Result<T>,
    ) -> (BatchOutcome<T>, Vec<Change>) {
        let mut changes = Vec::new();
        let out = entries.iter().map(|e| each(e, &mut changes)).collect();
        (out, changes)
    }
}

impl Queue {
    /// The queue's directory, created if need be; a symlink is not followed.
    fn open_dir(&self) -> Result<OwnedFd> {
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
    fn lock(&self, dir: &OwnedFd) -> Result<OwnedFd> {
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
    fn set_aside(&self, dir: &OwnedFd, problem: &str) -> Result<()> {
        let target = format!("{CORRUPT_DIR}/{JOURNAL_FILE}-{}", now_ms());
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
    fn keep_damaged(&self, dir: &OwnedFd, at: u64, bytes: &[u8], problem: &str) -> Result<()> {
        self.make_corrupt_dir(dir)?;
        let name = format!("{CORRUPT_DIR}/{JOURNAL_FILE}-{}-at-{at}.record", now_ms());
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

    /// The queue's `attributes.json` as SQS attribute names and values
    /// (empty when there is none).
    fn attributes(&self) -> Result<BTreeMap<String, String>> {
        let path = self.path.join(ATTRIBUTES_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(Error::io("read mock queue attributes", &path, e)),
        };
        let origin = || path.display().to_string();
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(origin(), format!("not valid JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            Error::config(origin(), "must be a JSON object of SQS attribute names")
        })?;
        Ok(object
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect())
    }

    fn maximum_message_size(&self) -> Result<u32> {
        match self.attributes()?.get("MaximumMessageSize") {
            None => Ok(DEFAULT_MAXIMUM_MESSAGE_SIZE),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::config(
                    self.path.join(ATTRIBUTES_FILE).display().to_string(),
                    "MaximumMessageSize must be a number of bytes",
                )
            }),
        }
    }
}

impl Replica {
    /// Starts again from nothing: the next call replays the journal.
    fn forget(&mut self, fifo: bool) {
        let warned = self.warned;
        *self = Replica {
            model: QueueModel::new(fifo),
            warned,
            ..Replica::default()
        };
    }

    /// Applies what the journal holds beyond what this replica has read.
    fn catch_up(&mut self, queue: &Queue, dir: &OwnedFd) -> Result<()> {
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
            queue.set_aside(dir, "not a regular file")?;
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
        let size = file
            .metadata()
            .map_err(|e| queue.io("read", JOURNAL_FILE, e))?
            .len();
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
            queue.keep_damaged(dir, at, &bytes[range.clone()], problem)?;
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
    fn append(
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
    fn compact(&mut self, queue: &Queue, dir: &OwnedFd, now: u64) -> Result<()> {
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
}

impl ArchiveClient for DirArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        self.with_queue(queue, true, |q, model, now| {
            let limit = q.maximum_message_size()?;
            let mut changes = Vec::new();
            let sent =
                self.send_one((q, now, limit), model, message, "SendMessage", &mut changes)?;
            Ok((sent, changes))
        })
    }

    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>> {
        let action = "SendMessageBatch";
        model::check_send_batch(messages.iter().map(|m| m.body.as_str()))
            .map_err(|r| r.into_error(action))?;
        self.with_queue(queue, true, |q, model, now| {
            let limit = q.maximum_message_size()?;
            Ok(Self::batch(messages, |m, changes| {
                self.send_one((q, now, limit), model, m, action, changes)
            }))
        })
    }

    fn receive_messages(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>> {
        let max = request.max_messages.clamp(1, 10) as usize;
        let visibility = Duration::from_secs(u64::from(
            request.visibility_timeout.unwrap_or(DEFAULT_VISIBILITY),
        ));
        let deadline =
            Instant::now() + Duration::from_secs(u64::from(request.wait_seconds.min(20)));
        loop {
            let got = self.with_queue(queue, false, |_, model, now| {
                Ok(model.receive(now, max, visibility, &mut crate::random::hex_id))
            })?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - Instant::now()));
        }
    }

    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        self.with_queue(queue, true, |_, model, _| {
            let change = model
                .delete(receipt)
                .map_err(|r| r.into_error("DeleteMessage"))?;
            Ok(((), change.into_iter().collect()))
        })
    }

    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>> {
        let action = "DeleteMessageBatch";
        model::check_batch(receipts.len()).map_err(|r| r.into_error(action))?;
        self.with_queue(queue, true, |_, model, _| {
            Ok(Self::batch(receipts, |r, changes| {
                changes.extend(model.delete(r).map_err(|e| e.into_error(action))?);
                Ok(())
            }))
        })
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        self.with_queue(queue, false, |_, model, now| {
            let change = model
                .change_visibility(now, receipt, timeout)
                .map_err(|r| r.into_error("ChangeMessageVisibility"))?;
            Ok(((), vec![change]))
        })
    }

    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>> {
        let action = "ChangeMessageVisibilityBatch";
        model::check_batch(entries.len()).map_err(|r| r.into_error(action))?;
        self.with_queue(queue, false, |_, model, now| {
            Ok(Self::batch(entries, |(r, timeout), changes| {
                let change = model
                    .change_visibility(now, r, *timeout)
                    .map_err(|e| e.into_error(action))?;
                changes.push(change);
                Ok(())
            }))
        })
    }

    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes> {
        let mut attributes = self.queue(queue)?.attributes()?;
        attributes
            .entry("MaximumMessageSize".into())
            .or_insert_with(|| DEFAULT_MAXIMUM_MESSAGE_SIZE.to_string());
        attributes
            .entry("VisibilityTimeout".into())
            .or_insert_with(|| DEFAULT_VISIBILITY.to_string());
        let stats = self.with_queue(queue, false, |_, model, now| {
            Ok((model.stats(now), Vec::new()))
        })?;
        Ok(QueueAttributes {
            stats,
            ..QueueAttributes::from_attributes(&attributes)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::queue::QueueStats;

    fn temp_root(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("sqs-archive-dirq-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    fn recv(c: &DirArchiveClient, q: &str, max: u32, vis: u32) -> Vec<ReceivedMessage> {
        c.receive_messages(
            q,
            &ReceiveRequest {
                max_messages: max,
                wait_seconds: 0,
                visibility_timeout: Some(vis),
            },
        )
        .unwrap()
    }

    fn bodies(got: &[ReceivedMessage]) -> Vec<&str> {
        got.iter().map(|m| m.body.as_str()).collect()
    }

    fn delete_all(c: &DirArchiveClient, q: &str, got: &[ReceivedMessage]) {
        let receipts: Vec<_> = got.iter().map(|m| m.receipt_handle.clone()).collect();
        for chunk in receipts.chunks(10) {
            let results = c.delete_message_batch(q, chunk).unwrap();
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn send_receive_hide_return_delete_across_processes() {
        let root = temp_root("basic");
        let c = DirArchiveClient::new(&root, 1 << 20);
        // Another process: its own replica of the same directory.
        let other = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://requests";
        let sent = c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        other.send_message(q, &OutgoingMessage::new("two")).unwrap();
        let got = recv(&c, q, 1, 1);
        assert_eq!(bodies(&got), ["one"], "send order");
        assert_eq!(got[0].message_id, sent.message_id);
        assert_eq!(got[0].receive_count, 1);
        let stats = QueueStats {
            visible: 1,
            in_flight: 1,
            delayed: 0,
        };
        assert_eq!(other.queue_stats(q).unwrap(), stats);
        assert_eq!(bodies(&recv(&other, q, 10, 1)), ["two"], "one is hidden");
        std::thread::sleep(Duration::from_millis(1100));
        let again = recv(&other, q, 10, 30);
        assert_eq!(bodies(&again), ["one", "two"], "back after their timeout");
        assert_eq!(again[0].receive_count, 2);
        let e = c.delete_message(q, &got[0].receipt_handle).unwrap_err();
        assert!(
            matches!(&e, Error::Service(s) if s.is_stale_receipt()),
            "{e}"
        );
        delete_all(&c, q, &again);
        assert_eq!(other.queue_stats(q).unwrap(), QueueStats::default());
        c.delete_message(q, &again[0].receipt_handle).unwrap(); // already gone: fine
        // A fresh process replays the journal to the same state.
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        assert_eq!(fresh.queue_stats(q).unwrap(), QueueStats::default());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn change_visibility_extends_and_releases() {
        let root = temp_root("vis");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        c.send_message(q, &OutgoingMessage::new("x")).unwrap();
        let m = recv(&c, q, 1, 1).remove(0);
        c.change_visibility(q, &m.receipt_handle, Duration::from_secs(60))
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            recv(&c, q, 1, 1).is_empty(),
            "extended past the first timeout"
        );
        let results = c
            .change_visibility_batch(q, &[(m.receipt_handle.clone(), Duration::ZERO)])
            .unwrap();
        assert!(results[0].is_ok());
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        assert_eq!(
            recv(&fresh, q, 1, 30).len(),
            1,
            "visibility 0 returns it at once"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn fifo_groups_in_order_and_dedup_across_processes() {
        let root = temp_root("fifo");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let other = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q.fifo";
        let msg = |body: &str, g: &str| OutgoingMessage {
            body: body.into(),
            group_id: Some(g.into()),
            dedup_id: None,
        };
        let a1 = c.send_message(q, &msg("a1", "a")).unwrap();
        assert_eq!(
            other.send_message(q, &msg("a1", "a")).unwrap().message_id,
            a1.message_id,
            "deduplicated"
        );
        c.send_message(q, &msg("a2", "a")).unwrap();
        c.send_message(q, &msg("b1", "b")).unwrap();
        let first = recv(&other, q, 1, 30);
        assert_eq!(bodies(&first), ["a1"]);
        assert_eq!(first[0].attributes["MessageGroupId"], "a");
        assert_eq!(bodies(&recv(&c, q, 10, 30)), ["b1"], "group a waits for a1");
        assert!(
            c.send_message(q, &OutgoingMessage::new("no group"))
                .is_err()
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn concurrent_processes_never_share_a_message() {
        let root = temp_root("race");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://race";
        let batch: Vec<_> = (0..60)
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect();
        for chunk in batch.chunks(10) {
            c.send_message_batch(q, chunk).unwrap();
        }
        let seen: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let mine = DirArchiveClient::new(&root, 1 << 20);
                    s.spawn(move || {
                        let mut got_all = Vec::new();
                        loop {
                            let got = recv(&mine, q, 3, 60);
                            if got.is_empty() {
                                return got_all;
                            }
                            got_all.extend(got.into_iter().map(|m| m.body));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: BTreeSet<_> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (60, 60));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bad_queue_names_receipts_and_batches_are_errors() {
        let root = temp_root("bad");
        let c = DirArchiveClient::new(&root, 1 << 20);
        assert!(
            c.send_message("mock://", &OutgoingMessage::new("x"))
                .is_err()
        );
        assert!(
            c.send_message("mock://q/..", &OutgoingMessage::new("x"))
                .is_err()
        );
        let e = c
            .delete_message("mock://q", &ReceiptHandle("../../etc/passwd:x".into()))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Service(s) if s.code == "ReceiptHandleIsInvalid"),
            "{e}"
        );
        let e = c
            .send_message("mock://q", &OutgoingMessage::new("x".repeat(2 << 20)))
            .unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::DataErr);
        let eleven = vec![ReceiptHandle("m:n".into()); 11];
        let e = c.delete_message_batch("mock://q", &eleven).unwrap_err();
        assert!(
            matches!(&e, Error::Service(s) if s.code == "TooManyEntriesInBatchRequest"),
            "{e}"
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_damaged_record_is_set_aside_once_and_the_queue_carries_on() {
        let root = temp_root("corrupt");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        for body in ["one", "two\u{1b}[2J", "three"] {
            c.send_message(q, &OutgoingMessage::new(body)).unwrap();
        }
        let journal = root.join("q").join(JOURNAL_FILE);
        let mut bytes = fs::read(&journal).unwrap();
        let at = bytes.windows(3).position(|w| w == b"two").unwrap();
        bytes[at] = b'T';
        fs::write(&journal, &bytes).unwrap();
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        assert_eq!(fresh.queue_stats(q).unwrap().visible, 2, "stats skips it");
        let kept = files_in(&root.join("q").join(CORRUPT_DIR));
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(fs::read_to_string(&kept[0]).unwrap().contains("Two"));
        // Rewritten without it: no one meets it again.
        assert!(!fs::read(&journal).unwrap().windows(3).any(|w| w == b"Two"));
        let again = DirArchiveClient::new(&root, 1 << 20);
        assert_eq!(bodies(&recv(&again, q, 10, 30)), ["one", "three"]);
        assert_eq!(files_in(&root.join("q").join(CORRUPT_DIR)).len(), 1);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_unfinished_last_record_is_dropped_and_sends_go_on() {
        let root = temp_root("torn");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        let journal = root.join("q").join(JOURNAL_FILE);
        let whole = fs::read(&journal).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..whole.len() / 2]);
        fs::write(&journal, &torn).unwrap();
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        fresh.send_message(q, &OutgoingMessage::new("two")).unwrap();
        assert_eq!(bodies(&recv(&c, q, 10, 30)), ["one", "two"]);
        assert!(files_in(&root.join("q").join(CORRUPT_DIR)).is_empty());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_journal_that_is_not_a_file_is_moved_aside_and_links_are_not_followed() {
        let root = temp_root("odd");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let outside = root.join("outside");
        fs::create_dir_all(&outside).unwrap();
        for (q, plant) in [("dir", 0), ("fifo", 1), ("link", 2)] {
            let queue_dir = root.join(q);
            fs::create_dir_all(&queue_dir).unwrap();
            let journal = queue_dir.join(JOURNAL_FILE);
            match plant {
                0 => fs::create_dir(&journal).unwrap(),
                1 => assert!(
                    std::process::Command::new("mkfifo")
                        .arg(&journal)
                        .status()
                        .unwrap()
                        .success()
                ),
                _ => std::os::unix::fs::symlink(outside.join("planted"), &journal).unwrap(),
            }
            let url = format!("mock://{q}");
            c.send_message(&url, &OutgoingMessage::new("one")).unwrap();
            assert_eq!(bodies(&recv(&c, &url, 10, 30)), ["one"], "{q}");
            assert_eq!(files_in(&queue_dir.join(CORRUPT_DIR)).len(), 1, "{q}");
        }
        // A symlink as the queue directory is not followed either.
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        let e = c
            .send_message("mock://linked", &OutgoingMessage::new("x"))
            .unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(
            files_in(&outside).is_empty(),
            "nothing written through a link"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_mostly_dead_journal_is_compacted_and_keeps_its_dedup_ids() {
        let root = temp_root("compact");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q.fifo";
        let journal = root.join("q.fifo").join(JOURNAL_FILE);
        let msg = |i: usize| OutgoingMessage {
            body: format!("m{i}"),
            group_id: Some(format!("g{}", i % 20)),
            dedup_id: None,
        };
        let batch: Vec<_> = (0..400).map(msg).collect();
        let mut first = None;
        for chunk in batch.chunks(10) {
            let sent = c.send_message_batch(q, chunk).unwrap();
            first.get_or_insert_with(|| sent[0].as_ref().unwrap().message_id.clone());
        }
        loop {
            let got = recv(&c, q, 10, 30);
            if got.is_empty() {
                break;
            }
            delete_all(&c, q, &got);
        }
        // 1,200 records were written (send, receive, delete of 400).
        let text = fs::read_to_string(&journal).unwrap();
        assert!(text.lines().count() < 1100, "{}", text.lines().count());
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        assert_eq!(fresh.queue_stats(q).unwrap(), QueueStats::default());
        let again = fresh.send_message(q, &msg(0)).unwrap();
        assert_eq!(Some(again.message_id), first, "still deduplicated");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_queue_attributes_file_sets_the_size_limit() {
        let root = temp_root("attrs");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://small";
        let a = c.queue_attributes(q).unwrap();
        assert_eq!(a.maximum_message_size, Some(1 << 20));
        assert_eq!(a.visibility_timeout, Some(30));
        fs::write(
            root.join("small").join(ATTRIBUTES_FILE),
            r#"{"MaximumMessageSize": 1024, "RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:x\",\"maxReceiveCount\":4}"}"#,
        )
        .unwrap();
        let a = c.queue_attributes(q).unwrap();
        assert_eq!(a.maximum_message_size, Some(1024));
        assert_eq!(a.redrive_policy.unwrap().max_receive_count, 4);
        c.send_message(q, &OutgoingMessage::new("x".repeat(1024)))
            .unwrap();
        let e = c
            .send_message(q, &OutgoingMessage::new("x".repeat(1025)))
            .unwrap_err();
        assert!(e.is_permanent_refusal(), "{e}");
        let batch = c
            .send_message_batch(
                q,
                &[
                    OutgoingMessage::new("small"),
                    OutgoingMessage::new("x".repeat(2000)),
                ],
            )
            .unwrap();
        assert!(batch[0].is_ok());
        assert!(batch[1].as_ref().unwrap_err().is_permanent_refusal());
        assert_eq!(c.queue_stats(q).unwrap().visible, 2);
        fs::write(root.join("small").join(ATTRIBUTES_FILE), "[1]").unwrap();
        let e = c.queue_attributes(q).unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{e}");
        fs::remove_dir_all(&root).unwrap();
    }
}
