//! One line of `doctor`'s report ([`Check`]), and the options `doctor`
//! and `config` share ([`ReportArgs`]).

use std::fmt;

use serde_json::json;

use crate::cmd::args::{Common, next};
use crate::error::Result;

/// How a check came out; `Ok < Warn < Fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The word `--json` uses.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, short and stable (`profile`, `lock_file`, `handler trust`).
    pub name: String,
    pub status: Status,
    /// What was found, for a person.
    pub text: String,
}

impl Check {
    pub(crate) fn new(status: Status, name: impl Into<String>, text: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            text: text.into(),
        }
    }
    pub(crate) fn ok(name: impl Into<String>, text: impl Into<String>) -> Check {
        Check::new(Status::Ok, name, text)
    }
    pub(crate) fn warn(name: impl Into<String>, text: impl Into<String>) -> Check {
        Check::new(Status::Warn, name, text)
    }
    pub(crate) fn fail(name: impl Into<String>, text: impl Into<String>) -> Check {
        Check::new(Status::Fail, name, text)
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        json!({"name": self.name, "status": self.status.word(), "detail": self.text})
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}", self.status.word(), self.text)
    }
}

/// The options of `doctor` and `config`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportArgs {
    /// One JSON object on stdout instead of lines.
    pub json: bool,
}

/// Parses what follows `doctor` or `config` on the command line.
pub fn parse(parser: &mut lexopt::Parser, common: &mut Common) -> Result<ReportArgs> {
    let mut args = ReportArgs::default();
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--json" => args.json = true,
            _ => return Err(flag.unexpected()),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<(ReportArgs, Common)> {
        let mut parser = lexopt::Parser::from_args(args.iter().copied());
        let mut common = Common::default();
        let args = parse(&mut parser, &mut common)?;
        Ok((args, common))
    }

    #[test]
    fn takes_json_and_the_shared_flags_only() {
        let (args, common) = parsed(&["--json", "--profile", "aws"]).unwrap();
        assert!(args.json);
        assert_eq!(common.source.profile.as_deref(), Some("aws"));
        assert!(!parsed(&[]).unwrap().0.json);
        let e = parsed(&["--settings"]).unwrap_err();
        assert!(e.to_string().contains("--settings"), "{e}");
    }

    #[test]
    fn json_fields_are_strings() {
        let v = Check::warn("lock_file", "x").to_json();
        assert_eq!(
            v,
            json!({"name": "lock_file", "status": "warn", "detail": "x"})
        );
    }
}
