//! The server under test: one already running (`--target`), or one started per session
//! (`--spawn`), and how a session's `requires:` limits reach it.
//!
//! A spawned server runs in its own process group, with its output sent to a file or to
//! nowhere (the seed server logs about 150k lines/s once a client has closed, so a pipe
//! nobody reads would soon stall it), and the whole group is killed when the session
//! ends, so even a server wedged by a session leaves nothing behind.

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::limit::{Limit, Requirement};
use crate::session::Session;

/// Where sessions are replayed.
#[derive(Debug, Clone)]
pub enum Target {
    /// A server already running at this address; it keeps its own settings. Several
    /// addresses are the nodes of one cluster (spec §20): a session's clients are
    /// spread over them round-robin, in the order they connect.
    Address(Vec<SocketAddr>),
    /// A fresh server per session, started from a command line.
    Spawn(SpawnSpec),
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// The command, split like a shell would (quotes, backslashes), with placeholders:
    /// `{port}` and one per limit (`{handshake_timeout}`, ...), see [`Limit::placeholder`].
    pub command: String,
    /// Extra arguments for a limit, added only when a session requires that limit;
    /// `{}` in them becomes the value (`--server-arg 'sendq=--sendq {}'`).
    pub server_args: Vec<(Limit, String)>,
    /// Directory for one log file per spawned server; `None` discards the output.
    pub log_dir: Option<PathBuf>,
    /// How long a server may take to start listening.
    pub startup_timeout: Duration,
}

impl Target {
    /// Parses `HOST:PORT`, or `HOST:PORT,HOST:PORT,...` for the nodes of a cluster
    /// (resolving host names).
    pub fn address(s: &str) -> Result<Target, String> {
        let mut addrs = Vec::new();
        for one in s.split(',') {
            let addr = one
                .to_socket_addrs()
                .map_err(|e| format!("`{one}` is not HOST:PORT: {e}"))?
                .next()
                .ok_or_else(|| format!("`{one}` resolves to no address"))?;
            addrs.push(addr);
        }
        Ok(Target::Address(addrs))
    }

    /// Why `session` cannot run against this target, if it cannot.
    pub fn skip_reason(&self, session: &Session) -> Option<String> {
        if session.fresh && matches!(self, Target::Address(_)) {
            return Some(
                "needs a fresh server (its history must start empty); a --target server has one of its own"
                    .into(),
            );
        }
        let first = session.requires.first()?;
        match self {
            Target::Address(_) => Some(format!(
                "needs {first}; a --target server keeps its own settings"
            )),
            Target::Spawn(spec) => {
                let missing: Vec<&Requirement> = session
                    .requires
                    .iter()
                    .filter(|r| !spec.can_set(r.limit))
                    .collect();
                let first = missing.first()?;
                let all: Vec<String> = missing.iter().map(|r| r.to_string()).collect();
                let how = match first.limit.placeholder() {
                    Some(p) => format!(
                        "{p} in --spawn or --server-arg '{}=ARGS'",
                        first.limit.name()
                    ),
                    None => format!("--server-arg '{}=ARGS'", first.limit.name()),
                };
                Some(format!("needs {}: give {how}", all.join(" ")))
            }
        }
    }
}

impl SpawnSpec {
    /// True when the command line can carry this limit's value.
    pub fn can_set(&self, limit: Limit) -> bool {
        limit
            .placeholder()
            .is_some_and(|p| self.command.contains(p))
            || self.server_args.iter().any(|(l, _)| *l == limit)
    }

    /// The argument vector for a server on `port` meeting `requires`.
    pub fn argv(&self, port: u16, requires: &[Requirement]) -> Result<Vec<String>, String> {
        let value = |limit: Limit| {
            requires
                .iter()
                .find(|r| r.limit == limit)
                .map_or_else(|| limit.default_value(), |r| r.value.clone())
        };
        let fill = |word: &str| {
            let mut w = word.replace("{port}", &port.to_string());
            for limit in Limit::ALL {
                if let Some(p) = limit.placeholder() {
                    w = w.replace(p, &value(limit));
                }
            }
            w
        };
        let mut argv: Vec<String> = split_command(&self.command)?
            .iter()
            .map(|w| fill(w))
            .collect();
        for r in requires {
            if r.limit
                .placeholder()
                .is_some_and(|p| self.command.contains(p))
            {
                continue;
            }
            if let Some((_, template)) = self.server_args.iter().find(|(l, _)| *l == r.limit) {
                argv.extend(
                    split_command(template)?
                        .iter()
                        .map(|w| w.replace("{}", &r.value.to_string())),
                );
            }
        }
        if argv.is_empty() {
            return Err("the --spawn command is empty".into());
        }
        Ok(argv)
    }

