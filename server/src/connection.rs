//! One connection: its handshake (§3) and its read loop (§4), plus the glue that runs its
//! reader and its writer as two tasks that cannot take the server down.
//!
//! The reader is a hand-written future so that the read buffer lives on the executor
//! thread's stack only while bytes are being processed: an idle connection holds no read
//! buffer at all, just its [`Framer`] (which allocates nothing until bytes arrive). Each
//! chunk read is framed and acted on synchronously; the only waits are for the socket and
//! for the handshake deadline.
//!
//! Reader and writer are separate tasks so that a wake-up for output never costs a
//! `read` syscall and the other way round. They share the socket and the [`Outbox`].
//! Both are wrapped in `catch_unwind`: a panic in either is logged, the other is told to
//! stop, and the user's [`Membership`] leaves exactly once when its owner is dropped.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::{Async, Timer};
use chat_proto::{ClientMessage, Frame, Framer, Nickname, ServerMessage};
use futures_lite::{AsyncRead, FutureExt};
use smol::Executor;
use tracing::{debug, error, info};

use crate::config::{Compat, Config};
use crate::flood::{Admit, Bucket, FloodLimit, weight};
use crate::hub::{Hub, JoinError, Membership, RenameError, Slot};
use crate::outbox::{Line, Outbox, Writer, WriterEnd, encode};
use crate::per_address::{AddressSlot, Admission, HandshakeSlot};

/// Bytes read per `read` call, into a buffer on the stack (not kept while idle).
const READ_CHUNK: usize = 8 * 1024;

/// Reads per poll before the reader yields to other tasks (fairness under a flood).
const READS_PER_POLL: usize = 8;

/// Settings a connection needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct Settings {
    pub sendq: usize,
    pub handshake_timeout: std::time::Duration,
    pub handshake_attempts: u32,
    pub close_flush_timeout: std::time::Duration,
    pub close_linger: std::time::Duration,
    pub compat: Compat,
    pub flood: FloodLimit,
    pub panic_trigger: Option<String>,
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Settings {
        Settings {
            sendq: c.sendq,
            handshake_timeout: c.handshake_timeout,
            handshake_attempts: c.handshake_attempts,
            close_flush_timeout: c.close_flush_timeout,
            close_linger: c.close_linger,
            compat: c.compat,
            flood: c.flood,
            panic_trigger: c.panic_trigger.clone(),
        }
    }
}

/// What both tasks of a connection share. The socket closes, and the slot under
/// `max_clients` is freed, when both have ended.
struct Shared {
    stream: Arc<Async<TcpStream>>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    _slot: Slot,
    _address: AddressSlot,
}

/// Starts the reader and writer tasks of an accepted, attached connection.
// Each argument is one thing the listener hands over; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn(
    ex: &Executor<'static>,
    hub: Arc<Hub>,
    settings: Arc<Settings>,
    stream: Arc<Async<TcpStream>>,
    outbox: Arc<Outbox>,
    slot: Slot,
    admission: Admission,
    peer: SocketAddr,
) {
    let shared = Arc::new(Shared {
        stream,
        outbox,
        peer,
        _slot: slot,
        _address: admission.connection,
    });

    let writer = Writer::new(
        shared.outbox.clone(),
        shared.stream.clone(),
        settings.close_flush_timeout,
    );
    let guard = StopOnDrop {
        shared: shared.clone(),
        kill: true,
    };
    ex.spawn(async move {
        let guard = guard;
        match AssertUnwindSafe(writer).catch_unwind().await {
            Ok(WriterEnd::Failed(e)) => {
                debug!(peer = %guard.shared.peer, error = %e, "write failed")
            }
            Ok(WriterEnd::FlushTimeout) => {
                info!(peer = %guard.shared.peer, "closed: did not take its last lines in time")
            }
            Ok(end) => debug!(peer = %guard.shared.peer, ?end, "writer done"),
            Err(_) => error!(peer = %guard.shared.peer, "writer task panicked; connection closed"),
        }
    })
    .detach();

    greet(&hub, &settings, &shared.outbox);
    let core = Core::new(
        hub,
        settings,
        shared.outbox.clone(),
        shared.peer,
        admission.handshake,
    );
    let reader = Reader {
        core,
        stream: shared.stream.clone(),
    };
    let guard = StopOnDrop {
        shared,
        kill: false,
    };
    ex.spawn(async move {
        let guard = guard;
        if AssertUnwindSafe(reader).catch_unwind().await.is_err() {
            // The reader (and so its Membership) is dropped by now: the user has left.
            error!(peer = %guard.shared.peer, "connection task panicked; connection closed");
        }
    })
    .detach();
}

