//! Matching what a client received against what a session expects.
//!
//! Lines are compared byte for byte, because the spec fixes every byte of a server line
//! except the human text of `ERR` lines (ERR-1): those are matched by code only, through
//! `chat-proto`'s parser, so a server may word its errors as it likes.

use std::fmt;

use chat_proto::{ErrorCode, ServerMessage, Tags};

use crate::escape;

/// What one `recv` step expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes before the LF.
    Line(Vec<u8>),
    /// `ERR <code> *`: an error line with this code and any valid text.
    Error(ErrorCode),
    /// `ERR <code> * word word`: an error line with this code whose text mentions
    /// each word (e.g. the commands CMD-2's text must list).
    ErrorMentions(ErrorCode, Vec<String>),
    /// `@id,t <line>`: a tagged line (TAG-1) carrying exactly these tag keys, with
    /// values valid for them (any id, any time: they differ from run to run), and then
    /// exactly these bytes.
    Tagged {
        /// The tag keys the line must carry, in the order written in the session.
        keys: Vec<String>,
        /// The line after the tag prefix.
        line: Vec<u8>,
    },
}

impl Expect {
    /// True when `line` (without its LF) meets the expectation.
    pub fn matches(&self, line: &[u8]) -> bool {
        match self {
            Expect::Line(want) => want == line,
            Expect::Error(code) => matches!(
                parse_server_line(line),
                Some(ServerMessage::Error { code: got, .. }) if got == *code
            ),
            Expect::ErrorMentions(code, words) => matches!(
                parse_server_line(line),
                Some(ServerMessage::Error { code: got, text })
                    if got == *code && words.iter().all(|w| text.as_str().contains(w.as_str()))
            ),
            Expect::Tagged { keys, line: want } => {
                let Ok(s) = std::str::from_utf8(line) else {
                    return false;
                };
                let Ok((tags, body)) = Tags::split(s) else {
                    return false;
                };
                let mut got = tag_keys(&tags);
                let mut keys = keys.clone();
                got.sort();
                keys.sort();
                !tags.is_empty() && got == keys && body.as_bytes() == want.as_slice()
            }
        }
    }
}

/// The keys of the tags of a line.
fn tag_keys(tags: &Tags) -> Vec<String> {
    let mut keys = Vec::new();
    if tags.id.is_some() {
        keys.push(chat_proto::tags::ID.to_owned());
    }
    if tags.time.is_some() {
        keys.push(chat_proto::tags::TIME.to_owned());
    }
    keys.extend(tags.other.iter().map(|t| t.key.to_string()));
    keys
}

/// A received line with its tag values masked (`@id=*;t=* alice: hi`): ids and times
/// differ from run to run, so snapshots and the comparison of replay variants look at
/// which tags a line carries, not their values. Untagged lines are returned as they are.
pub fn mask_tags(line: &str) -> String {
    match Tags::split(line) {
        Ok((tags, body)) if !tags.is_empty() => {
            let keys: Vec<String> = tag_keys(&tags)
                .into_iter()
                .map(|k| format!("{k}=*"))
                .collect();
            format!("@{} {body}", keys.join(";"))
        }
        _ => line.to_owned(),
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Line(b) => write!(f, "`{}`", escape::encode(b)),
            Expect::Error(code) => write!(f, "`ERR {code} *`"),
            Expect::ErrorMentions(code, words) => {
                write!(f, "`ERR {code} *` mentioning `{}`", words.join("`, `"))
            }
            Expect::Tagged { keys, line } => {
                write!(f, "`@{} {}`", keys.join(","), escape::encode(line))
            }
        }
    }
}

/// The line parsed as a server line, if it is one (SRV-1).
pub fn parse_server_line(line: &[u8]) -> Option<ServerMessage> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| ServerMessage::parse(s).ok())
}

/// Why a received line breaks the grammar, for the failure message: a server that
/// sends a malformed line breaks SRV-1 whatever the session expected.
pub fn grammar_note(line: &[u8]) -> Option<&'static str> {
    if line.last() == Some(&b'\r') {
        return Some("ends with CR: server lines end with a bare LF (FRAME-2)");
    }
    let Ok(s) = std::str::from_utf8(line) else {
        return Some("not UTF-8 (FRAME-1)");
    };
    if s.chars().any(chat_proto::text::is_forbidden) {
        return Some("holds a forbidden character (FRAME-5)");
    }
    if ServerMessage::parse_tagged(s).is_err() {
        return Some("not a server line of the grammar (SRV-1)");
    }
    None
}

