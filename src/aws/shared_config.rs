//! The AWS shared files, `~/.aws/config` and `~/.aws/credentials`: finding
//! them, reading them (the INI dialect is [`ini`]), and a profile's settings
//! merged from both, the credentials file winning as in the SDKs.
//!
//! Reading is [`SharedFiles::load`]; the rest is pure. What a profile's
//! settings mean for credentials is decided in `aws::credentials::profile`,
//! for regions and endpoints by the caller: this module must not import
//! `aws::credentials`, `config` or anything above `aws`.

pub mod ini;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use self::ini::{Ini, parse_ini};
use crate::environment::Env;
use crate::error::{Error, Result};

/// Which of the two shared files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Credentials,
    Config,
}

impl FileKind {
    /// `credentials` or `config`, for messages.
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Credentials => "credentials",
            FileKind::Config => "config",
        }
    }

    /// The profile a section header names: in the credentials file the header
    /// is the profile, in the config file it is `[profile NAME]` or `[default]`.
    fn profile_of(self, section: &str) -> Option<&str> {
        match self {
            FileKind::Credentials => Some(section),
            FileKind::Config if section == "default" => Some(section),
            FileKind::Config => section
                .strip_prefix("profile")
                .filter(|rest| rest.starts_with(char::is_whitespace))
                .map(str::trim),
        }
    }
}

#[derive(Debug)]
struct SharedFile {
    kind: FileKind,
    path: PathBuf,
    ini: Ini,
}

/// Both shared files as read from disk (a missing file is simply absent).
#[derive(Debug, Default)]
pub struct SharedFiles {
    /// Config first, then credentials: later files win.
    files: Vec<SharedFile>,
    /// Every path looked at, found or not, for messages.
    searched: Vec<PathBuf>,
}

/// One setting of a profile and the file it came from.
#[derive(Clone, Copy, Debug)]
pub struct Setting<'a> {
    pub value: &'a str,
    pub file: &'a Path,
    pub kind: FileKind,
}

/// A profile's settings from both files, by lower-case key.
pub type Profile<'a> = BTreeMap<&'a str, Setting<'a>>;

impl SharedFiles {
    /// Reads `AWS_CONFIG_FILE` (default `~/.aws/config`) and
    /// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
    pub fn load(env: &Env) -> Result<SharedFiles> {
        let mut files = SharedFiles::default();
        for (kind, var, name) in [
            (FileKind::Config, "AWS_CONFIG_FILE", "config"),
            (
                FileKind::Credentials,
                "AWS_SHARED_CREDENTIALS_FILE",
                "credentials",
            ),
        ] {
            let Some(path) = shared_file_path(env, var, name) else {
                continue;
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    files.searched.push(path);
                    continue;
                }
                Err(e) => return Err(Error::io("read", path, e)),
            };
            files.add(kind, path, &text)?;
        }
        Ok(files)
    }

    /// Adds a file's text, read by [`SharedFiles::load`] or given by a test;
    /// files added later win.
    pub fn add(&mut self, kind: FileKind, path: PathBuf, text: &str) -> Result<()> {
        let ini = parse_ini(text).map_err(|e| {
            Error::Credentials(format!(
                "shared {} file {}: {e}",
                kind.label(),
                path.display()
            ))
        })?;
        self.searched.push(path.clone());
        self.files.push(SharedFile { kind, path, ini });
        Ok(())
    }

    /// The files looked at, as `A or B`, or why there were none.
    pub fn searched(&self) -> String {
        if self.searched.is_empty() {
            return "no shared files (HOME not set)".into();
        }
        self.searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The profile's settings from both files, or `None` when neither has it.
    pub fn profile(&self, name: &str) -> Option<Profile<'_>> {
        let mut merged = BTreeMap::new();
        let mut found = false;
        for file in &self.files {
            for (section, keys) in &file.ini {
                if file.kind.profile_of(section) != Some(name) {
                    continue;
                }
                found = true;
                for (key, value) in keys {
                    merged.insert(
                        key.as_str(),
                        Setting {
                            value: value.trim(),
                            file: &file.path,
                            kind: file.kind,
                        },
                    );
                }
            }
        }
        found.then_some(merged)
    }

    /// A non-empty setting of a profile (e.g. `region`), if the profile exists.
    pub fn setting(&self, profile: &str, key: &str) -> Option<Setting<'_>> {
        self.profile(profile)?
            .get(key)
            .copied()
            .filter(|s| !s.value.is_empty())
    }
}

