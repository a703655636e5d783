//! Client lines after the handshake (spec §4): chat text and `/commands`, parsed into
//! [`ClientMessage`] and encoded back.
//!
//! In the handshake every client line is a nickname; see [`crate::Nickname::new`].

use std::fmt;

use nom::bytes::complete::take_till1;
use nom::character::complete::{space0, space1};
use nom::combinator::{all_consuming, opt, rest};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};
use thiserror::Error;

use crate::caps::CapName;
use crate::command::help_text;
pub use crate::command::{Args, Command};
use crate::error::ErrorCode;
use crate::moderation::{ModCommand, Password, Reason, valid_minutes};
use crate::nickname::{NickError, Nickname};
use crate::ping::Token;
use crate::server::ServerMessage;
use crate::tags::EventId;
use crate::text::{Text, TextError, is_blank};

/// A parsed client line in the chatting state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Chat text for everyone (CHAT-1). A text starting with `/` is sent as `//...`.
    Text(Text),
    /// `/who` (CMD-WHO-1).
    Who,
    /// `/msg <to> <text>` (CMD-MSG-1). The blanks after the nickname are separators, so a
    /// text sent this way never starts with a space or TAB.
    Msg {
        /// The recipient as typed; the server looks it up case-insensitively.
        to: Nickname,
        /// The private text.
        text: Text,
    },
    /// `/nick <new>` (CMD-NICK-1).
    Nick(Nickname),
    /// `/quit` (CMD-QUIT-1).
    Quit,
    /// `/caps` (no names: list what the server offers, CAPS-2) or `/caps <name>...`
    /// (enable these, CAPS-3).
    Caps(Vec<CapName>),
    /// `/history` (the server's default count) or `/history <count>` (HIST-4).
    History(Option<u32>),
    /// `/resume <id>`, a pre-join command: the id of the last event the client saw
    /// live (RESUME-1).
    Resume(EventId),
    /// `/op <password>`: become an operator (MOD-2). `Debug` hides the password.
    Op(Password),
    /// An operator command: `/kick`, `/mute`, `/unmute`, `/ban`, `/unban` (MOD-3).
    Moderate(ModCommand),
    /// `/ping <token>`: asks for `PONG <token>` (PING-6).
    Ping(Token),
    /// `/pong <token>`: answers the server's `PING <token>` (PING-3).
    Pong(Token),
}

/// Why a client line is not a [`ClientMessage`]. Every variant but `Blank` is answered
/// with an `ERR` line: see [`ClientError::reply`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// Only spaces and TABs, or empty: ignored without an answer (FRAME-6).
    #[error("blank line")]
    Blank,
    /// Text the framer would have refused (only when parsing lines that did not come
    /// through a [`crate::Framer`]).
    #[error("invalid text: {0}")]
    InvalidText(TextError),
    /// `/` followed by a word that is no command, or by nothing (CMD-2).
    #[error("unknown command")]
    UnknownCommand,
    /// A command with missing or extra arguments (CMD-3).
    #[error("bad arguments for {}", .0.usage())]
    BadArguments(Command),
    /// `/nick` with a name that breaks NICK-2 or NICK-4.
    #[error("invalid nickname: {0}")]
    NickInvalid(NickError),
    /// `/msg` to a word that cannot be anyone's nickname (CMD-MSG-3).
    #[error("no such nickname")]
    InvalidTarget,
    /// `/caps` with a word that cannot be a capability name (CAPS-3).
    #[error("unknown capability")]
    UnknownCapability,
}

impl ClientError {
    /// The `ERR` line the server answers with, or `None` for a blank line.
    pub fn reply(&self) -> Option<ServerMessage> {
        let (code, text): (ErrorCode, String) = match self {
            ClientError::Blank => return None,
            ClientError::InvalidText(_) => (
                ErrorCode::InvalidText,
                crate::server::texts::INVALID_TEXT.into(),
            ),
            ClientError::UnknownCommand => (ErrorCode::UnknownCommand, help_text()),
            ClientError::BadArguments(cmd) => {
                (ErrorCode::BadArguments, format!("Usage: {}", cmd.usage()))
            }
            ClientError::NickInvalid(e) => return Some(ServerMessage::nick_invalid(*e)),
            ClientError::InvalidTarget => {
                (ErrorCode::NoSuchNick, "No user has that nickname".into())
            }
            ClientError::UnknownCapability => return Some(ServerMessage::unknown_capability()),
        };
        Some(ServerMessage::error(code, &text))
    }
}

