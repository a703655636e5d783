//! The replay engine: drives a session's clients against a server address, step by
//! step, and records what happened.
//!
//! Steps run one at a time on one thread with blocking sockets and deadlines. That keeps
//! a replay deterministic: a client's lines queue up in its socket until a `recv` asks
//! for the next one, so lines addressed to different clients can arrive in any
//! interleaving without changing the result, while each client's own stream is checked
//! in order. Every wait has a deadline and every write a timeout, so a broken or wedged
//! server costs at most one step timeout per session, never a hang.
//!
//! Received bytes are split at LF here, not by `chat-proto`'s `Framer`, on purpose: the
//! harness must keep exactly what a server sent (a CR before the LF, bytes that are not
//! UTF-8, an overlong line) in order to report it; judging a line is the matcher's job,
//! and it does that through `chat-proto`'s parser.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::escape;
use crate::matcher::{Expect, check_users, grammar_note};
use crate::session::{Action, Session, Step, format_duration, format_step};
use crate::variant::{SplitMix64, Variant};
use crate::wire::{Trust, Wire};

/// Most bytes a client buffers while waiting for an LF. Far above the longest server
/// line (SRV-3), so only a server that sends garbage hits it.
const MAX_PENDING: usize = 64 * 1024;

/// Knobs of one replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// How payloads are cut into writes.
    pub variant: Variant,
    /// How long `recv`, `closed` and `connect` wait, unless the session or step says.
    pub step_timeout: Duration,
    /// How long to wait after the last step before checking that no client got anything
    /// the session did not expect.
    pub settle: Duration,
    /// Connect with TLS, trusting the server's certificate as this says (spec §19).
    pub tls: Option<Trust>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            variant: Variant::Whole,
            step_timeout: Duration::from_secs(2),
            settle: Duration::from_millis(100),
            tls: None,
        }
    }
}

/// The first difference between the session and the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Line of the step in the session file (0: after the last step).
    pub line: usize,
    /// The step as written, e.g. `recv alice NICK`.
    pub step: String,
    /// What went wrong, e.g. "expected `NICK`, got `NICK` without LF".
    pub message: String,
}

/// What one client saw, for snapshots and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientView {
    /// The session's name for the client.
    pub name: String,
    /// Every complete line received, escaped as in session files.
    pub lines: Vec<String>,
    /// How the connection ended, as far as the replay saw it.
    pub end: String,
}

/// The result of one replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// `None` when every step held.
    pub failure: Option<Failure>,
    /// Time-stamped log of every step, byte sent and line received.
    pub transcript: Vec<String>,
    /// What each client received, in the order the clients connected.
    pub clients: Vec<ClientView>,
}

impl Replay {
    /// True when every step held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// What each client received, as text: the body of the insta snapshots. Tag values
    /// (event ids, times) are masked: they change from run to run.
    pub fn received_text(&self) -> String {
        let mut out = String::new();
        for c in &self.clients {
            out.push_str(&format!("--- {}\n", c.name));
            for l in &c.lines {
                out.push_str(&crate::matcher::mask_tags(l));
                out.push('\n');
            }
            out.push_str(&format!("({})\n", c.end));
        }
        out
    }
}

/// How a client's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The server closed it (FIN).
    Eof,
    /// The server reset it (RST).
    Reset,
    /// Another socket error.
    Error(String),
}

/// Result of waiting for a line.
/// The id of a tagged line that is not an earlier event (RESUME-1).
fn live_id(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let (tags, _) = chat_proto::Tags::split(text).ok()?;
    if tags.is_earlier() {
        return None;
    }
    tags.id.map(|id| id.as_str().to_owned())
}

enum Next {
    Line(Vec<u8>),
    /// Deadline passed; the bytes of an unterminated line so far.
    Timeout(Vec<u8>),
    /// The stream ended; the bytes of an unterminated line so far.
    Ended(End, Vec<u8>),
    /// More than `MAX_PENDING` bytes without an LF.
    Overlong,
}

struct Conn {
    name: String,
    stream: Option<Wire>,
    buf: Vec<u8>,
    end: Option<End>,
    /// Closed or reset by the session itself.
    by_us: Option<&'static str>,
    /// A `closed` step saw the server end the connection.
    close_expected: bool,
    discard: bool,
    view: ClientView,
    /// The id of the last live tagged line received (RESUME-1), for `$id(NAME)`.
    last_id: Option<String>,
}

