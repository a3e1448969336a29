//! `poll_messages`: its arguments, and the run a cron line or a service
//! starts: settings, logging, the run lock and handler slots, metrics, signals, then
//! [`Poller::run`](crate::poller::Poller::run).

use std::time::{Duration, SystemTime};

use crate::cmd::args::{Common, next, number};
use crate::config::{QueueRole, Settings};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::poller::setup::RUN_HANDLER;
use crate::poller::slots::{self, RunMode};
use crate::poller::{PollOptions, Poller, Shutdown};

/// Parses `poll_messages`'s arguments.
pub fn parse_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(Common, PollOptions)> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut common = Common::default();
    let mut options = PollOptions::default();
    while let Some(flag) = next(&mut parser)? {
        if common.take(&flag, &mut parser)? {
            continue;
        }
        match flag.name() {
            "--loop" => options.keep_polling = true,
            "--quiet" => options.quiet = true,
            "--max-messages" => {
                options.max_messages = Some(number(&mut parser, "--max-messages", 1, u64::MAX)?)
            }
            "--max-runtime" => {
                options.max_runtime = Some(Duration::from_secs(number(
                    &mut parser,
                    "--max-runtime",
                    1,
                    365 * 86_400,
                )?))
            }
            _ => return Err(flag.unexpected()),
        }
    }
    Ok((common, options))
}

/// Runs `poll_messages` with the process's arguments and environment.
pub fn main() -> Exit {
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(RUN_HANDLER)) {
        return run_handler(std::env::args_os().skip(2).collect());
    }
    crate::cmd::run_main("poll_messages", || {
        let (common, options) = parse_args(std::env::args_os().skip(1))?;
        let help = || crate::cmd::help::program_help(&crate::cmd::commands::POLL_MESSAGES);
        if let Some(exit) = crate::cmd::help_or_version(&common, "poll_messages", help)? {
            return Ok(exit);
        }
        // SIGHUP never ends a run, not even during set-up (a logrotate
        // postrotate, a closed terminal): a flag nobody reads replaces the
        // default action; log_file's reopening and the signal thread below
        // add their own handlers.
        signal_hook::flag::register(
            signal_hook::consts::SIGHUP,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        )
        .map_err(|e| Error::io("install signal handler", "SIGHUP", e))?;
        let settings = Settings::load(&common.source, Env::from_process())?;
        // Nothing is created (log, lock) before the configuration is known
        // to be whole: a run with none fails here, in any directory.
        check_paths(&settings)?;
        crate::logging::init_quiet(
            common.log_level,
            &settings.env,
            log::LevelFilter::Info,
            settings.log_file.as_deref(),
            options.quiet,
        )?;
        crate::config::warn_if_secret_readable(&settings);
        // Cron runs overlap, sharing the host's handler slots; a --loop
        // poller runs alone (crate::poller::slots).
        let mode = RunMode::for_run(options.keep_polling);
        let Some(_lock) = slots::lock_run(&settings.lock_file, mode)? else {
            log::info!(
                "{} {}; nothing to do",
                mode.held_by(),
                settings.lock_file.display()
            );
            return Ok(Exit::Ok);
        };
        let slots = slots::take_free(&settings.lock_file, settings.workers)?;
        if slots.is_empty() {
            log::info!(
                "all {} handler slots ({}.slot-*) are in use by other runs' handlers; nothing to do",
                settings.workers,
                settings.lock_file.display()
            );
            return Ok(Exit::Ok);
        }
        let metrics = crate::metrics::Recorder::new(
            settings.metrics_file.clone(),
            settings.metrics_interval,
            SystemTime::now(),
        );
        let handler_env = handler_env(&settings, &common)?;
        let poller = match Poller::new(settings, handler_env) {
            Ok(mut poller) => {
                poller.metrics = metrics;
                poller
            }
            Err(e) => {
                metrics.write(&Default::default(), e.exit().as_u8(), SystemTime::now());
                return Err(e);
            }
        };
        let shutdown = Shutdown::new(poller.settings.shutdown_grace);
        // SIGHUP is caught too: with log_file, logging's flag handler reopens
        // it (logrotate); without, it is ignored instead of ending the run.
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ])
        .map_err(|e| Error::io("install signal handlers", "SIGTERM", e))?;
        let handle = signals.handle();
        // systemd's notify protocol (`Type=notify` units); no-op elsewhere.
        let notify = crate::notify::Notifier::from_env(&poller.settings.env);
        let has_log_file = poller.settings.log_file.is_some();
        std::thread::scope(|s| {
            s.spawn(|| {
                for signal in signals.forever() {
                    if signal == signal_hook::consts::SIGHUP {
                        if has_log_file {
                            log::info!("SIGHUP: reopening log_file");
                        } else {
                            log::info!("SIGHUP ignored: no log_file to reopen");
                        }
                        continue;
                    }
                    notify.send("STOPPING=1\nSTATUS=stopping: waiting for running handlers");
                    shutdown.signal();
                }
            });
            // Pings until the run ends: dropping `alive` wakes and ends it.
            let (alive, ended) = std::sync::mpsc::channel::<()>();
            if let Some(every) = notify.watchdog_interval() {
                let notify = &notify;
                s.spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        ended.recv_timeout(every)
                    {
                        notify.send("WATCHDOG=1");
                    }
                });
            }
            notify.send("READY=1\nSTATUS=polling the request queue");
            let result = poller.run_in(&options, &shutdown, slots);
            drop(alive);
            handle.close();
            let code = match &result {
                Ok(exit) => exit.as_u8(),
                Err(e) => e.exit().as_u8(),
            };
            poller.write_metrics(code);
            result
        })
    })
}