/// Queues the prompt, which goes out before the first read (NICK-1; COMPAT-1: bare,
/// and alone).
fn greet(hub: &Hub, settings: &Settings, outbox: &Outbox) {
    match settings.compat {
        Compat::Standard => {
            outbox.push(&hub.lines().nick_prompt);
        }
        Compat::Seed => {
            outbox.push(&hub.lines().seed_greeting);
        }
    }
}

/// A connection's protocol logic with no socket attached: what the server does with the
/// bytes a client sends (handshake §3, chat and commands §4, framing errors §2), and the
/// lines it queues in reply, to this client and to others on the same [`Hub`]. The
/// server's reading task wraps exactly this logic; the structure-aware fuzz target
/// (`fuzz/fuzz_targets/connection.rs`) drives it directly, with many clients at once.
///
/// Not applied here, because they need a clock: the handshake time limit, the seed
/// profile's idle nickname (COMPAT-2) and the flood limit (which is turned off).
pub struct Detached {
    core: Core,
    _slot: Slot,
}

impl Detached {
    /// Opens a connection on `hub` as the listener does: takes a slot, creates the
    /// outbox and queues the greeting. `None` when the hub is full or shutting down.
    pub fn open(hub: &Arc<Hub>, config: &Config) -> Option<Detached> {
        let mut settings = Settings::from_config(config);
        settings.flood = FloodLimit::off();
        let settings = Arc::new(settings);
        let outbox = hub.new_outbox(config.sendq);
        let slot = hub.attach(&outbox).ok()?;
        greet(hub, &settings, &outbox);
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        Some(Detached {
            core: Core::new(
                hub.clone(),
                settings,
                outbox,
                peer,
                Admission::unlimited().handshake,
            ),
            _slot: slot,
        })
    }

    /// Acts on bytes the client sent. Returns false once the connection is closed (by a
    /// `/quit`, a closing error, or a queue overflow).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if matches!(self.core.conn.phase, Phase::Closing { .. }) {
            return false;
        }
        if !self.core.conn.outbox.is_open() {
            self.core.conn.close("connection closed by server");
            return false;
        }
        if let Flow::Close(why) = self.core.feed(bytes) {
            self.core.conn.close(why);
            return false;
        }
        true
    }

    /// The client's side of the stream ends: an unterminated line is dropped (FRAME-7)
    /// and the user leaves (CONN-2).
    pub fn end(&mut self) {
        if !matches!(self.core.conn.phase, Phase::Closing { .. }) {
            self.core.conn.close("end of stream");
        }
    }

    /// The queue of lines for this client.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.core.conn.outbox
    }
}

/// Makes sure the other half of a connection stops when one half ends, however it ends
/// (including a panic): the reader's end lets the writer flush and close; the writer's
/// end (or crash) shuts the socket so the reader wakes up and ends too.
struct StopOnDrop {
    shared: Arc<Shared>,
    kill: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.kill {
            self.shared.outbox.kill();
            let _ = self.shared.stream.get_ref().shutdown(Shutdown::Both);
        } else {
            self.shared.outbox.close();
        }
    }
}

/// Fault injection for tests only (see `Config::panic_trigger`).
#[allow(clippy::panic)]
fn injected_panic() {
    panic!("fault injection: panic_trigger line received");
}

/// Where a connection is in §9's state machine.
enum Phase {
    /// Waiting for an accepted nickname (NICK-5, NICK-6). `idle` runs in the seed
    /// profile while an unterminated nickname is pending (COMPAT-2).
    Handshake {
        rejected: u32,
        deadline: Timer,
        idle: Option<Timer>,
        /// ADDR-1: this handshake's place in its address's quota, freed with the state.
        _address: HandshakeSlot,
    },
    /// Registered (§4).
    Chatting(Membership),
    /// Done reading for real: the writer flushes and shuts down; input is discarded
    /// until end of stream or until `linger` after the writer finished.
    Closing { linger: Option<Timer> },
}

