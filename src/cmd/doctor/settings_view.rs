//! `sqs_archive config`: every configuration key with its value and the
//! layer it came from (default, the profile file, a variable and the `.env`
//! file that set it, a flag), one `key = value  (origin)` line each, or one
//! JSON object with `--json`.
//!
//! Nothing secret is shown: the credential keys are `***` whatever their
//! value (the layers never keep it), a URL's user and password are `***`,
//! and a handler argument that looks like a credential (`--password X`,
//! `token=X`, an access key id) is masked too.

use std::io::Write;

use serde_json::{Value, json};

use super::report::ReportArgs;
use crate::config::{K, KEYS, Kind, Provenance, Settings};
use crate::error::Result;
use crate::exit::Exit;

/// One key's line: its name, its value as shown (`None`: unset), where from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: &'static str,
    pub value: Option<String>,
    pub origin: Provenance,
}

/// Every key of the table, in its order.
pub fn rows(s: &Settings) -> Vec<Row> {
    KEYS.iter()
        .map(|key| {
            let origin = s.origin(key.id);
            let value = match s.given.get(&key.id) {
                Some(given) => Some(shown(key.id, &given.text)),
                None => key.kind.default_text(),
            };
            Row {
                key: key.name,
                value,
                origin,
            }
        })
        .collect()
}

/// A value as it may be shown.
fn shown(id: K, text: &str) -> String {
    match id {
        K::request_queue_url | K::completion_queue_url | K::endpoint_url => crate::text::url(text),
        _ if id.key().kind == Kind::FileText => "***".into(),
        K::handler => match serde_json::from_str::<Vec<String>>(text) {
            Ok(argv) => Value::from(mask_argv(&argv)).to_string(),
            Err(_) => "***".into(),
        },
        _ => text.to_string(),
    }
}

/// Words that mark an argument (or the one after it) as a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "private",
];

fn credential_like(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
}

/// An AWS access key id (`AKIA…`, `ASIA…`: 20 upper-case letters and digits).
fn access_key_id(word: &str) -> bool {
    word.len() == 20
        && (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The handler's argv with credential-like arguments as `***`.
pub fn mask_argv(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut mask_next = false;
    for arg in argv {
        let masked = if std::mem::take(&mut mask_next) || access_key_id(arg) {
            "***".to_string()
        } else if let Some((name, _)) = arg.split_once('=')
            && credential_like(name)
        {
            format!("{name}=***")
        } else {
            mask_next = arg.starts_with('-') && credential_like(arg);
            arg.clone()
        };
        out.push(masked);
    }
    out
}

/// Which layer, as one word for `--json`.
fn layer(origin: &Provenance) -> &'static str {
    match origin {
        Provenance::Default => "default",
        Provenance::Flag(_) => "flag",
        Provenance::Variable { env_file: None, .. } => "variable",
        Provenance::Variable {
            env_file: Some(_), ..
        } => "env_file",
        Provenance::Profile(_) => "profile",
    }
}

/// Prints the settings.
pub fn run(s: &Settings, args: &ReportArgs, out: &mut impl Write) -> Result<Exit> {
    let rows = rows(s);
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if args.json {
        let settings: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "value": r.value,
                    "origin": r.origin.to_string(),
                    "layer": layer(&r.origin),
                })
            })
            .collect();
        let object = json!({
            "profile": path(&s.file),
            "env_file": path(&s.env_file),
            "settings": settings,
        });
        crate::stdio::write_line(out, format_args!("{}\n", crate::text::json_line(&object)))?;
        return Ok(Exit::Ok);
    }
    let mut text = String::new();
    let none = "(none)".to_string();
    text.push_str(&format!(
        "# profile: {}\n# env file: {}\n",
        path(&s.file).unwrap_or_else(|| none.clone()),
        path(&s.env_file).unwrap_or_else(|| none.clone()),
    ));
    for row in &rows {
        let value = row.value.as_deref().unwrap_or("(unset)");
        text.push_str(&format!(
            "{} = {}  ({})\n",
            row.key,
            crate::text::escape(value),
            crate::text::escape(&row.origin.to_string())
        ));
    }
    crate::stdio::write_line(out, format_args!("{text}"))?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_like_handler_arguments_are_masked() {
        let argv: Vec<String> = [
            "/usr/bin/h",
            "--password",
            "hunter2",
            "--db-token=abc",
            "AKIAIOSFODNN7EXAMPLE",
            "-v",
            "plain",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            mask_argv(&argv),
            [
                "/usr/bin/h",
                "--password",
                "***",
                "--db-token=***",
                "***",
                "-v",
                "plain"
            ]
        );
    }

    #[test]
    fn urls_lose_their_userinfo_and_credential_keys_their_value() {
        assert_eq!(
            shown(K::request_queue_url, "https://u:pw@h/q"),
            "https://***@h/q"
        );
        assert_eq!(shown(K::aws_access_key_id, "AKIDEXAMPLE"), "***");
        assert_eq!(shown(K::workers, "4"), "4");
    }
}
