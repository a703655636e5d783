//! A load client's connection: plain TCP, or TLS (`--tls`, spec §19) through
//! futures-rustls on the same executor. The server's certificate is accepted as it comes
//! and not pinned (`chat_tls::Trust::Any`): the load tool only targets loopback servers
//! it was pointed at, and measures them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;

/// One client connection.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The TLS client configuration of a `--tls` run.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>> {
    chat_tls::client_config(chat_tls::PinVerifier::new(chat_tls::Trust::Any))
        .context("TLS client configuration")
}

impl Stream {
    /// Connects to `target`, with TLS when `tls` is given.
    pub async fn connect(
        target: SocketAddr,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Stream> {
        let tcp = TcpStream::connect(target)
            .await
            .with_context(|| format!("connect {target}"))?;
        tcp.set_nodelay(true)?;
        let Some(config) = tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = chat_tls::server_name(&target.ip().to_string());
        let tls = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {target}"))?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// A reading half and a writing half that can be used from two tasks at once.
    pub fn split(
        self,
    ) -> (
        Box<dyn AsyncRead + Send + Unpin>,
        Box<dyn AsyncWrite + Send + Unpin>,
    ) {
        match self {
            // Plain TCP clones without a lock, as before TLS existed.
            Stream::Plain(s) => (Box::new(s.clone()), Box::new(s)),
            Stream::Tls(s) => {
                let (r, w) = futures_lite::io::split(s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => match Pin::new(s.as_mut()).poll_read(cx, buf) {
                // A server that closes TCP without close_notify has ended the stream.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(0))
                }
                other => other,
            },
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
