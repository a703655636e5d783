//! Impersonation by nickname, as a hostile student would try it: lookalikes of an online
//! user (NICK-LOOK-1), names that read as protocol words (NICK-PREFIX-1), and the seed
//! profile, which must always find a free name (COMPAT-NUM-1).

#![cfg(test)]

mod common;

use chat_proto::ErrorCode;
use chat_server::Compat;
use common::{Client, seed_greeting, start, start_default};

/// NICK-LOOK-1: `aIice` and `a1ice` are refused while `alice` is online, with
/// `ERR nick-taken` naming her, then `NICK` again; once she leaves they are free.
#[test]
fn nick_look_1_lookalike_refused_in_handshake() {
    let server = start_default();
    let addr = server.local_addr();
    let mut alice = Client::join(addr, "alice");
    let mut mallory = Client::connect(addr);
    mallory.expect("NICK");
    for lookalike in ["aIice", "a1ice"] {
        mallory.send_raw(format!("{lookalike}\n").as_bytes());
        let text = mallory.expect_err(ErrorCode::NickTaken);
        assert!(
            text.contains(lookalike) && text.contains("alice"),
            "the text names both: {text}"
        );
        mallory.expect("NICK");
    }
    // The same name in another case keeps NICK-3's plain text.
    mallory.send_raw(b"ALICE\n");
    let text = mallory.expect_err(ErrorCode::NickTaken);
    assert_eq!(text, "Nickname ALICE is already in use");
    mallory.expect("NICK");
    alice.expect_quiet();
    alice.say("/quit");
    // Only once alice is gone is her lookalike free.
    alice.expect_closed();
    mallory.send_raw(b"a1ice\n");
    mallory.expect("a1ice has joined the chat");
    mallory.expect("Connected to the server");
}

/// NICK-LOOK-1 through CMD-NICK-2: `/nick` to a lookalike of another user is refused;
/// to a lookalike of one's own name it is a rename like any other.
#[test]
fn nick_look_1_lookalike_refused_by_rename() {
    let server = start_default();
    let addr = server.local_addr();
    let mut alice = Client::join(addr, "alice");
    let mut bob = Client::join(addr, "bob");
    alice.expect("bob has joined the chat");
    bob.say("/nick AIice");
    let text = bob.expect_err(ErrorCode::NickTaken);
    assert_eq!(
        text,
        "Nickname AIice looks too much like alice, who is online"
    );
    alice.expect_quiet();
    alice.say("/nick a1ice");
    alice.expect("alice is now known as a1ice");
    bob.expect("alice is now known as a1ice");
    // CMD-MSG-5 is unchanged: a message is addressed by name, not by lookalike.
    bob.say("/msg alice hi");
    bob.expect_err(ErrorCode::NoSuchNick);
}

/// NICK-PREFIX-1: `ERR_` and `NICK-1` are invalid, so no chat line can start with
/// `ERR_: `; names that only begin with the letters are fine.
#[test]
fn nick_prefix_1_reserved_prefixes_refused() {
    let server = start_default();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.expect("NICK");
    for bad in ["ERR_", "err-2", "NICK-1", "Nick_"] {
        c.send_raw(format!("{bad}\n").as_bytes());
        let text = c.expect_err(ErrorCode::NickInvalid);
        assert!(text.contains("ERR, NICK, PING or PONG"), "{text}");
        c.expect("NICK");
    }
    c.send_raw(b"Errol\n");
    c.expect("Errol has joined the chat");
    c.expect("Connected to the server");
    c.send_raw(b"/nick ERR_\n");
    c.expect_err(ErrorCode::NickInvalid);
    c.say("/nick Nicky");
    c.expect("Errol is now known as Nicky");
}

/// COMPAT-NUM-1 (seed profile): asking for `ERR` or `ERR_` cannot be numbered into a
/// nickname (`ERR2` is reserved); the client is given `guest`, then `guest2`, instead of
/// being turned away. A lookalike of an online user is replaced too.
#[test]
fn compat_num_1_seed_profile_falls_back_to_guest() {
    let server = start(|c| c.compat = Compat::Seed);
    let addr = server.local_addr();
    let join = |asked: &str, given: &str| {
        let mut c = Client::connect(addr);
        seed_greeting(&mut c);
        // As the seed client sends it: no LF (an LF-terminated line is a core client's,
        // COMPAT-6, and would be refused rather than replaced).
        c.send_raw(asked.as_bytes());
        c.skip_until(&format!("{given} has joined the chat"));
        c.expect("Connected to the server");
        let text = c.expect_err(ErrorCode::NickAssigned);
        assert!(text.contains(given), "{text}");
        c
    };
    let _a = join("ERR", "guest");
    let _b = join("ERR_", "guest2");
    let mut alice = Client::connect(addr);
    seed_greeting(&mut alice);
    alice.send_raw(b"alice\n");
    alice.skip_until("alice has joined the chat");
    let _c = join("a1ice", "a1ice2");
}
