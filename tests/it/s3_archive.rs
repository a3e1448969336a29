//! `archive_dir = s3://BUCKET/PREFIX`: the round trip `sqs_archive send` →
//! `poll_messages` (directory queue) → `process_message` → S3 (moto, then
//! fauxqs), checked object by object against the whole-AIP manifest;
//! re-runs that send nothing; multipart, storage class and encryption;
//! faults between us and moto; two writers for one aipid at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::s3::S3Client;

use crate::proxy::{FaultProxy, Plan};
use crate::support::*;

pub const MANIFEST: &str = "manifest-sha256.txt";

pub fn client_at(server: &Server, url: &str) -> S3Client {
    crate::s3::client_for(server, url, &server.secret_access_key)
}

/// A workspace whose profile `t` archives into a new bucket of `server`
/// (through `endpoint`, the server itself or a proxy in front of it).
pub struct S3Case {
    pub ws: Workspace,
    pub s3: S3Client,
    pub bucket: String,
    pub server: Server,
    pub queue: DirArchiveClient,
}

impl S3Case {
    pub fn new(name: &str, server: Server, extra: Value) -> S3Case {
        let endpoint = server.url.clone();
        S3Case::through(name, server, &endpoint, extra)
    }

    pub fn through(name: &str, server: Server, endpoint: &str, extra: Value) -> S3Case {
        let s3 = client_at(&server, &server.url);
        let bucket: String = unique("s3arch")
            .to_ascii_lowercase()
            .chars()
            .take(63)
            .collect();
        s3.create_bucket(&bucket).expect("create bucket");
        let mut ws = Workspace::new(name);
        let mut keys = json!({
            "archive_dir": format!("s3://{bucket}/archive/v1"),
            "pass_aws_credentials_to_handler": true,
            "max_attempts": 4,
        });
        for (k, v) in extra.as_object().unwrap() {
            keys[k] = v.clone();
        }
        ws.mock_profile("t", keys);
        ws.set_env(server.key_env());
        ws.set_env([
            ("AWS_REGION".to_string(), server.region.clone()),
            ("AWS_ENDPOINT_URL_S3".to_string(), endpoint.to_string()),
        ]);
        let queue = DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
        S3Case {
            ws,
            s3,
            bucket,
            server,
            queue,
        }
    }

    pub fn put(&self, name: &str, bytes: &[u8]) {
        let path = self.ws.dir.join("source").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn process(&self, aipid: &str, files: &[&str]) -> Done {
        self.ws
            .cmd(PROCESS_MESSAGE)
            .env("SQS_ARCHIVE_PROFILE", "t")
            .arg("--aipid")
            .arg(aipid)
            .stdin(
                json!({"action": "archive", "aipid": aipid, "filenames": files,
                       "timestamp": "2024-05-01T12:34:56Z"})
                .to_string(),
            )
            .run()
    }

    /// send → poll_messages → the completions' results.
    pub fn round_trip(&self, aipid: &str, files: &[&str]) -> Vec<Value> {
        self.ws.send("t", aipid, files).run().ok();
        self.ws.poll(&["--profile", "t"]).run().ok();
        drain(&self.queue, "mock://completions")
            .into_iter()
            .map(|m| serde_json::from_str(&m.body).expect("completion is JSON"))
            .collect()
    }

    pub fn prefix(&self, aipid: &str) -> String {
        format!("archive/v1/{aipid}/")
    }

    /// The manifest's entries (name → sha256), `None` when there is none.
    pub fn manifest(&self, aipid: &str) -> Option<BTreeMap<String, String>> {
        let mut body = Vec::new();
        let key = format!("{}{MANIFEST}", self.prefix(aipid));
        self.s3.get_object(&self.bucket, &key, &mut body).ok()?;
        Some(sqs_archive::audit::parse_manifest(&String::from_utf8(body).unwrap()).unwrap())
    }

    /// Every object of the AIP agrees with its manifest: each manifest
    /// line has an object whose bytes have that SHA-256 (and whose stored
    /// checksum and metadata say so); no object is missing from it.
    pub fn assert_consistent(&self, aipid: &str) -> BTreeMap<String, String> {
        let prefix = self.prefix(aipid);
        let manifest = self.manifest(aipid).expect("a manifest");
        let listed: Vec<String> = self
            .s3
            .list_objects(&self.bucket, &prefix)
            .unwrap()
            .into_iter()
            .map(|o| o.key[prefix.len()..].to_string())
            .filter(|k| k != MANIFEST)
            .collect();
        assert_eq!(
            listed,
            manifest.keys().cloned().collect::<Vec<_>>(),
            "objects and manifest"
        );
        for (name, sha) in &manifest {
            let key = format!("{prefix}{name}");
            let head = self.s3.head_object(&self.bucket, &key).unwrap().unwrap();
            assert_eq!(head.metadata_sha256(), Some(sha.as_str()), "{key}");
            // A multipart object's checksum is the composite of its parts'.
            if let Some(checksum) = &head.checksum_sha256
                && !checksum.contains('-')
                && !head.etag.contains('-')
            {
                assert_eq!(checksum, &base64_of_hex(sha), "{key}");
            }
            assert_eq!(
                &self.s3.get_object_sha256(&self.bucket, &key).unwrap().1,
                sha
            );
        }
        manifest
    }
}

fn base64_of_hex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    sqs_archive::s3::checksum::base64(&bytes)
}

