//! Client-line parser on arbitrary text: no panic; every message re-encodes to a line that
//! parses to the same message, and every error has a well-formed reply.
#![no_main]

use chat_proto::{ClientMessage, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    match ClientMessage::parse(line) {
        Ok(msg) => {
            let mut out = Vec::new();
            msg.encode(&mut out);
            out.pop();
            let again = String::from_utf8(out).expect("utf-8");
            assert_eq!(ClientMessage::parse(&again), Ok(msg));
        }
        Err(e) => {
            if let Some(reply) = e.reply() {
                assert_eq!(ServerMessage::parse(&reply.to_string()), Ok(reply));
            }
        }
    }
});
