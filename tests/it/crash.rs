//! `kill -9` of `poll_messages` at seeded random moments (while it receives,
//! while handlers run, between a completion and its delete), over and over,
//! then a clean run: no request is lost, the archives are right, and the
//! duplicates at-least-once delivery allows are counted.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use sqs_archive::message::{Priority, RequestMessage, outgoing};
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::queue::{ArchiveClient, OutgoingMessage, QueueStats};

use crate::proxy::XorShift;
use crate::support::*;

const SEED: u64 = 0xC0FF_EE00_0009;
const REQUESTS: usize = 200;
/// Kill rounds stop here, or once nine requests in ten have a completion.
const MAX_KILLS: usize = 45;

/// A handler that records its pid (its process group: the poller gives each
/// handler its own) while it runs, sleeps a little so kills land while it
/// works, then runs process_message.
fn handler(ws: &Workspace) -> Value {
    let path = ws.dir.join("slow-handler.sh");
    let pids = ws.dir.join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    let script = format!(
        "#!/bin/sh\necho $$ > '{pids}/'$$\nsleep 0.25\n'{pm}' \"$@\"\nrc=$?\nrm -f '{pids}/'$$\nexit $rc\n",
        pids = pids.display(),
        pm = PROCESS_MESSAGE
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    json!([path.display().to_string()])
}

/// Process groups of handlers still running (their pid files; a pid that
/// no longer leads its own group is gone, whatever the file says).
fn running_handlers(pids: &Path) -> Vec<u32> {
    let mut alive = Vec::new();
    for entry in std::fs::read_dir(pids).unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let leads_group = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // pid (comm) state ppid pgrp ...; comm may hold spaces.
                let rest = stat.rsplit_once(')')?.1.to_string();
                rest.split_whitespace().nth(2)?.parse::<u32>().ok()
            })
            .is_some_and(|pgrp| pgrp == pid);
        if leads_group {
            alive.push(pid);
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    alive
}

