//! Copying the files of an archive request from the source tree into the
//! archive tree.
//!
//! `process_message` calls [`archive`] for an `archive` request. SQS delivers
//! a message at least once, so the same request may run twice, even at the
//! same time on two hosts that share the archive file system. Every step is
//! therefore idempotent, and every write is atomic: a file is written under a
//! unique temporary name in its final directory, synced, renamed over the
//! target, and the directory is synced so that the rename survives a crash. A
//! reader of the archive sees the old file or the new one, never a part.
//!
//! The checks on a request (the aipid, the file names) and the manifest text
//! are pure functions; the file system is touched only by [`archive`] and the
//! helpers below it. This module knows nothing of SQS or of messages.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The name of the checksum file written into each archived AIP directory,
/// in the format `sha256sum --check` reads.
pub const MANIFEST_NAME: &str = "manifest-sha256.txt";

const MAX_AIPID_LEN: usize = 128;
const MAX_NAME_LEN: usize = 1024;
const DIR_MODE: u32 = 0o750;
const FILE_MODE: u32 = 0o640;
const COPY_BUFFER_LEN: usize = 256 * 1024;
/// The longest part of a target's name kept in its temporary name, so that
/// `.{name}.tmp.{pid}.{counter}` stays within NAME_MAX (255 bytes).
const TEMP_NAME_STEM_MAX: usize = 200;
/// Temporary names are created with O_EXCL; a name is taken only when another
/// host with the same pid, or a crashed run, left one behind.
const TEMP_NAME_ATTEMPTS: u32 = 64;
/// Longest value quoted in an error message; a request can carry 256 KiB.
const QUOTED_VALUE_MAX: usize = 200;

/// Makes temporary names unique among the threads of this process.
static TEMP_NAME_COUNTER: AtomicU64 = AtomicU64::new(0);

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
}

/// What [`archive`] did, for the completion message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveReport {
    pub aipid: String,
    /// `archive_dir/<aipid>`, built from `archive_dir` as given.
    pub archive_path: PathBuf,
    /// The files of the job, in the order of the request (sorted by name in
    /// whole-directory mode).
    pub files: Vec<ArchivedFile>,
    /// The manifest covering `files`.
    pub manifest: PathBuf,
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
}

