//! `poll_messages` and `process_message`, end to end: archived files,
//! completions, retries, timeouts, signals, locks, and no request ever lost.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::queue::{ArchiveClient, OutgoingMessage, QueueStats};

use crate::proxy::{FaultProxy, Plan};
use crate::support::*;

/// Where the queues of a test live.
enum Queues {
    Mock,
    Server(Server),
}

/// A workspace with a profile `t` whose queues are new and empty.
struct Setup {
    ws: Workspace,
    client: Arc<dyn ArchiveClient>,
    request: String,
    completion: String,
}

impl Setup {
    fn new(name: &str, queues: Queues, extra: Value) -> Setup {
        let mut ws = Workspace::new(name);
        let (client, request, completion, keys): (Arc<dyn ArchiveClient>, String, String, Value) =
            match queues {
                Queues::Mock => (
                    Arc::new(DirArchiveClient::new(ws.dir.join("mock"), 1 << 20)),
                    "mock://requests".into(),
                    "mock://completions".into(),
                    json!({"backend": "mock", "request_queue_url": "mock://requests", "completion_queue_url": "mock://completions"}),
                ),
                Queues::Server(server) => {
                    let request = server.queue("req", false);
                    let completion = server.queue("done", false);
                    ws.set_env(server.key_env());
                    let keys = server.profile(&request, &completion);
                    (Arc::new(server.client()), request, completion, keys)
                }
            };
        let mut keys = keys;
        for (k, v) in extra.as_object().unwrap() {
            keys[k] = v.clone();
        }
        ws.profile("t", keys);
        Setup {
            ws,
            client,
            request,
            completion,
        }
    }

    fn send(&self, aipid: &str, files: &[&str]) -> String {
        let out = self.ws.send("t", aipid, files).run();
        out.ok();
        out.stdout().trim().to_string()
    }

    fn send_raw(&self, body: &str) -> String {
        self.client
            .send_message(&self.request, &OutgoingMessage::new(body))
            .expect("send")
            .message_id
    }

    fn poll(&self, args: &[&str]) -> Done {
        let mut all = vec!["--profile", "t"];
        all.extend(args);
        self.ws.poll(&all).run()
    }

    fn completions(&self) -> Vec<Value> {
        bodies(&drain(self.client.as_ref(), &self.completion))
    }

    fn request_stats(&self) -> QueueStats {
        self.client.queue_stats(&self.request).expect("stats")
    }

    /// A handler script in the workspace.
    fn handler(&self, name: &str, script: &str) -> Value {
        let path = self.ws.dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        json!([path.display().to_string()])
    }

    fn reprofile(&self, extra: Value) {
        let text = std::fs::read_to_string(self.ws.dir.join("config/t.json")).unwrap();
        let mut keys: Value = serde_json::from_str(&text).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            keys[k] = v.clone();
        }
        self.ws.write("config/t.json", &keys.to_string());
    }
}

fn summary_count(out: &Done, key: &str) -> u64 {
    let line = out
        .stderr()
        .lines()
        .rev()
        .find(|l| l.contains("summary:"))
        .unwrap_or_else(|| panic!("no summary line:\n{}", out.stderr()))
        .to_string();
    let field = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    field.parse().unwrap()
}

