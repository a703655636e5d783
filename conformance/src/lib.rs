//! `chat-conformance`: checks a chat server against `spec/PROTOCOL.md` by replaying
//! session files (`sessions/*.session`, format in `README.md`) and comparing, line by
//! line, what each client receives.
//!
//! The pieces: [`session`] parses the file format; [`replay`] drives the clients of one
//! session against an address; [`runner`] runs a suite against a [`target::Target`] (a
//! running server, or a fresh one spawned per session); [`report`] prints the table and
//! the Markdown report; [`record`] is the proxy that turns a live conversation into a
//! session; [`wire`] is a client's plain or TLS connection; [`coverage`] ties the suite to the spec's IDs. Protocol lines are
//! interpreted only through `chat-proto`.
#![warn(missing_docs)]

pub mod coverage;
pub mod escape;
pub mod idle;
pub mod limit;
pub mod matcher;
pub mod record;
pub mod replay;
pub mod report;
pub mod runner;
pub mod session;
pub mod target;
pub mod variant;
pub mod wire;
