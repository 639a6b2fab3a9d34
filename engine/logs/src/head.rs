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
    pub entries: Part,
    /// Entries being sealed into a block, in timestamp order (empty but while a seal runs).
    pub frozen: Arc<Part>,
    /// A `Streams` record for it is durable in the log.
    pub logged: bool,
}

impl Stream {
    /// The newest timestamp, if it has entries.
    pub fn max_ts(&self) -> Option<i64> {
        self.entries.max_ts().max(self.frozen.max_ts())
    }

    /// Adds an entry at its place in time; `false` (and nothing added) when the stream
    /// already holds an entry with the same timestamp and line, which a sender that retried
    /// sends again.
    pub fn insert(&mut self, entry: &Entry) -> bool {
        self.entries.insert(entry)
    }

    /// The frozen entries, then the held ones: each part in time order.
    pub fn parts(&self) -> [&Part; 2] {
        [&self.frozen, &self.entries]
    }
}

/// Where an entry of a [`Part`] is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ts_ns: i64,
    /// The line's first byte in `text`; its metadata's names and values follow it.
    at: u32,
    line: u32,
    /// Its first metadata pair's lengths (name, value) in `lengths`.
    meta: u32,
    pairs: u32,
}

/// A stream's entries, in time order, held compactly: their lines, metadata names and values
/// one after the other in one string (in the order they came), and a slot per entry in time
/// order. An entry held as an [`Entry`] took about twice its bytes (two to four allocations
/// and their headers); a part takes its bytes and 24 more. Bounded by the head's size (see
/// [`crate::store::SEAL_BYTES_MAX`]), so offsets fit in `u32`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Part {
    slots: Vec<Slot>,
    text: String,
    lengths: Vec<u32>,
}

impl Part {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn max_ts(&self) -> Option<i64> {
        self.slots.last().map(|s| s.ts_ns)
    }

