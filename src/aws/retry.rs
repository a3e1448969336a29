//! When to try a call again, and how long to wait first.
//!
//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
//! Backoff and Jitter"): the wait is uniform in `[0, min(cap, base * 2^n)]`,
//! which spreads retries of many workers instead of synchronising them.
//!
//! Pure: it computes waits from a random number the caller draws and never
//! sleeps; the caller (the SQS client, the poller's backoff) waits. Imports
//! nothing of the crate.

use std::time::Duration;

/// `retry_mode` / `AWS_RETRY_MODE`, as the AWS SDKs and CLI read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryMode {
    /// The older SDK behaviour: 5 tries by default.
    Legacy,
    /// 3 tries by default, exponential backoff with jitter.
    Standard,
    /// `standard` plus client-side rate limiting after throttling answers.
    Adaptive,
}

impl RetryMode {
    /// `legacy`, `standard` or `adaptive` (case-insensitive).
    pub fn parse(text: &str) -> Result<RetryMode, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "legacy" => Ok(RetryMode::Legacy),
            "standard" => Ok(RetryMode::Standard),
            "adaptive" => Ok(RetryMode::Adaptive),
            _ => Err(format!(
                "retry_mode must be legacy, standard or adaptive, not {text:?}"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RetryMode::Legacy => "legacy",
            RetryMode::Standard => "standard",
            RetryMode::Adaptive => "adaptive",
        }
    }

    /// Tries per call when `max_attempts` is set nowhere (the SDKs' defaults).
    pub fn default_max_attempts(self) -> u32 {
        match self {
            RetryMode::Legacy => 5,
            RetryMode::Standard | RetryMode::Adaptive => 3,
        }
    }
}

/// Retry settings of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    pub fn new(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(20),
        }
    }

    /// The longest wait before try number `attempt + 1` (`attempt` counts from 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A wait drawn uniformly from `[0, ceiling(attempt)]` with the given random number.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self.ceiling(attempt).as_nanos() as u64;
        Duration::from_nanos(if ceiling == 0 {
            0
        } else {
            random % (ceiling + 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = RetryPolicy::new(5);
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(5), Duration::from_millis(1600));
        assert_eq!(p.ceiling(20), Duration::from_secs(20));
        assert_eq!(p.ceiling(200), Duration::from_secs(20));
    }

    #[test]
    fn retry_modes_parse_with_their_default_tries() {
        assert_eq!(RetryMode::parse(" Adaptive "), Ok(RetryMode::Adaptive));
        assert_eq!(RetryMode::parse("legacy").unwrap().default_max_attempts(), 5);
        assert_eq!(RetryMode::parse("standard").unwrap().default_max_attempts(), 3);
        assert!(RetryMode::parse("fast").unwrap_err().contains("legacy, standard or adaptive"));
    }

    #[test]
    fn delay_stays_within_bounds() {
        let p = RetryPolicy::new(5);
        for attempt in 1..40 {
            for r in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                assert!(p.delay(attempt, r) <= p.ceiling(attempt));
            }
        }
        assert_eq!(p.delay(3, 0), Duration::ZERO);
        assert_eq!(RetryPolicy::new(0).max_attempts, 1);
    }
}
