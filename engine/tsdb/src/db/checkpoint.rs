//! Checkpoints: the head written out as one compact file of series and chunks, so the WAL
//! segments it stands for can go. A background request follows WAL growth; the cut waits for
//! commits in flight behind the gate (see the module docs of `db`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_core::error::StorageError;
use strata_wal::checkpoint::{CheckpointWriter, remove_covered};

use super::Inner;
use super::report::CheckpointStats;
use crate::head::series::SeriesArc;
use crate::head::wal::encode_series_record;
use crate::record::{self, ChunkEntry, encode_chunk, finish_chunks};

impl Inner {
    /// Whether the WAL lost acknowledged samples that the head still holds.
    pub(super) fn wal_behind_head(&self) -> bool {
        self.wal.losses() != self.losses_checkpointed.load(Ordering::SeqCst)
    }

    pub(super) fn maybe_request_checkpoint(&self) {
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

    pub(super) fn checkpoint(&self) -> Result<CheckpointStats, StorageError> {
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

    pub(super) fn write_checkpoint(
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
