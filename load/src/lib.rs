//! `chat-load`: the engine behind the `chat-load` binary, also used by the server's
//! end-to-end criterion benchmark. See `main.rs` for what a run does.
pub mod dialect;
pub mod payload;
pub mod run;
pub mod server;
pub mod stats;
