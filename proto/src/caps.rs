//! Capabilities (spec §13): how a client discovers what a server offers beyond the core
//! protocol and opts in, at no cost to a client that never asks (`nc`, the seed client,
//! 1.0 clients).
//!
//! `/caps` asks for the list; the server answers `Protocol 1.1 capabilities: tags`
//! (CAPS-2). `/caps tags` enables `tags` for this connection and is answered
//! `Capabilities enabled: tags` (CAPS-3). Both work in the handshake too, as pre-join
//! commands (CAPS-4), so a client can enable tags before its own join notice.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Most characters of a capability name (CAPS-1).
pub const MAX_CAP_NAME_LEN: usize = 32;

/// Most characters of a capability's value in the list (CAPS-1).
pub const MAX_CAP_VALUE_LEN: usize = 64;

/// The capability of message tags (TAG-1): event ids and server times on event lines.
pub const TAGS: &str = "tags";

/// The history capability (§17): backlog on join, `/history`, `/resume`.
pub const HISTORY: &str = "history";

/// A protocol version, `major.minor` (CAPS-2). Minor versions only add: a client of
/// 1.0 works with a 1.1 server unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible revisions (none so far).
    pub major: u16,
    /// Compatible additions.
    pub minor: u16,
}

/// The version this crate implements.
pub const PROTOCOL_VERSION: Version = Version { major: 1, minor: 1 };

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A string that is not a `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not a protocol version")]
pub struct BadVersion;

/// 1 to 5 decimal digits, no sign, no leading zero unless it is `0` itself.
fn number(s: &str) -> Option<u16> {
    let canonical = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl FromStr for Version {
    type Err = BadVersion;
    fn from_str(s: &str) -> Result<Version, BadVersion> {
        let (major, minor) = s.split_once('.').ok_or(BadVersion)?;
        Ok(Version {
            major: number(major).ok_or(BadVersion)?,
            minor: number(minor).ok_or(BadVersion)?,
        })
    }
}

/// Why a string is not a capability name or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CapError {
    /// Empty, too long, or a character outside `a-z 0-9 -`, or not starting with a
    /// letter.
    #[error("a capability name is 1 to 32 of a-z, 0-9 and '-', starting with a letter")]
    BadName,
    /// Empty, too long, or a character outside visible ASCII.
    #[error("a capability value is 1 to 64 visible ASCII characters")]
    BadValue,
}

/// A capability's name (CAPS-1): 1 to 32 characters of `a-z 0-9 -`, starting with a
/// letter. Compared exactly: `TAGS` is not a capability name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapName(Box<str>);

impl CapName {
    /// Checks `s` against CAPS-1.
    pub fn new(s: &str) -> Result<CapName, CapError> {
        let ok = (1..=MAX_CAP_NAME_LEN).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(CapName(s.into()))
        } else {
            Err(CapError::BadName)
        }
    }

    /// The `tags` capability.
    pub fn tags() -> CapName {
        CapName(TAGS.into())
    }

    /// The `history` capability (HIST-1).
    pub fn history() -> CapName {
        CapName(HISTORY.into())
    }

    /// The `ping` capability (PING-1).
    pub fn ping() -> CapName {
        CapName(crate::ping::PING.into())
    }

    /// The name as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One entry of the capability list (CAPS-2): a name, and a value for capabilities
/// that need one (none in 1.1; a client ignores entries it does not know, CLI-5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability {
    /// The capability's name.
    pub name: CapName,
    /// `name=value`: 1 to 64 visible ASCII characters.
    pub value: Option<Box<str>>,
}

impl Capability {
    /// A capability without a value.
    pub fn named(name: CapName) -> Capability {
        Capability { name, value: None }
    }

    /// Parses `name` or `name=value`.
    pub fn parse(s: &str) -> Result<Capability, CapError> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let name = CapName::new(name)?;
        let value = match value {
            None => None,
            Some(v) if is_cap_value(v) => Some(v.into()),
            Some(_) => return Err(CapError::BadValue),
        };
        Ok(Capability { name, value })
    }
}

/// True for a valid capability value: 1 to 64 of `%x21-7E` (visible ASCII).
pub fn is_cap_value(v: &str) -> bool {
    (1..=MAX_CAP_VALUE_LEN).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_str())?;
        if let Some(v) = &self.value {
            write!(f, "={v}")?;
        }
        Ok(())
    }
}

/// The capabilities a connection has enabled (at most a handful, so a small vector).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enabled(Vec<CapName>);

impl Enabled {
    /// Adds `names` (duplicates once); returns every enabled name, in the order they
    /// were first enabled, for the `Capabilities enabled:` answer (CAPS-3).
    pub fn enable(&mut self, names: &[CapName]) -> &[CapName] {
        for n in names {
            if !self.0.contains(n) {
                self.0.push(n.clone());
            }
        }
        &self.0
    }

    /// True when `name` is enabled.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.as_str() == name)
    }

    /// True when message tags are enabled (TAG-2).
    pub fn tags(&self) -> bool {
        self.has(TAGS)
    }

    /// True when the history capability is enabled (HIST-1).
    pub fn history(&self) -> bool {
        self.has(HISTORY)
    }

    /// True when the liveness capability is enabled (PING-1).
    pub fn ping(&self) -> bool {
        self.has(crate::ping::PING)
    }

    /// Every enabled name.
    pub fn names(&self) -> &[CapName] {
        &self.0
    }
}

/// What the first answer to a client's `/caps` line says about the server (CAPS-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapsAnswer {
    /// A 1.1 server's list (CAPS-2).
    Offered {
        /// The server's protocol version.
        version: Version,
        /// What it offers.
        offered: Vec<Capability>,
    },
    /// A 1.1 server enabled these (CAPS-3).
    Enabled(Vec<CapName>),
    /// A 1.1 server does not offer a name asked for; nothing was enabled (CAPS-3).
    Refused,
    /// A 1.0 server: `/caps` was an invalid nickname (in the handshake) or an unknown
    /// command (after it). Behave as a 1.0 client (CAPS-5).
    Unsupported,
}

impl CapsAnswer {
    /// Judges the line that answered `/caps`, or `None` for a line that is no answer
    /// to it (an event that came first, SRV-5: keep reading).
    pub fn judge(msg: &crate::ServerMessage) -> Option<CapsAnswer> {
        use crate::{ErrorCode, ServerMessage};
        match msg {
            ServerMessage::Caps { version, offered } => Some(CapsAnswer::Offered {
                version: *version,
                offered: offered.clone(),
            }),
            ServerMessage::CapsEnabled(names) => Some(CapsAnswer::Enabled(names.clone())),
            ServerMessage::Error {
                code: ErrorCode::UnknownCapability,
                ..
            } => Some(CapsAnswer::Refused),
            ServerMessage::Error {
                code: ErrorCode::NickInvalid | ErrorCode::UnknownCommand,
                ..
            } => Some(CapsAnswer::Unsupported),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_1_names_and_values() {
        for ok in ["tags", "a", "x-1", &"a".repeat(32)] {
            assert!(CapName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "TAGS", "1tags", "-x", "ta gs", "tägs", &"a".repeat(33)] {
            assert_eq!(CapName::new(bad), Err(CapError::BadName), "{bad}");
        }
        assert_eq!(
            Capability::parse("history=500").unwrap().to_string(),
            "history=500"
        );
        assert_eq!(Capability::parse("x="), Err(CapError::BadValue));
        assert_eq!(Capability::parse("x=a b"), Err(CapError::BadValue));
    }

    #[test]
    fn caps_2_version() {
        assert_eq!(PROTOCOL_VERSION.to_string(), "1.1");
        assert_eq!("1.1".parse(), Ok(PROTOCOL_VERSION));
        assert_eq!(
            "10.0".parse(),
            Ok(Version {
                major: 10,
                minor: 0
            })
        );
        for bad in [
            "1", "1.", ".1", "01.1", "1.01", "+1.1", "1.1.1", "99999.1", "a.b",
        ] {
            assert_eq!(bad.parse::<Version>(), Err(BadVersion), "{bad}");
        }
    }

    #[test]
    fn caps_5_a_1_0_server_is_told_apart() {
        use crate::{ServerMessage, ServerReader};
        let judge = |wire: &[u8]| {
            let mut r = ServerReader::new();
            let mut out = Vec::new();
            r.push(wire, |e| {
                if let Some(a) = e.message().and_then(CapsAnswer::judge) {
                    out.push(a);
                }
            });
            out
        };
        // The same pipelined `/caps tags` LF `alice` LF, against each server.
        assert_eq!(
            judge(b"NICK\nCapabilities enabled: tags\nNICK\n"),
            [CapsAnswer::Enabled(vec![CapName::tags()])]
        );
        assert_eq!(
            judge(
                b"NICK\nERR nick-invalid Invalid nickname: a nickname may only use letters\nNICK\n"
            ),
            [CapsAnswer::Unsupported]
        );
        assert_eq!(
            judge(b"ERR unknown-command Unknown command. Commands: /who\n"),
            [CapsAnswer::Unsupported]
        );
        assert_eq!(
            CapsAnswer::judge(&ServerMessage::caps(PROTOCOL_VERSION, vec![])),
            Some(CapsAnswer::Offered {
                version: PROTOCOL_VERSION,
                offered: vec![]
            })
        );
        assert_eq!(
            CapsAnswer::judge(&ServerMessage::unknown_capability()),
            Some(CapsAnswer::Refused)
        );
    }

    #[test]
    fn caps_3_enabling_is_cumulative_and_idempotent() {
        let mut e = Enabled::default();
        assert!(!e.tags());
        let x = CapName::new("x").unwrap();
        assert_eq!(
            e.enable(&[CapName::tags(), CapName::tags()]),
            [CapName::tags()]
        );
        assert_eq!(e.enable(std::slice::from_ref(&x)), [CapName::tags(), x]);
        assert!(e.tags());
    }
}
