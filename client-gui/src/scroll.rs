//! Where the history view is scrolled to, without pixels of content: the first visible
//! row and how far it is pushed up past the top edge.
//!
//! A pixel offset into the whole history would need the height of every line above it,
//! that is laying out 100,000 lines after each resize. Anchoring on a row needs only the
//! heights of the rows being scrolled over or shown, so every operation here costs in
//! proportion to the screen, never to the history. The scrollbar is then drawn by row
//! count (position = rows above / all rows), as virtualised lists do.
//!
//! Rows are addressed by index; the caller maps indices to line ids (ids are
//! consecutive, see [`crate::state::AppState::index_of`]) and keeps `top` as an id
//! between frames so it survives old lines being dropped.

/// The rows being shown: how many, and the height of each (laid out on demand).
pub trait Rows {
    /// Number of rows.
    fn count(&self) -> usize;
    /// Height of row `index` (< `count`), in pixels; positive.
    fn height(&mut self, index: usize) -> f64;
}

/// A scroll position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrollPos {
    /// Show the newest rows, bottom-aligned, and keep doing so as rows are added.
    pub follow: bool,
    /// First visible row (ignored while following).
    pub top: usize,
    /// How much of `top` is above the view's top edge, in pixels (0 ≤ offset < height).
    pub offset: f64,
}

impl Default for ScrollPos {
    fn default() -> Self {
        ScrollPos {
            follow: true,
            top: 0,
            offset: 0.0,
        }
    }
}

impl ScrollPos {
    /// The first visible row and its y (≤ 0) for a view `view` pixels high. While
    /// following, that is found from the bottom; then `top` and `offset` are updated,
    /// so a later scroll starts from what was on screen.
    pub fn first_visible(&mut self, rows: &mut dyn Rows, view: f64) -> (usize, f64) {
        let n = rows.count();
        if n == 0 {
            self.top = 0;
            self.offset = 0.0;
            return (0, 0.0);
        }
        if self.follow {
            let mut y = view;
            let mut i = n;
            while i > 0 && y > 0.0 {
                i -= 1;
                y -= rows.height(i);
            }
            // Fewer rows than fill the view: they start at the top.
            let y = y.min(0.0);
            self.top = i;
            self.offset = -y;
            return (i, y);
        }
        self.top = self.top.min(n - 1);
        self.offset = self.offset.clamp(0.0, rows.height(self.top));
        (self.top, -self.offset)
    }

    /// Scrolls by `dy` pixels (positive: towards newer rows). Reaching the bottom
    /// turns following on; moving up from it turns it off.
    pub fn scroll_by(&mut self, rows: &mut dyn Rows, view: f64, dy: f64) {
        let n = rows.count();
        if n == 0 || dy == 0.0 {
            return;
        }
        self.first_visible(rows, view);
        if dy < 0.0 {
            self.follow = false;
            self.offset += dy;
            while self.offset < 0.0 && self.top > 0 {
                self.top -= 1;
                self.offset += rows.height(self.top);
            }
            self.offset = self.offset.max(0.0);
        } else if !self.follow {
            self.offset += dy;
            while self.top + 1 < n {
                let h = rows.height(self.top);
                if self.offset < h {
                    break;
                }
                self.offset -= h;
                self.top += 1;
            }
        }
        self.settle(rows, view);
    }

    /// Follows again if the rows from `top` down no longer fill the view (scrolled to,
    /// or past, the bottom).
    pub fn settle(&mut self, rows: &mut dyn Rows, view: f64) {
        if self.follow {
            return;
        }
        let n = rows.count();
        let mut below = -self.offset;
        let mut i = self.top;
        while i < n && below < view {
            below += rows.height(i);
            i += 1;
        }
        if i >= n && below <= view + 0.5 {
            self.follow = true;
        }
    }

    /// PageUp / PageDown: a view's height less one text line, so the line at the edge
    /// stays in sight.
    pub fn page(&mut self, rows: &mut dyn Rows, view: f64, down: bool, overlap: f64) {
        let step = (view - overlap).max(view / 2.0);
        self.scroll_by(rows, view, if down { step } else { -step });
    }

    /// Home: the oldest row at the top.
    pub fn home(&mut self, rows: &mut dyn Rows, view: f64) {
        self.follow = false;
        self.top = 0;
        self.offset = 0.0;
        self.settle(rows, view);
    }

    /// End: the newest row, following.
    pub fn end(&mut self) {
        self.follow = true;
    }

    /// Shows row `index` a third of the way down the view (a search match).
    pub fn reveal(&mut self, rows: &mut dyn Rows, view: f64, index: usize) {
        if index >= rows.count() {
            return;
        }
        self.follow = false;
        self.top = index;
        self.offset = 0.0;
        self.scroll_by(rows, view, -(view / 3.0));
        self.settle(rows, view);
    }

