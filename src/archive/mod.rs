//! Copying the files of an archive request from the source tree into an
//! AIP of the archive tree. An AIP (`archive_dir/<aipid>/`) holds the files
//! of every request for it: a request adds or replaces the files it names
//! and removes none, and afterwards the AIP's one manifest lists every file
//! in it (this request's digests from their copies, the others' from the
//! previous manifest; a file in no manifest is hashed and logged).
//!
//! `process_message` calls [`archive`] for an `archive` request. The parts:
//! - [`beneath`]: every source name is opened beneath the handle of
//!   `source_dir` (or of `source_dir/<aipid>`), so no rename or symlink swap
//!   can make it leave that directory;
//! - [`copy`]: each file is copied from its opened descriptor and hashed, and
//!   copied again when it changed meanwhile (or hashed differently when read
//!   a second time); sparse sources stay sparse;
//! - `source`: the source tree's handle, and the walk that lists a
//!   whole `<aipid>` directory;
//! - `target`: the archive side, reached through directory handles that
//!   never follow a symlink; files are staged, made durable together, read
//!   back and compared, then renamed into place;
//! - [`private`]: `archive_dir/.sqs-archive/`, which no request can name:
//!   the AIP's lock (one writer per AIP) and the run's staging directory;
//! - [`manifest`]: the manifest's name, text, digest and parser;
//! - `hooks`: faults on demand, in test builds only.
//!
//! SQS delivers a message at least once, so the same request may run twice,
//! even at the same time on two hosts that share the archive file system:
//! the AIP's lock makes the second wait, never interleave. Every step is
//! idempotent and every write atomic: a reader of the
//! archive sees the old file or the new one, never a part. The aipid and the
//! file names are checked with [`crate::message::names`] (the one rule) and
//! the manifest's reserved name. This module knows nothing of SQS, of the
//! queue or of the message format.

pub mod beneath;
pub mod copy;
#[cfg(any(test, feature = "test-hooks"))]
pub mod hooks;
pub mod manifest;
pub mod private;
pub mod source;
mod target;

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use beneath::Resolution;
use copy::{COPY_ATTEMPTS, CopyError, CopyOptions, copy_consistent};
pub use copy::{ContentDigest, sha256_digest};
#[cfg(any(test, feature = "test-hooks"))]
use hooks::TestHooks;
pub use manifest::MANIFEST_NAME;
use manifest::validate_archived_name;
use source::{SourceRoot, whole_directory_names};
use target::ArchiveTree;

use crate::error::Error;
use crate::message::names::validate_aipid;

/// One archive request, with the directories it reads from and writes to.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveJob<'a> {
    /// The AIP identifier; the files go to `archive_dir/<aipid>/`.
    pub aipid: &'a str,
    /// Paths relative to `source_dir`. When empty, the whole directory
    /// `source_dir/<aipid>/` is archived, with names relative to it.
    pub filenames: &'a [String],
    /// The tree the files are read from.
    pub source_dir: &'a Path,
    /// The tree the files are written to. It must exist: a missing archive
    /// directory more often means an unmounted volume than a fresh host.
    pub archive_dir: &'a Path,
    pub options: ArchiveOptions,
}

/// How a job is carried out.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveOptions {
    /// Read each written file back after it is durable and compare its
    /// SHA-256 (profile key `verify`, default on).
    pub verify: bool,
    /// How source names are resolved.
    pub resolution: Resolution,
    /// How long to wait for another run writing the same AIP
    /// ([`private::LOCK_WAIT`] unless a test shortens it).
    pub lock_wait: std::time::Duration,
    /// Faults and delays, in test builds only; all off by default.
    #[cfg(any(test, feature = "test-hooks"))]
    pub hooks: TestHooks,
}

impl Default for ArchiveOptions {
    fn default() -> ArchiveOptions {
        ArchiveOptions {
            verify: true,
            resolution: Resolution::Kernel,
            lock_wait: private::LOCK_WAIT,
            #[cfg(any(test, feature = "test-hooks"))]
            hooks: TestHooks::default(),
        }
    }
}

/// What [`archive`] did, for the completion message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveReport {
    pub aipid: String,
    /// `archive_dir/<aipid>`, built from `archive_dir` as given.
    pub archive_path: PathBuf,
    /// How many files this request named (or its directory held).
    pub file_count: usize,
    /// Their sizes added up.
    pub total_bytes: u64,
    /// How many files the AIP holds now, this request's and earlier ones'
    /// (the manifest has a line for each).
    pub aip_file_count: usize,
    /// The manifest of the whole AIP.
    pub manifest: PathBuf,
    /// Lower-case hex SHA-256 of the manifest.
    pub manifest_sha256: String,
    /// The files of the job, in the order of the request (sorted by name in
    /// whole-directory mode).
    pub files: Vec<ArchivedFile>,
}

/// One file of a job as it now is in the archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchivedFile {
    /// The path relative to the AIP directory, with `/` separators.
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    /// True when an identical file was already in the archive and was left
    /// untouched (the request had been delivered before).
    pub skipped: bool,
    /// True when the archived copy was read back (after it was made durable)
    /// and matched `sha256`.
    pub verified: bool,
}

