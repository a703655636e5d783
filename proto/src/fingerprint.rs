//! The written form of a TLS certificate's fingerprint (spec TLS-3): `SHA256:` and the 32
//! bytes of the SHA-256 digest of the certificate's DER encoding as upper-case hex pairs
//! joined by `:`, the form `openssl x509 -noout -fingerprint -sha256` prints, so a person
//! can compare the two by eye.
//!
//! This module only writes and reads that form; hashing is the caller's (it has a
//! crypto library, proto does no I/O and has none). Reading is lenient in what a person
//! may paste: either case, with or without the `SHA256:` prefix (`sha256 Fingerprint=` as
//! openssl prints it too), with or without the colons.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// Why a text is not a fingerprint.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not a SHA-256 fingerprint (want `SHA256:` and 64 hex digits, colons optional): {0}")]
pub struct FingerprintError(String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Fingerprint, FingerprintError> {
        let bad = || FingerprintError(s.chars().take(120).collect());
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let body = ["sha256 fingerprint=", "sha256:", "sha-256:"]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let digits: Vec<u8> = body.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TLS-3: the pinned written form, and what a person may paste back.
    #[test]
    fn tls_3_written_form_round_trips() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8) * 8 + 5;
        }
        let fp = Fingerprint(bytes);
        let text = fp.to_string();
        assert_eq!(
            text,
            "SHA256:05:0D:15:1D:25:2D:35:3D:45:4D:55:5D:65:6D:75:7D:\
             85:8D:95:9D:A5:AD:B5:BD:C5:CD:D5:DD:E5:ED:F5:FD"
        );
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
        let openssl = format!("sha256 Fingerprint={}", &text[7..]);
        assert_eq!(openssl.parse::<Fingerprint>(), Ok(fp));
        let bare: String = text[7..].chars().filter(|&c| c != ':').collect();
        assert_eq!(bare.to_lowercase().parse::<Fingerprint>(), Ok(fp));
        assert!("SHA256:05:0D".parse::<Fingerprint>().is_err());
        assert!(
            format!("{}ZZ", &text[..text.len() - 2])
                .parse::<Fingerprint>()
                .is_err()
        );
        assert!("".parse::<Fingerprint>().is_err());
        // Multi-byte text never panics the parser.
        assert!("é".repeat(32).parse::<Fingerprint>().is_err());
    }
}
