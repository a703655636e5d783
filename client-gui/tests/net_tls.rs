//! The network thread against the real server's TLS listener on 127.0.0.1 (spec §19):
//! trust on first use pins the certificate, a pinned one is accepted again, and a
//! changed one is refused with a warning naming both fingerprints, before any byte of
//! the chat protocol is sent. Every wait is bounded.

#![cfg(test)]

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use chat_client_gui::net::{self, NetCommand, NetEvent};
use chat_client_gui::pin::{self, PinStore};
use chat_proto::{Fingerprint, Nickname};

const WAIT: Duration = Duration::from_secs(10);

/// One pin file for this test binary (the store is process-wide).
fn store() -> &'static PinStore {
    pin::use_store(PinStore::at(std::env::temp_dir().join(format!(
        "chat-gui-net-tls-{}-{}/known_servers",
        std::process::id(),
        fastrand::u64(..)
    ))))
}

fn tls_server() -> (chat_server::ServerHandle, String, Fingerprint) {
    tls_server_at("127.0.0.1:0")
}

/// A server with a new self-signed certificate, its TLS listener on `listen`.
fn tls_server_at(listen: &str) -> (chat_server::ServerHandle, String, Fingerprint) {
    let identity = chat_server::tls::Identity::self_signed(None, None).unwrap();
    let fp = identity.fingerprint();
    let mut config = chat_server::Config::loopback_ephemeral();
    config.threads = 1;
    config.tls = Some(chat_server::tls::TlsConfig {
        listen: listen.parse().unwrap(),
        identity,
    });
    let server = chat_server::Server::bind(config).unwrap().spawn().unwrap();
    let addr = server.tls_addr().unwrap().to_string();
    (server, addr, fp)
}

fn until(rx: &Receiver<NetEvent>, done: impl Fn(&NetEvent) -> bool) -> Vec<NetEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no such event; saw {seen:?}"));
        let stop = done(&e);
        seen.push(e);
        if stop {
            return seen;
        }
    }
}

fn connect(addr: &str, nick: &str) -> (net::CommandSender, net::NetHandle, Receiver<NetEvent>) {
    let (tx, rx) = mpsc::channel();
    let (commands, handle) = net::spawn(tx);
    commands.send(NetCommand::Connect {
        addr: format!("tls://{addr}"),
        nick: Nickname::new(nick).unwrap(),
    });
    (commands, handle, rx)
}

/// TLS-7: the first connection pins the certificate and says so; the next one finds it
/// pinned; the chat works over TLS.
#[test]
fn tls_7_first_use_pins_then_matches() {
    let store = store();
    let (server, addr, fp) = tls_server();
    let (_c, handle, rx) = connect(&addr, "first");
    let seen = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert!(
        seen.iter().any(|e| matches!(e, NetEvent::Secure(s)
            if s.first_use && s.fingerprint == fp && s.server == addr)),
        "{seen:?}"
    );
    assert_eq!(store.lookup(&addr), Some(fp));
    handle.shutdown();
    let (_c, handle, rx) = connect(&addr, "second");
    let seen = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert!(
        seen.iter()
            .any(|e| matches!(e, NetEvent::Secure(s) if !s.first_use && s.fingerprint == fp)),
        "{seen:?}"
    );
    handle.shutdown();
    server.shutdown();
}

/// TLS-7: a server presenting another certificate than the pinned one is refused with a
/// loud warning naming both fingerprints; it never sees a nickname.
#[test]
fn tls_7_changed_fingerprint_is_refused() {
    let store = store();
    let (server, addr, fp) = tls_server();
    let pinned = Fingerprint([0xAB; 32]);
    store.pin(&addr, pinned).unwrap();
    let (_c, handle, rx) = connect(&addr, "victim");
    let seen = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    let Some(NetEvent::Disconnected {
        reason, retry_in, ..
    }) = seen.last()
    else {
        unreachable!()
    };
    assert!(
        reason.contains("CHANGED") && reason.contains(&addr),
        "{reason}"
    );
    assert_eq!(*retry_in, None);
    let changed = chat_client_gui::tls::Changed {
        server: addr.clone(),
        pinned,
        presented: fp,
    };
    assert!(seen.contains(&NetEvent::CertChanged(changed)), "{seen:?}");
    assert!(
        !seen.iter().any(|e| matches!(e, NetEvent::Opened)),
        "{seen:?}"
    );
    // The pin is not replaced by the refused certificate, and nobody joined.
    assert_eq!(store.lookup(&addr), Some(pinned));
    assert_eq!(server.hub().users(), 0);
    handle.shutdown();
    server.shutdown();
}

/// TLS-7: the server the client was chatting with comes back with another certificate
/// (on the same address): the automatic reconnection is refused, and that refusal is a
/// stop, not a network fault — no further attempt comes by itself (the backoff would
/// retry after 1-1.2 s; the test waits 3 s). Only the user's `Trust` replaces the pin,
/// and then the client connects and chats again.
#[test]
fn tls_7_a_changed_certificate_is_not_retried_until_the_user_trusts_it() {
    let store = store();
    let (server, addr, first) = tls_server();
    let (commands, handle, rx) = connect(&addr, "carol");
    until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert_eq!(store.lookup(&addr), Some(first));
    server.shutdown();
    let (server, again, second) = tls_server_at(&addr);
    assert_eq!(again, addr);
    assert_ne!(first, second);
    let seen = until(&rx, |e| matches!(e, NetEvent::CertChanged(_)));
    let Some(NetEvent::CertChanged(changed)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        (changed.server.as_str(), changed.pinned, changed.presented),
        (addr.as_str(), first, second)
    );
    let seen = until(&rx, |e| matches!(e, NetEvent::Disconnected { .. }));
    assert!(
        matches!(
            seen.last(),
            Some(NetEvent::Disconnected { retry_in: None, .. })
        ),
        "{seen:?}"
    );
    // Bounded wait for an attempt that must not come.
    match rx.recv_timeout(Duration::from_secs(3)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("the client went on by itself: {other:?}"),
    }
    assert_eq!(store.lookup(&addr), Some(first), "the pin is untouched");
    assert_eq!(server.hub().users(), 0);
    commands.send(NetCommand::Trust {
        server: addr.clone(),
        fingerprint: second,
    });
    let seen = until(&rx, |e| matches!(e, NetEvent::Welcome { .. }));
    assert!(
        seen.iter()
            .any(|e| matches!(e, NetEvent::Secure(s) if !s.first_use && s.fingerprint == second)),
        "{seen:?}"
    );
    assert_eq!(store.lookup(&addr), Some(second));
    handle.shutdown();
    server.shutdown();
}
