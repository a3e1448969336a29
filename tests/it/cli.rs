//! `sqs_archive` against moto (signatures checked), fauxqs and the mock queue.

use serde_json::{Value, json};

use crate::support::*;

/// A profile whose completion queue is the request queue, so `receive` reads back what `send` sent.
fn loopback_profile(ws: &mut Workspace, server: &Server, fifo: bool) -> String {
    let queue = server.queue("cli", fifo);
    ws.profile("t", server.profile(&queue, &queue));
    ws.set_env(server.key_env());
    queue
}

fn round_trip(server: Server, fifo: bool) {
    let mut ws = Workspace::new("roundtrip");
    loopback_profile(&mut ws, &server, fifo);
    let sent = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            "mds2909",
            "--filenames",
            "trial1.txt",
            "dir/trial2.txt",
            "--priority",
            "high",
        ])
        .run();
    sent.ok();
    let id = sent.stdout().trim().to_string();
    assert!(!id.is_empty());
    let got = ws
        .sqs_archive(&["--profile", "t", "receive", "--max", "10", "--delete"])
        .run();
    got.ok();
    let lines = got.json_lines();
    assert_eq!(lines.len(), 1, "{}", got.stdout());
    let m = &lines[0];
    assert_eq!(m["message_id"], id.as_str());
    assert_eq!(m["receive_count"], 1);
    // `body` is the text as received, `body_json` the request it holds.
    let body = &m["body_json"];
    assert_eq!(
        m["body"]
            .as_str()
            .map(serde_json::from_str::<Value>)
            .unwrap()
            .unwrap(),
        *body
    );
    assert_eq!(body["action"], "archive");
    assert_eq!(body["aipid"], "mds2909");
    assert_eq!(body["filenames"], json!(["trial1.txt", "dir/trial2.txt"]));
    assert_eq!(body["priority"], "high");
    sqs_archive::message::schema::MessageSchema::embedded()
        .validate(body)
        .expect("the body validates");
    if fifo {
        assert_eq!(m["attributes"]["MessageGroupId"], "archive-mds2909", "{m}");
    }
    // --delete removed it: nothing left.
    let again = ws.sqs_archive(&["--profile", "t", "receive"]).run();
    again.ok();
    assert!(again.json_lines().is_empty(), "{}", again.stdout());
}

#[test]
fn standard_queue_round_trip() {
    round_trip(sqs(), false);
}

#[test]
fn fifo_queue_round_trip() {
    round_trip(sqs(), true);
}

#[test]
fn mock_round_trip_across_processes() {
    let ws = Workspace::new("mock-rt");
    ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
    let sent = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            "a1",
            "--filenames",
            "x",
        ])
        .run();
    sent.ok();
    let got = ws
        .sqs_archive(&["--profile", "t", "receive", "--delete"])
        .run();
    got.ok();
    let lines = got.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message_id"], sent.stdout().trim());
    assert_eq!(lines[0]["body_json"]["aipid"], "a1");
}

#[test]
fn receive_without_delete_removes_nothing() {
    let ws = Workspace::new("nodelete");
    ws.mock_profile(
        "t",
        json!({"completion_queue_url": "mock://requests", "visibility_timeout": 0}),
    );
    ws.sqs_archive(&[
        "--profile",
        "t",
        "send",
        "--aipid",
        "a1",
        "--filenames",
        "x",
    ])
    .run()
    .ok();
    for round in 1..=2 {
        let got = ws.sqs_archive(&["--profile", "t", "receive"]).run();
        got.ok();
        let lines = got.json_lines();
        assert_eq!(lines.len(), 1, "round {round}");
        assert_eq!(lines[0]["receive_count"], round);
    }
    let stats = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    stats.ok();
    let s: Value = serde_json::from_str(stats.stdout().trim()).unwrap();
    assert_eq!(s["request"]["visible"], 1);
}

