//! What the user's actions do to the state: connect, send, recall, paste, click a name,
//! select and copy, switch theme. Pure like [`crate::reduce`]; the widgets only call
//! these and carry out the returned [`Effect`]s.

use std::sync::Arc;

use chat_proto::limits::MAX_LINE_BYTES;
use chat_proto::{ClientError, ClientMessage, Nickname};

use crate::effect::Effect;
use crate::failover::ServerList;
use crate::net::NetCommand;
use crate::reduce::capitalize;
use crate::selection::{TextPos, TextSelection};
use crate::state::{AppState, LineKind, RECALL_CAP, Stamp, Status};

/// The connect screen's Connect button (or Enter there).
pub fn connect(state: &mut AppState) -> Vec<Effect> {
    // One server, or the chat's servers separated by commas (issue 15's failover).
    let server = match ServerList::parse(&state.server) {
        Ok(list) => list.to_string(),
        Err(e) => {
            state.connect_error = capitalize(&e.to_string());
            return vec![];
        }
    };
    // Checked here with the spec's own rule, so no handshake attempt is wasted on it.
    let nick = match Nickname::new(&state.nick) {
        Ok(n) => n,
        Err(e) => {
            state.connect_error = format!("Invalid nickname: {e}");
            return vec![];
        }
    };
    state.connect_error.clear();
    // Connecting anew is no acceptance of a refused certificate: it is checked again.
    state.cert_changed = None;
    let same_server = server == state.active_server;
    state.server = server.clone();
    if state.awaiting_nick && same_server {
        state.status = Status::Handshake;
        return vec![Effect::Net(NetCommand::Nick(nick))];
    }
    state.active_server = server.clone();
    state.node.clear();
    state.awaiting_nick = false;
    state.status = Status::Connecting {
        addr: server.as_str().into(),
        attempt: 0,
    };
    vec![Effect::Net(NetCommand::Connect { addr: server, nick })]
}

/// The Reconnect action: connect again now, keeping the history.
pub fn reconnect(state: &mut AppState) -> Vec<Effect> {
    if state.active_server.is_empty() {
        return vec![];
    }
    state.clear_notice();
    vec![Effect::Net(NetCommand::Reconnect)]
}

/// What the input's counter shows: the bytes the line takes on the wire and whether
/// that is over the spec's limit (FRAME-3).
pub fn input_size(input: &str) -> (usize, bool) {
    let len = match ClientMessage::parse(input) {
        Ok(m) => m.encoded_len(),
        Err(_) => input.len(),
    };
    (len, len > MAX_LINE_BYTES)
}

/// Checks one line the user wants to send: the message, or why it cannot go.
fn prepare(line: &str) -> Result<Option<ClientMessage>, String> {
    let (len, over) = input_size(line);
    if over {
        return Err(format!(
            "the line has {len} bytes; the limit is {MAX_LINE_BYTES}"
        ));
    }
    match ClientMessage::parse(line) {
        Ok(m) => Ok(Some(m)),
        Err(ClientError::Blank) => Ok(None),
        Err(ClientError::InvalidText(_)) => {
            Err("the line holds a control, bidi or line-separator character".into())
        }
        // `/nick bad name!`: the usage alone does not say what is wrong with the name.
        Err(ClientError::BadArguments(chat_proto::Command::Nick)) => Err(nick_usage(line)),
        // The same answer the server would give (CMD-2, CMD-3, ...).
        Err(e) => Err(match e.reply() {
            Some(chat_proto::ServerMessage::Error { text, .. }) => text.as_str().to_owned(),
            _ => e.to_string(),
        }),
    }
}

/// Why `/nick …` with other than one word cannot go: the usage, and what the
/// arguments break of the nickname rules (NICK-2).
fn nick_usage(line: &str) -> String {
    let usage = format!("Usage: {}", chat_proto::Command::Nick.usage());
    let wanted = line
        .trim_start()
        .split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest.trim());
    if wanted.is_empty() {
        return usage;
    }
    match Nickname::new(wanted) {
        Ok(_) => usage,
        Err(e) => format!("\"{wanted}\" cannot be a nickname: {e}. {usage}"),
    }
}

