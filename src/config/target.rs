//! Where a service's calls go and how they are signed, from the settings:
//! the region choice and endpoint variants of `aws::endpoint`, fed with the
//! settings, the shared config profile and the queue URLs.

use super::settings::{QueueRole, Settings};
use crate::aws::endpoint::{
    Partition, Region, RegionInputs, Variant, choose_region, parse_flag, service_endpoint,
};
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
}

impl Target {
    /// Resolves region and endpoint for the settings: the region of the
    /// settings, else of the shared config profile (`aws_profile` /
    /// `AWS_PROFILE`, else `default`), else of a queue URL; FIPS and
    /// dual-stack from `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`,
    /// else `use_fips_endpoint` / `use_dualstack_endpoint` in that profile.
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
        let (endpoint, endpoint_origin) = match &settings.endpoint_url {
            Some(url) => (url.clone(), "endpoint_url".to_string()),
            None => (
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
            ),
        };
        Ok(Target {
            region: choice.region,
            endpoint,
            endpoint_origin,
            variant,
        })
    }
}
