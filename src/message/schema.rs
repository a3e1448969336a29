//! The message schema: compiled once per process, applied to every body.
//!
//! The schema in `schemas/archive-message.schema.json` is built into the
//! binaries, so a host needs no file; a profile's `schema_file` replaces it.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::message::names::{self, NameProblem};

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
        let value = crate::json::parse(text)
            .map_err(|e| Error::config(origin, format!("schema is {e}")))?;
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
        // One value can break several keywords (a number in `filenames`
        // breaks `type` and the `not` of its pattern): where the words are
        // the value's own (a name, a type), its path is reported once, so
        // the few reported are distinct values.
        let mut problems: Vec<String> = Vec::new();
        for e in self.validator.iter_errors(message) {
            if problems.len() == MAX_REPORTED {
                break;
            }
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                path
            };
            let problem = match explain(&path, message.pointer(&path)) {
                Some(_) if reported(&problems, &path) => continue,
                Some(explained) => format!("{path}: {explained}"),
                None => format!("{path}: {}", crate::text::excerpt(&e.to_string(), 200)),
            };
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        // The name rules hold whatever the schema (a `schema_file` may be
        // looser) and where it cannot count (bytes, not characters).
        for path in broken_names(message) {
            if problems.len() < MAX_REPORTED && !reported(&problems, &path) {
                let explained = explain(&path, message.pointer(&path)).unwrap_or_default();
                problems.push(format!("{path}: {explained}"));
            }
        }
        if problems.len() < MAX_REPORTED
            && let Some(timestamp) = message.get("timestamp").and_then(Value::as_str)
            && !calendar_values_are_real(timestamp)
        {
            problems.push(format!(
                "/timestamp: {} is not a real date and time (month 1-12, a day the month has, hour 0-23, minute 0-59, second 0-60)",
                crate::text::quoted(timestamp, 64)
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

    /// Parses a request body (strictly: a repeated key is refused) and
    /// validates it; a request carrying a field only completions carry is
    /// refused too (completions are checked with [`Self::validate`]).
    pub fn parse(&self, body: &str) -> Result<Value> {
        let value = crate::json::parse(body)
            .map_err(|e| Error::InvalidData(format!("message body is {e}")))?;
        self.validate(&value)?;
        crate::message::refuse_completion_fields(&value)?;
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

/// The JSON paths of the first few names that break [`names`]' rules: the
/// aipid, then the file names (only those that are strings: their types
/// are the schema's business).
fn broken_names(message: &Value) -> Vec<String> {
    let mut broken = Vec::new();
    if message
        .get("aipid")
        .and_then(Value::as_str)
        .is_some_and(|aipid| !names::is_valid_aipid(aipid))
    {
        broken.push("/aipid".to_string());
    }
    if let Some(filenames) = message.get("filenames").and_then(Value::as_array) {
        let bad = filenames.iter().enumerate().filter(|(_, name)| {
            name.as_str()
                .is_some_and(|name| !names::is_valid_relative_name(name))
        });
        for (i, _) in bad.take(MAX_REPORTED) {
            broken.push(format!("/filenames/{i}"));
        }
    }
    broken
}

/// True when a problem at `path` is among `problems` already.
fn reported(problems: &[String], path: &str) -> bool {
    problems
        .iter()
        .any(|p| p.split_once(": ").is_some_and(|(at, _)| at == path))
}

/// Plain words for the rules whose schema errors read badly (patterns,
/// `not`); for a name, the rule of [`names`] and what this one breaks; for
/// a value of one of these fields that is no string, only that.
fn explain(path: &str, value: Option<&Value>) -> Option<String> {
    let named = path == "/aipid" || path == "/timestamp" || path.starts_with("/filenames/");
    if named && let Some(other) = value.filter(|v| !v.is_string()) {
        return Some(format!(
            "must be a string, but it is {}",
            super::kind_of(Some(other))
        ));
    }
    let text = value.and_then(Value::as_str);
    let with_why = |rule: &str, why: Option<NameProblem>| match why {
        Some(why) => format!("{rule}: {why}"),
        None => rule.to_string(),
    };
    if path == "/aipid" {
        let why = text.and_then(|t| names::check_aipid(t).err());
        Some(with_why(names::AIPID_RULE, why))
    } else if path.starts_with("/filenames/") {
        let why = text.and_then(|t| names::check_relative_name(t).err());
        Some(with_why(names::NAME_RULE, why))
    } else if path == "/timestamp" {
        Some("timestamp must look like 2024-05-01T12:34:56[.123456][Z|+00:00]".into())
    } else {
        None
    }
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
    fn each_bad_file_name_is_named_once_with_its_own_reason() {
        let err = check(with("filenames", json!(["ok", 2, "../x"]))).unwrap_err();
        assert_eq!(
            err,
            format!(
                "message does not match the schema: /filenames/1: must be a string, but it is \
                 a number; /filenames/2: {}: it has a '..' component",
                names::NAME_RULE
            )
        );
        // Three bad values, each reported once, whatever keywords each breaks.
        let err = check(with("filenames", json!([null, ["a"], "/x", "y"]))).unwrap_err();
        for (path, reason) in [
            ("/filenames/0", "must be a string, but it is null"),
            ("/filenames/1", "must be a string, but it is an array"),
            ("/filenames/2", "it is absolute"),
        ] {
            assert_eq!(err.matches(&format!("{path}: ")).count(), 1, "{err}");
            assert!(
                err.contains(&format!("{path}: {reason}")) || err.contains(reason),
                "{err}"
            );
        }
        let err = check(with("aipid", json!(7))).unwrap_err();
        assert!(
            err.ends_with("/aipid: must be a string, but it is a number"),
            "{err}"
        );
        // Problems of the whole message keep their own words, each once.
        let err = check(json!({})).unwrap_err();
        for key in ["action", "aipid", "filenames"] {
            assert_eq!(
                err.matches(&format!("\"{key}\" is a required")).count(),
                1,
                "{err}"
            );
        }
    }

    #[test]
    fn parse_refuses_repeated_keys_and_completion_fields() {
        let schema = MessageSchema::embedded();
        let body = r#"{"action": "archive", "aipid": "../x", "aipid": "c1", "filenames": [],
                       "timestamp": "2024-05-01T12:34:56"}"#;
        let err = schema.parse(body).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::DataErr);
        assert!(
            err.to_string()
                .starts_with("message body is refused: the key \"aipid\" appears twice"),
            "{err}"
        );
        let mut request = base();
        request["truncated"] = json!(true);
        request["original_body"] = json!("{}");
        let err = schema.parse(&request.to_string()).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::DataErr);
        assert!(
            err.to_string()
                .ends_with("/original_body, /truncated: only a completion carries these fields; a request must not"),
            "{err}"
        );
        // The same value is a valid completion, and a request without them parses.
        schema.validate(&request).unwrap();
        schema.parse(&base().to_string()).unwrap();
    }

    #[test]
    fn parse_reports_non_json() {
        let err = MessageSchema::embedded().parse("not json").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert_eq!(err.exit(), crate::exit::Exit::DataErr);
    }

    #[test]
    fn name_errors_say_the_rule_and_what_breaks_it() {
        let err = check(with("filenames", json!(["a//b"]))).unwrap_err();
        assert!(err.contains("relative path"), "{err}");
        assert!(err.contains("empty component"), "{err}");
        let err = check(with("aipid", json!("a/b"))).unwrap_err();
        assert!(err.contains("aipid must be"), "{err}");
        assert!(err.contains("'/'"), "{err}");
        // A 1 MiB name is not echoed.
        let err = check(with("filenames", json!(["x".repeat(1 << 20)]))).unwrap_err();
        assert!(err.len() < 1000, "{} bytes", err.len());
    }

    /// Names that the schema and [`names`] must judge alike.
    fn name_table() -> Vec<String> {
        let mut table: Vec<String> = [
            "a",
            "a.txt",
            "a/b",
            "sub/dir/b.bin",
            ".hidden",
            "x/.y",
            "..a",
            "a..b",
            "...",
            "a..b/c",
            "with space",
            "ü",
            "ünïcödé.txt",
            "日本/語.txt",
            "🦀",
            "a\u{202e}txt.exe",
            "a\u{2028}b",
            "",
            "/",
            "/x",
            "//x",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            ".",
            "..",
            "../x",
            "a/..",
            "a/../b",
            "a/../../x",
            "a\0b",
            "a\nb",
            "a\tb",
            "\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9f}",
            "a\\b",
            "manifest-sha256.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        table.extend([
            "n".repeat(255),
            "n".repeat(256),
            format!("{}/{}", "n".repeat(255), "m".repeat(255)),
            format!("d/{}", "n".repeat(256)),
            vec!["n".repeat(200); 5].join("/"),
            format!(
                "{}/{}",
                vec!["n".repeat(200); 5].join("/"),
                "abcdefghijklmnopqrs"
            ),
            format!(
                "{}/{}",
                vec!["n".repeat(200); 5].join("/"),
                "abcdefghijklmnopqrst"
            ),
            "é".repeat(127),
            "x".repeat(1 << 20),
        ]);
        table
    }

    fn with_name(name: &str) -> Value {
        json!({"action":"a","aipid":"a","filenames":[name],"timestamp":"2024-01-01T00:00:00"})
    }

    /// The JSON Schema's patterns alone, without the name rules
    /// [`MessageSchema::validate`] adds.
    fn schema_accepts_name(schema: &MessageSchema, name: &str) -> bool {
        schema.validator.is_valid(&with_name(name))
    }

    fn schema_accepts_aipid(schema: &MessageSchema, aipid: &str) -> bool {
        let v =
            json!({"action":"a","aipid":aipid,"filenames":[],"timestamp":"2024-01-01T00:00:00"});
        schema.validator.is_valid(&v)
    }

    #[test]
    fn the_schema_and_the_name_rules_agree() {
        let schema = MessageSchema::embedded();
        for name in name_table() {
            assert_eq!(
                schema_accepts_name(&schema, &name),
                names::is_valid_relative_name(&name),
                "file name {:?}",
                crate::text::excerpt(&name, 80)
            );
        }
        let aipids = [
            "a", "_a", "A.b_c-9", "aip-0001", ".a", "-a", "..", ".", "a/b", "a b", "a\0b", "a\nb",
            "", "é", "a\\b", "a:b",
        ];
        for aipid in aipids
            .iter()
            .map(|s| s.to_string())
            .chain(["a".repeat(128), "a".repeat(129)])
        {
            assert_eq!(
                schema_accepts_aipid(&schema, &aipid),
                names::is_valid_aipid(&aipid),
                "aipid {aipid:?}"
            );
        }
    }

    #[test]
    fn byte_limits_are_the_one_rule_the_schema_cannot_state() {
        // JSON Schema counts characters: 128 two-byte characters are 256
        // bytes, over a component's limit, yet 128 characters to the schema.
        let schema = MessageSchema::embedded();
        for name in ["é".repeat(128), vec!["é".repeat(120); 5].join("/")] {
            assert!(schema_accepts_name(&schema, &name));
            let problem = names::check_relative_name(&name).unwrap_err();
            assert!(problem.is_byte_length(), "{problem}");
            // validate applies the rule the patterns cannot state.
            let err = check(with_name(&name)).unwrap_err();
            assert!(err.contains("/filenames/0: each file name"), "{err}");
            assert!(err.contains("longer than"), "{err}");
        }
    }

    #[test]
    fn a_loose_schema_file_still_applies_the_name_rules() {
        let loose = MessageSchema::compile("{}", "loose").unwrap();
        loose.validate(&base()).unwrap();
        let bad = json!({"aipid": "../x", "filenames": ["a", "a//b", 7, "./c", "/d", "e/.."]});
        let err = loose.validate(&bad).unwrap_err().to_string();
        assert!(err.contains("/aipid: aipid must be"), "{err}");
        assert!(err.contains("/filenames/1: each file name"), "{err}");
        assert!(err.contains("empty component"), "{err}");
        assert!(err.contains("/filenames/3:"), "{err}");
        assert!(
            !err.contains("/filenames/2"),
            "types are the schema's: {err}"
        );
        assert!(
            !err.contains("/filenames/4"),
            "at most {MAX_REPORTED}: {err}"
        );
        // Reported once, not by the schema and again by the rules.
        let err = check(with("filenames", json!(["a//b"]))).unwrap_err();
        assert_eq!(err.matches("/filenames/0").count(), 1, "{err}");
    }
}
