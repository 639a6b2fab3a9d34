//! The head: every stream the store knows, found by its labels or through the shared inverted
//! index, each with its entries in memory in timestamp order.
//!
//! A stream is created in the head when a batch first names it, before the batch is logged,
//! and marked logged once a commit that carried its `Streams` record is durable; a commit
//! that fails leaves it unlogged and without entries, and the next commit that names it logs
//! it again (replay accepts the same stream twice with the same labels). Entries are applied
//! only after their commit is durable, so nothing a query sees can be lost by a crash.
//!
//! Sealing freezes every stream's entries (they stay visible, beside the entries written
//! after the freeze) while they are written into a block, and releases them once the block
//! stands for them; streams left without entries are then forgotten.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::postings::Postings;
use strata_core::sample::SeriesRef;

use crate::entry::{Direction, Entry, StreamRef};

/// One stream in the head.
#[derive(Debug)]
pub(crate) struct Stream {
    pub labels: Labels,
    /// In timestamp order; entries with one timestamp in the order they were written.
    pub entries: Vec<Entry>,
    /// Entries being sealed into a block, in timestamp order (empty but while a seal runs).
    pub frozen: Arc<[Entry]>,
    /// A `Streams` record for it is durable in the log.
    pub logged: bool,
}

impl Stream {
    /// The newest timestamp, if it has entries.
    pub fn max_ts(&self) -> Option<i64> {
        let held = self.entries.last().map(|e| e.ts_ns);
        let frozen = self.frozen.last().map(|e| e.ts_ns);
        held.max(frozen)
    }

    /// Adds an entry at its place in time; `false` (and nothing added) when the stream
    /// already holds an entry with the same timestamp and line, which a sender that retried
    /// sends again.
    pub fn insert(&mut self, entry: Entry) -> bool {
        let at = match self.entries.last() {
            Some(last) if last.ts_ns > entry.ts_ns => {
                self.entries.partition_point(|e| e.ts_ns <= entry.ts_ns)
            }
            _ => self.entries.len(),
        };
        let same_time = self.entries[..at]
            .iter()
            .rev()
            .take_while(|e| e.ts_ns == entry.ts_ns);
        if same_time.into_iter().any(|e| e.line == entry.line) {
            return false;
        }
        self.entries.insert(at, entry);
        true
    }
}

/// Every stream, by reference (dense from 1) and by labels, and the label index over them.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// Stream `r` at `r - 1`; `None` for a reference never used (a gap left by damage).
    streams: Vec<Option<Stream>>,
    /// Looked up once an entry on push (Fx: a stream's labels are short, and SipHash was a
    /// twentieth of the ingest's CPU).
    by_labels: FxHashMap<Labels, StreamRef>,
    postings: Postings,
    /// Entries and their bytes, as [`Entry::bytes`] counts them.
    pub entries: u64,
    pub bytes: u64,
}

impl Head {
    pub fn num_streams(&self) -> usize {
        self.by_labels.len()
    }

    pub fn find(&self, labels: &Labels) -> Option<StreamRef> {
        self.by_labels.get(labels).copied()
    }

    pub fn get(&self, r: StreamRef) -> Option<&Stream> {
        let i = usize::try_from(r.0).ok()?.checked_sub(1)?;
        self.streams.get(i)?.as_ref()
    }

    pub fn get_mut(&mut self, r: StreamRef) -> Option<&mut Stream> {
        let i = usize::try_from(r.0).ok()?.checked_sub(1)?;
        self.streams.get_mut(i)?.as_mut()
    }

    /// The reference the next new stream gets.
    fn next_ref(&self) -> StreamRef {
        StreamRef(self.streams.len() as u64 + 1)
    }

    /// The stream with `labels`, created (unlogged, empty) if new.
    pub fn get_or_create(&mut self, labels: &Labels) -> StreamRef {
        if let Some(r) = self.find(labels) {
            return r;
        }
        let r = self.next_ref();
        self.insert_stream(r, labels.clone(), false);
        r
    }

    /// Puts a stream at reference `r` (which must be free).
    fn insert_stream(&mut self, r: StreamRef, labels: Labels, logged: bool) {
        let i = (r.0 - 1) as usize;
        if self.streams.len() <= i {
            self.streams.resize_with(i + 1, || None);
        }
        self.postings.add(SeriesRef(r.0), labels.as_slice());
        self.by_labels.insert(labels.clone(), r);
        self.streams[i] = Some(Stream {
            labels,
            entries: Vec::new(),
            frozen: Arc::from([]),
            logged,
        });
    }

