//! One series in the head: its chunks, and the rules for adding a sample to them.
//!
//! In-order samples (newer than everything the series holds) go into the *active* XOR chunk,
//! which is closed and replaced once it holds `chunk_samples_max` samples or spans
//! `chunk_range_ms`. Closed chunks are immutable and shared with queries through `Arc`, so a
//! query never copies them and never holds the series lock while decoding.
//!
//! Older samples (within the out-of-order window) go into a small sorted buffer that is
//! encoded into an out-of-order chunk once it fills. Queries merge both kinds by timestamp.
//!
//! Adding is split in two. [`MemSeries::check`] runs when a sample is appended, before it is
//! logged: it decides whether the sample is new, a duplicate of stored data (accepted and
//! dropped: retries are idempotent) or a rejection. [`MemSeries::apply`] runs after the WAL
//! holds the sample and cannot fail: whatever order concurrent commits apply in, the series
//! ends up holding the union of their samples.

mod read;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use thin_vec::ThinVec;

use crate::block::writer::ChunkIn;
use crate::chunk::ChunkMeta;
use crate::chunk::xor::{PackedEncoder, XorEncoder, XorIter};
use crate::error::AppendError;
use crate::head::Tally;
use crate::head::pages;
use crate::record::{ChunkEntry, ChunkKind};
use strata_core::codec::DecodeError;
use strata_core::labels::{Label, Labels};
use strata_core::sample::{Sample, SeriesRef};

pub(crate) use read::{InOrderIter, SnapshotIter};

/// A series' newest sample in a range, as [`MemSeries::newest_in`] tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Newest {
    Sample(Sample),
    /// The series has no sample in the range.
    Nothing,
    /// Only decoding tells (the range ends before the open chunk does, or older chunks
    /// may hold newer samples).
    Decode,
}

/// How chunks are cut and how far back out-of-order samples are taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesLimits {
    pub chunk_samples_max: u16,
    pub chunk_range_ms: i64,
    pub ooo_buffer_samples_max: usize,
}

/// An immutable, encoded chunk.
#[derive(Debug)]
pub(crate) struct ClosedChunk {
    /// On a page shared with the chunks closed just before and after it ([`pages`]).
    pub data: Bytes,
    pub min_t: i64,
    pub max_t: i64,
    pub num_samples: u16,
}

impl ClosedChunk {
    fn from_encoder(enc: XorEncoder) -> ClosedChunk {
        let min_t = enc.first_t().expect("closed chunks are not empty");
        let (max_t, _) = enc.last().expect("closed chunks are not empty");
        let num_samples = enc.num_samples();
        ClosedChunk {
            data: pages::store(&enc.into_data()),
            min_t,
            max_t,
            num_samples,
        }
    }

    fn find(&self, t: i64) -> Option<f64> {
        if t < self.min_t || t > self.max_t {
            return None;
        }
        XorIter::new(&self.data, self.num_samples)
            .take_while(|&(st, _)| st <= t)
            .find(|&(st, _)| st == t)
            .map(|(_, v)| v)
    }
}

/// What `check` decided about a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New data: log it and apply it.
    Accept,
    /// Already stored with the same value: acknowledge, but neither log nor apply.
    Duplicate,
}

/// What `apply` did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    InOrder,
    OutOfOrder,
    Duplicate,
    /// Another value was already stored at that timestamp (only possible when two commits race
    /// on one series and timestamp); the stored value was kept.
    Conflict,
}

/// A series' data, 40 bytes: a head holds millions. The closed list is a `ThinVec` (one
/// pointer, no allocation while empty), the out-of-order data is boxed (most series never
/// have any).
#[derive(Debug, Default)]
struct SeriesData {
    /// Invariant: sorted by time, not overlapping, all older than the active chunk.
    closed: ThinVec<Arc<ClosedChunk>>,
    tail: Tail,
    /// Invariant: `None` when it would hold nothing.
    ooo: Option<Box<OutOfOrder>>,
}

/// The in-order end of a series: its newest in-order timestamp, kept beside the lock so that
/// checking a sample does not read the chunk's buffer (in a time-major catch-up every sample
/// is the first touch of its series in a request, and that read was a cache miss each), and
/// the active chunk (packed between appends, so a series costs its state's few bytes, not a
/// whole encoder).
#[derive(Debug)]
struct Tail {
    /// `i64::MIN` while the series had no in-order sample.
    max_t: i64,
    /// Invariant: when present, not empty, and its last timestamp is `max_t`.
    active: Option<PackedEncoder>,
}

