//! The history view: one custom widget that lays out and paints only the lines on
//! screen, however long the history is.
//!
//! - **Layouts** are made per line when a line is first shown, cached by line id, and
//!   dropped when the width, the theme or our nickname changes (all change how a line
//!   wraps or looks). The cache is trimmed to what was recently on screen.
//! - **Scrolling** is [`crate::scroll::ScrollPos`]: the first visible line and an
//!   offset, never a pixel position in the whole history; the view follows the newest
//!   line unless the user scrolled up. Wheel, PageUp/PageDown/Home/End and arrows, a
//!   drag of the scrollbar's thumb, a click on its track (a page), and a
//!   "N new messages" button when lines arrived below.
//! - **Selection** is [`crate::selection::TextSelection`]: a press, drag and release
//!   across characters and lines, hit-tested in the text layouts (double-click: a word,
//!   triple-click: a line), Shift+click extends; Ctrl+C copies exactly that.
//! - **Links** are underlined; a click (without a drag) opens them.
//! - A **day separator** above the first line of each day, an **unread divider** above
//!   the first line that came while the window was in the background, mentions of our
//!   nickname highlighted, the search match marked.
//!
//! With `CHAT_GUI_PAINT_LOG=1` every paint's duration is written to stderr
//! (`history paint: … ms`), for the measurements in the README. With
//! `RUST_LOG=chat_client_gui::ui::history=debug` the window positions of links and of
//! the new-messages button are logged (the end-to-end test clicks them).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Instant;

use druid::keyboard_types::Key;
use druid::piet::{
    HitTestPoint, PietText, PietTextLayout, Text, TextAttribute, TextLayout, TextLayoutBuilder,
};
use druid::widget::prelude::*;
use druid::{
    Color, Cursor, FontFamily, FontStyle, FontWeight, Point, Rect, RoundedRectRadii, Vec2,
};

use super::{ACTION, Action, FOCUS_INPUT, HISTORY_KEY, theme};
use crate::actions;
use crate::scroll::{Rows, ScrollPos, thumb};
use crate::selection::{TextPos, TextSelection, word_at};
use crate::state::{AppState, Line, LineKind, ThemeChoice};
use crate::{links, mention};

/// Left margin.
const PAD_X: f64 = 10.0;
/// Width of the time column.
const TIME_W: f64 = 46.0;
/// Where the text starts.
const TEXT_X: f64 = PAD_X + TIME_W;
/// Width of the scrollbar (track and thumb).
const BAR_W: f64 = 10.0;
/// Space between the text and the scrollbar.
const GAP_RIGHT: f64 = 12.0;
/// Space above and below a line's text.
const ROW_PAD: f64 = 2.0;
/// Height of a day separator or of the unread divider.
const HEADER_H: f64 = 26.0;
/// Shortest scrollbar thumb.
const MIN_THUMB: f64 = 24.0;
/// Size of the time column's text.
const TIME_SIZE: f64 = 12.0;
/// Lines kept laid out beyond those on screen (scrolling back a little is free).
const CACHE_KEEP: usize = 600;
/// Lines over [`CACHE_KEEP`] before the cache is trimmed.
const CACHE_SLACK: usize = 100;
/// Pixels one arrow key scrolls.
const ARROW_STEP: f64 = 40.0;

/// What a mouse press in the view started.
#[derive(Debug, Clone, PartialEq)]
enum Drag {
    None,
    /// Selecting text; `moved` once the selection grew; `link` under the press.
    Select {
        moved: bool,
        link: Option<String>,
    },
    /// Dragging the scrollbar's thumb, held `grab` pixels below its top.
    Thumb {
        grab: f64,
    },
}

/// One line, laid out.
struct Row {
    text: Option<PietTextLayout>,
    time: Option<PietTextLayout>,
    /// Day separator text, if this line starts a day.
    day: Option<PietTextLayout>,
    /// The unread divider is above this line.
    divider: bool,
    /// Link byte ranges in the line's text.
    links: Vec<Range<usize>>,
    height: f64,
}

impl Row {
    fn headers_height(&self) -> f64 {
        let n = usize::from(self.day.is_some()) + usize::from(self.divider);
        n as f64 * HEADER_H
    }
}

/// Where a row was drawn, for hit-testing.
#[derive(Debug, Clone, Copy)]
struct Placed {
    id: u64,
    /// Top of the row (headers included).
    y: f64,
    /// Top of the text.
    text_y: f64,
    height: f64,
}

/// Layouts of recently shown lines, by line id.
#[derive(Default)]
struct Cache {
    rows: HashMap<u64, Row>,
    /// The text width the layouts were made for.
    width: f64,
    /// Lines laid out so far (the paint log reports how many each frame made).
    made: u64,
}

/// The lines as [`Rows`] for the scroll model: heights come from (cached) layouts.
struct Lines<'a> {
    cache: &'a mut Cache,
    text: &'a mut PietText,
    data: &'a AppState,
    env: &'a Env,
}

impl Rows for Lines<'_> {
    fn count(&self) -> usize {
        self.data.history.len()
    }

    fn height(&mut self, index: usize) -> f64 {
        self.row(index).map_or(HEADER_H, |r| r.height)
    }
}

impl Lines<'_> {
    /// The laid-out row of history line `index`, from the cache or made now.
    fn row(&mut self, index: usize) -> Option<&Row> {
        let line = self.data.history.get(index)?;
        let day = self.data.starts_day(index);
        let divider = self.data.divider == Some(line.id);
        let fresh = self
            .cache
            .rows
            .get(&line.id)
            .is_some_and(|r| r.day.is_some() == day && r.divider == divider);
        if !fresh {
            let row = lay_out(
                self.text,
                self.env,
                self.data,
                line,
                self.cache.width,
                day,
                divider,
            );
            self.cache.rows.insert(line.id, row);
            self.cache.made += 1;
        }
        self.cache.rows.get(&line.id)
    }
}

