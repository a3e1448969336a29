//! `make bench`: whole-process figures for the three binaries, printed as a
//! Markdown table of medians over repeated runs.
//!
//! 1. `sqs_archive send`: wall time of one whole invocation.
//! 2. `poll_messages` draining N requests with a trivial handler (reads stdin,
//!    exits 0): messages per second, the poller's own CPU per message, its
//!    peak RSS, and its share of all CPU spent (poller + handlers).
//! 3. The same with the real `process_message` archiving one small file each.
//! 4. Static binary sizes.
//! 5. Side by side on fauxqs: the same drain (trivial handler, 4 workers,
//!    the same 1 s long poll: a drain's end costs each one empty long poll) by
//!    `poll_messages`, by a Rust worker on the official SDK
//!    (`bench/sdk-worker`, aws-sdk-sqs + tokio) and by the prototype's design
//!    (`bench/boto3_worker.py`, boto3 + ThreadPoolExecutor(4)), plus
//!    `poll_messages` on the directory queue (`backend: mock`); alternating,
//!    medians, with the ratios and the issues' targets (the directory
//!    queue's: poller CPU ≤ 0.25 ms/msg, throughput ≥ the fauxqs drain's).
//!    The SDK worker and boto3 run only when installed.
//!
//! Run under `scripts/test-servers.sh run --` so moto and fauxqs are up (the
//! Makefile does). Knobs: `BENCH_MESSAGES` (1000), `BENCH_RUNS` (3),
//! `BENCH_SENDS` (30), `BENCH_BACKENDS` (mock,moto,fauxqs), `BENCH_ONLY`
//! (`side-by-side` skips sections 1 to 3).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqs_archive::aws::credentials::Credentials;
use sqs_archive::aws::http::HttpOptions;
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::queue::{ArchiveClient, OutgoingMessage};
use sqs_archive::secret::Secret;
use sqs_archive::sqs::Protocol;
use sqs_archive::sqs::{SqsArchiveClient, SqsOptions};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The binaries measured: the static ones when built (what ships), else cargo's.
fn binary(name: &str) -> PathBuf {
    let static_one = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/static")
        .join(name);
    if static_one.exists() {
        return static_one;
    }
    match name {
        "sqs_archive" => env!("CARGO_BIN_EXE_sqs_archive").into(),
        "poll_messages" => env!("CARGO_BIN_EXE_poll_messages").into(),
        _ => env!("CARGO_BIN_EXE_process_message").into(),
    }
}

/// A queue service to measure against.
struct Backend {
    name: String,
    /// Profile keys for the service (queues are added per run).
    keys: Value,
    env: Vec<(String, String)>,
    server: Option<(String, String, String, String, Protocol)>,
}

