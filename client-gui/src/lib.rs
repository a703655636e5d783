//! `chat-gui`, the desktop client of the chat system (spec/PROTOCOL.md), built with druid.
//!
//! The client is split so that everything but drawing can be tested without a display:
//!
//! - [`session`] is one connection's protocol state, sans I/O: bytes in, events out.
//! - [`net`] runs sessions on a background thread (connect, read, write, back-off) and
//!   reports [`net::NetEvent`]s to the UI; the UI never blocks on the network.
//!   [`failover`] decides which of the chat's servers comes next and after what pause.
//! - [`state`] is the whole UI state as druid `Data`; [`reduce`] applies a network event
//!   to it and [`actions`] applies a user action; both are pure and return the
//!   [`effect::Effect`]s (bytes to send, settings to save) for the caller to carry out.
//! - [`selection`], [`scroll`], [`search`], [`links`], [`mention`] and [`complete`] are
//!   the history view's and the input's rules (what is selected, where the view is,
//!   what a search finds, what is a link or a mention, what Tab gives), also toolkit-free.
//! - [`tls`] opens plain or TLS connections for [`net`]; [`pin`] keeps the TLS
//!   certificates pinned on first use.
//! - [`ui`] holds the widgets; [`config`] and [`transcript`] the files the client writes.
pub mod actions;
pub mod complete;
pub mod config;
pub mod effect;
pub mod failover;
pub mod links;
pub mod mention;
pub mod net;
pub mod pin;
pub mod reduce;
pub mod scroll;
pub mod search;
pub mod selection;
pub mod session;
pub mod state;
pub mod tls;
pub mod transcript;
pub mod ui;
