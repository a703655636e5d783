//! The whole state of the client window, as druid `Data`.
//!
//! Nothing here draws or does I/O: [`crate::reduce`] and [`crate::actions`] change it and
//! the widgets in [`crate::ui`] show it, so its rules are tested without a display.

use std::sync::Arc;

use druid::im::{OrdMap, Vector};
use druid::text::{Attribute, RichText};
use druid::{Data, FontStyle, FontWeight, Lens};

use crate::ui::theme;

/// Most lines of history kept; the oldest go first.
pub const HISTORY_CAP: usize = 10_000;
/// How many old lines go at once when the cap is reached. Dropping one line per new line
/// would shift every row of the list, and druid would lay out all 10,000 again for each
/// line; dropping a batch does that once per batch.
pub const HISTORY_TRIM: usize = 500;
/// Most earlier inputs Up/Down can recall.
pub const RECALL_CAP: usize = 500;
/// Default server address, the spec's port on loopback (FRAME-1).
pub const DEFAULT_SERVER: &str = "127.0.0.1:9090";

/// Which screen the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data)]
pub enum Screen {
    /// Server address and nickname.
    Connect,
    /// History, input and who is online.
    Chat,
}

/// The colour scheme. Druid ignores the desktop's GTK theme, so the user picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data)]
pub enum ThemeChoice {
    /// Light text on dark grey.
    Dark,
    /// Dark text on white.
    Light,
}

impl ThemeChoice {
    /// The name used on the command line and in the config file.
    pub fn name(self) -> &'static str {
        match self {
            ThemeChoice::Dark => "dark",
            ThemeChoice::Light => "light",
        }
    }

    /// Parses [`Self::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "dark" => Some(ThemeChoice::Dark),
            "light" => Some(ThemeChoice::Light),
            _ => None,
        }
    }

    /// The other one.
    pub fn toggled(self) -> Self {
        match self {
            ThemeChoice::Dark => ThemeChoice::Light,
            ThemeChoice::Light => ThemeChoice::Dark,
        }
    }
}

/// What a history line is, which decides how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data)]
pub enum LineKind {
    /// Our own chat line, as the server echoed it.
    Own,
    /// Someone else's chat line.
    Other,
    /// A private message to or from us.
    Private,
    /// Someone joined.
    Join,
    /// Someone left.
    Leave,
    /// Someone changed nickname.
    Rename,
    /// An answer to a `/who` the user typed.
    Users,
    /// The client's own notes: connecting, connected, disconnected.
    Info,
    /// An `ERR` from the server, or a line the client refused to send.
    Error,
}

/// One line of history.
#[derive(Debug, Clone, Data, Lens)]
pub struct Line {
    /// Increasing per window; the transcript and the selection go by it.
    pub id: u64,
    /// Local time it arrived, `HH:MM`.
    pub time: Arc<str>,
    /// What it is.
    pub kind: LineKind,
    /// The sender part (`alice`, `alice -> bob`), empty for notices.
    pub who: Arc<str>,
    /// The rest.
    pub text: Arc<str>,
    /// The line styled for display; built once, coloured through theme keys so that a
    /// theme switch restyles it.
    pub rich: RichText,
}

