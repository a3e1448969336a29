//! Builds the [`ArchiveClient`] a profile asks for: SQS over HTTP with the
//! standard credential chain, or the directory queue; and the [`S3Client`]
//! of an `s3://` archive destination, with the same chain and region.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::credentials::CredentialChain;
use crate::aws::http::{HttpOptions, proxy_for};
use crate::aws::shared_config::SharedFiles;
use crate::config::{Backend, Settings, Target};
use crate::error::{Error, Result};
use crate::queue::ArchiveClient;
use crate::queue::dir::DirArchiveClient;
use crate::s3::address::{AddressingStyle, custom_endpoint, nested_s3_setting};
use crate::s3::{S3Client, S3Options};
use crate::sqs::{SqsArchiveClient, SqsOptions};

/// The client for these settings: SQS over HTTP, or the directory queue.
pub fn connect(settings: &Settings) -> Result<Arc<dyn ArchiveClient>> {
    Ok(match settings.backend {
        Backend::Sqs => Arc::new(sqs_client(settings)?),
        Backend::Mock => Arc::new(DirArchiveClient::new(
            settings.mock_dir.clone(),
            settings.max_message_size,
        )),
    })
}

/// The credential chain of these settings, for `region`.
fn credential_chain(settings: &Settings, region: &str) -> CredentialChain {
    CredentialChain::new(settings.env.clone(), settings.config_keys.clone())
        .with_profile(
            settings.aws_profile.clone(),
            settings.aws_profile_by.clone(),
        )
        .with_region(Some(region.to_string()))
}

/// S3 calls (whole parts) may take longer than an SQS call: at least this.
const S3_MIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The S3 client of these settings: the region and credential chain of
/// SQS, the endpoint from `s3_endpoint_url` (`AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL`) else the shared profile's `endpoint_url`, else AWS's
/// regional S3 host (FIPS and dual-stack as for SQS); the addressing style
/// from `s3_addressing_style`, else the profile's `s3.addressing_style`.
pub fn s3_client(settings: &Settings) -> Result<S3Client> {
    let target = Target::resolve(settings)?;
    let shared = SharedFiles::load(&settings.env)?;
    let profile = settings.aws_profile.as_deref().unwrap_or("default");
    let profile_endpoint = shared.setting(profile, "endpoint_url").map(|s| s.value);
    let endpoint = custom_endpoint(settings.s3.endpoint_url.as_deref(), None, profile_endpoint)
        .map(str::to_string);
    let addressing = match settings.s3.addressing {
        Some(style) => style,
        None => match shared
            .setting(profile, "s3")
            .and_then(|s| nested_s3_setting(s.value, "addressing_style"))
        {
            Some(value) => AddressingStyle::parse(value).map_err(|m| {
                Error::config(format!("s3.addressing_style of profile {profile}"), m)
            })?,
            None => AddressingStyle::Auto,
        },
    };
    let credentials = Arc::new(credential_chain(settings, &target.region.name));
    let proxy_target = endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", target.region.name));
    let options = S3Options {
        region: target.region.name.clone(),
        endpoint,
        variant: target.variant,
        addressing,
        max_attempts: target.max_attempts,
        http: HttpOptions {
            timeout: settings.http_timeout.max(S3_MIN_TIMEOUT),
            ca_bundle: target.ca_bundle.clone(),
            proxy: proxy_for(&proxy_target, &settings.env),
        },
    };
    let client = S3Client::new(options, credentials)?;
    log::debug!("S3 endpoint {}", crate::text::url(client.endpoint().base()));
    Ok(client)
}

/// An SQS client configured by the settings, with the standard credential chain.
pub fn sqs_client(settings: &Settings) -> Result<SqsArchiveClient> {
    let target = Target::resolve(settings)?;
    let credentials = Arc::new(credential_chain(settings, &target.region.name));
    let endpoint = target.endpoint.clone();
    for used in &target.shared_settings_used {
        log::debug!("AWS config file: {used}");
    }
    log::debug!(
        "SQS endpoint {} ({}), signing region {}",
        crate::text::url(&endpoint),
        target.endpoint_origin,
        target.region
    );
    // `http_timeout` is the profile's wait plus `http_timeout_seconds`.
    let receive_margin = settings
        .http_timeout
        .saturating_sub(Duration::from_secs(u64::from(settings.wait_time_seconds)));
    let options = SqsOptions {
        http: HttpOptions {
            timeout: settings.http_timeout,
            ca_bundle: target.ca_bundle.clone(),
            proxy: proxy_for(&endpoint, &settings.env),
        },
        endpoint,
        region: target.region.name.clone(),
        protocol: settings.protocol,
        max_attempts: target.max_attempts,
        max_message_size: settings.max_message_size,
        receive_margin,
    };
    Ok(SqsArchiveClient::new(options, credentials)?.with_retry_mode(target.retry_mode))
}
