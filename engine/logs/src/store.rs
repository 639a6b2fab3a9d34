//! The store: opening (replaying the log into the head, loading the blocks), the appender,
//! sealing the head into blocks, retention, and queries over blocks and head together.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use strata_core::clock::{Clock, SystemClock};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::{Fs, LockGuard, RealFs, StoreLockError, lock_store_dir};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_wal::checkpoint::{CheckpointWriter, remove_covered};
use strata_wal::frame::{RECORD_PAYLOAD_BYTES_MAX, encode_frame};
use strata_wal::replay::ReplayReport;
use strata_wal::{FsyncMode, Wal, WalOptions};

use crate::block::{
    BlockStream, BlockSummary, BlockWriter, LogBlock, PAGE_BYTES, ZSTD_LEVEL, block_file_name,
    page_bytes_of,
};
use crate::catalog::Catalog;
use crate::entry::{Direction, Entry, StreamRef};
use crate::error::{AppendError, CommitError, OpenError};
use crate::filter::{LineMatch, Needle};
use crate::head::{Head, Part, in_range, newest_or_oldest};
use crate::load::load_blocks;
use crate::merge::{PageCursor, RELEASE_BYTES, copyable};
use crate::record;
use crate::replay::Replay;

/// The log's directory below the store's.
pub const WAL_DIR: &str = "wal";
/// The blocks' directory below the store's.
pub const BLOCKS_DIR: &str = "blocks";

/// What the store accepts. Defaults follow Loki's where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes of a line and its metadata (Loki: `max_line_size`, 256 KB). At most
    /// [`LogLimits::LINE_BYTES_CEILING`].
    pub line_bytes_max: usize,
    /// Labels of a stream (Loki: `max_label_names_per_series`, 15).
    pub labels_per_stream_max: usize,
    /// Structured metadata pairs of an entry (Loki: 128).
    pub metadata_pairs_max: usize,
    /// Streams the store holds; a new one beyond is refused.
    pub streams_max: usize,
    /// Entries older than this before now are refused (Loki: `reject_old_samples_max_age`,
    /// a week).
    pub too_old_ns: i64,
    /// Entries further than this after now are refused (Loki: `creation_grace_period`, 10
    /// minutes).
    pub future_ns: i64,
    /// How far before its newest entry a stream accepts another (Loki: half of
    /// `max_chunk_age`, an hour).
    pub out_of_order_ns: i64,
}

impl LogLimits {
    /// The largest `line_bytes_max` allowed: an entry must fit one WAL record.
    pub const LINE_BYTES_CEILING: usize = RECORD_PAYLOAD_BYTES_MAX / 2;
}

const SECOND_NS: i64 = 1_000_000_000;

/// The head holds at most this many seals' worth of bytes (the part being sealed and what
/// arrived since): a commit beyond waits for a seal, up to [`HEAD_WAIT`], then is refused
/// with [`CommitError::Busy`]. A burst faster than seals then slows to their pace instead
/// of growing the head (and the log) without bound.
const HEAD_SEALS_MAX: u64 = 3;
/// The longest a commit waits for room in the head.
const HEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for LogLimits {
    fn default() -> LogLimits {
        LogLimits {
            line_bytes_max: 256 * 1024,
            labels_per_stream_max: 15,
            metadata_pairs_max: 128,
            streams_max: 1_000_000,
            too_old_ns: 7 * 24 * 3600 * SECOND_NS,
            future_ns: 600 * SECOND_NS,
            out_of_order_ns: 3600 * SECOND_NS,
        }
    }
}

/// What queries have read of the blocks, since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Pages read (each decompressed and its checksum checked).
    pub read: u64,
    /// Pages in a query's time range it did not read: a line filter's needle was missing from
    /// the page's token filter.
    pub skipped: u64,
    /// Bytes of the pages read, once decompressed.
    pub bytes_read: u64,
}

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub fs: Arc<dyn Fs>,
    pub clock: Arc<dyn Clock>,
    /// When the log is synced ([`FsyncMode::Always`]: before every acknowledgement).
    pub fsync: FsyncMode,
    pub wal_segment_bytes_max: u64,
    pub limits: LogLimits,
    /// [`LogStore::maintain`] seals the head into a block once it holds this many bytes of
    /// lines and metadata…
    pub seal_bytes: u64,
    /// …or once its oldest entry is this much older than now.
    pub seal_age_ns: i64,
    /// Blocks whose newest entry is older than this before now are removed (`None`: kept).
    pub retention_ns: Option<i64>,
    /// The oldest blocks are removed while all blocks take more bytes than this (`None`: no
    /// limit).
    pub retention_bytes: Option<u64>,
    /// [`LogStore::maintain`] merges this many consecutive blocks of one level into one of
    /// the next (below 2: blocks are never merged). See [`LogStore::compact`].
    pub compact_fan_in: usize,
}

/// The largest `seal_bytes`: the head holds at most three seals' worth, and a stream's
/// part of it addresses its bytes with 32 bits.
pub const SEAL_BYTES_MAX: u64 = 1 << 30;

/// Levels a block can be merged up to: with 64 MiB seals and a fan-in of 4, a block of the
/// top level holds 4 GiB of lines, and each entry is rewritten at most this many times.
pub const COMPACT_LEVEL_MAX: u32 = 3;
/// The zstd level merged pages are written at.
const COMPACT_ZSTD_LEVEL: i32 = 3;
/// Merges one maintenance round runs before it hands the thread back (and asks for another
/// round if more are due).
const COMPACTIONS_PER_ROUND: usize = 2;

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            fs: Arc::new(RealFs),
            clock: Arc::new(SystemClock),
            fsync: FsyncMode::Always,
            wal_segment_bytes_max: WalOptions::default().segment_bytes_max,
            limits: LogLimits::default(),
            seal_bytes: 64 << 20,
            seal_age_ns: 3600 * SECOND_NS,
            retention_ns: None,
            retention_bytes: None,
            compact_fan_in: 4,
        }
    }
}

/// What opening found.
#[derive(Debug, Clone)]
pub struct OpenReport {
    pub streams: usize,
    pub entries: u64,
    /// Entries of streams the log never named (after damage), dropped.
    pub orphaned_entries: u64,
    /// Blocks loaded.
    pub blocks: usize,
    /// Blocks a seal cut short left (their entries are in the log), removed.
    pub unfinished_blocks: usize,
    /// Blocks that failed their checks, renamed to `*.damaged` and not read.
    pub damaged_blocks: usize,
    /// Blocks a compaction had merged into another but not yet removed, removed.
    pub merged_blocks: usize,
    pub wal: ReplayReport,
}

