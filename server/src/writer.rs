//! A connection's output: its [`Outbox`] (a cursor into the chat's [`Log`] plus a small
//! private queue) and the [`Writer`] that drains both into the socket, in order.
//!
//! Why it looks like this (CONN-3, CONN-4, SRV-4):
//! - **Public lines are not queued per recipient.** A broadcast is one entry in the log;
//!   a member's writer holds a [`Cursor`] and, when woken, hands everything from its
//!   cursor to the head to the kernel. Nothing is done per recipient at broadcast time
//!   but (at most once per batch) a wake-up.
//! - **Log bytes are not copied per recipient either (plain TCP).** When the log's
//!   segments are in its memfd and the next thing to write is a run of log bytes, the
//!   writer sends that run with `sendfile` ([`Transport::poll_send_file`]), together
//!   with the runs of the following segments (whose bytes follow in the memfd):
//!   the kernel references the log's pages from the socket instead of copying the bytes
//!   into it, which was about half of the server's CPU per delivery. A partial send moves
//!   the cursor exactly as a partial `writev` does; `EAGAIN` waits for writability.
//!   Everything else keeps the `writev` path: private lines (a run planned behind one
//!   goes in the same `writev`), tagged output (a prefix per entry), TLS (rustls must
//!   encrypt the bytes), and heap segments (no memfd, or `CHAT_SERVER_LOG_MEMORY=heap`).
//! - **What only this client gets** (replies, `/who`, `ERR` lines, `/msg`) goes into a
//!   private queue. Each item is stamped with the log's head when it was made and goes
//!   out after every log entry up to that seq and before any later one: replies are
//!   ordered events, merged with the log by seq, never reordered against it.
//! - **The private queue is bounded in real bytes** (`--sendq`): each item counts its
//!   line rounded up to the allocator's granularity plus the `Arc` header and an
//!   allocation's overhead, and the queue's own slots are counted at their capacity. A
//!   push past the bound cuts the client off (`ERR sendq-exceeded`, best effort), except
//!   that one item always fits into an empty queue (a `/who` reply listing every user is
//!   one item). So one client's private queue never holds more than `sendq` plus one
//!   reply.
//! - **Lag, not bursts, cuts a reader off.** The log decides when a cursor has lost its
//!   place (evicted past `--log-budget`); the writer itself cuts its client off when the
//!   oldest line it still has to write is older than `--max-lag` (the line's own time
//!   stamp, so a reader that keeps up at its own pace through a long burst is never cut).
//!
//! **Tagged output (the seam for protocol 1.1).** A connection may opt into a per-entry
//! prefix with [`Outbox::set_prefix`]: a [`LinePrefix`] writes, from the entry's id and
//! time, the bytes that go in front of each log line. Such a writer then hands each entry
//! to `writev` as two slices, the prefix (built in a scratch buffer of the writer) and
//! the shared line bytes; connections that did not opt in keep the one-slice-per-segment
//! path and pay nothing for the feature. Private lines carry no prefix. The wire format
//! of the prefix is the protocol's business, not this module's.
//!
//! **Plain TCP or TLS.** The writer is generic over its [`Transport`]. Over TLS the slices
//! of one plan are handed to rustls in one call (it encrypts them into records, up to
//! its buffer limit, and sends those in one vectored write), and when nothing more is
//! planned the writer flushes what rustls still holds before it parks: one flush for the
//! whole queue. Plain TCP's flush is a no-op that the compiler removes.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use chat_proto::ServerMessage;

use crate::hub::Hub;
use crate::log::{Cursor, Entry, Log, Run};
use crate::transport::Transport;

/// One encoded server line, LF included, shared where it is sent to several clients.
pub type Line = Arc<[u8]>;

/// Most buffers handed to one `writev` (Linux's `IOV_MAX`/`UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

/// Most bytes one `sendfile` is asked for when it joins runs of several segments. Joined
/// without a bound, a writer far behind asked for megabytes in one call, and
/// `join_storm.rs` failed in 2 of 4 runs (newcomers waited 114 and 143 ms for `NICK`);
/// with this bound it passed. The likely reason (not traced): the kernel moves a
/// `sendfile` through a pipe of 16 pages (64 KiB) at a time, in a loop with no point
/// where the scheduler can step in (this machine's kernel is `PREEMPT_NONE`), until the
/// socket is full. One run is never cut (a segment is at most 64 KiB).
const SEND_FILE_MAX: usize = 128 * 1024;

/// Writes per poll before the writer yields to other tasks (fairness under load).
const WRITES_PER_POLL: usize = 16;

/// What a queued private line costs besides its bytes: the `Arc` header (two counts),
/// the allocator's own overhead for one allocation, and two queue slots (a queue's
/// capacity is at most twice its longest length, and idle queues are shrunk).
pub const PRIVATE_ITEM_OVERHEAD: usize = 16 + 16 + 2 * std::mem::size_of::<Private>();

/// Not yet a reader of the log (handshaking, or done).
const NO_CURSOR: u64 = u64::MAX;

thread_local! {
    /// Scratch buffer for encoding, so that a line costs one allocation (the `Arc`).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes `msg` once into a shareable [`Line`].
pub fn encode(msg: &ServerMessage) -> Line {
    with_encoded(msg, |bytes| Line::from(bytes))
}

/// Encodes `msg` into a scratch buffer and hands the bytes to `f` (no allocation).
pub fn with_encoded<R>(msg: &ServerMessage, f: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            msg.encode(&mut buf);
            f(&buf)
        }
        // Re-entered (cannot happen today): fall back to a fresh buffer.
        Err(_) => f(&msg.to_bytes()),
    })
}

/// The line a client that lost its place gets (CONN-4).
pub(crate) fn sendq_exceeded() -> ServerMessage {
    ServerMessage::error(
        chat_proto::ErrorCode::SendqExceeded,
        chat_proto::server::texts::SENDQ_EXCEEDED,
    )
}

/// Writes what goes in front of each log line for a connection that opted into tagged
/// output (see the module documentation).
pub trait LinePrefix: Send + Sync + std::fmt::Debug {
    /// Appends the prefix of `entry` to `out`. Must be the same bytes every time it is
    /// called for the same entry (a write can stop inside a prefix and resume).
    fn write_prefix(&self, entry: &Entry<'_>, out: &mut Vec<u8>);
}

/// What happened to a pushed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The line did not fit: the client is now cut off (its queue is dropped and its
    /// writer sends `ERR sendq-exceeded` best-effort, then closes). The caller must
    /// remove it from the registry so the others see it leave (CONN-4).
    Overflow,
    /// The outbox no longer takes lines (closing or cut off); the line was dropped.
    Closed,
}

/// A line for this client alone, to go out after log entry `after`.
#[derive(Debug)]
struct Private {
    after: u64,
    line: Line,
}

impl Private {
    /// Real bytes of one queued line (its slot is counted with the queue).
    fn cost(&self) -> usize {
        self.line.len().next_multiple_of(8) + PRIVATE_ITEM_OVERHEAD
    }
}

#[derive(Debug)]
enum Phase {
    /// Taking lines.
    Open,
    /// Send what is queued (log entries up to `last`), then shut down; take no more.
    Closing,
    /// Drop what is queued; write `notice` best-effort without waiting, then close.
    /// `failed`: the socket error that ended it, if one did (the user's leave reason).
    Killed {
        notice: Option<Line>,
        failed: Option<io::ErrorKind>,
    },
}

