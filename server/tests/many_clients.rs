//! 1000 clients connected at once; one message reaches all of them (CONN-1's default
//! capacity in practice, CHAT-1 at scale). Its own test binary: it raises RLIMIT_NOFILE
//! and holds about 2000 descriptors (both ends of each connection live in this process).

#![cfg(test)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use chat_proto::limits::MAX_SERVER_LINE_BYTES;
use chat_proto::{Frame, Framer};
use common::{Client, start};

const CLIENTS: usize = 1000;

#[test]
fn thousand_clients_one_message_reaches_all() {
    let limit = chat_server::listener::raise_fd_limit().expect("raise fd limit");
    if limit < (2 * CLIENTS + 100) as u64 {
        eprintln!("open-file limit {limit} is too low for {CLIENTS} clients; skipped");
        return;
    }
    let s = start(|_| {});
    let addr = s.local_addr();
    let started = Instant::now();
    // Connect everyone first (all handshaking at once), then answer NICK.
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.expect("NICK");
        c.send_nick(&format!("user{i}"));
    }
    common::eventually("all 1000 joined", || s.hub().users() == CLIENTS);
    let mut speaker = Client::join(addr, "speaker");
    speaker.say("hello, everyone");
    speaker.expect("speaker: hello, everyone");
    // Every client sees its own join, later joins, the speaker's join, then the message.
    // Read raw and frame with chat-proto; skip to the message.
    let want = "speaker: hello, everyone";
    for (i, c) in clients.iter_mut().enumerate() {
        let mut framer = Framer::with_limit(MAX_SERVER_LINE_BYTES);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut found = false;
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !found && Instant::now() < deadline {
            let n = c.stream.read(&mut buf).expect("read");
            assert!(n > 0, "client {i} closed");
            framer.push(&buf[..n], |f| {
                if let Frame::Line(l) = f
                    && l == want
                {
                    found = true;
                }
            });
        }
        assert!(found, "client {i} did not get the message");
    }
    assert_eq!(s.hub().open_connections(), CLIENTS + 1);
    eprintln!(
        "1000 clients: joined and reached in {:?}",
        started.elapsed()
    );
}
