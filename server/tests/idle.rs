//! IDLE-1: with `--idle-timeout`, a joined user who sends nothing for that long is told
//! `ERR idle-timeout` and disconnected; the others see them leave; anyone who sends
//! something in time stays. Without the setting a quiet user stays.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_proto::{ErrorCode, ServerMessage};
use common::{Client, Got, start, start_default};

const LIMIT: Duration = Duration::from_millis(400);

/// IDLE-1: the silent user is cut off within the limit (plus scheduling slack), with a
/// clear error; the talking user stays; the nickname is free again (CONN-2).
#[test]
fn idle_1_silent_user_disconnected_talking_user_stays() {
    let server = start(|c| c.idle_timeout = Some(LIMIT));
    let addr = server.local_addr();
    let started = Instant::now();
    let mut quiet = Client::join(addr, "quiet");
    let mut talker = Client::join(addr, "talker");
    quiet.expect("talker has joined the chat");
    // talker speaks every 100 ms for a full second: more than twice the limit.
    let mut seen = Vec::new();
    for i in 0..10 {
        talker.say(&format!("still here {i}"));
        seen.extend(talker.skip_until(&format!("talker: still here {i}")));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        seen,
        ["quiet has left the chat"],
        "talker stayed, quiet left"
    );
    let text = skip_until_err(&mut quiet, ErrorCode::IdleTimeout);
    assert!(text.contains("400 ms"), "{text}");
    quiet.expect_closed();
    let took = started.elapsed();
    eprintln!("IDLE-1: silent user closed {took:?} after joining, limit {LIMIT:?}");
    assert!(took >= LIMIT, "closed before the limit: {took:?}");
    // Reading, unlike sending, does not count: talker is still connected and can rejoin
    // quiet's nickname for it.
    let _again = Client::join(addr, "quiet");
    talker.expect("quiet has joined the chat");
}

/// IDLE-1: the limit is for joined users; the handshake keeps its own (NICK-6), and a
/// connection still choosing a nickname is not cut off as idle.
#[test]
fn idle_1_handshake_not_affected() {
    let server = start(|c| {
        c.idle_timeout = Some(Duration::from_millis(200));
        c.handshake_timeout = Duration::from_secs(2);
    });
    let mut c = Client::connect(server.local_addr());
    c.expect("NICK");
    assert_eq!(c.next(Duration::from_millis(600)), Got::Timeout);
    c.send_nick("late");
    c.expect("late has joined the chat");
}

/// IDLE-1: off by default: a silent user is not disconnected.
#[test]
fn idle_1_off_by_default() {
    let server = start_default();
    let mut quiet = Client::join(server.local_addr(), "quiet");
    assert_eq!(quiet.next(Duration::from_millis(600)), Got::Timeout);
    quiet.say("/who");
    quiet.expect("Users online: quiet");
}

/// Skips lines (the others' chat) until an `ERR` line with `code`; returns its text.
fn skip_until_err(c: &mut Client, code: ErrorCode) -> String {
    for _ in 0..100 {
        if let ServerMessage::Error { code: got, text } = c.msg() {
            assert_eq!(got, code, "{text}");
            return text.as_str().to_owned();
        }
    }
    panic!("no ERR {code}");
}
