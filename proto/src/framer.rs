//! The incremental line framer (spec §2): push bytes in, pull [`Frame`]s out.
//!
//! It is a push parser in the manner of `httparse`: [`Framer::advance`] consumes input
//! only up to the end of the first complete frame and says how much it took, so the
//! caller decides when to stop (e.g. to apply back-pressure) without the framer ever
//! buffering more than one line. Every input byte is looked at once by `memchr` while
//! searching for LF, and once more when the finished line is validated; nothing is
//! rescanned. Memory is bounded by the limit: an over-long line is reported as soon as
//! the limit is passed and then skipped through its LF without being stored (FRAME-3).

use memchr::memchr;

use crate::limits::MAX_LINE_BYTES;
use crate::text::has_forbidden;

/// One complete unit of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A line without its terminator (LF, or CR LF), valid UTF-8 and free of forbidden
    /// characters (FRAME-2, FRAME-5).
    Line(&'a str),
    /// A line passed the byte limit (FRAME-3). Reported once, as soon as the limit is
    /// passed; the rest of it, through the next LF, is skipped silently.
    TooLong,
    /// A line was not valid UTF-8 (FRAME-4).
    InvalidUtf8,
    /// A line held a forbidden character (FRAME-5).
    InvalidText,
}

/// An incremental, bounded line framer. See the module documentation.
#[derive(Debug, Clone)]
pub struct Framer {
    /// The current line so far: at most `max + 1` bytes (a CR may wait for its LF).
    buf: Vec<u8>,
    /// Most bytes a line may hold before its terminator.
    max: usize,
    /// Inside an over-long line already reported: skip through the next LF.
    discarding: bool,
    /// `buf` holds the line returned by the previous call; clear it before reuse.
    delivered: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// A framer for client lines, with the spec's fixed limit of
    /// [`MAX_LINE_BYTES`].
    pub fn new() -> Self {
        Framer::with_limit(MAX_LINE_BYTES)
    }

    /// A framer for lines of at most `max` bytes (clients reading server lines use
    /// [`crate::limits::MAX_SERVER_LINE_BYTES`]). Allocates nothing until bytes arrive.
    pub fn with_limit(max: usize) -> Self {
        Framer {
            buf: Vec::new(),
            max,
            discarding: false,
            delivered: false,
        }
    }

    /// The byte limit this framer enforces.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// Consumes bytes from the front of `input` up to and including the end of the first
    /// complete frame, and returns how many it consumed together with that frame. When no
    /// frame completes, all of `input` is consumed (and kept, or skipped) and the frame is
    /// `None`. Call again with the unconsumed rest until it returns `None`.
    pub fn advance(&mut self, input: &[u8]) -> (usize, Option<Frame<'_>>) {
        if self.delivered {
            self.buf.clear();
            self.delivered = false;
        }
        let mut start = 0;
        if self.discarding {
            match memchr(b'\n', input) {
                None => return (input.len(), None),
                Some(lf) => {
                    self.discarding = false;
                    start = lf + 1;
                }
            }
        }
        let rest = input.get(start..).unwrap_or_default();
        // Content plus one CR that may turn out to precede the LF (FRAME-2).
        let hold = self.max.saturating_add(1);
        match memchr(b'\n', rest) {
            Some(lf) => {
                let used = start + lf + 1;
                let piece = rest.get(..lf).unwrap_or_default();
                if self.buf.len() + piece.len() > hold {
                    self.buf.clear();
                    return (used, Some(Frame::TooLong));
                }
                self.buf.extend_from_slice(piece);
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                self.delivered = true;
                if self.buf.len() > self.max {
                    return (used, Some(Frame::TooLong));
                }
                (used, Some(classify(&self.buf)))
            }
            None => {
                let total = self.buf.len() + rest.len();
                let last = rest.last().or(self.buf.last());
                // Past `hold`, or at `hold` without a CR that an LF could still complete:
                // no continuation can make this line fit, so say so now (a never-ending
                // line is answered, not buffered).
                if total > hold || (total == hold && last != Some(&b'\r')) {
                    self.buf.clear();
                    self.discarding = true;
                    return (input.len(), Some(Frame::TooLong));
                }
                self.buf.extend_from_slice(rest);
                (input.len(), None)
            }
        }
    }