/// What [`LogStore::maintain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// The block a seal wrote.
    pub sealed: Option<BlockSummary>,
    /// Blocks removed by retention.
    pub expired_blocks: usize,
    /// The blocks compactions wrote.
    pub compacted: Vec<BlockSummary>,
}

/// The test a query puts to each entry it reads, given the entry's stream labels.
pub type KeepFn<'f> = Box<dyn Fn(&Labels, &Entry) -> bool + 'f>;

/// What a query keeps of the entries it reads: those `keep` accepts (given the stream's labels
/// and the entry). Every kept line must contain each of `needles` (the line filters'
/// substrings), which lets a query skip the block pages whose token filter lacks one.
pub struct LineFilter<'f> {
    pub needles: Vec<Needle>,
    pub keep: KeepFn<'f>,
    /// What every line `keep` accepts holds a match of, when the query can tell: pages are
    /// then searched for it whole and only the lines holding a match are read.
    pub must_match: Option<LineMatch>,
}

impl Default for LineFilter<'_> {
    /// Keeps every entry.
    fn default() -> Self {
        LineFilter {
            needles: Vec::new(),
            keep: Box::new(|_, _| true),
            must_match: None,
        }
    }
}

impl std::fmt::Debug for LineFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineFilter")
            .field("needles", &self.needles)
            .finish_non_exhaustive()
    }
}

impl LineFilter<'_> {
    /// Appends to `out`, in time order, the `limit` newest (`Backward`) or oldest
    /// (`Forward`) kept entries of sorted `entries` in `[start_ns, end_ns)`; returns how many.
    #[allow(clippy::too_many_arguments)] // reason: one private helper of two loops
    fn take(
        &self,
        labels: &Labels,
        entries: &[Entry],
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        out: &mut Vec<Entry>,
    ) -> usize {
        let range = in_range(entries, start_ns, end_ns);
        let from = out.len();
        match direction {
            Direction::Forward => out.extend(
                range
                    .iter()
                    .filter(|e| (self.keep)(labels, e))
                    .take(limit)
                    .cloned(),
            ),
            Direction::Backward => {
                out.extend(
                    range
                        .iter()
                        .rev()
                        .filter(|e| (self.keep)(labels, e))
                        .take(limit)
                        .cloned(),
                );
                out[from..].reverse();
            }
        }
        out.len() - from
    }

    /// As [`Self::take`], of the entries of a head stream's part (read one at a time into
    /// `scratch`: only the kept ones are copied).
    #[allow(clippy::too_many_arguments)] // reason: one private helper, as `take`
    fn take_part(
        &self,
        labels: &Labels,
        part: &Part,
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        out: &mut Vec<Entry>,
        scratch: &mut Entry,
    ) -> usize {
        let range = part.range(start_ns, end_ns);
        let from = out.len();
        let mut visit = |i: usize| {
            if let Some(m) = &self.must_match
                && !m.is_match(part.line_of(i).as_bytes())
            {
                return true;
            }
            part.read_into(i, scratch);
            if (self.keep)(labels, scratch) {
                out.push(scratch.clone());
            }
            out.len() - from < limit
        };
        match direction {
            Direction::Forward => {
                for i in range {
                    if !visit(i) {
                        break;
                    }
                }
            }
            Direction::Backward => {
                for i in range.rev() {
                    if !visit(i) {
                        break;
                    }
                }
                out[from..].reverse();
            }
        }
        out.len() - from
    }
}

/// One stream's entries, as a query returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntries {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

/// The log store over one directory.
#[derive(Debug)]
pub struct LogStore {
    head: RwLock<Head>,
    /// Sealed blocks, oldest first. Taken after `head` when both are needed, so a query that
    /// holds the head sees each entry in exactly one of them.
    blocks: RwLock<Vec<Arc<LogBlock>>>,
    /// The blocks' streams, each once (see [`Catalog`]). A block is added before it joins
    /// `blocks` and removed after it leaves.
    catalog: RwLock<Catalog>,
    /// Held for reading by a commit from before it logs until its entries are in the head,
    /// and for writing by a seal while it cuts the log and freezes the head: so the segments
    /// below the cut hold exactly the frozen entries.
    gate: RwLock<()>,
    /// One seal or retention pass at a time; holds the newest sealed block's number and the
    /// next one's.
    sealing: Mutex<Sealing>,
    /// One compaction at a time, and no retention pass beside it (taken before `sealing`).
    compacting: Mutex<()>,
    compact_fan_in: usize,
    wal: Arc<Wal>,
    fs: Arc<dyn Fs>,
    clock: Arc<dyn Clock>,
    limits: LogLimits,
    seal_bytes: u64,
    seal_age_ns: i64,
    retention_ns: Option<i64>,
    retention_bytes: Option<u64>,
    /// Block pages queries read, and pages their line filters' needles let them skip.
    pages_read: AtomicU64,
    pages_skipped: AtomicU64,
    page_bytes_read: AtomicU64,
    /// Asks the maintenance thread for a round (given when the store is handed to it).
    waker: std::sync::OnceLock<strata_core::maintenance::Waker>,
    /// New streams appenders hold that the head does not have yet (the streams limit counts
    /// them).
    streams_reserved: std::sync::atomic::AtomicUsize,
    /// Commits wait here while the head is at [`HEAD_SEALS_MAX`] seals' worth; a seal
    /// notifies (holding the mutex, so no wake-up is lost between a check and a wait).
    head_room: Mutex<()>,
    head_room_cv: std::sync::Condvar,
    dir: PathBuf,
    _lock: Box<dyn LockGuard>,
}

#[derive(Debug)]
struct Sealing {
    /// The newest block a checkpoint stands for (0: none).
    sealed: u32,
    /// The number the next block gets.
    next: u32,
    /// When the head last started empty (opening, or a seal), in milliseconds.
    head_since_ms: i64,
    /// Blocks of failed seals that could not be removed: numbered below the next checkpoint's
    /// block, a reopened store would read them, so they are removed after the next seal.
    stale: Vec<PathBuf>,
}