/// Deterministic bytes that differ from seed to seed.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
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

fn round_trip(server: Server, extra: Value, big: usize) {
    let case = S3Case::new("s3-round-trip", server, extra);
    case.put("aip-1/a.txt", b"alpha\n");
    case.put("aip-1/sub/b c+d%é.bin", &bytes(70_000, 2));
    case.put("aip-1/big.bin", &bytes(big, 3));
    let files = ["aip-1/a.txt", "aip-1/sub/b c+d%é.bin", "aip-1/big.bin"];
    let completions = case.round_trip("aip-1", &files);
    assert_eq!(completions.len(), 1, "{completions:?}");
    let result = &completions[0]["result"];
    assert_eq!(completions[0]["success"], true, "{completions:?}");
    assert_eq!(result["uploaded"], 3, "{result}");
    assert_eq!(result["skipped"], 0, "{result}");
    let manifest = case.assert_consistent("aip-1");
    assert_eq!(manifest.len(), 3);
    assert_eq!(
        manifest["aip-1/a.txt"],
        sqs_archive::digest::sha256_hex(b"alpha\n")
    );
    assert_eq!(result["manifest_sha256"].as_str().unwrap().len(), 64);
    // Delivered again: nothing is sent, every file is reported skipped.
    let again = case.round_trip("aip-1", &files);
    assert_eq!(again[0]["success"], true, "{again:?}");
    assert_eq!(again[0]["result"]["uploaded"], 0, "{again:?}");
    assert_eq!(again[0]["result"]["skipped"], 3, "{again:?}");
    assert!(
        again[0]["result"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["skipped"] == true)
    );
    case.assert_consistent("aip-1");
}

#[test]
fn send_poll_process_into_moto_s3_then_a_second_run_sends_nothing() {
    round_trip(moto(), json!({}), 6 << 20);
}

/// A second S3 implementation: fauxqs refuses bodies over about 11 MiB,
/// so 5 MiB parts, and a 12 MiB file goes in three.
#[test]
fn the_same_round_trip_against_fauxqs_s3_with_small_parts() {
    round_trip(fauxqs(), json!({"s3_part_size": 5}), 12 << 20);
}

