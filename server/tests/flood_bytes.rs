//! FLOOD-1: the flood limit counts bytes as well as lines. A burst of long lines is slowed
//! down by its weight (one `ERR flood`, nothing dropped, others not held up), while the
//! same number of short lines passes untouched.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_server::config::FloodLimit;
use common::{Client, Got, start};

/// 200 lines and 16 KiB in a burst, 64 KiB/s after that.
fn limit() -> FloodLimit {
    FloodLimit {
        burst: 200,
        rate: 50.0,
        excess: Duration::from_secs(10),
        burst_bytes: 16 * 1024,
        rate_bytes: 64 * 1024,
    }
}

/// `n` lines of exactly `size` bytes, numbered.
fn lines(n: usize, size: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            let head = format!("line {i:03} ");
            let mut l = head.clone() + &"x".repeat(size - head.len());
            l.push('\n');
            l.into_bytes()
        })
        .collect()
}

fn three(addr: std::net::SocketAddr) -> (Client, Client, Client) {
    let mut a = Client::join(addr, "a");
    let mut b = Client::join(addr, "b");
    a.expect("b has joined the chat");
    let c = Client::join(addr, "c");
    a.expect("c has joined the chat");
    b.expect("c has joined the chat");
    (a, b, c)
}

/// Reads `n` lines at `b`, failing on anything else.
fn receive(b: &mut Client, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        match b.next(Duration::from_secs(5)) {
            Got::Line(l) => got.push(l),
            other => panic!("b: {other:?} after {} lines", got.len()),
        }
    }
    got
}

/// FLOOD-1: 64 lines of 1000 bytes, well within the 200-line burst that CONN-7 alone
/// allowed, are slowed to the byte rate: the 16 KiB burst, then 64 KiB/s.
#[test]
fn flood_1_long_lines_pay_their_weight() {
    let server = start(|c| c.flood = limit());
    let addr = server.local_addr();
    let (mut a, mut b, mut c) = three(addr);
    let started = Instant::now();
    a.send_raw(&lines(64, 1000));
    std::thread::sleep(Duration::from_millis(100));
    c.say("not held up");
    let got = receive(&mut b, 65);
    let took = started.elapsed();
    let from_a: Vec<&String> = got.iter().filter(|l| l.starts_with("a: ")).collect();
    assert_eq!(from_a.len(), 64, "none dropped");
    for (i, l) in from_a.iter().enumerate() {
        assert!(l.starts_with(&format!("a: line {i:03} ")), "in order: {l}");
    }
    let c_at = got.iter().position(|l| l == "c: not held up").unwrap();
    assert!(c_at < 64, "c's line came after the whole flood (at {c_at})");
    // (64,000 - 16,384) bytes at 65,536 bytes/s: at least 0.7 s.
    assert!(
        took >= Duration::from_millis(650),
        "not slowed down: {took:?}"
    );
    let seen = a.skip_until(&format!("a: line 063 {}", "x".repeat(1000 - 9)));
    // At least one warning. (How many excess periods a 64 KB burst makes depends on how
    // promptly the server gets to each 8 KiB read; CONN-7's one-warning rule is checked
    // with a burst that fits one read, in flood.rs.)
    let warnings = seen.iter().filter(|l| l.starts_with("ERR flood ")).count();
    assert!(warnings >= 1, "warned: {seen:?}");
}

/// FLOOD-1: the same number of short lines is not slowed at all: no `ERR flood`.
#[test]
fn flood_1_short_lines_are_not_slowed() {
    let server = start(|c| c.flood = limit());
    let addr = server.local_addr();
    let (mut a, mut b, _c) = three(addr);
    a.send_raw(&lines(64, 40));
    let got = receive(&mut b, 64);
    assert!(got.iter().all(|l| l.starts_with("a: line ")));
    let seen = a.skip_until(&format!("a: line 063 {}", "x".repeat(40 - 9)));
    assert!(
        seen.iter().all(|l| !l.starts_with("ERR ")),
        "no warning: {seen:?}"
    );
    a.expect_quiet();
}