/// The colour of a line's text, by kind.
fn text_color(kind: LineKind) -> druid::Key<Color> {
    match kind {
        LineKind::Own => theme::OWN_TEXT,
        LineKind::Other => theme::OTHER_TEXT,
        LineKind::Private => theme::PRIVATE,
        LineKind::Join => theme::JOIN,
        LineKind::Leave => theme::LEAVE,
        LineKind::Rename | LineKind::Users | LineKind::Info => theme::NOTICE,
        LineKind::Error => theme::ERROR,
    }
}

/// Lays out one line: its text styled by kind, sender in bold, links underlined,
/// mentions of our nickname in bold; its time; its day separator.
fn lay_out(
    text: &mut PietText,
    env: &Env,
    data: &AppState,
    line: &Line,
    width: f64,
    day: bool,
    divider: bool,
) -> Row {
    let size = env.get(theme::HISTORY_TEXT_SIZE);
    let plain = line.plain();
    let who = line.who().len();
    let body_start = if who == 0 { 0 } else { who + 2 };
    let links = links::find(plain.get(body_start..).unwrap_or(""))
        .into_iter()
        .map(|r| r.start + body_start..r.end + body_start)
        .collect::<Vec<_>>();
    // Earlier events (spec §17) are dimmed but keep their kind's colour: the past
    // stands apart from what is said now, and a join still reads as a join.
    let dim = |c: Color| if line.earlier { c.with_alpha(0.55) } else { c };
    let mut b = text
        .new_text_layout(line.shared())
        .font(FontFamily::SYSTEM_UI, size)
        .text_color(dim(env.get(text_color(line.kind))))
        .max_width(width.max(20.0));
    if who > 0 {
        let nick = match line.kind {
            LineKind::Own => theme::OWN_NICK,
            LineKind::Other => theme::OTHER_NICK,
            _ => theme::PRIVATE,
        };
        b = b
            .range_attribute(0..who, TextAttribute::TextColor(dim(env.get(nick))))
            .range_attribute(0..who, TextAttribute::Weight(FontWeight::BOLD));
    }
    match line.kind {
        LineKind::Private | LineKind::Join | LineKind::Leave | LineKind::Rename => {
            b = b.range_attribute(.., TextAttribute::Style(FontStyle::Italic));
        }
        LineKind::Error => b = b.range_attribute(.., TextAttribute::Weight(FontWeight::BOLD)),
        _ => {}
    }
    if line.mention {
        for r in mention::find(plain.get(body_start..).unwrap_or(""), &data.me) {
            let r = r.start + body_start..r.end + body_start;
            b = b.range_attribute(r, TextAttribute::Weight(FontWeight::BOLD));
        }
    }
    for r in &links {
        b = b
            .range_attribute(r.clone(), TextAttribute::Underline(true))
            .range_attribute(r.clone(), TextAttribute::TextColor(env.get(theme::LINK)));
    }
    let text_layout = b.build().ok();
    let time = text
        .new_text_layout(line.time())
        .font(FontFamily::SYSTEM_UI, TIME_SIZE)
        .text_color(env.get(theme::TIME))
        .build()
        .ok();
    let day = day
        .then(|| {
            text.new_text_layout(line.at.format("%A, %-d %B %Y").to_string())
                .font(FontFamily::SYSTEM_UI, TIME_SIZE)
                .text_color(env.get(theme::TIME))
                .build()
                .ok()
        })
        .flatten();
    let text_h = text_layout.as_ref().map_or(size * 1.3, |l| l.size().height);
    let mut row = Row {
        text: text_layout,
        time,
        day,
        divider,
        links,
        height: 0.0,
    };
    row.height = row.headers_height() + text_h + 2.0 * ROW_PAD;
    row
}

/// CPU time this thread has used, in milliseconds (`None` where not known). The paint
/// log gives it beside the wall time: a slow frame with little CPU time was the
/// machine being busy with other programs, not work done here.
#[cfg(target_os = "linux")]
fn thread_cpu_ms() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1.0e6)
}

/// Not known on this platform.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_ms() -> Option<f64> {
    None
}

/// Whether `CHAT_GUI_PAINT_LOG` asks for paint times.
fn paint_log() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CHAT_GUI_PAINT_LOG").is_some_and(|v| v != "0"))
}

/// See the module documentation.
pub struct HistoryView {
    pos: ScrollPos,
    /// `pos.top` as a line id, so the place survives old lines being dropped.
    top_id: u64,
    cache: Cache,
    theme: Option<ThemeChoice>,
    me: std::sync::Arc<str>,
    drag: Drag,
    /// Rows drawn by the last paint (or placement), top to bottom.
    placed: Vec<Placed>,
    /// The scrollbar's thumb as last drawn.
    thumb: Rect,
    /// The new-messages button as last drawn.
    button: Option<Rect>,
    /// What the debug log last said about positions (said again only when changed).
    logged: String,
    /// A search match is to be shown (at `top_id`) at the next paint.
    reveal: bool,
}

impl Default for HistoryView {
    fn default() -> Self {
        Self::new()
    }
}

impl HistoryView {
    /// An empty view, following the newest line.
    pub fn new() -> Self {
        HistoryView {
            pos: ScrollPos::default(),
            top_id: 0,
            cache: Cache::default(),
            theme: None,
            me: "".into(),
            drag: Drag::None,
            placed: Vec::new(),
            thumb: Rect::ZERO,
            button: None,
            logged: String::new(),
            reveal: false,
        }
    }

