//! Shutdown's order (CONN-6): what is queued for a connection goes out before
//! `ERR server-shutdown`, which is its last line, within the grace period.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::{Client, start_default};

/// CONN-6: at shutdown what is queued goes out first, and `ERR server-shutdown` is the
/// last line, within the grace period.
#[test]
fn conn_6_queued_lines_first_then_the_shutdown_error_last() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    // Bob reads nothing while alice's lines are appended.
    let mut burst = Vec::new();
    for i in 0..100 {
        burst.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    a.send_raw(&burst);
    for i in 0..100 {
        a.expect(&format!("alice: line {i}"));
    }
    let started = Instant::now();
    s.shutdown();
    for i in 0..100 {
        b.expect(&format!("alice: line {i}"));
    }
    b.expect_err(ErrorCode::ServerShutdown);
    b.expect_closed();
    a.expect_err(ErrorCode::ServerShutdown);
    a.expect_closed();
    assert!(started.elapsed() < Duration::from_secs(3));
}
