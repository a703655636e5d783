//! The whole state of the client window, as druid `Data`.
//!
//! Nothing here draws or does I/O: [`crate::reduce`] and [`crate::actions`] change it and
//! the widgets in [`crate::ui`] show it, so its rules are tested without a display.

use std::sync::Arc;

use chrono::NaiveDateTime;
use druid::im::{OrdMap, Vector};
use druid::{Data, Lens};

use crate::selection::TextSelection;

/// Default for `--history-cap`: most lines of history kept; the oldest go first.
pub const HISTORY_CAP: usize = 100_000;
/// Most earlier inputs Up/Down can recall.
pub const RECALL_CAP: usize = 500;
/// Default server address, the spec's port on loopback (FRAME-1).
pub const DEFAULT_SERVER: &str = "127.0.0.1:9090";

/// When a line arrived, in local time (date and time: the history shows a separator
/// where the day changes).
pub type Stamp = NaiveDateTime;

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
///
/// Kept small on purpose: a window may hold [`HISTORY_CAP`] of them. The sender and the
/// text share one allocation (`who: text`), styling is decided when the line is drawn
/// (only visible lines are), and the time is 12 bytes, formatted when shown.
#[derive(Debug, Clone, Data, PartialEq, Eq)]
pub struct Line {
    /// Increasing by one per line, per window: a line's index in the history is its id
    /// minus the first line's id; the selection and the scroll position go by it.
    pub id: u64,
    /// Local time it arrived.
    #[data(eq)]
    pub at: Stamp,
    /// What it is.
    pub kind: LineKind,
    /// It names us (someone else's line that says our nickname as a word).
    pub mention: bool,
    /// An earlier event from a history block (backlog, resume, `/history`), not seen
    /// live: drawn dimmed, with its date.
    pub earlier: bool,
    /// Bytes of `text` that are the sender (`alice`, `alice -> bob`); 0 for notices.
    who_len: u16,
    /// The line as shown: `who: text`, or the notice's text.
    text: Arc<str>,
}

impl Line {
    /// Builds a line.
    pub fn new(id: u64, at: Stamp, kind: LineKind, who: &str, text: &str) -> Line {
        // Nicknames are at most 24 bytes (NICK-2), so `a -> b` fits in u16 with room.
        let (who_len, text) = match u16::try_from(who.len()) {
            Ok(0) | Err(_) => (0, Arc::from(text)),
            Ok(n) => (n, Arc::from(format!("{who}: {text}"))),
        };
        Line {
            id,
            at,
            kind,
            mention: false,
            earlier: false,
            who_len,
            text,
        }
    }

    /// The line as shown and copied, without the time: `who: text`.
    pub fn plain(&self) -> &str {
        &self.text
    }

    /// The shared text, for text layouts (no copy).
    pub fn shared(&self) -> Arc<str> {
        self.text.clone()
    }

    /// The sender part, empty for notices.
    pub fn who(&self) -> &str {
        self.text.get(..usize::from(self.who_len)).unwrap_or("")
    }

    /// The message without the sender.
    pub fn body(&self) -> &str {
        match self.who_len {
            0 => &self.text,
            n => self.text.get(usize::from(n) + 2..).unwrap_or(""),
        }
    }

    /// The local time as `HH:MM`.
    pub fn time(&self) -> String {
        self.at.format("%H:%M").to_string()
    }

