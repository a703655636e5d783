//! The search bar over the history (Ctrl+F): Enter finds the next older match,
//! Shift+Enter the next newer one, Escape closes it. The match is shown in the history
//! (scrolled to and highlighted); the rules are in [`crate::search`].

use druid::keyboard_types::Key;
use druid::widget::{Button, Controller, Either, Flex, Label, SizedBox, TextBox};
use druid::{Env, Event, EventCtx, Widget, WidgetExt};

use super::take_focus::TakeFocus;
use super::{ACTION, Action, FOCUS_SEARCH, theme};
use crate::state::{AppState, Search};

/// The bar, shown while the search is open.
pub fn build() -> impl Widget<AppState> {
    let field = TextBox::new()
        .with_placeholder("Search the history")
        .with_text_size(13.0)
        .controller(SearchKeys)
        // The bar was just opened (or Ctrl+F pressed again): its field takes the keys.
        .controller(TakeFocus(FOCUS_SEARCH))
        .lens(Search::query)
        .lens(AppState::search)
        .fix_width(260.0);
    let note = Label::new(|d: &AppState, _env: &Env| d.search.note.clone())
        .with_text_size(12.0)
        .with_text_color(theme::TIME);
    let button = |label: &str, action: Action| {
        Button::new(label).on_click(move |ctx, _d: &mut AppState, _env| {
            ctx.submit_command(ACTION.with(action.clone()))
        })
    };
    let bar = Flex::row()
        .with_child(field)
        .with_spacer(6.0)
        .with_child(button("Older", Action::SearchNext { older: true }))
        .with_spacer(4.0)
        .with_child(button("Newer", Action::SearchNext { older: false }))
        .with_spacer(8.0)
        .with_flex_child(note.expand_width(), 1.0)
        .with_child(button("Close", Action::CloseSearch))
        .padding((10.0, 6.0))
        .background(theme::PANEL);
    Either::new(|d: &AppState, _env| d.search.open, bar, SizedBox::empty())
}

/// Keys of the search field.
struct SearchKeys;

impl<W: Widget<String>> Controller<String, W> for SearchKeys {
    fn event(
        &mut self,
        child: &mut W,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut String,
        env: &Env,
    ) {
        match event {
            Event::KeyDown(k) if ctx.has_focus() => {
                let action = match k.key {
                    Key::Enter => Some(Action::SearchNext {
                        older: !k.mods.shift(),
                    }),
                    Key::Escape => Some(Action::CloseSearch),
                    _ => None,
                };
                if let Some(a) = action {
                    ctx.submit_command(ACTION.with(a));
                    ctx.set_handled();
                    return;
                }
            }
            _ => {}
        }
        child.event(ctx, event, data, env);
    }
}
