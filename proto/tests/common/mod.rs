//! proptest strategies for valid protocol values, shared by the property tests.
#![allow(dead_code)]

use chat_proto::text::is_forbidden;
use chat_proto::{ClientMessage, ErrorCode, Nickname, ServerMessage, Text};
use proptest::prelude::*;

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
        (error_code(), text()).prop_map(|(code, text)| ServerMessage::Error { code, text }),
    ]
}

pub fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        text().prop_map(ClientMessage::Text),
        Just(ClientMessage::Who),
        Just(ClientMessage::Quit),
        nickname().prop_map(ClientMessage::Nick),
        (nickname(), msg_text()).prop_map(|(to, text)| ClientMessage::Msg { to, text }),
    ]
}
