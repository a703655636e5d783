//! How each network event changes the window's state: pure, so every case is a unit
//! test without a display or a socket.
//!
//! The caller passes the local time as text, so results do not depend on the clock.

use std::sync::Arc;

use chat_proto::{Action, ErrorCode, EventId, ServerMessage};
use druid::im::OrdMap;

use crate::effect::Effect;
use crate::net::NetEvent;
use crate::state::{AppState, Block, BlockCause, LineKind, Screen, Stamp, Status, nick_key};

/// Applies `event` to `state`; returns what the caller must do next.
pub fn apply(state: &mut AppState, event: NetEvent, now: Stamp) -> Vec<Effect> {
    let mut effects = Vec::new();
    match event {
        NetEvent::Connecting { addr, attempt } => {
            state.node = addr.clone();
            state.status = Status::Connecting {
                addr: addr.into(),
                attempt,
            };
        }
        NetEvent::Opened => {
            state.status = Status::Handshake;
            // A new connection: the panel is rebuilt from this server's answers.
            state.online = OrdMap::new();
            state.who_partial = None;
            state.silent_who = 0;
        }
        NetEvent::NickWanted => {
            state.awaiting_nick = true;
            state.screen = Screen::Connect;
            if state.connect_error.is_empty() {
                state.connect_error = "The server asks for another nickname".into();
            }
        }
        NetEvent::Welcome { nick } => {
            let nick = nick.as_str();
            state.me = nick.into();
            state.nick = nick.to_owned();
            state.status = Status::Connected { nick: nick.into() };
            state.screen = Screen::Chat;
            state.cert_changed = None;
            state.awaiting_nick = false;
            state.connect_error.clear();
            // "Not sent: not connected" and the like are over.
            if state.notice_is_error {
                state.clear_notice();
            }
            // The network thread asks `/who` right after the handshake.
            state.silent_who += 1;
            // A new connection: no `/history` of ours is pending on it.
            state.history_asked = 0;
            state.block = None;
            // The node, when the chat has several (failover moves along the list); the
            // list is what is remembered.
            state.push_line(
                now,
                LineKind::Info,
                "",
                &format!("Connected to {} as {nick}", state.server_shown()),
            );
            let server = state.active_server.clone();
            effects.push(Effect::Remember {
                server,
                nick: nick.to_owned(),
            });
            effects.push(Effect::FocusInput);
        }
        NetEvent::Line(msg) => on_line(state, msg, now, &mut effects),
        // The server's time, in the user's time zone: the same event shows the same
        // time in every window, and day separators follow the server's dates.
        NetEvent::Timed {
            at,
            id,
            earlier,
            msg,
        } => {
            let at = at.with_timezone(&chrono::Local).naive_local();
            if earlier {
                on_earlier(state, msg, id.as_ref().map(EventId::as_str), at);
            } else {
                on_line(state, msg, at, &mut effects);
                if let Some(id) = id {
                    state.note_event(id.as_str());
                }
            }
        }
        // TLS-7: the user sees which certificate the connection is encrypted with.
        NetEvent::Secure(secure) => {
            let how = if secure.first_use {
                "first connection to this server: fingerprint pinned; you will be warned if it changes"
            } else {
                "matches the pinned fingerprint"
            };
            state.push_line(
                now,
                LineKind::Info,
                "",
                &format!(
                    "Encrypted (TLS) with {}: certificate {} ({how})",
                    secure.server, secure.fingerprint
                ),
            );
        }
        // TLS-7: a security stop, said where the user looks (the history, the note under
        // the input, the connect screen's error), with both fingerprints and the way out.
        NetEvent::CertChanged(changed) => {
            let warning = |accept| {
                crate::tls::changed_warning(
                    &changed.server,
                    changed.pinned,
                    changed.presented,
                    accept,
                )
            };
            for line in warning("type /trust") {
                state.push_line(now, LineKind::Error, "", &line);
            }
            if state.screen == Screen::Connect {
                state.connect_error =
                    warning("press \u{201c}Trust the new certificate and connect\u{201d}")
                        .join("\n");
            } else {
                state.set_notice(
                    format!(
                        "Not connected: the certificate of {} CHANGED (see the warning \
                         above). Type /trust only if the server's owner confirms the new one.",
                        changed.server
                    ),
                    true,
                );
            }
            state.cert_changed = Some(changed);
        }
        NetEvent::Garbled(line) => {
            state.push_line(
                now,
                LineKind::Error,
                "",
                &format!("Unreadable line from the server: {line}"),
            );
        }
        NetEvent::NotSent(reason) => {
            state.set_notice(format!("Not sent: {reason}"), true);
        }
        NetEvent::Disconnected {
            reason,
            retry_in,
            next,
        } => {
            let was_chatting = state.status.is_connected();
            // The connection never came up (not a close after the server answered).
            let unreachable = matches!(state.status, Status::Connecting { .. });
            let retry_in = retry_in.map(|d| d.as_secs_f64().round() as u64);
            state.status = Status::Disconnected {
                reason: reason.as_str().into(),
                retry_in,
            };
            state.awaiting_nick = false;
            state.online = OrdMap::new();
            state.who_partial = None;
            if state.screen == Screen::Connect {
                if state.connect_error.is_empty() {
                    state.connect_error = capitalize(&reason);
                } else if state.connect_error.contains(reason.as_str())
                    || state.cert_changed.is_some()
                {
                    // Said already (the closing `ERR` that ended the handshake, the
                    // warning of a changed certificate).
                } else if unreachable {
                    // Each server of a list that could not be reached, on its own line.
                    state.connect_error =
                        format!("{}\n{}", state.connect_error, capitalize(&reason));
                } else {
                    // Keep the nickname reason and add why the connection ended.
                    state.connect_error = format!("{} ({reason})", state.connect_error);
                }
            } else if was_chatting {
                state.away = true;
                let note = match (retry_in, next) {
                    (Some(s), Some(next)) => {
                        format!("Disconnected: {reason}; reconnecting to {next} in {s} s")
                    }
                    (Some(s), None) => format!("Disconnected: {reason}; reconnecting in {s} s"),
                    (None, _) => format!("Disconnected: {reason}"),
                };
                state.push_line(now, LineKind::Info, "", &note);
            }
        }
    }
    effects
}

