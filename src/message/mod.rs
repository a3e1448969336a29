//! The messages this toolkit writes: archive requests and their completions.
//!
//! Pure functions over JSON values; the clock is passed in.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub mod schema;

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

/// The most a handler may print on stdout: the poller keeps this much and
/// `process_message` never prints more (it drops the per-file entries first).
pub const MAX_HANDLER_OUTPUT: usize = 16 << 20;

/// A handler's result without its per-file entries: what stays is the
/// summary (counts, total bytes, the manifest's path and SHA-256; the
/// manifest holds every file's hash), with `files_omitted: true`.
pub fn without_file_entries(mut result: Value) -> Value {
    if let Some(object) = result.as_object_mut()
        && object.remove("files").is_some()
    {
        object.insert("files_omitted".into(), json!(true));
    }
    result
}

/// A completion that fits in `max_bytes` once its result's per-file entries
/// are dropped, or the completion unchanged when it fits already or would
/// not fit even so (the caller then shrinks it further).
pub fn shrink_result(completion: Value, max_bytes: usize) -> Value {
    if completion.to_string().len() <= max_bytes || completion.get("result").is_none() {
        return completion;
    }
    let mut smaller = completion.clone();
    if let Some(result) = smaller.get_mut("result") {
        *result = without_file_entries(result.take());
    }
    if smaller.to_string().len() <= max_bytes {
        smaller
    } else {
        completion
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

/// The completion for a request that was archived: the request's fields,
/// `success: true`, a new timestamp, the request's message id and the handler's result.
pub fn success_completion(
    request: &Value,
    request_message_id: &str,
    note: &str,
    result: Value,
    now: SystemTime,
) -> Value {
    let mut out = request.as_object().cloned().unwrap_or_default();
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
    let parsed: Option<Map<String, Value>> = serde_json::from_str(original_body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|m| m.get(name));
    let valid_aipid = field("aipid")
        .and_then(Value::as_str)
        .filter(|a| is_safe_aipid(a));
    let valid_names = field("filenames")
        .and_then(Value::as_array)
        .filter(|names| {
            names
                .iter()
                .all(|n| n.as_str().is_some_and(is_safe_relative_name))
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

/// Same rule as the schema's `aipid` pattern.
pub fn is_safe_aipid(aipid: &str) -> bool {
    let mut chars = aipid.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && aipid.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Same rule as the schema's `relative_path`: relative, no `..`, no control characters.
pub fn is_safe_relative_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && !name.starts_with('/')
        && !name.chars().any(|c| c.is_control())
        && !name.split('/').any(|part| part == "..")
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
    fn oversized_results_lose_their_file_entries_first() {
        let files: Vec<Value> = (0..1000)
            .map(|i| json!({"name": format!("f{i}"), "sha256": "0".repeat(64)}))
            .collect();
        let result =
            json!({"file_count": 1000, "total_bytes": 5, "manifest_sha256": "ab", "files": files});
        let c = json!({"aipid": "x", "success": true, "result": result});
        assert_eq!(shrink_result(c.clone(), 1 << 20), c);
        let small = shrink_result(c.clone(), 2000);
        assert!(small.to_string().len() <= 2000);
        assert!(small["result"].get("files").is_none());
        assert_eq!(small["result"]["files_omitted"], true);
        assert_eq!(small["result"]["file_count"], 1000);
        assert_eq!(small["result"]["manifest_sha256"], "ab");
        // Too big even without them: left for the caller to shrink further.
        assert_eq!(shrink_result(c.clone(), 10), c);
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
    fn safe_name_rules_match_schema() {
        let schema = MessageSchema::embedded();
        // U+0085 is a C1 control: archive::validate_relative_name refuses it.
        for name in [
            "a", "a/b", "..a", "/x", "../x", "a/..", "a\nb", "", "ü", "a\u{85}b",
        ] {
            let v = json!({"action":"a","aipid":"a","filenames":[name],"timestamp":"2024-01-01T00:00:00"});
            assert_eq!(
                schema.validate(&v).is_ok(),
                is_safe_relative_name(name),
                "{name:?}"
            );
        }
        for aipid in ["a", "_a", ".a", "-a", "a.b-c_d", "a/b", "", "é"] {
            let v = json!({"action":"a","aipid":aipid,"filenames":[],"timestamp":"2024-01-01T00:00:00"});
            assert_eq!(
                schema.validate(&v).is_ok(),
                is_safe_aipid(aipid),
                "{aipid:?}"
            );
        }
    }
}
