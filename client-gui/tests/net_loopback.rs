//! The network thread against scripted servers on 127.0.0.1: each test plays one
//! protocol scenario byte by byte (what a real server, a seed-compatible one or a broken
//! one would send) and checks what the client sends back and what it tells the UI.
//! Every wait is bounded.

#![cfg(test)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chat_client_gui::net::{self, NetCommand, NetEvent, NetHandle};
use chat_client_gui::state::{AppState, ThemeChoice, stamp};
use chat_proto::{ClientMessage, ErrorCode, Nickname, ServerMessage, Text};

const WAIT: Duration = Duration::from_secs(10);

fn nick(s: &str) -> Nickname {
    Nickname::new(s).unwrap()
}

/// A listener on a free loopback port.
fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// One accepted connection, seen from the server's side.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    fn accept(l: &TcpListener) -> Peer {
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no connection came");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        // Each write its own segment, as a server flushing line by line would send.
        stream.set_nodelay(true).unwrap();
        Peer {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line the client sent, with its LF.
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).unwrap();
        s
    }

    /// True when the client closed its side (after anything still unread).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }

    /// The start of a 1.1 server's handshake: `NICK`, then `/caps tags`,
    /// `/caps history` and `name` pipelined by the client (CAPS-4); this server offers
    /// no history (`--history 0`), so only tags are enabled; `NICK` after each answer.
    fn greet(&mut self, name: &str) {
        self.send(b"NICK\n");
        assert_eq!(self.line(), "/caps tags\n");
        assert_eq!(self.line(), "/caps history\n");
        assert_eq!(self.line(), format!("{name}\n"));
        self.send(
            b"Capabilities enabled: tags\nNICK\nERR unknown-capability Not offered: history\nNICK\n",
        );
    }

    /// The standard handshake for `name`, as a 1.1 server: the client asks for tags
    /// with its nickname (CAPS-4), gets them, and is asked for the nickname again, which
    /// the one it sent already answers.
    fn handshake(&mut self, name: &str) {
        self.greet(name);
        self.send(format!("{name} has joined the chat\nConnected to the server\n").as_bytes());
        self.joined();
        self.send(format!("Users online: {name}\n").as_bytes());
    }

    /// What a client sends once joined to a 1.1 server: `/caps ping` (PING-1), answered
    /// by enabling it, and `/who`.
    fn joined(&mut self) {
        assert_eq!(
            self.line(),
            "/caps ping\n",
            "PING-1: probes asked for once joined"
        );
        assert_eq!(self.line(), "/who\n", "the client asks who is online");
        self.send(b"Capabilities enabled: tags ping\n");
    }
}

/// Starts the network thread with events collected in a channel.
fn client() -> (net::CommandSender, NetHandle, Receiver<NetEvent>) {
    let (tx, rx) = mpsc::channel();
    let (commands, handle) = net::spawn(tx);
    (commands, handle, rx)
}

/// Events until one matches `done` (included); panics after [`WAIT`].
fn until(rx: &Receiver<NetEvent>, done: impl Fn(&NetEvent) -> bool) -> Vec<NetEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => {
                let stop = done(&ev);
                seen.push(ev);
                if stop {
                    return seen;
                }
            }
            Err(_) => panic!("timed out; events so far: {seen:#?}"),
        }
    }
}

/// Starts the network thread and asks it to connect to `addr` (a server or a list) as
/// `name`.
fn connect(addr: &str, name: &str) -> (net::CommandSender, NetHandle, Receiver<NetEvent>) {
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr: addr.to_owned(),
        nick: nick(name),
    });
    (cmd, handle, rx)
}

/// Events until the connection is gone (included).
fn until_lost(rx: &Receiver<NetEvent>) -> Vec<NetEvent> {
    until(rx, |e| matches!(e, NetEvent::Disconnected { .. }))
}

/// Why the connection ended and when the client will try again, from the last of
/// `evs` (as [`until_lost`] returns them).
fn lost(evs: &[NetEvent]) -> (&str, Option<Duration>) {
    match evs.last() {
        Some(NetEvent::Disconnected {
            reason, retry_in, ..
        }) => (reason, *retry_in),
        _ => panic!("not ended by a disconnection: {evs:#?}"),
    }
}

