//! The resolved configuration ([`Settings`]) and how it is loaded: `.env`,
//! the profile file, the environment and the flags, through the key table.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Map;

use super::keys::*;
use super::layers::*;
pub use super::sources::SYSTEM_CONFIG_DIR;
use super::sources::*;
use crate::aws::credentials::ConfigKeys;
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::s3::address::AddressingStyle;
use crate::s3::multipart::MultipartConfig;
use crate::s3::request::{Encryption, StorageClass};
use crate::secret::Secret;
use crate::sqs::Protocol;

/// Which queue service to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Amazon SQS or an emulator, over HTTP.
    Sqs,
    /// The durable directory queue (`mock_dir`); needs no AWS account.
    Mock,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: Backend,
    pub request_queue_url: Option<String>,
    pub completion_queue_url: Option<String>,
    /// The region set by a flag, the environment or the profile file; see
    /// [`crate::config::Target::resolve`] for the rest of the search.
    pub region: Option<crate::aws::endpoint::Region>,
    /// The shared-file profile (`aws_profile`, `AWS_PROFILE`, `--aws-profile`).
    pub aws_profile: Option<String>,
    /// Who named it, as the user wrote it: `AWS_PROFILE`, `--aws-profile`
    /// or `aws_profile` (a named profile must exist).
    pub aws_profile_by: Option<String>,
    pub endpoint_url: Option<String>,
    pub protocol: Protocol,
    pub config_keys: ConfigKeys,
    pub schema_file: Option<PathBuf>,
    pub max_number_of_messages: u32,
    pub wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub max_attempts: u32,
    pub http_timeout: Duration,
    pub max_message_size: usize,
    pub mock_dir: PathBuf,
    pub workers: usize,
    pub handler: Option<Vec<String>>,
    pub handler_timeout: Duration,
    pub kill_grace: Duration,
    pub shutdown_grace: Duration,
    pub max_receive_count: u32,
    pub use_redrive_policy: bool,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub pass_aws_credentials_to_handler: bool,
    pub lock_file: PathBuf,
    pub log_file: Option<PathBuf>,
    pub metrics_file: Option<PathBuf>,
    pub metrics_interval: Duration,
    /// Where `sqs_archive audit` writes its metrics.
    pub audit_metrics_file: Option<PathBuf>,
    pub source_dir: PathBuf,
    pub archive_dir: PathBuf,
    /// Read archived files back after they are durable (process_message).
    pub verify: bool,
    /// The S3 destination and how objects are written there.
    pub s3: S3Settings,
    /// The environment the settings were read with (`.env` applied).
    pub env: Env,
    /// How the configuration was chosen, to pass on to `process_message`.
    pub source: Source,
    /// The profile file that was read, if any.
    pub file: Option<PathBuf>,
    /// The `.env` file that was read, if any.
    pub env_file: Option<PathBuf>,
    /// The value each key was given and by which layer; a key that is not
    /// here has its default (see [`Settings::origin`]).
    pub given: BTreeMap<K, Given>,
}

