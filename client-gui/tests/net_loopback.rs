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

    /// The start of a 1.1 server's handshake (one without history): `NICK`, then
    /// `/caps tags`, `/caps history` and `name` pipelined by the client (CAPS-4), tags
    /// enabled, history refused, `NICK` again after each.
    fn greet(&mut self, name: &str) {
        self.send(b"NICK\n");
        assert_eq!(self.line(), "/caps tags\n");
        assert_eq!(self.line(), "/caps history\n");
        assert_eq!(self.line(), format!("{name}\n"));
        self.send(b"Capabilities enabled: tags\nNICK\nERR unknown-capability no\nNICK\n");
    }

    /// The standard handshake for `name`, as a 1.1 server: the client asks for tags
    /// with its nickname (CAPS-4), gets them, and is asked for the nickname again, which
    /// the one it sent already answers.
    fn handshake(&mut self, name: &str) {
        self.greet(name);
        self.send(format!("{name} has joined the chat\nConnected to the server\n").as_bytes());
        assert_eq!(self.line(), "/who\n", "the client asks who is online");
        self.send(format!("Users online: {name}\n").as_bytes());
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

fn server(f: impl FnOnce(TcpListener) + Send + 'static) -> (String, JoinHandle<()>) {
    let (l, addr) = listen();
    (addr, thread::spawn(move || f(l)))
}

#[test]
fn handshake_chat_and_quit_when_the_window_closes() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.handshake("alice");
        assert_eq!(p.line(), "hi \u{e9}\n");
        p.send("alice: hi \u{e9}\n".as_bytes());
        assert_eq!(p.line(), "/quit\n", "closing the window says /quit");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr: addr.clone(),
        nick: nick("alice"),
    });
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
        assert_eq!(p.line(), "/who\n");
        p.send(b"Users online: bob, bob2\n");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("bob"),
    });
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
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("dave"),
    });
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
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr: addr.clone(),
        nick: nick("alice"),
    });
    let evs = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    let Some(NetEvent::Disconnected { reason, retry_in }) = evs.last() else {
        unreachable!()
    };
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
        let mut p = Peer::accept(&l);
        p.handshake("ally");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr: addr.clone(),
        nick: nick("alice"),
    });
    let evs = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    let Some(NetEvent::Disconnected { reason, retry_in }) = evs.last() else {
        unreachable!()
    };
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
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("eve"),
    });
    let evs = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    assert_eq!(
        evs.last(),
        Some(&NetEvent::Disconnected {
            reason: "Too many nickname attempts; goodbye".into(),
            retry_in: None
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
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("carol"),
    });
    until(&rx, |e| {
        matches!(e, NetEvent::Line(ServerMessage::Users { .. }))
    });
    cmd.send(NetCommand::Send(ClientMessage::Quit));
    let evs = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    assert_eq!(
        evs.last(),
        Some(&NetEvent::Disconnected {
            reason: "you left the chat".into(),
            retry_in: None
        })
    );
    srv.join().unwrap();
    handle.shutdown();
}

#[test]
fn connection_refused_is_reported_without_retry() {
    let (l, addr) = listen();
    drop(l);
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("zed"),
    });
    let evs = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    let Some(NetEvent::Disconnected { reason, retry_in }) = evs.last() else {
        unreachable!()
    };
    assert!(
        reason.starts_with("cannot connect to 127.0.0.1:"),
        "{reason}"
    );
    assert_eq!(*retry_in, None);
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
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("fay"),
    });
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

/// Spec §17: on a server with history, every reconnection resumes after the last live
/// event (RESUME-1); the missed events come as earlier ones, and a gap is told.
#[test]
fn reconnect_resumes_after_the_last_live_event() {
    let (addr, srv) = server(|l| {
        let mut p = Peer::accept(&l);
        p.send(b"NICK\n");
        assert_eq!(p.line(), "/caps tags\n");
        assert_eq!(p.line(), "/caps history\n");
        assert_eq!(p.line(), "alice\n");
        p.send(b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\n");
        p.send(b"@id=9:1;t=2026-12-02T08:00:00.000Z alice has joined the chat\nConnected to the server\n");
        assert_eq!(p.line(), "/who\n");
        p.send(b"Users online: alice\n@id=9:2;t=2026-12-02T08:00:01.000Z bob: last seen\n");
        drop(p);
        let mut p = Peer::accept(&l);
        p.send(b"NICK\n");
        assert_eq!(p.line(), "/caps tags\n");
        assert_eq!(p.line(), "/caps history\n");
        assert_eq!(p.line(), "/resume 9:2\n");
        assert_eq!(p.line(), "alice\n");
        p.send(
            b"Capabilities enabled: tags\nNICK\nCapabilities enabled: tags history\nNICK\nNICK\n",
        );
        p.send(b"@id=9:4;t=2026-12-02T08:00:03.000Z alice has joined the chat\nConnected to the server\n");
        p.send(b"Earlier events: 1\n@id=9:3;t=2026-12-02T08:00:02.000Z;history bob: while away\nEnd of earlier events\n");
        assert_eq!(p.line(), "/who\n");
        p.send(b"Users online: alice, bob\n");
        assert!(p.closed());
    });
    let (cmd, handle, rx) = client();
    cmd.send(NetCommand::Connect {
        addr,
        nick: nick("alice"),
    });
    let evs = until(&rx, |e| matches!(e, NetEvent::Earlier { .. }));
    assert!(matches!(
        evs.last(),
        Some(NetEvent::Earlier {
            msg: ServerMessage::Chat { .. },
            ..
        })
    ));
    handle.shutdown();
    srv.join().unwrap();
}
