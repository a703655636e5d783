//! One connection's protocol state, without I/O: server bytes go in, [`NetEvent`]s and
//! client bytes come out.
//!
//! Keeping this apart from the socket code means every protocol scenario (a split
//! UTF-8 character, a server that closes mid-line, a rejected nickname, the seed
//! server's unterminated `NICK`) is tested by feeding bytes, with no thread or timing.
//! Every byte is cut and parsed by `chat-proto`; nothing here formats or parses a line.

use chat_proto::caps::CapsAnswer;
use chat_proto::limits::{MAX_LINE_BYTES, MAX_TAGGED_SERVER_LINE_BYTES};
use chat_proto::{
    CapName, ClientMessage, ErrorCode, EventId, Incoming, Nickname, ServerMessage, ServerReader,
    Tags,
};

use crate::net::NetEvent;

/// Where in the connection's life we are (spec §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `Connected to the server`: every line we send is a nickname.
    Handshake,
    /// After it: chat text and commands.
    Chatting,
}

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Still in the handshake: the server would take the line for a nickname.
    #[error("not connected yet")]
    NotChatting,
    /// The encoded line is longer than the spec allows (FRAME-3).
    #[error("the line has {0} bytes; at most {MAX_LINE_BYTES} fit")]
    TooLong(usize),
}

/// See the module documentation.
#[derive(Debug)]
pub struct Session {
    reader: ServerReader,
    phase: Phase,
    /// The nickname to answer the next `NICK` with; taken when used, so that after a
    /// rejection the next prompt waits for the user.
    nick_to_send: Option<Nickname>,
    /// The last nickname sent: the one `Connected to the server` accepts.
    sent_nick: Option<Nickname>,
    /// The server asked for a nickname and none was available yet.
    prompt_pending: bool,
    /// The text of the last `ERR` whose code closes the connection (ERR-2), to say why
    /// the server went away.
    closing_error: Option<(ErrorCode, String)>,
    /// Answers still due to our own `/caps tags` and `/caps history`, sent with the
    /// nickname.
    caps_pending: u8,
    /// `NICK` prompts already answered by a line sent ahead (CAPS-4: the answer to
    /// `/caps` is followed by `NICK` again, which the nickname sent with it answers).
    answered_ahead: u8,
    /// The server enabled `tags` (spec §14): its events come with their time.
    tags: bool,
    /// The server enabled `history` (spec §17): a backlog follows the join.
    history: bool,
    /// The id to hand back with `/resume` (RESUME-1) at this connection's handshake.
    resume: Option<EventId>,
    /// The id of the last live event received: what the next connection resumes from.
    last_live_id: Option<EventId>,
    /// The last bytes of the stream (at most 4): a prompt read while they are `NICK`
    /// is the seed server's bare greeting, not an LF-terminated line.
    tail: Vec<u8>,
}

impl Session {
    /// A fresh connection that will answer the server's `NICK` with `nick`, if given.
    pub fn new(nick: Option<Nickname>) -> Self {
        Session {
            reader: ServerReader::new(),
            phase: Phase::Handshake,
            nick_to_send: nick,
            sent_nick: None,
            prompt_pending: false,
            closing_error: None,
            caps_pending: 0,
            answered_ahead: 0,
            tags: false,
            history: false,
            resume: None,
            last_live_id: None,
            tail: Vec::new(),
        }
    }

    /// Resume after `id` (the last live event of the previous connection to the same
    /// server): sent as `/resume` before the nickname (RESUME-1).
    pub fn resume_from(&mut self, id: Option<EventId>) {
        self.resume = id;
    }

    /// The id of the last live event received, once the server enabled `history` (only
    /// then can a later connection resume from it).
    pub fn resume_point(&self) -> Option<&EventId> {
        self.last_live_id.as_ref().filter(|_| self.history)
    }

    /// True once the server enabled `tags`.
    pub fn tags(&self) -> bool {
        self.tags
    }

    /// Where the connection is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The last `ERR` line whose code closes the connection, if one came.
    pub fn closing_error(&self) -> Option<&(ErrorCode, String)> {
        self.closing_error.as_ref()
    }

