//! Spec §3, the handshake: NICK-1..8, and DEFECTS.md items 2, 3, 7, 8.

#![cfg(test)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::{Client, Got, start, start_default};

/// NICK-1: the first line is `NICK`.
#[test]
fn nick_1_first_line_is_nick() {
    let s = start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    c.expect_quiet();
}

/// NICK-2, NICK-5: invalid nicknames are answered `nick-invalid` then `NICK`; taken
/// exactly as sent (no trimming).
#[test]
fn nick_2_nick_5_invalid_nicknames() {
    let s = start(|c| c.handshake_attempts = 100);
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    let too_long = "x".repeat(25);
    for bad in [
        "",
        " alice",
        "alice ",
        "Aryan Singh",
        "zoë",
        "a:b",
        too_long.as_str(),
        "/quit",
        "/nick bob",
    ] {
        c.send_raw(format!("{bad}\n").as_bytes());
        c.expect_err(ErrorCode::NickInvalid);
        c.expect("NICK");
    }
    let ok = "A_b-9".repeat(4) + "abcd";
    assert_eq!(ok.len(), 24);
    c.send_nick(&ok);
    c.expect(&format!("{ok} has joined the chat"));
    c.expect("Connected to the server");
}

/// NICK-3: unique case-insensitively; shown as spelled (DEFECTS.md item 3).
#[test]
fn nick_3_unique_case_insensitive() {
    let s = start_default();
    let mut alice = Client::join(s.local_addr(), "Alice");
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    for taken in ["alice", "ALICE", "Alice"] {
        c.send_raw(format!("{taken}\n").as_bytes());
        c.expect_err(ErrorCode::NickTaken);
        c.expect("NICK");
    }
    c.send_nick("alice2");
    c.expect("alice2 has joined the chat");
    c.expect("Connected to the server");
    alice.expect("alice2 has joined the chat");
    // Once Alice leaves, the name is free again (CONN-2).
    drop(alice);
    c.expect("Alice has left the chat");
    let mut again = Client::join(s.local_addr(), "aLiCe");
    again.say("hi");
    again.expect("aLiCe: hi");
}

/// NICK-4: `ERR` and `NICK` are reserved as spelled on the wire; `Nick` is a name.
#[test]
fn nick_4_reserved_words() {
    let s = start(|c| c.handshake_attempts = 100);
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    for word in ["ERR", "NICK"] {
        c.send_raw(format!("{word}\n").as_bytes());
        c.expect_err(ErrorCode::NickInvalid);
        c.expect("NICK");
    }
    c.send_nick("Nick");
    c.expect("Nick has joined the chat");
    c.expect("Connected to the server");
    let mut e = Client::join(s.local_addr(), "err");
    e.say("hi");
    e.expect("err: hi");
    c.expect("err has joined the chat");
    c.expect("err: hi");
}

/// NICK-5: framing errors in the handshake are answered, followed by `NICK`; invalid
/// UTF-8 does not kill anything (DEFECTS.md item 7): later connections still get `NICK`.
#[test]
fn nick_5_framing_errors_in_handshake() {
    let s = start(|c| c.handshake_attempts = 100);
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    c.send_raw(b"\xff\xfe\n");
    c.expect_err(ErrorCode::InvalidUtf8);
    c.expect("NICK");
    c.send_raw(b"bad\x07\n");
    c.expect_err(ErrorCode::InvalidText);
    c.expect("NICK");
    c.send_raw(&[b'n'; 2000]);
    c.send_raw(b"\n");
    c.expect_err(ErrorCode::LineTooLong);
    c.expect("NICK");
    let mut later = Client::connect(s.local_addr());
    later.expect("NICK");
    c.send_nick("fine");
    c.expect("fine has joined the chat");
}

/// NICK-6: after the configured number of rejected lines, `too-many-attempts` and close,
/// without `NICK`. Each rejected line still gets its own answer first.
#[test]
fn nick_6_too_many_attempts() {
    let s = start(|c| c.handshake_attempts = 3);
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    c.send_raw(b"bad one\n");
    c.expect_err(ErrorCode::NickInvalid);
    c.expect("NICK");
    c.send_raw(b"bad two\n");
    c.expect_err(ErrorCode::NickInvalid);
    c.expect("NICK");
    c.send_raw(b"bad three\n");
    c.expect_err(ErrorCode::NickInvalid);
    c.expect_err(ErrorCode::TooManyAttempts);
    c.expect_closed();
}

