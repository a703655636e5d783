//! Spec §6, connections: CONN-1..6, plus crashes, floods and slow readers
//! (DEFECTS.md items 5, 6, 8).

#![cfg(test)]

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chat_proto::ErrorCode;
use common::{Client, Got, eventually, start, start_default};

/// CONN-1: connections beyond the maximum, handshaking ones counted, get `server-full`
/// instead of `NICK` and are closed; a freed place can be taken again.
#[test]
fn conn_1_max_clients() {
    let s = start(|c| c.max_clients = 2);
    let mut a = Client::join(s.local_addr(), "alice");
    let mut handshaking = Client::connect(s.local_addr());
    handshaking.expect("NICK");
    let mut third = Client::connect(s.local_addr());
    third.expect_err(ErrorCode::ServerFull);
    third.expect_closed();
    drop(handshaking);
    eventually("the slot is freed", || s.hub().open_connections() == 1);
    let mut fourth = Client::connect(s.local_addr());
    fourth.expect("NICK");
    a.expect_quiet();
}

/// CONN-2: a leave notice exactly once for every way of going; none for a connection
/// that leaves during the handshake; the nickname is free again. (DEFECTS.md item 5:
/// the notice is sent at once, not when someone else speaks.)
#[test]
fn conn_2_leave_exactly_once() {
    let s = start_default();
    let mut w = Client::join(s.local_addr(), "watcher");
    // Close (FIN).
    let a = Client::join(s.local_addr(), "alice");
    w.expect("alice has joined the chat");
    drop(a);
    w.expect("alice has left the chat");
    // Reset (RST).
    let b = Client::join(s.local_addr(), "bob");
    w.expect("bob has joined the chat");
    b.reset();
    w.expect("bob has left the chat");
    // /quit.
    let mut c = Client::join(s.local_addr(), "carol");
    w.expect("carol has joined the chat");
    c.say("/quit");
    w.expect("carol has left the chat");
    // During the handshake: nothing.
    let mut h = Client::connect(s.local_addr());
    h.expect("NICK");
    drop(h);
    w.expect_quiet();
    // The names are free again.
    let _again = Client::join(s.local_addr(), "alice");
    w.expect("alice has joined the chat");
    w.expect_quiet();
    eventually("only two users remain", || s.hub().users() == 2);
}

/// The kernel's largest automatic TCP send buffer: what the server's socket may hold for
/// a client besides its queue.
fn tcp_wmem_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 << 20)
}

