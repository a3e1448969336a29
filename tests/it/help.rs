//! Help, version, completions and man pages, and the outputs scripts rely
//! on: per-command help, `--version`'s build facts, the generated bash, zsh
//! and fish completions loaded in those shells, the man pages rendered by
//! `man -l`, `send --dry-run`, `credentials --json`, and `receive`'s field
//! types read by `jq`. The shells, man-db and jq are required (`.ci/run`
//! installs them): a missing one fails, never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sqs_archive::queue::{ArchiveClient, OutgoingMessage};

use crate::support::*;

const PROGRAMS: [&str; 3] = ["sqs_archive", "poll_messages", "process_message"];

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is required: install it (.ci/run does)"
    );
    Command::new(name)
}

fn ok(command: &mut Command) -> (String, String) {
    let out = command.output().expect("spawn");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{command:?}: {}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Writes what `sqs_archive generate ARGS` prints to `dir/file`.
fn generate(ws: &Workspace, args: &[&str], dir: &Path, file: &str) -> PathBuf {
    let mut all = vec!["generate"];
    all.extend(args);
    let out = ws.sqs_archive(&all).run();
    out.ok();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, out.stdout()).unwrap();
    path
}

#[test]
fn command_help_is_that_commands_and_help_command_is_the_same() {
    let ws = Workspace::new("help-cmd");
    let overview = ws.sqs_archive(&["--help"]).run();
    overview.ok();
    for command in [
        "send",
        "receive",
        "delete",
        "stats",
        "credentials",
        "audit",
        "doctor",
        "config",
    ] {
        assert!(
            overview
                .stdout()
                .lines()
                .any(|l| l == format!("  {command}") || l.starts_with(&format!("  {command} "))),
            "the overview lists {command}"
        );
        let by_flag = ws.sqs_archive(&[command, "--help"]).run();
        by_flag
            .ok()
            .stdout_has(&format!("Usage: sqs_archive [OPTIONS] {command}"))
            .stdout_has("Examples:");
        let by_help = ws.sqs_archive(&["help", command]).run();
        by_help.ok();
        assert_eq!(by_flag.stdout(), by_help.stdout(), "{command}");
        assert!(
            by_flag.stdout().lines().count() < 50,
            "{command} --help is that command's, not the overview: {}",
            by_flag.stdout()
        );
    }
    let send = ws.sqs_archive(&["send", "--help"]).run();
    send.ok()
        .stdout_has("--dry-run")
        .stdout_has("--priority PRIORITY");
    assert!(
        !send.stdout().contains("--receipt-handle"),
        "{}",
        send.stdout()
    );
    assert!(
        !overview.stdout().contains("generate"),
        "hidden from the overview"
    );
    ws.sqs_archive(&["help", "frobnicate"])
        .run()
        .exit(64)
        .one_line_error()
        .stderr_has("no help for \"frobnicate\"");
    ws.poll(&["--help"])
        .run()
        .ok()
        .stdout_has("--max-runtime S")
        .stdout_has("--profile NAME");
    ws.cmd(PROCESS_MESSAGE)
        .arg("--help")
        .run()
        .ok()
        .stdout_has("Usage: process_message --aipid ID");
}

#[test]
fn version_names_commit_target_libc_and_date() {
    let ws = Workspace::new("version");
    for (program, path) in PROGRAMS
        .iter()
        .zip([SQS_ARCHIVE, POLL_MESSAGES, PROCESS_MESSAGE])
    {
        let out = ws.cmd(path).arg("--version").run();
        out.ok();
        let line = out.stdout();
        let line = line.trim_end();
        let prefix = format!("{program} {} (commit ", env!("CARGO_PKG_VERSION"));
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        let fields: Vec<&str> = rest.trim_end_matches(')').split(", ").collect();
        assert_eq!(fields.len(), 4, "{line}");
        let commit = fields[0];
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{line}"
        );
        assert!(fields[1].contains("-linux-"), "target: {line}");
        assert!(["musl", "glibc"].contains(&fields[2]), "libc: {line}");
        let date = fields[3].strip_prefix("built ").expect(line);
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "{line}"
        );
    }
    // The commit is this checkout's, when there is one.
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        && out.status.success()
    {
        let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
        ws.sqs_archive(&["-V"])
            .run()
            .ok()
            .stdout_has(&format!("(commit {head}, "));
    }
}

