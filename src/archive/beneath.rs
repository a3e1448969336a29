//! Opening a name beneath a directory handle so that no step can leave it,
//! whatever is renamed or swapped for a symlink meanwhile.
//!
//! On Linux 5.6 and later the kernel does this in one call: `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`. Where that call is missing
//! (`ENOSYS`: RHEL 8's 4.18 kernel) or filtered (`EPERM` from a seccomp
//! policy), and for absolute symlinks, which `RESOLVE_BENEATH` refuses
//! outright, the name is walked one component at a time: each directory is
//! opened `O_PATH | O_NOFOLLOW` relative to the one before and inspected
//! through its descriptor, a symlink's target is read from the descriptor of
//! the link itself and pushed back onto the components still to walk, `..`
//! returns to the descriptor the walk came through (never a lookup of `..`),
//! and going above the root, an absolute target outside the root, or more
//! than 40 links is refused. Nothing here compares a path string and opens
//! it again afterwards.
//!
//! This module knows nothing of archives: it opens names, the caller decides
//! what to do with the descriptor.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, fstat, openat, openat2, readlinkat};
use rustix::io::Errno;

/// The most symlinks one resolution follows, as the kernel's own limit.
const MAX_LINKS: u32 = 40;
/// `openat2` answers `EAGAIN` when a rename elsewhere raced a `..` step.
const OPENAT2_ATTEMPTS: u32 = 8;

/// Set once `openat2` was found missing, so later names go straight to the walk.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// How names are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// `openat2(RESOLVE_BENEATH)` where the kernel has it, else the walk.
    #[default]
    Kernel,
    /// Always the component walk, as on kernels without `openat2` (tests use it).
    Walk,
}

/// A file type in words, for error messages.
pub fn file_kind_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::BlockDevice => "block device",
        FileType::CharacterDevice => "character device",
        FileType::RegularFile => "regular file",
        _ => "special file",
    }
}

/// What the last component must be opened as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Opened read-only and non-blocking (a FIFO swapped in does not hang
    /// the open); the caller checks with `fstat` that it is a regular file.
    File,
    /// A directory, read-only.
    Dir,
}

/// Why a name could not be opened beneath its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A component does not exist.
    NotFound,
    /// The name leads outside the root: `what` says how (a `..` above the
    /// root, or the symlink target that does).
    Outside(String),
    /// More than 40 symlinks, or a loop.
    TooManyLinks,
    /// Something that is not a directory is used as one.
    NotADirectory,
    /// Any other failure of the system (permissions, I/O).
    System(Errno),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound => f.write_str("not found"),
            Refusal::Outside(what) => write!(f, "leads outside the directory ({what})"),
            Refusal::TooManyLinks => write!(f, "more than {MAX_LINKS} symbolic links, or a loop"),
            Refusal::NotADirectory => f.write_str("a component is not a directory"),
            Refusal::System(errno) => write!(f, "{}", std::io::Error::from(*errno)),
        }
    }
}

/// Opens `name` (a relative path with `/` separators) beneath `root`.
/// `root_path` is where `root` was found when it was opened: an absolute
/// symlink target below it is followed from `root` itself, the rest of the
/// target walked beneath it; it is never opened as a path.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    root_path: &Path,
    name: &str,
    want: Want,
    how: Resolution,
) -> Result<OwnedFd, Refusal> {
    if how == Resolution::Kernel && !OPENAT2_MISSING.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        for _ in 0..OPENAT2_ATTEMPTS {
            match openat2(root, name, final_flags(want), Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                Err(Errno::AGAIN | Errno::INTR) => continue,
                Err(Errno::NOSYS | Errno::PERM) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                    break;
                }
                // An absolute symlink, or a "..": the walk tells one that
                // stays inside from one that does not.
                Err(Errno::XDEV) => break,
                Err(errno) => return Err(refusal(errno)),
            }
        }
    }
    walk(root, root_path, name, want)
}

fn final_flags(want: Want) -> OFlags {
    let base = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    match want {
        Want::File => base | OFlags::NONBLOCK,
        Want::Dir => base | OFlags::DIRECTORY,
    }
}

fn refusal(errno: Errno) -> Refusal {
    match errno {
        Errno::NOENT => Refusal::NotFound,
        Errno::LOOP => Refusal::TooManyLinks,
        Errno::NOTDIR => Refusal::NotADirectory,
        Errno::XDEV => Refusal::Outside("a symbolic link or '..' crossing its edge".into()),
        other => Refusal::System(other),
    }
}

