//! The connect screen: server address and nickname, prefilled with the last ones used;
//! a rejected nickname's reason is shown here so the user can pick another.

use druid::keyboard_types::Key;
use druid::widget::{
    Button, Controller, CrossAxisAlignment, Either, Flex, Label, LineBreaking, SizedBox, TextBox,
};
use druid::{Env, Event, EventCtx, Widget, WidgetExt, WidgetId};

use super::take_focus::TakeFocus;
use super::{ACTION, Action, theme};
use crate::state::{AppState, Status};

/// Width of the form: every line of it wraps within this.
const FORM_WIDTH: f64 = 380.0;
/// The form's id (tests find where it is laid out).
pub const FORM: WidgetId = WidgetId::reserved(0xC0F1);
/// The "Trust the new certificate and connect" button's place in the form (TLS-7).
pub const TRUST_BUTTON: WidgetId = WidgetId::reserved(0xC0F2);

/// The screen.
pub fn build() -> impl Widget<AppState> {
    let heading = Label::new(|d: &AppState, _env: &Env| {
        if d.awaiting_nick {
            "Choose another nickname".to_owned()
        } else {
            "Join a chat".to_owned()
        }
    })
    .with_text_size(22.0);
    let server = TextBox::new()
        .with_placeholder("127.0.0.1:9090")
        .with_text_size(15.0)
        .fix_width(280.0)
        .lens(AppState::server)
        .controller(EnterConnects);
    let nick = TextBox::new()
        .with_placeholder("1-24 of A-Z a-z 0-9 _ -")
        .with_text_size(15.0)
        .fix_width(280.0)
        .lens(AppState::nick)
        .controller(EnterConnects)
        .controller(TakeFocus(FOCUS_NICK));
    let error = Label::new(|d: &AppState, _env: &Env| d.connect_error.clone())
        .with_line_break_mode(LineBreaking::WordWrap)
        .with_text_color(theme::ERROR)
        .fix_width(FORM_WIDTH);
    let busy = |d: &AppState| {
        matches!(d.status, Status::Connecting { .. } | Status::Handshake) && !d.awaiting_nick
    };
    let button = Button::new(move |d: &AppState, _env: &Env| {
        if busy(d) {
            "Connecting\u{2026}".to_owned()
        } else {
            "Connect".to_owned()
        }
    })
    // Never disabled: pressing it again while a connection hangs starts over.
    .on_click(|ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::Connect)))
    .fix_width(140.0);
    // TLS-7: shown only after a changed certificate was refused, and only ever acted on
    // when pressed (the warning above it says to check with the server's owner first).
    let trust = Either::new(
        |d: &AppState, _env: &Env| d.cert_changed.is_some(),
        Button::new("Trust the new certificate and connect")
            .on_click(|ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::Trust)))
            .padding((0.0, 0.0, 0.0, 10.0)),
        SizedBox::empty(),
    )
    .with_id(TRUST_BUTTON);
    // The reason of a failure is the error line's; the status line does not repeat it.
    let status = Label::new(|d: &AppState, _env: &Env| {
        if !d.connect_error.is_empty() && !matches!(d.status, Status::Connecting { .. }) {
            String::new()
        } else {
            d.status_text()
        }
    })
    .with_text_color(theme::TIME)
    .with_text_size(12.0)
    .with_line_break_mode(LineBreaking::WordWrap)
    .fix_width(FORM_WIDTH);
    let theme_button = Button::new(|d: &AppState, _env: &Env| theme_label(d)).on_click(
        |ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::ToggleTheme)),
    );

    // A fixed width: a long status or error wraps instead of re-centring the form.
    let form = Flex::column()
        .cross_axis_alignment(CrossAxisAlignment::Start)
        .with_child(heading)
        .with_spacer(18.0)
        .with_child(
            Label::new("Server (several: separate with commas)").with_text_color(theme::TIME),
        )
        .with_spacer(4.0)
        .with_child(server)
        .with_spacer(12.0)
        .with_child(Label::new("Nickname").with_text_color(theme::TIME))
        .with_spacer(4.0)
        .with_child(nick)
        .with_spacer(10.0)
        .with_child(error)
        .with_spacer(10.0)
        .with_child(trust)
        .with_child(button)
        .with_spacer(18.0)
        .with_child(status)
        .fix_width(FORM_WIDTH)
        .with_id(FORM);
    Flex::column()
        .with_flex_spacer(1.0)
        .with_child(form)
        .with_flex_spacer(1.0)
        .with_child(
            Flex::row()
                .with_flex_spacer(1.0)
                .with_child(theme_button)
                .padding(8.0),
        )
        .expand()
}

/// The theme button's text: what pressing it gives.
pub fn theme_label(d: &AppState) -> String {
    match d.theme {
        crate::state::ThemeChoice::Dark => "Light theme".to_owned(),
        crate::state::ThemeChoice::Light => "Dark theme".to_owned(),
    }
}

/// Enter in a field of the form connects.
struct EnterConnects;

impl<W: Widget<AppState>> Controller<AppState, W> for EnterConnects {
    fn event(
        &mut self,
        child: &mut W,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut AppState,
        env: &Env,
    ) {
        if let Event::KeyDown(k) = event {
            if k.key == Key::Enter && ctx.has_focus() {
                ctx.submit_command(ACTION.with(Action::Connect));
                ctx.set_handled();
                return;
            }
        }
        child.event(ctx, event, data, env);
    }
}

/// The nickname field has the focus when the screen opens.
const FOCUS_NICK: druid::Selector = druid::Selector::new("chat.focus-nick");