    /// Feeds bytes read from the server. Bytes to send back (a nickname answering `NICK`)
    /// are appended to `out`; what the user should see is returned.
    pub fn receive(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Vec<NetEvent> {
        let mut events = Vec::new();
        // chat-proto's reader frames and parses, and takes the seed profile's greeting
        // (`NICK` with no LF, nothing more until we answer) as the prompt.
        let mut incoming = Vec::new();
        self.reader.push(bytes, |e| incoming.push(e));
        self.tail
            .extend_from_slice(bytes.get(bytes.len().saturating_sub(4)..).unwrap_or(bytes));
        let cut = self.tail.len().saturating_sub(4);
        self.tail.drain(..cut);
        let bare_prompt = self.tail == b"NICK";
        for e in incoming {
            match e {
                // Tags come only after `/caps tags`, which this client does not send yet.
                Incoming::Message(msg) => self.on_message(msg, None, bare_prompt, out, &mut events),
                Incoming::Tagged(tags, msg) => {
                    self.on_message(msg, Some(tags), bare_prompt, out, &mut events)
                }
                // An error code newer than this client: shown, not fatal (spec CLI-2).
                Incoming::UnknownError { code, text } => {
                    events.push(NetEvent::Garbled(format!("{text} ({code})")))
                }
                Incoming::Unrecognised(line) => events.push(NetEvent::Garbled(line)),
                Incoming::TooLong => events.push(NetEvent::Garbled(format!(
                    "(a server line longer than {MAX_TAGGED_SERVER_LINE_BYTES} bytes was dropped)"
                ))),
                Incoming::Invalid => events.push(NetEvent::Garbled(
                    "(a server line that is not UTF-8 or holds control characters was dropped)"
                        .into(),
                )),
            }
        }
        events
    }

    fn on_message(
        &mut self,
        msg: ServerMessage,
        tags: Option<Tags>,
        bare_prompt: bool,
        out: &mut Vec<u8>,
        events: &mut Vec<NetEvent>,
    ) {
        if self.caps_pending > 0 {
            if let Some(answer) = CapsAnswer::judge(&msg) {
                // The answer to our own `/caps`: not for the user. From a 1.0 server it
                // is `ERR nick-invalid` (CAPS-5), not a refusal of their nickname; a
                // server without history refuses only that one.
                self.caps_pending -= 1;
                if let CapsAnswer::Enabled(names) = &answer {
                    let has = |c: CapName| names.iter().any(|n| n.as_str() == c.as_str());
                    self.tags |= has(CapName::tags());
                    self.history |= has(CapName::history());
                }
                return;
            }
        }
        match (self.phase, msg) {
            (Phase::Handshake, ServerMessage::NickPrompt) if self.answered_ahead > 0 => {
                self.answered_ahead -= 1;
            }
            (Phase::Handshake, ServerMessage::NickPrompt) => match self.nick_to_send.take() {
                Some(nick) => {
                    // The first prompt of a server that ends its lines (not the seed
                    // server's bare `NICK`, whose server would take `/caps tags` for a
                    // nickname): ask for tags, pipelined with the nickname (CAPS-4).
                    if self.sent_nick.is_none() && !bare_prompt {
                        ClientMessage::Caps(vec![CapName::tags()]).encode(out);
                        ClientMessage::Caps(vec![CapName::history()]).encode(out);
                        self.caps_pending = 2;
                        self.answered_ahead = 2;
                        // Spec RESUME-1: answered by `NICK` alone.
                        if let Some(id) = self.resume.take() {
                            ClientMessage::Resume(id).encode(out);
                            self.answered_ahead += 1;
                        }
                    }
                    self.send_nick(nick, out);
                }
                None => {
                    self.prompt_pending = true;
                    events.push(NetEvent::NickWanted);
                }
            },
            (Phase::Handshake, ServerMessage::Connected) => match self.sent_nick.clone() {
                Some(nick) => {
                    self.phase = Phase::Chatting;
                    events.push(NetEvent::Welcome { nick });
                }
                None => events.push(NetEvent::Garbled(
                    "(the server said we are connected before we gave a nickname)".into(),
                )),
            },
            (Phase::Chatting, ServerMessage::NickPrompt | ServerMessage::Connected) => {
                // NICK-8 puts these in the handshake only; show them rather than act.
                events.push(NetEvent::Garbled(
                    "(unexpected handshake line from the server)".into(),
                ))
            }
            (_, msg) => {
                if let ServerMessage::Error { code, text } = &msg {
                    if code.closes() {
                        self.closing_error = Some((*code, text.as_str().to_owned()));
                    }
                }
                // With tags, an event carries the server's time (TAG-4): shown instead
                // of the time it arrived. An event marked `history` is an earlier one
                // (HIST-3); a live one is where the next connection resumes from.
                let earlier = tags.as_ref().is_some_and(Tags::is_earlier);
                if !earlier {
                    if let Some(id) = tags.as_ref().and_then(|t| t.id.clone()) {
                        self.last_live_id = Some(id);
                    }
                }
                match (tags.and_then(|t| t.time), earlier) {
                    (Some(at), true) => events.push(NetEvent::Earlier {
                        at: at.as_datetime(),
                        msg,
                    }),
                    (Some(at), false) => events.push(NetEvent::Timed {
                        at: at.as_datetime(),
                        msg,
                    }),
                    (None, _) => events.push(NetEvent::Line(msg)),
                }
            }
        }
    }

    fn send_nick(&mut self, nick: Nickname, out: &mut Vec<u8>) {
        nick.encode_line(out);
        self.sent_nick = Some(nick);
        self.prompt_pending = false;
    }

    /// The user chose a nickname (after a rejection): answer a pending `NICK` now, or
    /// keep it for the next one.
    pub fn offer_nick(&mut self, nick: Nickname, out: &mut Vec<u8>) {
        if self.phase != Phase::Handshake {
            return;
        }
        if self.prompt_pending {
            self.send_nick(nick, out);
        } else {
            self.nick_to_send = Some(nick);
        }
    }

    /// Encodes `msg` into `out` if it may be sent now.
    pub fn send(&self, msg: &ClientMessage, out: &mut Vec<u8>) -> Result<(), SendError> {
        if self.phase != Phase::Chatting {
            return Err(SendError::NotChatting);
        }
        let len = msg.encoded_len();
        if len > MAX_LINE_BYTES {
            return Err(SendError::TooLong(len));
        }
        msg.encode(out);
        Ok(())
    }

    /// The server's side of the stream ended. Returns a note when it ended inside a
    /// line, which is then dropped (FRAME-7 applies to both directions in spirit).
    pub fn end_of_stream(&mut self) -> Option<String> {
        let partial = !self.reader.partial().is_empty();
        self.reader = ServerReader::new();
        partial.then(|| "the server closed the connection in the middle of a line".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::Text;
    use chat_proto::limits::MAX_SERVER_LINE_BYTES;

    fn nick(s: &str) -> Nickname {
        Nickname::new(s).unwrap()
    }

    fn feed(s: &mut Session, bytes: &[u8]) -> (Vec<NetEvent>, Vec<u8>) {
        let mut out = Vec::new();
        let ev = s.receive(bytes, &mut out);
        (ev, out)
    }

    #[test]
    fn handshake_answers_prompt_and_welcomes() {
        let mut s = Session::new(Some(nick("alice")));
        let (ev, out) = feed(&mut s, b"NICK\n");
        assert!(ev.is_empty());
        // Tags and history are asked for, pipelined with the nickname (CAPS-4).
        assert_eq!(out, b"/caps tags\n/caps history\nalice\n");
        // A 1.0 server takes each `/caps` for a bad nickname, asks again, and the
        // nickname sent with them answers: nothing of that reaches the user (CAPS-5).
        let (ev, out) = feed(
            &mut s,
            b"ERR nick-invalid Invalid nickname\nNICK\nERR nick-invalid Invalid nickname\nNICK\nalice has joined the chat\nConnected to the server\n",
        );
        assert!(!s.tags());
        assert!(out.is_empty());
        assert_eq!(
            ev,
            vec![
                NetEvent::Line(ServerMessage::Joined(nick("alice"))),
                NetEvent::Welcome {
                    nick: nick("alice")
                }
            ]
        );
        assert_eq!(s.phase(), Phase::Chatting);
    }

    #[test]
    fn rejected_nick_waits_for_user_then_answers() {
        let mut s = Session::new(Some(nick("bob")));
        let (_, out) = feed(&mut s, b"NICK\n");
        assert_eq!(out, b"/caps tags\n/caps history\nbob\n");
        // A server without history refuses only that one.
        let (ev, _) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nERR unknown-capability x\nNICK\n",
        );
        assert!(s.tags());
        assert!(ev.is_empty(), "{ev:?}");
        let (ev, out) = feed(
            &mut s,
            b"ERR nick-taken Nickname bob is already in use\nNICK\n",
        );
        assert!(out.is_empty(), "must not resend a rejected nickname");
        assert_eq!(ev.len(), 2);
        assert!(matches!(
            &ev[0],
            NetEvent::Line(ServerMessage::Error {
                code: ErrorCode::NickTaken,
                ..
            })
        ));
        assert_eq!(ev[1], NetEvent::NickWanted);
        let mut out = Vec::new();
        s.offer_nick(nick("bob2"), &mut out);
        assert_eq!(out, b"bob2\n");
        let (ev, _) = feed(
            &mut s,
            b"bob2 has joined the chat\nConnected to the server\n",
        );
        assert_eq!(ev.last(), Some(&NetEvent::Welcome { nick: nick("bob2") }));
    }

    #[test]
    fn nick_offered_before_prompt_is_kept_for_it() {
        let mut s = Session::new(None);
        let mut out = Vec::new();
        s.offer_nick(nick("carol"), &mut out);
        assert!(out.is_empty());
        let (ev, out) = feed(&mut s, b"NICK\n");
        assert!(ev.is_empty());
        assert_eq!(out, b"/caps tags\n/caps history\ncarol\n");
    }

    /// Spec §17: earlier events come apart from live ones; the last live id is where the
    /// next connection resumes from, sent as `/resume` before the nickname (RESUME-1).
    #[test]
    fn history_earlier_events_and_resume_point() {
        let mut s = Session::new(Some(nick("alice")));
        feed(&mut s, b"NICK\n");
        let (ev, _) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n\
              @id=7:5;t=2026-12-02T08:52:04.123Z alice has joined the chat\n\
              Connected to the server\nEarlier events: 1\n\
              @id=7:4;t=2026-12-01T20:00:00.000Z;history bob: yesterday\nEnd of earlier events\n",
        );
        assert!(
            ev.iter().any(|e| matches!(
                e,
                NetEvent::Earlier {
                    msg: ServerMessage::Chat { .. },
                    ..
                }
            )),
            "{ev:?}"
        );
        // The live join is the resume point, not the earlier line after it.
        assert_eq!(s.resume_point().map(|i| i.as_str()), Some("7:5"));
        let mut next = Session::new(Some(nick("alice")));
        next.resume_from(s.resume_point().cloned());
        let (_, out) = feed(&mut next, b"NICK\n");
        assert_eq!(out, b"/caps tags\n/caps history\n/resume 7:5\nalice\n");
        // `NICK` after each of the three is answered ahead: no prompt reaches the user.
        let (ev, out) = feed(
            &mut next,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\nNICK\n",
        );
        assert!(ev.is_empty() && out.is_empty(), "{ev:?}");
    }

    #[test]
    fn with_tags_events_carry_the_server_time() {
        let mut s = Session::new(Some(nick("alice")));
        feed(&mut s, b"NICK\n");
        let (ev, out) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\n\
              @id=7:1;t=2026-12-01T23:59:30.250Z alice has joined the chat\n\
              Connected to the server\n\
              @id=7:2;t=2026-12-02T00:00:01.000Z;later=x bob: hi\n\
              bob -> alice: untagged private\n",
        );
        assert!(out.is_empty());
        assert!(s.tags());
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        assert_eq!(
            ev,
            vec![
                NetEvent::Timed {
                    at: at("2026-12-01T23:59:30.250Z"),
                    msg: ServerMessage::Joined(nick("alice"))
                },
                NetEvent::Welcome {
                    nick: nick("alice")
                },
                NetEvent::Timed {
                    at: at("2026-12-02T00:00:01Z"),
                    msg: ServerMessage::Chat {
                        from: nick("bob"),
                        text: Text::new("hi").unwrap()
                    }
                },
                NetEvent::Line(ServerMessage::Private {
                    from: nick("bob"),
                    to: nick("alice"),
                    text: Text::new("untagged private").unwrap()
                }),
            ]
        );
    }

