//! `process_message`: the handler `poll_messages` runs for each request.
//!
//! Reads the message JSON on stdin, checks it against the schema and its
//! `--aipid`, archives the files (see [`crate::archive`]) and prints one JSON
//! result on stdout. Exit 0: done; 65: bad data, retrying will not help;
//! 75: trouble worth a retry (disk full, permissions on the archive side,
//! the AIP busy with another run). First of all it arranges to die with the
//! poller that started it ([`crate::subprocess::parent_death`]).

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::archive::{ArchiveJob, ArchiveOptions, archive};
use crate::cmd::args::{Common, next, string};
use crate::config::Settings;
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::fit::{MAX_HANDLER_OUTPUT, without_file_entries};
use crate::message::schema::MessageSchema;
use crate::message::{ARCHIVE_ACTION, ArchiveRequest};
use crate::subprocess::parent_death::{POLLER_PID_VAR, Parent, die_with_poller};

/// Largest message read from stdin: SQS bodies are at most 1 MiB; leave room for emulators.
const MAX_INPUT: u64 = 16 << 20;

/// Runs `process_message` with the process's arguments, environment and stdin.
pub fn main() -> Exit {
    crate::cmd::run_main("process_message", || {
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
        let help = || crate::cmd::help::program_help(&crate::cmd::commands::PROCESS_MESSAGE);
        if let Some(exit) = crate::cmd::help_or_version(&common, "process_message", help)? {
            return Ok(exit);
        }
        let aipid = aipid.ok_or_else(|| Error::Usage("--aipid ID is required".into()))?;
        let env = Env::from_process();
        // First thing: never outlive the poller that started us.
        match die_with_poller(env.get(POLLER_PID_VAR)) {
            Ok(Parent::Gone) => {
                return Err(Error::io(
                    "start",
                    "process_message",
                    std::io::Error::new(
                        std::io::ErrorKind::ResourceBusy,
                        "the poller that started this handler is gone; nothing done",
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => log::debug!("cannot watch the poller: {e}"),
        }
        let settings = Settings::load(&common.source, env)?;
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
        crate::files::raise_open_file_limit();
        let result = process(&text, &aipid, &schema, &settings).map_err(retry_on_io)?;
        // Names are foreign text: bidi marks and C1 controls go out as \uXXXX.
        let mut line = crate::text::json_line(&result);
        if line.len() >= MAX_HANDLER_OUTPUT {
            // The manifest holds every file's hash; the summary still fits.
            line = crate::text::json_line(&without_file_entries(result));
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").map_err(|e| Error::io("write", "stdout", e))?;
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
    // The configured schema may be looser than ours: the fields are typed
    // and the names checked here whatever it let through.
    let request = ArchiveRequest::from_json(&message)?;
    if request.aipid != aipid {
        return Err(Error::InvalidData(format!(
            "the message names aipid {:?} but --aipid is {aipid:?}",
            request.aipid
        )));
    }
    if request.action != ARCHIVE_ACTION {
        return Err(Error::InvalidData(format!(
            "unknown action {:?}: process_message knows \"archive\"",
            request.action
        )));
    }
    if let Some(location) = &settings.s3.location {
        return crate::cmd::to_s3::archive(aipid, &request.filenames, settings, location);
    }
    let options = ArchiveOptions {
        verify: settings.verify,
        ..ArchiveOptions::default()
    };
    #[cfg(any(test, feature = "test-hooks"))]
    let options = with_test_hooks(options, &settings.env)?;
    let report = archive(&ArchiveJob {
        aipid,
        filenames: &request.filenames,
        source_dir: &settings.source_dir,
        archive_dir: &settings.archive_dir,
        options,
    })?;
    Ok(json!(report))
}

/// `options` with the hooks of [`crate::archive::hooks::TEST_HOOKS_VAR`]
/// when it is set. Test builds only: a release binary ignores the variable.
#[cfg(any(test, feature = "test-hooks"))]
fn with_test_hooks(mut options: ArchiveOptions, env: &Env) -> Result<ArchiveOptions> {
    use crate::archive::hooks::{TEST_HOOKS_VAR, parse_test_hooks};
    if let Some(text) = env.get(TEST_HOOKS_VAR) {
        let (resolution, hooks) =
            parse_test_hooks(text).map_err(|e| Error::config(TEST_HOOKS_VAR, e))?;
        options.resolution = resolution;
        options.hooks = hooks;
        if let Some(wait) = hooks.lock_wait {
            options.lock_wait = wait;
        }
    }
    Ok(options)
}
