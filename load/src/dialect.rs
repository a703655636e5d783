//! How the load tool speaks to each kind of server: our protocol (`spec`), the original
//! Python program (`seed`) and IRC (`irc`, for ngIRCd). Each dialect knows how to join,
//! how to send one message, and where a delivered line keeps its payload and sender.

use std::time::Instant;

use crate::stream::Stream;
use anyhow::{Context, Result, bail};
use chat_proto::limits::MAX_SERVER_LINE_BYTES;
use chat_proto::{
    ClientMessage, Frame, Framer, Incoming, Nickname, ServerMessage, ServerReader, Text,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

/// The channel IRC clients join.
const IRC_CHANNEL: &str = "#load";

/// Which protocol the target server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// `spec/PROTOCOL.md`: `NICK` LF, nickname line, `Connected to the server`; text lines.
    Spec,
    /// The original Python server: bare `NICK`, unterminated nickname, the client writes
    /// `nick: ` in front of every line itself.
    Seed,
    /// IRC (RFC 2812): NICK/USER, JOIN one channel, PRIVMSG.
    Irc,
}

/// What a delivered line holds.
pub enum Delivered<'a> {
    /// A message payload (from the marker to the end of the line) and the sender's name
    /// as the line shows it.
    Payload { from: &'a [u8], payload: &'a [u8] },
    /// A line without a payload (a join notice, a PING answered elsewhere, ...).
    Other,
    /// A line that should carry a payload but is malformed.
    Malformed,
}

impl Dialect {
    /// Longest line a receiver accepts before calling it malformed.
    pub fn line_limit(self) -> usize {
        match self {
            Dialect::Spec => MAX_SERVER_LINE_BYTES,
            // The seed server glues unterminated notices to the next line, and relays
            // 1024-byte chunks; allow generous lines so those show as what they are.
            Dialect::Seed | Dialect::Irc => 16 * 1024,
        }
    }

    /// Joins as `nick`: returns the bytes read past the end of the handshake.
    pub async fn join(self, stream: &mut Stream, nick: &str, deadline: Instant) -> Result<Vec<u8>> {
        let work = async {
            match self {
                Dialect::Spec => join_spec(stream, nick).await,
                Dialect::Seed => join_seed(stream, nick).await,
                Dialect::Irc => join_irc(stream, nick).await,
            }
        };
        let timeout = async {
            smol::Timer::at(deadline).await;
            bail!("handshake of {nick} timed out")
        };
        work.or(timeout).await
    }

    /// Appends one message carrying `payload` from `nick` to `out`.
    pub fn encode_message(self, nick: &str, payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Dialect::Spec => {
                let text = std::str::from_utf8(payload).context("payload is ASCII")?;
                let text = Text::new(text).map_err(|e| anyhow::anyhow!("payload: {e}"))?;
                ClientMessage::Text(text).encode(out);
            }
            Dialect::Seed => {
                out.extend_from_slice(nick.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(payload);
                out.push(b'\n');
            }
            Dialect::Irc => {
                out.extend_from_slice(b"PRIVMSG ");
                out.extend_from_slice(IRC_CHANNEL.as_bytes());
                out.extend_from_slice(b" :");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }

    /// Finds the payload of a delivered line (without its terminator).
    pub fn delivered(self, line: &[u8]) -> Delivered<'_> {
        match self {
            Dialect::Spec => {
                let Ok(text) = std::str::from_utf8(line) else {
                    return Delivered::Malformed;
                };
                match chat_proto::chat_parts(text) {
                    Some((from, text)) if text.as_bytes().starts_with(crate::payload::MARKER) => {
                        Delivered::Payload {
                            from: from.as_bytes(),
                            payload: text.as_bytes(),
                        }
                    }
                    Some(_) => Delivered::Malformed,
                    None if memchr::memmem::find(line, crate::payload::MARKER).is_some() => {
                        Delivered::Malformed
                    }
                    None => Delivered::Other,
                }
            }
            Dialect::Seed => {
                let Some(at) = memchr::memmem::find(line, crate::payload::MARKER) else {
                    return Delivered::Other;
                };
                let (before, payload) = line.split_at(at);
                // `...<nick>: ` right before the payload; anything earlier on the line is an
                // unterminated notice the seed server glued on.
                let Some(before) = before.strip_suffix(b": ") else {
                    return Delivered::Malformed;
                };
                let start = before.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1);
                Delivered::Payload {
                    from: before.get(start..).unwrap_or_default(),
                    payload,
                }
            }
            Dialect::Irc => {
                let Some(at) = memchr::memmem::find(line, crate::payload::MARKER) else {
                    return Delivered::Other;
                };
                let (before, payload) = line.split_at(at);
                let from = before
                    .strip_prefix(b":")
                    .and_then(|b| b.iter().position(|&c| c == b'!').and_then(|i| b.get(..i)));
                match from {
                    Some(from) => Delivered::Payload { from, payload },
                    None => Delivered::Malformed,
                }
            }
        }
    }