    #[test]
    fn seed_compat_unterminated_nick_prompt_is_answered() {
        let mut s = Session::new(Some(nick("dave")));
        let (ev, out) = feed(&mut s, b"NICK");
        assert!(ev.is_empty());
        assert_eq!(out, b"dave\n");
        // A late LF of that prompt is not an empty line.
        let (ev, out) = feed(&mut s, b"\ndave has joined the chat\n");
        assert!(out.is_empty());
        assert_eq!(
            ev,
            vec![NetEvent::Line(ServerMessage::Joined(nick("dave")))]
        );
    }

    #[test]
    fn prompt_split_over_reads_is_answered_once() {
        let mut s = Session::new(Some(nick("erin")));
        let (_, out) = feed(&mut s, b"NI");
        assert!(out.is_empty());
        let (_, out) = feed(&mut s, b"CK");
        assert_eq!(out, b"erin\n");
        let (ev, out) = feed(&mut s, b"\n");
        assert!(ev.is_empty() && out.is_empty(), "{ev:?}");
    }

    #[test]
    fn partial_nick_is_not_a_prompt_once_chatting() {
        let mut s = Session::new(Some(nick("f")));
        feed(
            &mut s,
            b"NICK\nf has joined the chat\nConnected to the server\n",
        );
        let (ev, out) = feed(&mut s, b"NICK");
        assert!(ev.is_empty() && out.is_empty());
        let (ev, _) = feed(&mut s, b"Y: hello\n");
        assert_eq!(
            ev,
            vec![NetEvent::Line(ServerMessage::Chat {
                from: nick("NICKY"),
                text: Text::new("hello").unwrap()
            })]
        );
    }

