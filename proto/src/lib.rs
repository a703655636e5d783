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
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable
    )
)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod framer;
pub mod limits;
pub mod lookalike;
pub mod nickname;
pub mod reader;
pub mod seed;
pub mod server;
pub mod text;

pub use client::{ClientError, ClientMessage, Command};
pub use error::ErrorCode;
pub use framer::{Frame, Framer};
pub use nickname::{NickError, NickKey, Nickname};
pub use reader::{Incoming, ServerReader};
pub use server::{ServerMessage, ServerParseError, chat_parts, users_lines};
pub use text::{Text, TextError};
