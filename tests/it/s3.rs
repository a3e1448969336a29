//! The S3 client (`sqs_archive::s3`) against moto's S3, signature checking
//! on (the same moto server as SQS; its user is allowed `s3:*`). Each test
//! creates its own bucket through the client.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use sqs_archive::aws::credentials::Credentials;
use sqs_archive::aws::endpoint::Variant;
use sqs_archive::aws::http::HttpOptions;
use sqs_archive::error::Error;
use sqs_archive::exit::Exit;
use sqs_archive::s3::address::AddressingStyle;
use sqs_archive::s3::checksum::{Digests, Verified};
use sqs_archive::s3::multipart::MultipartConfig;
use sqs_archive::s3::request::{Condition, Encryption, PutOptions, StorageClass};
use sqs_archive::s3::{S3Client, S3Options, is_precondition_failed};

use crate::support::{Server, fauxqs, moto, unique};

fn client_with(server: &Server, secret: &str) -> S3Client {
    client_for(server, &server.url, secret)
}

/// An S3 client of the test server's user, sent to `url` (the server, or a
/// proxy in front of it), signing with `secret`.
pub fn client_for(server: &Server, url: &str, secret: &str) -> S3Client {
    let credentials = Credentials {
        access_key_id: server.access_key_id.clone(),
        secret_access_key: sqs_archive::secret::Secret::new(secret),
        session_token: None,
        expiry: None,
        source: "test".into(),
    };
    S3Client::new(
        S3Options {
            region: server.region.clone(),
            endpoint: Some(url.to_string()),
            variant: Variant::default(),
            addressing: AddressingStyle::Auto,
            max_attempts: 3,
            http: HttpOptions {
                timeout: Duration::from_secs(60),
                ..HttpOptions::default()
            },
        },
        Arc::new(credentials),
    )
    .expect("client")
}

/// A client for moto and a new bucket in it.
fn bucket() -> (S3Client, String) {
    bucket_on(&moto())
}

/// A client for `server` and a new bucket in it.
fn bucket_on(server: &Server) -> (S3Client, String) {
    let server = server.clone();
    let client = client_with(&server, &server.secret_access_key);
    let name = unique("s3it").to_ascii_lowercase();
    let name: String = name.chars().take(63).collect();
    client.create_bucket(&name).expect("create bucket");
    (client, name)
}

/// Deterministic bytes that differ from part to part.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn put_head_get_list_delete_round_trip_with_checksums() {
    round_trip(&moto(), true);
}

/// The same round trip on a second implementation (fauxqs's S3), so the
/// client does not fit one emulator's quirks.
#[test]
fn the_round_trip_and_a_multipart_upload_also_work_against_fauxqs() {
    round_trip(&fauxqs(), false);
    // fauxqs refuses bodies over about 11 MiB: 5 MiB parts.
    multipart(&fauxqs(), 5 << 20, 24 << 20, 5);
}

