//! One connection: a reader task and a writer task that cannot take the server down.
//!
//! - `state.rs`: the handshake and command state machine, with no socket (also driven
//!   directly through [`Detached`] by the structure-aware fuzz target);
//! - `reader.rs`: the reading task around it;
//! - `hold.rs`: the flood limit's hold-back (CONN-7);
//! - `caps.rs`: `/caps` and tagged output (spec §13, §14);
//! - the writer is [`crate::writer::Writer`].
//!
//! Reader and writer are separate tasks so that a wake-up for output never costs a
//! `read` syscall and the other way round. They share the socket and the [`Outbox`].
//! Both run as a [`Task`] that catches panics: a panic in either is logged, the other is told to
//! stop, and the user's [`Membership`](crate::hub::Membership) leaves exactly once when
//! its owner is dropped.

mod caps;
mod hold;
mod reader;
mod state;

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use smol::Executor;
use tracing::{debug, error, info};

pub use reader::CLOSE_DISCARD;

use crate::config::{Compat, Config};
use crate::flood::FloodLimit;
use crate::hub::{Hub, Slot};
use crate::per_address::{AddressSlot, Admission};
use crate::transport::Transport;
use crate::writer::{Line, Outbox, Writer, WriterEnd};
use reader::Reader;
use state::{Core, Flow, Phase};

/// Settings a connection needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct Settings {
    pub sendq: usize,
    pub handshake_timeout: Duration,
    pub handshake_attempts: u32,
    pub close_flush_timeout: Duration,
    pub close_linger: Duration,
    pub max_lag: Duration,
    pub compat: Compat,
    pub flood: FloodLimit,
    pub idle_timeout: Option<Duration>,
    /// PING-1: `None` when `ping` is not offered (probes off, or the seed profile).
    pub ping: Option<crate::liveness::PingTimes>,
    /// CONN-5: set on each accepted socket by the listener.
    pub dead_peer: crate::dead_peer::DeadPeer,
    pub panic_trigger: Option<String>,
}

impl Settings {
    pub(crate) fn from_config(c: &Config) -> Settings {
        Settings {
            sendq: c.sendq,
            handshake_timeout: c.handshake_timeout,
            handshake_attempts: c.handshake_attempts,
            close_flush_timeout: c.close_flush_timeout,
            close_linger: c.close_linger,
            max_lag: c.max_lag,
            compat: c.compat,
            flood: c.flood,
            idle_timeout: c.idle_timeout,
            ping: c.ping.filter(|_| c.compat.offers_ping()),
            dead_peer: c.dead_peer,
            panic_trigger: c.panic_trigger.clone(),
        }
    }
}

/// What both tasks of a connection share. The socket closes, and the slot under
/// `max_clients` is freed, when both have ended.
///
/// Fields drop in declaration order: the address's place (ADDR-1) is freed before the
/// slot, so once [`Hub::open_connections`] shows a connection gone, its address may
/// connect again. The other way round, a slot's drop (which may give memory back to
/// the system after a crowd left) held the address's place a moment longer, and a
/// client reconnecting just then was refused as over its address's limit.
struct Shared<S> {
    stream: Arc<S>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    _address: AddressSlot,
    _slot: Slot,
}

/// A connection the listener has accepted and attached: what is this connection's own,
/// handed to [`spawn`] (over plain TCP, or once its TLS handshake is done).
pub(crate) struct Accepted<S> {
    pub stream: Arc<S>,
    pub outbox: Arc<Outbox>,
    /// Its place under `max_clients`.
    pub slot: Slot,
    /// Its places in its address's quota (ADDR-1).
    pub admission: Admission,
    pub peer: SocketAddr,
    /// When the TCP connection was accepted: the handshake's time limit (NICK-6) counts
    /// from then, a TLS handshake included (TLS-4).
    pub at: Instant,
}

