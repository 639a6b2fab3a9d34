//! Background maintenance: the thread that wakes every interval (or on a checkpoint request)
//! and a round of it: blocks cut from the head, compaction, retention.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strata_core::error::StorageError;
use strata_core::fs::Fs;

use super::report::MaintenanceReport;
use super::{Inner, blocks, compact};
use crate::head::series::SeriesArc;

/// When the maintenance thread runs a round: once `interval` has passed since the last one,
/// however often it is woken in between.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    last: Instant,
}

impl Schedule {
    fn new(now: Instant) -> Schedule {
        Schedule { last: now }
    }

    /// How long to wait, at most, before the next round is due.
    fn wait(&self, now: Instant, interval: Duration) -> Duration {
        interval.saturating_sub(now.saturating_duration_since(self.last))
    }

    /// Whether a round is due at `now`; if so, it counts as run.
    fn due(&mut self, now: Instant, interval: Duration) -> bool {
        let due = now.saturating_duration_since(self.last) >= interval;
        if due {
            self.last = now;
        }
        due
    }
}

/// What the maintenance thread is asked to do.
#[derive(Debug, Default)]
pub(super) struct Maintenance {
    /// A checkpoint was requested.
    pub wanted: bool,
    /// A store handed to the thread asked for its round now.
    pub stores_wanted: bool,
    /// The database is closing.
    pub stop: bool,
}

