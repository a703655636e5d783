//! The server's settings: one plain struct that the command line (`main.rs`), the tests,
//! the benches and the conformance harness all fill in the same way.
//!
//! Defaults are the spec's (§8) so that `Config::default()` is a conforming server on
//! the safe loopback address.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chat_proto::limits::{
    DEFAULT_HANDSHAKE_ATTEMPTS, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CLIENTS, DEFAULT_PORT,
    DEFAULT_SENDQ_BYTES, MAX_LINE_BYTES, MAX_TAGGED_SERVER_LINE_BYTES,
};
use thiserror::Error;

pub use crate::flood::FloodLimit;
pub use crate::per_address::AddressLimits;

/// The default `--max-lag`.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(30);

/// Which dialect of the protocol connections speak.
///
/// The profile only changes the handshake and how a chat line's own prefix is read; its
/// hooks are in `compat.rs`, so nothing else has to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// spec/PROTOCOL.md, version 1.
    #[default]
    Standard,
    /// The seed compatibility profile (spec Appendix B, `--compat seed`): the original,
    /// unchanged Python client works, and clients of the core protocol still do.
    Seed,
}

/// Everything a running server needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (FRAME-1: port 9090 unless configured). IPv6 works; `[::]`
    /// accepts IPv4 too (dual stack).
    pub listen: SocketAddr,
    /// Most open connections, handshaking ones included (CONN-1).
    pub max_clients: usize,
    /// Most real bytes (lines plus their overhead) in one client's private queue
    /// (replies, `/who`, `/msg`, errors) before it is cut off (CONN-4). Public lines are
    /// not queued per client: they are read from the shared log.
    pub sendq: usize,
    /// Most bytes the chat's ordered log retains for clients that lag behind (all
    /// clients together). Near it, the server stops reading from chatting clients until
    /// readers catch up; past it, the readers still in the oldest segment are cut off
    /// (CONN-3, CONN-4).
    pub log_budget: usize,
    /// Public events kept for `/history`, backlogs and resume (HIST-1); `None` is the
    /// default, 500, or as many as fit a smaller `log_budget`; `Some(0)` turns history
    /// off. An explicit value must fit a quarter of `log_budget`.
    pub history: Option<usize>,
    /// Events sent on join to clients that enabled `history` (HIST-5).
    pub backlog: usize,
    /// Keep the log in this SQLite file across restarts (STORE-1).
    pub store: Option<std::path::PathBuf>,
    /// A reader whose oldest unwritten public line is older than this is cut off
    /// (CONN-4): lag is judged by time, so a burst alone never cuts anyone off.
    pub max_lag: Duration,
    /// Total time a connection may take to choose an accepted nickname (NICK-6).
    pub handshake_timeout: Duration,
    /// Rejected nickname lines after which the handshake gives up (NICK-6).
    pub handshake_attempts: u32,
    /// `None`: the chat lives in this process (the default). `Some`: this server is
    /// one node of a cluster sharing the chat through Redis (`--engine redis://...`).
    pub engine: Option<crate::cluster::EngineConfig>,
    /// Executor threads. Each runs connection tasks and drives the I/O reactor.
    pub threads: usize,
    /// Protocol dialect (see [`Compat`]).
    pub compat: Compat,
    /// Per-client flood limit (CONN-7); [`FloodLimit::off`] for benchmarks.
    pub flood: FloodLimit,
    /// Connections and handshakes one address may hold (ADDR-1).
    pub per_address: AddressLimits,
    /// A TLS listener beside the plain one (spec §19), off unless configured.
    pub tls: Option<crate::tls::TlsConfig>,
    /// A joined user from whom nothing was read for this long is disconnected (IDLE-1);
    /// `None` (the default) keeps quiet users for ever.
    pub idle_timeout: Option<Duration>,
    /// Liveness probes for connections that enabled `ping` (PING-3, PING-4); `None`
    /// (`--ping-interval 0`): no probes, and `ping` is not offered (PING-1).
    pub ping: Option<crate::liveness::PingTimes>,
    /// The operator password (MOD-1); `None` (the default): no operators.
    pub op_password: Option<chat_proto::Password>,
    /// Longest time a closing connection (`/quit`, handshake failure, shutdown) may take
    /// to flush what is queued for it before it is cut off: a client that stops reading
    /// cannot keep its connection (and its slot under `max_clients`) forever.
    pub close_flush_timeout: Duration,
    /// After the last byte was sent and our side was shut down, how long to keep reading
    /// (and discarding, at most 64 KiB) input before closing; also how long a client that
    /// ended its side has to take what was still queued for it. Closing a socket with unread input makes the
    /// kernel send RST, which can destroy the final lines (e.g. `ERR too-many-attempts`)
    /// before the peer reads them; lingering briefly lets the peer see them.
    pub close_linger: Duration,
    /// At shutdown, how long to wait for connections to receive `ERR server-shutdown` and
    /// close before the remaining ones are dropped (CONN-6).
    pub shutdown_grace: Duration,
    /// TCP keepalive and user timeout on accepted sockets, which drop a peer that vanished
    /// without closing (CONN-5). Pinned by the spec and not a command-line flag: tests
    /// shorten them to see a vanished peer leave in seconds.
    pub dead_peer: crate::dead_peer::DeadPeer,
    /// **Testing aid, never set by the binary.** When `Some(text)`, a chatting client whose
    /// line is exactly `text` makes its own connection task panic. The tests use it to
    /// prove that a crash in one connection's task cannot take the server down and that
    /// the user still leaves exactly once (CONN-2). `None` (the default) disables it.
    pub panic_trigger: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_clients: DEFAULT_MAX_CLIENTS,
            sendq: DEFAULT_SENDQ_BYTES,
            log_budget: crate::hub::DEFAULT_LOG_BUDGET,
            engine: None,
            max_lag: DEFAULT_MAX_LAG,
            history: None,
            backlog: crate::history::DEFAULT_BACKLOG,
            store: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            handshake_attempts: DEFAULT_HANDSHAKE_ATTEMPTS,
            threads: default_threads(),
            compat: Compat::Standard,
            flood: FloodLimit::default(),
            per_address: AddressLimits::default(),
            tls: None,
            idle_timeout: None,
            ping: Some(crate::liveness::PingTimes::default()),
            op_password: None,
            close_flush_timeout: Duration::from_secs(5),
            close_linger: chat_proto::limits::CLOSE_LINGER_MAX,
            shutdown_grace: chat_proto::limits::DEFAULT_SHUTDOWN_GRACE,
            dead_peer: crate::dead_peer::DeadPeer::default(),
            panic_trigger: None,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `max_clients` of 0.
    #[error("--max-clients must be at least 1")]
    MaxClients,
    /// A sendq too small to hold even one server line: every client would be cut off.
    #[error("--sendq must be at least {min} bytes (one full server line)")]
    Sendq {
        /// The smallest allowed value.
        min: usize,
    },
    /// `handshake_attempts` of 0.
    #[error("--handshake-attempts must be at least 1")]
    Attempts,
    /// `handshake_timeout` of zero.
    #[error("--handshake-timeout must be more than zero")]
    Timeout,
    /// `threads` of 0.
    #[error("--threads must be at least 1")]
    Threads,
    /// A log budget too small to hold a few segments.
    #[error("--log-budget must be at least {min} bytes")]
    LogBudget {
        /// The smallest allowed value.
        min: usize,
    },
    /// A `--history` whose worst case does not fit a quarter of the log budget
    /// (HIST-1).
    #[error(
        "--history {asked} does not fit --log-budget {budget}: at most {most} events fit a quarter of it"
    )]
    History {
        /// What was asked for.
        asked: usize,
        /// The log budget.
        budget: usize,
        /// The most that fit.
        most: usize,
    },
    /// `max_lag` of zero.
    #[error("--max-lag must be more than zero")]
    MaxLag,
    /// A flood rate that is negative or not a number, or a burst of 0 with a rate set: a
    /// bucket that holds no token could admit no line at all (CONN-7).
    #[error("--flood-rate must be 0 (off) or more, and --flood-burst at least 1")]
    Flood,
    /// A byte budget smaller than one line of the longest kind (FLOOD-1).
    #[error(
        "--flood-burst-bytes must be at least {min} (one line of the longest kind) unless --flood-rate-bytes is 0"
    )]
    FloodBytes {
        /// The smallest allowed value.
        min: usize,
    },
    /// An idle limit of zero (IDLE-1): leave it out to have none.
    #[error("--idle-timeout must be more than zero (leave it out for no idle limit)")]
    IdleTimeout,
    /// A probe timeout of zero (PING-4) would close every probed client at once.
    #[error("--ping-timeout must be more than zero (--ping-interval 0 turns probes off)")]
    PingTimeout,
    /// Keepalive or user timeout numbers the kernel cannot take (CONN-5): every accepted
    /// socket would go without them.
    #[error(
        "keepalive needs whole seconds from 1 to 32767 and 1 to 127 probes, the user timeout at least 1 ms"
    )]
    DeadPeer,
    /// The seed profile picks free nickname variants locally, which a cluster cannot do
    /// atomically yet.
    #[error("--compat seed cannot be combined with --engine redis")]
    SeedCluster,
    /// A lease too short to be renewed reliably.
    #[error("--lease must be at least 300ms")]
    Lease,
    /// A cluster keeps its history in the Redis stream (CLUSTER-7), not in a file.
    #[error("--store cannot be combined with --engine redis (the stream keeps the history)")]
    StoreCluster,
}

