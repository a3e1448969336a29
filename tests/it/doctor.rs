//! `sqs_archive doctor` against moto: a host that is ready passes (exit 0),
//! a default profile against moto's default queues too; one with a missing
//! queue, an archive directory it cannot write and a FIFO for a log fails
//! (exit 1), naming all three. Against the mock queue: each hazard another
//! user could exploit (a world-writable or foreign profile, `.env`, handler
//! or directory above them; an output path that is not a regular file or
//! sits in a directory anyone can write; two outputs naming one file) is
//! flagged, in `--json` too. `sqs_archive config` names where each value
//! came from and never prints a secret.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

/// A workspace whose profile `t` points at fresh moto queues, with every
/// path the doctor checks in place.
fn ready_host(name: &str) -> (Workspace, Server, serde_json::Value) {
    let server = moto();
    let mut ws = Workspace::new(name);
    ws.set_env(server.key_env());
    std::fs::create_dir_all(ws.dir.join("state")).unwrap();
    let mut keys = server.profile(&server.queue("req", false), &server.queue("done", false));
    // moto's queues: VisibilityTimeout 30 s, MaximumMessageSize 256 KiB.
    keys["handler_timeout"] = json!(30);
    keys["max_message_size"] = json!(262_144);
    keys["metrics_file"] = json!(ws.path("state/sqs_archive.prom"));
    keys["log_file"] = json!(ws.path("state/poll.log"));
    ws.profile("t", keys.clone());
    (ws, server, keys)
}

#[test]
fn doctor_passes_a_ready_host() {
    let (ws, _, _) = ready_host("doctor-ok");
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.ok();
    let report = out.stdout();
    assert!(!report.contains("fail"), "{report}");
    for needle in [
        "ok   profile:",
        "ok   credentials: ",
        "ok   request queue ",
        "ok   completion queue ",
        "answers GetQueueAttributes",
        "ok   archive_dir ",
        " free",
        "ok   handler ",
        "ok   lock_file ",
        "ok   metrics_file ",
    ] {
        assert!(report.contains(needle), "{needle:?} not in:\n{report}");
    }
    assert!(
        !report.contains(&moto().secret_access_key),
        "no secret in the report"
    );
    for line in report.lines() {
        assert!(
            ["ok   ", "warn ", "fail "]
                .iter()
                .any(|p| line.starts_with(p)),
            "one status per line: {line}"
        );
    }
}

#[test]
fn doctor_fails_naming_each_problem() {
    let (ws, server, mut keys) = ready_host("doctor-bad");
    let missing = server.missing_queue_url();
    keys["completion_queue_url"] = json!(missing);
    // A file where the archive directory should be: not writable even for root.
    ws.write("not-a-dir", "");
    keys["archive_dir"] = json!(ws.path("not-a-dir"));
    // A log file that is a FIFO: appending to it would block for ever.
    fifo(&ws.dir.join("state/poll.log"));
    ws.profile("t", keys);
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.exit(1);
    let report = out.stdout();
    let fails: Vec<&str> = report.lines().filter(|l| l.starts_with("fail")).collect();
    assert_eq!(fails.len(), 3, "{report}");
    assert!(
        fails
            .iter()
            .any(|l| l.contains("completion queue") && l.contains(&missing)),
        "{report}"
    );
    assert!(
        fails
            .iter()
            .any(|l| l.contains("archive_dir") && l.contains("not a directory")),
        "{report}"
    );
    assert!(
        fails
            .iter()
            .any(|l| l.contains("log_file") && l.contains("a FIFO")),
        "{report}"
    );
    assert!(
        report.contains("ok   request queue "),
        "the other queue is still checked:\n{report}"
    );
}

#[test]
fn doctor_reports_a_broken_profile_as_a_failed_check() {
    let ws = Workspace::new("doctor-profile");
    ws.write("config/t.json", "{\"wait_time_seconds\": 99}");
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.exit(1);
    assert!(
        out.stdout().starts_with("fail profile: ") && out.stdout().contains("wait_time_seconds"),
        "{}",
        out.stdout()
    );
}

