//! The network thread: connects, reads, writes and reconnects, so the UI never blocks.
//!
//! One worker thread owns the current [`Session`] and the socket's write side. Each
//! connection also has a reader thread that connects (a slow connect never holds up the
//! worker) and then blocks in `read`; it hands bytes to the worker through the same
//! channel the UI's [`NetCommand`]s arrive on, so the worker handles everything in one
//! order without locks. Events for the UI go out through an [`EventSink`] (druid's
//! `ExtEventSink` in the app, a channel in tests).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chat_proto::{ClientMessage, ErrorCode, EventId, Nickname, ServerMessage};

use crate::failover::{RetryPolicy, Rotation, ServerList};
use crate::session::{Phase, Session};
use crate::tls::Link;

/// How long one TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write may block before the server counts as gone (it does not read).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two batches of events for the UI. Each batch costs the UI one
/// update and layout of the whole history, so a server sending lines one by one at
/// hundreds per second is shown in at most 20 updates a second; a line after a quiet
/// moment goes out at once.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(50);

/// What the network tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// Opening a connection to `addr`; `attempt` 0 is the first try, then retries.
    Connecting {
        /// The address as the user gave it.
        addr: String,
        /// Retry number.
        attempt: u32,
    },
    /// The TCP connection is up; the handshake starts.
    Opened,
    /// The connection is TLS (spec §19) with this certificate, pinned now (first use) or
    /// earlier (TLS-7).
    Secure(crate::tls::Secure),
    /// The server presented another certificate than the one pinned for it (TLS-7):
    /// refused before any chat byte was sent. A `Disconnected` without a retry follows:
    /// this is a security stop, which only the user's [`NetCommand::Trust`] lifts.
    CertChanged(crate::tls::Changed),
    /// The server asks for a nickname and the one we had was rejected: ask the user.
    NickWanted,
    /// The handshake is done: we are `nick`.
    Welcome {
        /// The accepted nickname.
        nick: Nickname,
    },
    /// A server line (never `NICK` or `Connected to the server`: those are handled).
    Line(ServerMessage),
    /// A server line with the server's time of the event (`tags` enabled, TAG-4), or an
    /// earlier event of a block (HIST-3).
    Timed {
        /// When the server put the event in the chat's order, in UTC.
        at: chrono::DateTime<chrono::Utc>,
        /// The event's id (TAG-3), to recognise it when it comes again.
        id: Option<EventId>,
        /// An earlier event from a block (backlog, resume, `/history`), not a live one.
        earlier: bool,
        /// The line.
        msg: ServerMessage,
    },
    /// A server line that is not valid protocol, or a note on one that was dropped.
    Garbled(String),
    /// A line the user asked to send could not be sent.
    NotSent(String),
    /// The connection is gone (or never came up).
    Disconnected {
        /// Why, in words.
        reason: String,
        /// When the next automatic attempt is, if one is planned.
        retry_in: Option<Duration>,
        /// The server that attempt goes to, when the chat has several servers (a list):
        /// the user sees where the client is going before the status line says so.
        next: Option<String>,
    },
}

/// What the UI asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCommand {
    /// Drop any connection and connect to `addr` as `nick`.
    Connect {
        /// `host:port`, or the chat's servers as `a:9090,b:9090` (tried in turn, see
        /// [`crate::failover`]).
        addr: String,
        /// Nickname to answer `NICK` with.
        nick: Nickname,
    },
    /// Answer the server's pending `NICK` (after a rejection) with this nickname; if the
    /// connection is gone, connect again with it.
    Nick(Nickname),
    /// Send a line.
    Send(ClientMessage),
    /// Connect again now to the last server, as the last nickname.
    Reconnect,
    /// The user accepted a changed certificate (TLS-7): pin `fingerprint` for `server`
    /// (`host:port`) in place of the old pin, then connect again as [`Self::Reconnect`]
    /// does. Only ever sent on the user's explicit request.
    Trust {
        /// `host:port`, as pinned.
        server: String,
        /// The fingerprint to pin: the one the refused certificate had.
        fingerprint: chat_proto::Fingerprint,
    },
    /// Say `/quit` if chatting, close, and end the thread.
    Shutdown,
}

/// Where events for the UI go.
pub trait EventSink: Send + 'static {
    /// Delivers events, in order, as one batch: everything one read from the socket
    /// produced. The UI applies a batch in one update, so a burst of thousands of lines
    /// costs a few redraws, not thousands. Must not block for long.
    fn emit_all(&self, events: Vec<NetEvent>);

    /// Delivers one event.
    fn emit(&self, event: NetEvent) {
        self.emit_all(vec![event]);
    }
}

