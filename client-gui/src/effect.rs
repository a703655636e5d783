//! What a state change asks the outside world to do.
//!
//! [`crate::reduce`] and [`crate::actions`] are pure: instead of touching the network,
//! the disk or the clipboard they return effects, which the UI's root controller carries
//! out. Tests look at the effects instead of mocking sockets.

use crate::net::NetCommand;
use crate::state::ThemeChoice;

/// One thing to do after a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Hand a command to the network thread.
    Net(NetCommand),
    /// Remember the server and nickname for the next start (config file).
    Remember {
        /// Server address.
        server: String,
        /// Nickname.
        nick: String,
    },
    /// Remember the theme.
    RememberTheme(ThemeChoice),
    /// Put text on the clipboard.
    Copy(String),
    /// Give the input line the keyboard focus.
    FocusInput,
    /// Open a link with the desktop's opener.
    Open(String),
    /// Show a desktop notification (skipped where no notification service runs).
    Notify {
        /// The headline.
        title: String,
        /// The text.
        body: String,
    },
}
