//! `poll_messages` through a proxy that drops, stalls, refuses and cuts short
//! a quarter of its calls to moto: every request is still completed, and
//! the duplicates that at-least-once delivery allows are counted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use sqs_archive::message::{Priority, RequestMessage, outgoing};
use sqs_archive::queue::{ArchiveClient, OutgoingMessage, QueueStats};
use sqs_archive::sqs::SqsArchiveClient;

use crate::proxy::{Fault, FaultProxy, Plan, XorShift};
use crate::support::*;

/// The schedule's seed; change it to see another sequence of faults.
const SEED: u64 = 0x5EED_F00D;

#[test]
fn the_schedule_is_seeded_and_about_a_quarter() {
    let draw = |seed| {
        let mut rng = XorShift::new(seed);
        (0..1000).map(|_| rng.below(100)).collect::<Vec<_>>()
    };
    assert_eq!(draw(SEED), draw(SEED), "same seed, same schedule");
    assert_ne!(draw(SEED), draw(SEED + 1));
    let plan = Plan::quarter(Duration::from_secs(2));
    let mut rng = XorShift::new(SEED);
    let mut faults = 0;
    for _ in 0..10_000 {
        let roll = rng.below(100) as u32;
        if plan.pick(roll) != Fault::None {
            faults += 1;
        }
    }
    assert!((2000..=3000).contains(&faults), "{faults} of 10000");
}

