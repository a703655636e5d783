//! Spec §4 and §5: CHAT-*, CMD-*, SRV-4, ERR-*, and DEFECTS.md items 4 and 10.

#![cfg(test)]

mod common;

use chat_proto::limits::MAX_USERS_LINE_BYTES;
use chat_proto::{ErrorCode, ServerMessage};
use common::{Client, start_default};

/// CHAT-1: text reaches everyone, the sender included, exactly as sent.
#[test]
fn chat_1_everyone_gets_it() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    b.say("  hi there, alice!  ");
    a.expect("bob:   hi there, alice!  ");
    b.expect("bob:   hi there, alice!  ");
}

/// CHAT-2: the server decides the prefix; nobody can speak as someone else (DEFECTS.md
/// item 4). DEFECTS.md item 10: the text `NICK` is relayed as chat, never bare.
#[test]
fn chat_2_no_impersonation() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    b.say("alice: hi");
    a.expect("bob: alice: hi");
    b.say("SERVER: carol has left the chat");
    a.expect("bob: SERVER: carol has left the chat");
    b.say("NICK");
    a.expect("bob: NICK");
}

/// CMD-1: command words are case-insensitive; `//` escapes; anything before the `/`
/// makes it text.
#[test]
fn cmd_1_words_escape_and_leading_space() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"/WHO\n");
    a.expect("Users online: alice");
    a.send_raw(b"/Who  \t\n");
    a.expect("Users online: alice");
    a.send_raw(b"//who\n");
    a.expect("alice: /who");
    a.send_raw(b" /who\n");
    a.expect("alice:  /who");
    a.send_raw(b"//\n");
    a.expect("alice: /");
}

/// CMD-2: unknown words, including the empty one, list the commands.
#[test]
fn cmd_2_unknown_commands() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    for line in ["/dance", "/", "/ who", "/\twho", "/msgbob hi"] {
        a.send_raw(format!("{line}\n").as_bytes());
        let text = a.expect_err(ErrorCode::UnknownCommand);
        for c in ["/who", "/msg", "/nick", "/quit"] {
            assert!(text.contains(c), "{text}");
        }
    }
}

/// CMD-3: missing or extra arguments show the usage.
#[test]
fn cmd_3_bad_arguments() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    for line in [
        "/who x",
        "/quit x",
        "/nick",
        "/nick a b",
        "/msg",
        "/msg bob",
        "/msg bob  \t ",
    ] {
        a.send_raw(format!("{line}\n").as_bytes());
        let text = a.expect_err(ErrorCode::BadArguments);
        assert!(text.contains('/'), "usage missing: {text}");
    }
    // Still connected and chatting.
    a.say("still here");
    a.expect("alice: still here");
}

/// CMD-WHO-1: to the sender alone, everyone, sorted case-insensitively.
#[test]
fn cmd_who_1_sorted_list_to_sender_only() {
    let s = start_default();
    let mut c = Client::join(s.local_addr(), "carol");
    let mut a = Client::join(s.local_addr(), "Alice");
    let mut b = Client::join(s.local_addr(), "bob");
    c.skip_until("bob has joined the chat");
    a.expect("bob has joined the chat");
    b.say("/who");
    b.expect("Users online: Alice, bob, carol");
    a.expect_quiet();
    c.expect_quiet();
}

/// CMD-WHO-2: a long list is split into lines of at most 512 bytes, all but the last
/// ending with `,`.
#[test]
fn cmd_who_2_long_list_split() {
    let s = start_default();
    let names: Vec<String> = (0..30)
        .map(|i| format!("user_{i:02}_with_a_long_name"))
        .collect();
    let clients: Vec<Client> = names
        .iter()
        .map(|n| Client::join(s.local_addr(), n))
        .collect();
    let mut me = Client::join(s.local_addr(), "me");
    me.say("/who");
    let mut all = Vec::new();
    loop {
        let raw = me.line();
        assert!(raw.len() <= MAX_USERS_LINE_BYTES, "{} bytes", raw.len());
        let ServerMessage::Users { names, more } = ServerMessage::parse(&raw).unwrap() else {
            panic!("not a users line: {raw}")
        };
        assert_eq!(raw.ends_with(','), more);
        all.extend(names.into_iter().map(|n| n.as_str().to_owned()));
        if !more {
            break;
        }
    }
    let mut want: Vec<String> = names.clone();
    want.push("me".into());
    want.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(all, want);
    drop(clients);
}

/// CMD-MSG-1, -2, -5: to the recipient and the sender only; blanks after the nickname
/// are a separator; the text is kept exactly, trailing blanks included; the recipient
/// is found case-insensitively and shown as registered.
#[test]
fn cmd_msg_private_message() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    let mut c = Client::join(s.local_addr(), "carol");
    a.skip_until("carol has joined the chat");
    b.expect("carol has joined the chat");
    a.send_raw(b"/msg   BOB \t see  you at 5  \n");
    a.expect("alice -> bob: see  you at 5  ");
    b.expect("alice -> bob: see  you at 5  ");
    c.expect_quiet();
}

/// CMD-MSG-3: nobody by that name, or not a nickname at all.
#[test]
fn cmd_msg_3_no_such_nick() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"/msg nobody hi\n");
    a.expect_err(ErrorCode::NoSuchNick);
    a.send_raw(b"/msg b@d hi\n");
    a.expect_err(ErrorCode::NoSuchNick);
}

