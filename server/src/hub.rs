//! The registry of connections and users, and the sequencer of every event.
//!
//! One mutex guards the registry and the log's [`Appender`]. Every public event (join,
//! leave, chat, rename, shutdown) takes one path under it: apply the event to the
//! registry, append its line once to the chat's ordered [`Log`] ([`Registry::append`]),
//! and, after the lock is released, wake the writers parked at the head. That gives all
//! events one total order that every client observes (SRV-4), makes join, rename and
//! leave atomic with respect to nickname uniqueness (NICK-3, NICK-7, CMD-NICK-1), and
//! costs nothing per recipient: an event is one encode and one copy into the log.
//!
//! What only one client gets (`Connected`, `/who`, `/msg`, errors) goes into that
//! client's private queue, stamped with the log's head so that its writer sends it after
//! every entry appended before it and before any appended after it.
//!
//! Cleanup is by RAII: a [`Membership`] removes its user when dropped, however the
//! connection ends (a `/quit`, an error, a panic in its task), and a [`Slot`] frees the
//! connection's place under `max_clients`. Removal checks identity (the outbox), so a
//! stale guard can never remove a newer user of the same nickname (DEFECTS.md item 3),
//! and a leave notice goes out exactly once (CONN-2), also for a user cut off.

mod memory;
mod moderation;

pub use moderation::{OpOutcome, Operators};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_proto::lookalike::Skeleton;
use chat_proto::server::texts;
use chat_proto::{ErrorCode, NickKey, Nickname, ServerMessage, Text, users_lines};
use tracing::info;

use crate::cluster::{Engine, Refused};
use crate::history::{Catchup, Form, Retention};
use crate::log::{Appended, Appender, EntryId, Log};
use crate::store::{Restored, StoreHandle};
use crate::writer::{Line, Outbox, Pushed, encode, with_encoded};

/// The default `--log-budget`: bytes of retained log segments.
pub const DEFAULT_LOG_BUDGET: usize = 64 * 1024 * 1024;

/// Lines every connection may receive, encoded once per hub and shared.
#[derive(Debug)]
pub struct CommonLines {
    /// `NICK` (NICK-1, NICK-5).
    pub nick_prompt: Line,
    /// `Connected to the server` (NICK-7).
    pub connected: Line,
    /// `ERR server-full` (CONN-1).
    pub server_full: Line,
    /// `ERR server-shutdown` (CONN-6).
    pub server_shutdown: Line,
    /// `ERR sendq-exceeded` (CONN-4).
    pub sendq_exceeded: Line,
    /// `ERR line-too-long` (FRAME-3).
    pub line_too_long: Line,
    /// `ERR invalid-utf8` (FRAME-4).
    pub invalid_utf8: Line,
    /// `ERR invalid-text` (FRAME-5).
    pub invalid_text: Line,
    /// `ERR too-many-attempts` (NICK-6).
    pub too_many_attempts: Line,
    /// `ERR handshake-timeout` (NICK-6).
    pub handshake_timeout: Line,
    /// `ERR flood` (CONN-7).
    pub flood: Line,
    /// `ERR excess-flood` (CONN-7).
    pub excess_flood: Line,
    /// The seed profile's greeting: `NICK` with no terminator (COMPAT-1).
    pub seed_greeting: Line,
}

impl CommonLines {
    fn new() -> CommonLines {
        let err = |code, text| encode(&ServerMessage::error(code, text));
        CommonLines {
            nick_prompt: encode(&ServerMessage::NickPrompt),
            connected: encode(&ServerMessage::Connected),
            server_full: err(ErrorCode::ServerFull, texts::SERVER_FULL),
            server_shutdown: err(ErrorCode::ServerShutdown, texts::SERVER_SHUTDOWN),
            sendq_exceeded: encode(&crate::writer::sendq_exceeded()),
            line_too_long: err(ErrorCode::LineTooLong, texts::LINE_TOO_LONG),
            invalid_utf8: err(ErrorCode::InvalidUtf8, texts::INVALID_UTF8),
            invalid_text: err(ErrorCode::InvalidText, texts::INVALID_TEXT),
            too_many_attempts: err(ErrorCode::TooManyAttempts, texts::TOO_MANY_ATTEMPTS),
            handshake_timeout: err(ErrorCode::HandshakeTimeout, texts::HANDSHAKE_TIMEOUT),
            flood: err(ErrorCode::Flood, texts::FLOOD),
            excess_flood: err(ErrorCode::ExcessFlood, texts::EXCESS_FLOOD),
            seed_greeting: Line::from(chat_proto::seed::GREETING),
        }
    }
}

/// Why a nickname could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// Another connected user holds it, in some case (NICK-3).
    Taken,
    /// The server is shutting down.
    ShuttingDown,
    /// The cluster (Redis) did not answer.
    Unavailable,
}

/// Why a `/nick` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameError {
    /// Another user holds the new name (CMD-NICK-2).
    Taken,
    /// The same name in the same spelling (CMD-NICK-3).
    Unchanged,
    /// This user is no longer registered (cut off, or the server is shutting down).
    Gone,
    /// The cluster (Redis) did not answer.
    Unavailable,
}

/// A connection could not get a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// `max_clients` connections are open (CONN-1).
    Full,
    /// The server is shutting down (NICK-1, CONN-6).
    ShuttingDown,
}

