//! Tagged server lines (spec §14) on arbitrary text: no panic; a prefix that splits
//! re-encodes to a prefix that splits to the same tags (TAG-1); the reader's judgement
//! agrees with the parser's; and a line without `@` is never taken as tagged.
#![no_main]

use chat_proto::{Incoming, ServerMessage, Tags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Steer half of the inputs into the tag syntax.
    let line = if data.first().is_some_and(|b| b & 1 == 1) {
        format!("@{text}")
    } else {
        text.to_owned()
    };
    let split = Tags::split(&line);
    if let Ok((tags, body)) = &split {
        if tags.is_empty() {
            assert!(!line.starts_with('@'));
            assert_eq!(*body, line);
        } else {
            let mut again = Vec::new();
            tags.encode_prefix(&mut again);
            assert!(again.len() <= chat_proto::tags::MAX_TAGS_BYTES);
            again.extend_from_slice(body.as_bytes());
            let again = String::from_utf8(again).unwrap();
            let (tags2, body2) = Tags::split(&again).unwrap();
            assert_eq!(&tags2, tags);
            assert_eq!(body2, *body);
        }
    }
    match (ServerMessage::parse_tagged(&line), Incoming::from_line(&line)) {
        (Ok((tags, msg)), Incoming::Message(m)) => {
            assert!(tags.is_empty());
            assert_eq!(m, msg);
        }
        (Ok((tags, msg)), Incoming::Tagged(t, m)) => {
            assert_eq!((t, m), (tags, msg));
        }
        (Ok(_), other) => panic!("parsed, but the reader said {other:?}"),
        (Err(_), Incoming::Message(_) | Incoming::Tagged(..)) => {
            panic!("the reader took a line the parser refused")
        }
        (Err(_), _) => {}
    }
});
