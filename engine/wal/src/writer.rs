//! The log's writer: segments, group commit, failure handling, the interval syncer.
//!
//! **Group commit.** Writers hand [`Wal::log`] whole frames. The first writer to find no flush
//! in progress becomes the leader: it takes everything buffered so far, writes it with one
//! `write`, syncs it with one `fdatasync` (in [`FsyncMode::Always`]), and wakes every writer
//! whose bytes that covered. Writers that arrive meanwhile wait and are served by the next
//! flush, so one fsync serves every request waiting on it.
//!
//! **Failure.** After a failed write or sync the segment is abandoned: it is cut back to its
//! last good length (best effort) and the next flush opens a fresh segment. The engine never
//! appends after bytes whose fate it does not know, and never retries an fsync that failed
//! (the kernel may already have dropped those pages).
//!
//! **Interval mode.** With [`FsyncMode::Interval`], a write is acknowledged once it has reached
//! the operating system (it survives the process being killed) and a background thread syncs
//! the segment every interval: a power cut can lose what was acknowledged since the last sync,
//! at most one interval plus one sync's duration.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use strata_core::codec::{FILE_HEADER_BYTES, FileHeader, encode_file_header};
use strata_core::error::StorageError;
use strata_core::fs::{Fs, WritableFile};

use crate::frame::SEGMENT_MAGIC;

/// When the log is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// Before every acknowledgement (the default): an acknowledged write survives a power cut.
    Always,
    /// Every interval, in the background: an acknowledged write survives the process being
    /// killed, but a power cut can lose up to one interval (plus one sync) of acknowledged
    /// writes.
    Interval(Duration),
}

/// How the log is written.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it would grow past this size. A single
    /// batch larger than this gets a segment of its own.
    pub segment_bytes_max: u64,
    /// When to sync.
    pub fsync: FsyncMode,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes_max: 64 << 20,
            fsync: FsyncMode::Always,
        }
    }
}

/// The number in a segment's file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentSeq(pub u32);

/// The file name of segment `seq`.
pub fn segment_name(seq: SegmentSeq) -> String {
    format!("{:08}", seq.0)
}

/// Counters of what the log has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of records written.
    pub bytes_written: u64,
    /// Flushes performed (each one write, and one sync in `Always` mode).
    pub flushes: u64,
    /// Successful segment syncs.
    pub syncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments abandoned after a failed write or sync.
    pub segments_abandoned: u64,
    /// Flushes that failed.
    pub failed_flushes: u64,
    /// Successful syncs of the segment being written, by how long they took: counts per
    /// bucket of [`SYNC_BUCKETS_SECONDS`] (not cumulative), the last for longer ones.
    pub sync_buckets: [u64; SYNC_BUCKETS_SECONDS.len() + 1],
    /// Total time of the syncs counted in `sync_buckets`, in nanoseconds.
    pub sync_nanos_total: u64,
}

/// Upper bounds, in seconds, of [`WalStats::sync_buckets`].
pub const SYNC_BUCKETS_SECONDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Failures kept so that waiting writers can learn their batch failed. Waiters check within
/// microseconds of the failure, so a short history is plenty.
const FAILURES_KEPT: usize = 1024;

#[derive(Debug)]
struct SegmentWriter {
    seq: SegmentSeq,
    path: PathBuf,
    file: Box<dyn WritableFile>,
    /// Invariant: the file holds whole frames up to `good_len`: every byte before it was
    /// written by a flush that succeeded.
    good_len: u64,
    /// Bytes known to be on disk.
    synced_len: u64,
}

#[derive(Debug)]
struct State {
    closed: bool,
    /// Frames accepted but not yet taken by a flush.
    buffer: Vec<u8>,
    /// Total bytes ever accepted: the log sequence number of the end of `buffer`.
    accepted: u64,
    /// Every byte before this has been through a flush (successful or not).
    processed: u64,
    /// Every byte before this that was written successfully is also synced.
    synced: u64,
    /// Byte ranges whose flush failed, with the error.
    failures: VecDeque<(Range<u64>, StorageError)>,
    flushing: bool,
    /// `None` while a flush holds it, or after a failure until the next segment is opened.
    writer: Option<SegmentWriter>,
    next_seq: SegmentSeq,
    /// Bytes of the previous segment known to be on disk, for the next segment's header.
    prev_synced_len: u64,
    /// Set when an abandoned segment held acknowledged bytes that could not be synced
    /// (interval mode): the next `sync` reports their possible loss.
    unsynced_lost: bool,
    force_rotate: bool,
    stats: WalStats,
}

