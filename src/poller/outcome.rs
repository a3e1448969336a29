//! What a handler's run means for its request: the outcome contract, as pure functions.
//!
//! | handler ended with            | outcome                                   |
//! |-------------------------------|-------------------------------------------|
//! | exit 0                        | success completion, then delete           |
//! | exit 65, bad JSON, bad schema | failure completion with the body, delete  |
//! | anything else                 | retry later (visibility backoff); after   |
//! |                               | `max_receive_count` receives, give up as  |
//! |                               | a failure (or leave it to the redrive)    |

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::aws::retry::RetryPolicy;
use crate::exit::Exit;
use crate::message::{failure_completion, success_completion};
use crate::text::excerpt;

/// How a handler process ended (`Interrupted`: stopped for shutdown).
pub use crate::subprocess::Ending;

/// What to do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Send this completion, then delete the request.
    Complete { completion: Value, success: bool },
    /// Hide the request for this long so it is retried.
    Retry { delay: Duration, reason: String },
    /// Make it visible again at once (shutdown: someone else may take it now).
    Release { reason: String },
}

/// The retry policy of the poller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRules {
    pub max_receive_count: u32,
    pub use_redrive_policy: bool,
    pub base: Duration,
    pub max: Duration,
}

/// The longest visibility SQS allows: 12 hours.
pub const LONGEST_VISIBILITY: Duration = Duration::from_secs(43_200);

/// The visibility delay before retry number `receive_count`: `base * 2^(n-1)`,
/// capped at `max` and at the longest visibility SQS allows (12 hours); the
/// client's [`RetryPolicy::ceiling`], without jitter (the queue spreads them).
pub fn backoff(rules: &RetryRules, receive_count: u32) -> Duration {
    RetryPolicy {
        max_attempts: rules.max_receive_count.max(1),
        base: rules.base,
        cap: rules.max.min(LONGEST_VISIBILITY),
    }
    .ceiling(receive_count)
}

/// The facts about one handler run that decide its outcome.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    pub message_id: &'a str,
    pub body: &'a str,
    pub request: &'a Value,
    pub receive_count: u32,
    pub ending: Ending,
    pub stdout: &'a [u8],
    /// The last lines the handler wrote to stderr, for the failure message.
    pub stderr_tail: &'a str,
}

/// Decides the outcome of a run.
pub fn decide(run: &Run, rules: &RetryRules, now: SystemTime) -> Outcome {
    let why = |what: String| {
        if run.stderr_tail.is_empty() {
            what
        } else {
            format!("{what}: {}", excerpt(run.stderr_tail, 300))
        }
    };
    match &run.ending {
        Ending::Exited(0) => {
            let result = match serde_json::from_slice::<Value>(run.stdout) {
                Ok(v) => v,
                Err(_) => {
                    // The work is done (exit 0 is the contract); keep what it said.
                    json!({ "unparsed_stdout": cut(&String::from_utf8_lossy(run.stdout), 2000) })
                }
            };
            let files = result.get("files").and_then(Value::as_array).map(Vec::len);
            let note = match files {
                Some(n) => format!("archived {n} file(s)"),
                None => "handler succeeded".to_string(),
            };
            Outcome::Complete {
                completion: success_completion(run.request, run.message_id, &note, result, now),
                success: true,
            }
        }
        Ending::Exited(code) if *code == i32::from(Exit::DataErr.as_u8()) => permanent(
            run,
            &why("the handler refused the request as bad data (exit 65)".into()),
            now,
        ),
        Ending::Interrupted => Outcome::Release {
            reason: "the poller is shutting down".into(),
        },
        // A fault of this host, not of the request: never counted toward giving it up.
        Ending::SpawnFailed(e) => Outcome::Release {
            reason: format!("the handler could not be started: {e}"),
        },
        other => {
            let reason = match other {
                Ending::Exited(code) => why(format!("the handler failed with exit status {code}")),
                Ending::Signaled(sig) => why(format!("the handler was killed by signal {sig}")),
                Ending::TimedOut => "the handler ran past handler_timeout and was killed".into(),
                Ending::Interrupted | Ending::SpawnFailed(_) => unreachable!("matched above"),
            };
            transient(run, rules, reason, now)
        }
    }
}

/// The one line that tells an operator a request failed for good (refused
/// by the handler, or given up after `max_receive_count` receives): its
/// `msg <id> aipid <aipid>` context and the reason, escaped and bounded.
/// `None` for any other outcome.
pub fn failure_line(context: &str, outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Complete {
            completion,
            success: false,
        } => {
            let reason = completion
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Some(format!(
                "{context}: request failed: {}; a failure completion is sent",
                excerpt(reason, 500)
            ))
        }
        _ => None,
    }
}

