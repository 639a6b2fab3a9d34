//! The embedding API: [`Db::open`], [`Appender`] (`append` then `commit`), [`Querier`],
//! [`Db::close`].
//!
//! A commit is acknowledged only when its WAL records are durable ([`FsyncMode`]); its samples
//! become visible to queries right after. The order inside a commit is: validate each sample
//! as it is appended (rejections are per sample, before anything is written), log series and
//! samples in one group-committed WAL write, mark new series as logged, apply the samples to
//! the head.
//!
//! Checkpoints run in a background thread once the WAL has grown by `checkpoint_wal_bytes`
//! (or on demand with [`Db::checkpoint`], and on [`Db::close`]). A read-write *gate* makes
//! the checkpoint's segment cut wait for commits in flight, so every record in a segment
//! below the cut is already applied to the head that the checkpoint then writes out.

mod append;
mod blocks;
mod checkpoint;
mod compact;
mod decoded;
mod delete;
mod maintenance;
mod options;
mod query;
mod report;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

pub use append::Appender;
use blocks::Blocks;
pub use blocks::{BLOCKS_DIR, BlocksReport};
pub use decoded::DecodedCacheStats;
use maintenance::{Maintenance, dir_bytes};
pub use options::Options;
pub use query::{Querier, Samples, SelectedSeries};
pub use report::{
    CheckpointStats, CommitStats, DeleteStats, MaintenanceReport, OpenReport, SnapshotStats, Stats,
};

use crate::error::OpenError;
use crate::head::Head;
use crate::head::series::SeriesLimits;
use strata_core::error::StorageError;
use strata_core::fs::{Fs, LockGuard, StoreLockError, lock_store_dir};
use strata_core::labels::matcher::Matcher;
use strata_core::postings::Cardinality;
use strata_wal::{Wal, WalOptions};

#[derive(Debug)]
struct Inner {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: Options,
    head: Head,
    wal: Arc<Wal>,
    blocks: Blocks,
    /// One round of block cutting, compaction or retention at a time.
    maintaining: Mutex<()>,
    maintenance_done: Mutex<MaintenanceReport>,
    /// Other stores' rounds, run by the maintenance thread after this store's.
    maintained: Mutex<Vec<Arc<dyn strata_core::maintenance::Maintained>>>,
    /// Commits hold it shared from WAL write to head apply; a checkpoint's cut holds it
    /// exclusively.
    gate: RwLock<()>,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    wal_bytes_at_checkpoint: AtomicU64,
    /// `Options::retention_ms` and `retention_bytes`, changeable while open.
    retention_ms: AtomicI64,
    retention_bytes: AtomicU64,
    /// `wal.losses()` as of the start of the last successful checkpoint. While it lags, the
    /// head holds acknowledged samples the WAL lost, and commits log resent duplicates again
    /// instead of dropping them.
    losses_checkpointed: AtomicU64,
    checkpoints: AtomicU64,
    duplicates: AtomicU64,
    maintenance: Mutex<Maintenance>,
    maintenance_cond: Condvar,
    closed: AtomicBool,
    decoded: Arc<decoded::DecodedCache>,
    decoded_times: Arc<decoded::DecodedCache<i64>>,
    _lock: Box<dyn LockGuard>,
}

/// A Strata database: the head, its write-ahead log, and the files under one directory.
#[derive(Debug)]
pub struct Db {
    inner: Arc<Inner>,
    open_report: OpenReport,
    maintenance_thread: Mutex<Option<JoinHandle<()>>>,
}

/// The name of the WAL directory in a database directory.
pub const WAL_DIR: &str = "wal";

impl Db {
    /// Opens the database in `dir`, creating it if needed, and replays its WAL. Damage found
    /// while replaying is repaired as `docs/format/wal.md` describes and listed in
    /// [`Db::open_report`]; it does not make opening fail.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Db, OpenError> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let fs = Arc::clone(&options.fs);
        let lock = lock_store_dir(fs.as_ref(), &dir).map_err(|e| match e {
            StoreLockError::Locked(path) => OpenError::Locked { path },
            StoreLockError::Storage(e) => e.into(),
        })?;