#[derive(Debug)]
struct State {
    /// Private lines not yet taken by the writer.
    incoming: VecDeque<Private>,
    /// Real bytes of private lines queued or held by the writer, slots included.
    bytes: usize,
    /// The cursor, from the join until the writer takes it.
    cursor: Option<Cursor>,
    /// Last log seq this client gets (`u64::MAX` while it stays).
    last: u64,
    /// A new prefix setting for the writer to take.
    prefix: Option<Option<Arc<dyn LinePrefix>>>,
    phase: Phase,
    /// How long a closing writer may take to flush (default: the writer's own).
    flush_within: Option<Duration>,
    /// The writer task's waker, whenever it is not running.
    writer: Option<Waker>,
    /// True when the writer found nothing to do and waits for a push.
    writer_idle: bool,
    /// The writer has finished (our side is shut down or the socket is dead).
    writer_done: bool,
    /// The reader, waiting for `writer_done` or for the outbox to close.
    reader: Option<Waker>,
    /// Cluster: a leaving user's last entry is not known yet (its own events are still
    /// on their way through Redis), so a close waits for [`Outbox::release_close`].
    hold: Hold,
}

/// See [`State::hold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Hold {
    #[default]
    None,
    /// Closing waits.
    Held,
    /// A close was asked for meanwhile, with this flush time.
    CloseAsked(Option<Duration>),
}

/// A connection's output: its place in the log and its bounded private queue.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    log: Arc<Log>,
    limit: usize,
    /// The line sent when the client is cut off (shared, encoded once per server).
    overflow_notice: Line,
    /// Seq of the next log entry the writer will write ([`NO_CURSOR`] when it reads
    /// none): what lag and eviction are judged on.
    pos: AtomicU64,
}

