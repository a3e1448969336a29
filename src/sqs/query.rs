//! The SQS query protocol: form-encoded requests, XML answers.
//!
//! `Action=...&Version=2012-11-05` POSTed to the endpoint, with the queue
//! named by a `QueueUrl` parameter. Answers are read with a real XML parser;
//! element names are matched without their namespace ([`crate::aws::xml`]).
//! Pure, like every codec: no I/O, no clock.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};

use super::api::{Call, Codec, Encoded, Reply, SendEntry, WireMessage, WireSent, order_batch};
use crate::aws::form::QueryForm;
use crate::aws::xml::{ErrorFields, child, children as elements};
use crate::error::{Error, Result, ServiceError};

const VERSION: &str = "2012-11-05";

/// The query protocol codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryCodec;

impl Codec for QueryCodec {
    fn encode(&self, call: &Call) -> Encoded {
        let mut p = QueryForm::new(call.action(), VERSION);
        match call {
            Call::SendMessage { queue, entry } => {
                p.add("QueueUrl", queue);
                add_entry(&mut p, "", entry);
            }
            Call::SendMessageBatch { queue, entries } => {
                p.add("QueueUrl", queue);
                for (i, entry) in entries.iter().enumerate() {
                    let prefix = format!("SendMessageBatchRequestEntry.{}.", i + 1);
                    p.add(&format!("{prefix}Id"), &i.to_string());
                    add_entry(&mut p, &prefix, entry);
                }
            }
            Call::ReceiveMessage {
                queue,
                max_messages,
                wait_seconds,
                visibility_timeout,
                attempt_id,
            } => {
                p.add("QueueUrl", queue);
                p.add("MaxNumberOfMessages", &max_messages.to_string());
                p.add("WaitTimeSeconds", &wait_seconds.to_string());
                if let Some(v) = visibility_timeout {
                    p.add("VisibilityTimeout", &v.to_string());
                }
                if let Some(id) = attempt_id {
                    p.add("ReceiveRequestAttemptId", id);
                }
                p.add("AttributeName.1", "All");
                p.add("MessageAttributeName.1", "All");
                p.add("MessageSystemAttributeName.1", "All");
            }
            Call::DeleteMessage { queue, receipt } => {
                p.add("QueueUrl", queue);
                p.add("ReceiptHandle", receipt.as_str());
            }
            Call::DeleteMessageBatch { queue, receipts } => {
                p.add("QueueUrl", queue);
                for (i, r) in receipts.iter().enumerate() {
                    let prefix = format!("DeleteMessageBatchRequestEntry.{}.", i + 1);
                    p.add(&format!("{prefix}Id"), &i.to_string());
                    p.add(&format!("{prefix}ReceiptHandle"), r.as_str());
                }
            }
            Call::ChangeMessageVisibility {
                queue,
                receipt,
                timeout,
            } => {
                p.add("QueueUrl", queue);
                p.add("ReceiptHandle", receipt.as_str());
                p.add("VisibilityTimeout", &timeout.to_string());
            }
            Call::ChangeMessageVisibilityBatch { queue, entries } => {
                p.add("QueueUrl", queue);
                for (i, (r, timeout)) in entries.iter().enumerate() {
                    let prefix = format!("ChangeMessageVisibilityBatchRequestEntry.{}.", i + 1);
                    p.add(&format!("{prefix}Id"), &i.to_string());
                    p.add(&format!("{prefix}ReceiptHandle"), r.as_str());
                    p.add(&format!("{prefix}VisibilityTimeout"), &timeout.to_string());
                }
            }
            Call::GetQueueAttributes { queue, names } => {
                p.add("QueueUrl", queue);
                for (i, n) in names.iter().enumerate() {
                    p.add(&format!("AttributeName.{}", i + 1), n);
                }
            }
            Call::CreateQueue { name, attributes } => {
                p.add("QueueName", name);
                for (i, (k, v)) in attributes.iter().enumerate() {
                    p.add(&format!("Attribute.{}.Name", i + 1), k);
                    p.add(&format!("Attribute.{}.Value", i + 1), v);
                }
            }
        }
        Encoded {
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: p.finish().into_bytes(),
        }
    }

