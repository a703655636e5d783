//! Capabilities and tags on the real server (spec §13, §14): what sessions cannot see
//! because ids and times change from run to run.

#![cfg(test)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::{ErrorCode, EventId, ServerMessage, Tags};
use common::{Client, start_default};

/// The next line, split into its tags and message.
fn tagged(c: &mut Client) -> (Tags, ServerMessage) {
    let line = c.line();
    ServerMessage::parse_tagged(&line).expect("a server line")
}

fn id(tags: &Tags) -> (u64, u64) {
    tags.id
        .as_ref()
        .and_then(EventId::memory_parts)
        .expect("a memory-engine id")
}

/// TAG-3, TAG-4: one event has one id on every connection that receives it, the memory
/// engine's seq counts events one by one, and `t` is the server's UTC time.
#[test]
fn tag_3_tag_4_one_event_one_id_everywhere() {
    let s = start_default();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (mut a, mut b, [t1, t2]) = common::one_event_one_id(s.local_addr(), s.local_addr());
    let (e1, s1) = id(&t1);
    let (e2, s2) = id(&t2);
    assert_eq!(e1, e2, "one epoch per run");
    assert_eq!(s2, s1 + 1, "seq counts events");
    for t in [&t1, &t2] {
        let ms = t.time.expect("a time tag").unix_millis();
        assert!(
            (ms - before).abs() < 10_000,
            "t is the server's UTC time: {ms} vs {before}"
        );
    }
    // A third client that never asked gets the same events untagged (TAG-2).
    let mut c = Client::join(s.local_addr(), "carol");
    let (tj, _) = tagged(&mut a);
    assert_eq!(id(&tj).1, s2 + 1);
    b.line();
    a.say("three");
    c.expect("alice: three");
    // Replies and private lines carry no tags (TAG-2).
    a.say("/who");
    assert!(
        matches!(tagged(&mut a), (t, _) if !t.is_empty()),
        "alice: three, tagged"
    );
    let (tw, _) = tagged(&mut a);
    assert!(tw.is_empty(), "a reply is untagged");
    a.say("/msg bob psst");
    let (tp, p) = tagged(&mut a);
    assert!(tp.is_empty(), "a private line is untagged: {p}");
}

/// CAPS-3: enabling something the server does not offer enables nothing, not even the
/// capabilities named beside it.
#[test]
fn caps_3_unknown_name_enables_nothing() {
    let s = start_default();
    let mut a = Client::join(s.local_addr(), "alice");
    a.say("/caps tags later-thing");
    a.expect_err(ErrorCode::UnknownCapability);
    a.say("hi");
    a.expect("alice: hi");
    a.say("/caps");
    a.expect("Protocol 1.1 capabilities: tags history ping");
}
