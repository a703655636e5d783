//! proptest strategies for valid protocol values, shared by the property tests.
#![allow(dead_code)]

use chat_proto::limits::MAX_ERR_TEXT_BYTES;
use chat_proto::moderation::{Action, MAX_MUTE_MINUTES, ModCommand, Password, Reason};
use chat_proto::tags::OtherTag;
use chat_proto::text::is_forbidden;
use chat_proto::{
    CapName, Capability, ClientMessage, ErrorCode, EventId, Nickname, ServerMessage, ServerTime,
    Tags, Text, Version,
};
use proptest::prelude::*;

/// A kick or ban reason as a client can send it: it does not start with a blank (the
/// blanks after the nickname are a separator, MOD-3).
pub fn reason() -> impl Strategy<Value = Reason> {
    msg_text().prop_filter_map("too long", |t| Reason::new(t.as_str()))
}

/// A moderation notice (MOD-7).
pub fn moderation_notice() -> impl Strategy<Value = ServerMessage> {
    let action = prop_oneof![
        proptest::option::of(reason()).prop_map(Action::Kicked),
        proptest::option::of(reason()).prop_map(Action::Banned),
        (1..=MAX_MUTE_MINUTES).prop_map(Action::Muted),
        Just(Action::Unmuted),
        Just(Action::Unbanned),
    ];
    prop_oneof![
        nickname().prop_map(ServerMessage::Operator),
        (nickname(), nickname(), action)
            .prop_map(|(target, by, action)| ServerMessage::Moderated { target, by, action }),
    ]
}

/// An operator command or `/op` (MOD-2, MOD-3).
pub fn moderation_command() -> impl Strategy<Value = ClientMessage> {
    let cmd = prop_oneof![
        (nickname(), proptest::option::of(reason()))
            .prop_map(|(target, reason)| ModCommand::Kick { target, reason }),
        (nickname(), proptest::option::of(reason()))
            .prop_map(|(target, reason)| ModCommand::Ban { target, reason }),
        (nickname(), proptest::option::of(1..=MAX_MUTE_MINUTES))
            .prop_map(|(target, minutes)| ModCommand::Mute { target, minutes }),
        nickname().prop_map(ModCommand::Unmute),
        nickname().prop_map(ModCommand::Unban),
    ];
    prop_oneof![
        cmd.prop_map(ClientMessage::Moderate),
        "[!-~]{1,128}".prop_map(|p| ClientMessage::Op(Password::new(&p).unwrap())),
    ]
}

pub fn nickname() -> impl Strategy<Value = Nickname> {
    "[A-Za-z0-9_-]{1,24}".prop_filter_map("reserved", |s| Nickname::new(&s).ok())
}

/// Any char a text may hold, biased towards ASCII, spaces and multi-byte characters.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => Just('\t'),
        1 => Just(' '),
        1 => Just(':'),
        1 => Just('/'),
        2 => any::<char>(),
    ]
    .prop_filter("forbidden", |c| !is_forbidden(*c))
}

pub fn text() -> impl Strategy<Value = Text> {
    prop::collection::vec(text_char(), 1..120).prop_filter_map("blank or too long", |cs| {
        Text::new(&cs.into_iter().collect::<String>()).ok()
    })
}

/// A text that may start a `/msg` body: its first character is not blank (CMD-MSG-2).
pub fn msg_text() -> impl Strategy<Value = Text> {
    text().prop_filter("leading blank", |t| !t.as_str().starts_with([' ', '\t']))
}

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(ErrorCode::ALL.to_vec())
}

/// An ERR line's text: at most 256 bytes (ERR-3).
pub fn err_text() -> impl Strategy<Value = Text> {
    text().prop_filter("ERR-3", |t| t.as_str().len() <= MAX_ERR_TEXT_BYTES)
}

pub fn cap_name() -> impl Strategy<Value = CapName> {
    "[a-z][a-z0-9-]{0,31}".prop_map(|s| CapName::new(&s).unwrap())
}

pub fn capability() -> impl Strategy<Value = Capability> {
    (cap_name(), proptest::option::of("[!-~]{1,64}")).prop_map(|(name, value)| Capability {
        name,
        value: value.map(Into::into),
    })
}

pub fn version() -> impl Strategy<Value = Version> {
    (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| Version { major, minor })
}

