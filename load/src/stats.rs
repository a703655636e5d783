//! What receivers count, and the run's report.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Per-receiver bookkeeping of every (sender, seq) pair: a bit per message, so a
/// duplicate, a reordering and a loss are each told apart exactly.
pub struct Tally {
    seen: Vec<Vec<u64>>,
    highest: Vec<Option<u64>>,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub corrupt: u64,
    pub wrong_sender: u64,
    pub latency_us: Histogram<u64>,
}

impl Tally {
    // The histogram's bounds are constants within hdrhistogram's documented limits, so
    // its constructor cannot fail here; nothing a peer sends reaches this `expect`.
    #[allow(clippy::expect_used)]
    pub fn new(senders: usize, messages: u64) -> Tally {
        let words = messages.div_ceil(64) as usize;
        Tally {
            seen: vec![vec![0; words]; senders],
            highest: vec![None; senders],
            unique: 0,
            duplicates: 0,
            reordered: 0,
            corrupt: 0,
            wrong_sender: 0,
            // 1 µs .. 10 min, 3 significant figures.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant, valid histogram bounds"),
        }
    }

    /// Records one intact payload; `latency` is now minus its send time.
    pub fn record(&mut self, sender: u32, seq: u64, latency: Duration) {
        let s = sender as usize;
        let (Some(bits), Some(highest)) = (self.seen.get_mut(s), self.highest.get_mut(s)) else {
            self.corrupt += 1;
            return;
        };
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let Some(w) = bits.get_mut(word) else {
            self.corrupt += 1;
            return;
        };
        if *w & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        *w |= 1 << bit;
        self.unique += 1;
        match highest {
            Some(h) if seq < *h => self.reordered += 1,
            _ => *highest = Some(seq),
        }
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency_us.record(us.min(600_000_000));
    }
}

/// The outcome of one run.
pub struct Report {
    pub dialect: &'static str,
    pub clients: usize,
    pub senders: usize,
    pub messages_per_sender: u64,
    pub size: usize,
    pub rate: Option<f64>,
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub corrupt: u64,
    pub wrong_sender: u64,
    pub elapsed: Duration,
    pub timed_out: bool,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// What the server spent over the send window, when its pid was given.
    pub server: Option<crate::server::Spent>,
    /// What the other processes given (`--server-pid` after the first) spent over the
    /// same window, with their pids.
    pub others: Vec<(u32, crate::server::Spent)>,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    pub fn deliveries_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.delivered as f64 / secs
        } else {
            0.0
        }
    }

    /// Server CPU time per delivery, in ns.
    pub fn server_cpu_ns_per_delivery(&self) -> Option<f64> {
        let s = self.server?;
        (self.delivered > 0).then(|| s.cpu.as_nanos() as f64 / self.delivered as f64)
    }

    /// Server write(2)-family calls per delivery.
    pub fn server_writes_per_delivery(&self) -> Option<f64> {
        let w = self.server?.write_calls?;
        (self.delivered > 0).then(|| w as f64 / self.delivered as f64)
    }

    pub fn clean(&self) -> bool {
        self.lost() == 0
            && self.duplicates == 0
            && self.reordered == 0
            && self.corrupt == 0
            && self.wrong_sender == 0
    }

    /// One JSON object, for scripts.
    pub fn json(&self) -> String {
        format!(
            "{{\"dialect\":\"{}\",\"clients\":{},\"senders\":{},\"messages_per_sender\":{},\"size\":{},\"rate\":{},\"expected\":{},\"delivered\":{},\"lost\":{},\"duplicates\":{},\"reordered\":{},\"corrupt\":{},\"wrong_sender\":{},\"elapsed_s\":{:.6},\"deliveries_per_s\":{:.0},\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"timed_out\":{},\"server_cpu_s\":{},\"server_cpu_ns_per_delivery\":{},\"server_write_calls\":{},\"server_writes_per_delivery\":{},\"window_start_unix\":{},\"window_end_unix\":{},\"other_cpu_s\":{{{}}}}}",
            self.dialect,
            self.clients,
            self.senders,
            self.messages_per_sender,
            self.size,
            self.rate.map_or("null".to_string(), |r| format!("{r}")),
            self.expected,
            self.delivered,
            self.lost(),
            self.duplicates,
            self.reordered,
            self.corrupt,
            self.wrong_sender,
            self.elapsed.as_secs_f64(),
            self.deliveries_per_sec(),
            self.p50_us,
            self.p99_us,
            self.max_us,
            self.timed_out,
            opt(self.server.map(|s| s.cpu.as_secs_f64())),
            opt(self.server_cpu_ns_per_delivery()),
            opt(self.server.and_then(|s| s.write_calls).map(|w| w as f64)),
            opt(self.server_writes_per_delivery()),
            opt(self.server.map(|s| s.window_unix.0)),
            opt(self.server.map(|s| s.window_unix.1)),
            self.others
                .iter()
                .map(|(pid, s)| format!("\"{pid}\":{}", s.cpu.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}

/// A JSON number, or `null`.
fn opt(v: Option<f64>) -> String {
    v.map_or("null".to_string(), |v| format!("{v:.4}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dialect {}  clients {}  senders {}  messages/sender {}  size {} B  rate {}",
            self.dialect,
            self.clients,
            self.senders,
            self.messages_per_sender,
            self.size,
            self.rate
                .map_or("unpaced".to_string(), |r| format!("{r} msg/s"))
        )?;
        writeln!(
            f,
            "delivered {} of {} in {:.3} s: {:.0} deliveries/s{}",
            self.delivered,
            self.expected,
            self.elapsed.as_secs_f64(),
            self.deliveries_per_sec(),
            if self.timed_out { "  (TIMED OUT)" } else { "" }
        )?;
        writeln!(
            f,
            "latency p50 {} us  p99 {} us  max {} us",
            self.p50_us, self.p99_us, self.max_us
        )?;
        if let Some(s) = self.server {
            writeln!(
                f,
                "server over the send window: CPU {:.3} s = {:.1} ns per delivery{}",
                s.cpu.as_secs_f64(),
                self.server_cpu_ns_per_delivery().unwrap_or(0.0),
                match (s.write_calls, self.server_writes_per_delivery()) {
                    (Some(w), Some(per)) => format!("; {w} write calls = {per:.4} per delivery"),
                    _ => String::new(),
                }
            )?;
        }
        for (pid, s) in &self.others {
            writeln!(
                f,
                "process {pid} over the send window: CPU {:.3} s",
                s.cpu.as_secs_f64()
            )?;
        }
        write!(
            f,
            "lost {}  duplicate {}  reordered {}  corrupt {}  wrong sender {}",
            self.lost(),
            self.duplicates,
            self.reordered,
            self.corrupt,
            self.wrong_sender
        )
    }
}