/// NICK-6: pipelined rejected lines (and more after them) in one write: the same answers,
/// the close, and the final lines are not lost to a reset.
#[test]
fn nick_6_too_many_attempts_pipelined() {
    let s = start(|c| c.handshake_attempts = 5);
    let mut c = Client::connect(s.local_addr());
    c.send_raw(b"1 \n2 \n3 \n4 \n5 \nlate\nmore junk\n");
    c.expect("NICK");
    for _ in 0..4 {
        c.expect_err(ErrorCode::NickInvalid);
        c.expect("NICK");
    }
    c.expect_err(ErrorCode::NickInvalid);
    c.expect_err(ErrorCode::TooManyAttempts);
    c.expect_closed();
}

/// NICK-6: the time limit is total for the handshake, not per attempt (a client cannot
/// hold a connection by retrying).
#[test]
fn nick_6_handshake_timeout_is_total() {
    let s = start(|c| {
        c.handshake_timeout = Duration::from_millis(400);
        c.handshake_attempts = 1000;
    });
    let started = Instant::now();
    let mut silent = Client::connect(s.local_addr());
    let mut retrier = Client::connect(s.local_addr());
    silent.expect("NICK");
    retrier.expect("NICK");
    let mut saw_timeout = false;
    'outer: for _ in 0..40 {
        retrier.send_raw(b"no good\n");
        loop {
            match retrier.next(Duration::from_millis(100)) {
                Got::Line(l) if l.starts_with("ERR handshake-timeout ") => {
                    saw_timeout = true;
                    break 'outer;
                }
                Got::Line(_) => {}
                Got::Timeout => break,
                Got::Closed => break 'outer,
            }
        }
    }
    retrier.expect_closed();
    assert!(saw_timeout, "the retrying client was never timed out");
    silent.expect_err(ErrorCode::HandshakeTimeout);
    silent.expect_closed();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "timed out early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "timed out late: {took:?}");
}

/// NICK-7: the newcomer gets its join notice, then `Connected to the server`, with
/// nothing in between; everyone else gets the join notice.
#[test]
fn nick_7_join_notice_then_connected() {
    let s = start_default();
    let mut bob = Client::join(s.local_addr(), "bob");
    let mut alice = Client::connect(s.local_addr());
    alice.expect("NICK");
    alice.send_nick("alice");
    alice.expect("alice has joined the chat");
    alice.expect("Connected to the server");
    bob.expect("alice has joined the chat");
    bob.expect_quiet();
}

/// NICK-7: of 16 connections racing for one nickname, exactly one wins (DEFECTS.md
/// item 3).
#[test]
fn nick_7_sixteen_connections_race_for_one_nickname() {
    let s = start_default();
    let addr = s.local_addr();
    let barrier = Arc::new(Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.expect("NICK");
                barrier.wait();
                c.send_nick("racer");
                let first = c.line();
                if first == "racer has joined the chat" {
                    c.expect("Connected to the server");
                    (true, c)
                } else {
                    assert!(first.starts_with("ERR nick-taken "), "{first}");
                    c.expect("NICK");
                    (false, c)
                }
            })
        })
        .collect();
    let results: Vec<(bool, Client)> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|(won, _)| *won).count(), 1);
    assert_eq!(s.hub().users(), 1);
}

/// NICK-8: a handshaking connection receives no chat events, and a silent client never
/// delays another's join (DEFECTS.md item 8).
#[test]
fn nick_8_handshake_isolated_and_never_blocks_others() {
    let s = start_default();
    let mut silent = Client::connect(s.local_addr());
    silent.expect("NICK");
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    a.say("anyone?");
    a.expect("alice: anyone?");
    b.expect("alice: anyone?");
    silent.expect_quiet();
    silent.send_nick("late");
    silent.expect("late has joined the chat");
    silent.expect("Connected to the server");
    silent.expect_quiet();
}

/// NICK-5: in the handshake, a blank line is an invalid nickname (a stray Enter gets an
/// answer) and does not count as chat.
#[test]
fn nick_5_empty_line_answered() {
    let s = start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    c.send_raw(b"\r\n");
    let text = c.expect_err(ErrorCode::NickInvalid);
    assert!(!text.trim().is_empty());
    c.expect("NICK");
}
