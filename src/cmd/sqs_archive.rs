//! `sqs_archive`: send archive requests, read completions, inspect queues.
//!
//! [`parse_args`] turns the command line into a [`Command`] without touching
//! the process; [`run`] carries it out and returns the exit code.

use std::ffi::OsString;
use std::time::SystemTime;

use lexopt::ValueExt;
use serde_json::{Value, json};

use crate::cmd::args::{COMMON_HELP, Common, Flag, next, string, usage};
use crate::config::{QueueRole, Settings};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::schema::MessageSchema;
use crate::message::{ARCHIVE_ACTION, Priority, RequestMessage, outgoing};
use crate::queue::ReceiptHandle;
use crate::stdio::{write_line, write_out};

const HELP: &str = "\
sqs_archive: send archive requests to the request queue and read results from the completion queue.

Usage: sqs_archive [OPTIONS] <COMMAND> [ARGS]

Commands:
  send --aipid ID --filenames F1 [F2 ...] [--priority low|medium|high] [--action archive]
        Validate an archive request against the schema and send it; prints the message id.
  receive [--max N] [--wait S] [--delete | --exec 'CMD ARGS']
        Print up to N (1-10) completions as JSON lines. Deletes them only with --delete,
        and only after printing. With --exec, runs CMD (no shell) once per completion with
        its JSON line on stdin and deletes it only when CMD exits 0; the first failure
        stops, and that completion and the rest stay on the queue.
  delete --receipt-handle H [--queue request|completion]
        Delete one received message (default queue: completion).
  stats
        Approximate visible, in-flight and delayed counts of both queues, as JSON.
  credentials
        Say which source supplies the AWS credentials (never prints a secret).
  audit [--aipid ID] [--max-bytes-per-second N]
        Re-hash archived AIPs (one, or all in archive_dir) against their manifests; one
        line per missing, extra, changed or unreadable file; exits 0 when all match, 1 otherwise.
  doctor [--json]
        Check that this host is ready: profile, credentials, queues and their attributes,
        directories, handler, who else could change the profile, .env and handler, the
        lock, metrics and log files. One ok/warn/fail line each (--json: one object);
        exits 0 when nothing failed, 1 otherwise.
  config [--json]
        Print every setting, its value and where it came from (default, profile, variable,
        env file, flag); credentials are shown as ***.

";

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send {
        aipid: String,
        filenames: Vec<String>,
        priority: Priority,
        action: String,
    },
    Receive(crate::cmd::receive::ReceiveArgs),
    Delete {
        receipt: String,
        queue: QueueRole,
    },
    Stats,
    Credentials,
    Doctor(crate::cmd::doctor::ReportArgs),
    Config(crate::cmd::doctor::ReportArgs),
    Audit(crate::cmd::audit::AuditArgs),
    Help,
    Version,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub common: Common,
    pub action: Action,
}

/// Parses `sqs_archive`'s arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut common = Common::default();
    let mut subcommand = None;
    while let Some(flag) = next(&mut parser)? {
        if common.take(&flag, &mut parser)? {
            continue;
        }
        match flag {
            Flag::Value(v) => {
                subcommand = Some(v.string().map_err(usage)?);
                break;
            }
            other => return Err(other.unexpected()),
        }
    }
    let action = if common.help {
        Action::Help
    } else if common.version {
        Action::Version
    } else {
        match subcommand.as_deref() {
            Some("send") => parse_send(&mut parser, &mut common)?,
            Some("receive") => {
                Action::Receive(crate::cmd::receive::parse(&mut parser, &mut common)?)
            }
            Some("delete") => parse_delete(&mut parser, &mut common)?,
            Some("stats") => {
                rest_is_common(&mut parser, &mut common)?;
                Action::Stats
            }
            Some("credentials") => {
                rest_is_common(&mut parser, &mut common)?;
                Action::Credentials
            }
            Some("doctor") => Action::Doctor(crate::cmd::doctor::parse(&mut parser, &mut common)?),
            Some("config") => Action::Config(crate::cmd::doctor::parse(&mut parser, &mut common)?),
            Some("audit") => Action::Audit(crate::cmd::audit::parse(&mut parser, &mut common)?),
            Some(other) => {
                return Err(Error::Usage(format!(
                    "unknown command {other:?}: use send, receive, delete, stats, credentials, doctor, config or audit"
                )));
            }
            None => {
                return Err(Error::Usage(
                    "a command is required: send, receive, delete, stats, credentials, doctor, config or audit"
                        .into(),
                ));
            }
        }
    };
    // `sqs_archive send --help` asks for help too.
    let action = if common.help { Action::Help } else { action };
    Ok(Command { common, action })
}

