//! Soak test: clients churn (join, chat, whisper, rename, `/who`, leave by `/quit` or by
//! a reset) against a real `chat-server` process while an observer stays connected
//! throughout; then a checker proves from the transcripts that every client received
//! exactly the events addressed to it, once each, in the one global order (SRV-4), that
//! every accepted line was relayed exactly once (CHAT-1, CMD-MSG-1), that every user left
//! exactly once (CONN-2), and that the server's descriptors return to their baseline and
//! its memory stays bounded.
//!
//! Short by default (CI); run it for minutes with
//! `CHAT_SOAK_SECS=300 cargo test --release -p chat-server --test soak -- --nocapture`.

#![cfg(test)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chat_proto::{Incoming, ServerReader};

/// Threads that each run one client after another.
const WORKERS: usize = 8;
/// Longest any single wait may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(10);

fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-server"))
}

fn soak_secs() -> f64 {
    std::env::var("CHAT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// A server process; with `engine`, a node of the cluster on that Redis.
    fn start(engine: Option<&str>) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(server_bin())
            // Every churning client comes from 127.0.0.1: no per-address limits (ADDR-1).
            .args(["--listen", &addr.to_string(), "--threads", "2"])
            .args([
                "--max-per-address",
                "0",
                "--max-handshakes-per-address",
                "0",
                "--flood-per-address",
                "0",
            ])
            .args(engine.map_or(Vec::new(), |url| vec!["--engine", url, "--lease", "2"]))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chat-server");
        let end = Instant::now() + STEP;
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < end, "server did not start");
            thread::sleep(Duration::from_millis(20));
        }
        Server { child, addr }
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection with a thread that records every line it receives, in order.
struct Client {
    stream: TcpStream,
    lines: Arc<Mutex<Vec<String>>>,
    eof: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Client {
    fn connect(addr: SocketAddr, nick: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        let mut rd = stream.try_clone().unwrap();
        let (l, e) = (lines.clone(), eof.clone());
        let reader = thread::spawn(move || {
            let mut reader = ServerReader::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = match rd.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut got = Vec::new();
                reader.push(&buf[..n], |ev| {
                    got.push(match ev {
                        Incoming::Message(m) => m.to_string(),
                        Incoming::Tagged(_, m) => format!("?? tagged {m}"),
                        Incoming::UnknownError { code, .. } => format!("?? unknown code {code}"),
                        Incoming::Unrecognised(s) => format!("?? unrecognised {s:?}"),
                        Incoming::TooLong => "?? too long".into(),
                        Incoming::Invalid => "?? invalid".into(),
                    })
                });
                l.lock().unwrap().extend(got);
            }
            e.store(true, Ordering::SeqCst);
        });
        let mut c = Client {
            stream,
            lines,
            eof,
            reader: Some(reader),
        };
        c.wait_line("NICK");
        c.send(nick);
        c.wait_line("Connected to the server");
        c
    }

    fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        // A write can fail only if the server cut us off, which the checks then catch.
        let _ = self.stream.write_all(&bytes);
    }

    fn wait_line(&self, want: &str) {
        let end = Instant::now() + STEP;
        loop {
            if self.lines.lock().unwrap().iter().any(|l| l == want) {
                return;
            }
            assert!(
                !self.eof.load(Ordering::SeqCst),
                "connection closed while waiting for {want:?}"
            );
            assert!(Instant::now() < end, "timed out waiting for {want:?}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// `/quit`, then read until the server closes (CMD-QUIT-1).
    fn quit(mut self) -> Vec<String> {
        self.send("/quit");
        let end = Instant::now() + STEP;
        while !self.eof.load(Ordering::SeqCst) {
            assert!(Instant::now() < end, "server did not close after /quit");
            thread::sleep(Duration::from_millis(2));
        }
        self.finish()
    }

    /// Closes with a TCP reset (SO_LINGER 0), without reading further.
    fn reset(self) -> Vec<String> {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        let _ = self.stream.shutdown(Shutdown::Both);
        self.finish()
    }

    fn finish(mut self) -> Vec<String> {
        drop(self.stream.try_clone().map(|s| s.shutdown(Shutdown::Both)));
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

/// What one client did and saw, for the checker.
#[derive(Debug)]
struct Life {
    first_nick: String,
    last_nick: String,
    /// Every nickname it held, in order.
    nicks: Vec<String>,
    /// Chat texts it sent (each unique in the whole run).
    chats: Vec<String>,
    /// Private texts it sent (each unique).
    whispers: Vec<String>,
    renames: usize,
    abrupt: bool,
    lines: Vec<String>,
}

fn worker(
    t: usize,
    addr: SocketAddr,
    deadline: Instant,
    online: Arc<Mutex<Vec<String>>>,
    seed: u64,
) -> Vec<Life> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut lives = Vec::new();
    let mut generation = 0;
    while Instant::now() < deadline {
        let first = format!("w{t}g{generation}");
        let mut nick = first.clone();
        let mut c = Client::connect(addr, &nick);
        online.lock().unwrap().push(nick.clone());
        let mut life = Life {
            first_nick: first.clone(),
            last_nick: String::new(),
            nicks: vec![first.clone()],
            chats: Vec::new(),
            whispers: Vec::new(),
            renames: 0,
            abrupt: false,
            lines: Vec::new(),
        };
        for seq in 0..rng.usize(1..25) {
            match rng.u32(0..100) {
                0..=59 => {
                    let text = format!("m{t}.{generation}.{seq} {}", "x".repeat(rng.usize(0..60)));
                    c.send(&text);
                    life.chats.push(text);
                }
                60..=79 => {
                    let to = {
                        let on = online.lock().unwrap();
                        on[rng.usize(0..on.len())].clone()
                    };
                    let text = format!("p{t}.{generation}.{seq}");
                    c.send(&format!("/msg {to} {text}"));
                    life.whispers.push(text);
                }
                80..=89 => {
                    let new = format!("{first}r{seq}");
                    c.send(&format!("/nick {new}"));
                    c.wait_line(&format!("{nick} is now known as {new}"));
                    let mut on = online.lock().unwrap();
                    on.retain(|n| *n != nick);
                    on.push(new.clone());
                    life.nicks.push(new.clone());
                    nick = new;
                    life.renames += 1;
                }
                _ => c.send("/who"),
            }
            if rng.u32(0..4) == 0 {
                thread::sleep(Duration::from_millis(rng.u64(0..4)));
            }
        }
        online.lock().unwrap().retain(|n| *n != nick);
        life.last_nick = nick;
        life.abrupt = rng.u32(0..100) < 15;
        life.lines = if life.abrupt { c.reset() } else { c.quit() };
        lives.push(life);
        generation += 1;
    }
    lives
}

fn is_broadcast(line: &str) -> bool {
    !(line.starts_with("ERR ") || line.starts_with("Users online: ") || line.contains(" -> "))
}

#[test]
fn soak_churning_clients_see_every_event_once_in_order() {
    soak(&[Server::start(None)]);
}

/// The same against three nodes of a cluster (spec §20, CLUSTER-1): the workers are
/// spread over the nodes, the observer is on the first, and the checker proves one
/// order for everyone. Skipped, saying so, without redis-server.
///
/// Once ignored as a known failure (a `/msg` racing a rename was rarely lost, 1 run in 11,
/// not reproduced since). Since the engine runs on async tasks, 72 runs of 72 passed, 55
/// of them after it found its own joiners by their stream entry rather than by following
/// pending renames (seeds 1001-1005, 2001-2012, 3001-3025, 5007-5210 by 7; 2026-12-02, on
/// the shared 2-core machine under other builds), so it runs in CI again: about 4 s.
#[test]
fn soak_cluster_of_three_nodes_one_order() {
    let Ok(port) = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) else {
        return;
    };
    let port = port.port().to_string();
    let Ok(redis) = Command::new("redis-server")
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let redis = Server {
        child: redis,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    let end = Instant::now() + STEP;
    while TcpStream::connect(redis.addr).is_err() {
        assert!(Instant::now() < end, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://{}", redis.addr);
    let nodes: Vec<Server> = (0..3).map(|_| Server::start(Some(&url))).collect();
    soak(&nodes);
}

/// Churns clients over `servers` (round-robin by worker) and checks the transcripts.
fn soak(servers: &[Server]) {
    let server = &servers[0];
    let mut observer = Client::connect(server.addr, "observer");
    thread::sleep(Duration::from_millis(200));
    let (fds_before, rss_before) = (server.fds(), server.rss_kib());

    let secs = soak_secs();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let online = Arc::new(Mutex::new(vec!["observer".to_string()]));
    let seed = std::env::var("CHAT_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261124u64);
    eprintln!("soak: {secs} s, {WORKERS} workers, seed {seed}");
    let workers: Vec<_> = (0..WORKERS)
        .map(|t| {
            let online = online.clone();
            let addr = servers[t % servers.len()].addr;
            thread::spawn(move || worker(t, addr, deadline, online, seed.wrapping_add(t as u64)))
        })
        .collect();
    let lives: Vec<Life> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker panicked"))
        .collect();
    let churn_time = started.elapsed();

    // The observer has seen everyone leave (CONN-2), so every event has been delivered.
    let leaves: Vec<String> = lives
        .iter()
        .map(|l| format!("{} has left the chat", l.last_nick))
        .collect();
    let end = Instant::now() + STEP;
    loop {
        let guard = observer.lines.lock().unwrap();
        let seen: std::collections::HashSet<&str> = guard.iter().map(String::as_str).collect();
        if leaves.iter().all(|l| seen.contains(l.as_str())) {
            break;
        }
        drop(seen);
        drop(guard);
        assert!(Instant::now() < end, "observer never saw every leave");
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(300));
    let (fds_after, rss_after) = (server.fds(), server.rss_kib());
    observer.send("/who");
    observer.wait_line("Users online: observer");
    let obs: Vec<String> = observer.lines.lock().unwrap().clone();
    let obs: Vec<&str> = obs
        .iter()
        .map(String::as_str)
        .skip_while(|l| *l != "Connected to the server")
        .skip(1)
        .filter(|l| is_broadcast(l))
        .collect();
    let position: HashMap<&str, usize> = obs.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut relayed: HashMap<&str, usize> = HashMap::new();
    for l in &obs {
        *count.entry(l).or_default() += 1;
        if let Some((_, text)) = l.split_once(": ") {
            *relayed.entry(text).or_default() += 1;
        }
    }

    let mut checked_lines = 0usize;
    for life in &lives {
        let join = format!("{} has joined the chat", life.first_nick);
        let leave = format!("{} has left the chat", life.last_nick);
        assert_eq!(count.get(join.as_str()), Some(&1), "{join:?} exactly once");
        assert_eq!(
            count.get(leave.as_str()),
            Some(&1),
            "{leave:?} exactly once (CONN-2)"
        );
        let (j, l) = (position[join.as_str()], position[leave.as_str()]);
        assert!(j < l);
        let window = &obs[j + 1..l];
        let seen: Vec<&str> = life
            .lines
            .iter()
            .map(String::as_str)
            .skip_while(|l| *l != "Connected to the server")
            .skip(1)
            .filter(|l| is_broadcast(l))
            .collect();
        for l in &life.lines {
            assert!(!l.starts_with("??"), "{}: server sent {l}", life.first_nick);
        }
        if life.abrupt {
            assert!(
                window.starts_with(&seen),
                "{}: what it read before the reset is not a prefix of its window",
                life.first_nick
            );
        } else {
            if seen != window {
                let at = seen
                    .iter()
                    .zip(window)
                    .position(|(a, b)| a != b)
                    .unwrap_or(seen.len().min(window.len()));
                panic!(
                    "{}: saw {} broadcast lines, its window holds {}; first difference at {at}: {:?} vs {:?} (SRV-4)",
                    life.first_nick,
                    seen.len(),
                    window.len(),
                    seen.get(at),
                    window.get(at)
                );
            }
            // Everything it said was relayed exactly once (CHAT-1).
            for text in &life.chats {
                let n = relayed.get(text.as_str()).copied().unwrap_or(0);
                assert_eq!(n, 1, "{text:?} relayed {n} times");
            }
        }
        checked_lines += seen.len();
    }

    // Private messages: each one the server accepted (the sender got its copy) reached
    // its recipient exactly once, unless the recipient reset its connection (CMD-MSG-1).
    let owner: HashMap<&str, &Life> = lives
        .iter()
        .flat_map(|l| l.nicks.iter().map(move |n| (n.as_str(), l)))
        .collect();
    let mut whispers = 0;
    for life in &lives {
        for text in &life.whispers {
            let Some(echo) = life
                .lines
                .iter()
                .find(|l| l.contains(" -> ") && l.ends_with(&format!(": {text}")))
            else {
                continue; // refused (no-such-nick) or not read before a reset
            };
            whispers += 1;
            let to = echo
                .split(" -> ")
                .nth(1)
                .and_then(|r| r.split(": ").next())
                .unwrap_or_default();
            if to == "observer" {
                continue;
            }
            let Some(rcpt) = owner.get(to) else {
                panic!("unknown recipient {to}")
            };
            let n = rcpt.lines.iter().filter(|l| *l == echo).count();
            if std::ptr::eq(*rcpt, life) {
                assert_eq!(n, 1, "a /msg to oneself arrives once (CMD-MSG-4)");
            } else if !rcpt.abrupt {
                assert_eq!(n, 1, "{echo:?} reached {to} {n} times");
            }
        }
    }

    let renames: usize = lives.iter().map(|l| l.renames).sum();
    let resets = lives.iter().filter(|l| l.abrupt).count();
    let chats: usize = lives.iter().map(|l| l.chats.len()).sum();
    eprintln!(
        "soak: {} client lives in {:.1} s ({} resets), {chats} chat lines, {whispers} whispers, {renames} renames; \
         {checked_lines} deliveries checked; observer saw {} events",
        lives.len(),
        churn_time.as_secs_f64(),
        resets,
        obs.len()
    );
    eprintln!(
        "soak: server descriptors {fds_before} -> {fds_after}, RSS {:.1} -> {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    assert!(
        lives.len() >= WORKERS,
        "every worker ran at least one client"
    );
    assert_eq!(
        fds_after, fds_before,
        "descriptors return to their baseline"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "server memory grew by more than 32 MiB"
    );
}
