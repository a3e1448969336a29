//! Host-wide handler slots: never more than `workers` handlers at once on a
//! host, however many runs overlap, and no run waiting behind another's
//! long handler.
//!
//! Slot `n` is the file `<lock_file>.slot-<n>` (`n` below `workers`), held
//! with a non-blocking `flock` by the worker thread that may run a handler
//! in it. A run takes the free slots when it starts and starts one worker
//! per slot; a run that finds none free has nothing to do. A worker gives
//! its slot back as soon as it has nothing left to run: when its run stops
//! receiving (`--max-runtime`, `--max-messages`, a signal), its idle workers
//! end at once, and each busy one when its handler ends. So a cron run
//! that stopped receiving at `--max-runtime` keeps only the slots its
//! handlers still use, and the next cron run takes the rest and receives.
//!
//! `lock_file` itself says which runs may overlap: a cron run holds it
//! shared (cron runs overlap, sharing the slots), a `--loop` poller
//! exclusive (one per host; no cron run beside it). Every file is opened
//! the safe way for configured paths ([`crate::files::open_append_regular`]):
//! no symlink followed, no FIFO blocking. A lock ends with its file, or with
//! the process however it ends: nothing stale is left.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How a run holds `lock_file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// A cron (or timer) run: shared, overlapping other cron runs.
    Shared,
    /// A `--loop` poller: alone on the host.
    Exclusive,
}

impl RunMode {
    /// `--loop` runs alone; a drain shares.
    pub fn for_run(keep_polling: bool) -> RunMode {
        if keep_polling {
            RunMode::Exclusive
        } else {
            RunMode::Shared
        }
    }

    /// Why a run of this mode found `lock_file` held, for its log line.
    pub fn held_by(self) -> &'static str {
        match self {
            RunMode::Shared => "a --loop poll_messages holds",
            RunMode::Exclusive => "another poll_messages run holds",
        }
    }
}

/// Takes `lock_file` in `mode`, without waiting; `None` when a run that
/// excludes this one holds it.
pub fn lock_run(lock_file: &Path, mode: RunMode) -> Result<Option<File>> {
    let file = open(lock_file)?;
    let taken = match mode {
        RunMode::Shared => file.try_lock_shared(),
        RunMode::Exclusive => file.try_lock(),
    };
    held(file, taken, lock_file)
}

/// One handler slot held; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    /// The slot's number, for log lines.
    pub index: usize,
    /// The locked file; `None` for a run without host-wide slots (tests).
    _file: Option<File>,
}

impl Slot {
    /// A slot that stands for nothing on the host: for a run driven
    /// in-process (tests), where only the count matters.
    pub fn unlocked(index: usize) -> Slot {
        Slot { index, _file: None }
    }
}

/// `<lock_file>.slot-<n>`.
pub fn slot_path(lock_file: &Path, n: usize) -> PathBuf {
    let mut name = lock_file.as_os_str().to_owned();
    name.push(format!(".slot-{n}"));
    PathBuf::from(name)
}

/// Takes every free slot among the first `workers`, without waiting.
pub fn take_free(lock_file: &Path, workers: usize) -> Result<Vec<Slot>> {
    let mut slots = Vec::new();
    for n in 0..workers {
        let path = slot_path(lock_file, n);
        let file = open(&path)?;
        let taken = file.try_lock();
        if let Some(file) = held(file, taken, &path)? {
            slots.push(Slot {
                index: n,
                _file: Some(file),
            });
        }
    }
    Ok(slots)
}

fn open(path: &Path) -> Result<File> {
    crate::files::open_append_regular(path)
        .map_err(|e| e.into_error("open lock file", "lock_file", path))
}

fn held(
    file: File,
    taken: std::result::Result<(), TryLockError>,
    path: &Path,
) -> Result<Option<File>> {
    match taken {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sqs-archive-slots-{name}-{}-{}",
            std::process::id(),
            crate::random::hex_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("poll.lock")
    }

    #[test]
    fn overlapping_runs_share_the_slots_and_never_hold_more_than_workers() {
        let lock = scratch("share");
        let first = take_free(&lock, 4).unwrap();
        assert_eq!(first.len(), 4);
        // flock conflicts between open files, even in one process: a second
        // run started now finds every slot busy.
        assert!(take_free(&lock, 4).unwrap().is_empty());
        // The first run stopped receiving: three idle workers give theirs
        // back, the one with a long handler keeps its own.
        let mut first = first;
        let busy = first.remove(1);
        drop(first);
        let second = take_free(&lock, 4).unwrap();
        let taken: Vec<usize> = second.iter().map(|s| s.index).collect();
        assert_eq!(taken, [0, 2, 3]);
        assert!(take_free(&lock, 4).unwrap().is_empty());
        drop(busy);
        assert_eq!(take_free(&lock, 4).unwrap().len(), 1);
        assert_eq!(slot_path(&lock, 2).file_name().unwrap(), "poll.lock.slot-2");
        let _ = std::fs::remove_dir_all(lock.parent().unwrap());
    }

    #[test]
    fn a_loop_poller_runs_alone_and_cron_runs_overlap() {
        let lock = scratch("mode");
        assert_eq!(RunMode::for_run(true), RunMode::Exclusive);
        assert_eq!(RunMode::for_run(false), RunMode::Shared);
        let cron = lock_run(&lock, RunMode::Shared).unwrap();
        assert!(cron.is_some());
        assert!(
            lock_run(&lock, RunMode::Shared).unwrap().is_some(),
            "cron runs overlap"
        );
        assert!(
            lock_run(&lock, RunMode::Exclusive).unwrap().is_none(),
            "no loop beside a cron run"
        );
        drop(cron);
        let looping = lock_run(&lock, RunMode::Exclusive).unwrap();
        assert!(looping.is_some());
        assert!(
            lock_run(&lock, RunMode::Exclusive).unwrap().is_none(),
            "one loop"
        );
        assert!(
            lock_run(&lock, RunMode::Shared).unwrap().is_none(),
            "no cron beside a loop"
        );
        let _ = std::fs::remove_dir_all(lock.parent().unwrap());
    }

    #[test]
    fn a_slot_path_that_is_a_fifo_is_refused_not_waited_on() {
        let lock = scratch("fifo");
        let fifo = slot_path(&lock, 0);
        crate::files::make_fifo(&fifo);
        let e = take_free(&lock, 2).unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{e}");
        let _ = std::fs::remove_dir_all(lock.parent().unwrap());
    }
}
