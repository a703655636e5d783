//! Capabilities (spec §13) on arbitrary text: the `/caps` client line, in and out of the
//! handshake, and the two capability server lines. No panic; whatever parses re-encodes
//! to a line that parses to the same value (CAPS-2, CAPS-3, CAPS-4).
#![no_main]

use chat_proto::caps::{CapName, Capability, Version};
use chat_proto::{ClientMessage, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    // Steer inputs into each form's syntax.
    let line = match selector % 4 {
        0 => format!("/caps{text}"),
        1 => format!("Protocol {text}"),
        2 => format!("Capabilities enabled:{text}"),
        _ => text.to_owned(),
    };
    if let Some(parsed) = ClientMessage::parse_pre_join(&line) {
        assert_eq!(parsed, ClientMessage::parse(&line), "pre-join and chatting agree");
    }
    if let Ok(m @ ClientMessage::Caps(_)) = ClientMessage::parse(&line) {
        assert_eq!(ClientMessage::parse(&m.to_string()), Ok(m.clone()));
        assert_eq!(m.to_string().len(), m.encoded_len());
    }
    if let Ok(m) = ServerMessage::parse(&line) {
        assert_eq!(m.to_string(), line, "one line, one meaning (SRV-2)");
    }
    for word in text.split(' ') {
        if let Ok(c) = Capability::parse(word) {
            assert_eq!(c.to_string(), word);
        }
        if let Ok(n) = CapName::new(word) {
            assert_eq!(n.as_str(), word);
        }
        if let Ok(v) = word.parse::<Version>() {
            assert_eq!(v.to_string(), word);
        }
    }
});
