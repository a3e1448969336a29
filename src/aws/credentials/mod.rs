//! AWS credentials and where they come from.
//!
//! [`CredentialChain`] looks where the AWS SDKs look, in their order:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN` ([`env`]);
//! 2. keys written in the sqs-archive profile file ([`ConfigKeys`]);
//! 3. the shared-file profile named by `aws_profile` / `AWS_PROFILE` (else
//!    `default`) in `~/.aws/credentials` and `~/.aws/config` ([`profile`]):
//!    static keys, `credential_process` ([`process`]), `role_arn` with
//!    `source_profile` or `credential_source`, or `web_identity_token_file`
//!    (both through [`sts`]);
//! 4. web identity from the environment: `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` (EKS service accounts, OIDC), through [`sts`];
//! 5. the container credentials endpoint ([`container`]);
//! 6. EC2 instance metadata, IMDSv2 ([`imds`]).
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
//! assumed again, the web identity token file read again.
//!
//! Secrets are wrapped in [`Secret`] as soon as they are read, and no error
//! or log line quotes a file line, a process's output or a response body
//! that may hold a key.

pub mod container;
mod fetch;
pub mod imds;
pub mod ini;
pub mod process;
pub mod profile;
pub mod sts;
pub mod variables;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::environment::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

use self::profile::{Plan, PlanLookup, RoleSource, SharedFiles};

/// Temporary credentials are replaced this long before they expire, so a
/// request signed just before the switch still reaches AWS in time.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh, keys that still work are handed out for this long
/// before the chain is asked again, so an unreachable metadata endpoint does
/// not slow down every request.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(30);

/// The ECS agent's credentials host, joined with `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_CONTAINER_ENDPOINT: &str = "http://169.254.170.2";

pub use self::imds::IMDS_ENDPOINT;

/// A set of AWS credentials. `Debug` masks the key id and never shows the secret or the token.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// When temporary credentials stop working.
    pub expiry: Option<SystemTime>,
    /// Which source supplied them, e.g. `environment`,
    /// `shared credentials file /root/.aws/credentials (profile default)`,
    /// `instance metadata (role NAME)`.
    pub source: String,
}

impl Credentials {
    /// The access key id with its middle hidden (`AKIA…WXYZ`), for messages.
    pub fn masked_access_key_id(&self) -> String {
        mask_access_key_id(&self.access_key_id)
    }

    /// One line for a person: which key, from where, until when. Never the secret.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "access key {} from {}",
            self.masked_access_key_id(),
            self.source
        );
        if self.session_token.is_some() {
            text.push_str(", with a session token");
        }
        if let Some(expiry) = self.expiry {
            text.push_str(", expires ");
            text.push_str(&crate::time::format_rfc3339(expiry));
        }
        text
    }

    /// True once `now` has reached the expiry (never for long-lived keys).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expiry.is_some_and(|expiry| now >= expiry)
    }

    /// True while the credentials can be handed out without asking the chain:
    /// long-lived keys always, temporary ones until [`REFRESH_BEFORE_EXPIRY`]
    /// before they expire.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        match self.expiry {
            None => true,
            Some(expiry) => expiry
                .duration_since(now)
                .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY),
        }
    }
}

impl fmt::Debug for Credentials {
    // Written by hand so the key id is masked too; the secrets are `Secret`s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.masked_access_key_id())
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiry", &self.expiry.map(crate::time::format_rfc3339))
            .field("source", &self.source)
            .finish()
    }
}

/// Something that hands out credentials, refreshing them when needed.
pub trait ProvideCredentials: Send + Sync + std::fmt::Debug {
    /// Current, unexpired credentials.
    fn credentials(&self) -> Result<Credentials>;
}

/// Fixed credentials supply themselves (tests, benchmarks, callers that
/// resolved them already).
impl ProvideCredentials for Credentials {
    fn credentials(&self) -> Result<Credentials> {
        Ok(self.clone())
    }
}

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

