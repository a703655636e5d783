//! The dark and the light theme. Druid draws its own widgets and ignores the desktop's
//! GTK theme, so the client sets every colour it uses here, for both themes, with
//! contrast checked by eye and by [`tests`] (text against background).

use druid::{Color, Env, Key, theme};

use crate::state::ThemeChoice;

/// Colour of our own nickname in chat lines.
pub const OWN_NICK: Key<Color> = Key::new("chat.own-nick");
/// Colour of our own chat text.
pub const OWN_TEXT: Key<Color> = Key::new("chat.own-text");
/// Colour of other people's nicknames.
pub const OTHER_NICK: Key<Color> = Key::new("chat.other-nick");
/// Colour of other people's chat text.
pub const OTHER_TEXT: Key<Color> = Key::new("chat.other-text");
/// Colour of private messages.
pub const PRIVATE: Key<Color> = Key::new("chat.private");
/// Colour of join notices.
pub const JOIN: Key<Color> = Key::new("chat.join");
/// Colour of leave notices.
pub const LEAVE: Key<Color> = Key::new("chat.leave");
/// Colour of other notices (renames, `/who` answers, the client's own notes).
pub const NOTICE: Key<Color> = Key::new("chat.notice");
/// Colour of errors.
pub const ERROR: Key<Color> = Key::new("chat.error");
/// Colour of the time column.
pub const TIME: Key<Color> = Key::new("chat.time");
/// Background of selected history lines.
pub const SELECTED_LINE: Key<Color> = Key::new("chat.selected-line");
/// Colour of links in the history.
pub const LINK: Key<Color> = Key::new("chat.link");
/// Background of the search match.
pub const FOUND: Key<Color> = Key::new("chat.found");
/// Background of a line that names us.
pub const MENTION: Key<Color> = Key::new("chat.mention");
/// Background of the side panel and the status bar.
pub const PANEL: Key<Color> = Key::new("chat.panel");
/// Text size of the history.
pub const HISTORY_TEXT_SIZE: Key<f64> = Key::new("chat.history-text-size");

/// The colours of one theme.
struct Palette {
    window: u32,
    panel: u32,
    field: u32,
    text: u32,
    dim: u32,
    border: u32,
    button_top: u32,
    button_bottom: u32,
    accent: u32,
    own: u32,
    other_nick: u32,
    private: u32,
    join: u32,
    leave: u32,
    error: u32,
    selected: u32,
    link: u32,
    found: u32,
    mention: u32,
}

const DARK: Palette = Palette {
    window: 0x1e1f22,
    panel: 0x2b2d31,
    field: 0x383a40,
    text: 0xe6e6e6,
    dim: 0x9a9ca3,
    border: 0x4e5058,
    button_top: 0x4e5058,
    button_bottom: 0x41434a,
    accent: 0x5865f2,
    own: 0x7fc8ff,
    other_nick: 0xf0b860,
    private: 0xd59cff,
    join: 0x6fd08c,
    leave: 0xe8a070,
    error: 0xff6b6b,
    selected: 0x3c4a6b,
    link: 0x8ab4ff,
    found: 0x6b5a1e,
    mention: 0x3a3324,
};

const LIGHT: Palette = Palette {
    window: 0xffffff,
    panel: 0xf0f1f3,
    field: 0xffffff,
    text: 0x1d1d1f,
    dim: 0x5f6368,
    border: 0xb8bcc2,
    button_top: 0xf7f7f8,
    button_bottom: 0xe3e5e8,
    accent: 0x3b5bdb,
    own: 0x0b5cad,
    other_nick: 0x9a4d00,
    private: 0x7b2fa8,
    join: 0x1e7b34,
    leave: 0xa4461a,
    error: 0xc5221f,
    selected: 0xcfe0ff,
    link: 0x1a56c4,
    found: 0xffe08a,
    mention: 0xfff4d6,
};

fn rgb(hex: u32) -> Color {
    Color::from_rgba32_u32((hex << 8) | 0xff)
}

fn palette(choice: ThemeChoice) -> &'static Palette {
    match choice {
        ThemeChoice::Dark => &DARK,
        ThemeChoice::Light => &LIGHT,
    }
}

