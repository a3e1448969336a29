//! The credential chain: its steps in order, the pass through them, and the
//! cache that refreshes temporary credentials before they expire.
//!
//! [`CredentialChain`] looks where the AWS SDKs look, in their order:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN` ([`super::variables`]);
//! 2. keys written in the sqs-archive profile file ([`ConfigKeys`]);
//! 3. the shared-file profile named by `aws_profile` / `AWS_PROFILE` (else
//!    `default`) in `~/.aws/credentials` and `~/.aws/config`
//!    ([`super::profile`]): static keys, `credential_process`
//!    ([`super::process`]), `role_arn` with `source_profile` or
//!    `credential_source`, or `web_identity_token_file` (both through
//!    [`super::sts`]);
//! 4. web identity from the environment: `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` (EKS service accounts, OIDC), through [`super::sts`];
//! 5. the container credentials endpoint ([`super::container`]);
//! 6. EC2 instance metadata, IMDSv2 ([`super::imds`]).
//!
//! The first source with credentials wins. A source that is configured but
//! broken (one key variable without the other, a profile that does not
//! exist, a `credential_process` that fails, an STS refusal) stops the search
//! with an error rather than falling through to some other identity the user
//! did not ask for. Instance metadata is the exception: it is the last
//! resort, asked only when nothing else is configured, so its failure only
//! joins the list of what was tried.
//!
//! Temporary credentials are cached and fetched anew five minutes before they
//! expire, so a poller running for days keeps signing with valid keys; when a
//! refresh fails, keys that still work are kept until they really expire. A
//! refresh runs the whole source again: the process is run again, the role
//! assumed again, the web identity token file read again. A refresh runs on
//! the thread that asked; one runs at a time, the others wait for its result.
//!
//! Must not import `config`, `sqs` or anything above `aws`: callers hand in
//! an [`Env`] snapshot and [`ConfigKeys`].

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::config_keys::{ConfigKeys, from_config_keys};
use super::container::ECS_CONTAINER_ENDPOINT;
use super::keys::Credentials;
use super::profile::{Plan, PlanLookup, RoleSource};
use super::provide::{Lookup, ProvideCredentials};
use super::{container, imds, process, profile, sts, variables};
use crate::aws::shared_config::SharedFiles;
use crate::environment::Env;
use crate::error::{Error, Result};

/// After a failed refresh, keys that still work are handed out for this long
/// before the chain is asked again, so an unreachable metadata endpoint does
/// not slow down every request.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(30);

/// The steps of the chain, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Environment,
    ProfileConfig,
    SharedProfile,
    WebIdentity,
    Container,
    InstanceMetadata,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Environment,
        Step::ProfileConfig,
        Step::SharedProfile,
        Step::WebIdentity,
        Step::Container,
        Step::InstanceMetadata,
    ];

    /// `3 of 6, shared-file profile (AWS_PROFILE)`.
    pub fn describe(self) -> String {
        let number = Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1;
        let name = match self {
            Step::Environment => "environment keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
            Step::ProfileConfig => "keys in the sqs-archive profile file",
            Step::SharedProfile => "shared-file profile (aws_profile, AWS_PROFILE or default)",
            Step::WebIdentity => {
                "web identity from the environment (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)"
            }
            Step::Container => "container credentials endpoint",
            Step::InstanceMetadata => "EC2 instance metadata (IMDSv2)",
        };
        format!("{number} of {}, {name}", Step::ALL.len())
    }
}

/// The standard chain (see the module documentation), with a cache.
///
/// One fetch runs at a time: callers arriving during a refresh wait for its
/// result instead of all asking the metadata endpoint at once.
#[derive(Debug)]
pub struct CredentialChain {
    env: Env,
    config: ConfigKeys,
    /// `aws_profile` from the settings; else `AWS_PROFILE`; else `default`.
    profile: Option<String>,
    /// Who named `profile` (`AWS_PROFILE`, `--aws-profile`, `aws_profile`).
    profile_named_by: Option<String>,
    /// The region STS is called in (the signing region of the queue calls).
    region: Option<String>,
    /// Base URL for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`; tests point it at a local server.
    container_endpoint: String,
    /// The clock used by [`ProvideCredentials::credentials`].
    now: fn() -> SystemTime,
    cache: Mutex<Cache>,
}

#[derive(Debug)]
struct Cache {
    credentials: Option<(Step, Credentials)>,
    /// When a refresh last failed while older keys were still in use.
    last_failure: Option<SystemTime>,
    /// When the cached credentials were fetched.
    fetched_at: SystemTime,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            credentials: None,
            last_failure: None,
            fetched_at: SystemTime::UNIX_EPOCH,
        }
    }
}

