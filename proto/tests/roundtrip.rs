//! `parse(encode(m)) == m` for every server and client message (SRV-1, SRV-2, CMD-1),
//! directly and through the framer.

mod common;

use chat_proto::limits::{MAX_LINE_BYTES, MAX_SERVER_LINE_BYTES};
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

    /// SRV-3: a private message with a maximal text is exactly the stated maximum.
    #[test]
    fn srv_3_longest_line(from in common::nickname(), to in common::nickname()) {
        let text = chat_proto::Text::new(&"é".repeat(MAX_LINE_BYTES / 2)).unwrap();
        let m = ServerMessage::Private { from: from.clone(), to: to.clone(), text };
        let len = m.to_bytes().len() - 1;
        prop_assert_eq!(len, from.as_str().len() + to.as_str().len() + 6 + MAX_LINE_BYTES);
        prop_assert!(len <= MAX_SERVER_LINE_BYTES);
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