fn is_sep(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `<word><args>`: the command word runs to the first space or TAB (CMD-1).
fn word_and_args(i: &str) -> IResult<&str, (&str, &str)> {
    (nom::bytes::complete::take_till(is_sep), rest).parse(i)
}

/// Exactly one argument, blanks around it allowed.
fn one_arg(i: &str) -> IResult<&str, &str> {
    all_consuming(delimited(space0, take_till1(is_sep), space0)).parse(i)
}

/// `<nick><blanks><text>`: a target and the rest of the line after the blanks.
fn target_and_text(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    preceded(space0, (take_till1(is_sep), opt(preceded(space1, rest)))).parse(i)
}

impl ClientMessage {
    /// Parses one client line (without its terminator) in the chatting state.
    pub fn parse(line: &str) -> Result<ClientMessage, ClientError> {
        let Some(after_slash) = line.strip_prefix('/') else {
            return text(line).map(ClientMessage::Text);
        };
        if after_slash.starts_with('/') {
            // `//x` is the text `/x` (CMD-1).
            return text(after_slash).map(ClientMessage::Text);
        }
        let Ok((_, (word, args))) = word_and_args(after_slash) else {
            return Err(ClientError::UnknownCommand);
        };
        let cmd = Command::from_word(word).ok_or(ClientError::UnknownCommand)?;
        ClientMessage::command(cmd, args)
    }

    /// Parses a client line in the handshake: `Some` for a pre-join command (an
    /// LF-terminated `/caps ...`, CAPS-4, or `/resume <id>`, RESUME-1), `None` for anything else, which is a nickname
    /// attempt (NICK-5).
    pub fn parse_pre_join(line: &str) -> Option<Result<ClientMessage, ClientError>> {
        let after_slash = line.strip_prefix('/')?;
        let (_, (word, args)) = word_and_args(after_slash).ok()?;
        let cmd = Command::from_word(word).filter(|c| c.pre_join())?;
        Some(ClientMessage::command(cmd, args))
    }

    /// A command's arguments: their count and shape first (CMD-3), then what they name
    /// (CMD-NICK-2, CMD-MSG-3, CAPS-3).
    fn command(cmd: Command, args: &str) -> Result<ClientMessage, ClientError> {
        let bad = ClientError::BadArguments(cmd);
        match (cmd.args(), cmd) {
            (Args::None, _) if !is_blank(args) => Err(bad),
            (Args::None, Command::Who) => Ok(ClientMessage::Who),
            (Args::None, _) => Ok(ClientMessage::Quit),
            (Args::Nickname, _) => {
                let (_, name) = one_arg(args).map_err(|_| bad)?;
                Nickname::new(name)
                    .map(ClientMessage::Nick)
                    .map_err(ClientError::NickInvalid)
            }
            (Args::TargetAndText, _) => {
                let parsed = target_and_text(args);
                let Ok((_, (target, Some(body)))) = parsed else {
                    return Err(bad);
                };
                if is_blank(body) {
                    return Err(bad);
                }
                let to = Nickname::new(target).map_err(|_| ClientError::InvalidTarget)?;
                let text = Text::new(body).map_err(ClientError::InvalidText)?;
                Ok(ClientMessage::Msg { to, text })
            }
            (Args::CapNames, _) => args
                .split(is_sep)
                .filter(|w| !w.is_empty())
                .map(|w| CapName::new(w).map_err(|_| ClientError::UnknownCapability))
                .collect::<Result<Vec<_>, _>>()
                .map(ClientMessage::Caps),
            (Args::OptionalCount, _) if is_blank(args) => Ok(ClientMessage::History(None)),
            (Args::OptionalCount, _) => {
                let (_, word) = one_arg(args).map_err(|_| bad.clone())?;
                let count = parse_number(word).ok_or(bad)?;
                Ok(ClientMessage::History(Some(count)))
            }
            (Args::EventId, _) => {
                let (_, word) = one_arg(args).map_err(|_| bad.clone())?;
                EventId::new(word)
                    .map(ClientMessage::Resume)
                    .map_err(|_| bad)
            }
            (Args::Password, _) => {
                let (_, word) = one_arg(args).map_err(|_| bad.clone())?;
                Password::new(word).map(ClientMessage::Op).map_err(|_| bad)
            }
            (Args::TargetAndReason, _) => {
                let Ok((_, (target, body))) = target_and_text(args) else {
                    return Err(bad);
                };
                let reason = match body.filter(|b| !is_blank(b)) {
                    None => None,
                    Some(b) => Some(Reason::new(b).ok_or(bad)?),
                };
                let target = Nickname::new(target).map_err(|_| ClientError::InvalidTarget)?;
                Ok(ClientMessage::Moderate(if cmd == Command::Ban {
                    ModCommand::Ban { target, reason }
                } else {
                    ModCommand::Kick { target, reason }
                }))
            }
            (Args::TargetAndMinutes, _) => {
                let words: Vec<&str> = args.split(is_sep).filter(|w| !w.is_empty()).collect();
                let (target, minutes) = match words.as_slice() {
                    [target] => (*target, None),
                    [target, n] => {
                        let n = parse_number(n).filter(|&n| valid_minutes(n)).ok_or(bad)?;
                        (*target, Some(n))
                    }
                    _ => return Err(bad),
                };
                let target = Nickname::new(target).map_err(|_| ClientError::InvalidTarget)?;
                Ok(ClientMessage::Moderate(ModCommand::Mute {
                    target,
                    minutes,
                }))
            }
            (Args::Token, _) => {
                let (_, word) = one_arg(args).map_err(|_| bad.clone())?;
                let token = Token::new(word).map_err(|_| bad)?;
                Ok(if cmd == Command::Ping {
                    ClientMessage::Ping(token)
                } else {
                    ClientMessage::Pong(token)
                })
            }
            (Args::Target, _) => {
                let (_, word) = one_arg(args).map_err(|_| bad)?;
                let target = Nickname::new(word).map_err(|_| ClientError::InvalidTarget)?;
                Ok(ClientMessage::Moderate(if cmd == Command::Unban {
                    ModCommand::Unban(target)
                } else {
                    ModCommand::Unmute(target)
                }))
            }
        }
    }

    /// Appends the line and its LF to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ClientMessage::Text(t) => {
                if t.as_str().starts_with('/') {
                    out.push(b'/');
                }
                out.extend_from_slice(t.as_str().as_bytes());
            }
            ClientMessage::Who => put_word(out, Command::Who),
            ClientMessage::Quit => put_word(out, Command::Quit),
            ClientMessage::Nick(n) => {
                put_word(out, Command::Nick);
                out.push(b' ');
                out.extend_from_slice(n.as_str().as_bytes());
            }
            ClientMessage::Msg { to, text } => {
                put_word(out, Command::Msg);
                out.push(b' ');
                out.extend_from_slice(to.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(text.as_str().as_bytes());
            }
            ClientMessage::Caps(names) => {
                put_word(out, Command::Caps);
                for n in names {
                    out.push(b' ');
                    out.extend_from_slice(n.as_str().as_bytes());
                }
            }
            ClientMessage::History(count) => {
                put_word(out, Command::History);
                if let Some(n) = count {
                    out.push(b' ');
                    out.extend_from_slice(n.to_string().as_bytes());
                }
            }
            ClientMessage::Resume(id) => {
                put_word(out, Command::Resume);
                out.push(b' ');
                out.extend_from_slice(id.as_str().as_bytes());
            }
            ClientMessage::Op(password) => {
                put_word(out, Command::Op);
                out.push(b' ');
                out.extend_from_slice(password.expose().as_bytes());
            }
            ClientMessage::Moderate(m) => encode_moderation(m, out),
            ClientMessage::Ping(token) | ClientMessage::Pong(token) => {
                put_word(out, self.token_command());
                out.push(b' ');
                out.extend_from_slice(token.as_str().as_bytes());
            }
        }
        out.push(b'\n');
    }

    /// Bytes the line takes before its LF. A client must keep it within
    /// [`crate::limits::MAX_LINE_BYTES`] (e.g. a 1024-byte text starting with `/` does
    /// not fit once escaped).
    pub fn encoded_len(&self) -> usize {
        match self {
            ClientMessage::Text(t) => t.as_str().len() + usize::from(t.as_str().starts_with('/')),
            ClientMessage::Who => 1 + Command::Who.word().len(),
            ClientMessage::Quit => 1 + Command::Quit.word().len(),
            ClientMessage::Nick(n) => 2 + Command::Nick.word().len() + n.as_str().len(),
            ClientMessage::Msg { to, text } => {
                3 + Command::Msg.word().len() + to.as_str().len() + text.as_str().len()
            }
            ClientMessage::Caps(names) => {
                1 + Command::Caps.word().len()
                    + names.iter().map(|n| 1 + n.as_str().len()).sum::<usize>()
            }
            ClientMessage::History(count) => {
                1 + Command::History.word().len() + count.map_or(0, |n| 1 + n.to_string().len())
            }
            ClientMessage::Resume(id) => 2 + Command::Resume.word().len() + id.as_str().len(),
            ClientMessage::Op(p) => 2 + Command::Op.word().len() + p.expose().len(),
            ClientMessage::Moderate(m) => {
                let mut out = Vec::new();
                encode_moderation(m, &mut out);
                out.len()
            }
            ClientMessage::Ping(t) | ClientMessage::Pong(t) => {
                2 + self.token_command().word().len() + t.as_str().len()
            }
        }
    }

    /// `/ping` or `/pong`, for a message that carries a token.
    fn token_command(&self) -> Command {
        if matches!(self, ClientMessage::Ping(_)) {
            Command::Ping
        } else {
            Command::Pong
        }
    }
}

