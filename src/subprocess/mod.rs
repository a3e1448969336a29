//! The one subprocess runner: runs a program (never through a shell) in a
//! process group of its own, writes its input, reads its stdout and stderr
//! bounded, and waits with a single `poll` over the pipes, its exit
//! (`exit_watch`: a pidfd, or a SIGCHLD self-pipe) and the caller's wake
//! descriptor, whose timeout is the earliest of the next tick, the deadline,
//! the caller's stop time and the kill grace. No threads, no sleep loop:
//! when [`run`] returns, the program and its group are gone (only a daemon
//! that left the group may outlive it).
//!
//! A deadline or a stop sends SIGTERM to the whole group, SIGKILL after
//! `kill_grace`. When the program exits, whatever it left in its group is
//! killed; a daemon that left the group and still holds the pipes is given
//! `linger`, then its pipes are dropped: the answer is the program's.
//!
//! It knows nothing of what the program is for: the poller's heartbeat,
//! shutdown and logging come in through [`Hooks`]. A leaf: it imports
//! nothing from this crate.

mod exit_watch;
pub mod parent_death;
mod pipes;

use std::os::fd::BorrowedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal};

pub use self::exit_watch::ExitWatch;
use self::exit_watch::{SigchldPipe, Watch};
use self::pipes::Pipes;

/// What to run and within which bounds.
#[derive(Clone, Debug)]
pub struct Spec<'a> {
    /// Program and arguments.
    pub argv: &'a [String],
    /// Written to its stdin, which is then closed; empty: stdin is `/dev/null`.
    pub input: &'a [u8],
    pub set_env: &'a [(String, String)],
    pub remove_env: &'a [&'a str],
    /// From the start; then SIGTERM to the group.
    pub timeout: Duration,
    /// From SIGTERM to SIGKILL.
    pub kill_grace: Duration,
    /// Stdout kept; the rest is read and dropped.
    pub stdout_limit: usize,
    /// Bytes of the end of stderr kept in [`Finished::stderr_tail`].
    pub stderr_tail: usize,
    /// How long the pipes are read after the exit, when something outside
    /// the group still holds them.
    pub linger: Duration,
    pub watch: ExitWatch,
}

/// How a program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not one we sent).
    Signaled(i32),
    /// It ran past its timeout and was stopped.
    TimedOut,
    /// It was stopped because the caller's [`Hooks::stop_at`] came.
    Interrupted,
    /// It could not be started (or watched): why.
    SpawnFailed(String),
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub ending: Ending,
    pub stdout: Vec<u8>,
    /// True when stdout went past [`Spec::stdout_limit`] and was cut.
    pub stdout_truncated: bool,
    /// The last [`Spec::stderr_tail`] bytes of stderr.
    pub stderr_tail: Vec<u8>,
    pub elapsed: Duration,
}

/// Something the runner met that its caller may want to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The timeout came; SIGTERM goes to the group.
    TimedOut,
    /// [`Hooks::stop_at`] came; SIGTERM goes to the group.
    Stopping,
    /// After the exit, something outside the group kept the pipes open past
    /// `linger`; they were given up.
    PipesHeldOpen,
    /// A system call failed (waiting, signalling); the text says which.
    Trouble(String),
}

/// What a caller adds to a run; every method has a do-nothing default.
pub trait Hooks {
    /// How often [`Hooks::tick`] runs while the program runs.
    fn tick_every(&self) -> Option<Duration> {
        None
    }
    fn tick(&mut self) {}
    /// When the program must be stopped (besides its timeout), once known.
    fn stop_at(&self) -> Option<Instant> {
        None
    }
    /// A descriptor that turns readable when `stop_at` may have changed.
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Called when the wake descriptor fired, to read it empty.
    fn woken(&mut self) {}
    /// One line of stderr (without its newline; long lines come in pieces).
    fn stderr_line(&mut self, _line: &[u8]) {}
    fn notice(&mut self, _notice: Notice) {}
}

/// Hooks that add nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Runs the program to its end.
pub fn run(spec: &Spec, hooks: &mut dyn Hooks) -> Finished {
    let started = Instant::now();
    let failed = |why: String| Finished {
        ending: Ending::SpawnFailed(why),
        stdout: Vec::new(),
        stdout_truncated: false,
        stderr_tail: Vec::new(),
        elapsed: started.elapsed(),
    };
    let Some((program, args)) = spec.argv.split_first() else {
        return failed("no program to run".into());
    };
    // The SIGCHLD pipe is registered before the spawn, so no exit goes unseen.
    let sigchld = match spec.watch {
        ExitWatch::Sigchld => match SigchldPipe::register() {
            Ok(p) => Some(p),
            Err(e) => return failed(format!("cannot watch for its exit: {e}")),
        },
        ExitWatch::Best => None,
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if spec.input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in spec.remove_env {
        command.env_remove(name);
    }
    for (k, v) in spec.set_env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed(e.to_string()),
    };
    let group = Pid::from_child(&child);
    let abandon = |child: &mut Child, why: String| {
        let _ = rustix::process::kill_process_group(group, Signal::KILL);
        let _ = child.wait();
        failed(why)
    };
    let watch = match Watch::of(group, sigchld) {
        Ok(watch) => watch,
        Err(e) => return abandon(&mut child, format!("cannot watch for its exit: {e}")),
    };
    let pipes = match Pipes::new(
        spec.input,
        child.stdin.take(),
        child.stdout.take(),
        child.stderr.take(),
        spec.stdout_limit,
        spec.stderr_tail,
    ) {
        Ok(pipes) => pipes,
        Err(e) => return abandon(&mut child, format!("cannot set up its pipes: {e}")),
    };
    let mut running = Running {
        spec,
        started,
        group,
        child,
        watch,
        pipes,
        hooks,
    };
    let ending = running.supervise();
    Finished {
        ending,
        stdout: std::mem::take(&mut running.pipes.kept),
        stdout_truncated: running.pipes.truncated,
        stderr_tail: std::mem::take(&mut running.pipes.tail),
        elapsed: started.elapsed(),
    }
}

