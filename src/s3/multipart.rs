//! Uploading a stream of any length: one PUT when it fits in a part,
//! else a multipart upload whose parts go out on a small fixed pool of
//! threads (`std::thread::scope`, a rendezvous crossbeam channel).
//!
//! The stream is read once, on the calling thread, one part at a time; the
//! whole-object SHA-256 is computed as it is read and each worker computes
//! its part's SHA-256 (payload hash and `x-amz-checksum-sha256`) and MD5.
//! Memory is bounded by `(threads + 1) × part_size`: each worker holds the
//! part it sends and the reader holds the next one, waiting until a worker
//! is free. A part is retried on its own; a part that still fails, a read
//! error, or a stream whose SHA-256 is not the one promised in
//! [`PutOptions::sha256_hex`] aborts the upload (`AbortMultipartUpload`),
//! so no partial object ever appears. After completing, the composite
//! checksum (or the MD5-of-MD5s ETag) is compared with the parts'; on a
//! mismatch the object is deleted and the upload fails.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use super::checksum::{self, Digests};
use super::request::{self, PutOptions};
use super::response::{self, Completion};
use super::{S3Client, Uploaded, check_bucket, mismatch, protocol};
use crate::error::{Error, Result, ServiceError};

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: usize = 5 << 30;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;

/// How large bodies are cut and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultipartConfig {
    /// Bytes per part; a body up to this size is one PUT. At most 8 MiB
    /// for fauxqs, which refuses bodies over about 11 MiB.
    pub part_size: usize,
    /// Parts in flight at once.
    pub threads: usize,
}

impl Default for MultipartConfig {
    /// 16 MiB parts on 4 threads: at most 80 MiB of parts in memory.
    fn default() -> Self {
        MultipartConfig {
            part_size: 16 << 20,
            threads: 4,
        }
    }
}

impl MultipartConfig {
    /// The most bytes of parts held at once.
    pub fn memory_bound(&self) -> usize {
        (self.threads.max(1) + 1) * self.part_size
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(format!(
                "S3 part size must be between 5 MiB and 5 GiB, not {} bytes",
                self.part_size
            ));
        }
        if !(1..=64).contains(&self.threads) {
            return Err(format!(
                "S3 upload threads must be 1 to 64, not {}",
                self.threads
            ));
        }
        Ok(())
    }
}

impl S3Client {
    /// Uploads everything `reader` yields as `key`: one verified PUT when
    /// it is at most one part, else a verified multipart upload.
    pub fn upload(
        &self,
        bucket: &str,
        key: &str,
        reader: &mut dyn Read,
        options: &PutOptions,
        config: &MultipartConfig,
    ) -> Result<Uploaded> {
        config
            .check()
            .map_err(|m| Error::config("s3 part size", m))?;
        check_bucket(bucket)?;
        let first = read_part(reader, config.part_size, key)?;
        if first.len() < config.part_size {
            return self.put_checked(bucket, key, &first, options);
        }
        let second = read_part(reader, config.part_size, key)?;
        if second.is_empty() {
            return self.put_checked(bucket, key, &first, options);
        }
        self.upload_multipart(bucket, key, [first, second], reader, options, config)
    }

    /// A single PUT, refused first if the bytes are not the promised ones.
    fn put_checked(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: &PutOptions,
    ) -> Result<Uploaded> {
        if let Some(promised) = &options.sha256_hex {
            let actual = crate::digest::sha256_hex(body);
            if !promised.eq_ignore_ascii_case(&actual) {
                return Err(changed(key, promised, &actual));
            }
        }
        self.put_object(bucket, key, body, options)
    }

