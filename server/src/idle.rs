//! The idle limit for joined users (spec IDLE-1, `--idle-timeout`, off by default): a
//! chatting connection from which nothing has been read for that long is told why and
//! closed, freeing its nickname and its places under `--max-clients` and
//! `--max-per-address`.
//!
//! Off by default because a quiet `nc` user is not a fault; a vanished peer is found by
//! TCP keepalive (CONN-5) instead. For servers that want idle places back.
//!
//! Cheap on the hot path: a read only records the time; the timer is not moved on every
//! read. When it fires, it checks the last read and, if input came since, waits again for
//! the rest of the limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use chat_proto::{ErrorCode, ServerMessage};

use crate::writer::{Line, encode};

/// Time since the last input, against the limit.
#[derive(Debug)]
pub(crate) struct Idle {
    limit: Duration,
    last_input: Instant,
    timer: Option<Timer>,
    /// The server stopped reading on purpose (flood hold-back, congested log): the idle
    /// time starts again when it next waits for the socket.
    suspended: bool,
}

impl Idle {
    /// `None` when there is no limit.
    pub(crate) fn new(limit: Option<Duration>, now: Instant) -> Option<Idle> {
        limit.map(|limit| Idle {
            limit,
            last_input: now,
            timer: None,
            suspended: false,
        })
    }

    /// Input was read.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_input = now;
    }

    /// When the limit runs out unless more input comes.
    pub(crate) fn due(&self) -> Instant {
        self.last_input + self.limit
    }

    /// The server is not reading from the client for now: that time is not idle time.
    pub(crate) fn suspend(&mut self) {
        self.suspended = true;
    }

    /// Ready once nothing has been read for the limit; registers a wake-up otherwise.
    /// Call it only while waiting for the socket.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::take(&mut self.suspended) {
            self.touch(Instant::now());
        }
        loop {
            let due = self.due();
            let timer = self.timer.get_or_insert_with(|| Timer::at(due));
            if Pin::new(&mut *timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            // Input came after the timer was set: wait for the rest of the limit.
            timer.set_at(due);
        }
    }

    /// `ERR idle-timeout`, saying how long the limit is.
    pub(crate) fn line(&self) -> Line {
        encode(&ServerMessage::error(
            ErrorCode::IdleTimeout,
            &format!(
                "Nothing received from you for {}, the server's idle limit; goodbye",
                human(self.limit)
            ),
        ))
    }
}

/// `10 minutes`, `90 seconds`, `250 ms`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        format!("{} ms", d.as_millis())
    } else if secs % 60 == 0 {
        let m = secs / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_1_limit_in_words() {
        assert_eq!(human(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human(Duration::from_secs(60)), "1 minute");
        assert_eq!(human(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human(Duration::from_secs(1)), "1 second");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
        let idle = Idle::new(Some(Duration::from_secs(300)), Instant::now()).unwrap();
        let line = String::from_utf8(idle.line().to_vec()).unwrap();
        assert!(line.starts_with("ERR idle-timeout Nothing received from you for 5 minutes"));
        assert!(Idle::new(None, Instant::now()).is_none());
    }

    /// IDLE-1: input moves the deadline; a deadline already past is ready at once.
    #[test]
    fn idle_1_touch_moves_the_deadline() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let start = Instant::now();
        let limit = Duration::from_secs(60);
        let mut idle = Idle::new(Some(limit), start).unwrap();
        assert_eq!(idle.due(), start + limit);
        assert!(idle.poll_expired(&mut cx).is_pending());
        let later = start + Duration::from_secs(30);
        idle.touch(later);
        assert_eq!(idle.due(), later + limit);
        let long_ago = Instant::now() - Duration::from_secs(1);
        let mut idle = Idle::new(Some(Duration::from_millis(1)), long_ago).unwrap();
        assert!(idle.poll_expired(&mut cx).is_ready());
        // Time the server spent not reading (suspended) is not idle time.
        let mut idle = Idle::new(Some(limit), Instant::now() - 2 * limit).unwrap();
        idle.suspend();
        assert!(idle.poll_expired(&mut cx).is_pending());
        assert!(idle.due() > Instant::now() + limit / 2);
    }
}
