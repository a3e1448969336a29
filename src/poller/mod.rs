//! `poll_messages`: receive archive requests, run one handler per request on
//! a fixed pool of worker threads, report each outcome to the completion
//! queue, then delete the request.
//!
//! Threads, all joined before [`Poller::run`] returns:
//! - the receiver ([`receiver`], the calling thread) holds what was received
//!   ([`in_hand`], pure) and hands it to idle workers, asking a receive
//!   thread for the next batch before the workers run out ([`pace`], pure);
//!   FIFO groups run one request at a time, in order ([`groups`], pure);
//! - `workers` worker threads ([`worker`]) each run one handler at a time on
//!   the [`crate::subprocess`] runner ([`supervise`] adds the heartbeat,
//!   shutdown and stderr logging), and turn its ending into an
//!   [`outcome::Outcome`] (pure: [`outcome`]);
//! - the reporter ([`reporter`]) settles outcomes in batches
//!   ([`reporter::settle`], on a client, unit-tested with faults):
//!   completions first, and only for those the completion queue accepted,
//!   the request's deletion;
//! - the signal thread feeding [`Shutdown`].
//!
//! Each worker holds a host-wide handler slot ([`slots`]) and gives it back
//! as soon as it has nothing left to run, so overlapping runs never run
//! more than `workers` handlers on a host and none waits behind another's
//! long handler.
//!
//! [`setup`] resolves a [`Poller`] from the settings; [`run`] starts the
//! threads; [`work`] holds what travels between them. This file only
//! declares and re-exports: no module below imports from it.
//!
//! [`Summary`] counts what happened; [`Summary::counts`] is the snapshot a
//! metrics writer reads.

#[cfg(test)]
mod contract;
pub mod groups;
pub mod in_hand;
pub mod outcome;
pub mod pace;
pub mod receiver;
pub mod reporter;
pub mod run;
pub mod setup;
pub mod shutdown;
pub mod slots;
pub mod summary;
pub mod supervise;
pub mod work;
pub mod worker;

pub use self::setup::{PollOptions, Poller, redrive_check};
pub use self::shutdown::Shutdown;
pub use self::summary::{Counts, Summary};
