//! The numbers of the spec's limits table (§8), shared by every crate so that a server
//! flag's default, the GUI's input counter and the conformance suite agree.

use std::time::Duration;

/// TCP port a server listens on unless told otherwise (FRAME-1).
pub const DEFAULT_PORT: u16 = 9090;

/// TLS-1: the TLS listener's default port, beside the plain one.
pub const DEFAULT_TLS_PORT: u16 = 9443;

/// Most bytes a client line may hold before its terminator (FRAME-3). Fixed by the
/// spec, not configurable: a client must know it without asking.
pub const MAX_LINE_BYTES: usize = 1024;

/// Most characters (all ASCII, so also bytes) in a nickname (NICK-2).
pub const MAX_NICK_LEN: usize = 24;

/// Most bytes of the human text of an `ERR` line (ERR-3).
pub const MAX_ERR_TEXT_BYTES: usize = 256;

/// Most bytes an untagged server line holds before its LF (SRV-3). The longest is a
/// chat line carrying a full-size text: `24 + ": " + 1024`. (A private line is shorter,
/// 1048 at most, because its text shares the client's 1024-byte line with `/msg` and
/// the recipient: `24 + " -> " + n + ": " + (1024 - "/msg " - n - " ")`.)
pub const MAX_SERVER_LINE_BYTES: usize = MAX_NICK_LEN + 2 + MAX_LINE_BYTES;

/// Most bytes of a readable earlier event before its LF (HIST-3): `[`, the time, ` UTC] `
/// and a chat line.
pub const MAX_EARLIER_LINE_BYTES: usize =
    1 + crate::tags::ServerTime::READABLE_LEN + 6 + MAX_SERVER_LINE_BYTES;

/// Most bytes a server line holds before its LF on a connection that enabled tags
/// (SRV-3, TAG-1): a tag prefix and an untagged line.
pub const MAX_TAGGED_SERVER_LINE_BYTES: usize = crate::tags::MAX_TAGS_BYTES + MAX_SERVER_LINE_BYTES;

/// Most bytes of one `Users online:` line before its LF (CMD-WHO-2); a longer list is
/// split over several lines.
pub const MAX_USERS_LINE_BYTES: usize = 512;

/// Default total time a connection may spend in the handshake (NICK-6).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of rejected nickname lines before the server gives up (NICK-6).
pub const DEFAULT_HANDSHAKE_ATTEMPTS: u32 = 5;

/// Default number of connections one address may hold, handshaking ones included
/// (ADDR-1). 0 means no limit.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 10;

/// Default number of connections one address may have in the handshake at once
/// (ADDR-1). 0 means no limit.
pub const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS: usize = 3;

/// Default byte budget of the flood limit (FLOOD-1): bytes of lines a client may send in
/// a burst. 32 KiB is a 200-line paste (the line burst) of 160-byte lines, or 32 lines
/// of the longest kind (FRAME-3).
pub const DEFAULT_FLOOD_BURST_BYTES: u32 = 32 * 1024;

/// Default byte budget of the flood limit (FLOOD-1): bytes per second the budget refills
/// at, 100 lines of 80 characters per second; far above anyone's typing.
pub const DEFAULT_FLOOD_RATE_BYTES: u32 = 8 * 1024;

/// Default bytes a client's private outbound queue (replies, private messages) may hold
/// before it is cut off (CONN-4).
pub const DEFAULT_SENDQ_BYTES: usize = 64 * 1024;

/// Default number of open connections, handshaking ones included (CONN-1).
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// Default flood limit (CONN-7): lines a client may send in a burst; the bucket starts
/// this full when the connection is accepted.
pub const DEFAULT_FLOOD_BURST: u32 = 200;

/// Default flood limit (CONN-7): lines per second the bucket refills at; a client
/// sending no faster than this is never throttled. 0 turns the limit off.
pub const DEFAULT_FLOOD_RATE: f64 = 50.0;

/// Default flood limit (CONN-7): how long a client may stay in excess before it is cut off.
pub const DEFAULT_FLOOD_EXCESS: Duration = Duration::from_secs(30);

/// TCP keepalive (CONN-5): idle time before the first probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// TCP keepalive (CONN-5): time between probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// TCP keepalive (CONN-5): unanswered probes after which the peer is gone. A vanished
/// peer is noticed after `30 + 3 * 10` = 60 seconds of silence.
pub const KEEPALIVE_PROBES: u32 = 3;

/// TCP user timeout (CONN-5): the longest data sent to a peer may stay unacknowledged
/// before the connection is dropped. While data is in flight keepalive sends no probes,
/// and the kernel's retransmissions alone would take about 15 minutes (Linux's
/// `tcp_retries2` = 15) to give up on a peer that vanished in a busy chat. 60 s is the
/// keepalive's own `30 + 3 * 10`, so a vanished peer leaves about a minute after it went
/// quiet whether or not anything was being sent to it; where the kernel lets the user
/// timeout stand in for the probe count (Linux does), the quiet case still ends at 60 s.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

/// Closing (CONN-8): after its last line and shutting down its write side, how long a
/// server at most keeps reading and discarding input before it closes.
pub const CLOSE_LINGER_MAX: Duration = Duration::from_secs(2);

/// Closing (CONN-8): the most input a server reads and discards while lingering.
pub const CLOSE_LINGER_MAX_BYTES: usize = 64 * 1024;

/// Shutdown (CONN-6): default time for queued lines and `ERR server-shutdown` to go out.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
