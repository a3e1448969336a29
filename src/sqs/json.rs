//! The SQS JSON 1.0 protocol (AWS JSON 1.0): JSON requests, JSON answers.
//!
//! Every call is a POST to the endpoint with `x-amz-target: AmazonSQS.<Action>`
//! and a JSON object whose members carry the API's own names. Errors name
//! their type in `__type` (`com.amazonaws.sqs#QueueDoesNotExist`); SQS also
//! sends the query protocol's code in `x-amzn-query-error`, and that one is
//! preferred so errors classify the same whichever protocol is configured.
//! Pure, like every codec: no I/O, no clock.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::api::{
    Call, Codec, Encoded, Reply, SendEntry, WireBatch, WireMessage, WireSent, order_batch,
};
use crate::error::{Error, Result, ServiceError};
use crate::text::excerpt;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const TARGET_PREFIX: &str = "AmazonSQS.";

/// At most this many characters of an unreadable answer end up in an error,
/// so a large proxy page or a hostile server cannot flood the logs.
const ECHO_CHARS: usize = 120;

/// The server's own error messages get more room: real ones run past 120
/// characters (fauxqs's `InvalidMessageContents` is 137) and the tail matters.
const MESSAGE_CHARS: usize = 300;

/// The JSON 1.0 protocol codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn encode(&self, call: &Call) -> Encoded {
        Encoded {
            headers: vec![
                ("content-type".into(), CONTENT_TYPE.into()),
                (
                    "x-amz-target".into(),
                    format!("{TARGET_PREFIX}{}", call.action()),
                ),
            ],
            body: request_body(call).to_string().into_bytes(),
        }
    }

    fn decode(
        &self,
        call: &Call,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Reply> {
        let action = call.action();
        if status >= 300 {
            return Err(Error::Service(service_error(action, status, headers, body)));
        }
        // Deletes and visibility changes answer `{}`, but an empty body says the same.
        let done = matches!(
            call,
            Call::DeleteMessage { .. } | Call::ChangeMessageVisibility { .. }
        );
        if done && body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Reply::Done);
        }
        let answer = parse_object(body).map_err(|detail| Error::Protocol {
            action,
            detail: format!("HTTP {status}: {detail}"),
        })?;
        let answer = &answer;
        Ok(match call {
            Call::SendMessage { .. } => Reply::Sent(sent(answer, action)?),
            Call::SendMessageBatch { entries, .. } => {
                let mut found = failed(answer, action)?;
                for e in list(answer, "Successful", action)? {
                    let e = entry(e, action)?;
                    found.push((required(e, "Id", action)?, Ok(sent(e, action)?)));
                }
                Reply::SentBatch(order_batch(action, entries.len(), found)?)
            }
            Call::ReceiveMessage { .. } => Reply::Received(
                list(answer, "Messages", action)?
                    .iter()
                    .map(|m| message(entry(m, action)?, action))
                    .collect::<Result<_>>()?,
            ),
            Call::DeleteMessage { .. } | Call::ChangeMessageVisibility { .. } => Reply::Done,
            Call::DeleteMessageBatch { receipts, .. } => {
                Reply::DoneBatch(done_batch(answer, action, receipts.len())?)
            }
            Call::ChangeMessageVisibilityBatch { entries, .. } => {
                Reply::DoneBatch(done_batch(answer, action, entries.len())?)
            }
            Call::GetQueueAttributes { .. } => {
                Reply::Attributes(string_map(answer, "Attributes", action)?)
            }
            Call::CreateQueue { .. } => Reply::QueueUrl(required(answer, "QueueUrl", action)?),
        })
    }
}

