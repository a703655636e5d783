//! `chat-server`: command line → [`Config`] → run until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chat_server::cluster::EngineConfig;
use chat_server::config::{
    AddressLimits, Compat, Config, FloodLimit, default_threads, parse_duration,
};
use chat_server::tls::{Identity, Origin, TlsConfig};
use chat_server::{Server, listener, shutdown};
use clap::Parser;
use tracing::{debug, info, warn};
use tracing_subscriber::EnvFilter;

/// The chat server. Start it, then connect with the GUI or with `nc`.
#[derive(Debug, Parser)]
#[command(name = "chat-server", version)]
struct Cli {
    /// Address to listen on. The default accepts only this machine; use
    /// `0.0.0.0:9090` (or `[::]:9090`) to let the LAN in.
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    listen: SocketAddr,

    /// Most open connections, counting those still choosing a nickname.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_MAX_CLIENTS, value_name = "N")]
    max_clients: usize,

    /// Most bytes of replies and private messages queued for one client that is not
    /// reading before it is disconnected (public lines are shared, see --log-budget).
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_SENDQ_BYTES, value_name = "BYTES")]
    sendq: usize,

    /// Most bytes of public lines kept for clients that lag behind, all together. Near
    /// it, fast senders are slowed down; past it, the clients furthest behind are
    /// disconnected.
    #[arg(long, default_value_t = chat_server::hub::DEFAULT_LOG_BUDGET, value_name = "BYTES")]
    log_budget: usize,

    /// Public chat events kept for late joiners, /history and reconnecting clients
    /// (0 turns history off). Must fit a quarter of --log-budget.
    #[arg(long, value_name = "N")]
    history: Option<usize>,

    /// Earlier events sent to a client that joins with history enabled.
    #[arg(long, default_value_t = chat_server::history::DEFAULT_BACKLOG, value_name = "N")]
    backlog: usize,

    /// Keep the chat's history in this SQLite file, so it survives a restart
    /// (created if missing).
    #[arg(long, value_name = "FILE")]
    store: Option<std::path::PathBuf>,

    /// A client whose oldest unsent public line is older than this is disconnected
    /// (seconds, or with a unit: 500ms, 2m).
    #[arg(long, default_value = "30", value_parser = parse_duration, value_name = "TIME")]
    max_lag: Duration,

    /// Total time a new connection has to choose a nickname (seconds, e.g. 30 or 0.5,
    /// or with a unit: 500ms, 2m).
    #[arg(long, default_value = "30", value_parser = parse_duration, value_name = "TIME")]
    handshake_timeout: Duration,

    /// Rejected nicknames after which a connection is closed.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_HANDSHAKE_ATTEMPTS, value_name = "N")]
    handshake_attempts: u32,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Lines a client may send in a burst before the flood limit slows it down (its
    /// bucket starts this full). At least 1, unless --flood-rate 0 turns the limit off.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_FLOOD_BURST, value_name = "LINES")]
    flood_burst: u32,

    /// Lines per second a client may keep sending; 0 turns the flood limit off
    /// (for benchmarks).
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_FLOOD_RATE, value_name = "PER_SEC")]
    flood_rate: f64,

    /// Bytes of lines a client may send in a burst before the flood limit slows it down
    /// (a long line costs more than a short one); at least 1024.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_FLOOD_BURST_BYTES, value_name = "BYTES")]
    flood_burst_bytes: u32,

    /// Bytes per second of lines a client may keep sending; 0 counts lines only.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_FLOOD_RATE_BYTES, value_name = "BYTES_PER_SEC")]
    flood_rate_bytes: u32,

    /// How long a client may keep sending too fast before it is disconnected.
    #[arg(long, default_value = "30", value_parser = parse_duration, value_name = "TIME")]
    flood_excess: Duration,

    /// Connections one address may hold, those choosing a nickname included; IPv6
    /// addresses count per /64. 0 = no limit. On a LAN behind one NAT address, raise it.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_MAX_PER_ADDRESS, value_name = "N")]
    max_per_address: usize,

    /// Connections one address may have choosing a nickname at once. 0 = no limit.
    #[arg(long, default_value_t = chat_proto::limits::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS, value_name = "N")]
    max_handshakes_per_address: usize,

    /// The connections of one address together may send this many times what one
    /// connection may (lines and bytes, FLOOD-ADDR-1). 0 = each connection on its own.
    #[arg(long, default_value_t = chat_server::per_address::DEFAULT_FLOOD_SHARE, value_name = "N")]
    flood_per_address: u32,

    /// Disconnect a user who has sent nothing for this long (seconds, or with a unit:
    /// 10m). Off by default: a quiet user is not a fault.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    idle_timeout: Option<Duration>,

    /// Clients that enabled the `ping` capability (the GUI does) are sent `PING` after
    /// this long without a word from them. 0 = no probes (and `ping` is not offered).
    /// Other clients never see a PING.
    #[arg(long, default_value = "30", value_parser = parse_duration, value_name = "TIME")]
    ping_interval: Duration,

    /// A client that sent nothing for this long after a `PING` is taken for dead:
    /// `ERR ping-timeout`, and the others see it leave.
    #[arg(long, default_value = "30", value_parser = parse_duration, value_name = "TIME")]
    ping_timeout: Duration,

    /// Operator password: a user who sends `/op <password>` may /kick, /mute and /ban.
    /// Prefer --op-password-file: a command line is visible to other local users.
    #[arg(long, value_name = "WORD", conflicts_with = "op_password_file")]
    op_password: Option<String>,

    /// File whose first line is the operator password.
    #[arg(long, value_name = "FILE")]
    op_password_file: Option<std::path::PathBuf>,
    /// Share the chat with other servers through Redis: `redis://HOST:PORT[/DB]`.
    /// Every server started with the same URL serves the same chat, in one order.
    /// Without it the chat lives in this process.
    #[arg(long, value_name = "URL")]
    engine: Option<String>,

    /// With --engine: how long after this server dies its users are shown as leaving
    /// (it renews the lease every third of it).
    #[arg(long, default_value = "5", value_parser = parse_duration, value_name = "TIME")]
    lease: Duration,

    /// Also listen for TLS here (default 127.0.0.1:9443 once --tls-cert/--tls-key or
    /// --tls-self-signed is given); the plain listener stays on --listen.
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<SocketAddr>,

    /// PEM certificate chain (leaf first) for the TLS listener; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// Make a self-signed certificate for the TLS listener and print its fingerprint.
    /// Alone, it is new at every start; with --tls-cert/--tls-key it is created in those
    /// files on the first start and reused after (clients pin it, so keep it).
    #[arg(long)]
    tls_self_signed: bool,

    /// Compatibility profile: `seed` lets the original Python client (seed_client.py)
    /// connect unchanged; clients of the spec keep working too.
    #[arg(long, value_enum, default_value_t = CompatArg::None, value_name = "PROFILE")]
    compat: CompatArg,
}

