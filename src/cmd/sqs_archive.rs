//! `sqs_archive`: send archive requests, read completions, inspect queues.
//!
//! [`parse_args`] turns the command line into a [`Command`] without touching
//! the process; [`run`] carries it out and returns the exit code.

use std::ffi::OsString;
use std::time::SystemTime;

use lexopt::ValueExt;
use serde_json::{Value, json};

use crate::cmd::args::{Common, Flag, next, string, usage};
use crate::cmd::commands::{self, SQS_ARCHIVE};
use crate::config::{QueueRole, Settings};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::message::schema::MessageSchema;
use crate::message::{ARCHIVE_ACTION, Priority, RequestMessage, outgoing};
use crate::queue::ReceiptHandle;
use crate::stdio::{write_line, write_out};

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send {
        aipid: String,
        filenames: Vec<String>,
        priority: Priority,
        action: String,
        dry_run: bool,
    },
    Receive(crate::cmd::receive::ReceiveArgs),
    Delete {
        receipt: String,
        queue: QueueRole,
    },
    Stats,
    Credentials {
        json: bool,
    },
    Doctor(crate::cmd::doctor::ReportArgs),
    Config(crate::cmd::doctor::ReportArgs),
    Audit(crate::cmd::audit::AuditArgs),
    /// The overview, or one command's help.
    Help(Option<&'static commands::Command>),
    Version,
    /// `generate completions SHELL [PROGRAM]` or `generate man PROGRAM`.
    Generate(crate::cmd::completions::Artifact),
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
    if common.version && !common.help {
        return Ok(Command {
            common,
            action: Action::Version,
        });
    }
    let Some(name) = subcommand else {
        if common.help {
            return Ok(Command {
                common,
                action: Action::Help(None),
            });
        }
        return Err(Error::Usage(format!(
            "a command is required: {}",
            commands::command_list()
        )));
    };
    let Some(spec) = commands::command(&name) else {
        return Err(Error::Usage(format!(
            "unknown command {name:?}: use {} (sqs_archive --help lists them)",
            commands::command_list()
        )));
    };
    let action = match name.as_str() {
        "send" => parse_send(&mut parser, &mut common)?,
        "receive" => Action::Receive(crate::cmd::receive::parse(&mut parser, &mut common)?),
        "delete" => parse_delete(&mut parser, &mut common)?,
        "stats" => {
            rest_is_common(&mut parser, &mut common)?;
            Action::Stats
        }
        "credentials" => {
            let args = crate::cmd::doctor::parse(&mut parser, &mut common)?;
            Action::Credentials { json: args.json }
        }
        "doctor" => Action::Doctor(crate::cmd::doctor::parse(&mut parser, &mut common)?),
        "config" => Action::Config(crate::cmd::doctor::parse(&mut parser, &mut common)?),
        "audit" => Action::Audit(crate::cmd::audit::parse(&mut parser, &mut common)?),
        "help" => Action::Help(help_topic(&mut parser, &mut common)?),
        "generate" => Action::Generate(crate::cmd::completions::parse(&mut parser)?),
        _ => unreachable!("every command in the table is parsed: {}", spec.name),
    };
    // `sqs_archive send --help` asks for send's help.
    let action = if common.help {
        Action::Help(Some(spec).filter(|c| c.name != "help"))
    } else if common.version {
        Action::Version
    } else {
        action
    };
    Ok(Command { common, action })
}

