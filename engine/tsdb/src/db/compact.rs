//! Compaction: which blocks to merge, and merging them.
//!
//! The planner picks, in this order: blocks whose time ranges overlap (out-of-order data cut
//! after its range, or a block written twice after a crash), merged whatever their size; a
//! block with tombstones, rewritten alone without the deleted data; then,
//! for each configured range above the head's, the oldest aligned window of that range holding
//! at least two blocks that fit inside it, once the window is complete (no data that could
//! still land in it is left in the head).
//!
//! The merge walks the sources' series in label order, one series at a time, so memory holds
//! one series' samples and the new index, never the blocks' data. A series whose chunks from
//! the different sources do not overlap in time keeps its chunks byte for byte, unless they
//! fit in fewer chunks of `block_chunk_samples_max` (then they are re-encoded); one whose
//! chunks overlap is decoded, merged by timestamp (on equal timestamps the newest block wins,
//! as in queries) and re-encoded. The output is published like any block; only then are the
//! sources retired (see `blocks`).

use std::sync::Arc;

use super::blocks::{BlockHandle, Blocks};
use crate::block::Block;
use crate::block::index::IndexChunk;
use crate::block::meta::BlockMeta;
use crate::block::tombstones::{self, Tombstones};
use crate::block::writer::{BlockWriter, ChunkIn};
use crate::chunk::Frame;
use strata_core::error::StorageError;
use strata_core::fs::Fs;
use strata_core::labels::Labels;

/// The blocks to merge next, if any. `list` is sorted by `min_t`; `ranges` are the configured
/// block ranges (the first is the head's); `frontier` is the oldest time that may still get
/// data from the head.
pub(crate) fn plan(
    list: &[Arc<BlockHandle>],
    ranges: &[i64],
    frontier: i64,
) -> Option<Vec<Arc<BlockHandle>>> {
    let blocks: Vec<&Arc<BlockHandle>> = list.iter().filter(|b| b.meta.samples > 0).collect();
    // Overlapping blocks first.
    let mut group: Vec<&Arc<BlockHandle>> = Vec::new();
    let mut group_max = i64::MIN;
    for b in &blocks {
        if !group.is_empty() && b.meta.min_t <= group_max {
            group.push(b);
            group_max = group_max.max(b.meta.max_t);
            continue;
        }
        if group.len() >= 2 {
            break;
        }
        group = vec![b];
        group_max = b.meta.max_t;
    }
    if group.len() >= 2 {
        return Some(group.into_iter().cloned().collect());
    }
    // Then blocks with deleted data, rewritten without it.
    if let Some(b) = blocks.iter().find(|b| !b.tombstones().is_empty()) {
        return Some(vec![Arc::clone(b)]);
    }
    // Then aligned windows, smallest range first.
    for &r in ranges.iter().skip(1) {
        let mut i = 0;
        while i < blocks.len() {
            let start = blocks[i].meta.min_t.div_euclid(r).saturating_mul(r);
            let end = start.saturating_add(r);
            let j = i + blocks[i..]
                .iter()
                .take_while(|b| b.meta.min_t < end)
                .count();
            let window = &blocks[i..j];
            if window.len() >= 2 && window.iter().all(|b| b.meta.max_t < end) && end <= frontier {
                return Some(window.iter().map(|b| Arc::clone(b)).collect());
            }
            i = j;
        }
    }
    None
}

/// Merges `sources` (sorted by time) into one new block and publishes it. On failure the
/// partial output is removed and the sources are untouched.
pub(crate) fn merge(
    fs: &Arc<dyn Fs>,
    blocks: &Blocks,
    sources: &[Arc<BlockHandle>],
    chunk_samples_max: u16,
) -> Result<BlockMeta, StorageError> {
    let opened: Vec<(Arc<Block>, Arc<Tombstones>)> = sources
        .iter()
        .map(|h| Ok((h.get(fs.as_ref())?, h.tombstones())))
        .collect::<Result<_, StorageError>>()?;
    let level = sources.iter().map(|h| h.meta.level).max().unwrap_or(0) + 1;
    let mut lineage: Vec<String> = sources
        .iter()
        .flat_map(|h| h.meta.sources.iter().cloned().chain([h.meta.id.clone()]))
        .collect();
    lineage.sort();
    lineage.dedup();
    let id = blocks.new_id();
    let mut writer = BlockWriter::create(Arc::clone(fs), blocks.dir(), &id, level, lineage)?;
    match merge_into(&mut writer, &opened, chunk_samples_max) {
        Ok(()) => writer.finish(),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}

/// A series of one source block: its labels, chunks and deleted ranges.
type SourceSeries<'a> = (Labels, Vec<IndexChunk>, &'a [(i64, i64)]);

/// A source block's position in its series list (ids are in label order).
struct Cursor<'a> {
    block: &'a Block,
    tombstones: &'a Tombstones,
    next: u32,
    /// The current series' labels, chunks and deleted ranges.
    current: Option<SourceSeries<'a>>,
}

impl Cursor<'_> {
    fn advance(&mut self) -> Result<(), StorageError> {
        self.current = if self.next < self.block.index().num_series() {
            let (labels, chunks) = self.block.index().series(self.next)?;
            let deleted = self.tombstones.ranges(self.next);
            self.next += 1;
            Some((labels, chunks, deleted))
        } else {
            None
        };
        Ok(())
    }
}