impl Default for Tail {
    fn default() -> Tail {
        Tail {
            max_t: i64::MIN,
            active: None,
        }
    }
}

#[derive(Debug, Default)]
struct OutOfOrder {
    /// Invariant: sorted by time, no two samples with one timestamp.
    samples: ThinVec<Sample>,
    /// Each sorted internally; they may overlap each other (never in stored timestamps).
    chunks: ThinVec<Arc<ClosedChunk>>,
}

/// A shared series and its labels, in one allocation: a head holds millions, and a separate
/// label set would cost each its own allocation header, reference count and rounding.
/// `triomphe`'s thin `Arc` keeps the label count in the allocation (the pointer is 8 bytes)
/// and has no weak count.
#[derive(Clone)]
pub(crate) struct SeriesArc(triomphe::ThinArc<MemSeries, Label>);

impl SeriesArc {
    /// A series named by `labels`, which are a canonical set's (sorted, as in a [`Labels`]).
    pub fn new(series: MemSeries, labels: impl ExactSizeIterator<Item = Label>) -> SeriesArc {
        SeriesArc(triomphe::ThinArc::from_header_and_iter(series, labels))
    }

    /// The series' labels, in name order (a canonical set).
    pub fn labels(&self) -> &[Label] {
        &self.0.slice
    }

    /// The labels as a set of their own, for results that outlive the series.
    pub fn to_labels(&self) -> Labels {
        Labels::from_canonical_slice(self.labels())
    }

    /// Whether the series is named by `labels`.
    pub fn has_labels(&self, labels: &Labels) -> bool {
        self.labels() == labels.as_slice()
    }

    /// [`Labels::stable_hash`] of the series' labels.
    pub fn stable_hash(&self) -> u64 {
        strata_core::labels::stable_hash_slice(self.labels())
    }

    /// Whether `a` and `b` are the same series (not only equal).
    pub fn ptr_eq(a: &SeriesArc, b: &SeriesArc) -> bool {
        std::ptr::eq(a.0.as_ptr(), b.0.as_ptr())
    }
}

impl std::ops::Deref for SeriesArc {
    type Target = MemSeries;

    fn deref(&self) -> &MemSeries {
        &self.0.header.header
    }
}

impl std::fmt::Debug for SeriesArc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("series_ref", &self.series_ref())
            .field("labels", &self.labels())
            .finish_non_exhaustive()
    }
}

/// A series in the head (its labels are beside it, in [`SeriesArc`]).
#[derive(Debug)]
pub(crate) struct MemSeries {
    /// The series' reference in the low 62 bits ([`SERIES_REF_MAX`]), and two flags above
    /// it, so that a series is 56 bytes (with its count, length and a typical three to five
    /// labels, the allocation fits jemalloc's 96- or 112-byte class):
    ///
    /// - [`LOGGED`]: a record naming this series is durable in the WAL or in a checkpoint
    ///   (invariant: set only then); commits log the series until it is set.
    /// - [`REMOVED`]: the head dropped the series (it held no data); a commit that still has
    ///   it looks the labels up again.
    ref_and_flags: AtomicU64,
    data: Mutex<SeriesData>,
}

/// A series' lock, held between [`MemSeries::try_lock`] and [`MemSeries::apply_many_locked`].
#[derive(Debug)]
pub(crate) struct SeriesGuard<'a>(MutexGuard<'a, SeriesData>);

impl SeriesGuard<'_> {
    /// Reads the end of the series' open chunk, where the next append writes, without using
    /// what it reads: a commit touches a few locked series before applying to them, so that
    /// their cache misses overlap instead of coming one after another.
    pub fn touch(&self) {
        std::hint::black_box(self.0.active().map(PackedEncoder::num_samples));
    }
}

/// The largest reference a head series can have (the two bits above it are flags).
pub(crate) const SERIES_REF_MAX: u64 = (1 << 62) - 1;
const LOGGED: u64 = 1 << 63;
const REMOVED: u64 = 1 << 62;

/// A consistent view of a series' data in a time range, taken under its lock and read
/// without it.
#[derive(Debug, Default)]
pub(crate) struct SeriesSnapshot {
    chunks: Vec<Arc<ClosedChunk>>,
    /// The open chunk's stream, its sample count, its first and last timestamps, and its
    /// last value.
    active: Option<(Vec<u8>, u16, i64, i64, f64)>,
    /// Out-of-order samples in range, sorted, if any.
    ooo: Vec<Sample>,
}