#[test]
fn moto_wrong_secret_is_refused_with_the_signature_error() {
    let server = moto();
    let mut ws = Workspace::new("badsecret");
    loopback_profile(&mut ws, &server, false);
    ws.set_env([(
        "AWS_SECRET_ACCESS_KEY".to_string(),
        "not-the-secret".to_string(),
    )]);
    let out = ws
        .sqs_archive(&["--profile", "t", "send", "--aipid", "a", "--filenames", "x"])
        .run();
    out.exit(77)
        .one_line_error()
        .stderr_has("SignatureDoesNotMatch")
        .stderr_has("secret key");
    assert!(!out.stderr().contains("not-the-secret"));
    // An access key moto does not know.
    ws.set_env([(
        "AWS_ACCESS_KEY_ID".to_string(),
        "AKIAUNKNOWN000000000".to_string(),
    )]);
    ws.sqs_archive(&["--profile", "t", "stats"])
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("InvalidClientTokenId");
}

#[test]
fn missing_queue_is_unavailable() {
    let server = sqs();
    let mut ws = Workspace::new("noqueue");
    let missing = server.missing_queue_url();
    ws.profile("t", server.profile(&missing, &missing));
    ws.set_env(server.key_env());
    ws.sqs_archive(&["--profile", "t", "send", "--aipid", "a", "--filenames", "x"])
        .run()
        .exit(69)
        .one_line_error()
        .stderr_has("NonExistentQueue")
        .stderr_has("check the queue URL");
    ws.sqs_archive(&["--profile", "t", "receive"])
        .run()
        .exit(69)
        .one_line_error()
        .stderr_has("NonExistentQueue");
}

#[test]
fn unreachable_endpoint_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = Workspace::new("unreachable");
    let url = format!("http://127.0.0.1:{port}");
    ws.profile(
        "t",
        json!({"backend": "sqs", "endpoint_url": url, "region": "us-east-1", "max_attempts": 2,
        "request_queue_url": format!("{url}/1/q"), "completion_queue_url": format!("{url}/1/q")}),
    );
    let out = ws
        .sqs_archive(&["--profile", "t", "stats"])
        .env("AWS_ACCESS_KEY_ID", "AKID")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .run();
    out.exit(69)
        .one_line_error()
        .stderr_has("cannot reach")
        .stderr_has(&url);
}

/// A one-shot HTTP server that answers every request with `response`.
fn garbage_server(
    response: &'static [u8],
    requests: usize,
) -> (String, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut served = 0;
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(requests) {
            let mut s = stream.unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response);
            served += 1;
        }
        served
    });
    (url, handle)
}

#[test]
fn non_xml_and_truncated_answers_are_protocol_errors() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world"[..],
        &b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n<GetQueueAttributesResponse><GetQueueAt"[..],
    ] {
        let (url, server) = garbage_server(response, 2);
        let ws = Workspace::new("garbage");
        ws.profile("t", json!({"backend": "sqs", "endpoint_url": url, "region": "us-east-1", "max_attempts": 2,
            "request_queue_url": format!("{url}/1/q"), "completion_queue_url": format!("{url}/1/q")}));
        let out = ws.sqs_archive(&["--profile", "t", "stats"]).env("AWS_ACCESS_KEY_ID", "AKID").env("AWS_SECRET_ACCESS_KEY", "s").run();
        assert!(matches!(out.code(), 76 | 69), "code {}: {}", out.code(), out.stderr());
        out.one_line_error().stderr_has("GetQueueAttributes");
        assert_eq!(server.join().unwrap(), 2, "a garbled answer is retried (max_attempts 2)");
    }
}

