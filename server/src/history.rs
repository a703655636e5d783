//! History (spec §17): which of the log's entries stay readable after every reader has
//! passed them, and the blocks of earlier events built from them (backlog on join,
//! `/history`, resume).
//!
//! Why it looks like this:
//! - **No second copy.** Retention is a pin: one [`Cursor`] the sequencer holds at the
//!   oldest retained entry. The log frees a segment only when no cursor is in it, so the
//!   pin keeps the last `--history` entries in the very segments every writer reads,
//!   at no cost per event but an index step (and a segment hop every few hundred).
//! - **Within the budget, by construction.** [`fits_budget`] refuses (at start-up) a
//!   retention whose worst case would span more than a quarter of the log's segments.
//!   The log pauses senders at seven eighths of its budget and evicts only past all of
//!   it, oldest segment first; the pinned segments are the newest ones, so retention
//!   never causes congestion nor costs a lagging reader its place, and eviction never
//!   reaches the retained entries. [`Retention::evicted`] still moves the pin if it ever
//!   were in an evicted segment, so the budget holds whatever happens.
//! - **Blocks are replies.** A block is built under the sequencer's lock from entries
//!   put in the order before that moment, and queued as one private item stamped with
//!   that position: it cannot overlap or miss a live line (HIST-2, RESUME-2).

use std::collections::{BTreeSet, VecDeque};

use chat_proto::limits::MAX_SERVER_LINE_BYTES;
use chat_proto::server::encode_earlier_prefix;
use chat_proto::{EventId, ServerMessage, ServerTime, Tags};

use crate::log::{Appender, Cursor, EntryId, Log, SEGMENT_BYTES};

/// The default `--history`: public events kept (HIST-1).
pub const DEFAULT_HISTORY: usize = 500;

/// The default `--backlog`: events sent on join to clients that enabled `history`
/// (HIST-5).
pub const DEFAULT_BACKLOG: usize = 20;

/// Most bytes of the lines of one block (HIST-2).
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The longest public event in the log: a chat line and its LF (SRV-3).
const WORST_EVENT_BYTES: usize = MAX_SERVER_LINE_BYTES + 1;

/// Segments that `keep` events can span at worst: a segment is sealed when the next line
/// does not fit, so each holds at least `SEGMENT_BYTES - WORST_EVENT_BYTES + 1` bytes of
/// lines, and the span may start and end inside a segment.
pub fn worst_span(keep: usize) -> usize {
    let per_segment = (SEGMENT_BYTES - WORST_EVENT_BYTES + 1) / WORST_EVENT_BYTES;
    keep.div_ceil(per_segment.max(1)) + 1
}

/// True when retaining `keep` events fits the rule of HIST-1: at worst a quarter of the
/// budget's segments (plus the open one).
pub fn fits_budget(keep: usize, log_budget: usize) -> bool {
    keep == 0 || worst_span(keep) <= Log::segments_for(log_budget) / 4 + 1
}

/// The most events that fit a budget (for a default that must yield to a small budget).
pub fn most_that_fit(log_budget: usize) -> usize {
    let per_segment = (SEGMENT_BYTES - WORST_EVENT_BYTES + 1) / WORST_EVENT_BYTES;
    (Log::segments_for(log_budget) / 4) * per_segment
}

/// How a connection gets earlier events: tagged (TAG-2 plus `history`) or readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `@id=..;t=..;history <line>` (HIST-3), for a connection with tags.
    Tagged,
    /// `[YYYY-MM-DD HH:MM:SS UTC] <line>` (HIST-3), for any other.
    Readable,
}

impl Form {
    /// The form for a connection that has (or has not) enabled tags.
    pub fn for_tags(tags: bool) -> Form {
        if tags { Form::Tagged } else { Form::Readable }
    }
}

/// What a joining connection gets after `Connected to the server` (HIST-5, RESUME-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    /// Nothing (no capability asked, a 1.0 client).
    Nothing,
    /// The backlog (HIST-5).
    Backlog(Form),
    /// The backlog, only when it holds an event (HIST-6: a seed client, which did not
    /// ask, is not shown an empty block).
    BacklogIfAny(Form),
    /// The events after this id, or a gap and the backlog (RESUME-2, RESUME-3).
    Resume(EventId, Form),
}

/// The retained part of the log: a pin at its oldest entry, and which entries are not
/// public events (the shutdown notice) so blocks skip them.
#[derive(Debug)]
pub struct Retention {
    keep: u64,
    backlog: usize,
    pin: Option<Cursor>,
    not_public: BTreeSet<u64>,
    /// The log's entries carry stream ids, which are the event ids (cluster, §20).
    origins: bool,
}

impl Retention {
    /// Keeps the last `keep` entries (0: none); backlogs of `backlog` events.
    pub fn new(keep: usize, backlog: usize) -> Retention {
        Retention {
            keep: keep as u64,
            backlog,
            pin: None,
            not_public: BTreeSet::new(),
            origins: false,
        }
    }

    /// For a cluster node's log: events are named by their stream ids (CLUSTER-6).
    pub fn with_stream_ids(self) -> Retention {
        Retention {
            origins: true,
            ..self
        }
    }

