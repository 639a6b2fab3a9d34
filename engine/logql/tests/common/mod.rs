//! What the LogQL tests share: an empty log store on the simulated disk, its clock at `NOW_MS`.

use std::path::Path;
use std::sync::Arc;

use strata_core::clock::ManualClock;
use strata_core::fs::sim::SimFs;
use strata_logs::{LogOptions, LogStore};

/// The tests' now, in milliseconds since the epoch.
pub const NOW_MS: i64 = 1_800_000_000_000;

/// An empty store in `/data/logs` on a fresh simulated disk.
pub fn empty_store() -> LogStore {
    let options = LogOptions {
        fs: Arc::new(SimFs::new(1)),
        clock: Arc::new(ManualClock::new(NOW_MS)),
        ..LogOptions::default()
    };
    LogStore::open(Path::new("/data/logs"), options).unwrap().0
}