pub fn event_id() -> impl Strategy<Value = EventId> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(e, s)| EventId::memory(e, s)),
        "[!-:<-~]{1,64}".prop_map(|s| EventId::new(&s).unwrap()),
    ]
}

pub fn server_time() -> impl Strategy<Value = ServerTime> {
    // Years 0000 to 9999 (TAG-4).
    (-62_167_219_200_000i64..253_402_300_800_000)
        .prop_map(|ms| ServerTime::from_unix_millis(ms).unwrap())
}

pub fn tags() -> impl Strategy<Value = Tags> {
    (
        proptest::option::of(event_id()),
        proptest::option::of(server_time()),
        prop::collection::vec(
            (
                "[a-z][a-z0-9./-]{0,31}",
                proptest::option::of("[!-:<-~]{1,40}"),
            ),
            0..4,
        ),
    )
        .prop_filter_map("no tag, or a repeated key", |(id, time, other)| {
            let mut keys: Vec<&str> = other.iter().map(|(k, _)| k.as_str()).collect();
            keys.extend(["id", "t"]);
            keys.sort_unstable();
            keys.dedup();
            if keys.len() != other.len() + 2 {
                return None;
            }
            let tags = Tags {
                id,
                time,
                other: other
                    .into_iter()
                    .map(|(k, v)| OtherTag {
                        key: k.into(),
                        value: v.map(Into::into),
                    })
                    .collect(),
            };
            (!tags.is_empty()).then_some(tags)
        })
}

pub fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        Just(ServerMessage::NickPrompt),
        Just(ServerMessage::Connected),
        nickname().prop_map(ServerMessage::Joined),
        nickname().prop_map(ServerMessage::Left),
        (nickname(), text()).prop_map(|(from, text)| ServerMessage::Chat { from, text }),
        (nickname(), nickname(), text()).prop_map(|(from, to, text)| ServerMessage::Private {
            from,
            to,
            text
        }),
        (nickname(), nickname()).prop_map(|(old, new)| ServerMessage::Renamed { old, new }),
        (prop::collection::vec(nickname(), 1..20), any::<bool>())
            .prop_map(|(names, more)| ServerMessage::Users { names, more }),
        (error_code(), err_text()).prop_map(|(code, text)| ServerMessage::Error { code, text }),
        (version(), prop::collection::vec(capability(), 0..6))
            .prop_map(|(version, offered)| ServerMessage::Caps { version, offered }),
        prop::collection::vec(cap_name(), 1..6).prop_map(ServerMessage::CapsEnabled),
        any::<u32>().prop_map(ServerMessage::HistoryStart),
        Just(ServerMessage::HistoryEnd),
        (server_time(), public_event()).prop_map(|(time, event)| ServerMessage::Earlier {
            time: time.whole_seconds(),
            event: Box::new(event),
        }),
        moderation_notice(),
        token().prop_map(ServerMessage::Ping),
        token().prop_map(ServerMessage::Pong),
    ]
}

/// A liveness token (PING-2).
pub fn token() -> impl Strategy<Value = chat_proto::Token> {
    "[!-~]{1,32}".prop_map(|s| chat_proto::Token::new(&s).unwrap())
}

/// A public event: what history keeps (HIST-1).
pub fn public_event() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        nickname().prop_map(ServerMessage::Joined),
        nickname().prop_map(ServerMessage::Left),
        (nickname(), text()).prop_map(|(from, text)| ServerMessage::Chat { from, text }),
        (nickname(), nickname()).prop_map(|(old, new)| ServerMessage::Renamed { old, new }),
        moderation_notice(),
    ]
}

pub fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        text().prop_map(ClientMessage::Text),
        Just(ClientMessage::Who),
        Just(ClientMessage::Quit),
        nickname().prop_map(ClientMessage::Nick),
        (nickname(), msg_text()).prop_map(|(to, text)| ClientMessage::Msg { to, text }),
        prop::collection::vec(cap_name(), 0..6).prop_map(ClientMessage::Caps),
        proptest::option::of(1..=u32::MAX).prop_map(ClientMessage::History),
        event_id().prop_map(ClientMessage::Resume),
        moderation_command(),
        token().prop_map(ClientMessage::Ping),
        token().prop_map(ClientMessage::Pong),
    ]
}
