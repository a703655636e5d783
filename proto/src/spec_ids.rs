//! The requirement IDs of `spec/PROTOCOL.md` (`**FRAME-3**`, `**CMD-MSG-2**`), found the
//! same way by every check that cites them: `proto/tests/spec_ids.rs` (every ID is
//! cited by a test, every cited ID exists) and the conformance suite's coverage check
//! (every ID is checked by a session or a named test). Plain text in, IDs out.

use std::collections::BTreeSet;

/// True for a spec ID: upper-case words joined by `-`, then `-` and a number
/// (`FRAME-3`, `CMD-MSG-2`).
pub fn is_spec_id(s: &str) -> bool {
    let Some((prefix, num)) = s.rsplit_once('-') else {
        return false;
    };
    !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
        && !prefix.is_empty()
        && prefix
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase()))
}

/// One ID the spec defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defined {
    /// The ID.
    pub id: String,
    /// Marked `(withdrawn)` right after its bold marker: kept, never reused, not
    /// checked.
    pub withdrawn: bool,
}

/// Every ID the spec defines with a bold marker, in order of first appearance.
pub fn defined(spec: &str) -> Vec<Defined> {
    let mut out: Vec<Defined> = Vec::new();
    for line in spec.lines() {
        let mut rest = line;
        while let Some(start) = rest.find("**") {
            let after = rest.get(start + 2..).unwrap_or_default();
            let Some(end) = after.find("**") else { break };
            let word = after.get(..end).unwrap_or_default();
            let tail = after.get(end + 2..).unwrap_or_default();
            if is_spec_id(word) && !out.iter().any(|d| d.id == word) {
                out.push(Defined {
                    id: word.to_owned(),
                    withdrawn: tail.trim_start().starts_with("(withdrawn"),
                });
            }
            rest = tail;
        }
    }
    out
}

/// The IDs in force: [`defined`] without the withdrawn ones.
pub fn in_force(spec: &str) -> Vec<String> {
    defined(spec)
        .into_iter()
        .filter(|d| !d.withdrawn)
        .map(|d| d.id)
        .collect()
}

/// True when `text` cites `id`: it mentions `CMD-MSG-2` itself, or a name holding
/// `cmd_msg_2` (tests are named after the IDs they check) not followed by a digit, so
/// that `frame_1` does not cite `FRAME-10`.
pub fn cites(text: &str, id: &str) -> bool {
    let snake = id.to_ascii_lowercase().replace('-', "_");
    mentions(text, id)
        || text.match_indices(&snake).any(|(i, _)| {
            !text
                .get(i + snake.len()..)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
}

fn mentions(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(i, _)| {
        let before = text.get(..i).and_then(|b| b.chars().next_back());
        let after = text.get(i + id.len()..).and_then(|a| a.chars().next());
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Every ID-shaped word in `text` whose first word is one of `prefixes` (`FRAME`,
/// `CMD`, ...), skipping lines marked `not a spec ID` (tests that use a made-up ID on
/// purpose).
pub fn cited(text: &str, prefixes: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.contains("not a spec ID")) {
        let bytes = line.as_bytes();
        for (i, _) in line.match_indices(|c: char| c.is_ascii_uppercase()) {
            if i > 0
                && bytes
                    .get(i - 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'-')
            {
                continue;
            }
            let rest = line.get(i..).unwrap_or_default();
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            let cand = rest.get(..end).unwrap_or_default().trim_end_matches('-');
            let first = cand.split('-').next().unwrap_or_default();
            if prefixes.contains(first) && is_spec_id(cand) {
                out.insert(cand.to_owned());
            }
        }
    }
    out
}

/// The first words of the defined IDs (`FRAME`, `CMD`, ...).
pub fn prefixes(defined: &[Defined]) -> BTreeSet<String> {
    defined
        .iter()
        .filter_map(|d| d.id.split('-').next().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "**FRAME-1** A connection...\n\
        **FRAME-2** A CR ... (FRAME-5). **NICK-1** first\n\
        mentions FRAME-1 again, and **bold** text\n\
        **OLD-1** (withdrawn) gone\n";

    #[test]
    fn ids_in_bold_only_and_withdrawn_marked() {
        let d = defined(SPEC);
        let ids: Vec<&str> = d.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["FRAME-1", "FRAME-2", "NICK-1", "OLD-1"]);
        assert!(d[3].withdrawn);
        assert_eq!(in_force(SPEC), ["FRAME-1", "FRAME-2", "NICK-1"]);
        for ok in ["FRAME-1", "CMD-MSG-5", "ERR-2"] {
            assert!(is_spec_id(ok), "{ok}");
        }
        for bad in ["FRAME", "frame-1", "FRAME-", "-1", "FRAME-1a", "A--1"] {
            assert!(!is_spec_id(bad), "{bad}");
        }
    }

    #[test]
    fn citations_by_mention_or_test_name() {
        assert!(cites("// checks FRAME-1.", "FRAME-1"));
        assert!(cites("fn frame_1_works()", "FRAME-1"));
        assert!(!cites("fn frame_10_works()", "FRAME-1")); // not a spec ID
        assert!(!cites("see FRAME-10", "FRAME-1")); // not a spec ID
        assert!(!cites("see XFRAME-1", "FRAME-1"));
        let p = prefixes(&defined(SPEC));
        let c = cited("FRAME-9 and NICK-1, CMD-2\nFRAME-7 not a spec ID", &p); // not a spec ID
        assert_eq!(c.into_iter().collect::<Vec<_>>(), ["FRAME-9", "NICK-1"]); // not a spec ID
    }
}