    /// The line as written to a transcript: `[HH:MM] text`.
    pub fn stamped(&self) -> String {
        format!("[{}] {}", self.time(), self.plain())
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

/// A history block (HIST-2) being received.
#[derive(Debug, Clone, PartialEq, Eq, Data)]
pub struct Block {
    /// What asked for it.
    pub cause: BlockCause,
    /// Earlier events the header announced.
    pub count: u32,
    /// Of them, those shown now (the others were on screen already).
    pub added: u32,
}

/// Why a block came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data)]
pub enum BlockCause {
    /// The backlog after a join (HIST-5), or what was missed while away (RESUME-2).
    Join,
    /// The user typed `/history` (HIST-4).
    Asked,
}

/// The search bar's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Data, Lens)]
pub struct Search {
    /// The bar is shown.
    pub open: bool,
    /// What is looked for (case-insensitive).
    pub query: String,
    /// The match shown, if any.
    pub found: Option<Found>,
    /// The query `found` is a match of (a new query starts again from the newest line).
    pub searched: String,
    /// "No match", or how many there are, for the bar.
    pub note: String,
}

/// A match of the search: part of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Data)]
pub struct Found {
    /// The line's id.
    pub line: u64,
    /// Byte range in the line's text.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
}

/// Tab completion in progress: pressing Tab again offers the next candidate.
#[derive(Debug, Clone, PartialEq, Eq, Data)]
pub struct Completion {
    /// The input before the word being completed.
    pub head: Arc<str>,
    /// What the user had typed of the word.
    pub prefix: Arc<str>,
    /// Which candidate is in the input now.
    pub index: usize,
    /// The input as the completion left it (typing anything else ends the cycle).
    pub result: Arc<str>,
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
    /// The server address of the current connection (the form's field may differ); a
    /// comma-separated list when the chat has several servers.
    pub active_server: String,
    /// The server of `active_server`'s list that the current (or last) connection
    /// attempt went to (issue 15's failover moves it along the list).
    pub node: String,
    /// Why the last attempt on the connect screen failed (empty when it did not).
    pub connect_error: String,
    /// A connection is open and its server waits for a nickname from the user.
    pub awaiting_nick: bool,
    /// The connection, for the status line.
    pub status: Status,
    /// Our nickname once accepted (empty before).
    pub me: Arc<str>,
    /// The history, oldest first, at most `history_cap` lines.
    pub history: Vector<Line>,
    /// Most lines `history` keeps (`--history-cap`).
    pub history_cap: usize,
    /// The id the next history line gets.
    pub next_line_id: u64,
    /// Event ids (TAG-3) of the lines shown, to the line's id: an event that comes again
    /// (a backlog after a reconnect, `/history`) is not shown twice. Entries of lines
    /// gone past the cap are dropped from time to time (see [`AppState::note_event`]).
    pub event_ids: OrdMap<Arc<str>, u64>,
    /// `/history` commands sent whose block has not come yet: a block is theirs, not
    /// the backlog or resume block that follows a join.
    pub history_asked: u32,
    /// The block (HIST-2) being received, if any.
    pub block: Option<Block>,
    /// The connection dropped while chatting and the block after the next join has not
    /// come yet: that block is what was missed while away.
    pub away: bool,
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
    /// The input as it was when the note was shown: editing it clears the note.
    pub notice_input: Option<String>,
    /// Earlier inputs, oldest first, for Up/Down.
    pub recall: Vector<String>,
    /// Where Up/Down is in `recall` (`None`: editing a new line).
    pub recall_pos: Option<usize>,
    /// The new line being edited when recall started, restored by Down past the end.
    pub recall_draft: String,
    /// A multi-line paste waiting for the user to send it or drop it.
    pub paste: Option<Arc<Vec<String>>>,
    /// Text picked in the history with the mouse.
    pub selection: TextSelection,
    /// The history view shows the newest line and follows new ones (the user has not
    /// scrolled up).
    pub follow: bool,
    /// Lines that arrived while the user was scrolled up (the "N new messages" button).
    pub new_below: u32,
    /// The first line that arrived while the window was not focused: the unread divider
    /// is drawn above it.
    pub divider: Option<u64>,
    /// Lines worth attention that arrived while the window was not focused.
    pub unread: u32,
    /// Whether the window has the keyboard focus.
    pub focused: bool,
    /// The history search.
    pub search: Search,
    /// Tab completion in progress.
    pub completion: Option<Completion>,
    /// The server whose certificate changed and was refused (TLS-7), until the user
    /// trusts the new one (`/trust`), connects anew, or a connection succeeds.
    #[data(eq)]
    pub cert_changed: Option<crate::tls::Changed>,
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
            node: String::new(),
            connect_error: String::new(),
            awaiting_nick: false,
            status: Status::Idle,
            me: "".into(),
            history: Vector::new(),
            history_cap: HISTORY_CAP,
            next_line_id: 1,
            event_ids: OrdMap::new(),
            history_asked: 0,
            block: None,
            away: false,
            online: OrdMap::new(),
            who_partial: None,
            silent_who: 0,
            input: String::new(),
            notice: String::new(),
            notice_is_error: false,
            notice_input: None,
            recall: Vector::new(),
            recall_pos: None,
            recall_draft: String::new(),
            paste: None,
            selection: TextSelection::default(),
            follow: true,
            new_below: 0,
            divider: None,
            unread: 0,
            focused: true,
            search: Search::default(),
            completion: None,
            cert_changed: None,
        }
    }

    /// Appends a line to the history, dropping the oldest past the cap. Costs the same
    /// whatever the history's length: a push and at most one pop on an RRB vector, and
    /// a look for our nickname in the new line only.
    pub fn push_line(&mut self, at: Stamp, kind: LineKind, who: &str, text: &str) {
        let mut line = Line::new(self.next_line_id, at, kind, who, text);
        line.mention = matches!(kind, LineKind::Other | LineKind::Private)
            && !who.eq_ignore_ascii_case(&self.me)
            && crate::mention::names(text, &self.me);
        self.next_line_id += 1;
        let counts = matches!(kind, LineKind::Other | LineKind::Private);
        if !self.focused && counts {
            if self.unread == 0 {
                self.divider = Some(line.id);
            }
            self.unread = self.unread.saturating_add(1);
        }
        if !self.follow && counts {
            self.new_below = self.new_below.saturating_add(1);
        }
        self.history.push_back(line);
        while self.history.len() > self.history_cap.max(1) {
            self.history.pop_front();
        }
    }