/// Whether the server said it could not resume where the client left off (RESUME-3).
fn has_gap(evs: &[NetEvent]) -> bool {
    evs.iter().any(|e| {
        matches!(
            e,
            NetEvent::Line(ServerMessage::Error {
                code: ErrorCode::HistoryGap,
                ..
            })
        )
    })
}

fn server(f: impl FnOnce(TcpListener) + Send + 'static) -> (String, JoinHandle<()>) {
    let (l, addr) = listen();
    (addr, thread::spawn(move || f(l)))
}

#[test]
fn handshake_chat_and_quit_when_the_window_closes() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.greet("alice");
        p.send(b"alice has joined the chat\nConnected to the server\n");
        p.joined();
        // PING-3: a probe is answered at once with its token, before anything the user
        // sends after seeing the line that came with it.
        p.send(b"PING 5\nUsers online: alice\n");
        assert_eq!(p.line(), "/pong 5\n");
        assert_eq!(p.line(), "hi \u{e9}\n");
        p.send("alice: hi \u{e9}\n".as_bytes());
        assert_eq!(p.line(), "/quit\n", "closing the window says /quit");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = connect(&addr, "alice");
    let evs = until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Users { .. }))
    });
    assert_eq!(evs[0], NetEvent::Connecting { addr, attempt: 0 });
    assert_eq!(evs[1], NetEvent::Opened);
    assert_eq!(evs[2], NetEvent::Line(ServerMessage::Joined(nick("alice"))));
    assert_eq!(
        evs[3],
        NetEvent::Welcome {
            nick: nick("alice")
        }
    );
    cmd.send(NetCommand::Send(ClientMessage::Text(
        Text::new("hi \u{e9}").unwrap(),
    )));
    let evs = until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Chat { .. }))
    });
    assert_eq!(
        evs.last(),
        Some(&NetEvent::Line(ServerMessage::Chat {
            from: nick("alice"),
            text: Text::new("hi \u{e9}").unwrap()
        }))
    );
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn rejected_nickname_waits_for_the_user_on_the_same_connection() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.greet("bob");
        p.send(b"ERR nick-taken Nickname bob is already in use\nNICK\n");
        assert_eq!(p.line(), "bob2\n");
        p.send(b"bob2 has joined the chat\nConnected to the server\n");
        p.joined();
        p.send(b"Users online: bob, bob2\n");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = connect(&addr, "bob");
    let evs = until(&rx, |e| *e == NetEvent::NickWanted);
    assert!(evs.iter().any(|e| matches!(
        e,
        NetEvent::Line(ServerMessage::Error {
            code: ErrorCode::NickTaken,
            ..
        })
    )));
    cmd.send(NetCommand::Nick(nick("bob2")));
    until(&rx, |e| *e == NetEvent::Welcome { nick: nick("bob2") });
    until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Users { .. }))
    });
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn seed_compat_server_greets_with_nick_and_no_newline() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        // The seed profile: `NICK` without LF, then nothing until the nickname arrives.
        p.send(b"NICK");
        assert_eq!(p.line(), "dave\n");
        p.send(b"dave has joined the chat\nConnected to the server\n");
        assert_eq!(p.line(), "/who\n");
        p.send(b"Users online: dave\n");
        assert!(p.closed());
    });
    let (_cmd, handle, rx) = connect(&addr, "dave");
    let evs = until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Users { .. }))
    });
    assert!(evs.contains(&NetEvent::Welcome { nick: nick("dave") }));
    assert!(
        !evs.iter().any(|e| matches!(e, NetEvent::Garbled(_))),
        "{evs:?}"
    );
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn server_closing_mid_line_is_reported_and_the_client_reconnects_by_itself() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        p.send(b"bob: this line never ends");
        drop(p);
        // Back-off is about a second; the same nickname comes back.
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        p.send(b"bob: welcome back\n");
        assert!(p.closed());
    });
    let (_cmd, handle, rx) = connect(&addr, "alice");
    let evs = until_lost(&rx);
    let (reason, retry_in) = lost(&evs);
    assert!(reason.contains("middle of a line"), "{reason}");
    assert!(
        retry_in.is_some_and(|d| d <= Duration::from_millis(1200)),
        "{retry_in:?}"
    );
    assert!(
        !evs.iter()
            .any(|e| matches!(e, NetEvent::Line(ServerMessage::Chat { .. })))
    );
    let evs = until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Chat { .. }))
    });
    assert_eq!(evs[0], NetEvent::Connecting { addr, attempt: 1 });
    assert!(evs.contains(&NetEvent::Welcome {
        nick: nick("alice")
    }));
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn reconnect_after_a_rename_uses_the_new_name() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        // Tagged, as a 1.1 server sends it once tags are on (TAG-2).
        p.send(
            b"@id=1:9;t=2026-12-02T10:00:00.000Z alice is now known as ally\n\
              ERR server-shutdown Server is shutting down\n",
        );
        drop(p);
        // The Reconnect button resumes after the last live event (RESUME-1).
        let mut p = Peer::accept(&l);
        p.send(b"NICK\n");
        assert_eq!(p.line(), "/caps tags\n");
        assert_eq!(p.line(), "/caps history\n");
        assert_eq!(p.line(), "/resume 1:9\n");
        assert_eq!(p.line(), "ally\n");
        p.send(b"Capabilities enabled: tags\nNICK\nERR unknown-capability Not offered: history\nNICK\nNICK\n");
        p.send(b"ally has joined the chat\nConnected to the server\n");
        p.joined();
        assert!(p.closed());
    });
    let (cmd, handle, rx) = connect(&addr, "alice");
    let evs = until_lost(&rx);
    let (reason, retry_in) = lost(&evs);
    assert_eq!(reason, "Server is shutting down");
    assert!(retry_in.is_some(), "a chatting client retries by itself");
    // The Reconnect action does not wait for the back-off.
    cmd.send(NetCommand::Reconnect);
    let evs = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert_eq!(evs[0], NetEvent::Connecting { addr, attempt: 0 });
    assert_eq!(evs.last(), Some(&NetEvent::Welcome { nick: nick("ally") }));
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn handshake_given_up_by_the_server_is_not_retried_until_the_user_acts() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.greet("eve");
        p.send(b"ERR too-many-attempts Too many nickname attempts; goodbye\n");
        drop(p);
        // The user's next nickname opens a new connection.
        let mut p = Peer::accept(&l);
        p.handshake("eve2");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = connect(&addr, "eve");
    let evs = until_lost(&rx);
    assert_eq!(
        evs.last(),
        Some(&NetEvent::Disconnected {
            reason: "Too many nickname attempts; goodbye".into(),
            retry_in: None,
            next: None,
        })
    );
    cmd.send(NetCommand::Nick(nick("eve2")));
    until(&rx, |e| *e == NetEvent::Welcome { nick: nick("eve2") });
    handle.shutdown();
    srv.join().unwrap();
}

