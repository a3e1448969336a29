//! Shutdown state, shared by all threads of a run.
//!
//! The first SIGTERM/SIGINT stops receiving, returns messages not yet started
//! and gives running handlers `grace` to finish; the second (or the end of
//! the grace period) stops the handlers and returns their messages too. A
//! fault of this host (no handler to run) stops the run the same way.
//!
//! Workers wait on their handler with one `poll`; each holds an [`Alarm`],
//! a pipe that every signal writes to, so a signal wakes them at once.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug)]
pub struct Shutdown {
    signals: AtomicUsize,
    first_at: Mutex<Option<Instant>>,
    grace: Duration,
    fatal: Mutex<Option<String>>,
    /// Write ends of the workers' alarms.
    alarms: Mutex<Vec<OwnedFd>>,
    /// Channels of threads that wait on a channel rather than a descriptor.
    wakers: Mutex<Vec<crossbeam_channel::Sender<()>>>,
}

/// The read end of a pipe that turns readable on every signal.
#[derive(Debug)]
pub struct Alarm {
    read: OwnedFd,
}

impl Alarm {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Reads the pipe empty, so the next `poll` waits again.
    pub fn clear(&self) {
        let mut buf = [0u8; 16];
        while matches!(rustix::io::read(&self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Shutdown {
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            signals: AtomicUsize::new(0),
            first_at: Mutex::new(None),
            grace,
            fatal: Mutex::new(None),
            alarms: Mutex::new(Vec::new()),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// A new alarm, rung by every later signal. `None` when no pipe can be
    /// made: the worker then notices a signal at its next heartbeat.
    pub fn alarm(&self) -> Option<Alarm> {
        let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
        match rustix::pipe::pipe_with(flags) {
            Ok((read, write)) => {
                self.alarms
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(write);
                Some(Alarm { read })
            }
            Err(e) => {
                log::warn!(
                    "cannot make a wake-up pipe ({e}); signals reach handlers at the next heartbeat"
                );
                None
            }
        }
    }

    /// A channel that receives a message on every later signal.
    pub fn subscribe(&self) -> crossbeam_channel::Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    fn ring(&self) {
        for waker in self.wakers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = waker.try_send(());
        }
        for write in self.alarms.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            // A full pipe already wakes its reader.
            let _ = rustix::io::write(write, b"!");
        }
    }

    /// Records a signal.
    pub fn signal(&self) {
        let n = self.signals.fetch_add(1, Ordering::SeqCst) + 1;
        self.first_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        if n == 1 {
            log::warn!(
                "signal received: no new requests; running handlers get {} s to finish",
                self.grace.as_secs()
            );
        } else {
            log::warn!("second signal: stopping running handlers");
        }
        self.ring();
    }

    /// Stops the run because something is wrong with this host (e.g. no handler).
    pub fn fail(&self, reason: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            log::error!("stopping: {reason}");
            *fatal = Some(reason);
            drop(fatal);
            self.ring();
        }
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// No new work may start.
    pub fn stopping(&self) -> bool {
        self.signals.load(Ordering::SeqCst) > 0 || self.fatal().is_some()
    }

    /// When running handlers must stop: the end of the grace period after the
    /// first signal, now after the second; `None` before any signal.
    pub fn kill_at(&self) -> Option<Instant> {
        let first = *self.first_at.lock().unwrap_or_else(|p| p.into_inner());
        match self.signals.load(Ordering::SeqCst) {
            0 => None,
            1 => first.map(|t| t + self.grace),
            _ => first.map(|_| Instant::now() - Duration::from_millis(1)),
        }
    }

    /// Running handlers must stop now.
    pub fn must_kill(&self) -> bool {
        self.kill_at().is_some_and(|t| Instant::now() >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_escalates() {
        let s = Shutdown::new(Duration::from_millis(50));
        assert!(!s.stopping() && !s.must_kill());
        assert_eq!(s.kill_at(), None);
        s.signal();
        assert!(s.stopping() && !s.must_kill());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.must_kill(), "grace period over");
        let s = Shutdown::new(Duration::from_secs(60));
        s.signal();
        s.signal();
        assert!(s.must_kill(), "second signal");
    }

    #[test]
    fn a_signal_rings_every_alarm_until_cleared() {
        let s = Shutdown::new(Duration::from_secs(60));
        let (a, b) = (s.alarm().unwrap(), s.alarm().unwrap());
        let readable = |alarm: &Alarm| {
            let mut fds = [rustix::event::PollFd::from_borrowed_fd(
                alarm.fd(),
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            rustix::event::poll(&mut fds, Some(&zero)).unwrap() == 1
        };
        assert!(!readable(&a) && !readable(&b));
        s.signal();
        assert!(readable(&a) && readable(&b));
        a.clear();
        assert!(!readable(&a) && readable(&b));
    }
}
