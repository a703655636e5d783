//! Whether a chat line names us: our nickname as a whole word, in any case (nicknames
//! compare case-insensitively, NICK-3). `alice` is named by `hi Alice!` and `@alice`,
//! not by `malice` or `alice_2`.

/// Characters a nickname is made of (NICK-2): they cannot border a mention.
fn is_nick_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// True when `text` contains `nick` as a word.
pub fn names(text: &str, nick: &str) -> bool {
    !find(text, nick).is_empty()
}

/// The byte ranges where `text` names `nick`.
pub fn find(text: &str, nick: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    if nick.is_empty() || !nick.is_ascii() {
        return out;
    }
    let hay = text.as_bytes();
    let n = nick.len();
    let mut i = 0;
    while i + n <= hay.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let hit = hay
            .get(i..i + n)
            .is_some_and(|w| w.eq_ignore_ascii_case(nick.as_bytes()));
        let before_ok = text
            .get(..i)
            .and_then(|b| b.chars().next_back())
            .is_none_or(|c| !is_nick_char(c));
        let after_ok = text
            .get(i + n..)
            .and_then(|r| r.chars().next())
            .is_none_or(|c| !is_nick_char(c));
        if hit && before_ok && after_ok {
            out.push(i..i + n);
            i += n;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_any_case() {
        assert!(names("hi alice", "alice"));
        assert!(names("ALICE: look", "alice"));
        assert!(names("@Alice, \u{e9}alice?", "alice"));
        assert!(!names("malice", "alice"));
        assert!(!names("alice_2 and alice-b", "alice"));
        assert!(!names("anything", ""));
        assert_eq!(find("alice alice", "alice"), vec![0..5, 6..11]);
        assert!(!names("\u{e9}", "a"));
    }
}