#[test]
fn bash_completion_parses_and_completes() {
    let ws = Workspace::new("bash-comp");
    let dir = ws.dir.join("completions");
    for program in PROGRAMS {
        let file = generate(&ws, &["completions", "bash", program], &dir, program);
        ok(tool("bash").arg("-n").arg(&file));
    }
    ws.write("profiles/alpha.json", "{}");
    ws.write("profiles/beta.json", "{}");
    let script = format!(
        r#"source {file}
COMP_WORDS=(sqs_archive --profile alpha s); COMP_CWORD=3; _sqs_archive; echo "commands: ${{COMPREPLY[*]}}"
COMP_WORDS=(sqs_archive send --dr); COMP_CWORD=2; _sqs_archive; echo "send: ${{COMPREPLY[*]}}"
COMP_WORDS=(sqs_archive --profile ''); COMP_CWORD=2; _sqs_archive; echo "profiles: ${{COMPREPLY[*]}}"
COMP_WORDS=(sqs_archive receive --output ''); COMP_CWORD=3; _sqs_archive; echo "output: ${{COMPREPLY[*]}}"
"#,
        file = dir.join("sqs_archive").display()
    );
    let (out, _) = ok(tool("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&ws.dir)
        .env("SQS_ARCHIVE_CONFIG_DIR", ws.dir.join("profiles")));
    for line in [
        "commands: send stats",
        "send: --dry-run",
        "profiles: alpha beta",
        "output: lines aws",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in:\n{out}");
    }
}

#[test]
fn fish_completion_parses_and_completes() {
    let ws = Workspace::new("fish-comp");
    let dir = ws.dir.join("completions");
    for program in PROGRAMS {
        let file = generate(
            &ws,
            &["completions", "fish", program],
            &dir,
            &format!("{program}.fish"),
        );
        ok(tool("fish").arg("--no-config").arg("-n").arg(&file));
    }
    ws.write("profiles/alpha.json", "{}");
    let script = format!(
        "source {}; complete -C 'sqs_archive --profile alpha s'; echo ---; complete -C 'sqs_archive --profile '; echo ---; complete -C 'sqs_archive --profile alpha send --'",
        dir.join("sqs_archive.fish").display()
    );
    let (out, stderr) = ok(tool("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(script)
        .current_dir(&ws.dir)
        .env("HOME", ws.dir.join("home"))
        .env("SQS_ARCHIVE_CONFIG_DIR", ws.dir.join("profiles")));
    assert!(stderr.is_empty(), "{stderr}");
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let first_words = |part: &str| -> Vec<String> {
        part.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(first_words(parts[0]), ["send", "stats"], "{out}");
    assert_eq!(first_words(parts[1]), ["alpha"], "{out}");
    assert!(
        first_words(parts[2]).contains(&"--dry-run".to_string()),
        "{out}"
    );
}

#[test]
fn zsh_completion_parses_and_loads_with_compinit() {
    let ws = Workspace::new("zsh-comp");
    let dir = ws.dir.join("zfunc");
    for program in PROGRAMS {
        let file = generate(
            &ws,
            &["completions", "zsh", program],
            &dir,
            &format!("_{program}"),
        );
        ok(tool("zsh").arg("-n").arg(&file));
    }
    let zdotdir = ws.dir.join("zdot");
    std::fs::create_dir_all(&zdotdir).unwrap();
    let script = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}/.zcompdump; \
         print -r -- $_comps[sqs_archive] $_comps[poll_messages] $_comps[process_message]; \
         autoload -Uz +X _sqs_archive && whence -w _sqs_archive",
        dir.display(),
        zdotdir.display()
    );
    let (out, stderr) = ok(tool("zsh")
        .arg("-f")
        .arg("-c")
        .arg(script)
        .env("ZDOTDIR", &zdotdir)
        .env("HOME", ws.dir.join("home")));
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        out.contains("_sqs_archive _poll_messages _process_message\n_sqs_archive: function"),
        "{out}"
    );
}

