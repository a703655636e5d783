//! A small blocking test client and server starter shared by the integration tests.
//!
//! Every read has a deadline, so a missing line fails the test instead of hanging it.
//! Lines are framed and parsed with `chat-proto` (a server line that does not parse is a
//! test failure: SRV-1, SRV-2, FRAME-5 for the server's own output). Hostile input is
//! sent as raw bytes on purpose; well-formed input is encoded with `chat-proto`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_proto::limits::MAX_TAGGED_SERVER_LINE_BYTES;
use chat_proto::{ClientMessage, ErrorCode, Frame, Framer, Nickname, ServerMessage};
use chat_server::{Config, Server, ServerHandle};

/// How long a test waits for a line it expects.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(200);

/// Starts a server on 127.0.0.1 with an OS-chosen port, with settings changed by `f`.
pub fn start(f: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config::loopback_ephemeral();
    config.threads = 2;
    f(&mut config);
    Server::bind(config).expect("bind").spawn().expect("spawn")
}

/// Starts the real `chat-server` binary on a free port with `args` (and two threads),
/// and reads the address from its banner.
pub fn spawn_binary(args: &[&str]) -> (std::process::Child, SocketAddr) {
    spawn_binary_at(env!("CARGO_BIN_EXE_chat-server").as_ref(), args)
}

/// [`spawn_binary`] with the binary at `bin` (a release build, for a test whose figures
/// depend on the build).
pub fn spawn_binary_at(bin: &std::path::Path, args: &[&str]) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chat-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().expect("banner").expect("banner line");
    let addr = first
        .strip_prefix("chat-server listening on ")
        .unwrap_or_else(|| panic!("banner: {first}"));
    let addr: SocketAddr = addr.parse().expect("address");
    // Keep reading the banner in the background so the pipe never fills.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// A `/proc/PID/status` figure in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field}"))
}

/// Starts a server with the default settings.
pub fn start_default() -> ServerHandle {
    start(|_| {})
}

/// What reading produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    Line(String),
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing within the time.
    Timeout,
}

pub struct Client {
    pub stream: TcpStream,
    framer: Framer,
    lines: VecDeque<String>,
    closed: bool,
    /// Every byte received, to check the raw wire (FRAME-2).
    pub transcript: Vec<u8>,
    pub nick: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps an already connected socket.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            framer: Framer::with_limit(MAX_TAGGED_SERVER_LINE_BYTES),
            lines: VecDeque::new(),
            closed: false,
            transcript: Vec::new(),
            nick: String::new(),
        }
    }

    /// Connects and completes the handshake as `nick`, checking NICK-1 and NICK-7.
    pub fn join(addr: SocketAddr, nick: &str) -> Client {
        let mut c = Client::connect(addr);
        c.expect("NICK");
        c.send_nick(nick);
        c.expect(&format!("{nick} has joined the chat"));
        c.expect("Connected to the server");
        c.nick = nick.to_owned();
        c
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a valid nickname line (encoded by chat-proto).
    pub fn send_nick(&mut self, nick: &str) {
        let mut out = Vec::new();
        Nickname::new(nick)
            .expect("valid nick")
            .encode_line(&mut out);
        self.send_raw(&out);
    }

    /// Sends a line as a user would type it (parsed and encoded by chat-proto).
    pub fn say(&mut self, input: &str) {
        let msg = ClientMessage::parse(input).expect("valid input");
        let mut out = Vec::new();
        msg.encode(&mut out);
        self.send_raw(&out);
    }

    /// Reads until a full line is available, the connection closes, or `within` passes.
    pub fn next(&mut self, within: Duration) -> Got {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.lines.pop_front() {
                return Got::Line(l);
            }
            if self.closed {
                return Got::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Got::Timeout;
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .expect("timeout");
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.feed(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.transcript.extend_from_slice(bytes);
        let lines = &mut self.lines;
        self.framer.push(bytes, |frame| match frame {
            Frame::Line(l) => {
                // SRV-1/SRV-2/ERR-1: every server line parses to exactly one form (with
                // tags, TAG-1, after a test enabled them).
                if let Err(e) = ServerMessage::parse_tagged(l) {
                    panic!("server sent a line outside the grammar: {l:?}: {e}");
                }
                lines.push_back(l.to_owned());
            }
            other => panic!("server sent a broken line: {other:?}"),
        });
    }

    /// The next line; fails the test if none arrives in time.
    pub fn line(&mut self) -> String {
        match self.next(WAIT) {
            Got::Line(l) => l,
            other => panic!("{}: expected a line, got {other:?}", self.nick),
        }
    }

    pub fn msg(&mut self) -> ServerMessage {
        let l = self.line();
        ServerMessage::parse(&l).expect("parses")
    }

    /// The next line is `want`. A timeout names the line that did not come (a flake
    /// report that only says "expected a line" leaves one guessing which).
    pub fn expect(&mut self, want: &str) {
        match self.next(WAIT) {
            Got::Line(got) => assert_eq!(got, want, "{}: unexpected line", self.nick),
            other => panic!("{}: expected {want:?}, got {other:?}", self.nick),
        }
    }

    /// The next line is `ERR <code> ...`; returns its text.
    pub fn expect_err(&mut self, code: ErrorCode) -> String {
        match self.msg() {
            ServerMessage::Error { code: c, text } => {
                assert_eq!(c, code, "{}: wrong error code ({text})", self.nick);
                text.as_str().to_owned()
            }
            other => panic!("{}: expected ERR {code}, got {other}", self.nick),
        }
    }

    /// No more lines, then the connection closes.
    pub fn expect_closed(&mut self) {
        match self.next(WAIT) {
            Got::Closed => {}
            other => panic!(
                "{}: expected the connection to close, got {other:?}",
                self.nick
            ),
        }
    }

    /// Nothing arrives for a short while.
    pub fn expect_quiet(&mut self) {
        match self.next(QUIET) {
            Got::Timeout => {}
            other => panic!("{}: expected silence, got {other:?}", self.nick),
        }
    }

    /// Skips lines until `want` arrives; returns the lines skipped. Bounded by `WAIT`
    /// per line.
    pub fn skip_until(&mut self, want: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let l = self.line();
            if l == want {
                return skipped;
            }
            skipped.push(l);
        }
    }

    /// Closes our sending side (FIN), keeping the receiving side.
    pub fn half_close(&mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Closes with a reset (RST) instead of a FIN.
    pub fn reset(self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(self);
    }
}

/// Waits (bounded) until `f` is true.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads the seed profile's bare 4-byte greeting and checks nothing follows it
/// (COMPAT-1).
pub fn seed_greeting(c: &mut Client) {
    let mut buf = [0u8; 4];
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c.stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"NICK");
    assert_eq!(
        c.next(Duration::from_millis(300)),
        Got::Timeout,
        "nothing after the greeting"
    );
}

/// A TCP connection to `addr` from the local address `from` (any 127.0.0.x works on
/// Linux loopback), for tests of per-address rules (ADDR-1, MOD bans).
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::V4(std::net::SocketAddrV4::new(from, 0)).into())
        .expect("bind the source address");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .expect("connect");
    socket.into()
}

