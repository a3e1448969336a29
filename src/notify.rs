//! The systemd notify protocol (`sd_notify(3)`), without libsystemd: one
//! datagram of `KEY=value` lines to the socket `$NOTIFY_SOCKET` names, a path
//! or an abstract socket (`@name`). A `Type=notify` unit waits for
//! `READY=1`, shows `STATUS=`, is told `STOPPING=1` and, with `WatchdogSec=`,
//! expects `WATCHDOG=1` at least every `$WATCHDOG_USEC`. Without
//! `NOTIFY_SOCKET` (cron, a terminal, a oneshot unit) every call does nothing.
//!
//! Sending never fails a run: a lost notification is logged at debug level,
//! and systemd's own timeouts are the judge.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use crate::environment::Env;

/// Where notifications go; `None` when nobody listens.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `env`.
    pub fn from_env(env: &Env) -> Notifier {
        let target = env.get("NOTIFY_SOCKET").and_then(|name| {
            let addr = socket_addr(name)?;
            match UnixDatagram::unbound() {
                Ok(socket) => Some((socket, addr)),
                Err(e) => {
                    log::debug!("NOTIFY_SOCKET: no datagram socket: {e}");
                    None
                }
            }
        });
        let watchdog = watchdog_interval(
            env.get("WATCHDOG_USEC"),
            env.get("WATCHDOG_PID"),
            std::process::id(),
        );
        Notifier {
            target,
            watchdog: watchdog.filter(|_| env.get("NOTIFY_SOCKET").is_some()),
        }
    }

    /// A notifier that sends nothing.
    pub fn none() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...`,
    /// several separated by newlines). Does nothing without a socket.
    pub fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            log::debug!("NOTIFY_SOCKET: {state:?} not sent: {e}");
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when systemd
    /// asked for pings from this process.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// `NOTIFY_SOCKET`'s value as an address: an absolute path, or `@name` for
/// an abstract socket. Anything else is ignored, as libsystemd does.
fn socket_addr(name: &str) -> Option<SocketAddr> {
    let addr = if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)
    } else {
        log::debug!("NOTIFY_SOCKET {name:?} is neither a path nor @abstract: ignored");
        return None;
    };
    addr.map_err(|e| log::debug!("NOTIFY_SOCKET {name:?}: {e}"))
        .ok()
}

/// Half of `WATCHDOG_USEC`, if set, positive and meant for `pid`
/// (`WATCHDOG_PID` absent or equal to it).
pub fn watchdog_interval(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(for_pid) = for_pid
        && for_pid.parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|&n| n > 0)?;
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec_for_this_pid() {
        let half = Some(Duration::from_millis(200));
        assert_eq!(watchdog_interval(Some("400000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn sends_to_a_path_socket_and_ignores_relative_names() {
        let dir = std::env::temp_dir().join(format!("sqs-archive-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let env = Env::from_pairs([
            ("NOTIFY_SOCKET", path.display().to_string()),
            ("WATCHDOG_USEC", "1000000".to_string()),
        ]);
        let notifier = Notifier::from_env(&env);
        assert_eq!(
            notifier.watchdog_interval(),
            Some(Duration::from_millis(500))
        );
        notifier.send("READY=1\nSTATUS=polling");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=polling");
        std::fs::remove_dir_all(&dir).unwrap();

        let relative = Notifier::from_env(&Env::from_pairs([("NOTIFY_SOCKET", "notify.sock")]));
        assert!(relative.target.is_none());
        // No socket, no watchdog: a unit without NOTIFY_SOCKET is not watched.
        let unset = Notifier::from_env(&Env::from_pairs([("WATCHDOG_USEC", "1000000")]));
        assert!(unset.target.is_none() && unset.watchdog_interval().is_none());
        unset.send("READY=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sqs-archive-notify-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier =
            Notifier::from_env(&Env::from_pairs([("NOTIFY_SOCKET", format!("@{name}"))]));
        notifier.send("STOPPING=1");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
