//! The chat's one ordered log: every public event (join, leave, chat, rename, shutdown)
//! encoded once, given the next sequence number, and stored once, however many clients
//! receive it (ARCHITECTURE.md, issue 12).
//!
//! Why it looks like this:
//! - **Append-only segments.** Lines are copied back to back into fixed-size
//!   [`Segment`]s. A reader (a connection's writer) holds a [`Cursor`] and hands the
//!   bytes from its cursor to the head to the kernel, one run per segment: fan-out
//!   costs nothing per recipient at broadcast time, and a writer's catch-up costs one
//!   syscall for many lines.
//! - **Segments in a memfd, so the kernel need not copy them.** A segment's bytes are
//!   mapped from the log's one memfd, each segment's right after the bytes of the one
//!   before (`segment_memory.rs`), and each run says where it lies in the file
//!   ([`Run::file`]): a plain-TCP writer sends its runs with `sendfile`, those of several
//!   segments in one call, and the kernel puts references to the pages into each socket
//!   instead of copying the bytes once per recipient (that copy was about half of the
//!   server's CPU per delivery, docs/performance.md). Append-only makes this safe: bytes
//!   below the published end never change, no byte of the file is written twice, and a
//!   freed segment's pages, punched out of the file whole, live on while a socket still
//!   holds them.
//!   Without a memfd (or with `CHAT_SERVER_LOG_MEMORY=heap`) segments are heap blocks and
//!   every writer uses `writev`.
//! - **One appender, many readers, no lock on the read path.** Only the sequencer (the
//!   hub, under its lock) appends, through the unique [`Appender`]. An entry's bytes are
//!   written before its count is published with `Release`; readers load the count with
//!   `Acquire` and only ever look below it, so published bytes are never written again.
//!   That is the one `unsafe` idea of this file, kept to [`Segment`].
//! - **Memory is retained segments, counted for real.** The log keeps the chain of
//!   segments from the oldest one a cursor still needs to the head, and nothing else: a
//!   segment nobody's cursor is in is freed as soon as the last cursor leaves it. The
//!   global budget (`--log-budget`) counts whole segments (bytes and per-entry metadata),
//!   the same 64 KiB whether on the heap or in the memfd (whose written pages count in
//!   the process's RSS as `RssShmem`). Pages of a freed segment that sockets still
//!   reference are the kernel's, within those sockets' buffers, as copied bytes were.
//!   Near the budget the log reports *congestion*, and the server stops reading from
//!   chatting clients (the senders) until readers catch up; only past the budget is the
//!   oldest segment evicted and the cursors still in it cut off.
//! - **Ids for history and resume.** An entry's id is `(epoch, seq)`: `epoch` is chosen
//!   at random at start-up ([`new_epoch`]), `seq` counts from 1. Each entry carries the server's UTC time in ms
//!   (taken from a monotonic clock anchored at start-up, so lag arithmetic never sees a
//!   clock step).
//!
//! The engine seam: [`Log`] is the in-memory engine every writer reads from. The SQLite
//! store (`store.rs`, `--store`) is one more reader: its thread holds a [`Cursor`] and
//! parks like a writer, and at start-up the stored
//! entries are appended again with [`Appender::append_at`] into a log made by
//! [`Log::with_origin`] (their seqs and times, the epoch kept after a clean stop). History
//! (`history.rs`) is a cursor that pins the last `--history` entries. A Redis Stream engine makes
//! the stream the sequencer (XADD) and feeds the entries it reads back, in stream order,
//! into this log with [`Appender::append`] on one task, so local writers keep the same
//! read path (and `sendfile`). Neither changes [`Cursor`] or the writers.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::segment_memory::{Backing, Block, SegmentFile};

/// Bytes of line data per segment. A segment is also the unit of retention and eviction.
pub const SEGMENT_BYTES: usize = 64 * 1024;

/// Most entries per segment (per-entry metadata is preallocated for this many).
pub const SEGMENT_ENTRIES: usize = 1024;

/// What one segment really costs, line bytes and metadata together (allocator overhead
/// aside, which is a few dozen bytes per allocation).
pub const SEGMENT_COST: usize = SEGMENT_BYTES
    + SEGMENT_ENTRIES * (std::mem::size_of::<AtomicU32>() + std::mem::size_of::<AtomicU64>())
    + std::mem::size_of::<Segment>();

/// The smallest budget that works: a few segments.
pub const MIN_BUDGET: usize = 4 * SEGMENT_COST;

/// An entry's position: `(epoch, seq)`. `epoch` is fixed for a server's run; `seq` counts
/// from 1 with no gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    /// Chosen at start-up (the UTC time in ms when the log was made).
    pub epoch: u64,
    /// 1 for the first entry of the epoch.
    pub seq: u64,
}

/// One entry, as a cursor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Its position.
    pub id: EntryId,
    /// The server's UTC time in ms when it was appended.
    pub time_ms: u64,
    /// The encoded line, LF included.
    pub line: &'a [u8],
    /// The id the engine gave the event, when the order is not this log's own (a Redis
    /// Stream entry id, `(ms, n)`, the same on every node of a cluster): what tags and
    /// history expose instead of `id`.
    pub origin: Option<EntryId>,
}

