//! The client side of a connection: a server's byte stream in, typed [`Incoming`] events
//! out. Clients (the GUI, the load tool, the conformance harness) share it so that they
//! all read servers the same way.
//!
//! It accepts the handshake prompt with or without its LF: a server running the seed
//! compatibility profile (spec Appendix B) sends the 4 bytes `NICK` alone and then
//! nothing until it gets a nickname, so waiting for the LF would deadlock. While the
//! handshake is under way, a pending partial line that is exactly `NICK` is taken as the
//! prompt at once; an LF that follows it later is skipped.
//!
//! It follows the rules for clients (spec §12) that let the protocol grow: a line it
//! does not recognise is reported as [`Incoming::Unrecognised`] for the client to ignore
//! (CLI-1), never as a protocol violation, and an `ERR` line with a code it does not
//! know is [`Incoming::UnknownError`], a non-fatal error (CLI-2). Tags are read on any
//! line (TAG-1); unknown tags are kept, not refused (CLI-5).

use crate::error::is_code_shaped;
use crate::framer::{Frame, Framer};
use crate::limits::{MAX_ERR_TEXT_BYTES, MAX_TAGGED_SERVER_LINE_BYTES};
use crate::server::ServerMessage;
use crate::tags::Tags;
use crate::text::Text;
use crate::wire;

/// One thing a server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A line that parsed, without tags.
    Message(ServerMessage),
    /// A line that parsed, with tags (only after enabling `tags`, TAG-2).
    Tagged(Tags, ServerMessage),
    /// `ERR <code> <text>` with a well-formed code this crate does not know: an error
    /// from a newer server, to show and go on (CLI-2). The connection stays open unless
    /// the server closes it.
    UnknownError {
        /// The code as sent.
        code: String,
        /// The human text.
        text: Text,
    },
    /// A complete line that is none of the forms this crate knows (SRV-1): from a newer
    /// server, or a broken one. A client ignores it (CLI-1); it is kept for display.
    Unrecognised(String),
    /// A line longer than [`MAX_TAGGED_SERVER_LINE_BYTES`] (SRV-3), skipped.
    TooLong,
    /// A line that was not UTF-8 or held a forbidden character (FRAME-4, FRAME-5).
    Invalid,
}

impl Incoming {
    /// Judges one complete server line (without its LF).
    pub fn from_line(line: &str) -> Incoming {
        let Ok((tags, body)) = Tags::split(line) else {
            return Incoming::Unrecognised(line.to_owned());
        };
        match ServerMessage::parse(body) {
            Ok(m) if tags.is_empty() => Incoming::Message(m),
            Ok(m) => Incoming::Tagged(tags, m),
            Err(_) => {
                unknown_error(body).unwrap_or_else(|| Incoming::Unrecognised(line.to_owned()))
            }
        }
    }

    /// The message, tagged or not.
    pub fn message(&self) -> Option<&ServerMessage> {
        match self {
            Incoming::Message(m) | Incoming::Tagged(_, m) => Some(m),
            _ => None,
        }
    }
}

/// `ERR <code> <text>` whose code is shaped like one but unknown (CLI-2).
fn unknown_error(line: &str) -> Option<Incoming> {
    let (code, text) = line.strip_prefix(wire::ERR)?.split_once(' ')?;
    if !is_code_shaped(code) || code.parse::<crate::ErrorCode>().is_ok() {
        return None;
    }
    if text.len() > MAX_ERR_TEXT_BYTES {
        return None;
    }
    Some(Incoming::UnknownError {
        code: code.to_owned(),
        text: Text::new(text).ok()?,
    })
}

/// Reads a server's stream. See the module documentation.
#[derive(Debug, Clone)]
pub struct ServerReader {
    framer: Framer,
    /// Still before `Connected to the server`: a bare `NICK` counts as the prompt.
    handshaking: bool,
    /// A bare `NICK` was taken as the prompt; skip the LF if it comes next.
    skip_lf: bool,
}

impl Default for ServerReader {
    fn default() -> Self {
        ServerReader::new()
    }
}

