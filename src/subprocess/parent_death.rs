//! A handler never outlives its poller: the poller tells its handlers its
//! pid ([`POLLER_PID_VAR`]), and a handler that calls [`die_with_poller`]
//! asks the kernel for SIGKILL when the thread that started it ends
//! (`PR_SET_PDEATHSIG`). The poller starts each handler from its worker
//! thread, which lives as long as the worker, so the signal comes when the
//! poller ends however it ends (`kill -9`, the OOM killer), not before.
//!
//! `#![forbid(unsafe_code)]` rules out setting it between `fork` and `exec`,
//! so the handler sets it on itself first thing; a poller that died before
//! that is caught by looking for it once the signal is armed. A handler of
//! one's own must do the same (or be run through one that does).

use rustix::process::{Pid, Signal};

/// The environment variable that carries the poller's pid to its handlers.
pub const POLLER_PID_VAR: &str = "SQS_ARCHIVE_POLLER_PID";

/// What [`die_with_poller`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parent {
    /// Armed: this process gets SIGKILL when its parent ends.
    Watched,
    /// Not started by a poller (no pid given): nothing to watch.
    NotAPoller,
    /// The poller given is gone already: stop now.
    Gone,
}

/// Arms SIGKILL on the parent's death and checks that the poller named in
/// `poller_pid` (the value of [`POLLER_PID_VAR`]) is still there.
pub fn die_with_poller(poller_pid: Option<&str>) -> std::io::Result<Parent> {
    let Some(pid) = poller_pid
        .and_then(|text| text.trim().parse::<i32>().ok())
        .and_then(Pid::from_raw)
    else {
        return Ok(Parent::NotAPoller);
    };
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // Armed now: a poller that ends from here on is seen by the kernel. One
    // that ended before has handed us to another parent and is no more
    // (its pid is not reused within the moment this took).
    let reparented = rustix::process::getppid().is_none_or(|parent| parent.as_raw_pid() == 1);
    if reparented
        || rustix::process::test_kill_process(pid).is_err_and(|e| e == rustix::io::Errno::SRCH)
    {
        return Ok(Parent::Gone);
    }
    Ok(Parent::Watched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_poller_nothing_is_armed_and_a_gone_one_is_seen() {
        assert_eq!(die_with_poller(None).unwrap(), Parent::NotAPoller);
        assert_eq!(die_with_poller(Some("x")).unwrap(), Parent::NotAPoller);
        // A pid no process has (pid_max is at most 2^22).
        assert_eq!(die_with_poller(Some("99999999")).unwrap(), Parent::Gone);
        let me = std::process::id().to_string();
        assert_eq!(die_with_poller(Some(&me)).unwrap(), Parent::Watched);
        rustix::process::set_parent_process_death_signal(None).unwrap();
    }
}