/// A fixed-size, append-only block of entries.
pub struct Segment {
    /// Seq of this segment's first entry.
    first_seq: u64,
    /// `SEGMENT_BYTES` bytes (heap or mapped from the log's memfd, `segment_memory.rs`),
    /// written only by the appender and only above the published end.
    data: Block,
    /// End offset (exclusive) of each entry's bytes.
    ends: Box<[AtomicU32]>,
    /// Time (UTC ms) of each entry.
    times: Box<[AtomicU64]>,
    /// Engine ids (two words per entry), only in a log fed by a cluster engine.
    origins: Option<Box<[AtomicU64]>>,
    /// Published entries. Written with `Release` after the entry's bytes and metadata.
    count: AtomicUsize,
    /// The following segment, set once when this one is full (then `count` is final).
    next: OnceLock<Arc<Segment>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("first_seq", &self.first_seq)
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl Segment {
    /// A segment for entries from `first_seq` on. `after`: the segment sealed before it
    /// and the bytes that one used; in a memfd log the new segment's bytes continue the
    /// file right after those (`segment_memory.rs`), so a writer's run across the
    /// boundary is one `sendfile`.
    fn new(
        first_seq: u64,
        origins: bool,
        file: Option<&Arc<SegmentFile>>,
        after: Option<(&Segment, usize)>,
    ) -> Segment {
        Segment {
            first_seq,
            data: Block::new(SEGMENT_BYTES, file, after.map(|(s, used)| (&s.data, used))),
            ends: (0..SEGMENT_ENTRIES).map(|_| AtomicU32::new(0)).collect(),
            times: (0..SEGMENT_ENTRIES).map(|_| AtomicU64::new(0)).collect(),
            origins: origins.then(|| {
                (0..2 * SEGMENT_ENTRIES)
                    .map(|_| AtomicU64::new(0))
                    .collect()
            }),
            count: AtomicUsize::new(0),
            next: OnceLock::new(),
        }
    }

    /// Published entries.
    fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// End offset of entry `i` (`i` below a loaded count), 0 for "before the first".
    fn end_of(&self, i: usize) -> usize {
        match i.checked_sub(1) {
            None => 0,
            Some(j) => self
                .ends
                .get(j)
                .map_or(0, |e| e.load(Ordering::Relaxed) as usize),
        }
    }

    /// Index of the first entry in `from..to` (`to` at most a loaded count) whose end
    /// is past `offset`, or `to` when none is. A binary search of the end offsets: a
    /// writer that handed several hundred lines to one `writev` moves its cursor past
    /// them in a few steps, not one step per line (which made moving the cursor the
    /// largest cost of a delivery in the server's own code).
    fn entry_ending_after(&self, from: usize, to: usize, offset: usize) -> usize {
        let to = to.min(self.ends.len());
        let from = from.min(to);
        let ends = self.ends.get(from..to).unwrap_or_default();
        from + ends.partition_point(|e| e.load(Ordering::Relaxed) as usize <= offset)
    }

    /// Bytes `from..to`, both at or below the end of a published entry.
    fn bytes(&self, from: usize, to: usize) -> &[u8] {
        let to = to.min(SEGMENT_BYTES);
        let from = from.min(to);
        // SAFETY: `data` is valid for SEGMENT_BYTES bytes for the segment's lifetime; the
        // range is published (callers pass ends of entries below an `Acquire`d count), so
        // the appender never writes it again.
        unsafe { std::slice::from_raw_parts(self.data.ptr().as_ptr().add(from), to - from) }
    }

    /// Bytes `from..to` as [`Segment::bytes`] gives them, with where they are in the
    /// log's memfd when the segment is mapped from one.
    fn run(&self, from: usize, to: usize) -> Run<'_> {
        let bytes = self.bytes(from, to);
        Run {
            bytes,
            file: self.data.file_offset(from.min(to)),
        }
    }

    /// The following segment once this one is sealed.
    fn next(&self) -> Option<&Arc<Segment>> {
        self.next.get()
    }

    /// The engine id of entry `i` (published), if this log carries them.
    fn origin(&self, i: usize) -> Option<EntryId> {
        let o = self.origins.as_ref()?;
        Some(EntryId {
            epoch: o.get(2 * i)?.load(Ordering::Relaxed),
            seq: o.get(2 * i + 1)?.load(Ordering::Relaxed),
        })
    }
}

/// A run of published log bytes, one segment's worth at most.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// The log's memfd and the offset of `bytes` in it, when the segment is mapped from
    /// one: a plain-TCP writer may then `sendfile` them instead of copying them.
    pub file: Option<(BorrowedFd<'a>, u64)>,
}

/// What readers and the sequencer share. Cheap to read: the head and the congestion flag
/// are atomics; the lock is taken to park, to wake, and when a segment is added or freed.
#[derive(Debug)]
pub struct Log {
    epoch: u64,
    /// UTC ms at `started`: entry times are `time_base` plus the monotonic time since.
    time_base: u64,
    /// Entries carry engine ids ([`Entry::origin`]).
    origins: bool,
    /// What one segment costs in this log.
    segment_cost: usize,
    /// The memfd segments are mapped from, or `None` for heap segments.
    file: Option<Arc<SegmentFile>>,
    started: Instant,
    /// Seq of the newest published entry (0 before the first).
    head: AtomicU64,
    /// Segments retained, at most this many (the budget).
    budget_segments: usize,
    /// At or above this many segments the log is congested (senders are paused) ...
    pause_at: usize,
    /// ... until it is back to this many.
    resume_at: usize,
    congested: AtomicBool,
    /// True while some writer is parked (saves taking the lock to wake nobody).
    any_parked: AtomicBool,
    /// The head the last wake-up of the parked writers was for. A publish with no entry
    /// appended since wakes nobody: every writer parked since then saw this head and waits
    /// for a later entry. Without it each line that appends nothing (`/who`, `/pong`, an
    /// error) woke every idle writer of the server just to park it again: at 10,000
    /// users answering liveness probes, 10,000 wake-ups per `/pong`.
    woken_for: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; the last one is the appender's open segment.
    segments: VecDeque<Arc<Segment>>,
    /// Writers at the head, waiting for the next entry.
    parked: Vec<Waker>,
    /// Rounds of wake-ups of `parked` so far (see [`Ticket`]).
    parked_round: u64,
    /// Readers (senders) paused while the log is congested.
    paused: Vec<Waker>,
    /// Rounds of wake-ups of `paused` so far.
    paused_round: u64,
}

