//! The deployment files agree with each other and with the code: the cron
//! line and the systemd units run the same command from the same directory,
//! their timeouts outlast the shutdown grace, the hardened unit may write
//! where the AWS sample profile writes, and the sample holds no key. The
//! tarball itself is checked by `scripts/dist-smoke.sh` (`make dist`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqs_archive::config::{Settings, Source};
use sqs_archive::env::Env;

use crate::support::*;

const INSTALL_DIR: &str = "/opt/sqs-archive";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `Key=value` lines of a unit file (the last one wins, as in systemd, except
/// that repeated list keys are joined with a space).
fn unit(rel: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for line in read(rel).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';', '[']) {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{rel}: not key=value: {line}"));
        keys.entry(k.to_string())
            .and_modify(|old: &mut String| {
                old.push(' ');
                old.push_str(v);
            })
            .or_insert_with(|| v.to_string());
    }
    keys
}

/// `90`, `90s`, `5min`, `70min` → seconds.
fn seconds(value: &str) -> u64 {
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("not a time span: {value}"));
    match &value[digits.len()..] {
        "" | "s" => n,
        "min" => n * 60,
        "h" => n * 3600,
        other => panic!("unit {other:?} in {value}"),
    }
}

/// The `--max-runtime` of a poll_messages command line.
fn max_runtime(command: &str) -> u64 {
    let mut words = command.split_whitespace();
    words
        .by_ref()
        .find(|w| *w == "--max-runtime")
        .unwrap_or_else(|| panic!("no --max-runtime in {command}"));
    words.next().unwrap().parse().unwrap()
}

fn aws_sample() -> Settings {
    let source = Source {
        config: Some(repo("config/aws.example.json")),
        ..Source::default()
    };
    Settings::load(&source, Env::from_pairs::<&str, &str>([])).expect("the AWS sample loads")
}

#[test]
fn aws_sample_profile_has_placeholders_and_no_keys() {
    let s = aws_sample();
    assert!(s.config_keys.access_key_id.is_none());
    assert!(s.config_keys.secret_access_key.is_none());
    assert!(s.config_keys.session_token.is_none());
    let text = read("config/aws.example.json");
    assert!(
        !text.contains("aws_"),
        "credentials do not belong in the sample"
    );
    for url in [&s.request_queue_url, &s.completion_queue_url] {
        let url = url.as_deref().expect("queue URLs are in the sample");
        assert!(url.contains("123456789012"), "placeholder account: {url}");
    }
}

#[test]
fn cron_and_systemd_run_the_same_command_from_the_install_dir() {
    let service = unit("deploy/sqs-archive-poll.service");
    let cron = read("deploy/crontab.example");
    let job = cron
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit() || c == '*'))
        .expect("a job line");
    let (schedule, command) = job.split_at(job.find(" cd ").expect("the job cds first"));
    assert_eq!(schedule, "*/5 * * * *");
    let command = command
        .trim()
        .strip_prefix(&format!("cd {INSTALL_DIR} && "))
        .unwrap_or_else(|| panic!("the job must cd to {INSTALL_DIR}: {job}"));
    let command = command.split(" >>").next().unwrap();

    assert_eq!(service["Type"], "oneshot");
    assert_eq!(service["WorkingDirectory"], INSTALL_DIR);
    assert_eq!(
        service["ExecStart"],
        format!("{INSTALL_DIR}/{command}"),
        "the unit and the cron job run the same command"
    );

    // Receiving stops before the next run is due.
    let every = 5 * 60;
    let timer = unit("deploy/sqs-archive-poll.timer");
    assert_eq!(seconds(&timer["OnUnitActiveSec"]), every);
    assert!(timer.contains_key("OnBootSec"));
    assert!(max_runtime(command) < every);
}

#[test]
fn unit_timeouts_outlast_the_grace_periods_and_handlers() {
    let service = unit("deploy/sqs-archive-poll.service");
    let s = aws_sample();
    assert_eq!(service["KillSignal"], "SIGTERM");
    assert_eq!(
        service["KillMode"], "mixed",
        "SIGTERM to poll_messages alone, so running handlers get their grace"
    );
    let stop = Duration::from_secs(seconds(&service["TimeoutStopSec"]));
    assert!(
        stop > s.shutdown_grace + s.kill_grace,
        "TimeoutStopSec {stop:?} vs shutdown grace {:?} + kill grace {:?}",
        s.shutdown_grace,
        s.kill_grace
    );
    let start = Duration::from_secs(seconds(&service["TimeoutStartSec"]));
    let longest_run =
        Duration::from_secs(max_runtime(&service["ExecStart"])) + s.handler_timeout + s.kill_grace;
    assert!(
        start > longest_run,
        "TimeoutStartSec {start:?} vs {longest_run:?}"
    );
}

#[test]
fn hardened_unit_may_write_where_the_aws_sample_writes() {
    let service = unit("deploy/sqs-archive-poll.service");
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ] {
        assert_eq!(service[key], value, "{key}");
    }
    let mut writable: Vec<PathBuf> = service["ReadWritePaths"]
        .split_whitespace()
        .map(|p| PathBuf::from(p.trim_start_matches(['-', '+'])))
        .collect();
    // LogsDirectory= and RuntimeDirectory= are created writable under /var/log and /run.
    if let Some(logs) = service.get("LogsDirectory") {
        writable.extend(
            logs.split_whitespace()
                .map(|d| Path::new("/var/log").join(d)),
        );
    }
    let can_write = |path: &Path| {
        // /var/lock is a link to /run/lock on every current distribution.
        let path = path
            .strip_prefix("/var/lock")
            .map(|rest| Path::new("/run/lock").join(rest))
            .unwrap_or_else(|_| path.to_path_buf());
        writable.iter().any(|w| path.starts_with(w))
    };
    let s = aws_sample();
    assert!(can_write(&s.archive_dir), "archive_dir {:?}", s.archive_dir);
    assert!(can_write(&s.lock_file), "lock_file {:?}", s.lock_file);
    let log = s.log_file.as_deref().expect("the sample logs to a file");
    assert!(can_write(log), "log_file {log:?}");
    assert!(
        s.archive_dir.is_absolute() && s.source_dir.is_absolute(),
        "the AWS sample should not depend on the working directory for data"
    );
}

/// `systemd-analyze verify` on copies of the units that point at the built
/// binary; skipped (with a note) where systemd-analyze is not installed.
#[test]
fn systemd_units_verify() {
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze not installed: units not verified");
        return;
    };
    assert!(version.status.success());
    let ws = Workspace::new("units");
    let root = ws.path("opt");
    std::fs::create_dir_all(ws.dir.join("opt/bin")).unwrap();
    std::os::unix::fs::symlink(POLL_MESSAGES, ws.dir.join("opt/bin/poll_messages")).unwrap();
    let mut units = Vec::new();
    for name in ["sqs-archive-poll.service", "sqs-archive-poll.timer"] {
        let text = read(&format!("deploy/{name}")).replace(INSTALL_DIR, &root);
        ws.write(name, &text);
        units.push(ws.path(name));
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It exits 0 on unknown keys and bad values, so any output is a finding.
    assert!(out.status.success() && report.trim().is_empty(), "{report}");
}
