//! The per-client flood limit (spec CONN-7, FLOOD-1): a token bucket for lines and one for
//! bytes, as a pure state machine so that its timing rules are unit-tested without
//! sockets or sleeps.
//!
//! Lines alone do not say what a client costs the others: 200 lines of 1 KiB are 205 kB
//! relayed to every user, 200 lines of "ok" less than 1 kB. So each line also pays its
//! weight in bytes (FLOOD-1), from a budget large enough for a real paste (32 KiB, a
//! full line burst of 200 lines of 160 bytes) and refilled far faster than anyone types.
//!
//! The connection asks [`Bucket::admit`] before handling each line. A line is never
//! dropped: when the bucket is empty the connection stops reading and waits, which pushes
//! back on the client through TCP, and only a client that stays in excess for the whole
//! grace period is cut off.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_proto::Frame;
use chat_proto::limits::MAX_LINE_BYTES;

/// The flood limit's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodLimit {
    /// Lines a client may send in a burst (the bucket's size).
    pub burst: u32,
    /// Lines per second the bucket refills at; `0.0` turns the limit off.
    pub rate: f64,
    /// How long an excess period may last before the client is disconnected.
    pub excess: Duration,
    /// Bytes of lines a client may send in a burst (FLOOD-1).
    pub burst_bytes: u32,
    /// Bytes per second the byte budget refills at; 0 turns the byte budget off
    /// (FLOOD-1).
    pub rate_bytes: u32,
}

impl Default for FloodLimit {
    fn default() -> Self {
        FloodLimit {
            burst: chat_proto::limits::DEFAULT_FLOOD_BURST,
            rate: chat_proto::limits::DEFAULT_FLOOD_RATE,
            excess: chat_proto::limits::DEFAULT_FLOOD_EXCESS,
            burst_bytes: chat_proto::limits::DEFAULT_FLOOD_BURST_BYTES,
            rate_bytes: chat_proto::limits::DEFAULT_FLOOD_RATE_BYTES,
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

    /// True when lines also pay their weight in bytes (FLOOD-1).
    pub fn bytes_enabled(&self) -> bool {
        self.enabled() && self.rate_bytes > 0
    }
}

/// What a frame weighs against the byte budget (FLOOD-1): the bytes of a line before its
/// terminator; a framing error weighs as much as the longest line, since its bytes were
/// read and dropped without being counted.
pub fn weight(frame: &Frame<'_>) -> u32 {
    let bytes = match frame {
        Frame::Line(line) => line.len(),
        Frame::TooLong | Frame::InvalidUtf8 | Frame::InvalidText => MAX_LINE_BYTES,
    };
    u32::try_from(bytes).unwrap_or(u32::MAX)
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

/// The two budgets of FLOOD-1 (lines and bytes) as they refill with time. A
/// connection's [`Bucket`] holds one; so does its address, shared by all of that
/// address's connections (FLOOD-ADDR-1).
/// The limit is kept beside it, not in it (a connection's [`Bucket`] has it already, and
/// every idle connection carries its bucket).
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
    /// The byte budget (FLOOD-1), in bytes.
    bytes: f64,
    last: Instant,
}

/// An address's budget and its limit, shared by its connections (FLOOD-ADDR-1).
pub type SharedBudget = Arc<Mutex<(FloodLimit, Budget)>>;

impl Budget {
    /// A full budget of `limit`.
    pub fn new(limit: FloodLimit, now: Instant) -> Budget {
        Budget {
            tokens: f64::from(limit.burst),
            bytes: f64::from(limit.burst_bytes),
            last: now,
        }
    }

    /// An address's budget: `share` times one connection's `limit`, in lines and bytes.
    pub fn for_address(limit: FloodLimit, share: u32, now: Instant) -> SharedBudget {
        let scaled = FloodLimit {
            burst: limit.burst.saturating_mul(share),
            rate: limit.rate * f64::from(share),
            burst_bytes: limit.burst_bytes.saturating_mul(share),
            rate_bytes: limit.rate_bytes.saturating_mul(share),
            ..limit
        };
        Arc::new(Mutex::new((scaled, Budget::new(scaled, now))))
    }

    fn refill(&mut self, limit: &FloodLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * limit.rate).min(f64::from(limit.burst));
        if limit.bytes_enabled() {
            let burst = f64::from(limit.burst_bytes);
            self.bytes = (self.bytes + elapsed * f64::from(limit.rate_bytes)).min(burst);
        }
    }

    /// What a line of `weight` bytes costs from the byte budget: never more than the
    /// whole budget, so every line gets through once the budget is full.
    fn cost(limit: &FloodLimit, weight: u32) -> f64 {
        if limit.bytes_enabled() {
            f64::from(weight).min(f64::from(limit.burst_bytes))
        } else {
            0.0
        }
    }

    /// Seconds until a line of `weight` bytes can be taken (0 when it can now).
    fn wait(&self, limit: &FloodLimit, weight: u32) -> f64 {
        let for_line = (1.0 - self.tokens).max(0.0) / limit.rate;
        let for_bytes = if limit.bytes_enabled() {
            (Budget::cost(limit, weight) - self.bytes).max(0.0) / f64::from(limit.rate_bytes)
        } else {
            0.0
        };
        for_line.max(for_bytes)
    }

    fn take(&mut self, limit: &FloodLimit, weight: u32) {
        self.tokens -= 1.0;
        self.bytes -= Budget::cost(limit, weight);
    }
}

/// One client's bucket: its own budget, its address's (when the address limit is on),
/// and the excess period.
#[derive(Debug, Clone)]
pub struct Bucket {
    limit: FloodLimit,
    own: Budget,
    /// FLOOD-ADDR-1: the budget this connection shares with its address's others.
    address: Option<SharedBudget>,
    excess_since: Option<Instant>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: FloodLimit, now: Instant) -> Bucket {
        Bucket {
            limit,
            own: Budget::new(limit, now),
            address: None,
            excess_since: None,
        }
    }

