//! `sqs_archive doctor` against moto: a host that is ready passes (exit 0);
//! one with a missing queue, an archive directory it cannot write and a
//! visibility timeout shorter than the handler timeout fails (exit 1),
//! naming all three.

use serde_json::json;

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
    keys["handler_timeout"] = json!(3600);
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
            .any(|l| l.contains("visibility timeout 30 s") && l.contains("handler_timeout 3600 s")),
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
