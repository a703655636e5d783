//! `chat-server`: the server of `spec/PROTOCOL.md`.
//!
//! A library (so tests, benches and the conformance harness run a server in-process) and
//! the `chat-server` binary. Start one on a port the OS picks, use it, stop it:
//!
//! ```no_run
//! let server = chat_server::Server::bind(chat_server::Config::loopback_ephemeral())?;
//! let addr = server.local_addr();
//! let handle = server.spawn()?; // runs on its own threads
//! // ... connect to `addr` ...
//! handle.shutdown(); // every client gets `ERR server-shutdown`; threads joined
//! # std::io::Result::Ok(())
//! ```
//!
//! Shape (see ARCHITECTURE.md): `listener` accepts and admits, `connection` runs each
//! connection's handshake and command state machine and its reader task, `hub` is the
//! sequencer (registry + apply, one total order, SRV-4) that appends every public event
//! once to the chat's ordered `log`, `writer` drains a connection's cursor into that log
//! merged with its small private queue, in as few `writev`s as it can, `compat` holds the
//! seed profile's hooks, `shutdown` handles signals. Every byte read or written goes
//! through `chat-proto`.
#![warn(missing_docs)]

pub mod allocator;
pub mod cluster;
mod compat;
pub mod config;
mod connection;
pub mod dead_peer;
mod executors;
pub mod flood;
pub mod history;
pub mod hub;
mod idle;
pub mod listener;
pub mod liveness;
pub mod log;
pub mod per_address;
pub mod segment_memory;
pub mod shutdown;
pub mod store;
pub mod tls;
pub mod transport;
pub mod writer;

use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::Task;
use smol::channel::{Receiver, Sender};
use tracing::error;

pub use config::{Compat, Config, ConfigError};
pub use connection::{CLOSE_DISCARD, Detached};
pub use hub::Hub;

use connection::Settings;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    /// The TLS listener and its address (TLS-1), when configured.
    tls_listener: Option<(std::net::TcpListener, SocketAddr)>,
    config: Config,
    /// The opened store (STORE-1), opened at bind so that a bad file stops start-up.
    store: Option<(store::Restored, store::StoreHandle)>,
}

impl Server {
    /// Checks `config` and binds its listen address (port 0 picks a free port).
    pub fn bind(config: Config) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = listener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        let tls_listener = match &config.tls {
            Some(tls) => {
                let l = listener::bind(tls.listen)?;
                let addr = l.local_addr()?;
                Some((l, addr))
            }
            None => None,
        };
        let store = match &config.store {
            Some(path) => Some(
                store::open(path, config.history_len())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            local_addr,
            tls_listener,
            config,
            store,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_listener.as_ref().map(|(_, a)| *a)
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the server on `config.threads` executor threads of its own and returns at
    /// once. Stop it with [`ServerHandle::shutdown`] (dropping the handle does the same).
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let Server {
            listener,
            local_addr,
            tls_listener,
            config,
            store,
        } = self;
        let listener = async_net::TcpListener::try_from(listener)?;
        let ex = Arc::new(executors::Executors::new());
        let engine = match &config.engine {
            Some(c) => {
                // The stream is the history (CLUSTER-7): it keeps at least `--history`.
                let c = cluster::EngineConfig {
                    history: config.history_len(),
                    stream_len: c.stream_len.max(config.history_len()),
                    ..c.clone()
                };
                Some(cluster::Engine::connect(c).map_err(io::Error::other)?)
            }
            None => None,
        };
        let hub = Hub::with_settings(hub::HubSettings {
            max_connections: config.max_clients,
            log_budget: config.log_budget,
            history: config.history_len(),
            backlog: config.backlog,
            store,
            operators: hub::Operators::new(config.op_password.clone()),
            engine: engine.clone(),
        });
        if let Some(engine) = &engine {
            engine.start(&hub)?;
        }
        let settings = Arc::new(Settings::from_config(&config));

        // The accept loop has an executor and a thread of its own: under a join storm the
        // shared executor's queue holds thousands of writers woken by each notice, and a
        // newcomer must not wait behind them for its `NICK` (issue 14; the prompt is
        // written by the accept path itself, `connection::spawn`).
        let accept_ex = Arc::new(executors::Executors::fixed());
        let accept = accept_ex.current();
        let (stop_accept, accept_stopped) = smol::channel::bounded::<()>(1);
        // Per-address limits count plain and TLS connections together (ADDR-1, TLS-4).
        let addresses = per_address::PerAddress::new(config.per_address, config.flood);
        let mut accept_tasks = Vec::with_capacity(2);
        let mut tls_addr = None;
        if let (Some((tls_listener, addr)), Some(tls)) = (tls_listener, &config.tls) {
            let tls_listener = async_net::TcpListener::try_from(tls_listener)?;
            let stopped = accept_stopped.clone();
            tls_addr = Some(addr);
            accept_tasks.push(accept.spawn(listener::accept_loop(
                tls_listener,
                listener::Listening {
                    ex: ex.clone(),
                    hub: hub.clone(),
                    settings: settings.clone(),
                    addresses: addresses.clone(),
                    tls: Some(tls.identity.acceptor()),
                },
                async move {
                    let _ = stopped.recv().await;
                },
            )));
        }
        accept_tasks.push(accept.spawn(listener::accept_loop(
            listener,
            listener::Listening {
                ex: ex.clone(),
                hub: hub.clone(),
                settings,
                addresses,
                tls: None,
            },
            async move {
                let _ = accept_stopped.recv().await;
            },
        )));

        let (stop_threads, threads_stopped) = smol::channel::bounded::<()>(1);
        let mut threads = Vec::with_capacity(config.threads + 1);
        {
            let stopped = threads_stopped.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("chat-server-accept".into())
                    .spawn(move || run_executor(&accept_ex, &stopped, "chat-server-accept"))?,
            );
        }
        for i in 0..config.threads {
            let ex = ex.clone();
            let stopped = threads_stopped.clone();
            let name = format!("chat-server-{i}");
            let thread = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    yield_to_accepting();
                    run_executor(&ex, &stopped, &name)
                })?;
            threads.push(thread);
        }
        Ok(ServerHandle {
            local_addr,
            tls_addr,
            hub,
            ex: Some(ex),
            stop_accept: Some(stop_accept),
            accept_tasks,
            stop_threads: Some(stop_threads),
            threads,
            grace: config.shutdown_grace,
        })
    }
}