#[test]
fn configuration_errors_say_what_and_where() {
    let ws = Workspace::new("config");
    let send = ["send", "--aipid", "a", "--filenames", "x"];
    let with = |profile: &[&str]| -> Vec<String> {
        profile
            .iter()
            .chain(send.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        ws.sqs_archive(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .run()
    };

    run(with(&["--profile", "nope"]))
        .exit(78)
        .one_line_error()
        .stderr_has("profile \"nope\" does not exist");
    ws.write("config/bad.json", "{\"region\": ");
    run(with(&["--profile", "bad"]))
        .exit(78)
        .one_line_error()
        .stderr_has("config/bad.json")
        .stderr_has("not valid JSON");
    ws.write("config/unknown.json", "{\"regoin\": \"x\"}");
    run(with(&["--profile", "unknown"]))
        .exit(78)
        .one_line_error()
        .stderr_has("unknown key \"regoin\"");
    ws.write("config/empty.json", "{}");
    run(with(&["--profile", "empty"]))
        .exit(78)
        .one_line_error()
        .stderr_has("request_queue_url")
        .stderr_has("SQS_REQUEST_QUEUE_URL");
    ws.write("config/types.json", "{\"wait_time_seconds\": \"soon\"}");
    run(with(&["--profile", "types"]))
        .exit(78)
        .one_line_error()
        .stderr_has("wait_time_seconds");
    ws.write("config/nokeys.json", "{\"request_queue_url\": \"http://127.0.0.1:9/1/q\", \"endpoint_url\": \"http://127.0.0.1:9\", \"region\": \"us-east-1\"}");
    run(with(&["--profile", "nokeys"]))
        .exit(77)
        .one_line_error()
        .stderr_has("no AWS credentials found");
    ws.sqs_archive(&["--env-file", "missing.env", "stats"])
        .run()
        .exit(66)
        .one_line_error()
        .stderr_has("missing.env");
}

#[test]
fn a_loose_schema_file_does_not_let_bad_names_be_sent() {
    let ws = Workspace::new("invalid-loose");
    ws.write("schema.json", "{}");
    ws.mock_profile("t", json!({"schema_file": ws.path("schema.json")}));
    for (name, needle) in [("a//b", "empty component"), ("./a", "'.' component")] {
        ws.sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            "ok",
            "--filenames",
            name,
        ])
        .run()
        .exit(65)
        .one_line_error()
        .stderr_has("request refused")
        .stderr_has(needle);
    }
    ws.sqs_archive(&[
        "--profile",
        "t",
        "send",
        "--aipid",
        ".x",
        "--filenames",
        "a",
    ])
    .run()
    .exit(65)
    .one_line_error()
    .stderr_has("must not start with '.' or '-'");
    let stats = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    assert!(
        stats.stdout().contains("\"visible\":0"),
        "nothing was sent: {}",
        stats.stdout()
    );
}

#[test]
fn invalid_requests_are_refused_before_sending() {
    let ws = Workspace::new("invalid");
    ws.mock_profile("t", json!({}));
    for (args, needle) in [
        (
            vec!["--aipid", "../etc", "--filenames", "x"],
            "aipid must be",
        ),
        (
            vec!["--aipid", "ok", "--filenames", "/etc/passwd"],
            "relative path",
        ),
        (
            vec!["--aipid", "ok", "--filenames", "a/../../b"],
            "relative path",
        ),
        (
            vec!["--aipid", "ok", "--filenames", "a\nb"],
            "relative path",
        ),
    ] {
        let mut all = vec!["--profile", "t", "send"];
        all.extend(args);
        ws.sqs_archive(&all)
            .run()
            .exit(65)
            .one_line_error()
            .stderr_has("request refused")
            .stderr_has(needle);
    }
    let stats = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    assert!(
        stats.stdout().contains("\"visible\":0"),
        "nothing was sent: {}",
        stats.stdout()
    );
    ws.sqs_archive(&["--profile", "t", "send", "--aipid"])
        .run()
        .exit(64)
        .one_line_error();
    ws.sqs_archive(&["bogus"]).run().exit(64).one_line_error();
}