/// The write-ahead log writer. Open it with [`crate::replay::open`].
#[derive(Debug)]
pub struct Wal {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: WalOptions,
    state: Mutex<State>,
    cond: Condvar,
    syncer: Mutex<Option<JoinHandle<()>>>,
    /// How many times acknowledged, unsynced bytes were lost to a failure (interval mode).
    losses: AtomicU64,
}

impl Wal {
    /// A writer that will start segment `next_seq` at its first write.
    pub(crate) fn new(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        options: WalOptions,
        next_seq: SegmentSeq,
        prev_synced_len: u64,
    ) -> Wal {
        Wal {
            fs,
            dir,
            options,
            state: Mutex::new(State {
                closed: false,
                buffer: Vec::new(),
                accepted: 0,
                processed: 0,
                synced: 0,
                failures: VecDeque::new(),
                flushing: false,
                writer: None,
                next_seq,
                prev_synced_len,
                unsynced_lost: false,
                force_rotate: false,
                stats: WalStats::default(),
            }),
            cond: Condvar::new(),
            syncer: Mutex::new(None),
            losses: AtomicU64::new(0),
        }
    }

    /// Starts the background sync thread of [`FsyncMode::Interval`].
    pub(crate) fn start_syncer(self: &Arc<Wal>) {
        let FsyncMode::Interval(every) = self.options.fsync else {
            return;
        };
        let wal = Arc::downgrade(self);
        let handle = std::thread::Builder::new()
            .name("strata-wal-sync".into())
            .spawn(move || {
                loop {
                    let Some(wal) = wal.upgrade() else { return };
                    let st = wal.lock();
                    let (st, _) = wal
                        .cond
                        .wait_timeout_while(st, every, |st| !st.closed)
                        .unwrap_or_else(|p| p.into_inner());
                    if st.closed {
                        return;
                    }
                    drop(st);
                    if let Err(e) = wal.sync() {
                        tracing::error!(error = %e, "background wal sync failed; writes acknowledged since the last sync may be lost on power failure");
                    }
                }
            })
            .expect("spawning the wal sync thread");
        *self.syncer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.cond.wait(st).unwrap_or_else(|p| p.into_inner())
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many times a failure lost acknowledged bytes that were not synced yet (only
    /// possible in [`FsyncMode::Interval`]). The head still holds those samples; until a
    /// checkpoint has written the head out again, they are not durable.
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> WalStats {
        self.lock().stats
    }

    /// Appends whole frames and returns once they are durable (per the [`FsyncMode`]). Frames
    /// given to one call are written together, in order. With `sync`, the frames are synced
    /// before returning whatever the mode (used for records that later records depend on).
    pub fn log(&self, frames: &[u8], sync: bool) -> Result<(), StorageError> {
        let mut st = self.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        st.buffer.extend_from_slice(frames);
        st.accepted += frames.len() as u64;
        let end = st.accepted;
        let sync = sync || self.options.fsync == FsyncMode::Always;
        loop {
            if st.processed >= end {
                Wal::outcome(&st, end)?;
                if !sync || st.synced >= end {
                    return Ok(());
                }
            }
            if st.flushing {
                st = self.wait(st);
            } else {
                let (guard, result) = self.flush(st, sync);
                st = guard;
                if st.processed >= end && st.synced < end {
                    // Our bytes were written by an earlier flush; this one was to sync them.
                    result?;
                }
            }
        }
    }

    fn outcome(st: &State, end: u64) -> Result<(), StorageError> {
        // Ranges are disjoint and ordered; the failure covering `end - 1`, if any, is ours.
        for (range, err) in st.failures.iter().rev() {
            if range.end < end {
                break;
            }
            if range.start < end {
                return Err(err.clone());
            }
        }
        Ok(())
    }

    /// Makes every byte written so far durable, now.
    pub fn sync(&self) -> Result<(), StorageError> {
        let mut st = self.lock();
        while st.flushing {
            st = self.wait(st);
        }
        let end = st.accepted;
        let (mut st, result) = self.flush(st, true);
        result?;
        if std::mem::take(&mut st.unsynced_lost) {
            return Err(StorageError::io(
                "sync wal segment",
                &self.dir,
                std::io::Error::other(
                    "an abandoned segment held acknowledged writes that could not be synced; they may be lost on power failure",
                ),
            ));
        }
        Wal::outcome(&st, end)
    }

    /// Closes the current segment and starts the next one; returns the new segment's number.
    /// Every record acknowledged before the call is in a segment numbered below it.
    pub fn cut_segment(&self) -> Result<SegmentSeq, StorageError> {
        let mut st = self.lock();
        while st.flushing {
            st = self.wait(st);
        }
        if st.closed {
            return Err(StorageError::Closed);
        }
        st.force_rotate = true;
        let (st, result) = self.flush(st, true);
        result?;
        st.writer
            .as_ref()
            .map(|w| w.seq)
            .ok_or(StorageError::Closed)
    }

    /// Flushes what is buffered and syncs, then refuses further writes.
    pub fn close(&self) -> Result<(), StorageError> {
        let result = self.sync();
        {
            let mut st = self.lock();
            st.closed = true;
            self.cond.notify_all();
        }
        let handle = self.syncer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // A panic in the sync thread was already reported by the panic hook.
            let _ = handle.join();
        }
        result
    }

    /// Performs one flush as the leader. Returns the guard and the flush's own result
    /// (waiters find theirs through `outcome`).
    fn flush<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        sync: bool,
    ) -> (MutexGuard<'a, State>, Result<(), StorageError>) {
        debug_assert!(!st.flushing);
        st.flushing = true;
        let batch = std::mem::take(&mut st.buffer);
        let range = st.processed..st.accepted;
        let writer = st.writer.take();
        let force_rotate = std::mem::take(&mut st.force_rotate);
        let mut progress = Progress {
            next_seq: st.next_seq,
            prev_synced_len: st.prev_synced_len,
            unsynced_lost: false,
            stats: st.stats,
        };
        drop(st);

        let (writer, result) = self.write_batch(writer, &batch, force_rotate, sync, &mut progress);

        let mut st = self.lock();
        st.writer = writer;
        st.next_seq = progress.next_seq;
        st.prev_synced_len = progress.prev_synced_len;
        st.unsynced_lost |= progress.unsynced_lost;
        if progress.unsynced_lost {
            self.losses.fetch_add(1, Ordering::SeqCst);
        }
        st.stats = progress.stats;
        st.stats.flushes += 1;
        st.processed = range.end;
        if sync && result.is_ok() {
            st.synced = range.end;
        }
        if let Err(e) = &result {
            st.stats.failed_flushes += 1;
            if !range.is_empty() {
                st.failures.push_back((range, e.clone()));
                if st.failures.len() > FAILURES_KEPT {
                    st.failures.pop_front();
                }
            }
        }
        st.flushing = false;
        self.cond.notify_all();
        (st, result)
    }