impl Line {
    /// Builds a line and its styled text.
    pub fn new(id: u64, time: &str, kind: LineKind, who: &str, text: &str) -> Line {
        let plain = if who.is_empty() {
            text.to_owned()
        } else {
            format!("{who}: {text}")
        };
        let len = plain.len();
        let mut rich = RichText::new(plain.into());
        let who_end = who.len();
        match kind {
            LineKind::Own | LineKind::Other | LineKind::Private => {
                let (name_color, text_color) = match kind {
                    LineKind::Own => (theme::OWN_NICK, theme::OWN_TEXT),
                    LineKind::Other => (theme::OTHER_NICK, theme::OTHER_TEXT),
                    _ => (theme::PRIVATE, theme::PRIVATE),
                };
                rich.add_attribute(0..len, Attribute::text_color(text_color));
                rich.add_attribute(0..who_end, Attribute::text_color(name_color));
                rich.add_attribute(0..who_end, Attribute::Weight(FontWeight::BOLD));
                if kind == LineKind::Private {
                    rich.add_attribute(0..len, Attribute::Style(FontStyle::Italic));
                }
            }
            LineKind::Join | LineKind::Leave | LineKind::Rename | LineKind::Users => {
                let color = match kind {
                    LineKind::Join => theme::JOIN,
                    LineKind::Leave => theme::LEAVE,
                    _ => theme::NOTICE,
                };
                rich.add_attribute(0..len, Attribute::text_color(color));
                rich.add_attribute(0..len, Attribute::Style(FontStyle::Italic));
            }
            LineKind::Info => {
                rich.add_attribute(0..len, Attribute::text_color(theme::NOTICE));
            }
            LineKind::Error => {
                rich.add_attribute(0..len, Attribute::text_color(theme::ERROR));
                rich.add_attribute(0..len, Attribute::Weight(FontWeight::BOLD));
            }
        }
        Line {
            id,
            time: time.into(),
            kind,
            who: who.into(),
            text: text.into(),
            rich,
        }
    }

    /// The line as plain text, without the time.
    pub fn plain(&self) -> String {
        if self.who.is_empty() {
            self.text.to_string()
        } else {
            format!("{}: {}", self.who, self.text)
        }
    }

    /// The line as copied or written to a transcript: `[HH:MM] text`.
    pub fn stamped(&self) -> String {
        format!("[{}] {}", self.time, self.plain())
    }
}

impl PartialEq for Line {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.time == other.time
            && self.who == other.who
            && self.text == other.text
    }
}

/// What the connection is doing, for the status line.
#[derive(Debug, Clone, PartialEq, Eq, Data)]
pub enum Status {
    /// Nothing yet (connect screen).
    Idle,
    /// Opening a TCP connection.
    Connecting {
        /// Where to.
        addr: Arc<str>,
        /// 0 for the first try, then the number of the retry.
        attempt: u32,
    },
    /// Connected; the server is deciding on the nickname.
    Handshake,
    /// Chatting.
    Connected {
        /// Our nickname.
        nick: Arc<str>,
    },
    /// Not connected.
    Disconnected {
        /// Why, in words.
        reason: Arc<str>,
        /// Seconds until the automatic retry, if one is planned.
        retry_in: Option<u64>,
    },
}

impl Status {
    /// The status line's text.
    pub fn describe(&self, server: &str) -> String {
        match self {
            Status::Idle => "Not connected".to_owned(),
            Status::Connecting { addr, attempt: 0 } => format!("Connecting to {addr}\u{2026}"),
            Status::Connecting { addr, attempt } => {
                format!("Reconnecting to {addr} (attempt {})\u{2026}", attempt + 1)
            }
            Status::Handshake => format!("Connected to {server}, choosing a nickname\u{2026}"),
            Status::Connected { nick } => format!("Connected to {server} as {nick}"),
            Status::Disconnected {
                reason,
                retry_in: Some(s),
            } => {
                format!("Disconnected: {reason}. Retrying in {s} s\u{2026}")
            }
            Status::Disconnected {
                reason,
                retry_in: None,
            } => format!("Disconnected: {reason}"),
        }
    }

    /// True while chatting.
    pub fn is_connected(&self) -> bool {
        matches!(self, Status::Connected { .. })
    }
}

/// A range of history lines picked with the mouse, by line id (anchor first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data, Default)]
pub struct Selection {
    /// Where the selection started, or `None` for no selection.
    pub anchor: Option<u64>,
    /// Where it ends (may be before the anchor).
    pub end: u64,
}

impl Selection {
    /// True when line `id` is selected.
    pub fn contains(&self, id: u64) -> bool {
        match self.anchor {
            None => false,
            Some(a) => (a.min(self.end)..=a.max(self.end)).contains(&id),
        }
    }
}

