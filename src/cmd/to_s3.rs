//! `process_message` with an `s3://BUCKET/PREFIX` archive_dir: the S3
//! client from the settings ([`crate::connect::s3_client`]) and the job
//! for [`crate::archive_s3`], whose report becomes the JSON result.

use serde_json::{Value, json};

use crate::archive::Resolution;
use crate::archive_s3::{S3Job, archive_to_s3};
use crate::config::{S3Location, Settings};
use crate::error::Result;
use crate::s3::request::PutOptions;

/// Archives `filenames` of `aipid` into `location`.
pub fn archive(
    aipid: &str,
    filenames: &[String],
    settings: &Settings,
    location: &S3Location,
) -> Result<Value> {
    let client = crate::connect::s3_client(settings)?;
    let report = archive_to_s3(
        &client,
        &S3Job {
            aipid,
            filenames,
            source_dir: &settings.source_dir,
            bucket: &location.bucket,
            prefix: &location.prefix,
            put: PutOptions {
                storage_class: settings.s3.storage_class,
                encryption: settings.s3.encryption.clone(),
                ..PutOptions::default()
            },
            multipart: settings.s3.multipart,
            resolution: Resolution::Kernel,
        },
    )?;
    Ok(json!(report))
}
