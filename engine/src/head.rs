//! The head: every series in memory, its recent samples in XOR chunks, and the inverted
//! index over its labels.
//!
//! Series live in two sharded maps: by label hash (to find a series from the labels a writer
//! sends) and by reference (to find it from a WAL record or a cached reference). Sharding keeps
//! concurrent appenders apart; each series has its own lock for its chunks
//! ([`series`]). The index ([`postings`]) is one structure behind a read-write lock: it only
//! changes when a series is created.
//!
//! The head also receives the WAL's replay ([`ReplayHandler`]), applying records with the same
//! infallible `apply` that commits use, so a replayed head equals the head that was lost.

pub mod postings;
pub mod series;

use hashbrown::HashTable;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

use crate::error::AppendError;
use crate::labels::intern::Interner;
use crate::labels::matcher::Matcher;
use crate::labels::{Label, Labels, eq_pairs_slice};
use crate::sample::SeriesRef;
use crate::wal::record::{ChunkEntry, DecodeError, RefSample, SeriesEntry};
use crate::wal::replay::ReplayHandler;
use postings::{Cardinality, Postings};
use series::{Applied, MemSeries, SERIES_REF_MAX, SeriesArc, SeriesLimits};

/// Shards of each series map. A power of two.
const SHARDS: usize = 64;

/// Series by label hash: the table stores only the series pointer (two series with one hash
/// are two entries), and a resize recomputes hashes from the labels.
type HashShard = RwLock<HashTable<SeriesArc>>;
/// Series by reference: like [`HashShard`], only the pointer (the key is the series' own
/// reference), 9 bytes a slot instead of the 17 of a map from reference to pointer.
type RefShard = RwLock<HashTable<SeriesArc>>;

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

#[derive(Debug)]
pub(crate) struct Head {
    by_hash: Box<[HashShard]>,
    by_ref: Box<[RefShard]>,
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
            by_ref: (0..SHARDS).map(|_| RwLock::default()).collect(),
            postings: RwLock::default(),
            interner: Interner::new(),
            next_ref: AtomicU64::new(1),
            series_count: AtomicU64::new(0),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            aliases: RwLock::default(),
            replay_index: Vec::new(),
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

    fn ref_shard(r: SeriesRef) -> usize {
        r.0 as usize & (SHARDS - 1)
    }

    /// The hash a reference shard's table files a series under.
    fn ref_hash(r: u64) -> u64 {
        FxBuildHasher.hash_one(r)
    }

    fn rehash_ref(s: &SeriesArc) -> u64 {
        Head::ref_hash(s.series_ref().0)
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
        let hash = crate::labels::stable_hash_pairs(pairs);
        read(&self.by_hash[Head::hash_shard(hash)])
            .find(Head::table_hash(hash), |s| {
                eq_pairs_slice(s.labels(), pairs)
            })
            .cloned()
    }

    /// The series with this reference, if it exists.
    pub fn get(&self, r: SeriesRef) -> Option<SeriesArc> {
        let found = read(&self.by_ref[Head::ref_shard(r)])
            .find(Head::ref_hash(r.0), |s| s.series_ref() == r)
            .cloned();
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
            drop(shard);
            let r = s.series_ref();
            let mut shard = write(&self.by_ref[Head::ref_shard(r)]);
            if let Ok(entry) = shard.find_entry(Head::ref_hash(r.0), |b| b.series_ref() == r) {
                entry.remove();
            }
        }
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
        let r = series.series_ref();
        write(&self.by_ref[Head::ref_shard(r)]).insert_unique(
            Head::ref_hash(r.0),
            SeriesArc::clone(series),
            Head::rehash_ref,
        );
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
        refs.into_iter()
            .filter_map(|r| self.get(SeriesRef(r)))
            .collect()
    }

    pub fn postings(&self) -> std::sync::RwLockReadGuard<'_, Postings> {
        read(&self.postings)
    }

    /// Every series, shard by shard.
    pub fn for_each_series(&self, mut f: impl FnMut(&SeriesArc)) {
        for shard in self.by_ref.iter() {
            let series: Vec<SeriesArc> = read(shard).iter().map(SeriesArc::clone).collect();
            for s in &series {
                f(s);
            }
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
    }
}

impl ReplayHandler for Head {
    fn on_series(&mut self, entries: &[SeriesEntry<'_>]) -> Result<(), DecodeError> {
        for e in entries {
            self.restore_series(e.series, &e.labels)?;
            let at = e.series.0 as usize;
            if at < self.replay_index.len() + REPLAY_INDEX_GROWTH_MAX {
                if at >= self.replay_index.len() {
                    self.replay_index.resize(at + 1, None);
                }
                self.replay_index[at] = self.get(e.series);
            }
        }
        Ok(())
    }

    fn on_samples(&mut self, samples: &[RefSample]) -> Result<(), DecodeError> {
        let mut i = 0;
        let mut tally = Tally::default();
        while i < samples.len() {
            // Consecutive samples of one series are applied under one lock.
            let r = samples[i].series;
            let run = samples[i..].iter().take_while(|s| s.series == r).count();
            match self.replayed(r) {
                Some(series) => series.apply_many(
                    samples[i..i + run].iter().map(|s| (s.t, s.v)),
                    &self.limits,
                    &mut tally,
                ),
                None => {
                    self.counters
                        .samples_orphaned
                        .fetch_add(run as u64, Ordering::Relaxed);
                }
            }
            i += run;
        }
        self.record(&tally);
        Ok(())
    }

    fn on_chunks(&mut self, chunks: &[ChunkEntry<'_>]) -> Result<(), DecodeError> {
        for c in chunks {
            match self.replayed(c.series) {
                Some(series) => {
                    let added = series.restore(c, &self.limits)?;
                    self.note_range((c.min_t, c.max_t));
                    self.counters
                        .samples_restored
                        .fetch_add(added, Ordering::Relaxed);
                }
                None => {
                    self.counters
                        .samples_orphaned
                        .fetch_add(u64::from(c.num_samples), Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}
