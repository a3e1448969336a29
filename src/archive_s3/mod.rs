//! Archiving one request's files into S3: `s3://BUCKET/PREFIX/<aipid>/`,
//! each file under its relative name, the whole-AIP manifest written last
//! as `PREFIX/<aipid>/manifest-sha256.txt` (see [`manifest`]).
//!
//! Sources are opened through [`crate::archive::source`] (beneath the
//! handle of `source_dir`, as for the disk destination). Each file is read
//! once: its SHA-256 goes into the manifest, into the PUT's (or each
//! part's) `x-amz-checksum-sha256` and signed payload hash, and into the
//! object's `x-amz-meta-sha256`; the client ([`crate::s3`]) verifies every
//! upload against what S3 answers. A file larger than one part is hashed
//! first (the metadata and the skip check need its SHA-256 before the
//! upload starts) and read a second time as it is sent, that second read
//! checked against the first before the upload completes.
//!
//! A file whose object already holds the same SHA-256 (its metadata, or
//! its checksum) is not sent again and is reported `skipped`. Small files
//! go in parallel, `4 × threads` at once, each held whole, within a budget
//! of `threads × part_size` bytes; large ones go one at a time, their parts
//! on the client's pool: at most `(threads + 1) × part_size` bytes of file
//! data in memory.
//!
//! Knows nothing of queues or of the settings: the caller hands in an
//! [`S3Client`] and an [`S3Job`].

pub mod manifest;
mod read;

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use crate::archive::ArchivedFile;
use crate::archive::MANIFEST_NAME;
use crate::archive::Resolution;
use crate::archive::copy::{CopyError, CopyOptions, copy_consistent};
use crate::archive::manifest::validate_archived_name;
use crate::archive::source::{SourceRoot, whole_directory_names};
use crate::error::{Error, Result};
use crate::message::names::validate_aipid;
use crate::s3::S3Client;
use crate::s3::multipart::MultipartConfig;
use crate::s3::request::PutOptions;

/// One archive request bound for S3.
#[derive(Debug, Clone)]
pub struct S3Job<'a> {
    pub aipid: &'a str,
    /// Paths relative to `source_dir`; empty: the whole `source_dir/<aipid>/`.
    pub filenames: &'a [String],
    pub source_dir: &'a Path,
    pub bucket: &'a str,
    /// `PREFIX` without leading or trailing `/`; may be empty.
    pub prefix: &'a str,
    /// Storage class and encryption of the objects (the condition and
    /// SHA-256 are set per object).
    pub put: PutOptions,
    pub multipart: MultipartConfig,
    pub resolution: Resolution,
}

/// What [`archive_to_s3`] did, for the completion message: the fields of
/// the disk destination's report, with URLs for paths.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct S3Report {
    pub aipid: String,
    /// `s3://BUCKET/PREFIX/<aipid>/`.
    pub archive_path: String,
    pub file_count: usize,
    pub total_bytes: u64,
    /// `s3://BUCKET/PREFIX/<aipid>/manifest-sha256.txt`.
    pub manifest: String,
    /// Lower-case hex SHA-256 of the whole-AIP manifest as written.
    pub manifest_sha256: String,
    /// Files sent now.
    pub uploaded: usize,
    /// Files whose object already held the same bytes.
    pub skipped: usize,
    /// The files of this request, in its order.
    pub files: Vec<ArchivedFile>,
}

