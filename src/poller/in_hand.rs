//! What the receiver holds: requests received and waiting for a worker,
//! those handed to the job channel and not yet taken, the FIFO groups
//! ([`Groups`]) and how many are running and unsettled; and from that, what
//! may start next, how many to receive next, and whose visibility is due
//! for an extension. Pure bookkeeping over [`Job`]s; no I/O, no clock of
//! its own (the time is passed in).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::groups::{AfterSettled, Groups};
use super::work::Job;
use crate::queue::ReceiptHandle;

/// A request received and not yet started.
#[derive(Debug)]
pub struct Waiting {
    pub job: Job,
    /// When its visibility was last set (received or extended).
    pub hidden_at: Instant,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct InHand {
    waiting: VecDeque<Waiting>,
    /// Standard queues: requests already in the job channel, not yet taken
    /// by a worker, and when their visibility was last set. A worker
    /// finishing one request takes the next without waiting for the receiver.
    queued: HashMap<ReceiptHandle, Instant>,
    groups: Groups,
    /// Handed to a worker (or the job channel) and not yet finished.
    running: usize,
    /// Handed out (to a worker or straight to the reporter) and not yet settled.
    unsettled: usize,
}

impl InHand {
    /// A request received at `now`, waiting for a worker.
    pub fn receive(&mut self, job: Job, now: Instant) {
        self.waiting.push_back(Waiting {
            job,
            hidden_at: now,
        });
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many workers what is in hand may still need: one per waiting
    /// request, and one per unsettled request (running, or finished and
    /// perhaps put back on the queue to be received and run again).
    pub fn may_need_workers(&self) -> usize {
        self.waiting.len() + self.unsettled
    }

    /// Nothing waits, runs or awaits settling.
    pub fn idle(&self) -> bool {
        self.waiting.is_empty() && self.running == 0 && self.unsettled == 0
    }

    /// The oldest waiting request that may start, while fewer than `limit`
    /// run; it counts as running and unsettled from now. `track_queued`
    /// (standard queues) keeps its visibility extended until a worker takes it.
    pub fn next_to_start(&mut self, limit: usize, track_queued: bool) -> Option<Job> {
        if self.running >= limit {
            return None;
        }
        let i = self
            .waiting
            .iter()
            .position(|w| self.groups.may_start(w.job.group.as_deref()))?;
        let waiting = self.waiting.remove(i)?;
        self.groups.hold(waiting.job.group.as_deref());
        self.running += 1;
        self.unsettled += 1;
        if track_queued {
            self.queued.insert(
                waiting.job.message.receipt_handle.clone(),
                waiting.hidden_at,
            );
        }
        Some(waiting.job)
    }

    /// A handed-out request taken back from the job channel unstarted: no
    /// worker will finish it (it is still unsettled: its release is reported).
    pub fn take_back(&mut self, job: &Job) {
        self.running -= 1;
        self.queued.remove(&job.message.receipt_handle);
        self.groups.free(job.group.as_deref());
    }

    /// Takes the waiting requests `which` picks, to be returned to the
    /// queue; each counts as unsettled until the reporter settles it.
    pub fn release(&mut self, which: impl Fn(&Waiting) -> bool) -> Vec<Job> {
        let (release, keep): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|w| which(w));
        self.waiting = keep.into();
        self.unsettled += release.len();
        release.into_iter().map(|w| w.job).collect()
    }

    /// A request sent straight to the reporter (invalid, or received after the run stopped).
    pub fn reported(&mut self) {
        self.unsettled += 1;
    }

    /// A worker finished a request.
    pub fn finished(&mut self) {
        self.running -= 1;
    }

    /// A worker took this request from the job channel.
    pub fn started(&mut self, receipt: &ReceiptHandle) {
        self.queued.remove(receipt);
    }

    /// The reporter settled this many requests.
    pub fn settled(&mut self, n: usize) {
        self.unsettled -= n;
    }