/// Members to cut off, with the reason for the server's log.
type Cut = Vec<(NickKey, Arc<Outbox>, &'static str)>;

#[derive(Debug)]
struct Member {
    nick: Nickname,
    key: NickKey,
    outbox: Arc<Outbox>,
    /// Cluster: what the user gets once its join comes back from the stream (HIST-5,
    /// RESUME-2); taken then.
    catchup: Option<Catchup>,
}

#[derive(Debug)]
struct Registry {
    /// Users past the handshake.
    members: Vec<Member>,
    /// Folded nickname -> index into `members`.
    index: HashMap<NickKey, usize>,
    /// Lookalike skeleton -> folded nickname of the member who holds it (NICK-LOOK-1).
    skeletons: HashMap<Skeleton, NickKey>,
    /// Every open connection, handshaking or chatting (CONN-1, CONN-6).
    slots: Vec<Option<Arc<Outbox>>>,
    free_slots: Vec<usize>,
    open: usize,
    /// Most connections open since memory was last given back (see [`Slot`]'s drop).
    open_peak: usize,
    /// Memory was given back while connections were still closing: do it once more when
    /// the last one is gone.
    trim_when_empty: bool,
    shutting_down: bool,
    /// The only way into the log: the registry's lock is the sequencer's.
    appender: Appender,
    /// What stays readable for history (§17).
    retention: Retention,
    /// Where entries are saved, with `--store` (STORE-1).
    store: Option<StoreHandle>,
    /// Operators, mutes and bans (§18).
    moderation: moderation::Moderation,
    /// With the Redis engine, public events are proposed to the cluster instead of
    /// appended here; they come back in the cluster's order through
    /// [`Hub::append_replicated`] (see `cluster/`).
    engine: Option<Arc<Engine>>,
}

/// How a hub is built: the limits, history, and a store to start from.
#[derive(Debug, Default)]
pub struct HubSettings {
    /// Most open connections (CONN-1).
    pub max_connections: usize,
    /// Bytes of log segments retained at most.
    pub log_budget: usize,
    /// Public events kept for history (HIST-1; 0: none).
    pub history: usize,
    /// Events sent on join (HIST-5).
    pub backlog: usize,
    /// An opened store and what it held (STORE-1).
    pub store: Option<(Restored, StoreHandle)>,
    /// The operator password (MOD-1); `None`: no operators.
    pub operators: Operators,
    /// The cluster engine (`--engine`, §20): public events go through it. Never with a
    /// store (the stream is the cluster's store).
    pub engine: Option<Arc<Engine>>,
}

/// The registry and sequencer. Share it as `Arc<Hub>`.
#[derive(Debug)]
pub struct Hub {
    registry: Mutex<Registry>,
    log: Arc<Log>,
    max_connections: usize,
    lines: CommonLines,
    /// True when the server has an operator password: only then are mutes and bans
    /// looked up (a server without one pays nothing for §18).
    moderated: bool,
}

impl Hub {
    /// A hub that admits at most `max_connections` open connections, with the default
    /// log budget.
    pub fn new(max_connections: usize) -> Arc<Hub> {
        Hub::with_log_budget(max_connections, DEFAULT_LOG_BUDGET)
    }

    /// A hub whose log retains at most `log_budget` bytes.
    pub fn with_log_budget(max_connections: usize, log_budget: usize) -> Arc<Hub> {
        Hub::with_settings(HubSettings {
            max_connections,
            log_budget,
            history: crate::history::DEFAULT_HISTORY.min(crate::history::most_that_fit(log_budget)),
            backlog: crate::history::DEFAULT_BACKLOG,
            store: None,
            operators: Operators::default(),
            engine: None,
        })
    }

    /// A hub as `settings` say. With a store, the log starts where the stored one ended:
    /// its entries are refilled (with their times) and are history at once (STORE-1).
    /// With an engine, the log keeps each entry's stream id (CLUSTER-6).
    pub fn with_settings(settings: HubSettings) -> Arc<Hub> {
        let HubSettings {
            max_connections,
            log_budget,
            history,
            backlog,
            store,
            operators,
            engine,
        } = settings;
        let moderated = operators.enabled();
        let (restored, store) = match store {
            Some((r, h)) => (Some(r), Some(h)),
            None => (None, None),
        };
        let (log, mut appender) = match (&restored, &engine) {
            (_, Some(_)) => Log::with_origins(log_budget),
            (Some(r), None) => Log::with_origin(
                log_budget,
                r.epoch,
                r.entries.first().map_or(r.next_seq, |e| e.seq),
            ),
            (None, None) => Log::new(log_budget),
        };
        let mut retention = Retention::new(history, backlog);
        if engine.is_some() {
            retention = retention.with_stream_ids();
        }
        for e in restored.iter().flat_map(|r| &r.entries) {
            let a = appender.append_at(&e.line, e.time_ms);
            retention.appended(&appender, a.id.seq, e.public);
        }
        if let Some(store) = &store {
            // The store reads what comes next from the log itself (STORE-2).
            store.attach(&appender);
        }
        Arc::new(Hub {
            registry: Mutex::new(Registry {
                members: Vec::new(),
                index: HashMap::new(),
                skeletons: HashMap::new(),
                slots: Vec::new(),
                free_slots: Vec::new(),
                open: 0,
                open_peak: 0,
                trim_when_empty: false,
                shutting_down: false,
                appender,
                retention,
                store,
                moderation: moderation::Moderation::new(operators),
                engine,
            }),
            log,
            max_connections,
            lines: CommonLines::new(),
            moderated,
        })
    }

    /// True when the server keeps history and offers `history` (HIST-1).
    pub fn history_enabled(&self) -> bool {
        self.lock().retention.enabled()
    }

    /// Commits what the store has not yet committed, marks it closed cleanly and stops
    /// its thread (after [`Hub::shutdown`], RESUME-5). Nothing without a store.
    pub fn close_store(&self) {
        let store = self.lock().store.take();
        if let Some(mut s) = store {
            s.close();
        }
    }

    /// The lines every connection shares.
    pub fn lines(&self) -> &CommonLines {
        &self.lines
    }

    /// The chat's ordered log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Registry updates are short and never panic midway in practice; if a panic ever
        // poisons the lock, keep serving the other users rather than fail them all.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the sequencer's lock, then wakes the writers waiting for new
    /// entries: the apply -> append -> wake path of every event but chat lines.
    fn sequence<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let r = f(&mut self.lock());
        self.log.publish();
        r
    }

    /// Wakes the writers waiting for entries appended since the last wake. Chat lines
    /// ([`Membership::say`]) do not wake anyone by themselves: a connection appends all
    /// the lines of a chunk it read, then publishes once.
    pub fn publish(&self) {
        self.log.publish();
    }

    /// An outbox reading this hub's log, whose private queue holds `limit` bytes.
    pub fn new_outbox(&self, limit: usize) -> Arc<Outbox> {
        Arc::new(Outbox::new(
            self.log.clone(),
            limit,
            self.lines.sendq_exceeded.clone(),
        ))
    }

    /// Takes a connection slot for `outbox` (CONN-1 counts handshaking connections).
    pub fn attach(self: &Arc<Self>, outbox: &Arc<Outbox>) -> Result<Slot, AttachError> {
        let mut reg = self.lock();
        if reg.shutting_down {
            return Err(AttachError::ShuttingDown);
        }
        if reg.open >= self.max_connections {
            return Err(AttachError::Full);
        }
        let index = match reg.free_slots.pop() {
            Some(i) => {
                if let Some(slot) = reg.slots.get_mut(i) {
                    *slot = Some(outbox.clone());
                }
                i
            }
            None => {
                reg.slots.push(Some(outbox.clone()));
                reg.slots.len() - 1
            }
        };
        reg.open += 1;
        reg.open_peak = reg.open_peak.max(reg.open);
        Ok(Slot {
            hub: self.clone(),
            index,
        })
    }

    /// Open connections, handshaking ones included.
    pub fn open_connections(&self) -> usize {
        self.lock().open
    }

    /// Real bytes in the private queues of all open connections together (each bounded
    /// by `sendq`, CONN-4). For tests and monitoring.
    pub fn queued_bytes(&self) -> usize {
        self.lock()
            .slots
            .iter()
            .flatten()
            .map(|o| o.queued_bytes())
            .sum()
    }

    /// Bytes the log retains (bounded by `--log-budget`). For tests and monitoring.
    pub fn log_bytes(&self) -> usize {
        self.log.retained_bytes()
    }

    /// Users past the handshake.
    pub fn users(&self) -> usize {
        self.lock().members.len()
    }

    /// Registers `nick` for the connection whose outbox is `outbox`, and announces it:
    /// everyone, the newcomer included, gets `<nick> has joined the chat`, and the
    /// newcomer then `Connected to the server`, all in one atomic step (NICK-7).
    pub fn join(
        self: &Arc<Self>,
        nick: Nickname,
        outbox: &Arc<Outbox>,
    ) -> Result<Membership, JoinError> {
        self.join_with(nick, outbox, Catchup::Nothing)
    }

    /// [`Hub::join`], and then what `catchup` asks for, in the same atomic step: the
    /// backlog (HIST-5) or the events missed since an id (RESUME-2, RESUME-3), right
    /// after `Connected to the server`.
    pub fn join_with(
        self: &Arc<Self>,
        nick: Nickname,
        outbox: &Arc<Outbox>,
        catchup: Catchup,
    ) -> Result<Membership, JoinError> {
        let engine = self.lock().engine.clone();
        if let Some(engine) = engine {
            return self.join_cluster(&engine, nick, outbox, catchup);
        }
        self.sequence(|reg| {
            if reg.shutting_down {
                return Err(JoinError::ShuttingDown);
            }
            if reg.holder(&nick).is_some() {
                return Err(JoinError::Taken);
            }
            Ok(self.register(reg, nick, outbox, None, catchup))
        })
    }

    /// A join through the cluster: the user is registered here first, reading nothing
    /// yet, then the name is claimed in Redis; when the join comes back from the stream
    /// its cursor starts at its own join line ([`Hub::append_replicated`]).
    fn join_cluster(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        nick: Nickname,
        outbox: &Arc<Outbox>,
        catchup: Catchup,
    ) -> Result<Membership, JoinError> {
        let key = nick.key();
        {
            let mut reg = self.lock();
            if reg.shutting_down {
                return Err(JoinError::ShuttingDown);
            }
            if reg.holder(&nick).is_some() {
                return Err(JoinError::Taken);
            }
            reg.insert_member(&nick, outbox);
            if let Some(m) = reg.member_mut(&key) {
                m.catchup = Some(catchup);
            }
        }
        match engine.join(nick.clone()) {
            Ok(()) => Ok(Membership {
                hub: self.clone(),
                nick,
                key,
                outbox: outbox.clone(),
                why: "connection ended",
            }),
            Err(why) => {
                self.lock().take_member(&key, outbox);
                Err(match why {
                    Refused::Taken => JoinError::Taken,
                    Refused::Unavailable | Refused::NoSuchNick => JoinError::Unavailable,
                })
            }
        }
    }

    /// Seed profile (COMPAT-4): registers the client under the nickname it asked for, or,
    /// when that is invalid or taken, under a free variant of it, which it is told about
    /// in an `ERR nick-assigned` line right after `Connected to the server`. Choosing the
    /// name and registering it are one atomic step, so two clients asking for the same
    /// name at once get different ones.
    pub fn join_assigned(
        self: &Arc<Self>,
        asked: &str,
        outbox: &Arc<Outbox>,
        catchup: Catchup,
    ) -> Result<Membership, JoinError> {
        self.sequence(|reg| {
            if reg.shutting_down {
                return Err(JoinError::ShuttingDown);
            }
            // n members hold at most n of the n + 1 first variants: one of them is free.
            let tries = u32::try_from(reg.members.len())
                .unwrap_or(u32::MAX)
                .saturating_add(2);
            let Some((nick, why)) =
                chat_proto::seed::assign_nickname(asked, |n| reg.holder(n).is_some(), tries)
            else {
                return Err(JoinError::Taken);
            };
            let notice = why.map(|w| encode(&ServerMessage::nick_assigned(asked, &nick, w)));
            Ok(self.register(reg, nick, outbox, notice, catchup))
        })
    }

    /// Registers a nickname known to be free, announces it (NICK-7): the newcomer's
    /// cursor starts at its own join line, then `Connected to the server` and `notice`
    /// follow from its private queue.
    fn register(
        self: &Arc<Self>,
        reg: &mut Registry,
        nick: Nickname,
        outbox: &Arc<Outbox>,
        notice: Option<Line>,
        catchup: Catchup,
    ) -> Membership {
        let key = reg.insert_member(&nick, outbox);
        reg.append_then(&ServerMessage::Joined(nick.clone()), |reg, seq| {
            outbox.start_reading(reg.appender.cursor_at_last());
            let mut cut = Cut::new();
            let pushed = reg.welcome(
                outbox,
                seq,
                &self.lines.connected,
                notice.as_ref(),
                &catchup,
            );
            if pushed == Pushed::Overflow {
                cut.push((key.clone(), outbox.clone(), "sendq exceeded"));
            }
            cut
        });
        Membership {
            hub: self.clone(),
            nick,
            key,
            outbox: outbox.clone(),
            why: "connection ended",
        }
    }

    /// Removes the user of `outbox` if it is still registered under `key`, telling the
    /// others unless the server is shutting down. Its writer stops before its own leave
    /// notice. Returns whether it was registered.
    fn leave(&self, key: &NickKey, outbox: &Arc<Outbox>, why: &str) -> bool {
        let left = self.sequence(|reg| {
            let member = reg.take_member(key, outbox)?;
            match &reg.engine {
                // After the events this user caused, still on their way (CONN-9).
                Some(engine) if !reg.shutting_down => engine.stop(member.key.clone(), outbox),
                _ => outbox.stop_at(reg.appender.log().head()),
            }
            if !reg.shutting_down {
                reg.announce_leave(&member.nick);
            }
            Some((member.nick, reg.members.len()))
        });
        // Logged after the lock is released: writing a log line must not hold up routing.
        match left {
            Some((nick, users)) => {
                info!(nick = %nick, users, reason = why, "left");
                true
            }
            None => false,
        }
    }

    /// Cuts off the user of `outbox` (it overflowed its private queue, or lagged too far
    /// behind the log): it gets `ERR sendq-exceeded` best-effort and the others see it
    /// leave, once (CONN-4, CONN-2). A connection that is not a member is just cut off.
    pub(crate) fn cut_off(&self, outbox: &Arc<Outbox>, why: &'static str) {
        self.sequence(|reg| {
            outbox.cut_off();
            let key = reg
                .members
                .iter()
                .find(|m| Arc::ptr_eq(&m.outbox, outbox))
                .map(|m| m.key.clone());
            if let Some(key) = key {
                reg.cut(vec![(key, outbox.clone(), why)]);
            }
        });
    }

    /// Begins shutdown (CONN-6): refuses new connections and joins, appends
    /// `ERR server-shutdown` as the log's last entry, and makes it the last line of every
    /// open connection: what is in the log or queued for a client goes out first. No
    /// leave notices are sent from now on.
    pub fn shutdown(&self) {
        self.sequence(|reg| {
            if reg.shutting_down {
                return;
            }
            reg.shutting_down = true;
            let last = reg.append_line(&self.lines.server_shutdown);
            for outbox in reg.slots.iter().flatten() {
                outbox.finish(last, &self.lines.server_shutdown);
            }
            info!(connections = reg.open, "shutting down");
        });
        self.log.release_paused();
    }

    /// The online user who makes `nick` unavailable, if any: the same name in any case
    /// (NICK-3) or a lookalike (NICK-LOOK-1). For the text of `ERR nick-taken`.
    pub fn holder(&self, nick: &Nickname) -> Option<Nickname> {
        self.lock().holder(nick).map(|m| m.nick.clone())
    }

    /// True once [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// The cluster engine, if this hub is a node of one.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.lock().engine.clone()
    }

    /// Cluster: appends an event read back from the stream (in stream order). When it is
    /// the join of `joined_here`, a user of this node still waiting for it, that user
    /// starts reading at its own join line and then gets `Connected to the server`.
    /// Wakes nobody: the reader publishes once per batch.
    pub(crate) fn append_replicated(
        &self,
        msg: &ServerMessage,
        origin: EntryId,
        joined_here: Option<&NickKey>,
    ) {
        let mut reg = self.lock();
        reg.append_then_from(msg, Some(origin), |reg, seq| {
            let mut cut = Cut::new();
            let Some(member) = joined_here.and_then(|k| reg.member(k)) else {
                return cut;
            };
            if member.outbox.pos() == u64::MAX {
                let (key, outbox) = (member.key.clone(), member.outbox.clone());
                outbox.start_reading(reg.appender.cursor_at_last());
                let catchup = reg
                    .member_mut(&key)
                    .and_then(|m| m.catchup.take())
                    .unwrap_or(Catchup::Nothing);
                let connected = &self.lines.connected;
                if reg.welcome(&outbox, seq, connected, None, &catchup) == Pushed::Overflow {
                    cut.push((key, outbox, "sendq exceeded"));
                }
            }
            cut
        });
    }

    /// Cluster: a private line (`/msg`) read from the stream, for `outboxes` (local
    /// users, or leaving ones whose writers wait for their leave), after everything
    /// appended so far. A queue that overflows cuts its user off (CONN-4).
    pub(crate) fn deliver_to(&self, outboxes: &[Arc<Outbox>], line: &Line) {
        let overflowed: Vec<Arc<Outbox>> = {
            let reg = self.lock();
            let head = reg.appender.log().head();
            outboxes
                .iter()
                .filter(|o| o.push_after(head, line) == Pushed::Overflow)
                .cloned()
                .collect()
        };
        for outbox in overflowed {
            self.cut_off(&outbox, "sendq exceeded");
        }
    }

    /// Cluster: the outbox of the member registered under `key`.
    pub(crate) fn outbox_of(&self, key: &NickKey) -> Option<Arc<Outbox>> {
        self.lock().member(key).map(|m| m.outbox.clone())
    }

    /// Cluster: the key `outbox`'s member is registered under now; `guess` first (one
    /// lookup), else by a scan (rare: only when renames raced a join).
    pub(crate) fn key_of(&self, outbox: &Arc<Outbox>, guess: NickKey) -> Option<NickKey> {
        let reg = self.lock();
        if reg
            .member(&guess)
            .is_some_and(|m| Arc::ptr_eq(&m.outbox, outbox))
        {
            return Some(guess);
        }
        reg.members
            .iter()
            .find(|m| Arc::ptr_eq(&m.outbox, outbox))
            .map(|m| m.key.clone())
    }
}

