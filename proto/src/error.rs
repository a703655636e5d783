//! The registry of error codes (spec §7): every `ERR <code> <text>` line a server may send.
//!
//! The code is for programs, the text for people; a client must act on the code alone.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal, closes: $closes:literal;)*) => {
        /// One code of the spec's error registry (§7).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every registered code, in the spec's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// True when the server closes the connection right after sending this code.
            pub fn closes(self) -> bool {
                match self {
                    $(ErrorCode::$variant => $closes,)*
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s {
                    $($wire => Ok(ErrorCode::$variant),)*
                    _ => Err(UnknownCode),
                }
            }
        }
    };
}

codes! {
    /// A client line had more than 1024 bytes before its terminator (FRAME-3).
    LineTooLong = "line-too-long", closes: false;
    /// A client line was not valid UTF-8 (FRAME-4).
    InvalidUtf8 = "invalid-utf8", closes: false;
    /// A client line held a forbidden character (FRAME-5).
    InvalidText = "invalid-text", closes: false;
    /// A nickname broke NICK-2 or NICK-4.
    NickInvalid = "nick-invalid", closes: false;
    /// A nickname is in use (NICK-3).
    NickTaken = "nick-taken", closes: false;
    /// `/nick` named the nickname the client already has, in the same case (CMD-NICK-3).
    NickUnchanged = "nick-unchanged", closes: false;
    /// Too many rejected nicknames in the handshake (NICK-6).
    TooManyAttempts = "too-many-attempts", closes: true;
    /// The handshake took longer than allowed (NICK-6).
    HandshakeTimeout = "handshake-timeout", closes: true;
    /// A joined user sent nothing for the server's idle limit (IDLE-1).
    IdleTimeout = "idle-timeout", closes: true;
    /// A connection that enabled `ping` answered nothing to a `PING` in time (PING-4).
    PingTimeout = "ping-timeout", closes: true;
    /// The server holds its maximum number of connections (CONN-1).
    ServerFull = "server-full", closes: true;
    /// The client's address holds its maximum number of connections or of handshakes
    /// (ADDR-1).
    TooManyConnections = "too-many-connections", closes: true;
    /// The server is shutting down (CONN-6).
    ServerShutdown = "server-shutdown", closes: true;
    /// `/msg` named nobody connected (CMD-MSG-3).
    NoSuchNick = "no-such-nick", closes: false;
    /// A `/word` that is not a command (CMD-2).
    UnknownCommand = "unknown-command", closes: false;
    /// A command with missing or extra arguments (CMD-3).
    BadArguments = "bad-arguments", closes: false;
    /// The client's outbound queue overflowed: it does not read fast enough (CONN-4).
    SendqExceeded = "sendq-exceeded", closes: true;
    /// The client sends faster than the flood limit: the server reads from it more
    /// slowly for now; nothing is dropped (CONN-7).
    Flood = "flood", closes: false;
    /// The client kept sending faster than the flood limit for too long (CONN-7).
    ExcessFlood = "excess-flood", closes: true;
    /// `/caps` named a capability the server does not offer, or a word that cannot be
    /// one (CAPS-3).
    UnknownCapability = "unknown-capability", closes: false;
    /// `/resume` named an event the server no longer holds, or one of another epoch
    /// (RESUME-3); the backlog follows instead of the missed events.
    HistoryGap = "history-gap", closes: false;
    /// Seed compatibility profile only: the server gave the client another nickname than
    /// the one it asked for (COMPAT-4).
    NickAssigned = "nick-assigned", closes: false;
    /// A moderation command on a server without an operator password (MOD-1).
    NoOperators = "no-operators", closes: false;
    /// `/op` with a wrong password (MOD-2).
    BadPassword = "bad-password", closes: false;
    /// `/op` by an operator (MOD-2).
    AlreadyOperator = "already-operator", closes: false;
    /// A moderation command from someone who is not an operator (MOD-3).
    NotOperator = "not-operator", closes: false;
    /// A moderation command naming the sender or another operator (MOD-3).
    CannotModerate = "cannot-moderate", closes: false;
    /// A muted user's chat line, `/msg` or `/nick` (MOD-5): not relayed.
    Muted = "muted", closes: false;
    /// An operator kicked this user (MOD-4).
    Kicked = "kicked", closes: true;
    /// An operator banned this user's address, or the address is banned (MOD-6).
    Banned = "banned", closes: true;
    /// A server that is one node of a cluster cannot reach the cluster for now: the
    /// command (a nickname, `/nick`) was not carried out; try again (CLUSTER-5).
    Unavailable = "unavailable", closes: false;
}

/// True for a word that may be an error code, known or not (ERR-1): lower-case ASCII
/// letters and digits joined by `-`, at most 32 bytes. A client meeting a code of this
/// shape that it does not know treats the line as a non-fatal error (CLI-2).
pub fn is_code_shaped(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The code of an `ERR` line is not in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("unknown error code")]
pub struct UnknownCode;

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_1_codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!(
                is_code_shaped(code.as_str()),
                "codes are lower-case words and digits joined by '-'"
            );
        }
        assert_eq!("nope".parse::<ErrorCode>(), Err(UnknownCode));
    }
}