fn round_trip(server: &Server, keeps_class_and_encryption: bool) {
    let (s3, b) = bucket_on(server);
    assert_eq!(
        s3.head_bucket(&b)
            .unwrap()
            .as_deref()
            .unwrap_or(&server.region),
        server.region
    );
    let body = b"the bytes we hashed";
    let options = PutOptions {
        storage_class: Some(StorageClass::StandardIa),
        encryption: Some(Encryption::Aes256),
        ..PutOptions::default()
    };
    // Keys S3 encodes: a space, a plus, a percent sign, unicode, a slash.
    let keys = ["aip/data/a b+c%d é.txt", "aip/manifest-sha256.txt"];
    let digests = Digests::of(body);
    for key in keys {
        let put = s3.put_object(&b, key, body, &options).expect("put");
        assert_ne!(put.verified, Verified::SignedPayloadOnly, "{put:?}");
        assert_eq!(put.sha256_hex, digests.sha256_hex());
        assert_eq!(put.etag, digests.md5_hex());
    }
    let head = s3.head_object(&b, keys[0]).unwrap().expect("object exists");
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.etag, digests.md5_hex());
    assert_eq!(head.metadata_sha256(), Some(digests.sha256_hex().as_str()));
    if keeps_class_and_encryption {
        assert_eq!(head.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(head.encryption.as_deref(), Some("AES256"));
    }
    // Both emulators keep the checksum sent with x-amz-sdk-checksum-algorithm.
    assert_eq!(head.checksum_sha256, Some(digests.sha256_base64()));
    // GetObjectAttributes: what a server returns must agree.
    let attributes = s3.get_object_attributes(&b, keys[0]).unwrap();
    eprintln!(
        "{}: HeadObject checksum {:?}, GetObjectAttributes {attributes:?}",
        server.url, head.checksum_sha256
    );
    if let Some(attrs) = attributes {
        assert_eq!(attrs.size, Some(body.len() as u64));
        if let Some(c) = attrs.checksum_sha256 {
            assert_eq!(c, digests.sha256_base64());
        }
    }
    let (size, sha) = s3.get_object_sha256(&b, keys[0]).unwrap();
    assert_eq!((size, sha), (body.len() as u64, digests.sha256_hex()));
    let mut listed: Vec<String> = s3
        .list_objects(&b, "aip/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    listed.sort();
    assert_eq!(listed, keys);
    assert!(s3.list_objects(&b, "other/").unwrap().is_empty());
    // Pages of one: the continuation token (base64: `+`, `/`, `=`) goes back encoded.
    let first = s3.list_page(&b, "aip/", None, Some(1)).unwrap();
    assert_eq!(first.objects.len(), 1);
    let token = first.next.expect("a second page");
    let second = s3.list_page(&b, "aip/", Some(&token), Some(1)).unwrap();
    assert_eq!(second.objects.len(), 1);
    assert_ne!(first.objects[0].key, second.objects[0].key);
    assert_eq!(second.next, None);
    s3.delete_object(&b, keys[0]).unwrap();
    assert_eq!(s3.head_object(&b, keys[0]).unwrap(), None);
    let missing = s3.get_object_sha256(&b, keys[0]).unwrap_err();
    assert_eq!(missing.exit(), Exit::DataErr, "{missing}");
}

#[test]
fn a_40_mib_multipart_upload_verifies_and_reads_back() {
    multipart(&moto(), 8 << 20, 40 << 20, 5);
}

fn multipart(server: &Server, part_size: usize, len: usize, parts: u32) {
    let (s3, b) = bucket_on(server);
    let data = bytes(len, 7);
    let sha = sqs_archive::digest::sha256_hex(&data);
    let config = MultipartConfig {
        part_size,
        threads: 3,
    };
    let options = PutOptions {
        sha256_hex: Some(sha.clone()),
        ..PutOptions::default()
    };
    let started = std::time::Instant::now();
    let up = s3
        .upload(&b, "big/file.bin", &mut &data[..], &options, &config)
        .expect("multipart upload");
    eprintln!(
        "{} MiB multipart to {}: {:?} ({up:?})",
        len >> 20,
        server.url,
        started.elapsed()
    );
    assert_eq!(up.parts, parts);
    assert_eq!(up.size, data.len() as u64);
    assert_eq!(up.sha256_hex, sha);
    assert_ne!(up.verified, Verified::SignedPayloadOnly, "{up:?}");
    assert!(up.etag.ends_with(&format!("-{parts}")), "{up:?}");
    let head = s3.head_object(&b, "big/file.bin").unwrap().unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.metadata_sha256(), Some(sha.as_str()));
    assert_eq!(s3.get_object_sha256(&b, "big/file.bin").unwrap().1, sha);
    assert!(s3.list_multipart_uploads(&b, "big/").unwrap().is_empty());
    // A body of one part or less is a single PUT.
    let small = s3
        .upload(
            &b,
            "big/small",
            &mut &data[..1000],
            &PutOptions::default(),
            &config,
        )
        .unwrap();
    assert_eq!(small.parts, 0);
}

