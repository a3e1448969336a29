//! Was standard output there at all? Detecting `>&-`.
//!
//! A program started with `>&-` has no file descriptor 1. Rust's runtime
//! fills the hole before `main` (so no file the program opens later can
//! take number 1 and receive what was meant for stdout) by opening
//! `/dev/null` read-write on it; every write then succeeds into nothing. A
//! command that deletes what it printed must know, so [`guard`] looks at
//! what descriptor 1 is: `/dev/null` opened read-write is the runtime's
//! filler (a shell's `>/dev/null` opens it write-only). Linux `/proc` is
//! read; where it is missing, stdout counts as present. Written for the
//! rare `1<>/dev/null` too: that also reads as closed.

use std::sync::OnceLock;

static STDOUT_CLOSED: OnceLock<bool> = OnceLock::new();

/// Records whether stdout was closed at start. Call first thing in `main`;
/// later calls do nothing.
pub fn guard() {
    STDOUT_CLOSED.get_or_init(|| filled_by_runtime(1));
}

/// True when the process started without a standard output (`>&-`).
pub fn stdout_closed() -> bool {
    *STDOUT_CLOSED.get_or_init(|| filled_by_runtime(1))
}

/// The error a write to a closed standard output gets.
pub fn closed_stdout_error() -> std::io::Error {
    std::io::Error::other("standard output is closed (>&-)")
}

/// Writes one line to stderr and ignores a failure: with stderr full or
/// gone there is nowhere left to report it, and `eprintln!` would panic
/// (and the panic hook, printing again, abort with SIGABRT) instead of
/// ending with the documented exit code.
pub fn stderr_line(args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a
/// message. A stdout closed before the start (`>&-`) is an error: the
/// write would otherwise vanish without one (see [`crate::stdio`]).
pub fn write_out(
    out: &mut impl std::io::Write,
    args: std::fmt::Arguments,
) -> crate::error::Result<()> {
    if stdout_closed() {
        return Err(crate::error::Error::io(
            "write",
            "stdout",
            closed_stdout_error(),
        ));
    }
    match out.write_fmt(args) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::BrokenPipe)
        }
        Err(e) => Err(crate::error::Error::io("write", "stdout", e)),
        Ok(()) => Ok(()),
    }
}

/// [`write_out`], then flushed: when it returns `Ok` the line has left the process.
pub fn write_line(
    out: &mut impl std::io::Write,
    args: std::fmt::Arguments,
) -> crate::error::Result<()> {
    write_out(out, args)?;
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::BrokenPipe)
        }
        Err(e) => Err(crate::error::Error::io("write", "stdout", e)),
        Ok(()) => Ok(()),
    }
}

/// One line (help, a version) to stdout: a full or closed stdout is an
/// error with its exit code, a closed pipe ends quietly, never a panic.
pub fn print_line(args: std::fmt::Arguments) -> crate::error::Result<()> {
    write_line(&mut std::io::stdout().lock(), args)
}

/// True when descriptor `fd` is `/dev/null` opened read-write.
fn filled_by_runtime(fd: u32) -> bool {
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{fd}")) else {
        return false;
    };
    if target != std::path::Path::new("/dev/null") {
        return false;
    }
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .ok()
        .and_then(|info| access_mode(&info))
        .is_some_and(|mode| mode == O_RDWR)
}

/// `O_ACCMODE` and `O_RDWR` have these values on every Linux architecture.
const O_ACCMODE: u32 = 0o3;
const O_RDWR: u32 = 0o2;

/// The access mode from `/proc/self/fdinfo/N` (`flags:` is octal).
fn access_mode(fdinfo: &str) -> Option<u32> {
    let flags = fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))?
        .trim();
    u32::from_str_radix(flags, 8).ok().map(|f| f & O_ACCMODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_access_mode_from_fdinfo() {
        assert_eq!(
            access_mode("pos:\t0\nflags:\t0100002\nmnt_id:\t25\n"),
            Some(O_RDWR)
        );
        assert_eq!(access_mode("pos:\t0\nflags:\t0100001\n"), Some(1));
        assert_eq!(access_mode("pos:\t0\n"), None);
    }
}
