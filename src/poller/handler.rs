//! Runs one handler subprocess: feeds it the body, collects its output,
//! extends the message's visibility while it runs, and kills it when it
//! overstays.
//!
//! The handler gets its own process group, so a timeout or shutdown kills
//! everything it started (SIGTERM to the group, SIGKILL after a grace
//! period). It is never run through a shell.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::{CommandExt, ExitStatusExt};

use super::outcome::Ending;

/// Keep at most this much of a handler's stdout (its JSON result).
const MAX_STDOUT: usize = crate::message::MAX_HANDLER_OUTPUT;
/// Bodies up to this size are written to the handler's stdin without a
/// thread: a Linux pipe buffers 64 KiB, so the write never blocks.
const INLINE_STDIN: usize = 32 << 10;
/// Keep this much of the end of its stderr, for the failure message.
const STDERR_TAIL: usize = 2048;

/// How to run a handler.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    /// Program and arguments; `--aipid <aipid>` is appended.
    pub argv: &'a [String],
    pub aipid: &'a str,
    pub body: &'a str,
    pub set_env: Vec<(String, String)>,
    pub remove_env: &'a [&'a str],
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// For log lines: `msg <id> aipid <aipid>`.
    pub context: &'a str,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stdout: Vec<u8>,
    pub stderr_tail: String,
    pub elapsed: Duration,
}

/// What the poller wants from a running handler, asked every few milliseconds.
pub trait Supervisor {
    /// Called every `every()`; extends the message's visibility.
    fn heartbeat(&mut self);
    fn every(&self) -> Duration;
    /// True when the handler must be stopped now (shutdown).
    fn must_stop(&self) -> bool;
}

/// Runs the handler to its end.
pub fn run(spec: &Spec, supervisor: &mut dyn Supervisor) -> Finished {
    let started = Instant::now();
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .arg("--aipid")
        .arg(spec.aipid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in spec.remove_env {
        command.env_remove(name);
    }
    for (k, v) in &spec.set_env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Finished {
                ending: Ending::SpawnFailed(format!("{}: {e}", spec.argv[0])),
                stdout: Vec::new(),
                stderr_tail: String::new(),
                elapsed: started.elapsed(),
            };
        }
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let pgid = child.id() as i32;
    std::thread::scope(|s| {
        let context = spec.context;
        // The readers start first: a handler may write before it reads.
        let out = std::thread::Builder::new().spawn_scoped(s, move || {
            let mut kept = Vec::new();
            let _ = (&mut stdout).take(MAX_STDOUT as u64).read_to_end(&mut kept);
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
            kept
        });
        let err = std::thread::Builder::new().spawn_scoped(s, move || {
            let mut tail = String::new();
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line);
                log::info!("{context}: handler: {line}");
                tail.push_str(&line);
                tail.push('\n');
                if tail.len() > 2 * STDERR_TAIL {
                    let cut = tail.len() - STDERR_TAIL;
                    let cut = (cut..tail.len())
                        .find(|i| tail.is_char_boundary(*i))
                        .unwrap_or(0);
                    tail.drain(..cut);
                }
            }
            tail.trim_end().to_string()
        });
        let body = spec.body.as_bytes();
        // A handler that exits without reading its input is not our error.
        let writer = if body.len() <= INLINE_STDIN {
            // Fits in the pipe's buffer: the write cannot block, no thread needed.
            let _ = stdin.write_all(body);
            drop(stdin);
            Ok(None)
        } else {
            std::thread::Builder::new()
                .spawn_scoped(s, move || {
                    let _ = stdin.write_all(body);
                })
                .map(Some)
        };
        let ending = match (&out, &err, &writer) {
            (Ok(_), Ok(_), Ok(_)) => supervise(&mut child, spec, supervisor, started),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                // No thread to drain a pipe: stop the handler rather than let it stall.
                log::error!("{context}: cannot start a thread for the handler: {e}");
                kill_group(
                    &mut child,
                    spec,
                    Ending::SpawnFailed(format!("cannot start a thread: {e}")),
                )
            }
        };
        // Whatever the handler left running in its group (a background job
        // holding its pipes) goes too, so the readers below reach the end.
        // The leader was reaped a moment ago: its id names no other group
        // unless the group emptied and the id was taken in between.
        signal_group(pgid, libc::SIGKILL);
        Finished {
            ending,
            stdout: out.ok().and_then(|t| t.join().ok()).unwrap_or_default(),
            stderr_tail: err.ok().and_then(|t| t.join().ok()).unwrap_or_default(),
            elapsed: started.elapsed(),
        }
    })
}