#[test]
fn if_none_match_on_an_existing_key_is_a_lost_race_and_if_match_guards_updates() {
    let (s3, b) = bucket();
    let create = PutOptions {
        condition: Condition::IfAbsent,
        ..PutOptions::default()
    };
    let first = s3
        .put_object(&b, "m", b"one", &create)
        .expect("first writer");
    let lost = s3.put_object(&b, "m", b"two", &create).unwrap_err();
    assert!(is_precondition_failed(&lost), "{lost:?}");
    assert!(lost.to_string().contains("PreconditionFailed"), "{lost}");
    let stale = PutOptions {
        condition: Condition::IfMatch("0123456789abcdef0123456789abcdef".into()),
        ..PutOptions::default()
    };
    assert!(is_precondition_failed(
        &s3.put_object(&b, "m", b"three", &stale).unwrap_err()
    ));
    let current = PutOptions {
        condition: Condition::IfMatch(first.etag.clone()),
        ..PutOptions::default()
    };
    s3.put_object(&b, "m", b"four", &current)
        .expect("update on the ETag read");
    assert_eq!(
        s3.get_object_sha256(&b, "m").unwrap().1,
        sqs_archive::digest::sha256_hex(b"four")
    );
}

/// Yields `good` bytes, then fails.
struct Breaks {
    data: Vec<u8>,
    at: usize,
}

impl Read for Breaks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.data.len() {
            return Err(std::io::Error::other("disk gone"));
        }
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_failed_upload_is_aborted_and_leaves_no_object() {
    let (s3, b) = bucket();
    let config = MultipartConfig {
        part_size: 5 << 20,
        threads: 2,
    };
    let mut reader = Breaks {
        data: bytes(12 << 20, 3),
        at: 0,
    };
    let e = s3
        .upload(&b, "x/broken", &mut reader, &PutOptions::default(), &config)
        .unwrap_err();
    assert!(e.to_string().contains("disk gone"), "{e}");
    assert!(s3.list_multipart_uploads(&b, "x/").unwrap().is_empty());
    assert_eq!(s3.head_object(&b, "x/broken").unwrap(), None);
    // A stream that is not the promised one: aborted before completing.
    let data = bytes(11 << 20, 4);
    let promised = PutOptions {
        sha256_hex: Some(sqs_archive::digest::sha256_hex(b"something else")),
        ..PutOptions::default()
    };
    let e = s3
        .upload(&b, "x/changed", &mut &data[..], &promised, &config)
        .unwrap_err();
    assert_eq!(e.exit(), Exit::DataErr, "{e}");
    assert!(s3.list_multipart_uploads(&b, "x/").unwrap().is_empty());
    assert_eq!(s3.head_object(&b, "x/changed").unwrap(), None);
}

#[test]
fn a_wrong_bucket_or_secret_is_one_clear_error() {
    let server = moto();
    let s3 = client_with(&server, &server.secret_access_key);
    let missing = unique("nosuch").to_ascii_lowercase();
    let e = s3.head_bucket(&missing).unwrap_err();
    let line = e.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains("NoSuchBucket") && line.contains(&missing),
        "{line}"
    );
    assert_eq!(e.exit(), Exit::DataErr);
    let e = s3
        .put_object(&missing, "k", b"x", &PutOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let bad = s3.head_bucket("Not_A_Bucket").unwrap_err();
    assert!(matches!(bad, Error::InvalidData(_)), "{bad:?}");

    let (_, b) = bucket();
    let wrong = client_with(&server, "not-the-secret");
    let e = wrong
        .put_object(&b, "k", b"x", &PutOptions::default())
        .unwrap_err();
    assert_eq!(e.exit(), Exit::NoPerm, "{e}");
    assert!(!e.to_string().contains("not-the-secret"), "{e}");
}

/// One request a [`FakeS3`] saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    body_len: usize,
}

/// A loopback S3 that answers every request with what `answer` says
/// (status line and headers, no body unless given), one request per
/// connection, and records what it saw.
struct FakeS3 {
    url: String,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl FakeS3 {
    fn start(answer: impl Fn(&Seen) -> String + Send + 'static) -> FakeS3 {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let request = Seen {
                    method,
                    target,
                    body_len: len,
                };
                let reply = answer(&request);
                log.lock().unwrap().push(request);
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        FakeS3 { url, seen }
    }

