//! [`S3Client`]: a blocking Amazon S3 client for archiving, a sibling of
//! `sqs` over `aws`.
//!
//! Each call is built by a pure function ([`request`]), signed with SigV4
//! for service `s3` with the body's SHA-256 as the payload hash, sent over
//! the one `aws::http` agent, and its answer read by pure functions
//! ([`response`]); what S3 stored is compared with what was sent
//! ([`checksum`]). Throttling, 5xx, cut connections and answers that do not
//! match are retried with jittered backoff ([`crate::aws::retry`]); large
//! bodies go in parts on a small pool of threads ([`multipart`]).
//!
//! Stands on `aws` only; knows nothing of archives, queues, `config` or
//! `cmd`: the caller hands in [`S3Options`].

pub mod address;
pub mod checksum;
pub mod multipart;
pub mod request;
pub mod response;

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use self::address::{AddressingStyle, Endpoint};
use self::checksum::{Digests, Verified};
use self::request::{PutOptions, Request};
use self::response::{Attributes, ListPage, ListedObject, ObjectHead};
use crate::aws::credentials::ProvideCredentials;
use crate::aws::endpoint::Variant;
use crate::aws::http::{Http, HttpOptions, HttpResponse};
use crate::aws::retry::RetryPolicy;
use crate::error::{Error, Result};

pub use self::response::is_precondition_failed;

/// Everything the client needs, resolved by the caller.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// The region requests are signed for.
    pub region: String,
    /// A custom endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the
    /// profile's `endpoint_url`: see [`address::custom_endpoint`]); `None`
    /// for AWS's regional host.
    pub endpoint: Option<String>,
    pub variant: Variant,
    pub addressing: AddressingStyle,
    /// Tries per call (and per part), the first included.
    pub max_attempts: u32,
    pub http: HttpOptions,
}

/// What an upload stored, and how it was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Without quotes.
    pub etag: String,
    /// The checksum S3 echoed (base64; `…-N` for multipart), if any.
    pub checksum_sha256: Option<String>,
    /// The hex SHA-256 of the bytes read (and sent).
    pub sha256_hex: String,
    pub size: u64,
    /// 0 for a single PUT.
    pub parts: u32,
    pub verified: Verified,
}

/// What a download read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    pub head: ObjectHead,
    /// Bytes written to the sink.
    pub copied: u64,
}

/// Talks to S3 over HTTP; shared by threads (`&self` everywhere).
#[derive(Debug)]
pub struct S3Client {
    http: Http,
    endpoint: Endpoint,
    region: String,
    credentials: Arc<dyn ProvideCredentials>,
    retry: RetryPolicy,
}

impl S3Client {
    pub fn new(options: S3Options, credentials: Arc<dyn ProvideCredentials>) -> Result<S3Client> {
        let endpoint = Endpoint::resolve(
            options.endpoint.as_deref(),
            &options.region,
            options.variant,
            options.addressing,
        )
        .map_err(|m| Error::config("endpoint_url", m))?;
        Ok(S3Client {
            http: Http::new(&options.http)?,
            endpoint,
            region: options.region,
            credentials,
            retry: RetryPolicy::new(options.max_attempts),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// HeadBucket: the bucket exists, we may use it, and it is in our
    /// region. Returns the region S3 names (`x-amz-bucket-region`), if any;
    /// a bucket in another region is one configuration error naming it.
    pub fn head_bucket(&self, bucket: &str) -> Result<Option<String>> {
        check_bucket(bucket)?;
        let r = Request::new("HEAD", self.endpoint.url(bucket, None, &[]));
        let answer = self.retrying("HeadBucket", || self.send("HeadBucket", bucket, &r, None))?;
        let region = response::header(&answer.headers, "x-amz-bucket-region").map(str::trim);
        match region {
            // The global endpoint answers for buckets in any region.
            Some(theirs) if theirs != self.region && !theirs.is_empty() => {
                Err(response::wrong_region(bucket, theirs, &self.region))
            }
            _ => Ok(region.map(str::to_string)),
        }
    }

    /// CreateBucket in the client's region (for set-up and tests).
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        check_bucket(bucket)?;
        let mut r = Request::new("PUT", self.endpoint.url(bucket, None, &[]));
        let body = if self.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
            .into_bytes()
        };
        r.payload_sha256 = crate::digest::sha256_hex(&body);
        self.retrying("CreateBucket", || {
            self.send("CreateBucket", bucket, &r, Some(&body))
        })?;
        Ok(())
    }

    /// PutObject of a body held in memory, checksummed, verified against
    /// S3's answer, retried (the whole PUT) on what may pass.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: &PutOptions,
    ) -> Result<Uploaded> {
        check_bucket(bucket)?;
        let digests = Digests::of(body);
        let r = request::put_object(&self.endpoint, bucket, key, &digests, options);
        self.retrying("PutObject", || {
            let answer = self.send("PutObject", bucket, &r, Some(body))?;
            let etag = response::header(&answer.headers, "etag").map(checksum::unquote);
            let echoed = response::header(&answer.headers, "x-amz-checksum-sha256");
            let verified = checksum::verify_single(&digests, etag, echoed, options.is_kms())
                .map_err(|m| mismatch("PutObject", bucket, key, &m))?;
            Ok(Uploaded {
                etag: etag.unwrap_or_default().to_string(),
                checksum_sha256: echoed.map(str::to_string),
                sha256_hex: digests.sha256_hex(),
                size: body.len() as u64,
                parts: 0,
                verified,
            })
        })
    }

