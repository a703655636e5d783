//! The framer gives the same frames however the input is split (FRAME-1..FRAME-8):
//! whole, byte by byte, and in arbitrary chunks, checked against a simple, obviously
//! correct model that sees the whole input at once.

#![cfg(test)]

use chat_proto::limits::MAX_LINE_BYTES;
use chat_proto::text::is_forbidden;
use chat_proto::{Frame, Framer};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum F {
    Line(String),
    TooLong,
    Utf8,
    Text,
}

fn own(f: Frame<'_>) -> F {
    match f {
        Frame::Line(s) => F::Line(s.to_owned()),
        Frame::TooLong => F::TooLong,
        Frame::InvalidUtf8 => F::Utf8,
        Frame::InvalidText => F::Text,
    }
}

/// The model: split on LF, judge each complete line whole (FRAME-2, -3, -4, -5, -8); the
/// unterminated tail yields `TooLong` only when no LF could still make it fit (FRAME-3)
/// and is otherwise dropped (FRAME-7).
fn model(input: &[u8]) -> Vec<F> {
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let tail = pieces.pop().unwrap_or_default();
    for piece in pieces {
        let line = piece.strip_suffix(b"\r").unwrap_or(piece);
        out.push(if line.len() > MAX_LINE_BYTES {
            F::TooLong
        } else {
            match std::str::from_utf8(line) {
                Err(_) => F::Utf8,
                Ok(s) if s.chars().any(is_forbidden) => F::Text,
                Ok(s) => F::Line(s.to_owned()),
            }
        });
    }
    if tail.len() > MAX_LINE_BYTES + 1
        || (tail.len() == MAX_LINE_BYTES + 1 && tail.last() != Some(&b'\r'))
    {
        out.push(F::TooLong);
    }
    out
}

fn run(chunks: &[&[u8]]) -> Vec<F> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for c in chunks {
        framer.push(c, |f| out.push(own(f)));
        assert!(
            framer.capacity() <= 2 * (MAX_LINE_BYTES + 1),
            "memory bounded by the limit"
        );
    }
    out
}

/// Interesting client input: normal lines, CRLF, exact-limit and over-limit lines,
/// invalid UTF-8, control characters, split multi-byte characters, bare CRs.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,40}".prop_map(|s| s.into_bytes()),
        2 => "[a-zé€😀 ]{0,20}".prop_map(|s| s.into_bytes()),
        2 => Just(b"\n".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(vec![0xff]),
        1 => Just(vec![0xe2, 0x82]),
        1 => Just(b"\x1b[2J".to_vec()),
        1 => Just("\u{202E}".as_bytes().to_vec()),
        1 => (MAX_LINE_BYTES - 2..MAX_LINE_BYTES + 3).prop_map(|n| vec![b'x'; n]),
        1 => (2000usize..5000).prop_map(|n| vec![b'y'; n]),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// FRAME-1..FRAME-8 with the whole input in one push.
    #[test]
    fn frame_1_whole(input in input()) {
        prop_assert_eq!(run(&[&input]), model(&input));
    }

    /// FRAME-1..FRAME-8 with one byte per push.
    #[test]
    fn frame_1_byte_by_byte(input in input()) {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(run(&chunks), model(&input));
    }

    /// FRAME-1..FRAME-8 with random chunk boundaries.
    #[test]
    fn frame_1_random_chunks(input in input(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20)) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.push(0);
        points.push(input.len());
        points.sort_unstable();
        points.dedup();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &input[w[0]..w[1]]).collect();
        prop_assert_eq!(run(&chunks), model(&input));
    }

    /// Arbitrary bytes never panic and never grow the framer past its bound.
    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..6000), chunk in 1usize..700) {
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let _ = run(&chunks);
    }
}

/// FRAME-3: a 5000-byte line costs one answer and leaves the next line intact.
#[test]
fn frame_3_five_thousand_bytes_then_normal_line() {
    let mut input = vec![b'a'; 5000];
    input.extend_from_slice(b"\nhello\n");
    assert_eq!(run(&[&input]), vec![F::TooLong, F::Line("hello".into())]);
}

/// FRAME-7: an unterminated line is never delivered.
#[test]
fn frame_7_partial_line_not_delivered() {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    framer.push(b"complete\nhalf a li", |f| out.push(own(f)));
    assert_eq!(out, vec![F::Line("complete".into())]);
    assert!(framer.has_partial());
}

/// FRAME-8: too long wins over invalid UTF-8 and forbidden characters.
#[test]
fn frame_8_precedence() {
    let mut a = vec![0xff; MAX_LINE_BYTES + 10];
    a.push(b'\n');
    let mut b = vec![0x07; MAX_LINE_BYTES + 10];
    b.push(b'\n');
    assert_eq!(run(&[&a, &b]), vec![F::TooLong, F::TooLong]);
    assert_eq!(run(&[b"\xff\x07\n"]), vec![F::Utf8]);
}