    #[test]
    fn multibyte_character_split_across_reads() {
        let mut s = Session::new(Some(nick("g")));
        feed(
            &mut s,
            b"NICK\ng has joined the chat\nConnected to the server\n",
        );
        let line = "h: h\u{e9}llo \u{20ac} \u{1f600}\n".as_bytes();
        let mut events = Vec::new();
        for b in line {
            events.extend(feed(&mut s, std::slice::from_ref(b)).0);
        }
        assert_eq!(
            events,
            vec![NetEvent::Line(ServerMessage::Chat {
                from: nick("h"),
                text: Text::new("h\u{e9}llo \u{20ac} \u{1f600}").unwrap()
            })]
        );
    }

    #[test]
    fn long_lines_up_to_the_server_limit_and_beyond() {
        let mut s = Session::new(Some(nick("g")));
        feed(
            &mut s,
            b"NICK\ng has joined the chat\nConnected to the server\n",
        );
        let longest = format!("{}: {}\n", "a".repeat(24), "x".repeat(1024));
        assert_eq!(longest.len() - 1, MAX_SERVER_LINE_BYTES);
        let (ev, _) = feed(&mut s, longest.as_bytes());
        assert!(matches!(
            ev.as_slice(),
            [NetEvent::Line(ServerMessage::Chat { .. })]
        ));
        // The reader also takes tagged lines, up to the tagged limit (spec SRV-3).
        let too_long = format!("a: {}\nb: ok\n", "x".repeat(MAX_TAGGED_SERVER_LINE_BYTES));
        let (ev, _) = feed(&mut s, too_long.as_bytes());
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], NetEvent::Garbled(_)));
        assert!(matches!(&ev[1], NetEvent::Line(ServerMessage::Chat { .. })));
    }

    #[test]
    fn garbage_lines_are_reported_not_fatal() {
        let mut s = Session::new(Some(nick("g")));
        feed(
            &mut s,
            b"NICK\ng has joined the chat\nConnected to the server\n",
        );
        let (ev, _) = feed(&mut s, b"who knows\n\xff\xfe\nx\x1b[31m\nNICK\nok: fine\n");
        assert_eq!(ev.len(), 5, "{ev:?}");
        assert!(ev[..4].iter().all(|e| matches!(e, NetEvent::Garbled(_))));
        assert_eq!(ev[0], NetEvent::Garbled("who knows".into()));
    }

    #[test]
    fn server_closing_mid_line_is_noticed() {
        let mut s = Session::new(Some(nick("g")));
        feed(
            &mut s,
            b"NICK\ng has joined the chat\nConnected to the server\nh: hal",
        );
        assert!(s.end_of_stream().is_some());
        let mut s = Session::new(Some(nick("g")));
        feed(&mut s, b"NICK\n");
        assert_eq!(s.end_of_stream(), None);
    }

    #[test]
    fn closing_error_is_remembered() {
        let mut s = Session::new(Some(nick("g")));
        let (ev, _) = feed(&mut s, b"ERR server-full Server is full; try again later\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(
            s.closing_error(),
            Some(&(
                ErrorCode::ServerFull,
                "Server is full; try again later".to_owned()
            ))
        );
    }

    #[test]
    fn send_only_when_chatting_and_within_limit() {
        let mut s = Session::new(Some(nick("g")));
        let mut out = Vec::new();
        assert_eq!(
            s.send(&ClientMessage::Who, &mut out),
            Err(SendError::NotChatting)
        );
        feed(
            &mut s,
            b"NICK\ng has joined the chat\nConnected to the server\n",
        );
        s.send(&ClientMessage::Who, &mut out).unwrap();
        assert_eq!(out, b"/who\n");
        out.clear();
        let slashy = ClientMessage::Text(Text::new(&format!("/{}", "x".repeat(1023))).unwrap());
        assert_eq!(s.send(&slashy, &mut out), Err(SendError::TooLong(1025)));
        assert!(out.is_empty());
    }
}