impl Backend {
    fn all(dir: &Path) -> Vec<Backend> {
        let wanted = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "mock,moto,fauxqs".into());
        Backend::list(dir, &wanted)
    }

    fn list(dir: &Path, wanted: &str) -> Vec<Backend> {
        let mut out = Vec::new();
        for name in wanted.split(',') {
            if name == "mock" {
                out.push(Backend {
                    name: "mock".into(),
                    keys: json!({"backend": "mock", "mock_dir": dir.join("mock")}),
                    env: vec![],
                    server: None,
                });
                continue;
            }
            let var = name.to_ascii_uppercase();
            let get = |s: &str| {
                std::env::var(format!("SQS_ARCHIVE_IT_{var}_{s}"))
                    .unwrap_or_else(|_| panic!("{name} is not running: use `make bench`"))
            };
            let protocol = if name == "fauxqs" {
                Protocol::Json
            } else {
                Protocol::Query
            };
            let (url, key, secret, region) = (
                get("URL"),
                get("ACCESS_KEY_ID"),
                get("SECRET_ACCESS_KEY"),
                get("REGION"),
            );
            out.push(Backend {
                name: name.into(),
                keys: json!({"backend": "sqs", "endpoint_url": url, "region": region,
                             "protocol": if protocol == Protocol::Json { "json" } else { "query" }}),
                env: vec![("AWS_ACCESS_KEY_ID".into(), key.clone()), ("AWS_SECRET_ACCESS_KEY".into(), secret.clone())],
                server: Some((url, key, secret, region, protocol)),
            });
        }
        out
    }

    /// One backend by name, whatever `BENCH_BACKENDS` says.
    fn named(dir: &Path, name: &str) -> Backend {
        Backend::list(dir, name).pop().expect("backend")
    }

    fn client(&self, dir: &Path) -> Arc<dyn ArchiveClient> {
        match &self.server {
            None => Arc::new(DirArchiveClient::new(dir.join("mock"), 1 << 20)),
            Some(_) => Arc::new(self.sqs_client()),
        }
    }

    /// Two new queues: (request, completion).
    fn queues(&self, tag: &str) -> (String, String) {
        let unique = format!(
            "bench-{}-{tag}-{}",
            std::process::id(),
            sqs_archive::random::u64() % 1_000_000_000
        );
        match &self.server {
            None => (
                format!("mock://{unique}-req"),
                format!("mock://{unique}-done"),
            ),
            Some(_) => {
                let client = self.sqs_client();
                (
                    client
                        .create_queue(&format!("{unique}-req"), &[])
                        .expect("create queue"),
                    client
                        .create_queue(&format!("{unique}-done"), &[])
                        .expect("create queue"),
                )
            }
        }
    }

    fn sqs_client(&self) -> SqsArchiveClient {
        let (url, key, secret, region, protocol) = self.server.clone().unwrap();
        SqsArchiveClient::new(
            SqsOptions {
                endpoint: url,
                region,
                protocol,
                max_attempts: 5,
                http: HttpOptions {
                    timeout: Duration::from_secs(60),
                    ..HttpOptions::default()
                },
                max_message_size: 1 << 20,
                receive_margin: std::time::Duration::from_secs(10),
            },
            Arc::new(Credentials {
                access_key_id: key,
                secret_access_key: Secret::new(secret),
                session_token: None,
                expiry: None,
                source: "bench".into(),
            }),
        )
        .expect("client")
    }
}

fn write_profile(
    dir: &Path,
    backend: &Backend,
    request: &str,
    completion: &str,
    extra: Value,
) -> PathBuf {
    let mut keys = backend.keys.clone();
    keys["request_queue_url"] = json!(request);
    keys["completion_queue_url"] = json!(completion);
    keys["wait_time_seconds"] = json!(0);
    keys["lock_file"] = json!(dir.join("poll.lock"));
    keys["source_dir"] = json!(dir.join("source"));
    keys["archive_dir"] = json!(dir.join("archive"));
    for (k, v) in extra.as_object().unwrap() {
        keys[k] = v.clone();
    }
    let path = dir.join(format!("profile-{}.json", sqs_archive::random::hex_id()));
    std::fs::write(&path, keys.to_string()).unwrap();
    path
}

fn command(program: &Path, dir: &Path, backend: &Backend) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(backend.env.iter().map(|(k, v)| (k, v)));
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU time of this process's waited-for descendants (`cutime + cstime`).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[13].parse::<u64>().unwrap() + fields[14].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn bench_send(dir: &Path, backend: &Backend, runs: usize) -> (f64, f64) {
    let (request, completion) = backend.queues("send");
    let profile = write_profile(dir, backend, &request, &completion, json!({}));
    let mut times = Vec::new();
    for i in 0..runs + 3 {
        let started = Instant::now();
        let out = command(&binary("sqs_archive"), dir, backend)
            .arg("--config")
            .arg(&profile)
            .args(["send", "--aipid", "bench", "--filenames", "a", "b"])
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if i >= 3 {
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    (median(times.clone()), percentile(times, 0.9))
}

struct Drain {
    per_second: f64,
    poller_cpu_ms_per_message: f64,
    peak_rss_kib: f64,
    poller_share: f64,
}

fn summary_field(stderr: &str, key: &str) -> f64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("summary:"))
        .expect("summary line");
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    value
        .trim_end_matches("KiB")
        .trim_end_matches('s')
        .parse()
        .unwrap()
}

