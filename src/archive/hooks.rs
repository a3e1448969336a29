//! Test hooks: ways to make the rare cases of a job happen on demand (a
//! source rewritten while it is copied, a copy corrupted before it is read
//! back, the component walk on a kernel that has `openat2`).
//!
//! Compiled only into test builds (`cfg(test)` or the cargo feature
//! `test-hooks`, which `scripts/run-tests.sh` enables); the binaries of
//! `make static` and `make dist` hold no such code and ignore
//! [`TEST_HOOKS_VAR`].

use std::time::Duration;

use super::beneath::Resolution;

/// Test hooks, comma-separated: `resolve-walk` (resolve source names with
/// the component walk used on kernels without openat2), `slow-copy=MS`
/// (pause MS milliseconds after each 256 KiB copied), `corrupt-copy` (flip a
/// byte of each copy between writing and verifying it), `lock-wait=MS` (wait
/// MS milliseconds at most for another run's lock on the AIP), `no-rehash`
/// (no second hash of a source after its copy: to measure its cost).
pub const TEST_HOOKS_VAR: &str = "SQS_ARCHIVE_TEST_HOOKS";

/// Faults and delays for a job; all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// Pause after each 256 KiB copied, so a test can write to a source
    /// while it is being copied.
    pub pause_per_chunk: Option<Duration>,
    /// Flip a byte of each staged copy after it was written, as a failing
    /// disk might, so the read-back must catch it.
    pub corrupt_copies: bool,
    /// Wait this long for another run's lock on the AIP, instead of
    /// [`super::private::LOCK_WAIT`].
    pub lock_wait: Option<Duration>,
    /// Skip the second hash of the source after its copy, to measure what
    /// it costs.
    pub no_rehash: bool,
}

/// Reads the value of [`TEST_HOOKS_VAR`]: the resolution it asks for (the
/// kernel's unless `resolve-walk`) and the hooks.
pub fn parse_test_hooks(text: &str) -> Result<(Resolution, TestHooks), String> {
    let mut resolution = Resolution::Kernel;
    let mut hooks = TestHooks::default();
    for hook in text.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        match hook.split_once('=') {
            None if hook == "resolve-walk" => resolution = Resolution::Walk,
            None if hook == "corrupt-copy" => hooks.corrupt_copies = true,
            None if hook == "no-rehash" => hooks.no_rehash = true,
            Some(("lock-wait", ms)) => {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("lock-wait={ms:?}: expected milliseconds"))?;
                hooks.lock_wait = Some(Duration::from_millis(ms));
            }
            Some(("slow-copy", ms)) => {
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("slow-copy={ms:?}: expected milliseconds"))?;
                hooks.pause_per_chunk = Some(Duration::from_millis(ms));
            }
            _ => {
                return Err(format!(
                    "unknown test hook {hook:?} (known: resolve-walk, slow-copy=MS, corrupt-copy, lock-wait=MS, no-rehash)"
                ));
            }
        }
    }
    Ok((resolution, hooks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hooks_are_read_and_unknown_ones_refused() {
        assert_eq!(
            parse_test_hooks("").unwrap(),
            (Resolution::Kernel, TestHooks::default())
        );
        let (resolution, hooks) =
            parse_test_hooks("resolve-walk, slow-copy=5,corrupt-copy,lock-wait=7,no-rehash")
                .unwrap();
        assert!(hooks.no_rehash);
        assert_eq!(hooks.lock_wait, Some(Duration::from_millis(7)));
        assert_eq!(resolution, Resolution::Walk);
        assert_eq!(hooks.pause_per_chunk, Some(Duration::from_millis(5)));
        assert!(hooks.corrupt_copies);
        assert!(parse_test_hooks("slow-copy=x").is_err());
        assert!(
            parse_test_hooks("walk")
                .unwrap_err()
                .contains("unknown test hook")
        );
    }
}