impl MemSeries {
    /// A series with reference `series_ref` (at most [`SERIES_REF_MAX`]).
    pub fn new(series_ref: SeriesRef, logged: bool) -> MemSeries {
        assert!(
            series_ref.0 <= SERIES_REF_MAX,
            "series reference {} is out of range",
            series_ref.0
        );
        MemSeries {
            ref_and_flags: AtomicU64::new(series_ref.0 | if logged { LOGGED } else { 0 }),
            data: Mutex::new(SeriesData::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SeriesData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The series' reference: the name WAL records and queries know it by.
    #[inline]
    pub fn series_ref(&self) -> SeriesRef {
        SeriesRef(self.ref_and_flags.load(Ordering::Relaxed) & SERIES_REF_MAX)
    }

    pub fn is_logged(&self) -> bool {
        self.ref_and_flags.load(Ordering::Acquire) & LOGGED != 0
    }

    pub fn set_logged(&self) {
        self.ref_and_flags.fetch_or(LOGGED, Ordering::Release);
    }

    pub fn is_removed(&self) -> bool {
        self.ref_and_flags.load(Ordering::Acquire) & REMOVED != 0
    }

    pub fn set_removed(&self) {
        self.ref_and_flags.fetch_or(REMOVED, Ordering::Release);
    }

    /// Decides whether `(t, v)` may be appended; `pending` is the newest sample of this series
    /// already appended in the same uncommitted batch.
    pub fn check(
        &self,
        t: i64,
        v: f64,
        pending: Option<Sample>,
        ooo_window_ms: i64,
    ) -> Result<Verdict, AppendError> {
        let d = self.lock();
        let conflict = |existing: f64| AppendError::DuplicateTimestamp {
            series: self.series_ref(),
            t,
            existing: existing.to_bits(),
            new: v.to_bits(),
        };
        if let Some(p) = pending
            && p.t == t
        {
            return if p.v.to_bits() == v.to_bits() {
                Ok(Verdict::Duplicate)
            } else {
                Err(conflict(p.v))
            };
        }
        let newest = d.max_t().max(pending.map_or(i64::MIN, |p| p.t));
        if t > newest {
            return Ok(Verdict::Accept);
        }
        if let Some(existing) = d.find(t) {
            return if existing.to_bits() == v.to_bits() {
                Ok(Verdict::Duplicate)
            } else {
                Err(conflict(existing))
            };
        }
        if t >= newest.saturating_sub(ooo_window_ms) && ooo_window_ms > 0 {
            return Ok(Verdict::Accept);
        }
        Err(AppendError::OutOfOrder {
            series: self.series_ref(),
            t,
            max_t: newest,
            window_ms: ooo_window_ms,
        })
    }

    /// Stores samples that the WAL already holds, under one lock acquisition, counting what
    /// it did in `tally`. Never fails.
    pub fn apply_many(
        &self,
        samples: impl Iterator<Item = (i64, f64)>,
        limits: &SeriesLimits,
        tally: &mut Tally,
    ) {
        self.apply_many_locked(SeriesGuard(self.lock()), samples, limits, tally);
    }

    /// Locks the series if no one holds it.
    pub fn try_lock(&self) -> Option<SeriesGuard<'_>> {
        self.data.try_lock().ok().map(SeriesGuard)
    }

    /// [`MemSeries::apply_many`] with the lock [`MemSeries::try_lock`] took.
    pub fn apply_many_locked(
        &self,
        guard: SeriesGuard<'_>,
        samples: impl Iterator<Item = (i64, f64)>,
        limits: &SeriesLimits,
        tally: &mut Tally,
    ) {
        let SeriesGuard(mut d) = guard;
        for (t, v) in samples {
            tally.note(t, d.apply(t, v, limits));
        }
    }

    /// Its newest sample in `[mint, maxt]`, when the open chunk tells it without decoding
    /// or copying anything: the open chunk's last sample is newer than every closed and
    /// out-of-order one, so it is the series' newest.
    pub fn newest_in(&self, mint: i64, maxt: i64) -> Newest {
        let d = self.lock();
        let Some((last, v)) = d.active().and_then(PackedEncoder::last) else {
            return Newest::Decode;
        };
        let older = d.closed.iter().all(|c| c.max_t < last)
            && d.ooo_chunks().iter().all(|c| c.max_t < last)
            && d.ooo_samples().last().is_none_or(|s| s.t < last);
        match older {
            false => Newest::Decode,
            true if last < mint => Newest::Nothing,
            true if last <= maxt => Newest::Sample(Sample::new(last, v)),
            true => Newest::Decode,
        }
    }

    /// The chunks and out-of-order samples that overlap `[mint, maxt]`.
    pub fn snapshot(&self, mint: i64, maxt: i64) -> SeriesSnapshot {
        let d = self.lock();
        let overlaps = |c: &ClosedChunk| c.max_t >= mint && c.min_t <= maxt;
        let mut snap = SeriesSnapshot {
            chunks: d.closed.iter().filter(|c| overlaps(c)).cloned().collect(),
            active: None,
            ooo: Vec::new(),
        };
        if let Some(enc) = d.active()
            && let (Some(first), Some(last)) = (enc.first_t(), enc.last_t())
            && last >= mint
            && first <= maxt
        {
            let last_v = enc.last().map_or(f64::NAN, |(_, v)| v);
            snap.active = Some((enc.data().to_vec(), enc.num_samples(), first, last, last_v));
        }
        let in_range = |s: &Sample| s.t >= mint && s.t <= maxt;
        for c in d.ooo_chunks().iter().filter(|c| overlaps(c)) {
            snap.ooo.extend(
                XorIter::new(&c.data, c.num_samples)
                    .map(|(t, v)| Sample::new(t, v))
                    .filter(in_range),
            );
        }
        snap.ooo
            .extend(d.ooo_samples().iter().copied().filter(in_range));
        if !snap.ooo.is_empty() {
            snap.ooo.sort_by_key(|s| s.t);
        }
        snap
    }

    /// Every chunk of the series, for a checkpoint. The out-of-order buffer is encoded into one
    /// extra chunk.
    pub fn dump(&self, mut out: impl FnMut(ChunkEntry<'_>)) {
        let d = self.lock();
        let series = self.series_ref();
        fn entry(series: SeriesRef, c: &ClosedChunk, kind: ChunkKind) -> ChunkEntry<'_> {
            ChunkEntry {
                series,
                kind,
                num_samples: c.num_samples,
                min_t: c.min_t,
                max_t: c.max_t,
                data: &c.data,
            }
        }
        for c in &d.closed {
            out(entry(series, c, ChunkKind::Closed));
        }
        if let Some(enc) = d.active()
            && let (Some(min_t), Some(max_t)) = (enc.first_t(), enc.last_t())
        {
            out(ChunkEntry {
                series: self.series_ref(),
                kind: ChunkKind::Active,
                num_samples: enc.num_samples(),
                min_t,
                max_t,
                data: enc.data(),
            });
        }
        for c in d.ooo_chunks() {
            out(entry(series, c, ChunkKind::OutOfOrder));
        }
        if !d.ooo_samples().is_empty() {
            let mut enc = XorEncoder::new();
            for s in d.ooo_samples() {
                enc.append(s.t, s.v);
            }
            let c = ClosedChunk::from_encoder(enc);
            out(entry(series, &c, ChunkKind::OutOfOrder));
        }
    }

    /// Loads a chunk from a checkpoint. A chunk that continues the series is taken as it is;
    /// one that overlaps what the series holds is merged sample by sample.
    /// Returns how many samples it added (duplicates of stored samples are not counted).
    pub fn restore(&self, c: &ChunkEntry<'_>, limits: &SeriesLimits) -> Result<u64, DecodeError> {
        let mismatch = || DecodeError("checkpointed chunk disagrees with its time range");
        let mut d = self.lock();
        let continues = c.min_t > d.max_t() && d.ooo.is_none();
        // The common case, a chunk that continues the series, is checked by one pass over its
        // stream: `scan` for a closed chunk, `resume` (which scans) for the active one.
        match c.kind {
            ChunkKind::Closed if continues && d.active().is_none() => {
                let end = crate::chunk::xor::scan(c.data, c.num_samples)
                    .map_err(|_| DecodeError("checkpointed chunk does not decode"))?;
                if c.num_samples == 0 || end.span() != (c.min_t, c.max_t) {
                    return Err(mismatch());
                }
                d.closed.push(Arc::new(ClosedChunk {
                    data: pages::store(c.data),
                    min_t: c.min_t,
                    max_t: c.max_t,
                    num_samples: c.num_samples,
                }));
                d.tail = Tail {
                    max_t: c.max_t,
                    active: None,
                };
                return Ok(u64::from(c.num_samples));
            }
            ChunkKind::Active if continues && d.active().is_none() => {
                let enc = XorEncoder::resume(c.data.to_vec(), c.num_samples)
                    .map_err(|_| DecodeError("checkpointed active chunk does not resume"))?;
                if enc.first_t() != Some(c.min_t) || enc.last().map(|l| l.0) != Some(c.max_t) {
                    return Err(mismatch());
                }
                d.tail = Tail {
                    max_t: c.max_t,
                    active: Some(enc.pack()),
                };
                return Ok(u64::from(c.num_samples));
            }
            _ => {}
        }
        let mut samples = Vec::with_capacity(usize::from(c.num_samples));
        let mut it = XorIter::new(c.data, c.num_samples);
        samples.extend(&mut it);
        if it.err().is_some() || samples.len() != usize::from(c.num_samples) {
            return Err(DecodeError("checkpointed chunk does not decode"));
        }
        if samples.first().map(|s| s.0) != Some(c.min_t)
            || samples.last().map(|s| s.0) != Some(c.max_t)
            || samples.windows(2).any(|w| w[0].0 >= w[1].0)
        {
            return Err(mismatch());
        }
        Ok(samples
            .into_iter()
            .filter(|&(t, v)| {
                matches!(
                    d.apply(t, v, limits),
                    Applied::InOrder | Applied::OutOfOrder
                )
            })
            .count() as u64)
    }

    /// Everything the series holds before `hi`, as chunks for a block (sorted, not
    /// overlapping; closed chunks wholly before `hi` are shared, not re-encoded), and a record
    /// of exactly what was taken for [`MemSeries::truncate`]. `None` when nothing is before `hi`.
    pub fn take_before(&self, hi: i64, chunk_samples_max: u16) -> Option<(Vec<BlockChunk>, Taken)> {
        let d = self.lock();
        let mut taken = Taken {
            hi,
            ..Taken::default()
        };
        let mut out = Vec::new();
        // In-order data: whole closed chunks, then at most one chunk (closed or active) that
        // is partly before `hi` or is the active chunk.
        let mut prefix: Vec<(i64, f64)> = Vec::new();
        for c in &d.closed {
            if c.max_t < hi {
                taken.closed.push(Arc::clone(c));
                out.push(BlockChunk::Shared(Arc::clone(c)));
            } else if c.min_t < hi {
                prefix.extend(XorIter::new(&c.data, c.num_samples).take_while(|&(t, _)| t < hi));
                taken.prefix = Some((c.min_t, prefix.len() as u16));
                break;
            } else {
                break;
            }
        }
        if taken.prefix.is_none()
            && let Some(enc) = d.active()
            && let Some(first) = enc.first_t()
            && first < hi
        {
            prefix.extend(XorIter::new(enc.data(), enc.num_samples()).take_while(|&(t, _)| t < hi));
            taken.prefix = Some((first, prefix.len() as u16));
        }
        // Out-of-order data before `hi`.
        let mut ooo: Vec<Sample> = Vec::new();
        for c in d.ooo_chunks().iter().filter(|c| c.min_t < hi) {
            taken.ooo_chunks.push(Arc::clone(c));
            ooo.extend(
                XorIter::new(&c.data, c.num_samples)
                    .filter(|&(t, _)| t < hi)
                    .map(|(t, v)| Sample::new(t, v)),
            );
        }
        for s in d.ooo_samples().iter().take_while(|s| s.t < hi) {
            taken.ooo_samples.push(s.t);
            ooo.push(*s);
        }
        drop(d);
        if out.is_empty() && prefix.is_empty() && ooo.is_empty() {
            return None;
        }
        if ooo.is_empty() {
            let whole: usize = taken
                .closed
                .iter()
                .map(|c| usize::from(c.num_samples))
                .sum();
            let samples = whole + prefix.len();
            let chunks = out.len() + usize::from(!prefix.is_empty());
            if chunks <= samples.div_ceil(usize::from(chunk_samples_max)) {
                out.extend(BlockChunk::runs(prefix, chunk_samples_max));
                return Some((out, taken));
            }
            // The head's short chunks fit in fewer, longer ones: a block keeps the longer.
            let mut all: Vec<(i64, f64)> = Vec::with_capacity(samples);
            for c in &taken.closed {
                all.extend(XorIter::new(&c.data, c.num_samples));
            }
            out.clear();
            all.extend(prefix);
            out.extend(BlockChunk::runs(all, chunk_samples_max));
            return Some((out, taken));
        }
        // Merge everything: in-order data wins over out-of-order data at one timestamp.
        let mut all: Vec<Sample> = Vec::new();
        for c in &taken.closed {
            all.extend(XorIter::new(&c.data, c.num_samples).map(|(t, v)| Sample::new(t, v)));
        }
        out.clear();
        all.extend(prefix.into_iter().map(|(t, v)| Sample::new(t, v)));
        all.extend(ooo);
        all.sort_by_key(|s| s.t);
        all.dedup_by_key(|s| s.t);
        let merged: Vec<(i64, f64)> = all.into_iter().map(|s| (s.t, s.v)).collect();
        out.extend(BlockChunk::runs(merged, chunk_samples_max));
        Some((out, taken))
    }

    /// Removes what [`MemSeries::take_before`] took, and nothing else: samples added since
    /// stay, whatever their time.
    pub fn truncate(&self, taken: &Taken) {
        let mut d = self.lock();
        d.closed
            .retain(|c| !taken.closed.iter().any(|t| Arc::ptr_eq(t, c)));
        if let Some((first, n)) = taken.prefix {
            if let Some(i) = d.closed.iter().position(|c| c.min_t == first) {
                let c = &d.closed[i];
                match reencode_after(&c.data, c.num_samples, n) {
                    Some(enc) => d.closed[i] = Arc::new(ClosedChunk::from_encoder(enc)),
                    None => {
                        d.closed.remove(i);
                    }
                }
            } else if let Some(enc) = d.active()
                && enc.first_t() == Some(first)
            {
                let max_t = d.max_t();
                let rest = reencode_after(enc.data(), enc.num_samples(), n).map(XorEncoder::pack);
                d.set_tail(rest, max_t);
            }
        }
        let hi = taken.hi;
        let mut kept = Vec::new();
        let Some(ooo) = d.ooo.as_deref_mut() else {
            return;
        };
        ooo.chunks.retain(|c| {
            if !taken.ooo_chunks.iter().any(|t| Arc::ptr_eq(t, c)) {
                return true;
            }
            let mut enc = XorEncoder::new();
            for (t, v) in XorIter::new(&c.data, c.num_samples).filter(|&(t, _)| t >= hi) {
                enc.append(t, v);
            }
            if enc.num_samples() > 0 {
                kept.push(Arc::new(ClosedChunk::from_encoder(enc)));
            }
            false
        });
        ooo.chunks.extend(kept);
        if !taken.ooo_samples.is_empty() {
            ooo.samples
                .retain(|s| taken.ooo_samples.binary_search(&s.t).is_err());
        }
        d.tidy_ooo();
    }

    /// Removes every sample in `[mint, maxt]`; returns how many. The series keeps its newest
    /// in-order timestamp, so what may be appended does not change.
    pub fn delete_range(&self, mint: i64, maxt: i64) -> u64 {
        let mut d = self.lock();
        let hit = |lo: i64, hi: i64| hi >= mint && lo <= maxt;
        let mut removed = 0u64;
        // Re-encodes a chunk without the range; `None` when nothing is left.
        let mut without = |data: &[u8], n: u16| -> Option<XorEncoder> {
            let mut enc = XorEncoder::new();
            for (t, v) in XorIter::new(data, n) {
                if t >= mint && t <= maxt {
                    removed += 1;
                } else {
                    enc.append(t, v);
                }
            }
            (enc.num_samples() > 0).then_some(enc)
        };
        let mut rewrite = |chunks: &mut ThinVec<Arc<ClosedChunk>>| {
            let old = std::mem::take(chunks);
            for c in old {
                if !hit(c.min_t, c.max_t) {
                    chunks.push(c);
                } else if let Some(enc) = without(&c.data, c.num_samples) {
                    chunks.push(Arc::new(ClosedChunk::from_encoder(enc)));
                }
            }
        };
        rewrite(&mut d.closed);
        if let Some(ooo) = d.ooo.as_deref_mut() {
            rewrite(&mut ooo.chunks);
        }
        if let Some(enc) = d.active()
            && let (Some(first), Some(last)) = (enc.first_t(), enc.last_t())
            && hit(first, last)
        {
            let rest = without(enc.data(), enc.num_samples()).map(XorEncoder::pack);
            d.set_tail(rest, last);
        }
        let mut ooo_removed = 0;
        if let Some(ooo) = d.ooo.as_deref_mut() {
            let before = ooo.samples.len();
            ooo.samples.retain(|s| s.t < mint || s.t > maxt);
            ooo_removed = (before - ooo.samples.len()) as u64;
        }
        d.tidy_ooo();
        removed + ooo_removed
    }

    /// The first and last timestamps the series holds, if it holds any sample.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let d = self.lock();
        let mut min = i64::MAX;
        let mut max = i64::MIN;
        let mut note = |lo: i64, hi: i64| {
            min = min.min(lo);
            max = max.max(hi);
        };
        for c in d.closed.iter().chain(d.ooo_chunks()) {
            note(c.min_t, c.max_t);
        }
        if let Some(enc) = d.active()
            && let (Some(first), Some(last)) = (enc.first_t(), enc.last_t())
        {
            note(first, last);
        }
        let ooo = d.ooo_samples();
        if let (Some(first), Some(last)) = (ooo.first(), ooo.last()) {
            note(first.t, last.t);
        }
        (min <= max).then_some((min, max))
    }

    /// Samples, chunks and approximate heap bytes held, for statistics.
    pub fn footprint(&self) -> (u64, u64, u64) {
        let d = self.lock();
        let mut samples = 0u64;
        let mut chunks = 0u64;
        let mut bytes = 0u64;
        for c in d.closed.iter().chain(d.ooo_chunks()) {
            samples += u64::from(c.num_samples);
            chunks += 1;
            bytes += c.data.len() as u64 + std::mem::size_of::<ClosedChunk>() as u64;
        }
        if let Some(enc) = d.active() {
            samples += u64::from(enc.num_samples());
            chunks += 1;
            bytes += enc.buffer_len() as u64;
        }
        if let Some(ooo) = d.ooo.as_deref() {
            samples += ooo.samples.len() as u64;
            bytes += (ooo.samples.capacity() * std::mem::size_of::<Sample>()) as u64;
        }
        (samples, chunks, bytes)
    }
}

/// A chunk bound for a block: a head chunk shared as it is, or samples the block writer
/// encodes (in the block's encoding, so they are encoded once).
#[derive(Debug)]
pub(crate) enum BlockChunk {
    Shared(Arc<ClosedChunk>),
    Samples(Vec<(i64, f64)>),
}

impl BlockChunk {
    /// `samples` (sorted) in chunks of at most `max`.
    fn runs(samples: Vec<(i64, f64)>, max: u16) -> Vec<BlockChunk> {
        if samples.is_empty() {
            return Vec::new();
        }
        if samples.len() <= usize::from(max) {
            return vec![BlockChunk::Samples(samples)];
        }
        samples
            .chunks(usize::from(max.max(1)))
            .map(|part| BlockChunk::Samples(part.to_vec()))
            .collect()
    }

