//! `credential_process`: a program that prints credentials as JSON (IAM Roles
//! Anywhere's `aws_signing_helper credential-process`, `aws configure
//! export-credentials --format process`, a vault helper).
//!
//! The command is split into argv as the AWS CLI splits it (`shlex.split`:
//! POSIX shell words, quotes and backslashes respected, nothing expanded)
//! and run on [`crate::subprocess`]: without a shell, in its own process
//! group, with a timeout. Its stdout must be
//! `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
//! "Expiration"?}`. A failure reports the program's exit status and the tail
//! of its stderr, escaped, with any long word of stdout and any value named
//! as a secret (`aws_secret_access_key = …`) masked; stdout is never
//! quoted, since it holds the keys.

use std::time::Duration;

use super::document::CredentialDocument;
use super::keys::Credentials;
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::subprocess::{self, Ending, ExitWatch, NoHooks};
use crate::text::tail;

/// How long the process may run, unless `SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// More stdout than this is not a credentials document.
const MAX_STDOUT: usize = 64 * 1024;

/// How much of stderr's end a failure report shows.
const STDERR_TAIL_CHARS: usize = 400;

/// How much of stderr's end is kept while the process runs.
const STDERR_TAIL_BYTES: usize = 4096;

/// The timeout from `SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT` (seconds, 1 to 3600).
pub fn timeout(env: &Env) -> Result<Duration> {
    const VAR: &str = "SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT";
    match env.get(VAR) {
        None => Ok(DEFAULT_TIMEOUT),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=3600).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                Error::config(
                    format!("environment variable {VAR}"),
                    format!("expected seconds from 1 to 3600, not {text:?}"),
                )
            }),
    }
}

/// Splits a command line into words as the AWS CLI does (Python's
/// `shlex.split`, POSIX mode), without expanding anything: `'single'` quotes
/// are literal, `"double"` quotes allow `\"` and `\\`, a backslash outside
/// quotes escapes the next character.
///
/// Where the `shlex` crate and Python part, the line is refused rather than
/// run as a different command: the crate reads a word that starts with `#`
/// as a comment, which Python's `split` keeps as a word.
pub fn split_command(line: &str) -> std::result::Result<Vec<String>, String> {
    let words = shlex::split(line.trim())
        .ok_or("a quote is not closed, or the line ends with a backslash")?;
    let hashes = |text: &str| text.matches('#').count();
    if words.iter().map(|w| hashes(w)).sum::<usize>() < hashes(line) {
        return Err("a word starts with #, which would be read as a comment: quote it".into());
    }
    Ok(words)
}

/// Runs the command and reads its credentials; `origin` names the profile.
pub fn run(command: &str, origin: &str, timeout: Duration) -> Result<Credentials> {
    let fail = |why: String| Error::Credentials(format!("credential_process of {origin}: {why}"));
    let argv =
        split_command(command).map_err(|why| fail(format!("cannot split the command: {why}")))?;
    let Some(program) = argv.first() else {
        return Err(fail("the command is empty".into()));
    };
    let output = run_bounded(&argv, timeout).map_err(|why| fail(format!("{program}: {why}")))?;
    parse_output(&output)
        .map(|parsed| Credentials {
            source: format!("credential_process {program} ({origin})"),
            ..parsed
        })
        .map_err(|why| fail(format!("{program}: {why}")))
}

/// From SIGTERM to SIGKILL when the program runs past its timeout.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How long the pipes are read after the program ended, when something it
/// left running still holds them.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// Runs `argv` with a timeout; its stdout on success, else why not
/// (the exit status and the escaped tail of stderr).
fn run_bounded(argv: &[String], timeout: Duration) -> std::result::Result<String, String> {
    let finished = subprocess::run(
        &subprocess::Spec {
            argv,
            input: b"",
            set_env: &[],
            remove_env: &[],
            timeout,
            kill_grace: KILL_GRACE,
            stdout_limit: MAX_STDOUT,
            stderr_tail: STDERR_TAIL_BYTES,
            linger: PIPE_GRACE,
            watch: ExitWatch::Best,
        },
        &mut NoHooks,
    );
    let out = finished.stdout;
    let err = crate::aws::redact::redact(
        &redact_words_of(&String::from_utf8_lossy(&finished.stderr_tail), &out),
        &[],
    );
    let tail = tail(&err, STDERR_TAIL_CHARS);
    let said = if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr: {tail}")
    };
    match finished.ending {
        Ending::SpawnFailed(why) => Err(format!("cannot start: {why}")),
        Ending::TimedOut | Ending::Interrupted => Err(format!(
            "did not finish within {} s and was stopped{said}",
            timeout.as_secs()
        )),
        Ending::Exited(0) if finished.stdout_truncated => {
            Err(format!("printed more than {MAX_STDOUT} bytes"))
        }
        Ending::Exited(0) => {
            String::from_utf8(out).map_err(|_| "printed output that is not UTF-8".to_string())
        }
        Ending::Exited(code) => Err(format!("exited with exit status: {code}{said}")),
        Ending::Signaled(signal) => Err(format!("exited with signal: {signal}{said}")),
    }
}

