//! Per-address admission (spec ADDR-1, ADDR-2): how many connections one client address
//! may hold, and how many of them may be in the handshake at once.
//!
//! Without it one machine locks everyone out: a few hundred silent connections fill
//! `--max-clients`, and reopening each handshake slot as it frees keeps a newcomer out
//! for as long as the attacker likes. With it an address holds at most
//! `connections` slots, of which at most `handshakes` are choosing a nickname; everyone
//! else still gets in. ngIRCd (`MaxConnectionsIP`), InspIRCd (`<connect localmax>`) and
//! ergo (`max-concurrent-connections`) cap the same way.
//!
//! The check is made on accept, before `NICK` is sent and before a slot under
//! `--max-clients` is taken, so a refused connection costs one write and one close.
//! Counting is RAII: [`Admission::connection`] lives as long as the connection and
//! [`Admission::handshake`] as long as its handshake (the connection keeps it in its
//! handshake state, so joining, failing or closing all release it), and an entry
//! leaves the table with its last connection: the table never holds more entries than
//! there are open connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_proto::limits::{DEFAULT_MAX_HANDSHAKES_PER_ADDRESS, DEFAULT_MAX_PER_ADDRESS};

use crate::flood::{Budget, FloodLimit, SharedBudget};

/// FLOOD-ADDR-1's default: one address may send twice what one connection may, however
/// many connections it opens (up to ADDR-1's 10).
pub const DEFAULT_FLOOD_SHARE: u32 = 2;

/// The per-address limits; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLimits {
    /// Connections one address may hold, handshaking ones included (`--max-per-address`).
    pub connections: usize,
    /// Connections one address may have in the handshake at once
    /// (`--max-handshakes-per-address`).
    pub handshakes: usize,
    /// FLOOD-ADDR-1: an address's connections together may send this many times what
    /// one connection may (`--flood-per-address`); 0 = each connection on its own.
    pub flood_share: u32,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits {
            connections: DEFAULT_MAX_PER_ADDRESS,
            handshakes: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            flood_share: DEFAULT_FLOOD_SHARE,
        }
    }
}

impl AddressLimits {
    /// No per-address limit (tests that open many loopback connections, benchmarks).
    pub fn off() -> Self {
        AddressLimits {
            connections: 0,
            handshakes: 0,
            flood_share: 0,
        }
    }

    /// True when any limit applies.
    pub fn enabled(&self) -> bool {
        self.connections > 0 || self.handshakes > 0 || self.flood_share > 0
    }
}

/// What is counted as one address (ADDR-2): an IPv4 address, or an IPv6 /64 prefix (one
/// host usually has a whole /64 to itself and can pick any address in it). An
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for
/// IPv4 clients) is its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::V4(v4),
            IpAddr::V6(v6) => AddressKey::V6Prefix((v6.to_bits() >> 64) as u64),
        }
    }
}

/// Which limit turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The address holds `connections` connections.
    Connections(usize),
    /// The address has `handshakes` connections in the handshake.
    Handshakes(usize),
}

