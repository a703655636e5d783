//! What text may appear on the wire (FRAME-5), and the [`Text`] type that cannot hold
//! anything else.
//!
//! The rule exists to protect *other* users' screens: a control character could end a
//! line early and forge a second one, and a bidi override could reverse what follows it.

use std::fmt;

use thiserror::Error;

use crate::limits::MAX_LINE_BYTES;

/// True for a character no line may hold (FRAME-5): a Unicode control character
/// (category Cc) other than TAB, a bidi embedding/override/isolate control
/// (U+202A..U+202E, U+2066..U+2069), or a line or paragraph separator (U+2028, U+2029).
pub fn is_forbidden(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// True when `s` holds a character [`is_forbidden`] rejects. Plain ASCII text, the common
/// case, is checked a byte at a time without decoding.
pub fn has_forbidden(s: &str) -> bool {
    // One branch-free pass the compiler can vectorize: is any byte outside printable
    // ASCII (other than TAB)? Only then decode characters.
    let unusual = s
        .bytes()
        .fold(false, |acc, b| acc | (b < 0x20 && b != b'\t') | (b >= 0x7f));
    unusual && s.chars().any(is_forbidden)
}

/// True when `s` is made only of spaces and TABs (or is empty): such a chat line is
/// ignored (FRAME-6).
pub fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b == b'\t')
}

/// Why a string is not a valid [`Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TextError {
    /// Empty, or only spaces and TABs.
    #[error("text is empty or blank")]
    Blank,
    /// More than [`MAX_LINE_BYTES`] bytes.
    #[error("text is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    /// Holds a character [`is_forbidden`] rejects.
    #[error("text holds a control, bidi or separator character")]
    Forbidden,
}

/// A piece of free text that may stand in a line: 1 to [`MAX_LINE_BYTES`] bytes, not
/// blank, no forbidden character. Chat texts, private texts and the human text of `ERR`
/// lines are all `Text`, so an encoder can never emit a broken line.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Box<str>);

impl Text {
    /// Checks `s` and wraps it.
    pub fn new(s: &str) -> Result<Self, TextError> {
        if is_blank(s) {
            Err(TextError::Blank)
        } else if s.len() > MAX_LINE_BYTES {
            Err(TextError::TooLong)
        } else if has_forbidden(s) {
            Err(TextError::Forbidden)
        } else {
            Ok(Text(s.into()))
        }
    }

    /// Wraps a string known to be valid (a literal of this crate).
    pub(crate) fn new_unchecked(s: &str) -> Self {
        debug_assert!(Text::new(s).is_ok(), "{s:?}");
        Text(s.into())
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Text {
    type Error = TextError;
    fn try_from(s: &str) -> Result<Self, TextError> {
        Text::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_5_forbidden_characters() {
        for c in [
            '\0', '\r', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{202E}', '\u{2066}', '\u{2028}',
            '\u{2029}',
        ] {
            assert!(is_forbidden(c), "{c:?} must be forbidden");
        }
        for c in [
            '\t', ' ', 'a', 'é', '\u{200B}', '\u{202F}', '\u{2065}', '😀',
        ] {
            assert!(!is_forbidden(c), "{c:?} must be allowed");
        }
    }

    #[test]
    fn frame_5_has_forbidden_matches_char_rule() {
        for s in [
            "plain",
            "tab\there",
            "é",
            "a\u{85}b",
            "x\u{2069}",
            "\u{7f}",
            "\u{1f}",
            "ok 😀",
            "",
        ] {
            assert_eq!(has_forbidden(s), s.chars().any(is_forbidden), "{s:?}");
        }
    }

    #[test]
    fn frame_6_blank() {
        assert!(is_blank(""));
        assert!(is_blank(" \t  "));
        assert!(!is_blank(" x "));
        assert_eq!(Text::new(" \t"), Err(TextError::Blank));
        assert_eq!(Text::new(" x ").unwrap().as_str(), " x ");
    }

    #[test]
    fn text_limits() {
        assert!(Text::new(&"a".repeat(MAX_LINE_BYTES)).is_ok());
        assert_eq!(
            Text::new(&"a".repeat(MAX_LINE_BYTES + 1)),
            Err(TextError::TooLong)
        );
        assert_eq!(Text::new("a\u{202E}b"), Err(TextError::Forbidden));
    }
}