/// Sets every colour of `choice` in `env` (druid's own keys and ours).
pub fn apply(env: &mut Env, choice: ThemeChoice) {
    let p = palette(choice);
    env.set(theme::WINDOW_BACKGROUND_COLOR, rgb(p.window));
    env.set(theme::TEXT_COLOR, rgb(p.text));
    env.set(theme::DISABLED_TEXT_COLOR, rgb(p.dim));
    env.set(theme::PLACEHOLDER_COLOR, rgb(p.dim));
    env.set(theme::BACKGROUND_LIGHT, rgb(p.field));
    env.set(theme::BACKGROUND_DARK, rgb(p.panel));
    env.set(theme::FOREGROUND_LIGHT, rgb(p.text));
    env.set(theme::FOREGROUND_DARK, rgb(p.text));
    env.set(theme::BORDER_DARK, rgb(p.border));
    env.set(theme::BORDER_LIGHT, rgb(p.dim));
    env.set(theme::BUTTON_LIGHT, rgb(p.button_top));
    env.set(theme::BUTTON_DARK, rgb(p.button_bottom));
    env.set(theme::DISABLED_BUTTON_LIGHT, rgb(p.panel));
    env.set(theme::DISABLED_BUTTON_DARK, rgb(p.panel));
    env.set(theme::PRIMARY_LIGHT, rgb(p.accent));
    env.set(theme::PRIMARY_DARK, rgb(p.accent));
    env.set(theme::CURSOR_COLOR, rgb(p.text));
    env.set(theme::SELECTED_TEXT_BACKGROUND_COLOR, rgb(p.selected));
    env.set(
        theme::SELECTED_TEXT_INACTIVE_BACKGROUND_COLOR,
        rgb(p.selected),
    );
    env.set(theme::SELECTION_TEXT_COLOR, rgb(p.text));
    env.set(theme::SCROLLBAR_COLOR, rgb(p.dim));
    env.set(theme::SCROLLBAR_BORDER_COLOR, rgb(p.panel));
    env.set(OWN_NICK, rgb(p.own));
    env.set(OWN_TEXT, rgb(p.text));
    env.set(OTHER_NICK, rgb(p.other_nick));
    env.set(OTHER_TEXT, rgb(p.text));
    env.set(PRIVATE, rgb(p.private));
    env.set(JOIN, rgb(p.join));
    env.set(LEAVE, rgb(p.leave));
    env.set(NOTICE, rgb(p.dim));
    env.set(ERROR, rgb(p.error));
    env.set(TIME, rgb(p.dim));
    env.set(SELECTED_LINE, rgb(p.selected));
    env.set(PANEL, rgb(p.panel));
    env.set(LINK, rgb(p.link));
    env.set(FOUND, rgb(p.found));
    env.set(MENTION, rgb(p.mention));
    env.set(HISTORY_TEXT_SIZE, 14.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG relative luminance of a `0xRRGGBB` colour.
    fn luminance(hex: u32) -> f64 {
        let ch = |shift: u32| {
            let c = f64::from((hex >> shift) & 0xff) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(16) + 0.7152 * ch(8) + 0.0722 * ch(0)
    }

    fn contrast(a: u32, b: u32) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// Every text colour is readable on the window and on a selected line (WCAG AA
    /// asks 4.5:1 for body text; the dim colours are for secondary text and get 4:1).
    #[test]
    fn both_themes_are_readable() {
        for p in [&DARK, &LIGHT] {
            for bg in [p.window, p.panel] {
                assert!(contrast(p.text, bg) >= 7.0);
                for fg in [p.own, p.other_nick, p.private, p.join, p.leave, p.error] {
                    assert!(
                        contrast(fg, bg) >= 4.5,
                        "{fg:06x} on {bg:06x}: {}",
                        contrast(fg, bg)
                    );
                }
                assert!(contrast(p.dim, bg) >= 4.0, "{:06x} on {bg:06x}", p.dim);
            }
            assert!(contrast(p.text, p.selected) >= 4.5);
            // Text stays readable on the search match and on a line that names us.
            for bg in [p.found, p.mention, p.selected] {
                assert!(contrast(p.text, bg) >= 4.5, "{bg:06x}");
                assert!(contrast(p.link, bg) >= 3.0, "{bg:06x}");
            }
            assert!(contrast(p.link, p.window) >= 4.5);
            assert!(contrast(p.text, p.field) >= 7.0);
        }
    }
}
