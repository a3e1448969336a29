//! Builds the [`ArchiveClient`] a profile asks for: SQS over HTTP with the
//! standard credential chain, or the directory queue.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::credentials::CredentialChain;
use crate::aws::http::{HttpOptions, proxy_for};
use crate::config::{Backend, Settings, Target};
use crate::error::Result;
use crate::queue::ArchiveClient;
use crate::queue::dir::DirArchiveClient;
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

/// An SQS client configured by the settings, with the standard credential chain.
pub fn sqs_client(settings: &Settings) -> Result<SqsArchiveClient> {
    let target = Target::resolve(settings)?;
    let credentials = Arc::new(
        CredentialChain::new(settings.env.clone(), settings.config_keys.clone())
            .with_profile(
                settings.aws_profile.clone(),
                settings.aws_profile_by.clone(),
            )
            .with_region(Some(target.region.name.clone())),
    );
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
