//! The listening socket and the accept loop: socket options, the connection limit
//! (CONN-1), and surviving descriptor exhaustion.
//!
//! When the process runs out of file descriptors (`EMFILE`/`ENFILE`), `accept` fails
//! while the pending connection stays in the backlog, so the socket stays readable and a
//! naive loop would spin at 100% CPU. We back off for [`FD_BACKOFF`] instead and try
//! again, so the server serves new clients as soon as descriptors are free.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use chat_proto::{ErrorCode, ServerMessage};
use futures_lite::{FutureExt as _, future};
use futures_rustls::TlsAcceptor;
use smol::Executor;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tracing::{debug, error, info, warn};

use crate::connection::{self, Accepted, Settings};
use crate::dead_peer::DeadPeer;
use crate::executors::Executors;
use crate::hub::{AttachError, Hub};
use crate::per_address::PerAddress;
use crate::tls::{self, TlsTransport};
use crate::transport::Transport as _;
use crate::writer::encode;

/// Pause after `accept` fails for lack of descriptors or memory.
pub const FD_BACKOFF: Duration = Duration::from_millis(100);

/// Pending connections the kernel may hold for us (it caps this at `somaxconn`).
const BACKLOG: i32 = 4096;

/// Opens the listening socket. `SO_REUSEADDR` lets a restarted server bind while old
/// connections linger in `TIME_WAIT` (DEFECTS.md item 12); an unspecified IPv6 address
/// (`[::]`) accepts IPv4 as well.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if let SocketAddr::V6(v6) = addr
        && v6.ip().is_unspecified()
    {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft limit on open files to the hard limit, so the server can hold as many
/// connections as the system allows (CONN-1's default is 10,000). Returns the new soft
/// limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

/// Grows the process's descriptor table now to hold descriptor `n` (capped below the
/// open-file limit), so accepting a crowd never has to.
///
/// Why: Linux doubles the table when a new descriptor does not fit, and in a process
/// with several threads each doubling waits for an RCU grace period (`expand_files` ->
/// `synchronize_rcu`, seen stalling the accept thread for 6.5 ms in a join storm under
/// `perf sched`). Ten thousand connections mean seven doublings on the accept path,
/// each holding up every newcomer queued behind it, for longer on a loaded machine
/// (issue 14). Costs kernel memory only (8 bytes a descriptor), not RSS; the table never
/// shrinks anyway once a crowd has come.
pub fn reserve_descriptors(n: usize) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let highest = (n as u64).min(lim.rlim_cur.saturating_sub(1));
    let Ok(highest) = libc::c_int::try_from(highest) else {
        return Ok(());
    };
    // A descriptor to duplicate: a fresh socket, so this works with any standard
    // streams closed.
    let probe = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: F_DUPFD_CLOEXEC duplicates our own socket onto the lowest free descriptor
    // at or above `highest`, which we close at once; no memory is involved.
    let dup = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is the descriptor we just created and own.
    unsafe { libc::close(dup) };
    Ok(())
}

/// TCP_NODELAY (a chat line must not wait for Nagle), keepalive and the user timeout
/// (CONN-5: a peer that vanished leaves about a minute later, `dead_peer.rs`).
fn tune(stream: &TcpStream, dead_peer: &DeadPeer) -> io::Result<()> {
    let sock = SockRef::from(stream);
    sock.set_tcp_nodelay(true)?;
    dead_peer.apply(&sock)
}

/// What one listener shares with the server and hands to every connection it accepts.
#[derive(Clone)]
pub(crate) struct Listening {
    /// The executors the connections' tasks run on (new ones on the current one).
    pub ex: Arc<Executors>,
    pub hub: Arc<Hub>,
    pub settings: Arc<Settings>,
    /// Per-address limits, counted over plain and TLS listeners together (ADDR-1, TLS-4).
    pub addresses: Arc<PerAddress>,
    /// `Some` on the TLS listener: each connection first does a TLS handshake.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections until `stop` resolves; then the listening socket is closed. With
/// `tls`, each connection first does a TLS handshake (TLS-1, TLS-4).
pub(crate) async fn accept_loop(
    listener: async_net::TcpListener,
    listening: Listening,
    stop: impl std::future::Future<Output = ()>,
) {
    let stop = async {
        stop.await;
        None
    };
    let mut stop = std::pin::pin!(stop);
    let mut last_warning: Option<Instant> = None;
    loop {
        let Some(accepted) = future::or(stop.as_mut(), accept_one(&listener)).await else {
            break;
        };
        match accepted {
            Ok((stream, peer)) => {
                let stream: Arc<Async<TcpStream>> = stream.into();
                admit(&listening, stream, peer, &mut last_warning);
            }
            Err(e) => {
                if is_transient(&e) {
                    continue;
                }
                if should_warn(&mut last_warning) {
                    warn!(error = %e, "accept failed (out of file descriptors?); retrying in 100 ms");
                }
                Timer::after(FD_BACKOFF).await;
            }
        }
    }
    info!("stopped accepting connections");
}

async fn accept_one(
    listener: &async_net::TcpListener,
) -> Option<io::Result<(async_net::TcpStream, SocketAddr)>> {
    Some(listener.accept().await)
}

/// Errors that concern one failed connection only: accept again at once.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// At most one warning per second, so a flood cannot flood the log too.
fn should_warn(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return false;
    }
    *last = Some(now);
    true
}