/// Keys written in the profile's config file, if any.
#[derive(Clone, Debug, Default)]
pub struct ConfigKeys {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Names the file, for messages.
    pub origin: String,
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

#[derive(Debug, Default)]
struct Cache {
    credentials: Option<(Step, Credentials)>,
    /// When a refresh last failed while older keys were still in use.
    last_failure: Option<SystemTime>,
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
            if cached.is_fresh(now) || (recently_failed && !cached.is_expired(now)) {
                return Ok((*step, cached.clone()));
            }
        }
        match self.load_step() {
            Ok(fresh) => {
                if fresh.1.expiry.is_some() {
                    log::info!("fetched AWS credentials: {}", fresh.1.describe());
                }
                cache.credentials = Some(fresh.clone());
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
        sts::Sts::new(&self.env, self.region.as_deref())
    }
}

impl ProvideCredentials for CredentialChain {
    fn credentials(&self) -> Result<Credentials> {
        self.credentials_at((self.now)())
    }
}

/// What one source of the chain found.
pub(crate) enum Lookup {
    Found(Credentials),
    /// Nothing configured here; the text says why, for the final error.
    NotFound(String),
}

fn from_config_keys(keys: &ConfigKeys) -> Result<Lookup> {
    let label = if keys.origin.is_empty() {
        "profile config".to_string()
    } else {
        format!("profile config {}", keys.origin)
    };
    let id = keys.access_key_id.as_deref().filter(|id| !id.is_empty());
    let secret = keys.secret_access_key.as_ref().filter(|s| !s.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Lookup::Found(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.clone(),
            session_token: keys.session_token.clone().filter(|t| !t.is_empty()),
            expiry: None,
            source: label,
        })),
        (Some(_), None) => Err(Error::Credentials(format!(
            "{label}: the profile has aws_access_key_id but no aws_secret_access_key; both are needed"
        ))),
        (None, Some(_)) => Err(Error::Credentials(format!(
            "{label}: the profile has aws_secret_access_key but no aws_access_key_id; both are needed"
        ))),
        (None, None) => Ok(Lookup::NotFound(format!("{label} (no keys)"))),
    }
}

/// `AKIA…WXYZ`; ids too short to hide anything are masked entirely.
fn mask_access_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
#[path = "../../../tests/it/fakes.rs"]
pub(crate) mod fakes;

/// Helpers for the unit tests of this module and its sources.
#[cfg(test)]
pub(crate) mod test_support {
    pub use super::fakes::{FakeHttp, closed_port};
    pub use super::*;
    pub use std::path::PathBuf;
    pub use std::time::Instant;

    pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
    pub const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

    pub fn at(text: &str) -> SystemTime {
        crate::time::parse_rfc3339(text).unwrap()
    }

    /// An environment that cannot reach the developer's own AWS setup: no
    /// HOME with an `.aws`, no instance metadata. Tests add what they need.
    pub fn env(pairs: &[(&str, &str)]) -> Env {
        let mut env = Env::from_pairs([
            (
                "HOME",
                std::env::temp_dir()
                    .join("sqs-archive-credentials-no-such-home")
                    .display()
                    .to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]);
        for (name, value) in pairs {
            env.set(*name, *value);
        }
        env
    }

    pub fn chain(pairs: &[(&str, &str)]) -> CredentialChain {
        CredentialChain::new(env(pairs), ConfigKeys::default())
    }

    pub fn credentials_json(key: &str, expiration: &str) -> String {
        format!(
            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{SECRET}","Token":"{TOKEN}","Expiration":"{expiration}"}}"#
        )
    }

    /// A directory under the system temp dir, removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "sqs-archive-credentials-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(path.join(".aws")).unwrap();
            TempDir(path)
        }

