//! [`DirArchiveClient`]: a durable queue in a directory, with SQS semantics.
//!
//! Layout: `<mock_dir>/<queue name>/` holds one JSON file per message in
//! `messages/`, named so that directory order is send order, plus a `.lock`
//! file. Every operation takes an exclusive lock on `.lock` (`flock`), so
//! several processes can send and receive at once and two receivers never get
//! the same visible message. Each change is written to a temporary file and
//! renamed into place, so a crash leaves either the old or the new state of a
//! message, never half of one. Sends are synced (file and directory), so a
//! sent message survives a crash; receives, visibility changes and deletes
//! are not, so a crash may bring a message back (at-least-once delivery, as
//! SQS), at a fraction of the cost.
//!
//! Semantics copied from SQS: a receive hides messages for the visibility
//! timeout and hands out a new receipt handle each time; a message not
//! deleted in time becomes visible again with its receive count raised;
//! FIFO queues (`.fifo`) deliver one message group in order and drop
//! duplicates by deduplication id for five minutes. Deliberate difference: a
//! stale receipt handle is refused (`ReceiptHandleIsInvalid`) where SQS
//! would accept it and maybe do nothing.
//!
//! Queue attributes: an optional `attributes.json` in the queue's directory
//! holds SQS attribute names and values, e.g. `{"MaximumMessageSize": 1024}`
//! (numbers or strings). `MaximumMessageSize` (default 1 MiB, as SQS) is
//! enforced: a larger body is refused as SQS refuses it
//! (`InvalidParameterValue`, a permanent refusal); `VisibilityTimeout` and
//! `RedrivePolicy` are reported by `queue_attributes`, not acted on.
//!
//! A message file that cannot be parsed, or is not a regular file, is moved
//! into `corrupt/` of its queue with one error line, and the queue carries
//! on without it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ServiceError};
use crate::files::Durability;
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, QueueAttributes, QueueStats, ReceiptHandle,
    ReceiveRequest, ReceivedMessage, SentMessage, is_fifo, prepare,
};

/// How long FIFO deduplication ids are remembered, as in SQS.
const DEDUP_WINDOW: Duration = Duration::from_secs(300);
/// Visibility timeout when a receive names none (the SQS default).
const DEFAULT_VISIBILITY: u32 = 30;
/// Orders sends of this process that fall in the same clock tick.
static SEND_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// `MaximumMessageSize` of a queue without `attributes.json` (the SQS default).
const DEFAULT_MAXIMUM_MESSAGE_SIZE: u32 = 1 << 20;
/// The file of a queue's attributes, in its directory.
pub const ATTRIBUTES_FILE: &str = "attributes.json";
/// Where unreadable message files are moved, in the queue's directory.
pub const CORRUPT_DIR: &str = "corrupt";
/// How often a waiting receive looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One message on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    id: String,
    body: String,
    sent_ms: u64,
    receive_count: u32,
    /// Visible again from this instant (ms since the epoch).
    visible_ms: u64,
    /// The current receipt's nonce; `None` until first received.
    receipt: Option<String>,
    first_receive_ms: Option<u64>,
    group_id: Option<String>,
    sequence: Option<String>,
}

/// The directory-backed queue client.
#[derive(Clone, Debug)]
pub struct DirArchiveClient {
    root: PathBuf,
    max_message_size: usize,
}

impl DirArchiveClient {
    /// Queues live in subdirectories of `root`, created on first use.
    pub fn new(root: impl Into<PathBuf>, max_message_size: usize) -> DirArchiveClient {
        DirArchiveClient {
            root: root.into(),
            max_message_size,
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
        let dir = self.root.join(name);
        let messages = dir.join("messages");
        fs::create_dir_all(&messages).map_err(|e| Error::io("create mock queue", &messages, e))?;
        Ok(Queue {
            fifo: is_fifo(name),
            name: name.to_string(),
            dir,
            messages,
        })
    }
}

struct Queue {
    name: String,
    dir: PathBuf,
    messages: PathBuf,
    fifo: bool,
}

/// Holds the queue's lock until dropped.
struct Locked {
    _file: File,
}

impl Queue {
    fn lock(&self) -> Result<Locked> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open lock", &path, e))?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(Locked { _file: file })
    }

