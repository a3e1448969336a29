//! Who else could change what the tools read, run and write.
//!
//! - What decides what runs ([`trusted`]: the profile, whose `handler` key
//!   names the program; the `.env` file, which may name the profile; the
//!   handler program) fails when another user could change it: the file or
//!   a directory above it (as written and as resolved) world-writable, or
//!   owned by someone neither root nor this user. A world-writable
//!   directory with the sticky bit (`/tmp`) lets nobody else rename or
//!   remove what is ours in it, so it passes.
//! - A file the poller writes ([`output_file`]) fails when something that
//!   is not a regular file stands at its name (a symlink, FIFO, device,
//!   socket or directory: the write would follow, block on or replace it),
//!   and warns when its directory is not ours or is world-writable without
//!   the sticky bit (someone else could put one there), or the file is
//!   someone else's.
//! - Two of `lock_file`, `metrics_file`, `log_file`, `audit_metrics_file`
//!   naming the same file ([`distinct`]: the same resolved directory and
//!   name, or the same inode) fail: the metrics rename would replace the
//!   lock's inode, and a second poller would take a lock nobody holds.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::report::{Check, Status};

/// The user the checks run as: the one `poll_messages` will run as.
fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why another user could change this file or directory, if they could.
fn foreign_control(meta: &Metadata) -> Option<String> {
    let uid = meta.uid();
    if uid != 0 && uid != me() {
        return Some(format!("is owned by uid {uid}, neither root nor this user"));
    }
    let mode = meta.mode();
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o002 != 0 && !sticky_dir {
        let what = if meta.is_dir() {
            "is world-writable without the sticky bit"
        } else {
            "is world-writable"
        };
        return Some(format!("{what} (mode {:o})", mode & 0o7777));
    }
    None
}

/// The resolved file, then every directory above it, then every directory
/// above where the path itself is written (a symlink's own directory).
fn chain(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let real = std::fs::canonicalize(path)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let written = std::fs::canonicalize(parent)?;
    let mut all: Vec<PathBuf> = Vec::new();
    for p in real.ancestors().chain(written.ancestors()) {
        if !all.iter().any(|seen| seen == p) {
            all.push(p.to_path_buf());
        }
    }
    Ok(all)
}

/// `what` (the profile, the env file, the handler) at `path`: fails when
/// another user could change it or a directory above it.
pub(super) fn trusted(what: &str, path: &Path) -> Check {
    let name = format!("{what} trust");
    let shown = path.display();
    let chain = match chain(path) {
        Ok(chain) => chain,
        Err(e) => return Check::fail(name, format!("{what} {shown}: {e}")),
    };
    let mut problems = Vec::new();
    for (i, p) in chain.iter().enumerate() {
        let found = match std::fs::metadata(p) {
            Ok(meta) => foreign_control(&meta),
            Err(e) => Some(format!("cannot be examined: {e}")),
        };
        if let Some(why) = found {
            let which = if i > 0 {
                format!("directory {}", p.display())
            } else if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
                format!("its target {}", p.display())
            } else {
                "it".to_string()
            };
            problems.push(format!("{which} {why}"));
        }
    }
    if problems.is_empty() {
        return Check::ok(
            name,
            format!("{what} {shown}: only root and this user can change it or its directories"),
        );
    }
    Check::fail(
        name,
        format!(
            "{what} {shown}: {}; another user could change what runs (chmod o-w, chown)",
            problems.join("; ")
        ),
    )
}

/// A warning when a file that holds (or usually holds) credentials can be
/// read by other users.
pub(super) fn secret_readable(what: &str, path: &Path, holds_secret: bool) -> Option<Check> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o777;
    (holds_secret && mode & 0o004 != 0).then(|| {
        Check::warn(
            format!("{what} secrecy"),
            format!(
                "{what} {} may hold credentials and every user can read it (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            ),
        )
    })
}

/// What stands at a path that is not a regular file, and what a write would do to it.
fn kind_of(meta: &Metadata) -> Option<(&'static str, &'static str)> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some(("a symlink", "a write would follow it"))
    } else if t.is_dir() {
        Some(("a directory", "it cannot be written"))
    } else if t.is_fifo() {
        Some(("a FIFO", "a write would block on it"))
    } else if t.is_char_device() || t.is_block_device() {
        Some(("a device", "a write would go into it or replace it"))
    } else {
        Some(("a socket", "it cannot be written"))
    }
}