    /// True when event `id` (TAG-3) is already shown.
    pub fn shows_event(&self, id: &str) -> bool {
        self.event_ids.contains_key(id)
    }

    /// Records that the newest line shows event `id`. Ids of lines gone past the cap
    /// are dropped once the map holds twice the cap, so it stays within the history's
    /// bound at an amortised constant cost per line.
    pub fn note_event(&mut self, id: &str) {
        let Some(line) = self.history.back().map(|l| l.id) else {
            return;
        };
        self.event_ids.insert(id.into(), line);
        if self.event_ids.len() > 2 * self.history_cap.max(1) {
            let first = self.history.front().map_or(0, |l| l.id);
            self.event_ids = self
                .event_ids
                .iter()
                .filter(|(_, l)| **l >= first)
                .map(|(k, v)| (k.clone(), *v))
                .collect();
        }
    }

    /// Appends an earlier event (HIST-3) to the history: dimmed and dated when drawn,
    /// never counted as unread or as a mention, since the user is not being called now.
    pub fn push_earlier(&mut self, at: Stamp, kind: LineKind, who: &str, text: &str) {
        let mut line = Line::new(self.next_line_id, at, kind, who, text);
        line.earlier = true;
        self.next_line_id += 1;
        self.history.push_back(line);
        while self.history.len() > self.history_cap.max(1) {
            self.history.pop_front();
        }
    }

    /// Whether history line `index` gets a day separator (its date) above it: the first
    /// line, the first of each day, and the first of a run of earlier events, whose
    /// date is not that of the live lines around it.
    pub fn starts_day(&self, index: usize) -> bool {
        let Some(line) = self.history.get(index) else {
            return false;
        };
        match index.checked_sub(1).and_then(|i| self.history.get(i)) {
            Some(prev) => prev.at.date() != line.at.date() || (line.earlier && !prev.earlier),
            None => true,
        }
    }

    /// The line with id `id`, found by arithmetic (ids are consecutive).
    pub fn line(&self, id: u64) -> Option<&Line> {
        self.history.get(self.index_of(id)?)
    }

    /// Where line `id` is in the history, if it is still there.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        let first = self.history.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        (i < self.history.len()).then_some(i)
    }

    /// The server to name in the title and the status line: the node connected to
    /// (one of a list), else the list, else the connect screen's field.
    pub fn server_shown(&self) -> &str {
        [&self.node, &self.active_server, &self.server]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", String::as_str)
    }

    /// The status line's text.
    pub fn status_text(&self) -> String {
        self.status.describe(self.server_shown())
    }

    /// The window title: nickname (once the server accepted it), server, and unread
    /// lines while unfocused.
    pub fn title(&self) -> String {
        let server = self.server_shown();
        let base = if self.me.is_empty() {
            format!("{server} \u{2014} chat")
        } else {
            format!("{} @ {server} \u{2014} chat", self.me)
        };
        if self.unread > 0 && !self.focused {
            format!("({}) {base}", self.unread)
        } else {
            base
        }
    }

    /// Shows `text` under the input, as an error (a refusal) or as information, until
    /// the input is edited.
    pub fn set_notice(&mut self, text: impl Into<String>, is_error: bool) {
        self.notice = text.into();
        self.notice_is_error = is_error;
        self.notice_input = Some(self.input.clone());
    }

    /// Clears the note under the input.
    pub fn clear_notice(&mut self) {
        self.notice.clear();
        self.notice_input = None;
    }

    /// The online list, sorted case-insensitively, for display.
    pub fn online_names(&self) -> Vec<Arc<str>> {
        self.online.values().cloned().collect()
    }
}

/// The set key of a nickname: folded to lower case (NICK-3).
pub fn nick_key(nick: &str) -> Arc<str> {
    nick.to_ascii_lowercase().into()
}

/// A window connected to [`DEFAULT_SERVER`] as `nick`, on the chat screen, with an
/// empty history: where tests and benches start.
pub fn chatting(nick: &str) -> AppState {
    let mut s = AppState::new(DEFAULT_SERVER, nick, ThemeChoice::Dark);
    s.active_server = DEFAULT_SERVER.into();
    s.me = nick.into();
    s.status = Status::Connected { nick: nick.into() };
    s.screen = Screen::Chat;
    s
}

