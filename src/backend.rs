//! Chooses the [`ArchiveClient`] implementation a profile asks for.

use std::sync::Arc;

use crate::client::ArchiveClient;
use crate::config::{Backend, Settings};
use crate::error::Result;
use crate::mock::MockArchiveClient;
use crate::sqs::SqsArchiveClient;

/// The client for these settings: SQS over HTTP, or the directory mock.
pub fn connect(settings: &Settings) -> Result<Arc<dyn ArchiveClient>> {
    Ok(match settings.backend {
        Backend::Sqs => Arc::new(SqsArchiveClient::from_settings(settings)?),
        Backend::Mock => Arc::new(MockArchiveClient::new(
            settings.mock_dir.clone(),
            settings.max_message_size,
        )),
    })
}