/// Enter in the input, or the Send button: `/trust` is the client's own command
/// ([`trust`]); everything else goes to [`submit_input`].
pub fn submit(state: &mut AppState, now: Stamp) -> Vec<Effect> {
    let input = state.input.trim();
    let arg = match input.split_once(char::is_whitespace) {
        Some(("/trust", arg)) => Some(arg.trim()),
        None if input == "/trust" => None,
        _ => return submit_input(state),
    };
    let arg = arg.map(str::to_owned);
    let effects = trust(state, now, arg.as_deref());
    // Done: the line goes; refused: it stays, to be corrected.
    if !effects.is_empty() {
        state.input.clear();
    }
    effects
}

/// The user accepts the changed certificate of the refused server (TLS-7): `/trust`
/// typed in the input, or the connect screen's button. Never done by itself: the user
/// acts after the warning. When `fingerprint` is given (`/trust SHA256:...`, as the
/// server's owner read it out) it must be the one the server presented. The network
/// thread replaces the pin and connects again; the history says what was done.
pub fn trust(state: &mut AppState, now: Stamp, fingerprint: Option<&str>) -> Vec<Effect> {
    let Some(changed) = state.cert_changed.clone() else {
        state.set_notice(
            "Nothing to trust: no server's certificate has been refused",
            true,
        );
        return vec![];
    };
    if let Some(given) = fingerprint {
        if given.parse::<chat_proto::Fingerprint>().ok() != Some(changed.presented) {
            state.set_notice(
                format!(
                    "Not trusted: {given} is not the fingerprint {} presented ({})",
                    changed.server, changed.presented
                ),
                true,
            );
            return vec![];
        }
    }
    state.cert_changed = None;
    state.clear_notice();
    state.connect_error.clear();
    state.push_line(
        now,
        LineKind::Info,
        "",
        &format!(
            "You trusted the new certificate of {}: {} replaces {} in the pinned \
             certificates. Reconnecting\u{2026}",
            changed.server, changed.presented, changed.pinned
        ),
    );
    state.status = Status::Connecting {
        addr: changed.server.as_str().into(),
        attempt: 0,
    };
    vec![Effect::Net(NetCommand::Trust {
        server: changed.server,
        fingerprint: changed.presented,
    })]
}

/// Enter in the input, or the Send button (a line for the server).
pub fn submit_input(state: &mut AppState) -> Vec<Effect> {
    let input = state.input.clone();
    // Enter on an empty line while a paste waits confirms the paste.
    if state.paste.is_some() && chat_proto::text::is_blank(&input) {
        return send_paste(state);
    }
    if input.contains(['\n', '\r']) {
        return paste(state, &input);
    }
    match prepare(&input) {
        Ok(None) => {
            state.input.clear();
            vec![]
        }
        Err(why) => {
            state.set_notice(format!("Not sent: {why}"), true);
            vec![]
        }
        Ok(Some(msg)) => {
            if !state.status.is_connected() {
                state.set_notice("Not sent: not connected (the line is kept)", true);
                return vec![];
            }
            remember_input(state, &input);
            state.input.clear();
            state.clear_notice();
            state.completion = None;
            // Sending returns the view to the newest line, where the echo will be, and
            // says the user has caught up: the unread divider goes.
            jump_to_bottom(state);
            state.divider = None;
            count_history_asks(state, std::slice::from_ref(&msg));
            vec![Effect::Net(NetCommand::Send(msg))]
        }
    }
}

