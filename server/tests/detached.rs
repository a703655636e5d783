//! The socket-free connection logic (`Detached`) behaves like the real server: the same
//! handshake, chat, commands and leave notices, queued as encoded lines (NICK-1, NICK-7,
//! CHAT-1, CMD-QUIT-1, CONN-2).

#![cfg(test)]

use chat_server::writer::Line;
use chat_server::{Config, Detached, Hub};

fn drain(d: &Detached) -> Vec<String> {
    let mut lines: Vec<Line> = Vec::new();
    d.outbox().drain_into(&mut lines);
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

#[test]
fn detached_connections_chat_like_real_ones() {
    let hub = Hub::new(4);
    let config = Config::loopback_ephemeral();
    let mut a = Detached::open(&hub, &config).unwrap();
    let mut b = Detached::open(&hub, &config).unwrap();
    assert_eq!(drain(&a), ["NICK\n"]);
    assert!(a.feed(b"alice\n"));
    assert_eq!(
        drain(&a),
        ["alice has joined the chat\n", "Connected to the server\n"]
    );
    assert!(b.feed(b"ALICE\nbob\n"));
    assert_eq!(
        drain(&b),
        [
            "NICK\n",
            "ERR nick-taken Nickname ALICE is already in use\n",
            "NICK\n",
            "bob has joined the chat\n",
            "Connected to the server\n"
        ]
    );
    assert!(a.feed(b"hi b"));
    assert!(!a.feed(b"ob\n/quit\n"));
    assert_eq!(drain(&a), ["bob has joined the chat\n", "alice: hi bob\n"]);
    assert_eq!(drain(&b), ["alice: hi bob\n", "alice has left the chat\n"]);
    b.end();
    assert_eq!(hub.users(), 0);
}

#[test]
fn detached_respects_max_clients() {
    let hub = Hub::new(1);
    let config = Config::loopback_ephemeral();
    let first = Detached::open(&hub, &config);
    assert!(first.is_some());
    assert!(Detached::open(&hub, &config).is_none());
    drop(first);
    assert!(Detached::open(&hub, &config).is_some());
}
