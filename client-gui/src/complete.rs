//! Tab completion of nicknames in the input, as IRC clients do it: Tab completes the
//! word before the end of the input to the first online nickname it starts (in any
//! case), Tab again offers the next, Shift+Tab the previous. At the start of a line
//! the name gets `: ` (addressing someone), elsewhere a space.

use std::sync::Arc;

use crate::state::{AppState, Completion};

/// The online nicknames (not ours) that start with `prefix`, ignoring case, sorted.
pub fn candidates(state: &AppState, prefix: &str) -> Vec<Arc<str>> {
    let p = prefix.to_ascii_lowercase();
    // `online` is keyed by the folded name, so it is already in order.
    state
        .online
        .iter()
        .filter(|(key, _)| key.starts_with(&p) && !key.eq_ignore_ascii_case(&state.me))
        .map(|(_, name)| name.clone())
        .collect()
}

/// Tab (or Shift+Tab, `backwards`) in the input. Returns false when there was nothing
/// to complete.
pub fn tab(state: &mut AppState, backwards: bool) -> bool {
    let cycling = state
        .completion
        .as_ref()
        .filter(|c| *c.result == *state.input)
        .cloned();
    let (head, prefix, index) = match cycling {
        Some(c) => {
            let n = candidates(state, &c.prefix).len().max(1);
            let i = if backwards {
                (c.index + n - 1) % n
            } else {
                (c.index + 1) % n
            };
            (c.head, c.prefix, i)
        }
        None => {
            let input = state.input.as_str();
            let start = input.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            let (head, word) = input.split_at(start);
            // `@ali` completes too, keeping the `@`.
            let (head, word) = match word.strip_prefix('@') {
                Some(w) => (format!("{head}@"), w),
                None => (head.to_owned(), word),
            };
            if word.is_empty() {
                return false;
            }
            let n = candidates(state, word).len();
            if n == 0 {
                return false;
            }
            let first = if backwards { n - 1 } else { 0 };
            (Arc::from(head), Arc::from(word), first)
        }
    };
    let names = candidates(state, &prefix);
    let Some(name) = names.get(index) else {
        state.completion = None;
        return false;
    };
    let suffix = if head.is_empty() { ": " } else { " " };
    let result = format!("{head}{name}{suffix}");
    state.input = result.clone();
    state.completion = Some(Completion {
        head,
        prefix,
        index,
        result: result.into(),
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ThemeChoice, nick_key};

    fn state(names: &[&str]) -> AppState {
        let mut s = AppState::new("x", "alice", ThemeChoice::Dark);
        s.me = "alice".into();
        for n in names {
            s.online.insert(nick_key(n), Arc::from(*n));
        }
        s
    }

    #[test]
    fn completes_cycles_and_addresses_at_line_start() {
        let mut s = state(&["alice", "Bob", "bobby", "carol"]);
        s.input = "bo".into();
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "Bob: ");
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "bobby: ");
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "Bob: ", "wraps around");
        assert!(tab(&mut s, true));
        assert_eq!(s.input, "bobby: ");
    }

    #[test]
    fn completes_inside_a_line_and_after_msg_and_at() {
        let mut s = state(&["alice", "carol"]);
        s.input = "/msg ca".into();
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "/msg carol ");
        s.input = "thanks @CA".into();
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "thanks @carol ");
    }

    #[test]
    fn nothing_to_complete() {
        let mut s = state(&["alice", "carol"]);
        s.input = "al".into();
        assert!(!tab(&mut s, false), "never ourselves");
        s.input = "hello ".into();
        assert!(!tab(&mut s, false));
        assert_eq!(s.input, "hello ");
        // Typing after a completion starts afresh.
        s.input = "c".into();
        tab(&mut s, false);
        s.input = "carol: x c".into();
        assert!(tab(&mut s, false));
        assert_eq!(s.input, "carol: x carol ");
    }
}