    /// Message files in send order. Names start with the send time, so
    /// sorting the names (plain byte comparison) sorts the messages.
    fn files(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(&self.messages)
            .map_err(|e| Error::io("list mock queue", &self.messages, e))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// A message file, or `None` when it is gone. Call under the lock: a
    /// file that does not parse is moved aside (see [`Queue::quarantine`])
    /// and reads as gone.
    fn read(&self, path: &Path) -> Result<Option<Stored>> {
        match read_regular(path) {
            Ok(None) => {
                // A directory, FIFO or device: set aside like a corrupt file
                // (a FIFO would otherwise block every receive).
                self.quarantine(path, "not a regular file")?;
                Ok(None)
            }
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(m) => Ok(Some(m)),
                Err(e) => {
                    self.quarantine(path, &e.to_string())?;
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read mock message", path, e)),
        }
    }

    /// Moves an unreadable message file into `corrupt/`, so one bad file
    /// cannot stop every later receive; it is kept there for a person.
    fn quarantine(&self, path: &Path, problem: &str) -> Result<()> {
        let corrupt = self.dir.join(CORRUPT_DIR);
        fs::create_dir_all(&corrupt).map_err(|e| Error::io("create", &corrupt, e))?;
        let name = path.file_name().unwrap_or_default();
        let target = corrupt.join(name);
        fs::rename(path, &target).map_err(|e| Error::io("move aside", path, e))?;
        log::error!(
            "mock queue {}: message file {} cannot be read ({}); moved to {}",
            crate::text::escape(&self.name),
            crate::text::escape(&name.to_string_lossy()),
            crate::text::excerpt(problem, 200),
            crate::text::escape(&target.display().to_string()),
        );
        Ok(())
    }

    /// The queue's `attributes.json` as SQS attribute names and values
    /// (empty when there is none).
    fn attributes(&self) -> Result<BTreeMap<String, String>> {
        let path = self.dir.join(ATTRIBUTES_FILE);
        let text = match fs::read_to_string(&path) {
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
        let path = self.dir.join(ATTRIBUTES_FILE);
        match self.attributes()?.get("MaximumMessageSize") {
            None => Ok(DEFAULT_MAXIMUM_MESSAGE_SIZE),
            Some(v) => v.trim().parse().map_err(|_| {
                Error::config(
                    path.display().to_string(),
                    "MaximumMessageSize must be a number of bytes",
                )
            }),
        }
    }

    fn write(&self, path: &Path, message: &Stored, durability: Durability) -> Result<()> {
        let bytes = serde_json::to_vec(message).expect("a stored message serializes");
        write_atomic(path, &bytes, durability)
    }

    fn path_of(&self, file_name: &str) -> PathBuf {
        self.messages.join(file_name)
    }
}

/// Writes a message file atomically (see [`crate::files::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    crate::files::write_atomic(path, bytes, None, durability)
        .map_err(|e| Error::io("write mock message", path, e))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn service(action: &'static str, code: &str, message: String) -> Error {
    Error::Service(ServiceError {
        action,
        status: 400,
        code: code.into(),
        message,
        request_id: None,
    })
}

/// A receipt handle is `<file name>:<nonce>`.
fn split_receipt<'r>(
    action: &'static str,
    receipt: &'r ReceiptHandle,
) -> Result<(&'r str, &'r str)> {
    receipt
        .as_str()
        .split_once(':')
        .filter(|(file, nonce)| {
            !nonce.is_empty()
                && file.ends_with(".json")
                && !file.contains('/')
                && !file.starts_with('.')
        })
        .ok_or_else(|| {
            service(
                action,
                "ReceiptHandleIsInvalid",
                "malformed receipt handle".into(),
            )
        })
}

impl DirArchiveClient {
    fn send_locked(
        &self,
        queue: &Queue,
        message: &OutgoingMessage,
        action: &'static str,
    ) -> Result<SentMessage> {
        let prepared = prepare(&queue.name, message, self.max_message_size)?;
        let limit = queue.maximum_message_size()?;
        if message.body.len() > limit as usize {
            // As SQS words it, so callers see one kind of refusal.
            return Err(service(
                action,
                "InvalidParameterValue",
                format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
                ),
            ));
        }
        let now = now_ms();
        let mut dedup_marker = None;
        if let Some(dedup) = &prepared.dedup_id {
            let marker = queue.dir.join("dedup").join(crate::digest::md5_hex(dedup));
            if let Ok(text) = fs::read_to_string(&marker)
                && let Some((id, at)) = text.split_once(' ')
                && at
                    .trim()
                    .parse::<u64>()
                    .is_ok_and(|at| now < at + DEDUP_WINDOW.as_millis() as u64)
            {
                return Ok(SentMessage {
                    message_id: id.to_string(),
                    sequence_number: None,
                });
            }
            dedup_marker = Some(marker);
        }
        let id = crate::random::hex_id();
        let sequence = queue
            .fifo
            .then(|| format!("{:020}", now * 1000 + crate::random::u64() % 1000));
        let stored = Stored {
            id: id.clone(),
            body: message.body.clone(),
            sent_ms: now,
            receive_count: 0,
            visible_ms: 0,
            receipt: None,
            first_receive_ms: None,
            group_id: prepared.group_id.map(str::to_string),
            sequence: sequence.clone(),
        };
        // Nanoseconds, then a per-process counter: names sort in send order
        // even for sends within one clock tick.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = SEND_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{nanos:020}-{seq:010}-{}.json", &id[..12]);
        queue.write(&queue.path_of(&name), &stored, Durability::Synced)?;
        if let Some(marker) = dedup_marker {
            let parent = marker.parent().expect("marker has a parent");
            fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            write_atomic(
                &marker,
                format!("{id} {now}").as_bytes(),
                Durability::Atomic,
            )?;
        }
        Ok(SentMessage {
            message_id: id,
            sequence_number: sequence,
        })
    }

    fn receive_once(
        &self,
        queue: &Queue,
        max: usize,
        visibility: u32,
    ) -> Result<Vec<ReceivedMessage>> {
        let _lock = queue.lock()?;
        let now = now_ms();
        let mut out = Vec::new();
        let mut blocked_groups = BTreeSet::new();
        for name in queue.files()? {
            if out.len() >= max && !queue.fifo {
                break;
            }
            let path = queue.path_of(&name);
            let Some(mut m) = queue.read(&path)? else {
                continue;
            };
            let visible = m.visible_ms <= now;
            if let Some(g) = &m.group_id {
                // FIFO: a group with a message in flight delivers nothing after it.
                if !visible || blocked_groups.contains(g) {
                    blocked_groups.insert(g.clone());
                    continue;
                }
            }
            if !visible || out.len() >= max {
                continue;
            }
            let nonce = crate::random::hex_id();
            m.receive_count += 1;
            m.visible_ms = now + u64::from(visibility) * 1000;
            m.receipt = Some(nonce.clone());
            m.first_receive_ms.get_or_insert(now);
            queue.write(&path, &m, Durability::Atomic)?;
            let file_name = &name;
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "ApproximateReceiveCount".to_string(),
                m.receive_count.to_string(),
            );
            attributes.insert("SentTimestamp".to_string(), m.sent_ms.to_string());
            attributes.insert(
                "ApproximateFirstReceiveTimestamp".to_string(),
                m.first_receive_ms.unwrap_or(now).to_string(),
            );
            if let Some(g) = &m.group_id {
                attributes.insert("MessageGroupId".to_string(), g.clone());
                blocked_groups.insert(g.clone());
            }
            if let Some(s) = &m.sequence {
                attributes.insert("SequenceNumber".to_string(), s.clone());
            }
            out.push(ReceivedMessage {
                message_id: m.id,
                receipt_handle: ReceiptHandle(format!("{file_name}:{nonce}")),
                body: m.body,
                receive_count: m.receive_count,
                attributes,
            });
        }
        Ok(out)
    }

