//! The recording proxy: real clients (`nc`, the GUI) talk to a real server through it,
//! and it writes what happened as a session file, so new cases come from real use.
//!
//! Every byte is logged *before* it is forwarded, and every byte received is logged as
//! it arrives, so the log's order is a causal order: an answer is always logged after
//! the line that caused it, and the session replays deterministically.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_proto::{Nickname, ServerMessage};

use crate::limit::Requirement;
use crate::matcher::Expect;
use crate::session::{Action, Session, Step};

/// Settings of a recording.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The server.
    pub upstream: SocketAddr,
    /// The session file to write (rewritten each time a connection ends, so an
    /// interrupted recording keeps what it had).
    pub out: PathBuf,
    /// Stop once this many connections have come and all have ended.
    pub clients: usize,
    /// Spec IDs for the `checks:` header; empty leaves it for the author to fill in.
    pub checks: Vec<String>,
    /// Limits the server was started with, for `requires:`.
    pub requires: Vec<Requirement>,
    /// Stop after this long in any case.
    pub max_duration: Option<Duration>,
}

/// One thing the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Connect(usize),
    /// Bytes from the client, logged before they were forwarded.
    FromClient(usize, Vec<u8>),
    /// Bytes from the server, as they arrived.
    FromServer(usize, Vec<u8>),
    /// The client shut down its sending side (or closed).
    ClientEof(usize),
    /// The client reset the connection.
    ClientReset(usize),
    /// The server closed or reset the connection.
    ServerClosed(usize),
}

type Log = Arc<Mutex<Vec<Event>>>;

fn push(log: &Log, e: Event) {
    log.lock().unwrap_or_else(|p| p.into_inner()).push(e);
}

/// Runs the proxy until `config.clients` connections have come and gone (or the time
/// limit passes), then writes and returns the session. `on_listening` gets the bound
/// address (useful with port 0).
pub fn record(
    config: &RecordConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<Session, String> {
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    on_listening(listener.local_addr().map_err(|e| e.to_string())?);
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let active = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut accepted = 0usize;
    let mut written_at = 0usize;
    // Bounded by the stop condition and by `max_duration`.
    loop {
        match listener.accept() {
            Ok((client, _)) => {
                let upstream = match TcpStream::connect(config.upstream) {
                    Ok(u) => u,
                    Err(e) => {
                        // Not recorded: the client is turned away, the recording goes on.
                        eprintln!("cannot connect to the server at {}: {e}", config.upstream);
                        drop(client);
                        continue;
                    }
                };
                accepted += 1;
                let id = accepted;
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                push(&log, Event::Connect(id));
                active.fetch_add(1, Ordering::SeqCst);
                spawn_pumps(id, client, upstream, &log, &active, &ended)
                    .map_err(|e| e.to_string())?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(format!("accept failed: {e}")),
        }
        let done = ended.load(Ordering::SeqCst);
        if done != written_at {
            written_at = done;
            write_session(config, &log)?;
        }
        if accepted >= config.clients.max(1) && active.load(Ordering::SeqCst) == 0 {
            break;
        }
        if config.max_duration.is_some_and(|d| started.elapsed() > d) {
            break;
        }
    }
    write_session(config, &log)
}

fn write_session(config: &RecordConfig, log: &Log) -> Result<Session, String> {
    let events = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let session = to_session(&events, config);
    std::fs::write(&config.out, session.to_text())
        .map_err(|e| format!("cannot write {}: {e}", config.out.display()))?;
    Ok(session)
}

fn spawn_pumps(
    id: usize,
    client: TcpStream,
    upstream: TcpStream,
    log: &Log,
    active: &Arc<AtomicUsize>,
    ended: &Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let (mut c_read, c_write) = (client.try_clone()?, client);
    let (u_read, mut u_write) = (upstream.try_clone()?, upstream);
    let halves = Arc::new(AtomicUsize::new(2));
    let finish = {
        let (active, ended, halves) = (active.clone(), ended.clone(), halves.clone());
        move || {
            if halves.fetch_sub(1, Ordering::SeqCst) == 1 {
                active.fetch_sub(1, Ordering::SeqCst);
                ended.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let finish2 = finish.clone();
    let log1 = log.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match c_read.read(&mut buf) {
                Ok(0) => {
                    push(&log1, Event::ClientEof(id));
                    let _ = u_write.shutdown(Shutdown::Write);
                    break;
                }
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    push(&log1, Event::FromClient(id, bytes.to_vec()));
                    if u_write.write_all(bytes).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    push(&log1, Event::ClientReset(id));
                    let _ = socket2::SockRef::from(&u_write).set_linger(Some(Duration::ZERO));
                    let _ = u_write.shutdown(Shutdown::Both);
                    break;
                }
                Err(_) => break,
            }
        }
        finish();
    });
    let log2 = log.clone();
    let mut u_read = u_read;
    let mut c_write = c_write;
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match u_read.read(&mut buf) {
                Ok(0) | Err(_) => {
                    push(&log2, Event::ServerClosed(id));
                    // The server is gone: end the client's side too, which also ends
                    // the other pump's read.
                    let _ = c_write.shutdown(Shutdown::Both);
                    break;
                }
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    push(&log2, Event::FromServer(id, bytes.to_vec()));
                    if c_write.write_all(bytes).is_err() {
                        break;
                    }
                }
            }
        }
        finish2();
    });
    Ok(())
}