fn merge_into(
    writer: &mut BlockWriter,
    opened: &[(Arc<Block>, Arc<Tombstones>)],
    chunk_samples_max: u16,
) -> Result<(), StorageError> {
    let mut cursors: Vec<Cursor<'_>> = opened
        .iter()
        .map(|(b, t)| Cursor {
            block: b,
            tombstones: t,
            next: 0,
            current: None,
        })
        .collect();
    for c in &mut cursors {
        c.advance()?;
    }
    loop {
        let Some(labels) = cursors
            .iter()
            .filter_map(|c| c.current.as_ref().map(|(l, _, _)| l))
            .min()
            .cloned()
        else {
            return Ok(());
        };
        // The series' chunks from every source holding it, in source (time) order.
        let mut parts: Vec<(&Block, SourceSeries<'_>)> = Vec::new();
        for c in &mut cursors {
            if c.current.as_ref().is_some_and(|(l, _, _)| *l == labels) {
                let series = c.current.take().expect("checked");
                parts.push((c.block, series));
                c.advance()?;
            }
        }
        let mut all: Vec<(&Block, IndexChunk)> = parts
            .iter()
            .flat_map(|(b, (_, cs, _))| cs.iter().map(move |c| (*b, *c)))
            .collect();
        all.sort_by_key(|(_, c)| c.min_t);
        let overlapping = all.windows(2).any(|w| w[1].1.min_t <= w[0].1.max_t);
        let deletions = parts.iter().any(|(_, (_, _, d))| !d.is_empty());
        if !overlapping && !deletions {
            let mut frames = Vec::with_capacity(all.len());
            let mut samples = 0usize;
            for (b, c) in &all {
                let f = b.chunks().read_checksummed(c.chunk)?;
                samples += usize::from(f.meta.num_samples);
                frames.push((*b, *c, f));
            }
            if frames.len() > samples.div_ceil(usize::from(chunk_samples_max)) {
                // The same samples fit in fewer, longer chunks: re-encode.
                let mut all = Vec::with_capacity(samples);
                for (b, c, f) in &frames {
                    decode_checked(b, c, f, |t, v| all.push((t, v)))?;
                }
                writer.add_series_samples(&labels, &all, chunk_samples_max)?;
            } else {
                // Copied without decoding: the CRC vouches for the bytes, and the stream was
                // checked when it was first written or re-encoded.
                let refs = frames
                    .iter()
                    .map(|(b, c, f)| ChunkIn::from_frame(f).ok_or_else(|| unresolved(b, c)))
                    .collect::<Result<Vec<_>, _>>()?;
                writer.add_series(&labels, &refs)?;
            }
            continue;
        }
        // Decode and merge: (t, source priority, value); the newest source wins a tie.
        let mut samples: Vec<(i64, usize, f64)> = Vec::new();
        for (priority, (b, (_, cs, deleted))) in parts.iter().enumerate() {
            for c in cs {
                let f = b.chunks().read_checksummed(c.chunk)?;
                decode_checked(b, c, &f, |t, v| {
                    if !tombstones::deleted(deleted, t) {
                        samples.push((t, priority, v));
                    }
                })?;
            }
        }
        samples.sort_by_key(|&(t, p, _)| (t, p));
        let mut merged: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
        for (t, _, v) in samples {
            match merged.last_mut() {
                Some(last) if last.0 == t => last.1 = v,
                _ => merged.push((t, v)),
            }
        }
        if !merged.is_empty() {
            writer.add_series_samples(&labels, &merged, chunk_samples_max)?;
        }
    }
}

/// Decodes a checksummed frame, checking that the stream holds what its header says (the
/// one decode compaction does, so a stream the encoder got wrong is never carried forward).
fn decode_checked(
    block: &Block,
    c: &IndexChunk,
    frame: &Frame<'_>,
    mut out: impl FnMut(i64, f64),
) -> Result<(), StorageError> {
    let mut it = frame.samples();
    let (mut n, mut first, mut last) = (0u32, None, i64::MIN);
    for (t, v) in it.by_ref() {
        n += 1;
        first.get_or_insert(t);
        last = t;
        out(t, v);
    }
    let meta = frame.meta;
    if it.err().is_some()
        || n != u32::from(meta.num_samples)
        || first != Some(meta.min_t)
        || last != meta.max_t
    {
        return Err(chunk_corruption(
            block,
            c,
            "chunk stream does not decode to what its header says",
        ));
    }
    Ok(())
}

/// The error for an encoding-3 chunk whose timestamps the reader did not find (the chunk
/// reader finds them or reports the damage first, so this is never returned).
fn unresolved(block: &Block, c: &IndexChunk) -> StorageError {
    chunk_corruption(block, c, "chunk's times frame was not read")
}

fn chunk_corruption(block: &Block, c: &IndexChunk, reason: &'static str) -> StorageError {
    StorageError::Corruption {
        path: block
            .dir()
            .join(crate::block::CHUNKS_DIR)
            .join(format!("{:08}", c.chunk.file())),
        offset: u64::from(c.chunk.offset()),
        reason,
    }
}
