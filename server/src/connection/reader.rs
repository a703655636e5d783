//! The reading task of a connection: the socket-free [`Core`] plus the socket it reads.
//!
//! A hand-written future, so that the read buffer lives on the executor thread's stack
//! only while bytes are being processed: an idle connection holds no read buffer at all,
//! just its framer (which allocates nothing until bytes arrive). Each chunk read is
//! framed and acted on synchronously, then the writers waiting for the log are woken
//! once for the whole chunk. The waits are for the socket, the handshake deadline, the
//! flood hold-back, and, while the log is congested because readers lag, for room in the
//! log: a chatting client is then not read from at all (its sending slows down through
//! TCP) rather than anyone being cut off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_io::Timer;
use tracing::debug;

use super::state::{Core, Flow, Phase};
use crate::liveness::Probe;
use crate::transport::Transport;

/// Bytes read per `read` call, into a buffer on the stack (not kept while idle).
const READ_CHUNK: usize = 8 * 1024;

/// Reads per poll before the reader yields to other tasks (fairness under a flood).
const READS_PER_POLL: usize = 8;

/// After the server closed a connection, the most input it reads and discards (so the
/// last lines are not destroyed by a reset) before it closes anyway.
pub const CLOSE_DISCARD: usize = chat_proto::limits::CLOSE_LINGER_MAX_BYTES;

/// The reading task.
pub(super) struct Reader<S> {
    pub(super) core: Core,
    pub(super) stream: Arc<S>,
    /// Its place among the senders paused while the log is congested.
    pub(super) pause_ticket: crate::log::Ticket,
}

