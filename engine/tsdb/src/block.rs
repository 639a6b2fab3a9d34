//! Blocks: immutable directories holding a time range of series on disk.
//!
//! ```text
//! <blocks>/<id>/
//!   chunks/00000001 …   chunk frames (chunks)
//!   index               symbols, series, label values, postings (index)
//!   meta.json           what the block holds, checksummed (meta)
//!   tombstones.json     ranges deleted since it was written, if any (tombstones)
//! ```
//!
//! [`writer::BlockWriter`] builds one under `<id>.tmp/` and publishes it by rename once it is
//! durable; [`Block::open`] maps it and checks every file's framing and checksums. Formats in
//! `docs/format/block.md` and `docs/format/index.md`.

pub mod chunks;
pub mod index;
pub mod meta;
pub mod tombstones;
pub mod writer;

use std::path::{Path, PathBuf};

use chunks::ChunksReader;
use index::IndexReader;
use meta::{BlockMeta, META_FILE};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::sample::Sample;

/// The chunk files' directory inside a block.
pub const CHUNKS_DIR: &str = "chunks";
/// The index file's name inside a block.
pub const INDEX_FILE: &str = "index";

/// An open, immutable block.
#[derive(Debug, Clone)]
pub struct Block {
    /// A number no other block opened by this process has: the decoded-chunk cache's key.
    uid: u64,
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunksReader,
}

