//! `sqs_archive audit`: re-hash archived AIPs against their manifests
//! ([`crate::audit`]; in S3, [`crate::audit::s3`]), print one line per
//! problem, write the audit metrics.

use std::io::Write;
use std::time::SystemTime;

use crate::audit::s3::S3AuditOptions;
use crate::audit::{AuditOptions, PROBLEM_KINDS};
use crate::cmd::args::{Common, next, number, string};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::exit::Exit;

/// `audit`'s own options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditArgs {
    pub aipid: Option<String>,
    pub max_bytes_per_second: Option<u64>,
    /// S3 only: read and re-hash every object.
    pub download: bool,
}

/// Parses what follows `audit` on the command line.
pub fn parse(parser: &mut lexopt::Parser, common: &mut Common) -> Result<AuditArgs> {
    let mut args = AuditArgs::default();
    while let Some(flag) = next(parser)? {
        if common.take(&flag, parser)? {
            continue;
        }
        match flag.name() {
            "--aipid" => {
                let id = string(parser)?;
                if let Err(why) = crate::message::names::check_aipid(&id) {
                    return Err(Error::Usage(format!("--aipid: {why}")));
                }
                args.aipid = Some(id);
            }
            "--max-bytes-per-second" => {
                args.max_bytes_per_second =
                    Some(number(parser, "--max-bytes-per-second", 1, u64::MAX)?);
            }
            "--download" => args.download = true,
            _ => return Err(flag.unexpected()),
        }
    }
    Ok(args)
}

/// Runs the audit: findings on `out`, one line each; a summary line on
/// stderr (info); exit 0 when every file matched, 1 otherwise.
pub fn run(settings: &Settings, args: &AuditArgs, out: &mut impl Write) -> Result<Exit> {
    let options = AuditOptions {
        archive_dir: settings.archive_dir.clone(),
        aipid: args.aipid.clone(),
        max_bytes_per_second: args.max_bytes_per_second,
    };
    let mut write_error = None;
    let mut report = |finding: &crate::audit::Finding| {
        if write_error.is_none()
            && let Err(e) = crate::stdio::write_line(out, format_args!("audit: {finding}\n"))
        {
            write_error = Some(e);
        }
    };
    let result = match &settings.s3.location {
        Some(location) => crate::connect::s3_client(settings).and_then(|client| {
            let options = S3AuditOptions {
                bucket: location.bucket.clone(),
                prefix: location.prefix.clone(),
                aipid: args.aipid.clone(),
                download: args.download,
            };
            crate::audit::s3::audit(&client, &options, &mut report)
        }),
        None if args.download => Err(Error::Usage(
            "--download is for an s3:// archive_dir; a directory archive is always re-hashed"
                .into(),
        )),
        None => crate::audit::disk::audit(&options, &mut report),
    };
    let exit = match (&result, &write_error) {
        (_, Some(e)) => e.exit(),
        (Ok(summary), None) if summary.clean() => Exit::Ok,
        (Ok(_), None) => Exit::Failure,
        (Err(e), None) => e.exit(),
    };
    if let Some(path) = &settings.audit_metrics_file {
        let s = result.as_ref().cloned().unwrap_or_default();
        let problems: Vec<(&str, u64)> = PROBLEM_KINDS.iter().copied().zip(s.problems).collect();
        let text = crate::metrics::render_audit(
            SystemTime::now(),
            exit.as_u8(),
            s.aips,
            s.files,
            s.bytes,
            &problems,
        );
        if let Err(e) = crate::metrics::write_atomic(path, &text) {
            log::warn!(
                "cannot write {}: {e}",
                crate::text::escape(&path.display().to_string())
            );
        }
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    let summary = result?;
    log::info!("audit: {summary}");
    Ok(exit)
}
