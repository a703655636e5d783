//! TLS (spec §19): the server's certificate and key ([`Identity`]), the TLS handshake of
//! an accepted connection, and [`TlsTransport`], the [`Transport`] the connection's tasks
//! use after it. The chat protocol inside is unchanged (TLS-6).
//!
//! - rustls with the *ring* crypto provider: it builds with the system C compiler alone
//!   (aws-lc-rs, rustls's default, may want cmake and more), which keeps a clean CI
//!   build on two cores short, and rcgen uses ring too. TLS 1.3 only (TLS-2): every
//!   maintained client library speaks it, and it leaves out the 1.2 cipher zoo.
//! - The handshake runs in its own task under the limits a plain handshake has: it holds
//!   the connection's per-address handshake place and its slot under `--max-clients`, and
//!   must finish within `--handshake-timeout` of the accept (which then also bounds the
//!   nickname handshake after it, TLS-4). Garbage or plain text gets a clean close and a
//!   log line (TLS-5).
//! - After the handshake both tasks share one rustls connection behind a mutex, each
//!   holding it only inside one poll (never across a wait). The reader only reads and
//!   the writer only writes, so each registers its waker for its own direction of the
//!   socket, as on plain TCP.
//! - rustls copies what the writer hands it into its own buffer of encrypted records.
//!   That buffer is capped at [`TLS_BUFFER_LIMIT`]: the log stays the only place where
//!   lines wait for slow readers (and what lag and `--log-budget` judge), so a TLS client
//!   that stops reading holds at most this much more than a plain one.

use std::fmt;
use std::fs;
use std::io::{self, IoSlice, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use futures_rustls::server::TlsStream;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

pub use chat_proto::Fingerprint;
pub use chat_tls::fingerprint_of;

use crate::transport::Transport;

/// Most bytes of encrypted output rustls holds for one connection beyond the socket's
/// own buffer (one full TLS record and its overhead).
pub const TLS_BUFFER_LIMIT: usize = 16 * 1024 + 512;

/// The TLS listener's settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address of the TLS listener (TLS-1: 127.0.0.1:9443 unless configured).
    pub listen: std::net::SocketAddr,
    /// The certificate and key it presents.
    pub identity: Identity,
}

/// What is wrong with a certificate or key, said so that the person who started the
/// server can fix it.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The certificate file cannot be read.
    #[error("cannot read the TLS certificate file {}: {source}", path.display())]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The certificate file holds no certificate, or broken PEM.
    #[error(
        "the TLS certificate file {} holds no usable PEM certificate (`-----BEGIN CERTIFICATE-----`): {why}",
        path.display()
    )]
    BadCert {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        why: String,
    },
    /// The key file cannot be read.
    #[error("cannot read the TLS key file {}: {source}", path.display())]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The key file holds no private key, or broken PEM.
    #[error(
        "the TLS key file {} holds no usable PEM private key (PKCS#8, RSA or EC): {why}",
        path.display()
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        why: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the private key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the pair for another reason (an unsupported key type, ...).
    #[error("the TLS certificate or key cannot be used: {0}")]
    Rejected(rustls::Error),
    /// rcgen failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// A generated certificate or key could not be saved.
    #[error("cannot save the generated {what} to {}: {source}", path.display())]
    Save {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Only one of the two files of a saved self-signed identity exists.
    #[error(
        "--tls-self-signed: {} exists but {} does not; give both files (to reuse them) or neither (to create them)",
        present.display(),
        missing.display()
    )]
    HalfSaved {
        /// The one that exists.
        present: PathBuf,
        /// The one that does not.
        missing: PathBuf,
    },
}

/// Where an identity came from, for the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--tls-cert` and `--tls-key`.
    Files,
    /// `--tls-self-signed` alone: new at every start, so clients that pinned it see a
    /// change after a restart.
    Ephemeral,
    /// `--tls-self-signed` with files: created there on the first start (`true`), reused
    /// after (`false`).
    Saved {
        /// Created at this start.
        created: bool,
    },
}