/// The component-by-component resolution (see the module header).
fn walk(
    root: BorrowedFd<'_>,
    root_path: &Path,
    name: &str,
    want: Want,
) -> Result<OwnedFd, Refusal> {
    // Components still to walk, the next one last.
    let mut pending: Vec<Vec<u8>> = split_reversed(name.as_bytes());
    // The directories walked through below the root, innermost last.
    let mut through: Vec<OwnedFd> = Vec::new();
    let mut links = 0u32;
    loop {
        let Some(component) = pending.pop() else {
            // The name ended in "." or "..": the directory reached.
            let here = current(root, &through);
            return openat(here, ".", final_flags(want), Mode::empty()).map_err(refusal);
        };
        let here = current(root, &through);
        match component.as_slice() {
            b"" | b"." => continue,
            b".." => {
                if through.pop().is_none() {
                    return Err(Refusal::Outside("'..' above the directory".into()));
                }
                continue;
            }
            _ => {}
        }
        let is_last = pending.is_empty();
        if is_last {
            let opened = openat(
                here,
                component.as_slice(),
                final_flags(want) | OFlags::NOFOLLOW,
                Mode::empty(),
            );
            let failed = match opened {
                Ok(fd) => return Ok(fd),
                // O_NOFOLLOW on a symlink (ENOTDIR when O_DIRECTORY is
                // checked first): follow it ourselves, below.
                Err(errno @ (Errno::LOOP | Errno::NOTDIR)) => errno,
                Err(errno) => return Err(refusal(errno)),
            };
            let target = match readlinkat(here, component.as_slice(), Vec::new()) {
                Ok(target) => target.into_bytes(),
                // Not a link: a file where a directory was wanted.
                Err(Errno::INVAL) if failed == Errno::NOTDIR => {
                    return Err(Refusal::NotADirectory);
                }
                // Swapped for a non-link since the open: look again.
                Err(Errno::INVAL) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Refusal::TooManyLinks);
                    }
                    pending.push(component);
                    continue;
                }
                Err(errno) => return Err(refusal(errno)),
            };
            follow(&target, root_path, &mut pending, &mut through, &mut links)?;
            continue;
        }
        let fd = openat(
            here,
            component.as_slice(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(refusal)?;
        let kind = FileType::from_raw_mode(fstat(&fd).map_err(refusal)?.st_mode);
        match kind {
            FileType::Directory => through.push(fd),
            FileType::Symlink => {
                // Read from the link just opened, not looked up again.
                let target = readlinkat(&fd, "", Vec::new())
                    .map_err(refusal)?
                    .into_bytes();
                follow(&target, root_path, &mut pending, &mut through, &mut links)?;
            }
            _ => return Err(Refusal::NotADirectory),
        }
    }
}

fn current<'a>(root: BorrowedFd<'a>, through: &'a [OwnedFd]) -> BorrowedFd<'a> {
    through.last().map_or(root, |fd| fd.as_fd())
}

/// Queues a symlink's target in place of the link. A relative target goes on
/// from the link's directory; an absolute one must lie below `root_path` and
/// goes on from the root.
fn follow(
    target: &[u8],
    root_path: &Path,
    pending: &mut Vec<Vec<u8>>,
    through: &mut Vec<OwnedFd>,
    links: &mut u32,
) -> Result<(), Refusal> {
    *links += 1;
    if *links > MAX_LINKS {
        return Err(Refusal::TooManyLinks);
    }
    let rest = if target.starts_with(b"/") {
        let below = strip_root(target, root_path).ok_or_else(|| {
            Refusal::Outside(format!(
                "a symbolic link to {}",
                String::from_utf8_lossy(target)
            ))
        })?;
        through.clear();
        below
    } else {
        target
    };
    if rest.is_empty() && pending.is_empty() {
        // A link to the root itself, as the last component.
        pending.push(b".".to_vec());
    }
    pending.extend(split_reversed(rest));
    Ok(())
}

/// The part of an absolute `target` below `root_path`, or `None` when it is
/// not below it. Compared component by component, so `/srv/a` is not below
/// `/srv/ab`.
fn strip_root<'t>(target: &'t [u8], root_path: &Path) -> Option<&'t [u8]> {
    use std::os::unix::ffi::OsStrExt;
    let root = root_path.as_os_str().as_bytes();
    let root = root.strip_suffix(b"/").unwrap_or(root);
    let rest = target.strip_prefix(root)?;
    if rest.is_empty() || rest.starts_with(b"/") {
        Some(rest.strip_prefix(b"/").unwrap_or(rest))
    } else {
        None
    }
}

/// Errors about a name or a file's kind that no retry can mend: the name
/// is too long, the file system cannot hold it (`EILSEQ`), or the source is
/// a socket or a device without a driver (`ENXIO`, `ENODEV`). (`EINVAL` on
/// creating a name, which some file systems answer for characters they
/// cannot hold, is added by the archive side.)
pub fn is_permanent_name_errno(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::NAMETOOLONG | Errno::ILSEQ | Errno::NXIO | Errno::NODEV
    )
}