    /// The reporter settled the request `group` held; when it stays on the
    /// queue, the later ones of the group in hand are returned (their jobs).
    pub fn group_settled(&mut self, group: &str, kept: bool) -> Vec<Job> {
        match self.groups.settled(group, kept) {
            AfterSettled::Free => Vec::new(),
            AfterSettled::ReturnLater => self.release(|w| w.job.group.as_deref() == Some(group)),
        }
    }

    /// How many waiting requests could start now.
    pub fn startable(&self) -> usize {
        self.waiting
            .iter()
            .filter(|w| self.groups.may_start(w.job.group.as_deref()))
            .count()
    }

    /// How many to ask for in the next receive, if one is worth asking for:
    /// room for a batch beside the `workers` running and `workers` waiting,
    /// or less when a worker has nothing to start. `batch` is the most one
    /// receive may return (10, `max_number_of_messages`, what is left of
    /// `--max-messages`).
    pub fn ask_size(&self, workers: usize, batch: usize) -> Option<usize> {
        let room = (2 * workers).saturating_sub(self.waiting.len() + self.running);
        let max = batch.min(room);
        let starving = self.running < workers && self.startable() == 0;
        if max == 0 || (max < batch.min(workers) && !starving) {
            None
        } else {
            Some(max)
        }
    }

