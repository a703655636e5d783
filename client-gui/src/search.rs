//! Search in the history: the next match of a query, older or newer than the one shown,
//! ignoring ASCII case (nicknames and most chat are ASCII; byte offsets stay those of
//! the line, so the match can be highlighted).
//!
//! One search walks the history from the current match and stops at the first hit, so
//! its cost is the distance to that hit: at most one pass over the retained lines, done
//! on Enter, never per frame.

use druid::im::Vector;

use crate::state::{Found, Line};

/// The start offsets of `query` in `text`, ignoring ASCII case.
fn matches(text: &str, query: &str) -> Vec<usize> {
    let (t, q) = (text.as_bytes(), query.as_bytes());
    if q.is_empty() || q.len() > t.len() {
        return Vec::new();
    }
    (0..=t.len() - q.len())
        .filter(|&i| {
            text.is_char_boundary(i)
                && t.get(i..i + q.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(q))
        })
        .collect()
}

/// The next match of `query` after `from` (towards older lines when `older`), or from
/// the newest line (or the oldest, going newer) when there is no current match.
pub fn next(
    history: &Vector<Line>,
    query: &str,
    from: Option<Found>,
    older: bool,
) -> Option<Found> {
    let first_id = history.front()?.id;
    let n = history.len();
    let hit = |line: &Line, start: usize| Found {
        line: line.id,
        start,
        end: start + query.len(),
    };
    let start_index = match from {
        Some(f) => usize::try_from(f.line.checked_sub(first_id)?)
            .ok()?
            .min(n - 1),
        None if older => n - 1,
        None => 0,
    };
    // The current line first, past the current match.
    if let Some(line) = history.get(start_index) {
        let m = matches(line.plain(), query);
        let pick = match (from, older) {
            (None, true) => m.last().copied(),
            (None, false) => m.first().copied(),
            (Some(f), true) => m.iter().rev().find(|&&s| s < f.start).copied(),
            (Some(f), false) => m.iter().find(|&&s| s > f.start).copied(),
        };
        if let Some(s) = pick {
            return Some(hit(line, s));
        }
    }
    if older {
        history
            .iter()
            .take(start_index)
            .rev()
            .find_map(|l| matches(l.plain(), query).last().map(|&s| hit(l, s)))
    } else {
        history
            .iter()
            .skip(start_index + 1)
            .find_map(|l| matches(l.plain(), query).first().map(|&s| hit(l, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AppState, LineKind, ThemeChoice, stamp};

    #[test]
    fn walks_older_then_newer_through_matches() {
        let mut s = AppState::new("x", "me", ThemeChoice::Dark);
        for t in ["Lunch at noon", "no", "lunch? lunch!", "bye"] {
            s.push_line(stamp("10:00"), LineKind::Other, "bob", t);
        }
        let h = &s.history;
        let a = next(h, "LUNCH", None, true).unwrap();
        assert_eq!((a.line, a.start, a.end), (3, 12, 17));
        let b = next(h, "lunch", Some(a), true).unwrap();
        assert_eq!((b.line, b.start), (3, 5));
        let c = next(h, "lunch", Some(b), true).unwrap();
        assert_eq!((c.line, c.start), (1, 5));
        assert_eq!(next(h, "lunch", Some(c), true), None);
        let d = next(h, "lunch", Some(c), false).unwrap();
        assert_eq!(d, b);
        assert_eq!(next(h, "absent", None, true), None);
        assert_eq!(next(h, "", None, true), None);
    }
}