/// Counts the `/history` commands among `msgs`, so that their blocks are told apart
/// from the block that follows a join (see [`AppState::history_asked`]).
fn count_history_asks(state: &mut AppState, msgs: &[ClientMessage]) {
    let n = msgs
        .iter()
        .filter(|m| matches!(m, ClientMessage::History(_)))
        .count();
    state.history_asked = state
        .history_asked
        .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

fn remember_input(state: &mut AppState, input: &str) {
    if state.recall.back().map(String::as_str) != Some(input) {
        state.recall.push_back(input.to_owned());
        while state.recall.len() > RECALL_CAP {
            state.recall.pop_front();
        }
    }
    state.recall_pos = None;
    state.recall_draft.clear();
}

/// Up in the input: the previous earlier input.
pub fn recall_up(state: &mut AppState) {
    if state.recall.is_empty() {
        return;
    }
    let pos = match state.recall_pos {
        None => {
            state.recall_draft = state.input.clone();
            state.recall.len() - 1
        }
        Some(p) => p.saturating_sub(1),
    };
    state.recall_pos = Some(pos);
    if let Some(s) = state.recall.get(pos) {
        state.input = s.clone();
    }
}

/// Down in the input: the next earlier input, then back to what was being typed.
pub fn recall_down(state: &mut AppState) {
    let Some(p) = state.recall_pos else { return };
    if p + 1 < state.recall.len() {
        state.recall_pos = Some(p + 1);
        if let Some(s) = state.recall.get(p + 1) {
            state.input = s.clone();
        }
    } else {
        state.recall_pos = None;
        state.input = std::mem::take(&mut state.recall_draft);
    }
}

/// A paste into the input. Returns no effect; text of one line is appended to the
/// input, several lines wait in [`AppState::paste`] for the user to confirm (nothing is
/// ever silently cut).
pub fn paste(state: &mut AppState, text: &str) -> Vec<Effect> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !chat_proto::text::is_blank(l))
        .map(str::to_owned)
        .collect();
    match lines.len() {
        0 => {}
        1 => {
            if let Some(l) = lines.first() {
                state.input.push_str(l);
            }
        }
        _ => {
            // The paste bar shows the count and asks; Enter confirms.
            state.clear_notice();
            state.paste = Some(Arc::new(lines));
        }
    }
    if state.input.contains(['\n', '\r']) {
        state.input = state.input.replace(['\n', '\r'], " ");
    }
    vec![]
}

/// The "send the pasted lines" button: all of them in order, or none with the reason.
pub fn send_paste(state: &mut AppState) -> Vec<Effect> {
    let Some(lines) = state.paste.take() else {
        return vec![];
    };
    if !state.status.is_connected() {
        state.set_notice("Not sent: not connected", true);
        state.paste = Some(lines);
        return vec![];
    }
    let mut msgs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match prepare(line) {
            Ok(Some(m)) => msgs.push(m),
            Ok(None) => {}
            Err(why) => {
                state.set_notice(
                    format!("Paste not sent: line {} of {}: {why}", i + 1, lines.len()),
                    true,
                );
                return vec![];
            }
        }
    }
    state.set_notice(format!("Sent {} pasted lines", msgs.len()), false);
    count_history_asks(state, &msgs);
    jump_to_bottom(state);
    msgs.into_iter()
        .map(|m| Effect::Net(NetCommand::Send(m)))
        .collect()
}

/// The "drop the paste" button.
pub fn cancel_paste(state: &mut AppState) {
    state.paste = None;
    state.clear_notice();
}

/// A click on a name in the side panel: start a private message to them (not to
/// ourselves: the server would refuse, so the click only says so).
pub fn click_name(state: &mut AppState, name: &str) -> Vec<Effect> {
    if name.eq_ignore_ascii_case(&state.me) {
        state.set_notice(
            "That is you: click someone else's name to whisper to them",
            false,
        );
        return vec![];
    }
    state.input = format!("/msg {name} ");
    state.recall_pos = None;
    vec![Effect::FocusInput]
}

/// A mouse press in the history text at `at`; with `extend` (Shift) the selection
/// grows to it instead.
pub fn select_from(state: &mut AppState, at: TextPos, extend: bool) {
    if extend && state.selection.anchor.is_some() {
        state.selection.extend(at);
    } else {
        state.selection = TextSelection::start(at);
    }
}

/// The mouse dragged to `at` with the button down.
pub fn select_to(state: &mut AppState, at: TextPos) {
    state.selection.extend(at);
}

/// Ctrl+A in the history: everything.
pub fn select_all(state: &mut AppState) {
    state.selection = TextSelection::all(&state.history);
}

