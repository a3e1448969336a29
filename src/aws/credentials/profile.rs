//! What a shared-file profile asks the credential chain to do: a [`Plan`].
//!
//! Pure over [`SharedFiles`] (reading and merging the files is
//! `aws::shared_config`). As in the SDKs, within a profile `role_arn` comes
//! first (with `web_identity_token_file`, `source_profile` or
//! `credential_source`), then IAM Identity Center settings (refused), then
//! static keys, then `credential_process`. Carrying a plan out is the
//! chain's; this module does no I/O and must not import the chain.

use std::path::PathBuf;

use super::keys::Credentials;
use super::sts::{RoleToAssume, WebIdentityRole};
use crate::aws::shared_config::{Profile, Setting, SharedFiles};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How many profiles a `source_profile` chain may hold. The AWS CLI and the
/// SDKs set no limit (they refuse only loops); every hop is one `AssumeRole`
/// call and real chains are two or three long, so 32 bounds the calls one
/// lookup makes while staying far beyond any real use.
pub const MAX_SOURCE_PROFILE_CHAIN: usize = 32;

/// What a profile asks the chain to do.
#[derive(Debug)]
pub enum Plan {
    /// Keys written in the profile.
    Static(Credentials),
    /// Run `credential_process`; `origin` names the profile and file.
    Process { command: String, origin: String },
    /// `role_arn` with `source_profile` or `credential_source`.
    AssumeRole {
        role: RoleToAssume,
        source: RoleSource,
    },
    /// `role_arn` with `web_identity_token_file`.
    WebIdentity(WebIdentityRole),
}

/// Where the keys that call `AssumeRole` come from.
#[derive(Debug)]
pub enum RoleSource {
    Profile(Box<Plan>),
    Environment,
    Ec2InstanceMetadata,
    EcsContainer,
}

/// A plan, or why the profile gives none (only when nobody named it).
#[derive(Debug)]
pub enum PlanLookup {
    Found(Plan),
    NotFound(String),
}

/// Decides what profile `name` asks for. `named_by` says who chose the
/// profile (`AWS_PROFILE`, `aws_profile`); a chosen profile must exist, so a
/// misspelled name never leads on to another identity.
pub fn plan(files: &SharedFiles, name: &str, named_by: Option<&str>) -> Result<PlanLookup> {
    if files.profile(name).is_none() {
        return match named_by {
            Some(by) => Err(Error::Credentials(format!(
                "profile {} (from {by}) does not exist: no [{}] in {}",
                crate::text::tail(name, 100),
                if name == "default" {
                    "default".to_string()
                } else {
                    format!("profile {name}] or [{name}")
                },
                files.searched()
            ))),
            None => Ok(PlanLookup::NotFound(format!(
                "shared files (no profile {name} in {})",
                files.searched()
            ))),
        };
    }
    match plan_profile(files, name, &mut Vec::new())? {
        Some(plan) => Ok(PlanLookup::Found(plan)),
        // A profile that only sets a region configures no credentials: the
        // chain goes on, as in the SDKs (it is not a source that failed).
        None => Ok(PlanLookup::NotFound(format!(
            "shared files (profile {name} in {} has no credentials: no keys, \
             credential_process, role_arn or web_identity_token_file)",
            files.searched()
        ))),
    }
}

/// Settings that select IAM Identity Center, which needs a browser login.
const SSO_KEYS: [&str; 5] = [
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "sso_region",
];