fn supervise(
    child: &mut Child,
    spec: &Spec,
    supervisor: &mut dyn Supervisor,
    started: Instant,
) -> Ending {
    let mut next_beat = started + supervisor.every();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return ending_of(status),
            Ok(None) => {}
            Err(e) => {
                log::error!("{}: cannot wait for the handler: {e}", spec.context);
                return kill_group(child, spec, Ending::Interrupted);
            }
        }
        let now = Instant::now();
        if now >= next_beat {
            supervisor.heartbeat();
            next_beat = now + supervisor.every();
        }
        if now.duration_since(started) >= spec.timeout {
            log::warn!(
                "{}: handler ran past handler_timeout ({} s); stopping it",
                spec.context,
                spec.timeout.as_secs()
            );
            return kill_group(child, spec, Ending::TimedOut);
        }
        if supervisor.must_stop() {
            log::warn!("{}: stopping the handler for shutdown", spec.context);
            return kill_group(child, spec, Ending::Interrupted);
        }
        // Fast handlers are noticed within a millisecond; slow ones cost little.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(sig)) => Ending::Signaled(sig),
        (None, None) => Ending::Signaled(0),
    }
}

/// SIGTERM to the handler's group, SIGKILL after the grace period; reaps the child.
fn kill_group(child: &mut Child, spec: &Spec, ending: Ending) -> Ending {
    let pgid = child.id() as i32;
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + spec.kill_grace;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; make sure nothing it started lingers.
            signal_group(pgid, libc::SIGKILL);
            return ending;
        }
        if Instant::now() >= deadline {
            signal_group(pgid, libc::SIGKILL);
            let _ = child.wait();
            return ending;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to a process group.
#[allow(unsafe_code)]
pub(crate) fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The
    // group id is our own child's, which we have not reaped yet when this is
    // first called, so it cannot name another process's group.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            log::warn!("cannot signal handler group {pgid}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count {
        beats: u32,
        every: Duration,
        stop: bool,
    }

    impl Supervisor for Count {
        fn heartbeat(&mut self) {
            self.beats += 1;
        }
        fn every(&self) -> Duration {
            self.every
        }
        fn must_stop(&self) -> bool {
            self.stop
        }
    }

    fn sh(script: &str) -> Vec<String> {
        // The trailing "sh" is $0; --aipid X follow as $1 $2.
        vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]
    }

    fn spec<'a>(argv: &'a [String], body: &'a str, timeout: Duration) -> Spec<'a> {
        Spec {
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
            stop: false,
        }
    }

    #[test]
    fn passes_body_args_and_env_and_collects_output() {
        let argv = sh(
            "cat; echo \" $1 $2 $SQS_MESSAGE_ID ${AWS_SECRET_ACCESS_KEY:-none}\"; echo oops >&2; exit 3",
        );
        let f = run(
            &spec(&argv, "{\"x\":1}", Duration::from_secs(10)),
            &mut count(10_000),
        );
        assert_eq!(f.ending, Ending::Exited(3));
        assert_eq!(
            String::from_utf8(f.stdout).unwrap(),
            "{\"x\":1} --aipid a1 m-1 none\n"
        );
        assert_eq!(f.stderr_tail, "oops");
    }

    #[test]
    fn a_background_job_holding_the_pipes_does_not_hang_the_run() {
        let argv = sh("(sleep 30 &); echo '{}'");
        let started = Instant::now();
        let f = run(
            &spec(&argv, "", Duration::from_secs(60)),
            &mut count(10_000),
        );
        assert_eq!(f.ending, Ending::Exited(0));
        assert_eq!(String::from_utf8(f.stdout).unwrap(), "{}\n");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn large_bodies_do_not_deadlock() {
        let body = "y".repeat(3 << 20);
        let argv = sh("wc -c");
        let f = run(
            &spec(&argv, &body, Duration::from_secs(20)),
            &mut count(10_000),
        );
        assert_eq!(f.ending, Ending::Exited(0));
        assert_eq!(
            String::from_utf8(f.stdout).unwrap().trim(),
            (3 << 20).to_string()
        );
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
    fn timeout_kills_the_whole_group_and_heartbeats_run() {
        let argv = sh("sleep 30 & sleep 30; echo never");
        let started = Instant::now();
        let mut sup = count(100);
        let f = run(&spec(&argv, "", Duration::from_millis(700)), &mut sup);
        assert_eq!(f.ending, Ending::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(sup.beats >= 3, "beats {}", sup.beats);
        assert!(f.stdout.is_empty());
    }

    #[test]
    fn term_ignoring_handler_is_killed_after_grace() {
        let argv = sh("trap '' TERM; sleep 30");
        let started = Instant::now();
        let mut sup = count(10_000);
        sup.stop = true;
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
        assert_eq!(
            run(&spec(&argv, "", Duration::from_secs(5)), &mut count(10_000)).ending,
            Ending::Signaled(9)
        );
    }
}
