//! The deployment files agree with each other and with the code: the cron
//! line and the systemd units run the same command from the same directory,
//! cron mails failures and is quiet on success, the unit runs as its own
//! user with a failure notification, its timeouts outlast the shutdown
//! grace, the hardened unit may write where the AWS sample profile writes,
//! logrotate signals instead of truncating, INSTALL.md's IAM policy covers
//! KMS, `systemd-analyze verify` finds nothing, and the sample holds no key.
//! The tarball and `deploy/install.sh` are checked by
//! `scripts/dist-smoke.sh` (`make dist`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqs_archive::config::{Settings, Source};
use sqs_archive::environment::Env;

use crate::support::*;

/// Where the units and the cron job run (the state directory).
const WORK_DIR: &str = "/var/lib/sqs-archive";
/// Where `deploy/install.sh` puts the binaries by default.
const BIN_DIR: &str = "/usr/local/bin";

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

/// The cron job lines (poll_messages first, then the fixity audit) and the
/// `NAME=value` lines.
fn crontab() -> (String, String, BTreeMap<String, String>) {
    let cron = read("deploy/crontab.example");
    let mut vars = BTreeMap::new();
    let mut jobs = Vec::new();
    for line in cron
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        if line.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
            jobs.push(line.to_string());
        } else {
            let (k, v) = line.split_once('=').expect("NAME=value");
            vars.insert(k.to_string(), v.to_string());
        }
    }
    assert_eq!(jobs.len(), 2, "a poll line and an audit line: {jobs:?}");
    let audit = jobs.pop().unwrap();
    (jobs.pop().unwrap(), audit, vars)
}

#[test]
fn cron_audits_the_archive_weekly_and_reports_only_problems() {
    let (_, audit, _) = crontab();
    let fields: Vec<&str> = audit.split_whitespace().collect();
    assert_ne!(fields[0], "*", "a fixed minute: {audit}");
    assert_eq!(fields[4], "0", "on Sundays: {audit}");
    assert!(
        audit.contains(&format!(
            "cd {WORK_DIR} && {BIN_DIR}/sqs_archive --profile aws audit "
        )),
        "{audit}"
    );
    assert!(
        audit.contains("--max-bytes-per-second "),
        "a live archive is audited at a bounded rate: {audit}"
    );
    assert!(!audit.contains('>'), "problems must reach MAILTO: {audit}");
    let s = aws_sample();
    assert!(
        s.audit_metrics_file.is_some(),
        "the sample profile writes the audit's metrics"
    );
}

#[test]
fn cron_and_systemd_run_the_same_command_from_the_state_dir() {
    let service = unit("deploy/sqs-archive-poll.service");
    let (job, _, vars) = crontab();
    let (schedule, command) = job.split_at(job.find(" cd ").expect("the job cds first"));
    assert_eq!(schedule, "*/5 * * * *");
    let command = command
        .trim()
        .strip_prefix(&format!("cd {WORK_DIR} && "))
        .unwrap_or_else(|| panic!("the job must cd to {WORK_DIR}: {job}"));
    assert!(command.starts_with(&format!("{BIN_DIR}/poll_messages ")));

    // Quiet on success, loud on failure: output goes to cron's mail, not to a file.
    assert!(
        !command.contains('>'),
        "cron output must reach MAILTO: {command}"
    );
    assert!(command.ends_with(" --quiet"), "{command}");
    let mailto = vars.get("MAILTO").expect("MAILTO is set");
    assert!(
        !mailto.trim_matches('"').is_empty(),
        "MAILTO must not be empty"
    );

    assert_eq!(service["Type"], "oneshot");
    assert_eq!(service["WorkingDirectory"], WORK_DIR);
    assert_eq!(
        service["ExecStart"],
        command.strip_suffix(" --quiet").unwrap(),
        "the unit and the cron job run the same command (journald takes the unit's info lines)"
    );
    assert_eq!(
        service["Environment"],
        format!("SQS_ARCHIVE_CONFIG_DIR={}", vars["SQS_ARCHIVE_CONFIG_DIR"]),
        "both look for the profile in the same place"
    );

    // Receiving stops before the next run is due.
    let every = 5 * 60;
    let timer = unit("deploy/sqs-archive-poll.timer");
    assert_eq!(seconds(&timer["OnUnitActiveSec"]), every);
    assert!(timer.contains_key("OnBootSec"));
    assert!(max_runtime(command) < every);
}

