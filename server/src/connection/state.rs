//! A connection's protocol logic with no socket attached: the handshake (§3), chat and
//! commands (§4), framing errors (§2), as a state machine fed with bytes. What it says
//! goes into the hub (public events) or into the connection's private queue (replies).
//! The seed profile's differences are asked of [`Compat`](crate::config::Compat), never
//! tested here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_io::Timer;
use chat_proto::{ClientMessage, Enabled, EventId, Frame, Framer, Nickname, ServerMessage};
use tracing::{debug, info};

use super::Settings;
use super::hold::{Gate, Held, gate};
use crate::flood::Bucket;
use crate::history::{Catchup, Form};
use crate::hub::{Hub, JoinError, Membership, OpOutcome, RenameError};
use crate::idle::Idle;
use crate::liveness::Liveness;
use crate::per_address::HandshakeSlot;
use crate::writer::{Line, Outbox, encode};

/// Where a connection is in §9's state machine.
pub(super) enum Phase {
    /// Waiting for an accepted nickname (NICK-5, NICK-6). `idle` runs while an
    /// unterminated nickname is pending, in a profile that accepts those (COMPAT-2).
    Handshake(Box<Handshake>),
    /// Registered (§4).
    Chatting(Membership),
    /// Done reading for real: the writer flushes and shuts down; input is discarded
    /// (at most `CLOSE_DISCARD` bytes) until end of stream or `linger` after the writer
    /// finished.
    Closing {
        linger: Option<Timer>,
        discarded: usize,
    },
}

/// The handshake's state (boxed in [`Phase`]: a chatting connection, the common idle
/// case, does not carry the room of two timers and a `/resume` id).
pub(super) struct Handshake {
    pub(super) rejected: u32,
    pub(super) deadline: Timer,
    pub(super) idle: Option<Timer>,
    /// ADDR-1: this handshake's place in its address's quota, freed with the state.
    pub(super) _address: HandshakeSlot,
    /// The id of a pre-join `/resume` (RESUME-1), used at the join.
    resume: Option<EventId>,
}

/// What to do after a line.
pub(super) enum Flow {
    Continue,
    Close(&'static str),
}

/// The reading half of a connection: the framer, and the state lines act on (apart, so
/// a line borrowed from the framer can be handled without copying it).
pub(super) struct Core {
    pub(super) framer: Framer,
    pub(super) conn: Conn,
    /// CONN-7: the client's token bucket, asked before each frame in the chatting state.
    pub(super) bucket: Bucket,
    /// A frame that waits for a token, with the rest of its chunk (see `hold.rs`);
    /// boxed, because an idle connection should not carry its room.
    pub(super) held: Option<Box<Held>>,
    /// IDLE-1: time since the last read, when the server has an idle limit (off by
    /// default; boxed, so that a server without one does not carry its timer's room in
    /// every connection).
    pub(super) idle: Option<Box<Idle>>,
}

/// A connection's state as seen by its reader.
pub(super) struct Conn {
    pub(super) hub: Arc<Hub>,
    pub(super) settings: Arc<Settings>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) peer: SocketAddr,
    pub(super) phase: Phase,
    /// The nickname the client asked for at its handshake, when that was a seed nickname
    /// (sent without LF, COMPAT-2): the seed client writes it in front of every line it
    /// sends (COMPAT-3). `None` for a core connection (COMPAT-6).
    asked: Option<Box<str>>,
    /// Capabilities this connection enabled (CAPS-3).
    pub(super) caps: Enabled,
    /// Wrong operator passwords sent on this connection (MOD-2).
    op_failures: u32,
    /// PING-3: the probe of a connection that enabled `ping` (boxed: the others carry a
    /// pointer only).
    pub(super) liveness: Option<Box<Liveness>>,
    /// IDLE-1, PING-7: a line other than `/ping` and `/pong` was handled since the
    /// reader last looked; only such input moves the idle limit.
    pub(super) idle_input: bool,
}

/// Fault injection for tests only (see `Config::panic_trigger`).
#[allow(clippy::panic)]
fn injected_panic() {
    panic!("fault injection: panic_trigger line received");
}