/// Gives an accepted connection a slot and its tasks, or turns it away with one `ERR`
/// (on the TLS listener, with a close: TLS-5).
fn admit(
    listening: &Listening,
    stream: Arc<Async<TcpStream>>,
    peer: SocketAddr,
    last_warning: &mut Option<Instant>,
) {
    let accepted = Instant::now();
    let Listening {
        ex,
        hub,
        settings,
        addresses,
        tls,
    } = listening;
    let turn_away = |stream: &Arc<Async<TcpStream>>, line: &[u8]| match tls {
        Some(acceptor) => tls_turn_away(&ex.current(), acceptor, stream, line, settings, peer),
        None => turn_away(stream, line),
    };
    if let Err(e) = tune(stream.get_ref(), &settings.dead_peer) {
        debug!(peer = %peer, error = %e, "could not set socket options");
    }
    // MOD-6: a banned address gets `ERR banned` instead of NICK, before anything else.
    if hub.is_banned(peer.ip()) {
        info!(peer = %peer, "refused: banned address");
        return turn_away(&stream, &hub.banned_line());
    }
    // ADDR-1: before NICK and before a slot under max_clients is taken.
    let admission = match addresses.admit(peer.ip()) {
        Ok(admission) => admission,
        Err(refused) => {
            debug!(peer = %peer, ?refused, "too many connections from this address");
            let msg = ServerMessage::error(ErrorCode::TooManyConnections, &refused.text());
            return turn_away(&stream, &encode(&msg));
        }
    };
    let outbox = hub.new_outbox(settings.sendq);
    match hub.attach(&outbox) {
        Ok(slot) => {
            info!(peer = %peer, "connected");
            hub.note_address(&outbox, peer.ip());
            let accepted = Accepted {
                stream,
                outbox,
                slot,
                admission,
                peer,
                at: accepted,
            };
            match tls {
                None => connection::spawn(&ex.current(), hub.clone(), settings.clone(), accepted),
                Some(acceptor) => ex
                    .current()
                    .spawn(tls_handshake(listening.clone(), acceptor.clone(), accepted))
                    .detach(),
            }
        }
        Err(why) => {
            let line = match why {
                AttachError::Full => {
                    if should_warn(last_warning) {
                        warn!(peer = %peer, "server full; turning connections away");
                    }
                    &hub.lines().server_full
                }
                AttachError::ShuttingDown => &hub.lines().server_shutdown,
            };
            turn_away(&stream, line);
        }
    }
}

/// TLS-4: a connection's TLS handshake, holding its slot and its per-address handshake
/// place, within the handshake time limit counted from the accept; then its tasks. A
/// failed or late handshake, or a server shutting down, closes it (TLS-5).
async fn tls_handshake(
    listening: Listening,
    acceptor: TlsAcceptor,
    accepted: Accepted<Async<TcpStream>>,
) {
    enum Outcome {
        Done(io::Result<Arc<TlsTransport>>),
        Late,
        Closed,
        Panicked,
    }
    let Listening {
        ex, hub, settings, ..
    } = listening;
    let Accepted {
        stream,
        outbox,
        slot,
        admission,
        peer,
        at,
    } = accepted;
    let handshake = async {
        match AssertUnwindSafe(tls::accept(&acceptor, stream.clone()))
            .catch_unwind()
            .await
        {
            Ok(done) => Outcome::Done(done),
            Err(_) => Outcome::Panicked,
        }
    };
    let late = async {
        Timer::at(at + settings.handshake_timeout).await;
        Outcome::Late
    };
    let closed = future::poll_fn(|cx| {
        if !outbox.is_open() {
            return Poll::Ready(Outcome::Closed);
        }
        outbox.watch_close(cx.waker());
        if outbox.is_open() {
            Poll::Pending
        } else {
            Poll::Ready(Outcome::Closed)
        }
    });
    match future::or(handshake, future::or(late, closed)).await {
        Outcome::Done(Ok(transport)) => {
            debug!(peer = %peer, "TLS handshake done");
            let accepted = Accepted {
                stream: transport,
                outbox,
                slot,
                admission,
                peer,
                at,
            };
            connection::spawn(&ex.current(), hub, settings, accepted);
            return;
        }
        Outcome::Done(Err(e)) => info!(peer = %peer, error = %e, "TLS handshake failed; closed"),
        Outcome::Late => {
            info!(peer = %peer, "TLS handshake not finished within the handshake time limit; closed")
        }
        Outcome::Closed => debug!(peer = %peer, "closed during the TLS handshake"),
        Outcome::Panicked => error!(peer = %peer, "TLS handshake panicked; closed"),
    }
    // Nothing was said in the protocol yet: no leave notice. The slot and the
    // per-address places are freed as they drop.
    outbox.kill();
    let _ = stream.get_ref().shutdown(Shutdown::Both);
}

