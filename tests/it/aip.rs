//! An archive holds whole AIPs (issue 17): one manifest covering every file
//! of an AIP, one writer per AIP at a time, no handler outliving its
//! poller, staging no requested name can reach, copies that an `mmap`
//! writer cannot tear, sparse files kept sparse. Each runs the real
//! `process_message` (or `poll_messages`) binary.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const HOOKS: &str = "SQS_ARCHIVE_TEST_HOOKS";
const MANIFEST: &str = "manifest-sha256.txt";

fn request(aipid: &str, files: &[String]) -> String {
    json!({"action": "archive", "aipid": aipid, "filenames": files, "timestamp": "2024-05-01T12:34:56Z"})
        .to_string()
}

fn workspace(name: &str) -> Workspace {
    let ws = Workspace::new(name);
    ws.mock_profile("t", json!({}));
    ws
}

/// `process_message --aipid AIPID` for `files`, started and fed, not waited for.
fn start(ws: &Workspace, aipid: &str, files: &[String], hooks: &str) -> Child {
    let mut run = ws
        .cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env(HOOKS, hooks)
        .arg("--aipid")
        .arg(aipid);
    run.command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = run.command.spawn().expect("spawn process_message");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request(aipid, files).as_bytes()).unwrap();
    drop(stdin);
    child
}

fn process(ws: &Workspace, aipid: &str, files: &[String], hooks: &str) -> Done {
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .env(HOOKS, hooks)
        .arg("--aipid")
        .arg(aipid)
        .stdin(request(aipid, files))
        .run()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every regular file below `aip`, relative to it, the manifest excepted.
fn files_in(aip: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![aip.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(aip)
                    .unwrap()
                    .display()
                    .to_string();
                if rel != MANIFEST {
                    found.insert(rel);
                }
            }
        }
    }
    found
}

/// Asserts that `sha256sum -c` passes over the AIP's manifest and that the
/// manifest lists exactly the files in the directory.
#[track_caller]
fn assert_manifest_whole(aip: &Path) {
    let check = Command::new("sha256sum")
        .args(["--quiet", "--strict", "-c", MANIFEST])
        .current_dir(aip)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c failed: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let text = std::fs::read_to_string(aip.join(MANIFEST)).unwrap();
    let listed: BTreeSet<String> = text
        .lines()
        .map(|line| line.split_once("  ").unwrap().1.to_string())
        .collect();
    assert_eq!(listed, files_in(aip), "manifest vs directory");
}

#[test]
fn two_runs_for_one_aip_never_interleave() {
    let ws = workspace("aip-pairs");
    let aip = ws.dir.join("archive/pairs");
    let first: Vec<String> = (0..16).map(|i| format!("f{i:02}")).collect();
    let second: Vec<String> = (8..24).map(|i| format!("f{i:02}")).collect();
    for round in 0..30 {
        for i in 0..24 {
            ws.write(
                &format!("source/f{i:02}"),
                &format!("round {round} file {i}\n"),
            );
        }
        let a = start(&ws, "pairs", &first, "");
        let b = start(&ws, "pairs", &second, "");
        for (child, files) in [(a, &first), (b, &second)] {
            let out = wait_bounded(child, Duration::from_secs(120));
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 75)),
                "round {round}: exit {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if code == Some(0) {
                let result: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(result["file_count"], files.len());
                if round > 0 {
                    assert_eq!(result["aip_file_count"], 24, "round {round}");
                }
            }
        }
        assert_manifest_whole(&aip);
        assert_eq!(files_in(&aip).len(), 24, "round {round}");
    }
}

#[test]
fn a_subset_request_keeps_the_manifest_whole() {
    let ws = workspace("aip-subset");
    ws.write("source/a", "a1\n");
    ws.write("source/sub/b", "b1\n");
    let aip = ws.dir.join("archive/subset");
    let done = process(&ws, "subset", &names(&["a", "sub/b"]), "");
    done.ok();
    ws.write("source/a", "a2\n");
    let done = process(&ws, "subset", &names(&["a"]), "");
    done.ok();
    let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
    assert_eq!(result["file_count"], 1);
    assert_eq!(result["aip_file_count"], 2);
    assert_eq!(result["files"][0]["name"], "a");
    assert_eq!(
        result["manifest_sha256"],
        sha256_file(&aip.join(MANIFEST)),
        "the digest reported is the whole-AIP manifest's"
    );
    assert_manifest_whole(&aip);
    let text = std::fs::read_to_string(aip.join(MANIFEST)).unwrap();
    assert!(text.contains("  sub/b\n"), "{text}");
    assert_eq!(std::fs::read_to_string(aip.join("a")).unwrap(), "a2\n");
}