    /// Makes every line also pay from `address`, the budget of the connection's address
    /// (FLOOD-ADDR-1).
    pub fn share(&mut self, address: SharedBudget) {
        self.address = Some(address);
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

    /// Decides about one line of `weight` bytes (see [`weight`]). `waited` is true when
    /// this same line was already told to wait: only a line handled without waiting ends
    /// an excess period. A line is taken when its connection's budget and its address's
    /// both hold enough, from both at once.
    pub fn admit(&mut self, now: Instant, waited: bool, weight: u32) -> Admit {
        if !self.limit.enabled() {
            return Admit::Go;
        }
        self.own.refill(&self.limit, now);
        let mut address = self
            .address
            .as_ref()
            .map(|a| a.lock().unwrap_or_else(PoisonError::into_inner));
        let mut wait = self.own.wait(&self.limit, weight);
        if let Some((limit, budget)) = address.as_deref_mut() {
            budget.refill(limit, now);
            wait = wait.max(budget.wait(limit, weight));
        }
        if wait <= 0.0 {
            self.own.take(&self.limit, weight);
            if let Some((limit, budget)) = address.as_deref_mut() {
                budget.take(limit, weight);
            }
            if !waited {
                self.excess_since = None;
            }
            return Admit::Go;
        }
        drop(address);
        let wait = Duration::from_secs_f64(wait.clamp(0.0, 3600.0));
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
            ..FloodLimit::default()
        }
    }

    /// Sends `n` lines of `size` bytes, each as soon as it is admitted; returns how long
    /// it took and how many excess periods began.
    fn send(b: &mut Bucket, now: &mut Instant, n: usize, size: u32) -> (Duration, u32) {
        let start = *now;
        let mut warnings = 0;
        for _ in 0..n {
            let mut waited = false;
            loop {
                match b.admit(*now, waited, size) {
                    Admit::Go => break,
                    Admit::Wait { wait, first } => {
                        warnings += u32::from(first);
                        waited = true;
                        *now += wait;
                    }
                    Admit::Disconnect => panic!("disconnected"),
                }
            }
        }
        (*now - start, warnings)
    }

    /// FLOOD-1 with the defaults: a 200-line paste of 160-byte lines and steady
    /// typing are never slowed; 200 lines of 1 KiB, which the line limit alone let
    /// through at once, now pay for their bytes.
    #[test]
    fn flood_1_defaults_leave_typing_and_pasting_alone() {
        let mut now = Instant::now();
        let mut b = Bucket::new(FloodLimit::default(), now);
        // 200 lines of 160 bytes: within both bursts (32,000 bytes of 32 KiB).
        assert_eq!(send(&mut b, &mut now, 200, 160), (Duration::ZERO, 0));
        // Typing: a 120-byte line every second for ten minutes.
        for _ in 0..600 {
            now += Duration::from_secs(1);
            assert_eq!(send(&mut b, &mut now, 1, 120), (Duration::ZERO, 0));
        }
        let mut now = Instant::now();
        let mut b = Bucket::new(FloodLimit::default(), now);
        let (took, warnings) = send(&mut b, &mut now, 200, 1024);
        // 32 lines of 1 KiB in the burst, the other 168 at 8 KiB/s: 21 s, not 0.
        assert!(
            took >= Duration::from_secs(20) && took <= Duration::from_secs(22),
            "{took:?}"
        );
        assert_eq!(warnings, 1);
    }

    /// FLOOD-1: a line waits until both budgets hold enough; a line never costs more
    /// than the whole byte budget; rate 0 turns the byte budget off.
    #[test]
    fn flood_1_lines_pay_their_weight_in_bytes() {
        let lim = FloodLimit {
            burst: 100,
            rate: 100.0,
            excess: Duration::from_secs(30),
            burst_bytes: 4096,
            rate_bytes: 1024,
        };
        let mut now = Instant::now();
        let mut b = Bucket::new(lim, now);
        assert_eq!(send(&mut b, &mut now, 4, 1024), (Duration::ZERO, 0));
        // The fifth waits a second for 1024 more bytes.
        let (took, warnings) = send(&mut b, &mut now, 1, 1024);
        assert_eq!((took.as_millis(), warnings), (1000, 1));
        // Heavier than the budget: costs the whole budget, and gets through.
        now += Duration::from_secs(10);
        assert_eq!(send(&mut b, &mut now, 1, 100_000), (Duration::ZERO, 0));
        let off = FloodLimit {
            rate_bytes: 0,
            ..lim
        };
        let mut b = Bucket::new(off, now);
        assert_eq!(send(&mut b, &mut now, 50, 1024), (Duration::ZERO, 0));
    }

    #[test]
    fn flood_1_weight_of_frames() {
        assert_eq!(weight(&Frame::Line("")), 0);
        assert_eq!(weight(&Frame::Line("héllo")), 6);
        assert_eq!(weight(&Frame::TooLong), 1024);
        assert_eq!(weight(&Frame::InvalidUtf8), 1024);
    }

    /// Feeds one line: waits (advancing the clock) until admitted. Returns how many
    /// times it had to wait, and whether it was disconnected.
    fn line(b: &mut Bucket, now: &mut Instant, flood_errs: &mut u32) -> (u32, bool) {
        let mut waits = 0;
        loop {
            match b.admit(*now, waits > 0, 0) {
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