    fn client(&self) -> S3Client {
        let server = Server {
            url: self.url.clone(),
            access_key_id: "AKIDFAKE".into(),
            secret_access_key: "fake".into(),
            region: "us-east-1".into(),
            protocol: sqs_archive::sqs::Protocol::Query,
        };
        client_with(&server, "fake")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn reply(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

#[test]
fn a_server_that_stores_other_bytes_never_gives_a_success() {
    // The ETag of other bytes (a byte flipped on the way): retried, then 76.
    let wrong = Digests::of(b"hellO").md5_hex();
    let fake = FakeS3::start(move |_| reply("200 OK", &[("etag", &format!("\"{wrong}\""))], ""));
    let e = fake
        .client()
        .put_object("bucket", "k", b"hello", &PutOptions::default())
        .unwrap_err();
    assert_eq!(e.exit(), Exit::Protocol, "{e}");
    assert!(e.to_string().contains("MD5"), "{e}");
    assert_eq!(fake.seen().len(), 3, "each try sent the body again");

    // A wrong echoed checksum is caught even when the ETag would match.
    let etag = Digests::of(b"hello").md5_hex();
    let fake = FakeS3::start(move |_| {
        reply(
            "200 OK",
            &[("etag", &etag), ("x-amz-checksum-sha256", "AAAA")],
            "",
        )
    });
    let e = fake
        .client()
        .put_object("bucket", "k", b"hello", &PutOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("sha256"), "{e}");
}

#[test]
fn throttling_is_retried_then_temporary_and_a_moved_bucket_names_its_region() {
    let fake = FakeS3::start(|_| {
        reply(
            "503 Slow Down",
            &[],
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        )
    });
    let e = fake
        .client()
        .put_object("bucket", "k", b"x", &PutOptions::default())
        .unwrap_err();
    assert_eq!(e.exit(), Exit::TempFail, "{e}");
    assert_eq!(fake.seen().len(), 3);

    let fake = FakeS3::start(|_| {
        reply(
            "301 Moved Permanently",
            &[("x-amz-bucket-region", "eu-west-1")],
            "",
        )
    });
    let e = fake.client().head_bucket("bucket").unwrap_err();
    assert_eq!(e.exit(), Exit::Config, "{e}");
    assert!(e.to_string().contains("region eu-west-1"), "{e}");
    assert_eq!(fake.seen().len(), 1, "not retried");
    // The global endpoint answers 200 for a bucket in any region.
    let fake = FakeS3::start(|_| reply("200 OK", &[("x-amz-bucket-region", "ap-south-1")], ""));
    let e = fake.client().head_bucket("bucket").unwrap_err();
    assert!(
        e.to_string().contains("region ap-south-1, not us-east-1"),
        "{e}"
    );
}

#[test]
fn a_part_that_keeps_failing_aborts_the_upload_and_never_completes() {
    let fake = FakeS3::start(|r| {
        if r.method == "POST" && r.target.ends_with("?uploads") {
            reply(
                "200 OK",
                &[],
                "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>",
            )
        } else if r.method == "PUT" && r.target.contains("partNumber=2&") {
            // The connection is cut: no answer at all.
            String::new()
        } else if r.method == "PUT" {
            reply("200 OK", &[("etag", "\"not-checked-here\"")], "")
        } else {
            reply("204 No Content", &[], "")
        }
    });
    let config = MultipartConfig {
        part_size: 5 << 20,
        threads: 2,
    };
    let data = bytes(12 << 20, 9);
    let e = fake
        .client()
        .upload(
            "bucket",
            "k",
            &mut &data[..],
            &PutOptions::default(),
            &config,
        )
        .unwrap_err();
    assert!(e.is_retryable() || e.exit() == Exit::Protocol, "{e}");
    let seen = fake.seen();
    assert!(
        seen.iter()
            .any(|r| r.method == "DELETE" && r.target.contains("uploadId=U1")),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|r| r.method == "POST" && r.target.contains("uploadId=")),
        "never completed: {seen:?}"
    );
    assert!(
        seen.iter()
            .filter(|r| r.body_len > 0)
            .all(|r| r.body_len <= 5 << 20)
    );
}

#[test]
fn a_part_cut_once_is_sent_again_and_the_upload_completes() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let cuts = AtomicU32::new(0);
    let fake = FakeS3::start(move |r| {
        if r.method == "POST" && r.target.ends_with("?uploads") {
            reply(
                "200 OK",
                &[],
                "<InitiateMultipartUploadResult><UploadId>U2</UploadId></InitiateMultipartUploadResult>",
            )
        } else if r.method == "PUT"
            && r.target.contains("partNumber=2&")
            && cuts.fetch_add(1, Ordering::SeqCst) == 0
        {
            String::new()
        } else if r.method == "PUT" {
            reply("200 OK", &[("etag", "\"kms-like\"")], "")
        } else {
            reply(
                "200 OK",
                &[],
                "<CompleteMultipartUploadResult><ETag>\"kms-like-3\"</ETag></CompleteMultipartUploadResult>",
            )
        }
    });
    let config = MultipartConfig {
        part_size: 5 << 20,
        threads: 2,
    };
    let data = bytes(12 << 20, 11);
    let up = fake
        .client()
        .upload(
            "bucket",
            "k",
            &mut &data[..],
            &PutOptions::default(),
            &config,
        )
        .expect("the retried part lets the upload finish");
    assert_eq!(up.parts, 3);
    assert_eq!(up.verified, Verified::SignedPayloadOnly);
    let seen = fake.seen();
    let part2 = seen
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("partNumber=2&"))
        .count();
    assert_eq!(part2, 2, "{seen:?}");
    assert!(
        !seen.iter().any(|r| r.method == "DELETE"),
        "not aborted: {seen:?}"
    );
}