    /// True when anything is kept (the server offers `history`, HIST-1).
    pub fn enabled(&self) -> bool {
        self.keep > 0
    }

    /// The backlog size (HIST-5).
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// After entry `seq` was appended (the newest one of `appender`): moves the pin so
    /// that the last `keep` entries stay, freeing segments nobody needs any more.
    pub fn appended(&mut self, appender: &Appender, seq: u64, public: bool) {
        if self.keep == 0 {
            return;
        }
        if !public {
            self.not_public.insert(seq);
        }
        let pin = self.pin.get_or_insert_with(|| appender.cursor_at_last());
        let first = (seq + 1).saturating_sub(self.keep);
        if first > pin.next_seq() {
            if pin.seek(first) {
                appender.log().trim();
            }
            self.not_public = self.not_public.split_off(&first);
        }
    }

    /// After the log evicted every entry below `below`: a pin there would hold memory
    /// past the budget, so it moves (HIST-1 says this cannot happen; this makes sure).
    pub fn evicted(&mut self, log: &Log, below: u64) {
        if self.pin.as_ref().is_some_and(|p| p.next_seq() < below) {
            self.pin = log.oldest_cursor().map(|mut c| {
                c.seek(below);
                c
            });
        }
    }

    /// Seq of the oldest retained entry (`head + 1` when none is).
    fn first(&self, head: u64) -> u64 {
        self.pin.as_ref().map_or(head + 1, Cursor::next_seq)
    }

    /// A block (HIST-2) of the newest `count` public events with seq in `from..=to`, in
    /// `form`, cut to its newest events within [`MAX_BLOCK_BYTES`]. `None` when `whole`
    /// is set and some of them would be cut (or are no longer retained).
    pub fn block(
        &self,
        epoch: u64,
        from: u64,
        to: u64,
        count: usize,
        form: Form,
        whole: bool,
    ) -> Option<Vec<u8>> {
        if whole && from < self.first(to) {
            return None;
        }
        let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
        let mut bytes = 0usize;
        let mut cut = false;
        if let Some(pin) = &self.pin
            && count > 0
            && from <= to
        {
            // Only the newest `count` public events can be in the block: start there, so
            // that building it costs O(count) under the sequencer's lock, not O(retained).
            let skipped = self.not_public.range(from..=to).count() as u64;
            let newest = (to + 1).saturating_sub((count as u64).saturating_add(skipped));
            let mut c = pin.clone();
            c.seek(from.max(newest));
            c.entries(epoch, to, |e, _| {
                if self.not_public.contains(&e.id.seq) {
                    return true;
                }
                let mut line = Vec::with_capacity(e.line.len() + 64);
                let time = i64::try_from(e.time_ms)
                    .ok()
                    .and_then(ServerTime::from_unix_millis);
                match (form, time) {
                    (Form::Tagged, Some(t)) => {
                        // In a cluster, the stream's id (CLUSTER-6).
                        let id = e.origin.unwrap_or(e.id);
                        Tags::earlier(EventId::memory(id.epoch, id.seq), t)
                            .encode_prefix(&mut line);
                    }
                    (Form::Readable, Some(t)) => encode_earlier_prefix(&t, &mut line),
                    (_, None) => {}
                }
                line.extend_from_slice(e.line);
                bytes += line.len();
                lines.push_back(line);
                while lines.len() > count || bytes > MAX_BLOCK_BYTES {
                    if let Some(old) = lines.pop_front() {
                        bytes -= old.len();
                        cut = true;
                    }
                }
                true
            });
        }
        if whole && cut {
            return None;
        }
        let mut out = Vec::with_capacity(bytes + 64);
        ServerMessage::HistoryStart(u32::try_from(lines.len()).unwrap_or(u32::MAX))
            .encode(&mut out);
        for l in lines {
            out.extend_from_slice(&l);
        }
        ServerMessage::HistoryEnd.encode(&mut out);
        Some(out)
    }

    /// True when some public event before entry `before` is retained.
    pub fn any_before(&self, before: u64) -> bool {
        let first = self.first(before);
        self.keep > 0 && (first..before).any(|s| !self.not_public.contains(&s))
    }

    /// The backlog (HIST-5): the newest events before entry `before` (a join notice).
    pub fn backlog_block(&self, epoch: u64, before: u64, form: Form) -> Vec<u8> {
        let from = self.first(before);
        self.block(
            epoch,
            from,
            before.saturating_sub(1),
            self.backlog,
            form,
            false,
        )
        .unwrap_or_default()
    }

    /// Cluster: the local seq of the retained entry whose stream id is `origin`, among
    /// those before `before`. Bounded by the entries retained (`--history`).
    fn seq_of_origin(&self, epoch: u64, origin: EntryId, before: u64) -> Option<u64> {
        let c = self.pin.clone()?;
        let mut found = None;
        c.entries(epoch, before.saturating_sub(1), |e, _| {
            match e.origin {
                Some(o) if o == origin => {
                    found = Some(e.id.seq);
                    false
                }
                // Ids grow along the stream: past it, it is not retained.
                Some(o) if o > origin => false,
                _ => true,
            }
        });
        found
    }