impl Registry {
    /// Every append goes through here: the entry goes into the log (with the engine's
    /// id in a cluster) and history moves its pin (HIST-1). The store reads the log on
    /// its own thread (STORE-2): it is told only which entries are not public, and when
    /// the log evicted entries. (A cluster has no store: `--store` with `--engine` is
    /// refused.)
    fn push_entry(&mut self, bytes: &[u8], public: bool, origin: Option<EntryId>) -> Appended {
        if !public && let Some(store) = &self.store {
            store.not_public(self.appender.log().head() + 1);
        }
        let appended = match origin {
            Some(origin) => self.appender.append_from(bytes, origin),
            None => self.appender.append(bytes),
        };
        self.retention
            .appended(&self.appender, appended.id.seq, public);
        if let Some(below) = appended.evicted_below {
            let log = self.appender.log().clone();
            self.retention.evicted(&log, below);
            if let Some(store) = &self.store {
                store.evicted(below);
            }
        }
        appended
    }

    /// The block a joining client gets after `Connected to the server`, its join notice
    /// being entry `join`: `None` when it asked for none.
    fn catchup_block(&self, catchup: &Catchup, join: u64) -> Option<Vec<u8>> {
        let epoch = self.appender.log().epoch();
        match catchup {
            Catchup::Nothing => None,
            Catchup::Backlog(form) => Some(self.retention.backlog_block(epoch, join, *form)),
            Catchup::BacklogIfAny(form) => self
                .retention
                .any_before(join)
                .then(|| self.retention.backlog_block(epoch, join, *form)),
            Catchup::Resume(id, form) => Some(
                self.retention
                    .resume_block(epoch, id, join, *form)
                    .unwrap_or_else(|| {
                        let mut out =
                            ServerMessage::error(ErrorCode::HistoryGap, texts::HISTORY_GAP)
                                .to_bytes();
                        out.extend(self.retention.backlog_block(epoch, join, *form));
                        out
                    }),
            ),
        }
    }