    fn upload_multipart(
        &self,
        bucket: &str,
        key: &str,
        first: [Vec<u8>; 2],
        reader: &mut dyn Read,
        options: &PutOptions,
        config: &MultipartConfig,
    ) -> Result<Uploaded> {
        let create = request::create_multipart(&self.endpoint, bucket, key, options);
        let upload_id = self.retrying("CreateMultipartUpload", || {
            let answer = self.send("CreateMultipartUpload", bucket, &create, None)?;
            response::upload_id(&answer.body).map_err(|d| protocol("CreateMultipartUpload", d))
        })?;
        let outcome = self
            .send_parts(bucket, key, &upload_id, first, reader, options, config)
            .and_then(|(parts, sha256_hex, size)| {
                self.complete(bucket, key, &upload_id, &parts, options)
                    .map(|u| Uploaded {
                        sha256_hex,
                        size,
                        ..u
                    })
            });
        if let Err(e) = &outcome
            && let Err(abort) = self.abort_multipart(bucket, key, &upload_id)
        {
            log::warn!(
                "s3://{bucket}/{key}: upload failed ({e}) and could not be aborted: {abort}; \
                 a lifecycle rule for incomplete uploads removes its parts"
            );
        }
        outcome
    }

    /// Sends every part; returns each part's ETag and digests in order,
    /// the whole stream's hex SHA-256 and its length.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn send_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        first: [Vec<u8>; 2],
        reader: &mut dyn Read,
        options: &PutOptions,
        config: &MultipartConfig,
    ) -> Result<(Vec<(String, Digests)>, String, u64)> {
        let failed = AtomicBool::new(false);
        let (work_tx, work_rx) = crossbeam_channel::bounded::<(u32, Vec<u8>)>(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let kms = options.is_kms();
        let mut whole = Sha256::new();
        let mut size = 0u64;
        let mut read_error = None;
        std::thread::scope(|scope| {
            for _ in 0..config.threads {
                let work_rx = work_rx.clone();
                let done_tx = done_tx.clone();
                let failed = &failed;
                scope.spawn(move || {
                    for (number, body) in work_rx {
                        if failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let result = self.upload_part(bucket, key, upload_id, number, &body, kms);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        let _ = done_tx.send((number, result));
                    }
                });
            }
            drop(done_tx);
            let [a, b] = first;
            let mut pending = vec![a, b].into_iter();
            let mut number = 0u32;
            loop {
                let body = match pending.next() {
                    Some(body) => body,
                    None => match read_part(reader, config.part_size, key) {
                        Ok(body) if body.is_empty() => break,
                        Ok(body) => body,
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    },
                };
                number += 1;
                if number > MAX_PARTS {
                    read_error = Some(Error::InvalidData(format!(
                        "{key}: more than {MAX_PARTS} parts of {} bytes; raise the part size",
                        config.part_size
                    )));
                    break;
                }
                whole.update(&body);
                size += body.len() as u64;
                if failed.load(Ordering::Relaxed) || work_tx.send((number, body)).is_err() {
                    break;
                }
            }
            if read_error.is_some() {
                failed.store(true, Ordering::Relaxed);
            }
            drop(work_tx);
        });
        if let Some(e) = read_error {
            return Err(e);
        }
        let mut results: Vec<(u32, Result<(String, Digests)>)> = done_rx.into_iter().collect();
        results.sort_by_key(|(n, _)| *n);
        let mut parts = Vec::with_capacity(results.len());
        for (n, result) in results {
            if n as usize != parts.len() + 1 {
                return Err(protocol(
                    "UploadPart",
                    format!("part {} never finished", parts.len() + 1),
                ));
            }
            parts.push(result?);
        }
        let sha256_hex = crate::digest::hex(&whole.finalize());
        if let Some(promised) = &options.sha256_hex
            && !promised.eq_ignore_ascii_case(&sha256_hex)
        {
            return Err(changed(key, promised, &sha256_hex));
        }
        Ok((parts, sha256_hex, size))
    }

    /// One part, retried on its own, its answer compared with its digests.
    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: &[u8],
        kms: bool,
    ) -> Result<(String, Digests)> {
        let digests = Digests::of(body);
        let r = request::upload_part(&self.endpoint, bucket, key, upload_id, number, &digests);
        self.retrying("UploadPart", || {
            let answer = self.send("UploadPart", bucket, &r, Some(body))?;
            let etag = response::header(&answer.headers, "etag")
                .map(checksum::unquote)
                .filter(|e| !e.is_empty())
                .ok_or_else(|| protocol("UploadPart", format!("part {number}: no ETag")))?;
            let echoed = response::header(&answer.headers, "x-amz-checksum-sha256");
            checksum::verify_single(&digests, Some(etag), echoed, kms)
                .map_err(|m| mismatch("UploadPart", bucket, key, &format!("part {number}: {m}")))?;
            Ok((etag.to_string(), digests))
        })
    }

    /// CompleteMultipartUpload, then the composite check.
    fn complete(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(String, Digests)],
        options: &PutOptions,
    ) -> Result<Uploaded> {
        let (r, body) = request::complete_multipart(
            &self.endpoint,
            bucket,
            key,
            upload_id,
            parts,
            &options.condition,
        );
        let (etag, echoed) = self.retrying("CompleteMultipartUpload", || {
            let answer = self.send("CompleteMultipartUpload", bucket, &r, Some(&body))?;
            match response::completion(&answer.body)
                .map_err(|d| protocol("CompleteMultipartUpload", d))?
            {
                Completion::Done {
                    etag,
                    checksum_sha256,
                } => Ok((etag, checksum_sha256)),
                Completion::Failed {
                    code,
                    message,
                    request_id,
                } => Err(Error::Service(ServiceError {
                    action: "CompleteMultipartUpload",
                    // S3 sends these in a 200 answer; they are server faults.
                    status: if code == "InternalError" { 500 } else { 400 },
                    code,
                    message: crate::text::excerpt(&message, 300),
                    request_id,
                })),
            }
        })?;
        let digests: Vec<Digests> = parts.iter().map(|(_, d)| *d).collect();
        let verified = match checksum::verify_multipart(
            &digests,
            etag.as_deref(),
            echoed.as_deref(),
            options.is_kms(),
        ) {
            Ok(v) => v,
            Err(m) => {
                // The object is visible and wrong: remove it before failing.
                if let Err(e) = self.delete_object(bucket, key) {
                    log::warn!("s3://{bucket}/{key}: cannot delete the mismatched object: {e}");
                }
                return Err(mismatch("CompleteMultipartUpload", bucket, key, &m));
            }
        };
        Ok(Uploaded {
            etag: etag.unwrap_or_default(),
            checksum_sha256: echoed,
            sha256_hex: String::new(),
            size: 0,
            parts: parts.len() as u32,
            verified,
        })
    }
}