#[test]
fn service_runs_as_its_own_user_and_reports_failures() {
    let service = unit("deploy/sqs-archive-poll.service");
    assert_eq!(service["User"], "sqs-archive");
    assert_ne!(service["User"], "root");
    let on_failure = &service["OnFailure"];
    let template = on_failure
        .split_once('@')
        .map(|(name, _)| format!("deploy/{name}@.service"))
        .unwrap_or_else(|| format!("deploy/{on_failure}"));
    assert!(
        repo(&template).is_file(),
        "OnFailure={on_failure}: {template} is not shipped"
    );
    let notify = unit(&template);
    assert!(notify.contains_key("ExecStart"));
    for dir in ["StateDirectory", "LogsDirectory"] {
        assert!(service.contains_key(dir), "{dir}= is set");
    }
    assert!(
        !service
            .get("ReadWritePaths")
            .is_some_and(|p| p.contains("/run/lock")),
        "/run/lock is root-only on Fedora and upstream systemd"
    );
}

#[test]
fn logrotate_signals_instead_of_truncating() {
    let text = read("deploy/logrotate.example");
    let s = aws_sample();
    let log = s.log_file.expect("the sample logs to a file");
    assert!(
        text.contains(&format!("{} {{", log.display())),
        "logrotate.example rotates the sample's log_file {log:?}"
    );
    assert!(!text.contains("\n    copytruncate"), "no copytruncate");
    let post = text
        .split("postrotate")
        .nth(1)
        .and_then(|rest| rest.split("endscript").next())
        .expect("a postrotate script");
    // Only the pollers writing this log, never the handlers: the units'
    // main processes, no pkill by user or name.
    assert!(
        !post.contains("pkill") && !post.contains("killall"),
        "{post}"
    );
    for unit in ["sqs-archive-poll-loop.service", "sqs-archive-poll.service"] {
        assert!(post.contains(unit), "{unit} is signalled: {post}");
        assert!(repo(&format!("deploy/{unit}")).is_file());
    }
    assert!(
        post.contains("systemctl kill --kill-whom=main -s HUP"),
        "{post}"
    );
    // Scripts run as the `su` user, and systemctl kill needs root.
    assert!(!text.contains("\n    su "), "no su line");
}

#[test]
fn install_guide_covers_kms_and_the_install_layout() {
    let text = read("deploy/INSTALL.md");
    for needle in [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "/etc/sqs-archive",
        "/usr/local/bin",
        "deploy/install.sh",
        "--prefix",
        "doctor",
        "logrotate.example",
        "MAILTO",
        "*replace*",
        "sqs-archive-poll-loop.service",
        "sqs-archive.rules.yml",
        "SqsArchiveRequestsFailed",
        "grafana/sqs-archive.json",
    ] {
        assert!(text.contains(needle), "INSTALL.md lacks {needle}");
    }
    // The policy in INSTALL.md is valid JSON.
    let policy = text
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a json block");
    let policy: serde_json::Value = serde_json::from_str(policy).expect("the IAM policy parses");
    assert_eq!(policy["Version"], "2012-10-17");
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
    // LogsDirectory= and StateDirectory= are created writable under /var/log and /var/lib.
    for (key, root) in [
        ("LogsDirectory", "/var/log"),
        ("StateDirectory", "/var/lib"),
    ] {
        if let Some(dirs) = service.get(key) {
            writable.extend(dirs.split_whitespace().map(|d| Path::new(root).join(d)));
        }
    }
    let can_write = |path: &Path| writable.iter().any(|w| path.starts_with(w));
    let s = aws_sample();
    assert!(can_write(&s.archive_dir), "archive_dir {:?}", s.archive_dir);
    assert!(can_write(&s.lock_file), "lock_file {:?}", s.lock_file);
    let log = s.log_file.as_deref().expect("the sample logs to a file");
    assert!(can_write(log), "log_file {log:?}");
    let metrics = s
        .metrics_file
        .as_deref()
        .expect("the sample writes metrics");
    assert!(can_write(metrics), "metrics_file {metrics:?}");
    assert!(
        s.archive_dir.is_absolute() && s.source_dir.is_absolute(),
        "the AWS sample should not depend on the working directory for data"
    );
}

