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

/// Runs `run` with stderr in a file that `JOURNAL_STREAM` names, as under
/// systemd; returns the exit status and what stderr got.
fn run_under_journald(ws: &Workspace, mut run: Run) -> (std::process::ExitStatus, String) {
    let stderr_path = ws.dir.join(format!("stderr-{}", unique("j")));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    run.command
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    let status = run.command.status().unwrap();
    (status, read(&stderr_path))
}

/// With `log_file`, warnings and errors still reach stderr (the journal,
/// cron's mail) with their priorities; the full log stays in the file.
#[test]
fn warnings_reach_journald_with_priorities_even_with_a_log_file() {
    let ws = Workspace::new("journal-file");
    let log = ws.dir.join("logs/poll.log");
    // A secret in a profile anyone may read: a warning, and the run goes on.
    ws.mock_profile(
        "t",
        json!({"log_file": log.display().to_string(), "aws_secret_access_key": "s3cr3t-not-logged"}),
    );
    let (status, stderr) = run_under_journald(&ws, ws.poll(&["--profile", "t"]));
    assert!(status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("holds a secret key"))
        .unwrap_or_else(|| panic!("no warning on stderr:\n{stderr}"));
    assert!(warning.starts_with("<4>WARN ["), "{warning}");
    assert!(
        !stderr.contains("INFO"),
        "info lines go to the file only:\n{stderr}"
    );
    assert!(!stderr.contains("s3cr3t-not-logged"));
    let file = read(&log);
    assert!(
        file.contains("holds a secret key") && file.contains("summary:"),
        "{file}"
    );
    assert!(
        !file.contains("<4>"),
        "the file has no journald prefixes:\n{file}"
    );
}

/// The final error line carries `<3>` under journald, log_file or not.
#[test]
fn final_error_line_is_an_error_for_journald() {
    let mut ws = Workspace::new("journal-error");
    ws.set_env([
        ("AWS_ACCESS_KEY_ID".to_string(), "AKIDJOURNAL".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "journal".to_string()),
    ]);
    for log_file in [None, Some(ws.path("logs/poll.log"))] {
        let mut keys = json!({
            "backend": "sqs",
            "endpoint_url": "http://127.0.0.1:9",
            "region": "us-east-1",
            "request_queue_url": "http://127.0.0.1:9/123456789012/req",
            "completion_queue_url": "http://127.0.0.1:9/123456789012/done",
            "max_attempts": 1,
        });
        if let Some(path) = &log_file {
            keys["log_file"] = json!(path);
        }
        ws.profile("t", keys);
        let (status, stderr) = run_under_journald(&ws, ws.poll(&["--profile", "t", "--quiet"]));
        assert_eq!(status.code(), Some(69), "{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("<3>poll_messages: error:") && last.contains("127.0.0.1:9"),
            "log_file {log_file:?}, last line: {last}\n{stderr}"
        );
        for line in stderr.lines() {
            assert!(line.starts_with('<'), "not a journald line: {line}");
        }
    }
}

/// Datagrams received on a test `NOTIFY_SOCKET`, collected by a thread.
struct NotifySocket {
    path: std::path::PathBuf,
    got: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn bind(ws: &Workspace) -> NotifySocket {
        let path = ws.dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&got);
        // Detached on purpose: it ends when the test process does.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) if std::sync::Arc::strong_count(&sink) == 1 => return,
                    Err(_) => {}
                }
            }
        });
        NotifySocket { path, got }
    }

    fn count(&self, line: &str) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.lines().any(|l| l == line))
            .count()
    }

    fn all(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

/// Under a `Type=notify` unit: READY=1 once set up, WATCHDOG=1 every
/// WATCHDOG_USEC/2 while running, STOPPING=1 on SIGTERM.
#[test]
fn loop_poller_notifies_systemd_ready_watchdog_and_stopping() {
    let ws = Workspace::new("notify");
    ws.mock_profile("t", json!({}));
    let socket = NotifySocket::bind(&ws);
    let child = ws
        .poll(&["--profile", "t", "--loop"])
        .env("NOTIFY_SOCKET", &socket.path.display().to_string())
        .env("WATCHDOG_USEC", "400000")
        .spawn();
    wait_until("READY=1", || socket.count("READY=1") == 1);
    wait_until("two watchdog pings", || socket.count("WATCHDOG=1") >= 2);
    assert_eq!(socket.count("STOPPING=1"), 0, "{:?}", socket.all());
    kill(child.id(), "TERM");
    wait_until("STOPPING=1", || socket.count("STOPPING=1") == 1);
    let out = wait_bounded(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = socket.all();
    let ready = all.iter().position(|d| d.contains("READY=1")).unwrap();
    let first_ping = all.iter().position(|d| d.contains("WATCHDOG=1")).unwrap();
    assert!(ready < first_ping, "{all:?}");
}

/// SIGHUP to a poller without log_file: nothing to reopen, so it is
/// ignored; the run goes on, archives what comes, and ends with its summary.
#[test]
fn sighup_without_a_log_file_is_harmless() {
    let ws = Workspace::new("sighup-nolog");
    ws.mock_profile("t", json!({}));
    ws.write("source/f.txt", "f\n");
    // READY=1 says the signal handlers are in place.
    let socket = NotifySocket::bind(&ws);
    let child = ws
        .poll(&["--profile", "t", "--loop"])
        .env("NOTIFY_SOCKET", &socket.path.display().to_string())
        .spawn();
    let pid = child.id();
    wait_until("READY=1", || socket.count("READY=1") == 1);
    kill(pid, "HUP");
    kill(pid, "HUP");
    ws.send("t", "a1", &["f.txt"]).run().ok();
    let receive = || {
        ws.sqs_archive(&["--profile", "t", "receive"])
            .run()
            .stdout()
    };
    wait_until("the request's completion", || receive().contains("a1"));
    kill(pid, "TERM");
    let out = wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(stderr.contains("SIGHUP ignored"), "{stderr}");
    assert!(stderr.contains("summary:"), "{stderr}");
}
