//! Where and when to connect next: the list of a chat's servers, the round-robin
//! through it, and the pauses between attempts (issue 15's failover).
//!
//! A chat may be served by several nodes (`--server a:9090,b:9090`). When the node the
//! client is on goes away, the next one in the list is tried, then the next, around the
//! list; the pause before each attempt grows with the number of whole rounds that
//! failed, so a list of one server behaves exactly like the single-server client (1 s
//! doubling to 30 s). Pure: the caller passes nothing but what happened, so every rule
//! is a unit test without a socket or a clock.

use std::fmt;
use std::time::Duration;

use chat_proto::ErrorCode;

/// Longest pause between automatic reconnect attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Least pause before a retry after `ERR too-many-connections` (ADDR-1, ADDR-2): the
/// address's other connections (a classroom behind one NAT, the user's other windows)
/// must end first, so hammering the server sooner only gets refused again.
pub const CROWDED_BACKOFF: Duration = Duration::from_secs(15);
/// Most servers in one list: a list is typed by a person; a longer one is a mistake.
pub const MAX_SERVERS: usize = 16;
/// Automatic attempts, since the last join, on which a refused nickname
/// (`ERR nick-taken`) is taken for the client's own lost connection and retried by
/// itself. A vanished peer leaves within about a minute (§16.4), and a dead cluster
/// node's users when its lease ends; with one server the pauses add up to 1 + 2 + 4 +
/// 8 + 16 + 30 + 30 s, about two minutes, after which the user is asked.
pub const NICK_HELD_RETRIES: u32 = 7;

/// The servers of one chat, in the order the user gave them: at least one, at most
/// [`MAX_SERVERS`], no address twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList(Vec<String>);

/// Why a server list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Nothing but blanks and commas.
    #[error("enter the server's address, like 127.0.0.1:9090")]
    Empty,
    /// More than [`MAX_SERVERS`] addresses.
    #[error("at most {MAX_SERVERS} servers, not {0}")]
    TooMany(usize),
    /// An address with a blank inside.
    #[error("\"{0}\" is not an address (separate servers with commas)")]
    Blank(String),
}

impl ServerList {
    /// Reads `a:9090,b:9090` (blanks around each address and empty entries are ignored,
    /// so a trailing comma is no error; an address given twice counts once).
    pub fn parse(text: &str) -> Result<ServerList, ListError> {
        let mut list: Vec<String> = Vec::new();
        for addr in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if addr.contains(char::is_whitespace) {
                return Err(ListError::Blank(addr.to_owned()));
            }
            if !list.iter().any(|a| a == addr) {
                list.push(addr.to_owned());
            }
        }
        match list.len() {
            0 => Err(ListError::Empty),
            n if n > MAX_SERVERS => Err(ListError::TooMany(n)),
            _ => Ok(ServerList(list)),
        }
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (a list has at least one server); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Server `i` (wrapping around).
    pub fn get(&self, i: usize) -> &str {
        self.0
            .get(i % self.0.len().max(1))
            .map_or("", String::as_str)
    }
}

