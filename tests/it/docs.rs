//! The documentation (README.md and docs/) says what the code does: every
//! configuration key (the reference in docs/configuration.md is generated
//! from the one key table), every exit code, and every metric with its type
//! and HELP line.

use sqs_archive::config::{KEYS, Kind};
use sqs_archive::exit::Exit;

/// The documentation: README.md and every file of docs/, as one text.
fn readme() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut text = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let mut docs: Vec<_> = std::fs::read_dir(format!("{root}/docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    docs.sort();
    for doc in docs {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(doc).unwrap());
    }
    text
}

/// The row of the README's configuration table that documents `name`.
fn key_row<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let table = &text[text.find("| key | variables | default | values | meaning |")?..];
    table.lines().take_while(|l| l.starts_with('|')).find(|l| {
        l.split('|')
            .nth(1)
            .is_some_and(|c| c.contains(&format!("`{name}`")))
    })
}

/// `docs/configuration.md`'s key table is exactly what the key table
/// renders (`config::reference_table`): the reference cannot drift from the
/// code. `UPDATE_DOCS=1` rewrites it.
#[test]
fn the_configuration_reference_is_generated_from_the_key_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap();
    let begin = text.find("<!-- keys:begin").expect("a keys:begin marker");
    let body_start = begin + text[begin..].find("-->\n").expect("marker end") + 4;
    let end = text.find("<!-- keys:end -->").expect("a keys:end marker");
    let generated = sqs_archive::config::reference_table();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &text[..body_start], &text[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[body_start..end],
        generated,
        "docs/configuration.md's key table is stale: run UPDATE_DOCS=1 cargo test --test it -- docs::"
    );
    for key in KEYS {
        let row =
            key_row(&text, key.name).unwrap_or_else(|| panic!("no table row for key {}", key.name));
        for var in key.env {
            assert!(
                row.contains(var),
                "the row for {} lacks {var}: {row}",
                key.name
            );
        }
        if let Some(default) = key.kind.default_text() {
            assert!(
                row.contains(&default),
                "the row for {} lacks {default}: {row}",
                key.name
            );
        }
        if let Kind::Int { min, max, .. } = key.kind {
            assert!(row.contains(&format!("{min}-{max}")), "{row}");
        }
    }
}

/// The README stays a front page: what it is, a quick start, the programs,
/// the first deployment and where to read on; the rest is in `docs/`.
#[test]
fn the_readme_stays_short_and_points_at_every_document() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(text.len() <= 13 * 1024, "README.md is {} bytes", text.len());
    for doc in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap() {
        let name = doc.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            text.contains(&format!("docs/{name}")),
            "README.md does not point at docs/{name}"
        );
    }
}

#[test]
fn readme_lists_every_exit_code() {
    let text = readme();
    for code in 0..=255 {
        if let Some(exit) = Exit::from_code(code) {
            assert!(
                text.contains(&format!("\n| {} |", exit.as_u8())),
                "README.md lacks exit code {code}"
            );
        }
    }
}

#[test]
fn readme_documents_every_metric_exactly() {
    let text = readme();
    let all = sqs_archive::metrics::METRICS
        .iter()
        .chain(sqs_archive::metrics::AUDIT_METRICS);
    for metric in all {
        for line in [
            format!("# HELP {} {}", metric.name, metric.help),
            format!("# TYPE {} {}", metric.name, metric.kind),
        ] {
            assert!(text.contains(&line), "README.md lacks the line: {line}");
        }
    }
}

/// The rows of the README's exit-code table: `(code, meaning)`.
fn exit_table() -> Vec<(i32, String)> {
    let text = readme();
    let section = text
        .split("\n## Exit codes\n")
        .nth(1)
        .expect("README.md has an Exit codes section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix('|')?.split('|');
            let code = cells.next()?.trim().parse().ok()?;
            Some((code, cells.next()?.trim().to_string()))
        })
        .collect()
}

/// Exit codes no input can produce on purpose, with the reason; their rows
/// must say so.
const NOT_PRODUCIBLE: &[(i32, &str, &str)] = &[(70, "bug", "only a panic (a bug) ends with 70")];

