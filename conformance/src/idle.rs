//! Waiting until a shared server (`--target`) has forgotten the previous session.
//!
//! Sessions reuse nicknames (`alice`, `bob`), and a server processes a closed
//! connection in its own time: start the next session too soon and its `alice` is
//! `nick-taken`. Between sessions a probe client joins under a name no session uses and
//! asks `/who` until it is alone, then quits and waits for the server to close it, so
//! its own leave notice is behind it too. All lines go through `chat-proto`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_proto::{ClientMessage, Nickname, ServerMessage};

use crate::wire::{Trust, Wire};

/// Waits until the server at `addr` has no user but the probe, at most `timeout`.
/// `Err` says why it could not tell (e.g. the server does not speak the protocol); the
/// caller then just waits a moment.
pub fn wait_until_idle(
    addr: SocketAddr,
    tls: Option<Trust>,
    round: u32,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let nick = Nickname::new(&format!("zz-idle-probe-{}", round % 1_000_000))
        .map_err(|e| e.to_string())?;
    let stream = Wire::connect(addr, tls, timeout)?;
    stream
        .tcp()
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    fn read_msg(reader: &mut BufReader<Wire>) -> Result<Option<ServerMessage>, String> {
        let mut line = Vec::new();
        let n = reader
            .take(4096)
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        if line.pop() != Some(b'\n') {
            return Err("unterminated line".into());
        }
        let text = String::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
        ServerMessage::parse(&text)
            .map(Some)
            .map_err(|_| format!("not a server line: {text:?}"))
    }

    if read_msg(&mut reader)? != Some(ServerMessage::NickPrompt) {
        return Err("no NICK prompt".into());
    }
    let mut out = Vec::new();
    nick.encode_line(&mut out);
    reader
        .get_mut()
        .write_all(&out)
        .map_err(|e| e.to_string())?;
    // Bounded: every line read takes time, and the deadline stops the loop.
    while Instant::now() < deadline {
        match read_msg(&mut reader)? {
            Some(ServerMessage::Connected) => break,
            Some(_) => {}
            None => return Err("closed during the handshake".into()),
        }
    }
    let mut names = Vec::new();
    while Instant::now() < deadline {
        out.clear();
        ClientMessage::Who.encode(&mut out);
        reader
            .get_mut()
            .write_all(&out)
            .map_err(|e| e.to_string())?;
        names.clear();
        loop {
            match read_msg(&mut reader)? {
                Some(ServerMessage::Users { names: n, more }) => {
                    names.extend(n);
                    if !more {
                        break;
                    }
                }
                Some(_) => {}
                None => return Err("closed".into()),
            }
        }
        if names.len() == 1 {
            out.clear();
            ClientMessage::Quit.encode(&mut out);
            reader
                .get_mut()
                .write_all(&out)
                .map_err(|e| e.to_string())?;
            while Instant::now() < deadline {
                if read_msg(&mut reader)?.is_none() {
                    return Ok(());
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!(
        "still {} users online after {}s",
        names.len(),
        timeout.as_secs_f32()
    ))
}