impl Conn {
    /// Reads once, waiting until `deadline` at most. Returns false on timeout.
    fn fill(&mut self, deadline: Instant) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            self.end.get_or_insert(End::Error("not connected".into()));
            return true;
        };
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        if let Err(e) = stream.tcp().set_read_timeout(Some(wait)) {
            self.end = Some(End::Error(e.to_string()));
            return true;
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => {
                self.end = Some(End::Eof);
                true
            }
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                self.end = Some(End::Reset);
                true
            }
            Err(e) => {
                self.end = Some(End::Error(e.to_string()));
                true
            }
        }
    }

    fn next_line(&mut self, deadline: Instant) -> Next {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                self.view.lines.push(escape::encode(&line));
                return Next::Line(line);
            }
            if self.buf.len() > MAX_PENDING {
                return Next::Overlong;
            }
            if let Some(end) = &self.end {
                return Next::Ended(end.clone(), self.buf.clone());
            }
            if !self.fill(deadline) {
                return Next::Timeout(self.buf.clone());
            }
        }
    }

    fn end_text(&self) -> String {
        if let Some(how) = self.by_us {
            return how.to_owned();
        }
        if self.discard {
            return "not checked: discarded".into();
        }
        let partial = if self.buf.is_empty() {
            String::new()
        } else {
            format!(", then `{}` without LF", escape::encode(&self.buf))
        };
        match &self.end {
            None if self.stream.is_none() => "never connected".into(),
            None => format!("open{partial}"),
            Some(End::Eof) => format!("closed by the server{partial}"),
            Some(End::Reset) => format!("reset by the server{partial}"),
            Some(End::Error(e)) => format!("error: {e}{partial}"),
        }
    }
}

fn describe_partial(partial: &[u8]) -> String {
    if partial.is_empty() {
        "nothing".into()
    } else {
        format!("`{}` without LF", escape::encode(partial))
    }
}

fn describe_end(end: &End) -> String {
    match end {
        End::Eof => "the server closed the connection".into(),
        End::Reset => "the server reset the connection".into(),
        End::Error(e) => format!("socket error: {e}"),
    }
}

/// The step as written in a session file, shortened for messages.
fn step_text(step: &Step) -> String {
    let text = format_step(step);
    const MAX: usize = 160;
    if text.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", text.get(..cut).unwrap_or_default())
    } else {
        text
    }
}

struct Engine<'a> {
    session: &'a Session,
    /// One server, or the nodes of a cluster (clients spread round-robin).
    addrs: &'a [SocketAddr],
    opts: ReplayOptions,
    conns: Vec<Conn>,
    start: Instant,
    transcript: Vec<String>,
    rng: SplitMix64,
}

