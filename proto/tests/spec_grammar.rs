//! The spec's grammar (§10) and tables agree with the code: every wire literal of
//! `chat_proto::wire`, every command of the command table and every error code is in
//! the grammar as an RFC 7405 literal, every code is in the registry table (§7), no
//! literal of the grammar is a plain (case-insensitive) RFC 5234 string, and the limits
//! table states the crate's numbers. A literal changed on one side only fails here.

#![cfg(test)]

use std::fs;
use std::path::Path;

use chat_proto::limits::{
    KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, MAX_ERR_TEXT_BYTES,
    MAX_SERVER_LINE_BYTES, MAX_TAGGED_SERVER_LINE_BYTES, MAX_USERS_LINE_BYTES, TCP_USER_TIMEOUT,
};
use chat_proto::tags::MAX_TAGS_BYTES;
use chat_proto::{Command, ErrorCode, PROTOCOL_VERSION, wire};

fn spec() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/PROTOCOL.md"))
        .expect("spec/PROTOCOL.md")
}

/// The ABNF block of §10, without comments.
fn abnf(spec: &str) -> String {
    let start = spec.find("```abnf").expect("an abnf block");
    let body = &spec[start + 7..];
    let end = body.find("```").expect("the block's end");
    body[..end]
        .lines()
        .map(|l| l.split(';').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn srv_1_every_wire_literal_is_a_case_sensitive_literal_of_the_grammar() {
    let g = abnf(&spec());
    for lit in wire::SERVER_LITERALS {
        assert!(
            g.contains(&format!("%s\"{lit}\"")),
            "%s\"{lit}\" is not in §10"
        );
    }
}

#[test]
fn cmd_1_every_command_of_the_table_is_in_the_grammar() {
    let spec = spec();
    let g = abnf(&spec);
    for c in Command::ALL {
        assert!(
            g.contains(&format!("%s\"/\" %i\"{}\"", c.word())),
            "/{} is not in §10",
            c.word()
        );
        assert!(
            spec.contains(&format!("`{}`", c.word())),
            "CMD-2 lists {}",
            c.word()
        );
    }
}

#[test]
fn err_1_every_code_is_in_the_grammar_and_the_registry() {
    let spec = spec();
    let g = abnf(&spec);
    for code in ErrorCode::ALL {
        assert!(g.contains(&format!("%s\"{code}\"")), "{code} is not in §10");
        assert!(
            spec.contains(&format!("| `{code}` |")),
            "{code} is not in the registry table of §7"
        );
    }
}

#[test]
fn srv_2_the_grammar_has_no_case_insensitive_plain_strings() {
    let g = abnf(&spec());
    let bytes = g.as_bytes();
    for (i, _) in g.match_indices('"') {
        // Every literal opens with %s" or %i"; count only opening quotes.
        let before = &bytes[..i];
        let quotes_before = before.iter().filter(|&&b| b == b'"').count();
        if quotes_before % 2 == 0 {
            assert!(
                before.ends_with(b"%s") || before.ends_with(b"%i"),
                "plain string at byte {i} of the grammar: {}",
                &g[i.saturating_sub(20)..(i + 20).min(g.len())]
            );
        }
    }
}

#[test]
fn srv_3_limits_table_states_the_crates_numbers() {
    let spec = spec();
    for needle in [
        format!(
            "{MAX_SERVER_LINE_BYTES} bytes before LF ({MAX_TAGGED_SERVER_LINE_BYTES} with tags)"
        ),
        format!("| `ERR` text | {MAX_ERR_TEXT_BYTES} bytes |"),
        format!("| `Users online:` line | {MAX_USERS_LINE_BYTES} bytes before LF |"),
        format!("| tag prefix | {MAX_TAGS_BYTES} bytes"),
        format!(
            "idle {} s, interval {} s, {KEEPALIVE_PROBES} probes",
            KEEPALIVE_IDLE.as_secs(),
            KEEPALIVE_INTERVAL.as_secs()
        ),
        format!(
            "| TCP user timeout (data sent and not acknowledged) | {} s | no | CONN-5 |",
            TCP_USER_TIMEOUT.as_secs()
        ),
        format!("Version {PROTOCOL_VERSION}."),
        // PING-3, PING-4, PING-2.
        format!(
            "before `PING`, after enabling `ping`) | {} s |",
            chat_proto::ping::DEFAULT_PING_INTERVAL.as_secs()
        ),
        format!(
            "before `ERR ping-timeout`) | {} s |",
            chat_proto::ping::DEFAULT_PING_TIMEOUT.as_secs()
        ),
        format!(
            "| liveness token | 1 to {} visible ASCII characters |",
            chat_proto::ping::MAX_TOKEN_LEN
        ),
        format!(
            "`ERR` lines\nare at most {} bytes (ERR-3)",
            wire::ERR.len()
                + ErrorCode::ALL
                    .iter()
                    .map(|c| c.as_str().len())
                    .max()
                    .unwrap_or(0)
                + 1
                + MAX_ERR_TEXT_BYTES
        ),
    ] {
        assert!(spec.contains(&needle), "the spec does not say {needle:?}");
    }
}