    /// Runs `f` on the scroll position with the lines of `data`; keeps `top_id` and
    /// `data.follow` in step with the result.
    fn scroll<R>(
        &mut self,
        text: &mut PietText,
        data: &AppState,
        env: &Env,
        view: f64,
        f: impl FnOnce(&mut ScrollPos, &mut Lines<'_>, f64) -> R,
    ) -> R {
        let first = data.history.front().map_or(0, |l| l.id);
        if !self.pos.follow {
            match data.index_of(self.top_id) {
                Some(i) => self.pos.top = i,
                // Dropped by the cap: the oldest line left.
                None if self.top_id < first => {
                    self.pos.top = 0;
                    self.pos.offset = 0.0;
                }
                None => {}
            }
        }
        let mut lines = Lines {
            cache: &mut self.cache,
            text,
            data,
            env,
        };
        let r = f(&mut self.pos, &mut lines, view);
        self.top_id = first + self.pos.top as u64;
        r
    }

    /// Tells the state whether the view follows the bottom now.
    fn sync_follow(&self, data: &mut AppState) {
        if data.follow != self.pos.follow {
            actions::scrolled(data, self.pos.follow);
        }
    }

    /// Places the visible rows (laying out what is new) into `self.placed`.
    fn place(&mut self, text: &mut PietText, data: &AppState, env: &Env, size: Size) {
        let mut placed = std::mem::take(&mut self.placed);
        placed.clear();
        self.scroll(text, data, env, size.height, |pos, lines, view| {
            let (first, mut y) = pos.first_visible(lines, view);
            let mut i = first;
            while y < view && i < lines.count() {
                let Some(line) = data.history.get(i) else {
                    break;
                };
                let Some(row) = lines.row(i) else { break };
                placed.push(Placed {
                    id: line.id,
                    y,
                    text_y: y + row.headers_height() + ROW_PAD,
                    height: row.height,
                });
                y += row.height;
                i += 1;
            }
        });
        self.placed = placed;
        self.trim_cache();
    }

    /// Keeps the cache to about [`CACHE_KEEP`] lines around the screen. Trimmed a
    /// little at a time: dropping hundreds of pango layouts at once took 8 ms (measured),
    /// half a frame.
    fn trim_cache(&mut self) {
        if self.cache.rows.len() <= CACHE_KEEP + CACHE_SLACK {
            return;
        }
        let (Some(first), Some(last)) = (self.placed.first(), self.placed.last()) else {
            self.cache.rows.clear();
            return;
        };
        let half = CACHE_KEEP as u64 / 2;
        let (lo, hi) = (first.id.saturating_sub(half), last.id + half);
        self.cache.rows.retain(|id, _| (lo..=hi).contains(id));
    }

    /// The text point under `p` (clamped to the visible lines).
    fn hit(
        &mut self,
        text: &mut PietText,
        data: &AppState,
        env: &Env,
        p: Point,
    ) -> Option<TextPos> {
        let first = *self.placed.first()?;
        let last = *self.placed.last()?;
        let placed = if p.y < first.y {
            return Some(TextPos::new(first.id, 0));
        } else if p.y >= last.y + last.height {
            let len = data.line(last.id).map_or(0, |l| l.plain().len());
            return Some(TextPos::new(last.id, len));
        } else {
            *self
                .placed
                .iter()
                .find(|r| p.y >= r.y && p.y < r.y + r.height)?
        };
        if p.y < placed.text_y {
            return Some(TextPos::new(placed.id, 0));
        }
        let (hit, _) = self.text_hit(text, data, env, placed, p)?;
        Some(TextPos::new(placed.id, hit.idx))
    }

    /// Hit-tests `p` in the text of the row `placed`: the character, and the link
    /// (byte range) it is on, if any.
    fn text_hit(
        &mut self,
        text: &mut PietText,
        data: &AppState,
        env: &Env,
        placed: Placed,
        p: Point,
    ) -> Option<(HitTestPoint, Option<Range<usize>>)> {
        let index = data.index_of(placed.id)?;
        let mut lines = Lines {
            cache: &mut self.cache,
            text,
            data,
            env,
        };
        let row = lines.row(index)?;
        let layout = row.text.as_ref()?;
        let hit = layout.hit_test_point(Point::new(p.x - TEXT_X, p.y - placed.text_y));
        let link = row.links.iter().find(|r| r.contains(&hit.idx)).cloned();
        Some((hit, link))
    }

    /// The link under `p`, as the address to open.
    fn link_at(
        &mut self,
        text: &mut PietText,
        data: &AppState,
        env: &Env,
        p: Point,
    ) -> Option<String> {
        let placed = *self
            .placed
            .iter()
            .find(|r| p.y >= r.text_y && p.y < r.y + r.height)?;
        let (hit, link) = self.text_hit(text, data, env, placed, p)?;
        let r = link.filter(|_| hit.is_inside)?;
        Some(links::target(data.line(placed.id)?.plain().get(r)?))
    }

    /// Applies a scrolling key; true when it was one.
    fn key(&mut self, ctx: &mut EventCtx, data: &mut AppState, env: &Env, key: &Key) -> bool {
        let view = ctx.size().height;
        let line_h = env.get(theme::HISTORY_TEXT_SIZE) * 1.4;
        let text = ctx.text();
        match key {
            Key::PageUp | Key::PageDown => {
                let down = *key == Key::PageDown;
                self.scroll(text, data, env, view, |p, l, v| p.page(l, v, down, line_h));
            }
            Key::ArrowUp | Key::ArrowDown => {
                let dy = if *key == Key::ArrowUp {
                    -ARROW_STEP
                } else {
                    ARROW_STEP
                };
                self.scroll(text, data, env, view, |p, l, v| p.scroll_by(l, v, dy));
            }
            Key::Home => self.scroll(text, data, env, view, |p, l, v| p.home(l, v)),
            Key::End => self.pos.end(),
            _ => return false,
        }
        self.sync_follow(data);
        ctx.request_paint();
        true
    }

    /// The thumb's rectangle for the current placement.
    fn thumb_rect(&self, data: &AppState, size: Size) -> Rect {
        let n = data.history.len();
        let (Some(first), Some(last)) = (self.placed.first().copied(), self.placed.last().copied())
        else {
            return Rect::ZERO;
        };
        let first_index = data.index_of(first.id).unwrap_or(0);
        let hidden = if first.height > 0.0 {
            -first.y / first.height
        } else {
            0.0
        };
        let overflow = if last.height > 0.0 {
            ((last.y + last.height - size.height) / last.height).max(0.0)
        } else {
            0.0
        };
        let visible = self.placed.len() as f64 - hidden - overflow;
        let (start, len) = thumb(n, first_index, hidden, visible);
        if len >= 1.0 {
            return Rect::ZERO;
        }
        let track = size.height - 4.0;
        let h = (len * track).max(MIN_THUMB);
        let y = 2.0 + start * (track - h) / (1.0 - len).max(f64::EPSILON);
        let x = size.width - BAR_W - 2.0;
        Rect::new(x, y, x + BAR_W, (y + h).min(size.height - 2.0))
    }

    fn button_rect(
        &self,
        ctx_text: &mut PietText,
        data: &AppState,
        size: Size,
    ) -> Option<(Rect, PietTextLayout)> {
        if data.follow || data.new_below == 0 {
            return None;
        }
        let label = match data.new_below {
            1 => "\u{2193} 1 new message".to_owned(),
            n => format!("\u{2193} {n} new messages"),
        };
        let layout = ctx_text
            .new_text_layout(label)
            .font(FontFamily::SYSTEM_UI, 13.0)
            .text_color(Color::WHITE)
            .build()
            .ok()?;
        let ts = layout.size();
        let w = ts.width + 28.0;
        let h = ts.height + 12.0;
        let x = ((size.width - BAR_W - w) / 2.0).max(0.0);
        let y = (size.height - h - 12.0).max(0.0);
        Some((Rect::new(x, y, x + w, y + h), layout))
    }

    fn log_positions(&mut self, ctx: &PaintCtx, data: &AppState) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let mut out = String::new();
        for p in &self.placed {
            let (Some(row), Some(line)) = (self.cache.rows.get(&p.id), data.line(p.id)) else {
                continue;
            };
            let top = ctx.to_window(Point::new(TEXT_X, p.text_y));
            out.push_str(&format!(
                "row {} x {:.0} y {:.0}-{:.0}; ",
                p.id,
                top.x,
                top.y,
                top.y + p.height - (p.text_y - p.y) - 2.0 * ROW_PAD
            ));
            let Some(layout) = row.text.as_ref() else {
                continue;
            };
            for r in &row.links {
                if let Some(rect) = layout.rects_for_range(r.clone()).first() {
                    let c = ctx.to_window(rect.center() + Vec2::new(TEXT_X, p.text_y));
                    out.push_str(&format!(
                        "link {} at {:.0},{:.0}; ",
                        line.plain().get(r.clone()).unwrap_or(""),
                        c.x,
                        c.y
                    ));
                }
            }
        }
        if let Some(b) = self.button {
            let c = ctx.to_window(b.center());
            out.push_str(&format!(
                "new-messages button ({}) at {:.0},{:.0}; ",
                data.new_below, c.x, c.y
            ));
        }
        if out != self.logged {
            tracing::debug!("history: {out}");
            self.logged = out;
        }
    }
}

