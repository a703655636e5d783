//! Server lines (spec §5): [`ServerMessage`], its nom parser and its encoder.
//!
//! Every server line parses to exactly one message (SRV-2). Why that holds: a nickname
//! is one run of `A-Z a-z 0-9 _ -`, so in a line that starts with a nickname the byte
//! after it is a space or `:`, and the literal text that follows (`: `, ` -> `,
//! ` has joined the chat`, ...) picks exactly one form. The fixed lines (`NICK`,
//! `Connected to the server`, `Users online: ...`, `ERR ...`) either contain a space
//! where a chat line has its `:` or start with a reserved word (`ERR`, `NICK`) that no
//! nickname can be (NICK-4).

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, map_res, opt, rest, value};
use nom::multi::{many0, many1, separated_list1};
use nom::sequence::preceded;
use nom::{IResult, Parser};
use thiserror::Error;

use crate::caps::{CapName, Capability, Version};
use crate::error::ErrorCode;
use crate::framer::Frame;
use crate::limits::{MAX_ERR_TEXT_BYTES, MAX_NICK_LEN, MAX_USERS_LINE_BYTES};
use crate::moderation::{Action, Reason, valid_minutes};
use crate::nickname::{NickError, Nickname, is_nick_char};
use crate::ping::Token;
use crate::tags::{ServerTime, Tags};
use crate::text::Text;
use crate::wire;

/// Standard human texts for `ERR` lines, so that every server built on this crate says
/// the same thing. Programs must look at the code only.
pub mod texts {
    /// FRAME-3.
    pub const LINE_TOO_LONG: &str = "Line longer than 1024 bytes; it was discarded";
    /// FRAME-4.
    pub const INVALID_UTF8: &str = "Line is not valid UTF-8; it was discarded";
    /// FRAME-5.
    pub const INVALID_TEXT: &str =
        "Line holds a control, bidi or line-separator character; it was discarded";
    /// NICK-6, attempts.
    pub const TOO_MANY_ATTEMPTS: &str = "Too many nickname attempts; goodbye";
    /// NICK-6, time.
    pub const HANDSHAKE_TIMEOUT: &str = "No valid nickname in time; goodbye";
    /// CONN-1.
    pub const SERVER_FULL: &str = "Server is full; try again later";
    /// CONN-6.
    pub const SERVER_SHUTDOWN: &str = "Server is shutting down";
    /// `ERR unavailable` (CLUSTER-5).
    pub const UNAVAILABLE: &str = "The chat is unavailable for now; try again";
    /// CONN-7, first excess.
    pub const FLOOD: &str =
        "You are sending too fast; the server reads your lines more slowly for now";
    /// CONN-7, sustained excess.
    pub const EXCESS_FLOOD: &str = "You kept sending too fast for too long; disconnected";
    /// CONN-4.
    pub const SENDQ_EXCEEDED: &str = "You are not reading fast enough; disconnected";
    /// RESUME-3.
    pub const HISTORY_GAP: &str =
        "Some events you missed are no longer kept; the latest follow, but there is a gap";
    /// RESUME-1, after the handshake.
    pub const RESUME_TOO_LATE: &str =
        "Usage: /resume <id>, only before your nickname (it has no effect once joined)";
    /// CAPS-3.
    pub const UNKNOWN_CAPABILITY: &str =
        "Unknown capability; /caps lists the ones this server offers";
    /// PING-5: a `/pong` whose token is not that of the last `PING` sent.
    pub const NO_SUCH_PING: &str =
        "No PING with that token is waiting for an answer; answer PING <token> with /pong <token>";
}