#[test]
fn doctor_masks_userinfo_in_queue_urls() {
    let ws = Workspace::new("doctor-userinfo");
    ws.mock_profile(
        "t",
        json!({
            "request_queue_url": "mock://user:pa55word@host/requests",
            "completion_queue_url": "mock://user:pa55word@host/bad name",
        }),
    );
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.exit(1);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(!all.contains("pa55word"), "{all}");
    assert!(
        all.contains("ok   request queue mock://***@host/requests answers"),
        "{all}"
    );
}

#[test]
fn doctor_passes_a_default_profile_against_motos_default_queues() {
    let server = moto();
    let mut ws = Workspace::new("doctor-default");
    ws.set_env(server.key_env());
    // The default source_dir, archive_dir and lock_file, relative to the working directory.
    for dir in ["examples/source", "var/archive"] {
        std::fs::create_dir_all(ws.dir.join(dir)).unwrap();
    }
    let mut keys = server.profile(&server.queue("req", false), &server.queue("done", false));
    // Nothing but where the queues are: every other key has its default
    // (handler_timeout 3600 s against moto's VisibilityTimeout of 30 s).
    for key in [
        "max_attempts",
        "source_dir",
        "archive_dir",
        "lock_file",
        "mock_dir",
        "wait_time_seconds",
        "visibility_timeout",
        "handler",
    ] {
        keys[key] = Value::Null;
    }
    ws.profile("t", keys);
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.ok();
    let report = out.stdout();
    assert!(!report.contains("fail"), "{report}");
    assert!(
        report.contains("VisibilityTimeout 30 s is not used")
            && report.contains("visibility_timeout 60 s"),
        "the queue's default is told, not failed:\n{report}"
    );
    assert!(
        report.contains("ok   completion queue MaximumMessageSize"),
        "{report}"
    );
}

fn fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A mock-backed workspace on which `doctor` passes, with every output file set.
fn mock_host(name: &str) -> Workspace {
    let ws = Workspace::new(name);
    std::fs::create_dir_all(ws.dir.join("state")).unwrap();
    ws.mock_profile("t", outputs(&ws));
    let out = ws.sqs_archive(&["--profile", "t", "doctor"]).run();
    out.ok();
    assert!(!out.stdout().contains("warn"), "{}", out.stdout());
    ws
}

fn outputs(ws: &Workspace) -> Value {
    json!({
        "lock_file": ws.path("state/poll.lock"),
        "metrics_file": ws.path("state/sqs_archive.prom"),
        "log_file": ws.path("state/poll.log"),
        "audit_metrics_file": ws.path("state/audit.prom"),
    })
}

/// `doctor --json` on profile `t`: the exit code, the parsed object, and the
/// status and detail of the check named `name`.
fn check(ws: &Workspace, name: &str) -> (i32, Value, String, String) {
    let out = ws
        .sqs_archive(&["--profile", "t", "doctor", "--json"])
        .run();
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "one object:\n{}", out.stdout());
    let report = lines[0].clone();
    let found = report["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
        .clone();
    (
        out.code(),
        report,
        found["status"].as_str().unwrap().to_string(),
        found["detail"].as_str().unwrap().to_string(),
    )
}

#[test]
fn doctor_json_is_one_object_with_typed_fields() {
    let ws = mock_host("doctor-json");
    let out = ws
        .sqs_archive(&["--profile", "t", "doctor", "--json"])
        .run();
    out.ok();
    let report: Value = serde_json::from_str(out.stdout().trim()).expect("one JSON object");
    assert_eq!(report["ok"], json!(true));
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 10, "{report}");
    for c in checks {
        assert!(c["name"].is_string() && c["detail"].is_string(), "{c}");
        assert!(
            ["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
    }
    // A failing host: still one object, "ok": false, exit 1.
    ws.mock_profile("t", json!({"archive_dir": "no/such/volume"}));
    let (code, report, status, _) = check(&ws, "archive_dir");
    assert_eq!((code, status.as_str()), (1, "fail"), "{report}");
    assert_eq!(report["ok"], json!(false));
}

#[test]
fn doctor_fails_a_world_writable_profile() {
    let ws = mock_host("doctor-profile-open");
    chmod(&ws.dir.join("config/t.json"), 0o666);
    let (code, _, status, detail) = check(&ws, "profile trust");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("world-writable (mode 666)"), "{detail}");
}