/// Checks a run of `Users online:` lines against the names a session expects, however
/// the server splits them (CMD-WHO-2). `lines` are the lines read so far; returns
/// `Ok(true)` when the run is complete and right, `Ok(false)` when another line is
/// needed, and `Err` with the reason when it cannot be right.
pub fn check_users(lines: &[Vec<u8>], want: &[String]) -> Result<bool, String> {
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let last_read = i + 1 == lines.len();
        let msg = parse_server_line(line);
        let Some(ServerMessage::Users { names: got, more }) = msg else {
            return Err(format!(
                "expected a `Users online:` line, got `{}`",
                escape::encode(line)
            ));
        };
        if line.len() > chat_proto::limits::MAX_USERS_LINE_BYTES {
            return Err(format!(
                "a `Users online:` line of {} bytes, more than {} (CMD-WHO-2)",
                line.len(),
                chat_proto::limits::MAX_USERS_LINE_BYTES
            ));
        }
        names.extend(got.iter().map(|n| n.as_str().to_owned()));
        if !more {
            if !last_read {
                return Err("a `Users online:` line without `,` was not the last".into());
            }
            return if names == want {
                Ok(true)
            } else {
                Err(format!(
                    "users listed `{}`, expected `{}`",
                    names.join(", "),
                    want.join(", ")
                ))
            };
        }
        if names.len() > want.len() {
            return Err(format!(
                "users listed `{}...`, expected `{}`",
                names.join(", "),
                want.join(", ")
            ));
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_lines_match_byte_for_byte() {
        let e = Expect::Line(b"alice: hi".to_vec());
        assert!(e.matches(b"alice: hi"));
        assert!(!e.matches(b"alice: hi "));
        assert!(!e.matches(b"alice: hi\r"));
    }

    #[test]
    fn error_patterns_match_by_code_only() {
        let e = Expect::Error(ErrorCode::NickTaken);
        assert!(e.matches(b"ERR nick-taken Nickname alice is already in use"));
        assert!(e.matches(b"ERR nick-taken x"));
        assert!(!e.matches(b"ERR nick-invalid x"));
        assert!(
            !e.matches(b"ERR nick-taken"),
            "ERR-1: the text is not optional"
        );
        assert!(
            !e.matches(b"ERR nick-taken  "),
            "ERR-1: the text is not blank"
        );
        assert!(!e.matches(b"ERR nick-taken x\r"));
        assert_eq!(e.to_string(), "`ERR nick-taken *`");
    }

    #[test]
    fn grammar_notes() {
        assert_eq!(grammar_note(b"alice: hi"), None);
        assert!(grammar_note(b"NICK\r").unwrap().contains("CR"));
        assert!(
            grammar_note(b"alice has joined the chat ")
                .unwrap()
                .contains("SRV-1")
        );
        assert!(grammar_note(b"\xff").unwrap().contains("UTF-8"));
        assert!(
            grammar_note("a: \u{1b}[31m".as_bytes())
                .unwrap()
                .contains("FRAME-5")
        );
    }

    #[test]
    fn users_runs() {
        let want: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let l = |s: &str| s.as_bytes().to_vec();
        assert_eq!(check_users(&[l("Users online: a, b, c")], &want), Ok(true));
        assert_eq!(check_users(&[l("Users online: a, b,")], &want), Ok(false));
        assert_eq!(
            check_users(&[l("Users online: a, b,"), l("Users online: c")], &want),
            Ok(true)
        );
        assert!(check_users(&[l("Users online: a, c, b")], &want).is_err());
        assert!(check_users(&[l("Users online: a,"), l("alice: hi")], &want).is_err());
        let long = format!("Users online: {},", vec!["x".repeat(24); 20].join(", "));
        assert!(
            check_users(&[long.into_bytes()], &want)
                .unwrap_err()
                .contains("CMD-WHO-2")
        );
    }
}
