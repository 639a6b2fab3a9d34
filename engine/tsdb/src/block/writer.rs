//! Writing a block, and publishing it only once it is whole and durable.
//!
//! Everything goes into `<blocks>/<id>.tmp/`: the chunk files as series are added, then the
//! index and `meta.json`. [`BlockWriter::finish`] syncs every file and the temporary
//! directory, renames it to `<blocks>/<id>`, and syncs `<blocks>`. A crash before the rename
//! leaves only a `.tmp` directory, which is never read; after it, a complete block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chunks::ChunksWriter;
use super::index::{IndexChunk, IndexWriter};
use super::meta::{BlockMeta, META_FILE, META_FORMAT};
use super::{CHUNKS_DIR, INDEX_FILE};
use crate::chunk::{ChunkMeta, Encoding};
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
        })
    }

    /// Adds the next series (series come in increasing label order) with its chunks, sorted by
    /// time and not overlapping.
    pub fn add_series(
        &mut self,
        labels: &Labels,
        chunks: &[(ChunkMeta, &[u8])],
    ) -> Result<(), StorageError> {
        let mut entries = Vec::with_capacity(chunks.len());
        for (meta, data) in chunks {
            let at = self.chunks.append(Encoding::Xor, *meta, data)?;
            entries.push(IndexChunk {
                min_t: meta.min_t,
                max_t: meta.max_t,
                chunk: at,
            });
            self.meta.min_t = self.meta.min_t.min(meta.min_t);
            self.meta.max_t = self.meta.max_t.max(meta.max_t);
            self.meta.samples += u64::from(meta.num_samples);
        }
        self.meta.chunks += chunks.len() as u64;
        self.meta.series += 1;
        self.index.add_series(labels, &entries);
        Ok(())
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