    /// What a newcomer gets right after its join notice (entry `seq`): `Connected to
    /// the server`, `notice`, and the block `catchup` asks for. With a catchup they go
    /// as one item: an item always fits an empty queue (CONN-4), and a block may be
    /// larger than `--sendq`.
    fn welcome(
        &self,
        outbox: &Outbox,
        seq: u64,
        connected: &Line,
        notice: Option<&Line>,
        catchup: &Catchup,
    ) -> Pushed {
        let lines = std::iter::once(connected).chain(notice);
        match self.catchup_block(catchup, seq) {
            None => lines
                .map(|line| outbox.push_after(seq, line))
                .fold(
                    Pushed::Queued,
                    |a, b| if b == Pushed::Queued { a } else { b },
                ),
            Some(block) => {
                let mut item: Vec<u8> = lines.flat_map(|l| l.iter().copied()).collect();
                item.extend_from_slice(&block);
                outbox.push_after(seq, &Line::from(item))
            }
        }
    }

    /// Gives the member registered under `key` the nickname `nick` (its lookalike
    /// skeleton moves with it, NICK-LOOK-1).
    fn rekey(&mut self, key: &NickKey, nick: &Nickname) {
        let new_key = nick.key();
        if let Some(index) = self.index.remove(key) {
            self.index.insert(new_key.clone(), index);
            if let Some(m) = self.members.get_mut(index) {
                self.skeletons.remove(&m.nick.skeleton());
                self.skeletons.insert(nick.skeleton(), new_key.clone());
                m.nick = nick.clone();
                m.key = new_key;
            }
        }
    }

