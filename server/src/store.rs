//! `--store FILE`: the log's retained entries and its epoch in SQLite, so that history
//! survives a restart (spec STORE-1..3, RESUME-5).
//!
//! Why it looks like this:
//! - **Nothing on the hot path.** The store is one more reader of the log: a thread of
//!   its own holds a [`Cursor`] into the same segments the writers read, parks on the log
//!   like a writer does, and copies the entries out itself. The sequencer neither copies
//!   nor sends anything per entry (a chat line costs the store nothing until the batch is
//!   written), and the lines are encoded once, in the log.
//! - **One row per batch.** A batch closes [`BATCH_WINDOW`] after its first entry was
//!   put in the order (or at [`BATCH_MAX`] entries, or [`BATCH_BYTES`] of them) and is
//!   committed as one row of one transaction: its first and last sequence numbers and a
//!   blob of its entries (time, public flag, length, line; see [`encode_entry`]). A
//!   row per entry cost about 2.4 µs of the store thread per chat line, mostly SQLite's
//!   per-row statement and B-tree work (`docs/history.md`); a row per batch costs that
//!   once per batch. A crash loses at most the entries not yet committed: those of the
//!   last window and the batch being written (STORE-2).
//! - **Back-pressure and memory are the log's.** Entries wait for the disk in the log's
//!   segments, which the store's cursor keeps, so a slow disk is a lagging reader: near
//!   the budget the senders are paused (CONN-4). Should the budget still be exceeded the
//!   store loses its place like a writer (it skips what was evicted, says so, and the
//!   file is not marked clean), so `--log-budget` bounds memory with a store as without.
//! - **Ids are durable after delivery, so the epoch says what survived.** The file
//!   records whether it was closed cleanly. After a clean stop the next run keeps the
//!   epoch and goes on counting; after anything else it takes a new epoch, so an id a
//!   client saw before the crash can never name a different event (STORE-3).
//! - **Every entry is stored, the shutdown notice too**, marked not public: sequence
//!   numbers in the file are then consecutive, which the in-memory log needs when it is
//!   refilled at start-up; history skips what is not public.
//! - **Bounded file.** Each commit deletes the batches whose entries are all older than
//!   the last `--history`, but never the newest: it says where counting goes on.
//! - **Schema versions.** `PRAGMA user_version` says which layout a file has. A file of
//!   the first layout (a row per entry, `user_version` 0) is migrated in one transaction
//!   when it is opened; a version this server does not know is a start-up error.
//!
//! WAL mode with `synchronous = NORMAL` and an exclusive lock held while the server runs
//! (one server per file): a commit is in the operating system's hands
//! when it returns, which survives a crash of the process (kill -9); a power cut may
//! lose the commits since the last checkpoint too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::log::{Appender, Cursor, Log, new_epoch};

/// How long a batch stays open after its first entry (STORE-2).
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Most entries in one batch.
pub const BATCH_MAX: usize = 4096;

/// Most bytes of encoded entries in one batch (a single entry may exceed it alone): the
/// store thread's buffer, and SQLite's copy of it while it is written, stay this small.
pub const BATCH_BYTES: usize = 1 << 20;

/// SQLite's page cache for the store, in KiB (`PRAGMA cache_size`), counted in the
/// memory bound of `docs/reliability.md`.
pub const CACHE_KIB: usize = 1024;

/// The layout this server writes (`PRAGMA user_version`): 2, a row per batch. Version 0
/// with an `entries` table is the first layout, a row per entry, which is migrated.
pub const SCHEMA_VERSION: i64 = 2;

/// Bytes in front of each entry's line in a batch: time (8), flags (1), length (4).
pub const ENTRY_HEADER: usize = 13;

/// `PRAGMA application_id` of our files ("chat"): a database of another program is
/// refused rather than written into.
const APPLICATION_ID: i64 = 0x6368_6174;

