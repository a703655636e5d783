//! Every fixed piece of text on the wire, defined once: the parsers match these
//! constants and the encoders write them, so the two cannot drift apart, and the spec
//! check (`tests/spec_grammar.rs`) finds each one in the grammar of spec §10 as an RFC
//! 7405 case-sensitive literal (`%s"..."`).

/// The handshake prompt (NICK-1, NICK-5).
pub const NICK_PROMPT: &str = "NICK";
/// The line that ends a successful handshake (NICK-7).
pub const CONNECTED: &str = "Connected to the server";
/// After a nickname: a join notice (NICK-7).
pub const JOINED: &str = " has joined the chat";
/// After a nickname: a leave notice (CONN-2).
pub const LEFT: &str = " has left the chat";
/// Between the old and the new nickname of a rename notice (CMD-NICK-1).
pub const RENAMED: &str = " is now known as ";
/// Between a sender and its text (CHAT-1, CMD-MSG-1).
pub const SAYS: &str = ": ";
/// Between the sender and the recipient of a private line (CMD-MSG-1).
pub const TO: &str = " -> ";
/// Start of a `/who` answer line (CMD-WHO-1).
pub const USERS: &str = "Users online: ";
/// Between two names of a `/who` answer line (CMD-WHO-1).
pub const USERS_SEP: &str = ", ";
/// Ends a `/who` answer line that another one follows (CMD-WHO-2).
pub const USERS_MORE: &str = ",";
/// Start of the server's liveness probe, before its token (PING-3).
pub const PING_LINE: &str = "PING ";
/// Start of the answer to a client's `/ping`, before the token (PING-6).
pub const PONG_LINE: &str = "PONG ";
/// Start of an error line, before its code (ERR-1).
pub const ERR: &str = "ERR ";
/// Start of the capability list, before the protocol version (CAPS-2).
pub const CAPS_LIST: &str = "Protocol ";
/// After the version in the capability list (CAPS-2).
pub const CAPS_LIST_TAIL: &str = " capabilities:";
/// Start of the answer to `/caps NAME...` (CAPS-3).
pub const CAPS_ENABLED: &str = "Capabilities enabled:";
/// Start of the header of a block of earlier events, before the count (HIST-2).
pub const HISTORY_START: &str = "Earlier events: ";
/// The footer of a block of earlier events (HIST-2).
pub const HISTORY_END: &str = "End of earlier events";
/// Start of a readable earlier event, before its time (HIST-3).
pub const EARLIER_OPEN: &str = "[";
/// After the time of a readable earlier event, before the event (HIST-3).
pub const EARLIER_CLOSE: &str = " UTC] ";
/// After a nickname: it became an operator (MOD-2).
pub const OPPED: &str = " is now an operator";
/// Between the kicked user and the operator (MOD-4).
pub const KICKED: &str = " was kicked by ";
/// Between the muted user and the operator (MOD-5).
pub const MUTED: &str = " was muted by ";
/// Between the unmuted user and the operator (MOD-5).
pub const UNMUTED: &str = " was unmuted by ";
/// Between the banned user and the operator (MOD-6).
pub const BANNED: &str = " was banned by ";
/// Between the unbanned nickname and the operator (MOD-6).
pub const UNBANNED: &str = " was unbanned by ";
/// Between the operator and the duration of a mute (MOD-5).
pub const FOR: &str = " for ";
/// A mute of one minute (MOD-5).
pub const ONE_MINUTE: &str = "1 minute";
/// After the number of minutes of a longer mute (MOD-5).
pub const MINUTES: &str = " minutes";
/// Before the reason of a kick or a ban (MOD-4, MOD-6).
pub const REASON_OPEN: &str = " (";
/// Ends the line after a reason (MOD-4, MOD-6).
pub const REASON_CLOSE: &str = ")";
/// First byte of a tagged line (TAG-1); no untagged line starts with it.
pub const TAGS_START: char = '@';
/// Between two tags (TAG-1).
pub const TAGS_SEP: char = ';';
/// Between a tag's key and its value (TAG-1).
pub const TAG_VALUE: char = '=';

/// The literals of server lines, for the spec check: each appears in the grammar.
pub const SERVER_LITERALS: &[&str] = &[
    PING_LINE,
    PONG_LINE,
    NICK_PROMPT,
    CONNECTED,
    JOINED,
    LEFT,
    RENAMED,
    SAYS,
    TO,
    USERS,
    USERS_SEP,
    USERS_MORE,
    ERR,
    CAPS_LIST,
    CAPS_LIST_TAIL,
    CAPS_ENABLED,
    HISTORY_START,
    HISTORY_END,
    EARLIER_OPEN,
    EARLIER_CLOSE,
    OPPED,
    KICKED,
    MUTED,
    UNMUTED,
    BANNED,
    UNBANNED,
    FOR,
    ONE_MINUTE,
    MINUTES,
    REASON_OPEN,
    REASON_CLOSE,
];
