//! The widgets. They only show [`AppState`] and turn clicks and keys into [`Action`]
//! commands; the root [`controller::RootController`] applies actions and network events
//! through the pure functions of [`crate::actions`] and [`crate::reduce`].

pub mod chat;
pub mod clipboard;
pub mod connect;
pub mod controller;
pub mod desktop;
pub mod focus;
pub mod gtk_options;
pub mod history;
pub mod input;
pub mod search_bar;
pub mod take_focus;
pub mod theme;

use druid::widget::{EnvScope, ViewSwitcher};
use druid::{Env, Selector, Widget, WidgetExt};

use crate::net::NetEvent;
use crate::state::{AppState, Screen};
pub use controller::{RootController, Services};

/// Network events for the UI, in order (from the network thread through `ExtEventSink`).
pub const NET_EVENTS: Selector<Vec<NetEvent>> = Selector::new("chat.net-events");
/// A user action, from a widget to the root controller.
pub const ACTION: Selector<Action> = Selector::new("chat.action");
/// Nothing: see [`UiSink`].
pub(crate) const WAKE: Selector = Selector::new("chat.wake");
/// Give the input line the keyboard focus.
pub const FOCUS_INPUT: Selector = Selector::new("chat.focus-input");
/// Give the search field the keyboard focus.
pub const FOCUS_SEARCH: Selector = Selector::new("chat.focus-search");
/// A key for the history view from elsewhere (PageUp/PageDown in the input).
pub const HISTORY_KEY: Selector<druid::keyboard_types::Key> = Selector::new("chat.history-key");

/// What a widget asks for; see [`crate::actions`] for what each does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connect button or Enter on the connect screen.
    Connect,
    /// Enter in the input or the Send button.
    Submit,
    /// Up in the input.
    RecallUp,
    /// Down in the input.
    RecallDown,
    /// A paste of several lines into the input.
    Paste(String),
    /// Send the pending paste.
    SendPaste,
    /// Drop the pending paste.
    CancelPaste,
    /// A name in the side panel was clicked.
    ClickName(String),
    /// Select the whole history.
    SelectAll,
    /// Clear the selection.
    ClearSelection,
    /// Copy the selected text.
    Copy,
    /// Open a link (a click on it in the history).
    OpenLink(String),
    /// Show the newest line and follow new ones (the "N new messages" button, End).
    JumpToBottom,
    /// Tab (or Shift+Tab, `backwards`) in the input.
    Complete {
        /// Shift was held.
        backwards: bool,
    },
    /// Ctrl+F.
    OpenSearch,
    /// Escape in the search bar.
    CloseSearch,
    /// Enter (older) or Shift+Enter (newer) in the search bar.
    SearchNext {
        /// Towards older lines.
        older: bool,
    },
    /// Reconnect now.
    Reconnect,
    /// Trust the changed certificate of the refused server (TLS-7) and reconnect.
    Trust,
    /// Switch between dark and light.
    ToggleTheme,
    /// Text typed while the input did not have the focus: append it there.
    Type(String),
}

/// The window's root widget.
pub fn root(services: Services) -> impl Widget<AppState> {
    let screens = ViewSwitcher::new(
        |d: &AppState, _env: &Env| d.screen,
        |screen, _d, _env| match screen {
            Screen::Connect => Box::new(connect::build()),
            Screen::Chat => Box::new(chat::build()),
        },
    )
    .background(druid::theme::WINDOW_BACKGROUND_COLOR);
    themed(screens).controller(RootController::new(services))
}

/// `inner` drawn with the theme the state picks (every widget of ours needs its keys).
pub fn themed(inner: impl Widget<AppState> + 'static) -> impl Widget<AppState> {
    EnvScope::new(
        |env: &mut Env, d: &AppState| theme::apply(env, d.theme),
        inner,
    )
}

/// Delivers network events to the window through druid's `ExtEventSink`, which is safe
/// to use from the network thread.
pub struct UiSink(pub druid::ExtEventSink);

impl crate::net::EventSink for UiSink {
    fn emit_all(&self, events: Vec<NetEvent>) {
        // Fails only when the app has ended; then nobody is left to tell.
        let _ = self
            .0
            .submit_command(NET_EVENTS, events, druid::Target::Auto);
        // Druid 0.8's `submit_command` wakes the UI thread *before* it queues the
        // command, so the UI may look at the queue too early and go back to sleep,
        // leaving the batch there until something else wakes it (seen: a window stuck
        // at "Connecting..." although connected). A second submission wakes it again
        // after the batch is surely queued; the no-op it queues is handled (ignored) on
        // some later wake-up.
        let _ = self.0.submit_command(WAKE, (), druid::Target::Auto);
    }
}

/// The application delegate: only there to run code between druid creating the GTK
/// application and GTK parsing the command line (see [`gtk_options`]).
pub struct Delegate {
    /// The command line's long options and whether each takes a value.
    pub options: Vec<(String, bool)>,
}

impl druid::AppDelegate<AppState> for Delegate {
    fn window_added(
        &mut self,
        _id: druid::WindowId,
        _handle: druid::WindowHandle,
        _data: &mut AppState,
        _env: &Env,
        _ctx: &mut druid::DelegateCtx,
    ) {
        if !self.options.is_empty() {
            gtk_options::accept(&std::mem::take(&mut self.options));
        }
    }
}