    /// Requests in the job channel whose visibility is due for an extension.
    pub fn queued_due(&self, now: Instant, every: Duration) -> Vec<ReceiptHandle> {
        self.queued
            .iter()
            .filter(|(_, at)| now >= **at + every)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Waiting requests whose visibility is due for an extension.
    pub fn waiting_due(&self, now: Instant, every: Duration) -> Vec<ReceiptHandle> {
        self.waiting
            .iter()
            .filter(|w| now >= w.hidden_at + every)
            .map(|w| w.job.message.receipt_handle.clone())
            .collect()
    }

    /// Their visibility was extended at `now`.
    pub fn hidden(&mut self, receipts: &[ReceiptHandle], now: Instant) {
        for r in receipts {
            if let Some(at) = self.queued.get_mut(r) {
                *at = now;
            }
            if let Some(w) = self
                .waiting
                .iter_mut()
                .find(|w| w.job.message.receipt_handle == *r)
            {
                w.hidden_at = now;
            }
        }
    }

    /// When the next visibility extension is due.
    pub fn next_due(&self, every: Duration) -> Option<Instant> {
        self.waiting
            .iter()
            .map(|w| w.hidden_at)
            .chain(self.queued.values().copied())
            .min()
            .map(|at| at + every)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::queue::ReceivedMessage;

    fn job(id: &str, group: Option<&str>) -> Job {
        Job {
            message: ReceivedMessage {
                message_id: id.into(),
                receipt_handle: ReceiptHandle(format!("r-{id}")),
                body: "{}".into(),
                receive_count: 1,
                attributes: BTreeMap::new(),
                message_attributes: BTreeMap::new(),
            },
            request: json!({}),
            context: format!("msg {id}"),
            group: group.map(Into::into),
        }
    }

    fn ids(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.message.message_id.as_str()).collect()
    }

    #[test]
    fn hands_out_oldest_first_up_to_the_limit() {
        let now = Instant::now();
        let mut hand = InHand::default();
        for id in ["m1", "m2", "m3"] {
            hand.receive(job(id, None), now);
        }
        let a = hand.next_to_start(2, true).unwrap();
        let b = hand.next_to_start(2, true).unwrap();
        assert_eq!(ids(&[a, b]), ["m1", "m2"]);
        assert!(hand.next_to_start(2, true).is_none(), "the limit");
        assert_eq!((hand.running(), hand.waiting()), (2, 1));
        hand.finished();
        assert_eq!(
            hand.next_to_start(2, true).unwrap().message.message_id,
            "m3"
        );
        // Settled one by one: idle only when all three are.
        hand.finished();
        hand.finished();
        hand.settled(2);
        assert!(!hand.idle());
        hand.settled(1);
        assert!(hand.idle());
    }

    #[test]
    fn a_busy_fifo_group_is_skipped_not_waited_for() {
        let now = Instant::now();
        let mut hand = InHand::default();
        for (id, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            hand.receive(job(id, Some(group)), now);
        }
        let first = hand.next_to_start(4, false).unwrap();
        let second = hand.next_to_start(4, false).unwrap();
        assert_eq!(ids(&[first, second]), ["a1", "b1"]);
        assert!(hand.next_to_start(4, false).is_none(), "a2 waits for a1");
        assert_eq!(hand.startable(), 0);
        // a1 deleted: a2 may start.
        assert!(hand.group_settled("a", false).is_empty());
        assert_eq!(hand.startable(), 1);
        assert_eq!(
            hand.next_to_start(4, false).unwrap().message.message_id,
            "a2"
        );
    }

    #[test]
    fn a_kept_fifo_request_sends_its_group_back_in_order() {
        let now = Instant::now();
        let mut hand = InHand::default();
        for (id, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a")] {
            hand.receive(job(id, Some(group)), now);
        }
        hand.next_to_start(1, false).unwrap();
        let back = hand.group_settled("a", true);
        assert_eq!(ids(&back), ["a2", "a3"]);
        assert_eq!(hand.waiting(), 1, "b1 stays");
    }

    #[test]
    fn a_job_taken_back_frees_its_worker_and_group() {
        let now = Instant::now();
        let mut hand = InHand::default();
        hand.receive(job("a1", Some("a")), now);
        hand.receive(job("a2", Some("a")), now);
        let a1 = hand.next_to_start(2, true).unwrap();
        hand.take_back(&a1);
        assert_eq!(hand.running(), 0);
        assert!(hand.queued_due(now, Duration::ZERO).is_empty());
        assert_eq!(hand.startable(), 1);
        let released = hand.release(|_| true);
        assert_eq!(ids(&released), ["a2"]);
        // a1's release and a2's are reported: two unsettled.
        hand.settled(2);
        assert!(hand.idle());
    }

    #[test]
    fn receives_are_asked_for_when_a_batch_fits_or_a_worker_starves() {
        let now = Instant::now();
        let mut hand = InHand::default();
        assert_eq!(hand.ask_size(4, 10), Some(8), "room for 2 x workers");
        assert_eq!(hand.ask_size(4, 3), Some(3));
        for i in 0..6 {
            hand.receive(job(&format!("m{i}"), None), now);
        }
        assert_eq!(hand.ask_size(4, 10), None, "room for 2, less than a batch");
        for _ in 0..4 {
            hand.next_to_start(4, false).unwrap();
        }
        assert_eq!(hand.ask_size(4, 10), None, "2 wait, 4 run: full");
        // One worker with a busy group only: it asks for what fits.
        let mut hand = InHand::default();
        hand.receive(job("a1", Some("a")), now);
        hand.receive(job("a2", Some("a")), now);
        hand.next_to_start(4, false).unwrap();
        assert_eq!(hand.ask_size(4, 10), Some(6));
        assert_eq!(InHand::default().ask_size(2, 0), None, "quota used up");
    }

    #[test]
    fn visibility_is_due_a_period_after_it_was_set() {
        let t0 = Instant::now();
        let every = Duration::from_secs(10);
        let mut hand = InHand::default();
        hand.receive(job("w1", None), t0);
        hand.receive(job("q1", None), t0 + Duration::from_secs(5));
        let q1 = hand.next_to_start(1, true).unwrap();
        assert_eq!(q1.message.message_id, "w1");
        assert_eq!(hand.next_due(every), Some(t0 + every));
        assert_eq!(
            hand.queued_due(t0 + every, every),
            [ReceiptHandle("r-w1".into())]
        );
        assert!(hand.waiting_due(t0 + every, every).is_empty());
        assert_eq!(
            hand.waiting_due(t0 + Duration::from_secs(15), every),
            [ReceiptHandle("r-q1".into())]
        );
        hand.hidden(&[ReceiptHandle("r-w1".into())], t0 + every);
        assert_eq!(hand.next_due(every), Some(t0 + Duration::from_secs(15)));
    }
}