#[test]
fn help_and_version() {
    let ws = Workspace::new("help");
    ws.sqs_archive(&["--help"])
        .run()
        .ok()
        .stdout_has("send --aipid ID --filenames")
        .stdout_has("--profile NAME");
    ws.sqs_archive(&["--version"])
        .run()
        .ok()
        .stdout_has(&format!(
            "sqs_archive {} (commit ",
            env!("CARGO_PKG_VERSION")
        ));
    ws.poll(&["--help"]).run().ok().stdout_has("--max-messages");
    ws.cmd(PROCESS_MESSAGE)
        .arg("--help")
        .run()
        .ok()
        .stdout_has("--aipid");
}

/// Counts `visible + in_flight` of the request queue from `stats`.
fn messages_left(ws: &Workspace) -> u64 {
    let stats = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    stats.ok();
    let s: Value = serde_json::from_str(stats.stdout().trim()).unwrap();
    s["request"]["visible"].as_u64().unwrap() + s["request"]["in_flight"].as_u64().unwrap()
}

fn send_three(ws: &Workspace) {
    for i in 0..3 {
        ws.send("t", &format!("a{i}"), &["x"]).run().ok();
    }
}

/// `receive --delete` to a closed stdout (`>&-`) or a full one
/// (`>/dev/full`): an error, and every message still on the queue.
fn receive_delete_never_deletes_what_it_could_not_print(ws: &Workspace) {
    send_three(ws);
    let receive = ["--profile", "t", "receive", "--max", "10", "--delete"];
    ws.sqs_archive_stdout(">&-", &receive)
        .run()
        .exit(74)
        .one_line_error()
        .stderr_has("standard output is closed");
    assert_eq!(messages_left(ws), 3, "nothing deleted with stdout closed");
    let full = ws.sqs_archive_stdout(">/dev/full", &receive).run();
    assert_ne!(full.code(), 0, "{}", full.stderr());
    full.one_line_error();
    assert_eq!(messages_left(ws), 3, "nothing deleted with stdout full");
}

#[test]
fn receive_delete_with_stdout_closed_or_full_deletes_nothing_on_the_server() {
    let mut ws = Workspace::new("closed-stdout");
    loopback_profile(&mut ws, &sqs(), false);
    receive_delete_never_deletes_what_it_could_not_print(&ws);
}

#[test]
fn receive_delete_with_stdout_closed_or_full_deletes_nothing_on_the_mock() {
    let ws = Workspace::new("closed-stdout-mock");
    ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
    receive_delete_never_deletes_what_it_could_not_print(&ws);
}

/// `receive --exec CMD` with a consumer that fails on the second completion:
/// the first is deleted, the second and the third stay (visible again at
/// once), and the run says so on one line with 75.
fn receive_exec_deletes_only_what_the_consumer_took(ws: &Workspace) {
    send_three(ws);
    let consumer = "sh -c 'cat >> taken.jsonl; test $(wc -l < taken.jsonl) -lt 2'";
    let run = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "receive",
            "--max",
            "10",
            "--exec",
            consumer,
        ])
        .run();
    run.exit(75)
        .one_line_error()
        .stderr_has("exited 1 on message ")
        .stderr_has("it and 1 after it stay on the queue");
    let taken = std::fs::read_to_string(ws.dir.join("taken.jsonl")).unwrap();
    let lines: Vec<Value> = taken
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{taken}");
    assert!(
        lines.iter().all(|l| l["body_json"]["action"] == "archive"),
        "{taken}"
    );
    assert_eq!(messages_left(ws), 2, "only the completion taken is deleted");
    // Released, not hidden for the visibility timeout: a consumer that takes
    // everything gets both at once.
    let all = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "receive",
            "--wait",
            "1",
            "--exec",
            "sh -c 'cat >> rest.jsonl'",
        ])
        .run();
    all.ok();
    let rest = std::fs::read_to_string(ws.dir.join("rest.jsonl")).unwrap();
    assert_eq!(rest.lines().count(), 2, "{rest}");
    assert_eq!(messages_left(ws), 0);
}