/// The checks on the configuration that come before any file is created:
/// both queues are named; no two of `lock_file`, `metrics_file`,
/// `audit_metrics_file` and `log_file` are the same file (the metrics
/// rename would replace the lock's inode, and a second `--loop` poller
/// would start beside the first); nothing but a regular file of ours is at
/// `metrics_file`.
fn check_paths(settings: &Settings) -> Result<()> {
    settings.queue_url(QueueRole::Request)?;
    settings.queue_url(QueueRole::Completion)?;
    let mut paths = vec![("lock_file", settings.lock_file.as_path())];
    for (key, path) in [
        ("metrics_file", &settings.metrics_file),
        ("audit_metrics_file", &settings.audit_metrics_file),
        ("log_file", &settings.log_file),
    ] {
        if let Some(path) = path {
            paths.push((key, path.as_path()));
        }
    }
    if let Some((a, b)) = crate::files::same_file(&paths) {
        return Err(Error::config(
            format!("{a} and {b}"),
            "they name the same file; give each its own",
        ));
    }
    if let Some(path) = &settings.metrics_file {
        crate::files::check_write_target(path)
            .map_err(|e| e.into_error("write metrics file", "metrics_file", path))?;
    }
    Ok(())
}

/// How the handler finds the same configuration: absolute paths, so its working directory does not matter.
fn handler_env(settings: &Settings, common: &Common) -> Result<Vec<(String, String)>> {
    let absolute = |p: &std::path::Path| -> Result<String> {
        std::path::absolute(p)
            .map(|p| p.display().to_string())
            .map_err(|e| Error::io("resolve", p, e))
    };
    let mut env = Vec::new();
    if let Some(file) = &settings.file {
        env.push(("SQS_ARCHIVE_CONFIG".to_string(), absolute(file)?));
        env.push(("SQS_ARCHIVE_PROFILE".to_string(), String::new()));
    }
    if let Some(env_file) = &common.source.env_file {
        env.push(("SQS_ARCHIVE_ENV_FILE".to_string(), absolute(env_file)?));
    }
    if let Some(level) = common.log_level {
        env.push(("SQS_ARCHIVE_LOG".to_string(), level.to_string()));
    }
    Ok(env)
}

/// `poll_messages --run-handler -- PROGRAM ARGS`: what the poller starts for
/// a handler of the profile's. It arms the parent-death signal against the
/// poller (`subprocess::parent_death`), then replaces itself with the
/// handler, which keeps the signal: a killed poller takes it along.
fn run_handler(args: Vec<std::ffi::OsString>) -> Exit {
    use std::os::unix::process::CommandExt as _;
    let argv = match args.split_first() {
        Some((dashes, rest)) if dashes == "--" && !rest.is_empty() => rest,
        _ => {
            crate::stdio::stderr_line(format_args!(
                "poll_messages: usage: poll_messages {RUN_HANDLER} -- PROGRAM [ARGS]"
            ));
            return Exit::Usage;
        }
    };
    let poller = std::env::var(crate::subprocess::parent_death::POLLER_PID_VAR).ok();
    match crate::subprocess::parent_death::die_with_poller(poller.as_deref()) {
        Ok(crate::subprocess::parent_death::Parent::Gone) => {
            crate::stdio::stderr_line(format_args!(
                "poll_messages: the poller that started this handler is gone; not starting it"
            ));
            return Exit::TempFail;
        }
        Ok(_) => {}
        Err(e) => log::debug!("cannot arm the parent-death signal: {e}"),
    }
    let e = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    crate::stdio::stderr_line(format_args!(
        "poll_messages: handler {} cannot be started: {e}",
        crate::text::quoted(&argv[0].to_string_lossy(), 200)
    ));
    Exit::Config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let (_, o) = parse_args(
            [
                "--loop",
                "--quiet",
                "--max-messages",
                "5",
                "--max-runtime",
                "60",
            ]
            .map(Into::into),
        )
        .unwrap();
        assert_eq!(
            o,
            PollOptions {
                keep_polling: true,
                quiet: true,
                max_messages: Some(5),
                max_runtime: Some(Duration::from_secs(60))
            }
        );
        let e = parse_args(["--max-messages", "0"].map(Into::into)).unwrap_err();
        assert_eq!(e.exit(), Exit::Usage);
        assert!(
            parse_args(["--bogus"].map(Into::into))
                .unwrap_err()
                .to_string()
                .contains("--bogus")
        );
    }
}
