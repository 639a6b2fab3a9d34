//! The background work every store shares one thread for. The metrics store's database runs
//! the thread (`strata_tsdb::Db`, its blocks, compaction and retention); each other store
//! hands it a [`Maintained`] (`Db::add_maintained`), run after the metrics store's own round
//! on the same schedule, so a process has one maintenance thread whatever stores it holds.
//! A store whose work cannot wait for the schedule (a log head grown to its seal size in a
//! burst) asks for a round at once through the [`Waker`] it is given.

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::StorageError;

/// A store's share of the background work: sealing, compaction, retention.
pub trait Maintained: Send + Sync + Debug {
    /// The store's name, for logs.
    fn name(&self) -> &'static str;

    /// One round. An error is logged and the round runs again at the next interval.
    fn maintain_round(&self) -> Result<(), StorageError>;

    /// Receives the waker that asks the maintenance thread for this store's round now
    /// (given once, when the store is handed to the thread). Stores that only need the
    /// schedule ignore it.
    fn set_waker(&self, waker: Waker) {
        let _ = waker;
    }
}

/// Asks the maintenance thread for a round of the stores handed to it, without waiting for
/// the schedule. Cheap and idempotent: asking again before the round runs changes nothing.
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker(Arc::new(wake))
    }

    pub fn wake(&self) {
        (self.0)()
    }
}

impl Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}
