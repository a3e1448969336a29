//! How a child's exit is noticed inside a `poll`: its pidfd (Linux 5.3 and
//! later), or else a SIGCHLD self-pipe (`signal-hook`) followed by
//! `try_wait`. Knows nothing of pipes, deadlines or what the child is for.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::process::{Pid, PidfdFlags};

/// How the exit is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitWatch {
    /// A pidfd when the kernel has one, else the SIGCHLD pipe.
    Best,
    /// The SIGCHLD pipe (the fallback, forced in tests).
    Sigchld,
}

/// A self-pipe written on every SIGCHLD of this process (any child's).
pub(super) struct SigchldPipe {
    read: UnixStream,
    id: signal_hook::SigId,
}

impl SigchldPipe {
    /// Registered before the spawn, so no exit goes unseen.
    pub(super) fn register() -> std::io::Result<SigchldPipe> {
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

/// The descriptor that turns readable when the child may have exited.
pub(super) enum Watch {
    Pidfd(OwnedFd),
    Sigchld(SigchldPipe),
}

impl Watch {
    /// A pidfd for `pid` if the kernel has them; else `fallback`, or a
    /// SIGCHLD pipe registered now (the caller then checks once at once:
    /// the exit may have come before the registration).
    pub(super) fn of(pid: Pid, fallback: Option<SigchldPipe>) -> std::io::Result<Watch> {
        if let Some(pipe) = fallback {
            return Ok(Watch::Sigchld(pipe));
        }
        match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => Ok(Watch::Pidfd(fd)),
            Err(e) => {
                log::debug!("no pidfd ({e}); watching SIGCHLD instead");
                SigchldPipe::register().map(Watch::Sigchld)
            }
        }
    }

    /// True when an exit may have been missed before the watch began.
    pub(super) fn needs_first_look(&self) -> bool {
        matches!(self, Watch::Sigchld(_))
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Watch::Pidfd(fd) => fd.as_fd(),
            Watch::Sigchld(pipe) => pipe.read.as_fd(),
        }
    }

    /// Called when [`Watch::fd`] turned readable, before `try_wait`.
    pub(super) fn clear(&self) {
        if let Watch::Sigchld(pipe) = self {
            pipe.drain();
        }
    }
}