impl EventSink for Sender<NetEvent> {
    fn emit_all(&self, events: Vec<NetEvent>) {
        for event in events {
            // The UI is gone when this fails; nothing is left to tell.
            let _ = self.send(event);
        }
    }
}

/// The UI's handle on the network thread.
pub struct NetHandle {
    tx: Sender<Input>,
    thread: Option<JoinHandle<()>>,
}

impl NetHandle {
    /// Sends `/quit` if chatting, closes, and waits for the thread to end.
    pub fn shutdown(mut self) {
        let _ = self.tx.send(Input::Cmd(NetCommand::Shutdown));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends [`NetCommand`]s to the network thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct CommandSender {
    tx: Sender<Input>,
}

impl CommandSender {
    /// Queues a command; a no-op once the thread has ended.
    pub fn send(&self, cmd: NetCommand) {
        let _ = self.tx.send(Input::Cmd(cmd));
    }

    /// A sender whose commands land in `tx` instead of a network thread (for tests of
    /// the UI).
    pub fn capture() -> (CommandSender, Receiver<NetCommand>) {
        let (tx, rx) = mpsc::channel::<Input>();
        let (out_tx, out_rx) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(input) = rx.recv() {
                if let Input::Cmd(c) = input {
                    if out_tx.send(c).is_err() {
                        break;
                    }
                }
            }
        });
        (CommandSender { tx }, out_rx)
    }
}

/// The network thread, before it starts: commands can be sent (they wait) while the UI
/// that will receive its events is still being built.
pub struct NetStarter {
    tx: Sender<Input>,
    rx: Receiver<Input>,
}

/// A command sender and the thread that will serve it.
pub fn channel() -> (CommandSender, NetStarter) {
    let (tx, rx) = mpsc::channel();
    (CommandSender { tx: tx.clone() }, NetStarter { tx, rx })
}

impl NetStarter {
    /// Starts the thread; events go to `sink`.
    pub fn start(self, sink: impl EventSink) -> NetHandle {
        let NetStarter { tx, rx } = self;
        let worker_tx = tx.clone();
        let thread = thread::Builder::new()
            .name("chat-net".into())
            .spawn(move || Worker::new(sink, worker_tx).run(rx))
            .ok();
        NetHandle { tx, thread }
    }
}

/// Starts the network thread.
pub fn spawn(sink: impl EventSink) -> (CommandSender, NetHandle) {
    let (commands, starter) = channel();
    (commands, starter.start(sink))
}

/// Everything the worker reacts to, in one channel.
enum Input {
    Cmd(NetCommand),
    Opened {
        id: u64,
        stream: Link,
    },
    ConnectFailed {
        id: u64,
        reason: String,
    },
    CertChanged {
        id: u64,
        changed: crate::tls::Changed,
    },
    Data {
        id: u64,
        bytes: Vec<u8>,
    },
    Closed {
        id: u64,
        error: Option<String>,
    },
}

/// The current connection.
struct Conn {
    id: u64,
    /// The write side; `None` until the reader thread has connected.
    stream: Option<Link>,
    session: Session,
}

/// Where to connect and as whom.
struct Target {
    /// The chat's servers and which one is next (issue 15's failover).
    servers: Rotation,
    nick: Nickname,
}

struct Worker<S: EventSink> {
    sink: S,
    tx: Sender<Input>,
    conn: Option<Conn>,
    next_id: u64,
    target: Option<Target>,
    /// Reconnect automatically when the connection drops: set once a handshake
    /// succeeded, cleared by `/quit` and by handshake failures.
    auto: bool,
    /// The user typed `/quit`: the coming close is expected.
    quitting: bool,
    retry_at: Option<Instant>,
    /// The id of the last live event seen, on any connection to the target: the next
    /// connection resumes after it (RESUME-1), so the transcript has no hole. Cleared
    /// when the user connects anew from the connect screen (maybe to another server).
    resume_from: Option<EventId>,
    /// Events not yet handed to the UI (see [`BATCH_INTERVAL`]).
    outbox: Vec<NetEvent>,
    /// When `outbox` is due.
    flush_at: Option<Instant>,
    /// When the UI last got a batch.
    last_flush: Option<Instant>,
}

impl<S: EventSink> Worker<S> {
    fn new(sink: S, tx: Sender<Input>) -> Self {
        Worker {
            sink,
            tx,
            conn: None,
            next_id: 1,
            target: None,
            auto: false,
            quitting: false,
            retry_at: None,
            resume_from: None,
            outbox: Vec::new(),
            flush_at: None,
            last_flush: None,
        }
    }

