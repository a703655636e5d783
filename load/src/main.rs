//! `chat-load`: drives a chat server with many clients over loopback and reports
//! fan-out throughput (deliveries/s), latency percentiles, and every lost, duplicated,
//! reordered or corrupted line.
//!
//! `--clients N` receivers join, then `--senders S` more clients each send `--messages M`
//! messages of `--size B` bytes, unpaced or at `--rate R` messages/s in total. A delivery
//! is one message verified at one receiver; the run expects `N * S * M` of them and
//! stops at `--timeout` whatever happened. The exit status is 0 only when every message
//! reached every receiver once, in order and intact.

use chat_load::{dialect, run};

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "chat-load",
    version,
    about = "Load generator for chat servers (loopback only)"
)]
struct Args {
    /// Server address (must be a loopback address); several, comma-separated, for the
    /// nodes of one cluster: clients are spread over them round-robin.
    #[arg(long, default_value = "127.0.0.1:9090")]
    target: String,
    /// Protocol the server speaks.
    #[arg(long, value_enum, default_value = "spec")]
    dialect: dialect::Dialect,
    /// Receiving clients.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Sending clients (in addition to the receivers).
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 2000)]
    messages: u64,
    /// Bytes of each message's text.
    #[arg(long, default_value_t = 50)]
    size: usize,
    /// Messages per second over all senders (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds before the run gives up, handshakes included.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Threads of the load tool's executor.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Handshakes under way at once.
    #[arg(long, default_value_t = 64)]
    connect_parallelism: usize,
    /// Nickname prefix (receivers are <prefix>r<i>, senders <prefix>s<i>).
    #[arg(long, default_value = "ld")]
    nick_prefix: String,
    /// Unpaced senders gather this many bytes of messages per write (0: one write per
    /// message, as chat clients do).
    #[arg(long, default_value_t = 0)]
    write_batch: usize,
    /// Seconds a receiver waits for more once every sender is done.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Idle mode: join --clients clients that never speak, wait until every join notice
    /// has been read, print `READY <n>`, hold the connections this many seconds, exit.
    #[arg(long)]
    idle_hold: Option<f64>,
    /// The server's process id (same machine): report its CPU time (utime + stime from
    /// /proc) and write(2)/writev(2) calls per delivery over the send window. Several,
    /// comma-separated (a cluster's nodes, its Redis): the first is reported as the
    /// server, the others' CPU time beside it.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
    /// Connect with TLS (the server's TLS listener, e.g. --target 127.0.0.1:9443 or
    /// tls://127.0.0.1:9443); its certificate is accepted without pinning.
    #[arg(long)]
    tls: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut tls_wanted = args.tls;
    let mut targets = Vec::new();
    for one in args
        .target
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (tls_scheme, text) = chat_tls::split_scheme(one);
        tls_wanted |= tls_scheme;
        let addr: SocketAddr = text
            .to_socket_addrs()
            .with_context(|| format!("resolve {one}"))?
            .next()
            .context("no address")?;
        targets.push(addr);
    }
    let Some((&target, others)) = targets.split_first() else {
        anyhow::bail!("--target names no server");
    };
    let tls = tls_wanted.then(chat_load::stream::tls_config).transpose()?;
    let plan = run::Plan {
        target,
        other_targets: others.to_vec(),
        dialect: args.dialect,
        clients: args.clients,
        senders: args.senders.max(1),
        messages_per_sender: args.messages,
        size: args.size.max(40),
        rate: (args.rate > 0.0).then_some(args.rate),
        timeout: Duration::from_secs_f64(args.timeout.clamp(0.1, 3600.0)),
        connect_parallelism: args.connect_parallelism,
        nick_prefix: args.nick_prefix,
        settle: Duration::from_secs_f64(args.settle.clamp(0.05, 600.0)),
        write_batch: args.write_batch,
        server_pid: args.server_pid.first().copied(),
        other_pids: args.server_pid.get(1..).unwrap_or_default().to_vec(),
        tls,
    };
    if let Some(hold) = args.idle_hold {
        let held = run::run_idle(
            plan,
            args.threads,
            Duration::from_secs_f64(hold.clamp(0.0, 3600.0)),
        )?;
        println!("held {held} idle clients");
        return Ok(());
    }
    let report = run::run(plan, args.threads)?;
    if args.json {
        println!("{}", report.json());
    } else {
        println!("{report}");
    }
    std::process::exit(if report.clean() && !report.timed_out {
        0
    } else {
        1
    });
}
