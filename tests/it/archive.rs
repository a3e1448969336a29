//! What `process_message` guarantees, tried as an attacker would: a source
//! directory swapped for a symlink mid-resolution, symlinks planted on the
//! archive side, a source rewritten while it is copied, a copy corrupted
//! before it is verified, and a request of 10,000 names. Each case runs
//! `process_message` on its own and through `poll_messages` on the mock
//! queue, checking the completion.

use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqs_archive::archive::{ArchiveJob, ArchiveOptions, Resolution, archive};
use sqs_archive::error::Error;
use sqs_archive::queue::dir::DirArchiveClient;
use sqs_archive::queue::{ArchiveClient, OutgoingMessage};

use crate::support::*;

const INSIDE: &str = "inside\n";
const OUTSIDE: &str = "SECRET outside the source directory\n";
const HOOKS: &str = "SQS_ARCHIVE_TEST_HOOKS";
const BOTH: [(Resolution, &str); 2] =
    [(Resolution::Kernel, ""), (Resolution::Walk, "resolve-walk")];

/// A workspace with a mock-queue profile `t`.
struct Case {
    ws: Workspace,
    client: DirArchiveClient,
}

impl Case {
    fn new(name: &str, extra: Value) -> Case {
        let ws = Workspace::new(name);
        ws.mock_profile("t", extra);
        let client = DirArchiveClient::new(ws.dir.join("mock"), 1 << 20);
        Case { ws, client }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ws.dir.join(rel)
    }

    fn process(&self, aipid: &str, files: &[&str], hooks: &str) -> Done {
        self.ws
            .cmd(PROCESS_MESSAGE)
            .env("SQS_ARCHIVE_PROFILE", "t")
            .env(HOOKS, hooks)
            .arg("--aipid")
            .arg(aipid)
            .stdin(request(aipid, files))
            .run()
    }

    fn send(&self, body: &str) {
        self.client
            .send_message("mock://requests", &OutgoingMessage::new(body))
            .expect("send");
    }

    /// One `poll_messages` run over what was sent; the completions it sent.
    fn poll(&self, hooks: &str) -> Vec<(String, Value)> {
        let out = self.ws.poll(&["--profile", "t"]).env(HOOKS, hooks).run();
        out.ok();
        drain(&self.client, "mock://completions")
            .into_iter()
            .map(|m| {
                let value = serde_json::from_str(&m.body)
                    .unwrap_or_else(|e| panic!("completion is not JSON: {e}"));
                (m.body, value)
            })
            .collect()
    }

    fn requests_left(&self) -> u64 {
        let stats = self.client.queue_stats("mock://requests").unwrap();
        stats.visible + stats.in_flight + stats.delayed
    }
}

fn request(aipid: &str, files: &[&str]) -> String {
    json!({"action": "archive", "aipid": aipid, "filenames": files, "timestamp": "2024-05-01T12:34:56Z"})
        .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    sqs_archive::digest::sha256_hex(bytes)
}

/// Every file below `dir` with its SHA-256, for before/after comparisons.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            if kind.is_dir() {
                found.push((rel, "dir".into()));
                pending.push(entry.path());
            } else {
                found.push((rel, sha256_file(&entry.path())));
            }
        }
    }
    found.sort();
    found
}

/// Staged files left below the archive directory `dir`: anything in its
/// private staging directory, or a temporary name anywhere.
fn temp_files(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|(name, kind)| {
            name.contains(".tmp.") || (name.starts_with(".sqs-archive/staging/") && kind != "dir")
        })
        .map(|(name, _)| name)
        .collect()
}

