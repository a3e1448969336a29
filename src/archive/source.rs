//! The source tree of a job: the directory names are resolved beneath (its
//! handle, opened once), opening one requested file as a regular file, and
//! the walk that lists a whole `<aipid>` directory.
//!
//! Reads only; every name goes through [`super::beneath`] and every listed name
//! through the archive's name rule. Knows nothing of the archive side.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, openat, statat};

use super::beneath::{Refusal, Resolution, Want, file_kind_name, open_beneath};
use super::manifest::validate_archived_name;
use crate::error::Error;
use crate::message::names::quoted;

/// A directory names are resolved beneath: its handle, where it was found
/// (for absolute symlinks, see [`beneath`]), and how to show it.
pub struct SourceRoot {
    fd: OwnedFd,
    /// The canonical path at the time it was opened.
    found_at: PathBuf,
    /// As the caller named it, for messages.
    pub shown: PathBuf,
}

impl SourceRoot {
    pub fn open(source_dir: &Path) -> Result<SourceRoot, Error> {
        // O_DIRECTORY: a FIFO or device standing there is refused at once
        // instead of blocking the open.
        let fd = rustix::fs::open(
            source_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open source directory", source_dir, e.into()))?;
        let found_at = std::fs::canonicalize(source_dir)
            .map_err(|e| Error::io("open source directory", source_dir, e))?;
        Ok(SourceRoot {
            fd,
            found_at,
            shown: source_dir.to_path_buf(),
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory `name` beneath this one, as a root of its own.
    pub fn below(&self, name: &str, how: Resolution) -> Result<SourceRoot, Error> {
        let shown = self.shown.join(name);
        match open_beneath(self.fd(), &self.found_at, name, Want::Dir, how) {
            Ok(fd) => Ok(SourceRoot {
                fd,
                found_at: self.found_at.join(name),
                shown,
            }),
            Err(Refusal::NotFound) => Err(Error::InvalidData(format!(
                "source directory {} not found",
                shown.display()
            ))),
            Err(Refusal::NotADirectory) => Err(Error::InvalidData(format!(
                "source {} is not a directory",
                shown.display()
            ))),
            Err(Refusal::System(errno)) => {
                Err(Error::io("open source directory", shown, errno.into()))
            }
            Err(refusal) => Err(Error::InvalidData(format!(
                "source directory {} {refusal}, outside {}",
                shown.display(),
                self.shown.display()
            ))),
        }
    }

    /// Opens the regular file `name` beneath this directory.
    pub fn open_file(&self, name: &str, how: Resolution) -> Result<File, Error> {
        let refused = |why: String| {
            Err(Error::InvalidData(format!(
                "source file {} {why}",
                quoted(name),
            )))
        };
        let shown = self.shown.display();
        let file = match open_beneath(self.fd(), &self.found_at, name, Want::File, how) {
            Ok(fd) => File::from(fd),
            Err(Refusal::NotFound) => return refused(format!("not found under {shown}")),
            Err(Refusal::Outside(how)) => {
                return refused(format!("leads outside {shown}: {how}"));
            }
            Err(Refusal::System(errno)) => {
                return Err(Error::io(
                    "open source file",
                    self.shown.join(name),
                    errno.into(),
                ));
            }
            Err(refusal) => return refused(format!("cannot be resolved under {shown}: {refusal}")),
        };
        let stat = rustix::fs::fstat(&file)
            .map_err(|e| Error::io("inspect source file", self.shown.join(name), e.into()))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return refused(format!(
                "under {shown} is a {}; only regular files can be archived",
                file_kind_name(kind)
            ));
        }
        Ok(file)
    }
}

/// Every file name below `root` (a whole-directory job), sorted. Directories
/// are entered through their handles without following symlinks; a symlink
/// is listed, and resolved beneath `root` like any name when it is opened.
/// Anything that is not a directory, a regular file or a symlink is refused
/// rather than skipped, so a job never silently archives less than the
/// directory holds.
pub fn whole_directory_names(root: &SourceRoot) -> Result<Vec<String>, Error> {
    let read_error = |dir: &str, e: rustix::io::Errno| {
        Error::io("read source directory", root.shown.join(dir), e.into())
    };
    let mut names = Vec::new();
    // An explicit stack rather than recursion: the depth of the tree is the
    // sender's choice.
    let first = openat(
        root.fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_error("", e))?;
    let mut pending: Vec<(OwnedFd, String)> = vec![(first, String::new())];
    while let Some((dir_fd, prefix)) = pending.pop() {
        let dir = Dir::read_from(&dir_fd).map_err(|e| read_error(&prefix, e))?;
        for entry in dir {
            let entry = entry.map_err(|e| read_error(&prefix, e))?;
            let bytes = entry.file_name().to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let Ok(component) = std::str::from_utf8(bytes) else {
                return Err(Error::InvalidData(format!(
                    "source directory {} holds {}, whose name is not UTF-8",
                    root.shown.join(&prefix).display(),
                    quoted(&String::from_utf8_lossy(bytes))
                )));
            };
            let name = if prefix.is_empty() {
                component.to_owned()
            } else {
                format!("{prefix}/{component}")
            };
            validate_archived_name(&name)?;
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                let stat = statat(&dir_fd, component, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| read_error(&name, e))?;
                kind = FileType::from_raw_mode(stat.st_mode);
            }
            match kind {
                FileType::Directory => {
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let sub = openat(&dir_fd, component, flags, Mode::empty())
                        .map_err(|e| read_error(&name, e))?;
                    pending.push((sub, name));
                }
                FileType::RegularFile | FileType::Symlink => names.push(name),
                other => {
                    return Err(Error::InvalidData(format!(
                        "source file {} under {} is a {}; only regular files can be archived",
                        quoted(&name),
                        root.shown.display(),
                        file_kind_name(other)
                    )));
                }
            }
        }
    }
    if names.is_empty() {
        // Reporting success for nothing would let the sender believe the AIP
        // is safe; more likely its upload has not happened.
        return Err(Error::InvalidData(format!(
            "source directory {} holds no files to archive",
            root.shown.display()
        )));
    }
    names.sort();
    Ok(names)
}
