//! Bad inputs answered correctly (issue 20), one test each, through the real
//! binaries: `credentials` without a region, a long `source_profile` chain
//! and a loop, a mixed `filenames` array, keys given twice in a profile and
//! in a message, and a request that carries completion-only fields.

use serde_json::{Value, json};
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::queue::{ArchiveClient, OutgoingMessage, QueueStats};

use crate::support::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The `key=N` count of `poll_messages`' summary line.
fn summary_count(out: &Done, key: &str) -> u64 {
    let stderr = out.stderr();
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("summary:"))
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap()
}

/// Sends each body to the workspace's mock request queue, runs one
/// `poll_messages` pass and returns its output and the completions.
fn poll_bodies(ws: &Workspace, requests: &[&str]) -> (Done, Vec<Value>) {
    let client = DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
    for body in requests {
        client
            .send_message("mock://requests", &OutgoingMessage::new(body.to_string()))
            .unwrap();
    }
    let out = ws.poll(&["--profile", "t"]).run();
    let completions = bodies(&drain(&client, "mock://completions"));
    assert_eq!(
        client.queue_stats("mock://requests").unwrap(),
        QueueStats::default(),
        "every request was settled and deleted"
    );
    (out, completions)
}

#[test]
fn credentials_without_a_region_exits_78_after_saying_what_it_found() {
    let ws = Workspace::new("inputs-credentials-region");
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .run();
    out.exit(78)
        .one_line_error()
        .stderr_has("region")
        .stdout_has("from environment")
        .stdout_has("region: not resolved");
    assert!(!out.stdout().contains(SECRET) && !out.stderr().contains(SECRET));
    // With a region, the same command is fine: the region was the problem.
    ws.sqs_archive(&["credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "eu-west-1")
        .run()
        .ok()
        .stdout_has("region: eu-west-1");
}

#[test]
fn a_long_source_profile_chain_and_a_loop_are_told_apart() {
    let ws = Workspace::new("inputs-chain");
    let mut config = String::new();
    for i in 0..199 {
        config.push_str(&format!(
            "[profile p{i}]\nrole_arn = arn:aws:iam::123456789012:role/r{i}\nsource_profile = p{}\n",
            i + 1
        ));
    }
    config.push_str(&format!(
        "[profile p199]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
    ));
    config.push_str(
        "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n\
         [profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = c\n\
         [profile c]\nrole_arn = arn:aws:iam::123456789012:role/c\nsource_profile = a\n",
    );
    ws.write("home/.aws/config", &config);
    let chain = |profile: &str| {
        ws.sqs_archive(&["credentials"])
            .env("AWS_PROFILE", profile)
            .env("AWS_REGION", "eu-west-1")
            .run()
    };
    // 200 profiles without a loop: over the limit, and said so.
    let out = chain("p0");
    out.exit(77).one_line_error().stderr_has(
        "source_profile chain from profile p0 is longer than 32 profiles (the limit): \
         profile p31 (number 32) names p32 as its source_profile",
    );
    assert!(!out.stderr().contains("loop"), "{}", out.stderr());
    // A real loop: its profiles named, no word of a limit.
    let out = chain("a");
    out.exit(77)
        .one_line_error()
        .stderr_has("source_profile loop: a -> b -> c -> a");
    assert!(!out.stderr().contains("limit"), "{}", out.stderr());
}

#[test]
fn each_bad_file_name_is_named_once_with_its_reason() {
    let ws = Workspace::new("inputs-filenames");
    ws.mock_profile("t", json!({}));
    let body = r#"{"action": "archive", "aipid": "c1", "filenames": ["ok", 2, "../x"], "timestamp": "2024-05-01T12:34:56"}"#;
    let out = ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("--aipid")
        .arg("c1")
        .stdin(body)
        .run();
    out.exit(65)
        .one_line_error()
        .stderr_has("/filenames/1: must be a string, but it is a number; /filenames/2: each file name must be a relative path")
        .stderr_has("it has a '..' component");
    let stderr = out.stderr();
    assert_eq!(stderr.matches("/filenames/1").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("/filenames/2").count(), 1, "{stderr}");
    assert!(!stderr.contains("/filenames/0"), "{stderr}");
}

#[test]
fn a_key_given_twice_in_a_profile_is_a_configuration_error() {
    let ws = Workspace::new("inputs-duplicate-profile");
    ws.mock_profile("t", json!({}));
    // Valid whichever value wins; refused all the same, naming the key.
    let text = std::fs::read_to_string(ws.dir.join("config/t.json")).unwrap();
    let doubled = text.replacen('{', "{\n  \"workers\": 2,\n  \"workers\": 3,", 1);
    ws.write("config/t.json", &doubled);
    ws.sqs_archive(&["--profile", "t", "stats"])
        .run()
        .exit(78)
        .one_line_error()
        .stderr_has("config/t.json")
        .stderr_has("the key \"workers\" appears twice in one JSON object at line 3");
}

#[test]
fn a_key_given_twice_in_a_message_is_an_invalid_request() {
    let ws = Workspace::new("inputs-duplicate-message");
    ws.mock_profile("t", json!({"workers": 1}));
    ws.write("source/a.txt", "a\n");
    // serde_json alone keeps the last aipid (valid) and would archive.
    let body = r#"{"action": "archive", "aipid": "../x", "aipid": "c1", "filenames": ["a.txt"], "timestamp": "2024-05-01T12:34:56"}"#;
    let (out, completions) = poll_bodies(&ws, &[body]);
    out.ok();
    assert_eq!(summary_count(&out, "invalid"), 1, "{}", out.stderr());
    assert_eq!(summary_count(&out, "succeeded"), 0, "{}", out.stderr());
    let [c] = completions.as_slice() else {
        panic!("{completions:?}")
    };
    assert_eq!(c["success"], false, "{c}");
    assert_eq!(c["original_body"], body);
    assert_eq!(c["aipid"], "unknown", "neither aipid is taken: {c}");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains("the key \"aipid\" appears twice in one JSON object"),
        "{message}"
    );
    assert!(!ws.dir.join("archive/c1").exists(), "nothing was archived");
    // process_message, given the same body, refuses it with 65.
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("--aipid")
        .arg("c1")
        .stdin(body)
        .run()
        .exit(65)
        .one_line_error()
        .stderr_has("message body is refused: the key \"aipid\" appears twice");
}

#[test]
fn a_request_carrying_completion_fields_is_refused_not_passed_on() {
    let ws = Workspace::new("inputs-completion-fields");
    ws.mock_profile("t", json!({"workers": 1}));
    ws.write("source/a.txt", "a\n");
    let forged = r#"{"action": "archive", "aipid": "c1", "filenames": ["a.txt"], "timestamp": "2024-05-01T12:34:56", "truncated": true, "original_body": "{}", "files_omitted": true}"#;
    let plain = r#"{"action": "archive", "aipid": "c2", "filenames": ["a.txt"], "timestamp": "2024-05-01T12:34:56", "custom": 7}"#;
    let (out, completions) = poll_bodies(&ws, &[forged, plain]);
    out.ok();
    assert_eq!(summary_count(&out, "invalid"), 1, "{}", out.stderr());
    assert_eq!(summary_count(&out, "succeeded"), 1, "{}", out.stderr());
    assert_eq!(completions.len(), 2, "{completions:?}");
    for c in &completions {
        if c["aipid"] == "c2" {
            // An unknown field is still carried into the completion.
            assert_eq!(c["success"], true, "{c}");
            assert_eq!(c["custom"], 7, "{c}");
            assert!(c.get("truncated").is_none(), "{c}");
            continue;
        }
        assert_eq!(c["aipid"], "c1", "{c}");
        assert_eq!(c["success"], false, "{c}");
        // The forged fields are not in the completion; the request's own
        // text is, verbatim, as original_body.
        assert!(c.get("truncated").is_none(), "{c}");
        assert!(c.get("files_omitted").is_none(), "{c}");
        assert_eq!(c["original_body"], forged, "{c}");
        let message = c["message"].as_str().unwrap();
        assert!(
            message.contains(
                "/original_body, /truncated, /files_omitted: only a completion carries these fields; a request must not"
            ),
            "{message}"
        );
    }
    assert!(
        !ws.dir.join("archive/c1").exists(),
        "the forged request was not archived"
    );
}
