//! The archive side: the AIP directory and everything written below it,
//! reached only through directory handles, never through a symlink.
//!
//! `archive_dir` is opened once (it is the operator's configured path and
//! may itself be a symlink); `<aipid>` and each subdirectory are created
//! with `mkdirat` and opened `O_NOFOLLOW | O_DIRECTORY` relative to their
//! parent's handle. A symlink or a file where one of our directories must be
//! is refused, naming it. The AIP's lock ([`super::private`]) is held from
//! the open to the drop. Files are written in the run's private staging
//! directory (where no requested name reaches), made durable together, read
//! back, and only then renamed over their final names; the directories are
//! synced last. Until the rename a reader sees the old file or nothing, and
//! a failure removes every staged file this job made.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, mkdirat, openat, renameat, statat};
use rustix::io::Errno;

use super::beneath::{file_kind_name, is_permanent_name_errno};
use super::copy::ContentDigest;
use super::copy::sha256_digest_sized;
use super::manifest::MANIFEST_NAME;
use super::private::{AipLock, Staging, lock_aip};
use crate::error::Error;
use crate::message::names::quoted;

const DIR_MODE: u32 = 0o750;
const FILE_MODE: u32 = 0o640;
/// Up to this many staged files are synced one by one (their descriptors
/// kept open); more are made durable with one `syncfs` of the archive file
/// system, which is far cheaper than a sync per file but also writes out
/// whatever else is pending on that file system.
const SYNC_EACH_MAX: usize = 32;
/// The largest manifest read (about 10 million files).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// A file written under a temporary name, waiting to be moved into place.
struct Staged {
    dir: usize,
    /// Its name in the staging directory.
    temp_name: String,
    final_name: String,
    /// `aip/<name>`, for messages.
    shown: PathBuf,
    digest: ContentDigest,
    /// Kept open to be synced, while few files are staged.
    file: Option<File>,
}

/// The AIP directory of one job, its subdirectories, and the files staged in them.
pub struct ArchiveTree {
    /// `archive_dir/<aipid>` as configured, for messages and the report.
    aip_path: PathBuf,
    /// `archive_dir`; kept to sync the new AIP entry.
    archive_dir: OwnedFd,
    /// Directory handles; index 0 is the AIP directory.
    dirs: Vec<OwnedFd>,
    /// Relative directory path ("" for the AIP directory) to its index.
    dir_index: HashMap<String, usize>,
    /// Directories that got a new entry (by index), to sync at the end;
    /// `None` stands for `archive_dir` itself.
    dirty: Vec<Option<usize>>,
    /// Directories this job created (by index): nothing is in them yet
    /// but what this job put there.
    created: Vec<bool>,
    staged: Vec<Staged>,
    /// How many of `staged` are in place.
    committed: usize,
    /// Dropped before the lock: nothing of this run is left once another
    /// run may start.
    staging: Staging,
    _lock: AipLock,
}

impl ArchiveTree {
    /// Opens `archive_dir` (which must exist), takes the AIP's lock (waiting
    /// up to `lock_wait`), makes the run's staging directory, and creates or
    /// opens `<aipid>`.
    pub fn open(
        archive_dir: &Path,
        aipid: &str,
        lock_wait: Duration,
    ) -> Result<ArchiveTree, Error> {
        // O_DIRECTORY: a FIFO or device standing there is refused at once
        // instead of blocking the open.
        let archive_dir_fd = rustix::fs::open(
            archive_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open archive directory", archive_dir, e.into()))?;
        let lock = lock_aip(&archive_dir_fd, archive_dir, aipid, lock_wait)?;
        let staging = Staging::create(&archive_dir_fd, archive_dir, aipid)?;
        let aip_path = archive_dir.join(aipid);
        let (aip, created) = ensure_dir(&archive_dir_fd, aipid, &aip_path)?;
        let mut tree = ArchiveTree {
            aip_path,
            archive_dir: archive_dir_fd,
            dirs: vec![aip],
            dir_index: HashMap::from([(String::new(), 0)]),
            dirty: Vec::new(),
            created: vec![created],
            staged: Vec::new(),
            committed: 0,
            staging,
            _lock: lock,
        };
        if created {
            tree.dirty.push(None);
        }
        Ok(tree)
    }

    pub fn aip_path(&self) -> &Path {
        &self.aip_path
    }

    /// The handle of the directory that holds `name`, creating the
    /// directories on the way, and the last component of `name`.
    fn parent_of<'n>(&mut self, name: &'n str) -> Result<(usize, &'n str), Error> {
        let (dir_name, file_name) = match name.rsplit_once('/') {
            Some((dir, file)) => (dir, file),
            None => ("", name),
        };
        if let Some(&index) = self.dir_index.get(dir_name) {
            return Ok((index, file_name));
        }
        let mut index = 0;
        let mut walked = String::new();
        for component in dir_name.split('/') {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(component);
            if let Some(&known) = self.dir_index.get(&walked) {
                index = known;
                continue;
            }
            let shown = self.aip_path.join(&walked);
            let (fd, created) = ensure_dir(&self.dirs[index], component, &shown)?;
            if created {
                self.dirty.push(Some(index));
            }
            self.dirs.push(fd);
            self.created.push(created);
            let new_index = self.dirs.len() - 1;
            self.dir_index.insert(walked.clone(), new_index);
            index = new_index;
        }
        Ok((index, file_name))
    }

