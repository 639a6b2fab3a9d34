//! The store: opening (replaying the log into the head), the appender, and queries.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use strata_core::clock::{Clock, SystemClock};
use strata_core::codec::DecodeError;
use strata_core::error::StorageError;
use strata_core::fs::{Fs, LockGuard, RealFs, StoreLockError, lock_store_dir};
use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_wal::frame::{RECORD_PAYLOAD_BYTES_MAX, RecordType, encode_frame};
use strata_wal::replay::{ReplayHandler, ReplayReport, Source};
use strata_wal::{FsyncMode, Wal, WalOptions};

use crate::entry::{Direction, Entry, StreamRef};
use crate::error::{AppendError, CommitError, OpenError};
use crate::head::{Head, newest_or_oldest};
use crate::record::{self, EntryRecord, StreamRecord};

/// The log's directory below the store's.
pub const WAL_DIR: &str = "wal";

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

/// How the store is opened.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub fs: Arc<dyn Fs>,
    pub clock: Arc<dyn Clock>,
    /// When the log is synced ([`FsyncMode::Always`]: before every acknowledgement).
    pub fsync: FsyncMode,
    pub wal_segment_bytes_max: u64,
    pub limits: LogLimits,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            fs: Arc::new(RealFs),
            clock: Arc::new(SystemClock),
            fsync: FsyncMode::Always,
            wal_segment_bytes_max: WalOptions::default().segment_bytes_max,
            limits: LogLimits::default(),
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
    pub wal: ReplayReport,
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
    wal: Arc<Wal>,
    clock: Arc<dyn Clock>,
    limits: LogLimits,
    dir: PathBuf,
    _lock: Box<dyn LockGuard>,
}

impl LogStore {
    /// Opens the store in `dir` (created if missing), replaying its log.
    pub fn open(dir: &Path, options: LogOptions) -> Result<(LogStore, OpenReport), OpenError> {
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
        let open_report = OpenReport {
            streams: head.num_streams(),
            entries: head.entries,
            orphaned_entries: replay.orphaned,
            wal: report,
        };
        if open_report.wal.has_damage() || open_report.orphaned_entries > 0 {
            tracing::error!(report = ?open_report, "log store opened with a damaged write-ahead log; damaged files were moved to wal/quarantine");
        }
        let store = LogStore {
            head: RwLock::new(head),
            wal,
            clock: options.clock,
            limits: options.limits,
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
            new_streams: HashSet::new(),
        }
    }

    fn head(&self) -> std::sync::RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(|e| e.into_inner())
    }

    fn head_mut(&self) -> std::sync::RwLockWriteGuard<'_, Head> {
        self.head.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams held, entries held and their bytes.
    pub fn stats(&self) -> (usize, u64, u64) {
        let head = self.head();
        (head.num_streams(), head.entries, head.bytes)
    }

    /// The entries in `[start_ns, end_ns)` of the streams matching every matcher: the `limit`
    /// newest (`Backward`) or oldest (`Forward`) across them, each stream's in that order.
    pub fn select(
        &self,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
        direction: Direction,
        limit: usize,
    ) -> Vec<StreamEntries> {
        let head = self.head();
        newest_or_oldest(head.select(matchers), start_ns, end_ns, direction, limit)
            .into_iter()
            .map(|(stream, entries)| StreamEntries {
                labels: stream.labels.clone(),
                entries: entries.into_iter().cloned().collect(),
            })
            .collect()
    }

    /// Label names of the streams, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.head().label_names()
    }

    /// Values of label `name` among the streams, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.head().label_values(name)
    }

    /// Closes the log (syncing what it holds).
    pub fn close(&self) -> Result<(), StorageError> {
        self.wal.close()
    }
}

/// A batch of entries, checked as they are added and written by [`LogAppender::commit`].
#[derive(Debug)]
pub struct LogAppender<'s> {
    store: &'s LogStore,
    batch: Vec<(Labels, Entry)>,
    /// Streams of the batch the store does not hold yet (for the streams limit).
    new_streams: HashSet<Labels>,
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
        let head = self.store.head();
        let known = head.find(labels);
        if let Some(stream_max_ns) = known.and_then(|r| head.get(r)).and_then(|s| s.max_ts()) {
            let oldest_ns = stream_max_ns.saturating_sub(limits.out_of_order_ns);
            if entry.ts_ns < oldest_ns {
                return Err(AppendError::OutOfOrder {
                    ts_ns: entry.ts_ns,
                    stream_max_ns,
                    oldest_ns,
                });
            }
        }
        let new = known.is_none() && !self.new_streams.contains(labels);
        if new && head.num_streams() + self.new_streams.len() >= limits.streams_max {
            return Err(AppendError::TooManyStreams {
                max: limits.streams_max,
            });
        }
        drop(head);
        if new {
            self.new_streams.insert(labels.clone());
        }
        self.batch.push((labels.clone(), entry));
        Ok(())
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
    pub fn commit(self) -> Result<u64, CommitError> {
        if self.batch.is_empty() {
            return Ok(0);
        }
        let store = self.store;
        // Streams first: created in the head (unlogged) so every entry has its reference.
        let mut refs = Vec::with_capacity(self.batch.len());
        let mut unlogged: Vec<(StreamRef, Labels)> = Vec::new();
        let mut seen: HashSet<StreamRef> = HashSet::new();
        {
            let mut head = store.head_mut();
            for (labels, _) in &self.batch {
                let r = head.get_or_create(labels);
                refs.push(r);
                if head.get(r).is_some_and(|s| !s.logged) && seen.insert(r) {
                    unlogged.push((r, labels.clone()));
                }
            }
        }
        let frames = encode(&unlogged, &refs, &self.batch);
        store.wal.log(&frames, false)?;
        let mut head = store.head_mut();
        for (r, _) in &unlogged {
            if let Some(s) = head.get_mut(*r) {
                s.logged = true;
            }
        }
        let mut stored = 0;
        for (r, (_, entry)) in refs.into_iter().zip(self.batch) {
            stored += u64::from(head.apply(r, entry));
        }
        Ok(stored)
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

/// Replays the log into a head.
struct Replay {
    head: Head,
    orphaned: u64,
}

impl ReplayHandler for Replay {
    fn on_record(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        _source: Source,
    ) -> Result<(), DecodeError> {
        match ty {
            record::STREAMS => {
                let mut streams: Vec<StreamRecord<'_>> = Vec::new();
                record::decode_streams(payload, &mut streams)?;
                for s in streams {
                    let labels = Labels::new(s.labels.iter().copied())
                        .map_err(|_| DecodeError("stream labels that are not a label set"))?;
                    self.head
                        .restore_stream(s.stream, labels)
                        .map_err(DecodeError)?;
                }
                Ok(())
            }
            record::ENTRIES => {
                let mut entries: Vec<EntryRecord<'_>> = Vec::new();
                record::decode_entries(payload, &mut entries)?;
                for e in entries {
                    if self.head.get(e.stream).is_none() {
                        self.orphaned += 1;
                        continue;
                    }
                    let entry = Entry {
                        ts_ns: e.ts_ns,
                        line: e.line.to_string(),
                        metadata: e
                            .metadata
                            .iter()
                            .map(|&(n, v)| (n.to_string(), v.to_string()))
                            .collect(),
                    };
                    self.head.apply(e.stream, entry);
                }
                Ok(())
            }
            _ => Err(DecodeError("a record type the log store does not know")),
        }
    }
}
