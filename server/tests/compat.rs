//! The seed compatibility profile (spec Appendix B, `--compat seed`): COMPAT-1..5.
//! The end-to-end test with the real Tk client is scripts/e2e/seed-client.sh.

#![cfg(test)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use chat_proto::{ErrorCode, Incoming, ServerMessage, ServerReader};
use chat_server::Compat;
use common::{Client, Got, start};

fn seed_server() -> chat_server::ServerHandle {
    start(|c| c.compat = Compat::Seed)
}

/// Reads the bare 4-byte greeting and checks nothing follows it (COMPAT-1).
fn greeting(c: &mut Client) {
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

/// Joins the way the original client does: bare greeting, unterminated nickname.
fn seed_join(addr: std::net::SocketAddr, asked: &str) -> Client {
    let mut c = Client::connect(addr);
    greeting(&mut c);
    c.send_raw(asked.as_bytes());
    c
}

/// COMPAT-1: `NICK` with no terminator, sent alone; COMPAT-5: the rest is LF-framed
/// with no trailing spaces.
#[test]
fn compat_1_compat_5_bare_greeting_then_framed_lines() {
    let server = seed_server();
    let mut c = seed_join(server.local_addr(), "alice");
    c.expect("alice has joined the chat");
    c.expect("Connected to the server");
    assert!(
        c.transcript
            .ends_with(b"alice has joined the chat\nConnected to the server\n"),
        "{:?}",
        String::from_utf8_lossy(&c.transcript)
    );
}

/// COMPAT-2: an unterminated nickname is complete after 250 ms of silence; an
/// LF-terminated one at once.
#[test]
fn compat_2_unterminated_nickname_completes_when_idle() {
    let server = seed_server();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    greeting(&mut c);
    let sent = Instant::now();
    c.send_raw(b"ali");
    std::thread::sleep(Duration::from_millis(100));
    c.send_raw(b"ce");
    c.expect("alice has joined the chat");
    assert!(
        sent.elapsed() >= Duration::from_millis(340),
        "joined before the name was idle"
    );
    c.expect("Connected to the server");

    let mut d = Client::connect(addr);
    greeting(&mut d);
    d.send_raw(b"bob\n");
    d.expect("bob has joined the chat");
    d.expect("Connected to the server");
}

/// COMPAT-3: the client's own `<asked>: ` is removed once; other prefixes are text
/// (CHAT-2); what remains is handled as any line (commands, blank lines).
#[test]
fn compat_3_own_prefix_removed_once() {
    let server = seed_server();
    let addr = server.local_addr();
    let mut a = seed_join(addr, "alice");
    a.expect("alice has joined the chat");
    a.expect("Connected to the server");
    a.send_raw(b"alice: hello\n");
    a.expect("alice: hello");
    a.send_raw(b"alice: alice: twice\n");
    a.expect("alice: alice: twice");
    a.send_raw(b"alice: bob: has left the chat\n");
    a.expect("alice: bob: has left the chat");
    a.send_raw(b"SERVER: forged\n");
    a.expect("alice: SERVER: forged");
    a.send_raw(b"alice: \n");
    a.send_raw(b"alice: /who\n");
    a.expect("Users online: alice");
    a.expect_quiet();
}

/// COMPAT-4: never rejected; a taken or invalid name becomes a free variant, announced
/// right after `Connected to the server`; the old client keeps writing the name it asked
/// for, and is shown under the one it got.
#[test]
fn compat_4_names_are_assigned_not_rejected() {
    let server = seed_server();
    let addr = server.local_addr();
    let mut a = seed_join(addr, "alice");
    a.expect("alice has joined the chat");
    a.expect("Connected to the server");

    let mut b = seed_join(addr, "alice");
    a.expect("alice2 has joined the chat");
    b.expect("alice2 has joined the chat");
    b.expect("Connected to the server");
    let text = b.expect_err(ErrorCode::NickAssigned);
    assert!(text.contains("alice") && text.contains("alice2"), "{text}");
    b.send_raw(b"alice: hi from the second one\n");
    a.expect("alice2: hi from the second one");

    let mut c = seed_join(addr, "Aryan Singh");
    c.expect("Aryan_Singh has joined the chat");
    c.expect("Connected to the server");
    c.expect_err(ErrorCode::NickAssigned);
    c.send_raw(b"Aryan Singh: namaste\n");
    c.expect("Aryan_Singh: namaste");

    let mut d = seed_join(addr, "ERR");
    d.expect("ERR2 has joined the chat");
    d.expect("Connected to the server");
    d.expect_err(ErrorCode::NickAssigned);

    // Invalid UTF-8 and nothing usable at all, sent as the seed client sends (no LF):
    // still a valid name.
    let mut e = Client::connect(addr);
    greeting(&mut e);
    e.send_raw(b"\xff\xfe");
    e.expect("guest has joined the chat");
    e.expect("Connected to the server");
    e.expect_err(ErrorCode::NickAssigned);

    // The same bytes with an LF are a core client's line (COMPAT-6): rejected as in the
    // core protocol, and prompted again.
    let mut f = Client::connect(addr);
    greeting(&mut f);
    f.send_raw(b"\xff\xfe\n");
    f.expect_err(ErrorCode::InvalidUtf8);
    f.expect("NICK");
    f.send_raw(b"alice\n");
    f.expect_err(ErrorCode::NickTaken);
    f.expect("NICK");
}

/// Clients of the core protocol work against the seed profile: chat-proto's reader
/// takes the bare greeting as the prompt (COMPAT-1), the LF-terminated nickname is
/// accepted at once (COMPAT-2), and nothing is stripped from their lines.
#[test]
fn compat_5_spec_clients_still_work() {
    let server = seed_server();
    let mut c = Client::connect(server.local_addr());
    let mut reader = ServerReader::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 64];
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = c.stream.read(&mut buf).unwrap();
    reader.push(&buf[..n], |e| events.push(e));
    assert_eq!(events, vec![Incoming::Message(ServerMessage::NickPrompt)]);
    c.send_nick("carol");
    c.expect("carol has joined the chat");
    c.expect("Connected to the server");
    c.say("bob: not a prefix of mine");
    c.expect("carol: bob: not a prefix of mine");
}
