//! The executor the connections' tasks run on, replaced by a fresh one after a crowd has
//! left (issue 14, join storms).
//!
//! Why: an `async_executor::Executor` keeps a table of its live tasks (a `Slab` of
//! wakers, 16 bytes a task, two tasks a connection) that never shrinks: after 10,000
//! users came and went it still held about 320 KiB of RSS, the largest single part of
//! what a storm left behind (`/proc/PID/smaps`, docs/reliability.md "join storm"). The
//! crate has no way to shrink it, but an executor whose last task has ended can be
//! dropped, and the table with it. So when the allocator asks for memory to be given
//! back ([`crate::allocator::give_back`]), new connections go to a fresh executor; the
//! old one is *retired*: the executor threads keep running its tasks (the connections
//! that were there before) until it is empty, then drop it.
//!
//! Bounded: at most [`RETIRED_AT_MOST`] executors are retired at a time, so there are
//! never more than three tables, not one per crowd. While that many are still running
//! (users who stayed through the storms keep them alive), a further renewal waits, and
//! happens as soon as one of them has emptied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;
use event_listener::Event;
use smol::Executor;

/// Retired executors that may still be running their tasks at once. Two, because a
/// first small crowd leaving retires the executor of the users who stay (and they may
/// stay for days): a later storm's executor must still be retired when it leaves.
const RETIRED_AT_MOST: usize = 2;

/// How often an executor thread checks whether a retired executor has emptied. Only
/// while one is retired; its table is given back at most this long after its last task.
const EMPTY_CHECK: Duration = Duration::from_millis(100);

/// The connections' executors: the current one, which new tasks go to, and the retired.
#[derive(Debug)]
pub(crate) struct Executors {
    inner: Mutex<Inner>,
    /// `false` for the accept loop's executor, whose few tasks live as long as the server.
    renews: bool,
    /// Bumped whenever the current or the retired executors change: the executor
    /// threads then run the new set ([`Executors::changed`]).
    version: AtomicU64,
    changed: Event,
}

#[derive(Debug)]
struct Inner {
    current: Arc<Executor<'static>>,
    retired: Vec<Arc<Executor<'static>>>,
    /// The allocator renewal ([`crate::allocator::generation`]) last acted on.
    generation: u64,
    /// The latest renewal asked for (a renewal waits while [`RETIRED_AT_MOST`] run).
    wanted: u64,
}

impl Executors {
    /// Executors renewed after a crowd has left.
    pub(crate) fn new() -> Executors {
        Executors::with_renewal(true)
    }

    /// One executor, never renewed (the accept loop's: two tasks for the server's life).
    pub(crate) fn fixed() -> Executors {
        Executors::with_renewal(false)
    }

    fn with_renewal(renews: bool) -> Executors {
        Executors {
            inner: Mutex::new(Inner {
                current: Arc::new(Executor::new()),
                retired: Vec::new(),
                generation: crate::allocator::generation(),
                wanted: 0,
            }),
            renews,
            version: AtomicU64::new(0),
            changed: Event::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The executor new tasks are spawned on.
    pub(crate) fn current(&self) -> Arc<Executor<'static>> {
        self.lock().current.clone()
    }

    /// What an executor thread runs: the current executor and the retired ones, and
    /// the version to pass to [`Executors::changed`].
    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            current: inner.current.clone(),
            retired: inner.retired.clone(),
            version: self.version.load(Ordering::SeqCst),
        }
    }

    /// Acts on allocator renewal `generation` (every executor thread calls it; once is
    /// enough): retires the current executor for a fresh one, as soon as fewer than
    /// [`RETIRED_AT_MOST`] are retired. An executor with no tasks is dropped rather than
    /// retired.
    pub(crate) fn renew(&self, generation: u64) {
        if !self.renews {
            return;
        }
        let mut inner = self.lock();
        inner.wanted = inner.wanted.max(generation);
        self.settle(&mut inner);
    }

    /// Forgets retired executors that have no task left (their tables are freed once the
    /// executor threads running them let go too), and renews if a renewal was waiting.
    pub(crate) fn forget_empty(&self) {
        let mut inner = self.lock();
        self.settle(&mut inner);
    }

    fn settle(&self, inner: &mut Inner) {
        let before = inner.retired.len();
        inner.retired.retain(|ex| !ex.is_empty());
        let mut changed = inner.retired.len() != before;
        if inner.generation < inner.wanted && inner.retired.len() < RETIRED_AT_MOST {
            inner.generation = inner.wanted;
            let old = std::mem::replace(&mut inner.current, Arc::new(Executor::new()));
            if !old.is_empty() {
                inner.retired.push(old);
            }
            changed = true;
        }
        if changed {
            self.version.fetch_add(1, Ordering::SeqCst);
            self.changed.notify(usize::MAX);
        }
    }

    /// Resolves once the executors differ from those of the snapshot with `version`.
    pub(crate) async fn changed(&self, version: u64) {
        loop {
            if self.version.load(Ordering::SeqCst) != version {
                return;
            }
            let listener = self.changed.listen();
            if self.version.load(Ordering::SeqCst) != version {
                return;
            }
            listener.await;
        }
    }
}