/// Copies the files of `job` into `archive_dir/<aipid>/`, holding the
/// AIP's lock, and rewrites the manifest of the whole AIP there.
///
/// Bad requests (an unsafe aipid or name, a missing or non-regular source
/// file, a name leading out of the source tree, a symlink or file where an
/// archive directory must be) are refused with [`Error::InvalidData`];
/// failures worth a retry (reading, writing, a source that keeps changing, a
/// copy that does not read back as written, the AIP busy past
/// [`ArchiveOptions::lock_wait`]) are [`Error::Io`]. Either way no staged file
/// is left behind and no file is half-written.
pub fn archive(job: &ArchiveJob) -> Result<ArchiveReport, Error> {
    validate_aipid(job.aipid)?;
    let named = unique_names(job.filenames)?;
    let source_root = SourceRoot::open(job.source_dir)?;
    let (root, names) = if named.is_empty() {
        let aip_root = source_root.below(job.aipid, job.options.resolution)?;
        let names = whole_directory_names(&aip_root, job.options.resolution)?;
        (aip_root, names)
    } else {
        let names = named.into_iter().map(str::to_owned).collect();
        (source_root, names)
    };
    // Every name is checked before anything is written.
    for name in &names {
        root.open_file(name, job.options.resolution)?;
    }

    let mut tree = ArchiveTree::open(job.archive_dir, job.aipid, job.options.lock_wait)?;
    let copy_options = CopyOptions {
        #[cfg(any(test, feature = "test-hooks"))]
        pause_per_chunk: job.options.hooks.pause_per_chunk,
        rehash: job.options.verify,
    };
    #[cfg(any(test, feature = "test-hooks"))]
    let copy_options = CopyOptions {
        rehash: copy_options.rehash && !job.options.hooks.no_rehash,
        ..copy_options
    };
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let source = root.open_file(&name, job.options.resolution)?;
        let shown_source = root.shown.join(&name);
        let shown_target = tree.aip_path().join(&name);
        let copy_error = |e: CopyError| match e {
            CopyError::Read(e) => Error::io("read source file", &shown_source, e),
            CopyError::Write(e) => Error::io("write", &shown_target, e),
            CopyError::StillChanging => Error::io(
                "copy",
                &shown_source,
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "source still changing: it changed during each of {COPY_ATTEMPTS} copies; try again later"
                    ),
                ),
            ),
        };
        let source_size = source
            .metadata()
            .map_err(|e| Error::io("inspect source file", &shown_source, e))?
            .len();
        let existing = tree.existing(&name)?;
        if let Some(old) = &existing
            && old.size == source_size
        {
            let current = copy_consistent(&source, None, copy_options).map_err(copy_error)?;
            if current == *old {
                log::debug!("{} is already archived, unchanged", shown_target.display());
                files.push(ArchivedFile {
                    name,
                    size: current.size,
                    sha256: current.sha256,
                    skipped: true,
                    // The archived copy was just read and matched.
                    verified: true,
                });
                continue;
            }
        }
        let (mut temp, pending) = tree.create_temp(&name)?;
        let copied = copy_consistent(&source, Some(&mut temp), copy_options).map_err(copy_error)?;
        #[cfg(any(test, feature = "test-hooks"))]
        if job.options.hooks.corrupt_copies {
            tree.corrupt(&pending)?;
        }
        tree.stage(pending, copied.clone(), temp);
        match existing {
            Some(old) => log::warn!(
                "replacing {} (sha256 {}, {} bytes) with a different {} (sha256 {}, {} bytes); the newest request wins",
                shown_target.display(),
                old.sha256,
                old.size,
                shown_source.display(),
                copied.sha256,
                copied.size
            ),
            None => log::info!(
                "archiving {} to {} (sha256 {}, {} bytes)",
                shown_source.display(),
                shown_target.display(),
                copied.sha256,
                copied.size
            ),
        }
        files.push(ArchivedFile {
            name,
            size: copied.size,
            sha256: copied.sha256,
            skipped: false,
            verified: job.options.verify,
        });
    }

    // The previous manifest is read before anything of this run is in
    // place; the lock keeps every other writer out until the end.
    let previous = tree.read_manifest()?;
    tree.commit(job.options.verify)?;

    let written: HashMap<&str, &str> = files
        .iter()
        .map(|f| (f.name.as_str(), f.sha256.as_str()))
        .collect();
    let known = previous
        .as_ref()
        .map(|text| {
            manifest::parse_manifest(text).unwrap_or_else(|why| {
                log::warn!(
                    "the manifest of {} cannot be read ({why}); every file not written now is hashed again",
                    tree.aip_path().display()
                );
                Default::default()
            })
        })
        .unwrap_or_default();
    let mut entries: Vec<(String, String)> = Vec::new();
    let present = tree.list_files()?;
    for gone in known
        .keys()
        .filter(|name| present.binary_search(name).is_err())
    {
        log::warn!(
            "{} is in the manifest of {} but no longer in the AIP (removed by hand?); its line is dropped",
            crate::message::names::quoted(gone),
            tree.aip_path().display()
        );
    }
    for name in present {
        let sha256 = if let Some(sha256) = written.get(name.as_str()) {
            (*sha256).to_owned()
        } else if let Some(sha256) = known.get(&name) {
            sha256.clone()
        } else {
            let Some(found) = tree.existing(&name)? else {
                continue;
            };
            log::warn!(
                "{} is in the AIP but not in its manifest; it is added with sha256 {}",
                tree.aip_path().join(&name).display(),
                found.sha256
            );
            found.sha256
        };
        entries.push((name, sha256));
    }
    let (text, manifest_digest) =
        manifest::manifest(entries.iter().map(|(n, d)| (n.as_str(), d.as_str())));
    // A redelivered request whose manifest already says the same writes nothing.
    if previous.map(|p| copy::digest_of_bytes(p.as_bytes())) != Some(manifest_digest.clone()) {
        let manifest_path = tree.aip_path().join(MANIFEST_NAME);
        let (mut temp, pending) = tree.create_temp(MANIFEST_NAME)?;
        temp.write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &manifest_path, e))?;
        tree.stage(pending, manifest_digest.clone(), temp);
        tree.commit(job.options.verify)?;
    }

    Ok(ArchiveReport {
        aipid: job.aipid.to_owned(),
        archive_path: tree.aip_path().to_path_buf(),
        file_count: files.len(),
        total_bytes: files.iter().map(|f| f.size).sum(),
        aip_file_count: entries.len(),
        manifest: tree.aip_path().join(MANIFEST_NAME),
        manifest_sha256: manifest_digest.sha256,
        files,
    })
}