fn split_reversed(name: &[u8]) -> Vec<Vec<u8>> {
    name.split(|&b| b == b'/')
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    struct Tree {
        root: PathBuf,
    }

    impl Tree {
        fn new(test: &str) -> Tree {
            let root = std::env::temp_dir()
                .join(format!("sqs-archive-beneath-{}-{test}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(root.join("top/sub")).unwrap();
            fs::write(root.join("top/sub/a.txt"), "a\n").unwrap();
            fs::write(root.join("secret.txt"), "secret\n").unwrap();
            Tree { root }
        }

        fn top(&self) -> PathBuf {
            self.root.join("top")
        }

        fn open(&self, name: &str, how: Resolution) -> Result<String, Refusal> {
            let top = fs::File::open(self.top()).unwrap();
            let fd = open_beneath(top.as_fd(), &self.top(), name, Want::File, how)?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut fs::File::from(fd), &mut text).unwrap();
            Ok(text)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    const BOTH: [Resolution; 2] = [Resolution::Kernel, Resolution::Walk];

    #[test]
    fn links_inside_are_followed_both_ways() {
        let tree = Tree::new("inside");
        let top = tree.top();
        symlink("sub/a.txt", top.join("rel")).unwrap();
        symlink("../sub/a.txt", top.join("sub/up")).unwrap();
        symlink(top.join("sub/a.txt"), top.join("abs")).unwrap();
        symlink("sub", top.join("dirlink")).unwrap();
        symlink(top.join("sub"), top.join("absdir")).unwrap();
        for how in BOTH {
            for name in [
                "sub/a.txt",
                "rel",
                "sub/up",
                "abs",
                "dirlink/a.txt",
                "absdir/up",
            ] {
                assert_eq!(tree.open(name, how).as_deref(), Ok("a\n"), "{name} {how:?}");
            }
        }
    }

    #[test]
    fn links_outside_are_refused_both_ways() {
        let tree = Tree::new("outside");
        let top = tree.top();
        symlink("../secret.txt", top.join("up")).unwrap();
        symlink(tree.root.join("secret.txt"), top.join("abs")).unwrap();
        symlink("/etc", top.join("etc")).unwrap();
        symlink("..", top.join("sub/parent-of-top-is-fine")).unwrap();
        symlink("../..", top.join("sub/too-far")).unwrap();
        // A sibling whose name starts like the root's is not below it.
        fs::create_dir_all(tree.root.join("topx")).unwrap();
        fs::write(tree.root.join("topx/b"), "b\n").unwrap();
        symlink(tree.root.join("topx/b"), top.join("prefix")).unwrap();
        for how in BOTH {
            for name in [
                "up",
                "abs",
                "etc/passwd",
                "sub/too-far/secret.txt",
                "prefix",
            ] {
                let refused = tree.open(name, how);
                assert!(
                    matches!(refused, Err(Refusal::Outside(_))),
                    "{name} {how:?}: {refused:?}"
                );
            }
            assert_eq!(
                tree.open("sub/parent-of-top-is-fine/sub/a.txt", how)
                    .as_deref(),
                Ok("a\n")
            );
        }
    }

    #[test]
    fn loops_missing_names_and_files_as_directories_are_told_apart() {
        let tree = Tree::new("loops");
        let top = tree.top();
        symlink("loop2", top.join("loop1")).unwrap();
        symlink("loop1", top.join("loop2")).unwrap();
        for how in BOTH {
            assert_eq!(
                tree.open("loop1", how),
                Err(Refusal::TooManyLinks),
                "{how:?}"
            );
            assert_eq!(tree.open("nope", how), Err(Refusal::NotFound), "{how:?}");
            assert_eq!(
                tree.open("sub/a.txt/x", how),
                Err(Refusal::NotADirectory),
                "{how:?}"
            );
        }
    }

    #[test]
    fn a_directory_reached_through_a_link_opens_as_one() {
        let tree = Tree::new("dirs");
        let top = tree.top();
        symlink("sub", top.join("dirlink")).unwrap();
        let root = fs::File::open(&top).unwrap();
        for how in BOTH {
            for name in ["sub", "dirlink", "dirlink/..", "sub/."] {
                let fd = open_beneath(root.as_fd(), &top, name, Want::Dir, how);
                assert!(fd.is_ok(), "{name} {how:?}: {fd:?}");
            }
            let file = open_beneath(root.as_fd(), &top, "sub/a.txt", Want::Dir, how);
            assert_eq!(file.unwrap_err(), Refusal::NotADirectory, "{how:?}");
        }
    }

    #[test]
    fn absolute_targets_are_matched_by_component() {
        let root = Path::new("/srv/src");
        assert_eq!(strip_root(b"/srv/src/a/b", root), Some(&b"a/b"[..]));
        assert_eq!(strip_root(b"/srv/src", root), Some(&b""[..]));
        assert_eq!(strip_root(b"/srv/srcx/a", root), None);
        assert_eq!(strip_root(b"/etc/passwd", root), None);
    }
}
