//! [`SqsArchiveClient`]: the archive client for Amazon SQS and its emulators.
//!
//! Each call is encoded by a protocol codec, signed with SigV4, POSTed to the
//! endpoint over one keep-alive agent, and decoded; throttling, 5xx and
//! connection failures are retried with jittered backoff. Bodies are checked
//! against the MD5 digests SQS reports.
//!
//! Stands on `aws` (signing, the HTTP agent, retries, credentials) and the
//! `queue` trait and message types it implements. It knows nothing of
//! archives and must not import `config`, `connect`, `message`,
//! `poller`, `cmd` or `archive`: the caller hands in [`SqsOptions`].

pub mod api;
#[cfg(test)]
mod codec_tests;
pub mod json;
pub mod query;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use self::api::{Call, Codec, Reply, SendEntry, WireMessage, WireSent};
use crate::aws::credentials::ProvideCredentials;
use crate::aws::http::{self, Http, HttpOptions};
use crate::aws::redact::redact;
use crate::aws::retry::{RateLimiter, RetryMode, RetryPolicy};
use crate::error::{Error, Result};
use crate::queue::{
    ArchiveClient, BatchOutcome, OutgoingMessage, QueueAttributes, ReceiptHandle, ReceiveRequest,
    ReceivedMessage, SentMessage, is_fifo,
};

/// The SQS wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Form-encoded query API with XML answers (`Version=2012-11-05`).
    Query,
    /// AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Action>`).
    Json,
}

/// Everything the client needs, resolved.
#[derive(Debug)]
pub struct SqsOptions {
    /// Where requests go, e.g. `https://sqs.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub protocol: Protocol,
    pub max_attempts: u32,
    pub http: HttpOptions,
    pub max_message_size: usize,
    /// Added to a receive's own wait for that call's HTTP timeout
    /// (`http_timeout_seconds`): a `--wait` longer than the profile's
    /// `wait_time_seconds` must not be cut short by a timeout made for it.
    pub receive_margin: Duration,
}

/// Talks to SQS over HTTP.
#[derive(Debug)]
pub struct SqsArchiveClient {
    http: Http,
    url: String,
    region: String,
    codec: Box<dyn Codec>,
    credentials: Arc<dyn ProvideCredentials>,
    retry: RetryPolicy,
    max_message_size: usize,
    receive_margin: Duration,
    /// `" through proxy URL"` (user info hidden) or empty: a transport error names the hop that failed.
    route: String,
    /// Received messages dropped for a body that did not match its MD5.
    damaged: std::sync::atomic::AtomicU64,
    /// The `adaptive` retry mode's client-side rate limiting, when chosen.
    limiter: Option<RateLimiter>,
}

impl SqsArchiveClient {
    pub fn new(options: SqsOptions, credentials: Arc<dyn ProvideCredentials>) -> Result<Self> {
        let mut url = options.endpoint.clone();
        if !url[url.find("://").map_or(0, |i| i + 3)..].contains('/') {
            url.push('/');
        }
        Ok(SqsArchiveClient {
            damaged: std::sync::atomic::AtomicU64::new(0),
            http: Http::new(&options.http)?,
            url,
            region: options.region,
            codec: codec(options.protocol),
            credentials,
            retry: RetryPolicy::new(options.max_attempts),
            max_message_size: options.max_message_size,
            receive_margin: options.receive_margin,
            route: options
                .http
                .proxy
                .as_deref()
                .map(|proxy| format!(" through proxy {}", http::without_userinfo(proxy)))
                .unwrap_or_default(),
            limiter: None,
        })
    }

    /// Applies `retry_mode`: `adaptive` adds client-side rate limiting after
    /// throttling answers; the number of tries is `max_attempts` either way.
    pub fn with_retry_mode(mut self, mode: Option<RetryMode>) -> Self {
        self.limiter = (mode == Some(RetryMode::Adaptive)).then(RateLimiter::default);
        self
    }

    /// Creates a queue (or finds the existing one) and returns its URL. For set-up and tests.
    pub fn create_queue(&self, name: &str, attributes: &[(&str, &str)]) -> Result<String> {
        match self.call(&Call::CreateQueue { name, attributes })? {
            Reply::QueueUrl(url) => Ok(url),
            other => Err(unexpected("CreateQueue", &other)),
        }
    }

