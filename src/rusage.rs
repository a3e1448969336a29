//! The process's own CPU time and peak memory (Linux).
//!
//! `poll_messages` prints them in its summary line, so the cost of the
//! poller itself (without its handlers) is visible on every run.
//!
//! The CPU total comes from `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`: user
//! plus system time of every thread of this process, to the nanosecond
//! (what `getrusage(RUSAGE_SELF)` sums, at a finer grain; `RUSAGE_CHILDREN`
//! would count the handlers, which are not the poller's cost, and only once
//! they were waited for; rustix offers no `getrusage`). The system part
//! alone is only kept by the kernel in `/proc/self/stat`'s clock ticks
//! (10 ms); the peak resident set is `VmHWM` of `/proc/self/status`.

use std::time::Duration;

/// CPU time and peak resident set of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// User plus system time of this process alone (not its children).
    pub cpu: Duration,
    /// The system (kernel) part of `cpu`.
    pub sys: Duration,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

/// Reads the CPU clock and `/proc/self`; `None` where `/proc` is not available.
pub fn own() -> Option<Usage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mut usage = parse(&stat, &status, rustix::param::clock_ticks_per_second())?;
    usage.cpu = process_cpu_time();
    // The two are read at different moments and grains: the part never
    // exceeds the whole.
    usage.sys = usage.sys.min(usage.cpu);
    Some(usage)
}

/// User plus system time of all threads of this process, nanosecond grain.
pub fn process_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The pure part: fields 14 and 15 of `stat` (after the command name, which
/// may hold spaces and parentheses) and `VmHWM` of `status`.
pub fn parse(stat: &str, status: &str, ticks_per_second: u64) -> Option<Usage> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ms = |ticks: u64| Duration::from_millis(ticks * 1000 / ticks_per_second.max(1));
    let (cpu, sys) = (ms(utime + stime), ms(stime));
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(Usage {
        cpu,
        sys,
        peak_rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (poll messages) S 1 1234 1234 0 -1 4194560 1000 0 0 0 37 5 0 0 20 0 6 0 100 1000000 500 18446744073709551615";
        let status =
            "Name:\tpoll_messages\nVmPeak:\t  20000 kB\nVmHWM:\t    6123 kB\nVmRSS:\t 6000 kB\n";
        assert_eq!(
            parse(stat, status, 100),
            Some(Usage {
                cpu: Duration::from_millis(420),
                sys: Duration::from_millis(50),
                peak_rss_kib: 6123
            })
        );
        assert_eq!(parse("garbage", status, 100), None);
    }

    #[test]
    fn reads_this_process() {
        let u = own().expect("/proc is mounted");
        assert!(u.peak_rss_kib > 0);
        assert!(u.sys <= u.cpu);
    }

    #[test]
    fn cpu_time_is_finer_than_clock_ticks() {
        // Burn a little CPU; the clock moves in steps far below 10 ms.
        let start = process_cpu_time();
        let mut steps = std::collections::BTreeSet::new();
        let mut x = 0u64;
        while steps.len() < 20 {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            steps.insert(process_cpu_time());
        }
        std::hint::black_box(x);
        let spent = *steps.last().unwrap() - start;
        // 20 distinct readings inside one 10 ms tick: ticks could not.
        assert!(
            spent < Duration::from_millis(10),
            "20 readings in {spent:?}"
        );
    }
}
