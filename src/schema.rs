//! The message schema: compiled once per process, applied to every body.
//!
//! The schema in `schemas/archive-message.schema.json` is built into the
//! binaries, so a host needs no file; a profile's `schema_file` replaces it.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// The schema shipped with the toolkit.
pub const EMBEDDED_SCHEMA: &str = include_str!("../schemas/archive-message.schema.json");

/// How many schema errors one message reports.
const MAX_REPORTED: usize = 3;

/// A compiled JSON schema for archive messages.
pub struct MessageSchema {
    validator: jsonschema::Validator,
    origin: String,
}

impl std::fmt::Debug for MessageSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSchema")
            .field("origin", &self.origin)
            .finish()
    }
}

impl MessageSchema {
    /// The built-in schema.
    pub fn embedded() -> MessageSchema {
        Self::compile(EMBEDDED_SCHEMA, "built-in schema")
            .expect("the built-in schema is valid (checked by a unit test)")
    }

    /// Loads and compiles a schema file.
    pub fn from_file(path: &Path) -> Result<MessageSchema> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read schema", path, e))?;
        Self::compile(&text, &path.display().to_string())
    }

    /// The embedded schema, or the file when one is configured.
    pub fn load(path: Option<&Path>) -> Result<MessageSchema> {
        match path {
            Some(p) => Self::from_file(p),
            None => Ok(Self::embedded()),
        }
    }

    fn compile(text: &str, origin: &str) -> Result<MessageSchema> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::config(origin, format!("schema is not valid JSON: {e}")))?;
        let validator = jsonschema::options()
            .build(&value)
            .map_err(|e| Error::config(origin, format!("invalid JSON schema: {e}")))?;
        Ok(MessageSchema {
            validator,
            origin: origin.to_string(),
        })
    }

    /// Checks a parsed message; the error lists the first few violations with their JSON paths.
    pub fn validate(&self, message: &Value) -> Result<()> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(message)
            .take(MAX_REPORTED)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                };
                format!(
                    "{path}: {}",
                    explain(&path).unwrap_or_else(|| crate::text::excerpt(&e.to_string(), 200))
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidData(format!(
                "message does not match the schema: {}",
                problems.join("; ")
            )))
        }
    }

    /// Parses a body as JSON and validates it.
    pub fn parse(&self, body: &str) -> Result<Value> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| Error::InvalidData(format!("message body is not valid JSON: {e}")))?;
        self.validate(&value)?;
        Ok(value)
    }
}

/// Plain words for the rules whose schema errors read badly (patterns, `not`).
fn explain(path: &str) -> Option<String> {
    if path == "/aipid" {
        Some(
            "aipid must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
                .into(),
        )
    } else if path.starts_with("/filenames/") {
        Some("each file name must be a relative path (no leading '/', no '..' part, no control characters, 1 to 1024 bytes)".into())
    } else if path == "/timestamp" {
        Some("timestamp must look like 2024-05-01T12:34:56[.123456][Z|+00:00]".into())
    } else {
        None
    }
}

/// Shortens foreign text for a log line: [`crate::text::excerpt`], kept
/// under this name for the poller until it calls `text` directly.
pub fn truncate(text: &str, max_chars: usize) -> String {
    crate::text::excerpt(text, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(message: Value) -> std::result::Result<(), String> {
        MessageSchema::embedded()
            .validate(&message)
            .map_err(|e| e.to_string())
    }

    fn base() -> Value {
        json!({"action": "archive", "aipid": "mds2909", "filenames": ["a.txt", "dir/b.txt"],
               "timestamp": "2026-11-28T08:54:11.123Z", "priority": "medium"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut m = base();
        m[key] = value;
        m
    }

    #[test]
    fn accepts_our_requests_and_prototype_timestamps() {
        check(base()).unwrap();
        for ts in [
            "2024-05-01T12:34:56.123456",
            "2024-05-01T12:34:56",
            "2024-05-01T12:34:56.123456+00:00",
            "2024-05-01T12:34:56-05:00",
        ] {
            check(with("timestamp", json!(ts))).unwrap_or_else(|e| panic!("{ts}: {e}"));
        }
        check(with("extra_field", json!({"x": 1}))).unwrap();
        check(with("filenames", json!([]))).unwrap();
        check(with("success", json!(true))).unwrap();
    }

    #[test]
    fn rejects_missing_and_mistyped_fields() {
        for key in ["action", "aipid", "filenames", "timestamp"] {
            let mut m = base();
            m.as_object_mut().unwrap().remove(key);
            let err = check(m).unwrap_err();
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(
            check(with("filenames", json!("a.txt")))
                .unwrap_err()
                .contains("/filenames")
        );
        assert!(check(with("priority", json!("urgent"))).is_err());
        assert!(check(with("timestamp", json!("yesterday"))).is_err());
        assert!(check(with("success", json!("yes"))).is_err());
        assert!(check(json!([1, 2])).is_err());
    }

    #[test]
    fn rejects_unsafe_aipids_and_filenames() {
        for aipid in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-rf",
            "a b",
            "x\n",
            &"a".repeat(129),
        ] {
            assert!(check(with("aipid", json!(aipid))).is_err(), "{aipid:?}");
        }
        for name in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "..",
            "a\u{0}b",
            "a\nb",
            "",
        ] {
            let err = check(with("filenames", json!([name])));
            assert!(err.is_err(), "{name:?}");
        }
        check(with(
            "filenames",
            json!(["..a", "a..b/c", "ünïcödé.txt", "x/.y"]),
        ))
        .unwrap();
    }

    #[test]
    fn parse_reports_non_json() {
        let err = MessageSchema::embedded().parse("not json").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert_eq!(err.exit(), crate::exit::Exit::DataErr);
    }

    #[test]
    fn truncate_keeps_one_line() {
        assert_eq!(truncate("ab\ncd", 10), "ab\\ncd");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
