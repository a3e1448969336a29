//! The message schema: compiled once per process, applied to every body.
//!
//! The schema in `schemas/archive-message.schema.json` is built into the
//! binaries, so a host needs no file; a profile's `schema_file` replaces it.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// The schema shipped with the toolkit.
pub const EMBEDDED_SCHEMA: &str = include_str!("../../schemas/archive-message.schema.json");

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
        // A schema file is configuration: any problem reading it is exit 78.
        let text = crate::files::read_config_file(path, crate::files::ConfigFile::Schema)
            .map_err(|e| e.into_error("read schema", path))?;
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
        let mut problems: Vec<String> = self
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
        if problems.len() < MAX_REPORTED
            && let Some(timestamp) = message.get("timestamp").and_then(Value::as_str)
            && !calendar_values_are_real(timestamp)
        {
            problems.push(format!(
                "/timestamp: {} is not a real date and time (month 1-12, a day the month has, hour 0-23, minute 0-59, second 0-60)",
                truncate(&format!("{timestamp:?}"), 64)
            ));
        }
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

/// False when `timestamp` has the shape `YYYY-MM-DDTHH:MM:SS...` but its
/// numbers name no moment (`9999-99-99T99:99:99Z`); the pattern checks the
/// shape, this the calendar. Other shapes are left to the schema.
pub fn calendar_values_are_real(timestamp: &str) -> bool {
    let b = timestamp.as_bytes();
    let shaped = b.len() >= 19
        && b.iter().take(19).enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => matches!(c, b'T' | b't' | b' '),
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return true;
    }
    // parse_rfc3339 wants an offset; the prototype's timestamps have none.
    let has_offset = timestamp[19..].contains(['Z', 'z', '+', '-']);
    if has_offset {
        crate::time::parse_rfc3339(timestamp).is_some()
    } else {
        crate::time::parse_rfc3339(&format!("{timestamp}Z")).is_some()
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

/// Shortens text on a character boundary, newlines as spaces. Kept, with
/// its old behaviour, for `poller` (completion fields) until it moves to
/// [`crate::text`]; for anything printed or logged use `text::excerpt`.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
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
        for ts in [
            "9999-99-99T99:99:99Z",
            "2024-02-30T00:00:00",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:60:00+00:00",
        ] {
            let err = check(with("timestamp", json!(ts))).unwrap_err();
            assert!(err.contains("not a real date"), "{ts}: {err}");
        }
        check(with("timestamp", json!("2024-02-29T23:59:60.5+01:00"))).unwrap();
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
        assert_eq!(truncate("ab\ncd", 10), "ab cd");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
