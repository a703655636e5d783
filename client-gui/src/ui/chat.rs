//! The chat screen: history, who is online, the input with its byte counter and Send
//! button, a bar for a pending multi-line paste, and the status line with Reconnect.

use std::sync::Arc;

use chat_proto::limits::MAX_LINE_BYTES;
use druid::im::Vector;
use druid::widget::{
    Button, CrossAxisAlignment, Either, EnvScope, Flex, Label, LineBreaking, List, Scroll, SizedBox,
};
use druid::{Env, Widget, WidgetExt, WidgetId};

use super::{ACTION, Action, connect::theme_label, history, input, search_bar, theme};
use crate::actions::{copy_label, input_size};
use crate::state::AppState;

/// Width of the side panel.
const PANEL_WIDTH: f64 = 180.0;
/// Padding around the input row (left, top, right, bottom).
pub const INPUT_ROW_PADDING: (f64, f64, f64, f64) = (10.0, 8.0, 10.0, 2.0);
/// The Send button's id (widget tests find it by this).
pub const SEND_BUTTON: WidgetId = WidgetId::reserved(0xC5E1);
/// The Reconnect button's id.
pub const RECONNECT_BUTTON: WidgetId = WidgetId::reserved(0xC5E2);
/// Padding around the status bar's row (horizontal, vertical).
pub const STATUS_BAR_PADDING: (f64, f64) = (10.0, 4.0);

/// The screen.
pub fn build() -> impl Widget<AppState> {
    let history = Flex::column()
        .cross_axis_alignment(CrossAxisAlignment::Fill)
        .with_child(search_bar::build())
        .with_flex_child(history::build(), 1.0);
    let main = Flex::row()
        .cross_axis_alignment(CrossAxisAlignment::Fill)
        .with_flex_child(history, 1.0)
        .with_child(online_panel());
    Flex::column()
        .cross_axis_alignment(CrossAxisAlignment::Fill)
        .with_flex_child(main, 1.0)
        .with_child(paste_bar())
        .with_child(input_row())
        .with_child(notice_row())
        .with_child(status_bar())
}

/// Who is online; a click on a name starts `/msg <name> `.
pub fn online_panel() -> impl Widget<AppState> {
    let title = Label::new(|d: &AppState, _env: &Env| format!("Online ({})", d.online.len()))
        .with_text_color(theme::TIME)
        .with_text_size(12.0)
        .padding((10.0, 8.0, 10.0, 4.0));
    let names = List::new(|| {
        Label::new(|(me, n): &(Arc<str>, Arc<str>), _env: &Env| {
            if n.eq_ignore_ascii_case(me) {
                format!("{n} (you)")
            } else {
                n.to_string()
            }
        })
        .with_text_size(14.0)
        .padding((10.0, 3.0))
        .expand_width()
        .on_click(|ctx, (_me, n): &mut (Arc<str>, Arc<str>), _env| {
            ctx.submit_command(ACTION.with(Action::ClickName(n.to_string())))
        })
    })
    .lens(druid::lens::Map::new(
        |d: &AppState| {
            (
                d.me.clone(),
                d.online.values().cloned().collect::<Vector<_>>(),
            )
        },
        |_d: &mut AppState, _v: (Arc<str>, Vector<Arc<str>>)| {},
    ));
    let hint = Label::new("Click a name to whisper")
        .with_text_color(theme::TIME)
        .with_text_size(11.0)
        .with_line_break_mode(LineBreaking::WordWrap)
        .padding(8.0);
    Flex::column()
        .cross_axis_alignment(CrossAxisAlignment::Fill)
        .with_child(title)
        .with_flex_child(Scroll::new(names).vertical(), 1.0)
        .with_child(hint)
        .fix_width(PANEL_WIDTH)
        .background(theme::PANEL)
}

