//! CONN-5 for real: a joined user whose machine vanishes (no FIN, no RST, nothing at all
//! any more) leaves within the keepalive and user-timeout numbers, the others see
//! `<nick> has left the chat`, the log says why, and its slot and nickname are free.
//!
//! Making a peer vanish on loopback: the test thread moves into a network namespace of
//! its own (`unshare(CLONE_NEWNET)`, which needs root; without it the test says so and
//! skips), brings its `lo` up, and moves the `local` routing table's rule behind two
//! `blackhole` rules it adds once the victim (bound to its own 127.0.0.x) has joined:
//! every packet from or to that address is then dropped, both ways, while both sockets
//! stay open. The server and all clients run on threads started from that thread, so
//! they live in the namespace too.
//!
//! Four cases run side by side, each with its own server and victim:
//!
//! - **quiet**: nothing is sent to the victim, so keepalive finds it;
//! - **busy**: another user talks, so the server always has unacknowledged data for the
//!   victim; keepalive then sends no probes, and only the user timeout finds it;
//! - **tls**: the same with the victim on the TLS listener;
//! - **busy without a user timeout** (the kernel's default, as before CONN-5 pinned one):
//!   the victim is still there well after the others left, which shows that the busy
//!   case really had data in flight and that the user timeout is what ends it.
//!
//! In CI the numbers are shortened (keepalive 2 s + 3 x 1 s, user timeout 5 s), so the
//! test takes about 10 s. `vanish_at_the_specs_numbers` (ignored: about 16 minutes)
//! measures the spec's own numbers; docs/reliability.md has its figures.

#![cfg(test)]

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chat_proto::Nickname;
use chat_server::dead_peer::DeadPeer;
use chat_server::tls::{Identity, TlsConfig};
use common::{Client, Got};
use socket2::{Domain, Protocol, Socket, Type};

/// Every log line of every server in this test binary, for the `left` line's reason.
fn log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        struct W;
        impl Write for W {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                log().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| W)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        Mutex::new(Vec::new())
    })
}

/// The log's `left` line for `nick`, if any.
fn left_line(nick: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    text.lines()
        .find(|l| l.contains(" left ") && l.contains(&format!("nick={nick} ")))
        .map(str::to_owned)
}

/// Runs `ip` with `args` in the current thread's namespace; panics if it fails.
fn ip(args: &str) {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("running `ip {args}` (iproute2 is needed): {e}"));
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Moves this thread into a fresh network namespace with `lo` up and the `local` table
/// behind room for blackhole rules. `false` where that is not allowed (not root).
fn private_network() -> bool {
    // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("SKIPPED: cannot make a network namespace ({e}); this test needs root");
        return false;
    }
    ip("link set lo up");
    ip("rule del pref 0");
    ip("rule add pref 10 lookup local");
    true
}

/// From now on nothing reaches `addr` and nothing leaves it.
fn vanish(addr: Ipv4Addr) {
    ip(&format!("rule add pref 5 from {addr} blackhole"));
    ip(&format!("rule add pref 6 to {addr} blackhole"));
}

/// A TCP connection to `server` from the local address `from`.
fn connect_from(server: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    sock.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())
        .unwrap();
    sock.connect(&server.into()).unwrap();
    TcpStream::from(sock)
}

/// Joins `server` as `nick` from the local address `from`.
fn join_from(server: SocketAddr, from: Ipv4Addr, nick: &str) -> Client {
    let mut c = Client::from_stream(connect_from(server, from));
    c.expect("NICK");
    c.send_nick(nick);
    c.expect(&format!("{nick} has joined the chat"));
    c.expect("Connected to the server");
    c.nick = nick.to_owned();
    c
}

/// Joins the TLS listener `server` as `nick` from `from` (TLS-1), trusting any
/// certificate: what is tested is the socket under TLS.
fn tls_join_from(server: SocketAddr, from: Ipv4Addr, nick: &str) -> chat_tls::Stream {
    let tcp = connect_from(server, from);
    tcp.set_read_timeout(Some(common::WAIT)).unwrap();
    tcp.set_write_timeout(Some(common::WAIT)).unwrap();
    let (mut stream, _) =
        chat_tls::connect(tcp, "127.0.0.1", chat_tls::Trust::Any).expect("TLS handshake");
    tls_read_until(&mut stream, b"NICK\n");
    let mut line = Vec::new();
    Nickname::new(nick).unwrap().encode_line(&mut line);
    chat_tls::write_all(&mut stream, &line).expect("write");
    tls_read_until(&mut stream, b"Connected to the server\n");
    stream
}

