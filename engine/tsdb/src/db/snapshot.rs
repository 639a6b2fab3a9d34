//! Snapshots: a directory of hard links to every block, plus a block written from the head,
//! that a backup can copy while the database keeps running.

use std::path::Path;

use strata_core::error::StorageError;
use strata_core::fs::Fs;

use super::report::SnapshotStats;
use super::{Inner, blocks};

impl Inner {
    /// Links every block into `dir/blocks` and, unless `skip_head`, writes the head's samples
    /// there as one more block.
    pub(super) fn snapshot(
        &self,
        dir: &Path,
        skip_head: bool,
    ) -> Result<SnapshotStats, StorageError> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |e| StorageError::io(op, path, e)
        };
        let target = dir.join(blocks::BLOCKS_DIR);
        // Blocks in the list stay on disk while it is held: compaction and retention wait.
        let _maintenance = self.maintaining.lock().unwrap_or_else(|p| p.into_inner());
        self.fs
            .create_dir_all(&target)
            .map_err(io("create snapshot directory", &target))?;
        let mut stats = SnapshotStats::default();
        for handle in self.blocks.snapshot().iter() {
            let from = self.blocks.dir().join(&handle.meta.id);
            link_tree(self.fs.as_ref(), &from, &target.join(&handle.meta.id))?;
            stats.blocks += 1;
        }
        if !skip_head {
            let written = blocks::write_head_block(
                &self.fs,
                &target,
                &self.blocks.new_id(),
                &self.head,
                i64::MAX,
                self.options.block_chunk_samples_max,
            )?;
            if let Some((meta, _)) = written {
                stats.head_samples = meta.samples;
            }
        }
        self.fs
            .sync_dir(&target)
            .map_err(io("sync snapshot directory", &target))?;
        Ok(stats)
    }
}

/// Links (or copies) the sealed files of directory `from` into a new directory `to`,
/// subdirectories too, and syncs each directory.
fn link_tree(fs: &dyn Fs, from: &Path, to: &Path) -> Result<(), StorageError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e| StorageError::io(op, path, e)
    };
    fs.create_dir_all(to)
        .map_err(io("create snapshot directory", to))?;
    for name in fs.list(from).map_err(io("list block directory", from))? {
        let (src, dst) = (from.join(&name), to.join(&name));
        match fs.list(&src) {
            Ok(_) => link_tree(fs, &src, &dst)?,
            Err(_) => fs
                .link_sealed(&src, &dst)
                .map_err(io("link block file", &dst))?,
        }
    }
    fs.sync_dir(to).map_err(io("sync snapshot directory", to))
}