    /// What the block writer takes.
    pub fn as_chunk_in(&self) -> ChunkIn<'_> {
        match self {
            BlockChunk::Shared(c) => ChunkIn::Xor(
                ChunkMeta {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    num_samples: c.num_samples,
                },
                &c.data,
            ),
            BlockChunk::Samples(samples) => ChunkIn::Samples(samples),
        }
    }
}

/// What [`MemSeries::take_before`] took, so that [`MemSeries::truncate`] removes exactly that.
#[derive(Debug, Default)]
pub(crate) struct Taken {
    hi: i64,
    /// Closed in-order chunks taken whole.
    closed: Vec<Arc<ClosedChunk>>,
    /// The in-order chunk (closed or active) starting at this timestamp whose first `n`
    /// samples were taken. In-order samples are only ever added at the end, so those `n`
    /// samples are still its first `n` at truncation.
    prefix: Option<(i64, u16)>,
    /// Out-of-order chunks whose samples before `hi` were taken.
    ooo_chunks: Vec<Arc<ClosedChunk>>,
    /// Timestamps taken from the out-of-order buffer, sorted (a timestamp is stored once).
    ooo_samples: Vec<i64>,
}

/// The chunk without its first `n` samples, or `None` if nothing is left.
fn reencode_after(data: &[u8], num_samples: u16, n: u16) -> Option<XorEncoder> {
    if n >= num_samples {
        return None;
    }
    let mut enc = XorEncoder::new();
    for (t, v) in XorIter::new(data, num_samples).skip(usize::from(n)) {
        enc.append(t, v);
    }
    Some(enc)
}

