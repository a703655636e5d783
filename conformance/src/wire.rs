//! A client's connection to the server under test: plain TCP, or TLS (spec §19) with the
//! server's certificate pinned by fingerprint or, for throw-away test servers, accepted
//! as it comes (`--insecure`). Sessions are the same either way (TLS-6): a payload is
//! written as the session says (over TLS each write becomes a record of its own), and a
//! close, half-close or reset acts on the TCP connection under TLS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

pub use chat_tls::Trust;

/// One client connection.
pub enum Wire {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<chat_tls::Stream>),
}

impl Wire {
    /// Connects to `addr` (with TLS when `tls` says how to trust the server), waiting at
    /// most `timeout` for the connection and each later write; a TLS handshake must also
    /// end within `timeout`.
    pub fn connect(
        addr: SocketAddr,
        tls: Option<Trust>,
        timeout: Duration,
    ) -> Result<Wire, String> {
        let tcp = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // Nagle would merge the pieces of a split write; the point is not to.
        let _ = tcp.set_nodelay(true);
        tcp.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let Some(trust) = tls else {
            return Ok(Wire::Plain(tcp));
        };
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let host = addr.ip().to_string();
        let (stream, _) = chat_tls::connect(tcp, &host, trust)
            .map_err(|e| format!("cannot connect to tls://{addr}: {e}"))?;
        Ok(Wire::Tls(Box::new(stream)))
    }

    /// The TCP socket (for timeouts and socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => s.get_ref(),
        }
    }

    /// Shuts the connection down; over TLS, a write shutdown sends `close_notify` first.
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if let Wire::Tls(s) = self
            && how != Shutdown::Read
        {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        self.tcp().shutdown(how)
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(s) => chat_tls::read(s, buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(s) => {
                // One record per write, sent now: the session decides how bytes are cut.
                let n = s.write(buf)?;
                s.flush()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(s) => s.flush(),
        }
    }
}
