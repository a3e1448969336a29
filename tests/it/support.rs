//! The test harness: scratch workspaces, the emulators started by
//! `scripts/test-servers.sh`, and a fluent runner for the built binaries.
//!
//! Every binary runs with a cleared environment (only `PATH` and a scratch
//! `HOME`), so a developer's own AWS settings never leak into a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqs_archive::aws::http::HttpOptions;
use sqs_archive::queue::{ArchiveClient, ReceiveRequest, ReceivedMessage};
use sqs_archive::sqs::Protocol;
use sqs_archive::sqs::{SqsArchiveClient, SqsOptions};

pub const SQS_ARCHIVE: &str = env!("CARGO_BIN_EXE_sqs_archive");
pub const POLL_MESSAGES: &str = env!("CARGO_BIN_EXE_poll_messages");
pub const PROCESS_MESSAGE: &str = env!("CARGO_BIN_EXE_process_message");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// An emulator started by `scripts/test-servers.sh run`.
#[derive(Clone, Debug)]
pub struct Server {
    pub url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub protocol: Protocol,
}

fn server(name: &'static str, var: &str, protocol: Protocol) -> Server {
    let get = |suffix: &str| {
        let key = format!("SQS_ARCHIVE_IT_{var}_{suffix}");
        std::env::var(&key).unwrap_or_else(|_| {
            panic!("{key} is not set: run the tests with `make test` (scripts/test-servers.sh starts {name})")
        })
    };
    Server {
        url: get("URL"),
        access_key_id: get("ACCESS_KEY_ID"),
        secret_access_key: get("SECRET_ACCESS_KEY"),
        region: get("REGION"),
        protocol,
    }
}

/// moto's server, signature checking on, query protocol.
pub fn moto() -> Server {
    server("moto", "MOTO", Protocol::Query)
}

/// moto's server spoken to in AWS JSON 1.0.
pub fn moto_json() -> Server {
    Server {
        protocol: Protocol::Json,
        ..moto()
    }
}

/// fauxqs, a JSON-protocol-only emulator.
pub fn fauxqs() -> Server {
    server("fauxqs", "FAUXQS", Protocol::Json)
}

impl Server {
    /// A library client, for set-up and for looking at queues.
    pub fn client(&self) -> SqsArchiveClient {
        let credentials = sqs_archive::aws::credentials::Credentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: sqs_archive::secret::Secret::new(&self.secret_access_key),
            session_token: None,
            expiry: None,
            source: "test".into(),
        };
        SqsArchiveClient::new(
            SqsOptions {
                endpoint: self.url.clone(),
                region: self.region.clone(),
                protocol: self.protocol,
                max_attempts: 3,
                http: HttpOptions {
                    timeout: Duration::from_secs(30),
                    ..HttpOptions::default()
                },
                max_message_size: 1 << 20,
                receive_margin: std::time::Duration::from_secs(10),
            },
            Arc::new(credentials),
        )
        .expect("client")
    }

    /// A new queue; FIFO when the name ends in `.fifo`.
    pub fn queue(&self, prefix: &str, fifo: bool) -> String {
        let name = if fifo {
            format!("{}.fifo", unique(prefix))
        } else {
            unique(prefix)
        };
        let attributes: &[(&str, &str)] = if fifo { &[("FifoQueue", "true")] } else { &[] };
        self.client()
            .create_queue(&name, attributes)
            .expect("create queue")
    }

    /// Profile keys that point a workspace at this server.
    pub fn profile(&self, request_queue: &str, completion_queue: &str) -> Value {
        json!({
            "backend": "sqs",
            "protocol": match self.protocol { Protocol::Query => "query", Protocol::Json => "json" },
            "endpoint_url": self.url,
            "region": self.region,
            "request_queue_url": request_queue,
            "completion_queue_url": completion_queue,
            "max_attempts": 3,
        })
    }

    /// Environment variables with this server's keys.
    pub fn key_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
        ]
    }
}

