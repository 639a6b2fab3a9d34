//! What the database's operations report: opening, commits, checkpoints, maintenance,
//! deletion, snapshots, and the summary of its state.

use strata_wal::WalStats;
use strata_wal::replay::ReplayReport;

use super::blocks::BlocksReport;
use super::decoded::DecodedCacheStats;

/// What opening found and did: the WAL replay, and the head it rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The WAL's replay: checkpoint, segments, torn tail, quarantined files.
    pub wal: ReplayReport,
    /// Series in the head after replay.
    pub series: u64,
    /// Samples replayed into the head (checkpointed chunks count their samples).
    pub samples: u64,
    /// Replayed samples whose series record was lost to damage.
    pub orphaned_samples: u64,
    /// What was found in the blocks directory.
    pub blocks: BlocksReport,
}

/// What [`Db::delete_series`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteStats {
    /// Series in the head that had samples removed.
    pub head_series: u64,
    /// Samples removed from the head.
    pub head_samples: u64,
    /// Block series given a tombstone (a series counts once per block holding it).
    pub block_series: u64,
}

/// What a round of [`Db::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Blocks written from the head.
    pub blocks_cut: u64,
    /// Compactions done (each merged two or more blocks into one).
    pub compactions: u64,
    /// Blocks removed by retention.
    pub blocks_expired: u64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Samples written.
    pub samples: u64,
    /// Samples dropped because the same value was already stored (idempotent retries).
    pub duplicates: u64,
    /// New series written.
    pub series_created: u64,
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The segment number it stands for everything below.
    pub segment: u32,
    /// Series written.
    pub series: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// WAL files removed.
    pub files_removed: u64,
}

/// What [`Db::snapshot`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Blocks linked or copied.
    pub blocks: u64,
    /// Samples in the block written from the head (0 with `skip_head` or an empty head).
    pub head_samples: u64,
}

/// A summary of the database's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Series in the head.
    pub series: u64,
    /// The first and last timestamps held in the head, if it holds any sample.
    pub head_time_range: Option<(i64, i64)>,
    /// Samples in the head.
    pub samples: u64,
    /// Chunks in the head (closed, active and out-of-order).
    pub chunks: u64,
    /// Bytes of encoded chunk data in the head.
    pub chunk_bytes: u64,
    /// Distinct label strings held.
    pub interned_strings: u64,
    /// Samples applied in order since open.
    pub samples_in_order: u64,
    /// Samples applied out of order since open.
    pub samples_out_of_order: u64,
    /// Samples acknowledged as duplicates of stored data since open.
    pub samples_duplicate: u64,
    /// Samples that lost a race for a timestamp against a different value.
    pub samples_conflict: u64,
    /// WAL counters since open.
    pub wal: WalStats,
    /// Checkpoints written since open.
    pub checkpoints: u64,
    /// Blocks on disk.
    pub blocks: u64,
    /// Bytes the blocks take on disk.
    pub block_bytes: u64,
    /// Samples in blocks (as written; a sample in two overlapping blocks counts twice).
    pub block_samples: u64,
    /// Bytes the WAL directory's files take (segments, checkpoint, quarantine).
    pub wal_disk_bytes: u64,
    /// Maintenance since open: blocks cut, compactions, blocks expired.
    pub maintenance: MaintenanceReport,
    /// The decoded-chunk cache: its size and hits since open.
    pub decoded_cache: DecodedCacheStats,
    /// The cache of decoded shared times frames (encoding 3), part of the same budget.
    pub decoded_times_cache: DecodedCacheStats,
}