impl SeriesData {
    /// The newest in-order timestamp, `i64::MIN` while there was none.
    fn max_t(&self) -> i64 {
        self.tail.max_t
    }

    fn active(&self) -> Option<&PackedEncoder> {
        self.tail.active.as_ref()
    }

    /// Takes the active chunk out, leaving its last timestamp as the newest.
    fn take_active(&mut self) -> Option<PackedEncoder> {
        self.tail.active.take()
    }

    /// Makes `rest` (what is left of the active chunk after a removal) the active chunk, for
    /// a series whose newest in-order timestamp stays `max_t`. A chunk whose newest samples
    /// were removed is closed, so the next append starts a chunk after `max_t`.
    fn set_tail(&mut self, rest: Option<PackedEncoder>, max_t: i64) {
        let active = match rest {
            Some(enc) if enc.last_t() == Some(max_t) => Some(enc),
            Some(enc) => {
                self.closed
                    .push(Arc::new(ClosedChunk::from_encoder(enc.unpack())));
                None
            }
            None => None,
        };
        self.tail = Tail { max_t, active };
    }

    fn ooo_samples(&self) -> &[Sample] {
        self.ooo.as_deref().map_or(&[], |o| &o.samples)
    }

    fn ooo_chunks(&self) -> &[Arc<ClosedChunk>] {
        self.ooo.as_deref().map_or(&[], |o| &o.chunks)
    }

