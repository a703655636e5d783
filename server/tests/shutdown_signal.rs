//! CONN-6 on the real binary: SIGTERM and SIGINT make `chat-server` send every client one
//! `ERR server-shutdown`, close, and exit 0 promptly.

#![cfg(test)]

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::Client;

/// Starts the binary on a free port.
fn spawn_server() -> (Child, SocketAddr) {
    common::spawn_binary(&[])
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chat-server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal_test(signal: libc::c_int) {
    let (mut child, addr) = spawn_server();
    let mut a = Client::join(addr, "alice");
    let mut b = Client::join(addr, "bob");
    a.expect("bob has joined the chat");
    let mut h = Client::connect(addr);
    h.expect("NICK");
    let started = Instant::now();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    for c in [&mut a, &mut b, &mut h] {
        c.expect_err(ErrorCode::ServerShutdown);
        c.expect_closed();
    }
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Nobody is listening any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn conn_6_sigterm_shuts_down_cleanly() {
    signal_test(libc::SIGTERM);
}

#[test]
fn conn_6_sigint_shuts_down_cleanly() {
    signal_test(libc::SIGINT);
}
