//! The Redis engine (`--engine redis://...`, issue 15): several servers, one chat.
//!
//! Shape (after Centrifugo's Redis engine; nothing copied):
//! - **The stream is the sequencer.** A node never appends a public event to its own
//!   log. It *proposes* the event to Redis ([`scripts::PROPOSE`], which checks and
//!   `XADD`s atomically), and one reader task per node reads the stream back
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
//! - **`/msg` goes through the stream too** (as an entry history never returns), so that
//!   it is ordered against public events; the recipient's node delivers it. `/who` is
//!   answered by the asker's node from its copy of the member list, once its reader has
//!   applied the asker's earlier events (see replies below).
//! - **Replies keep their place.** A reply (an `ERR` line) must follow the events its
//!   client caused before it (SRV-5), but those are still on their way through Redis.
//!   So a reply waits, in [`Replies`], until the reader has applied the last entry this
//!   node had added when the reply was made.
//! - **Async, on smol, no second runtime.** Redis I/O uses the `redis` crate's smol
//!   support (`smol-comp`): three engine tasks (the reader, the proposer, the lease
//!   keeper) on async connections, no blocking thread. The proposer and the lease keeper
//!   each have a multiplexed connection; the reader has one of its own, because a
//!   blocking `XREAD` would hold up every request queued behind it on a shared one.
//!   Connection tasks hand proposals to the proposer through a bounded queue; only join
//!   and `/nick` wait for its answer (one Redis round trip, bounded by
//!   [`REQUEST_TIMEOUT`]). That wait is synchronous (the connection's state machine is),
//!   so the engine's tasks run on smol's global executor, where the `redis` crate also
//!   drives its connections, and never on the server's executor threads: a burst of
//!   joins holding every server thread must not starve the proposer they wait for.
//!   (The crate's async connections use tokio's `sync` primitives and tokio-util's codec
//!   as plain libraries: no tokio runtime, reactor or timer is built in; `scripts/test.sh`
//!   checks `cargo tree -e features -i tokio` for that.)

pub mod scripts;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use async_io::Timer;
use futures_lite::FutureExt;
use redis::aio::MultiplexedConnection;

use chat_proto::{NickKey, Nickname, Text};
use tracing::{info, warn};

use crate::hub::Hub;
use crate::log::EntryId;
use crate::writer::{Line, Outbox, Pushed};

/// The default lease of a node: its users leave this long after it dies.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// The fewest entries the stream keeps (`MAXLEN ~`, so at least this many): also the
/// margin a node's reader may lag behind the newest entry without missing any.
pub const DEFAULT_STREAM_LEN: usize = 10_000;

/// Longest wait for an answer from Redis to a join or a `/nick`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Proposals queued for the proposer task before new chat lines are refused.
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
    /// Entries the stream keeps (at least; `MAXLEN ~`).
    pub stream_len: usize,
    /// Entries read back into the local log at start (`--history`, CLUSTER-7).
    pub history: usize,
}

