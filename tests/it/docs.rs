//! The README documents what the code does: every configuration key (with
//! its variables and default, from the one key table in `config.rs`), every
//! exit code, and every metric with its type and HELP line.

use sqs_archive::config::{KEYS, Kind};
use sqs_archive::exit::Exit;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The row of the README's configuration table that documents `name`.
fn key_row<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let table = &text[text.find("| key | variable | default | meaning |")?..];
    table.lines().take_while(|l| l.starts_with('|')).find(|l| {
        l.split('|')
            .nth(1)
            .is_some_and(|c| c.contains(&format!("`{name}`")))
    })
}

#[test]
fn readme_lists_every_configuration_key_variable_and_default() {
    let text = readme();
    for key in KEYS {
        let row = key_row(&text, key.name)
            .unwrap_or_else(|| panic!("README.md has no table row for key {}", key.name));
        for var in key.env {
            assert!(
                row.contains(var),
                "README.md's row for {} lacks variable {var}: {row}",
                key.name
            );
        }
        if let Some(default) = key.kind.default_text() {
            assert!(
                row.contains(&default),
                "README.md's row for {} lacks its default {default}: {row}",
                key.name
            );
        }
        if let Kind::Int { min, max, .. } = key.kind {
            assert!(
                row.contains(&format!("{min}-{max}")),
                "README.md's row for {} lacks its range {min}-{max}: {row}",
                key.name
            );
        }
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
    for metric in sqs_archive::metrics::METRICS {
        for line in [
            format!("# HELP {} {}", metric.name, metric.help),
            format!("# TYPE {} {}", metric.name, metric.kind),
        ] {
            assert!(text.contains(&line), "README.md lacks the line: {line}");
        }
    }
}