/// Copy (Ctrl+C in the history, or the Copy button): exactly the selected text.
pub fn copy_selection(state: &mut AppState) -> Vec<Effect> {
    let text = state.selection.text(&state.history);
    if text.is_empty() {
        return vec![];
    }
    let chars = text.chars().count();
    let n = state.selection.line_count();
    let what = match (n, chars) {
        (1, 1) => "1 character".to_owned(),
        (1, c) => format!("{c} characters"),
        (n, c) => format!("{c} characters from {n} lines"),
    };
    state.set_notice(format!("Copied {what} to the clipboard"), false);
    vec![Effect::Copy(text)]
}

/// The Copy button's text: "Copy" and what it would copy.
pub fn copy_label(state: &AppState) -> String {
    match state.selection.line_count() {
        0 | 1 => "Copy".to_owned(),
        n => format!("Copy {n} lines"),
    }
}

/// The "N new messages" button, End, or an own send: back to the newest line.
pub fn jump_to_bottom(state: &mut AppState) {
    state.follow = true;
    state.new_below = 0;
}

/// The history view was scrolled by the user: `follow` says whether it now shows the
/// newest line.
pub fn scrolled(state: &mut AppState, follow: bool) {
    state.follow = follow;
    if follow {
        state.new_below = 0;
    }
}

/// The note under the input goes once the input is edited (or sent).
pub fn input_edited(state: &mut AppState) {
    if state
        .notice_input
        .as_ref()
        .is_some_and(|was| *was != state.input)
    {
        state.clear_notice();
    }
    if state
        .completion
        .as_ref()
        .is_some_and(|c| *c.result != *state.input)
    {
        state.completion = None;
    }
}

/// Ctrl+F: show the search bar.
pub fn open_search(state: &mut AppState) {
    state.search.open = true;
}

/// Escape in the search bar: hide it and the match.
pub fn close_search(state: &mut AppState) {
    state.search.open = false;
    state.search.found = None;
    state.search.note.clear();
}

/// Enter (older) or Shift+Enter (newer) in the search bar.
pub fn search_next(state: &mut AppState, older: bool) {
    let query = state.search.query.clone();
    if query.is_empty() {
        state.search.found = None;
        state.search.note.clear();
        return;
    }
    let from = state
        .search
        .found
        .filter(|_| state.search.searched == query);
    match crate::search::next(&state.history, &query, from, older) {
        Some(f) => {
            state.search.found = Some(f);
            state.search.searched = query;
            state.search.note.clear();
            // The view goes to the match and stays there as lines arrive.
            state.follow = false;
        }
        None if from.is_some() => {
            state.search.note = if older {
                "No older match".into()
            } else {
                "No newer match".into()
            };
        }
        None => {
            state.search.found = None;
            state.search.note = "No match".into();
        }
    }
}

/// Characters typed while another widget had the focus: they go on in the input.
pub fn type_text(state: &mut AppState, text: &str) {
    if !text.contains(|c: char| c.is_control()) {
        state.input.push_str(text);
    }
}

/// The theme button.
pub fn toggle_theme(state: &mut AppState) -> Vec<Effect> {
    state.theme = state.theme.toggled();
    vec![Effect::RememberTheme(state.theme)]
}

/// The window gained or lost the keyboard focus.
pub fn set_focused(state: &mut AppState, focused: bool) {
    state.focused = focused;
    if focused {
        state.unread = 0;
    }
}

/// A note in the history from the client itself.
pub fn note(state: &mut AppState, now: Stamp, text: &str) {
    state.push_line(now, LineKind::Info, "", text);
}

#[cfg(test)]
mod tests {
    use chat_proto::Text;

    use super::*;
    use crate::state::{DEFAULT_SERVER, ThemeChoice, stamp};

    fn chatting() -> AppState {
        crate::state::chatting("alice")
    }
    fn text(s: &str) -> ClientMessage {
        ClientMessage::Text(Text::new(s).unwrap())
    }

    #[test]
    fn connect_checks_nickname_locally() {
        let mut s = AppState::new(DEFAULT_SERVER, "Aryan Singh", ThemeChoice::Dark);
        assert!(connect(&mut s).is_empty());
        assert!(
            s.connect_error.starts_with("Invalid nickname: "),
            "{}",
            s.connect_error
        );
        s.nick = "aryan".into();
        let fx = connect(&mut s);
        assert_eq!(
            fx,
            vec![Effect::Net(NetCommand::Connect {
                addr: DEFAULT_SERVER.into(),
                nick: Nickname::new("aryan").unwrap()
            })]
        );
        assert!(s.connect_error.is_empty());
    }