impl HistoryView {
    /// The events, as described in the module documentation.
    fn handle(&mut self, ctx: &mut EventCtx, event: &Event, data: &mut AppState, env: &Env) {
        let size = ctx.size();
        match event {
            Event::Wheel(m) => {
                let dy = m.wheel_delta.y;
                self.scroll(ctx.text(), data, env, size.height, |p, l, v| {
                    p.scroll_by(l, v, dy)
                });
                self.sync_follow(data);
                ctx.request_paint();
                ctx.set_handled();
            }
            Event::MouseDown(m) if m.button.is_left() => {
                if self.button.is_some_and(|b| b.contains(m.pos)) {
                    ctx.submit_command(ACTION.with(Action::JumpToBottom));
                    ctx.set_handled();
                    return;
                }
                if m.pos.x >= size.width - BAR_W - 4.0 {
                    if self
                        .thumb
                        .contains(Point::new(self.thumb.center().x, m.pos.y))
                        && self.thumb.height() > 0.0
                    {
                        self.drag = Drag::Thumb {
                            grab: m.pos.y - self.thumb.y0,
                        };
                        ctx.set_active(true);
                    } else if self.thumb.height() > 0.0 {
                        // A click on the track pages towards it.
                        let key = if m.pos.y < self.thumb.y0 {
                            Key::PageUp
                        } else {
                            Key::PageDown
                        };
                        self.key(ctx, data, env, &key);
                    }
                    ctx.set_handled();
                    return;
                }
                ctx.request_focus();
                self.place(ctx.text(), data, env, size);
                let Some(at) = self.hit(ctx.text(), data, env, m.pos) else {
                    return;
                };
                let link = self.link_at(ctx.text(), data, env, m.pos);
                match m.count {
                    2 | 3 => {
                        if let Some(line) = data.line(at.line) {
                            let text = line.plain();
                            let r = if m.count == 2 {
                                word_at(text, at.offset)
                            } else {
                                0..text.len()
                            };
                            data.selection = TextSelection::start(TextPos::new(at.line, r.start));
                            data.selection.extend(TextPos::new(at.line, r.end));
                        }
                        self.drag = Drag::Select {
                            moved: true,
                            link: None,
                        };
                    }
                    _ => {
                        actions::select_from(data, at, m.mods.shift());
                        self.drag = Drag::Select {
                            moved: m.mods.shift(),
                            link,
                        };
                    }
                }
                ctx.set_active(true);
                ctx.request_paint();
                ctx.set_handled();
            }
            Event::MouseMove(m) => {
                match self.drag.clone() {
                    Drag::Select { link, .. } if ctx.is_active() => {
                        // Past the top or bottom edge: scroll along.
                        let edge = if m.pos.y < 0.0 {
                            m.pos.y
                        } else if m.pos.y > size.height {
                            m.pos.y - size.height
                        } else {
                            0.0
                        };
                        if edge != 0.0 {
                            self.scroll(ctx.text(), data, env, size.height, |p, l, v| {
                                p.scroll_by(l, v, edge)
                            });
                            self.sync_follow(data);
                        }
                        self.place(ctx.text(), data, env, size);
                        if let Some(at) = self.hit(ctx.text(), data, env, m.pos) {
                            if data.selection.focus != at {
                                actions::select_to(data, at);
                                self.drag = Drag::Select { moved: true, link };
                                ctx.request_paint();
                            }
                        }
                    }
                    Drag::Thumb { grab } if ctx.is_active() => {
                        let track = size.height - 4.0 - self.thumb.height();
                        let f = if track > 0.0 {
                            (m.pos.y - grab - 2.0) / track
                        } else {
                            0.0
                        };
                        self.scroll(ctx.text(), data, env, size.height, |p, l, v| {
                            p.jump_to_fraction(l, v, f)
                        });
                        self.sync_follow(data);
                        ctx.request_paint();
                    }
                    _ => {
                        let over_link = m.pos.x < size.width - BAR_W - 4.0
                            && self.link_at(ctx.text(), data, env, m.pos).is_some();
                        let over_button = self.button.is_some_and(|b| b.contains(m.pos));
                        ctx.set_cursor(if over_link || over_button {
                            &Cursor::Pointer
                        } else if m.pos.x < size.width - BAR_W - 4.0 {
                            &Cursor::IBeam
                        } else {
                            &Cursor::Arrow
                        });
                    }
                }
            }
            Event::MouseUp(m) if m.button.is_left() => {
                if let Drag::Select {
                    moved: false,
                    link: Some(url),
                } = self.drag.clone()
                {
                    let here = self.link_at(ctx.text(), data, env, m.pos);
                    if here.as_ref() == Some(&url) {
                        ctx.submit_command(ACTION.with(Action::OpenLink(url)));
                    }
                }
                if let Some((s, e)) = data.selection.bounds() {
                    tracing::debug!(
                        "history: selected {}:{} to {}:{}",
                        s.line,
                        s.offset,
                        e.line,
                        e.offset
                    );
                }
                self.drag = Drag::None;
                ctx.set_active(false);
            }
            Event::KeyDown(k) if ctx.is_focused() => {
                let ctrl = k.mods.ctrl() || k.mods.meta();
                let action = match &k.key {
                    Key::Character(c) if ctrl && c.eq_ignore_ascii_case("c") => Some(Action::Copy),
                    Key::Character(c) if ctrl && c.eq_ignore_ascii_case("a") => {
                        Some(Action::SelectAll)
                    }
                    Key::Character(c) if ctrl && c.eq_ignore_ascii_case("f") => {
                        Some(Action::OpenSearch)
                    }
                    Key::Escape => Some(Action::ClearSelection),
                    // Typing while the history has the focus goes on in the input.
                    Key::Character(c) if !ctrl && !k.mods.alt() => {
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
                } else if self.key(ctx, data, env, &k.key) {
                    ctx.set_handled();
                }
            }
            Event::Command(cmd) if cmd.is(HISTORY_KEY) => {
                if let Some(key) = cmd.get(HISTORY_KEY) {
                    self.key(ctx, data, env, key);
                }
            }
            _ => {}
        }
    }
}

impl Widget<AppState> for HistoryView {
    fn event(&mut self, ctx: &mut EventCtx, event: &Event, data: &mut AppState, env: &Env) {
        let started = Instant::now();
        let cpu = thread_cpu_ms();
        let made = self.cache.made;
        self.handle(ctx, event, data, env);
        // Scrolling lays out the lines it passes here, before the paint: logged apart.
        if paint_log() && self.cache.made > made {
            let cpu = cpu.zip(thread_cpu_ms()).map_or(-1.0, |(a, b)| b - a);
            eprintln!(
                "history event: {:.3} ms ({:.3} ms CPU), {} laid out",
                started.elapsed().as_secs_f64() * 1000.0,
                cpu,
                self.cache.made - made
            );
        }
    }