    /// Starts a server for `session`, and waits until it listens.
    pub fn start(&self, label: &str, requires: &[Requirement]) -> Result<Spawned, String> {
        let port = free_port()?;
        let argv = self.argv(port, requires)?;
        let (program, args) = argv.split_first().ok_or("the --spawn command is empty")?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).process_group(0);
        // Its own process group keeps a Ctrl-C at the terminal from reaching the server
        // directly, so make the kernel kill it if the harness dies before `Drop` runs.
        #[cfg(target_os = "linux")]
        // SAFETY: runs in the forked child before exec; prctl(2) is async-signal-safe and
        // touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut log = None;
        match &self.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let path = dir.join(format!("{label}.log"));
                let file = File::create(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let err = file.try_clone().map_err(|e| e.to_string())?;
                cmd.stdout(file).stderr(err);
                log = Some(path);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", argv.join(" ")))?;
        let mut spawned = Spawned {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        spawned.wait_listening(self.startup_timeout)?;
        Ok(spawned)
    }
}

/// A running spawned server; dropping it kills its whole process group.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log file, if kept.
    pub log: Option<PathBuf>,
}

impl Spawned {
    fn wait_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        // Bounded: one probe every 10 ms until the deadline.
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self
                    .log
                    .as_ref()
                    .map(|p| format!(" (log: {})", p.display()))
                    .unwrap_or_default();
                return Err(format!(
                    "the server exited with {status} before listening{log}"
                ));
            }
            if is_listening(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!(
            "the server was not listening on {} after {}s",
            self.addr,
            timeout.as_secs_f32()
        ))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group we created
            // for this child (`process_group(0)`); it touches no memory.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports handed out in this process, so parallel sessions never get the same one.
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port that was free a moment ago and has not been handed out before.
fn free_port() -> Result<u16, String> {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let mut used = PORTS.lock().unwrap_or_else(|p| p.into_inner());
        if used.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err("cannot find a fresh free port".into())
}

/// True when something listens on `addr`.
///
/// On Linux this reads the kernel's socket tables instead of connecting: a probe
/// connection is a client, and the seed server treats it as one (it blocks its accept
/// loop on the probe's nickname and spins on its close), which would spoil the session
/// about to run. Elsewhere it falls back to connecting.
fn is_listening(addr: SocketAddr) -> bool {
    let mut any_table = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            any_table = true;
            if listening_in_table(&text, addr.port()) {
                return true;
            }
        }
    }
    if any_table {
        return false;
    }
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
}

/// True when a `/proc/net/tcp`-format table has a socket in LISTEN state (`0A`) on
/// `port`, at any local address.
fn listening_in_table(table: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1).unwrap_or_default();
        let state = cols.nth(1).unwrap_or_default();
        state == "0A" && local.ends_with(&want)
    })
}

