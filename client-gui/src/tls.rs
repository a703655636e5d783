//! Connections for the network thread: plain TCP (`host:port`), or TLS
//! (`tls://host:port`, spec §19) with the server's certificate pinned on first use
//! ([`crate::pin`], TLS-7).
//!
//! The network thread reads in one thread and writes from another, so a TLS connection
//! is split the same way: the reading thread blocks in the TCP `read` *outside* the lock
//! on the rustls state, then takes the lock to decrypt; the writing side takes it to
//! encrypt and send. Neither waits for the other except for those short moments.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chat_proto::Fingerprint;
use chat_tls::rustls::ClientConnection;
use chat_tls::{ConnectError, Trust};

use crate::pin;

/// A TLS connection's certificate, for the UI to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secure {
    /// `host:port`, as pinned.
    pub server: String,
    /// The certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// True when it was pinned by this connection (the first to this server).
    pub first_use: bool,
}

/// A server whose certificate is not the one pinned for it (TLS-7): a security stop,
/// not a network fault, so the client neither retries nor moves on by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// `host:port`, as pinned.
    pub server: String,
    /// The fingerprint pinned for it.
    pub pinned: Fingerprint,
    /// The fingerprint of the certificate it presented now.
    pub presented: Fingerprint,
}

/// Why [`open`] made no connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The network or the handshake failed: the reason to show the user.
    Failed(String),
    /// The server's certificate changed (TLS-7).
    Changed(Changed),
}

impl From<String> for OpenError {
    fn from(reason: String) -> Self {
        OpenError::Failed(reason)
    }
}

/// Where a `tls://` address without a port connects (TLS-1).
pub const DEFAULT_TLS_PORT: u16 = chat_proto::limits::DEFAULT_TLS_PORT;

/// The `host:port` a `tls://` address pins under (default port added), or `None` for a
/// plain address.
pub fn tls_server(addr: &str) -> Option<String> {
    let (tls, rest) = chat_tls::split_scheme(addr);
    if !tls {
        return None;
    }
    let rest = rest.trim_end_matches('/');
    let has_port = match rest.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    Some(if has_port {
        rest.to_ascii_lowercase()
    } else {
        format!("{}:{DEFAULT_TLS_PORT}", rest.to_ascii_lowercase())
    })
}

/// The reading side of a connection.
pub enum Reader {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(TlsReader),
}

/// The writing side of a connection.
pub enum Link {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, and the certificate it was made with.
    Tls(TlsWriter, Secure),
}

/// Opens a connection to `addr` (`host:port`, or `tls://host:port`), within
/// `timeout` for the TCP connect and again for the TLS handshake.
pub fn open(addr: &str, timeout: Duration) -> Result<(Reader, Link), OpenError> {
    let Some(server) = tls_server(addr) else {
        let stream = crate::net::connect(addr)?;
        let writer = stream.try_clone().map_err(|e| crate::net::io_reason(&e))?;
        return Ok((Reader::Plain(stream), Link::Plain(writer)));
    };
    let store = pin::store();
    let pinned = store.and_then(|s| s.lookup(&server));
    let tcp = crate::net::connect(&server)?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let host = server
        .rsplit_once(':')
        .map_or(server.as_str(), |(h, _)| h)
        .to_owned();
    let trust = pinned.map_or(Trust::Any, Trust::Pinned);
    let (stream, fingerprint) = match chat_tls::connect(tcp, &host, trust) {
        Ok(ok) => ok,
        Err(ConnectError::Mismatch { pinned, presented }) => {
            return Err(OpenError::Changed(Changed {
                server,
                pinned,
                presented,
            }));
        }
        Err(e) => return Err(format!("TLS with {server} failed: {e}").into()),
    };
    let first_use = pinned.is_none();
    if first_use && let Some(s) = store {
        if let Err(e) = s.pin(&server, fingerprint) {
            tracing::warn!("cannot save the pin in {}: {e}", s.path().display());
        }
    }
    let chat_tls::rustls::StreamOwned { conn, sock } = stream;
    // The reading thread waits for the server as long as it takes (keepalive and the
    // server's own limits end a dead connection).
    let _ = sock.set_read_timeout(None);
    let writer_tcp = sock.try_clone().map_err(|e| crate::net::io_reason(&e))?;
    let shared = Arc::new(Shared {
        conn: Mutex::new(conn),
        tcp: writer_tcp
            .try_clone()
            .map_err(|e| crate::net::io_reason(&e))?,
    });
    let secure = Secure {
        server,
        fingerprint,
        first_use,
    };
    Ok((
        Reader::Tls(TlsReader {
            shared: shared.clone(),
            tcp: sock,
            pending: Vec::new(),
            eof: false,
        }),
        Link::Tls(TlsWriter { shared }, secure),
    ))
}

/// The loud refusal of a server whose certificate changed (TLS-7), in short lines so
/// that the two fingerprints stand out: what happened, both fingerprints, and the
/// deliberate way to accept the new one (`accept`: how this screen does it, like
/// "type /trust"; the command line's `--trust` is for those who read `--help`).
pub fn changed_warning(
    server: &str,
    pinned: Fingerprint,
    presented: Fingerprint,
    accept: &str,
) -> [String; 4] {
    [
        format!(
            "WARNING: the certificate of {server} has CHANGED. Someone may be \
             impersonating the server. Not connected, and no automatic retry."
        ),
        format!("Pinned fingerprint: {pinned}"),
        format!("Presented now: {presented}"),
        format!(
            "Ask the server's owner which fingerprint is right. Only if they confirm the \
             new one, {accept} to accept it."
        ),
    ]
}

