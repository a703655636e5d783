//! Spec §2, framing: FRAME-1..8, and the bad input of DEFECTS.md items 1, 2, 9, 11.

#![cfg(test)]

mod common;

use std::time::Duration;

use chat_proto::ErrorCode;
use common::{Client, start_default};

/// FRAME-1, FRAME-2: every server line is UTF-8 ended by a bare LF; no CR, ever.
#[test]
fn frame_1_frame_2_server_lines_end_with_bare_lf() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.say("hello");
    a.expect("alice: hello");
    a.say("/who");
    a.expect("Users online: alice");
    assert!(a.transcript.ends_with(b"\n"));
    assert!(!a.transcript.contains(&b'\r'), "server sent a CR");
    assert!(std::str::from_utf8(&a.transcript).is_ok());
}

/// FRAME-2: CR LF and LF end lines alike; only one CR is dropped, any other is FRAME-5.
#[test]
fn frame_2_crlf_and_lone_cr() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"crlf\r\nlf\n");
    a.expect("alice: crlf");
    a.expect("alice: lf");
    a.send_raw(b"two\r\r\n");
    a.expect_err(ErrorCode::InvalidText);
    a.send_raw(b"mid\rdle\n");
    a.expect_err(ErrorCode::InvalidText);
    a.send_raw(b"still fine\r\n");
    a.expect("alice: still fine");
}

/// FRAME-3: a 5000-byte line gets one `line-too-long`, is not relayed in pieces
/// (DEFECTS.md item 1), and the connection stays usable; others are unaffected.
#[test]
fn frame_3_over_long_line_5000_bytes() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    let mut line = vec![b'x'; 5000];
    line.push(b'\n');
    a.send_raw(&line);
    a.expect_err(ErrorCode::LineTooLong);
    a.say("after");
    a.expect("alice: after");
    b.expect("alice: after");
    b.expect_quiet();
    a.expect_quiet();
}

/// FRAME-3: exactly 1024 bytes is fine; the dropped CR does not count.
#[test]
fn frame_3_limit_is_1024_bytes_before_terminator() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let body = "y".repeat(1024);
    a.send_raw(format!("{body}\r\n").as_bytes());
    a.expect(&format!("alice: {body}"));
    a.send_raw(format!("{body}y\n").as_bytes());
    a.expect_err(ErrorCode::LineTooLong);
}

/// FRAME-3: answered as soon as byte 1025 arrives, without waiting for the LF; the rest
/// through the LF is discarded; a never-ending line is bounded and answered once.
#[test]
fn frame_3_answered_before_terminator_and_rest_discarded() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(&[b'z'; 1025]);
    a.expect_err(ErrorCode::LineTooLong);
    // Keep the line going for a megabyte: no second answer, nothing relayed.
    for _ in 0..64 {
        a.send_raw(&[b'z'; 16 * 1024]);
    }
    a.expect_quiet();
    a.send_raw(b"zzz end of the long line\nnext\n");
    a.expect("alice: next");
    a.expect_quiet();
}

/// FRAME-4: invalid UTF-8 is answered and dropped; the connection stays usable.
#[test]
fn frame_4_invalid_utf8() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"\xff\xfe binary junk \x80\n");
    a.expect_err(ErrorCode::InvalidUtf8);
    a.send_raw(b"\xe2\x82\n"); // a truncated euro sign
    a.expect_err(ErrorCode::InvalidUtf8);
    a.say("ok");
    a.expect("alice: ok");
}

/// FRAME-4: a multi-byte character split across TCP segments is not an error
/// (DEFECTS.md item 9).
#[test]
fn frame_4_multibyte_split_across_segments() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let bytes = "price: 5€ 😀\n".as_bytes();
    for b in bytes {
        a.send_raw(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(2));
    }
    a.expect("alice: price: 5€ 😀");
}

