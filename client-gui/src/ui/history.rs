//! The history view: one row per line (local time, then the styled line), selectable by
//! line with the mouse (click, Shift+click, Ctrl+A) and copied with Ctrl+C; it follows
//! new lines unless the user has scrolled up to read.
//!
//! Druid 0.8 has no selectable label, so selection is by whole lines: a chat line is
//! the unit people copy, and the copy carries the time stamps too.

use druid::keyboard_types::Key;
use druid::lens::Map;
use druid::widget::Axis;
use druid::widget::{
    Controller, CrossAxisAlignment, Flex, Label, LineBreaking, List, Painter, RawLabel, Scroll,
};
use druid::{
    BoxConstraints, Env, Event, EventCtx, LayoutCtx, LifeCycle, LifeCycleCtx, PaintCtx,
    RenderContext, Size, UpdateCtx, Widget, WidgetExt,
};

use super::theme;
use super::{ACTION, Action, FOCUS_INPUT};
use crate::state::{AppState, Line, Selection};

/// How close to the end (in pixels) still counts as "at the bottom".
const BOTTOM_SLACK: f64 = 8.0;

/// The scrolling history.
pub fn build() -> impl Widget<AppState> {
    let list = List::new(row).lens(Map::new(
        |d: &AppState| (d.selection, d.history.clone()),
        |_d: &mut AppState, _v: (Selection, druid::im::Vector<Line>)| {},
    ));
    FollowBottom::new(Scroll::new(list.padding((0.0, 4.0))).vertical())
        .controller(HistoryKeys)
        .background(druid::theme::WINDOW_BACKGROUND_COLOR)
}

fn row() -> impl Widget<(Selection, Line)> {
    let time = Label::new(|d: &(Selection, Line), _env: &Env| d.1.time.to_string())
        .with_text_color(theme::TIME)
        .with_text_size(12.0)
        .fix_width(46.0)
        .padding((0.0, 2.0, 0.0, 0.0));
    let text = RawLabel::new()
        .with_line_break_mode(LineBreaking::WordWrap)
        .with_text_size(theme::HISTORY_TEXT_SIZE)
        .lens(Map::new(
            |d: &(Selection, Line)| d.1.rich.clone(),
            |_d, _v| {},
        ));
    Flex::row()
        .cross_axis_alignment(CrossAxisAlignment::Start)
        .with_child(time)
        .with_flex_child(text, 1.0)
        .padding((10.0, 1.0))
        .background(Painter::new(|ctx, d: &(Selection, Line), env| {
            if d.0.contains(d.1.id) {
                let rect = ctx.size().to_rect();
                ctx.fill(rect, &env.get(theme::SELECTED_LINE));
            }
        }))
        .controller(RowClick)
}

/// A click on a row selects it (Shift extends the selection).
struct RowClick;

impl<W: Widget<(Selection, Line)>> Controller<(Selection, Line), W> for RowClick {
    fn event(
        &mut self,
        child: &mut W,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut (Selection, Line),
        env: &Env,
    ) {
        if let Event::MouseDown(m) = event {
            if m.button.is_left() {
                let extend = m.mods.shift();
                ctx.submit_command(ACTION.with(Action::SelectLine {
                    id: data.1.id,
                    extend,
                }));
            }
        }
        child.event(ctx, event, data, env);
    }
}

/// Keyboard for the history: it takes the focus when clicked, then Ctrl+C copies the
/// selected lines, Ctrl+A selects all, Escape clears the selection, and any other
/// character goes to the input line (with the focus).
struct HistoryKeys;