/// A workspace whose profile `t` points at `url` (a loopback fake or a port
/// nobody listens on), with keys set.
fn fake_endpoint(name: &str, url: &str) -> crate::support::Workspace {
    let mut ws = crate::support::Workspace::new(name);
    ws.profile(
        "t",
        serde_json::json!({"backend": "sqs", "endpoint_url": url, "region": "us-east-1",
               "max_attempts": 1, "request_queue_url": format!("{url}/1/q"),
               "completion_queue_url": format!("{url}/1/q")}),
    );
    ws.set_env([
        ("AWS_ACCESS_KEY_ID".to_string(), "AKID".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "s".to_string()),
    ]);
    ws
}

/// Produces the exit code `code` from a built binary, the way an operator
/// would meet it; `None` for a code nothing here produces.
fn produce(code: i32) -> Option<crate::support::Done> {
    use crate::support::*;
    use serde_json::json;
    let mock = |name: &str| {
        let ws = Workspace::new(name);
        ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
        ws
    };
    let stats = ["--profile", "t", "stats"];
    Some(match code {
        0 => mock("exit0").sqs_archive(&stats).run(),
        // doctor with a check failing: the archive volume is missing.
        1 => {
            let ws = mock("exit1");
            ws.mock_profile(
                "d",
                json!({"completion_queue_url": "mock://requests", "archive_dir": "no/such/volume"}),
            );
            ws.sqs_archive(&["--profile", "d", "doctor"]).run()
        }
        64 => mock("exit64").sqs_archive(&["--bogus"]).run(),
        65 => mock("exit65")
            .sqs_archive(&[
                "--profile",
                "t",
                "send",
                "--aipid",
                "../x",
                "--filenames",
                "a",
            ])
            .run(),
        66 => mock("exit66")
            .sqs_archive(&["--env-file", "missing.env", "--profile", "t", "stats"])
            .run(),
        69 => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            fake_endpoint("exit69", &format!("http://127.0.0.1:{port}"))
                .sqs_archive(&stats)
                .run()
        }
        74 => {
            let ws = mock("exit74");
            ws.sqs_archive_stdout(">&-", &["--profile", "t", "receive", "--delete"])
                .run()
        }
        75 => {
            let server = FakeHttp::start(|_| {
                (
                    503,
                    r#"{"__type":"ServiceUnavailable","message":"busy"}"#.into(),
                )
            });
            let ws = fake_endpoint("exit75", &server.url);
            ws.sqs_archive(&stats).run()
        }
        76 => {
            let server = FakeHttp::start(|_| (200, "hello world".into()));
            let ws = fake_endpoint("exit76", &server.url);
            ws.sqs_archive(&stats).run()
        }
        77 => {
            let server = FakeHttp::start(|_| {
                (
                    403,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
                     <Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>"
                        .into(),
                )
            });
            let ws = fake_endpoint("exit77", &server.url);
            ws.sqs_archive(&stats).run()
        }
        78 => {
            let ws = mock("exit78");
            ws.write("config/bad.json", "{\"region\": ");
            ws.sqs_archive(&["--profile", "bad", "stats"]).run()
        }
        _ => return None,
    })
}

#[test]
fn every_row_of_the_exit_code_table_is_produced_by_the_binaries() {
    let table = exit_table();
    assert!(table.len() >= 10, "{table:?}");
    for (code, meaning) in &table {
        if let Some((_, word, why)) = NOT_PRODUCIBLE.iter().find(|(c, _, _)| c == code) {
            assert!(
                meaning.contains(word),
                "row {code} must say {word:?}: {why}"
            );
            continue;
        }
        let done = produce(*code).unwrap_or_else(|| panic!("nothing here produces exit {code}"));
        done.exit(*code);
        if *code != 0 {
            done.one_line_error();
        }
    }
    // And no code is produced that the table lacks.
    for code in 0..=255 {
        if table.iter().all(|(c, _)| *c != code) {
            assert!(
                produce(code).is_none() && Exit::from_code(code).is_none(),
                "exit {code} is produced but not in the README"
            );
        }
    }
}