/// A parsed server line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// `NICK`: the server asks for a nickname (NICK-1, NICK-5).
    NickPrompt,
    /// `<nick> has joined the chat` (NICK-7).
    Joined(Nickname),
    /// `Connected to the server`: the handshake succeeded (NICK-7).
    Connected,
    /// `<from>: <text>` (CHAT-1).
    Chat {
        /// Who sent it, as the server knows them.
        from: Nickname,
        /// The text exactly as sent.
        text: Text,
    },
    /// `<from> -> <to>: <text>` (CMD-MSG-1).
    Private {
        /// Sender.
        from: Nickname,
        /// Recipient, spelled as registered.
        to: Nickname,
        /// The text exactly as sent.
        text: Text,
    },
    /// `<old> is now known as <new>` (CMD-NICK-1).
    Renamed {
        /// The previous nickname.
        old: Nickname,
        /// The new nickname.
        new: Nickname,
    },
    /// `<nick> has left the chat` (CONN-5).
    Left(Nickname),
    /// `Users online: <nick>, <nick>, ...` with a trailing `,` when another such line
    /// follows (CMD-WHO-1, CMD-WHO-2).
    Users {
        /// The nicknames on this line.
        names: Vec<Nickname>,
        /// True when this line ends with `,`: more names follow on the next line.
        more: bool,
    },
    /// `ERR <code> <text>` (ERR-1). The text is at most 256 bytes (ERR-3); the
    /// encoder cuts a longer one.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        text: Text,
    },
    /// `Protocol <version> capabilities: <cap> <cap>...`, the answer to `/caps`
    /// (CAPS-2).
    Caps {
        /// The protocol version the server speaks.
        version: Version,
        /// What it offers, possibly nothing.
        offered: Vec<Capability>,
    },
    /// `Capabilities enabled: <name> <name>...`, the answer to `/caps <name>...`: every
    /// capability now enabled on this connection (CAPS-3).
    CapsEnabled(Vec<CapName>),
    /// `Earlier events: <count>`: a block of earlier events follows, `count` lines
    /// (HIST-2).
    HistoryStart(u32),
    /// `End of earlier events`: the block is over (HIST-2).
    HistoryEnd,
    /// `[YYYY-MM-DD HH:MM:SS UTC] <event>`: an earlier public event, readable, on a
    /// connection without tags (HIST-3). The encoder writes whole seconds.
    Earlier {
        /// When the event was put in the order (the encoder drops the milliseconds).
        time: ServerTime,
        /// The event: a join, a leave, a chat line or a rename ([`ServerMessage::is_public_event`]).
        event: Box<ServerMessage>,
    },
    /// `<nick> is now an operator` (MOD-2).
    Operator(Nickname),
    /// `<target> was kicked by <by> (<reason>)` and the other moderation notices
    /// (MOD-4, MOD-5, MOD-6).
    Moderated {
        /// The user acted on.
        target: Nickname,
        /// The operator.
        by: Nickname,
        /// What was done.
        action: Action,
    },
    /// `PING <token>`: the server asks a connection that enabled `ping` to prove it is
    /// alive with `/pong <token>` (PING-3).
    Ping(Token),
    /// `PONG <token>`: the answer to the client's `/ping <token>` (PING-6).
    Pong(Token),
}

/// A server line that is none of the forms of §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not a valid server line")]
pub struct ServerParseError;

fn nick(i: &str) -> IResult<&str, Nickname> {
    map_res(take_while_m_n(1, MAX_NICK_LEN, is_nick_char), Nickname::new).parse(i)
}

fn text(i: &str) -> IResult<&str, Text> {
    map_res(rest, Text::new).parse(i)
}

/// An ERR line's text: a [`Text`] of at most [`MAX_ERR_TEXT_BYTES`] (ERR-3).
fn err_text(i: &str) -> IResult<&str, Text> {
    map_res(rest, |t: &str| {
        if t.len() > MAX_ERR_TEXT_BYTES {
            Err(crate::text::TextError::TooLong)
        } else {
            Text::new(t)
        }
    })
    .parse(i)
}

fn error_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        preceded(
            tag(wire::ERR),
            (
                map_res(take_till1(|c| c == ' '), str::parse::<ErrorCode>),
                preceded(char(' '), err_text),
            ),
        ),
        |(code, text)| ServerMessage::Error { code, text },
    )
    .parse(i)
}

fn cap_word(i: &str) -> IResult<&str, &str> {
    preceded(char(' '), take_till1(|c| c == ' ')).parse(i)
}

fn caps_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        (
            preceded(
                tag(wire::CAPS_LIST),
                map_res(take_till1(|c| c == ' '), str::parse::<Version>),
            ),
            preceded(
                tag(wire::CAPS_LIST_TAIL),
                many0(map_res(cap_word, Capability::parse)),
            ),
        ),
        |(version, offered)| ServerMessage::Caps { version, offered },
    )
    .parse(i)
}

fn caps_enabled_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        preceded(
            tag(wire::CAPS_ENABLED),
            many1(map_res(cap_word, CapName::new)),
        ),
        ServerMessage::CapsEnabled,
    )
    .parse(i)
}

fn users_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        (
            preceded(
                tag(wire::USERS),
                separated_list1(tag(wire::USERS_SEP), nick),
            ),
            opt(tag(wire::USERS_MORE)),
        ),
        |(names, more)| ServerMessage::Users {
            names,
            more: more.is_some(),
        },
    )
    .parse(i)
}

