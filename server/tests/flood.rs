//! CONN-7: the per-client flood limit. A client sending faster than the limit is slowed
//! down (one `ERR flood`, nothing dropped, others not delayed) and, if it keeps it up
//! past the grace time, disconnected with `ERR excess-flood`.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_server::config::FloodLimit;
use common::{Client, Got, start};

fn lines(n: usize, tag: &str) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{tag} {i}\n").into_bytes())
        .collect()
}

/// CONN-7: over the limit, lines are delayed, never dropped; one warning per excess
/// period; another client's line is not held up behind the flood (CONN-3).
#[test]
fn conn_7_flood_is_slowed_not_dropped() {
    let server = start(|c| {
        c.flood = FloodLimit {
            burst: 20,
            rate: 100.0,
            excess: Duration::from_secs(10),
        }
    });
    let addr = server.local_addr();
    let mut a = Client::join(addr, "a");
    let mut b = Client::join(addr, "b");
    a.expect("b has joined the chat");
    let mut c = Client::join(addr, "c");
    a.expect("c has joined the chat");
    b.expect("c has joined the chat");

    let started = Instant::now();
    a.send_raw(&lines(100, "burst"));
    // a is throttled after its 20-line burst: c's line gets in before a's last one.
    std::thread::sleep(Duration::from_millis(100));
    c.say("not held up");
    let mut got = Vec::new();
    while got.len() < 101 {
        match b.next(Duration::from_secs(5)) {
            Got::Line(l) => got.push(l),
            other => panic!("b: {other:?} after {} lines", got.len()),
        }
    }
    let took = started.elapsed();
    let burst: Vec<&String> = got.iter().filter(|l| l.starts_with("a: burst")).collect();
    let want: Vec<String> = (0..100).map(|i| format!("a: burst {i}")).collect();
    assert_eq!(
        burst,
        want.iter().collect::<Vec<_>>(),
        "every line, in order, none dropped"
    );
    let c_at = got
        .iter()
        .position(|l| l == "c: not held up")
        .expect("c's line");
    assert!(
        c_at < 100,
        "c's line came after the whole flood (at {c_at})"
    );
    // 80 lines past the burst at 100/s: the flood really was slowed down.
    assert!(
        took >= Duration::from_millis(600),
        "not throttled: {took:?}"
    );
    // Exactly one warning for the one excess period, after the burst went through.
    let seen = a.skip_until("a: burst 99");
    let warnings: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("ERR flood "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(warnings.len(), 1, "{seen:?}");
    assert!(
        seen[..warnings[0]]
            .iter()
            .filter(|l| l.starts_with("a: burst"))
            .count()
            >= 20
    );
}

/// CONN-7: sustained excess past the grace time ends with `ERR excess-flood` and a close;
/// the others see the user leave (CONN-2), after an in-order prefix of its lines.
#[test]
fn conn_7_sustained_excess_disconnects() {
    let server = start(|c| {
        c.flood = FloodLimit {
            burst: 5,
            rate: 20.0,
            excess: Duration::from_secs(1),
        }
    });
    let addr = server.local_addr();
    let mut a = Client::join(addr, "a");
    let mut b = Client::join(addr, "b");
    a.expect("b has joined the chat");
    a.send_raw(&lines(400, "flood"));
    let mut own = Vec::new();
    loop {
        let l = a.line();
        if l.starts_with("ERR excess-flood ") {
            break;
        }
        own.push(l);
        assert!(own.len() <= 401, "no excess-flood");
    }
    assert_eq!(
        own.iter().filter(|l| l.starts_with("ERR flood ")).count(),
        1,
        "{own:?}"
    );
    assert!(
        own.iter()
            .all(|l| l.starts_with("a: flood ") || l.starts_with("ERR flood ")),
        "{own:?}"
    );
    a.expect_closed();
    let mut seen = Vec::new();
    loop {
        let l = b.line();
        if l == "a has left the chat" {
            break;
        }
        seen.push(l);
    }
    let want: Vec<String> = (0..seen.len()).map(|i| format!("a: flood {i}")).collect();
    assert_eq!(seen, want, "a prefix of a's lines, in order");
    assert!(
        seen.len() >= 5 && seen.len() < 400,
        "{} lines relayed",
        seen.len()
    );
    b.expect_quiet();
}

/// CONN-7 off (`--flood-rate 0`): nothing is ever slowed or refused.
#[test]
fn conn_7_off_for_benchmarks() {
    let server = start(|c| c.flood = FloodLimit::off());
    let addr = server.local_addr();
    let mut a = Client::join(addr, "a");
    a.send_raw(&lines(2000, "x"));
    for i in 0..2000 {
        assert_eq!(a.line(), format!("a: x {i}"));
    }
}