    /// Adds a member known to be free (name and lookalike skeleton) under its folded
    /// nickname, which it returns.
    fn insert_member(&mut self, nick: &Nickname, outbox: &Arc<Outbox>) -> NickKey {
        let key = nick.key();
        self.index.insert(key.clone(), self.members.len());
        self.members.push(Member {
            nick: nick.clone(),
            key: key.clone(),
            outbox: outbox.clone(),
            catchup: None,
        });
        self.skeletons.insert(nick.skeleton(), key.clone());
        key
    }

    /// A public notice caused by member `by` (an operator's, §18): appended here, or
    /// proposed to the cluster (which checks that `by` is still this node's user).
    fn announce(&mut self, msg: &ServerMessage, by: &Nickname) {
        match &self.engine {
            Some(engine) => {
                engine.notice(by.clone(), msg);
            }
            None => {
                self.append(msg);
            }
        }
    }

    /// Tells everyone `nick` left: appended here, or proposed to the cluster.
    fn announce_leave(&mut self, nick: &Nickname) {
        match &self.engine {
            Some(engine) => engine.leave(nick.clone()),
            None => {
                self.append(&ServerMessage::Left(nick.clone()));
            }
        }
    }

    /// Appends a public event, encoded once (see [`Registry::append_then`]). Returns its
    /// seq.
    fn append(&mut self, msg: &ServerMessage) -> u64 {
        self.append_then(msg, |_, _| Cut::new())
    }

    /// The one path into the log: appends `msg`, lets `then` act right after it (before
    /// anything else is appended; it returns members to cut off), then handles the
    /// budget: members whose cursor was in an evicted segment are cut off, and their
    /// leave notices appended in turn. Returns the seq of `msg`.
    fn append_then(
        &mut self,
        msg: &ServerMessage,
        then: impl FnOnce(&mut Self, u64) -> Cut,
    ) -> u64 {
        self.append_then_from(msg, None, then)
    }

    /// [`Registry::append_then`] for an event an engine ordered and named (`origin`).
    fn append_then_from(
        &mut self,
        msg: &ServerMessage,
        origin: Option<EntryId>,
        then: impl FnOnce(&mut Self, u64) -> Cut,
    ) -> u64 {
        if self.shutting_down {
            // `ERR server-shutdown` was the last entry: nothing goes after it.
            return self.appender.log().head();
        }
        let appended = with_encoded(msg, |bytes| self.push_entry(bytes, true, origin));
        let cut = then(self, appended.id.seq);
        if let Some(below) = appended.evicted_below {
            self.evict(below);
        }
        self.cut(cut);
        appended.id.seq
    }

    /// Appends an already encoded line (the shutdown notice). Returns its seq.
    fn append_line(&mut self, line: &[u8]) -> u64 {
        let appended = self.push_entry(line, false, None);
        if let Some(below) = appended.evicted_below {
            self.evict(below);
        }
        appended.id.seq
    }

    /// Cuts off every connection whose cursor is below `below` (its entries were evicted
    /// from the log): members leave, with notices; others are just closed.
    fn evict(&mut self, below: u64) {
        let mut victims = Cut::new();
        self.evicted(below, &mut victims);
        self.cut(victims);
    }

    /// Adds the members whose cursor is below `below` to `cut`, and cuts off the other
    /// connections reading there (closing ones, which are no longer members).
    fn evicted(&self, below: u64, cut: &mut Cut) {
        for m in &self.members {
            if m.outbox.pos() < below {
                cut.push((m.key.clone(), m.outbox.clone(), "lost its place in the log"));
            }
        }
        for outbox in self.slots.iter().flatten() {
            if outbox.pos() < below {
                outbox.cut_off();
            }
        }
    }

    /// Removes every cut-off member and tells the others it left (CONN-2, CONN-4); a
    /// leave notice can evict further segments, whose readers are handled the same way.
    fn cut(&mut self, mut cut: Cut) {
        while let Some((key, outbox, why)) = cut.pop() {
            outbox.cut_off();
            let Some(member) = self.take_member(&key, &outbox) else {
                continue;
            };
            info!(nick = %member.nick, users = self.members.len(), reason = why, "left");
            if self.shutting_down {
                continue;
            }
            if let Some(engine) = &self.engine {
                engine.leave(member.nick);
                continue;
            }
            let appended = with_encoded(&ServerMessage::Left(member.nick), |bytes| {
                self.push_entry(bytes, true, None)
            });
            if let Some(below) = appended.evicted_below {
                self.evicted(below, &mut cut);
            }
        }
    }

    fn is_member(&self, key: &NickKey, outbox: &Arc<Outbox>) -> bool {
        self.member(key)
            .is_some_and(|m| Arc::ptr_eq(&m.outbox, outbox))
    }

