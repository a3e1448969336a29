//! AWS credentials and where they come from.
//!
//! [`CredentialChain`] looks where the AWS SDKs look, in their order:
//!
//! 1. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! 2. keys written in the profile config file ([`ConfigKeys`]);
//! 3. the shared files `~/.aws/credentials` and `~/.aws/config` (static keys only);
//! 4. the container credentials endpoint (ECS task roles, EKS Pod Identity);
//! 5. EC2 instance metadata (IMDSv2).
//!
//! The first source with credentials wins. A source that is configured but
//! broken (one key variable without the other, a profile that needs
//! `role_arn`, a container endpoint answering 500) stops the search with an
//! error rather than falling through to some other identity the user did not
//! ask for. Instance metadata is the exception: it is the last resort and is
//! tried on every machine, so its failure only joins the list of what was
//! tried.
//!
//! Temporary credentials are cached and fetched anew five minutes before they
//! expire, so a poller running for days keeps signing with valid keys; when a
//! refresh fails, keys that still work are kept until they really expire.
//!
//! Parsing (INI files, the JSON answers, RFC 3339 times, the container URL
//! check) is done by pure functions; reading files and HTTP live in a few thin
//! functions near the end. Secrets are wrapped in [`Secret`] as soon as they
//! are read, and no error or log line quotes a file line or a response body,
//! because either may hold a key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::env::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Temporary credentials are replaced this long before they expire, so a
/// request signed just before the switch still reaches AWS in time.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// After a failed refresh, keys that still work are handed out for this long
/// before the chain is asked again, so an unreachable metadata endpoint does
/// not slow down every request.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(30);

/// The ECS agent's credentials host, joined with `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_CONTAINER_ENDPOINT: &str = "http://169.254.170.2";

/// The EC2 instance metadata service (`AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides it).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// The IMDS address on IPv6-only instances (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`).
const IMDS_ENDPOINT_IPV6: &str = "http://[fd00:ec2::254]";

/// Six hours, the SDKs' session length; we ask for a new token on every fetch anyway.
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// Credentials answers are a few hundred bytes; anything much larger is not one.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

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
    /// Base URL for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`; tests point it at a local server.
    container_endpoint: String,
    /// The clock used by [`ProvideCredentials::credentials`].
    now: fn() -> SystemTime,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    credentials: Option<Credentials>,
    /// When a refresh last failed while older keys were still in use.
    last_failure: Option<SystemTime>,
}

