//! Lets GTK accept this program's command-line options.
//!
//! druid-shell runs GTK's application with the process's arguments, and GLib's option
//! parser then prints `Unknown option --server` for each of ours (harmless, but it looks
//! like an error to a user). Declaring the same options to GLib before its parser runs
//! (druid calls the delegate's `window_added` before it starts GTK's main loop) makes it
//! accept and ignore them. The list comes from clap, so it cannot drift.

/// Declares `options` (long name, takes a value) to the GTK application, if there is one.
#[cfg(target_os = "linux")]
pub fn accept(options: &[(String, bool)]) {
    use gtk::gio::prelude::*;
    use gtk::glib;
    if !gtk::is_initialized_main_thread() {
        return;
    }
    let Some(app) = gtk::gio::Application::default() else {
        return;
    };
    for (long, takes_value) in options {
        let arg = if *takes_value {
            glib::OptionArg::String
        } else {
            glib::OptionArg::None
        };
        app.add_main_option(long, glib::Char(0), glib::OptionFlags::NONE, arg, "", None);
    }
}

/// Nothing to do off Linux: druid does not use GTK there.
#[cfg(not(target_os = "linux"))]
pub fn accept(_options: &[(String, bool)]) {}
