//! The appender: a batch of samples validated as they are appended, and its commit (WAL
//! first, then the head), in the order the module docs of `db` give.

use std::sync::atomic::Ordering;

use rustc_hash::FxHashMap;
use strata_core::error::StorageError;
use strata_core::labels::Labels;
use strata_core::sample::{Sample, SeriesRef};
use strata_wal::frame::{RECORD_PAYLOAD_BYTES_MAX, encode_frame};

use super::Inner;
use super::report::CommitStats;
use crate::error::{AppendError, CommitError};
use crate::head::Tally;
use crate::head::series::{SeriesArc, SeriesGuard, Verdict};
use crate::head::wal::encode_series_record;
use crate::record::{self, RefSample, encode_samples};

/// A batch of samples. Samples are validated as they are appended; nothing is written or
/// visible until [`Appender::commit`]. Dropping an appender discards its batch.
#[derive(Debug)]
pub struct Appender<'a> {
    db: &'a Inner,
    /// The series this batch touches, with the newest sample appended to each.
    series: Vec<(SeriesArc, Option<Sample>)>,
    /// Series reference to index in `series`.
    index: FxHashMap<u64, usize>,
    /// Index in `series`, and the sample.
    samples: Vec<(u32, Sample)>,
    /// Samples already stored with the same value: acknowledged without being written, unless
    /// the WAL has lost samples the head holds (then they are written again).
    duplicates: Vec<(u32, Sample)>,
    /// The clock's reading for this batch.
    now_ms: Option<i64>,
}

impl<'a> Appender<'a> {
    /// An empty batch for the database `db`.
    pub(super) fn new(db: &'a Inner) -> Appender<'a> {
        Appender {
            db,
            series: Vec::new(),
            index: FxHashMap::default(),
            samples: Vec::new(),
            duplicates: Vec::new(),
            now_ms: None,
        }
    }

    /// Makes room for a batch of `samples` samples over `series` series, so that a large
    /// batch (a remote-write request of thousands of series) does not grow its tables step by
    /// step, copying and rehashing each time.
    pub fn reserve(&mut self, series: usize, samples: usize) {
        self.series.reserve(series);
        self.index.reserve(series);
        self.samples.reserve(samples);
    }

    /// Appends a sample to the series with `labels` (created if new). Returns the series'
    /// reference, which [`Appender::append_ref`] accepts to skip the label lookup.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        self.check_open()?;
        if labels.is_empty() {
            return Err(AppendError::NoLabels);
        }
        let (series, _) = self.db.head.get_or_create(labels)?;
        let r = series.series_ref();
        let i = self.slot(series);
        self.push(i, t, v)?;
        Ok(r)
    }

    /// Appends a sample to the series with labels `pairs`, as [`Appender::append`] does with
    /// `Labels::new(pairs)`. When the pairs are already canonical (sorted by name, no empty
    /// value, as remote-write senders send them) and the series exists, nothing is allocated.
    pub fn append_pairs(
        &mut self,
        pairs: &[(&str, &str)],
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        self.check_open()?;
        if !pairs.is_empty()
            && strata_core::labels::is_canonical(pairs)
            && let Some(series) = self.db.head.get_by_pairs(pairs)
        {
            let r = series.series_ref();
            let i = self.slot(series);
            self.push(i, t, v)?;
            return Ok(r);
        }
        let labels = Labels::new(pairs.iter().copied())?;
        self.append(&labels, t, v)
    }

    /// Looks up the series that each of the label sets `sets` names, all at once (faster than
    /// one by one when the series are many and out of cache: see `Head::get_many_by_pairs`),
    /// and adds those that exist to the batch. Returns each set's series reference, for
    /// [`Appender::append_ref`], or `None` where the set names no series yet or is not
    /// canonical (sorted by name, no empty value); append those with
    /// [`Appender::append_pairs`], which creates the series.
    pub fn resolve(
        &mut self,
        sets: &[&[(&str, &str)]],
    ) -> Result<Vec<Option<SeriesRef>>, AppendError> {
        self.check_open()?;
        let mut wanted = Vec::with_capacity(sets.len());
        let mut keys = Vec::with_capacity(sets.len());
        for (i, &pairs) in sets.iter().enumerate() {
            if !pairs.is_empty() && strata_core::labels::is_canonical(pairs) {
                wanted.push(i);
                keys.push((strata_core::labels::stable_hash_pairs(pairs), pairs));
            }
        }
        let mut found = Vec::with_capacity(keys.len());
        self.db.head.get_many_by_pairs(&keys, &mut found);
        let mut refs = vec![None; sets.len()];
        for (i, series) in wanted.into_iter().zip(found) {
            if let Some(series) = series {
                refs[i] = Some(series.series_ref());
                self.slot(series);
            }
        }
        Ok(refs)
    }

