//! Runs one handler for the poller on the [`crate::subprocess`] runner,
//! adding what only the poller wants: `--aipid <aipid>` after the handler's
//! argv, `handler_timeout` and `kill_grace`, the stdout limit, and the
//! handler's stderr logged line by line (escaped: it is foreign text) with
//! its last lines kept for the failure message. The caller's hooks (the
//! worker's: the visibility heartbeat as the tick, the shutdown's stop time
//! and alarm) pass through.
//!
//! Spawning, the process group, the pipes and the single `poll` live in the
//! runner; nothing here touches a process or a descriptor.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

pub use crate::subprocess::ExitWatch;
use crate::subprocess::{self, Hooks, Notice};

use super::outcome::Ending;

/// Keep at most this much of a handler's stdout (its JSON result); the rest
/// is read and dropped so the handler never blocks on a full pipe.
pub const MAX_STDOUT: usize = crate::message::fit::MAX_HANDLER_OUTPUT;
/// Keep this much of the end of its stderr, for the failure message.
const STDERR_TAIL: usize = 2048;
/// After the handler exited and its group was killed, how long its pipes may
/// stay open (held by a process that left the group) before we stop reading.
const LINGER: Duration = Duration::from_secs(2);

/// How to run a handler.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    /// What runs the handler for us, before its argv: empty, or our own
    /// `poll_messages --run-handler --`, which arms the parent-death signal
    /// and then becomes the handler (for handlers that do not arm it).
    pub launcher: &'a [String],
    /// Program and arguments; `--aipid <aipid>` is appended.
    pub argv: &'a [String],
    pub aipid: &'a str,
    pub body: &'a str,
    pub set_env: Vec<(String, String)>,
    pub remove_env: &'a [&'a str],
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// For log lines: `msg <id> aipid <aipid>`, already escaped.
    pub context: &'a str,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stdout: Vec<u8>,
    /// True when stdout went past [`MAX_STDOUT`] and was cut.
    pub stdout_truncated: bool,
    pub stderr_tail: String,
    pub elapsed: Duration,
}

/// Runs the handler to its end.
/// `hooks` gives the heartbeat (its tick) and the shutdown's stop time and
/// alarm; the handler's stderr and the runner's notices are logged here.
pub fn run(spec: &Spec, hooks: &mut dyn Hooks) -> Finished {
    run_watching(spec, hooks, ExitWatch::Best)
}

/// [`run`], choosing how the exit is watched.
pub fn run_watching(spec: &Spec, hooks: &mut dyn Hooks, watch: ExitWatch) -> Finished {
    let mut argv = spec.launcher.to_vec();
    argv.extend(spec.argv.iter().cloned());
    argv.extend(["--aipid".to_string(), spec.aipid.to_string()]);
    // A handler that watches for its poller's end (process_message does)
    // knows which process that is.
    let mut set_env = spec.set_env.clone();
    set_env.push((
        subprocess::parent_death::POLLER_PID_VAR.to_string(),
        std::process::id().to_string(),
    ));
    let mut handler = Handler {
        outer: hooks,
        spec,
        tail: String::new(),
    };
    let finished = subprocess::run(
        &subprocess::Spec {
            argv: &argv,
            input: spec.body.as_bytes(),
            set_env: &set_env,
            remove_env: spec.remove_env,
            timeout: spec.timeout,
            kill_grace: spec.kill_grace,
            stdout_limit: MAX_STDOUT,
            stderr_tail: 0,
            linger: LINGER,
            watch,
        },
        &mut handler,
    );
    let ending = match finished.ending {
        Ending::SpawnFailed(why) => Ending::SpawnFailed(format!("{}: {why}", spec.argv[0])),
        other => other,
    };
    Finished {
        ending,
        stdout: finished.stdout,
        stdout_truncated: finished.stdout_truncated,
        stderr_tail: handler.tail.trim_end().to_string(),
        elapsed: finished.elapsed,
    }
}

/// The runner's hooks for one handler: the caller's, plus logging.
struct Handler<'s, 'a> {
    outer: &'s mut dyn Hooks,
    spec: &'a Spec<'a>,
    tail: String,
}

impl Hooks for Handler<'_, '_> {
    fn tick_every(&self) -> Option<Duration> {
        self.outer.tick_every()
    }

    fn tick(&mut self) {
        self.outer.tick();
    }

    fn stop_at(&self) -> Option<Instant> {
        self.outer.stop_at()
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.outer.wake_fd()
    }

    fn woken(&mut self) {
        self.outer.woken();
    }

