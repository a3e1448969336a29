//! Where a service's calls go and how they are signed, from the settings:
//! the region choice and endpoint variants of `aws::endpoint`, fed with the
//! settings, the shared config profile and the queue URLs; and the AWS
//! config file's own settings the SDKs read: `endpoint_url` (in the profile
//! and per service in a `[services NAME]` section),
//! `ignore_configured_endpoint_urls`, `ca_bundle`, `max_attempts` and
//! `retry_mode`.

use std::path::PathBuf;

use super::keys::K;
use super::layers::Provenance;
use super::settings::{QueueRole, Settings};
use crate::aws::endpoint::{
    Partition, Region, RegionInputs, Variant, check_variant, choose_region, parse_flag,
    service_endpoint,
};
use crate::aws::retry::RetryMode;
use crate::aws::shared_config::SharedFiles;
use crate::error::{Error, Result};

/// Where SQS calls go and how they are signed, decided once per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub region: Region,
    /// `endpoint_url`, else the regional endpoint.
    pub endpoint: String,
    /// Why this endpoint, for `sqs_archive credentials`.
    pub endpoint_origin: String,
    /// FIPS and dual-stack, for the other services' endpoints (S3).
    pub variant: Variant,
    /// `AWS_CA_BUNDLE`, else `ca_bundle` of the shared config profile.
    pub ca_bundle: Option<PathBuf>,
    /// Tries per call: `max_attempts` of the settings when a layer set it,
    /// else of the shared config profile, else the retry mode's default.
    pub max_attempts: u32,
    /// `AWS_RETRY_MODE`, else `retry_mode` of the shared config profile.
    pub retry_mode: Option<RetryMode>,
    /// The shared config file's settings that were used, one line each
    /// (`retry_mode adaptive (retry_mode of profile p in /x/config)`).
    pub shared_settings_used: Vec<String>,
}

impl Target {
    /// Resolves region and endpoint for the settings: the region of the
    /// settings, else of the shared config profile (`aws_profile` /
    /// `AWS_PROFILE`, else `default`), else of a queue URL; FIPS and
    /// dual-stack from `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`,
    /// else `use_fips_endpoint` / `use_dualstack_endpoint` in that profile.
    /// The endpoint: `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL` (unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` / `ignore_configured_endpoint_urls`)
    /// or `endpoint_url` of the sqs-archive profile, else the shared profile's
    /// `[services NAME]` `sqs` `endpoint_url`, else its `endpoint_url`
    /// (both unless ignored), else the regional endpoint.
    /// Logs a warning when the signing region is not a queue URL's region.
    pub fn resolve(settings: &Settings) -> Result<Target> {
        let shared = SharedFiles::load(&settings.env)?;
        let profile = settings.aws_profile.as_deref().unwrap_or("default");
        let shared_setting = |key: &str| {
            shared.setting(profile, key).map(|s| {
                (
                    s.value.to_string(),
                    format!("{key} of profile {profile} in {}", s.file.display()),
                )
            })
        };
        let mut used = Vec::new();
        let urls: Vec<(&str, &str)> = [
            (QueueRole::Request, "request_queue_url"),
            (QueueRole::Completion, "completion_queue_url"),
        ]
        .into_iter()
        .filter_map(|(role, key)| settings.queue_url(role).ok().map(|url| (url, key)))
        .collect();
        let choice = choose_region(&RegionInputs {
            configured: settings.region.clone(),
            shared_config: shared_setting("region").map(|(name, origin)| Region { name, origin }),
            queue_urls: urls,
        })
        .map_err(|e| Error::config("region", e))?;
        for warning in &choice.warnings {
            log::warn!("{warning}");
        }
        let flag = |var: &str, key: &str| -> Result<bool> {
            match (settings.env.get(var), shared_setting(key)) {
                (Some(value), _) => parse_flag(var, value).map_err(|e| Error::config(var, e)),
                (None, Some((value, origin))) => {
                    parse_flag(key, &value).map_err(|e| Error::config(origin, e))
                }
                (None, None) => Ok(false),
            }
        };
        let variant = Variant {
            fips: flag("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint")?,
            dual_stack: flag("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint")?,
        };
        let ignore = flag(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "ignore_configured_endpoint_urls",
        )?;
        let configured = settings
            .endpoint_url
            .as_ref()
            .map(|url| (url.clone(), settings.origin(K::endpoint_url)))
            .filter(|(_, origin)| !(ignore && matches!(origin, Provenance::Variable { .. })))
            .map(|(url, origin)| (url, format!("endpoint_url from {origin}")));
        let from_shared = || {
            let services = shared.setting(profile, "services")?;
            let s = shared.service_setting(services.value, "sqs", "endpoint_url")?;
            Some((
                s.value.to_string(),
                format!(
                    "endpoint_url of sqs in [services {}] in {}",
                    services.value,
                    s.file.display()
                ),
            ))
        };
        let shared_endpoint = (!ignore && configured.is_none())
            .then(|| from_shared().or_else(|| shared_setting("endpoint_url")))
            .flatten();
        if ignore {
            used.push("ignore_configured_endpoint_urls true".to_string());
        }
        if let Some((url, origin)) = &shared_endpoint {
            used.push(format!("endpoint_url {} ({origin})", crate::text::url(url)));
        }
        let (endpoint, endpoint_origin) = match configured.or(shared_endpoint) {
            Some(found) => found,
            None => {
                check_variant(&choice.region.name, variant)
                    .map_err(|e| Error::config("region", e))?;
                (
                    service_endpoint("sqs", &choice.region.name, variant),
                    format!(
                        "partition {}{}{}",
                        Partition::of(&choice.region.name).name(),
                        if variant.fips { ", FIPS" } else { "" },
                        if variant.dual_stack {
                            ", dual-stack"
                        } else {
                            ""
                        }
                    ),
                )
            }
        };
        let ca_bundle = match (
            settings.env.get("AWS_CA_BUNDLE"),
            shared_setting("ca_bundle"),
        ) {
            (Some(path), _) => Some(PathBuf::from(path)),
            (None, Some((path, origin))) => {
                used.push(format!("ca_bundle {path} ({origin})"));
                Some(PathBuf::from(path))
            }
            (None, None) => None,
        };
        let retry_mode = match (
            settings.env.get("AWS_RETRY_MODE"),
            shared_setting("retry_mode"),
        ) {
            (Some(mode), _) => {
                Some(RetryMode::parse(mode).map_err(|e| Error::config("AWS_RETRY_MODE", e))?)
            }
            (None, Some((mode, origin))) => {
                let parsed = RetryMode::parse(&mode).map_err(|e| Error::config(&origin, e))?;
                used.push(format!("retry_mode {} ({origin})", parsed.name()));
                Some(parsed)
            }
            (None, None) => None,
        };
        let max_attempts = match (
            settings.origin(K::max_attempts),
            shared_setting("max_attempts"),
        ) {
            (Provenance::Default, Some((text, origin))) => {
                let n = text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        Error::config(
                            &origin,
                            format!("expected a whole number of 1 or more, not {text:?}"),
                        )
                    })?;
                used.push(format!("max_attempts {n} ({origin})"));
                n
            }
            (Provenance::Default, None) => {
                retry_mode.map_or(settings.max_attempts, RetryMode::default_max_attempts)
            }
            _ => settings.max_attempts,
        };
        Ok(Target {
            region: choice.region,
            endpoint,
            endpoint_origin,
            variant,
            ca_bundle,
            max_attempts,
            retry_mode,
            shared_settings_used: used,
        })
    }
}