#[test]
fn doctor_fails_a_profile_owned_by_another_user() {
    let ws = mock_host("doctor-profile-foreign");
    let profile = ws.dir.join("config/t.json");
    if std::os::unix::fs::chown(&profile, Some(54_321), None).is_err() {
        eprintln!("skipped: chown needs root");
        return;
    }
    let (code, _, status, detail) = check(&ws, "profile trust");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("owned by uid 54321"), "{detail}");
}

#[test]
fn doctor_fails_a_profile_directory_anyone_can_write() {
    let ws = mock_host("doctor-profile-dir");
    chmod(&ws.dir.join("config"), 0o777);
    let (code, _, status, detail) = check(&ws, "profile trust");
    chmod(&ws.dir.join("config"), 0o755);
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains("config world-writable without the sticky bit")
            || detail.contains("without the sticky bit"),
        "{detail}"
    );
}

#[test]
fn doctor_fails_a_world_writable_env_file() {
    let ws = mock_host("doctor-env");
    ws.write(".env", "SQS_ARCHIVE_WORKERS=2\n");
    chmod(&ws.dir.join(".env"), 0o646);
    let (code, _, status, detail) = check(&ws, "env file trust");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains(".env") && detail.contains("world-writable"),
        "{detail}"
    );
    let (_, _, status, detail) = check(&ws, "env file secrecy");
    assert_eq!(status, "warn", "readable by all: {detail}");
}

#[test]
fn doctor_fails_a_world_writable_handler() {
    let ws = mock_host("doctor-handler");
    ws.write("bin/handler", "#!/bin/sh\nexit 0\n");
    let handler = ws.dir.join("bin/handler");
    chmod(&handler, 0o757);
    let mut keys = outputs(&ws);
    keys["handler"] = json!([ws.path("bin/handler")]);
    ws.mock_profile("t", keys.clone());
    let (code, _, status, detail) = check(&ws, "handler trust");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("world-writable (mode 757)"), "{detail}");
    chmod(&handler, 0o755);
    let (code, _, status, _) = check(&ws, "handler trust");
    assert_eq!((code, status.as_str()), (0, "ok"));
    // A script handed to an interpreter is checked as the program is.
    chmod(&handler, 0o646);
    keys["handler"] = json!(["/bin/sh", ws.path("bin/handler")]);
    ws.mock_profile("t", keys);
    let (code, _, status, detail) = check(&ws, "handler script trust");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
}

#[test]
fn doctor_fails_a_metrics_file_that_is_a_fifo() {
    let ws = mock_host("doctor-metrics-fifo");
    fifo(&ws.dir.join("state/sqs_archive.prom"));
    let (code, _, status, detail) = check(&ws, "metrics_file");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("is a FIFO, not a regular file"), "{detail}");
    assert!(
        detail.ends_with("(set by profile config/t.json)"),
        "{detail}"
    );
}

#[test]
fn doctor_fails_a_log_file_that_is_a_symlink() {
    let ws = mock_host("doctor-log-symlink");
    ws.write("elsewhere", "");
    std::os::unix::fs::symlink(ws.dir.join("elsewhere"), ws.dir.join("state/poll.log")).unwrap();
    let (code, _, status, detail) = check(&ws, "log_file");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("is a symlink"), "{detail}");
}

#[test]
fn doctor_fails_a_lock_file_that_is_a_directory() {
    let mut ws = mock_host("doctor-lock-dir");
    std::fs::create_dir(ws.dir.join("state/locks")).unwrap();
    ws.set_env([("SQS_ARCHIVE_LOCK_FILE".into(), ws.path("state/locks"))]);
    let (code, _, status, detail) = check(&ws, "lock_file");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(detail.contains("is a directory"), "{detail}");
    assert!(
        detail.ends_with("(set by variable SQS_ARCHIVE_LOCK_FILE)"),
        "says where to change it: {detail}"
    );
}