#[test]
fn the_proxy_forwards_signed_requests_and_moto_still_checks_them() {
    let server = moto();
    let proxy = FaultProxy::start(&server.url, SEED, Plan::none());
    let via_proxy = Server {
        url: proxy.url.clone(),
        ..server.clone()
    };
    // Signed for the proxy's address; moto checks the signature with the Host it receives.
    let queue = via_proxy.queue("proxied", false);
    let client = via_proxy.client();
    let sent = client
        .send_message(&queue, &OutgoingMessage::new("through the proxy"))
        .expect("moto accepts a forwarded, signed request");
    let got = drain(&client, &queue);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, sent.message_id);
    assert_eq!(got[0].body, "through the proxy");
    let counts = proxy.counts();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(counts["forwarded"] >= 4, "{counts:?}");
    // moto does check: a wrong secret through the proxy is still refused.
    let mut ws = Workspace::new("proxy-badsig");
    ws.profile("t", via_proxy.profile(&queue, &queue));
    ws.set_env(server.key_env());
    ws.set_env([("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into())]);
    ws.sqs_archive(&["--profile", "t", "stats"])
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("SignatureDoesNotMatch");
    assert_eq!(proxy.upstream_errors(), 0);
}

/// moto queues, a proxy in front of moto, and a workspace whose profile `t`
/// sends every call of the toolkit through the proxy.
struct Faulty {
    ws: Workspace,
    proxy: FaultProxy,
    /// Straight to moto, for set-up and for looking.
    direct: SqsArchiveClient,
    request_queue: String,
    completion_queue: String,
    files: Vec<(String, String)>,
}

impl Faulty {
    fn new(name: &str, plan: Plan, extra: Value) -> Faulty {
        let server = moto();
        let request_queue = server.queue(&format!("{name}-req"), false);
        let completion_queue = server.queue(&format!("{name}-done"), false);
        let proxy = FaultProxy::start(&server.url, SEED, plan);
        let mut ws = Workspace::new(name);
        let mut keys = server.profile(&request_queue, &completion_queue);
        keys["endpoint_url"] = json!(proxy.url);
        keys["wait_time_seconds"] = json!(0);
        keys["retry_base_seconds"] = json!(0);
        keys["max_receive_count"] = json!(100);
        // A run logs far more than a pipe holds; the harness reads stderr only at the end.
        keys["log_file"] = json!(ws.path("poll.log"));
        for (k, v) in extra.as_object().unwrap() {
            keys[k] = v.clone();
        }
        ws.profile("t", keys);
        ws.set_env(server.key_env());
        let files: Vec<(String, String)> = (0..5)
            .map(|i| {
                (
                    format!("d{i}/f{i}.txt"),
                    format!("file {i}\n").repeat(i + 1),
                )
            })
            .collect();
        for (name, text) in &files {
            ws.write(&format!("source/{name}"), text);
        }
        Faulty {
            ws,
            proxy,
            direct: server.client(),
            request_queue,
            completion_queue,
            files,
        }
    }

    fn names(&self, i: usize) -> [&String; 2] {
        [&self.files[i % 5].0, &self.files[(i + 1) % 5].0]
    }

    /// Sends `n` requests straight to moto, ten at a time (the faults are
    /// for the poller); their aipids by message id.
    fn send(&self, n: usize) -> BTreeMap<String, String> {
        let mut aipid_of = BTreeMap::new();
        let requests: Vec<(String, OutgoingMessage)> = (0..n)
            .map(|i| {
                let aipid = format!("aip-{i}");
                let names = self.names(i).map(|s| s.clone()).to_vec();
                let body = RequestMessage::new(
                    "archive",
                    &aipid,
                    names,
                    Priority::Medium,
                    SystemTime::now(),
                );
                (aipid, outgoing(&body.to_json()))
            })
            .collect();
        for chunk in requests.chunks(10) {
            let batch: Vec<OutgoingMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
            let sent = self
                .direct
                .send_message_batch(&self.request_queue, &batch)
                .expect("send batch");
            for ((aipid, _), outcome) in chunk.iter().zip(sent) {
                aipid_of.insert(outcome.expect("sent").message_id, aipid.clone());
            }
        }
        assert_eq!(aipid_of.len(), n);
        aipid_of
    }

    /// Cron's view: runs poll_messages until the request queue is empty; the exit codes.
    fn poll_until_empty(&self, limit: Duration) -> Vec<i32> {
        let deadline = Instant::now() + limit;
        let mut runs = Vec::new();
        loop {
            let out = self
                .ws
                .poll(&["--profile", "t", "--max-runtime", "60"])
                .run();
            let log = std::fs::read_to_string(self.ws.dir.join("poll.log")).unwrap_or_default();
            assert!(!out.stderr().contains("panicked"), "{}", out.stderr());
            assert!(!log.contains("panicked"), "{log}");
            // 0: drained; 75: a completion could not be sent; 69/76: a receive failed all its tries.
            assert!(
                matches!(out.code(), 0 | 69 | 75 | 76),
                "exit {}: {}\n{log}",
                out.code(),
                out.stderr()
            );
            runs.push(out.code());
            let stats = self.direct.queue_stats(&self.request_queue).expect("stats");
            if stats == QueueStats::default() {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "requests left after {} runs: {stats:?}",
                runs.len()
            );
            if stats.visible == 0 {
                // What a run could not finish comes back after the visibility timeout.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    /// Checks that every request has a success completion and its archive, and
    /// nothing else is on the queues; the number of duplicate completions.
    fn check(&self, aipid_of: &BTreeMap<String, String>) -> usize {
        let completions = bodies(&drain(&self.direct, &self.completion_queue));
        let mut by_request: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for c in &completions {
            let id = c["request_message_id"].as_str().expect("request id");
            by_request.entry(id.to_string()).or_default().push(c);
        }
        let completed: BTreeSet<&String> = by_request.keys().collect();
        let sent: BTreeSet<&String> = aipid_of.keys().collect();
        let lost: Vec<_> = sent.difference(&completed).collect();
        assert!(lost.is_empty(), "{} requests lost: {lost:?}", lost.len());
        assert_eq!(
            completed, sent,
            "every request has a completion, and no other"
        );
        for (id, cs) in &by_request {
            for c in cs {
                assert_eq!(c["success"], true, "{id}: {c}");
                assert_eq!(c["aipid"], aipid_of[id].as_str(), "{c}");
            }
        }
        for aipid in aipid_of.values() {
            let i: usize = aipid.trim_start_matches("aip-").parse().unwrap();
            for name in self.names(i) {
                let archived = self.ws.dir.join("archive").join(aipid).join(name);
                let source = self.ws.dir.join("source").join(name);
                assert_eq!(
                    sha256_file(&archived),
                    sha256_file(&source),
                    "{aipid}/{name}"
                );
            }
        }
        assert_eq!(
            self.direct.queue_stats(&self.request_queue).expect("stats"),
            QueueStats::default(),
            "the request queue ends empty"
        );
        completions.len() - aipid_of.len()
    }

    /// Faults injected, by call and kind.
    fn faults_by_call(&self) -> BTreeMap<String, u64> {
        let mut by_call = BTreeMap::new();
        for r in self
            .proxy
            .records()
            .iter()
            .filter(|r| r.fault != Fault::None)
        {
            *by_call
                .entry(format!("{}:{}", r.action, r.fault.name()))
                .or_default() += 1;
        }
        by_call
    }
}

#[test]
fn three_hundred_requests_survive_a_quarter_of_calls_failing() {
    const N: usize = 300;
    let started = Instant::now();
    let f = Faulty::new(
        "faults",
        Plan::quarter(Duration::from_secs(2)),
        // The client gives up on a call after 1 s, so a stall of 2 s is a timeout.
        json!({"max_attempts": 8, "http_timeout_seconds": 1, "workers": 4, "visibility_timeout": 3}),
    );
    let aipid_of = f.send(N);
    let sent_at = started.elapsed();
    let runs = f.poll_until_empty(Duration::from_secs(150));
    let polled_at = started.elapsed();
    let duplicates = f.check(&aipid_of);
    let counts = f.proxy.counts();
    let (faults, calls) = (f.proxy.faults(), f.proxy.records().len());
    eprintln!(
        "faults: {N} requests, {duplicates} duplicate completions, faults injected: {counts:?} \
         ({faults} of {calls} proxied calls), poll runs {} (exit codes {runs:?}), \
         sent in {:.1}s, polled in {:.1}s, checked in {:.1}s",
        runs.len(),
        sent_at.as_secs_f64(),
        (polled_at - sent_at).as_secs_f64(),
        (started.elapsed() - polled_at).as_secs_f64(),
    );
    eprintln!("faults by call: {:?}", f.faults_by_call());
    for kind in ["drop", "stall", "500", "503", "throttle", "cut"] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault was injected: {counts:?}"
        );
    }
    let rate = faults as f64 / calls as f64;
    assert!((0.15..=0.35).contains(&rate), "fault rate {rate}");
    assert_eq!(f.proxy.upstream_errors(), 0, "moto itself never failed");
}

#[test]
fn completions_that_cannot_be_sent_keep_their_requests() {
    // Half of all sends fail and the client tries only twice, so a quarter of
    // the completions are not sent at all: their requests must stay queued.
    const N: usize = 60;
    let started = Instant::now();
    let plan = Plan {
        status_503: 50,
        only: Some(&["SendMessage", "SendMessageBatch"]),
        ..Plan::none()
    };
    let f = Faulty::new(
        "nocompletion",
        plan,
        json!({"max_attempts": 2, "workers": 4, "visibility_timeout": 2}),
    );
    let aipid_of = f.send(N);
    let runs = f.poll_until_empty(Duration::from_secs(90));
    let log = std::fs::read_to_string(f.ws.dir.join("poll.log")).unwrap();
    let unreported: u64 = log
        .lines()
        .filter_map(|l| l.split("unreported=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert!(
        unreported > 0 && runs.contains(&75),
        "no completion failed outright (unreported {unreported}, runs {runs:?}): the test proves nothing"
    );
    let duplicates = f.check(&aipid_of);
    eprintln!(
        "completion outage: {N} requests, {unreported} completions not sent (requests kept), \
         {duplicates} duplicate completions, faults {:?}, poll runs {runs:?}, {:.1}s",
        f.faults_by_call(),
        started.elapsed().as_secs_f64()
    );
}