#[test]
fn man_pages_render_without_warnings() {
    let ws = Workspace::new("man");
    let dir = ws.dir.join("man1");
    for program in PROGRAMS {
        let file = generate(&ws, &["man", program], &dir, &format!("{program}.1"));
        let (page, warnings) = ok(tool("man")
            .arg("--warnings")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"));
        assert!(warnings.is_empty(), "{program}: {warnings}");
        let name = page
            .lines()
            .skip_while(|l| l.trim() != "NAME")
            .nth(1)
            .unwrap_or_default();
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            name.starts_with(&format!("{program} - ")),
            "{program}: {name:?}\n{page}"
        );
        for section in ["SYNOPSIS", "COMMON OPTIONS", "CONFIGURATION", "EXIT STATUS"] {
            assert!(
                page.lines().any(|l| l == section),
                "{program} lacks {section}"
            );
        }
        assert!(page.contains("workers"), "{program}: the keys are listed");
    }
}

#[test]
fn send_dry_run_prints_the_request_and_sends_nothing() {
    let ws = Workspace::new("dry-run");
    ws.mock_profile("t", json!({}));
    let out = ws
        .sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            "a1",
            "--filenames",
            "x",
            "y",
            "--dry-run",
        ])
        .run();
    out.ok();
    let request: Value = serde_json::from_str(out.stdout().trim()).expect("one JSON line");
    assert_eq!(request["aipid"], "a1");
    assert_eq!(request["filenames"], json!(["x", "y"]));
    sqs_archive::message::schema::MessageSchema::embedded()
        .validate(&request)
        .expect("the printed request validates");
    let stats = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    stats.ok();
    let s: Value = serde_json::from_str(stats.stdout().trim()).unwrap();
    assert_eq!(s["request"]["visible"], 0, "nothing was sent");
    ws.sqs_archive(&[
        "--profile",
        "t",
        "send",
        "--aipid",
        "../x",
        "--filenames",
        "a",
        "--dry-run",
    ])
    .run()
    .exit(65)
    .one_line_error();
}

#[test]
fn credentials_json_has_stable_types_and_no_secret() {
    let mut ws = Workspace::new("cred-json");
    ws.mock_profile("t", json!({"region": "eu-west-1"}));
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    ws.set_env([
        (
            "AWS_ACCESS_KEY_ID".to_string(),
            "AKIAIOSFODNN7EXAMPLE".to_string(),
        ),
        ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        (
            "AWS_SESSION_TOKEN".to_string(),
            "session-token-value".to_string(),
        ),
    ]);
    let out = ws
        .sqs_archive(&["--profile", "t", "credentials", "--json"])
        .run();
    out.ok();
    for hidden in [secret, "session-token-value", "AKIAIOSFODNN7EXAMPLE"] {
        assert!(!out.stdout().contains(hidden), "{}", out.stdout());
    }
    let v: Value = serde_json::from_str(out.stdout().trim()).expect("one JSON object");
    assert!(v["source"].as_str().unwrap().contains("environment"), "{v}");
    assert_eq!(v["session_token"], true);
    assert_eq!(v["chain_step"], 1);
    assert_eq!(v["region"], "eu-west-1");
    assert!(
        v["endpoint"].is_string() && v["target_error"].is_null(),
        "{v}"
    );
    assert!(v["expires"].is_null(), "{v}");
}

