//! `--store FILE`: the log's retained entries and its epoch in SQLite, so that history
//! survives a restart (spec STORE-1..3, RESUME-5).
//!
//! Why it looks like this:
//! - **Off the hot path.** The sequencer hands each entry to a [`StoreHandle`] (a send on
//!   a bounded channel: a copy of the line, no I/O) and goes on; a thread of its own
//!   commits entries in batches, one transaction per batch. A batch closes
//!   [`BATCH_WINDOW`] after its first entry or at [`BATCH_MAX`] entries, so a crash
//!   loses at most the entries of the last window (STORE-2). Only when the disk falls
//!   [`CHANNEL_CAPACITY`] entries behind does the sequencer wait: back-pressure instead
//!   of unbounded memory.
//! - **Ids are durable after delivery, so the epoch says what survived.** The file
//!   records whether it was closed cleanly. After a clean stop the next run keeps the
//!   epoch and goes on counting; after anything else it takes a new epoch, so an id a
//!   client saw before the crash can never name a different event (STORE-3).
//! - **Every entry is stored, the shutdown notice too**, marked not public: sequence
//!   numbers in the file are then consecutive, which the in-memory log needs when it is
//!   refilled at start-up; history skips what is not public.
//! - **Bounded file.** Each commit deletes the rows older than the last `--history`.
//!
//! WAL mode with `synchronous = NORMAL`: a commit is in the operating system's hands
//! when it returns, which survives a crash of the process (kill -9); a power cut may
//! lose the last commits too.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::log::unix_now_ms;

/// How long a batch stays open after its first entry (STORE-2).
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Most entries in one batch.
pub const BATCH_MAX: usize = 4096;

/// Entries the sequencer may hand on before it waits for the disk (STORE-2).
pub const CHANNEL_CAPACITY: usize = 16_384;

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
    /// A database of some other program.
    #[error("{path} is a database of another program, not a chat store")]
    Foreign {
        /// The file.
        path: PathBuf,
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

/// Opens (or creates) the store at `path`, keeping at most `keep` entries, and marks it
/// in use (not clean) until [`StoreHandle::close`]. Start-up errors are [`StoreError`].
pub fn open(path: &Path, keep: usize) -> Result<(Restored, StoreHandle), StoreError> {
    let owned = || path.to_path_buf();
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: owned(),
        source,
    })?;
    let corrupt = |why: String| StoreError::Corrupt { path: owned(), why };
    // Reading the header is the first real access: a file that is not a database
    // fails here.
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if check != "ok" {
        return Err(corrupt(check));
    }
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| corrupt(e.to_string()))?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(StoreError::Foreign { path: owned() });
    }
    let write = |source| StoreError::Write {
        path: owned(),
        source,
    };
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS entries (
             seq INTEGER PRIMARY KEY,
             time_ms INTEGER NOT NULL,
             public INTEGER NOT NULL,
             line BLOB NOT NULL
         );"
    ))
    .map_err(write)?;
    let meta = |key: &str| -> Result<Option<i64>, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(e.to_string()))
    };
    let old_epoch = meta("epoch")?.map(to_u64);
    let clean = meta("clean")?.is_none_or(|c| c == 1);
    let mut entries = read_entries(&conn, keep).map_err(|e| corrupt(e.to_string()))?;
    // Keep only the newest consecutive run (a failed batch would leave a hole).
    if let Some(cut) = entries
        .windows(2)
        .rposition(|w| w.get(1).map(|b| b.seq) != w.first().map(|a| a.seq + 1))
    {
        entries.drain(..=cut);
    }
    let next_seq = entries.last().map_or_else(
        || meta("next_seq").ok().flatten().map_or(1, to_u64),
        |e| e.seq + 1,
    );
    let epoch = match old_epoch {
        Some(e) if clean => e,
        Some(e) => unix_now_ms().max(e.saturating_add(1)),
        None => unix_now_ms(),
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
    let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
    let keep = keep as u64;
    let path_owned = owned();
    let thread = std::thread::Builder::new()
        .name("chat-store".into())
        .spawn(move || run(conn, rx, keep, &path_owned))
        .map_err(|e| StoreError::Corrupt {
            path: owned(),
            why: format!("cannot start the store thread: {e}"),
        })?;
    Ok((
        Restored {
            epoch,
            clean,
            entries,
            next_seq,
        },
        StoreHandle {
            tx: Some(tx),
            thread: Some(thread),
        },
    ))
}