impl LogStore {
    /// Opens the store in `dir` (created if missing), replaying its log.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(LogStore, OpenReport), OpenError> {
        if options.seal_bytes > SEAL_BYTES_MAX {
            return Err(OpenError::Options(format!(
                "seal_bytes of {} is above the ceiling of {SEAL_BYTES_MAX} bytes",
                options.seal_bytes
            )));
        }
        if options.limits.line_bytes_max > LogLimits::LINE_BYTES_CEILING {
            return Err(OpenError::Options(format!(
                "line_bytes_max of {} is above the ceiling of {} bytes",
                options.limits.line_bytes_max,
                LogLimits::LINE_BYTES_CEILING
            )));
        }
        let fs = options.fs;
        let lock = lock_store_dir(fs.as_ref(), dir).map_err(|e| match e {
            StoreLockError::Locked(path) => OpenError::Locked { path },
            StoreLockError::Storage(e) => e.into(),
        })?;
        let mut replay = Replay {
            head: Head::default(),
            orphaned: 0,
            sealed: 0,
            aliases: HashMap::new(),
        };
        let wal_options = WalOptions {
            segment_bytes_max: options.wal_segment_bytes_max,
            fsync: options.fsync,
        };
        let (wal, report) = strata_wal::replay::open(
            Arc::clone(&fs),
            &dir.join(WAL_DIR),
            wal_options,
            &mut replay,
        )?;
        let head = replay.head;
        let loaded = load_blocks(fs.as_ref(), &dir.join(BLOCKS_DIR), replay.sealed)?;
        let mut catalog = Catalog::default();
        let blocks: Vec<Arc<LogBlock>> = loaded
            .blocks
            .into_iter()
            .map(|mut b| {
                catalog.add_block(&mut b);
                Arc::new(b)
            })
            .collect();
        let open_report = OpenReport {
            streams: head.num_streams(),
            entries: head.entries,
            orphaned_entries: replay.orphaned,
            blocks: blocks.len(),
            unfinished_blocks: loaded.unfinished,
            damaged_blocks: loaded.damaged,
            merged_blocks: loaded.merged,
            wal: report,
        };
        if open_report.wal.has_damage()
            || open_report.orphaned_entries > 0
            || open_report.damaged_blocks > 0
        {
            tracing::error!(report = ?open_report, "log store opened with damage; damaged log files were moved to wal/quarantine, damaged blocks renamed to *.damaged");
        }
        let store = LogStore {
            head: RwLock::new(head),
            blocks: RwLock::new(blocks),
            catalog: RwLock::new(catalog),
            gate: RwLock::new(()),
            sealing: Mutex::new(Sealing {
                sealed: replay.sealed,
                next: loaded.next,
                head_since_ms: options.clock.now_ms(),
                stale: Vec::new(),
            }),
            compacting: Mutex::new(()),
            compact_fan_in: options.compact_fan_in,
            wal,
            fs,
            clock: options.clock,
            limits: options.limits,
            seal_bytes: options.seal_bytes,
            seal_age_ns: options.seal_age_ns,
            retention_ns: options.retention_ns,
            retention_bytes: options.retention_bytes,
            pages_read: AtomicU64::new(0),
            pages_skipped: AtomicU64::new(0),
            page_bytes_read: AtomicU64::new(0),
            waker: std::sync::OnceLock::new(),
            streams_reserved: std::sync::atomic::AtomicUsize::new(0),
            head_room: Mutex::new(()),
            head_room_cv: std::sync::Condvar::new(),
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        Ok((store, open_report))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A batch of entries to write.
    pub fn appender(&self) -> LogAppender<'_> {
        LogAppender {
            store: self,
            batch: Vec::new(),
            new_streams: FxHashSet::default(),
            last: None,
        }
    }

