//! The `ping` capability (spec §13.1): a client that enabled it and answers `PING` stays;
//! one that stops answering is told `ERR ping-timeout`, closed, and seen to leave; a
//! client that never enabled it never sees a `PING`; bogus and flooded `/pong` lines get a
//! clear answer and harm nobody. Short intervals (a few hundred ms) keep every test within
//! seconds; every wait is bounded.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_proto::{ErrorCode, ServerMessage, Token};
use chat_server::liveness::PingTimes;
use common::{Client, Got, start, start_default};

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(300);

fn short() -> Option<PingTimes> {
    Some(PingTimes {
        interval: INTERVAL,
        timeout: TIMEOUT,
    })
}

/// Enables `ping` after the join (CAPS-3).
fn enable(c: &mut Client) {
    c.say("/caps ping");
    c.expect("Capabilities enabled: ping");
}

/// Reads for `span`, answering every `PING` with `/pong <token>` as PING-3 asks; returns
/// the tokens seen and the other lines.
fn answer_for(c: &mut Client, span: Duration) -> (Vec<String>, Vec<String>) {
    let end = Instant::now() + span;
    let (mut tokens, mut other) = (Vec::new(), Vec::new());
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match c.next(left) {
            Got::Line(l) => match ServerMessage::parse(&l) {
                Ok(ServerMessage::Ping(token)) => {
                    c.say(&format!("/pong {token}"));
                    tokens.push(token.to_string());
                }
                _ => other.push(l),
            },
            Got::Closed => panic!("{}: closed while answering PINGs ({other:?})", c.nick),
            Got::Timeout => break,
        }
    }
    (tokens, other)
}

/// PING-3, PING-4, PING-1, CONN-2: alice answers and stays through several probes; bob
/// enabled `ping` and went silent: `PING 1`, then `ERR ping-timeout` stating the times,
/// then the close, within interval + timeout plus slack; carol never enabled it, never
/// sees a `PING`, and sees bob leave with the core line.
#[test]
fn ping_4_silent_client_closed_answering_client_stays() {
    let server = start(|c| c.ping = short());
    let addr = server.local_addr();
    let mut carol = Client::join(addr, "carol");
    let mut alice = Client::join(addr, "alice");
    let mut bob = Client::join(addr, "bob");
    alice.expect("bob has joined the chat");
    enable(&mut alice);
    let enabled = Instant::now();
    enable(&mut bob);

    let (tokens, other) = answer_for(&mut alice, INTERVAL * 5);
    assert!(tokens.len() >= 2, "alice saw {tokens:?}");
    assert_eq!(tokens[..2], ["1", "2"], "PING-2: tokens count the probes");
    assert_eq!(other, ["bob has left the chat"], "alice stayed, bob left");
    alice.say("/who");
    alice.skip_until("Users online: alice, carol");
    alice.say("/quit");

    assert_eq!(bob.msg(), ServerMessage::Ping(Token::new("1").unwrap()));
    let text = bob.expect_err(ErrorCode::PingTimeout);
    assert!(
        text.contains("300 ms") && text.contains("PING"),
        "PING-4: the text states the times: {text}"
    );
    bob.expect_closed();
    // Not before interval + timeout (alice's reading above took longer than that, so the
    // upper bound is the read deadline; scripts/hostile.py vanish measures the time).
    let took = enabled.elapsed();
    assert!(took >= INTERVAL + TIMEOUT, "closed too early: {took:?}");

    let mut seen = carol.skip_until("bob has left the chat");
    seen.extend(carol.skip_until("alice has left the chat"));
    let (probes, _) = answer_for(&mut carol, INTERVAL * 3);
    assert!(
        probes.is_empty() && seen.iter().all(|l| !l.starts_with("PING")),
        "PING-1: carol never enabled ping: {seen:?} {probes:?}"
    );
    // The nickname is free again (CONN-2).
    let _bob = Client::join(addr, "bob");
}

/// PING-4: any line proves a client alive, not only `/pong`; PING-5: the last token is
/// accepted silently even when other input answered it first, and twice.
#[test]
fn ping_5_any_input_is_alive_and_a_late_pong_is_fine() {
    let server = start(|c| {
        c.ping = Some(PingTimes {
            interval: Duration::from_millis(400),
            timeout: Duration::from_millis(400),
        })
    });
    let mut alice = Client::join(server.local_addr(), "alice");
    enable(&mut alice);
    assert_eq!(alice.msg(), ServerMessage::Ping(Token::new("1").unwrap()));
    alice.say("still here");
    alice.expect("alice: still here");
    alice.say("/pong 1");
    alice.say("/pong 1");
    alice.say("/who");
    alice.expect("Users online: alice");
    assert_eq!(alice.msg(), ServerMessage::Ping(Token::new("2").unwrap()));
}