    /// Finds the message a receipt names, under the lock, if the receipt is current.
    fn current(
        &self,
        queue: &Queue,
        action: &'static str,
        receipt: &ReceiptHandle,
    ) -> Result<Option<(PathBuf, Stored)>> {
        let (file, nonce) = split_receipt(action, receipt)?;
        let path = queue.path_of(file);
        match queue.read(&path)? {
            None => Ok(None),
            Some(m) if m.receipt.as_deref() == Some(nonce) => Ok(Some((path, m))),
            Some(_) => Err(service(
                action,
                "ReceiptHandleIsInvalid",
                "the receipt handle is stale: the message was received again since".into(),
            )),
        }
    }

    fn delete_locked(&self, queue: &Queue, receipt: &ReceiptHandle) -> Result<()> {
        // Deleting a message that is already gone succeeds, as in SQS.
        if let Some((path, _)) = self.current(queue, "DeleteMessage", receipt)? {
            // Not synced: a crash may bring the message back, never lose one.
            fs::remove_file(&path).map_err(|e| Error::io("delete mock message", &path, e))?;
        }
        Ok(())
    }

    fn change_locked(
        &self,
        queue: &Queue,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        let action = "ChangeMessageVisibility";
        let Some((path, mut m)) = self.current(queue, action, receipt)? else {
            return Err(service(
                action,
                "ReceiptHandleIsInvalid",
                "the message no longer exists".into(),
            ));
        };
        m.visible_ms = now_ms() + timeout.as_millis() as u64;
        queue.write(&path, &m, Durability::Atomic)
    }
}