fn read_entries(conn: &Connection, keep: usize) -> rusqlite::Result<Vec<StoredEntry>> {
    let mut stmt =
        conn.prepare("SELECT seq, time_ms, public, line FROM entries ORDER BY seq DESC LIMIT ?1")?;
    let mut rows: Vec<StoredEntry> = stmt
        .query_map([to_i64(keep as u64)], |r| {
            Ok(StoredEntry {
                seq: to_u64(r.get(0)?),
                time_ms: to_u64(r.get(1)?),
                public: r.get::<_, i64>(2)? != 0,
                line: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.reverse();
    Ok(rows)
}

enum Msg {
    Entry(StoredEntry),
    /// Commit what is pending, mark the file clean, answer, stop.
    Close(SyncSender<()>),
}

/// The sequencer's end of the store.
#[derive(Debug)]
pub struct StoreHandle {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Entry(e) => write!(f, "Entry({})", e.seq),
            Msg::Close(_) => f.write_str("Close"),
        }
    }
}

impl StoreHandle {
    /// Hands an entry to the store thread. Waits only when the thread is
    /// [`CHANNEL_CAPACITY`] entries behind (STORE-2).
    pub fn save(&self, seq: u64, time_ms: u64, public: bool, line: &[u8]) {
        if let Some(tx) = &self.tx {
            let entry = StoredEntry {
                seq,
                time_ms,
                public,
                line: line.to_vec(),
            };
            if tx.send(Msg::Entry(entry)).is_err() {
                error!("the store thread has stopped; entries are no longer saved");
            }
        }
    }

    /// Commits everything handed on so far, marks the file closed cleanly (RESUME-5)
    /// and stops the thread. Idempotent.
    pub fn close(&mut self) {
        if let Some(tx) = self.tx.take() {
            let (ack, done) = sync_channel(1);
            if tx.send(Msg::Close(ack)).is_ok() {
                let _ = done.recv();
            }
        }
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

/// The store thread: batches entries and commits them.
fn run(mut conn: Connection, rx: Receiver<Msg>, keep: u64, path: &Path) {
    let mut failed = false;
    let mut batch: Vec<StoredEntry> = Vec::new();
    loop {
        let first = match rx.recv() {
            Ok(m) => m,
            // Every sender is gone without a close: not clean.
            Err(_) => return,
        };
        let mut close = None;
        match first {
            Msg::Entry(e) => batch.push(e),
            Msg::Close(ack) => close = Some(ack),
        }
        let deadline = Instant::now() + BATCH_WINDOW;
        while close.is_none() && batch.len() < BATCH_MAX {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Msg::Entry(e)) => batch.push(e),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(e) = commit(&mut conn, &batch, keep) {
                // The events stay in memory; the file misses them, and is therefore
                // not marked clean at the end (the next run takes a new epoch).
                error!(store = %path.display(), error = %e, lost = batch.len(), "cannot write to the store");
                failed = true;
            }
            batch.clear();
        }
        if let Some(ack) = close {
            // Drain what raced the close (nothing should: the hub stops first).
            let rest: Vec<StoredEntry> = rx
                .try_iter()
                .filter_map(|m| match m {
                    Msg::Entry(e) => Some(e),
                    Msg::Close(_) => None,
                })
                .collect();
            if !rest.is_empty() && commit(&mut conn, &rest, keep).is_err() {
                failed = true;
            }
            if !failed {
                let marked = conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('clean', 1)",
                    [],
                );
                if let Err(e) = marked {
                    error!(store = %path.display(), error = %e, "cannot mark the store closed");
                }
            }
            let _ = ack.send(());
            return;
        }
    }
}

fn commit(conn: &mut Connection, batch: &[StoredEntry], keep: u64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO entries (seq, time_ms, public, line) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for e in batch {
            insert.execute(params![
                to_i64(e.seq),
                to_i64(e.time_ms),
                i64::from(e.public),
                e.line
            ])?;
        }
    }
    if let Some(last) = batch.last() {
        tx.execute(
            "DELETE FROM entries WHERE seq <= ?1",
            [to_i64(last.seq.saturating_sub(keep))],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?1)",
            [to_i64(last.seq + 1)],
        )?;
    }
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

    fn entry(seq: u64) -> (u64, u64, bool, Vec<u8>) {
        (
            seq,
            1_700_000_000_000 + seq,
            true,
            format!("a: {seq}\n").into_bytes(),
        )
    }

    /// STORE-1, RESUME-5: a clean close keeps the epoch and the entries; an unclean one
    /// keeps the entries under a new epoch.
    #[test]
    fn store_1_clean_restart_keeps_epoch_unclean_changes_it() {
        let path = temp("epoch");
        let (r, mut h) = open(&path, 3).unwrap();
        assert!(r.clean && r.entries.is_empty() && r.next_seq == 1);
        for s in 1..=5 {
            let (seq, t, p, l) = entry(s);
            h.save(seq, t, p, &l);
        }
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
        // Not closed: as after kill -9.
        std::mem::forget(h2);
        let (r3, _h3) = open(&path, 3).unwrap();
        assert!(!r3.clean);
        assert!(r3.epoch > r2.epoch);
        assert_eq!(r3.next_seq, 6);
    }

    /// STORE-1: a file that is not a database, or another program's database, is a
    /// clear start-up error.
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
    }
}