/// PING-5: `/pong` with a token never sent, before any `PING`, or malformed: a clear
/// `ERR bad-arguments`, nothing else changes. A flood of them is paced by the flood limit
/// (CONN-7) and reaches nobody else: a bystander's chat goes on.
#[test]
fn ping_5_bogus_and_flooded_pongs() {
    let server = start(|c| {
        c.ping = short();
        c.flood = chat_server::flood::FloodLimit::default();
    });
    let addr = server.local_addr();
    let mut mallory = Client::join(addr, "mallory");
    let mut dave = Client::join(addr, "dave");
    mallory.expect("dave has joined the chat");
    mallory.say("/pong 1");
    let text = mallory.expect_err(ErrorCode::BadArguments);
    assert!(text.contains("No PING with that token"), "{text}");
    mallory.send_raw(b"/pong\n/pong a b\n");
    assert_eq!(
        mallory.expect_err(ErrorCode::BadArguments),
        "Usage: /pong <token>"
    );
    mallory.expect_err(ErrorCode::BadArguments);

    // 250 bogus answers in one write: more than the flood burst (200 lines).
    let flood = "/pong 999999\n".repeat(250);
    mallory.send_raw(flood.as_bytes());
    dave.say("unaffected");
    dave.expect("dave: unaffected");
    let (mut errs, mut floods) = (0, 0);
    while errs < 250 {
        match mallory.msg() {
            ServerMessage::Error {
                code: ErrorCode::BadArguments,
                ..
            } => errs += 1,
            ServerMessage::Error {
                code: ErrorCode::Flood,
                ..
            } => floods += 1,
            ServerMessage::Chat { .. } => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(floods <= 1, "CONN-7: one ERR flood per excess period");
    assert_eq!(
        dave.next(common::QUIET),
        Got::Timeout,
        "dave saw nothing of it"
    );
    mallory.say("/who");
    mallory.expect("Users online: dave, mallory");
}

/// PING-6: `/ping` is answered `PONG` with the client's token, for a client that never
/// enabled anything too; in the handshake it is a nickname attempt (NICK-5).
#[test]
fn ping_6_ping_answered_pong_for_anyone() {
    let server = start_default();
    let mut c = Client::connect(server.local_addr());
    c.expect("NICK");
    c.send_raw(b"/ping x\n");
    c.expect_err(ErrorCode::NickInvalid);
    c.expect("NICK");
    c.send_nick("alice");
    c.expect("alice has joined the chat");
    c.expect("Connected to the server");
    c.say("/ping gui:12");
    c.expect("PONG gui:12");
    c.say("/PING  7 ");
    c.expect("PONG 7");
    c.send_raw(b"/ping \xc3\xa9\n");
    c.expect_err(ErrorCode::BadArguments);
    c.expect_quiet();
}

/// PING-1: the server offers `ping` by default; with probes off, or in the seed profile,
/// it does not, and `/caps ping` enables nothing.
#[test]
fn ping_1_offered_unless_off_or_seed() {
    let on = start_default();
    let mut c = Client::join(on.local_addr(), "alice");
    c.say("/caps");
    c.expect("Protocol 1.1 capabilities: tags history ping");

    for seed in [false, true] {
        let server = start(|c| {
            if seed {
                c.compat = chat_server::config::Compat::Seed;
            } else {
                c.ping = None;
            }
        });
        let mut c = Client::connect(server.local_addr());
        if seed {
            common::seed_greeting(&mut c);
        } else {
            c.expect("NICK");
        }
        c.send_raw(b"/caps\n/caps ping\n");
        c.expect("Protocol 1.1 capabilities: tags history");
        c.expect("NICK");
        c.expect_err(ErrorCode::UnknownCapability);
        c.expect("NICK");
    }
}

/// PING-7 (amends IDLE-1): a client that answers every `PING` but says nothing else is
/// still idle, and the idle limit closes it.
#[test]
fn ping_7_probes_do_not_feed_the_idle_limit() {
    let idle = Duration::from_millis(900);
    let server = start(|c| {
        c.idle_timeout = Some(idle);
        c.ping = Some(PingTimes {
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        });
    });
    let mut c = Client::join(server.local_addr(), "robot");
    enable(&mut c);
    let start = Instant::now();
    let mut pings = 0;
    loop {
        match c.next(common::WAIT) {
            Got::Line(l) => match ServerMessage::parse(&l).expect("parses") {
                ServerMessage::Ping(token) => {
                    pings += 1;
                    c.say(&format!("/pong {token}"));
                    c.say(&format!("/ping {token}"));
                }
                ServerMessage::Pong(_) => {}
                ServerMessage::Error {
                    code: ErrorCode::IdleTimeout,
                    ..
                } => break,
                other => panic!("unexpected {other}"),
            },
            other => panic!("no idle timeout: {other:?}"),
        }
    }
    c.expect_closed();
    let took = start.elapsed();
    assert!(pings >= 2, "answered {pings} probes");
    assert!(took < idle * 3, "idle limit reached late: {took:?}");
}

/// PING-8: `PING` and `PONG` are reserved nicknames, so no event line starts with them.
#[test]
fn ping_8_reserved_nicknames() {
    let server = start_default();
    let mut c = Client::connect(server.local_addr());
    c.expect("NICK");
    for name in ["PING", "PONG-2"] {
        c.send_raw(format!("{name}\n").as_bytes());
        c.expect_err(ErrorCode::NickInvalid);
        c.expect("NICK");
    }
    c.send_nick("Pingu");
    c.expect("Pingu has joined the chat");
}