/// The executors an executor thread runs, as they were at one moment.
pub(crate) struct Snapshot {
    pub current: Arc<Executor<'static>>,
    pub retired: Vec<Arc<Executor<'static>>>,
    pub version: u64,
}

/// Runs the tasks of `retired` executors until one of them has no task left (then
/// the caller forgets it and starts again without it); never, for none.
pub(crate) async fn run_retired(retired: &[Arc<Executor<'static>>]) {
    if retired.is_empty() {
        return std::future::pending().await;
    }
    let mut runs: Vec<_> = retired
        .iter()
        .map(|ex| Box::pin(ex.run(until_empty(ex))))
        .collect();
    futures_lite::future::poll_fn(|cx| {
        for run in &mut runs {
            if run.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

/// Resolves once `ex` has no task (checked every [`EMPTY_CHECK`]; no executor can say
/// when it empties).
async fn until_empty(ex: &Executor<'static>) {
    while !ex.is_empty() {
        Timer::after(EMPTY_CHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn_waiting(ex: &Executor<'static>) -> smol::channel::Sender<()> {
        let (tx, rx) = smol::channel::bounded::<()>(1);
        ex.spawn(async move {
            let _ = rx.recv().await;
        })
        .detach();
        tx
    }

    #[test]
    fn busy_executors_are_retired_and_forgotten_once_empty() {
        let executors = Executors::new();
        let first = executors.current();
        let stay_first = spawn_waiting(&first);
        executors.renew(u64::MAX - 2);
        let second = executors.current();
        assert!(!Arc::ptr_eq(&second, &first), "a fresh executor");
        let stay_second = spawn_waiting(&second);
        let seen = executors.snapshot().version;
        executors.renew(u64::MAX - 1);
        assert_eq!(executors.snapshot().retired.len(), 2);
        futures_lite::future::block_on(executors.changed(seen));
        // A third renewal waits while two are retired...
        let third = executors.current();
        executors.renew(u64::MAX);
        assert!(Arc::ptr_eq(&executors.current(), &third));
        // ...and happens once one of them has emptied.
        drop(stay_first);
        let retired = executors.snapshot().retired;
        futures_lite::future::block_on(run_retired(&retired));
        executors.forget_empty();
        drop(retired);
        let now = executors.snapshot();
        assert!(!Arc::ptr_eq(&now.current, &third));
        assert_eq!(now.retired.len(), 1, "the second; the third had no task");
        assert!(Arc::ptr_eq(&now.retired[0], &second));
        assert_eq!(Arc::strong_count(&first), 1, "only this test holds it");
        drop(stay_second);
    }

    #[test]
    fn a_fixed_executor_stays() {
        let executors = Executors::fixed();
        let first = executors.current();
        executors.renew(u64::MAX);
        assert!(Arc::ptr_eq(&executors.current(), &first));
    }

    #[test]
    fn an_idle_executor_is_replaced_not_retired() {
        let executors = Executors::new();
        let first = executors.current();
        executors.renew(u64::MAX);
        assert!(!Arc::ptr_eq(&executors.current(), &first));
        assert!(executors.snapshot().retired.is_empty());
    }
}
