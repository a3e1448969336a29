//! `sqs_archive receive`: read completions from the completion queue.
//!
//! Each completion is printed as one JSON line whose fields have one type
//! whatever the content (see [`line`]); `--output aws` prints instead the
//! object `aws sqs receive-message` prints ([`aws_output`]).
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
    pub output: Output,
}

/// `--output`: how completions are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// One JSON line per completion ([`line`]).
    #[default]
    Lines,
    /// One `{"Messages": [...]}` object, as `aws sqs receive-message` prints.
    Aws,
}

/// Parses what follows `receive`.
pub fn parse(parser: &mut lexopt::Parser, common: &mut Common) -> Result<ReceiveArgs> {
    let mut args = ReceiveArgs {
        max: 10,
        wait: None,
        delete: false,
        exec: None,
        output: Output::Lines,
    };
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--max" => args.max = number(parser, "--max", 1, 10)?,
            "--wait" => args.wait = Some(number(parser, "--wait", 0, 20)?),
            "--delete" => args.delete = true,
            "--output" => {
                args.output = match string(parser)?.as_str() {
                    "lines" => Output::Lines,
                    "aws" => Output::Aws,
                    other => {
                        return Err(Error::Usage(format!(
                            "invalid --output {other:?}: use lines or aws"
                        )));
                    }
                }
            }
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
    if args.output == Output::Aws && args.exec.is_some() {
        return Err(Error::Usage(
            "--output aws and --exec do not go together: --exec hands CMD one line each".into(),
        ));
    }
    Ok(args)
}

/// One completion as `receive` prints it. Every field has one type
/// whatever the body holds: `body` is the string as received, `body_json`
/// the body parsed when it is JSON, else `null`.
pub fn line(m: &ReceivedMessage) -> String {
    let body_json = serde_json::from_str::<Value>(&m.body).unwrap_or(Value::Null);
    crate::text::json_line(&json!({
        "message_id": m.message_id,
        "receive_count": m.receive_count,
        "receipt_handle": m.receipt_handle.as_str(),
        "md5_of_body": crate::digest::md5_hex(&m.body),
        "attributes": m.attributes,
        "message_attributes": message_attributes(m, false),
        "body": m.body,
        "body_json": body_json,
    }))
}

/// The message attributes as an object, by name: `{data_type,
/// string_value, binary_value}` with `null` for an absent value (lines), or
/// as the AWS CLI prints them (`DataType` and the one value present).
fn message_attributes(m: &ReceivedMessage, aws: bool) -> Value {
    let map = m
        .message_attributes
        .iter()
        .map(|(name, a)| {
            let value = if aws {
                let mut v = json!({"DataType": a.data_type});
                if let Some(s) = &a.string_value {
                    v["StringValue"] = json!(s);
                }
                if let Some(b) = &a.binary_value {
                    v["BinaryValue"] = json!(b);
                }
                v
            } else {
                json!({
                    "data_type": a.data_type,
                    "string_value": a.string_value,
                    "binary_value": a.binary_value,
                })
            };
            (name.clone(), value)
        })
        .collect::<serde_json::Map<String, Value>>();
    Value::Object(map)
}

/// What `aws sqs receive-message --attribute-names All` prints for these
/// messages: `{"Messages": [{"MessageId", "ReceiptHandle", "MD5OfBody",
/// "Body", "Attributes"}]}`, or `{}` when there were none (as the CLI does).
pub fn aws_output(messages: &[ReceivedMessage]) -> String {
    if messages.is_empty() {
        return "{}".into();
    }
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut v = json!({
                "MessageId": m.message_id,
                "ReceiptHandle": m.receipt_handle.as_str(),
                "MD5OfBody": crate::digest::md5_hex(&m.body),
                "Body": m.body,
                "Attributes": m.attributes,
            });
            // The CLI prints MessageAttributes only when there are some.
            if !m.message_attributes.is_empty() {
                v["MessageAttributes"] = message_attributes(m, true);
            }
            v
        })
        .collect();
    crate::text::json_line(&json!({ "Messages": messages }))
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
    let exit = match (&args.exec, args.output) {
        (Some(argv), _) => exec_each(&*client, queue, &messages, argv),
        (None, Output::Lines) => print_each(&*client, queue, &messages, args.delete, out),
        (None, Output::Aws) => print_all(&*client, queue, &messages, args.delete, out),
    }?;
    // A message whose body did not match its MD5 was logged and left on the
    // queue; the good ones were handled. The exit says not all was well.
    if exit == Exit::Ok && client.damaged_received() > 0 {
        return Ok(Exit::Protocol);
    }
    Ok(exit)
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
    let exit = if delete {
        delete_printed(client, queue, &written)?
    } else {
        Exit::Ok
    };
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(exit)
}

