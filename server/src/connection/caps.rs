//! Capabilities and tagged output (spec §13, §14): `/caps` after the handshake and as a
//! pre-join command, and the tag prefix a connection that enabled `tags` gets in front
//! of every event line.
//!
//! The prefix goes through the writer's per-entry seam ([`LinePrefix`]): event lines
//! stay encoded once and shared, and only a connection that asked pays for its tags.
//! Enabling is sequenced like any reply (SRV-5, CAPS-3): the answer is stamped with the
//! log's head at that moment, and exactly the entries after that head carry tags, so no
//! line before `Capabilities enabled:` is tagged and every event line after it is.

use std::sync::Arc;

use chat_proto::tags::{Tags, write_event_prefix};
use chat_proto::{CapName, Capability, EventId, PROTOCOL_VERSION, ServerMessage, ServerTime};

use std::time::Instant;

use super::state::Conn;
use crate::liveness::Liveness;
use crate::log::Entry;
use crate::writer::{LinePrefix, Pushed, encode};

/// What this server offers (CAPS-1): tags, history when it keeps any (HIST-1), and ping
/// when it probes (PING-1).
fn offered(history: bool, ping: bool) -> Vec<Capability> {
    let mut caps = vec![Capability::named(CapName::tags())];
    if history {
        caps.push(Capability::named(CapName::history()));
    }
    if ping {
        caps.push(Capability::named(CapName::ping()));
    }
    caps
}

/// Writes `@id=<epoch>:<seq>;t=<time> ` in front of the log entries after `after`
/// (TAG-1, TAG-3, TAG-4).
#[derive(Debug)]
struct TagPrefix {
    after: u64,
}

impl LinePrefix for TagPrefix {
    fn write_prefix(&self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        if entry.id.seq <= self.after {
            return;
        }
        // In a cluster the stream's id and time, the same on every node (CLUSTER-6).
        let (id, time_ms) = match entry.origin {
            Some(origin) => (origin, origin.epoch),
            None => (entry.id, entry.time_ms),
        };
        match i64::try_from(time_ms)
            .ok()
            .and_then(ServerTime::from_unix_millis)
        {
            Some(time) => write_event_prefix(id.epoch, id.seq, time, out),
            // A clock outside the years 0000..9999: the id alone.
            None => Tags {
                id: Some(EventId::memory(id.epoch, id.seq)),
                time: None,
                other: Vec::new(),
            }
            .encode_prefix(out),
        }
    }
}

impl Conn {
    /// `/caps` (CAPS-2) or `/caps <name>...` (CAPS-3), in the handshake or after it.
    pub(super) fn on_caps(&mut self, names: Vec<CapName>) {
        let ping = self.settings.ping;
        let offered = offered(self.hub.history_enabled(), ping.is_some());
        if names.is_empty() {
            let line = encode(&ServerMessage::caps(PROTOCOL_VERSION, offered));
            self.reply(&line);
            return;
        }
        if !names.iter().all(|n| offered.iter().any(|o| &o.name == n)) {
            self.reply(&encode(&ServerMessage::unknown_capability()));
            return;
        }
        let had_tags = self.caps.tags();
        let enabled = self.caps.enable(&names).to_vec();
        let answer = encode(&ServerMessage::CapsEnabled(enabled));
        // The answer and the start of tagged output share one position in the order.
        let head = self.hub.log().head();
        if self.outbox.push_after(head, &answer) == Pushed::Overflow {
            self.hub.cut_off(&self.outbox, "sendq exceeded");
            return;
        }
        if self.caps.tags() && !had_tags {
            self.outbox
                .set_prefix(Some(Arc::new(TagPrefix { after: head })));
        }
        // PING-3: probing starts now; silence is counted from here.
        if let Some(times) = ping.filter(|_| self.caps.ping() && self.liveness.is_none()) {
            self.liveness = Some(Box::new(Liveness::new(times, Instant::now())));
        }
    }
}