/// The JSON request body of a call, with the API's member names.
pub fn request_body(call: &Call) -> Value {
    match call {
        Call::SendMessage { queue, entry } => {
            let mut body = send_entry(entry);
            body.insert("QueueUrl".into(), json!(queue));
            Value::Object(body)
        }
        Call::SendMessageBatch { queue, entries } => json!({
            "QueueUrl": queue,
            "Entries": entries
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let mut e = send_entry(entry);
                    e.insert("Id".into(), json!(i.to_string()));
                    Value::Object(e)
                })
                .collect::<Vec<_>>(),
        }),
        Call::ReceiveMessage {
            queue,
            max_messages,
            wait_seconds,
            visibility_timeout,
            attempt_id,
        } => {
            let mut body = json!({
                "QueueUrl": queue,
                "MaxNumberOfMessages": max_messages,
                "WaitTimeSeconds": wait_seconds,
                // Both spellings: `AttributeNames` is deprecated, but older emulators know only it.
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "MessageSystemAttributeNames": ["All"],
            });
            if let Some(v) = visibility_timeout {
                body["VisibilityTimeout"] = json!(v);
            }
            if let Some(id) = attempt_id {
                body["ReceiveRequestAttemptId"] = json!(id);
            }
            body
        }
        Call::DeleteMessage { queue, receipt } => json!({
            "QueueUrl": queue,
            "ReceiptHandle": receipt.as_str(),
        }),
        Call::DeleteMessageBatch { queue, receipts } => json!({
            "QueueUrl": queue,
            "Entries": receipts
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"Id": i.to_string(), "ReceiptHandle": r.as_str()}))
                .collect::<Vec<_>>(),
        }),
        Call::ChangeMessageVisibility {
            queue,
            receipt,
            timeout,
        } => json!({
            "QueueUrl": queue,
            "ReceiptHandle": receipt.as_str(),
            "VisibilityTimeout": timeout,
        }),
        Call::ChangeMessageVisibilityBatch { queue, entries } => json!({
            "QueueUrl": queue,
            "Entries": entries
                .iter()
                .enumerate()
                .map(|(i, (r, timeout))| json!({
                    "Id": i.to_string(),
                    "ReceiptHandle": r.as_str(),
                    "VisibilityTimeout": timeout,
                }))
                .collect::<Vec<_>>(),
        }),
        Call::GetQueueAttributes { queue, names } => json!({
            "QueueUrl": queue,
            "AttributeNames": names,
        }),
        Call::CreateQueue { name, attributes } => {
            let mut body = json!({ "QueueName": name });
            // Like the query codec, no attributes means no member at all.
            if !attributes.is_empty() {
                body["Attributes"] = attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect::<Map<_, _>>()
                    .into();
            }
            body
        }
    }
}

fn send_entry(entry: &SendEntry) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("MessageBody".into(), json!(entry.body));
    if let Some(g) = entry.group_id {
        e.insert("MessageGroupId".into(), json!(g));
    }
    if let Some(d) = &entry.dedup_id {
        e.insert("MessageDeduplicationId".into(), json!(d));
    }
    e
}

/// The answer as a JSON object, or why it is not one (without echoing it).
fn parse_object(body: &[u8]) -> std::result::Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(format!(
            "the answer is JSON but not an object ({})",
            kind(&other)
        )),
        Err(e) => Err(format!("the answer is not valid JSON: {e}")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error an answer with status 300 or more stands for. Never fails: what
/// cannot be read keeps at least the status, so 5xx pages stay retryable.
fn service_error(
    action: &'static str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> ServiceError {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    // `AWS.SimpleQueueService.NonExistentQueue;Sender`: the code before `;` is
    // the one the query protocol would have given.
    let query_code = header("x-amzn-query-error")
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let header_type = header("x-amzn-errortype").map(error_type);
    let (body_type, message) = match parse_object(body) {
        Ok(object) => (
            ["__type", "code", "Code"]
                .iter()
                .find_map(|k| string(&object, k))
                .map(|t| error_type(&t)),
            ["message", "Message", "errorMessage"]
                .iter()
                .find_map(|k| string(&object, k))
                .map(|m| excerpt(&m, MESSAGE_CHARS))
                .unwrap_or_default(),
        ),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
            (None, "the error answer is empty".to_string())
        }
        Err(_) => (
            None,
            format!(
                "unreadable error answer: {}",
                excerpt(&String::from_utf8_lossy(body), ECHO_CHARS)
            ),
        ),
    };
    ServiceError {
        action,
        status,
        code: query_code
            .or(body_type)
            .or(header_type)
            .unwrap_or_else(|| format!("HTTP{status}")),
        message,
        // fauxqs names it `x-amz-request-id`, as S3 does.
        request_id: header("x-amzn-requestid")
            .or_else(|| header("x-amz-request-id"))
            .map(str::to_string),
    }
}