/// A decimal number from 1, without a leading zero or a sign (HIST-4, MOD-3).
fn parse_number(word: &str) -> Option<u32> {
    (!word.starts_with('0') && word.bytes().all(|b| b.is_ascii_digit()))
        .then(|| word.parse::<u32>().ok())
        .flatten()
}

/// An operator command without its LF (MOD-3).
fn encode_moderation(m: &ModCommand, out: &mut Vec<u8>) {
    let (cmd, extra) = match m {
        ModCommand::Kick { reason, .. } => (Command::Kick, reason.as_ref().map(|r| r.to_string())),
        ModCommand::Ban { reason, .. } => (Command::Ban, reason.as_ref().map(|r| r.to_string())),
        ModCommand::Mute { minutes, .. } => (Command::Mute, minutes.map(|n| n.to_string())),
        ModCommand::Unmute(_) => (Command::Unmute, None),
        ModCommand::Unban(_) => (Command::Unban, None),
    };
    put_word(out, cmd);
    out.push(b' ');
    out.extend_from_slice(m.target().as_str().as_bytes());
    if let Some(extra) = extra {
        out.push(b' ');
        out.extend_from_slice(extra.as_bytes());
    }
}

/// `/word`.
fn put_word(out: &mut Vec<u8>, cmd: Command) {
    out.push(b'/');
    out.extend_from_slice(cmd.word().as_bytes());
}

