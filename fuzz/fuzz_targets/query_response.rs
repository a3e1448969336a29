//! `QueryCodec::decode` over arbitrary bytes, for every kind of call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_archive::sqs::query::QueryCodec;

mod calls;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    calls::decode_each(&QueryCodec, selector, &[], body);
});
