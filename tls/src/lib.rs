//! `chat-tls`: the client side of the chat's TLS (spec §19), shared by the GUI, the
//! conformance runner, the load tool and the tests, so that they all trust a server the
//! same way.
//!
//! A chat server's certificate is usually self-signed, so no certificate authority
//! vouches for it. A client trusts it by its SHA-256 fingerprint instead (TLS-7): it pins
//! the fingerprint it saw first (or was told out of band) and refuses the server when it
//! changes. [`PinVerifier`] does that inside rustls: it accepts exactly the pinned leaf
//! certificate, still checks the handshake signature against that certificate's key (so
//! the server must hold the key), and records the fingerprint it was shown, so a client
//! can name it in its warning or pin it on first use. Names and dates are not checked:
//! the pin is the trust. [`Trust::Any`] (`--insecure` in the tools) accepts any
//! certificate and only records it; it is for tests against throw-away servers.
//!
//! TLS 1.3 only and no ALPN, like the server (TLS-2), with rustls's *ring* provider.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    StreamOwned,
};
use thiserror::Error;

pub use chat_proto::Fingerprint;
pub use rustls;

/// The URL scheme that selects TLS in a server address (`tls://host:port`, TLS-1).
pub const SCHEME: &str = "tls://";

/// Splits `tls://host:port` into `(true, "host:port")`; anything else is `(false, s)`.
pub fn split_scheme(s: &str) -> (bool, &str) {
    let t = s.trim();
    match t.get(..SCHEME.len()) {
        Some(p) if p.eq_ignore_ascii_case(SCHEME) => (true, t.get(SCHEME.len()..).unwrap_or("")),
        _ => (false, t),
    }
}

/// TLS-3: SHA-256 over a certificate's DER bytes.
pub fn fingerprint_of(der: &[u8]) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    for (o, d) in out.iter_mut().zip(digest.as_ref()) {
        *o = *d;
    }
    Fingerprint(out)
}

/// The crypto provider every part of the chat uses (ring; see the server's `tls.rs`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which server certificate a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only the certificate with this fingerprint (TLS-7).
    Pinned(Fingerprint),
    /// Any certificate (recorded): first use before pinning, or `--insecure` in tests.
    Any,
}

/// A rustls verifier that trusts by fingerprint (see the crate documentation).
#[derive(Debug)]
pub struct PinVerifier {
    trust: Trust,
    seen: Mutex<Option<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    /// A verifier accepting what `trust` says.
    pub fn new(trust: Trust) -> Arc<PinVerifier> {
        Arc::new(PinVerifier {
            trust,
            seen: Mutex::new(None),
            provider: provider(),
        })
    }

    /// The fingerprint of the certificate the server presented, once it has.
    pub fn seen(&self) -> Option<Fingerprint> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint_of(end_entity.as_ref());
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(got);
        match self.trust {
            Trust::Any => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(pin) if pin == got => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that trusts through `verifier` (TLS 1.3, no ALPN).
pub fn client_config(verifier: Arc<PinVerifier>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name sent as SNI for `host` (an IP address is sent as none, as TLS wants).
/// Pinning does not look at names, so any well-formed host works.
pub fn server_name(host: &str) -> ServerName<'static> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(bare.to_owned())
            .unwrap_or(ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into())),
    }
}

/// Why a TLS connection was not made.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The server presented a certificate other than the pinned one (TLS-7): it may be
    /// an impostor, or its certificate really changed.
    #[error(
        "the server's certificate changed: pinned {pinned}, presented {presented}; refusing to connect"
    )]
    Mismatch {
        /// The fingerprint pinned for this server.
        pinned: Fingerprint,
        /// The one it presented now.
        presented: Fingerprint,
    },
    /// The TLS handshake failed otherwise (not a TLS server, protocol error, timeout).
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// rustls refused the configuration (cannot happen with these settings).
    #[error("TLS setup failed: {0}")]
    Config(rustls::Error),
}

/// A blocking TLS stream over TCP, after the handshake.
pub type Stream = StreamOwned<ClientConnection, TcpStream>;

/// Runs the TLS handshake on a connected (blocking) `tcp` to `host`, trusting what
/// `trust` says. The caller's read and write timeouts on `tcp` bound it. Returns the
/// stream and the server's fingerprint.
pub fn connect(
    mut tcp: TcpStream,
    host: &str,
    trust: Trust,
) -> Result<(Stream, Fingerprint), ConnectError> {
    let verifier = PinVerifier::new(trust);
    let config = client_config(verifier.clone()).map_err(ConnectError::Config)?;
    let mut conn =
        ClientConnection::new(config, server_name(host)).map_err(ConnectError::Config)?;
    let failed = |e: io::Error| match (trust, verifier.seen()) {
        (Trust::Pinned(pinned), Some(presented)) if pinned != presented => {
            ConnectError::Mismatch { pinned, presented }
        }
        _ => ConnectError::Handshake(e),
    };
    // Bounded: each round reads or writes, and the socket's timeouts bound each call.
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(failed)?;
    }
    // Send the client's last handshake flight now, so a server that waits for it is
    // not kept waiting for the first line.
    while conn.wants_write() {
        conn.write_tls(&mut tcp).map_err(failed)?;
    }
    let presented = verifier
        .seen()
        .ok_or_else(|| failed(io::Error::other("no certificate was presented")))?;
    Ok((StreamOwned::new(conn, tcp), presented))
}

/// Reads from a TLS stream, counting a peer that closed TCP without `close_notify` as
/// the end of the stream (TLS-6), as the server does.
pub fn read(stream: &mut Stream, buf: &mut [u8]) -> io::Result<usize> {
    match stream.read(buf) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

/// Writes all of `bytes` to a TLS stream and flushes it.
pub fn write_all(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_1_scheme_selects_tls() {
        assert_eq!(
            split_scheme("tls://127.0.0.1:9443"),
            (true, "127.0.0.1:9443")
        );
        assert_eq!(split_scheme("TLS://host:1"), (true, "host:1"));
        assert_eq!(split_scheme(" 127.0.0.1:9090 "), (false, "127.0.0.1:9090"));
        assert_eq!(split_scheme("tls:/x"), (false, "tls:/x"));
        assert_eq!(split_scheme("é"), (false, "é"));
    }

    /// TLS-3: the fingerprint is SHA-256 over the certificate's DER bytes (checked
    /// against a known digest: SHA-256 of "abc").
    #[test]
    fn tls_3_fingerprint_is_sha256_of_der() {
        assert_eq!(
            fingerprint_of(b"abc").to_string(),
            "SHA256:BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn server_names_for_ips_and_hosts() {
        assert!(matches!(server_name("127.0.0.1"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]"), ServerName::IpAddress(_)));
        assert!(matches!(
            server_name("chat.example"),
            ServerName::DnsName(_)
        ));
        // Not a valid name: still usable (pinning ignores names).
        assert!(matches!(server_name("bad name!"), ServerName::IpAddress(_)));
    }
}
