//! The README documents what the code does: every configuration key and
//! every exit code appear in it.

use sqs_archive::config::KEYS;
use sqs_archive::exit::Exit;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn readme_lists_every_configuration_key_and_variable() {
    let text = readme();
    for key in KEYS {
        assert!(
            text.contains(&format!("`{}`", key.name)),
            "README.md lacks key {}",
            key.name
        );
        for var in key.env {
            assert!(
                text.contains(var),
                "README.md lacks variable {var} of {}",
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
