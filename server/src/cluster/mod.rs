//! The Redis engine (`--engine redis://...`, issue 15): several servers, one chat.
//!
//! Shape (after Centrifugo's Redis engine; nothing copied):
//! - **The stream is the sequencer.** A node never appends a public event to its own
//!   log. It *proposes* the event to Redis ([`scripts::PROPOSE`], which checks and
//!   `XADD`s atomically), and one reader thread per node reads the stream back
//!   (`XREAD BLOCK` on its own connection) and applies every entry, in stream order, to
//!   the local hub, which appends it to the local log with the usual appender. Every
//!   client on every node therefore sees one order (SRV-4 cluster-wide), a node's own
//!   events included, and the writers keep their zero-copy read path.
//! - **Nicknames are claimed in Redis.** `{chat}:nicks` maps each folded nickname to the
//!   node that owns it; join and `/nick` claim atomically in the same script that
//!   announces them. A node owns its users through a lease it renews; when the lease
//!   expires, a surviving node's reaper ([`scripts::REAP`]) makes each of its users leave
//!   once and frees the names, in one atomic script, so exactly one node does it.
//! - **Fencing.** A node id is never reused and every script first checks that the
//!   node's lease still exists: a node that comes back after losing its lease cannot act
//!   under it; it shuts its clients down instead.
//! - **Private events go through the stream too.** `/msg` and `/who` are stream entries
//!   (history never returns them) so that they are ordered against public events: the
//!   recipient's node delivers a `/msg`, and the asker's node answers a `/who` from its
//!   copy of the member list at that position in the stream.
//! - **Threads, not a second runtime.** Redis I/O runs on three engine threads with
//!   blocking connections (the reader, the proposer, the lease keeper). Connection tasks
//!   hand proposals to the proposer through a bounded queue; only join and `/nick` wait
//!   for its answer (one Redis round trip, bounded by [`REQUEST_TIMEOUT`]).

pub mod scripts;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_proto::{NickKey, Nickname, Text};
use tracing::{info, warn};

use crate::hub::Hub;

/// The default lease of a node: its users leave this long after it dies.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// The default number of entries the stream keeps (approximately, `MAXLEN ~`).
pub const DEFAULT_STREAM_LEN: usize = 10_000;

/// Longest wait for an answer from Redis to a join or a `/nick`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Proposals queued for the proposer thread before new chat lines are refused.
pub const QUEUE_LEN: usize = 64 * 1024;

/// Proposals sent to Redis in one pipelined round trip at most.
const BATCH: usize = 256;

/// Settings of the Redis engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub url: String,
    /// The node's lease; it is renewed every third of it. Without Redis for half of it,
    /// the node closes its clients (with a margin before another node may reap them).
    pub lease: Duration,
    /// Entries the stream keeps.
    pub stream_len: usize,
}

impl EngineConfig {
    /// Defaults for `url`.
    pub fn new(url: &str) -> EngineConfig {
        EngineConfig {
            url: url.to_owned(),
            lease: DEFAULT_LEASE,
            stream_len: DEFAULT_STREAM_LEN,
        }
    }
}

/// Why the cluster refused or could not take a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The nickname is owned by someone (on any node).
    Taken,
    /// Redis did not answer in time, or this node lost its lease.
    Unavailable,
}

/// One proposal.
#[derive(Debug)]
enum Op {
    Join(Nickname),
    Rename {
        old: Nickname,
        new: Nickname,
    },
    Leave(Nickname),
    Say(Nickname, Text),
    Private {
        from: Nickname,
        to: Nickname,
        text: Text,
    },
    Who(Nickname),
}

struct Request {
    op: Op,
    reply: Option<SyncSender<Result<(), Refused>>>,
}

/// A node of the cluster: the hub's way to Redis. See the module docs.
pub struct Engine {
    config: EngineConfig,
    client: redis::Client,
    node: String,
    queue: SyncSender<Request>,
    queue_rx: Mutex<Option<Receiver<Request>>>,
    /// The member list at this node's position in the stream (folded -> as spelled).
    replica: Mutex<HashMap<NickKey, Nickname>>,
    /// Where the reader starts: the stream's last id when the replica was taken.
    start_id: String,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("url", &self.config.url)
            .field("node", &self.node)
            .finish()
    }
}

fn key(name: &str) -> String {
    format!("{}:{name}", scripts::PREFIX)
}

/// A blocking connection with timeouts, so that no engine thread hangs on a dead Redis.
fn connect(
    client: &redis::Client,
    read_timeout: Duration,
) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(REQUEST_TIMEOUT)?;
    con.set_read_timeout(Some(read_timeout))?;
    con.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    Ok(con)
}