fn on_line(state: &mut AppState, msg: ServerMessage, now: Stamp, effects: &mut Vec<Effect>) {
    match &msg {
        ServerMessage::NickPrompt | ServerMessage::Connected => {}
        // Answers to `/caps`, which this client does not send yet.
        ServerMessage::Caps { .. } | ServerMessage::CapsEnabled(_) => {}
        // Liveness (§13.1) is the session's business; a probe that reaches here (before
        // the join, PING-3 never sends one then) is not for the user.
        ServerMessage::Ping(_) | ServerMessage::Pong(_) => {}
        // A block (HIST-2): after a join it is the backlog or what was missed while
        // away; else the answer to a `/history` the user typed.
        ServerMessage::HistoryStart(count) => {
            let cause = if state.history_asked > 0 {
                state.history_asked -= 1;
                BlockCause::Asked
            } else {
                BlockCause::Join
            };
            state.block = Some(Block {
                cause,
                count: *count,
                added: 0,
            });
        }
        ServerMessage::HistoryEnd => end_block(state, now),
        // A readable earlier event reaches here only outside the session's handling
        // (which turns it into an earlier event with its time); shown as it came.
        ServerMessage::Earlier { .. } => {
            state.push_line(now, LineKind::Info, "", &msg.to_string());
        }
        // §18: operator notices are system lines; a kick or a ban is followed by the
        // core leave line, which updates the user list.
        ServerMessage::Operator(_) => {
            state.push_line(now, notice_kind(&msg), "", &msg.to_string());
        }
        ServerMessage::Moderated { target, action, .. } => {
            state.push_line(now, notice_kind(&msg), "", &msg.to_string());
            if target.as_str().eq_ignore_ascii_case(&state.me) {
                match action {
                    Action::Muted(n) => {
                        let unit = if *n == 1 { "minute" } else { "minutes" };
                        state.set_notice(
                            format!("You are muted for {n} {unit}: your messages are not sent"),
                            true,
                        )
                    }
                    Action::Unmuted => state.set_notice("You can write again", false),
                    _ => {}
                }
            }
        }
        ServerMessage::Joined(nick) => {
            state
                .online
                .insert(nick_key(nick.as_str()), nick.as_str().into());
            state.push_line(now, LineKind::Join, "", &msg.to_string());
        }
        ServerMessage::Left(nick) => {
            state.online.remove(&nick_key(nick.as_str()));
            state.push_line(now, LineKind::Leave, "", &msg.to_string());
        }
        ServerMessage::Renamed { old, new } => {
            state.online.remove(&nick_key(old.as_str()));
            state
                .online
                .insert(nick_key(new.as_str()), new.as_str().into());
            if old.as_str().eq_ignore_ascii_case(&state.me) {
                state.me = new.as_str().into();
                state.nick = new.as_str().to_owned();
                state.status = Status::Connected {
                    nick: new.as_str().into(),
                };
                effects.push(Effect::Remember {
                    server: state.active_server.clone(),
                    nick: new.as_str().to_owned(),
                });
            }
            state.push_line(now, LineKind::Rename, "", &msg.to_string());
        }
        ServerMessage::Chat { from, text } => {
            let kind = chat_kind(state, from.as_str());
            state.push_line(now, kind, from.as_str(), text.as_str());
            notify_if_named(state, from.as_str(), text.as_str(), false, effects);
        }
        ServerMessage::Private { from, to, text } => {
            let who = format!("{from} -> {to}");
            state.push_line(now, LineKind::Private, &who, text.as_str());
            notify_if_named(state, from.as_str(), text.as_str(), true, effects);
        }
        ServerMessage::Users { names, more } => {
            let mut set = state.who_partial.take().unwrap_or_default();
            for n in names {
                set.insert(nick_key(n.as_str()), Arc::<str>::from(n.as_str()));
            }
            let silent = state.silent_who > 0;
            if *more {
                state.who_partial = Some(set);
            } else {
                state.online = set;
                if silent {
                    state.silent_who -= 1;
                }
            }
            if !silent {
                state.push_line(now, LineKind::Users, "", &msg.to_string());
            }
        }
        // RESUME-3: what was missed cannot be had; the backlog follows.
        ServerMessage::Error {
            code: ErrorCode::HistoryGap,
            ..
        } => {
            state.push_line(now, LineKind::Error, "", HISTORY_GAP_NOTE);
            // What follows is the backlog (HIST-5), not what was missed.
            state.away = false;
        }
        ServerMessage::Error { code, text } => {
            let in_handshake = !state.status.is_connected();
            if in_handshake
                && (matches!(code, ErrorCode::NickInvalid | ErrorCode::NickTaken) || code.closes())
            {
                state.connect_error = text.as_str().to_owned();
            }
            if matches!(code, ErrorCode::NickInvalid | ErrorCode::NickTaken) && !in_handshake {
                state.set_notice(text.as_str(), true);
            }
            // MOD-4, MOD-6: removed by an operator: say so where it cannot be missed;
            // the client does not reconnect by itself (net.rs).
            if matches!(code, ErrorCode::Kicked | ErrorCode::Banned) {
                state.set_notice(
                    format!("{text}; this client will not reconnect by itself"),
                    true,
                );
            }
            // A closing error is told once, by the disconnect note that follows it.
            if !code.closes() || in_handshake {
                state.push_line(now, LineKind::Error, "", &format!("{text} ({code})"));
            }
        }
    }
}