/// `source/race/real` (a directory holding `passwd`) and `source/race/evil`
/// (a symlink to a directory outside holding another `passwd`), exchanged
/// over and over by a helper thread with renameat2(RENAME_EXCHANGE) until
/// `stop` is set.
fn swap_until(race: &Path, stop: &AtomicBool, swaps: &AtomicU64) {
    let dir = std::fs::File::open(race).unwrap();
    while !stop.load(Ordering::Relaxed) {
        rustix::fs::renameat_with(
            dir.as_fd(),
            "real",
            dir.as_fd(),
            "evil",
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .unwrap();
        swaps.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sets its flag when dropped, so a failing assertion stops the swapper
/// rather than leave the test waiting for it forever.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn race_layout(case: &Case) -> PathBuf {
    case.ws.write("source/race/real/passwd", INSIDE);
    case.ws.write("outside/passwd", OUTSIDE);
    let race = case.path("source/race");
    symlink(case.path("outside"), race.join("evil")).unwrap();
    race
}

#[test]
fn source_swap_race_archives_nothing_from_outside() {
    let case = Case::new("race", json!({}));
    let race = race_layout(&case);
    let (source, archive_dir) = (case.path("source"), case.path("archive"));
    let names = vec!["race/real/passwd".to_string()];
    for (resolution, _) in BOTH {
        let (stop, swaps) = (AtomicBool::new(false), AtomicU64::new(0));
        let (mut inside, mut refused) = (0, 0);
        std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            s.spawn(|| swap_until(&race, &stop, &swaps));
            for _ in 0..2_000 {
                let job = ArchiveJob {
                    aipid: "race1",
                    filenames: &names,
                    source_dir: &source,
                    archive_dir: &archive_dir,
                    options: ArchiveOptions {
                        resolution,
                        ..ArchiveOptions::default()
                    },
                };
                match archive(&job) {
                    Ok(report) => {
                        assert_eq!(report.files[0].sha256, sha256_hex(INSIDE.as_bytes()));
                        inside += 1;
                    }
                    Err(Error::InvalidData(message)) => {
                        assert!(
                            message.contains("outside") || message.contains("not found"),
                            "{message}"
                        );
                        refused += 1;
                    }
                    Err(other) => panic!("{resolution:?}: {other}"),
                }
                let archived = std::fs::read_to_string(archive_dir.join("race1/race/real/passwd"));
                assert_ne!(archived.as_deref().ok(), Some(OUTSIDE), "{resolution:?}");
            }
        });
        // Both states of the race were met: the test exercised it.
        assert!(
            inside > 0 && refused > 0,
            "{resolution:?}: {inside} inside, {refused} refused"
        );
        assert!(swaps.load(Ordering::Relaxed) > 100);
    }
}

#[test]
fn source_swap_race_through_the_poller() {
    let case = Case::new("race-poll", json!({"workers": 2, "max_receive_count": 1}));
    let race = race_layout(&case);
    for (n, (_, hooks)) in BOTH.iter().enumerate() {
        let (stop, swaps) = (AtomicBool::new(false), AtomicU64::new(0));
        for i in 0..20 {
            case.send(&request(&format!("race-{n}-{i}"), &["race/real/passwd"]));
        }
        let completions = std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            s.spawn(|| swap_until(&race, &stop, &swaps));
            case.poll(hooks)
        });
        assert_eq!(completions.len(), 20);
        for (_, c) in &completions {
            if c["success"] == true {
                assert_eq!(
                    c["result"]["files"][0]["sha256"],
                    sha256_hex(INSIDE.as_bytes())
                );
            } else {
                let message = c["message"].as_str().unwrap();
                assert!(message.contains("exit 65"), "{message}");
            }
        }
    }
    for (name, hash) in listing(&case.path("archive")) {
        assert_ne!(hash, sha256_hex(OUTSIDE.as_bytes()), "{name}");
    }
}

#[test]
fn symlinks_planted_in_the_archive_are_never_written_through() {
    let case = Case::new("planted", json!({"max_receive_count": 1}));
    case.ws.write("source/a.txt", "hello\n");
    case.ws.write("source/sub/b.txt", "world\n");
    case.ws.write("elsewhere/keep.txt", "keep me\n");
    std::fs::create_dir_all(case.path("elsewhere/sub")).unwrap();
    let elsewhere = case.path("elsewhere");
    let before = listing(&elsewhere);

    symlink(&elsewhere, case.path("archive/p1")).unwrap();
    case.process("p1", &["a.txt"], "")
        .exit(65)
        .one_line_error()
        .stderr_has("p1\" is a symbolic link");
    std::fs::create_dir_all(case.path("archive/p2")).unwrap();
    symlink(elsewhere.join("sub"), case.path("archive/p2/sub")).unwrap();
    case.process("p2", &["a.txt", "sub/b.txt"], "")
        .exit(65)
        .one_line_error()
        .stderr_has("sub\" is a symbolic link");
    assert_eq!(listing(&elsewhere), before);

    case.send(&request("p1", &["a.txt"]));
    case.send(&request("p2", &["sub/b.txt"]));
    let completions = case.poll("");
    assert_eq!(completions.len(), 2);
    for (_, c) in &completions {
        assert_eq!(c["success"], false, "{c}");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("is a symbolic link"),
            "{c}"
        );
    }
    assert_eq!(listing(&elsewhere), before);
    assert_eq!(case.requests_left(), 0);
}

