//! Server-line parser on arbitrary text: no panic, and whatever parses re-encodes to the
//! same line (SRV-2: one line, one meaning).
#![no_main]

use chat_proto::ServerMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = ServerMessage::parse(line) {
        assert_eq!(msg.to_string(), line);
    }
});
