//! How a database is opened and run: [`Options`], their defaults and their checks.

use std::sync::Arc;
use std::time::Duration;

use strata_core::clock::{Clock, SystemClock};
use strata_core::fs::{Fs, RealFs};
use strata_wal::FsyncMode;

use crate::error::OpenError;

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
    /// Blocks cut from the head, and compaction, re-encode a series' chunks into chunks of up to
    /// this many samples when that makes fewer of them: longer chunks are denser on disk (0.51 instead of 0.66 bytes per
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
    /// refreshing), a quarter of it for the timestamps that a scrape target's series share
    /// (encoding 3). 0 turns the cache off. Default 32 MiB: a decoded sample takes 16 bytes
    /// where its chunk took about one, so a large cache soon outweighs the head itself
    /// (docs/perf.md, issue 23: after a dashboard's queries over 50,700 series the server's
    /// resident set was 401 MB with 256 MiB, 165 MB with 64 MiB; 152 MB with 64 MiB and
    /// 114 MB with 32 MiB on another day, for warm totals within the run-to-run noise).
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
            decoded_cache_bytes: 32 << 20,
        }
    }
}

const HOUR_MS: i64 = 60 * 60 * 1000;

impl Options {
    pub(super) fn validate(&self) -> Result<(), OpenError> {
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
