//! Where configuration text comes from: the profile file's discovery
//! (`--profile NAME` in the search directories, `--config FILE`), the `.env`
//! file, and parsing the profile's JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::keys::{K, KEYS};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::files::{ConfigFile, ReadProblem, read_config_file};

/// The system-wide configuration directory, searched last.
pub const SYSTEM_CONFIG_DIR: &str = "/etc/sqs-archive";

/// Where to find the configuration, as chosen on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub profile: Option<String>,
    pub config: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    /// Values given on the command line, by key; they win over everything.
    pub flags: BTreeMap<K, String>,
}

/// Applies the `.env` file; returns the environment and the file, if one was read.
pub(super) fn apply_env_file(source: &Source, mut env: Env) -> Result<(Env, Option<PathBuf>)> {
    // poll_messages passes its --env-file on to the handler in SQS_ARCHIVE_ENV_FILE.
    let (path, required) = match (&source.env_file, env.get("SQS_ARCHIVE_ENV_FILE")) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(".env"), false),
    };
    let text = match read_config_file(&path, ConfigFile::EnvFile) {
        Ok(text) => text,
        Err(ReadProblem::NotFound(_)) if !required => return Ok((env, None)),
        Err(e) => return Err(e.into_error("read env file", &path)),
    };
    for (k, v) in parse_env_file(&text, &path)? {
        env.set_default(k, v);
    }
    Ok((env, Some(path)))
}

/// The directories `--profile NAME` searches, in order.
pub fn search_dirs(env: &Env) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = env.get("SQS_ARCHIVE_CONFIG_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("config"));
    dirs.push(PathBuf::from(SYSTEM_CONFIG_DIR));
    dirs
}

/// Reads a profile file; every failure is a configuration error (78).
pub(super) fn read_profile(path: &Path) -> Result<String> {
    read_config_file(path, ConfigFile::Profile).map_err(|e| match e {
        ReadProblem::NotFound(_) => Error::config(path.display().to_string(), "file not found"),
        e => e.into_error("read profile", path),
    })
}

/// The variables of a `.env` file. A malformed line is reported by its
/// number alone: its text may be `SECRET=...` with a typo.
pub(super) fn parse_env_file(text: &str, path: &Path) -> Result<Vec<(String, String)>> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            item.map_err(|e| {
                let message = match &e {
                    dotenvy::Error::LineParse(rest, _) => match line_of(text, rest) {
                        Some(n) => format!("line {n} is not NAME=value (or a comment)"),
                        None => "a line is not NAME=value (or a comment)".to_string(),
                    },
                    dotenvy::Error::EnvVar(_) => "a variable it refers to is not set".to_string(),
                    _ => "cannot be parsed".to_string(),
                };
                Error::config(path.display().to_string(), message)
            })
        })
        .collect()
}

/// The 1-based line number where `fragment` (the text dotenvy could not
/// parse, from the bad line on) starts in `text`.
pub(super) fn line_of(text: &str, fragment: &str) -> Option<usize> {
    let fragment = fragment.trim_end();
    if fragment.is_empty() {
        return None;
    }
    // Where the fragment starts a line: `X` must not be found inside `AX=1`.
    let (at, _) = text
        .match_indices(fragment)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    Some(text[..at].matches('\n').count() + 1)
}

pub(super) fn profile_path(source: &Source, env: &Env) -> Result<Option<PathBuf>> {
    if let Some(path) = &source.config {
        return Ok(Some(path.clone()));
    }
    let profile = source
        .profile
        .clone()
        .or_else(|| env.get("SQS_ARCHIVE_PROFILE").map(String::from));
    if let Some(name) = profile {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            return Err(Error::Usage(format!(
                "invalid profile name {name:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        let candidates: Vec<PathBuf> = search_dirs(env)
            .into_iter()
            .map(|d| d.join(format!("{name}.json")))
            .collect();
        // A file that exists but cannot be read (or sits in a directory that
        // cannot be searched) is taken, so its error is reported, not skipped.
        let exists = |p: &PathBuf| match std::fs::metadata(p) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if let Some(found) = candidates.iter().find(|p| exists(p)) {
            return Ok(Some(found.clone()));
        }
        let searched: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::config(
            "--profile",
            format!(
                "profile {name:?} does not exist; searched {} (set SQS_ARCHIVE_CONFIG_DIR, or pass --config FILE)",
                searched.join(", ")
            ),
        ));
    }
    Ok(env.get("SQS_ARCHIVE_CONFIG").map(PathBuf::from))
}

pub(super) fn parse_file(text: &str, origin: &str) -> Result<Map<String, Value>> {
    // A key given twice is refused: which one counts must not be a guess.
    let value = crate::json::parse(text).map_err(|e| Error::config(origin, e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(Error::config(origin, "expected a JSON object of settings"));
    };
    for key in map.keys() {
        if !KEYS.iter().any(|k| k.name == key) {
            let near = KEYS
                .iter()
                .filter(|k| k.name.contains(key.as_str()) || key.contains(k.name))
                .map(|k| k.name)
                .next();
            let hint = near
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            return Err(Error::config(origin, format!("unknown key {key:?}{hint}")));
        }
    }
    Ok(map)
}
