//! Fault tests (issue 7): clients that trickle bytes (slowloris), and thousands of
//! connections opened and closed in a loop in every way. Each loop is bounded in count
//! and time; afterwards every slot is free and the server serves as before.

#![cfg(test)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::{Client, Got, eventually, start};

/// Slowloris in the handshake: one byte per 400 ms never completes a nickname; the total
/// handshake limit closes it (NICK-6) while others join and chat without delay (NICK-8).
#[test]
fn slowloris_in_handshake_is_cut_off_and_blocks_nobody() {
    let server = start(|c| c.handshake_timeout = Duration::from_millis(1500));
    let addr = server.local_addr();
    let mut slow = Client::connect(addr);
    slow.expect("NICK");
    let started = Instant::now();
    let mut a = None;
    for (i, b) in b"slowpoke".iter().enumerate() {
        // Stop before the limit; a write after it may meet a closed socket.
        if started.elapsed() > Duration::from_millis(1200) {
            break;
        }
        slow.send_raw(&[*b]);
        if i == 1 {
            // Joining and chatting meanwhile is not delayed by the trickler.
            let t = Instant::now();
            let mut c = Client::join(addr, "alice");
            c.say("hello");
            c.expect("alice: hello");
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "join held up: {:?}",
                t.elapsed()
            );
            a = Some(c);
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    slow.expect_err(ErrorCode::HandshakeTimeout);
    slow.expect_closed();
    let mut a = a.expect("alice joined");
    a.expect_quiet();
}

/// Slowloris while chatting: a line trickled one byte at a time arrives whole once its
/// LF does; others' lines pass it meanwhile (CONN-3, FRAME-1).
#[test]
fn slowloris_while_chatting_delays_only_itself() {
    let server = start(|_| {});
    let addr = server.local_addr();
    let mut slow = Client::join(addr, "slow");
    let mut fast = Client::join(addr, "fast");
    slow.expect("fast has joined the chat");
    for (i, b) in b"trickled line\n".iter().enumerate() {
        slow.send_raw(&[*b]);
        if i == 3 {
            fast.say("meanwhile");
            fast.expect("fast: meanwhile");
            slow.expect("fast: meanwhile");
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    slow.expect("slow: trickled line");
    fast.expect("slow: trickled line");
}

/// 3000 connections opened and closed in a loop, mixing: close at once, reset at once,
/// close or reset mid-handshake with half a nickname, join then vanish with half a line,
/// join then /quit. The server keeps serving, and every slot and nickname is freed.
#[test]
fn thousands_of_connections_opened_and_closed() {
    let server = start(|c| c.max_clients = 500);
    let addr = server.local_addr();
    let mut watcher = Client::join(addr, "watcher");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut joined = 0;
    for i in 0..3000 {
        assert!(Instant::now() < deadline, "churn loop too slow at {i}");
        match i % 6 {
            0 => drop(TcpStream::connect(addr).expect("connect")),
            1 => Client::connect(addr).reset(),
            2 => {
                let mut c = Client::connect(addr);
                c.expect("NICK");
                c.send_raw(b"half-a-ni");
                drop(c);
            }
            3 => {
                let mut c = Client::connect(addr);
                c.send_raw(b"\xff\xfe junk");
                c.reset();
            }
            4 => {
                let mut c = Client::join(addr, &format!("churn{i}"));
                c.send_raw(b"an unterminated li");
                c.reset();
                joined += 1;
            }
            _ => {
                let mut c = Client::join(addr, &format!("churn{i}"));
                c.say("/quit");
                // Notices already queued (earlier churners leaving) come first, then EOF.
                loop {
                    match c.next(Duration::from_secs(5)) {
                        Got::Line(_) => {}
                        Got::Closed => break,
                        Got::Timeout => panic!("no close after /quit"),
                    }
                }
                joined += 1;
            }
        }
    }
    // Every user that joined left exactly once, as the watcher saw.
    let mut joins = 0;
    let mut leaves = 0;
    let end = Instant::now() + Duration::from_secs(20);
    while leaves < joined {
        assert!(
            Instant::now() < end,
            "only {leaves} of {joined} leaves seen"
        );
        let l = watcher.line();
        if l.ends_with(" has joined the chat") {
            joins += 1;
        } else if l.ends_with(" has left the chat") {
            leaves += 1;
        }
    }
    assert_eq!(joins, joined);
    eventually("every slot freed", || server.hub().open_connections() == 1);
    assert_eq!(server.hub().users(), 1);
    // Still serving, and a name used in the churn is free again.
    let mut again = Client::join(addr, "churn5");
    again.say("still here");
    again.expect("churn5: still here");
    watcher.expect("churn5 has joined the chat");
    watcher.expect("churn5: still here");
}
