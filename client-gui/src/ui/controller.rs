//! The root controller: the one place where actions and network events change the
//! state and where their effects (network commands, settings, clipboard, transcript)
//! are carried out.

use std::time::Duration;

use druid::widget::Controller;
use druid::{Application, Env, Event, EventCtx, TimerToken, Widget};

use super::{ACTION, Action, FOCUS_INPUT, FOCUS_SEARCH, NET_EVENTS, desktop, focus};
use crate::actions;
use crate::config::{Settings, Store};
use crate::effect::Effect;
use crate::net::CommandSender;
use crate::reduce;
use crate::state::{AppState, Stamp};
use crate::transcript::Transcript;

/// How often the window's focus is looked at.
const FOCUS_POLL: Duration = Duration::from_millis(500);

/// What the controller carries effects out with.
pub struct Services {
    /// The network thread.
    pub net: CommandSender,
    /// Where settings are saved (`None`: not saved).
    pub store: Option<Store>,
    /// The settings as last saved.
    pub settings: Settings,
    /// The `--transcript` file.
    pub transcript: Option<Transcript>,
    /// Connect as soon as the window is up (`--server` and `--nick` were given).
    pub autoconnect: bool,
    /// The local time for history lines; replaceable in tests.
    pub clock: fn() -> Stamp,
    /// Opens a link ([`desktop::open`]); replaceable in tests.
    pub open: fn(&str),
    /// Shows a desktop notification ([`desktop::notify`]); replaceable in tests.
    pub notify: fn(&str, &str),
}

impl Services {
    /// Services that send commands to `net` and keep nothing on disk.
    pub fn new(net: CommandSender) -> Self {
        Services {
            net,
            store: None,
            settings: Settings::default(),
            transcript: None,
            autoconnect: false,
            clock: local_time,
            open: desktop::open,
            notify: desktop::notify,
        }
    }
}

/// The local date and time.
pub fn local_time() -> Stamp {
    chrono::Local::now().naive_local()
}

/// See the module documentation.
pub struct RootController {
    services: Services,
    focus_timer: TimerToken,
}

impl RootController {
    /// A controller using `services`.
    pub fn new(services: Services) -> Self {
        RootController {
            services,
            focus_timer: TimerToken::INVALID,
        }
    }

    fn run(&mut self, ctx: &mut EventCtx, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Net(cmd) => self.services.net.send(cmd),
                Effect::Remember { server, nick } => {
                    self.services.settings.server = server;
                    self.services.settings.nick = nick;
                    self.save();
                }
                Effect::RememberTheme(t) => {
                    self.services.settings.theme = t;
                    self.save();
                }
                Effect::Copy(text) => {
                    if let Some(app) = Application::try_global() {
                        app.clipboard().put_string(text);
                    }
                }
                Effect::FocusInput => ctx.submit_command(FOCUS_INPUT),
                Effect::Open(url) => (self.services.open)(&url),
                Effect::Notify { title, body } => (self.services.notify)(&title, &body),
            }
        }
    }

    fn save(&self) {
        if let Some(store) = &self.services.store {
            if let Err(e) = store.save(&self.services.settings) {
                tracing::warn!("cannot save settings to {}: {e}", store.path().display());
            }
        }
    }

    fn act(&mut self, ctx: &mut EventCtx, data: &mut AppState, action: &Action) {
        let now = (self.services.clock)();
        let effects = match action {
            Action::Connect => actions::connect(data),
            Action::Submit => actions::submit(data, now),
            Action::Trust => actions::trust(data, now, None),
            Action::RecallUp => {
                actions::recall_up(data);
                vec![]
            }
            Action::RecallDown => {
                actions::recall_down(data);
                vec![]
            }
            Action::Paste(text) => actions::paste(data, text),
            Action::SendPaste => actions::send_paste(data),
            Action::CancelPaste => {
                actions::cancel_paste(data);
                vec![]
            }
            Action::ClickName(name) => actions::click_name(data, name),
            Action::SelectAll => {
                actions::select_all(data);
                vec![]
            }
            Action::ClearSelection => {
                data.selection = Default::default();
                vec![]
            }
            Action::Copy => actions::copy_selection(data),
            Action::OpenLink(url) => vec![Effect::Open(url.clone())],
            Action::JumpToBottom => {
                actions::jump_to_bottom(data);
                vec![]
            }
            Action::Complete { backwards } => {
                crate::complete::tab(data, *backwards);
                vec![]
            }
            Action::OpenSearch => {
                actions::open_search(data);
                ctx.submit_command(FOCUS_SEARCH);
                vec![]
            }
            Action::CloseSearch => {
                actions::close_search(data);
                vec![Effect::FocusInput]
            }
            Action::SearchNext { older } => {
                actions::search_next(data, *older);
                vec![]
            }
            Action::Reconnect => {
                let fx = actions::reconnect(data);
                if !fx.is_empty() {
                    actions::note(data, now, "Reconnecting\u{2026}");
                }
                fx
            }
            Action::ToggleTheme => actions::toggle_theme(data),
            Action::Type(text) => {
                actions::type_text(data, text);
                vec![]
            }
        };
        self.run(ctx, effects);
    }

    fn sync_transcript(&mut self, data: &AppState) {
        if let Some(t) = self.services.transcript.as_mut() {
            if let Err(e) = t.sync(&data.history) {
                tracing::warn!("cannot write the transcript: {e}");
                self.services.transcript = None;
            }
        }
    }
}

impl<W: Widget<AppState>> Controller<AppState, W> for RootController {
    fn event(
        &mut self,
        child: &mut W,
        ctx: &mut EventCtx,
        event: &Event,
        data: &mut AppState,
        env: &Env,
    ) {
        match event {
            Event::WindowConnected => {
                self.focus_timer = ctx.request_timer(FOCUS_POLL);
                if self.services.autoconnect {
                    self.services.autoconnect = false;
                    let fx = actions::connect(data);
                    self.run(ctx, fx);
                }
                child.event(ctx, event, data, env);
            }
            Event::Timer(t) if *t == self.focus_timer => {
                if let Some(focused) = focus::app_has_focus() {
                    if focused != data.focused {
                        actions::set_focused(data, focused);
                    }
                }
                self.focus_timer = ctx.request_timer(FOCUS_POLL);
                ctx.set_handled();
            }
            Event::Command(cmd) if cmd.is(NET_EVENTS) => {
                if let Some(events) = cmd.get(NET_EVENTS) {
                    let now = (self.services.clock)();
                    let mut effects = Vec::new();
                    for ev in events {
                        effects.extend(reduce::apply(data, ev.clone(), now));
                    }
                    self.run(ctx, effects);
                }
                ctx.set_handled();
            }
            Event::Command(cmd) if cmd.is(ACTION) => {
                if let Some(action) = cmd.get(ACTION) {
                    let action = action.clone();
                    self.act(ctx, data, &action);
                }
                ctx.set_handled();
            }
            _ => child.event(ctx, event, data, env),
        }
        actions::input_edited(data);
        self.sync_transcript(data);
    }
}