    /// The digest of the regular file archived as `name`, or `None` when
    /// there is none (a symlink there is not an archived copy: the rename
    /// replaces the link itself). A directory there is refused.
    pub fn existing(&mut self, name: &str) -> Result<Option<ContentDigest>, Error> {
        let (dir, file_name) = self.parent_of(name)?;
        if self.created[dir] && name != MANIFEST_NAME {
            // Made by this job a moment ago: no earlier copy can be in it.
            return Ok(None);
        }
        let shown = self.aip_path.join(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match openat(&self.dirs[dir], file_name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
            Err(errno) if is_permanent_name_errno(errno) => {
                return Err(Error::InvalidData(format!("{}: {errno}", shown.display())));
            }
            Err(errno) => return Err(Error::io("open", shown, errno.into())),
        };
        let file = File::from(fd);
        let kind = file
            .metadata()
            .map_err(|e| Error::io("inspect", &shown, e))?;
        if kind.is_dir() {
            return Err(Error::InvalidData(format!(
                "{} is a directory where an archived file must be",
                shown.display()
            )));
        }
        if !kind.is_file() {
            return Ok(None);
        }
        sha256_digest_sized(file, kind.len())
            .map(Some)
            .map_err(|e| Error::io("read", shown, e))
    }

    /// The text of the AIP's manifest as it is now, `None` when there is
    /// none (or something other than a regular file is in its place).
    pub fn read_manifest(&mut self) -> Result<Option<String>, Error> {
        let shown = self.aip_path.join(MANIFEST_NAME);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match openat(&self.dirs[0], MANIFEST_NAME, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
            Err(errno) => return Err(Error::io("open", shown, errno.into())),
        };
        let file = File::from(fd);
        let stat = file
            .metadata()
            .map_err(|e| Error::io("inspect", &shown, e))?;
        if !stat.is_file() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(&file, MAX_MANIFEST_BYTES), &mut bytes)
            .map_err(|e| Error::io("read", &shown, e))?;
        // Not UTF-8: not ours; rebuilt from the files.
        Ok(Some(String::from_utf8(bytes).unwrap_or_default()))
    }