/// FRAME-5: control characters, bidi controls and line separators are refused; TAB is
/// allowed.
#[test]
fn frame_5_forbidden_characters() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    for bad in [
        "nul\0here",
        "esc\u{1b}[31mred",
        "del\u{7f}",
        "c1\u{85}",
        "rlo\u{202e}txt",
        "iso\u{2066}x",
        "ls\u{2028}x",
        "ps\u{2029}x",
    ] {
        a.send_raw(format!("{bad}\n").as_bytes());
        a.expect_err(ErrorCode::InvalidText);
    }
    a.send_raw(b"tab\there\n");
    a.expect("alice: tab\there");
}

/// FRAME-6: blank lines are ignored; other text is relayed exactly, blanks included.
#[test]
fn frame_6_blank_ignored_text_exact() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.send_raw(b"\n   \n\t \t\n\r\n");
    a.send_raw("  Spaced  OUT é \t\n".as_bytes());
    a.expect("alice:   Spaced  OUT é \t");
    a.expect_quiet();
}

/// FRAME-7: an unterminated line at end of stream (FIN or reset) is dropped unanswered.
#[test]
fn frame_7_partial_line_dropped_at_close_and_reset() {
    let s = start_default();
    let mut watcher = Client::join(s.local_addr(), "watcher");
    let mut a = Client::join(s.local_addr(), "alice");
    watcher.expect("alice has joined the chat");
    a.send_raw(b"never finished");
    a.half_close();
    watcher.expect("alice has left the chat");
    a.expect_closed();

    let mut b = Client::join(s.local_addr(), "bob");
    watcher.expect("bob has joined the chat");
    b.send_raw(b"half a li");
    std::thread::sleep(Duration::from_millis(50));
    b.reset();
    watcher.expect("bob has left the chat");
    watcher.expect_quiet();
}

/// FRAME-8: one error per line, too-long first.
#[test]
fn frame_8_one_error_per_line_too_long_first() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut line = vec![0xff; 2000];
    line.push(b'\n');
    a.send_raw(&line);
    a.expect_err(ErrorCode::LineTooLong);
    a.send_raw(b"\xff\x01\n"); // invalid UTF-8 and a control character
    a.expect_err(ErrorCode::InvalidUtf8);
    a.expect_quiet();
}

/// Merged writes: many lines in one segment are handled one by one, in order
/// (DEFECTS.md items 1, 2).
#[test]
fn merged_lines_in_one_write() {
    let s = start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    // DEFECTS.md item 2: the nickname and the first chat line in one segment.
    c.send_raw(b"dave\ndave: hi\nsecond\r\nthird\n");
    c.expect("dave has joined the chat");
    c.expect("Connected to the server");
    c.expect("dave: dave: hi");
    c.expect("dave: second");
    c.expect("dave: third");
}

/// Split writes: a line sent one byte at a time arrives whole.
#[test]
fn byte_by_byte_writes() {
    let s = start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    for b in b"erin\nslow but whole\n" {
        c.send_raw(std::slice::from_ref(b));
    }
    c.expect("erin has joined the chat");
    c.expect("Connected to the server");
    c.expect("erin: slow but whole");
}

/// Concurrent senders never corrupt each other's lines (DEFECTS.md item 11): every line
/// received is whole and parses (checked by the test client), and all arrive.
#[test]
fn concurrent_senders_lines_stay_whole() {
    let s = start_default();
    let addr = s.local_addr();
    let mut reader = Client::join(addr, "reader");
    let senders: Vec<_> = (0..5)
        .map(|i| {
            let nick = format!("s{i}");
            let mut c = Client::join(addr, &nick);
            std::thread::spawn(move || {
                let body = format!("{}", i).repeat(900);
                for n in 0..100 {
                    c.say(&format!("{n:03} {body}"));
                }
                c
            })
        })
        .collect();
    let senders: Vec<Client> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let mut got = 0;
    while got < 500 {
        let l = reader.line();
        if l.starts_with('s') && l.contains(": ") {
            let (nick, text) = l.split_once(": ").unwrap();
            let i: usize = nick[1..].parse().unwrap();
            assert_eq!(text.len(), 4 + 900, "{l:.40}");
            assert!(text[4..].bytes().all(|b| b == b'0' + i as u8));
            got += 1;
        }
    }
    drop(senders);
}