/// Starts the reader and writer tasks of an accepted, attached connection, over plain
/// TCP or TLS.
pub(crate) fn spawn<S: Transport>(
    ex: &Executor<'static>,
    hub: Arc<Hub>,
    settings: Arc<Settings>,
    accepted: Accepted<S>,
) {
    let Accepted {
        stream,
        outbox,
        slot,
        admission,
        peer,
        at: accepted,
    } = accepted;
    let shared = Arc::new(Shared {
        stream,
        outbox,
        peer,
        _address: admission.connection,
        _slot: slot,
    });

    greet_now(&hub, &settings, &*shared.stream, &shared.outbox);
    let writer = Writer::new(
        shared.outbox.clone(),
        shared.stream.clone(),
        hub.clone(),
        settings.close_flush_timeout,
        settings.max_lag,
    );
    let guard = StopOnDrop {
        shared: shared.clone(),
        kill: true,
    };
    ex.spawn(Task::new(writer, guard, |guard, end| match end {
        Ok(WriterEnd::Failed(e)) => {
            debug!(peer = %guard.shared.peer, error = %e, "write failed")
        }
        Ok(WriterEnd::FlushTimeout) => {
            info!(peer = %guard.shared.peer, "closed: did not take its last lines in time")
        }
        Ok(end) => debug!(peer = %guard.shared.peer, ?end, "writer done"),
        Err(_) => error!(peer = %guard.shared.peer, "writer task panicked; connection closed"),
    }))
    .detach();

    let mut core = Core::new(
        hub,
        settings,
        shared.outbox.clone(),
        shared.peer,
        admission.handshake,
        accepted,
    );
    if let Some(address) = admission.flood {
        core.bucket.share(address);
    }
    let reader = Reader {
        core,
        stream: shared.stream.clone(),
        pause_ticket: None,
    };
    let guard = StopOnDrop {
        shared,
        kill: false,
    };
    ex.spawn(Task::new(reader, guard, |guard, end| {
        if end.is_err() {
            // The reader (and so its Membership) is dropped by now: the user has left.
            error!(peer = %guard.shared.peer, "connection task panicked; connection closed");
        }
    }))
    .detach();
}

/// One of a connection's two tasks: its half (the [`Reader`] or the [`Writer`]) polled
/// with panics caught, then `end` told how it ended, then the [`StopOnDrop`] guard.
///
/// Hand-written rather than an `async` block around `half.catch_unwind().await`: such a
/// block keeps room for the half twice (once as the captured variable, once as the
/// future being awaited), and every idle connection pays for that room in both of its
/// tasks (`tests::connection_tasks_stay_small`).
struct Task<F: Future, S: Transport> {
    /// `None` once it has ended: it is dropped before `end` runs (a reader's user has
    /// left by then), as when it was awaited.
    half: Option<F>,
    guard: StopOnDrop<S>,
    end: fn(&StopOnDrop<S>, std::thread::Result<F::Output>),
}

impl<F: Future + Unpin, S: Transport> Task<F, S> {
    fn new(
        half: F,
        guard: StopOnDrop<S>,
        end: fn(&StopOnDrop<S>, std::thread::Result<F::Output>),
    ) -> Task<F, S> {
        Task {
            half: Some(half),
            guard,
            end,
        }
    }
}

impl<F: Future + Unpin, S: Transport> Future for Task<F, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let task = self.get_mut();
        let Some(half) = task.half.as_mut() else {
            return Poll::Ready(());
        };
        let end = match catch_unwind(AssertUnwindSafe(|| Pin::new(half).poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(out)) => Ok(out),
            Err(panic) => Err(panic),
        };
        task.half = None;
        (task.end)(&task.guard, end);
        Poll::Ready(())
    }
}

/// Writes the prompt straight to the fresh socket, before the connection's tasks exist
/// (NICK-1, COMPAT-1). Why not through the writer: under a join storm the executor's
/// queue holds thousands of writers woken by each join notice, and a newcomer whose
/// prompt waited behind them would wait for the whole sweep (issue 14 asks for `NICK`
/// within 100 ms at 10,000 users). A fresh socket's send buffer is empty, so the
/// non-blocking write goes out whole; whatever it did not take is queued as before.
/// Over TLS the prompt is queued (`S::RAW` is false): it must go through the TLS stream,
/// after the TLS handshake, which the storm does not slow in the same way.
fn greet_now<S: Transport>(hub: &Hub, settings: &Settings, stream: &S, outbox: &Outbox) {
    let line = settings.compat.greeting(hub.lines());
    if !S::RAW {
        outbox.push(line);
        return;
    }
    let sent = io::Write::write(&mut stream.socket(), line).unwrap_or_default();
    if let Some(rest) = line.get(sent..).filter(|r| !r.is_empty()) {
        outbox.push(&Line::from(rest));
    }
}

/// Queues the prompt, which goes out before the first read (NICK-1, COMPAT-1).
fn greet(hub: &Hub, settings: &Settings, outbox: &Outbox) {
    outbox.push(settings.compat.greeting(hub.lines()));
}

