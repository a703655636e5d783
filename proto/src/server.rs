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
use nom::multi::separated_list1;
use nom::sequence::preceded;
use nom::{IResult, Parser};
use thiserror::Error;

use crate::error::ErrorCode;
use crate::framer::Frame;
use crate::limits::{MAX_NICK_LEN, MAX_USERS_LINE_BYTES};
use crate::nickname::{NickError, Nickname, is_nick_char};
use crate::text::Text;

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
    /// CONN-7, first excess.
    pub const FLOOD: &str =
        "You are sending too fast; the server reads your lines more slowly for now";
    /// CONN-7, sustained excess.
    pub const EXCESS_FLOOD: &str = "You kept sending too fast for too long; disconnected";
    /// CONN-4.
    pub const SENDQ_EXCEEDED: &str = "You are not reading fast enough; disconnected";
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
    /// `ERR <code> <text>` (ERR-1).
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        text: Text,
    },
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

fn error_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        preceded(
            tag("ERR "),
            (
                map_res(take_till1(|c| c == ' '), str::parse::<ErrorCode>),
                preceded(char(' '), text),
            ),
        ),
        |(code, text)| ServerMessage::Error { code, text },
    )
    .parse(i)
}

fn users_line(i: &str) -> IResult<&str, ServerMessage> {
    map(
        (
            preceded(tag("Users online: "), separated_list1(tag(", "), nick)),
            opt(char(',')),
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
        map(preceded(tag(": "), text), |text| ServerMessage::Chat {
            from: first.clone(),
            text,
        }),
        map(
            (preceded(tag(" -> "), nick), preceded(tag(": "), text)),
            |(to, text)| ServerMessage::Private {
                from: first.clone(),
                to,
                text,
            },
        ),
        map(tag(" has joined the chat"), |_| {
            ServerMessage::Joined(first.clone())
        }),
        map(tag(" has left the chat"), |_| {
            ServerMessage::Left(first.clone())
        }),
        map(preceded(tag(" is now known as "), nick), |new| {
            ServerMessage::Renamed {
                old: first.clone(),
                new,
            }
        }),
    ))
    .parse(i)
}

fn server_line(i: &str) -> IResult<&str, ServerMessage> {
    alt((
        all_consuming(value(ServerMessage::NickPrompt, tag("NICK"))),
        all_consuming(value(
            ServerMessage::Connected,
            tag("Connected to the server"),
        )),
        all_consuming(error_line),
        all_consuming(users_line),
        all_consuming(nick_led),
    ))
    .parse(i)
}

impl ServerMessage {
    /// Parses one server line, without its LF.
    pub fn parse(line: &str) -> Result<ServerMessage, ServerParseError> {
        server_line(line)
            .map(|(_, m)| m)
            .map_err(|_| ServerParseError)
    }

    /// An `ERR` line. A `text` that is not a valid [`Text`] is replaced by the code
    /// itself, so this never fails.
    pub fn error(code: ErrorCode, text: &str) -> ServerMessage {
        // Every code is itself a valid text.
        let text = Text::new(text).unwrap_or_else(|_| Text::new_unchecked(code.as_str()));
        ServerMessage::Error { code, text }
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
        let shown: String = asked
            .chars()
            .filter(|c| !crate::text::is_forbidden(*c))
            .take(64)
            .collect();
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
            ServerMessage::NickPrompt => put("NICK"),
            ServerMessage::Connected => put("Connected to the server"),
            ServerMessage::Joined(n) => {
                put(n.as_str());
                put(" has joined the chat");
            }
            ServerMessage::Left(n) => {
                put(n.as_str());
                put(" has left the chat");
            }
            ServerMessage::Chat { from, text } => {
                put(from.as_str());
                put(": ");
                put(text.as_str());
            }
            ServerMessage::Private { from, to, text } => {
                put(from.as_str());
                put(" -> ");
                put(to.as_str());
                put(": ");
                put(text.as_str());
            }
            ServerMessage::Renamed { old, new } => {
                put(old.as_str());
                put(" is now known as ");
                put(new.as_str());
            }
            ServerMessage::Users { names, more } => {
                put("Users online: ");
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        put(", ");
                    }
                    put(n.as_str());
                }
                if *more {
                    put(",");
                }
            }
            ServerMessage::Error { code, text } => {
                put("ERR ");
                put(code.as_str());
                put(" ");
                put(text.as_str());
            }
        }
        out.push(b'\n');
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

/// The sender and text of a chat line (`<from>: <text>`, CHAT-1) without allocating:
/// the same judgement as [`ServerMessage::parse`] for that form, for programs that read
/// millions of lines (the load tool). `None` for any other line.
pub fn chat_parts(line: &str) -> Option<(&str, &str)> {
    let colon = line
        .bytes()
        .position(|b| !crate::nickname::is_nick_byte(b))?;
    let (from, rest) = line.split_at(colon);
    let text = rest.strip_prefix(": ")?;
    if from.is_empty()
        || from.len() > MAX_NICK_LEN
        || crate::nickname::RESERVED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(from))
        || text.len() > crate::limits::MAX_LINE_BYTES
        || crate::text::is_blank(text)
        || crate::text::has_forbidden(text)
    {
        return None;
    }
    Some((from, text))
}

/// The answer to `/who` (CMD-WHO-1, CMD-WHO-2): `names` sorted case-insensitively (ties
/// broken by exact spelling, for a stable order) and split into lines of at most
/// [`MAX_USERS_LINE_BYTES`] bytes; every line but the last ends with `,`.
pub fn users_lines(mut names: Vec<Nickname>) -> Vec<ServerMessage> {
    names.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.cmp(b)));
    const PREFIX: usize = "Users online: ".len();
    let mut lines = Vec::new();
    let mut current: Vec<Nickname> = Vec::new();
    let mut len = PREFIX;
    for name in names {
        let add = name.as_str().len() + if current.is_empty() { 0 } else { 2 };
        // +1 for the `,` a non-final line ends with.
        if !current.is_empty() && len + add + 1 > MAX_USERS_LINE_BYTES {
            lines.push(ServerMessage::Users {
                names: std::mem::take(&mut current),
                more: true,
            });
            len = PREFIX;
            len += name.as_str().len();
        } else {
            len += add;
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