#[test]
fn typed_quit_closes_without_reconnecting() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("carol");
        assert_eq!(p.line(), "/quit\n");
        drop(p);
    });
    let (cmd, handle, rx) = connect(&addr, "carol");
    until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Users { .. }))
    });
    cmd.send(NetCommand::Send(ClientMessage::Quit));
    let evs = until_lost(&rx);
    assert_eq!(
        evs.last(),
        Some(&NetEvent::Disconnected {
            reason: "you left the chat".into(),
            retry_in: None,
            next: None,
        })
    );
    srv.join().unwrap();
    handle.shutdown();
}

#[test]
fn connection_refused_is_reported_without_retry() {
    let (l, addr) = listen();
    drop(l);
    let (_cmd, handle, rx) = connect(&addr, "zed");
    let evs = until_lost(&rx);
    let (reason, retry_in) = lost(&evs);
    assert!(
        reason.starts_with("cannot connect to 127.0.0.1:"),
        "{reason}"
    );
    assert_eq!(retry_in, None);
    handle.shutdown();
}

#[test]
fn sending_before_the_handshake_is_refused_not_sent_as_a_nickname() {
    let (got_nick_tx, got_nick) = mpsc::channel();
    let (addr, srv) = server(move |l| {
        let mut p = Peer::accept(&l);
        p.greet("fay");
        got_nick_tx.send(()).unwrap();
        // Nothing else may arrive before the close.
        let mut rest = String::new();
        p.reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
    });
    let (cmd, handle, rx) = connect(&addr, "fay");
    got_nick.recv_timeout(WAIT).unwrap();
    cmd.send(NetCommand::Send(ClientMessage::Who));
    let evs = until(&rx, |e| matches!(e, NetEvent::NotSent(_)));
    assert_eq!(
        evs.last(),
        Some(&NetEvent::NotSent("not connected yet".into()))
    );
    handle.shutdown();
    srv.join().unwrap();
}