impl Config {
    /// The smallest `sendq` that holds one server line of the longest kind, tags
    /// included (SRV-3).
    pub const MIN_SENDQ: usize = MAX_TAGGED_SERVER_LINE_BYTES + 1;

    /// A config listening on `127.0.0.1` with a port the OS picks: what tests want.
    /// The flood limit is off, because most tests send fast on purpose; the tests of
    /// CONN-7 turn it on. So are the per-address limits, because every test client comes
    /// from 127.0.0.1; the tests of ADDR-1 turn them on.
    pub fn loopback_ephemeral() -> Config {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            flood: FloodLimit::off(),
            per_address: AddressLimits::off(),
            ..Config::default()
        }
    }

    /// Public events kept (HIST-1): `history`, or the default as far as it fits.
    pub fn history_len(&self) -> usize {
        self.history.unwrap_or_else(|| {
            crate::history::DEFAULT_HISTORY.min(crate::history::most_that_fit(self.log_budget))
        })
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_clients == 0 {
            return Err(ConfigError::MaxClients);
        }
        if self.sendq < Self::MIN_SENDQ {
            return Err(ConfigError::Sendq {
                min: Self::MIN_SENDQ,
            });
        }
        if self.handshake_attempts == 0 {
            return Err(ConfigError::Attempts);
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        if self.threads == 0 {
            return Err(ConfigError::Threads);
        }
        if self.log_budget < crate::log::MIN_BUDGET {
            return Err(ConfigError::LogBudget {
                min: crate::log::MIN_BUDGET,
            });
        }
        if let Some(n) = self.history
            && !crate::history::fits_budget(n, self.log_budget)
        {
            return Err(ConfigError::History {
                asked: n,
                budget: self.log_budget,
                most: crate::history::most_that_fit(self.log_budget),
            });
        }
        if self.max_lag.is_zero() {
            return Err(ConfigError::MaxLag);
        }
        if self.engine.is_some() && self.compat == Compat::Seed {
            return Err(ConfigError::SeedCluster);
        }
        if self.engine.is_some() && self.store.is_some() {
            return Err(ConfigError::StoreCluster);
        }
        if let Some(e) = &self.engine
            && e.lease < std::time::Duration::from_millis(300)
        {
            return Err(ConfigError::Lease);
        }
        let f = &self.flood;
        if !(f.rate.is_finite() && f.rate >= 0.0) || (f.rate > 0.0 && f.burst == 0) {
            return Err(ConfigError::Flood);
        }
        if f.rate_bytes > 0 && (f.burst_bytes as usize) < MAX_LINE_BYTES {
            return Err(ConfigError::FloodBytes {
                min: MAX_LINE_BYTES,
            });
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::IdleTimeout);
        }
        if self
            .ping
            .is_some_and(|p| p.timeout.is_zero() || p.interval.is_zero())
        {
            return Err(ConfigError::PingTimeout);
        }
        if !self.dead_peer.is_valid() {
            return Err(ConfigError::DeadPeer);
        }
        Ok(())
    }
}