fn rest_is_common(parser: &mut lexopt::Parser, common: &mut Common) -> Result<()> {
    while let Some(flag) = next(parser)? {
        if !common.take(&flag, parser)? {
            return Err(flag.unexpected());
        }
    }
    Ok(())
}

fn parse_send(parser: &mut lexopt::Parser, common: &mut Common) -> Result<Action> {
    let (mut aipid, mut filenames, mut priority, mut action) = (
        None,
        Vec::new(),
        Priority::Medium,
        ARCHIVE_ACTION.to_string(),
    );
    let mut saw_filenames = false;
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--aipid" => aipid = Some(string(parser)?),
            "--filenames" => {
                saw_filenames = true;
                // No names at all asks for the whole <aipid> directory.
                match parser.values() {
                    Ok(values) => {
                        for v in values {
                            filenames.push(v.string().map_err(usage)?);
                        }
                    }
                    Err(lexopt::Error::MissingValue { .. }) => {}
                    Err(e) => return Err(usage(e)),
                }
            }
            "--priority" => priority = string(parser)?.parse().map_err(Error::Usage)?,
            "--action" => action = string(parser)?,
            _ => return Err(flag.unexpected()),
        }
    }
    if common.help {
        return Ok(Action::Help);
    }
    let aipid = aipid.ok_or_else(|| Error::Usage("send needs --aipid ID".into()))?;
    if !saw_filenames {
        return Err(Error::Usage("send needs --filenames F1 [F2 ...]".into()));
    }
    Ok(Action::Send {
        aipid,
        filenames,
        priority,
        action,
    })
}

fn parse_delete(parser: &mut lexopt::Parser, common: &mut Common) -> Result<Action> {
    let (mut receipt, mut queue) = (None, QueueRole::Completion);
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--receipt-handle" => receipt = Some(string(parser)?),
            "--queue" => {
                queue = match string(parser)?.as_str() {
                    "request" => QueueRole::Request,
                    "completion" => QueueRole::Completion,
                    other => {
                        return Err(Error::Usage(format!(
                            "invalid --queue {other:?}: use request or completion"
                        )));
                    }
                }
            }
            _ => return Err(flag.unexpected()),
        }
    }
    if common.help {
        return Ok(Action::Help);
    }
    let receipt = receipt.ok_or_else(|| Error::Usage("delete needs --receipt-handle H".into()))?;
    Ok(Action::Delete { receipt, queue })
}

/// Runs `sqs_archive` with the process's arguments and environment.
pub fn main() -> Exit {
    let env = Env::from_process();
    crate::cmd::run_main("sqs_archive", || {
        let command = parse_args(std::env::args_os().skip(1))?;
        run(command, env)
    })
}