fn bench_drain(dir: &Path, backend: &Backend, n: usize, real_handler: bool) -> Drain {
    let (request, completion) = backend.queues("drain");
    let handler = if real_handler {
        json!([binary("process_message")])
    } else {
        json!(["/bin/sh", "-c", "cat >/dev/null", "trivial-handler"])
    };
    let profile = write_profile(
        dir,
        backend,
        &request,
        &completion,
        json!({"workers": 4, "handler": handler, "visibility_timeout": 120}),
    );
    let client = backend.client(dir);
    std::fs::create_dir_all(dir.join("source")).unwrap();
    std::fs::create_dir_all(dir.join("archive")).unwrap();
    std::fs::write(
        dir.join("source/small.txt"),
        "a small file to archive\n".repeat(40),
    )
    .unwrap();
    let messages: Vec<OutgoingMessage> = (0..n)
        .map(|i| {
            let body = json!({"action": "archive", "aipid": format!("b{i}-{}", sqs_archive::random::u64() % 1_000_000),
                              "filenames": ["small.txt"], "timestamp": "2026-11-28T00:00:00Z"});
            OutgoingMessage::new(body.to_string())
        })
        .collect();
    for chunk in messages.chunks(10) {
        for r in client
            .send_message_batch(&request, chunk)
            .expect("send batch")
        {
            r.expect("sent");
        }
    }
    let before = children_cpu();
    let started = Instant::now();
    let out = command(&binary("poll_messages"), dir, backend)
        .arg("--config")
        .arg(&profile)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let total_cpu = children_cpu() - before;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let succeeded = summary_field(&stderr, "succeeded");
    assert_eq!(
        succeeded as usize,
        n,
        "{}",
        stderr.lines().last().unwrap_or("")
    );
    let poller_cpu = summary_field(&stderr, "cpu");
    Drain {
        per_second: n as f64 / elapsed.as_secs_f64(),
        poller_cpu_ms_per_message: poller_cpu * 1000.0 / n as f64,
        peak_rss_kib: summary_field(&stderr, "peak_rss"),
        poller_share: poller_cpu / total_cpu.as_secs_f64().max(1e-9),
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // must not start a ten-minute benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("bench/perf.rs: run it with `make bench`");
        return;
    }
    let n = knob("BENCH_MESSAGES", 1000);
    let runs = knob("BENCH_RUNS", 3);
    let sends = knob("BENCH_SENDS", 30);
    let dir = std::env::temp_dir().join(format!("sqs-archive-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backends = if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "side-by-side") {
        Vec::new()
    } else {
        Backend::all(&dir)
    };
    println!(
        "sqs-archive benchmarks: {n} messages per drain, medians of {runs} drains and {sends} sends"
    );
    println!(
        "binaries: {}",
        binary("poll_messages").parent().unwrap().display()
    );
    println!();
    let side_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "side-by-side");
    if !side_only {
        println!(
            "| backend | send wall ms (median / p90) | handler | drain msg/s | poller CPU ms/msg | poller peak RSS MiB | poller share of CPU |"
        );
        println!("|---|---|---|---|---|---|---|");
        for backend in &backends {
            let (send_median, send_p90) = bench_send(&dir, backend, sends);
            for real in [false, true] {
                let drains: Vec<Drain> = (0..runs)
                    .map(|_| bench_drain(&dir, backend, n, real))
                    .collect();
                println!(
                    "| {} | {:.1} / {:.1} | {} | {:.0} | {:.3} | {:.1} | {:.1}% |",
                    backend.name,
                    send_median,
                    send_p90,
                    if real {
                        "process_message"
                    } else {
                        "trivial (sh: cat)"
                    },
                    median(drains.iter().map(|d| d.per_second).collect()),
                    median(drains.iter().map(|d| d.poller_cpu_ms_per_message).collect()),
                    median(drains.iter().map(|d| d.peak_rss_kib).collect()) / 1024.0,
                    median(drains.iter().map(|d| d.poller_share * 100.0).collect()),
                );
            }
        }
    }
    println!();
    println!("| static binary | size (MiB) |");
    println!("|---|---|");
    for name in ["sqs_archive", "poll_messages", "process_message"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/static")
            .join(name);
        match std::fs::metadata(&path) {
            Ok(m) => println!("| {name} | {:.2} |", m.len() as f64 / (1 << 20) as f64),
            Err(_) => println!("| {name} | (run `make static`) |"),
        }
    }
    side_by_side(&dir, n, runs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A drain's figures, from the contender's own summary line.
#[derive(Clone, Copy, Debug)]
struct Figures {
    wall: f64,
    cpu_ms_per_message: f64,
    peak_rss_mib: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Ours,
    Sdk,
    Boto3,
    OursMock,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Ours => "poll_messages (static), fauxqs",
            Contender::Sdk => "aws-sdk-sqs + tokio worker, fauxqs",
            Contender::Boto3 => "boto3 ThreadPoolExecutor(4), fauxqs",
            Contender::OursMock => "poll_messages (static), directory queue",
        }
    }
}

