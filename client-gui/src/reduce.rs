//! How each network event changes the window's state: pure, so every case is a unit
//! test without a display or a socket.
//!
//! The caller passes the local time as text, so results do not depend on the clock.

use std::sync::Arc;

use chat_proto::{Action, ErrorCode, ServerMessage};
use druid::im::OrdMap;

use crate::effect::Effect;
use crate::net::NetEvent;
use crate::state::{AppState, LineKind, Screen, Stamp, Status, nick_key};

/// Applies `event` to `state`; returns what the caller must do next.
pub fn apply(state: &mut AppState, event: NetEvent, now: Stamp) -> Vec<Effect> {
    let mut effects = Vec::new();
    match event {
        NetEvent::Connecting { addr, attempt } => {
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
            state.awaiting_nick = false;
            state.connect_error.clear();
            // "Not sent: not connected" and the like are over.
            if state.notice_is_error {
                state.clear_notice();
            }
            // The network thread asks `/who` right after the handshake.
            state.silent_who += 1;
            let server = state.active_server.clone();
            state.push_line(
                now,
                LineKind::Info,
                "",
                &format!("Connected to {server} as {nick}"),
            );
            effects.push(Effect::Remember {
                server,
                nick: nick.to_owned(),
            });
            effects.push(Effect::FocusInput);
        }
        NetEvent::Line(msg) => on_line(state, msg, now, &mut effects),
        // The server's time, in the user's time zone: the same event shows the same
        // time in every window, and day separators follow the server's dates.
        NetEvent::Timed { at, msg } => {
            let at = at.with_timezone(&chrono::Local).naive_local();
            on_line(state, msg, at, &mut effects)
        }
        // An earlier event (spec §17: the backlog after joining, what was missed while
        // disconnected, a `/history` answer): shown dimmed at its own time, so the day
        // separators give its date; it changes nothing about who is online now.
        NetEvent::Earlier { at, msg } => {
            let at = at.with_timezone(&chrono::Local).naive_local();
            on_earlier(state, &msg, at);
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
        NetEvent::Disconnected { reason, retry_in } => {
            let was_chatting = state.status.is_connected();
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
                } else if !state.connect_error.contains(reason.as_str()) {
                    // Keep the nickname reason and add why the connection ended.
                    state.connect_error = format!("{} ({reason})", state.connect_error);
                }
            } else if was_chatting {
                let note = match retry_in {
                    Some(s) => format!("Disconnected: {reason}; reconnecting in {s} s"),
                    None => format!("Disconnected: {reason}"),
                };
                state.push_line(now, LineKind::Info, "", &note);
            }
        }
    }
    effects
}

/// Shows an earlier event dimmed, as the live one would read.
fn on_earlier(state: &mut AppState, msg: &ServerMessage, at: Stamp) {
    let (kind, who, text) = match msg {
        ServerMessage::Chat { from, text } => {
            let kind = if from.as_str().eq_ignore_ascii_case(&state.me) {
                LineKind::Own
            } else {
                LineKind::Other
            };
            (kind, from.as_str().to_owned(), text.as_str().to_owned())
        }
        ServerMessage::Joined(_) => (LineKind::Join, String::new(), msg.to_string()),
        ServerMessage::Left(_) => (LineKind::Leave, String::new(), msg.to_string()),
        ServerMessage::Renamed { .. } => (LineKind::Rename, String::new(), msg.to_string()),
        // A block holds nothing else (HIST-1); anything else is shown as it is.
        other => (LineKind::Info, String::new(), other.to_string()),
    };
    state.push_earlier(at, kind, &who, &text);
}