fn end_to_end(queues: Queues, n: usize) {
    let s = Setup::new("e2e", queues, json!({"workers": 4}));
    let files: Vec<(String, String)> = (0..5)
        .map(|i| {
            (
                format!("dir{i}/file{i}.txt"),
                format!("content {i}\n").repeat(i * 100 + 1),
            )
        })
        .collect();
    for (name, text) in &files {
        s.ws.write(&format!("source/{name}"), text);
    }
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let (a, b) = (&files[i % 5].0, &files[(i + 1) % 5].0);
        sent.insert(s.send(&format!("aip-{i}"), &[a, b]));
    }
    assert_eq!(sent.len(), n);
    let out = s.poll(&[]);
    out.ok();
    assert_eq!(
        summary_count(&out, "succeeded"),
        n as u64,
        "{}",
        out.stderr()
    );
    let completions = s.completions();
    assert_eq!(completions.len(), n);
    let mut completed = BTreeSet::new();
    for c in &completions {
        assert_eq!(c["success"], true, "{c}");
        completed.insert(c["request_message_id"].as_str().unwrap().to_string());
        let aipid = c["aipid"].as_str().unwrap();
        for f in c["result"]["files"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let archived = s.ws.dir.join("archive").join(aipid).join(name);
            let source = s.ws.dir.join("source").join(name);
            assert_eq!(f["sha256"].as_str().unwrap(), sha256_file(&archived));
            assert_eq!(sha256_file(&source), sha256_file(&archived));
        }
        let manifest = std::fs::read_to_string(
            s.ws.dir
                .join("archive")
                .join(aipid)
                .join("manifest-sha256.txt"),
        )
        .unwrap();
        assert_eq!(manifest.lines().count(), 2);
    }
    assert_eq!(completed, sent, "one completion per request");
    assert_eq!(
        s.request_stats(),
        QueueStats::default(),
        "request queue empty"
    );
}

#[test]
fn fifty_requests_end_to_end_on_the_server() {
    end_to_end(Queues::Server(sqs()), 50);
}

#[test]
fn fifty_requests_end_to_end_on_the_mock() {
    end_to_end(Queues::Mock, 50);
}

#[test]
fn prototype_requests_are_processed_like_ours() {
    let server = sqs();
    let s = Setup::new("proto", Queues::Server(server.clone()), json!({}));
    s.ws.write("source/trial1.txt", "one\n");
    s.ws.write("source/trial2.txt", "two\n");
    // What the prototype's cli.py sent: boto3 send_message, naive isoformat() timestamp.
    let script = r#"
import boto3, datetime, json, os, sys
sqs = boto3.client("sqs", endpoint_url=os.environ["URL"], region_name=os.environ["REGION"],
                   aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"])
message = {"action": "archive", "aipid": "mds2909", "filenames": ["trial1.txt", "trial2.txt"],
           "timestamp": datetime.datetime.now().isoformat(), "priority": "medium"}
r = sqs.send_message(QueueUrl=sys.argv[1], MessageBody=json.dumps(message))
print(r["MessageId"])
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["-c", script, &s.request])
        .env("URL", &server.url)
        .env("REGION", &server.region)
        .env("KEY", &server.access_key_id)
        .env("SECRET", &server.secret_access_key)
        .output()
        .expect("run the venv's python (installed by scripts/test-servers.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    s.poll(&[]).ok();
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], true, "{}", c[0]);
    assert_eq!(c[0]["request_message_id"], id.as_str());
    assert_eq!(
        std::fs::read_to_string(s.ws.dir.join("archive/mds2909/trial2.txt")).unwrap(),
        "two\n"
    );
}