        pub fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::write(&path, text).unwrap();
            path
        }

        pub fn home(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn imds_answers(token: &str, role: &str, credentials: String) -> Vec<(u16, String)> {
        vec![
            (200, token.to_string()),
            (200, format!("{role}\n")),
            (200, credentials),
        ]
    }

    pub fn credentials_error(result: Result<Credentials>) -> String {
        match result {
            Err(Error::Credentials(message)) => message,
            Err(other) => panic!("expected a credentials error, got {other}"),
            Ok(credentials) => panic!("expected an error, got {credentials:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn access_key_id_is_masked() {
        assert_eq!(mask_access_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_access_key_id("AKIDSHORT"), "…");
        assert_eq!(mask_access_key_id(""), "…");
    }

    #[test]
    fn profile_config_keys_come_after_the_environment() {
        let config = ConfigKeys {
            access_key_id: Some("AKIACONFIGFILE01".into()),
            secret_access_key: Some(Secret::new(SECRET)),
            session_token: Some(Secret::new(TOKEN)),
            origin: "config/aws.json".into(),
        };
        let creds = CredentialChain::new(env(&[]), config)
            .credentials()
            .unwrap();
        assert_eq!(creds.access_key_id, "AKIACONFIGFILE01");
        assert_eq!(creds.session_token.unwrap().expose(), TOKEN);
        assert_eq!(creds.source, "profile config config/aws.json");
    }

    #[test]
    fn profile_config_with_one_key_is_an_error() {
        let config = ConfigKeys {
            access_key_id: Some("AKIACONFIGFILE01".into()),
            origin: "config/aws.json".into(),
            ..ConfigKeys::default()
        };
        let message = credentials_error(CredentialChain::new(env(&[]), config).load());
        assert!(message.contains("config/aws.json"), "{message}");
        assert!(
            message.contains("but no aws_secret_access_key"),
            "{message}"
        );
    }

    // --- Cache and refresh -------------------------------------------------------

    #[test]
    fn credentials_close_to_expiry_are_fetched_again() {
        let mut answers = imds_answers(
            "t1",
            "my-role",
            credentials_json("AKIAFIRSTKEY00001", "2026-11-28T12:02:00Z"),
        );
        answers.extend(imds_answers(
            "t2",
            "my-role",
            credentials_json("AKIASECONDKEY0001", "2026-11-28T18:00:00Z"),
        ));
        let server = FakeHttp::canned(answers);
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
        ]);
        let now = at("2026-11-28T12:00:00Z");
        assert_eq!(
            chain.credentials_at(now).unwrap().access_key_id,
            "AKIAFIRSTKEY00001"
        );
        // Two minutes left is inside the five-minute window: fetch again.
        assert_eq!(
            chain.credentials_at(now).unwrap().access_key_id,
            "AKIASECONDKEY0001"
        );
        // Six hours left: served from the cache.
        assert_eq!(
            chain.credentials_at(now).unwrap().access_key_id,
            "AKIASECONDKEY0001"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 6);
        assert_eq!(requests[3].header("x-aws-ec2-metadata-token"), None);
        assert_eq!(requests[4].header("x-aws-ec2-metadata-token"), Some("t2"));
    }

    #[test]
    fn long_lived_credentials_are_served_from_the_cache() {
        let mut answers = imds_answers(
            "t1",
            "my-role",
            credentials_json("AKIAFIRSTKEY00001", "2026-11-28T18:00:00Z"),
        );
        answers.extend(imds_answers(
            "t2",
            "my-role",
            credentials_json("AKIASECONDKEY0001", "2026-11-28T18:00:00Z"),
        ));
        let server = FakeHttp::canned(answers);
        fn noon() -> SystemTime {
            crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
        }
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
        ])
        .with_clock(noon);
        assert_eq!(
            chain.credentials().unwrap().access_key_id,
            "AKIAFIRSTKEY00001"
        );
        assert_eq!(
            chain.credentials().unwrap().access_key_id,
            "AKIAFIRSTKEY00001"
        );
        // Still within the window at 17:54:59, refreshed at 17:55:00.
        assert_eq!(
            chain
                .credentials_at(at("2026-11-28T17:54:59Z"))
                .unwrap()
                .access_key_id,
            "AKIAFIRSTKEY00001"
        );
        assert_eq!(server.requests().len(), 3);
    }

    #[test]
    fn failed_refresh_keeps_credentials_until_they_expire() {
        // One set of answers; after that the server is gone and connections are refused.
        let server = FakeHttp::canned(imds_answers(
            "t1",
            "my-role",
            credentials_json("AKIAFIRSTKEY00001", "2026-11-28T12:02:00Z"),
        ));
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
        ]);
        let now = at("2026-11-28T12:00:00Z");
        assert_eq!(
            chain.credentials_at(now).unwrap().access_key_id,
            "AKIAFIRSTKEY00001"
        );
        assert_eq!(server.requests().len(), 3);

        // The refresh fails, but the keys work for two more minutes.
        let kept = chain.credentials_at(now).unwrap();
        assert_eq!(kept.access_key_id, "AKIAFIRSTKEY00001");
        assert!(chain.cache.lock().unwrap().last_failure.is_some());
        // Within the back-off nothing is fetched, so nothing can fail.
        assert!(chain.credentials_at(at("2026-11-28T12:00:10Z")).is_ok());

        // Once they have expired, the failure is the caller's.
        let message = credentials_error(chain.credentials_at(at("2026-11-28T12:02:00Z")));
        assert!(message.contains("instance metadata"), "{message}");
    }

    #[test]
    fn static_credentials_are_cached() {
        let chain = chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]);
        let far_future = at("2999-01-01T00:00:00Z");
        chain.credentials_at(far_future).unwrap();
        assert!(chain.cache.lock().unwrap().credentials.is_some());
        assert!(
            chain
                .credentials_at(far_future)
                .unwrap()
                .is_fresh(far_future)
        );
    }

    // --- Messages ------------------------------------------------------------------

    #[test]
    fn nothing_found_lists_every_source_on_one_line() {
        let config = ConfigKeys {
            origin: "config/aws.json".into(),
            ..ConfigKeys::default()
        };
        let message = credentials_error(CredentialChain::new(env(&[]), config).load());
        assert!(!message.contains('\n'), "{message}");
        for part in [
            "no AWS credentials found; tried ",
            "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)",
            "profile config config/aws.json (no keys)",
            "shared files (",
            "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)",
        ] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
        let message = credentials_error(
            CredentialChain::new(
                Env::from_pairs([("AWS_EC2_METADATA_DISABLED", "true")]),
                ConfigKeys::default(),
            )
            .load(),
        );
        assert!(message.contains("shared files (HOME not set)"), "{message}");
    }

    #[test]
    fn debug_and_describe_never_show_the_secret_or_token() {
        let server = FakeHttp::canned(imds_answers(
            "imds-session-token",
            "my-role",
            credentials_json("AKIAIOSFODNN7EXAMPLE", "2026-11-28T18:00:00Z"),
        ));
        fn noon() -> SystemTime {
            crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
        }
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
        ])
        .with_clock(noon);
        let creds = chain.credentials().unwrap();
        let description = chain.describe().unwrap();
        assert_eq!(
            description,
            "access key AKIA…MPLE from instance metadata (role my-role), with a session token, \
             expires 2026-11-28T18:00:00Z"
        );
        for shown in [
            format!("{creds:?}"),
            format!("{chain:?}"),
            description,
            creds.describe(),
        ] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(!shown.contains("imds-session-token"), "{shown}");
            assert!(!shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
        }

        let env_chain = chain_from_env_keys();
        assert_eq!(
            env_chain.describe().unwrap(),
            "access key AKIA…ENT1 from environment, with a session token"
        );
        assert!(!format!("{env_chain:?}").contains(SECRET));
    }

    fn chain_from_env_keys() -> CredentialChain {
        chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
        ])
    }
}
