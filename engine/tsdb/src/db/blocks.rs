//! The database's blocks: found at open, cut from the head, replaced by compaction, removed by
//! retention.
//!
//! Blocks live in `<db>/blocks/<id>/`, ids being increasing decimal numbers. The set in memory
//! is an immutable, sorted list swapped as a whole, so a querier keeps the blocks it started
//! with even while compaction replaces them. A block is opened (its files mapped and checked)
//! on first use, so opening a database reads only each block's `meta.json`.
//!
//! Removal is crash-safe: a block is renamed to `<id>.deleting` before its files go, and
//! opening removes every `.deleting` and `.tmp` directory (unfinished removals and unpublished
//! blocks) and every block named as a source of another block (a compaction that published
//! its output but had not removed its inputs yet).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::block::Block;
use crate::block::meta::{BlockMeta, META_FILE};
use crate::block::tombstones::Tombstones;
use crate::block::writer::BlockWriter;
use crate::head::Head;
use crate::head::series::{BlockChunk, SeriesArc, Taken};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;

/// The blocks directory's name in a database directory.
pub const BLOCKS_DIR: &str = "blocks";
const TMP_SUFFIX: &str = ".tmp";
const DELETING_SUFFIX: &str = ".deleting";

/// A published block, opened on first use.
#[derive(Debug)]
pub(crate) struct BlockHandle {
    pub dir: PathBuf,
    pub meta: BlockMeta,
    opened: Mutex<Option<Arc<Block>>>,
    tombstones: RwLock<Arc<Tombstones>>,
}

impl BlockHandle {
    fn new(dir: PathBuf, meta: BlockMeta, tombstones: Tombstones) -> BlockHandle {
        BlockHandle {
            dir,
            meta,
            opened: Mutex::new(None),
            tombstones: RwLock::new(Arc::new(tombstones)),
        }
    }

    /// The ranges deleted from the block.
    pub fn tombstones(&self) -> Arc<Tombstones> {
        Arc::clone(&self.tombstones.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records more deleted ranges, durably, then makes queries skip them.
    pub fn set_tombstones(&self, fs: &dyn Fs, t: Tombstones) -> Result<(), StorageError> {
        t.write(fs, &self.dir)?;
        *self.tombstones.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(t);
        Ok(())
    }

    /// The open block (mapped and checked the first time).
    pub fn get(&self, fs: &dyn Fs) -> Result<Arc<Block>, StorageError> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &*opened {
            return Ok(Arc::clone(b));
        }
        let block = Arc::new(Block::open(fs, &self.dir)?);
        *opened = Some(Arc::clone(&block));
        Ok(block)
    }

    /// Whether the block holds any time in `[mint, maxt]`.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.samples > 0 && self.meta.max_t >= mint && self.meta.min_t <= maxt
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.meta.index_bytes + self.meta.chunk_bytes
    }
}

/// The list of blocks, sorted by `(min_t, id)`.
pub(crate) type BlockList = Arc<Vec<Arc<BlockHandle>>>;

/// What opening found in the blocks directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlocksReport {
    /// Blocks loaded.
    pub loaded: u64,
    /// Unpublished (`.tmp`) or half-removed (`.deleting`) directories removed.
    pub removed_partial: u64,
    /// Blocks removed because a compacted block already holds their data.
    pub removed_superseded: u64,
    /// Block directories whose `meta.json` or `tombstones.json` could not be read, with the
    /// reason; left in place and not read.
    pub damaged: Vec<(PathBuf, String)>,
}

#[derive(Debug)]
pub(crate) struct Blocks {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    list: RwLock<BlockList>,
    next_id: AtomicU64,
}

fn by_time(list: &mut [Arc<BlockHandle>]) {
    list.sort_by(|a, b| (a.meta.min_t, &a.meta.id).cmp(&(b.meta.min_t, &b.meta.id)));
}

