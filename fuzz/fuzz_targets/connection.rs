//! Structure-aware target: up to four clients of one hub, driven without sockets through
//! the server's own connection logic (`chat_server::Detached`), in either profile, with a
//! small outbound queue so overflows happen. The input is a program of operations:
//! each op byte picks a client, whether it sends or disconnects (and reconnects), and
//! how many of the following bytes it sends. After every op, every line queued for every
//! client must be a well-formed server line (SRV-1, FRAME-5), and no more users than
//! open connections may be registered. No panic anywhere.
#![no_main]

use chat_proto::ServerMessage;
use chat_server::config::{Compat, FloodLimit};
use chat_server::writer::Line;
use chat_server::{Config, Detached, Hub};
use libfuzzer_sys::fuzz_target;

fn check(line: &[u8], seed: bool) {
    if seed && line == b"NICK" {
        return; // COMPAT-1: the seed profile's bare greeting
    }
    let text = std::str::from_utf8(line).expect("server lines are UTF-8");
    let body = text.strip_suffix('\n').expect("server lines end with LF");
    assert!(!body.contains('\n'), "one line per queued line: {body:?}");
    ServerMessage::parse(body).unwrap_or_else(|_| panic!("not a server line: {body:?}"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut program)) = data.split_first() else { return };
    let seed = mode & 1 == 1;
    let config = Config {
        compat: if seed { Compat::Seed } else { Compat::Standard },
        sendq: Config::MIN_SENDQ + usize::from(mode >> 1) * 32,
        flood: FloodLimit::off(),
        ..Config::loopback_ephemeral()
    };
    let hub = Hub::new(6);
    let mut clients: Vec<Option<Detached>> = (0..4).map(|_| Detached::open(&hub, &config)).collect();
    let mut lines: Vec<Line> = Vec::new();
    while let Some((&op, rest)) = program.split_first() {
        let who = usize::from(op & 3);
        let len = usize::from(op >> 3).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        program = rest;
        let slot = &mut clients[who];
        if op & 4 != 0 {
            if let Some(c) = slot.as_mut() {
                c.end();
            }
            *slot = None;
            *slot = Detached::open(&hub, &config);
        } else if let Some(c) = slot.as_mut() {
            if !c.feed(chunk) {
                *slot = None;
            }
        }
        for c in clients.iter().flatten() {
            c.outbox().drain_into(&mut lines);
            for line in lines.drain(..) {
                check(&line, seed);
            }
        }
        let open = clients.iter().flatten().count();
        assert!(hub.users() <= open, "{} users, {open} connections", hub.users());
    }
});
