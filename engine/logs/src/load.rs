//! Loading a store's blocks on opening: what an unfinished write or compaction left is
//! removed, damaged blocks are set aside, the rest opened.

use std::path::Path;

use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;

use crate::block::LogBlock;

/// The blocks found on opening.
pub(crate) struct Loaded {
    pub blocks: Vec<LogBlock>,
    /// The number the next block gets.
    pub next: u32,
    pub unfinished: usize,
    pub damaged: usize,
    /// Blocks another (a compaction's) names as merged into it, removed.
    pub merged: usize,
}

/// Opens the blocks in `dir`: removes what an unfinished write left (`*.tmp`, and blocks
/// numbered above `sealed`, whose entries the log still holds), and sets aside blocks that
/// fail their checks.
pub(crate) fn load_blocks(fs: &dyn Fs, dir: &Path, sealed: u32) -> Result<Loaded, StorageError> {
    let mut loaded = Loaded {
        blocks: Vec::new(),
        next: sealed + 1,
        unfinished: 0,
        damaged: 0,
        merged: 0,
    };
    if !fs.exists(dir).map_err(io_err("look for log blocks", dir))? {
        return Ok(loaded);
    }
    let mut names = fs.list(dir).map_err(io_err("list log blocks", dir))?;
    names.sort();
    let mut changed = false;
    for name in names {
        let path = dir.join(&name);
        let seq = name
            .strip_suffix(".lblk")
            .filter(|n| n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok());
        let Some(seq) = seq else {
            if name.ends_with(".tmp") {
                fs.remove_file(&path)
                    .map_err(io_err("remove unfinished log block", &path))?;
                changed = true;
            }
            continue;
        };
        loaded.next = loaded.next.max(seq + 1);
        if seq > sealed {
            fs.remove_file(&path)
                .map_err(io_err("remove unfinished log block", &path))?;
            loaded.unfinished += 1;
            changed = true;
            continue;
        }
        match LogBlock::open(fs, &path) {
            Ok(block) => loaded.blocks.push(block),
            Err(StorageError::Corruption { offset, reason, .. }) => {
                tracing::error!(path = %path.display(), offset, reason, "damaged log block set aside");
                let aside = dir.join(format!("{name}.damaged"));
                fs.rename(&path, &aside)
                    .map_err(io_err("set aside damaged log block", &path))?;
                loaded.damaged += 1;
                changed = true;
            }
            Err(e) => return Err(e),
        }
    }
    // A compaction that stopped between renaming its block into place and removing its
    // other sources left them: their entries are in the merged block.
    let merged: std::collections::HashSet<u32> = loaded
        .blocks
        .iter()
        .flat_map(|b| b.sources().iter().copied())
        .collect();
    let mut kept = Vec::with_capacity(loaded.blocks.len());
    for b in std::mem::take(&mut loaded.blocks) {
        if merged.contains(&b.seq()) {
            fs.remove_file(b.path())
                .map_err(io_err("remove merged log block", b.path()))?;
            loaded.merged += 1;
            changed = true;
        } else {
            kept.push(b);
        }
    }
    loaded.blocks = kept;
    if changed {
        fs.sync_dir(dir)
            .map_err(io_err("sync log blocks directory", dir))?;
    }
    Ok(loaded)
}
