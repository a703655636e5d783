//! The server settings a session may need changed from the spec's defaults (§8), such as
//! a one-second handshake timeout, so that a test of NICK-6 does not wait 30 seconds.

use std::fmt;
use std::str::FromStr;

use chat_proto::limits;

/// A configurable server limit of spec §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// Total handshake time, in whole seconds (NICK-6).
    HandshakeTimeout,
    /// Rejected nickname lines before the server gives up (NICK-6).
    HandshakeAttempts,
    /// Open connections, handshaking ones included (CONN-1).
    MaxClients,
    /// Bytes of a client's outbound queue (CONN-4).
    Sendq,
    /// Lines a client may send in a burst (CONN-7).
    FloodBurst,
    /// Lines per second the flood bucket refills at, 0 = off (CONN-7).
    FloodRate,
    /// Seconds a client may stay in excess before it is cut off (CONN-7).
    FloodExcess,
    /// The protocol profile: `seed` for Appendix B (COMPAT-1..5).
    Compat,
    /// The operator password (MOD-1); a server has none by default.
    OpPassword,
    /// Silence, in whole seconds, before a `PING` to a client that enabled `ping`
    /// (PING-3).
    PingInterval,
    /// Silence, in whole seconds, after a `PING` before `ERR ping-timeout` (PING-4).
    PingTimeout,
}

impl Limit {
    /// Every limit, in the order of the spec's table.
    pub const ALL: [Limit; 11] = [
        Limit::HandshakeTimeout,
        Limit::HandshakeAttempts,
        Limit::MaxClients,
        Limit::Sendq,
        Limit::FloodBurst,
        Limit::FloodRate,
        Limit::FloodExcess,
        Limit::Compat,
        Limit::OpPassword,
        Limit::PingInterval,
        Limit::PingTimeout,
    ];

    /// The name used in session files and in `--server-arg`, the same as the
    /// `chat-server` flag without its dashes.
    pub fn name(self) -> &'static str {
        match self {
            Limit::HandshakeTimeout => "handshake-timeout",
            Limit::HandshakeAttempts => "handshake-attempts",
            Limit::MaxClients => "max-clients",
            Limit::Sendq => "sendq",
            Limit::FloodBurst => "flood-burst",
            Limit::FloodRate => "flood-rate",
            Limit::FloodExcess => "flood-excess",
            Limit::Compat => "compat",
            Limit::OpPassword => "op-password",
            Limit::PingInterval => "ping-interval",
            Limit::PingTimeout => "ping-timeout",
        }
    }

    /// The placeholder a `--spawn` command may hold for this limit's value, filled with
    /// the spec's default when a session does not require another. The profile has
    /// none: a server's default profile has no name in the spec, so it can be set only
    /// through `--server-arg 'compat=--compat {}'`, which is added only when needed; nor
    /// have the operator password and the probe times (`--server-arg
    /// 'ping-interval=--ping-interval {}'`), which only a few sessions need.
    pub fn placeholder(self) -> Option<&'static str> {
        Some(match self {
            Limit::HandshakeTimeout => "{handshake_timeout}",
            Limit::HandshakeAttempts => "{handshake_attempts}",
            Limit::MaxClients => "{max_clients}",
            Limit::Sendq => "{sendq}",
            Limit::FloodBurst => "{flood_burst}",
            Limit::FloodRate => "{flood_rate}",
            Limit::FloodExcess => "{flood_excess}",
            Limit::Compat | Limit::OpPassword | Limit::PingInterval | Limit::PingTimeout => {
                return None;
            }
        })
    }

    /// The spec's default value (times in seconds, sendq in bytes, rate in lines/s).
    pub fn default_value(self) -> String {
        match self {
            Limit::HandshakeTimeout => limits::DEFAULT_HANDSHAKE_TIMEOUT.as_secs().to_string(),
            Limit::HandshakeAttempts => limits::DEFAULT_HANDSHAKE_ATTEMPTS.to_string(),
            Limit::MaxClients => limits::DEFAULT_MAX_CLIENTS.to_string(),
            Limit::Sendq => limits::DEFAULT_SENDQ_BYTES.to_string(),
            Limit::FloodBurst => limits::DEFAULT_FLOOD_BURST.to_string(),
            Limit::FloodRate => limits::DEFAULT_FLOOD_RATE.to_string(),
            Limit::FloodExcess => limits::DEFAULT_FLOOD_EXCESS.as_secs().to_string(),
            Limit::Compat => "standard".to_owned(),
            Limit::OpPassword => "none".to_owned(),
            Limit::PingInterval => chat_proto::ping::DEFAULT_PING_INTERVAL
                .as_secs()
                .to_string(),
            Limit::PingTimeout => chat_proto::ping::DEFAULT_PING_TIMEOUT.as_secs().to_string(),
        }
    }

    /// Checks a value for this limit: a whole number, a decimal number for the flood
    /// rate, a lower-case word for the profile.
    fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Limit::FloodRate => value
                .parse::<f64>()
                .is_ok_and(|v| v.is_finite() && v >= 0.0),
            Limit::Compat => !value.is_empty() && value.bytes().all(|b| b.is_ascii_lowercase()),
            Limit::OpPassword => chat_proto::Password::for_server(value).is_ok(),
            _ => value.parse::<u64>().is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{value}` is not a valid value for {}",
                self.name()
            ))
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Limit::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
                format!("unknown limit `{s}` (known: {})", known.join(", "))
            })
    }
}

/// One `requires:` entry of a session: a limit and the value the session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Which limit.
    pub limit: Limit,
    /// The value it must have, as it goes on a command line.
    pub value: String,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.limit, self.value)
    }
}

impl FromStr for Requirement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        let limit: Limit = name.trim().parse()?;
        let value = value.trim().to_owned();
        limit.check(&value)?;
        Ok(Requirement { limit, value })
    }
}