fn nick_led(i: &str) -> IResult<&str, ServerMessage> {
    let (i, first) = nick(i)?;
    alt((
        map(preceded(tag(wire::SAYS), text), |text| {
            ServerMessage::Chat {
                from: first.clone(),
                text,
            }
        }),
        map(
            (
                preceded(tag(wire::TO), nick),
                preceded(tag(wire::SAYS), text),
            ),
            |(to, text)| ServerMessage::Private {
                from: first.clone(),
                to,
                text,
            },
        ),
        map(tag(wire::JOINED), |_| ServerMessage::Joined(first.clone())),
        map(tag(wire::LEFT), |_| ServerMessage::Left(first.clone())),
        map(preceded(tag(wire::RENAMED), nick), |new| {
            ServerMessage::Renamed {
                old: first.clone(),
                new,
            }
        }),
        map(tag(wire::OPPED), |_| ServerMessage::Operator(first.clone())),
        map(moderation_tail, |(by, action)| ServerMessage::Moderated {
            target: first.clone(),
            by,
            action,
        }),
    ))
    .parse(i)
}

/// What follows the target of a moderation notice (MOD-7): the literal, the operator,
/// and the reason or the duration.
fn moderation_tail(i: &str) -> IResult<&str, (Nickname, Action)> {
    alt((
        map(
            (preceded(tag(wire::KICKED), nick), opt(reason)),
            |(by, r)| (by, Action::Kicked(r)),
        ),
        map(
            (preceded(tag(wire::BANNED), nick), opt(reason)),
            |(by, r)| (by, Action::Banned(r)),
        ),
        map(
            (
                preceded(tag(wire::MUTED), nick),
                preceded(tag(wire::FOR), minutes),
            ),
            |(by, n)| (by, Action::Muted(n)),
        ),
        map(preceded(tag(wire::UNMUTED), nick), |by| {
            (by, Action::Unmuted)
        }),
        map(preceded(tag(wire::UNBANNED), nick), |by| {
            (by, Action::Unbanned)
        }),
    ))
    .parse(i)
}

/// ` (<reason>)` to the end of the line: the reason runs to the line's final `)`.
fn reason(i: &str) -> IResult<&str, Reason> {
    map_res(preceded(tag(wire::REASON_OPEN), rest), |r: &str| {
        r.strip_suffix(wire::REASON_CLOSE)
            .and_then(Reason::new)
            .ok_or(ServerParseError)
    })
    .parse(i)
}

/// `1 minute` or `<n> minutes` with `n` from 2 (MOD-5), as the encoder writes them.
fn minutes(i: &str) -> IResult<&str, u32> {
    alt((
        value(1, tag(wire::ONE_MINUTE)),
        map_res(
            (take_till1(|c| c == ' '), tag(wire::MINUTES)),
            |(n, _): (&str, &str)| {
                parse_count(n)
                    .ok()
                    .filter(|&n| n >= 2 && valid_minutes(n))
                    .ok_or(ServerParseError)
            },
        ),
    ))
    .parse(i)
}

fn history_start(i: &str) -> IResult<&str, ServerMessage> {
    map(
        preceded(
            tag(wire::HISTORY_START),
            map_res(take_till1(|c| c == ' '), parse_count),
        ),
        ServerMessage::HistoryStart,
    )
    .parse(i)
}

/// A count as the encoder writes it: decimal, no sign, no leading zero (`0` itself
/// allowed).
fn parse_count(s: &str) -> Result<u32, ServerParseError> {
    let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse().ok())
        .flatten()
        .ok_or(ServerParseError)
}

fn earlier(i: &str) -> IResult<&str, ServerMessage> {
    map_res(
        (
            preceded(
                tag(wire::EARLIER_OPEN),
                map_res(
                    take_while_m_n(ServerTime::READABLE_LEN, ServerTime::READABLE_LEN, |c| {
                        c != ']'
                    }),
                    ServerTime::parse_readable,
                ),
            ),
            preceded(tag(wire::EARLIER_CLOSE), nick_led),
        ),
        |(time, event)| {
            if event.is_public_event() {
                Ok(ServerMessage::Earlier {
                    time,
                    event: Box::new(event),
                })
            } else {
                Err(ServerParseError)
            }
        },
    )
    .parse(i)
}

/// `PING <token>` or `PONG <token>` (PING-3, PING-6): the token runs to the end of the
/// line, so `PING a b` is no line at all.
fn liveness_line(i: &str) -> IResult<&str, ServerMessage> {
    let token = || map_res(rest, Token::new);
    alt((
        map(preceded(tag(wire::PING_LINE), token()), ServerMessage::Ping),
        map(preceded(tag(wire::PONG_LINE), token()), ServerMessage::Pong),
    ))
    .parse(i)
}

