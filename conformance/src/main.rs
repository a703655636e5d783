//! The `chat-conformance` command: `run` a suite against a server, `record` a session
//! through a proxy, `coverage` of the spec, `list` the sessions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_conformance::coverage;
use chat_conformance::limit::{Limit, Requirement};
use chat_conformance::record::{RecordConfig, record};
use chat_conformance::report::{self, RunInfo};
use chat_conformance::runner::{self, RunConfig, Totals};
use chat_conformance::session::{Session, format_duration, parse_any_duration, parse_duration};
use chat_conformance::target::{SpawnSpec, Target};
use clap::{Args, Parser, Subcommand};

/// Conformance harness for the chat protocol (spec/PROTOCOL.md).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay the sessions against a server and print a table of results.
    Run(RunArgs),
    /// Record a live conversation through a proxy into a session file.
    Record(RecordArgs),
    /// Show which sessions and tests check each spec ID; fail if one is unchecked.
    Coverage(CoverageArgs),
    /// List the sessions, their spec IDs and requirements.
    List(SessionsArg),
}

#[derive(Args)]
struct SessionsArg {
    /// Directory of *.session files.
    #[arg(long, default_value = default_sessions_dir(), value_name = "DIR")]
    sessions: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// A running server, HOST:PORT, or tls://HOST:PORT for its TLS listener (then give
    /// --fingerprint or --insecure), or the nodes of a cluster, HOST:PORT,HOST:PORT,...
    /// (each session's clients are spread over them round-robin). Sessions that need
    /// other limits are skipped.
    #[arg(
        long,
        conflicts_with = "spawn",
        required_unless_present = "spawn",
        value_name = "HOST:PORT[,...]"
    )]
    target: Option<String>,
    /// Connect with TLS (implied by a tls:// target; with --spawn, {port} must then be
    /// the server's TLS port).
    #[arg(long)]
    tls: bool,
    /// The server certificate's SHA-256 fingerprint, as the server's banner prints it
    /// (`SHA256:AB:CD:...`): any other certificate is refused.
    #[arg(long, value_name = "FP", conflicts_with = "insecure")]
    fingerprint: Option<chat_tls::Fingerprint>,
    /// With TLS, accept whatever certificate the server presents (for test servers with a
    /// certificate made at start-up).
    #[arg(long)]
    insecure: bool,
    /// Start a fresh server per session: a command line with `{port}`, and optionally
    /// `{handshake_timeout}`, `{handshake_attempts}`, `{max_clients}`, `{sendq}`,
    /// `{flood_burst}`, `{flood_rate}`, `{flood_excess}` (the spec's defaults unless a
    /// session requires other values).
    #[arg(long, value_name = "COMMAND")]
    spawn: Option<String>,
    /// With --spawn: arguments added when a session needs a limit, `{}` is the value,
    /// e.g. `--server-arg 'handshake-timeout=--handshake-timeout {}'`. Repeatable.
    #[arg(long = "server-arg", value_name = "LIMIT=ARGS")]
    server_args: Vec<String>,
    #[command(flatten)]
    sessions: SessionsArg,
    /// Run only sessions whose name contains one of these. Repeatable.
    #[arg(long, value_name = "WORD")]
    only: Vec<String>,
    /// Seed of the random chunks of the `chunked` variant.
    #[arg(long, default_value_t = 20_261_124, value_name = "N")]
    seed: u64,
    /// How long `recv` and `closed` wait by default (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    step_timeout: Duration,
    /// Cases run at once with --spawn (each has its own server).
    #[arg(long, default_value_t = 4, value_name = "N")]
    jobs: usize,
    /// Write a Markdown report, with the transcript of every failure, to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Known differences of this server, `session-name: explanation` per line, shown
    /// beside the failures in the report.
    #[arg(long, value_name = "FILE")]
    explain: Option<PathBuf>,
    /// Keep each spawned server's output in this directory (default: discarded).
    #[arg(long, value_name = "DIR")]
    server_log: Option<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// Address the clients connect to, e.g. 127.0.0.1:9091.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    upstream: String,
    /// The session file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Stop once this many connections have come and all have ended.
    #[arg(long, default_value_t = 1, value_name = "N")]
    clients: usize,
    /// Spec IDs for the `checks:` header (else fill it in by hand).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    checks: Vec<String>,
    /// Limits the upstream server runs with, for `requires:` (e.g. handshake-timeout=1).
    #[arg(long, value_name = "LIMIT=VALUE")]
    requires: Vec<String>,
    /// Stop after this long in any case (e.g. 300s).
    #[arg(long, value_parser = parse_any_duration, value_name = "DURATION")]
    max_duration: Option<Duration>,
}

#[derive(Args)]
struct CoverageArgs {
    #[command(flatten)]
    sessions: SessionsArg,
    /// The spec.
    #[arg(long, default_value = default_spec(), value_name = "FILE")]
    spec: PathBuf,
}

fn default_sessions_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/sessions")
}

