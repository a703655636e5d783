//! Stopping: Ctrl-C / SIGTERM (CONN-6), and the steps of an orderly shutdown.
//!
//! smol has no signal API; `async-signal` turns SIGINT and SIGTERM into a stream. The
//! steps themselves live in [`crate::ServerHandle::shutdown`]: stop accepting, queue one
//! `ERR server-shutdown` to every connection (no leave notices), give the connections a
//! short grace to receive it and close, then stop the executor threads.

use std::io;

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;

/// Starts catching SIGINT and SIGTERM. Do this before announcing the server, so a signal
/// sent right after the banner is never missed.
pub fn catch_signals() -> io::Result<Signals> {
    Signals::new([Signal::Int, Signal::Term])
}

/// Waits for the next caught signal.
///
/// The waiting thread only sleeps: the executor threads drive the reactor that wakes it.
/// (`smol::block_on` would make this thread drive the reactor too, and what it
/// allocates there, timer entries and queue blocks, would stay in its allocator cache
/// after a crowd has left: see `crate::allocator`.)
pub fn wait_for_signal(signals: &mut Signals) -> io::Result<Signal> {
    match futures_lite::future::block_on(signals.next()) {
        Some(result) => result,
        None => Err(io::Error::other("signal stream ended")),
    }
}