/// Where a task stands in a waiting list: the round of wake-ups it was added in. A task
/// woken by something else (a private line, a timer) that waits again in the same round
/// is already in the list and is not added twice, so the lists stay as long as the
/// number of waiting tasks, however often they wake.
pub type Ticket = Option<u64>;

/// Adds `waker` to `list` unless `ticket` says it is already there this `round`.
fn enlist(list: &mut Vec<Waker>, round: u64, waker: &Waker, ticket: &mut Ticket) {
    if *ticket != Some(round) {
        list.push(waker.clone());
        *ticket = Some(round);
    }
}

/// The sequencer's handle: the only way to append. Exactly one exists per [`Log`].
#[derive(Debug)]
pub struct Appender {
    log: Arc<Log>,
    open: Arc<Segment>,
    /// Entries and bytes written into `open` (mirrors its published count).
    entries: usize,
    bytes: usize,
    next_seq: u64,
}

/// What an append did besides adding the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The new entry's id.
    pub id: EntryId,
    /// The budget was exceeded and the oldest segment evicted: every cursor whose next
    /// entry is below this seq has lost its place and must be cut off.
    pub evicted_below: Option<u64>,
    /// Its time (UTC ms).
    pub time_ms: u64,
}

impl Log {
    /// An empty log that retains at most `budget` bytes of segments (at least
    /// [`MIN_BUDGET`]), and its appender.
    pub fn new(budget: usize) -> (Arc<Log>, Appender) {
        Log::with_origin(budget, new_epoch(None), 1)
    }

    /// Segments retained at most for a budget of `budget` bytes.
    pub fn segments_for(budget: usize) -> usize {
        Log::segments_costing(budget, SEGMENT_COST)
    }

    fn segments_costing(budget: usize, segment_cost: usize) -> usize {
        (budget / segment_cost).max(MIN_BUDGET / SEGMENT_COST)
    }

    /// An empty log of epoch `epoch` whose first entry will be `first_seq` (a log
    /// restored from a store goes on where the stored one ended, RESUME-5).
    pub fn with_origin(budget: usize, epoch: u64, first_seq: u64) -> (Arc<Log>, Appender) {
        Log::build(budget, epoch, first_seq, false)
    }

    /// An empty log fed by a cluster engine: each entry also keeps the engine's id
    /// ([`Appender::append_from`]), 16 bytes more per entry, counted in the budget.
    pub fn with_origins(budget: usize) -> (Arc<Log>, Appender) {
        Log::build(budget, new_epoch(None), 1, true)
    }

    /// Like [`Log::new`], with the segments' memory chosen by the caller instead of by
    /// the environment (tests compare the two paths).
    pub fn with_backing(budget: usize, backing: Backing) -> (Arc<Log>, Appender) {
        Log::build_with(budget, new_epoch(None), 1, false, backing)
    }

    fn build(budget: usize, epoch: u64, first_seq: u64, origins: bool) -> (Arc<Log>, Appender) {
        Log::build_with(
            budget,
            epoch,
            first_seq,
            origins,
            Backing::from_environment(),
        )
    }

