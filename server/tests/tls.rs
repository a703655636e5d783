//! TLS (spec §19): plain and TLS clients in one chat, the certificate's fingerprint,
//! hostile input on the TLS port (garbage, plain text, a handshake that never ends), the
//! shared per-address limits, and clear start-up errors for bad certificate files.

#![cfg(test)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_proto::{ErrorCode, Frame, Framer};
use chat_server::tls::{Identity, TlsConfig, TlsError};
use chat_server::{Config, ServerHandle};
use chat_tls::{ConnectError, Fingerprint, Trust};
use common::{Client, WAIT, eventually, start};

/// A server with a TLS listener on a free loopback port, and its fingerprint.
fn start_tls(f: impl FnOnce(&mut Config)) -> (ServerHandle, SocketAddr, Fingerprint) {
    let identity = Identity::self_signed(None, None).expect("self-signed");
    let fingerprint = identity.fingerprint();
    let server = start(|c| {
        c.tls = Some(TlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            identity,
        });
        f(c);
    });
    let addr = server.tls_addr().expect("TLS listener");
    (server, addr, fingerprint)
}

/// A blocking TLS chat client whose every read has a deadline.
struct TlsClient {
    stream: chat_tls::Stream,
    framer: Framer,
    lines: std::collections::VecDeque<String>,
    closed: bool,
}

impl TlsClient {
    fn connect(addr: SocketAddr, trust: Trust) -> Result<TlsClient, ConnectError> {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        tcp.set_write_timeout(Some(WAIT)).unwrap();
        let (stream, _) = chat_tls::connect(tcp, "127.0.0.1", trust)?;
        Ok(TlsClient {
            stream,
            framer: Framer::new(),
            lines: Default::default(),
            closed: false,
        })
    }

    fn join(addr: SocketAddr, fp: Fingerprint, nick: &str) -> TlsClient {
        let mut c = TlsClient::connect(addr, Trust::Pinned(fp)).expect("TLS connect");
        c.expect("NICK");
        c.send(&format!("{nick}\n"));
        c.expect(&format!("{nick} has joined the chat"));
        c.expect("Connected to the server");
        c
    }

    fn send(&mut self, text: &str) {
        chat_tls::write_all(&mut self.stream, text.as_bytes()).expect("write");
    }

