//! Widget tests with druid's headless `Harness`: real widgets, real events, no display.
//!
//! The network is replaced by a captured command channel, so each test sees exactly what
//! the window would have sent. (The harness cannot type into a TextBox: text is set
//! through the data, as a user's typing would leave it.)

#![cfg(test)]

use std::sync::mpsc::Receiver;
use std::time::Duration;

use chat_client_gui::net::{CommandSender, NetCommand, NetEvent};
use chat_client_gui::state::{AppState, DEFAULT_SERVER, Screen, ThemeChoice, stamp};
use chat_client_gui::ui::chat::{INPUT_ROW_PADDING, SEND_BUTTON};
use chat_client_gui::ui::{self, NET_EVENTS, RootController, Services};
use chat_proto::{ClientMessage, Nickname, ServerMessage, Text};
use druid::keyboard_types::Key;
use druid::tests::harness::Harness;
use druid::{
    Event, KeyEvent, Modifiers, MouseButton, MouseButtons, MouseEvent, Point, Size, Target, Vec2,
    WidgetExt,
};

fn services() -> (Services, Receiver<NetCommand>) {
    let (net, rx) = CommandSender::capture();
    let mut s = Services::new(net);
    s.clock = || stamp("12:34");
    (s, rx)
}

fn chatting() -> AppState {
    chat_client_gui::state::chatting("alice")
}

fn sent(rx: &Receiver<NetCommand>) -> Vec<NetCommand> {
    let mut out = Vec::new();
    while let Ok(c) = rx.recv_timeout(Duration::from_millis(300)) {
        out.push(c);
    }
    out
}

fn mouse(pos: Point, down: bool) -> Event {
    let ev = MouseEvent {
        pos,
        window_pos: pos,
        buttons: if down {
            MouseButtons::new().with(MouseButton::Left)
        } else {
            MouseButtons::new()
        },
        mods: Modifiers::empty(),
        count: 1,
        focus: false,
        button: MouseButton::Left,
        wheel_delta: Vec2::ZERO,
    };
    if down {
        Event::MouseDown(ev)
    } else {
        Event::MouseUp(ev)
    }
}

fn click(h: &mut Harness<AppState>, pos: Point) {
    h.event(Event::MouseMove(match mouse(pos, false) {
        Event::MouseUp(m) => m,
        _ => unreachable!(),
    }));
    h.event(mouse(pos, true));
    h.event(mouse(pos, false));
}

fn key(k: Key) -> Event {
    Event::KeyDown(KeyEvent::for_test(Modifiers::empty(), k))
}

/// Lets widgets added by the last update see their first lifecycle pass and commands
/// (the harness runs those on the next event, a window does it at once).
fn settle(h: &mut Harness<AppState>, size: Size) {
    h.event(Event::WindowSize(size));
    h.just_layout();
}

/// Lays the widget out in a window of `size`, as it first appears.
fn show(h: &mut Harness<AppState>, size: Size) {
    h.set_initial_size(size);
    h.send_initial_events();
    h.just_layout();
}

/// As [`show`], with the first lifecycle pass of what the first update added (a screen
/// switch) done too.
fn show_settled(h: &mut Harness<AppState>, size: Size) {
    h.set_initial_size(size);
    h.send_initial_events();
    settle(h, size);
}

/// A click in the middle of the input row's Send button.
fn press_send(h: &mut Harness<AppState>) {
    let rect = h.get_state(SEND_BUTTON).layout_rect();
    click(
        h,
        rect.center() + Vec2::new(INPUT_ROW_PADDING.0, INPUT_ROW_PADDING.1),
    );
}

/// What the window sends for the chat line `text`.
fn sent_text(text: &str) -> Vec<NetCommand> {
    vec![NetCommand::Send(ClientMessage::Text(
        Text::new(text).unwrap(),
    ))]
}

fn net_event(ev: NetEvent) -> druid::Command {
    NET_EVENTS.with(vec![ev]).to(Target::Global)
}

#[test]
fn pressing_send_sends_the_line_and_clears_it() {
    let (services, rx) = services();
    let mut data = chatting();
    data.input = "hello there".into();
    let root = ui::themed(ui::chat::input_row()).controller(RootController::new(services));
    Harness::create_simple(data, root, |h| {
        show(h, Size::new(600.0, 60.0));
        press_send(h);
        assert_eq!(h.data().input, "", "the box clears");
        assert_eq!(
            h.data().recall.back().map(String::as_str),
            Some("hello there")
        );
    });
    assert_eq!(sent(&rx), sent_text("hello there"));
}