fn server_line(i: &str) -> IResult<&str, ServerMessage> {
    alt((
        all_consuming(liveness_line),
        all_consuming(history_start),
        all_consuming(value(ServerMessage::HistoryEnd, tag(wire::HISTORY_END))),
        all_consuming(earlier),
        all_consuming(value(ServerMessage::NickPrompt, tag(wire::NICK_PROMPT))),
        all_consuming(value(ServerMessage::Connected, tag(wire::CONNECTED))),
        all_consuming(error_line),
        all_consuming(users_line),
        all_consuming(caps_line),
        all_consuming(caps_enabled_line),
        all_consuming(nick_led),
    ))
    .parse(i)
}

impl ServerMessage {
    /// True for a line of the chat's shared order that history keeps (HIST-1): a join,
    /// a leave, a chat line, a rename, a moderation notice (MOD-7). Private lines,
    /// replies and the rest are not.
    pub fn is_public_event(&self) -> bool {
        matches!(
            self,
            ServerMessage::Joined(_)
                | ServerMessage::Left(_)
                | ServerMessage::Chat { .. }
                | ServerMessage::Renamed { .. }
                | ServerMessage::Operator(_)
                | ServerMessage::Moderated { .. }
        )
    }

    /// Parses one server line, without its LF.
    pub fn parse(line: &str) -> Result<ServerMessage, ServerParseError> {
        server_line(line)
            .map(|(_, m)| m)
            .map_err(|_| ServerParseError)
    }

    /// Parses one server line that may carry tags (TAG-1): its tags (empty for an
    /// untagged line) and the line after them.
    pub fn parse_tagged(line: &str) -> Result<(Tags, ServerMessage), ServerParseError> {
        let (tags, body) = Tags::split(line).map_err(|_| ServerParseError)?;
        Ok((tags, ServerMessage::parse(body)?))
    }

    /// An `ERR` line. A `text` longer than 256 bytes is cut at a character boundary
    /// (ERR-3); one that is not a valid [`Text`] is replaced by the code itself, so this
    /// never fails.
    pub fn error(code: ErrorCode, text: &str) -> ServerMessage {
        // Every code is itself a valid text.
        let text = Text::new(cut(text, MAX_ERR_TEXT_BYTES))
            .unwrap_or_else(|_| Text::new_unchecked(code.as_str()));
        ServerMessage::Error { code, text }
    }

    /// `ERR unknown-capability` for `/caps` naming something the server does not offer
    /// (CAPS-3).
    pub fn unknown_capability() -> ServerMessage {
        ServerMessage::error(ErrorCode::UnknownCapability, texts::UNKNOWN_CAPABILITY)
    }

    /// The answer to `/caps` (CAPS-2).
    pub fn caps(version: Version, offered: Vec<Capability>) -> ServerMessage {
        ServerMessage::Caps { version, offered }
    }

    /// `ERR nick-invalid` for a nickname that breaks NICK-2 or NICK-4.
    pub fn nick_invalid(why: NickError) -> ServerMessage {
        ServerMessage::error(ErrorCode::NickInvalid, &format!("Invalid nickname: {why}"))
    }

    /// `ERR nick-taken` for a nickname another user holds (NICK-3).
    pub fn nick_taken(nick: &Nickname) -> ServerMessage {
        ServerMessage::error(
            ErrorCode::NickTaken,
            &format!("Nickname {nick} is already in use"),
        )
    }

    /// `ERR nick-taken` for a nickname that `holder`, who is online, makes unavailable:
    /// the same name in another case (NICK-3), or a lookalike (NICK-LOOK-1), which the
    /// text names so the person understands the refusal.
    pub fn nick_taken_by(nick: &Nickname, holder: &Nickname) -> ServerMessage {
        if nick.same_user(holder) {
            return ServerMessage::nick_taken(nick);
        }
        ServerMessage::error(
            ErrorCode::NickTaken,
            &format!("Nickname {nick} looks too much like {holder}, who is online"),
        )
    }

    /// `ERR nick-unchanged` for `/nick` to one's own name (CMD-NICK-3).
    pub fn nick_unchanged(nick: &Nickname) -> ServerMessage {
        ServerMessage::error(ErrorCode::NickUnchanged, &format!("You are already {nick}"))
    }