#[test]
fn a_64_mib_file_goes_multipart_with_its_storage_class_and_encryption() {
    let case = S3Case::new(
        "s3-multipart",
        moto(),
        json!({"s3_storage_class": "GLACIER_IR", "s3_sse": "AES256"}),
    );
    let data = bytes(64 << 20, 7);
    case.put("big/one.bin", &data);
    let done = case.process("big", &[]);
    done.ok();
    let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
    assert_eq!(result["uploaded"], 1, "{result}");
    let key = format!("{}one.bin", case.prefix("big"));
    let head = case.s3.head_object(&case.bucket, &key).unwrap().unwrap();
    assert!(head.etag.ends_with("-4"), "16 MiB parts: {head:?}");
    assert_eq!(head.storage_class.as_deref(), Some("GLACIER_IR"));
    assert_eq!(head.encryption.as_deref(), Some("AES256"));
    let manifest = case.assert_consistent("big");
    assert_eq!(manifest["one.bin"], sqs_archive::digest::sha256_hex(&data));
    // The manifest stays readable without a restore.
    let m = format!("{}{MANIFEST}", case.prefix("big"));
    let mhead = case.s3.head_object(&case.bucket, &m).unwrap().unwrap();
    assert_ne!(mhead.storage_class.as_deref(), Some("GLACIER_IR"));
}

#[test]
fn two_runs_for_one_aipid_at_once_leave_a_manifest_that_matches_the_objects() {
    let case = S3Case::new("s3-race", moto(), json!({}));
    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("race/f{i:02}.txt");
        case.put(&name, format!("file {i}\n").as_bytes());
        names.push(name);
    }
    for round in 0..3 {
        let (a, b) = names.split_at(4 + round * 2);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        let aipid = format!("race-{round}");
        let (first, second) = std::thread::scope(|s| {
            let one = s.spawn(|| case.process(&aipid, &a));
            let two = s.spawn(|| case.process(&aipid, &b));
            (one.join().unwrap(), two.join().unwrap())
        });
        for done in [&first, &second] {
            assert!(
                done.code() == 0 || done.code() == 75,
                "exit {}: {}",
                done.code(),
                done.stderr()
            );
        }
        if first.code() == 0 && second.code() == 0 {
            let manifest = case.assert_consistent(&aipid);
            assert_eq!(manifest.len(), 12, "both runs' files: {manifest:?}");
        } else {
            case.assert_consistent(&aipid);
        }
    }
}

#[test]
fn faults_between_us_and_moto_never_end_in_a_success_with_wrong_bytes() {
    let mut outcomes = Vec::new();
    for seed in 1..=3u64 {
        let server = moto();
        let proxy = FaultProxy::start(&server.url, seed, Plan::quarter(Duration::from_millis(200)));
        let case = S3Case::through(
            "s3-faults",
            server,
            &proxy.url,
            json!({"s3_part_size": 5, "max_attempts": 3, "http_timeout_seconds": 2}),
        );
        case.put("f/a.txt", b"small\n");
        case.put("f/big.bin", &bytes(12 << 20, seed));
        let done = case.process("f", &[]);
        outcomes.push(done.code());
        match done.code() {
            0 => {
                case.assert_consistent("f");
            }
            code => {
                assert!([75, 76].contains(&code), "exit {code}: {}", done.stderr());
                done.one_line_error();
                // No manifest names an object that is not there as hashed.
                if case.manifest("f").is_some() {
                    case.assert_consistent("f");
                }
            }
        }
        assert!(
            case.s3
                .list_multipart_uploads(&case.bucket, "archive/")
                .unwrap()
                .is_empty(),
            "incomplete uploads are aborted"
        );
        assert!(proxy.faults() > 0 || done.code() == 0);
    }
    eprintln!("exit codes under faults: {outcomes:?}");
}

#[test]
fn a_missing_bucket_exits_65_and_refused_credentials_77() {
    let case = S3Case::new("s3-bad", moto(), json!({}));
    case.put("x/a.txt", b"a\n");
    let missing = case
        .ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env("SQS_ARCHIVE_ARCHIVE_DIR", "s3://no-such-bucket-sqs-archive-it/p")
        .arg("--aipid")
        .arg("x")
        .stdin(json!({"action": "archive", "aipid": "x", "filenames": ["x/a.txt"], "timestamp": "2024-05-01T12:34:56Z"}).to_string())
        .run();
    missing.exit(65).one_line_error().stderr_has("NoSuchBucket");
    let denied = case
        .ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .arg("--aipid")
        .arg("x")
        .stdin(json!({"action": "archive", "aipid": "x", "filenames": ["x/a.txt"], "timestamp": "2024-05-01T12:34:56Z"}).to_string())
        .run();
    denied.exit(77).one_line_error();
    assert!(case.manifest("x").is_none());
}

