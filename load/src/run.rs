//! One load run: connect and join every client, then let the senders go and the
//! receivers check every line until all messages arrived or the deadline passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chat_proto::Frame;
use chat_proto::Framer;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use smol::Timer;

use crate::dialect::{Delivered, Dialect};
use crate::payload::{self, Payload};
use crate::stats::{Report, Tally};
use crate::stream::Stream;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    /// More servers of one cluster (issue 15): clients are spread round-robin over
    /// `target` and these (receiver `i` and sender `i` each on server `i mod n`).
    pub other_targets: Vec<SocketAddr>,
    pub dialect: Dialect,
    /// Receiving clients (senders come on top of these).
    pub clients: usize,
    pub senders: usize,
    pub messages_per_sender: u64,
    /// Bytes of each message's text.
    pub size: usize,
    /// Messages per second over all senders; `None` sends as fast as possible.
    pub rate: Option<f64>,
    /// Deadline for the whole run, handshakes included.
    pub timeout: Duration,
    /// How many clients may be in the handshake at once.
    pub connect_parallelism: usize,
    /// Prefix of every nickname, so runs against a shared server do not collide.
    pub nick_prefix: String,
    /// Once every sender has sent everything, a receiver that gets nothing for this long
    /// stops waiting: what has not come by then is lost.
    pub settle: Duration,
    /// Unpaced senders gather messages until this many bytes before writing; 0 writes
    /// each message on its own, as a chat client does (a person sends one line at a time).
    pub write_batch: usize,
    /// The server's process id, when it runs on this machine: its CPU time and write
    /// calls over the send window are then reported per delivery.
    pub server_pid: Option<u32>,
    /// More processes (the cluster's other nodes, its Redis) whose CPU time over the
    /// send window is reported beside the server's.
    pub other_pids: Vec<u32>,
    /// Connect with TLS (`--tls`), with this client configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The clock payloads carry: nanoseconds since the run started.
struct Clock(Instant);

impl Clock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

struct Joined {
    stream: Stream,
    leftover: Vec<u8>,
}

impl Plan {
    /// Every server the clients connect to.
    fn all_targets(&self) -> Vec<SocketAddr> {
        std::iter::once(self.target)
            .chain(self.other_targets.iter().copied())
            .collect()
    }

    /// The server client `i` (of the receivers, or of the senders) connects to.
    fn target_for(&self, i: usize) -> SocketAddr {
        match i % (1 + self.other_targets.len()) {
            0 => self.target,
            k => self
                .other_targets
                .get(k - 1)
                .copied()
                .unwrap_or(self.target),
        }
    }
}

async fn connect(plan: &Plan, at: SocketAddr, nick: String, deadline: Instant) -> Result<Joined> {
    let mut stream = Stream::connect(at, plan.tls.as_ref()).await?;
    let leftover = plan.dialect.join(&mut stream, &nick, deadline).await?;
    Ok(Joined { stream, leftover })
}

/// Connects `names` with at most `parallelism` handshakes under way.
async fn connect_all(
    ex: &smol::Executor<'static>,
    plan: &Arc<Plan>,
    names: Vec<String>,
    deadline: Instant,
) -> Result<Vec<Joined>> {
    let mut out = Vec::with_capacity(names.len());
    let per_chunk = plan.connect_parallelism.max(1);
    for (c, chunk) in names.chunks(per_chunk).enumerate() {
        let tasks: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let plan = plan.clone();
                let n = n.clone();
                let at = plan.target_for(c * per_chunk + i);
                ex.spawn(async move { connect(&plan, at, n, deadline).await })
            })
            .collect();
        for t in tasks {
            out.push(t.await?);
        }
    }
    Ok(out)
}

/// How often an idle receiver wakes up to check the settle time and the deadline.
const TICK: Duration = Duration::from_millis(100);

/// How one receiver ended.
struct Received {
    tally: Tally,
    /// When its last message arrived.
    last_at: Option<Instant>,
    /// It stopped at the run's deadline rather than by completing or settling.
    hit_deadline: bool,
}