    /// A stream read back from the log: new, or the same one logged again. Returns the
    /// reference its entries go to: `r`, or the one its labels already have (a stream a seal
    /// forgot was created again under a new reference while the log naming the old one was
    /// kept; `r` then stays taken). `Err` when `r` is taken by other labels.
    pub fn restore_stream(
        &mut self,
        r: StreamRef,
        labels: Labels,
    ) -> Result<StreamRef, &'static str> {
        // References are dense from 1; a gap is a stream a failed commit created. One far
        // beyond the others would make the table huge: damage, not data.
        if r.0 == 0 || r.0 > self.streams.len() as u64 + (1 << 24) {
            return Err("a stream reference out of range");
        }
        match (self.get(r), self.find(&labels)) {
            (Some(s), _) if s.labels == labels => Ok(r),
            (Some(_), _) => Err("a stream reference logged again with other labels"),
            (None, Some(known)) => {
                let i = (r.0 - 1) as usize;
                if self.streams.len() <= i {
                    self.streams.resize_with(i + 1, || None);
                }
                Ok(known)
            }
            (None, None) => {
                self.insert_stream(r, labels, true);
                Ok(r)
            }
        }
    }

    /// Adds an entry to stream `r`; `false` if it was a duplicate.
    pub fn apply(&mut self, r: StreamRef, entry: Entry) -> bool {
        let bytes = entry.bytes() as u64;
        let Some(stream) = self.get_mut(r) else {
            return false;
        };
        if !stream.insert(entry) {
            return false;
        }
        self.entries += 1;
        self.bytes += bytes;
        true
    }

    /// Freezes every stream's entries for a seal: each stream with entries gives its labels
    /// and its entries, which stay visible (see [`Stream::frozen`]) until
    /// [`Head::release_frozen`] or [`Head::thaw`].
    pub fn freeze(&mut self) -> Vec<(Labels, Arc<[Entry]>)> {
        let mut out = Vec::new();
        for s in self.streams.iter_mut().flatten() {
            debug_assert!(s.frozen.is_empty(), "one seal at a time");
            if !s.entries.is_empty() {
                s.frozen = Arc::from(std::mem::take(&mut s.entries));
                out.push((s.labels.clone(), Arc::clone(&s.frozen)));
            }
        }
        out
    }

    /// Drops the frozen entries, now that a block holds them, and forgets the streams left
    /// without entries. Returns the entries dropped.
    pub fn release_frozen(&mut self) -> u64 {
        let mut released = 0;
        let mut gone: Vec<(SeriesRef, Labels)> = Vec::new();
        for (i, slot) in self.streams.iter_mut().enumerate() {
            let Some(s) = slot.as_mut() else { continue };
            if s.frozen.is_empty() {
                continue;
            }
            released += s.frozen.len() as u64;
            self.bytes -= s.frozen.iter().map(|e| e.bytes() as u64).sum::<u64>();
            s.frozen = Arc::from([]);
            if s.entries.is_empty()
                && let Some(s) = slot.take()
            {
                gone.push((SeriesRef(i as u64 + 1), s.labels));
            }
        }
        self.entries -= released;
        for (_, labels) in &gone {
            self.by_labels.remove(labels);
        }
        let removed: Vec<(SeriesRef, &[strata_core::labels::Label])> =
            gone.iter().map(|(r, l)| (*r, l.as_slice())).collect();
        self.postings.remove(&removed);
        released
    }

    /// Gives the frozen entries back to their streams after a seal that failed.
    pub fn thaw(&mut self) {
        for s in self.streams.iter_mut().flatten() {
            if s.frozen.is_empty() {
                continue;
            }
            let frozen = std::mem::replace(&mut s.frozen, Arc::from([]));
            let newer = std::mem::take(&mut s.entries);
            s.entries = frozen.to_vec();
            for e in newer {
                s.insert(e);
            }
        }
    }

    /// Every stream the head holds, with its reference: what a checkpoint keeps.
    pub fn streams(&self) -> impl Iterator<Item = (StreamRef, &Stream)> {
        self.streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((StreamRef(i as u64 + 1), s.as_ref()?)))
    }

    /// The streams matching every matcher.
    pub fn select<'h>(
        &'h self,
        matchers: &[Matcher],
    ) -> impl Iterator<Item = &'h Stream> + use<'h> {
        self.postings
            .select(matchers)
            .into_iter()
            .filter_map(|r| self.get(StreamRef(r)))
    }

    /// Label names of the streams that have entries, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.postings.label_names()
    }

    /// Values of `name` among the streams, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.label_values(name)
    }
}

/// The entries of sorted `entries` in `[start_ns, end_ns)`.
pub(crate) fn in_range(entries: &[Entry], start_ns: i64, end_ns: i64) -> &[Entry] {
    let lo = entries.partition_point(|e| e.ts_ns < start_ns);
    let hi = entries.partition_point(|e| e.ts_ns < end_ns);
    &entries[lo..hi.max(lo)]
}

/// The `limit` newest (`Backward`) or oldest (`Forward`) of sorted `entries` in
/// `[start_ns, end_ns)`: all a query with that limit can use of them.
pub(crate) fn ends(
    entries: &[Entry],
    start_ns: i64,
    end_ns: i64,
    direction: Direction,
    limit: usize,
) -> &[Entry] {
    let range = in_range(entries, start_ns, end_ns);
    match direction {
        Direction::Backward => &range[range.len().saturating_sub(limit)..],
        Direction::Forward => &range[..range.len().min(limit)],
    }
}

