//! The command table (spec §4): every `/command` a client may send, defined once.
//!
//! The parser ([`crate::ClientMessage::parse`]), the usage texts of `ERR bad-arguments`,
//! the list in `ERR unknown-command`, a client's input hint ([`input_hint`]) and the
//! spec check (`tests/spec_grammar.rs`, which finds every word in the grammar of §10)
//! all read this table, so a command cannot be half-added.

/// How a command's arguments are shaped. The count is judged before anything else
/// (CMD-3): `/nick a b` is `bad-arguments` whatever `a` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// No argument; blanks after the word are ignored.
    None,
    /// Exactly one word, then judged as a nickname (CMD-NICK-2).
    Nickname,
    /// A target word, a separator, and a non-blank text (CMD-MSG-2).
    TargetAndText,
    /// Any number of words, each then judged as a capability name (CAPS-3).
    CapNames,
    /// Nothing, or one count: a number from 1 without leading zero (HIST-4).
    OptionalCount,
    /// Exactly one word, an event id (RESUME-1).
    EventId,
    /// Exactly one word, the operator password (MOD-2).
    Password,
    /// A nickname, then optionally a reason: the rest of the line (MOD-3).
    TargetAndReason,
    /// A nickname, then optionally a number of minutes (MOD-3, MOD-5).
    TargetAndMinutes,
    /// Exactly one word, then judged as a nickname to act on (MOD-3).
    Target,
    /// Exactly one word, a liveness token (PING-2).
    Token,
}

impl Args {
    /// True for the arguments of an operator command (§18).
    pub fn operator(self) -> bool {
        matches!(
            self,
            Args::Password | Args::TargetAndReason | Args::TargetAndMinutes | Args::Target
        )
    }
}

macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident {
        word: $word:literal,
        usage: $usage:literal,
        args: $args:ident,
        pre_join: $pre:literal,
        for_people: $people:literal $(,)?
    })*) => {
        /// A command word.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command {
            $($(#[$doc])* $variant,)*
        }

        impl Command {
            /// Every command, in the order help texts list them.
            pub const ALL: &'static [Command] = &[$(Command::$variant,)*];

            /// The command word, lower case, without the slash.
            pub fn word(self) -> &'static str {
                match self { $(Command::$variant => $word,)* }
            }

            /// How the command is written, e.g. `/msg <nick> <text>`.
            pub fn usage(self) -> &'static str {
                match self { $(Command::$variant => $usage,)* }
            }

            /// The shape of its arguments.
            pub fn args(self) -> Args {
                match self { $(Command::$variant => Args::$args,)* }
            }

            /// True for a pre-join command: in the handshake an LF-terminated line
            /// with this word is this command, not a nickname (CAPS-4).
            pub fn pre_join(self) -> bool {
                match self { $(Command::$variant => $pre,)* }
            }

            /// True for a command people type (shown in a client's input hint); false
            /// for one programs send (`/caps`).
            pub fn for_people(self) -> bool {
                match self { $(Command::$variant => $people,)* }
            }
        }
    };
}

