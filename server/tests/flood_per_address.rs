//! FLOOD-ADDR-1: the connections of one address share a flood budget. Ten connections from
//! one address (ADDR-1's default maximum) each with its own full bucket could otherwise
//! send ten times what one may; with the address budget (here twice one connection's),
//! together they get no further than two connections would. Another address is not
//! affected.

#![cfg(test)]

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use chat_server::config::{AddressLimits, FloodLimit};
use common::{Client, Got, join_from, start};

/// One connection: 200 lines and 8 KiB in a burst, 4 KiB/s after that.
fn limit() -> FloodLimit {
    FloodLimit {
        burst: 200,
        rate: 50.0,
        excess: Duration::from_secs(30),
        burst_bytes: 8 * 1024,
        rate_bytes: 4 * 1024,
    }
}

const SHARE: u32 = 2;
const CONNECTIONS: usize = 10;
const LINE: usize = 1000;

fn line(i: usize, who: usize) -> Vec<u8> {
    let head = format!("{who} {i:03} ");
    let mut l = head.clone() + &"x".repeat(LINE - head.len());
    l.push('\n');
    l.into_bytes()
}

/// Bytes of chat text `reader` receives from nicknames starting with `prefix` within
/// `window`.
fn received(reader: &mut Client, prefix: &str, window: Duration) -> usize {
    let end = Instant::now() + window;
    let mut bytes = 0;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match reader.next(left.min(Duration::from_millis(100))) {
            Got::Line(l) if l.starts_with(prefix) => bytes += l.len(),
            Got::Line(_) | Got::Timeout => {}
            Got::Closed => panic!("the reader was closed"),
        }
    }
    bytes
}

#[test]
fn flood_addr_1_an_address_shares_one_budget() {
    let server = start(|c| {
        c.flood = limit();
        c.per_address = AddressLimits {
            connections: 0,
            handshakes: 0,
            flood_share: SHARE,
        };
    });
    let addr = server.local_addr();
    let mut reader = join_from(Ipv4Addr::new(127, 0, 0, 2), addr, "reader");
    let attacker = Ipv4Addr::new(127, 0, 0, 7);
    let mut senders: Vec<Client> = (0..CONNECTIONS)
        .map(|i| join_from(attacker, addr, &format!("flood{i}")))
        .collect();
    let started = Instant::now();
    // Each sends 40 KB, five times its own byte burst.
    for (who, c) in senders.iter_mut().enumerate() {
        let bytes: Vec<u8> = (0..40).flat_map(|i| line(i, who)).collect();
        c.send_raw(&bytes);
    }
    let window = Duration::from_secs(2);
    let got = received(&mut reader, "flood", window);
    let elapsed = started.elapsed().as_secs_f64();
    let f = limit();
    // The address budget: SHARE bursts, then SHARE times the rate; one line of slack
    // per connection for lines admitted at the edge.
    let share = f64::from(SHARE);
    let most = share * (f64::from(f.burst_bytes) + f64::from(f.rate_bytes) * elapsed)
        + (CONNECTIONS * (LINE + 16)) as f64;
    // Each connection on its own would have passed its burst at least: 10 x 8 KiB.
    let alone = CONNECTIONS as f64 * f64::from(f.burst_bytes);
    eprintln!(
        "{CONNECTIONS} connections from one address: {got} bytes relayed in {elapsed:.2} s \
         (address budget allows {most:.0}; each on its own would pass {alone:.0} at once)"
    );
    assert!(got > 0, "nothing relayed");
    assert!(
        (got as f64) <= most,
        "{got} bytes relayed, more than the address budget's {most:.0}"
    );
    assert!((got as f64) < alone, "the address budget did not bind");
    // Another address is not held up by the flood.
    let mut other = join_from(Ipv4Addr::new(127, 0, 0, 3), addr, "other");
    other.say("still here");
    reader.skip_until("other: still here");
}
