//! Command-line flags that all three binaries share.
//!
//! Each binary runs its own lexopt loop and offers every argument to
//! [`Common::take`] first; whatever it does not claim is the binary's own.
//! Their help is in [`crate::cmd::commands::COMMON`].

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::Arg;

use crate::config::{K, Source};
use crate::error::Error;

/// What the shared flags asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Common {
    pub source: Source,
    pub log_level: Option<log::LevelFilter>,
    pub help: bool,
    pub version: bool,
}

impl Common {
    /// Claims `flag` if it is a shared flag (reading its value from `parser`).
    pub fn take(&mut self, flag: &Flag, parser: &mut lexopt::Parser) -> Result<bool, Error> {
        match flag.name() {
            "--profile" => self.source.profile = Some(string(parser)?),
            "--config" => self.source.config = Some(PathBuf::from(string(parser)?)),
            "--env-file" => self.source.env_file = Some(PathBuf::from(string(parser)?)),
            "--aws-profile" => {
                let name = string(parser)?;
                self.source.flags.insert(K::aws_profile, name);
            }
            "--region" => {
                let region = string(parser)?;
                self.source.flags.insert(K::region, region);
            }
            "--log-level" => {
                let value = string(parser)?;
                self.log_level = Some(value.parse().map_err(|_| {
                    Error::Usage(format!(
                        "invalid --log-level {value:?}: use error, warn, info, debug or trace"
                    ))
                })?);
            }
            "-h" | "--help" => self.help = true,
            "-V" | "--version" => self.version = true,
            _ => return Ok(false),
        }
        if self.source.profile.is_some() && self.source.config.is_some() {
            return Err(Error::Usage(
                "--profile and --config exclude each other".into(),
            ));
        }
        Ok(true)
    }
}

/// One command-line argument, owned, so the parser can be used while it is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flag {
    /// `--name` or `-c`, with its dashes.
    Option(String),
    /// A free-standing value.
    Value(OsString),
}

impl Flag {
    pub fn of(arg: Arg<'_>) -> Flag {
        match arg {
            Arg::Long(l) => Flag::Option(format!("--{l}")),
            Arg::Short(c) => Flag::Option(format!("-{c}")),
            Arg::Value(v) => Flag::Value(v),
        }
    }

    /// The option with its dashes; "" for a value.
    pub fn name(&self) -> &str {
        match self {
            Flag::Option(name) => name,
            Flag::Value(_) => "",
        }
    }

    /// The usage error for an argument nobody claimed.
    pub fn unexpected(&self) -> Error {
        match self {
            Flag::Option(name) => Error::Usage(format!("unknown option {name}")),
            Flag::Value(v) => Error::Usage(format!("unexpected argument {v:?}")),
        }
    }
}

/// The next argument, owned.
pub fn next(parser: &mut lexopt::Parser) -> Result<Option<Flag>, Error> {
    Ok(parser.next().map_err(usage)?.map(Flag::of))
}

/// The next value as UTF-8 text.
pub fn string(parser: &mut lexopt::Parser) -> Result<String, Error> {
    let value = parser.value().map_err(usage)?;
    value
        .into_string()
        .map_err(|v| Error::Usage(format!("argument {v:?} is not valid UTF-8")))
}

/// A number within bounds.
pub fn number<T>(parser: &mut lexopt::Parser, flag: &str, min: T, max: T) -> Result<T, Error>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = string(parser)?;
    match text.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(Error::Usage(format!(
            "invalid {flag} {text:?}: expected a whole number from {min} to {max}"
        ))),
    }
}

/// lexopt's own message, as a usage error.
pub fn usage(e: lexopt::Error) -> Error {
    Error::Usage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(args: &[&str]) -> Common {
        let mut parser = lexopt::Parser::from_args(args.iter().copied());
        let mut common = Common::default();
        while let Some(flag) = next(&mut parser).unwrap() {
            assert!(common.take(&flag, &mut parser).unwrap(), "{flag:?}");
        }
        common
    }

    #[test]
    fn aws_profile_and_region_flags_become_key_flags() {
        let c = common(&["--aws-profile", "archive", "--region", "eu-west-1"]);
        assert_eq!(c.source.flags.get(&K::aws_profile).unwrap(), "archive");
        assert_eq!(c.source.flags.get(&K::region).unwrap(), "eu-west-1");
    }
}