    fn decode(
        &self,
        call: &Call,
        status: u16,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Reply> {
        let action = call.action();
        let text = std::str::from_utf8(body).map_err(|_| Error::Protocol {
            action,
            detail: format!("HTTP {status}: the answer is not UTF-8 text"),
        })?;
        let doc = match Document::parse(text) {
            Ok(doc) => doc,
            Err(e) if status >= 300 => {
                // Not XML (a proxy's page, an emulator's plain error): keep the status.
                return Err(Error::Service(ServiceError {
                    action,
                    status,
                    code: format!("HTTP{status}"),
                    message: format!(
                        "unreadable error answer ({}): {}",
                        one_line(&e.to_string()),
                        crate::text::excerpt(text, 120)
                    ),
                    request_id: None,
                }));
            }
            Err(e) => {
                return Err(Error::Protocol {
                    action,
                    detail: format!(
                        "HTTP {status}: the answer is not well-formed XML: {}",
                        one_line(&e.to_string())
                    ),
                });
            }
        };
        let root = doc.root_element();
        if root.tag_name().name() == "ErrorResponse" || status >= 300 {
            return Err(Error::Service(service_error(action, status, root)));
        }
        // Any other document (a portal's XHTML page, say) is no answer: taken
        // as one, it would read as an empty receive or an empty queue.
        if root.tag_name().name() != format!("{action}Response") {
            return Err(Error::Protocol {
                action,
                detail: format!(
                    "HTTP {status}: expected <{action}Response>, got <{}>",
                    crate::text::excerpt(root.tag_name().name(), 60)
                ),
            });
        }
        let missing = |what: &str| Error::Protocol {
            action,
            detail: format!("the answer has no {what}"),
        };
        let result = child(root, &format!("{action}Result"));
        Ok(match call {
            Call::SendMessage { .. } => Reply::Sent(sent(
                result.ok_or_else(|| missing("SendMessageResult"))?,
                action,
            )?),
            Call::SendMessageBatch { entries, .. } => {
                let result = result.ok_or_else(|| missing("SendMessageBatchResult"))?;
                let mut found = batch_errors(result, action);
                for e in elements(result, "SendMessageBatchResultEntry") {
                    found.push((text_of(e, "Id").unwrap_or_default(), Ok(sent(e, action)?)));
                }
                Reply::SentBatch(order_batch(action, entries.len(), found)?)
            }
            Call::ReceiveMessage { .. } => {
                // An empty receive may omit the result's children altogether.
                let mut messages = Vec::new();
                if let Some(result) = result {
                    for m in elements(result, "Message") {
                        messages.push(message(m, action)?);
                    }
                }
                Reply::Received(messages)
            }
            Call::DeleteMessage { .. } | Call::ChangeMessageVisibility { .. } => Reply::Done,
            Call::DeleteMessageBatch { receipts, .. } => {
                let result = result.ok_or_else(|| missing("DeleteMessageBatchResult"))?;
                Reply::DoneBatch(done_batch(
                    result,
                    action,
                    "DeleteMessageBatchResultEntry",
                    receipts.len(),
                )?)
            }
            Call::ChangeMessageVisibilityBatch { entries, .. } => {
                let result = result.ok_or_else(|| missing("ChangeMessageVisibilityBatchResult"))?;
                Reply::DoneBatch(done_batch(
                    result,
                    action,
                    "ChangeMessageVisibilityBatchResultEntry",
                    entries.len(),
                )?)
            }
            Call::GetQueueAttributes { .. } => {
                let mut attributes = BTreeMap::new();
                if let Some(result) = result {
                    for a in elements(result, "Attribute") {
                        if let (Some(n), Some(v)) = (text_of(a, "Name"), text_of(a, "Value")) {
                            attributes.insert(n, v);
                        }
                    }
                }
                Reply::Attributes(attributes)
            }
            Call::CreateQueue { .. } => Reply::QueueUrl(
                result
                    .and_then(|r| text_of(r, "QueueUrl"))
                    .ok_or_else(|| missing("QueueUrl"))?,
            ),
        })
    }
}

fn add_entry(p: &mut QueryForm, prefix: &str, entry: &SendEntry) {
    p.add(&format!("{prefix}MessageBody"), entry.body);
    if let Some(g) = entry.group_id {
        p.add(&format!("{prefix}MessageGroupId"), g);
    }
    if let Some(d) = &entry.dedup_id {
        p.add(&format!("{prefix}MessageDeduplicationId"), d);
    }
}

/// Text of a direct child element; an empty element gives "".
fn text_of(node: Node, name: &str) -> Option<String> {
    crate::aws::xml::child_text(node, name).map(str::to_string)
}

/// Server text for an error: one line (it ends up as a binary's one stderr
/// line, or in a log line) and bounded.
fn one_line(text: &str) -> String {
    crate::text::excerpt(text.trim(), 300)
}

fn service_error(action: &'static str, status: u16, root: Node) -> ServiceError {
    let fields = ErrorFields::of(root);
    ServiceError {
        action,
        status,
        code: fields
            .code
            .map(one_line)
            .unwrap_or_else(|| format!("HTTP{status}")),
        message: fields.message.map(one_line).unwrap_or_default(),
        request_id: fields.request_id.map(one_line),
    }
}

fn sent(node: Node, action: &'static str) -> Result<WireSent> {
    Ok(WireSent {
        message_id: required(node, "MessageId", action)?,
        md5_of_body: required(node, "MD5OfMessageBody", action)?,
        sequence_number: text_of(node, "SequenceNumber"),
    })
}

fn message(node: Node, action: &'static str) -> Result<WireMessage> {
    let mut attributes = BTreeMap::new();
    for a in elements(node, "Attribute") {
        if let (Some(n), Some(v)) = (text_of(a, "Name"), text_of(a, "Value")) {
            attributes.insert(n, v);
        }
    }
    let mut message_attributes = BTreeMap::new();
    for a in elements(node, "MessageAttribute") {
        let (Some(name), Some(value)) = (text_of(a, "Name"), child(a, "Value")) else {
            continue;
        };
        message_attributes.insert(
            name,
            crate::queue::MessageAttribute {
                data_type: text_of(value, "DataType").unwrap_or_default(),
                string_value: text_of(value, "StringValue"),
                binary_value: text_of(value, "BinaryValue"),
            },
        );
    }
    Ok(WireMessage {
        message_id: required(node, "MessageId", action)?,
        receipt_handle: required(node, "ReceiptHandle", action)?,
        md5_of_body: required(node, "MD5OfBody", action)?,
        body: text_of(node, "Body").unwrap_or_default(),
        attributes,
        message_attributes,
    })
}

fn required(node: Node, name: &str, action: &'static str) -> Result<String> {
    text_of(node, name).ok_or_else(|| Error::Protocol {
        action,
        detail: format!("an entry has no {name}"),
    })
}

fn batch_errors<T>(
    result: Node,
    action: &'static str,
) -> Vec<(String, std::result::Result<T, ServiceError>)> {
    elements(result, "BatchResultErrorEntry")
        .map(|e| {
            (
                text_of(e, "Id").unwrap_or_default(),
                Err(ServiceError {
                    action,
                    status: 200,
                    code: one_line(&text_of(e, "Code").unwrap_or_default()),
                    message: one_line(&text_of(e, "Message").unwrap_or_default()),
                    request_id: None,
                }),
            )
        })
        .collect()
}

fn done_batch(
    result: Node,
    action: &'static str,
    entry_name: &'static str,
    len: usize,
) -> Result<super::api::WireBatch<()>> {
    let mut found = batch_errors(result, action);
    for e in elements(result, entry_name) {
        found.push((text_of(e, "Id").unwrap_or_default(), Ok(())));
    }
    order_batch(action, len, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::ReceiptHandle;
    use crate::sqs::codec_tests::fifo_send;

    fn encode(call: &Call) -> String {
        String::from_utf8(QueryCodec.encode(call).body).unwrap()
    }

    #[test]
    fn encodes_send_with_fifo_fields_and_escapes() {
        let body = encode(&fifo_send());
        assert_eq!(
            body,
            "Action=SendMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2F127.0.0.1%3A5000%2F123%2Fq.fifo\
             &MessageBody=%7B%22a%22%3A+%22%C3%A9+%26+%2B%22%7D&MessageGroupId=archive-x&MessageDeduplicationId=d1"
        );
    }

    #[test]
    fn encodes_batches_with_positional_ids() {
        let receipts = [ReceiptHandle("r0".into()), ReceiptHandle("r1".into())];
        let body = encode(&Call::DeleteMessageBatch {
            queue: "q",
            receipts: &receipts,
        });
        assert!(body.ends_with("DeleteMessageBatchRequestEntry.1.Id=0&DeleteMessageBatchRequestEntry.1.ReceiptHandle=r0&DeleteMessageBatchRequestEntry.2.Id=1&DeleteMessageBatchRequestEntry.2.ReceiptHandle=r1"), "{body}");
        let body = encode(&Call::ReceiveMessage {
            queue: "q",
            max_messages: 10,
            wait_seconds: 20,
            visibility_timeout: Some(30),
            attempt_id: None,
        });
        assert!(
            body.contains(
                "MaxNumberOfMessages=10&WaitTimeSeconds=20&VisibilityTimeout=30&AttributeName.1=All"
            ),
            "{body}"
        );
    }

    fn decode(call: &Call, status: u16, xml: &str) -> Result<Reply> {
        QueryCodec.decode(call, status, &[], xml.as_bytes())
    }

    #[test]
    fn errors_from_server_text_print_on_one_line() {
        let call = Call::GetQueueAttributes {
            queue: "q",
            names: &["ApproximateNumberOfMessages"],
        };
        // Found by fuzz/query_response: the parser's message quotes the newline.
        for (status, xml) in [(200, "<x./\n"), (500, "<x./\n")] {
            let e = decode(&call, status, xml).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e:?}");
        }
        let xml = "<ErrorResponse><Error><Code>Bad\nCode</Code><Message>line one\nline two\r</Message></Error>\
            <RequestId>r\n1</RequestId></ErrorResponse>";
        let e = decode(&call, 400, xml).unwrap_err().to_string();
        assert!(!e.contains(['\n', '\r']), "{e:?}");
        assert!(e.contains(r"line one\nline two"), "{e}");
    }

    #[test]
    fn a_document_that_is_not_the_answer_is_a_protocol_error() {
        let call = Call::GetQueueAttributes {
            queue: "q",
            names: &["ApproximateNumberOfMessages"],
        };
        for xml in [
            "<html><body>Welcome to the hotel network</body></html>",
            "<ReceiveMessageResponse/>",
        ] {
            let e = decode(&call, 200, xml).unwrap_err();
            assert!(matches!(e, Error::Protocol { .. }), "{xml}: {e}");
            assert!(
                e.to_string().contains("<GetQueueAttributesResponse>"),
                "{e}"
            );
        }
    }

    /// Real answers captured from moto; see `tests/fixtures/README.md`.
    mod moto {
        use super::*;

        fn fixture(call: &Call, status: u16, body: &str) -> Result<Reply> {
            QueryCodec.decode(call, status, &[], body.as_bytes())
        }

        #[test]
        fn errors_of_both_shapes() {
            let call = Call::GetQueueAttributes {
                queue: "q",
                names: &[],
            };
            let Err(Error::Service(e)) = fixture(
                &call,
                403,
                include_str!("../../tests/fixtures/moto/error_signature_does_not_match.xml"),
            ) else {
                panic!()
            };
            assert_eq!(e.code, "SignatureDoesNotMatch");
            assert!(e.is_auth());
            let Err(Error::Service(e)) = fixture(
                &call,
                403,
                include_str!("../../tests/fixtures/moto/error_invalid_client_token_id.xml"),
            ) else {
                panic!()
            };
            assert_eq!(e.code, "InvalidClientTokenId");
            let receipt = ReceiptHandle("r".into());
            let Err(Error::Service(e)) = fixture(
                &Call::DeleteMessage {
                    queue: "q",
                    receipt: &receipt,
                },
                400,
                include_str!("../../tests/fixtures/moto/error_invalid_receipt_handle.xml"),
            ) else {
                panic!()
            };
            assert!(e.is_stale_receipt(), "{e:?}");
        }
    }
}
