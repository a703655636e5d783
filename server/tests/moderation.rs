//! Moderation (spec §18) as a class would meet it, and as a hostile student would try to
//! get around it: operators, kicks, mutes, bans, and guessing the password. Clients
//! connect from different loopback addresses (127.0.0.x) where the address matters.
//!
//! Bounded: every read has a deadline; loopback only.

#![cfg(test)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use chat_proto::{ErrorCode, Password};
use chat_server::config::AddressLimits;
use common::{Client, connect_from, join_from, start};

const PASSWORD: &str = "s3cret-word";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn moderated() -> chat_server::ServerHandle {
    start(|c| {
        c.op_password = Some(Password::for_server(PASSWORD).unwrap());
        c.per_address = AddressLimits::off();
    })
}

/// `teacher` (127.0.0.1) is an operator; `alicia` (127.0.0.2) and `bob` (127.0.0.3)
/// are not. Everyone has seen everyone's join and the operator notice.
fn class(addr: SocketAddr) -> (Client, Client, Client) {
    let mut teacher = join_from(ip(1), addr, "teacher");
    let mut alicia = join_from(ip(2), addr, "alicia");
    teacher.expect("alicia has joined the chat");
    let mut bob = join_from(ip(3), addr, "bob");
    teacher.expect("bob has joined the chat");
    alicia.expect("bob has joined the chat");
    teacher.say(&format!("/op {PASSWORD}"));
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("teacher is now an operator");
    }
    (teacher, alicia, bob)
}

#[test]
fn mod_1_without_a_password_there_are_no_operators() {
    let server = start(|c| c.per_address = AddressLimits::off());
    let mut a = Client::join(server.local_addr(), "alicia");
    let mut b = Client::join(server.local_addr(), "bob");
    a.expect("bob has joined the chat");
    for line in [
        "/op anything",
        "/kick bob",
        "/mute bob",
        "/ban bob spam",
        "/unban bob",
    ] {
        a.say(line);
        a.expect_err(ErrorCode::NoOperators);
    }
    b.expect_quiet();
    // Still a normal chat.
    a.say("hi");
    a.expect("alicia: hi");
    b.expect("alicia: hi");
}

#[test]
fn mod_2_guessing_the_password_is_bounded_per_connection_and_per_address() {
    let server = moderated();
    let addr = server.local_addr();
    let mut watcher = join_from(ip(1), addr, "watcher");
    let mut guesser = join_from(ip(5), addr, "guesser");
    watcher.expect("guesser has joined the chat");
    guesser.say("/op wrong1");
    guesser.expect_err(ErrorCode::BadPassword);
    guesser.say("/op wrong2");
    guesser.expect_err(ErrorCode::BadPassword);
    guesser.say("/op wrong3");
    guesser.expect_err(ErrorCode::TooManyAttempts);
    guesser.expect_closed();
    watcher.expect("guesser has left the chat");
    // Reconnecting from the same address: 10 wrong passwords in all, then even the
    // right one is refused without being checked.
    for round in 0..3 {
        let nick = format!("guesser{round}");
        let mut g = join_from(ip(5), addr, &nick);
        watcher.expect(&format!("{nick} has joined the chat"));
        let tries = if round < 2 { 3 } else { 1 };
        for t in 0..tries {
            g.say(&format!("/op wrong-{round}-{t}"));
            if t + 1 < tries {
                g.expect_err(ErrorCode::BadPassword);
            }
        }
        g.expect_err(ErrorCode::TooManyAttempts);
        g.expect_closed();
        watcher.expect(&format!("{nick} has left the chat"));
    }
    let mut g = join_from(ip(5), addr, "patient");
    watcher.expect("patient has joined the chat");
    g.say(&format!("/op {PASSWORD}"));
    g.expect_err(ErrorCode::TooManyAttempts);
    g.expect_closed();
    watcher.expect("patient has left the chat");
    // Another address is not affected, and `/op` twice is answered.
    watcher.say(&format!("/op {PASSWORD}"));
    watcher.expect("watcher is now an operator");
    watcher.say(&format!("/op {PASSWORD}"));
    watcher.expect_err(ErrorCode::AlreadyOperator);
}

#[test]
fn mod_3_who_may_act_on_whom() {
    let server = moderated();
    let (mut teacher, mut alicia, mut bob) = class(server.local_addr());
    // Not an operator.
    alicia.say("/kick bob");
    alicia.expect_err(ErrorCode::NotOperator);
    alicia.say("/mute teacher");
    alicia.expect_err(ErrorCode::NotOperator);
    // Nobody by that name; oneself; another operator.
    teacher.say("/kick nobody");
    teacher.expect_err(ErrorCode::NoSuchNick);
    teacher.say("/kick teacher");
    teacher.expect_err(ErrorCode::CannotModerate);
    bob.say(&format!("/op {PASSWORD}"));
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("bob is now an operator");
    }
    teacher.say("/ban bob");
    assert!(
        teacher
            .expect_err(ErrorCode::CannotModerate)
            .contains("bob")
    );
    bob.say("/kick TEACHER");
    bob.expect_err(ErrorCode::CannotModerate);
    teacher.say("/unban alicia");
    teacher.expect_err(ErrorCode::NoSuchNick);
    teacher.say("/unmute alicia");
    teacher.expect_err(ErrorCode::BadArguments);
    // Shape first (CMD-3).
    teacher.send_raw(b"/mute alicia 0\n");
    teacher.expect_err(ErrorCode::BadArguments);
    alicia.expect_quiet();
}

