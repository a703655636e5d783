//! Moderation (spec §18): operators, kicks, mutes and bans, applied by the sequencer.
//!
//! Every action takes the hub's one event path: under the registry's lock it is applied
//! (the target removed, muted or banned), its public notice appended to the log once,
//! and, for a kick or a ban, the core leave line appended right after it; the writers
//! are woken when the lock is released. So a notice has its place in the one order
//! (SRV-4), the replies to the operator come after it (SRV-5), history keeps it
//! (MOD-7), and the target's own writer is stopped at the notice, so it gets the notice
//! and its closing `ERR` line but never its own leave line (MOD-4).
//!
//! What is kept, and for how long: operator status and mutes per connection (keyed by
//! the outbox, forgotten when the member leaves), the address of every open connection
//! (forgotten when its slot is freed), mutes and bans per address (ADDR-2's grouping:
//! an IPv4 address or an IPv6 /64), and wrong passwords per address for 10 minutes.
//! Mutes and bans live in memory only: a restart lifts them (MOD-6).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_proto::moderation::{
    Action, DEFAULT_MUTE_MINUTES, ModCommand, OP_ATTEMPTS_PER_ADDRESS, OP_ATTEMPTS_PER_CONNECTION,
    OP_FAILURE_WINDOW_SECS, Password, texts,
};
use chat_proto::{ErrorCode, Nickname, ServerMessage};
use tracing::{info, warn};

use super::{Hub, Membership, Registry};
use crate::per_address::AddressKey;
use crate::writer::{Line, Outbox, encode};

/// Most addresses whose wrong passwords are remembered at once; past it, entries whose
/// window is over are dropped first, then the oldest. Bounds memory against an attacker
/// with many addresses.
const MAX_FAILURE_ENTRIES: usize = 4096;

/// The operator password of a server, or none (MOD-1).
#[derive(Debug, Clone, Default)]
pub struct Operators(Option<Password>);

impl Operators {
    /// Operators with this password; `None`: the server has no operators.
    pub fn new(password: Option<Password>) -> Operators {
        Operators(password)
    }

    /// True when there is a password.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }
}

/// What to do with the connection after `/op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    /// Answered; the connection stays.
    Continue,
    /// Too many wrong passwords: `ERR too-many-attempts` was queued; close (MOD-2).
    Close,
}

/// A connection, by the identity of its outbox (stable while the outbox lives; entries
/// are removed before it is freed, so an address is never mistaken for a newer one).
type ConnId = usize;

fn conn_id(outbox: &Arc<Outbox>) -> ConnId {
    Arc::as_ptr(outbox) as usize
}

/// The moderation state, inside the registry (guarded by the sequencer's lock).
#[derive(Debug, Default)]
pub(super) struct Moderation {
    password: Option<Password>,
    operators: HashSet<ConnId>,
    mutes: HashMap<ConnId, Instant>,
    peers: HashMap<ConnId, AddressKey>,
    address_mutes: HashMap<AddressKey, Instant>,
    /// Banned address -> the nickname the ban was made under (for `/unban`).
    bans: HashMap<AddressKey, Nickname>,
    /// Wrong passwords per address: count, and the start of the window.
    failures: HashMap<AddressKey, (u32, Instant)>,
}

impl Moderation {
    pub(super) fn new(operators: Operators) -> Moderation {
        Moderation {
            password: operators.0,
            ..Moderation::default()
        }
    }

    /// A member left: its operator status and its own mute go with it (an address
    /// mute stays until it ends, MOD-5).
    pub(super) fn forget_member(&mut self, outbox: &Arc<Outbox>) {
        let id = conn_id(outbox);
        self.operators.remove(&id);
        self.mutes.remove(&id);
    }

    /// Shrinks the per-connection tables after a crowd has left (`hub::memory`).
    pub(super) fn shrink(&mut self) {
        super::memory::shrink_map(&mut self.peers);
        super::memory::shrink_map(&mut self.mutes);
    }

    /// A connection closed: its address is no longer needed.
    pub(super) fn forget_connection(&mut self, outbox: &Arc<Outbox>) {
        self.peers.remove(&conn_id(outbox));
    }

    fn address_of(&self, outbox: &Arc<Outbox>) -> Option<AddressKey> {
        self.peers.get(&conn_id(outbox)).copied()
    }

    /// When the mute of this connection ends, if it is muted now (its own mute or its
    /// address's, MOD-5).
    fn muted_until(&self, outbox: &Arc<Outbox>, now: Instant) -> Option<Instant> {
        let own = self.mutes.get(&conn_id(outbox)).copied();
        let by_address = self
            .address_of(outbox)
            .and_then(|a| self.address_mutes.get(&a).copied());
        own.into_iter()
            .chain(by_address)
            .filter(|&until| until > now)
            .max()
    }

