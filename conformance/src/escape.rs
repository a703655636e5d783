//! Backslash escapes for the payloads of session files and transcripts.
//!
//! A session file is meant to be read and written by people in a text editor, so a
//! payload is literal text except for a few escapes that make the invisible visible:
//! bytes that are not valid UTF-8 (`\xff`), control characters (`\r`, `\t`, `\x1b`),
//! characters that editors mangle or hide (`\u{202e}`, a trailing space as `\s`) and long
//! runs (`\{1025:x}` is 1025 `x` bytes). [`encode`] is the inverse of [`decode`], used
//! by the recorder and the transcripts, so what the harness prints can be pasted back
//! into a session file.

use thiserror::Error;

/// Largest repeat count `\{N:...}` accepts; a bound so that a typo cannot ask for
/// gigabytes.
pub const MAX_REPEAT: usize = 16 * 1024 * 1024;

/// A payload that is not well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    /// A backslash at the very end.
    #[error("dangling backslash at the end of the payload")]
    Dangling,
    /// `\q` or another letter that is no escape.
    #[error("unknown escape `\\{0}` (known: \\\\ \\r \\n \\t \\s \\xHH \\u{{HEX}} \\{{N:unit}})")]
    Unknown(char),
    /// `\x` not followed by two hex digits.
    #[error("`\\x` needs two hex digits")]
    BadHex,
    /// `\u{...}` that is not a Unicode scalar value in hex.
    #[error("`\\u{{...}}` needs a Unicode scalar value in hex")]
    BadUnicode,
    /// `\{N:unit}` malformed or too large.
    #[error("`\\{{N:unit}}` needs a count 1..={MAX_REPEAT} (in total), a `:` and a closing `}}`")]
    BadRepeat,
}

/// Decodes a payload into the bytes it stands for.
pub fn decode(s: &str) -> Result<Vec<u8>, EscapeError> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    decode_into(&mut chars, &mut out, false)?;
    Ok(out)
}

/// Decodes until the end of input, or (when `in_repeat`) until an unescaped `}`, which
/// is consumed.
fn decode_into(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut Vec<u8>,
    in_repeat: bool,
) -> Result<(), EscapeError> {
    while let Some(c) = chars.next() {
        if in_repeat && c == '}' {
            return Ok(());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or(EscapeError::Dangling)?;
        match e {
            '\\' => out.push(b'\\'),
            'r' => out.push(b'\r'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            's' => out.push(b' '),
            '}' => out.push(b'}'),
            'x' => {
                let hi = chars
                    .next()
                    .and_then(|c| c.to_digit(16))
                    .ok_or(EscapeError::BadHex)?;
                let lo = chars
                    .next()
                    .and_then(|c| c.to_digit(16))
                    .ok_or(EscapeError::BadHex)?;
                // Two hex digits are at most 255.
                out.push(u8::try_from(hi * 16 + lo).map_err(|_| EscapeError::BadHex)?);
            }
            'u' => {
                if chars.next() != Some('{') {
                    return Err(EscapeError::BadUnicode);
                }
                let mut hex = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(h) if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                        _ => return Err(EscapeError::BadUnicode),
                    }
                }
                let cp = u32::from_str_radix(&hex, 16).map_err(|_| EscapeError::BadUnicode)?;
                let ch = char::from_u32(cp).ok_or(EscapeError::BadUnicode)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            '{' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some(':') => break,
                        Some(d) if d.is_ascii_digit() && digits.len() < 8 => digits.push(d),
                        _ => return Err(EscapeError::BadRepeat),
                    }
                }
                let count: usize = digits.parse().map_err(|_| EscapeError::BadRepeat)?;
                let mut unit = Vec::new();
                decode_into(chars, &mut unit, true)?;
                let total = count
                    .checked_mul(unit.len())
                    .ok_or(EscapeError::BadRepeat)?;
                if count == 0 || unit.is_empty() || total > MAX_REPEAT {
                    return Err(EscapeError::BadRepeat);
                }
                for _ in 0..count {
                    out.extend_from_slice(&unit);
                }
            }
            other => return Err(EscapeError::Unknown(other)),
        }
    }
    if in_repeat {
        Err(EscapeError::BadRepeat)
    } else {
        Ok(())
    }
}

/// Shortest run of one character written as `\{N:c}` by [`encode`].
const RUN_MIN: usize = 16;