/// What to do after a line.
enum Flow {
    Continue,
    Close(&'static str),
}

/// The reading half of a connection: the framer, and the state lines act on (apart, so
/// a line borrowed from the framer can be handled without copying it).
struct Core {
    framer: Framer,
    conn: Conn,
    /// CONN-7: the client's token bucket, asked before each frame in the chatting state.
    bucket: Bucket,
    /// A frame that must wait for a token, with the rest of its chunk: while it waits,
    /// nothing more is read from the socket, which pushes back on the client through TCP.
    held: Option<Held>,
}

/// Input put aside by the flood limit (CONN-7): never dropped, only delayed.
struct Held {
    frame: OwnedFrame,
    rest: Vec<u8>,
    timer: Timer,
}

/// A [`Frame`] that outlives the framer's buffer.
enum OwnedFrame {
    Line(String),
    TooLong,
    InvalidUtf8,
    InvalidText,
}

impl OwnedFrame {
    fn new(frame: &Frame<'_>) -> OwnedFrame {
        match frame {
            Frame::Line(l) => OwnedFrame::Line((*l).to_owned()),
            Frame::TooLong => OwnedFrame::TooLong,
            Frame::InvalidUtf8 => OwnedFrame::InvalidUtf8,
            Frame::InvalidText => OwnedFrame::InvalidText,
        }
    }

    fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Line(l) => Frame::Line(l),
            OwnedFrame::TooLong => Frame::TooLong,
            OwnedFrame::InvalidUtf8 => Frame::InvalidUtf8,
            OwnedFrame::InvalidText => Frame::InvalidText,
        }
    }
}

/// A connection's state as seen by its reader.
struct Conn {
    hub: Arc<Hub>,
    settings: Arc<Settings>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    phase: Phase,
    /// Seed profile: the nickname the client asked for, which it writes in front of
    /// every line it sends (COMPAT-3).
    asked: Option<String>,
}

impl Core {
    /// A connection's protocol state right after the greeting was queued in `outbox`.
    fn new(
        hub: Arc<Hub>,
        settings: Arc<Settings>,
        outbox: Arc<Outbox>,
        peer: SocketAddr,
        address: HandshakeSlot,
    ) -> Core {
        let now = Instant::now();
        let deadline = Timer::at(now + settings.handshake_timeout);
        let bucket = Bucket::new(settings.flood, now);
        Core {
            framer: Framer::new(),
            bucket,
            held: None,
            conn: Conn {
                hub,
                settings,
                outbox,
                peer,
                phase: Phase::Handshake {
                    rejected: 0,
                    deadline,
                    idle: None,
                    _address: address,
                },
                asked: None,
            },
        }
    }

    /// Feeds bytes to the framer and acts on every complete line.
    ///
    /// In the chatting state the flood limit (CONN-7) is asked before each frame is
    /// acted on. When it says "wait", the frame and the rest of `input` (which lives on
    /// the stack) are put aside in [`Held`] and reading stops until a token arrives.
    fn feed(&mut self, mut input: &[u8]) -> Flow {
        while !input.is_empty() {
            let (used, frame) = self.framer.advance(input);
            input = input.get(used..).unwrap_or_default();
            let Some(frame) = frame else { break };
            if self.bucket.limited() && matches!(self.conn.phase, Phase::Chatting(_)) {
                match self.bucket.admit(Instant::now(), false, weight(&frame)) {
                    Admit::Go => {}
                    Admit::Wait { wait, first } => {
                        if first {
                            self.conn.reply(&self.conn.hub.lines().flood.clone());
                        }
                        self.held = Some(Held {
                            frame: OwnedFrame::new(&frame),
                            rest: input.to_vec(),
                            timer: Timer::after(wait),
                        });
                        return Flow::Continue;
                    }
                    Admit::Disconnect => return self.conn.excess_flood(),
                }
            }
            if let Flow::Close(why) = self.conn.on_frame(frame) {
                return Flow::Close(why);
            }
        }
        self.arm_nick_idle();
        Flow::Continue
    }

    /// Seed profile (COMPAT-2): while an unterminated nickname is pending, (re)start the
    /// timer after which it counts as complete.
    fn arm_nick_idle(&mut self) {
        if self.conn.settings.compat != Compat::Seed {
            return;
        }
        if let Phase::Handshake { idle, .. } = &mut self.conn.phase {
            *idle = self
                .framer
                .has_partial()
                .then(|| Timer::after(chat_proto::seed::NICK_IDLE));
        }
    }

    /// Seed profile (COMPAT-2): the pending bytes have been idle long enough: they are
    /// the nickname.
    fn take_idle_nickname(&mut self) -> Flow {
        let asked = String::from_utf8_lossy(self.framer.partial()).into_owned();
        self.framer.clear_partial();
        if let Phase::Handshake { idle, .. } = &mut self.conn.phase {
            *idle = None;
        }
        self.conn.on_nickname(&asked)
    }