impl<W: Widget<AppState>> Controller<AppState, W> for HistoryKeys {
    fn event(
        &mut self,
        child: &mut W,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut AppState,
        env: &Env,
    ) {
        match event {
            Event::MouseDown(_) => ctx.request_focus(),
            Event::KeyDown(k) if ctx.is_focused() => {
                let action = match &k.key {
                    Key::Character(c) if k.mods.ctrl() && c.eq_ignore_ascii_case("c") => {
                        Some(Action::Copy)
                    }
                    Key::Character(c) if k.mods.ctrl() && c.eq_ignore_ascii_case("a") => {
                        Some(Action::SelectAll)
                    }
                    Key::Escape => Some(Action::ClearSelection),
                    // Typing while the history has the focus goes on in the input.
                    Key::Character(c) if !k.mods.ctrl() && !k.mods.alt() && !k.mods.meta() => {
                        ctx.submit_command(ACTION.with(Action::Type(c.clone())));
                        ctx.submit_command(FOCUS_INPUT);
                        ctx.set_handled();
                        return;
                    }
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

    fn lifecycle(
        &mut self,
        child: &mut W,
        ctx: &mut LifeCycleCtx,
        event: &LifeCycle,
        data: &AppState,
        env: &Env,
    ) {
        if let LifeCycle::BuildFocusChain = event {
            ctx.register_for_focus();
        }
        child.lifecycle(ctx, event, data, env);
    }
}

/// A vertical [`Scroll`] that stays at the bottom as content grows, as long as it was at
/// the bottom before: new lines scroll into view unless the user scrolled up to read.
pub struct FollowBottom<T, W> {
    scroll: Scroll<T, W>,
    stick: bool,
}

impl<T, W: Widget<T>> FollowBottom<T, W> {
    /// Wraps `scroll`; it starts at the bottom.
    pub fn new(scroll: Scroll<T, W>) -> Self {
        FollowBottom {
            scroll,
            stick: true,
        }
    }

    fn at_bottom(&self) -> bool {
        let content = self.scroll.child_size().height;
        let view = self.scroll.viewport_rect();
        view.y1 >= content - BOTTOM_SLACK
    }
}

impl<T: druid::Data, W: Widget<T>> Widget<T> for FollowBottom<T, W> {
    fn event(&mut self, ctx: &mut EventCtx, event: &Event, data: &mut T, env: &Env) {
        self.scroll.event(ctx, event, data, env);
        if matches!(
            event,
            Event::Wheel(_) | Event::MouseMove(_) | Event::MouseUp(_)
        ) {
            self.stick = self.at_bottom();
        }
    }

    fn lifecycle(&mut self, ctx: &mut LifeCycleCtx, event: &LifeCycle, data: &T, env: &Env) {
        self.scroll.lifecycle(ctx, event, data, env);
    }

    fn update(&mut self, ctx: &mut UpdateCtx, old: &T, data: &T, env: &Env) {
        self.scroll.update(ctx, old, data, env);
    }

    fn layout(&mut self, ctx: &mut LayoutCtx, bc: &BoxConstraints, data: &T, env: &Env) -> Size {
        let size = self.scroll.layout(ctx, bc, data, env);
        if self.stick {
            let bottom = (self.scroll.child_size().height - size.height).max(0.0);
            self.scroll.scroll_to_on_axis(ctx, Axis::Vertical, bottom);
        }
        size
    }

    fn paint(&mut self, ctx: &mut PaintCtx, data: &T, env: &Env) {
        self.scroll.paint(ctx, data, env);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use chat_proto::{Nickname, ServerMessage, Text};
    use druid::tests::harness::Harness;
    use druid::{MouseButton, MouseButtons, MouseEvent, Point, Size, Target, Vec2, WidgetPod};

    use super::*;
    use crate::net::{CommandSender, NetEvent};
    use crate::state::{DEFAULT_SERVER, Screen, Status, ThemeChoice};
    use crate::ui::{NET_EVENTS, RootController, Services, themed};

    /// (offset, content height, viewport height) after the last layout.
    type Seen = Rc<Cell<(f64, f64, f64)>>;

    /// Wraps the real history widget and reports where its scroll view is.
    struct Probe {
        inner: WidgetPod<AppState, FollowBottom<AppState, Box<dyn Widget<AppState>>>>,
        seen: Seen,
    }

    impl Widget<AppState> for Probe {
        fn event(&mut self, ctx: &mut EventCtx, event: &Event, data: &mut AppState, env: &Env) {
            self.inner.event(ctx, event, data, env);
        }
        fn lifecycle(
            &mut self,
            ctx: &mut LifeCycleCtx,
            event: &LifeCycle,
            data: &AppState,
            env: &Env,
        ) {
            self.inner.lifecycle(ctx, event, data, env);
        }
        fn update(&mut self, ctx: &mut UpdateCtx, _old: &AppState, data: &AppState, env: &Env) {
            self.inner.update(ctx, data, env);
        }
        fn layout(
            &mut self,
            ctx: &mut LayoutCtx,
            bc: &BoxConstraints,
            data: &AppState,
            env: &Env,
        ) -> Size {
            let size = self.inner.layout(ctx, bc, data, env);
            self.inner.set_origin(ctx, Point::ORIGIN);
            let s = &self.inner.widget().scroll;
            self.seen.set((
                s.offset().y,
                s.child_size().height,
                s.viewport_rect().height(),
            ));
            size
        }
        fn paint(&mut self, ctx: &mut PaintCtx, data: &AppState, env: &Env) {
            self.inner.paint(ctx, data, env);
        }
    }

    fn line(i: usize) -> druid::Command {
        let msg = ServerMessage::Chat {
            from: Nickname::new("bob").unwrap(),
            text: Text::new(&format!("line {i}")).unwrap(),
        };
        NET_EVENTS
            .with(vec![NetEvent::Line(msg)])
            .to(Target::Global)
    }

    fn wheel(dy: f64) -> Event {
        Event::Wheel(MouseEvent {
            pos: Point::new(100.0, 100.0),
            window_pos: Point::new(100.0, 100.0),
            buttons: MouseButtons::new(),
            mods: Default::default(),
            count: 0,
            focus: false,
            button: MouseButton::None,
            wheel_delta: Vec2::new(0.0, dy),
        })
    }

    #[test]
    fn follows_new_lines_unless_scrolled_up() {
        let mut data = AppState::new(DEFAULT_SERVER, "alice", ThemeChoice::Dark);
        data.me = "alice".into();
        data.status = Status::Connected {
            nick: "alice".into(),
        };
        data.screen = Screen::Chat;
        let seen: Seen = Rc::new(Cell::new((0.0, 0.0, 0.0)));
        let list: Box<dyn Widget<AppState>> = Box::new(List::new(row).lens(Map::new(
            |d: &AppState| (d.selection, d.history.clone()),
            |_d: &mut AppState, _v: (Selection, druid::im::Vector<Line>)| {},
        )));
        let probe = Probe {
            inner: WidgetPod::new(FollowBottom::new(Scroll::new(list).vertical())),
            seen: seen.clone(),
        };
        let root = themed(probe).controller(RootController::new(Services::new(
            CommandSender::capture().0,
        )));
        let at_bottom = |seen: &Seen| {
            let (offset, content, view) = seen.get();
            content > view && (offset + view - content).abs() < 1.0
        };
        Harness::create_simple(data, root, |h| {
            h.set_initial_size(Size::new(400.0, 200.0));
            h.send_initial_events();
            for i in 0..60 {
                h.submit_command(line(i));
            }
            h.event(Event::WindowSize(Size::new(400.0, 200.0)));
            h.just_layout();
            assert!(at_bottom(&seen), "follows new lines: {:?}", seen.get());

            // The user scrolls up to read: new lines do not move the view.
            h.event(wheel(-300.0));
            h.just_layout();
            let (offset, _, _) = seen.get();
            assert!(!at_bottom(&seen));
            for i in 60..80 {
                h.submit_command(line(i));
            }
            h.event(Event::WindowSize(Size::new(400.0, 200.0)));
            h.just_layout();
            assert_eq!(seen.get().0, offset, "stays where the user is reading");

            // Back at the bottom, it follows again.
            h.event(wheel(1.0e6));
            h.just_layout();
            assert!(at_bottom(&seen));
            for i in 80..90 {
                h.submit_command(line(i));
            }
            h.event(Event::WindowSize(Size::new(400.0, 200.0)));
            h.just_layout();
            assert!(at_bottom(&seen), "{:?}", seen.get());
        });
    }
}