    /// Writes `batch` to the current segment (opening or rotating as needed) and syncs if
    /// asked. Runs without the state lock; only the leader calls it.
    fn write_batch(
        &self,
        mut writer: Option<SegmentWriter>,
        batch: &[u8],
        force_rotate: bool,
        sync: bool,
        p: &mut Progress,
    ) -> (Option<SegmentWriter>, Result<(), StorageError>) {
        if writer.is_none() && batch.is_empty() && !force_rotate {
            // Nothing to write and nothing open to sync: don't create an empty segment.
            return (None, Ok(()));
        }
        let too_big = writer.as_ref().is_some_and(|w| {
            w.good_len > FILE_HEADER_BYTES as u64
                && w.good_len + batch.len() as u64 > self.options.segment_bytes_max
        });
        if (force_rotate || too_big)
            && let Some(mut old) = writer.take()
        {
            // The old segment must be whole on disk before records land in a newer one, or a
            // crash could leave a hole in the middle of the log.
            if old.synced_len < old.good_len {
                if let Err(e) = old.file.sync() {
                    let err = StorageError::io("sync wal segment", &old.path, e);
                    if self.options.fsync != FsyncMode::Always {
                        p.unsynced_lost = true;
                    }
                    old.good_len = old.synced_len;
                    self.abandon(old, p);
                    return (None, Err(err));
                }
                old.synced_len = old.good_len;
                p.stats.syncs += 1;
            }
            p.prev_synced_len = old.synced_len;
        }
        let mut w = match writer {
            Some(w) => w,
            None => match self.create_segment(p.next_seq, p.prev_synced_len) {
                Ok(w) => {
                    p.next_seq = SegmentSeq(p.next_seq.0 + 1);
                    p.stats.segments_created += 1;
                    p.stats.syncs += 1;
                    w
                }
                Err(e) => return (None, Err(e)),
            },
        };
        if !batch.is_empty() {
            if let Err(e) = w.file.append(batch) {
                let err = StorageError::io("write wal segment", &w.path, e);
                self.abandon(w, p);
                return (None, Err(err));
            }
            w.good_len += batch.len() as u64;
            p.stats.bytes_written += batch.len() as u64;
        }
        if sync && w.synced_len < w.good_len {
            let started = std::time::Instant::now();
            if let Err(e) = w.file.sync() {
                let err = StorageError::io("sync wal segment", &w.path, e);
                // Bytes whose sync failed may never reach the disk: they are not good. In
                // interval mode some of them were already acknowledged.
                if self.options.fsync != FsyncMode::Always {
                    p.unsynced_lost = true;
                }
                w.good_len = w.synced_len;
                self.abandon(w, p);
                return (None, Err(err));
            }
            w.synced_len = w.good_len;
            p.stats.syncs += 1;
            let took = started.elapsed();
            let bucket = SYNC_BUCKETS_SECONDS
                .iter()
                .position(|&b| took.as_secs_f64() <= b)
                .unwrap_or(SYNC_BUCKETS_SECONDS.len());
            p.stats.sync_buckets[bucket] += 1;
            p.stats.sync_nanos_total += took.as_nanos() as u64;
        }
        (Some(w), Ok(()))
    }

