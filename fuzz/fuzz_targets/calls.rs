//! Shared by the two response targets: one call of each kind, picked by a byte.

use sqs_archive::queue::ReceiptHandle;
use sqs_archive::error::Error;
use sqs_archive::sqs::api::{Call, Codec, Reply, SendEntry};

/// HTTP statuses a server may answer with, picked by a byte.
const STATUSES: [u16; 8] = [200, 200, 200, 301, 400, 403, 500, 503];

/// Decodes `body` as the answer to the call and status that `selector` picks,
/// and checks what every answer must satisfy: no panic, and an error that
/// prints as one line (it ends up as the one stderr line of a binary).
pub fn decode_each(codec: &dyn Codec, selector: u8, headers: &[(String, String)], body: &[u8]) {
    let receipts = [ReceiptHandle("r-0".into()), ReceiptHandle("r-1".into())];
    let entry = |body| SendEntry {
        body,
        group_id: None,
        dedup_id: None,
    };
    let calls = [
        Call::SendMessage {
            queue: "q",
            entry: entry("b"),
        },
        Call::SendMessageBatch {
            queue: "q",
            entries: vec![entry("b0"), entry("b1"), entry("b2")],
        },
        Call::ReceiveMessage {
            queue: "q",
            max_messages: 10,
            wait_seconds: 0,
            visibility_timeout: Some(30),
            attempt_id: Some("a1"),
        },
        Call::DeleteMessage {
            queue: "q",
            receipt: &receipts[0],
        },
        Call::DeleteMessageBatch {
            queue: "q",
            receipts: &receipts,
        },
        Call::ChangeMessageVisibility {
            queue: "q",
            receipt: &receipts[0],
            timeout: 30,
        },
        Call::ChangeMessageVisibilityBatch {
            queue: "q",
            entries: vec![(&receipts[0], 1), (&receipts[1], 2)],
        },
        Call::GetQueueAttributes {
            queue: "q",
            names: &["ApproximateNumberOfMessages"],
        },
        Call::CreateQueue {
            name: "q",
            attributes: &[],
        },
    ];
    let call = &calls[usize::from(selector) % calls.len()];
    let status = STATUSES[usize::from(selector >> 4) % STATUSES.len()];
    match codec.decode(call, status, headers, body) {
        Ok(Reply::Received(messages)) => {
            for m in messages {
                if let Err(e) = sqs_archive::sqs::check_received(m) {
                    one_line(&e);
                }
            }
        }
        Ok(Reply::SentBatch(outcomes)) => {
            for e in outcomes.into_iter().filter_map(|o| o.err()) {
                one_line(&Error::Service(e));
            }
        }
        Ok(Reply::DoneBatch(outcomes)) => {
            for e in outcomes.into_iter().filter_map(|o| o.err()) {
                one_line(&Error::Service(e));
            }
        }
        Ok(_) => {}
        Err(e) => {
            one_line(&e);
            let _ = (e.exit(), e.is_retryable());
        }
    }
}

fn one_line(e: &Error) {
    let text = e.to_string();
    assert!(
        !text.contains(['\n', '\r']),
        "an error prints on more than one line: {text:?}"
    );
}
