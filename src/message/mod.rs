//! The messages this toolkit writes: archive requests and their completions.
//!
//! Pure functions over JSON values; the clock is passed in.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub mod fit;
pub mod names;
pub mod schema;

use crate::error::Error;
use crate::queue::OutgoingMessage;
use crate::time::rfc3339_utc;

/// The action `process_message` performs.
pub const ARCHIVE_ACTION: &str = "archive";

/// How urgent a request is (carried along; SQS itself has no priorities).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Priority, String> {
        match s {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            other => Err(format!(
                "invalid priority {other:?}: expected low, medium or high"
            )),
        }
    }
}

/// An archive request as sent by `sqs_archive send` (and by the prototype).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestMessage {
    pub action: String,
    pub aipid: String,
    #[serde(default)]
    pub filenames: Vec<String>,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Fields this version does not know, kept so completions carry them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RequestMessage {
    /// A new request stamped with `now`.
    pub fn new(
        action: &str,
        aipid: &str,
        filenames: Vec<String>,
        priority: Priority,
        now: SystemTime,
    ) -> RequestMessage {
        RequestMessage {
            action: action.to_string(),
            aipid: aipid.to_string(),
            filenames,
            timestamp: rfc3339_utc(now),
            priority: Some(priority),
            extra: Map::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a RequestMessage always serializes")
    }
}

/// What `process_message` acts on: a request's action, aipid and file
/// names, typed and checked against [`names`] whatever schema let the
/// message through (a profile's `schema_file` may be as loose as `{}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRequest {
    pub action: String,
    pub aipid: String,
    /// Empty asks for the whole `<aipid>` directory.
    pub filenames: Vec<String>,
}

impl ArchiveRequest {
    /// Reads the fields of a parsed message. A field of the wrong type (a
    /// `filenames` that is not an array of strings, say) is refused as bad
    /// data rather than read as absent: `filenames: [42]` must not become
    /// "the whole directory".
    pub fn from_json(message: &Value) -> Result<ArchiveRequest, Error> {
        let string = |key: &str| match message.get(key) {
            Some(Value::String(text)) => Ok(text.clone()),
            other => Err(mistyped(key, "a string", other)),
        };
        let action = string("action")?;
        let aipid = string("aipid")?;
        names::validate_aipid(&aipid)?;
        let filenames = match message.get("filenames") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(name) => {
                        names::validate_relative_name(name)?;
                        Ok(name.clone())
                    }
                    other => Err(mistyped(&format!("filenames/{i}"), "a string", Some(other))),
                })
                .collect::<Result<Vec<String>, Error>>()?,
            other => return Err(mistyped("filenames", "an array of strings", other)),
        };
        Ok(ArchiveRequest {
            action,
            aipid,
            filenames,
        })
    }
}

/// The error for a request field of the wrong JSON type.
fn mistyped(path: &str, expected: &str, found: Option<&Value>) -> Error {
    Error::InvalidData(format!(
        "the request's /{path} must be {expected}, but it is {}",
        kind_of(found)
    ))
}