    /// Issue 15: the server field takes the chat's servers separated by commas; the
    /// list is tidied (what is remembered) and a bad one is said on the screen.
    #[test]
    fn connect_takes_a_list_of_servers() {
        let mut s = AppState::new(" a:9090 , b:9090,", "alice", ThemeChoice::Dark);
        let fx = connect(&mut s);
        assert_eq!(
            fx,
            vec![Effect::Net(NetCommand::Connect {
                addr: "a:9090,b:9090".into(),
                nick: Nickname::new("alice").unwrap()
            })]
        );
        assert_eq!(s.server, "a:9090,b:9090");
        // The node the connection goes to names the server once known.
        crate::reduce::apply(
            &mut s,
            crate::net::NetEvent::Connecting {
                addr: "b:9090".into(),
                attempt: 1,
            },
            crate::state::stamp("10:00"),
        );
        assert_eq!(s.server_shown(), "b:9090");
        assert!(s.title().starts_with("b:9090"), "{}", s.title());
        s.server = "a:9090 b:9090".into();
        assert!(connect(&mut s).is_empty());
        assert!(s.connect_error.contains("separate servers with commas"));
        s.server = " , ".into();
        assert!(connect(&mut s).is_empty());
        assert_eq!(
            s.connect_error,
            "Enter the server's address, like 127.0.0.1:9090"
        );
    }

    #[test]
    fn connect_after_rejection_answers_the_pending_prompt() {
        let mut s = AppState::new(DEFAULT_SERVER, "bob", ThemeChoice::Dark);
        connect(&mut s);
        s.awaiting_nick = true;
        s.connect_error = "Nickname bob is already in use".into();
        s.nick = "bob2".into();
        assert_eq!(
            connect(&mut s),
            vec![Effect::Net(NetCommand::Nick(
                Nickname::new("bob2").unwrap()
            ))]
        );
        // Another server: a new connection instead.
        s.awaiting_nick = true;
        s.server = "127.0.0.1:9091".into();
        assert!(matches!(
            connect(&mut s)[..],
            [Effect::Net(NetCommand::Connect { .. })]
        ));
    }

    #[test]
    fn enter_sends_and_clears_and_remembers() {
        let mut s = chatting();
        s.input = "hello".into();
        assert_eq!(
            submit_input(&mut s),
            vec![Effect::Net(NetCommand::Send(text("hello")))]
        );
        assert!(s.input.is_empty());
        s.input = "/msg bob hi there".into();
        let fx = submit_input(&mut s);
        assert!(matches!(
            &fx[..],
            [Effect::Net(NetCommand::Send(ClientMessage::Msg { .. }))]
        ));
        s.input = "//who".into();
        assert_eq!(
            submit_input(&mut s),
            vec![Effect::Net(NetCommand::Send(text("/who")))]
        );
        assert_eq!(s.recall.len(), 3);
    }

    #[test]
    fn bad_commands_get_the_servers_answer_locally_and_are_kept() {
        let mut s = chatting();
        s.input = "/msg bob".into();
        assert!(submit_input(&mut s).is_empty());
        assert_eq!(s.input, "/msg bob");
        assert_eq!(s.notice, "Not sent: Usage: /msg <nick> <text>");
        s.input = "/dance".into();
        submit_input(&mut s);
        assert!(s.notice.contains("Unknown command"), "{}", s.notice);
        s.input = "   ".into();
        assert!(submit_input(&mut s).is_empty());
        assert!(s.input.is_empty());
    }

