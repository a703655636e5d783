//! The session file format (documented for people in `conformance/README.md`): parsing a
//! `.session` file into a [`Session`], and writing one back (the recorder does).
//!
//! A session is a script of numbered steps over named clients. The format is strict:
//! anything it cannot make sense of is an error with a line number, because a test that
//! silently skips a misspelt step is a test that cannot fail.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use chat_proto::{ErrorCode, ServerMessage};
use thiserror::Error;

use crate::escape::{self, EscapeError};
use crate::limit::Requirement;
use crate::matcher::Expect;

/// A parsed session file.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The file name without `.session`.
    pub name: String,
    /// Spec IDs this session checks (`checks:`).
    pub checks: Vec<String>,
    /// Non-default server limits it needs (`requires:`).
    pub requires: Vec<Requirement>,
    /// Also replay with every write split byte by byte and into random chunks
    /// (`framing: yes`).
    pub framing: bool,
    /// Needs a server that has seen nothing before it (`fresh: yes`): its history must
    /// start empty (§17), which a `--target` server that other sessions used cannot
    /// promise.
    pub fresh: bool,
    /// How long a `recv` or `closed` waits before failing, unless the step says
    /// `within` (`step-timeout:`); `None` leaves it to the runner.
    pub step_timeout: Option<Duration>,
    /// The comment lines before the first step, for the report.
    pub about: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based line in the file (0 for sessions built in code).
    pub line: usize,
    /// A `within DURATION` prefix: the time this step may take.
    pub within: Option<Duration>,
    /// What to do.
    pub action: Action,
}

/// What a step does. Clients are named by the session (`alice`, `c1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `connect C`: open a TCP connection.
    Connect(String),
    /// `send C PAYLOAD`: write the payload followed by LF, as one write.
    Send(String, Vec<u8>),
    /// `write C PAYLOAD`: write the payload as is (no LF added): half lines, split writes.
    Write(String, Vec<u8>),
    /// `recv C LINE`: the next line C receives must match.
    Recv(String, Expect),
    /// `recv-raw C PAYLOAD`: the next bytes C receives are exactly these, with no LF
    /// implied (the unterminated greeting of the seed profile, COMPAT-1).
    RecvRaw(String, Vec<u8>),
    /// `recv-users C a, b, c`: the next `Users online:` lines C receives, however the
    /// server splits them (CMD-WHO-2), list exactly these names.
    RecvUsers(String, Vec<String>),
    /// `silent C DURATION`: C receives nothing for that long.
    Silent(String, Duration),
    /// `closed C`: the server closes C (nothing more arrives before the end of stream).
    Closed(String),
    /// `close C`: the client closes its socket (FIN).
    Close(String),
    /// `close-write C`: the client shuts down its sending side only, still reading.
    CloseWrite(String),
    /// `reset C`: the client aborts the connection (RST, via `SO_LINGER` 0).
    Reset(String),
    /// `discard C`: from now on, what C receives is not checked (a background client).
    Discard(String),
    /// `sleep DURATION`: wait.
    Sleep(Duration),
}

impl Action {
    /// The client the step acts on, if any.
    pub fn client(&self) -> Option<&str> {
        match self {
            Action::Connect(c)
            | Action::Send(c, _)
            | Action::Write(c, _)
            | Action::Recv(c, _)
            | Action::RecvRaw(c, _)
            | Action::RecvUsers(c, _)
            | Action::Silent(c, _)
            | Action::Closed(c)
            | Action::Close(c)
            | Action::CloseWrite(c)
            | Action::Reset(c)
            | Action::Discard(c) => Some(c),
            Action::Sleep(_) => None,
        }
    }