/// Carries out a parsed command.
pub fn run(command: Command, env: Env) -> Result<Exit> {
    let mut out = std::io::stdout().lock();
    match &command.action {
        Action::Help => {
            write_out(
                &mut out,
                format_args!("{HELP}{COMMON_HELP}\n\n{}", crate::config::keys_help()),
            )?;
            return Ok(Exit::Ok);
        }
        Action::Version => {
            write_out(
                &mut out,
                format_args!("sqs_archive {}\n", env!("CARGO_PKG_VERSION")),
            )?;
            return Ok(Exit::Ok);
        }
        Action::Doctor(args) => {
            // The profile is the first check: a broken one is a fail line, not exit 78.
            crate::logging::init(
                command.common.log_level,
                &env,
                log::LevelFilter::Error,
                None,
            )?;
            return Ok(crate::cmd::doctor::run(
                &command.common.source,
                env,
                args,
                &mut out,
            ));
        }
        _ => {}
    }
    let settings = Settings::load(&command.common.source, env)?;
    crate::logging::init(
        command.common.log_level,
        &settings.env,
        log::LevelFilter::Warn,
        None,
    )?;
    crate::config::warn_if_secret_readable(&settings);
    match command.action {
        Action::Send {
            aipid,
            filenames,
            priority,
            action,
        } => {
            let schema = MessageSchema::load(settings.schema_file.as_deref())?;
            let request =
                RequestMessage::new(&action, &aipid, filenames, priority, SystemTime::now())
                    .to_json();
            schema
                .validate(&request)
                .map_err(|e| Error::InvalidData(format!("request refused: {e}")))?;
            let queue = settings.queue_url(QueueRole::Request)?;
            let client = crate::connect::connect(&settings)?;
            let sent = client.send_message(queue, &outgoing(&request))?;
            let id = crate::text::escape(&sent.message_id);
            log::info!(
                "sent request {id} for aipid {aipid} to {}",
                crate::text::url(queue)
            );
            // The request is on the queue now: a failure to print its id must
            // not read as a failure to send (a retry would send it twice).
            if let Err(e) = write_line(&mut out, format_args!("{}\n", sent.message_id)) {
                crate::stdio::stderr_line(format_args!(
                    "sqs_archive: warning: the request was sent as message {id}, but its id could not be printed: {e}"
                ));
            }
        }
        Action::Receive(args) => return crate::cmd::receive::run(&settings, &args, &mut out),
        Action::Delete { receipt, queue } => {
            let url = settings.queue_url(queue)?;
            crate::connect::connect(&settings)?.delete_message(url, &ReceiptHandle(receipt))?;
        }
        Action::Audit(args) => return crate::cmd::audit::run(&settings, &args, &mut out),
        Action::Stats => {
            let client = crate::connect::connect(&settings)?;
            let mut report = serde_json::Map::new();
            for (name, role) in [
                ("request", QueueRole::Request),
                ("completion", QueueRole::Completion),
            ] {
                let url = settings.queue_url(role)?;
                let stats = client.queue_stats(url)?;
                report.insert(name.into(), json!({"queue_url": crate::text::url(url), "visible": stats.visible, "in_flight": stats.in_flight, "delayed": stats.delayed}));
            }
            let report = crate::text::json_line(&Value::Object(report));
            write_out(&mut out, format_args!("{report}\n"))?;
        }
        Action::Credentials => {
            // The region and endpoint are shown even when they cannot be
            // resolved; the credentials are what this command is about.
            let target = crate::config::Target::resolve(&settings);
            let chain = crate::aws::credentials::CredentialChain::new(
                settings.env.clone(),
                settings.config_keys.clone(),
            )
            .with_profile(
                settings.aws_profile.clone(),
                settings.aws_profile_by.clone(),
            )
            .with_region(target.as_ref().ok().map(|t| t.region.name.clone()));
            let (step, credentials) = chain.report()?;
            let (region, endpoint) = match &target {
                Ok(t) => (
                    t.region.to_string(),
                    format!("{} ({})", crate::text::url(&t.endpoint), t.endpoint_origin),
                ),
                Err(e) => (format!("not resolved: {e}"), "not resolved".to_string()),
            };
            write_out(
                &mut out,
                format_args!(
                    "{}\nchain step: {}\nregion: {region}\nendpoint: {endpoint}\n",
                    credentials.describe(),
                    step.describe()
                ),
            )?;
            for used in target.iter().flat_map(|t| &t.shared_settings_used) {
                write_out(&mut out, format_args!("aws config: {used}\n"))?;
            }
        }
        Action::Config(args) => {
            return crate::cmd::doctor::settings_view::run(&settings, &args, &mut out);
        }
        Action::Help | Action::Version | Action::Doctor(_) => unreachable!("handled above"),
    }
    Ok(Exit::Ok)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_send_like_the_prototype() {
        let c = parse(&[
            "--profile",
            "local",
            "send",
            "--aipid",
            "mds2909",
            "--filenames",
            "trial1.txt",
            "trial2.txt",
        ])
        .unwrap();
        assert_eq!(c.common.source.profile.as_deref(), Some("local"));
        assert_eq!(
            c.action,
            Action::Send {
                aipid: "mds2909".into(),
                filenames: vec!["trial1.txt".into(), "trial2.txt".into()],
                priority: Priority::Medium,
                action: "archive".into()
            }
        );
        let c = parse(&[
            "send",
            "--filenames",
            "a",
            "--aipid",
            "x",
            "--priority",
            "high",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert!(matches!(
            c.action,
            Action::Send {
                priority: Priority::High,
                ..
            }
        ));
        assert_eq!(c.common.log_level, Some(log::LevelFilter::Debug));
    }

    #[test]
    fn usage_errors_are_clear() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "a command is required"),
            (&["frobnicate"], "unknown command \"frobnicate\""),
            (&["send", "--filenames", "a"], "--aipid"),
            (&["send", "--aipid", "x"], "--filenames"),
            (
                &[
                    "send",
                    "--aipid",
                    "x",
                    "--filenames",
                    "a",
                    "--priority",
                    "urgent",
                ],
                "invalid priority",
            ),
            (&["receive", "--max", "11"], "from 1 to 10"),
            (&["receive", "--bogus"], "--bogus"),
            (
                &["--profile", "a", "--config", "b", "stats"],
                "exclude each other",
            ),
            (&["--log-level", "loud", "stats"], "invalid --log-level"),
            (&["delete"], "--receipt-handle"),
        ];
        for (args, needle) in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit(), Exit::Usage, "{args:?}");
            assert!(e.to_string().contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse(&["--help"]).unwrap().action, Action::Help);
        assert_eq!(parse(&["send", "--help"]).unwrap().action, Action::Help);
        assert_eq!(parse(&["-V"]).unwrap().action, Action::Version);
    }
}