/// Per-connection state while turning events into steps.
#[derive(Default, Clone)]
struct Conv {
    /// Client bytes after the last LF, already written out as `write` steps.
    sent_partial: bool,
    /// Server bytes after the last LF.
    rx: Vec<u8>,
    /// The last complete line the client sent (its nickname attempt, in the handshake).
    last_sent_line: Option<Vec<u8>>,
    /// The nickname the server accepted.
    nick: Option<String>,
    /// Saw the client's EOF or reset.
    client_done: bool,
    /// Saw the server close.
    server_done: bool,
}

/// Turns the event log into a session; clients are named after their accepted
/// nicknames where possible (`c1`, `c2`, ... otherwise).
fn to_session(events: &[Event], config: &RecordConfig) -> Session {
    let n = events
        .iter()
        .filter(|e| matches!(e, Event::Connect(_)))
        .count();
    let mut conv = vec![Conv::default(); n + 1];
    let mut steps: Vec<Step> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let name = |id: usize| format!("c{id}");
    let step = |action| Step {
        line: 0,
        within: None,
        action,
    };
    for e in events {
        match e {
            Event::Connect(id) => steps.push(step(Action::Connect(name(*id)))),
            Event::FromClient(id, bytes) => {
                let Some(c) = conv.get_mut(*id) else { continue };
                let mut rest: &[u8] = bytes;
                while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
                    let (line, tail) = rest.split_at(lf + 1);
                    if c.sent_partial {
                        steps.push(step(Action::Write(name(*id), line.to_vec())));
                        c.sent_partial = false;
                        c.last_sent_line = None;
                    } else {
                        steps.push(step(Action::Send(name(*id), line.to_vec())));
                        let body = line.strip_suffix(b"\n").unwrap_or(line);
                        c.last_sent_line = Some(body.strip_suffix(b"\r").unwrap_or(body).to_vec());
                    }
                    rest = tail;
                }
                if !rest.is_empty() {
                    steps.push(step(Action::Write(name(*id), rest.to_vec())));
                    c.sent_partial = true;
                }
            }
            Event::FromServer(id, bytes) => {
                let Some(c) = conv.get_mut(*id) else { continue };
                c.rx.extend_from_slice(bytes);
                while let Some(lf) = c.rx.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = c.rx.drain(..=lf).collect();
                    line.pop();
                    let msg = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|s| ServerMessage::parse(s).ok());
                    let expect = match msg {
                        // The human text of an error may change: match the code.
                        Some(ServerMessage::Error { code, .. }) => Expect::Error(code),
                        Some(ServerMessage::Connected) => {
                            if c.nick.is_none() {
                                c.nick = c
                                    .last_sent_line
                                    .as_deref()
                                    .and_then(|l| std::str::from_utf8(l).ok())
                                    .map(str::to_owned);
                            }
                            Expect::Line(line)
                        }
                        Some(_) => Expect::Line(line),
                        None => {
                            notes.push(format!(
                                "{} received `{}`, which is not a valid server line; left out",
                                name(*id),
                                crate::escape::encode(&line)
                            ));
                            continue;
                        }
                    };
                    steps.push(step(Action::Recv(name(*id), expect)));
                }
            }
            Event::ClientEof(id) | Event::ClientReset(id) => {
                let Some(c) = conv.get_mut(*id) else { continue };
                if c.client_done || c.server_done {
                    continue;
                }
                c.client_done = true;
                let action = if matches!(e, Event::ClientReset(_)) {
                    Action::Reset(name(*id))
                } else {
                    Action::CloseWrite(name(*id))
                };
                steps.push(step(action));
            }
            Event::ServerClosed(id) => {
                let Some(c) = conv.get_mut(*id) else { continue };
                if c.server_done {
                    continue;
                }
                c.server_done = true;
                if !c.rx.is_empty() {
                    notes.push(format!(
                        "{} received `{}` without LF before the server closed; left out",
                        name(*id),
                        crate::escape::encode(&c.rx)
                    ));
                }
                let reset = steps.iter().any(|s| s.action == Action::Reset(name(*id)));
                if !reset {
                    steps.push(step(Action::Closed(name(*id))));
                }
            }
        }
    }
    // Rename `cN` to the nickname it was accepted under, when that is unambiguous.
    let mut renames: Vec<(String, String)> = Vec::new();
    for (id, c) in conv.iter().enumerate().skip(1) {
        let Some(nick) = c.nick.as_deref().filter(|n| Nickname::new(n).is_ok()) else {
            continue;
        };
        let taken = renames.iter().any(|(_, n)| n.eq_ignore_ascii_case(nick))
            || (1..=n).any(|k| format!("c{k}").eq_ignore_ascii_case(nick));
        if !taken {
            renames.push((name(id), nick.to_owned()));
        }
    }
    for s in &mut steps {
        rename(&mut s.action, &renames);
    }
    let mut about = vec![
        format!(
            "Recorded by `chat-conformance record` through a proxy to {}.",
            config.upstream
        ),
        "Say here what this session shows, and list the spec IDs it checks below.".to_owned(),
    ];
    about.extend(notes.into_iter().map(|n| format!("Note: {n}")));
    Session {
        name: config
            .out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        checks: config.checks.clone(),
        requires: config.requires.clone(),
        framing: false,
        fresh: false,
        step_timeout: None,
        about,
        steps,
    }
}

