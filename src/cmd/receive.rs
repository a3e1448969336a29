//! `sqs_archive receive`: read completions from the completion queue.
//!
//! Three ways to consume them:
//! - plain: print each as a JSON line; nothing is deleted;
//! - `--delete`: print, then delete exactly the lines that were written and
//!   flushed. A pipe reader that stops early (`| head -n 1`) cannot be seen
//!   from here: what was written into the pipe counts as delivered;
//! - `--exec 'CMD ARGS'`: run CMD (split like a shell would, run without
//!   one) once per completion with its JSON line on stdin, and delete that
//!   completion only when CMD exited 0. The first failure stops: that
//!   completion and the ones after it are made visible again at once.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::cmd::args::{Common, next, number, string};
use crate::config::{QueueRole, Settings};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::queue::{ArchiveClient, ReceiptHandle, ReceiveRequest, ReceivedMessage};
use crate::stdio::write_line;

/// `receive`'s options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveArgs {
    pub max: u32,
    pub wait: Option<u32>,
    pub delete: bool,
    /// `--exec`: the consumer's argv.
    pub exec: Option<Vec<String>>,
}

/// Parses what follows `receive`.
pub fn parse(parser: &mut lexopt::Parser, common: &mut Common) -> Result<ReceiveArgs> {
    let mut args = ReceiveArgs {
        max: 10,
        wait: None,
        delete: false,
        exec: None,
    };
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--max" => args.max = number(parser, "--max", 1, 10)?,
            "--wait" => args.wait = Some(number(parser, "--wait", 0, 20)?),
            "--delete" => args.delete = true,
            "--exec" => {
                let line = string(parser)?;
                let argv = shlex::split(&line)
                    .filter(|argv| !argv.is_empty())
                    .ok_or_else(|| {
                        Error::Usage("--exec needs a command line (quotes balanced)".into())
                    })?;
                args.exec = Some(argv);
            }
            _ => return Err(flag.unexpected()),
        }
    }
    if args.delete && args.exec.is_some() {
        return Err(Error::Usage(
            "--delete and --exec do not go together: --exec deletes what CMD took".into(),
        ));
    }
    Ok(args)
}

/// One completion as `receive` prints it.
pub fn line(m: &ReceivedMessage) -> String {
    let body =
        serde_json::from_str::<Value>(&m.body).unwrap_or_else(|_| Value::String(m.body.clone()));
    crate::text::json_line(&json!({
        "message_id": m.message_id,
        "receive_count": m.receive_count,
        "receipt_handle": m.receipt_handle.as_str(),
        "attributes": m.attributes,
        "body": body,
    }))
}

/// Receives once and consumes what came, as the arguments say.
pub fn run(settings: &Settings, args: &ReceiveArgs, out: &mut impl Write) -> Result<Exit> {
    // A completion deleted must have been delivered: with no stdout at all,
    // receive nothing.
    if args.delete && crate::stdio::stdout_closed() {
        return Err(Error::io(
            "write",
            "stdout",
            crate::stdio::closed_stdout_error(),
        ));
    }
    let queue = settings.queue_url(QueueRole::Completion)?;
    let client = crate::connect::connect(settings)?;
    let request = ReceiveRequest {
        max_messages: args.max,
        wait_seconds: args.wait.unwrap_or(settings.wait_time_seconds),
        visibility_timeout: Some(settings.visibility_timeout),
    };
    let messages = client.receive_messages(queue, &request)?;
    match &args.exec {
        Some(argv) => exec_each(&*client, queue, &messages, argv),
        None => print_each(&*client, queue, &messages, args.delete, out),
    }
}

/// Prints each completion, flushed and checked before the next; with
/// `delete`, deletes exactly those written, then reports a failed write.
fn print_each(
    client: &dyn ArchiveClient,
    queue: &str,
    messages: &[ReceivedMessage],
    delete: bool,
    out: &mut impl Write,
) -> Result<Exit> {
    let mut written = Vec::new();
    let mut write_error = None;
    for m in messages {
        match write_line(out, format_args!("{}\n", line(m))) {
            Ok(()) => written.push(m),
            Err(e) => {
                write_error = Some(e);
                break;
            }
        }
    }
    let mut failed = 0;
    if delete && !written.is_empty() {
        let receipts: Vec<ReceiptHandle> =
            written.iter().map(|m| m.receipt_handle.clone()).collect();
        for (m, outcome) in written
            .iter()
            .zip(client.delete_message_batch(queue, &receipts)?)
        {
            if let Err(e) = outcome {
                failed += 1;
                crate::stdio::stderr_line(format_args!(
                    "sqs_archive: warning: message {} printed but not deleted: {e}",
                    crate::text::escape(&m.message_id)
                ));
            }
        }
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(if failed > 0 { Exit::TempFail } else { Exit::Ok })
}

/// Runs the consumer once per completion; deletes each it took (exit 0).
fn exec_each(
    client: &dyn ArchiveClient,
    queue: &str,
    messages: &[ReceivedMessage],
    argv: &[String],
) -> Result<Exit> {
    for (i, m) in messages.iter().enumerate() {
        let id = crate::text::escape(&m.message_id).into_owned();
        let status = consume(argv, &line(m))?;
        if status.success() {
            client.delete_message(queue, &m.receipt_handle)?;
            continue;
        }
        // Not taken: it and the rest go back at once rather than after the
        // visibility timeout.
        let rest = &messages[i..];
        for m in rest {
            if let Err(e) =
                client.change_visibility(queue, &m.receipt_handle, std::time::Duration::ZERO)
            {
                log::warn!(
                    "message {} stays hidden until its visibility timeout: {e}",
                    crate::text::escape(&m.message_id)
                );
            }
        }
        let how = match status.code() {
            Some(code) => format!("exited {code}"),
            None => "was killed by a signal".to_string(),
        };
        crate::stdio::stderr_line(format_args!(
            "sqs_archive: {} {how} on message {id}; it and {} after it stay on the queue",
            crate::text::quoted(&argv[0], 200),
            rest.len() - 1
        ));
        return Ok(Exit::TempFail);
    }
    Ok(Exit::Ok)
}

/// Runs `argv` with `line` on its stdin; its stdout and stderr are ours.
fn consume(argv: &[String], line: &str) -> Result<std::process::ExitStatus> {
    let program = crate::text::quoted(&argv[0], 200);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Usage(format!("--exec: cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A consumer that does not read its stdin may close it: not an error
        // of ours; its exit status decides.
        let _ = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"));
    }
    child
        .wait()
        .map_err(|e| Error::io("wait for", argv[0].as_str(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<ReceiveArgs> {
        let mut parser = lexopt::Parser::from_args(args.iter().map(std::ffi::OsString::from));
        parse(&mut parser, &mut Common::default())
    }

    #[test]
    fn exec_is_split_like_a_shell_without_one() {
        let a = parse_args(&["--exec", "jq -e '.body.success == true'"]).unwrap();
        assert_eq!(a.exec.unwrap(), vec!["jq", "-e", ".body.success == true"]);
        assert!(parse_args(&["--exec", "'unbalanced"]).is_err());
        assert!(parse_args(&["--exec", ""]).is_err());
        let e = parse_args(&["--exec", "cat", "--delete"]).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
    }
}