    /// The client the step acts on, to rename it (the recorder does).
    pub fn client_mut(&mut self) -> Option<&mut String> {
        match self {
            Action::Connect(c)
            | Action::Send(c, _)
            | Action::Write(c, _)
            | Action::Recv(c, _)
            | Action::RecvRaw(c, _)
            | Action::RecvUsers(c, _)
            | Action::Silent(c, _)
            | Action::Closed(c)
            | Action::Close(c)
            | Action::CloseWrite(c)
            | Action::Reset(c)
            | Action::Discard(c) => Some(c),
            Action::Sleep(_) => None,
        }
    }
}

/// A session file that cannot be used, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// Session name or path.
    pub file: String,
    /// 1-based line (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Longest a single step may wait or sleep: bounds every replay.
pub const MAX_STEP_DURATION: Duration = Duration::from_secs(60);

/// Parses a duration such as `300ms`, `2s` or `1.5s`, at most [`MAX_STEP_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_any_duration(s)?;
    if d > MAX_STEP_DURATION {
        return Err(format!(
            "`{s}` is longer than the {}s limit",
            MAX_STEP_DURATION.as_secs()
        ));
    }
    Ok(d)
}

/// Parses a duration such as `300ms`, `2s` or `1.5s`, of any length.
pub fn parse_any_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration like 300ms or 2s");
    if let Some(ms) = s.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse().map_err(|_| bad())?));
    }
    let secs = s.strip_suffix('s').ok_or_else(bad)?;
    let v: f64 = secs.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(v).map_err(|_| bad())
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub use chat_proto::spec_ids::is_spec_id;

fn valid_client_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Session {
    /// Reads and parses a session file; the session is named after the file.
    pub fn load(path: &Path) -> Result<Session, ParseError> {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Session::parse(&name, &text)
    }

    /// Every `*.session` file of a directory, sorted by name.
    pub fn load_dir(dir: &Path) -> Result<Vec<Session>, ParseError> {
        let err = |message: String| ParseError {
            file: dir.display().to_string(),
            line: 0,
            message,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "session"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(err("no .session files".into()));
        }
        paths.iter().map(|p| Session::load(p)).collect()
    }

    /// Parses the text of a session file.
    pub fn parse(name: &str, text: &str) -> Result<Session, ParseError> {
        let mut s = Session {
            name: name.to_owned(),
            checks: Vec::new(),
            requires: Vec::new(),
            framing: false,
            fresh: false,
            step_timeout: None,
            about: Vec::new(),
            steps: Vec::new(),
        };
        let mut connected: BTreeSet<String> = BTreeSet::new();
        let mut ended: BTreeSet<String> = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| ParseError {
                file: name.to_owned(),
                line: line_no,
                message,
            };
            let line = raw.trim_start();
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if s.steps.is_empty() {
                    s.about.push(
                        comment
                            .strip_prefix(' ')
                            .unwrap_or(comment)
                            .trim_end()
                            .to_owned(),
                    );
                }
                continue;
            }
            if let Some((key, value)) = header(line) {
                if !s.steps.is_empty() {
                    return Err(err(format!("header `{key}:` after the first step")));
                }
                let value = value.trim();
                match key {
                    "checks" => {
                        for id in value.split([' ', ',']).filter(|w| !w.is_empty()) {
                            if !is_spec_id(id) {
                                return Err(err(format!("`{id}` is not a spec ID like FRAME-3")));
                            }
                            s.checks.push(id.to_owned());
                        }
                    }
                    "requires" => {
                        for req in value.split([' ', ',']).filter(|w| !w.is_empty()) {
                            s.requires.push(req.parse().map_err(err)?);
                        }
                    }
                    "framing" => {
                        s.framing = match value {
                            "yes" => true,
                            "no" => false,
                            _ => return Err(err("`framing:` is `yes` or `no`".into())),
                        }
                    }
                    "fresh" => {
                        s.fresh = match value {
                            "yes" => true,
                            "no" => false,
                            _ => return Err(err("`fresh:` is `yes` or `no`".into())),
                        }
                    }
                    "step-timeout" => s.step_timeout = Some(parse_duration(value).map_err(err)?),
                    _ => return Err(err(format!("unknown header `{key}:`"))),
                }
                continue;
            }
            let step = parse_step(line).map_err(err)?;
            if let Some(c) = step.action.client() {
                match &step.action {
                    Action::Connect(_) if !connected.insert(c.to_owned()) => {
                        return Err(err(format!("client `{c}` connects twice; use a new name")));
                    }
                    Action::Connect(_) => {}
                    _ if !connected.contains(c) => {
                        return Err(err(format!("client `{c}` is used before `connect {c}`")));
                    }
                    Action::Close(_) | Action::Reset(_) if !ended.insert(c.to_owned()) => {
                        return Err(err(format!("client `{c}` is already closed")));
                    }
                    Action::Close(_) | Action::Reset(_) => {}
                    _ if ended.contains(c) => {
                        return Err(err(format!("client `{c}` is used after it was closed")));
                    }
                    _ => {}
                }
            }
            s.steps.push(Step {
                line: line_no,
                ..step
            });
        }
        let whole = |message: &str| ParseError {
            file: name.to_owned(),
            line: 0,
            message: message.into(),
        };
        if s.checks.is_empty() {
            return Err(whole(
                "no `checks:` header naming the spec IDs this session checks",
            ));
        }
        if s.steps.is_empty() {
            return Err(whole("no steps"));
        }
        Ok(s)
    }

    /// The session as file text; [`Session::parse`] reads it back unchanged.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.about {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {line}");
            }
        }
        if self.checks.is_empty() {
            // Left for the author: the file does not parse until it names its IDs.
            out.push_str("checks:\n");
        } else {
            let _ = writeln!(out, "checks: {}", self.checks.join(" "));
        }
        if !self.requires.is_empty() {
            let reqs: Vec<String> = self.requires.iter().map(|r| r.to_string()).collect();
            let _ = writeln!(out, "requires: {}", reqs.join(" "));
        }
        if self.framing {
            out.push_str("framing: yes\n");
        }
        if self.fresh {
            out.push_str("fresh: yes\n");
        }
        if let Some(t) = self.step_timeout {
            let _ = writeln!(out, "step-timeout: {}", format_duration(t));
        }
        out.push('\n');
        for step in &self.steps {
            out.push_str(&format_step(step));
            out.push('\n');
        }
        out
    }
}