    fn head(&self) -> std::sync::RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(|e| e.into_inner())
    }

    fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The numbers of the blocks' streams that match every matcher (see [`Catalog`]).
    fn block_streams(&self, matchers: &[Matcher]) -> Vec<u64> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .select(matchers)
    }

    fn head_mut(&self) -> std::sync::RwLockWriteGuard<'_, Head> {
        self.head.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams held, entries held and their bytes.
    pub fn stats(&self) -> (usize, u64, u64) {
        let head = self.head();
        (head.num_streams(), head.entries, head.bytes)
    }

    /// What queries have read of the blocks so far.
    pub fn page_stats(&self) -> PageStats {
        PageStats {
            read: self.pages_read.load(Ordering::Relaxed),
            skipped: self.pages_skipped.load(Ordering::Relaxed),
            bytes_read: self.page_bytes_read.load(Ordering::Relaxed),
        }
    }

    /// Counts a page about to be read and decompressed.
    fn count_read(&self, block: &LogBlock, page: usize) {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
        self.page_bytes_read
            .fetch_add(block.pages()[page].raw_len, Ordering::Relaxed);
    }

    /// Blocks and their bytes on disk.
    pub fn block_stats(&self) -> (usize, u64) {
        let blocks = self.blocks.read().unwrap_or_else(|e| e.into_inner());
        (blocks.len(), blocks.iter().map(|b| b.bytes()).sum())
    }

    /// The blocks, oldest first, as the head holding `head` sees them.
    fn blocks_with(&self, _head: &Head) -> Vec<Arc<LogBlock>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The entries in `[start_ns, end_ns)` of the streams matching every matcher, from the
    /// blocks and the head together: the `limit` newest (`Backward`) or oldest (`Forward`)
    /// across them, each stream's in that order. `Err` when a block's page fails its checks.
    pub fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<StreamEntries>, StorageError> {
        self.select_lines(
            matchers,
            start_ns,
            end_ns,
            direction,
            limit,
            &LineFilter::default(),
        )
    }

    /// As [`LogStore::select`], of the entries `filter` keeps: the limit counts kept entries,
    /// and a block's page whose token filter lacks one of the filter's needles is not read.
    pub fn select_lines(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
        filter: &LineFilter<'_>,
    ) -> Result<Vec<StreamEntries>, StorageError> {
        let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
        let head = self.head();
        let blocks = self.blocks_with(&head);
        // After the block list: a stream of a listed block is in the catalog until the
        // block leaves the list (retention aside, whose entries are gone by then anyway).
        let ids = self.block_streams(matchers);
        let mut scratch = Entry::new(0, String::new());
        for stream in head.select(matchers) {
            let out = streams.entry(stream.labels.clone()).or_default();
            for part in stream.parts() {
                filter.take_part(
                    &stream.labels,
                    part,
                    start_ns,
                    end_ns,
                    direction,
                    limit,
                    out,
                    &mut scratch,
                );
            }
        }
        drop(head);
        // Blocks in the query's direction: once `limit` kept entries are all newer (oldest
        // first: older) than everything a block holds, no later block can change the answer.
        let mut blocks = blocks;
        match direction {
            Direction::Backward => blocks.sort_by_key(|b| std::cmp::Reverse(b.time_range().1)),
            Direction::Forward => blocks.sort_by_key(|b| b.time_range().0),
        }
        let mut page = Vec::new();
        for block in &blocks {
            let (min_ts, max_ts) = block.time_range();
            if max_ts < start_ns || min_ts >= end_ns {
                continue;
            }
            if let Some(bound) = kth_kept(&streams, limit, direction) {
                let past = match direction {
                    Direction::Backward => max_ts < bound,
                    Direction::Forward => min_ts > bound,
                };
                if past {
                    break;
                }
            }
            for s in block.streams_among(&ids) {
                let stream = &block.streams()[s];
                let mut pages =
                    self.pages_to_read(block, stream, start_ns, end_ns, &filter.needles);
                if direction == Direction::Backward {
                    pages.reverse();
                }
                let out = streams.entry(stream.labels.clone()).or_default();
                // Pages follow each other in time: read from the end the query wants until
                // `limit` kept entries are in hand.
                let mut taken = 0;
                for p in pages {
                    self.count_read(block, p);
                    match &filter.must_match {
                        Some(m) => block.read_page_matching(p, m, &mut page)?,
                        None => block.read_page_into(p, &mut page)?,
                    }
                    taken += filter.take(
                        &stream.labels,
                        &page,
                        start_ns,
                        end_ns,
                        direction,
                        limit - taken,
                        out,
                    );
                    if taken >= limit {
                        break;
                    }
                }
            }
        }
        for entries in streams.values_mut() {
            // Stable: entries of one time keep the order they were found in.
            entries.sort_by_key(|e| e.ts_ns);
        }
        Ok(newest_or_oldest(
            streams.iter().map(|(l, e)| (l, &e[..])),
            start_ns,
            end_ns,
            direction,
            limit,
        )
        .into_iter()
        .map(|(labels, entries)| StreamEntries {
            labels: labels.clone(),
            entries: entries.into_iter().cloned().collect(),
        })
        .collect())
    }

    /// Calls `visit` with every entry in `[start_ns, end_ns)` of the streams matching every
    /// matcher, with its stream's labels, from the head and then the blocks (each stream's
    /// entries in time order within each); block pages whose token filter lacks one of
    /// `needles` are not read, and with `must_match` only the entries whose line holds a
    /// match are visited (see [`LineMatch`]). What metric queries read: every entry, none
    /// cloned. `visit` runs with the head locked for reading when it is given head entries,
    /// so it must not call back into the store, and must be quick. `Err` when a block's page
    /// fails its checks.
    pub fn scan(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        needles: &[Needle],
        must_match: Option<&LineMatch>,
        visit: &mut dyn FnMut(&Labels, &Entry),
    ) -> Result<(), StorageError> {
        // The head and the block list are taken together, so that a seal in between can
        // neither hide entries nor show them twice.
        let head = self.head();
        let blocks = self.blocks_with(&head);
        // After the block list: a stream of a listed block is in the catalog until the
        // block leaves the list (retention aside, whose entries are gone by then anyway).
        let ids = self.block_streams(matchers);
        let mut scratch = Entry::new(0, String::new());
        for stream in head.select(matchers) {
            for part in stream.parts() {
                for i in part.range(start_ns, end_ns) {
                    if must_match.is_some_and(|m| !m.is_match(part.line_of(i).as_bytes())) {
                        continue;
                    }
                    part.read_into(i, &mut scratch);
                    visit(&stream.labels, &scratch);
                }
            }
        }
        drop(head);
        let mut page = Vec::new();
        for block in &blocks {
            let (min_ts, max_ts) = block.time_range();
            if max_ts < start_ns || min_ts >= end_ns {
                continue;
            }
            for s in block.streams_among(&ids) {
                let stream = &block.streams()[s];
                for p in self.pages_to_read(block, stream, start_ns, end_ns, needles) {
                    self.count_read(block, p);
                    match must_match {
                        Some(m) => block.read_page_matching(p, m, &mut page)?,
                        None => block.read_page_into(p, &mut page)?,
                    }
                    for e in in_range(&page, start_ns, end_ns) {
                        visit(&stream.labels, e);
                    }
                }
            }
        }
        Ok(())
    }

    /// The pages among `pages` of `block` that overlap `[start_ns, end_ns)` and whose token
    /// filter holds every needle, in order; the others that overlap are counted as skipped.
    fn pages_to_read(
        &self,
        block: &LogBlock,
        stream: &BlockStream,
        start_ns: i64,
        end_ns: i64,
        needles: &[Needle],
    ) -> Vec<usize> {
        let needles: Vec<&Needle> = needles
            .iter()
            .filter(|n| n.applies_to(&stream.labels))
            .collect();
        let pages = stream.pages.clone();
        let mut out: Vec<usize> = pages
            .filter(|&p| {
                let meta = &block.pages()[p];
                meta.max_ts >= start_ns && meta.min_ts < end_ns
            })
            .collect();
        let in_range = out.len();
        out.retain(|&p| block.page_may_contain(p, &needles));
        self.pages_skipped
            .fetch_add((in_range - out.len()) as u64, Ordering::Relaxed);
        out
    }

    /// The label sets of the streams matching every matcher that have entries in
    /// `[start_ns, end_ns)` (a block counts by its time range), in the head and the blocks,
    /// sorted and without repeats.
    pub fn series(&self, matchers: &[Matcher], start_ns: i64, end_ns: i64) -> Vec<Labels> {
        let head = self.head();
        let blocks = self.blocks_with(&head);
        // After the block list: a stream of a listed block is in the catalog until the
        // block leaves the list (retention aside, whose entries are gone by then anyway).
        let ids = self.block_streams(matchers);
        let mut out: Vec<Labels> = head
            .select(matchers)
            .filter(|s| {
                s.parts()
                    .iter()
                    .any(|part| !part.range(start_ns, end_ns).is_empty())
            })
            .map(|s| s.labels.clone())
            .collect();
        drop(head);
        for block in &blocks {
            let (min_ts, max_ts) = block.time_range();
            if max_ts < start_ns || min_ts >= end_ns {
                continue;
            }
            for s in block.streams_among(&ids) {
                out.push(block.streams()[s].labels.clone());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Label names of the streams, in the head and the blocks, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names = self.head().label_names();
        names.extend(
            self.catalog
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .label_names(),
        );
        names.sort();
        names.dedup();
        names
    }

    /// Values of label `name` among the streams, in the head and the blocks, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut values = self.head().label_values(name);
        values.extend(
            self.catalog
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .label_values(name),
        );
        values.sort();
        values.dedup();
        values
    }

    /// Seals the head when it is large or old enough, then removes the blocks retention no
    /// longer keeps: the store's share of the background work.
    pub fn maintain(&self) -> Result<MaintainReport, StorageError> {
        let now_ms = self.clock.now_ms();
        let now_ns = now_ms.saturating_mul(1_000_000);
        let since_ms = self
            .sealing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .head_since_ms;
        let due = {
            let head = self.head();
            head.entries > 0
                && (head.bytes >= self.seal_bytes
                    || now_ns.saturating_sub(since_ms.saturating_mul(1_000_000))
                        >= self.seal_age_ns)
        };
        let sealed = if due { self.seal()? } else { None };
        let expired_blocks = self.apply_retention(now_ns)?;
        let mut compacted = Vec::new();
        while let Some(summary) = self.compact()? {
            compacted.push(summary);
            if compacted.len() == COMPACTIONS_PER_ROUND {
                // The thread is shared: the rest in the next round, asked for now.
                if self.compaction_due()
                    && let Some(waker) = self.waker.get()
                {
                    waker.wake();
                }
                break;
            }
        }
        Ok(MaintainReport {
            sealed,
            expired_blocks,
            compacted,
        })
    }

    /// Moves every entry of the head into a new block (`None` when the head has none). The
    /// entries stay visible throughout; once the block and the checkpoint that stands for the
    /// log before it are durable, the log before it is removed. See `docs/format/wal.md`.
    pub fn seal(&self) -> Result<Option<BlockSummary>, StorageError> {
        let mut sealing = self.sealing.lock().unwrap_or_else(|e| e.into_inner());
        let (cut, frozen) = {
            let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
            let mut head = self.head_mut();
            if head.entries == 0 {
                return Ok(None);
            }
            let cut = self.wal.cut_segment()?;
            (cut, head.freeze())
        };
        let seq = sealing.next;
        sealing.next = seq + 1;
        let blocks_dir = self.dir.join(BLOCKS_DIR);
        let path = blocks_dir.join(block_file_name(seq));
        let written = (|| {
            let summary = write_parts(self.fs.as_ref(), &blocks_dir, seq, &frozen)?;
            let mut block = LogBlock::open(self.fs.as_ref(), &summary.path)?;
            self.catalog_mut().add_block(&mut block);
            Ok::<_, StorageError>((summary, block))
        })();
        let (summary, block) = match written {
            Ok(done) => done,
            Err(e) => {
                // No checkpoint names the block: whatever of it is on disk is not read.
                self.head_mut().thaw();
                if self.fs.exists(&path).unwrap_or(true)
                    && let Err(rm) = self.fs.remove_file(&path)
                {
                    tracing::warn!(path = %path.display(), error = %rm, "could not remove the block of a failed seal; it is removed after the next seal");
                    sealing.stale.push(path);
                }
                return Err(e);
            }
        };
        // The block stands in for the frozen entries from here on: queries that take the head
        // after this see them there and only there. Streams left without entries are
        // forgotten, and the checkpoint keeps the others, both decided while no commit is
        // between logging and applying.
        let remaining: Vec<(StreamRef, Labels)> = {
            let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
            let mut head = self.head_mut();
            self.blocks
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arc::new(block));
            head.release_frozen();
            head.streams().map(|(r, s)| (r, s.labels.clone())).collect()
        };
        {
            let _room = self.head_room.lock().unwrap_or_else(|e| e.into_inner());
            self.head_room_cv.notify_all();
        }
        sealing.head_since_ms = self.clock.now_ms();
        // Until the checkpoint is durable the segments below the cut stay, and a reopened
        // store reads them rather than the block (numbered above the last checkpoint's). So a
        // failed checkpoint loses nothing; the next seal's stands for this one's segments too.
        self.write_checkpoint(cut, seq, &remaining)?;
        sealing.sealed = seq;
        for stale in std::mem::take(&mut sealing.stale) {
            if let Err(e) = self.fs.remove_file(&stale) {
                tracing::warn!(path = %stale.display(), error = %e, "could not remove the block of a failed seal");
            }
        }
        let wal_dir = self.dir.join(WAL_DIR);
        if let Err(e) = remove_covered(self.fs.as_ref(), &wal_dir, cut) {
            // The checkpoint stands for those segments: the next seal removes them.
            tracing::warn!(error = %e, "could not remove the log segments a seal covered");
        }
        Ok(Some(summary))
    }

    /// The blocks the next compaction merges: the oldest run of `compact_fan_in` blocks in a
    /// row (by number) of one level below [`COMPACT_LEVEL_MAX`], all of them blocks a
    /// checkpoint stands for (a block numbered above the checkpoint's is removed on opening,
    /// its entries replayed from the log: it must not take others' entries with it).
    fn compaction_sources(&self) -> Vec<Arc<LogBlock>> {
        let fan_in = self.compact_fan_in;
        if fan_in < 2 {
            return Vec::new();
        }
        let sealed = self
            .sealing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sealed;
        let blocks = self.blocks.read().unwrap_or_else(|e| e.into_inner());
        let settled: Vec<&Arc<LogBlock>> = blocks.iter().filter(|b| b.seq() <= sealed).collect();
        settled
            .windows(fan_in)
            .find(|run| {
                let level = run[0].level();
                level < COMPACT_LEVEL_MAX && run.iter().all(|b| b.level() == level)
            })
            .map(|run| run.iter().map(|b| Arc::clone(b)).collect())
            .unwrap_or_default()
    }

    /// Whether a run of blocks is waiting to be merged (the maintenance thread merges it at
    /// its next round).
    pub fn compaction_due(&self) -> bool {
        !self.compaction_sources().is_empty()
    }

    /// Merges a run of blocks into one (see [`Self::compaction_sources`]): each stream's
    /// entries from all of them in time order, in pages of up to [`PAGE_BYTES`] (a seal's
    /// block has a page per stream when streams are many, so a merged one compresses
    /// better, and the store keeps fewer blocks' indexes in memory). `None` when no run is
    /// due.
    ///
    /// The merged block takes the newest source's number and replaces its file by a rename;
    /// it names the other sources, so a crash before they are removed leaves nothing read
    /// twice: opening removes any block another names. Queries see the sources or the
    /// merged block, never both. A head that fills meanwhile is sealed between streams.
    pub fn compact(&self) -> Result<Option<BlockSummary>, StorageError> {
        let _compacting = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let sources = self.compaction_sources();
        let Some(newest) = sources.last() else {
            return Ok(None);
        };
        let level = newest.level() + 1;
        let seq = newest.seq();
        let dir = self.dir.join(BLOCKS_DIR);
        let path = dir.join(block_file_name(seq));
        // Every stream, in label order, with its pages in each source.
        let mut parts: BTreeMap<Labels, Vec<(usize, std::ops::Range<usize>)>> = BTreeMap::new();
        for (i, b) in sources.iter().enumerate() {
            for s in b.streams() {
                parts
                    .entry(s.labels.clone())
                    .or_default()
                    .push((i, s.pages.clone()));
            }
        }
        let mut writer = BlockWriter::create(self.fs.as_ref(), &dir, seq, COMPACT_ZSTD_LEVEL)?;
        let mut page: Vec<Entry> = Vec::new();
        // Each source is read once through, in its own order (streams by labels): what is
        // read is let go of every few MiB, so the merge does not swell the resident set.
        let mut released = vec![0u64; sources.len()];
        for (labels, parts) in parts {
            for (i, pages) in &parts {
                let start = sources[*i].pages().get(pages.start).map_or(0, |p| p.offset);
                if start - released[*i].min(start) >= RELEASE_BYTES {
                    sources[*i].release_before(pages.start);
                    released[*i] = start;
                }
            }
            writer.begin_stream(&labels);
            let mut cursors: Vec<PageCursor<'_>> = parts
                .into_iter()
                .map(|(i, pages)| PageCursor::new(&sources[i], pages))
                .collect();
            let mut bytes = 0;
            loop {
                // A full page that comes before everything else left of the stream is
                // copied as it is (the pages of a loud stream, in successive seals).
                if let Some(j) = copyable(&cursors) {
                    if !page.is_empty() {
                        writer.write_page(&page)?;
                        page.clear();
                        bytes = 0;
                    }
                    if let Some(p) = cursors[j].take_page() {
                        writer.copy_page(cursors[j].block(), p)?;
                    }
                    continue;
                }
                // The oldest next entry; of one time, the older block's first.
                // (A page's oldest is in the index: only the chosen cursor reads a page, so
                // the others stay at their page's start, where a full page can be copied.)
                let mut oldest: Option<(i64, usize)> = None;
                for (j, c) in cursors.iter().enumerate() {
                    if let Some(ts) = c.next_ts()
                        && oldest.is_none_or(|(t, _)| ts < t)
                    {
                        oldest = Some((ts, j));
                    }
                }
                let Some((_, j)) = oldest else { break };
                if cursors[j].peek()?.is_none() {
                    // The index promised an entry (a page never reads back empty).
                    return Err(StorageError::Corruption {
                        path: cursors[j].block().path().to_path_buf(),
                        offset: 0,
                        reason: "log page index promises entries the page does not hold",
                    });
                }
                let entry = cursors[j].take();
                bytes += page_bytes_of(&entry);
                page.push(entry);
                if bytes >= PAGE_BYTES {
                    writer.write_page(&page)?;
                    page.clear();
                    bytes = 0;
                }
            }
            writer.write_page(&page)?;
            page.clear();
            // A merge of gigabytes takes a while on the thread that seals too.
            if self.head().bytes >= self.seal_bytes
                && let Err(e) = self.seal()
            {
                tracing::warn!(error = %e, "a seal during a log compaction failed");
            }
        }
        let others: Vec<u32> = sources[..sources.len() - 1]
            .iter()
            .map(|b| b.seq())
            .collect();
        let summary = writer.finish(level, &others, &path)?;
        let mut merged = LogBlock::open(self.fs.as_ref(), &path)?;
        self.catalog_mut().add_block(&mut merged);
        {
            let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            blocks.retain(|b| !sources.iter().any(|s| Arc::ptr_eq(s, b)));
            let at = blocks.partition_point(|b| b.seq() < seq);
            blocks.insert(at, Arc::new(merged));
        }
        {
            let mut catalog = self.catalog_mut();
            for b in &sources {
                catalog.remove_block(b);
            }
        }
        for b in &sources[..sources.len() - 1] {
            if let Err(e) = self.fs.remove_file(b.path()) {
                // The merged block names it: opening the store removes it.
                tracing::warn!(path = %b.path().display(), error = %e, "could not remove a merged log block");
            }
        }
        if let Err(e) = self.fs.sync_dir(&dir) {
            tracing::warn!(error = %e, "could not sync the log blocks directory after a compaction");
        }
        Ok(Some(summary))
    }

    /// Waits while the head is at its most (asking for a seal), up to [`HEAD_WAIT`]; a store
    /// not handed to a maintenance thread is sealed by its owner, and does not wait.
    fn wait_for_head_room(&self) -> Result<(), CommitError> {
        let most = self.seal_bytes.saturating_mul(HEAD_SEALS_MAX);
        if self.head().bytes < most {
            return Ok(());
        }
        // Only a store handed to a maintenance thread is sealed by anyone but its owner.
        let Some(waker) = self.waker.get() else {
            return Ok(());
        };
        waker.wake();
        let deadline = std::time::Instant::now() + HEAD_WAIT;
        let mut room = self.head_room.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let bytes = self.head().bytes;
            if bytes < most {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(CommitError::Busy { bytes });
            }
            room = self
                .head_room_cv
                .wait_timeout(room, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Checkpoint `cut`: the streams the head keeps (so later segments' entries find their
    /// stream) and the newest sealed block.
    fn write_checkpoint(
        &self,
        cut: strata_wal::SegmentSeq,
        sealed: u32,
        streams: &[(StreamRef, Labels)],
    ) -> Result<(), StorageError> {
        let wal_dir = self.dir.join(WAL_DIR);
        let mut cp = CheckpointWriter::create(Arc::clone(&self.fs), &wal_dir, cut)?;
        let result = (|| {
            let mut payload = Vec::new();
            for group in streams.chunks(256) {
                let group: Vec<(StreamRef, Vec<(&str, &str)>)> = group
                    .iter()
                    .map(|(r, l)| {
                        (
                            *r,
                            l.iter()
                                .map(|l| (l.name().as_str(), l.value().as_str()))
                                .collect(),
                        )
                    })
                    .collect();
                payload.clear();
                record::encode_streams(&mut payload, &group);
                cp.add(record::STREAMS, &payload)?;
            }
            payload.clear();
            record::encode_sealed(&mut payload, sealed);
            cp.add(record::SEALED, &payload)
        })();
        match result {
            Ok(()) => cp.finish().map(|_| ()),
            Err(e) => {
                cp.abort();
                Err(e)
            }
        }
    }

    /// Removes the blocks retention no longer keeps. Returns how many.
    fn apply_retention(&self, now_ns: i64) -> Result<usize, StorageError> {
        if self.retention_ns.is_none() && self.retention_bytes.is_none() {
            return Ok(0);
        }
        let _compacting = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let _sealing = self.sealing.lock().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<Arc<LogBlock>> = {
            let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
            let oldest_kept = self
                .retention_ns
                .map_or(i64::MIN, |r| now_ns.saturating_sub(r));
            let mut total: u64 = blocks.iter().map(|b| b.bytes()).sum();
            let max_bytes = self.retention_bytes.unwrap_or(u64::MAX);
            // Oldest first by their newest entry.
            blocks.sort_by_key(|b| (b.time_range().1, b.seq()));
            let mut n = 0;
            while n < blocks.len() {
                let b = &blocks[n];
                if b.time_range().1 >= oldest_kept && total <= max_bytes {
                    break;
                }
                total -= b.bytes();
                n += 1;
            }
            let expired = blocks.drain(..n).collect();
            blocks.sort_by_key(|b| b.seq());
            expired
        };
        {
            let mut catalog = self.catalog_mut();
            for b in &expired {
                catalog.remove_block(b);
            }
        }
        for b in &expired {
            self.fs
                .remove_file(b.path())
                .map_err(io_err("remove expired log block", b.path()))?;
        }
        if !expired.is_empty() {
            let dir = self.dir.join(BLOCKS_DIR);
            self.fs
                .sync_dir(&dir)
                .map_err(io_err("sync log blocks directory", &dir))?;
        }
        Ok(expired.len())
    }

    /// Closes the log (syncing what it holds).
    pub fn close(&self) -> Result<(), StorageError> {
        self.wal.close()
    }
}

/// The time of the `limit`-th newest (`Backward`) or oldest (`Forward`) entry among those
/// kept so far, once there are that many.
fn kth_kept(
    streams: &BTreeMap<Labels, Vec<Entry>>,
    limit: usize,
    direction: Direction,
) -> Option<i64> {
    let total: usize = streams.values().map(Vec::len).sum();
    if limit == 0 || total < limit {
        return None;
    }
    let mut times: Vec<i64> = streams.values().flatten().map(|e| e.ts_ns).collect();
    let k = match direction {
        Direction::Backward => total - limit,
        Direction::Forward => limit - 1,
    };
    Some(*times.select_nth_unstable(k).1)
}

/// A batch of entries, checked as they are added and written by [`LogAppender::commit`].
#[derive(Debug)]
pub struct LogAppender<'s> {
    store: &'s LogStore,
    batch: Vec<(Labels, Entry)>,
    /// Streams of the batch the store does not hold yet (for the streams limit).
    new_streams: FxHashSet<Labels>,
    /// What the checks of the last entry appended read of its stream: a push names a
    /// stream once for all its entries, so the next entry is most often of the same stream
    /// and is checked without looking it up again.
    last: Option<LastStream>,
}

/// The stream of an appender's last entry, as its first entry of a run found it.
#[derive(Debug)]
struct LastStream {
    labels: Labels,
    /// The stream's newest timestamp in the store then (`None`: no entry, or a new stream).
    max_ns: Option<i64>,
}

impl LogAppender<'_> {
    /// Adds an entry of the stream `labels`, after checking it against the limits; a refused
    /// entry leaves the batch as it was.
    pub fn append(&mut self, labels: &Labels, entry: Entry) -> Result<(), AppendError> {
        let limits = &self.store.limits;
        if labels.is_empty() {
            return Err(AppendError::NoLabels);
        }
        if labels.len() > limits.labels_per_stream_max {
            return Err(AppendError::TooManyLabels {
                count: labels.len(),
                max: limits.labels_per_stream_max,
            });
        }
        let bytes = entry.bytes();
        if bytes > limits.line_bytes_max {
            return Err(AppendError::LineTooLong {
                bytes,
                max: limits.line_bytes_max,
            });
        }
        if entry.metadata.len() > limits.metadata_pairs_max {
            return Err(AppendError::TooMuchMetadata {
                count: entry.metadata.len(),
                max: limits.metadata_pairs_max,
            });
        }
        let now_ns = self.store.clock.now_ms().saturating_mul(1_000_000);
        let oldest_ns = now_ns.saturating_sub(limits.too_old_ns);
        if entry.ts_ns < oldest_ns {
            return Err(AppendError::TooOld {
                ts_ns: entry.ts_ns,
                oldest_ns,
            });
        }
        let newest_ns = now_ns.saturating_add(limits.future_ns);
        if entry.ts_ns > newest_ns {
            return Err(AppendError::TooNew {
                ts_ns: entry.ts_ns,
                newest_ns,
            });
        }
        let last = match self.last.take() {
            Some(last) if last.labels == *labels => last,
            _ => self.look_up(labels)?,
        };
        let max_ns = last.max_ns;
        self.last = Some(last);
        if let Some(stream_max_ns) = max_ns {
            let oldest_ns = stream_max_ns.saturating_sub(limits.out_of_order_ns);
            if entry.ts_ns < oldest_ns {
                return Err(AppendError::OutOfOrder {
                    ts_ns: entry.ts_ns,
                    stream_max_ns,
                    oldest_ns,
                });
            }
        }
        self.batch.push((labels.clone(), entry));
        Ok(())
    }

    /// Reads what the checks of a run of entries of the stream `labels` need, and reserves
    /// the stream against the streams limit if the store does not hold it (refused when
    /// that would pass the limit).
    fn look_up(&mut self, labels: &Labels) -> Result<LastStream, AppendError> {
        let limits = &self.store.limits;
        let head = self.store.head();
        let known = head.find(labels);
        let max_ns = known.and_then(|r| head.get(r)).and_then(|s| s.max_ts());
        if known.is_none() && !self.new_streams.contains(labels) {
            // Every appender's new streams count against the limit until its commit has
            // put them in the head (see `Drop`), so concurrent batches cannot together pass
            // it.
            let reserved = self.store.streams_reserved.fetch_add(1, Ordering::SeqCst) + 1;
            if head.num_streams() + reserved > limits.streams_max {
                self.store.streams_reserved.fetch_sub(1, Ordering::SeqCst);
                return Err(AppendError::TooManyStreams {
                    max: limits.streams_max,
                });
            }
            self.new_streams.insert(labels.clone());
        }
        Ok(LastStream {
            labels: labels.clone(),
            max_ns,
        })
    }

    /// Entries in the batch.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Writes the batch: logged and synced (with [`FsyncMode::Always`]) before any of it is
    /// visible; on `Ok` it is durable. Returns the entries stored (a retried duplicate of an
    /// entry already held is not stored twice).
    pub fn commit(mut self) -> Result<u64, CommitError> {
        if self.batch.is_empty() {
            return Ok(0);
        }
        let batch = std::mem::take(&mut self.batch);
        let store = self.store;
        store.wait_for_head_room()?;
        // Until the entries are in the head, a seal must not cut the log (see `gate`).
        let _gate = store.gate.read().unwrap_or_else(|e| e.into_inner());
        // Streams first: created in the head (unlogged) so every entry has its reference.
        let mut refs = Vec::with_capacity(batch.len());
        let mut unlogged: Vec<(StreamRef, Labels)> = Vec::new();
        let mut seen: FxHashSet<StreamRef> = FxHashSet::default();
        {
            let mut head = store.head_mut();
            let mut last: Option<(&Labels, StreamRef)> = None;
            for (labels, _) in &batch {
                let r = match last {
                    Some((l, r)) if l == labels => r,
                    _ => {
                        let r = head.get_or_create(labels);
                        if head.get(r).is_some_and(|s| !s.logged) && seen.insert(r) {
                            unlogged.push((r, labels.clone()));
                        }
                        r
                    }
                };
                last = Some((labels, r));
                refs.push(r);
            }
        }
        let frames = encode(&unlogged, &refs, &batch);
        store.wal.log(&frames, false)?;
        let mut head = store.head_mut();
        for (r, _) in &unlogged {
            if let Some(s) = head.get_mut(*r) {
                s.logged = true;
            }
        }
        let mut stored = 0;
        for (r, (_, entry)) in refs.into_iter().zip(batch) {
            stored += u64::from(head.apply(r, &entry));
        }
        let full = head.bytes >= store.seal_bytes;
        drop(head);
        // A head grown to its seal size is sealed now, not at the next scheduled round: a
        // catch-up would otherwise hold minutes of logs in memory and in the log.
        if full && let Some(waker) = store.waker.get() {
            waker.wake();
        }
        Ok(stored)
    }
}