impl ArchiveClient for DirArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        self.send_locked(&q, message, "SendMessage")
    }

    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        Ok(messages
            .iter()
            .map(|m| self.send_locked(&q, m, "SendMessageBatch"))
            .collect())
    }

    fn receive_messages(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>> {
        let q = self.queue(queue)?;
        let max = request.max_messages.clamp(1, 10) as usize;
        let visibility = request.visibility_timeout.unwrap_or(DEFAULT_VISIBILITY);
        let deadline =
            Instant::now() + Duration::from_secs(u64::from(request.wait_seconds.min(20)));
        loop {
            let got = self.receive_once(&q, max, visibility)?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            std::thread::sleep(POLL_INTERVAL.min(deadline - Instant::now()));
        }
    }

    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        self.delete_locked(&q, receipt)
    }

    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        Ok(receipts.iter().map(|r| self.delete_locked(&q, r)).collect())
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        self.change_locked(&q, receipt, timeout)
    }

    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        Ok(entries
            .iter()
            .map(|(r, t)| self.change_locked(&q, r, *t))
            .collect())
    }

    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes> {
        let q = self.queue(queue)?;
        let mut attributes = q.attributes()?;
        attributes
            .entry("MaximumMessageSize".into())
            .or_insert_with(|| DEFAULT_MAXIMUM_MESSAGE_SIZE.to_string());
        attributes
            .entry("VisibilityTimeout".into())
            .or_insert_with(|| DEFAULT_VISIBILITY.to_string());
        Ok(QueueAttributes {
            stats: self.counts(queue)?,
            ..QueueAttributes::from_attributes(&attributes)
        })
    }
}

impl DirArchiveClient {
    fn counts(&self, queue: &str) -> Result<QueueStats> {
        let q = self.queue(queue)?;
        let _lock = q.lock()?;
        let now = now_ms();
        let mut stats = QueueStats::default();
        for name in q.files()? {
            if let Some(m) = q.read(&q.path_of(&name))? {
                if m.visible_ms <= now {
                    stats.visible += 1;
                } else {
                    stats.in_flight += 1;
                }
            }
        }
        Ok(stats)
    }
}