/// Everything the window shows.
#[derive(Debug, Clone, Data, Lens)]
pub struct AppState {
    /// Which screen is up.
    pub screen: Screen,
    /// The colour scheme.
    pub theme: ThemeChoice,
    /// The connect screen's server address (also the one we are connected to).
    pub server: String,
    /// The connect screen's nickname field.
    pub nick: String,
    /// The server address of the current connection (the form's field may differ).
    pub active_server: String,
    /// Why the last attempt on the connect screen failed (empty when it did not).
    pub connect_error: String,
    /// A connection is open and its server waits for a nickname from the user.
    pub awaiting_nick: bool,
    /// The connection, for the status line.
    pub status: Status,
    /// Our nickname once accepted (empty before).
    pub me: Arc<str>,
    /// The history, oldest first, at most [`HISTORY_CAP`] lines.
    pub history: Vector<Line>,
    /// The id the next history line gets.
    pub next_line_id: u64,
    /// Who is online: case-folded nickname to nickname as spelled (a set, NICK-3).
    pub online: OrdMap<Arc<str>, Arc<str>>,
    /// A `/who` answer being collected over several lines (CMD-WHO-2).
    pub who_partial: Option<OrdMap<Arc<str>, Arc<str>>>,
    /// `/who` requests the client sent itself, whose answers only fill the side panel.
    pub silent_who: u32,
    /// The input line.
    pub input: String,
    /// A note under the input (why a line was refused, what was copied), empty when none.
    pub notice: String,
    /// The note reports a refusal or an error (shown in the error colour).
    pub notice_is_error: bool,
    /// Earlier inputs, oldest first, for Up/Down.
    pub recall: Vector<String>,
    /// Where Up/Down is in `recall` (`None`: editing a new line).
    pub recall_pos: Option<usize>,
    /// The new line being edited when recall started, restored by Down past the end.
    pub recall_draft: String,
    /// A multi-line paste waiting for the user to send it or drop it.
    pub paste: Option<Arc<Vec<String>>>,
    /// History lines picked for copying.
    pub selection: Selection,
    /// Lines worth attention that arrived while the window was not focused.
    pub unread: u32,
    /// Whether the window has the keyboard focus.
    pub focused: bool,
}

impl AppState {
    /// A fresh window: connect screen with these fields filled in.
    pub fn new(server: &str, nick: &str, theme: ThemeChoice) -> Self {
        AppState {
            screen: Screen::Connect,
            theme,
            server: server.to_owned(),
            nick: nick.to_owned(),
            active_server: String::new(),
            connect_error: String::new(),
            awaiting_nick: false,
            status: Status::Idle,
            me: "".into(),
            history: Vector::new(),
            next_line_id: 1,
            online: OrdMap::new(),
            who_partial: None,
            silent_who: 0,
            input: String::new(),
            notice: String::new(),
            notice_is_error: false,
            recall: Vector::new(),
            recall_pos: None,
            recall_draft: String::new(),
            paste: None,
            selection: Selection::default(),
            unread: 0,
            focused: true,
        }
    }

    /// Appends a line to the history, dropping the oldest past [`HISTORY_CAP`].
    pub fn push_line(&mut self, time: &str, kind: LineKind, who: &str, text: &str) {
        let line = Line::new(self.next_line_id, time, kind, who, text);
        self.next_line_id += 1;
        self.history.push_back(line);
        if self.history.len() > HISTORY_CAP {
            let excess = self.history.len() - HISTORY_CAP + HISTORY_TRIM;
            self.history = self.history.skip(excess);
        }
        if !self.focused && matches!(kind, LineKind::Other | LineKind::Private) {
            self.unread = self.unread.saturating_add(1);
        }
    }

