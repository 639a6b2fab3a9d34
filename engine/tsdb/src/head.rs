//! The head: every series in memory, its recent samples in XOR chunks, and the inverted
//! index over its labels.
//!
//! Series are found two ways: by label hash, in sharded hash tables (to find a series from the
//! labels a writer sends; sharding keeps concurrent appenders apart), and by reference, in one
//! vector sorted by reference (to find it from a postings list, a WAL record or a cached
//! reference). Each series has its own lock for its chunks ([`series`]). The index ([`postings`]) is one structure behind a read-write lock: it only
//! changes when a series is created.
//!
//! The head also receives the WAL's replay ([`wal`]), applying records with the same
//! infallible `apply` that commits use, so a replayed head equals the head that was lost.

mod pages;
pub mod series;
pub(crate) mod wal;

use hashbrown::HashTable;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use crate::error::AppendError;
use crate::record::RefSample;
use series::{Applied, MemSeries, SERIES_REF_MAX, SeriesArc, SeriesLimits};
use strata_core::codec::DecodeError;
use strata_core::labels::intern::Interner;
use strata_core::labels::matcher::Matcher;
use strata_core::labels::{Label, Labels, eq_pairs_slice};
use strata_core::postings::{Cardinality, Postings};
use strata_core::sample::SeriesRef;

/// Shards of each series map. A power of two.
const SHARDS: usize = 64;

/// Series by label hash: the table stores only the series pointer (two series with one hash
/// are two entries), and a resize recomputes hashes from the labels.
type HashShard = RwLock<HashTable<SeriesArc>>;

/// Counters of what the head has done.
#[derive(Debug, Default)]
pub(crate) struct HeadCounters {
    pub samples_in_order: AtomicU64,
    pub samples_out_of_order: AtomicU64,
    pub samples_duplicate: AtomicU64,
    pub samples_conflict: AtomicU64,
    /// Replayed samples whose series was unknown.
    pub samples_orphaned: AtomicU64,
    /// Samples loaded from checkpointed chunks.
    pub samples_restored: AtomicU64,
}

/// What a batch of applies did, counted locally and added to the shared counters and time
/// bounds once: per-sample atomics on shared cache lines cost more than the apply itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    applied: [u64; 4],
    min_t: i64,
    max_t: i64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            applied: [0; 4],
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }
}

impl Tally {
    /// Counts one sample at `t` that `apply` treated as `applied`.
    #[inline]
    pub fn note(&mut self, t: i64, applied: Applied) {
        self.applied[applied as usize] += 1;
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
    }
}