impl CredentialChain {
    pub fn new(env: Env, config: ConfigKeys) -> CredentialChain {
        CredentialChain {
            env,
            config,
            container_endpoint: ECS_CONTAINER_ENDPOINT.to_string(),
            now: SystemTime::now,
            cache: Mutex::new(Cache::default()),
        }
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
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = &cache.credentials {
            let recently_failed = cache.last_failure.is_some_and(|failed| {
                now.duration_since(failed)
                    .is_ok_and(|since| since < RETRY_REFRESH_AFTER)
            });
            if cached.is_fresh(now) || (recently_failed && !cached.is_expired(now)) {
                return Ok(cached.clone());
            }
        }
        match self.load() {
            Ok(fresh) => {
                cache.credentials = Some(fresh.clone());
                cache.last_failure = None;
                Ok(fresh)
            }
            Err(error) => {
                let still_valid = cache
                    .credentials
                    .as_ref()
                    .filter(|cached| !cached.is_expired(now))
                    .cloned();
                let Some(cached) = still_valid else {
                    return Err(error);
                };
                log::warn!(
                    "could not refresh AWS credentials, still using {}: {error}",
                    cached.describe()
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

    /// One pass through the chain, without the cache.
    pub fn load(&self) -> Result<Credentials> {
        let mut tried = Vec::new();
        let sources: [&dyn Fn() -> Result<Lookup>; 5] = [
            &|| from_environment(&self.env),
            &|| from_config_keys(&self.config),
            &|| from_shared_files(&self.env),
            &|| from_container(&self.env, &self.container_endpoint),
            &|| from_instance_metadata(&self.env),
        ];
        for source in sources {
            match source()? {
                Lookup::Found(credentials) => return Ok(credentials),
                Lookup::NotFound(why) => tried.push(why),
            }
        }
        Err(Error::Credentials(format!(
            "no AWS credentials found; tried {}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             put keys in the profile, or run where container or instance credentials are available",
            tried.join("; ")
        )))
    }
}

impl ProvideCredentials for CredentialChain {
    fn credentials(&self) -> Result<Credentials> {
        self.credentials_at((self.now)())
    }
}

/// What one source of the chain found.
enum Lookup {
    Found(Credentials),
    /// Nothing configured here; the text says why, for the final error.
    NotFound(String),
}

// ---------------------------------------------------------------------------
// Environment and profile config: pure.

fn from_environment(env: &Env) -> Result<Lookup> {
    const ID: &str = "AWS_ACCESS_KEY_ID";
    const SECRET: &str = "AWS_SECRET_ACCESS_KEY";
    match (env.get(ID), env.get(SECRET)) {
        (Some(id), Some(secret)) => Ok(Lookup::Found(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: env.get("AWS_SESSION_TOKEN").map(Secret::new),
            expiry: None,
            source: "environment".into(),
        })),
        (Some(_), None) => Err(half_set(ID, SECRET)),
        (None, Some(_)) => Err(half_set(SECRET, ID)),
        (None, None) => Ok(Lookup::NotFound(format!(
            "environment ({ID} and {SECRET} not set)"
        ))),
    }
}

fn half_set(present: &str, missing: &str) -> Error {
    Error::Credentials(format!(
        "{present} is set but {missing} is not; set both, or neither to use another source"
    ))
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

// ---------------------------------------------------------------------------
// Shared files: paths and profile resolution are pure; reading is at the edge.

fn from_shared_files(env: &Env) -> Result<Lookup> {
    let profile = env.get("AWS_PROFILE").unwrap_or("default");
    let paths = [
        (
            SharedFileKind::Config,
            shared_file_path(env, "AWS_CONFIG_FILE", "config"),
        ),
        (
            SharedFileKind::Credentials,
            shared_file_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        ),
    ];
    if paths.iter().all(|(_, path)| path.is_none()) {
        return Ok(Lookup::NotFound("shared files (HOME not set)".into()));
    }
    let mut texts = Vec::new();
    let mut missing = Vec::new();
    for (kind, path) in paths {
        let Some(path) = path else { continue };
        match read_if_present(&path)? {
            Some(text) => texts.push((kind, path, text)),
            None => missing.push(path.display().to_string()),
        }
    }
    if texts.is_empty() {
        return Ok(Lookup::NotFound(format!(
            "shared files ({} not found)",
            missing.join(" and ")
        )));
    }
    let files: Vec<SharedFile<'_>> = texts
        .iter()
        .map(|(kind, path, text)| SharedFile {
            kind: *kind,
            path,
            text,
        })
        .collect();
    profile_credentials(profile, &files)
}

/// `~/.aws/NAME`, or the file named by `var` (a leading `~` is the home directory).
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SharedFileKind {
    Credentials,
    Config,
}

impl SharedFileKind {
    fn label(self) -> &'static str {
        match self {
            SharedFileKind::Credentials => "credentials",
            SharedFileKind::Config => "config",
        }
    }

    /// The profile a section header names: in the credentials file the header
    /// is the profile, in the config file it is `[profile NAME]` or `[default]`.
    fn profile_of(self, section: &str) -> Option<&str> {
        match self {
            SharedFileKind::Credentials => Some(section),
            SharedFileKind::Config if section == "default" => Some(section),
            SharedFileKind::Config => section
                .strip_prefix("profile")
                .filter(|rest| rest.starts_with(char::is_whitespace))
                .map(str::trim),
        }
    }
}

/// A shared file as read from disk.
struct SharedFile<'a> {
    kind: SharedFileKind,
    path: &'a Path,
    text: &'a str,
}

/// Profile keys that select a mechanism we do not implement, and how to name it.
const UNSUPPORTED_AFTER_STATIC_KEYS: [(&str, &str); 7] = [
    (
        "web_identity_token_file",
        "web identity (web_identity_token_file)",
    ),
    ("sso_session", "IAM Identity Center (sso_session)"),
    ("sso_start_url", "IAM Identity Center (sso_start_url)"),
    ("sso_account_id", "IAM Identity Center (sso_account_id)"),
    ("sso_role_name", "IAM Identity Center (sso_role_name)"),
    ("credential_process", "credential_process"),
    ("login_session", "console login (login_session)"),
];

/// Finds `profile` in the shared files and returns its static keys.
///
/// The files' keys for the profile are merged, the credentials file winning,
/// as in the SDKs. `role_arn` takes precedence over static keys there (they
/// would be the source of an assume-role call), so it is refused first.
fn profile_credentials(profile: &str, files: &[SharedFile<'_>]) -> Result<Lookup> {
    let in_precedence_order = files
        .iter()
        .filter(|f| f.kind == SharedFileKind::Config)
        .chain(
            files
                .iter()
                .filter(|f| f.kind == SharedFileKind::Credentials),
        );
    let mut parsed = Vec::new();
    for file in in_precedence_order {
        let ini = parse_ini(file.text).map_err(|e| {
            Error::Credentials(format!(
                "shared {} file {}: {e}",
                file.kind.label(),
                file.path.display()
            ))
        })?;
        parsed.push((file, ini));
    }

    let mut merged: BTreeMap<&str, (&str, &SharedFile<'_>)> = BTreeMap::new();
    let mut found_in = Vec::new();
    for (file, ini) in &parsed {
        for (section, keys) in ini {
            if file.kind.profile_of(section) != Some(profile) {
                continue;
            }
            found_in.push(file.path.display().to_string());
            for (key, value) in keys {
                merged.insert(key, (value.trim(), file));
            }
        }
    }
    let searched: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    if found_in.is_empty() {
        return Ok(Lookup::NotFound(format!(
            "shared files (no profile {profile} in {})",
            searched.join(" or ")
        )));
    }
    found_in.dedup();

    let get = |key: &str| {
        merged
            .get(key)
            .copied()
            .filter(|(value, _)| !value.is_empty())
    };
    let unsupported = |file: &SharedFile<'_>, mechanism: &str| {
        Error::Credentials(format!(
            "profile {profile} in {} uses {mechanism}, which sqs-archive does not support; \
             put aws_access_key_id and aws_secret_access_key in the profile, or export them as \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`aws configure export-credentials \
             --format env` prints them), or choose another profile with AWS_PROFILE",
            file.path.display()
        ))
    };

    if let Some((_, file)) = get("role_arn") {
        return Err(unsupported(file, "assume role (role_arn)"));
    }
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some((id, file)), Some((secret, _))) => {
            return Ok(Lookup::Found(Credentials {
                access_key_id: id.to_string(),
                secret_access_key: Secret::new(secret),
                session_token: get("aws_session_token").map(|(token, _)| Secret::new(token)),
                expiry: None,
                source: format!(
                    "shared {} file {} (profile {profile})",
                    file.kind.label(),
                    file.path.display()
                ),
            }));
        }
        (Some((_, file)), None) | (None, Some((_, file))) => {
            let missing = if get("aws_access_key_id").is_some() {
                "aws_secret_access_key"
            } else {
                "aws_access_key_id"
            };
            return Err(Error::Credentials(format!(
                "profile {profile} in {} has no {missing}; both keys are needed",
                file.path.display()
            )));
        }
        (None, None) => {}
    }
    for (key, mechanism) in UNSUPPORTED_AFTER_STATIC_KEYS {
        if let Some((_, file)) = get(key) {
            return Err(unsupported(file, mechanism));
        }
    }
    Ok(Lookup::NotFound(format!(
        "shared files (profile {profile} in {} has no keys)",
        found_in.join(" and ")
    )))
}

/// An INI file: section name → key (lower case) → value. A repeated section
/// or key adds to or replaces the earlier one, as in the SDKs.
type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Why an INI file could not be read. Holds the line number only: the line
/// itself may be a secret key.
#[derive(Debug, PartialEq, Eq)]
struct IniError {
    line: usize,
    message: &'static str,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses the AWS shared-file dialect of INI: `[section]` headers,
/// `key = value` lines, whole-line comments starting with `#` or `;`, the same
/// after a value when preceded by whitespace. As in the SDKs, an indented
/// line right after a setting continues its value (that is how nested
/// settings such as `s3 =` are written); anywhere else indentation is ignored.
fn parse_ini(text: &str) -> std::result::Result<Ini, IniError> {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message| IniError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let (Some(name), Some(key)) = (&section, &last_key)
            && let Some(value) = ini.get_mut(name).and_then(|keys| keys.get_mut(key))
        {
            value.push('\n');
            value.push_str(strip_inline_comment(trimmed));
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let (name, rest) = header
                .split_once(']')
                .ok_or_else(|| error("section header without `]`"))?;
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with(['#', ';']) {
                return Err(error("unexpected text after the section header"));
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(error("empty section name"));
            }
            ini.entry(name.to_string()).or_default();
            section = Some(name.to_string());
            last_key = None;
            continue;
        }
        let Some(name) = &section else {
            return Err(error("setting before any [section]"));
        };
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| error("expected `name = value`"))?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(error("setting without a name"));
        }
        let value = strip_inline_comment(value.trim()).to_string();
        ini.entry(name.clone())
            .or_default()
            .insert(key.clone(), value);
        last_key = Some(key);
    }
    Ok(ini)
}

