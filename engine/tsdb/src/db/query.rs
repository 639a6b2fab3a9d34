//! Reading: a [`Querier`] sees the head and the blocks as one store.
//!
//! A series may have data in several places: blocks cut from the head at different times,
//! blocks holding out-of-order data that arrived after its range was cut, and the head. The
//! querier selects from each, groups by label set, and merges the sample streams by timestamp.
//! Where two places hold a sample at one timestamp (a block written again after a crash, or a
//! block and the head between publication and truncation), the sample shows once: the head's,
//! else the newest block's.
//!
//! Block chunks in range have their bounds and CRC checked when selected, so damage to a file
//! is an error of `select`, naming the file and offset, and iteration never meets it. Streams
//! are not decoded twice: one that matches its CRC is what the encoder wrote.

use std::sync::Arc;

use super::Inner;
use super::blocks::{BlockHandle, BlockList};
use super::decoded::DecodedCache;
use crate::block::Block;
use crate::block::chunks::ChunkRef;
use crate::block::index::IndexChunk;
use crate::block::tombstones;
use crate::chunk::xor::XorIter;
use crate::chunk::{Frame, Times};
use crate::error::QueryError;
use crate::head::series::{InOrderIter, Newest, SeriesSnapshot, SnapshotIter};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::sample::{Sample, SeriesRef};

/// Reads the data of one time range, as of the moment it was created (blocks compacted or
/// removed afterwards stay readable through it).
#[derive(Debug)]
pub struct Querier<'a> {
    pub(super) db: &'a Inner,
    pub(super) blocks: BlockList,
    pub(super) mint: i64,
    pub(super) maxt: i64,
}

/// Where a selected series' samples come from.
#[derive(Debug)]
enum Source {
    Head(SeriesSnapshot),
    /// Chunks of a block, in time order, already checked, and the series' deleted ranges.
    Block(Arc<Block>, Vec<ChunkRef>, Vec<(i64, i64)>),
}

/// A series selected by [`Querier::select`], with a consistent view of its data in range.
#[derive(Debug)]
pub struct SelectedSeries {
    series_ref: Option<SeriesRef>,
    labels: Labels,
    /// In priority order: on equal timestamps the last source wins.
    sources: Vec<Source>,
    mint: i64,
    maxt: i64,
    /// Where decoded block chunks are kept, when the cache is on.
    cache: Option<Arc<DecodedCache>>,
    /// Where decoded shared times frames (encoding 3) are kept, when the cache is on.
    times_cache: Option<Arc<DecodedCache<i64>>>,
}

impl SelectedSeries {
    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The series' reference in the head, if the head holds it.
    pub fn series_ref(&self) -> Option<SeriesRef> {
        self.series_ref
    }

    /// Appends its samples in the querier's range to `out`, in time order, each timestamp
    /// once: what collecting [`SelectedSeries::samples`] gives, faster. Sources whose times do
    /// not overlap (blocks of different windows, then the head: the common case) are decoded
    /// one after the other, a chunk at a time, without merging sample by sample.
    pub fn samples_into(&self, out: &mut Vec<Sample>) {
        let mut spans: Vec<(i64, i64, usize)> = Vec::with_capacity(self.sources.len());
        for (i, source) in self.sources.iter().enumerate() {
            let span = match source {
                Source::Head(snap) => snap.span(),
                Source::Block(block, chunks, _) => {
                    let first = chunks
                        .first()
                        .map(|&r| block.chunks().read_checked_before(r).meta);
                    let last = chunks
                        .last()
                        .map(|&r| block.chunks().read_checked_before(r).meta);
                    first.zip(last).map(|(f, l)| (f.min_t, l.max_t))
                }
            };
            if let Some((lo, hi)) = span {
                spans.push((lo, hi, i));
            }
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[0].1 >= w[1].0) {
            out.extend(self.samples());
            return;
        }
        let (mint, maxt) = (self.mint, self.maxt);
        for &(_, _, i) in &spans {
            match &self.sources[i] {
                Source::Head(snap) => out.extend(snap.samples(mint, maxt)),
                Source::Block(block, chunks, deleted) => {
                    for &r in chunks {
                        let frame = block.chunks().read_checked_before_unresolved(r);
                        let n = frame.meta.num_samples;
                        let whole = frame.meta.min_t >= mint && frame.meta.max_t <= maxt;
                        let key = (block.uid(), r.0);
                        let keep = |s: &Sample| {
                            s.t >= mint && s.t <= maxt && !tombstones::deleted(deleted, s.t)
                        };
                        let all = whole && deleted.is_empty();
                        let cached = self.cache.as_ref().and_then(|c| c.get(key));
                        if let Some(decoded) = cached {
                            if all {
                                out.extend_from_slice(&decoded);
                            } else {
                                out.extend(decoded.iter().copied().filter(keep));
                            }
                            continue;
                        }
                        // The whole chunk, straight into `out`; the cache copies it only if it
                        // takes it in (a query larger than the cache mostly does not); then
                        // what the query does not want is dropped.
                        let at = out.len();
                        self.decode_chunk(out, block, frame, n);
                        if let Some(cache) = &self.cache {
                            cache.admit(key, &out[at..]);
                        }
                        if !all {
                            retain_tail(out, at, keep);
                        }
                    }
                }
            }
        }
    }