/// Words of stdout this long (key material: a secret key is 40 characters)
/// are masked wherever stderr repeats them.
const REDACT_MIN_CHARS: usize = 16;

/// `stderr` with every long word that also appears in `stdout` replaced by
/// `***`: a program that echoes the keys it prints must not have them
/// quoted in an error.
fn redact_words_of(stderr: &str, stdout: &[u8]) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || "+/=_-".contains(c);
    let stdout = String::from_utf8_lossy(stdout);
    let mut shown = stderr.to_string();
    for word in stdout.split(|c: char| !is_word(c)) {
        if word.len() >= REDACT_MIN_CHARS && shown.contains(word) {
            shown = shown.replace(word, "***");
        }
    }
    shown
}

/// Reads the JSON a credential process prints: the credential document
/// with `"Version": 1` and `SessionToken`. Errors never quote it.
pub fn parse_output(text: &str) -> std::result::Result<Credentials, String> {
    let document = CredentialDocument::parse(text, "its output")?;
    match document.number("Version") {
        Some(1) => {}
        Some(_) => return Err("its output has a Version other than 1".into()),
        None => return Err("its output has no \"Version\": 1".into()),
    }
    document.credentials("SessionToken", String::new())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn commands_split_like_the_aws_cli() {
        let split = |line: &str| split_command(line).unwrap();
        assert_eq!(
            split("/opt/aws_signing_helper credential-process --certificate /etc/c.pem"),
            [
                "/opt/aws_signing_helper",
                "credential-process",
                "--certificate",
                "/etc/c.pem"
            ]
        );
        assert_eq!(split("  a   b\t c "), ["a", "b", "c"]);
        assert_eq!(
            split(r#"helper 'two words' "and \"three\" \x" ''"#),
            ["helper", "two words", r#"and "three" \x"#, ""]
        );
        assert_eq!(split(r"a\ b c\\d"), ["a b", r"c\d"]);
        assert_eq!(split("x$HOME;rm `y` >z"), ["x$HOME;rm", "`y`", ">z"]);
        assert_eq!(
            split("'C:\\Program Files\\h.exe' --x"),
            ["C:\\Program Files\\h.exe", "--x"]
        );
        assert!(split("").is_empty());
        assert!(split_command("'open").is_err());
        assert!(split_command("\"open").is_err());
        assert!(split_command("end\\").is_err());
        // A line from a file with CRLF endings; a # inside a word is kept.
        assert_eq!(
            split("helper --x a#b '#c'\r"),
            ["helper", "--x", "a#b", "#c"]
        );
        assert!(split_command("helper #comment").is_err());
    }

    #[test]
    fn output_is_version_1_json() {
        let c = parse_output(&format!(
            r#"{{"Version":1,"AccessKeyId":"AKIAPROCESS00001","SecretAccessKey":"{SECRET}","SessionToken":"{TOKEN}","Expiration":"2026-11-28T18:00:00Z"}}"#
        ))
        .unwrap();
        assert_eq!(c.access_key_id, "AKIAPROCESS00001");
        assert_eq!(c.session_token.unwrap().expose(), TOKEN);
        assert_eq!(c.expiry, Some(at("2026-11-28T18:00:00Z")));
        let c = parse_output(&format!(
            r#"{{"Version":1,"AccessKeyId":"AKIAPROCESS00001","SecretAccessKey":"{SECRET}"}}"#
        ))
        .unwrap();
        assert_eq!((c.session_token.is_none(), c.expiry), (true, None));
        for (text, expected) in [
            (format!("AccessKeyId={SECRET}"), "not JSON"),
            (
                format!(r#"{{"AccessKeyId":"A","SecretAccessKey":"{SECRET}"}}"#),
                "no \"Version\": 1",
            ),
            (
                format!(r#"{{"Version":2,"AccessKeyId":"A","SecretAccessKey":"{SECRET}"}}"#),
                "other than 1",
            ),
            (
                format!(r#"{{"Version":1,"SecretAccessKey":"{SECRET}"}}"#),
                "no AccessKeyId",
            ),
            (
                r#"{"Version":1,"AccessKeyId":"A"}"#.to_string(),
                "no SecretAccessKey",
            ),
            (
                format!(
                    r#"{{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"{SECRET}"}}"#
                ),
                "Expiration",
            ),
        ] {
            let e = parse_output(&text).unwrap_err();
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains(SECRET), "{e}");
        }
    }

    fn script(dir: &TempDir, name: &str, body: &str) -> String {
        let path = dir.write(name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        path.display().to_string()
    }

    /// A helper that leaves a daemon in its own session holding its stdout
    /// and stderr: the answer is taken when the helper exits, not when the
    /// daemon lets go of the pipes.
    #[test]
    fn a_daemon_left_holding_the_pipes_does_not_hold_up_the_answer() {
        let dir = TempDir::new("process-daemon");
        let helper = script(
            &dir,
            "daemonizing",
            &format!(
                r#"setsid sleep 20 &
printf '{{"Version":1,"AccessKeyId":"AKIADAEMON","SecretAccessKey":"{SECRET}"}}'"#
            ),
        );
        let started = Instant::now();
        let c = run(&helper, "profile p", Duration::from_secs(10)).unwrap();
        assert_eq!(c.access_key_id, "AKIADAEMON");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "waited {:?} for the daemon",
            started.elapsed()
        );
    }

    #[test]
    fn runs_without_a_shell_and_reports_failures_escaped() {
        let dir = TempDir::new("process-run");
        let ok = script(
            &dir,
            "ok",
            &format!(
                r#"printf '{{"Version":1,"AccessKeyId":"AKIA%s","SecretAccessKey":"{SECRET}"}}' "$1""#
            ),
        );
        // The quoted argument arrives as one word; `;` is not a shell operator here.
        let c = run(
            &format!("{ok} 'ARG WITH;SPACE'"),
            "profile p",
            DEFAULT_TIMEOUT,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIAARG WITH;SPACE");
        assert!(c.source.starts_with("credential_process "), "{}", c.source);

        let failing = script(
            &dir,
            "failing",
            "echo 'line one' >&2; printf 'token expired\\033[31m\\n' >&2; exit 3",
        );
        let e = run(&failing, "profile p", DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exited with exit status: 3"), "{e}");
        assert!(
            e.contains(r"stderr: line one\ntoken expired\x1b[31m"),
            "{e}"
        );
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");

        // Keys printed on stdout and echoed on stderr are not quoted.
        let echoing = script(
            &dir,
            "echoing",
            &format!(
                r#"printf '{{"Version":1,"AccessKeyId":"AKIA","SecretAccessKey":"{SECRET}"}}'; echo "debug: {SECRET}" >&2; exit 2"#
            ),
        );
        let e = run(&echoing, "profile p", DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stderr: debug: ***"), "{e}");
        assert!(!e.contains(SECRET), "{e}");

        let chatty = script(
            &dir,
            "chatty",
            "head -c 20000000 /dev/zero | tr '\\0' x >&2; echo the-end >&2; exit 1",
        );
        let e = run(&chatty, "profile p", DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("xxxthe-end"),
            "{}",
            &e[e.len().saturating_sub(80)..]
        );
        assert!(e.len() < 1000, "{}", e.len());

        let hanging = script(&dir, "hanging", "sleep 30 & sleep 30");
        let started = Instant::now();
        let e = run(&hanging, "profile p", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not finish within"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let bad = script(
            &dir,
            "bad",
            &format!("echo '{{\"Version\":1,\"SecretAccessKey\":\"{SECRET}\"'"),
        );
        let e = run(&bad, "profile p", DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not JSON") && !e.contains(SECRET), "{e}");

        let e = run("/nonexistent/helper --x", "profile p", DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/helper: cannot start"), "{e}");
        assert_eq!(
            timeout(&Env::from_pairs([(
                "SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT",
                "5"
            )]))
            .unwrap(),
            Duration::from_secs(5)
        );
        assert!(
            timeout(&Env::from_pairs([(
                "SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT",
                "0"
            )]))
            .is_err()
        );
    }
}