fn on_line(state: &mut AppState, msg: ServerMessage, now: Stamp, effects: &mut Vec<Effect>) {
    match &msg {
        ServerMessage::NickPrompt | ServerMessage::Connected => {}
        // Answers to `/caps`, which this client does not send yet.
        ServerMessage::Caps { .. } | ServerMessage::CapsEnabled(_) => {}
        // A block's frame (HIST-2): its events come tagged and are shown dimmed; only
        // an empty answer to a `/history` the user typed needs saying.
        ServerMessage::HistoryStart(0) => {
            state.push_line(now, LineKind::Info, "", "No earlier messages");
        }
        ServerMessage::HistoryStart(_) | ServerMessage::HistoryEnd => {}
        // Without tags (a server that refused them) earlier events come readable.
        ServerMessage::Earlier { .. } => {
            state.push_line(now, LineKind::Info, "", &msg.to_string());
        }
        // §18: operator notices are system lines; a kick or a ban is followed by the
        // core leave line, which updates the user list.
        ServerMessage::Operator(_) => {
            state.push_line(now, LineKind::Rename, "", &msg.to_string());
        }
        ServerMessage::Moderated { target, action, .. } => {
            let kind = match action {
                Action::Kicked(_) | Action::Banned(_) => LineKind::Leave,
                Action::Muted(_) | Action::Unmuted | Action::Unbanned => LineKind::Rename,
            };
            state.push_line(now, kind, "", &msg.to_string());
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
        // RESUME-3: what was said while we were away could not all be recovered.
        ServerMessage::Error {
            code: ErrorCode::HistoryGap,
            ..
        } => {
            state.push_line(
                now,
                LineKind::Error,
                "",
                "Some messages sent while you were disconnected could not be recovered; the latest follow",
            );
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
            let kind = if from.as_str().eq_ignore_ascii_case(&state.me) {
                LineKind::Own
            } else {
                LineKind::Other
            };
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

fn capitalize(s: &str) -> String {
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
    fn texts(state: &AppState) -> Vec<String> {
        state.history.iter().map(|l| l.plain().to_owned()).collect()
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
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 0,
                },
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
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 0,
                },
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
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 0,
                },
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
                NetEvent::Disconnected {
                    reason: "Too many nickname attempts; goodbye".into(),
                    retry_in: None,
                },
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
                NetEvent::Disconnected {
                    reason: "closed by the server".into(),
                    retry_in: None,
                },
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
                NetEvent::Disconnected {
                    reason: "Server is shutting down".into(),
                    retry_in: Some(Duration::from_millis(1100)),
                },
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
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 1,
                },
                NetEvent::Disconnected {
                    reason: "connection refused".into(),
                    retry_in: Some(Duration::from_secs(2)),
                },
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 2,
                },
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
                NetEvent::Disconnected {
                    reason: "the server closed the connection in the middle of a line".into(),
                    retry_in: Some(Duration::from_secs(1)),
                },
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

    /// Spec §17: earlier events are shown dimmed at their own time and change nothing
    /// about who is online; a gap is said.
    #[test]
    fn earlier_events_are_dimmed_and_a_gap_is_told() {
        let mut s = chatting("alice", &["bob"]);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T20:00:00Z")
            .unwrap()
            .to_utc();
        let online = s.online.len();
        for l in ["carol has joined the chat", "carol: earlier"] {
            let msg = ServerMessage::parse(l).unwrap();
            apply(&mut s, NetEvent::Earlier { at, msg }, stamp("10:00"));
        }
        assert_eq!(
            s.online.len(),
            online,
            "earlier joins are not who is online now"
        );
        let last = s.history.back().unwrap();
        assert!(last.earlier && last.at.date() != stamp("10:00").date());
        assert_eq!(last.body(), "earlier");
        apply(
            &mut s,
            line("ERR history-gap Some events you missed are no longer kept"),
            stamp("10:00"),
        );
        let gap = s.history.back().unwrap();
        assert!(!gap.earlier && gap.plain().contains("could not be recovered"));
    }

    #[test]
    fn server_times_are_shown_in_local_time() {
        let mut s = chatting("alice", &["bob"]);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T23:59:30Z")
            .unwrap()
            .to_utc();
        let msg = ServerMessage::parse("bob: from yesterday").unwrap();
        apply(&mut s, NetEvent::Timed { at, msg }, stamp("10:00"));
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
                NetEvent::Connecting {
                    addr: DEFAULT_SERVER.into(),
                    attempt: 0,
                },
                NetEvent::Disconnected {
                    reason: "cannot connect to 127.0.0.1:9090: Connection refused".into(),
                    retry_in: None,
                },
            ],
        );
        assert_eq!(s.screen, Screen::Connect);
        assert_eq!(
            s.connect_error,
            "Cannot connect to 127.0.0.1:9090: Connection refused"
        );
        assert!(s.history.is_empty());
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
}