/// TLS refusals in their handshake at once, all servers of the process together (TLS-5).
pub const TLS_REFUSALS_MAX: usize = 32;

static TLS_REFUSALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// TLS-5: a connection turned away on the TLS listener gets its `ERR` line inside TLS,
/// after a handshake bounded by the handshake time limit. A refusal holds no slot, so
/// at most [`TLS_REFUSALS_MAX`] of them are in their handshake at once; beyond that a
/// refused connection is closed without a handshake.
fn tls_turn_away(
    ex: &Executor<'static>,
    acceptor: &TlsAcceptor,
    stream: &Arc<Async<TcpStream>>,
    line: &[u8],
    settings: &Settings,
    peer: SocketAddr,
) {
    use std::sync::atomic::Ordering;
    if TLS_REFUSALS.fetch_add(1, Ordering::Relaxed) >= TLS_REFUSALS_MAX {
        TLS_REFUSALS.fetch_sub(1, Ordering::Relaxed);
        debug!(peer = %peer, "refused on the TLS listener; closed without a handshake");
        let _ = stream.get_ref().shutdown(Shutdown::Both);
        return;
    }
    let (acceptor, stream, line) = (acceptor.clone(), stream.clone(), line.to_vec());
    let within = settings.handshake_timeout;
    ex.spawn(async move {
        struct Release;
        impl Drop for Release {
            fn drop(&mut self) {
                TLS_REFUSALS.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _release = Release;
        let handshake = async { Some(tls::accept(&acceptor, stream.clone()).await) };
        let late = async {
            Timer::after(within).await;
            None
        };
        match future::or(handshake, late).await {
            Some(Ok(transport)) => {
                transport.write_now(&[io::IoSlice::new(&line)]);
                transport.shutdown(Shutdown::Write);
            }
            _ => {
                debug!(peer = %peer, "refused on the TLS listener; its handshake failed");
                let _ = stream.get_ref().shutdown(Shutdown::Both);
            }
        }
    })
    .detach();
}

/// Sends a connection its one `ERR` line instead of `NICK` and closes our side.
fn turn_away(stream: &Async<TcpStream>, line: &[u8]) {
    // A fresh socket has an empty send buffer: this non-blocking write goes out whole in
    // practice, and never waits (CONN-1, NICK-1, ADDR-1).
    let _ = io::Write::write(&mut stream.get_ref(), line);
    let _ = stream.get_ref().shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONN-5: accepted sockets get TCP_NODELAY, keepalive and the user timeout (the
    /// numbers are checked in `dead_peer.rs` and on the running server in
    /// `tests/keepalive.rs`).
    #[test]
    fn conn_5_nodelay_and_keepalive() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let dead_peer = DeadPeer::default();
        tune(&accepted, &dead_peer).unwrap();
        let sock = SockRef::from(&accepted);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), dead_peer.keepalive_idle);
        assert_eq!(sock.tcp_user_timeout().unwrap(), dead_peer.user_timeout);
    }

    #[test]
    fn ipv6_any_is_dual_stack() {
        let Ok(listener) = bind("[::]:0".parse().unwrap()) else {
            return;
        };
        let port = listener.local_addr().unwrap().port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }

    /// Issue 14: the descriptor table is grown once, up front (`FDSize` in
    /// `/proc/self/status` is its size).
    #[test]
    fn descriptor_table_reserved() {
        let limit = raise_fd_limit().unwrap();
        let want = 4_000.min(limit as usize - 1);
        reserve_descriptors(want).unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let size: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            size > want,
            "FDSize {size}, wanted room for descriptor {want}"
        );
    }

    #[test]
    fn fd_limit_raised_to_hard() {
        let n = raise_fd_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain out-parameter call.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(n, lim.rlim_cur);
    }
}
