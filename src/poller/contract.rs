//! The outcome contract, tested where it lives: whole poller runs on the
//! in-memory client with injected faults and a tiny shell handler. Each test
//! names one rule and fails when that rule is broken.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::setup::{PollOptions, Poller, redrive_check};
use super::shutdown::Shutdown;
use crate::config::{Settings, Source};
use crate::environment::Env;
use crate::exit::Exit;
use crate::queue::memory::{Call, MemoryArchiveClient};

const REQ: &str = "mem://req";
const DONE: &str = "mem://done";

/// A run's surroundings: the client, a scratch directory for the handler's
/// notes, and the profile keys.
struct Bench {
    client: Arc<MemoryArchiveClient>,
    dir: PathBuf,
    keys: Value,
    request: &'static str,
}

/// The handler: notes `start <aipid>` and `end <aipid>` in `runs`, then acts
/// on the aipid's prefix: `fail…` exits 1, `slow…` sleeps 0.3 s, `sleepy…`
/// 1.2 s, `drowsy…` 3 s, `big…` prints 4 KB of JSON.
const HANDLER: &str = r#"
aipid=$2
cat >/dev/null
echo "start $aipid" >> "$RUNS"
case "$aipid" in
  slow*) sleep 0.3 ;;
  sleepy*) sleep 1.2 ;;
  drowsy*) sleep 3 ;;
esac
echo "end $aipid" >> "$RUNS"
case "$aipid" in
  fail*) exit 1 ;;
  big*) printf '{"blob":"%04096d"}' 0 ;;
  *) echo '{"files":[]}' ;;
esac
"#;

impl Bench {
    fn new(name: &str) -> Bench {
        let dir = std::env::temp_dir().join(format!(
            "sqs-archive-contract-{name}-{}-{}",
            std::process::id(),
            crate::random::u64() % 1_000_000
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Bench {
            client: Arc::new(MemoryArchiveClient::new()),
            keys: json!({
                "backend": "mock",
                "request_queue_url": REQ,
                "completion_queue_url": DONE,
                "workers": 2,
                "wait_time_seconds": 0,
                "visibility_timeout": 30,
                "retry_base_seconds": 10,
                "retry_max_seconds": 600,
                "max_receive_count": 3,
                "mock_dir": dir.join("mock"),
                "lock_file": dir.join("lock"),
            }),
            dir,
            request: REQ,
        }
    }

    fn fifo(mut self) -> Bench {
        self.request = "mem://req.fifo";
        self.keys["request_queue_url"] = json!(self.request);
        self
    }

    fn set(mut self, key: &str, value: Value) -> Bench {
        self.keys[key] = value;
        self
    }

    fn push(&self, aipid: &str) -> String {
        self.push_group(aipid, None)
    }

    fn push_group(&self, aipid: &str, group: Option<&str>) -> String {
        let body = json!({"action": "archive", "aipid": aipid, "filenames": ["x"],
                          "timestamp": "2026-11-28T00:00:00Z"});
        self.client.push(self.request, &body.to_string(), group)
    }

    fn poller(&self) -> Poller {
        let text = self.keys.to_string();
        let settings = Settings::resolve(
            &Source::default(),
            Env::from_pairs(Vec::<(String, String)>::new()),
            Some(self.dir.join("t.json")),
            Some(&text),
        )
        .unwrap();
        let handler = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            HANDLER.into(),
            "handler".into(),
        ];
        let runs = self.dir.join("runs").display().to_string();
        Poller::with_client(
            settings,
            self.client.clone(),
            handler,
            vec![("RUNS".into(), runs)],
        )
        .unwrap()
    }

    fn run(&self) -> (Exit, Poller) {
        let poller = self.poller();
        let exit = poller
            .run(
                &PollOptions::default(),
                &Shutdown::new(Duration::from_secs(30)),
            )
            .unwrap();
        (exit, poller)
    }

    /// `start`/`end` lines the handler wrote, in order.
    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn starts(&self) -> usize {
        self.runs()
            .iter()
            .filter(|l| l.starts_with("start"))
            .count()
    }

    fn completions(&self) -> Vec<Value> {
        self.client
            .bodies(DONE)
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    fn deletes(&self) -> usize {
        self.client
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Delete { .. }))
            .count()
    }

