//! The client side of a connection: a server's byte stream in, typed [`Incoming`] events
//! out. Clients (the GUI, the load tool, the conformance harness) share it so that they
//! all read servers the same way.
//!
//! It accepts the handshake prompt with or without its LF: a server running the seed
//! compatibility profile (spec Appendix B) sends the 4 bytes `NICK` alone and then
//! nothing until it gets a nickname, so waiting for the LF would deadlock. While the
//! handshake is under way, a pending partial line that is exactly `NICK` is taken as the
//! prompt at once; an LF that follows it later is skipped.

use crate::framer::{Frame, Framer};
use crate::limits::MAX_SERVER_LINE_BYTES;
use crate::server::ServerMessage;

/// One thing a server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A line that parsed.
    Message(ServerMessage),
    /// A complete line that is none of the spec's forms (SRV-1), kept for display.
    Unrecognised(String),
    /// A line longer than [`MAX_SERVER_LINE_BYTES`] (SRV-3), skipped.
    TooLong,
    /// A line that was not UTF-8 or held a forbidden character (FRAME-4, FRAME-5).
    Invalid,
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
            framer: Framer::with_limit(MAX_SERVER_LINE_BYTES),
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
                Frame::Line(line) => match ServerMessage::parse(line) {
                    Ok(m) => Incoming::Message(m),
                    Err(_) => Incoming::Unrecognised(line.to_owned()),
                },
                Frame::TooLong => Incoming::TooLong,
                Frame::InvalidUtf8 | Frame::InvalidText => Incoming::Invalid,
            };
            if event == Incoming::Message(ServerMessage::Connected) {
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
    fn srv_1_unrecognised_and_long_lines_are_reported() {
        let mut r = ServerReader::new();
        let mut long = vec![b'x'; MAX_SERVER_LINE_BYTES + 1];
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