/// An error type as sent in `__type` or `x-amzn-errortype`, without the URI
/// some servers append after `:`. The `namespace#` part stays: `short_code`
/// strips it, and it tells a reader which protocol the code came from.
fn error_type(raw: &str) -> String {
    let code = raw.split(':').next().unwrap_or(raw).trim();
    excerpt(code, ECHO_CHARS)
}

/// A string member; a member of another type counts as absent.
fn string(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name)?.as_str().map(str::to_string)
}

fn required(object: &Map<String, Value>, name: &str, action: &'static str) -> Result<String> {
    string(object, name).ok_or_else(|| Error::Protocol {
        action,
        detail: format!("the answer has no string {name}"),
    })
}

/// A list member; SQS leaves out empty lists, so absent (or null) means empty.
fn list<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    action: &'static str,
) -> Result<&'a [Value]> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(Error::Protocol {
            action,
            detail: format!("{name} is {}, not a list", kind(other)),
        }),
    }
}

fn entry<'a>(value: &'a Value, action: &'static str) -> Result<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| Error::Protocol {
        action,
        detail: format!("a list entry is {}, not an object", kind(value)),
    })
}

/// A map of strings; absent means empty. Numbers and booleans are kept as
/// their text, since callers parse counts out of these values anyway.
fn string_map(
    object: &Map<String, Value>,
    name: &str,
    action: &'static str,
) -> Result<BTreeMap<String, String>> {
    let map = match object.get(name) {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(Error::Protocol {
                action,
                detail: format!("{name} is {}, not a map", kind(other)),
            });
        }
    };
    Ok(map
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect())
}

fn sent(object: &Map<String, Value>, action: &'static str) -> Result<WireSent> {
    Ok(WireSent {
        message_id: required(object, "MessageId", action)?,
        md5_of_body: required(object, "MD5OfMessageBody", action)?,
        sequence_number: string(object, "SequenceNumber"),
    })
}

fn message(object: &Map<String, Value>, action: &'static str) -> Result<WireMessage> {
    Ok(WireMessage {
        message_id: required(object, "MessageId", action)?,
        receipt_handle: required(object, "ReceiptHandle", action)?,
        md5_of_body: required(object, "MD5OfBody", action)?,
        // As in the query codec: a missing body is "" and the MD5 check decides.
        body: string(object, "Body").unwrap_or_default(),
        attributes: string_map(object, "Attributes", action)?,
        message_attributes: message_attributes(object),
    })
}

/// `MessageAttributes`: `{name: {DataType, StringValue?, BinaryValue?}}`;
/// an entry of another shape is left out.
fn message_attributes(
    object: &Map<String, Value>,
) -> BTreeMap<String, crate::queue::MessageAttribute> {
    let Some(Value::Object(map)) = object.get("MessageAttributes") else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(name, v)| {
            let v = v.as_object()?;
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Some((
                name.clone(),
                crate::queue::MessageAttribute {
                    data_type: text("DataType").unwrap_or_default(),
                    string_value: text("StringValue"),
                    binary_value: text("BinaryValue"),
                },
            ))
        })
        .collect()
}

/// The `Failed` entries of a batch answer, by id.
fn failed<T>(
    answer: &Map<String, Value>,
    action: &'static str,
) -> Result<Vec<(String, std::result::Result<T, ServiceError>)>> {
    list(answer, "Failed", action)?
        .iter()
        .map(|e| {
            let e = entry(e, action)?;
            Ok((
                required(e, "Id", action)?,
                Err(ServiceError {
                    action,
                    // The call itself succeeded; as in the query codec.
                    status: 200,
                    code: string(e, "Code").map_or_else(String::new, |c| error_type(&c)),
                    message: string(e, "Message")
                        .map(|m| excerpt(&m, MESSAGE_CHARS))
                        .unwrap_or_default(),
                    request_id: None,
                }),
            ))
        })
        .collect()
}