/// A queue holding JSON objects, a JSON string, a number and text that is
/// not JSON: `jq` reads the same type for every field of every line.
#[test]
fn receive_lines_have_one_type_per_field_for_jq() {
    let server = sqs();
    let mut ws = Workspace::new("stable-types");
    let queue = server.queue("stable", false);
    ws.profile("t", server.profile(&queue, &queue));
    ws.set_env(server.key_env());
    let bodies = [
        r#"{"success":true,"aipid":"a1"}"#,
        "not json at all",
        r#""a JSON string""#,
        "42",
        r#"{"success":false}"#,
    ];
    let client = server.client();
    for body in bodies {
        client
            .send_message(
                &queue,
                &OutgoingMessage {
                    body: body.into(),
                    group_id: None,
                    dedup_id: None,
                },
            )
            .unwrap();
    }
    let mut lines = Vec::new();
    for _ in 0..10 {
        let got = ws
            .sqs_archive(&["--profile", "t", "receive", "--max", "10", "--delete"])
            .run();
        got.ok();
        lines.extend(got.stdout().lines().map(String::from));
        if lines.len() >= bodies.len() {
            break;
        }
    }
    assert_eq!(lines.len(), bodies.len(), "{lines:?}");
    let input = lines.join("\n") + "\n";
    let filter = "[.message_id, .receipt_handle, .md5_of_body, .body, .receive_count, .attributes, .body_json] | map(type) | join(\",\")";
    let mut jq = tool("jq");
    jq.args(["-r", filter])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = jq.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let types = String::from_utf8(out.stdout).unwrap();
    for t in types.lines() {
        assert!(
            t.starts_with("string,string,string,string,number,object,"),
            "{t}\n{input}"
        );
    }
    // body is the text as received; body_json its parsed value or null.
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for body in bodies {
        let line = parsed.iter().find(|l| l["body"] == body).expect(body);
        let expected = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
        assert_eq!(line["body_json"], expected, "{body}");
        assert_eq!(line["md5_of_body"], sqs_archive::digest::md5_hex(body));
    }
    // jq selects on the parsed body without failing on the text line.
    let mut jq = tool("jq");
    jq.args([
        "-r",
        "select(.body_json.success? == true) | .body_json.aipid",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped());
    let mut child = jq.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "a1\n");
}

#[test]
fn receive_output_aws_is_what_the_cli_prints() {
    let ws = Workspace::new("output-aws");
    ws.mock_profile("t", json!({"completion_queue_url": "mock://requests"}));
    let empty = ws
        .sqs_archive(&["--profile", "t", "receive", "--output", "aws"])
        .run();
    empty.ok();
    assert_eq!(
        empty.stdout(),
        "{}\n",
        "the CLI prints {{}} for no messages"
    );
    let sent = ws.send("t", "a1", &["x"]).run();
    sent.ok();
    let got = ws
        .sqs_archive(&["--profile", "t", "receive", "--output", "aws", "--delete"])
        .run();
    got.ok();
    let v: Value = serde_json::from_str(got.stdout().trim()).expect("one JSON object");
    let messages = v["Messages"].as_array().expect("Messages");
    assert_eq!(messages.len(), 1, "{v}");
    let m = &messages[0];
    assert_eq!(m["MessageId"], sent.stdout().trim());
    let body = m["Body"].as_str().expect("Body is the text");
    assert_eq!(m["MD5OfBody"], sqs_archive::digest::md5_hex(body));
    assert!(
        m["ReceiptHandle"].is_string() && m["Attributes"].is_object(),
        "{m}"
    );
    let request: Value = serde_json::from_str(body).unwrap();
    assert_eq!(request["aipid"], "a1");
    // --delete deleted it.
    let again = ws
        .sqs_archive(&["--profile", "t", "receive", "--output", "aws"])
        .run();
    again.ok();
    assert_eq!(again.stdout(), "{}\n");
}

/// README's Programs block is the command table's: every command with its
/// synopsis, every poll_messages option.
#[test]
fn readme_programs_block_matches_the_command_table() {
    use sqs_archive::cmd::commands::{COMMANDS, POLL_MESSAGES, visible};
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("## Programs\n\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Programs block");
    for c in visible(COMMANDS) {
        let line = format!("  {} {}", c.name, c.synopsis);
        assert!(
            block.lines().any(|l| l == line.trim_end()),
            "README's Programs block lacks {:?}",
            line.trim_end()
        );
    }
    let poll = block
        .lines()
        .find(|l| l.starts_with("poll_messages "))
        .expect("poll_messages line");
    for o in POLL_MESSAGES.options {
        assert!(
            poll.contains(o.long),
            "README's poll_messages line lacks {}",
            o.long
        );
    }
}
