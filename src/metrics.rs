//! Run metrics as a Prometheus text file (`metrics_file`), for the
//! node_exporter textfile collector.
//!
//! `poll_messages` writes the file at the end of every run, and every
//! `metrics_interval` under `--loop`. The write is atomic (a temporary file in
//! the same directory, then a rename), so the collector never reads half a
//! file. Counters and the handler histogram are kept across runs by reading
//! back the previous file: each run adds its own counts to what it found.
//! The names, types and HELP lines are in [`METRICS`]; the README lists them
//! word for word (checked by `tests/it/docs.rs`).
//!
//! Rendering and parsing are pure functions over text; [`Recorder`] is the
//! thread-safe edge the poller talks to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::files::{ConfigFile, ReadProblem, read_config_file};
use crate::queue::{ArchiveClient, QueueStats};

/// One metric family as the file declares it.
#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    /// `gauge`, `counter` or `histogram`.
    pub kind: &'static str,
    pub help: &'static str,
}

const LAST_RUN_START: &str = "sqs_archive_last_run_start_timestamp_seconds";
const LAST_RUN_END: &str = "sqs_archive_last_run_end_timestamp_seconds";
const LAST_SUCCESS: &str = "sqs_archive_last_success_timestamp_seconds";
const LAST_EXIT_CODE: &str = "sqs_archive_last_exit_code";
const MESSAGES: &str = "sqs_archive_messages_total";
const HANDLER: &str = "sqs_archive_handler_seconds";
const QUEUE: &str = "sqs_archive_queue_messages";

/// Every metric in the file, in the order written.
pub const METRICS: &[Metric] = &[
    Metric {
        name: LAST_RUN_START,
        kind: "gauge",
        help: "Start of the last poll_messages run, in seconds since the Unix epoch.",
    },
    Metric {
        name: LAST_RUN_END,
        kind: "gauge",
        help: "End of the last poll_messages run (under --loop: the last metrics write), in seconds since the Unix epoch.",
    },
    Metric {
        name: LAST_SUCCESS,
        kind: "gauge",
        help: "End of the last poll_messages run that exited 0, in seconds since the Unix epoch.",
    },
    Metric {
        name: LAST_EXIT_CODE,
        kind: "gauge",
        help: "Exit code of the last poll_messages run (under --loop: 0 while receiving works, 75 during an outage).",
    },
    Metric {
        name: MESSAGES,
        kind: "counter",
        help: "Requests settled by poll_messages, by outcome, over all runs.",
    },
    Metric {
        name: HANDLER,
        kind: "histogram",
        help: "Time each handler ran, in seconds, over all runs.",
    },
    Metric {
        name: QUEUE,
        kind: "gauge",
        help: "Approximate number of messages in each queue, by state, when the last run read them.",
    },
];

/// The outcomes `sqs_archive_messages_total` counts, in the order written.
pub const OUTCOMES: [&str; 7] = [
    "succeeded",
    "failed",
    "retried",
    "invalid",
    "returned",
    "unreported",
    "undeliverable",
];

/// Upper bounds of the handler histogram's buckets, in seconds (`+Inf` follows).
pub const BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0,
];

/// A run's settled requests, by outcome (in the order of [`OUTCOMES`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; 7]);

impl Counts {
    fn add(&self, other: &Counts) -> Counts {
        let mut sum = *self;
        for (s, o) in sum.0.iter_mut().zip(other.0) {
            // A hand-edited or corrupt file may carry anything up to u64::MAX.
            *s = s.saturating_add(o);
        }
        sum
    }
}

/// Handler durations: cumulative bucket counts, sum and count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each of [`BUCKETS`] (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn add(&self, other: &Histogram) -> Histogram {
        let mut h = self.clone();
        for (b, o) in h.buckets.iter_mut().zip(other.buckets) {
            *b = b.saturating_add(o);
        }
        h.sum += other.sum;
        h.count = h.count.saturating_add(other.count);
        h
    }
}

/// Counts of one queue, as read by the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSample {
    /// `request` or `completion`.
    pub queue: &'static str,
    pub stats: QueueStats,
}

/// What the previous file held that this run carries on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Carried {
    pub counts: Counts,
    pub handler: Histogram,
    pub last_success: Option<f64>,
}

/// Everything one write of the file says.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub start: f64,
    pub end: f64,
    pub last_success: Option<f64>,
    pub exit_code: u8,
    pub counts: Counts,
    pub handler: Histogram,
    pub queues: Vec<QueueSample>,
}

/// Seconds since the Unix epoch.
pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn header(out: &mut String, name: &str) {
    let m = METRICS
        .iter()
        .find(|m| m.name == name)
        .expect("every written metric is declared in METRICS");
    let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
    let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
}