    #[test]
    fn input_over_the_limit_is_refused_with_counter() {
        let mut s = chatting();
        s.input = "x".repeat(1024);
        assert_eq!(input_size(&s.input), (1024, false));
        // The text `/xxx…` goes as `//xxx…`: one byte more on the wire.
        s.input = format!("//{}", "x".repeat(1022));
        assert_eq!(input_size(&s.input), (1024, false));
        s.input = format!("//{}", "x".repeat(1023));
        assert_eq!(input_size(&s.input), (1025, true));
        assert!(submit_input(&mut s).is_empty());
        assert!(s.notice.contains("1025 bytes"), "{}", s.notice);
        assert!(!s.input.is_empty());
        s.input = "\u{e9}".repeat(513);
        assert_eq!(input_size(&s.input), (1026, true));
        assert!(submit_input(&mut s).is_empty());
    }

    #[test]
    fn not_connected_keeps_the_line() {
        let mut s = chatting();
        s.status = Status::Disconnected {
            reason: "x".into(),
            retry_in: None,
        };
        s.input = "hello".into();
        assert!(submit_input(&mut s).is_empty());
        assert_eq!(s.input, "hello");
        assert!(s.notice.contains("not connected"));
    }

    #[test]
    fn up_down_recall() {
        let mut s = chatting();
        for l in ["one", "two", "three"] {
            s.input = l.into();
            submit_input(&mut s);
        }
        s.input = "draft".into();
        recall_up(&mut s);
        assert_eq!(s.input, "three");
        recall_up(&mut s);
        recall_up(&mut s);
        recall_up(&mut s);
        assert_eq!(s.input, "one");
        recall_down(&mut s);
        assert_eq!(s.input, "two");
        recall_down(&mut s);
        recall_down(&mut s);
        assert_eq!(s.input, "draft");
        recall_down(&mut s);
        assert_eq!(s.input, "draft");
    }

    #[test]
    fn multi_line_paste_waits_then_goes_line_by_line() {
        let mut s = chatting();
        paste(&mut s, "first\r\n\nsecond\n/msg bob third\n");
        assert!(s.input.is_empty());
        assert_eq!(s.paste.as_deref().map(Vec::len), Some(3));
        assert!(s.input.is_empty());
        // Enter on the empty input confirms.
        let fx = submit_input(&mut s);
        assert_eq!(fx.len(), 3);
        assert_eq!(fx[0], Effect::Net(NetCommand::Send(text("first"))));
        assert!(s.paste.is_none());
    }

    #[test]
    fn paste_with_a_bad_line_is_refused_whole() {
        let mut s = chatting();
        let long = "y".repeat(1100);
        paste(&mut s, &format!("ok\n{long}\nok too"));
        assert!(send_paste(&mut s).is_empty());
        assert!(
            s.notice.starts_with("Paste not sent: line 2 of 3"),
            "{}",
            s.notice
        );
        paste(&mut s, "a\nb");
        cancel_paste(&mut s);
        assert!(s.paste.is_none());
        // One line (with a trailing newline) is just inserted.
        s.input = "say ".into();
        paste(&mut s, "\nhello\n");
        assert_eq!(s.input, "say hello");
        assert!(s.paste.is_none());
    }

    #[test]
    fn clicking_a_name_starts_a_private_message() {
        let mut s = chatting();
        assert_eq!(click_name(&mut s, "bob"), vec![Effect::FocusInput]);
        assert_eq!(s.input, "/msg bob ");
        s.input.clear();
        assert!(click_name(&mut s, "ALICE").is_empty(), "not to ourselves");
        assert!(s.input.is_empty());
    }

    #[test]
    fn select_and_copy_exactly_the_selection() {
        let mut s = chatting();
        for i in 0..5 {
            s.push_line(
                stamp("10:00"),
                LineKind::Other,
                "bob",
                &format!("m{i} text"),
            );
        }
        let ids: Vec<u64> = s.history.iter().map(|l| l.id).collect();
        // From "text" of line 3 back to "m1" of line 1 (a drag upwards).
        select_from(&mut s, TextPos::new(ids[3], 7), false);
        select_to(&mut s, TextPos::new(ids[1], 5));
        assert_eq!(copy_label(&s), "Copy 3 lines");
        assert_eq!(
            copy_selection(&mut s),
            vec![Effect::Copy("m1 text\nbob: m2 text\nbob: m3".into())]
        );
        assert_eq!(
            s.notice,
            "Copied 28 characters from 3 lines to the clipboard"
        );
        // Shift+click moves the free end; the anchor stays where the drag started.
        select_from(&mut s, TextPos::new(ids[0], 5), true);
        assert_eq!(
            s.selection.text(&s.history),
            "m0 text\nbob: m1 text\nbob: m2 text\nbob: m3"
        );
        // A click without a drag selects nothing.
        select_from(&mut s, TextPos::new(ids[1], 1), false);
        assert!(copy_selection(&mut s).is_empty());
        assert_eq!(copy_label(&s), "Copy");
        select_all(&mut s);
        assert_eq!(s.selection.line_count(), 5);
        select_from(&mut s, TextPos::new(ids[0], 0), false);
        select_to(&mut s, TextPos::new(ids[0], 1));
        copy_selection(&mut s);
        assert_eq!(s.notice, "Copied 1 character to the clipboard");
    }