/// Where the supervision stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Running; ticks due.
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

/// One program being run.
struct Running<'a, 'h> {
    spec: &'a Spec<'a>,
    started: Instant,
    group: Pid,
    child: Child,
    watch: Watch,
    pipes: Pipes<'a>,
    hooks: &'h mut dyn Hooks,
}

impl Running<'_, '_> {
    fn supervise(&mut self) -> Ending {
        let deadline = self.started + self.spec.timeout;
        let tick_every = self.hooks.tick_every();
        let mut next_tick = tick_every.map(|every| self.started + every);
        let mut phase = Phase::Running;
        let mut status: Option<ExitStatus> = None;
        let mut stopped: Option<Stop> = None;
        if self.watch.needs_first_look() {
            status = self.reap(&mut phase, &mut stopped);
        }
        loop {
            if status.is_some() && self.pipes.outputs_closed() {
                break;
            }
            let now = Instant::now();
            // What is due now, and when the next thing is due.
            let wake_at = match phase {
                Phase::Running => {
                    if let (Some(at), Some(every)) = (next_tick, tick_every)
                        && now >= at
                    {
                        self.hooks.tick();
                        next_tick = Some(Instant::now() + every);
                    }
                    let stop_at = self.hooks.stop_at();
                    if now >= deadline {
                        self.hooks.notice(Notice::TimedOut);
                        phase = self.terminate(Stop::TimedOut);
                        continue;
                    }
                    if stop_at.is_some_and(|t| now >= t) {
                        self.hooks.notice(Notice::Stopping);
                        phase = self.terminate(Stop::Interrupted);
                        continue;
                    }
                    Some(
                        [Some(deadline), next_tick, stop_at]
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap_or(deadline),
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
                        self.hooks.notice(Notice::PipesHeldOpen);
                        break;
                    }
                    Some(until)
                }
            };
            let timeout = wake_at.map(|t| {
                Timespec::try_from(t.saturating_duration_since(now)).unwrap_or(Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                })
            });
            let ready = match self.wait(&phase, status.is_some(), timeout.as_ref()) {
                Ok(ready) => ready,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    self.hooks
                        .notice(Notice::Trouble(format!("cannot wait for the process: {e}")));
                    if let Phase::Running = phase {
                        phase = self.terminate(Stop::Interrupted);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if ready.stdin {
                self.pipes.feed();
            }
            if ready.stdout {
                self.pipes.read_stdout();
            }
            if ready.stderr {
                let hooks = &mut *self.hooks;
                self.pipes.read_stderr(&mut |line| hooks.stderr_line(line));
            }
            if ready.wake {
                self.hooks.woken();
            }
            if ready.exit {
                self.watch.clear();
                status = self.reap(&mut phase, &mut stopped);
            }
        }
        let hooks = &mut *self.hooks;
        self.pipes.flush_line(&mut |line| hooks.stderr_line(line));
        match (stopped, status) {
            (Some(Stop::TimedOut), _) => Ending::TimedOut,
            (Some(Stop::Interrupted), _) => Ending::Interrupted,
            (None, Some(status)) => ending_of(status),
            // Not reached: the loop ends only after the exit was seen.
            (None, None) => Ending::Interrupted,
        }
    }

    /// One `poll` over the open pipes, the exit watch (until the exit was
    /// seen) and, while running, the caller's wake descriptor.
    fn wait(
        &self,
        phase: &Phase,
        exited: bool,
        timeout: Option<&Timespec>,
    ) -> rustix::io::Result<Ready> {
        let mut fds: Vec<PollFd> = Vec::with_capacity(5);
        let stdin = slot(&mut fds, self.pipes.stdin_fd(), PollFlags::OUT);
        let stdout = slot(&mut fds, self.pipes.stdout_fd(), PollFlags::IN);
        let stderr = slot(&mut fds, self.pipes.stderr_fd(), PollFlags::IN);
        let exit = slot(&mut fds, (!exited).then(|| self.watch.fd()), PollFlags::IN);
        let wake_fd = match phase {
            Phase::Running => self.hooks.wake_fd(),
            _ => None,
        };
        let wake = slot(&mut fds, wake_fd, PollFlags::IN);
        rustix::event::poll(&mut fds, timeout)?;
        let ready = |i: Option<usize>| i.is_some_and(|i| !fds[i].revents().is_empty());
        Ok(Ready {
            stdin: ready(stdin),
            stdout: ready(stdout),
            stderr: ready(stderr),
            exit: ready(exit),
            wake: ready(wake),
        })
    }

    /// Collects the exit status if the leader has exited; then kills what it
    /// left in its group and gives the pipes `linger` to drain.
    fn reap(&mut self, phase: &mut Phase, stopped: &mut Option<Stop>) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                if let Phase::Stopping { reason, .. } | Phase::Killed { reason } = *phase {
                    *stopped = Some(reason);
                }
                // The leader was reaped a moment ago: its id names no other
                // group unless the group emptied and the id was taken since.
                self.signal(Signal::KILL);
                *phase = Phase::Exited {
                    until: Instant::now() + self.spec.linger,
                };
                self.pipes.stdin = None;
                Some(status)
            }
            Ok(None) => None,
            Err(e) => {
                self.hooks
                    .notice(Notice::Trouble(format!("cannot wait for the process: {e}")));
                self.signal(Signal::KILL);
                let status = self.child.wait().ok();
                *stopped = Some(Stop::Interrupted);
                *phase = Phase::Exited {
                    until: Instant::now() + self.spec.linger,
                };
                status.or(Some(ExitStatus::from_raw(Signal::KILL.as_raw())))
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

    fn signal(&mut self, signal: Signal) {
        match rustix::process::kill_process_group(self.group, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => self.hooks.notice(Notice::Trouble(format!(
                "cannot signal the process group: {e}"
            ))),
        }
    }
}

/// Which descriptors a `poll` found ready.
struct Ready {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    exit: bool,
    wake: bool,
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

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn spec<'a>(argv: &'a [String], input: &'a [u8]) -> Spec<'a> {
        Spec {
            argv,
            input,
            set_env: &[],
            remove_env: &[],
            timeout: Duration::from_secs(20),
            kill_grace: Duration::from_millis(300),
            stdout_limit: 8,
            stderr_tail: 5,
            linger: Duration::from_millis(200),
            watch: ExitWatch::Best,
        }
    }

