//! The Redis engine (spec §20, issue 15): several servers, one chat. Each test starts its
//! own `redis-server` on a free loopback port (no persistence) and stops it; the tests
//! are skipped, saying so, only when `redis-server` is not installed (CI installs it).

#![cfg(test)]

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_proto::{ErrorCode, EventId, ServerMessage};
use chat_server::ServerHandle;
use chat_server::cluster::EngineConfig;
use common::{Client, Got, WAIT};

/// A private redis-server, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one, or returns `None` (after saying why) when redis-server is missing.
    fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        Some(Redis::on(free_port(), None))
    }

    /// A redis-server on `port`; with `aof`, writing its append-only file (fsync at
    /// every write) in that directory.
    fn on(port: u16, aof: Option<&std::path::Path>) -> Redis {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match aof {
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => cmd.args(["--appendonly", "no", "--dir", "/tmp"]),
        };
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis { child, port };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A node in this process.
fn node(redis: &Redis) -> ServerHandle {
    common::start(|c| {
        c.engine = Some(EngineConfig {
            lease: Duration::from_secs(1),
            ..EngineConfig::new(&redis.url())
        });
    })
}

/// Lines until `done` says stop (or the wait runs out: a failure).
fn read_until(c: &mut Client, mut done: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT * 2;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next(left) {
            Got::Line(l) => {
                let stop = done(&l);
                out.push(l);
                if stop {
                    return out;
                }
            }
            other => panic!("{}: {other:?} after {out:?}", c.nick),
        }
    }
}

/// CLUSTER-1, SRV-4 across the cluster: clients spread over three nodes all see the same lines in
/// the same order, each sender's lines in the order sent.
#[test]
fn cluster_1_one_order_across_three_nodes() {
    let Some(redis) = Redis::start() else { return };
    let nodes: Vec<ServerHandle> = (0..3).map(|_| node(&redis)).collect();
    let names = ["ann", "bob", "cat", "dan", "eve", "fay"];
    let mut clients: Vec<Client> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Client::join(nodes[i % 3].local_addr(), n))
        .collect();
    // Everyone waits until the last join has reached them (fay read her own).
    for c in &mut clients[..names.len() - 1] {
        read_until(c, |l| l == "fay has joined the chat");
    }
    const LINES: usize = 30;
    for i in 0..LINES {
        for c in &mut clients {
            let line = format!("{} {i}", c.nick);
            c.say(&line);
        }
    }
    let total = LINES * names.len();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for c in &mut clients {
        let mut n = 0;
        let lines = read_until(c, |l| {
            n += usize::from(l.contains(": "));
            n == total
        });
        let chat: Vec<String> = lines.into_iter().filter(|l| l.contains(": ")).collect();
        for name in names {
            let mine: Vec<&String> = chat.iter().filter(|l| l.starts_with(name)).collect();
            let want: Vec<String> = (0..LINES).map(|i| format!("{name}: {name} {i}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>(), "FIFO per sender");
        }
        seen.push(chat);
    }
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s, &seen[0], "client {} saw another order", names[i]);
    }
    drop(clients);
    drop(nodes);
}

/// CLUSTER-2, CLUSTER-3: nicknames are unique across nodes, in any case; `/nick`, `/msg` and `/who` work
/// across nodes.
#[test]
fn cluster_2_nicknames_unique_and_commands_across_nodes() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (node(&redis), node(&redis));
    let mut alice = Client::join(a.local_addr(), "alice");
    let mut other = Client::connect(b.local_addr());
    other.expect("NICK");
    other.send_nick("ALICE");
    other.expect_err(ErrorCode::NickTaken);
    other.expect("NICK");
    other.send_nick("bob");
    other.expect("bob has joined the chat");
    other.expect("Connected to the server");
    alice.expect("bob has joined the chat");
    let mut bob = other;
    bob.nick = "bob".into();

    alice.say("/nick Bob");
    alice.expect_err(ErrorCode::NickTaken);
    alice.say("/msg BOB psst");
    alice.expect("alice -> bob: psst");
    bob.expect("alice -> bob: psst");
    bob.say("/who");
    bob.expect("Users online: alice, bob");
    alice.say("/nick carol");
    alice.expect("alice is now known as carol");
    bob.expect("alice is now known as carol");
    // The old name is free again, on any node; the new one is taken everywhere.
    let _alice2 = Client::join(b.local_addr(), "Alice");
    let mut third = Client::connect(a.local_addr());
    third.expect("NICK");
    third.send_nick("CAROL");
    third.expect_err(ErrorCode::NickTaken);
    bob.expect("Alice has joined the chat");
    bob.say("/msg nobody hi");
    bob.expect_err(ErrorCode::NoSuchNick);
}

