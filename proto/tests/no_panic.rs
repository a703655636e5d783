//! Parsers are total: any string yields a value or an error, never a panic.

#![cfg(test)]

use chat_proto::{ClientMessage, Nickname, ServerMessage};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_string_parses_or_errs(s in ".{0,200}") {
        let _ = ServerMessage::parse(&s);
        let _ = ClientMessage::parse(&s);
        let _ = Nickname::new(&s);
    }

    #[test]
    fn protocol_shaped_strings(s in "(/|//|NICK|ERR |Users online: |[a-z]{1,3}(: | -> | has | is now known as ))[ -~]{0,30}") {
        let _ = ServerMessage::parse(&s);
        let _ = ClientMessage::parse(&s);
    }
}