fn plan_profile(
    files: &SharedFiles,
    name: &str,
    visited: &mut Vec<String>,
) -> Result<Option<Plan>> {
    let Some(keys) = files.profile(name) else {
        return Err(Error::Credentials(format!(
            "source_profile {name} (named by profile {}) does not exist in {}",
            visited.last().map_or("?", String::as_str),
            files.searched()
        )));
    };
    if let Some(at) = visited.iter().position(|v| v == name) {
        let reached = match at {
            0 => String::new(),
            _ => format!(" (reached from profile {})", visited[0]),
        };
        return Err(Error::Credentials(format!(
            "source_profile loop: {} -> {name}{reached}",
            visited[at..].join(" -> ")
        )));
    }
    if visited.len() >= MAX_SOURCE_PROFILE_CHAIN {
        return Err(Error::Credentials(format!(
            "source_profile chain from profile {} is longer than {MAX_SOURCE_PROFILE_CHAIN} \
             profiles (the limit): profile {} (number {MAX_SOURCE_PROFILE_CHAIN}) names {name} \
             as its source_profile",
            visited[0],
            visited[visited.len() - 1],
        )));
    }
    visited.push(name.to_string());
    let get = |key: &str| keys.get(key).copied().filter(|s| !s.value.is_empty());
    let where_ = |s: Setting<'_>| format!("profile {name} in {}", s.file.display());
    let refuse = |s: Setting<'_>, what: &str, instead: &str| {
        Error::Credentials(format!(
            "{} uses {what}, which sqs-archive does not support; {instead}",
            where_(s)
        ))
    };

    if let Some(role_arn) = get("role_arn") {
        let origin = where_(role_arn);
        if let Some(mfa) = get("mfa_serial") {
            return Err(refuse(
                mfa,
                "mfa_serial (an MFA code typed at a prompt)",
                "a host has nobody to type it; use a role without an MFA condition",
            ));
        }
        let session_name = get("role_session_name").map(|s| s.value.to_string());
        if let Some(token_file) = get("web_identity_token_file") {
            return Ok(Some(Plan::WebIdentity(WebIdentityRole {
                role_arn: role_arn.value.to_string(),
                token_file: PathBuf::from(token_file.value),
                session_name,
                origin: format!(
                    "web identity ({origin}, web_identity_token_file {})",
                    token_file.value
                ),
            })));
        }
        let duration_seconds = match get("duration_seconds") {
            None => None,
            Some(s) => Some(
                s.value
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=43_200).contains(d))
                    .ok_or_else(|| {
                        Error::Credentials(format!(
                            "{}: duration_seconds {:?} is not a number of seconds up to 43200",
                            where_(s),
                            s.value
                        ))
                    })?,
            ),
        };
        let role = RoleToAssume {
            role_arn: role_arn.value.to_string(),
            session_name,
            duration_seconds,
            external_id: get("external_id").map(|s| s.value.to_string()),
            origin: origin.clone(),
        };
        let source = match (get("source_profile"), get("credential_source")) {
            (Some(_), Some(_)) => {
                return Err(Error::Credentials(format!(
                    "{origin}: both source_profile and credential_source are set; keep one"
                )));
            }
            (None, None) => {
                return Err(Error::Credentials(format!(
                    "{origin}: role_arn needs source_profile or credential_source"
                )));
            }
            (Some(source), None) if source.value == name => {
                // A profile that is its own source uses its own static keys.
                RoleSource::Profile(Box::new(static_keys(name, &keys)?.ok_or_else(|| {
                    Error::Credentials(format!(
                        "{origin}: source_profile is the profile itself, but it has no \
                         aws_access_key_id and aws_secret_access_key"
                    ))
                })?))
            }
            (Some(source), None) => match plan_profile(files, source.value, visited)? {
                Some(plan) => RoleSource::Profile(Box::new(plan)),
                None => {
                    return Err(Error::Credentials(format!(
                        "{origin}: source_profile {} has no credentials",
                        source.value
                    )));
                }
            },
            (None, Some(source)) => match source.value {
                "Environment" => RoleSource::Environment,
                "Ec2InstanceMetadata" => RoleSource::Ec2InstanceMetadata,
                "EcsContainer" => RoleSource::EcsContainer,
                other => {
                    return Err(Error::Credentials(format!(
                        "{origin}: credential_source {other:?} is not Environment, \
                         Ec2InstanceMetadata or EcsContainer"
                    )));
                }
            },
        };
        return Ok(Some(Plan::AssumeRole { role, source }));
    }
    if let Some(file) = get("web_identity_token_file") {
        return Err(Error::Credentials(format!(
            "{}: web_identity_token_file needs role_arn",
            where_(file)
        )));
    }
    if let Some((key, sso)) = SSO_KEYS.iter().find_map(|key| Some((key, get(key)?))) {
        return Err(refuse(
            sso,
            &format!("IAM Identity Center ({key})"),
            &format!(
                "set credential_process = aws configure export-credentials --profile {name} \
                 --format process in another profile, or export keys with `aws configure \
                 export-credentials --profile {name} --format env`"
            ),
        ));
    }
    if let Some(plan) = static_keys(name, &keys)? {
        return Ok(Some(plan));
    }
    if let Some(command) = get("credential_process") {
        return Ok(Some(Plan::Process {
            command: command.value.to_string(),
            origin: where_(command),
        }));
    }
    if let Some(login) = get("login_session") {
        return Err(refuse(
            login,
            "console login (login_session)",
            "use credential_process or keys instead",
        ));
    }
    Ok(None)
}