    #[test]
    fn notices_clear_when_the_input_is_edited() {
        let mut s = chatting();
        s.input = "/msg bob".into();
        submit_input(&mut s);
        assert!(s.notice.starts_with("Not sent"));
        input_edited(&mut s);
        assert!(!s.notice.is_empty(), "unchanged input keeps it");
        s.input = "/msg bob hi".into();
        input_edited(&mut s);
        assert!(s.notice.is_empty());
    }

    #[test]
    fn nick_with_a_bad_name_says_why() {
        let mut s = chatting();
        s.input = "/nick bad name!".into();
        assert!(submit_input(&mut s).is_empty());
        assert!(
            s.notice
                .starts_with("Not sent: \"bad name!\" cannot be a nickname: "),
            "{}",
            s.notice
        );
        assert!(
            s.notice.ends_with("Usage: /nick <new-nickname>"),
            "{}",
            s.notice
        );
        s.input = "/nick".into();
        submit_input(&mut s);
        assert_eq!(s.notice, "Not sent: Usage: /nick <new-nickname>");
    }

    #[test]
    fn own_send_returns_to_the_bottom() {
        let mut s = chatting();
        scrolled(&mut s, false);
        s.push_line(stamp("10:00"), LineKind::Other, "bob", "while away");
        assert_eq!(s.new_below, 1);
        s.divider = Some(1);
        s.input = "back".into();
        submit_input(&mut s);
        assert!(s.follow);
        assert_eq!(s.new_below, 0);
        assert_eq!(s.divider, None, "caught up");
    }

    #[test]
    fn search_bar_finds_and_says_when_nothing_is_left() {
        let mut s = chatting();
        s.push_line(stamp("10:00"), LineKind::Other, "bob", "see the docs");
        s.push_line(stamp("10:00"), LineKind::Other, "bob", "hello");
        open_search(&mut s);
        s.search.query = "DOCS".into();
        search_next(&mut s, true);
        assert_eq!(s.search.found.map(|f| f.line), Some(1));
        assert!(!s.follow, "the view stays on the match");
        search_next(&mut s, true);
        assert_eq!(s.search.note, "No older match");
        // A new query starts again from the newest line.
        s.search.query = "hel".into();
        search_next(&mut s, true);
        assert_eq!(s.search.found.map(|f| f.line), Some(2));
        s.search.query = "zzz".into();
        search_next(&mut s, true);
        assert_eq!(s.search.note, "No match");
        assert_eq!(s.search.found, None);
        close_search(&mut s);
        assert!(!s.search.open && s.search.found.is_none());
    }

    #[test]
    fn focus_clears_unread() {
        let mut s = chatting();
        set_focused(&mut s, false);
        s.push_line(stamp("10:00"), LineKind::Other, "bob", "hi");
        assert_eq!(s.unread, 1);
        set_focused(&mut s, true);
        assert_eq!(s.unread, 0);
    }

    #[test]
    fn theme_toggles_and_is_remembered() {
        let mut s = chatting();
        assert_eq!(
            toggle_theme(&mut s),
            vec![Effect::RememberTheme(ThemeChoice::Light)]
        );
    }

