//! The whole-AIP manifest in S3, merged under a conditional write: read
//! it with its ETag, add this request's files, write it back with
//! `If-Match: <etag>` (or `If-None-Match: *` when there was none). A lost
//! race (412) re-reads and tries again, a few times, then gives up with
//! [`Error::Contended`] (exit 75): the request is tried again later. This
//! is the S3 destination's lock, where the disk destination has `flock`:
//! two writers for one aipid cannot both write a manifest from the same
//! old one, so neither drops the other's files.
//!
//! The manifest is written in STANDARD storage whatever the objects' class,
//! so it can always be read without a restore.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::archive::manifest::manifest_text;
use crate::archive::{ContentDigest, sha256_digest};
use crate::audit::parse_manifest;
use crate::error::{Error, Result};
use crate::s3::request::{Condition, PutOptions};
use crate::s3::{S3Client, is_precondition_failed};

/// Conditional writes tried before a lost race is given up.
pub const MANIFEST_ATTEMPTS: u32 = 6;

/// The manifest at `key` as it is: its entries and its ETag; `None` when
/// there is none.
pub fn read(
    client: &S3Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(BTreeMap<String, String>, String)>> {
    let mut body = Vec::new();
    match client.get_object(bucket, key, &mut body) {
        Ok(got) => {
            let text = std::str::from_utf8(&body).map_err(|_| bad(bucket, key, "not UTF-8"))?;
            let entries = parse_manifest(text).map_err(|m| bad(bucket, key, &m))?;
            Ok(Some((entries, got.head.etag)))
        }
        Err(Error::Service(s)) if s.status == 404 && s.code != "NoSuchBucket" => Ok(None),
        Err(e) => Err(super::transient(e)),
    }
}

fn bad(bucket: &str, key: &str, why: &str) -> Error {
    Error::InvalidData(format!(
        "the manifest s3://{bucket}/{} is damaged ({}); audit the AIP and repair it before archiving more into it",
        crate::text::excerpt(key, 200),
        crate::text::excerpt(why, 200)
    ))
}

/// Merges `files` (name, hex SHA-256) into the manifest at `key` and
/// writes it when it changed; returns the digest of the manifest as it
/// now is.
pub fn merge<'a>(
    client: &S3Client,
    bucket: &str,
    key: &str,
    files: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<ContentDigest> {
    for attempt in 1..=MANIFEST_ATTEMPTS {
        let current = read(client, bucket, key)?;
        let (mut entries, condition) = match current {
            Some((entries, etag)) => (entries, Condition::IfMatch(etag)),
            None => (BTreeMap::new(), Condition::IfAbsent),
        };
        let before = entries.clone();
        for (name, sha256) in files.clone() {
            if let Some(old) = entries.insert(name.to_string(), sha256.to_string())
                && old != sha256
            {
                log::warn!("the manifest's entry for {name} changes from sha256 {old} to {sha256}");
            }
        }
        let text = manifest_text(entries.iter().map(|(n, s)| (n.as_str(), s.as_str())));
        let digest =
            sha256_digest(text.as_bytes()).map_err(|e| Error::io("hash", "manifest", e))?;
        if entries == before && condition != Condition::IfAbsent {
            log::debug!("s3://{bucket}/{key} already lists every file");
            return Ok(digest);
        }
        let options = PutOptions {
            condition,
            content_type: Some("text/plain; charset=utf-8".into()),
            ..PutOptions::default()
        };
        match client.put_object(bucket, key, text.as_bytes(), &options) {
            Ok(_) => return Ok(digest),
            Err(e) if is_precondition_failed(&e) => {
                let pause =
                    Duration::from_millis(50 * u64::from(attempt) + crate::random::u64() % 100);
                log::info!(
                    "s3://{bucket}/{key} changed under us (try {attempt} of {MANIFEST_ATTEMPTS}); merging again in {} ms",
                    pause.as_millis()
                );
                std::thread::sleep(pause);
            }
            Err(e) => return Err(super::transient(e)),
        }
    }
    Err(Error::Contended(format!(
        "the manifest s3://{bucket}/{} changed under each of {MANIFEST_ATTEMPTS} conditional writes",
        crate::text::excerpt(key, 200)
    )))
}