    fn member(&self, key: &NickKey) -> Option<&Member> {
        self.index.get(key).and_then(|&i| self.members.get(i))
    }

    fn member_mut(&mut self, key: &NickKey) -> Option<&mut Member> {
        self.index.get(key).and_then(|&i| self.members.get_mut(i))
    }

    /// The member who makes `nick` unavailable: the same name in any case (NICK-3) or a
    /// lookalike (NICK-LOOK-1).
    fn holder(&self, nick: &Nickname) -> Option<&Member> {
        let key = nick.key();
        match self.member(&key) {
            Some(m) => Some(m),
            None => self.member(self.skeletons.get(&nick.skeleton())?),
        }
    }

    /// Removes the member registered under `key` if it is the one of `outbox`.
    fn take_member(&mut self, key: &NickKey, outbox: &Arc<Outbox>) -> Option<Member> {
        if !self.is_member(key, outbox) {
            return None;
        }
        let index = *self.index.get(key)?;
        if index >= self.members.len() {
            return None;
        }
        let member = self.members.swap_remove(index);
        self.moderation.forget_member(&member.outbox);
        self.index.remove(&member.key);
        self.skeletons.remove(&member.nick.skeleton());
        if let Some(moved) = self.members.get(index) {
            self.index.insert(moved.key.clone(), index);
        }
        Some(member)
    }

    /// Queues `line` privately to one member, after everything appended so far;
    /// records it in `cut` on overflow.
    fn send_private(&self, key: &NickKey, outbox: &Arc<Outbox>, line: &Line, cut: &mut Cut) {
        if outbox.push_after(self.appender.log().head(), line) == Pushed::Overflow {
            cut.push((key.clone(), outbox.clone(), "sendq exceeded"));
        }
    }
}

/// A connection's place under `max_clients`. Dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    hub: Arc<Hub>,
    index: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let trim = {
            let mut reg = self.hub.lock();
            if let Some(slot) = reg.slots.get_mut(self.index)
                && let Some(outbox) = slot.take()
            {
                reg.moderation.forget_connection(&outbox);
                reg.free_slots.push(self.index);
                reg.open = reg.open.saturating_sub(1);
            }
            // Many connections gone (a crowd, or an attack, left): time to give memory
            // back. `reg.slots` itself keeps its length (slots are reused).
            let crowd_left = reg.open_peak >= TRIM_AFTER && reg.open <= reg.open_peak / 4;
            let last_gone = reg.open == 0 && reg.trim_when_empty;
            if crowd_left || last_gone {
                reg.shrink();
            }
            if crowd_left {
                reg.open_peak = reg.open;
                reg.trim_when_empty = reg.open > 0;
            } else if last_gone {
                reg.trim_when_empty = false;
            }
            crowd_left || last_gone
        };
        if trim {
            crate::allocator::give_back();
        }
    }
}

/// Connections that must have come and gone before giving memory back is worth it.
const TRIM_AFTER: usize = 64;

/// A registered user. Every event the user causes goes through here; dropping it removes
/// the user (once) and tells the others (CONN-2).
#[derive(Debug)]
pub struct Membership {
    hub: Arc<Hub>,
    nick: Nickname,
    key: NickKey,
    outbox: Arc<Outbox>,
    /// Why the user leaves, for the log; set by [`Membership::leave`].
    why: &'static str,
}

impl Membership {
    /// The user's current nickname.
    pub fn nick(&self) -> &Nickname {
        &self.nick
    }

    /// The user's outbox.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Chat text to everyone, the sender included, as `<nick>: <text>` (CHAT-1, CHAT-2):
    /// one entry in the log. Wakes nobody: call [`Hub::publish`] after a batch.
    pub fn say(&self, text: Text) {
        let mut reg = self.hub.lock();
        if !reg.is_member(&self.key, &self.outbox) {
            return;
        }
        if let Some(engine) = &reg.engine {
            engine.say(self.nick.clone(), text);
            return;
        }
        reg.append(&ServerMessage::Chat {
            from: self.nick.clone(),
            text,
        });
    }