/// The names of a request, checked, with repeats dropped: archiving a file
/// twice in one job is the same as archiving it once.
fn unique_names(filenames: &[String]) -> Result<Vec<&str>, Error> {
    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(filenames.len());
    for name in filenames {
        validate_archived_name(name)?;
        if seen.insert(name.as_str()) {
            names.push(name.as_str());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::File;
    use std::fs::{self, Permissions};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime};

    const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const WORLD_SHA256: &str = "e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const AIPID: &str = "aip-0001";

    static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

    /// A directory of its own for one test, with `source/` and `archive/`
    /// inside; removed when dropped.
    struct Scratch {
        root: PathBuf,
        resolution: Resolution,
    }

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let counter = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!(
                "sqs-archive-test-{}-{counter}-{test}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("source")).unwrap();
            fs::create_dir_all(root.join("archive")).unwrap();
            Scratch {
                root,
                resolution: Resolution::Kernel,
            }
        }

        fn source(&self) -> PathBuf {
            self.root.join("source")
        }

        fn archive(&self) -> PathBuf {
            self.root.join("archive")
        }

        fn aip(&self) -> PathBuf {
            self.archive().join(AIPID)
        }

        fn put(&self, name: &str, contents: &[u8]) {
            let path = self.source().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }

        fn run(&self, names: &[&str]) -> Result<ArchiveReport, Error> {
            self.run_aip(AIPID, names)
        }

        fn run_aip(&self, aipid: &str, names: &[&str]) -> Result<ArchiveReport, Error> {
            let filenames: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let source = self.source();
            let archive_dir = self.archive();
            archive(&ArchiveJob {
                aipid,
                filenames: &filenames,
                source_dir: &source,
                archive_dir: &archive_dir,
                options: ArchiveOptions {
                    resolution: self.resolution,
                    ..ArchiveOptions::default()
                },
            })
        }

        /// Whatever is left in the private staging directory, or below the
        /// archive directory with a temporary file's name.
        fn temp_files(&self) -> Vec<PathBuf> {
            let mut found = Vec::new();
            let mut pending = vec![self.archive()];
            while let Some(dir) = pending.pop() {
                for entry in fs::read_dir(dir).unwrap() {
                    let entry = entry.unwrap();
                    if entry.file_type().unwrap().is_dir() {
                        pending.push(entry.path());
                    } else if entry.file_name().to_string_lossy().contains(".tmp.") {
                        found.push(entry.path());
                    }
                }
            }
            let staging = self.archive().join(private::PRIVATE_DIR).join("staging");
            if let Ok(entries) = fs::read_dir(staging) {
                found.extend(entries.map(|e| e.unwrap().path()));
            }
            found
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn invalid_data_message(result: Result<ArchiveReport, Error>) -> String {
        match result {
            Err(Error::InvalidData(message)) => message,
            other => panic!("expected InvalidData, got {other:?}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn digests_match_known_values() {
        let hello = sha256_digest(&b"hello\n"[..]).unwrap();
        assert_eq!(hello.sha256, HELLO_SHA256);
        assert_eq!(hello.size, 6);
        let empty = sha256_digest(io::empty()).unwrap();
        assert_eq!(empty.sha256, EMPTY_SHA256);
        assert_eq!(empty.size, 0);
        assert_eq!(copy::digest_of_bytes(b"hello\n"), hello);
    }

    #[test]
    fn a_request_adds_to_the_aip_and_the_manifest_covers_it_all() {
        let scratch = Scratch::new("whole-aip");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");
        let first = scratch.run(&["a.txt", "sub/b.txt"]).unwrap();
        assert_eq!(first.aip_file_count, 2);
        scratch.put("a.txt", b"world\n");
        // A file someone put there by hand is hashed and taken in; a
        // symlink is not part of the AIP.
        fs::write(scratch.aip().join("by-hand.txt"), b"").unwrap();
        std::os::unix::fs::symlink("a.txt", scratch.aip().join("link")).unwrap();
        let second = scratch.run(&["a.txt"]).unwrap();
        assert_eq!(second.file_count, 1);
        assert_eq!(second.aip_file_count, 3);
        let text = fs::read_to_string(&second.manifest).unwrap();
        assert_eq!(
            text,
            format!(
                "{WORLD_SHA256}  a.txt\n{EMPTY_SHA256}  by-hand.txt\n{WORLD_SHA256}  sub/b.txt\n"
            )
        );
        assert_eq!(
            second.manifest_sha256,
            crate::digest::sha256_hex(text.as_bytes())
        );
        // The lines of files not written now come from the manifest: a
        // file changed behind our back keeps its recorded digest (for the
        // audit to find).
        fs::write(scratch.aip().join("sub/b.txt"), b"decayed").unwrap();
        scratch.put("c.txt", b"hello\n");
        let third = scratch.run(&["c.txt"]).unwrap();
        let text = fs::read_to_string(&third.manifest).unwrap();
        assert!(
            text.contains(&format!("{WORLD_SHA256}  sub/b.txt\n")),
            "{text}"
        );
        assert!(text.contains(&format!("{HELLO_SHA256}  c.txt\n")), "{text}");
        assert_eq!(third.aip_file_count, 4);
        assert!(scratch.temp_files().is_empty());
        // A file removed by hand drops out at the next request.
        fs::remove_file(scratch.aip().join("by-hand.txt")).unwrap();
        let fourth = scratch.run(&["c.txt"]).unwrap();
        let text = fs::read_to_string(&fourth.manifest).unwrap();
        assert!(!text.contains("by-hand.txt"), "{text}");
        assert_eq!(fourth.aip_file_count, 3);
    }

    #[test]
    fn symlinked_subdirectories_are_entered_in_whole_directory_mode() {
        for resolution in [Resolution::Kernel, Resolution::Walk] {
            let mut scratch = Scratch::new("whole-symlinked");
            scratch.resolution = resolution;
            scratch.put(&format!("{AIPID}/real/a.txt"), b"hello\n");
            std::os::unix::fs::symlink("real", scratch.source().join(AIPID).join("alias")).unwrap();
            let report = scratch.run(&[]).unwrap();
            let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["alias/a.txt", "real/a.txt"]);
            // One leading back up would never end; one leading out is refused.
            std::os::unix::fs::symlink("..", scratch.source().join(AIPID).join("real/up")).unwrap();
            let message = invalid_data_message(scratch.run(&[]));
            assert!(message.contains("symlink back"), "{message}");
            fs::remove_file(scratch.source().join(AIPID).join("real/up")).unwrap();
            fs::create_dir_all(scratch.root.join("outside")).unwrap();
            std::os::unix::fs::symlink(
                scratch.root.join("outside"),
                scratch.source().join(AIPID).join("out"),
            )
            .unwrap();
            let message = invalid_data_message(scratch.run(&[]));
            assert!(message.contains("outside"), "{message}");
        }
    }

    #[test]
    fn sockets_and_overlong_names_are_permanent() {
        let scratch = Scratch::new("socket");
        let _listener =
            std::os::unix::net::UnixListener::bind(scratch.source().join("sock")).unwrap();
        let message = invalid_data_message(scratch.run(&["sock"]));
        assert!(message.contains("socket"), "{message}");
        let long = "x".repeat(256);
        let error = scratch.run(&[long.as_str()]).unwrap_err();
        assert_eq!(error.exit(), crate::exit::Exit::DataErr, "{error}");
        assert!(error.to_string().contains("longer than 255"), "{error}");
        assert!(is_permanent_name_errno_for_test());
    }

    /// The archive side maps what a file system with a shorter name limit
    /// says to a permanent refusal too.
    fn is_permanent_name_errno_for_test() -> bool {
        use rustix::io::Errno;
        [Errno::NAMETOOLONG, Errno::ILSEQ, Errno::NXIO]
            .into_iter()
            .all(beneath::is_permanent_name_errno)
            && !beneath::is_permanent_name_errno(Errno::IO)
            && !beneath::is_permanent_name_errno(Errno::NOSPC)
    }

    #[test]
    fn sparse_sources_stay_sparse_with_the_same_digest() {
        let scratch = Scratch::new("sparse");
        let path = scratch.source().join("sparse");
        let file = File::create(&path).unwrap();
        file.set_len(64 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(&[1u8; 1 << 20], 8 << 20).unwrap();
        file.write_all_at(b"end", (64 << 20) - 3).unwrap();
        drop(file);
        let report = scratch.run(&["sparse"]).unwrap();
        let expected = sha256_digest(File::open(&path).unwrap()).unwrap();
        assert_eq!(report.files[0].sha256, expected.sha256);
        let source_blocks = fs::metadata(&path).unwrap().blocks();
        let archived = fs::metadata(scratch.aip().join("sparse")).unwrap();
        assert_eq!(archived.len(), 64 << 20);
        assert!(
            archived.blocks() <= source_blocks + 64,
            "{} blocks archived, {source_blocks} in the source",
            archived.blocks()
        );
    }

    #[test]
    fn duplicate_names_are_archived_once() {
        let scratch = Scratch::new("duplicates");
        scratch.put("a.txt", b"hello\n");
        let report = scratch.run(&["a.txt", "a.txt"]).unwrap();
        assert_eq!(report.files.len(), 1);
    }

    #[test]
    fn copies_files_with_their_digests() {
        let scratch = Scratch::new("copy");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");
        let report = scratch.run(&["sub/b.txt", "a.txt"]).unwrap();

        assert_eq!(report.aipid, AIPID);
        assert_eq!(report.archive_path, scratch.aip());
        assert_eq!(report.manifest, scratch.aip().join(MANIFEST_NAME));
        assert_eq!(
            report.files,
            vec![
                ArchivedFile {
                    name: "sub/b.txt".into(),
                    size: 6,
                    sha256: WORLD_SHA256.into(),
                    skipped: false,
                    verified: true,
                },
                ArchivedFile {
                    name: "a.txt".into(),
                    size: 6,
                    sha256: HELLO_SHA256.into(),
                    skipped: false,
                    verified: true,
                },
            ]
        );
        assert_eq!(fs::read(scratch.aip().join("a.txt")).unwrap(), b"hello\n");
        assert_eq!(
            fs::read(scratch.aip().join("sub/b.txt")).unwrap(),
            b"world\n"
        );
        assert!(scratch.temp_files().is_empty());
    }

    #[test]
    fn manifest_covers_the_job_exactly() {
        let scratch = Scratch::new("manifest");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");
        scratch.put("not-requested.txt", b"ignored\n");
        let report = scratch.run(&["sub/b.txt", "a.txt"]).unwrap();
        assert_eq!(
            fs::read_to_string(&report.manifest).unwrap(),
            format!("{HELLO_SHA256}  a.txt\n{WORLD_SHA256}  sub/b.txt\n")
        );
        assert_eq!(mode(&report.manifest), 0o640);
    }

    #[test]
    fn rerun_skips_identical_files_and_writes_nothing() {
        let scratch = Scratch::new("rerun");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");
        let first = scratch.run(&["a.txt", "sub/b.txt"]).unwrap();

        // An old mtime would be replaced by any write, however fast.
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let archived = scratch.aip().join("a.txt");
        for path in [&archived, &first.manifest] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let inode = fs::metadata(&archived).unwrap().ino();

        let second = scratch.run(&["a.txt", "sub/b.txt"]).unwrap();
        assert!(second.files.iter().all(|f| f.skipped), "{second:?}");
        assert_eq!(second.files[0].sha256, HELLO_SHA256);
        assert_eq!(second.files[0].size, 6);
        let after = fs::metadata(&archived).unwrap();
        assert_eq!(after.modified().unwrap(), long_ago);
        assert_eq!(after.ino(), inode);
        assert_eq!(
            fs::metadata(&second.manifest).unwrap().modified().unwrap(),
            long_ago
        );
        assert!(scratch.temp_files().is_empty());
    }

    #[test]
    fn changed_source_overwrites_the_archived_copy() {
        let scratch = Scratch::new("overwrite");
        scratch.put("a.txt", b"hello\n");
        scratch.put("b.txt", b"hello\n");
        scratch.run(&["a.txt", "b.txt"]).unwrap();

        // Same size and a different size: both must be noticed.
        scratch.put("a.txt", b"world\n");
        scratch.put("b.txt", b"hello, archive\n");
        let report = scratch.run(&["a.txt", "b.txt"]).unwrap();
        assert!(!report.files[0].skipped);
        assert_eq!(report.files[0].sha256, WORLD_SHA256);
        assert!(!report.files[1].skipped);
        assert_eq!(report.files[1].size, 15);
        assert_eq!(fs::read(scratch.aip().join("a.txt")).unwrap(), b"world\n");
        assert_eq!(
            fs::read(scratch.aip().join("b.txt")).unwrap(),
            b"hello, archive\n"
        );
        let manifest = fs::read_to_string(&report.manifest).unwrap();
        assert!(
            manifest.starts_with(&format!("{WORLD_SHA256}  a.txt\n")),
            "{manifest}"
        );
        assert!(scratch.temp_files().is_empty());
    }

    #[test]
    fn names_leaving_the_source_dir_are_refused() {
        let scratch = Scratch::new("traversal");
        scratch.put("a.txt", b"hello\n");
        for name in ["../x", "/etc/passwd", "a/../../x", "a\0b", "a\nb"] {
            let message = invalid_data_message(scratch.run(&["a.txt", name]));
            assert!(message.contains(&format!("{name:?}")), "{message}");
        }
        // Names are checked before anything is written.
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn symlinks_leading_out_of_the_source_dir_are_refused() {
        for resolution in [Resolution::Kernel, Resolution::Walk] {
            symlinks_leading_out_are_refused_with(resolution);
        }
    }

    fn symlinks_leading_out_are_refused_with(resolution: Resolution) {
        let mut scratch = Scratch::new("symlink-out");
        scratch.resolution = resolution;
        fs::write(scratch.root.join("outside.txt"), b"secret\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", scratch.source().join("passwd")).unwrap();
        std::os::unix::fs::symlink("../outside.txt", scratch.source().join("outside")).unwrap();
        for name in ["passwd", "outside"] {
            let message = invalid_data_message(scratch.run(&[name]));
            assert!(message.contains("outside"), "{message}");
            assert!(message.contains(name), "{message}");
        }
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn symlinks_inside_the_source_dir_are_followed() {
        for resolution in [Resolution::Kernel, Resolution::Walk] {
            symlinks_inside_are_followed_with(resolution);
        }
    }

    fn symlinks_inside_are_followed_with(resolution: Resolution) {
        let mut scratch = Scratch::new("symlink-in");
        scratch.resolution = resolution;
        scratch.put("real/a.txt", b"hello\n");
        std::os::unix::fs::symlink("real/a.txt", scratch.source().join("link.txt")).unwrap();
        std::os::unix::fs::symlink(scratch.source().join("real"), scratch.source().join("abs"))
            .unwrap();
        let report = scratch.run(&["link.txt", "abs/a.txt"]).unwrap();
        assert_eq!(report.files[1].sha256, HELLO_SHA256);
        assert_eq!(report.files[0].sha256, HELLO_SHA256);
        let copy = scratch.aip().join("link.txt");
        assert!(fs::symlink_metadata(&copy).unwrap().is_file());
    }

    #[test]
    fn missing_source_file_is_invalid_data() {
        let scratch = Scratch::new("missing");
        scratch.put("a.txt", b"hello\n");
        let message = invalid_data_message(scratch.run(&["a.txt", "nope.txt"]));
        assert!(message.contains("\"nope.txt\" not found"), "{message}");
        let message = invalid_data_message(scratch.run(&["a.txt/below"]));
        assert!(message.contains("a.txt/below"), "{message}");
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn directory_named_as_a_file_is_invalid_data() {
        let scratch = Scratch::new("dir-as-file");
        scratch.put("sub/a.txt", b"hello\n");
        let message = invalid_data_message(scratch.run(&["sub"]));
        assert!(message.contains("directory"), "{message}");
    }

    #[test]
    fn whole_directory_mode_archives_nested_files() {
        let scratch = Scratch::new("whole");
        scratch.put(&format!("{AIPID}/a.txt"), b"hello\n");
        scratch.put(&format!("{AIPID}/sub/b.txt"), b"world\n");
        scratch.put(&format!("{AIPID}/sub/deeper/.c"), b"");
        scratch.put("other-aip/x.txt", b"not this one\n");
        let report = scratch.run(&[]).unwrap();
        let names: Vec<&str> = report.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "sub/b.txt", "sub/deeper/.c"]);
        assert_eq!(
            fs::read_to_string(&report.manifest).unwrap(),
            format!(
                "{HELLO_SHA256}  a.txt\n{WORLD_SHA256}  sub/b.txt\n{EMPTY_SHA256}  sub/deeper/.c\n"
            )
        );
        assert_eq!(
            fs::read(scratch.aip().join("sub/b.txt")).unwrap(),
            b"world\n"
        );
        assert!(!scratch.archive().join("other-aip").exists());
    }

    #[test]
    fn whole_directory_mode_refuses_missing_or_empty_directories() {
        let scratch = Scratch::new("whole-missing");
        let message = invalid_data_message(scratch.run(&[]));
        assert!(message.contains("not found"), "{message}");
        fs::create_dir_all(scratch.source().join(AIPID).join("empty")).unwrap();
        let message = invalid_data_message(scratch.run(&[]));
        assert!(message.contains("no files"), "{message}");
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn whole_directory_mode_refuses_what_it_cannot_copy() {
        let scratch = Scratch::new("whole-special");
        scratch.put(&format!("{AIPID}/a.txt"), b"hello\n");
        let aip_source = scratch.source().join(AIPID);

        let socket = std::os::unix::net::UnixListener::bind(aip_source.join("sock")).unwrap();
        let message = invalid_data_message(scratch.run(&[]));
        assert!(message.contains("socket"), "{message}");
        drop(socket);
        fs::remove_file(aip_source.join("sock")).unwrap();

        std::os::unix::fs::symlink("/etc/passwd", aip_source.join("passwd")).unwrap();
        let message = invalid_data_message(scratch.run(&[]));
        assert!(message.contains("outside"), "{message}");
        fs::remove_file(aip_source.join("passwd")).unwrap();

        fs::write(aip_source.join(MANIFEST_NAME), b"").unwrap();
        let message = invalid_data_message(scratch.run(&[]));
        assert!(message.contains("reserved"), "{message}");
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn archived_files_and_directories_get_fixed_modes() {
        let scratch = Scratch::new("modes");
        scratch.put("sub/deeper/a.txt", b"hello\n");
        fs::set_permissions(
            scratch.source().join("sub/deeper/a.txt"),
            Permissions::from_mode(0o777),
        )
        .unwrap();
        scratch.run(&["sub/deeper/a.txt"]).unwrap();
        assert_eq!(mode(&scratch.aip()), 0o750);
        assert_eq!(mode(&scratch.aip().join("sub")), 0o750);
        assert_eq!(mode(&scratch.aip().join("sub/deeper")), 0o750);
        assert_eq!(mode(&scratch.aip().join("sub/deeper/a.txt")), 0o640);
    }

    #[test]
    fn files_where_directories_must_be_are_permanent_and_named() {
        let scratch = Scratch::new("file-in-the-way");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");

        fs::write(scratch.aip(), b"in the way").unwrap();
        let message = invalid_data_message(scratch.run(&["a.txt"]));
        assert!(
            message.contains("aip-0001\" is a regular file where a directory must be"),
            "{message}"
        );
        fs::remove_file(scratch.aip()).unwrap();

        fs::create_dir_all(scratch.aip()).unwrap();
        fs::write(scratch.aip().join("sub"), b"in the way").unwrap();
        let message = invalid_data_message(scratch.run(&["a.txt", "sub/b.txt"]));
        assert!(message.contains("sub\" is a regular file"), "{message}");
        fs::remove_file(scratch.aip().join("sub")).unwrap();

        // A directory where a file must go.
        fs::create_dir_all(scratch.aip().join("a.txt/inner")).unwrap();
        let message = invalid_data_message(scratch.run(&["sub/b.txt", "a.txt"]));
        assert!(
            message.contains("a.txt is a directory where an archived file must be"),
            "{message}"
        );
        assert!(
            scratch.temp_files().is_empty(),
            "{:?}",
            scratch.temp_files()
        );
        assert!(!scratch.aip().join(MANIFEST_NAME).exists());
    }

    #[test]
    fn symlinks_where_archive_directories_must_be_are_refused() {
        for resolution in [Resolution::Kernel, Resolution::Walk] {
            let mut scratch = Scratch::new("archive-symlink");
            scratch.resolution = resolution;
            scratch.put("a.txt", b"hello\n");
            scratch.put("sub/b.txt", b"world\n");
            let elsewhere = scratch.root.join("elsewhere");
            fs::create_dir_all(elsewhere.join("sub")).unwrap();
            std::os::unix::fs::symlink(&elsewhere, scratch.aip()).unwrap();
            let message = invalid_data_message(scratch.run(&["a.txt"]));
            assert!(
                message.contains("aip-0001\" is a symbolic link"),
                "{message}"
            );
            fs::remove_file(scratch.aip()).unwrap();

            fs::create_dir_all(scratch.aip()).unwrap();
            std::os::unix::fs::symlink(elsewhere.join("sub"), scratch.aip().join("sub")).unwrap();
            let message = invalid_data_message(scratch.run(&["a.txt", "sub/b.txt"]));
            assert!(message.contains("sub\" is a symbolic link"), "{message}");
            assert_eq!(fs::read_dir(elsewhere.join("sub")).unwrap().count(), 0);
            assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 1);
            assert!(scratch.temp_files().is_empty());
        }
    }

    #[test]
    fn a_copy_that_does_not_read_back_as_written_is_not_moved_into_place() {
        let scratch = Scratch::new("corrupt");
        scratch.put("a.txt", b"hello\n");
        scratch.put("b.txt", b"world\n");
        // An older copy of a.txt is in place: it must survive.
        fs::create_dir_all(scratch.aip()).unwrap();
        fs::write(scratch.aip().join("a.txt"), b"older\n").unwrap();
        let filenames = vec!["a.txt".to_string(), "b.txt".to_string()];
        let (source, archive_dir) = (scratch.source(), scratch.archive());
        let job = |verify| ArchiveJob {
            aipid: AIPID,
            filenames: &filenames,
            source_dir: &source,
            archive_dir: &archive_dir,
            options: ArchiveOptions {
                verify,
                hooks: TestHooks {
                    corrupt_copies: true,
                    ..TestHooks::default()
                },
                ..ArchiveOptions::default()
            },
        };
        match archive(&job(true)) {
            Err(error @ Error::Io { .. }) => {
                assert_eq!(error.exit(), crate::exit::Exit::TempFail, "{error}");
                assert!(
                    error.to_string().contains("verify the archived copy"),
                    "{error}"
                );
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert_eq!(fs::read(scratch.aip().join("a.txt")).unwrap(), b"older\n");
        assert!(!scratch.aip().join("b.txt").exists());
        assert!(!scratch.aip().join(MANIFEST_NAME).exists());
        assert!(
            scratch.temp_files().is_empty(),
            "{:?}",
            scratch.temp_files()
        );

        // Without verification nothing notices: the reason verify is on.
        let report = archive(&job(false)).unwrap();
        assert!(report.files.iter().all(|f| !f.verified));
        assert_ne!(fs::read(scratch.aip().join("b.txt")).unwrap(), b"world\n");
    }

    #[test]
    fn many_copies_are_read_back_in_parallel_and_a_bad_one_caught() {
        let scratch = Scratch::new("corrupt-many");
        let names: Vec<String> = (0..100).map(|i| format!("f{i:03}")).collect();
        for name in &names {
            scratch.put(name, name.as_bytes());
        }
        let (source, archive_dir) = (scratch.source(), scratch.archive());
        let job = |corrupt_copies| ArchiveJob {
            aipid: AIPID,
            filenames: &names,
            source_dir: &source,
            archive_dir: &archive_dir,
            options: ArchiveOptions {
                hooks: TestHooks {
                    corrupt_copies,
                    ..TestHooks::default()
                },
                ..ArchiveOptions::default()
            },
        };
        let error = archive(&job(true)).unwrap_err();
        assert!(
            error.to_string().contains("verify the archived copy"),
            "{error}"
        );
        assert_eq!(fs::read_dir(scratch.aip()).unwrap().count(), 0);
        let report = archive(&job(false)).unwrap();
        assert!(report.files.iter().all(|f| f.verified));
        assert_eq!(fs::read(scratch.aip().join("f042")).unwrap(), b"f042");
    }

    #[test]
    fn the_report_sums_up_the_job() {
        let scratch = Scratch::new("summary");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world, again\n");
        let report = scratch.run(&["a.txt", "sub/b.txt"]).unwrap();
        assert_eq!(report.file_count, 2);
        assert_eq!(report.total_bytes, 6 + 13);
        let manifest = fs::read(&report.manifest).unwrap();
        assert_eq!(report.manifest_sha256, crate::digest::sha256_hex(&manifest));
        assert!(report.files.iter().all(|f| f.verified && !f.skipped));
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let scratch = Scratch::new("fifo");
        let fifo = scratch.source().join("pipe");
        crate::files::make_fifo(&fifo);
        std::os::unix::fs::symlink("/dev/null", scratch.source().join("null")).unwrap();
        let message = invalid_data_message(scratch.run(&["pipe"]));
        assert!(message.contains("is a FIFO"), "{message}");
        // /dev/null is outside the source directory: refused before its kind matters.
        let message = invalid_data_message(scratch.run(&["null"]));
        assert!(message.contains("outside"), "{message}");
        assert_eq!(fs::read_dir(scratch.archive()).unwrap().count(), 0);
    }

    #[test]
    fn missing_archive_dir_is_an_io_error_and_not_created() {
        let scratch = Scratch::new("no-archive-dir");
        scratch.put("a.txt", b"hello\n");
        fs::remove_dir(scratch.archive()).unwrap();
        assert!(matches!(scratch.run(&["a.txt"]), Err(Error::Io { .. })));
        assert!(!scratch.archive().exists());
    }

    #[test]
    fn large_files_are_streamed_and_hashed() {
        let scratch = Scratch::new("large");
        // Not a multiple of the copy buffer, and not one repeated byte.
        let contents: Vec<u8> = (0..5 * 1024 * 1024 + 12_345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        scratch.put("big.bin", &contents);
        let report = scratch.run(&["big.bin"]).unwrap();
        assert_eq!(report.files[0].size, contents.len() as u64);
        assert_eq!(report.files[0].sha256, crate::digest::sha256_hex(&contents));
        assert!(fs::read(scratch.aip().join("big.bin")).unwrap() == contents);
    }

    #[test]
    fn concurrent_deliveries_of_one_request_agree() {
        let scratch = Scratch::new("concurrent");
        scratch.put("a.txt", b"hello\n");
        scratch.put("sub/b.txt", b"world\n");
        let reports: Vec<ArchiveReport> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| scratch.run(&["a.txt", "sub/b.txt"]).unwrap()))
                .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
        for report in &reports {
            assert_eq!(report.files[0].sha256, HELLO_SHA256);
            assert_eq!(report.files[1].sha256, WORLD_SHA256);
        }
        assert_eq!(
            fs::read_to_string(scratch.aip().join(MANIFEST_NAME)).unwrap(),
            format!("{HELLO_SHA256}  a.txt\n{WORLD_SHA256}  sub/b.txt\n")
        );
        assert!(scratch.temp_files().is_empty());
    }
}