/// Records the size of every batch and forwards the events.
struct CountingSink {
    batches: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    tx: mpsc::Sender<NetEvent>,
}

impl net::EventSink for CountingSink {
    fn emit_all(&self, events: Vec<NetEvent>) {
        self.batches.lock().unwrap().push(events.len());
        for e in events {
            let _ = self.tx.send(e);
        }
    }
}

#[test]
fn a_burst_of_lines_reaches_the_ui_in_a_few_batches_in_order() {
    const LINES: usize = 5000;
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        let mut burst = Vec::new();
        for i in 0..LINES {
            burst.extend_from_slice(format!("bob: line {i}\n").as_bytes());
        }
        p.send(&burst);
        // Then a trickle, one line per write.
        for i in 0..50 {
            p.send(format!("bob: trickle {i}\n").as_bytes());
            thread::sleep(Duration::from_millis(2));
        }
        assert!(p.closed());
    });
    let (tx, rx) = mpsc::channel();
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (cmd, handle) = net::spawn(CountingSink {
        batches: batches.clone(),
        tx,
    });
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("alice"),
    });
    let evs = until(
        &rx,
        |e| matches!(e, NetEvent::Line(ServerMessage::Chat { text, .. }) if text.as_str() == "trickle 49"),
    );
    let texts: Vec<String> = evs
        .iter()
        .filter_map(|e| match e {
            NetEvent::Line(ServerMessage::Chat { text, .. }) => Some(text.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), LINES + 50);
    assert!(
        texts[..LINES]
            .iter()
            .enumerate()
            .all(|(i, t)| *t == format!("line {i}"))
    );
    let n = batches.lock().unwrap().len();
    // The burst comes in a few reads; the trickle is 50 reads over 100 ms or more, but
    // batches are at least 50 ms apart.
    assert!(n < 25, "{n} batches");
    handle.shutdown();
    srv.join().unwrap();
}

/// The server ends a chatting connection with `err` (a closing code) and closes.
fn closed_with(err: &'static [u8]) -> Option<Duration> {
    let (addr, srv) = server(move |l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        p.send(err);
        drop(p);
    });
    let (_cmd, handle, rx) = connect(&addr, "alice");
    let evs = until_lost(&rx);
    srv.join().unwrap();
    let (reason, retry_in) = lost(&evs);
    // The server's own words say why.
    let text = std::str::from_utf8(err).unwrap();
    let words = text.split_once(' ').unwrap().1.split_once(' ').unwrap().1;
    assert_eq!(reason, words.trim_end(), "{evs:#?}");
    handle.shutdown();
    retry_in
}

#[test]
fn an_idle_timeout_is_not_undone_by_reconnecting() {
    assert_eq!(
        closed_with(b"ERR idle-timeout No input for 300 s; disconnected\n"),
        None
    );
}

/// MOD-4, MOD-6: removed by an operator, the client does not come back by itself.
#[test]
fn a_kick_or_a_ban_is_not_undone_by_reconnecting() {
    assert_eq!(
        closed_with(b"ERR kicked You were kicked by teacher\n"),
        None
    );
    assert_eq!(
        closed_with(b"ERR banned Your address was banned by teacher\n"),
        None
    );
}

#[test]
fn too_many_connections_backs_off_longer() {
    let retry = closed_with(b"ERR too-many-connections Too many connections from 127.0.0.1\n");
    assert!(
        retry.is_some_and(|d| d >= chat_client_gui::failover::CROWDED_BACKOFF),
        "{retry:?}"
    );
}