fn done_batch(
    answer: &Map<String, Value>,
    action: &'static str,
    len: usize,
) -> Result<WireBatch<()>> {
    let mut found = failed(answer, action)?;
    for e in list(answer, "Successful", action)? {
        found.push((required(entry(e, action)?, "Id", action)?, Ok(())));
    }
    order_batch(action, len, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::ReceiptHandle;
    use crate::sqs::codec_tests::{fifo_send, receive};

    fn body(call: &Call) -> Value {
        serde_json::from_slice(&JsonCodec.encode(call).body).unwrap()
    }

    fn decode(call: &Call, status: u16, json: &str) -> Result<Reply> {
        JsonCodec.decode(call, status, &[], json.as_bytes())
    }

    fn service(result: Result<Reply>) -> ServiceError {
        match result {
            Err(Error::Service(e)) => e,
            other => panic!("expected a service error, got {other:?}"),
        }
    }

    #[test]
    fn encodes_headers_with_target() {
        let encoded = JsonCodec.encode(&receive());
        assert_eq!(
            encoded.headers,
            [
                (
                    "content-type".to_string(),
                    "application/x-amz-json-1.0".to_string()
                ),
                (
                    "x-amz-target".to_string(),
                    "AmazonSQS.ReceiveMessage".to_string()
                ),
            ]
        );
    }

    #[test]
    fn encodes_send_with_and_without_fifo_fields() {
        assert_eq!(
            body(&fifo_send()),
            json!({
                "QueueUrl": "http://127.0.0.1:5000/123/q.fifo",
                "MessageBody": "{\"a\": \"é & +\"}",
                "MessageGroupId": "archive-x",
                "MessageDeduplicationId": "d1",
            })
        );
        let standard = Call::SendMessage {
            queue: "q",
            entry: SendEntry {
                body: "b",
                group_id: None,
                dedup_id: None,
            },
        };
        assert_eq!(
            body(&standard),
            json!({"QueueUrl": "q", "MessageBody": "b"})
        );
    }

    #[test]
    fn encodes_send_batch_with_positional_ids() {
        let call = Call::SendMessageBatch {
            queue: "q.fifo",
            entries: vec![
                SendEntry {
                    body: "one",
                    group_id: Some("g"),
                    dedup_id: Some("d0".into()),
                },
                SendEntry {
                    body: "two",
                    group_id: Some("g"),
                    dedup_id: Some("d1".into()),
                },
            ],
        };
        assert_eq!(
            body(&call),
            json!({
                "QueueUrl": "q.fifo",
                "Entries": [
                    {"Id": "0", "MessageBody": "one", "MessageGroupId": "g", "MessageDeduplicationId": "d0"},
                    {"Id": "1", "MessageBody": "two", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
                ],
            })
        );
    }

    #[test]
    fn encodes_receive_with_optional_visibility() {
        assert_eq!(
            body(&Call::ReceiveMessage {
                queue: "q",
                max_messages: 10,
                wait_seconds: 20,
                visibility_timeout: Some(30),
                attempt_id: None,
            }),
            json!({
                "QueueUrl": "q",
                "MaxNumberOfMessages": 10,
                "WaitTimeSeconds": 20,
                "VisibilityTimeout": 30,
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "MessageSystemAttributeNames": ["All"],
            })
        );
        assert_eq!(
            body(&receive()),
            json!({
                "QueueUrl": "q",
                "MaxNumberOfMessages": 1,
                "WaitTimeSeconds": 0,
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "MessageSystemAttributeNames": ["All"],
            })
        );
    }

    #[test]
    fn encodes_deletes_and_visibility_changes() {
        let r0 = ReceiptHandle("r0".into());
        let r1 = ReceiptHandle("r1".into());
        assert_eq!(
            body(&Call::DeleteMessage {
                queue: "q",
                receipt: &r0
            }),
            json!({"QueueUrl": "q", "ReceiptHandle": "r0"})
        );
        let receipts = [r0.clone(), r1.clone()];
        assert_eq!(
            body(&Call::DeleteMessageBatch {
                queue: "q",
                receipts: &receipts
            }),
            json!({
                "QueueUrl": "q",
                "Entries": [
                    {"Id": "0", "ReceiptHandle": "r0"},
                    {"Id": "1", "ReceiptHandle": "r1"},
                ],
            })
        );
        assert_eq!(
            body(&Call::ChangeMessageVisibility {
                queue: "q",
                receipt: &r0,
                timeout: 0,
            }),
            json!({"QueueUrl": "q", "ReceiptHandle": "r0", "VisibilityTimeout": 0})
        );
        assert_eq!(
            body(&Call::ChangeMessageVisibilityBatch {
                queue: "q",
                entries: vec![(&r0, 60), (&r1, 43_200)],
            }),
            json!({
                "QueueUrl": "q",
                "Entries": [
                    {"Id": "0", "ReceiptHandle": "r0", "VisibilityTimeout": 60},
                    {"Id": "1", "ReceiptHandle": "r1", "VisibilityTimeout": 43_200},
                ],
            })
        );
    }

    #[test]
    fn encodes_queue_attributes_and_create_queue() {
        assert_eq!(
            body(&Call::GetQueueAttributes {
                queue: "q",
                names: &[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible"
                ],
            }),
            json!({
                "QueueUrl": "q",
                "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            })
        );
        assert_eq!(
            body(&Call::CreateQueue {
                name: "jobs.fifo",
                attributes: &[("FifoQueue", "true"), ("VisibilityTimeout", "60")],
            }),
            json!({
                "QueueName": "jobs.fifo",
                "Attributes": {"FifoQueue": "true", "VisibilityTimeout": "60"},
            })
        );
        assert_eq!(
            body(&Call::CreateQueue {
                name: "jobs",
                attributes: &[],
            }),
            json!({"QueueName": "jobs"})
        );
    }

    const RECEIVE: &str = r#"{"Messages":[{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274","ReceiptHandle":"MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw","MD5OfBody":"fafb00f5732ab283681e124bf8747ed1","Body":"This is a test message","Attributes":{"ApproximateReceiveCount":"2","SentTimestamp":"1238099229000"}}]}"#;

    #[test]
    fn decodes_empty_receive() {
        for empty in ["{}", r#"{"Messages":[]}"#, r#"{"Messages":null}"#] {
            assert_eq!(
                decode(&receive(), 200, empty).unwrap(),
                Reply::Received(vec![]),
                "{empty}"
            );
        }
    }

    #[test]
    fn decodes_send() {
        let call = Call::SendMessage {
            queue: "q.fifo",
            entry: SendEntry {
                body: "b",
                group_id: Some("g"),
                dedup_id: Some("d".into()),
            },
        };
        let json = r#"{"MD5OfMessageBody":"92eb5ffee6ae2fec3ad71c777531578f","MessageId":"m-1","SequenceNumber":"18849496460467696128"}"#;
        assert_eq!(
            decode(&call, 200, json).unwrap(),
            Reply::Sent(WireSent {
                message_id: "m-1".into(),
                md5_of_body: "92eb5ffee6ae2fec3ad71c777531578f".into(),
                sequence_number: Some("18849496460467696128".into()),
            })
        );
        let Reply::Sent(s) =
            decode(&call, 200, r#"{"MessageId":"m","MD5OfMessageBody":"x"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.sequence_number, None);
    }

    #[test]
    fn decodes_done_with_empty_body_or_empty_object() {
        let r = ReceiptHandle("r".into());
        let calls = [
            Call::DeleteMessage {
                queue: "q",
                receipt: &r,
            },
            Call::ChangeMessageVisibility {
                queue: "q",
                receipt: &r,
                timeout: 5,
            },
        ];
        for call in &calls {
            for body in ["", "{}", " \n"] {
                assert_eq!(decode(call, 200, body).unwrap(), Reply::Done, "{body:?}");
            }
        }
    }

    #[test]
    fn decodes_queue_attributes_and_queue_url() {
        let call = Call::GetQueueAttributes {
            queue: "q",
            names: &["ApproximateNumberOfMessages"],
        };
        let Reply::Attributes(a) = decode(
            &call,
            200,
            r#"{"Attributes":{"ApproximateNumberOfMessages":"7","ApproximateNumberOfMessagesDelayed":0}}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(a["ApproximateNumberOfMessages"], "7");
        assert_eq!(a["ApproximateNumberOfMessagesDelayed"], "0");
        assert_eq!(
            decode(&call, 200, "{}").unwrap(),
            Reply::Attributes(BTreeMap::new())
        );
        let create = Call::CreateQueue {
            name: "q",
            attributes: &[],
        };
        assert_eq!(
            decode(
                &create,
                200,
                r#"{"QueueUrl":"http://127.0.0.1:4566/000000000000/q"}"#
            )
            .unwrap(),
            Reply::QueueUrl("http://127.0.0.1:4566/000000000000/q".into())
        );
        assert!(matches!(
            decode(&create, 200, "{}"),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn decodes_visibility_batch_with_lists_left_out() {
        let (r0, r1) = (ReceiptHandle("a".into()), ReceiptHandle("b".into()));
        let call = Call::ChangeMessageVisibilityBatch {
            queue: "q",
            entries: vec![(&r0, 1), (&r1, 2)],
        };
        let Reply::DoneBatch(out) =
            decode(&call, 200, r#"{"Successful":[{"Id":"0"},{"Id":"1"}]}"#).unwrap()
        else {
            panic!()
        };
        assert!(out.iter().all(|o| o.is_ok()));
        let Reply::DoneBatch(out) = decode(&call, 200, "{}").unwrap() else {
            panic!()
        };
        assert!(
            out.iter()
                .all(|o| o.as_ref().unwrap_err().code == "MissingBatchEntry")
        );
        let e = decode(&call, 200, r#"{"Successful":[{"Id":"7"}]}"#).unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
    }

    #[test]
    fn decodes_error_with_query_compatible_code() {
        let headers = [
            (
                "x-amzn-query-error".to_string(),
                "AWS.SimpleQueueService.NonExistentQueue;Sender".to_string(),
            ),
            (
                "x-amzn-requestid".to_string(),
                "42d59b56-7407-4c4a-be0f-4c88daeea257".to_string(),
            ),
        ];
        let body = r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#;
        let e = service(JsonCodec.decode(&receive(), 400, &headers, body.as_bytes()));
        assert_eq!(e.code, "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(e.message, "The specified queue does not exist.");
        assert_eq!(
            e.request_id.as_deref(),
            Some("42d59b56-7407-4c4a-be0f-4c88daeea257")
        );
        assert_eq!(e.status, 400);
        assert!(e.is_missing_queue());
        assert!(!Error::Service(e).is_retryable());
    }

    #[test]
    fn decodes_error_from_namespaced_type() {
        let e = service(decode(
            &receive(),
            400,
            r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"gone"}"#,
        ));
        assert_eq!(e.code, "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(e.short_code(), "QueueDoesNotExist");
        assert!(e.is_missing_queue());
        assert_eq!(e.request_id, None);
        for code in [
            "com.amazon.coral.service#AccessDeniedException",
            "com.amazon.coral.service#UnrecognizedClientException",
            "AccessDeniedException",
        ] {
            let body = format!(r#"{{"__type":"{code}","Message":"denied"}}"#);
            let e = service(decode(&receive(), 400, &body));
            assert!(e.is_auth(), "{code}");
            assert_eq!(e.message, "denied", "the key may be capitalised");
        }
        // Some servers append the type's URI after `:`.
        let e = service(decode(
            &receive(),
            400,
            r#"{"__type":"com.amazonaws.sqs#ReceiptHandleIsInvalid:http://internal.amazon.com/coral/com.amazonaws.sqs/","message":"x"}"#,
        ));
        assert_eq!(e.code, "com.amazonaws.sqs#ReceiptHandleIsInvalid");
        assert!(e.is_stale_receipt());
        let e = service(decode(
            &receive(),
            400,
            r#"{"__type":"com.amazonaws.sqs#RequestThrottled","message":"slow down"}"#,
        ));
        assert!(e.is_retryable());
    }

    #[test]
    fn decodes_error_type_from_header_when_body_has_none() {
        let headers = [(
            "x-amzn-errortype".to_string(),
            "InvalidClientTokenId:http://internal.amazon.com/coral/com.amazon.coral.service/"
                .to_string(),
        )];
        let e = service(JsonCodec.decode(&receive(), 400, &headers, b"{}"));
        assert_eq!(e.code, "InvalidClientTokenId");
        assert!(e.is_auth());
    }

    #[test]
    fn non_json_error_keeps_the_status_and_little_of_the_body() {
        let page = format!("<html><body>Bad gateway{}</body></html>", "x".repeat(5000));
        let e = service(decode(&receive(), 502, &page));
        assert_eq!(e.code, "HTTP502");
        assert!(e.is_retryable());
        assert!(e.message.contains("Bad gateway"), "{}", e.message);
        assert!(e.message.chars().count() < 200, "{}", e.message);
        let e = service(decode(&receive(), 503, ""));
        assert_eq!(e.code, "HTTP503");
        assert!(e.is_retryable());
        let e = service(decode(&receive(), 400, "[1, 2]"));
        assert_eq!(e.code, "HTTP400");
        assert!(!e.is_retryable());
        let e = service(JsonCodec.decode(&receive(), 500, &[], &[0xff, 0xfe, 0x00]));
        assert_eq!(e.code, "HTTP500");
        let long = format!(r#"{{"__type":"X","message":"{}"}}"#, "m".repeat(10_000));
        let e = service(decode(&receive(), 400, &long));
        assert!(e.message.chars().count() <= MESSAGE_CHARS + 1);
    }

    #[test]
    fn answers_that_are_not_the_expected_object_are_protocol_errors() {
        // An empty answer, too, is no answer (cut answers: `codec_tests`).
        let e = decode(&receive(), 200, "").unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        for bad in [
            "<html>ok</html>",
            "null",
            "[]",
            "\"Messages\"",
            r#"{"Messages":{}}"#,
            r#"{"Messages":[1]}"#,
            r#"{"Messages":[{"MessageId":1}]}"#,
            r#"{"Messages":[{"MessageId":"m","ReceiptHandle":"r","MD5OfBody":"x","Attributes":[]}]}"#,
        ] {
            let e = decode(&receive(), 200, bad).unwrap_err();
            assert!(matches!(e, Error::Protocol { .. }), "{bad}: {e}");
        }
        let r = ReceiptHandle("r".into());
        let delete = Call::DeleteMessage {
            queue: "q",
            receipt: &r,
        };
        assert!(matches!(
            decode(&delete, 200, "{\"a\":"),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn every_cut_of_every_answer_decodes_without_panic() {
        let r = ReceiptHandle("r".into());
        let receipts = [r.clone(), r.clone()];
        let answers: [(Call, &str); 5] = [
            (receive(), RECEIVE),
            // Non-ASCII, so some cuts fall inside a character.
            (
                receive(),
                include_str!("../../tests/fixtures/fauxqs/receive_message.json"),
            ),
            (
                Call::DeleteMessageBatch {
                    queue: "q",
                    receipts: &receipts,
                },
                r#"{"Successful":[{"Id":"0"}],"Failed":[{"Id":"1","Code":"X","Message":"é","SenderFault":false}]}"#,
            ),
            (
                Call::GetQueueAttributes {
                    queue: "q",
                    names: &[],
                },
                r#"{"Attributes":{"ApproximateNumberOfMessages":"1"}}"#,
            ),
            (
                Call::CreateQueue {
                    name: "q",
                    attributes: &[],
                },
                r#"{"QueueUrl":"http://h/q"}"#,
            ),
        ];
        for (call, answer) in &answers {
            let bytes = answer.as_bytes();
            for cut in 0..bytes.len() {
                for status in [200, 400, 500] {
                    let _ = JsonCodec.decode(call, status, &[], &bytes[..cut]);
                }
            }
        }
    }

    /// Answers captured from fauxqs 2.4.1; statuses and headers as listed in
    /// `tests/fixtures/README.md`.
    mod fauxqs {
        use super::*;

        fn fixture(
            call: &Call,
            status: u16,
            headers: &[(&str, &str)],
            body: &str,
        ) -> Result<Reply> {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([
                    (
                        "content-type".to_string(),
                        "application/x-amz-json-1.0; charset=utf-8".to_string(),
                    ),
                    (
                        "x-amz-request-id".to_string(),
                        "fixture-request".to_string(),
                    ),
                ])
                .collect();
            JsonCodec.decode(call, status, &headers, body.as_bytes())
        }

        #[test]
        fn a_bogus_receipt_handle_is_deleted() {
            let r = ReceiptHandle("r".into());
            let delete = Call::DeleteMessage {
                queue: "q",
                receipt: &r,
            };
            // fauxqs accepts a bogus receipt handle (real SQS refuses it).
            let body = include_str!("../../tests/fixtures/fauxqs/delete_message_bogus_handle.json");
            assert_eq!(fixture(&delete, 200, &[], body).unwrap(), Reply::Done);
        }

        #[test]
        fn missing_queue_errors() {
            let query_error = [(
                "x-amzn-query-error",
                "AWS.SimpleQueueService.NonExistentQueue;Sender",
            )];
            let attributes = Call::GetQueueAttributes {
                queue: "q",
                names: &["All"],
            };
            for (call, body) in [
                (
                    &attributes,
                    include_str!("../../tests/fixtures/fauxqs/error_queue_does_not_exist.json"),
                ),
                (
                    &receive(),
                    include_str!(
                        "../../tests/fixtures/fauxqs/error_receive_queue_does_not_exist.json"
                    ),
                ),
            ] {
                // The header's code wins (both protocols' codes: `codec_tests`) ...
                let e = service(fixture(call, 400, &query_error, body));
                assert_eq!(e.code, "AWS.SimpleQueueService.NonExistentQueue");
                assert_eq!(e.request_id.as_deref(), Some("fixture-request"));
                // ... and without it, `__type` alone still classifies.
                let e = service(fixture(call, 400, &[], body));
                assert_eq!(e.code, "com.amazonaws.sqs#QueueDoesNotExist");
                assert!(e.is_missing_queue());
            }
        }

        #[test]
        fn invalid_contents_and_unknown_action_errors() {
            let body =
                include_str!("../../tests/fixtures/fauxqs/error_invalid_message_contents.json");
            let call = Call::SendMessage {
                queue: "q",
                entry: SendEntry {
                    body: "😀",
                    group_id: None,
                    dedup_id: None,
                },
            };
            let e = service(fixture(
                &call,
                400,
                &[(
                    "x-amzn-query-error",
                    "AWS.SimpleQueueService.InvalidMessageContents;Sender",
                )],
                body,
            ));
            assert_eq!(e.short_code(), "InvalidMessageContents");
            assert!(e.message.ends_with("#xE000 to #xFFFD."), "{}", e.message);
            let e = Error::Service(e);
            assert!(!e.is_retryable());
            assert_eq!(e.exit(), crate::exit::Exit::DataErr);
            // This one comes without `x-amzn-query-error`.
            let body = include_str!("../../tests/fixtures/fauxqs/error_unknown_action.json");
            let e = service(fixture(&receive(), 400, &[], body));
            assert_eq!(e.code, "com.amazonaws.sqs#InvalidAction");
            assert_eq!(e.message, "Unknown action: NoSuchAction");
        }
    }
}