    fn refused() -> AppState {
        let mut s = chatting();
        s.status = Status::Disconnected {
            reason: "the certificate of h:1 has CHANGED; refused".into(),
            retry_in: None,
        };
        s.cert_changed = Some(crate::tls::Changed {
            server: "h:1".into(),
            pinned: chat_proto::Fingerprint([1; 32]),
            presented: chat_proto::Fingerprint([2; 32]),
        });
        s
    }

    /// TLS-7: `/trust` with no refused certificate does nothing but say so, and goes
    /// nowhere near the server.
    #[test]
    fn tls_7_trust_with_nothing_refused_does_nothing() {
        let mut s = chatting();
        s.input = "/trust".into();
        assert_eq!(submit(&mut s, stamp("10:00")), vec![]);
        assert!(
            s.notice_is_error && s.notice.contains("Nothing to trust"),
            "{}",
            s.notice
        );
        assert_eq!(s.input, "/trust");
    }

    /// TLS-7: `/trust` replaces the pin of the refused server with the presented
    /// fingerprint (the network thread does the writing and reconnects), and the
    /// history says what was done, naming both fingerprints.
    #[test]
    fn tls_7_trust_pins_the_presented_fingerprint_and_says_so() {
        let mut s = refused();
        s.input = " /trust ".into();
        let fx = submit(&mut s, stamp("10:00"));
        assert_eq!(
            fx,
            vec![Effect::Net(NetCommand::Trust {
                server: "h:1".into(),
                fingerprint: chat_proto::Fingerprint([2; 32]),
            })]
        );
        assert_eq!(s.cert_changed, None);
        assert_eq!(s.input, "");
        let said = s
            .history
            .back()
            .map(|l| l.plain().to_owned())
            .unwrap_or_default();
        assert!(
            said.contains("You trusted the new certificate of h:1"),
            "{said}"
        );
        assert!(
            said.contains(&chat_proto::Fingerprint([2; 32]).to_string()),
            "{said}"
        );
        assert!(
            said.contains(&chat_proto::Fingerprint([1; 32]).to_string()),
            "{said}"
        );
        assert_eq!(s.status_text(), "Connecting to h:1\u{2026}");
        // Once done, a second /trust has nothing to trust.
        s.input = "/trust".into();
        assert_eq!(submit(&mut s, stamp("10:00")), vec![]);
    }

    /// TLS-7: `/trust FINGERPRINT` (as the server's owner read it out) must name the
    /// presented certificate; another one is refused and the line kept to correct.
    #[test]
    fn tls_7_trust_with_a_fingerprint_checks_it() {
        let mut s = refused();
        let wrong = chat_proto::Fingerprint([3; 32]).to_string();
        for bad in [wrong.as_str(), "SHA256:zz", "yes"] {
            s.input = format!("/trust {bad}");
            assert_eq!(submit(&mut s, stamp("10:00")), vec![], "{bad}");
            assert!(s.notice.starts_with("Not trusted"), "{}", s.notice);
            assert_eq!(s.input, format!("/trust {bad}"));
            assert!(s.cert_changed.is_some());
        }
        s.input = format!("/trust {}", chat_proto::Fingerprint([2; 32]));
        assert_eq!(submit(&mut s, stamp("10:00")).len(), 1);
        assert_eq!(s.cert_changed, None);
        // Other lines still go to the server as before; /trusted is not /trust.
        let mut s = chatting();
        s.input = "/trusted".into();
        assert_eq!(submit(&mut s, stamp("10:00")), vec![]);
        assert!(!s.notice.contains("Nothing to trust"), "{}", s.notice);
        s.input = "hi".into();
        assert_eq!(
            submit(&mut s, stamp("10:00")),
            vec![Effect::Net(NetCommand::Send(text("hi")))]
        );
    }

    /// TLS-7: connecting anew from the connect screen is no acceptance: the refusal
    /// is forgotten and the certificate checked again.
    #[test]
    fn tls_7_connecting_anew_forgets_the_refusal_without_trusting() {
        let mut s = refused();
        s.server = "tls://h:1".into();
        s.nick = "alice".into();
        let fx = connect(&mut s);
        assert!(
            matches!(fx.as_slice(), [Effect::Net(NetCommand::Connect { .. })]),
            "{fx:?}"
        );
        assert_eq!(s.cert_changed, None);
    }
}