/// A file's bytes, or `None` when it is not a regular file. Opened
/// non-blocking, so a FIFO is found out instead of waited on.
fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("sqs-archive-mock-{}-{name}", std::process::id()));
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

    #[test]
    fn send_receive_hide_return_delete() {
        let root = temp_root("basic");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://requests";
        let sent = c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        c.send_message(q, &OutgoingMessage::new("two")).unwrap();
        let got = recv(&c, q, 1, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, "one", "send order");
        assert_eq!(got[0].message_id, sent.message_id);
        assert_eq!(got[0].receive_count, 1);
        assert_eq!(
            c.queue_stats(q).unwrap(),
            QueueStats {
                visible: 1,
                in_flight: 1,
                delayed: 0
            }
        );
        // The hidden message is not handed out again while its timeout runs.
        let got2 = recv(&c, q, 10, 1);
        assert_eq!(
            got2.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["two"]
        );
        std::thread::sleep(Duration::from_millis(1100));
        let again = recv(&c, q, 10, 30);
        assert_eq!(again.len(), 2, "both came back after their timeout");
        let one = again.iter().find(|m| m.body == "one").unwrap();
        assert_eq!(one.receive_count, 2);
        // The first receipt is stale now.
        let e = c.delete_message(q, &got[0].receipt_handle).unwrap_err();
        assert!(
            matches!(&e, Error::Service(s) if s.is_stale_receipt()),
            "{e}"
        );
        let results = c
            .delete_message_batch(
                q,
                &again
                    .iter()
                    .map(|m| m.receipt_handle.clone())
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(c.queue_stats(q).unwrap(), QueueStats::default());
        c.delete_message(q, &one.receipt_handle).unwrap(); // already gone: fine
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
        c.change_visibility(q, &m.receipt_handle, Duration::ZERO)
            .unwrap();
        assert_eq!(
            recv(&c, q, 1, 30).len(),
            1,
            "visibility 0 returns it at once"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn fifo_groups_in_order_and_dedup() {
        let root = temp_root("fifo");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q.fifo";
        let msg = |body: &str, g: &str| OutgoingMessage {
            body: body.into(),
            group_id: Some(g.into()),
            dedup_id: None,
        };
        let a1 = c.send_message(q, &msg("a1", "a")).unwrap();
        assert_eq!(
            c.send_message(q, &msg("a1", "a")).unwrap().message_id,
            a1.message_id,
            "deduplicated"
        );
        c.send_message(q, &msg("a2", "a")).unwrap();
        c.send_message(q, &msg("b1", "b")).unwrap();
        let got = recv(&c, q, 10, 30);
        let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a1", "b1"], "one in flight per group");
        assert_eq!(got[0].attributes["MessageGroupId"], "a");
        assert!(
            c.send_message(q, &OutgoingMessage::new("no group"))
                .is_err()
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn concurrent_receivers_never_share_a_message() {
        let root = temp_root("race");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://race";
        for i in 0..60 {
            c.send_message(q, &OutgoingMessage::new(format!("m{i}")))
                .unwrap();
        }
        let seen: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let got = recv(&c, q, 3, 60);
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.into_iter().map(|m| m.body));
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
        assert_eq!(seen.len(), 60);
        assert_eq!(unique.len(), 60);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bad_queue_names_and_receipts_are_errors() {
        let c = DirArchiveClient::new(temp_root("bad"), 1 << 20);
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
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_queue_carries_on() {
        let root = temp_root("corrupt");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        let messages = root.join("q").join("messages");
        let bad = messages.join("00000000000000000001-0000000000-bad.json");
        fs::write(&bad, "{not json\u{1b}[2J").unwrap();
        c.send_message(q, &OutgoingMessage::new("two")).unwrap();
        assert_eq!(c.queue_stats(q).unwrap().visible, 2, "stats skips it");
        assert!(!bad.exists());
        assert!(
            root.join("q/corrupt/00000000000000000001-0000000000-bad.json")
                .exists()
        );
        let got = recv(&c, q, 10, 30);
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_corrupt_file_met_by_a_receive_does_not_stop_it() {
        let root = temp_root("corrupt-recv");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        fs::write(root.join("q/messages/0-bad.json"), [0xff, 0xfe]).unwrap();
        assert_eq!(recv(&c, q, 10, 30).len(), 1);
        assert!(root.join("q/corrupt/0-bad.json").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_directory_or_fifo_among_the_messages_is_moved_aside_without_blocking() {
        let root = temp_root("corrupt-kind");
        let c = DirArchiveClient::new(&root, 1 << 20);
        let q = "mock://q";
        c.send_message(q, &OutgoingMessage::new("one")).unwrap();
        fs::create_dir(root.join("q/messages/0-dir.json")).unwrap();
        let fifo = root.join("q/messages/1-fifo.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert_eq!(c.queue_stats(q).unwrap().visible, 1);
        assert_eq!(recv(&c, q, 10, 30).len(), 1);
        assert!(root.join("q/corrupt/0-dir.json").is_dir());
        assert!(root.join("q/corrupt/1-fifo.json").exists());
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