    fn build_with(
        budget: usize,
        epoch: u64,
        first_seq: u64,
        origins: bool,
        backing: Backing,
    ) -> (Arc<Log>, Appender) {
        let segment_cost = SEGMENT_COST
            + if origins {
                2 * SEGMENT_ENTRIES * std::mem::size_of::<AtomicU64>()
            } else {
                0
            };
        let budget_segments = Log::segments_costing(budget, segment_cost);
        let first_seq = first_seq.max(1);
        let file = match backing {
            Backing::MemFd => SegmentFile::new(SEGMENT_BYTES),
            Backing::Heap => None,
        };
        let open = Arc::new(Segment::new(first_seq, origins, file.as_ref(), None));
        let log = Arc::new(Log {
            epoch,
            time_base: unix_now_ms(),
            origins,
            segment_cost,
            file,
            started: Instant::now(),
            head: AtomicU64::new(first_seq - 1),
            budget_segments,
            // Pause the senders with an eighth of the budget (at least one segment) left
            // for what cannot be paused (joins, leaves, replies to commands).
            pause_at: budget_segments - (budget_segments / 8).max(1),
            resume_at: budget_segments * 3 / 4,
            congested: AtomicBool::new(false),
            any_parked: AtomicBool::new(false),
            woken_for: AtomicU64::new(first_seq - 1),
            inner: Mutex::new(Inner {
                segments: VecDeque::from([open.clone()]),
                ..Inner::default()
            }),
        });
        let appender = Appender {
            log: log.clone(),
            open,
            entries: 0,
            bytes: 0,
            next_seq: first_seq,
        };
        (log, appender)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section is a few pushes and pops; a panic cannot leave it torn.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch of this run.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Seq of the newest entry (0 when empty).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// The server's UTC time in ms, on the log's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        self.time_base
            .saturating_add(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The instant at which log time `ms` is reached.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.started + Duration::from_millis(ms.saturating_sub(self.time_base))
    }

    /// Bytes held by retained segments (what `--log-budget` bounds).
    pub fn retained_bytes(&self) -> usize {
        self.lock().segments.len() * self.segment_cost
    }

    /// Bytes of memory the log's memfd holds (its written, not yet freed segments), or
    /// `None` for a log on the heap. For tests and diagnostics: a freed segment's pages
    /// leave it at once.
    pub fn file_allocated_bytes(&self) -> Option<u64> {
        self.file.as_ref()?.allocated_bytes()
    }

    /// The budget in bytes, rounded down to whole segments.
    pub fn budget_bytes(&self) -> usize {
        self.budget_segments * self.segment_cost
    }

    /// True while readers lag so far that the senders should be paused.
    pub fn congested(&self) -> bool {
        self.congested.load(Ordering::Acquire)
    }

    /// Pauses a sender while the log is congested: registers `waker` to be woken when it
    /// is not. Returns false (and registers nothing) when the log is not congested.
    pub fn wait_uncongested(&self, waker: &Waker, ticket: &mut Ticket) -> bool {
        let mut inner = self.lock();
        if !self.congested() {
            return false;
        }
        let round = inner.paused_round;
        enlist(&mut inner.paused, round, waker, ticket);
        true
    }

    /// Parks a writer whose next entry is `next_seq`: returns false when that entry is
    /// already there (do not park), true when `waker` will be woken by the next
    /// [`Log::publish`].
    pub fn park(&self, next_seq: u64, waker: &Waker, ticket: &mut Ticket) -> bool {
        let mut inner = self.lock();
        // The flag goes up before the head is looked at, both sequentially consistent,
        // and `publish` puts a fence between its append and its look at the flag: either
        // this sees the new entry or that publish sees the flag. (Setting the flag after
        // the look could miss an entry published in between, and sleep past it.)
        self.any_parked.store(true, Ordering::SeqCst);
        if self.head.load(Ordering::SeqCst) >= next_seq {
            return false;
        }
        let round = inner.parked_round;
        enlist(&mut inner.parked, round, waker, ticket);
        true
    }

    /// Wakes every parked writer. The sequencer appends a batch of entries (all the lines
    /// of one chunk a client sent, say), then publishes once: a writer is woken at most
    /// once per batch, however many lines the batch holds.
    pub fn publish(&self) {
        // A plain load first: readers call this after every chunk, and most of the time
        // nobody is parked; a swap would bounce the cache line between cores. The fence
        // orders the entries appended before it against that load (see `park`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if !self.any_parked.load(Ordering::Relaxed) {
            return;
        }
        // Nothing appended since the last wake-up: nobody parked can be waiting for it.
        // (The publisher that moves this up wakes the writers, or one that got here
        // first with a head as new does.)
        let head = self.head.load(Ordering::SeqCst);
        // Both read-modify-writes are sequentially consistent, like `park`'s flag and head,
        // so a writer that raises the flag after this clears it also sees `head`.
        if self.woken_for.fetch_max(head, Ordering::SeqCst) >= head
            || !self.any_parked.swap(false, Ordering::SeqCst)
        {
            return;
        }
        let parked = {
            let mut inner = self.lock();
            inner.parked_round += 1;
            std::mem::take(&mut inner.parked)
        };
        for w in parked {
            w.wake();
        }
    }

    /// Frees the oldest segments no cursor is in any more, and lifts congestion when the
    /// log has shrunk enough. Writers call it when they leave a segment.
    pub fn trim(&self) {
        let paused = {
            let mut inner = self.lock();
            Self::trim_locked(&mut inner);
            self.update_congestion(&mut inner)
        };
        for w in paused {
            w.wake();
        }
    }

    fn trim_locked(inner: &mut Inner) {
        // The front segment is referenced by the deque and by cursors in it; nothing
        // else (its predecessor, which linked to it, is gone). The open segment stays.
        while inner.segments.len() > 1
            && inner
                .segments
                .front()
                .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            inner.segments.pop_front();
        }
    }

    /// Sets the congestion flag from the segment count; returns the senders to wake.
    fn update_congestion(&self, inner: &mut Inner) -> Vec<Waker> {
        let n = inner.segments.len();
        if n >= self.pause_at {
            self.congested.store(true, Ordering::Release);
        } else if n <= self.resume_at && self.congested.swap(false, Ordering::AcqRel) {
            inner.paused_round += 1;
            return std::mem::take(&mut inner.paused);
        }
        Vec::new()
    }

    /// A cursor at the oldest entry the log still holds (its first segment's first).
    pub fn oldest_cursor(&self) -> Option<Cursor> {
        let seg = self.lock().segments.front()?.clone();
        Some(Cursor {
            seg,
            index: 0,
            offset: 0,
        })
    }

    /// Wakes paused senders whatever the congestion (at shutdown, so they see it).
    pub fn release_paused(&self) {
        let paused = {
            let mut inner = self.lock();
            inner.paused_round += 1;
            std::mem::take(&mut inner.paused)
        };
        for w in paused {
            w.wake();
        }
    }
}

impl Appender {
    /// The log this appender writes.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Appends one encoded line (LF included, at most [`SEGMENT_BYTES`]; longer input is
    /// cut, which no server line ever needs). Publishes the entry to cursors at once;
    /// parked writers are woken by [`Log::publish`].
    pub fn append(&mut self, line: &[u8]) -> Appended {
        let now = self.log.now_ms();
        self.append_inner(line, now, None)
    }

    /// Appends one line with the time `time_ms` (UTC ms) instead of now: an event
    /// restored from a store keeps the time it first had.
    pub fn append_at(&mut self, line: &[u8], time_ms: u64) -> Appended {
        self.append_inner(line, time_ms, None)
    }