    /// Queues events for the UI: at once when the UI has had nothing for
    /// [`BATCH_INTERVAL`], else with whatever else comes until then.
    fn emit(&mut self, events: impl IntoIterator<Item = NetEvent>) {
        self.outbox.extend(events);
        if self.flush_at.is_some() || self.outbox.is_empty() {
            return;
        }
        let now = Instant::now();
        match self
            .last_flush
            .map(|t| t + BATCH_INTERVAL)
            .filter(|&at| at > now)
        {
            Some(at) => self.flush_at = Some(at),
            None => self.flush(),
        }
    }

    fn flush(&mut self) {
        self.flush_at = None;
        if !self.outbox.is_empty() {
            self.sink.emit_all(std::mem::take(&mut self.outbox));
            self.last_flush = Some(Instant::now());
        }
    }

    fn run(mut self, rx: Receiver<Input>) {
        loop {
            let deadline = match (self.retry_at, self.flush_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let input = match deadline {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(i) => Some(i),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(i) => Some(i),
                    Err(_) => break,
                },
            };
            let now = Instant::now();
            if self.flush_at.is_some_and(|at| at <= now) {
                self.flush();
            }
            if self.retry_at.is_some_and(|at| at <= now) {
                self.retry_at = None;
                self.open();
            }
            if let Some(input) = input {
                if !self.handle(input) {
                    break;
                }
            }
        }
        self.close();
        self.flush();
    }