    /// The window title: server, nickname, and unread lines while unfocused.
    pub fn title(&self) -> String {
        let who = if self.me.is_empty() {
            self.nick.as_str()
        } else {
            &self.me
        };
        let server = if self.active_server.is_empty() {
            &self.server
        } else {
            &self.active_server
        };
        let base = if who.is_empty() {
            format!("{server} \u{2014} chat")
        } else {
            format!("{who} @ {server} \u{2014} chat")
        };
        if self.unread > 0 && !self.focused {
            format!("({}) {base}", self.unread)
        } else {
            base
        }
    }

    /// Shows `text` under the input, as an error (a refusal) or as information.
    pub fn set_notice(&mut self, text: impl Into<String>, is_error: bool) {
        self.notice = text.into();
        self.notice_is_error = is_error;
    }

    /// The online list, sorted case-insensitively, for display.
    pub fn online_names(&self) -> Vec<Arc<str>> {
        self.online.values().cloned().collect()
    }

    /// The selected lines as text, one per line, for the clipboard.
    pub fn selected_text(&self) -> String {
        let mut out = String::new();
        for line in self
            .history
            .iter()
            .filter(|l| self.selection.contains(l.id))
        {
            out.push_str(&line.stamped());
            out.push('\n');
        }
        out
    }

    /// Number of selected lines.
    pub fn selected_count(&self) -> usize {
        self.history
            .iter()
            .filter(|l| self.selection.contains(l.id))
            .count()
    }
}

/// The set key of a nickname: folded to lower case (NICK-3).
pub fn nick_key(nick: &str) -> Arc<str> {
    nick.to_ascii_lowercase().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_capped_oldest_first() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        for i in 0..HISTORY_CAP {
            s.push_line("12:00", LineKind::Other, "b", &format!("line {i}"));
        }
        assert_eq!(s.history.len(), HISTORY_CAP);
        s.push_line("12:00", LineKind::Other, "b", "one more");
        assert_eq!(s.history.len(), HISTORY_CAP - HISTORY_TRIM);
        assert_eq!(&*s.history[0].text, format!("line {}", HISTORY_TRIM + 1));
        assert_eq!(&*s.history.back().unwrap().text, "one more");
        for i in 0..3 * HISTORY_CAP {
            s.push_line("12:00", LineKind::Other, "b", &format!("more {i}"));
            assert!(s.history.len() <= HISTORY_CAP);
        }
        let ids: Vec<u64> = s.history.iter().map(|l| l.id).collect();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous, newest kept"
        );
        assert_eq!(*ids.last().unwrap(), (4 * HISTORY_CAP + 1) as u64);
    }

    #[test]
    fn unread_counts_only_while_unfocused_and_shows_in_title() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        s.me = "a".into();
        s.push_line("12:00", LineKind::Other, "b", "hi");
        assert_eq!(s.unread, 0);
        s.focused = false;
        s.push_line("12:00", LineKind::Other, "b", "hi");
        s.push_line("12:00", LineKind::Join, "", "c has joined the chat");
        s.push_line("12:00", LineKind::Private, "b -> a", "psst");
        assert_eq!(s.unread, 2);
        assert_eq!(s.title(), "(2) a @ 127.0.0.1:9090 \u{2014} chat");
    }

    #[test]
    fn selection_covers_range_either_direction() {
        let sel = Selection {
            anchor: Some(7),
            end: 3,
        };
        assert!(sel.contains(3) && sel.contains(5) && sel.contains(7));
        assert!(!sel.contains(8) && !sel.contains(2));
        assert!(!Selection::default().contains(0));
    }

    #[test]
    fn plain_and_stamped_text() {
        let l = Line::new(1, "09:05", LineKind::Private, "a -> b", "x: y");
        assert_eq!(l.plain(), "a -> b: x: y");
        assert_eq!(l.stamped(), "[09:05] a -> b: x: y");
        let n = Line::new(2, "09:05", LineKind::Join, "", "a has joined the chat");
        assert_eq!(n.plain(), "a has joined the chat");
    }
}