    /// Appends an entry the engine ordered and named (`origin`, see [`Entry::origin`]).
    /// In a log made without origins the id is not kept. Its time is the id's first
    /// part (a Redis stream id's is Redis's clock in UTC ms), so every node of a
    /// cluster shows the same time for one event, and an event read back after a
    /// restart keeps its time.
    pub fn append_from(&mut self, line: &[u8], origin: EntryId) -> Appended {
        self.append_inner(line, origin.epoch, Some(origin))
    }

    fn append_inner(&mut self, line: &[u8], time_ms: u64, origin: Option<EntryId>) -> Appended {
        let line = line.get(..SEGMENT_BYTES).unwrap_or(line);
        let mut evicted_below = None;
        if self.entries == SEGMENT_ENTRIES || self.bytes + line.len() > SEGMENT_BYTES {
            evicted_below = self.seal();
        }
        let seq = self.next_seq;
        // SAFETY: `bytes + len <= SEGMENT_BYTES` (checked above; a sealed segment was
        // replaced by an empty one), so the range is inside `data`; it is above the
        // published end, so no reader looks at it; only this unique appender writes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                line.as_ptr(),
                self.open.data.ptr().as_ptr().add(self.bytes),
                line.len(),
            );
        }
        self.bytes += line.len();
        if let (Some(end), Some(time)) = (
            self.open.ends.get(self.entries),
            self.open.times.get(self.entries),
        ) {
            // Segment offsets fit u32: SEGMENT_BYTES is far below 4 GiB.
            end.store(
                u32::try_from(self.bytes).unwrap_or(u32::MAX),
                Ordering::Relaxed,
            );
            time.store(time_ms, Ordering::Relaxed);
        }
        if let (Some(o), Some(origin)) = (self.open.origins.as_ref(), origin) {
            let i = 2 * self.entries;
            if let (Some(ms), Some(n)) = (o.get(i), o.get(i + 1)) {
                ms.store(origin.epoch, Ordering::Relaxed);
                n.store(origin.seq, Ordering::Relaxed);
            }
        }
        self.entries += 1;
        self.open.count.store(self.entries, Ordering::Release);
        self.log.head.store(seq, Ordering::Release);
        self.next_seq += 1;
        Appended {
            id: EntryId {
                epoch: self.log.epoch,
                seq,
            },
            evicted_below,
            time_ms,
        }
    }

    /// Closes the open segment and starts the next; evicts the oldest one when the budget
    /// would be exceeded, returning the seq below which cursors lost their place.
    fn seal(&mut self) -> Option<u64> {
        // The new segment continues the file right after this one's bytes. It must be the
        // one linked as `next`: segments are then freed oldest first, which the pages
        // they share rely on (`segment_memory.rs`).
        let next = Arc::new(Segment::new(
            self.next_seq,
            self.log.origins,
            self.log.file.as_ref(),
            Some((&self.open, self.bytes)),
        ));
        // `count` is final before `next` is visible (OnceLock::set publishes).
        let _ = self.open.next.set(next.clone());
        self.open = next.clone();
        self.entries = 0;
        self.bytes = 0;
        let (evicted, paused) = {
            let mut inner = self.log.lock();
            inner.segments.push_back(next);
            Log::trim_locked(&mut inner);
            let mut evicted = None;
            while inner.segments.len() > self.log.budget_segments {
                // Over budget although some cursor still needs the oldest segment: it
                // goes, and cursors in it are cut off (they drop it when they notice).
                if let Some(old) = inner.segments.pop_front() {
                    let end = old.first_seq + old.count() as u64;
                    evicted = Some(evicted.map_or(end, |e: u64| e.max(end)));
                }
            }
            let paused = self.log.update_congestion(&mut inner);
            (evicted, paused)
        };
        for w in paused {
            w.wake();
        }
        evicted
    }

    /// A cursor whose next entry is the newest one (the one just appended), or the next
    /// to come when the log is empty.
    pub fn cursor_at_last(&self) -> Cursor {
        let index = self.entries.saturating_sub(1);
        Cursor {
            offset: self.open.end_of(index),
            seg: self.open.clone(),
            index,
        }
    }
}

/// A fresh epoch (TAG-3, RESUME-5): random, in `1..2^63` (it is stored as an SQLite
/// integer), and never `old`. Why not the start time: two servers started in the same
/// millisecond would share an epoch, and a client failing over from one to the other
/// with `/resume <epoch>:<seq>` would be handed the other chat's events as the ones it
/// missed instead of `ERR history-gap`. 63 random bits make that chance negligible.
pub fn new_epoch(old: Option<u64>) -> u64 {
    use std::hash::BuildHasher;
    // std's RandomState is keyed from the operating system's randomness; hashing the
    // time, the process and a counter with it gives an unpredictable 64-bit value
    // without another dependency.
    let keys = std::collections::hash_map::RandomState::new();
    (0u64..64)
        .map(|i| keys.hash_one((unix_now_ms(), std::process::id(), i)) >> 1)
        .find(|&e| e != 0 && Some(e) != old)
        .unwrap_or(if old == Some(1) { 2 } else { 1 })
}

/// Now as UTC milliseconds since 1970 (0 if the clock is before 1970).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A reader's place in the log: the next entry to hand on, and how many of its bytes
/// already went out (a write can stop mid-line).
#[derive(Debug, Clone)]
pub struct Cursor {
    seg: Arc<Segment>,
    /// Index in `seg` of the next entry.
    index: usize,
    /// Byte offset in `seg` of the next byte to hand on (inside entry `index`, or at its
    /// start).
    offset: usize,
}

