//! Whether the window has the keyboard focus, for the unread count in the title.
//!
//! Druid 0.8 does not pass focus-out events on to widgets (its GTK backend receives them
//! but drops them), so the root controller asks GTK itself every half second. Elsewhere
//! (or before GTK is up, as in widget tests) the answer is "unknown".

/// `Some(true)` when one of this program's windows is the active one.
#[cfg(target_os = "linux")]
pub fn app_has_focus() -> Option<bool> {
    use gtk::prelude::*;
    if !gtk::is_initialized_main_thread() {
        return None;
    }
    let any_active = gtk::Window::list_toplevels()
        .into_iter()
        .filter_map(|w| w.downcast::<gtk::Window>().ok())
        .any(|w| w.is_active());
    Some(any_active)
}

/// `None`: not known on this platform.
#[cfg(not(target_os = "linux"))]
pub fn app_has_focus() -> Option<bool> {
    None
}