/// Encodes bytes as a payload that [`decode`] turns back into the same bytes.
///
/// Printable text stays as it is; everything an editor or a terminal could hide or
/// mangle is escaped, as is a space at either end (editors strip trailing blanks).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    let mut first = true;
    // Spaces from here on form the trailing run that editors would strip.
    let trail = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b' ').count();
    while !rest.is_empty() {
        let (ch, len) = match next_char(rest) {
            Some(pair) => pair,
            None => {
                // Not valid UTF-8 here: one raw byte, escaped.
                let b = rest.first().copied().unwrap_or_default();
                let run = rest.iter().take_while(|&&x| x == b).count();
                if run >= RUN_MIN {
                    out.push_str(&format!("\\{{{run}:\\x{b:02x}}}"));
                    rest = rest.get(run..).unwrap_or_default();
                } else {
                    out.push_str(&format!("\\x{b:02x}"));
                    rest = rest.get(1..).unwrap_or_default();
                }
                first = false;
                continue;
            }
        };
        let unit = rest.get(..len).unwrap_or_default();
        let mut run = 1;
        while rest.get(run * len..(run + 1) * len) == Some(unit) {
            run += 1;
        }
        let in_trail = bytes.len() - rest.len() >= trail;
        if run >= RUN_MIN {
            out.push_str(&format!(
                "\\{{{run}:{}}}",
                escape_char(ch, false, false).replace('}', "\\}")
            ));
            rest = rest.get(run * len..).unwrap_or_default();
        } else {
            out.push_str(&escape_char(ch, first, in_trail));
            rest = rest.get(len..).unwrap_or_default();
        }
        first = false;
    }
    out
}

/// The first character of `bytes` and its length, when `bytes` starts with valid UTF-8.
fn next_char(bytes: &[u8]) -> Option<(char, usize)> {
    let head = bytes.get(..bytes.len().min(4)).unwrap_or_default();
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(head.get(..e.valid_up_to()).unwrap_or_default()).ok()?,
    };
    let ch = valid.chars().next()?;
    Some((ch, ch.len_utf8()))
}

fn escape_char(ch: char, first: bool, trailing: bool) -> String {
    match ch {
        '\\' => "\\\\".into(),
        '\r' => "\\r".into(),
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        ' ' if first || trailing => "\\s".into(),
        c if (c as u32) < 0x80 && c.is_control() => format!("\\x{:02x}", c as u32),
        c if chat_proto::text::is_forbidden(c) || is_invisible(c) => {
            format!("\\u{{{:x}}}", c as u32)
        }
        c => c.to_string(),
    }
}

/// Characters that are allowed on the wire but invisible or confusable in an editor
/// (spaces of other widths, zero-width characters, combining accents that merge with the
/// letter before them); escaped so a reader sees them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00a0}'
            | '\u{00ad}'
            | '\u{0300}'..='\u{036f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202f}'
            | '\u{2060}'..='\u{2065}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_escape() {
        assert_eq!(decode("a\\\\b").unwrap(), b"a\\b");
        assert_eq!(decode("hi\\r").unwrap(), b"hi\r");
        assert_eq!(decode("\\t\\s\\n").unwrap(), b"\t \n");
        assert_eq!(decode("\\xff\\x00\\x1B").unwrap(), b"\xff\x00\x1b");
        assert_eq!(decode("\\u{202e}").unwrap(), "\u{202e}".as_bytes());
        assert_eq!(decode("\\{3:ab}c").unwrap(), b"abababc");
        assert_eq!(decode("\\{2:\\xff\\}}").unwrap(), b"\xff}\xff}");
        assert_eq!(decode("é €").unwrap(), "é €".as_bytes());
    }

    #[test]
    fn rejects_malformed_escapes() {
        assert_eq!(decode("x\\"), Err(EscapeError::Dangling));
        assert_eq!(decode("\\q"), Err(EscapeError::Unknown('q')));
        assert_eq!(decode("\\xg0"), Err(EscapeError::BadHex));
        assert_eq!(decode("\\u{d800}"), Err(EscapeError::BadUnicode));
        assert_eq!(decode("\\u202e"), Err(EscapeError::BadUnicode));
        assert_eq!(decode("\\{0:x}"), Err(EscapeError::BadRepeat));
        assert_eq!(decode("\\{3:x"), Err(EscapeError::BadRepeat));
        assert_eq!(decode("\\{99999999:x}"), Err(EscapeError::BadRepeat));
        assert_eq!(decode("\\{3:}"), Err(EscapeError::BadRepeat));
    }

    #[test]
    fn encode_round_trips_and_is_readable() {
        let cases: &[&[u8]] = &[
            b"hello everyone",
            b" padded ",
            b"tab\there",
            b"\xff\xfe",
            b"caf\xc3",
            "bidi \u{202e}x\u{2066}".as_bytes(),
            b"\x1b[31mred",
            b"back\\slash }",
            b"line\r",
            b"",
        ];
        for &c in cases {
            assert_eq!(decode(&encode(c)).unwrap(), c, "{}", encode(c));
        }
        assert_eq!(encode(b" padded "), "\\spadded\\s");
        assert_eq!(encode(b"x  "), "x\\s\\s");
        assert_eq!(encode("e\u{301}".as_bytes()), "e\\u{301}");
        assert_eq!(encode(b"a b"), "a b");
        let long = vec![b'x'; 1025];
        assert_eq!(encode(&long), "\\{1025:x}");
        assert_eq!(decode(&encode(&long)).unwrap(), long);
        let ff = vec![0xffu8; 40];
        assert_eq!(encode(&ff), "\\{40:\\xff}");
        assert_eq!(decode(&encode(&ff)).unwrap(), ff);
    }
}
