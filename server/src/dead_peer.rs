//! How the server notices a peer that vanished without closing (a laptop gone to sleep,
//! a cable pulled, a Wi-Fi out of range): nothing arrives, not even a FIN or an RST, so
//! only the kernel's timers can tell (CONN-5).
//!
//! Two timers are needed, because each covers the case the other cannot:
//!
//! - **TCP keepalive** (30 s idle, then 3 probes 10 s apart) finds the peer of a quiet
//!   connection, one to which nothing is being sent.
//! - **TCP user timeout** (60 s) finds the peer of a busy one. While data sent to the peer
//!   is unacknowledged, keepalive sends no probes at all, and the retransmissions would
//!   go on for the kernel's `tcp_retries2` (about 15 minutes by default) before giving up:
//!   in a busy chat a vanished user would keep its nickname that long.
//!
//! Both give "about a minute": keepalive's `30 + 3 * 10` is the user timeout's 60. Linux
//! also lets the user timeout stand in for the probe count once probing has begun (the
//! connection is dropped when a probe is due and nothing was received for the user
//! timeout), which with these numbers is the same moment.
//!
//! The spec pins the numbers; they are not command-line flags. [`DeadPeer`] exists so that
//! a test can shorten them and watch a vanished peer leave in seconds
//! (`server/tests/vanish.rs`).

use std::io;
use std::time::Duration;

use chat_proto::limits::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, TCP_USER_TIMEOUT};
use socket2::{SockRef, TcpKeepalive};

/// The timers set on every accepted socket (CONN-5). The default is the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadPeer {
    /// Silence before the first keepalive probe (whole seconds, at least 1: the kernel's
    /// unit).
    pub keepalive_idle: Duration,
    /// Time between probes (whole seconds, at least 1).
    pub keepalive_interval: Duration,
    /// Unanswered probes after which the peer is gone (at least 1).
    pub keepalive_probes: u32,
    /// Longest time sent data may stay unacknowledged (at least 1 ms). `None` leaves the
    /// kernel's default (retransmissions for about 15 minutes): what the server did
    /// before the spec pinned a user timeout, kept so a test can show the difference.
    pub user_timeout: Option<Duration>,
}

impl Default for DeadPeer {
    fn default() -> Self {
        DeadPeer {
            keepalive_idle: KEEPALIVE_IDLE,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_probes: KEEPALIVE_PROBES,
            user_timeout: Some(TCP_USER_TIMEOUT),
        }
    }
}

impl DeadPeer {
    /// Whether the kernel can take these numbers: keepalive times in whole seconds from
    /// 1 to 32,767 and 1 to 127 probes (Linux's ranges), a user timeout of at least 1 ms.
    pub fn is_valid(&self) -> bool {
        let secs = |d: Duration| d.subsec_nanos() == 0 && (1..=32_767).contains(&d.as_secs());
        secs(self.keepalive_idle)
            && secs(self.keepalive_interval)
            && (1..=127).contains(&self.keepalive_probes)
            && self.user_timeout.is_none_or(|t| {
                t >= Duration::from_millis(1) && t.as_millis() <= u128::from(u32::MAX)
            })
    }

    /// Sets keepalive and the user timeout on an accepted socket.
    pub fn apply(&self, sock: &SockRef<'_>) -> io::Result<()> {
        let ka = TcpKeepalive::new()
            .with_time(self.keepalive_idle)
            .with_interval(self.keepalive_interval)
            .with_retries(self.keepalive_probes);
        sock.set_tcp_keepalive(&ka)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        sock.set_tcp_user_timeout(self.user_timeout)?;
        Ok(())
    }
}

/// The reason logged for a user who leaves because reading or writing its socket failed
/// with `kind`, so the operator can tell a peer that vanished from one that reset.
///
/// When keepalive or the user timeout gives up on a peer, Linux reports the last "soft"
/// error it met while trying to reach it, or `ETIMEDOUT` if there was none: an ICMP
/// host or network unreachable on the way, or a local route that drops the traffic
/// (`EINVAL` for a blackhole route, `EACCES` for a prohibit one). On an established
/// connection these errors are only ever reported that way.
pub(crate) fn reason(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::TimedOut => "timed out (no answer from the peer)",
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::PermissionDenied => "timed out (no route to the peer)",
        _ => "connection reset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// CONN-5: the default is the spec's, and it is applied as given.
    #[test]
    fn conn_5_defaults_are_the_specs_and_are_applied() {
        let d = DeadPeer::default();
        assert!(d.is_valid());
        assert_eq!(
            (
                d.keepalive_idle.as_secs(),
                d.keepalive_interval.as_secs(),
                d.keepalive_probes,
                d.user_timeout.map(|t| t.as_secs())
            ),
            (30, 10, 3, Some(60))
        );
        // The user timeout is keepalive's whole span, so both end "about a minute" on.
        assert_eq!(
            d.user_timeout,
            Some(d.keepalive_idle + d.keepalive_interval * d.keepalive_probes)
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let sock = SockRef::from(&accepted);
        d.apply(&sock).unwrap();
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), d.keepalive_idle);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), d.keepalive_interval);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), d.keepalive_probes);
        assert_eq!(sock.tcp_user_timeout().unwrap(), d.user_timeout);
    }

    /// What the kernel reports when it gives up on a vanished peer reads as a time-out in
    /// the log; a reset stays a reset.
    #[test]
    fn conn_5_a_vanished_peer_is_logged_as_timed_out() {
        for errno in [
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
            libc::EINVAL,
            libc::EACCES,
        ] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(reason(e.kind()).starts_with("timed out"), "{e}");
        }
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(reason(reset.kind()), "connection reset");
    }

    #[test]
    fn numbers_the_kernel_cannot_take_are_invalid() {
        let ok = DeadPeer::default();
        for bad in [
            DeadPeer {
                keepalive_idle: Duration::ZERO,
                ..ok
            },
            DeadPeer {
                keepalive_interval: Duration::from_millis(1500),
                ..ok
            },
            DeadPeer {
                keepalive_probes: 0,
                ..ok
            },
            DeadPeer {
                user_timeout: Some(Duration::ZERO),
                ..ok
            },
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
    }
}