impl Engine<'_> {
    fn log(&mut self, who: &str, what: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        self.transcript
            .push(format!("{t:8.3}s {who:<10} {}", what.as_ref()));
    }

    fn conn(&self, name: &str) -> Option<usize> {
        self.conns.iter().position(|c| c.name == name)
    }

    fn run(&mut self) -> Option<Failure> {
        let steps = &self.session.steps;
        for step in steps {
            if let Err(message) = self.step(step) {
                let f = Failure {
                    line: step.line,
                    step: step_text(step),
                    message,
                };
                self.log("!!", format!("line {}: {}: {}", f.line, f.step, f.message));
                return Some(f);
            }
        }
        if let Err(message) = self.finish() {
            self.log("!!", &message);
            return Some(Failure {
                line: 0,
                step: "(after the last step)".into(),
                message,
            });
        }
        None
    }

    fn timeout(&self, step: &Step) -> Duration {
        step.within
            .or(self.session.step_timeout)
            .unwrap_or(self.opts.step_timeout)
    }

    /// Replaces each `$id(NAME)` in a payload with the id of the last live tagged line
    /// client NAME received (RESUME-1: what a client hands back to resume), or leaves it
    /// when there is none.
    fn substitute_ids(&self, bytes: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return bytes.to_vec();
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("$id(") {
            let (before, after) = rest.split_at(at);
            out.push_str(before);
            let tail = after.get(4..).unwrap_or_default();
            let Some(close) = tail.find(')') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let name = tail.get(..close).unwrap_or_default();
            match self
                .conn(name)
                .and_then(|i| self.conns.get(i))
                .and_then(|c| c.last_id.clone())
            {
                Some(id) => out.push_str(&id),
                None => out.push_str(after.get(..close + 5).unwrap_or_default()),
            }
            rest = tail.get(close + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out.into_bytes()
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        let timeout = self.timeout(step);
        let deadline = Instant::now() + timeout;
        match &step.action {
            Action::Connect(name) => {
                self.log(name, "connect");
                let addr = self
                    .addrs
                    .get(self.conns.len() % self.addrs.len().max(1))
                    .copied()
                    .ok_or("no server address")?;
                let stream = Wire::connect(addr, self.opts.tls, timeout)?;
                let view = ClientView {
                    name: name.clone(),
                    lines: vec![],
                    end: String::new(),
                };
                self.conns.push(Conn {
                    name: name.clone(),
                    stream: Some(stream),
                    buf: Vec::new(),
                    end: None,
                    by_us: None,
                    close_expected: false,
                    discard: false,
                    view,
                    last_id: None,
                });
                Ok(())
            }
            Action::Send(name, bytes) | Action::Write(name, bytes) => {
                let substituted = self.substitute_ids(bytes);
                let bytes = &substituted;
                self.log(name, format!("-> {}", escape::encode(bytes)));
                let (pieces, pause) = self.opts.variant.pieces(bytes, &mut self.rng);
                let i = self.conn(name).ok_or("no such client")?;
                let stream = self
                    .conns
                    .get_mut(i)
                    .and_then(|c| c.stream.as_mut())
                    .ok_or("not connected")?;
                let count = pieces.len();
                let mut sent = 0;
                for (k, piece) in pieces.into_iter().enumerate() {
                    stream.write_all(piece).map_err(|e| {
                        format!(
                            "could not send (after {sent} of {} bytes): {e}",
                            bytes.len()
                        )
                    })?;
                    sent += piece.len();
                    if !pause.is_zero() && k + 1 < count {
                        std::thread::sleep(pause);
                    }
                }
                Ok(())
            }
            Action::Recv(name, expect) => {
                let i = self.conn(name).ok_or("no such client")?;
                let next = self.conns.get_mut(i).map(|c| c.next_line(deadline));
                if let (Some(Next::Line(l)), Some(c)) = (&next, self.conns.get_mut(i))
                    && let Some(id) = live_id(l)
                {
                    c.last_id = Some(id);
                }
                self.check_line(name, next, expect, timeout)
            }
            Action::RecvRaw(name, want) => {
                let i = self.conn(name).ok_or("no such client")?;
                let conn = self.conns.get_mut(i).ok_or("no such client")?;
                // Bounded: each pass reads once or ends at the deadline.
                while conn.buf.len() < want.len() && conn.end.is_none() && conn.fill(deadline) {}
                let n = conn.buf.len().min(want.len());
                let got: Vec<u8> = conn.buf.drain(..n).collect();
                conn.view
                    .lines
                    .push(format!("{} (no LF)", escape::encode(&got)));
                let shown = escape::encode(&got);
                if got == *want {
                    self.log(name, format!("<- {shown} (raw)"));
                    return Ok(());
                }
                self.log(name, format!("<- {shown} (raw, partial)"));
                let what = if got.is_empty() {
                    "nothing".to_owned()
                } else {
                    format!("`{shown}`")
                };
                Err(format!(
                    "expected the bytes `{}` (no LF), got {what} within {}",
                    escape::encode(want),
                    format_duration(timeout)
                ))
            }
            Action::RecvUsers(name, want) => {
                let i = self.conn(name).ok_or("no such client")?;
                let mut lines = Vec::new();
                // At most one line per name, plus one: bounded whatever the server sends.
                for _ in 0..=want.len() {
                    let Some(next) = self.conns.get_mut(i).map(|c| c.next_line(deadline)) else {
                        break;
                    };
                    match next {
                        Next::Line(l) => {
                            self.log(name, format!("<- {}", escape::encode(&l)));
                            lines.push(l);
                            if check_users(&lines, want)? {
                                return Ok(());
                            }
                        }
                        other => {
                            let what = format!("the rest of `Users online: {}`", want.join(", "));
                            return Err(self.no_line(name, other, &what, timeout));
                        }
                    }
                }
                Err(format!(
                    "more `Users online:` lines than names, expected `{}`",
                    want.join(", ")
                ))
            }
            Action::Silent(name, dur) => {
                let i = self.conn(name).ok_or("no such client")?;
                let until = Instant::now() + *dur;
                let conn = self.conns.get_mut(i).ok_or("no such client")?;
                while conn.buf.is_empty() && conn.end.is_none() && conn.fill(until) {}
                if conn.buf.is_empty() && conn.end.is_none() {
                    self.log(name, format!("(silent for {})", format_duration(*dur)));
                    return Ok(());
                }
                // Something arrived: read the rest of its line, briefly, to show it whole.
                let next = conn.next_line(Instant::now() + Duration::from_millis(200));
                let what = match next {
                    Next::Line(l) => {
                        self.log(name, format!("<- {}", escape::encode(&l)));
                        let note = grammar_note(&l)
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default();
                        format!("`{}`{note}", escape::encode(&l))
                    }
                    Next::Timeout(p) => describe_partial(&p),
                    Next::Ended(end, p) if p.is_empty() => describe_end(&end),
                    Next::Ended(end, p) => {
                        format!("{}, then {}", describe_partial(&p), describe_end(&end))
                    }
                    Next::Overlong => "an endless line".into(),
                };
                Err(format!(
                    "expected silence for {}, got {what}",
                    format_duration(*dur)
                ))
            }
            Action::Closed(name) => {
                let i = self.conn(name).ok_or("no such client")?;
                let next = self.conns.get_mut(i).map(|c| c.next_line(deadline));
                match next {
                    Some(Next::Ended(end @ (End::Eof | End::Reset), p)) if p.is_empty() => {
                        if let Some(c) = self.conns.get_mut(i) {
                            c.close_expected = true;
                        }
                        let how = if end == End::Eof { "closed" } else { "reset" };
                        self.log(name, format!("(connection {how} by the server)"));
                        Ok(())
                    }
                    Some(Next::Line(l)) => {
                        self.log(name, format!("<- {}", escape::encode(&l)));
                        Err(format!(
                            "expected the server to close, got `{}`",
                            escape::encode(&l)
                        ))
                    }
                    Some(Next::Timeout(p)) => Err(format!(
                        "expected the server to close within {}, still open (received {})",
                        format_duration(timeout),
                        describe_partial(&p)
                    )),
                    Some(Next::Ended(end, p)) => Err(format!(
                        "expected a clean close, got {} then {}",
                        describe_partial(&p),
                        describe_end(&end)
                    )),
                    Some(Next::Overlong) | None => {
                        Err("expected close, got an endless line".into())
                    }
                }
            }
            Action::Close(name) | Action::CloseWrite(name) | Action::Reset(name) => {
                let i = self.conn(name).ok_or("no such client")?;
                let (verb, how) = match &step.action {
                    Action::Close(_) => ("close", Shutdown::Both),
                    Action::CloseWrite(_) => ("close-write", Shutdown::Write),
                    _ => ("reset", Shutdown::Both),
                };
                self.log(name, verb);
                let conn = self.conns.get_mut(i).ok_or("no such client")?;
                match &step.action {
                    Action::CloseWrite(_) => {
                        if let Some(s) = conn.stream.as_mut() {
                            // The server may already have closed: not this step's concern.
                            let _ = s.shutdown(how);
                        }
                    }
                    Action::Reset(_) => {
                        if let Some(s) = conn.stream.take() {
                            socket2::SockRef::from(s.tcp())
                                .set_linger(Some(Duration::ZERO))
                                .map_err(|e| format!("cannot set SO_LINGER: {e}"))?;
                            drop(s);
                        }
                        conn.by_us = Some("reset by the client");
                    }
                    _ => {
                        if let Some(mut s) = conn.stream.take() {
                            let _ = s.shutdown(how);
                        }
                        conn.by_us = Some("closed by the client");
                    }
                }
                Ok(())
            }
            Action::Discard(name) => {
                let i = self.conn(name).ok_or("no such client")?;
                if let Some(c) = self.conns.get_mut(i) {
                    c.discard = true;
                }
                self.log(name, "(discarded: no longer checked)");
                Ok(())
            }
            Action::Sleep(d) => {
                self.log("", format!("sleep {}", format_duration(*d)));
                std::thread::sleep(*d);
                Ok(())
            }
        }
    }

    /// The failure message when no line came; what did come is logged for the report.
    fn no_line(&mut self, name: &str, next: Next, want: &str, timeout: Duration) -> String {
        match &next {
            Next::Timeout(p) | Next::Ended(_, p) if !p.is_empty() => {
                self.log(name, format!("<- {} (no LF)", escape::encode(p)));
            }
            Next::Ended(end, _) => self.log(name, format!("({})", describe_end(end))),
            _ => {}
        }
        match next {
            Next::Line(_) => String::new(),
            Next::Timeout(p) => {
                format!(
                    "expected {want}, got {} within {}",
                    describe_partial(&p),
                    format_duration(timeout)
                )
            }
            Next::Ended(end, p) if p.is_empty() => {
                format!("expected {want}, but {}", describe_end(&end))
            }
            Next::Ended(end, p) => {
                format!(
                    "expected {want}, got {} and then {}",
                    describe_partial(&p),
                    describe_end(&end)
                )
            }
            Next::Overlong => {
                format!("expected {want}, got more than {MAX_PENDING} bytes without LF")
            }
        }
    }

    fn check_line(
        &mut self,
        name: &str,
        next: Option<Next>,
        expect: &Expect,
        timeout: Duration,
    ) -> Result<(), String> {
        match next {
            Some(Next::Line(l)) => {
                self.log(name, format!("<- {}", escape::encode(&l)));
                if expect.matches(&l) {
                    Ok(())
                } else {
                    let note = grammar_note(&l)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    Err(format!(
                        "expected {expect}, got `{}`{note}",
                        escape::encode(&l)
                    ))
                }
            }
            Some(other) => Err(self.no_line(name, other, &expect.to_string(), timeout)),
            None => Err("no such client".into()),
        }
    }

    /// After the last step: no open client may hold anything the session did not expect.
    fn finish(&mut self) -> Result<(), String> {
        std::thread::sleep(self.opts.settle);
        let mut problems = Vec::new();
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if conn.by_us.is_some() || conn.discard || conn.stream.is_none() {
                continue;
            }
            // Only what is already there: a deadline in the past reads nothing new.
            if conn.end.is_none() {
                let _ = conn.stream.as_ref().map(|s| s.tcp().set_nonblocking(true));
                let mut chunk = [0u8; 16 * 1024];
                // Bounded: at most a few reads of whatever is already queued.
                for _ in 0..8 {
                    let Some(s) = conn.stream.as_mut() else { break };
                    match s.read(&mut chunk) {
                        Ok(0) => {
                            conn.end = Some(End::Eof);
                            break;
                        }
                        Ok(n) => conn
                            .buf
                            .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                            conn.end = Some(End::Reset);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            let name = conn.name.clone();
            let mut lines = Vec::new();
            while let Next::Line(l) = conn.next_line(Instant::now()) {
                lines.push(l);
            }
            let unexpected_end = if conn.close_expected {
                None
            } else {
                conn.end.clone()
            };
            let partial = conn.buf.clone();
            for l in &lines {
                self.log(&name, format!("<- {} (unexpected)", escape::encode(l)));
            }
            if let Some(first) = lines.first() {
                problems.push(format!(
                    "{name} received `{}` that no step expects",
                    escape::encode(first)
                ));
            } else if !partial.is_empty() {
                problems.push(format!(
                    "{name} received {} that no step expects",
                    describe_partial(&partial)
                ));
            } else if let Some(end) = unexpected_end {
                problems.push(format!(
                    "{name}: {} though no step expects it",
                    describe_end(&end)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Replays `session` against the server at `addr`. Never panics and never waits longer
/// than the session's steps allow; every client is closed before it returns.
pub fn replay(session: &Session, addr: SocketAddr, opts: &ReplayOptions) -> Replay {
    replay_spread(session, &[addr], opts)
}

/// Replays `session` against the nodes of a cluster (spec §20): its clients connect to
/// `addrs` round-robin, in the order they connect.
pub fn replay_spread(session: &Session, addrs: &[SocketAddr], opts: &ReplayOptions) -> Replay {
    let mut engine = Engine {
        session,
        addrs,
        opts: *opts,
        conns: Vec::new(),
        start: Instant::now(),
        transcript: Vec::new(),
        rng: opts.variant.rng(&session.name),
    };
    let failure = engine.run();
    let clients = engine
        .conns
        .iter_mut()
        .map(|c| {
            let mut v = c.view.clone();
            v.end = c.end_text();
            v
        })
        .collect();
    Replay {
        failure,
        transcript: engine.transcript,
        clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A scripted peer: accepts one connection per script and plays it: `>` lines are
    /// sent, `<` lines are read and checked, `close` closes. Enough to test the engine's
    /// mechanics without a real server.
    fn spawn_peer(
        scripts: Vec<Vec<&'static str>>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for script in scripts {
                let (stream, _) = listener.accept().unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                for item in script {
                    if let Some(out) = item.strip_prefix('>') {
                        writer.write_all(out.as_bytes()).unwrap();
                    } else if item.starts_with('<') {
                        let mut line = Vec::new();
                        // A reset may end the read: keep what came before it.
                        let _ = reader.read_until(b'\n', &mut line);
                        seen.push(String::from_utf8_lossy(&line).into_owned());
                    } else if item == "close" {
                        break;
                    } else if let Some(ms) = item.strip_prefix("sleep ") {
                        std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
                    }
                }
            }
            seen
        });
        (addr, handle)
    }

    fn opts() -> ReplayOptions {
        ReplayOptions {
            step_timeout: Duration::from_millis(500),
            settle: Duration::from_millis(20),
            ..Default::default()
        }
    }

    const HELLO: &str = "checks: NICK-1\nconnect a\nrecv a NICK\nsend a alice\\r\nrecv a alice has joined the chat\nclosed a\n";

    #[test]
    fn passes_when_the_peer_follows_the_script() {
        let s = Session::parse("hello", HELLO).unwrap();
        for variant in [Variant::Whole, Variant::Bytewise, Variant::Chunked(3)] {
            let (addr, peer) = spawn_peer(vec![vec![
                ">NICK\n",
                "<",
                ">alice has joined the chat\n",
                "close",
            ]]);
            let r = replay(&s, addr, &ReplayOptions { variant, ..opts() });
            assert!(
                r.passed(),
                "{variant}: {:?}\n{}",
                r.failure,
                r.transcript.join("\n")
            );
            assert_eq!(peer.join().unwrap(), ["alice\r\n"]);
            assert_eq!(
                r.received_text(),
                "--- a\nNICK\nalice has joined the chat\n(closed by the server)\n"
            );
        }
    }

    #[test]
    fn unterminated_prompt_times_out_with_a_clear_difference() {
        let s = Session::parse("hello", HELLO).unwrap();
        let (addr, peer) = spawn_peer(vec![vec![">NICK", "sleep 800", "close"]]);
        let started = Instant::now();
        let r = replay(&s, addr, &opts());
        assert!(started.elapsed() < Duration::from_secs(2));
        let f = r.failure.unwrap();
        assert_eq!(f.line, 3);
        assert_eq!(f.step, "recv a NICK");
        assert_eq!(
            f.message,
            "expected `NICK`, got `NICK` without LF within 500ms"
        );
        peer.join().unwrap();
    }

    #[test]
    fn wrong_line_is_reported_with_a_grammar_note() {
        let s = Session::parse("hello", HELLO).unwrap();
        let (addr, peer) = spawn_peer(vec![vec![
            ">NICK\n",
            "<",
            ">alice has joined the chat \n",
            "close",
        ]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert_eq!(f.line, 5);
        assert!(f.message.starts_with(
            "expected `alice has joined the chat`, got `alice has joined the chat\\s`"
        ));
        assert!(f.message.contains("SRV-1"), "{}", f.message);
        peer.join().unwrap();
    }

    #[test]
    fn error_patterns_silence_and_unexpected_leftovers() {
        let text = "checks: NICK-5\nconnect a\nrecv a ERR nick-taken *\nsilent a 100ms\n";
        let s = Session::parse("t", text).unwrap();
        let (addr, peer) = spawn_peer(vec![vec![
            ">ERR nick-taken Nickname a is in use\n",
            "sleep 300",
            "close",
        ]]);
        assert!(replay(&s, addr, &opts()).passed());
        peer.join().unwrap();

        let (addr, peer) = spawn_peer(vec![vec![
            ">ERR nick-taken x\n",
            "sleep 50",
            ">NICK\n",
            "sleep 300",
            "close",
        ]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert_eq!(f.message, "expected silence for 100ms, got `NICK`");
        peer.join().unwrap();

        let text = "checks: NICK-5\nconnect a\nrecv a ERR nick-taken *\n";
        let s = Session::parse("t", text).unwrap();
        let (addr, peer) = spawn_peer(vec![vec![
            ">ERR nick-taken x\nNICK\n",
            "sleep 300",
            "close",
        ]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert_eq!(f.line, 0);
        assert_eq!(f.message, "a received `NICK` that no step expects");
        peer.join().unwrap();
    }

    #[test]
    fn an_unexpected_close_is_a_difference() {
        let s = Session::parse("t", "checks: CONN-2\nconnect a\nrecv a NICK\n").unwrap();
        let (addr, peer) = spawn_peer(vec![vec![">NICK\n", "close"]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert_eq!(f.line, 0);
        assert_eq!(
            f.message,
            "a: the server closed the connection though no step expects it"
        );
        peer.join().unwrap();
    }

    #[test]
    fn closed_expects_a_close_and_nothing_else() {
        let text = "checks: NICK-6\nconnect a\nclosed a\n";
        let s = Session::parse("t", text).unwrap();
        let (addr, peer) = spawn_peer(vec![vec!["sleep 700", "close"]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert!(f.message.contains("still open"), "{}", f.message);
        peer.join().unwrap();
        let (addr, peer) = spawn_peer(vec![vec![">bye\n", "close"]]);
        let f = replay(&s, addr, &opts()).failure.unwrap();
        assert_eq!(f.message, "expected the server to close, got `bye`");
        peer.join().unwrap();
    }

    #[test]
    fn a_peer_that_never_reads_cannot_block_a_send() {
        // 12 MiB is far more than loopback buffers hold, and the peer never reads: the
        // write must give up at the step's timeout while the peer still holds the
        // connection open. No wall-clock bound on the whole replay (a loaded machine is
        // slow to build 12 MiB, and such a bound flaked); instead the peer lets go only
        // once the replay has returned (or after `HOLD`, far longer than any step), so a
        // send that waited for the peer instead of timing out is seen as such.
        const HOLD: Duration = Duration::from_secs(30);
        let text = "checks: FRAME-3\nconnect a\nsend a \\{6291456:xx}\n";
        let s = Session::parse("t", text).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (returned, told) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peer = {
            let released = released.clone();
            std::thread::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                let _ = told.recv_timeout(HOLD);
                released.store(true, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            })
        };
        let f = replay(&s, addr, &opts()).failure.unwrap();
        let peer_still_held_it = !released.load(std::sync::atomic::Ordering::SeqCst);
        let _ = returned.send(());
        peer.join().unwrap();
        assert!(f.message.starts_with("could not send"), "{}", f.message);
        assert!(
            peer_still_held_it,
            "the send waited for the peer to close: {}",
            f.message
        );
    }

    #[test]
    fn reset_and_close_are_seen_by_the_peer() {
        let text = "checks: CONN-2\nconnect a\nwrite a partial\nreset a\nconnect b\nclose b\n";
        let s = Session::parse("t", text).unwrap();
        let (addr, peer) = spawn_peer(vec![vec!["<"], vec!["<"]]);
        let r = replay(&s, addr, &opts());
        assert!(r.passed(), "{:?}", r.failure);
        assert_eq!(r.clients[0].end, "reset by the client");
        assert_eq!(r.clients[1].end, "closed by the client");
        assert_eq!(peer.join().unwrap(), ["partial", ""]);
    }
}
