//! The seed compatibility profile (spec Appendix B): the rules that let the original,
//! unchanged Python client talk to a conforming server, as pure functions. The server
//! applies them only when started with `--compat seed`.
//!
//! The original client cannot speak the core protocol: it compares each whole `recv()`
//! chunk with `NICK` (so `NICK` LF is never recognised), sends its nickname without a
//! terminator, writes `<nick>: ` in front of every line itself, and answers every `NICK`
//! with the same name, so it can never retry a rejected one.

use std::time::Duration;

use crate::limits::MAX_NICK_LEN;
use crate::nickname::{Nickname, is_nick_char};

/// The greeting of the profile: these 4 bytes, no terminator, sent alone (COMPAT-1).
pub const GREETING: &[u8] = b"NICK";

/// An unterminated nickname is complete when no further byte arrives for this long
/// (COMPAT-2). The original client sends its nickname in one write, right after the
/// greeting, so its bytes arrive together; a person typing at `nc` ends the line with
/// Enter anyway.
pub const NICK_IDLE: Duration = Duration::from_millis(250);

/// The name used when nothing of the asked-for name can be kept (COMPAT-4).
pub const FALLBACK_NICK: &str = "guest";

/// Why the server assigned a nickname other than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    /// The asked-for name breaks NICK-2 or NICK-4.
    Invalid,
    /// The asked-for name is held by another user.
    Taken,
}

/// The nickname to give a client that asked for `asked` (COMPAT-4): `asked` itself when
/// it is valid and free; otherwise a free variant built from it, with the reason.
///
/// The variant keeps the allowed characters of `asked` (a space becomes `_`, other
/// characters are dropped, `guest` if nothing is left), cut to 24 characters, and when
/// that is reserved or taken appends the smallest number from 2 up that makes it free,
/// shortening the base to stay within 24 characters. `is_taken` answers for the
/// registry. `None` only when no variant within `max_tries` is free.
pub fn assign_nickname(
    asked: &str,
    is_taken: impl Fn(&Nickname) -> bool,
    max_tries: u32,
) -> Option<(Nickname, Option<Assigned>)> {
    if let Ok(n) = Nickname::new(asked) {
        if !is_taken(&n) {
            return Some((n, None));
        }
    }
    let mut base: String = asked
        .chars()
        .filter_map(|c| {
            if c == ' ' {
                Some('_')
            } else {
                is_nick_char(c).then_some(c)
            }
        })
        .take(MAX_NICK_LEN)
        .collect();
    if base.is_empty() {
        base = FALLBACK_NICK.to_owned();
    }
    let reason = match Nickname::new(asked) {
        Ok(_) => Assigned::Taken,
        Err(_) => Assigned::Invalid,
    };
    if let Ok(n) = Nickname::new(&base) {
        if !is_taken(&n) {
            return Some((n, Some(reason)));
        }
    }
    for i in 2..max_tries.saturating_add(2) {
        let suffix = i.to_string();
        let keep = MAX_NICK_LEN.saturating_sub(suffix.len());
        let head: String = base.chars().take(keep).collect();
        if let Ok(n) = Nickname::new(&format!("{head}{suffix}")) {
            if !is_taken(&n) {
                return Some((n, Some(reason)));
            }
        }
    }
    None
}

/// Most characters of an asked-for name that `ERR nick-assigned` shows (ERR-3).
pub const MAX_SHOWN_NAME: usize = 32;

/// The asked-for name as `ERR nick-assigned` may show it (COMPAT-4, ERR-3): never the
/// raw input. Nickname characters and spaces are kept, every other character becomes
/// `?`, and the result is cut to [`MAX_SHOWN_NAME`] characters, `...` marking a cut.
pub fn shown_name(asked: &str) -> String {
    let mut shown: String = asked
        .chars()
        .take(MAX_SHOWN_NAME)
        .map(|c| if c == ' ' || is_nick_char(c) { c } else { '?' })
        .collect();
    if asked.chars().nth(MAX_SHOWN_NAME).is_some() {
        shown.push_str("...");
    }
    shown
}

