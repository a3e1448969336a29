//! Runs one handler subprocess and supervises it with a single wait: one
//! `poll` over its stdin, stdout, stderr and its exit, whose timeout is the
//! earlier of the next heartbeat and the next deadline (handler_timeout, the
//! shutdown's kill time, the kill grace). No reader threads, no sleep loop.
//!
//! Its exit is seen through a pidfd (Linux 5.3 and later); where the kernel
//! has none, through a SIGCHLD self-pipe (`signal-hook`) and `try_wait`.
//!
//! The handler gets its own process group, so a timeout or shutdown stops
//! everything it started (SIGTERM to the group, SIGKILL after `kill_grace`);
//! whatever it left running when it exited (a background job holding its
//! pipes) is killed too. It is never run through a shell.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};

use super::outcome::Ending;

/// Keep at most this much of a handler's stdout (its JSON result); the rest
/// is read and dropped so the handler never blocks on a full pipe.
pub const MAX_STDOUT: usize = crate::message::fit::MAX_HANDLER_OUTPUT;
/// Keep this much of the end of its stderr, for the failure message.
const STDERR_TAIL: usize = 2048;
/// A stderr line longer than this is logged in pieces.
const MAX_LINE: usize = 8192;
/// After the handler exited and its group was killed, how long its pipes may
/// stay open (held by a process that left the group) before we stop reading.
const LINGER: Duration = Duration::from_secs(2);
/// Bytes moved per read or write call.
const CHUNK: usize = 64 << 10;

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

/// What the poller wants from a running handler.
pub trait Supervisor {
    /// Called every [`Supervisor::every`]; extends the message's visibility.
    fn heartbeat(&mut self);
    fn every(&self) -> Duration;
    /// When a running handler must be stopped (shutdown), once that is known.
    fn stop_at(&self) -> Option<Instant>;
    /// A descriptor that turns readable when `stop_at` may have changed.
    fn alarm(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Called when the alarm fired, to read it empty.
    fn clear_alarm(&mut self) {}
}

/// How the handler's exit is noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitWatch {
    /// A pidfd when the kernel has one, else the SIGCHLD pipe.
    Best,
    /// The SIGCHLD pipe (the fallback, forced in tests).
    Sigchld,
}

/// Runs the handler to its end.
pub fn run(spec: &Spec, supervisor: &mut dyn Supervisor) -> Finished {
    run_watching(spec, supervisor, ExitWatch::Best)
}

/// [`run`], choosing how the exit is watched.
pub fn run_watching(spec: &Spec, supervisor: &mut dyn Supervisor, watch: ExitWatch) -> Finished {
    let started = Instant::now();
    let failed = |e: String| Finished {
        ending: Ending::SpawnFailed(e),
        stdout: Vec::new(),
        stdout_truncated: false,
        stderr_tail: String::new(),
        elapsed: started.elapsed(),
    };
    // The SIGCHLD pipe is registered before the spawn, so no exit goes unseen.
    let mut sigchld = match watch {
        ExitWatch::Sigchld => match SigchldPipe::register() {
            Ok(p) => Some(p),
            Err(e) => return failed(format!("cannot watch for the handler's exit: {e}")),
        },
        ExitWatch::Best => None,
    };
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
        Err(e) => return failed(format!("{}: {e}", spec.argv[0])),
    };
    let group = Pid::from_child(&child);
    let pidfd = match sigchld {
        Some(_) => None,
        None => match rustix::process::pidfd_open(group, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::debug!("no pidfd ({e}); watching SIGCHLD instead");
                match SigchldPipe::register() {
                    Ok(p) => {
                        sigchld = Some(p);
                        None
                    }
                    Err(e) => {
                        log::error!("{}: cannot watch the handler: {e}", spec.context);
                        let _ = rustix::process::kill_process_group(group, Signal::KILL);
                        let _ = child.wait();
                        return failed(format!("cannot watch for the handler's exit: {e}"));
                    }
                }
            }
        },
    };
    let mut run = Running {
        spec,
        started,
        group,
        stdin: child.stdin.take(),
        written: 0,
        stdout: child.stdout.take(),
        kept: Vec::new(),
        truncated: false,
        stderr: child.stderr.take(),
        line: Vec::new(),
        tail: String::new(),
    };
    for fd in [
        run.stdin.as_ref().map(|f| f.as_fd()),
        run.stdout.as_ref().map(|f| f.as_fd()),
        run.stderr.as_ref().map(|f| f.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = rustix::io::ioctl_fionbio(fd, true) {
            log::error!("{}: cannot set up the handler's pipes: {e}", spec.context);
            let _ = rustix::process::kill_process_group(group, Signal::KILL);
            let _ = child.wait();
            return failed(format!("cannot set up the handler's pipes: {e}"));
        }
    }
    if spec.body.is_empty() {
        run.stdin = None;
    }
    let watch = match (&pidfd, &sigchld) {
        (Some(fd), _) => Watch::Pidfd(fd.as_fd()),
        (None, Some(pipe)) => Watch::Sigchld(pipe),
        (None, None) => unreachable!("one of the two was set up above"),
    };
    let ending = run.supervise(&mut child, supervisor, watch);
    Finished {
        ending,
        stdout: run.kept,
        stdout_truncated: run.truncated,
        stderr_tail: run.tail.trim_end().to_string(),
        elapsed: started.elapsed(),
    }
}