/// Splits a command line into words like a POSIX shell, without running one: single
/// and double quotes group, a backslash escapes the next character. No variables, no
/// globbing: a harness should run exactly what it was given.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed ' in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unclosed \" in `{s}`")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed \" in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(
                    chars
                        .next()
                        .ok_or_else(|| format!("trailing backslash in `{s}`"))?,
                );
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &str, server_args: Vec<(Limit, String)>) -> SpawnSpec {
        SpawnSpec {
            command: command.into(),
            server_args,
            log_dir: None,
            startup_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_command("a b  'c d' \"e \\\" f\" g\\ h").unwrap(),
            ["a", "b", "c d", "e \" f", "g h"]
        );
        assert_eq!(
            split_command("env PORT={port} python3 x.py").unwrap(),
            ["env", "PORT={port}", "python3", "x.py"]
        );
        assert_eq!(split_command("''").unwrap(), [""]);
        assert!(split_command("'open").is_err());
    }

    #[test]
    fn placeholders_and_server_args() {
        let req = [Requirement {
            limit: Limit::HandshakeTimeout,
            value: "1".into(),
        }];
        let s = spec(
            "srv --listen 127.0.0.1:{port} --handshake-timeout {handshake_timeout}",
            vec![],
        );
        assert_eq!(
            s.argv(5000, &[]).unwrap(),
            [
                "srv",
                "--listen",
                "127.0.0.1:5000",
                "--handshake-timeout",
                "30"
            ]
        );
        assert_eq!(
            s.argv(5000, &req).unwrap(),
            [
                "srv",
                "--listen",
                "127.0.0.1:5000",
                "--handshake-timeout",
                "1"
            ]
        );
        let s = spec(
            "srv {port}",
            vec![(Limit::HandshakeTimeout, "--handshake-timeout {}".into())],
        );
        assert_eq!(s.argv(7, &[]).unwrap(), ["srv", "7"]);
        assert_eq!(
            s.argv(7, &req).unwrap(),
            ["srv", "7", "--handshake-timeout", "1"]
        );
        // An empty template: the server is always like that; nothing is added.
        let s = spec("seed {port}", vec![(Limit::Compat, String::new())]);
        let seed = [Requirement {
            limit: Limit::Compat,
            value: "seed".into(),
        }];
        assert!(s.can_set(Limit::Compat));
        assert_eq!(s.argv(7, &seed).unwrap(), ["seed", "7"]);
    }

    #[test]
    fn skips_what_a_target_cannot_set() {
        let session = Session::parse(
            "t",
            "checks: NICK-6\nrequires: handshake-timeout=1\nconnect a\n",
        )
        .unwrap();
        let plain = Session::parse("t", "checks: NICK-6\nconnect a\n").unwrap();
        let addr = Target::Address(vec![SocketAddr::from(([127, 0, 0, 1], 9))]);
        assert!(
            addr.skip_reason(&session)
                .unwrap()
                .contains("needs handshake-timeout=1")
        );
        assert_eq!(addr.skip_reason(&plain), None);
        let spawn = Target::Spawn(spec("python3 seed.py {port}", vec![]));
        let why = spawn.skip_reason(&session).unwrap();
        assert!(why.contains("{handshake_timeout}"), "{why}");
        let compat =
            Session::parse("t", "checks: COMPAT-1\nrequires: compat=seed\nconnect a\n").unwrap();
        let why = spawn.skip_reason(&compat).unwrap();
        assert_eq!(why, "needs compat=seed: give --server-arg 'compat=ARGS'");
        let spawn = Target::Spawn(spec(
            "srv {port}",
            vec![(Limit::Compat, "--compat {}".into())],
        ));
        assert_eq!(spawn.skip_reason(&compat), None);
        let spawn = Target::Spawn(spec(
            "srv {port} --handshake-timeout {handshake_timeout}",
            vec![],
        ));
        assert_eq!(spawn.skip_reason(&session), None);
    }

    #[test]
    fn reads_listen_tables() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
           0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000\n\
           1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000\n";
        assert!(listening_in_table(table, 0x2382));
        assert!(
            !listening_in_table(table, 0x1F90),
            "established, not listening"
        );
        assert!(!listening_in_table(table, 80));
    }

    #[test]
    fn spawns_waits_and_kills() {
        let s = spec(
            "python3 -c 'import socket,sys,time; s=socket.socket(); s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(); time.sleep(30)' {port}",
            vec![],
        );
        let spawned = s.start("t", &[]).unwrap();
        assert!(is_listening(spawned.addr));
        let addr = spawned.addr;
        drop(spawned);
        // Killed with its group: the port is free again at once.
        assert!(!is_listening(addr));
        let bad = spec("sh -c 'exit 3'", vec![]).start("t", &[]).unwrap_err();
        assert!(bad.contains("exited"), "{bad}");
    }
}