    /// Returns false when the thread should end.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Cmd(NetCommand::Shutdown) => {
                self.send_line(&ClientMessage::Quit);
                return false;
            }
            Input::Cmd(NetCommand::Connect { addr, nick }) => {
                self.close();
                self.retry_at = None;
                self.auto = false;
                // A new chat (maybe other servers): nothing to resume.
                self.resume_from = None;
                match ServerList::parse(&addr) {
                    Ok(list) => {
                        self.target = Some(Target {
                            servers: Rotation::new(list),
                            nick,
                        });
                        self.open();
                    }
                    Err(e) => {
                        self.target = None;
                        self.emit([NetEvent::Disconnected {
                            reason: e.to_string(),
                            retry_in: None,
                            next: None,
                        }]);
                    }
                }
            }
            Input::Cmd(NetCommand::Reconnect) => {
                if let Some(t) = self.target.as_mut() {
                    t.servers.restart();
                    self.open();
                } else {
                    self.emit([NetEvent::NotSent("no server to reconnect to".into())]);
                }
            }
            Input::Cmd(NetCommand::Nick(nick)) => {
                if let Some(t) = self.target.as_mut() {
                    t.nick = nick.clone();
                }
                match self.conn.as_mut() {
                    Some(conn) if conn.session.phase() == Phase::Handshake => {
                        let mut out = Vec::new();
                        conn.session.offer_nick(nick, &mut out);
                        self.write(&out);
                    }
                    _ => {
                        // The server gave up on us (too many attempts, time): start over.
                        if let Some(t) = self.target.as_mut() {
                            t.servers.restart();
                            self.open();
                        }
                    }
                }
            }
            Input::Cmd(NetCommand::Send(msg)) => {
                if msg == ClientMessage::Quit {
                    self.quitting = true;
                    self.auto = false;
                }
                self.send_line(&msg);
            }
            Input::Opened { id, stream } => {
                if let Some(conn) = self.conn.as_mut().filter(|c| c.id == id) {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                    let secure = stream.secure().cloned().map(NetEvent::Secure);
                    conn.stream = Some(stream);
                    self.emit([NetEvent::Opened].into_iter().chain(secure));
                } else {
                    // A connection we gave up on while it was connecting: end its reader.
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Input::Cmd(NetCommand::Trust {
                server,
                fingerprint,
            }) => self.trust(&server, fingerprint),
            Input::CertChanged { id, changed } => {
                if self.conn.as_ref().is_some_and(|c| c.id == id) {
                    self.conn = None;
                    let reason = format!(
                        "the certificate of {} has CHANGED; refused (see the warning)",
                        changed.server
                    );
                    self.emit([NetEvent::CertChanged(changed)]);
                    // Not a network fault: no retry, no next server of a list.
                    self.lost_with(reason, RetryPolicy::Never);
                }
            }
            Input::ConnectFailed { id, reason } => {
                if self.conn.as_ref().is_some_and(|c| c.id == id) {
                    self.conn = None;
                    self.lost(reason);
                }
            }
            Input::Data { id, bytes } => {
                if self.conn.as_ref().is_some_and(|c| c.id == id) {
                    self.on_data(&bytes);
                }
            }
            Input::Closed { id, error } => {
                if let Some(mut conn) = self.conn.take_if(|c| c.id == id) {
                    let mid_line = conn.session.end_of_stream();
                    let reason = match (conn.session.closing_error(), error, mid_line) {
                        (Some((_, text)), _, _) => text.clone(),
                        (None, Some(e), _) => e,
                        (None, None, Some(note)) => note,
                        (None, None, None) => "the server closed the connection".into(),
                    };
                    let code = conn.session.closing_error().map(|(code, _)| *code);
                    if let Some(s) = conn.stream.take() {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    self.lost_with(reason, RetryPolicy::after(code));
                }
            }
        }
        true
    }

    fn on_data(&mut self, bytes: &[u8]) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let events = conn.session.receive(bytes, &mut out);
        if let Some(id) = conn.session.last_live() {
            if self.resume_from.as_ref() != Some(id) {
                self.resume_from = Some(id.clone());
            }
        }
        if !out.is_empty() {
            self.write(&out);
        }
        let mut batch = Vec::with_capacity(events.len());
        for event in events {
            match &event {
                NetEvent::Welcome { nick } => {
                    self.auto = true;
                    if let Some(t) = self.target.as_mut() {
                        t.nick = nick.clone();
                        t.servers.joined();
                    }
                    batch.push(event);
                    self.emit(std::mem::take(&mut batch));
                    // The side panel starts from the server's list (CMD-WHO-1).
                    self.send_line(&ClientMessage::Who);
                    continue;
                }
                NetEvent::Line(ServerMessage::Renamed { old, new })
                | NetEvent::Timed {
                    msg: ServerMessage::Renamed { old, new },
                    earlier: false,
                    ..
                } => {
                    if let Some(t) = self.target.as_mut().filter(|t| t.nick.same_user(old)) {
                        t.nick = new.clone();
                    }
                }
                NetEvent::NickWanted => {
                    if let Some(text) = self.nick_held(&batch) {
                        // Not the user's to fix yet: go away and come back later.
                        batch.pop();
                        self.emit(batch);
                        self.close();
                        self.lost(format!(
                            "{text} (likely by this client's lost connection, not yet gone)"
                        ));
                        return;
                    }
                    self.auto = false;
                }
                _ => {}
            }
            batch.push(event);
        }
        self.emit(batch);
    }

    /// The text of the `ERR nick-taken` that ends `batch` when it refused the nickname
    /// of an automatic reconnection that may still wait for it: after a drop (or, in a
    /// cluster, a dead node) the server holds the name for the lost connection until it
    /// notices it is gone, so the name comes free by itself
    /// ([`Rotation::may_wait_for_nick`]). Asking the user for another name then would
    /// rename them for nothing.
    fn nick_held(&self, batch: &[NetEvent]) -> Option<String> {
        let target = self.target.as_ref()?;
        if !self.auto || !target.servers.may_wait_for_nick() {
            return None;
        }
        match batch.last()? {
            NetEvent::Line(ServerMessage::Error {
                code: ErrorCode::NickTaken,
                text,
            }) => Some(text.as_str().to_owned()),
            _ => None,
        }
    }

    fn send_line(&mut self, msg: &ClientMessage) {
        let Some(conn) = self.conn.as_ref() else {
            if *msg != ClientMessage::Quit {
                self.emit([NetEvent::NotSent("not connected".into())]);
            }
            return;
        };
        let mut out = Vec::new();
        match conn.session.send(msg, &mut out) {
            Ok(()) => self.write(&out),
            Err(e) => {
                if *msg != ClientMessage::Quit {
                    self.emit([NetEvent::NotSent(e.to_string())]);
                }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        if let Err(e) = stream.write_all(bytes) {
            // The reader thread sees the close too; its Closed is then stale and ignored.
            let id = conn.id;
            let _ = stream.shutdown(Shutdown::Both);
            let _ = self.tx.send(Input::Closed {
                id,
                error: Some(format!("write failed: {}", io_reason(&e))),
            });
        }
    }

    /// Pins `fingerprint` for `server` as the user asked (TLS-7), then connects again to
    /// the server whose certificate was refused. When the pin cannot be saved nothing
    /// changes and the user is told why.
    fn trust(&mut self, server: &str, fingerprint: chat_proto::Fingerprint) {
        let saved = match crate::pin::store() {
            Some(store) => store
                .pin(server, fingerprint)
                .map_err(|e| format!("cannot save the pin in {}: {e}", store.path().display())),
            None => Err("no config directory to keep the pin in".to_owned()),
        };
        if let Err(why) = saved {
            self.emit([NetEvent::NotSent(why)]);
            return;
        }
        match self.target.as_mut() {
            Some(t) => {
                t.servers.restart();
                self.open();
            }
            None => self.emit([NetEvent::NotSent("no server to reconnect to".into())]),
        }
    }

    /// Starts a connection to the target, dropping the current one.
    fn open(&mut self) {
        self.close();
        self.retry_at = None;
        self.quitting = false;
        let Some(target) = self.target.as_ref() else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        self.conn = Some(Conn {
            id,
            stream: None,
            session: Session::resuming(Some(target.nick.clone()), self.resume_from.clone()),
        });
        let addr = target.servers.current().to_owned();
        let event = NetEvent::Connecting {
            addr: addr.clone(),
            attempt: target.servers.attempt(),
        };
        self.emit([event]);
        let tx = self.tx.clone();
        let spawned = thread::Builder::new()
            .name("chat-net-read".into())
            .spawn(move || read_loop(id, &addr, &tx));
        if let Err(e) = spawned {
            self.conn = None;
            self.lost(format!("cannot start a thread: {e}"));
        }
    }

    /// Closes the current connection, if any, without telling the UI.
    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            if let Some(s) = conn.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// The connection is gone: tell the UI and plan a retry if we were chatting.
    fn lost(&mut self, reason: String) {
        self.lost_with(reason, RetryPolicy::Backoff);
    }

    /// As [`Self::lost`], with the pause that `retry` asks for: a retry, maybe on
    /// the next server of the list ([`Rotation::after_loss`]), unless the user quit.
    fn lost_with(&mut self, reason: String, retry: RetryPolicy) {
        let quit = std::mem::take(&mut self.quitting);
        let reason = if quit {
            "you left the chat".to_owned()
        } else {
            reason
        };
        if retry == RetryPolicy::Never {
            self.auto = false;
        }
        let retry_in = match self.target.as_mut() {
            Some(t) if !quit => t.servers.after_loss(retry, self.auto),
            _ => None,
        };
        self.retry_at = retry_in.map(|d| Instant::now() + d);
        let next = match (&self.target, retry_in) {
            (Some(t), Some(_)) => t.servers.next_of_several().map(str::to_owned),
            _ => None,
        };
        self.emit([NetEvent::Disconnected {
            reason,
            retry_in,
            next,
        }]);
    }
}

/// The reader thread of connection `id`: connect, then forward every read.
fn read_loop(id: u64, addr: &str, tx: &Sender<Input>) {
    // Plain TCP, or TLS for a `tls://` address (crate::tls).
    let (mut stream, writer) = match crate::tls::open(addr, CONNECT_TIMEOUT) {
        Ok(pair) => pair,
        Err(crate::tls::OpenError::Failed(reason)) => {
            let _ = tx.send(Input::ConnectFailed { id, reason });
            return;
        }
        Err(crate::tls::OpenError::Changed(changed)) => {
            let _ = tx.send(Input::CertChanged { id, changed });
            return;
        }
    };
    if tx.send(Input::Opened { id, stream: writer }).is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Input::Closed { id, error: None });
                return;
            }
            Ok(n) => {
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                if tx.send(Input::Data { id, bytes }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Closed {
                    id,
                    error: Some(io_reason(&e)),
                });
                return;
            }
        }
    }
}

/// Resolves `addr` (`host:port`, or a bare host meaning the default port) and connects
/// to the first address that answers.
pub(crate) fn connect(addr: &str) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = match addr.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => (addr, chat_proto::limits::DEFAULT_PORT)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {addr}: {}", io_reason(&e)))?
            .collect(),
    };
    let mut last = format!("{addr} has no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// An I/O error in words for the user: what happened, without the raw
/// `(os error 111)` that `io::Error`'s own text ends with.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "nothing is accepting connections there (connection refused)".to_owned()
        }
        io::ErrorKind::TimedOut => "no answer (timed out)".to_owned(),
        io::ErrorKind::ConnectionReset => "the connection was reset".to_owned(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error ") {
                Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_without_os_codes() {
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(
            io_reason(&refused),
            "nothing is accepting connections there (connection refused)"
        );
        let other = io::Error::from_raw_os_error(113);
        assert!(
            !io_reason(&other).contains("os error"),
            "{}",
            io_reason(&other)
        );
        assert!(!io_reason(&other).is_empty());
    }
}
