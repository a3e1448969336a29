//! Build facts for `--version`: the commit (`git rev-parse --short HEAD`, or
//! `unknown` outside a checkout), the target, and the build date
//! (`SOURCE_DATE_EPOCH` when set, for reproducible builds; else today).
//! Reruns only when HEAD or the branch it names moves, or
//! `SOURCE_DATE_EPOCH` changes. No dependencies.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// `YYYY-MM-DD` of a Unix time (Howard Hinnant's days-to-civil).
fn date(seconds: u64) -> String {
    let z = (seconds / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A path that does not exist would rerun this script on every build:
    // name only files that are there (a branch whose ref is packed gets a
    // loose file on its next commit: watch the directory it appears in).
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path])
            && Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
    {
        let p = Path::new(&p);
        match p.parent() {
            Some(dir) if !p.exists() && dir.exists() => {
                println!("cargo:rerun-if-changed={}", dir.display())
            }
            _ if p.exists() => println!("cargo:rerun-if-changed={}", p.display()),
            _ => {}
        }
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=SQS_ARCHIVE_COMMIT={commit}");
    println!("cargo:rustc-env=SQS_ARCHIVE_TARGET={target}");
    println!("cargo:rustc-env=SQS_ARCHIVE_BUILD_DATE={}", date(seconds));
    debug_assert_eq!(date(0), "1970-01-01");
    debug_assert_eq!(date(1_795_000_000), "2026-11-18");
}