fn audit(case: &S3Case, args: &[&str]) -> Done {
    let mut all = vec!["--profile", "t", "audit"];
    all.extend(args);
    case.ws.sqs_archive(&all).run()
}

#[test]
fn audit_of_s3_aips_finds_a_deleted_an_extra_and_a_changed_object() {
    let case = S3Case::new("s3-audit", moto(), json!({"s3_part_size": 5}));
    for aipid in ["clean", "damaged"] {
        case.put(&format!("{aipid}/a.txt"), b"alpha\n");
        case.put(&format!("{aipid}/b.txt"), b"beta\n");
        case.put(&format!("{aipid}/c.txt"), b"gamma\n");
        case.put(&format!("{aipid}/big.bin"), &bytes(6 << 20, 9));
        case.process(aipid, &[]).ok();
    }
    audit(&case, &[]).ok();
    audit(&case, &["--download"]).ok();
    let prefix = case.prefix("damaged");
    case.s3
        .delete_object(&case.bucket, &format!("{prefix}a.txt"))
        .unwrap();
    case.s3
        .put_object(
            &case.bucket,
            &format!("{prefix}extra.txt"),
            b"not in the manifest",
            &Default::default(),
        )
        .unwrap();
    case.s3
        .put_object(
            &case.bucket,
            &format!("{prefix}b.txt"),
            b"other bytes",
            &Default::default(),
        )
        .unwrap();
    for args in [&[][..], &["--download"][..]] {
        let done = audit(&case, args);
        done.exit(1)
            .stdout_has("damaged: missing: a.txt")
            .stdout_has("damaged: extra: extra.txt")
            .stdout_has("damaged: changed: b.txt");
        assert!(!done.stdout().contains("clean:"), "{}", done.stdout());
        assert!(!done.stdout().contains("c.txt"), "{}", done.stdout());
        assert!(!done.stdout().contains("big.bin"), "{}", done.stdout());
    }
    audit(&case, &["--aipid", "clean"]).ok();
    audit(&case, &["--aipid", "nothing-here"])
        .exit(1)
        .stdout_has("nothing-here: manifest: no such AIP");
}