        let (blocks, blocks_report) = Blocks::open(Arc::clone(&fs), &dir.join(BLOCKS_DIR))?;
        let limits = SeriesLimits {
            chunk_samples_max: options.chunk_samples_max,
            chunk_range_ms: options.chunk_range_ms,
            ooo_buffer_samples_max: options.ooo_buffer_samples_max,
        };
        // Replay is not limited by `head_series_max`: what was acknowledged must come back.
        let mut head = Head::new(limits, u64::MAX);
        let wal_options = WalOptions {
            segment_bytes_max: options.wal_segment_bytes_max,
            fsync: options.fsync,
        };
        let (wal, report) =
            strata_wal::replay::open(Arc::clone(&fs), &dir.join(WAL_DIR), wal_options, &mut head)?;
        head.finish_replay();
        head.series_max = AtomicU64::new(options.head_series_max);
        let c = &head.counters;
        let open_report = OpenReport {
            series: head.num_series(),
            samples: c.samples_in_order.load(Ordering::Relaxed)
                + c.samples_out_of_order.load(Ordering::Relaxed)
                + c.samples_restored.load(Ordering::Relaxed),
            orphaned_samples: c.samples_orphaned.load(Ordering::Relaxed),
            wal: report,
            blocks: blocks_report,
        };
        if open_report.wal.has_damage() || open_report.orphaned_samples > 0 {
            tracing::error!(report = ?open_report, "opened with damaged write-ahead log; damaged files were moved to wal/quarantine");
        }
        let background = options.background_maintenance;
        let (retention_ms, retention_bytes) = (options.retention_ms, options.retention_bytes);
        // A quarter of the budget for shared timestamps: a times frame serves all the series
        // of its target, so its bytes are worth more per hit than a series' samples.
        let times_bytes = options.decoded_cache_bytes / 4;
        let decoded = Arc::new(decoded::DecodedCache::new(
            options.decoded_cache_bytes - times_bytes,
        ));
        let decoded_times = Arc::new(decoded::DecodedCache::new(times_bytes));
        let inner = Arc::new(Inner {
            fs,
            dir,
            options,
            head,
            wal,
            blocks,
            maintaining: Mutex::new(()),
            maintenance_done: Mutex::new(MaintenanceReport::default()),
            maintained: Mutex::new(Vec::new()),
            gate: RwLock::new(()),
            checkpointing: Mutex::new(()),
            wal_bytes_at_checkpoint: AtomicU64::new(0),
            retention_ms: AtomicI64::new(retention_ms),
            retention_bytes: AtomicU64::new(retention_bytes),
            losses_checkpointed: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            maintenance: Mutex::new(Maintenance::default()),
            maintenance_cond: Condvar::new(),
            closed: AtomicBool::new(false),
            decoded,
            decoded_times,
            _lock: lock,
        });
        let thread = background.then(|| Inner::spawn_maintenance(&inner));
        Ok(Db {
            inner,
            open_report,
            maintenance_thread: Mutex::new(thread),
        })
    }

    /// What opening found and did.
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// The directory the database lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// How many series the head holds (cheap; [`Db::stats`] walks them).
    pub fn head_series(&self) -> u64 {
        self.inner.head.num_series()
    }

    /// A new batch of samples to append and commit.
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(&self.inner)
    }

    /// Reads data in `[mint, maxt]` (milliseconds, both inclusive).
    pub fn querier(&self, mint: i64, maxt: i64) -> Querier<'_> {
        Querier {
            db: &self.inner,
            blocks: self.inner.blocks.snapshot(),
            mint,
            maxt,
        }
    }

    /// Writes a checkpoint now and removes the WAL files it covers.
    pub fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
        self.inner.checkpoint()
    }

    /// Runs one round of what the background thread does periodically: cuts blocks from the
    /// head's data older than its window (then checkpoints, truncating the WAL behind them),
    /// compacts blocks until nothing is left to merge, and applies retention.
    pub fn maintain(&self) -> Result<MaintenanceReport, StorageError> {
        self.inner.maintain()
    }

    /// Hands another store's background work to this database's maintenance thread: `store`
    /// runs after each of this store's rounds, on the same schedule, and when it asks through
    /// the waker it is given.
    pub fn add_maintained(&self, store: Arc<dyn strata_core::maintenance::Maintained>) {
        let weak = Arc::downgrade(&self.inner);
        store.set_waker(strata_core::maintenance::Waker::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner
                    .maintenance
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .stores_wanted = true;
                inner.maintenance_cond.notify_all();
            }
        }));
        self.inner
            .maintained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(store);
    }

    /// Deletes the samples in `[mint, maxt]` of every series matching `matchers` (what
    /// Prometheus's `/api/v1/admin/tsdb/delete_series` does). The head's samples go at once
    /// and a checkpoint makes that durable; blocks get tombstones that queries honour at once
    /// and the next compaction applies. Returns when the deletion is durable.
    ///
    /// Samples appended afterwards in the range are kept: this deletes what is stored now.
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<DeleteStats, StorageError> {
        self.inner.delete_series(matchers, mint, maxt)
    }

    /// Writes a consistent copy of the database into `dir` (created; must not hold blocks
    /// already): every block, linked rather than copied where the file system allows (blocks
    /// are immutable), and unless `skip_head`, the head's samples as one more block. The
    /// result is a data directory `Db::open` reads (blocks under `dir/blocks`, no WAL).
    /// Writes continue meanwhile; samples committed during the snapshot may or may not be in
    /// it.
    pub fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<SnapshotStats, StorageError> {
        self.inner.snapshot(dir, skip_head)
    }

    /// Changes the limits that may change while open: retention by time (`0` keeps
    /// everything) and size (`0` = unlimited), applied from the next maintenance round, and the
    /// most series the head may hold (series already there stay).
    pub fn set_limits(&self, retention_ms: i64, retention_bytes: u64, head_series_max: u64) {
        let inner = &self.inner;
        inner
            .retention_ms
            .store(retention_ms.max(0), Ordering::Relaxed);
        inner
            .retention_bytes
            .store(retention_bytes, Ordering::Relaxed);
        inner
            .head
            .series_max
            .store(head_series_max, Ordering::Relaxed);
    }

    /// Syncs the WAL now (useful with [`FsyncMode::Interval`]).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.inner.wal.sync()
    }

    /// The decoded-chunk cache's size and hit counts (see [`Options::decoded_cache_bytes`]).
    pub fn decoded_cache_stats(&self) -> DecodedCacheStats {
        self.inner.decoded.stats()
    }

    /// A summary of the database's state. Walks every series: not for hot paths.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let mut stats = Stats {
            series: inner.head.num_series(),
            head_time_range: inner.head.time_range(),
            interned_strings: inner.head.interner().len() as u64,
            wal: inner.wal.stats(),
            checkpoints: inner.checkpoints.load(Ordering::Relaxed),
            maintenance: inner
                .maintenance_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            ..Stats::default()
        };
        for b in inner.blocks.snapshot().iter() {
            stats.blocks += 1;
            stats.block_bytes += b.bytes();
            stats.block_samples += b.meta.samples;
        }
        stats.wal_disk_bytes = dir_bytes(inner.fs.as_ref(), inner.wal.dir());
        stats.decoded_cache = inner.decoded.stats();
        stats.decoded_times_cache = inner.decoded_times.stats();
        inner.head.for_each_series(|s| {
            let (samples, chunks, bytes) = s.footprint();
            stats.samples += samples;
            stats.chunks += chunks;
            stats.chunk_bytes += bytes;
        });
        let c = &inner.head.counters;
        stats.samples_in_order = c.samples_in_order.load(Ordering::Relaxed);
        stats.samples_out_of_order = c.samples_out_of_order.load(Ordering::Relaxed);
        stats.samples_conflict = c.samples_conflict.load(Ordering::Relaxed);
        stats.samples_duplicate =
            c.samples_duplicate.load(Ordering::Relaxed) + inner.duplicates.load(Ordering::Relaxed);
        stats
    }

    /// Cardinality statistics: the `limit` largest entries of each list.
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        self.inner.head.cardinality(limit)
    }

    /// Stops background work, writes a checkpoint (unless disabled) and syncs the WAL. The
    /// database refuses writes afterwards.
    pub fn close(self) -> Result<(), StorageError> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut m = self
                .inner
                .maintenance
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            m.stop = true;
            self.inner.maintenance_cond.notify_all();
        }
        let thread = self
            .maintenance_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = thread {
            // A panic there was already reported by the panic hook.
            let _ = t.join();
        }
        let checkpoint = if self.inner.options.checkpoint_on_close {
            self.inner.checkpoint().map(|_| ())
        } else {
            Ok(())
        };
        let closed = self.inner.wal.close();
        checkpoint.and(closed)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the database on drop failed; acknowledged data is safe in the WAL");
        }
    }
}
