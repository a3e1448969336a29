//! Host-wide handler slots, end to end: overlapping cron-style runs never
//! run more than `workers` handlers at once on the host, and a request sent
//! while another run's long handler runs starts with the next run, not after
//! that handler.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::*;

/// A workspace whose handler logs `start <ns> <args>` and `end <ns> <args>`
/// (wall clock, nanoseconds) to `events`, sleeping 8 s for a request whose
/// aipid starts with `long`, 1.5 s for `mid`, 0.2 s otherwise, then runs
/// `process_message`.
fn workspace(name: &str, workers: u32) -> Workspace {
    let ws = Workspace::new(name);
    let events = ws.path("events");
    let script = format!(
        "#!/bin/sh\n\
         echo \"start $(date +%s%N) $*\" >> '{events}'\n\
         case \"$*\" in *--aipid\\ long*) sleep 8;; *--aipid\\ mid*) sleep 1.5;; *) sleep 0.2;; esac\n\
         echo \"end $(date +%s%N) $*\" >> '{events}'\n\
         exec {PROCESS_MESSAGE} \"$@\"\n"
    );
    ws.write("handler.sh", &script);
    std::fs::set_permissions(
        ws.dir.join("handler.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    ws.mock_profile(
        "t",
        json!({"workers": workers, "handler": [ws.path("handler.sh")]}),
    );
    ws.write("source/f.txt", "f\n");
    ws
}

/// (time in ns, is a start, the handler's arguments) per line of `events`.
fn events(ws: &Workspace) -> Vec<(u128, bool, String)> {
    let text = std::fs::read_to_string(ws.dir.join("events")).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let at: u128 = parts.next().unwrap().parse().unwrap();
            (at, kind == "start", parts.next().unwrap_or("").to_string())
        })
        .collect()
}

/// The most handlers that ran at once, counted from their start and end events.
fn most_at_once(ws: &Workspace) -> usize {
    let mut all = events(ws);
    // An end and a start at the same instant: the end first.
    all.sort_by_key(|(at, start, _)| (*at, *start));
    let (mut now, mut most) = (0i64, 0i64);
    for (_, start, _) in all {
        now += if start { 1 } else { -1 };
        most = most.max(now);
    }
    most as usize
}

fn started_at(ws: &Workspace, aipid: &str) -> Option<u128> {
    let needle = format!("--aipid {aipid}");
    events(ws)
        .into_iter()
        .find(|(_, start, args)| *start && args.contains(&needle))
        .map(|(at, _, _)| at)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn cron_run(ws: &Workspace) -> std::process::Child {
    ws.poll(&["--profile", "t", "--max-runtime", "2"]).spawn()
}

fn send(ws: &Workspace, aipid: &str) {
    ws.send("t", aipid, &["f.txt"]).run().ok();
}

#[test]
fn a_request_sent_beside_a_long_handler_starts_with_the_next_run() {
    let ws = workspace("slots-next", 2);
    send(&ws, "long-a");
    let first = cron_run(&ws);
    let first_started = now_ns();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while started_at(&ws, "long-a").is_none() {
        assert!(std::time::Instant::now() < until, "long-a never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 3 s later (the first run is past --max-runtime, its 8 s handler runs
    // on): a new request, and two cron-style runs started one after the
    // other. One slot of two is free: one of them takes it, the other finds
    // none.
    let wait = (first_started + 3_000_000_000).saturating_sub(now_ns());
    std::thread::sleep(Duration::from_nanos(wait as u64));
    send(&ws, "quick-b");
    send(&ws, "long-c");
    let next_started = now_ns();
    let second = cron_run(&ws);
    std::thread::sleep(Duration::from_millis(300));
    let third = cron_run(&ws);
    let outputs: Vec<_> = [first, second, third]
        .into_iter()
        .map(|c| wait_bounded(c, Duration::from_secs(40)))
        .collect();
    let stderr: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    for (o, e) in outputs.iter().zip(&stderr) {
        assert!(o.status.success(), "{e}");
        assert!(!e.contains("another poll_messages run holds"), "{e}");
    }
    let quick = started_at(&ws, "quick-b").expect("quick-b started");
    let delay = Duration::from_nanos((quick.saturating_sub(next_started)) as u64);
    assert!(
        delay <= Duration::from_secs(2),
        "quick-b started {delay:?} after the next run; events:\n{:?}\n{stderr:#?}",
        events(&ws)
    );
    let long_a_end = events(&ws)
        .into_iter()
        .find(|(_, start, args)| !start && args.contains("--aipid long-a"))
        .expect("long-a ended")
        .0;
    assert!(quick < long_a_end, "quick-b waited for long-a");
    assert_eq!(
        stderr
            .iter()
            .filter(|e| e.contains("handler slots") && e.contains("in use"))
            .count(),
        1,
        "{stderr:#?}"
    );
    assert!(most_at_once(&ws) <= 2, "{:?}", events(&ws));
    // Everything was done once; nothing is left.
    let mut done: Vec<String> = events(&ws)
        .into_iter()
        .filter(|(_, start, _)| !start)
        .map(|(_, _, args)| args)
        .collect();
    done.sort();
    assert_eq!(done.len(), 3, "{done:?}");
}

#[test]
fn overlapping_runs_never_run_more_than_workers_handlers_on_the_host() {
    let ws = workspace("slots-many", 2);
    for i in 0..6 {
        send(&ws, &format!("mid-{i}"));
    }
    let runs: Vec<_> = (0..4)
        .map(|_| ws.poll(&["--profile", "t"]).spawn())
        .collect();
    let mut outputs: Vec<_> = runs
        .into_iter()
        .map(|c| wait_bounded(c, Duration::from_secs(60)))
        .collect();
    // Requests a run returned when it found no slot, or stopped, are done by
    // a last run.
    outputs.push(wait_bounded(
        ws.poll(&["--profile", "t"]).spawn(),
        Duration::from_secs(60),
    ));
    for o in &outputs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let most = most_at_once(&ws);
    assert!(most <= 2, "{most} handlers at once: {:?}", events(&ws));
    assert_eq!(most, 2, "the two slots were used together");
    let ends = events(&ws).into_iter().filter(|(_, s, _)| !s).count();
    assert_eq!(ends, 6, "{:?}", events(&ws));
}
