//! The readiness checks: credentials, the queues and what their attributes
//! mean for the poller, `source_dir`, `archive_dir`, the handler.
//!
//! The rules comparing settings with queue attributes are pure functions
//! ([`visibility`], [`redrive`], [`message_size`]). Only a setting the queue
//! really governs can fail: `poll_messages` asks for `visibility_timeout`
//! with every receive and extends it while a handler runs, and shrinks
//! completions to the completion queue's `MaximumMessageSize`, so neither
//! queue default makes a correct setup fail.

use std::path::{Path, PathBuf};

use super::report::Check;
use crate::config::{Backend, QueueRole, Settings};
use crate::queue::{QueueAttributes, RedrivePolicy};

pub(super) fn credentials(s: &Settings) -> Check {
    match s.backend {
        Backend::Mock => Check::ok("credentials", "credentials: not needed (mock backend)"),
        Backend::Sqs => {
            let chain =
                crate::aws::credentials::CredentialChain::new(s.env.clone(), s.config_keys.clone());
            match chain.describe() {
                Ok(text) => Check::ok("credentials", format!("credentials: {text}")),
                Err(e) => Check::fail("credentials", format!("credentials: {e}")),
            }
        }
    }
}

/// True when the profile file holds a secret key or session token.
pub(super) fn holds_secret(s: &Settings) -> bool {
    s.config_keys.secret_access_key.is_some() || s.config_keys.session_token.is_some()
}