    fn lifecycle(
        &mut self,
        ctx: &mut LifeCycleCtx,
        event: &LifeCycle,
        _data: &AppState,
        _env: &Env,
    ) {
        if let LifeCycle::BuildFocusChain = event {
            ctx.register_for_focus();
        }
    }

    fn update(&mut self, ctx: &mut UpdateCtx, old: &AppState, data: &AppState, _env: &Env) {
        if self.theme != Some(data.theme) || self.me != data.me {
            self.theme = Some(data.theme);
            self.me = data.me.clone();
            self.cache.rows.clear();
            ctx.request_paint();
        }
        if data.follow && !old.follow {
            self.pos.end();
        }
        if data.search.found != old.search.found {
            if let Some(f) = data.search.found {
                // Revealed at the next paint, which knows the view's height.
                self.pos.follow = false;
                self.top_id = f.line;
                self.pos.offset = 0.0;
                self.reveal = true;
            }
        }
        if !old.history.same(&data.history)
            || !old.selection.same(&data.selection)
            || old.search != data.search
            || old.divider != data.divider
            || old.new_below != data.new_below
            || old.follow != data.follow
        {
            ctx.request_paint();
        }
    }

    fn layout(
        &mut self,
        _ctx: &mut LayoutCtx,
        bc: &BoxConstraints,
        _data: &AppState,
        _env: &Env,
    ) -> Size {
        let size = bc.max();
        let width = (size.width - TEXT_X - GAP_RIGHT - BAR_W).max(40.0);
        if (width - self.cache.width).abs() > 0.5 {
            self.cache.rows.clear();
            self.cache.width = width;
        }
        size
    }