/// The real server, in process, on a free loopback port (or `port` again after a
/// restart), with `store` if given.
fn real_server(port: u16, store: Option<&std::path::Path>) -> chat_server::ServerHandle {
    let mut config = chat_server::Config::loopback_ephemeral();
    config.listen.set_port(port);
    config.store = store.map(|p| p.to_path_buf());
    chat_server::Server::bind(config).unwrap().spawn().unwrap()
}

/// A plain client of the real server, as `nc` would be.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn join(addr: std::net::SocketAddr, name: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut raw = Raw {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        };
        raw.say(name);
        raw.wait_for("Connected to the server");
        raw
    }

    fn say(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Reads lines until `want` (bounded by the read timeout and a line count).
    fn wait_for(&mut self, want: &str) {
        for _ in 0..1000 {
            let mut s = String::new();
            assert!(self.reader.read_line(&mut s).unwrap() > 0, "closed");
            if s.trim_end() == want {
                return;
            }
        }
        panic!("never got {want}");
    }
}

/// A loopback relay to the server whose connections the test cuts, as a laptop that
/// loses its Wi-Fi: the client sees a reset, the server a close.
struct Relay {
    addr: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays the first `most` connections to `to`.
    fn to(to: std::net::SocketAddr, most: usize) -> Relay {
        let (l, addr) = listen();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = conns.clone();
        thread::spawn(move || {
            for c in l.incoming().take(most) {
                let (Ok(c), Ok(s)) = (c, TcpStream::connect(to)) else {
                    continue;
                };
                let mut list = kept.lock().unwrap();
                for (mut from, mut into) in [
                    (c.try_clone().unwrap(), s.try_clone().unwrap()),
                    (s.try_clone().unwrap(), c.try_clone().unwrap()),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
                list.extend([c, s]);
            }
        });
        Relay { addr, conns }
    }

    fn cut(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The window's transcript after `events`, as the UI would show it.
fn show(state: &mut AppState, events: Vec<NetEvent>) {
    for e in events {
        chat_client_gui::reduce::apply(state, e, stamp("12:00"));
    }
}

fn is_block_end(e: &NetEvent) -> bool {
    matches!(e, NetEvent::Line(ServerMessage::HistoryEnd))
}

fn is_chat(e: &NetEvent, want: &str) -> bool {
    matches!(e, NetEvent::Timed { msg: ServerMessage::Chat { text, .. }, earlier: false, .. }
        if text.as_str() == want)
}

/// A window as the UI keeps it, connected to `addr` (a server or a list) as alice, its
/// transcript up to the end of the backlog that follows the join (HIST-5).
fn open_window(addr: &str) -> (AppState, net::CommandSender, NetHandle, Receiver<NetEvent>) {
    let mut window = AppState::new(addr, "alice", ThemeChoice::Dark);
    window.active_server = addr.to_owned();
    let (cmd, handle, rx) = connect(addr, "alice");
    show(&mut window, until(&rx, is_block_end));
    (window, cmd, handle, rx)
}

/// Bob's chat lines in the transcript, in order, each with whether it is dimmed.
fn bobs_lines(state: &AppState) -> Vec<(&str, bool)> {
    state
        .history
        .iter()
        .filter(|l| l.who() == "bob")
        .map(|l| (l.body(), l.earlier))
        .collect()
}

/// The transcript's lines as text.
fn transcript(state: &AppState) -> Vec<&str> {
    state.history.iter().map(|l| l.plain()).collect()
}

/// `who` says `text`, and the window shows it as a live line.
fn said_live(window: &mut AppState, rx: &Receiver<NetEvent>, who: &mut Raw, text: &str) {
    who.say(text);
    show(window, until(rx, |e| is_chat(e, text)));
}

/// Once alice's connection is gone (bob sees her leave), bob says "two" and "three"
/// before she is back (the retry is a second off); returns the events of her return, up
/// to the end of the block that follows her join.
fn bob_talks_while_alice_is_away(bob: &mut Raw, rx: &Receiver<NetEvent>) -> Vec<NetEvent> {
    bob.wait_for("alice has left the chat");
    bob.say("two");
    bob.say("three");
    bob.wait_for("bob: three");
    until(rx, is_block_end)
}

/// Alice is back (`back`: her return's events) and nothing was lost: no gap is told,
/// bob's "two" and "three" are shown dimmed under "While you were away:", after his
/// "one" and before his "four", said live now.
fn back_without_a_gap(
    window: &mut AppState,
    rx: &Receiver<NetEvent>,
    bob: &mut Raw,
    back: Vec<NetEvent>,
) {
    assert!(!has_gap(&back), "{back:#?}");
    show(window, back);
    said_live(window, rx, bob, "four");
    let lines = bobs_lines(window);
    assert_eq!(
        lines[lines.len().saturating_sub(4)..],
        [
            ("one", false),
            ("two", true),
            ("three", true),
            ("four", false)
        ],
        "{lines:#?}"
    );
    let texts = transcript(window);
    assert!(texts.contains(&"While you were away:"), "{texts:#?}");
    assert!(
        !texts.contains(&chat_client_gui::reduce::HISTORY_GAP_NOTE),
        "{texts:#?}"
    );
}

#[test]
fn real_server_backlog_then_resume_after_a_dropped_connection_leaves_no_hole() {
    let srv = real_server(0, None);
    let relay = Relay::to(srv.local_addr(), 2);
    let mut bob = Raw::join(srv.local_addr(), "bob");
    bob.say("early");
    bob.wait_for("bob: early");
    // The backlog comes after the join (HIST-5); then a live line.
    let (mut window, _cmd, handle, rx) = open_window(&relay.addr);
    said_live(&mut window, &rx, &mut bob, "one");
    relay.cut();
    let evs = until_lost(&rx);
    assert!(
        matches!(
            evs.last(),
            Some(NetEvent::Disconnected {
                retry_in: Some(_),
                ..
            })
        ),
        "{evs:#?}"
    );
    show(&mut window, evs);
    // Back: the missed lines come in a block after the join (RESUME-2), then live.
    let back = bob_talks_while_alice_is_away(&mut bob, &rx);
    back_without_a_gap(&mut window, &rx, &mut bob, back);
    let lines = bobs_lines(&window);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(lines[0], ("early", true), "the backlog, dimmed");
    handle.shutdown();
    srv.shutdown();
}

/// Restarts the server on the same port while the window is connected, bob talking
/// in between; returns the window and whether the client was told of a gap.
fn across_a_restart(store: Option<&std::path::Path>) -> (AppState, bool) {
    let srv = real_server(0, store);
    let addr = srv.local_addr();
    let (mut window, _cmd, handle, rx) = open_window(&addr.to_string());
    let mut bob = Raw::join(addr, "bob");
    said_live(&mut window, &rx, &mut bob, "before");
    srv.shutdown();
    show(&mut window, until_lost(&rx));
    drop(bob);
    let srv = real_server(addr.port(), store);
    let mut bob = Raw::join(addr, "bob");
    bob.say("during");
    bob.wait_for("bob: during");
    let evs = until(&rx, is_block_end);
    let gap = has_gap(&evs);
    show(&mut window, evs);
    said_live(&mut window, &rx, &mut bob, "after");
    handle.shutdown();
    srv.shutdown();
    (window, gap)
}

#[test]
fn real_server_restart_with_a_store_resumes_without_a_gap() {
    let dir = std::env::temp_dir().join(format!("chat-gui-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chat.db");
    let (window, gap) = across_a_restart(Some(&file));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!gap);
    assert_eq!(
        bobs_lines(&window),
        vec![("before", false), ("during", true), ("after", false),]
    );
}

#[test]
fn real_server_restart_without_a_store_says_there_is_a_gap() {
    let (window, gap) = across_a_restart(None);
    assert!(gap);
    let texts = transcript(&window);
    let note = texts
        .iter()
        .position(|t| *t == chat_client_gui::reduce::HISTORY_GAP_NOTE)
        .expect("the gap is told");
    // The backlog of the new run follows the note: bob's line said while away is in
    // it (dimmed), then the live one.
    assert!(texts[note..].contains(&"bob: during"), "{texts:#?}");
    assert_eq!(
        bobs_lines(&window),
        vec![("before", false), ("during", true), ("after", false),]
    );
}

/// Two independent real servers, the second started a few milliseconds after the first
/// (an epoch is the start time in milliseconds, RESUME-5: two servers started in the
/// same millisecond would share one, see the status notes).
fn two_servers() -> (chat_server::ServerHandle, chat_server::ServerHandle) {
    let a = real_server(0, None);
    thread::sleep(Duration::from_millis(5));
    let b = real_server(0, None);
    (a, b)
}

/// Issue 15: a chat on two servers. The first is lost as a killed node is (its
/// connections vanish without an `ERR`, then nothing accepts there): the client moves
/// to the second by itself, resumes there with `/resume`, and, the two being
/// independent servers rather than a cluster, the window says that what was missed
/// could not be recovered, then shows the second server's backlog and live lines.
#[test]
fn failover_to_the_next_server_when_one_is_lost() {
    let (a, b) = two_servers();
    // The only way to `a` is through the relay, which takes one connection: once cut,
    // the address refuses, like a node that was killed.
    let to_a = Relay::to(a.local_addr(), 1);
    let list = format!("{},{}", to_a.addr, b.local_addr());
    let (mut window, _cmd, handle, rx) = open_window(&list);
    assert_eq!(window.node, to_a.addr, "the first server first");
    let mut bob = Raw::join(a.local_addr(), "bob");
    said_live(&mut window, &rx, &mut bob, "on a");
    let mut carol = Raw::join(b.local_addr(), "carol");
    carol.say("on b before");
    carol.wait_for("carol: on b before");

    to_a.cut();
    let evs = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    let next = b.local_addr().to_string();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            NetEvent::Disconnected {
                retry_in: Some(_),
                next: Some(n),
                ..
            } if *n == next
        )),
        "the loss names the server tried next: {evs:#?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, NetEvent::Connecting { addr, .. } if *addr == next)),
        "the second server is the next: {evs:#?}"
    );
    show(&mut window, evs);
    let evs = until(&rx, is_block_end);
    assert!(has_gap(&evs), "b cannot know a's ids: {evs:#?}");
    show(&mut window, evs);
    said_live(&mut window, &rx, &mut carol, "on b after");