#[test]
fn things_in_the_way_and_special_sources_are_permanent() {
    let case = Case::new("in-the-way", json!({"max_receive_count": 5}));
    case.ws.write("source/a.txt", "hello\n");
    case.ws.write("source/dir/x.txt", "x\n");
    case.ws
        .write("archive/p1", "a file where the AIP directory goes\n");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(case.path("source/pipe"))
            .status()
            .unwrap()
            .success()
    );
    case.process("p1", &["a.txt"], "")
        .exit(65)
        .one_line_error()
        .stderr_has("is a regular file where a directory must be");
    case.process("p2", &["dir"], "")
        .exit(65)
        .stderr_has("is a directory; only regular files");
    case.process("p2", &["pipe"], "")
        .exit(65)
        .stderr_has("is a FIFO");
    case.send(&request("p1", &["a.txt"]));
    case.send(&request("p2", &["pipe"]));
    let bad_time = json!({"action": "archive", "aipid": "p3", "filenames": ["a.txt"], "timestamp": "9999-99-99T99:99:99Z"});
    case.send(&bad_time.to_string());
    let completions = case.poll("");
    assert_eq!(completions.len(), 3);
    for (_, c) in &completions {
        assert_eq!(c["success"], false, "{c}");
    }
    assert_eq!(
        case.requests_left(),
        0,
        "permanent failures are not retried"
    );
}

/// A 16 MiB source, copied slowly (a test hook pauses after each 256 KiB),
/// rewritten in place by a writer that starts once the copy has begun.
fn rewrite_during_copy<T: Send>(
    case: &Case,
    aipid: &str,
    run: impl FnOnce() -> T,
) -> (T, [String; 2]) {
    const SIZE: usize = 16 << 20;
    let old: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let new: Vec<u8> = (0..SIZE).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    let source = case.path(&format!("source/{aipid}.bin"));
    std::fs::write(&source, &old).unwrap();
    // Old enough that the copy does not wait for the clock to tick past it.
    std::thread::sleep(Duration::from_millis(100));
    let aip = case.path(&format!("archive/{aipid}"));
    let done = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let started = Instant::now();
            while temp_files_present(&aip).is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the copy never started"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(100));
            let file = std::fs::File::options().write(true).open(&source).unwrap();
            file.write_all_at(&new, 0).unwrap();
        });
        let done = run();
        writer.join().unwrap();
        done
    });
    (done, [sha256_hex(&old), sha256_hex(&new)])
}

/// `Some` once a file of `aip` (`archive/<aipid>`) is staged: its run's
/// staging directory holds a file.
fn temp_files_present(aip: &Path) -> Option<()> {
    let aipid = aip.file_name()?.to_str()?;
    let staging = aip.parent()?.join(".sqs-archive/staging");
    std::fs::read_dir(staging)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{aipid}."))
        })
        .any(|e| std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some()))
        .then_some(())
}

#[test]
fn a_source_rewritten_during_its_copy_is_never_reported_mixed() {
    let case = Case::new("rewrite", json!({"max_receive_count": 5}));
    let (done, versions) = rewrite_during_copy(&case, "p1", || {
        case.process("p1", &["p1.bin"], "slow-copy=10")
    });
    match done.code() {
        0 => {
            let result: Value = serde_json::from_str(done.stdout().trim()).unwrap();
            let reported = result["files"][0]["sha256"].as_str().unwrap().to_string();
            assert!(
                versions.contains(&reported),
                "reported {reported}, neither version"
            );
            assert_eq!(sha256_file(&case.path("archive/p1/p1.bin")), reported);
        }
        75 => {
            done.stderr_has("source still changing");
        }
        other => panic!("exit {other}: {}", done.stderr()),
    }

    case.send(&request("p2", &["p2.bin"]));
    let (completions, versions) = rewrite_during_copy(&case, "p2", || case.poll("slow-copy=10"));
    match completions.as_slice() {
        [(_, c)] => {
            assert_eq!(c["success"], true, "{c}");
            let reported = c["result"]["files"][0]["sha256"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                versions.contains(&reported),
                "reported {reported}, neither version"
            );
            assert_eq!(sha256_file(&case.path("archive/p2/p2.bin")), reported);
        }
        // Put off for a retry: no completion, and the request is still there.
        [] => assert_eq!(case.requests_left(), 1),
        more => panic!("{} completions", more.len()),
    }
}