/// Whether cached credentials can be handed out without asking their
/// source again: until [`super::keys::REFRESH_BEFORE_EXPIRY`] before they
/// expire, or a quarter of their lifetime before when they were issued for
/// less than four times that (a `credential_process` handing out
/// 10-minute keys is run again after 7.5 minutes, not on every call).
fn fresh_enough(cached: &Credentials, fetched_at: SystemTime, now: SystemTime) -> bool {
    let Some(expiry) = cached.expiry else {
        return true;
    };
    let lifetime = expiry.duration_since(fetched_at).unwrap_or_default();
    let margin = super::keys::REFRESH_BEFORE_EXPIRY.min(lifetime / 4);
    expiry.duration_since(now).is_ok_and(|left| left > margin)
}

impl CredentialChain {
    pub fn new(env: Env, config: ConfigKeys) -> CredentialChain {
        CredentialChain {
            env,
            config,
            profile: None,
            profile_named_by: None,
            region: None,
            container_endpoint: ECS_CONTAINER_ENDPOINT.to_string(),
            now: SystemTime::now,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Names the shared-file profile (the `aws_profile` setting); without it
    /// `AWS_PROFILE` or `default` is used.
    pub fn with_profile(
        mut self,
        profile: Option<String>,
        named_by: Option<String>,
    ) -> CredentialChain {
        self.profile = profile;
        self.profile_named_by = named_by;
        self
    }

    /// The region whose STS endpoint assumes roles.
    pub fn with_region(mut self, region: Option<String>) -> CredentialChain {
        self.region = region;
        self
    }

    /// Replaces the ECS host that `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is
    /// joined to (`http://169.254.170.2`), so tests can use a local server.
    pub fn with_container_endpoint(mut self, base_url: impl Into<String>) -> CredentialChain {
        self.container_endpoint = base_url.into();
        self
    }

    /// Replaces the clock that decides when cached credentials are refreshed.
    pub fn with_clock(mut self, now: fn() -> SystemTime) -> CredentialChain {
        self.now = now;
        self
    }

    /// Credentials that are good at `now`: the cached ones while they are
    /// fresh, otherwise a new pass through the chain. When that pass fails and
    /// the cached keys have not yet expired, they are returned with a warning.
    pub fn credentials_at(&self, now: SystemTime) -> Result<Credentials> {
        self.step_and_credentials_at(now).map(|(_, c)| c)
    }

    fn step_and_credentials_at(&self, now: SystemTime) -> Result<(Step, Credentials)> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((step, cached)) = &cache.credentials {
            let recently_failed = cache.last_failure.is_some_and(|failed| {
                now.duration_since(failed)
                    .is_ok_and(|since| since < RETRY_REFRESH_AFTER)
            });
            if fresh_enough(cached, cache.fetched_at, now)
                || (recently_failed && !cached.is_expired(now))
            {
                return Ok((*step, cached.clone()));
            }
        }
        match self
            .load_step()
            .and_then(|fresh| refuse_expired(fresh, now))
        {
            Ok(fresh) => {
                if fresh.1.expiry.is_some() {
                    log::info!("fetched AWS credentials: {}", fresh.1.describe());
                }
                cache.credentials = Some(fresh.clone());
                cache.fetched_at = now;
                cache.last_failure = None;
                Ok(fresh)
            }
            Err(error) => {
                let still_valid = cache
                    .credentials
                    .as_ref()
                    .filter(|(_, cached)| !cached.is_expired(now))
                    .cloned();
                let Some(cached) = still_valid else {
                    return Err(error);
                };
                log::warn!(
                    "could not refresh AWS credentials, still using {}: {error}",
                    cached.1.describe()
                );
                cache.last_failure = Some(now);
                Ok(cached)
            }
        }
    }

    /// Which source supplies the credentials, with the key id masked, e.g.
    /// `access key AKIA…WXYZ from environment`.
    pub fn describe(&self) -> Result<String> {
        Ok(self.credentials()?.describe())
    }

    /// The chain step that supplied the current credentials, and them.
    pub fn report(&self) -> Result<(Step, Credentials)> {
        self.step_and_credentials_at((self.now)())
    }

    /// One pass through the chain, without the cache.
    pub fn load(&self) -> Result<Credentials> {
        self.load_step().map(|(_, c)| c)
    }

    fn load_step(&self) -> Result<(Step, Credentials)> {
        let mut tried = Vec::new();
        for step in Step::ALL {
            match self.lookup(step)? {
                Lookup::Found(credentials) => return Ok((step, credentials)),
                Lookup::NotFound(why) => tried.push(why),
            }
        }
        Err(Error::Credentials(format!(
            "no AWS credentials found; tried {}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             put keys in the profile, or run where container or instance credentials are available",
            tried.join("; ")
        )))
    }

    fn lookup(&self, step: Step) -> Result<Lookup> {
        match step {
            Step::Environment if self.profile_named_by.as_deref() == Some("--aws-profile") => {
                Ok(Lookup::NotFound(
                    "environment keys (skipped: --aws-profile names a profile, which wins over \
                     them as in the AWS CLI)"
                        .into(),
                ))
            }
            Step::Environment => variables::from_environment(&self.env),
            Step::ProfileConfig => from_config_keys(&self.config),
            Step::SharedProfile => self.shared_profile(),
            Step::WebIdentity => match variables::web_identity(&self.env)? {
                None => Ok(Lookup::NotFound(
                    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set)".into(),
                )),
                Some(role) => self
                    .sts()?
                    .assume_role_with_web_identity(&role)
                    .map(Lookup::Found),
            },
            Step::Container => container::from_container(&self.env, &self.container_endpoint),
            Step::InstanceMetadata => imds::from_instance_metadata(&self.env),
        }
    }

