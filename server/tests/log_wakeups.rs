//! The log's park/publish protocol under real threads: a reader that parks at the head
//! is always woken by the next publish, however the park and the append interleave
//! (`Log::park`, `Log::publish`: the parked flag, the head, the wake-up rounds).
//!
//! Why a stress test and not a model checker: `log.rs` uses std's atomics and mutex
//! directly (the writers' hot path), which `loom` cannot see without rewriting the file
//! around its types. Instead, readers park and are woken thousands of times each, in
//! several logs at once, against appenders that publish batches of random size and then
//! wait: every publish is the last one until all readers have read it, so a wake-up it
//! failed to give is not covered up by the next one. Readers sometimes park twice in a
//! row (as a writer woken by a private line does, which must neither be listed twice nor
//! lose its place). A lost wake-up shows as a reader still behind [`LOST_AFTER`] after
//! the publish.
//!
//! What it catches, checked by breaking `log.rs` on purpose: a wake-up round not
//! advanced (every run fails), and the flag raised after the head is read instead of
//! before (about 1 run in 10: that window is a few instructions wide, so the argument
//! for the order is in `Log::park`'s comment, and this test is its backstop).
//!
//! Bounded: [`ENTRIES`] appends per log, at most [`ROUNDS`] parks per reader, one
//! deadline per log; no sockets.

#![cfg(test)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use chat_server::log::{Cursor, Log, Ticket};

/// Logs tested at once.
const TRIALS: usize = 4;
/// Entries appended to each.
const ENTRIES: u64 = 10_000;
/// Most readers parking at the head of each (trials have 1 to this many: a lone
/// reader is always the first to park, the one a racing publish can miss; several
/// exercise the list and its rounds).
const READERS: u64 = 3;
/// Most parks per reader.
const ROUNDS: usize = 200_000;
/// Readers not caught up this long after a publish were not woken: a lost wake-up. Far
/// above any scheduling delay, far below the test's deadline.
const LOST_AFTER: Duration = Duration::from_secs(3);

/// A waker that records that it was woken, for a thread to wait on.
#[derive(Default)]
struct Flag {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl Flag {
    /// Waits until woken or `within` passes; clears the flag.
    fn wait(&self, within: Duration) {
        let guard = self.woken.lock().unwrap();
        let (mut guard, _) = self.cv.wait_timeout_while(guard, within, |w| !*w).unwrap();
        *guard = false;
    }
}

/// Reads everything up to the head, as a writer hands it to the socket.
fn catch_up(log: &Log, cursor: &mut Cursor) {
    let head = log.head();
    let mut n = 0;
    cursor.runs(head, |run| {
        n += run.len();
        true
    });
    if cursor.advance(n) {
        log.trim();
    }
}

/// One reader: catches up, says how far it read, parks, waits to be woken; until it
/// has read every entry or the test stops. Returns how often it parked.
fn reader(
    log: Arc<Log>,
    mut cursor: Cursor,
    read: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> usize {
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut ticket: Ticket = None;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut parks = 0;
    for _ in 0..ROUNDS {
        catch_up(&log, &mut cursor);
        let next = cursor.next_seq();
        read.store(next - 1, Ordering::SeqCst);
        if next > ENTRIES || stop.load(Ordering::SeqCst) {
            break;
        }
        if !log.park(next, &waker, &mut ticket) {
            continue;
        }
        parks += 1;
        // Now and then: woken by something else first, then parks again in the same
        // round (must not be listed twice, must still be woken).
        if rng.u8(..8) == 0 && !log.park(next, &waker, &mut ticket) {
            continue;
        }
        // Longer than the appender waits: a lost wake-up is not covered up by this
        // reader looking again on its own.
        flag.wait(LOST_AFTER * 2);
    }
    parks
}

/// One log, its readers, and its appender. Every publish is the last one for a while:
/// after each batch the appender waits until every reader has read it. A reader that
/// parked without being woken is then stuck, and the wait times out. Returns the parks
/// per reader, or the entry whose publish did not wake a reader.
fn trial(seed: u64) -> Result<Vec<usize>, u64> {
    let (log, mut app) = Log::new(64 << 20);
    app.append(b"entry 1\n");
    log.publish();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = 1 + seed % READERS;
    let read: Vec<Arc<AtomicU64>> = (0..readers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let readers: Vec<_> = read
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (log, cursor, r, stop) =
                (log.clone(), app.cursor_at_last(), r.clone(), stop.clone());
            std::thread::spawn(move || reader(log, cursor, r, stop, seed * 100 + i as u64))
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seq = 1;
    let mut lost = None;
    while seq < ENTRIES && Instant::now() < deadline {
        // A random short pause, so that the append lands at every point of the
        // readers' parking, which starts as they report having read everything.
        for _ in 0..rng.u32(..200) {
            std::hint::spin_loop();
        }
        // A batch of 1 to 3 lines, then one publish (as a reader's chunk).
        for _ in 0..rng.u64(1..=3).min(ENTRIES - seq) {
            seq += 1;
            app.append(format!("entry {seq}\n").as_bytes());
        }
        log.publish();
        let waited = Instant::now();
        while read.iter().any(|r| r.load(Ordering::SeqCst) < seq) {
            if waited.elapsed() > LOST_AFTER {
                lost = Some(seq);
                break;
            }
            std::thread::yield_now();
        }
        if lost.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    log.publish();
    let parks = readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect();
    assert!(
        lost.is_some() || seq == ENTRIES,
        "trial {seed} ran out of time"
    );
    lost.map_or(Ok(parks), Err)
}

/// Several logs at once, so that the threads are preempted at every point of the
/// protocol (the machine has fewer cores than threads).
#[test]
fn a_parked_reader_is_always_woken_by_the_next_publish() {
    let trials: Vec<_> = (0..TRIALS as u64)
        .map(|seed| std::thread::spawn(move || trial(seed)))
        .collect();
    for (i, t) in trials.into_iter().enumerate() {
        match t.join().expect("trial") {
            Ok(parks) => println!("trial {i}: parks per reader {parks:?}"),
            Err(seq) => panic!(
                "trial {i}: a reader parked at the head was not woken by the publish of entry {seq}"
            ),
        }
    }
}