    /// Acts on the held frame once the bucket has a token (CONN-7). Returns `Pending`
    /// while it must still wait, `Ready` with what to do next otherwise.
    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Flow> {
        let Some(held) = self.held.as_mut() else {
            return Poll::Ready(Flow::Continue);
        };
        if !matches!(self.conn.phase, Phase::Chatting(_)) {
            self.held = None;
            return Poll::Ready(Flow::Continue);
        }
        loop {
            if Pin::new(&mut held.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            match self
                .bucket
                .admit(Instant::now(), true, weight(&held.frame.frame()))
            {
                Admit::Go => break,
                Admit::Wait { wait, .. } => held.timer = Timer::after(wait),
                Admit::Disconnect => {
                    self.held = None;
                    return Poll::Ready(self.conn.excess_flood());
                }
            }
        }
        let Some(held) = self.held.take() else {
            return Poll::Ready(Flow::Continue);
        };
        if let Flow::Close(why) = self.conn.on_frame(held.frame.frame()) {
            return Poll::Ready(Flow::Close(why));
        }
        Poll::Ready(self.feed(&held.rest))
    }
}

impl Conn {
    /// CONN-7: in excess for too long.
    fn excess_flood(&mut self) -> Flow {
        self.reply(&self.hub.lines().excess_flood.clone());
        Flow::Close("flooding")
    }

    fn reply(&self, line: &Line) {
        match &self.phase {
            Phase::Chatting(member) => member.reply(line),
            _ => {
                self.outbox.push(line);
            }
        }
    }