/// Of the entries in `[start_ns, end_ns)` of `streams` (each a stream's labels and its
/// entries in time order), the `limit` newest (`Backward`) or oldest (`Forward`) across all of
/// them, per stream in `direction`'s order: what a Loki log query returns. Streams without any
/// of them are left out.
pub(crate) fn newest_or_oldest<'s>(
    streams: impl Iterator<Item = (&'s Labels, &'s [Entry])>,
    start_ns: i64,
    end_ns: i64,
    direction: Direction,
    limit: usize,
) -> Vec<(&'s Labels, Vec<&'s Entry>)> {
    // Each stream can give at most `limit`: its newest (or oldest) ones.
    let mut candidates: Vec<(i64, usize, usize)> = Vec::new();
    let mut found: Vec<(&Labels, &[Entry])> = Vec::new();
    for (labels, entries) in streams {
        let range = ends(entries, start_ns, end_ns, direction, limit);
        if range.is_empty() {
            continue;
        }
        let s = found.len();
        candidates.extend(range.iter().enumerate().map(|(i, e)| (e.ts_ns, s, i)));
        found.push((labels, range));
    }
    match direction {
        Direction::Backward => candidates.sort_unstable_by(|a, b| b.cmp(a)),
        Direction::Forward => candidates.sort_unstable(),
    }
    candidates.truncate(limit);
    // Back in stream order, each stream's entries in the query's direction.
    candidates.sort_unstable_by_key(|&(_, s, i)| {
        (
            s,
            match direction {
                Direction::Backward => usize::MAX - i,
                Direction::Forward => i,
            },
        )
    });
    let mut out: Vec<(&Labels, Vec<&Entry>)> = Vec::new();
    let mut current = usize::MAX;
    for (_, s, i) in candidates {
        if s != current {
            out.push((found[s].0, Vec::new()));
            current = s;
        }
        if let Some(last) = out.last_mut() {
            last.1.push(&found[s].1[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::labels::matcher::MatchKind;

    fn labels(app: &str) -> Labels {
        Labels::new([("app", app)]).unwrap()
    }

    #[test]
    fn entries_keep_time_order_and_retried_duplicates_are_dropped() {
        let mut head = Head::default();
        let r = head.get_or_create(&labels("api"));
        assert!(head.apply(r, Entry::new(10, "b")));
        assert!(head.apply(r, Entry::new(30, "d")));
        assert!(head.apply(r, Entry::new(20, "c")));
        assert!(
            head.apply(r, Entry::new(10, "a")),
            "same time, another line"
        );
        assert!(!head.apply(r, Entry::new(20, "c")), "a retried entry");
        let lines: Vec<&str> = head
            .get(r)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["b", "a", "c", "d"]);
        assert_eq!(head.entries, 4);
        assert_eq!(
            in_range(&head.get(r).unwrap().entries, 10, 30).len(),
            3,
            "end is exclusive"
        );
    }

    #[test]
    fn a_limit_keeps_the_newest_or_oldest_across_streams() {
        let mut head = Head::default();
        let a = head.get_or_create(&labels("a"));
        let b = head.get_or_create(&labels("b"));
        for t in [1, 4, 5] {
            head.apply(a, Entry::new(t, format!("a{t}")));
        }
        for t in [2, 3, 6] {
            head.apply(b, Entry::new(t, format!("b{t}")));
        }
        let lines = |out: Vec<(&Labels, Vec<&Entry>)>| -> Vec<Vec<String>> {
            out.into_iter()
                .map(|(_, es)| es.iter().map(|e| e.line.clone()).collect())
                .collect()
        };
        let all = || {
            head.select(&[Matcher::equal("app", "a")])
                .map(|s| (&s.labels, &s.entries[..]))
        };
        assert_eq!(
            lines(newest_or_oldest(all(), 0, 100, Direction::Backward, 2)),
            [["a5", "a4"]]
        );
        let any = Matcher::new(MatchKind::Regex, "app", ".+").unwrap();
        let both = || {
            head.select(std::slice::from_ref(&any))
                .map(|s| (&s.labels, &s.entries[..]))
        };
        assert_eq!(
            lines(newest_or_oldest(both(), 0, 100, Direction::Backward, 3)),
            [vec!["a5", "a4"], vec!["b6"]]
        );
        assert_eq!(
            lines(newest_or_oldest(both(), 0, 100, Direction::Forward, 3)),
            [vec!["a1"], vec!["b2", "b3"]]
        );
        assert_eq!(
            lines(newest_or_oldest(both(), 2, 5, Direction::Forward, 100)),
            [vec!["a4"], vec!["b2", "b3"]]
        );
    }
}
