//! `Settings::resolve` from arbitrary profile file text.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use sqs_archive::config::{Settings, Source};
use sqs_archive::environment::Env;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = Env::from_pairs(std::iter::empty::<(String, String)>());
    match Settings::resolve(
        &Source::default(),
        env,
        Some(PathBuf::from("config/fuzz.json")),
        Some(text),
    ) {
        Ok(settings) => {
            // Debug never shows a secret, whatever the file held.
            if let Some(secret) = &settings.config_keys.secret_access_key {
                let shown = format!("{settings:?}");
                let secret = secret.expose();
                assert!(secret.len() < 4 || !shown.contains(secret), "{shown}");
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\n', '\r']), "{text:?}");
            assert_eq!(e.exit().as_u8(), 78, "{text}");
        }
    }
});