/// One step as a line of a session file (without the line break).
pub fn format_step(step: &Step) -> String {
    match step.within {
        Some(w) => format!(
            "within {} {}",
            format_duration(w),
            format_action(&step.action)
        ),
        None => format_action(&step.action),
    }
}

/// `key: value` when the line is a header (a known lower-case word and a colon).
fn header(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let is_key = !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    // A step's verb is followed by a space, never by a colon, so this is unambiguous.
    is_key.then_some((key, value))
}

/// The payload of a step line: everything after `verb client ` exactly (one space), so
/// that leading blanks of a payload survive.
fn split_step(line: &str) -> (&str, Option<&str>, Option<&str>) {
    let line = line.trim_end_matches(['\r', '\n']);
    match line.split_once(' ') {
        None => (line, None, None),
        Some((verb, rest)) => match rest.split_once(' ') {
            None => (verb, Some(rest.trim_end()), None),
            Some((client, payload)) => (verb, Some(client), Some(payload)),
        },
    }
}

fn parse_step(line: &str) -> Result<Step, String> {
    let mut line = line;
    let mut within = None;
    if let Some(rest) = line.strip_prefix("within ") {
        let (d, rest) = rest
            .split_once(' ')
            .ok_or("`within` needs a duration and a step")?;
        within = Some(parse_duration(d)?);
        line = rest;
    }
    let (verb, client, payload) = split_step(line);
    let need_client = || -> Result<String, String> {
        let c = client.ok_or_else(|| format!("`{verb}` needs a client name"))?;
        if !valid_client_name(c) {
            return Err(format!(
                "`{c}` is not a client name (letters, digits, `_`, `-`)"
            ));
        }
        Ok(c.to_owned())
    };
    let no_payload = |action: Action| -> Result<Action, String> {
        match payload {
            Some(p) if !p.trim().is_empty() => {
                Err(format!("`{verb}` takes no payload, found `{p}`"))
            }
            _ => Ok(action),
        }
    };
    if payload.is_some_and(|p| p.ends_with([' ', '\t'])) {
        return Err(
            "the payload ends with a blank; write it as \\s (or \\t) so editors keep it".into(),
        );
    }
    let decode = |p: Option<&str>| -> Result<Vec<u8>, String> {
        escape::decode(p.unwrap_or_default()).map_err(|e: EscapeError| e.to_string())
    };
    let duration = |p: Option<&str>| -> Result<Duration, String> {
        parse_duration(
            p.ok_or_else(|| format!("`{verb}` needs a duration"))?
                .trim(),
        )
    };
    let action = match verb {
        "connect" => no_payload(Action::Connect(need_client()?))?,
        "send" => {
            let mut bytes = decode(payload)?;
            bytes.push(b'\n');
            Action::Send(need_client()?, bytes)
        }
        "write" => {
            let bytes = decode(payload)?;
            if bytes.is_empty() {
                return Err("`write` needs a payload".into());
            }
            Action::Write(need_client()?, bytes)
        }
        "recv" => {
            let c = need_client()?;
            Action::Recv(c, parse_expect(payload.unwrap_or_default())?)
        }
        "recv-raw" => {
            let bytes = decode(payload)?;
            if bytes.is_empty() {
                return Err("`recv-raw` needs a payload".into());
            }
            Action::RecvRaw(need_client()?, bytes)
        }
        "recv-users" => {
            let c = need_client()?;
            let names: Vec<String> = payload
                .unwrap_or_default()
                .split(", ")
                .map(|n| n.trim().to_owned())
                .collect();
            for n in &names {
                chat_proto::Nickname::new(n).map_err(|e| format!("`{n}` in recv-users: {e}"))?;
            }
            Action::RecvUsers(c, names)
        }
        "silent" => {
            let c = need_client()?;
            Action::Silent(c, duration(payload)?)
        }
        "closed" => no_payload(Action::Closed(need_client()?))?,
        "close" => no_payload(Action::Close(need_client()?))?,
        "close-write" => no_payload(Action::CloseWrite(need_client()?))?,
        "reset" => no_payload(Action::Reset(need_client()?))?,
        "discard" => no_payload(Action::Discard(need_client()?))?,
        "sleep" => {
            // `sleep 100ms`: the duration sits where a client name would.
            let d = parse_duration(client.ok_or("`sleep` needs a duration")?)?;
            if payload.is_some() {
                return Err("`sleep` takes only a duration".into());
            }
            Action::Sleep(d)
        }
        other => return Err(format!("unknown step `{other}`")),
    };
    if within.is_some()
        && !matches!(
            action,
            Action::Recv(..) | Action::RecvRaw(..) | Action::RecvUsers(..) | Action::Closed(_)
        )
    {
        return Err("`within` applies only to recv, recv-raw, recv-users and closed".into());
    }
    Ok(Step {
        line: 0,
        within,
        action,
    })
}