/// A connection's protocol logic with no socket attached: what the server does with the
/// bytes a client sends (handshake §3, chat and commands §4, framing errors §2), and the
/// lines it sends in reply, to this client and to others on the same [`Hub`]. The
/// server's reading task wraps exactly this logic; the structure-aware fuzz target
/// (`fuzz/fuzz_targets/connection.rs`) drives it directly, with many clients at once.
///
/// Not applied here, because they need a clock: the handshake time limit, the seed
/// profile's idle nickname (COMPAT-2), the flood limit (which is turned off), the idle
/// limit and the liveness probes (PING-3; `/ping` and `/pong` are answered).
pub struct Detached {
    core: Core,
    _slot: Slot,
}

impl Detached {
    /// Opens a connection on `hub` as the listener does: takes a slot, creates the
    /// outbox and queues the greeting. `None` when the hub is full or shutting down.
    pub fn open(hub: &Arc<Hub>, config: &Config) -> Option<Detached> {
        let mut settings = Settings::from_config(config);
        settings.flood = FloodLimit::off();
        let settings = Arc::new(settings);
        let outbox = hub.new_outbox(config.sendq);
        let slot = hub.attach(&outbox).ok()?;
        greet(hub, &settings, &outbox);
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        Some(Detached {
            core: Core::new(
                hub.clone(),
                settings,
                outbox,
                peer,
                Admission::unlimited().handshake,
                std::time::Instant::now(),
            ),
            _slot: slot,
        })
    }

    /// Acts on bytes the client sent. Returns false once the connection is closed (by a
    /// `/quit`, a closing error, or a cut-off).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if matches!(self.core.conn.phase, Phase::Closing { .. }) {
            return false;
        }
        if !self.core.conn.outbox.is_open() {
            self.core.conn.close("connection closed by server");
            return false;
        }
        let flow = self.core.feed(bytes);
        self.core.conn.hub.publish();
        if let Flow::Close(why) = flow {
            self.core.conn.close(why);
            return false;
        }
        true
    }

    /// The client's side of the stream ends: an unterminated line is dropped (FRAME-7)
    /// and the user leaves (CONN-2).
    pub fn end(&mut self) {
        if !matches!(self.core.conn.phase, Phase::Closing { .. }) {
            self.core.conn.end_of_stream();
        }
    }

    /// This connection's output: its log cursor and private queue.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.core.conn.outbox
    }
}

/// Makes sure the other half of a connection stops when one half ends, however it ends
/// (including a panic): the reader's end lets the writer flush and close; the writer's
/// end (or crash) shuts the socket so the reader wakes up and ends too.
struct StopOnDrop<S: Transport> {
    shared: Arc<Shared<S>>,
    kill: bool,
}

impl<S: Transport> Drop for StopOnDrop<S> {
    fn drop(&mut self) {
        if self.kill {
            self.shared.outbox.kill();
            self.shared.stream.shutdown(Shutdown::Both);
        } else {
            self.shared.outbox.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_io::Async;
    use std::net::TcpStream;

    /// Every idle connection holds both of its tasks (async-task adds a header of about
    /// 40 bytes to each) and its outbox; docs/reliability.md's per-connection cost `C`
    /// (measured with `scripts/idle_memory.py`) rests on them staying this small. A field
    /// added to the reader or the writer that is needed only rarely belongs in a box.
    #[test]
    fn connection_tasks_stay_small() {
        type Plain = Async<TcpStream>;
        let reader = std::mem::size_of::<Task<Reader<Plain>, Plain>>();
        let writer = std::mem::size_of::<Task<Writer<Plain>, Plain>>();
        let outbox = std::mem::size_of::<Outbox>();
        let shared = std::mem::size_of::<Shared<Plain>>();
        println!(
            "reader task {reader} B, writer task {writer} B, outbox {outbox} B, shared {shared} B"
        );
        assert!(reader <= READER_TASK_MAX, "reader task: {reader} bytes");
        assert!(writer <= WRITER_TASK_MAX, "writer task: {writer} bytes");
        assert!(outbox <= OUTBOX_MAX, "outbox: {outbox} bytes");
    }

    /// Measured on 2026-12-02 (rustc 1.95, 64-bit): 360, 296 and 224 bytes. Before the
    /// tasks were hand-written (an `async` block awaiting `catch_unwind`), the two tasks
    /// allocated about 880 and 570 bytes each (heaptrack, 5,000 idle clients).
    const READER_TASK_MAX: usize = 384;
    const WRITER_TASK_MAX: usize = 320;
    const OUTBOX_MAX: usize = 240;
}
