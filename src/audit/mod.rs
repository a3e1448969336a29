//! Fixity audit: re-hash archived AIPs against their manifests.
//!
//! An AIP is the directory `archive_dir/<aipid>/` with its
//! `manifest-sha256.txt`. The audit walks the directory through handles
//! (`O_NOFOLLOW` at every step, so a symlink planted in the archive is
//! reported, never followed), reads each file once, and compares:
//! - a file the manifest lists that is not there: **missing**;
//! - a file (or symlink, FIFO, socket, device) that the manifest does not
//!   list: **extra**;
//! - a file whose SHA-256 differs from the manifest's: **changed**;
//! - a file that cannot be read (I/O error, permission): **unreadable**;
//! - an AIP without a readable, well-formed manifest: **manifest**.
//!
//! Reading can be rate-limited (`max_bytes_per_second`) so a cron run does
//! not starve a live archive; pages read are dropped from the cache after
//! each file (`POSIX_FADV_DONTNEED`), so an audit does not evict the
//! working set. Files are hashed on a small fixed pool of threads.
//!
//! An AIP in S3 (`archive_dir = s3://BUCKET/PREFIX`) is audited by
//! [`s3`]: its object list against the manifest, sizes, and the SHA-256 S3
//! keeps (GetObjectAttributes' checksum, else the object's
//! `x-amz-meta-sha256`), or, with `--download`, the bytes re-hashed.
//! The walk of a directory archive is [`disk`].
//!
//! This module knows nothing of queues or of the poller.

pub mod disk;
pub mod s3;

use std::fmt;
use std::path::PathBuf;

/// The largest manifest read (about 10 million files).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 30;
/// Threads hashing files at once.
pub const HASH_THREADS: usize = 2;

/// What to audit and how fast.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    pub archive_dir: PathBuf,
    /// One AIP, or every directory in `archive_dir` (hidden ones excepted).
    pub aipid: Option<String>,
    /// Bytes read per second at most, over all threads; `None`: as fast as
    /// the disk gives them.
    pub max_bytes_per_second: Option<u64>,
}

/// What is wrong with one file of an AIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Extra { kind: &'static str },
    Changed { expected: String, actual: String },
    Unreadable { why: String },
    Manifest { why: String },
}

impl Problem {
    /// The kind as the summary and the metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::Extra { .. } => "extra",
            Problem::Changed { .. } => "changed",
            Problem::Unreadable { .. } => "unreadable",
            Problem::Manifest { .. } => "manifest",
        }
    }
}

/// The kinds of [`Problem`], in the order reports and metrics list them.
pub const PROBLEM_KINDS: [&str; 5] = ["missing", "extra", "changed", "unreadable", "manifest"];

/// One finding: an AIP, a file in it (relative name; empty for the AIP
/// itself), and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub aipid: String,
    pub name: String,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    /// One line, every foreign name escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aip = crate::text::escape(&self.aipid);
        let name = crate::text::escape(&self.name);
        match &self.problem {
            Problem::Missing => write!(f, "{aip}: missing: {name}"),
            Problem::Extra { kind } => {
                write!(f, "{aip}: extra: {name} ({kind} not in the manifest)")
            }
            Problem::Changed { expected, actual } => write!(
                f,
                "{aip}: changed: {name} (manifest {expected}, now {actual})"
            ),
            Problem::Unreadable { why } => write!(f, "{aip}: unreadable: {name} ({why})"),
            Problem::Manifest { why } => write!(f, "{aip}: manifest: {why}"),
        }
    }
}

/// What an audit looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub aips: u64,
    pub files: u64,
    pub bytes: u64,
    /// Findings by kind, in the order of [`PROBLEM_KINDS`].
    pub problems: [u64; 5],
}

impl Summary {
    pub fn clean(&self) -> bool {
        self.problems.iter().all(|n| *n == 0)
    }

    pub(crate) fn count(&mut self, problem: &Problem) {
        let i = PROBLEM_KINDS.iter().position(|k| *k == problem.kind());
        if let Some(i) = i {
            self.problems[i] += 1;
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} AIPs, {} files, {} bytes checked",
            self.aips, self.files, self.bytes
        )?;
        for (kind, n) in PROBLEM_KINDS.iter().zip(self.problems) {
            write!(f, ", {n} {kind}")?;
        }
        Ok(())
    }
}

/// Parses a manifest (the one parser, in `archive::manifest`).
pub use crate::archive::manifest::parse_manifest;
