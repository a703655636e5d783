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
    /// Answers still due to the `/caps` lines sent with the nickname (`/caps tags`,
    /// then `/caps history`: two lines, so that a server without history still enables
    /// tags, CAPS-3).
    caps_pending: u8,
    /// The id to resume after (RESUME-1), sent ahead of the nickname at the first prompt.
    resume: Option<EventId>,
    /// `/resume` went out: a 1.0 server answers it with `ERR nick-invalid` before its
    /// `NICK` (CAPS-5), which is not about the user's nickname.
    resume_sent: bool,
    /// The id of the last live event received (a tagged line without `history`): what
    /// the next connection resumes after (RESUME-1).
    last_live: Option<EventId>,
    /// The server enabled `history` (spec §17): a backlog block follows the join.
    history: bool,
    /// `NICK` prompts already answered by a line sent ahead (CAPS-4: the answer to
    /// `/caps` is followed by `NICK` again, which the nickname sent with it answers).
    answered_ahead: u8,
    /// The server enabled `tags` (spec §14): its events come with their time.
    tags: bool,
    /// A `/caps` line got a 1.1 server's answer (CAPS-5): `/caps ping` may be sent after
    /// the join without a 1.0 server taking it for anything.
    caps_known: bool,
    /// `/caps ping` went out after the join and its answer is still due (PING-1).
    ping_pending: bool,
    /// The server enabled `ping` (spec §13.1): its `PING`s are answered here.
    ping: bool,
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
            resume: None,
            resume_sent: false,
            last_live: None,
            history: false,
            answered_ahead: 0,
            tags: false,
            caps_known: false,
            ping_pending: false,
            ping: false,
            tail: Vec::new(),
        }
    }

    /// A fresh connection that also asks to resume after event `id` (RESUME-1), so that
    /// the events missed since that one come after the join.
    pub fn resuming(nick: Option<Nickname>, id: Option<EventId>) -> Self {
        let mut s = Session::new(nick);
        s.resume = id;
        s
    }

    /// True once the server enabled `tags`.
    pub fn tags(&self) -> bool {
        self.tags
    }

    /// True once the server enabled `history`.
    pub fn history(&self) -> bool {
        self.history
    }

    /// True once the server enabled `ping`: its probes are answered (PING-3).
    pub fn ping(&self) -> bool {
        self.ping
    }

    /// The id of the last live event received on this connection, if any (RESUME-1).
    pub fn last_live(&self) -> Option<&EventId> {
        self.last_live.as_ref()
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
                // refusal of `history` (a server with `--history 0`) keeps `tags`.
                self.caps_pending -= 1;
                self.caps_known |= answer != CapsAnswer::Unsupported;
                if let CapsAnswer::Enabled(names) = &answer {
                    let has = |c: CapName| names.iter().any(|n| n.as_str() == c.as_str());
                    self.tags = has(CapName::tags());
                    self.history = has(CapName::history());
                }
                return;
            }
        }
        if self.ping_pending {
            if let Some(answer) = CapsAnswer::judge(&msg) {
                // The answer to our `/caps ping` (sent before any line of the user's,
                // so it comes before their answers, SRV-5); a server that does not
                // offer `ping` refuses it, and then it never probes us (PING-1).
                self.ping_pending = false;
                if let CapsAnswer::Enabled(names) = &answer {
                    self.ping = names.iter().any(|n| n.as_str() == CapName::ping().as_str());
                }
                return;
            }
        }
        if self.phase == Phase::Handshake
            && self.resume_sent
            && self.caps_pending == 0
            && self.answered_ahead == 1
        {
            // The answer to `/resume` comes before its `NICK`: a 1.1 server sends none,
            // a 1.0 server takes the line for an invalid nickname (CAPS-5), and an id
            // the server cannot read is `ERR bad-arguments` (RESUME-1). Either way the
            // outcome the user sees is the gap notice or nothing, not a nickname error.
            if let ServerMessage::Error {
                code: ErrorCode::NickInvalid | ErrorCode::BadArguments,
                ..
            } = &msg
            {
                self.resume_sent = false;
                return;
            }
        }
        if let Some(t) = &tags {
            if !t.is_earlier() {
                if let Some(id) = &t.id {
                    self.last_live = Some(id.clone());
                }
            }
        }
        match (self.phase, msg) {
            (Phase::Handshake, ServerMessage::NickPrompt) if self.answered_ahead > 0 => {
                self.answered_ahead -= 1;
                if self.answered_ahead == 0 {
                    self.resume_sent = false;
                }
            }
            (Phase::Handshake, ServerMessage::NickPrompt) => match self.nick_to_send.take() {
                Some(nick) => {
                    // The first prompt of a server that ends its lines (not the seed
                    // server's bare `NICK`, whose server would take `/caps tags` for a
                    // nickname): ask for tags and history, and resume after the last
                    // event of the previous connection, pipelined with the nickname
                    // (CAPS-4, HIST-5, RESUME-1).
                    if self.sent_nick.is_none() && !bare_prompt {
                        ClientMessage::Caps(vec![CapName::tags()]).encode(out);
                        ClientMessage::Caps(vec![CapName::history()]).encode(out);
                        self.caps_pending = 2;
                        self.answered_ahead = 2;
                        if let Some(id) = self.resume.take() {
                            ClientMessage::Resume(id).encode(out);
                            self.resume_sent = true;
                            self.answered_ahead = 3;
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
                    // PING-1, PING-3: liveness probes, asked for once joined (probes
                    // are for chatting connections), and only of a server that answered
                    // `/caps` as 1.1 did: a 1.0 server would take it for a bad nickname
                    // in the handshake, one more rejected attempt (NICK-6).
                    if self.caps_known {
                        ClientMessage::Caps(vec![CapName::ping()]).encode(out);
                        self.ping_pending = true;
                    }
                }
                None => events.push(NetEvent::Garbled(
                    "(the server said we are connected before we gave a nickname)".into(),
                )),
            },
            // PING-3: answered at once, with the same token; nothing for the user.
            (Phase::Chatting, ServerMessage::Ping(token)) => {
                ClientMessage::Pong(token).encode(out);
            }
            // The answer to a `/ping` (PING-6), which this client does not send.
            (_, ServerMessage::Pong(_)) => {}
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
                // of the time it arrived, with its id (to spot a repeat) and whether it
                // is an earlier event of a block (HIST-3).
                let earlier = tags.as_ref().is_some_and(Tags::is_earlier);
                match (tags, msg) {
                    (_, ServerMessage::Earlier { time, event }) => events.push(NetEvent::Timed {
                        at: time.as_datetime(),
                        id: None,
                        earlier: true,
                        msg: *event,
                    }),
                    (
                        Some(Tags {
                            id, time: Some(at), ..
                        }),
                        msg,
                    ) => events.push(NetEvent::Timed {
                        at: at.as_datetime(),
                        id,
                        earlier,
                        msg,
                    }),
                    (_, msg) => events.push(NetEvent::Line(msg)),
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

    /// A session that has joined as `name` on a 1.0 server (no capabilities).
    fn chatting_as(name: &str) -> Session {
        let mut s = Session::new(Some(nick(name)));
        let joined = format!("NICK\n{name} has joined the chat\nConnected to the server\n");
        feed(&mut s, joined.as_bytes());
        s
    }

    /// What joining as `name` without tags tells the UI: the join line, then welcome.
    fn joined_as(name: &str) -> Vec<NetEvent> {
        vec![
            NetEvent::Line(ServerMessage::Joined(nick(name))),
            NetEvent::Welcome { nick: nick(name) },
        ]
    }

    fn chat(from: &str, text: &str) -> ServerMessage {
        ServerMessage::Chat {
            from: nick(from),
            text: Text::new(text).unwrap(),
        }
    }

    /// A line with the server's time `t` (RFC 3339), live or `earlier` (from a block).
    fn timed(t: &str, id: Option<EventId>, earlier: bool, msg: ServerMessage) -> NetEvent {
        NetEvent::Timed {
            at: at(t),
            id,
            earlier,
            msg,
        }
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
        // Tags are asked for, pipelined with the nickname (CAPS-4).
        assert_eq!(out, b"/caps tags\n/caps history\nalice\n");
        // A 1.0 server takes each `/caps` for a bad nickname, asks again, and the
        // nickname sent with them answers: nothing of that reaches the user (CAPS-5).
        let (ev, out) = feed(
            &mut s,
            b"ERR nick-invalid Invalid nickname\nNICK\nERR nick-invalid Invalid nickname\nNICK\n\
              alice has joined the chat\nConnected to the server\n",
        );
        assert!(!s.tags());
        assert!(out.is_empty());
        assert_eq!(ev, joined_as("alice"));
        assert_eq!(s.phase(), Phase::Chatting);
    }

    /// PING-1, PING-3: once joined on a 1.1 server the session enables `ping` and
    /// answers every `PING` with `/pong` and the same token, showing the user nothing;
    /// a refusal (a server without probes) leaves it off; a 1.0 server is never asked.
    #[test]
    fn ping_3_probes_answered_without_the_user() {
        let mut s = Session::new(Some(nick("alice")));
        feed(&mut s, b"NICK\n");
        let (ev, out) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n\
              @id=7:1;t=2026-12-01T23:59:30.250Z alice has joined the chat\n\
              Connected to the server\n",
        );
        assert_eq!(out, b"/caps ping\n");
        assert_eq!(ev.len(), 2, "{ev:?}");
        // Another user's line may come before the answer; it is shown as usual.
        let (ev, out) = feed(
            &mut s,
            b"bob -> alice: hi\nCapabilities enabled: tags history ping\nPING 1\n",
        );
        assert!(s.ping());
        assert_eq!(out, b"/pong 1\n");
        assert_eq!(ev.len(), 1, "only bob's line reaches the user: {ev:?}");
        let (ev, out) = feed(&mut s, b"PING x:9\nPONG late\n");
        assert_eq!(out, b"/pong x:9\n");
        assert!(ev.is_empty(), "{ev:?}");

        // A 1.1 server that does not offer `ping`: refused, and nothing shown.
        let mut s = Session::new(Some(nick("bob")));
        feed(&mut s, b"NICK\n");
        feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n\
              bob has joined the chat\nConnected to the server\n",
        );
        let (ev, _) = feed(
            &mut s,
            b"ERR unknown-capability Unknown capability; /caps lists the ones this server offers\n",
        );
        assert!(ev.is_empty() && !s.ping(), "{ev:?}");

        // A 1.0 server never receives `/caps ping` (CAPS-5).
        let mut s = Session::new(Some(nick("carol")));
        feed(&mut s, b"NICK\n");
        let (_, out) = feed(
            &mut s,
            b"ERR nick-invalid x\nNICK\nERR nick-invalid x\nNICK\n\
              carol has joined the chat\nConnected to the server\n",
        );
        assert!(out.is_empty() && !s.ping());
    }

    #[test]
    fn rejected_nick_waits_for_user_then_answers() {
        let mut s = Session::new(Some(nick("bob")));
        let (_, out) = feed(&mut s, b"NICK\n");
        assert_eq!(out, b"/caps tags\n/caps history\nbob\n");
        let (ev, _) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n",
        );
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

    #[test]
    fn with_tags_events_carry_the_server_time() {
        let mut s = Session::new(Some(nick("alice")));
        feed(&mut s, b"NICK\n");
        let (ev, out) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n\
              @id=7:1;t=2026-12-01T23:59:30.250Z alice has joined the chat\n\
              Connected to the server\n\
              @id=7:2;t=2026-12-02T00:00:01.000Z;later=x bob: hi\n\
              bob -> alice: untagged private\n",
        );
        assert_eq!(out, b"/caps ping\n", "PING-1: asked for once joined");
        assert!(s.tags());
        assert_eq!(
            ev,
            vec![
                timed(
                    "2026-12-01T23:59:30.250Z",
                    Some(EventId::memory(7, 1)),
                    false,
                    ServerMessage::Joined(nick("alice"))
                ),
                NetEvent::Welcome {
                    nick: nick("alice")
                },
                timed(
                    "2026-12-02T00:00:01Z",
                    Some(EventId::memory(7, 2)),
                    false,
                    chat("bob", "hi")
                ),
                NetEvent::Line(ServerMessage::Private {
                    from: nick("bob"),
                    to: nick("alice"),
                    text: Text::new("untagged private").unwrap()
                }),
            ]
        );
    }

    fn at(t: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    #[test]
    fn resume_goes_ahead_of_the_nickname_and_the_missed_events_come_as_earlier() {
        let mut s = Session::resuming(Some(nick("alice")), Some(EventId::memory(7, 5)));
        let (ev, out) = feed(&mut s, b"NICK\n");
        assert!(ev.is_empty());
        assert_eq!(out, b"/caps tags\n/caps history\n/resume 7:5\nalice\n");
        // A 1.1 server: two capability answers, each with `NICK`, and `/resume`'s `NICK`.
        let (ev, out) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\nNICK\n\
              @id=7:9;t=2026-12-02T10:00:00.000Z alice has joined the chat\n\
              Connected to the server\n\
              Earlier events: 2\n\
              @id=7:6;t=2026-12-02T09:59:00.000Z;history alice has left the chat\n\
              @id=7:8;t=2026-12-02T09:59:30.000Z;history bob: missed\n\
              End of earlier events\n",
        );
        assert_eq!(out, b"/caps ping\n", "the nickname was sent ahead");
        assert!(s.tags() && s.history());
        assert_eq!(
            ev,
            vec![
                timed(
                    "2026-12-02T10:00:00Z",
                    Some(EventId::memory(7, 9)),
                    false,
                    ServerMessage::Joined(nick("alice"))
                ),
                NetEvent::Welcome {
                    nick: nick("alice")
                },
                NetEvent::Line(ServerMessage::HistoryStart(2)),
                timed(
                    "2026-12-02T09:59:00Z",
                    Some(EventId::memory(7, 6)),
                    true,
                    ServerMessage::Left(nick("alice"))
                ),
                timed(
                    "2026-12-02T09:59:30Z",
                    Some(EventId::memory(7, 8)),
                    true,
                    chat("bob", "missed")
                ),
                NetEvent::Line(ServerMessage::HistoryEnd),
            ]
        );
        // The last *live* event is the one to resume after next time, not the newest
        // earlier one (RESUME-1).
        assert_eq!(s.last_live(), Some(&EventId::memory(7, 9)));
        feed(&mut s, b"@id=7:10;t=2026-12-02T10:00:01.000Z bob: live\n");
        assert_eq!(s.last_live(), Some(&EventId::memory(7, 10)));
    }

    #[test]
    fn resume_to_a_server_that_became_1_0_is_no_nickname_error() {
        let mut s = Session::resuming(Some(nick("alice")), Some(EventId::memory(7, 5)));
        feed(&mut s, b"NICK\n");
        let err = b"ERR nick-invalid Invalid nickname\nNICK\n";
        let mut bytes = err.repeat(3);
        bytes.extend_from_slice(b"alice has joined the chat\nConnected to the server\n");
        let (ev, out) = feed(&mut s, &bytes);
        assert!(out.is_empty());
        assert!(!s.tags() && !s.history());
        assert_eq!(ev, joined_as("alice"));
        assert_eq!(s.last_live(), None);
    }

    #[test]
    fn a_server_without_history_still_enables_tags() {
        let mut s = Session::resuming(Some(nick("alice")), Some(EventId::memory(7, 5)));
        feed(&mut s, b"NICK\n");
        let (ev, _) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\n\
              ERR unknown-capability Not offered: history\nNICK\nNICK\n\
              @id=8:1;t=2026-12-02T10:00:00.000Z alice has joined the chat\n\
              Connected to the server\n\
              ERR history-gap Events after 7:5 are not kept\n",
        );
        assert!(s.tags() && !s.history());
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert!(matches!(
            &ev[2],
            NetEvent::Line(ServerMessage::Error {
                code: ErrorCode::HistoryGap,
                ..
            })
        ));
        // A nickname refused after the resume's `NICK` is the user's to fix, not hidden.
        let mut s = Session::resuming(Some(nick("alice")), Some(EventId::memory(7, 5)));
        feed(&mut s, b"NICK\n");
        let (ev, _) = feed(
            &mut s,
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\nNICK\n\
              ERR nick-invalid Reserved\nNICK\n",
        );
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[1], NetEvent::NickWanted);
    }

    #[test]
    fn readable_earlier_events_carry_their_time() {
        let mut s = chatting_as("g");
        let (ev, _) = feed(&mut s, b"[2026-12-02 08:51:10 UTC] bob: hello\n");
        assert_eq!(
            ev,
            vec![timed(
                "2026-12-02T08:51:10Z",
                None,
                true,
                chat("bob", "hello")
            )]
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
        let mut s = chatting_as("f");
        let (ev, out) = feed(&mut s, b"NICK");
        assert!(ev.is_empty() && out.is_empty());
        let (ev, _) = feed(&mut s, b"Y: hello\n");
        assert_eq!(ev, vec![NetEvent::Line(chat("NICKY", "hello"))]);
    }

    #[test]
    fn multibyte_character_split_across_reads() {
        let mut s = chatting_as("g");
        let line = "h: h\u{e9}llo \u{20ac} \u{1f600}\n".as_bytes();
        let mut events = Vec::new();
        for b in line {
            events.extend(feed(&mut s, std::slice::from_ref(b)).0);
        }
        assert_eq!(
            events,
            vec![NetEvent::Line(chat("h", "h\u{e9}llo \u{20ac} \u{1f600}"))]
        );
    }

    #[test]
    fn long_lines_up_to_the_server_limit_and_beyond() {
        let mut s = chatting_as("g");
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
        let mut s = chatting_as("g");
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
