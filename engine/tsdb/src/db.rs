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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rustc_hash::FxHashMap;

mod blocks;
mod compact;
mod decoded;
mod query;

use blocks::Blocks;
pub use blocks::{BLOCKS_DIR, BlocksReport};
pub use decoded::DecodedCacheStats;
pub use query::{Querier, Samples, SelectedSeries};

use crate::error::{AppendError, CommitError, OpenError};
use crate::head::series::{SeriesArc, SeriesLimits, Verdict};
use crate::head::{Head, Tally};
use crate::record::{
    self, ChunkEntry, RefSample, encode_chunk, encode_samples, encode_series, finish_chunks,
};
use strata_core::clock::{Clock, SystemClock};
use strata_core::error::StorageError;
use strata_core::fs::{Fs, LockGuard, RealFs};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::postings::Cardinality;
use strata_core::sample::{Sample, SeriesRef};
use strata_wal::checkpoint::{CheckpointWriter, remove_covered};
use strata_wal::frame::{RECORD_PAYLOAD_BYTES_MAX, encode_frame};
use strata_wal::replay::ReplayReport;
use strata_wal::{FsyncMode, Wal, WalOptions, WalStats};

/// How a database is opened and run. `Options::default()` is a sensible production setup on
/// the real file system and clock.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file system to store data on.
    pub fs: Arc<dyn Fs>,
    /// The source of "now".
    pub clock: Arc<dyn Clock>,
    /// When the WAL is synced: [`FsyncMode::Always`] by default.
    pub fsync: FsyncMode,
    /// WAL segment size at which a new segment is started.
    pub wal_segment_bytes_max: u64,
    /// Samples older than a series' newest sample by at most this much are accepted out of
    /// order. Default 10 minutes; 0 rejects every out-of-order sample.
    pub out_of_order_window_ms: i64,
    /// Samples newer than "now" plus this are rejected (a sample far in the future would make
    /// every later real sample out of order). Default 10 minutes.
    pub future_tolerance_ms: i64,
    /// A head chunk is closed after this many samples. Default 240.
    pub chunk_samples_max: u16,
    /// Compaction re-encodes a series' chunks into chunks of up to this many samples when that
    /// makes fewer of them: longer chunks are denser on disk (0.51 instead of 0.66 bytes per
    /// sample at 24 h instead of 240 samples on node_exporter-like data), while a short query
    /// decodes at most one chunk's worth it does not need. Default 1440 (6 h at 15 s).
    pub block_chunk_samples_max: u16,
    /// A head chunk is closed once it spans this long. Default 2 hours.
    pub chunk_range_ms: i64,
    /// Out-of-order samples are buffered per series and encoded into a chunk at this count.
    pub ooo_buffer_samples_max: usize,
    /// The most series the head may hold; creating more fails with `LimitExceeded`.
    pub head_series_max: u64,
    /// A checkpoint is written once the WAL has grown by this many bytes since the last one.
    pub checkpoint_wal_bytes: u64,
    /// Block time ranges in milliseconds, increasing, each a multiple of the one before. The
    /// head's data is cut into blocks of the first range once the head spans one and a half
    /// of it; compaction merges blocks into aligned windows of the others. Default 2 h, 6 h,
    /// 24 h, 7 d.
    pub block_ranges_ms: Vec<i64>,
    /// Blocks whose newest sample is older than the newest sample stored by more than this
    /// are removed. 0 keeps everything. Default 15 days.
    pub retention_ms: i64,
    /// The oldest blocks are removed while all blocks together take more bytes than this.
    /// 0 means no limit (the default).
    pub retention_bytes: u64,
    /// How often the background thread looks for blocks to cut, compact or expire.
    pub maintenance_interval: Duration,
    /// Whether a background thread writes checkpoints, cuts blocks, compacts and applies
    /// retention (tests that want determinism turn it off and call [`Db::checkpoint`] and
    /// [`Db::maintain`]).
    pub background_maintenance: bool,
    /// Whether [`Db::close`] writes a checkpoint, so the next open replays almost nothing.
    pub checkpoint_on_close: bool,
    /// Bytes of decoded block chunks kept for queries that read them again (a dashboard
    /// refreshing). 0 turns the cache off. Default 256 MiB.
    pub decoded_cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fs: Arc::new(RealFs),
            clock: Arc::new(SystemClock),
            fsync: FsyncMode::Always,
            wal_segment_bytes_max: 64 << 20,
            out_of_order_window_ms: 10 * 60 * 1000,
            future_tolerance_ms: 10 * 60 * 1000,
            chunk_samples_max: 240,
            block_chunk_samples_max: 1440,
            chunk_range_ms: 2 * 60 * 60 * 1000,
            ooo_buffer_samples_max: 32,
            head_series_max: 10_000_000,
            checkpoint_wal_bytes: 512 << 20,
            block_ranges_ms: vec![2 * HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS],
            retention_ms: 15 * 24 * HOUR_MS,
            retention_bytes: 0,
            maintenance_interval: Duration::from_secs(60),
            background_maintenance: true,
            checkpoint_on_close: true,
            decoded_cache_bytes: 256 << 20,
        }
    }
}