    /// Visibility changes made on the request queue, by message id.
    fn visibility(&self) -> Vec<(String, Duration)> {
        super::reporter::tests::visibility(&self.client)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A message whose body did not match its MD5 is dropped by the client
/// (never acted on, never deleted): the run says so with 76, not 0 with
/// nothing received.
#[test]
fn a_damaged_message_makes_the_run_fail_and_is_never_deleted() {
    let b = Bench::new("damaged");
    b.push("a1");
    b.client.faults(|f| f.damage_received = 1);
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::Protocol);
    assert_eq!(poller.summary.counts().succeeded, 0);
    assert!(b.completions().is_empty());
    assert!(
        !b.client
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Delete { .. })),
        "nothing deleted"
    );
}

#[test]
fn a_completed_request_is_deleted_after_its_completion() {
    let b = Bench::new("happy");
    let ids: Vec<String> = (1..=5).map(|i| b.push(&format!("a{i}"))).collect();
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.completions().len(), 5);
    assert!(b.client.bodies(REQ).is_empty());
    assert_eq!(poller.summary.counts().succeeded, 5);
    // Each request's delete comes after the send of its own completion.
    let calls = b.client.calls();
    let position = |found: &dyn Fn(&Call) -> bool| calls.iter().position(found);
    for id in &ids {
        let sent = position(&|c| match c {
            Call::Send { queue, body } => {
                queue == DONE
                    && serde_json::from_str::<Value>(body).unwrap()["request_message_id"] == *id
            }
            _ => false,
        })
        .unwrap_or_else(|| panic!("no completion for {id}: {calls:?}"));
        let deleted =
            position(&|c| matches!(c, Call::Delete { message_id, .. } if message_id == id))
                .unwrap_or_else(|| panic!("{id} not deleted: {calls:?}"));
        assert!(
            sent < deleted,
            "{id} deleted before its completion was sent: {calls:?}"
        );
    }
}

#[test]
fn completion_refused_means_no_delete() {
    let b = Bench::new("refused");
    b.push("a1");
    b.client.faults(|f| f.refuse_sends = 100);
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::TempFail);
    assert_eq!(b.deletes(), 0, "{:?}", b.client.calls());
    assert_eq!(b.client.bodies(REQ).len(), 1, "the request stays");
    assert_eq!(poller.summary.counts().unreported, 1);
}

#[test]
fn a_lost_answer_to_the_completion_keeps_the_request() {
    // The completion may have arrived; the request stays and is done again
    // (a duplicate completion is harmless, a lost request is not).
    let b = Bench::new("dropped");
    b.push("a1");
    b.client.faults(|f| f.drop_send_answers = 1);
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::TempFail);
    assert_eq!(b.completions().len(), 1, "it did arrive");
    assert_eq!(b.deletes(), 0);
    assert_eq!(b.client.bodies(REQ).len(), 1);
    assert_eq!(poller.summary.counts().unreported, 1);
}

#[test]
fn partial_batch_failures_concern_their_entries_only() {
    let b = Bench::new("partial");
    for aipid in ["a1", "bad2", "a3", "a4"] {
        b.push(aipid);
    }
    b.client
        .faults(|f| f.refuse_bodies_containing = Some("\"aipid\":\"bad2\"".into()));
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::TempFail);
    let left = b.client.bodies(REQ);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("bad2"));
    assert_eq!(b.completions().len(), 3);
    let c = poller.summary.counts();
    assert_eq!((c.succeeded, c.unreported), (3, 1));
}

