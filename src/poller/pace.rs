//! When the receiver asks the queue for more: one receive at a time; a
//! pause after a failed receive (growing with an outage) or an empty short
//! poll; and when an empty answer means the queue is drained.
//!
//! The drain rule: one empty answer ends a drain, unless since that receive
//! was asked for something may have put a request back on the queue (a
//! request returned or hidden for a retry, a completion not sent, a request
//! not deleted; on a FIFO queue any settlement, which unblocks its group).
//! A request that finishes and is deleted cannot come back, so handlers
//! still running when the empty answer arrives do not call for a second
//! long poll; only one whose request is then put back does ([`Pace::put_back`]).
//! Pure; the time is passed in.

use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Pace {
    /// A receive is on its way.
    asking: bool,
    /// The last receive came back empty, and nothing was put back since.
    empty: bool,
    /// Put-back events so far, and their number when the receive on its
    /// way was asked for.
    progress: u64,
    asked_at: u64,
    /// No receive before this.
    pause_until: Option<Instant>,
    /// Failed receives in a row.
    outage: u32,
}

/// How long to pause after a failed receive: 5 s more for each failure in
/// a row, at most a minute.
const OUTAGE_STEP: Duration = Duration::from_secs(5);
const OUTAGE_STEPS: u32 = 12;
/// The pause after an empty short poll, so an idle loop does not hammer the queue.
const IDLE_PAUSE: Duration = Duration::from_secs(1);

impl Pace {
    /// A receive may be asked for now (`keep_polling`: a drained queue is
    /// asked again).
    pub fn may_ask(&self, keep_polling: bool, now: Instant) -> bool {
        !self.asking && (keep_polling || !self.empty) && self.pause_until.is_none_or(|t| now >= t)
    }

    pub fn asking(&self) -> bool {
        self.asking
    }

    /// The queue answered empty, and nothing was put back since it was asked.
    pub fn drained(&self) -> bool {
        self.empty
    }

    /// Failed receives in a row.
    pub fn outage(&self) -> u32 {
        self.outage
    }

    /// No receive before this, if set.
    pub fn paused_until(&self) -> Option<Instant> {
        self.pause_until
    }

    pub fn asked(&mut self) {
        self.asking = true;
        self.asked_at = self.progress;
    }

    /// Something may have been put back on the queue (see the module
    /// documentation): a drained queue may have more.
    pub fn put_back(&mut self) {
        self.empty = false;
        self.progress += 1;
    }

    /// The receive came back with messages.
    pub fn answered(&mut self) {
        self.asking = false;
        self.outage = 0;
    }

    /// The receive failed; how long the pause is.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.asking = false;
        self.outage += 1;
        let pause = OUTAGE_STEP * self.outage.min(OUTAGE_STEPS);
        self.pause_until = Some(now + pause);
        pause
    }

    /// The receive came back empty; true when that means the queue is drained.
    pub fn answered_empty(&mut self, keep_polling: bool, short_poll: bool, now: Instant) -> bool {
        self.answered();
        if keep_polling {
            if short_poll {
                self.pause_until = Some(now + IDLE_PAUSE);
            }
            false
        } else if self.progress == self.asked_at {
            self.empty = true;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_receive_at_a_time_and_drained_only_without_progress() {
        let now = Instant::now();
        let mut pace = Pace::default();
        assert!(pace.may_ask(false, now));
        pace.asked();
        assert!(!pace.may_ask(false, now));
        // A request was put back while the receive was on its way: its
        // empty answer says nothing about the queue now.
        pace.put_back();
        assert!(!pace.answered_empty(false, false, now));
        assert!(pace.may_ask(false, now));
        pace.asked();
        assert!(pace.answered_empty(false, false, now));
        assert!(pace.drained() && !pace.may_ask(false, now));
        assert!(pace.may_ask(true, now), "a loop asks again");
        pace.put_back();
        assert!(pace.may_ask(false, now));
    }

    #[test]
    fn one_empty_long_poll_ends_a_drain_while_handlers_still_run() {
        let now = Instant::now();
        let mut pace = Pace::default();
        // The last batch is in hand and its handlers run; the next receive
        // is asked for at once and comes back empty.
        pace.asked();
        assert!(pace.answered_empty(false, false, now), "drained at once");
        assert!(!pace.may_ask(false, now), "no second long poll");
        // The handlers finish and their requests are deleted: nothing can
        // come back, so the drain stays ended (the receiver calls put_back
        // only for a request returned, retried or kept).
        assert!(pace.drained());
        // One of them was retried instead: ask once more.
        pace.put_back();
        assert!(!pace.drained() && pace.may_ask(false, now));
    }

    #[test]
    fn failures_and_idle_short_polls_pause() {
        let now = Instant::now();
        let mut pace = Pace::default();
        pace.asked();
        assert_eq!(pace.failed(now), Duration::from_secs(5));
        pace.asked();
        assert_eq!(pace.failed(now), Duration::from_secs(10));
        assert_eq!(pace.outage(), 2);
        assert!(!pace.may_ask(true, now + Duration::from_secs(9)));
        assert!(pace.may_ask(true, now + Duration::from_secs(10)));
        for _ in 0..20 {
            pace.failed(now);
        }
        assert_eq!(pace.failed(now), Duration::from_secs(60), "capped");
        pace.asked();
        assert!(!pace.answered_empty(true, true, now));
        assert_eq!(pace.outage(), 0);
        assert_eq!(pace.paused_until(), Some(now + Duration::from_secs(1)));
    }
}
