//! A child's three pipes, non-blocking: its input written as the pipe takes
//! it, its stdout kept up to a limit (the rest read and dropped, so the
//! child never blocks on a full pipe), its stderr cut into lines for the
//! caller and its end kept. Knows nothing of processes or deadlines.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{ChildStderr, ChildStdin, ChildStdout};

/// Bytes moved per read or write call.
const CHUNK: usize = 64 << 10;
/// A stderr line longer than this is handed over in pieces.
pub(super) const MAX_LINE: usize = 8192;

/// The pipes still open and what came out of them.
pub(super) struct Pipes<'a> {
    input: &'a [u8],
    pub(super) stdin: Option<ChildStdin>,
    written: usize,
    pub(super) stdout: Option<ChildStdout>,
    pub(super) kept: Vec<u8>,
    stdout_limit: usize,
    pub(super) truncated: bool,
    pub(super) stderr: Option<ChildStderr>,
    line: Vec<u8>,
    pub(super) tail: Vec<u8>,
    tail_limit: usize,
}

impl<'a> Pipes<'a> {
    /// Sets the pipes non-blocking.
    pub(super) fn new(
        input: &'a [u8],
        stdin: Option<ChildStdin>,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        stdout_limit: usize,
        tail_limit: usize,
    ) -> rustix::io::Result<Pipes<'a>> {
        let pipes = Pipes {
            input,
            stdin,
            written: 0,
            stdout,
            kept: Vec::new(),
            stdout_limit,
            truncated: false,
            stderr,
            line: Vec::new(),
            tail: Vec::new(),
            tail_limit,
        };
        for fd in [pipes.stdin_fd(), pipes.stdout_fd(), pipes.stderr_fd()]
            .into_iter()
            .flatten()
        {
            rustix::io::ioctl_fionbio(fd, true)?;
        }
        Ok(pipes)
    }

    pub(super) fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdin.as_ref().map(|f| f.as_fd())
    }

    pub(super) fn stdout_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdout.as_ref().map(|f| f.as_fd())
    }

    pub(super) fn stderr_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stderr.as_ref().map(|f| f.as_fd())
    }

    /// Both output pipes reached their end (or were given up).
    pub(super) fn outputs_closed(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// Writes what the pipe takes of the input; closes stdin when done.
    pub(super) fn feed(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        while self.written < self.input.len() {
            let end = (self.written + CHUNK).min(self.input.len());
            match stdin.write(&self.input[self.written..end]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A child that exits without reading its input is not our error.
                Err(_) => break,
            }
        }
        self.stdin = None;
    }

    /// Reads stdout until it would block; keeps up to the limit.
    pub(super) fn read_stdout(&mut self) {
        let Some(stdout) = self.stdout.as_mut() else {
            return;
        };
        let mut buf = [0u8; CHUNK];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = self.stdout_limit - self.kept.len();
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

    /// Reads stderr until it would block, handing each line to `on_line`.
    pub(super) fn read_stderr(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        let Some(mut stderr) = self.stderr.take() else {
            return;
        };
        let mut buf = [0u8; CHUNK];
        let eof = loop {
            match stderr.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    self.keep_tail(&buf[..n]);
                    for &b in &buf[..n] {
                        if b == b'\n' || self.line.len() >= MAX_LINE {
                            self.flush_line(on_line);
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

    /// Hands over a line not yet ended by a newline.
    pub(super) fn flush_line(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if !self.line.is_empty() {
            on_line(&self.line);
            self.line.clear();
        }
    }

    fn keep_tail(&mut self, bytes: &[u8]) {
        if self.tail_limit == 0 {
            return;
        }
        let bytes = &bytes[bytes.len().saturating_sub(self.tail_limit)..];
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > self.tail_limit {
            self.tail.drain(..self.tail.len() - self.tail_limit);
        }
    }
}