/// How much lower than the accept thread's the connection executor threads' priority
/// is, in nice steps (19 at most). Ten steps is a tenth of the CPU weight.
///
/// Why (issue 14): during a join storm the two executor threads fan out join notices
/// (about 1.1 s of CPU for 10,000 joins) while the accept thread needs about 23 µs a
/// connection; on equal terms with them, and with everything else on a busy machine, it
/// fell behind a burst of 10,000 connects a second, and a newcomer waited in the kernel's
/// accept queue behind the storm's own connections: `NICK` after 106 to 490 ms in 17 of
/// 57 runs of `server/tests/join_storm.rs` (2 cores, load 2 to 5). With the executors ten
/// steps lower, 0 of 27 runs went over 100 ms (slowest 88 ms), the joins ended no later,
/// and the churn stayed within 32 ms (docs/reliability.md, "join storm"). Raising the
/// accept thread's priority instead would need privileges; lowering one's own threads
/// does not. What it costs: where nice values count against other processes (no
/// autogroup and no cgroup for the server) the chat's work gets a smaller share of a
/// CPU that other programs are also using; under the usual autogroup or a service's
/// cgroup it only orders the server's own threads.
pub const EXECUTOR_NICE: i32 = 10;

/// Lowers the calling thread's priority by [`EXECUTOR_NICE`] steps (threads it starts
/// inherit it), so the accept thread comes first. Best effort: a failure only loses the
/// ordering.
fn yield_to_accepting() {
    #[cfg(target_os = "linux")]
    {
        // On Linux, PRIO_PROCESS with 0 is the calling thread, not the whole process.
        // SAFETY: getpriority/setpriority only read and set the thread's nice value;
        // errno is the calling thread's own.
        unsafe {
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, 0);
            if now == -1 && *libc::__errno_location() != 0 {
                return;
            }
            if libc::setpriority(libc::PRIO_PROCESS, 0, (now + EXECUTOR_NICE).min(19)) != 0 {
                tracing::debug!("could not lower the executor thread's priority");
            }
        }
    }
}

/// One executor thread: runs tasks and drives the reactor until told to stop. Tasks
/// catch their own panics; this loop is the last line of defence.
///
/// The work is done by a worker thread this one starts, and starts again whenever the
/// allocator asks for a renewal after a crowd has left ([`allocator::renewal`]): a
/// thread's allocator cache goes back to the heap only when the thread ends. Tasks the
/// old worker had queued go back to the executor's shared queue as it stops. A renewal
/// also gives new connections a fresh executor ([`executors`]).
fn run_executor(ex: &executors::Executors, stopped: &Receiver<()>, name: &str) {
    loop {
        let seen = allocator::generation();
        ex.renew(seen);
        let worker = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn_scoped(s, || run_worker(ex, stopped, seen))
                .map(|w| w.join())
        });
        match worker {
            Ok(Ok(Run::Stopped)) => break,
            Ok(Ok(Run::Renew | Run::Emptied | Run::Changed)) => {}
            // `run_worker` catches panics; a join error cannot happen, but must not
            // lose the executor thread.
            Ok(Err(_)) => error!("an executor worker ended abnormally; starting another"),
            // No thread to be had (resource exhaustion): do the work here.
            Err(e) => {
                error!(error = %e, "cannot start an executor worker; running it in place");
                if run_worker(ex, stopped, u64::MAX) == Run::Stopped {
                    break;
                }
            }
        }
    }
}

/// Why an executor worker ended, or ran its executors afresh.
#[derive(Debug, PartialEq, Eq)]
enum Run {
    Stopped,
    Renew,
    /// A retired executor has no task left: run the others without it.
    Emptied,
    /// The executors changed (a renewal, or one forgotten): run the new set.
    Changed,
}

