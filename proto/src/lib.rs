//! `chat-proto`: the chat protocol of `spec/PROTOCOL.md`, as code and nothing else.
//!
//! This crate does no I/O and knows nothing of sockets: feed the [`Framer`] bytes and
//! pull typed frames out; parse a line into a [`ClientMessage`] or a [`ServerMessage`];
//! encode a typed message into a caller's buffer. The server, the GUI client, the
//! conformance harness and the benchmarks all go through it, so the protocol is written
//! down in exactly one place (besides the spec itself).
//!
//! Every function here is total: any input, however hostile, yields a value or an error,
//! never a panic. Section and MUST IDs (`FRAME-1`, `NICK-2`, ...) in the docs refer to
//! the spec.
#![warn(missing_docs)]
// On top of the workspace lints: no `unreachable!` either, tests included; a parser's
// "impossible" case is an error value.
#![deny(clippy::unreachable)]

pub mod caps;
pub mod client;
pub mod command;
pub mod error;
pub mod fingerprint;
pub mod framer;
pub mod limits;
pub mod lookalike;
pub mod moderation;
pub mod nickname;
pub mod ping;
pub mod reader;
pub mod seed;
pub mod server;
pub mod spec_ids;
pub mod tags;
pub mod text;
pub mod wire;

pub use caps::{CapName, Capability, Enabled, PROTOCOL_VERSION, Version};
pub use client::{ClientError, ClientMessage};
pub use command::{Args, Command};
pub use error::ErrorCode;
pub use fingerprint::Fingerprint;
pub use framer::{Frame, Framer};
pub use moderation::{Action, ModCommand, Password, Reason};
pub use nickname::{NickError, NickKey, Nickname};
pub use ping::Token;
pub use reader::{Incoming, ServerReader};
pub use server::{ServerMessage, ServerParseError, chat_parts, users_lines};
pub use tags::{EventId, ServerTime, Tags};
pub use text::{Text, TextError};