    fn tidy_ooo(&mut self) {
        if self
            .ooo
            .as_deref()
            .is_some_and(|o| o.samples.is_empty() && o.chunks.is_empty())
        {
            self.ooo = None;
        }
    }

    fn apply(&mut self, t: i64, v: f64, limits: &SeriesLimits) -> Applied {
        if t > self.max_t() {
            self.append_in_order(t, v, limits);
            return Applied::InOrder;
        }
        if let Some(existing) = self.find(t) {
            return if existing.to_bits() == v.to_bits() {
                Applied::Duplicate
            } else {
                Applied::Conflict
            };
        }
        let ooo = self.ooo.get_or_insert_with(Box::default);
        let at = ooo.samples.partition_point(|s| s.t < t);
        ooo.samples.insert(at, Sample::new(t, v));
        if ooo.samples.len() >= limits.ooo_buffer_samples_max {
            let mut enc = XorEncoder::new();
            for s in ooo.samples.drain(..) {
                enc.append(s.t, s.v);
            }
            ooo.samples.shrink_to_fit();
            ooo.chunks.push(Arc::new(ClosedChunk::from_encoder(enc)));
        }
        Applied::OutOfOrder
    }

    fn append_in_order(&mut self, t: i64, v: f64, limits: &SeriesLimits) {
        let cut = self.active().is_some_and(|enc| {
            enc.num_samples() >= limits.chunk_samples_max
                || enc.is_full()
                || enc
                    .first_t()
                    .is_some_and(|first| t.saturating_sub(first) >= limits.chunk_range_ms)
        });
        if cut && let Some(enc) = self.take_active() {
            self.closed
                .push(Arc::new(ClosedChunk::from_encoder(enc.unpack())));
        }
        let mut enc = self
            .take_active()
            .map_or_else(XorEncoder::new, PackedEncoder::unpack);
        enc.append(t, v);
        self.tail = Tail {
            max_t: t,
            active: Some(enc.pack()),
        };
    }