#[test]
fn send_refuses_a_line_over_the_limit() {
    let (services, rx) = services();
    let mut data = chatting();
    data.input = "x".repeat(1025);
    let root = ui::themed(ui::chat::input_row()).controller(RootController::new(services));
    Harness::create_simple(data, root, |h| {
        show(h, Size::new(600.0, 60.0));
        press_send(h);
        assert_eq!(h.data().input.len(), 1025, "the line is kept, not cut");
        assert!(
            h.data().notice.contains("1025 bytes"),
            "{}",
            h.data().notice
        );
    });
    assert_eq!(sent(&rx), vec![]);
}

#[test]
fn chat_screen_opens_with_the_input_focused_up_recalls_enter_sends() {
    let (services, rx) = services();
    let mut data = AppState::new(DEFAULT_SERVER, "alice", ThemeChoice::Dark);
    data.active_server = DEFAULT_SERVER.into();
    data.recall.push_back("typed earlier".into());
    Harness::create_simple(data, ui::root(services), |h| {
        show(h, Size::new(800.0, 500.0));
        h.submit_command(net_event(NetEvent::Opened));
        h.submit_command(net_event(NetEvent::Line(ServerMessage::Joined(
            Nickname::new("alice").unwrap(),
        ))));
        h.submit_command(net_event(NetEvent::Welcome {
            nick: Nickname::new("alice").unwrap(),
        }));
        settle(h, Size::new(800.0, 500.0));
        assert_eq!(h.data().screen, Screen::Chat);
        // No click anywhere: keys reach the input because the screen focused it.
        h.event(key(Key::ArrowUp));
        assert_eq!(h.data().input, "typed earlier");
        h.event(key(Key::Enter));
        assert_eq!(h.data().input, "");
    });
    assert_eq!(sent(&rx), sent_text("typed earlier"));
}

/// Every label text in the widget tree.
fn texts(state: &druid::debug_state::DebugState, out: &mut Vec<String>) {
    if !state.main_value.is_empty() {
        out.push(state.main_value.clone());
    }
    for c in &state.children {
        texts(c, out);
    }
}

/// The number of rows of the first `List` in the widget tree.
fn list_rows(state: &druid::debug_state::DebugState) -> Option<usize> {
    if state.display_name == "List" {
        return Some(state.children.len());
    }
    state.children.iter().find_map(list_rows)
}

#[test]
fn a_join_adds_a_name_to_the_panel_and_a_leave_removes_it() {
    let (services, _rx) = services();
    let root = ui::themed(ui::chat::online_panel()).controller(RootController::new(services));
    Harness::create_simple(chatting(), root, |h| {
        h.set_initial_size(Size::new(180.0, 400.0));
        h.send_initial_events();
        assert_eq!(list_rows(&h.root_debug_state()), Some(0));
        let join = |n: &str| NetEvent::Line(ServerMessage::Joined(Nickname::new(n).unwrap()));
        h.submit_command(net_event(join("alice")));
        h.submit_command(net_event(join("bob")));
        // A join notice for someone the panel has already (from /who): still one row.
        h.submit_command(net_event(join("bob")));
        settle(h, Size::new(180.0, 400.0));
        let mut shown = Vec::new();
        texts(&h.root_debug_state(), &mut shown);
        assert!(shown.contains(&"Online (2)".to_owned()), "{shown:?}");
        assert_eq!(list_rows(&h.root_debug_state()), Some(2));
        let names: Vec<String> = h
            .data()
            .online_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, vec!["alice", "bob"]);
        h.submit_command(net_event(NetEvent::Line(ServerMessage::Left(
            Nickname::new("bob").unwrap(),
        ))));
        settle(h, Size::new(180.0, 400.0));
        let mut shown = Vec::new();
        texts(&h.root_debug_state(), &mut shown);
        assert!(shown.contains(&"Online (1)".to_owned()), "{shown:?}");
        assert_eq!(list_rows(&h.root_debug_state()), Some(1));
    });
}

