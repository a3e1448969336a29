//! The metrics file, end to end: a 20-request drain against moto, then a
//! failing run (its completion queue does not exist), each read back with
//! the Python `prometheus_client` parser, a real parser of the format.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqs_archive::message::{ARCHIVE_ACTION, Priority, RequestMessage, outgoing};
use sqs_archive::queue::ArchiveClient;

use crate::support::*;

/// Samples by `name{label="v",...}` (labels sorted), as prometheus_client parsed them.
type Samples = BTreeMap<String, f64>;

/// Parses the file with `prometheus_client.parser` (from `.venv`, which
/// `scripts/test-servers.sh` installs); a file it rejects fails the test.
fn parse_with_prometheus_client(path: &Path) -> (Samples, BTreeMap<String, String>) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
for family in text_string_to_metric_families(text):
    print(json.dumps({"family": family.name, "type": family.type, "help": family.documentation}))
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print(json.dumps({"sample": s.name + ("{" + labels + "}" if labels else ""), "value": s.value}))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run make test to install it)", python.display()));
    assert!(
        out.status.success(),
        "prometheus_client rejects the metrics file:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    let (mut samples, mut types) = (BTreeMap::new(), BTreeMap::new());
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(name) = v["sample"].as_str() {
            samples.insert(name.to_string(), v["value"].as_f64().unwrap());
        } else {
            types.insert(
                v["family"].as_str().unwrap().to_string(),
                v["type"].as_str().unwrap().to_string(),
            );
        }
    }
    (samples, types)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn get(samples: &Samples, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {samples:#?}"))
}

#[test]
fn metrics_after_a_drain_and_a_failing_run_parse_and_carry_over() {
    let server = moto();
    let mut ws = Workspace::new("metrics");
    ws.set_env(server.key_env());
    let (request, completion) = (server.queue("req", false), server.queue("done", false));
    let metrics = ws.dir.join("state/sqs_archive.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let handler = ws.dir.join("handler.sh");
    std::fs::write(&handler, "#!/bin/sh\ncat >/dev/null\necho '{}'\n").unwrap();
    std::fs::set_permissions(
        &handler,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut keys = server.profile(&request, &completion);
    keys["metrics_file"] = json!(metrics.display().to_string());
    keys["handler"] = json!([handler.display().to_string()]);
    keys["workers"] = json!(4);
    ws.profile("t", keys.clone());
    keys["completion_queue_url"] = json!(server.missing_queue_url());
    ws.profile("broken", keys);

    let client = server.client();
    let send = |n: usize| {
        for i in 0..n {
            let body = RequestMessage::new(
                ARCHIVE_ACTION,
                &format!("aip-{i}"),
                vec!["f.txt".into()],
                Priority::Medium,
                SystemTime::now(),
            )
            .to_json();
            client.send_message(&request, &outgoing(&body)).unwrap();
        }
    };

    send(20);
    let before = now();
    ws.poll(&["--profile", "t"]).run().ok();
    let after = now();
    let (m, types) = parse_with_prometheus_client(&metrics);
    assert_eq!(
        get(&m, r#"sqs_archive_messages_total{outcome="succeeded"}"#),
        20.0
    );
    for outcome in ["failed", "retried", "invalid", "returned", "unreported"] {
        assert_eq!(
            get(
                &m,
                &format!(r#"sqs_archive_messages_total{{outcome="{outcome}"}}"#)
            ),
            0.0
        );
    }
    assert_eq!(get(&m, "sqs_archive_last_exit_code"), 0.0);
    let success = get(&m, "sqs_archive_last_success_timestamp_seconds");
    assert!(
        (before - 1.0..=after + 1.0).contains(&success),
        "{before} <= {success} <= {after}"
    );
    assert_eq!(
        get(&m, "sqs_archive_last_run_end_timestamp_seconds"),
        success
    );
    assert!(get(&m, "sqs_archive_last_run_start_timestamp_seconds") <= success);
    assert_eq!(get(&m, "sqs_archive_handler_seconds_count"), 20.0);
    assert_eq!(
        get(&m, r#"sqs_archive_handler_seconds_bucket{le="+Inf"}"#),
        20.0
    );
    assert_eq!(
        get(
            &m,
            r#"sqs_archive_queue_messages{queue="request",state="visible"}"#
        ),
        0.0
    );
    assert_eq!(
        get(
            &m,
            r#"sqs_archive_queue_messages{queue="completion",state="visible"}"#
        ),
        20.0
    );
    for (family, kind) in [
        ("sqs_archive_messages", "counter"),
        ("sqs_archive_handler_seconds", "histogram"),
        ("sqs_archive_last_exit_code", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{types:?}"
        );
    }

    // A run whose completions cannot be sent: 75, counters carried over, the last success kept.
    send(1);
    ws.poll(&["--profile", "broken"]).run().exit(75);
    let (m, _) = parse_with_prometheus_client(&metrics);
    assert_eq!(get(&m, "sqs_archive_last_exit_code"), 75.0);
    assert_eq!(
        get(&m, r#"sqs_archive_messages_total{outcome="succeeded"}"#),
        20.0
    );
    assert_eq!(
        get(&m, r#"sqs_archive_messages_total{outcome="unreported"}"#),
        1.0
    );
    assert_eq!(
        get(&m, "sqs_archive_last_success_timestamp_seconds"),
        success
    );
    assert!(get(&m, "sqs_archive_last_run_end_timestamp_seconds") > success);
    assert_eq!(get(&m, "sqs_archive_handler_seconds_count"), 21.0);
    assert!(
        !m.contains_key(r#"sqs_archive_queue_messages{queue="completion",state="visible"}"#),
        "a queue the run could not read is left out"
    );
    let leftovers: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files: {leftovers:?}");
}

/// Under `--loop` the file is written every `metrics_interval`, before the run ends.
#[test]
fn a_loop_writes_metrics_every_interval() {
    let ws = Workspace::new("metrics-loop");
    let metrics = ws.dir.join("sqs_archive.prom");
    ws.mock_profile(
        "t",
        json!({"metrics_file": metrics.display().to_string(), "metrics_interval": 1}),
    );
    let child = ws.poll(&["--profile", "t", "--loop"]).spawn();
    let start = std::time::Instant::now();
    while !metrics.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no metrics file while the loop runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (m, _) = parse_with_prometheus_client(&metrics);
    assert_eq!(get(&m, "sqs_archive_last_exit_code"), 0.0);
    assert_eq!(
        get(
            &m,
            r#"sqs_archive_queue_messages{queue="request",state="visible"}"#
        ),
        0.0
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_bounded(child, std::time::Duration::from_secs(60));
    assert!(out.status.success());
}
