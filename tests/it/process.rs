//! `process_message` on its own: stdin in, JSON result out, exit codes as documented.

use serde_json::{Value, json};

use crate::support::*;

fn setup() -> Workspace {
    let ws = Workspace::new("process");
    ws.mock_profile("t", json!({}));
    ws.write("source/a.txt", "hello\n");
    ws
}

fn request(aipid: &str, files: &[&str]) -> String {
    json!({"action": "archive", "aipid": aipid, "filenames": files, "timestamp": "2024-05-01T12:34:56.123456"}).to_string()
}

fn process(ws: &Workspace, aipid: &str, stdin: String) -> Done {
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .arg("--aipid")
        .arg(aipid)
        .stdin(stdin)
        .run()
}

#[test]
fn archives_and_prints_a_json_result() {
    let ws = setup();
    let out = process(&ws, "p1", request("p1", &["a.txt"]));
    out.ok();
    let result: Value = serde_json::from_str(out.stdout().trim()).unwrap();
    assert_eq!(result["aipid"], "p1");
    assert_eq!(
        result["files"][0]["sha256"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    assert_eq!(result["files"][0]["verified"], true);
    assert_eq!(result["file_count"], 1);
    assert_eq!(result["total_bytes"], 6);
    assert_eq!(
        result["manifest_sha256"],
        sha256_file(&ws.dir.join("archive/p1/manifest-sha256.txt"))
    );
    assert_eq!(
        std::fs::read_to_string(ws.dir.join("archive/p1/a.txt")).unwrap(),
        "hello\n"
    );
    // Delivered again: harmless, and says so.
    let again = process(&ws, "p1", request("p1", &["a.txt"]));
    again.ok().stdout_has("\"skipped\":true");
}

#[test]
fn bad_data_exits_65_with_one_line() {
    let ws = setup();
    process(&ws, "other", request("p1", &["a.txt"]))
        .exit(65)
        .one_line_error()
        .stderr_has("--aipid");
    process(&ws, "p1", "{not json".into())
        .exit(65)
        .one_line_error()
        .stderr_has("not valid JSON");
    let zip = json!({"action": "zip", "aipid": "p1", "filenames": [], "timestamp": "2024-01-01T00:00:00"}).to_string();
    process(&ws, "p1", zip)
        .exit(65)
        .one_line_error()
        .stderr_has("unknown action");
    process(&ws, "p1", request("p1", &["missing.txt"]))
        .exit(65)
        .one_line_error()
        .stderr_has("missing.txt");
    process(&ws, "p1", request("p1", &["../etc/passwd"]))
        .exit(65)
        .one_line_error();
    let impossible = json!({"action": "archive", "aipid": "p1", "filenames": ["a.txt"], "timestamp": "9999-99-99T99:99:99Z"}).to_string();
    process(&ws, "p1", impossible)
        .exit(65)
        .one_line_error()
        .stderr_has("not a real date and time");
    ws.cmd(PROCESS_MESSAGE)
        .env("SQS_ARCHIVE_PROFILE", "t")
        .stdin("{}")
        .run()
        .exit(64)
        .one_line_error()
        .stderr_has("--aipid");
}

#[test]
fn archive_side_trouble_exits_75() {
    let ws = setup();
    std::fs::remove_dir_all(ws.dir.join("archive")).unwrap();
    process(&ws, "p1", request("p1", &["a.txt"]))
        .exit(75)
        .one_line_error()
        .stderr_has("archive");
}

#[test]
fn the_result_line_escapes_bidi_in_names() {
    let ws = setup();
    let name = "r\u{202e}txt.exe\u{2066}";
    ws.write(&format!("source/{name}"), "x\n");
    let out = process(&ws, "p1", request("p1", &[name]));
    out.ok();
    let line = out.stdout();
    assert!(
        !line.contains('\u{202e}') && !line.contains('\u{2066}'),
        "{line:?}"
    );
    let result: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(result["files"][0]["name"], name);
}

/// A FIFO where `source_dir` or `archive_dir` should be used to block the
/// open until the handler timeout; it is refused at once like a plain file.
#[test]
fn a_fifo_as_source_or_archive_dir_does_not_hang() {
    let ws = setup();
    let fifo = ws.dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    ws.write("request.json", &request("p1", &["a.txt"]));
    for var in ["SQS_ARCHIVE_ARCHIVE_DIR", "SQS_ARCHIVE_SOURCE_DIR"] {
        let mut run = ws
            .cmd("sh")
            .env("SQS_ARCHIVE_PROFILE", "t")
            .env(var, &fifo.display().to_string());
        run.command
            .arg("-c")
            .arg("exec \"$0\" --aipid p1 <request.json")
            .arg(PROCESS_MESSAGE);
        let child = run.spawn();
        let out = wait_bounded(child, std::time::Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(75), "{var}: {out:?}");
    }
}

/// A name below `manifest-sha256.txt/` used to create a directory there: that
/// request failed at the manifest, and so did every later one for the aipid.
#[test]
fn a_name_below_the_manifest_is_refused_before_anything_is_written() {
    let ws = setup();
    ws.write("source/manifest-sha256.txt/x", "x\n");
    process(
        &ws,
        "p1",
        request("p1", &["manifest-sha256.txt/x", "a.txt"]),
    )
    .exit(65)
    .one_line_error()
    .stderr_has("reserved for the manifest");
    assert!(!ws.dir.join("archive/p1/manifest-sha256.txt").exists());
    process(&ws, "p1", request("p1", &["a.txt"])).ok();
}

#[test]
fn a_loose_schema_file_does_not_loosen_the_request() {
    let ws = Workspace::new("process-loose-schema");
    ws.write("schema.json", "{}");
    ws.mock_profile("t", json!({"schema_file": ws.path("schema.json")}));
    ws.write("source/a.txt", "hello\n");
    // What the whole-directory mode would archive if a bad list read as empty.
    ws.write("source/p1/whole.txt", "whole\n");
    let with_names = |filenames: Value| {
        json!({"action": "archive", "aipid": "p1", "filenames": filenames,
               "timestamp": "2024-05-01T12:34:56"})
        .to_string()
    };
    for (body, needle) in [
        (
            with_names(json!([42])),
            "/filenames/0 must be a string, but it is a number",
        ),
        (
            with_names(json!(["a.txt", null])),
            "/filenames/1 must be a string, but it is null",
        ),
        (
            with_names(json!("a.txt")),
            "/filenames must be an array of strings, but it is a string",
        ),
        (
            with_names(json!({"a.txt": true})),
            "must be an array of strings, but it is an object",
        ),
        (
            json!({"action": "archive", "aipid": "p1"}).to_string(),
            "/filenames must be an array of strings, but it is missing",
        ),
        (with_names(json!(["a//b"])), "empty component"),
        (with_names(json!(["./a.txt"])), "'.' component"),
        (with_names(json!(["../a.txt"])), "'..' component"),
    ] {
        process(&ws, "p1", body)
            .exit(65)
            .one_line_error()
            .stderr_has(needle);
    }
    let archive: Vec<_> = std::fs::read_dir(ws.dir.join("archive")).unwrap().collect();
    assert!(archive.is_empty(), "nothing was archived: {archive:?}");
    // The loose schema itself is honoured: a good request still archives.
    process(&ws, "p1", with_names(json!(["a.txt"]))).ok();
}
