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
//! Both are wrapped in `catch_unwind`: a panic in either is logged, the other is told to
//! stop, and the user's [`Membership`](crate::hub::Membership) leaves exactly once when
//! its owner is dropped.

mod caps;
mod hold;
mod reader;
mod state;

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_io::Async;
use futures_lite::FutureExt;
use smol::Executor;
use tracing::{debug, error, info};

pub use reader::CLOSE_DISCARD;

use crate::config::{Compat, Config};
use crate::flood::FloodLimit;
use crate::hub::{Hub, Slot};
use crate::writer::{Outbox, Writer, WriterEnd};
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
            panic_trigger: c.panic_trigger.clone(),
        }
    }
}

/// What both tasks of a connection share. The socket closes, and the slot under
/// `max_clients` is freed, when both have ended.
struct Shared {
    stream: Arc<Async<TcpStream>>,
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    _slot: Slot,
}

/// Starts the reader and writer tasks of an accepted, attached connection.
pub(crate) fn spawn(
    ex: &Executor<'static>,
    hub: Arc<Hub>,
    settings: Arc<Settings>,
    stream: Arc<Async<TcpStream>>,
    outbox: Arc<Outbox>,
    slot: Slot,
    peer: SocketAddr,
) {
    let shared = Arc::new(Shared {
        stream,
        outbox,
        peer,
        _slot: slot,
    });

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
    ex.spawn(async move {
        let guard = guard;
        match AssertUnwindSafe(writer).catch_unwind().await {
            Ok(WriterEnd::Failed(e)) => {
                debug!(peer = %guard.shared.peer, error = %e, "write failed")
            }
            Ok(WriterEnd::FlushTimeout) => {
                info!(peer = %guard.shared.peer, "closed: did not take its last lines in time")
            }
            Ok(end) => debug!(peer = %guard.shared.peer, ?end, "writer done"),
            Err(_) => error!(peer = %guard.shared.peer, "writer task panicked; connection closed"),
        }
    })
    .detach();

    greet(&hub, &settings, &shared.outbox);
    let core = Core::new(hub, settings, shared.outbox.clone(), shared.peer);
    let reader = Reader {
        core,
        stream: shared.stream.clone(),
        pause_ticket: None,
    };
    let guard = StopOnDrop {
        shared,
        kill: false,
    };
    ex.spawn(async move {
        let guard = guard;
        if AssertUnwindSafe(reader).catch_unwind().await.is_err() {
            // The reader (and so its Membership) is dropped by now: the user has left.
            error!(peer = %guard.shared.peer, "connection task panicked; connection closed");
        }
    })
    .detach();
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
/// profile's idle nickname (COMPAT-2) and the flood limit (which is turned off).
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
            core: Core::new(hub.clone(), settings, outbox, peer),
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
struct StopOnDrop {
    shared: Arc<Shared>,
    kill: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.kill {
            self.shared.outbox.kill();
            let _ = self.shared.stream.get_ref().shutdown(Shutdown::Both);
        } else {
            self.shared.outbox.close();
        }
    }
}