impl Drop for LogAppender<'_> {
    /// Gives back the appender's reservations against the streams limit: committed, its new
    /// streams are in the head now; dropped, they never will be.
    fn drop(&mut self) {
        self.store
            .streams_reserved
            .fetch_sub(self.new_streams.len(), Ordering::SeqCst);
    }
}

/// The frames of a commit: its unlogged streams, then its entries, each record within the
/// payload limit.
fn encode(
    unlogged: &[(StreamRef, Labels)],
    refs: &[StreamRef],
    batch: &[(Labels, Entry)],
) -> Vec<u8> {
    const RECORD_BYTES: usize = RECORD_PAYLOAD_BYTES_MAX / 2;
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    for group in unlogged.chunks(256) {
        let streams: Vec<(StreamRef, Vec<(&str, &str)>)> = group
            .iter()
            .map(|(r, l)| {
                (
                    *r,
                    l.iter()
                        .map(|l| (l.name().as_str(), l.value().as_str()))
                        .collect(),
                )
            })
            .collect();
        payload.clear();
        record::encode_streams(&mut payload, &streams);
        encode_frame(&mut frames, record::STREAMS, &payload);
    }
    // Entries in records of at most RECORD_BYTES (an entry alone always fits: the line
    // limit's ceiling is half a record).
    let mut start = 0;
    while start < batch.len() {
        let mut end = start;
        let mut bytes = 10;
        while end < batch.len() {
            let e = &batch[end].1;
            let b = record::entry_bytes_max(&e.line, &e.metadata);
            if end > start && bytes + b > RECORD_BYTES {
                break;
            }
            bytes += b;
            end += 1;
        }
        payload.clear();
        record::encode_entries(
            &mut payload,
            refs[start..end]
                .iter()
                .zip(&batch[start..end])
                .map(|(r, (_, e))| (*r, e.ts_ns, e.line.as_str(), &e.metadata[..])),
        );
        encode_frame(&mut frames, record::ENTRIES, &payload);
        start = end;
    }
    frames
}