/// Uploads the files of `job` and merges them into the AIP's manifest.
///
/// Bad requests are [`Error::InvalidData`] before anything is sent. A
/// fault that may pass by itself (a cut connection, bytes S3 did not
/// store as sent, throttling) that outlasts the client's retries is
/// [`Error::Transient`] (exit 75); a lost race for the manifest is
/// [`Error::Contended`] (75). The manifest is written only after every
/// file is stored and verified, so it never names an object that is not
/// there with its bytes.
pub fn archive_to_s3(client: &S3Client, job: &S3Job) -> Result<S3Report> {
    validate_aipid(job.aipid)?;
    let root = SourceRoot::open(job.source_dir)?;
    let (root, names) = if job.filenames.is_empty() {
        let aip_root = root.below(job.aipid, job.resolution)?;
        let names = whole_directory_names(&aip_root, job.resolution)?;
        (aip_root, names)
    } else {
        (root, unique_names(job.filenames)?)
    };
    // Every name is checked before anything is sent.
    let mut sizes = Vec::with_capacity(names.len());
    for name in &names {
        let file = root.open_file(name, job.resolution)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("inspect source file", root.shown.join(name), e))?
            .len();
        sizes.push(size);
    }
    let aip_prefix = aip_prefix(job.prefix, job.aipid);
    let existing: HashMap<String, u64> = client
        .list_objects(job.bucket, &aip_prefix)
        .map_err(transient)?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let ctx = Context {
        client,
        job,
        root: &root,
        aip_prefix: &aip_prefix,
        existing: &existing,
    };
    let part = job.multipart.part_size as u64;
    let small: Vec<usize> = (0..names.len()).filter(|&i| sizes[i] < part).collect();
    let mut done: Vec<Option<ArchivedFile>> = vec![None; names.len()];
    for (i, file) in ctx.small_files(&names, &sizes, &small)? {
        done[i] = Some(file);
    }
    for (i, name) in names.iter().enumerate() {
        if done[i].is_none() {
            done[i] = Some(ctx.large_file(name)?);
        }
    }
    let files: Vec<ArchivedFile> = done.into_iter().flatten().collect();
    let written = manifest::merge(
        client,
        job.bucket,
        &format!("{aip_prefix}{MANIFEST_NAME}"),
        files.iter().map(|f| (f.name.as_str(), f.sha256.as_str())),
    )?;
    let skipped = files.iter().filter(|f| f.skipped).count();
    Ok(S3Report {
        aipid: job.aipid.to_string(),
        archive_path: format!("s3://{}/{aip_prefix}", job.bucket),
        file_count: files.len(),
        total_bytes: files.iter().map(|f| f.size).sum(),
        manifest: format!("s3://{}/{aip_prefix}{MANIFEST_NAME}", job.bucket),
        manifest_sha256: written.sha256,
        uploaded: files.len() - skipped,
        skipped,
        files,
    })
}

/// `PREFIX/<aipid>/` (`<aipid>/` for an empty prefix).
pub fn aip_prefix(prefix: &str, aipid: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{aipid}/")
    } else {
        format!("{prefix}/{aipid}/")
    }
}

/// What every file's upload shares.
struct Context<'a> {
    client: &'a S3Client,
    job: &'a S3Job<'a>,
    root: &'a SourceRoot,
    aip_prefix: &'a str,
    /// Keys already under the AIP's prefix, with their sizes.
    existing: &'a HashMap<String, u64>,
}