/// How a public event other than a chat line is styled, live or earlier: a removal
/// (kick, ban, MOD-4, MOD-6) reads as the leave it is, the other operator notices as
/// system lines.
fn notice_kind(msg: &ServerMessage) -> LineKind {
    match msg {
        ServerMessage::Joined(_) => LineKind::Join,
        ServerMessage::Left(_) => LineKind::Leave,
        ServerMessage::Moderated {
            action: Action::Kicked(_) | Action::Banned(_),
            ..
        } => LineKind::Leave,
        ServerMessage::Renamed { .. }
        | ServerMessage::Operator(_)
        | ServerMessage::Moderated { .. } => LineKind::Rename,
        // No other line is an event (HIST-1); shown as text if a later server sends one.
        _ => LineKind::Info,
    }
}

/// What the user reads when a resume could not recover what was missed (RESUME-3).
pub const HISTORY_GAP_NOTE: &str = "Some messages while you were away could not be recovered";

/// An earlier event (HIST-3): shown dimmed with its date, once (an event already on
/// screen is not repeated), and with no effect on who is online (it is the past).
fn on_earlier(state: &mut AppState, msg: ServerMessage, id: Option<&str>, at: Stamp) {
    if id.is_some_and(|id| state.shows_event(id)) {
        return;
    }
    let first = match state.block.as_mut() {
        Some(b) => {
            b.added = b.added.saturating_add(1);
            b.added == 1
        }
        None => false,
    };
    if first {
        let title = match state.block.as_ref().map(|b| b.cause) {
            Some(BlockCause::Asked) => "Earlier in the chat (/history):",
            _ if state.away => "While you were away:",
            _ => "Earlier in the chat:",
        };
        // Part of the block: dimmed, and its date shows above it.
        state.push_earlier(at, LineKind::Info, "", title);
    }
    match &msg {
        ServerMessage::Chat { from, text } => {
            let kind = chat_kind(state, from.as_str());
            state.push_earlier(at, kind, from.as_str(), text.as_str());
        }
        // Joins, leaves, renames and moderation notices (MOD-7) read as they did live.
        other => state.push_earlier(at, notice_kind(other), "", &other.to_string()),
    }
    if let Some(id) = id {
        state.note_event(id);
    }
}

/// The footer of a block (HIST-2): says what a `/history` brought when it added
/// nothing, and ends the time away.
fn end_block(state: &mut AppState, now: Stamp) {
    let Some(block) = state.block.take() else {
        return;
    };
    match block.cause {
        BlockCause::Asked if block.added == 0 => {
            let note = match block.count {
                0 => "The server keeps no earlier messages".to_owned(),
                1 => "The earlier message asked for is shown already".to_owned(),
                n => format!("All {n} earlier messages asked for are shown already"),
            };
            state.push_line(now, LineKind::Info, "", &note);
        }
        BlockCause::Asked => {}
        BlockCause::Join => {
            if state.away && block.added == 0 {
                state.push_line(
                    now,
                    LineKind::Info,
                    "",
                    "Nothing was missed while you were away",
                );
            }
            state.away = false;
        }
    }
}

/// A desktop notification for the line just added, when it names us (or whispers to
/// us) and the window is not focused: the user is elsewhere.
fn notify_if_named(
    state: &AppState,
    from: &str,
    text: &str,
    private: bool,
    effects: &mut Vec<Effect>,
) {
    if state.focused || from.eq_ignore_ascii_case(&state.me) {
        return;
    }
    let named = state.history.back().is_some_and(|l| l.mention);
    if named || private {
        let title = if private {
            format!("{from} whispers to you")
        } else {
            format!("{from} mentioned you")
        };
        effects.push(Effect::Notify {
            title,
            body: text.to_owned(),
        });
    }
}