impl Cursor {
    /// Seq of the next entry to hand on.
    pub fn next_seq(&self) -> u64 {
        self.seg.first_seq + self.index as u64
    }

    /// Moves forward to entry `seq` (or to the head, if `seq` is beyond it), following
    /// the segment chain; never moves back. Returns true when it left a segment (the
    /// caller may then [`Log::trim`]). Costs one step per segment crossed.
    pub fn seek(&mut self, seq: u64) -> bool {
        let mut moved = false;
        while seq > self.next_seq() {
            let count = self.seg.count();
            let end = self.seg.first_seq + count as u64;
            if seq < end {
                self.index = usize::try_from(seq - self.seg.first_seq).unwrap_or(count);
                self.offset = self.seg.end_of(self.index);
                break;
            }
            let Some(next) = self.seg.next().cloned() else {
                self.index = count;
                self.offset = self.seg.end_of(count);
                break;
            };
            if count != self.seg.count() {
                continue;
            }
            self.seg = next;
            self.index = 0;
            self.offset = 0;
            moved = true;
        }
        moved
    }

    /// Bytes of the next entry already handed on.
    pub fn partial(&self) -> usize {
        self.offset - self.seg.end_of(self.index)
    }

    /// Moves into the following segment when this one is sealed and done. Returns true
    /// when it moved (the caller may then [`Log::trim`]).
    pub fn settle(&mut self) -> bool {
        let mut moved = false;
        loop {
            let count = self.seg.count();
            if self.index < count {
                return moved;
            }
            let Some(next) = self.seg.next().cloned() else {
                return moved;
            };
            // `next` is set only after the last entry was published: re-check the count.
            if self.index < self.seg.count() {
                return moved;
            }
            self.seg = next;
            self.index = 0;
            self.offset = 0;
            moved = true;
        }
    }