/// CONN-3, CONN-4 (and DEFECTS.md item 6): a client that never reads while another sends
/// megabytes: the others receive everything in order, the slow one is cut off (the
/// others see it leave exactly once), and the server's queues and log stay within their
/// limits. (With the shared log, a non-reader is cut off once it lags `max_lag` behind;
/// the small log budget makes the server pause the sender meanwhile.)
#[test]
fn conn_3_conn_4_slow_reader_cut_off_others_unaffected() {
    let sendq = 256 * 1024;
    let log_budget = 2 << 20;
    let s = start(|c| {
        c.sendq = sendq;
        c.log_budget = log_budget;
        c.max_lag = Duration::from_secs(1);
    });
    let addr = s.local_addr();
    let mut fast = Client::join(addr, "fast");
    let slow = Client::join(addr, "slow");
    // Keep the slow client's receive window small.
    socket2::SockRef::from(&slow.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    let mut sender = Client::join(addr, "sender");
    fast.expect("slow has joined the chat");
    fast.expect("sender has joined the chat");

    // Enough to fill the kernel's buffers for `slow` and then its queue, twice over.
    let body = "m".repeat(1000);
    let count = (2 * (tcp_wmem_max() + sendq) / 1000).clamp(4000, 40_000);
    let progress = Arc::new(AtomicUsize::new(0));
    let fast_progress = progress.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        let mut left = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen < count {
            assert!(Instant::now() < deadline, "fast reader starved");
            let l = fast.line();
            if l == "slow has left the chat" {
                left += 1;
                continue;
            }
            let (nick, text) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("unexpected: {l}"));
            assert_eq!(nick, "sender");
            let n: usize = text[..5].parse().unwrap();
            assert_eq!(n, seen, "out of order");
            seen += 1;
            fast_progress.store(seen, Ordering::Release);
        }
        (fast, left)
    });
    // The sender's own echo is read (and dropped) by another thread: it is no slow reader.
    let mut echo = sender.stream.try_clone().unwrap();
    let echo_thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = echo.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let hub = s.hub().clone();
    let sender_thread = std::thread::spawn(move || {
        let mut max_queued = 0;
        let mut max_log = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        for n in 0..count {
            sender.say(&format!("{n:05}{body}"));
            // Stay at most 64 lines ahead of the fast reader: the test is about the slow
            // one, not about a reader slower than the sender.
            while n > progress.load(Ordering::Acquire) + 64 {
                assert!(Instant::now() < deadline, "fast reader stalled");
                std::thread::sleep(Duration::from_micros(200));
            }
            if n % 100 == 0 {
                max_queued = max_queued.max(hub.queued_bytes());
                max_log = max_log.max(hub.log_bytes());
            }
        }
        (sender, max_queued, max_log)
    });
    let (sender, max_queued, max_log) = sender_thread.join().unwrap();
    let (mut fast, mut left) = reader.join().unwrap();
    if left == 0 {
        fast.expect("slow has left the chat");
        left = 1;
    }
    assert_eq!(left, 1);
    fast.expect_quiet();
    assert_eq!(s.hub().users(), 2);
    assert!(max_queued <= 3 * sendq, "queues held {max_queued} bytes");
    assert!(max_log <= log_budget, "the log held {max_log} bytes");
    slow.reset();
    drop(sender);
    drop(s);
    echo_thread.join().unwrap();
}

/// A crash (panic) in one connection's task cannot take the server down, and its user
/// leaves exactly once (CONN-2). Uses `Config::panic_trigger`, a documented test hook.
#[test]
fn conn_2_panic_in_connection_task_leaves_once() {
    let s = start(|c| c.panic_trigger = Some("boom!".into()));
    let mut w = Client::join(s.local_addr(), "watcher");
    let mut victim = Client::join(s.local_addr(), "victim");
    w.expect("victim has joined the chat");
    victim.say("boom!");
    w.expect("victim has left the chat");
    victim.expect_closed();
    w.expect_quiet();
    // The server goes on: new users, chat, the name is free.
    let mut again = Client::join(s.local_addr(), "victim");
    w.expect("victim has joined the chat");
    again.say("back");
    w.expect("victim: back");
    eventually("the crashed connection's slot is freed", || {
        s.hub().open_connections() == 2
    });
}

/// CONN-5 is checked in the listener's unit tests (socket options); here: IPv6 listen
/// addresses work (skipped when the machine has no IPv6 loopback).
#[test]
fn ipv6_listen_works() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let s = start(|c| c.listen = "[::1]:0".parse().unwrap());
    assert!(s.local_addr().is_ipv6());
    let mut a = Client::join(s.local_addr(), "six");
    a.say("over v6");
    a.expect("six: over v6");
}

/// CONN-6: at shutdown every connection, handshaking or chatting, gets one
/// `ERR server-shutdown` and is closed; no leave notices; the handle returns promptly.
#[test]
fn conn_6_shutdown_in_process() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    let mut h = Client::connect(s.local_addr());
    h.expect("NICK");
    let started = Instant::now();
    s.shutdown();
    assert!(started.elapsed() < Duration::from_secs(3));
    for c in [&mut a, &mut b, &mut h] {
        c.expect_err(ErrorCode::ServerShutdown);
        c.expect_closed();
    }
}