/// The rustls state both sides of a TLS connection use.
struct Shared {
    conn: Mutex<ClientConnection>,
    /// The socket the writing side (and the reader's replies) send on.
    tcp: TcpStream,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ClientConnection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends everything rustls holds (blocking, within the socket's write timeout).
fn send_all(conn: &mut ClientConnection, mut tcp: &TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        if conn.write_tls(&mut tcp)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Most received bytes kept while rustls cannot take them (it takes them as soon as the
/// plaintext it holds is read, so this is never reached by a working server).
const MAX_PENDING: usize = 1 << 20;

/// The reading side of a TLS connection.
pub struct TlsReader {
    shared: Arc<Shared>,
    tcp: TcpStream,
    /// Received bytes rustls has not taken yet.
    pending: Vec<u8>,
    eof: bool,
}

impl Read for TlsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut buf = [0u8; 16 * 1024];
        // Bounded: each round either returns or reads from the socket, which blocks.
        loop {
            {
                let mut conn = self.shared.lock();
                while !self.pending.is_empty() {
                    let mut rest: &[u8] = &self.pending;
                    let taken = match conn.read_tls(&mut rest) {
                        Ok(_) => self.pending.len() - rest.len(),
                        // rustls's buffer is full of plaintext: hand that out first.
                        Err(_) if self.pending.len() <= MAX_PENDING => 0,
                        Err(e) => return Err(e),
                    };
                    self.pending.drain(..taken);
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    if taken == 0 {
                        break;
                    }
                }
                if conn.wants_write() {
                    send_all(&mut conn, &self.shared.tcp)?;
                }
                match conn.reader().read(out) {
                    Ok(n) => return Ok(n),
                    // TLS-6: a close without close_notify ends the stream.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.eof {
                    return Ok(0);
                }
            }
            let n = self.tcp.read(&mut buf)?;
            if n == 0 {
                self.eof = true;
                let mut conn = self.shared.lock();
                let _ = conn.read_tls(&mut &[][..]);
                continue;
            }
            self.pending
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }
}

impl Read for Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Plain(s) => s.read(out),
            Reader::Tls(r) => r.read(out),
        }
    }
}

/// The writing side of a TLS connection.
pub struct TlsWriter {
    shared: Arc<Shared>,
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.shared.lock();
        let n = conn.writer().write(buf)?;
        send_all(&mut conn, &self.shared.tcp)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut conn = self.shared.lock();
        send_all(&mut conn, &self.shared.tcp)
    }
}

impl Link {
    fn tcp(&self) -> &TcpStream {
        match self {
            Link::Plain(s) => s,
            Link::Tls(w, _) => &w.shared.tcp,
        }
    }

    /// See [`TcpStream::set_nodelay`].
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    /// See [`TcpStream::set_write_timeout`].
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(t)
    }

    /// Shuts the connection down (over TLS, with a best-effort `close_notify` first).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if let Link::Tls(w, _) = self
            && how != Shutdown::Read
        {
            let mut conn = w.shared.lock();
            conn.send_close_notify();
            let _ = w.shared.tcp.set_nonblocking(true);
            let _ = send_all(&mut conn, &w.shared.tcp);
            let _ = w.shared.tcp.set_nonblocking(false);
        }
        self.tcp().shutdown(how)
    }

    /// The certificate of a TLS connection.
    pub fn secure(&self) -> Option<&Secure> {
        match self {
            Link::Plain(_) => None,
            Link::Tls(_, s) => Some(s),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(s) => s.write(buf),
            Link::Tls(w, _) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(s) => s.flush(),
            Link::Tls(w, _) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TLS-1: `tls://` selects TLS; the pin key is host:port with the TLS default port.
    #[test]
    fn tls_1_addresses_and_pin_keys() {
        assert_eq!(tls_server("127.0.0.1:9090"), None);
        assert_eq!(
            tls_server("tls://127.0.0.1:9443").as_deref(),
            Some("127.0.0.1:9443")
        );
        assert_eq!(
            tls_server("tls://Chat.Example").as_deref(),
            Some("chat.example:9443")
        );
        assert_eq!(tls_server("tls://[::1]").as_deref(), Some("[::1]:9443"));
        assert_eq!(tls_server("tls://[::1]:7").as_deref(), Some("[::1]:7"));
    }

    /// TLS-7: the warning names the server, both fingerprints and how to accept.
    #[test]
    fn tls_7_changed_warning_names_both_fingerprints() {
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let w = changed_warning("h:1", a, b, "type /trust").join("\n");
        assert!(w.starts_with("WARNING: the certificate of h:1 has CHANGED"));
        assert!(w.contains(&format!("\nPinned fingerprint: {a}\n")), "{w}");
        assert!(w.contains(&format!("\nPresented now: {b}\n")), "{w}");
        assert!(
            w.ends_with("confirm the new one, type /trust to accept it."),
            "{w}"
        );
    }
}
