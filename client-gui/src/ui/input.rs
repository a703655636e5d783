//! The input line: Enter sends, Up/Down recall earlier inputs, Tab completes nicknames,
//! PageUp/PageDown (and Ctrl+Home/Ctrl+End) scroll the history, Ctrl+F searches it, a
//! multi-line paste is held for confirmation, and it takes the keyboard focus when the
//! chat screen opens or when asked (a click on a name), with the caret at the end.

use druid::keyboard_types::Key;
use druid::text::{ImeInvalidation, Selection};
use druid::widget::{Controller, TextBox};
use druid::{Env, Event, EventCtx, LifeCycle, LifeCycleCtx, UpdateCtx, Widget, WidgetExt};

use super::clipboard::{self, PASTE_TEXT};
use super::{ACTION, Action, FOCUS_INPUT, HISTORY_KEY};
use crate::state::AppState;

/// The input box.
pub fn build() -> impl Widget<AppState> {
    TextBox::new()
        .with_placeholder(chat_proto::command::input_hint())
        .with_text_size(14.0)
        .controller(InputKeys::default())
        .expand_width()
        .lens(AppState::input)
}

/// See the module documentation.
#[derive(Default)]
pub struct InputKeys {
    /// The text is about to be replaced from outside (recall, a click on a name, a key
    /// typed in the history): put the caret at its end when it is.
    caret_to_end: bool,
}

fn caret_to_end(tb: &mut TextBox<String>, len: usize) -> Option<ImeInvalidation> {
    tb.text_mut()
        .borrow_mut()
        .set_selection(Selection::caret(len))
}

impl Controller<String, TextBox<String>> for InputKeys {
    fn event(
        &mut self,
        child: &mut TextBox<String>,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut String,
        env: &Env,
    ) {
        if matches!(event, Event::KeyDown(_) | Event::MouseDown(_)) {
            // The user is editing: leave the caret where they put it.
            self.caret_to_end = false;
        }
        match event {
            Event::Command(cmd) if cmd.is(FOCUS_INPUT) => {
                ctx.request_focus();
                // The text may be about to change too (a click on a name, a key typed
                // elsewhere): the update that brings it puts the caret at its end.
                self.caret_to_end = true;
                if let Some(inval) = caret_to_end(child, data.len()) {
                    ctx.invalidate_text_input(inval);
                }
                ctx.request_paint();
                return;
            }
            Event::KeyDown(k) if ctx.has_focus() => {
                let ctrl = k.mods.ctrl() || k.mods.meta();
                let action = match &k.key {
                    Key::Enter if !k.mods.shift() => Some(Action::Submit),
                    Key::ArrowUp => Some(Action::RecallUp),
                    Key::ArrowDown => Some(Action::RecallDown),
                    Key::Escape => Some(Action::CancelPaste),
                    Key::Tab => Some(Action::Complete {
                        backwards: k.mods.shift(),
                    }),
                    Key::Character(c) if ctrl && c.eq_ignore_ascii_case("f") => {
                        Some(Action::OpenSearch)
                    }
                    _ => None,
                };
                if let Some(a) = action {
                    self.caret_to_end = matches!(
                        a,
                        Action::RecallUp | Action::RecallDown | Action::Complete { .. }
                    );
                    ctx.submit_command(ACTION.with(a));
                    ctx.set_handled();
                    return;
                }
                match &k.key {
                    // Druid's End stops before trailing spaces (it goes to the end of
                    // the laid-out line, which does not count them): `/msg carol `
                    // then End then typing gave `/msg carolpsst`.
                    Key::End if !ctrl => {
                        let end = data.len();
                        let sel = if k.mods.shift() {
                            Selection::new(child.text().borrow().selection().anchor, end)
                        } else {
                            Selection::caret(end)
                        };
                        if let Some(inval) = child.text_mut().borrow_mut().set_selection(sel) {
                            ctx.invalidate_text_input(inval);
                        }
                        ctx.request_paint();
                        ctx.set_handled();
                        return;
                    }
                    Key::PageUp | Key::PageDown => {
                        ctx.submit_command(HISTORY_KEY.with(k.key.clone()));
                        ctx.set_handled();
                        return;
                    }
                    Key::Home | Key::End if ctrl => {
                        ctx.submit_command(HISTORY_KEY.with(k.key.clone()));
                        ctx.set_handled();
                        return;
                    }
                    Key::Character(c)
                        if ctrl
                            && c.eq_ignore_ascii_case("v")
                            && clipboard::request_text(ctx.widget_id()) =>
                    {
                        ctx.set_handled();
                        return;
                    }
                    Key::Insert if k.mods.shift() && clipboard::request_text(ctx.widget_id()) => {
                        ctx.set_handled();
                        return;
                    }
                    _ => {}
                }
            }
            Event::Command(cmd) if cmd.is(PASTE_TEXT) => {
                if let Some(text) = cmd.get(PASTE_TEXT) {
                    if text.contains(['\n', '\r']) {
                        ctx.submit_command(ACTION.with(Action::Paste(text.clone())));
                    } else if !text.is_empty() {
                        let inval = child.text_mut().borrow_mut().insert_text(data, text);
                        ctx.invalidate_text_input(inval);
                        ctx.request_layout();
                    }
                }
                ctx.set_handled();
                return;
            }
            Event::Paste(clip) if ctx.has_focus() => {
                // Druid's one-line box keeps only the first line of a paste: a silent cut.
                if let Some(text) = clip.get_string() {
                    if text.contains(['\n', '\r']) {
                        ctx.submit_command(ACTION.with(Action::Paste(text)));
                        ctx.set_handled();
                        return;
                    }
                }
            }
            _ => {}
        }
        child.event(ctx, event, data, env);
    }

    fn lifecycle(
        &mut self,
        child: &mut TextBox<String>,
        ctx: &mut LifeCycleCtx,
        event: &LifeCycle,
        data: &String,
        env: &Env,
    ) {
        if let LifeCycle::WidgetAdded = event {
            // The chat screen opens with the input focused.
            ctx.submit_command(FOCUS_INPUT.to(ctx.widget_id()));
        }
        child.lifecycle(ctx, event, data, env);
        if let LifeCycle::FocusChanged(true) = event {
            // Druid selects all on focus; typing after `/msg bob ` must not replace it.
            if let Some(inval) = caret_to_end(child, data.len()) {
                ctx.invalidate_text_input(inval);
            }
        }
    }

    fn update(
        &mut self,
        child: &mut TextBox<String>,
        ctx: &mut UpdateCtx,
        old: &String,
        data: &String,
        env: &Env,
    ) {
        child.update(ctx, old, data, env);
        if self.caret_to_end && old != data {
            self.caret_to_end = false;
            let _ = caret_to_end(child, data.len());
            ctx.request_paint();
        }
    }
}