/// Where the handler's exit shows.
enum Watch<'a> {
    Pidfd(BorrowedFd<'a>),
    Sigchld(&'a SigchldPipe),
}

/// A self-pipe written on every SIGCHLD of this process (any child's).
struct SigchldPipe {
    read: UnixStream,
    id: signal_hook::SigId,
}

impl SigchldPipe {
    fn register() -> std::io::Result<SigchldPipe> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let id = signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, write)?;
        Ok(SigchldPipe { read, id })
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.read).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

impl Drop for SigchldPipe {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}

/// Where the supervision stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Running; heartbeats due.
    Running,
    /// We sent SIGTERM to the group for this reason; SIGKILL at `kill_at`.
    Stopping { reason: Stop, kill_at: Instant },
    /// SIGKILL sent; waiting for the exit.
    Killed { reason: Stop },
    /// The leader exited; reading what is left in the pipes until `until`.
    Exited { until: Instant },
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    TimedOut,
    Interrupted,
}

/// One handler's pipes and what came out of them.
struct Running<'a> {
    spec: &'a Spec<'a>,
    started: Instant,
    group: Pid,
    stdin: Option<ChildStdin>,
    written: usize,
    stdout: Option<ChildStdout>,
    kept: Vec<u8>,
    truncated: bool,
    stderr: Option<ChildStderr>,
    line: Vec<u8>,
    tail: String,
}

