//! Strata's metrics store: series of millisecond float samples, kept durable and queryable.
//!
//! Samples belong to series named by label sets. They are appended in batches; a committed
//! batch is in the write-ahead log (`strata-wal`, synced to disk by default) before
//! [`Appender::commit`] returns. Recent data lives in the [`head`]: XOR-compressed
//! [`chunk`]s in memory, indexed by label ([`strata_core::postings`]). Older data moves into
//! immutable [`block`]s on disk, which background maintenance ([`Db::maintain`]) compacts and
//! expires; a [`Querier`] sees head and blocks as one.
//!
//! Layers: this crate builds on `strata-core` (labels, the label index, files, clock, codecs)
//! and `strata-wal` (framing, group commit, checkpoints, recovery); it supplies the log's
//! metrics records ([`record`]). Query languages (`strata-promql`) sit above it.

pub mod block;
pub mod chunk;
mod db;
pub mod error;
mod head;
pub mod record;

pub use db::{
    Appender, BlocksReport, CheckpointStats, CommitStats, Db, DecodedCacheStats, DeleteStats,
    MaintenanceReport, OpenReport, Options, Querier, Samples, SelectedSeries, SnapshotStats, Stats,
};
pub use error::{AppendError, CommitError, OpenError, QueryError};
