//! The standard streams, checked before anything else opens a file.
//!
//! A program started with `>&-` has no file descriptor 1. Rust's `stdout`
//! then swallows every write (it treats `EBADF` as success), and worse, the
//! first file the program opens (a lock file, a profile) gets descriptor 1
//! and receives what was meant for stdout. [`guard`], run first thing in
//! every binary, fills each closed standard descriptor with `/dev/null` (the
//! kernel hands out the lowest free number, so opening `/dev/null` until the
//! number is above 2 fills exactly the holes) and remembers which were
//! closed; [`stdout_closed`] then lets a command refuse to act on output it
//! cannot deliver. No `unsafe`, no system call beyond `open`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// Which of stdin, stdout and stderr were closed at start, and the
/// `/dev/null` files that now hold their numbers (kept open for the life of
/// the process).
struct Guarded {
    closed: [bool; 3],
    _placeholders: Vec<File>,
}

static GUARDED: OnceLock<Guarded> = OnceLock::new();

/// Fills closed standard descriptors with `/dev/null` and records which
/// were closed. Call before opening any file; later calls do nothing.
pub fn guard() {
    GUARDED.get_or_init(|| {
        let mut closed = [false; 3];
        let mut placeholders = Vec::new();
        // At most three holes; the fourth open is always above 2.
        for _ in 0..3 {
            let Ok(file) = File::options().read(true).write(true).open("/dev/null") else {
                break;
            };
            match usize::try_from(file.as_raw_fd()) {
                Ok(fd) if fd <= 2 => {
                    closed[fd] = true;
                    placeholders.push(file);
                }
                _ => break,
            }
        }
        Guarded {
            closed,
            _placeholders: placeholders,
        }
    });
}

/// True when the process started without a standard output (`>&-`).
/// False when [`guard`] has not run.
pub fn stdout_closed() -> bool {
    GUARDED.get().is_some_and(|g| g.closed[1])
}

/// The error a write to a closed standard output gets.
pub fn closed_stdout_error() -> std::io::Error {
    std::io::Error::other("standard output is closed (>&-)")
}