impl Inner {
    pub(super) fn spawn_maintenance(inner: &Arc<Inner>) -> JoinHandle<()> {
        let weak = Arc::downgrade(inner);
        std::thread::Builder::new()
            .name("strata-maintenance".into())
            .spawn(move || {
                // Maintenance runs once an interval has passed since it last ran, whatever
                // woke the thread: a catch-up asks for checkpoints more often than the
                // interval, and when only a timed-out wait ran it, no block was cut for as
                // long as the load lasted (the head grew to 250 M samples, docs/perf.md).
                let mut schedule = Schedule::new(Instant::now());
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    {
                        let interval = inner.options.maintenance_interval;
                        let m = inner.maintenance.lock().unwrap_or_else(|p| p.into_inner());
                        let (mut m, _) = inner
                            .maintenance_cond
                            .wait_timeout_while(
                                m,
                                schedule.wait(Instant::now(), interval),
                                |m| !m.wanted && !m.stores_wanted && !m.stop,
                            )
                            .unwrap_or_else(|p| p.into_inner());
                        if m.stop {
                            return;
                        }
                        let checkpoint_wanted = std::mem::take(&mut m.wanted);
                        let stores_wanted = std::mem::take(&mut m.stores_wanted);
                        drop(m);
                        let due = schedule.due(Instant::now(), interval);
                        if due && let Err(e) = inner.maintain() {
                            tracing::error!(error = %e, "background maintenance failed; it is retried at the next interval");
                        }
                        // The other stores run on the schedule, and at once when one asks.
                        if due || stores_wanted {
                            let others = inner
                                .maintained
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .clone();
                            for store in others {
                                if let Err(e) = store.maintain_round() {
                                    tracing::error!(store = store.name(), error = %e, "background maintenance failed; it is retried at the next interval");
                                }
                            }
                        }
                        if checkpoint_wanted
                            && let Err(e) = inner.checkpoint()
                        {
                            tracing::error!(error = %e, "background checkpoint failed; the WAL keeps growing until one succeeds");
                        }
                    }
                }
            })
            .expect("spawning the maintenance thread")
    }

    pub(super) fn maintain(&self) -> Result<MaintenanceReport, StorageError> {
        let _one = self.maintaining.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = MaintenanceReport::default();
        let result = self
            .cut_head_blocks(&mut report)
            .and_then(|()| self.compact(&mut report))
            .and_then(|()| self.expire(&mut report));
        let mut done = self
            .maintenance_done
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        done.blocks_cut += report.blocks_cut;
        done.compactions += report.compactions;
        done.blocks_expired += report.blocks_expired;
        result.map(|()| report)
    }

    /// Moves the head's data older than its window into blocks, then checkpoints so the WAL
    /// behind them goes. The head keeps at most one and a half block ranges: the range
    /// `[lo, lo + r)` holding its oldest sample is cut once its newest is `r / 2` past it.
    pub(super) fn cut_head_blocks(
        &self,
        report: &mut MaintenanceReport,
    ) -> Result<(), StorageError> {
        let r = self.options.block_ranges_ms[0];
        let mut last_hi = None;
        let mut emptied: Vec<SeriesArc> = Vec::new();
        while let Some((lo_t, hi_t)) = self.head.time_range() {
            let hi = lo_t.div_euclid(r).saturating_mul(r).saturating_add(r);
            if hi_t < hi.saturating_add(r / 2) || last_hi == Some(hi) {
                // Not due, or data older than the last cut arrived during it: next round.
                break;
            }
            let written = blocks::write_head_block(
                &self.fs,
                self.blocks.dir(),
                &self.blocks.new_id(),
                &self.head,
                hi,
                self.options.block_chunk_samples_max,
            )?;
            if let Some((meta, taken)) = written {
                tracing::info!(block = %meta.id, min_t = meta.min_t, max_t = meta.max_t, series = meta.series, samples = meta.samples, "block cut from the head");
                self.blocks.replace(&[], Some(meta));
                for (series, t) in taken {
                    series.truncate(&t);
                    emptied.push(series);
                }
                report.blocks_cut += 1;
            }
            self.head.recompute_min_t();
            last_hi = Some(hi);
        }
        if !emptied.is_empty() {
            // Series whose data all went to blocks leave the head (their labels stay in the
            // blocks' indexes); a commit holding one recreates it.
            let removed = {
                let _no_commits = self.gate.write().unwrap_or_else(|p| p.into_inner());
                self.head.remove_empty(&emptied)
            };
            drop(emptied);
            if removed > 0 {
                let purged = self.head.interner().purge_unused();
                tracing::debug!(removed, purged, "empty series dropped from the head");
            }
        }
        if report.blocks_cut > 0 {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Merges blocks until the planner finds nothing to merge.
    pub(super) fn compact(&self, report: &mut MaintenanceReport) -> Result<(), StorageError> {
        loop {
            let list = self.blocks.snapshot();
            let frontier = match self.head.time_range() {
                Some((lo, _)) => lo,
                None => list
                    .iter()
                    .map(|b| b.meta.max_t.saturating_add(1))
                    .max()
                    .unwrap_or(i64::MIN),
            };
            let Some(sources) = compact::plan(&list, &self.options.block_ranges_ms, frontier)
            else {
                return Ok(());
            };
            let meta = compact::merge(
                &self.fs,
                &self.blocks,
                &sources,
                self.options.block_chunk_samples_max,
            )?;
            let ids: Vec<String> = sources.iter().map(|b| b.meta.id.clone()).collect();
            tracing::info!(block = %meta.id, sources = ?ids, level = meta.level, series = meta.series, samples = meta.samples, "blocks compacted");
            let empty = (meta.samples == 0).then(|| meta.id.clone());
            self.blocks.retire(&ids, Some(meta))?;
            if let Some(id) = empty {
                // Everything in the sources was deleted.
                self.blocks.retire(&[id], None)?;
            }
            report.compactions += 1;
        }
    }

    /// Removes blocks past the retention time, then the oldest while over the size limit.
    pub(super) fn expire(&self, report: &mut MaintenanceReport) -> Result<(), StorageError> {
        let list = self.blocks.snapshot();
        let newest = list
            .iter()
            .map(|b| b.meta.max_t)
            .chain(self.head.time_range().map(|(_, hi)| hi))
            .max();
        let mut doomed: Vec<String> = Vec::new();
        let retention_ms = self.retention_ms.load(Ordering::Relaxed);
        let retention_bytes = self.retention_bytes.load(Ordering::Relaxed);
        if retention_ms > 0
            && let Some(newest) = newest
        {
            let cutoff = newest.saturating_sub(retention_ms);
            doomed.extend(
                list.iter()
                    .filter(|b| b.meta.max_t < cutoff)
                    .map(|b| b.meta.id.clone()),
            );
        }
        if retention_bytes > 0 {
            let mut total: u64 = list
                .iter()
                .filter(|b| !doomed.contains(&b.meta.id))
                .map(|b| b.bytes())
                .sum();
            let mut by_age: Vec<_> = list.iter().collect();
            by_age.sort_by_key(|b| (b.meta.max_t, b.meta.min_t));
            for b in by_age {
                if total <= retention_bytes {
                    break;
                }
                if !doomed.contains(&b.meta.id) {
                    total -= b.bytes();
                    doomed.push(b.meta.id.clone());
                }
            }
        }
        if !doomed.is_empty() {
            tracing::info!(blocks = ?doomed, "blocks removed by retention");
            self.blocks.retire(&doomed, None)?;
            report.blocks_expired += doomed.len() as u64;
        }
        Ok(())
    }
}

/// The bytes of the files in `dir` and its subdirectories (0 for what cannot be read: this is
/// for statistics).
pub(super) fn dir_bytes(fs: &dyn Fs, dir: &Path) -> u64 {
    let Ok(names) = fs.list(dir) else { return 0 };
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            match fs.list(&path) {
                Ok(_) => dir_bytes(fs, &path),
                Err(_) => fs.file_len(&path).unwrap_or(0),
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catch-up asks for a checkpoint every few hundred milliseconds; rounds must still run
    /// once per interval (before, only a wait that timed out ran one, and none did).
    #[test]
    fn checkpoint_wakeups_more_often_than_the_interval_do_not_starve_rounds() {
        let interval = Duration::from_secs(10);
        let start = Instant::now();
        let mut schedule = Schedule::new(start);
        let mut rounds = Vec::new();
        // Woken every 300 ms for 100 s, never by a timeout.
        for i in 1..=333u64 {
            let now = start + Duration::from_millis(300 * i);
            assert!(schedule.wait(now, interval) <= interval);
            if schedule.due(now, interval) {
                rounds.push(now.duration_since(start));
            }
        }
        assert_eq!(rounds.len(), 9, "rounds at {rounds:?}");
        for pair in rounds.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= interval && gap < interval + Duration::from_millis(300),
                "{gap:?}"
            );
        }
    }

    #[test]
    fn the_wait_shrinks_to_what_is_left_of_the_interval() {
        let interval = Duration::from_secs(10);
        let start = Instant::now();
        let mut schedule = Schedule::new(start);
        assert_eq!(schedule.wait(start, interval), interval);
        let later = start + Duration::from_secs(4);
        assert_eq!(schedule.wait(later, interval), Duration::from_secs(6));
        assert!(!schedule.due(later, interval));
        let past = start + Duration::from_secs(12);
        assert_eq!(schedule.wait(past, interval), Duration::ZERO);
        assert!(schedule.due(past, interval));
        // Counted as run: the next one is a whole interval away.
        assert_eq!(schedule.wait(past, interval), interval);
    }
}