#[test]
fn receive_exec_deletes_only_what_the_consumer_took_on_the_server() {
    let mut ws = Workspace::new("exec");
    loopback_profile(&mut ws, &sqs(), false);
    receive_exec_deletes_only_what_the_consumer_took(&ws);
}

#[test]
fn receive_exec_deletes_only_what_the_consumer_took_on_the_mock() {
    let ws = Workspace::new("exec-mock");
    ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
    receive_exec_deletes_only_what_the_consumer_took(&ws);
}

/// Message attributes a producer set (here boto3, as `aws sqs send-message
/// --message-attributes` would) come back in `receive`'s lines and in its
/// `--output aws`, with one type per field.
#[test]
fn receive_keeps_the_message_attributes_a_producer_set() {
    let server = sqs();
    let mut ws = Workspace::new("msgattrs");
    let queue = loopback_profile(&mut ws, &server, false);
    let script = r#"
import boto3, os, sys
sqs = boto3.client("sqs", endpoint_url=os.environ["URL"], region_name=os.environ["REGION"],
                   aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"])
for _ in range(2):
    sqs.send_message(QueueUrl=sys.argv[1], MessageBody="plain text",
                     MessageAttributes={"origin": {"DataType": "String", "StringValue": "scanner-7"},
                                        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let out = std::process::Command::new(python)
        .args(["-c", script, &queue])
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
    let got = ws
        .sqs_archive(&["--profile", "t", "receive", "--max", "1", "--wait", "1"])
        .run();
    got.ok();
    let lines = got.json_lines();
    assert_eq!(lines.len(), 1, "{}", got.stdout());
    let attrs = &lines[0]["message_attributes"];
    assert_eq!(
        attrs["origin"],
        json!({"data_type": "String", "string_value": "scanner-7", "binary_value": null}),
        "{}",
        got.stdout()
    );
    assert_eq!(attrs["blob"]["data_type"], "Binary", "{}", got.stdout());
    assert_eq!(attrs["blob"]["binary_value"], "AAE=", "{}", got.stdout());
    let aws = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "receive",
            "--max",
            "1",
            "--wait",
            "1",
            "--output",
            "aws",
        ])
        .run();
    aws.ok();
    let v: Value = serde_json::from_str(aws.stdout().trim()).unwrap();
    assert_eq!(
        v["Messages"][0]["MessageAttributes"]["origin"],
        json!({"DataType": "String", "StringValue": "scanner-7"}),
        "{v}"
    );
}

/// `send >/dev/full`: the request is on the queue, so the exit is 0 with a
/// warning (75 would invite a second send), and there is exactly one.
fn send_to_a_full_stdout_is_sent_once(ws: &Workspace) {
    let args = [
        "--profile",
        "t",
        "send",
        "--aipid",
        "a1",
        "--filenames",
        "x",
    ];
    ws.sqs_archive_stdout(">/dev/full", &args)
        .run()
        .ok()
        .one_line_error()
        .stderr_has("warning: the request was sent as message");
    assert_eq!(messages_left(ws), 1, "exactly one message on the queue");
    ws.sqs_archive_stdout(">&-", &args)
        .run()
        .ok()
        .stderr_has("standard output is closed");
    assert_eq!(messages_left(ws), 2, "and one more");
}

#[test]
fn send_to_a_full_stdout_is_not_a_failure_on_the_server() {
    let mut ws = Workspace::new("send-full");
    loopback_profile(&mut ws, &sqs(), false);
    send_to_a_full_stdout_is_sent_once(&ws);
}

#[test]
fn send_to_a_full_stdout_is_not_a_failure_on_the_mock() {
    let ws = Workspace::new("send-full-mock");
    ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
    send_to_a_full_stdout_is_sent_once(&ws);
}

#[test]
fn receive_wait_sets_the_http_timeout_of_its_call() {
    // The profile waits 0 s with a 1 s margin: a timeout made from the
    // profile would cut a 3 s long poll short (and exit 69).
    let mut ws = Workspace::new("wait");
    let server = sqs();
    let queue = server.queue("wait", false);
    let mut keys = server.profile(&queue, &queue);
    keys["wait_time_seconds"] = json!(0);
    keys["http_timeout_seconds"] = json!(1);
    ws.profile("t", keys);
    ws.set_env(server.key_env());
    let started = std::time::Instant::now();
    let out = ws
        .sqs_archive(&["--profile", "t", "receive", "--wait", "3"])
        .run();
    let took = started.elapsed();
    out.ok();
    assert!(out.json_lines().is_empty(), "{}", out.stdout());
    assert!(
        took >= std::time::Duration::from_millis(2500),
        "the long poll ran its 3 s: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(60),
        "and ended: {took:?}"
    );
}

/// Reads one HTTP request with its body.
fn read_request_with_body(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap() == 0 {
            break;
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn a_fifo_receive_retried_after_a_lost_answer_keeps_its_attempt_id() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let mut s = stream.unwrap();
            bodies.push(read_request_with_body(&mut s));
            if i == 1 {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            }
            // The first connection closes with no answer: a lost reply.
        }
        bodies
    });
    let ws = Workspace::new("attempt-id");
    let queue = format!("{url}/1/q.fifo");
    ws.profile(
        "t",
        json!({"backend": "sqs", "protocol": "json", "endpoint_url": url, "region": "us-east-1",
               "max_attempts": 2, "request_queue_url": queue, "completion_queue_url": queue}),
    );
    ws.sqs_archive(&["--profile", "t", "receive"])
        .env("AWS_ACCESS_KEY_ID", "AKID")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .run()
        .ok();
    let bodies = server.join().unwrap();
    let ids: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["ReceiveRequestAttemptId"].clone())
        .collect();
    assert!(ids[0].is_string(), "{bodies:?}");
    assert_eq!(ids[0], ids[1], "the retry repeats the attempt id");
}

