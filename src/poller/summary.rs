//! What a run did, counted as it happens: the summary line printed at the
//! end, and a [`Counts`] snapshot for anything else that reports on a run
//! (a metrics file, a test).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by the threads of a run.
#[derive(Debug, Default)]
pub struct Summary {
    received: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    invalid: AtomicU64,
    returned: AtomicU64,
    unreported: AtomicU64,
    undeliverable: AtomicU64,
}

/// One counter of [`Summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Requests received.
    Received,
    /// Success completions sent (the request then deleted).
    Succeeded,
    /// Failure completions sent (the request then deleted).
    Failed,
    /// Requests hidden for a later retry.
    Retried,
    /// Requests that are not valid (a failure completion is sent for them).
    Invalid,
    /// Requests made visible again at once (shutdown, busy FIFO group, no handler).
    Returned,
    /// Completions that could not be sent for now; their requests stay on the queue.
    Unreported,
    /// Completions the completion queue refuses even at their smallest: the
    /// request is left to the queue's redrive, its handler is not run again soon.
    Undeliverable,
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub received: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub invalid: u64,
    pub returned: u64,
    pub unreported: u64,
    pub undeliverable: u64,
}

impl Counts {
    /// The settled requests in the metrics file's order
    /// ([`crate::metrics::OUTCOMES`]).
    pub fn by_outcome(&self) -> crate::metrics::Counts {
        crate::metrics::Counts([
            self.succeeded,
            self.failed,
            self.retried,
            self.invalid,
            self.returned,
            self.unreported,
            self.undeliverable,
        ])
    }
}

impl Summary {
    pub fn add(&self, count: Count) {
        self.add_many(count, 1);
    }

    /// Adds `n` to one counter.
    pub fn add_many(&self, count: Count, n: u64) {
        if n == 0 {
            return;
        }
        let counter = match count {
            Count::Received => &self.received,
            Count::Succeeded => &self.succeeded,
            Count::Failed => &self.failed,
            Count::Retried => &self.retried,
            Count::Invalid => &self.invalid,
            Count::Returned => &self.returned,
            Count::Unreported => &self.unreported,
            Count::Undeliverable => &self.undeliverable,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn counts(&self) -> Counts {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            received: n(&self.received),
            succeeded: n(&self.succeeded),
            failed: n(&self.failed),
            retried: n(&self.retried),
            invalid: n(&self.invalid),
            returned: n(&self.returned),
            unreported: n(&self.unreported),
            undeliverable: n(&self.undeliverable),
        }
    }

    /// The summary line, with the process's own CPU and peak memory.
    pub fn line(&self, elapsed: Duration) -> String {
        line(&self.counts(), elapsed, crate::rusage::own())
    }
}

/// The pure part of [`Summary::line`].
pub fn line(c: &Counts, elapsed: Duration, usage: Option<crate::rusage::Usage>) -> String {
    let mut text = format!(
        "summary: received={} succeeded={} failed={} retried={} invalid={} returned={} unreported={} undeliverable={} elapsed={:.3}s",
        c.received,
        c.succeeded,
        c.failed,
        c.retried,
        c.invalid,
        c.returned,
        c.unreported,
        c.undeliverable,
        elapsed.as_secs_f64()
    );
    // cpu= to the microsecond (the process CPU clock); sys= in the
    // kernel's 10 ms ticks, the only grain it keeps the split in.
    if let Some(u) = usage {
        text.push_str(&format!(
            " cpu={:.6}s sys={:.3}s peak_rss={}KiB",
            u.cpu.as_secs_f64(),
            u.sys.as_secs_f64(),
            u.peak_rss_kib
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_line() {
        let s = Summary::default();
        s.add(Count::Received);
        s.add(Count::Received);
        s.add(Count::Undeliverable);
        let c = s.counts();
        assert_eq!((c.received, c.undeliverable, c.succeeded), (2, 1, 0));
        let text = line(&c, Duration::from_millis(1500), None);
        assert!(
            text.starts_with("summary: received=2 succeeded=0"),
            "{text}"
        );
        assert!(text.contains("undeliverable=1 elapsed=1.500s"), "{text}");
        let usage = crate::rusage::Usage {
            cpu: Duration::from_micros(51_234),
            sys: Duration::from_millis(30),
            peak_rss_kib: 6912,
        };
        let text = line(&c, Duration::from_millis(1500), Some(usage));
        assert!(
            text.ends_with(" cpu=0.051234s sys=0.030s peak_rss=6912KiB"),
            "{text}"
        );
    }
}