/// The hook-driven cases here need binaries built with the cargo feature
/// `test-hooks` (scripts/run-tests.sh passes `--features test-hooks`):
/// without it `process_message` ignores SQS_ARCHIVE_TEST_HOOKS, and the
/// walk cases would pass having tested the kernel's resolution twice.
fn hooks_built_in() -> bool {
    cfg!(feature = "test-hooks")
}

#[test]
fn the_binaries_under_test_honour_test_hooks() {
    assert!(
        hooks_built_in(),
        "run the integration tests with `cargo test --features test-hooks` \
         (scripts/run-tests.sh does): without it the binaries ignore {HOOKS}"
    );
    let case = Case::new("hooks-on", json!({}));
    case.ws.write("source/a.txt", "hello\n");
    case.process("p1", &["a.txt"], "corrupt-copy")
        .exit(75)
        .one_line_error()
        .stderr_has("cannot verify the archived copy of");
    case.process("p1", &["a.txt"], "no-such-hook")
        .exit(78)
        .one_line_error()
        .stderr_has("unknown test hook");
}

#[test]
fn a_corrupted_copy_is_detected_and_not_left_in_place() {
    let case = Case::new("corrupt", json!({"max_receive_count": 1}));
    case.ws.write("source/a.txt", "hello\n");
    case.ws.write("source/b.txt", "world\n");
    let done = case.process("p1", &["a.txt", "b.txt"], "corrupt-copy");
    done.exit(75)
        .one_line_error()
        .stderr_has("cannot verify the archived copy of");
    assert!(!case.path("archive/p1/a.txt").exists());
    assert!(!case.path("archive/p1/manifest-sha256.txt").exists());
    assert_eq!(temp_files(&case.path("archive")), Vec::<String>::new());

    case.send(&request("p2", &["a.txt"]));
    let completions = case.poll("corrupt-copy");
    assert_eq!(completions.len(), 1);
    let c = &completions[0].1;
    assert_eq!(c["success"], false, "{c}");
    assert!(c["message"].as_str().unwrap().contains("verify"), "{c}");
    assert!(!case.path("archive/p2/a.txt").exists());

    // Without the fault the same request archives and says it verified.
    case.process("p1", &["a.txt", "b.txt"], "")
        .ok()
        .stdout_has("\"verified\":true");
}

#[test]
fn ten_thousand_names_fit_and_the_manifest_checks() {
    let case = Case::new("many", json!({}));
    let names: Vec<String> = (0..10_000).map(|i| format!("many/f{i:05}.txt")).collect();
    std::fs::create_dir_all(case.path("source/many")).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(case.path(&format!("source/{name}")), format!("file {i}\n")).unwrap();
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();

    // Through the poller first: this run does the copying.
    case.send(&request("p1", &refs));
    let completions = case.poll("");
    assert_eq!(completions.len(), 1);
    let (text, c) = &completions[0];
    assert!(text.len() <= 1 << 20, "{} bytes", text.len());
    assert_eq!(c["success"], true, "{}", &text[..text.len().min(500)]);
    assert_eq!(c["result"]["file_count"], 10_000);
    let total: usize = (0..10_000).map(|i| format!("file {i}\n").len()).sum();
    assert_eq!(c["result"]["total_bytes"], total);
    assert_eq!(
        c["result"]["manifest_sha256"],
        sha256_file(&case.path("archive/p1/manifest-sha256.txt"))
    );
    let check = std::process::Command::new("sha256sum")
        .args(["--quiet", "-c", "manifest-sha256.txt"])
        .current_dir(case.path("archive/p1"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // On its own, delivered again: the whole result, one JSON object.
    let done = case.process("p1", &refs, "");
    done.ok();
    let result: Value = serde_json::from_str(done.stdout().trim()).expect("one JSON object");
    assert_eq!(result["file_count"], 10_000);
    assert_eq!(result["files"].as_array().unwrap().len(), 10_000);
    assert_eq!(result["manifest_sha256"], c["result"]["manifest_sha256"]);
    assert!(c["result"].get("unparsed_stdout").is_none());
}