    let texts = transcript(&window);
    let connected_b = format!("Connected to {next} as alice");
    let at = texts
        .iter()
        .position(|t| *t == connected_b)
        .unwrap_or_else(|| panic!("{texts:#?}"));
    let rest = &texts[at..];
    let gap = rest
        .iter()
        .position(|t| *t == chat_client_gui::reduce::HISTORY_GAP_NOTE)
        .unwrap_or_else(|| panic!("the gap is told: {texts:#?}"));
    assert!(
        rest[gap..].contains(&"carol: on b before"),
        "b's backlog: {texts:#?}"
    );
    assert_eq!(rest.last(), Some(&"carol: on b after"));
    assert!(texts[..at].contains(&"bob: on a"));
    assert!(
        texts[..at].iter().any(|t| t.starts_with("Disconnected: ")
            && t.ends_with(&format!("; reconnecting to {next} in 1 s"))),
        "{texts:#?}"
    );
    assert_eq!(window.node, next);
    assert!(window.title().contains(&next), "{}", window.title());
    handle.shutdown();
    a.shutdown();
    b.shutdown();
}

/// Issue 15: connecting to a list whose first server is down goes on to the next at
/// once, without the user pressing anything.
#[test]
fn connecting_to_a_list_skips_a_server_that_is_down() {
    let (dead, _) = listen();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let b = real_server(0, None);
    let list = format!("{dead_addr},{}", b.local_addr());
    let started = Instant::now();
    let (_cmd, handle, rx) = connect(&list, "alice");
    let evs = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    let tried: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e {
            NetEvent::Connecting { addr, .. } => Some(addr.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(tried, [dead_addr, b.local_addr().to_string()]);
    // No back-off on the way: the user is watching the connect screen.
    assert!(started.elapsed() < Duration::from_secs(1), "{evs:#?}");
    handle.shutdown();
    b.shutdown();
}

/// Issue 15: when the next server shares the chat's log (a cluster; here, two routes to
/// one server, each standing for a node), the failover resumes with no gap: the lines
/// said while the client moved come under "While you were away:", in order, once.
#[test]
fn failover_to_a_node_of_the_same_chat_leaves_no_gap() {
    let srv = real_server(0, None);
    let node1 = Relay::to(srv.local_addr(), 1);
    let node2 = Relay::to(srv.local_addr(), 4);
    let list = format!("{},{}", node1.addr, node2.addr);
    let (mut window, _cmd, handle, rx) = open_window(&list);
    let mut bob = Raw::join(srv.local_addr(), "bob");
    said_live(&mut window, &rx, &mut bob, "one");
    node1.cut();
    show(&mut window, until_lost(&rx));
    let back = bob_talks_while_alice_is_away(&mut bob, &rx);
    assert!(
        back.iter()
            .any(|e| matches!(e, NetEvent::Connecting { addr, .. } if *addr == node2.addr)),
        "{back:#?}"
    );
    back_without_a_gap(&mut window, &rx, &mut bob, back);
    assert_eq!(bobs_lines(&window).len(), 4);
    handle.shutdown();
    srv.shutdown();
}

/// After a drop, the server may still hold the nickname for the lost connection (it has
/// not noticed yet; in a cluster, until the dead node's lease ends): the automatic
/// reconnection waits and tries again by itself instead of asking the user for another
/// name.
#[test]
fn a_nickname_still_held_by_the_lost_connection_is_waited_for() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        drop(p);
        let mut p = Peer::accept(&l);
        p.greet("alice");
        p.send(b"ERR nick-taken Nickname alice is already in use\nNICK\n");
        assert!(p.closed(), "the client goes away to come back later");
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        assert!(p.closed());
    });
    let (_cmd, handle, rx) = connect(&addr, "alice");
    until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    let evs = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert!(
        !evs.iter().any(|e| matches!(
            e,
            NetEvent::NickWanted
                | NetEvent::Line(ServerMessage::Error {
                    code: ErrorCode::NickTaken,
                    ..
                })
        )),
        "the user is not asked: {evs:#?}"
    );
    assert!(
        evs.iter().any(|e| matches!(
            e,
            NetEvent::Disconnected { reason, retry_in: Some(_), .. } if reason.contains("already in use")
        )),
        "{evs:#?}"
    );
    handle.shutdown();
    srv.join().unwrap();
}