#[test]
fn a_failed_delete_is_only_logged() {
    let b = Bench::new("nodelete");
    b.push("a1");
    b.client.faults(|f| f.fail_deletes = 1);
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.completions().len(), 1);
    assert_eq!(
        b.client.bodies(REQ).len(),
        1,
        "it comes back and is done again"
    );
}

#[test]
fn failures_back_off_then_give_up_after_max_receive_count() {
    let b = Bench::new("retry").set("max_receive_count", json!(3));
    let id = b.push("fail1");
    for (n, delay) in [(1, 10), (2, 20)] {
        let (exit, poller) = b.run();
        assert_eq!(exit, Exit::Ok);
        assert_eq!(poller.summary.counts().retried, 1, "run {n}");
        assert_eq!(
            b.visibility().last(),
            Some(&(id.clone(), Duration::from_secs(delay))),
            "run {n}"
        );
        assert!(b.completions().is_empty());
        b.client.expire_all(REQ);
    }
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::Ok);
    assert_eq!(poller.summary.counts().failed, 1);
    let completions = b.completions();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0]["success"], false);
    assert!(
        completions[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("given up after 3 receives"),
        "{}",
        completions[0]
    );
    assert!(b.client.bodies(REQ).is_empty());
    assert_eq!(b.starts(), 3);
}

#[test]
fn shutdown_returns_unstarted_requests_at_once() {
    let b = Bench::new("shutdown").set("workers", json!(1));
    for aipid in ["slow1", "slow2", "slow3"] {
        b.push(aipid);
    }
    let poller = b.poller();
    let shutdown = Shutdown::new(Duration::from_secs(30));
    let exit = std::thread::scope(|s| {
        s.spawn(|| {
            let until = Instant::now() + Duration::from_secs(10);
            while b.starts() == 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            shutdown.signal();
        });
        poller.run(&PollOptions::default(), &shutdown).unwrap()
    });
    assert_eq!(exit, Exit::Ok);
    // The running one finished within its grace; the prefetched one went
    // back with visibility 0; nothing else was started.
    assert_eq!(b.starts(), 1, "{:?}", b.runs());
    assert_eq!(b.completions().len(), 1);
    let released: Vec<_> = b
        .visibility()
        .into_iter()
        .filter(|(_, t)| t.is_zero())
        .collect();
    assert_eq!(released.len(), 1, "{:?}", b.client.calls());
    // At once: before the running request's completion, not when a worker
    // would have come to it.
    let calls = b.client.calls();
    let release = calls
        .iter()
        .position(|c| matches!(c, Call::Visibility { timeout, .. } if timeout.is_zero()))
        .unwrap();
    let send = calls
        .iter()
        .position(|c| matches!(c, Call::Send { .. }))
        .unwrap();
    assert!(release < send, "{calls:?}");
    assert_eq!(poller.summary.counts().returned, 1);
    assert!(
        b.client
            .hidden_for(REQ)
            .iter()
            .filter(|(_, t)| t.is_zero())
            .count()
            >= 1
    );
}

#[test]
fn fifo_groups_run_one_at_a_time_in_order_and_in_parallel() {
    let b = Bench::new("fifo").fifo().set("workers", json!(4));
    for i in 1..=3 {
        b.push_group(&format!("slowa{i}"), Some("a"));
        b.push_group(&format!("slowb{i}"), Some("b"));
    }
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    let runs = b.runs();
    for group in ["slowa", "slowb"] {
        let mine: Vec<&String> = runs.iter().filter(|l| l.contains(group)).collect();
        let expected: Vec<String> = (1..=3)
            .flat_map(|i| [format!("start {group}{i}"), format!("end {group}{i}")])
            .collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "{runs:?}");
    }
    // The groups overlapped: b1 started before a1 ended.
    let pos = |l: &str| runs.iter().position(|r| r == l).unwrap();
    assert!(pos("start slowb1") < pos("end slowa1"), "{runs:?}");
}

