//! The behaviours both wire protocols share, tested once: each protocol
//! brings a [`Wire`] table (how to read a parameter back out of a request it
//! encoded, its hand-written answers and the answers captured from its
//! emulator, moto for query and fauxqs for JSON), and every test below runs
//! against both codecs. What only one protocol does (exact request bytes,
//! XML parser messages, JSON member shapes, error headers) is tested in
//! `query.rs` and `json.rs`. Test builds only.

use serde_json::Value;

use super::api::{Call, Codec, Encoded, Reply, SendEntry};
use super::json::JsonCodec;
use super::query::QueryCodec;
use crate::error::{Error, Result, ServiceError};
use crate::queue::ReceiptHandle;

/// An answer: status, headers, body.
type Answer = (u16, &'static [(&'static str, &'static str)], &'static str);

/// One protocol's codec and its answers.
struct Wire {
    name: &'static str,
    codec: &'static dyn Codec,
    /// A top-level request parameter, as text.
    param: fn(&Encoded, &str) -> Option<String>,
    /// Member `name` of entry `index` of a batch call.
    entry_param: fn(&Call, &Encoded, usize, &str) -> Option<String>,
    /// AWS's documented ReceiveMessage example: one message, "This is a test message".
    receive: &'static str,
    /// A DeleteMessageBatch answer for three entries: 0 deleted, 1 refused
    /// (`ReceiptHandleIsInvalid`, "bad"), 2 not mentioned.
    delete_batch_partial: &'static str,
    /// A SendMessageBatch answer for two entries: 0 refused for its size, 1 sent as `m1`.
    send_batch_one_too_long: &'static str,
    /// moto 5.2.5's answer (HTTP 400) to a message over `MaximumMessageSize`.
    too_long: &'static str,
    /// Error answers that are not the message's fault: status and body.
    not_refusals: &'static [(u16, &'static str)],
    captured: Captured,
}

/// Answers captured from the protocol's emulator (`tests/fixtures/README.md`).
struct Captured {
    receive: &'static str,
    receive_empty: &'static str,
    send: &'static str,
    /// GetQueueAttributes of `fixture-q` with one message in flight.
    attributes: &'static str,
    /// CreateQueue `fixture-q`.
    create_queue: &'static str,
    delete: &'static str,
    change_visibility: &'static str,
    /// GetQueueAttributes and ReceiveMessage on a missing queue.
    missing_queue: [Answer; 2],
}

