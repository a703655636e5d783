//! What the client asks of the desktop: opening a link with the user's opener, and a
//! notification when someone names us while the window is in the background.
//!
//! Both run off the UI thread (a D-Bus call or a process start must never freeze the
//! window) and both fail quietly: no opener, or no notification service on the session
//! bus (a bare X server, a CI machine), only costs a line in the debug log.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

/// The program that opens links: the freedesktop opener on Linux and the BSDs.
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
const OPENER: &str = "xdg-open";
/// The program that opens links on macOS.
#[cfg(target_os = "macos")]
const OPENER: &str = "open";
/// The program that opens links on Windows (`explorer URL` opens the browser).
#[cfg(target_os = "windows")]
const OPENER: &str = "explorer";

/// Notifications waiting to be shown; more are dropped (a burst of mentions must not
/// pile up threads or D-Bus calls).
const NOTIFY_BACKLOG: usize = 8;

/// Opens `url` (an `http(s)://` address from [`crate::links`]) with the desktop's
/// opener. The address is one argument, never a shell word.
pub fn open(url: &str) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        tracing::warn!("not opening {url:?}: not a web address");
        return;
    }
    match Command::new(OPENER).arg(url).spawn() {
        Ok(mut child) => {
            // Reaped on its own thread so no zombie is left and the UI never waits.
            let _ = std::thread::Builder::new()
                .name("chat-opener".into())
                .spawn(move || child.wait());
            tracing::debug!("opened {url} with {OPENER}");
        }
        Err(e) => tracing::warn!("cannot start {OPENER} to open {url}: {e}"),
    }
}

/// Shows a desktop notification, if a notification service runs.
pub fn notify(title: &str, body: &str) {
    static QUEUE: OnceLock<Option<SyncSender<(String, String)>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = sync_channel::<(String, String)>(NOTIFY_BACKLOG);
        std::thread::Builder::new()
            .name("chat-notify".into())
            .spawn(move || {
                while let Ok((title, body)) = rx.recv() {
                    show(&title, &body);
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = queue {
        match tx.try_send((title.to_owned(), body.to_owned())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::debug!("notification dropped: backlog full"),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn show(title: &str, body: &str) {
    let result = notify_rust::Notification::new()
        .appname("chat-gui")
        .summary(title)
        // Servers may read the body as markup: a chat line must show as typed.
        .body(&escape_markup(body))
        .icon("mail-message-new")
        .show();
    match result {
        Ok(_) => tracing::debug!("notified: {title}"),
        Err(e) => tracing::debug!("no desktop notification ({e})"),
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show(title: &str, _body: &str) {
    tracing::debug!("no desktop notifications on this platform: {title}");
}

/// `text` with the characters of the notification spec's markup escaped.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<a href='x'>&</a>"),
            "&lt;a href='x'&gt;&amp;&lt;/a&gt;"
        );
    }
}