    /// Creates segment `seq` with its header, durably (file and directory entry).
    /// `prev_synced_len` tells recovery how much of the previous segment is known whole.
    fn create_segment(
        &self,
        seq: SegmentSeq,
        prev_synced_len: u64,
    ) -> Result<SegmentWriter, StorageError> {
        let path = self.dir.join(segment_name(seq));
        let mut file = self
            .fs
            .create(&path)
            .map_err(|e| StorageError::io("create wal segment", &path, e))?;
        let header = encode_file_header(
            SEGMENT_MAGIC,
            FileHeader {
                seq: seq.0,
                prev_synced_len,
            },
        );
        file.append(&header)
            .and_then(|()| file.sync())
            .map_err(|e| StorageError::io("write wal segment header", &path, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| StorageError::io("sync wal directory", &self.dir, e))?;
        Ok(SegmentWriter {
            seq,
            path,
            file,
            good_len: FILE_HEADER_BYTES as u64,
            synced_len: FILE_HEADER_BYTES as u64,
        })
    }

    /// Gives up on a segment after a failure: cuts it back to its last good length and syncs
    /// it if the disk lets us, so replay finds whole frames only, and drops it. The next
    /// segment's header records how much of this one is known to be on disk; recovery treats
    /// damage beyond that as the torn remains of this failure, not as corruption.
    fn abandon(&self, mut w: SegmentWriter, p: &mut Progress) {
        p.stats.segments_abandoned += 1;
        let cut = w.file.truncate(w.good_len).and_then(|()| w.file.sync());
        if cut.is_ok() {
            w.synced_len = w.good_len;
        } else if w.good_len > w.synced_len {
            // Acknowledged in interval mode, never synced, and now unreachable.
            p.unsynced_lost = true;
        }
        p.prev_synced_len = w.synced_len;
        tracing::warn!(
            segment = %w.path.display(),
            good_len = w.good_len,
            synced_len = w.synced_len,
            cleaned = cut.is_ok(),
            "wal segment abandoned after a failed write; later records go to a new segment"
        );
    }
}

/// What a flush changes besides the writer, carried out of the lock and back.
#[derive(Debug)]
struct Progress {
    next_seq: SegmentSeq,
    prev_synced_len: u64,
    unsynced_lost: bool,
    stats: WalStats,
}
