//! CONN-5 on the real accept path: a connection the running server accepted, on the plain
//! and on the TLS listener, has TCP_NODELAY, keepalive with the spec's numbers (30 s idle,
//! 3 probes 10 s apart) and a 60 s TCP user timeout, read back with getsockopt from the
//! server's own socket. The server runs in this process, so its socket is one of this
//! process's descriptors: found by its two addresses. (What these numbers do to a peer
//! that vanishes is shown in `vanish.rs`.)

#![cfg(test)]

mod common;

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use chat_server::tls::{Identity, TlsConfig};
use common::Client;
use socket2::SockRef;

/// Checks the server's end of the connection from `client` to `server`; returns whether
/// it was found among this process's descriptors.
fn check_servers_end(server: SocketAddr, client: &TcpStream) -> bool {
    let ours = client.local_addr().unwrap();
    let client_fd = client.as_raw_fd();
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
        if local.as_socket() != Some(server) || peer.as_socket() != Some(ours) {
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
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(60)),
            "TCP_USER_TIMEOUT"
        );
    }
    assert!(found <= 1, "one server end per connection");
    found == 1
}

#[test]
fn conn_5_accepted_sockets_have_the_keepalive_numbers() {
    let s = common::start_default();
    let mut c = Client::connect(s.local_addr());
    c.expect("NICK");
    assert!(
        check_servers_end(s.local_addr(), &c.stream),
        "the server's end of the connection"
    );
}

/// The TLS listener's sockets are tuned at the accept, before the TLS handshake: a
/// client that vanishes in the handshake is as bounded as one that vanishes later.
#[test]
fn conn_5_tls_accepted_sockets_have_the_keepalive_numbers() {
    let s = common::start(|c| {
        c.tls = Some(TlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            identity: Identity::self_signed(None, None).expect("self-signed"),
        });
    });
    let tls = s.tls_addr().expect("TLS listener");
    // A bare TCP connection: the server holds it in the TLS handshake (TLS-4).
    let client = TcpStream::connect(tls).unwrap();
    // The accept happens on the server's thread: look until it has (bounded).
    let deadline = Instant::now() + common::WAIT;
    while !check_servers_end(tls, &client) {
        assert!(Instant::now() < deadline, "the server never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
}