impl Core {
    /// A connection's protocol state right after the greeting was queued in `outbox`.
    pub(super) fn new(
        hub: Arc<Hub>,
        settings: Arc<Settings>,
        outbox: Arc<Outbox>,
        peer: SocketAddr,
        address: HandshakeSlot,
        accepted: Instant,
    ) -> Core {
        let now = Instant::now();
        // NICK-6 (and TLS-4): the limit counts from the accept, a TLS handshake included.
        let deadline = Timer::at(accepted + settings.handshake_timeout);
        let bucket = Bucket::new(settings.flood, now);
        Core {
            framer: Framer::new(),
            bucket,
            held: None,
            idle: Idle::new(settings.idle_timeout, now).map(Box::new),
            conn: Conn {
                hub,
                settings,
                outbox,
                peer,
                phase: Phase::Handshake(Box::new(Handshake {
                    rejected: 0,
                    deadline,
                    idle: None,
                    _address: address,
                    resume: None,
                })),
                asked: None,
                caps: Enabled::default(),
                op_failures: 0,
                liveness: None,
                idle_input: false,
            },
        }
    }

    /// Feeds bytes to the framer and acts on every complete line, in order. A frame the
    /// flood limit holds back stops the loop (see `hold.rs`).
    pub(super) fn feed(&mut self, input: &[u8]) -> Flow {
        self.feed_from(input, false)
    }

    /// [`Core::feed`]; `waited` is true for the rest of a chunk whose earlier line was
    /// held back: its lines waited behind that one, so none of them ends the excess
    /// period (CONN-7), however late the reader gets to them.
    pub(super) fn feed_from(&mut self, mut input: &[u8], waited: bool) -> Flow {
        while !input.is_empty() {
            let (used, frame) = self.framer.advance(input);
            input = input.get(used..).unwrap_or_default();
            let Some(frame) = frame else { break };
            match gate(
                &mut self.bucket,
                &mut self.conn,
                &mut self.held,
                &frame,
                input,
                waited,
            ) {
                Gate::Go => {}
                Gate::Held => return Flow::Continue,
                Gate::Close(flow) => return flow,
            }
            if let Flow::Close(why) = self.conn.on_frame(frame) {
                return Flow::Close(why);
            }
        }
        self.arm_nick_idle();
        Flow::Continue
    }

    /// COMPAT-2: while an unterminated nickname is pending, (re)start the timer after
    /// which it counts as complete.
    fn arm_nick_idle(&mut self) {
        let Some(after) = self.conn.settings.compat.nickname_idle() else {
            return;
        };
        if let Phase::Handshake(h) = &mut self.conn.phase {
            h.idle = self.framer.has_partial().then(|| Timer::after(after));
        }
    }

    /// COMPAT-2: the pending bytes have been idle long enough: they are a seed nickname.
    pub(super) fn take_idle_nickname(&mut self) -> Flow {
        let asked = String::from_utf8_lossy(self.framer.partial()).into_owned();
        self.framer.clear_partial();
        if let Phase::Handshake(h) = &mut self.conn.phase {
            h.idle = None;
        }
        self.conn.on_nickname(&asked, true)
    }
}

impl Conn {
    /// CONN-7: in excess for too long.
    pub(super) fn excess_flood(&mut self) -> Flow {
        self.reply(&self.hub.lines().excess_flood.clone());
        Flow::Close("flooding")
    }

    /// A line for this client alone, after every event appended so far.
    pub(super) fn reply(&self, line: &Line) {
        match &self.phase {
            Phase::Chatting(member) => member.reply(line),
            _ => {
                self.outbox.push(line);
            }
        }
    }

    /// Ends the active part of the connection: the user leaves (telling the others,
    /// CONN-2), the writer sends what is queued and shuts our side down.
    pub(super) fn close(&mut self, why: &'static str) {
        self.end(why);
        self.outbox.close();
    }

    /// The client ended its side (end of stream): like `/quit`, and what was queued for
    /// it is still written, within the linger time.
    pub(super) fn end_of_stream(&mut self) {
        self.end("end of stream");
        self.outbox.close_within(self.settings.close_linger);
    }

    fn end(&mut self, why: &'static str) {
        let old = std::mem::replace(
            &mut self.phase,
            Phase::Closing {
                linger: None,
                discarded: 0,
            },
        );
        match old {
            Phase::Chatting(member) => member.leave(why),
            Phase::Handshake(_) => {
                info!(peer = %self.peer, reason = why, "left during handshake")
            }
            Phase::Closing { .. } => {}
        }
    }