#[test]
fn clicking_a_name_starts_a_private_message() {
    let (services, _rx) = services();
    let root = ui::themed(ui::chat::online_panel()).controller(RootController::new(services));
    let mut data = chatting();
    for n in ["alice", "bob"] {
        data.online.insert(n.into(), n.into());
    }
    Harness::create_simple(data, root, |h| {
        show(h, Size::new(180.0, 400.0));
        // Walk down the panel until a click lands on bob's row (bounded: 100 points).
        for y in 0..100 {
            click(h, Point::new(60.0, f64::from(y) * 2.0));
            if h.data().input == "/msg bob " {
                return;
            }
        }
        panic!(
            "no click on the panel started a message to bob: {:?}",
            h.data().input
        );
    });
}

#[test]
fn typing_after_clicking_the_history_goes_to_the_input() {
    let (services, rx) = services();
    let mut data = chatting();
    data.push_line(
        stamp("12:00"),
        chat_client_gui::state::LineKind::Other,
        "bob",
        "hello",
    );
    Harness::create_simple(data, ui::root(services), |h| {
        show_settled(h, Size::new(800.0, 500.0));
        // A click on the empty part of the history gives it the focus.
        click(h, Point::new(200.0, 300.0));
        h.event(Event::KeyDown(KeyEvent::for_test(Modifiers::empty(), "h")));
        assert_eq!(h.data().input, "h");
        settle(h, Size::new(800.0, 500.0));
        // The input has the focus again: Enter there sends.
        h.event(key(Key::Enter));
        assert_eq!(h.data().input, "");
    });
    assert_eq!(sent(&rx), sent_text("h"));
}

#[test]
fn reconnect_button_works_only_when_disconnected() {
    use chat_client_gui::ui::chat::{RECONNECT_BUTTON, STATUS_BAR_PADDING};
    let (services, rx) = services();
    let root = ui::themed(ui::chat::status_bar()).controller(RootController::new(services));
    Harness::create_simple(chatting(), root, |h| {
        show(h, Size::new(700.0, 40.0));
        let at = h.get_state(RECONNECT_BUTTON).layout_rect().center()
            + Vec2::new(STATUS_BAR_PADDING.0, STATUS_BAR_PADDING.1);
        // Connected: the button is disabled.
        click(h, at);
        h.submit_command(net_event(NetEvent::Disconnected {
            reason: "Server is shutting down".into(),
            retry_in: Some(Duration::from_secs(1)),
            next: None,
        }));
        settle(h, Size::new(700.0, 40.0));
        click(h, at);
    });
    assert_eq!(sent(&rx), vec![NetCommand::Reconnect]);
}

#[test]
fn tab_completes_and_page_up_in_the_input_scrolls_the_history() {
    let (services, _rx) = services();
    let mut data = chatting();
    for n in ["alice", "bob", "carol"] {
        data.online.insert(n.into(), n.into());
    }
    for i in 0..200 {
        data.push_line(
            stamp("12:00"),
            chat_client_gui::state::LineKind::Other,
            "bob",
            &format!("line {i}"),
        );
    }
    data.input = "bo".into();
    Harness::create_simple(data, ui::root(services), |h| {
        show_settled(h, Size::new(800.0, 500.0));
        h.event(key(Key::Tab));
        assert_eq!(h.data().input, "bob: ");
        assert!(h.data().follow);
        h.event(key(Key::PageUp));
        h.paint();
        assert!(!h.data().follow, "the history scrolled up");
        for _ in 0..20 {
            h.event(key(Key::PageDown));
        }
        h.paint();
        assert!(h.data().follow, "back at the bottom");
    });
}

#[test]
fn a_refused_connection_is_told_once_without_os_codes() {
    let (services, _rx) = services();
    let data = AppState::new("127.0.0.1:1", "refused", ThemeChoice::Dark);
    let root = ui::themed(ui::connect::build()).controller(RootController::new(services));
    Harness::create_simple(data, root, |h| {
        h.set_initial_size(Size::new(800.0, 500.0));
        h.send_initial_events();
        h.submit_command(net_event(NetEvent::Connecting {
            addr: "127.0.0.1:1".into(),
            attempt: 0,
        }));
        h.submit_command(net_event(NetEvent::Disconnected {
            reason: "cannot connect to 127.0.0.1:1: nothing is accepting connections there \
                     (connection refused)"
                .into(),
            retry_in: None,
            next: None,
        }));
        settle(h, Size::new(800.0, 500.0));
        let mut shown = Vec::new();
        texts(&h.root_debug_state(), &mut shown);
        let told = shown
            .iter()
            .filter(|t| t.contains("connection refused"))
            .count();
        assert_eq!(told, 1, "{shown:?}");
        assert!(
            !h.data().title().contains("refused"),
            "the title names no nickname"
        );
    });
}