/// The size and SHA-256 of a stream of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Copies the files of `job` into `archive_dir/<aipid>/` and writes the
/// manifest there.
///
/// Bad requests (an unsafe aipid or name, a missing or non-regular source
/// file, a symlink leading out of the source tree) are refused with
/// [`Error::InvalidData`] before anything is written. Failures while reading
/// or writing are [`Error::Io`], and leave no temporary file behind.
pub fn archive(job: &ArchiveJob) -> Result<ArchiveReport, Error> {
    validate_aipid(job.aipid)?;
    let names = unique_names(job.filenames)?;
    let source_root = canonical_source_dir(job.source_dir)?;
    let sources = if names.is_empty() {
        whole_directory_sources(&source_root, job)?
    } else {
        names
            .iter()
            .map(|name| {
                let path = resolve_source(&source_root, job.source_dir, name)?;
                Ok(SourceFile {
                    name: (*name).to_owned(),
                    path,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?
    };

    require_archive_dir(job.archive_dir)?;
    let archive_path = job.archive_dir.join(job.aipid);
    let mut directories = DirectoryMaker::default();
    directories.create(job.archive_dir, &archive_path)?;

    let mut files = Vec::with_capacity(sources.len());
    for source in &sources {
        let target = archive_path.join(&source.name);
        directories.create_parents(&archive_path, &source.name)?;
        files.push(archive_file(source, &target)?);
    }

    let manifest = archive_path.join(MANIFEST_NAME);
    write_manifest(&manifest, &manifest_text(&files))?;
    Ok(ArchiveReport {
        aipid: job.aipid.to_owned(),
        archive_path,
        files,
        manifest,
    })
}

/// Checks that `aipid` is safe as a directory name: 1 to 128 characters of
/// `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn validate_aipid(aipid: &str) -> Result<(), Error> {
    let invalid = |why: String| {
        Err(Error::InvalidData(format!(
            "aipid {} is not valid: {why}",
            quoted(aipid)
        )))
    };
    if aipid.is_empty() {
        return invalid("it is empty".into());
    }
    if aipid.len() > MAX_AIPID_LEN {
        return invalid(format!("it is longer than {MAX_AIPID_LEN} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some(c) = aipid.chars().find(|&c| !allowed(c)) {
        return invalid(format!(
            "the character {c:?} is not allowed (only A-Z, a-z, 0-9, '.', '_' and '-' are)"
        ));
    }
    if aipid.starts_with(['.', '-']) {
        return invalid("it must not start with '.' or '-'".into());
    }
    Ok(())
}

/// Checks that `name` is a plain relative path that cannot leave the
/// directory it is joined to: not empty, at most 1024 bytes, no control
/// characters, not absolute, and no empty, `.` or `..` component. The
/// manifest's own name is reserved.
pub fn validate_relative_name(name: &str) -> Result<(), Error> {
    let invalid = |why: String| {
        Err(Error::InvalidData(format!(
            "file name {} is not valid: {why}",
            quoted(name)
        )))
    };
    if name.is_empty() {
        return invalid("it is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return invalid(format!("it is longer than {MAX_NAME_LEN} bytes"));
    }
    // NUL would truncate the path in the kernel; a newline would forge a
    // manifest line.
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return invalid(format!("it contains the control character {c:?}"));
    }
    if name.starts_with('/') {
        return invalid("it is absolute; names are relative to the source directory".into());
    }
    for component in name.split('/') {
        match component {
            "" => return invalid("it has an empty component (a doubled or trailing '/')".into()),
            "." => return invalid("it has a '.' component".into()),
            ".." => return invalid("it has a '..' component".into()),
            _ => {}
        }
    }
    if name == MANIFEST_NAME {
        return invalid("the name is reserved for the manifest".into());
    }
    Ok(())
}

/// The manifest for `files`: one `<sha256>  <name>` line per file, sorted by
/// name, as `sha256sum` writes them.
pub fn manifest_text(files: &[ArchivedFile]) -> String {
    let mut sorted: Vec<&ArchivedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = String::with_capacity(files.len() * 100);
    for file in sorted {
        text.push_str(&file.sha256);
        text.push_str("  ");
        text.push_str(&file.name);
        text.push('\n');
    }
    text
}

/// The size and SHA-256 of everything `reader` yields.
pub fn sha256_digest(reader: impl Read) -> io::Result<ContentDigest> {
    copy_hashing(reader, io::sink()).map_err(|e| match e {
        CopyError::Read(e) | CopyError::Write(e) => e,
    })
}

/// Which side of a copy failed, so the error can name the right path.
#[derive(Debug)]
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `reader` to `writer`, hashing on the way, so a file is read once.
fn copy_hashing(mut reader: impl Read, mut writer: impl Write) -> Result<ContentDigest, CopyError> {
    let mut buffer = vec![0u8; COPY_BUFFER_LEN];
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buffer[..count]);
        writer
            .write_all(&buffer[..count])
            .map_err(CopyError::Write)?;
        size += count as u64;
    }
    Ok(ContentDigest {
        size,
        sha256: crate::random::hex(&hasher.finalize()),
    })
}

fn digest_of_bytes(bytes: &[u8]) -> ContentDigest {
    ContentDigest {
        size: bytes.len() as u64,
        sha256: crate::random::hex(&Sha256::digest(bytes)),
    }
}

/// A value as it appears in an error message: [`crate::text::quoted`].
fn quoted(value: &str) -> String {
    crate::text::quoted(value, QUOTED_VALUE_MAX)
}

use crate::text::floor_char_boundary;

/// The hidden temporary name a target is written under before the rename.
fn temp_file_name(target_name: &str, pid: u32, counter: u64) -> String {
    let stem = &target_name[..floor_char_boundary(target_name, TEMP_NAME_STEM_MAX)];
    format!(".{stem}.tmp.{pid}.{counter}")
}

/// The names of a request, checked, with repeats dropped: archiving a file
/// twice in one job is the same as archiving it once.
fn unique_names(filenames: &[String]) -> Result<Vec<&str>, Error> {
    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(filenames.len());
    for name in filenames {
        validate_relative_name(name)?;
        if seen.insert(name.as_str()) {
            names.push(name.as_str());
        }
    }
    Ok(names)
}

/// A file to archive: its name in the archive, and the symlink-free path it
/// is read from.
#[derive(Debug)]
struct SourceFile {
    name: String,
    path: PathBuf,
}

fn canonical_source_dir(source_dir: &Path) -> Result<PathBuf, Error> {
    let canonical = fs::canonicalize(source_dir)
        .map_err(|e| Error::io("open source directory", source_dir, e))?;
    if !canonical.is_dir() {
        return Err(Error::io(
            "open source directory",
            source_dir,
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    Ok(canonical)
}

/// Finds `name` under `root` (canonical) and returns its canonical path,
/// refusing anything that is missing, leads out of `root` through a symlink,
/// or is not a regular file. `shown_root` is the directory as the caller
/// named it, for messages.
fn resolve_source(root: &Path, shown_root: &Path, name: &str) -> Result<PathBuf, Error> {
    let joined = root.join(name);
    let canonical = match fs::canonicalize(&joined) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::InvalidData(format!(
                "source file {} not found under {}",
                quoted(name),
                shown_root.display()
            )));
        }
        // A file used as a directory, a symlink loop, an over-long
        // component: the request names something that cannot exist.
        Err(e) if is_unresolvable(&e) => {
            return Err(Error::InvalidData(format!(
                "source file {} cannot be resolved under {}: {e}",
                quoted(name),
                shown_root.display()
            )));
        }
        Err(e) => return Err(Error::io("resolve source file", joined, e)),
    };
    if !canonical.starts_with(root) {
        return Err(Error::InvalidData(format!(
            "source file {} leads to {}, outside {}",
            quoted(name),
            canonical.display(),
            shown_root.display()
        )));
    }
    let metadata =
        fs::metadata(&canonical).map_err(|e| Error::io("inspect source file", &canonical, e))?;
    if !metadata.is_file() {
        return Err(Error::InvalidData(format!(
            "source file {} under {} is a {}; only regular files can be archived",
            quoted(name),
            shown_root.display(),
            file_kind(metadata.file_type())
        )));
    }
    Ok(canonical)
}

fn is_unresolvable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename
    ) || error.raw_os_error() == Some(libc::ELOOP)
}

fn file_kind(file_type: fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// Every regular file below `source_dir/<aipid>/`, sorted by name. Symlinks
/// to regular files inside that directory are followed; anything else that
/// is not a directory or a regular file is refused rather than skipped, so a
/// job never silently archives less than the directory holds.
fn whole_directory_sources(source_root: &Path, job: &ArchiveJob) -> Result<Vec<SourceFile>, Error> {
    let shown_dir = job.source_dir.join(job.aipid);
    let aip_dir = match fs::canonicalize(source_root.join(job.aipid)) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_unresolvable(&e) => {
            return Err(Error::InvalidData(format!(
                "source directory {} not found",
                shown_dir.display()
            )));
        }
        Err(e) => return Err(Error::io("resolve source directory", shown_dir, e)),
    };
    if !aip_dir.starts_with(source_root) {
        return Err(Error::InvalidData(format!(
            "source directory {} leads to {}, outside {}",
            shown_dir.display(),
            aip_dir.display(),
            job.source_dir.display()
        )));
    }
    if !aip_dir.is_dir() {
        return Err(Error::InvalidData(format!(
            "source {} is not a directory",
            shown_dir.display()
        )));
    }

    let mut files = Vec::new();
    // An explicit stack rather than recursion: the depth of the tree is the
    // sender's choice.
    let mut pending_dirs = vec![(aip_dir.clone(), String::new())];
    while let Some((dir, prefix)) = pending_dirs.pop() {
        let entries =
            fs::read_dir(&dir).map_err(|e| Error::io("read source directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read source directory", &dir, e))?;
            let file_name = entry.file_name();
            let Some(component) = file_name.to_str() else {
                return Err(Error::InvalidData(format!(
                    "source directory {} holds {}, whose name is not UTF-8",
                    dir.display(),
                    quoted(&file_name.to_string_lossy())
                )));
            };
            let name = if prefix.is_empty() {
                component.to_owned()
            } else {
                format!("{prefix}/{component}")
            };
            validate_relative_name(&name)?;
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io("inspect source file", entry.path(), e))?;
            if file_type.is_dir() {
                pending_dirs.push((entry.path(), name));
            } else if file_type.is_file() {
                files.push(SourceFile {
                    name,
                    path: entry.path(),
                });
            } else if file_type.is_symlink() {
                let path = resolve_source(&aip_dir, &shown_dir, &name)?;
                files.push(SourceFile { name, path });
            } else {
                return Err(Error::InvalidData(format!(
                    "source file {} under {} is a {}; only regular files can be archived",
                    quoted(&name),
                    shown_dir.display(),
                    file_kind(file_type)
                )));
            }
        }
    }
    if files.is_empty() {
        // Reporting success for nothing would let the sender believe the AIP
        // is safe; more likely its upload has not happened.
        return Err(Error::InvalidData(format!(
            "source directory {} holds no files to archive",
            shown_dir.display()
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn require_archive_dir(archive_dir: &Path) -> Result<(), Error> {
    let metadata = fs::metadata(archive_dir)
        .map_err(|e| Error::io("open archive directory", archive_dir, e))?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(Error::io(
            "open archive directory",
            archive_dir,
            io::Error::from(io::ErrorKind::NotADirectory),
        ))
    }
}

/// Creates archive directories, remembering the ones known to exist so each
/// is created (or found) once per job.
#[derive(Default)]
struct DirectoryMaker {
    known: HashSet<PathBuf>,
}

impl DirectoryMaker {
    /// Creates the directories between `aip_dir` (which exists) and the file
    /// `name` below it.
    fn create_parents(&mut self, aip_dir: &Path, name: &str) -> Result<(), Error> {
        let mut dir = aip_dir.to_path_buf();
        let mut components = name.split('/').peekable();
        while let Some(component) = components.next() {
            if components.peek().is_none() {
                break; // the file itself
            }
            let parent = dir.clone();
            dir.push(component);
            self.create(&parent, &dir)?;
        }
        Ok(())
    }

    /// Creates `dir` in `parent` with mode 0o750, and syncs `parent` so the
    /// new entry survives a crash. A directory already there is fine: another
    /// delivery of the same request, maybe on another host, made it.
    fn create(&mut self, parent: &Path, dir: &Path) -> Result<(), Error> {
        if self.known.contains(dir) {
            return Ok(());
        }
        match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {
                // The umask may have narrowed the mode given to mkdir.
                fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
                    .map_err(|e| Error::io("set permissions on", dir, e))?;
                sync_dir(parent)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let is_dir = fs::metadata(dir)
                    .map_err(|e| Error::io("create directory", dir, e))?
                    .is_dir();
                if !is_dir {
                    return Err(Error::io(
                        "create directory",
                        dir,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "something that is not a directory is in the way",
                        ),
                    ));
                }
            }
            Err(e) => return Err(Error::io("create directory", dir, e)),
        }
        self.known.insert(dir.to_path_buf());
        Ok(())
    }
}

/// Opens a source file for reading without following a symlink swapped in
/// since it was resolved, and without blocking on a FIFO swapped in likewise.
fn open_source(source: &SourceFile) -> Result<File, Error> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&source.path)
        .map_err(|e| Error::io("open source file", &source.path, e))?;
    let metadata = file
        .metadata()
        .map_err(|e| Error::io("inspect source file", &source.path, e))?;
    if !metadata.is_file() {
        return Err(Error::InvalidData(format!(
            "source file {} is a {}; only regular files can be archived",
            quoted(&source.name),
            file_kind(metadata.file_type())
        )));
    }
    Ok(file)
}