/// Lets the handlers a killed poller left behind finish (they are short), and
/// kills the groups of any that do not within `limit`.
fn reap_orphans(pids: &Path, limit: Duration) -> usize {
    let until = Instant::now() + limit;
    loop {
        let alive = running_handlers(pids);
        if alive.is_empty() {
            return 0;
        }
        if Instant::now() >= until {
            for pid in &alive {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(100));
            return alive.len();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_request() {
    let started = Instant::now();
    let ws = Workspace::new("crash");
    ws.mock_profile(
        "t",
        json!({
            "workers": 4,
            "visibility_timeout": 2,
            "retry_base_seconds": 0,
            "max_receive_count": 1000,
            "log_file": ws.path("poll.log"),
        }),
    );
    let handler = handler(&ws);
    let text = std::fs::read_to_string(ws.dir.join("config/t.json")).unwrap();
    let mut keys: Value = serde_json::from_str(&text).unwrap();
    keys["handler"] = handler;
    ws.write("config/t.json", &keys.to_string());
    let pids = ws.dir.join("pids");

    let files: Vec<(String, String)> = (0..4)
        .map(|i| {
            (
                format!("c{i}.txt"),
                format!("crash {i}\n").repeat(10 * i + 1),
            )
        })
        .collect();
    for (name, text) in &files {
        ws.write(&format!("source/{name}"), text);
    }
    let client = DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
    let (request_queue, completion_queue) = ("mock://requests", "mock://completions");
    let mut aipid_of = BTreeMap::new();
    let messages: Vec<(String, OutgoingMessage)> = (0..REQUESTS)
        .map(|i| {
            let aipid = format!("crash-{i}");
            let names = vec![files[i % 4].0.clone(), files[(i + 1) % 4].0.clone()];
            let body =
                RequestMessage::new("archive", &aipid, names, Priority::Low, SystemTime::now());
            (aipid, outgoing(&body.to_json()))
        })
        .collect();
    for chunk in messages.chunks(10) {
        let batch: Vec<_> = chunk.iter().map(|(_, m)| m.clone()).collect();
        for ((aipid, _), sent) in chunk
            .iter()
            .zip(client.send_message_batch(request_queue, &batch).unwrap())
        {
            aipid_of.insert(sent.unwrap().message_id, aipid.clone());
        }
    }

    // Kill rounds: start a run, kill -9 it, let its orphans finish. Three
    // kinds of moment, in turn: right after the start (set-up, the first
    // receive); a seeded random delay (handlers running); and the instant a
    // new completion appears (before the reporter deletes its request).
    let count_completions = || held(&client, completion_queue);
    let mut rng = XorShift::new(SEED);
    let mut kills = Vec::new();
    let mut killed_orphans = 0;
    for round in 0..MAX_KILLS {
        if held(&client, completion_queue) as usize >= REQUESTS * 9 / 10 {
            break;
        }
        let mut run = ws.poll(&["--profile", "t"]);
        run.command.stdout(Stdio::null()).stderr(Stdio::null());
        let before = count_completions();
        let mut child = run.command.spawn().expect("spawn poll_messages");
        let moment = match round % 3 {
            0 => {
                let ms = 5 + rng.below(95);
                std::thread::sleep(Duration::from_millis(ms));
                format!("start+{ms}ms")
            }
            1 => {
                let ms = 100 + rng.below(1400);
                std::thread::sleep(Duration::from_millis(ms));
                format!("{ms}ms")
            }
            _ => {
                let until = Instant::now() + Duration::from_secs(3);
                while count_completions() == before && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                "on-completion".to_string()
            }
        };
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        kills.push(if finished_first {
            format!("{moment}(already done)")
        } else {
            moment
        });
        killed_orphans += reap_orphans(&pids, Duration::from_secs(10));
    }
    let after_kills = started.elapsed();
    let done_before_clean = held(&client, completion_queue);

    // Clean runs until nothing is left (what the kills hid returns after 2 s).
    let mut clean_runs = 0;
    loop {
        std::thread::sleep(Duration::from_millis(2100));
        ws.poll(&["--profile", "t"]).run().ok();
        clean_runs += 1;
        let st = client.queue_stats(request_queue).unwrap();
        if st == QueueStats::default() {
            break;
        }
        assert!(
            clean_runs < 5,
            "requests left after {clean_runs} clean runs: {st:?}"
        );
    }
    assert!(
        running_handlers(&pids).is_empty(),
        "no handler process is left"
    );

    let completions = bodies(&drain(&client, completion_queue));
    let mut by_request: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for c in &completions {
        by_request
            .entry(c["request_message_id"].as_str().unwrap().to_string())
            .or_default()
            .push(c);
    }
    let completed: BTreeSet<&String> = by_request.keys().collect();
    let sent: BTreeSet<&String> = aipid_of.keys().collect();
    assert_eq!(completed, sent, "every request has a completion");
    for cs in by_request.values() {
        for c in cs {
            assert_eq!(c["success"], true, "{c}");
        }
    }
    for aipid in aipid_of.values() {
        let n: usize = aipid.trim_start_matches("crash-").parse().unwrap();
        for name in [&files[n % 4].0, &files[(n + 1) % 4].0] {
            assert_eq!(
                sha256_file(&ws.dir.join("archive").join(aipid).join(name)),
                sha256_file(&ws.dir.join("source").join(name)),
                "{aipid}/{name}"
            );
        }
        let manifest = ws
            .dir
            .join("archive")
            .join(aipid)
            .join("manifest-sha256.txt");
        assert_eq!(
            std::fs::read_to_string(&manifest).unwrap().lines().count(),
            2,
            "{}",
            manifest.display()
        );
    }
    assert_eq!(
        client.queue_stats(request_queue).unwrap(),
        QueueStats::default()
    );
    let log = std::fs::read_to_string(ws.dir.join("poll.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "crash: {REQUESTS} requests, {} kill -9s at {kills:?}, \
         {done_before_clean} completions before the clean runs, {} duplicate completions, \
         {killed_orphans} orphaned handlers killed, {clean_runs} clean run(s); kills took {:.1}s, all {:.1}s",
        kills.len(),
        completions.len() - REQUESTS,
        after_kills.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// How many messages a queue holds (visible or not), without receiving them.
fn held(client: &DirArchiveClient, queue: &str) -> u64 {
    let st = client.queue_stats(queue).unwrap();
    st.visible + st.in_flight + st.delayed
}
