//! Writing a block, and publishing it only once it is whole and durable.
//!
//! Everything goes into `<blocks>/<id>.tmp/`: the chunk files as series are added, then the
//! index and `meta.json`. [`BlockWriter::finish`] syncs every file and the temporary
//! directory, renames it to `<blocks>/<id>`, and syncs `<blocks>`. A crash before the rename
//! leaves only a `.tmp` directory, which is never read; after it, a complete block.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chunks::{ChunkRef, ChunksWriter};
use super::index::{IndexChunk, IndexWriter};
use super::meta::{BlockMeta, META_FILE, META_FORMAT};
use super::{CHUNKS_DIR, INDEX_FILE};
use crate::chunk::shared::{SHARED_SAMPLES_MIN, SplitEncoder};
use crate::chunk::xor::XorEncoder;
use crate::chunk::{ChunkMeta, Encoding, Frame, FrameSamples, Times};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;
use strata_core::labels::Labels;

/// Writes one block.
#[derive(Debug)]
pub struct BlockWriter {
    fs: Arc<dyn Fs>,
    blocks_dir: PathBuf,
    tmp: PathBuf,
    chunks: ChunksWriter,
    index: IndexWriter,
    meta: BlockMeta,
    /// The times frames written so far, by a hash of their stream, so chunks with the same
    /// timestamps share one; bounded by [`TIMES_TABLE_BYTES_MAX`].
    times: HashMap<u64, Vec<TimesFrame>, rustc_hash::FxBuildHasher>,
    times_bytes: usize,
    /// The same frames by their timestamps, for chunks that arrive as samples (a head cut,
    /// compaction's re-encoding): a chunk whose timestamps are found here encodes its values
    /// only. Bounded by [`SAMPLE_TIMES_BYTES_MAX`].
    sample_times: HashMap<u64, Vec<SampleTimes>, rustc_hash::FxBuildHasher>,
    sample_times_bytes: usize,
}

/// A times frame written: its header, its stream, where it is.
type TimesFrame = (ChunkMeta, Box<[u8]>, ChunkRef);

/// A times frame written: its timestamps, its header, where it is.
type SampleTimes = (Box<[i64]>, ChunkMeta, ChunkRef);

/// Bytes of times streams the writer remembers for sharing. A block of 50,000 series from 100
/// scraped targets has a few hundred distinct ones; past the bound, new times frames are still
/// written, only not shared.
const TIMES_TABLE_BYTES_MAX: usize = 8 << 20;

/// Bytes of timestamps the writer remembers (8 a sample): a 6 h block of 100 targets scraped
/// every 15 s needs 1.2 MB.
const SAMPLE_TIMES_BYTES_MAX: usize = 8 << 20;