impl Block {
    /// Opens the block in `dir`: reads and checks `meta.json`, maps and checks the index and
    /// the chunk files' headers.
    pub fn open(fs: &dyn Fs, dir: &Path) -> Result<Block, StorageError> {
        let meta_path = dir.join(META_FILE);
        let meta_bytes = fs
            .read(&meta_path)
            .map_err(io_err("read block meta", &meta_path))?;
        let meta = BlockMeta::decode(&meta_path, &meta_bytes)?;
        let index_path = dir.join(INDEX_FILE);
        let index_map = fs
            .map(&index_path)
            .map_err(io_err("map block index", &index_path))?;
        let index = IndexReader::open(index_path, index_map)?;
        let chunks = ChunksReader::open(fs, &dir.join(CHUNKS_DIR))?;
        if u64::from(index.num_series()) != meta.series {
            return Err(StorageError::Corruption {
                path: meta_path,
                offset: 0,
                reason: "block meta and index disagree on the number of series",
            });
        }
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Block {
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
        })
    }

    /// The number that tells this opened block from every other one of the process.
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// What the block holds.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block's index.
    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    /// The block's chunk files.
    pub fn chunks(&self) -> &ChunksReader {
        &self.chunks
    }

    /// Bytes the block takes on disk (index, chunk files, meta).
    pub fn bytes(&self) -> u64 {
        self.meta.index_bytes + self.meta.chunk_bytes
    }

    /// The series matching `matchers` with their samples in `[mint, maxt]` (series without
    /// samples in range are left out), in label order. Every chunk read is checked.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, StorageError> {
        let mut out = Vec::new();
        if maxt < self.meta.min_t || mint > self.meta.max_t {
            return Ok(out);
        }
        for id in self.index.select(matchers)? {
            let (labels, refs) = self.index.series(id)?;
            let mut samples = Vec::new();
            for c in refs.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt) {
                let frame = self.chunks.read(c.chunk)?;
                samples.extend(
                    frame
                        .samples()
                        .filter(|&(t, _)| t >= mint && t <= maxt)
                        .map(|(t, v)| Sample::new(t, v)),
                );
            }
            if !samples.is_empty() {
                out.push((labels, samples));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::writer::BlockWriter;
    use super::*;
    use crate::chunk::xor::XorEncoder;
    use strata_core::fs::sim::SimFs;
    use strata_core::labels::matcher::MatchKind;

    const T0: i64 = 1_700_000_000_000;

    fn writer(fs: &SimFs) -> BlockWriter {
        BlockWriter::create(
            Arc::new(fs.clone()),
            Path::new("/db/blocks"),
            "b1",
            1,
            vec![],
        )
        .unwrap()
    }

    /// Writes `series` series × 3 chunks of 120 samples; returns what was written.
    fn write_block(fs: &SimFs, series: usize) -> Vec<(Labels, Vec<Sample>)> {
        let mut w = writer(fs);
        let mut all: Vec<(Labels, Vec<Sample>)> = (0..series)
            .map(|s| {
                let labels = Labels::new([
                    ("__name__", if s % 2 == 0 { "up" } else { "load" }),
                    ("instance", format!("host-{s:03}").as_str()),
                ])
                .unwrap();
                let samples = (0..360)
                    .map(|i| Sample::new(T0 + i * 15_000, (s * 1000 + i as usize) as f64 / 4.0))
                    .collect();
                (labels, samples)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        for (labels, samples) in &all {
            let encoded: Vec<(crate::chunk::ChunkMeta, Vec<u8>)> = samples
                .chunks(120)
                .map(|part| {
                    let mut enc = XorEncoder::new();
                    for s in part {
                        enc.append(s.t, s.v);
                    }
                    (enc.meta(), enc.into_data())
                })
                .collect();
            let refs: Vec<_> = encoded
                .iter()
                .map(|(m, d)| super::writer::ChunkIn::Xor(*m, &d[..]))
                .collect();
            w.add_series(labels, &refs).unwrap();
        }
        let meta = w.finish().unwrap();
        assert_eq!(meta.series, series as u64);
        assert_eq!(meta.samples, series as u64 * 360);
        assert_eq!((meta.min_t, meta.max_t), (T0, T0 + 359 * 15_000));
        all
    }

    /// Series with the same timestamps share one times frame; a short chunk stays encoding 2;
    /// everything reads back exactly.
    #[test]
    fn series_with_the_same_timestamps_share_one_times_frame() {
        use super::writer::ChunkIn;
        use crate::chunk::{Encoding, Times};
        let fs = SimFs::new(0);
        let mut w = writer(&fs);
        let times: Vec<i64> = (0..400)
            .map(|i| T0 + i * 15_000 + (i % 5 == 2) as i64 * 3)
            .collect();
        let mut written = Vec::new();
        for s in 0..20usize {
            let labels =
                Labels::new([("__name__", "m"), ("i", format!("{s:02}").as_str())]).unwrap();
            // Series 19 has one more sample, alone in a chunk of its own timestamps.
            let n = if s == 19 { 401 } else { 400 };
            let samples: Vec<(i64, f64)> = (0..n)
                .map(|i| {
                    let t = times.get(i).copied().unwrap_or(T0 + 400 * 15_000);
                    (t, (s * 10_000 + i * i % 97) as f64 * 0.5)
                })
                .collect();
            w.add_series_samples(&labels, &samples, 200).unwrap();
            written.push((labels, samples));
        }
        // An encoding-2 chunk handed in as it is gets split too.
        let labels = Labels::new([("__name__", "n")]).unwrap();
        let mut enc = XorEncoder::new();
        times[..200].iter().for_each(|&t| enc.append(t, 4.0));
        w.add_series(&labels, &[ChunkIn::Xor(enc.meta(), enc.data())])
            .unwrap();
        written.push((labels, times[..200].iter().map(|&t| (t, 4.0)).collect()));
        w.finish().unwrap();

        let block = Block::open(&fs, Path::new("/db/blocks/b1")).unwrap();
        let file = fs.read(Path::new("/db/blocks/b1/chunks/00000001")).unwrap();
        let mut times_refs = std::collections::BTreeSet::new();
        let mut encodings = Vec::new();
        for id in 0..block.index().num_series() {
            let (labels, chunks) = block.index().series(id).unwrap();
            let got: Vec<(i64, f64)> = chunks
                .iter()
                .flat_map(|c| block.chunks().read(c.chunk).unwrap().samples())
                .collect();
            let want = &written.iter().find(|(l, _)| *l == labels).unwrap().1;
            assert_eq!(&got, want, "{labels:?}");
            for c in &chunks {
                let raw = crate::chunk::read_frame(&file[c.chunk.offset() as usize..])
                    .unwrap()
                    .0;
                encodings.push(raw.encoding);
                if let Times::Ref(r) = raw.times {
                    times_refs.insert(r);
                }
            }
        }
        // 20 × 2 + 1 chunks of 200 samples, and series 19's last of 1.
        assert_eq!(encodings.iter().filter(|&&e| e == Encoding::Xor).count(), 1);
        assert_eq!(encodings.len(), 42);
        // Two windows of 200 timestamps, shared by every series.
        assert_eq!(times_refs.len(), 2);
    }

    #[test]
    fn a_written_block_reads_back_exactly() {
        let fs = SimFs::new(0);
        let all = write_block(&fs, 20);
        let block = Block::open(&fs, Path::new("/db/blocks/b1")).unwrap();
        let got = block
            .select(
                &[Matcher::new(MatchKind::Regex, "__name__", ".+").unwrap()],
                i64::MIN,
                i64::MAX,
            )
            .unwrap();
        assert_eq!(got, all);
        let ups = block
            .select(
                &[Matcher::equal("__name__", "up")],
                T0 + 15_000,
                T0 + 30_000,
            )
            .unwrap();
        assert_eq!(ups.len(), 10);
        assert!(ups.iter().all(|(_, s)| s.len() == 2));
        assert!(block.select(&[], T0 - 10, T0 - 1).unwrap().is_empty());
    }

    #[test]
    fn a_block_is_visible_only_once_published_and_survives_a_crash() {
        let fs = SimFs::new(3);
        let all = write_block(&fs, 5);
        assert!(!fs.exists(Path::new("/db/blocks/b1.tmp")).unwrap());
        let after = fs.crash();
        let block = Block::open(&after, Path::new("/db/blocks/b1")).unwrap();
        assert_eq!(block.select(&[], i64::MIN, i64::MAX).unwrap(), all);
    }

    #[test]
    fn damage_in_any_block_file_is_a_corruption_error() {
        let fs = SimFs::new(0);
        write_block(&fs, 4);
        for file in ["meta.json", "index", "chunks/00000001"] {
            let path = Path::new("/db/blocks/b1").join(file);
            let good = fs.read(&path).unwrap();
            // A byte in the middle of the file (in the chunk file: inside some chunk).
            let mut bad = good.clone();
            let at = good.len() / 2;
            bad[at] ^= 0x20;
            fs.set_content(&path, &bad).unwrap();
            let result = Block::open(&fs, Path::new("/db/blocks/b1"))
                .and_then(|b| b.select(&[], i64::MIN, i64::MAX));
            assert!(
                matches!(result, Err(StorageError::Corruption { .. })),
                "{file}: {result:?}"
            );
            fs.set_content(&path, &good).unwrap();
        }
    }
}
