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
/// Start of an error line, before its code (ERR-1).
pub const ERR: &str = "ERR ";
/// Start of the capability list, before the protocol version (CAPS-2).
pub const CAPS_LIST: &str = "Protocol ";
/// After the version in the capability list (CAPS-2).
pub const CAPS_LIST_TAIL: &str = " capabilities:";
/// Start of the answer to `/caps NAME...` (CAPS-3).
pub const CAPS_ENABLED: &str = "Capabilities enabled:";
/// First byte of a tagged line (TAG-1); no untagged line starts with it.
pub const TAGS_START: char = '@';
/// Between two tags (TAG-1).
pub const TAGS_SEP: char = ';';
/// Between a tag's key and its value (TAG-1).
pub const TAG_VALUE: char = '=';

/// The literals of server lines, for the spec check: each appears in the grammar.
pub const SERVER_LITERALS: &[&str] = &[
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
];