    /// `/msg <to> <text>` (CMD-MSG-1..5): to the recipient and the sender, once if they
    /// are the same user. Returns `false` when nobody connected has that nickname.
    pub fn private(&self, to: &Nickname, text: Text) -> bool {
        self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return true;
            }
            if let Some(engine) = &reg.engine {
                let Some(to) = engine.member(&to.key()) else {
                    return false;
                };
                engine.private(self.nick.clone(), to, text, &self.outbox);
                return true;
            }
            let Some(target) = reg.member(&to.key()) else {
                return false;
            };
            let line = encode(&ServerMessage::Private {
                from: self.nick.clone(),
                to: target.nick.clone(),
                text,
            });
            let mut cut = Cut::new();
            reg.send_private(&target.key, &target.outbox, &line, &mut cut);
            if !Arc::ptr_eq(&target.outbox, &self.outbox) {
                reg.send_private(&self.key, &self.outbox, &line, &mut cut);
            }
            reg.cut(cut);
            true
        })
    }

    /// `/nick <new>` (CMD-NICK-1..3): renames atomically and tells everyone.
    pub fn rename(&mut self, new: Nickname) -> Result<(), RenameError> {
        let new_key = new.key();
        let engine = self.hub.lock().engine.clone();
        if let Some(engine) = engine {
            return self.rename_cluster(&engine, new);
        }
        let old = self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return Err(RenameError::Gone);
            }
            if new == self.nick {
                return Err(RenameError::Unchanged);
            }
            if reg.holder(&new).is_some_and(|m| m.key != self.key) {
                return Err(RenameError::Taken);
            }
            // A member (checked above): registered under `self.key`.
            reg.rekey(&self.key, &new);
            let old = std::mem::replace(&mut self.nick, new.clone());
            self.key = new_key.clone();
            reg.append(&ServerMessage::Renamed {
                old: old.clone(),
                new: new.clone(),
            });
            Ok(old)
        })?;
        info!(old = %old, new = %new, "renamed");
        Ok(())
    }

    /// `/nick` through the cluster: Redis checks and claims the new name and announces
    /// the rename in one step; the local registry follows.
    fn rename_cluster(&mut self, engine: &Engine, new: Nickname) -> Result<(), RenameError> {
        if !self.hub.lock().is_member(&self.key, &self.outbox) {
            return Err(RenameError::Gone);
        }
        if new == self.nick {
            return Err(RenameError::Unchanged);
        }
        let (old, old_key, new_key) = (self.nick.clone(), self.key.clone(), new.key());
        // The registry knows the new name first: an entry that reaches this node after
        // the rename finds the user under it, one from before under the old name
        // (through the engine's pending renames).
        {
            let mut reg = self.hub.lock();
            // The same name or a lookalike held by someone else (NICK-LOOK-1).
            if reg.holder(&new).is_some_and(|h| h.key != old_key) {
                return Err(RenameError::Taken);
            }
            reg.rekey(&old_key, &new);
        }
        if let Err(why) = engine.rename(old.clone(), new.clone()) {
            self.hub.lock().rekey(&new_key, &old);
            return Err(match why {
                Refused::Taken => RenameError::Taken,
                Refused::Unavailable | Refused::NoSuchNick => RenameError::Unavailable,
            });
        }
        info!(old = %old, new = %new, "renamed");
        self.nick = new;
        self.key = new_key;
        Ok(())
    }

    /// `/who` (CMD-WHO-1, CMD-WHO-2): the sorted list of users, to the sender alone, as
    /// one private item (however many lines it takes). In a cluster it is answered when
    /// the node's reader reaches the request in the stream.
    pub fn who(&self) {
        self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return;
            }
            if let Some(engine) = &reg.engine {
                engine.who(&self.outbox);
                return;
            }
            let names = reg.members.iter().map(|m| m.nick.clone()).collect();
            let mut bytes = Vec::new();
            for msg in users_lines(names) {
                msg.encode(&mut bytes);
            }
            let mut cut = Cut::new();
            reg.send_private(&self.key, &self.outbox, &Line::from(bytes), &mut cut);
            reg.cut(cut);
        });
    }

    /// `/history [count]` (HIST-4): a block of the newest public events so far, to this
    /// user alone, as one private item.
    pub fn history(&self, count: Option<u32>, form: Form) {
        self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return;
            }
            let head = reg.appender.log().head();
            let epoch = reg.appender.log().epoch();
            let count = count.map_or(reg.retention.backlog(), |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
            let block = reg
                .retention
                .block(epoch, 1, head, count, form, false)
                .unwrap_or_default();
            let mut cut = Cut::new();
            reg.send_private(&self.key, &self.outbox, &Line::from(block), &mut cut);
            reg.cut(cut);
        });
    }

    /// Queues a reply (an `ERR` line) to this user alone, after every event appended so
    /// far. A reply that overflows the queue cuts the user off (CONN-4).
    pub fn reply(&self, line: &Line) {
        let engine = self.hub.lock().engine.clone();
        if let Some(engine) = engine {
            // After this user's events still on their way through the cluster (SRV-5).
            if !engine.reply(&self.outbox, line) {
                self.hub.cut_off(&self.outbox, "cluster queue full");
            }
            return;
        }
        if self.outbox.push(line) == Pushed::Overflow {
            self.hub.cut_off(&self.outbox, "sendq exceeded");
        }
    }

    /// Leaves, with a reason for the log (`/quit`, end of stream, ...).
    pub fn leave(mut self, why: &'static str) {
        self.why = why;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.key, &self.outbox, self.why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nickname {
        Nickname::new(s).unwrap()
    }

    fn text(s: &str) -> Text {
        Text::new(s).unwrap()
    }

    /// Lines for `ob` in the order its writer would send them, without their LF.
    fn take(ob: &Outbox) -> Vec<String> {
        let mut out = Vec::new();
        ob.drain_into(&mut out);
        out.iter()
            .map(|l| String::from_utf8(l[..l.len() - 1].to_vec()).unwrap())
            .collect()
    }

    fn user(hub: &Arc<Hub>, name: &str, limit: usize) -> (Membership, Arc<Outbox>) {
        let ob = hub.new_outbox(limit);
        let m = hub.join(nick(name), &ob).unwrap();
        (m, ob)
    }

    #[test]
    fn nick_7_join_notice_then_connected() {
        let hub = Hub::new(10);
        let (_a, a_ob) = user(&hub, "alice", 1 << 20);
        assert_eq!(
            take(&a_ob),
            ["alice has joined the chat", "Connected to the server"]
        );
        let (_b, b_ob) = user(&hub, "bob", 1 << 20);
        assert_eq!(take(&a_ob), ["bob has joined the chat"]);
        assert_eq!(
            take(&b_ob),
            ["bob has joined the chat", "Connected to the server"]
        );
    }

    #[test]
    fn nick_3_taken_case_insensitive() {
        let hub = Hub::new(10);
        let (_a, _) = user(&hub, "Alice", 1 << 20);
        let ob = hub.new_outbox(1 << 20);
        assert_eq!(hub.join(nick("alice"), &ob).err(), Some(JoinError::Taken));
        assert_eq!(hub.users(), 1);
    }

    /// CONN-2: the guard leaves exactly once, also when dropped by a panic's unwinding.
    #[test]
    fn conn_2_guard_leaves_once_even_on_panic() {
        let hub = Hub::new(10);
        let (_a, a_ob) = user(&hub, "alice", 1 << 20);
        let (b, _) = user(&hub, "bob", 1 << 20);
        take(&a_ob);
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owned_by_the_crashing_task = b;
            panic!("a bug in a connection task");
        }));
        assert!(crashed.is_err());
        assert_eq!(take(&a_ob), ["bob has left the chat"]);
        assert_eq!(hub.users(), 1);
    }

    /// DEFECTS.md item 3: a stale guard never removes a newer user of the same name; a
    /// user cut off leaves once.
    #[test]
    fn stale_guard_does_not_remove_new_user() {
        let hub = Hub::new(10);
        let (_a, a_ob) = user(&hub, "alice", 1 << 20);
        let (old_bob, old_ob) = user(&hub, "bob", 1 << 20);
        take(&a_ob);
        hub.cut_off(&old_ob, "test");
        hub.cut_off(&old_ob, "test");
        assert!(!old_ob.is_open());
        assert_eq!(take(&a_ob), ["bob has left the chat"]);
        let (_new_bob, _) = user(&hub, "BOB", 1 << 20);
        take(&a_ob);
        drop(old_bob);
        assert_eq!(take(&a_ob), Vec::<String>::new());
        assert_eq!(hub.users(), 2);
    }

    #[test]
    fn cmd_nick_rename_rules() {
        let hub = Hub::new(10);
        let (mut a, a_ob) = user(&hub, "alice", 1 << 20);
        let (_b, _) = user(&hub, "bob", 1 << 20);
        take(&a_ob);
        assert_eq!(a.rename(nick("alice")), Err(RenameError::Unchanged));
        assert_eq!(a.rename(nick("BOB")), Err(RenameError::Taken));
        assert_eq!(a.rename(nick("Alice")), Ok(()));
        assert_eq!(a.rename(nick("zed")), Ok(()));
        assert_eq!(
            take(&a_ob),
            ["alice is now known as Alice", "Alice is now known as zed"]
        );
        // The old name is free; the new one is taken.
        let ob = hub.new_outbox(1 << 20);
        assert!(hub.join(nick("alice"), &ob).is_ok());
        let ob = hub.new_outbox(1 << 20);
        assert_eq!(hub.join(nick("ZED"), &ob).err(), Some(JoinError::Taken));
    }

    /// NICK-LOOK-1: a lookalike of an online user is taken, at join and at `/nick`; the
    /// user may take a lookalike of their own name; the skeleton is freed on leave.
    #[test]
    fn nick_look_1_lookalikes_are_taken() {
        let hub = Hub::new(10);
        let (mut a, _) = user(&hub, "alice", 1 << 20);
        let ob = hub.new_outbox(1 << 20);
        for lookalike in ["aIice", "a1ice", "ALICE"] {
            assert_eq!(hub.join(nick(lookalike), &ob).err(), Some(JoinError::Taken));
            assert_eq!(hub.holder(&nick(lookalike)), Some(nick("alice")));
        }
        assert_eq!(hub.holder(&nick("bob")), None);
        let (mut b, _) = user(&hub, "bob", 1 << 20);
        assert_eq!(b.rename(nick("a1ice")), Err(RenameError::Taken));
        assert_eq!(a.rename(nick("a1ice")), Ok(()));
        assert_eq!(hub.holder(&nick("alice")), Some(nick("a1ice")));
        assert_eq!(a.rename(nick("carol")), Ok(()));
        assert_eq!(hub.holder(&nick("aIice")), None);
        drop(a);
        assert_eq!(hub.holder(&nick("car0l")), None);
        assert!(hub.join(nick("car0l"), &ob).is_ok());
    }

    #[test]
    fn cmd_msg_private_routing() {
        let hub = Hub::new(10);
        let (a, a_ob) = user(&hub, "alice", 1 << 20);
        let (_b, b_ob) = user(&hub, "bob", 1 << 20);
        let (_c, c_ob) = user(&hub, "carol", 1 << 20);
        for ob in [&a_ob, &b_ob, &c_ob] {
            take(ob);
        }
        assert!(a.private(&nick("BOB"), text("hi")));
        assert_eq!(take(&a_ob), ["alice -> bob: hi"]);
        assert_eq!(take(&b_ob), ["alice -> bob: hi"]);
        assert!(take(&c_ob).is_empty());
        assert!(a.private(&nick("alice"), text("me")));
        assert_eq!(take(&a_ob), ["alice -> alice: me"]);
        assert!(!a.private(&nick("nobody"), text("x")));
    }

    /// Replies and private messages are ordered events: after every public event
    /// appended before them, before any appended after them.
    #[test]
    fn private_lines_are_ordered_with_the_log() {
        let hub = Hub::new(10);
        let (a, a_ob) = user(&hub, "alice", 1 << 20);
        let (b, b_ob) = user(&hub, "bob", 1 << 20);
        take(&a_ob);
        take(&b_ob);
        a.say(text("one"));
        b.private(&nick("alice"), text("psst"));
        b.say(text("two"));
        a.who();
        a.say(text("three"));
        assert_eq!(
            take(&a_ob),
            [
                "alice: one",
                "bob -> alice: psst",
                "bob: two",
                "Users online: alice, bob",
                "alice: three"
            ]
        );
    }

    #[test]
    fn conn_1_slots_count_and_free() {
        let hub = Hub::new(2);
        let ob = || hub.new_outbox(1 << 20);
        let s1 = hub.attach(&ob()).unwrap();
        let _s2 = hub.attach(&ob()).unwrap();
        assert_eq!(hub.attach(&ob()).err(), Some(AttachError::Full));
        drop(s1);
        assert_eq!(hub.open_connections(), 1);
        assert!(hub.attach(&ob()).is_ok());
    }

    /// CONN-6: `ERR server-shutdown` as the last line of every open connection, after
    /// what was already in the log for it; no leave notices.
    #[test]
    fn conn_6_shutdown_notice_last_and_no_leaves() {
        let hub = Hub::new(10);
        let (a, a_ob) = user(&hub, "alice", 1 << 20);
        let (b, b_ob) = user(&hub, "bob", 1 << 20);
        let _sa = hub.attach(&a_ob).unwrap();
        let _sb = hub.attach(&b_ob).unwrap();
        let handshaking = hub.new_outbox(1 << 20);
        let _sh = hub.attach(&handshaking).unwrap();
        take(&a_ob);
        take(&b_ob);
        a.say(text("before"));
        hub.shutdown();
        a.say(text("after"));
        drop(b);
        drop(a);
        let notice = "ERR server-shutdown Server is shutting down";
        assert_eq!(take(&a_ob), ["alice: before", notice]);
        assert_eq!(take(&b_ob), ["alice: before", notice]);
        assert_eq!(take(&handshaking), [notice]);
        let ob = hub.new_outbox(1 << 20);
        assert_eq!(hub.attach(&ob).err(), Some(AttachError::ShuttingDown));
    }

    /// Past the log budget, the members whose cursor was in the evicted segment are cut
    /// off (each leaves once); the others keep everything.
    #[test]
    fn conn_4_evicted_readers_cut_off_once() {
        let hub = Hub::with_log_budget(10, crate::log::MIN_BUDGET);
        let (a, a_ob) = user(&hub, "alice", 1 << 20);
        let (_slow, slow_ob) = user(&hub, "slow", 1 << 20);
        take(&a_ob);
        let long = "x".repeat(900);
        let mut seen = Vec::new();
        for _ in 0..2000 {
            a.say(text(&long));
            seen.extend(take(&a_ob));
            if !slow_ob.is_open() {
                break;
            }
        }
        assert!(!slow_ob.is_open(), "the lagging reader was not cut off");
        seen.extend(take(&a_ob));
        assert_eq!(
            seen.iter()
                .filter(|l| *l == "slow has left the chat")
                .count(),
            1
        );
        assert_eq!(hub.users(), 1);
        assert!(hub.log_bytes() <= hub.log().budget_bytes());
    }
}