    /// Every regular file in the AIP directory, by its name relative to it,
    /// sorted; the manifest itself excepted. Walked through handles without
    /// following symlinks. Anything else (a symlink, a FIFO, a name the name
    /// rule refuses) is logged and left out: it is not part of the AIP.
    pub fn list_files(&self) -> Result<Vec<String>, Error> {
        let read_error =
            |name: &str, e: Errno| Error::io("read directory", self.aip_path.join(name), e.into());
        let first = openat(
            &self.dirs[0],
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| read_error("", e))?;
        let mut names = Vec::new();
        let mut pending = vec![(first, String::new())];
        while let Some((dir_fd, prefix)) = pending.pop() {
            let dir = rustix::fs::Dir::read_from(&dir_fd).map_err(|e| read_error(&prefix, e))?;
            for entry in dir {
                let entry = entry.map_err(|e| read_error(&prefix, e))?;
                let bytes = entry.file_name().to_bytes();
                if bytes == b"." || bytes == b".." {
                    continue;
                }
                let component = String::from_utf8_lossy(bytes);
                let name = if prefix.is_empty() {
                    component.to_string()
                } else {
                    format!("{prefix}/{component}")
                };
                if name == MANIFEST_NAME {
                    continue;
                }
                let mut kind = entry.file_type();
                if kind == FileType::Unknown {
                    let stat = statat(&dir_fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| read_error(&name, e))?;
                    kind = FileType::from_raw_mode(stat.st_mode);
                }
                let usable = std::str::from_utf8(bytes).is_ok()
                    && crate::message::names::validate_relative_name(&name).is_ok();
                match kind {
                    FileType::Directory if usable => {
                        let flags =
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                        let sub = openat(&dir_fd, entry.file_name(), flags, Mode::empty())
                            .map_err(|e| read_error(&name, e))?;
                        pending.push((sub, name));
                    }
                    FileType::RegularFile if usable => names.push(name),
                    other => log::warn!(
                        "{} ({}) is left out of the manifest: not a regular file or directory with a usable name",
                        quoted(&self.aip_path.join(&name).display().to_string()),
                        file_kind_name(other)
                    ),
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates a staged file for `name`; the caller writes it and hands it
    /// back with [`ArchiveTree::stage`].
    pub fn create_temp(&mut self, name: &str) -> Result<(File, PendingName), Error> {
        let (dir, file_name) = self.parent_of(name)?;
        let shown = self.aip_path.join(name);
        let temp_name = self.staging.next_name();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(
            self.staging.fd(),
            temp_name.as_str(),
            flags,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map_err(|e| Error::io("create a staged file for", &shown, e.into()))?;
        // The umask may have narrowed the mode given at creation.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))
            .map_err(|e| Error::io("set permissions on", &shown, e.into()))?;
        self.staged.push(Staged {
            dir,
            temp_name,
            final_name: file_name.to_owned(),
            shown,
            digest: ContentDigest {
                size: 0,
                sha256: String::new(),
            },
            file: None,
        });
        Ok((File::from(fd), PendingName(self.staged.len() - 1)))
    }

    /// Records what was written to a temporary file, and keeps the file
    /// to sync it while few are staged.
    pub fn stage(&mut self, pending: PendingName, digest: ContentDigest, file: File) {
        let staged = &mut self.staged[pending.0];
        staged.digest = digest;
        if self.staged.len() - self.committed <= SYNC_EACH_MAX {
            self.staged[pending.0].file = Some(file);
        } else {
            for staged in &mut self.staged[self.committed..] {
                staged.file = None;
            }
        }
    }

    /// A test hook: changes one byte of a staged file, as a failing disk might.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn corrupt(&self, pending: &PendingName) -> Result<(), Error> {
        let staged = &self.staged[pending.0];
        let fd = openat(
            self.staging.fd(),
            staged.temp_name.as_str(),
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", &staged.shown, e.into()))?;
        let mut byte = [0u8; 1];
        let read = rustix::io::pread(&fd, &mut byte, 0).unwrap_or(0);
        let flipped = if read == 1 { byte[0] ^ 0xff } else { b'!' };
        rustix::io::pwrite(&fd, &[flipped], 0)
            .map_err(|e| Error::io("write", &staged.shown, e.into()))?;
        Ok(())
    }

    /// Makes every staged file durable, reads each back and compares its
    /// SHA-256 with the one computed while copying (when `verify`), then
    /// moves them into place in order and syncs the directories.
    pub fn commit(&mut self, verify: bool) -> Result<(), Error> {
        if self.staged.len() - self.committed > SYNC_EACH_MAX {
            // One call makes all the data and the new entries durable.
            rustix::fs::syncfs(&self.dirs[0])
                .map_err(|e| Error::io("sync the file system of", &self.aip_path, e.into()))?;
        } else {
            for staged in &mut self.staged[self.committed..] {
                if let Some(file) = staged.file.take() {
                    file.sync_all()
                        .map_err(|e| Error::io("sync", &staged.shown, e))?;
                }
            }
        }
        if verify {
            verify_all(self.staging.fd(), &self.staged[self.committed..])?;
        }
        for staged in &mut self.staged[self.committed..] {
            renameat(
                self.staging.fd(),
                staged.temp_name.as_str(),
                &self.dirs[staged.dir],
                staged.final_name.as_str(),
            )
            .map_err(|errno| match errno {
                Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST => Error::InvalidData(format!(
                    "{} is a directory where an archived file must be",
                    staged.shown.display()
                )),
                errno if is_permanent_name_errno(errno) || errno == Errno::INVAL => {
                    Error::InvalidData(format!("{}: {errno}", staged.shown.display()))
                }
                other => Error::io("move into place", &staged.shown, other.into()),
            })?;
            if !self.dirty.contains(&Some(staged.dir)) {
                self.dirty.push(Some(staged.dir));
            }
        }
        for dirty in &self.dirty {
            let (fd, shown) = match dirty {
                Some(index) => (self.dirs[*index].as_fd(), self.aip_path.clone()),
                None => (self.archive_dir.as_fd(), self.aip_path.clone()),
            };
            sync_dir(fd, &shown)?;
        }
        self.dirty.clear();
        self.committed = self.staged.len();
        Ok(())
    }
}

/// Staged files read back at once when there are many: reads of small
/// files from the disk overlap.
const VERIFY_THREADS: usize = 4;

/// Reads every staged file back and compares it with what was written
/// ([`read_back`]); many files are shared among a few threads.
fn verify_all(staging: &OwnedFd, staged: &[Staged]) -> Result<(), Error> {
    let check = |files: &[Staged]| files.iter().try_for_each(|file| verify_one(staging, file));
    if staged.len() <= SYNC_EACH_MAX {
        return check(staged);
    }
    let per_thread = staged.len().div_ceil(VERIFY_THREADS);
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        for files in staged.chunks(per_thread) {
            match std::thread::Builder::new().spawn_scoped(scope, move || check(files)) {
                Ok(handle) => running.push(handle),
                // No thread to be had: this share is checked here.
                Err(_) => check(files)?,
            }
        }
        running.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

fn verify_one(staging: &OwnedFd, staged: &Staged) -> Result<(), Error> {
    let read_back = read_back(staging, staged)?;
    if read_back == staged.digest {
        return Ok(());
    }
    Err(Error::io(
        "verify the archived copy of",
        &staged.shown,
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "read back {} bytes with sha256 {}, but {} bytes with sha256 {} were written; no file of this request was moved into place",
                read_back.size, read_back.sha256, staged.digest.size, staged.digest.sha256
            ),
        ),
    ))
}

/// Which staged file a temporary belongs to.
#[derive(Debug)]
pub struct PendingName(usize);

/// The digest of a staged file as it is on the disk: its cached pages are
/// dropped first (they are clean after the sync), so the read comes from the
/// storage rather than from memory where the file system allows.
fn read_back(dir: &OwnedFd, staged: &Staged) -> Result<ContentDigest, Error> {
    let fd = openat(
        dir,
        staged.temp_name.as_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open for verification", &staged.shown, e.into()))?;
    // Advice only: a file system that ignores it is read from its cache.
    let _ = rustix::fs::fadvise(&fd, 0, NonZeroU64::new(0), rustix::fs::Advice::DontNeed);
    // Read in order: a larger readahead window keeps more of the disk busy.
    let _ = rustix::fs::fadvise(&fd, 0, NonZeroU64::new(0), rustix::fs::Advice::Sequential);
    sha256_digest_sized(File::from(fd), staged.digest.size)
        .map_err(|e| Error::io("read back", &staged.shown, e))
}

/// Creates directory `name` in `parent` (mode 0750) unless it exists, then
/// opens it without following a symlink. True when it was created here.
fn ensure_dir(parent: &OwnedFd, name: &str, shown: &Path) -> Result<(OwnedFd, bool), Error> {
    let created = match mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) => true,
        // Another delivery of the same request, maybe on another host, made
        // it; or something else is there, which the open tells.
        Err(Errno::EXIST) => false,
        Err(errno) if is_permanent_name_errno(errno) || errno == Errno::INVAL => {
            return Err(Error::InvalidData(format!("{}: {errno}", shown.display())));
        }
        Err(errno) => return Err(Error::io("create directory", shown, errno.into())),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => {
            if created {
                // The umask may have narrowed the mode given to mkdir.
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE))
                    .map_err(|e| Error::io("set permissions on", shown, e.into()))?;
            }
            Ok((fd, created))
        }
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let kind = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|stat| file_kind_name(FileType::from_raw_mode(stat.st_mode)))
                .unwrap_or("something else");
            Err(Error::InvalidData(format!(
                "{} is a {kind} where a directory must be; nothing is written through it",
                quoted(&shown.display().to_string())
            )))
        }
        Err(errno) => Err(Error::io("open directory", shown, errno.into())),
    }
}

/// Syncs a directory so that entries created or renamed in it survive a crash.
fn sync_dir(dir: impl AsFd, shown: &Path) -> Result<(), Error> {
    match rustix::fs::fsync(dir) {
        Ok(()) => Ok(()),
        // Some file systems (certain FUSE and network ones) cannot sync a
        // directory and say EINVAL; their renames are as durable as they get.
        Err(Errno::INVAL) => Ok(()),
        Err(errno) => Err(Error::io("sync directory", shown, errno.into())),
    }
}