    /// `ERR nick-assigned` (seed profile, COMPAT-4): the client asked for `asked` and
    /// was given `assigned`.
    pub fn nick_assigned(
        asked: &str,
        assigned: &Nickname,
        why: crate::seed::Assigned,
    ) -> ServerMessage {
        let shown = crate::seed::shown_name(asked);
        let text = match why {
            crate::seed::Assigned::Invalid => {
                format!("Nickname \"{shown}\" is not valid here, so you are {assigned}")
            }
            crate::seed::Assigned::Taken => {
                format!("Nickname {shown} is already in use, so you are {assigned}")
            }
        };
        ServerMessage::error(ErrorCode::NickAssigned, &text)
    }

    /// `ERR no-such-nick` for `/msg` to nobody (CMD-MSG-3).
    pub fn no_such_nick(nick: &Nickname) -> ServerMessage {
        ServerMessage::error(
            ErrorCode::NoSuchNick,
            &format!("No user named {nick} is online"),
        )
    }

    /// The `ERR` line answering a framing error (FRAME-3, FRAME-4, FRAME-5), or `None`
    /// for a well-formed line.
    pub fn framing_error(frame: &Frame<'_>) -> Option<ServerMessage> {
        let (code, text) = match frame {
            Frame::Line(_) => return None,
            Frame::TooLong => (ErrorCode::LineTooLong, texts::LINE_TOO_LONG),
            Frame::InvalidUtf8 => (ErrorCode::InvalidUtf8, texts::INVALID_UTF8),
            Frame::InvalidText => (ErrorCode::InvalidText, texts::INVALID_TEXT),
        };
        Some(ServerMessage::error(code, text))
    }

    /// Appends the line and its LF to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut put = |s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            ServerMessage::NickPrompt => put(wire::NICK_PROMPT),
            ServerMessage::Connected => put(wire::CONNECTED),
            ServerMessage::Joined(n) => {
                put(n.as_str());
                put(wire::JOINED);
            }
            ServerMessage::Left(n) => {
                put(n.as_str());
                put(wire::LEFT);
            }
            ServerMessage::Chat { from, text } => {
                put(from.as_str());
                put(wire::SAYS);
                put(text.as_str());
            }
            ServerMessage::Private { from, to, text } => {
                put(from.as_str());
                put(wire::TO);
                put(to.as_str());
                put(wire::SAYS);
                put(text.as_str());
            }
            ServerMessage::Renamed { old, new } => {
                put(old.as_str());
                put(wire::RENAMED);
                put(new.as_str());
            }
            ServerMessage::Users { names, more } => {
                put(wire::USERS);
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        put(wire::USERS_SEP);
                    }
                    put(n.as_str());
                }
                if *more {
                    put(wire::USERS_MORE);
                }
            }
            ServerMessage::Error { code, text } => {
                put(wire::ERR);
                put(code.as_str());
                put(" ");
                put(cut(text.as_str(), MAX_ERR_TEXT_BYTES));
            }
            ServerMessage::Caps { version, offered } => {
                put(wire::CAPS_LIST);
                put(&version.to_string());
                put(wire::CAPS_LIST_TAIL);
                for c in offered {
                    put(" ");
                    put(&c.to_string());
                }
            }
            ServerMessage::CapsEnabled(names) => {
                put(wire::CAPS_ENABLED);
                for n in names {
                    put(" ");
                    put(n.as_str());
                }
            }
            ServerMessage::HistoryStart(n) => {
                put(wire::HISTORY_START);
                put(&n.to_string());
            }
            ServerMessage::HistoryEnd => put(wire::HISTORY_END),
            ServerMessage::Operator(n) => {
                put(n.as_str());
                put(wire::OPPED);
            }
            ServerMessage::Moderated { target, by, action } => {
                put(target.as_str());
                put(match action {
                    Action::Kicked(_) => wire::KICKED,
                    Action::Banned(_) => wire::BANNED,
                    Action::Muted(_) => wire::MUTED,
                    Action::Unmuted => wire::UNMUTED,
                    Action::Unbanned => wire::UNBANNED,
                });
                put(by.as_str());
                match action {
                    Action::Kicked(Some(r)) | Action::Banned(Some(r)) => {
                        put(wire::REASON_OPEN);
                        put(r.as_str());
                        put(wire::REASON_CLOSE);
                    }
                    Action::Muted(1) => {
                        put(wire::FOR);
                        put(wire::ONE_MINUTE);
                    }
                    Action::Muted(n) => {
                        put(wire::FOR);
                        put(&n.to_string());
                        put(wire::MINUTES);
                    }
                    _ => {}
                }
            }
            ServerMessage::Ping(token) => {
                put(wire::PING_LINE);
                put(token.as_str());
            }
            ServerMessage::Pong(token) => {
                put(wire::PONG_LINE);
                put(token.as_str());
            }
            ServerMessage::Earlier { time, event } => {
                encode_earlier_prefix(time, out);
                // The event's own encoding, without its LF (one follows below).
                event.encode(out);
                out.pop();
            }
        }
        out.push(b'\n');
    }

    /// Appends the line with a tag prefix (TAG-1) and its LF to `out`.
    pub fn encode_tagged(&self, tags: &Tags, out: &mut Vec<u8>) {
        tags.encode_prefix(out);
        self.encode(out);
    }

    /// The encoded line with its LF, in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl fmt::Display for ServerMessage {
    /// The line without its LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.to_bytes();
        out.pop();
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Appends what goes in front of an event's line to make it a readable earlier event
/// (HIST-3): `[YYYY-MM-DD HH:MM:SS UTC] `. A server that holds the event's line already
/// encoded puts this in front of it instead of parsing it back.
pub fn encode_earlier_prefix(time: &ServerTime, out: &mut Vec<u8>) {
    out.extend_from_slice(wire::EARLIER_OPEN.as_bytes());
    out.extend_from_slice(time.readable().as_bytes());
    out.extend_from_slice(wire::EARLIER_CLOSE.as_bytes());
}