impl Running<'_> {
    fn supervise(
        &mut self,
        child: &mut Child,
        supervisor: &mut dyn Supervisor,
        watch: Watch,
    ) -> Ending {
        let spec = self.spec;
        let deadline = self.started + spec.timeout;
        let mut next_beat = self.started + supervisor.every();
        let mut phase = Phase::Running;
        let mut status: Option<ExitStatus> = None;
        let mut stopped: Option<Stop> = None;
        // The SIGCHLD may have come before we looked.
        if let Watch::Sigchld(_) = watch {
            status = self.reap(child, &mut phase, &mut stopped);
        }
        loop {
            if status.is_some() && self.stdout.is_none() && self.stderr.is_none() {
                break;
            }
            let now = Instant::now();
            // What is due now, and when the next thing is due.
            let wake_at = match phase {
                Phase::Running => {
                    if now >= next_beat {
                        supervisor.heartbeat();
                        next_beat = Instant::now() + supervisor.every();
                    }
                    let stop_at = supervisor.stop_at();
                    if now >= deadline {
                        log::warn!(
                            "{}: handler ran past handler_timeout ({} s); stopping it",
                            spec.context,
                            spec.timeout.as_secs()
                        );
                        phase = self.terminate(Stop::TimedOut);
                        continue;
                    }
                    if stop_at.is_some_and(|t| now >= t) {
                        log::warn!("{}: stopping the handler for shutdown", spec.context);
                        phase = self.terminate(Stop::Interrupted);
                        continue;
                    }
                    Some(
                        stop_at.map_or(next_beat.min(deadline), |t| next_beat.min(deadline).min(t)),
                    )
                }
                Phase::Stopping { reason, kill_at } => {
                    if now >= kill_at {
                        self.signal(Signal::KILL);
                        phase = Phase::Killed { reason };
                        continue;
                    }
                    Some(kill_at)
                }
                Phase::Killed { .. } => None,
                Phase::Exited { until } => {
                    if now >= until {
                        log::warn!(
                            "{}: something outside the handler's process group holds its output open; stopped reading",
                            spec.context
                        );
                        break;
                    }
                    Some(until)
                }
            };
            let timeout = wake_at.map(|t| {
                let wait = t.saturating_duration_since(now);
                Timespec::try_from(wait).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                })
            });
            let (stdin_ready, stdout_ready, stderr_ready, exited, alarm) = {
                let mut fds: Vec<PollFd> = Vec::with_capacity(5);
                let i_in = slot(
                    &mut fds,
                    self.stdin.as_ref().map(|f| f.as_fd()),
                    PollFlags::OUT,
                );
                let i_out = slot(
                    &mut fds,
                    self.stdout.as_ref().map(|f| f.as_fd()),
                    PollFlags::IN,
                );
                let i_err = slot(
                    &mut fds,
                    self.stderr.as_ref().map(|f| f.as_fd()),
                    PollFlags::IN,
                );
                let exit_fd = match (&watch, status) {
                    (_, Some(_)) => None,
                    (Watch::Pidfd(fd), None) => Some(*fd),
                    (Watch::Sigchld(pipe), None) => Some(pipe.read.as_fd()),
                };
                let i_exit = slot(&mut fds, exit_fd, PollFlags::IN);
                let alarm_fd = match phase {
                    Phase::Running => supervisor.alarm(),
                    _ => None,
                };
                let i_alarm = slot(&mut fds, alarm_fd, PollFlags::IN);
                match rustix::event::poll(&mut fds, timeout.as_ref()) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        log::error!("{}: cannot wait for the handler: {e}", spec.context);
                        if let Phase::Running = phase {
                            phase = self.terminate(Stop::Interrupted);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                }
                let ready = |i: Option<usize>| i.is_some_and(|i| !fds[i].revents().is_empty());
                (
                    ready(i_in),
                    ready(i_out),
                    ready(i_err),
                    ready(i_exit),
                    ready(i_alarm),
                )
            };
            if stdin_ready {
                self.feed();
            }
            if stdout_ready {
                self.read_stdout();
            }
            if stderr_ready {
                self.read_stderr();
            }
            if alarm {
                supervisor.clear_alarm();
            }
            if exited {
                if let Watch::Sigchld(pipe) = &watch {
                    pipe.drain();
                }
                status = self.reap(child, &mut phase, &mut stopped);
            }
        }
        self.flush_line();
        match (stopped, status) {
            (Some(Stop::TimedOut), _) => Ending::TimedOut,
            (Some(Stop::Interrupted), _) => Ending::Interrupted,
            (None, Some(status)) => ending_of(status),
            // Not reached: the loop ends only after the exit was seen.
            (None, None) => Ending::Interrupted,
        }
    }

    /// Collects the exit status if the leader has exited; then kills what it
    /// left in its group and gives the pipes a moment to drain.
    fn reap(
        &mut self,
        child: &mut Child,
        phase: &mut Phase,
        stopped: &mut Option<Stop>,
    ) -> Option<ExitStatus> {
        match child.try_wait() {
            Ok(Some(status)) => {
                if let Phase::Stopping { reason, .. } | Phase::Killed { reason } = *phase {
                    *stopped = Some(reason);
                }
                // The leader was reaped a moment ago: its id names no other
                // group unless the group emptied and the id was taken since.
                self.signal(Signal::KILL);
                *phase = Phase::Exited {
                    until: Instant::now() + LINGER,
                };
                self.stdin = None;
                Some(status)
            }
            Ok(None) => None,
            Err(e) => {
                log::error!("{}: cannot wait for the handler: {e}", self.spec.context);
                self.signal(Signal::KILL);
                let status = child.wait().ok();
                *stopped = Some(Stop::Interrupted);
                *phase = Phase::Exited {
                    until: Instant::now() + LINGER,
                };
                status.or(Some(ExitStatus::from_raw(9)))
            }
        }
    }

    /// SIGTERM to the group; SIGKILL follows after the grace period.
    fn terminate(&mut self, reason: Stop) -> Phase {
        self.signal(Signal::TERM);
        Phase::Stopping {
            reason,
            kill_at: Instant::now() + self.spec.kill_grace,
        }
    }

    fn signal(&self, signal: Signal) {
        match rustix::process::kill_process_group(self.group, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => log::warn!(
                "{}: cannot signal the handler's process group: {e}",
                self.spec.context
            ),
        }
    }

    /// Writes what the pipe takes of the body; closes stdin when done.
    fn feed(&mut self) {
        let body = self.spec.body.as_bytes();
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        while self.written < body.len() {
            let end = (self.written + CHUNK).min(body.len());
            match stdin.write(&body[self.written..end]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A handler that exits without reading its input is not our error.
                Err(_) => break,
            }
        }
        self.stdin = None;
    }

    fn read_stdout(&mut self) {
        let Some(stdout) = self.stdout.as_mut() else {
            return;
        };
        let mut buf = [0u8; CHUNK];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_STDOUT - self.kept.len();
                    if n > room {
                        self.truncated = true;
                    }
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.stdout = None;
    }

    fn read_stderr(&mut self) {
        let Some(mut stderr) = self.stderr.take() else {
            return;
        };
        let mut buf = [0u8; CHUNK];
        let eof = loop {
            match stderr.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b == b'\n' || self.line.len() >= MAX_LINE {
                            self.flush_line();
                            if b == b'\n' {
                                continue;
                            }
                        }
                        self.line.push(b);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !eof {
            self.stderr = Some(stderr);
        }
    }

    /// Logs one stderr line (escaped: it is foreign text) and keeps it in the tail.
    fn flush_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = crate::text::escape(&String::from_utf8_lossy(&self.line)).into_owned();
        self.line.clear();
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
}

