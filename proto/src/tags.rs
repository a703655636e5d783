//! Message tags (spec §14): a prefix carrying an event's position in the chat's order
//! and the server's time, sent only to connections that enabled the `tags` capability
//! (TAG-2):
//!
//! ```text
//! @id=1733130000:42;t=2026-12-02T08:52:04.123Z alice: hi
//! ```
//!
//! No untagged line can start with `@` (no nickname holds it and every fixed line
//! starts with a letter), so a tagged line is told apart by its first byte (TAG-1).

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use thiserror::Error;

use crate::wire::{TAG_VALUE, TAGS_SEP, TAGS_START};

/// Most bytes of a tag prefix, from its `@` through the SP after it (TAG-1).
pub const MAX_TAGS_BYTES: usize = 512;

/// Most characters of a tag key (TAG-1).
pub const MAX_TAG_KEY_LEN: usize = 32;

/// The key of the event id tag (TAG-3).
pub const ID: &str = "id";

/// The key of the server time tag (TAG-4).
pub const TIME: &str = "t";

/// Why a tag prefix is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TagError {
    /// No SP ends the prefix, or the prefix is longer than [`MAX_TAGS_BYTES`].
    #[error("the tag prefix has no end or is too long")]
    Prefix,
    /// A key or value breaks TAG-1, or a key appears twice.
    #[error("a tag is malformed or repeated")]
    Tag,
    /// The `id` tag's value is not an event id (TAG-3).
    #[error("bad event id")]
    Id,
    /// The `t` tag's value is not a server time (TAG-4).
    #[error("bad server time")]
    Time,
}

/// True for a byte a tag value may hold: visible ASCII but `;` (TAG-1).
pub fn is_tag_value_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != TAGS_SEP as u8
}

fn is_tag_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(is_tag_value_byte)
}

/// True for a tag key: 1 to 32 of `a-z 0-9 - . /`, starting with a letter (TAG-1).
pub fn is_tag_key(k: &str) -> bool {
    (1..=MAX_TAG_KEY_LEN).contains(&k.len())
        && k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'/')
        })
}

/// An event's position in the chat's order (TAG-3). Clients treat it as opaque: they
/// compare ids for equality and hand them back, never order or parse them, because each
/// log engine spells positions its own way. The memory engine writes `<epoch>:<seq>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Box<str>);

/// Most bytes of an event id (TAG-3).
pub const MAX_EVENT_ID_LEN: usize = 64;

impl EventId {
    /// Checks `s`: 1 to 64 visible ASCII characters but `;` (TAG-3).
    pub fn new(s: &str) -> Result<EventId, TagError> {
        if s.len() <= MAX_EVENT_ID_LEN && is_tag_value(s) {
            Ok(EventId(s.into()))
        } else {
            Err(TagError::Id)
        }
    }

    /// The memory engine's id: `epoch` is chosen at server start, `seq` counts events
    /// from 1 (TAG-3).
    pub fn memory(epoch: u64, seq: u64) -> EventId {
        EventId(format!("{epoch}:{seq}").into())
    }

    /// The memory engine's `(epoch, seq)`, for a server that is handed an id back;
    /// `None` for an id another engine wrote. Clients have no use for it (TAG-3).
    pub fn memory_parts(&self) -> Option<(u64, u64)> {
        let (e, s) = self.0.split_once(':')?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(e) || !digits(s) {
            return None;
        }
        Some((e.parse().ok()?, s.parse().ok()?))
    }