/// The sender and text of a chat line (`<from>: <text>`, CHAT-1) without allocating:
/// the same judgement as [`ServerMessage::parse`] for that form, for programs that read
/// millions of lines (the load tool). `None` for any other line.
pub fn chat_parts(line: &str) -> Option<(&str, &str)> {
    let colon = line
        .bytes()
        .position(|b| !crate::nickname::is_nick_byte(b))?;
    let (from, rest) = line.split_at(colon);
    let text = rest.strip_prefix(wire::SAYS)?;
    if from.is_empty()
        || from.len() > MAX_NICK_LEN
        || crate::nickname::is_reserved(from)
        || text.len() > crate::limits::MAX_LINE_BYTES
        || crate::text::is_blank(text)
        || crate::text::has_forbidden(text)
    {
        return None;
    }
    Some((from, text))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The answer to `/who` (CMD-WHO-1, CMD-WHO-2): `names` sorted by their lowercased
/// bytes (ties, which a registry never holds, broken by exact spelling for a stable
/// order) and packed greedily into lines of at most [`MAX_USERS_LINE_BYTES`] bytes:
/// each line takes as many names as fit, counting the `,` that a line ends with when
/// more names follow, so a list of exactly 512 bytes is one line.
pub fn users_lines(mut names: Vec<Nickname>) -> Vec<ServerMessage> {
    names.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.cmp(b)));
    let total = names.len();
    let mut lines = Vec::new();
    let mut current: Vec<Nickname> = Vec::new();
    let mut len = wire::USERS.len();
    for (i, name) in names.into_iter().enumerate() {
        let sep = if current.is_empty() {
            0
        } else {
            wire::USERS_SEP.len()
        };
        let more = if i + 1 < total {
            wire::USERS_MORE.len()
        } else {
            0
        };
        if !current.is_empty() && len + sep + name.as_str().len() + more > MAX_USERS_LINE_BYTES {
            lines.push(ServerMessage::Users {
                names: std::mem::take(&mut current),
                more: true,
            });
            len = wire::USERS.len() + name.as_str().len();
        } else {
            len += sep + name.as_str().len();
        }
        current.push(name);
    }
    if !current.is_empty() {
        lines.push(ServerMessage::Users {
            names: current,
            more: false,
        });
    }
    lines
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
    fn srv_1_examples() {
        let cases = [
            ("NICK", ServerMessage::NickPrompt),
            ("Connected to the server", ServerMessage::Connected),
            (
                "alice has joined the chat",
                ServerMessage::Joined(nick("alice")),
            ),
            (
                "alice has left the chat",
                ServerMessage::Left(nick("alice")),
            ),
            (
                "alice: hi: there",
                ServerMessage::Chat {
                    from: nick("alice"),
                    text: txt("hi: there"),
                },
            ),
            (
                "alice -> bob: psst",
                ServerMessage::Private {
                    from: nick("alice"),
                    to: nick("bob"),
                    text: txt("psst"),
                },
            ),
            (
                "a is now known as b",
                ServerMessage::Renamed {
                    old: nick("a"),
                    new: nick("b"),
                },
            ),
            (
                "Users online: a, B, c",
                ServerMessage::Users {
                    names: vec![nick("a"), nick("B"), nick("c")],
                    more: false,
                },
            ),
            (
                "Users online: a,",
                ServerMessage::Users {
                    names: vec![nick("a")],
                    more: true,
                },
            ),
            (
                "ERR nick-taken That nickname is in use",
                ServerMessage::Error {
                    code: ErrorCode::NickTaken,
                    text: txt("That nickname is in use"),
                },
            ),
        ];
        for (line, msg) in cases {
            assert_eq!(ServerMessage::parse(line), Ok(msg.clone()), "{line}");
            assert_eq!(msg.to_string(), line);
        }
    }

    #[test]
    fn mod_7_notices_parse_one_way() {
        let m = |target: &str, by: &str, action| ServerMessage::Moderated {
            target: nick(target),
            by: nick(by),
            action,
        };
        let reason = |r: &str| Some(Reason::new(r).unwrap());
        let cases = [
            (
                "teacher is now an operator",
                ServerMessage::Operator(nick("teacher")),
            ),
            (
                "alicia was kicked by teacher (spamming)",
                m("alicia", "teacher", Action::Kicked(reason("spamming"))),
            ),
            (
                "alicia was kicked by teacher",
                m("alicia", "teacher", Action::Kicked(None)),
            ),
            (
                "alicia was kicked by teacher (a) (b))",
                m("alicia", "teacher", Action::Kicked(reason("a) (b)"))),
            ),
            (
                "alicia was banned by teacher (x: y)",
                m("alicia", "teacher", Action::Banned(reason("x: y"))),
            ),
            (
                "alicia was muted by teacher for 10 minutes",
                m("alicia", "teacher", Action::Muted(10)),
            ),
            (
                "alicia was muted by teacher for 1 minute",
                m("alicia", "teacher", Action::Muted(1)),
            ),
            (
                "alicia was unmuted by teacher",
                m("alicia", "teacher", Action::Unmuted),
            ),
            (
                "alicia was unbanned by teacher",
                m("alicia", "teacher", Action::Unbanned),
            ),
        ];
        for (line, msg) in cases {
            assert_eq!(ServerMessage::parse(line), Ok(msg.clone()), "{line}");
            assert_eq!(msg.to_string(), line);
            assert!(msg.is_public_event());
        }
        for bad in [
            "alicia was muted by teacher for 1 minutes",
            "alicia was muted by teacher for 01 minutes",
            "alicia was muted by teacher for 1441 minutes",
            "alicia was muted by teacher",
            "alicia was kicked by teacher ()",
            "alicia was kicked by teacher (x",
            "alicia was kicked by teacher  (x)",
            "alicia was kicked by ERR",
            "alicia is now an operator ",
        ] {
            assert_eq!(ServerMessage::parse(bad), Err(ServerParseError), "{bad:?}");
        }
        // A chat text that reads like a notice stays a chat line (SRV-2).
        assert_eq!(
            ServerMessage::parse("bob: alicia was kicked by teacher"),
            Ok(ServerMessage::Chat {
                from: nick("bob"),
                text: txt("alicia was kicked by teacher")
            })
        );
    }

    /// PING-3, PING-6: the liveness lines, and what is not one. `PING` is a reserved
    /// word (NICK-4), so no event line starts with `PING ` or `PONG `.
    #[test]
    fn ping_3_liveness_lines() {
        let tok = |s: &str| Token::new(s).unwrap();
        for (line, msg) in [
            ("PING 1", ServerMessage::Ping(tok("1"))),
            ("PONG gui:17", ServerMessage::Pong(tok("gui:17"))),
        ] {
            assert_eq!(ServerMessage::parse(line), Ok(msg.clone()), "{line}");
            assert_eq!(msg.to_string(), line);
            assert!(!msg.is_public_event());
        }
        for bad in [
            "PING",
            "PING ",
            "PING a b",
            "PING  a",
            "ping 1",
            "Ping 1",
            "PONG",
            &format!("PING {}", "x".repeat(33)),
        ] {
            assert_eq!(ServerMessage::parse(bad), Err(ServerParseError), "{bad:?}");
        }
        // Chat text that reads like a probe stays a chat line (SRV-2).
        assert_eq!(
            ServerMessage::parse("Pingu: PING 1"),
            Ok(ServerMessage::Chat {
                from: nick("Pingu"),
                text: txt("PING 1")
            })
        );
        assert!(Nickname::new("PING").is_err() && Nickname::new("PONG").is_err());
    }

    #[test]
    fn srv_2_lookalikes_are_unambiguous() {
        // A chat text that looks like a notice stays a chat line.
        assert_eq!(
            ServerMessage::parse("bob: carol has left the chat"),
            Ok(ServerMessage::Chat {
                from: nick("bob"),
                text: txt("carol has left the chat")
            })
        );
        assert_eq!(
            ServerMessage::parse("NICKY: hi"),
            Ok(ServerMessage::Chat {
                from: nick("NICKY"),
                text: txt("hi")
            })
        );
        assert_eq!(
            ServerMessage::parse("Users: hi"),
            Ok(ServerMessage::Chat {
                from: nick("Users"),
                text: txt("hi")
            })
        );
        for bad in [
            "",
            "NICK ",
            "nick",
            "ERR has joined the chat",
            "ERR bogus-code text",
            "ERR nick-taken",
            "alice:",
            "alice: ",
            "alice has joined the chat ",
            "Users online: ",
            "Users online: a, ",
            "Users online: a,,",
            "Connected to the server ",
            "xxxxxxxxxxxxxxxxxxxxxxxxx: too long a name",
        ] {
            assert_eq!(ServerMessage::parse(bad), Err(ServerParseError), "{bad:?}");
        }
    }

    #[test]
    fn cmd_who_1_byte_order_of_lowercased_names() {
        let names = [
            "zed", "Alice", "_x", "9nine", "al_", "-dash", "al-x", "0zero", "al", "al0",
        ];
        let lines = users_lines(names.iter().map(|n| nick(n)).collect());
        assert_eq!(
            lines[0].to_string(),
            "Users online: -dash, 0zero, 9nine, _x, al, al-x, al0, al_, Alice, zed"
        );
    }

    #[test]
    fn cmd_who_2_greedy_packing_exactly_512() {
        // 20 names of 23 characters: 14 + 20 * 23 + 19 * 2 = 512 bytes, one line.
        let names: Vec<Nickname> = (0..20)
            .map(|i| nick(&format!("n{i:02}{}", "x".repeat(20))))
            .collect();
        let lines = users_lines(names.clone());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].to_bytes().len() - 1, MAX_USERS_LINE_BYTES);
        // One byte more splits, and the first line is filled as far as it goes.
        let mut more = names;
        more.push(nick("zz"));
        let lines = users_lines(more);
        assert_eq!(lines.len(), 2);
        let first = lines[0].to_bytes().len() - 1;
        assert!(
            first <= MAX_USERS_LINE_BYTES && first + 25 > MAX_USERS_LINE_BYTES,
            "{first}"
        );
    }

    #[test]
    fn err_3_text_bounded() {
        let long = "é".repeat(300);
        let m = ServerMessage::error(ErrorCode::Flood, &long);
        let ServerMessage::Error { text, .. } = &m else {
            panic!()
        };
        assert_eq!(text.as_str().len(), MAX_ERR_TEXT_BYTES);
        assert_eq!(ServerMessage::parse(&m.to_string()), Ok(m.clone()));
        // A text made longer by hand is cut by the encoder, so no line breaks ERR-3.
        let raw = ServerMessage::Error {
            code: ErrorCode::Flood,
            text: txt(&"x".repeat(1000)),
        };
        assert_eq!(
            raw.to_string().len(),
            "ERR flood ".len() + MAX_ERR_TEXT_BYTES
        );
        assert!(ServerMessage::parse(&format!("ERR flood {}", "x".repeat(257))).is_err());
        // Every standard text fits.
        for t in [
            texts::LINE_TOO_LONG,
            texts::FLOOD,
            texts::UNKNOWN_CAPABILITY,
        ] {
            assert!(t.len() <= MAX_ERR_TEXT_BYTES);
        }
    }

    #[test]
    fn cmd_who_2_split_and_sorted() {
        let names: Vec<Nickname> = (0..100)
            .rev()
            .map(|i| nick(&format!("user{i:03}_padding_xx")))
            .collect();
        let lines = users_lines(names);
        assert!(lines.len() > 1);
        let mut all = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let bytes = l.to_bytes();
            assert!(
                bytes.len() - 1 <= MAX_USERS_LINE_BYTES,
                "{} bytes",
                bytes.len()
            );
            let ServerMessage::Users { names, more } = l else {
                panic!()
            };
            assert_eq!(*more, i + 1 < lines.len());
            all.extend(names.iter().cloned());
        }
        assert_eq!(all.len(), 100);
        assert!(all.windows(2).all(|w| w[0].key() <= w[1].key()));
        let mixed = users_lines(vec![nick("bob"), nick("Alice"), nick("carol")]);
        assert_eq!(mixed[0].to_string(), "Users online: Alice, bob, carol");
    }
}