/// A file the poller creates or writes (`lock_file`, `metrics_file`,
/// `log_file`, `audit_metrics_file`).
pub(super) fn output_file(key: &str, path: Option<&Path>) -> Check {
    let Some(path) = path else {
        return Check::ok(key, format!("{key} not set"));
    };
    let shown = path.display();
    let mut warnings = Vec::new();
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if let Some((kind, why)) = kind_of(&meta) {
                return Check::fail(
                    key,
                    format!("{key} {shown} is {kind}, not a regular file: {why}"),
                );
            }
            if meta.uid() != 0 && meta.uid() != me() {
                warnings.push(format!(
                    "the file is owned by uid {}, neither root nor this user",
                    meta.uid()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Check::fail(key, format!("{key} {shown}: {e}")),
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if let Some(why) = foreign_control(&meta) {
                warnings.push(format!(
                    "its directory {} {why}: another user could put something else there",
                    dir.display()
                ));
            }
        }
        _ => {
            return Check::fail(
                key,
                format!("{key} {shown}: directory {} does not exist", dir.display()),
            );
        }
    }
    if let Err(e) = super::checks::probe(dir) {
        return Check::fail(
            key,
            format!(
                "{key} {shown}: cannot create files in {}: {e}",
                dir.display()
            ),
        );
    }
    if warnings.is_empty() {
        Check::ok(key, format!("{key} {shown} can be written"))
    } else {
        Check::warn(key, format!("{key} {shown}: {}", warnings.join("; ")))
    }
}

/// Where a path names a file: its directory resolved, and its name.
fn identity(path: &Path) -> Option<(PathBuf, std::ffi::OsString)> {
    let name = path.file_name()?.to_os_string();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    Some((dir, name))
}

/// The device and inode of an existing file.
fn inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Fails for each pair of output files that are one file; one `ok` line
/// when two or more are set and all differ.
pub(super) fn distinct(files: &[(&str, Option<&Path>)]) -> Vec<Check> {
    let set: Vec<(&str, &Path)> = files
        .iter()
        .filter_map(|(key, path)| path.map(|p| (*key, p)))
        .collect();
    let mut checks = Vec::new();
    for (i, (a, pa)) in set.iter().enumerate() {
        for (b, pb) in &set[i + 1..] {
            let same_name = identity(pa).is_some() && identity(pa) == identity(pb);
            let same_inode = inode(pa).is_some() && inode(pa) == inode(pb);
            if same_name || same_inode {
                checks.push(Check::fail(
                    "distinct files",
                    format!(
                        "{a} {} and {b} {} are the same file: each write would destroy the other \
                         (a metrics rename replaces the lock's inode); give each its own path",
                        pa.display(),
                        pb.display()
                    ),
                ));
            }
        }
    }
    if checks.is_empty() && set.len() > 1 {
        let keys: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
        checks.push(Check::new(
            Status::Ok,
            "distinct files",
            format!("{} are distinct files", keys.join(", ")),
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "doctor-trust-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn file(&self, name: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, "{}").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_file_others_can_change_is_not_trusted() {
        let s = Scratch::new("trust");
        assert_eq!(
            trusted("profile", &s.file("ours.json", 0o644)).status,
            Status::Ok
        );
        let open = trusted("profile", &s.file("open.json", 0o666));
        assert_eq!(open.status, Status::Fail);
        assert!(open.text.contains("world-writable (mode 666)"), "{open}");
        // A world-writable directory above it, without the sticky bit.
        let sub = s.0.join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("p.json"), "{}").unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = trusted("profile", &sub.join("p.json"));
        assert_eq!(dir.status, Status::Fail);
        assert!(dir.text.contains("without the sticky bit"), "{dir}");
        // With it, as /tmp: others cannot replace what is ours there.
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(trusted("profile", &sub.join("p.json")).status, Status::Ok);
    }

    #[test]
    fn what_is_not_a_regular_file_fails_at_an_output_path() {
        let s = Scratch::new("outputs");
        std::fs::create_dir(s.0.join("sub")).unwrap();
        std::os::unix::fs::symlink(s.0.join("target"), s.0.join("link")).unwrap();
        crate::files::make_fifo(&s.0.join("fifo"));
        assert_eq!(
            output_file("metrics_file", Some(&s.0.join("m.prom"))).status,
            Status::Ok
        );
        for (name, kind) in [
            ("sub", "a directory"),
            ("link", "a symlink"),
            ("fifo", "a FIFO"),
        ] {
            let check = output_file("log_file", Some(&s.0.join(name)));
            assert_eq!(check.status, Status::Fail, "{check}");
            assert!(check.text.contains(kind), "{check}");
        }
        assert_eq!(output_file("log_file", None).status, Status::Ok);
    }

    #[test]
    fn an_output_in_a_directory_anyone_can_write_is_a_warning() {
        let s = Scratch::new("opendir");
        let sub = s.0.join("open");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
        let check = output_file("metrics_file", Some(&sub.join("m.prom")));
        assert_eq!(check.status, Status::Warn, "{check}");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(
            output_file("metrics_file", Some(&sub.join("m.prom"))).status,
            Status::Ok
        );
    }

    #[test]
    fn two_outputs_naming_one_file_fail() {
        let s = Scratch::new("same");
        let lock = s.0.join("poll.lock");
        std::fs::create_dir(s.0.join("d")).unwrap();
        let via_dots = s.0.join("d/../poll.lock");
        let checks = distinct(&[
            ("lock_file", Some(&lock)),
            ("metrics_file", Some(&via_dots)),
            ("log_file", Some(&s.0.join("poll.log"))),
            ("audit_metrics_file", None),
        ]);
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].text.contains("lock_file"), "{:?}", checks[0]);
        // A hard link is the same file under another name.
        std::fs::write(&lock, "").unwrap();
        std::fs::hard_link(&lock, s.0.join("other")).unwrap();
        let linked = distinct(&[
            ("lock_file", Some(&lock)),
            ("log_file", Some(&s.0.join("other"))),
        ]);
        assert_eq!(linked[0].status, Status::Fail);
        let fine = distinct(&[
            ("lock_file", Some(&lock)),
            ("log_file", Some(&s.0.join("poll.log"))),
        ]);
        assert_eq!(fine[0].status, Status::Ok);
    }
}