    /// Feeds all of `input`, calling `on_frame` for every frame completed, in order.
    pub fn push(&mut self, mut input: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        loop {
            let (used, frame) = self.advance(input);
            input = input.get(used..).unwrap_or_default();
            match frame {
                Some(frame) => on_frame(frame),
                None => break,
            }
        }
    }

    /// True while an unterminated line is pending: bytes of it are held, or an over-long
    /// line is being skipped. At end of stream such a line is dropped (FRAME-7).
    pub fn has_partial(&self) -> bool {
        self.discarding || (!self.delivered && !self.buf.is_empty())
    }

    /// The bytes of the pending unterminated line (empty when there is none, or when an
    /// over-long line is being skipped).
    pub fn partial(&self) -> &[u8] {
        if self.delivered { &[] } else { &self.buf }
    }

    /// Forgets the pending partial line, if any.
    pub fn clear_partial(&mut self) {
        self.buf.clear();
        self.delivered = false;
        self.discarding = false;
    }

    /// Bytes of heap this framer holds (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

fn classify(line: &[u8]) -> Frame<'_> {
    match std::str::from_utf8(line) {
        Err(_) => Frame::InvalidUtf8,
        Ok(s) if has_forbidden(s) => Frame::InvalidText,
        Ok(s) => Frame::Line(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copy of a frame, to collect results.
    #[derive(Debug, PartialEq, Eq)]
    enum F {
        L(String),
        Long,
        Utf8,
        Text,
    }

    fn collect(framer: &mut Framer, input: &[u8]) -> Vec<F> {
        let mut out = Vec::new();
        framer.push(input, |f| {
            out.push(match f {
                Frame::Line(s) => F::L(s.to_owned()),
                Frame::TooLong => F::Long,
                Frame::InvalidUtf8 => F::Utf8,
                Frame::InvalidText => F::Text,
            })
        });
        out
    }

    #[test]
    fn frame_2_lf_and_crlf() {
        let mut f = Framer::new();
        assert_eq!(
            collect(&mut f, b"a\nb\r\n\nc"),
            vec![F::L("a".into()), F::L("b".into()), F::L("".into())]
        );
        assert!(f.has_partial());
        assert_eq!(f.partial(), b"c");
        assert_eq!(collect(&mut f, b"\r"), vec![]);
        assert_eq!(collect(&mut f, b"\n"), vec![F::L("c".into())]);
        assert!(!f.has_partial());
    }

    #[test]
    fn frame_2_only_one_cr_dropped() {
        let mut f = Framer::new();
        assert_eq!(collect(&mut f, b"a\r\r\n"), vec![F::Text]);
        assert_eq!(collect(&mut f, b"a\rb\n"), vec![F::Text]);
    }

    #[test]
    fn frame_3_limit_exact_and_cr_not_counted() {
        let mut f = Framer::new();
        let mut line = vec![b'x'; MAX_LINE_BYTES];
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            collect(&mut f, &line),
            vec![F::L("x".repeat(MAX_LINE_BYTES))]
        );
        let mut line = vec![b'x'; MAX_LINE_BYTES + 1];
        line.push(b'\n');
        assert_eq!(collect(&mut f, &line), vec![F::Long]);
        assert_eq!(collect(&mut f, b"ok\n"), vec![F::L("ok".into())]);
    }

    #[test]
    fn frame_3_reported_at_byte_1025_without_waiting_for_lf() {
        let mut f = Framer::new();
        assert_eq!(collect(&mut f, &[b'x'; MAX_LINE_BYTES]), vec![]);
        assert_eq!(collect(&mut f, b"y"), vec![F::Long]);
        // The rest of the line is skipped without being stored.
        for _ in 0..100 {
            assert_eq!(collect(&mut f, &[b'z'; 4096]), vec![]);
        }
        assert!(f.capacity() <= 2 * (MAX_LINE_BYTES + 1));
        assert_eq!(collect(&mut f, b"tail\nnext\n"), vec![F::L("next".into())]);
    }

    #[test]
    fn frame_3_cr_at_byte_1025_waits_for_next_byte() {
        let mut f = Framer::new();
        let mut line = vec![b'x'; MAX_LINE_BYTES];
        line.push(b'\r');
        assert_eq!(collect(&mut f, &line), vec![]);
        assert_eq!(collect(&mut f, b"q"), vec![F::Long]);
        assert_eq!(collect(&mut f, b"\n"), vec![]);
        assert_eq!(collect(&mut f, b"ok\n"), vec![F::L("ok".into())]);
    }

    #[test]
    fn frame_3_too_long_wins_over_invalid_utf8() {
        let mut f = Framer::new();
        let mut line = vec![0xff; MAX_LINE_BYTES + 1];
        line.push(b'\n');
        assert_eq!(collect(&mut f, &line), vec![F::Long]);
    }

    #[test]
    fn frame_4_invalid_utf8_dropped_connection_usable() {
        let mut f = Framer::new();
        assert_eq!(
            collect(&mut f, b"\xff\xfe\nok\n\xe2\x82\n"),
            vec![F::Utf8, F::L("ok".into()), F::Utf8]
        );
    }

    #[test]
    fn frame_4_strict_rfc_3629() {
        let mut f = Framer::new();
        // Overlong `/`, overlong NUL, a surrogate, above U+10FFFF, a lone continuation,
        // a truncated sequence, and bytes that never start UTF-8.
        for bad in [
            &b"\xc0\xaf"[..],
            b"\xc0\x80",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xed\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\x80",
            b"\xe2\x82",
            b"\xfe",
        ] {
            let mut line = bad.to_vec();
            line.push(b'\n');
            assert_eq!(collect(&mut f, &line), vec![F::Utf8], "{bad:x?}");
        }
        // The largest scalar value and the last before the surrogates are fine.
        assert_eq!(
            collect(&mut f, "\u{10ffff}\u{d7ff}\n".as_bytes()),
            vec![F::L("\u{10ffff}\u{d7ff}".into())]
        );
    }

    #[test]
    fn frame_4_multibyte_split_across_pushes() {
        let mut f = Framer::new();
        let bytes = "héllo €\n".as_bytes();
        let mut out = Vec::new();
        for b in bytes {
            out.extend(collect(&mut f, std::slice::from_ref(b)));
        }
        assert_eq!(out, vec![F::L("héllo €".into())]);
    }

    #[test]
    fn frame_5_forbidden_characters() {
        let mut f = Framer::new();
        assert_eq!(
            collect(
                &mut f,
                "a\tb\nx\u{1b}[31m\n\u{202E}abc\nline\u{2028}sep\n".as_bytes()
            ),
            vec![F::L("a\tb".into()), F::Text, F::Text, F::Text]
        );
    }

    #[test]
    fn advance_stops_after_one_frame() {
        let mut f = Framer::new();
        let input = b"one\ntwo\n";
        let (used, frame) = f.advance(input);
        assert_eq!(used, 4);
        assert_eq!(frame, Some(Frame::Line("one")));
        let (used, frame) = f.advance(&input[4..]);
        assert_eq!(used, 4);
        assert_eq!(frame, Some(Frame::Line("two")));
        assert_eq!(f.advance(b""), (0, None));
    }

    #[test]
    fn no_allocation_before_input() {
        assert_eq!(Framer::new().capacity(), 0);
    }
}
