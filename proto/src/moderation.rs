//! Moderation (spec §18): the operator password, the operator commands and the public
//! notices they append, as values with their limits.
//!
//! Parsing and encoding live with the other lines ([`crate::client`],
//! [`crate::server`]); this module holds the pieces only moderation has: a password
//! that never shows in a `Debug` print (MOD-8), a bounded reason (MOD-3), the mute
//! durations (MOD-5) and the texts of the moderation `ERR` lines.

use std::fmt;

use crate::limits::MAX_LINE_BYTES;
use crate::nickname::Nickname;
use crate::text::{Text, has_forbidden};

/// Longest reason of a kick or a ban, in bytes (MOD-3).
pub const MAX_REASON_BYTES: usize = 200;
/// A `/mute` without minutes lasts this long (MOD-5).
pub const DEFAULT_MUTE_MINUTES: u32 = 10;
/// The longest mute: a day (MOD-5).
pub const MAX_MUTE_MINUTES: u32 = 1440;
/// Longest operator password a server accepts as its setting (MOD-1).
pub const MAX_PASSWORD_BYTES: usize = 128;
/// Wrong passwords one connection may send; the last is answered `too-many-attempts`
/// (MOD-2).
pub const OP_ATTEMPTS_PER_CONNECTION: u32 = 3;
/// Wrong passwords one address may send within [`OP_FAILURE_WINDOW_SECS`] (MOD-2).
pub const OP_ATTEMPTS_PER_ADDRESS: u32 = 10;
/// The window over which an address's wrong passwords are counted (MOD-2).
pub const OP_FAILURE_WINDOW_SECS: u64 = 600;

/// A password: one word without blanks or forbidden characters. Its `Debug` form hides
/// it, so a trace of a parsed `/op` line never shows it (MOD-8).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a password is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Empty.
    #[error("the operator password is empty")]
    Empty,
    /// Holds a space, a TAB or a forbidden character (FRAME-5).
    #[error("the operator password must be one word without spaces or control characters")]
    BadChar,
    /// Longer than allowed.
    #[error("the operator password is longer than 128 bytes")]
    TooLong,
}

impl Password {
    /// A password as typed after `/op`: any word of a client line.
    pub fn new(s: &str) -> Result<Password, PasswordError> {
        if s.is_empty() {
            return Err(PasswordError::Empty);
        }
        if s.len() > MAX_LINE_BYTES {
            return Err(PasswordError::TooLong);
        }
        if s.contains([' ', '\t']) || has_forbidden(s) {
            return Err(PasswordError::BadChar);
        }
        Ok(Password(s.to_owned()))
    }

    /// The server's password setting (MOD-1): a word of at most
    /// [`MAX_PASSWORD_BYTES`].
    pub fn for_server(s: &str) -> Result<Password, PasswordError> {
        if s.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Password::new(s)
    }

    /// The password as sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time that depends on the lengths only, never on where the first
    /// difference is (MOD-2), so timing does not reveal a prefix of the password.
    pub fn matches(&self, tried: &Password) -> bool {
        let (a, b) = (self.0.as_bytes(), tried.0.as_bytes());
        let mut diff = u8::from(a.len() != b.len());
        for i in 0..a.len().max(b.len()) {
            diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
        }
        diff == 0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The reason of a kick or a ban: a non-blank text of at most [`MAX_REASON_BYTES`]
/// (MOD-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(Text);

impl Reason {
    /// `None` when `s` is blank, too long, or not a valid text.
    pub fn new(s: &str) -> Option<Reason> {
        (s.len() <= MAX_REASON_BYTES)
            .then(|| Text::new(s).ok())
            .flatten()
            .map(Reason)
    }

    /// The reason as sent.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator command (MOD-3), parsed; `/op` itself is
/// [`crate::ClientMessage::Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModCommand {
    /// `/kick <nick> [<reason>]` (MOD-4).
    Kick {
        /// Who to remove.
        target: Nickname,
        /// Why, shown to everyone.
        reason: Option<Reason>,
    },
    /// `/mute <nick> [<minutes>]` (MOD-5).
    Mute {
        /// Who to silence.
        target: Nickname,
        /// For how long; `None` for [`DEFAULT_MUTE_MINUTES`].
        minutes: Option<u32>,
    },
    /// `/unmute <nick>` (MOD-5).
    Unmute(Nickname),
    /// `/ban <nick> [<reason>]` (MOD-6).
    Ban {
        /// Whose address to ban.
        target: Nickname,
        /// Why, shown to everyone.
        reason: Option<Reason>,
    },
    /// `/unban <nick>`: the nickname the ban was made under (MOD-6).
    Unban(Nickname),
}

impl ModCommand {
    /// The nickname the command names.
    pub fn target(&self) -> &Nickname {
        match self {
            ModCommand::Kick { target, .. }
            | ModCommand::Mute { target, .. }
            | ModCommand::Ban { target, .. }
            | ModCommand::Unmute(target)
            | ModCommand::Unban(target) => target,
        }
    }
}

/// What an operator did, as the public notice says it (MOD-4..6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `was kicked by <op> [(<reason>)]`.
    Kicked(Option<Reason>),
    /// `was muted by <op> for <n> minutes`.
    Muted(u32),
    /// `was unmuted by <op>`.
    Unmuted,
    /// `was banned by <op> [(<reason>)]`.
    Banned(Option<Reason>),
    /// `was unbanned by <op>`.
    Unbanned,
}

/// True for a mute duration a `/mute` may ask for (MOD-5).
pub fn valid_minutes(n: u32) -> bool {
    (1..=MAX_MUTE_MINUTES).contains(&n)
}

/// Standard texts of the moderation `ERR` lines (ERR-1: for people; they name
/// nicknames only once validated, ERR-3, never a reason).
pub mod texts {
    use crate::nickname::Nickname;