/// `ERR <code> *` is a pattern for any text; anything else is an exact line, which must
/// itself be a valid server line (so a typo in a session is caught here, not blamed on
/// the server).
fn parse_expect(payload: &str) -> Result<Expect, String> {
    if let Some((code, words)) = payload
        .strip_prefix("ERR ")
        .and_then(|r| r.split_once(" *"))
        .filter(|(_, words)| words.is_empty() || words.starts_with(' '))
    {
        let code: ErrorCode = code
            .parse()
            .map_err(|_| format!("`{code}` is not an error code of §7"))?;
        let words: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
        return Ok(if words.is_empty() {
            Expect::Error(code)
        } else {
            Expect::ErrorMentions(code, words)
        });
    }
    if let Some(rest) = payload.strip_prefix('@') {
        let (keys, line) = rest
            .split_once(' ')
            .ok_or("`recv C @id,t LINE` needs tag keys and a line")?;
        let keys: Vec<String> = keys.split(',').map(str::to_owned).collect();
        if keys.iter().any(|k| !chat_proto::tags::is_tag_key(k)) {
            return Err(format!("`{rest}`: tag keys are like `id,t` (TAG-1)"));
        }
        let Expect::Line(line) = parse_expect(line)? else {
            return Err("a tagged line's body is an exact line".into());
        };
        return Ok(Expect::Tagged { keys, line });
    }
    if let Some(rest) = payload.strip_prefix("[*] ") {
        let Expect::Line(line) = parse_expect(rest)? else {
            return Err("an earlier event's body is an exact line".into());
        };
        return Ok(Expect::Earlier(line));
    }
    let bytes = escape::decode(payload).map_err(|e| e.to_string())?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| "an expected line must be UTF-8".to_owned())?;
    ServerMessage::parse(text).map_err(|_| {
        format!("`{payload}` is not a valid server line (spec §10); a server must never send it")
    })?;
    Ok(Expect::Line(bytes))
}