fn paste_bar() -> impl Widget<AppState> {
    let bar = Flex::row()
        .with_flex_child(
            Label::new(|d: &AppState, _env: &Env| {
                let n = d.paste.as_ref().map_or(0, |p| p.len());
                format!(
                    "{n} pasted lines are waiting: send each as a message? \
                     (Enter sends them, Escape drops them)"
                )
            })
            .with_line_break_mode(LineBreaking::WordWrap)
            .expand_width(),
            1.0,
        )
        .with_spacer(8.0)
        .with_child(
            Button::new("Send all").on_click(|ctx, _d: &mut AppState, _env| {
                ctx.submit_command(ACTION.with(Action::SendPaste))
            }),
        )
        .with_spacer(6.0)
        .with_child(
            Button::new("Cancel").on_click(|ctx, _d: &mut AppState, _env| {
                ctx.submit_command(ACTION.with(Action::CancelPaste))
            }),
        )
        .padding((10.0, 6.0))
        .background(theme::PANEL);
    Either::new(
        |d: &AppState, _env| d.paste.is_some(),
        bar,
        SizedBox::empty(),
    )
}

/// The input line, its byte counter and the Send button.
pub fn input_row() -> impl Widget<AppState> {
    let counter = Label::new(|d: &AppState, _env: &Env| {
        format!("{}/{MAX_LINE_BYTES}", input_size(&d.input).0)
    })
    .with_text_size(12.0);
    // Red once the line is over the limit; the Send button then refuses it.
    let counter = EnvScope::new(
        |env: &mut Env, d: &AppState| {
            let color = if input_size(&d.input).1 {
                theme::ERROR
            } else {
                theme::TIME
            };
            let c = env.get(color);
            env.set(druid::theme::TEXT_COLOR, c);
        },
        counter,
    )
    .fix_width(74.0);
    let send = Button::new("Send")
        .on_click(|ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::Submit)))
        .fix_width(80.0)
        .with_id(SEND_BUTTON);
    Flex::row()
        .with_flex_child(input::build(), 1.0)
        .with_spacer(8.0)
        .with_child(counter)
        .with_child(send)
        .padding(INPUT_ROW_PADDING)
}

fn notice_row() -> impl Widget<AppState> {
    let label = Label::new(|d: &AppState, _env: &Env| d.notice.clone())
        .with_text_size(12.0)
        .with_line_break_mode(LineBreaking::WordWrap)
        .expand_width();
    EnvScope::new(
        |env: &mut Env, d: &AppState| {
            let c = env.get(if d.notice_is_error {
                theme::ERROR
            } else {
                theme::TIME
            });
            env.set(druid::theme::TEXT_COLOR, c);
        },
        label,
    )
    .padding((12.0, 0.0, 12.0, 4.0))
}

/// The status line, with Copy, Reconnect and the theme button.
pub fn status_bar() -> impl Widget<AppState> {
    let status = Label::new(|d: &AppState, _env: &Env| d.status_text())
        .with_text_size(12.0)
        .with_line_break_mode(LineBreaking::WordWrap)
        .expand_width();
    let copy = Either::new(
        |d: &AppState, _env| !d.selection.is_empty(),
        Button::new(|d: &AppState, _env: &Env| copy_label(d))
            .on_click(|ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::Copy))),
        SizedBox::empty(),
    );
    let reconnect = Button::new("Reconnect")
        .on_click(|ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::Reconnect)))
        .disabled_if(|d: &AppState, _env| d.status.is_connected())
        .with_id(RECONNECT_BUTTON);
    let theme_button = Button::new(|d: &AppState, _env: &Env| theme_label(d)).on_click(
        |ctx, _d: &mut AppState, _env| ctx.submit_command(ACTION.with(Action::ToggleTheme)),
    );
    Flex::row()
        .with_flex_child(status, 1.0)
        .with_child(copy)
        .with_spacer(6.0)
        .with_child(reconnect)
        .with_spacer(6.0)
        .with_child(theme_button)
        .padding(STATUS_BAR_PADDING)
        .background(theme::PANEL)
}
