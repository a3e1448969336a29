//! Cheap randomness for jitter and ids; not for secrets.
//!
//! A per-thread xorshift generator seeded from the clock, the process id and
//! a counter, so two processes started in the same instant still differ.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEEDS: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    splitmix(nanos ^ (u64::from(std::process::id()) << 32) ^ n) | 1
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pseudo-random number.
pub fn u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// 32 hex digits, for message ids and receipt handles.
pub fn hex_id() -> String {
    format!("{:016x}{:016x}", u64(), u64())
}