#[test]
fn doctor_warns_of_an_output_directory_anyone_can_write() {
    let ws = mock_host("doctor-state-open");
    chmod(&ws.dir.join("state"), 0o777);
    let (code, _, status, detail) = check(&ws, "metrics_file");
    assert_eq!(
        (code, status.as_str()),
        (0, "warn"),
        "a warning alone: {detail}"
    );
    assert!(detail.contains("without the sticky bit"), "{detail}");
}

#[test]
fn doctor_fails_two_outputs_naming_one_file() {
    let ws = mock_host("doctor-same-file");
    let mut keys = outputs(&ws);
    // The same file under another spelling of its directory.
    std::fs::create_dir_all(ws.dir.join("state/sub")).unwrap();
    keys["metrics_file"] = json!(ws.path("state/sub/../poll.lock"));
    ws.mock_profile("t", keys);
    let (code, _, status, detail) = check(&ws, "distinct files");
    assert_eq!((code, status.as_str()), (1, "fail"), "{detail}");
    assert!(
        detail.contains("lock_file") && detail.contains("metrics_file"),
        "{detail}"
    );
}

#[test]
fn config_names_where_each_value_came_from_and_hides_secrets() {
    let ws = Workspace::new("config-view");
    ws.profile(
        "t",
        json!({
            "backend": "sqs",
            "request_queue_url": "https://user:pa55word@sqs.eu-west-1.amazonaws.com/1/req",
            "completion_queue_url": "https://sqs.eu-west-1.amazonaws.com/1/done",
            "handler_timeout": 120,
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
            "handler": ["/usr/bin/h", "--password", "hunter2"],
        }),
    );
    ws.write(".env", "SQS_ARCHIVE_METRICS_INTERVAL=17\n");
    let run = |json: bool| {
        let mut args = vec!["--profile", "t", "--region", "eu-north-1", "config"];
        if json {
            args.push("--json");
        }
        let out = ws.sqs_archive(&args).env("SQS_ARCHIVE_WORKERS", "9").run();
        out.ok();
        for secret in [
            "pa55word",
            "wJalrXUtnFEMI",
            "AKIAIOSFODNN7EXAMPLE",
            "hunter2",
        ] {
            assert!(
                !out.stdout().contains(secret),
                "{secret} shown:\n{}",
                out.stdout()
            );
        }
        out.stdout()
    };
    let text = run(false);
    let profile = "config/t.json";
    for line in [
        "region = eu-north-1  (flag --region)".to_string(),
        "workers = 9  (variable SQS_ARCHIVE_WORKERS)".to_string(),
        format!("handler_timeout = 120  (profile {profile})"),
        "metrics_interval = 17  (variable SQS_ARCHIVE_METRICS_INTERVAL from env file .env)"
            .to_string(),
        "max_receive_count = 5  (default)".to_string(),
        "aws_secret_access_key = ***".to_string(),
        "request_queue_url = https://***@sqs.eu-west-1.amazonaws.com/1/req".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }
    let object: Value = serde_json::from_str(run(true).trim()).expect("one JSON object");
    let row = |key: &str| {
        object["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {object}"))
            .clone()
    };
    assert_eq!(row("region")["layer"], "flag");
    assert_eq!(row("workers")["layer"], "variable");
    assert_eq!(row("workers")["value"], "9");
    assert_eq!(row("handler_timeout")["layer"], "profile");
    assert_eq!(row("metrics_interval")["layer"], "env_file");
    assert_eq!(row("max_receive_count")["layer"], "default");
    assert_eq!(row("metrics_file")["value"], Value::Null, "unset is null");
    assert_eq!(object["profile"], json!(profile));
    assert_eq!(object["env_file"], json!(".env"));
}

#[test]
fn doctor_warns_of_an_output_directory_owned_by_another_user() {
    let ws = mock_host("doctor-state-foreign");
    if std::os::unix::fs::chown(ws.dir.join("state"), Some(54_321), None).is_err() {
        eprintln!("skipped: chown needs root");
        return;
    }
    let (code, _, status, detail) = check(&ws, "log_file");
    assert_eq!(
        (code, status.as_str()),
        (0, "warn"),
        "a warning alone: {detail}"
    );
    assert!(detail.contains("owned by uid 54321"), "{detail}");
}