/// doctor's checks of an s3:// archive_dir, by name, from `--json`.
fn doctor_checks(case: &S3Case, archive_dir: Option<&str>) -> BTreeMap<String, (String, String)> {
    let mut run = case.ws.sqs_archive(&["--profile", "t", "doctor", "--json"]);
    if let Some(dir) = archive_dir {
        run = run.env("SQS_ARCHIVE_ARCHIVE_DIR", dir);
    }
    let done = run.run();
    let report: Value = serde_json::from_str(done.stdout().trim()).expect("doctor --json");
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["detail"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn doctor_checks_the_bucket_writes_and_removes_a_probe_and_names_class_and_encryption() {
    let case = S3Case::new(
        "s3-doctor",
        moto(),
        json!({"s3_storage_class": "DEEP_ARCHIVE", "s3_sse": "AES256"}),
    );
    let checks = doctor_checks(&case, None);
    assert_eq!(checks["s3 bucket"].0, "ok", "{checks:?}");
    assert_eq!(checks["s3 write"].0, "ok", "{checks:?}");
    assert!(checks["s3 write"].1.contains("AES256"), "{checks:?}");
    assert!(
        checks["s3 objects"].1.contains("DEEP_ARCHIVE"),
        "{checks:?}"
    );
    assert!(!checks.contains_key("archive_dir"), "{checks:?}");
    // The probe was removed.
    assert!(case.s3.list_objects(&case.bucket, "").unwrap().is_empty());
    assert!(!checks.contains_key("s3 credentials"), "{checks:?}");
    let missing = doctor_checks(&case, Some("s3://no-such-bucket-sqs-archive-doctor/p"));
    assert_eq!(missing["s3 bucket"].0, "fail", "{missing:?}");
    assert!(missing["s3 bucket"].1.contains("set by"), "{missing:?}");
}

#[test]
fn install_guide_has_the_s3_policy_and_the_lifecycle_rule() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/INSTALL.md")).unwrap();
    let section = &text[text.find("### Archiving into S3").expect("an S3 section")..];
    let policy = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a json block");
    let policy: Value = serde_json::from_str(policy).expect("the S3 policy parses");
    let actions = policy.to_string();
    for action in [
        "s3:PutObject",
        "s3:GetObject",
        "s3:GetObjectAttributes",
        "s3:ListBucket",
        "s3:AbortMultipartUpload",
        "kms:GenerateDataKey",
    ] {
        assert!(actions.contains(action), "the S3 policy lacks {action}");
    }
    assert!(section.contains("AbortIncompleteMultipartUpload"));
}

/// A loopback proxy that flips one byte in the body of the PUTs it is told
/// to (the first `flips` of them; `u64::MAX`: all), forwarding everything
/// else as it is. moto does not check checksums, so only our comparison of
/// its answer (the MD5 ETag) stands between a flipped byte and a success.
struct FlipProxy {
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    flipped: Arc<std::sync::atomic::AtomicU64>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl FlipProxy {
    fn start(upstream: &str, flips: u64) -> FlipProxy {
        use std::io::Write as _;
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let upstream: std::net::SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flipped = Arc::new(AtomicU64::new(0));
        let (s, f) = (stop.clone(), flipped.clone());
        let acceptor = std::thread::spawn(move || {
            std::thread::scope(|scope| {
                while !s.load(Ordering::SeqCst) {
                    let Ok((mut client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let (s, f) = (&s, &f);
                    scope.spawn(move || {
                        let _ = client.set_nonblocking(false);
                        let mut pending = Vec::new();
                        while let Some(mut request) = crate::proxy::read_message(
                            &mut client,
                            &mut pending,
                            s,
                            Duration::from_secs(30),
                        ) {
                            let put = request.head.starts_with(b"PUT ");
                            if put
                                && request.body_len > 0
                                && f.fetch_add(1, Ordering::SeqCst) < flips
                            {
                                let at = request.head.len() + request.body_len / 2;
                                request.bytes[at] ^= 0x01;
                            } else if put && request.body_len > 0 {
                                f.fetch_sub(1, Ordering::SeqCst);
                            }
                            let Ok(mut up) =
                                TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                            else {
                                return;
                            };
                            if up.write_all(&request.bytes).is_err() {
                                return;
                            }
                            let mut upending = Vec::new();
                            let Some(answer) = crate::proxy::read_message(
                                &mut up,
                                &mut upending,
                                s,
                                Duration::from_secs(60),
                            ) else {
                                return;
                            };
                            if client.write_all(&answer.bytes).is_err() || answer.close {
                                return;
                            }
                        }
                    });
                }
            });
        });
        FlipProxy {
            url,
            stop,
            flipped,
            acceptor: Some(acceptor),
        }
    }

    fn flipped(&self) -> u64 {
        self.flipped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FlipProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

#[test]
fn a_flipped_byte_is_caught_resent_and_never_ends_in_a_success_with_wrong_bytes() {
    // The first PUT of a small file and the first part of a large one
    // arrive with a byte flipped: both are sent again and stored right.
    let server = moto();
    let proxy = FlipProxy::start(&server.url, 2);
    let case = S3Case::through(
        "s3-flip-once",
        server,
        &proxy.url,
        json!({"s3_part_size": 5}),
    );
    case.put("flip/a.txt", b"the bytes we hashed\n");
    case.put("flip/big.bin", &bytes(11 << 20, 5));
    let done = case.process("flip", &[]);
    done.ok();
    assert!(proxy.flipped() >= 2, "the proxy flipped bytes");
    case.assert_consistent("flip");

    // Every PUT flipped: no success, one line, exit 75, no manifest, no
    // upload left in progress.
    let server = moto();
    let proxy = FlipProxy::start(&server.url, u64::MAX);
    let case = S3Case::through(
        "s3-flip-always",
        server,
        &proxy.url,
        json!({"s3_part_size": 5}),
    );
    case.put("flip/a.txt", b"the bytes we hashed\n");
    case.put("flip/big.bin", &bytes(11 << 20, 6));
    let done = case.process("flip", &[]);
    done.exit(75).one_line_error();
    assert!(
        case.manifest("flip").is_none(),
        "no manifest after a failure"
    );
    assert!(
        case.s3
            .list_multipart_uploads(&case.bucket, "archive/")
            .unwrap()
            .is_empty()
    );
    assert!(
        case.s3
            .head_object(&case.bucket, &format!("{}big.bin", case.prefix("flip")))
            .unwrap()
            .is_none(),
        "no multipart object with wrong bytes"
    );
    // moto kept the last flipped single PUT, under our metadata; the next
    // run (straight to moto) must not take it for ours and skip it.
    let direct = case
        .ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env("AWS_ENDPOINT_URL_S3", &case.server.url)
        .arg("--aipid")
        .arg("flip")
        .stdin(json!({"action": "archive", "aipid": "flip", "filenames": [], "timestamp": "2024-05-01T12:34:56Z"}).to_string())
        .run();
    direct.ok();
    let result: Value = serde_json::from_str(direct.stdout().trim()).unwrap();
    assert_eq!(result["skipped"], 0, "{result}");
    case.assert_consistent("flip");
}

#[test]
fn throttling_that_outlasts_the_retries_exits_75_and_a_bad_s3_url_78() {
    let server = moto();
    let mut plan = Plan::none();
    plan.status_503 = 50;
    plan.throttle = 50;
    let proxy = FaultProxy::start(&server.url, 7, plan);
    let case = S3Case::through(
        "s3-slowdown",
        server,
        &proxy.url,
        json!({"max_attempts": 2}),
    );
    case.put("t/a.txt", b"a\n");
    case.process("t", &[])
        .exit(75)
        .one_line_error()
        .stderr_has("try again later");
    assert!(proxy.faults() >= 2);
    let bad = case
        .ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env("SQS_ARCHIVE_ARCHIVE_DIR", "s3://Not_A_Bucket/x")
        .arg("--aipid")
        .arg("t")
        .stdin("{}")
        .run();
    bad.exit(78).one_line_error().stderr_has("archive_dir");
}

#[test]
fn credentials_names_the_s3_endpoint_of_an_s3_archive_dir() {
    let case = S3Case::new("s3-credentials", moto(), json!({}));
    let done = case
        .ws
        .sqs_archive(&["--profile", "t", "credentials"])
        .run();
    done.ok()
        .stdout_has(&format!(
            "s3 endpoint: {}",
            case.server.url.trim_end_matches('/')
        ))
        .stdout_has("chain step");
    assert!(!done.stdout().contains(&case.server.secret_access_key));
}

#[test]
fn doctor_warns_when_process_message_would_not_see_the_environments_keys() {
    let case = S3Case::new("s3-doctor-keys", moto(), json!({}));
    let archive_dir = format!("s3://{}/p", case.bucket);
    case.ws.mock_profile(
        "t",
        json!({"archive_dir": archive_dir, "pass_aws_credentials_to_handler": false}),
    );
    let checks = doctor_checks(&case, None);
    assert_eq!(checks["s3 credentials"].0, "warn", "{checks:?}");
    assert!(
        checks["s3 credentials"]
            .1
            .contains("pass_aws_credentials_to_handler")
    );
}