fn wires() -> [Wire; 2] {
    [
        Wire {
            name: "query",
            codec: &QueryCodec,
            param: form_param,
            entry_param: |call, encoded, index, name| {
                form_param(
                    encoded,
                    &format!("{}RequestEntry.{}.{name}", call.action(), index + 1),
                )
            },
            receive: r#"<?xml version="1.0"?><ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult><Message><MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId><ReceiptHandle>MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw</ReceiptHandle><MD5OfBody>fafb00f5732ab283681e124bf8747ed1</MD5OfBody><Body>This is a test message</Body><Attribute><Name>ApproximateReceiveCount</Name><Value>2</Value></Attribute><Attribute><Name>SentTimestamp</Name><Value>1238099229000</Value></Attribute></Message></ReceiveMessageResult><ResponseMetadata><RequestId>b6633655-283d-45b4-aee4-4e84e0ae6afa</RequestId></ResponseMetadata></ReceiveMessageResponse>"#,
            delete_batch_partial: "<DeleteMessageBatchResponse><DeleteMessageBatchResult>\
                <BatchResultErrorEntry><Id>1</Id><Code>ReceiptHandleIsInvalid</Code><Message>bad</Message><SenderFault>true</SenderFault></BatchResultErrorEntry>\
                <DeleteMessageBatchResultEntry><Id>0</Id></DeleteMessageBatchResultEntry>\
                </DeleteMessageBatchResult></DeleteMessageBatchResponse>",
            send_batch_one_too_long: "<SendMessageBatchResponse><SendMessageBatchResult>\
                <SendMessageBatchResultEntry><Id>1</Id><MessageId>m1</MessageId><MD5OfMessageBody>92eb5ffee6ae2fec3ad71c777531578f</MD5OfMessageBody></SendMessageBatchResultEntry>\
                <BatchResultErrorEntry><Id>0</Id><Code>InvalidParameterValue</Code><Message>One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.</Message><SenderFault>true</SenderFault></BatchResultErrorEntry>\
                </SendMessageBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SendMessageBatchResponse>",
            too_long: r#"<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.</Message></Error><RequestId>jRcFJ0i7wm0Llvvypeoklv7x1fE07HVDXGaq9F4xvnf7No2azATp</RequestId></ErrorResponse>"#,
            not_refusals: &[
                (
                    400,
                    "<ErrorResponse><Error><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>m</Message></Error></ErrorResponse>",
                ),
                (
                    403,
                    "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error></ErrorResponse>",
                ),
                (
                    400,
                    "<ErrorResponse><Error><Code>Throttling</Code><Message>m</Message></Error></ErrorResponse>",
                ),
                (
                    500,
                    "<ErrorResponse><Error><Code>InternalError</Code><Message>m</Message></Error></ErrorResponse>",
                ),
                (
                    400,
                    "<ErrorResponse><Error><Code>KmsDisabled</Code><Message>m</Message></Error></ErrorResponse>",
                ),
            ],
            captured: Captured {
                receive: include_str!("../../tests/fixtures/moto/receive_message.xml"),
                receive_empty: include_str!("../../tests/fixtures/moto/receive_message_empty.xml"),
                send: include_str!("../../tests/fixtures/moto/send_message.xml"),
                attributes: include_str!("../../tests/fixtures/moto/get_queue_attributes.xml"),
                create_queue: include_str!("../../tests/fixtures/moto/create_queue.xml"),
                delete: include_str!("../../tests/fixtures/moto/delete_message.xml"),
                change_visibility: include_str!(
                    "../../tests/fixtures/moto/change_message_visibility.xml"
                ),
                missing_queue: [
                    (
                        400,
                        &[],
                        include_str!("../../tests/fixtures/moto/error_queue_does_not_exist.xml"),
                    ),
                    (
                        400,
                        &[],
                        include_str!(
                            "../../tests/fixtures/moto/error_receive_queue_does_not_exist.xml"
                        ),
                    ),
                ],
            },
        },
        Wire {
            name: "json",
            codec: &JsonCodec,
            param: |encoded, name| member(&json_body(encoded)[name]),
            entry_param: |_, encoded, index, name| {
                member(&json_body(encoded)["Entries"][index][name])
            },
            receive: r#"{"Messages":[{"MessageId":"5fea7756-0ea4-451a-a703-a558b933e274","ReceiptHandle":"MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw","MD5OfBody":"fafb00f5732ab283681e124bf8747ed1","Body":"This is a test message","Attributes":{"ApproximateReceiveCount":"2","SentTimestamp":"1238099229000"}}]}"#,
            delete_batch_partial: r#"{
                "Failed":[{"Id":"1","Code":"ReceiptHandleIsInvalid","Message":"bad","SenderFault":true}],
                "Successful":[{"Id":"0"}]
            }"#,
            send_batch_one_too_long: r#"{"Successful":[{"Id":"1","MessageId":"m1","MD5OfMessageBody":"92eb5ffee6ae2fec3ad71c777531578f"}],
                "Failed":[{"Id":"0","Code":"InvalidParameterValue","Message":"One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.","SenderFault":true}]}"#,
            too_long: r#"{"__type": "com.amazonaws.sqs#InvalidParameterValue", "Message": "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."}"#,
            not_refusals: &[
                (
                    400,
                    r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"m"}"#,
                ),
                (
                    400,
                    r#"{"__type":"com.amazonaws.sqs#UnrecognizedClientException","message":"m"}"#,
                ),
                (
                    400,
                    r#"{"__type":"com.amazonaws.sqs#RequestThrottled","message":"m"}"#,
                ),
                (500, r#"{"__type":"InternalFailure","message":"m"}"#),
            ],
            captured: Captured {
                receive: include_str!("../../tests/fixtures/fauxqs/receive_message.json"),
                receive_empty: include_str!(
                    "../../tests/fixtures/fauxqs/receive_message_empty.json"
                ),
                send: include_str!("../../tests/fixtures/fauxqs/send_message.json"),
                attributes: include_str!("../../tests/fixtures/fauxqs/get_queue_attributes.json"),
                create_queue: include_str!("../../tests/fixtures/fauxqs/create_queue.json"),
                delete: include_str!("../../tests/fixtures/fauxqs/delete_message.json"),
                change_visibility: include_str!(
                    "../../tests/fixtures/fauxqs/change_message_visibility.json"
                ),
                missing_queue: [
                    (
                        400,
                        FAUXQS_MISSING_QUEUE_HEADERS,
                        include_str!("../../tests/fixtures/fauxqs/error_queue_does_not_exist.json"),
                    ),
                    (
                        400,
                        FAUXQS_MISSING_QUEUE_HEADERS,
                        include_str!(
                            "../../tests/fixtures/fauxqs/error_receive_queue_does_not_exist.json"
                        ),
                    ),
                ],
            },
        },
    ]
}

