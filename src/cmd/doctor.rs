//! `sqs_archive doctor`: is this host ready to run `poll_messages`?
//!
//! Each check prints one line, `ok`, `warn` or `fail`, then what it found:
//! the profile parses; credentials resolve (the source is named, never a
//! secret); both queues answer `GetQueueAttributes`; the request queue's
//! visibility timeout and redrive policy agree with `handler_timeout` and
//! `max_receive_count`; the completion queue takes completions of
//! `max_message_size`; `source_dir` is readable and `archive_dir` writable
//! (with its filesystem and free space); the handler is an executable file;
//! `lock_file`, `metrics_file` and `log_file` can be written. The exit code
//! is 0 when nothing failed, 1 otherwise.
//!
//! The rules that compare settings with queue attributes are pure functions
//! ([`visibility`], [`redrive`], [`message_size`]); the rest looks at the
//! host and the queues, and changes nothing but a probe file it removes.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Backend, QueueRole, Settings, Source};
use crate::environment::Env;
use crate::exit::Exit;
use crate::queue::{QueueAttributes, RedrivePolicy};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub text: String,
}

impl Check {
    fn ok(text: impl Into<String>) -> Check {
        Check {
            status: Status::Ok,
            text: text.into(),
        }
    }
    fn warn(text: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            text: text.into(),
        }
    }
    fn fail(text: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            text: text.into(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "fail",
        };
        write!(f, "{word} {}", self.text)
    }
}

/// Runs every check, printing each line as it is known; 0 when none failed, else 1.
pub fn run(source: &Source, env: Env, out: &mut dyn Write) -> Exit {
    let mut failed = 0;
    let mut report = |check: Check| {
        failed += usize::from(check.status == Status::Fail);
        // A closed stdout must not hide the verdict: the exit code still says it.
        let _ = writeln!(out, "{check}");
        let _ = out.flush();
    };
    let settings = match Settings::load(source, env) {
        Ok(s) => {
            let file = s
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "no profile file, environment only".into());
            report(Check::ok(format!("profile: {file} parses")));
            s
        }
        Err(e) => {
            report(Check::fail(format!("profile: {e}")));
            return verdict(1);
        }
    };
    for check in checks(&settings) {
        report(check);
    }
    verdict(failed)
}

/// The exit code, and on failure the one stderr line every failing command
/// prints (the report itself is on stdout, and may be closed or piped away).
fn verdict(failed: usize) -> Exit {
    if failed == 0 {
        return Exit::Ok;
    }
    let s = if failed == 1 { "" } else { "s" };
    crate::stdio::stderr_line(format_args!(
        "sqs_archive: error: doctor: {failed} check{s} failed"
    ));
    Exit::Failure
}

/// Every check after the profile, in the order printed.
fn checks(s: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match s.backend {
        Backend::Mock => Check::ok("credentials: not needed (mock backend)"),
        Backend::Sqs => {
            let chain =
                crate::aws::credentials::CredentialChain::new(s.env.clone(), s.config_keys.clone());
            match chain.describe() {
                Ok(text) => Check::ok(format!("credentials: {text}")),
                Err(e) => Check::fail(format!("credentials: {e}")),
            }
        }
    });
    checks.extend(queue_checks(s));
    checks.push(readable_dir("source_dir", &s.source_dir));
    checks.push(archive_dir(&s.archive_dir));
    checks.push(handler(s));
    checks.push(writable_file("lock_file", Some(&s.lock_file), true));
    checks.push(writable_file(
        "metrics_file",
        s.metrics_file.as_deref(),
        false,
    ));
    checks.push(writable_file("log_file", s.log_file.as_deref(), false));
    checks
}

fn queue_checks(s: &Settings) -> Vec<Check> {
    let client = match crate::queue::connect::connect(s) {
        Ok(c) => c,
        Err(e) => return vec![Check::fail(format!("queues: no client: {e}"))],
    };
    let mut checks = Vec::new();
    for (name, role) in [
        ("request", QueueRole::Request),
        ("completion", QueueRole::Completion),
    ] {
        let url = match s.queue_url(role) {
            Ok(url) => url,
            Err(e) => {
                checks.push(Check::fail(format!("{name} queue: {e}")));
                continue;
            }
        };
        let shown = crate::text::url(url);
        let attributes = match client.queue_attributes(url) {
            Ok(a) => a,
            Err(e) => {
                checks.push(Check::fail(format!("{name} queue {shown}: {e}")));
                continue;
            }
        };
        checks.push(Check::ok(format!(
            "{name} queue {shown} answers GetQueueAttributes ({} visible, {} in flight, {} delayed)",
            attributes.stats.visible, attributes.stats.in_flight, attributes.stats.delayed
        )));
        // The mock queue has no visibility default, redrive policy or size limit to compare.
        if s.backend == Backend::Mock {
            continue;
        }
        match role {
            QueueRole::Request => {
                checks.push(visibility(&attributes, s.handler_timeout.as_secs()));
                checks.push(redrive(
                    attributes.redrive_policy.as_ref(),
                    s.max_receive_count,
                    s.use_redrive_policy,
                ));
            }
            QueueRole::Completion => {
                checks.push(message_size(&attributes, s.max_message_size));
            }
        }
    }
    checks
}