/// `aws_access_key_id` and `aws_secret_access_key` (and `aws_session_token`);
/// one without the other is an error.
fn static_keys(name: &str, keys: &Profile<'_>) -> Result<Option<Plan>> {
    let get = |key: &str| keys.get(key).copied().filter(|s| !s.value.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Some(Plan::Static(Credentials {
            access_key_id: id.value.to_string(),
            secret_access_key: Secret::new(secret.value),
            session_token: get("aws_session_token").map(|t| Secret::new(t.value)),
            expiry: None,
            source: format!(
                "shared {} file {} (profile {name})",
                id.kind.label(),
                id.file.display()
            ),
        }))),
        (Some(half), None) | (None, Some(half)) => {
            let missing = if get("aws_access_key_id").is_some() {
                "aws_secret_access_key"
            } else {
                "aws_access_key_id"
            };
            Err(Error::Credentials(format!(
                "profile {name} in {} has no {missing}; both keys are needed",
                half.file.display()
            )))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::aws::shared_config::FileKind;
    use std::path::Path;

    fn files(config: &str, credentials: &str) -> SharedFiles {
        let mut files = SharedFiles::default();
        files
            .add(FileKind::Config, "/h/.aws/config".into(), config)
            .unwrap();
        files
            .add(
                FileKind::Credentials,
                "/h/.aws/credentials".into(),
                credentials,
            )
            .unwrap();
        files
    }

    fn plan_of(files: &SharedFiles, name: &str) -> Result<PlanLookup> {
        plan(files, name, Some("AWS_PROFILE"))
    }

    #[test]
    fn role_profiles_resolve_their_source() {
        let f = files(
            "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = base\n\
             role_session_name = archiver\nduration_seconds = 900\nexternal_id = ext-1\n\
             [profile base]\naws_access_key_id = AKIABASE00000001\naws_secret_access_key = s\n\
             [profile chained]\nrole_arn = arn:aws:iam::1:role/second\nsource_profile = role\n\
             [profile self]\nrole_arn = arn:aws:iam::1:role/self\nsource_profile = self\n\
             aws_access_key_id = AKIASELF00000001\naws_secret_access_key = s\n\
             [profile onimds]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Ec2InstanceMetadata\n\
             [profile web]\nrole_arn = arn:aws:iam::1:role/w\nweb_identity_token_file = /t\n\
             [profile process]\ncredential_process = /bin/helper --x 'a b'\n",
            "",
        );
        let Ok(PlanLookup::Found(Plan::AssumeRole { role, source })) = plan_of(&f, "role") else {
            panic!("role");
        };
        assert_eq!(role.role_arn, "arn:aws:iam::1:role/r");
        assert_eq!(role.session_name.as_deref(), Some("archiver"));
        assert_eq!(role.duration_seconds, Some(900));
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        assert!(
            matches!(&source, RoleSource::Profile(p) if matches!(**p, Plan::Static(ref c) if c.access_key_id == "AKIABASE00000001"))
        );
        let Ok(PlanLookup::Found(Plan::AssumeRole { source, .. })) = plan_of(&f, "chained") else {
            panic!("chained");
        };
        assert!(
            matches!(&source, RoleSource::Profile(p) if matches!(**p, Plan::AssumeRole { .. }))
        );
        let Ok(PlanLookup::Found(Plan::AssumeRole { source, .. })) = plan_of(&f, "self") else {
            panic!("self");
        };
        assert!(matches!(&source, RoleSource::Profile(p) if matches!(**p, Plan::Static(_))));
        assert!(matches!(
            plan_of(&f, "onimds"),
            Ok(PlanLookup::Found(Plan::AssumeRole {
                source: RoleSource::Ec2InstanceMetadata,
                ..
            }))
        ));
        assert!(matches!(
            plan_of(&f, "web"),
            Ok(PlanLookup::Found(Plan::WebIdentity(ref w))) if w.token_file == Path::new("/t")
        ));
        assert!(matches!(
            plan_of(&f, "process"),
            Ok(PlanLookup::Found(Plan::Process { ref command, .. })) if command == "/bin/helper --x 'a b'"
        ));
    }

    fn plan_error(files: &SharedFiles, name: &str) -> String {
        match plan_of(files, name) {
            Err(Error::Credentials(message)) => message,
            other => panic!("expected an error for {name}, got {other:?}"),
        }
    }

    /// `[profile p0]` → `p1` → … → `p{len-1}`, the last one holding keys.
    fn chain(len: usize) -> SharedFiles {
        let mut config = String::new();
        for i in 0..len - 1 {
            config.push_str(&format!(
                "[profile p{i}]\nrole_arn = arn:aws:iam::1:role/r{i}\nsource_profile = p{}\n",
                i + 1
            ));
        }
        config.push_str(&format!(
            "[profile p{}]\naws_access_key_id = AKIACHAIN0000001\naws_secret_access_key = s\n",
            len - 1
        ));
        files(&config, "")
    }

    #[test]
    fn a_long_chain_is_not_called_a_loop() {
        let limit = MAX_SOURCE_PROFILE_CHAIN;
        assert!(matches!(
            plan_of(&chain(limit), "p0"),
            Ok(PlanLookup::Found(Plan::AssumeRole { .. }))
        ));
        for len in [limit + 1, 200] {
            let message = plan_error(&chain(len), "p0");
            assert!(!message.contains("loop"), "{message}");
            assert!(
                message.contains(&format!(
                    "source_profile chain from profile p0 is longer than {limit} profiles \
                     (the limit): profile p{} (number {limit}) names p{limit} as its source_profile",
                    limit - 1
                )),
                "{message}"
            );
        }
        // A loop further down names the profiles in it, and where it was entered.
        let f = files(
            "[profile top]\nrole_arn = arn:aws:iam::1:role/t\nsource_profile = a\n\
             [profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n\
             [profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n",
            "",
        );
        assert_eq!(
            plan_error(&f, "top"),
            "source_profile loop: a -> b -> a (reached from profile top)"
        );
    }

    #[test]
    fn broken_and_unsupported_profiles_are_errors() {
        let f = files(
            "[profile loop-a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop-b\n\
             [profile loop-b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = loop-a\n\
             [profile nosource]\nrole_arn = arn:aws:iam::1:role/a\n\
             [profile both]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = x\ncredential_source = Environment\n\
             [profile badsource]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Somewhere\n\
             [profile missing-source]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = gone\n\
             [profile sso]\nsso_session = corp\nsso_account_id = 1\n\
             [profile mfa]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = x\nmfa_serial = arn:mfa\n\
             [profile webonly]\nweb_identity_token_file = /t\n\
             [profile half]\naws_access_key_id = AKIAHALFPROFILE1\n\
             [profile empty]\nregion = eu-west-1\n\
             [profile badduration]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Environment\nduration_seconds = soon\n",
            "",
        );
        for (name, expected) in [
            ("loop-a", "source_profile loop: loop-a -> loop-b -> loop-a"),
            (
                "nosource",
                "role_arn needs source_profile or credential_source",
            ),
            ("both", "both source_profile and credential_source"),
            ("badsource", "\"Somewhere\" is not Environment"),
            (
                "missing-source",
                "source_profile gone (named by profile missing-source) does not exist",
            ),
            (
                "sso",
                "aws configure export-credentials --profile sso --format process",
            ),
            ("mfa", "mfa_serial"),
            ("webonly", "web_identity_token_file needs role_arn"),
            ("half", "has no aws_secret_access_key"),
            ("badduration", "duration_seconds \"soon\""),
            ("nope", "profile nope (from AWS_PROFILE) does not exist"),
        ] {
            let message = plan_error(&f, name);
            assert!(message.contains(expected), "{name}: {message}");
        }
        let message = plan_error(&f, "nope");
        assert!(
            message.contains("/h/.aws/config or /h/.aws/credentials"),
            "{message}"
        );
        assert!(plan_error(&f, "sso").contains("does not support"));
        // A profile with only a region configures no credentials; the chain goes on.
        assert!(
            matches!(plan_of(&f, "empty"), Ok(PlanLookup::NotFound(ref why)) if why.contains("has no credentials"))
        );
        // Nobody named it: an absent default profile is just not there.
        assert!(matches!(
            plan(&f, "default", None),
            Ok(PlanLookup::NotFound(_))
        ));
    }

    #[test]
    fn credentials_file_wins_and_settings_are_found() {
        let f = files(
            "[profile dev]\naws_access_key_id = AKIAFROMCONFIG01\naws_secret_access_key = a\nregion = eu-west-1\n",
            "[dev]\naws_access_key_id = AKIAFROMCREDENTIALS\naws_secret_access_key = b\n",
        );
        let Ok(PlanLookup::Found(Plan::Static(c))) = plan_of(&f, "dev") else {
            panic!("dev");
        };
        assert_eq!(c.access_key_id, "AKIAFROMCREDENTIALS");
        assert_eq!(c.secret_access_key.expose(), "b");
        assert_eq!(f.setting("dev", "region").unwrap().value, "eu-west-1");
        assert!(f.setting("other", "region").is_none());
    }
}