    /// True when the address may not try `/op` now (MOD-2).
    fn blocked(&self, address: Option<AddressKey>, now: Instant) -> bool {
        address
            .and_then(|a| self.failures.get(&a))
            .is_some_and(|&(n, since)| {
                n >= OP_ATTEMPTS_PER_ADDRESS && now.duration_since(since) < failure_window()
            })
    }

    /// Counts a wrong password from `address`.
    fn failed(&mut self, address: Option<AddressKey>, now: Instant) {
        let Some(address) = address else { return };
        if self.failures.len() >= MAX_FAILURE_ENTRIES && !self.failures.contains_key(&address) {
            self.failures
                .retain(|_, (_, since)| now.duration_since(*since) < failure_window());
            if self.failures.len() >= MAX_FAILURE_ENTRIES
                && let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(a, _)| *a)
            {
                self.failures.remove(&oldest);
            }
        }
        let entry = self.failures.entry(address).or_insert((0, now));
        if now.duration_since(entry.1) >= failure_window() {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

fn failure_window() -> Duration {
    Duration::from_secs(OP_FAILURE_WINDOW_SECS)
}

impl Hub {
    /// Records the address of an accepted connection, for bans and address mutes
    /// (MOD-5, MOD-6). Nothing on a server without operators.
    pub fn note_address(&self, outbox: &Arc<Outbox>, ip: IpAddr) {
        if self.moderated {
            self.lock()
                .moderation
                .peers
                .insert(conn_id(outbox), AddressKey::from(ip));
        }
    }

    /// True when connections from `ip` are banned (MOD-6): checked on accept, before
    /// `NICK`.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.moderated
            && self
                .lock()
                .moderation
                .bans
                .contains_key(&AddressKey::from(ip))
    }

    /// `ERR banned` for a connection refused on accept (MOD-6).
    pub fn banned_line(&self) -> Line {
        encode(&ServerMessage::error(
            ErrorCode::Banned,
            texts::BANNED_ADDRESS,
        ))
    }
}

impl Registry {
    /// Removes a member because an operator acted (MOD-4, MOD-6): its writer stops
    /// after the entry appended last (the notice), then sends `err` and closes; the
    /// others get the core leave line (CONN-2).
    fn expel(&mut self, outbox: &Arc<Outbox>, err: &Line) -> Option<Nickname> {
        let key = self
            .members
            .iter()
            .find(|m| Arc::ptr_eq(&m.outbox, outbox))?
            .key
            .clone();
        let member = self.take_member(&key, outbox)?;
        match &self.engine {
            // Cluster: its last log entry is the one before its leave, which is still
            // on its way through the stream; `err` follows it.
            Some(engine) => engine.stop_with(key, outbox, Some(err.clone())),
            None => {
                let last = self.appender.log().head();
                outbox.stop_at(last);
                outbox.push_after(last, err);
            }
        }
        outbox.close();
        self.announce_leave(&member.nick);
        Some(member.nick)
    }

    /// Closes a connection still in the handshake: `err` is its last line.
    fn turn_out(outbox: &Arc<Outbox>, err: &Line) {
        outbox.push(err);
        outbox.close();
    }
}

/// The reply to an operator command that changes nothing (MOD-3).
fn refusal(code: ErrorCode, text: &str) -> Line {
    encode(&ServerMessage::error(code, text))
}

impl Membership {
    /// How many minutes this user is still muted for, rounded up, or `None` (MOD-5).
    pub fn muted_minutes(&self) -> Option<u64> {
        if !self.hub.moderated {
            return None;
        }
        let now = Instant::now();
        let until = self.hub.lock().moderation.muted_until(&self.outbox, now)?;
        Some(until.duration_since(now).as_secs().div_ceil(60).max(1))
    }

    /// `ERR muted` with the time left, when this user is muted (MOD-5).
    pub fn muted_reply(&self) -> Option<Line> {
        let left = self.muted_minutes()?;
        Some(refusal(ErrorCode::Muted, &texts::muted(left)))
    }

