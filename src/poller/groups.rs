//! FIFO group ordering in the poller's hand: two requests of one
//! `MessageGroupId` never run at once, and a later one never overtakes an
//! earlier one that stays on the queue. Pure bookkeeping; no I/O.

use std::collections::HashSet;

/// The groups with a request handed out and not yet settled.
#[derive(Debug, Default)]
pub struct Groups {
    busy: HashSet<String>,
}

/// What follows from an earlier request of a group being settled.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterSettled {
    /// The group may run its next request.
    Free,
    /// The earlier request stays on the queue: the later ones in hand must
    /// go back too, so the queue hands them out again in order.
    ReturnLater,
}

impl Groups {
    /// True when a request of `group` (none: not FIFO) may start now.
    pub fn may_start(&self, group: Option<&str>) -> bool {
        group.is_none_or(|g| !self.busy.contains(g))
    }

    /// A request of `group` was handed out.
    pub fn hold(&mut self, group: Option<&str>) {
        if let Some(g) = group {
            self.busy.insert(g.to_string());
        }
    }

    /// A request of `group` was taken back before it started.
    pub fn free(&mut self, group: Option<&str>) {
        if let Some(g) = group {
            self.busy.remove(g);
        }
    }

    /// The request `group` held was settled; `kept` when it stays on the queue.
    pub fn settled(&mut self, group: &str, kept: bool) -> AfterSettled {
        self.busy.remove(group);
        if kept {
            AfterSettled::ReturnLater
        } else {
            AfterSettled::Free
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_group_at_a_time() {
        let mut groups = Groups::default();
        assert!(groups.may_start(Some("a")) && groups.may_start(None));
        groups.hold(Some("a"));
        groups.hold(None);
        assert!(!groups.may_start(Some("a")));
        assert!(groups.may_start(Some("b")) && groups.may_start(None));
        assert_eq!(groups.settled("a", false), AfterSettled::Free);
        assert!(groups.may_start(Some("a")));
        groups.hold(Some("a"));
        assert_eq!(groups.settled("a", true), AfterSettled::ReturnLater);
        assert!(groups.may_start(Some("a")));
        groups.hold(Some("b"));
        groups.free(Some("b"));
        assert!(groups.may_start(Some("b")));
    }
}
