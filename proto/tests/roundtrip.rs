//! `parse(encode(m)) == m` for every server and client message (SRV-1, SRV-2, CMD-1),
//! directly and through the framer.

#![cfg(test)]

mod common;

use chat_proto::limits::{MAX_LINE_BYTES, MAX_SERVER_LINE_BYTES, MAX_TAGGED_SERVER_LINE_BYTES};
use chat_proto::tags::MAX_TAGS_BYTES;
use chat_proto::{ClientMessage, Frame, Framer, ServerMessage};
use proptest::prelude::*;

fn strip_lf(mut bytes: Vec<u8>) -> String {
    assert_eq!(
        bytes.pop(),
        Some(b'\n'),
        "every encoded line ends with LF (FRAME-1)"
    );
    assert!(
        !bytes.contains(&b'\n'),
        "an encoded line holds exactly one LF"
    );
    String::from_utf8(bytes).expect("encoders emit UTF-8")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// SRV-1, SRV-2: every server message encodes to one line that parses back to itself.
    #[test]
    fn srv_2_server_round_trip(m in common::server_message()) {
        let bytes = m.to_bytes();
        let line = strip_lf(bytes.clone());
        prop_assert!(line.len() <= MAX_SERVER_LINE_BYTES.max(1100), "SRV-3: {} bytes", line.len());
        prop_assert_eq!(ServerMessage::parse(&line), Ok(m.clone()));
        // And through a framer sized for server lines.
        let mut framer = Framer::with_limit(MAX_SERVER_LINE_BYTES * 2);
        let mut got = Vec::new();
        framer.push(&bytes, |f| got.push(match f {
            Frame::Line(l) => ServerMessage::parse(l).ok(),
            _ => None,
        }));
        prop_assert_eq!(got, vec![Some(m)]);
    }

    /// CMD-1, CMD-MSG-2: every client message encodes to one line that parses back.
    #[test]
    fn cmd_1_client_round_trip(m in common::client_message()) {
        let line = {
            let mut out = Vec::new();
            m.encode(&mut out);
            prop_assert_eq!(out.len(), m.encoded_len() + 1);
            strip_lf(out)
        };
        prop_assert_eq!(ClientMessage::parse(&line), Ok(m.clone()));
        if line.len() <= MAX_LINE_BYTES {
            let mut framer = Framer::new();
            let mut got = Vec::new();
            let mut bytes = line.clone().into_bytes();
            bytes.extend_from_slice(b"\r\n");
            framer.push(&bytes, |f| got.push(match f {
                Frame::Line(l) => ClientMessage::parse(l).ok(),
                _ => None,
            }));
            prop_assert_eq!(got, vec![Some(m)]);
        }
    }

    /// SRV-3: the longest lines a server relays. A chat line carries a text of up to
    /// 1024 bytes: `24 + 2 + 1024 = 1050`. A private line's text came in a `/msg` line
    /// of at most 1024 bytes, so it is at most `from + 1024 <= 1048`.
    #[test]
    fn srv_3_longest_lines(from in common::nickname(), to in common::nickname()) {
        let chat = ServerMessage::Chat {
            from: from.clone(),
            text: chat_proto::Text::new(&"é".repeat(MAX_LINE_BYTES / 2)).unwrap(),
        };
        let len = chat.to_bytes().len() - 1;
        prop_assert_eq!(len, from.as_str().len() + 2 + MAX_LINE_BYTES);
        prop_assert!(len <= MAX_SERVER_LINE_BYTES);
        // The longest `/msg` line a client can send to `to`.
        let body = "x".repeat(MAX_LINE_BYTES - "/msg ".len() - to.as_str().len() - 1);
        let msg = ClientMessage::Msg { to: to.clone(), text: chat_proto::Text::new(&body).unwrap() };
        prop_assert_eq!(msg.encoded_len(), MAX_LINE_BYTES);
        let ClientMessage::Msg { to, text } = ClientMessage::parse(&msg.to_string()).unwrap() else {
            unreachable!()
        };
        let private = ServerMessage::Private { from: from.clone(), to, text };
        let len = private.to_bytes().len() - 1;
        prop_assert_eq!(len, from.as_str().len() + MAX_LINE_BYTES);
        prop_assert!(len <= MAX_SERVER_LINE_BYTES - 2);
    }

    /// TAG-1: every tagged line encodes to one line that splits into the same tags and
    /// parses back to the same message, and stays within the tagged line limit.
    #[test]
    fn tag_1_tagged_round_trip(tags in common::tags(), m in common::server_message()) {
        let mut bytes = Vec::new();
        m.encode_tagged(&tags, &mut bytes);
        let line = strip_lf(bytes);
        prop_assert!(line.starts_with('@'));
        prop_assert!(line.len() <= MAX_TAGGED_SERVER_LINE_BYTES.max(m.to_bytes().len() + MAX_TAGS_BYTES));
        prop_assert_eq!(ServerMessage::parse_tagged(&line), Ok((tags.clone(), m.clone())));
        prop_assert_eq!(chat_proto::Incoming::from_line(&line), chat_proto::Incoming::Tagged(tags, m));
    }

    /// CAPS-2, CAPS-3: capability lines round-trip (included in `server_message`), and
    /// an untagged line never starts with the tag marker (TAG-1).
    #[test]
    fn tag_1_no_untagged_line_starts_with_at(m in common::server_message()) {
        prop_assert!(!m.to_string().starts_with('@'));
    }

    /// CLI-2: an ERR line with any well-formed unknown code is an unknown error, not an
    /// unrecognised line.
    #[test]
    fn cli_2_unknown_codes(code in "[a-z0-9-]{1,32}", text in common::err_text()) {
        prop_assume!(code.parse::<chat_proto::ErrorCode>().is_err());
        let line = format!("ERR {code} {text}");
        prop_assert_eq!(
            chat_proto::Incoming::from_line(&line),
            chat_proto::Incoming::UnknownError { code, text }
        );
    }
}

proptest! {
    /// `chat_parts` agrees with the full parser on every line, chat or not.
    #[test]
    fn chat_1_chat_parts_agrees_with_parse(m in common::server_message(), junk in "[ -~]{0,40}") {
        for line in [m.to_string(), junk.clone(), format!("{}{}", m, junk)] {
            let full = match ServerMessage::parse(&line) {
                Ok(ServerMessage::Chat { from, text }) => Some((from.as_str().to_owned(), text.as_str().to_owned())),
                _ => None,
            };
            let fast = chat_proto::chat_parts(&line).map(|(f, t)| (f.to_owned(), t.to_owned()));
            prop_assert_eq!(fast, full, "{:?}", line);
        }
    }
}