impl Outbox {
    /// An empty outbox reading `log`, whose private queue holds at most `limit` real
    /// bytes. Allocates no queue storage until the first push.
    pub fn new(log: Arc<Log>, limit: usize, overflow_notice: Line) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                incoming: VecDeque::new(),
                bytes: 0,
                cursor: None,
                last: u64::MAX,
                prefix: None,
                phase: Phase::Open,
                flush_within: None,
                writer: None,
                writer_idle: false,
                writer_done: false,
                reader: None,
                hold: Hold::None,
            }),
            log,
            limit,
            overflow_notice,
            pos: AtomicU64::new(NO_CURSOR),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few plain assignments; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The private queue's byte limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The log this outbox reads.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Seq of the next log entry this client will get; `u64::MAX` when it reads none.
    pub fn pos(&self) -> u64 {
        self.pos.load(Ordering::Relaxed)
    }

    /// Queues `line` for this client alone, after every log entry appended so far, and
    /// wakes the writer if it was idle.
    pub fn push(&self, line: &Line) -> Pushed {
        self.push_after(self.log.head(), line)
    }

    /// Queues `line` to go out after log entry `after`.
    pub(crate) fn push_after(&self, after: u64, line: &Line) -> Pushed {
        let item = Private {
            after,
            line: line.clone(),
        };
        let (result, wake) = {
            let mut st = self.lock();
            if !matches!(st.phase, Phase::Open) {
                return Pushed::Closed;
            }
            let cost = item.cost();
            // One item always fits into an empty queue (a long `/who` reply is one item).
            if st.bytes > 0 && st.bytes.saturating_add(cost) > self.limit {
                st.phase = Phase::Killed {
                    notice: Some(self.overflow_notice.clone()),
                    failed: None,
                };
                st.incoming = VecDeque::new();
                (Pushed::Overflow, st.writer.clone())
            } else {
                st.bytes += cost;
                st.incoming.push_back(item);
                let wake = if st.writer_idle {
                    st.writer_idle = false;
                    st.writer.clone()
                } else {
                    None
                };
                (Pushed::Queued, wake)
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
        result
    }

    /// Changes the state for the writer and wakes it, whether idle or busy.
    fn hand_over(&self, f: impl FnOnce(&mut State)) {
        let wake = {
            let mut st = self.lock();
            f(&mut st);
            st.writer_idle = false;
            st.writer.clone()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Makes this client a reader of the log from `cursor` on (at its join).
    pub(crate) fn start_reading(&self, cursor: Cursor) {
        self.pos.store(cursor.next_seq(), Ordering::Relaxed);
        self.hand_over(|st| st.cursor = Some(cursor));
    }

    /// Opts this connection into (or, with `None`, out of) a per-entry prefix on every
    /// log line from the next entry it starts writing.
    pub fn set_prefix(&self, prefix: Option<Arc<dyn LinePrefix>>) {
        self.hand_over(|st| st.prefix = Some(prefix));
    }

    fn close_with(&self, f: impl FnOnce(&mut State, &Log)) {
        let waker = {
            let mut st = self.lock();
            if !matches!(st.phase, Phase::Open) {
                return;
            }
            f(&mut st, &self.log);
            st.phase = Phase::Closing;
            st.writer_idle = false;
            let reader = st.reader.take();
            (st.writer.clone(), reader)
        };
        for w in [waker.0, waker.1].into_iter().flatten() {
            w.wake();
        }
    }

    /// Sends what is queued (log entries up to now included), then closes; takes no
    /// more lines.
    pub fn close(&self) {
        if self.defer_close(None) {
            return;
        }
        self.close_with(|st, log| st.last = st.last.min(log.head()));
    }

    /// Records a close asked for while held; true when held.
    fn defer_close(&self, within: Option<Duration>) -> bool {
        let mut st = self.lock();
        match st.hold {
            Hold::None => false,
            Hold::Held | Hold::CloseAsked(_) => {
                st.hold = Hold::CloseAsked(within);
                true
            }
        }
    }

    /// Cluster: from now on a close waits until [`Outbox::release_close`] says which
    /// log entry is this client's last.
    pub(crate) fn hold_close(&self) {
        let mut st = self.lock();
        if st.hold == Hold::None && matches!(st.phase, Phase::Open) {
            st.hold = Hold::Held;
        }
    }

    /// Cluster: entry `last` is this client's last; a close asked for meanwhile happens
    /// now.
    pub(crate) fn release_close(&self, last: u64) {
        let asked = {
            let mut st = self.lock();
            st.last = st.last.min(last);
            std::mem::take(&mut st.hold)
        };
        if let Hold::CloseAsked(within) = asked {
            self.close_with(|st, _| st.flush_within = within.or(st.flush_within));
        }
    }

    /// Like [`Outbox::close`], with `within` to flush instead of the writer's default
    /// (a client that ended its side gets a bounded best effort).
    pub fn close_within(&self, within: Duration) {
        if self.defer_close(Some(within)) {
            return;
        }
        self.close_with(|st, log| {
            st.last = st.last.min(log.head());
            st.flush_within = Some(within);
        });
    }

    /// Stops at log entry `last` (included): a leaving user does not get the entries
    /// after its own departure. Does not close by itself.
    pub(crate) fn stop_at(&self, last: u64) {
        let mut st = self.lock();
        st.last = st.last.min(last);
    }

    /// At shutdown: for a log reader, log entry `last` (the shutdown line) is its last
    /// line; for a connection that reads no log, `line` is queued as its last line even
    /// past the limit. Then it closes. Nothing when already closing or cut off.
    pub(crate) fn finish(&self, last: u64, line: &Line) {
        let reads_log = self.pos() != NO_CURSOR;
        self.close_with(|st, _| {
            if reads_log {
                st.last = st.last.min(last);
            } else {
                let item = Private {
                    after: 0,
                    line: line.clone(),
                };
                st.bytes = st.bytes.saturating_add(item.cost());
                st.incoming.push_back(item);
            }
        });
    }

    /// Cuts the client off: drops what is queued and sends `ERR sendq-exceeded`
    /// best-effort. Returns false when it was already cut off or closing.
    pub(crate) fn cut_off(&self) -> bool {
        self.kill_with(Some(self.overflow_notice.clone()), None)
    }

    /// Drops what is queued and closes at once, sending nothing more.
    pub fn kill(&self) {
        self.kill_with(None, None);
    }

    /// [`Outbox::kill`] because writing failed with `kind`. The reader, which may not see
    /// the error itself (the kernel reports it once), gives the user's leave the reason
    /// it names ([`Outbox::failure`]).
    pub fn fail(&self, kind: io::ErrorKind) {
        self.kill_with(None, Some(kind));
    }

    /// The socket error that ended the connection, if writing met one.
    pub fn failure(&self) -> Option<io::ErrorKind> {
        match self.lock().phase {
            Phase::Killed { failed, .. } => failed,
            _ => None,
        }
    }

    fn kill_with(&self, notice: Option<Line>, failed: Option<io::ErrorKind>) -> bool {
        let wakers = {
            let mut st = self.lock();
            if matches!(st.phase, Phase::Killed { .. }) {
                return false;
            }
            st.phase = Phase::Killed { notice, failed };
            st.incoming = VecDeque::new();
            st.cursor = None;
            st.writer_idle = false;
            (st.writer.clone(), st.reader.take())
        };
        for w in [wakers.0, wakers.1].into_iter().flatten() {
            w.wake();
        }
        true
    }

    /// True while lines are accepted.
    pub fn is_open(&self) -> bool {
        matches!(self.lock().phase, Phase::Open)
    }

    /// Real bytes of private lines queued or being written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Runs `f` on this outbox's backlog as a writer would hold it (for socket-free use:
    /// the cursor and the private lines stay in the outbox between calls).
    fn with_backlog<R>(&self, f: impl FnOnce(&mut Backlog) -> R) -> R {
        let visible = self.log.head();
        let mut st = self.lock();
        let mut backlog = Backlog {
            cursor: st.cursor.take(),
            private: std::mem::take(&mut st.incoming),
            last: st.last,
            visible,
            ..Backlog::default()
        };
        let r = f(&mut backlog);
        if let Some(c) = &backlog.cursor {
            self.pos.store(c.next_seq(), Ordering::Relaxed);
        }
        st.cursor = backlog.cursor;
        st.incoming = backlog.private;
        st.bytes = st.incoming.iter().map(Private::cost).sum();
        r
    }

    /// Moves every line this client has to get, log entries and private lines merged in
    /// order, into `out` (one [`Line`] each), as a writer would write them. For tests and
    /// the fuzz target, which drive the hub without sockets.
    pub fn drain_into(&self, out: &mut Vec<Line>) -> usize {
        self.with_backlog(|backlog| {
            let before = out.len();
            backlog.drain_lines(out);
            out.len() - before
        })
    }

    /// Hands everything this client has to get to `sink` with vectored writes, exactly as
    /// the writer task hands it to `writev` (one slice per log segment, one per private
    /// line), until `sink` takes nothing more or all is written. Returns the bytes
    /// written. For benches and tests that drive the hub without sockets.
    pub fn write_to(&self, sink: &mut impl Write) -> io::Result<usize> {
        let epoch = self.log.epoch();
        self.with_backlog(|backlog| {
            let mut total = 0;
            let mut sources = Vec::new();
            let mut scratch = Vec::new();
            loop {
                sources.clear();
                scratch.clear();
                let mut pieces = Vec::new();
                if !backlog.plan(epoch, &mut pieces, &mut scratch) {
                    return Ok(total);
                }
                let n = sink.write_vectored(&slices(&pieces, &scratch, &mut sources))?;
                if n == 0 {
                    return Ok(total);
                }
                backlog.consume(&sources, n);
                total += n;
            }
        })
    }

    /// Registers the reader's `waker` to be woken when the outbox stops being open (a
    /// cut-off must reach a reader that waits for input).
    pub(crate) fn watch_close(&self, waker: &Waker) {
        let mut st = self.lock();
        match &st.reader {
            Some(w) if w.will_wake(waker) => {}
            _ => st.reader = Some(waker.clone()),
        }
    }

    /// True once the writer has finished. Otherwise registers `waker` to be woken then.
    pub(crate) fn poll_writer_done(&self, waker: &Waker) -> bool {
        if self.lock().writer_done {
            return true;
        }
        self.watch_close(waker);
        false
    }

    fn writer_finished(&self) {
        self.pos.store(NO_CURSOR, Ordering::Relaxed);
        let reader = {
            let mut st = self.lock();
            st.writer_done = true;
            st.writer = None;
            st.incoming = VecDeque::new();
            st.cursor = None;
            st.reader.take()
        };
        if let Some(w) = reader {
            w.wake();
        }
    }
}

/// Where one piece handed to `writev` comes from.
#[derive(Debug, Clone, Copy)]
enum Src {
    Log,
    Private,
    Prefix,
}

/// What a writer has to write: its cursor, the private lines it took, and where a
/// partial write stopped. Merges the two in seq order.
#[derive(Debug, Default)]
struct Backlog {
    cursor: Option<Cursor>,
    private: VecDeque<Private>,
    /// Bytes of the front private line already written.
    private_sent: usize,
    /// Last log seq to write (the end of a closing connection).
    last: u64,
    /// The log's head read *before* `last` was: log entries are written up to it only.
    /// A leaving user's end is set before its leave notice is appended, so an entry seen
    /// here is one whose `last` was already set (the user never gets its own leave).
    visible: u64,
    prefix: Option<Arc<dyn LinePrefix>>,
    /// Bytes of the prefix of the entry at the cursor already written.
    prefix_sent: usize,
}

impl Backlog {
    /// True when the cursor is inside an entry (a private line must wait for its end).
    fn mid_entry(&self) -> bool {
        self.cursor
            .as_ref()
            .is_some_and(|c| c.partial() > 0 || self.prefix_sent > 0)
    }

    /// The log seq before which the front private line may not go out, if any.
    fn gate(&self) -> Option<u64> {
        let p = self.private.front()?;
        let Some(c) = &self.cursor else {
            return Some(0);
        };
        if self.mid_entry() {
            Some(p.after.max(c.next_seq()))
        } else {
            Some(p.after)
        }
    }

    /// True when the front private line goes next.
    fn private_ready(&self) -> bool {
        match (self.gate(), &self.cursor) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(gate), Some(c)) => gate < c.next_seq() || c.next_seq() > self.last,
        }
    }

    /// Fills `pieces` with what to write next, in order: `(source, bytes)`; prefix bytes
    /// are built into `scratch` and referenced by range. Returns false when there is
    /// nothing to write.
    fn plan<'a>(
        &'a self,
        epoch: u64,
        pieces: &mut Vec<(Src, Piece<'a>)>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        // Private lines that go before the next log entry.
        let mut i = 0;
        let mut sent = self.private_sent;
        let next_seq = self.cursor.as_ref().map(Cursor::next_seq);
        let mid = self.mid_entry();
        let ready = |p: &Private, first: bool| match next_seq {
            None => true,
            Some(n) => {
                let gate = if first && mid {
                    p.after.max(n)
                } else {
                    p.after
                };
                gate < n || n > self.last
            }
        };
        while let Some(p) = self.private.get(i) {
            if pieces.len() >= IOV_MAX || !ready(p, i == 0) {
                break;
            }
            pieces.push((
                Src::Private,
                Piece::Bytes(p.line.get(sent..).unwrap_or_default()),
            ));
            sent = 0;
            i += 1;
        }
        if pieces.len() < IOV_MAX
            && i == 0
            && let Some(c) = &self.cursor
        {
            // Log entries up to the front private line's stamp (or the end).
            let limit = match self.private.front() {
                Some(p) => p
                    .after
                    .max(if mid { c.next_seq() } else { 0 })
                    .min(self.last),
                None => self.last,
            }
            .min(self.visible);
            match &self.prefix {
                None => c.file_runs(limit, |run| {
                    pieces.push((Src::Log, Piece::Log(run)));
                    pieces.len() < IOV_MAX
                }),
                Some(prefix) => c.entries(epoch, limit, |entry, skip| {
                    if skip == 0 {
                        let start = scratch.len();
                        prefix.write_prefix(&entry, scratch);
                        let from = (start + self.prefix_sent).min(scratch.len());
                        if from < scratch.len() {
                            pieces.push((Src::Prefix, Piece::Scratch(from..scratch.len())));
                        }
                    }
                    let line = entry.line.get(skip..).unwrap_or_default();
                    pieces.push((Src::Log, Piece::Bytes(line)));
                    pieces.len() + 2 <= IOV_MAX
                }),
            }
        }
        !pieces.is_empty()
    }

    /// Marks `n` bytes of the planned `sources` as written. Returns (real bytes of
    /// private lines freed, whether the cursor left a segment).
    fn consume(&mut self, sources: &[(Src, usize)], mut n: usize) -> (usize, bool) {
        let mut freed = 0;
        let mut moved = false;
        for &(src, len) in sources {
            if n == 0 {
                break;
            }
            let k = n.min(len);
            n -= k;
            match src {
                Src::Private => {
                    self.private_sent += k;
                    if self
                        .private
                        .front()
                        .is_some_and(|p| self.private_sent >= p.line.len())
                    {
                        if let Some(p) = self.private.pop_front() {
                            freed += p.cost();
                        }
                        self.private_sent = 0;
                    }
                }
                Src::Prefix => self.prefix_sent += k,
                Src::Log => {
                    if let Some(c) = &mut self.cursor {
                        moved |= c.advance(k);
                        if c.partial() == 0 {
                            self.prefix_sent = 0;
                        }
                    }
                }
            }
        }
        (freed, moved)
    }

    /// Moves everything writable into `out`, one line each (no prefixes).
    fn drain_lines(&mut self, out: &mut Vec<Line>) {
        loop {
            if self.private_ready() {
                if let Some(p) = self.private.pop_front() {
                    // A `/who` reply is one item of several lines: one `Line` each.
                    if p.line.iter().filter(|&&b| b == b'\n').count() > 1 {
                        out.extend(p.line.split_inclusive(|&b| b == b'\n').map(Line::from));
                    } else {
                        out.push(p.line);
                    }
                }
                continue;
            }
            let limit = self
                .private
                .front()
                .map_or(self.last, |p| p.after.min(self.last))
                .min(self.visible);
            let Some(c) = &mut self.cursor else { return };
            let mut line = None;
            c.entries(0, limit, |e, _| {
                line = Some(Line::from(e.line));
                false
            });
            let Some(line) = line else { return };
            c.advance(line.len());
            out.push(line);
        }
    }
}

/// When the first planned piece is a run of log bytes in the log's memfd and `stream`
/// can send from a file, sends that run with `sendfile` (the kernel references the
/// pages instead of copying them into the socket) and returns its length and the result.
/// The runs planned after it that continue it in the file (the next segments' bytes,
/// which follow in the memfd) go in the same call: a batch that crosses a segment
/// boundary is one `sendfile`, not two.
/// `socket_full`: the previous send was short, so wait for writability first.
/// `None`: write the pieces with `writev` as usual (a private line or a prefix comes
/// first, the log is on the heap, or the stream is TLS).
fn send_file_first<S: Transport>(
    stream: &S,
    cx: &mut Context<'_>,
    pieces: &[(Src, Piece<'_>)],
    socket_full: bool,
) -> Option<(usize, Poll<io::Result<usize>>)> {
    let (Src::Log, Piece::Log(run)) = pieces.first()? else {
        return None;
    };
    let (fd, offset) = run.file?;
    let mut len = run.bytes.len();
    for (src, piece) in pieces.iter().skip(1) {
        let (
            Src::Log,
            Piece::Log(Run {
                bytes,
                file: Some((f, at)),
            }),
        ) = (src, piece)
        else {
            break;
        };
        if f.as_raw_fd() != fd.as_raw_fd()
            || *at != offset + len as u64
            || len + bytes.len() > SEND_FILE_MAX
        {
            break;
        }
        len += bytes.len();
    }
    Some((
        len,
        stream.poll_send_file(cx, fd, offset, len, socket_full)?,
    ))
}

/// The `writev` buffers of planned `pieces`; records each one's source and length in
/// `sources` (for [`Backlog::consume`]).
fn slices<'a>(
    pieces: &[(Src, Piece<'a>)],
    scratch: &'a [u8],
    sources: &mut Vec<(Src, usize)>,
) -> Vec<IoSlice<'a>> {
    pieces
        .iter()
        .map(|(src, piece)| {
            let bytes: &'a [u8] = match piece {
                Piece::Bytes(b) => b,
                Piece::Log(run) => run.bytes,
                Piece::Scratch(r) => scratch.get(r.clone()).unwrap_or_default(),
            };
            sources.push((*src, bytes.len()));
            IoSlice::new(bytes)
        })
        .collect()
}

/// A piece of a planned write: shared bytes, or a range of the writer's scratch buffer.
#[derive(Debug)]
enum Piece<'a> {
    Bytes(&'a [u8]),
    /// A run of log bytes (one segment's; [`send_file_first`] joins runs that follow
    /// each other in the memfd), with where it lies in the log's memfd.
    Log(Run<'a>),
    Scratch(std::ops::Range<usize>),
}

/// Why a writer stopped.
#[derive(Debug)]
pub enum WriterEnd {
    /// Everything queued was sent and our side shut down (a normal close).
    Drained,
    /// The client was cut off (lost its place in the log, lagged too long, overflowed its
    /// private queue, or was killed).
    Killed,
    /// A closing client did not take its last lines in time.
    FlushTimeout,
    /// The socket failed (reset, broken pipe).
    Failed(io::Error),
}

/// Drains an [`Outbox`] into a socket (plain or TLS, see [`Transport`]). A future that
/// ends when the connection is done.
pub struct Writer<S: Transport = Async<TcpStream>> {
    outbox: Arc<Outbox>,
    stream: Arc<S>,
    hub: Arc<Hub>,
    backlog: Backlog,
    /// Real bytes of private lines written but not yet subtracted from the outbox.
    freed: usize,
    /// The connection is closing (the timer is its flush deadline).
    closing: bool,
    /// Its place among the writers parked at the log's head.
    park_ticket: crate::log::Ticket,
    flush_timeout: Duration,
    max_lag: Duration,
    /// The flush deadline of a closing connection; otherwise, armed while the writer
    /// waits for the socket with log entries unwritten, the time the oldest of them
    /// reaches `max_lag` (one timer: the two never run at once).
    timer: Option<Timer>,
    scratch: Vec<u8>,
    /// The last `sendfile` sent less than asked or found the socket full: the next one
    /// waits for writability first (a `sendfile` that meets a full socket has already
    /// looked the pages up and filled its pipe, then throws that away).
    socket_full: bool,
}

impl<S: Transport> Writer<S> {
    /// A writer for `outbox` on `stream`. A closing connection gets `flush_timeout` to
    /// take what is queued for it; a reader whose oldest unwritten log line is older
    /// than `max_lag` is cut off (and removed from `hub`).
    pub fn new(
        outbox: Arc<Outbox>,
        stream: Arc<S>,
        hub: Arc<Hub>,
        flush_timeout: Duration,
        max_lag: Duration,
    ) -> Writer<S> {
        Writer {
            outbox,
            stream,
            hub,
            backlog: Backlog {
                last: u64::MAX,
                ..Backlog::default()
            },
            freed: 0,
            closing: false,
            park_ticket: None,
            flush_timeout,
            max_lag,
            timer: None,
            scratch: Vec::new(),
            socket_full: false,
        }
    }

    /// One non-blocking attempt to finish the line being written (so the peer does not
    /// see half a line glued to the notice) and to send `notice`. Never waits.
    fn best_effort(&self, notice: &Line) {
        let mut rest: &[u8] = &[];
        if self.backlog.private_sent > 0 {
            if let Some(p) = self.backlog.private.front() {
                rest = p.line.get(self.backlog.private_sent..).unwrap_or_default();
            }
        } else if let Some(c) = &self.backlog.cursor
            && c.partial() > 0
            && let Some(e) = c.entry(0)
        {
            rest = e.line.get(c.partial()..).unwrap_or_default();
        }
        let iov = [IoSlice::new(rest), IoSlice::new(notice)];
        // Best effort by definition (CONN-4): a full socket buffer means it is not sent.
        self.stream.write_now(&iov);
    }

    fn finish(&mut self, how: Shutdown, end: WriterEnd) -> Poll<WriterEnd> {
        self.stream.shutdown(how);
        self.backlog = Backlog::default();
        self.timer = None;
        self.outbox.writer_finished();
        self.outbox.log.trim();
        Poll::Ready(end)
    }

    /// Takes new work from the outbox. Returns `Err(end)` when the writer must stop,
    /// otherwise whether the connection is closing.
    fn sync(&mut self, cx: &Context<'_>) -> Result<bool, Poll<WriterEnd>> {
        // Before `last` (see `Backlog::visible`).
        self.backlog.visible = self.outbox.log.head();
        let mut st = self.outbox.lock();
        st.bytes = st.bytes.saturating_sub(std::mem::take(&mut self.freed));
        if let Phase::Killed { notice, .. } = &mut st.phase {
            let notice = notice.take();
            drop(st);
            if let Some(notice) = notice {
                self.best_effort(&notice);
            }
            return Err(self.finish(Shutdown::Both, WriterEnd::Killed));
        }
        if let Some(c) = st.cursor.take() {
            self.backlog.cursor = Some(c);
        }

        if let Some(p) = st.prefix.take() {
            self.backlog.prefix = p;
        }
        if self.backlog.private.is_empty() {
            std::mem::swap(&mut st.incoming, &mut self.backlog.private);
        } else {
            self.backlog.private.append(&mut st.incoming);
        }
        self.backlog.last = st.last;
        // Registered whether idle or busy, so that a close or kill always reaches us; a
        // push wakes us only when idle.
        match &st.writer {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.writer = Some(cx.waker().clone()),
        }
        let closing = matches!(st.phase, Phase::Closing);
        if closing && !self.closing {
            self.closing = true;
            let within = st.flush_within.unwrap_or(self.flush_timeout);
            self.timer = Some(Timer::after(within));
        }
        Ok(closing)
    }

    /// Nothing to write: waits for a push or for the log to grow. Returns false when
    /// there turned out to be work after all.
    fn park(&mut self, cx: &Context<'_>) -> bool {
        {
            let mut st = self.outbox.lock();
            if !st.incoming.is_empty() || st.cursor.is_some() || st.prefix.is_some() {
                return false;
            }
            if !matches!(st.phase, Phase::Open) {
                return false;
            }
            st.writer_idle = true;
            // An idle client should cost next to nothing: private lines are rare, so
            // their queues are given back whenever they are empty. Only when empty: a
            // line held back for a log entry this round's `visible` did not include yet
            // (a join's `Connected to the server`, pushed just after the join notice
            // this writer read the head before) is still to be written.
            st.incoming = VecDeque::new();
            if self.backlog.private.is_empty() {
                self.backlog.private = VecDeque::new();
            }
        }
        self.timer = None;
        self.scratch = Vec::new();
        match &self.backlog.cursor {
            Some(c) => self
                .outbox
                .log
                .park(c.next_seq(), cx.waker(), &mut self.park_ticket),
            None => true,
        }
    }

    /// While the socket is full with log entries unwritten: true when the oldest of them
    /// is older than `max_lag` (the client is then cut off). Otherwise a timer wakes the
    /// writer when it would be.
    fn lagged(&mut self, cx: &mut Context<'_>) -> bool {
        let log = self.outbox.log.clone();
        let Some(due) = self
            .backlog
            .cursor
            .as_ref()
            .and_then(|c| c.entry(log.epoch()))
            .filter(|e| e.id.seq <= self.backlog.last)
            .map(|e| log.instant_at(e.time_ms) + self.max_lag)
        else {
            self.timer = None;
            return false;
        };
        loop {
            if Instant::now() >= due {
                return true;
            }
            let timer = self.timer.get_or_insert_with(|| Timer::at(due));
            if Pin::new(timer).poll(cx).is_pending() {
                return false;
            }
            // Fired for an older line; wait for the current one's due time.
            self.timer = Some(Timer::at(due));
        }
    }
}

impl<S: Transport> Future for Writer<S> {
    type Output = WriterEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WriterEnd> {
        let this = self.get_mut();
        let epoch = this.outbox.log.epoch();
        let mut sources: Vec<(Src, usize)> = Vec::new();
        for _ in 0..WRITES_PER_POLL {
            let closing = match this.sync(cx) {
                Ok(closing) => closing,
                Err(end) => return end,
            };
            // A cursor left at the end of a segment sealed since moves on (so that lag is
            // judged on the next entry, and the old segment can be freed).
            if let Some(c) = &mut this.backlog.cursor
                && c.settle()
            {
                this.outbox.log.trim();
            }
            let mut scratch = std::mem::take(&mut this.scratch);
            scratch.clear();
            sources.clear();
            let result = {
                let mut pieces = Vec::new();
                if !this.backlog.plan(epoch, &mut pieces, &mut scratch) {
                    None
                } else if let Some((len, sent)) =
                    send_file_first(&*this.stream, cx, &pieces, this.socket_full)
                {
                    // Full after a short send, and while waiting for writability (a
                    // writer woken by a new line then does not try a full socket again).
                    this.socket_full = match &sent {
                        Poll::Ready(Ok(n)) => *n < len,
                        Poll::Ready(Err(_)) => false,
                        Poll::Pending => true,
                    };
                    sources.push((Src::Log, len));
                    Some(sent)
                } else {
                    let iov = slices(&pieces, &scratch, &mut sources);
                    Some(this.stream.poll_write_vectored(cx, &iov))
                }
            };
            this.scratch = scratch;
            let Some(result) = result else {
                // All planned bytes were taken; a buffering stream (TLS) sends them now,
                // in one flush for the whole queue. Plain TCP is ready at once.
                match this.stream.poll_flush(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        this.outbox.fail(e.kind());
                        return this.finish(Shutdown::Both, WriterEnd::Failed(e));
                    }
                    Poll::Pending if closing => {
                        if let Some(deadline) = &mut this.timer
                            && Pin::new(deadline).poll(cx).is_ready()
                        {
                            this.outbox.kill();
                            return this.finish(Shutdown::Both, WriterEnd::FlushTimeout);
                        }
                        return Poll::Pending;
                    }
                    // Woken by the socket, or by new lines (which then wait behind the
                    // buffered bytes, so lag is judged on them as on plain TCP).
                    Poll::Pending => {
                        if this.park(cx) {
                            return Poll::Pending;
                        }
                        continue;
                    }
                }
                if closing {
                    return this.finish(Shutdown::Write, WriterEnd::Drained);
                }
                if this.park(cx) {
                    return Poll::Pending;
                }
                continue;
            };
            match result {
                Poll::Ready(Ok(0)) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    this.outbox.fail(err.kind());
                    return this.finish(Shutdown::Both, WriterEnd::Failed(err));
                }
                Poll::Ready(Ok(n)) => {
                    let (freed, moved) = this.backlog.consume(&sources, n);
                    this.freed += freed;
                    if let Some(c) = &this.backlog.cursor {
                        this.outbox.pos.store(c.next_seq(), Ordering::Relaxed);
                    }
                    if moved {
                        this.outbox.log.trim();
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    this.outbox.fail(e.kind());
                    return this.finish(Shutdown::Both, WriterEnd::Failed(e));
                }
                Poll::Pending => {
                    if closing
                        && let Some(deadline) = &mut this.timer
                        && Pin::new(deadline).poll(cx).is_ready()
                    {
                        this.outbox.kill();
                        return this.finish(Shutdown::Both, WriterEnd::FlushTimeout);
                    }
                    if !closing && this.lagged(cx) {
                        // CONN-4: too far behind for too long. The hub removes the user
                        // (the others see it leave once); the next round sends the notice.
                        this.hub.cut_off(&this.outbox, "lagged behind the chat");
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
        // Plenty written in one go: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Appender;
    use crate::segment_memory::Backing;

    fn line(s: &str) -> Line {
        Line::from(s.as_bytes())
    }

    fn setup(limit: usize) -> (Arc<Hub>, Arc<Outbox>) {
        let hub = Hub::new(10);
        let ob = hub.new_outbox(limit);
        (hub, ob)
    }

    #[test]
    fn conn_4_private_queue_counts_real_bytes_and_is_bounded() {
        let (_hub, ob) = setup(300);
        assert_eq!(ob.push(&line("12345\n")), Pushed::Queued);
        let one = 8 + PRIVATE_ITEM_OVERHEAD;
        assert_eq!(ob.queued_bytes(), one);
        let mut n = 1;
        while ob.push(&line("12345\n")) == Pushed::Queued {
            n += 1;
        }
        assert_eq!(n, 300 / one);
        assert!(!ob.is_open());
        assert_eq!(ob.lock().incoming.len(), 0);
        assert_eq!(ob.push(&line("x\n")), Pushed::Closed);
    }

    #[test]
    fn one_item_always_fits_an_empty_queue() {
        let (_hub, ob) = setup(100);
        let big = Line::from(vec![b'u'; 5000]);
        assert_eq!(ob.push(&big), Pushed::Queued);
        assert_eq!(ob.push(&line("x\n")), Pushed::Overflow);
    }

    /// CONN-5: a write that failed leaves its error for the reader's leave reason; a
    /// plain kill or a cut-off leaves none.
    #[test]
    fn conn_5_a_failed_write_is_remembered() {
        let (_hub, ob) = setup(100);
        ob.fail(io::ErrorKind::TimedOut);
        assert!(!ob.is_open());
        assert_eq!(ob.failure(), Some(io::ErrorKind::TimedOut));
        // The first end stands.
        ob.fail(io::ErrorKind::ConnectionReset);
        assert_eq!(ob.failure(), Some(io::ErrorKind::TimedOut));
        let (_hub, ob) = setup(100);
        ob.kill();
        assert_eq!(ob.failure(), None);
        let (_hub, ob) = setup(100);
        assert!(ob.cut_off());
        assert_eq!(ob.failure(), None);
    }

    /// A connected pair: (server side wrapped for async I/O, client side blocking).
    fn pair() -> (Arc<Async<TcpStream>>, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (Arc::new(Async::new(server).unwrap()), client)
    }

    /// A line of `len` copies of `byte`, LF included.
    fn filled_line(byte: u8, len: usize) -> Vec<u8> {
        let mut l = vec![byte; len];
        l.push(b'\n');
        l
    }

    fn read_to_end(mut client: TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut client, &mut got);
        got
    }

    fn writer(hub: &Arc<Hub>, ob: &Arc<Outbox>, server: Arc<Async<TcpStream>>) -> Writer {
        Writer::new(
            ob.clone(),
            server,
            hub.clone(),
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
    }

    /// A standalone log reader: an outbox reading a log (its segments wherever the
    /// environment puts them, as in the server) whose appender the test holds.
    fn reader_of() -> (Arc<Hub>, Arc<Outbox>, Appender) {
        let hub = Hub::new(10);
        let (ob, app) = reader_with(Backing::from_environment(), &hub);
        (hub, ob, app)
    }

    /// CONN-4: on overflow the queue is dropped and the client gets `ERR sendq-exceeded`
    /// (best effort, bypassing the queue), then the connection is shut down.
    #[test]
    fn conn_4_overflow_sends_notice_and_closes() {
        let (server, client) = pair();
        let (hub, ob) = setup(200);
        assert_eq!(ob.push(&line("queued: 1\n")), Pushed::Queued);
        let big = Line::from(vec![b'x'; 300]);
        assert_eq!(ob.push(&big), Pushed::Overflow);
        let end = async_io::block_on(writer(&hub, &ob, server));
        assert!(matches!(end, WriterEnd::Killed), "{end:?}");
        assert_eq!(read_to_end(client), encode(&sendq_exceeded()).to_vec());
    }

    /// The writer sends log entries and private lines merged in order, picks up what is
    /// appended while it runs, and shuts down after the last entry on close.
    #[test]
    fn writer_merges_log_and_private_in_order_then_closes() {
        let (server, client) = pair();
        let (hub, ob, mut app) = reader_of();
        let mut want = b"first\n".to_vec();
        for i in 0..3000 {
            let l = format!("line {i}\n");
            app.append(l.as_bytes());
            want.extend_from_slice(l.as_bytes());
            if i % 700 == 0 {
                let p = format!("private {i}\n");
                ob.push(&line(&p));
                want.extend_from_slice(p.as_bytes());
            }
        }
        ob.close();
        app.append(b"after the close\n");
        let reader = std::thread::spawn(move || read_to_end(client));
        let end = async_io::block_on(writer(&hub, &ob, server));
        assert!(matches!(end, WriterEnd::Drained), "{end:?}");
        assert_eq!(
            String::from_utf8(reader.join().unwrap()).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    /// A partial write resumes mid-line; when the client is cut off mid-line, the line
    /// is completed before the notice if the socket takes it. On the `writev` path (a
    /// heap log): `sendfile` hands the kernel a whole segment's run even past a 4 KiB
    /// send buffer, so a partial send there needs a fuller socket (see
    /// `sendfile_and_writev_paths_send_the_same_bytes`).
    #[test]
    fn partial_write_resumes_and_cut_off_completes_the_line() {
        let (server, client) = pair();
        socket2::SockRef::from(server.get_ref())
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(4096)
            .unwrap();
        let hub = Hub::new(10);
        let (ob, mut app) = reader_with(Backing::Heap, &hub);
        let l = filled_line(b'p', 60_000);
        for _ in 0..5 {
            app.append(&l);
        }
        let mut w = writer(&hub, &ob, server);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut w).poll(&mut cx).is_pending());
        let partial = w.backlog.cursor.as_ref().unwrap().partial();
        assert!(partial > 0 && partial < l.len(), "partial {partial}");
        ob.cut_off();
        let reader = std::thread::spawn(move || read_to_end(client));
        assert!(matches!(async_io::block_on(&mut w), WriterEnd::Killed));
        let got = reader.join().unwrap();
        // Whatever arrived is a prefix of the lines, then maybe the whole notice.
        let mut whole = b"first\n".to_vec();
        for _ in 0..5 {
            whole.extend_from_slice(&l);
        }
        let n = got.len().min(whole.len());
        assert_eq!(&got[..n], &whole[..n]);
        if got.len() > whole.len() {
            assert_eq!(&got[whole.len()..], &encode(&sendq_exceeded())[..]);
        }
    }

    /// CONN-2: a writer plans log entries only up to the head it read before it read its
    /// end. A leaving user's end is set before its leave notice is appended, so an entry
    /// appended after that read (its own leave notice) is never written to it, even when
    /// the cursor could already see it.
    #[test]
    fn conn_2_plan_stops_at_the_head_read_before_the_end() {
        let (_hub, ob, mut app) = reader_of();
        let visible = app.log().head();
        let backlog = Backlog {
            cursor: ob.lock().cursor.take(),
            last: u64::MAX,
            visible,
            ..Backlog::default()
        };
        app.append(b"own leave notice\n");
        let mut pieces = Vec::new();
        let mut scratch = Vec::new();
        assert!(backlog.plan(app.log().epoch(), &mut pieces, &mut scratch));
        let mut sources = Vec::new();
        let planned: Vec<u8> = slices(&pieces, &scratch, &mut sources)
            .iter()
            .flat_map(|s| s.to_vec())
            .collect();
        assert_eq!(planned, b"first\n");
    }

    /// A private line held back for a log entry the writer has not planned yet must
    /// survive the writer parking. The interleaving of the per_address flake: a writer
    /// reads the head (`visible`) just before a join appends the join notice, then takes
    /// the new cursor and `Connected to the server` (stamped after the notice) from the
    /// outbox. It can write neither this round; it used to give its private queue back
    /// on parking, line included, and the client never got `Connected to the server`.
    /// The test puts the writer in that state step by step (`sync`, then the head as it
    /// was read before the append), so it fails every time without the fix.
    #[test]
    fn a_private_line_waiting_for_an_unread_join_survives_a_park() {
        let (server, client) = pair();
        let hub = Hub::new(10);
        let (log, mut app) = Log::new(64 << 20);
        let ob = Arc::new(Outbox::new(
            log,
            1 << 20,
            hub.lines().sendq_exceeded.clone(),
        ));
        app.append(b"before the join\n");
        let mut w = writer(&hub, &ob, server);
        let waker = std::task::Waker::noop();
        let cx = Context::from_waker(waker);
        // The head as the writer's next round reads it, before the join's append.
        let seen = app.log().head();
        // The join (hub.rs `register`): notice appended, cursor handed over at it,
        // `Connected` stamped after it.
        let join = app.append(b"newcomer has joined the chat\n").id.seq;
        ob.start_reading(app.cursor_at_last());
        assert_eq!(ob.push_after(join, &line("Connected\n")), Pushed::Queued);
        assert_eq!(w.sync(&cx).ok(), Some(false));
        w.backlog.visible = seen;
        let mut pieces = Vec::new();
        assert!(
            !w.backlog
                .plan(app.log().epoch(), &mut pieces, &mut Vec::new()),
            "nothing is writable this round"
        );
        assert!(!w.park(&cx), "the join notice is there: no parking");
        assert_eq!(w.backlog.private.len(), 1, "Connected is still queued");
        ob.close();
        let reader = std::thread::spawn(move || read_to_end(client));
        let end = async_io::block_on(w);
        assert!(matches!(end, WriterEnd::Drained), "{end:?}");
        assert_eq!(
            String::from_utf8(reader.join().unwrap()).unwrap(),
            "newcomer has joined the chat\nConnected\n"
        );
    }

    #[derive(Debug)]
    struct SeqPrefix;

    impl LinePrefix for SeqPrefix {
        fn write_prefix(&self, entry: &Entry<'_>, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("[{}] ", entry.id.seq).as_bytes());
        }
    }

    /// The tagged-output seam: a connection that opted in gets its prefix in front of
    /// every log line (private lines unchanged); others are unaffected.
    #[test]
    fn opted_in_connection_gets_a_prefix_per_log_line() {
        let (server, client) = pair();
        let (hub, ob, mut app) = reader_of();
        ob.set_prefix(Some(Arc::new(SeqPrefix)));
        app.append(b"two\n");
        ob.push(&line("mine\n"));
        app.append(b"three\n");
        ob.close();
        let reader = std::thread::spawn(move || read_to_end(client));
        let end = async_io::block_on(writer(&hub, &ob, server));
        assert!(matches!(end, WriterEnd::Drained), "{end:?}");
        assert_eq!(
            String::from_utf8(reader.join().unwrap()).unwrap(),
            "[1] first\n[2] two\nmine\n[3] three\n"
        );
    }

    /// Plain TCP that counts the bytes it sent with `sendfile`, so a test can tell which
    /// path the writer took.
    struct Counted {
        inner: Async<TcpStream>,
        from_file: std::sync::atomic::AtomicUsize,
        /// `sendfile` calls that sent less than asked.
        short: std::sync::atomic::AtomicUsize,
        /// The most bytes one `sendfile` call was asked to send.
        largest_ask: std::sync::atomic::AtomicUsize,
    }

    impl Counted {
        fn new(server: Arc<Async<TcpStream>>) -> Arc<Counted> {
            Arc::new(Counted {
                inner: Arc::into_inner(server).unwrap(),
                from_file: std::sync::atomic::AtomicUsize::new(0),
                short: std::sync::atomic::AtomicUsize::new(0),
                largest_ask: std::sync::atomic::AtomicUsize::new(0),
            })
        }

        fn sent_from_file(&self) -> usize {
            self.from_file.load(Ordering::Relaxed)
        }
    }

    impl Transport for Counted {
        const RAW: bool = true;

        fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            self.inner.poll_read(cx, buf)
        }

        fn poll_write_vectored(
            &self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Transport::poll_write_vectored(&self.inner, cx, bufs)
        }

        fn poll_send_file(
            &self,
            cx: &mut Context<'_>,
            file: std::os::fd::BorrowedFd<'_>,
            offset: u64,
            len: usize,
            wait_first: bool,
        ) -> Option<Poll<io::Result<usize>>> {
            self.largest_ask.fetch_max(len, Ordering::Relaxed);
            let r = self.inner.poll_send_file(cx, file, offset, len, wait_first);
            if let Some(Poll::Ready(Ok(n))) = &r {
                self.from_file.fetch_add(*n, Ordering::Relaxed);
                if *n < len {
                    self.short.fetch_add(1, Ordering::Relaxed);
                }
            }
            r
        }

        fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Transport::poll_flush(&self.inner, cx)
        }

        fn write_now(&self, bufs: &[IoSlice<'_>]) {
            self.inner.write_now(bufs);
        }

        fn shutdown(&self, how: Shutdown) {
            Transport::shutdown(&self.inner, how);
        }

        fn socket(&self) -> &TcpStream {
            self.inner.socket()
        }
    }

    /// An outbox reading a log with its segments in `backing`, the line `first` already
    /// in it; the test holds the appender.
    fn reader_with(backing: Backing, hub: &Arc<Hub>) -> (Arc<Outbox>, Appender) {
        let (log, mut app) = Log::with_backing(64 << 20, backing);
        let ob = Arc::new(Outbox::new(
            log,
            1 << 20,
            hub.lines().sendq_exceeded.clone(),
        ));
        app.append(b"first\n");
        ob.start_reading(app.cursor_at_last());
        (ob, app)
    }

    /// The two paths send the same bytes: log lines of many lengths across segment
    /// boundaries, private lines interleaved at their gates, through socket buffers of
    /// 4 KiB (so nearly every send is partial and resumes mid-line). The memfd log's
    /// writer sends its log bytes with `sendfile`, the heap log's with `writev`.
    #[test]
    fn sendfile_and_writev_paths_send_the_same_bytes() {
        let mut got = Vec::new();
        for backing in [Backing::MemFd, Backing::Heap] {
            let (server, client) = pair();
            socket2::SockRef::from(server.get_ref())
                .set_send_buffer_size(4096)
                .unwrap();
            // A small receive buffer too, but not 4 KiB: with that, both paths crawl on
            // loopback (the receiver takes about 8 KiB per 200 ms, TCP's minimum
            // retransmission timeout) and 600 KB take longer than the flush timeout.
            socket2::SockRef::from(&client)
                .set_recv_buffer_size(32 << 10)
                .unwrap();
            let hub = Hub::new(10);
            let (ob, mut app) = reader_with(backing, &hub);
            let mut want = b"first\n".to_vec();
            let mut log_bytes = 0;
            for i in 0..4000usize {
                let mut l = format!("{i} ").into_bytes();
                l.resize(l.len() + (i * 37) % 300, b'a' + (i % 26) as u8);
                l.push(b'\n');
                app.append(&l);
                log_bytes += l.len();
                want.extend_from_slice(&l);
                if i % 333 == 0 {
                    let p = format!("private {i}\n");
                    ob.push(&line(&p));
                    want.extend_from_slice(p.as_bytes());
                }
            }
            assert!(log_bytes > 8 * crate::log::SEGMENT_BYTES, "spans segments");
            ob.close();
            let reader = std::thread::spawn(move || read_to_end(client));
            let stream = Counted::new(server);
            let w = Writer::new(
                ob.clone(),
                stream.clone(),
                hub.clone(),
                Duration::from_secs(10),
                Duration::from_secs(30),
            );
            let end = async_io::block_on(w);
            assert!(matches!(end, WriterEnd::Drained), "{backing:?}: {end:?}");
            let bytes = reader.join().unwrap();
            assert!(
                bytes == want,
                "{backing:?}: {} bytes, {} wanted",
                bytes.len(),
                want.len()
            );
            match backing {
                // Log runs go by `sendfile`, except those planned behind a private line
                // (one `writev` takes both).
                Backing::MemFd => {
                    assert!(
                        stream.sent_from_file() > log_bytes / 2,
                        "{}",
                        stream.sent_from_file()
                    );
                    assert!(stream.short.load(Ordering::Relaxed) > 0, "no partial send");
                }
                Backing::Heap => assert_eq!(stream.sent_from_file(), 0),
            }
            got.push(bytes);
        }
        assert_eq!(got[0], got[1]);
    }

    /// A segment freed (its range's pages punched out of the memfd) while its bytes are
    /// still queued, unread, in a slow receiver's socket: the receiver still reads them
    /// intact, although the log has gone on writing new segments (whose pages could
    /// have been the freed ones, were they not still referenced by the socket).
    #[test]
    fn bytes_queued_in_a_socket_survive_their_segment_being_freed() {
        let (server, client) = pair();
        socket2::SockRef::from(&client)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
        socket2::SockRef::from(server.get_ref())
            .set_send_buffer_size(1 << 20)
            .unwrap();
        let hub = Hub::new(10);
        let (ob, mut app) = reader_with(Backing::MemFd, &hub);
        let log = ob.log().clone();
        let mut want = b"first\n".to_vec();
        let a = filled_line(b'A', 999);
        // About five segments.
        for _ in 0..320 {
            app.append(&a);
            want.extend_from_slice(&a);
        }
        let stream = Counted::new(server);
        let mut w = Writer::new(
            ob.clone(),
            stream.clone(),
            hub.clone(),
            Duration::from_secs(10),
            Duration::from_secs(30),
        );
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..10 {
            let _ = Pin::new(&mut w).poll(&mut cx);
            if w.backlog.cursor.as_ref().unwrap().next_seq() > log.head() {
                break;
            }
        }
        // Everything went into the socket (the receiver has read nothing), by sendfile,
        // and the segments the cursor left were freed: their pages are out of the file.
        assert!(
            w.backlog.cursor.as_ref().unwrap().next_seq() > log.head(),
            "all written"
        );
        assert!(stream.sent_from_file() >= 4 * crate::log::SEGMENT_BYTES);
        // The segments' bytes follow each other in the memfd: the writer asked for runs
        // of several segments in one `sendfile` (not one call per segment), and never for
        // more than SEND_FILE_MAX.
        let largest = stream.largest_ask.load(Ordering::Relaxed);
        assert!(
            largest > crate::log::SEGMENT_BYTES && largest <= SEND_FILE_MAX,
            "largest sendfile {largest}"
        );
        let held = log.file_allocated_bytes().unwrap();
        assert!(
            held <= crate::log::SEGMENT_BYTES as u64,
            "freed: {held} held"
        );
        // The log goes on: new segments, new bytes, memory churned.
        let b = filled_line(b'B', 999);
        for _ in 0..2000 {
            app.append(&b);
            want.extend_from_slice(&b);
        }
        ob.close();
        let reader = std::thread::spawn(move || read_to_end(client));
        let end = async_io::block_on(w);
        assert!(matches!(end, WriterEnd::Drained), "{end:?}");
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the queued bytes changed");
    }

    #[test]
    fn encode_is_the_proto_encoding() {
        let m = ServerMessage::Connected;
        assert_eq!(&*encode(&m), &m.to_bytes()[..]);
    }
}
