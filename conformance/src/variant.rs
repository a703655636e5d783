//! How a replay cuts what a client sends into `write` calls.
//!
//! A server must frame lines however TCP segments them (FRAME-1, FRAME-4: "a multi-byte
//! character split across TCP segments is not an error"). Like irctest's buffering
//! tests, every `framing: yes` session is replayed three times: each payload as one
//! write, byte by byte, and in random chunks from a seeded generator, so a failure can be
//! replayed exactly with the seed the report prints.

use std::fmt;
use std::time::Duration;

/// One way of cutting payloads into writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Each `send`/`write` payload in one write.
    Whole,
    /// Every byte in its own write.
    Bytewise,
    /// Random chunk sizes from a generator seeded with this value and the session name.
    Chunked(u64),
}

/// Payloads up to this size get a short pause between their pieces, so that the pieces
/// really reach the server as separate segments; longer ones are written back to back to
/// keep replays fast (they still arrive in many reads).
const PAUSED_UP_TO: usize = 4096;

/// The pause between pieces of a short payload.
const PAUSE: Duration = Duration::from_micros(100);

/// Largest random chunk.
const MAX_CHUNK: usize = 64;

impl Variant {
    /// The name shown in tables: `whole`, `bytewise`, `chunked`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Whole => "whole",
            Variant::Bytewise => "bytewise",
            Variant::Chunked(_) => "chunked",
        }
    }

    /// The variants a session is replayed in.
    pub fn for_session(framing: bool, seed: u64) -> Vec<Variant> {
        if framing {
            vec![Variant::Whole, Variant::Bytewise, Variant::Chunked(seed)]
        } else {
            vec![Variant::Whole]
        }
    }

    /// Cuts `payload` into the pieces to write, and the pause to make between them.
    /// `rng` carries the random state of a whole replay, so every step gets different
    /// cuts while the replay as a whole stays reproducible.
    pub fn pieces<'a>(self, payload: &'a [u8], rng: &mut SplitMix64) -> (Vec<&'a [u8]>, Duration) {
        let pause = if payload.len() <= PAUSED_UP_TO {
            PAUSE
        } else {
            Duration::ZERO
        };
        match self {
            Variant::Whole => (vec![payload], Duration::ZERO),
            Variant::Bytewise => (payload.chunks(1).collect(), pause),
            Variant::Chunked(_) => {
                let mut out = Vec::new();
                let mut rest = payload;
                while !rest.is_empty() {
                    let max = rest.len().min(MAX_CHUNK);
                    let n = 1 + rng.below(max);
                    let (head, tail) = rest.split_at(n.min(rest.len()));
                    out.push(head);
                    rest = tail;
                }
                (out, pause)
            }
        }
    }

    /// The generator for a replay of `session` in this variant.
    pub fn rng(self, session: &str) -> SplitMix64 {
        let seed = match self {
            Variant::Chunked(seed) => seed,
            _ => 0,
        };
        // FNV-1a of the name, so each session gets its own stream from one printed seed
        // whatever order or subset of sessions runs.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in session.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        SplitMix64(seed ^ h)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SplitMix64 generator: tiny, fast, and good enough to pick chunk sizes; written
/// out here so the sequence for a seed never changes with a dependency's version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_payload_in_order() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for v in [Variant::Whole, Variant::Bytewise, Variant::Chunked(7)] {
            let mut rng = v.rng("s");
            let (pieces, _) = v.pieces(&payload, &mut rng);
            assert_eq!(pieces.concat(), payload, "{v}");
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
        let mut rng = Variant::Bytewise.rng("s");
        assert_eq!(Variant::Bytewise.pieces(b"abc", &mut rng).0.len(), 3);
    }

    #[test]
    fn chunks_are_random_but_reproducible() {
        let payload = vec![b'x'; 2000];
        let cut = |seed, name| {
            let v = Variant::Chunked(seed);
            let mut rng = v.rng(name);
            v.pieces(&payload, &mut rng)
                .0
                .iter()
                .map(|p| p.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(cut(1, "a"), cut(1, "a"));
        assert_ne!(cut(1, "a"), cut(2, "a"));
        assert_ne!(cut(1, "a"), cut(1, "b"));
        let sizes = cut(1, "a");
        assert!(sizes.iter().all(|&n| (1..=MAX_CHUNK).contains(&n)));
        assert!(sizes.iter().any(|&n| n != sizes[0]));
    }
}
