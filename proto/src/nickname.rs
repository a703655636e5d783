//! Nicknames (spec §3): the [`Nickname`] type cannot hold an invalid one, and
//! [`NickKey`] is the case-folded form under which uniqueness is decided (NICK-3).

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::limits::MAX_NICK_LEN;
use crate::lookalike::Skeleton;

/// Words no nickname may be, compared exactly (NICK-4): `ERR` would make
/// `ERR has joined the chat` read as an error line; `NICK` is the handshake prompt;
/// `PING` and `PONG` start the liveness lines (PING-1), so `PING has joined the chat`
/// must not exist for a client that tests `startswith("PING ")`. Only the upper-case
/// spellings are the wire's words (§10 matches them exactly, and so does the seed
/// client), so `Nick`, `nick` and `err` are ordinary names.
pub const RESERVED: [&str; 4] = ["ERR", "NICK", "PING", "PONG"];

/// True when `s` is one of the [`RESERVED`] words, spelled exactly (NICK-4).
pub fn is_reserved(s: &str) -> bool {
    RESERVED.contains(&s)
}

/// True when `s` starts with a word of [`RESERVED`], in any case, followed by a
/// character that is not a letter (NICK-PREFIX-1): `ERR_`, `nick-1`, `Err2x`. A chat
/// line from such a user (`ERR_: ...`) would fool a client that tests
/// `startswith("ERR")`. Names that merely begin with the letters, such as `Errol` or
/// `Nicky`, are fine.
pub fn has_reserved_prefix(s: &str) -> bool {
    RESERVED.iter().any(|r| {
        s.get(..r.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(r))
            && s.as_bytes()
                .get(r.len())
                .is_some_and(|b| !b.is_ascii_alphabetic())
    })
}

/// True for a byte a nickname may hold: `A-Z a-z 0-9 _ -` (NICK-2).
pub fn is_nick_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// True for a character a nickname may hold (the `char` form of [`is_nick_byte`]).
pub fn is_nick_char(c: char) -> bool {
    c.is_ascii() && is_nick_byte(c as u8)
}

/// Why a string is not a valid nickname.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NickError {
    /// The empty string (e.g. a stray Enter in the handshake).
    #[error("a nickname cannot be empty")]
    Empty,
    /// More than 24 characters.
    #[error("a nickname has at most {MAX_NICK_LEN} characters")]
    TooLong,
    /// A character outside `A-Z a-z 0-9 _ -`.
    #[error("a nickname may only use letters A-Z and a-z, digits, '_' and '-'")]
    BadChar,
    /// One of [`RESERVED`], in any case.
    #[error("that nickname is reserved")]
    Reserved,
    /// One of [`RESERVED`], in any case, followed by a character that is not a letter
    /// (NICK-PREFIX-1).
    #[error(
        "a nickname may not start with ERR, NICK, PING or PONG followed by a character other than a letter"
    )]
    ReservedPrefix,
}

/// A valid nickname, as spelled by its owner.
///
/// Equality is exact (`Alice != alice`) because that is how a name is shown; use
/// [`Nickname::key`] to compare the way the registry does.
///
/// Shared (`Arc<str>`), not copied: the server keeps a user's name in several places
/// (its registry entry, its connection, every line that names it) and each clone is one
/// count, not one allocation, which matters with thousands of idle users.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nickname(Arc<str>);

impl Nickname {
    /// Checks `s` against NICK-2 and NICK-4.
    pub fn new(s: &str) -> Result<Self, NickError> {
        if s.is_empty() {
            return Err(NickError::Empty);
        }
        if !s.bytes().all(is_nick_byte) {
            return Err(NickError::BadChar);
        }
        if s.len() > MAX_NICK_LEN {
            return Err(NickError::TooLong);
        }
        if is_reserved(s) {
            return Err(NickError::Reserved);
        }
        if has_reserved_prefix(s) {
            return Err(NickError::ReservedPrefix);
        }
        Ok(Nickname(s.into()))
    }

    /// The nickname as its owner spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded key under which nicknames are unique (NICK-3).
    pub fn key(&self) -> NickKey {
        NickKey(self.0.to_ascii_lowercase().into())
    }

    /// The confusable skeleton: a nickname whose skeleton equals an online user's is
    /// taken too (NICK-LOOK-1).
    pub fn skeleton(&self) -> Skeleton {
        Skeleton::of(&self.0)
    }

    /// True when both name the same user under NICK-3's case rule.
    pub fn same_user(&self, other: &Nickname) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// Appends the nickname as a handshake line (`<nick>` LF) to `out`.
    pub fn encode_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
        out.push(b'\n');
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for Nickname {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Nickname {
    type Error = NickError;
    fn try_from(s: &str) -> Result<Self, NickError> {
        Nickname::new(s)
    }
}

impl std::str::FromStr for Nickname {
    type Err = NickError;
    fn from_str(s: &str) -> Result<Self, NickError> {
        Nickname::new(s)
    }
}

/// A nickname folded to lower case: two users' keys are equal exactly when their
/// nicknames may not coexist (NICK-3). Only ASCII letters fold, as only ASCII is allowed.
/// Shared like [`Nickname`]: the registry holds each key in its index, its lookalike
/// table, the member entry and the member's handle.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NickKey(Arc<str>);

impl NickKey {
    /// The folded form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_2_charset_and_length() {
        assert!(Nickname::new("a").is_ok());
        assert!(Nickname::new("Alice_the-2nd").is_ok());
        assert!(Nickname::new(&"x".repeat(24)).is_ok());
        assert_eq!(Nickname::new(&"x".repeat(25)), Err(NickError::TooLong));
        assert_eq!(Nickname::new(""), Err(NickError::Empty));
        assert_eq!(Nickname::new("Aryan Singh"), Err(NickError::BadChar));
        assert_eq!(Nickname::new("zoë"), Err(NickError::BadChar));
        assert_eq!(Nickname::new("a:b"), Err(NickError::BadChar));
        assert_eq!(Nickname::new(" alice"), Err(NickError::BadChar));
    }

    #[test]
    fn nick_3_case_insensitive_key() {
        let a = Nickname::new("Alice").unwrap();
        let b = Nickname::new("aLICE").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.key(), b.key());
        assert!(a.same_user(&b));
    }

    #[test]
    fn nick_4_reserved_words_exactly() {
        for w in ["ERR", "NICK", "PING", "PONG"] {
            assert_eq!(Nickname::new(w), Err(NickError::Reserved), "{w}");
        }
        for w in [
            "err", "Err", "nick", "Nick", "NiCk", "ERRx", "nicky", "Errol", "ping", "Pong",
            "Pingu", "pongo",
        ] {
            assert!(Nickname::new(w).is_ok(), "{w}");
        }
    }

    #[test]
    fn nick_prefix_1_reserved_word_then_non_letter() {
        for w in [
            "ERR_", "ERR-1", "err2", "Err_x", "NICK-1", "nick_", "Nick2go", "ERR__", "PING_",
            "ping-1", "Pong2",
        ] {
            assert_eq!(Nickname::new(w), Err(NickError::ReservedPrefix), "{w}");
        }
        for w in [
            "Errol", "errand", "Nicky", "nickel", "NICKname", "xERR_", "_ERR", "ER_R",
        ] {
            assert!(Nickname::new(w).is_ok(), "{w}");
        }
    }
}