/// Reads one receiver's stream until every expected message arrived, or the senders are
/// done and nothing came for `settle`, or the deadline passed.
async fn receive(
    plan: Arc<Plan>,
    clock: Arc<Clock>,
    mut joined: Joined,
    sender_nicks: Arc<Vec<String>>,
    deadline: Instant,
    senders_done: Arc<AtomicUsize>,
) -> Received {
    let expected = plan.messages_per_sender * plan.senders as u64;
    let mut tally = Tally::new(plan.senders, plan.messages_per_sender);
    let mut framer = Framer::with_limit(plan.dialect.line_limit());
    // What the handshake read past its end comes first; then reads reuse this buffer.
    let leftover = std::mem::take(&mut joined.leftover);
    let mut buf = vec![0u8; (64 * 1024).max(leftover.len())];
    let mut filled = leftover.len();
    if let Some(head) = buf.get_mut(..filled) {
        head.copy_from_slice(&leftover);
    }
    let mut tick = Timer::after(TICK);
    let mut last_at = None;
    let mut hit_deadline = false;
    let mut quiet_since = Instant::now();
    let mut answers: Vec<u8> = Vec::new();
    loop {
        let before = tally.unique;
        // One clock reading per chunk: its lines arrived together.
        let received_ns = clock.now_ns();
        let mut input: &[u8] = buf.get(..filled).unwrap_or_default();
        loop {
            let (used, frame) = framer.advance(input);
            input = input.get(used..).unwrap_or_default();
            let Some(frame) = frame else { break };
            let line = match frame {
                Frame::Line(l) => l.as_bytes(),
                _ => {
                    tally.corrupt += 1;
                    continue;
                }
            };
            match plan.dialect.delivered(line) {
                Delivered::Other => {
                    if let Some(a) = plan.dialect.answer(line) {
                        answers.extend_from_slice(&a);
                    }
                }
                Delivered::Malformed => tally.corrupt += 1,
                Delivered::Payload { from, payload } => match payload::decode(payload) {
                    Err(_) => tally.corrupt += 1,
                    Ok(Payload {
                        sender,
                        seq,
                        sent_ns,
                    }) => {
                        let right = sender_nicks
                            .get(sender as usize)
                            .is_some_and(|n| n.as_bytes() == from);
                        if !right {
                            tally.wrong_sender += 1;
                        }
                        let latency = Duration::from_nanos(received_ns.saturating_sub(sent_ns));
                        tally.record(sender, seq, latency);
                    }
                },
            }
        }
        if !answers.is_empty() {
            let _ = joined.stream.write_all(&answers).await;
            answers.clear();
        }
        let now = Instant::now();
        if tally.unique > before {
            last_at = Some(now);
            quiet_since = now;
        }
        if tally.unique >= expected {
            break;
        }
        if now >= deadline {
            hit_deadline = true;
            break;
        }
        if senders_done.load(Ordering::Acquire) >= plan.senders
            && now.saturating_duration_since(quiet_since) >= plan.settle
        {
            break;
        }
        let read = async { Some(joined.stream.read(&mut buf).await) };
        let wake = async {
            // Wake up now and then to check the settle and deadline conditions.
            (&mut tick).await;
            None
        };
        match read.or(wake).await {
            Some(Ok(n)) if n > 0 => filled = n,
            Some(_) => break,
            None => {
                filled = 0;
                tick.set_after(TICK);
            }
        }
    }
    Received {
        tally,
        last_at,
        hit_deadline,
    }
}

/// Sends this sender's messages, paced or not, while a companion task drains what the
/// server sends back to it (so a server with bounded queues never cuts it off).
/// One sender's part of the run.
struct SendJob {
    index: u32,
    nick: String,
    joined: Joined,
    /// When message 0 is due (pacing counts from here).
    start: Instant,
}

async fn send(
    plan: Arc<Plan>,
    clock: Arc<Clock>,
    job: SendJob,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> Result<()> {
    let SendJob {
        index,
        nick,
        joined,
        start,
    } = job;
    /// Counts this sender as done however it ends, so receivers never wait on it.
    struct Finished(Arc<AtomicUsize>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Release);
        }
    }
    let finished = Finished(done);
    let Joined { stream, .. } = joined;
    let (mut reader, mut writer) = stream.split();
    let drain = smol::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let mut out = Vec::with_capacity(64 * 1024);
    let mut body = Vec::with_capacity(plan.size + 64);
    let per_sender_rate = plan.rate.map(|r| r / plan.senders.max(1) as f64);
    for seq in 0..plan.messages_per_sender {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(rate) = per_sender_rate {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            Timer::at(due).await;
        }
        body.clear();
        payload::encode(
            &mut body,
            Payload {
                sender: index,
                seq,
                sent_ns: clock.now_ns(),
            },
            plan.size,
        );
        plan.dialect.encode_message(&nick, &body, &mut out)?;
        if per_sender_rate.is_some() || out.len() >= plan.write_batch {
            writer.write_all(&out).await?;
            out.clear();
        }
    }
    if !out.is_empty() {
        writer.write_all(&out).await?;
    }
    writer.flush().await?;
    drop(finished);
    // Keep the connection (and the drain) open until the receivers are done.
    while !stop.load(Ordering::Relaxed) {
        Timer::after(Duration::from_millis(20)).await;
    }
    drop(drain);
    Ok(())
}

