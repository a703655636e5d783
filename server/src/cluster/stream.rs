//! Reading the chat's stream back and applying it, in stream order, to the local hub.
//!
//! An entry is a small flat map: `t` (the event: `j` join, `l` leave, `r` rename, `c`
//! chat, `n` an operator's notice, `m` private message), `a` (the acting nickname), `b` (the new name,
//! or the recipient), `x` (text), `o` (the node that proposed it; none for
//! the leaves of a dead node).
//! Nicknames and text are checked again here with `chat-proto`'s types: an entry that
//! does not parse (written by something else) is skipped with a warning, never trusted.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_io::Timer;
use chat_proto::{Nickname, ServerMessage, Text};
use redis::Value;
use tracing::warn;

use super::{Engine, connect, key};
use crate::hub::Hub;
use crate::log::EntryId;
use crate::writer::Outbox;

/// How long one `XREAD` blocks: also how quickly the reader notices it must stop.
const BLOCK: Duration = Duration::from_millis(250);

/// Entries read per `XREAD` at most.
const COUNT: usize = 1024;

/// One entry of the stream, checked.
#[derive(Debug, PartialEq)]
pub(crate) enum Event {
    Joined {
        nick: Nickname,
        node: String,
    },
    Left(Nickname),
    Renamed {
        old: Nickname,
        new: Nickname,
    },
    Chat {
        from: Nickname,
        text: Text,
    },
    Private {
        from: Nickname,
        to: Nickname,
        text: Text,
    },
    /// An operator's public notice (§18): only those lines are accepted.
    Notice(ServerMessage),
}

impl Event {
    /// Parses an entry's fields.
    pub(crate) fn parse(fields: &[(String, String)]) -> Option<Event> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.as_str())
        };
        let nick = |name: &str| get(name).and_then(|v| Nickname::new(v).ok());
        let text = || get("x").and_then(|v| Text::new(v).ok());
        let node = || get("o").map(str::to_owned);
        Some(match get("t")? {
            "j" => Event::Joined {
                nick: nick("a")?,
                node: node()?,
            },
            "l" => Event::Left(nick("a")?),
            "r" => Event::Renamed {
                old: nick("a")?,
                new: nick("b")?,
            },
            "c" => Event::Chat {
                from: nick("a")?,
                text: text()?,
            },
            "n" => match ServerMessage::parse(get("x")?) {
                Ok(msg @ (ServerMessage::Moderated { .. } | ServerMessage::Operator(_))) => {
                    Event::Notice(msg)
                }
                _ => return None,
            },
            "m" => Event::Private {
                from: nick("a")?,
                to: nick("b")?,
                text: text()?,
            },
            _ => return None,
        })
    }
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Entries `(id, fields)` of an `XREAD` reply for one stream.
fn entries(reply: Value) -> Vec<(String, Vec<(String, String)>)> {
    let streams = match reply {
        Value::Array(s) => s,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for stream in streams {
        let items = match stream {
            Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
            other => Some(other),
        };
        let Some(Value::Array(items)) = items else {
            continue;
        };
        out.extend(range_entries(items));
    }
    out
}

/// Entries `(id, fields)` of an `XRANGE`/`XREVRANGE` reply (or of one stream of an
/// `XREAD` reply).
fn range_entries(items: Vec<Value>) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    {
        for item in items {
            let Value::Array(parts) = item else { continue };
            let (Some(id), Some(Value::Array(flat))) =
                (parts.first().and_then(string), parts.get(1))
            else {
                continue;
            };
            let fields = flat
                .chunks(2)
                .filter_map(|p| Some((string(p.first()?)?, string(p.get(1)?)?)))
                .collect();
            out.push((id, fields));
        }
    }
    out
}

/// A stream entry id `<ms>-<n>` as an event id (CLUSTER-6); a malformed one (never
/// written by Redis) as `0:0`.
pub(crate) fn origin_of(id: &str) -> EntryId {
    let (ms, n) = id.split_once('-').unwrap_or((id, "0"));
    EntryId {
        epoch: ms.parse().unwrap_or(0),
        seq: n.parse().unwrap_or(0),
    }
}

/// History that survives restarts (CLUSTER-7): before the reader starts, the newest
/// `count` entries up to where the reader will start are appended to the local log, so
/// that backlogs, `/history` and `/resume` on this node reach back before it started.
/// They change no member list (the snapshot already holds the members there).
pub(super) async fn prefill(engine: &Engine, hub: &Hub, count: usize) -> redis::RedisResult<usize> {
    if count == 0 || engine.start_id == "0-0" {
        return Ok(0);
    }
    let mut con = connect(&engine.client, super::REQUEST_TIMEOUT).await?;
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(key("stream"))
        .arg(&engine.start_id)
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut con)
        .await?;
    let Value::Array(items) = reply else {
        return Ok(0);
    };
    let mut n = 0;
    for (id, fields) in range_entries(items).into_iter().rev() {
        let msg = match Event::parse(&fields) {
            Some(Event::Joined { nick, .. }) => ServerMessage::Joined(nick),
            Some(Event::Left(nick)) => ServerMessage::Left(nick),
            Some(Event::Renamed { old, new }) => ServerMessage::Renamed { old, new },
            Some(Event::Chat { from, text }) => ServerMessage::Chat { from, text },
            Some(Event::Notice(msg)) => msg,
            Some(Event::Private { .. }) | None => continue,
        };
        hub.append_replicated(&msg, origin_of(&id), None);
        n += 1;
    }
    Ok(n)
}