/// A JSON value's kind in words, for errors: "a number", "null", "missing".
pub(crate) fn kind_of(found: Option<&Value>) -> &'static str {
    match found {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

/// The FIFO message group for an aipid: one group per package keeps its jobs in order.
pub fn group_id(aipid: &str) -> String {
    format!("archive-{aipid}")
}

/// Wraps a message body for a queue; FIFO fields are used only by FIFO queues.
pub fn outgoing(body: &Value) -> OutgoingMessage {
    let aipid = body
        .get("aipid")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    OutgoingMessage {
        body: body.to_string(),
        group_id: Some(group_id(aipid)),
        dedup_id: None,
    }
}

/// The fields only a completion carries: what [`success_completion`] and
/// [`failure_completion`] write, and what the poller adds when it shrinks a
/// completion to fit (`truncated`, the `full_completion_*` and
/// `original_body_*` digests) or drops a result's file entries
/// (`files_omitted`, `unparsed_stdout`). A request carrying any of them is
/// refused ([`refuse_completion_fields`]): its unknown fields pass into its
/// completion, so it could otherwise forge one.
pub const COMPLETION_ONLY_FIELDS: &[&str] = &[
    "success",
    "message",
    "request_message_id",
    "result",
    "original_body",
    "original_body_bytes",
    "original_body_sha256",
    "original_body_head",
    "truncated",
    "full_completion_bytes",
    "full_completion_sha256",
    "files_omitted",
    "unparsed_stdout",
];

/// Refuses a request that carries a field of [`COMPLETION_ONLY_FIELDS`]
/// (exit 65), naming every one it carries.
pub fn refuse_completion_fields(request: &Value) -> Result<(), Error> {
    let Some(object) = request.as_object() else {
        return Ok(());
    };
    let carried: Vec<&str> = COMPLETION_ONLY_FIELDS
        .iter()
        .copied()
        .filter(|field| object.contains_key(*field))
        .collect();
    if carried.is_empty() {
        return Ok(());
    }
    let paths: Vec<String> = carried.iter().map(|field| format!("/{field}")).collect();
    Err(Error::InvalidData(format!(
        "message does not match the schema: {}: only a completion carries {}; a request must not",
        paths.join(", "),
        if carried.len() == 1 {
            "this field"
        } else {
            "these fields"
        }
    )))
}

/// The completion for a request that was archived: the request's fields,
/// `success: true`, a new timestamp, the request's message id and the handler's result.
/// Completion-only fields are never taken from the request (the poller
/// refuses such a request before it runs; this holds for any caller).
pub fn success_completion(
    request: &Value,
    request_message_id: &str,
    note: &str,
    result: Value,
    now: SystemTime,
) -> Value {
    let mut out = request.as_object().cloned().unwrap_or_default();
    out.retain(|field, _| !COMPLETION_ONLY_FIELDS.contains(&field.as_str()));
    out.insert("success".into(), json!(true));
    out.insert("message".into(), json!(note));
    out.insert("timestamp".into(), json!(rfc3339_utc(now)));
    out.insert("request_message_id".into(), json!(request_message_id));
    out.insert("result".into(), result);
    Value::Object(out)
}

/// The completion for a request that can never succeed. It still validates
/// against the schema (missing or invalid fields get placeholders) and
/// carries the original body verbatim, so nothing of the request is lost.
pub fn failure_completion(
    original_body: &str,
    request_message_id: &str,
    reason: &str,
    now: SystemTime,
) -> Value {
    // Read as strictly as the request was: of two `aipid`s, neither is taken.
    let parsed = match crate::json::parse(original_body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let field = |name: &str| parsed.as_ref().and_then(|m| m.get(name));
    let valid_aipid = field("aipid")
        .and_then(Value::as_str)
        .filter(|a| names::is_valid_aipid(a));
    let valid_names = field("filenames")
        .and_then(Value::as_array)
        .filter(|names| {
            names
                .iter()
                .all(|n| n.as_str().is_some_and(names::is_valid_relative_name))
        });
    json!({
        "action": field("action").and_then(Value::as_str).filter(|a| !a.is_empty() && a.len() <= 64).unwrap_or("unknown"),
        "aipid": valid_aipid.unwrap_or("unknown"),
        "filenames": valid_names.cloned().unwrap_or_default(),
        "timestamp": rfc3339_utc(now),
        "success": false,
        "message": reason,
        "request_message_id": request_message_id,
        "original_body": original_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::schema::MessageSchema;
    use std::time::{Duration, UNIX_EPOCH};

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_856_051)
    }

    #[test]
    fn new_request_validates_and_has_priority() {
        let r = RequestMessage::new(
            "archive",
            "mds2909",
            vec!["a".into()],
            Priority::High,
            now(),
        );
        let v = r.to_json();
        MessageSchema::embedded().validate(&v).unwrap();
        assert_eq!(v["priority"], "high");
        assert_eq!(v["timestamp"], "2026-11-28T08:54:11.000Z");
    }

    #[test]
    fn success_completion_keeps_request_fields() {
        let req = json!({"action":"archive","aipid":"x1","filenames":["a"],"timestamp":"2024-01-01T00:00:00","custom":7});
        let c = success_completion(&req, "m-1", "archived", json!({"files": 1}), now());
        MessageSchema::embedded().validate(&c).unwrap();
        assert_eq!(c["success"], true);
        assert_eq!(c["custom"], 7);
        assert_eq!(c["request_message_id"], "m-1");
        assert_eq!(c["result"]["files"], 1);
        assert_ne!(c["timestamp"], req["timestamp"]);
    }

    #[test]
    fn requests_cannot_carry_completion_fields() {
        let req = json!({"action":"archive","aipid":"x1","filenames":["a"],"timestamp":"2024-01-01T00:00:00"});
        refuse_completion_fields(&req).unwrap();
        for field in COMPLETION_ONLY_FIELDS {
            let mut forged = req.clone();
            forged[*field] = json!(true);
            let err = refuse_completion_fields(&forged).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::DataErr);
            assert!(
                err.to_string()
                    .contains(&format!("/{field}: only a completion")),
                "{err}"
            );
            // And were one to reach a completion builder, it is not copied.
            let c = success_completion(&forged, "m-1", "archived", json!({"files": []}), now());
            for other in COMPLETION_ONLY_FIELDS {
                if !["success", "message", "request_message_id", "result"].contains(other) {
                    assert!(c.get(*other).is_none(), "{field}: {c}");
                }
            }
            assert_eq!(c["result"], json!({"files": []}));
        }
        // Every field a completion builder or the fitting writes is listed.
        let completion = success_completion(&req, "m", "ok", json!({}), now());
        let failure = failure_completion("x", "m", "bad", now());
        for c in [completion, failure] {
            for key in c.as_object().unwrap().keys() {
                assert!(
                    ["action", "aipid", "filenames", "timestamp"].contains(&key.as_str())
                        || COMPLETION_ONLY_FIELDS.contains(&key.as_str()),
                    "{key} is not listed"
                );
            }
        }
        let fitted = fit::without_file_entries(json!({"files": [], "file_count": 0}));
        assert!(
            COMPLETION_ONLY_FIELDS.contains(&"files_omitted") && fitted["files_omitted"] == true
        );
    }

    #[test]
    fn failure_completion_validates_even_for_garbage() {
        for body in [
            "not json",
            "{\"aipid\": \"../x\", \"filenames\": [\"/etc\"]}",
            "[]",
            "",
        ] {
            let c = failure_completion(body, "m-2", "bad", now());
            MessageSchema::embedded().validate(&c).unwrap();
            assert_eq!(c["success"], false);
            assert_eq!(c["original_body"], body);
            assert_eq!(c["aipid"], "unknown");
        }
        let c = failure_completion(
            "{\"aipid\":\"ok-1\",\"action\":\"zip\"}",
            "m",
            "unknown action",
            now(),
        );
        assert_eq!(c["aipid"], "ok-1");
        assert_eq!(c["action"], "zip");
    }

    #[test]
    fn archive_requests_are_typed_whatever_the_schema() {
        let base = json!({"action": "archive", "aipid": "x1", "filenames": ["a", "b/c"]});
        let request = ArchiveRequest::from_json(&base).unwrap();
        assert_eq!(request.aipid, "x1");
        assert_eq!(request.filenames, ["a", "b/c"]);
        let whole = json!({"action": "archive", "aipid": "x1", "filenames": []});
        assert!(
            ArchiveRequest::from_json(&whole)
                .unwrap()
                .filenames
                .is_empty()
        );
        for (filenames, needle) in [
            (
                json!([42]),
                "/filenames/0 must be a string, but it is a number",
            ),
            (
                json!(["a", null]),
                "/filenames/1 must be a string, but it is null",
            ),
            (
                json!([["a"]]),
                "/filenames/0 must be a string, but it is an array",
            ),
            (
                json!("a"),
                "/filenames must be an array of strings, but it is a string",
            ),
            (json!({"a": 1}), "an array of strings, but it is an object"),
            (json!(["a//b"]), "empty component"),
            (json!(["./a"]), "'.' component"),
        ] {
            let mut message = base.clone();
            message["filenames"] = filenames;
            let err = ArchiveRequest::from_json(&message).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::DataErr, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove("filenames");
        let err = ArchiveRequest::from_json(&missing).unwrap_err();
        assert!(err.to_string().contains("but it is missing"), "{err}");
        let mut number = base.clone();
        number["aipid"] = json!(7);
        let err = ArchiveRequest::from_json(&number).unwrap_err();
        assert!(err.to_string().contains("/aipid must be a string"), "{err}");
    }
}
