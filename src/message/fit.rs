//! Fitting a completion to a size: a handler's result loses its per-file
//! entries before anything else, so the summary (counts, bytes, the
//! manifest's path and SHA-256, which covers every file) always fits.
//!
//! Pure functions over JSON values; what happens to a completion that still
//! does not fit is the poller's business.

use serde_json::{Value, json};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