/// The file's text (Prometheus text exposition format 0.0.4).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    header(&mut out, LAST_RUN_START);
    let _ = writeln!(out, "{LAST_RUN_START} {:.3}", s.start);
    header(&mut out, LAST_RUN_END);
    let _ = writeln!(out, "{LAST_RUN_END} {:.3}", s.end);
    if let Some(t) = s.last_success {
        header(&mut out, LAST_SUCCESS);
        let _ = writeln!(out, "{LAST_SUCCESS} {t:.3}");
    }
    header(&mut out, LAST_EXIT_CODE);
    let _ = writeln!(out, "{LAST_EXIT_CODE} {}", s.exit_code);
    header(&mut out, MESSAGES);
    for (outcome, n) in OUTCOMES.iter().zip(s.counts.0) {
        let _ = writeln!(out, "{MESSAGES}{{outcome=\"{outcome}\"}} {n}");
    }
    header(&mut out, HANDLER);
    let mut cumulative = 0;
    for (bound, n) in BUCKETS.iter().zip(s.handler.buckets) {
        cumulative = u64::saturating_add(cumulative, n);
        let _ = writeln!(out, "{HANDLER}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(
        out,
        "{HANDLER}_bucket{{le=\"+Inf\"}} {}\n{HANDLER}_sum {:.3}\n{HANDLER}_count {}",
        s.handler.count, s.handler.sum, s.handler.count
    );
    if !s.queues.is_empty() {
        header(&mut out, QUEUE);
        for q in &s.queues {
            for (state, n) in [
                ("visible", q.stats.visible),
                ("in_flight", q.stats.in_flight),
                ("delayed", q.stats.delayed),
            ] {
                let _ = writeln!(
                    out,
                    "{QUEUE}{{queue=\"{}\",state=\"{state}\"}} {n}",
                    q.queue
                );
            }
        }
    }
    out
}

/// Reads back what a previous [`render`] wrote. Lines it does not know are
/// ignored; a file that is not ours carries nothing.
pub fn parse(text: &str) -> Carried {
    let mut carried = Carried::default();
    let mut cumulative = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_string())
            })
        };
        match name {
            LAST_SUCCESS => carried.last_success = Some(value),
            MESSAGES => {
                if let Some(i) =
                    label("outcome").and_then(|o| OUTCOMES.iter().position(|x| *x == o))
                {
                    carried.counts.0[i] = value as u64;
                }
            }
            "sqs_archive_handler_seconds_bucket" => {
                if let Some(i) = label("le").and_then(|le| {
                    BUCKETS
                        .iter()
                        .position(|b| le.parse::<f64>().ok() == Some(*b))
                }) {
                    cumulative.insert(i, value as u64);
                }
            }
            "sqs_archive_handler_seconds_sum" => carried.handler.sum = value,
            "sqs_archive_handler_seconds_count" => carried.handler.count = value as u64,
            _ => {}
        }
    }
    // Back from cumulative to per-bucket counts.
    let mut below = 0;
    for (i, total) in cumulative {
        carried.handler.buckets[i] = total.saturating_sub(below);
        below = total.max(below);
    }
    carried
}

/// Writes `text` to `path` atomically. The collector reads only `*.prom`,
/// so the temporary dot-name is never picked up half-written; the file holds
/// no secret and is made readable by the collector's user (0644) whatever
/// the umask. A configured path: a link, a FIFO, a device node or another
/// user's file at it is left as it is ([`crate::files::write_configured`]).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    crate::files::write_configured(path, text.as_bytes(), Some(0o644))
}

/// The poller's side: collects a run's figures and writes the file.
#[derive(Debug)]
pub struct Recorder {
    path: Option<PathBuf>,
    interval: Duration,
    started: SystemTime,
    carried: Carried,
    handler: Mutex<Histogram>,
    queues: Mutex<Vec<QueueSample>>,
    last_write: Mutex<Instant>,
}

impl Recorder {
    /// A recorder that writes nothing (no `metrics_file`).
    pub fn disabled() -> Recorder {
        Recorder::new(None, Duration::from_secs(60), SystemTime::now())
    }