/// Checks that `target` is a loopback address, raises the descriptor limit, and runs the
/// future `work` makes on a fresh executor served by `threads` threads, which end with it.
/// (The executor is leaked: a few hundred bytes per run, so tasks may be `'static`.)
fn on_executor<T, F>(
    targets: &[SocketAddr],
    threads: usize,
    work: impl FnOnce(&'static smol::Executor<'static>) -> F,
) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    if let Some(target) = targets.iter().find(|t| !t.ip().is_loopback()) {
        bail!("refusing to load {target}: the load tool only targets loopback addresses");
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let ex: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
    let (stop_tx, stop_rx) = smol::channel::unbounded::<()>();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let stop_rx = stop_rx.clone();
            std::thread::spawn(move || smol::block_on(ex.run(async { stop_rx.recv().await.ok() })))
        })
        .collect();
    let result = smol::block_on(ex.run(work(ex)));
    drop(stop_tx);
    for w in workers {
        let _ = w.join();
    }
    result
}

/// Runs the plan on an executor with `threads` threads.
pub fn run(plan: Plan, threads: usize) -> Result<Report> {
    let targets = plan.all_targets();
    on_executor(&targets, threads, |ex| drive(ex, Arc::new(plan)))
}

async fn drive(ex: &'static smol::Executor<'static>, plan: Arc<Plan>) -> Result<Report> {
    let begun = Instant::now();
    let deadline = begun + plan.timeout;
    let clock = Arc::new(Clock(begun));
    let receiver_nicks: Vec<String> = (0..plan.clients)
        .map(|i| format!("{}r{i}", plan.nick_prefix))
        .collect();
    let sender_nicks: Arc<Vec<String>> = Arc::new(
        (0..plan.senders)
            .map(|i| format!("{}s{i}", plan.nick_prefix))
            .collect(),
    );

    let receivers = connect_all(ex, &plan, receiver_nicks, deadline).await?;
    let senders = connect_all(ex, &plan, sender_nicks.to_vec(), deadline).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let senders_done = Arc::new(AtomicUsize::new(0));
    let receiving: Vec<_> = receivers
        .into_iter()
        .map(|j| {
            ex.spawn(receive(
                plan.clone(),
                clock.clone(),
                j,
                sender_nicks.clone(),
                deadline,
                senders_done.clone(),
            ))
        })
        .collect();
    // Let every receiver drain the join notices of the clients after it.
    Timer::after(Duration::from_millis(50)).await;
    let usage_before = plan.server_pid.and_then(crate::server::Usage::read);
    let others_before: Vec<_> = plan
        .other_pids
        .iter()
        .map(|&p| crate::server::Usage::read(p))
        .collect();
    let start = Instant::now();
    let sending: Vec<_> = senders
        .into_iter()
        .zip(sender_nicks.iter().cloned())
        .enumerate()
        .map(|(i, (joined, nick))| {
            let job = SendJob {
                index: i as u32,
                nick,
                joined,
                start,
            };
            ex.spawn(send(
                plan.clone(),
                clock.clone(),
                job,
                stop.clone(),
                senders_done.clone(),
            ))
        })
        .collect();

    let mut total = Tally::new(plan.senders, plan.messages_per_sender);
    let mut last = start;
    let mut timed_out = false;
    let mut delivered = 0;
    for r in receiving {
        let Received {
            tally: t,
            last_at,
            hit_deadline,
        } = r.await;
        if let Some(at) = last_at {
            last = last.max(at);
        }
        timed_out |= hit_deadline;
        delivered += t.unique;
        total.duplicates += t.duplicates;
        total.reordered += t.reordered;
        total.corrupt += t.corrupt;
        total.wrong_sender += t.wrong_sender;
        let _ = total.latency_us.add(&t.latency_us);
    }
    // The send window ends with the last delivery: receivers stop as soon as they have
    // everything (only a lossy run waits out the settle time).
    let usage_after = plan.server_pid.and_then(crate::server::Usage::read);
    let server = match (usage_before, usage_after) {
        (Some(a), Some(b)) => Some(a.until(&b)),
        _ => None,
    };
    let others = plan
        .other_pids
        .iter()
        .zip(others_before)
        .filter_map(|(&pid, before)| {
            let after = crate::server::Usage::read(pid)?;
            Some((pid, before?.until(&after)))
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let mut send_errors = Vec::new();
    for s in sending {
        if let Err(e) = s.await {
            send_errors.push(e);
        }
    }
    if let Some(e) = send_errors.into_iter().next() {
        eprintln!("chat-load: a sender failed: {e:#}");
    }
    let h = &total.latency_us;
    Ok(Report {
        dialect: match plan.dialect {
            Dialect::Spec => "spec",
            Dialect::Seed => "seed",
            Dialect::Irc => "irc",
        },
        clients: plan.clients,
        senders: plan.senders,
        messages_per_sender: plan.messages_per_sender,
        size: plan.size,
        rate: plan.rate,
        expected: plan.messages_per_sender * plan.senders as u64 * plan.clients as u64,
        delivered,
        duplicates: total.duplicates,
        reordered: total.reordered,
        corrupt: total.corrupt,
        wrong_sender: total.wrong_sender,
        elapsed: last.saturating_duration_since(start),
        timed_out,
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        server,
        others,
    })
}

/// Idle mode: `plan.clients` clients join and stay silent. Once all have joined, one more
/// client (the probe) joins, and every idle client reads until it has seen the probe's
/// join notice, so every notice the joins caused has been delivered and read. Then it
/// prints `READY <n>` and holds the connections for `hold`, for a script to measure the
/// server's memory. Returns how many clients were held.
pub fn run_idle(plan: Plan, threads: usize, hold: Duration) -> Result<usize> {
    let targets = plan.all_targets();
    on_executor(&targets, threads, |ex| drive_idle(ex, Arc::new(plan), hold))
}

async fn drive_idle(
    ex: &'static smol::Executor<'static>,
    plan: Arc<Plan>,
    hold: Duration,
) -> Result<usize> {
    if plan.dialect != Dialect::Spec {
        bail!("idle mode speaks the spec dialect only");
    }
    let deadline = Instant::now() + plan.timeout;
    let names: Vec<String> = (0..plan.clients)
        .map(|i| format!("{}i{i}", plan.nick_prefix))
        .collect();
    let clients = connect_all(ex, &plan, names, deadline).await?;
    let probe_nick = format!("{}probe", plan.nick_prefix);
    let probe = connect(&plan, plan.target, probe_nick.clone(), deadline).await?;
    let Ok(probe_name) = chat_proto::Nickname::new(&probe_nick) else {
        bail!("bad probe nickname")
    };
    let wanted = chat_proto::ServerMessage::Joined(probe_name).to_string();
    let draining: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let wanted = wanted.clone();
            ex.spawn(async move {
                let mut framer = Framer::with_limit(chat_proto::limits::MAX_SERVER_LINE_BYTES);
                let mut buf = vec![0u8; 4096];
                let mut pending = std::mem::take(&mut c.leftover);
                let mut seen = false;
                loop {
                    framer.push(&pending, |f| {
                        if f == Frame::Line(&wanted) {
                            seen = true;
                        }
                    });
                    if seen {
                        return Ok(c);
                    }
                    let read = async { Some(c.stream.read(&mut buf).await) };
                    let expire = async {
                        Timer::at(deadline).await;
                        None
                    };
                    match read.or(expire).await {
                        Some(Ok(n)) if n > 0 => pending = buf.get(..n).unwrap_or_default().to_vec(),
                        Some(_) => bail!("server closed an idle client"),
                        None => bail!("timed out draining join notices"),
                    }
                }
            })
        })
        .collect();
    let mut held = Vec::with_capacity(draining.len());
    for d in draining {
        held.push(d.await?);
    }
    println!("READY {}", held.len());
    Timer::after(hold).await;
    drop(probe);
    Ok(held.len())
}
