//! The body of every load message: who sent it, its sequence number, when it was sent,
//! padding to the requested size, and a checksum over all of that, so a receiver can tell
//! a lost, repeated, reordered or corrupted message from a good one.
//!
//! Layout (ASCII): `~L<sender>.<seq>.<sent_ns>.<padding>#<fnv32>`, numbers in hex.

/// Marks the start of a payload inside whatever line a server delivers it in.
pub const MARKER: &[u8] = b"~L";

/// A payload as decoded by a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub sender: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// A checksum over the payload, 8 bytes at a time (cheap enough that checking every
/// delivery does not dominate a run; any changed byte changes it).
fn checksum(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    (h ^ (h >> 32)) as u32
}

/// The padding: `abc...z` repeated, so a receiver compares it in one go.
fn pad_pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| (0..4096).map(|i| b'a' + (i % 26) as u8).collect())
}

/// Parses 1 to 16 lower-case hex digits.
fn hex(digits: &[u8]) -> Result<u64, Corrupt> {
    if digits.is_empty() || digits.len() > 16 {
        return Err(Corrupt);
    }
    let mut v: u64 = 0;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return Err(Corrupt),
        };
        v = (v << 4) | u64::from(n);
    }
    Ok(v)
}

/// Parses hex digits up to `stop`; returns the value and the rest after `stop`.
fn hex_field(input: &[u8], stop: u8) -> Result<(u64, &[u8]), Corrupt> {
    let end = memchr::memchr(stop, input).ok_or(Corrupt)?;
    let (digits, rest) = input.split_at(end);
    Ok((hex(digits)?, rest.get(1..).unwrap_or_default()))
}

/// Appends the payload, padded so that it is at least `size` bytes, to `out`.
pub fn encode(out: &mut Vec<u8>, p: Payload, size: usize) {
    use std::io::Write;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "~L{:x}.{:x}.{:x}.", p.sender, p.seq, p.sent_ns);
    let fixed = out.len() - start + 9; // '#' + 8 hex digits
    let pad = size.saturating_sub(fixed).min(pad_pattern().len());
    out.extend_from_slice(pad_pattern().get(..pad).unwrap_or_default());
    let sum = checksum(out.get(start..).unwrap_or_default());
    let _ = write!(out, "#{sum:08x}");
}

/// Why a line that carries a marker is not an intact payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Decodes the payload that starts at the marker in `text` and runs to its end.
pub fn decode(text: &[u8]) -> Result<Payload, Corrupt> {
    let body = text.strip_prefix(MARKER).ok_or(Corrupt)?;
    let hash = memchr::memrchr(b'#', body).ok_or(Corrupt)?;
    let (fields, sum) = body.split_at(hash);
    let sum = sum.get(1..).ok_or(Corrupt)?;
    if sum.len() != 8 {
        return Err(Corrupt);
    }
    let sum = hex(sum)?;
    let covered = text.get(..MARKER.len() + hash).ok_or(Corrupt)?;
    if u64::from(checksum(covered)) != sum {
        return Err(Corrupt);
    }
    let (sender, fields) = hex_field(fields, b'.')?;
    let (seq, fields) = hex_field(fields, b'.')?;
    let (sent_ns, pad) = hex_field(fields, b'.')?;
    if pad_pattern().get(..pad.len()) != Some(pad) {
        return Err(Corrupt);
    }
    let sender = u32::try_from(sender).map_err(|_| Corrupt)?;
    Ok(Payload {
        sender,
        seq,
        sent_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        let p = Payload {
            sender: 3,
            seq: 123_456,
            sent_ns: 987_654_321,
        };
        for size in [0, 10, 50, 200] {
            let mut out = Vec::new();
            encode(&mut out, p, size);
            assert!(out.len() >= size);
            if size >= 40 {
                assert_eq!(out.len(), size);
            }
            assert_eq!(decode(&out), Ok(p));
        }
    }

    #[test]
    fn any_change_is_caught() {
        let p = Payload {
            sender: 1,
            seq: 2,
            sent_ns: 3,
        };
        let mut out = Vec::new();
        encode(&mut out, p, 60);
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            assert!(
                decode(&bad).is_err() || decode(&bad) != Ok(p),
                "flip at {i}"
            );
        }
        assert_eq!(decode(&out[..out.len() - 1]), Err(Corrupt));
    }
}
