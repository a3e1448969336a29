//! What an unattended run prints: nothing under `--quiet` when all is well,
//! the error when it is not; `<N>` priorities for journald; and a log file
//! reopened on SIGHUP after logrotate moved it.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// Sends a signal with kill(1), so the tests need no unsafe code.
fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits (at most 30 s) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn quiet_run_with_nothing_to_do_prints_nothing() {
    let ws = Workspace::new("quiet");
    ws.mock_profile("t", json!({}));
    let out = ws.poll(&["--profile", "t", "--quiet"]).run();
    out.ok();
    assert_eq!(out.stdout(), "", "stdout");
    assert_eq!(out.stderr(), "", "stderr");
    // Without --quiet the same run reports itself (so the test above can fail).
    let out = ws.poll(&["--profile", "t"]).run();
    out.ok().stderr_has("summary:");
}

#[test]
fn quiet_run_against_an_unreachable_endpoint_prints_its_error() {
    let mut ws = Workspace::new("quiet-down");
    ws.set_env([
        ("AWS_ACCESS_KEY_ID".to_string(), "AKIDQUIET".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "quiet".to_string()),
    ]);
    // Port 9 (discard) on loopback: nothing listens there.
    ws.profile(
        "t",
        json!({
            "backend": "sqs",
            "endpoint_url": "http://127.0.0.1:9",
            "region": "us-east-1",
            "request_queue_url": "http://127.0.0.1:9/123456789012/req",
            "completion_queue_url": "http://127.0.0.1:9/123456789012/done",
            "max_attempts": 1,
        }),
    );
    let out = ws.poll(&["--profile", "t", "--quiet"]).run();
    out.exit(69)
        .stderr_has("poll_messages: error:")
        .stderr_has("127.0.0.1:9");
    assert_eq!(out.stdout(), "");
    out.stderr_has("summary:");
}

#[test]
fn journald_lines_carry_priorities_and_no_timestamp() {
    let ws = Workspace::new("journal");
    ws.mock_profile("t", json!({}));
    let stderr_path = ws.dir.join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let mut run = ws.poll(&["--profile", "t"]);
    run.command
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    let status = run.command.status().unwrap();
    assert!(status.success());
    let text = read(&stderr_path);
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(line.starts_with("<6>INFO "), "not a journald line: {line}");
    }
    // JOURNAL_STREAM inherited by a process whose stderr went elsewhere: plain lines.
    let out = ws
        .poll(&["--profile", "t"])
        .env("JOURNAL_STREAM", "1:1")
        .run();
    out.ok();
    assert!(!out.stderr().starts_with('<'), "{}", out.stderr());
}

#[test]
fn sighup_reopens_the_log_file_at_its_configured_path() {
    let ws = Workspace::new("sighup");
    let log = ws.dir.join("logs/poll.log");
    let rotated = ws.dir.join("logs/poll.log.1");
    ws.mock_profile("t", json!({"log_file": log.display().to_string()}));
    ws.write("source/f.txt", "f\n");
    let child = ws.poll(&["--profile", "t", "--loop"]).spawn();
    let pid = child.id();
    wait_until("the first log line", || read(&log).contains("polling"));
    std::fs::rename(&log, &rotated).unwrap();
    kill(pid, "HUP");
    ws.send("t", "a1", &["f.txt"]).run().ok();
    wait_until("the request's lines in a new log file", || {
        read(&log).contains("completion")
    });
    kill(pid, "TERM");
    let out = wait_bounded(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (old, new) = (read(&rotated), read(&log));
    assert!(
        old.contains("polling") && !old.contains("received"),
        "old file:\n{old}"
    );
    assert!(
        new.contains("received") && new.contains("summary:"),
        "new file:\n{new}"
    );
}
