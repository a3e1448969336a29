//! When to try a call again, and how long to wait first.
//!
//! Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
//! Backoff and Jitter"): the wait is uniform in `[0, min(cap, base * 2^n)]`,
//! which spreads retries of many workers instead of synchronising them.
//!
//! Pure: it computes waits from a random number the caller draws and never
//! sleeps; the caller (the SQS client, the poller's backoff) waits. Imports
//! nothing of the crate. The `adaptive` retry mode's client-side rate
//! limiter ([`RateLimiter`]) is a clock-driven state machine: it says how
//! long to wait, the caller sleeps.
//!
//! In `test-hooks` builds, `SQS_ARCHIVE_TEST_FAST_RETRY=1` divides every
//! wait by 1000, so tests can count 25 tries in a second.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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
        let scale = if fast_retry_hook() { 1000 } else { 1 };
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base: Duration::from_millis(100) / scale,
            cap: Duration::from_secs(20) / scale,
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

#[cfg(feature = "test-hooks")]
fn fast_retry_hook() -> bool {
    std::env::var_os("SQS_ARCHIVE_TEST_FAST_RETRY").is_some_and(|v| v == "1")
}

#[cfg(not(feature = "test-hooks"))]
fn fast_retry_hook() -> bool {
    false
}

/// The `adaptive` retry mode's client-side rate limiting: after a throttling
/// answer, sends are spaced to 70% of the rate that was throttled; each
/// success raises the allowed rate again by 10% (plus 0.5 per second), until
/// it is high enough (100 per second) not to matter and the limiter stands
/// down. Shared by all threads of one client.
#[derive(Debug, Default)]
pub struct RateLimiter {
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// Allowed sends per second; `None` while not limiting.
    rate: Option<f64>,
    /// When the last send was allowed.
    last_send: Option<Instant>,
    /// Sends per second measured before the first throttle.
    measured: f64,
}

/// Throttled below this, sends still go at this rate.
const MIN_RATE: f64 = 0.5;
/// Above this, the limiter stands down.
const MAX_RATE: f64 = 100.0;
/// The share of the throttled rate allowed after a throttle (CUBIC's beta).
const BETA: f64 = 0.7;

impl RateLimiter {
    /// How long to wait before a send at `now`; records the send as if made
    /// after that wait.
    pub fn acquire(&self, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = match (state.rate, state.last_send) {
            (Some(rate), Some(last)) => {
                let next = last + Duration::from_secs_f64(1.0 / rate);
                next.saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        };
        if let Some(last) = state.last_send {
            let gap = now.saturating_duration_since(last).as_secs_f64().max(1e-3);
            state.measured = 0.8 * state.measured + 0.2 * (1.0 / gap);
        }
        state.last_send = Some(now + wait);
        wait
    }

    /// A throttling answer: limit (or limit further) the send rate.
    pub fn throttled(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let base = state.rate.unwrap_or(state.measured.max(MIN_RATE));
        state.rate = Some((base * BETA).max(MIN_RATE));
    }

    /// A successful answer: allow a little more.
    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rate) = state.rate {
            let raised = rate * 1.1 + 0.5;
            state.rate = (raised < MAX_RATE).then_some(raised);
        }
    }

    /// The allowed sends per second, when limiting.
    pub fn rate(&self) -> Option<f64> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rate
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
    fn the_rate_limiter_spaces_sends_after_a_throttle_and_recovers() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        // Not limiting: no wait, whatever the pace.
        for i in 0..10 {
            assert_eq!(
                limiter.acquire(t0 + Duration::from_millis(i * 10)),
                Duration::ZERO
            );
        }
        assert_eq!(limiter.rate(), None);
        limiter.throttled();
        let rate = limiter.rate().expect("limiting after a throttle");
        assert!(rate < 100.0 * BETA + 1.0, "{rate}");
        // Two sends at the same instant: the second waits 1/rate.
        let now = t0 + Duration::from_secs(1);
        limiter.acquire(now);
        let wait = limiter.acquire(now);
        assert!(
            (wait.as_secs_f64() - 1.0 / rate).abs() < 1e-6,
            "{wait:?} at rate {rate}"
        );
        // Throttled again: slower still, never below the floor.
        for _ in 0..50 {
            limiter.throttled();
        }
        assert_eq!(limiter.rate(), Some(MIN_RATE));
        // Successes raise it until the limiter stands down.
        for _ in 0..100 {
            limiter.succeeded();
        }
        assert_eq!(limiter.rate(), None);
    }

    #[test]
    fn retry_modes_parse_with_their_default_tries() {
        assert_eq!(RetryMode::parse(" Adaptive "), Ok(RetryMode::Adaptive));
        assert_eq!(
            RetryMode::parse("legacy").unwrap().default_max_attempts(),
            5
        );
        assert_eq!(
            RetryMode::parse("standard").unwrap().default_max_attempts(),
            3
        );
        assert!(
            RetryMode::parse("fast")
                .unwrap_err()
                .contains("legacy, standard or adaptive")
        );
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
