//! Exit codes of all three binaries, in one place.
//!
//! The numbers follow BSD `sysexits.h`, so cron mail and shell scripts can
//! tell a usage mistake from a service outage. `README.md` lists them; keep the
//! two in step.

use std::process::ExitCode;

/// Why a process ended. `as_u8` gives the number the process exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: the job was done.
    Ok,
    /// 1: `sqs_archive doctor` found at least one check failing.
    Failure,
    /// 64: the command line was wrong.
    Usage,
    /// 65: the input data (a message, a file name, an aipid) was wrong; retrying will not help.
    DataErr,
    /// 66: an input file does not exist or cannot be read.
    NoInput,
    /// 69: a service (SQS, the endpoint, a queue) is unavailable or does not exist.
    Unavailable,
    /// 70: an internal error (a bug: a panic); please report it.
    Software,
    /// 74: reading or writing a local file failed.
    IoErr,
    /// 75: a temporary failure (throttling, a full disk); try again later.
    TempFail,
    /// 76: the server answered something we could not understand.
    Protocol,
    /// 77: credentials were refused or lack permission.
    NoPerm,
    /// 78: the configuration is missing, malformed or inconsistent.
    Config,
}

impl Exit {
    /// The process exit status.
    pub fn as_u8(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 64,
            Exit::DataErr => 65,
            Exit::NoInput => 66,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::IoErr => 74,
            Exit::TempFail => 75,
            Exit::Protocol => 76,
            Exit::NoPerm => 77,
            Exit::Config => 78,
        }
    }

    /// Maps a child's exit status back to the class it names (for handlers).
    pub fn from_code(code: i32) -> Option<Exit> {
        [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::DataErr,
            Exit::NoInput,
            Exit::Unavailable,
            Exit::Software,
            Exit::IoErr,
            Exit::TempFail,
            Exit::Protocol,
            Exit::NoPerm,
            Exit::Config,
        ]
        .into_iter()
        .find(|e| i32::from(e.as_u8()) == code)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.as_u8())
    }
}