    /// The stored value at `t`, if any.
    fn find(&self, t: i64) -> Option<f64> {
        if let Some((last_t, v)) = self.active().and_then(PackedEncoder::last)
            && last_t == t
        {
            return Some(v);
        }
        if t <= self.max_t() {
            let in_order = match self.active() {
                Some(enc) if enc.first_t().is_some_and(|first| first <= t) => {
                    XorIter::new(enc.data(), enc.num_samples())
                        .take_while(|&(st, _)| st <= t)
                        .find(|&(st, _)| st == t)
                        .map(|(_, v)| v)
                }
                _ => {
                    let i = self.closed.partition_point(|c| c.max_t < t);
                    self.closed.get(i).and_then(|c| c.find(t))
                }
            };
            if in_order.is_some() {
                return in_order;
            }
        }
        let ooo = self.ooo_samples();
        if let Ok(i) = ooo.binary_search_by_key(&t, |s| s.t) {
            return Some(ooo[i].v);
        }
        self.ooo_chunks().iter().find_map(|c| c.find(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The head holds one `MemSeries` per series, in one allocation with its labels (a
    /// `triomphe::ThinArc`: 8 bytes of count, the series, 8 bytes of length, 8 bytes a
    /// label). At 56 bytes, a series of three labels takes 96 bytes, jemalloc's 96-byte class,
    /// and one of four or five 104 or 112, the 112-byte class. A field added here costs a
    /// million times its size, so growing it must be a decision. The encoder itself is only
    /// unpacked for an append.
    #[test]
    fn a_series_fits_its_allocation_class() {
        assert_eq!(size_of::<XorEncoder>(), 104);
        assert_eq!(size_of::<Tail>(), 24);
        assert_eq!(size_of::<SeriesData>(), 40);
        assert_eq!(size_of::<Labels>(), 8);
        assert_eq!(size_of::<MemSeries>(), 56);
        assert_eq!(size_of::<SeriesArc>(), 8);
    }
}