    /// A resume (RESUME-2): every event after `id` and before entry `before` (the
    /// client's join notice), or `None` for a gap (RESUME-3).
    pub fn resume_block(
        &self,
        epoch: u64,
        id: &EventId,
        before: u64,
        form: Form,
    ) -> Option<Vec<u8>> {
        if self.keep == 0 {
            return None;
        }
        let (e, seq) = id.memory_parts()?;
        let seq = match &self.pin {
            // A cluster node's log: ids are the stream's (CLUSTER-7).
            Some(_) if self.origins => {
                self.seq_of_origin(epoch, EntryId { epoch: e, seq }, before)?
            }
            _ if e != epoch => return None,
            _ => seq,
        };
        if seq >= before {
            return None;
        }
        let from = seq.checked_add(1)?;
        let count = usize::try_from(before - from).unwrap_or(usize::MAX);
        self.block(epoch, from, before - 1, count, form, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MIN_BUDGET;

    #[test]
    fn hist_1_default_fits_the_default_budget_and_small_budgets_refuse() {
        assert!(fits_budget(DEFAULT_HISTORY, crate::hub::DEFAULT_LOG_BUDGET));
        assert!(!fits_budget(DEFAULT_HISTORY, MIN_BUDGET));
        let most = most_that_fit(MIN_BUDGET);
        assert!(most > 0 && fits_budget(most, MIN_BUDGET) && !fits_budget(most + 1, MIN_BUDGET));
        assert!(fits_budget(0, MIN_BUDGET));
        // The figures docs/history.md states.
        assert_eq!(most_that_fit(MIN_BUDGET), 61);
        assert_eq!(most_that_fit(crate::hub::DEFAULT_LOG_BUDGET), 13_115);
        assert_eq!(worst_span(DEFAULT_HISTORY), 10);
    }

    fn lines(block: &[u8]) -> Vec<String> {
        String::from_utf8(block.to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// HIST-1: the pin keeps exactly the last `keep` entries, and frees the rest.
    #[test]
    fn hist_1_retains_the_last_n_and_frees_older_segments() {
        let (log, mut app) = Log::new(64 << 20);
        let mut r = Retention::new(100, 20);
        let long = "x".repeat(1000);
        for i in 0..5000u64 {
            let line = format!("a: {i} {long}\n");
            let a = app.append(line.as_bytes());
            r.appended(&app, a.id.seq, true);
        }
        assert_eq!(r.first(log.head()), 4901);
        // 100 KB of lines: two or three segments, not the 5 MB appended.
        assert!(log.retained_bytes() <= 3 * crate::log::SEGMENT_COST);
        let b = r
            .block(log.epoch(), 1, log.head(), 3, Form::Readable, false)
            .unwrap();
        let got = lines(&b);
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], "Earlier events: 3");
        assert!(got[1].starts_with('[') && got[1].contains(" UTC] a: 4997 "));
        assert_eq!(got[4], "End of earlier events");
        // A resume from before the retained part is a gap; from inside it, a hit.
        let epoch = log.epoch();
        assert!(
            r.resume_block(epoch, &EventId::memory(epoch, 4899), 5001, Form::Tagged)
                .is_none()
        );
        let hit = r
            .resume_block(epoch, &EventId::memory(epoch, 4900), 5001, Form::Tagged)
            .unwrap();
        let hit = lines(&hit);
        assert_eq!(hit.len(), 102);
        assert!(
            hit[1].starts_with(&format!("@id={epoch}:4901;t="))
                && hit[1].contains(";history a: 4900 "),
            "{}",
            hit[1].get(..90).unwrap_or_default()
        );
        assert!(
            r.resume_block(epoch, &EventId::memory(epoch + 1, 4950), 5001, Form::Tagged)
                .is_none()
        );
        assert!(
            r.resume_block(
                epoch,
                &EventId::new("other-engine").unwrap(),
                5001,
                Form::Tagged
            )
            .is_none()
        );
        assert!(
            r.resume_block(epoch, &EventId::memory(epoch, 5001), 5001, Form::Tagged)
                .is_none()
        );
    }

    /// HIST-2: a block never exceeds its byte bound; a resume that would is a gap.
    #[test]
    fn hist_2_blocks_are_bounded() {
        let (log, mut app) = Log::new(64 << 20);
        let mut r = Retention::new(2000, 20);
        let long = "y".repeat(1020);
        for _ in 0..2000 {
            let a = app.append(format!("bob: {long}\n").as_bytes());
            r.appended(&app, a.id.seq, true);
        }
        let b = r
            .block(log.epoch(), 1, 2000, 2000, Form::Tagged, false)
            .unwrap();
        assert!(b.len() <= MAX_BLOCK_BYTES + 100);
        let n = lines(&b).len() - 2;
        assert!(n > 500 && n < 2000, "{n}");
        let epoch = log.epoch();
        assert!(
            r.resume_block(epoch, &EventId::memory(epoch, 1), 2001, Form::Tagged)
                .is_none()
        );
    }
}