    /// Logs one stderr line (escaped: it is foreign text) and keeps it in the tail.
    fn stderr_line(&mut self, line: &[u8]) {
        let line = crate::text::escape(&String::from_utf8_lossy(line)).into_owned();
        log::info!("{}: handler: {line}", self.spec.context);
        self.tail.push_str(&line);
        self.tail.push('\n');
        if self.tail.len() > 2 * STDERR_TAIL {
            let cut = self.tail.len() - STDERR_TAIL;
            let cut = (cut..self.tail.len())
                .find(|i| self.tail.is_char_boundary(*i))
                .unwrap_or(0);
            self.tail.drain(..cut);
        }
    }

    fn notice(&mut self, notice: Notice) {
        let context = self.spec.context;
        match notice {
            Notice::TimedOut => log::warn!(
                "{context}: handler ran past handler_timeout ({} s); stopping it",
                self.spec.timeout.as_secs()
            ),
            Notice::Stopping => log::warn!("{context}: stopping the handler for shutdown"),
            Notice::PipesHeldOpen => log::warn!(
                "{context}: something outside the handler's process group holds its output open; stopped reading"
            ),
            Notice::Trouble(what) => log::error!("{context}: handler: {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count {
        beats: u32,
        every: Duration,
        stop_at: Option<Instant>,
    }

    impl Hooks for Count {
        fn tick(&mut self) {
            self.beats += 1;
        }
        fn tick_every(&self) -> Option<Duration> {
            Some(self.every)
        }
        fn stop_at(&self) -> Option<Instant> {
            self.stop_at
        }
    }

    fn sh(script: &str) -> Vec<String> {
        // The trailing "sh" is $0; --aipid X follow as $1 $2.
        vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]
    }

    fn spec<'a>(argv: &'a [String], body: &'a str, timeout: Duration) -> Spec<'a> {
        Spec {
            launcher: &[],
            argv,
            aipid: "a1",
            body,
            set_env: vec![("SQS_MESSAGE_ID".into(), "m-1".into())],
            remove_env: &["AWS_SECRET_ACCESS_KEY"],
            timeout,
            kill_grace: Duration::from_millis(300),
            context: "msg m-1 aipid a1",
        }
    }

    fn count(every_ms: u64) -> Count {
        Count {
            beats: 0,
            every: Duration::from_millis(every_ms),
            stop_at: None,
        }
    }

    const WATCHES: [ExitWatch; 2] = [ExitWatch::Best, ExitWatch::Sigchld];

    #[test]
    fn passes_body_args_and_env_and_collects_output() {
        let argv = sh(
            "cat; echo \" $1 $2 $SQS_MESSAGE_ID ${AWS_SECRET_ACCESS_KEY:-none}\"; echo oops >&2; exit 3",
        );
        for watch in WATCHES {
            let f = run_watching(
                &spec(&argv, "{\"x\":1}", Duration::from_secs(10)),
                &mut count(10_000),
                watch,
            );
            assert_eq!(f.ending, Ending::Exited(3), "{watch:?}");
            assert_eq!(
                String::from_utf8(f.stdout).unwrap(),
                "{\"x\":1} --aipid a1 m-1 none\n"
            );
            assert_eq!(f.stderr_tail, "oops");
        }
    }

    #[test]
    fn a_background_job_holding_the_pipes_does_not_hang_the_run() {
        // In the handler's process group (killed with it), and in a session
        // of its own (out of reach: its pipes are given up after LINGER).
        for script in ["(sleep 30 &); echo '{}'", "setsid sleep 30 & echo '{}'"] {
            let argv = sh(script);
            for watch in WATCHES {
                let started = Instant::now();
                let f = run_watching(
                    &spec(&argv, "", Duration::from_secs(60)),
                    &mut count(10_000),
                    watch,
                );
                assert_eq!(f.ending, Ending::Exited(0));
                assert_eq!(String::from_utf8(f.stdout).unwrap(), "{}\n");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    started.elapsed()
                );
            }
        }
    }