    /// Starts a run; reads the previous file, if any, to carry its counters.
    pub fn new(path: Option<PathBuf>, interval: Duration, started: SystemTime) -> Recorder {
        let carried = match &path {
            // Read as a configured file: non-blocking, a regular file only,
            // at most 1 MiB (it is a few KiB), so a FIFO or a link to
            // `/dev/zero` left at the path cannot hang or exhaust the run.
            Some(p) => match read_config_file(p, ConfigFile::PreviousMetrics) {
                Ok(text) => parse(&text),
                Err(ReadProblem::NotFound(_)) => Carried::default(),
                Err(e) => {
                    log::warn!(
                        "metrics file {}: cannot read the previous counters, starting from 0: {e}",
                        p.display()
                    );
                    Carried::default()
                }
            },
            None => Carried::default(),
        };
        Recorder {
            path,
            interval,
            started,
            carried,
            handler: Mutex::new(Histogram::default()),
            queues: Mutex::new(Vec::new()),
            last_write: Mutex::new(Instant::now()),
        }
    }

    /// True when there is a file to write.
    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    /// A handler ran for `elapsed`.
    pub fn handler_finished(&self, elapsed: Duration) {
        if self.enabled() {
            lock(&self.handler).observe(elapsed.as_secs_f64());
        }
    }

