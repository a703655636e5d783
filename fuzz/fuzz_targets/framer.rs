//! The framer on arbitrary bytes, split at arbitrary points: no panic, bounded memory,
//! the same frames however the input is split, and every delivered line obeys FRAME-5.
#![no_main]

use chat_proto::limits::MAX_LINE_BYTES;
use chat_proto::text::is_forbidden;
use chat_proto::{Frame, Framer};
use libfuzzer_sys::fuzz_target;

fn frames(chunks: &[&[u8]]) -> Vec<Option<String>> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk, |f| {
            out.push(match f {
                Frame::Line(s) => {
                    assert!(s.len() <= MAX_LINE_BYTES);
                    assert!(!s.chars().any(is_forbidden));
                    Some(s.to_owned())
                }
                _ => None,
            })
        });
        assert!(framer.capacity() <= 2 * (MAX_LINE_BYTES + 1));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else { return };
    let whole = frames(&[input]);
    let step = usize::from(split).max(1);
    let chunks: Vec<&[u8]> = input.chunks(step).collect();
    assert_eq!(whole, frames(&chunks));
    // Every delivered line parses (or errs) without panicking.
    for line in whole.into_iter().flatten() {
        let _ = chat_proto::ClientMessage::parse(&line);
        let _ = chat_proto::Nickname::new(&line);
    }
});