impl<S: Transport> Reader<S> {
    /// Discards input while closing; ready when the connection can be let go: end of
    /// stream, [`CLOSE_DISCARD`] bytes, or the linger time after the writer finished.
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_POLL {
            let conn = &mut self.core.conn;
            let Phase::Closing { linger, discarded } = &mut conn.phase else {
                return Poll::Ready(());
            };
            if conn.outbox.poll_writer_done(cx.waker()) {
                let after = conn.settings.close_linger;
                let timer = linger.get_or_insert_with(|| Timer::after(after));
                if Pin::new(timer).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            match self.stream.poll_read(cx, &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(n)) => {
                    *discarded += n;
                    if *discarded >= CLOSE_DISCARD {
                        return Poll::Ready(());
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// IDLE-1, PING-4: the server stops reading on purpose; that time is neither idle
    /// time nor silence.
    fn suspend_idle(&mut self) {
        if let Some(idle) = &mut self.core.idle {
            idle.suspend();
        }
        if let Some(liveness) = &mut self.core.conn.liveness {
            liveness.suspend();
        }
    }

    /// PING-3, PING-4: a chatting connection that enabled `ping` and has nothing to read
    /// is probed after the interval, and closed when the probe goes unanswered. Checked
    /// only while waiting for the socket, as the idle limit is. True when it acted (a
    /// `PING` queued, or the connection closed): the caller polls again, which arms the
    /// next wait.
    fn probe(&mut self, cx: &mut Context<'_>) -> bool {
        let conn = &mut self.core.conn;
        let Some(liveness) = &mut conn.liveness else {
            return false;
        };
        if !matches!(conn.phase, Phase::Chatting(_)) {
            return false;
        }
        match liveness.poll_due(cx) {
            Poll::Pending => false,
            Poll::Ready(Probe::Send(ping)) => {
                conn.reply(&ping);
                true
            }
            Poll::Ready(Probe::Dead(err)) => {
                conn.reply(&err);
                conn.close("ping timeout");
                true
            }
        }
    }

    /// IDLE-1: a chatting connection with nothing to read that has been silent for the
    /// idle limit is told so and closed. Checked only while waiting for the socket, so a
    /// client the server is not reading from (flood hold-back, congested log) is never
    /// idle. True when it was closed.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let core = &mut self.core;
        let Some(idle) = &mut core.idle else {
            return false;
        };
        if !matches!(core.conn.phase, Phase::Chatting(_)) || idle.poll_expired(cx).is_pending() {
            return false;
        }
        let line = idle.line();
        core.conn.reply(&line);
        core.conn.close("idle timeout");
        true
    }

    /// While the log is congested, a chatting connection is not read from. True when it
    /// must wait (it is woken when the log has room again, or when it is cut off).
    fn paused(&mut self, cx: &Context<'_>) -> bool {
        let conn = &self.core.conn;
        if !matches!(conn.phase, Phase::Chatting(_)) || !conn.hub.log().congested() {
            return false;
        }
        conn.outbox.watch_close(cx.waker());
        conn.hub
            .log()
            .wait_uncongested(cx.waker(), &mut self.pause_ticket)
    }
}

impl<S: Transport> Future for Reader<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let reader = self.get_mut();
        // On the stack only while this poll runs: idle connections hold no read buffer.
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_POLL {
            match &mut reader.core.conn.phase {
                Phase::Closing { .. } => return reader.poll_closing(cx),
                Phase::Handshake(h) => {
                    if Pin::new(&mut h.deadline).poll(cx).is_ready() {
                        // NICK-6: total time for the whole handshake, not per attempt.
                        let timeout = reader.core.conn.hub.lines().handshake_timeout.clone();
                        reader.core.conn.reply(&timeout);
                        reader.core.conn.close("handshake timeout");
                        continue;
                    }
                    if h.idle
                        .as_mut()
                        .is_some_and(|t| Pin::new(t).poll(cx).is_ready())
                    {
                        if let Flow::Close(why) = reader.core.take_idle_nickname() {
                            reader.core.conn.close(why);
                        }
                        continue;
                    }
                }
                Phase::Chatting(_) => {}
            }
            if !reader.core.conn.outbox.is_open() {
                // Cut off (lag, queue overflow, write error) or shutting down: stop acting
                // on input; the writer has the last word. A write error is the reason
                // (CONN-5: the writer may have met a vanished peer's time-out first).
                let why = reader
                    .core
                    .conn
                    .outbox
                    .failure()
                    .map_or("connection closed by server", crate::dead_peer::reason);
                reader.core.conn.close(why);
                continue;
            }
            // CONN-7: held input goes first; nothing is read while it waits.
            let held = reader.core.poll_held(cx);
            reader.core.conn.hub.publish();
            match held {
                Poll::Pending => {
                    reader.suspend_idle();
                    return Poll::Pending;
                }
                Poll::Ready(Flow::Close(why)) => {
                    reader.core.conn.close(why);
                    continue;
                }
                Poll::Ready(Flow::Continue) => {}
            }
            if reader.core.held.is_some() {
                continue;
            }
            if reader.paused(cx) {
                reader.suspend_idle();
                return Poll::Pending;
            }
            let read = reader.stream.poll_read(cx, &mut buf);
            match read {
                Poll::Pending => {
                    if reader.idle_expired(cx) || reader.probe(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0)) => {
                    // FRAME-7: an unterminated last line is dropped unanswered. The client
                    // ended its side: it leaves; what is queued for it still goes out.
                    reader.core.conn.end_of_stream();
                    return Poll::Ready(());
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    debug!(peer = %reader.core.conn.peer, error = %e, "read failed");
                    reader.core.conn.close(crate::dead_peer::reason(e.kind()));
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(n)) => {
                    let now = std::time::Instant::now();
                    if let Some(liveness) = &mut reader.core.conn.liveness {
                        liveness.touch(now);
                    }
                    reader.core.conn.idle_input = false;
                    let chunk = buf.get(..n).unwrap_or_default();
                    let flow = reader.core.feed(chunk);
                    // IDLE-1, PING-7: any input but `/ping` and `/pong` lines (a line
                    // still arriving counts: it is not known to be one of them).
                    if let Some(idle) = &mut reader.core.idle
                        && (std::mem::take(&mut reader.core.conn.idle_input)
                            || reader.core.framer.has_partial())
                    {
                        idle.touch(now);
                    }
                    // One wake-up per chunk for the writers, however many lines it held.
                    reader.core.conn.hub.publish();
                    if let Flow::Close(why) = flow {
                        reader.core.conn.close(why);
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
