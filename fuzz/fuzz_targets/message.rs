//! Message bodies: `MessageSchema::parse` on arbitrary text, and the
//! completions built from it.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sqs_archive::message::names::{is_valid_aipid, is_valid_relative_name};
use sqs_archive::message::schema::MessageSchema;
use sqs_archive::message::{failure_completion, success_completion};

static SCHEMA: OnceLock<MessageSchema> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let schema = SCHEMA.get_or_init(MessageSchema::embedded);
    let now = UNIX_EPOCH + Duration::from_secs(1_795_856_051);
    let parsed = schema.parse(body);
    // Whatever the body, its failure completion carries it and validates.
    let failure = failure_completion(body, "m-1", "fuzz", now);
    assert_eq!(failure["original_body"], body);
    if let Err(e) = schema.validate(&failure) {
        panic!("the failure completion of {body:?} does not validate: {e}");
    }
    match parsed {
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\n', '\r']), "{text:?}");
        }
        Ok(request) => {
            // What validation lets through, the name rules the archive and
            // the completions rely on must accept too.
            let aipid = request["aipid"]
                .as_str()
                .expect("schema: aipid is a string");
            assert!(is_valid_aipid(aipid), "schema accepts aipid {aipid:?}");
            for name in request["filenames"].as_array().expect("schema: a list") {
                let name = name.as_str().expect("schema: names are strings");
                assert!(
                    is_valid_relative_name(name),
                    "schema accepts file name {name:?}"
                );
            }
            let success = success_completion(&request, "m-1", "ok", json!({"files": []}), now);
            if let Err(e) = schema.validate(&success) {
                panic!("the success completion of {body:?} does not validate: {e}");
            }
            assert_eq!(success["success"], Value::Bool(true));
        }
    }
});