fn format_action(a: &Action) -> String {
    match a {
        Action::Connect(c) => format!("connect {c}"),
        Action::Send(c, b) => {
            let body = b.strip_suffix(b"\n").unwrap_or(b);
            format!("send {c} {}", escape::encode(body))
        }
        Action::Write(c, b) => format!("write {c} {}", escape::encode(b)),
        Action::Recv(c, Expect::Line(b)) => format!("recv {c} {}", escape::encode(b)),
        Action::Recv(c, Expect::Error(code)) => format!("recv {c} ERR {code} *"),
        Action::Recv(c, Expect::ErrorMentions(code, words)) => {
            format!("recv {c} ERR {code} * {}", words.join(" "))
        }
        Action::Recv(c, Expect::Tagged { keys, line }) => {
            format!("recv {c} @{} {}", keys.join(","), escape::encode(line))
        }
        Action::Recv(c, Expect::Earlier(line)) => {
            format!("recv {c} [*] {}", escape::encode(line))
        }
        Action::RecvRaw(c, b) => format!("recv-raw {c} {}", escape::encode(b)),
        Action::RecvUsers(c, names) => format!("recv-users {c} {}", names.join(", ")),
        Action::Silent(c, d) => format!("silent {c} {}", format_duration(*d)),
        Action::Closed(c) => format!("closed {c}"),
        Action::Close(c) => format!("close {c}"),
        Action::CloseWrite(c) => format!("close-write {c}"),
        Action::Reset(c) => format!("reset {c}"),
        Action::Discard(c) => format!("discard {c}"),
        Action::Sleep(d) => format!("sleep {}", format_duration(*d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::Limit;

    const EXAMPLE: &str = "\
# Two users chat.
#
# A second comment line.
checks: NICK-1 CHAT-1, FRAME-2
requires: handshake-timeout=1
framing: yes
step-timeout: 3s

connect alice
recv alice NICK
send alice alice
recv alice alice has joined the chat
recv alice Connected to the server
send alice \\shello\\r
write alice caf\\xc3
write alice \\xa9\\n
recv alice alice:  hello
within 500ms recv alice ERR nick-taken *
recv-users alice alice, Bob
recv-raw alice NICK
silent alice 200ms
sleep 1.5s
close-write alice
within 2s closed alice
";

    #[test]
    fn parses_every_kind_of_line() {
        let s = Session::parse("example", EXAMPLE).unwrap();
        assert_eq!(s.checks, ["NICK-1", "CHAT-1", "FRAME-2"]);
        assert_eq!(
            s.requires,
            [Requirement {
                limit: Limit::HandshakeTimeout,
                value: "1".into()
            }]
        );
        assert!(s.framing);
        assert_eq!(s.step_timeout, Some(Duration::from_secs(3)));
        assert_eq!(s.about, ["Two users chat.", "", "A second comment line."]);
        let actions: Vec<&Action> = s.steps.iter().map(|s| &s.action).collect();
        assert_eq!(actions[0], &Action::Connect("alice".into()));
        assert_eq!(
            actions[5],
            &Action::Send("alice".into(), b" hello\r\n".to_vec())
        );
        assert_eq!(
            actions[6],
            &Action::Write("alice".into(), b"caf\xc3".to_vec())
        );
        assert_eq!(
            actions[8],
            &Action::Recv("alice".into(), Expect::Line(b"alice:  hello".to_vec()))
        );
        assert_eq!(
            actions[9],
            &Action::Recv("alice".into(), Expect::Error(ErrorCode::NickTaken))
        );
        assert_eq!(s.steps[9].within, Some(Duration::from_millis(500)));
        assert_eq!(
            actions[10],
            &Action::RecvUsers("alice".into(), vec!["alice".into(), "Bob".into()])
        );
        assert_eq!(
            actions[11],
            &Action::RecvRaw("alice".into(), b"NICK".to_vec())
        );
        assert_eq!(actions[13], &Action::Sleep(Duration::from_millis(1500)));
        assert_eq!(s.steps[0].line, 9);
    }

    #[test]
    fn to_text_round_trips() {
        let s = Session::parse("example", EXAMPLE).unwrap();
        let again = Session::parse("example", &s.to_text()).unwrap();
        assert_eq!(
            again.steps.iter().map(|s| &s.action).collect::<Vec<_>>(),
            s.steps.iter().map(|s| &s.action).collect::<Vec<_>>()
        );
        assert_eq!(again.checks, s.checks);
        assert_eq!(again.requires, s.requires);
        assert_eq!(again.about, s.about);
    }

    #[test]
    fn rejects_mistakes_with_their_line() {
        let cases = [
            (
                "checks: NICK-1\nconnect a\nsend b hi\n",
                3,
                "before `connect b`",
            ),
            (
                "checks: NICK-1\nconnect a\nrecv a alice says hi\n",
                3,
                "not a valid server line",
            ),
            (
                "checks: NICK-1\nconnect a\nrecv a ERR nope *\n",
                3,
                "not an error code",
            ),
            (
                "checks: NICK-1\nconnect a\nfrobnicate a\n",
                3,
                "unknown step",
            ),
            ("checks: nick-1\n", 1, "not a spec ID"),
            (
                "checks: NICK-1\nconnect a\nclose a\nsend a x\n",
                4,
                "after it was closed",
            ),
            (
                "checks: NICK-1\nconnect a\nconnect a\n",
                3,
                "connects twice",
            ),
            (
                "checks: NICK-1\nconnect a\nsilent a forever\n",
                3,
                "not a duration",
            ),
            (
                "checks: NICK-1\nconnect a\nsend a \\q\n",
                3,
                "unknown escape",
            ),
            (
                "checks: NICK-1\nconnect a\nwithin 1s send a x\n",
                3,
                "`within` applies only",
            ),
            (
                "checks: NICK-1\nrequires: speed=3\nconnect a\n",
                2,
                "unknown limit",
            ),
            (
                "checks: NICK-1\nrequires: sendq=lots\nconnect a\n",
                2,
                "not a valid value",
            ),
            (
                "checks: NICK-1\nconnect a\nchecks: CHAT-1\n",
                3,
                "after the first step",
            ),
            ("connect a\n", 0, "no `checks:`"),
            ("checks: NICK-1\nconnect a\nsleep 2m\n", 3, "not a duration"),
            ("checks: NICK-1\nconnect a\nsleep 61s\n", 3, "longer than"),
            (
                "checks: NICK-1\nconnect a\nsend a hi \n",
                3,
                "ends with a blank",
            ),
        ];
        for (text, line, msg) in cases {
            let e = Session::parse("t", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("-1s").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }
}