    /// Counts ticks and collects lines and notices.
    #[derive(Default)]
    struct Record {
        ticks: u32,
        lines: Vec<String>,
        notices: Vec<Notice>,
    }

    impl Hooks for Record {
        fn tick_every(&self) -> Option<Duration> {
            Some(Duration::from_millis(50))
        }
        fn tick(&mut self) {
            self.ticks += 1;
        }
        fn stderr_line(&mut self, line: &[u8]) {
            self.lines.push(String::from_utf8_lossy(line).into_owned());
        }
        fn notice(&mut self, notice: Notice) {
            self.notices.push(notice);
        }
    }

    #[test]
    fn outputs_are_bounded_by_the_callers_caps() {
        let argv = sh("cat; printf 'one\\ntwo\\nthree' >&2");
        let f = run(&spec(&argv, b"0123456789"), &mut NoHooks);
        assert_eq!(f.ending, Ending::Exited(0));
        assert_eq!(f.stdout, b"01234567");
        assert!(f.stdout_truncated);
        assert_eq!(f.stderr_tail, b"three");
        let mut record = Record::default();
        run(&spec(&argv, b"x"), &mut record);
        assert_eq!(record.lines, ["one", "two", "three"]);
    }

    #[test]
    fn ticks_run_and_the_timeout_stops_the_group() {
        let argv = sh("sleep 30 & sleep 30");
        let mut record = Record::default();
        let started = Instant::now();
        let f = run(
            &Spec {
                timeout: Duration::from_millis(400),
                ..spec(&argv, b"")
            },
            &mut record,
        );
        assert_eq!(f.ending, Ending::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(record.ticks >= 4, "{}", record.ticks);
        assert_eq!(record.notices, [Notice::TimedOut]);
    }

    #[test]
    fn pipes_held_past_the_exit_are_given_up_after_linger() {
        // The pause lets the daemon leave the group before the group is killed.
        let argv = sh("setsid sleep 30 & sleep 0.3; echo done");
        let mut record = Record::default();
        let started = Instant::now();
        let f = run(&spec(&argv, b""), &mut record);
        assert_eq!(
            (f.ending, f.stdout),
            (Ending::Exited(0), b"done\n".to_vec())
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(record.notices, [Notice::PipesHeldOpen]);
    }

    #[test]
    fn nothing_to_run_is_a_spawn_failure() {
        let f = run(&spec(&[], b""), &mut NoHooks);
        assert!(matches!(f.ending, Ending::SpawnFailed(_)), "{:?}", f.ending);
        let argv = vec!["/nonexistent/program".to_string()];
        let f = run(&spec(&argv, b""), &mut NoHooks);
        assert!(matches!(f.ending, Ending::SpawnFailed(_)), "{:?}", f.ending);
    }
}