/// As captured with the fauxqs missing-queue answers.
const FAUXQS_MISSING_QUEUE_HEADERS: &[(&str, &str)] = &[
    (
        "x-amzn-query-error",
        "AWS.SimpleQueueService.NonExistentQueue;Sender",
    ),
    ("x-amz-request-id", "fixture-request"),
];

/// A form parameter of a query request, decoded.
fn form_param(encoded: &Encoded, name: &str) -> Option<String> {
    let body = std::str::from_utf8(&encoded.body).unwrap();
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (form_decode(key) == name).then(|| form_decode(value))
    })
}

fn form_decode(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut input = text.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [input.next().unwrap(), input.next().unwrap()];
                let hex = std::str::from_utf8(&hex).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).unwrap()
}

fn json_body(encoded: &Encoded) -> Value {
    serde_json::from_slice(&encoded.body).unwrap()
}

/// A JSON member as text: strings as they are, numbers written out.
fn member(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn decode(wire: &Wire, call: &Call, (status, headers, body): Answer) -> Result<Reply> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wire.codec.decode(call, status, &headers, body.as_bytes())
}

fn ok(wire: &Wire, call: &Call, body: &'static str) -> Reply {
    decode(wire, call, (200, &[], body))
        .unwrap_or_else(|e| panic!("{}: {} answer: {e}", wire.name, call.action()))
}

fn service(wire: &Wire, result: Result<Reply>) -> ServiceError {
    match result {
        Err(Error::Service(e)) => e,
        other => panic!("{}: expected a service error, got {other:?}", wire.name),
    }
}

/// A plain send entry, for the tests of both codecs.
pub(super) fn entry(body: &str) -> SendEntry<'_> {
    SendEntry {
        body,
        group_id: None,
        dedup_id: None,
    }
}

/// A one-message receive without options, for the tests of both codecs.
pub(super) fn receive() -> Call<'static> {
    Call::ReceiveMessage {
        queue: "q",
        max_messages: 1,
        wait_seconds: 0,
        visibility_timeout: None,
        attempt_id: None,
    }
}

// --- Requests ----------------------------------------------------------------

/// Parameters a request must carry (`Some`) or leave out (`None`).
type Params = Vec<(&'static str, Option<&'static str>)>;

/// Two members of one batch entry and their values.
type EntryMembers = [(&'static str, &'static str); 2];

/// A FIFO send whose body needs escaping in either protocol.
pub(super) fn fifo_send() -> Call<'static> {
    Call::SendMessage {
        queue: "http://127.0.0.1:5000/123/q.fifo",
        entry: SendEntry {
            body: "{\"a\": \"é & +\"}",
            group_id: Some("archive-x"),
            dedup_id: Some("d1".into()),
        },
    }
}

