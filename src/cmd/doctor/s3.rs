//! `doctor`'s checks of an `s3://BUCKET/PREFIX` archive_dir: the bucket
//! answers HeadBucket in our region; a probe object can be written (with
//! the configured encryption, verified like every upload), read back and
//! removed under the prefix; what storage class and encryption objects
//! will get; incomplete multipart uploads left under the prefix.
//!
//! The probe object is written in STANDARD (a Glacier class would bill it
//! for 90 or 180 days) and removed at once.

use super::report::Check;
use crate::aws::credentials::{CredentialChain, Step};
use crate::config::{S3Location, Settings};
use crate::s3::request::{Encryption, PutOptions};

pub(super) fn checks(s: &Settings, location: &S3Location) -> Vec<Check> {
    let shown = location.url(&location.prefix);
    let client = match crate::connect::s3_client(s) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "archive_dir",
                format!("archive_dir {shown}: {e}"),
            )];
        }
    };
    let mut all = Vec::new();
    all.extend(handler_credentials(s));
    match client.head_bucket(&location.bucket) {
        Ok(region) => all.push(Check::ok(
            "s3 bucket",
            format!(
                "s3 bucket {} answers HeadBucket{} at {}",
                location.bucket,
                region.map(|r| format!(" (region {r})")).unwrap_or_default(),
                crate::text::url(client.endpoint().base())
            ),
        )),
        Err(e) => {
            all.push(Check::fail(
                "s3 bucket",
                format!("s3 bucket {}: {e}", location.bucket),
            ));
            return all;
        }
    }
    let key = format!(
        "{}.sqs-archive-doctor-{:016x}",
        if location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", location.prefix)
        },
        crate::random::u64()
    );
    let options = PutOptions {
        encryption: s.s3.encryption.clone(),
        ..PutOptions::default()
    };
    let probe = client
        .put_object(
            &location.bucket,
            &key,
            b"sqs-archive doctor probe\n",
            &options,
        )
        .and_then(|put| {
            let head = client.head_object(&location.bucket, &key)?;
            Ok((put, head))
        });
    let removed = client.delete_object(&location.bucket, &key);
    match (probe, removed) {
        (Ok((put, head)), Ok(())) => {
            let encryption = head
                .as_ref()
                .and_then(|h| h.encryption.clone())
                .unwrap_or_else(|| "none reported".into());
            all.push(Check::ok(
                "s3 write",
                format!(
                    "s3 write: a probe object under {shown} was written ({:?}), read and removed; encryption {encryption}",
                    put.verified
                ),
            ));
        }
        (Err(e), _) => all.push(Check::fail(
            "s3 write",
            format!("s3 write under {shown}: {e}"),
        )),
        (Ok(_), Err(e)) => all.push(Check::fail(
            "s3 write",
            format!(
                "s3 write: the probe s3://{}/{key} was written but not removed: {e}",
                location.bucket
            ),
        )),
    }
    let class = s.s3.storage_class.map_or("STANDARD", |c| c.as_str());
    let sse = match &s.s3.encryption {
        None => "none (the bucket's default encryption applies)".to_string(),
        Some(Encryption::Aes256) => "AES256".into(),
        Some(Encryption::Kms { key_id: Some(id) }) => {
            format!("aws:kms with key {}", crate::text::excerpt(id, 120))
        }
        Some(Encryption::Kms { key_id: None }) => "aws:kms with the account's aws/s3 key".into(),
    };
    all.push(Check::ok(
        "s3 objects",
        format!(
            "s3 objects: storage class {class}, encryption {sse}, parts of {} MiB on {} threads (at most {} MiB in memory)",
            s.s3.multipart.part_size >> 20,
            s.s3.multipart.threads,
            s.s3.multipart.memory_bound() >> 20
        ),
    ));
    match client.list_multipart_uploads(&location.bucket, &location.prefix) {
        Ok(uploads) if uploads.is_empty() => {}
        Ok(uploads) => all.push(Check::warn(
            "s3 uploads",
            format!(
                "s3 uploads: {} incomplete multipart upload(s) under {shown} (an interrupted run; they are billed): add the lifecycle rule of deploy/INSTALL.md",
                uploads.len()
            ),
        )),
        Err(e) => all.push(Check::warn("s3 uploads", format!("s3 uploads: cannot list: {e}"))),
    }
    all
}

/// `process_message` writes to S3 with the credentials it finds; keys in
/// the environment are taken from it unless `pass_aws_credentials_to_handler`.
fn handler_credentials(s: &Settings) -> Option<Check> {
    if s.pass_aws_credentials_to_handler {
        return None;
    }
    let chain = CredentialChain::new(s.env.clone(), s.config_keys.clone())
        .with_profile(s.aws_profile.clone(), s.aws_profile_by.clone());
    match chain.report() {
        Ok((Step::Environment, _)) => Some(Check::warn(
            "s3 credentials",
            "s3 credentials: the keys come from the environment, which poll_messages keeps from \
             process_message; set pass_aws_credentials_to_handler = true, or use a shared-file \
             profile or a role",
        )),
        _ => None,
    }
}