/// `archive_dir = s3://BUCKET/PREFIX`: where AIPs go in S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Location {
    /// `s3://BUCKET/PREFIX` (`None` for anything else: a directory).
    pub fn parse(value: &str) -> Option<std::result::Result<S3Location, String>> {
        let rest = value.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        let checked = crate::s3::address::check_bucket_name(bucket).and_then(|()| {
            if prefix
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
                && !prefix.is_empty()
            {
                Err(format!(
                    "the prefix {} holds an empty, . or .. component",
                    crate::text::quoted(prefix, 80)
                ))
            } else {
                Ok(S3Location {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
        });
        Some(checked)
    }

    /// The key prefix of one AIP: `PREFIX/<aipid>/`.
    pub fn aip_prefix(&self, aipid: &str) -> String {
        if self.prefix.is_empty() {
            format!("{aipid}/")
        } else {
            format!("{}/{aipid}/", self.prefix)
        }
    }

    /// `s3://BUCKET/KEY`, for messages and reports.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// How objects are written to S3 (the `s3_*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// Set when `archive_dir` is `s3://BUCKET/PREFIX`.
    pub location: Option<S3Location>,
    /// `s3_endpoint_url` (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// `None` for STANDARD (no header sent).
    pub storage_class: Option<StorageClass>,
    pub encryption: Option<Encryption>,
    pub multipart: MultipartConfig,
    /// `None` when not set here: the shared config's `s3.addressing_style` then applies.
    pub addressing: Option<AddressingStyle>,
}

fn s3_settings(layers: &Layers) -> Result<S3Settings> {
    let archive_dir = layers.text(K::archive_dir)?.unwrap_or_default();
    let location = match S3Location::parse(&archive_dir) {
        None => None,
        Some(Ok(location)) => Some(location),
        Some(Err(message)) => {
            return Err(Error::config(K::archive_dir.name(), message));
        }
    };
    let endpoint_url = layers.text(K::s3_endpoint_url)?;
    if let Some(url) = &endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(layers
            .origin_of(K::s3_endpoint_url)
            .invalid(K::s3_endpoint_url, &crate::text::url(url)));
    }
    let storage_class = match layers.choice(K::s3_storage_class)? {
        "STANDARD" => None,
        other => {
            Some(StorageClass::parse(other).map_err(|m| Error::config("s3_storage_class", m))?)
        }
    };
    let kms_key_id = layers.text(K::s3_sse_kms_key_id)?;
    let encryption = match layers.choice(K::s3_sse)? {
        "AES256" => Some(Encryption::Aes256),
        "aws:kms" => Some(Encryption::Kms { key_id: kms_key_id }),
        _ if kms_key_id.is_some() => {
            return Err(Error::config(
                K::s3_sse_kms_key_id.name(),
                "s3_sse_kms_key_id is set but s3_sse is not aws:kms",
            ));
        }
        _ => None,
    };
    let multipart = MultipartConfig {
        part_size: (layers.int(K::s3_part_size)? as usize) << 20,
        threads: layers.int(K::s3_threads)? as usize,
    };
    let style = layers.choice(K::s3_addressing_style)?;
    let addressing = match layers.raw(K::s3_addressing_style) {
        Some((serde_json::Value::String(s), _)) if !s.is_empty() => Some(
            AddressingStyle::parse(style).map_err(|m| Error::config("s3_addressing_style", m))?,
        ),
        _ => None,
    };
    Ok(S3Settings {
        location,
        endpoint_url,
        storage_class,
        encryption,
        multipart,
        addressing,
    })
}

/// Which queue a command addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRole {
    Request,
    Completion,
}

impl Settings {
    /// Reads `.env`, the profile file and the environment, and applies the flags.
    pub fn load(source: &Source, process_env: Env) -> Result<Settings> {
        let (env, env_file) = apply_env_file(source, process_env.clone())?;
        let (file, text) = match profile_path(source, &env)? {
            Some(path) => {
                let text = read_profile(&path)?;
                (Some(path), Some(text))
            }
            None => (None, None),
        };
        let mut settings = Self::resolve(source, env, file, text.as_deref())?;
        // A variable the process did not have came from the `.env` file.
        if let Some(path) = &env_file {
            for given in settings.given.values_mut() {
                if let Provenance::Variable { name, env_file } = &mut given.origin
                    && process_env.get(name).is_none()
                {
                    *env_file = Some(path.display().to_string());
                }
            }
        }
        settings.env_file = env_file;
        Ok(settings)
    }

    /// Which layer gave `key` its value.
    pub fn origin(&self, key: K) -> Provenance {
        self.given
            .get(&key)
            .map(|g| g.origin.clone())
            .unwrap_or(Provenance::Default)
    }