#[test]
fn every_call_carries_its_parameters() {
    let (r0, r1) = (ReceiptHandle("r0".into()), ReceiptHandle("r1".into()));
    let queue = "http://127.0.0.1:5000/123/q.fifo";
    // Each call with the top-level parameters it must carry.
    let calls: Vec<(Call, Params)> = vec![
        (
            fifo_send(),
            vec![
                ("QueueUrl", Some(queue)),
                ("MessageBody", Some("{\"a\": \"é & +\"}")),
                ("MessageGroupId", Some("archive-x")),
                ("MessageDeduplicationId", Some("d1")),
            ],
        ),
        (
            Call::SendMessage {
                queue: "q",
                entry: entry("b"),
            },
            vec![
                ("MessageBody", Some("b")),
                ("MessageGroupId", None),
                ("MessageDeduplicationId", None),
            ],
        ),
        (
            Call::ReceiveMessage {
                queue: "q",
                max_messages: 10,
                wait_seconds: 20,
                visibility_timeout: Some(30),
                attempt_id: Some("a-1"),
            },
            vec![
                ("QueueUrl", Some("q")),
                ("MaxNumberOfMessages", Some("10")),
                ("WaitTimeSeconds", Some("20")),
                ("VisibilityTimeout", Some("30")),
                ("ReceiveRequestAttemptId", Some("a-1")),
            ],
        ),
        (
            receive(),
            vec![
                ("MaxNumberOfMessages", Some("1")),
                ("WaitTimeSeconds", Some("0")),
                ("VisibilityTimeout", None),
                ("ReceiveRequestAttemptId", None),
            ],
        ),
        (
            Call::DeleteMessage {
                queue: "q",
                receipt: &r0,
            },
            vec![("QueueUrl", Some("q")), ("ReceiptHandle", Some("r0"))],
        ),
        (
            Call::ChangeMessageVisibility {
                queue: "q",
                receipt: &r1,
                timeout: 0,
            },
            vec![
                ("ReceiptHandle", Some("r1")),
                ("VisibilityTimeout", Some("0")),
            ],
        ),
        (
            Call::CreateQueue {
                name: "jobs.fifo",
                attributes: &[],
            },
            vec![("QueueName", Some("jobs.fifo")), ("QueueUrl", None)],
        ),
    ];
    for wire in wires() {
        for (call, expected) in &calls {
            let encoded = wire.codec.encode(call);
            for (name, value) in expected {
                assert_eq!(
                    (wire.param)(&encoded, name).as_deref(),
                    *value,
                    "{}: {} {name}",
                    wire.name,
                    call.action()
                );
            }
        }
    }
}

#[test]
fn batch_entries_are_numbered_by_position() {
    let (r0, r1) = (ReceiptHandle("r0".into()), ReceiptHandle("r1".into()));
    let receipts = [r0.clone(), r1.clone()];
    let calls: Vec<(Call, Vec<EntryMembers>)> = vec![
        (
            Call::SendMessageBatch {
                queue: "q",
                entries: vec![entry("one"), entry("two")],
            },
            vec![
                [("Id", "0"), ("MessageBody", "one")],
                [("Id", "1"), ("MessageBody", "two")],
            ],
        ),
        (
            Call::DeleteMessageBatch {
                queue: "q",
                receipts: &receipts,
            },
            vec![
                [("Id", "0"), ("ReceiptHandle", "r0")],
                [("Id", "1"), ("ReceiptHandle", "r1")],
            ],
        ),
        (
            Call::ChangeMessageVisibilityBatch {
                queue: "q",
                entries: vec![(&r0, 60), (&r1, 43_200)],
            },
            vec![
                [("ReceiptHandle", "r0"), ("VisibilityTimeout", "60")],
                [("Id", "1"), ("VisibilityTimeout", "43200")],
            ],
        ),
    ];
    for wire in wires() {
        for (call, entries) in &calls {
            let encoded = wire.codec.encode(call);
            assert_eq!((wire.param)(&encoded, "QueueUrl").as_deref(), Some("q"));
            for (index, members) in entries.iter().enumerate() {
                for (name, value) in members {
                    assert_eq!(
                        (wire.entry_param)(call, &encoded, index, name).as_deref(),
                        Some(*value),
                        "{}: {} entry {index} {name}",
                        wire.name,
                        call.action()
                    );
                }
            }
            assert_eq!((wire.entry_param)(call, &encoded, 2, "Id"), None);
        }
    }
}

