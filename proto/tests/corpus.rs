//! Snapshots of what the parsers make of a corpus of tricky lines. A change in any
//! parse result shows up as a snapshot diff to be reviewed like code.

#![cfg(test)]

use std::fmt::Write;

use chat_proto::{ClientMessage, Nickname};

const SERVER_LINES: &[&str] = &[
    "NICK",
    "NICK ",
    "nick",
    "Connected to the server",
    "Connected to the server ",
    "alice has joined the chat",
    "alice has joined the chat ",
    "ERR has joined the chat",
    "NICK has joined the chat",
    "alice has left the chat",
    "alice: hi",
    "alice:  leading space kept",
    "alice: ",
    "alice:hi",
    "bob: carol has left the chat",
    "bob: SERVER: fake notice",
    "alice -> bob: psst",
    "alice -> alice: note to self",
    "alice -> bob:",
    "alice is now known as Alice",
    "alice is now known as ERR",
    "Users online: alice",
    "Users online: alice, Bob, carol,",
    "Users online: alice,bob",
    "Users online:",
    "Users: hi",
    "ERR nick-taken Nickname alice is already in use",
    "ERR nick-taken",
    "ERR nick-taken ",
    "ERR NICK-TAKEN x",
    "ERR no-such-code text",
    "ERR: hi",
    "ERRx: hi",
    "abcdefghijklmnopqrstuvwx: 24 chars",
    "abcdefghijklmnopqrstuvwxy: 25 chars",
    "a\tb: tab in name",
    "zoë: non-ascii name",
    "",
    "Protocol 1.1 capabilities: tags",
    "Protocol 1.1 capabilities:",
    "Protocol 1.1 capabilities: tags history=500 x-new",
    "Protocol 1.1 capabilities:tags",
    "Protocol 1.1 capabilities: tags ",
    "Protocol 1.1 capabilities: Tags",
    "Protocol 1 capabilities: tags",
    "Protocol: hi",
    "Capabilities enabled: tags",
    "Capabilities enabled:",
    "Capabilities enabled: tags=1",
    "Capabilities: hi",
    "@id=1733130000:42;t=2026-12-02T08:52:04.123Z alice: hi",
    "@id=1733130000:43 bob has joined the chat",
    "@t=2026-12-02T08:52:04.123Z alice -> bob: psst",
    "@x-future;id=1:1 alice: hi",
    "@id=1:1 not a line",
    "@id=1:1",
    "@ alice: hi",
    "@t=2026-12-02T08:52:04Z alice: hi",
    "@id=1:1;id=1:2 alice: hi",
    "teacher is now an operator",
    "teacher is now an operator ",
    "alicia was kicked by teacher (spamming)",
    "alicia was kicked by teacher",
    "alicia was kicked by teacher ()",
    "alicia was kicked by teacher (no end",
    "alicia was kicked by teacher (nested (parens)) ok)",
    "alicia was banned by teacher (x)",
    "alicia was muted by teacher for 10 minutes",
    "alicia was muted by teacher for 1 minute",
    "alicia was muted by teacher for 1 minutes",
    "alicia was muted by teacher for 0 minutes",
    "alicia was unmuted by teacher",
    "alicia was unbanned by teacher",
    "ERR was kicked by teacher",
    "[2026-12-02 08:51:10 UTC] alicia was kicked by teacher (spamming)",
    "@id=1:7;t=2026-12-02T08:52:04.123Z alicia was muted by teacher for 5 minutes",
    "bob: alicia was kicked by teacher",
    "ERR kicked You were kicked by teacher",
    "ERR banned Your address is banned from this chat",
];

const CLIENT_LINES: &[&str] = &[
    "hello",
    "  spaced  ",
    "",
    " \t ",
    " /who",
    "/who",
    "/WHO",
    "/who ",
    "/who now",
    "/",
    "/ who",
    "//",
    "//who",
    "///x",
    "/dance",
    "/msg",
    "/msg bob",
    "/msg bob ",
    "/msg bob hi",
    "/msg  bob \t hi there ",
    "/msg\tbob\thi",
    "/msg BOB hi",
    "/msg b@d hi",
    "/msg ERR hi",
    "/MSG bob hi",
    "/nick",
    "/nick Zed",
    "/nick  Zed  ",
    "/nick a b",
    "/nick Aryan Singh",
    "/nick nick",
    "/nick abcdefghijklmnopqrstuvwxy",
    "/quit",
    "/quit now",
    "/quitnow",
    "/caps",
    "/CAPS  ",
    "/caps tags",
    "/caps tags  x-new\tthird",
    "/caps TAGS",
    "/caps tags=1",
    "/capstags",
    "/nick b@d",
    "/nick \u{212a}elvin",
    "/msg \u{212a}elvin hi",
    "/msg b@d",
    "/op",
    "/op s3cret",
    "/op two words",
    "/kick",
    "/kick alicia",
    "/kick alicia  spamming, again ",
    "/kick b@d why",
    "/mute alicia",
    "/mute alicia 5",
    "/mute alicia 0",
    "/mute alicia 1441",
    "/mute alicia five",
    "/unmute alicia",
    "/unmute alicia now",
    "/ban alicia (spam)",
    "/unban alicia",
    "/UNBAN",
];

#[test]
fn srv_2_server_line_corpus() {
    let mut out = String::new();
    for line in SERVER_LINES {
        writeln!(
            out,
            "{line:?}\n    => {:?}",
            chat_proto::Incoming::from_line(line)
        )
        .unwrap();
    }
    insta::assert_snapshot!("server_lines", out);
}

#[test]
fn cmd_1_client_line_corpus() {
    let mut out = String::new();
    for line in CLIENT_LINES {
        let parsed = ClientMessage::parse(line);
        let reply = parsed
            .as_ref()
            .err()
            .and_then(|e| e.reply())
            .map(|m| m.to_string());
        writeln!(out, "{line:?}\n    => {parsed:?}\n    reply: {reply:?}").unwrap();
    }
    insta::assert_snapshot!("client_lines", out);
}

#[test]
fn nick_2_nickname_corpus() {
    let mut out = String::new();
    for s in [
        "alice",
        "",
        " alice",
        "alice ",
        "Aryan Singh",
        "ERR",
        "Nick",
        "a-b_c",
        "zoë",
        "abcdefghijklmnopqrstuvwx",
        "abcdefghijklmnopqrstuvwxy",
    ] {
        writeln!(out, "{s:?} => {:?}", Nickname::new(s)).unwrap();
    }
    insta::assert_snapshot!("nicknames", out);
}
