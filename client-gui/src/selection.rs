//! Text selected in the history with the mouse: from one point to another, each a line
//! and a byte offset in that line's text, across any number of lines.
//!
//! Points name lines by id, not by index or pixel, so a selection stays on the same
//! characters while new lines arrive, old ones are dropped, the window is resized or the
//! view scrolls. Copying gives exactly the selected characters, lines joined by `\n`
//! (the time column is not part of the text, so it is never copied).

use std::ops::Range;

use druid::Data;
use druid::im::Vector;

use crate::state::Line;

/// A place between two characters of a history line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Data, Default)]
pub struct TextPos {
    /// The line's id.
    pub line: u64,
    /// Byte offset in the line's text (a character boundary).
    pub offset: usize,
}

impl TextPos {
    /// The point at byte `offset` of line `line`.
    pub fn new(line: u64, offset: usize) -> Self {
        TextPos { line, offset }
    }
}

/// The selection: where the drag started (`anchor`) and where it is now (`focus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data, Default)]
pub struct TextSelection {
    /// Where the selection started, or `None` for no selection.
    pub anchor: Option<TextPos>,
    /// Where it ends now (may be before the anchor).
    pub focus: TextPos,
}

impl TextSelection {
    /// A selection starting (and, so far, ending) at `at`: a mouse press.
    pub fn start(at: TextPos) -> Self {
        TextSelection {
            anchor: Some(at),
            focus: at,
        }
    }

    /// Moves the free end to `to`: a drag, or a Shift+click.
    pub fn extend(&mut self, to: TextPos) {
        if self.anchor.is_none() {
            self.anchor = Some(to);
        }
        self.focus = to;
    }

    /// The whole of `history`.
    pub fn all(history: &Vector<Line>) -> Self {
        match (history.front(), history.back()) {
            (Some(first), Some(last)) => TextSelection {
                anchor: Some(TextPos::new(first.id, 0)),
                focus: TextPos::new(last.id, last.plain().len()),
            },
            _ => TextSelection::default(),
        }
    }

    /// True when nothing is selected (no anchor, or an empty range).
    pub fn is_empty(&self) -> bool {
        self.bounds().is_none()
    }

    /// Start and end, in order; `None` when empty.
    pub fn bounds(&self) -> Option<(TextPos, TextPos)> {
        let a = self.anchor?;
        let (s, e) = if a <= self.focus {
            (a, self.focus)
        } else {
            (self.focus, a)
        };
        (s != e).then_some((s, e))
    }

    /// The selected bytes of line `id`, whose text is `len` bytes long; `None` when no
    /// part of it is selected. A line inside the selection is selected whole (an empty
    /// range for an empty line still counts, so its line break is drawn selected).
    pub fn range_in(&self, id: u64, len: usize) -> Option<Range<usize>> {
        let (s, e) = self.bounds()?;
        if id < s.line || id > e.line {
            return None;
        }
        let from = if id == s.line { s.offset.min(len) } else { 0 };
        let to = if id == e.line { e.offset.min(len) } else { len };
        Some(from..to.max(from))
    }

    /// How many lines the selection touches.
    pub fn line_count(&self) -> u64 {
        self.bounds().map_or(0, |(s, e)| e.line - s.line + 1)
    }

    /// The selected text: parts of the first and last lines, whole lines between,
    /// joined with `\n`. Lines no longer in `history` are skipped.
    pub fn text(&self, history: &Vector<Line>) -> String {
        let Some((s, e)) = self.bounds() else {
            return String::new();
        };
        let Some(first_id) = history.front().map(|l| l.id) else {
            return String::new();
        };
        let skip = usize::try_from(s.line.saturating_sub(first_id)).unwrap_or(usize::MAX);
        let mut out = String::new();
        let mut first = true;
        for line in history.iter().skip(skip).take_while(|l| l.id <= e.line) {
            let text = line.plain();
            let Some(r) = self.range_in(line.id, text.len()) else {
                continue;
            };
            if !first {
                out.push('\n');
            }
            first = false;
            out.push_str(text.get(r).unwrap_or(""));
        }
        out
    }
}

/// The largest character boundary of `s` at or before `offset`.
pub fn floor_boundary(s: &str, offset: usize) -> usize {
    let mut i = offset.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The word (letters, digits, `_`, `-`, `.`, `/`, `:`) around byte `offset` of `s`, for
/// a double-click.
pub fn word_at(s: &str, offset: usize) -> Range<usize> {
    let offset = floor_boundary(s, offset);
    let is_word = |c: char| c.is_alphanumeric() || "_-./:@#".contains(c);
    let (before, after) = s.split_at(offset);
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = after
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(s.len(), |(i, _)| offset + i);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AppState, LineKind, ThemeChoice, stamp};

    fn history(lines: &[&str]) -> AppState {
        let mut s = AppState::new("x", "me", ThemeChoice::Dark);
        for l in lines {
            s.push_line(stamp("10:00"), LineKind::Info, "", l);
        }
        s
    }

    #[test]
    fn copies_exactly_part_of_two_lines_in_either_direction() {
        let s = history(&["hello world", "second line here", "third"]);
        let mut sel = TextSelection::start(TextPos::new(1, 6));
        sel.extend(TextPos::new(2, 6));
        assert_eq!(sel.text(&s.history), "world\nsecond");
        assert_eq!(sel.line_count(), 2);
        // Dragged upwards: the same text.
        let mut up = TextSelection::start(TextPos::new(2, 6));
        up.extend(TextPos::new(1, 6));
        assert_eq!(up.text(&s.history), "world\nsecond");
        assert_eq!(up.range_in(1, 11), Some(6..11));
        assert_eq!(up.range_in(2, 16), Some(0..6));
        assert_eq!(up.range_in(3, 5), None);
    }

    #[test]
    fn middle_lines_are_whole_and_empty_selection_is_nothing() {
        let s = history(&["aaa", "bbb", "ccc"]);
        let mut sel = TextSelection::start(TextPos::new(1, 2));
        sel.extend(TextPos::new(3, 1));
        assert_eq!(sel.text(&s.history), "a\nbbb\nc");
        let click = TextSelection::start(TextPos::new(2, 1));
        assert!(click.is_empty());
        assert_eq!(click.text(&s.history), "");
        assert_eq!(click.line_count(), 0);
        assert_eq!(
            TextSelection::all(&s.history).text(&s.history),
            "aaa\nbbb\nccc"
        );
    }

    #[test]
    fn survives_trimmed_lines_and_out_of_range_offsets() {
        let mut s = history(&["one", "two", "three"]);
        s.history_cap = 2;
        s.push_line(stamp("10:00"), LineKind::Info, "", "four");
        let mut sel = TextSelection::start(TextPos::new(1, 1));
        sel.extend(TextPos::new(4, 99));
        assert_eq!(sel.text(&s.history), "three\nfour");
    }

    #[test]
    fn word_boundaries() {
        let s = "see https://x.org/a now, caf\u{e9}!";
        assert_eq!(&s[word_at(s, 6)], "https://x.org/a");
        assert_eq!(&s[word_at(s, 27)], "caf\u{e9}");
        assert_eq!(floor_boundary(s, 29), 28);
    }
}