/// A chat line is ours when it is from our nickname (compared as the server does,
/// NICK-3), live or earlier.
fn chat_kind(state: &AppState, from: &str) -> LineKind {
    if from.eq_ignore_ascii_case(&state.me) {
        LineKind::Own
    } else {
        LineKind::Other
    }
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_proto::{Nickname, Text};

    use super::*;
    use crate::state::{DEFAULT_SERVER, ThemeChoice, stamp};

    fn nick(s: &str) -> Nickname {
        Nickname::new(s).unwrap()
    }
    fn line(s: &str) -> NetEvent {
        NetEvent::Line(ServerMessage::parse(s).unwrap())
    }
    fn feed(state: &mut AppState, events: Vec<NetEvent>) -> Vec<Effect> {
        events
            .into_iter()
            .flat_map(|e| apply(state, e, stamp("10:00")))
            .collect()
    }
    fn connecting(addr: &str, attempt: u32) -> NetEvent {
        NetEvent::Connecting {
            addr: addr.into(),
            attempt,
        }
    }
    /// The connection to the (only) server was lost; `retry_in` as net.rs planned it.
    fn lost(reason: &str, retry_in: Option<Duration>) -> NetEvent {
        NetEvent::Disconnected {
            reason: reason.into(),
            retry_in,
            next: None,
        }
    }
    /// The connection was lost and the automatic reconnection joined again as alice;
    /// the server tags her join `join_id`.
    fn lost_and_rejoined(reason: &str, join_id: &str) -> Vec<NetEvent> {
        vec![
            lost(reason, Some(Duration::from_secs(1))),
            NetEvent::Opened,
            tagged(join_id, false, "alice has joined the chat"),
            NetEvent::Welcome {
                nick: nick("alice"),
            },
        ]
    }
    fn texts(state: &AppState) -> Vec<String> {
        state.history.iter().map(|l| l.plain().to_owned()).collect()
    }
    fn last_text(state: &AppState) -> Option<&str> {
        state.history.back().map(|l| l.plain())
    }
    fn online(state: &AppState) -> Vec<String> {
        state.online_names().iter().map(|s| s.to_string()).collect()
    }

    /// A window that has connected as `me`, with `others` online, history cleared.
    fn chatting(me: &str, others: &[&str]) -> AppState {
        let mut s = AppState::new(DEFAULT_SERVER, me, ThemeChoice::Dark);
        s.active_server = DEFAULT_SERVER.into();
        let mut who: Vec<&str> = others.to_vec();
        who.push(me);
        who.sort_by_key(|n| n.to_ascii_lowercase());
        feed(
            &mut s,
            vec![
                connecting(DEFAULT_SERVER, 0),
                NetEvent::Opened,
                line(&format!("{me} has joined the chat")),
                NetEvent::Welcome { nick: nick(me) },
                line(&format!("Users online: {}", who.join(", "))),
            ],
        );
        s.history.clear();
        s
    }

    #[test]
    fn connect_flow_switches_screen_and_remembers() {
        let mut s = AppState::new(DEFAULT_SERVER, "alice", ThemeChoice::Dark);
        s.active_server = DEFAULT_SERVER.into();
        let fx = feed(
            &mut s,
            vec![
                connecting(DEFAULT_SERVER, 0),
                NetEvent::Opened,
                line("alice has joined the chat"),
                NetEvent::Welcome {
                    nick: nick("alice"),
                },
            ],
        );
        assert_eq!(s.screen, Screen::Chat);
        assert_eq!(&*s.me, "alice");
        assert_eq!(
            s.status.describe(&s.active_server),
            "Connected to 127.0.0.1:9090 as alice"
        );
        assert_eq!(
            fx,
            vec![
                Effect::Remember {
                    server: DEFAULT_SERVER.into(),
                    nick: "alice".into()
                },
                Effect::FocusInput
            ]
        );
        // Our own join notice and the connect note are kept (DEFECTS.md 13).
        assert_eq!(
            texts(&s),
            vec![
                "alice has joined the chat",
                "Connected to 127.0.0.1:9090 as alice"
            ]
        );
        // The automatic /who fills the panel without a history line.
        feed(&mut s, vec![line("Users online: alice, bob")]);
        assert_eq!(online(&s), vec!["alice", "bob"]);
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.silent_who, 0);
    }

    #[test]
    fn rejected_nickname_returns_to_connect_screen_with_reason() {
        let mut s = AppState::new(DEFAULT_SERVER, "bob", ThemeChoice::Dark);
        feed(
            &mut s,
            vec![
                connecting(DEFAULT_SERVER, 0),
                NetEvent::Opened,
                line("ERR nick-taken Nickname bob is already in use"),
                NetEvent::NickWanted,
            ],
        );
        assert_eq!(s.screen, Screen::Connect);
        assert!(s.awaiting_nick);
        assert_eq!(s.connect_error, "Nickname bob is already in use");
        // Past the attempt limit the server closes: no longer awaiting; reason kept.
        feed(
            &mut s,
            vec![
                line("ERR too-many-attempts Too many nickname attempts; goodbye"),
                lost("Too many nickname attempts; goodbye", None),
            ],
        );
        assert!(!s.awaiting_nick);
        assert_eq!(s.connect_error, "Too many nickname attempts; goodbye");
    }

    #[test]
    fn chat_lines_are_styled_by_sender() {
        let mut s = chatting("alice", &["bob"]);
        feed(
            &mut s,
            vec![
                line("alice: hi"),
                line("bob: hello: there"),
                line("ALICE: case"),
            ],
        );
        let kinds: Vec<LineKind> = s.history.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, vec![LineKind::Own, LineKind::Other, LineKind::Own]);
        assert_eq!(
            texts(&s),
            vec!["alice: hi", "bob: hello: there", "ALICE: case"]
        );
        assert!(s.history.iter().all(|l| l.time() == "10:00"));
    }

    #[test]
    fn private_messages_both_directions() {
        let mut s = chatting("alice", &["bob"]);
        feed(
            &mut s,
            vec![line("bob -> alice: psst"), line("alice -> bob: ok")],
        );
        assert!(s.history.iter().all(|l| l.kind == LineKind::Private));
        assert_eq!(texts(&s), vec!["bob -> alice: psst", "alice -> bob: ok"]);
    }

    #[test]
    fn mod_4_kicks_and_mutes_are_system_lines_and_the_list_follows_the_leave_line() {
        let mut s = chatting("alice", &["bob", "teacher"]);
        feed(
            &mut s,
            vec![
                line("teacher is now an operator"),
                line("bob was muted by teacher for 5 minutes"),
                line("bob was kicked by teacher (spamming)"),
                line("bob has left the chat"),
            ],
        );
        assert_eq!(online(&s), vec!["alice", "teacher"]);
        assert_eq!(
            texts(&s),
            vec![
                "teacher is now an operator",
                "bob was muted by teacher for 5 minutes",
                "bob was kicked by teacher (spamming)",
                "bob has left the chat",
            ]
        );
        let kinds: Vec<LineKind> = s.history.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            vec![
                LineKind::Rename,
                LineKind::Rename,
                LineKind::Leave,
                LineKind::Leave
            ]
        );
        assert!(
            s.notice.is_empty(),
            "someone else's mute is no notice for us"
        );
    }

    #[test]
    fn mod_5_being_muted_is_told_in_the_notice() {
        let mut s = chatting("alice", &["teacher"]);
        feed(
            &mut s,
            vec![line("alice was muted by teacher for 1 minute")],
        );
        assert!(s.notice_is_error);
        assert!(s.notice.contains("muted for 1 minute"), "{}", s.notice);
        feed(&mut s, vec![line("alice was unmuted by teacher")]);
        assert!(!s.notice_is_error);
    }

    #[test]
    fn mod_6_when_we_are_banned_we_say_why_and_do_not_retry() {
        let mut s = chatting("alice", &["teacher"]);
        feed(
            &mut s,
            vec![
                line("alice was banned by teacher (flooding)"),
                line("ERR banned Your address was banned by teacher"),
                // net.rs stops retrying after `ERR banned`: no retry time.
                lost("closed by the server", None),
            ],
        );
        assert!(s.notice_is_error);
        assert!(
            s.notice.contains("banned by teacher") && s.notice.contains("not reconnect"),
            "{}",
            s.notice
        );
        assert!(
            texts(&s).contains(&"alice was banned by teacher (flooding)".to_owned()),
            "{:?}",
            texts(&s)
        );
        assert!(matches!(
            s.status,
            Status::Disconnected { retry_in: None, .. }
        ));
    }

    #[test]
    fn online_panel_is_a_set_of_joins_leaves_and_renames() {
        let mut s = chatting("alice", &["bob"]);
        // A join the /who answer already had (overlap), another case of nobody.
        feed(
            &mut s,
            vec![
                line("bob has joined the chat"),
                line("carol has joined the chat"),
                line("carol is now known as Caz"),
                line("bob has left the chat"),
            ],
        );
        assert_eq!(online(&s), vec!["alice", "Caz"]);
        feed(&mut s, vec![line("dave has left the chat")]);
        assert_eq!(online(&s), vec!["alice", "Caz"]);
        assert_eq!(
            texts(&s),
            vec![
                "bob has joined the chat",
                "carol has joined the chat",
                "carol is now known as Caz",
                "bob has left the chat",
                "dave has left the chat"
            ]
        );
    }

    #[test]
    fn own_rename_updates_me_and_is_remembered() {
        let mut s = chatting("alice", &["bob"]);
        let fx = feed(&mut s, vec![line("alice is now known as ally")]);
        assert_eq!(&*s.me, "ally");
        assert_eq!(
            s.status,
            Status::Connected {
                nick: "ally".into()
            }
        );
        assert_eq!(
            fx,
            vec![Effect::Remember {
                server: DEFAULT_SERVER.into(),
                nick: "ally".into()
            }]
        );
        assert_eq!(online(&s), vec!["ally", "bob"]);
        feed(&mut s, vec![line("ally: now")]);
        assert_eq!(s.history.back().unwrap().kind, LineKind::Own);
    }

    #[test]
    fn typed_who_is_shown_and_multi_line_answer_replaces_the_set() {
        let mut s = chatting("alice", &["bob"]);
        feed(
            &mut s,
            vec![
                line("Users online: alice, bob,"),
                line("Users online: carol, dave"),
            ],
        );
        assert_eq!(online(&s), vec!["alice", "bob", "carol", "dave"]);
        assert_eq!(
            texts(&s),
            vec!["Users online: alice, bob,", "Users online: carol, dave"]
        );
        feed(&mut s, vec![line("Users online: alice")]);
        assert_eq!(online(&s), vec!["alice"]);
    }

    #[test]
    fn errors_in_chat_are_shown() {
        let mut s = chatting("alice", &[]);
        feed(
            &mut s,
            vec![line("ERR no-such-nick No user named zed is online")],
        );
        assert_eq!(s.history.back().unwrap().kind, LineKind::Error);
        assert_eq!(
            texts(&s),
            vec!["No user named zed is online (no-such-nick)"]
        );
        feed(
            &mut s,
            vec![line("ERR nick-taken Nickname bob is already in use")],
        );
        assert_eq!(s.screen, Screen::Chat, "a failed /nick keeps us chatting");
        assert_eq!(s.notice, "Nickname bob is already in use");
    }

    #[test]
    fn disconnect_keeps_history_and_reconnect_continues_it() {
        let mut s = chatting("alice", &["bob"]);
        feed(&mut s, vec![line("bob: before")]);
        feed(
            &mut s,
            vec![
                line("ERR server-shutdown Server is shutting down"),
                lost("Server is shutting down", Some(Duration::from_millis(1100))),
            ],
        );
        assert_eq!(s.screen, Screen::Chat);
        assert!(s.online.is_empty());
        assert_eq!(
            s.status.describe(DEFAULT_SERVER),
            "Disconnected: Server is shutting down. Retrying in 1 s\u{2026}"
        );
        // Failed retries change only the status line.
        let before = s.history.len();
        feed(
            &mut s,
            vec![
                connecting(DEFAULT_SERVER, 1),
                lost("connection refused", Some(Duration::from_secs(2))),
                connecting(DEFAULT_SERVER, 2),
                NetEvent::Opened,
                line("alice has joined the chat"),
                NetEvent::Welcome {
                    nick: nick("alice"),
                },
                line("Users online: alice, bob"),
                line("bob: after"),
            ],
        );
        assert_eq!(s.history.len(), before + 3);
        let t = texts(&s);
        assert_eq!(t[0], "bob: before");
        assert_eq!(t.last().unwrap(), "bob: after");
        assert_eq!(online(&s), vec!["alice", "bob"]);
        assert!(s.status.is_connected());
    }

    #[test]
    fn server_closing_mid_line_and_garbage() {
        let mut s = chatting("alice", &[]);
        feed(
            &mut s,
            vec![
                NetEvent::Garbled("not a protocol line".into()),
                lost(
                    "the server closed the connection in the middle of a line",
                    Some(Duration::from_secs(1)),
                ),
            ],
        );
        assert_eq!(
            texts(&s),
            vec![
                "Unreadable line from the server: not a protocol line",
                "Disconnected: the server closed the connection in the middle of a line; reconnecting in 1 s"
            ]
        );
    }

    #[test]
    fn long_and_multibyte_lines_kept_whole() {
        let mut s = chatting("alice", &["bob"]);
        let long = "\u{e9}".repeat(512);
        let msg = ServerMessage::Chat {
            from: nick("bob"),
            text: Text::new(&long).unwrap(),
        };
        feed(&mut s, vec![NetEvent::Line(msg)]);
        assert_eq!(s.history.back().unwrap().body(), long.as_str());
    }

    #[test]
    fn history_cap_holds_under_events() {
        let mut s = chatting("alice", &["bob"]);
        s.history_cap = 50;
        for _ in 0..60 {
            apply(&mut s, line("bob: spam"), stamp("10:00"));
            assert!(s.history.len() <= 50);
        }
        assert_eq!(s.history.len(), 50);
    }

    fn utc(t: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()
    }

    /// An event with its id and time, live or earlier (from a block).
    fn tagged(id: &str, earlier: bool, text: &str) -> NetEvent {
        NetEvent::Timed {
            at: utc("2026-12-01T09:30:00Z"),
            id: Some(EventId::new(id).unwrap()),
            earlier,
            msg: ServerMessage::parse(text).unwrap(),
        }
    }

    fn block(events: Vec<NetEvent>) -> Vec<NetEvent> {
        let mut all = vec![line(&format!("Earlier events: {}", events.len()))];
        all.extend(events);
        all.push(line("End of earlier events"));
        all
    }

    fn earlier_flags(state: &AppState) -> Vec<bool> {
        state.history.iter().map(|l| l.earlier).collect()
    }

    #[test]
    fn backlog_is_shown_dimmed_dated_and_leaves_who_is_online_alone() {
        let mut s = chatting("alice", &["bob"]);
        let fx = feed(
            &mut s,
            block(vec![
                tagged("7:1", true, "carol has joined the chat"),
                tagged("7:2", true, "carol: hello alice"),
                tagged("7:3", true, "carol has left the chat"),
            ]),
        );
        assert!(fx.is_empty(), "the past notifies nobody: {fx:?}");
        assert_eq!(
            texts(&s),
            vec![
                "Earlier in the chat:",
                "carol has joined the chat",
                "carol: hello alice",
                "carol has left the chat"
            ]
        );
        assert_eq!(earlier_flags(&s), vec![true; 4]);
        assert!(s.history.iter().all(|l| !l.mention), "not a call now");
        assert_eq!(online(&s), vec!["alice", "bob"], "carol's join is the past");
        // Its date shows above it (a day separator); live lines of the same day after
        // it are not dimmed and get none.
        assert!(s.starts_day(0));
        feed(&mut s, vec![tagged("7:4", false, "bob: now")]);
        assert_eq!(s.history.back().map(|l| l.earlier), Some(false));
        assert!(!s.starts_day(4));
        assert_eq!(s.block, None);
        // A block after live lines of the same day still shows its date.
        s.history_asked = 1;
        feed(&mut s, block(vec![tagged("6:9", true, "dave: old")]));
        assert_eq!(texts(&s)[5], "Earlier in the chat (/history):");
        assert!(s.starts_day(5));
        assert!(!s.starts_day(6));
    }

    #[test]
    fn an_event_already_shown_is_not_repeated() {
        let mut s = chatting("alice", &["bob"]);
        feed(
            &mut s,
            vec![
                tagged("7:1", false, "bob: one"),
                tagged("7:2", false, "bob: two"),
            ],
        );
        // The user asks for the last three: only the one not on screen is added.
        s.input = "/history 3".into();
        let fx = crate::actions::submit_input(&mut s);
        assert_eq!(fx.len(), 1);
        assert_eq!(s.history_asked, 1);
        feed(
            &mut s,
            block(vec![
                tagged("7:0", true, "bob has joined the chat"),
                tagged("7:1", true, "bob: one"),
                tagged("7:2", true, "bob: two"),
            ]),
        );
        assert_eq!(
            texts(&s),
            vec![
                "bob: one",
                "bob: two",
                "Earlier in the chat (/history):",
                "bob has joined the chat"
            ]
        );
        assert_eq!(s.history_asked, 0);
        // Asked again: everything is there already, and the user is told so.
        s.history_asked = 1;
        feed(
            &mut s,
            block(vec![
                tagged("7:1", true, "bob: one"),
                tagged("7:2", true, "bob: two"),
            ]),
        );
        assert_eq!(
            last_text(&s),
            Some("All 2 earlier messages asked for are shown already")
        );
        s.history_asked = 1;
        feed(&mut s, block(vec![]));
        assert_eq!(last_text(&s), Some("The server keeps no earlier messages"));
    }

    #[test]
    fn after_a_reconnect_the_missed_events_follow_in_order() {
        let mut s = chatting("alice", &["bob"]);
        feed(&mut s, vec![tagged("7:1", false, "bob: before")]);
        let back = lost_and_rejoined("the connection was reset", "7:5");
        feed(&mut s, back.clone());
        feed(
            &mut s,
            block(vec![
                tagged("7:2", true, "alice has left the chat"),
                tagged("7:3", true, "bob: while away"),
                tagged("7:4", true, "bob: still away"),
            ]),
        );
        feed(&mut s, vec![tagged("7:6", false, "bob: live again")]);
        assert_eq!(
            texts(&s),
            vec![
                "bob: before",
                "Disconnected: the connection was reset; reconnecting in 1 s",
                "alice has joined the chat",
                "Connected to 127.0.0.1:9090 as alice",
                "While you were away:",
                "alice has left the chat",
                "bob: while away",
                "bob: still away",
                "bob: live again"
            ]
        );
        assert!(!s.away);
        // Away again, and nothing was missed this time: said so.
        feed(&mut s, back);
        feed(&mut s, block(vec![]));
        assert_eq!(
            last_text(&s),
            Some("Nothing was missed while you were away")
        );
    }

    /// Joining a chat where nothing was said yet: the empty backlog block says nothing
    /// (only a `/history` the user typed gets an answer when it is empty).
    #[test]
    fn an_empty_backlog_on_joining_says_nothing() {
        let mut s = chatting("alice", &[]);
        feed(&mut s, block(vec![]));
        assert!(texts(&s).is_empty(), "{:?}", texts(&s));
        assert_eq!(s.block, None);
        s.input = "/history".into();
        crate::actions::submit_input(&mut s);
        feed(&mut s, block(vec![]));
        assert_eq!(texts(&s), vec!["The server keeps no earlier messages"]);
    }

    /// MOD-7: moderation notices are retained and replayed; in a block they read as
    /// they did live (a kick as a leave), dimmed, and change nothing now.
    #[test]
    fn earlier_moderation_notices_read_as_they_did_live() {
        let mut s = chatting("alice", &["bob"]);
        feed(
            &mut s,
            block(vec![
                tagged("7:1", true, "teacher is now an operator"),
                tagged("7:2", true, "alice was muted by teacher for 5 minutes"),
                tagged("7:3", true, "carol was kicked by teacher (spam)"),
            ]),
        );
        let kinds: Vec<LineKind> = s.history.iter().skip(1).map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            vec![LineKind::Rename, LineKind::Rename, LineKind::Leave]
        );
        assert!(s.history.iter().all(|l| l.earlier));
        assert!(s.notice.is_empty(), "an old mute is no notice now");
        assert_eq!(online(&s), vec!["alice", "bob"]);
    }

    /// MOD-4: a kicked user sees the notice, then why, and the client stays off.
    #[test]
    fn mod_4_when_we_are_kicked_we_say_why_and_do_not_retry() {
        let mut s = chatting("alice", &["teacher"]);
        feed(
            &mut s,
            vec![
                tagged("7:9", false, "alice was kicked by teacher (off topic)"),
                line("ERR kicked You were kicked by teacher"),
                lost("You were kicked by teacher", None),
            ],
        );
        assert_eq!(
            texts(&s),
            vec![
                "alice was kicked by teacher (off topic)",
                "Disconnected: You were kicked by teacher"
            ]
        );
        assert!(s.notice_is_error && s.notice.contains("not reconnect"));
    }

    #[test]
    fn a_history_gap_is_told_before_the_backlog() {
        let mut s = chatting("alice", &["bob"]);
        let mut events = lost_and_rejoined("the server closed the connection", "9:3");
        events.push(line("ERR history-gap Events after 7:5 are not available"));
        events.extend(block(vec![tagged("9:1", true, "bob: after the restart")]));
        feed(&mut s, events);
        let t = texts(&s);
        assert_eq!(
            &t[t.len() - 4..],
            &[
                "Connected to 127.0.0.1:9090 as alice",
                HISTORY_GAP_NOTE,
                "Earlier in the chat:",
                "bob: after the restart"
            ]
        );
        let gap = s.history.iter().find(|l| l.plain() == HISTORY_GAP_NOTE);
        assert_eq!(gap.map(|l| l.kind), Some(LineKind::Error));
    }

    #[test]
    fn server_times_are_shown_in_local_time() {
        let mut s = chatting("alice", &["bob"]);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T23:59:30Z")
            .unwrap()
            .to_utc();
        let msg = ServerMessage::parse("bob: from yesterday").unwrap();
        let ev = NetEvent::Timed {
            at,
            id: None,
            earlier: false,
            msg,
        };
        apply(&mut s, ev, stamp("10:00"));
        let line = s.history.back().unwrap();
        assert_eq!(line.at, at.with_timezone(&chrono::Local).naive_local());
        assert_eq!(line.body(), "from yesterday");
    }

    #[test]
    fn mention_or_whisper_while_unfocused_notifies() {
        let mut s = chatting("alice", &["bob"]);
        assert!(
            feed(&mut s, vec![line("bob: hi alice")]).is_empty(),
            "focused"
        );
        s.focused = false;
        let fx = feed(
            &mut s,
            vec![
                line("bob: hi Alice!"),
                line("bob: malice"),
                line("alice: alice"),
                line("bob -> alice: psst"),
            ],
        );
        assert_eq!(
            fx,
            vec![
                Effect::Notify {
                    title: "bob mentioned you".into(),
                    body: "hi Alice!".into()
                },
                Effect::Notify {
                    title: "bob whispers to you".into(),
                    body: "psst".into()
                }
            ]
        );
        assert!(s.history.iter().take(2).all(|l| l.mention));
    }

    #[test]
    fn connect_failure_on_connect_screen_is_shown_there() {
        let mut s = AppState::new(DEFAULT_SERVER, "alice", ThemeChoice::Dark);
        feed(
            &mut s,
            vec![
                connecting(DEFAULT_SERVER, 0),
                lost("cannot connect to 127.0.0.1:9090: Connection refused", None),
            ],
        );
        assert_eq!(s.screen, Screen::Connect);
        assert_eq!(
            s.connect_error,
            "Cannot connect to 127.0.0.1:9090: Connection refused"
        );
        assert!(s.history.is_empty());
    }

    /// Issue 15: connecting to a list of servers none of which answers says why for
    /// each, one per line.
    #[test]
    fn every_unreachable_server_of_a_list_is_told() {
        let mut s = AppState::new("a:1,b:2", "alice", ThemeChoice::Dark);
        let fx = crate::actions::connect(&mut s);
        assert_eq!(fx.len(), 1);
        feed(
            &mut s,
            vec![
                connecting("a:1", 0),
                lost("cannot connect to a:1: refused", Some(Duration::ZERO)),
                connecting("b:2", 1),
                lost("cannot connect to b:2: refused", None),
            ],
        );
        assert_eq!(s.screen, Screen::Connect);
        assert_eq!(
            s.connect_error,
            "Cannot connect to a:1: refused\nCannot connect to b:2: refused"
        );
    }

    /// Issue 15: with a list, the line telling of the loss names the server the client
    /// will try next (as the status line and "Connected to ..." do once it does); with
    /// one server it says no more than before.
    #[test]
    fn a_lost_connection_names_the_next_server_of_a_list() {
        let mut s = chatting("alice", &["bob"]);
        s.active_server = "a:1,b:2".into();
        s.node = "a:1".into();
        feed(
            &mut s,
            vec![NetEvent::Disconnected {
                reason: "the connection was reset".into(),
                retry_in: Some(Duration::from_secs(1)),
                next: Some("b:2".into()),
            }],
        );
        assert_eq!(
            texts(&s),
            vec!["Disconnected: the connection was reset; reconnecting to b:2 in 1 s"]
        );
        feed(&mut s, vec![connecting("b:2", 1)]);
        assert_eq!(s.status_text(), "Reconnecting to b:2 (attempt 2)\u{2026}");
        // No retry planned: nothing to name.
        feed(
            &mut s,
            vec![
                NetEvent::Opened,
                NetEvent::Welcome {
                    nick: nick("alice"),
                },
                NetEvent::Disconnected {
                    reason: "You were kicked by teacher".into(),
                    retry_in: None,
                    next: None,
                },
            ],
        );
        assert_eq!(
            last_text(&s),
            Some("Disconnected: You were kicked by teacher")
        );
    }

    #[test]
    fn unread_counts_while_unfocused() {
        let mut s = chatting("alice", &["bob"]);
        s.focused = false;
        feed(
            &mut s,
            vec![
                line("bob: one"),
                line("bob has left the chat"),
                line("alice: mine"),
            ],
        );
        assert_eq!(s.unread, 1);
    }

    fn changed(server: &str) -> crate::tls::Changed {
        crate::tls::Changed {
            server: server.into(),
            pinned: chat_proto::Fingerprint([0xAA; 32]),
            presented: chat_proto::Fingerprint([0xBB; 32]),
        }
    }

    /// How net.rs reports a refused certificate: the warning's event, then a close
    /// without a retry (a security stop, not a network fault).
    fn refused(c: &crate::tls::Changed) -> Vec<NetEvent> {
        vec![
            NetEvent::CertChanged(c.clone()),
            lost(
                &format!("the certificate of {} has CHANGED; refused", c.server),
                None,
            ),
        ]
    }

    /// TLS-7: while chatting, the reconnection finds another certificate: the history
    /// gets a loud warning naming host:port, both fingerprints and what to do; the note
    /// under the input says it too; the status line shows no retry; nothing is done
    /// for the user (no effect at all, in particular no trust).
    #[test]
    fn tls_7_a_changed_certificate_stops_loudly_and_trusts_nothing() {
        let mut s = chatting("alice", &[]);
        let c = changed("chat.example:9443");
        let mut fx = feed(
            &mut s,
            vec![
                lost("the connection was reset", Some(Duration::from_secs(1))),
                connecting("tls://chat.example:9443", 1),
            ],
        );
        fx.extend(feed(&mut s, refused(&c)));
        assert_eq!(fx, vec![]);
        let warning = s
            .history
            .iter()
            .filter(|l| l.kind == LineKind::Error)
            .map(|l| l.plain().to_owned())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(warning.starts_with("WARNING"), "{warning}");
        for part in [
            "chat.example:9443",
            "CHANGED",
            &c.pinned.to_string(),
            &c.presented.to_string(),
            "/trust",
            "no automatic retry",
        ] {
            assert!(warning.contains(part), "{part:?} not in {warning}");
        }
        assert!(
            s.notice_is_error && s.notice.contains("/trust"),
            "{}",
            s.notice
        );
        assert!(s.notice.contains("chat.example:9443"), "{}", s.notice);
        assert!(
            matches!(s.status, Status::Disconnected { retry_in: None, .. }),
            "{:?}",
            s.status
        );
        assert!(!s.status_text().contains("Retrying"), "{}", s.status_text());
        assert_eq!(s.cert_changed, Some(c));
        // A later successful connection (after /trust) ends the refusal.
        feed(
            &mut s,
            vec![
                NetEvent::Opened,
                NetEvent::Welcome {
                    nick: nick("alice"),
                },
            ],
        );
        assert_eq!(s.cert_changed, None);
    }

    /// TLS-7: on the connect screen the warning is the error shown under the form,
    /// once (the close that follows does not add a second line).
    #[test]
    fn tls_7_a_changed_certificate_on_the_connect_screen() {
        let mut s = AppState::new("tls://127.0.0.1:9443", "alice", ThemeChoice::Dark);
        let c = changed("127.0.0.1:9443");
        let fx = feed(
            &mut s,
            [vec![connecting("tls://127.0.0.1:9443", 0)], refused(&c)].concat(),
        );
        assert_eq!(fx, vec![]);
        assert_eq!(s.screen, Screen::Connect);
        assert!(
            s.connect_error.starts_with("WARNING"),
            "{}",
            s.connect_error
        );
        // Once: the close that follows adds nothing.
        assert_eq!(s.connect_error.lines().count(), 4, "{}", s.connect_error);
        assert!(s.connect_error.contains(&c.presented.to_string()));
        assert!(
            s.connect_error
                .contains("Trust the new certificate and connect")
        );
        assert_eq!(s.cert_changed, Some(c));
    }
}