    /// Bytes of the lines and the metadata's names and values, as [`Entry::bytes`] counts.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    fn line(&self, slot: &Slot) -> &str {
        &self.text[slot.at as usize..(slot.at + slot.line) as usize]
    }

    /// Entry `i`'s line.
    pub fn line_of(&self, i: usize) -> &str {
        self.line(&self.slots[i])
    }

    /// Entry `i`'s metadata pairs.
    pub fn metadata(&self, i: usize) -> impl Iterator<Item = (&str, &str)> {
        let slot = self.slots[i];
        let mut at = (slot.at + slot.line) as usize;
        let first = slot.meta as usize;
        self.lengths[first..first + 2 * slot.pairs as usize]
            .chunks_exact(2)
            .map(move |l| {
                let (n, v) = (l[0] as usize, l[1] as usize);
                let name = &self.text[at..at + n];
                let value = &self.text[at + n..at + n + v];
                at += n + v;
                (name, value)
            })
    }

    /// Entry `i` into `out`, reusing its strings.
    pub fn read_into(&self, i: usize, out: &mut Entry) {
        let slot = self.slots[i];
        out.ts_ns = slot.ts_ns;
        out.line.clear();
        out.line.push_str(self.line(&slot));
        out.metadata.truncate(slot.pairs as usize);
        for (j, (name, value)) in self.metadata(i).enumerate() {
            out.set_metadata(j, name, value);
        }
    }

    /// Entry `i`.
    pub fn entry(&self, i: usize) -> Entry {
        let mut e = Entry::new(0, String::new());
        self.read_into(i, &mut e);
        e
    }

    /// The entries of `range` into `out` (replacing what it held, reusing its strings).
    pub fn read_range_into(&self, range: std::ops::Range<usize>, out: &mut Vec<Entry>) {
        out.truncate(range.len());
        let have = out.len();
        for (k, i) in range.enumerate() {
            if k < have {
                self.read_into(i, &mut out[k]);
            } else {
                out.push(self.entry(i));
            }
        }
    }

    /// The indexes of the entries in `[start_ns, end_ns)`.
    pub fn range(&self, start_ns: i64, end_ns: i64) -> std::ops::Range<usize> {
        let lo = self.slots.partition_point(|s| s.ts_ns < start_ns);
        let hi = self.slots.partition_point(|s| s.ts_ns < end_ns);
        lo..hi.max(lo)
    }

    /// Adds an entry at its place in time (after those of its time); `false` (and nothing
    /// added) if one of its time has the same line.
    pub fn insert(&mut self, entry: &Entry) -> bool {
        let at = match self.slots.last() {
            Some(last) if last.ts_ns > entry.ts_ns => {
                self.slots.partition_point(|s| s.ts_ns <= entry.ts_ns)
            }
            _ => self.slots.len(),
        };
        let mut same_time = self.slots[..at]
            .iter()
            .rev()
            .take_while(|s| s.ts_ns == entry.ts_ns);
        if same_time.any(|s| self.line(s) == entry.line) {
            return false;
        }
        let slot = Slot {
            ts_ns: entry.ts_ns,
            at: self.text.len() as u32,
            line: entry.line.len() as u32,
            meta: self.lengths.len() as u32,
            pairs: entry.metadata.len() as u32,
        };
        self.text.push_str(&entry.line);
        for (name, value) in &entry.metadata {
            self.text.push_str(name);
            self.text.push_str(value);
            self.lengths.push(name.len() as u32);
            self.lengths.push(value.len() as u32);
        }
        self.slots.insert(at, slot);
        true
    }

    /// Gives back what growing left unused (a part about to be frozen gets no more entries).
    fn shrink(&mut self) {
        self.slots.shrink_to_fit();
        self.text.shrink_to_fit();
        self.lengths.shrink_to_fit();
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
            entries: Part::default(),
            frozen: Arc::default(),
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
    pub fn apply(&mut self, r: StreamRef, entry: &Entry) -> bool {
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
    pub fn freeze(&mut self) -> Vec<(Labels, Arc<Part>)> {
        let mut out = Vec::new();
        for s in self.streams.iter_mut().flatten() {
            debug_assert!(s.frozen.is_empty(), "one seal at a time");
            if !s.entries.is_empty() {
                let mut part = std::mem::take(&mut s.entries);
                part.shrink();
                s.frozen = Arc::new(part);
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
            self.bytes -= s.frozen.bytes() as u64;
            s.frozen = Arc::default();
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
            let frozen = std::mem::take(&mut s.frozen);
            let newer = std::mem::take(&mut s.entries);
            s.entries = Arc::unwrap_or_clone(frozen);
            for i in 0..newer.len() {
                s.insert(&newer.entry(i));
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

    /// The stream's held entries, read out.
    fn held(head: &Head, r: StreamRef) -> Vec<Entry> {
        let part = &head.get(r).unwrap().entries;
        (0..part.len()).map(|i| part.entry(i)).collect()
    }

    #[test]
    fn entries_keep_time_order_and_retried_duplicates_are_dropped() {
        let mut head = Head::default();
        let r = head.get_or_create(&labels("api"));
        assert!(head.apply(r, &Entry::new(10, "b")));
        assert!(head.apply(r, &Entry::new(30, "d")));
        assert!(head.apply(r, &Entry::new(20, "c")));
        assert!(
            head.apply(r, &Entry::new(10, "a")),
            "same time, another line"
        );
        assert!(!head.apply(r, &Entry::new(20, "c")), "a retried entry");
        let lines: Vec<String> = held(&head, r).into_iter().map(|e| e.line).collect();
        assert_eq!(lines, ["b", "a", "c", "d"]);
        assert_eq!(head.entries, 4);
        assert_eq!(
            head.get(r).unwrap().entries.range(10, 30).len(),
            3,
            "end is exclusive"
        );
    }

    #[test]
    fn a_part_gives_back_each_entry_with_its_metadata_as_written() {
        let mut part = Part::default();
        let mut with_meta = Entry::new(5, "émoji ✓ line");
        with_meta.metadata = vec![
            ("trace_id".into(), "abc".into()),
            ("empty".into(), String::new()),
            ("ünïcode".into(), "välue".into()),
        ];
        assert!(part.insert(&with_meta));
        assert!(part.insert(&Entry::new(3, "")));
        assert!(part.insert(&Entry::new(4, "plain")));
        assert_eq!(part.len(), 3);
        assert_eq!(part.bytes(), with_meta.bytes() + "plain".len());
        let mut out = Vec::new();
        part.read_range_into(0..3, &mut out);
        assert_eq!(
            out,
            [Entry::new(3, ""), Entry::new(4, "plain"), with_meta.clone()]
        );
        // Reading into entries that held other strings replaces them.
        part.read_range_into(1..3, &mut out);
        assert_eq!(out, [Entry::new(4, "plain"), with_meta]);
        assert_eq!(part.range(4, 6), 1..3);
        assert_eq!(part.max_ts(), Some(5));
    }

    #[test]
    fn a_limit_keeps_the_newest_or_oldest_across_streams() {
        let mut head = Head::default();
        let a = head.get_or_create(&labels("a"));
        let b = head.get_or_create(&labels("b"));
        for t in [1, 4, 5] {
            head.apply(a, &Entry::new(t, format!("a{t}")));
        }
        for t in [2, 3, 6] {
            head.apply(b, &Entry::new(t, format!("b{t}")));
        }
        let lines = |out: Vec<(&Labels, Vec<&Entry>)>| -> Vec<Vec<String>> {
            out.into_iter()
                .map(|(_, es)| es.iter().map(|e| e.line.clone()).collect())
                .collect()
        };
        let read = |s: &Stream| -> Vec<Entry> {
            (0..s.entries.len()).map(|i| s.entries.entry(i)).collect()
        };
        let a_entries: Vec<(Labels, Vec<Entry>)> = head
            .select(&[Matcher::equal("app", "a")])
            .map(|s| (s.labels.clone(), read(s)))
            .collect();
        let all = || a_entries.iter().map(|(l, e)| (l, &e[..]));
        assert_eq!(
            lines(newest_or_oldest(all(), 0, 100, Direction::Backward, 2)),
            [["a5", "a4"]]
        );
        let any = Matcher::new(MatchKind::Regex, "app", ".+").unwrap();
        let both_entries: Vec<(Labels, Vec<Entry>)> = head
            .select(std::slice::from_ref(&any))
            .map(|s| (s.labels.clone(), read(s)))
            .collect();
        let both = || both_entries.iter().map(|(l, e)| (l, &e[..]));
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