/// `--compat` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompatArg {
    /// The protocol of spec/PROTOCOL.md only.
    None,
    /// spec/PROTOCOL.md Appendix B: the original Python client works unchanged.
    Seed,
}

fn main() -> ExitCode {
    // Before any thread exists (issue 14: memory comes back after a join storm).
    chat_server::allocator::configure();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The operator password from `--op-password` or the first line of
/// `--op-password-file` (MOD-1); an invalid one stops the start.
fn op_password(cli: &Cli) -> anyhow::Result<Option<chat_proto::Password>> {
    let word = match (&cli.op_password, &cli.op_password_file) {
        (Some(word), _) => word.clone(),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --op-password-file {}", file.display()))?;
            let first = text.lines().next().unwrap_or_default();
            first.strip_suffix('\r').unwrap_or(first).to_owned()
        }
        (None, None) => return Ok(None),
    };
    chat_proto::Password::for_server(&word)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The TLS listener's settings from `--tls-*`, or `None` when TLS is off.
fn tls_config(cli: &Cli) -> anyhow::Result<Option<TlsConfig>> {
    let files = cli.tls_cert.as_deref().zip(cli.tls_key.as_deref());
    let listen = cli
        .tls_listen
        .unwrap_or_else(|| SocketAddr::new(cli.listen.ip(), chat_proto::limits::DEFAULT_TLS_PORT));
    let identity = match (cli.tls_self_signed, files) {
        (true, save) => Identity::self_signed(Some(listen.ip()), save)?,
        (false, Some((cert, key))) => Identity::from_pem_files(cert, key)?,
        (false, None) => {
            if cli.tls_listen.is_some() {
                anyhow::bail!("--tls-listen needs --tls-cert and --tls-key, or --tls-self-signed");
            }
            return Ok(None);
        }
    };
    Ok(Some(TlsConfig { listen, identity }))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let op_password = op_password(&cli)?;
    let tls = tls_config(&cli)?;
    let config = Config {
        op_password,
        listen: cli.listen,
        max_clients: cli.max_clients,
        sendq: cli.sendq,
        log_budget: cli.log_budget,
        history: cli.history,
        backlog: cli.backlog,
        store: cli.store,
        engine: cli.engine.as_deref().map(|url| EngineConfig {
            lease: cli.lease,
            ..EngineConfig::new(url)
        }),
        max_lag: cli.max_lag,
        handshake_timeout: cli.handshake_timeout,
        handshake_attempts: cli.handshake_attempts,
        threads: cli.threads.unwrap_or_else(default_threads),
        compat: match cli.compat {
            CompatArg::None => Compat::Standard,
            CompatArg::Seed => Compat::Seed,
        },
        flood: FloodLimit {
            burst: cli.flood_burst,
            rate: cli.flood_rate,
            excess: cli.flood_excess,
            burst_bytes: cli.flood_burst_bytes,
            rate_bytes: cli.flood_rate_bytes,
        },
        idle_timeout: cli.idle_timeout,
        ping: (!cli.ping_interval.is_zero()).then_some(chat_server::liveness::PingTimes {
            interval: cli.ping_interval,
            timeout: cli.ping_timeout,
        }),
        tls,
        per_address: AddressLimits {
            connections: cli.max_per_address,
            handshakes: cli.max_handshakes_per_address,
            flood_share: cli.flood_per_address,
        },
        ..Config::default()
    };
    config.validate()?;
    match listener::raise_fd_limit() {
        Ok(n) if (n as usize) < config.max_clients.saturating_add(64) => warn!(
            open_files = n,
            max_clients = config.max_clients,
            "the open-file limit is below --max-clients; raise it (ulimit -n) to serve that many"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not raise the open-file limit"),
    }
    // Connections, plus the listeners, the store and a margin (issue 14: no table growth
    // while a crowd is accepted).
    if let Err(e) = listener::reserve_descriptors(config.max_clients.saturating_add(64)) {
        debug!(error = %e, "could not reserve the descriptor table");
    }
    // Catch signals before announcing anything, so none is missed.
    let mut signals = shutdown::catch_signals().context("cannot catch SIGINT/SIGTERM")?;
    let server = Server::bind(config.clone()).with_context(|| match &config.store {
        Some(store) => format!(
            "cannot start on {} with the store {}",
            config.listen,
            store.display()
        ),
        None => match &config.tls {
            Some(tls) => format!("cannot listen on {} and {}", config.listen, tls.listen),
            None => format!("cannot listen on {}", config.listen),
        },
    })?;
    let addr = server.local_addr();
    print_banner(addr, config.compat);
    if let (Some(tls_addr), Some(tls)) = (server.tls_addr(), &config.tls) {
        print_tls_banner(tls_addr, &tls.identity);
    }
    let handle = server.spawn().context("cannot start the server threads")?;
    info!(%addr, threads = config.threads, max_clients = config.max_clients, sendq = config.sendq, "listening");

    let signal = shutdown::wait_for_signal(&mut signals)?;
    info!(
        ?signal,
        "shutting down (press Ctrl-C again to stop at once)"
    );
    std::thread::spawn(move || {
        if shutdown::wait_for_signal(&mut signals).is_ok() {
            eprintln!("chat-server: stopped at once");
            std::process::exit(130);
        }
    });
    handle.shutdown();
    info!("bye");
    Ok(())
}

/// Where the server listens and how to connect to it, for the person who started it.
fn print_banner(addr: SocketAddr, compat: Compat) {
    let port = addr.port();
    let mut hosts: Vec<IpAddr> = Vec::new();
    if addr.ip().is_unspecified() {
        let want_v6 = addr.is_ipv6();
        if let Ok(ifaces) = if_addrs::get_if_addrs() {
            for iface in ifaces {
                let ip = iface.ip();
                if iface.is_loopback() || iface.is_link_local() || (ip.is_ipv6() && !want_v6) {
                    continue;
                }
                if !hosts.contains(&ip) {
                    hosts.push(ip);
                }
            }
        }
        hosts.sort_by_key(|ip| (ip.is_ipv6(), *ip));
        // This machine first; `[::]` is dual-stack, so IPv4 loopback works there too.
        hosts.insert(0, IpAddr::from([127, 0, 0, 1]));
    } else {
        hosts.push(addr.ip());
    }
    println!("chat-server listening on {addr}");
    if addr.ip().is_unspecified() {
        println!("Reachable at:");
        for ip in &hosts {
            println!("  {}", SocketAddr::new(*ip, port));
        }
    }
    let first = hosts.first().copied().unwrap_or(addr.ip());
    let target = SocketAddr::new(first, port);
    let nc_host = match first {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string(),
    };
    println!("Connect with:");
    println!("  cargo run --release -p chat-client-gui -- --server {target} --nick NAME");
    println!("  nc {nc_host} {port}");
    if compat == Compat::Seed {
        println!(
            "  HOST={nc_host} PORT={port} python3 seed_client.py   (the original client: seed profile is on)"
        );
    }
    if hosts.len() > 1 {
        println!("(from another machine, use one of the LAN addresses above)");
    }
    println!("Stop with Ctrl-C.");
}

/// The TLS listener, its certificate's fingerprint and how to connect (TLS-1, TLS-3).
fn print_tls_banner(addr: SocketAddr, identity: &Identity) {
    let host = if addr.ip().is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let target = SocketAddr::new(host, addr.port());
    println!("TLS listening on {addr}");
    println!("  certificate {}", identity.fingerprint());
    match identity.origin() {
        Origin::Files => {}
        Origin::Ephemeral => println!(
            "  (self-signed, new at this start: clients that pinned another one will refuse it;\n   \
             keep one with --tls-self-signed --tls-cert FILE --tls-key FILE)"
        ),
        Origin::Saved { created: true } => println!("  (self-signed, created now and saved)"),
        Origin::Saved { created: false } => println!("  (self-signed, the saved one)"),
    }
    println!("Connect with TLS (check that the fingerprint shown matches the one above):");
    println!("  cargo run --release -p chat-client-gui -- --server tls://{target} --nick NAME");
    println!("  openssl s_client -quiet -connect {target}");
    println!(
        "  openssl s_client -connect {target} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    );
}
