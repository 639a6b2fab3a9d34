//! The background work every store shares one thread for. The metrics store's database runs
//! the thread (`strata_tsdb::Db`, its blocks, compaction and retention); each other store
//! hands it a [`Maintained`] (`Db::add_maintained`), run after the metrics store's own round
//! on the same schedule, so a process has one maintenance thread whatever stores it holds.

use std::fmt::Debug;

use crate::error::StorageError;

/// A store's share of the background work: sealing, compaction, retention.
pub trait Maintained: Send + Sync + Debug {
    /// The store's name, for logs.
    fn name(&self) -> &'static str;

    /// One round. An error is logged and the round runs again at the next interval.
    fn maintain_round(&self) -> Result<(), StorageError>;
}
