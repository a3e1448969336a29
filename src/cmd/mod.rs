//! The three programs (`sqs_archive`, `poll_messages`, `process_message`)
//! and `doctor`: each parses its arguments and runs. What they share is
//! here: [`run_main`], the body of every `main`.

pub mod args;
pub mod audit;
pub mod commands;
pub mod completions;
pub mod credentials_view;
pub mod doctor;
pub mod help;
pub mod man;
pub mod poll_messages;
pub mod process_message;
pub mod receive;
pub mod sqs_archive;
pub mod to_s3;

use crate::cmd::args::Common;
use crate::error::{Error, Result};
use crate::exit::Exit;

/// `--help` and `--version`, answered the same way by every program:
/// `Some(exit)` when one of them was asked for and printed.
pub fn help_or_version(
    common: &Common,
    program: &str,
    help: impl FnOnce() -> String,
) -> Result<Option<Exit>> {
    if common.help {
        crate::stdio::print_line(format_args!("{}\n", help()))?;
        return Ok(Some(Exit::Ok));
    }
    if common.version {
        let version = crate::cmd::help::version_line(program);
        crate::stdio::print_line(format_args!("{version}\n"))?;
        return Ok(Some(Exit::Ok));
    }
    Ok(None)
}

/// Runs a binary's body: prints an error once, as one line on stderr, and
/// returns the exit code. Every binary's `main` is this and nothing more.
pub fn run_main(program: &str, body: impl FnOnce() -> Result<Exit>) -> Exit {
    // Before any file is opened, so none can take a closed stdout's number.
    crate::stdio::guard();
    // A bug ends the process with one line and 70, in every build (a
    // release build would abort with SIGABRT, a debug build exit 101).
    let name = program.to_string();
    std::panic::set_hook(Box::new(move |info| {
        let line = crate::text::excerpt(&info.to_string(), 500);
        crate::stdio::stderr_line(format_args!(
            "{name}: internal error (a bug; please report it): {line}"
        ));
        std::process::exit(i32::from(Exit::Software.as_u8()));
    }));
    match body() {
        Ok(exit) => exit,
        Err(Error::BrokenPipe) => Exit::Ok,
        Err(e) => {
            log::debug!(
                "{program} failed: {}",
                crate::text::escape(&format!("{e:?}"))
            );
            // `<3>` under journald: filed as an error, like the log's own.
            let prefix = crate::logging::error_prefix();
            crate::stdio::stderr_line(format_args!("{prefix}{program}: error: {e}"));
            e.exit()
        }
    }
}