/// Deterministic bytes made as they are read, never held whole.
struct Generated {
    left: u64,
    x: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            *b = self.x as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Run alone by [`a_large_upload_holds_at_most_threads_plus_one_parts`]
/// (peak RSS is per process): uploads 96 MiB with the default settings
/// and prints the peak RSS before and after.
#[test]
#[ignore = "run by a_large_upload_holds_at_most_threads_plus_one_parts in its own process"]
fn rss_probe() {
    let (s3, b) = bucket();
    let before = peak_rss_kib();
    let config = MultipartConfig::default();
    let mut data = Generated {
        left: 96 << 20,
        x: 5,
    };
    let started = std::time::Instant::now();
    let up = s3
        .upload(&b, "rss/big", &mut data, &PutOptions::default(), &config)
        .unwrap();
    assert_eq!((up.parts, up.size), (6, 96 << 20));
    println!(
        "RSS-PROBE before={before} after={} seconds={:.1}",
        peak_rss_kib(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_large_upload_holds_at_most_threads_plus_one_parts() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "s3::rss_probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("RSS-PROBE").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no probe line in {stdout}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    let grew_mib = (field("after=") - field("before=")) / 1024.0;
    let bound_mib = (MultipartConfig::default().memory_bound() >> 20) as f64;
    eprintln!(
        "96 MiB upload, 16 MiB parts on 4 threads: peak RSS grew {grew_mib:.1} MiB (bound {bound_mib} MiB), {} s",
        field("seconds=")
    );
    // The parts in flight, plus a little for the agent and the threads.
    assert!(grew_mib <= bound_mib + 8.0, "{line}");
}

/// A client for moto through `proxy_url`, with room for many retries.
fn client_through(proxy_url: &str) -> S3Client {
    let server = Server {
        url: proxy_url.to_string(),
        ..moto()
    };
    let credentials = Credentials {
        access_key_id: server.access_key_id.clone(),
        secret_access_key: sqs_archive::secret::Secret::new(&server.secret_access_key),
        session_token: None,
        expiry: None,
        source: "test".into(),
    };
    S3Client::new(
        S3Options {
            region: server.region.clone(),
            endpoint: Some(server.url.clone()),
            variant: Variant::default(),
            addressing: AddressingStyle::Path,
            max_attempts: 10,
            http: HttpOptions {
                timeout: Duration::from_secs(30),
                ..HttpOptions::default()
            },
        },
        Arc::new(credentials),
    )
    .unwrap()
}

#[test]
fn through_a_faulty_network_an_upload_is_verified_or_leaves_nothing() {
    use crate::proxy::{FaultProxy, Plan};
    let (direct, b) = bucket();
    let config = MultipartConfig {
        part_size: 5 << 20,
        threads: 2,
    };
    let mut faults = 0;
    for seed in 1..=3u64 {
        let proxy = FaultProxy::start(&moto().url, seed, Plan::quarter(Duration::from_millis(200)));
        let s3 = client_through(&proxy.url);
        let data = bytes(12 << 20, seed);
        let sha = sqs_archive::digest::sha256_hex(&data);
        let key = format!("faulty/{seed}");
        let outcome = s3.upload(&b, &key, &mut &data[..], &PutOptions::default(), &config);
        faults += proxy.faults();
        drop(proxy);
        match outcome {
            Ok(up) => {
                assert_eq!(up.sha256_hex, sha);
                assert_ne!(up.verified, Verified::SignedPayloadOnly, "{up:?}");
                assert_eq!(direct.get_object_sha256(&b, &key).unwrap().1, sha);
            }
            Err(e) => {
                eprintln!("seed {seed}: upload failed: {e}");
                assert!(direct.list_objects(&b, &key).unwrap().is_empty(), "{e}");
            }
        }
        assert!(
            direct.list_multipart_uploads(&b, &key).unwrap().is_empty(),
            "no upload left in progress"
        );
    }
    assert!(faults > 0, "the proxy injected faults");
}

#[test]
fn kms_objects_are_verified_by_their_checksum_not_their_etag() {
    let (s3, b) = bucket();
    let options = PutOptions {
        encryption: Some(Encryption::Kms { key_id: None }),
        storage_class: Some(StorageClass::Glacier),
        ..PutOptions::default()
    };
    let up = s3.put_object(&b, "kms/a", b"sealed", &options).unwrap();
    assert_eq!(up.verified, Verified::Checksum, "{up:?}");
    let head = s3.head_object(&b, "kms/a").unwrap().unwrap();
    assert_eq!(head.encryption.as_deref(), Some("aws:kms"));
    assert_eq!(head.storage_class.as_deref(), Some("GLACIER"));
}

#[test]
fn a_server_without_get_object_attributes_is_tolerated() {
    let fake = FakeS3::start(|_| {
        reply(
            "501 Not Implemented",
            &[],
            "<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>",
        )
    });
    assert_eq!(
        fake.client().get_object_attributes("bucket", "k").unwrap(),
        None
    );
    assert_eq!(fake.seen().len(), 1, "not retried");
    // A missing key is still an error.
    let fake = FakeS3::start(|_| {
        reply(
            "404 Not Found",
            &[],
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
    });
    let e = fake
        .client()
        .get_object_attributes("bucket", "k")
        .unwrap_err();
    assert!(e.to_string().contains("NoSuchKey"), "{e}");
}

#[test]
fn an_error_inside_a_200_completion_is_retried_not_taken_for_success() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let completes = AtomicU32::new(0);
    let fake = FakeS3::start(move |r| {
        if r.method == "POST" && r.target.ends_with("?uploads") {
            reply(
                "200 OK",
                &[],
                "<InitiateMultipartUploadResult><UploadId>U3</UploadId></InitiateMultipartUploadResult>",
            )
        } else if r.method == "PUT" {
            reply("200 OK", &[("etag", "\"opaque\"")], "")
        } else if r.method == "POST" && completes.fetch_add(1, Ordering::SeqCst) == 0 {
            reply(
                "200 OK",
                &[],
                "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
            )
        } else if r.method == "POST" {
            reply(
                "200 OK",
                &[],
                "<CompleteMultipartUploadResult><ETag>\"opaque-2\"</ETag></CompleteMultipartUploadResult>",
            )
        } else {
            reply("204 No Content", &[], "")
        }
    });
    let config = MultipartConfig {
        part_size: 5 << 20,
        threads: 2,
    };
    let data = bytes(6 << 20, 12);
    let up = fake
        .client()
        .upload(
            "bucket",
            "k",
            &mut &data[..],
            &PutOptions::default(),
            &config,
        )
        .unwrap();
    assert_eq!(up.parts, 2);
    let seen = fake.seen();
    let completions = seen
        .iter()
        .filter(|r| r.method == "POST" && r.target.contains("uploadId=U3"))
        .count();
    assert_eq!(completions, 2, "{seen:?}");
}