    fn paint(&mut self, ctx: &mut PaintCtx, data: &AppState, env: &Env) {
        let started = Instant::now();
        let cpu = thread_cpu_ms();
        let made = self.cache.made;
        let size = ctx.size();
        if self.reveal {
            self.reveal = false;
            if let Some(i) = data.index_of(self.top_id) {
                self.scroll(ctx.text(), data, env, size.height, |p, l, v| {
                    p.reveal(l, v, i)
                });
            }
        }
        ctx.fill(
            size.to_rect(),
            &env.get(druid::theme::WINDOW_BACKGROUND_COLOR),
        );
        self.place(ctx.text(), data, env, size);
        let placed = self.placed.clone();
        let selected = env.get(theme::SELECTED_LINE);
        let found_color = env.get(theme::FOUND);
        let mention_bg = env.get(theme::MENTION);
        let accent = env.get(druid::theme::PRIMARY_LIGHT);
        let time_color = env.get(theme::TIME);
        let divider_color = env.get(theme::ERROR);
        ctx.with_save(|ctx| {
            ctx.clip(size.to_rect());
            for p in &placed {
                let (Some(row), Some(line)) = (self.cache.rows.get(&p.id), data.line(p.id)) else {
                    continue;
                };
                let mut y = p.y;
                if let Some(day) = &row.day {
                    let ds = day.size();
                    let mid = y + HEADER_H / 2.0;
                    let x = (size.width - BAR_W - ds.width) / 2.0;
                    let line_color = time_color.with_alpha(0.35);
                    ctx.fill(
                        Rect::new(PAD_X, mid - 0.5, x - 10.0, mid + 0.5),
                        &line_color,
                    );
                    ctx.fill(
                        Rect::new(
                            x + ds.width + 10.0,
                            mid - 0.5,
                            size.width - BAR_W - GAP_RIGHT,
                            mid + 0.5,
                        ),
                        &line_color,
                    );
                    ctx.draw_text(day, Point::new(x, mid - ds.height / 2.0));
                    y += HEADER_H;
                }
                if row.divider {
                    let mid = y + HEADER_H / 2.0;
                    ctx.fill(
                        Rect::new(PAD_X, mid - 0.5, size.width - BAR_W - GAP_RIGHT, mid + 0.5),
                        &divider_color,
                    );
                    if let Ok(label) = ctx
                        .text()
                        .new_text_layout("New")
                        .font(FontFamily::SYSTEM_UI, 11.0)
                        .text_color(divider_color)
                        .build()
                    {
                        let ls = label.size();
                        let x = size.width - BAR_W - GAP_RIGHT - ls.width - 6.0;
                        let bg = env.get(druid::theme::WINDOW_BACKGROUND_COLOR);
                        ctx.fill(
                            Rect::new(
                                x - 6.0,
                                mid - ls.height / 2.0,
                                x + ls.width + 6.0,
                                mid + ls.height / 2.0,
                            ),
                            &bg,
                        );
                        ctx.draw_text(&label, Point::new(x, mid - ls.height / 2.0));
                    }
                }
                let text_top = p.text_y;
                let row_rect = Rect::new(
                    0.0,
                    text_top - ROW_PAD,
                    size.width - BAR_W - 4.0,
                    p.y + p.height,
                );
                if line.mention {
                    ctx.fill(row_rect, &mention_bg);
                    ctx.fill(Rect::new(0.0, row_rect.y0, 3.0, row_rect.y1), &accent);
                }
                let origin = Vec2::new(TEXT_X, text_top);
                if let Some(layout) = &row.text {
                    if let Some(r) = data.selection.range_in(p.id, line.plain().len()) {
                        let mut rects = layout.rects_for_range(r.clone());
                        // A selected line break shows as a little room after the text.
                        let continues = data.selection.bounds().is_some_and(|(_, e)| e.line > p.id);
                        if continues {
                            if let Some(last) = rects.last_mut() {
                                last.x1 += 6.0;
                            } else {
                                rects.push(Rect::new(0.0, 0.0, 6.0, layout.size().height));
                            }
                        }
                        for rect in rects {
                            ctx.fill(rect + origin, &selected);
                        }
                    }
                    if let Some(f) = data.search.found.filter(|f| f.line == p.id) {
                        for rect in layout.rects_for_range(f.start..f.end) {
                            ctx.fill(rect + origin, &found_color);
                        }
                    }
                    ctx.draw_text(layout, origin.to_point());
                }
                if let Some(time) = &row.time {
                    // On the first line's baseline, whatever the text size.
                    let base = row
                        .text
                        .as_ref()
                        .and_then(|l| l.line_metric(0))
                        .map_or(0.0, |m| m.baseline);
                    let tb = time.line_metric(0).map_or(0.0, |m| m.baseline);
                    ctx.draw_text(time, Point::new(PAD_X, text_top + base - tb));
                }
            }
        });
        // The scrollbar.
        self.thumb = self.thumb_rect(data, size);
        if self.thumb.height() > 0.0 {
            let track = Rect::new(self.thumb.x0, 2.0, self.thumb.x1, size.height - 2.0);
            ctx.fill(
                track.to_rounded_rect(BAR_W / 2.0),
                &time_color.with_alpha(0.12),
            );
            let alpha = if matches!(self.drag, Drag::Thumb { .. }) {
                0.8
            } else {
                0.5
            };
            ctx.fill(
                self.thumb.to_rounded_rect(BAR_W / 2.0),
                &time_color.with_alpha(alpha),
            );
        }
        // The new-messages button.
        self.button = None;
        if let Some((rect, label)) = self.button_rect(ctx.text(), data, size) {
            let pill = rect.to_rounded_rect(RoundedRectRadii::from(rect.height() / 2.0));
            ctx.fill(pill, &accent);
            let ls = label.size();
            ctx.draw_text(
                &label,
                Point::new(
                    rect.x0 + (rect.width() - ls.width) / 2.0,
                    rect.y0 + (rect.height() - ls.height) / 2.0,
                ),
            );
            self.button = Some(rect);
        }
        self.log_positions(ctx, data);
        if paint_log() {
            let cpu = cpu.zip(thread_cpu_ms()).map_or(-1.0, |(a, b)| b - a);
            eprintln!(
                "history paint: {:.3} ms ({:.3} ms CPU), {} rows drawn, {} laid out, {} lines held",
                started.elapsed().as_secs_f64() * 1000.0,
                cpu,
                self.placed.len(),
                self.cache.made - made,
                data.history.len()
            );
        }
    }
}

/// The history view with its background.
pub fn build() -> impl Widget<AppState> {
    HistoryView::new()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Mutex;

    use druid::tests::harness::Harness;
    use druid::{KeyEvent, Modifiers, MouseButton, MouseButtons, MouseEvent, WidgetExt, WidgetPod};

    use super::*;
    use crate::net::CommandSender;
    use crate::state::stamp;
    use crate::ui::{RootController, Services, themed};

    /// What the view showed at its last paint.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        follow: bool,
        placed: Vec<Placed>,
        cached: usize,
        button: Option<Rect>,
        thumb: Rect,
    }

    impl Seen {
        fn first(&self) -> u64 {
            self.placed.first().map_or(0, |p| p.id)
        }
        fn last(&self) -> u64 {
            self.placed.last().map_or(0, |p| p.id)
        }
        /// A point in the text of line `id`, `x` pixels into it.
        fn at(&self, id: u64, x: f64) -> Point {
            let p = self
                .placed
                .iter()
                .find(|p| p.id == id)
                .expect("line on screen");
            Point::new(TEXT_X + x, p.text_y + 6.0)
        }
    }