    /// Ends the active part of the connection: the user leaves (telling the others,
    /// CONN-2), the writer sends what is queued and shuts our side down.
    fn close(&mut self, why: &'static str) {
        let old = std::mem::replace(&mut self.phase, Phase::Closing { linger: None });
        match old {
            Phase::Chatting(member) => member.leave(why),
            Phase::Handshake { .. } => {
                info!(peer = %self.peer, reason = why, "left during handshake")
            }
            Phase::Closing { .. } => {}
        }
        self.outbox.close();
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Flow {
        match frame {
            Frame::Line(line) => self.on_line(line),
            Frame::TooLong => self.on_framing_error(self.hub.lines().line_too_long.clone()),
            Frame::InvalidUtf8 => self.on_framing_error(self.hub.lines().invalid_utf8.clone()),
            Frame::InvalidText => self.on_framing_error(self.hub.lines().invalid_text.clone()),
        }
    }

    /// FRAME-3/4/5: answered, the line dropped, the connection stays usable; in the
    /// handshake it is a rejected line (NICK-5).
    fn on_framing_error(&mut self, err: Line) -> Flow {
        if self.settings.compat == Compat::Seed && matches!(self.phase, Phase::Handshake { .. }) {
            // COMPAT-2: no rejection in the seed profile; the name is made valid instead.
            return self.on_nickname("");
        }
        self.reply(&err);
        match self.phase {
            Phase::Handshake { .. } => self.rejected(),
            _ => Flow::Continue,
        }
    }

    fn on_line(&mut self, line: &str) -> Flow {
        match &mut self.phase {
            Phase::Handshake { .. } => self.on_nickname(line),
            Phase::Chatting(_) => self.on_chat_line(line),
            Phase::Closing { .. } => Flow::Continue,
        }
    }

    /// A rejected handshake line was answered; prompt again or give up (NICK-5, NICK-6).
    fn rejected(&mut self) -> Flow {
        let Phase::Handshake { rejected, .. } = &mut self.phase else {
            return Flow::Continue;
        };
        *rejected += 1;
        if *rejected >= self.settings.handshake_attempts {
            self.reply(&self.hub.lines().too_many_attempts.clone());
            return Flow::Close("too many nickname attempts");
        }
        self.reply(&self.hub.lines().nick_prompt.clone());
        Flow::Continue
    }

    /// A handshake line is a nickname, whatever it looks like (NICK-5).
    fn on_nickname(&mut self, line: &str) -> Flow {
        if self.settings.compat == Compat::Seed {
            return self.on_seed_nickname(line);
        }
        let nick = match Nickname::new(line) {
            Ok(nick) => nick,
            Err(why) => {
                self.reply(&encode(&ServerMessage::nick_invalid(why)));
                return self.rejected();
            }
        };
        match self.hub.join(nick.clone(), &self.outbox) {
            Ok(member) => {
                info!(peer = %self.peer, nick = %nick, "joined");
                self.phase = Phase::Chatting(member);
                Flow::Continue
            }
            Err(JoinError::Taken) => {
                self.reply(&taken(&self.hub, &nick));
                self.rejected()
            }
            Err(JoinError::ShuttingDown) => Flow::Close("server shutting down"),
        }
    }

    /// Seed profile (COMPAT-4): never rejected; an invalid or taken name is replaced by
    /// a free variant, and the client is told so.
    fn on_seed_nickname(&mut self, asked: &str) -> Flow {
        match self.hub.join_assigned(asked, &self.outbox) {
            Ok(member) => {
                info!(peer = %self.peer, nick = %member.nick(), asked, "joined (seed profile)");
                self.asked = Some(asked.to_owned());
                self.phase = Phase::Chatting(member);
                Flow::Continue
            }
            Err(JoinError::Taken) => Flow::Close("no free nickname"),
            Err(JoinError::ShuttingDown) => Flow::Close("server shutting down"),
        }
    }

    /// A line in the chatting state: text or a command (§4).
    fn on_chat_line(&mut self, line: &str) -> Flow {
        let Phase::Chatting(member) = &mut self.phase else {
            return Flow::Continue;
        };
        // COMPAT-3: the old client's own `<asked>: ` prefix, removed once.
        let line = match &self.asked {
            Some(asked) => chat_proto::seed::strip_own_prefix(line, asked),
            None => line,
        };
        if self.settings.panic_trigger.as_deref() == Some(line) {
            injected_panic();
        }
        match ClientMessage::parse(line) {
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
            },
            Ok(ClientMessage::Quit) => return Flow::Close("quit"),
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

/// The reading task of a connection: the socket-free [`Core`] plus the socket it reads.
struct Reader {
    core: Core,
    stream: Arc<Async<TcpStream>>,
}

impl Reader {
    /// Discards input while closing; ready when the connection can be let go.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_POLL {
            if self.core.conn.outbox.poll_writer_done(cx.waker()) {
                let linger = self.core.conn.settings.close_linger;
                let Phase::Closing { linger: timer } = &mut self.core.conn.phase else {
                    return Poll::Ready(());
                };
                let timer = timer.get_or_insert_with(|| Timer::after(linger));
                if Pin::new(timer).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            match Pin::new(&mut &*self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Future for Reader {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let reader = self.get_mut();
        // On the stack only while this poll runs: idle connections hold no read buffer.
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_POLL {
            match &mut reader.core.conn.phase {
                Phase::Closing { .. } => return reader.poll_closing(cx),
                Phase::Handshake { deadline, idle, .. } => {
                    if Pin::new(deadline).poll(cx).is_ready() {
                        // NICK-6: total time for the whole handshake, not per attempt.
                        let timeout = reader.core.conn.hub.lines().handshake_timeout.clone();
                        reader.core.conn.reply(&timeout);
                        reader.core.conn.close("handshake timeout");
                        continue;
                    }
                    if idle
                        .as_mut()
                        .is_some_and(|t| Pin::new(t).poll(cx).is_ready())
                    {
                        if let Flow::Close(why) = reader.core.take_idle_nickname() {
                            reader.core.conn.close(why);
                        }
                        continue;
                    }
                }
                Phase::Chatting(_) => {}
            }
            if !reader.core.conn.outbox.is_open() {
                // Cut off (queue overflow, write error) or shutting down: stop acting on
                // input; the writer has the last word.
                reader.core.conn.close("connection closed by server");
                continue;
            }
            // CONN-7: held input goes first; nothing is read while it waits.
            match reader.core.poll_held(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Flow::Close(why)) => {
                    reader.core.conn.close(why);
                    continue;
                }
                Poll::Ready(Flow::Continue) => {}
            }
            if reader.core.held.is_some() {
                continue;
            }
            let read = Pin::new(&mut &*reader.stream).poll_read(cx, &mut buf);
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    // FRAME-7: an unterminated last line is dropped unanswered.
                    reader.core.conn.close("end of stream");
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    debug!(peer = %reader.core.conn.peer, error = %e, "read failed");
                    reader.core.conn.close("connection reset");
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(n)) => {
                    let chunk = buf.get(..n).unwrap_or_default();
                    if let Flow::Close(why) = reader.core.feed(chunk) {
                        reader.core.conn.close(why);
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
