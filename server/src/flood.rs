//! The per-client flood limit (spec CONN-7): a token bucket, as a pure state machine so
//! that its timing rules are unit-tested without sockets or sleeps.
//!
//! The connection asks [`Bucket::admit`] before handling each line. A line is never
//! dropped: when the bucket is empty the connection stops reading and waits, which pushes
//! back on the client through TCP, and only a client that stays in excess for the whole
//! grace period is cut off.

use std::time::{Duration, Instant};

/// The flood limit's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodLimit {
    /// Lines a client may send in a burst (the bucket's size).
    pub burst: u32,
    /// Lines per second the bucket refills at; `0.0` turns the limit off.
    pub rate: f64,
    /// How long an excess period may last before the client is disconnected.
    pub excess: Duration,
}

impl Default for FloodLimit {
    fn default() -> Self {
        FloodLimit {
            burst: chat_proto::limits::DEFAULT_FLOOD_BURST,
            rate: chat_proto::limits::DEFAULT_FLOOD_RATE,
            excess: chat_proto::limits::DEFAULT_FLOOD_EXCESS,
        }
    }
}

impl FloodLimit {
    /// No limit at all (benchmarks).
    pub fn off() -> Self {
        FloodLimit {
            rate: 0.0,
            ..FloodLimit::default()
        }
    }

    /// True when the limit applies.
    pub fn enabled(&self) -> bool {
        self.rate > 0.0 && self.rate.is_finite() && self.burst > 0
    }
}

/// What to do with the line at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Handle it now.
    Go,
    /// Stop reading for this long, then ask again. `first` is true at the start of an
    /// excess period: send `ERR flood` once.
    Wait {
        /// How long until the bucket holds a token.
        wait: Duration,
        /// The excess period starts with this line.
        first: bool,
    },
    /// The excess period outlasted the grace time: send `ERR excess-flood` and close.
    Disconnect,
}

/// One client's bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    limit: FloodLimit,
    tokens: f64,
    last: Instant,
    excess_since: Option<Instant>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: FloodLimit, now: Instant) -> Bucket {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            last: now,
            excess_since: None,
        }
    }

    /// True when the limit applies; when it does not, nothing needs asking (no clock
    /// reading per line on the hot path).
    pub fn limited(&self) -> bool {
        self.limit.enabled()
    }

    /// True while an excess period is under way.
    pub fn in_excess(&self) -> bool {
        self.excess_since.is_some()
    }

    /// Decides about one line. `waited` is true when this same line was already told to
    /// wait: only a line handled without waiting ends an excess period.
    pub fn admit(&mut self, now: Instant, waited: bool) -> Admit {
        if !self.limit.enabled() {
            return Admit::Go;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            if !waited {
                self.excess_since = None;
            }
            return Admit::Go;
        }
        let wait =
            Duration::from_secs_f64(((1.0 - self.tokens) / self.limit.rate).clamp(0.0, 3600.0));
        match self.excess_since {
            None => {
                self.excess_since = Some(now);
                Admit::Wait { wait, first: true }
            }
            Some(since) if now.saturating_duration_since(since) >= self.limit.excess => {
                Admit::Disconnect
            }
            Some(_) => Admit::Wait { wait, first: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(burst: u32, rate: f64, excess_s: u64) -> FloodLimit {
        FloodLimit {
            burst,
            rate,
            excess: Duration::from_secs(excess_s),
        }
    }

    /// Feeds one line: waits (advancing the clock) until admitted. Returns how many
    /// times it had to wait, and whether it was disconnected.
    fn line(b: &mut Bucket, now: &mut Instant, flood_errs: &mut u32) -> (u32, bool) {
        let mut waits = 0;
        loop {
            match b.admit(*now, waits > 0) {
                Admit::Go => return (waits, false),
                Admit::Wait { wait, first } => {
                    if first {
                        *flood_errs += 1;
                    }
                    waits += 1;
                    *now += wait;
                }
                Admit::Disconnect => return (waits, true),
            }
        }
    }

    /// CONN-7: the bucket is full when the connection is accepted (the handshake takes
    /// no token), and never holds more than the burst, however long the handshake took.
    #[test]
    fn conn_7_bucket_full_at_accept() {
        let accept = Instant::now();
        let mut b = Bucket::new(limit(3, 1.0, 30), accept);
        let mut now = accept + Duration::from_secs(20);
        let mut errs = 0;
        for _ in 0..3 {
            assert_eq!(line(&mut b, &mut now, &mut errs), (0, false));
        }
        assert_eq!(line(&mut b, &mut now, &mut errs), (1, false));
        assert_eq!(errs, 1);
    }

    #[test]
    fn conn_7_burst_passes_without_waiting() {
        let mut now = Instant::now();
        let mut b = Bucket::new(limit(10, 5.0, 30), now);
        let mut errs = 0;
        for _ in 0..10 {
            assert_eq!(line(&mut b, &mut now, &mut errs), (0, false));
        }
        assert_eq!(errs, 0);
    }

    #[test]
    fn conn_7_excess_waits_never_drops_and_warns_once() {
        let start = Instant::now();
        let mut now = start;
        let mut b = Bucket::new(limit(10, 5.0, 30), now);
        let mut errs = 0;
        for _ in 0..60 {
            let (_, cut) = line(&mut b, &mut now, &mut errs);
            assert!(!cut);
        }
        // 10 in the burst, 50 more at 5/s: about 10 s of pushing back, one warning.
        let took = now - start;
        assert!(
            took >= Duration::from_millis(9_900) && took <= Duration::from_millis(10_100),
            "{took:?}"
        );
        assert_eq!(errs, 1);
        assert!(b.in_excess());
    }

    #[test]
    fn conn_7_a_pause_ends_the_excess_period() {
        let mut now = Instant::now();
        let mut b = Bucket::new(limit(2, 10.0, 30), now);
        let mut errs = 0;
        for _ in 0..5 {
            line(&mut b, &mut now, &mut errs);
        }
        assert_eq!(errs, 1);
        now += Duration::from_secs(1);
        line(&mut b, &mut now, &mut errs);
        assert!(!b.in_excess());
        for _ in 0..5 {
            line(&mut b, &mut now, &mut errs);
        }
        assert_eq!(errs, 2, "a new excess period warns again");
    }

    #[test]
    fn conn_7_sustained_excess_disconnects() {
        let start = Instant::now();
        let mut now = start;
        let mut b = Bucket::new(limit(5, 10.0, 3), now);
        let mut errs = 0;
        let mut cut = false;
        for _ in 0..1000 {
            if line(&mut b, &mut now, &mut errs).1 {
                cut = true;
                break;
            }
        }
        assert!(cut);
        let took = now - start;
        assert!(
            took >= Duration::from_secs(3) && took <= Duration::from_millis(3_300),
            "{took:?}"
        );
    }

    #[test]
    fn conn_7_off_never_waits() {
        let mut now = Instant::now();
        let mut b = Bucket::new(FloodLimit::off(), now);
        let mut errs = 0;
        for _ in 0..10_000 {
            assert_eq!(line(&mut b, &mut now, &mut errs), (0, false));
        }
    }
}