#[test]
fn a_retried_fifo_request_is_not_overtaken_by_its_group() {
    let b = Bench::new("fifo-retry").fifo();
    b.push_group("fail1", Some("a"));
    b.push_group("a2", Some("a"));
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.runs(), ["start fail1", "end fail1"], "a2 did not run");
    assert!(b.completions().is_empty());
    assert_eq!(b.client.bodies(b.request).len(), 2);
}

#[test]
fn a_fifo_request_whose_completion_was_not_sent_is_not_overtaken() {
    // a1's handler succeeds but its completion cannot be sent: a1 stays on
    // the queue, so a2 must wait for it, not run and be deleted first.
    let b = Bench::new("fifo-unreported").fifo();
    b.push_group("a1", Some("a"));
    b.push_group("a2", Some("a"));
    b.client.faults(|f| f.refuse_sends = 1);
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::TempFail);
    assert_eq!(b.runs(), ["start a1", "end a1"], "a2 overtook a1");
    assert_eq!(b.client.bodies(b.request).len(), 2, "both stay");
    assert_eq!(poller.summary.counts().unreported, 1);
}

#[test]
fn completions_shrink_to_the_completion_queues_size() {
    let b = Bench::new("size");
    b.client.configure(DONE, Some(1024), None);
    b.push("big1");
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::Ok);
    let bodies = b.client.bodies(DONE);
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].len() <= 1024, "{}", bodies[0].len());
    let c = &b.completions()[0];
    assert_eq!(c["truncated"], true);
    // Shrunk to the size the queue gave, not refused first and re-sent.
    assert!(c["full_completion_bytes"].as_u64().unwrap() > 4096, "{c}");
    let sends = b
        .client
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Send { .. }))
        .count();
    assert_eq!(sends, 1);
    assert!(b.client.bodies(REQ).is_empty(), "deleted");
    assert_eq!(b.starts(), 1);
    assert_eq!(poller.summary.counts().succeeded, 1);
}

#[test]
fn a_completion_refused_as_too_long_is_sent_as_the_requests_identity() {
    let b = Bench::new("identity");
    b.push("big1");
    // The queue says nothing of its size but refuses the fitted completion.
    b.client.faults(|f| f.refuse_longer_than = Some(600));
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    let completions = b.completions();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0]["aipid"], "big1");
    assert_eq!(completions[0]["truncated"], true);
    assert!(b.client.bodies(REQ).is_empty());
    assert_eq!(b.starts(), 1);
}

#[test]
fn a_completion_refused_at_its_smallest_gives_the_request_up_at_once() {
    let b = Bench::new("undeliverable");
    b.push("a1");
    b.client.faults(|f| f.refuse_longer_than = Some(0));
    let (exit, poller) = b.run();
    assert_eq!(exit, Exit::DataErr);
    assert_eq!(poller.summary.counts().undeliverable, 1);
    assert_eq!(b.deletes(), 0, "left to the queue's redrive");
    let hidden = b.client.hidden_for(REQ);
    assert!(hidden[0].1 > Duration::from_secs(11 * 3600), "{hidden:?}");
    // The next run does not run the handler again.
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.starts(), 1);
}

#[test]
fn the_redrive_policy_is_checked_against_max_receive_count() {
    use crate::queue::RedrivePolicy;
    let policy = Some(RedrivePolicy {
        dead_letter_target_arn: "arn:aws:sqs:eu-west-1:1:dlq".into(),
        max_receive_count: 4,
    });
    assert_eq!(redrive_check(&policy, 5, false), 5);
    assert_eq!(redrive_check(&policy, 5, true), 4, "the queue's number");
    assert_eq!(redrive_check(&None, 5, true), 5);
    // With use_redrive_policy on, the queue's number is the one used.
    let b = Bench::new("redrive").set("use_redrive_policy", json!(true));
    b.client.configure(REQ, None, policy);
    let poller = b.poller();
    poller.check_queues();
    assert_eq!(poller.rules().max_receive_count, 4);
}