const HOUR_MS: i64 = 60 * 60 * 1000;

impl Options {
    fn validate(&self) -> Result<(), OpenError> {
        let bad = |m: &str| Err(OpenError::InvalidOptions(m.to_string()));
        match self.block_ranges_ms.first() {
            None => return bad("block_ranges_ms needs at least one range"),
            Some(&r) if r <= 0 => return bad("block ranges must be positive"),
            Some(_) => {}
        }
        if self
            .block_ranges_ms
            .windows(2)
            .any(|w| w[1] <= w[0] || w[1] % w[0] != 0)
        {
            return bad("each block range must be a larger multiple of the one before");
        }
        if self.retention_ms < 0 {
            return bad("retention_ms must not be negative");
        }
        if self.maintenance_interval.is_zero() {
            return bad("maintenance_interval must be positive");
        }
        if self.out_of_order_window_ms < 0 {
            return bad("out_of_order_window_ms must not be negative");
        }
        if self.future_tolerance_ms < 0 {
            return bad("future_tolerance_ms must not be negative");
        }
        if self.chunk_samples_max < 2 || self.block_chunk_samples_max < 2 {
            return bad("chunk_samples_max and block_chunk_samples_max must be at least 2");
        }
        if self.chunk_range_ms <= 0 {
            return bad("chunk_range_ms must be positive");
        }
        if self.ooo_buffer_samples_max == 0 || self.ooo_buffer_samples_max > usize::from(u16::MAX) {
            return bad("ooo_buffer_samples_max must be between 1 and 65535");
        }
        if self.wal_segment_bytes_max < 4096 {
            return bad("wal_segment_bytes_max must be at least 4096");
        }
        if let FsyncMode::Interval(d) = self.fsync
            && d.is_zero()
        {
            return bad(
                "an fsync interval must be positive; use FsyncMode::Always to sync every write",
            );
        }
        Ok(())
    }
}

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
}

#[derive(Debug, Default)]
struct Maintenance {
    wanted: bool,
    stop: bool,
}

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
    _lock: Box<dyn LockGuard>,
}

/// A Strata database: the head, its write-ahead log, and the files under one directory.
#[derive(Debug)]
pub struct Db {
    inner: Arc<Inner>,
    open_report: OpenReport,
    maintenance_thread: Mutex<Option<JoinHandle<()>>>,
}