    /// The real view, reporting what it drew.
    struct Probe {
        inner: WidgetPod<AppState, HistoryView>,
        seen: Rc<RefCell<Seen>>,
    }

    impl Widget<AppState> for Probe {
        fn event(&mut self, ctx: &mut EventCtx, event: &Event, data: &mut AppState, env: &Env) {
            self.inner.event(ctx, event, data, env);
        }
        fn lifecycle(&mut self, ctx: &mut LifeCycleCtx, e: &LifeCycle, d: &AppState, env: &Env) {
            self.inner.lifecycle(ctx, e, d, env);
        }
        fn update(&mut self, ctx: &mut UpdateCtx, _old: &AppState, data: &AppState, env: &Env) {
            self.inner.update(ctx, data, env);
        }
        fn layout(
            &mut self,
            ctx: &mut LayoutCtx,
            bc: &BoxConstraints,
            d: &AppState,
            env: &Env,
        ) -> Size {
            let size = self.inner.layout(ctx, bc, d, env);
            self.inner.set_origin(ctx, Point::ORIGIN);
            size
        }
        fn paint(&mut self, ctx: &mut PaintCtx, data: &AppState, env: &Env) {
            self.inner.paint(ctx, data, env);
            let v = self.inner.widget();
            *self.seen.borrow_mut() = Seen {
                follow: v.pos.follow,
                placed: v.placed.clone(),
                cached: v.cache.rows.len(),
                button: v.button,
                thumb: v.thumb,
            };
        }
    }

    static OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn chatting(lines: usize) -> AppState {
        let mut d = crate::state::chatting("alice");
        for i in 0..lines {
            d.push_line(stamp("10:00"), LineKind::Other, "bob", &format!("line {i}"));
        }
        d
    }

    fn run(data: AppState, mut f: impl FnMut(&mut Harness<AppState>, &dyn Fn() -> Seen)) {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let probe = Probe {
            inner: WidgetPod::new(HistoryView::new()),
            seen: seen.clone(),
        };
        let mut services = Services::new(CommandSender::capture().0);
        services.open = |url| OPENED.lock().unwrap().push(url.to_owned());
        let root = themed(probe).controller(RootController::new(services));
        Harness::create_simple(data, root, |h| {
            h.set_initial_size(Size::new(500.0, 300.0));
            h.send_initial_events();
            h.just_layout();
            h.paint();
            let get = || seen.borrow().clone();
            f(h, &get);
        });
    }

    fn mouse(pos: Point, count: u8, down: bool) -> MouseEvent {
        MouseEvent {
            pos,
            window_pos: pos,
            buttons: if down {
                MouseButtons::new().with(MouseButton::Left)
            } else {
                MouseButtons::new()
            },
            mods: Modifiers::empty(),
            count,
            focus: false,
            button: MouseButton::Left,
            wheel_delta: Vec2::ZERO,
        }
    }

    fn click(h: &mut Harness<AppState>, at: Point) {
        h.event(Event::MouseDown(mouse(at, 1, true)));
        h.event(Event::MouseUp(mouse(at, 1, false)));
        h.paint();
    }

    fn wheel(dy: f64) -> Event {
        let mut m = mouse(Point::new(200.0, 100.0), 0, false);
        m.button = MouseButton::None;
        m.wheel_delta = Vec2::new(0.0, dy);
        Event::Wheel(m)
    }

    fn key(h: &mut Harness<AppState>, k: Key) {
        h.event(Event::KeyDown(KeyEvent::for_test(Modifiers::empty(), k)));
        h.paint();
    }

    fn add(h: &mut Harness<AppState>, text: &str) {
        let msg = chat_proto::ServerMessage::parse(text).unwrap();
        h.submit_command(
            crate::ui::NET_EVENTS
                .with(vec![crate::net::NetEvent::Line(msg)])
                .to(druid::Target::Global),
        );
        h.paint();
    }

    #[test]
    fn follows_unless_scrolled_up_and_counts_new_lines_below() {
        run(chatting(100), |h, seen| {
            assert_eq!(seen().last(), 100, "newest line drawn");
            add(h, "bob: one more");
            assert_eq!(seen().last(), 101);
            assert!(seen().follow);
            // Scrolled up: new lines are counted, the view stays.
            h.event(wheel(-200.0));
            h.paint();
            let before = seen();
            assert!(!before.follow && !h.data().follow);
            add(h, "bob: below");
            add(h, "carol has joined the chat");
            assert_eq!(
                (seen().first(), seen().last()),
                (before.first(), before.last())
            );
            assert_eq!(h.data().new_below, 1, "chat lines only");
            // The button takes the view back down.
            let button = seen().button.expect("new-messages button shown").center();
            click(h, button);
            assert!(h.data().follow && seen().follow);
            assert_eq!(seen().last(), 103);
            assert_eq!(h.data().new_below, 0);
            assert!(seen().button.is_none());
        });
    }

    #[test]
    fn keys_and_the_scrollbar_track_page_through() {
        run(chatting(1000), |h, seen| {
            h.event(Event::MouseDown(mouse(Point::new(200.0, 10.0), 1, true)));
            h.event(Event::MouseUp(mouse(Point::new(200.0, 10.0), 1, false)));
            let bottom = seen().first();
            key(h, Key::PageUp);
            let up = seen().first();
            assert!(up < bottom && !h.data().follow, "{up} {bottom}");
            // Most of a page, keeping a line in sight.
            assert!(bottom - up >= 5, "{up} {bottom}");
            key(h, Key::Home);
            assert_eq!(seen().first(), 1);
            assert!(
                seen().thumb.y0 < 5.0,
                "thumb at the top: {:?}",
                seen().thumb
            );
            // A click on the track below the thumb pages down, not selects.
            let track = Point::new(495.0, 250.0);
            click(h, track);
            assert!(seen().first() > 1);
            assert!(h.data().selection.is_empty());
            key(h, Key::End);
            assert!(h.data().follow);
            assert_eq!(seen().last(), 1000);
        });
    }