/// `help [COMMAND]`: the command asked about, if any.
fn help_topic(
    parser: &mut lexopt::Parser,
    common: &mut Common,
) -> Result<Option<&'static commands::Command>> {
    let mut topic = None;
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag {
            Flag::Value(v) if topic.is_none() => {
                let name = v.string().map_err(usage)?;
                topic = Some(commands::command(&name).ok_or_else(|| {
                    Error::Usage(format!(
                        "no help for {name:?}: use {}",
                        commands::command_list()
                    ))
                })?);
            }
            other => return Err(other.unexpected()),
        }
    }
    Ok(topic.filter(|c| c.name != "help"))
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
    let mut dry_run = false;
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
            "--dry-run" => dry_run = true,
            _ => return Err(flag.unexpected()),
        }
    }
    if common.help {
        return Ok(Action::Help(commands::command("send")));
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
        dry_run,
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
        return Ok(Action::Help(commands::command("delete")));
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
        Action::Help(topic) => {
            let text = match topic {
                Some(c) => crate::cmd::help::command_help(c),
                None => crate::cmd::help::program_help(&SQS_ARCHIVE),
            };
            write_out(&mut out, format_args!("{text}"))?;
            return Ok(Exit::Ok);
        }
        Action::Version => {
            let version = crate::cmd::help::version_line("sqs_archive");
            write_out(&mut out, format_args!("{version}\n"))?;
            return Ok(Exit::Ok);
        }
        Action::Generate(artifact) => {
            write_out(&mut out, format_args!("{}", artifact.render()))?;
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
            dry_run,
        } => {
            let schema = MessageSchema::load(settings.schema_file.as_deref())?;
            let request =
                RequestMessage::new(&action, &aipid, filenames, priority, SystemTime::now())
                    .to_json();
            schema
                .validate(&request)
                .map_err(|e| Error::InvalidData(format!("request refused: {e}")))?;
            if dry_run {
                // What would be sent, byte for byte; nothing is.
                write_out(&mut out, format_args!("{}\n", outgoing(&request).body))?;
                return Ok(Exit::Ok);
            }
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
        Action::Credentials { json } => {
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
            let report =
                crate::cmd::credentials_view::CredentialsView::new(&credentials, step, &target);
            let text = if json { report.json() } else { report.text() };
            write_out(&mut out, format_args!("{text}\n"))?;
            // The same credentials sign S3 calls for an s3:// archive_dir.
            if settings.s3.location.is_some() {
                let s3 = crate::connect::s3_client(&settings)
                    .map(|c| crate::text::url(c.endpoint().base()))
                    .unwrap_or_else(|e| format!("not resolved: {e}"));
                write_out(&mut out, format_args!("s3 endpoint: {s3}\n"))?;
            }
            for used in target.iter().flat_map(|t| &t.shared_settings_used) {
                write_out(&mut out, format_args!("aws config: {used}\n"))?;
            }
            // Shown above, yet no command can run without a region: 78.
            target?;
        }
        Action::Config(args) => {
            return crate::cmd::doctor::settings_view::run(&settings, &args, &mut out);
        }
        Action::Help(_) | Action::Version | Action::Generate(_) | Action::Doctor(_) => {
            unreachable!("handled above")
        }
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
                action: "archive".into(),
                dry_run: false,
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
        assert_eq!(parse(&["--help"]).unwrap().action, Action::Help(None));
        let send = Action::Help(commands::command("send"));
        assert_eq!(parse(&["send", "--help"]).unwrap().action, send);
        assert_eq!(parse(&["help", "send"]).unwrap().action, send);
        assert_eq!(parse(&["--help", "send"]).unwrap().action, send);
        let receive = Action::Help(commands::command("receive"));
        assert_eq!(
            parse(&["receive", "--max", "2", "-h"]).unwrap().action,
            receive
        );
        assert_eq!(parse(&["help"]).unwrap().action, Action::Help(None));
        assert_eq!(parse(&["help", "bogus"]).unwrap_err().exit(), Exit::Usage);
        assert_eq!(parse(&["-V"]).unwrap().action, Action::Version);
        assert_eq!(
            parse(&["stats", "--version"]).unwrap().action,
            Action::Version
        );
    }

    /// A value the parsers accept for an option of the table.
    fn sample(o: &commands::Opt) -> Option<&'static str> {
        match o.value {
            commands::Value::None => None,
            commands::Value::Choice(words) => Some(words[0]),
            commands::Value::Text if o.long == "--exec" => Some("cat"),
            _ => Some("1"),
        }
    }

    #[test]
    fn every_listed_option_parses() {
        for c in commands::COMMANDS
            .iter()
            .filter(|c| !c.hidden && c.name != "help")
        {
            for o in c.options.iter().chain(commands::COMMON) {
                let mut args = vec![c.name];
                match c.name {
                    "send" => args.extend(["--aipid", "x", "--filenames", "a"]),
                    "delete" => args.extend(["--receipt-handle", "h"]),
                    _ => {}
                }
                args.push(o.long);
                args.extend(sample(o));
                if let Err(e) = parse(&args) {
                    panic!("{args:?}: {e}");
                }
            }
        }
        for o in commands::POLL_MESSAGES
            .options
            .iter()
            .chain(commands::COMMON)
        {
            let mut args = vec![o.long];
            args.extend(sample(o));
            let parsed = crate::cmd::poll_messages::parse_args(args.iter().map(OsString::from));
            assert!(parsed.is_ok(), "poll_messages {args:?}");
        }
        assert!(commands::command_list().contains("credentials"));
    }

    #[test]
    fn dry_run_and_json_flags() {
        let c = parse(&["send", "--aipid", "x", "--filenames", "a", "--dry-run"]).unwrap();
        assert!(matches!(c.action, Action::Send { dry_run: true, .. }));
        let c = parse(&["credentials", "--json"]).unwrap();
        assert_eq!(c.action, Action::Credentials { json: true });
    }
}
