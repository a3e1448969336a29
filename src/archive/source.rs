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

use super::beneath::{
    Refusal, Resolution, Want, file_kind_name, is_permanent_name_errno, open_beneath,
};
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
            Err(Refusal::System(errno)) if is_permanent_name_errno(errno) => Err(
                Error::InvalidData(format!("source directory {}: {errno}", shown.display())),
            ),
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
            Err(Refusal::System(errno)) if errno == rustix::io::Errno::NXIO => {
                // What opening a Unix socket says.
                return refused(format!(
                    "under {shown} is a socket or a device without a driver; only regular files can be archived"
                ));
            }
            Err(Refusal::System(errno)) if is_permanent_name_errno(errno) => {
                return refused(format!("under {shown} cannot be opened: {errno}"));
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

/// A directory's device and inode.
type DirIdentity = (u64, u64);

/// Every file name below `root` (a whole-directory job), sorted. Directories
/// are entered through their handles without following symlinks; a symlink
/// is resolved beneath `root` like any name: one to a directory is entered
/// (unless it leads back into a directory it is in), one to anything else
/// is listed and opened as a file later; one leading outside is refused.
/// Anything that is not a directory, a regular file or a symlink is refused
/// rather than skipped, so a job never silently archives less than the
/// directory holds.
pub fn whole_directory_names(root: &SourceRoot, how: Resolution) -> Result<Vec<String>, Error> {
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
    let identity = |fd: &OwnedFd, name: &str| {
        rustix::fs::fstat(fd)
            .map(|stat| (stat.st_dev, stat.st_ino))
            .map_err(|e| read_error(name, e))
    };
    // Each directory to read, with the identities of the directories it is
    // in (itself included), to refuse a symlink leading back up.
    let mut pending: Vec<(OwnedFd, String, Vec<DirIdentity>)> = {
        let id = identity(&first, "")?;
        vec![(first, String::new(), vec![id])]
    };
    while let Some((dir_fd, prefix, ancestors)) = pending.pop() {
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
                    let mut chain = ancestors.clone();
                    chain.push(identity(&sub, &name)?);
                    pending.push((sub, name, chain));
                }
                FileType::Symlink => {
                    match open_beneath(root.fd(), &root.found_at, &name, Want::Dir, how) {
                        Ok(sub) => {
                            let id = identity(&sub, &name)?;
                            if ancestors.contains(&id) {
                                return Err(Error::InvalidData(format!(
                                    "source {} under {} is a symlink back to a directory it is in",
                                    quoted(&name),
                                    root.shown.display()
                                )));
                            }
                            let mut chain = ancestors.clone();
                            chain.push(id);
                            pending.push((sub, name, chain));
                        }
                        // Not a directory (or gone, or outside): opened, and
                        // refused if need be, as a file.
                        Err(_) => names.push(name),
                    }
                }
                FileType::RegularFile => names.push(name),
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
