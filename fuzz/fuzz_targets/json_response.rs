//! `JsonCodec::decode` over arbitrary bytes, for every kind of call, with and
//! without the error headers SQS sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_archive::sqs::json::JsonCodec;

mod calls;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // With the top bit of a second byte set, the next line of the input is an error header.
    let (headers, body) = match rest.split_first() {
        Some((&flags, rest)) if flags & 0x80 != 0 => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            // What an HTTP header value can hold: no control characters but tab.
            let bytes: Vec<u8> = rest[..end]
                .iter()
                .copied()
                .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
                .collect();
            let value = String::from_utf8_lossy(&bytes).into_owned();
            let name = if flags & 1 == 0 {
                "x-amzn-query-error"
            } else {
                "x-amzn-errortype"
            };
            (
                vec![(name.to_string(), value)],
                &rest[end.min(rest.len())..],
            )
        }
        _ => (Vec::new(), rest),
    };
    calls::decode_each(&JsonCodec, selector, &headers, body);
});