impl ServerReader {
    /// A reader at the start of a connection.
    pub fn new() -> Self {
        ServerReader {
            framer: Framer::with_limit(MAX_TAGGED_SERVER_LINE_BYTES),
            handshaking: true,
            skip_lf: false,
        }
    }

    /// True until `Connected to the server` has been read.
    pub fn handshaking(&self) -> bool {
        self.handshaking
    }

    /// Feeds bytes read from the server, calling `on_event` for everything completed.
    pub fn push(&mut self, input: &[u8], mut on_event: impl FnMut(Incoming)) {
        self.push_until(input, |e| {
            on_event(e);
            false
        });
    }

    /// Like [`ServerReader::push`], but stops right after the event for which `on_event`
    /// returns true, and returns how many bytes of `input` it consumed: the rest is left
    /// for the caller (e.g. a handshake that hands the stream over to other code).
    pub fn push_until(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(Incoming) -> bool,
    ) -> usize {
        let total = input.len();
        let mut input = input;
        if self.skip_lf && !input.is_empty() {
            self.skip_lf = false;
            if let Some(rest) = input
                .strip_prefix(b"\r\n")
                .or_else(|| input.strip_prefix(b"\n"))
            {
                input = rest;
            }
        }
        loop {
            let (used, frame) = self.framer.advance(input);
            input = input.get(used..).unwrap_or_default();
            let Some(frame) = frame else { break };
            let event = match frame {
                Frame::Line(line) => Incoming::from_line(line),
                Frame::TooLong => Incoming::TooLong,
                Frame::InvalidUtf8 | Frame::InvalidText => Incoming::Invalid,
            };
            if event.message() == Some(&ServerMessage::Connected) {
                self.handshaking = false;
            }
            if on_event(event) {
                return total - input.len();
            }
        }
        if self.handshaking && self.framer.partial() == b"NICK" {
            self.framer.clear_partial();
            self.skip_lf = true;
            on_event(Incoming::Message(ServerMessage::NickPrompt));
        }
        total
    }

