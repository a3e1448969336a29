//! The audit of AIPs in S3 (`s3://BUCKET/PREFIX/<aipid>/`): one listing
//! of the objects against the manifest (**missing**, **extra**), then for
//! each object the SHA-256 S3 keeps: the object's full-object
//! `x-amz-checksum-sha256` (HeadObject, checksum mode on) when it has one,
//! else its `x-amz-meta-sha256`, else GetObjectAttributes' checksum
//! (**changed** when it differs from the manifest, **unreadable** when S3
//! keeps none). With `download`, each object's bytes are read and
//! re-hashed instead, which also catches an object whose metadata was
//! copied along with other bytes.
//!
//! Costs: one LIST per 1,000 objects, one GET of the manifest per AIP, one
//! HEAD per object (a GET per object with `download`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Finding, Problem, Summary, parse_manifest};
use crate::archive::MANIFEST_NAME;
use crate::error::{Error, Result};
use crate::s3::S3Client;

/// Objects looked at at once.
const THREADS: usize = 4;
/// The largest manifest read.
const MAX_MANIFEST_BYTES: usize = 1 << 30;

/// What to audit in S3.
#[derive(Clone, Debug)]
pub struct S3AuditOptions {
    pub bucket: String,
    /// `PREFIX` without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// One AIP, or every `PREFIX/<aipid>/` that holds objects.
    pub aipid: Option<String>,
    /// Read and re-hash every object instead of trusting what S3 keeps.
    pub download: bool,
}

impl S3AuditOptions {
    fn aip_prefix(&self, aipid: &str) -> String {
        if self.prefix.is_empty() {
            format!("{aipid}/")
        } else {
            format!("{}/{aipid}/", self.prefix)
        }
    }
}

/// Audits the AIPs under the prefix; each finding goes to `report`.
pub fn audit(
    client: &S3Client,
    options: &S3AuditOptions,
    report: &mut dyn FnMut(&Finding),
) -> Result<Summary> {
    let root = if options.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", options.prefix)
    };
    let listing_prefix = match &options.aipid {
        Some(aipid) => options.aip_prefix(aipid),
        None => root.clone(),
    };
    // One listing for every AIP: name → size, by aipid.
    let mut aips: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    if let Some(aipid) = &options.aipid {
        aips.insert(aipid.clone(), BTreeMap::new());
    }
    for object in client.list_objects(&options.bucket, &listing_prefix)? {
        let Some(rest) = object.key.strip_prefix(&root) else {
            continue;
        };
        let Some((aipid, name)) = rest.split_once('/') else {
            continue;
        };
        aips.entry(aipid.to_string())
            .or_default()
            .insert(name.to_string(), object.size);
    }
    let mut summary = Summary::default();
    for (aipid, objects) in aips {
        summary.aips += 1;
        let mut findings = Vec::new();
        let (files, bytes) = audit_one(client, options, &aipid, objects, &mut findings);
        summary.files += files;
        summary.bytes += bytes;
        for (name, problem) in findings {
            summary.count(&problem);
            report(&Finding {
                aipid: aipid.clone(),
                name,
                problem,
            });
        }
    }
    Ok(summary)
}

/// Audits one AIP given its listed objects; returns the objects and bytes checked.
fn audit_one(
    client: &S3Client,
    options: &S3AuditOptions,
    aipid: &str,
    mut objects: BTreeMap<String, u64>,
    findings: &mut Vec<(String, Problem)>,
) -> (u64, u64) {
    let aip_prefix = options.aip_prefix(aipid);
    let had_manifest = objects.remove(MANIFEST_NAME).is_some();
    let manifest_key = format!("{aip_prefix}{MANIFEST_NAME}");
    let expected = match had_manifest {
        true => read_manifest(client, &options.bucket, &manifest_key).unwrap_or_else(|why| {
            findings.push((String::new(), Problem::Manifest { why }));
            BTreeMap::new()
        }),
        false => {
            let why = match objects.is_empty() {
                true => "no such AIP under the prefix",
                false => "no manifest-sha256.txt",
            };
            findings.push((String::new(), Problem::Manifest { why: why.into() }));
            BTreeMap::new()
        }
    };
    let mut jobs = Vec::new();
    for (name, sha256) in expected {
        match objects.remove(&name) {
            Some(size) => jobs.push((name, sha256, size)),
            None => findings.push((name, Problem::Missing)),
        }
    }
    for name in objects.into_keys() {
        findings.push((name, Problem::Extra { kind: "object" }));
    }
    let checked = check_all(client, options, &aip_prefix, &jobs);
    let (mut files, mut bytes) = (0, 0);
    for ((name, expected, size), outcome) in jobs.into_iter().zip(checked) {
        match outcome {
            Ok(actual) => {
                files += 1;
                bytes += size;
                if actual != expected {
                    findings.push((name, Problem::Changed { expected, actual }));
                }
            }
            Err(why) => findings.push((name, Problem::Unreadable { why })),
        }
    }
    (files, bytes)
}