/// Why a store cannot be used (STORE-1). Each says which file and why.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite could not open or create the file.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// Not a database, or a damaged one.
    #[error("the store {path} is damaged or not a database ({why}); move it away to start afresh")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the check said.
        why: String,
    },
    /// Another process (another server) has the file open.
    #[error(
        "the store {path} is in use by another process (is another chat-server running with it?)"
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// A database of some other program.
    #[error("{path} is a database of another program, not a chat store")]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A layout this server does not know (written by a newer version).
    #[error(
        "the store {path} has layout version {version}, which this server does not know (it reads {SCHEMA_VERSION} and migrates 0); use the server that wrote it"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        version: i64,
    },
    /// The file (or its directory) cannot be written.
    #[error("cannot write the store {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its sequence number.
    pub seq: u64,
    /// UTC ms when it was first appended.
    pub time_ms: u64,
    /// A public event (false for the shutdown notice).
    pub public: bool,
    /// The encoded line, LF included.
    pub line: Vec<u8>,
}

/// What an opened store holds, for the log to start from.
#[derive(Debug)]
pub struct Restored {
    /// The epoch of this run (kept after a clean stop, new otherwise).
    pub epoch: u64,
    /// True when the file was closed cleanly (or is new).
    pub clean: bool,
    /// The retained entries, oldest first, consecutive.
    pub entries: Vec<StoredEntry>,
    /// The first sequence number of this run.
    pub next_seq: u64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Appends one entry to a batch: time (u64, little-endian), flags (1: public), the
/// line's length (u32, little-endian), the line.
pub fn encode_entry(time_ms: u64, public: bool, line: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.push(u8::from(public));
    // A log entry is at most a segment (64 KiB): its length fits u32.
    out.extend_from_slice(&u32::try_from(line.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(line);
}

/// The entries of the batch holding `first..=last`, or why it is damaged.
pub fn decode_batch(first: u64, last: u64, mut data: &[u8]) -> Result<Vec<StoredEntry>, String> {
    let damaged = |why: &str| format!("batch {first}..={last}: {why}");
    let count = last
        .checked_sub(first)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| damaged("its range is reversed"))?;
    let mut out = Vec::with_capacity(count.min(BATCH_MAX));
    let mut seq = first;
    while !data.is_empty() {
        let (header, rest) = data
            .split_first_chunk::<ENTRY_HEADER>()
            .ok_or_else(|| damaged("an entry is cut short"))?;
        let (time, rest_header) = header.split_at(8);
        let (flags, len) = rest_header.split_at(1);
        let time_ms = u64::from_le_bytes(time.try_into().map_err(|_| damaged("time"))?);
        let len = u32::from_le_bytes(len.try_into().map_err(|_| damaged("length"))?) as usize;
        if rest.len() < len {
            return Err(damaged("a line is cut short"));
        }
        let (line, rest) = rest.split_at(len);
        if out.len() == count {
            return Err(damaged("more entries than its range"));
        }
        out.push(StoredEntry {
            seq,
            time_ms,
            public: flags.first().is_some_and(|f| f & 1 == 1),
            line: line.to_vec(),
        });
        seq += 1;
        data = rest;
    }
    if out.len() != count {
        return Err(damaged("fewer entries than its range"));
    }
    Ok(out)
}

/// Opens (or creates) the store at `path`, keeping at most `keep` entries, and marks it
/// in use (not clean) until [`StoreHandle::close`]. Start-up errors are [`StoreError`].
/// The store thread starts at once and begins saving once [`StoreHandle::attach`] gave
/// it the log.
pub fn open(path: &Path, keep: usize) -> Result<(Restored, StoreHandle), StoreError> {
    let owned = || path.to_path_buf();
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: owned(),
        source,
    })?;
    let corrupt = |why: String| StoreError::Corrupt { path: owned(), why };
    // One server per file: the first access takes a lock that is held until the store
    // closes (and without per-transaction locking, nor a shared-memory index beside
    // the file); a second server on the same file is refused at once, not after a wait.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
        .and_then(|()| conn.busy_timeout(Duration::ZERO))
        .map_err(|source| StoreError::Open {
            path: owned(),
            source,
        })?;
    // Reading the header is the first real access: a file that is not a database
    // fails here, and so does one that another server holds.
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                StoreError::InUse { path: owned() }
            } else {
                corrupt(e.to_string())
            }
        })?;
    if check != "ok" {
        return Err(corrupt(check));
    }
    let pragma = |name: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))
    };
    let app_id = pragma("application_id")?;
    let version = pragma("user_version")?;
    let table = |name: &str| -> Result<bool, StoreError> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| corrupt(e.to_string()))
    };
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(StoreError::Foreign { path: owned() });
    }
    if version != 0 && version != SCHEMA_VERSION {
        return Err(StoreError::Version {
            path: owned(),
            version,
        });
    }
    let first_layout = version == 0 && table("entries")?;
    let write = |source| StoreError::Write {
        path: owned(),
        source,
    };
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -{CACHE_KIB};
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS batches (
             first_seq INTEGER PRIMARY KEY,
             last_seq INTEGER NOT NULL,
             entries BLOB NOT NULL
         );"
    ))
    .map_err(write)?;
    if first_layout {
        let moved = migrate_first_layout(&mut conn, keep).map_err(|e| match e {
            Migration::Read(why) => corrupt(why),
            Migration::Write(source) => write(source),
        })?;
        info!(store = %path.display(), entries = moved, "store migrated to a row per batch");
    }
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
        .map_err(write)?;
    let meta = |key: &str| -> Result<Option<i64>, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(e.to_string()))
    };
    let old_epoch = meta("epoch")?.map(to_u64);
    let clean = meta("clean")?.is_none_or(|c| c == 1);
    let mut entries = read_batches(&conn, keep).map_err(corrupt)?;
    // Keep only the newest consecutive run (a lost or failed batch leaves a hole).
    if let Some(cut) = entries
        .windows(2)
        .rposition(|w| w.get(1).map(|b| b.seq) != w.first().map(|a| a.seq + 1))
    {
        entries.drain(..=cut);
    }
    // Where counting goes on: after the newest batch (always kept), or what the file
    // said at its last start.
    let newest: Option<i64> = conn
        .query_row("SELECT max(last_seq) FROM batches", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    let next_seq = newest
        .map_or(1, |l| to_u64(l).saturating_add(1))
        .max(meta("next_seq")?.map_or(1, to_u64))
        .max(entries.last().map_or(1, |e| e.seq + 1));
    let epoch = match old_epoch {
        Some(e) if clean => e,
        Some(e) => new_epoch(Some(e)),
        None => new_epoch(None),
    };
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?1), ('clean', 0), ('next_seq', ?2)",
        params![to_i64(epoch), to_i64(next_seq)],
    )
    .map_err(write)?;
    if !clean {
        warn!(store = %path.display(), epoch, "the store was not closed cleanly: new epoch, clients resuming from before get a gap");
    }
    info!(store = %path.display(), entries = entries.len(), epoch, next_seq, "store opened");
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        let path = owned();
        let keep = keep as u64;
        std::thread::Builder::new()
            .name("chat-store".into())
            .spawn(move || run(conn, &shared, keep, &path))
            .map_err(|e| StoreError::Corrupt {
                path: owned(),
                why: format!("cannot start the store thread: {e}"),
            })?
    };
    Ok((
        Restored {
            epoch,
            clean,
            entries,
            next_seq,
        },
        StoreHandle {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The newest batches, decoded, until they hold `keep` entries: oldest first.
fn read_batches(conn: &Connection, keep: usize) -> Result<Vec<StoredEntry>, String> {
    let mut stmt = conn
        .prepare("SELECT first_seq, last_seq, entries FROM batches ORDER BY first_seq DESC")
        .map_err(|e| e.to_string())?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut newest_first = Vec::new();
    let mut held = 0;
    while held < keep {
        let Some(row) = rows.next().map_err(|e| e.to_string())? else {
            break;
        };
        let first = row.get::<_, i64>(0).map_err(|e| e.to_string())?;
        let last = row.get::<_, i64>(1).map_err(|e| e.to_string())?;
        let data = row
            .get_ref(2)
            .and_then(|v| v.as_blob().map_err(Into::into))
            .map_err(|e| e.to_string())?;
        let batch = decode_batch(to_u64(first), to_u64(last), data)?;
        held += batch.len();
        newest_first.push(batch);
    }
    let mut entries: Vec<StoredEntry> = newest_first.into_iter().rev().flatten().collect();
    let extra = entries.len().saturating_sub(keep);
    entries.drain(..extra);
    Ok(entries)
}

enum Migration {
    Read(String),
    Write(rusqlite::Error),
}

/// Moves the newest `keep` rows of a first-layout `entries` table into batches and drops
/// the table, in one transaction (a crash midway leaves the old layout). Returns how
/// many entries moved.
fn migrate_first_layout(conn: &mut Connection, keep: usize) -> Result<usize, Migration> {
    let tx = conn.transaction().map_err(Migration::Write)?;
    let rows: Vec<StoredEntry> = {
        let mut stmt = tx
            .prepare("SELECT seq, time_ms, public, line FROM entries ORDER BY seq DESC LIMIT ?1")
            .map_err(|e| Migration::Read(e.to_string()))?;
        let mut rows = stmt
            .query_map([to_i64(keep as u64)], |r| {
                Ok(StoredEntry {
                    seq: to_u64(r.get(0)?),
                    time_ms: to_u64(r.get(1)?),
                    public: r.get::<_, i64>(2)? != 0,
                    line: r.get(3)?,
                })
            })
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(|e| Migration::Read(e.to_string()))?;
        rows.reverse();
        rows
    };
    // One batch per consecutive run (cut at BATCH_BYTES), as if committed so.
    let mut buf = Vec::new();
    let mut first = None;
    for (i, e) in rows.iter().enumerate() {
        let first_seq = *first.get_or_insert(e.seq);
        encode_entry(e.time_ms, e.public, &e.line, &mut buf);
        let run_ends = rows.get(i + 1).is_none_or(|n| n.seq != e.seq + 1);
        if run_ends || buf.len() >= BATCH_BYTES {
            tx.execute(
                "INSERT INTO batches (first_seq, last_seq, entries) VALUES (?1, ?2, ?3)",
                params![to_i64(first_seq), to_i64(e.seq), buf],
            )
            .map_err(Migration::Write)?;
            buf.clear();
            first = None;
        }
    }
    tx.execute_batch("DROP TABLE entries;")
        .map_err(Migration::Write)?;
    tx.commit().map_err(Migration::Write)?;
    Ok(rows.len())
}

/// What the hub and the store thread share.
#[derive(Debug, Default)]
struct Shared {
    /// The log and the store's cursor in it (its next entry is the first not yet
    /// committed); `None` until [`StoreHandle::attach`]. The store thread holds the lock
    /// while it copies a batch out; the hub only when the log evicted entries.
    place: Mutex<Option<Place>>,
    /// Entries that are not public events (the shutdown notice), told before they are
    /// appended.
    not_public: Mutex<BTreeSet<u64>>,
    /// Set by [`StoreHandle::close`]: commit everything, mark the file clean, stop.
    closing: AtomicBool,
    /// Entries evicted from the log before the store had them (the file has a hole).
    lost: AtomicU64,
}

#[derive(Debug)]
struct Place {
    log: Arc<Log>,
    cursor: Cursor,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a copy or a seek; a panic cannot leave it torn.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes the store thread (from [`Log::publish`] and [`StoreHandle`]).
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The sequencer's end of the store.
#[derive(Debug)]
pub struct StoreHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StoreHandle {
    /// Starts saving the entries of `appender`'s log that come after those it holds now
    /// (those were restored from the file).
    pub fn attach(&self, appender: &Appender) {
        let log = appender.log().clone();
        let mut cursor = appender.cursor_at_last();
        cursor.seek(log.head() + 1);
        *lock(&self.shared.place) = Some(Place { log, cursor });
        self.unpark();
    }

    /// Marks the entry that will be appended as `seq` as not a public event. Call it
    /// before appending the entry, under the sequencer's lock.
    pub fn not_public(&self, seq: u64) {
        lock(&self.shared.not_public).insert(seq);
    }

    /// The log evicted every entry below `below`: if the store had not committed them
    /// yet they are lost to it (said in the log, and the file is not marked clean), and
    /// its cursor moves on so that it holds no evicted segment (the budget holds).
    pub fn evicted(&self, below: u64) {
        let mut place = lock(&self.shared.place);
        let Some(p) = place.as_mut() else { return };
        let next = p.cursor.next_seq();
        if next >= below {
            return;
        }
        if let Some(mut c) = p.log.oldest_cursor() {
            c.seek(below);
            p.cursor = c;
        }
        let lost = below - next;
        self.shared.lost.fetch_add(lost, Ordering::Relaxed);
        error!(
            lost,
            "the store fell behind the log's budget: entries are missing from the file"
        );
    }

    fn unpark(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Commits everything appended so far, marks the file closed cleanly (RESUME-5)
    /// unless entries were lost, and stops the thread. Idempotent.
    pub fn close(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.unpark();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// How the store thread last waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rhythm {
    /// It parked on the log (idle), or has not waited yet.
    Parked,
    /// It just committed a batch.
    Committed,
    /// It slept one window after a commit.
    Slept,
}

/// The store thread: waits for entries, lets a batch window pass, commits a batch.
fn run(mut conn: Connection, shared: &Shared, keep: u64, path: &Path) {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut ticket = None;
    let mut failed = false;
    let mut buf = Vec::new();
    let mut rhythm = Rhythm::Parked;
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        let mut place = lock(&shared.place);
        let Some(p) = place.as_mut() else {
            drop(place);
            if closing {
                break;
            }
            std::thread::park();
            continue;
        };
        if p.cursor.settle() {
            p.log.trim();
        }
        let epoch = p.log.epoch();
        let Some(since) = p.cursor.entry(epoch).map(|e| e.time_ms) else {
            let (log, next) = (p.log.clone(), p.cursor.next_seq());
            drop(place);
            if closing {
                break;
            }
            if rhythm == Rhythm::Committed {
                // Busy: one window on the clock, then whatever came meanwhile is the next
                // batch (one wake-up per batch, not one for the first entry and one for
                // its window).
                rhythm = Rhythm::Slept;
                std::thread::park_timeout(BATCH_WINDOW);
                continue;
            }
            // Idle: park until the next entry is published (or the close).
            rhythm = Rhythm::Parked;
            if log.park(next, &waker, &mut ticket) && !shared.closing.load(Ordering::SeqCst) {
                std::thread::park();
            }
            continue;
        };
        // After a window on the clock the pending entries are younger than a window:
        // they go now. Otherwise the batch waits for its first entry's window.
        if !closing && rhythm != Rhythm::Slept {
            let due = p.log.instant_at(since) + BATCH_WINDOW;
            let now = Instant::now();
            if now < due {
                drop(place);
                std::thread::park_timeout(due - now);
                continue;
            }
        }
        // Copy the batch out of the log and move the cursor past it, then let go of the
        // log while SQLite writes.
        buf.clear();
        let first = p.cursor.next_seq();
        let mut last = None;
        let mut count = 0;
        {
            let mut not_public = lock(&shared.not_public);
            p.cursor.entries(epoch, u64::MAX, |e, _| {
                if count == BATCH_MAX
                    || (count > 0 && buf.len() + ENTRY_HEADER + e.line.len() > BATCH_BYTES)
                {
                    return false;
                }
                encode_entry(e.time_ms, !not_public.contains(&e.id.seq), e.line, &mut buf);
                last = Some(e.id.seq);
                count += 1;
                true
            });
            if let Some(last) = last {
                *not_public = not_public.split_off(&(last + 1));
            }
        }
        let Some(last) = last else { continue };
        let moved = p.cursor.seek(last + 1);
        let log = p.log.clone();
        drop(place);
        if moved {
            log.trim();
        }
        rhythm = Rhythm::Committed;
        if let Err(e) = commit(&mut conn, first, last, &buf, keep) {
            // The entries stay in memory; the file misses them, and is therefore not
            // marked clean at the end (the next run takes a new epoch).
            error!(store = %path.display(), error = %e, lost = count, "cannot write to the store");
            failed = true;
        }
    }
    let lost = shared.lost.load(Ordering::Relaxed);
    if failed || lost > 0 {
        warn!(store = %path.display(), lost, "the store misses entries: not marked clean, the next start takes a new epoch");
        return;
    }
    let marked = conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean', 1)",
        [],
    );
    if let Err(e) = marked {
        error!(store = %path.display(), error = %e, "cannot mark the store closed");
    }
}

/// Writes one batch (`first..=last`, encoded in `data`) and deletes the batches that
/// hold only entries older than the last `keep`, in one transaction.
fn commit(
    conn: &mut Connection,
    first: u64,
    last: u64,
    data: &[u8],
    keep: u64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached("INSERT INTO batches (first_seq, last_seq, entries) VALUES (?1, ?2, ?3)")?
        .execute(params![to_i64(first), to_i64(last), data])?;
    // Only batches at or below the cut can go (the primary key bounds the search), and
    // never the new one: the newest batch says where counting goes on (`next_seq` is
    // not rewritten per batch, which would cost a page per commit).
    tx.prepare_cached(
        "DELETE FROM batches WHERE first_seq <= ?1 AND last_seq <= ?1 AND first_seq < ?2",
    )?
    .execute([to_i64(last.saturating_sub(keep)), to_i64(first)])?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chat-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("chat.db")
    }

    /// The log a hub would make from `r`, with the store attached (as `Hub` does).
    fn attached(r: &Restored, h: &StoreHandle) -> Appender {
        let (_, mut app) = Log::with_origin(
            64 << 20,
            r.epoch,
            r.entries.first().map_or(r.next_seq, |e| e.seq),
        );
        for e in &r.entries {
            app.append_at(&e.line, e.time_ms);
        }
        h.attach(&app);
        app
    }

    fn append(app: &mut Appender, seqs: std::ops::RangeInclusive<u64>) {
        for s in seqs {
            let a = app.append(format!("a: {s}\n").as_bytes());
            assert_eq!(a.id.seq, s);
        }
        app.log().publish();
    }

    fn rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap()
    }

    /// STORE-1, RESUME-5: a clean close keeps the epoch and the entries; an unclean one
    /// keeps the entries under a new epoch.
    #[test]
    fn store_1_clean_restart_keeps_epoch_unclean_changes_it() {
        let path = temp("epoch");
        let (r, mut h) = open(&path, 3).unwrap();
        assert!(r.clean && r.entries.is_empty() && r.next_seq == 1);
        let mut app = attached(&r, &h);
        append(&mut app, 1..=5);
        h.close();
        let (r2, h2) = open(&path, 3).unwrap();
        assert!(r2.clean);
        assert_eq!(r2.epoch, r.epoch);
        assert_eq!(
            r2.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(r2.entries[0].line, b"a: 3\n");
        assert_eq!(r2.next_seq, 6);
        // Another server on the same file is refused while this one has it.
        let err = open(&path, 3).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("chat.db"), "{err}");
        // Not closed: as after kill -9, the file still says "in use" (what `open` wrote).
        drop(h2);
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE meta SET value = 0 WHERE key = 'clean'", [])
            .unwrap();
        let (r3, _h3) = open(&path, 3).unwrap();
        assert!(!r3.clean);
        assert_ne!(r3.epoch, r2.epoch);
        assert_eq!(r3.next_seq, 6);
    }

    /// STORE-1 with no history kept (`--history 0`): the file keeps the newest batch
    /// only, so that a restart goes on counting.
    #[test]
    fn store_1_without_history_counting_goes_on() {
        let path = temp("keep-none");
        let (r, mut h) = open(&path, 0).unwrap();
        let mut app = attached(&r, &h);
        append(&mut app, 1..=5);
        std::thread::sleep(BATCH_WINDOW * 3);
        append(&mut app, 6..=8);
        h.close();
        assert_eq!(rows(&path), 1);
        let (r2, mut h2) = open(&path, 0).unwrap();
        assert!(r2.clean && r2.entries.is_empty());
        assert_eq!(r2.next_seq, 9);
        let mut app2 = attached(&r2, &h2);
        append(&mut app2, 9..=9);
        h2.close();
        let (r3, _h3) = open(&path, 0).unwrap();
        assert_eq!(r3.next_seq, 10);
    }

    /// STORE-2: entries are written a batch at a time, not a row each; the file keeps
    /// only the batches that hold the last `keep`; the shutdown notice is stored, marked
    /// not public; a restart goes on counting after the last one.
    #[test]
    fn store_2_a_row_per_batch_and_the_file_stays_bounded() {
        let path = temp("batches");
        let (r, mut h) = open(&path, 100).unwrap();
        let mut app = attached(&r, &h);
        for round in 0..4u64 {
            append(&mut app, round * 1000 + 1..=round * 1000 + 1000);
            std::thread::sleep(BATCH_WINDOW * 2);
        }
        h.not_public(app.log().head() + 1);
        app.append(b"ERR server-shutdown\n");
        h.close();
        // 4,001 entries in a handful of batches; only the newest ones are kept.
        let n = rows(&path);
        assert!((1..=3).contains(&n), "{n} batches");
        let (r2, mut h2) = open(&path, 100).unwrap();
        assert!(r2.clean);
        assert_eq!(r2.entries.len(), 100);
        assert_eq!(r2.entries.first().map(|e| e.seq), Some(3902));
        let last = r2.entries.last().unwrap();
        assert_eq!((last.seq, last.public), (4001, false));
        assert!(r2.entries.iter().rev().skip(1).all(|e| e.public));
        assert_eq!(r2.entries[0].line, b"a: 3902\n");
        assert_eq!(r2.next_seq, 4002);
        let mut app2 = attached(&r2, &h2);
        append(&mut app2, 4002..=4010);
        h2.close();
        let (r3, _h3) = open(&path, 100).unwrap();
        assert_eq!(r3.entries.last().map(|e| e.seq), Some(4010));
        assert_eq!(r3.epoch, r.epoch);
    }

    /// Entries round-trip through a batch; a damaged batch is refused, never misread.
    #[test]
    fn store_2_batch_encoding_round_trips_and_checks_its_range() {
        let mut buf = Vec::new();
        encode_entry(7, true, b"a: x\n", &mut buf);
        encode_entry(u64::MAX, false, b"", &mut buf);
        encode_entry(9, true, &[0xff; 300], &mut buf);
        let got = decode_batch(10, 12, &buf).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            StoredEntry {
                seq: 10,
                time_ms: 7,
                public: true,
                line: b"a: x\n".to_vec()
            }
        );
        assert_eq!(
            (got[1].seq, got[1].time_ms, got[1].public),
            (11, u64::MAX, false)
        );
        assert_eq!(got[2].line.len(), 300);
        assert!(
            decode_batch(10, 11, &buf).is_err(),
            "more entries than the range"
        );
        assert!(
            decode_batch(10, 13, &buf).is_err(),
            "fewer entries than the range"
        );
        assert!(decode_batch(12, 10, &buf).is_err(), "reversed range");
        for cut in [1, ENTRY_HEADER - 1, buf.len() - 1] {
            assert!(
                decode_batch(10, 12, &buf[..buf.len() - cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    /// STORE-1: a file that is not a database, another program's database, a layout
    /// this server does not know, or a damaged batch is a clear start-up error.
    #[test]
    fn store_1_bad_files_are_refused() {
        let path = temp("garbage");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = open(&path, 10).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("chat.db"));
        let path = temp("foreign");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE notes (x INTEGER);").unwrap();
        drop(c);
        let err = open(&path, 10).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
        let err = open(Path::new("/nonexistent-dir/chat.db"), 10).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/chat.db"),
            "{err}"
        );
        // A newer layout.
        let path = temp("newer");
        drop(open(&path, 10).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 3;").unwrap();
        drop(c);
        let err = open(&path, 10).unwrap_err();
        assert!(
            matches!(err, StoreError::Version { version: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("layout version 3"), "{err}");
        // A batch whose blob does not match its range.
        let path = temp("damaged");
        drop(open(&path, 10).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO batches (first_seq, last_seq, entries) VALUES (1, 5, x'0102')",
            [],
        )
        .unwrap();
        drop(c);
        let err = open(&path, 10).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("batch 1..=5"), "{err}");
    }

    /// A file of the first layout (a row per entry, user_version 0) is migrated when it
    /// is opened: the same entries, epoch and cleanliness, then batches as usual.
    #[test]
    fn store_1_first_layout_is_migrated() {
        let path = temp("first-layout");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID};
             PRAGMA journal_mode = WAL;
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE entries (
                 seq INTEGER PRIMARY KEY,
                 time_ms INTEGER NOT NULL,
                 public INTEGER NOT NULL,
                 line BLOB NOT NULL
             );
             INSERT INTO meta (key, value) VALUES ('epoch', 1700000000000), ('clean', 1), ('next_seq', 8);"
        ))
        .unwrap();
        for seq in 1..=7i64 {
            c.execute(
                "INSERT INTO entries (seq, time_ms, public, line) VALUES (?1, ?2, ?3, ?4)",
                params![
                    seq,
                    1_700_000_000_000 + seq,
                    i64::from(seq != 7),
                    format!("b: {seq}\n").into_bytes()
                ],
            )
            .unwrap();
        }
        drop(c);
        let (r, mut h) = open(&path, 5).unwrap();
        assert!(r.clean);
        assert_eq!(r.epoch, 1_700_000_000_000);
        assert_eq!(r.next_seq, 8);
        let seqs: Vec<u64> = r.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5, 6, 7]);
        assert_eq!(r.entries[0].line, b"b: 3\n");
        assert_eq!(r.entries[0].time_ms, 1_700_000_000_003);
        assert!(!r.entries[4].public && r.entries[3].public);
        let mut app = attached(&r, &h);
        append(&mut app, 8..=9);
        h.close();
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let old: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'entries'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!((version, old), (SCHEMA_VERSION, 0));
        drop(c);
        let (r2, _h2) = open(&path, 5).unwrap();
        assert!(r2.clean && r2.epoch == r.epoch);
        let seqs: Vec<u64> = r2.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9]);
    }

    /// Entries the log evicted before the store had them are lost to the file: it is not
    /// marked clean (the next start takes a new epoch) and keeps the newest consecutive
    /// run only.
    #[test]
    fn store_2_entries_evicted_before_commit_make_the_file_unclean() {
        let path = temp("evicted");
        let (r, mut h) = open(&path, 1000).unwrap();
        let mut app = attached(&r, &h);
        append(&mut app, 1..=10);
        // Wait for that batch, then evict the next ones while their window is open (a
        // loaded machine may have committed them first: try again, a few times).
        let mut lost = false;
        let mut next = 11;
        for _ in 0..20 {
            std::thread::sleep(BATCH_WINDOW * 3);
            append(&mut app, next..=next + 9);
            next += 10;
            h.evicted(next);
            if h.shared.lost.load(Ordering::Relaxed) > 0 {
                lost = true;
                break;
            }
        }
        assert!(lost, "the store always committed first");
        append(&mut app, next..=next + 4);
        h.close();
        let (r2, _h2) = open(&path, 1000).unwrap();
        assert!(!r2.clean && r2.epoch != r.epoch);
        let seqs: Vec<u64> = r2.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (next..=next + 4).collect::<Vec<_>>());
        assert_eq!(r2.next_seq, next + 5);
    }
}