/// Copies one file to `target`, or leaves `target` alone when it already
/// holds the same bytes.
fn archive_file(source: &SourceFile, target: &Path) -> Result<ArchivedFile, Error> {
    let read_error = |e| Error::io("read source file", &source.path, e);
    let mut input = open_source(source)?;
    let source_size = input.metadata().map_err(read_error)?.len();
    let existing = existing_digest(target)?;

    if let Some(old) = &existing
        && old.size == source_size
    {
        let current = sha256_digest(&mut input).map_err(read_error)?;
        if current == *old {
            log::debug!("{} is already archived, unchanged", target.display());
            return Ok(ArchivedFile {
                name: source.name.clone(),
                size: current.size,
                sha256: current.sha256,
                skipped: true,
            });
        }
        input.rewind().map_err(read_error)?;
    }

    let mut pending = PendingFile::create(target)?;
    let copied = copy_hashing(&mut input, &mut pending.file).map_err(|e| match e {
        CopyError::Read(e) => read_error(e),
        CopyError::Write(e) => Error::io("write", target, e),
    })?;
    pending.persist()?;

    match existing {
        Some(old) => log::warn!(
            "replaced {} (sha256 {}, {} bytes) with a different {} (sha256 {}, {} bytes); the newest request wins",
            target.display(),
            old.sha256,
            old.size,
            source.path.display(),
            copied.sha256,
            copied.size
        ),
        None => log::info!(
            "archived {} to {} (sha256 {}, {} bytes)",
            source.path.display(),
            target.display(),
            copied.sha256,
            copied.size
        ),
    }
    Ok(ArchivedFile {
        name: source.name.clone(),
        size: copied.size,
        sha256: copied.sha256,
        skipped: false,
    })
}