/// Reads until what arrived ends with `end`: each read bounded by the socket's timeout,
/// at most 100 of them.
fn tls_read_until(stream: &mut chat_tls::Stream, end: &[u8]) {
    let mut got = Vec::new();
    for _ in 0..100 {
        if got.ends_with(end) {
            return;
        }
        let mut buf = [0u8; 4096];
        let n = chat_tls::read(stream, &mut buf).expect("read");
        assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(end));
        got.extend_from_slice(&buf[..n]);
    }
    panic!("no {:?} in {got:?}", String::from_utf8_lossy(end));
}

#[derive(Clone, Copy, Debug)]
enum Chat {
    /// Nobody says anything.
    Quiet,
    /// Someone says something every this often.
    Busy(Duration),
}

/// One victim's story.
struct Case {
    name: &'static str,
    victim: Ipv4Addr,
    chat: Chat,
    /// The victim joins over TLS (the others over plain TCP).
    tls: bool,
    dead_peer: DeadPeer,
    /// How long the watcher waits for the victim to leave.
    wait: Duration,
}

/// What happened.
#[derive(Debug)]
struct Outcome {
    name: &'static str,
    victim: Ipv4Addr,
    /// From the moment the victim vanished to the watcher reading its leave line;
    /// `None` if it did not come within the wait.
    left_after: Option<Duration>,
    /// The server's `left` log line for the victim.
    logged: Option<String>,
}

/// Starts a server, the watcher, the talker if any and the victim; makes the victim
/// vanish and waits for the watcher to see it leave. When it does, checks that its slot
/// and nickname are free.
fn run(case: &Case) -> Outcome {
    let s = common::start(|c| {
        c.dead_peer = case.dead_peer;
        c.shutdown_grace = Duration::from_millis(200);
        if case.tls {
            c.tls = Some(TlsConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                identity: Identity::self_signed(None, None).expect("self-signed"),
            });
        }
    });
    let addr = s.local_addr();
    let nick = format!("{}vic", case.name);
    let mut watcher = Client::join(addr, &format!("{}watch", case.name));
    // Held until the end: the victim's socket stays open, as a vanished machine's does.
    let victim: Box<dyn Send> = match s.tls_addr() {
        Some(tls) => Box::new(tls_join_from(tls, case.victim, &nick)),
        None => Box::new(join_from(addr, case.victim, &nick)),
    };
    watcher.expect(&format!("{nick} has joined the chat"));

    let stop = Arc::new(AtomicBool::new(false));
    let talker = match case.chat {
        Chat::Quiet => None,
        Chat::Busy(every) => {
            let mut t = Client::join(addr, &format!("{}talk", case.name));
            watcher.expect(&format!("{} has joined the chat", t.nick));
            let stop = stop.clone();
            let most = (case.wait.as_millis() / every.as_millis().max(1)) as usize + 100;
            Some(std::thread::spawn(move || {
                for n in 0..most {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    t.say(&format!("line {n}"));
                    std::thread::sleep(every);
                }
                t
            }))
        }
    };
    // Let the first lines reach the victim (and be acknowledged) before it vanishes.
    std::thread::sleep(Duration::from_millis(300));
    vanish(case.victim);
    let vanished = Instant::now();
    let gone = format!("{nick} has left the chat");
    let mut left_after = None;
    let deadline = vanished + case.wait;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match watcher.next(deadline - now) {
            Got::Line(l) if l == gone => {
                left_after = Some(vanished.elapsed());
                break;
            }
            Got::Line(_) | Got::Timeout => {}
            other => panic!("{}: the watcher got {other:?}", case.name),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _talker = talker.map(|t| t.join().expect("talker"));
    if left_after.is_some() {
        // The slot is free (watcher and talker remain) and so is the nickname.
        let remaining = 1 + usize::from(matches!(case.chat, Chat::Busy(_)));
        common::eventually("the victim's slot is freed", || {
            s.hub().open_connections() == remaining
        });
        let _again = Client::join(addr, &nick);
    }
    drop(victim);
    Outcome {
        name: case.name,
        victim: case.victim,
        left_after,
        logged: left_line(&nick),
    }
}

/// Runs the cases side by side in one private network; `None` where none can be made.
fn run_all(cases: Vec<Case>) -> Option<Vec<Outcome>> {
    log();
    // A thread of its own: the namespace stays with it (and the threads it starts).
    std::thread::spawn(move || {
        if !private_network() {
            return None;
        }
        let runs: Vec<_> = cases
            .into_iter()
            .map(|case| std::thread::spawn(move || run(&case)))
            .collect();
        Some(runs.into_iter().map(|r| r.join().expect("case")).collect())
    })
    .join()
    .expect("namespace thread")
}