impl Context<'_> {
    /// Files smaller than a part, `threads` at a time, each read whole into
    /// memory once. The first error stops the others from starting new files.
    fn small_files(
        &self,
        names: &[String],
        sizes: &[u64],
        which: &[usize],
    ) -> Result<Vec<(usize, ArchivedFile)>> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let results = Mutex::new(Vec::with_capacity(which.len()));
        let first_error: Mutex<Option<(usize, Error)>> = Mutex::new(None);
        // Small files are mostly waiting on the network: more of them in
        // flight than parts, their bytes held within the same budget.
        let config = &self.job.multipart;
        let budget = Budget::new((config.threads.max(1) * config.part_size) as u64);
        let threads = (config.threads * SMALL_FILES_PER_THREAD).clamp(1, which.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = which.get(n) else { break };
                        let _held = budget.take(sizes[i]);
                        match self.small_file(&names[i]) {
                            Ok(file) => lock(&results).push((i, file)),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                let mut first = lock(&first_error);
                                if first.as_ref().is_none_or(|(j, _)| i < *j) {
                                    *first = Some((i, e));
                                }
                            }
                        }
                    }
                });
            }
        });
        if let Some((_, e)) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    fn small_file(&self, name: &str) -> Result<ArchivedFile> {
        let file = self.root.open_file(name, self.job.resolution)?;
        let shown = self.root.shown.join(name);
        let bytes = read::whole(&file, self.job.multipart.part_size as u64)
            .map_err(|e| read::error(e, &shown))?;
        let sha256 = crate::digest::sha256_hex(&bytes);
        let key = format!("{}{name}", self.aip_prefix);
        let size = bytes.len() as u64;
        if self.already_stored(&key, size, &sha256, Some(&bytes))? {
            return Ok(archived(name, size, sha256, true));
        }
        let options = PutOptions {
            sha256_hex: Some(sha256.clone()),
            ..self.job.put.clone()
        };
        let put = self
            .client
            .put_object(self.job.bucket, &key, &bytes, &options)
            .map_err(transient)?;
        log::info!(
            "archived {} to s3://{}/{key} (sha256 {sha256}, {size} bytes, {:?})",
            shown.display(),
            self.job.bucket,
            put.verified
        );
        Ok(archived(name, size, sha256, false))
    }

    /// A file of a part or more: hashed (consistently) first, then sent
    /// in parts, the bytes sent checked against that hash.
    fn large_file(&self, name: &str) -> Result<ArchivedFile> {
        let mut file = self.root.open_file(name, self.job.resolution)?;
        let shown = self.root.shown.join(name);
        let digest = copy_consistent(&file, None, CopyOptions::default()).map_err(|e| match e {
            CopyError::Read(e) | CopyError::Write(e) => Error::io("read source file", &shown, e),
            CopyError::StillChanging => read::error(read::still_changing(), &shown),
        })?;
        let key = format!("{}{name}", self.aip_prefix);
        if self.already_stored(&key, digest.size, &digest.sha256, None)? {
            return Ok(archived(name, digest.size, digest.sha256, true));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("read source file", &shown, e))?;
        let options = PutOptions {
            sha256_hex: Some(digest.sha256.clone()),
            ..self.job.put.clone()
        };
        let mut reader = (&file).take(digest.size);
        let put = self
            .client
            .upload(
                self.job.bucket,
                &key,
                &mut reader,
                &options,
                &self.job.multipart,
            )
            .map_err(|e| match e {
                // The second read did not give the first one's bytes.
                Error::InvalidData(m) => read::error(
                    std::io::Error::new(std::io::ErrorKind::ResourceBusy, m),
                    &shown,
                ),
                other => transient(other),
            })?;
        log::info!(
            "archived {} to s3://{}/{key} (sha256 {}, {} bytes, {} parts, {:?})",
            shown.display(),
            self.job.bucket,
            digest.sha256,
            digest.size,
            put.parts,
            put.verified
        );
        Ok(archived(name, digest.size, digest.sha256, false))
    }

    /// True when `key` already holds these bytes: same size in the listing,
    /// the SHA-256 in its metadata or its (single-part) checksum, and, when
    /// its ETag is an MD5, the MD5 of `bytes` (a server that does not check
    /// checksums may have kept the bytes of a failed PUT under our
    /// metadata; without `bytes` such an object is sent again).
    fn already_stored(
        &self,
        key: &str,
        size: u64,
        sha256: &str,
        bytes: Option<&[u8]>,
    ) -> Result<bool> {
        if self.existing.get(key) != Some(&size) {
            return Ok(false);
        }
        let Some(head) = self
            .client
            .head_object(self.job.bucket, key)
            .map_err(transient)?
        else {
            return Ok(false);
        };
        let checksum = crate::s3::checksum::base64(&hex_bytes(sha256));
        let md5_etag = head.etag.len() == 32
            && head.etag.bytes().all(|b| b.is_ascii_hexdigit())
            && head.encryption.as_deref() != Some("aws:kms");
        let etag_agrees = !md5_etag
            || bytes.is_some_and(|b| crate::digest::md5_hex(b).eq_ignore_ascii_case(&head.etag));
        let same = head.size == size
            && etag_agrees
            && (head.metadata_sha256() == Some(sha256)
                || head.checksum_sha256.as_deref() == Some(checksum.as_str()));
        if same {
            log::debug!(
                "s3://{}/{key} already holds sha256 {sha256}",
                self.job.bucket
            );
        } else {
            log::warn!(
                "replacing s3://{}/{key} (sha256 {}) with other bytes (sha256 {sha256}); the newest request wins",
                self.job.bucket,
                head.metadata_sha256().unwrap_or("unknown")
            );
        }
        Ok(same)
    }
}