#[test]
fn a_second_run_waits_for_the_lock_then_exits_75() {
    let ws = workspace("aip-busy");
    ws.write("source/big", &"x".repeat(4 << 20));
    ws.write("source/small", "small\n");
    // 16 chunks of 256 KiB, 300 ms after each: about 5 s holding the lock.
    let slow = start(&ws, "busy", &names(&["big"]), "slow-copy=300");
    let staging = ws.dir.join("archive/.sqs-archive/locks/busy.lock");
    let started = Instant::now();
    while !staging.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no lock taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let busy = process(&ws, "busy", &names(&["small"]), "lock-wait=300");
    busy.exit(75).one_line_error().stderr_has("AIP busy");
    let out = wait_bounded(slow, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The busy run wrote nothing; once free, the same request goes through.
    assert!(!ws.dir.join("archive/busy/small").exists());
    process(&ws, "busy", &names(&["small"]), "").ok();
    assert_manifest_whole(&ws.dir.join("archive/busy"));
}

/// Pids of the live processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces; split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// True while `pid` is a process that has not ended (a zombie has).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|s| s != "Z" && s != "X")
        })
        .unwrap_or(false)
}

#[test]
fn a_killed_pollers_handler_is_gone_within_a_second() {
    let ws = workspace("aip-orphan");
    ws.write("source/big", &"y".repeat(4 << 20));
    let client = sqs_archive::queue::dir::DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
    use sqs_archive::queue::{ArchiveClient, OutgoingMessage};
    client
        .send_message(
            "mock://requests",
            &OutgoingMessage::new(request("orphan", &names(&["big"]))),
        )
        .unwrap();
    // The handler copies slowly: about 16 s.
    let mut poller = ws
        .poll(&["--profile", "t"])
        .env(HOOKS, "slow-copy=1000")
        .spawn();
    let started = Instant::now();
    let handler = loop {
        if let Some(&pid) = children_of(poller.id()).first() {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no handler started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Well into its work.
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(handler));
    poller.kill().unwrap(); // SIGKILL
    poller.wait().unwrap();
    let killed = Instant::now();
    while alive(handler) && killed.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = killed.elapsed();
    assert!(
        !alive(handler),
        "handler {handler} outlived its poller by 3 s"
    );
    assert!(
        took < Duration::from_secs(1),
        "handler lived {took:?} after the poller"
    );
    // What it left behind is cleaned by the next run for the AIP.
    ws.write("source/small", "s\n");
    process(&ws, "orphan", &names(&["small"]), "").ok();
    let staging = ws.dir.join("archive/.sqs-archive/staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
}

/// A handler of the profile's own (here a shell that becomes `sleep`) does
/// not arm a parent-death signal itself: `poll_messages --run-handler` does
/// it for it, so it too is gone within a second of a `kill -9`.
#[test]
fn a_killed_pollers_own_handler_is_gone_within_a_second_too() {
    let ws = Workspace::new("aip-orphan-own");
    ws.mock_profile(
        "t",
        json!({"handler": ["/bin/sh", "-c", "exec sleep 60", "sh"]}),
    );
    let client = sqs_archive::queue::dir::DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
    use sqs_archive::queue::{ArchiveClient, OutgoingMessage};
    client
        .send_message(
            "mock://requests",
            &OutgoingMessage::new(request("own", &names(&["x"]))),
        )
        .unwrap();
    let mut poller = ws.poll(&["--profile", "t"]).spawn();
    let started = Instant::now();
    let handler = loop {
        if let Some(&pid) = children_of(poller.id()).first() {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no handler started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Until it has become `sleep`, it is still our launcher.
    let became = Instant::now();
    while std::fs::read_to_string(format!("/proc/{handler}/comm"))
        .is_ok_and(|c| c.trim() != "sleep")
    {
        assert!(
            became.elapsed() < Duration::from_secs(10),
            "the handler never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    poller.kill().unwrap(); // SIGKILL
    poller.wait().unwrap();
    let killed = Instant::now();
    while alive(handler) && killed.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !alive(handler),
        "handler {handler} outlived its poller by 3 s"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "handler lived {:?} after the poller",
        killed.elapsed()
    );
}

#[test]
fn planted_staging_names_cannot_change_what_is_archived() {
    let ws = workspace("aip-planted");
    ws.write("source/a.txt", "the real a\n");
    // The shell plants names built from its own pid, which process_message
    // keeps through exec, then names them in its request too.
    let script = r#"
        set -e
        names='"a.txt"'
        for n in 0 1 2 3 4 5 6 7; do
            for stem in a.txt manifest-sha256.txt; do
                name=".$stem.tmp.$$.$n"
                printf 'planted %s\n' "$name" > "source/$name"
                names="$names,\"$name\""
            done
        done
        printf '{"action":"archive","aipid":"planted","filenames":[%s],"timestamp":"2024-05-01T12:34:56Z"}' "$names" > request.json
        exec "$0" --aipid planted < request.json
    "#;
    let mut run = ws
        .cmd("sh")
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("-c")
        .arg(script)
        .arg(PROCESS_MESSAGE);
    run.command.current_dir(&ws.dir);
    let done = run.run();
    done.ok();
    let aip = ws.dir.join("archive/planted");
    let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
    assert_eq!(result["file_count"], 17);
    assert_eq!(
        std::fs::read_to_string(aip.join("a.txt")).unwrap(),
        "the real a\n"
    );
    for entry in std::fs::read_dir(ws.dir.join("source")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(
            std::fs::read(aip.join(&name)).unwrap(),
            std::fs::read(entry.path()).unwrap(),
            "{name}"
        );
    }
    assert_eq!(result["manifest_sha256"], sha256_file(&aip.join(MANIFEST)));
    assert_manifest_whole(&aip);
}

/// A Python `mmap` writer that rewrites every byte of `path` with the
/// generation number, pass after pass, until `stop` exists or 120 s passed;
/// it creates `ready` after its first pass.
const MMAP_WRITER: &str = r#"
import mmap, os, sys, time
path, ready, stop = sys.argv[1:4]
block = 1 << 20
f = open(path, "r+b")
m = mmap.mmap(f.fileno(), 0)
size = len(m)
start = time.monotonic()
generation = 0
while not os.path.exists(stop) and time.monotonic() - start < 120:
    generation += 1
    fill = bytes([generation % 250 + 1]) * block
    for offset in range(0, size, block):
        m[offset:offset + block] = fill[:min(block, size - offset)]
    if generation == 1:
        open(ready, "w").close()
m.close()
"#;

#[test]
fn an_mmap_writer_never_yields_a_mixed_copy() {
    let ws = workspace("aip-mmap");
    const SIZE: u64 = 300 << 20;
    let source = ws.dir.join("source/big");
    std::fs::write(&source, vec![0u8; SIZE as usize]).unwrap();
    ws.write("writer.py", MMAP_WRITER);
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let ready = ws.dir.join("ready");
    let stop = ws.dir.join("stop");
    let mut writer = Command::new(python)
        .arg(ws.dir.join("writer.py"))
        .arg(&source)
        .arg(&ready)
        .arg(&stop)
        .spawn()
        .expect("run the venv's python");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writer not ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = process(&ws, "mmap", &names(&["big"]), "");
    std::fs::write(&stop, "").unwrap();
    let _ = wait_bounded_status(&mut writer);
    match done.code() {
        0 => {
            // Whatever was copied is one generation throughout.
            let copy = std::fs::read(ws.dir.join("archive/mmap/big")).unwrap();
            let first = copy[0];
            assert!(
                copy.iter().all(|&b| b == first),
                "a mixed copy was reported archived"
            );
            let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
            assert_eq!(
                result["files"][0]["sha256"],
                sqs_archive::digest::sha256_hex(&copy)
            );
        }
        75 => {
            done.stderr_has("source still changing");
        }
        other => panic!("exit {other}: {}", done.stderr()),
    }
}

fn wait_bounded_status(child: &mut Child) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

#[test]
fn a_sparse_source_stays_sparse() {
    let ws = workspace("aip-sparse");
    let source = ws.dir.join("source/sparse");
    let file = std::fs::File::create(&source).unwrap();
    file.set_len(200 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    for at in [0u64, 50 << 20, 199 << 20] {
        file.write_all_at(&vec![0xa5u8; 1 << 20], at).unwrap();
    }
    drop(file);
    let done = process(&ws, "sparse", &names(&["sparse"]), "");
    done.ok();
    let archived = ws.dir.join("archive/sparse/sparse");
    let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
    assert_eq!(result["files"][0]["sha256"], sha256_file(&source));
    assert_eq!(sha256_file(&archived), sha256_file(&source));
    let (source_blocks, archived_blocks) = (
        std::fs::metadata(&source).unwrap().blocks(),
        std::fs::metadata(&archived).unwrap().blocks(),
    );
    assert_eq!(std::fs::metadata(&archived).unwrap().len(), 200 << 20);
    // 512-byte blocks: 3 MiB of data is about 6,144; allow a little more.
    assert!(
        archived_blocks <= source_blocks + source_blocks / 4,
        "{archived_blocks} blocks archived, {source_blocks} in the source"
    );
}

#[test]
fn a_socket_and_an_overlong_name_are_permanent() {
    let ws = workspace("aip-kinds");
    let _listener = std::os::unix::net::UnixListener::bind(ws.dir.join("source/sock")).unwrap();
    process(&ws, "kinds", &names(&["sock"]), "")
        .exit(65)
        .one_line_error()
        .stderr_has("socket");
    let long = "n".repeat(256);
    process(&ws, "kinds", &[long], "")
        .exit(65)
        .one_line_error()
        .stderr_has("longer than 255");
}
