//! Writing a file a user or a variable names (`metrics_file`,
//! `audit_metrics_file`, `log_file`, `lock_file`), and the atomic replace
//! under it.
//!
//! The rules:
//! - a final symlink is never followed: a link at the path is refused (the
//!   open is `O_NOFOLLOW`; a replace looks with `lstat`);
//! - only a regular file is written into or replaced: a FIFO or a device
//!   node at the path stays what it is, and an open never blocks on one
//!   (`O_NONBLOCK`);
//! - a file is replaced only if it belongs to our effective user: another
//!   user's file is theirs, even to root;
//! - no two of these settings may name the same file ([`same_file`]).
//!
//! Whoever may write to the directory can still swap the entry between our
//! look and our rename; the rules keep a misconfigured or planted path from
//! being trusted, not a writer from its own directory.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Why a configured path cannot be written.
#[derive(Debug)]
pub enum WriteProblem {
    /// A symbolic link is at the path.
    Symlink,
    /// Something other than a regular file: "a FIFO", "a directory".
    NotRegular(&'static str),
    /// A regular file of another user (its uid).
    Foreign(u32),
    Io(std::io::Error),
}

impl std::fmt::Display for WriteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteProblem::Symlink => {
                f.write_str("it is a symbolic link, and links are never followed where we write")
            }
            WriteProblem::NotRegular(what) => {
                write!(f, "it is {what}, not a regular file; it is left as it is")
            }
            WriteProblem::Foreign(uid) => write!(
                f,
                "it belongs to another user (uid {uid}); it is left as it is"
            ),
            WriteProblem::Io(e) => write!(f, "{e}"),
        }
    }
}

impl WriteProblem {
    /// The error for the setting `key` (`"metrics_file"`) at `path`: a
    /// configuration error (78), or the I/O error as it is.
    pub fn into_error(self, action: &'static str, key: &str, path: &Path) -> Error {
        match self {
            WriteProblem::Io(e) => Error::io(action, path, e),
            problem => Error::config(
                format!("{key} {}", path.display()),
                format!("cannot {action}: {problem}"),
            ),
        }
    }

    fn into_io(self) -> std::io::Error {
        match self {
            WriteProblem::Io(e) => e,
            problem => std::io::Error::other(problem.to_string()),
        }
    }
}

/// Judges what is at a path we are to write: `None` when nothing is. Pure,
/// over `lstat`'s answer.
fn judge(meta: &std::fs::Metadata, euid: u32) -> Result<(), WriteProblem> {
    if meta.file_type().is_symlink() {
        return Err(WriteProblem::Symlink);
    }
    if let Some(what) = super::read::not_regular(meta.file_type()) {
        return Err(WriteProblem::NotRegular(what));
    }
    if meta.uid() != euid {
        return Err(WriteProblem::Foreign(meta.uid()));
    }
    Ok(())
}

/// Checks that `path` may be replaced or written: absent, or a regular file
/// of ours (not a link, FIFO, device, directory, nor another user's file).
pub fn check_write_target(path: &Path) -> Result<(), WriteProblem> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => judge(&meta, rustix::process::geteuid().as_raw()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WriteProblem::Io(e)),
    }
}

/// How hard [`write_atomic`] tries to survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The file and its directory entry are synced before it returns.
    Synced,
    /// Atomic (readers see the old file or the new one) but not synced:
    /// after a crash the file may be in its earlier state.
    Atomic,
}

/// Replaces `path` with `bytes` through a temporary file beside it
/// (`.NAME.PID.tmp`, created exclusively, so a link planted at that name is
/// never followed) and a rename. `mode`, when given, is set exactly,
/// whatever the umask. On failure the temporary file is removed and `path`
/// is untouched. For a path we chose (the directory queue's messages); a
/// configured path goes through [`write_configured`]. The archive does not
/// use this: it writes beneath directory handles (`archive::target`).
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    durability: Durability,
) -> std::io::Result<()> {
    replace(path, bytes, mode, durability, false)
}

/// [`write_atomic`] for a configured path (`metrics_file`,
/// `audit_metrics_file`), synced: refused, with the path left as it is,
/// when [`check_write_target`] refuses it (looked at before the temporary
/// file is written and again just before the rename).
pub fn write_configured(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    replace(path, bytes, mode, Durability::Synced, true)
}

fn replace(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    durability: Durability,
    checked: bool,
) -> std::io::Result<()> {
    let check = || {
        if checked {
            check_write_target(path).map_err(WriteProblem::into_io)
        } else {
            Ok(())
        }
    };
    check()?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let create = || OpenOptions::new().write(true).create_new(true).open(&temp);
    let result = (|| {
        let mut f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by an earlier process with our pid that did not finish.
                std::fs::remove_file(&temp)?;
                create()?
            }
            other => other?,
        };
        if let Some(mode) = mode {
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        if durability == Durability::Synced {
            f.sync_all()?;
        }
        check()?;
        std::fs::rename(&temp, path)?;
        if durability == Durability::Synced {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Opens a configured file for appending or locking (`log_file`,
/// `lock_file`), created 0600 with its directory: `O_NOFOLLOW` (a link is
/// refused, nothing is created where it points) and `O_NONBLOCK` (a FIFO
/// does not block the open), then it must be a regular file.
pub fn open_append_regular(path: &Path) -> Result<File, WriteProblem> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(WriteProblem::Io)?;
    }
    // A look first, so a device is refused without being opened (opening
    // one for writing can have effects: a watchdog arms); the `fstat` below
    // is what counts, should the path change in between.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            return Err(WriteProblem::Symlink);
        }
        if let Some(what) = super::read::not_regular(meta.file_type()) {
            return Err(WriteProblem::NotRegular(what));
        }
    }
    let errno =
        |e: &std::io::Error, n: rustix::io::Errno| e.raw_os_error() == Some(n.raw_os_error());
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| {
            if errno(&e, rustix::io::Errno::LOOP) {
                WriteProblem::Symlink
            } else if errno(&e, rustix::io::Errno::NXIO) {
                // A FIFO nobody reads, or a socket.
                WriteProblem::NotRegular("a FIFO or a socket")
            } else if e.kind() == std::io::ErrorKind::IsADirectory {
                WriteProblem::NotRegular("a directory")
            } else {
                WriteProblem::Io(e)
            }
        })?;
    let meta = file.metadata().map_err(WriteProblem::Io)?;
    if let Some(what) = super::read::not_regular(meta.file_type()) {
        return Err(WriteProblem::NotRegular(what));
    }
    Ok(file)
}

