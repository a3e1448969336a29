//! `sqs_archive doctor`: is this host ready to run `poll_messages`, and is
//! what it runs safe from other users? Also `sqs_archive config`: every
//! setting, its value and where it came from ([`settings_view`]).
//!
//! Each check is one line, `ok`, `warn` or `fail`, then what it found (or,
//! with `--json`, one JSON object `{"checks": [{"name", "status",
//! "detail"}], "ok"}`): the profile parses; credentials resolve (the source
//! is named, never a secret); both queues answer `GetQueueAttributes`, with
//! what their attributes mean for the poller ([`checks`]); `source_dir`,
//! `archive_dir` (in S3: the bucket, a probe object written and removed,
//! storage class and encryption, incomplete uploads: [`s3`]) and the handler; nobody but root and this user can change
//! the profile, the `.env` file, the handler program or a script it is
//! handed, nor a directory above them ([`trust`]); `lock_file`, `metrics_file`, `log_file` and
//! `audit_metrics_file` are regular files or absent, in directories nobody
//! else controls, and no two are the same file. The exit code is 0 when
//! nothing failed, 1 otherwise.
//!
//! The checks change nothing but a probe file they remove.

mod checks;
mod report;
mod s3;
pub mod settings_view;
mod trust;

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::config::{K, Settings, Source};
use crate::environment::Env;
use crate::exit::Exit;
pub use report::{Check, ReportArgs, Status, parse};

/// Runs every check, printing each line as it is known (or the JSON object
/// at the end); 0 when none failed, else 1.
pub fn run(source: &Source, env: Env, args: &ReportArgs, out: &mut dyn Write) -> Exit {
    let mut all = Vec::new();
    let mut report = |check: Check| {
        if !args.json {
            // A closed stdout must not hide the verdict: the exit code still says it.
            let _ = writeln!(out, "{check}");
            let _ = out.flush();
        }
        all.push(check);
    };
    match Settings::load(source, env) {
        Ok(s) => {
            let file = s
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "no profile file, environment only".into());
            report(Check::ok("profile", format!("profile: {file} parses")));
            for check in checks(&s) {
                report(check);
            }
        }
        Err(e) => report(Check::fail("profile", format!("profile: {e}"))),
    }
    let failed = all.iter().filter(|c| c.status == Status::Fail).count();
    if args.json {
        let checks: Vec<_> = all.iter().map(Check::to_json).collect();
        let object = json!({"checks": checks, "ok": failed == 0});
        let _ = writeln!(out, "{}", crate::text::json_line(&object));
        let _ = out.flush();
    }
    verdict(failed)
}

/// The exit code, and on failure the one stderr line every failing command
/// prints (the report itself is on stdout, and may be closed or piped away).
fn verdict(failed: usize) -> Exit {
    if failed == 0 {
        return Exit::Ok;
    }
    let s = if failed == 1 { "" } else { "s" };
    crate::stdio::stderr_line(format_args!(
        "sqs_archive: error: doctor: {failed} check{s} failed"
    ));
    Exit::Failure
}

/// Every check after the profile, in the order printed.
fn checks(s: &Settings) -> Vec<Check> {
    let mut all = vec![checks::credentials(s)];
    all.extend(checks::queues(s));
    all.push(set_by(
        checks::readable_dir("source_dir", &s.source_dir),
        s,
        K::source_dir,
    ));
    match &s.s3.location {
        Some(location) => all.extend(
            s3::checks(s, location)
                .into_iter()
                .map(|c| set_by(c, s, K::archive_dir)),
        ),
        None => all.push(set_by(
            checks::archive_dir(&s.archive_dir),
            s,
            K::archive_dir,
        )),
    }
    let handler = checks::handler_path(s);
    all.push(checks::handler(&handler));
    if let Some(file) = &s.file {
        all.push(trust::trusted("profile", file));
        all.extend(trust::secret_readable(
            "profile",
            file,
            checks::holds_secret(s),
        ));
    }
    if let Some(file) = &s.env_file {
        all.push(trust::trusted("env file", file));
        all.extend(trust::secret_readable("env file", file, true));
    }
    if let Ok(program) = &handler {
        all.push(trust::trusted("handler", program));
    }
    // A script handed to an interpreter runs as much as the program does.
    let scripts = s.handler.iter().flatten().skip(1);
    for script in scripts
        .map(Path::new)
        .filter(|p| p.is_absolute() && p.is_file())
    {
        all.push(trust::trusted("handler script", script));
    }
    let outputs = [
        (K::lock_file, Some(s.lock_file.as_path())),
        (K::metrics_file, s.metrics_file.as_deref()),
        (K::log_file, s.log_file.as_deref()),
        (K::audit_metrics_file, s.audit_metrics_file.as_deref()),
    ];
    for (key, path) in outputs {
        all.push(set_by(trust::output_file(key.name(), path), s, key));
    }
    let outputs = outputs.map(|(key, path)| (key.name(), path));
    all.extend(trust::distinct(&outputs));
    all
}

/// A check that did not pass says which layer gave the key its value, so
/// the operator knows where to change it.
fn set_by(mut check: Check, s: &Settings, key: K) -> Check {
    if check.status != Status::Ok {
        check.text = format!("{} (set by {})", check.text, s.origin(key));
    }
    check
}
