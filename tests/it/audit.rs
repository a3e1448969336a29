//! `sqs_archive audit`: archived AIPs re-hashed against their manifests.

use serde_json::json;

use crate::support::*;

fn archive(ws: &Workspace, aipid: &str, files: &[&str]) {
    for f in files {
        ws.write(&format!("source/{aipid}-{f}"), &format!("{aipid} {f}\n"));
    }
    let names: Vec<String> = files.iter().map(|f| format!("{aipid}-{f}")).collect();
    let request = json!({"action": "archive", "aipid": aipid, "filenames": names,
        "timestamp": "2024-05-01T12:34:56Z"})
    .to_string();
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("--aipid")
        .arg(aipid)
        .stdin(request)
        .run()
        .ok();
}

fn audit(ws: &Workspace, extra: &[&str]) -> Done {
    let mut args = vec!["--profile", "t", "audit"];
    args.extend_from_slice(extra);
    ws.sqs_archive(&args)
        .env("SQS_ARCHIVE_AUDIT_METRICS_FILE", &ws.path("audit.prom"))
        .run()
}

#[test]
fn audit_names_a_flipped_byte_a_deleted_file_and_an_extra_file() {
    let ws = Workspace::new("audit");
    ws.mock_profile("t", json!({}));
    for aip in ["clean", "flipped", "deleted", "extra"] {
        archive(&ws, aip, &["a", "b"]);
    }
    let clean = audit(&ws, &[]);
    clean.ok();
    assert_eq!(clean.stdout(), "", "a clean archive prints nothing");
    let prom = std::fs::read_to_string(ws.path("audit.prom")).unwrap();
    assert!(prom.contains("sqs_archive_audit_files 8\n"), "{prom}");
    assert!(
        prom.contains("sqs_archive_audit_last_exit_code 0\n"),
        "{prom}"
    );

    // Same length, one byte different: only the digest can tell.
    let flipped = ws.dir.join("archive/flipped/flipped-a");
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&flipped, bytes).unwrap();
    std::fs::remove_file(ws.dir.join("archive/deleted/deleted-b")).unwrap();
    std::fs::write(ws.dir.join("archive/extra/planted"), "x").unwrap();

    let found = audit(&ws, &[]);
    found.exit(1);
    let lines: Vec<String> = found.stdout().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("audit: flipped: changed: flipped-a (manifest ")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"audit: deleted: missing: deleted-b".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"audit: extra: extra: planted (file not in the manifest)".to_string()),
        "{lines:?}"
    );
    let prom = std::fs::read_to_string(ws.path("audit.prom")).unwrap();
    for kind in ["missing", "extra", "changed"] {
        assert!(
            prom.contains(&format!(
                "sqs_archive_audit_problems{{kind=\"{kind}\"}} 1\n"
            )),
            "{prom}"
        );
    }
    assert!(
        prom.contains("sqs_archive_audit_last_exit_code 1\n"),
        "{prom}"
    );

    // One AIP at a time: the clean one passes on its own.
    audit(&ws, &["--aipid", "clean"]).ok();
    audit(&ws, &["--aipid", "flipped"])
        .exit(1)
        .stdout_has("changed: flipped-a");
    audit(&ws, &["--aipid", "nope"])
        .exit(1)
        .stdout_has("nope: manifest: no such AIP");
    audit(&ws, &["--aipid", "../clean"])
        .exit(64)
        .one_line_error();
}

#[test]
fn audit_never_follows_a_symlink_and_never_blocks_on_a_fifo() {
    let ws = Workspace::new("audit-hostile");
    ws.mock_profile("t", json!({}));
    archive(&ws, "h", &["a"]);
    let aip = ws.dir.join("archive/h");
    // The archived file replaced by a link to a file with the same bytes.
    let copy = ws.dir.join("outside");
    std::fs::copy(aip.join("h-a"), &copy).unwrap();
    std::fs::remove_file(aip.join("h-a")).unwrap();
    std::os::unix::fs::symlink(&copy, aip.join("h-a")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(aip.join("pipe"))
            .status()
            .unwrap()
            .success()
    );
    let done = audit(&ws, &[]);
    done.exit(1)
        .stdout_has("audit: h: missing: h-a")
        .stdout_has("audit: h: extra: h-a (symlink not in the manifest)")
        .stdout_has("audit: h: extra: pipe (FIFO not in the manifest)");
    // A symlinked AIP directory is not followed either.
    std::os::unix::fs::symlink(&aip, ws.dir.join("archive/linked")).unwrap();
    audit(&ws, &["--aipid", "linked"])
        .exit(1)
        .stdout_has("not a directory");
}

#[test]
fn audit_reading_is_rate_limited() {
    let ws = Workspace::new("audit-rate");
    ws.mock_profile("t", json!({}));
    ws.write("source/r-big", &"z".repeat(400_000));
    let request = json!({"action": "archive", "aipid": "r", "filenames": ["r-big"],
        "timestamp": "2024-05-01T12:34:56Z"})
    .to_string();
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("--aipid")
        .arg("r")
        .stdin(request)
        .run()
        .ok();
    let start = std::time::Instant::now();
    audit(&ws, &["--max-bytes-per-second", "1000000"]).ok();
    // 400 kB at 1 MB/s: at least 0.4 s.
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(390),
        "{:?}",
        start.elapsed()
    );
}
