//! Giving the allocator's memory back to the system once a crowd has left (issue 14,
//! join storms).
//!
//! Why three steps, each measured on the join storm (`server/tests/join_storm.rs`,
//! docs/reliability.md): after 10,000 users came and went, what glibc still held was not
//! live data but free memory it could not return:
//!
//! - **Thread caches.** Every thread keeps up to 7 freed chunks of each small size
//!   (its `tcache`) for fast reuse. Those chunks are scattered over the heap, each pins
//!   its page, and `malloc_trim` cannot touch them: about 1 MiB after a storm, out of a
//!   2.5 MiB idle-to-after difference. A thread's cache goes back to the heap only when
//!   the thread ends, so after a crowd has left the executor threads are *renewed*:
//!   each ends and a fresh one takes its place ([`renewal`], `run_executor` in lib.rs).
//! - **Arenas.** glibc gives busy threads arenas of their own; what one thread freed in
//!   its arena is fragmented apart from the others. The server has a handful of threads
//!   that all touch the same connections, so one arena ([`configure`]) costs little
//!   contention and keeps the free memory in one place.
//! - **Trim.** `malloc_trim` then returns every free page of the heap.
//!
//! The executor's task table (an async-executor slab, 16 bytes a task, two tasks a
//! connection) keeps its peak size too: new connections go to a fresh executor and the
//! old one is dropped once its last task has ended (`crate::executors`). The reactor's
//! socket table (an async-io slab in a process-wide reactor, 16 bytes a socket, about
//! 160 KiB at 10,000 connections) cannot be replaced, and stays.

use std::sync::atomic::{AtomicU64, Ordering};

use event_listener::Event;

/// How many allocator arenas the process may use (see the module documentation).
const ARENAS: i32 = 1;

/// Sets the allocator up for the server. Call once at the start of the process, before
/// any thread is spawned (glibc applies the arena limit to threads created after it).
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's malloc parameters; no pointers involved.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Returns the allocator's free pages to the system now. A few milliseconds; rare.
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Renewals asked for so far.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Wakes the executor threads waiting in [`renewal`].
static RENEW: Event = Event::new();

/// Memory is to be given back: trims now, asks every executor thread to be renewed
/// (their caches go back to the heap as they end), and trims again once they have.
/// Every server of the process renews its threads; that costs a thread start each.
pub(crate) fn give_back() {
    trim();
    GENERATION.fetch_add(1, Ordering::SeqCst);
    RENEW.notify(usize::MAX);
    // The renewed threads end at their next wake-up, and the tasks of the last
    // connections (with their sockets) are freed just after the crowd's last slot: trim
    // once more when both are surely done. Rare (a crowd left), so a short-lived thread
    // is fine; if it cannot start, the first trim stands.
    let _ = std::thread::Builder::new()
        .name("chat-server-trim".into())
        .spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            trim();
        });
}

/// The renewals asked for so far: pass it to [`renewal`].
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Resolves once a renewal later than `seen` (from [`generation`]) is asked for.
pub(crate) async fn renewal(seen: u64) {
    loop {
        if generation() != seen {
            return;
        }
        let listener = RENEW.listen();
        if generation() != seen {
            return;
        }
        listener.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_resolves_after_give_back_only() {
        let seen = generation();
        let mut waiting = std::pin::pin!(renewal(seen));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(waiting.as_mut()))
                .is_none()
        );
        give_back();
        futures_lite::future::block_on(waiting);
        assert!(generation() > seen);
    }
}