/// CMD-MSG-4: to oneself, delivered once.
#[test]
fn cmd_msg_4_to_self_once() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"/msg ALICE note to self\n");
    a.expect("alice -> alice: note to self");
    a.expect_quiet();
}

/// CMD-NICK-1..3: rename is announced to all; taken and unchanged are refused without
/// `NICK`; a change of case is a rename; the old name is free afterwards.
#[test]
fn cmd_nick_rename() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    a.send_raw(b"/nick  zed \n");
    a.expect("alice is now known as zed");
    b.expect("alice is now known as zed");
    b.send_raw(b"/nick ZED\n");
    b.expect_err(ErrorCode::NickTaken);
    b.send_raw(b"/nick bob\n");
    b.expect_err(ErrorCode::NickUnchanged);
    b.send_raw(b"/nick ERR\n");
    b.expect_err(ErrorCode::NickInvalid);
    b.send_raw(b"/nick Bob\n");
    b.expect("bob is now known as Bob");
    a.expect("bob is now known as Bob");
    b.send_raw(b"/nick alice\n");
    b.expect("Bob is now known as alice");
    a.expect("Bob is now known as alice");
    a.say("hi");
    b.expect("zed: hi");
    b.expect_quiet();
    a.expect("zed: hi");
    a.expect_quiet();
}

/// CMD-QUIT-1: the others see the leave; the quitter gets what was queued, then EOF.
#[test]
fn cmd_quit_1() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    b.send_raw(b"last words\n/QUIT  \nnot sent\n");
    b.expect("bob: last words");
    b.expect_closed();
    a.expect("bob: last words");
    a.expect("bob has left the chat");
    a.expect_quiet();
}

/// SRV-4: all events have one total order: concurrent senders, renames, joins and
/// leaves are seen in the same order by every client.
#[test]
fn srv_4_one_total_order() {
    let s = start_default();
    let addr = s.local_addr();
    let mut watchers: Vec<Client> = (0..3)
        .map(|i| Client::join(addr, &format!("w{i}")))
        .collect();
    let senders: Vec<Client> = (0..4)
        .map(|i| Client::join(addr, &format!("s{i}")))
        .collect();
    // Sync point: everyone has seen every join before the storm.
    let marker = "sync-marker";
    watchers[0].say(marker);
    for w in &mut watchers {
        w.skip_until(&format!("w0: {marker}"));
    }
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                for n in 0..50 {
                    c.say(&format!("m{n}"));
                    if n == 25 {
                        c.say(&format!("/nick s{i}x"));
                    }
                }
                c.say("/quit");
                c.expect_closed_eventually();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let expected_lines = 4 * 50 + 4 + 4; // messages, renames, leaves
    let seqs: Vec<Vec<String>> = watchers
        .iter_mut()
        .map(|w| (0..expected_lines).map(|_| w.line()).collect())
        .collect();
    assert_eq!(seqs[0], seqs[1]);
    assert_eq!(seqs[0], seqs[2]);
    for w in &mut watchers {
        w.expect_quiet();
    }
}

trait Drain {
    fn expect_closed_eventually(&mut self);
}

impl Drain for Client {
    /// Reads (and drops) lines until the connection closes; bounded.
    fn expect_closed_eventually(&mut self) {
        for _ in 0..10_000 {
            match self.next(common::WAIT) {
                common::Got::Closed => return,
                common::Got::Line(_) => {}
                common::Got::Timeout => panic!("not closed"),
            }
        }
        panic!("too many lines before close");
    }
}

/// ERR-1, ERR-2: every error is `ERR <registered code> <non-blank text>` (checked by the
/// test client's parser); after a non-closing error the connection stays in its state.
#[test]
fn err_1_err_2_errors_keep_state() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    for line in ["/dance", "/who x", "/msg nobody hi", "/nick alice"] {
        a.send_raw(format!("{line}\n").as_bytes());
        match a.msg() {
            ServerMessage::Error { code, text } => {
                assert!(!code.closes());
                assert!(!text.as_str().trim().is_empty());
            }
            other => panic!("expected an error, got {other}"),
        }
    }
    a.say("still chatting");
    a.expect("alice: still chatting");
}

/// SRV-3: the longest lines (a 1024-byte text from a 24-character nickname; a private
/// line between two 24-character nicknames) arrive whole and within 1078 bytes (the
/// test client's framer refuses longer server lines).
#[test]
fn srv_3_longest_lines() {
    let s = start_default();
    let long_a = "a".repeat(24);
    let long_b = "b".repeat(24);
    let mut a = Client::join(s.local_addr(), &long_a);
    let mut b = Client::join(s.local_addr(), &long_b);
    a.expect(&format!("{long_b} has joined the chat"));
    let text = "é".repeat(512); // 1024 bytes
    a.send_raw(format!("{text}\n").as_bytes());
    let line = b.line();
    assert_eq!(line, format!("{long_a}: {text}"));
    let private = "p".repeat(1024 - "/msg  ".len() - 24);
    a.send_raw(format!("/msg {long_b} {private}\n").as_bytes());
    a.expect(&line);
    let got = b.line();
    assert_eq!(got, format!("{long_a} -> {long_b}: {private}"));
    assert!(got.len() <= chat_proto::limits::MAX_SERVER_LINE_BYTES);
}
