//! The join storm of issue 14, against the real `chat-server` binary: 10,000 users join
//! from 20 loopback addresses (127.0.0.10 to .29) and never read a line (each with a
//! 16 KiB receive buffer, so the notices they ignore stop piling up in the kernel); then
//! users leave and join at a fixed rate ([`CHURN_PER_SECOND`] each way); then everyone
//! leaves. From the first storm user to the end of the churn a newcomer from 127.0.0.2
//! times its `NICK` every 50 ms or so. Checked (issue 14): every newcomer, while the
//! 10,000 pour in and during the churn, gets `NICK` within 100 ms of its `connect` (less
//! the kernel's retransmission timeouts when the server's end of that very connection
//! had to retransmit, read with `ss`: a loopback drop, not the server's doing). Once the
//! storm is over the server's RSS is within 20% of what it was idle before, freshly
//! started and having served one user. The same server's RSS after a small crowd
//! ([`WARM_UP`] users) came and went is reported as well: that first crowd brings in
//! code pages of the binary and libc (up to about 190 KiB) that any crowd's arrival and
//! departure uses.
//!
//! Its own test binary, as it raises RLIMIT_NOFILE and holds about 10,000 descriptors
//! (the server, a separate process, holds the other ends). The joins are pipelined
//! (SRV-6: the nickname is sent right after `connect`, before `NICK` is read), so the
//! server joins many per wake of its writers, as it would under a real storm of
//! independent clients; that keeps the test to seconds.

#![cfg(test)]

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_proto::{Nickname, ServerMessage};
use common::Client;
use socket2::{Domain, Socket, Type};

/// Users joined at the peak.
const PEAK: usize = 10_000;
/// Source addresses the storm comes from (127.0.0.10 and up).
const SOURCES: usize = 20;
/// Leaves per second, and joins per second, during the churn.
const CHURN_PER_SECOND: u64 = 1_000;
/// How long the churn lasts.
const CHURN: Duration = Duration::from_secs(3);
/// The slowest `NICK` a newcomer may see (issue 14).
const NICK_WITHIN: Duration = Duration::from_millis(100);
/// The RSS the server may have once the storm is over, in percent of its RSS when idle
/// and fresh (issue 14).
const AFTER_AT_MOST_PERCENT: u64 = 120;
/// The small crowd that comes and goes before the storm (enough to make the server give
/// memory back when it leaves, as the storm's users will), for the report.
const WARM_UP: usize = 200;
/// Newcomers timed, at most.
const PROBES_AT_MOST: usize = 400;
/// A non-reader's receive buffer.
const NON_READER_RCVBUF: usize = 16 * 1024;

fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + (i % SOURCES) as u8)
}

/// Connects from `source(i)` and sends the nickname `s<i>` at once, reading nothing.
fn storm_user(addr: SocketAddr, i: usize) -> TcpStream {
    user(addr, i, 's')
}

/// Connects from `source(i)` and sends the nickname `<first><i>` at once, reading nothing.
fn user(addr: SocketAddr, i: usize, first: char) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .set_recv_buffer_size(NON_READER_RCVBUF)
        .expect("SO_RCVBUF");
    socket
        .bind(&SocketAddr::V4(SocketAddrV4::new(source(i), 0)).into())
        .expect("bind the source address");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(10))
        .expect("connect");
    let mut stream: TcpStream = socket.into();
    let mut line = Vec::new();
    Nickname::new(&format!("{first}{i}"))
        .expect("valid nick")
        .encode_line(&mut line);
    stream.write_all(&line).expect("send the nickname");
    stream
}

/// One newcomer's wait for `NICK`.
#[derive(Debug, Clone)]
struct Probe {
    /// When it started connecting.
    at: Instant,
    /// From `connect` to the connection being established (the kernel's part alone).
    connect: Duration,
    /// From `connect` to `NICK` read: what the user waits.
    nick: Duration,
    /// Retransmissions the kernel counted on the server's end of this connection (its
    /// SYN-ACK or its `NICK`), read with `ss` when the probe was slow; 0 otherwise.
    retrans: u32,
    /// For a slow probe, the earliest time (since `at`) at which the server's end can
    /// have last sent, which is when it wrote `NICK`: `ss`'s `lastsnd` (whole
    /// milliseconds) counted back from when `ss` was started (it reads the socket a
    /// little later, which only makes the write later still). A late write means the
    /// wait was before it (accept queue, greeting), not in delivery to the client.
    sent: Option<Duration>,
}