#[test]
fn mod_4_kick_notice_then_leave_line_once_and_the_target_is_closed() {
    let server = moderated();
    let (mut teacher, mut alicia, mut bob) = class(server.local_addr());
    bob.say("before");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("bob: before");
    }
    teacher.say("/kick ALICIA spamming (again)");
    alicia.expect("alicia was kicked by teacher (spamming (again))");
    assert!(alicia.expect_err(ErrorCode::Kicked).contains("teacher"));
    alicia.expect_closed();
    for c in [&mut teacher, &mut bob] {
        c.expect("alicia was kicked by teacher (spamming (again))");
        c.expect("alicia has left the chat");
    }
    bob.say("/who");
    bob.expect("Users online: bob, teacher");
    teacher.expect_quiet();
    // She may come back (a kick is not a ban), and is not an operator's equal.
    let mut again = join_from(ip(2), server.local_addr(), "alicia");
    teacher.expect("alicia has joined the chat");
    again.say("back");
    again.expect("alicia: back");
    // The notice is a public event: history keeps it (MOD-7).
    bob.expect("alicia has joined the chat");
    bob.expect("alicia: back");
    bob.say("/history 4");
    let block: Vec<String> = (0..6).map(|_| bob.line()).collect();
    assert_eq!(block[0], "Earlier events: 4");
    assert!(block[1].ends_with(" UTC] alicia was kicked by teacher (spamming (again))"));
    assert!(block[2].ends_with(" UTC] alicia has left the chat"));
    assert_eq!(block[5], "End of earlier events");
}

#[test]
fn mod_5_a_muted_user_cannot_speak_rename_or_whisper_even_after_reconnecting() {
    let server = moderated();
    let addr = server.local_addr();
    let (mut teacher, mut alicia, mut bob) = class(addr);
    teacher.say("/mute alicia 1");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("alicia was muted by teacher for 1 minute");
    }
    for line in ["spam", "/msg bob psst", "/nick alicia2", "//slash"] {
        alicia.say(line);
        assert!(
            alicia
                .expect_err(ErrorCode::Muted)
                .contains("1 more minute")
        );
    }
    alicia.say("/who");
    alicia.expect("Users online: alicia, bob, teacher");
    bob.expect_quiet();
    // Reconnecting from the same address does not lift it.
    alicia.say("/quit");
    alicia.expect_closed();
    bob.expect("alicia has left the chat");
    teacher.expect("alicia has left the chat");
    let mut alicia = join_from(ip(2), addr, "alicia");
    bob.expect("alicia has joined the chat");
    teacher.expect("alicia has joined the chat");
    alicia.say("still here");
    alicia.expect_err(ErrorCode::Muted);
    // The default is 10 minutes; a new mute replaces the old one.
    teacher.say("/mute alicia");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("alicia was muted by teacher for 10 minutes");
    }
    alicia.say("x");
    assert!(
        alicia
            .expect_err(ErrorCode::Muted)
            .contains("10 more minutes")
    );
    teacher.say("/unmute alicia");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("alicia was unmuted by teacher");
    }
    alicia.say("thanks");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("alicia: thanks");
    }
}

#[test]
fn mod_6_a_ban_closes_the_address_and_refuses_it_until_unbanned() {
    let server = moderated();
    let addr = server.local_addr();
    let (mut teacher, mut alicia, mut bob) = class(addr);
    // A second joined connection and one in the handshake from alicia's address.
    let mut alt = join_from(ip(2), addr, "alt");
    for c in [&mut teacher, &mut alicia, &mut bob] {
        c.expect("alt has joined the chat");
    }
    let mut waiting = Client::from_stream(connect_from(ip(2), addr));
    waiting.expect("NICK");
    teacher.say("/ban alicia flooding");
    alicia.expect("alicia was banned by teacher (flooding)");
    assert!(alicia.expect_err(ErrorCode::Banned).contains("teacher"));
    alicia.expect_closed();
    alt.expect("alicia was banned by teacher (flooding)");
    alt.expect("alicia has left the chat");
    alt.expect_err(ErrorCode::Banned);
    alt.expect_closed();
    waiting.expect_err(ErrorCode::Banned);
    waiting.expect_closed();
    for c in [&mut teacher, &mut bob] {
        c.expect("alicia was banned by teacher (flooding)");
        c.expect("alicia has left the chat");
        c.expect("alt has left the chat");
    }
    // Reconnecting from the banned address: refused before NICK.
    let mut back = Client::from_stream(connect_from(ip(2), addr));
    back.expect_err(ErrorCode::Banned);
    back.expect_closed();
    // Another address gets in.
    let mut other = join_from(ip(4), addr, "carol");
    teacher.expect("carol has joined the chat");
    bob.expect("carol has joined the chat");
    teacher.say("/unban Alicia");
    for c in [&mut teacher, &mut bob, &mut other] {
        c.expect("alicia was unbanned by teacher");
    }
    let _welcome = join_from(ip(2), addr, "alicia");
    bob.expect("alicia has joined the chat");
}

#[test]
fn mod_7_notices_are_tagged_like_every_public_event() {
    let server = moderated();
    let addr = server.local_addr();
    let (mut teacher, mut alicia, mut bob) = class(addr);
    bob.say("/caps tags");
    bob.expect("Capabilities enabled: tags");
    teacher.say("/kick alicia");
    alicia.expect("alicia was kicked by teacher");
    alicia.expect_err(ErrorCode::Kicked);
    let notice = bob.line();
    let left = bob.line();
    let (tags, msg) = chat_proto::ServerMessage::parse_tagged(&notice).unwrap();
    assert_eq!(msg.to_string(), "alicia was kicked by teacher");
    let (left_tags, _) = chat_proto::ServerMessage::parse_tagged(&left).unwrap();
    assert!(tags.id.is_some() && left_tags.id.is_some() && tags.id != left_tags.id);
    assert!(left.ends_with(" alicia has left the chat"), "{left}");
}