    /// MOD-1.
    pub const NO_OPERATORS: &str =
        "This server has no operators (it was started without --op-password)";
    /// MOD-2, wrong password.
    pub const BAD_PASSWORD: &str = "Wrong operator password";
    /// MOD-2, wrong password too often.
    pub const TOO_MANY_OP_ATTEMPTS: &str = "Too many wrong operator passwords; goodbye";
    /// MOD-2, already an operator.
    pub const ALREADY_OPERATOR: &str = "You are already an operator";
    /// MOD-3, not an operator.
    pub const NOT_OPERATOR: &str = "Only operators may do that; /op <password> first";
    /// MOD-3, acting on oneself.
    pub const NOT_YOURSELF: &str = "Operators cannot act on themselves";
    /// MOD-5, `/unmute` of a user who is not muted.
    pub const NOT_MUTED: &str = "That user is not muted";
    /// MOD-6, on accept.
    pub const BANNED_ADDRESS: &str = "Your address is banned from this chat";

    /// MOD-3, acting on another operator.
    pub fn other_operator(nick: &Nickname) -> String {
        format!("{nick} is an operator; operators cannot act on each other")
    }

    /// MOD-3, `/unban` of a nickname no ban was made under.
    pub fn not_banned(nick: &Nickname) -> String {
        format!("No ban was made under the nickname {nick}")
    }

    /// MOD-4.
    pub fn kicked(by: &Nickname) -> String {
        format!("You were kicked by {by}")
    }

    /// MOD-6.
    pub fn banned(by: &Nickname) -> String {
        format!("Your address was banned by {by}")
    }

    /// MOD-5: minutes left, rounded up.
    pub fn muted(minutes_left: u64) -> String {
        let unit = if minutes_left == 1 {
            "minute"
        } else {
            "minutes"
        };
        format!("You are muted for {minutes_left} more {unit}; your line was not sent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_1_password_is_one_word_and_hidden() {
        assert!(Password::for_server("s3cret!").is_ok());
        assert_eq!(Password::for_server(""), Err(PasswordError::Empty));
        assert_eq!(Password::for_server("a b"), Err(PasswordError::BadChar));
        assert_eq!(Password::for_server("a\u{1b}"), Err(PasswordError::BadChar));
        assert_eq!(
            Password::for_server(&"x".repeat(129)),
            Err(PasswordError::TooLong)
        );
        // MOD-8: a traced `/op` line never shows the password.
        let p = Password::new("hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn mod_2_password_compare() {
        let p = Password::new("hunter2").unwrap();
        assert!(p.matches(&Password::new("hunter2").unwrap()));
        for wrong in ["hunter", "hunter22", "Hunter2", "x"] {
            assert!(!p.matches(&Password::new(wrong).unwrap()), "{wrong}");
        }
    }

    #[test]
    fn mod_3_reason_bounded() {
        assert!(Reason::new(&"x".repeat(MAX_REASON_BYTES)).is_some());
        assert!(Reason::new(&"x".repeat(MAX_REASON_BYTES + 1)).is_none());
        assert!(Reason::new("  ").is_none());
        assert!(Reason::new("a\u{202e}b").is_none());
        assert!(valid_minutes(1) && valid_minutes(1440) && !valid_minutes(0));
        assert!(!valid_minutes(1441));
        assert!(texts::muted(1).contains("1 more minute;"));
    }
}