/// A scratch directory with `config/`, `source/` and `archive/`, removed when dropped
/// (kept when the test panics, for a look).
pub struct Workspace {
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl Workspace {
    pub fn new(name: &str) -> Workspace {
        let dir = std::env::temp_dir().join(unique(&format!("sqs-archive-it-{name}")));
        for sub in ["config", "source", "archive", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        );
        env.insert("HOME".to_string(), dir.join("home").display().to_string());
        env.insert("AWS_EC2_METADATA_DISABLED".to_string(), "true".into());
        Workspace { dir, env }
    }

    /// Writes `config/<name>.json`: the base keys below, then `extra` on top.
    pub fn profile(&self, name: &str, extra: Value) -> &Workspace {
        let mut base = json!({
            "source_dir": self.path("source"),
            "archive_dir": self.path("archive"),
            "lock_file": self.path("poll.lock"),
            "mock_dir": self.path("mock"),
            "wait_time_seconds": 0,
            "visibility_timeout": 30,
            "handler": [PROCESS_MESSAGE],
        });
        for (k, v) in extra.as_object().expect("profile keys").iter() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        self.write(
            &format!("config/{name}.json"),
            &serde_json::to_string_pretty(&base).unwrap(),
        );
        self
    }

    /// A mock-backed profile with queues of its own.
    pub fn mock_profile(&self, name: &str, extra: Value) -> &Workspace {
        let mut keys = json!({
            "backend": "mock",
            "request_queue_url": "mock://requests",
            "completion_queue_url": "mock://completions",
        });
        for (k, v) in extra.as_object().unwrap() {
            keys[k] = v.clone();
        }
        self.profile(name, keys)
    }

    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn set_env(&mut self, pairs: impl IntoIterator<Item = (String, String)>) -> &mut Workspace {
        self.env.extend(pairs);
        self
    }

    /// A command for one of the binaries, in this workspace, with a clean environment.
    pub fn cmd(&self, program: &str) -> Run {
        let mut command = Command::new(program);
        command.current_dir(&self.dir).env_clear().envs(&self.env);
        Run {
            command,
            stdin: None,
        }
    }

    pub fn sqs_archive(&self, args: &[&str]) -> Run {
        let mut run = self.cmd(SQS_ARCHIVE);
        run.command.args(args);
        run
    }

    /// `sqs_archive --profile PROFILE send --aipid AIPID --filenames FILES...`.
    pub fn send(&self, profile: &str, aipid: &str, files: &[&str]) -> Run {
        let mut args = vec![
            "--profile",
            profile,
            "send",
            "--aipid",
            aipid,
            "--filenames",
        ];
        args.extend(files);
        self.sqs_archive(&args)
    }

    /// `sqs_archive` with its stdout redirected by the shell: `">&-"`
    /// (closed) or `">/dev/full"`, as an operator's script would.
    pub fn sqs_archive_stdout(&self, redirect: &str, args: &[&str]) -> Run {
        let mut run = self.cmd("sh");
        run.command
            .arg("-c")
            .arg(format!("exec \"$0\" \"$@\" {redirect}"))
            .arg(SQS_ARCHIVE)
            .args(args);
        run
    }

    pub fn poll(&self, args: &[&str]) -> Run {
        let mut run = self.cmd(POLL_MESSAGES);
        run.command.args(args);
        run
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A command about to run.
pub struct Run {
    pub command: Command,
    stdin: Option<Vec<u8>>,
}

impl Run {
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.command.arg(a);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.command.env(k, v);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to the end (at most two minutes).
    pub fn run(mut self) -> Done {
        use std::io::Write;
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawn");
        if let Some(bytes) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let output = wait_bounded(child, Duration::from_secs(120));
        Done {
            output,
            what: format!("{:?}", self.command),
        }
    }

    /// Starts it in the background.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command.spawn().expect("spawn")
    }
}

/// Waits for a child, killing it past the limit so a hung binary fails the test.
pub fn wait_bounded(child: std::process::Child, limit: Duration) -> Output {
    // Output is read while the child runs (wait_with_output drains both
    // pipes), so a chatty process cannot fill a pipe and stall.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            let out = rx.recv().expect("output after kill").expect("output");
            panic!(
                "process ran past {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A finished run, with assertions that print everything when they fail.
pub struct Done {
    pub output: Output,
    what: String,
}

impl Done {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    fn explain(&self) -> String {
        format!(
            "{}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn exit(&self, code: i32) -> &Done {
        assert_eq!(self.code(), code, "{}", self.explain());
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Done {
        self.exit(0)
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Done {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.explain()
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Done {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.explain()
        );
        self
    }

    /// Asserts the failure is reported as exactly one line on stderr, without a panic.
    #[track_caller]
    pub fn one_line_error(&self) -> &Done {
        let err = self.stderr();
        let lines: Vec<_> = err.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line\n{}",
            self.explain()
        );
        assert!(!err.contains("panicked"), "{}", self.explain());
        self
    }

    /// stdout as JSON lines.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON: {l}: {e}\n{}", self.explain()))
            })
            .collect()
    }
}

/// Everything on a queue right now (visibility 0: nothing is hidden by looking).
pub fn drain(client: &dyn ArchiveClient, queue: &str) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    let mut empty_in_a_row = 0;
    while empty_in_a_row < 2 {
        let got = client
            .receive_messages(
                queue,
                &ReceiveRequest {
                    max_messages: 10,
                    wait_seconds: 0,
                    visibility_timeout: Some(30),
                },
            )
            .expect("receive");
        if got.is_empty() {
            empty_in_a_row += 1;
        } else {
            empty_in_a_row = 0;
        }
        all.extend(got);
    }
    all
}

/// The bodies of messages, as JSON.
pub fn bodies(messages: &[ReceivedMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| serde_json::from_str(&m.body).expect("JSON body"))
        .collect()
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sqs_archive::digest::sha256_hex(&bytes)
}

pub use crate::fakes::{FakeHttp, read_http_request};

/// `2026-01-02T03:04:05Z`, as the metadata services write `Expiration`.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Howard Hinnant's civil_from_days.
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = (mp + 2) % 12 + 1;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// The server the protocol-independent tests run against, chosen by
/// `SQS_ARCHIVE_IT_TARGET`: `moto-query` (default), `moto-json` or
/// `fauxqs`. `make test` runs the `cli` and `poller` modules once per target.
pub fn sqs() -> Server {
    match std::env::var("SQS_ARCHIVE_IT_TARGET").as_deref() {
        Err(_) | Ok("moto-query") => moto(),
        Ok("moto-json") => moto_json(),
        Ok("fauxqs") => fauxqs(),
        Ok(other) => {
            panic!("unknown SQS_ARCHIVE_IT_TARGET {other:?}: use moto-query, moto-json or fauxqs")
        }
    }
}

impl Server {
    /// A well-formed URL of a queue that does not exist on this server.
    pub fn missing_queue_url(&self) -> String {
        let account = if self.url == fauxqs_url() {
            "000000000000"
        } else {
            "123456789012"
        };
        format!("{}/{account}/{}", self.url, unique("missing"))
    }
}

fn fauxqs_url() -> String {
    std::env::var("SQS_ARCHIVE_IT_FAUXQS_URL").unwrap_or_default()
}
