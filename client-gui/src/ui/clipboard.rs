//! Pasting without druid's blocking clipboard read.
//!
//! Druid 0.8 turns Ctrl+V into a `Paste` event whose clipboard text is read with GTK's
//! `wait_for_contents`, which runs a nested GTK main loop while druid holds its window
//! handler; every GTK event arriving meanwhile (the key's release, a redraw) fails to
//! reach it and is logged as `failed to borrow WinHandler`, twice per paste. Asking
//! GTK for the text with a callback instead (`request_text`) reads it later from the
//! main loop proper; the text then comes back to the input as a [`PASTE_TEXT`]
//! command through druid's `ExtEventSink`, like network events do.

use std::sync::OnceLock;

use druid::{ExtEventSink, Selector, WidgetId};

/// Clipboard text for the widget that asked for it.
pub const PASTE_TEXT: Selector<String> = Selector::new("chat.paste-text");

static SINK: OnceLock<ExtEventSink> = OnceLock::new();

/// Lets [`request_text`] deliver: called once by `main` with the launcher's sink.
pub fn install(sink: ExtEventSink) {
    let _ = SINK.set(sink);
}

/// Asks for the clipboard's text, to arrive later as [`PASTE_TEXT`] at `target`.
/// Returns false when that is not possible here (no GTK, no sink: widget tests, other
/// platforms); the caller then lets druid paste its own way.
#[cfg(target_os = "linux")]
pub fn request_text(target: WidgetId) -> bool {
    let Some(sink) = SINK.get() else {
        return false;
    };
    if !gtk::is_initialized_main_thread() {
        return false;
    }
    let sink = sink.clone();
    gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD).request_text(move |_, text| {
        if let Some(text) = text {
            // Fails only once the app has ended.
            let _ = sink.submit_command(PASTE_TEXT, text.to_owned(), target);
            // See `UiSink`: a second submission makes sure the UI wakes for the first.
            let _ = sink.submit_command(super::WAKE, (), druid::Target::Auto);
        }
    });
    true
}

/// Not on this platform: druid pastes.
#[cfg(not(target_os = "linux"))]
pub fn request_text(_target: WidgetId) -> bool {
    false
}