/// `~/.aws/NAME`, or the file named by `var` (a leading `~` is the home directory).
impl SharedFiles {
    /// `KEY` nested under `service` in the config file's `[services NAME]`
    /// section (`sqs =` then an indented `endpoint_url = …`), as the SDKs
    /// read a profile's `services = NAME`.
    pub fn service_setting(&self, services: &str, service: &str, key: &str) -> Option<Setting<'_>> {
        let section = format!("services {services}");
        self.files
            .iter()
            .rev()
            .filter(|f| f.kind == FileKind::Config)
            .find_map(|file| {
                let (_, keys) = file.ini.iter().find(|(name, _)| {
                    name.split_whitespace().collect::<Vec<_>>().join(" ") == section
                })?;
                let value = nested(keys.get(service)?, key)?;
                Some(Setting {
                    value,
                    file: &file.path,
                    kind: file.kind,
                })
            })
    }
}

/// The value of `key` among the nested `name = value` lines of a setting
/// (`s3 =` / `sqs =` with indented lines under it).
pub fn nested<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    value.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim().eq_ignore_ascii_case(key) && !value.trim().is_empty()).then(|| value.trim())
    })
}

fn shared_file_path(env: &Env, var: &str, name: &str) -> Option<PathBuf> {
    let home = env.get("HOME");
    match env.get(var) {
        Some(path) => match (path.strip_prefix('~'), home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                Some(PathBuf::from(format!("{home}{rest}")))
            }
            _ => Some(PathBuf::from(path)),
        },
        None => home.map(|home| Path::new(home).join(".aws").join(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_headers_name_profiles() {
        assert_eq!(FileKind::Config.profile_of("profile  dev"), Some("dev"));
        assert_eq!(FileKind::Config.profile_of("profiledev"), None);
        assert_eq!(FileKind::Config.profile_of("dev"), None);
        assert_eq!(FileKind::Config.profile_of("default"), Some("default"));
        assert_eq!(FileKind::Credentials.profile_of("dev"), Some("dev"));
    }

    #[test]
    fn credentials_file_wins_and_settings_are_found() {
        let mut f = SharedFiles::default();
        f.add(
            FileKind::Config,
            "/h/.aws/config".into(),
            "[profile dev]\naws_access_key_id = AKIAFROMCONFIG01\nregion = eu-west-1\n",
        )
        .unwrap();
        f.add(
            FileKind::Credentials,
            "/h/.aws/credentials".into(),
            "[dev]\naws_access_key_id = AKIAFROMCREDENTIALS\n",
        )
        .unwrap();
        let dev = f.profile("dev").unwrap();
        assert_eq!(dev["aws_access_key_id"].value, "AKIAFROMCREDENTIALS");
        assert_eq!(dev["aws_access_key_id"].kind, FileKind::Credentials);
        assert_eq!(f.setting("dev", "region").unwrap().value, "eu-west-1");
        assert!(f.setting("other", "region").is_none());
        assert_eq!(f.searched(), "/h/.aws/config or /h/.aws/credentials");
    }

    #[test]
    fn paths_come_from_home_or_the_variables() {
        let env = Env::from_pairs([("HOME", "/h"), ("AWS_CONFIG_FILE", "~/my-config")]);
        assert_eq!(
            shared_file_path(&env, "AWS_CONFIG_FILE", "config"),
            Some(PathBuf::from("/h/my-config"))
        );
        assert_eq!(
            shared_file_path(&env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            Some(PathBuf::from("/h/.aws/credentials"))
        );
        assert_eq!(
            shared_file_path(&Env::default(), "AWS_CONFIG_FILE", "config"),
            None
        );
        assert_eq!(
            SharedFiles::default().searched(),
            "no shared files (HOME not set)"
        );
    }

    #[test]
    fn services_sections_hold_per_service_settings() {
        let mut f = SharedFiles::default();
        f.add(
            FileKind::Config,
            PathBuf::from("/h/.aws/config"),
            "[profile p]\nservices = mine\n[services mine]\nsqs =\n  endpoint_url = http://q:1\n\
             s3 =\n  endpoint_url = http://s:2\n  addressing_style = path\n",
        )
        .unwrap();
        let services = f.setting("p", "services").unwrap().value;
        assert_eq!(
            f.service_setting(services, "sqs", "endpoint_url")
                .unwrap()
                .value,
            "http://q:1"
        );
        assert_eq!(
            f.service_setting(services, "s3", "addressing_style")
                .unwrap()
                .value,
            "path"
        );
        assert!(f.service_setting(services, "sts", "endpoint_url").is_none());
        assert!(f.service_setting("other", "sqs", "endpoint_url").is_none());
        assert_eq!(nested("\nendpoint_url = x\n", "ENDPOINT_URL"), Some("x"));
        assert_eq!(nested("\nendpoint_url =\n", "endpoint_url"), None);
    }
}