fn trivial_handler() -> Vec<String> {
    ["/bin/sh", "-c", "cat >/dev/null", "trivial-handler"]
        .map(String::from)
        .to_vec()
}

fn fill(client: &dyn ArchiveClient, queue: &str, n: usize) {
    let messages: Vec<OutgoingMessage> = (0..n)
        .map(|i| {
            let body = json!({"action": "archive", "aipid": format!("s{i}-{}", sqs_archive::random::u64() % 1_000_000),
                              "filenames": ["small.txt"], "timestamp": "2026-11-28T00:00:00Z"});
            OutgoingMessage::new(body.to_string())
        })
        .collect();
    for chunk in messages.chunks(10) {
        for r in client.send_message_batch(queue, chunk).expect("send batch") {
            r.expect("sent");
        }
    }
}

/// The long poll of every contender in the side-by-side drain, in seconds.
const SIDE_BY_SIDE_WAIT: u32 = 1;

/// One drain of `n` requests by one contender.
fn drain_by(dir: &Path, fauxqs: &Backend, mock: &Backend, who: Contender, n: usize) -> Figures {
    let backend = if who == Contender::OursMock {
        mock
    } else {
        fauxqs
    };
    let (request, completion) = backend.queues("sbs");
    fill(backend.client(dir).as_ref(), &request, n);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = match who {
        Contender::Ours | Contender::OursMock => {
            let profile = write_profile(
                dir,
                backend,
                &request,
                &completion,
                json!({"workers": 4, "handler": trivial_handler(), "visibility_timeout": 120,
                       "wait_time_seconds": SIDE_BY_SIDE_WAIT}),
            );
            let mut c = command(&binary("poll_messages"), dir, backend);
            c.arg("--config").arg(&profile);
            c
        }
        Contender::Sdk | Contender::Boto3 => {
            let (url, _, _, region, _) = backend.server.clone().expect("a server");
            let mut c = if who == Contender::Sdk {
                command(
                    &root.join("bench/sdk-worker/target/release/sdk-worker"),
                    dir,
                    backend,
                )
            } else {
                let mut c = command(&root.join(".venv/bin/python"), dir, backend);
                c.arg(root.join("bench/boto3_worker.py"));
                c
            };
            c.args(trivial_handler())
                .env("AWS_ENDPOINT_URL", url)
                .env("AWS_REGION", region)
                .env("REQUEST_QUEUE_URL", &request)
                .env("COMPLETION_QUEUE_URL", &completion)
                .env("WORKERS", "4")
                .env("WAIT_TIME_SECONDS", SIDE_BY_SIDE_WAIT.to_string());
            c
        }
    };
    let started = Instant::now();
    let out = cmd.output().expect("start the contender");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", who.name());
    let succeeded = summary_field(&stderr, "succeeded") as usize;
    assert_eq!(
        succeeded,
        n,
        "{}: {}",
        who.name(),
        stderr.lines().last().unwrap_or("")
    );
    Figures {
        wall,
        cpu_ms_per_message: summary_field(&stderr, "cpu") * 1000.0 / n as f64,
        peak_rss_mib: summary_field(&stderr, "peak_rss") / 1024.0,
    }
}

