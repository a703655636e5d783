//! What the server process spent over a load run's send window, read from `/proc`: CPU
//! time (utime + stime of all its threads) and write system calls. On 2 shared cores the
//! load tool caps deliveries/s; server CPU per delivery does not hit that ceiling, so it
//! is the figure that compares servers.

use std::fs;
use std::time::Duration;

/// A reading of one process's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// `syscw` of `/proc/PID/io`: write(2)-family calls (write, writev, pwrite...). The
    /// send(2) family (send, sendto, sendmsg) is not in this counter.
    pub write_calls: Option<u64>,
    /// When it was read, as a UNIX time in seconds.
    pub at_unix: f64,
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 on Linux).
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

impl Usage {
    /// Reads the counters of process `pid`; `None` when it is not readable.
    pub fn read(pid: u32) -> Option<Usage> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces; the fields after its `)` do not.
        let rest = stat.get(stat.rfind(')')? + 1..)?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after `)`.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let write_calls = fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("syscw:"))
                    .and_then(|v| v.trim().parse().ok())
            });
        let at_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Some(Usage {
            cpu_ticks: utime + stime,
            write_calls,
            at_unix,
        })
    }

    /// What was spent between `self` and the later reading `end`.
    pub fn until(&self, end: &Usage) -> Spent {
        let ticks = end.cpu_ticks.saturating_sub(self.cpu_ticks);
        Spent {
            window_unix: (self.at_unix, end.at_unix),
            cpu: Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / ticks_per_second()),
            write_calls: match (self.write_calls, end.write_calls) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        }
    }
}

/// Server resources spent over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    /// The window, as UNIX times in seconds (to line up other tools' counters).
    pub window_unix: (f64, f64),
    /// CPU time (user + system), at clock-tick resolution (10 ms).
    pub cpu: Duration,
    /// write(2)-family calls, when readable.
    pub write_calls: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_counters() {
        let me = std::process::id();
        let a = Usage::read(me).unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let b = Usage::read(me).unwrap();
        assert!(b.cpu_ticks >= a.cpu_ticks);
        let spent = a.until(&b);
        assert!(spent.cpu <= Duration::from_secs(1));
    }
}