impl EngineConfig {
    /// Defaults for `url`.
    pub fn new(url: &str) -> EngineConfig {
        EngineConfig {
            url: url.to_owned(),
            lease: DEFAULT_LEASE,
            stream_len: DEFAULT_STREAM_LEN,
            history: 0,
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
    /// The recipient of a `/msg` was gone when the message reached its place.
    NoSuchNick,
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
    /// A public notice caused by a user of this node (an operator's, §18), encoded
    /// without its LF.
    Notice(Nickname, String),
    Private {
        from: Nickname,
        to: Nickname,
        text: Text,
        /// The sender's, for `ERR no-such-nick` when the recipient is gone by the time
        /// the message reaches its place in the order.
        outbox: Arc<Outbox>,
    },
    /// Not for Redis: something for one client, done once the entries this node
    /// added before it are applied.
    Reply(Arc<Outbox>, Reply),
}

/// What [`Op::Reply`] does for its client.
#[derive(Debug, Clone)]
enum Reply {
    /// Queues the line (an `ERR` reply).
    Line(Line),
    /// Answers `/who` from the member list at that point (CLUSTER-3).
    Who,
}

/// Replies waiting for the reader (see the module docs).
#[derive(Default)]
struct Replies {
    /// The last stream entry the reader applied.
    applied: Option<EntryId>,
    /// The last entry the proposer added.
    added: Option<EntryId>,
    /// The last entry of the last batch whose replies the proposer has placed.
    resolved: Option<EntryId>,
    /// In order of `after`.
    waiting: std::collections::VecDeque<(EntryId, Arc<Outbox>, Reply)>,
    /// This node's own entries applied lately, with their local log seq: a reply whose
    /// entry the reader passed already goes right after that entry, not at the head.
    own: std::collections::VecDeque<(EntryId, u64)>,
}

/// Own entries remembered at most (the proposer looks up only entries of its latest
/// batches).
const OWN_KEPT: usize = 4 * BATCH;

impl Replies {
    /// The local seq of own entry `id`, forgetting older ones.
    fn seq_of(&mut self, id: EntryId) -> Option<u64> {
        while self.own.front().is_some_and(|(e, _)| *e < id) {
            self.own.pop_front();
        }
        self.own.front().filter(|(e, _)| *e == id).map(|&(_, s)| s)
    }
}

struct Request {
    op: Op,
    reply: Option<SyncSender<Result<(), Refused>>>,
}

/// Users of this node whose leave is on its way, with the line each gets last.
type Leaving = HashMap<NickKey, (Arc<Outbox>, Option<Line>)>;

/// A node of the cluster: the hub's way to Redis. See the module docs.
pub struct Engine {
    config: EngineConfig,
    client: redis::Client,
    node: String,
    queue: Sender<Request>,
    queue_rx: Mutex<Option<Receiver<Request>>>,
    /// The member list at this node's position in the stream (folded -> as spelled).
    replica: Mutex<HashMap<NickKey, Nickname>>,
    /// Where the reader starts: the stream's last id when the replica was taken.
    start_id: String,
    stop: Arc<AtomicBool>,
    tasks: Mutex<Vec<smol::Task<()>>>,
    replies: Mutex<Replies>,
    /// Notified when `replies.resolved` moves.
    resolved: event_listener::Event,
    /// Users of this node renamed in Redis whose rename the reader has not applied yet:
    /// old folded name -> new. Entries before the rename still name them by the old one.
    renaming: Mutex<HashMap<NickKey, NickKey>>,
    /// Users of this node as named at the reader's position in the stream (folded name
    /// -> outbox), from their join to their leave: who gets a `/msg` entry.
    at_stream: Mutex<HashMap<NickKey, Arc<Outbox>>>,
    /// Users of this node whose leave is on its way (see [`Engine::stop`]).
    leaving: Mutex<Leaving>,
    /// This node's joins added to the stream and not yet applied: entry id -> the
    /// joiner's outbox, taken when Redis answered (the joiner cannot have renamed yet,
    /// it is still waiting for that answer). The reader finds the joiner by the entry,
    /// not by a name that pending renames may have changed since.
    joined: Mutex<std::collections::BTreeMap<EntryId, Arc<Outbox>>>,
    /// Leaves that could not be proposed (Redis unreachable): the names stay owned by
    /// this node in Redis until the lease keeper, once Redis answers again, proposes
    /// them once more (or, if this node dies first, the reaper frees them).
    owed: Mutex<Vec<Nickname>>,
    hub: std::sync::OnceLock<std::sync::Weak<Hub>>,
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

/// An async connection with timeouts, so that no engine task waits forever on a dead
/// Redis: connecting takes at most [`REQUEST_TIMEOUT`], an answer at most `response`.
async fn connect(
    client: &redis::Client,
    response: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REQUEST_TIMEOUT))
        .set_response_timeout(Some(response));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl Engine {
    /// Connects, registers this node (a fresh id and lease) and takes a snapshot of the
    /// member list at the stream's current end.
    pub fn connect(config: EngineConfig) -> anyhow::Result<Arc<Engine>> {
        let client = redis::Client::open(config.url.as_str())?;
        let lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
        // Called once, at start-up, outside any executor.
        let reply: Vec<String> = async_io::block_on(async {
            let mut con = connect(&client, REQUEST_TIMEOUT).await?;
            redis::Script::new(scripts::REGISTER)
                .key(key("stream"))
                .key(key("nicks"))
                .key(key("nodes"))
                .key(key("node-ids"))
                .arg(scripts::PREFIX)
                .arg(lease_ms)
                .invoke_async(&mut con)
                .await
        })?;
        let mut reply = reply.into_iter();
        let (Some(node), Some(start_id)) = (reply.next(), reply.next()) else {
            anyhow::bail!("unexpected reply from Redis when registering the node");
        };
        let replica = reply
            .filter_map(|n| Nickname::new(&n).ok())
            .map(|n| (n.key(), n))
            .collect();
        let (queue, rx) = async_channel::bounded(QUEUE_LEN);
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
            tasks: Mutex::new(Vec::new()),
            replies: Mutex::new(Replies::default()),
            resolved: event_listener::Event::new(),
            leaving: Mutex::new(HashMap::new()),
            at_stream: Mutex::new(HashMap::new()),
            renaming: Mutex::new(HashMap::new()),
            joined: Mutex::new(std::collections::BTreeMap::new()),
            owed: Mutex::new(Vec::new()),
            hub: std::sync::OnceLock::new(),
        }))
    }

    /// This node's id (also its fencing token).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Starts the reader, proposer and lease keeper tasks, feeding `hub`.
    pub fn start(self: &Arc<Self>, hub: &Arc<Hub>) -> std::io::Result<()> {
        let Some(rx) = self
            .queue_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        let _ = self.hub.set(Arc::downgrade(hub));
        // Before any client can join: called once, at start-up, outside any executor.
        match async_io::block_on(stream::prefill(self, hub, self.config.history)) {
            Ok(n) => info!(events = n, "history read back from the stream"),
            Err(e) => warn!(error = %e, "could not read the history back from the stream"),
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let (engine, weak) = (self.clone(), Arc::downgrade(hub));
        tasks.push(smol::spawn(async move {
            stream::read_loop(&engine, &weak).await;
        }));
        let engine = self.clone();
        tasks.push(smol::spawn(async move { engine.propose_loop(&rx).await }));
        let (engine, weak) = (self.clone(), Arc::downgrade(hub));
        tasks.push(smol::spawn(async move { engine.lease_loop(&weak).await }));
        Ok(())
    }

    /// Leaves the cluster cleanly: gives up the lease and reaps this node's own users
    /// (the others see each leave once), then stops the tasks. Blocks: called by the
    /// server's shutdown, outside any executor.
    pub fn retire(&self) {
        self.stop.store(true, Ordering::Release);
        self.resolved.notify(usize::MAX);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let lease = key(&format!("lease:{}", self.node));
        let done = async_io::block_on(async {
            // Their clients are gone by now: nothing they would still do matters.
            for task in tasks {
                task.cancel().await;
            }
            let mut con = connect(&self.client, REQUEST_TIMEOUT).await?;
            redis::cmd("DEL").arg(&lease).exec_async(&mut con).await?;
            self.reap(&mut con).await
        });
        if let Err(e) = done {
            warn!(error = %e, "could not retire from the cluster; the lease will expire");
        }
    }

    fn joined_map(&self) -> MutexGuard<'_, std::collections::BTreeMap<EntryId, Arc<Outbox>>> {
        self.joined.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn owed_leaves(&self) -> MutexGuard<'_, Vec<Nickname>> {
        self.owed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The joiner of own join entry `id` (forgetting joins before it, which the reader
    /// has passed), found by the entry; or, if the proposer could not note it, by the
    /// name it joined under, following its pending renames.
    pub(super) fn joiner(&self, hub: &Hub, id: EntryId, nick: &Nickname) -> Option<Arc<Outbox>> {
        let noted = {
            let mut joined = self.joined_map();
            while joined.first_key_value().is_some_and(|(e, _)| *e < id) {
                joined.pop_first();
            }
            joined.remove(&id)
        };
        noted.or_else(|| hub.outbox_of(&self.local_key(nick.key())))
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

    /// Renames atomically (waits for Redis). Until the reader applies the rename, a
    /// private line to or from the old name still finds the user ([`Engine::local_key`]).
    pub(crate) fn rename(&self, old: Nickname, new: Nickname) -> Result<(), Refused> {
        let (old_key, new_key) = (old.key(), new.key());
        let renames = old_key != new_key;
        if renames {
            // Before the entry exists, so the reader's removal always comes after.
            self.renaming_map().insert(old_key.clone(), new_key);
        }
        let done = self.request(Op::Rename { old, new });
        if done.is_err() && renames {
            self.renaming_map().remove(&old_key);
        }
        done
    }

    fn renaming_map(&self) -> MutexGuard<'_, HashMap<NickKey, NickKey>> {
        self.renaming.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key under which the local registry may know the user an entry calls `key`
    /// once its pending renames are done (`key` itself when there are none).
    pub(crate) fn local_key(&self, key: NickKey) -> NickKey {
        let renaming = self.renaming_map();
        let mut key = key;
        // Bounded: each step follows one pending rename.
        for _ in 0..renaming.len() {
            match renaming.get(&key) {
                Some(next) => key = next.clone(),
                None => break,
            }
        }
        key
    }

    /// Announces a leave (does not wait).
    pub(crate) fn leave(&self, nick: Nickname) {
        self.send(Op::Leave(nick));
    }

    /// A chat line (does not wait). False when the queue to Redis is full.
    pub(crate) fn say(&self, nick: Nickname, text: Text) -> bool {
        self.send(Op::Say(nick, text))
    }

    /// A public notice `msg` caused by `by` (an operator's, §18; does not wait).
    pub(crate) fn notice(&self, by: Nickname, msg: &chat_proto::ServerMessage) -> bool {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes);
        let line = String::from_utf8_lossy(&bytes)
            .trim_end_matches('\n')
            .to_owned();
        self.send(Op::Notice(by, line))
    }

    /// A `/msg` through the stream (does not wait).
    pub(crate) fn private(
        &self,
        from: Nickname,
        to: Nickname,
        text: Text,
        outbox: &Arc<Outbox>,
    ) -> bool {
        let outbox = outbox.clone();
        self.send(Op::Private {
            from,
            to,
            text,
            outbox,
        })
    }

    /// A `/who`, answered once this node's earlier events are applied (does not wait).
    pub(crate) fn who(&self, outbox: &Arc<Outbox>) -> bool {
        self.send(Op::Reply(outbox.clone(), Reply::Who))
    }

    /// A user of this node leaves: its writer must stop right before its leave notice,
    /// after the events it caused, which are still on their way; its connection's
    /// close waits for that ([`Outbox::hold_close`]). The reader releases it when it
    /// applies the leave; the proposer, if the leave cannot be proposed.
    pub(crate) fn stop(&self, key: NickKey, outbox: &Arc<Outbox>) {
        self.stop_with(key, outbox, None);
    }

    /// [`Engine::stop`], with `last` as the client's last line, after its last log entry
    /// (`ERR kicked`, `ERR banned`).
    pub(crate) fn stop_with(&self, key: NickKey, outbox: &Arc<Outbox>, last: Option<Line>) {
        outbox.hold_close();
        if let Some((old, line)) = self.leaving().insert(key, (outbox.clone(), last)) {
            Engine::release(&old, line.as_ref());
        }
    }

    fn release(outbox: &Outbox, last: Option<&Line>) {
        let head = outbox.log().head();
        if let Some(line) = last {
            outbox.push_after(head, line);
        }
        outbox.release_close(head);
    }

    fn at_stream(&self) -> MutexGuard<'_, HashMap<NickKey, Arc<Outbox>>> {
        self.at_stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn leaving(&self) -> MutexGuard<'_, Leaving> {
        self.leaving.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The leave of `key` is about to be appended (or will never be): its writer stops
    /// at what the log holds now.
    pub(crate) fn stop_leaver(&self, key: &NickKey) {
        if let Some((outbox, last)) = self.leaving().remove(key) {
            Engine::release(&outbox, last.as_ref());
        }
    }

    /// A reply to one client, after the events this node proposed before it (SRV-5).
    /// False when the queue to Redis is full.
    pub(crate) fn reply(&self, outbox: &Arc<Outbox>, line: &Line) -> bool {
        self.send(Op::Reply(outbox.clone(), Reply::Line(line.clone())))
    }

    fn replies(&self) -> MutexGuard<'_, Replies> {
        self.replies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Does what a reply says, right after log entry `seq`; a client whose queue
    /// overflows is cut off.
    fn deliver_at(&self, outbox: &Arc<Outbox>, reply: &Reply, seq: u64) {
        let line = match reply {
            Reply::Line(line) => line.clone(),
            Reply::Who => {
                let names = self.replica().values().cloned().collect();
                let mut bytes = Vec::new();
                for msg in chat_proto::users_lines(names) {
                    msg.encode(&mut bytes);
                }
                Line::from(bytes)
            }
        };
        if outbox.push_after(seq, &line) == Pushed::Overflow
            && let Some(hub) = self.hub.get().and_then(std::sync::Weak::upgrade)
        {
            hub.cut_off(outbox, "sendq exceeded");
        }
    }

    /// The proposer's side: a reply goes out now if the reader has applied everything
    /// this node added so far, else it waits for that.
    fn hold_reply(&self, outbox: Arc<Outbox>, reply: Reply) {
        let mut r = self.replies();
        match r.added {
            Some(after) if r.applied.is_none_or(|a| a < after) => {
                r.waiting.push_back((after, outbox, reply));
            }
            Some(after) => {
                let seq = r.seq_of(after);
                drop(r);
                let seq = seq.unwrap_or_else(|| outbox.log().head());
                self.deliver_at(&outbox, &reply, seq);
            }
            None => {
                drop(r);
                self.deliver_at(&outbox, &reply, outbox.log().head());
            }
        }
    }

    /// The reader's side: entry `id` is applied (as local seq `own_seq` when this node
    /// added it); replies waiting for it go out.
    fn applied(&self, id: EntryId, own_seq: Option<u64>) {
        let ready: Vec<(EntryId, Arc<Outbox>, Reply)> = {
            let mut r = self.replies();
            r.applied = Some(id);
            if let Some(seq) = own_seq {
                if r.own.len() == OWN_KEPT {
                    r.own.pop_front();
                }
                r.own.push_back((id, seq));
            }
            let n = r
                .waiting
                .iter()
                .take_while(|(after, _, _)| *after <= id)
                .count();
            r.waiting.drain(..n).collect()
        };
        for (_, outbox, reply) in ready {
            self.deliver_at(&outbox, &reply, outbox.log().head());
        }
    }

    fn send(&self, op: Op) -> bool {
        match self.queue.try_send(Request { op, reply: None }) {
            Ok(()) => true,
            Err(TrySendError::Full(r)) => {
                warn!(op = ?r.op, "the queue to Redis is full; proposal dropped");
                false
            }
            Err(TrySendError::Closed(_)) => false,
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
    async fn propose_loop(&self, rx: &Receiver<Request>) {
        let script = redis::Script::new(scripts::PROPOSE);
        let mut con = None;
        let mut batch = Vec::with_capacity(BATCH);
        while !self.stop.load(Ordering::Acquire) {
            match rx.recv().await {
                Ok(r) => batch.push(r),
                Err(_) => return,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let outcomes = self.run_batch(&script, &mut con, &batch).await;
            for (req, outcome) in batch.drain(..).zip(outcomes) {
                if let Op::Reply(outbox, reply) = req.op {
                    self.hold_reply(outbox, reply);
                    continue;
                }
                if let Ok(Some(id)) = outcome {
                    self.replies().added = Some(id);
                    if let (Op::Join(nick), Some(hub)) =
                        (&req.op, self.hub.get().and_then(std::sync::Weak::upgrade))
                        && let Some(outbox) = hub.outbox_of(&nick.key())
                    {
                        self.joined_map().insert(id, outbox);
                    }
                }
                let outcome = outcome.map(|_| ());
                if let (Op::Leave(nick), Err(why)) = (&req.op, outcome) {
                    self.stop_leaver(&nick.key());
                    // No leave in the stream yet: forget it here.
                    self.at_stream().remove(&nick.key());
                    if why == Refused::Unavailable {
                        // Redis may still hold the name for this node: owed.
                        self.owed_leaves().push(nick.clone());
                    }
                }
                if let (Op::Private { to, outbox, .. }, Err(Refused::NoSuchNick)) =
                    (&req.op, outcome)
                {
                    let line = crate::writer::encode(&chat_proto::ServerMessage::no_such_nick(to));
                    self.hold_reply(outbox.clone(), Reply::Line(line));
                    continue;
                }
                if let Some(reply) = req.reply {
                    if reply.try_send(outcome).is_err()
                        && outcome.is_ok()
                        && let Op::Join(nick) = req.op
                    {
                        // The joiner gave up waiting (and is no member here): the name
                        // it claimed would stay held by nobody. Its leave follows.
                        self.send(Op::Leave(nick));
                    }
                } else if outcome != Ok(()) && !matches!(req.op, Op::Leave(_)) {
                    warn!(op = ?req.op, outcome = ?outcome, "proposal refused by the cluster");
                }
            }
            let mut r = self.replies();
            r.resolved = r.added;
            drop(r);
            self.resolved.notify(usize::MAX);
        }
    }

    /// The reader, before it applies this node's own entry `id`: waits until the
    /// proposer has placed the replies of the batch that added it, so that a reply to a
    /// line is never overtaken by the client's next event (SRV-5). Bounded: a batch
    /// whose answer was lost (Redis went away mid-way) is not waited for long.
    pub(super) async fn wait_resolved(&self, id: EntryId) {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            // Listening before looking, so that a notification in between is not missed.
            let notified = self.resolved.listen();
            if self.replies().resolved.is_some_and(|done| done >= id)
                || self.stop.load(Ordering::Acquire)
            {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            notified
                .or(async {
                    Timer::after(left).await;
                })
                .await;
        }
    }

    async fn run_batch(
        &self,
        script: &redis::Script,
        con: &mut Option<MultiplexedConnection>,
        batch: &[Request],
    ) -> Vec<Result<Option<EntryId>, Refused>> {
        let failed = || vec![Err(Refused::Unavailable); batch.len()];
        if batch.iter().all(|r| matches!(r.op, Op::Reply(..))) {
            return vec![Ok(None); batch.len()];
        }
        // A fresh Redis (restarted) has no scripts: load once, then pipeline EVALSHAs.
        // A connection from before a Redis restart fails at its first use: loading the
        // script sends nothing that changes anything, so it is tried once more on a
        // fresh connection before the batch is refused.
        let mut loaded = false;
        for _ in 0..2 {
            if con.is_none() {
                match connect(&self.client, REQUEST_TIMEOUT).await {
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
            match script.load_async(c).await {
                Ok(_) => {
                    loaded = true;
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "Redis unreachable");
                    *con = None;
                }
            }
        }
        let Some(c) = con.as_mut().filter(|_| loaded) else {
            return failed();
        };
        let users = key(&format!("users:{}", self.node));
        let lease = key(&format!("lease:{}", self.node));
        let len = self.config.stream_len;
        let mut pipe = redis::pipe();
        for req in batch {
            let other_key;
            // ARGV 6-8: the new name's folded key and spelling (rename), or the
            // recipient's spelling, the text and the recipient's folded key (`/msg`).
            let (op, nick, arg6, arg7, arg8) = match &req.op {
                Op::Reply(..) => continue,
                Op::Join(n) => ("j", n, "", "", ""),
                Op::Rename { old, new } => {
                    other_key = new.key();
                    ("r", old, other_key.as_str(), new.as_str(), "")
                }
                Op::Leave(n) => ("l", n, "", "", ""),
                Op::Say(n, t) => ("c", n, "", t.as_str(), ""),
                Op::Notice(n, line) => ("n", n, "", line.as_str(), ""),
                Op::Private { from, to, text, .. } => {
                    other_key = to.key();
                    ("m", from, to.as_str(), text.as_str(), other_key.as_str())
                }
            };
            let new_skel = match &req.op {
                Op::Rename { new, .. } => new.skeleton(),
                _ => nick.skeleton(),
            };
            let mut inv = script.prepare_invoke();
            inv.key(key("stream"))
                .key(key("nicks"))
                .key(&users)
                .key(&lease)
                .key(key("skels"))
                .arg(op)
                .arg(&self.node)
                .arg(len)
                .arg(nick.key().as_str())
                .arg(nick.as_str())
                .arg(arg6)
                .arg(arg7)
                .arg(arg8)
                .arg(nick.skeleton().as_str())
                .arg(new_skel.as_str());
            pipe.invoke_script(&inv);
        }
        match pipe.query_async::<Vec<redis::Value>>(c).await {
            Ok(codes) => {
                let mut codes = codes.into_iter();
                batch
                    .iter()
                    .map(|req| match req.op {
                        Op::Reply(..) => Ok(None),
                        _ => match codes.next() {
                            Some(redis::Value::BulkString(id)) => {
                                Ok(Some(stream::origin_of(&String::from_utf8_lossy(&id))))
                            }
                            Some(redis::Value::Int(0)) => Err(Refused::Taken),
                            Some(redis::Value::Int(-4)) => Err(Refused::NoSuchNick),
                            // A leave of a name this node does not own: nothing to free
                            // (not retried, unlike an unanswered one).
                            Some(redis::Value::Int(-2)) if matches!(req.op, Op::Leave(_)) => {
                                Err(Refused::NoSuchNick)
                            }
                            _ => Err(Refused::Unavailable),
                        },
                    })
                    .collect()
            }
            Err(e) => {
                warn!(error = %e, "Redis request failed");
                *con = None;
                failed()
            }
        }
    }

    async fn reap(&self, con: &mut MultiplexedConnection) -> redis::RedisResult<i64> {
        redis::Script::new(scripts::REAP)
            .key(key("stream"))
            .key(key("nicks"))
            .key(key("nodes"))
            .key(key("skels"))
            .arg(scripts::PREFIX)
            .arg(self.config.stream_len)
            .invoke_async(con)
            .await
    }

    /// The lease keeper: renews this node's lease every third of it (`SET XX`, so a
    /// lease that expired is never brought back: that id is fenced for good) and reaps
    /// dead nodes. Without a renewal for half the lease, or once fenced, the node shuts
    /// its clients down: they must not keep chatting under names it may no longer own.
    async fn lease_loop(&self, hub: &std::sync::Weak<Hub>) {
        let lease = key(&format!("lease:{}", self.node));
        let lease_ms = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        let every = self.config.lease / 3;
        let grace = self.config.lease / 2;
        let mut con: Option<MultiplexedConnection> = None;
        let mut renewed = Instant::now();
        let mut next = Instant::now();
        let renew = redis::cmd("SET")
            .arg(&lease)
            .arg("1")
            .arg("XX")
            .arg("PX")
            .arg(lease_ms)
            .to_owned();
        while !self.stop.load(Ordering::Acquire) {
            Timer::after(Duration::from_millis(50).min(every)).await;
            if Instant::now() < next {
                continue;
            }
            next = Instant::now() + every;
            if con.is_none() {
                con = connect(&self.client, REQUEST_TIMEOUT).await.ok();
            }
            let mut outcome = match con.as_mut() {
                Some(c) => Some(renew.query_async::<Option<String>>(c).await),
                None => None,
            };
            if let Some(Err(_)) = outcome {
                // A connection from before a Redis restart fails at its first use; the
                // renewal is idempotent, so it is tried once more on a fresh one.
                con = connect(&self.client, REQUEST_TIMEOUT).await.ok();
                if let Some(c) = con.as_mut() {
                    outcome = Some(renew.query_async::<Option<String>>(c).await);
                }
            }
            let fenced = match outcome {
                Some(Ok(Some(_))) => {
                    renewed = Instant::now();
                    if let Some(c) = con.as_mut()
                        && let Err(e) = self.reap(c).await
                    {
                        warn!(error = %e, "reaping dead nodes failed");
                    }
                    // Redis answers again: the leaves it missed go out now (in the
                    // order they were owed), freeing their names.
                    let owed = std::mem::take(&mut *self.owed_leaves());
                    for nick in owed {
                        if !self.send(Op::Leave(nick.clone())) {
                            self.owed_leaves().push(nick);
                        }
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
