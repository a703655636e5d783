//! The settings the client remembers between runs: last server, last nickname, theme.
//!
//! Stored as `key=value` lines in `chat-gui/settings` under the user's config directory
//! (`$XDG_CONFIG_HOME`, usually `~/.config`, on Linux). A missing or damaged file is
//! never an error: the defaults apply and the next save writes a good one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::state::{DEFAULT_SERVER, ThemeChoice};

/// What is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Last server address used.
    pub server: String,
    /// Last nickname used.
    pub nick: String,
    /// Last theme chosen.
    pub theme: ThemeChoice,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: DEFAULT_SERVER.to_owned(),
            nick: String::new(),
            theme: ThemeChoice::Dark,
        }
    }
}

impl Settings {
    /// Reads `text`, ignoring unknown keys and bad values.
    pub fn parse(text: &str) -> Settings {
        let mut s = Settings::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "server" if !value.is_empty() => s.server = value.to_owned(),
                "nick" => s.nick = value.to_owned(),
                "theme" => {
                    if let Some(t) = ThemeChoice::from_name(value) {
                        s.theme = t;
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// The file's text.
    pub fn render(&self) -> String {
        // Newlines would break the format; neither field may hold one anyway.
        let clean = |v: &str| v.replace(['\n', '\r'], "");
        format!(
            "# chat-gui settings\nserver={}\nnick={}\ntheme={}\n",
            clean(&self.server),
            clean(&self.nick),
            self.theme.name()
        )
    }
}

/// Where the settings live, and loading and saving them.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store in the user's config directory, if the platform has one.
    pub fn user() -> Option<Store> {
        dirs::config_dir().map(|d| Store {
            path: d.join("chat-gui").join("settings"),
        })
    }

    /// A store at `path` (tests).
    pub fn at(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved settings, or the defaults.
    pub fn load(&self) -> Settings {
        fs::read_to_string(&self.path)
            .map(|t| Settings::parse(&t))
            .unwrap_or_default()
    }

    /// Saves atomically (write a temporary file, then rename), so a crash never leaves
    /// half a file.
    pub fn save(&self, settings: &Settings) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, settings.render())?;
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("chat-gui-config-{}", std::process::id()));
        let store = Store::at(dir.join("nested").join("settings"));
        assert_eq!(store.load(), Settings::default());
        let s = Settings {
            server: "10.0.0.2:9000".into(),
            nick: "zed".into(),
            theme: ThemeChoice::Light,
        };
        store.save(&s).unwrap();
        assert_eq!(store.load(), s);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn damaged_file_gives_defaults_for_bad_parts() {
        let s = Settings::parse("garbage\nserver=\ntheme=purple\nnick=bob\n=x\n");
        assert_eq!(
            s,
            Settings {
                nick: "bob".into(),
                ..Settings::default()
            }
        );
    }
}