    pub(super) fn on_frame(&mut self, frame: Frame<'_>) -> Flow {
        // PING-7: only a chatting line can be `/ping` or `/pong` (judged when parsed).
        if !matches!((&frame, &self.phase), (Frame::Line(_), Phase::Chatting(_))) {
            self.idle_input = true;
        }
        match frame {
            Frame::Line(line) => self.on_line(line),
            Frame::TooLong => self.on_framing_error(self.hub.lines().line_too_long.clone(), true),
            // These frames end with an LF: a core client's line (COMPAT-6).
            Frame::InvalidUtf8 => {
                self.on_framing_error(self.hub.lines().invalid_utf8.clone(), false)
            }
            Frame::InvalidText => {
                self.on_framing_error(self.hub.lines().invalid_text.clone(), false)
            }
        }
    }

    /// FRAME-3/4/5: answered, the line dropped, the connection stays usable; in the
    /// handshake it is a rejected line (NICK-5).
    fn on_framing_error(&mut self, err: Line, unterminated: bool) -> Flow {
        let handshake = matches!(self.phase, Phase::Handshake(_));
        if handshake && unterminated && self.settings.compat.assigns_nicknames() {
            // COMPAT-2: an over-long nickname may have come without LF, as the seed
            // client sends it: no rejection; the name is made valid instead.
            return self.on_nickname("", true);
        }
        self.reply(&err);
        if handshake {
            self.rejected()
        } else {
            Flow::Continue
        }
    }