    /// Reads both queues' counts (best effort: a queue that does not answer is left out).
    pub fn sample_queues(&self, client: &dyn ArchiveClient, queues: [(&'static str, &str); 2]) {
        if !self.enabled() {
            return;
        }
        let mut samples = Vec::new();
        for (queue, url) in queues {
            match client.queue_stats(url) {
                Ok(stats) => samples.push(QueueSample { queue, stats }),
                Err(e) => log::debug!("metrics: {queue} queue counts not read: {e}"),
            }
        }
        *lock(&self.queues) = samples;
    }

    /// Under `--loop`: when the next write is due (`None` without a file).
    pub fn next_due(&self) -> Option<Instant> {
        self.enabled()
            .then(|| *lock(&self.last_write) + self.interval)
    }

    /// Under `--loop`: true once `metrics_interval` has passed since the last write.
    pub fn due(&self) -> bool {
        self.enabled() && lock(&self.last_write).elapsed() >= self.interval
    }

    /// Writes the file: this run's `counts` on top of the carried ones. A
    /// failed write is a warning, never the run's failure.
    pub fn write(&self, counts: &Counts, exit_code: u8, now: SystemTime) {
        let Some(path) = &self.path else { return };
        *lock(&self.last_write) = Instant::now();
        let end = epoch_seconds(now);
        let snapshot = Snapshot {
            start: epoch_seconds(self.started),
            end,
            last_success: if exit_code == 0 {
                Some(end)
            } else {
                self.carried.last_success
            },
            exit_code,
            counts: self.carried.counts.add(counts),
            handler: self.carried.handler.add(&lock(&self.handler)),
            queues: lock(&self.queues).clone(),
        };
        if let Err(e) = write_atomic(path, &render(&snapshot)) {
            log::warn!("metrics file {} not written: {e}", path.display());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The metrics `sqs_archive audit` writes to `audit_metrics_file`, in the
/// order written.
pub const AUDIT_METRICS: &[Metric] = &[
    Metric {
        name: "sqs_archive_audit_last_run_timestamp_seconds",
        kind: "gauge",
        help: "End of the last sqs_archive audit, in seconds since the Unix epoch.",
    },
    Metric {
        name: "sqs_archive_audit_last_exit_code",
        kind: "gauge",
        help: "Exit code of the last sqs_archive audit (0: every file matched its manifest).",
    },
    Metric {
        name: "sqs_archive_audit_aips",
        kind: "gauge",
        help: "AIPs the last audit checked.",
    },
    Metric {
        name: "sqs_archive_audit_files",
        kind: "gauge",
        help: "Files the last audit read and hashed.",
    },
    Metric {
        name: "sqs_archive_audit_bytes",
        kind: "gauge",
        help: "Bytes the last audit read and hashed.",
    },
    Metric {
        name: "sqs_archive_audit_problems",
        kind: "gauge",
        help: "Problems the last audit found, by kind (missing, extra, changed, unreadable, manifest).",
    },
];

/// The audit's metrics file: pure. `problems` are `(kind, count)` pairs.
pub fn render_audit(
    end: SystemTime,
    exit_code: u8,
    aips: u64,
    files: u64,
    bytes: u64,
    problems: &[(&str, u64)],
) -> String {
    let mut out = String::new();
    let seconds = end
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for metric in AUDIT_METRICS {
        let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(out, "# TYPE {} {}", metric.name, metric.kind);
        let name = metric.name;
        match name {
            "sqs_archive_audit_last_run_timestamp_seconds" => {
                let _ = writeln!(out, "{name} {seconds:.3}");
            }
            "sqs_archive_audit_last_exit_code" => {
                let _ = writeln!(out, "{name} {exit_code}");
            }
            "sqs_archive_audit_aips" => {
                let _ = writeln!(out, "{name} {aips}");
            }
            "sqs_archive_audit_files" => {
                let _ = writeln!(out, "{name} {files}");
            }
            "sqs_archive_audit_bytes" => {
                let _ = writeln!(out, "{name} {bytes}");
            }
            _ => {
                for (kind, n) in problems {
                    let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut handler = Histogram::default();
        for s in [0.05, 0.7, 0.7, 20.0, 99_999.0] {
            handler.observe(s);
        }
        Snapshot {
            start: 1_700_000_000.0,
            end: 1_700_000_012.5,
            last_success: Some(1_700_000_012.5),
            exit_code: 0,
            counts: Counts([7, 1, 2, 1, 0, 0, 0]),
            handler,
            queues: vec![QueueSample {
                queue: "request",
                stats: QueueStats {
                    visible: 3,
                    in_flight: 1,
                    delayed: 0,
                },
            }],
        }
    }

    #[test]
    fn a_fifo_at_the_metrics_path_is_neither_read_nor_replaced() {
        use std::os::unix::fs::FileTypeExt as _;
        let dir = std::env::temp_dir().join(format!("metrics-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("m.prom");
        crate::files::make_fifo(&fifo);
        // Used to block here for ever, waiting for a writer.
        let recorder = Recorder::new(
            Some(fifo.clone()),
            Duration::from_secs(60),
            SystemTime::now(),
        );
        assert_eq!(recorder.carried.last_success, None);
        // Used to turn the FIFO (or /dev/null) into a regular file.
        recorder.write(&Counts::default(), 0, SystemTime::now());
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let e = write_atomic(&fifo, "x").unwrap_err();
        assert!(e.to_string().contains("a FIFO, not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn huge_carried_counters_saturate_instead_of_overflowing() {
        let carried = parse(
            "sqs_archive_messages_total{outcome=\"succeeded\"} 1e30\n\
             sqs_archive_handler_seconds_count 1e30\n\
             sqs_archive_handler_seconds_bucket{le=\"0.1\"} 1e30\n",
        );
        let counts = carried.counts.add(&Counts([1, 0, 0, 0, 0, 0, 0]));
        assert_eq!(counts.0[0], u64::MAX);
        let mut more = Histogram::default();
        more.observe(0.05);
        let handler = carried.handler.add(&more);
        assert_eq!((handler.count, handler.buckets[0]), (u64::MAX, u64::MAX));
        // Rendered (buckets are summed into cumulative counts) without overflow.
        let mut snap = snapshot();
        snap.counts = counts;
        snap.handler = handler;
        assert!(render(&snap).contains(&format!("{HANDLER}_bucket{{le=\"+Inf\"}} {}", u64::MAX)));
    }

    #[test]
    fn renders_every_declared_family_in_text_format() {
        let text = render(&snapshot());
        for m in METRICS {
            assert!(text.contains(&format!("# HELP {} {}\n", m.name, m.help)));
            assert!(text.contains(&format!("# TYPE {} {}\n", m.name, m.kind)));
        }
        assert!(text.contains("sqs_archive_messages_total{outcome=\"succeeded\"} 7\n"));
        assert!(
            text.contains("sqs_archive_handler_seconds_bucket{le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("sqs_archive_handler_seconds_bucket{le=\"14400\"} 4\n"));
        assert!(text.contains("sqs_archive_handler_seconds_bucket{le=\"+Inf\"} 5\n"));
        assert!(
            text.contains("sqs_archive_queue_messages{queue=\"request\",state=\"visible\"} 3\n")
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn counters_histogram_and_last_success_carry_over() {
        let s = snapshot();
        let carried = parse(&render(&s));
        assert_eq!(carried.counts, s.counts);
        assert_eq!(carried.handler.buckets, s.handler.buckets);
        assert_eq!(carried.handler.count, 5);
        assert_eq!(carried.last_success, Some(1_700_000_012.5));
        assert_eq!(parse("garbage\n{}\nx 1 2\n"), Carried::default());
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_and_adds_counts() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.prom");
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let first = Recorder::new(Some(path.clone()), Duration::from_secs(60), t(100));
        first.handler_finished(Duration::from_millis(300));
        first.write(&Counts([2, 0, 0, 0, 0, 0, 0]), 0, t(110));
        let second = Recorder::new(Some(path.clone()), Duration::from_secs(60), t(200));
        second.write(&Counts([1, 0, 0, 0, 0, 3, 0]), 75, t(210));
        let carried = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(carried.counts, Counts([3, 0, 0, 0, 0, 3, 0]));
        assert_eq!(carried.last_success, Some(110.0));
        assert_eq!(carried.handler.count, 1);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.prom"], "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