fn short() -> DeadPeer {
    DeadPeer {
        keepalive_idle: Duration::from_secs(2),
        keepalive_interval: Duration::from_secs(1),
        keepalive_probes: 3,
        user_timeout: Some(Duration::from_secs(5)),
    }
}

fn assert_timed_out(o: &Outcome) {
    let line = o
        .logged
        .as_deref()
        .unwrap_or_else(|| panic!("{o:?}: no `left` log line"));
    let text = String::from_utf8_lossy(&log().lock().unwrap()).into_owned();
    let about: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&o.victim.to_string()))
        .collect();
    assert!(
        line.contains("timed out"),
        "{}: logged {line:?}; about its address: {about:#?}",
        o.name
    );
}

/// The four cases side by side, victims at 127.0.0.`first` and the next three: quiet,
/// busy (a line every `every`), busy with the victim on TLS, and busy without a user
/// timeout (as before CONN-5 pinned one); each watcher waits at most its `waits` entry
/// (quiet, busy, before: the TLS case waits as long as the busy one).
fn the_cases(
    first: u8,
    dead_peer: DeadPeer,
    every: Duration,
    waits: [Duration; 3],
) -> Option<Vec<Outcome>> {
    let [quiet, busy, before] = waits;
    let outcomes = run_all(vec![
        Case {
            name: "quiet",
            victim: Ipv4Addr::new(127, 0, 0, first),
            chat: Chat::Quiet,
            tls: false,
            dead_peer,
            wait: quiet,
        },
        Case {
            name: "busy",
            victim: Ipv4Addr::new(127, 0, 0, first + 1),
            chat: Chat::Busy(every),
            tls: false,
            dead_peer,
            wait: busy,
        },
        Case {
            name: "tls",
            victim: Ipv4Addr::new(127, 0, 0, first + 2),
            chat: Chat::Busy(every),
            tls: true,
            dead_peer,
            wait: busy,
        },
        Case {
            name: "before",
            victim: Ipv4Addr::new(127, 0, 0, first + 3),
            chat: Chat::Busy(every),
            tls: false,
            dead_peer: DeadPeer {
                user_timeout: None,
                ..dead_peer
            },
            wait: before,
        },
    ])?;
    for o in &outcomes {
        eprintln!(
            "{}: left after {:?}; logged {:?}",
            o.name, o.left_after, o.logged
        );
    }
    Some(outcomes)
}

#[test]
fn conn_5_a_vanished_peer_leaves_within_the_timeouts() {
    let t = short();
    let user_timeout = t.user_timeout.unwrap();
    let keepalive = t.keepalive_idle + t.keepalive_interval * t.keepalive_probes;
    let every = Duration::from_millis(100);
    let margin = Duration::from_secs(5);
    let waits = [
        keepalive + margin,
        user_timeout + margin,
        user_timeout + margin,
    ];
    let Some(outcomes) = the_cases(50, t, every, waits) else {
        return;
    };
    let [quiet, busy, tls, before] = &outcomes[..] else {
        unreachable!()
    };
    // Quiet: keepalive's span after the victim's last packet, which came just before it
    // vanished; not before the first probe was due.
    let q = quiet.left_after.expect("the quiet victim left");
    assert!(
        q > t.keepalive_idle && q < keepalive + Duration::from_secs(2),
        "quiet: {q:?}"
    );
    assert_timed_out(quiet);
    // Busy: the user timeout after the first unacknowledged line, sent within `every`
    // of the vanishing; the same under TLS.
    for o in [busy, tls] {
        let b = o.left_after.expect("the busy victim left");
        assert!(
            b > user_timeout - every * 2 && b < user_timeout + Duration::from_secs(2),
            "{}: {b:?}",
            o.name
        );
        assert_timed_out(o);
    }
    // Without the user timeout nothing would have ended the busy case by now.
    assert_eq!(
        before.left_after, None,
        "left without a user timeout: {before:?}"
    );
}

/// The spec's numbers, measured: run by hand with `cargo test -p chat-server --test
/// vanish -- --ignored --nocapture` (up to 20 minutes: the last case waits for the
/// kernel's default; the figures are the kernel's timers, not the build's speed). One
/// line a second keeps the busy chats busy.
#[test]
#[ignore = "up to 20 minutes; measures the spec's numbers for docs/reliability.md"]
fn vanish_at_the_specs_numbers() {
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let waits = [minutes(2), minutes(2), minutes(20)];
    let every = Duration::from_secs(1);
    let Some(outcomes) = the_cases(60, DeadPeer::default(), every, waits) else {
        return;
    };
    assert!(outcomes[..3].iter().all(|o| o.left_after.is_some()));
}