impl Refused {
    /// The human text of `ERR too-many-connections`.
    pub fn text(self) -> String {
        match self {
            Refused::Connections(n) => format!(
                "Too many connections from your address (at most {n}); close one and try again"
            ),
            Refused::Handshakes(n) => format!(
                "Too many connections from your address are choosing a nickname (at most {n} at once); try again in a moment"
            ),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Counts {
    connections: usize,
    handshakes: usize,
    /// The flood budget the address's connections share (FLOOD-ADDR-1).
    flood: Option<SharedBudget>,
}

/// The table of open connections per address. Share it as `Arc<PerAddress>`.
#[derive(Debug)]
pub struct PerAddress {
    limits: AddressLimits,
    /// One connection's flood limit, which an address's shared budget multiplies.
    flood: FloodLimit,
    table: Mutex<HashMap<AddressKey, Counts>>,
}

impl PerAddress {
    /// An empty table enforcing `limits`; `flood` is one connection's flood limit.
    pub fn new(limits: AddressLimits, flood: FloodLimit) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            limits,
            flood,
            table: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AddressKey, Counts>> {
        // Updates are a few integer operations that cannot panic midway.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection from `ip`, which starts in the handshake, or says which
    /// limit it would break. With both limits off nothing is counted.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refused> {
        if !self.limits.enabled() {
            return Ok(Admission::unlimited());
        }
        let key = AddressKey::from(ip);
        let mut table = self.lock();
        let counts = table.entry(key).or_default();
        let AddressLimits {
            connections,
            handshakes,
            flood_share,
        } = self.limits;
        if connections > 0 && counts.connections >= connections {
            // A refusal means the count is at least a limit above 0, so the entry was
            // there already: `or_default` never leaves an empty one behind.
            return Err(Refused::Connections(connections));
        }
        if handshakes > 0 && counts.handshakes >= handshakes {
            return Err(Refused::Handshakes(handshakes));
        }
        counts.connections += 1;
        counts.handshakes += 1;
        let flood = (flood_share > 0 && self.flood.enabled()).then(|| {
            counts
                .flood
                .get_or_insert_with(|| {
                    Budget::for_address(self.flood, flood_share, std::time::Instant::now())
                })
                .clone()
        });
        drop(table);
        let slot = |kind| {
            Some(Held {
                table: self.clone(),
                key,
                kind,
            })
        };
        Ok(Admission {
            connection: AddressSlot {
                _held: slot(Kind::Connection),
            },
            handshake: HandshakeSlot {
                _held: slot(Kind::Handshake),
            },
            flood,
        })
    }

    /// How many connections from `ip`'s address are open, and how many of them are in
    /// the handshake (for tests and monitoring).
    pub fn counts(&self, ip: IpAddr) -> (usize, usize) {
        self.lock()
            .get(&AddressKey::from(ip))
            .map_or((0, 0), |c| (c.connections, c.handshakes))
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.lock().len()
    }
}

/// The two places a newly accepted connection takes from its address's quota.
#[derive(Debug)]
pub struct Admission {
    /// Held for the whole life of the connection.
    pub connection: AddressSlot,
    /// Held while the connection is in the handshake.
    pub handshake: HandshakeSlot,
    /// The address's flood budget, when FLOOD-ADDR-1 applies.
    pub flood: Option<SharedBudget>,
}

impl Admission {
    /// An admission that counts nothing (limits off, or a connection with no address such
    /// as the socket-free `Detached`).
    pub fn unlimited() -> Admission {
        Admission {
            connection: AddressSlot { _held: None },
            handshake: HandshakeSlot { _held: None },
            flood: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Connection,
    Handshake,
}

#[derive(Debug)]
struct Held {
    table: Arc<PerAddress>,
    key: AddressKey,
    kind: Kind,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut table = self.table.lock();
        let Some(counts) = table.get_mut(&self.key) else {
            return;
        };
        match self.kind {
            Kind::Connection => counts.connections = counts.connections.saturating_sub(1),
            Kind::Handshake => counts.handshakes = counts.handshakes.saturating_sub(1),
        }
        if counts.connections == 0 && counts.handshakes == 0 {
            table.remove(&self.key);
            // A storm from many addresses leaves the table's room behind (issue 14).
            let len = table.len();
            if table.capacity() > 64 && len * 4 <= table.capacity() {
                table.shrink_to(len * 2);
            }
        }
    }
}

/// A connection's place in its address's quota; dropping it frees the place.
#[derive(Debug)]
pub struct AddressSlot {
    _held: Option<Held>,
}

/// A handshake's place in its address's quota; dropping it (on joining or closing)
/// frees the place.
#[derive(Debug)]
pub struct HandshakeSlot {
    _held: Option<Held>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(connections: usize, handshakes: usize) -> Arc<PerAddress> {
        PerAddress::new(
            AddressLimits {
                connections,
                handshakes,
                flood_share: 0,
            },
            FloodLimit::default(),
        )
    }

    #[test]
    fn addr_1_handshakes_limited_and_freed_on_join() {
        let t = table(4, 2);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let b = t.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Handshakes(2)));
        // Another address is not affected.
        let _other = t.admit(ip("10.0.0.2")).unwrap();
        // `a` joins: its handshake place is free, its connection place is kept.
        let Admission {
            connection: a_conn,
            handshake: a_hs,
            ..
        } = a;
        drop(a_hs);
        assert_eq!(t.counts(ip("10.0.0.1")), (2, 1));
        let c = t.admit(ip("10.0.0.1")).unwrap();
        drop(c.handshake);
        let _d = t.admit(ip("10.0.0.1")).unwrap();
        // 4 connections: a (joined), b, c (joined), d.
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Connections(4)));
        drop(a_conn);
        drop(b);
        assert_eq!(t.counts(ip("10.0.0.1")), (2, 1));
        assert!(t.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn addr_1_entries_leave_with_their_last_connection() {
        let t = table(10, 3);
        let held: Vec<_> = (1..=50)
            .map(|i| t.admit(ip(&format!("10.0.1.{i}"))).unwrap())
            .collect();
        assert_eq!(t.addresses(), 50);
        drop(held);
        assert_eq!(t.addresses(), 0);
    }

    #[test]
    fn addr_1_zero_turns_a_limit_off() {
        let t = table(0, 0);
        let held: Vec<_> = (0..100).map(|_| t.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(
            t.addresses(),
            0,
            "nothing is counted when both limits are off"
        );
        drop(held);
        let t = table(0, 2);
        let _a = t.admit(ip("10.0.0.1")).unwrap();
        let _b = t.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refused::Handshakes(2)));
    }

    #[test]
    fn addr_2_ipv6_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let t = table(2, 0);
        let _a = t.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = t.admit(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")).unwrap();
        assert_eq!(
            t.admit(ip("2001:db8:1:2:abcd::9")).err(),
            Some(Refused::Connections(2)),
            "the same /64"
        );
        assert!(t.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
        let _c = t.admit(ip("192.0.2.7")).unwrap();
        let _d = t.admit(ip("::ffff:192.0.2.7")).unwrap();
        assert_eq!(
            t.admit(ip("192.0.2.7")).err(),
            Some(Refused::Connections(2)),
            "a dual-stack listener's mapped address is the IPv4 address"
        );
        assert_eq!(
            AddressKey::from(ip("::ffff:192.0.2.7")),
            AddressKey::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
    }

    #[test]
    fn addr_1_refusal_texts_say_what_to_do() {
        assert!(Refused::Connections(10).text().contains("at most 10"));
        assert!(Refused::Handshakes(3).text().contains("at most 3"));
    }
}