fn default_spec() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/PROTOCOL.md")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Record(args) => record_cmd(args),
        Cmd::Coverage(args) => coverage_cmd(args),
        Cmd::List(args) => list(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chat-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load(dir: &Path) -> Result<Vec<Session>> {
    Ok(Session::load_dir(dir)?)
}

fn run(args: RunArgs) -> Result<bool> {
    let mut sessions = load(&args.sessions.sessions)?;
    if !args.only.is_empty() {
        sessions.retain(|s| args.only.iter().any(|o| s.name.contains(o.as_str())));
        if sessions.is_empty() {
            bail!("no session matches --only {}", args.only.join(" "));
        }
    }
    let (tls_target, target_addr) = match &args.target {
        Some(t) => {
            let (tls, rest) = chat_tls::split_scheme(t);
            (tls, Some(rest))
        }
        None => (false, None),
    };
    let tls = match (args.tls || tls_target, args.fingerprint, args.insecure) {
        (false, None, false) => None,
        (false, _, _) => bail!("--fingerprint and --insecure need TLS: a tls:// target or --tls"),
        (true, Some(fp), _) => Some(chat_tls::Trust::Pinned(fp)),
        (true, None, true) => Some(chat_tls::Trust::Any),
        (true, None, false) => bail!(
            "TLS needs --fingerprint SHA256:... (the server prints it at start-up) or --insecure"
        ),
    };
    let (target, shown) = match (target_addr, &args.spawn) {
        (Some(t), _) => (
            Target::address(t).map_err(anyhow::Error::msg)?,
            match tls {
                Some(_) => format!("--target tls://{t}"),
                None => format!("--target {t}"),
            },
        ),
        (None, Some(cmd)) => {
            if !cmd.contains("{port}") {
                bail!("the --spawn command needs a {{port}} placeholder");
            }
            let mut server_args = Vec::new();
            for a in &args.server_args {
                let (name, template) = a.split_once('=').context("--server-arg is LIMIT=ARGS")?;
                let limit: Limit = name.parse().map_err(anyhow::Error::msg)?;
                server_args.push((limit, template.to_owned()));
            }
            let spec = SpawnSpec {
                command: cmd.clone(),
                server_args,
                log_dir: args.server_log.clone(),
                startup_timeout: Duration::from_secs(10),
            };
            (Target::Spawn(spec), format!("--spawn {cmd}"))
        }
        (None, None) => bail!("give --target HOST:PORT or --spawn 'COMMAND {{port}}'"),
    };
    let explain = match &args.explain {
        Some(p) => report::parse_explanations(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => Default::default(),
    };
    let config = RunConfig {
        target,
        seed: args.seed,
        step_timeout: args.step_timeout,
        jobs: args.jobs,
        tls,
    };
    println!(
        "chat-conformance: {} sessions against {shown}; chunked seed {}",
        sessions.len(),
        args.seed
    );
    let started = Instant::now();
    // Progress on stderr, so stdout holds just the table.
    let results = runner::run(&sessions, &config, |r| {
        eprintln!("  {} {}", report::result_word(&r.outcome), r.label());
    });
    print!("{}", report::table(&results));
    if let Some(path) = &args.report {
        let info = RunInfo {
            target: shown,
            seed: args.seed,
            step_timeout: format_duration(args.step_timeout),
            elapsed_secs: started.elapsed().as_secs_f64(),
        };
        std::fs::write(path, report::markdown(&results, &info, &explain))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(Totals::of(&results).failed == 0)
}

fn record_cmd(args: RecordArgs) -> Result<bool> {
    let resolve = |s: &str| -> Result<std::net::SocketAddr> {
        use std::net::ToSocketAddrs;
        s.to_socket_addrs()?
            .next()
            .with_context(|| format!("`{s}` resolves to nothing"))
    };
    let requires = args
        .requires
        .iter()
        .map(|r| r.parse::<Requirement>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let config = RecordConfig {
        listen: resolve(&args.listen)?,
        upstream: resolve(&args.upstream)?,
        out: args.out.clone(),
        clients: args.clients,
        checks: args.checks.clone(),
        requires,
        max_duration: args.max_duration,
    };
    let session = record(&config, |addr| {
        eprintln!("recording: connect clients to {addr} (e.g. `nc {} {}`); stops when {} connection(s) have ended", addr.ip(), addr.port(), config.clients);
    })
    .map_err(anyhow::Error::msg)?;
    eprintln!(
        "wrote {} steps to {}",
        session.steps.len(),
        args.out.display()
    );
    if session.checks.is_empty() {
        eprintln!("now edit it: describe the session in its comments and fill in `checks:`");
    }
    Ok(true)
}

fn coverage_cmd(args: CoverageArgs) -> Result<bool> {
    let spec = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("cannot read {}", args.spec.display()))?;
    let sessions = load(&args.sessions.sessions)?;
    let manifest_path = args.sessions.sessions.join("COVERAGE.md");
    let manifest = coverage::parse_manifest(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?,
    )
    .map_err(anyhow::Error::msg)?;
    let root = args
        .spec
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let cov = coverage::check(&spec, &sessions, &manifest, root);
    print!("{}", coverage::matrix(&spec, &cov));
    for p in &cov.problems {
        println!("problem: {p}");
    }
    Ok(cov.problems.is_empty())
}

fn list(dir: &SessionsArg) -> Result<bool> {
    for s in load(&dir.sessions)? {
        let reqs: Vec<String> = s.requires.iter().map(|r| r.to_string()).collect();
        println!(
            "{:<28} {:<40} {}{}",
            s.name,
            s.checks.join(","),
            if s.framing { "framing " } else { "" },
            reqs.join(" ")
        );
    }
    Ok(true)
}