    #[test]
    fn megabytes_both_ways_do_not_deadlock() {
        // 1 MiB in, 5 MiB out on each of stdout and stderr, interleaved with
        // the reading: any pipe left undrained would stall both sides.
        let body = "y".repeat(1 << 20);
        let script = "head -c 2621440 /dev/zero | tr '\\0' o; head -c 2621440 /dev/zero | tr '\\0' e >&2; \
                      wc -c >&2; head -c 2621440 /dev/zero | tr '\\0' o; head -c 2621440 /dev/zero | tr '\\0' e >&2";
        let argv = sh(script);
        for watch in WATCHES {
            let f = run_watching(
                &spec(&argv, &body, Duration::from_secs(60)),
                &mut count(10_000),
                watch,
            );
            assert_eq!(f.ending, Ending::Exited(0), "{watch:?}");
            assert_eq!(f.stdout.len(), 5 << 20);
            assert!(!f.stdout_truncated);
            assert!(f.stdout.iter().all(|b| *b == b'o'));
            assert!(f.stderr_tail.ends_with('e'), "{}", &f.stderr_tail[..40]);
        }
        // A handler that ignores its input must not hang us either.
        let argv = sh("exit 0");
        assert_eq!(
            run(
                &spec(&argv, &body, Duration::from_secs(20)),
                &mut count(10_000)
            )
            .ending,
            Ending::Exited(0)
        );
    }

    #[test]
    fn stdout_is_kept_up_to_the_limit_and_the_rest_drained() {
        let argv = sh("head -c 17825792 /dev/zero | tr '\\0' x");
        let f = run(
            &spec(&argv, "", Duration::from_secs(60)),
            &mut count(10_000),
        );
        assert_eq!(f.ending, Ending::Exited(0));
        assert_eq!(f.stdout.len(), MAX_STDOUT);
        assert!(f.stdout_truncated);
    }

    #[test]
    fn timeout_kills_the_whole_group_and_heartbeats_run() {
        let argv = sh("sleep 30 & sleep 30; echo never");
        for watch in WATCHES {
            let started = Instant::now();
            let mut sup = count(100);
            let f = run_watching(
                &spec(&argv, "", Duration::from_millis(700)),
                &mut sup,
                watch,
            );
            assert_eq!(f.ending, Ending::TimedOut);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
            assert!((5..=8).contains(&sup.beats), "beats {}", sup.beats);
            assert!(f.stdout.is_empty());
        }
    }

    #[test]
    fn a_fast_handler_is_noticed_at_once() {
        // No sleep loop: the end of a handler that exits while we wait is seen
        // through the exit watch, not after a pause.
        let argv = sh("exec sleep 0.2");
        for watch in WATCHES {
            let started = Instant::now();
            let f = run_watching(
                &spec(&argv, "", Duration::from_secs(60)),
                &mut count(60_000),
                watch,
            );
            assert_eq!(f.ending, Ending::Exited(0));
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
        }
    }

    /// Stops when the shutdown says, woken by its alarm.
    struct Signalled<'a> {
        shutdown: &'a super::super::shutdown::Shutdown,
        alarm: super::super::shutdown::Alarm,
    }

    impl Hooks for Signalled<'_> {
        fn tick_every(&self) -> Option<Duration> {
            Some(Duration::from_secs(60))
        }
        fn stop_at(&self) -> Option<Instant> {
            self.shutdown.kill_at()
        }
        fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
            Some(self.alarm.fd())
        }
        fn woken(&mut self) {
            self.alarm.clear();
        }
    }

    #[test]
    fn a_signal_wakes_the_wait_at_once() {
        let shutdown = super::super::shutdown::Shutdown::new(Duration::from_secs(60));
        let mut sup = Signalled {
            shutdown: &shutdown,
            alarm: shutdown.alarm().unwrap(),
        };
        let argv = sh("sleep 30");
        let started = Instant::now();
        let f = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                shutdown.signal();
                shutdown.signal();
            });
            run(&spec(&argv, "", Duration::from_secs(20)), &mut sup)
        });
        // Without the alarm the wait would last until the next heartbeat (60 s)
        // or the timeout (20 s).
        assert_eq!(f.ending, Ending::Interrupted);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn term_ignoring_handler_is_killed_after_grace() {
        let argv = sh("trap '' TERM; sleep 30");
        let started = Instant::now();
        let mut sup = count(10_000);
        sup.stop_at = Some(Instant::now() + Duration::from_millis(100));
        let f = run(&spec(&argv, "", Duration::from_secs(60)), &mut sup);
        assert_eq!(f.ending, Ending::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_program_and_signals_are_reported() {
        let argv = vec!["/nonexistent/handler".to_string()];
        let f = run(&spec(&argv, "", Duration::from_secs(5)), &mut count(10_000));
        assert!(
            matches!(&f.ending, Ending::SpawnFailed(e) if e.contains("/nonexistent/handler")),
            "{:?}",
            f.ending
        );
        let argv = sh("kill -9 $$");
        for watch in WATCHES {
            assert_eq!(
                run_watching(
                    &spec(&argv, "", Duration::from_secs(5)),
                    &mut count(10_000),
                    watch
                )
                .ending,
                Ending::Signaled(9)
            );
        }
    }
}