impl HeadCounters {
    fn add(&self, tally: &Tally) {
        let counters = [
            &self.samples_in_order,
            &self.samples_out_of_order,
            &self.samples_duplicate,
            &self.samples_conflict,
        ];
        for (c, n) in counters.into_iter().zip(tally.applied) {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Series by reference: one vector sorted by reference, 8 bytes a series (a hash table of
/// pointers took 9 a slot at a load of one half to seven eighths).
///
/// References are handed out in increasing order and a series never changes its own, so a new
/// series nearly always goes at the end, and a lookup is nearly always one probe: series are
/// at least one reference apart, so the series with reference `r` is at most `r - first`
/// places from the front and at least `last - r` from the back, and while no series was
/// removed (and no reference skipped) the first bound is where it is. Holes left by removed
/// series narrow to a binary search between the two bounds.
#[derive(Debug, Default)]
struct ByRef {
    /// Invariant: sorted by reference, each reference once.
    series: Vec<SeriesArc>,
}

impl ByRef {
    fn ref_at(&self, i: usize) -> u64 {
        self.series[i].series_ref().0
    }

    /// Where the series with reference `r` is (`Ok`) or would go (`Err`), searching from
    /// `from` (every series before it has a smaller reference).
    fn position_from(&self, r: u64, from: usize) -> Result<usize, usize> {
        let len = self.series.len();
        if from >= len {
            return Err(len);
        }
        let first = self.ref_at(from);
        if r <= first {
            return if r == first { Ok(from) } else { Err(from) };
        }
        let last = self.ref_at(len - 1);
        if r >= last {
            return if r == last { Ok(len - 1) } else { Err(len) };
        }
        // from < position < len - 1, within both bounds.
        let hi =
            usize::try_from(r - first).map_or(len - 1, |d| from.saturating_add(d).min(len - 1));
        if self.ref_at(hi) == r {
            return Ok(hi);
        }
        let lo = usize::try_from(last - r).map_or(from, |d| (len - 1).saturating_sub(d).max(from));
        self.series[lo..hi]
            .binary_search_by_key(&r, |s| s.series_ref().0)
            .map(|i| lo + i)
            .map_err(|i| lo + i)
    }

    fn get(&self, r: u64) -> Option<&SeriesArc> {
        self.position_from(r, 0).ok().map(|i| &self.series[i])
    }

    /// The series of the sorted references `refs` that exist, in that order.
    fn get_sorted(&self, refs: &[u64]) -> Vec<SeriesArc> {
        let mut out = Vec::with_capacity(refs.len());
        let mut from = 0;
        for &r in refs {
            match self.position_from(r, from) {
                Ok(i) => {
                    out.push(SeriesArc::clone(&self.series[i]));
                    from = i + 1;
                }
                Err(i) => from = i,
            }
        }
        out
    }

    /// Adds a series whose reference no series has.
    fn insert(&mut self, s: SeriesArc) {
        if self.series.len() == self.series.capacity() {
            // Grown by an eighth, not doubled: at most an eighth spare, where doubling leaves
            // up to half. A large block grows in place (glibc remaps it), so it costs no copy.
            self.series
                .reserve_exact((self.series.capacity() / 8).max(1024));
        }
        let r = s.series_ref().0;
        if self.series.last().is_none_or(|l| l.series_ref().0 < r) {
            self.series.push(s);
        } else if let Err(at) = self.position_from(r, 0) {
            self.series.insert(at, s);
        }
    }

    /// Removes the series with the sorted references `refs`.
    fn remove(&mut self, refs: &[u64]) {
        let mut gone: Vec<usize> = Vec::with_capacity(refs.len());
        let mut from = 0;
        for &r in refs {
            if let Ok(i) = self.position_from(r, from) {
                gone.push(i);
                from = i + 1;
            }
        }
        // One pass that moves pointers without reading the series they point to.
        let mut i = 0;
        let mut next = gone.iter().peekable();
        self.series.retain(|_| {
            let keep = next.next_if_eq(&&i).is_none();
            i += 1;
            keep
        });
    }
}

#[derive(Debug)]
pub(crate) struct Head {
    by_hash: Box<[HashShard]>,
    by_ref: RwLock<ByRef>,
    postings: RwLock<Postings>,
    interner: Interner,
    next_ref: AtomicU64,
    series_count: AtomicU64,
    /// Lower and upper bounds of every timestamp the head holds (`i64::MAX`, `i64::MIN` when
    /// empty). The lower bound is exact after [`Head::recompute_min_t`]; between, it may be
    /// lower than the truth, never higher.
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Series under a second reference, by that reference (see `restore_series`): rare, so
    /// kept apart from `by_ref`, whose entries are keyed by the series' own reference.
    aliases: RwLock<FxHashMap<u64, SeriesArc>>,
    /// During replay: series by reference, without locks or hashing (references are dense).
    replay_index: Vec<Option<SeriesArc>>,
    /// During replay: the samples of the record being applied (a buffer kept for the next).
    replay_buffer: Vec<RefSample>,
    pub limits: SeriesLimits,
    pub series_max: AtomicU64,
    pub counters: HeadCounters,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Head {
    pub fn new(limits: SeriesLimits, series_max: u64) -> Head {
        Head {
            by_hash: (0..SHARDS).map(|_| RwLock::default()).collect(),
            by_ref: RwLock::default(),
            postings: RwLock::default(),
            interner: Interner::new(),
            next_ref: AtomicU64::new(1),
            series_count: AtomicU64::new(0),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            aliases: RwLock::default(),
            replay_index: Vec::new(),
            replay_buffer: Vec::new(),
            limits,
            series_max: AtomicU64::new(series_max),
            counters: HeadCounters::default(),
        }
    }

    fn hash_shard(hash: u64) -> usize {
        (hash >> 58) as usize & (SHARDS - 1)
    }

    /// The hash a shard's table files a series under: the label hash with the bits that chose
    /// the shard (constant within it) moved out of the top, where the table takes its tags.
    fn table_hash(hash: u64) -> u64 {
        hash.rotate_left(6)
    }

    /// Recomputes a stored series' table hash (when a table grows).
    fn rehash(s: &SeriesArc) -> u64 {
        Head::table_hash(s.stable_hash())
    }

    /// Records what a batch of applies did.
    pub fn record(&self, tally: &Tally) {
        self.counters.add(tally);
        self.note_range((tally.min_t, tally.max_t));
    }

    /// Records that samples in `[lo, hi]` were added.
    pub fn note_range(&self, (lo, hi): (i64, i64)) {
        if lo <= hi {
            self.min_t.fetch_min(lo, Ordering::Relaxed);
            self.max_t.fetch_max(hi, Ordering::Relaxed);
        }
    }

    /// Bounds of the head's timestamps, `None` when it holds no sample.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let lo = self.min_t.load(Ordering::Relaxed);
        let hi = self.max_t.load(Ordering::Relaxed);
        (lo <= hi).then_some((lo, hi))
    }

    /// Sets the lower bound to the oldest timestamp held, after data was moved to a block.
    /// Only the maintenance thread calls it; samples added during the walk lower the bound
    /// themselves, so it is never above the truth once this returns.
    pub fn recompute_min_t(&self) {
        self.min_t.store(i64::MAX, Ordering::Relaxed);
        let mut min = i64::MAX;
        self.for_each_series(|s| {
            if let Some((lo, _)) = s.time_range() {
                min = min.min(lo);
            }
        });
        self.min_t.fetch_min(min, Ordering::Relaxed);
    }

    /// Number of series.
    pub fn num_series(&self) -> u64 {
        self.series_count.load(Ordering::Relaxed)
    }

    /// The series with these labels, if it exists.
    pub fn get_by_labels(&self, labels: &Labels, hash: u64) -> Option<SeriesArc> {
        read(&self.by_hash[Head::hash_shard(hash)])
            .find(Head::table_hash(hash), |s| s.has_labels(labels))
            .cloned()
    }

    /// The series whose labels are the canonical `pairs`, if it exists.
    pub fn get_by_pairs(&self, pairs: &[(&str, &str)]) -> Option<SeriesArc> {
        let hash = strata_core::labels::stable_hash_pairs(pairs);
        read(&self.by_hash[Head::hash_shard(hash)])
            .find(Head::table_hash(hash), |s| {
                eq_pairs_slice(s.labels(), pairs)
            })
            .cloned()
    }

    /// For each of the canonical label sets `keys` (each with its
    /// [`stable_hash_pairs`](strata_core::labels::stable_hash_pairs)), the series it names,
    /// if that exists, pushed to `out`.
    ///
    /// Looking series up one by one costs a cache miss or three each (the table, the series,
    /// its labels) when the head is larger than the cache, as in a catch-up that sends one
    /// sample of each of thousands of series per request. Those misses cannot overlap: the
    /// shard's lock and the reference count are atomic operations, and one waits for every
    /// load before it. Here every shard is read-locked once for the whole batch (in index
    /// order, as no other path holds two shard locks, so it cannot deadlock; a writer waits
    /// at most for this batch), and keys go in groups: first each key's probe touches the
    /// table and the series it finds without using what it reads, so the group's misses
    /// overlap, then the real probes run from cache and the found series are cloned.
    pub fn get_many_by_pairs(
        &self,
        keys: &[(u64, &[(&str, &str)])],
        out: &mut Vec<Option<SeriesArc>>,
    ) {
        const GROUP: usize = 8;
        let tables: Vec<_> = self.by_hash.iter().map(read).collect();
        for group in keys.chunks(GROUP) {
            for &(hash, _) in group {
                tables[Head::hash_shard(hash)].find(Head::table_hash(hash), |s| {
                    std::hint::black_box(s.labels().first().map(|l| l.name().len()));
                    false
                });
            }
            out.extend(group.iter().map(|&(hash, pairs)| {
                tables[Head::hash_shard(hash)]
                    .find(Head::table_hash(hash), |s| {
                        eq_pairs_slice(s.labels(), pairs)
                    })
                    .cloned()
            }));
        }
    }

    /// The series with each of the references `refs`, where it exists, under one lock.
    pub fn get_many(&self, refs: &[SeriesRef], out: &mut Vec<Option<SeriesArc>>) {
        let by_ref = read(&self.by_ref);
        let mut aliases = None;
        out.extend(refs.iter().map(|r| {
            by_ref.get(r.0).cloned().or_else(|| {
                aliases
                    .get_or_insert_with(|| read(&self.aliases))
                    .get(&r.0)
                    .cloned()
            })
        }));
    }

    /// The series with this reference, if it exists.
    pub fn get(&self, r: SeriesRef) -> Option<SeriesArc> {
        let found = read(&self.by_ref).get(r.0).cloned();
        found.or_else(|| read(&self.aliases).get(&r.0).cloned())
    }

    /// The series with these labels, created (unlogged) if it does not exist yet. Returns
    /// whether it was created.
    pub fn get_or_create(&self, labels: &Labels) -> Result<(SeriesArc, bool), AppendError> {
        let hash = labels.stable_hash();
        if let Some(s) = self.get_by_labels(labels, hash) {
            return Ok((s, false));
        }
        let mut shard = write(&self.by_hash[Head::hash_shard(hash)]);
        if let Some(s) = shard.find(Head::table_hash(hash), |s| s.has_labels(labels)) {
            return Ok((SeriesArc::clone(s), false));
        }
        let series_max = self.series_max.load(Ordering::Relaxed);
        if self.series_count.load(Ordering::Relaxed) >= series_max {
            return Err(AppendError::LimitExceeded {
                what: "head series",
                max: series_max,
            });
        }
        let r = SeriesRef(self.next_ref.fetch_add(1, Ordering::Relaxed));
        let series = self.new_series(r, labels);
        shard.insert_unique(
            Head::table_hash(hash),
            SeriesArc::clone(&series),
            Head::rehash,
        );
        drop(shard);
        self.insert_by_ref(&series);
        Ok((series, true))
    }

    /// The series with these labels, created if needed even past `series_max`: for a commit
    /// whose series was removed while it was being built (the series existed when appended).
    pub fn recreate(&self, labels: &Labels) -> SeriesArc {
        let hash = labels.stable_hash();
        let mut shard = write(&self.by_hash[Head::hash_shard(hash)]);
        if let Some(s) = shard.find(Head::table_hash(hash), |s| s.has_labels(labels)) {
            return SeriesArc::clone(s);
        }
        let r = SeriesRef(self.next_ref.fetch_add(1, Ordering::Relaxed));
        let series = self.new_series(r, labels);
        shard.insert_unique(
            Head::table_hash(hash),
            SeriesArc::clone(&series),
            Head::rehash,
        );
        drop(shard);
        self.insert_by_ref(&series);
        series
    }

    /// Drops series that hold no sample. The caller makes sure no commit is in flight (commits
    /// that still hold one of them recreate it, see [`MemSeries::is_removed`]). Returns how
    /// many were dropped.
    pub fn remove_empty(&self, candidates: &[SeriesArc]) -> usize {
        let mut victims: Vec<&SeriesArc> = Vec::new();
        for s in candidates {
            if !s.is_removed() && s.time_range().is_none() {
                // Marked at once: a candidate listed twice is taken once.
                s.set_removed();
                victims.push(s);
            }
        }
        if victims.is_empty() {
            return 0;
        }
        {
            let mut aliases = write(&self.aliases);
            if !aliases.is_empty() {
                aliases.retain(|_, s| !s.is_removed());
            }
        }
        for s in &victims {
            let hash = s.stable_hash();
            let mut shard = write(&self.by_hash[Head::hash_shard(hash)]);
            if let Ok(entry) = shard.find_entry(Head::table_hash(hash), |b| SeriesArc::ptr_eq(b, s))
            {
                entry.remove();
            }
        }
        let mut refs: Vec<u64> = victims.iter().map(|s| s.series_ref().0).collect();
        refs.sort_unstable();
        write(&self.by_ref).remove(&refs);
        let pairs: Vec<(SeriesRef, &[Label])> = victims
            .iter()
            .map(|s| (s.series_ref(), s.labels()))
            .collect();
        write(&self.postings).remove(&pairs);
        self.series_count
            .fetch_sub(victims.len() as u64, Ordering::Relaxed);
        victims.len()
    }

    /// A new series named by `labels` (interned), not yet logged.
    fn new_series(&self, r: SeriesRef, labels: &Labels) -> SeriesArc {
        let interned = labels
            .iter()
            .map(|l| self.interner.intern_label(l.name(), l.value()));
        SeriesArc::new(MemSeries::new(r, false), interned)
    }

    fn insert_by_ref(&self, series: &SeriesArc) {
        self.file_by_ref(series);
        write(&self.postings).add(series.series_ref(), series.labels());
        self.series_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Files a new series under its own reference, which no series has yet.
    fn file_by_ref(&self, series: &SeriesArc) {
        write(&self.by_ref).insert(SeriesArc::clone(series));
    }

    /// Recreates a series from a WAL or checkpoint record.
    fn restore_series(&self, r: SeriesRef, pairs: &[(&str, &str)]) -> Result<(), DecodeError> {
        if r.0 > SERIES_REF_MAX {
            return Err(DecodeError("series record holds a reference out of range"));
        }
        let mut labels = Vec::with_capacity(pairs.len());
        for (n, v) in pairs {
            labels.push(self.interner.intern_label(n, v));
        }
        let labels = Labels::from_sorted(labels)
            .map_err(|_| DecodeError("series record holds invalid labels"))?;
        if let Some(existing) = self.get(r) {
            return if existing.has_labels(&labels) {
                Ok(())
            } else {
                Err(DecodeError(
                    "series record reuses a reference for other labels",
                ))
            };
        }
        let hash = labels.stable_hash();
        let mut shard = write(&self.by_hash[Head::hash_shard(hash)]);
        if let Some(existing) = shard.find(Head::table_hash(hash), |s| s.has_labels(&labels)) {
            // The series was dropped from the head (it held no data) and created again under
            // a new reference before the checkpoint that forgets the old one: both records are
            // replayed. The new reference names the same series.
            let existing = SeriesArc::clone(existing);
            drop(shard);
            write(&self.aliases).insert(r.0, existing);
            self.next_ref.fetch_max(r.0 + 1, Ordering::Relaxed);
            return Ok(());
        }
        let series = SeriesArc::new(MemSeries::new(r, true), labels.iter().cloned());
        shard.insert_unique(
            Head::table_hash(hash),
            SeriesArc::clone(&series),
            Head::rehash,
        );
        drop(shard);
        self.file_by_ref(&series);
        write(&self.postings).add_unordered(r, series.labels());
        self.series_count.fetch_add(1, Ordering::Relaxed);
        self.next_ref.fetch_max(r.0 + 1, Ordering::Relaxed);
        Ok(())
    }

    /// The series matching all `matchers`, in reference order.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesArc> {
        let refs = read(&self.postings).select(matchers);
        // The postings hold series by their own references only (never by an alias).
        read(&self.by_ref).get_sorted(&refs)
    }

    pub fn postings(&self) -> std::sync::RwLockReadGuard<'_, Postings> {
        read(&self.postings)
    }

    /// Every series, in reference order.
    pub fn for_each_series(&self, mut f: impl FnMut(&SeriesArc)) {
        let series: Vec<SeriesArc> = read(&self.by_ref).series.clone();
        for s in &series {
            f(s);
        }
    }

    pub fn cardinality(&self, limit: usize) -> Cardinality {
        read(&self.postings).cardinality(limit)
    }

    pub fn interner(&self) -> &Interner {
        &self.interner
    }
}

/// References above the replay index's length plus this are looked up in the maps instead (a
/// damaged record must not make the index allocate without bound).
const REPLAY_INDEX_GROWTH_MAX: usize = 1 << 20;

impl Head {
    /// The series with reference `r` during replay.
    fn replayed(&self, r: SeriesRef) -> Option<SeriesArc> {
        match self.replay_index.get(r.0 as usize) {
            Some(Some(s)) => Some(SeriesArc::clone(s)),
            _ => self.get(r),
        }
    }

    /// Ends replay: sorts the postings restored out of order, drops the replay index.
    pub fn finish_replay(&mut self) {
        self.postings
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .finish_unordered();
        self.replay_index = Vec::new();
        self.replay_buffer = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn series(r: u64) -> SeriesArc {
        let labels = Labels::new([("__name__", "m")]).unwrap();
        SeriesArc::new(MemSeries::new(SeriesRef(r), false), labels.iter().cloned())
    }

    proptest! {
        /// The sorted vector finds exactly the series a set of references holds, one at a
        /// time and sorted lists at once, whatever order series came and went in: appended
        /// in order (one probe), out of order, with holes from removals and skipped references.
        #[test]
        fn series_by_reference_agree_with_a_set(
            ops in proptest::collection::vec((0u8..5, 1u64..400), 1..300),
            probes in proptest::collection::vec(0u64..420, 0..60),
        ) {
            let mut by_ref = ByRef::default();
            let mut model: BTreeSet<u64> = BTreeSet::new();
            let mut next = 1u64;
            for (kind, r) in ops {
                match kind {
                    // The common case: the next reference.
                    0 | 1 => {
                        if model.insert(next) {
                            by_ref.insert(series(next));
                        }
                        next += 1;
                    }
                    // Out of order (replay, or a race between two creators).
                    2 => {
                        if model.insert(r) {
                            by_ref.insert(series(r));
                        }
                        next = next.max(r + 1);
                    }
                    // Skipped references.
                    3 => next += r % 7,
                    _ => {
                        let gone: Vec<u64> = model.range(r..r + 5).copied().collect();
                        for g in &gone {
                            model.remove(g);
                        }
                        by_ref.remove(&gone);
                    }
                }
            }
            let held: Vec<u64> = by_ref.series.iter().map(|s| s.series_ref().0).collect();
            prop_assert_eq!(&held, &model.iter().copied().collect::<Vec<_>>());
            for &p in &probes {
                prop_assert_eq!(by_ref.get(p).map(|s| s.series_ref().0), model.get(&p).copied());
            }
            let mut sorted = probes.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let found: Vec<u64> = by_ref.get_sorted(&sorted).iter().map(|s| s.series_ref().0).collect();
            let expected: Vec<u64> = sorted.into_iter().filter(|p| model.contains(p)).collect();
            prop_assert_eq!(found, expected);
        }
    }
}