// --- Answers -----------------------------------------------------------------

#[test]
fn a_receive_answer_gives_the_message_and_its_attributes() {
    for wire in wires() {
        let Reply::Received(m) = ok(&wire, &receive(), wire.receive) else {
            panic!("{}", wire.name)
        };
        assert_eq!(m.len(), 1, "{}", wire.name);
        assert_eq!(m[0].message_id, "5fea7756-0ea4-451a-a703-a558b933e274");
        assert!(m[0].receipt_handle.starts_with("MbZj6wDWli+"));
        assert_eq!(m[0].body, "This is a test message");
        assert_eq!(m[0].md5_of_body, "fafb00f5732ab283681e124bf8747ed1");
        assert_eq!(m[0].attributes["ApproximateReceiveCount"], "2");
        assert_eq!(m[0].attributes["SentTimestamp"], "1238099229000");
        super::check_received(m[0].clone()).unwrap();
    }
}

#[test]
fn a_partial_batch_failure_is_read_in_call_order() {
    let receipts = [
        ReceiptHandle("a".into()),
        ReceiptHandle("b".into()),
        ReceiptHandle("c".into()),
    ];
    let call = Call::DeleteMessageBatch {
        queue: "q",
        receipts: &receipts,
    };
    for wire in wires() {
        let Reply::DoneBatch(out) = ok(&wire, &call, wire.delete_batch_partial) else {
            panic!("{}", wire.name)
        };
        assert!(out[0].is_ok(), "{}", wire.name);
        let bad = out[1].as_ref().unwrap_err();
        assert_eq!(bad.code, "ReceiptHandleIsInvalid");
        assert_eq!(bad.message, "bad");
        assert!(bad.is_stale_receipt());
        assert_eq!(
            out[2].as_ref().unwrap_err().code,
            "MissingBatchEntry",
            "{}: unmentioned entries are not taken as done",
            wire.name
        );
    }
}

#[test]
fn a_message_too_long_is_a_permanent_refusal_and_nothing_else_is() {
    let call = Call::SendMessage {
        queue: "q",
        entry: entry("a"),
    };
    let batch = Call::SendMessageBatch {
        queue: "q",
        entries: vec![entry("a"), entry("b")],
    };
    for wire in wires() {
        for call in [&call, &batch] {
            // moto refuses the whole call ...
            let e = decode(&wire, call, (400, &[], wire.too_long)).unwrap_err();
            assert!(e.is_permanent_refusal(), "{}: {e}", wire.name);
            assert!(!e.is_retryable(), "{}: {e}", wire.name);
            assert_eq!(e.exit(), crate::exit::Exit::DataErr);
        }
        // ... SQS refuses the entry.
        let Reply::SentBatch(out) = ok(&wire, &batch, wire.send_batch_one_too_long) else {
            panic!("{}", wire.name)
        };
        let refused = Error::Service(out[0].clone().unwrap_err());
        assert!(refused.is_permanent_refusal(), "{}: {refused}", wire.name);
        assert_eq!(out[1].as_ref().unwrap().message_id, "m1");
        // What is not the message's fault is not a refusal of it.
        for (status, body) in wire.not_refusals {
            let e = decode(&wire, &call, (*status, &[], body)).unwrap_err();
            assert!(!e.is_permanent_refusal(), "{}: {body}: {e}", wire.name);
        }
    }
}

#[test]
fn truncated_unreadable_and_gateway_answers_are_errors_not_panics() {
    for wire in wires() {
        let answer = wire.receive;
        for cut in [10, 100, answer.len() - 5] {
            let e = wire
                .codec
                .decode(&receive(), 200, &[], &answer.as_bytes()[..cut])
                .unwrap_err();
            assert!(
                matches!(e, Error::Protocol { .. }),
                "{} {cut}: {e}",
                wire.name
            );
            assert!(e.is_retryable(), "{} {cut}: {e}", wire.name);
            assert!(!e.to_string().contains("MbZj6wDWli"), "no body echo: {e}");
        }
        let e = wire
            .codec
            .decode(&receive(), 200, &[], &[0xff, 0xfe])
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{}: {e}", wire.name);
        for page in ["<html>Bad gateway", "<html><body>Bad gateway</body></html>"] {
            let e = service(&wire, decode(&wire, &receive(), (502, &[], page)));
            assert_eq!(e.code, "HTTP502", "{}", wire.name);
            let e = Error::Service(e);
            assert!(e.is_retryable(), "{}: {e}", wire.name);
            assert!(e.to_string().contains("502"), "{}: {e}", wire.name);
        }
    }
}