/// The request queue's visibility timeout against `handler_timeout`.
pub fn visibility(a: &QueueAttributes, handler_timeout: u64) -> Check {
    match a.visibility_timeout {
        None => Check::warn("request queue visibility timeout: the queue does not say"),
        Some(v) if u64::from(v) < handler_timeout => Check::fail(format!(
            "request queue visibility timeout {v} s is shorter than handler_timeout {handler_timeout} s: \
             a request whose poll_messages stops extending it (a crash, a lost connection) is delivered again \
             while its handler still runs; raise the queue's VisibilityTimeout or lower handler_timeout"
        )),
        Some(v) => Check::ok(format!(
            "request queue visibility timeout {v} s covers handler_timeout {handler_timeout} s"
        )),
    }
}

/// The request queue's redrive policy against `max_receive_count`.
pub fn redrive(policy: Option<&RedrivePolicy>, max_receive_count: u32, use_policy: bool) -> Check {
    match (policy, use_policy) {
        (None, false) => Check::ok(format!(
            "request queue has no redrive policy; poll_messages gives a request up after {max_receive_count} receives"
        )),
        (None, true) => Check::fail(
            "use_redrive_policy is true but the request queue has no RedrivePolicy: \
             failing requests would be retried for ever",
        ),
        (Some(p), true) => Check::ok(format!(
            "request queue moves failing requests to {} after {} receives (use_redrive_policy)",
            p.dead_letter_target_arn, p.max_receive_count
        )),
        (Some(p), false) if p.max_receive_count < max_receive_count => Check::fail(format!(
            "request queue RedrivePolicy maxReceiveCount {} is below max_receive_count {max_receive_count}: \
             SQS moves a failing request to {} before poll_messages gives it up, and no failure completion is sent; \
             lower max_receive_count or set use_redrive_policy",
            p.max_receive_count, p.dead_letter_target_arn
        )),
        (Some(p), false) => Check::ok(format!(
            "request queue RedrivePolicy maxReceiveCount {} leaves room for max_receive_count {max_receive_count}",
            p.max_receive_count
        )),
    }
}

/// The completion queue's `MaximumMessageSize` against `max_message_size`.
pub fn message_size(a: &QueueAttributes, max_message_size: usize) -> Check {
    match a.maximum_message_size {
        None => Check::warn("completion queue MaximumMessageSize: the queue does not say"),
        Some(m) if (m as usize) < max_message_size => Check::fail(format!(
            "completion queue MaximumMessageSize {m} bytes is below max_message_size {max_message_size}: \
             large completions would be refused; set max_message_size to {m}"
        )),
        Some(m) => Check::ok(format!(
            "completion queue MaximumMessageSize {m} bytes takes completions of max_message_size {max_message_size}"
        )),
    }
}

fn readable_dir(key: &str, dir: &Path) -> Check {
    match std::fs::read_dir(dir) {
        Ok(_) => Check::ok(format!("{key} {} is readable", dir.display())),
        Err(e) => Check::fail(format!("{key} {} is not readable: {e}", dir.display())),
    }
}

fn archive_dir(dir: &Path) -> Check {
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Check::fail(format!("archive_dir {} {why}", dir.display()));
    }
    if let Err(e) = probe(dir) {
        return Check::fail(format!(
            "archive_dir {} is not writable: {e}",
            dir.display()
        ));
    }
    let mount = std::fs::canonicalize(dir)
        .ok()
        .and_then(|real| {
            let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            mount_of(&info, &real)
        })
        .map(|(point, fstype)| format!(" on {fstype} at {point}"))
        .unwrap_or_default();
    let free = match rustix::fs::statvfs(dir) {
        Ok(v) => format!(", {} free", human(v.f_bavail.saturating_mul(v.f_frsize))),
        Err(_) => String::new(),
    };
    Check::ok(format!(
        "archive_dir {} is writable{mount}{free}",
        dir.display()
    ))
}

/// Creates and removes a file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".sqs-archive-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)
}

/// The mount point and filesystem type holding `path`, from `/proc/self/mountinfo`.
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?.replace("\\040", " ");
            let fstype = right.split(' ').next()?;
            path.starts_with(&point)
                .then(|| (point.clone(), fstype.to_string()))
        })
        .max_by_key(|(point, _)| point.len())
}

fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

