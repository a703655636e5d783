//! CONN-6 on the real binary: SIGTERM and SIGINT make `chat-server` send every client one
//! `ERR server-shutdown`, close, and exit 0 promptly.

#![cfg(test)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::Client;

/// Starts the binary on a free port and reads the address from its banner.
fn spawn_server() -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-server");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("banner").expect("banner line");
    let addr = first
        .strip_prefix("chat-server listening on ")
        .unwrap_or_else(|| panic!("banner: {first}"));
    let addr: SocketAddr = addr.parse().unwrap();
    // Keep reading the banner in the background so the pipe never fills.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
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