impl Blocks {
    /// Loads the blocks in `dir` (created if missing) and finishes what a crash interrupted.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path) -> Result<(Blocks, BlocksReport), StorageError> {
        fs.create_dir_all(dir)
            .map_err(io_err("create blocks directory", dir))?;
        let mut report = BlocksReport::default();
        let mut max_id = 0u64;
        let mut found = Vec::new();
        let names = fs.list(dir).map_err(io_err("list blocks directory", dir))?;
        for name in names {
            let path = dir.join(&name);
            if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETING_SUFFIX) {
                fs.remove_dir_all(&path)
                    .map_err(io_err("remove unfinished block", &path))?;
                report.removed_partial += 1;
                if let Some(id) = name.split('.').next().and_then(|s| s.parse::<u64>().ok()) {
                    max_id = max_id.max(id);
                }
                continue;
            }
            let Ok(id) = name.parse::<u64>() else {
                continue;
            };
            max_id = max_id.max(id);
            let meta_path = path.join(META_FILE);
            let meta = fs
                .read(&meta_path)
                .map_err(io_err("read block meta", &meta_path))
                .and_then(|bytes| BlockMeta::decode(&meta_path, &bytes))
                .and_then(|meta| Ok((meta, Tombstones::read(fs.as_ref(), &path)?)));
            match meta {
                Ok((meta, tombstones)) if meta.id == name => {
                    found.push(BlockHandle::new(path, meta, tombstones));
                }
                Ok(_) => report
                    .damaged
                    .push((path, "meta.json names another block".to_string())),
                Err(e) => report.damaged.push((path, e.to_string())),
            }
        }
        let superseded: BTreeSet<String> = found
            .iter()
            .flat_map(|b| b.meta.sources.iter().cloned())
            .collect();
        let mut list = Vec::new();
        for b in found {
            if superseded.contains(&b.meta.id) {
                remove_block_dir(fs.as_ref(), dir, &b.meta.id)?;
                report.removed_superseded += 1;
            } else {
                list.push(Arc::new(b));
            }
        }
        if report.removed_partial + report.removed_superseded > 0 {
            fs.sync_dir(dir)
                .map_err(io_err("sync blocks directory", dir))?;
        }
        by_time(&mut list);
        report.loaded = list.len() as u64;
        for (path, reason) in &report.damaged {
            tracing::error!(dir = %path.display(), reason, "block not loaded: its meta.json or tombstones.json is damaged");
        }
        Ok((
            Blocks {
                fs,
                dir: dir.to_path_buf(),
                list: RwLock::new(Arc::new(list)),
                next_id: AtomicU64::new(max_id + 1),
            },
            report,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current list.
    pub fn snapshot(&self) -> BlockList {
        Arc::clone(&self.list.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether block `id` is in the current list.
    pub fn contains(&self, id: &str) -> bool {
        self.snapshot().iter().any(|b| b.meta.id == id)
    }

    /// A new, unused block id.
    pub fn new_id(&self) -> String {
        format!("{:08}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Swaps `removed` (by id) for `added` in the list; returns the handles removed.
    pub fn replace(&self, removed: &[String], added: Option<BlockMeta>) -> Vec<Arc<BlockHandle>> {
        let mut guard = self.list.write().unwrap_or_else(|p| p.into_inner());
        let (gone, mut kept): (Vec<_>, Vec<_>) = guard
            .iter()
            .cloned()
            .partition(|b| removed.contains(&b.meta.id));
        if let Some(meta) = added {
            kept.push(Arc::new(BlockHandle::new(
                self.dir.join(&meta.id),
                meta,
                Tombstones::default(),
            )));
        }
        by_time(&mut kept);
        *guard = Arc::new(kept);
        gone
    }

    /// Takes blocks `ids` out of the list (putting `added` in, atomically for queriers), then
    /// removes them from the disk.
    pub fn retire(&self, ids: &[String], added: Option<BlockMeta>) -> Result<(), StorageError> {
        self.replace(ids, added);
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            remove_block_dir(self.fs.as_ref(), &self.dir, id)?;
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("sync blocks directory", &self.dir))
    }
}

/// Renames a block out of the way, then removes it: a crash in between leaves a `.deleting`
/// directory that the next open removes, never a half-removed block that looks whole.
fn remove_block_dir(fs: &dyn Fs, dir: &Path, id: &str) -> Result<(), StorageError> {
    let from = dir.join(id);
    let to = dir.join(format!("{id}{DELETING_SUFFIX}"));
    fs.rename(&from, &to)
        .map_err(io_err("rename block for removal", &from))?;
    fs.remove_dir_all(&to).map_err(io_err("remove block", &to))
}

/// What a head block took from each series.
pub(crate) type TakenFromHead = Vec<(SeriesArc, Taken)>;

/// Writes every sample the head holds before `hi` into a new level-1 block `dir/id` and
/// publishes it.
/// Returns its metadata and what was taken from each series, for [`crate::head::series::MemSeries::truncate`]
/// once the block is in the list; `None` if the head holds nothing before `hi`.
pub(crate) fn write_head_block(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    id: &str,
    head: &Head,
    hi: i64,
    chunk_samples_max: u16,
) -> Result<Option<(BlockMeta, TakenFromHead)>, StorageError> {
    let mut series: Vec<SeriesArc> = Vec::with_capacity(head.num_series() as usize);
    head.for_each_series(|s| series.push(SeriesArc::clone(s)));
    series.sort_unstable_by(|a, b| a.labels().cmp(b.labels()));
    let mut writer = BlockWriter::create(Arc::clone(fs), dir, id, 1, Vec::new())?;
    let mut taken = Vec::new();
    for s in series {
        let Some((chunks, t)) = s.take_before(hi, chunk_samples_max) else {
            continue;
        };
        let refs: Vec<_> = chunks.iter().map(BlockChunk::as_chunk_in).collect();
        if let Err(e) = writer.add_series(&s.to_labels(), &refs) {
            writer.abort();
            return Err(e);
        }
        taken.push((s, t));
    }
    if taken.is_empty() {
        writer.abort();
        return Ok(None);
    }
    let meta = writer.finish()?;
    Ok(Some((meta, taken)))
}