/// Connects from 127.0.0.2 and times `NICK`; then sends a nickname and `/quit` and goes
/// (its join and leave are two more events of the storm). A slow one asks the kernel
/// (`ss`) whether the server's end of the connection had to retransmit.
fn newcomer(addr: SocketAddr, n: usize) -> Probe {
    let at = Instant::now();
    let stream = common::connect_from(Ipv4Addr::new(127, 0, 0, 2), addr);
    let connect = at.elapsed();
    let local = stream.local_addr().expect("local address");
    let mut c = Client::from_stream(stream);
    c.expect("NICK");
    let nick = at.elapsed();
    let (retrans, sent) = if nick > NICK_WITHIN {
        let asked = at.elapsed();
        let info = server_end(addr, local);
        let sent = info
            .last_sent
            .map(|ago| asked.saturating_sub(ago + Duration::from_millis(1)));
        (info.retrans, sent)
    } else {
        (0, None)
    };
    c.send_nick(&format!("newcomer{n}"));
    c.say("/quit");
    Probe {
        at,
        connect,
        nick,
        retrans,
        sent,
    }
}

/// What the kernel says of the server's end of a connection.
struct ServerEnd {
    /// Total retransmissions (`retrans:<now>/<total>`; absent when none).
    retrans: u32,
    /// How long ago it last sent (`lastsnd:<ms>`).
    last_sent: Option<Duration>,
}

/// The server's end (`server` to `client`) of an established connection, from `ss -ti`.
fn server_end(server: SocketAddr, client: SocketAddr) -> ServerEnd {
    let out = std::process::Command::new("ss")
        .args(["-tinH", "state", "established", "src"])
        .arg(server.to_string())
        .arg("dst")
        .arg(client.to_string())
        .output();
    let Ok(out) = out else {
        eprintln!("join storm: ss not available; a slow NICK counts as the server's");
        return ServerEnd {
            retrans: 0,
            last_sent: None,
        };
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    ServerEnd {
        retrans: field("retrans:")
            .and_then(|r| r.split('/').nth(1)?.parse().ok())
            .unwrap_or(0),
        last_sent: field("lastsnd:")
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis),
    }
}

/// Kernel counters that show packets lost on loopback: `TcpExt` `TCPTimeouts` and
/// `ListenOverflows` (`/proc/net/netstat`), and the packets dropped by the per-CPU
/// backlog (`/proc/net/softnet_stat`, second column).
fn kernel_drops() -> [u64; 3] {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines();
    let mut tcpext = [0; 2];
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            match name {
                "TCPTimeouts" => tcpext[0] = value.parse().unwrap_or(0),
                "ListenOverflows" => tcpext[1] = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let softnet = std::fs::read_to_string("/proc/net/softnet_stat").unwrap_or_default();
    let dropped = softnet
        .lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum();
    [tcpext[0], tcpext[1], dropped]
}

/// "n times: p50 .., p99 .., max .." of `took`.
fn summary(took: &[Duration]) -> String {
    let mut sorted = took.to_vec();
    sorted.sort();
    let at = |q: usize| sorted.get((sorted.len() * q / 100).min(sorted.len().saturating_sub(1)));
    format!(
        "{} times: p50 {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        at(50).copied().unwrap_or_default(),
        at(99).copied().unwrap_or_default(),
        sorted.last().copied().unwrap_or_default()
    )
}

/// The server's open descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Reads the observer's lines for up to `within`, counting join and leave notices of
/// storm users (nicknames starting with `s`).
fn count_notices(obs: &mut Client, joins: &mut usize, leaves: &mut usize, within: Duration) {
    count_notices_of(obs, 's', joins, leaves, within);
}

/// Reads the observer's lines for up to `within`, counting join and leave notices of
/// users whose nicknames start with `first`.
fn count_notices_of(
    obs: &mut Client,
    first: char,
    joins: &mut usize,
    leaves: &mut usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match obs.next(Duration::from_millis(50)) {
            common::Got::Line(l) => match ServerMessage::parse(&l) {
                Ok(ServerMessage::Joined(n)) if n.as_str().starts_with(first) => *joins += 1,
                Ok(ServerMessage::Left(n)) if n.as_str().starts_with(first) => *leaves += 1,
                _ => {}
            },
            common::Got::Timeout => return,
            common::Got::Closed => panic!("the observer was cut off"),
        }
    }
}