/// One executor thread per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Parses a duration given as seconds (`30`, `0.5`) or with a unit (`500ms`, `30s`,
/// `2m`). Fractions are allowed so tests can use short limits.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 30, 0.5, 500ms, 2m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_are_the_spec_limits() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9090");
        assert_eq!(c.max_clients, 10_000);
        assert_eq!(c.sendq, 64 * 1024);
        assert_eq!(c.log_budget, 64 * 1024 * 1024);
        assert_eq!(c.max_lag, Duration::from_secs(30));
        assert_eq!(c.handshake_timeout, Duration::from_secs(30));
        assert_eq!(c.handshake_attempts, 5);
        assert_eq!(c.per_address.connections, 10);
        assert_eq!(c.per_address.handshakes, 3);
        assert_eq!(c.idle_timeout, None, "IDLE-1: off by default");
        assert_eq!(
            c.ping,
            Some(crate::liveness::PingTimes::default()),
            "PING-3: probes on by default, for clients that enable them"
        );
        assert_eq!(c.dead_peer, crate::dead_peer::DeadPeer::default(), "CONN-5");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validation() {
        let bad = Config {
            sendq: 10,
            ..Config::default()
        };
        assert!(matches!(bad.validate(), Err(ConfigError::Sendq { .. })));
        let bad = Config {
            max_clients: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::MaxClients));
        let bad = Config {
            handshake_attempts: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Attempts));
        let mut bad = Config::default();
        bad.flood.burst_bytes = 1000;
        assert_eq!(bad.validate(), Err(ConfigError::FloodBytes { min: 1024 }));
        bad.flood.rate_bytes = 0;
        assert_eq!(bad.validate(), Ok(()));
        let mut bad = Config::default();
        bad.dead_peer.keepalive_probes = 0;
        assert_eq!(bad.validate(), Err(ConfigError::DeadPeer));
    }

    /// CONN-7: `--flood-burst 0` is refused unless `--flood-rate 0` turns the limit off.
    #[test]
    fn conn_7_burst_zero_is_refused() {
        let mut c = Config::default();
        c.flood.burst = 0;
        assert_eq!(c.validate(), Err(ConfigError::Flood));
        c.flood.rate = 0.0;
        assert_eq!(c.validate(), Ok(()));
        c.flood.rate = -1.0;
        assert_eq!(c.validate(), Err(ConfigError::Flood));
        c.flood.rate = f64::NAN;
        assert_eq!(c.validate(), Err(ConfigError::Flood));
    }
}