impl fmt::Display for ServerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Whether and how soon to connect again after the server closed with an `ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Not by itself: the server ended the connection on purpose and would do the same
    /// again (a handshake given up on; an idle limit, IDLE-1: reconnecting by itself
    /// would keep an absent user online forever; an operator's kick or ban, MOD-4,
    /// MOD-6: a loop would be refused again or look like defiance). The user
    /// reconnects with the button.
    Never,
    /// The usual growing pause ([`backoff`]).
    Backoff,
    /// Too many connections from this address (ADDR-1, ADDR-2): at least
    /// [`CROWDED_BACKOFF`] before this server is tried again, since retrying sooner is
    /// refused again. (Another node counts its own connections, ADDR-2.)
    Crowded,
}

impl RetryPolicy {
    /// The policy after a close whose last closing `ERR` had `code` (`None`: no `ERR`,
    /// the connection just dropped or never came up).
    pub fn after(code: Option<ErrorCode>) -> RetryPolicy {
        match code {
            Some(
                ErrorCode::TooManyAttempts
                | ErrorCode::HandshakeTimeout
                | ErrorCode::IdleTimeout
                | ErrorCode::Kicked
                | ErrorCode::Banned,
            ) => RetryPolicy::Never,
            Some(ErrorCode::TooManyConnections) => RetryPolicy::Crowded,
            _ => RetryPolicy::Backoff,
        }
    }
}

/// The pause before a retry in round `round` (0: the first time round the list): 1 s
/// doubling to [`MAX_BACKOFF`], with up to a fifth added at random so that the clients
/// of a restarted server do not all come back in the same instant.
pub fn backoff(round: u32) -> Duration {
    let base = Duration::from_secs(1u64 << round.min(5)).min(MAX_BACKOFF);
    let jitter = base.mul_f64(fastrand::f64() * 0.2);
    base + jitter
}

/// The round-robin through a [`ServerList`]: which server the next connection goes to,
/// and how long to wait before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    servers: ServerList,
    /// The server the current (or next) connection goes to.
    current: usize,
    /// Connections that failed or dropped since the last one that joined (or since the
    /// user last asked to connect).
    failures: u32,
    /// A connection joined since the user asked to connect.
    joined: bool,
}

impl Rotation {
    /// Starts at the list's first server.
    pub fn new(servers: ServerList) -> Rotation {
        Rotation {
            servers,
            current: 0,
            failures: 0,
            joined: false,
        }
    }

    /// The list.
    pub fn servers(&self) -> &ServerList {
        &self.servers
    }

    /// The server the current (or next) connection goes to.
    pub fn current(&self) -> &str {
        self.servers.get(self.current)
    }

    /// The server the next connection goes to, when the chat has several: worth naming
    /// (with one server there is nothing to choose, and the line says no more than before).
    pub fn next_of_several(&self) -> Option<&str> {
        (self.servers.len() > 1).then(|| self.current())
    }

    /// Attempts that failed since the last success: 0 for a first try.
    pub fn attempt(&self) -> u32 {
        self.failures
    }

    /// An automatic reconnection was refused the nickname it had: may it try again by
    /// itself (the holder is most likely the client's own lost connection), or is it
    /// time to ask the user ([`NICK_HELD_RETRIES`])?
    pub fn may_wait_for_nick(&self) -> bool {
        self.failures < NICK_HELD_RETRIES
    }

    /// The handshake on the current server succeeded: the count starts again, and the
    /// client stays on this server until it loses it.
    pub fn joined(&mut self) {
        self.failures = 0;
        self.joined = true;
    }

    /// The user asked to connect again now (the Reconnect button, a nickname given
    /// after the server gave up): to the server the next retry was for, counting anew.
    pub fn restart(&mut self) {
        self.failures = 0;
    }

    /// The connection to the current server ended or never came up, as `policy` says;
    /// `chatting` is whether it had joined (then the client reconnects by itself).
    /// Moves on to the next server and returns the pause before connecting to it, or
    /// `None` when the client should wait for the user.
    ///
    /// - After a join was lost, every server is tried in turn, the pause growing by
    ///   round ([`backoff`]); [`RetryPolicy::Crowded`] waits at least
    ///   [`CROWDED_BACKOFF`] only when the next try is the same server.
    /// - Before the first join after the user asked to connect, the other servers are
    ///   tried at once, once each (the user is watching the connect screen); when all
    ///   failed, the last reason is the user's to read.
    pub fn after_loss(&mut self, policy: RetryPolicy, chatting: bool) -> Option<Duration> {
        let n = u32::try_from(self.servers.len()).unwrap_or(u32::MAX).max(1);
        let round = self.failures / n;
        self.failures = self.failures.saturating_add(1);
        if policy == RetryPolicy::Never {
            return None;
        }
        if !chatting {
            if self.joined || self.failures >= n {
                return None;
            }
            self.advance();
            return Some(Duration::ZERO);
        }
        let before = self.current;
        self.advance();
        let pause = backoff(round);
        Some(
            if policy == RetryPolicy::Crowded && self.current == before {
                pause.max(CROWDED_BACKOFF)
            } else {
                pause
            },
        )
    }

    fn advance(&mut self) {
        self.current = (self.current + 1) % self.servers.len().max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> ServerList {
        ServerList::parse(s).unwrap()
    }

    #[test]
    fn lists_are_read_leniently_but_bounded() {
        assert_eq!(list("a:1").to_string(), "a:1");
        assert_eq!(list(" a:1 , b:2,,a:1, ").to_string(), "a:1,b:2");
        assert_eq!(list("tls://a:1,b:2").get(0), "tls://a:1");
        assert_eq!(ServerList::parse(" , "), Err(ListError::Empty));
        assert_eq!(ServerList::parse(""), Err(ListError::Empty));
        assert_eq!(
            ServerList::parse("a:1 b:2"),
            Err(ListError::Blank("a:1 b:2".into()))
        );
        let many: Vec<String> = (0..=MAX_SERVERS).map(|i| format!("h{i}:1")).collect();
        assert_eq!(
            ServerList::parse(&many.join(",")),
            Err(ListError::TooMany(MAX_SERVERS + 1))
        );
        assert!(ServerList::parse(&many[..MAX_SERVERS].join(",")).is_ok());
    }

    #[test]
    fn policy_by_closing_error() {
        for code in [
            ErrorCode::IdleTimeout,
            ErrorCode::TooManyAttempts,
            ErrorCode::HandshakeTimeout,
            ErrorCode::Kicked,
            ErrorCode::Banned,
        ] {
            assert_eq!(RetryPolicy::after(Some(code)), RetryPolicy::Never);
        }
        assert_eq!(
            RetryPolicy::after(Some(ErrorCode::TooManyConnections)),
            RetryPolicy::Crowded
        );
        assert_eq!(RetryPolicy::after(None), RetryPolicy::Backoff);
        assert_eq!(
            RetryPolicy::after(Some(ErrorCode::ServerShutdown)),
            RetryPolicy::Backoff
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b0 = backoff(0);
        assert!(b0 >= Duration::from_secs(1) && b0 <= Duration::from_millis(1200));
        let b3 = backoff(3);
        assert!(b3 >= Duration::from_secs(8) && b3 <= Duration::from_millis(9600));
        for a in [5, 6, 40, u32::MAX] {
            let b = backoff(a);
            assert!(
                b >= MAX_BACKOFF && b <= MAX_BACKOFF.mul_f64(1.2),
                "{a}: {b:?}"
            );
        }
    }

    /// The pause's base in whole seconds (the jitter adds up to a fifth), or `None`.
    fn secs(d: Option<Duration>) -> Option<u64> {
        d.map(|d| {
            let base = [1, 2, 4, 8, 16, 30]
                .into_iter()
                .rfind(|&b| d >= Duration::from_secs(b))
                .unwrap_or(0);
            assert!(d <= Duration::from_secs(base).mul_f64(1.2), "{d:?}");
            base
        })
    }

    #[test]
    fn one_server_backs_off_as_before() {
        let mut r = Rotation::new(list("a:1"));
        r.joined();
        let pauses: Vec<_> = (0..7)
            .map(|_| secs(r.after_loss(RetryPolicy::Backoff, true)))
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30].map(Some).to_vec());
        assert_eq!(r.current(), "a:1");
        assert_eq!(r.next_of_several(), None, "one server: nothing to name");
        assert_eq!(r.attempt(), 7);
        r.joined();
        assert_eq!(secs(r.after_loss(RetryPolicy::Backoff, true)), Some(1));
    }

    #[test]
    fn a_lost_node_moves_to_the_next_round_robin_the_pause_growing_by_round() {
        let mut r = Rotation::new(list("a:1,b:2,c:3"));
        assert_eq!(r.current(), "a:1");
        r.joined();
        let mut seen = Vec::new();
        for _ in 0..7 {
            let pause = secs(r.after_loss(RetryPolicy::Backoff, true));
            seen.push((r.current().to_owned(), pause));
        }
        let want: Vec<(String, Option<u64>)> = [
            ("b:2", 1),
            ("c:3", 1),
            ("a:1", 1),
            ("b:2", 2),
            ("c:3", 2),
            ("a:1", 2),
            ("b:2", 4),
        ]
        .iter()
        .map(|(s, p)| ((*s).to_owned(), Some(*p)))
        .collect();
        assert_eq!(seen, want);
        // Joined on b: the next loss tries c after a second, and c is the one named.
        r.joined();
        assert_eq!(secs(r.after_loss(RetryPolicy::Backoff, true)), Some(1));
        assert_eq!(r.current(), "c:3");
        assert_eq!(r.next_of_several(), Some("c:3"));
    }

    #[test]
    fn a_crowded_address_waits_longer_only_for_the_same_server() {
        let mut r = Rotation::new(list("a:1"));
        r.joined();
        let p = r.after_loss(RetryPolicy::Crowded, true).unwrap();
        assert!(p >= CROWDED_BACKOFF, "{p:?}");
        let mut r = Rotation::new(list("a:1,b:2"));
        r.joined();
        let p = r.after_loss(RetryPolicy::Crowded, true).unwrap();
        assert!(p < CROWDED_BACKOFF, "{p:?}: b counts its own connections");
        assert_eq!(r.current(), "b:2");
    }

    #[test]
    fn a_held_nickname_is_waited_for_a_bounded_number_of_times() {
        let mut r = Rotation::new(list("a:1"));
        r.joined();
        let mut waited = Duration::ZERO;
        let mut tries = 0;
        while r.may_wait_for_nick() {
            waited += r.after_loss(RetryPolicy::Backoff, true).unwrap();
            tries += 1;
        }
        assert_eq!(tries, NICK_HELD_RETRIES);
        // Longer than a vanished peer takes to leave (about a minute), not forever.
        assert!(
            waited >= Duration::from_secs(90) && waited <= Duration::from_secs(110),
            "{waited:?}"
        );
        r.joined();
        assert!(r.may_wait_for_nick());
    }

    #[test]
    fn never_stays_put_and_waits_for_the_user() {
        let mut r = Rotation::new(list("a:1,b:2"));
        r.joined();
        assert_eq!(r.after_loss(RetryPolicy::Never, true), None);
        assert_eq!(r.current(), "a:1");
        r.restart();
        assert_eq!(r.attempt(), 0);
    }

    #[test]
    fn before_the_first_join_each_server_is_tried_once_at_once() {
        let mut r = Rotation::new(list("a:1,b:2,c:3"));
        assert_eq!(
            r.after_loss(RetryPolicy::Backoff, false),
            Some(Duration::ZERO)
        );
        assert_eq!(r.current(), "b:2");
        assert_eq!(
            r.after_loss(RetryPolicy::Backoff, false),
            Some(Duration::ZERO)
        );
        assert_eq!(r.current(), "c:3");
        assert_eq!(r.after_loss(RetryPolicy::Backoff, false), None);
        // One server: nothing else to try, as the single-server client did.
        let mut r = Rotation::new(list("a:1"));
        assert_eq!(r.after_loss(RetryPolicy::Backoff, false), None);
        // Once a connection joined, a loss that is not chatting (the user typed /quit,
        // or left a nickname prompt) waits for the user.
        let mut r = Rotation::new(list("a:1,b:2"));
        r.joined();
        assert_eq!(r.after_loss(RetryPolicy::Backoff, false), None);
    }
}
