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

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Appends the payload, padded so that it is at least `size` bytes, to `out`.
pub fn encode(out: &mut Vec<u8>, p: Payload, size: usize) {
    use std::io::Write;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "~L{:x}.{:x}.{:x}.", p.sender, p.seq, p.sent_ns);
    let fixed = out.len() - start + 9; // '#' + 8 hex digits
    let pad = size.saturating_sub(fixed);
    out.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    let sum = fnv1a(out.get(start..).unwrap_or_default());
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
    let sum = std::str::from_utf8(sum.get(1..).ok_or(Corrupt)?).map_err(|_| Corrupt)?;
    let sum = u32::from_str_radix(sum, 16).map_err(|_| Corrupt)?;
    let covered = text.get(..MARKER.len() + hash).ok_or(Corrupt)?;
    if fnv1a(covered) != sum {
        return Err(Corrupt);
    }
    let fields = std::str::from_utf8(fields).map_err(|_| Corrupt)?;
    let mut it = fields.split('.');
    let mut next = || it.next().ok_or(Corrupt);
    let sender = u32::from_str_radix(next()?, 16).map_err(|_| Corrupt)?;
    let seq = u64::from_str_radix(next()?, 16).map_err(|_| Corrupt)?;
    let sent_ns = u64::from_str_radix(next()?, 16).map_err(|_| Corrupt)?;
    let pad = next()?;
    if !pad
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'a' + (i % 26) as u8)
    {
        return Err(Corrupt);
    }
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