/// The connect screen opens with the nickname field focused: Enter connects without a
/// click (the Enter handler acts only in a focused field).
#[test]
fn connect_screen_opens_with_the_nickname_focused() {
    let (services, rx) = services();
    let data = AppState::new(DEFAULT_SERVER, "alice", ThemeChoice::Dark);
    Harness::create_simple(data, ui::root(services), |h| {
        show_settled(h, Size::new(800.0, 500.0));
        assert_eq!(h.data().screen, Screen::Connect);
        h.event(key(Key::Enter));
    });
    assert_eq!(
        sent(&rx),
        vec![NetCommand::Connect {
            addr: DEFAULT_SERVER.into(),
            nick: Nickname::new("alice").unwrap(),
        }]
    );
}

/// Ctrl+F opens the search bar, and its field takes the focus when told (the harness
/// runs the focus command opening sends before the bar is shown, so the test sends it
/// again once it is): Escape, a key of that field, then closes it without a click.
#[test]
fn the_search_field_takes_the_focus() {
    let (services, _rx) = services();
    Harness::create_simple(chatting(), ui::root(services), |h| {
        show_settled(h, Size::new(800.0, 500.0));
        h.event(Event::KeyDown(KeyEvent::for_test(
            Modifiers::CONTROL,
            Key::Character("f".into()),
        )));
        settle(h, Size::new(800.0, 500.0));
        assert!(h.data().search.open);
        h.submit_command(ui::FOCUS_SEARCH);
        h.event(key(Key::Escape));
        assert!(!h.data().search.open);
    });
}

/// TLS-7: after a changed certificate is refused on the connect screen, the warning is
/// shown with a "Trust the new certificate and connect" button; pressing it (and only
/// that) asks the network thread to pin the presented fingerprint.
#[test]
fn a_refused_certificate_shows_a_trust_button_that_trusts_only_when_pressed() {
    use chat_client_gui::ui::connect::{FORM, TRUST_BUTTON};
    let (services, rx) = services();
    let data = AppState::new("tls://127.0.0.1:9443", "alice", ThemeChoice::Dark);
    let changed = chat_client_gui::tls::Changed {
        server: "127.0.0.1:9443".into(),
        pinned: chat_proto::Fingerprint([1; 32]),
        presented: chat_proto::Fingerprint([2; 32]),
    };
    let root = ui::themed(ui::connect::build()).controller(RootController::new(services));
    let size = Size::new(800.0, 600.0);
    Harness::create_simple(data, root, |h| {
        show(h, size);
        let mut shown = Vec::new();
        texts(&h.root_debug_state(), &mut shown);
        assert!(
            !shown.iter().any(|t| t.contains("Trust the new")),
            "{shown:?}"
        );
        h.submit_command(net_event(NetEvent::Connecting {
            addr: "tls://127.0.0.1:9443".into(),
            attempt: 0,
        }));
        h.submit_command(net_event(NetEvent::CertChanged(changed.clone())));
        h.submit_command(net_event(NetEvent::Disconnected {
            reason: "the certificate of 127.0.0.1:9443 has CHANGED; refused".into(),
            retry_in: None,
            next: None,
        }));
        settle(h, size);
        let mut shown = Vec::new();
        texts(&h.root_debug_state(), &mut shown);
        assert!(
            shown
                .iter()
                .any(|t| t.contains("WARNING") && t.contains(&changed.presented.to_string())),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|t| t == "Trust the new certificate and connect"),
            "{shown:?}"
        );
        let form = h.get_state(FORM).layout_rect();
        let trust = h.get_state(TRUST_BUTTON).layout_rect();
        assert!(trust.height() > 20.0, "{trust:?}");
        click(
            h,
            form.origin() + trust.origin().to_vec2() + Vec2::new(40.0, 12.0),
        );
        assert_eq!(h.data().cert_changed, None);
    });
    assert_eq!(
        sent(&rx),
        vec![NetCommand::Trust {
            server: changed.server.clone(),
            fingerprint: changed.presented,
        }]
    );
}