commands! {
    /// `/who`: who is online (CMD-WHO-1).
    Who { word: "who", usage: "/who", args: None, pre_join: false, for_people: true }
    /// `/msg <nick> <text>`: a private message (CMD-MSG-1).
    Msg {
        word: "msg", usage: "/msg <nick> <text>", args: TargetAndText,
        pre_join: false, for_people: true,
    }
    /// `/nick <new>`: a rename (CMD-NICK-1).
    Nick {
        word: "nick", usage: "/nick <new-nickname>", args: Nickname,
        pre_join: false, for_people: true,
    }
    /// `/caps [<name>...]`: list or enable capabilities (CAPS-2, CAPS-3).
    Caps {
        word: "caps", usage: "/caps [<name> ...]", args: CapNames,
        pre_join: true, for_people: false,
    }
    /// `/history [<count>]`: earlier events, readable (HIST-4).
    History {
        word: "history", usage: "/history [<count>]", args: OptionalCount,
        pre_join: false, for_people: true,
    }
    /// `/resume <id>`: before the nickname, pick up after the last event seen
    /// (RESUME-1).
    Resume {
        word: "resume", usage: "/resume <id>", args: EventId,
        pre_join: true, for_people: false,
    }
    /// `/quit`: leave (CMD-QUIT-1).
    Quit { word: "quit", usage: "/quit", args: None, pre_join: false, for_people: true }
    /// `/op <password>`: become an operator (MOD-2).
    Op { word: "op", usage: "/op <password>", args: Password, pre_join: false, for_people: false }
    /// `/kick <nick> [<reason>]` (MOD-4).
    Kick {
        word: "kick", usage: "/kick <nick> [<reason>]", args: TargetAndReason,
        pre_join: false, for_people: false,
    }
    /// `/mute <nick> [<minutes>]` (MOD-5).
    Mute {
        word: "mute", usage: "/mute <nick> [<minutes>]", args: TargetAndMinutes,
        pre_join: false, for_people: false,
    }
    /// `/unmute <nick>` (MOD-5).
    Unmute {
        word: "unmute", usage: "/unmute <nick>", args: Target,
        pre_join: false, for_people: false,
    }
    /// `/ban <nick> [<reason>]` (MOD-6).
    Ban {
        word: "ban", usage: "/ban <nick> [<reason>]", args: TargetAndReason,
        pre_join: false, for_people: false,
    }
    /// `/unban <nick>` (MOD-6).
    Unban {
        word: "unban", usage: "/unban <nick>", args: Target,
        pre_join: false, for_people: false,
    }
    /// `/ping <token>`: answered `PONG <token>`, to measure the round trip (PING-6).
    Ping {
        word: "ping", usage: "/ping <token>", args: Token,
        pre_join: false, for_people: false,
    }
    /// `/pong <token>`: the answer to the server's `PING <token>` (PING-3).
    Pong {
        word: "pong", usage: "/pong <token>", args: Token,
        pre_join: false, for_people: false,
    }
}

impl Command {
    /// Looks a command word up, ignoring ASCII case (CMD-1).
    pub fn from_word(word: &str) -> Option<Command> {
        Command::ALL
            .iter()
            .copied()
            .find(|c| c.word().eq_ignore_ascii_case(word))
    }
}

/// The human text of `ERR unknown-command`: it lists the commands so that a person at
/// `nc` can find them (CMD-2); operator commands (§18) by their word only, so that the
/// text stays within ERR-3's 256 bytes. `/ping` and `/pong` are left out: programs send
/// them (PING-3, PING-6), and the text has no room for them.
pub fn help_text() -> String {
    let usages: Vec<&str> = Command::ALL
        .iter()
        .filter(|c| !c.args().operator() && c.args() != Args::Token)
        .map(|c| c.usage())
        .collect();
    let operator: Vec<String> = Command::ALL
        .iter()
        .filter(|c| c.args().operator())
        .map(|c| format!("/{}", c.word()))
        .collect();
    format!(
        "Unknown command. Commands: {}; operators: {} (start a line with // to send text that begins with /)",
        usages.join(", "),
        operator.join(" ")
    )
}

/// A one-line hint for a client's empty input box: the commands people type.
pub fn input_hint() -> String {
    let usages: Vec<&str> = Command::ALL
        .iter()
        .filter(|c| c.for_people())
        .map(|c| c.usage())
        .collect();
    format!("Message, or {}", usages.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_1_words_are_distinct_and_case_insensitive() {
        for (i, c) in Command::ALL.iter().enumerate() {
            assert_eq!(Command::from_word(&c.word().to_ascii_uppercase()), Some(*c));
            assert!(c.usage().starts_with(&format!("/{}", c.word())));
            assert!(Command::ALL[..i].iter().all(|d| d.word() != c.word()));
        }
        assert_eq!(Command::from_word("dance"), None);
    }

    #[test]
    fn cmd_2_help_lists_every_command() {
        let help = help_text();
        for c in Command::ALL.iter().filter(|c| c.args() != Args::Token) {
            let shown = if c.args().operator() {
                format!("/{} ", c.word())
            } else {
                c.usage().to_owned()
            };
            assert!(help.contains(&shown), "{help}");
        }
        assert!(help.len() <= crate::limits::MAX_ERR_TEXT_BYTES);
        let hint = input_hint();
        assert!(hint.contains("/who") && !hint.contains("/caps"), "{hint}");
    }
}