    /// Sends one call, retrying what may succeed on another try.
    fn call(&self, call: &Call) -> Result<Reply> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            if let Some(limiter) = &self.limiter {
                std::thread::sleep(limiter.acquire(started));
            }
            let outcome = self.call_once(call);
            if let Some(limiter) = &self.limiter {
                match &outcome {
                    Err(Error::Service(e))
                        if e.status == 429 || e.short_code().contains("Throttl") =>
                    {
                        limiter.throttled();
                    }
                    Ok(_) => limiter.succeeded(),
                    Err(_) => {}
                }
            }
            match &outcome {
                Err(e) if e.is_retryable() && attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt, crate::random::u64());
                    log::info!(
                        "{} failed (try {attempt} of {}): {e}; retrying in {} ms",
                        call.action(),
                        self.retry.max_attempts,
                        delay.as_millis()
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                _ => {
                    log::debug!(
                        "{} {} in {} ms (try {attempt})",
                        call.action(),
                        if outcome.is_ok() { "ok" } else { "failed" },
                        started.elapsed().as_millis()
                    );
                    return outcome;
                }
            }
        }
    }

    fn call_once(&self, call: &Call) -> Result<Reply> {
        let action = call.action();
        let encoded = self.codec.encode(call);
        let credentials = self.credentials.credentials()?;
        let mut headers = encoded.headers;
        let signed = crate::aws::sign::sign_request(
            &self.url,
            &headers,
            &encoded.body,
            &credentials.signing_keys(),
            &self.region,
            SystemTime::now(),
        )?;
        headers.extend(signed);
        let timeout = match call {
            Call::ReceiveMessage { wait_seconds, .. } => {
                Some(Duration::from_secs(u64::from(*wait_seconds)) + self.receive_margin)
            }
            _ => None,
        };
        let keys = credentials.signing_keys();
        let secrets: Vec<&str> = [Some(keys.secret_access_key), keys.session_token]
            .into_iter()
            .flatten()
            .collect();
        let response = self
            .http
            .post(&self.url, &headers, &encoded.body, timeout)
            .map_err(|detail| Error::Transport {
                action,
                endpoint: format!("{}{}", crate::text::url(&self.url), self.route),
                detail: crate::text::excerpt(
                    &redact(&without_secrets(&detail, &self.url), &secrets),
                    300,
                ),
            })?;
        // An error answer may quote the request's headers (a WAF, a debugging
        // proxy): its text is masked before any message can carry it.
        let body = if (200..300).contains(&response.status) {
            response.body
        } else {
            redact(&String::from_utf8_lossy(&response.body), &secrets).into_bytes()
        };
        self.codec
            .decode(call, response.status, &response.headers, &body)
    }

    fn entry<'a>(&self, queue: &str, message: &'a OutgoingMessage) -> Result<SendEntry<'a>> {
        crate::queue::prepare(queue, message, self.max_message_size)
    }
}

/// An HTTP library's error text with the endpoint's `user:password@` (if
/// the URL has one) masked, in case the library quotes the URL.
fn without_secrets(detail: &str, url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) if at > 0 => detail.replace(&url[start..start + at], "***"),
        _ => detail.to_string(),
    }
}

fn codec(protocol: Protocol) -> Box<dyn Codec> {
    match protocol {
        Protocol::Query => Box::new(query::QueryCodec),
        Protocol::Json => Box::new(json::JsonCodec),
    }
}

fn unexpected(action: &'static str, reply: &Reply) -> Error {
    Error::Protocol {
        action,
        detail: format!("unexpected reply kind {reply:?}"),
    }
}

fn check_sent(message: &OutgoingMessage, sent: WireSent) -> Result<SentMessage> {
    let actual = crate::digest::md5_hex(&message.body);
    if !sent.md5_of_body.eq_ignore_ascii_case(&actual) {
        return Err(Error::Checksum {
            message_id: sent.message_id,
            expected: sent.md5_of_body,
            actual,
        });
    }
    Ok(SentMessage {
        message_id: sent.message_id,
        sequence_number: sent.sequence_number,
    })
}

/// The MD5 check and attribute parsing of one received message.
pub fn check_received(m: WireMessage) -> Result<ReceivedMessage> {
    let actual = crate::digest::md5_hex(&m.body);
    if !m.md5_of_body.eq_ignore_ascii_case(&actual) {
        return Err(Error::Checksum {
            message_id: m.message_id,
            expected: m.md5_of_body,
            actual,
        });
    }
    let receive_count = m
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    Ok(ReceivedMessage {
        message_id: m.message_id,
        receipt_handle: ReceiptHandle(m.receipt_handle),
        body: m.body,
        receive_count,
        attributes: m.attributes,
        message_attributes: m.message_attributes,
    })
}

fn seconds(d: Duration) -> u32 {
    d.as_secs().min(43_200) as u32
}

impl ArchiveClient for SqsArchiveClient {
    fn send_message(&self, queue: &str, message: &OutgoingMessage) -> Result<SentMessage> {
        let entry = self.entry(queue, message)?;
        match self.call(&Call::SendMessage { queue, entry })? {
            Reply::Sent(sent) => check_sent(message, sent),
            other => Err(unexpected("SendMessage", &other)),
        }
    }

