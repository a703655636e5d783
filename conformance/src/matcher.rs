//! Matching what a client received against what a session expects.
//!
//! Lines are compared byte for byte, because the spec fixes every byte of a server line
//! except the human text of `ERR` lines (ERR-1): those are matched by code only, through
//! `chat-proto`'s parser, so a server may word its errors as it likes.

use std::fmt;

use chat_proto::{ErrorCode, ServerMessage};

use crate::escape;

/// What one `recv` step expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes before the LF.
    Line(Vec<u8>),
    /// `ERR <code> *`: an error line with this code and any valid text.
    Error(ErrorCode),
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
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Line(b) => write!(f, "`{}`", escape::encode(b)),
            Expect::Error(code) => write!(f, "`ERR {code} *`"),
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
    if ServerMessage::parse(s).is_err() {
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