    /// Bytes of an unterminated line held when the stream ended (SRV lines always end
    /// with LF, so anything here means the server closed mid-line).
    pub fn partial(&self) -> &[u8] {
        self.framer.partial()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Nickname;

    fn events(reader: &mut ServerReader, chunks: &[&[u8]]) -> Vec<Incoming> {
        let mut out = Vec::new();
        for c in chunks {
            reader.push(c, |e| out.push(e));
        }
        out
    }

    fn joined(n: &str) -> Incoming {
        Incoming::Message(ServerMessage::Joined(Nickname::new(n).unwrap()))
    }

    #[test]
    fn nick_1_prompt_with_lf() {
        let mut r = ServerReader::new();
        let ev = events(&mut r, &[b"NICK\n"]);
        assert_eq!(ev, vec![Incoming::Message(ServerMessage::NickPrompt)]);
        assert!(r.handshaking());
    }

    #[test]
    fn nick_1_prompt_split_before_lf_is_seen_once() {
        let mut r = ServerReader::new();
        let ev = events(
            &mut r,
            &[
                b"NICK",
                b"\nbob has joined the chat\nConnected to the server\n",
            ],
        );
        assert_eq!(
            ev,
            vec![
                Incoming::Message(ServerMessage::NickPrompt),
                joined("bob"),
                Incoming::Message(ServerMessage::Connected)
            ]
        );
        assert!(!r.handshaking());
    }

    #[test]
    fn bare_prompt_of_the_seed_profile() {
        let mut r = ServerReader::new();
        let ev = events(&mut r, &[b"NICK"]);
        assert_eq!(ev, vec![Incoming::Message(ServerMessage::NickPrompt)]);
        // The server sends nothing more until the nickname: the next bytes are the join.
        let ev = events(&mut r, &[b"bob has joined the chat\n"]);
        assert_eq!(ev, vec![joined("bob")]);
    }

    #[test]
    fn nick_after_handshake_is_not_a_prompt() {
        let mut r = ServerReader::new();
        events(&mut r, &[b"NICK\nConnected to the server\n"]);
        assert_eq!(events(&mut r, &[b"NICK"]), vec![]);
        assert_eq!(events(&mut r, &[b"Y: hi\n"]).len(), 1);
    }

    #[test]
    fn push_until_stops_after_the_chosen_event() {
        let mut r = ServerReader::new();
        let input = b"NICK\nConnected to the server\nbob has joined the chat\nhalf";
        let mut seen = Vec::new();
        let used = r.push_until(input, |e| {
            let stop = e == Incoming::Message(ServerMessage::Connected);
            seen.push(e);
            stop
        });
        assert_eq!(&input[used..], b"bob has joined the chat\nhalf");
        assert_eq!(seen.len(), 2);
        assert!(!r.handshaking());
    }

    #[test]
    fn cli_2_unknown_error_code_is_a_non_fatal_error() {
        let mut r = ServerReader::new();
        let ev = events(
            &mut r,
            &[b"ERR history-gone That point is no longer kept\nERR Bad-Code x\nERR nick-taken \n"],
        );
        assert_eq!(
            ev,
            vec![
                Incoming::UnknownError {
                    code: "history-gone".into(),
                    text: Text::new("That point is no longer kept").unwrap()
                },
                Incoming::Unrecognised("ERR Bad-Code x".into()),
                Incoming::Unrecognised("ERR nick-taken ".into()),
            ]
        );
    }

    #[test]
    fn cli_1_unknown_lines_are_reported_for_ignoring() {
        let mut r = ServerReader::new();
        let ev = events(
            &mut r,
            &[b"NICK\nServer motd: hello\n@id=1:1 Topic is now x\nConnected to the server\n"],
        );
        assert_eq!(ev.len(), 4);
        assert!(matches!(ev[1], Incoming::Unrecognised(_)));
        assert!(matches!(ev[2], Incoming::Unrecognised(_)));
        assert!(!r.handshaking());
    }

    #[test]
    fn cli_5_newer_versions_capabilities_and_tags_are_accepted() {
        let mut r = ServerReader::new();
        let ev = events(
            &mut r,
            &[b"Protocol 1.7 capabilities: tags history=500 x-later\n@t=2026-12-02T08:52:04.123Z;zz=9 NICK\n"],
        );
        let Some(ServerMessage::Caps { version, offered }) = ev[0].message() else {
            panic!("{ev:?}")
        };
        assert_eq!(version.to_string(), "1.7");
        assert_eq!(offered.len(), 3);
        assert!(
            matches!(&ev[1], Incoming::Tagged(t, ServerMessage::NickPrompt) if t.other.len() == 1)
        );
    }

    #[test]
    fn tag_1_tagged_lines_are_read() {
        let mut r = ServerReader::new();
        let ev = events(
            &mut r,
            &[b"@id=5:3;t=2026-12-02T08:52:04.123Z;x-new=1 bob has joined the chat\n"],
        );
        let [Incoming::Tagged(tags, msg)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(msg, &ServerMessage::Joined(Nickname::new("bob").unwrap()));
        assert_eq!(tags.id.as_ref().unwrap().as_str(), "5:3");
        assert_eq!(tags.other.len(), 1);
        // A tagged line of the longest kind fits the reader's limit.
        let long = format!(
            "@id={};x={} {}: {}\n",
            "1".repeat(64),
            "v".repeat(440),
            "n".repeat(24),
            "t".repeat(1024)
        );
        assert!(long.len() - 1 <= MAX_TAGGED_SERVER_LINE_BYTES);
        let ev = events(&mut r, &[long.as_bytes()]);
        assert!(matches!(ev.as_slice(), [Incoming::Tagged(..)]), "{ev:?}");
    }

    #[test]
    fn srv_1_unrecognised_and_long_lines_are_reported() {
        let mut r = ServerReader::new();
        let mut long = vec![b'x'; MAX_TAGGED_SERVER_LINE_BYTES + 1];
        long.push(b'\n');
        let ev = events(&mut r, &[b"hello there\n", &long, b"\xff\n"]);
        assert_eq!(
            ev,
            vec![
                Incoming::Unrecognised("hello there".into()),
                Incoming::TooLong,
                Incoming::Invalid
            ]
        );
    }
}