/// Issue 14 against the real server: an operator mutes, then kicks the window's user.
/// The window says the mute where it cannot be missed, shows the kick notice, says why
/// the connection ended and does not reconnect by itself (MOD-4, MOD-5).
#[test]
fn real_server_mute_and_kick_are_shown_and_a_kick_is_not_undone() {
    let mut config = chat_server::Config::loopback_ephemeral();
    config.op_password = Some(chat_proto::Password::for_server("sesame").unwrap());
    let srv = chat_server::Server::bind(config).unwrap().spawn().unwrap();
    let addr = srv.local_addr().to_string();
    let (mut window, _cmd, handle, rx) = open_window(&addr);
    let mut teacher = Raw::join(srv.local_addr(), "teacher");
    teacher.say("/op sesame");
    teacher.wait_for("teacher is now an operator");
    teacher.say("/mute alice 2");
    show(
        &mut window,
        until(&rx, |e| {
            matches!(
                e,
                NetEvent::Timed {
                    msg: ServerMessage::Moderated { .. },
                    ..
                }
            )
        }),
    );
    assert!(window.notice_is_error, "{}", window.notice);
    assert!(
        window.notice.contains("muted for 2 minutes"),
        "{}",
        window.notice
    );
    teacher.say("/kick alice off topic");
    let evs = until_lost(&rx);
    assert!(
        matches!(
            evs.last(),
            Some(NetEvent::Disconnected { retry_in: None, .. })
        ),
        "{evs:#?}"
    );
    show(&mut window, evs);
    let texts = transcript(&window);
    assert!(
        texts.contains(&"alice was kicked by teacher (off topic)"),
        "{texts:#?}"
    );
    assert!(
        window.notice.contains("will not reconnect"),
        "{}",
        window.notice
    );
    teacher.wait_for("alice has left the chat");
    handle.shutdown();
    srv.shutdown();
}