/// Writes a seal's block of the head's frozen parts (see [`write_block`]), one stream's
/// entries read out at a time.
fn write_parts(
    fs: &dyn Fs,
    dir: &Path,
    seq: u32,
    frozen: &[(Labels, Arc<Part>)],
) -> Result<BlockSummary, StorageError> {
    let mut streams: Vec<&(Labels, Arc<Part>)> =
        frozen.iter().filter(|(_, p)| !p.is_empty()).collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    let mut writer = BlockWriter::create(fs, dir, seq, ZSTD_LEVEL)?;
    let mut entries = Vec::new();
    for (labels, part) in streams {
        part.read_range_into(0..part.len(), &mut entries);
        writer.write_stream(labels, &entries)?;
    }
    writer.finish(0, &[], &dir.join(block_file_name(seq)))
}

impl strata_core::maintenance::Maintained for LogStore {
    fn name(&self) -> &'static str {
        "logs"
    }

    fn set_waker(&self, waker: strata_core::maintenance::Waker) {
        let _ = self.waker.set(waker);
    }

    fn maintain_round(&self) -> Result<(), StorageError> {
        let report = self.maintain()?;
        if let Some(s) = &report.sealed {
            tracing::info!(block = %s.path.display(), entries = s.entries, bytes = s.bytes, "log head sealed into a block");
        }
        for c in &report.compacted {
            tracing::info!(block = %c.path.display(), entries = c.entries, bytes = c.bytes, "log blocks merged");
        }
        if report.expired_blocks > 0 {
            tracing::info!(
                blocks = report.expired_blocks,
                "log blocks removed by retention"
            );
        }
        Ok(())
    }
}