    /// Jumps so that the row at `fraction` (0 oldest, 1 newest) of the history is at the
    /// top: a drag of the scrollbar's thumb.
    pub fn jump_to_fraction(&mut self, rows: &mut dyn Rows, view: f64, fraction: f64) {
        let n = rows.count();
        if n == 0 {
            return;
        }
        let f = fraction.clamp(0.0, 1.0);
        self.follow = false;
        // Truncation is the point: a row index from a fraction of the count.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let top = ((n as f64) * f) as usize;
        self.top = top.min(n - 1);
        self.offset = 0.0;
        self.settle(rows, view);
    }
}

/// The scrollbar's thumb as fractions of the track: (start, length). `first` is the
/// first visible row with `hidden` pixels of it above the view, `visible` the number of
/// rows (fractional at the edges) on screen.
pub fn thumb(count: usize, first: usize, first_part_hidden: f64, visible: f64) -> (f64, f64) {
    if count == 0 {
        return (0.0, 1.0);
    }
    let n = count as f64;
    let len = (visible / n).clamp(0.0, 1.0);
    let start = ((first as f64 + first_part_hidden) / n).clamp(0.0, 1.0 - len);
    (start, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows of `h` pixels, counting how many heights were asked for.
    struct Fixed {
        n: usize,
        h: f64,
        asked: usize,
    }

    impl Rows for Fixed {
        fn count(&self) -> usize {
            self.n
        }
        fn height(&mut self, _index: usize) -> f64 {
            self.asked += 1;
            self.h
        }
    }

    fn rows(n: usize) -> Fixed {
        Fixed {
            n,
            h: 20.0,
            asked: 0,
        }
    }

    #[test]
    fn follows_the_bottom_from_the_newest_rows() {
        let mut r = rows(100_000);
        let mut p = ScrollPos::default();
        assert_eq!(p.first_visible(&mut r, 100.0), (99_995, 0.0));
        // Only the visible rows were measured, not the history.
        assert!(r.asked <= 6, "{}", r.asked);
        let mut few = rows(2);
        assert_eq!(p.first_visible(&mut few, 100.0), (0, 0.0));
    }

    #[test]
    fn scrolling_up_stops_following_and_down_to_the_end_resumes() {
        let mut r = rows(1000);
        let mut p = ScrollPos::default();
        p.scroll_by(&mut r, 100.0, -30.0);
        assert!(!p.follow);
        assert_eq!(p.first_visible(&mut r, 100.0), (993, -10.0));
        // New rows do not move the view.
        r.n = 1100;
        assert_eq!(p.first_visible(&mut r, 100.0), (993, -10.0));
        p.scroll_by(&mut r, 100.0, 1.0e9);
        assert!(p.follow, "at the bottom again");
        assert_eq!(p.first_visible(&mut r, 100.0), (1095, 0.0));
    }

    #[test]
    fn pages_home_and_end() {
        let mut r = rows(1000);
        let mut p = ScrollPos::default();
        p.page(&mut r, 100.0, false, 20.0);
        assert_eq!(p.first_visible(&mut r, 100.0), (991, 0.0));
        p.page(&mut r, 100.0, true, 20.0);
        assert!(p.follow);
        p.home(&mut r, 100.0);
        assert_eq!(p.first_visible(&mut r, 100.0), (0, 0.0));
        p.scroll_by(&mut r, 100.0, -50.0);
        assert_eq!(
            p.first_visible(&mut r, 100.0),
            (0, 0.0),
            "not above the top"
        );
        p.end();
        assert_eq!(p.first_visible(&mut r, 100.0), (995, 0.0));
    }

    #[test]
    fn reveal_and_thumb_jump_cost_only_the_screen() {
        let mut r = rows(100_000);
        let mut p = ScrollPos::default();
        p.reveal(&mut r, 300.0, 50_000);
        let (top, _) = p.first_visible(&mut r, 300.0);
        assert_eq!(top, 49_995);
        p.jump_to_fraction(&mut r, 300.0, 0.25);
        assert_eq!(p.first_visible(&mut r, 300.0), (25_000, 0.0));
        p.jump_to_fraction(&mut r, 300.0, 1.0);
        assert!(p.follow);
        assert!(r.asked < 200, "{}", r.asked);
    }

    #[test]
    fn a_short_history_is_always_at_the_bottom() {
        let mut r = rows(3);
        let mut p = ScrollPos::default();
        p.scroll_by(&mut r, 100.0, -10.0);
        assert!(p.follow);
        p.home(&mut r, 100.0);
        assert!(p.follow);
    }

    #[test]
    fn thumb_size_and_place() {
        assert_eq!(thumb(0, 0, 0.0, 0.0), (0.0, 1.0));
        assert_eq!(thumb(100, 50, 0.0, 10.0), (0.5, 0.1));
        assert_eq!(thumb(100, 95, 0.5, 10.0), (0.9, 0.1));
        assert_eq!(thumb(5, 0, 0.0, 5.0), (0.0, 1.0));
    }
}