fn rename(action: &mut Action, renames: &[(String, String)]) {
    let Some(client) = action.client_mut() else {
        return;
    };
    if let Some((_, to)) = renames.iter().find(|(from, _)| from == client) {
        *client = to.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RecordConfig {
        RecordConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: SocketAddr::from(([127, 0, 0, 1], 9)),
            out: PathBuf::from("x.session"),
            clients: 1,
            checks: vec!["NICK-1".into()],
            requires: vec![],
            max_duration: None,
        }
    }

    #[test]
    fn events_become_a_session_named_by_nickname() {
        use Event::*;
        let events = vec![
            Connect(1),
            FromServer(1, b"NI".to_vec()),
            FromServer(1, b"CK\n".to_vec()),
            FromClient(1, b"ERR\n".to_vec()),
            FromServer(
                1,
                b"ERR nick-invalid Invalid nickname: that nickname is reserved\nNICK\n".to_vec(),
            ),
            FromClient(1, b"alice\r\n".to_vec()),
            FromServer(
                1,
                b"alice has joined the chat\nConnected to the server\n".to_vec(),
            ),
            FromClient(1, b"hel".to_vec()),
            FromClient(1, b"lo\n/quit\n".to_vec()),
            FromServer(1, b"alice: hello\n".to_vec()),
            ServerClosed(1),
            ClientEof(1),
        ];
        let s = to_session(&events, &config());
        let text = s.to_text();
        let steps: Vec<&str> = text.lines().skip_while(|l| !l.is_empty()).skip(1).collect();
        assert_eq!(
            steps,
            [
                "connect alice",
                "recv alice NICK",
                "send alice ERR",
                "recv alice ERR nick-invalid *",
                "recv alice NICK",
                "send alice alice\\r",
                "recv alice alice has joined the chat",
                "recv alice Connected to the server",
                "write alice hel",
                "write alice lo\\n",
                "send alice /quit",
                "recv alice alice: hello",
                "closed alice",
            ]
        );
        assert!(Session::parse("x", &text).is_ok(), "{text}");
    }

    #[test]
    fn client_close_and_reset_and_bad_lines() {
        use Event::*;
        let events = vec![
            Connect(1),
            Connect(2),
            FromServer(1, b"NICK".to_vec()),
            ClientEof(1),
            ServerClosed(1),
            ClientReset(2),
            ServerClosed(2),
        ];
        let s = to_session(&events, &config());
        let actions: Vec<Action> = s.steps.into_iter().map(|s| s.action).collect();
        assert_eq!(
            actions,
            [
                Action::Connect("c1".into()),
                Action::Connect("c2".into()),
                Action::CloseWrite("c1".into()),
                Action::Closed("c1".into()),
                Action::Reset("c2".into()),
            ]
        );
        assert!(s.about.iter().any(|l| l.contains("`NICK` without LF")));
    }

    #[test]
    fn proxies_a_live_conversation() {
        // A one-line "server": prompt, read the nickname, greet, close.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = server.local_addr().unwrap();
        let srv = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"NICK\n").unwrap();
            let mut buf = [0u8; 64];
            let mut got = Vec::new();
            while !got.ends_with(b"\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"bob has joined the chat\nConnected to the server\n")
                .unwrap();
        });
        let dir =
            std::env::temp_dir().join(format!("chat-conformance-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("live.session");
        let cfg = RecordConfig {
            upstream,
            out: out.clone(),
            max_duration: Some(Duration::from_secs(10)),
            ..config()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let rec = std::thread::spawn(move || record(&cfg, |a| tx.send(a).unwrap()));
        let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(b"bob\n").unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"bob has joined the chat\nConnected to the server\n");
        drop(c);
        srv.join().unwrap();
        let session = rec.join().unwrap().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let actions = |s: Vec<Step>| s.into_iter().map(|s| s.action).collect::<Vec<_>>();
        assert_eq!(
            actions(Session::parse("live", &text).unwrap().steps),
            actions(session.steps)
        );
        assert!(text.contains("connect bob\nrecv bob NICK\nsend bob bob\nrecv bob bob has joined the chat\nrecv bob Connected to the server\nclosed bob\n"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
