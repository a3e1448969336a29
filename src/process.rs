//! `process_message`: the handler `poll_messages` runs for each request.
//!
//! Reads the message JSON on stdin, checks it against the schema and its
//! `--aipid`, archives the files (see [`crate::archive`]) and prints one JSON
//! result on stdout. Exit 0: done; 65: bad data, retrying will not help;
//! 75: trouble worth a retry (disk full, permissions on the archive side).

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::archive::{ArchiveJob, archive};
use crate::args::{COMMON_HELP, Common, next, string};
use crate::config::Settings;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::ARCHIVE_ACTION;
use crate::schema::MessageSchema;

const HELP: &str = "\
process_message: archive the files one request names.

Usage: process_message --aipid ID [OPTIONS] < message.json

Reads the request JSON on stdin; copies its files from source_dir to
archive_dir/<aipid>/ and writes manifest-sha256.txt there; prints a JSON
result. Exit 0 on success, 65 for bad data, 75 for a failure worth a retry.
Run by poll_messages, which passes the configuration on in SQS_ARCHIVE_CONFIG.

Options:
  --aipid ID         the package id the message must name
";

/// Largest message read from stdin: SQS bodies are at most 1 MiB; leave room for emulators.
const MAX_INPUT: u64 = 16 << 20;

/// Runs `process_message` with the process's arguments, environment and stdin.
pub fn main() -> Exit {
    crate::error::run_main("process_message", || {
        let mut parser = lexopt::Parser::from_env();
        let mut common = Common::default();
        let mut aipid = None;
        while let Some(flag) = next(&mut parser)? {
            if common.take(&flag, &mut parser)? {
                continue;
            }
            match flag.name() {
                "--aipid" => aipid = Some(string(&mut parser)?),
                _ => return Err(flag.unexpected()),
            }
        }
        if common.help {
            println!("{HELP}\n{COMMON_HELP}");
            return Ok(Exit::Ok);
        }
        if common.version {
            println!("process_message {}", env!("CARGO_PKG_VERSION"));
            return Ok(Exit::Ok);
        }
        let aipid = aipid.ok_or_else(|| Error::Usage("--aipid ID is required".into()))?;
        let settings = Settings::load(&common.source, Env::from_process())?;
        crate::logging::init(
            common.log_level,
            &settings.env,
            log::LevelFilter::Warn,
            None,
        )?;
        let mut input = Vec::new();
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut input)
            .map_err(|e| Error::io("read", "stdin", e))?;
        if input.len() as u64 > MAX_INPUT {
            return Err(Error::InvalidData(format!(
                "the message on stdin is over {MAX_INPUT} bytes"
            )));
        }
        let text = String::from_utf8(input)
            .map_err(|_| Error::InvalidData("the message on stdin is not UTF-8".into()))?;
        let schema = MessageSchema::load(settings.schema_file.as_deref())?;
        let result = process(&text, &aipid, &schema, &settings).map_err(retry_on_io)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{result}").map_err(|e| Error::io("write", "stdout", e))?;
        Ok(Exit::Ok)
    })
}

/// Archive-side I/O trouble is worth a retry (exit 75), not a permanent failure.
fn retry_on_io(e: Error) -> Error {
    match e {
        Error::Io {
            path,
            action,
            source,
        } if !matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::PermissionDenied
        ) =>
        {
            Error::Io {
                path,
                action,
                source: std::io::Error::new(std::io::ErrorKind::ResourceBusy, source),
            }
        }
        other => other,
    }
}

/// Checks a message and archives what it names; the JSON result on success.
pub fn process(
    text: &str,
    aipid: &str,
    schema: &MessageSchema,
    settings: &Settings,
) -> Result<Value> {
    let message = schema.parse(text)?;
    let named = message
        .get("aipid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if named != aipid {
        return Err(Error::InvalidData(format!(
            "the message names aipid {named:?} but --aipid is {aipid:?}"
        )));
    }
    let action = message
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if action != ARCHIVE_ACTION {
        return Err(Error::InvalidData(format!(
            "unknown action {action:?}: process_message knows \"archive\""
        )));
    }
    let filenames: Vec<String> = message
        .get("filenames")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let report = archive(&ArchiveJob {
        aipid,
        filenames: &filenames,
        source_dir: &settings.source_dir,
        archive_dir: &settings.archive_dir,
    })?;
    Ok(json!(report))
}