#[test]
fn invalid_requests_get_a_failure_completion_with_their_body() {
    let s = Setup::new("invalid", Queues::Server(sqs()), json!({}));
    let bodies = [
        "this is not json",
        r#"{"action":"archive","aipid":"../x","filenames":["a"],"timestamp":"2024-01-01T00:00:00"}"#,
        r#"{"aipid":"a1"}"#,
    ];
    let ids: BTreeSet<String> = bodies.iter().map(|b| s.send_raw(b)).collect();
    let out = s.poll(&[]);
    out.ok();
    assert_eq!(summary_count(&out, "invalid"), 3);
    let completions = s.completions();
    assert_eq!(completions.len(), 3);
    for c in &completions {
        assert_eq!(c["success"], false);
        assert!(
            bodies.contains(&c["original_body"].as_str().unwrap()),
            "{c}"
        );
        assert!(ids.contains(c["request_message_id"].as_str().unwrap()));
        assert!(
            c["message"].as_str().unwrap().contains("JSON")
                || c["message"].as_str().unwrap().contains("schema"),
            "{c}"
        );
    }
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn bad_data_from_the_handler_is_permanent() {
    let s = Setup::new("baddata", Queues::Mock, json!({}));
    std::os::unix::fs::symlink("/etc/passwd", s.ws.dir.join("source/escape")).unwrap();
    s.send("a1", &["escape"]);
    s.send("a2", &["missing.txt"]);
    s.poll(&[]).ok();
    let completions = s.completions();
    assert_eq!(completions.len(), 2);
    for c in &completions {
        assert_eq!(c["success"], false, "{c}");
        assert!(c["message"].as_str().unwrap().contains("exit 65"), "{c}");
    }
    assert!(!s.ws.dir.join("archive/a1/escape").exists());
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn quiet_runs_name_each_request_failed_for_good_and_print_nothing_when_all_is_well() {
    let s = Setup::new("failures", Queues::Mock, json!({"max_receive_count": 1}));
    // Refused for good by process_message (exit 65: a missing source file);
    // failing on the only receive max_receive_count allows: given up.
    let handler = s.handler(
        "picky.sh",
        &format!("case \"$*\" in *gives-up*) echo 'disk on fire' >&2; exit 1;; esac\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    let missing = s.send("missing-file", &["nope.txt"]);
    let given_up = s.send("gives-up", &["f.txt"]);
    let out = s.poll(&["--quiet"]);
    // Exit 0: each failure was reported to the completion queue (the
    // requester's answer) and printed; nothing is left to retry.
    out.ok();
    let stderr = out.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    let line_of = |id: &str| {
        let found: Vec<&&str> = lines.iter().filter(|l| l.contains(id)).collect();
        assert_eq!(found.len(), 1, "one line for {id}:\n{stderr}");
        found[0].to_string()
    };
    let first = line_of(&missing);
    assert!(
        first.contains(" WARN ") && first.contains("aipid missing-file"),
        "{first}"
    );
    assert!(
        first.contains("request failed") && first.contains("nope.txt"),
        "{first}"
    );
    let second = line_of(&given_up);
    assert!(
        second.contains(" WARN ") && second.contains("aipid gives-up"),
        "{second}"
    );
    assert!(
        second.contains("given up after 1 receives") && second.contains("disk on fire"),
        "{second}"
    );
    // And the summary, a WARN too when a request failed for good.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("summary:") && l.contains(" WARN ")),
        "{stderr}"
    );
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(s.completions().len(), 2);

    s.send("fine", &["f.txt"]);
    let out = s.poll(&["--quiet"]);
    out.ok();
    assert_eq!(out.stderr(), "", "an all-good quiet run prints nothing");
    assert_eq!(out.stdout(), "");
    assert_eq!(s.completions().len(), 1);
    // The same run without --quiet reports itself (so the check above can fail).
    s.send("fine-too", &["f.txt"]);
    s.poll(&[]).ok().stderr_has("summary:");
}

#[test]
fn a_drain_ends_with_one_empty_long_poll() {
    let s = Setup::new("one-poll", Queues::Mock, json!({"wait_time_seconds": 3}));
    let handler = s.handler(
        "second.sh",
        &format!("sleep 1\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    s.send("a1", &["f.txt"]);
    let started = Instant::now();
    let out = s.poll(&[]);
    let took = started.elapsed();
    out.ok();
    assert_eq!(s.completions().len(), 1);
    // The receive asked while a1 ran came back empty after 3 s; a1 ended
    // deleted meanwhile, which cannot put a request back: no second 3 s
    // long poll (which made this take 6 s).
    assert!(
        took < Duration::from_millis(4500),
        "{took:?}\n{}",
        out.stderr()
    );
    assert_eq!(out.stderr().matches("queue drained").count(), 1);
}

#[test]
fn a_handler_that_fails_twice_is_retried_until_it_succeeds() {
    let s = Setup::new(
        "flaky",
        Queues::Server(sqs()),
        json!({"retry_base_seconds": 0}),
    );
    let handler = s.handler(
        "flaky.sh",
        &format!("n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\nif [ $n -le 2 ]; then echo \"attempt $n fails\" >&2; exit 1; fi\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    let id = s.send("a1", &["f.txt"]);
    let out = s.poll(&[]);
    out.ok().stderr_has("attempt 1 fails");
    assert_eq!(summary_count(&out, "retried"), 2);
    let c = s.completions();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["success"], true);
    assert_eq!(c[0]["request_message_id"], id.as_str());
    assert_eq!(
        std::fs::read_to_string(s.ws.dir.join("count"))
            .unwrap()
            .trim(),
        "3"
    );
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn a_hung_handler_is_killed_and_retried() {
    let s = Setup::new(
        "hung",
        Queues::Mock,
        json!({"retry_base_seconds": 0, "handler_timeout": 1, "kill_grace_seconds": 1}),
    );
    let handler = s.handler(
        "hang.sh",
        &format!("n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\nif [ $n -eq 1 ]; then trap '' TERM; sleep 60; fi\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    s.send("a1", &["f.txt"]);
    let started = Instant::now();
    let out = s.poll(&[]);
    out.ok().stderr_has("handler_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], true);
}

#[test]
fn a_handler_running_three_visibility_timeouts_is_done_once() {
    let s = Setup::new(
        "long",
        Queues::Server(sqs()),
        json!({"visibility_timeout": 2}),
    );
    let handler = s.handler(
        "slow.sh",
        &format!("sleep 6\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    s.send("a1", &["f.txt"]);
    let first = s.ws.poll(&["--profile", "t"]).spawn();
    std::thread::sleep(Duration::from_millis(1500));
    // A second host polling the whole time never sees the request.
    let second =
        s.ws.poll(&["--profile", "t", "--loop", "--max-runtime", "7"])
            .env("SQS_ARCHIVE_LOCK_FILE", &s.ws.path("other.lock"))
            .run();
    second.ok();
    assert_eq!(summary_count(&second, "received"), 0, "{}", second.stderr());
    let first = wait_bounded(first, Duration::from_secs(60));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let c = s.completions();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["success"], true);
}

#[test]
fn sigterm_finishes_running_work_and_loses_nothing() {
    let s = Setup::new("sigterm", Queues::Server(sqs()), json!({"workers": 2}));
    let handler = s.handler(
        "slow.sh",
        &format!("sleep 1.5\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    let sent: BTreeSet<String> = (0..6)
        .map(|i| s.send(&format!("a{i}"), &["f.txt"]))
        .collect();
    let child = s.ws.poll(&["--profile", "t"]).spawn();
    std::thread::sleep(Duration::from_millis(800));
    let pid = child.id() as i32;
    assert_eq!(unsafe_free_kill(pid, "TERM"), 0);
    let out = wait_bounded(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after_first = s.completions();
    assert!(
        !after_first.is_empty() && after_first.len() < 6,
        "{}",
        after_first.len()
    );
    // Whatever was not finished is still there, and a later run completes it.
    s.poll(&[]).ok();
    let mut all: Vec<Value> = after_first;
    all.extend(s.completions());
    let completed: BTreeSet<String> = all
        .iter()
        .map(|c| c["request_message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(completed, sent);
    assert!(all.iter().all(|c| c["success"] == true));
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn a_second_signal_stops_handlers_and_returns_their_requests() {
    let s = Setup::new("sigtwice", Queues::Mock, json!({"workers": 2}));
    let handler = s.handler(
        "slow.sh",
        &format!("if [ ! -e go ]; then sleep 30; fi\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    let sent: BTreeSet<String> = (0..3)
        .map(|i| s.send(&format!("a{i}"), &["f.txt"]))
        .collect();
    let child = s.ws.poll(&["--profile", "t"]).spawn();
    std::thread::sleep(Duration::from_millis(700));
    let pid = child.id() as i32;
    unsafe_free_kill(pid, "TERM");
    std::thread::sleep(Duration::from_millis(200));
    unsafe_free_kill(pid, "TERM");
    let started = Instant::now();
    let out = wait_bounded(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(String::from_utf8_lossy(&out.stderr).contains("returned to the queue"));
    assert!(s.completions().is_empty());
    s.ws.write("go", "");
    s.poll(&[]).ok();
    let done: BTreeSet<String> = s
        .completions()
        .iter()
        .map(|c| c["request_message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(done, sent);
}

#[test]
fn overlapping_cron_runs_share_the_host_and_a_loop_poller_runs_alone() {
    let s = Setup::new("lock", Queues::Mock, json!({}));
    let handler = s.handler(
        "slow.sh",
        &format!("sleep 2\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    s.send("a1", &["f.txt"]);
    let first = s.ws.poll(&["--profile", "t"]).spawn();
    std::thread::sleep(Duration::from_millis(500));
    // A second cron run takes the slots the first's idle workers gave back,
    // finds the queue empty (a1 is in hand) and ends.
    let second = s.poll(&[]);
    second.ok();
    assert!(
        !second.stderr().contains("another poll_messages run holds"),
        "{}",
        second.stderr()
    );
    assert!(
        second.stderr().contains("queue drained"),
        "{}",
        second.stderr()
    );
    // A --loop poller runs alone: not beside a cron run.
    s.poll(&["--loop"])
        .ok()
        .stderr_has("another poll_messages run holds");
    let first = wait_bounded(first, Duration::from_secs(30));
    assert!(first.status.success());
    for lock in ["poll.lock", "poll.lock.slot-0"] {
        let mode = std::fs::metadata(s.ws.dir.join(lock))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{lock}");
    }
    assert_eq!(s.completions().len(), 1);
}

#[test]
fn a_missing_handler_stops_the_run_and_keeps_the_request() {
    let s = Setup::new(
        "nohandler",
        Queues::Mock,
        json!({"handler": ["/nonexistent/handler"]}),
    );
    s.send("a1", &["f.txt"]);
    s.poll(&[])
        .exit(78)
        .stderr_has("cannot be started")
        .stderr_has("/nonexistent/handler");
    let st = s.request_stats();
    assert_eq!(st.visible + st.in_flight, 1, "the request is kept");
    assert!(s.completions().is_empty());
}

#[test]
fn an_unreachable_completion_queue_keeps_the_request() {
    let server = sqs();
    let s = Setup::new(
        "nocompletion",
        Queues::Server(server.clone()),
        json!({"visibility_timeout": 2}),
    );
    let real_completion = s.completion.clone();
    s.reprofile(
        json!({"completion_queue_url": format!("{}/123456789012/{}", server.url, unique("gone"))}),
    );
    s.ws.write("source/f.txt", "f\n");
    let id = s.send("a1", &["f.txt"]);
    let out = s.poll(&[]);
    out.exit(75).stderr_has("completion not sent, request kept");
    assert_eq!(summary_count(&out, "unreported"), 1);
    let st = s.request_stats();
    assert_eq!(
        st.visible + st.in_flight,
        1,
        "the request is still on the queue"
    );
    // Once the completion queue is back, the request is completed.
    s.reprofile(json!({"completion_queue_url": real_completion}));
    std::thread::sleep(Duration::from_millis(2500));
    s.poll(&[]).ok();
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["request_message_id"], id.as_str());
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn crashes_and_garbage_output_follow_the_contract() {
    let s = Setup::new(
        "crash",
        Queues::Mock,
        json!({"retry_base_seconds": 0, "max_receive_count": 2}),
    );
    let crash = s.handler("crash.sh", "kill -9 $$");
    s.reprofile(json!({"handler": crash}));
    s.send("a1", &["f.txt"]);
    s.poll(&[]).ok();
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], false);
    assert!(
        c[0]["message"]
            .as_str()
            .unwrap()
            .contains("given up after 2 receives"),
        "{}",
        c[0]
    );
    assert!(
        c[0]["original_body"]
            .as_str()
            .unwrap()
            .contains("\"aipid\":\"a1\"")
    );

    let garbage = s.handler("garbage.sh", "cat >/dev/null; echo 'not json at all'");
    s.reprofile(json!({"handler": garbage}));
    s.send("a2", &["f.txt"]);
    s.poll(&[]).ok();
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], true);
    assert_eq!(
        c[0]["result"]["unparsed_stdout"].as_str().unwrap().trim(),
        "not json at all"
    );
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn a_one_mebibyte_body_is_completed_and_its_digest_kept() {
    let s = Setup::new("huge", Queues::Mock, json!({}));
    let body = "z".repeat(1 << 20);
    let id = s.send_raw(&body);
    s.poll(&[]).ok();
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], false);
    assert_eq!(c[0]["request_message_id"], id.as_str());
    assert_eq!(c[0]["original_body_bytes"], 1 << 20);
    assert_eq!(
        c[0]["original_body_sha256"],
        sqs_archive::digest::sha256_hex(body).as_str()
    );
    assert_eq!(s.request_stats(), QueueStats::default());
}

#[test]
fn the_handler_does_not_see_aws_secrets() {
    let s = Setup::new("secrets", Queues::Server(sqs()), json!({}));
    let handler = s.handler(
        "env.sh",
        &format!("env > seen-env\nexec {PROCESS_MESSAGE} \"$@\""),
    );
    s.reprofile(json!({"handler": handler}));
    s.ws.write("source/f.txt", "f\n");
    let id = s.send("a1", &["f.txt"]);
    s.poll(&[]).ok();
    let env = std::fs::read_to_string(s.ws.dir.join("seen-env")).unwrap();
    assert!(!env.contains("AWS_SECRET_ACCESS_KEY"), "{env}");
    assert!(env.contains(&format!("SQS_MESSAGE_ID={id}")));
    assert!(env.contains("SQS_RECEIVE_COUNT=1"));
    assert!(env.contains("SQS_ARCHIVE_CONFIG="));
}

/// Sends a signal with kill(1), so the tests need no unsafe code.
fn unsafe_free_kill(pid: i32, signal: &str) -> i32 {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[test]
fn the_env_file_reaches_the_handler() {
    let s = Setup::new("envfile", Queues::Mock, json!({"archive_dir": null}));
    std::fs::create_dir_all(s.ws.dir.join("elsewhere")).unwrap();
    s.ws.write(
        "vars.env",
        &format!("SQS_ARCHIVE_ARCHIVE_DIR={}\n", s.ws.path("elsewhere")),
    );
    s.ws.write("source/f.txt", "f\n");
    s.send("a1", &["f.txt"]);
    s.poll(&["--env-file", "vars.env"]).ok();
    assert_eq!(
        std::fs::read_to_string(s.ws.dir.join("elsewhere/a1/f.txt")).unwrap(),
        "f\n"
    );
    assert_eq!(s.completions()[0]["success"], true);
}

#[test]
fn a_looping_poller_rides_out_an_outage_and_a_cron_run_reports_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let ws = Workspace::new("outage");
    ws.profile("t", json!({"backend": "sqs", "endpoint_url": url, "region": "us-east-1", "max_attempts": 1,
        "request_queue_url": format!("{url}/1/req"), "completion_queue_url": format!("{url}/1/done")}));
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
    ];
    let mut cron = ws.poll(&["--profile", "t"]);
    let mut looping = ws.poll(&["--profile", "t", "--loop", "--max-runtime", "2"]);
    for (k, v) in keys {
        cron = cron.env(k, v);
        looping = looping.env(k, v);
    }
    cron.run().exit(69).stderr_has("cannot reach");
    let started = Instant::now();
    looping
        .run()
        .ok()
        .stderr_has("receive failed (1 in a row), trying again in 5 s");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The handler for the issue-10 tests: notes `start`/`end <aipid>` in
/// `runs`, sleeps a little for `slow…`, prints 4 KB of JSON for `big…`.
const NOTING_HANDLER: &str = r#"cat >/dev/null
echo "start $2" >> "$(dirname "$0")/runs"
case "$2" in slow*) sleep 0.3 ;; esac
echo "end $2" >> "$(dirname "$0")/runs"
case "$2" in big*) printf '{"blob":"%04096d"}' 0 ;; *) echo '{}' ;; esac"#;

fn runs(s: &Setup) -> Vec<String> {
    std::fs::read_to_string(s.ws.dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn completions_fit(queues: Queues) {
    let server = matches!(queues, Queues::Server(_));
    let mut s = Setup::new("fit", queues, json!({}));
    if server {
        // A completion queue that takes at most 1,024 bytes.
        let small = sqs()
            .client()
            .create_queue(&unique("small"), &[("MaximumMessageSize", "1024")])
            .expect("create queue");
        s.reprofile(json!({"completion_queue_url": small}));
        s.completion = small;
    } else {
        // The directory queue's own attribute, read and honoured as SQS's
        // is (max_message_size stays at its 1 MiB default).
        let dir = s.ws.dir.join("mock/completions");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("attributes.json"),
            r#"{"MaximumMessageSize": "1024"}"#,
        )
        .unwrap();
    }
    let handler = s.handler("noting.sh", NOTING_HANDLER);
    s.reprofile(json!({"handler": handler}));
    s.send("big1", &["f.txt"]);
    let out = s.poll(&[]);
    out.ok();
    let done = drain(s.client.as_ref(), &s.completion);
    assert_eq!(done.len(), 1, "{}", out.stderr());
    assert!(done[0].body.len() <= 1024, "{}", done[0].body.len());
    let c: Value = serde_json::from_str(&done[0].body).unwrap();
    assert_eq!(
        (c["aipid"].as_str(), c["truncated"].as_bool()),
        (Some("big1"), Some(true))
    );
    // Fitted to the queue's size at once (not refused, then sent as the identity).
    assert!(c["full_completion_bytes"].as_u64().unwrap() > 4096, "{c}");
    assert_eq!(s.request_stats(), QueueStats::default(), "request deleted");
    assert_eq!(runs(&s), ["start big1", "end big1"], "the handler ran once");
}

#[test]
fn completions_fit_a_small_completion_queue_on_the_server() {
    completions_fit(Queues::Server(sqs()));
}

#[test]
fn completions_fit_a_small_completion_queue_on_the_mock() {
    completions_fit(Queues::Mock);
}

fn fifo_groups(queues: Queues) {
    let server = match &queues {
        Queues::Server(_) => Some(sqs()),
        Queues::Mock => None,
    };
    let mut s = Setup::new("fifo", queues, json!({"workers": 4}));
    let request = match &server {
        Some(server) => server.queue("req", true),
        None => "mock://requests.fifo".to_string(),
    };
    let handler = s.handler("noting.sh", NOTING_HANDLER);
    s.reprofile(json!({"handler": handler, "request_queue_url": request}));
    s.request = request;
    for i in 1..=6 {
        for group in ["a", "b"] {
            let body = json!({"action": "archive", "aipid": format!("slow{group}{i}"),
                              "filenames": ["f.txt"], "timestamp": "2026-11-28T00:00:00Z"});
            let message = OutgoingMessage {
                body: body.to_string(),
                group_id: Some(group.into()),
                dedup_id: Some(unique("d")),
            };
            s.client.send_message(&s.request, &message).expect("send");
        }
    }
    let out = s.poll(&[]);
    out.ok();
    assert_eq!(summary_count(&out, "succeeded"), 12, "{}", out.stderr());
    let runs = runs(&s);
    for group in ["slowa", "slowb"] {
        let mine: Vec<&String> = runs.iter().filter(|l| l.contains(group)).collect();
        let expected: Vec<String> = (1..=6)
            .flat_map(|i| [format!("start {group}{i}"), format!("end {group}{i}")])
            .collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "no overlap, receive order kept: {runs:?}"
        );
    }
    let pos = |l: &str| runs.iter().position(|r| r == l).unwrap();
    assert!(
        pos("start slowb1") < pos("end slowa1") || pos("start slowa1") < pos("end slowb1"),
        "the groups run in parallel: {runs:?}"
    );
}

#[test]
fn fifo_groups_keep_order_on_the_server() {
    fifo_groups(Queues::Server(sqs()));
}

#[test]
fn fifo_groups_keep_order_on_the_mock() {
    fifo_groups(Queues::Mock);
}

#[test]
fn a_completion_queue_refusing_every_completion_does_not_rerun_the_handler() {
    // Every send answers "message too long" (400 InvalidParameterValue), even
    // the smallest completion: the request takes the give-up path at once.
    let server = moto();
    let request = server.queue("req", false);
    let completion = server.queue("done", false);
    let plan = Plan {
        too_long: 100,
        only: Some(&["SendMessage", "SendMessageBatch"]),
        ..Plan::none()
    };
    let proxy = FaultProxy::start(&server.url, 7, plan);
    let mut ws = Workspace::new("undeliverable");
    let handler = ws.dir.join("noting.sh");
    std::fs::write(&handler, format!("#!/bin/sh\n{NOTING_HANDLER}\n")).unwrap();
    std::fs::set_permissions(&handler, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut keys = server.profile(&request, &completion);
    keys["endpoint_url"] = json!(proxy.url);
    keys["wait_time_seconds"] = json!(0);
    keys["handler"] = json!([handler]);
    ws.profile("t", keys);
    ws.set_env(server.key_env());
    let body = json!({"action": "archive", "aipid": "a1", "filenames": ["f.txt"],
                      "timestamp": "2026-11-28T00:00:00Z"});
    server
        .client()
        .send_message(&request, &OutgoingMessage::new(body.to_string()))
        .expect("send");
    let out = ws.poll(&["--profile", "t"]).run();
    out.exit(65)
        .stderr_has("refuses even the smallest completion");
    assert_eq!(summary_count(&out, "undeliverable"), 1);
    let out = ws.poll(&["--profile", "t"]).run();
    out.ok();
    assert_eq!(summary_count(&out, "received"), 0, "not archived again");
    let runs = std::fs::read_to_string(ws.dir.join("runs")).unwrap();
    assert_eq!(runs.lines().collect::<Vec<_>>(), ["start a1", "end a1"]);
    let stats = server.client().queue_stats(&request).unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight),
        (0, 1),
        "left to the redrive"
    );
    assert!(drain(&server.client(), &completion).is_empty());
}

#[test]
fn foreign_text_from_handlers_and_messages_is_logged_escaped() {
    let s = Setup::new("escape", Queues::Mock, json!({}));
    let handler = s.handler(
        "loud.sh",
        "cat >/dev/null; printf 'red \\033[31m bell \\007 c1 \\302\\233 rlo \\342\\200\\256 end\\n' >&2; echo '{}'",
    );
    s.reprofile(json!({"handler": handler}));
    s.send("a1", &["f.txt"]);
    // Not a valid aipid: logged (escaped) with the invalid-request line.
    s.send_raw(r#"{"action":"archive","aipid":"x\u001b]0;pwned\u0007","filenames":[],"timestamp":"2026-11-28T00:00:00Z"}"#);
    let out = s.poll(&[]);
    out.ok();
    let err = out.stderr();
    for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!err.contains(raw), "{raw:?} reached stderr raw:\n{err}");
    }
    assert!(
        err.contains("red \\x1b[31m bell \\x07 c1 \\u{9b} rlo \\u{202e} end"),
        "{err}"
    );
    assert!(err.contains("aipid x\\x1b]0;pwned\\x07"), "{err}");
}

#[test]
fn large_valid_json_output_is_parsed_not_called_unparsed() {
    // 3 MiB of valid JSON on stdout: above the old 1 MiB limit, well under 16 MiB.
    let s = Setup::new("bigjson", Queues::Mock, json!({}));
    let handler = s.handler(
        "bigjson.sh",
        "cat >/dev/null; printf '{\"files\":[],\"blob\":\"'; head -c 3145728 /dev/zero | tr '\\0' x; printf '\"}'",
    );
    s.reprofile(json!({"handler": handler}));
    s.send("a1", &["f.txt"]);
    let out = s.poll(&[]);
    out.ok();
    assert!(!out.stderr().contains("not JSON"), "{}", out.stderr());
    let c = s.completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["success"], true);
    // Too big for a message, so shrunk; but from the parsed result.
    assert!(
        c[0]["full_completion_bytes"].as_u64().unwrap() > 3 << 20,
        "{}",
        c[0]
    );
    assert!(
        c[0]["message"]
            .as_str()
            .unwrap()
            .contains("archived 0 file(s)"),
        "{}",
        c[0]
    );
}
