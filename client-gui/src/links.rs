//! Web addresses in chat text, so the history can underline them and open them on a
//! click.
//!
//! A link starts with `http://` or `https://` (or `www.`, opened as `https://`) at the
//! start of a word and runs to the next space. Punctuation that usually ends a sentence
//! rather than an address (`.`, `,`, `;`, `:`, `!`, `?`, quotes, and a `)` or `]` with no
//! partner inside the address) is left out, as mail and chat programs do.

use std::ops::Range;

/// The byte ranges of the links in `text`, in order.
pub fn find(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut word_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                if let Some(r) = link_in_word(text, s, i) {
                    out.push(r);
                }
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    out
}

/// The link in `text[start..end]` (one word), if there is one.
fn link_in_word(text: &str, start: usize, end: usize) -> Option<Range<usize>> {
    let word = text.get(start..end)?;
    // A word may open with brackets or quotes around the address: `(see https://…)`.
    let lead = word.len() - word.trim_start_matches(['(', '[', '<', '"', '\'']).len();
    let rest = word.get(lead..)?;
    let lower = rest.get(..8.min(rest.len()))?.to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else if lower.starts_with("www.") {
        4
    } else {
        return None;
    };
    let mut link = rest;
    loop {
        let trimmed = link.trim_end_matches(['.', ',', ';', ':', '!', '?', '"', '\'', '>']);
        let trimmed = strip_unpaired(trimmed, '(', ')');
        let trimmed = strip_unpaired(trimmed, '[', ']');
        if trimmed.len() == link.len() {
            break;
        }
        link = trimmed;
    }
    // Nothing after the scheme (`https://`, `www.`) is not an address.
    if link.len() <= scheme {
        return None;
    }
    let s = start + lead;
    Some(s..s + link.len())
}

/// `s` without a final `close` that has no `open` before it.
fn strip_unpaired(s: &str, open: char, close: char) -> &str {
    if s.ends_with(close) && s.matches(open).count() < s.matches(close).count() {
        s.get(..s.len() - close.len_utf8()).unwrap_or(s)
    } else {
        s
    }
}

/// What to hand the desktop's opener for the link text `link`.
pub fn target(link: &str) -> String {
    let lower = link.to_ascii_lowercase();
    if lower.starts_with("www.") {
        format!("https://{link}")
    } else {
        link.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(text: &str) -> Vec<&str> {
        find(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_addresses_and_leaves_sentence_punctuation() {
        assert_eq!(
            links("see https://example.org/a?b=1. and http://x.y/z, or www.rust-lang.org!"),
            vec![
                "https://example.org/a?b=1",
                "http://x.y/z",
                "www.rust-lang.org"
            ]
        );
        assert_eq!(
            links("(https://en.wikipedia.org/wiki/Rust_(programming_language))"),
            vec!["https://en.wikipedia.org/wiki/Rust_(programming_language)"]
        );
        assert_eq!(links("<https://a.b/c>"), vec!["https://a.b/c"]);
        assert_eq!(links("HTTPS://A.B"), vec!["HTTPS://A.B"]);
    }

    #[test]
    fn ignores_what_is_not_an_address() {
        assert!(find("https:// www. http").is_empty());
        assert!(find("myhttps://x.y").is_empty());
        assert!(find("").is_empty());
        assert_eq!(
            links("caf\u{e9} https://\u{e9}.fr/\u{e9}"),
            vec!["https://\u{e9}.fr/\u{e9}"]
        );
    }

    #[test]
    fn opener_target() {
        assert_eq!(target("www.a.org"), "https://www.a.org");
        assert_eq!(target("http://a.org"), "http://a.org");
    }
}