fn text(s: &str) -> Result<Text, ClientError> {
    Text::new(s).map_err(|e| match e {
        TextError::Blank => ClientError::Blank,
        other => ClientError::InvalidText(other),
    })
}

impl fmt::Display for ClientMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.pop();
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nickname {
        Nickname::new(s).unwrap()
    }
    fn txt(s: &str) -> Text {
        Text::new(s).unwrap()
    }

    #[test]
    fn chat_1_plain_text_exactly_as_sent() {
        assert_eq!(
            ClientMessage::parse("  hi there  "),
            Ok(ClientMessage::Text(txt("  hi there  ")))
        );
        assert_eq!(
            ClientMessage::parse(" /who"),
            Ok(ClientMessage::Text(txt(" /who")))
        );
    }

    #[test]
    fn frame_6_blank_lines_ignored() {
        assert_eq!(ClientMessage::parse(""), Err(ClientError::Blank));
        assert_eq!(ClientMessage::parse(" \t "), Err(ClientError::Blank));
        assert_eq!(ClientError::Blank.reply(), None);
    }

    #[test]
    fn cmd_1_double_slash_escape_and_case() {
        assert_eq!(
            ClientMessage::parse("//who"),
            Ok(ClientMessage::Text(txt("/who")))
        );
        assert_eq!(
            ClientMessage::parse("//"),
            Ok(ClientMessage::Text(txt("/")))
        );
        assert_eq!(ClientMessage::parse("/WHO"), Ok(ClientMessage::Who));
        assert_eq!(ClientMessage::parse("/Quit"), Ok(ClientMessage::Quit));
        assert_eq!(ClientMessage::parse("/who  \t"), Ok(ClientMessage::Who));
    }

    #[test]
    fn cmd_2_unknown_commands() {
        for l in ["/", "/ who", "/dance", "/msgbob hi", "/\twho"] {
            assert_eq!(
                ClientMessage::parse(l),
                Err(ClientError::UnknownCommand),
                "{l:?}"
            );
        }
        let reply = ClientError::UnknownCommand.reply().unwrap().to_string();
        assert!(reply.starts_with("ERR unknown-command "));
        for c in Command::ALL.iter().filter(|c| c.args() != Args::Token) {
            assert!(reply.contains(&format!("/{}", c.word())), "{reply}");
        }
    }

    #[test]
    fn cmd_3_bad_arguments() {
        for (l, c) in [
            ("/who me", Command::Who),
            ("/quit bye", Command::Quit),
            ("/nick", Command::Nick),
            ("/nick   ", Command::Nick),
            ("/nick a b", Command::Nick),
            ("/msg", Command::Msg),
            ("/msg bob", Command::Msg),
            ("/msg bob   ", Command::Msg),
        ] {
            assert_eq!(
                ClientMessage::parse(l),
                Err(ClientError::BadArguments(c)),
                "{l:?}"
            );
        }
    }

    #[test]
    fn cmd_msg_2_split_on_blank_runs() {
        assert_eq!(
            ClientMessage::parse("/msg  bob \t  hello  there "),
            Ok(ClientMessage::Msg {
                to: nick("bob"),
                text: txt("hello  there ")
            })
        );
        assert_eq!(
            ClientMessage::parse("/msg\tBOB\thi"),
            Ok(ClientMessage::Msg {
                to: nick("BOB"),
                text: txt("hi")
            })
        );
        assert_eq!(
            ClientMessage::parse("/msg b@d hi"),
            Err(ClientError::InvalidTarget)
        );
    }

    #[test]
    fn cmd_nick_1_argument() {
        assert_eq!(
            ClientMessage::parse("/nick  Zed "),
            Ok(ClientMessage::Nick(nick("Zed")))
        );
        assert_eq!(
            ClientMessage::parse("/nick ERR"),
            Err(ClientError::NickInvalid(NickError::Reserved))
        );
    }

    #[test]
    fn cmd_3_count_before_meaning() {
        // Count and shape first (CMD-3)...
        for (l, c) in [
            ("/nick b@d x", Command::Nick),
            ("/msg b@d", Command::Msg),
            ("/who b@d", Command::Who),
        ] {
            assert_eq!(
                ClientMessage::parse(l),
                Err(ClientError::BadArguments(c)),
                "{l}"
            );
        }
        // ...then what the words name.
        assert_eq!(
            ClientMessage::parse("/nick b@d"),
            Err(ClientError::NickInvalid(NickError::BadChar))
        );
        assert_eq!(
            ClientMessage::parse("/msg b@d hi"),
            Err(ClientError::InvalidTarget)
        );
        assert_eq!(
            ClientMessage::parse("/caps tags TAGS"),
            Err(ClientError::UnknownCapability)
        );
    }

    #[test]
    fn nick_3_kelvin_sign_never_folds_to_k() {
        // U+212A KELVIN SIGN lowercases to `k` in Unicode; here it is just invalid.
        assert_eq!(
            ClientMessage::parse("/nick \u{212a}elvin"),
            Err(ClientError::NickInvalid(NickError::BadChar))
        );
        assert_eq!(
            ClientMessage::parse("/msg \u{212a}ELVIN hi"),
            Err(ClientError::InvalidTarget)
        );
        assert_eq!(
            ClientMessage::parse("/msg \u{17f}am hi"),
            Err(ClientError::InvalidTarget)
        );
    }

    #[test]
    fn caps_4_pre_join_commands() {
        assert_eq!(
            ClientMessage::parse_pre_join("/caps"),
            Some(Ok(ClientMessage::Caps(vec![])))
        );
        assert_eq!(
            ClientMessage::parse_pre_join("/CAPS tags"),
            Some(Ok(ClientMessage::Caps(vec![CapName::tags()])))
        );
        assert_eq!(
            ClientMessage::parse_pre_join("/caps Tags"),
            Some(Err(ClientError::UnknownCapability))
        );
        // Anything else is a nickname attempt, as in 1.0 (NICK-5).
        for l in ["alice", "/quit", "/who", "//caps", " /caps", "/capsx", ""] {
            assert_eq!(ClientMessage::parse_pre_join(l), None, "{l:?}");
        }
    }

    #[test]
    fn mod_3_operator_command_arguments() {
        let kick = |t: &str, r: Option<&str>| {
            Ok(ClientMessage::Moderate(ModCommand::Kick {
                target: nick(t),
                reason: r.map(|r| Reason::new(r).unwrap()),
            }))
        };
        assert_eq!(ClientMessage::parse("/kick bob"), kick("bob", None));
        assert_eq!(ClientMessage::parse("/KICK  bob   "), kick("bob", None));
        assert_eq!(
            ClientMessage::parse("/kick bob  spamming (again) "),
            kick("bob", Some("spamming (again) "))
        );
        let long = format!("/kick bob {}", "x".repeat(201));
        assert_eq!(
            ClientMessage::parse(&long),
            Err(ClientError::BadArguments(Command::Kick))
        );
        assert_eq!(
            ClientMessage::parse("/kick"),
            Err(ClientError::BadArguments(Command::Kick))
        );
        assert_eq!(
            ClientMessage::parse("/ban b@d why"),
            Err(ClientError::InvalidTarget)
        );
        let mute = |n: Option<u32>| {
            Ok(ClientMessage::Moderate(ModCommand::Mute {
                target: nick("bob"),
                minutes: n,
            }))
        };
        assert_eq!(ClientMessage::parse("/mute bob"), mute(None));
        assert_eq!(ClientMessage::parse("/mute bob 1440 "), mute(Some(1440)));
        for bad in [
            "/mute bob 0",
            "/mute bob 1441",
            "/mute bob 05",
            "/mute bob 5 x",
            "/mute",
        ] {
            assert_eq!(
                ClientMessage::parse(bad),
                Err(ClientError::BadArguments(Command::Mute)),
                "{bad}"
            );
        }
        assert_eq!(
            ClientMessage::parse("/unban Bob"),
            Ok(ClientMessage::Moderate(ModCommand::Unban(nick("Bob"))))
        );
        assert_eq!(
            ClientMessage::parse("/unmute bob x"),
            Err(ClientError::BadArguments(Command::Unmute))
        );
        assert_eq!(
            ClientMessage::parse("/op  s3cret "),
            Ok(ClientMessage::Op(Password::new("s3cret").unwrap()))
        );
        assert_eq!(
            ClientMessage::parse("/op two words"),
            Err(ClientError::BadArguments(Command::Op))
        );
    }

    /// PING-3, PING-6: one token, visible ASCII, at most 32 bytes; anything else is
    /// `bad-arguments` with the usage (CMD-3). Not a pre-join command: in the handshake
    /// `/ping x` is a nickname attempt, as in 1.0.
    #[test]
    fn ping_3_commands() {
        let tok = |s: &str| Token::new(s).unwrap();
        assert_eq!(
            ClientMessage::parse("/pong 17"),
            Ok(ClientMessage::Pong(tok("17")))
        );
        assert_eq!(
            ClientMessage::parse("/PING  gui:1 \t"),
            Ok(ClientMessage::Ping(tok("gui:1")))
        );
        for (bad, c) in [
            ("/pong", Command::Pong),
            ("/pong a b", Command::Pong),
            ("/ping", Command::Ping),
            ("/ping é", Command::Ping),
        ] {
            assert_eq!(ClientMessage::parse(bad), Err(ClientError::BadArguments(c)));
        }
        let long = format!("/pong {}", "x".repeat(33));
        assert_eq!(
            ClientMessage::parse(&long),
            Err(ClientError::BadArguments(Command::Pong))
        );
        assert_eq!(ClientMessage::parse_pre_join("/pong 1"), None);
        assert_eq!(
            ClientMessage::parse("PONG 1"),
            Ok(ClientMessage::Text(txt("PONG 1"))),
            "a line without / is chat text (CHAT-1)"
        );
        let reply = ClientError::BadArguments(Command::Pong)
            .reply()
            .unwrap()
            .to_string();
        assert_eq!(reply, "ERR bad-arguments Usage: /pong <token>");
    }

    #[test]
    fn encode_examples() {
        let cases = [
            (ClientMessage::Text(txt("/x")), "//x\n"),
            (ClientMessage::Who, "/who\n"),
            (
                ClientMessage::Msg {
                    to: nick("b"),
                    text: txt("hi"),
                },
                "/msg b hi\n",
            ),
            (ClientMessage::Nick(nick("z")), "/nick z\n"),
            (ClientMessage::Quit, "/quit\n"),
            (ClientMessage::Caps(vec![]), "/caps\n"),
            (
                ClientMessage::Caps(vec![CapName::tags(), CapName::new("x").unwrap()]),
                "/caps tags x\n",
            ),
            (ClientMessage::Pong(Token::new("7").unwrap()), "/pong 7\n"),
            (ClientMessage::Ping(Token::new("a").unwrap()), "/ping a\n"),
        ];
        for (m, wire) in cases {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(out, wire.as_bytes());
            assert_eq!(m.encoded_len() + 1, wire.len());
        }
    }
}