/// Removes, once, the `<asked>: ` the original client writes in front of every line
/// (COMPAT-3). `asked` is the name the client asked for, which is what it writes even
/// when the server assigned another. Any other prefix stays part of the text, so nobody
/// can speak as someone else (CHAT-2).
pub fn strip_own_prefix<'a>(line: &'a str, asked: &str) -> &'a str {
    line.strip_prefix(asked)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn taken(names: &[&str]) -> impl Fn(&Nickname) -> bool {
        let set: HashSet<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        move |n: &Nickname| set.contains(n.key().as_str())
    }

    fn assign(asked: &str, names: &[&str]) -> (String, Option<Assigned>) {
        let (n, why) = assign_nickname(asked, taken(names), 10_000).unwrap();
        (n.as_str().to_owned(), why)
    }

    #[test]
    fn compat_4_valid_free_name_is_kept() {
        assert_eq!(assign("alice", &["bob"]), ("alice".into(), None));
    }

    #[test]
    fn compat_4_taken_name_gets_smallest_free_number() {
        assert_eq!(
            assign("alice", &["alice"]),
            ("alice2".into(), Some(Assigned::Taken))
        );
        assert_eq!(
            assign("alice", &["ALICE", "alice2", "Alice3"]),
            ("alice4".into(), Some(Assigned::Taken))
        );
    }

    #[test]
    fn compat_4_invalid_names_become_valid_variants() {
        assert_eq!(
            assign("Aryan Singh", &[]),
            ("Aryan_Singh".into(), Some(Assigned::Invalid))
        );
        assert_eq!(assign("zoë", &[]), ("zo".into(), Some(Assigned::Invalid)));
        assert_eq!(assign("", &[]), ("guest".into(), Some(Assigned::Invalid)));
        assert_eq!(
            assign("éé", &["guest"]),
            ("guest2".into(), Some(Assigned::Invalid))
        );
        assert_eq!(assign("ERR", &[]), ("ERR2".into(), Some(Assigned::Invalid)));
        let long = "x".repeat(30);
        assert_eq!(
            assign(&long, &[]),
            ("x".repeat(24), Some(Assigned::Invalid))
        );
        assert_eq!(
            assign(&long, &[&"x".repeat(24)]),
            (format!("{}2", "x".repeat(23)), Some(Assigned::Invalid))
        );
    }

    #[test]
    fn compat_4_gives_up_only_after_max_tries() {
        assert!(assign_nickname("a", |_| true, 50).is_none());
    }

    #[test]
    fn err_3_shown_name_is_cleaned_and_cut() {
        assert_eq!(shown_name("Aryan Singh"), "Aryan Singh");
        assert_eq!(shown_name("zoë\u{202e}\x1b[31m"), "zo????31m");
        assert_eq!(
            shown_name(&"x".repeat(100)),
            format!("{}...", "x".repeat(32))
        );
        let why = crate::server::ServerMessage::nick_assigned(
            &"\u{1F600}".repeat(1000),
            &Nickname::new("guest").unwrap(),
            Assigned::Invalid,
        );
        assert!(why.to_string().len() <= 4 + 13 + 1 + crate::limits::MAX_ERR_TEXT_BYTES);
    }

    #[test]
    fn compat_3_own_prefix_removed_once() {
        assert_eq!(strip_own_prefix("alice: hi", "alice"), "hi");
        assert_eq!(strip_own_prefix("alice: alice: hi", "alice"), "alice: hi");
        assert_eq!(strip_own_prefix("Aryan Singh: hi", "Aryan Singh"), "hi");
        assert_eq!(strip_own_prefix("bob: hi", "alice"), "bob: hi");
        assert_eq!(strip_own_prefix("ALICE: hi", "alice"), "ALICE: hi");
        assert_eq!(strip_own_prefix("alice:hi", "alice"), "alice:hi");
        assert_eq!(strip_own_prefix("alice: ", "alice"), "");
    }
}