pub(super) fn queues(s: &Settings) -> Vec<Check> {
    let client = match crate::connect::connect(s) {
        Ok(c) => c,
        Err(e) => return vec![Check::fail("queues", format!("queues: no client: {e}"))],
    };
    let mut checks = Vec::new();
    for (name, role) in [
        ("request", QueueRole::Request),
        ("completion", QueueRole::Completion),
    ] {
        let check_name = format!("{name} queue");
        let url = match s.queue_url(role) {
            Ok(url) => url,
            Err(e) => {
                checks.push(Check::fail(check_name, format!("{name} queue: {e}")));
                continue;
            }
        };
        let shown = crate::text::url(url);
        let attributes = match client.queue_attributes(url) {
            Ok(a) => a,
            Err(e) => {
                checks.push(Check::fail(
                    check_name,
                    format!("{name} queue {shown}: {e}"),
                ));
                continue;
            }
        };
        checks.push(Check::ok(
            check_name,
            format!(
                "{name} queue {shown} answers GetQueueAttributes ({} visible, {} in flight, {} delayed)",
                attributes.stats.visible, attributes.stats.in_flight, attributes.stats.delayed
            ),
        ));
        // The mock queue has no visibility default, redrive policy or size limit to compare.
        if s.backend == Backend::Mock {
            continue;
        }
        match role {
            QueueRole::Request => {
                checks.push(visibility(&attributes, s.visibility_timeout));
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

/// The request queue's `VisibilityTimeout`, for information only: every
/// receive names `visibility_timeout` itself, and a running handler's
/// request is kept hidden by extending it, so the queue's default never
/// decides when a request comes back.
pub fn visibility(a: &QueueAttributes, visibility_timeout: u32) -> Check {
    let queue = match a.visibility_timeout {
        Some(v) => format!("VisibilityTimeout {v} s"),
        None => "VisibilityTimeout (not reported)".to_string(),
    };
    Check::ok(
        "request queue visibility",
        format!(
            "request queue {queue} is not used: poll_messages asks for visibility_timeout \
             {visibility_timeout} s with every receive and extends it while a handler runs"
        ),
    )
}

/// The request queue's redrive policy against `max_receive_count`.
pub fn redrive(policy: Option<&RedrivePolicy>, max_receive_count: u32, use_policy: bool) -> Check {
    let name = "request queue redrive";
    match (policy, use_policy) {
        (None, false) => Check::ok(
            name,
            format!(
                "request queue has no redrive policy; poll_messages gives a request up after {max_receive_count} receives"
            ),
        ),
        (None, true) => Check::fail(
            name,
            "use_redrive_policy is true but the request queue has no RedrivePolicy: \
             failing requests would be retried for ever",
        ),
        (Some(p), true) => Check::ok(
            name,
            format!(
                "request queue moves failing requests to {} after {} receives (use_redrive_policy)",
                p.dead_letter_target_arn, p.max_receive_count
            ),
        ),
        (Some(p), false) if p.max_receive_count < max_receive_count => Check::fail(
            name,
            format!(
                "request queue RedrivePolicy maxReceiveCount {} is below max_receive_count {max_receive_count}: \
             SQS moves a failing request to {} before poll_messages gives it up, and no failure completion is sent; \
             lower max_receive_count or set use_redrive_policy",
                p.max_receive_count, p.dead_letter_target_arn
            ),
        ),
        (Some(p), false) => Check::ok(
            name,
            format!(
                "request queue RedrivePolicy maxReceiveCount {} leaves room for max_receive_count {max_receive_count}",
                p.max_receive_count
            ),
        ),
    }
}

/// The completion queue's `MaximumMessageSize` against `max_message_size`:
/// `poll_messages` reads it and shrinks larger completions to fit (they then
/// identify their request without the per-file details), so a smaller
/// queue limit is information, not a failure.
pub fn message_size(a: &QueueAttributes, max_message_size: usize) -> Check {
    let name = "completion queue size";
    match a.maximum_message_size {
        None => Check::warn(
            name,
            "completion queue MaximumMessageSize: the queue does not say",
        ),
        Some(m) if (m as usize) < max_message_size => Check::ok(
            name,
            format!(
                "completion queue MaximumMessageSize {m} bytes (max_message_size {max_message_size}): \
                 poll_messages shrinks larger completions to fit"
            ),
        ),
        Some(m) => Check::ok(
            name,
            format!(
                "completion queue MaximumMessageSize {m} bytes takes completions of max_message_size {max_message_size}"
            ),
        ),
    }
}

pub(super) fn readable_dir(key: &str, dir: &Path) -> Check {
    match std::fs::read_dir(dir) {
        Ok(_) => Check::ok(key, format!("{key} {} is readable", dir.display())),
        Err(e) => Check::fail(key, format!("{key} {} is not readable: {e}", dir.display())),
    }
}

pub(super) fn archive_dir(dir: &Path) -> Check {
    let name = "archive_dir";
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Check::fail(name, format!("archive_dir {} {why}", dir.display()));
    }
    if let Err(e) = probe(dir) {
        return Check::fail(
            name,
            format!("archive_dir {} is not writable: {e}", dir.display()),
        );
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
    Check::ok(
        name,
        format!("archive_dir {} is writable{mount}{free}", dir.display()),
    )
}

/// Creates and removes a file in `dir`.
pub(super) fn probe(dir: &Path) -> std::io::Result<()> {
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

/// The program the poller would start: the handler's first word (a bare
/// name looked up in `PATH`, as the poller's spawn does), or
/// `process_message` next to this program; a failed check when there is none.
pub(super) fn handler_path(s: &Settings) -> Result<PathBuf, Check> {
    let program = match &s.handler {
        Some(argv) => PathBuf::from(&argv[0]),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("process_message"),
            Err(e) => {
                return Err(Check::fail(
                    "handler",
                    format!("handler: cannot find own executable: {e}"),
                ));
            }
        },
    };
    if program.components().count() != 1 {
        return Ok(program);
    }
    s.env
        .get("PATH")
        .unwrap_or("/usr/bin:/bin")
        .split(':')
        .map(|d| Path::new(d).join(&program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Check::fail(
                "handler",
                format!("handler {} is not in PATH", program.display()),
            )
        })
}

pub(super) fn handler(found: &Result<PathBuf, Check>) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let path = match found {
        Ok(path) => path,
        Err(check) => return check.clone(),
    };
    let name = "handler";
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Check::ok(name, format!("handler {} is executable", path.display()))
        }
        Ok(m) if m.is_file() => Check::fail(
            name,
            format!(
                "handler {} is not executable (mode {:o})",
                path.display(),
                m.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => Check::fail(name, format!("handler {} is not a file", path.display())),
        Err(e) => Check::fail(name, format!("handler {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
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
    fn the_queues_visibility_default_never_fails_a_setup() {
        // moto's and SQS's default of 30 s against the default handler_timeout of 3600 s.
        let check = visibility(&attributes(Some(30), None), 60);
        assert_eq!(check.status, Status::Ok);
        assert!(check.text.contains("visibility_timeout 60 s"), "{check}");
        assert_eq!(visibility(&attributes(None, None), 60).status, Status::Ok);
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
    fn a_smaller_completion_queue_is_information_the_poller_shrinks_to() {
        let smaller = message_size(&attributes(None, Some(262_144)), 1 << 20);
        assert_eq!(smaller.status, Status::Ok);
        assert!(smaller.text.contains("shrinks"), "{smaller}");
        assert_eq!(
            message_size(&attributes(None, Some(1 << 20)), 1 << 20).status,
            Status::Ok
        );
        assert_eq!(
            message_size(&attributes(None, None), 1 << 20).status,
            Status::Warn
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
        assert_eq!(Check::fail("x", "x").to_string(), "fail x");
        assert_eq!(Check::ok("x", "x").to_string(), "ok   x");
    }
}