    /// Adds the series with references `refs` to the batch, all at once; returns whether
    /// each exists (a series the head no longer holds does not: append its samples by
    /// labels). Then [`Appender::append_ref`] finds them in the batch.
    pub fn resolve_refs(&mut self, refs: &[SeriesRef]) -> Result<Vec<bool>, AppendError> {
        self.check_open()?;
        let mut found = Vec::with_capacity(refs.len());
        self.db.head.get_many(refs, &mut found);
        Ok(found
            .into_iter()
            .map(|series| series.map(|s| self.slot(s)).is_some())
            .collect())
    }

    /// Appends a sample to a series known by reference.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        self.check_open()?;
        let i = match self.index.get(&r.0) {
            Some(&i) => i,
            None => {
                let series = self.db.head.get(r).ok_or(AppendError::UnknownSeries(r))?;
                self.slot(series)
            }
        };
        self.push(i, t, v)
    }

    fn check_open(&self) -> Result<(), AppendError> {
        if self.db.closed.load(Ordering::Relaxed) {
            Err(AppendError::Closed)
        } else {
            Ok(())
        }
    }

    fn slot(&mut self, series: SeriesArc) -> usize {
        *self.index.entry(series.series_ref().0).or_insert_with(|| {
            self.series.push((series, None));
            self.series.len() - 1
        })
    }

    fn push(&mut self, i: usize, t: i64, v: f64) -> Result<(), AppendError> {
        let tolerance = self.db.options.future_tolerance_ms;
        // Reading the clock per sample is measurable; a batch takes milliseconds and the
        // tolerance is minutes, so the first reading of a batch serves (a sample that looks too
        // far ahead is checked against a fresh reading before it is refused).
        let mut now = *self
            .now_ms
            .get_or_insert_with(|| self.db.options.clock.now_ms());
        if t > now.saturating_add(tolerance) {
            now = self.db.options.clock.now_ms();
            self.now_ms = Some(now);
        }
        if t > now.saturating_add(tolerance) {
            return Err(AppendError::TooFarInFuture {
                t,
                now_ms: now,
                tolerance_ms: tolerance,
            });
        }
        let (series, newest) = &mut self.series[i];
        match series.check(t, v, *newest, self.db.options.out_of_order_window_ms)? {
            Verdict::Duplicate => self.duplicates.push((i as u32, Sample::new(t, v))),
            Verdict::Accept => {
                if newest.is_none_or(|n| t > n.t) {
                    *newest = Some(Sample::new(t, v));
                }
                self.samples.push((i as u32, Sample::new(t, v)));
            }
        }
        Ok(())
    }

    /// Samples appended and not yet committed.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing is waiting to be committed.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Writes the batch to the WAL, waits until it is durable, and makes it visible. On error
    /// nothing of the batch was acknowledged, and the same samples may be appended again.
    pub fn commit(mut self) -> Result<CommitStats, CommitError> {
        let db = self.db;
        let mut stats = CommitStats {
            duplicates: self.duplicates.len() as u64,
            ..CommitStats::default()
        };
        let relog = !self.duplicates.is_empty() && db.wal_behind_head();
        if self.samples.is_empty() && !relog {
            db.duplicates.fetch_add(stats.duplicates, Ordering::Relaxed);
            return Ok(stats);
        }
        let _gate = db.gate.read().unwrap_or_else(|p| p.into_inner());
        for (series, _) in &mut self.series {
            if series.is_removed() {
                *series = db.head.recreate(&series.to_labels());
            }
        }
        let new_series: Vec<&SeriesArc> = self
            .series
            .iter()
            .map(|(s, _)| s)
            .filter(|s| !s.is_logged())
            .collect();
        let frames = self.encode(&new_series, relog);
        if db.closed.load(Ordering::Relaxed) {
            return Err(StorageError::Closed.into());
        }
        // Series records are synced even in interval mode: later samples refer to them, so
        // losing one to a power cut would orphan samples that did reach the disk.
        db.wal.log(&frames, !new_series.is_empty())?;
        for s in &new_series {
            s.set_logged();
        }
        let tally = self.apply();
        db.head.record(&tally);
        db.duplicates.fetch_add(stats.duplicates, Ordering::Relaxed);
        stats.samples = self.samples.len() as u64;
        stats.series_created = new_series.len() as u64;
        drop(_gate);
        db.maybe_request_checkpoint();
        Ok(stats)
    }

    /// Applies the logged samples to their series, series by series in the order appended.
    ///
    /// When the head is larger than the cache (a catch-up sends one sample of each of
    /// thousands of series per request), each series' open chunk is a cache miss. The series
    /// go in groups: the group's series that are free are locked, then touched (an atomic
    /// operation waits for every load before it, so locking comes first), so their misses
    /// overlap, then applied; from the first series that is busy on, the rest of the group
    /// waits for its lock as usual, after the group's locks are released (so no thread waits
    /// while holding one, and each series' runs apply in order).
    fn apply(&self) -> Tally {
        const GROUP: usize = 8;
        let limits = &self.db.head.limits;
        let mut tally = Tally::default();
        // The runs of samples of one series: (index in `series`, range in `samples`).
        let mut runs = Vec::new();
        let mut k = 0;
        while k < self.samples.len() {
            let i = self.samples[k].0;
            let run = self.samples[k..]
                .iter()
                .take_while(|(j, _)| *j == i)
                .count();
            runs.push((i as usize, k..k + run));
            k += run;
        }
        let samples = |range: &std::ops::Range<usize>| {
            self.samples[range.clone()].iter().map(|(_, s)| (s.t, s.v))
        };
        for group in runs.chunks(GROUP) {
            let guards: Vec<_> = group
                .iter()
                .map_while(|(i, _)| self.series[*i].0.try_lock())
                .collect();
            guards.iter().for_each(SeriesGuard::touch);
            let locked = guards.len();
            for (guard, (i, range)) in guards.into_iter().zip(group) {
                self.series[*i]
                    .0
                    .apply_many_locked(guard, samples(range), limits, &mut tally);
            }
            for (i, range) in &group[locked..] {
                self.series[*i]
                    .0
                    .apply_many(samples(range), limits, &mut tally);
            }
        }
        tally
    }

    /// The batch's WAL frames: its unlogged series, then its samples, each record within the
    /// payload limit.
    fn encode(&self, new_series: &[&SeriesArc], relog: bool) -> Vec<u8> {
        let mut frames = Vec::with_capacity(self.samples.len() * 14 + 64);
        let mut payload = Vec::new();
        for group in new_series.chunks(SERIES_PER_RECORD) {
            payload.clear();
            encode_series_record(&mut payload, group);
            encode_frame(&mut frames, record::SERIES, &payload);
        }
        let mut refs = Vec::with_capacity(SAMPLES_PER_RECORD.min(self.samples.len()));
        let duplicates: &[(u32, Sample)] = if relog { &self.duplicates } else { &[] };
        for group in self
            .samples
            .chunks(SAMPLES_PER_RECORD)
            .chain(duplicates.chunks(SAMPLES_PER_RECORD))
        {
            refs.clear();
            refs.extend(group.iter().map(|(i, s)| RefSample {
                series: self.series[*i as usize].0.series_ref(),
                t: s.t,
                v: s.v,
            }));
            payload.clear();
            encode_samples(&mut payload, &refs);
            encode_frame(&mut frames, record::SAMPLES, &payload);
        }
        frames
    }
}

/// Samples per WAL record: at most 30 bytes each, well inside the payload limit.
const SAMPLES_PER_RECORD: usize = 65_536;
/// Series per WAL record; with the label limits the server enforces, well inside the limit.
const SERIES_PER_RECORD: usize = 256;
const _: () = assert!(SAMPLES_PER_RECORD * 30 < RECORD_PAYLOAD_BYTES_MAX);