    /// The id as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The server's UTC time of an event, to the millisecond (TAG-4), written
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, always three fraction digits, always `Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTime(DateTime<Utc>);

/// Bytes of a written [`ServerTime`].
pub const SERVER_TIME_LEN: usize = 24;

impl ServerTime {
    /// The time `ms` milliseconds after 1970-01-01T00:00:00Z; `None` outside the years
    /// 0000 to 9999 that the four-digit form can write.
    pub fn from_unix_millis(ms: i64) -> Option<ServerTime> {
        let t = DateTime::from_timestamp_millis(ms)?;
        let year = t.format("%Y").to_string();
        (year.len() == 4 && !year.starts_with(['-', '+'])).then_some(ServerTime(t))
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// As a `chrono` time, for display.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses exactly the form TAG-4 gives; nothing else (no offsets, no other
    /// precision, no leap second).
    pub fn parse(s: &str) -> Result<ServerTime, TagError> {
        let b = s.as_bytes();
        let shape = b.len() == SERVER_TIME_LEN
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'.',
                23 => c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shape {
            return Err(TagError::Time);
        }
        let num = |from: usize, to: usize| -> u32 {
            s.get(from..to)
                .and_then(|d| d.parse().ok())
                .unwrap_or(u32::MAX)
        };
        let year = i32::try_from(num(0, 4)).map_err(|_| TagError::Time)?;
        let date = NaiveDate::from_ymd_opt(year, num(5, 7), num(8, 10)).ok_or(TagError::Time)?;
        let time =
            NaiveTime::from_hms_milli_opt(num(11, 13), num(14, 16), num(17, 19), num(20, 23))
                .ok_or(TagError::Time)?;
        Ok(ServerTime(date.and_time(time).and_utc()))
    }
}

impl fmt::Display for ServerTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{}.{:03}Z",
            t.format("%Y-%m-%dT%H:%M:%S"),
            t.nanosecond() / 1_000_000 % 1000
        )
    }
}

/// A tag the crate does not know (kept so that it round-trips; clients ignore it, CLI-5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherTag {
    /// The key (TAG-1).
    pub key: Box<str>,
    /// The value, if any (TAG-1).
    pub value: Option<Box<str>>,
}

/// The tags of one line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags {
    /// The event's position in the chat's order (TAG-3).
    pub id: Option<EventId>,
    /// The server's time of the event (TAG-4).
    pub time: Option<ServerTime>,
    /// Tags of later versions, in the order received.
    pub other: Vec<OtherTag>,
}

impl Tags {
    /// The tags of a chat event: its id and time.
    pub fn event(id: EventId, time: ServerTime) -> Tags {
        Tags {
            id: Some(id),
            time: Some(time),
            other: Vec::new(),
        }
    }

    /// True when there is no tag at all (such a line is sent without a prefix).
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.time.is_none() && self.other.is_empty()
    }

    /// Appends the prefix, `@` through the SP before the line, to `out`; nothing when
    /// there are no tags. Tags that would take the prefix past [`MAX_TAGS_BYTES`] are
    /// left out (the known ones always fit), so the result is always a valid prefix.
    pub fn encode_prefix(&self, out: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        let start = out.len();
        out.push(TAGS_START as u8);
        let mut first = true;
        let mut put = |out: &mut Vec<u8>, key: &str, value: Option<&str>| {
            let len = key.len() + value.map_or(0, |v| v.len() + 1) + usize::from(!first);
            // +1 for the SP that ends the prefix.
            if out.len() - start + len + 1 > MAX_TAGS_BYTES {
                return;
            }
            if !first {
                out.push(TAGS_SEP as u8);
            }
            first = false;
            out.extend_from_slice(key.as_bytes());
            if let Some(v) = value {
                out.push(TAG_VALUE as u8);
                out.extend_from_slice(v.as_bytes());
            }
        };
        if let Some(id) = &self.id {
            put(out, ID, Some(id.as_str()));
        }
        if let Some(t) = &self.time {
            put(out, TIME, Some(&t.to_string()));
        }
        for o in &self.other {
            put(out, &o.key, o.value.as_deref());
        }
        if out.len() == start + 1 {
            // Not one tag fitted: send the line untagged rather than a bare `@`.
            out.truncate(start);
            return;
        }
        out.push(b' ');
    }

    /// Splits a server line into its tags and the line after them (TAG-1). A line that
    /// does not start with `@` has no tags and is returned whole.
    pub fn split(line: &str) -> Result<(Tags, &str), TagError> {
        let Some(after) = line.strip_prefix(TAGS_START) else {
            return Ok((Tags::default(), line));
        };
        let sp = after.find(' ').ok_or(TagError::Prefix)?;
        // `@` + tags + SP.
        if sp + 2 > MAX_TAGS_BYTES {
            return Err(TagError::Prefix);
        }
        let (list, rest) = after.split_at(sp);
        let body = rest.get(1..).unwrap_or_default();
        let mut tags = Tags::default();
        let mut seen: Vec<&str> = Vec::new();
        for tag in list.split(TAGS_SEP) {
            let (key, value) = match tag.split_once(TAG_VALUE) {
                Some((k, v)) => (k, Some(v)),
                None => (tag, None),
            };
            if !is_tag_key(key) || seen.contains(&key) || value.is_some_and(|v| !is_tag_value(v)) {
                return Err(TagError::Tag);
            }
            seen.push(key);
            match (key, value) {
                (ID, Some(v)) => tags.id = Some(EventId::new(v)?),
                (ID, None) => return Err(TagError::Id),
                (TIME, Some(v)) => tags.time = Some(ServerTime::parse(v)?),
                (TIME, None) => return Err(TagError::Time),
                (k, v) => tags.other.push(OtherTag {
                    key: k.into(),
                    value: v.map(Into::into),
                }),
            }
        }
        Ok((tags, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(t: &Tags) -> String {
        let mut out = Vec::new();
        t.encode_prefix(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tag_1_prefix_form() {
        let t = Tags::event(
            EventId::memory(1_733_130_000, 42),
            ServerTime::from_unix_millis(1_796_201_524_123).unwrap(),
        );
        assert_eq!(prefix(&t), "@id=1733130000:42;t=2026-12-02T08:52:04.123Z ");
        let line = format!("{}alice: hi", prefix(&t));
        assert_eq!(Tags::split(&line), Ok((t, "alice: hi")));
        assert_eq!(prefix(&Tags::default()), "");
        assert_eq!(Tags::split("alice: hi"), Ok((Tags::default(), "alice: hi")));
    }

    #[test]
    fn tag_1_malformed_prefixes() {
        for bad in [
            "@",
            "@id=1:1",
            "@ alice: hi",
            "@;id=1:1 x",
            "@id=1:1;id=1:2 x",
            "@Id=1:1 x",
            "@id= x",
            "@id x",
            "@t x",
            "@t=2026-12-02T08:52:04Z x",
            "@t=2026-12-02T08:52:04.123+00:00 x",
            "@t=2026-02-30T08:52:04.123Z x",
            "@t=2026-12-02T08:52:60.000Z x",
            "@k=a;;b x",
        ] {
            assert!(Tags::split(bad).is_err(), "{bad:?}");
        }
        let long = format!("@k={} x", "v".repeat(MAX_TAGS_BYTES));
        assert_eq!(Tags::split(&long), Err(TagError::Prefix));
    }

    #[test]
    fn tag_3_ids_are_opaque_tokens() {
        let id = EventId::memory(7, 1);
        assert_eq!(id.as_str(), "7:1");
        assert_eq!(id.memory_parts(), Some((7, 1)));
        assert_eq!(EventId::new("redis-1733-0").unwrap().memory_parts(), None);
        assert!(EventId::new("a;b").is_err());
        assert!(EventId::new(&"1".repeat(65)).is_err());
    }

    #[test]
    fn tag_4_time_round_trip_and_range() {
        for ms in [0, 1, 999, 1_796_201_524_123, 253_402_300_799_999] {
            let t = ServerTime::from_unix_millis(ms).unwrap();
            assert_eq!(t.to_string().len(), SERVER_TIME_LEN);
            assert_eq!(ServerTime::parse(&t.to_string()), Ok(t));
            assert_eq!(t.unix_millis(), ms);
        }
        assert_eq!(
            ServerTime::from_unix_millis(0).unwrap().to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert!(ServerTime::from_unix_millis(253_402_300_800_000).is_none());
        assert!(ServerTime::from_unix_millis(-62_167_219_200_001).is_none());
    }

    #[test]
    fn tag_1_unknown_tags_kept_and_bounded() {
        let (t, body) = Tags::split("@x.org/k=v;flag alice: hi").unwrap();
        assert_eq!(body, "alice: hi");
        assert_eq!(t.other.len(), 2);
        assert_eq!(prefix(&t), "@x.org/k=v;flag ");
        let mut big = Tags::default();
        for i in 0..100 {
            big.other.push(OtherTag {
                key: format!("k{i}").into(),
                value: Some("v".repeat(20).into()),
            });
        }
        let p = prefix(&big);
        assert!(p.len() <= MAX_TAGS_BYTES, "{}", p.len());
        assert!(Tags::split(&format!("{p}x: y")).is_ok());
    }
}