/// The server process, stopped however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn join_storm_keeps_nick_fast_and_memory_comes_back() {
    let limit = chat_server::listener::raise_fd_limit().expect("raise fd limit");
    if limit < (PEAK + 1_000) as u64 {
        eprintln!("open-file limit {limit} is too low for a {PEAK}-user storm; skipped");
        return;
    }
    let per_address = (PEAK / SOURCES + 100).to_string();
    let max_clients = (PEAK + 1_000).to_string();
    let bin = std::env::var_os("CHAT_SERVER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_chat-server").into());
    let (child, addr) = common::spawn_binary_at(
        &bin,
        &[
            "--max-clients",
            &max_clients,
            "--max-per-address",
            &per_address,
            "--max-handshakes-per-address",
            "0",
        ],
    );
    let child = KillOnDrop(child);
    let pid = child.0.id();
    eprintln!("join storm: server {pid} at {addr}");
    let idle_fds = open_fds(pid);
    let mut observer = common::join_from(Ipv4Addr::new(127, 0, 0, 3), addr, "observer");
    // The fresh idle server, having served one user (and with the observer joined).
    newcomer(addr, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > idle_fds + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    let rss_fresh = common::proc_status_kib(pid, "VmRSS");
    let anon_fresh = common::proc_status_kib(pid, "RssAnon");
    // The same server once a small crowd came and went (reported only).
    let crowd: Vec<TcpStream> = (0..WARM_UP).map(|i| user(addr, i, 'w')).collect();
    let (mut joins, mut leaves) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while joins < WARM_UP && Instant::now() < deadline {
        count_notices_of(
            &mut observer,
            'w',
            &mut joins,
            &mut leaves,
            Duration::from_secs(1),
        );
    }
    drop(crowd);
    while leaves < WARM_UP && Instant::now() < deadline {
        count_notices_of(
            &mut observer,
            'w',
            &mut joins,
            &mut leaves,
            Duration::from_secs(1),
        );
    }
    assert_eq!(
        (joins, leaves),
        (WARM_UP, WARM_UP),
        "the warm-up crowd came and went"
    );
    while open_fds(pid) > idle_fds + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    let rss_warm = common::proc_status_kib(pid, "VmRSS");
    let (mut joins, mut leaves) = (0, 0);

    // A newcomer times its NICK every 50 ms or so from another address, from the start
    // of the storm to the end of the churn.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut probes = Vec::new();
            while !stop.load(Ordering::Relaxed) && probes.len() < PROBES_AT_MOST {
                probes.push(newcomer(addr, probes.len() + 1));
                std::thread::sleep(Duration::from_millis(50));
            }
            probes
        })
    };

    // The storm: PEAK users joined, none reading.
    let kernel_before = kernel_drops();
    let started = Instant::now();
    let mut users: std::collections::VecDeque<TcpStream> =
        (0..PEAK).map(|i| storm_user(addr, i)).collect();
    let connected = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while joins < PEAK && Instant::now() < deadline {
        count_notices(
            &mut observer,
            &mut joins,
            &mut leaves,
            Duration::from_secs(1),
        );
    }
    assert_eq!(joins, PEAK, "every storm user joined");
    let joined = started.elapsed();
    let rss_peak = common::proc_status_kib(pid, "VmRSS");

    let step = Duration::from_micros(1_000_000 / CHURN_PER_SECOND);
    let churn_start = Instant::now();
    let mut next = PEAK;
    let mut tick = churn_start;
    while churn_start.elapsed() < CHURN {
        drop(users.pop_front());
        users.push_back(storm_user(addr, next));
        next += 1;
        tick += step;
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Keep the observer's window open (it reads; the storm users do not).
        if next % 50 == 0 {
            count_notices(&mut observer, &mut joins, &mut leaves, Duration::ZERO);
        }
    }
    let churned = next - PEAK;
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().expect("prober");
    let kernel_after = kernel_drops();
    let (ramp, churn): (Vec<Probe>, Vec<Probe>) =
        probes.into_iter().partition(|p| p.at < churn_start);

    // Everyone leaves; the server is idle again.
    drop(users);
    let deadline = Instant::now() + Duration::from_secs(60);
    while leaves < PEAK + churned && Instant::now() < deadline {
        count_notices(
            &mut observer,
            &mut joins,
            &mut leaves,
            Duration::from_secs(1),
        );
    }
    assert_eq!(leaves, PEAK + churned, "every storm user left");
    drop(observer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > idle_fds && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Memory is given back shortly after the last connection of a crowd is gone.
    std::thread::sleep(Duration::from_millis(1_000));
    let rss_after = common::proc_status_kib(pid, "VmRSS");
    let anon_after = common::proc_status_kib(pid, "RssAnon");
    drop(child);

    eprintln!(
        "join storm: {PEAK} users from {SOURCES} addresses connected in {connected:?}, all joined \
         after {joined:?}; churn {CHURN_PER_SECOND}/s each way for {CHURN:?} ({churned} left and \
         joined); newcomer NICK during the storm {} and during the churn {}; RSS fresh idle \
         {rss_fresh} KiB, after a {WARM_UP}-user crowd {rss_warm} KiB, peak {rss_peak} KiB, after \
         the storm {rss_after} KiB = {}% of fresh, {}% of warmed (anonymous: fresh {anon_fresh} \
         KiB, after {anon_after} KiB)",
        summary(&ramp.iter().map(|p| p.nick).collect::<Vec<_>>()),
        summary(&churn.iter().map(|p| p.nick).collect::<Vec<_>>()),
        rss_after * 100 / rss_fresh,
        rss_after * 100 / rss_warm,
    );
    assert!(
        ramp.len() >= 5 && churn.len() >= 5,
        "the newcomer was timed {} times during the storm and {} during the churn",
        ramp.len(),
        churn.len()
    );
    let slowest_connect = ramp.iter().chain(&churn).map(|p| p.connect).max();
    let kernel: Vec<u64> = (0..3).map(|i| kernel_after[i] - kernel_before[i]).collect();
    eprintln!(
        "join storm: slowest connect {slowest_connect:?}; during storm and churn the kernel \
         counted {} TCPTimeouts, {} ListenOverflows, {} softnet drops",
        kernel[0], kernel[1], kernel[2]
    );
    for (phase, probes) in [("storm", &ramp), ("churn", &churn)] {
        for p in probes.iter().filter(|p| p.nick > NICK_WITHIN) {
            eprintln!(
                "join storm: slow newcomer during the {phase}: NICK read after {:?} (connected \
                 after {:?}; the server sent it {:?} at the earliest), {} retransmissions on the \
                 server's end",
                p.nick, p.connect, p.sent, p.retrans
            );
        }
    }
    // Issue 14: NICK within 100 ms for every newcomer, while the 10,000 pour in (about
    // 10,000 connects a second) and during the churn. While they pour in, the accept
    // thread must keep up with the burst, or a newcomer waits in the kernel's accept
    // queue behind the storm's own connections: the executor threads run at a lower
    // priority for that (`chat_server::EXECUTOR_NICE`; without it, 106 to 490 ms in 17 of
    // 57 runs on 2 busy cores, docs/reliability.md "join storm").
    // A newcomer whose own connection lost a packet on loopback (the kernel retransmitted
    // its SYN-ACK or its NICK: seen under heavy load, with softnet drops) waited for the
    // kernel's retransmission timer (at least 200 ms): that wait is the kernel's; what
    // remains must still be within the bound.
    for (phase, probes) in [("storm", &ramp), ("churn", &churn)] {
        for p in probes {
            let kernel_wait = Duration::from_millis(200) * p.retrans;
            assert!(
                p.nick.saturating_sub(kernel_wait) <= NICK_WITHIN,
                "a newcomer waited {:?} for NICK during the {phase} ({} retransmissions; {})",
                p.nick,
                p.retrans,
                summary(&probes.iter().map(|p| p.nick).collect::<Vec<_>>())
            );
        }
    }
    // Issue 14: within 20% of the fresh idle server. What stays is the reactor's socket
    // table, which keeps its peak size (16 bytes a socket, 160 KiB here), libc code
    // pages first used by a crowd, and heap fragmentation (docs/reliability.md, "join
    // storm").
    assert!(
        rss_after * 100 <= rss_fresh * AFTER_AT_MOST_PERCENT,
        "RSS {rss_after} KiB after the storm, {rss_fresh} KiB idle before it \
         (at most {AFTER_AT_MOST_PERCENT}%)"
    );
}