/// Adds a descriptor to a poll set; its index there.
fn slot<'f>(
    fds: &mut Vec<PollFd<'f>>,
    fd: Option<BorrowedFd<'f>>,
    flags: PollFlags,
) -> Option<usize> {
    fd.map(|fd| {
        fds.push(PollFd::from_borrowed_fd(fd, flags));
        fds.len() - 1
    })
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(sig)) => Ending::Signaled(sig),
        (None, None) => Ending::Signaled(0),
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

    impl Supervisor for Count {
        fn heartbeat(&mut self) {
            self.beats += 1;
        }
        fn every(&self) -> Duration {
            self.every
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
        shutdown: &'a crate::poller::Shutdown,
        alarm: crate::poller::shutdown::Alarm,
    }

    impl Supervisor for Signalled<'_> {
        fn heartbeat(&mut self) {}
        fn every(&self) -> Duration {
            Duration::from_secs(60)
        }
        fn stop_at(&self) -> Option<Instant> {
            self.shutdown.kill_at()
        }
        fn alarm(&self) -> Option<BorrowedFd<'_>> {
            Some(self.alarm.fd())
        }
        fn clear_alarm(&mut self) {
            self.alarm.clear();
        }
    }

    #[test]
    fn a_signal_wakes_the_wait_at_once() {
        let shutdown = crate::poller::Shutdown::new(Duration::from_secs(60));
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