/// Deletes the completions that were printed; one warning per one the
/// queue kept, and 75 when there was any.
fn delete_printed(
    client: &dyn ArchiveClient,
    queue: &str,
    printed: &[&ReceivedMessage],
) -> Result<Exit> {
    if printed.is_empty() {
        return Ok(Exit::Ok);
    }
    let receipts: Vec<ReceiptHandle> = printed.iter().map(|m| m.receipt_handle.clone()).collect();
    let mut failed = 0;
    for (m, outcome) in printed
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
    Ok(if failed > 0 { Exit::TempFail } else { Exit::Ok })
}

/// Prints all completions as one object; with `delete`, deletes them once
/// it was written.
fn print_all(
    client: &dyn ArchiveClient,
    queue: &str,
    messages: &[ReceivedMessage],
    delete: bool,
    out: &mut impl Write,
) -> Result<Exit> {
    write_line(out, format_args!("{}\n", aws_output(messages)))?;
    if !delete {
        return Ok(Exit::Ok);
    }
    delete_printed(client, queue, &messages.iter().collect::<Vec<_>>())
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
        let a = parse_args(&["--exec", "jq -e '.body_json.success == true'"]).unwrap();
        assert_eq!(
            a.exec.unwrap(),
            vec!["jq", "-e", ".body_json.success == true"]
        );
        assert!(parse_args(&["--exec", "'unbalanced"]).is_err());
        assert!(parse_args(&["--exec", ""]).is_err());
        let e = parse_args(&["--exec", "cat", "--delete"]).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        let e = parse_args(&["--exec", "cat", "--output", "aws"]).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        assert!(parse_args(&["--output", "yaml"]).is_err());
    }

    fn message(body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "id-1".into(),
            receipt_handle: ReceiptHandle("rh-1".into()),
            body: body.into(),
            receive_count: 2,
            attributes: [("SentTimestamp".to_string(), "1".to_string())].into(),
            message_attributes: Default::default(),
        }
    }

    #[test]
    fn every_line_has_the_same_field_types() {
        for body in [r#"{"success":true}"#, "not json", "42", r#""a string""#, ""] {
            let v: Value = serde_json::from_str(&line(&message(body))).unwrap();
            assert_eq!(v["body"], body, "body is the string as received");
            assert!(v["message_id"].is_string() && v["receipt_handle"].is_string());
            assert!(v["receive_count"].is_u64() && v["attributes"].is_object());
            assert_eq!(v["md5_of_body"], crate::digest::md5_hex(body));
            let parsed = serde_json::from_str::<Value>(body).ok();
            assert_eq!(v["body_json"], parsed.unwrap_or(Value::Null), "{body}");
        }
    }

    #[test]
    fn aws_output_is_the_cli_shape() {
        assert_eq!(aws_output(&[]), "{}");
        let v: Value = serde_json::from_str(&aws_output(&[message("x")])).unwrap();
        let m = &v["Messages"][0];
        assert_eq!(m["MessageId"], "id-1");
        assert_eq!(m["ReceiptHandle"], "rh-1");
        assert_eq!(m["Body"], "x");
        assert_eq!(m["MD5OfBody"], "9dd4e461268c8034f5c8564e155c67a6");
        assert_eq!(m["Attributes"]["SentTimestamp"], "1");
    }
}