#[test]
fn a_prefetched_request_is_kept_hidden_while_it_waits() {
    // One worker, visibility 1 s (extended every 0.5 s): the second request
    // waits 1.2 s for the worker and must not surface meanwhile.
    let b = Bench::new("prefetch")
        .set("workers", json!(1))
        .set("visibility_timeout", json!(1));
    b.push("sleepy1");
    let second = b.push("a2");
    let (exit, _) = b.run();
    assert_eq!(exit, Exit::Ok);
    let extended: Vec<_> = b
        .visibility()
        .into_iter()
        .filter(|(id, t)| *id == second && *t == Duration::from_secs(1))
        .collect();
    assert!(!extended.is_empty(), "{:?}", b.client.calls());
    assert_eq!(b.starts(), 2, "{:?}", b.runs());
    assert_eq!(b.completions().len(), 2);
}

/// Runs `options` on the bench in host-wide slots of `dir/lock` while
/// `check` looks on from this thread once `aipid` started; says how the run ended.
fn run_in_slots(
    b: &Bench,
    options: &PollOptions,
    aipid: &str,
    check: impl FnOnce(Instant),
) -> Exit {
    let poller = b.poller();
    let lock = b.dir.join("lock");
    let slots = super::slots::take_free(&lock, poller.settings.workers).unwrap();
    assert_eq!(slots.len(), poller.settings.workers);
    let shutdown = Shutdown::new(Duration::from_secs(30));
    let started = Instant::now();
    std::thread::scope(|s| {
        let run = s.spawn(|| poller.run_in(options, &shutdown, slots).unwrap());
        let until = Instant::now() + Duration::from_secs(10);
        let start = format!("start {aipid}");
        while !b.runs().contains(&start) {
            assert!(Instant::now() < until, "{aipid} never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        check(started);
        run.join().unwrap()
    })
}

#[test]
fn a_drained_run_keeps_only_the_slots_its_handlers_use() {
    let b = Bench::new("drained-slots").set("workers", json!(3));
    b.push("drowsy-1");
    let exit = run_in_slots(&b, &PollOptions::default(), "drowsy-1", |_| {
        // The queue answered empty: two idle workers end and give their
        // slot back while drowsy-1 runs on.
        std::thread::sleep(Duration::from_millis(500));
        let free = super::slots::take_free(&b.dir.join("lock"), 3).unwrap();
        assert_eq!(free.len(), 2, "{:?}", b.runs());
    });
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.completions().len(), 1);
}

#[test]
fn a_loop_past_max_runtime_gives_idle_slots_back_while_a_handler_runs() {
    let b = Bench::new("stopped-slots").set("workers", json!(2));
    b.push("drowsy-1");
    let options = PollOptions {
        keep_polling: true,
        max_runtime: Some(Duration::from_secs(1)),
        ..PollOptions::default()
    };
    let exit = run_in_slots(&b, &options, "drowsy-1", |started| {
        // A loop is never drained: before --max-runtime every slot is held.
        let held = super::slots::take_free(&b.dir.join("lock"), 2).unwrap();
        if started.elapsed() < Duration::from_millis(900) {
            assert!(held.is_empty());
        }
        drop(held);
        let past = started + Duration::from_millis(1500);
        std::thread::sleep(past.saturating_duration_since(Instant::now()));
        let free = super::slots::take_free(&b.dir.join("lock"), 2).unwrap();
        assert_eq!(free.len(), 1, "{:?}", b.runs());
        assert!(
            !b.runs().contains(&"end drowsy-1".to_string()),
            "still running"
        );
    });
    assert_eq!(exit, Exit::Ok);
    assert_eq!(b.completions().len(), 1);
}