/// The digest of the regular file at `target`, or `None` when there is none.
/// Something else there (a symlink, a directory) is not an archived copy:
/// the rename replaces a symlink and fails on a directory.
fn existing_digest(target: &Path) -> Result<Option<ContentDigest>, Error> {
    match fs::symlink_metadata(target) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("inspect", target, e)),
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", target, e)),
    };
    sha256_digest(file)
        .map(Some)
        .map_err(|e| Error::io("read", target, e))
}

/// Writes the manifest atomically, unless it already says the same thing: a
/// redelivered request then writes nothing at all.
fn write_manifest(path: &Path, text: &str) -> Result<(), Error> {
    if existing_digest(path)? == Some(digest_of_bytes(text.as_bytes())) {
        return Ok(());
    }
    let mut pending = PendingFile::create(path)?;
    pending
        .file
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("write", path, e))?;
    pending.persist()
}

/// A file being written under a temporary name next to its target. Dropping
/// it before [`PendingFile::persist`] removes it, so no error (nor panic)
/// leaves a temporary file behind.
struct PendingFile {
    file: File,
    temp_path: PathBuf,
    target: PathBuf,
    persisted: bool,
}

impl PendingFile {
    fn create(target: &Path) -> Result<PendingFile, Error> {
        let (Some(dir), Some(target_name)) = (target.parent(), target.file_name()) else {
            return Err(Error::io(
                "create a temporary file for",
                target,
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        };
        let target_name = target_name.to_string_lossy();
        for _ in 0..TEMP_NAME_ATTEMPTS {
            let counter = TEMP_NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp_path = dir.join(temp_file_name(&target_name, std::process::id(), counter));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&temp_path);
            match opened {
                Ok(file) => {
                    return Ok(PendingFile {
                        file,
                        temp_path,
                        target: target.to_path_buf(),
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create a temporary file for", target, e)),
            }
        }
        Err(Error::io(
            "create a temporary file for",
            target,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "every temporary name tried was taken",
            ),
        ))
    }

    /// Makes the contents durable, then renames them over the target and
    /// makes the rename durable.
    fn persist(mut self) -> Result<(), Error> {
        // The umask may have narrowed the mode given at creation.
        self.file
            .set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(|e| Error::io("set permissions on", &self.target, e))?;
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync", &self.target, e))?;
        fs::rename(&self.temp_path, &self.target)
            .map_err(|e| Error::io("move into place", &self.target, e))?;
        self.persisted = true;
        match self.target.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: the error being returned matters more than this one.
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Syncs a directory so that entries created or renamed in it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let handle = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    match handle.sync_all() {
        Ok(()) => Ok(()),
        // Some file systems (certain FUSE and network ones) cannot sync a
        // directory and say EINVAL; their renames are as durable as they get.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        Err(e) => Err(Error::io("sync directory", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
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
            Scratch { root }
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
            })
        }

        /// Every path below the archive directory whose name marks it as a
        /// temporary file.
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

    fn check_aipid(aipid: &str, valid: bool) {
        let result = validate_aipid(aipid);
        assert_eq!(result.is_ok(), valid, "{aipid:?}: {result:?}");
    }

    fn check_name(name: &str, valid: bool) {
        let result = validate_relative_name(name);
        assert_eq!(result.is_ok(), valid, "{name:?}: {result:?}");
    }

    fn archived(name: &str, sha256: &str) -> ArchivedFile {
        ArchivedFile {
            name: name.into(),
            size: 6,
            sha256: sha256.into(),
            skipped: false,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn aipid_must_be_a_safe_identifier() {
        check_aipid("aip-0001", true);
        check_aipid("A.b_c-9", true);
        check_aipid("x", true);
        check_aipid(&"a".repeat(128), true);
        check_aipid("", false);
        check_aipid(&"a".repeat(129), false);
        check_aipid(".hidden", false);
        check_aipid("..", false);
        check_aipid("-rf", false);
        check_aipid("a/b", false);
        check_aipid("a b", false);
        check_aipid("a\0b", false);
        check_aipid("é", false);
        let message = validate_aipid("../etc").unwrap_err().to_string();
        assert!(message.contains("\"../etc\""), "{message}");
    }

    #[test]
    fn file_names_must_stay_below_their_directory() {
        check_name("a.txt", true);
        check_name("sub/dir/b.bin", true);
        check_name(".hidden", true);
        check_name("a..b", true);
        check_name("with space", true);
        check_name("sub/manifest-sha256.txt", true);
        check_name(&"n".repeat(1024), true);
        check_name("", false);
        check_name("/etc/passwd", false);
        check_name("../x", false);
        check_name("a/../../x", false);
        check_name("..", false);
        check_name("./a", false);
        check_name("a/./b", false);
        check_name("a//b", false);
        check_name("a/", false);
        check_name("a\0b", false);
        check_name("a\nb", false);
        check_name("a\u{7f}", false);
        check_name(&"n".repeat(1025), false);
        check_name(MANIFEST_NAME, false);
    }

    #[test]
    fn invalid_names_are_named_on_one_line() {
        let message = validate_relative_name("evil\nname")
            .unwrap_err()
            .to_string();
        assert!(message.contains(r#""evil\nname""#), "{message}");
        assert!(!message.contains('\n'));
        let long = format!("{}/x", "d".repeat(5000));
        let message = validate_relative_name(&long).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        assert!(message.contains("5002 bytes"), "{message}");
    }

    #[test]
    fn manifest_lines_are_sorted_in_sha256sum_format() {
        let files = [
            archived("sub/b.txt", WORLD_SHA256),
            archived("a.txt", HELLO_SHA256),
        ];
        assert_eq!(
            manifest_text(&files),
            format!("{HELLO_SHA256}  a.txt\n{WORLD_SHA256}  sub/b.txt\n")
        );
        assert_eq!(manifest_text(&[]), "");
    }

    #[test]
    fn digests_match_known_values() {
        let hello = sha256_digest(&b"hello\n"[..]).unwrap();
        assert_eq!(hello.sha256, HELLO_SHA256);
        assert_eq!(hello.size, 6);
        let empty = sha256_digest(io::empty()).unwrap();
        assert_eq!(empty.sha256, EMPTY_SHA256);
        assert_eq!(empty.size, 0);
        assert_eq!(digest_of_bytes(b"hello\n"), hello);
    }

    #[test]
    fn temp_names_are_hidden_and_short_enough() {
        assert_eq!(temp_file_name("a.txt", 42, 7), ".a.txt.tmp.42.7");
        let long = "é".repeat(127); // 254 bytes, a legal file name
        let temp = temp_file_name(&long, u32::MAX, u64::MAX);
        assert!(temp.len() <= 255, "{} bytes", temp.len());
        assert!(temp.starts_with(".éé"));
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
                },
                ArchivedFile {
                    name: "a.txt".into(),
                    size: 6,
                    sha256: HELLO_SHA256.into(),
                    skipped: false,
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
        let scratch = Scratch::new("symlink-out");
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
        let scratch = Scratch::new("symlink-in");
        scratch.put("real/a.txt", b"hello\n");
        std::os::unix::fs::symlink("real/a.txt", scratch.source().join("link.txt")).unwrap();
        let report = scratch.run(&["link.txt"]).unwrap();
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
    fn failures_leave_no_temporary_files() {
        let scratch = Scratch::new("failure");
        scratch.put("a.txt", b"hello\n");
        scratch.put("b.txt", b"world\n");

        // The AIP directory cannot be created.
        fs::write(scratch.aip(), b"in the way").unwrap();
        match scratch.run(&["a.txt"]) {
            Err(Error::Io { path, .. }) => assert_eq!(path, scratch.aip()),
            other => panic!("expected Io, got {other:?}"),
        }
        fs::remove_file(scratch.aip()).unwrap();

        // The rename fails after the copy was written: a directory holds
        // the second file's place.
        fs::create_dir_all(scratch.aip().join("b.txt/inner")).unwrap();
        match scratch.run(&["a.txt", "b.txt"]) {
            Err(Error::Io { path, .. }) => assert_eq!(path, scratch.aip().join("b.txt")),
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(
            scratch.temp_files().is_empty(),
            "{:?}",
            scratch.temp_files()
        );
        assert!(!scratch.aip().join(MANIFEST_NAME).exists());
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
        assert_eq!(
            report.files[0].sha256,
            crate::random::hex(&Sha256::digest(&contents))
        );
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
