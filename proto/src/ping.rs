//! Liveness (spec §13.1, PING-1..PING-7): the `ping` capability, the token that a
//! `PING` carries and its `PONG` echoes, and the defaults of the server's timers.
//!
//! Why a capability and not a line for everyone: a 1.0 client, `nc` or the seed client
//! would show a `PING` as text, or (the seed client) answer nothing and be cut off. TCP
//! keepalive (CONN-5) already finds a vanished peer for everyone; `PING` adds what
//! keepalive cannot see: a peer whose kernel still answers but whose program hangs, a
//! proxy or NAT that keeps the TCP connection alive for a dead client, and it gives a
//! client a way to measure the round trip (`/ping`).
//!
//! The server's lines are `PING <token>` and `PONG <token>`; the client's are the
//! commands `/pong <token>` and `/ping <token>` (a client line not starting with `/` is
//! chat text, CHAT-1, so a bare `PONG` would be relayed as chat). `PING` and `PONG` are
//! reserved words (NICK-4, NICK-PREFIX-1), so no nickname-led line starts with them.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// The capability's name (CAPS-1).
pub const PING: &str = "ping";

/// Most bytes of a token (PING-2).
pub const MAX_TOKEN_LEN: usize = 32;

/// Default time a connection that enabled `ping` may be silent before the server sends
/// `PING` (PING-3).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Default time the server waits, after a `PING`, for anything from the client before it
/// gives up (PING-4). With the interval, a vanished peer is noticed 60 s after it last
/// spoke: the same as TCP keepalive (CONN-5).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(30);

/// A string that is no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a token is 1 to 32 visible ASCII characters")]
pub struct BadToken;

/// What a `PING` carries and its `PONG` echoes (PING-2): 1 to 32 visible ASCII characters
/// (`%x21-7E`, no space), opaque to the side that answers.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(Box<str>);

impl Token {
    /// Checks `s` against PING-2.
    pub fn new(s: &str) -> Result<Token, BadToken> {
        if (1..=MAX_TOKEN_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Token(s.into()))
        } else {
            Err(BadToken)
        }
    }

    /// The token a server writes for its `n`th `PING` on a connection: the decimal number.
    pub fn numbered(n: u64) -> Token {
        Token(n.to_string().into())
    }

    /// The token as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_2_tokens() {
        for ok in ["1", "a:b", "~", &"x".repeat(32), "18446744073709551615"] {
            assert_eq!(Token::new(ok).map(|t| t.to_string()), Ok(ok.to_owned()));
        }
        for bad in ["", "a b", "a\tb", "é", &"x".repeat(33), "a\u{7f}"] {
            assert_eq!(Token::new(bad), Err(BadToken), "{bad:?}");
        }
        assert_eq!(Token::numbered(u64::MAX).as_str(), "18446744073709551615");
    }
}