    /// `/op <password>` (MOD-2). `failures` counts this connection's wrong passwords.
    pub fn op(&self, tried: &Password, failures: &mut u32) -> OpOutcome {
        let now = Instant::now();
        let (reply, outcome, address) = self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return (None, OpOutcome::Continue, None);
            }
            let address = reg.moderation.address_of(&self.outbox);
            let Some(password) = reg.moderation.password.clone() else {
                let line = refusal(ErrorCode::NoOperators, texts::NO_OPERATORS);
                return (Some(line), OpOutcome::Continue, address);
            };
            if reg.moderation.blocked(address, now) {
                let line = refusal(ErrorCode::TooManyAttempts, texts::TOO_MANY_OP_ATTEMPTS);
                return (Some(line), OpOutcome::Close, address);
            }
            if !password.matches(tried) {
                reg.moderation.failed(address, now);
                *failures += 1;
                if *failures >= OP_ATTEMPTS_PER_CONNECTION || reg.moderation.blocked(address, now) {
                    let line = refusal(ErrorCode::TooManyAttempts, texts::TOO_MANY_OP_ATTEMPTS);
                    return (Some(line), OpOutcome::Close, address);
                }
                let line = refusal(ErrorCode::BadPassword, texts::BAD_PASSWORD);
                return (Some(line), OpOutcome::Continue, address);
            }
            if !reg.moderation.operators.insert(conn_id(&self.outbox)) {
                let line = refusal(ErrorCode::AlreadyOperator, texts::ALREADY_OPERATOR);
                return (Some(line), OpOutcome::Continue, address);
            }
            reg.announce(&ServerMessage::Operator(self.nick.clone()), &self.nick);
            (None, OpOutcome::Continue, address)
        });
        match (&reply, outcome) {
            (None, _) => info!(nick = %self.nick, ?address, "became an operator"),
            (Some(_), OpOutcome::Close) => {
                warn!(nick = %self.nick, ?address, "too many wrong operator passwords; closing")
            }
            (Some(_), OpOutcome::Continue) if *failures > 0 => {
                warn!(nick = %self.nick, ?address, failures = *failures, "wrong operator password")
            }
            _ => {}
        }
        if let Some(line) = reply {
            self.reply(&line);
        }
        outcome
    }

    /// An operator command (MOD-3..6): judged, then applied through the sequencer.
    pub fn moderate(&self, cmd: ModCommand) {
        let now = Instant::now();
        let refused = self.hub.sequence(|reg| {
            if !reg.is_member(&self.key, &self.outbox) {
                return None;
            }
            if reg.moderation.password.is_none() {
                return Some(refusal(ErrorCode::NoOperators, texts::NO_OPERATORS));
            }
            if !reg.moderation.operators.contains(&conn_id(&self.outbox)) {
                return Some(refusal(ErrorCode::NotOperator, texts::NOT_OPERATOR));
            }
            if let ModCommand::Unban(nick) = &cmd {
                return self.unban(reg, nick);
            }
            let Some(target) = reg.member(&cmd.target().key()) else {
                return Some(encode(&ServerMessage::no_such_nick(cmd.target())));
            };
            let (target_nick, target_outbox) = (target.nick.clone(), target.outbox.clone());
            if Arc::ptr_eq(&target_outbox, &self.outbox) {
                return Some(refusal(ErrorCode::CannotModerate, texts::NOT_YOURSELF));
            }
            if reg.moderation.operators.contains(&conn_id(&target_outbox)) {
                let text = texts::other_operator(&target_nick);
                return Some(refusal(ErrorCode::CannotModerate, &text));
            }
            let notice = |action| ServerMessage::Moderated {
                target: target_nick.clone(),
                by: self.nick.clone(),
                action,
            };
            match cmd {
                ModCommand::Kick { reason, .. } => {
                    info!(op = %self.nick, target = %target_nick, reason = reason.as_ref().map(|r| r.as_str()), "kicked");
                    reg.announce(&notice(Action::Kicked(reason)), &self.nick);
                    let err = refusal(ErrorCode::Kicked, &texts::kicked(&self.nick));
                    reg.expel(&target_outbox, &err);
                }
                ModCommand::Ban { reason, .. } => {
                    let address = reg.moderation.address_of(&target_outbox);
                    info!(op = %self.nick, target = %target_nick, ?address, reason = reason.as_ref().map(|r| r.as_str()), "banned");
                    reg.announce(&notice(Action::Banned(reason)), &self.nick);
                    let err = refusal(ErrorCode::Banned, &texts::banned(&self.nick));
                    reg.expel(&target_outbox, &err);
                    if let Some(address) = address {
                        reg.moderation.bans.insert(address, target_nick.clone());
                        self.close_address(reg, address, &err);
                    }
                }
                ModCommand::Mute { minutes, .. } => {
                    let minutes = minutes.unwrap_or(DEFAULT_MUTE_MINUTES);
                    let until = now + Duration::from_secs(u64::from(minutes) * 60);
                    reg.moderation
                        .mutes
                        .insert(conn_id(&target_outbox), until);
                    if let Some(address) = reg.moderation.address_of(&target_outbox) {
                        reg.moderation.address_mutes.insert(address, until);
                    }
                    info!(op = %self.nick, target = %target_nick, minutes, "muted");
                    reg.announce(&notice(Action::Muted(minutes)), &self.nick);
                }
                ModCommand::Unmute(_) => {
                    if reg.moderation.muted_until(&target_outbox, now).is_none() {
                        return Some(refusal(ErrorCode::BadArguments, texts::NOT_MUTED));
                    }
                    reg.moderation.mutes.remove(&conn_id(&target_outbox));
                    if let Some(address) = reg.moderation.address_of(&target_outbox) {
                        reg.moderation.address_mutes.remove(&address);
                    }
                    info!(op = %self.nick, target = %target_nick, "unmuted");
                    reg.announce(&notice(Action::Unmuted), &self.nick);
                }
                ModCommand::Unban(_) => {}
            }
            None
        });
        if let Some(line) = refused {
            self.reply(&line);
        }
    }

    /// `/unban <nick>`: lifts the ban made under that nickname (MOD-6).
    fn unban(&self, reg: &mut Registry, nick: &Nickname) -> Option<Line> {
        let key = nick.key();
        let address = reg
            .moderation
            .bans
            .iter()
            .find(|(_, n)| n.key() == key)
            .map(|(a, _)| *a);
        let Some(address) = address else {
            return Some(refusal(ErrorCode::NoSuchNick, &texts::not_banned(nick)));
        };
        let banned = reg.moderation.bans.remove(&address)?;
        info!(op = %self.nick, target = %banned, ?address, "unbanned");
        let notice = ServerMessage::Moderated {
            target: banned,
            by: self.nick.clone(),
            action: Action::Unbanned,
        };
        reg.announce(&notice, &self.nick);
        None
    }

    /// MOD-6: every other connection from a banned address goes too (operators
    /// excepted): members leave (with their leave line, no second notice), handshaking
    /// ones get `err` alone.
    fn close_address(&self, reg: &mut Registry, address: AddressKey, err: &Line) {
        let from_there = |o: &Arc<Outbox>| reg.moderation.address_of(o) == Some(address);
        // Operators behind the same address (one NAT for a whole class) stay.
        let members: Vec<Arc<Outbox>> = reg
            .members
            .iter()
            .filter(|m| from_there(&m.outbox))
            .filter(|m| !reg.moderation.operators.contains(&conn_id(&m.outbox)))
            .map(|m| m.outbox.clone())
            .collect();
        let others: Vec<Arc<Outbox>> = reg
            .slots
            .iter()
            .flatten()
            .filter(|o| from_there(o) && !reg.members.iter().any(|m| Arc::ptr_eq(&m.outbox, o)))
            .cloned()
            .collect();
        for outbox in members {
            reg.expel(&outbox, err);
        }
        for outbox in others.iter().filter(|o| o.is_open()) {
            Registry::turn_out(outbox, err);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn mod_5_mutes_end_by_themselves_and_an_address_mute_outlives_the_connection() {
        let hub = Hub::new(10);
        let outbox = hub.new_outbox(1024);
        let mut m = Moderation::new(Operators::new(None));
        let now = Instant::now();
        let address = AddressKey::from(IpAddr::from([127, 0, 0, 2]));
        m.peers.insert(conn_id(&outbox), address);
        m.mutes
            .insert(conn_id(&outbox), now + Duration::from_secs(60));
        assert!(m.muted_until(&outbox, now).is_some());
        assert!(
            m.muted_until(&outbox, now + Duration::from_secs(61))
                .is_none()
        );
        m.address_mutes
            .insert(address, now + Duration::from_secs(120));
        m.forget_member(&outbox);
        assert!(
            m.muted_until(&outbox, now + Duration::from_secs(61))
                .is_some()
        );
        assert!(
            m.muted_until(&outbox, now + Duration::from_secs(121))
                .is_none()
        );
        m.forget_connection(&outbox);
        assert!(m.peers.is_empty());
    }

    #[test]
    fn mod_2_wrong_passwords_per_address_in_a_window_with_bounded_memory() {
        let mut m = Moderation::new(Operators::new(None));
        let now = Instant::now();
        let a = Some(AddressKey::from(IpAddr::from([127, 0, 0, 5])));
        for _ in 0..OP_ATTEMPTS_PER_ADDRESS - 1 {
            m.failed(a, now);
        }
        assert!(!m.blocked(a, now));
        m.failed(a, now);
        assert!(m.blocked(a, now));
        assert!(!m.blocked(a, now + failure_window()));
        // After the window the count starts again.
        m.failed(a, now + failure_window());
        assert!(!m.blocked(a, now + failure_window()));
        // Many addresses: the table stays bounded.
        for i in 0..(MAX_FAILURE_ENTRIES as u32 + 100) {
            m.failed(Some(AddressKey::V4(Ipv4Addr::from(0x0a00_0000 + i))), now);
        }
        assert!(m.failures.len() <= MAX_FAILURE_ENTRIES);
    }
}