/// A chunk handed to [`BlockWriter::add_series`].
#[derive(Debug, Clone, Copy)]
pub enum ChunkIn<'a> {
    /// An encoding-2 stream (the head's chunks, and blocks written before encoding 3).
    Xor(ChunkMeta, &'a [u8]),
    /// Already split into a times stream and a values stream (a block's encoding-3 chunk).
    Split {
        /// The chunk's header.
        meta: ChunkMeta,
        /// Its times stream (encoding 2, values zero).
        times: &'a [u8],
        /// Its values stream.
        values: &'a [u8],
    },
    /// Samples to encode (sorted, each timestamp once, 1 to `u16::MAX` of them).
    Samples(&'a [(i64, f64)]),
}

impl<'a> ChunkIn<'a> {
    /// A frame read from a block, to be written again as it is. `None` for an encoding-3
    /// frame whose timestamps were not read (every block chunk reader reads them).
    pub fn from_frame(frame: &Frame<'a>) -> Option<ChunkIn<'a>> {
        match frame.times {
            Times::Own => Some(ChunkIn::Xor(frame.meta, frame.data)),
            Times::Stream(times) => Some(ChunkIn::Split {
                meta: frame.meta,
                times,
                values: frame.data,
            }),
            Times::Ref(_) => None,
        }
    }

    fn meta(&self) -> ChunkMeta {
        match *self {
            ChunkIn::Xor(meta, _) | ChunkIn::Split { meta, .. } => meta,
            ChunkIn::Samples(samples) => ChunkMeta {
                min_t: samples.first().map_or(0, |s| s.0),
                max_t: samples.last().map_or(0, |s| s.0),
                num_samples: u16::try_from(samples.len()).unwrap_or(u16::MAX),
            },
        }
    }
}

impl BlockWriter {
    /// Starts block `id` in `blocks_dir`. `level` and `sources` describe where its data came
    /// from (level 1 and none for a block cut from the head).
    pub fn create(
        fs: Arc<dyn Fs>,
        blocks_dir: &Path,
        id: &str,
        level: u32,
        sources: Vec<String>,
    ) -> Result<BlockWriter, StorageError> {
        let tmp = blocks_dir.join(format!("{id}.tmp"));
        fs.create_dir_all(&tmp)
            .map_err(io_err("create block directory", &tmp))?;
        let chunks = match ChunksWriter::create(Arc::clone(&fs), &tmp.join(CHUNKS_DIR)) {
            Ok(c) => c,
            Err(e) => {
                let _ = fs.remove_dir_all(&tmp);
                return Err(e);
            }
        };
        Ok(BlockWriter {
            fs,
            blocks_dir: blocks_dir.to_path_buf(),
            tmp,
            chunks,
            index: IndexWriter::new(),
            meta: BlockMeta {
                format: META_FORMAT,
                id: id.to_string(),
                min_t: i64::MAX,
                max_t: i64::MIN,
                series: 0,
                chunks: 0,
                samples: 0,
                level,
                sources,
                index_bytes: 0,
                chunk_bytes: 0,
                crc32: 0,
            },
            times: HashMap::default(),
            times_bytes: 0,
            sample_times: HashMap::default(),
            sample_times_bytes: 0,
        })
    }

    /// Adds the next series (series come in increasing label order) with its chunks, sorted by
    /// time and not overlapping.
    ///
    /// Chunks of at least [`SHARED_SAMPLES_MIN`] samples are written in encoding 3, their
    /// timestamps shared with the block's other chunks that have the same.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[ChunkIn<'_>],
    ) -> Result<(), StorageError> {
        let mut entries = Vec::with_capacity(chunks.len());
        // No samples, no chunk (a frame of none would sit at time 0 in the index).
        for c in chunks.iter().filter(|c| !matches!(c, ChunkIn::Samples([]))) {
            let meta = c.meta();
            let at = self.put(*c)?;
            entries.push(IndexChunk {
                min_t: meta.min_t,
                max_t: meta.max_t,
                chunk: at,
            });
            self.meta.min_t = self.meta.min_t.min(meta.min_t);
            self.meta.max_t = self.meta.max_t.max(meta.max_t);
            self.meta.samples += u64::from(meta.num_samples);
        }
        self.meta.chunks += entries.len() as u64;
        self.meta.series += 1;
        self.index.add_series(labels, &entries);
        Ok(())
    }

    /// Adds the next series from its samples (sorted, each timestamp once), in chunks of at
    /// most `chunk_samples_max` samples.
    pub fn add_series_samples(
        &mut self,
        labels: &Labels,
        samples: &[(i64, f64)],
        chunk_samples_max: u16,
    ) -> Result<(), StorageError> {
        let chunks: Vec<ChunkIn<'_>> = samples
            .chunks(usize::from(chunk_samples_max.max(1)))
            .map(ChunkIn::Samples)
            .collect();
        self.add_series(labels, &chunks)
    }

    /// Writes one chunk: short encoding-2 chunks as they are, the rest split, their times
    /// frame shared.
    fn put(&mut self, c: ChunkIn<'_>) -> Result<ChunkRef, StorageError> {
        match c {
            ChunkIn::Xor(meta, data) if meta.num_samples < SHARED_SAMPLES_MIN => {
                self.chunks.append(Encoding::Xor, meta, data)
            }
            ChunkIn::Xor(meta, data) => {
                let mut samples = Vec::with_capacity(usize::from(meta.num_samples));
                let mut decoded = FrameSamples::xor(data, meta.num_samples);
                samples.extend(decoded.by_ref());
                if decoded.err().is_some() || ChunkIn::Samples(&samples).meta() != meta {
                    // Not what its header says (the head's and checked blocks' streams always
                    // are): copied as it is, for the reader to report.
                    return self.chunks.append(Encoding::Xor, meta, data);
                }
                self.put_samples(&samples)
            }
            ChunkIn::Split {
                meta,
                times,
                values,
            } => {
                let times = self.times_frame(meta, times)?;
                self.chunks.append_shared(meta, times, values)
            }
            ChunkIn::Samples(samples) if samples.len() < usize::from(SHARED_SAMPLES_MIN) => {
                let mut enc = XorEncoder::new();
                samples.iter().for_each(|&(t, v)| enc.append(t, v));
                self.chunks.append(Encoding::Xor, enc.meta(), enc.data())
            }
            ChunkIn::Samples(samples) => {
                assert!(
                    samples.len() <= usize::from(u16::MAX),
                    "a chunk holds at most u16::MAX samples"
                );
                self.put_samples(samples)
            }
        }
    }

    /// Writes `samples` (sorted, at least [`SHARED_SAMPLES_MIN`]) split, their times frame
    /// shared: found by their timestamps (then only the values are encoded), or encoded and
    /// found by its stream, or written.
    fn put_samples(&mut self, samples: &[(i64, f64)]) -> Result<ChunkRef, StorageError> {
        let mut h = rustc_hash::FxHasher::default();
        samples.len().hash(&mut h);
        samples.iter().for_each(|s| s.0.hash(&mut h));
        let key = h.finish();
        let same = |ts: &[i64]| {
            ts.len() == samples.len() && ts.iter().zip(samples).all(|(t, s)| *t == s.0)
        };
        if let Some(&(_, meta, times)) = self
            .sample_times
            .get(&key)
            .and_then(|entries| entries.iter().find(|(ts, _, _)| same(ts)))
        {
            let values = SplitEncoder::values_of(samples);
            return self.chunks.append_shared(meta, times, values.data());
        }
        let split = SplitEncoder::of(samples);
        let meta = split.times.meta();
        let times = self.times_frame(meta, split.times.data())?;
        let bytes = samples.len() * std::mem::size_of::<i64>();
        if self.sample_times_bytes + bytes <= SAMPLE_TIMES_BYTES_MAX {
            self.sample_times_bytes += bytes;
            let ts = samples.iter().map(|s| s.0).collect();
            self.sample_times
                .entry(key)
                .or_default()
                .push((ts, meta, times));
        }
        self.chunks.append_shared(meta, times, split.values.data())
    }

    /// The times frame holding `times`: one written before for another chunk, or a new one.
    fn times_frame(&mut self, meta: ChunkMeta, times: &[u8]) -> Result<ChunkRef, StorageError> {
        let mut h = rustc_hash::FxHasher::default();
        meta.num_samples.hash(&mut h);
        meta.min_t.hash(&mut h);
        times.hash(&mut h);
        let key = h.finish();
        if let Some(found) = self.times.get(&key).and_then(|entries| {
            entries
                .iter()
                .find(|(m, stream, _)| *m == meta && stream[..] == *times)
        }) {
            return Ok(found.2);
        }
        let at = self.chunks.append(Encoding::Xor, meta, times)?;
        if self.times_bytes + times.len() <= TIMES_TABLE_BYTES_MAX {
            self.times_bytes += times.len();
            self.times
                .entry(key)
                .or_default()
                .push((meta, times.into(), at));
        }
        Ok(at)
    }

    /// Series added so far.
    pub fn series(&self) -> u64 {
        self.meta.series
    }

    /// Gives up: removes what was written (best effort: opening a database removes leftover
    /// temporary directories too).
    pub fn abort(self) {
        if let Err(e) = self.fs.remove_dir_all(&self.tmp) {
            tracing::warn!(error = %e, dir = %self.tmp.display(), "could not remove an abandoned block; it is removed on the next open");
        }
    }

    /// Makes the block durable and publishes it; returns its metadata. On failure before the
    /// publishing rename, removes what was written.
    pub fn finish(self) -> Result<BlockMeta, StorageError> {
        let fs = Arc::clone(&self.fs);
        let tmp = self.tmp.clone();
        let dest = self.blocks_dir.join(&self.meta.id);
        let result = self.seal_and_publish();
        if result.is_err() {
            if fs.exists(&tmp).unwrap_or(false) {
                let _ = fs.remove_dir_all(&tmp);
            } else if fs.exists(&dest).unwrap_or(false) {
                // Renamed, but the rename may not be durable: the caller treats the block as
                // never written, so it must not turn up later. Out of the way first, so a
                // half-removed block is never read (opening removes `.deleting` leftovers).
                let gone = dest.with_extension("deleting");
                if fs.rename(&dest, &gone).is_ok() {
                    let _ = fs.remove_dir_all(&gone);
                }
            }
        }
        result
    }

    fn seal_and_publish(mut self) -> Result<BlockMeta, StorageError> {
        self.meta.chunk_bytes = self.chunks.finish()?;
        if self.meta.samples == 0 {
            self.meta.min_t = 0;
            self.meta.max_t = 0;
        }
        let index = self.index.finish();
        self.meta.index_bytes = index.len() as u64;
        write_synced(self.fs.as_ref(), &self.tmp.join(INDEX_FILE), &index)?;
        let meta_bytes = self.meta.encode();
        write_synced(self.fs.as_ref(), &self.tmp.join(META_FILE), &meta_bytes)?;
        self.fs
            .sync_dir(&self.tmp)
            .map_err(io_err("sync block directory", &self.tmp))?;
        let dest = self.blocks_dir.join(&self.meta.id);
        self.fs
            .rename(&self.tmp, &dest)
            .map_err(io_err("publish block", &self.tmp))?;
        self.fs
            .sync_dir(&self.blocks_dir)
            .map_err(io_err("sync blocks directory", &self.blocks_dir))?;
        BlockMeta::decode(&dest.join(META_FILE), &meta_bytes)
    }
}

fn write_synced(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut f = fs.create(path).map_err(io_err("create block file", path))?;
    f.append(bytes)
        .and_then(|()| f.sync())
        .map_err(io_err("write block file", path))
}
