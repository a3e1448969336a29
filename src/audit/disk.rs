//! The audit of directory archives: AIPs walked through handles, files
//! hashed on a small pool, rate-limited, pages dropped after reading.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Read as _;
use std::num::NonZeroU64;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{Advice, FileType, Mode, OFlags, fadvise, fstat, openat};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use super::{
    AuditOptions, Finding, HASH_THREADS, MAX_MANIFEST_BYTES, Problem, Summary, parse_manifest,
};
use crate::archive::MANIFEST_NAME;
use crate::error::{Error, Result};

const CHUNK: usize = 1 << 20;
/// How far ahead of the hash reading is asked for.
const READ_AHEAD: u64 = 8 << 20;

/// A rate limit shared by the hashing threads.
struct Throttle {
    rate: Option<u64>,
    state: Mutex<(Instant, u64)>,
}

impl Throttle {
    fn new(rate: Option<u64>) -> Throttle {
        Throttle {
            rate,
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Accounts for `bytes` just read and sleeps until the rate allows them.
    fn take(&self, bytes: u64) {
        let Some(rate) = self.rate else { return };
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.1 += bytes;
            let due = Duration::from_secs_f64(state.1 as f64 / rate as f64);
            due.saturating_sub(state.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A file found by the walk: the handle of its directory and its own name.
struct Found {
    dir: Arc<OwnedFd>,
    leaf: CString,
}

/// Audits the AIPs; each finding goes to `report` as it is made (so a long
/// audit shows its findings early). An error is a problem with the archive
/// directory itself (missing, not a directory), not with an AIP.
pub fn audit(options: &AuditOptions, report: &mut dyn FnMut(&Finding)) -> Result<Summary> {
    let root = open_dir(None, options.archive_dir.as_os_str())
        .map_err(|e| Error::io("open archive_dir", &options.archive_dir, e.into()))?;
    let aipids = match &options.aipid {
        Some(id) => vec![id.clone()],
        None => list_aips(&root).map_err(|e| Error::io("list", &options.archive_dir, e.into()))?,
    };
    let throttle = Throttle::new(options.max_bytes_per_second);
    let mut summary = Summary::default();
    for aipid in aipids {
        summary.aips += 1;
        let mut emit = |name: String, problem: Problem| {
            summary.count(&problem);
            report(&Finding {
                aipid: aipid.clone(),
                name,
                problem,
            });
        };
        let (files, bytes) = audit_one(&root, &aipid, &throttle, &mut emit);
        summary.files += files;
        summary.bytes += bytes;
    }
    Ok(summary)
}

/// Audits one AIP; returns the files and bytes read.
fn audit_one(
    root: &OwnedFd,
    aipid: &str,
    throttle: &Throttle,
    emit: &mut dyn FnMut(String, Problem),
) -> (u64, u64) {
    if !crate::message::names::is_valid_aipid(aipid) {
        emit(
            String::new(),
            Problem::Manifest {
                why: "not an aipid".into(),
            },
        );
        return (0, 0);
    }
    let aip = match open_dir(Some(root), OsStr::new(aipid)) {
        Ok(fd) => Arc::new(fd),
        Err(e) => {
            let why = match e {
                Errno::NOENT => "no such AIP in archive_dir".to_string(),
                Errno::NOTDIR | Errno::LOOP => "not a directory (a symlink is not followed)".into(),
                e => std::io::Error::from(e).to_string(),
            };
            emit(String::new(), Problem::Manifest { why });
            return (0, 0);
        }
    };
    let expected = match read_manifest(&aip) {
        Ok(entries) => entries,
        Err(why) => {
            emit(String::new(), Problem::Manifest { why });
            BTreeMap::new()
        }
    };
    let mut found = BTreeMap::new();
    let mut odd = Vec::new();
    walk(&aip, "", &mut found, &mut odd);
    found.remove(MANIFEST_NAME);
    for (name, kind) in odd {
        emit(name, Problem::Extra { kind });
    }
    let mut jobs = Vec::new();
    for (name, digest) in &expected {
        match found.remove(name) {
            Some(file) => jobs.push((name.clone(), digest.clone(), file)),
            None => emit(name.clone(), Problem::Missing),
        }
    }
    for name in found.into_keys() {
        emit(name, Problem::Extra { kind: "file" });
    }
    let results = hash_all(jobs, throttle);
    let (mut files, mut bytes) = (0, 0);
    for (name, expected, result) in results {
        match result {
            Ok((actual, size)) => {
                files += 1;
                bytes += size;
                if actual != expected {
                    emit(name, Problem::Changed { expected, actual });
                }
            }
            Err(why) => emit(name, Problem::Unreadable { why }),
        }
    }
    (files, bytes)
}

/// Hashes the files on [`HASH_THREADS`] threads; results in manifest order.
#[allow(clippy::type_complexity)]
fn hash_all(
    jobs: Vec<(String, String, Found)>,
    throttle: &Throttle,
) -> Vec<(String, String, std::result::Result<(String, u64), String>)> {
    let count = jobs.len();
    let (job_tx, job_rx) = crossbeam_channel::unbounded();
    for (i, job) in jobs.into_iter().enumerate() {
        let _ = job_tx.send((i, job));
    }
    drop(job_tx);
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    std::thread::scope(|s| {
        for _ in 0..HASH_THREADS.min(count.max(1)) {
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            s.spawn(move || {
                let mut buffer = vec![0u8; CHUNK];
                for (i, (name, expected, file)) in job_rx {
                    let result = hash_file(&file, &mut buffer, throttle);
                    let _ = done_tx.send((i, (name, expected, result)));
                }
            });
        }
    });
    drop(done_tx);
    let mut out: Vec<_> = done_rx.into_iter().collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn hash_file(
    file: &Found,
    buffer: &mut [u8],
    throttle: &Throttle,
) -> std::result::Result<(String, u64), String> {
    let fd = openat(
        &*file.dir,
        file.leaf.as_c_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| std::io::Error::from(e).to_string())?;
    let stat = fstat(&fd).map_err(|e| std::io::Error::from(e).to_string())?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err("no longer a regular file".into());
    }
    let _ = fadvise(&fd, 0, None, Advice::Sequential);
    let mut reader = std::fs::File::from(fd);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        // Ask the kernel to read ahead while this chunk is hashed, so the
        // disk never waits for the hash (advice only).
        let _ = fadvise(
            &reader,
            size + CHUNK as u64,
            NonZeroU64::new(READ_AHEAD),
            Advice::WillNeed,
        );
        let n = match reader.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
        throttle.take(n as u64);
    }
    // What was read for the audit need not stay in the page cache.
    let _ = fadvise(&reader, 0, NonZeroU64::new(0), Advice::DontNeed);
    Ok((crate::digest::hex(&hasher.finalize()), size))
}

fn read_manifest(aip: &OwnedFd) -> std::result::Result<BTreeMap<String, String>, String> {
    let fd = openat(
        aip,
        MANIFEST_NAME,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => format!("{MANIFEST_NAME} is missing"),
        e => format!("cannot open {MANIFEST_NAME}: {}", std::io::Error::from(e)),
    })?;
    let stat = fstat(&fd).map_err(|e| std::io::Error::from(e).to_string())?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(format!("{MANIFEST_NAME} is not a regular file"));
    }
    if stat.st_size as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{MANIFEST_NAME} is over {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_MANIFEST_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {MANIFEST_NAME}: {e}"))?;
    parse_manifest(&text)
}

fn open_dir(at: Option<&OwnedFd>, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match at {
        Some(dir) => openat(dir, name, flags, Mode::empty()),
        None => openat(rustix::fs::CWD, name, flags, Mode::empty()),
    }
}

/// The AIPs: every directory of `archive_dir` whose name does not start with `.`.
fn list_aips(root: &OwnedFd) -> std::result::Result<Vec<String>, Errno> {
    let mut out = Vec::new();
    let mut dir = rustix::fs::Dir::read_from(root)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => rustix::fs::statat(
                root,
                entry.file_name(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory),
            _ => false,
        };
        if is_dir {
            out.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Collects the regular files beneath `dir` by relative name; anything
/// else (symlink, FIFO, socket, device, unreadable directory) goes to `odd`.
fn walk(
    dir: &Arc<OwnedFd>,
    prefix: &str,
    found: &mut BTreeMap<String, Found>,
    odd: &mut Vec<(String, &'static str)>,
) {
    let entries = match rustix::fs::Dir::read_from(&**dir) {
        Ok(mut d) => {
            let mut names = Vec::new();
            while let Some(Ok(entry)) = d.read() {
                let name = entry.file_name().to_owned();
                if name.as_bytes() != b"." && name.as_bytes() != b".." {
                    names.push(name);
                }
            }
            names
        }
        Err(_) => {
            odd.push((
                prefix.trim_end_matches('/').to_string(),
                "unreadable directory",
            ));
            return;
        }
    };
    for leaf in entries {
        let relative = format!("{prefix}{}", String::from_utf8_lossy(leaf.as_bytes()));
        let kind = rustix::fs::statat(
            &**dir,
            leaf.as_c_str(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map(|s| FileType::from_raw_mode(s.st_mode));
        match kind {
            Ok(FileType::RegularFile) => {
                found.insert(
                    relative,
                    Found {
                        dir: Arc::clone(dir),
                        leaf,
                    },
                );
            }
            Ok(FileType::Directory) => {
                match open_dir(Some(dir), OsStr::from_bytes(leaf.as_bytes())) {
                    Ok(sub) => walk(&Arc::new(sub), &format!("{relative}/"), found, odd),
                    Err(_) => odd.push((relative, "unreadable directory")),
                }
            }
            Ok(FileType::Symlink) => odd.push((relative, "symlink")),
            Ok(FileType::Fifo) => odd.push((relative, "FIFO")),
            Ok(FileType::Socket) => odd.push((relative, "socket")),
            Ok(_) => odd.push((relative, "device")),
            Err(_) => odd.push((relative, "unreadable entry")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_strictly() {
        let a = "a".repeat(64);
        let m = parse_manifest(&format!("{a}  x\n{a}  sub/y z\n")).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["sub/y z"], a);
        assert!(
            parse_manifest(&format!("{a} x\n"))
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse_manifest(&format!("{}  x\n", "A".repeat(64))).is_err());
        assert!(
            parse_manifest(&format!("{a}  x\n{a}  x\n"))
                .unwrap_err()
                .contains("second")
        );
        assert!(parse_manifest("").unwrap().is_empty());
    }

    #[test]
    fn the_throttle_holds_the_rate() {
        let t = Throttle::new(Some(1_000_000));
        let start = Instant::now();
        for _ in 0..4 {
            t.take(50_000);
        }
        // 200 kB at 1 MB/s: at least 0.2 s.
        assert!(
            start.elapsed() >= Duration::from_millis(195),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn findings_are_one_escaped_line() {
        let f = Finding {
            aipid: "a\nb".into(),
            name: "x\u{1b}[31m".into(),
            problem: Problem::Missing,
        };
        let line = f.to_string();
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
    }
}