/// `systemd-analyze verify` on copies of the units that point at the built
/// binaries. Not optional: a machine without systemd-analyze fails here
/// (`.ci/run` installs the `systemd` package where it is missing).
#[test]
fn systemd_units_verify() {
    let version = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze is required: install the systemd package (.ci/run does)");
    assert!(version.status.success());
    let ws = Workspace::new("units");
    let bin = ws.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(POLL_MESSAGES, bin.join("poll_messages")).unwrap();
    let mut units = Vec::new();
    for name in [
        "sqs-archive-poll.service",
        "sqs-archive-poll.timer",
        "sqs-archive-poll-loop.service",
        "sqs-archive-notify@.service",
    ] {
        let text = read(&format!("deploy/{name}")).replace(BIN_DIR, &bin.display().to_string());
        ws.write(name, &text);
        units.push(name);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .current_dir(&ws.dir)
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

/// `--profile NAME`: `$SQS_ARCHIVE_CONFIG_DIR` first, then `./config`, then
/// `/etc/sqs-archive`; when none has it, exit 78 naming every place searched.
#[test]
fn profiles_are_searched_in_config_dir_then_dot_config_then_etc() {
    let mut ws = Workspace::new("search");
    let etc = ws.dir.join("etc-root");
    std::fs::create_dir_all(&etc).unwrap();
    ws.set_env([(
        "SQS_ARCHIVE_CONFIG_DIR".to_string(),
        etc.display().to_string(),
    )]);
    let queue = |dir: &str| format!("mock://{dir}");
    // The same profile in both places: SQS_ARCHIVE_CONFIG_DIR wins.
    ws.write(
        "etc-root/p.json",
        &format!(r#"{{"backend":"mock","mock_dir":"mock","request_queue_url":"{}","completion_queue_url":"{}"}}"#, queue("from-config-dir"), queue("x")),
    );
    ws.write(
        "config/p.json",
        &format!(r#"{{"backend":"mock","mock_dir":"mock","request_queue_url":"{}","completion_queue_url":"{}"}}"#, queue("from-dot-config"), queue("x")),
    );
    ws.sqs_archive(&["--profile", "p", "stats"])
        .run()
        .ok()
        .stdout_has("from-config-dir");
    // Only in ./config: found there.
    std::fs::remove_file(etc.join("p.json")).unwrap();
    ws.sqs_archive(&["--profile", "p", "stats"])
        .run()
        .ok()
        .stdout_has("from-dot-config");
    // Nowhere: one line naming the three places, exit 78.
    let out = ws.sqs_archive(&["--profile", "nowhere", "stats"]).run();
    out.exit(78)
        .one_line_error()
        .stderr_has(&format!("{}/nowhere.json", etc.display()))
        .stderr_has("config/nowhere.json")
        .stderr_has("/etc/sqs-archive/nowhere.json");
}

/// The `--loop` service: `Type=notify` with a watchdog, restarted on
/// failure, the same command as the oneshot unit (but `--loop`), the same
/// directories and hardening.
#[test]
fn loop_service_notifies_is_watched_and_hardened_like_the_oneshot() {
    let oneshot = unit("deploy/sqs-archive-poll.service");
    let service = unit("deploy/sqs-archive-poll-loop.service");
    assert_eq!(service["Type"], "notify");
    assert_eq!(service["NotifyAccess"], "main", "handlers may not notify");
    assert_eq!(service["Restart"], "on-failure");
    let watchdog = seconds(&service["WatchdogSec"]);
    assert!((10..=600).contains(&watchdog), "WatchdogSec={watchdog}");
    assert_eq!(service["WantedBy"], "multi-user.target");
    let loop_command = service["ExecStart"].clone();
    assert!(loop_command.ends_with(" --loop"), "{loop_command}");
    let oneshot_command = oneshot["ExecStart"].clone();
    let without_runtime = oneshot_command
        .split(" --max-runtime ")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        loop_command.strip_suffix(" --loop").unwrap(),
        without_runtime,
        "the same profile and keys as the oneshot unit"
    );
    assert!(service.contains_key("OnFailure"));
    // Everything but what makes it a oneshot run is the same: user,
    // directories, stopping, every hardening key.
    let differs = [
        "Type",
        "ExecStart",
        "TimeoutStartSec",
        "Description",
        "Documentation",
    ];
    for (key, value) in &oneshot {
        if differs.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(
            service.get(key),
            Some(value),
            "{key}= differs from sqs-archive-poll.service"
        );
    }
    let s = aws_sample();
    let stop = Duration::from_secs(seconds(&service["TimeoutStopSec"]));
    assert!(stop > s.shutdown_grace + s.kill_grace);
}

/// The notification unit can hand mail to a setuid or setgid submitter:
/// no DynamicUser= and nothing that implies NoNewPrivileges= (systemd.exec(5)).
#[test]
fn notify_unit_may_run_setuid_mail_submitters() {
    let notify = unit("deploy/sqs-archive-notify@.service");
    let user = notify.get("User").expect("a fixed user");
    assert_ne!(user, "root");
    assert!(
        notify["SupplementaryGroups"].contains("systemd-journal"),
        "it reads the failed unit's journal"
    );
    assert_ne!(
        notify.get("NoNewPrivileges").map(String::as_str),
        Some("yes")
    );
    for key in [
        "DynamicUser",
        "SystemCallFilter",
        "SystemCallArchitectures",
        "RestrictAddressFamilies",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "RestrictRealtime",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectKernelLogs",
        "ProtectClock",
        "ProtectHostname",
        "MemoryDenyWriteExecute",
        "LockPersonality",
    ] {
        assert!(
            !notify.contains_key(key),
            "{key}= implies NoNewPrivileges=: setuid mail submitters would fail"
        );
    }
}

/// `promtool`, required like systemd-analyze (`.ci/run` installs Debian's
/// `prometheus` package when it is missing).
fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(repo("deploy/prometheus"))
        .output()
        .expect("promtool is required: install the prometheus package (.ci/run does)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{report}");
    report
}

/// The alerting rules load, and their unit tests (synthetic series: a
/// failed request, a run that stopped succeeding, ...) pass.
#[test]
fn prometheus_rules_check_and_their_tests_pass() {
    let report = promtool(&["check", "rules", "sqs-archive.rules.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");
    let report = promtool(&["test", "rules", "sqs-archive.rules.test.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");
    let rules = read("deploy/prometheus/sqs-archive.rules.yml");
    for alert in [
        "time() - sqs_archive_last_success_timestamp_seconds > 3600",
        "sqs_archive_last_exit_code != 0",
        r#"increase(sqs_archive_messages_total{outcome=~"failed|invalid|undeliverable"}[1h]) > 0"#,
        r#"sqs_archive_queue_messages{queue="request",state="visible"}"#,
        "sqs_archive_audit_last_exit_code != 0",
        "time() - sqs_archive_audit_last_run_timestamp_seconds > 8 * 86400",
    ] {
        assert!(rules.contains(alert), "no alert on {alert}");
    }
    let tests = read("deploy/prometheus/sqs-archive.rules.test.yml");
    for alert in ["SqsArchiveRequestsFailed", "SqsArchiveNoSuccess"] {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "a test in which {alert} fires"
        );
    }
}

/// The `sqs_archive_...` names in a PromQL expression, histogram suffixes
/// taken off.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sqs_archive_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.push(base.to_string());
        rest = &tail[end..];
    }
    names
}

/// The Grafana dashboard parses, and queries only metrics the tools write;
/// so do the alerting rules.
#[test]
fn grafana_dashboard_and_rules_query_only_metrics_that_exist() {
    use sqs_archive::metrics::{AUDIT_METRICS, METRICS};
    let known: Vec<&str> = METRICS
        .iter()
        .chain(AUDIT_METRICS)
        .map(|m| m.name)
        .collect();
    let check = |what: &str, expr: &str| {
        for name in metric_names(expr) {
            assert!(
                known.contains(&name.as_str()),
                "{what} queries {name}, which no tool writes: {expr}"
            );
        }
    };
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/sqs-archive.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            check(&format!("panel {}", panel["title"]), expr);
            queried.extend(metric_names(expr));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["definition"].as_str() {
            check("a variable", query);
        }
    }
    // What the dashboard is for: outcomes, handler times, queues, last
    // success, audit problems.
    for name in [
        "sqs_archive_messages_total",
        "sqs_archive_handler_seconds",
        "sqs_archive_queue_messages",
        "sqs_archive_last_success_timestamp_seconds",
        "sqs_archive_audit_problems",
    ] {
        assert!(queried.iter().any(|q| q == name), "no panel shows {name}");
    }
    let rules = read("deploy/prometheus/sqs-archive.rules.yml");
    for line in rules.lines().filter(|l| l.contains("sqs_archive_")) {
        if !line.trim_start().starts_with('#') && !line.contains("description:") {
            check("the alerting rules", line);
        }
    }
    assert_eq!(
        metric_names("rate(sqs_archive_handler_seconds_bucket[5m])"),
        ["sqs_archive_handler_seconds"]
    );
}