/// Section 5: see the module documentation. The two `poll_messages` drains
/// (fauxqs and the directory queue) always run; the SDK worker and boto3
/// only when they are installed (`bench/run.sh` builds them).
fn side_by_side(dir: &Path, n: usize, runs: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sdk_built = root
        .join("bench/sdk-worker/target/release/sdk-worker")
        .exists();
    let boto3_installed = root.join(".venv/bin/python").exists();
    if !sdk_built {
        println!(
            "\nside by side: bench/sdk-worker is not built (bench/run.sh builds it): left out"
        );
    }
    // This section's two backends, whatever BENCH_BACKENDS says.
    let fauxqs = Backend::named(dir, "fauxqs");
    let mock = Backend::named(dir, "mock");
    let order: Vec<Contender> = [
        Contender::Ours,
        Contender::Sdk,
        Contender::Boto3,
        Contender::OursMock,
    ]
    .into_iter()
    .filter(|c| match c {
        Contender::Sdk => sdk_built,
        Contender::Boto3 => boto3_installed,
        _ => true,
    })
    .collect();
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); order.len()];
    for round in 0..runs {
        // Alternate who goes first, so drift on a noisy machine is shared.
        for k in 0..order.len() {
            let i = (k + round) % order.len();
            figures[i].push(drain_by(dir, &fauxqs, &mock, order[i], n));
        }
    }
    let at = |who: Contender| order.iter().position(|c| *c == who);
    let med = |i: usize, f: fn(&Figures) -> f64| median(figures[i].iter().map(f).collect());
    println!();
    println!(
        "Side by side: {n} requests, 4 workers, trivial handler (sh: cat), {SIDE_BY_SIDE_WAIT} s long poll, medians of {runs} alternating drains"
    );
    println!();
    println!(
        "| contender | wall s | msg/s | poller CPU ms/msg | peak RSS MiB | wall vs SDK | CPU vs SDK |"
    );
    println!("|---|---|---|---|---|---|---|");
    let sdk = at(Contender::Sdk);
    let versus = |i: usize, f: fn(&Figures) -> f64| {
        sdk.map_or("–".to_string(), |s| {
            format!("{:.2}×", med(i, f) / med(s, f))
        })
    };
    for (i, who) in order.iter().enumerate() {
        println!(
            "| {} | {:.2} | {:.0} | {:.3} | {:.1} | {} | {} |",
            who.name(),
            med(i, |f| f.wall),
            n as f64 / med(i, |f| f.wall),
            med(i, |f| f.cpu_ms_per_message),
            med(i, |f| f.peak_rss_mib),
            versus(i, |f| f.wall),
            versus(i, |f| f.cpu_ms_per_message),
        );
    }
    let ours = at(Contender::Ours).expect("always run");
    let dir_queue = at(Contender::OursMock).expect("always run");
    let dir_cpu = med(dir_queue, |f| f.cpu_ms_per_message);
    let dir_vs_fauxqs = med(ours, |f| f.wall) / med(dir_queue, |f| f.wall);
    let rss = med(ours, |f| f.peak_rss_mib).max(med(dir_queue, |f| f.peak_rss_mib));
    let biggest = ["sqs_archive", "poll_messages", "process_message"]
        .iter()
        .filter_map(|b| std::fs::metadata(root.join("target/static").join(b)).ok())
        .map(|m| m.len() as f64 / (1 << 20) as f64)
        .fold(0.0, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!();
    println!("| target | measured | |");
    println!("|---|---|---|");
    if let Some(sdk) = sdk {
        let wall_ratio = med(ours, |f| f.wall) / med(sdk, |f| f.wall);
        let cpu_ratio = med(ours, |f| f.cpu_ms_per_message) / med(sdk, |f| f.cpu_ms_per_message);
        println!(
            "| drain wall ≤ 0.8× the SDK worker's | {wall_ratio:.2}× | {} |",
            verdict(wall_ratio <= 0.8)
        );
        println!(
            "| poller CPU ≤ 0.5× the SDK worker's | {cpu_ratio:.2}× | {} |",
            verdict(cpu_ratio <= 0.5)
        );
    }
    println!(
        "| directory queue: poller CPU ≤ 0.25 ms/msg | {dir_cpu:.3} ms | {} |",
        verdict(dir_cpu <= 0.25)
    );
    println!(
        "| directory queue: throughput ≥ the fauxqs drain's | {dir_vs_fauxqs:.2}× | {} |",
        verdict(dir_vs_fauxqs >= 1.0)
    );
    println!(
        "| peak RSS ≤ 10 MiB | {rss:.1} MiB | {} |",
        verdict(rss <= 10.0)
    );
    println!(
        "| static binaries ≤ 8 MiB | {biggest:.2} MiB | {} |",
        verdict(biggest > 0.0 && biggest <= 8.0)
    );
}