/// The first two settings of `paths` (`(key, path)`) that name one file, if
/// any: compared after resolving each directory (so `var/x` and `./var/x`,
/// or a path through a linked directory, match), and by device and inode
/// where both exist (a hard link).
pub fn same_file<'a>(paths: &[(&'a str, &Path)]) -> Option<(&'a str, &'a str)> {
    let resolved: Vec<(PathBuf, Option<(u64, u64)>)> = paths
        .iter()
        .map(|(_, p)| {
            let id = std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
            (resolve(p), id)
        })
        .collect();
    for i in 0..paths.len() {
        for j in i + 1..paths.len() {
            let (a, b) = (&resolved[i], &resolved[j]);
            if a.0 == b.0 || (a.1.is_some() && a.1 == b.1) {
                return Some((paths[i].0, paths[j].0));
            }
        }
    }
    None
}

/// `path` with its directory resolved (links, `.`, `..`) where it exists,
/// else made absolute and cleaned lexically.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return absolute;
    };
    match std::fs::canonicalize(dir) {
        Ok(dir) => dir.join(name),
        Err(_) => clean(&absolute),
    }
}

/// Removes `.` and resolves `..` lexically.
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt as _;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sqs-archive-write-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_atomic_replaces_and_never_follows_a_planted_temp_link() {
        let dir = scratch("atomic");
        let path = dir.join("f.prom");
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let temp = dir.join(format!(".f.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        write_atomic(&path, b"one", Some(0o644), Durability::Synced).unwrap();
        write_atomic(&path, b"two", None, Durability::Atomic).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!temp.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_configured_write_leaves_a_fifo_and_a_link_as_they_are() {
        let dir = scratch("configured");
        let fifo = dir.join("fifo.prom");
        crate::files::make_fifo(&fifo);
        let e = write_configured(&fifo, b"x", Some(0o644)).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let target = dir.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.join("link.prom");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_configured(&link, b"x", None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let ours = dir.join("ours.prom");
        write_configured(&ours, b"one", Some(0o644)).unwrap();
        write_configured(&ours, b"two", Some(0o644)).unwrap();
        assert_eq!(std::fs::read_to_string(&ours).unwrap(), "two");
        // No temporary file is left behind by a refusal.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_users_file_is_refused_and_ours_is_not() {
        let dir = scratch("owner");
        let ours = dir.join("ours");
        std::fs::write(&ours, "x").unwrap();
        let meta = std::fs::symlink_metadata(&ours).unwrap();
        assert!(judge(&meta, meta.uid()).is_ok());
        let e = judge(&meta, meta.uid() + 1).unwrap_err();
        assert!(matches!(e, WriteProblem::Foreign(u) if u == meta.uid()));
        let e = e.into_error("write metrics file", "metrics_file", &ours);
        assert_eq!(e.exit(), crate::exit::Exit::Config);
        assert!(e.to_string().contains("another user"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn appending_never_follows_a_link_nor_blocks_on_a_fifo() {
        let dir = scratch("append");
        let fifo = dir.join("fifo.log");
        crate::files::make_fifo(&fifo);
        assert!(matches!(
            open_append_regular(&fifo),
            Err(WriteProblem::NotRegular(_))
        ));
        // With a reader the open succeeds; the type check still refuses it.
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&fifo)
            .unwrap();
        assert!(matches!(
            open_append_regular(&fifo),
            Err(WriteProblem::NotRegular("a FIFO"))
        ));
        let target = dir.join("target");
        let link = dir.join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            open_append_regular(&link),
            Err(WriteProblem::Symlink)
        ));
        assert!(!target.exists());
        let log = dir.join("sub/poll.log");
        open_append_regular(&log).unwrap();
        assert!(log.is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_same_file_under_two_names_is_found() {
        let dir = scratch("same");
        std::fs::create_dir(dir.join("var")).unwrap();
        let a = dir.join("var/poll.lock");
        let b = dir.join("var/../var/./poll.lock");
        let c = dir.join("var/poll.prom");
        assert_eq!(same_file(&[("lock_file", &a), ("metrics_file", &c)]), None);
        assert_eq!(
            same_file(&[("lock_file", &a), ("metrics_file", &c), ("log_file", &b)]),
            Some(("lock_file", "log_file"))
        );
        std::fs::write(&a, "").unwrap();
        let hard = dir.join("hard");
        std::fs::hard_link(&a, &hard).unwrap();
        assert_eq!(
            same_file(&[("lock_file", &a), ("metrics_file", &hard)]),
            Some(("lock_file", "metrics_file"))
        );
        // Not yet created, through a directory that does not exist either.
        let x = dir.join("new/x");
        let y = dir.join("new/./x");
        assert_eq!(same_file(&[("a", &x), ("b", &y)]), Some(("a", "b")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