/// A client joined as `nick` from the local address `from` (see [`connect_from`]).
pub fn join_from(from: std::net::Ipv4Addr, addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::from_stream(connect_from(from, addr));
    c.nick = nick.to_owned();
    c.expect("NICK");
    c.send_nick(nick);
    c.expect(&format!("{nick} has joined the chat"));
    c.expect("Connected to the server");
    c
}

/// TAG-3, TAG-4, CLUSTER-6, shared by the one-server and the cluster tests: `alice`
/// joins at `a` and `bob` at `b` (the same server, or two nodes), both enable tags,
/// alice says `one` and `two`. Both read both lines in that order, and each event has
/// one id and one time on both connections. Returns the clients and each event's tags
/// (as alice got them), for what differs between engines.
pub fn one_event_one_id(a: SocketAddr, b: SocketAddr) -> (Client, Client, [chat_proto::Tags; 2]) {
    let mut alice = Client::join(a, "alice");
    let mut bob = Client::join(b, "bob");
    alice.expect("bob has joined the chat");
    for c in [&mut alice, &mut bob] {
        c.say("/caps tags");
        c.expect("Capabilities enabled: tags");
    }
    alice.say("one");
    alice.say("two");
    let mut seen = Vec::new();
    for c in [&mut alice, &mut bob] {
        for want in ["alice: one", "alice: two"] {
            let line = c.line();
            let (tags, msg) = ServerMessage::parse_tagged(&line).expect("a server line");
            assert_eq!(msg.to_string(), want, "{}", c.nick);
            assert!(tags.id.is_some() && tags.time.is_some(), "{line}");
            seen.push(tags);
        }
    }
    let (at_alice, at_bob) = seen.split_at(2);
    assert_eq!(
        at_alice, at_bob,
        "one event, one id and one time everywhere"
    );
    assert!(at_alice[0].id != at_alice[1].id, "two events, two ids");
    let mut events = at_alice.iter().cloned();
    let tags = [events.next().expect("one"), events.next().expect("two")];
    (alice, bob, tags)
}