    /// The pure part of [`Settings::load`]: resolves from file text, environment and flags.
    pub fn resolve(
        source: &Source,
        env: Env,
        file: Option<PathBuf>,
        text: Option<&str>,
    ) -> Result<Settings> {
        refuse_retired_variables(&env)?;
        let origin = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no profile file)".into());
        let map = match text {
            Some(t) => parse_file(t, &origin)?,
            None => Map::new(),
        };
        let layers = Layers {
            file: map,
            origin: origin.clone(),
            env: &env,
            flags: &source.flags,
            read: RefCell::new(BTreeSet::new()),
            given: RefCell::new(BTreeMap::new()),
        };
        let backend = match layers.choice(K::backend)? {
            "mock" => Backend::Mock,
            _ => Backend::Sqs,
        };
        let protocol = match layers.choice(K::protocol)? {
            "json" => Protocol::Json,
            _ => Protocol::Query,
        };
        let request_queue_url = layers.text(K::request_queue_url)?;
        let completion_queue_url = layers.text(K::completion_queue_url)?;
        let region = layers
            .text_at(K::region)?
            .map(|(name, at)| crate::aws::endpoint::Region { name, origin: at.0 });
        let endpoint_url = layers.text(K::endpoint_url)?;
        if let Some(url) = &endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(layers
                .origin_of(K::endpoint_url)
                .invalid(K::endpoint_url, &crate::text::url(url)));
        }
        let wait_time_seconds = layers.int(K::wait_time_seconds)? as u32;
        let http_timeout_seconds = layers.int(K::http_timeout_seconds)?;
        let secs = |k: K| -> Result<Duration> { Ok(Duration::from_secs(layers.int(k)?)) };
        let path = |k: K| -> Result<PathBuf> { Ok(layers.text(k)?.unwrap_or_default().into()) };
        let mut settings = Settings {
            backend,
            protocol,
            region,
            aws_profile: layers.text(K::aws_profile)?,
            aws_profile_by: layers.named_by(K::aws_profile),
            endpoint_url,
            config_keys: ConfigKeys {
                access_key_id: layers.file_text(K::aws_access_key_id)?,
                secret_access_key: layers.file_text(K::aws_secret_access_key)?.map(Secret::new),
                session_token: layers.file_text(K::aws_session_token)?.map(Secret::new),
                origin: origin.clone(),
            },
            schema_file: layers.text(K::schema_file)?.map(PathBuf::from),
            max_number_of_messages: layers.int(K::max_number_of_messages)? as u32,
            wait_time_seconds,
            visibility_timeout: layers.int(K::visibility_timeout)? as u32,
            max_attempts: layers.int(K::max_attempts)? as u32,
            // Long polls hold the connection for the wait; the timeout must outlast it.
            http_timeout: Duration::from_secs(u64::from(wait_time_seconds) + http_timeout_seconds),
            max_message_size: layers.int(K::max_message_size)? as usize,
            mock_dir: path(K::mock_dir)?,
            workers: layers.int(K::workers)? as usize,
            handler: layers.argv(K::handler)?,
            handler_timeout: secs(K::handler_timeout)?,
            kill_grace: secs(K::kill_grace_seconds)?,
            shutdown_grace: secs(K::shutdown_grace_seconds)?,
            max_receive_count: layers.int(K::max_receive_count)? as u32,
            use_redrive_policy: layers.bool(K::use_redrive_policy)?,
            retry_base: secs(K::retry_base_seconds)?,
            retry_max: secs(K::retry_max_seconds)?,
            pass_aws_credentials_to_handler: layers.bool(K::pass_aws_credentials_to_handler)?,
            lock_file: path(K::lock_file)?,
            log_file: layers.text(K::log_file)?.map(PathBuf::from),
            metrics_file: layers.text(K::metrics_file)?.map(PathBuf::from),
            metrics_interval: secs(K::metrics_interval)?,
            audit_metrics_file: layers.text(K::audit_metrics_file)?.map(PathBuf::from),
            source_dir: path(K::source_dir)?,
            archive_dir: path(K::archive_dir)?,
            verify: layers.bool(K::verify)?,
            s3: s3_settings(&layers)?,
            request_queue_url,
            completion_queue_url,
            file,
            env_file: None,
            given: BTreeMap::new(),
            source: source.clone(),
            env: Env::default(),
        };
        // Every declared key is read: a key in the table that nothing uses is a bug.
        debug_assert_eq!(
            layers.read.borrow().len(),
            KEYS.len(),
            "keys declared but not read: {:?}",
            KEYS.iter()
                .filter(|k| !layers.read.borrow().contains(&k.id))
                .map(|k| k.name)
                .collect::<Vec<_>>()
        );
        settings.given = layers.given.take();
        drop(layers);
        settings.env = env;
        Ok(settings)
    }

    /// The URL of a queue, or an error that says where to set it.
    pub fn queue_url(&self, role: QueueRole) -> Result<&str> {
        let (value, key) = match role {
            QueueRole::Request => (&self.request_queue_url, K::request_queue_url),
            QueueRole::Completion => (&self.completion_queue_url, K::completion_queue_url),
        };
        value
            .as_deref()
            .ok_or_else(|| missing(key, self.file.as_deref()))
    }
}

/// Error for a required key that has no value anywhere.
pub fn missing(key: K, file: Option<&Path>) -> Error {
    let key = key.key();
    let place = match file {
        Some(f) => format!("in {}", f.display()),
        None => "in a profile (--profile NAME)".into(),
    };
    let or_env = if key.env.is_empty() {
        String::new()
    } else {
        format!(" or with {}", key.env.join(" or "))
    };
    Error::config(
        key.name,
        format!("no value: set {} {place}{or_env}", key.name),
    )
}

/// Warns when the profile file holds a secret and others may read it.
pub fn warn_if_secret_readable(settings: &Settings) {
    use std::os::unix::fs::PermissionsExt;
    let Some(file) = &settings.file else { return };
    let keys = &settings.config_keys;
    if keys.secret_access_key.is_none() && keys.session_token.is_none() {
        return;
    }
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{} holds a secret key but its mode is {:o}; run: chmod 600 {}",
                file.display(),
                mode & 0o777,
                file.display()
            );
        }
    }
}