/// Cuts a ` # comment` or ` ; comment` off a value; `#` inside a word stays.
fn strip_inline_comment(value: &str) -> &str {
    let cut = value
        .char_indices()
        .zip(value.chars().skip(1))
        .find(|((_, c), next)| c.is_whitespace() && matches!(next, '#' | ';'))
        .map_or(value.len(), |((at, _), _)| at);
    value[..cut].trim_end()
}

// ---------------------------------------------------------------------------
// Container credentials (ECS, EKS Pod Identity).

fn from_container(env: &Env, ecs_endpoint: &str) -> Result<Lookup> {
    let Some(url) = container_url(env, ecs_endpoint)? else {
        return Ok(Lookup::NotFound(
            "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and \
             AWS_CONTAINER_CREDENTIALS_FULL_URI not set)"
                .into(),
        ));
    };
    let failed =
        |why: String| Error::Credentials(format!("container credentials from {url}: {why}"));
    let authorization = container_authorization(env)?;
    let mut headers = Vec::new();
    if let Some(token) = &authorization {
        headers.push(("authorization", token.expose()));
    }
    let agent = metadata_agent(Duration::from_secs(2), Duration::from_secs(5));
    let answer = send(&agent, Method::Get, &url, &headers).map_err(failed)?;
    if !(200..300).contains(&answer.status) {
        // The body is not quoted: an endpoint may echo what it was sent.
        return Err(failed(format!("HTTP {}", answer.status)));
    }
    parse_credentials_answer(&answer.body, "container credentials".into())
        .map(Lookup::Found)
        .map_err(failed)
}

/// The URL to fetch container credentials from, if the environment names one.
/// The relative URI wins over the full one, as in the SDKs.
fn container_url(env: &Env, ecs_endpoint: &str) -> Result<Option<String>> {
    if let Some(relative) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let slash = if relative.starts_with('/') { "" } else { "/" };
        let base = ecs_endpoint.trim_end_matches('/');
        return Ok(Some(format!("{base}{slash}{relative}")));
    }
    let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return Ok(None);
    };
    check_full_uri(full).map_err(|why| {
        Error::Credentials(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {full}: {why}; allowed are https URLs, and http \
             to a loopback address, 169.254.170.2 (ECS) or 169.254.170.23 / fd00:ec2::23 (EKS)"
        ))
    })?;
    Ok(Some(full.to_string()))
}