fn read_manifest(
    client: &S3Client,
    bucket: &str,
    key: &str,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut body = Vec::new();
    client
        .get_object(bucket, key, &mut body)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(format!("over {MAX_MANIFEST_BYTES} bytes"));
    }
    let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8".to_string())?;
    parse_manifest(text)
}

/// The SHA-256 of each job's object, `THREADS` at a time, in the jobs' order.
fn check_all(
    client: &S3Client,
    options: &S3AuditOptions,
    aip_prefix: &str,
    jobs: &[(String, String, u64)],
) -> Vec<std::result::Result<String, String>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..THREADS.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, _, _)) = jobs.get(i) else { break };
                    let key = format!("{aip_prefix}{name}");
                    let outcome = stored_sha256(client, &options.bucket, &key, options.download)
                        .map_err(|e| e.to_string())
                        .and_then(|found| {
                            found.ok_or_else(|| {
                                "S3 keeps no SHA-256 for it (no checksum, no x-amz-meta-sha256): audit with --download".to_string()
                            })
                        });
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not checked".into())))
        .collect()
}

/// The hex SHA-256 of the object: re-hashed (`download`), else its
/// full-object checksum, its metadata, or GetObjectAttributes' checksum.
fn stored_sha256(
    client: &S3Client,
    bucket: &str,
    key: &str,
    download: bool,
) -> Result<Option<String>> {
    if download {
        return Ok(Some(client.get_object_sha256(bucket, key)?.1));
    }
    let Some(head) = client.head_object(bucket, key)? else {
        return Err(Error::InvalidData("gone since it was listed".into()));
    };
    let full_object = |checksum: Option<&str>| {
        checksum
            .filter(|c| !c.contains('-'))
            .and_then(base64_to_hex)
    };
    if !head.etag.contains('-')
        && let Some(hex) = full_object(head.checksum_sha256.as_deref())
    {
        return Ok(Some(hex));
    }
    if let Some(meta) = head.metadata_sha256() {
        return Ok(Some(meta.to_ascii_lowercase()));
    }
    if head.etag.contains('-') {
        return Ok(None);
    }
    Ok(client
        .get_object_attributes(bucket, key)?
        .and_then(|a| full_object(a.checksum_sha256.as_deref())))
}

/// Standard base64 of 32 bytes to lower-case hex; `None` for anything else.
fn base64_to_hex(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(32);
    for b in text.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == b)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    (out.len() == 32).then(|| crate::digest::hex(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base64_checksum_becomes_hex_and_anything_else_none() {
        let sha = crate::digest::sha256_hex(b"abc");
        let bytes: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let b64 = crate::s3::checksum::base64(&bytes);
        assert_eq!(base64_to_hex(&b64).as_deref(), Some(sha.as_str()));
        assert_eq!(base64_to_hex("AAAA"), None);
        assert_eq!(base64_to_hex("!!!"), None);
    }

    #[test]
    fn aip_prefixes_with_and_without_a_prefix() {
        let mut o = S3AuditOptions {
            bucket: "b".into(),
            prefix: String::new(),
            aipid: None,
            download: false,
        };
        assert_eq!(o.aip_prefix("x"), "x/");
        o.prefix = "a/b".into();
        assert_eq!(o.aip_prefix("x"), "a/b/x/");
    }
}