    /// HeadObject with the checksum mode on; `None` when there is no such key.
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>> {
        check_bucket(bucket)?;
        let r = request::head_object(&self.endpoint, bucket, key);
        self.retrying("HeadObject", || {
            let answer = self.exchange(&r, None, "HeadObject")?;
            match answer.status {
                404 => Ok(None),
                200..=299 => response::object_head(&answer.headers)
                    .map(Some)
                    .map_err(|d| protocol("HeadObject", d)),
                _ => Err(self.error("HeadObject", bucket, &answer)),
            }
        })
    }

    /// GetObjectAttributes (checksum, size, ETag). `Ok(None)` when the
    /// server does not implement it (501, 405, a 400 naming the
    /// parameter, or an answer that is not the attributes document); a
    /// missing key is an error (`NoSuchKey`).
    pub fn get_object_attributes(&self, bucket: &str, key: &str) -> Result<Option<Attributes>> {
        check_bucket(bucket)?;
        let r = request::get_object_attributes(&self.endpoint, bucket, key);
        self.retrying("GetObjectAttributes", || {
            let answer = self.exchange(&r, None, "GetObjectAttributes")?;
            match answer.status {
                200..=299 => Ok(response::attributes(&answer.body).ok()),
                405 | 501 => Ok(None),
                400 if !answer.body.starts_with(b"<") => Ok(None),
                _ => {
                    let e = self.error("GetObjectAttributes", bucket, &answer);
                    match &e {
                        Error::Service(s)
                            if matches!(
                                s.code.as_str(),
                                "NotImplemented" | "InvalidArgument" | "InvalidRequest"
                            ) =>
                        {
                            Ok(None)
                        }
                        _ => Err(e),
                    }
                }
            }
        })
    }