/// The reader task: `XREAD BLOCK` from where the snapshot was taken, applying every
/// entry in order; reconnects after an error and goes on from the last entry applied.
/// Its connection is its own: a blocking command must not share a multiplexed one.
pub(super) async fn read_loop(engine: &Engine, hub: &Weak<Hub>) {
    let stream = key("stream");
    let mut last = engine.start_id.clone();
    let mut con = None;
    while !engine.stop.load(Ordering::Acquire) {
        if con.is_none() {
            match connect(&engine.client, BLOCK + super::REQUEST_TIMEOUT).await {
                Ok(c) => con = Some(c),
                Err(_) => {
                    Timer::after(BLOCK).await;
                    continue;
                }
            }
        }
        let Some(c) = con.as_mut() else { continue };
        let reply = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(250))
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async::<Value>(c)
            .await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "reading the stream failed; reconnecting");
                con = None;
                Timer::after(BLOCK).await;
                continue;
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        for (id, fields) in entries(reply) {
            let own = fields.iter().any(|(f, v)| f == "o" && *v == engine.node);
            if own {
                engine.wait_resolved(origin_of(&id)).await;
            }
            match Event::parse(&fields) {
                Some(event) => engine.apply(&hub, event, origin_of(&id), own),
                None => warn!(id = %id, "skipped a stream entry that does not parse"),
            }
            engine.applied(origin_of(&id), own.then(|| hub.log().head()));
            last = id;
        }
        hub.publish();
    }
}

impl Engine {
    /// Applies one entry: updates the member list, then has the hub append the public
    /// line or deliver the private one to its local recipients.
    fn apply(&self, hub: &Hub, event: Event, origin: EntryId, own: bool) {
        match event {
            Event::Joined { nick, node } => {
                self.replica().insert(nick.key(), nick.clone());
                // The joiner, if it joined here: found by this entry, since it may
                // have renamed since (its rename still on its way).
                let here = (node == self.node)
                    .then(|| self.joiner(hub, origin, &nick))
                    .flatten();
                let here_key = here
                    .as_ref()
                    .and_then(|o| hub.key_of(o, self.local_key(nick.key())));
                hub.append_replicated(
                    &ServerMessage::Joined(nick.clone()),
                    origin,
                    here_key.as_ref(),
                );
                if let Some(outbox) = here {
                    self.at_stream().insert(nick.key(), outbox);
                }
            }
            Event::Left(nick) => {
                self.replica().remove(&nick.key());
                self.at_stream().remove(&nick.key());
                if own {
                    // Its writer stops right before its own leave notice (CONN-2).
                    self.stop_leaver(&nick.key());
                }
                hub.append_replicated(&ServerMessage::Left(nick), origin, None);
            }
            Event::Renamed { old, new } => {
                {
                    let mut replica = self.replica();
                    replica.remove(&old.key());
                    replica.insert(new.key(), new.clone());
                }
                if own {
                    self.renaming_map().remove(&old.key());
                }
                {
                    let mut at = self.at_stream();
                    if let Some(outbox) = at.remove(&old.key()) {
                        at.insert(new.key(), outbox);
                    }
                }
                hub.append_replicated(&ServerMessage::Renamed { old, new }, origin, None);
            }
            Event::Chat { from, text } => {
                hub.append_replicated(&ServerMessage::Chat { from, text }, origin, None);
            }
            Event::Notice(msg) => hub.append_replicated(&msg, origin, None),
            Event::Private { from, to, text } => {
                // Decided against the names at this point of the stream, not the local
                // registry's (which a rename on its way has already changed): each
                // party of this node gets it once, a leaving one too, since its leave
                // comes later in the order (CLUSTER-3).
                let outboxes: Vec<Arc<Outbox>> = {
                    let at = self.at_stream();
                    let mut v: Vec<Arc<Outbox>> = Vec::new();
                    for o in [at.get(&from.key()), at.get(&to.key())]
                        .into_iter()
                        .flatten()
                    {
                        if !v.iter().any(|x| Arc::ptr_eq(x, o)) {
                            v.push(o.clone());
                        }
                    }
                    v
                };
                if !outboxes.is_empty() {
                    let line = crate::writer::encode(&ServerMessage::Private { from, to, text });
                    hub.deliver_to(&outboxes, &line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn stream_ids_become_event_ids() {
        assert_eq!(
            origin_of("1733000000000-7"),
            EntryId {
                epoch: 1_733_000_000_000,
                seq: 7
            }
        );
        assert_eq!(origin_of("junk"), EntryId { epoch: 0, seq: 0 });
    }

    #[test]
    fn entries_parse_and_bad_ones_are_refused() {
        let e = Event::parse(&f(&[("t", "c"), ("a", "alice"), ("x", "hi")]));
        assert!(matches!(e, Some(Event::Chat { .. })));
        assert_eq!(
            Event::parse(&f(&[("t", "c"), ("a", "bad nick"), ("x", "hi")])),
            None
        );
        assert_eq!(Event::parse(&f(&[("t", "j"), ("a", "alice")])), None);
        assert_eq!(Event::parse(&f(&[("t", "?")])), None);
        assert_eq!(
            Event::parse(&f(&[("t", "c"), ("a", "alice"), ("x", "a\u{7}b")])),
            None
        );
    }
}