/// The name of the lock file in a database directory.
pub const LOCK_FILE: &str = "LOCK";
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
        fs.create_dir_all(&dir)
            .map_err(|e| StorageError::io("create data directory", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => OpenError::Locked {
                path: lock_path.clone(),
            },
            _ => StorageError::io("lock data directory", &lock_path, e).into(),
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
        let decoded = Arc::new(decoded::DecodedCache::new(options.decoded_cache_bytes));
        let inner = Arc::new(Inner {
            fs,
            dir,
            options,
            head,
            wal,
            blocks,
            maintaining: Mutex::new(()),
            maintenance_done: Mutex::new(MaintenanceReport::default()),
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

    /// A new batch of samples to append and commit.
    pub fn appender(&self) -> Appender<'_> {
        Appender {
            db: &self.inner,
            series: Vec::new(),
            index: FxHashMap::default(),
            samples: Vec::new(),
            duplicates: Vec::new(),
            now_ms: None,
        }
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

impl Inner {
    fn spawn_maintenance(inner: &Arc<Inner>) -> JoinHandle<()> {
        let weak = Arc::downgrade(inner);
        std::thread::Builder::new()
            .name("strata-maintenance".into())
            .spawn(move || {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    {
                        let m = inner.maintenance.lock().unwrap_or_else(|p| p.into_inner());
                        let (mut m, timeout) = inner
                            .maintenance_cond
                            .wait_timeout_while(m, inner.options.maintenance_interval, |m| {
                                !m.wanted && !m.stop
                            })
                            .unwrap_or_else(|p| p.into_inner());
                        if m.stop {
                            return;
                        }
                        let checkpoint_wanted = std::mem::take(&mut m.wanted);
                        drop(m);
                        if timeout.timed_out()
                            && let Err(e) = inner.maintain()
                        {
                            tracing::error!(error = %e, "background maintenance failed; it is retried at the next interval");
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

    /// Whether the WAL lost acknowledged samples that the head still holds.
    fn wal_behind_head(&self) -> bool {
        self.wal.losses() != self.losses_checkpointed.load(Ordering::SeqCst)
    }

    fn maybe_request_checkpoint(&self) {
        if !self.options.background_maintenance {
            return;
        }
        let written = self.wal.stats().bytes_written;
        let since = written.saturating_sub(self.wal_bytes_at_checkpoint.load(Ordering::Relaxed));
        if since >= self.options.checkpoint_wal_bytes || self.wal_behind_head() {
            let mut m = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
            m.wanted = true;
            self.maintenance_cond.notify_all();
        }
    }

    fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
        let _one = self.checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        let bytes_before = self.wal.stats().bytes_written;
        let losses_before = self.wal.losses();
        let seq = {
            let _cut = self.gate.write().unwrap_or_else(|p| p.into_inner());
            self.wal.cut_segment()?
        };
        // Commits during the checkpoint must not ask for another one: the mark moves now (and
        // back if this one fails).
        let mark_before = self
            .wal_bytes_at_checkpoint
            .swap(bytes_before, Ordering::Relaxed);
        let result = self.write_checkpoint(seq, losses_before);
        if result.is_err() {
            self.wal_bytes_at_checkpoint
                .store(mark_before, Ordering::Relaxed);
        }
        result
    }

    fn write_checkpoint(
        &self,
        seq: strata_wal::SegmentSeq,
        losses_before: u64,
    ) -> Result<CheckpointStats, StorageError> {
        let wal_dir = self.wal.dir().to_path_buf();
        let mut writer = CheckpointWriter::create(Arc::clone(&self.fs), &wal_dir, seq)?;
        let mut stats = CheckpointStats {
            segment: seq.0,
            ..CheckpointStats::default()
        };
        // In reference order: replay then restores series in the order they were created,
        // which keeps its index appends cheap and its memory accesses close together.
        let mut all: Vec<SeriesArc> = Vec::with_capacity(self.head.num_series() as usize);
        self.head.for_each_series(|s| all.push(SeriesArc::clone(s)));
        all.sort_unstable_by_key(|s| s.series_ref());
        let mut result = Ok(());
        for batch in all.chunks(CHECKPOINT_SERIES_BATCH) {
            result = write_checkpoint_batch(&mut writer, batch, &mut stats);
            if result.is_err() {
                break;
            }
        }
        drop(all);
        if let Err(e) = result {
            writer.abort();
            return Err(e);
        }
        stats.bytes = writer.finish()?;
        stats.files_removed = remove_covered(self.fs.as_ref(), &wal_dir, seq)? as u64;
        self.losses_checkpointed
            .store(losses_before, Ordering::SeqCst);
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(?stats, "checkpoint written");
        Ok(stats)
    }
}

impl Inner {
    fn delete_series(
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

    fn maintain(&self) -> Result<MaintenanceReport, StorageError> {
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
    fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<SnapshotStats, StorageError> {
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
                self.options.chunk_samples_max,
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

    fn cut_head_blocks(&self, report: &mut MaintenanceReport) -> Result<(), StorageError> {
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
                self.options.chunk_samples_max,
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
    fn compact(&self, report: &mut MaintenanceReport) -> Result<(), StorageError> {
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
    fn expire(&self, report: &mut MaintenanceReport) -> Result<(), StorageError> {
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
fn dir_bytes(fs: &dyn Fs, dir: &Path) -> u64 {
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

/// Encodes a `Series` record payload naming `series` with their labels.
fn encode_series_record(out: &mut Vec<u8>, series: &[impl std::borrow::Borrow<SeriesArc>]) {
    encode_series(
        out,
        series.iter().map(|s| {
            let s = s.borrow();
            (
                s.series_ref(),
                s.labels()
                    .iter()
                    .map(|l| (l.name().as_str(), l.value().as_str())),
            )
        }),
    );
}

/// Series per checkpoint batch: one `Series` record, then their chunks.
const CHECKPOINT_SERIES_BATCH: usize = 1024;
/// Payload size at which a checkpoint `Chunks` record is closed.
const CHECKPOINT_CHUNKS_PAYLOAD_BYTES: usize = 1 << 20;

fn write_checkpoint_batch(
    writer: &mut CheckpointWriter,
    batch: &[SeriesArc],
    stats: &mut CheckpointStats,
) -> Result<(), StorageError> {
    let mut payload = Vec::new();
    encode_series_record(&mut payload, batch);
    writer.add(record::SERIES, &payload)?;
    stats.series += batch.len() as u64;

    let mut entries = Vec::new();
    let mut count = 0usize;
    let mut result = Ok(());
    for s in batch {
        s.dump(|c: ChunkEntry<'_>| {
            encode_chunk(&mut entries, &c);
            count += 1;
        });
        if entries.len() >= CHECKPOINT_CHUNKS_PAYLOAD_BYTES {
            result =
                result.and_then(|()| writer.add(record::CHUNKS, &finish_chunks(count, &entries)));
            stats.chunks += count as u64;
            entries.clear();
            count = 0;
        }
    }
    if count > 0 {
        result = result.and_then(|()| writer.add(record::CHUNKS, &finish_chunks(count, &entries)));
        stats.chunks += count as u64;
    }
    result
}

/// A batch of samples. Samples are validated as they are appended; nothing is written or
/// visible until [`Appender::commit`]. Dropping an appender discards its batch.
#[derive(Debug)]
pub struct Appender<'a> {
    db: &'a Inner,
    /// The series this batch touches, with the newest sample appended to each.
    series: Vec<(SeriesArc, Option<Sample>)>,
    /// Series reference to index in `series`.
    index: FxHashMap<u64, usize>,
    /// Index in `series`, and the sample.
    samples: Vec<(u32, Sample)>,
    /// Samples already stored with the same value: acknowledged without being written, unless
    /// the WAL has lost samples the head holds (then they are written again).
    duplicates: Vec<(u32, Sample)>,
    /// The clock's reading for this batch.
    now_ms: Option<i64>,
}

impl Appender<'_> {
    /// Appends a sample to the series with `labels` (created if new). Returns the series'
    /// reference, which [`Appender::append_ref`] accepts to skip the label lookup.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        self.check_open()?;
        if labels.is_empty() {
            return Err(AppendError::NoLabels);
        }
        let (series, _) = self.db.head.get_or_create(labels)?;
        let r = series.series_ref();
        let i = self.slot(series);
        self.push(i, t, v)?;
        Ok(r)
    }

    /// Appends a sample to the series with labels `pairs`, as [`Appender::append`] does with
    /// `Labels::new(pairs)`. When the pairs are already canonical (sorted by name, no empty
    /// value, as remote-write senders send them) and the series exists, nothing is allocated.
    pub fn append_pairs(
        &mut self,
        pairs: &[(&str, &str)],
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        self.check_open()?;
        if !pairs.is_empty()
            && strata_core::labels::is_canonical(pairs)
            && let Some(series) = self.db.head.get_by_pairs(pairs)
        {
            let r = series.series_ref();
            let i = self.slot(series);
            self.push(i, t, v)?;
            return Ok(r);
        }
        let labels = Labels::new(pairs.iter().copied())?;
        self.append(&labels, t, v)
    }

    /// Appends a sample to a series known by reference.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        self.check_open()?;
        let i = match self.index.get(&r.0) {
            Some(&i) => i,
            None => {
                let series = self.db.head.get(r).ok_or(AppendError::UnknownSeries(r))?;
                self.slot(series)
            }
        };
        self.push(i, t, v)
    }

    fn check_open(&self) -> Result<(), AppendError> {
        if self.db.closed.load(Ordering::Relaxed) {
            Err(AppendError::Closed)
        } else {
            Ok(())
        }
    }

    fn slot(&mut self, series: SeriesArc) -> usize {
        *self.index.entry(series.series_ref().0).or_insert_with(|| {
            self.series.push((series, None));
            self.series.len() - 1
        })
    }

    fn push(&mut self, i: usize, t: i64, v: f64) -> Result<(), AppendError> {
        let tolerance = self.db.options.future_tolerance_ms;
        // Reading the clock per sample is measurable; a batch takes milliseconds and the
        // tolerance is minutes, so the first reading of a batch serves (a sample that looks too
        // far ahead is checked against a fresh reading before it is refused).
        let mut now = *self
            .now_ms
            .get_or_insert_with(|| self.db.options.clock.now_ms());
        if t > now.saturating_add(tolerance) {
            now = self.db.options.clock.now_ms();
            self.now_ms = Some(now);
        }
        if t > now.saturating_add(tolerance) {
            return Err(AppendError::TooFarInFuture {
                t,
                now_ms: now,
                tolerance_ms: tolerance,
            });
        }
        let (series, newest) = &mut self.series[i];
        match series.check(t, v, *newest, self.db.options.out_of_order_window_ms)? {
            Verdict::Duplicate => self.duplicates.push((i as u32, Sample::new(t, v))),
            Verdict::Accept => {
                if newest.is_none_or(|n| t > n.t) {
                    *newest = Some(Sample::new(t, v));
                }
                self.samples.push((i as u32, Sample::new(t, v)));
            }
        }
        Ok(())
    }

    /// Samples appended and not yet committed.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing is waiting to be committed.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Writes the batch to the WAL, waits until it is durable, and makes it visible. On error
    /// nothing of the batch was acknowledged, and the same samples may be appended again.
    pub fn commit(mut self) -> Result<CommitStats, CommitError> {
        let db = self.db;
        let mut stats = CommitStats {
            duplicates: self.duplicates.len() as u64,
            ..CommitStats::default()
        };
        let relog = !self.duplicates.is_empty() && db.wal_behind_head();
        if self.samples.is_empty() && !relog {
            db.duplicates.fetch_add(stats.duplicates, Ordering::Relaxed);
            return Ok(stats);
        }
        let _gate = db.gate.read().unwrap_or_else(|p| p.into_inner());
        for (series, _) in &mut self.series {
            if series.is_removed() {
                *series = db.head.recreate(&series.to_labels());
            }
        }
        let new_series: Vec<&SeriesArc> = self
            .series
            .iter()
            .map(|(s, _)| s)
            .filter(|s| !s.is_logged())
            .collect();
        let frames = self.encode(&new_series, relog);
        if db.closed.load(Ordering::Relaxed) {
            return Err(StorageError::Closed.into());
        }
        // Series records are synced even in interval mode: later samples refer to them, so
        // losing one to a power cut would orphan samples that did reach the disk.
        db.wal.log(&frames, !new_series.is_empty())?;
        for s in &new_series {
            s.set_logged();
        }
        let limits = &db.head.limits;
        let mut tally = Tally::default();
        let mut k = 0;
        while k < self.samples.len() {
            let i = self.samples[k].0;
            let run = self.samples[k..]
                .iter()
                .take_while(|(j, _)| *j == i)
                .count();
            let series = &self.series[i as usize].0;
            series.apply_many(
                self.samples[k..k + run].iter().map(|(_, s)| (s.t, s.v)),
                limits,
                &mut tally,
            );
            k += run;
        }
        db.head.record(&tally);
        db.duplicates.fetch_add(stats.duplicates, Ordering::Relaxed);
        stats.samples = self.samples.len() as u64;
        stats.series_created = new_series.len() as u64;
        drop(_gate);
        db.maybe_request_checkpoint();
        Ok(stats)
    }

    /// The batch's WAL frames: its unlogged series, then its samples, each record within the
    /// payload limit.
    fn encode(&self, new_series: &[&SeriesArc], relog: bool) -> Vec<u8> {
        let mut frames = Vec::with_capacity(self.samples.len() * 14 + 64);
        let mut payload = Vec::new();
        for group in new_series.chunks(SERIES_PER_RECORD) {
            payload.clear();
            encode_series_record(&mut payload, group);
            encode_frame(&mut frames, record::SERIES, &payload);
        }
        let mut refs = Vec::with_capacity(SAMPLES_PER_RECORD.min(self.samples.len()));
        let duplicates: &[(u32, Sample)] = if relog { &self.duplicates } else { &[] };
        for group in self
            .samples
            .chunks(SAMPLES_PER_RECORD)
            .chain(duplicates.chunks(SAMPLES_PER_RECORD))
        {
            refs.clear();
            refs.extend(group.iter().map(|(i, s)| RefSample {
                series: self.series[*i as usize].0.series_ref(),
                t: s.t,
                v: s.v,
            }));
            payload.clear();
            encode_samples(&mut payload, &refs);
            encode_frame(&mut frames, record::SAMPLES, &payload);
        }
        frames
    }
}

/// Samples per WAL record: at most 30 bytes each, well inside the payload limit.
const SAMPLES_PER_RECORD: usize = 65_536;
/// Series per WAL record; with the label limits the server enforces, well inside the limit.
const SERIES_PER_RECORD: usize = 256;
const _: () = assert!(SAMPLES_PER_RECORD * 30 < RECORD_PAYLOAD_BYTES_MAX);