    /// Decodes a block chunk (read unresolved) onto the end of `out`. Its shared timestamps,
    /// if it has them, come from the times cache, decoded once for all the series that share
    /// them.
    fn decode_chunk<'a>(
        &self,
        out: &mut Vec<Sample>,
        block: &'a Block,
        mut frame: Frame<'a>,
        n: u16,
    ) {
        let Times::Ref(at) = frame.times else {
            return decode_into(out, &frame, n, None);
        };
        let stream = block.chunks().times_checked_before(at);
        let Some(cache) = &self.times_cache else {
            frame.times = Times::Stream(stream);
            return decode_into(out, &frame, n, None);
        };
        let key = (block.uid(), at);
        let times = cache.get(key).unwrap_or_else(|| {
            let times: Vec<i64> = XorIter::new(stream, n).map(|(t, _)| t).collect();
            cache.admit(key, &times);
            times.into()
        });
        decode_into(out, &frame, n, Some(&times));
    }

    /// Its newest sample in the querier's range, when that can be read without decoding: the
    /// last sample of the head's open chunk, newer than everything in the other sources.
    /// `None` means "decode to find out", not "no sample".
    pub fn newest_without_decoding(&self) -> Option<Sample> {
        let (Source::Head(snap), others) = self.sources.split_last()? else {
            return None;
        };
        let newest = snap.newest_open(self.mint, self.maxt)?;
        let older = others.iter().all(|source| match source {
            Source::Head(_) => false,
            Source::Block(block, chunks, _) => chunks
                .last()
                .is_none_or(|&r| block.chunks().read_checked_before(r).meta.max_t < newest.t),
        });
        older.then_some(newest)
    }

    /// Its samples in the querier's range, in time order, each timestamp once.
    pub fn samples(&self) -> Samples<'_> {
        let mut iters: Vec<SourceIter<'_>> = self
            .sources
            .iter()
            .map(|s| match s {
                Source::Head(snap) => SourceIter::Head(snap.samples(self.mint, self.maxt)),
                Source::Block(block, chunks, deleted) => SourceIter::Block(
                    InOrderIter::new(
                        Box::new(
                            chunks
                                .iter()
                                .map(|&r| block.chunks().read_checked_before(r).samples()),
                        ),
                        self.mint,
                        self.maxt,
                    ),
                    deleted,
                ),
            })
            .collect();
        if iters.len() == 1 {
            return Samples {
                inner: SamplesInner::One(iters.pop().expect("one source")),
            };
        }
        let heads = iters.iter_mut().map(Iterator::next).collect();
        Samples {
            inner: SamplesInner::Merged { iters, heads },
        }
    }
}

enum SourceIter<'a> {
    Head(SnapshotIter<'a>),
    Block(InOrderIter<'a>, &'a [(i64, i64)]),
}

impl Iterator for SourceIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match self {
            SourceIter::Head(it) => it.next(),
            SourceIter::Block(it, []) => it.next(),
            SourceIter::Block(it, deleted) => it.find(|s| !tombstones::deleted(deleted, s.t)),
        }
    }
}

/// The samples of a [`SelectedSeries`], in time order.
pub struct Samples<'a> {
    inner: SamplesInner<'a>,
}