fn handler(s: &Settings) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let program = match &s.handler {
        Some(argv) => PathBuf::from(&argv[0]),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("process_message"),
            Err(e) => return Check::fail(format!("handler: cannot find own executable: {e}")),
        },
    };
    // A bare name is looked up in PATH, as the poller's spawn does.
    let found = if program.components().count() == 1 {
        s.env
            .get("PATH")
            .unwrap_or("/usr/bin:/bin")
            .split(':')
            .map(|d| Path::new(d).join(&program))
            .find(|p| p.is_file())
    } else {
        Some(program.clone())
    };
    let Some(path) = found else {
        return Check::fail(format!("handler {} is not in PATH", program.display()));
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Check::ok(format!("handler {} is executable", path.display()))
        }
        Ok(m) if m.is_file() => Check::fail(format!(
            "handler {} is not executable (mode {:o})",
            path.display(),
            m.permissions().mode() & 0o777
        )),
        Ok(_) => Check::fail(format!("handler {} is not a file", path.display())),
        Err(e) => Check::fail(format!("handler {}: {e}", path.display())),
    }
}

/// A file the poller creates or appends to: its directory must let it, and
/// nothing that cannot be one may stand at its name (`regular_only`: the lock
/// refuses a symlink or FIFO, see [`crate::files::try_lock`]).
fn writable_file(key: &str, path: Option<&Path>, regular_only: bool) -> Check {
    let Some(path) = path else {
        return Check::ok(format!("{key} not set"));
    };
    if path.is_dir() {
        return Check::fail(format!("{key} {} is a directory", path.display()));
    }
    if regular_only && std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Check::fail(format!(
            "{key} {} is not a regular file (a symlink, FIFO or device)",
            path.display()
        ));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Check::fail(format!(
            "{key} {}: directory {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    match probe(dir) {
        Ok(()) => Check::ok(format!("{key} {} can be written", path.display())),
        Err(e) => Check::fail(format!(
            "{key} {}: cannot create files in {}: {e}",
            path.display(),
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueStats;

    fn attributes(visibility: Option<u32>, size: Option<u32>) -> QueueAttributes {
        QueueAttributes {
            stats: QueueStats::default(),
            maximum_message_size: size,
            visibility_timeout: visibility,
            redrive_policy: None,
        }
    }

    #[test]
    fn a_file_check_fails_on_what_cannot_be_that_file() {
        let dir = std::env::temp_dir().join(format!("doctor-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("elsewhere", dir.join("link")).unwrap();
        assert_eq!(
            writable_file("metrics_file", Some(&dir.join("m.prom")), false).status,
            Status::Ok
        );
        assert_eq!(
            writable_file("metrics_file", Some(&dir.join("sub")), false).status,
            Status::Fail
        );
        assert_eq!(
            writable_file("lock_file", Some(&dir.join("sub")), true).status,
            Status::Fail
        );
        assert_eq!(
            writable_file("lock_file", Some(&dir.join("link")), true).status,
            Status::Fail
        );
        assert_eq!(
            writable_file("log_file", Some(&dir.join("link")), false).status,
            Status::Ok
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn visibility_must_cover_the_handler_timeout() {
        assert_eq!(
            visibility(&attributes(Some(30), None), 3600).status,
            Status::Fail
        );
        assert_eq!(
            visibility(&attributes(Some(3600), None), 3600).status,
            Status::Ok
        );
        assert_eq!(
            visibility(&attributes(None, None), 3600).status,
            Status::Warn
        );
    }

    #[test]
    fn redrive_must_not_move_requests_before_they_are_given_up() {
        let policy = |n| RedrivePolicy {
            dead_letter_target_arn: "arn:aws:sqs:eu-west-1:1:dlq".into(),
            max_receive_count: n,
        };
        assert_eq!(redrive(Some(&policy(3)), 5, false).status, Status::Fail);
        assert_eq!(redrive(Some(&policy(5)), 5, false).status, Status::Ok);
        assert_eq!(redrive(Some(&policy(3)), 5, true).status, Status::Ok);
        assert_eq!(redrive(None, 5, true).status, Status::Fail);
        assert_eq!(redrive(None, 5, false).status, Status::Ok);
    }

    #[test]
    fn completion_queue_takes_the_largest_completion() {
        assert_eq!(
            message_size(&attributes(None, Some(262_144)), 1 << 20).status,
            Status::Fail
        );
        assert_eq!(
            message_size(&attributes(None, Some(1 << 20)), 1 << 20).status,
            Status::Ok
        );
    }

    #[test]
    fn finds_the_mount_of_a_path() {
        let info = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /srv/archive rw - xfs /dev/sdb1 rw\n\
                    31 22 0:6 / /srv/arch rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_of(info, Path::new("/srv/archive/store")),
            Some(("/srv/archive".into(), "xfs".into()))
        );
        assert_eq!(
            mount_of(info, Path::new("/srv/archived")),
            Some(("/".into(), "ext4".into())),
            "a path component, not a string prefix"
        );
    }

    #[test]
    fn lines_start_with_the_status() {
        assert_eq!(Check::fail("x").to_string(), "fail x");
        assert_eq!(Check::ok("x").to_string(), "ok   x");
    }
}