/// Whether the SDKs would fetch credentials from this full URI. Plain http
/// could hand the authorization token and the keys to anyone on the path, so
/// it is limited to hosts that never leave the machine or the task.
fn check_full_uri(uri: &str) -> std::result::Result<(), &'static str> {
    let (scheme, rest) = uri.split_once("://").ok_or("not an absolute URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user information in the URL is not allowed");
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').ok_or("malformed IPv6 host")?.0,
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("no host");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if is_container_host(host) => Ok(()),
        "http" => Err("plain http to this host is not allowed"),
        _ => Err("the scheme must be http or https"),
    }
}

fn is_container_host(host: &str) -> bool {
    const ECS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
    const EKS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
    const EKS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip == ECS || ip == EKS,
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip == EKS_V6,
        Err(_) => false,
    }
}

/// The `Authorization` header value: the token file (re-read on every fetch,
/// because EKS rotates it) wins over the token variable, as in the SDKs.
fn container_authorization(env: &Env) -> Result<Option<Secret>> {
    let (origin, token) = if let Some(path) = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            Secret::new(text.trim()),
        )
    } else if let Some(token) = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            Secret::new(token.trim()),
        )
    } else {
        return Ok(None);
    };
    if token.expose().chars().any(char::is_control) {
        return Err(Error::Credentials(format!(
            "{origin}: the authorization token contains a line break or another control character"
        )));
    }
    Ok(Some(token).filter(|t| !t.is_empty()))
}

// ---------------------------------------------------------------------------
// EC2 instance metadata (IMDSv2).

fn from_instance_metadata(env: &Env) -> Result<Lookup> {
    if env
        .get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Ok(Lookup::NotFound(
            "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)".into(),
        ));
    }
    let endpoint = imds_endpoint(env);
    match fetch_instance_credentials(&endpoint) {
        Ok(credentials) => Ok(Lookup::Found(credentials)),
        Err(why) => Ok(Lookup::NotFound(format!(
            "instance metadata ({endpoint}: {why})"
        ))),
    }
}

fn imds_endpoint(env: &Env) -> String {
    let endpoint = match env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        Some(endpoint) => endpoint,
        None if env
            .get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
            .is_some_and(|mode| mode.eq_ignore_ascii_case("ipv6")) =>
        {
            IMDS_ENDPOINT_IPV6
        }
        None => IMDS_ENDPOINT,
    };
    endpoint.trim_end_matches('/').to_string()
}

/// The token, the role name, then the role's credentials. Timeouts are short
/// because most machines that get this far have no metadata service at all.
fn fetch_instance_credentials(endpoint: &str) -> std::result::Result<Credentials, String> {
    let agent = metadata_agent(Duration::from_secs(1), Duration::from_secs(2));
    let roles_url = format!("{endpoint}/latest/meta-data/iam/security-credentials/");

    let answer = send(
        &agent,
        Method::Put,
        &format!("{endpoint}/latest/api/token"),
        &[(
            "x-aws-ec2-metadata-token-ttl-seconds",
            IMDS_TOKEN_TTL_SECONDS,
        )],
    )?;
    match answer.status {
        200 => {}
        403 => {
            return Err(
                "the token request was refused (HTTP 403): IMDS is turned off for this instance"
                    .into(),
            );
        }
        status => return Err(format!("the token request answered HTTP {status}")),
    }
    let token = Secret::new(answer.body.trim());
    let token_header = [("x-aws-ec2-metadata-token", token.expose())];

    let answer = send(&agent, Method::Get, &roles_url, &token_header)?;
    match answer.status {
        200 => {}
        404 => return Err("no IAM role is attached to this instance".into()),
        status => return Err(format!("the role list answered HTTP {status}")),
    }
    let role = answer
        .body
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or("no IAM role is attached to this instance")?;
    if !is_role_name(role) {
        return Err("the role list does not hold an IAM role name".into());
    }

    let answer = send(
        &agent,
        Method::Get,
        &format!("{roles_url}{role}"),
        &token_header,
    )?;
    if answer.status != 200 {
        return Err(format!(
            "the credentials of role {role} answered HTTP {}",
            answer.status
        ));
    }
    parse_credentials_answer(&answer.body, format!("instance metadata (role {role})"))
        .map_err(|why| format!("role {role}: {why}"))
}