/// CLUSTER-4: a node killed with SIGKILL: once its lease expires, every survivor sees each of its
/// users leave exactly once, in the same order, and their names are free again.
#[test]
fn cluster_3_killed_node_users_leave_once() {
    let Some(redis) = Redis::start() else { return };
    let survivors = [node(&redis), node(&redis)];
    let port = free_port();
    let mut victim = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--engine", &redis.url(), "--lease", "1", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the victim node");
    let victim_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    let mut doomed = Vec::new();
    while doomed.is_empty() {
        if TcpStream::connect(victim_addr).is_ok() {
            doomed = ["v1", "v2", "v3"]
                .iter()
                .map(|n| Client::join(victim_addr, n))
                .collect();
        } else {
            assert!(Instant::now() < deadline, "the victim node did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut watchers: Vec<Client> = survivors
        .iter()
        .enumerate()
        .map(|(i, s)| Client::join(s.local_addr(), &format!("w{i}")))
        .collect();
    read_until(&mut watchers[0], |l| l == "w1 has joined the chat");
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    let killed = Instant::now();
    // The survivors keep chatting while the dead node's lease runs out.
    const LINES: usize = 10;
    for i in 0..LINES {
        for w in &mut watchers {
            let line = format!("{} {i}", w.nick);
            w.say(&line);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = Vec::new();
    for w in &mut watchers {
        let (mut left, mut chat) = (0, 0);
        let lines = read_until(w, |l| {
            left += usize::from(l.ends_with("has left the chat"));
            chat += usize::from(l.contains(": "));
            left == 3 && chat == 2 * LINES
        });
        let leaves: Vec<&String> = lines
            .iter()
            .filter(|l| l.ends_with("has left the chat"))
            .collect();
        let unique: HashSet<&&String> = leaves.iter().collect();
        assert_eq!(unique.len(), 3, "each leaves once: {leaves:?}");
        w.expect_quiet();
        seen.push(lines);
    }
    // Lease 1 s, renewed and checked every third of it: reaped within 1.4 s plus margin.
    assert!(
        killed.elapsed() < Duration::from_secs(4),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(
        seen[0], seen[1],
        "one order for every survivor, leaves included"
    );
    drop(doomed);
    let _again = Client::join(survivors[0].local_addr(), "V1");
}

/// CLUSTER-6: one event has one id and one time on every node: the stream entry's.
#[test]
fn cluster_6_one_event_one_id_on_every_node() {
    let Some(redis) = Redis::start() else { return };
    let (n1, n2) = (node(&redis), node(&redis));
    let (_alice, _bob, tags) = common::one_event_one_id(n1.local_addr(), n2.local_addr());
    let mut ids = Vec::new();
    for t in &tags {
        let (ms, n) =
            t.id.as_ref()
                .and_then(EventId::memory_parts)
                .expect("an <ms>:<n> id");
        let time = t.time.expect("a time").unix_millis();
        assert_eq!(
            i64::try_from(ms).unwrap(),
            time,
            "t is the stream id's time"
        );
        ids.push((ms, n));
    }
    assert!(ids[0] < ids[1]);
}

/// CLUSTER-5: without Redis a node refuses nicknames with `ERR unavailable`, then,
/// after half its lease, closes its clients with `ERR server-shutdown`.
#[test]
fn cluster_5_losing_redis() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let n = node(&redis);
    let mut a = Client::join(n.local_addr(), "alice");
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let mut late = Client::connect(n.local_addr());
    late.expect("NICK");
    late.send_nick("bob");
    let got = late.line();
    assert!(
        got.starts_with("ERR unavailable ") || got.starts_with("ERR server-shutdown "),
        "{got}"
    );
    let closed = a.skip_until("ERR server-shutdown Server is shutting down");
    assert!(closed.iter().all(|l| !l.contains("has left")), "{closed:?}");
    a.expect_closed();
}

/// CLUSTER-3, CONN-9, CMD-QUIT-1 on a node: a leaving client gets its own events (still on their
/// way through Redis when it leaves), never its own leave notice.
#[test]
fn cluster_4_a_leaver_gets_its_own_lines_not_its_leave() {
    let Some(redis) = Redis::start() else { return };
    let (n1, n2) = (node(&redis), node(&redis));
    let mut watcher = Client::join(n1.local_addr(), "watcher");
    for i in 0..20 {
        let name = format!("q{i}");
        let mut q = Client::join(n2.local_addr(), &name);
        q.send_raw(b"one\n/quit\n");
        q.expect(&format!("{name}: one"));
        q.expect_closed();
        watcher.expect(&format!("{name} has joined the chat"));
        watcher.expect(&format!("{name}: one"));
        watcher.expect(&format!("{name} has left the chat"));
    }
}

/// A line as received: its tags and the message.
fn tagged(line: &str) -> (chat_proto::Tags, ServerMessage) {
    ServerMessage::parse_tagged(line).unwrap_or_else(|_| panic!("not a server line: {line}"))
}

/// Joins with tags and `history`, or with tags and `/resume <id>`: the lines up to and
/// including the block's footer.
fn join_tagged(addr: SocketAddr, nick: &str, resume: Option<&str>) -> (Client, Vec<String>) {
    let mut c = Client::connect(addr);
    c.nick = nick.to_owned();
    let hello = match resume {
        Some(id) => format!("/caps tags\n/resume {id}\n{nick}\n"),
        None => format!("/caps tags history\n{nick}\n"),
    };
    c.send_raw(hello.as_bytes());
    let lines = read_until(&mut c, |l| tagged(l).1 == ServerMessage::HistoryEnd);
    (c, lines)
}

/// `(id, event)` of the public events among `lines`, live or earlier.
fn events(lines: &[String]) -> Vec<(String, String)> {
    pick(lines, |_| true)
}

/// `(id, event)` of the earlier events (a block's) among `lines`.
/// Whether the lines hold an `ERR history-gap` (RESUME-3).
fn has_gap(lines: &[String]) -> bool {
    lines.iter().any(|l| {
        matches!(
            tagged(l).1,
            ServerMessage::Error {
                code: ErrorCode::HistoryGap,
                ..
            }
        )
    })
}

fn earlier(lines: &[String]) -> Vec<(String, String)> {
    pick(lines, chat_proto::Tags::is_earlier)
}

fn pick(lines: &[String], keep: impl Fn(&chat_proto::Tags) -> bool) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| tagged(l))
        .filter(|(t, m)| m.is_public_event() && keep(t))
        .map(|(t, m)| {
            (
                t.id.map(|i| i.as_str().to_owned()).unwrap_or_default(),
                m.to_string(),
            )
        })
        .collect()
}

/// CLUSTER-7, RESUME-2 across nodes: a client of one node that drops and resumes on
/// another gets exactly the events it missed, with the ids the others saw, and no gap;
/// nodes started after every earlier one stopped still serve the backlog and resumes
/// from the stream (history survives node restarts).
#[test]
fn cluster_7_resume_on_another_node_and_history_from_the_stream() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (node(&redis), node(&redis));
    let (mut stay, _) = join_tagged(b.local_addr(), "stay", None);
    let (mut ann, _) = join_tagged(a.local_addr(), "ann", None);
    ann.say("before");
    let seen = read_until(&mut ann, |l| tagged(l).1.to_string() == "ann: before");
    let last_id = events(&seen).last().expect("ann's line").0.clone();
    ann.reset();
    read_until(&mut stay, |l| {
        tagged(l).1.to_string() == "ann has left the chat"
    });
    for i in 0..5 {
        stay.say(&format!("s{i}"));
    }
    read_until(&mut stay, |l| tagged(l).1.to_string() == "stay: s4");
    let (_ann, lines) = join_tagged(b.local_addr(), "ann", Some(&last_id));
    let resumed = earlier(&lines);
    let gap = has_gap(&lines);
    assert!(!gap, "no gap: {lines:?}");
    let missed: Vec<String> = resumed.iter().map(|(_, m)| m.clone()).collect();
    let want: Vec<String> = std::iter::once("ann has left the chat".to_owned())
        .chain((0..5).map(|i| format!("stay: s{i}")))
        .collect();
    assert_eq!(missed, want, "exactly what ann missed, in order");

    // Every node stops; fresh ones read the history back from the stream.
    let ids: Vec<String> = resumed.iter().map(|(id, _)| id.clone()).collect();
    drop((stay, _ann));
    drop((a, b));
    let c = node(&redis);
    let (_x, lines) = join_tagged(c.local_addr(), "xavier", None);
    let backlog: Vec<String> = events(&lines).into_iter().map(|(_, m)| m).collect();
    assert!(
        backlog.iter().any(|m| m == "stay: s4"),
        "the backlog reaches back before this node started: {backlog:?}"
    );
    let (_y, lines) = join_tagged(c.local_addr(), "yves", Some(&last_id));
    let again = earlier(&lines);
    assert!(
        !has_gap(&lines),
        "a resume from before the restart: {lines:?}"
    );
    let again_ids: Vec<String> = again.iter().map(|(id, _)| id.clone()).collect();
    // Then ann's join (resumed on b), its leave when b stopped, and xavier's join.
    assert_eq!(
        again_ids.get(..ids.len()),
        Some(&ids[..]),
        "the same events under the same ids after the restart: {again:?}"
    );
}

/// CLUSTER-8: moderation per node, notices cluster-wide. An operator of node a kicks a
/// user of node a: a client of node b sees the notice, then the leave; the kicked user
/// gets everything before its leave, then `ERR kicked`, then the close. A user of node
/// b is out of reach (`ERR no-such-nick`).
#[test]
fn cluster_8_moderation_per_node_notices_for_all() {
    const PASSWORD: &str = "s3cret-word";
    let Some(redis) = Redis::start() else { return };
    let moderated = || {
        common::start(|c| {
            c.engine = Some(EngineConfig {
                lease: Duration::from_secs(1),
                ..EngineConfig::new(&redis.url())
            });
            c.op_password = Some(chat_proto::Password::for_server(PASSWORD).unwrap());
            c.per_address = chat_server::config::AddressLimits::off();
        })
    };
    let (a, b) = (moderated(), moderated());
    let mut watcher = Client::join(b.local_addr(), "watcher");
    let mut teacher = Client::join(a.local_addr(), "teacher");
    let mut pupil = Client::join(a.local_addr(), "pupil");
    read_until(&mut watcher, |l| l == "pupil has joined the chat");
    read_until(&mut teacher, |l| l == "pupil has joined the chat");
    teacher.say(&format!("/op {PASSWORD}"));
    for c in [&mut teacher, &mut watcher, &mut pupil] {
        read_until(c, |l| l == "teacher is now an operator");
    }
    teacher.say("/kick watcher");
    teacher.expect_err(ErrorCode::NoSuchNick);
    pupil.say("last words");
    read_until(&mut teacher, |l| l == "pupil: last words");
    teacher.say("/kick pupil spam");
    let want = [
        "pupil: last words",
        "pupil was kicked by teacher (spam)",
        "pupil has left the chat",
    ];
    let got = read_until(&mut teacher, |l| l == "pupil has left the chat");
    assert_eq!(got, want[1..], "teacher");
    let got = read_until(&mut watcher, |l| l == "pupil has left the chat");
    assert_eq!(got, want, "watcher");
    let got = read_until(&mut pupil, |l| l.starts_with("ERR kicked"));
    assert_eq!(&got[..2], &want[..2], "the kicked user's last events");
    assert_eq!(got.len(), 3, "then ERR kicked: {got:?}");
    pupil.expect_closed();
    // The name is free again, cluster-wide.
    let _again = Client::join(b.local_addr(), "pupil");
}

/// Two nodes (5 s lease) on a Redis that keeps its append-only file in a fresh folder
/// named after `tag`, with `ann` joined on the first and `bob` on the second (ann has seen
/// bob join): the start of the tests that kill Redis and bring it back on that file.
struct AofPair {
    dir: std::path::PathBuf,
    port: u16,
    redis: Redis,
    a: ServerHandle,
    b: ServerHandle,
    ann: Client,
    bob: Client,
}

impl AofPair {
    fn start(tag: &str) -> AofPair {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("aof dir");
        let port = free_port();
        let redis = Redis::on(port, Some(&dir));
        let node_on = |redis: &Redis| {
            common::start(|c| {
                c.engine = Some(EngineConfig {
                    lease: Duration::from_secs(5),
                    ..EngineConfig::new(&redis.url())
                });
            })
        };
        let (a, b) = (node_on(&redis), node_on(&redis));
        let mut ann = Client::join(a.local_addr(), "ann");
        let bob = Client::join(b.local_addr(), "bob");
        read_until(&mut ann, |l| l == "bob has joined the chat");
        AofPair {
            dir,
            port,
            redis,
            a,
            b,
            ann,
            bob,
        }
    }
}

/// CLUSTER-9: Redis killed (`kill -9`) and restarted on its append-only file within
/// the grace period: the nodes reconnect, every client stays connected under its name,
/// chat goes on in one order with nothing lost, and the history is intact.
#[test]
fn cluster_9_redis_restart_with_aof_loses_nothing() {
    if Redis::start().is_none() {
        return;
    }
    let AofPair {
        dir,
        port,
        mut redis,
        a,
        b,
        mut ann,
        mut bob,
    } = AofPair::start("chat-aof");
    ann.say("before");
    read_until(&mut bob, |l| l == "ann: before");
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    redis = Redis::on(port, Some(&dir));
    // Both names survived: a third user cannot take them.
    let mut cat = Client::connect(b.local_addr());
    cat.expect("NICK");
    cat.send_nick("ann");
    cat.expect_err(ErrorCode::NickTaken);
    cat.expect("NICK");
    cat.send_nick("cat");
    cat.expect("cat has joined the chat");
    for i in 0..3 {
        ann.say(&format!("after {i}"));
        bob.say(&format!("bob {i}"));
    }
    let want = |l: &str| l == "bob: bob 2" || l == "ann: after 2";
    let mut seen = Vec::new();
    for c in [&mut ann, &mut bob, &mut cat] {
        let mut n = 0;
        let got: Vec<String> = read_until(c, |l| {
            n += usize::from(want(l));
            n == 2
        })
        .into_iter()
        .filter(|l| l.starts_with("ann: after") || l.starts_with("bob: bob"))
        .collect();
        assert_eq!(got.len(), 6, "{}: nothing lost: {got:?}", c.nick);
        seen.push(got);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "one order: {seen:?}");
    bob.say("/history 20");
    let block = read_until(&mut bob, |l| l == "End of earlier events");
    assert!(
        block.iter().any(|l| l.ends_with("ann: before")),
        "history from before the restart: {block:?}"
    );
    drop((ann, bob, cat, a, b, redis));
    let _ = std::fs::remove_dir_all(&dir);
}

/// CLUSTER-5 with a leave that Redis missed: a user quits while Redis is down (kill -9)
/// and Redis comes back on its append-only file within the grace period, still holding
/// the name for the user's node. The node proposes the leave again once Redis answers:
/// the others see it once and the name is free again.
#[test]
fn cluster_5_a_leave_missed_while_redis_was_down_is_sent_when_it_returns() {
    if Redis::start().is_none() {
        return;
    }
    let AofPair {
        dir,
        port,
        mut redis,
        a,
        b,
        mut ann,
        mut bob,
    } = AofPair::start("chat-aof-leave");
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    bob.say("/quit");
    bob.expect_closed();
    redis = Redis::on(port, Some(&dir));
    // Bounded: the lease keeper renews every third of the lease (about 1.7 s).
    let deadline = Instant::now() + WAIT * 2;
    let mut again = loop {
        let mut c = Client::connect(a.local_addr());
        c.expect("NICK");
        c.send_nick("bob");
        let got = c.line();
        if got == "bob has joined the chat" {
            break c;
        }
        assert!(
            got.starts_with("ERR nick-taken ") || got.starts_with("ERR unavailable "),
            "{got}"
        );
        assert!(Instant::now() < deadline, "the name stayed held: {got}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let seen = read_until(&mut ann, |l| l == "bob has joined the chat");
    let left = seen
        .iter()
        .filter(|l| *l == "bob has left the chat")
        .count();
    assert_eq!(left, 1, "the leave once, before the new join: {seen:?}");
    again.say("/who");
    let got = read_until(&mut again, |l| l.starts_with("Users online: "));
    assert_eq!(
        got.last().map(String::as_str),
        Some("Users online: ann, bob"),
        "{got:?}"
    );
    drop((ann, again, a, b, redis));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The chaos test (issue 15): 3 nodes, 100 clients spread over them, chatting; one node
/// is killed (`kill -9`). Every surviving client sees each of the dead node's 30 users
/// leave exactly once, and every survivor sees the same lines in the same order, none
/// lost or doubled; then each of the dead node's users reconnects to a surviving node
/// and resumes with no gap (CLUSTER-4, CLUSTER-7, RESUME-2).
#[test]
fn cluster_4_chaos_kill_9_one_node_of_three_with_100_clients() {
    const VICTIMS: usize = 30;
    const SURVIVORS: usize = 70;
    const TALKERS: usize = 10;
    const LINES: usize = 5;
    let Some(redis) = Redis::start() else { return };
    let open_node = || {
        common::start(|c| {
            c.engine = Some(EngineConfig {
                lease: Duration::from_secs(1),
                ..EngineConfig::new(&redis.url())
            });
            c.per_address = chat_server::config::AddressLimits::off();
        })
    };
    let nodes = [open_node(), open_node()];
    let port = free_port();
    let mut victim = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--engine", &redis.url(), "--lease", "1", "--threads", "1"])
        .args([
            "--max-per-address",
            "0",
            "--max-handshakes-per-address",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the victim node");
    let victim_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(victim_addr).is_err() {
        assert!(Instant::now() < deadline, "the victim node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut doomed: Vec<Client> = (0..VICTIMS)
        .map(|i| join_tagged(victim_addr, &format!("v{i}"), None).0)
        .collect();
    let mut survivors: Vec<Client> = (0..SURVIVORS)
        .map(|i| Client::join(nodes[i % 2].local_addr(), &format!("s{i}")))
        .collect();
    // Every join is in the stream before s0's line.
    survivors[0].say("ready");
    let mut last_ids = Vec::new();
    for v in &mut doomed {
        let lines = read_until(v, |l| tagged(l).1.to_string() == "s0: ready");
        last_ids.push(events(&lines).last().expect("ready").0.clone());
    }
    for s in &mut survivors {
        read_until(s, |l| l == "s0: ready");
    }
    victim.kill().expect("SIGKILL");
    let _ = victim.wait();
    for i in 0..LINES {
        for s in &mut survivors[..TALKERS] {
            let line = format!("{} {i}", s.nick);
            s.say(&line);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut seen: Vec<Vec<String>> = Vec::new();
    for s in &mut survivors {
        let (mut left, mut chat) = (0, 0);
        let lines = read_until(s, |l| {
            left += usize::from(l.ends_with("has left the chat"));
            chat += usize::from(l.contains(": "));
            left == VICTIMS && chat == TALKERS * LINES
        });
        let leaves: HashSet<&String> = lines
            .iter()
            .filter(|l| l.ends_with("has left the chat"))
            .collect();
        assert_eq!(leaves.len(), VICTIMS, "{}: each leaves once", s.nick);
        for t in 0..TALKERS {
            let mine: Vec<&String> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("s{t}: ")))
                .collect();
            let want: Vec<String> = (0..LINES).map(|i| format!("s{t}: s{t} {i}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>(), "{}: FIFO", s.nick);
        }
        seen.push(lines);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "one order for every survivor, leaves included"
    );
    // The dead node's users come back on the survivors and miss nothing.
    drop(doomed);
    let mut rejoined: Vec<String> = Vec::new();
    let mut back = Vec::new();
    for (i, id) in last_ids.iter().enumerate() {
        let nick = format!("v{i}");
        let (c, lines) = join_tagged(nodes[i % 2].local_addr(), &nick, Some(id));
        assert!(!has_gap(&lines), "{nick}: no gap");
        let missed: Vec<String> = earlier(&lines)
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| !rejoined.contains(m))
            .collect();
        assert_eq!(missed, seen[0], "{nick}: exactly what it missed, in order");
        rejoined.push(format!("{nick} has joined the chat"));
        back.push(c);
    }
}