/// `--help` and `--version` into a full stdout: one error line and 75 (as
/// `sqs_archive` does), not a panic reported as an internal error (70).
#[test]
fn help_to_a_full_stdout_is_not_a_panic() {
    let ws = Workspace::new("help-full");
    for program in [PROCESS_MESSAGE, POLL_MESSAGES, SQS_ARCHIVE] {
        for flag in ["--help", "--version"] {
            let mut run = ws.cmd("sh");
            run.command
                .arg("-c")
                .arg("exec \"$0\" \"$1\" >/dev/full")
                .arg(program)
                .arg(flag);
            run.run()
                .exit(75)
                .one_line_error()
                .stderr_has("cannot write");
        }
    }
}

/// A full disk under the log a cron job appends stderr to: the exit code is
/// still the documented one, not SIGABRT (134) from a panic while printing.
#[test]
fn a_full_stderr_keeps_the_documented_exit_codes() {
    let ws = Workspace::new("stderr-full");
    ws.mock_profile("t", json!({}));
    let shell = |script: &str, program: &str, args: &[&str]| {
        let mut run = ws.cmd("sh").env("SQS_ARCHIVE_PROFILE", "t");
        run.command.arg("-c").arg(script).arg(program).args(args);
        run.run()
    };
    shell("exec \"$0\" \"$@\" 2>/dev/full", SQS_ARCHIVE, &["--bogus"]).exit(64);
    shell(
        "echo '{bad' | \"$0\" \"$@\" 2>/dev/full",
        PROCESS_MESSAGE,
        &["--aipid", "p1"],
    )
    .exit(65);
    // Sent, though neither its id nor the warning could be printed.
    shell(
        "exec \"$0\" \"$@\" >/dev/full 2>/dev/full",
        SQS_ARCHIVE,
        &["send", "--aipid", "a1", "--filenames", "x"],
    )
    .exit(0);
}