    #[test]
    fn drag_selects_part_of_two_lines_and_copies_exactly_that() {
        run(chatting(30), |h, seen| {
            let (a, b) = (25, 26);
            h.event(Event::MouseDown(mouse(seen().at(a, 30.0), 1, true)));
            h.event(Event::MouseMove(mouse(seen().at(b, 20.0), 1, true)));
            h.event(Event::MouseUp(mouse(seen().at(b, 20.0), 1, false)));
            let (s, e) = h.data().selection.bounds().expect("a selection");
            assert_eq!((s.line, e.line), (a, b));
            let la = h.data().line(a).unwrap().plain().to_owned();
            let lb = h.data().line(b).unwrap().plain().to_owned();
            assert!(s.offset > 0 && s.offset < la.len(), "{s:?}");
            assert!(e.offset > 0 && e.offset < lb.len(), "{e:?}");
            let expected = format!("{}\n{}", &la[s.offset..], &lb[..e.offset]);
            assert_eq!(h.data().selection.text(&h.data().history), expected);
            h.event(Event::KeyDown(KeyEvent::for_test(Modifiers::CONTROL, "c")));
            assert!(
                h.data().notice.starts_with("Copied "),
                "{}",
                h.data().notice
            );
            assert_eq!(actions::copy_label(h.data()), "Copy 2 lines");
        });
    }

    #[test]
    fn double_click_selects_a_word_and_triple_click_a_line() {
        run(chatting(30), |h, seen| {
            let at = seen().at(30, 50.0);
            h.event(Event::MouseDown(mouse(at, 2, true)));
            h.event(Event::MouseUp(mouse(at, 2, false)));
            let word = h.data().selection.text(&h.data().history);
            assert!(["line", "29"].contains(&word.as_str()), "{word:?}");
            h.event(Event::MouseDown(mouse(at, 3, true)));
            h.event(Event::MouseUp(mouse(at, 3, false)));
            assert_eq!(h.data().selection.text(&h.data().history), "bob: line 29");
        });
    }

    #[test]
    fn a_click_on_a_link_opens_it_and_a_drag_over_it_does_not() {
        let mut data = chatting(3);
        data.push_line(
            stamp("10:00"),
            LineKind::Other,
            "bob",
            "see https://example.org/x now",
        );
        run(data, |h, seen| {
            OPENED.lock().unwrap().clear();
            let id = 4;
            // Walk right along the line until a click lands on the link (bounded).
            let mut opened = false;
            for x in (60..260).step_by(6) {
                click(h, seen().at(id, f64::from(x)));
                if !OPENED.lock().unwrap().is_empty() {
                    opened = true;
                    break;
                }
            }
            assert!(opened, "no click opened the link");
            assert_eq!(
                *OPENED.lock().unwrap(),
                vec!["https://example.org/x".to_owned()]
            );
            // Pressing on it and dragging selects instead.
            OPENED.lock().unwrap().clear();
            let p = seen().at(id, 120.0);
            h.event(Event::MouseDown(mouse(p, 1, true)));
            h.event(Event::MouseMove(mouse(seen().at(id, 20.0), 1, true)));
            h.event(Event::MouseUp(mouse(seen().at(id, 20.0), 1, false)));
            assert!(OPENED.lock().unwrap().is_empty());
            assert!(!h.data().selection.is_empty());
        });
    }

    #[test]
    fn a_hundred_thousand_lines_cost_a_screenful() {
        let mut data = chatting(0);
        data.history_cap = 100_000;
        for i in 0..100_000 {
            data.push_line(stamp("10:00"), LineKind::Other, "bob", &format!("line {i}"));
        }
        run(data, |h, seen| {
            assert_eq!(seen().last(), 100_000);
            assert!(seen().cached < 40, "laid out: {}", seen().cached);
            click(h, Point::new(200.0, 100.0));
            key(h, Key::Home);
            assert_eq!(seen().first(), 1);
            // Dragging the thumb to the middle shows the middle.
            let t = seen().thumb;
            h.event(Event::MouseDown(mouse(t.center(), 1, true)));
            h.event(Event::MouseMove(mouse(
                Point::new(t.center().x, 150.0),
                1,
                true,
            )));
            h.event(Event::MouseUp(mouse(
                Point::new(t.center().x, 150.0),
                1,
                false,
            )));
            h.paint();
            let mid = seen().first();
            assert!((40_000..60_000).contains(&mid), "{mid}");
            assert!(seen().cached < 80, "laid out: {}", seen().cached);
        });
    }

    #[test]
    fn a_search_match_is_scrolled_into_view() {
        let mut data = chatting(1000);
        // The query as typed into the bar (the harness cannot type into a TextBox).
        data.search.open = true;
        data.search.query = "line 123".into();
        run(data, |h, seen| {
            assert_eq!(seen().last(), 1000);
            h.submit_command(ACTION.with(Action::SearchNext { older: true }));
            h.paint();
            let found = h.data().search.found.expect("a match");
            assert_eq!(found.line, 124);
            assert!(
                seen().placed.iter().any(|p| p.id == 124),
                "{}..{}",
                seen().first(),
                seen().last()
            );
            assert!(!h.data().follow);
        });
    }

    #[test]
    fn day_separators_and_the_unread_divider_take_room_above_their_line() {
        let mut data = chatting(0);
        let day1 = stamp("23:59");
        let day2 = day1 + chrono::Duration::minutes(2);
        data.push_line(day1, LineKind::Other, "bob", "late");
        data.push_line(day2, LineKind::Other, "bob", "early");
        data.focused = false;
        data.push_line(day2, LineKind::Other, "bob", "unread");
        run(data, |_h, seen| {
            let p = seen().placed;
            let text_h = p[0].height - HEADER_H;
            assert!(
                (p[1].height - (text_h + HEADER_H)).abs() < 0.5,
                "new day: {p:?}"
            );
            assert!(
                (p[2].height - (text_h + HEADER_H)).abs() < 0.5,
                "divider: {p:?}"
            );
        });
    }
}