    /// The next line, or `None` once the server closed the connection.
    fn next(&mut self) -> Option<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.lines.pop_front() {
                return Some(l);
            }
            if self.closed {
                return None;
            }
            assert!(Instant::now() < deadline, "no line in time");
            let mut buf = [0u8; 8192];
            match chat_tls::read(&mut self.stream, &mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    let lines = &mut self.lines;
                    self.framer.push(&buf[..n], |f| match f {
                        Frame::Line(l) => lines.push_back(l.to_owned()),
                        other => panic!("broken line {other:?}"),
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.next().as_deref(), Some(want));
    }
}

/// True when the peer closed `tcp` (EOF or reset) within `within`; false when it is
/// still open then.
fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tcp.set_read_timeout(Some(left)).unwrap();
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // a TLS alert, say
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// TLS-1, TLS-6: plain and TLS clients are in the same chat and see each other's lines;
/// the protocol inside TLS is the plain protocol, shutdown line included.
#[test]
fn tls_6_plain_and_tls_clients_share_the_chat() {
    let (server, tls_addr, fp) = start_tls(|c| c.flood = chat_server::flood::FloodLimit::off());
    let mut plain = Client::join(server.local_addr(), "plainuser");
    let mut secure = TlsClient::join(tls_addr, fp, "tlsuser");
    plain.expect("tlsuser has joined the chat");
    secure.send("hello from TLS\n");
    secure.expect("tlsuser: hello from TLS");
    plain.expect("tlsuser: hello from TLS");
    plain.say("hello from plain");
    plain.expect("plainuser: hello from plain");
    secure.expect("plainuser: hello from plain");
    // A long burst goes through the TLS writer's buffer whole and in order.
    let mut want = Vec::new();
    for i in 0..300 {
        let line = format!("line {i} {}", "x".repeat(i % 200));
        plain.say(&line);
        want.push(format!("plainuser: {line}"));
    }
    for w in &want {
        secure.expect(w);
    }
    secure.send("/quit\n");
    drain_to_close(&mut secure);
    plain.skip_until("tlsuser has left the chat");
    let mut late = TlsClient::join(tls_addr, fp, "late");
    plain.expect("late has joined the chat");
    server.shutdown();
    assert!(
        late.next()
            .is_some_and(|l| l.starts_with("ERR server-shutdown"))
    );
    assert_eq!(late.next(), None);
}

/// Reads (bounded) until the server closes the connection.
fn drain_to_close(c: &mut TlsClient) {
    for _ in 0..100 {
        if c.next().is_none() {
            return;
        }
    }
    panic!("not closed");
}

/// TLS-5: garbage bytes and a plain-text client on the TLS port are closed at once (no
/// wait for the handshake time limit), the slot is freed, and the server carries on.
#[test]
fn tls_5_garbage_and_plain_text_on_the_tls_port_are_closed() {
    let (server, tls_addr, fp) = start_tls(|c| c.handshake_timeout = Duration::from_secs(30));
    let mut rng = fastrand::Rng::with_seed(14);
    let garbage: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
    let inputs: [&[u8]; 4] = [
        b"alice\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &garbage,
        // A TLS record header announcing a huge handshake message, then junk.
        b"\x16\x03\x01\xff\xff\x01\x00\xff\xfb\x03\x03junkjunk",
    ];
    for input in inputs {
        let mut tcp = TcpStream::connect(tls_addr).unwrap();
        let started = Instant::now();
        let _ = tcp.write_all(input);
        assert!(
            closed_within(&mut tcp, Duration::from_secs(5)),
            "not closed: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(20)])
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    eventually("slots freed", || server.hub().open_connections() == 0);
    // Still serving both listeners.
    let mut secure = TlsClient::join(tls_addr, fp, "after");
    let mut plain = Client::join(server.local_addr(), "plain");
    secure.expect("plain has joined the chat");
    plain.say("ok");
    secure.expect("plain: ok");
}

/// TLS-4: a client that opens TLS connections and never finishes the handshake holds
/// them no longer than the handshake time limit, and no more of them than the
/// per-address handshake limit, which counts plain and TLS connections together.
#[test]
fn tls_4_unfinished_handshakes_are_bounded_in_time_and_number() {
    let limit = Duration::from_millis(400);
    let (server, tls_addr, fp) = start_tls(|c| {
        c.handshake_timeout = limit;
        c.per_address.handshakes = 2;
        c.per_address.connections = 10;
    });
    // Half a ClientHello: the server waits for the rest.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut t = TcpStream::connect(tls_addr).unwrap();
            t.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                .unwrap();
            t
        })
        .collect();
    eventually("two handshakes held", || {
        server.hub().open_connections() == 2
    });
    // A third handshake from the same address is turned away, on either port: over TLS
    // with its ERR line inside TLS (TLS-5), holding no slot.
    let mut third = TlsClient::connect(tls_addr, Trust::Pinned(fp)).unwrap();
    assert!(
        third
            .next()
            .is_some_and(|l| l.starts_with("ERR too-many-connections"))
    );
    assert_eq!(third.next(), None);
    let mut plain = Client::connect(server.local_addr());
    plain.expect_err(ErrorCode::TooManyConnections);
    assert_eq!(server.hub().open_connections(), 2);
    // A refused client that never finishes its TLS handshake is closed at the limit too.
    let mut silent = TcpStream::connect(tls_addr).unwrap();
    assert!(closed_within(&mut silent, limit + Duration::from_secs(2)));
    // The stalled ones are closed by the handshake time limit.
    let started = Instant::now();
    for t in &mut stalled {
        assert!(closed_within(t, Duration::from_secs(5)));
    }
    assert!(started.elapsed() < limit + Duration::from_secs(2));
    eventually("slots freed", || server.hub().open_connections() == 0);
    // The limit counts from the accept and covers the nickname too: a TLS client that
    // completes TLS but never sends a nickname is told so at the same limit.
    let mut slow = TlsClient::connect(tls_addr, Trust::Pinned(fp)).unwrap();
    slow.expect("NICK");
    assert!(
        slow.next()
            .is_some_and(|l| l.starts_with("ERR handshake-timeout"))
    );
    assert_eq!(slow.next(), None);
}

/// TLS-7: a client that pinned another fingerprint refuses the server and can name the
/// fingerprint it was shown.
#[test]
fn tls_7_wrong_fingerprint_is_refused() {
    let (server, tls_addr, fp) = start_tls(|_| {});
    let wrong = Fingerprint([7; 32]);
    match TlsClient::connect(tls_addr, Trust::Pinned(wrong)) {
        Err(ConnectError::Mismatch { pinned, presented }) => {
            assert_eq!(pinned, wrong);
            assert_eq!(presented, fp);
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a wrong fingerprint was accepted"),
    }
    eventually("slot freed", || server.hub().open_connections() == 0);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chat-tls-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// TLS-2: certificate and key errors stop the start with a clear message: a missing
/// file, a file that is not PEM, a key that is not the certificate's.
#[test]
fn tls_2_bad_certificate_files_are_clear_errors() {
    let dir = temp_dir("bad");
    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let other_key = dir.join("other-key.pem");
    let junk = dir.join("junk.pem");
    std::fs::write(&cert, a.cert.pem()).unwrap();
    std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();
    std::fs::write(&other_key, b.signing_key.serialize_pem()).unwrap();
    std::fs::write(&junk, "this is not PEM\n").unwrap();
    let missing = dir.join("missing.pem");

    let ok = Identity::from_pem_files(&cert, &key).unwrap();
    assert_eq!(
        ok.fingerprint(),
        chat_tls::fingerprint_of(a.cert.der().as_ref())
    );
    let err = |c: &PathBuf, k: &PathBuf| Identity::from_pem_files(c, k).unwrap_err();
    assert!(matches!(err(&missing, &key), TlsError::ReadCert { .. }));
    assert!(matches!(err(&cert, &missing), TlsError::ReadKey { .. }));
    assert!(matches!(err(&junk, &key), TlsError::BadCert { .. }));
    assert!(matches!(err(&cert, &junk), TlsError::BadKey { .. }));
    assert!(matches!(err(&key, &key), TlsError::BadCert { .. }));
    let mismatch = err(&cert, &other_key);
    assert!(matches!(mismatch, TlsError::Mismatch { .. }), "{mismatch}");
    assert!(mismatch.to_string().contains("does not belong"));

    // The binary says so and stops.
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = run(&[
        "--tls-cert".as_ref(),
        missing.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]);
    assert!(
        text.contains("cannot read the TLS certificate file") && text.contains("missing.pem"),
        "{text}"
    );
    let text = run(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        other_key.as_os_str(),
    ]);
    assert!(
        text.contains("does not belong to the certificate"),
        "{text}"
    );
    let text = run(&[]);
    assert!(text.contains("--tls-listen needs"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

/// TLS-3: the binary prints the fingerprint of the certificate it serves in its banner,
/// and it is the one a client sees.
#[test]
fn tls_3_banner_shows_the_served_fingerprint() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-self-signed",
            "--threads",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut fp = None;
    for line in lines.by_ref().take(30) {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("TLS listening on ") {
            addr = Some(a.parse::<SocketAddr>().unwrap());
        }
        if let Some(f) = line.trim().strip_prefix("certificate ") {
            fp = Some(f.parse::<Fingerprint>().unwrap());
        }
        if line.starts_with("Connect with TLS") {
            break;
        }
    }
    let (addr, fp) = (addr.expect("TLS address"), fp.expect("fingerprint"));
    let result = TlsClient::connect(addr, Trust::Any).map(|mut c| {
        c.expect("NICK");
        chat_tls::fingerprint_of(c.stream.conn.peer_certificates().unwrap()[0].as_ref())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(result.unwrap(), fp);
}