/// A flood of connections that send half lines, junk, or nothing and vanish (FIN or
/// reset) leaves the server serving, with every slot freed.
#[test]
fn flood_of_connections_and_half_lines_then_reset() {
    let s = start_default();
    let addr = s.local_addr();
    let mut w = Client::join(addr, "watcher");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..75 {
                    let mut c = Client::connect(addr);
                    match i % 5 {
                        0 => {}
                        1 => c.send_raw(b"half a nick"),
                        2 => c.send_raw(b"\xff\xfe\x00\x01junk"),
                        3 => {
                            c.send_raw(format!("f{t}x{i}\nhalf a chat li").as_bytes());
                        }
                        _ => c.send_raw(&[b'x'; 3000]),
                    }
                    if i % 2 == 0 { c.reset() } else { drop(c) }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    eventually("every flood connection is closed", || {
        s.hub().open_connections() == 1
    });
    // Those that joined left; no half line was ever relayed.
    let mut joins = 0;
    let mut leaves = 0;
    while let Got::Line(l) = w.next(Duration::from_millis(300)) {
        if l.ends_with(" has joined the chat") {
            joins += 1;
        } else if l.ends_with(" has left the chat") {
            leaves += 1;
        } else {
            panic!("unexpected line: {l}");
        }
    }
    assert_eq!(joins, leaves);
    let mut a = Client::join(addr, "after");
    a.say("still serving");
    a.expect("after: still serving");
}

/// Silent clients (DEFECTS.md item 8): many connections that never say anything do not
/// delay a join or a message.
#[test]
fn silent_clients_block_nobody() {
    let s = start_default();
    let silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(s.local_addr()).unwrap())
        .collect();
    let started = Instant::now();
    let mut a = Client::join(s.local_addr(), "alice");
    a.say("hi");
    a.expect("alice: hi");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(silent);
}

/// Whatever a client sends after `/quit` is ignored, and its connection ends even if it
/// never closes its side (bounded linger).
#[test]
fn quit_closes_even_if_client_keeps_sending() {
    let s = start(|c| c.close_linger = Duration::from_millis(100));
    let addr: SocketAddr = s.local_addr();
    let mut a = Client::join(addr, "alice");
    a.say("/quit");
    a.send_raw(b"ignored\n");
    a.expect_closed();
    eventually("the connection is gone", || s.hub().open_connections() == 0);
}

/// A client's end of stream (half-close) ends its session like `/quit`: the others see it
/// leave once, and what was already queued for it is still written before the server
/// closes.
#[test]
fn end_of_stream_leaves_once_and_still_gets_what_was_queued() {
    let s = start_default();
    let mut w = Client::join(s.local_addr(), "watcher");
    let mut a = Client::join(s.local_addr(), "alice");
    w.expect("alice has joined the chat");
    w.say("hello alice");
    w.expect("watcher: hello alice");
    a.half_close();
    w.expect("alice has left the chat");
    w.expect_quiet();
    a.expect("watcher: hello alice");
    a.expect_closed();
    eventually("alice's connection is gone", || {
        s.hub().open_connections() == 1
    });
}

/// Shutdown (CONN-6): what is already in the log for a client goes out first, then
/// `ERR server-shutdown` as its very last line.
#[test]
fn conn_6_shutdown_sends_what_is_queued_first() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    let mut b = Client::join(s.local_addr(), "bob");
    a.expect("bob has joined the chat");
    for i in 0..100 {
        a.say(&format!("line {i}"));
    }
    for i in 0..100 {
        a.expect(&format!("alice: line {i}"));
    }
    // bob has read none of them yet.
    s.shutdown();
    for i in 0..100 {
        b.expect(&format!("alice: line {i}"));
    }
    b.expect_err(ErrorCode::ServerShutdown);
    b.expect_closed();
}

/// After the server closed a connection it reads and discards input for a bounded
/// time and a bounded number of bytes: a client that keeps sending cannot keep it open.
#[test]
fn closing_discards_at_most_64_kib() {
    let s = start(|c| c.close_linger = Duration::from_secs(30));
    let mut a = Client::join(s.local_addr(), "alice");
    a.say("/quit");
    let junk = vec![b'j'; 16 * 1024];
    let started = Instant::now();
    for _ in 0..8 {
        if std::io::Write::write_all(&mut a.stream, &junk).is_err() {
            break;
        }
    }
    eventually("the connection is gone", || s.hub().open_connections() == 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(chat_server::CLOSE_DISCARD, 64 * 1024);
}