/// Up to `size` bytes: fewer only at the end of the stream.
fn read_part(reader: &mut dyn Read, size: usize, key: &str) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(size);
    reader
        .take(size as u64)
        .read_to_end(&mut body)
        .map_err(|e| Error::io("read", key, e))?;
    Ok(body)
}

fn changed(key: &str, promised: &str, actual: &str) -> Error {
    Error::InvalidData(format!(
        "{}: the bytes read have sha256 {actual}, not {} as expected (did the file change?); \
         nothing was stored",
        crate::text::excerpt(key, 200),
        crate::text::excerpt(promised, 64)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_bound_and_limits_are_checked() {
        let d = MultipartConfig::default();
        assert_eq!(d.memory_bound(), 80 << 20);
        d.check().unwrap();
        let small = MultipartConfig {
            part_size: 4 << 20,
            threads: 2,
        };
        assert!(small.check().unwrap_err().contains("5 MiB"));
        let none = MultipartConfig {
            part_size: 8 << 20,
            threads: 0,
        };
        assert!(none.check().is_err());
    }

    #[test]
    fn parts_are_full_but_the_last() {
        let data = vec![7u8; 10];
        let mut r: &[u8] = &data;
        assert_eq!(read_part(&mut r, 4, "k").unwrap().len(), 4);
        assert_eq!(read_part(&mut r, 4, "k").unwrap().len(), 4);
        assert_eq!(read_part(&mut r, 4, "k").unwrap().len(), 2);
        assert!(read_part(&mut r, 4, "k").unwrap().is_empty());
    }
}