    /// Bytes to send in answer to a line that needs one (IRC's PING), if any.
    pub fn answer(self, line: &[u8]) -> Option<Vec<u8>> {
        match self {
            Dialect::Irc => line
                .strip_prefix(b"PING")
                .map(|rest| [b"PONG".as_slice(), rest, b"\r\n"].concat()),
            _ => None,
        }
    }
}

async fn read_some(stream: &mut Stream, buf: &mut [u8]) -> Result<usize> {
    let n = stream.read(buf).await?;
    if n == 0 {
        bail!("server closed the connection during the handshake");
    }
    Ok(n)
}

/// Reads lines until `done` says the handshake is over; returns what was read after it.
async fn read_lines_until(
    stream: &mut Stream,
    limit: usize,
    mut on_line: impl FnMut(&str, &mut Vec<u8>) -> Result<bool>,
) -> Result<Vec<u8>> {
    let mut framer = Framer::with_limit(limit);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = read_some(stream, &mut buf).await?;
        let mut input = buf.get(..n).unwrap_or_default();
        loop {
            let (used, frame) = framer.advance(input);
            input = input.get(used..).unwrap_or_default();
            let Some(frame) = frame else { break };
            let Frame::Line(line) = frame else {
                bail!("malformed line from server during handshake")
            };
            let mut reply = Vec::new();
            let done = on_line(line, &mut reply)?;
            if !reply.is_empty() {
                stream.write_all(&reply).await?;
            }
            if done {
                return Ok(input.to_vec());
            }
        }
    }
}

async fn join_spec(stream: &mut Stream, nick: &str) -> Result<Vec<u8>> {
    let name = Nickname::new(nick).map_err(|e| anyhow::anyhow!("nickname {nick}: {e}"))?;
    // chat-proto's reader also takes a bare `NICK` (a server in the seed profile).
    let mut reader = ServerReader::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = read_some(stream, &mut buf).await?;
        let chunk = buf.get(..n).unwrap_or_default();
        let mut reply = Vec::new();
        let mut refused = None;
        let used = reader.push_until(chunk, |event| match event {
            Incoming::Message(ServerMessage::NickPrompt) => {
                name.encode_line(&mut reply);
                false
            }
            Incoming::Message(ServerMessage::Connected) => true,
            Incoming::Message(ServerMessage::Error { code, text }) => {
                let hint = match code {
                    // Every load client comes from one address (spec ADDR-1).
                    chat_proto::ErrorCode::TooManyConnections => {
                        " (start chat-server with --max-per-address 0 --max-handshakes-per-address 0 --flood-per-address 0 to load it from one machine)"
                    }
                    _ => "",
                };
                refused = Some(format!("{code} {text}{hint}"));
                false
            }
            _ => false,
        });
        if let Some(why) = refused {
            bail!("server refused {nick}: {why}");
        }
        if !reply.is_empty() {
            stream.write_all(&reply).await?;
        }
        if !reader.handshaking() {
            return Ok(chunk.get(used..).unwrap_or_default().to_vec());
        }
    }
}

async fn join_seed(stream: &mut Stream, nick: &str) -> Result<Vec<u8>> {
    // The greeting is the 4 bytes `NICK`, unterminated and alone.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while got.len() < 4 {
        let n = read_some(stream, &mut buf).await?;
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    if !got.starts_with(b"NICK") {
        bail!(
            "seed server greeted with {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    stream.write_all(nick.as_bytes()).await?;
    const DONE: &[u8] = b"Connected to the server ";
    let mut seen = got.split_off(4);
    loop {
        if let Some(at) = memchr::memmem::find(&seen, DONE) {
            return Ok(seen.split_off(at + DONE.len()));
        }
        let n = read_some(stream, &mut buf).await?;
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

async fn join_irc(stream: &mut Stream, nick: &str) -> Result<Vec<u8>> {
    stream
        .write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes())
        .await?;
    let mut joined = false;
    read_lines_until(stream, 16 * 1024, |line, reply| {
        let mut words = line.split(' ');
        let first = words.next().unwrap_or_default();
        let command = if first.starts_with(':') {
            words.next().unwrap_or_default()
        } else {
            first
        };
        match command {
            "PING" => {
                reply.extend_from_slice(b"PONG");
                reply.extend_from_slice(line.get(4..).unwrap_or_default().as_bytes());
                reply.extend_from_slice(b"\r\n");
            }
            "001" if !joined => {
                joined = true;
                reply.extend_from_slice(format!("JOIN {IRC_CHANNEL}\r\n").as_bytes());
            }
            "366" => return Ok(true),
            "433" | "432" | "ERROR" => bail!("IRC server refused {nick}: {line}"),
            _ => {}
        }
        Ok(false)
    })
    .await
}