/// The certificate and key the TLS listener presents, ready for rustls.
#[derive(Clone)]
pub struct Identity {
    config: Arc<ServerConfig>,
    fingerprint: Fingerprint,
    origin: Origin,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint.to_string())
            .field("origin", &self.origin)
            .finish()
    }
}

impl Identity {
    /// Loads a PEM certificate chain (leaf first) and its PEM private key (TLS-2).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let cert_pem = fs::read(cert).map_err(|source| TlsError::ReadCert {
            path: cert.to_owned(),
            source,
        })?;
        let key_pem = fs::read(key).map_err(|source| TlsError::ReadKey {
            path: key.to_owned(),
            source,
        })?;
        let bad_cert = |why: String| TlsError::BadCert {
            path: cert.to_owned(),
            why,
        };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_cert(e.to_string()))?;
        if chain.is_empty() {
            return Err(bad_cert("no certificate in it".into()));
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
            path: key.to_owned(),
            why: e.to_string(),
        })?;
        Identity::new(chain, private, Origin::Files).map_err(|e| match e {
            TlsError::Rejected(rustls::Error::InconsistentKeys(_)) => TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            e => e,
        })
    }

    /// A new self-signed certificate (ECDSA P-256) for `localhost`, the loopback
    /// addresses and `host` (TLS-2). With `save`, the pair is kept in those two files:
    /// reused when both exist, created when neither does.
    pub fn self_signed(
        host: Option<IpAddr>,
        save: Option<(&Path, &Path)>,
    ) -> Result<Identity, TlsError> {
        if let Some((cert, key)) = save {
            match (cert.exists(), key.exists()) {
                (true, true) => {
                    let mut id = Identity::from_pem_files(cert, key)?;
                    id.origin = Origin::Saved { created: false };
                    return Ok(id);
                }
                (true, false) | (false, true) => {
                    let (present, missing) = if cert.exists() {
                        (cert, key)
                    } else {
                        (key, cert)
                    };
                    return Err(TlsError::HalfSaved {
                        present: present.to_owned(),
                        missing: missing.to_owned(),
                    });
                }
                (false, false) => {}
            }
        }
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        if let Some(ip) = host.filter(|ip| !ip.is_unspecified() && !ip.is_loopback()) {
            names.push(ip.to_string());
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let origin = match save {
            Some((cert, key)) => {
                // The key first, readable by its owner only.
                write_new(key, made.signing_key.serialize_pem().as_bytes(), 0o600).map_err(
                    |source| TlsError::Save {
                        what: "key",
                        path: key.to_owned(),
                        source,
                    },
                )?;
                write_new(cert, made.cert.pem().as_bytes(), 0o644).map_err(|source| {
                    TlsError::Save {
                        what: "certificate",
                        path: cert.to_owned(),
                        source,
                    }
                })?;
                Origin::Saved { created: true }
            }
            None => Origin::Ephemeral,
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        Identity::new(vec![made.cert.der().clone()], key, origin)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        origin: Origin,
    ) -> Result<Identity, TlsError> {
        let fingerprint = chain
            .first()
            .map(|leaf| fingerprint_of(leaf.as_ref()))
            .ok_or_else(|| TlsError::Generate("empty certificate chain".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Rejected)?;
        // TLS-2: no session tickets (chat connections are long-lived; a reconnect does a
        // full handshake), no ALPN.
        config.send_tls13_tickets = 0;
        config.alpn_protocols = Vec::new();
        Ok(Identity {
            config: Arc::new(config),
            fingerprint,
            origin,
        })
    }

    /// The SHA-256 fingerprint of the leaf certificate (TLS-3).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Where it came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The acceptor for the listener.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// Creates `path` (failing if it exists) with `mode`, and writes `bytes` to it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The accepted socket as the byte stream under rustls (shared with the listener's and
/// the tasks' other handles on it).
#[derive(Debug)]
pub(crate) struct SharedTcp(Arc<Async<TcpStream>>);

impl futures_lite::AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl futures_lite::AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.0.get_ref().shutdown(Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}

/// Runs the server side of a TLS handshake on `tcp`. The caller bounds it in time.
pub(crate) async fn accept(
    acceptor: &TlsAcceptor,
    tcp: Arc<Async<TcpStream>>,
) -> io::Result<Arc<TlsTransport>> {
    let stream = acceptor
        .accept_with(SharedTcp(tcp.clone()), |conn| {
            conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        })
        .await?;
    Ok(Arc::new(TlsTransport {
        tcp,
        tls: Mutex::new(stream),
    }))
}

/// A connection after its TLS handshake: the [`Transport`] of its reader and writer.
#[derive(Debug)]
pub struct TlsTransport {
    tcp: Arc<Async<TcpStream>>,
    tls: Mutex<TlsStream<SharedTcp>>,
}

impl TlsTransport {
    fn lock(&self) -> MutexGuard<'_, TlsStream<SharedTcp>> {
        // rustls reports its own errors; a panic elsewhere leaves nothing half-updated
        // that a later call could trip on in a harmful way.
        self.tls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends what rustls holds without waiting and without registering a waker (so the other
/// task's registration on the socket is left alone): a non-blocking `write` that stops at
/// `WouldBlock`.
fn push_out(tls: &mut TlsStream<SharedTcp>) {
    let (io, session) = tls.get_mut();
    let mut sock = io.0.get_ref();
    while session.wants_write() {
        match session.write_tls(&mut sock) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

impl Transport for TlsTransport {
    const RAW: bool = false;

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut tls = self.lock();
        match Pin::new(&mut *tls).poll_read(cx, buf) {
            // TLS-6: a peer that closes TCP without `close_notify` has ended its stream;
            // an unterminated last line is dropped (FRAME-7), so a cut cannot forge one.
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
            Poll::Ready(Ok(n)) => {
                // Reading can queue output of its own (a TLS 1.3 key update's answer).
                if tls.get_ref().1.wants_write() {
                    push_out(&mut tls);
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // rustls takes the slices (up to its buffer limit) into records, then sends them
        // in one vectored write.
        Pin::new(&mut *self.lock()).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut tls = self.lock();
        if !tls.get_ref().1.wants_write() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *tls).poll_flush(cx)
    }

    fn write_now(&self, bufs: &[IoSlice<'_>]) {
        let mut tls = self.lock();
        let _ = tls.get_mut().1.writer().write_vectored(bufs);
        push_out(&mut tls);
    }

    fn shutdown(&self, how: Shutdown) {
        if how != Shutdown::Read {
            let mut tls = self.lock();
            tls.get_mut().1.send_close_notify();
            push_out(&mut tls);
        }
        let _ = self.tcp.get_ref().shutdown(how);
    }

    fn socket(&self) -> &TcpStream {
        self.tcp.get_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chat-tls-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// TLS-2: a self-signed identity saved to files is reused at the next start (same
    /// fingerprint), and its key file is private to its owner.
    #[test]
    fn tls_2_saved_self_signed_is_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("saved");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let first = Identity::self_signed(None, Some((&cert, &key))).unwrap();
        assert_eq!(first.origin(), &Origin::Saved { created: true });
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = Identity::self_signed(None, Some((&cert, &key))).unwrap();
        assert_eq!(again.origin(), &Origin::Saved { created: false });
        assert_eq!(again.fingerprint(), first.fingerprint());
        let fresh = Identity::self_signed(None, None).unwrap();
        assert_ne!(fresh.fingerprint(), first.fingerprint());
        fs::remove_file(&cert).unwrap();
        assert!(matches!(
            Identity::self_signed(None, Some((&cert, &key))),
            Err(TlsError::HalfSaved { .. })
        ));
        let _ = fs::remove_dir_all(dir);
    }
}
