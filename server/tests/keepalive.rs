//! CONN-5 on the real accept path: a connection the running server accepted has
//! TCP_NODELAY and keepalive with the spec's numbers (30 s idle, 3 probes 10 s apart), read
//! back with getsockopt from the server's own socket. The server runs in this process, so
//! its socket is one of this process's descriptors: found by its two addresses.

#![cfg(test)]

mod common;

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use common::Client;
use socket2::SockRef;

#[test]
fn conn_5_accepted_sockets_have_the_keepalive_numbers() {
    let s = common::start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    let ours = c.stream.local_addr().unwrap();
    let client_fd = c.stream.as_raw_fd();
    let mut found = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if fd == client_fd {
            continue;
        }
        // SAFETY: the descriptor is open (listed just now) and only borrowed for the
        // getsockopt calls below, while the server keeps it open (its client is connected).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&fd);
        let (Ok(local), Ok(peer)) = (sock.local_addr(), sock.peer_addr()) else {
            continue;
        };
        if local.as_socket() != Some(s.local_addr()) || peer.as_socket() != Some(ours) {
            continue;
        }
        found += 1;
        assert!(sock.tcp_nodelay().unwrap(), "TCP_NODELAY");
        assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE");
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
    }
    assert_eq!(found, 1, "the server's end of the connection");
}