    fn send_message_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> Result<BatchOutcome<SentMessage>> {
        crate::queue::check_batch_size(messages, self.max_message_size)?;
        let entries = messages
            .iter()
            .map(|m| self.entry(queue, m))
            .collect::<Result<Vec<_>>>()?;
        match self.call(&Call::SendMessageBatch { queue, entries })? {
            Reply::SentBatch(outcomes) => Ok(outcomes
                .into_iter()
                .zip(messages)
                .map(|(o, m)| o.map_err(Error::Service).and_then(|s| check_sent(m, s)))
                .collect()),
            other => Err(unexpected("SendMessageBatch", &other)),
        }
    }

    fn receive_messages(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>> {
        // One id for every try of this receive (see `Call::ReceiveMessage`).
        let attempt_id = is_fifo(queue).then(crate::random::hex_id);
        let call = Call::ReceiveMessage {
            queue,
            max_messages: request.max_messages.clamp(1, 10),
            wait_seconds: request.wait_seconds.min(20),
            visibility_timeout: request.visibility_timeout,
            attempt_id: attempt_id.as_deref(),
        };
        match self.call(&call)? {
            Reply::Received(messages) => Ok(messages
                .into_iter()
                .filter_map(|m| match check_received(m) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        // Never acted on and never deleted: it returns after its visibility timeout.
                        log::error!("{e}");
                        self.damaged
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        None
                    }
                })
                .collect()),
            other => Err(unexpected("ReceiveMessage", &other)),
        }
    }

    fn damaged_received(&self) -> u64 {
        self.damaged.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn delete_message(&self, queue: &str, receipt: &ReceiptHandle) -> Result<()> {
        self.call(&Call::DeleteMessage { queue, receipt }).map(drop)
    }

    fn delete_message_batch(
        &self,
        queue: &str,
        receipts: &[ReceiptHandle],
    ) -> Result<BatchOutcome<()>> {
        match self.call(&Call::DeleteMessageBatch { queue, receipts })? {
            Reply::DoneBatch(outcomes) => Ok(outcomes
                .into_iter()
                .map(|o| o.map_err(Error::Service))
                .collect()),
            other => Err(unexpected("DeleteMessageBatch", &other)),
        }
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<()> {
        self.call(&Call::ChangeMessageVisibility {
            queue,
            receipt,
            timeout: seconds(timeout),
        })
        .map(drop)
    }

    fn change_visibility_batch(
        &self,
        queue: &str,
        entries: &[(ReceiptHandle, Duration)],
    ) -> Result<BatchOutcome<()>> {
        let entries = entries.iter().map(|(r, d)| (r, seconds(*d))).collect();
        match self.call(&Call::ChangeMessageVisibilityBatch { queue, entries })? {
            Reply::DoneBatch(outcomes) => Ok(outcomes
                .into_iter()
                .map(|o| o.map_err(Error::Service))
                .collect()),
            other => Err(unexpected("ChangeMessageVisibilityBatch", &other)),
        }
    }

    fn queue_attributes(&self, queue: &str) -> Result<QueueAttributes> {
        match self.call(&Call::GetQueueAttributes {
            queue,
            names: &QueueAttributes::NAMES,
        })? {
            Reply::Attributes(a) => Ok(QueueAttributes::from_attributes(&a)),
            other => Err(unexpected("GetQueueAttributes", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_aws_example() {
        assert_eq!(
            crate::digest::md5_hex("This is a test message"),
            "fafb00f5732ab283681e124bf8747ed1"
        );
    }

    #[test]
    fn received_message_with_wrong_md5_is_an_error() {
        let m = WireMessage {
            message_id: "m1".into(),
            receipt_handle: "r".into(),
            md5_of_body: "fafb00f5732ab283681e124bf8747ed1".into(),
            body: "This is a test message!".into(),
            attributes: [("ApproximateReceiveCount".to_string(), "3".to_string())].into(),
            message_attributes: Default::default(),
        };
        let e = check_received(m.clone()).unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert!(!e.is_retryable());
        let ok = check_received(WireMessage {
            body: "This is a test message".into(),
            ..m
        })
        .unwrap();
        assert_eq!(ok.receive_count, 3);
    }

    #[test]
    fn transport_details_lose_the_endpoint_password() {
        assert_eq!(
            without_secrets(
                "bad uri http://me:pw@host:1/ (me:pw)",
                "http://me:pw@host:1/"
            ),
            "bad uri http://***@host:1/ (***)"
        );
        assert_eq!(without_secrets("refused", "http://host:1/"), "refused");
    }
}
