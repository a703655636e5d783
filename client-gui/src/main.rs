//! `chat-gui`: the desktop chat client.
//!
//! ```sh
//! chat-gui                                        # connect screen, last server and nick
//! chat-gui --server 127.0.0.1:9090 --nick alice   # connect at once
//! chat-gui --server a:9090,b:9090 --nick alice     # a chat on two servers: failover
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use chat_client_gui::config::Store;
use chat_client_gui::failover::ServerList;
use chat_client_gui::net;
use chat_client_gui::state::{self, AppState, ThemeChoice};
use chat_client_gui::transcript::Transcript;
use chat_client_gui::ui::{self, Services, UiSink};
use clap::{CommandFactory, Parser, ValueEnum};
use druid::{AppLauncher, Env, WindowDesc};

/// Desktop client for the chat server (see spec/PROTOCOL.md).
#[derive(Debug, Parser)]
#[command(name = "chat-gui", version)]
struct Cli {
    /// Server address as host:port, or tls://host:port for an encrypted connection
    /// (default: the last one used, else 127.0.0.1:9090). A chat served by several
    /// servers: give them all, separated by commas or with several --server; when one is
    /// lost the client goes on with the next.
    #[arg(long, value_name = "ADDR[,ADDR...]")]
    server: Vec<String>,
    /// Trust this certificate fingerprint (SHA256:...) for the tls:// --server from now
    /// on, replacing the pinned one: after its owner confirmed that it changed.
    #[arg(long, value_name = "FINGERPRINT", requires = "server")]
    trust: Option<chat_proto::Fingerprint>,
    /// Nickname; when given, the client connects at once.
    #[arg(long, value_name = "NAME")]
    nick: Option<String>,
    /// Colour theme (default: the last one chosen, else dark).
    #[arg(long, value_enum)]
    theme: Option<ThemeArg>,
    /// Append every line the window displays to FILE.
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Most lines of history kept (the oldest go first).
    #[arg(long, value_name = "LINES", default_value_t = state::HISTORY_CAP as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    history_cap: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ThemeArg {
    Dark,
    Light,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();

    let store = Store::user();
    let mut settings = store.as_ref().map(Store::load).unwrap_or_default();
    let theme = match cli.theme {
        Some(ThemeArg::Dark) => ThemeChoice::Dark,
        Some(ThemeArg::Light) => ThemeChoice::Light,
        None => settings.theme,
    };
    // A theme chosen on the command line is remembered like one chosen with the button.
    if theme != settings.theme {
        settings.theme = theme;
        if let Some(store) = &store {
            if let Err(e) = store.save(&settings) {
                tracing::warn!("cannot save settings to {}: {e}", store.path().display());
            }
        }
    }
    let server = if cli.server.is_empty() {
        settings.server.clone()
    } else {
        match ServerList::parse(&cli.server.join(",")) {
            Ok(list) => list.to_string(),
            Err(e) => {
                eprintln!("chat-gui: --server: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let nick = cli.nick.clone().unwrap_or_else(|| settings.nick.clone());
    if let Some(fp) = cli.trust {
        let tls: Vec<String> = server
            .split(',')
            .map(str::trim)
            .filter_map(chat_client_gui::tls::tls_server)
            .collect();
        let [key] = tls.as_slice() else {
            eprintln!("chat-gui: --trust needs exactly one tls:// address in --server");
            return ExitCode::FAILURE;
        };
        match chat_client_gui::pin::store().map(|s| (s.pin(key, fp), s)) {
            Some((Ok(()), _)) => eprintln!("chat-gui: {key} is now trusted with {fp}"),
            Some((Err(e), s)) => {
                eprintln!(
                    "chat-gui: cannot save the pin in {}: {e}",
                    s.path().display()
                );
                return ExitCode::FAILURE;
            }
            None => {
                eprintln!("chat-gui: no config directory to keep the pin in");
                return ExitCode::FAILURE;
            }
        }
    }
    let transcript = match &cli.transcript {
        Some(path) => match Transcript::open(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("chat-gui: cannot open transcript {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };

    // Commands may be queued before the thread starts: the thread needs the launcher's
    // event sink, and the launcher needs the widgets, which need the command sender.
    let (commands, starter) = net::channel();
    let services = Services {
        net: commands,
        store,
        settings,
        transcript,
        autoconnect: cli.nick.is_some(),
        clock: ui::controller::local_time,
        open: ui::desktop::open,
        notify: ui::desktop::notify,
    };
    let window = WindowDesc::new(ui::root(services))
        .title(|d: &AppState, _env: &Env| d.title())
        .window_size((920.0, 620.0))
        .with_min_size((600.0, 400.0));
    // Long options that take a value, for GTK's own parser (see ui::gtk_options).
    let options = Cli::command()
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_action().takes_values())))
        .collect();
    let launcher = AppLauncher::with_window(window).delegate(ui::Delegate { options });
    let net = starter.start(UiSink(launcher.get_external_handle()));
    ui::clipboard::install(launcher.get_external_handle());
    let mut state = AppState::new(&server, &nick, theme);
    state.history_cap = usize::try_from(cli.history_cap).unwrap_or(state::HISTORY_CAP);
    let result = launcher.launch(state);
    // The window is closed: say /quit, close the connection, end the thread.
    net.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-gui: cannot open a window: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_servers_by_commas_or_repeated_option() {
        let cli = Cli::try_parse_from(["chat-gui"]).unwrap();
        assert!(cli.server.is_empty());
        let cli =
            Cli::try_parse_from(["chat-gui", "--server", "a:1,b:2", "--server", "c:3"]).unwrap();
        assert_eq!(
            ServerList::parse(&cli.server.join(","))
                .unwrap()
                .to_string(),
            "a:1,b:2,c:3"
        );
    }

    #[test]
    fn history_cap_defaults_to_100_000_and_refuses_zero() {
        let cli = Cli::try_parse_from(["chat-gui"]).unwrap();
        assert_eq!(cli.history_cap, 100_000);
        let cli = Cli::try_parse_from(["chat-gui", "--history-cap", "500"]).unwrap();
        assert_eq!(cli.history_cap, 500);
        assert!(Cli::try_parse_from(["chat-gui", "--history-cap", "0"]).is_err());
        assert!(Cli::try_parse_from(["chat-gui", "--history-cap", "-3"]).is_err());
    }
}
