//! Deleting series: samples dropped from the head, tombstones written for the blocks.

use std::sync::atomic::Ordering;

use strata_core::error::StorageError;
use strata_core::labels::matcher::Matcher;

use super::Inner;
use super::report::DeleteStats;

impl Inner {
    pub(super) fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<DeleteStats, StorageError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(StorageError::Closed);
        }
        let mut stats = DeleteStats::default();
        if mint > maxt {
            return Ok(stats);
        }
        // Block cuts and compactions read data that this changes: not while it runs.
        let _one = self.maintaining.lock().unwrap_or_else(|p| p.into_inner());
        for handle in self
            .blocks
            .snapshot()
            .iter()
            .filter(|b| b.overlaps(mint, maxt))
        {
            let block = handle.get(self.fs.as_ref())?;
            let mut tombstones = (*handle.tombstones()).clone();
            let mut added = 0;
            for id in block.index().select(matchers)? {
                let (_, chunks) = block.index().series(id)?;
                if chunks.iter().any(|c| c.max_t >= mint && c.min_t <= maxt) {
                    tombstones.add(id, mint, maxt);
                    added += 1;
                }
            }
            if added > 0 {
                handle.set_tombstones(self.fs.as_ref(), tombstones)?;
                stats.block_series += added;
            }
        }
        {
            // No commit in flight: each one's samples are either deleted or logged after.
            let _cut = self.gate.write().unwrap_or_else(|p| p.into_inner());
            for s in self.head.select(matchers) {
                let n = s.delete_range(mint, maxt);
                if n > 0 {
                    stats.head_series += 1;
                    stats.head_samples += n;
                }
            }
        }
        if stats.head_samples > 0 {
            // The WAL still holds the deleted samples; a checkpoint of the head replaces it.
            self.checkpoint()?;
        }
        tracing::info!(?matchers, mint, maxt, ?stats, "series deleted");
        Ok(stats)
    }
}
