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
//! Bounded: at most [`RETIRED_AT_MOST`] executors are retired at a time. While one is
//! still running (a user who stayed through the storm keeps it alive), a further renewal
//! keeps the current executor; so the tables are at most two, never one per crowd.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;
use smol::Executor;

/// Retired executors that may still be running their tasks at once.
const RETIRED_AT_MOST: usize = 1;

/// How often an executor thread checks whether a retired executor has emptied. Only
/// while one is retired; its table is given back at most this long after its last task.
const EMPTY_CHECK: Duration = Duration::from_millis(100);

/// The connections' executors: the current one, which new tasks go to, and the retired.
#[derive(Debug)]
pub(crate) struct Executors {
    inner: Mutex<Inner>,
    /// `false` for the accept loop's executor, whose few tasks live as long as the server.
    renews: bool,
}

#[derive(Debug)]
struct Inner {
    current: Arc<Executor<'static>>,
    retired: Vec<Arc<Executor<'static>>>,
    /// The allocator renewal ([`crate::allocator::generation`]) last acted on.
    generation: u64,
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
            }),
            renews,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The executor new tasks are spawned on.
    pub(crate) fn current(&self) -> Arc<Executor<'static>> {
        self.lock().current.clone()
    }

    /// What an executor thread runs: the current executor and the retired ones.
    pub(crate) fn snapshot(&self) -> (Arc<Executor<'static>>, Vec<Arc<Executor<'static>>>) {
        let inner = self.lock();
        (inner.current.clone(), inner.retired.clone())
    }

    /// Acts on allocator renewal `generation` once (every executor thread calls it):
    /// forgets retired executors that have emptied and, unless [`RETIRED_AT_MOST`] are
    /// still running, retires the current one for a fresh one. An executor with no tasks
    /// is dropped rather than retired.
    pub(crate) fn renew(&self, generation: u64) {
        if !self.renews {
            return;
        }
        let mut inner = self.lock();
        inner.retired.retain(|ex| !ex.is_empty());
        if inner.generation >= generation || inner.retired.len() >= RETIRED_AT_MOST {
            return;
        }
        inner.generation = generation;
        let old = std::mem::replace(&mut inner.current, Arc::new(Executor::new()));
        if !old.is_empty() {
            inner.retired.push(old);
        }
    }

    /// Forgets retired executors that have no task left (their tables are freed once the
    /// executor threads running them let go too).
    pub(crate) fn forget_empty(&self) {
        self.lock().retired.retain(|ex| !ex.is_empty());
    }
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

    #[test]
    fn a_busy_executor_is_retired_and_forgotten_once_empty() {
        let executors = Executors::new();
        let first = executors.current();
        let (tx, rx) = smol::channel::bounded::<()>(1);
        first
            .spawn(async move {
                let _ = rx.recv().await;
            })
            .detach();
        executors.renew(u64::MAX - 1);
        let (current, retired) = executors.snapshot();
        assert!(!Arc::ptr_eq(&current, &first), "a fresh executor");
        assert_eq!(retired.len(), 1);
        // A further renewal keeps the current one while one is retired.
        executors.renew(u64::MAX);
        assert!(Arc::ptr_eq(&executors.current(), &current));
        // Once its task ends, running it returns and it is forgotten.
        drop(tx);
        futures_lite::future::block_on(run_retired(&retired));
        executors.forget_empty();
        assert!(executors.snapshot().1.is_empty());
        drop(retired);
        assert_eq!(Arc::strong_count(&first), 1, "only this test holds it");
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
        assert!(executors.snapshot().1.is_empty());
    }
}