/// At most `max_chars` characters, as they are: data kept inside a
/// completion (JSON escapes it), not text printed.
fn cut(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A failure that may pass on another try, unless the request has been tried enough.
pub fn transient(run: &Run, rules: &RetryRules, reason: String, now: SystemTime) -> Outcome {
    if run.receive_count >= rules.max_receive_count && !rules.use_redrive_policy {
        return permanent(
            run,
            &format!("given up after {} receives: {reason}", run.receive_count),
            now,
        );
    }
    Outcome::Retry {
        delay: backoff(rules, run.receive_count),
        reason,
    }
}

/// A failure that no retry will mend: a failure completion carrying the body.
pub fn permanent(run: &Run, reason: &str, now: SystemTime) -> Outcome {
    Outcome::Complete {
        completion: failure_completion(run.body, run.message_id, reason, now),
        success: false,
    }
}

/// Shrinks a completion that would not fit in a message, keeping what
/// identifies the request and a digest of what was dropped.
pub fn fit(completion: Value, max_bytes: usize) -> Value {
    let completion = crate::message::fit::shrink_result(completion, max_bytes);
    let text = completion.to_string();
    if text.len() <= max_bytes {
        return completion;
    }
    let digest = crate::digest::sha256_hex(&text);
    let keep = |k: &str| completion.get(k).cloned().unwrap_or(Value::Null);
    let original = completion.get("original_body").and_then(Value::as_str);
    let mut out = json!({
        "action": keep("action"),
        "aipid": keep("aipid"),
        "filenames": [],
        "timestamp": keep("timestamp"),
        "success": keep("success"),
        "message": keep("message"),
        "request_message_id": keep("request_message_id"),
        "truncated": true,
        "full_completion_bytes": text.len(),
        "full_completion_sha256": digest,
    });
    if let Some(body) = original {
        out["original_body_bytes"] = json!(body.len());
        out["original_body_sha256"] = json!(crate::digest::sha256_hex(body));
        // Keep as much of the body's head as fits, measured as serialized bytes.
        let mut keep = body.len().min(max_bytes);
        loop {
            let mut cut = keep;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            out["original_body_head"] = json!(&body[..cut]);
            if out.to_string().len() <= max_bytes || cut == 0 {
                break;
            }
            keep = cut / 2;
        }
    }
    out
}

/// The smallest completion that still identifies its request: what a
/// completion queue that refused the fitted one is offered last.
pub fn identity(completion: &Value) -> Value {
    let keep = |k: &str| completion.get(k).cloned().unwrap_or(Value::Null);
    let aipid = match completion.get("aipid") {
        Some(Value::String(s)) => json!(&s[..crate::text::floor_char_boundary(s, 256)]),
        other => other.cloned().unwrap_or(Value::Null),
    };
    let message = completion
        .get("message")
        .and_then(Value::as_str)
        .map(|m| &m[..crate::text::floor_char_boundary(m, 200)])
        .unwrap_or("");
    json!({
        "action": keep("action"),
        "aipid": aipid,
        "filenames": [],
        "timestamp": keep("timestamp"),
        "success": keep("success"),
        "message": message,
        "request_message_id": keep("request_message_id"),
        "truncated": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::schema::MessageSchema;
    use std::time::UNIX_EPOCH;

    const RULES: RetryRules = RetryRules {
        max_receive_count: 3,
        use_redrive_policy: false,
        base: Duration::from_secs(10),
        max: Duration::from_secs(60),
    };

    fn request() -> Value {
        json!({"action":"archive","aipid":"a1","filenames":["x"],"timestamp":"2024-01-01T00:00:00"})
    }

    fn run_with<'a>(request: &'a Value, ending: Ending, stdout: &'a [u8], count: u32) -> Run<'a> {
        Run {
            message_id: "m1",
            body: "{\"raw\":1}",
            request,
            receive_count: count,
            ending,
            stdout,
            stderr_tail: "boom",
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_856_051)
    }

    /// The completion of a success outcome.
    fn success(out: Outcome) -> Value {
        match out {
            Outcome::Complete {
                completion,
                success: true,
            } => completion,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exit_zero_is_a_success_completion_with_the_result() {
        let req = request();
        let out = decide(
            &run_with(&req, Ending::Exited(0), br#"{"files":[{"name":"x"}]}"#, 1),
            &RULES,
            now(),
        );
        let completion = success(out);
        assert_eq!(completion["message"], "archived 1 file(s)");
        assert_eq!(completion["request_message_id"], "m1");
        MessageSchema::embedded().validate(&completion).unwrap();
        let out = decide(
            &run_with(&req, Ending::Exited(0), b"garbage", 1),
            &RULES,
            now(),
        );
        let completion = success(out);
        assert_eq!(completion["result"]["unparsed_stdout"], "garbage");
    }

    #[test]
    fn exit_65_is_permanent_with_the_original_body() {
        let req = request();
        let out = decide(&run_with(&req, Ending::Exited(65), b"", 1), &RULES, now());
        let Outcome::Complete {
            completion,
            success: false,
        } = out
        else {
            panic!()
        };
        assert_eq!(completion["original_body"], "{\"raw\":1}");
        assert!(completion["message"].as_str().unwrap().contains("boom"));
    }

    #[test]
    fn other_endings_retry_with_growing_delay_then_give_up() {
        let req = request();
        for ending in [
            Ending::Exited(1),
            Ending::Exited(75),
            Ending::Signaled(9),
            Ending::TimedOut,
        ] {
            let Outcome::Retry { delay, .. } =
                decide(&run_with(&req, ending.clone(), b"", 1), &RULES, now())
            else {
                panic!("{ending:?}")
            };
            assert_eq!(delay, Duration::from_secs(10));
        }
        // A handler that cannot start is this host's fault: released, never given up.
        let out = decide(
            &run_with(&req, Ending::SpawnFailed("ENOENT".into()), b"", 99),
            &RULES,
            now(),
        );
        assert!(matches!(out, Outcome::Release { .. }), "{out:?}");
        let Outcome::Retry { delay, .. } =
            decide(&run_with(&req, Ending::Exited(1), b"", 2), &RULES, now())
        else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(20));
        let out = decide(&run_with(&req, Ending::Exited(1), b"", 3), &RULES, now());
        let Outcome::Complete {
            completion,
            success: false,
        } = out
        else {
            panic!("{out:?}")
        };
        assert!(
            completion["message"]
                .as_str()
                .unwrap()
                .starts_with("given up after 3 receives")
        );
        let given_up = Outcome::Complete {
            completion: completion.clone(),
            success: false,
        };
        let line = failure_line("msg m-1 aipid a-1", &given_up).unwrap();
        assert!(
            line.starts_with("msg m-1 aipid a-1: request failed: given up after 3 receives"),
            "{line}"
        );
        let redrive = RetryRules {
            use_redrive_policy: true,
            ..RULES
        };
        assert!(matches!(
            decide(&run_with(&req, Ending::Exited(1), b"", 9), &redrive, now()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            decide(&run_with(&req, Ending::Interrupted, b"", 1), &RULES, now()),
            Outcome::Release { .. }
        ));
    }

    #[test]
    fn a_failure_line_is_one_bounded_inert_line_and_only_for_failures() {
        let completion = failure_completion(
            "{}",
            "m",
            &format!("bad\n\x1b[31m{}", "x".repeat(5000)),
            now(),
        );
        let failed = Outcome::Complete {
            completion: completion.clone(),
            success: false,
        };
        let line = failure_line("msg m aipid ?", &failed).unwrap();
        assert!(!line.contains('\n') && !line.contains('\x1b'), "{line}");
        assert!(line.len() < 700, "{}", line.len());
        let ok = Outcome::Complete {
            completion,
            success: true,
        };
        assert_eq!(failure_line("c", &ok), None);
        let retry = Outcome::Retry {
            delay: Duration::from_secs(1),
            reason: "r".into(),
        };
        assert_eq!(failure_line("c", &retry), None);
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(&RULES, 1), Duration::from_secs(10));
        assert_eq!(backoff(&RULES, 3), Duration::from_secs(40));
        assert_eq!(backoff(&RULES, 4), Duration::from_secs(60));
        assert_eq!(backoff(&RULES, 1000), Duration::from_secs(60));
    }

    #[test]
    fn oversized_completions_are_shrunk_but_identify_the_request() {
        let body = "x".repeat(300_000);
        let c = failure_completion(&body, "m9", "too big", now());
        let small = fit(c, 100_000);
        assert!(small.to_string().len() <= 100_000);
        // Multibyte text and quotes grow when serialized; the limit still holds.
        for body in ["日本語".repeat(40_000), "\"\u{1}".repeat(60_000)] {
            let c = failure_completion(&body, "m9", "too big", now());
            let small = fit(c, 100_000);
            assert!(
                small.to_string().len() <= 100_000,
                "{}",
                small.to_string().len()
            );
        }
        assert_eq!(small["truncated"], true);
        assert_eq!(small["request_message_id"], "m9");
        assert_eq!(small["original_body_bytes"], 300_000);
        MessageSchema::embedded().validate(&small).unwrap();
        let c = json!({"a": 1});
        assert_eq!(fit(c.clone(), 100), c);
    }
}