enum SamplesInner<'a> {
    One(SourceIter<'a>),
    Merged {
        iters: Vec<SourceIter<'a>>,
        /// The next sample of each source.
        heads: Vec<Option<Sample>>,
    },
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match &mut self.inner {
            SamplesInner::One(it) => it.next(),
            SamplesInner::Merged { iters, heads } => {
                let t = heads.iter().flatten().map(|s| s.t).min()?;
                let mut out = None;
                for (it, head) in iters.iter_mut().zip(heads.iter_mut()) {
                    if let Some(s) = *head
                        && s.t == t
                    {
                        out = Some(s);
                        *head = it.next();
                    }
                }
                out
            }
        }
    }
}

impl std::fmt::Debug for Samples<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Samples")
    }
}

impl Querier<'_> {
    /// Opens a block of this querier's list; `None` if retention removed it (unopened) since
    /// the querier was made: its data is expired.
    fn open(&self, handle: &BlockHandle) -> Result<Option<Arc<Block>>, QueryError> {
        match handle.get(self.db.fs.as_ref()) {
            Ok(block) => Ok(Some(block)),
            Err(_) if !self.db.blocks.contains(&handle.meta.id) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Calls `f` for each series of the blocks matching every matcher that has chunks in
    /// range not wholly deleted: its block, labels, those chunks (in time order) and its
    /// deleted ranges.
    fn for_each_block_series(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(&Arc<Block>, Labels, Vec<IndexChunk>, &[(i64, i64)]) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        for handle in self
            .blocks
            .iter()
            .filter(|b| b.overlaps(self.mint, self.maxt))
        {
            let Some(block) = self.open(handle)? else {
                continue;
            };
            let tombstones = handle.tombstones();
            for id in block.index().select(matchers)? {
                let (labels, mut chunks) = block.index().series(id)?;
                let deleted = tombstones.ranges(id);
                chunks.retain(|c| {
                    c.max_t >= self.mint
                        && c.min_t <= self.maxt
                        && !tombstones::covers(deleted, c.min_t, c.max_t)
                });
                if !chunks.is_empty() {
                    f(&block, labels, chunks, deleted)?;
                }
            }
        }
        Ok(())
    }

    /// The series matching every matcher that have samples in range, sorted by labels.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SelectedSeries>, QueryError> {
        let mut found: Vec<(Labels, Option<SeriesRef>, Source)> = Vec::new();
        self.for_each_block_series(matchers, |block, labels, chunks, deleted| {
            let mut refs = Vec::with_capacity(chunks.len());
            for c in chunks {
                block.chunks().read_checksummed(c.chunk)?;
                refs.push(c.chunk);
            }
            let source = Source::Block(Arc::clone(block), refs, deleted.to_vec());
            found.push((labels, None, source));
            Ok(())
        })?;
        for s in self.db.head.select(matchers) {
            let snapshot = s.snapshot(self.mint, self.maxt);
            if !snapshot.is_empty() {
                found.push((s.to_labels(), Some(s.series_ref()), Source::Head(snapshot)));
            }
        }
        // Stable: sources of one series keep their priority order (blocks by time, head last).
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<SelectedSeries> = Vec::new();
        for (labels, series_ref, source) in found {
            match out.last_mut() {
                Some(last) if last.labels == labels => {
                    last.series_ref = last.series_ref.or(series_ref);
                    last.sources.push(source);
                }
                _ => out.push(SelectedSeries {
                    series_ref,
                    labels,
                    sources: vec![source],
                    mint: self.mint,
                    maxt: self.maxt,
                    cache: self
                        .db
                        .decoded
                        .enabled()
                        .then(|| Arc::clone(&self.db.decoded)),
                    times_cache: self
                        .db
                        .decoded_times
                        .enabled()
                        .then(|| Arc::clone(&self.db.decoded_times)),
                }),
            }
        }
        Ok(out)
    }

    /// Each series matching every matcher with its newest sample in range, sorted by labels:
    /// what [`Querier::select`] then the last of each series' samples gives, cheaper. When no
    /// block overlaps the range (an instant query near now) the head alone answers, and a
    /// series whose open chunk holds its newest sample is neither copied nor decoded. `None`
    /// when blocks overlap: use [`Querier::select`].
    pub fn select_newest(&self, matchers: &[Matcher]) -> Option<Vec<(Labels, Sample)>> {
        if self.blocks.iter().any(|b| b.overlaps(self.mint, self.maxt)) {
            return None;
        }
        let mut out: Vec<(Labels, Sample)> = Vec::new();
        for s in self.db.head.select(matchers) {
            let newest = match s.newest_in(self.mint, self.maxt) {
                Newest::Sample(sample) => Some(sample),
                Newest::Nothing => None,
                Newest::Decode => s
                    .snapshot(self.mint, self.maxt)
                    .samples(self.mint, self.maxt)
                    .last(),
            };
            if let Some(sample) = newest {
                out.push((s.to_labels(), sample));
            }
        }
        // The head holds a label set once.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }

    /// The label sets of the series matching every matcher that have samples in range, sorted
    /// and without duplicates. Reads only indexes (no sample data), so it is cheap enough for
    /// metadata APIs over every series.
    pub fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, QueryError> {
        let mut found: Vec<Labels> = Vec::new();
        self.for_each_block_series(matchers, |_, labels, _, _| {
            found.push(labels);
            Ok(())
        })?;
        for s in self.db.head.select(matchers) {
            if s.time_range()
                .is_some_and(|(lo, hi)| hi >= self.mint && lo <= self.maxt)
            {
                found.push(s.to_labels());
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Label names of the series matching `matchers` (all series when empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, QueryError> {
        let mut names: Vec<String> = if matchers.is_empty() {
            let mut names = self.db.head.postings().label_names();
            for handle in self
                .blocks
                .iter()
                .filter(|b| b.overlaps(self.mint, self.maxt))
            {
                if let Some(block) = self.open(handle)? {
                    names.extend(block.index().label_names()?);
                }
            }
            names
        } else {
            self.series(matchers)?
                .iter()
                .flat_map(|labels| {
                    labels
                        .iter()
                        .map(|l| l.name().to_string())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Values of label `name` among the series matching `matchers` (all series when empty),
    /// sorted.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, QueryError> {
        let mut values: Vec<String> = if matchers.is_empty() {
            let mut values = self.db.head.postings().label_values(name);
            for handle in self
                .blocks
                .iter()
                .filter(|b| b.overlaps(self.mint, self.maxt))
            {
                if let Some(block) = self.open(handle)? {
                    values.extend(block.index().label_values(name)?);
                }
            }
            values
        } else {
            self.series(matchers)?
                .iter()
                .filter_map(|labels| labels.get(name).map(str::to_owned))
                .collect()
        };
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// Decodes a chunk of `n` samples onto the end of `out`, into slots made up front: no capacity
/// check per sample. An encoding-3 chunk's timestamps are `times` when given (decoded before),
/// else its resolved times stream, filled in first; then its values. A chunk that decodes
/// short (checked at select, so never) keeps what it gave.
fn decode_into(out: &mut Vec<Sample>, frame: &Frame<'_>, n: u16, times: Option<&[i64]>) {
    let at = out.len();
    out.resize(at + usize::from(n), Sample::new(0, 0.0));
    let slots = &mut out[at..];
    let timed = match (times, frame.times) {
        (Some(times), _) => {
            for (slot, &t) in slots.iter_mut().zip(times) {
                slot.t = t;
            }
            Some(times.len().min(slots.len()))
        }
        (None, Times::Stream(stream)) => {
            let mut filled = 0;
            for (slot, (t, _)) in slots.iter_mut().zip(XorIter::new(stream, n)) {
                slot.t = t;
                filled += 1;
            }
            Some(filled)
        }
        (None, _) => None,
    };
    let filled = match timed {
        Some(timed) => {
            let mut values = 0;
            for (slot, (_, v)) in slots[..timed].iter_mut().zip(XorIter::new(frame.data, n)) {
                slot.v = v;
                values += 1;
            }
            values
        }
        None => {
            let mut filled = 0;
            for (slot, (t, v)) in slots.iter_mut().zip(frame.samples()) {
                *slot = Sample::new(t, v);
                filled += 1;
            }
            filled
        }
    };
    out.truncate(at + filled);
}

/// Keeps, of `out[at..]`, the samples `keep` accepts, in order.
fn retain_tail(out: &mut Vec<Sample>, at: usize, keep: impl Fn(&Sample) -> bool) {
    let mut w = at;
    for r in at..out.len() {
        let s = out[r];
        if keep(&s) {
            out[w] = s;
            w += 1;
        }
    }
    out.truncate(w);
}
