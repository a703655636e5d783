//! The seed compatibility profile (spec Appendix B, `--compat seed`), as hooks in one
//! place: the connection's state machine asks the profile at each point where the two
//! dialects differ and never tests the profile itself (the way httparse takes its
//! leniency only from a config value).
//!
//! The points, in the order a connection meets them:
//! 1. the greeting (COMPAT-1): `NICK` with no terminator;
//! 2. an unterminated nickname counts as complete after a pause (COMPAT-2): a *seed
//!    nickname*;
//! 3. a seed nickname is never rejected: an invalid or taken name is replaced by a free
//!    variant, and the client told so (COMPAT-2, COMPAT-4);
//! 4. the old client writes `<asked>: ` in front of every line it sends (COMPAT-3).
//!
//! A nickname that arrives with an LF is a core client's, and points 3 and 4 do not
//! apply to it (COMPAT-6): the state machine passes only seed nicknames to them.

use std::time::Duration;

use crate::config::Compat;
use crate::hub::CommonLines;
use crate::writer::Line;

impl Compat {
    /// The line that opens every connection (NICK-1; COMPAT-1).
    pub(crate) fn greeting<'a>(&self, lines: &'a CommonLines) -> &'a Line {
        match self {
            Compat::Standard => &lines.nick_prompt,
            Compat::Seed => &lines.seed_greeting,
        }
    }

    /// How long an unterminated nickname may sit before it counts as complete (COMPAT-2);
    /// `None`: a nickname ends at its LF only.
    pub(crate) fn nickname_idle(&self) -> Option<Duration> {
        match self {
            Compat::Standard => None,
            Compat::Seed => Some(chat_proto::seed::NICK_IDLE),
        }
    }

    /// True when a seed nickname is accepted as a nickname request, a free name being
    /// assigned when the asked one does not do (COMPAT-2, COMPAT-4); false for the
    /// spec's handshake, which rejects and prompts again (NICK-5). LF-terminated lines
    /// are never passed here (COMPAT-6).
    pub(crate) fn assigns_nicknames(&self) -> bool {
        matches!(self, Compat::Seed)
    }

    /// True when the server may offer the `ping` capability (PING-1): not in the seed
    /// profile, whose client shows a `PING` as text and never answers it.
    pub(crate) fn offers_ping(&self) -> bool {
        matches!(self, Compat::Standard)
    }

    /// True when the nickname a client asked for must be kept after its handshake (the
    /// seed client writes it in front of every line, COMPAT-3).
    pub(crate) fn remembers_asked_nickname(&self) -> bool {
        matches!(self, Compat::Seed)
    }

    /// The chat line as the user meant it: the seed client's own `<asked>: ` prefix
    /// removed once (COMPAT-3). `asked` is what the client asked for at its handshake.
    pub(crate) fn chat_text<'a>(&self, line: &'a str, asked: Option<&str>) -> &'a str {
        match (self, asked) {
            (Compat::Seed, Some(asked)) => chat_proto::seed::strip_own_prefix(line, asked),
            _ => line,
        }
    }
}