/// A time on a fixed day, for tests: `"HH:MM"`.
pub fn stamp(hm: &str) -> Stamp {
    let (h, m) = hm.split_once(':').unwrap_or(("0", "0"));
    let (h, m) = (h.parse().unwrap_or(0), m.parse().unwrap_or(0));
    chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
        .and_then(|d| d.and_hms_opt(h, m, 0))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_capped_oldest_first() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        s.history_cap = 1000;
        for i in 0..1000 {
            s.push_line(stamp("12:00"), LineKind::Other, "b", &format!("line {i}"));
        }
        assert_eq!(s.history.len(), 1000);
        s.push_line(stamp("12:00"), LineKind::Other, "b", "one more");
        assert_eq!(s.history.len(), 1000);
        assert_eq!(s.history[0].body(), "line 1");
        assert_eq!(s.history.back().unwrap().body(), "one more");
        for i in 0..3000 {
            s.push_line(stamp("12:00"), LineKind::Other, "b", &format!("more {i}"));
            assert!(s.history.len() <= 1000);
        }
        let ids: Vec<u64> = s.history.iter().map(|l| l.id).collect();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous, newest kept"
        );
        assert_eq!(*ids.last().unwrap(), 4001);
        assert_eq!(s.index_of(4001), Some(999));
        assert_eq!(s.line(3002).unwrap().id, 3002);
        assert_eq!(s.index_of(3001), None, "dropped");
        assert_eq!(s.index_of(4002), None, "not yet");
        assert_eq!(HISTORY_CAP, 100_000);
    }

    #[test]
    fn unread_counts_only_while_unfocused_and_shows_in_title() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        s.me = "a".into();
        s.push_line(stamp("12:00"), LineKind::Other, "b", "hi");
        assert_eq!(s.unread, 0);
        assert_eq!(s.divider, None);
        s.focused = false;
        s.push_line(stamp("12:00"), LineKind::Join, "", "c has joined the chat");
        s.push_line(stamp("12:00"), LineKind::Other, "b", "hi");
        s.push_line(stamp("12:00"), LineKind::Private, "b -> a", "psst");
        assert_eq!(s.unread, 2);
        assert_eq!(s.divider, Some(3), "above the first unread line");
        assert_eq!(s.title(), "(2) a @ 127.0.0.1:9090 \u{2014} chat");
    }

    #[test]
    fn title_names_only_an_accepted_nickname() {
        let mut s = AppState::new(DEFAULT_SERVER, "refused", ThemeChoice::Dark);
        assert_eq!(s.title(), "127.0.0.1:9090 \u{2014} chat");
        s.me = "alice".into();
        assert_eq!(s.title(), "alice @ 127.0.0.1:9090 \u{2014} chat");
    }

    #[test]
    fn new_lines_below_are_counted_while_scrolled_up() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        s.follow = false;
        s.push_line(stamp("12:00"), LineKind::Other, "b", "one");
        s.push_line(stamp("12:00"), LineKind::Leave, "", "c has left the chat");
        s.push_line(stamp("12:00"), LineKind::Other, "b", "two");
        assert_eq!(s.new_below, 2);
    }

    #[test]
    fn mentions_are_marked_on_other_peoples_lines() {
        let mut s = AppState::new(DEFAULT_SERVER, "a", ThemeChoice::Dark);
        s.me = "Alice".into();
        s.push_line(stamp("12:00"), LineKind::Other, "b", "hi alice!");
        s.push_line(stamp("12:00"), LineKind::Other, "b", "malice");
        s.push_line(stamp("12:00"), LineKind::Own, "Alice", "I am alice");
        let m: Vec<bool> = s.history.iter().map(|l| l.mention).collect();
        assert_eq!(m, vec![true, false, false]);
    }

    /// What keeps 100,000 lines within 1.5 KB each (measured: about 330 bytes): one
    /// small struct in the vector and one allocation for the text.
    #[test]
    fn a_line_stays_small() {
        assert!(
            std::mem::size_of::<Line>() <= 48,
            "{}",
            std::mem::size_of::<Line>()
        );
    }

    #[test]
    fn plain_and_stamped_text() {
        let l = Line::new(1, stamp("09:05"), LineKind::Private, "a -> b", "x: y");
        assert_eq!(l.plain(), "a -> b: x: y");
        assert_eq!(l.who(), "a -> b");
        assert_eq!(l.body(), "x: y");
        assert_eq!(l.stamped(), "[09:05] a -> b: x: y");
        let n = Line::new(
            2,
            stamp("09:05"),
            LineKind::Join,
            "",
            "a has joined the chat",
        );
        assert_eq!(n.plain(), "a has joined the chat");
        assert_eq!(n.who(), "");
    }
}