// --- Answers captured from the emulators ---------------------------------------

#[test]
fn captured_receives_pass_the_md5_check() {
    for wire in wires() {
        let Reply::Received(m) = ok(&wire, &receive(), wire.captured.receive) else {
            panic!("{}", wire.name)
        };
        assert_eq!(m.len(), 1, "{}", wire.name);
        let checked = super::check_received(m[0].clone()).unwrap();
        assert!(
            checked.body.starts_with("hello <world> & \"friends\" ü "),
            "{}: {}",
            wire.name,
            checked.body
        );
        assert_eq!(checked.receive_count, 1);
        assert!(checked.attributes.contains_key("SenderId"), "{}", wire.name);
        assert_eq!(
            ok(&wire, &receive(), wire.captured.receive_empty),
            Reply::Received(vec![]),
            "{}",
            wire.name
        );
    }
}

#[test]
fn captured_sends_attributes_queue_urls_and_acknowledgements() {
    let receipt = ReceiptHandle("r".into());
    for wire in wires() {
        let call = Call::SendMessage {
            queue: "q",
            entry: entry("hello"),
        };
        let Reply::Sent(sent) = ok(&wire, &call, wire.captured.send) else {
            panic!("{}", wire.name)
        };
        assert!(!sent.message_id.is_empty(), "{}", wire.name);
        assert_eq!(sent.md5_of_body.len(), 32, "{}", wire.name);
        assert_eq!(sent.sequence_number, None);

        let call = Call::GetQueueAttributes {
            queue: "q",
            names: &["All"],
        };
        let Reply::Attributes(a) = ok(&wire, &call, wire.captured.attributes) else {
            panic!("{}", wire.name)
        };
        assert_eq!(a["ApproximateNumberOfMessages"], "0", "{}", wire.name);
        assert_eq!(a["ApproximateNumberOfMessagesNotVisible"], "1");
        assert!(a["QueueArn"].ends_with(":fixture-q"), "{}", wire.name);

        let call = Call::CreateQueue {
            name: "fixture-q",
            attributes: &[],
        };
        let Reply::QueueUrl(url) = ok(&wire, &call, wire.captured.create_queue) else {
            panic!("{}", wire.name)
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(url.ends_with("/fixture-q"), "{url}");

        let delete = Call::DeleteMessage {
            queue: "q",
            receipt: &receipt,
        };
        let change = Call::ChangeMessageVisibility {
            queue: "q",
            receipt: &receipt,
            timeout: 0,
        };
        assert_eq!(ok(&wire, &delete, wire.captured.delete), Reply::Done);
        assert_eq!(
            ok(&wire, &change, wire.captured.change_visibility),
            Reply::Done
        );
    }
}

#[test]
fn captured_missing_queue_errors_classify_the_same() {
    let attributes = Call::GetQueueAttributes {
        queue: "q",
        names: &["All"],
    };
    for wire in wires() {
        for (call, answer) in [&attributes, &receive()]
            .into_iter()
            .zip(wire.captured.missing_queue)
        {
            let e = service(&wire, decode(&wire, call, answer));
            assert_eq!(e.code, "AWS.SimpleQueueService.NonExistentQueue");
            assert!(
                e.message.starts_with("The specified queue does not exist"),
                "{}: {}",
                wire.name,
                e.message
            );
            assert!(e.request_id.is_some(), "{}", wire.name);
            assert_eq!(e.status, 400);
            assert!(e.is_missing_queue());
            assert!(!Error::Service(e).is_retryable());
        }
    }
}