    /// Every object under `prefix` (ListObjectsV2, all pages).
    pub fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(bucket, prefix, token.as_deref(), None)?;
            all.extend(page.objects);
            match page.next {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                Some(_) => {
                    return Err(protocol(
                        "ListObjectsV2",
                        "the same continuation token twice".into(),
                    ));
                }
                None => return Ok(all),
            }
        }
    }

    /// One page of ListObjectsV2 (at most `max_keys`, S3's default 1,000).
    pub fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: Option<u32>,
    ) -> Result<ListPage> {
        check_bucket(bucket)?;
        let r = request::list_objects(&self.endpoint, bucket, prefix, continuation, max_keys);
        self.retrying("ListObjectsV2", || {
            let answer = self.send("ListObjectsV2", bucket, &r, None)?;
            response::list_page(&answer.body).map_err(|d| protocol("ListObjectsV2", d))
        })
    }

    /// DeleteObject (a missing key is no error, as in S3).
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        check_bucket(bucket)?;
        let r = Request::new("DELETE", self.endpoint.url(bucket, Some(key), &[]));
        self.retrying("DeleteObject", || {
            self.send("DeleteObject", bucket, &r, None)
        })?;
        Ok(())
    }

    /// GetObject, its bytes copied into `sink` as they arrive. Retried
    /// only while nothing was written to the sink.
    pub fn get_object(&self, bucket: &str, key: &str, sink: &mut dyn Write) -> Result<Downloaded> {
        check_bucket(bucket)?;
        let r = Request::new("GET", self.endpoint.url(bucket, Some(key), &[]))
            .header("x-amz-checksum-mode", "ENABLED");
        let mut counted = Counting {
            inner: sink,
            count: 0,
        };
        let mut attempt = 1;
        loop {
            let outcome = self.download_once(bucket, &r, &mut counted);
            match outcome {
                Err(e)
                    if e.is_retryable()
                        && counted.count == 0
                        && attempt < self.retry.max_attempts =>
                {
                    self.pause("GetObject", attempt, &e);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The size and hex SHA-256 of an object's bytes, read through (for
    /// `audit --download`).
    pub fn get_object_sha256(&self, bucket: &str, key: &str) -> Result<(u64, String)> {
        let mut hasher = HashSink(Sha256::new());
        let got = self.get_object(bucket, key, &mut hasher)?;
        Ok((got.copied, crate::digest::hex(&hasher.0.finalize())))
    }

    /// ListMultipartUploads under `prefix`: (key, upload id) of each one in progress.
    pub fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, String)>> {
        check_bucket(bucket)?;
        let r = Request::new(
            "GET",
            self.endpoint
                .url(bucket, None, &[("uploads", ""), ("prefix", prefix)]),
        );
        self.retrying("ListMultipartUploads", || {
            let answer = self.send("ListMultipartUploads", bucket, &r, None)?;
            response::uploads(&answer.body).map_err(|d| protocol("ListMultipartUploads", d))
        })
    }

    /// AbortMultipartUpload; an upload already gone (404) is no error.
    pub fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let r = request::abort_multipart(&self.endpoint, bucket, key, upload_id);
        self.retrying("AbortMultipartUpload", || {
            let answer = self.exchange(&r, None, "AbortMultipartUpload")?;
            match answer.status {
                200..=299 | 404 => Ok(()),
                _ => Err(self.error("AbortMultipartUpload", bucket, &answer)),
            }
        })
    }

    fn download_once(
        &self,
        bucket: &str,
        r: &Request,
        sink: &mut Counting<'_>,
    ) -> Result<Downloaded> {
        let headers = self.sign(r)?;
        let (answer, copied) = self
            .http
            .download(&r.url, &headers, sink)
            .map_err(|d| self.transport("GetObject", d))?;
        if !(200..300).contains(&answer.status) {
            return Err(self.error("GetObject", bucket, &answer));
        }
        let head = response::object_head(&answer.headers).map_err(|d| protocol("GetObject", d))?;
        if copied != head.size {
            return Err(protocol(
                "GetObject",
                format!("{copied} bytes read of {} announced", head.size),
            ));
        }
        Ok(Downloaded { head, copied })
    }

    /// Tries `once` until it succeeds, fails for good, or tries run out.
    fn retrying<T>(&self, action: &'static str, mut once: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match once() {
                Err(e) if e.is_retryable() && attempt < self.retry.max_attempts => {
                    self.pause(action, attempt, &e);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn pause(&self, action: &str, attempt: u32, e: &Error) {
        let delay = self.retry.delay(attempt, crate::random::u64());
        log::info!(
            "{action} failed (try {attempt} of {}): {e}; retrying in {} ms",
            self.retry.max_attempts,
            delay.as_millis()
        );
        std::thread::sleep(delay);
    }

    fn sign(&self, r: &Request) -> Result<Vec<(String, String)>> {
        let credentials = self.credentials.credentials()?;
        r.signed(&credentials.signing_keys(), &self.region, SystemTime::now())
    }

    /// One signed exchange; any status is an answer.
    fn exchange(
        &self,
        r: &Request,
        body: Option<&[u8]>,
        action: &'static str,
    ) -> Result<HttpResponse> {
        let headers = self.sign(r)?;
        self.http
            .send(r.method, &r.url, &headers, body)
            .map_err(|d| self.transport(action, d))
    }

    /// One signed exchange; a status other than 2xx is an error.
    fn send(
        &self,
        action: &'static str,
        bucket: &str,
        r: &Request,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        let answer = self.exchange(r, body, action)?;
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            Err(self.error(action, bucket, &answer))
        }
    }

    fn error(&self, action: &'static str, bucket: &str, answer: &HttpResponse) -> Error {
        // An error answer may quote the request's headers (a WAF, a debugging
        // proxy): its text is masked before any message can carry it.
        let body = self.masked(&String::from_utf8_lossy(&answer.body));
        response::error(
            action,
            answer.status,
            &answer.headers,
            body.as_bytes(),
            bucket,
            &self.region,
        )
    }

    fn transport(&self, action: &'static str, detail: String) -> Error {
        Error::Transport {
            action,
            endpoint: crate::text::url(self.endpoint.base()),
            detail: crate::text::excerpt(&self.masked(&detail), 300),
        }
    }

    /// `text` with the secret key and session token in use replaced.
    fn masked(&self, text: &str) -> String {
        match self.credentials.credentials() {
            Ok(credentials) => {
                let keys = credentials.signing_keys();
                let secrets: Vec<&str> = [Some(keys.secret_access_key), keys.session_token]
                    .into_iter()
                    .flatten()
                    .collect();
                crate::aws::redact::redact(text, &secrets)
            }
            Err(_) => crate::aws::redact::redact(text, &[]),
        }
    }
}

fn check_bucket(bucket: &str) -> Result<()> {
    address::check_bucket_name(bucket).map_err(Error::InvalidData)
}

fn protocol(action: &'static str, detail: String) -> Error {
    Error::Protocol { action, detail }
}

/// What S3 stored differs from what we sent: a protocol error (exit 76),
/// retried like a garbled answer, never a success.
fn mismatch(action: &'static str, bucket: &str, key: &str, detail: &str) -> Error {
    protocol(
        action,
        format!("s3://{bucket}/{}: {detail}", crate::text::excerpt(key, 200)),
    )
}

/// A sink that counts what passes through it.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
