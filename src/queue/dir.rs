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
//! calls ([`crate::queue::replica`]), keyed by the journal's inode and
//! length, so it reads only what others appended since.
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
//!
//! This module holds the client calls and `attributes.json`; it must not
//! read or write the journal but through the replica, nor decide SQS
//! semantics but through the model.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::queue::model::{
    self, Change, DEFAULT_MAXIMUM_MESSAGE_SIZE, DEFAULT_VISIBILITY, QueueModel, epoch_ms,
};
pub use crate::queue::replica::{CORRUPT_DIR, JOURNAL_FILE};
use crate::queue::replica::{Queue, Replica};
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, QueueAttributes, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, SentMessage, is_fifo, prepare,
};

/// The file of a queue's attributes, in its directory.
pub const ATTRIBUTES_FILE: &str = "attributes.json";
/// How often a waiting receive looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The directory-backed queue client.
#[derive(Clone, Debug)]
pub struct DirArchiveClient {
    root: PathBuf,
    max_message_size: usize,
    /// This process's replica of each queue it has used, by name.
    replicas: Arc<Mutex<HashMap<String, Arc<Mutex<Replica>>>>>,
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
        let now = epoch_ms(SystemTime::now());
        if let Err(e) = replica.catch_up(&queue, &dir, now) {
            replica.forget(queue.fifo);
            return Err(e);
        }
        let out = match op(&queue, &mut replica.model, now) {
            Ok((out, changes)) if !changes.is_empty() => {
                if let Err(e) = replica.append(&queue, &dir, &changes, durable) {
                    // The model holds changes the journal may not: read it again.
                    replica.forget(queue.fifo);
                    return Err(e);
                }
                Ok(out)
            }
            other => other.map(|(out, _)| out),
        };
        // Also after a refused call: a damaged record set aside is rewritten
        // away now, so it is reported once.
        if replica.wants_compaction() {
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
        out
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

/// The queue's `attributes.json` as SQS attribute names and values
/// (empty when there is none).
fn attributes(queue: &Queue) -> Result<BTreeMap<String, String>> {
    let path = queue.path.join(ATTRIBUTES_FILE);
    // Non-blocking, regular files only, at most 64 KiB (a FIFO or a huge
    // file planted there is refused, not read).
    let text =
        match crate::files::read_config_file(&path, crate::files::ConfigFile::QueueAttributes) {
            Ok(text) => text,
            Err(crate::files::ReadProblem::NotFound(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e.into_error("read directory queue attributes", &path)),
        };
    let origin = || path.display().to_string();
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::config(origin(), format!("not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| Error::config(origin(), "must be a JSON object of SQS attribute names"))?;
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

fn maximum_message_size(queue: &Queue) -> Result<u32> {
    match attributes(queue)?.get("MaximumMessageSize") {
        None => Ok(DEFAULT_MAXIMUM_MESSAGE_SIZE),
        Some(v) => v.trim().parse().map_err(|_| {
            Error::config(
                queue.path.join(ATTRIBUTES_FILE).display().to_string(),
                "MaximumMessageSize must be a number of bytes",
            )
        }),
    }
}

impl ArchiveClient for DirArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        self.with_queue(queue, true, |q, model, now| {
            let limit = maximum_message_size(q)?;
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
            let limit = maximum_message_size(q)?;
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
        let mut attributes = attributes(&self.queue(queue)?)?;
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
                1 => crate::files::make_fifo(&journal),
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

    /// Where the child of the kill test works.
    const KILL_ROOT: &str = "SQS_ARCHIVE_DIRQ_KILL_ROOT";

    #[test]
    fn what_send_and_delete_acknowledged_survives_kill_9() {
        let root = temp_root("kill");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "queue::dir::tests::sender_killed_by_the_kill_test",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_ROOT, &root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let (mut sent, mut deleted) = (BTreeSet::new(), BTreeSet::new());
        // Received and being deleted when the kill came: the delete may
        // have gone through without the child living to say so.
        let mut deleting = BTreeSet::new();
        while sent.len() < 200 {
            let line = lines.next().expect("the child sends").unwrap();
            match line.split_once(' ') {
                Some(("sent", id)) => sent.insert(id.to_string()),
                Some(("deleting", id)) => deleting.insert(id.to_string()),
                Some(("deleted", id)) => deleted.insert(id.to_string()),
                _ => false,
            };
        }
        child.kill().unwrap(); // SIGKILL, between or in the middle of calls
        child.wait().unwrap();
        // What the child had received but not deleted is hidden for its
        // 1 s visibility timeout, not lost: let it come back.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        for line in lines.map_while(std::result::Result::ok) {
            match line.split_once(' ') {
                Some(("sent", id)) => sent.insert(id.to_string()),
                Some(("deleting", id)) => deleting.insert(id.to_string()),
                Some(("deleted", id)) => deleted.insert(id.to_string()),
                _ => false,
            };
        }
        let fresh = DirArchiveClient::new(&root, 1 << 20);
        let mut left = BTreeSet::new();
        loop {
            let got = recv(&fresh, "mock://q", 10, 60);
            if got.is_empty() {
                break;
            }
            left.extend(got.into_iter().map(|m| m.message_id));
        }
        assert!(deleted.is_disjoint(&left), "a deleted message came back");
        let in_flight: BTreeSet<_> = deleting.difference(&deleted).collect();
        assert!(
            in_flight.len() <= 2,
            "one delete batch at most: {in_flight:?}"
        );
        let lost: Vec<_> = sent
            .difference(&deleted)
            .filter(|id| !left.contains(*id) && !in_flight.contains(id))
            .collect();
        assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
        let _ = fs::remove_dir_all(&root);
    }

    /// The child of [`what_send_and_delete_acknowledged_survives_kill_9`]:
    /// sends, receives and deletes until killed, printing each id once the
    /// call returned.
    #[test]
    #[ignore = "run by what_send_and_delete_acknowledged_survives_kill_9"]
    fn sender_killed_by_the_kill_test() {
        let Some(root) = std::env::var_os(KILL_ROOT) else {
            return;
        };
        let c = DirArchiveClient::new(PathBuf::from(root), 1 << 20);
        let q = "mock://q";
        for i in 0.. {
            let batch: Vec<_> = (0..3)
                .map(|j| OutgoingMessage::new(format!("m{i}-{j} {}", "x".repeat(i % 500))))
                .collect();
            for sent in c.send_message_batch(q, &batch).unwrap() {
                println!("sent {}", sent.unwrap().message_id);
            }
            let got = recv(&c, q, 2, 1);
            let receipts: Vec<_> = got.iter().map(|m| m.receipt_handle.clone()).collect();
            if !receipts.is_empty() {
                for m in &got {
                    println!("deleting {}", m.message_id);
                }
                c.delete_message_batch(q, &receipts).unwrap();
                for m in &got {
                    println!("deleted {}", m.message_id);
                }
            }
        }
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