    /// The entry the cursor is at, if it is published.
    pub fn entry(&self, epoch: u64) -> Option<Entry<'_>> {
        let seg = &self.seg;
        if self.index >= seg.count() {
            return None;
        }
        let start = seg.end_of(self.index);
        let end = seg.end_of(self.index + 1);
        Some(Entry {
            id: EntryId {
                epoch,
                seq: self.next_seq(),
            },
            time_ms: seg
                .times
                .get(self.index)
                .map_or(0, |t| t.load(Ordering::Relaxed)),
            line: seg.bytes(start, end),
            origin: seg.origin(self.index),
        })
    }

    /// Calls `f` with the published bytes from the cursor up to and including entry
    /// `last` (a seq), one contiguous slice per segment, without moving the cursor.
    /// Stops early when `f` returns false.
    pub fn runs<'a>(&'a self, last: u64, mut f: impl FnMut(&'a [u8]) -> bool) {
        self.file_runs(last, |run| f(run.bytes));
    }

    /// Like [`Cursor::runs`], each run with where it lies in the log's memfd (if the
    /// segment is mapped from one).
    pub fn file_runs<'a>(&'a self, last: u64, mut f: impl FnMut(Run<'a>) -> bool) {
        let mut seg = &self.seg;
        let mut offset = self.offset;
        loop {
            let count = seg.count();
            let upto = last
                .saturating_add(1)
                .saturating_sub(seg.first_seq)
                .min(count as u64) as usize;
            let end = seg.end_of(upto);
            if end > offset && !f(seg.run(offset, end)) {
                return;
            }
            if upto < count {
                return;
            }
            match seg.next() {
                Some(next) if count == seg.count() => {
                    seg = next;
                    offset = 0;
                }
                _ => return,
            }
        }
    }

    /// Calls `f` with each published entry from the cursor up to and including entry
    /// `last`, and how many of its bytes were already handed on (non-zero only for the
    /// first), without moving the cursor. Stops early when `f` returns false.
    pub fn entries<'a>(
        &'a self,
        epoch: u64,
        last: u64,
        mut f: impl FnMut(Entry<'a>, usize) -> bool,
    ) {
        let mut seg = &self.seg;
        let mut index = self.index;
        let mut skip = self.partial();
        loop {
            let count = seg.count();
            while index < count {
                let seq = seg.first_seq + index as u64;
                if seq > last {
                    return;
                }
                let entry = Entry {
                    id: EntryId { epoch, seq },
                    time_ms: seg
                        .times
                        .get(index)
                        .map_or(0, |t| t.load(Ordering::Relaxed)),
                    line: seg.bytes(seg.end_of(index), seg.end_of(index + 1)),
                    origin: seg.origin(index),
                };
                if !f(entry, std::mem::take(&mut skip)) {
                    return;
                }
                index += 1;
            }
            match seg.next() {
                Some(next) if count == seg.count() => {
                    seg = next;
                    index = 0;
                }
                _ => return,
            }
        }
    }

    /// Moves the cursor `n` bytes on (bytes handed out from [`Cursor::runs`] or from
    /// [`Cursor::entry`]). Returns true when it left a segment.
    /// Costs one step per segment crossed plus a binary search in each, however many
    /// entries the `n` bytes span.
    pub fn advance(&mut self, mut n: usize) -> bool {
        let mut moved = false;
        while n > 0 {
            moved |= self.settle();
            let count = self.seg.count();
            if self.index >= count {
                break;
            }
            // As far as `n` reaches in this segment's published bytes; the next entry to
            // hand on is the one that this offset does not finish.
            let step = n.min(self.seg.end_of(count).saturating_sub(self.offset));
            self.offset += step;
            n -= step;
            self.index = self.seg.entry_ending_after(self.index, count, self.offset);
        }
        moved | self.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("line number {i}\n").into_bytes()
    }

    /// Reads everything from `c` up to `last`, as the writer would, advancing it.
    fn read_all(c: &mut Cursor, last: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut got = Vec::new();
            c.runs(last, |b| {
                got.extend_from_slice(b);
                true
            });
            if got.is_empty() {
                return out;
            }
            c.advance(got.len());
            out.extend_from_slice(&got);
        }
    }

    #[test]
    fn appends_are_read_in_order_across_segments() {
        let (log, mut app) = Log::new(64 << 20);
        let first = app.append(&line(0));
        assert_eq!(first.id.seq, 1);
        let mut c = app.cursor_at_last();
        assert_eq!(c.next_seq(), 1);
        let mut want = line(0);
        for i in 1..5000 {
            want.extend_from_slice(&line(i));
            app.append(&line(i));
        }
        assert_eq!(log.head(), 5000);
        let got = read_all(&mut c, log.head());
        assert_eq!(got, want);
        assert_eq!(c.next_seq(), 5001);
    }

    #[test]
    fn partial_advance_inside_a_line() {
        let (log, mut app) = Log::new(64 << 20);
        app.append(b"hello\n");
        let mut c = app.cursor_at_last();
        app.append(b"world\n");
        c.advance(3);
        assert_eq!(c.partial(), 3);
        assert_eq!(c.next_seq(), 1);
        assert_eq!(read_all(&mut c, log.head()), b"lo\nworld\n");
        assert_eq!(c.partial(), 0);
    }

    /// Advancing by any number of bytes at once (many lines, mid-line, across segment
    /// boundaries) lands where advancing line by line would: the entry that the bytes
    /// handed on do not finish, with the part of it already handed on.
    #[test]
    fn advance_by_many_lines_at_once_lands_on_the_right_entry() {
        let (log, mut app) = Log::new(64 << 20);
        let lines: Vec<Vec<u8>> = (0..9000)
            .map(|i| vec![b'a' + (i % 26) as u8; 1 + (i * 37) % 200])
            .map(|mut l| {
                l.push(b'\n');
                l
            })
            .collect();
        app.append(&lines[0]);
        let mut c = app.cursor_at_last();
        for l in &lines[1..] {
            app.append(l);
        }
        assert!(
            log.retained_bytes() > 10 * SEGMENT_COST,
            "spans many segments"
        );
        let mut ends = Vec::new();
        let mut total = 0;
        for l in &lines {
            total += l.len();
            ends.push(total);
        }
        let (mut at, mut k) = (0, 0);
        let steps = [1, 7, 58, 300, 4096, 65_536, 200_000, 3];
        while at < total {
            let n = steps[k % steps.len()].min(total - at);
            k += 1;
            c.advance(n);
            at += n;
            let done = ends.partition_point(|&e| e <= at);
            let start = if done == 0 { 0 } else { ends[done - 1] };
            assert_eq!(c.next_seq(), done as u64 + 1, "after {at} bytes");
            assert_eq!(c.partial(), at - start, "after {at} bytes");
        }
        assert_eq!(c.next_seq(), log.head() + 1);
    }

    #[test]
    fn runs_stop_at_the_requested_entry() {
        let (_log, mut app) = Log::new(64 << 20);
        app.append(b"a\n");
        let c = app.cursor_at_last();
        app.append(b"b\n");
        app.append(b"c\n");
        let mut got = Vec::new();
        c.runs(2, |b| {
            got.extend_from_slice(b);
            true
        });
        assert_eq!(got, b"a\nb\n");
    }

    #[test]
    fn unread_segments_are_freed_and_lagging_ones_kept() {
        let (log, mut app) = Log::new(64 << 20);
        let big = vec![b'x'; 1000];
        app.append(&big);
        let mut lagging = app.cursor_at_last();
        for _ in 0..1000 {
            app.append(&big);
        }
        // 1001 KB of lines: 16 segments kept for the lagging cursor.
        assert!(log.retained_bytes() >= 15 * SEGMENT_COST);
        read_all(&mut lagging, log.head());
        log.trim();
        assert_eq!(log.retained_bytes(), SEGMENT_COST);
        drop(lagging);
        log.trim();
        assert_eq!(log.retained_bytes(), SEGMENT_COST);
    }

    /// The memfd path: every run knows where its bytes are in the log's file, and the
    /// segments' bytes lie back to back in it (each new segment starts where the one
    /// before ended, so runs across a boundary are one range of the file); a freed
    /// segment's pages leave the file at once, and the segments made afterwards go on
    /// from where the log's bytes ended. A heap log's runs carry no file.
    #[test]
    fn memfd_segments_continue_the_file_and_give_pages_back() {
        let (log, mut app) = Log::with_backing(64 << 20, Backing::MemFd);
        let big = vec![b'm'; 1000];
        app.append(&big);
        let mut c = app.cursor_at_last();
        for _ in 0..300 {
            app.append(&big);
        }
        let runs = |c: &Cursor| {
            let mut runs = Vec::new();
            c.file_runs(log.head(), |run| {
                let (_, off) = run.file.expect("a memfd log's runs are in its file");
                runs.push((off, run.bytes.len()));
                true
            });
            runs
        };
        let contiguous =
            |runs: &[(u64, usize)]| runs.windows(2).all(|w| w[1].0 == w[0].0 + w[0].1 as u64);
        let first = runs(&c);
        assert!(first.len() >= 4, "{first:?}");
        assert_eq!(first[0].0, 0);
        assert!(contiguous(&first), "{first:?}");
        let total: usize = first.iter().map(|r| r.1).sum();
        assert_eq!(total, 301 * 1000);
        let held = log.file_allocated_bytes().expect("fstat of the memfd");
        assert!(held >= total as u64, "held {held}");
        read_all(&mut c, log.head());
        log.trim();
        // Only the open segment (where the cursor now is) keeps pages: at most its
        // bytes' pages.
        let after = log.file_allocated_bytes().expect("fstat of the memfd");
        assert!(
            after <= SEGMENT_BYTES as u64,
            "freed segments' pages left: {after}"
        );
        // New segments go on right after the log's last byte.
        for _ in 0..100 {
            app.append(&big);
        }
        let next = runs(&c);
        assert!(next.len() >= 2, "{next:?}");
        assert_eq!(next[0].0, total as u64);
        assert!(contiguous(&next), "{next:?}");
        read_all(&mut c, log.head());
        log.trim();
        let after = log.file_allocated_bytes().expect("fstat of the memfd");
        assert!(after <= SEGMENT_BYTES as u64, "left: {after}");

        let (log, mut app) = Log::with_backing(64 << 20, Backing::Heap);
        app.append(b"x\n");
        let c = app.cursor_at_last();
        c.file_runs(log.head(), |run| {
            assert!(run.file.is_none());
            true
        });
        assert_eq!(log.file_allocated_bytes(), None);
    }

    #[test]
    fn congestion_then_eviction_past_the_budget() {
        let (log, mut app) = Log::new(8 * SEGMENT_COST);
        let big = vec![b'x'; 1000];
        app.append(&big);
        let lagging = app.cursor_at_last();
        let mut evicted = None;
        let mut congested_at = None;
        for i in 0..1000 {
            let a = app.append(&big);
            if log.congested() && congested_at.is_none() {
                congested_at = Some(i);
            }
            if a.evicted_below.is_some() {
                evicted = a.evicted_below;
                break;
            }
        }
        assert!(congested_at.is_some());
        let below = evicted.expect("evicted past the budget");
        assert!(lagging.next_seq() < below);
        assert!(log.retained_bytes() <= log.budget_bytes());
    }

    /// A writer woken by something else that parks again in the same round is not added
    /// twice: the list cannot grow while nothing is appended.
    /// A publish with no entry appended since the last one wakes nobody (and keeps the
    /// writers parked); the next entry's publish wakes them.
    #[test]
    fn publish_without_a_new_entry_wakes_nobody() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let woken = |c: &Arc<Count>| c.0.load(Ordering::SeqCst);
        let (log, mut app) = Log::new(64 << 20);
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut ticket = None;
        assert!(log.park(1, &waker, &mut ticket));
        app.append(b"x\n");
        log.publish();
        assert_eq!(woken(&count), 1);
        // Parked again, for entry 2: publishes with nothing new leave it parked.
        assert!(log.park(2, &waker, &mut ticket));
        for _ in 0..100 {
            log.publish();
        }
        assert_eq!(woken(&count), 1, "woken with nothing new");
        assert_eq!(log.lock().parked.len(), 1);
        app.append(b"y\n");
        log.publish();
        log.publish();
        assert_eq!(woken(&count), 2);
        assert!(log.lock().parked.is_empty());
    }

    #[test]
    fn parking_again_does_not_grow_the_list() {
        let (log, mut app) = Log::new(64 << 20);
        app.append(b"x\n");
        let waker = Waker::noop();
        let mut ticket = None;
        for _ in 0..1000 {
            assert!(log.park(2, waker, &mut ticket));
        }
        assert_eq!(log.lock().parked.len(), 1);
        log.publish();
        assert!(log.park(2, waker, &mut ticket));
        assert_eq!(log.lock().parked.len(), 1);
        app.append(b"y\n");
        assert!(!log.park(2, waker, &mut ticket));
    }

    #[test]
    fn entries_carry_engine_ids_only_when_asked() {
        let (log, mut app) = Log::with_origins(64 << 20);
        let origin = EntryId {
            epoch: 1_733_000_000_000,
            seq: 0,
        };
        app.append_from(b"x\n", origin);
        let c = app.cursor_at_last();
        assert_eq!(c.entry(log.epoch()).unwrap().origin, Some(origin));
        assert!(log.budget_bytes() > 0 && log.retained_bytes() > SEGMENT_COST);
        let (log, mut app) = Log::new(64 << 20);
        app.append_from(b"x\n", origin);
        let c = app.cursor_at_last();
        assert_eq!(c.entry(log.epoch()).unwrap().origin, None);
    }

    #[test]
    fn entries_carry_id_and_time() {
        let started = unix_now_ms();
        let (log, mut app) = Log::new(64 << 20);
        let a = app.append(b"x\n");
        let c = app.cursor_at_last();
        let e = c.entry(log.epoch()).unwrap();
        assert_eq!(e.id, a.id);
        assert_eq!(e.line, b"x\n");
        assert!(e.time_ms >= started && e.time_ms <= log.now_ms());
    }

    /// RESUME-5, TAG-3: two logs made in the same millisecond (two servers started
    /// together) get different epochs, so an id of one is never taken for the other's.
    #[test]
    fn resume_5_epochs_of_two_runs_differ_even_in_one_millisecond() {
        let epochs: Vec<u64> = (0..64).map(|_| Log::new(64 << 20).0.epoch()).collect();
        for (i, a) in epochs.iter().enumerate() {
            assert!(*a > 0 && *a < 1 << 63, "{a} fits an SQLite integer");
            assert!(!epochs[i + 1..].contains(a), "epoch {a} given twice");
        }
        assert_ne!(new_epoch(Some(epochs[0])), epochs[0]);
    }
}