/// Runs the executors of `ex` (the current one and the retired ones) until the server
/// stops or, unless `seen` is `u64::MAX`, a renewal after `seen` is asked for.
fn run_worker(ex: &executors::Executors, stopped: &Receiver<()>, seen: u64) -> Run {
    loop {
        let executors::Snapshot {
            current,
            retired,
            version,
        } = ex.snapshot();
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let stop = async {
                let _ = stopped.recv().await;
                Run::Stopped
            };
            let renew = async {
                if seen == u64::MAX {
                    std::future::pending::<()>().await;
                }
                allocator::renewal(seen).await;
                Run::Renew
            };
            let retired = async {
                executors::run_retired(&retired).await;
                Run::Emptied
            };
            let changed = async {
                ex.changed(version).await;
                Run::Changed
            };
            async_io::block_on(current.run(futures_lite::future::or(
                futures_lite::future::or(stop, renew),
                futures_lite::future::or(retired, changed),
            )))
        }));
        match run {
            Ok(Run::Emptied) => ex.forget_empty(),
            Ok(Run::Changed) => {}
            Ok(ended) => return ended,
            Err(_) => error!("a task panicked outside its guard; executor thread continues"),
        }
    }
}

/// A running server. [`ServerHandle::shutdown`] stops it; so does dropping it.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    hub: Arc<Hub>,
    ex: Option<Arc<executors::Executors>>,
    stop_accept: Option<Sender<()>>,
    accept_tasks: Vec<Task<()>>,
    stop_threads: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the TLS listener, when there is one (TLS-1).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The registry, e.g. to count connections and users in tests.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Stops the server (CONN-6): no new connections; every open connection receives
    /// what is already in the log or queued for it, then one `ERR server-shutdown` as its
    /// last line, and is closed; no leave notices. Returns when the
    /// executor threads have ended (at most about `shutdown_grace` later).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(ex) = self.ex.take() else { return };
        // 1. Stop accepting, and wait until the accept loop has really stopped.
        drop(self.stop_accept.take());
        for task in self.accept_tasks.drain(..) {
            async_io::block_on(futures_lite::future::or(task, async {
                async_io::Timer::after(Duration::from_secs(1)).await;
            }));
        }
        // 2. One ERR to everyone; the connections flush it and close.
        self.hub.shutdown();
        let deadline = Instant::now() + self.grace;
        while self.hub.open_connections() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Everything is in the log now: commit it and mark the store clean (RESUME-5).
        self.hub.close_store();
        // A cluster node hands its users over: the others see each of them leave.
        if let Some(engine) = self.hub.engine() {
            engine.retire();
        }
        // 3. Stop the threads; tasks still left are dropped with the executor.
        drop(self.stop_threads.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(ex);
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests, benches and the conformance harness keep handles in other threads.
    #[test]
    fn handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ServerHandle>();
        check::<Server>();
        check::<Arc<Hub>>();
    }

    /// Issue 14: the connection executor threads run [`EXECUTOR_NICE`] steps below the
    /// accept thread (`/proc/self/task/*/stat`, field 19).
    #[test]
    fn executor_threads_yield_to_the_accept_thread() {
        fn nice_of(thread: &str) -> Vec<i32> {
            let mut found = Vec::new();
            for task in std::fs::read_dir("/proc/self/task").unwrap() {
                let dir = task.unwrap().path();
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if comm.trim() != thread {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                    continue;
                };
                // After the parenthesised name come fields 3 (state) onwards; nice is 19.
                let after = stat.rsplit_once(')').unwrap().1;
                found.push(after.split_whitespace().nth(16).unwrap().parse().unwrap());
            }
            found
        }
        let handle = Server::bind(Config {
            threads: 1,
            ..Config::loopback_ephemeral()
        })
        .unwrap()
        .spawn()
        .unwrap();
        // `comm` keeps 15 bytes of a thread's name.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut accept, mut executors) = (Vec::new(), Vec::new());
        while (accept.is_empty() || executors.is_empty()) && Instant::now() < deadline {
            accept = nice_of("chat-server-acc");
            executors = nice_of("chat-server-0");
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.shutdown();
        let base = *accept.iter().min().expect("an accept thread");
        assert!(!executors.is_empty(), "an executor thread");
        for nice in executors {
            assert_eq!(nice, (base + EXECUTOR_NICE).min(19));
        }
    }

    #[test]
    fn start_and_stop_in_process() {
        let server = Server::bind(Config {
            threads: 1,
            ..Config::loopback_ephemeral()
        })
        .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let handle = server.spawn().unwrap();
        assert_eq!(handle.local_addr(), addr);
        let started = Instant::now();
        handle.shutdown();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(std::net::TcpStream::connect(addr).is_err());
    }

    #[test]
    fn bad_config_is_refused() {
        let err = Server::bind(Config {
            sendq: 1,
            ..Config::loopback_ephemeral()
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