    /// The profile to read and whether someone named it (then it must exist).
    fn profile_name(&self) -> (String, Option<&str>) {
        if let Some(name) = &self.profile {
            return (
                name.clone(),
                Some(self.profile_named_by.as_deref().unwrap_or("aws_profile")),
            );
        }
        match self.env.get("AWS_PROFILE") {
            Some(name) => (name.to_string(), Some("AWS_PROFILE")),
            None => ("default".to_string(), None),
        }
    }

    fn shared_profile(&self) -> Result<Lookup> {
        let (name, named_by) = self.profile_name();
        let files = SharedFiles::load(&self.env)?;
        match profile::plan(&files, &name, named_by)? {
            PlanLookup::NotFound(why) => Ok(Lookup::NotFound(why)),
            PlanLookup::Found(plan) => self.run_plan(&plan).map(Lookup::Found),
        }
    }

    /// Carries out what a profile asks for.
    fn run_plan(&self, plan: &Plan) -> Result<Credentials> {
        match plan {
            Plan::Static(credentials) => Ok(credentials.clone()),
            Plan::Process { command, origin } => {
                process::run(command, origin, process::timeout(&self.env)?)
            }
            Plan::WebIdentity(role) => self.sts()?.assume_role_with_web_identity(role),
            Plan::AssumeRole { role, source } => {
                let (source_credentials, via) = match source {
                    RoleSource::Profile(plan) => {
                        let credentials = self.run_plan(plan)?;
                        let via = credentials.source.clone();
                        (credentials, via)
                    }
                    RoleSource::Environment => match variables::from_environment(&self.env)? {
                        Lookup::Found(credentials) => (credentials, "environment".to_string()),
                        Lookup::NotFound(_) => {
                            return Err(Error::Credentials(format!(
                                "{}: credential_source = Environment, but AWS_ACCESS_KEY_ID and \
                                 AWS_SECRET_ACCESS_KEY are not set",
                                role.origin
                            )));
                        }
                    },
                    RoleSource::Ec2InstanceMetadata => {
                        let credentials = imds::instance_credentials(&self.env).map_err(|why| {
                            Error::Credentials(format!(
                                "{}: credential_source = Ec2InstanceMetadata: {why}",
                                role.origin
                            ))
                        })?;
                        let via = credentials.source.clone();
                        (credentials, via)
                    }
                    RoleSource::EcsContainer => {
                        match container::from_container(&self.env, &self.container_endpoint)? {
                            Lookup::Found(credentials) => {
                                (credentials, "container credentials".to_string())
                            }
                            Lookup::NotFound(why) => {
                                return Err(Error::Credentials(format!(
                                    "{}: credential_source = EcsContainer, but {why}",
                                    role.origin
                                )));
                            }
                        }
                    }
                };
                self.sts()?
                    .assume_role(&source_credentials, role, &via, SystemTime::now())
            }
        }
    }

    fn sts(&self) -> Result<sts::Sts> {
        let (profile, _) = self.profile_name();
        let ca_bundle = SharedFiles::load(&self.env)?
            .setting(&profile, "ca_bundle")
            .map(|s| std::path::PathBuf::from(s.value));
        Ok(sts::Sts::new(&self.env, self.region.as_deref())?.with_profile_ca_bundle(ca_bundle))
    }
}

/// Credentials whose `Expiration` has passed are an error naming their
/// source and the expiry, never used.
fn refuse_expired(found: (Step, Credentials), now: SystemTime) -> Result<(Step, Credentials)> {
    match found.1.expiry {
        Some(expiry) if found.1.is_expired(now) => Err(Error::Credentials(format!(
            "the credentials from {} expired at {}; refusing them (renew them at their source)",
            found.1.source,
            crate::time::format_rfc3339(expiry)
        ))),
        _ => Ok(found),
    }
}

impl ProvideCredentials for CredentialChain {
    fn credentials(&self) -> Result<Credentials> {
        self.credentials_at((self.now)())
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
