//! Liveness probes for connections that enabled the `ping` capability (spec §13.1,
//! PING-3, PING-4, PING-5): after `--ping-interval` of silence the server sends
//! `PING <n>`; if nothing at all is read for `--ping-timeout` after it, the client is
//! told `ERR ping-timeout` and closed, and the others see it leave (CONN-2).
//!
//! Built like the idle limit ([`crate::idle`]), and as cheap: only connections that
//! enabled `ping` carry one (boxed, so the others pay one pointer); a read only records
//! the time; the one timer per connection is not moved on every read, only re-armed when
//! it fires and finds that input came since. At 10,000 quiet clients that is one timer
//! wake-up per client per interval, with no task of its own and no periodic sweep.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Timer;
use chat_proto::{ErrorCode, ServerMessage, Token};

use crate::idle::human;
use crate::writer::{Line, encode};

/// The probe's timers, shared by every connection (the server's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingTimes {
    /// Silence before a `PING` (PING-3).
    pub interval: Duration,
    /// Silence after a `PING` before the client is taken for dead (PING-4).
    pub timeout: Duration,
}

impl Default for PingTimes {
    fn default() -> Self {
        PingTimes {
            interval: chat_proto::ping::DEFAULT_PING_INTERVAL,
            timeout: chat_proto::ping::DEFAULT_PING_TIMEOUT,
        }
    }
}

/// What a probe's timer found.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Silent for the interval: send this `PING` line.
    Send(Line),
    /// Silent for the timeout after a `PING`: send this `ERR ping-timeout` and close.
    Dead(Line),
}

/// One connection's probe state.
#[derive(Debug)]
pub(crate) struct Liveness {
    times: PingTimes,
    last_input: Instant,
    /// When the last `PING` went out; it is answered once input was read after it.
    probed_at: Option<Instant>,
    /// `PING`s sent so far: the last one's token is this number (PING-2).
    sent: u64,
    /// The timer, and when it is set to fire: an answer moves the next look earlier (from
    /// the end of the timeout to the end of the next interval), so it is re-set then.
    timer: Option<(Timer, Instant)>,
    /// The server stopped reading on purpose (flood hold-back, congested log): the
    /// client may have answered into its socket; the clock starts again (PING-4).
    suspended: bool,
}

impl Liveness {
    pub(crate) fn new(times: PingTimes, now: Instant) -> Liveness {
        Liveness {
            times,
            last_input: now,
            probed_at: None,
            sent: 0,
            timer: None,
            suspended: false,
        }
    }

    /// Input was read (any byte: PING-4).
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_input = now;
    }

    /// The server is not reading from the client for now: that time does not count.
    pub(crate) fn suspend(&mut self) {
        self.suspended = true;
    }

    /// True while a `PING` waits for input.
    fn waiting(&self) -> bool {
        self.probed_at.is_some_and(|at| self.last_input < at)
    }

    /// When the timer must next look: the end of the timeout while a `PING` waits, else
    /// the end of the interval.
    fn due(&self) -> Instant {
        match self.probed_at {
            Some(at) if self.waiting() => at + self.times.timeout,
            _ => self.last_input + self.times.interval,
        }
    }

    /// Ready with what to do once the interval or the timeout ran out; registers a
    /// wake-up otherwise. Call it only while waiting for the socket of a chatting
    /// connection, and again after it returned [`Probe::Send`] (to arm the timeout).
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Probe> {
        if std::mem::take(&mut self.suspended) {
            let now = Instant::now();
            self.touch(now);
        }
        loop {
            let due = self.due();
            let waiting = self.waiting();
            let (timer, at) = self.timer.get_or_insert_with(|| (Timer::at(due), due));
            if due < *at {
                timer.set_at(due);
                *at = due;
            }
            if Pin::new(&mut *timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if now < due {
                // Input came after the timer was set: wait for the rest.
                timer.set_at(due);
                *at = due;
                continue;
            }
            if waiting {
                return Poll::Ready(Probe::Dead(self.dead_line()));
            }
            self.sent += 1;
            self.probed_at = Some(now);
            timer.set_at(now + self.times.timeout);
            *at = now + self.times.timeout;
            let token = Token::numbered(self.sent);
            return Poll::Ready(Probe::Send(encode(&ServerMessage::Ping(token))));
        }
    }

    /// PING-5: true when `token` is the last `PING`'s, answered or not.
    pub(crate) fn answers(&self, token: &Token) -> bool {
        self.sent > 0 && token.as_str() == self.sent.to_string()
    }

    /// `ERR ping-timeout`, stating both times (PING-4).
    fn dead_line(&self) -> Line {
        encode(&ServerMessage::error(
            ErrorCode::PingTimeout,
            &format!(
                "No answer to PING within {} (sent after {} of silence); the connection is taken for dead; goodbye",
                human(self.times.timeout),
                human(self.times.interval)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(ms: u64) -> PingTimes {
        PingTimes {
            interval: Duration::from_millis(ms),
            timeout: Duration::from_millis(ms),
        }
    }

    fn text(line: &Line) -> String {
        String::from_utf8(line.to_vec()).unwrap()
    }

    /// PING-3, PING-4, PING-5: silence sends `PING 1`; input answers it; more silence
    /// sends `PING 2`; silence after that is death, with a text that states both times.
    #[test]
    fn ping_4_probe_then_timeout() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let long_ago = Instant::now() - Duration::from_secs(10);
        let mut l = Liveness::new(times(1), long_ago);
        let Poll::Ready(Probe::Send(line)) = l.poll_due(&mut cx) else {
            panic!("no probe")
        };
        assert_eq!(text(&line), "PING 1\n");
        assert!(l.answers(&Token::new("1").unwrap()));
        assert!(!l.answers(&Token::new("2").unwrap()));
        // Any input answers it; the interval starts again from there.
        l.touch(Instant::now());
        assert!(!l.waiting());
        std::thread::sleep(Duration::from_millis(5));
        let Poll::Ready(Probe::Send(line)) = l.poll_due(&mut cx) else {
            panic!("no second probe")
        };
        assert_eq!(text(&line), "PING 2\n");
        std::thread::sleep(Duration::from_millis(5));
        let Poll::Ready(Probe::Dead(line)) = l.poll_due(&mut cx) else {
            panic!("not dead")
        };
        assert!(
            text(&line).starts_with("ERR ping-timeout No answer to PING within 1 ms"),
            "{}",
            text(&line)
        );
    }

    /// PING-4: a quiet connection is left alone until the interval; time the server
    /// spent not reading (suspended) does not count.
    #[test]
    fn ping_4_quiet_within_interval_and_suspended_time() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut l = Liveness::new(PingTimes::default(), Instant::now());
        assert!(l.poll_due(&mut cx).is_pending());
        assert!(!l.answers(&Token::new("0").unwrap()), "no PING sent yet");
        let mut l = Liveness::new(PingTimes::default(), Instant::now() - 3 * l.times.interval);
        l.suspend();
        assert!(l.poll_due(&mut cx).is_pending());
    }
}
