//! Secrets stay secret: whole sessions at debug and trace level never show
//! the secret key or the session token; handlers get AWS secrets only when
//! the profile says so; a readable profile holding a secret draws a warning;
//! archives, the lock and the log are created with tight modes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A session token no server issued; fauxqs and the mock accept any.
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessionTOKENnot-for-anyone-0123456789";

/// What one command left behind.
struct Seen {
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command with its output in files (trace output outgrows a pipe).
fn run_to_files(mut run: Run, dir: &Path, what: &str) -> Seen {
    let n = std::fs::read_dir(dir).unwrap().count();
    let (out_path, err_path) = (dir.join(format!("{n}.out")), dir.join(format!("{n}.err")));
    run.command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let child = run.command.spawn().expect("spawn");
    let status = wait_bounded(child, Duration::from_secs(60)).status;
    Seen {
        what: what.to_string(),
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

/// The bytes ureq's trace log dumps from the wire, as text: the last column
/// of each dump row (16 bytes, non-printables as '.'), rows joined, so that
/// a value split over two rows is found whole.
fn wire_text(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains(" TRACE "))
        .filter_map(|l| l.split_whitespace().last())
        .collect()
}

/// Asserts that no secret appears in any output, log, or wire dump.
fn assert_hidden(seen: &[Seen], logs: &[String], secrets: &[&str]) {
    for secret in secrets {
        assert!(
            secret.len() >= 16,
            "a test secret must be long enough to search for"
        );
        for s in seen {
            assert!(
                !s.stdout.contains(secret) && !s.stderr.contains(secret),
                "{}: a secret is shown:\n{}\n{}",
                s.what,
                s.stdout,
                s.stderr
            );
            assert!(
                !wire_text(&s.stderr).contains(secret),
                "{}: a secret is in the wire dump on stderr",
                s.what
            );
        }
        for log in logs {
            assert!(!log.contains(secret), "a secret is in the log file");
            assert!(
                !wire_text(log).contains(secret),
                "a secret is in the wire dump in the log file"
            );
        }
    }
}

/// send, poll, receive, stats and credentials, at `--log-level debug` and
/// then with `SQS_ARCHIVE_LOG=trace`; returns what each showed and the log.
fn session(ws: &Workspace, env: &[(&str, &str)]) -> (Vec<Seen>, String) {
    let outputs = ws.dir.join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    ws.write("source/s.txt", "nothing secret here\n");
    let mut seen = Vec::new();
    for (round, level) in [("debug", Some("debug")), ("trace", None)] {
        let with = |mut run: Run| {
            for (k, v) in env {
                run = run.env(k, v);
            }
            if level.is_none() {
                run = run.env("SQS_ARCHIVE_LOG", "trace");
            }
            run
        };
        let args = |rest: &[&str]| {
            let mut a = vec!["--profile", "t"];
            if let Some(l) = level {
                a.extend(["--log-level", l]);
            }
            a.extend(rest.iter().copied());
            a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
        };
        let aipid = format!("sec-{round}");
        let commands: Vec<(&str, Vec<String>, bool)> = vec![
            (
                "send",
                args(&["send", "--aipid", &aipid, "--filenames", "s.txt"]),
                false,
            ),
            ("poll", args(&[]), true),
            ("receive", args(&["receive", "--delete"]), false),
            ("stats", args(&["stats"]), false),
            ("credentials", args(&["credentials"]), false),
        ];
        for (name, argv, poll) in commands {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let run = if poll {
                ws.poll(&argv)
            } else {
                ws.sqs_archive(&argv)
            };
            let s = run_to_files(with(run), &outputs, &format!("{round} {name}"));
            assert_eq!(s.code, 0, "{}: {}\n{}", s.what, s.stdout, s.stderr);
            seen.push(s);
        }
        let receive = &seen[seen.len() - 3];
        assert!(
            receive.stdout.contains(&aipid) && receive.stdout.contains("\"success\":true"),
            "{round}: the session went through: {}",
            receive.stdout
        );
    }
    let log = std::fs::read_to_string(ws.dir.join("logs/poll.log")).unwrap();
    // The levels were on: debug lines from the client, trace lines from the HTTP library.
    assert!(log.contains(" DEBUG "), "no debug line in the poller's log");
    assert!(log.contains(" TRACE "), "no trace line in the poller's log");
    assert!(
        seen.iter().any(|s| s.stderr.contains(" DEBUG ")),
        "no debug line from sqs_archive"
    );
    assert!(
        seen.iter().any(|s| s.stderr.contains(" TRACE ")),
        "no trace line from sqs_archive"
    );
    (seen, log)
}

fn server_workspace(name: &str, server: &Server) -> Workspace {
    let request = server.queue("sec-req", false);
    let completion = server.queue("sec-done", false);
    let mut ws = Workspace::new(name);
    let mut keys = server.profile(&request, &completion);
    keys["log_file"] = json!(ws.path("logs/poll.log"));
    ws.profile("t", keys);
    // The completion queue is what `receive` reads.
    ws.set_env(server.key_env());
    ws
}

#[test]
fn a_debug_and_trace_session_on_moto_never_shows_the_secret_key() {
    let server = moto();
    let ws = server_workspace("sec-moto", &server);
    let (seen, log) = session(&ws, &[]);
    assert_hidden(&seen, &[log], &[&server.secret_access_key]);
    // The credentials command names the source and masks the key id.
    let credentials = seen.iter().find(|s| s.what == "debug credentials").unwrap();
    assert!(
        credentials.stdout.contains("from environment")
            && !credentials.stdout.contains(&server.access_key_id),
        "{}",
        credentials.stdout
    );
}

#[test]
fn a_session_token_never_shows_even_at_trace() {
    // moto refuses tokens it did not issue, and its IAM user may not ask STS
    // for one; fauxqs takes any credentials, over the same HTTP client.
    let server = fauxqs();
    let ws = server_workspace("sec-token", &server);
    let (seen, log) = session(&ws, &[("AWS_SESSION_TOKEN", TOKEN)]);
    assert_hidden(&seen, &[log], &[TOKEN, &server.secret_access_key]);
    let credentials = seen.iter().find(|s| s.what == "trace credentials").unwrap();
    assert!(
        credentials.stdout.contains("with a session token"),
        "{}",
        credentials.stdout
    );
}

/// A handler that writes the environment it sees to `seen-env`.
fn env_handler(ws: &Workspace) -> Value {
    let path = ws.dir.join("env.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nenv > '{}'\nexec '{PROCESS_MESSAGE}' \"$@\"\n",
            ws.path("seen-env")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    json!([path.display().to_string()])
}

#[test]
fn the_handler_gets_aws_secrets_only_when_the_profile_allows() {
    let secret = "handler-test-secret-0123456789abcdef";
    let mut ws = Workspace::new("sec-handler");
    ws.set_env([
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            "AKIAHANDLERTEST00001".to_string(),
        ),
        ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        ("AWS_SESSION_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    ws.write("source/f.txt", "f\n");
    for (allowed, aipid) in [(false, "h1"), (true, "h2")] {
        ws.mock_profile(
            "t",
            json!({"handler": env_handler(&ws), "pass_aws_credentials_to_handler": allowed}),
        );
        ws.sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            aipid,
            "--filenames",
            "f.txt",
        ])
        .run()
        .ok();
        ws.poll(&["--profile", "t"]).run().ok();
        let env = std::fs::read_to_string(ws.dir.join("seen-env")).unwrap();
        assert!(env.contains("SQS_MESSAGE_ID="), "the handler ran: {env}");
        for (name, value) in [
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", TOKEN),
            ("AWS_ACCESS_KEY_ID", "AKIAHANDLERTEST00001"),
        ] {
            assert_eq!(
                env.contains(&format!("{name}={value}")),
                allowed,
                "pass_aws_credentials_to_handler: {allowed}, {name}"
            );
            if !allowed {
                assert!(!env.contains(value), "{name}'s value leaks some other way");
            }
        }
        std::fs::remove_file(ws.dir.join("seen-env")).unwrap();
    }
}

#[test]
fn a_readable_profile_holding_a_secret_draws_a_warning() {
    let secret = "profile-file-secret-0123456789abcd";
    let ws = Workspace::new("sec-mode");
    ws.mock_profile(
        "t",
        json!({"aws_access_key_id": "AKIAPROFILEMODE00001", "aws_secret_access_key": secret}),
    );
    let file = ws.dir.join("config/t.json");
    let warning = format!("chmod 600 {}", Path::new("config/t.json").display());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for out in [
        ws.poll(&["--profile", "t"]).run(),
        ws.sqs_archive(&["--profile", "t", "stats"]).run(),
    ] {
        out.ok().stderr_has(&warning).stderr_has("644");
        assert!(!out.stderr().contains(secret) && !out.stdout().contains(secret));
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for out in [
        ws.poll(&["--profile", "t"]).run(),
        ws.sqs_archive(&["--profile", "t", "stats"]).run(),
    ] {
        out.ok();
        assert!(!out.stderr().contains("chmod"), "{}", out.stderr());
    }
    // A profile without a secret may be world-readable.
    ws.mock_profile("plain", json!({}));
    let out = ws.sqs_archive(&["--profile", "plain", "stats"]).run();
    out.ok();
    assert!(!out.stderr().contains("chmod"), "{}", out.stderr());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn archives_lock_and_log_get_tight_modes_whatever_the_umask() {
    let ws = Workspace::new("sec-modes");
    ws.mock_profile("t", json!({"log_file": ws.path("logs/poll.log")}));
    ws.write("source/d/sub/f.txt", "f\n");
    ws.sqs_archive(&[
        "--profile",
        "t",
        "send",
        "--aipid",
        "m1",
        "--filenames",
        "d/sub/f.txt",
    ])
    .run()
    .ok();
    // umask 0 would leave every mode the program does not set itself wide open.
    let mut run = ws.cmd("/bin/sh");
    run.command.args([
        "-c",
        "umask 0; exec \"$0\" \"$@\"",
        POLL_MESSAGES,
        "--profile",
        "t",
    ]);
    run.run().ok();
    let aip = ws.dir.join("archive/m1");
    for dir in [aip.clone(), aip.join("d"), aip.join("d/sub")] {
        assert_eq!(mode(&dir), 0o750, "{}", dir.display());
    }
    for file in [aip.join("d/sub/f.txt"), aip.join("manifest-sha256.txt")] {
        assert_eq!(mode(&file), 0o640, "{}", file.display());
    }
    assert_eq!(mode(&ws.dir.join("poll.lock")), 0o600, "lock file");
    assert_eq!(mode(&ws.dir.join("logs/poll.log")), 0o600, "log file");
    let log = std::fs::read_to_string(ws.dir.join("logs/poll.log")).unwrap();
    assert!(log.contains("summary:"), "{log}");
}

/// What a terminal obeys: ESC (clear screen, set the window title), BEL, a
/// C1 CSI, a right-to-left override.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}txt.exe";
const RAW: [char; 4] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'];

#[track_caller]
fn assert_inert(what: &str, text: &str) {
    for c in RAW {
        assert!(!text.contains(c), "{what}: raw {c:?} in {text:?}");
    }
}

fn fake_server_workspace(name: &str, url: &str, protocol: &str) -> Workspace {
    let ws = Workspace::new(name);
    ws.profile(
        "t",
        json!({"backend": "sqs", "protocol": protocol, "endpoint_url": url, "region": "us-east-1",
               "max_attempts": 1, "request_queue_url": format!("{url}/1/q"),
               "completion_queue_url": format!("{url}/1/q")}),
    );
    ws
}

fn stats_against(ws: &Workspace) -> Done {
    ws.sqs_archive(&["--profile", "t", "--log-level", "debug", "stats"])
        .env("AWS_ACCESS_KEY_ID", "AKID")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .run()
}

#[test]
fn a_json_protocol_error_is_shown_escaped() {
    let body = json!({"__type": format!("com.amazonaws.sqs#Evil{HOSTILE}"), "message": HOSTILE})
        .to_string();
    let server = FakeHttp::start(move |_| (400, body.clone()));
    let ws = fake_server_workspace("esc-json", &server.url, "json");
    let out = stats_against(&ws);
    assert_ne!(out.code(), 0);
    assert_inert("stderr", &out.stderr());
    out.stderr_has("\\x1b]0;pwned\\x07\\u{9b}31m\\u{202e}txt.exe");
}

#[test]
fn an_html_error_page_is_shown_escaped() {
    let page = format!("<html><head><title>{HOSTILE}</title></head><body>{HOSTILE}</body></html>");
    let server = FakeHttp::start(move |_| (502, page.clone()));
    let ws = fake_server_workspace("esc-html", &server.url, "query");
    let out = stats_against(&ws);
    assert_ne!(out.code(), 0);
    assert_inert("stderr", &out.stderr());
    out.stderr_has("pwned");
}

#[test]
fn an_endpoint_password_is_masked_in_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://user:pw-in-the-endpoint-url@127.0.0.1:{port}");
    let ws = fake_server_workspace("userinfo", &url, "query");
    let out = stats_against(&ws);
    out.exit(69);
    assert!(
        !out.stderr().contains("pw-in-the-endpoint-url"),
        "{}",
        out.stderr()
    );
    out.stderr_has("***@127.0.0.1");
}

#[test]
fn hostile_message_fields_and_handler_stderr_reach_no_output_raw() {
    let ws = Workspace::new("esc-mock");
    let handler = ws.dir.join("noisy.sh");
    std::fs::write(
        &handler,
        "#!/bin/sh\nprintf '\\033[2J\\033]0;pwned\\007\\302\\233 \\342\\200\\256 boom\\n' >&2\nexit 75\n",
    )
    .unwrap();
    std::fs::set_permissions(&handler, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.mock_profile(
        "t",
        json!({"handler": [handler.display().to_string()], "max_receive_count": 1}),
    );
    let client = sqs_archive::queue::dir::DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
    use sqs_archive::queue::{ArchiveClient, OutgoingMessage};
    let request = json!({"action": "archive", "aipid": HOSTILE, "filenames": ["a"],
                         "timestamp": "2026-11-28T08:54:11Z"});
    client
        .send_message(
            "mock://requests",
            &OutgoingMessage::new(request.to_string()),
        )
        .unwrap();
    // A valid request, so the handler runs and writes its stderr.
    ws.sqs_archive(&[
        "--profile",
        "t",
        "send",
        "--aipid",
        "ok1",
        "--filenames",
        "a",
    ])
    .run()
    .ok();
    let completion = json!({"aipid": HOSTILE, "success": false, "error": HOSTILE});
    client
        .send_message(
            "mock://completions",
            &OutgoingMessage::new(completion.to_string()),
        )
        .unwrap();
    let poll = ws.poll(&["--profile", "t", "--log-level", "debug"]).run();
    assert_inert("poll_messages stderr", &poll.stderr());
    assert!(
        poll.stderr().contains("pwned"),
        "the handler's stderr is logged (escaped): {}",
        poll.stderr()
    );
    let got = ws
        .sqs_archive(&["--profile", "t", "receive", "--max", "10"])
        .run();
    got.ok();
    assert_inert("receive stdout", &got.stdout());
    assert_inert("receive stderr", &got.stderr());
    let lines = got.json_lines();
    assert!(
        lines.iter().any(|l| l["body_json"] == completion),
        "the value is unchanged: {}",
        got.stdout()
    );
}

#[test]
fn a_secret_in_a_malformed_env_line_is_never_shown() {
    let ws = Workspace::new("dotenv-secret");
    ws.mock_profile("t", json!({}));
    ws.write(
        ".env",
        "# deploy keys\nAWS_REGION=us-east-1\nAWS_SECRET_ACCESS_KEY wJalrXUtnFEMI-secret-in-dotenv\n",
    );
    let out = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    out.exit(78)
        .one_line_error()
        .stderr_has(".env")
        .stderr_has("line 3");
    assert!(
        !out.stderr().contains("wJalrXUtnFEMI") && !out.stdout().contains("wJalrXUtnFEMI"),
        "{}",
        out.stderr()
    );
}

#[test]
fn the_lock_file_is_never_a_fifo_or_a_symlink_followed() {
    let ws = Workspace::new("lock-odd");
    ws.mock_profile("t", json!({"wait_time_seconds": 0}));
    let fifo = ws.dir.join("fifo.lock");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let outside = ws.dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let link = ws.dir.join("link.lock");
    std::os::unix::fs::symlink(outside.join("planted"), &link).unwrap();
    for lock in [&fifo, &link] {
        // A FIFO used to block the open for ever: a cron run that never ends.
        let child = ws
            .poll(&["--profile", "t"])
            .env("SQS_ARCHIVE_LOCK_FILE", &lock.display().to_string())
            .spawn();
        let out = wait_bounded(child, Duration::from_secs(20));
        // A configuration error: the lock file is a path the operator set.
        assert_eq!(out.status.code(), Some(78), "{lock:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("lock file"), "{stderr}");
    }
    assert!(
        !outside.join("planted").exists(),
        "a file was created through the planted symlink"
    );
}

/// An answer quoting every request header back, as a WAF or a debugging
/// proxy's error page does; it also quotes the secret key, as a proxy that
/// learnt it might.
fn echo_headers(r: &crate::fakes::SeenRequest, secret: &str, xml: bool) -> (u16, String) {
    let headers: String = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect();
    let text = format!("request blocked; you sent:\n{headers}key {secret}\n");
    if xml {
        let text = text.replace('&', "&amp;").replace('<', "&lt;");
        (
            400,
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code>\
                 <Message>{text}</Message></Error></ErrorResponse>"
            ),
        )
    } else {
        (403, format!("<html><body><pre>{text}</pre></body></html>"))
    }
}

#[test]
fn a_server_echoing_request_headers_never_shows_the_token_or_key() {
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    for xml in [true, false] {
        let server = crate::fakes::FakeHttp::start(move |r| echo_headers(r, SECRET, xml));
        let ws = fake_server_workspace("sec-echo", &server.url, "query");
        let mut keys = json!({"backend": "sqs", "protocol": "query", "endpoint_url": server.url,
            "region": "us-east-1", "max_attempts": 2,
            "request_queue_url": format!("{}/1/q", server.url),
            "completion_queue_url": format!("{}/1/q", server.url),
            "log_file": ws.path("logs/poll.log"), "metrics_file": ws.path("metrics/poll.prom")});
        keys["handler"] = json!([PROCESS_MESSAGE]);
        ws.profile("t", keys);
        let outputs = ws.dir.join("outputs");
        std::fs::create_dir_all(&outputs).unwrap();
        let with_keys = |run: Run| {
            run.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_SESSION_TOKEN", TOKEN)
        };
        let mut seen = Vec::new();
        for (what, run) in [
            (
                "stats",
                ws.sqs_archive(&["--profile", "t", "--log-level", "debug", "stats"]),
            ),
            ("poll", ws.poll(&["--profile", "t", "--log-level", "debug"])),
        ] {
            let s = run_to_files(with_keys(run), &outputs, what);
            assert_ne!(s.code, 0, "{what}: the server refuses every call");
            seen.push(s);
        }
        assert!(!server.requests().is_empty());
        // The echoed text did reach the error line (an SQS error's message
        // is shown; an HTML page is not), masked.
        let stats = &seen[0];
        assert!(
            !xml || stats.stderr.contains("x-amz-security-token: ***"),
            "{}",
            stats.stderr
        );
        let mut logs = vec![std::fs::read_to_string(ws.dir.join("logs/poll.log")).unwrap()];
        if let Ok(metrics) = std::fs::read_to_string(ws.dir.join("metrics/poll.prom")) {
            logs.push(metrics);
        }
        assert_hidden(&seen, &logs, &[TOKEN, SECRET]);
    }
}

#[test]
fn a_failing_credential_process_has_its_stderr_secrets_masked() {
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let ws = Workspace::new("sec-process");
    ws.profile(
        "t",
        json!({"backend": "sqs", "region": "us-east-1", "endpoint_url": "http://127.0.0.1:9",
               "request_queue_url": "http://127.0.0.1:9/1/q", "completion_queue_url": "http://127.0.0.1:9/1/q"}),
    );
    let script = ws.path("helper.sh");
    ws.write(
        "helper.sh",
        &format!(
            "#!/bin/sh\necho 'debug: aws_secret_access_key = {SECRET}' >&2\n\
             echo 'aws_session_token={TOKEN}' >&2\nexit 3\n"
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.write(
        "home/.aws/config",
        &format!("[default]\ncredential_process = {script}\n"),
    );
    let out = ws.sqs_archive(&["--profile", "t", "credentials"]).run();
    assert_ne!(out.code(), 0);
    out.one_line_error()
        .stderr_has("exited with exit status: 3")
        .stderr_has("aws_secret_access_key = ***");
    assert!(
        !out.stderr().contains(SECRET) && !out.stderr().contains(TOKEN),
        "{}",
        out.stderr()
    );
}

#[test]
fn process_credentials_are_cached_until_shortly_before_they_expire() {
    let server = fauxqs();
    let request = server.queue("sec-cache-req", false);
    let completion = server.queue("sec-cache-done", false);
    let ws = Workspace::new("sec-cache");
    ws.profile("t", server.profile(&request, &completion));
    ws.write("source/s.txt", "x\n");
    for i in 0..5 {
        let mut run = ws.send("t", &format!("cache-{i}"), &["s.txt"]);
        for (k, v) in server.key_env() {
            run = run.env(&k, &v);
        }
        run.run().ok();
    }
    // Keys that expire in four minutes: inside the five-minute refresh
    // window from the start, so a cache keyed on that window alone runs the
    // process for every call.
    let expires = rfc3339(std::time::SystemTime::now() + Duration::from_secs(240));
    let counter = ws.path("runs");
    let script = ws.path("helper.sh");
    ws.write(
        "helper.sh",
        &format!(
            "#!/bin/sh\necho run >> {counter}\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \
             \"SecretAccessKey\": \"%s\", \"SessionToken\": \"%s\", \"Expiration\": \"%s\"}}' \
             '{}' '{}' '{TOKEN}' '{expires}'\n",
            server.access_key_id, server.secret_access_key
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.write(
        "home/.aws/config",
        &format!("[default]\ncredential_process = {script}\n"),
    );
    ws.poll(&["--profile", "t"]).run().ok();
    let received = ws
        .sqs_archive(&["--profile", "t", "receive", "--delete"])
        .run();
    received.ok();
    assert_eq!(received.json_lines().len(), 5, "{}", received.stdout());
    let runs = std::fs::read_to_string(&counter).unwrap().lines().count();
    // One run for the poll (it made a dozen calls), one for receive.
    assert_eq!(runs, 2, "credential_process ran {runs} times");
}