    fn on_line(&mut self, line: &str) -> Flow {
        match &mut self.phase {
            Phase::Handshake(_) => match ClientMessage::parse_pre_join(line) {
                // CAPS-4: answered, then prompted again; not a nickname attempt.
                Some(command) => {
                    match command {
                        Ok(ClientMessage::Caps(names)) => self.on_caps(names),
                        // RESUME-1: remembered for the join; the last one counts.
                        Ok(ClientMessage::Resume(id)) => {
                            if let Phase::Handshake(h) = &mut self.phase {
                                h.resume = Some(id);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(reply) = e.reply() {
                                self.reply(&encode(&reply));
                            }
                        }
                    }
                    self.reply(&self.hub.lines().nick_prompt.clone());
                    Flow::Continue
                }
                // An LF-terminated line: a core nickname line (COMPAT-6).
                None => self.on_nickname(line, false),
            },
            Phase::Chatting(_) => self.on_chat_line(line),
            Phase::Closing { .. } => Flow::Continue,
        }
    }

    /// A rejected handshake line was answered; prompt again or give up (NICK-5, NICK-6).
    fn rejected(&mut self) -> Flow {
        let Phase::Handshake(h) = &mut self.phase else {
            return Flow::Continue;
        };
        h.rejected += 1;
        if h.rejected >= self.settings.handshake_attempts {
            self.reply(&self.hub.lines().too_many_attempts.clone());
            return Flow::Close("too many nickname attempts");
        }
        self.reply(&self.hub.lines().nick_prompt.clone());
        Flow::Continue
    }

    /// A handshake line that is not a pre-join command is a nickname, whatever it looks
    /// like (NICK-5). `seed` is true for a seed nickname (no LF, COMPAT-2): only those
    /// are never rejected (COMPAT-4, COMPAT-6).
    pub(super) fn on_nickname(&mut self, line: &str, seed: bool) -> Flow {
        let form = Form::for_tags(self.caps.tags());
        let resume = match &self.phase {
            Phase::Handshake(h) => h.resume.clone(),
            _ => None,
        };
        let catchup = match resume {
            Some(id) => Catchup::Resume(id, form),
            None if self.caps.history() => Catchup::Backlog(form),
            // HIST-6: a seed client gets the backlog without asking, when there is one.
            None if seed && self.settings.compat.assigns_nicknames() => Catchup::BacklogIfAny(form),
            None => Catchup::Nothing,
        };
        let joined = if seed && self.settings.compat.assigns_nicknames() {
            // COMPAT-4: never rejected; an invalid or taken name is replaced by a free
            // variant, and the client is told so.
            self.hub.join_assigned(line, &self.outbox, catchup)
        } else {
            let nick = match Nickname::new(line) {
                Ok(nick) => nick,
                Err(why) => {
                    self.reply(&encode(&ServerMessage::nick_invalid(why)));
                    return self.rejected();
                }
            };
            let joined = self.hub.join_with(nick.clone(), &self.outbox, catchup);
            match joined {
                Err(JoinError::Taken) => {
                    self.reply(&taken(&self.hub, &nick));
                    return self.rejected();
                }
                Err(JoinError::Unavailable) => {
                    self.reply(&encode(&unavailable()));
                    return self.rejected();
                }
                _ => {}
            }
            joined
        };
        match joined {
            Ok(member) => {
                info!(peer = %self.peer, nick = %member.nick(), asked = line, "joined");
                if seed && self.settings.compat.remembers_asked_nickname() {
                    self.asked = Some(line.into());
                }
                self.phase = Phase::Chatting(member);
                Flow::Continue
            }
            Err(JoinError::Taken) => Flow::Close("no free nickname"),
            Err(JoinError::ShuttingDown) => Flow::Close("server shutting down"),
            Err(JoinError::Unavailable) => Flow::Close("cluster unavailable"),
        }
    }

    /// A line in the chatting state: text or a command (§4).
    fn on_chat_line(&mut self, line: &str) -> Flow {
        let Phase::Chatting(member) = &mut self.phase else {
            return Flow::Continue;
        };
        let line = self.settings.compat.chat_text(line, self.asked.as_deref());
        if self.settings.panic_trigger.as_deref() == Some(line) {
            injected_panic();
        }
        let parsed = ClientMessage::parse(line);
        if !matches!(parsed, Ok(ClientMessage::Ping(_) | ClientMessage::Pong(_))) {
            self.idle_input = true;
        }
        // MOD-5: a muted user's text, private lines and renames are refused.
        if matches!(
            parsed,
            Ok(ClientMessage::Text(_) | ClientMessage::Msg { .. } | ClientMessage::Nick(_))
        ) && let Some(refusal) = member.muted_reply()
        {
            member.reply(&refusal);
            return Flow::Continue;
        }
        match parsed {
            Ok(ClientMessage::Op(password)) => {
                if member.op(&password, &mut self.op_failures) == OpOutcome::Close {
                    return Flow::Close("too many wrong operator passwords");
                }
            }
            Ok(ClientMessage::Moderate(cmd)) => member.moderate(cmd),
            Ok(ClientMessage::Text(text)) => {
                debug!(nick = %member.nick(), text = %text, "chat");
                member.say(text);
            }
            Ok(ClientMessage::Who) => member.who(),
            Ok(ClientMessage::Msg { to, text }) => {
                debug!(nick = %member.nick(), to = %to, text = %text, "private");
                if !member.private(&to, text) {
                    member.reply(&encode(&ServerMessage::no_such_nick(&to)));
                }
            }
            Ok(ClientMessage::Nick(new)) => match member.rename(new.clone()) {
                Ok(()) => {}
                Err(RenameError::Taken) => member.reply(&taken(&self.hub, &new)),
                Err(RenameError::Unchanged) => {
                    member.reply(&encode(&ServerMessage::nick_unchanged(&new)))
                }
                Err(RenameError::Gone) => {}
                Err(RenameError::Unavailable) => member.reply(&encode(&unavailable())),
            },
            Ok(ClientMessage::Quit) => return Flow::Close("quit"),
            Ok(ClientMessage::Caps(names)) => self.on_caps(names),
            Ok(ClientMessage::History(count)) => {
                member.history(count, Form::for_tags(self.caps.tags()))
            }
            // PING-6: for anyone, to measure the round trip.
            Ok(ClientMessage::Ping(token)) => member.reply(&encode(&ServerMessage::Pong(token))),
            // PING-5: the last PING's token is accepted silently, even late or twice.
            Ok(ClientMessage::Pong(token)) => {
                if !self.liveness.as_ref().is_some_and(|l| l.answers(&token)) {
                    member.reply(&encode(&ServerMessage::error(
                        chat_proto::ErrorCode::BadArguments,
                        chat_proto::server::texts::NO_SUCH_PING,
                    )));
                }
            }
            Ok(ClientMessage::Resume(_)) => member.reply(&encode(&ServerMessage::error(
                chat_proto::ErrorCode::BadArguments,
                chat_proto::server::texts::RESUME_TOO_LATE,
            ))),
            Err(e) => {
                if let Some(reply) = e.reply() {
                    member.reply(&encode(&reply));
                }
            }
        }
        Flow::Continue
    }
}

/// `ERR nick-taken` naming the online user who holds `nick` or a lookalike of it
/// (NICK-3, NICK-LOOK-1).
fn taken(hub: &Hub, nick: &Nickname) -> Line {
    encode(&match hub.holder(nick) {
        Some(holder) => ServerMessage::nick_taken_by(nick, &holder),
        None => ServerMessage::nick_taken(nick),
    })
}

/// `ERR unavailable` (CLUSTER-5): a node of a cluster could not reach Redis in time.
fn unavailable() -> ServerMessage {
    ServerMessage::error(
        chat_proto::ErrorCode::Unavailable,
        chat_proto::server::texts::UNAVAILABLE,
    )
}
