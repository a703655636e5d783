//! Trust on first use for TLS servers (spec TLS-7): the fingerprint of each server's
//! certificate, pinned per `host:port` in a small text file in the GUI's config directory
//! (`known_servers`, one `host:port SHA256:...` per line, like ssh's `known_hosts`).
//!
//! The first connection to a server pins what it presents; every later one must present
//! the same certificate, or the client refuses and says so, naming both fingerprints.
//! Accepting a new certificate is a deliberate act: `/trust` typed after the warning
//! (or the connect screen's button), `chat-gui --trust SHA256:...`, or removing the line.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chat_proto::Fingerprint;

/// The pinned fingerprints, kept in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinStore {
    path: PathBuf,
}

/// The store the network thread uses; see [`use_store`].
static STORE: OnceLock<PinStore> = OnceLock::new();

/// Makes `store` the one every connection uses. The first call wins (the app calls it
/// once at start; tests point it at a temporary file). Returns the store in force.
pub fn use_store(store: PinStore) -> &'static PinStore {
    STORE.get_or_init(|| store)
}

/// The store in force: the one given to [`use_store`], else the user's.
pub fn store() -> Option<&'static PinStore> {
    if let Some(s) = STORE.get() {
        return Some(s);
    }
    PinStore::user().map(use_store)
}

impl PinStore {
    /// The store in the user's config directory, if the platform has one.
    pub fn user() -> Option<PinStore> {
        dirs::config_dir().map(|d| PinStore::at(d.join("chat-gui").join("known_servers")))
    }

    /// A store at `path`.
    pub fn at(path: impl Into<PathBuf>) -> PinStore {
        PinStore { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every pin in the file. Lines that do not parse are skipped (and kept by
    /// [`PinStore::pin`] only if they still do not clash).
    fn load(&self) -> BTreeMap<String, Fingerprint> {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (server, fp) = l.trim().split_once(char::is_whitespace)?;
                Some((server.to_ascii_lowercase(), fp.trim().parse().ok()?))
            })
            .collect()
    }

    /// The fingerprint pinned for `server` (`host:port`), if any.
    pub fn lookup(&self, server: &str) -> Option<Fingerprint> {
        self.load().get(&server.to_ascii_lowercase()).copied()
    }

    /// Pins `fp` for `server`, replacing what was pinned. Written to a temporary file
    /// and renamed, so a crash leaves the old file or the new one.
    pub fn pin(&self, server: &str, fp: Fingerprint) -> io::Result<()> {
        let mut pins = self.load();
        pins.insert(server.to_ascii_lowercase(), fp);
        let mut text = String::from(
            "# chat-gui: TLS server certificates pinned on first use (host:port fingerprint)\n",
        );
        for (s, f) in &pins {
            text.push_str(&format!("{s} {f}\n"));
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "chat-gui-pins-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
    }

    /// TLS-7: pins are kept per host:port, survive a reload, and a new pin replaces the
    /// old one for that server only.
    #[test]
    fn tls_7_pins_per_server_survive_and_replace() {
        let dir = temp("store");
        let store = PinStore::at(dir.join("known_servers"));
        assert_eq!(store.lookup("127.0.0.1:9443"), None);
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        store.pin("127.0.0.1:9443", a).unwrap();
        store.pin("Chat.Example:9443", b).unwrap();
        let again = PinStore::at(store.path());
        assert_eq!(again.lookup("127.0.0.1:9443"), Some(a));
        assert_eq!(again.lookup("chat.example:9443"), Some(b));
        assert_eq!(again.lookup("127.0.0.1:9444"), None);
        again.pin("127.0.0.1:9443", b).unwrap();
        assert_eq!(store.lookup("127.0.0.1:9443"), Some(b));
        assert_eq!(store.lookup("chat.example:9443"), Some(b));
        // A damaged line is skipped, not fatal.
        let mut text = fs::read_to_string(store.path()).unwrap();
        text.push_str("garbage line\nhost:1 SHA256:zz\n");
        fs::write(store.path(), text).unwrap();
        assert_eq!(store.lookup("127.0.0.1:9443"), Some(b));
        assert_eq!(store.lookup("host:1"), None);
        let _ = fs::remove_dir_all(dir);
    }
}