impl Engine {
    /// Connects, registers this node (a fresh id and lease) and takes a snapshot of the
    /// member list at the stream's current end.
    pub fn connect(config: EngineConfig) -> anyhow::Result<Arc<Engine>> {
        let client = redis::Client::open(config.url.as_str())?;
        let mut con = connect(&client, REQUEST_TIMEOUT)?;
        let lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
        let reply: Vec<String> = redis::Script::new(scripts::REGISTER)
            .key(key("stream"))
            .key(key("nicks"))
            .key(key("nodes"))
            .key(key("node-ids"))
            .arg(scripts::PREFIX)
            .arg(lease_ms)
            .invoke(&mut con)?;
        let mut reply = reply.into_iter();
        let (Some(node), Some(start_id)) = (reply.next(), reply.next()) else {
            anyhow::bail!("unexpected reply from Redis when registering the node");
        };
        let replica = reply
            .filter_map(|n| Nickname::new(&n).ok())
            .map(|n| (n.key(), n))
            .collect();
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE_LEN);
        info!(node = %node, url = %config.url, "joined the cluster");
        Ok(Arc::new(Engine {
            config,
            client,
            node,
            queue,
            queue_rx: Mutex::new(Some(rx)),
            replica: Mutex::new(replica),
            start_id,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        }))
    }

    /// This node's id (also its fencing token).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Starts the reader, proposer and lease keeper threads, feeding `hub`.
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) -> std::io::Result<()> {
        let Some(rx) = self
            .queue_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        let (engine, weak) = (self.clone(), Arc::downgrade(hub));
        threads.push(
            std::thread::Builder::new()
                .name("cluster-reader".into())
                .spawn(move || stream::read_loop(&engine, &weak))?,
        );
        let engine = self.clone();
        threads.push(
            std::thread::Builder::new()
                .name("cluster-proposer".into())
                .spawn(move || engine.propose_loop(&rx))?,
        );
        let (engine, weak) = (self.clone(), Arc::downgrade(hub));
        threads.push(
            std::thread::Builder::new()
                .name("cluster-lease".into())
                .spawn(move || engine.lease_loop(&weak))?,
        );
        Ok(())
    }

    /// Leaves the cluster cleanly: gives up the lease and reaps this node's own users
    /// (the others see each leave once), then stops the threads.
    pub fn retire(&self) {
        self.stop.store(true, Ordering::Release);
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
        let lease = key(&format!("lease:{}", self.node));
        let done = connect(&self.client, REQUEST_TIMEOUT).and_then(|mut con| {
            redis::cmd("DEL").arg(&lease).exec(&mut con)?;
            self.reap(&mut con)
        });
        if let Err(e) = done {
            warn!(error = %e, "could not retire from the cluster; the lease will expire");
        }
    }

    fn replica(&self) -> MutexGuard<'_, HashMap<NickKey, Nickname>> {
        self.replica.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The nickname as spelled by its owner, if someone in the cluster has it.
    pub(crate) fn member(&self, key: &NickKey) -> Option<Nickname> {
        self.replica().get(key).cloned()
    }

    /// Claims `nick` for a user of this node and announces the join (waits for Redis).
    pub(crate) fn join(&self, nick: Nickname) -> Result<(), Refused> {
        self.request(Op::Join(nick))
    }

    /// Renames atomically (waits for Redis).
    pub(crate) fn rename(&self, old: Nickname, new: Nickname) -> Result<(), Refused> {
        self.request(Op::Rename { old, new })
    }

    /// Announces a leave (does not wait).
    pub(crate) fn leave(&self, nick: Nickname) {
        self.send(Op::Leave(nick));
    }

    /// A chat line (does not wait). False when the queue to Redis is full.
    pub(crate) fn say(&self, nick: Nickname, text: Text) -> bool {
        self.send(Op::Say(nick, text))
    }

    /// A `/msg` through the stream (does not wait).
    pub(crate) fn private(&self, from: Nickname, to: Nickname, text: Text) -> bool {
        self.send(Op::Private { from, to, text })
    }

    /// A `/who`, answered when the reader reaches it (does not wait).
    pub(crate) fn who(&self, nick: Nickname) -> bool {
        self.send(Op::Who(nick))
    }

    fn send(&self, op: Op) -> bool {
        match self.queue.try_send(Request { op, reply: None }) {
            Ok(()) => true,
            Err(TrySendError::Full(r)) => {
                warn!(op = ?r.op, "the queue to Redis is full; proposal dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn request(&self, op: Op) -> Result<(), Refused> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.queue
            .try_send(Request {
                op,
                reply: Some(tx),
            })
            .map_err(|_| Refused::Unavailable)?;
        rx.recv_timeout(REQUEST_TIMEOUT)
            .unwrap_or(Err(Refused::Unavailable))
    }

    /// The proposer: drains the queue in batches, one pipelined round trip per batch,
    /// in queue order (so one connection's events keep their order).
    fn propose_loop(&self, rx: &Receiver<Request>) {
        let script = redis::Script::new(scripts::PROPOSE);
        let mut con = None;
        let mut batch = Vec::with_capacity(BATCH);
        while !self.stop.load(Ordering::Acquire) {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let outcomes = self.run_batch(&script, &mut con, &batch);
            for (req, outcome) in batch.drain(..).zip(outcomes) {
                if let Some(reply) = req.reply {
                    let _ = reply.try_send(outcome);
                } else if outcome != Ok(()) && !matches!(req.op, Op::Leave(_)) {
                    warn!(op = ?req.op, outcome = ?outcome, "proposal refused by the cluster");
                }
            }
        }
    }

    fn run_batch(
        &self,
        script: &redis::Script,
        con: &mut Option<redis::Connection>,
        batch: &[Request],
    ) -> Vec<Result<(), Refused>> {
        let failed = || vec![Err(Refused::Unavailable); batch.len()];
        if con.is_none() {
            match connect(&self.client, REQUEST_TIMEOUT) {
                Ok(c) => *con = Some(c),
                Err(e) => {
                    warn!(error = %e, "Redis unreachable");
                    return failed();
                }
            }
        }
        let Some(c) = con.as_mut() else {
            return failed();
        };
        // A fresh Redis (restarted) has no scripts: load once, then pipeline EVALSHAs.
        if let Err(e) = script.load(c) {
            warn!(error = %e, "Redis unreachable");
            *con = None;
            return failed();
        }
        let users = key(&format!("users:{}", self.node));
        let lease = key(&format!("lease:{}", self.node));
        let len = self.config.stream_len;
        let mut pipe = redis::pipe();
        for req in batch {
            let new_key;
            let (op, nick, arg6, arg7) = match &req.op {
                Op::Join(n) => ("j", n, "", ""),
                Op::Rename { old, new } => {
                    new_key = new.key();
                    ("r", old, new_key.as_str(), new.as_str())
                }
                Op::Leave(n) => ("l", n, "", ""),
                Op::Say(n, t) => ("c", n, "", t.as_str()),
                Op::Private { from, to, text } => ("m", from, to.as_str(), text.as_str()),
                Op::Who(n) => ("w", n, "", ""),
            };
            let mut inv = script.prepare_invoke();
            inv.key(key("stream"))
                .key(key("nicks"))
                .key(&users)
                .key(&lease)
                .arg(op)
                .arg(&self.node)
                .arg(len)
                .arg(nick.key().as_str())
                .arg(nick.as_str())
                .arg(arg6)
                .arg(arg7);
            pipe.invoke_script(&inv);
        }
        match pipe.query::<Vec<i64>>(c) {
            Ok(codes) => codes
                .into_iter()
                .map(|code| match code {
                    1 => Ok(()),
                    0 => Err(Refused::Taken),
                    _ => Err(Refused::Unavailable),
                })
                .collect(),
            Err(e) => {
                warn!(error = %e, "Redis request failed");
                *con = None;
                failed()
            }
        }
    }

    fn reap(&self, con: &mut redis::Connection) -> redis::RedisResult<i64> {
        redis::Script::new(scripts::REAP)
            .key(key("stream"))
            .key(key("nicks"))
            .key(key("nodes"))
            .arg(scripts::PREFIX)
            .arg(self.config.stream_len)
            .invoke(con)
    }

    /// The lease keeper: renews this node's lease every third of it (`SET XX`, so a
    /// lease that expired is never brought back: that id is fenced for good) and reaps
    /// dead nodes. Without a renewal for half the lease, or once fenced, the node shuts
    /// its clients down: they must not keep chatting under names it may no longer own.
    fn lease_loop(&self, hub: &std::sync::Weak<Hub>) {
        let lease = key(&format!("lease:{}", self.node));
        let lease_ms = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        let every = self.config.lease / 3;
        let grace = self.config.lease / 2;
        let mut con = None;
        let mut renewed = Instant::now();
        let mut next = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50).min(every));
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + every;
            if con.is_none() {
                con = connect(&self.client, REQUEST_TIMEOUT).ok();
            }
            let outcome = con.as_mut().map(|c| {
                redis::cmd("SET")
                    .arg(&lease)
                    .arg("1")
                    .arg("XX")
                    .arg("PX")
                    .arg(lease_ms)
                    .query::<Option<String>>(c)
            });
            let fenced = match outcome {
                Some(Ok(Some(_))) => {
                    renewed = Instant::now();
                    if let Some(c) = con.as_mut()
                        && let Err(e) = self.reap(c)
                    {
                        warn!(error = %e, "reaping dead nodes failed");
                    }
                    false
                }
                Some(Ok(None)) => true,
                Some(Err(e)) => {
                    warn!(error = %e, "cannot renew the lease");
                    con = None;
                    false
                }
                None => false,
            };
            if fenced || renewed.elapsed() >= grace {
                warn!(node = %self.node, fenced, "lost the cluster: closing this node's clients");
                if let Some(hub) = hub.upgrade() {
                    hub.shutdown();
                }
                return;
            }
        }
    }
}