/// Small files in flight per `s3_threads`.
const SMALL_FILES_PER_THREAD: usize = 4;

/// Bytes of small files held at once, at most.
struct Budget {
    free: Mutex<u64>,
    freed: Condvar,
    total: u64,
}

impl Budget {
    fn new(total: u64) -> Budget {
        Budget {
            free: Mutex::new(total),
            freed: Condvar::new(),
            total,
        }
    }

    /// Waits until `bytes` (at most the whole budget) are free and takes them.
    fn take(&self, bytes: u64) -> Held<'_> {
        let bytes = bytes.min(self.total);
        let mut free = lock(&self.free);
        while *free < bytes {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= bytes;
        Held {
            budget: self,
            bytes,
        }
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
struct Held<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *lock(&self.budget.free) += self.bytes;
        self.budget.freed.notify_all();
    }
}

fn archived(name: &str, size: u64, sha256: String, skipped: bool) -> ArchivedFile {
    ArchivedFile {
        name: name.to_string(),
        size,
        sha256,
        skipped,
        // Every upload is compared with what S3 answers; a skipped object's
        // SHA-256 was read from S3.
        verified: true,
    }
}

/// The names of a request, checked, repeats dropped.
fn unique_names(filenames: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(filenames.len());
    for name in filenames {
        validate_archived_name(name)?;
        if seen.insert(name.as_str()) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

/// Faults that may pass by themselves, once the client's retries are
/// spent, become [`Error::Transient`] (exit 75): a cut connection, an
/// answer that did not match what was sent, throttling.
pub fn transient(e: Error) -> Error {
    match e {
        Error::Transport { .. } | Error::Protocol { .. } => Error::Transient(Box::new(e)),
        Error::Service(ref s) if s.is_retryable() => Error::Transient(Box::new(e)),
        other => other,
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_back_what_does_not_fit_until_it_is_given_back() {
        let budget = Budget::new(10);
        let a = budget.take(6);
        let b = budget.take(4);
        assert_eq!(*lock(&budget.free), 0);
        let taken = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _c = budget.take(5);
                taken.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!taken.load(Ordering::SeqCst), "5 bytes do not fit yet");
            drop(a);
        });
        assert!(taken.load(Ordering::SeqCst));
        drop(b);
        assert_eq!(*lock(&budget.free), 10);
        // More than the whole budget takes the whole budget.
        assert_eq!(budget.take(99).bytes, 10);
    }

    #[test]
    fn aip_prefix_joins_prefix_and_aipid() {
        assert_eq!(aip_prefix("", "aip-1"), "aip-1/");
        assert_eq!(aip_prefix("a/b/", "aip-1"), "a/b/aip-1/");
        assert_eq!(aip_prefix("/a", "aip-1"), "a/aip-1/");
    }

    #[test]
    fn only_faults_that_may_pass_become_transient() {
        let cut = Error::Transport {
            action: "PutObject",
            endpoint: "http://x".into(),
            detail: "reset".into(),
        };
        assert!(matches!(transient(cut), Error::Transient(_)));
        let denied = Error::Service(crate::error::ServiceError {
            action: "PutObject",
            status: 403,
            code: "AccessDenied".into(),
            message: "no".into(),
            request_id: None,
        });
        assert_eq!(transient(denied).exit(), crate::exit::Exit::NoPerm);
        assert_eq!(hex_bytes("00ff10"), vec![0, 255, 16]);
    }

    #[test]
    fn repeated_names_are_archived_once_and_bad_ones_refused() {
        let names = unique_names(&["a".into(), "b/c".into(), "a".into()]).unwrap();
        assert_eq!(names, ["a", "b/c"]);
        assert!(unique_names(&["../x".into()]).is_err());
        assert!(unique_names(&[MANIFEST_NAME.into()]).is_err());
    }
}