/// IAM role names are `[\w+=,.@-]{1,64}`; anything else must not reach a URL path.
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// Reads the JSON answer of the container and instance metadata endpoints:
/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`, plus `Code`
/// from IMDS. The error never quotes the body, which holds the secret.
fn parse_credentials_answer(
    body: &str,
    source: String,
) -> std::result::Result<Credentials, String> {
    let document: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "the answer is not JSON (error at line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let field = |name: &str| {
        document
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
    };
    if let Some(code) = field("Code")
        && code != "Success"
    {
        let shown = if code.chars().all(|c| c.is_ascii_alphanumeric()) && code.len() <= 64 {
            code
        } else {
            "(not shown)"
        };
        return Err(format!("the answer reports failure, Code {shown}"));
    }
    let access_key_id = field("AccessKeyId").ok_or("the answer has no AccessKeyId")?;
    let secret = field("SecretAccessKey").ok_or("the answer has no SecretAccessKey")?;
    let expiry = match field("Expiration") {
        Some(text) => Some(
            crate::time::parse_rfc3339(text)
                .ok_or("the answer's Expiration is not an RFC 3339 time")?,
        ),
        None => None,
    };
    Ok(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: field("Token").map(Secret::new),
        expiry,
        source,
    })
}

// ---------------------------------------------------------------------------
// HTTP to the metadata endpoints: the one place this module talks to ureq.

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
}

/// A status and a body, whatever the status.
struct Answer {
    status: u16,
    body: String,
}

fn metadata_agent(connect: Duration, total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        // A proxy would see the token and the keys; a redirect could carry
        // the authorization header to another host.
        .proxy(None)
        .max_redirects(0)
        .build()
        .into()
}

/// One request, retried once on a transport error or a 5xx: enough for a
/// dropped connection, few enough that a missing endpoint fails in seconds.
fn send(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Answer, String> {
    match send_once(agent, method, url, headers) {
        Ok(answer) if answer.status < 500 => Ok(answer),
        _ => send_once(agent, method, url, headers),
    }
}

fn send_once(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Answer, String> {
    let response = match method {
        Method::Get => headers
            .iter()
            .fold(agent.get(url), |request, (name, value)| {
                request.header(*name, *value)
            })
            .call(),
        Method::Put => headers
            .iter()
            .fold(agent.put(url), |request, (name, value)| {
                request.header(*name, *value)
            })
            .send_empty(),
    };
    // ureq's error text names the failure (refused, timeout), never a header.
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(Answer { status, body })
}

fn read_if_present(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

// ---------------------------------------------------------------------------
// Small pure helpers: key masking and RFC 3339 times.

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
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Instant;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

    fn at(text: &str) -> SystemTime {
        crate::time::parse_rfc3339(text).unwrap()
    }

    /// An environment that cannot reach the developer's own AWS setup: no
    /// HOME with an `.aws`, no instance metadata. Tests add what they need.
    fn env(pairs: &[(&str, &str)]) -> Env {
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

    fn chain(pairs: &[(&str, &str)]) -> CredentialChain {
        CredentialChain::new(env(pairs), ConfigKeys::default())
    }

    fn credentials_json(key: &str, expiration: &str) -> String {
        format!(
            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{SECRET}","Token":"{TOKEN}","Expiration":"{expiration}"}}"#
        )
    }

    /// A directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "sqs-archive-credentials-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(path.join(".aws")).unwrap();
            TempDir(path)
        }

        fn write(&self, relative: &str, text: &str) -> PathBuf {
            let path = self.0.join(relative);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn home(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A request as the fake server saw it.
    #[derive(Debug)]
    struct SeenRequest {
        method: String,
        path: String,
        headers: Vec<(String, String)>,
    }

    impl SeenRequest {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// An HTTP server on 127.0.0.1 that gives each connection the next canned
    /// answer and stops when they are used up, when told to, or after a few
    /// seconds, whichever comes first; it never outlives its test.
    struct FakeServer {
        base: String,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<Vec<SeenRequest>>>,
    }

    impl FakeServer {
        fn start(answers: Vec<(u16, String)>) -> FakeServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            let thread = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut answers = answers.into_iter().peekable();
                let mut seen = Vec::new();
                while answers.peek().is_some()
                    && !stopped.load(Ordering::SeqCst)
                    && Instant::now() < deadline
                {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (status, body) = answers.next().unwrap();
                            if let Some(request) = answer(stream, status, &body) {
                                seen.push(request);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
                seen
            });
            FakeServer {
                base,
                stop,
                thread: Some(thread),
            }
        }

        /// Stops the server and returns the requests it answered.
        fn requests(mut self) -> Vec<SeenRequest> {
            self.stop.store(true, Ordering::SeqCst);
            self.thread.take().unwrap().join().unwrap()
        }
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn answer(mut stream: TcpStream, status: u16, body: &str) -> Option<SeenRequest> {
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        let head_end = loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            received.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let (method, path) = (request_line.next()?, request_line.next()?);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body_seen = received.len() - head_end - 4;
        while body_seen < length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body_seen += n;
        }
        let reply = format!(
            "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).ok()?;
        Some(SeenRequest {
            method: method.to_string(),
            path: path.to_string(),
            headers,
        })
    }

    /// A loopback address where nothing listens: connections are refused at once.
    fn closed_port() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{address}")
    }

    fn imds_answers(token: &str, role: &str, credentials: String) -> Vec<(u16, String)> {
        vec![
            (200, token.to_string()),
            (200, format!("{role}\n")),
            (200, credentials),
        ]
    }

    fn credentials_error(result: Result<Credentials>) -> String {
        match result {
            Err(Error::Credentials(message)) => message,
            Err(other) => panic!("expected a credentials error, got {other}"),
            Ok(credentials) => panic!("expected an error, got {credentials:?}"),
        }
    }

    #[test]
    fn access_key_id_is_masked() {
        assert_eq!(mask_access_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_access_key_id("AKIDSHORT"), "…");
        assert_eq!(mask_access_key_id(""), "…");
    }

    // --- INI ---------------------------------------------------------------

    #[test]
    fn ini_reads_sections_keys_comments_and_whitespace() {
        let text = "# leading comment\n\
                    ; another\n\
                    \n\
                    [default]\n\
                    \tAWS_Secret_Access_Key  =  with spaces = and equals  \n\
                    aws_access_key_id=AKIDDEFAULT\n\
                    region = eu-west-1 # trailing comment\n\
                    [ profile  dev ]   ; comment after header\n\
                    output = json;not-a-comment\n\
                    empty =\n";
        // The indented setting follows a header, so it is not a continuation.
        let ini = parse_ini(text).unwrap();
        let default = &ini["default"];
        assert_eq!(default["aws_access_key_id"], "AKIDDEFAULT");
        assert_eq!(default["aws_secret_access_key"], "with spaces = and equals");
        assert_eq!(default["region"], "eu-west-1");
        let dev = &ini["profile  dev"];
        assert_eq!(dev["output"], "json;not-a-comment");
        assert_eq!(dev["empty"], "");
        assert_eq!(
            SharedFileKind::Config.profile_of("profile  dev"),
            Some("dev")
        );
        assert_eq!(SharedFileKind::Config.profile_of("profiledev"), None);
        assert_eq!(SharedFileKind::Config.profile_of("dev"), None);
        assert_eq!(
            SharedFileKind::Config.profile_of("default"),
            Some("default")
        );
        assert_eq!(SharedFileKind::Credentials.profile_of("dev"), Some("dev"));
    }

    #[test]
    fn ini_appends_continuation_lines_and_merges_repeated_sections() {
        let text = "[default]\ns3 =\n  max_concurrent_requests = 10 # why not\n  addressing_style = path\nregion = a\n[default]\nregion = b\n";
        let ini = parse_ini(text).unwrap();
        assert_eq!(
            ini["default"]["s3"],
            "\nmax_concurrent_requests = 10\naddressing_style = path"
        );
        assert_eq!(ini["default"]["region"], "b");
    }

    #[test]
    fn ini_errors_name_the_line_but_not_its_text() {
        let check = |text: &str, line: usize| {
            let error = parse_ini(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}");
            assert!(!error.to_string().contains("SECRETLINE"), "{error}");
        };
        check("aws_secret_access_key = SECRETLINE\n", 1);
        check("[default]\n\nSECRETLINE\n", 3);
        check("[default\nx = SECRETLINE\n", 1);
        check("[default] SECRETLINE\n", 1);
        check("[]\n", 1);
        check("[default]\n = SECRETLINE\n", 2);
    }

    // --- Environment and profile config ---------------------------------------

    #[test]
    fn environment_keys_come_first() {
        let mut chain = chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
        ]);
        chain.config = ConfigKeys {
            access_key_id: Some("AKIACONFIGFILE01".into()),
            secret_access_key: Some(Secret::new("other")),
            session_token: None,
            origin: "config/aws.json".into(),
        };
        let creds = chain.credentials().unwrap();
        assert_eq!(creds.access_key_id, "AKIAENVIRONMENT1");
        assert_eq!(creds.secret_access_key.expose(), SECRET);
        assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
        assert_eq!(creds.expiry, None);
        assert_eq!(creds.source, "environment");
    }

    #[test]
    fn environment_with_one_key_names_the_missing_variable() {
        let message = credentials_error(chain(&[("AWS_ACCESS_KEY_ID", "AKIAONLY")]).load());
        assert!(
            message.contains("AWS_SECRET_ACCESS_KEY is not"),
            "{message}"
        );
        let message = credentials_error(chain(&[("AWS_SECRET_ACCESS_KEY", SECRET)]).load());
        assert!(message.contains("AWS_ACCESS_KEY_ID is not"), "{message}");
        assert!(!message.contains(SECRET));
    }

    #[test]
    fn environment_session_token_alone_is_ignored() {
        let message = credentials_error(chain(&[("AWS_SESSION_TOKEN", TOKEN)]).load());
        assert!(message.starts_with("no AWS credentials found"), "{message}");
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

    // --- Shared files ----------------------------------------------------------

    #[test]
    fn shared_credentials_file_default_profile() {
        let dir = TempDir::new("shared-default");
        let path = dir.write(
            ".aws/credentials",
            &format!(
                "[other]\naws_access_key_id = AKIAOTHERPROFILE\naws_secret_access_key = x\n\n\
                 [default]\naws_access_key_id = AKIASHAREDDEFAULT\naws_secret_access_key = {SECRET}\n\
                 aws_session_token = {TOKEN}\n"
            ),
        );
        dir.write(".aws/config", "[default]\nregion = eu-west-1\n");
        let creds = chain(&[("HOME", &dir.home())]).credentials().unwrap();
        assert_eq!(creds.access_key_id, "AKIASHAREDDEFAULT");
        assert_eq!(creds.secret_access_key.expose(), SECRET);
        assert_eq!(creds.session_token.unwrap().expose(), TOKEN);
        assert_eq!(
            creds.source,
            format!(
                "shared credentials file {} (profile default)",
                path.display()
            )
        );
    }

    #[test]
    fn shared_config_file_named_profile_from_overridden_paths() {
        let dir = TempDir::new("shared-named");
        let config = dir.write(
            "my-config",
            &format!(
                "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = x\n\
                 [profile dev]\naws_access_key_id = AKIACONFIGDEV0001\naws_secret_access_key = {SECRET}\n"
            ),
        );
        let creds = chain(&[
            ("HOME", &dir.home()),
            ("AWS_PROFILE", "dev"),
            ("AWS_CONFIG_FILE", "~/my-config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/missing-credentials"),
        ])
        .credentials()
        .unwrap();
        assert_eq!(creds.access_key_id, "AKIACONFIGDEV0001");
        assert_eq!(
            creds.source,
            format!("shared config file {} (profile dev)", config.display())
        );
    }

    #[test]
    fn shared_credentials_file_wins_over_config_file() {
        let dir = TempDir::new("shared-precedence");
        dir.write(
            ".aws/config",
            "[profile dev]\naws_access_key_id = AKIAFROMCONFIG01\naws_secret_access_key = a\n",
        );
        dir.write(
            ".aws/credentials",
            "[dev]\naws_access_key_id = AKIAFROMCREDENTIALS\naws_secret_access_key = b\n",
        );
        let creds = chain(&[("HOME", &dir.home()), ("AWS_PROFILE", "dev")])
            .credentials()
            .unwrap();
        assert_eq!(creds.access_key_id, "AKIAFROMCREDENTIALS");
        assert_eq!(creds.secret_access_key.expose(), "b");
    }

    #[test]
    fn shared_profile_with_other_mechanisms_is_refused_by_name() {
        let dir = TempDir::new("shared-unsupported");
        let config = dir.write(
            ".aws/config",
            "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n\
             [profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n\
             [profile process]\ncredential_process = /bin/echo\n\
             [profile half]\naws_access_key_id = AKIAHALFPROFILE1\n",
        );
        // role_arn wins even over static keys in the credentials file.
        dir.write(
            ".aws/credentials",
            "[role]\naws_access_key_id = AKIAROLESOURCE01\naws_secret_access_key = s\n",
        );
        for (profile, expected) in [
            ("role", "assume role (role_arn)"),
            ("sso", "IAM Identity Center (sso_session)"),
            ("process", "credential_process"),
        ] {
            let message =
                credentials_error(chain(&[("HOME", &dir.home()), ("AWS_PROFILE", profile)]).load());
            assert!(
                message.contains(&format!("profile {profile} in ")),
                "{message}"
            );
            assert!(message.contains(&config.display().to_string()), "{message}");
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("does not support"), "{message}");
        }
        let message =
            credentials_error(chain(&[("HOME", &dir.home()), ("AWS_PROFILE", "half")]).load());
        assert!(
            message.contains("has no aws_secret_access_key"),
            "{message}"
        );
    }

    #[test]
    fn shared_files_without_the_profile_are_listed() {
        let dir = TempDir::new("shared-missing");
        dir.write(".aws/config", "[profile dev]\nregion = eu-west-1\n");
        let message =
            credentials_error(chain(&[("HOME", &dir.home()), ("AWS_PROFILE", "prod")]).load());
        assert!(message.contains("no profile prod in"), "{message}");
        let message =
            credentials_error(chain(&[("HOME", &dir.home()), ("AWS_PROFILE", "dev")]).load());
        assert!(message.contains("profile dev in"), "{message}");
        assert!(message.contains("has no keys"), "{message}");
    }

    #[test]
    fn shared_file_syntax_error_names_file_and_line() {
        let dir = TempDir::new("shared-syntax");
        let path = dir.write(".aws/credentials", &format!("[default]\n{SECRET}\n"));
        let message = credentials_error(chain(&[("HOME", &dir.home())]).load());
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
    }

    // --- Container credentials ------------------------------------------------

    #[test]
    fn container_relative_uri_sends_the_authorization_token() {
        let server = FakeServer::start(vec![(
            200,
            credentials_json("AKIACONTAINER0001", "2026-11-28T18:00:00Z"),
        )]);
        let chain = chain(&[
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/task-1",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-from-variable"),
        ])
        .with_container_endpoint(server.base.clone());
        let creds = chain.credentials_at(at("2026-11-28T12:00:00Z")).unwrap();
        assert_eq!(creds.access_key_id, "AKIACONTAINER0001");
        assert_eq!(creds.secret_access_key.expose(), SECRET);
        assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
        assert_eq!(creds.expiry, Some(at("2026-11-28T18:00:00Z")));
        assert_eq!(creds.source, "container credentials");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "GET");
        assert_eq!(requests[0].path, "/v2/credentials/task-1");
        assert_eq!(
            requests[0].header("authorization"),
            Some("auth-from-variable")
        );
    }

    #[test]
    fn container_full_uri_reads_the_token_file() {
        let dir = TempDir::new("container-token");
        let token_file = dir.write("token", "auth-from-file\n");
        let server = FakeServer::start(vec![(
            200,
            credentials_json("AKIAPODIDENTITY01", "2026-11-28T18:00:00Z"),
        )]);
        let full_uri = format!("{}/v1/credentials", server.base);
        let creds = chain(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "loses-to-the-file"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                &token_file.display().to_string(),
            ),
        ])
        .credentials_at(at("2026-11-28T12:00:00Z"))
        .unwrap();
        assert_eq!(creds.access_key_id, "AKIAPODIDENTITY01");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].path, "/v1/credentials");
        assert_eq!(requests[0].header("authorization"), Some("auth-from-file"));
    }

    #[test]
    fn container_full_uri_allows_http_only_to_local_and_container_hosts() {
        for allowed in [
            "http://127.0.0.1:8080/creds",
            "http://127.3.4.5/creds",
            "http://localhost/creds",
            "http://LOCALHOST:1234",
            "http://[::1]:80/creds",
            "http://169.254.170.2/v2/credentials",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://credentials.example.com/creds",
        ] {
            assert_eq!(check_full_uri(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "http://169.254.169.254/latest/meta-data",
            "http://example.com/creds",
            "http://127.0.0.1.example.com/creds",
            "http://user@127.0.0.1/creds",
            "http://10.0.0.1/creds",
            "ftp://127.0.0.1/creds",
            "127.0.0.1/creds",
            "http:///creds",
            "http://[::1/creds",
        ] {
            assert!(check_full_uri(refused).is_err(), "{refused}");
        }
        // Refused before any connection is attempted.
        let message = credentials_error(
            chain(&[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://example.com/creds",
            )])
            .load(),
        );
        assert!(
            message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            "{message}"
        );
        assert!(message.contains("not allowed"), "{message}");
    }

    #[test]
    fn container_error_status_does_not_quote_the_body() {
        let body = format!(r#"{{"message":"denied","echo":"{SECRET}"}}"#);
        let server = FakeServer::start(vec![(500, body.clone()), (500, body)]);
        let chain = chain(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )])
        .with_container_endpoint(server.base.clone());
        let message = credentials_error(chain.load());
        assert!(message.contains("container credentials from"), "{message}");
        assert!(message.contains("HTTP 500"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
        // One retry, then the error.
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn bad_credentials_json_does_not_quote_the_body() {
        let truncated =
            format!(r#"{{"AccessKeyId":"AKIATRUNCATED001","SecretAccessKey":"{SECRET}""#);
        let no_id = format!(r#"{{"SecretAccessKey":"{SECRET}","Token":"{TOKEN}"}}"#);
        let bad_time = format!(
            r#"{{"AccessKeyId":"AKIABADTIME00001","SecretAccessKey":"{SECRET}","Expiration":"{TOKEN}"}}"#
        );
        let failed = format!(r#"{{"Code":"{SECRET}","AccessKeyId":"A","SecretAccessKey":"B"}}"#);
        for (body, expected) in [
            (truncated.as_str(), "not JSON"),
            (no_id.as_str(), "no AccessKeyId"),
            (bad_time.as_str(), "Expiration"),
            (failed.as_str(), "reports failure"),
        ] {
            let message = parse_credentials_answer(body, "test".into()).unwrap_err();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains(SECRET), "{message}");
            assert!(!message.contains(TOKEN), "{message}");
        }

        let server = FakeServer::start(vec![(200, truncated)]);
        let message = credentials_error(
            chain(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")])
                .with_container_endpoint(server.base.clone())
                .load(),
        );
        assert!(message.contains("not JSON"), "{message}");
        assert!(!message.contains(SECRET), "{message}");
    }

    // --- Instance metadata -----------------------------------------------------

    #[test]
    fn imds_v2_fetches_token_role_and_credentials() {
        let server = FakeServer::start(imds_answers(
            "imds-session-token",
            "my-role",
            credentials_json("AKIAINSTANCE00001", "2026-11-28T18:00:00Z"),
        ));
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                &format!("{}/", server.base),
            ),
        ]);
        let creds = chain.credentials_at(at("2026-11-28T12:00:00Z")).unwrap();
        assert_eq!(creds.access_key_id, "AKIAINSTANCE00001");
        assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
        assert_eq!(creds.expiry, Some(at("2026-11-28T18:00:00Z")));
        assert_eq!(creds.source, "instance metadata (role my-role)");

        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].method, "PUT");
        assert_eq!(requests[0].path, "/latest/api/token");
        assert_eq!(
            requests[0].header("x-aws-ec2-metadata-token-ttl-seconds"),
            Some("21600")
        );
        assert_eq!(requests[1].method, "GET");
        assert_eq!(
            requests[1].path,
            "/latest/meta-data/iam/security-credentials/"
        );
        assert_eq!(requests[2].method, "GET");
        assert_eq!(
            requests[2].path,
            "/latest/meta-data/iam/security-credentials/my-role"
        );
        for request in &requests[1..] {
            assert_eq!(
                request.header("x-aws-ec2-metadata-token"),
                Some("imds-session-token")
            );
        }
    }

    #[test]
    fn imds_disabled_sends_no_request() {
        let server = FakeServer::start(imds_answers(
            "t",
            "r",
            credentials_json("AKIAINSTANCE00001", "2026-11-28T18:00:00Z"),
        ));
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "TRUE"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
        ]);
        let message = credentials_error(chain.load());
        assert!(
            message.contains("instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"),
            "{message}"
        );
        assert!(server.requests().is_empty());
    }

    #[test]
    fn imds_without_a_role_is_listed() {
        let server = FakeServer::start(vec![(200, "t".into()), (404, String::new())]);
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
        ]);
        let message = credentials_error(chain.load());
        assert!(
            message.contains("no IAM role is attached to this instance"),
            "{message}"
        );
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn imds_unreachable_fails_fast_and_is_listed() {
        let endpoint = closed_port();
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
        ]);
        let started = Instant::now();
        let message = credentials_error(chain.load());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            message.contains(&format!("instance metadata ({endpoint}: ")),
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
        let server = FakeServer::start(answers);
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
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
        let server = FakeServer::start(answers);
        fn noon() -> SystemTime {
            crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
        }
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
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
        let server = FakeServer::start(imds_answers(
            "t1",
            "my-role",
            credentials_json("AKIAFIRSTKEY00001", "2026-11-28T12:02:00Z"),
        ));
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
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
        let server = FakeServer::start(imds_answers(
            "imds-session-token",
            "my-role",
            credentials_json("AKIAIOSFODNN7EXAMPLE", "2026-11-28T18:00:00Z"),
        ));
        fn noon() -> SystemTime {
            crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
        }
        let chain = chain(&[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.base),
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
