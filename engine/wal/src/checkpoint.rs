//! Checkpoints: a compact file that stands for every WAL segment below a number, so the log
//! does not grow without bound and replay reads encoded chunks instead of raw samples.
//!
//! A checkpoint is written to `checkpoint.NNNNNNNN.tmp`, synced, renamed to
//! `checkpoint.NNNNNNNN` and its directory synced: only then does it exist. Only after that are
//! the segments below `NNNNNNNN` and older checkpoints removed. A crash at any point leaves
//! either the old state (a `.tmp` that recovery removes) or the new one (leftover covered
//! segments that recovery removes). It uses the segment framing with its own magic bytes, and
//! ends with a `CheckpointEnd` record counting the records before it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::codec::{FileHeader, encode_file_header};
use strata_core::error::StorageError;
use strata_core::fs::{Fs, WritableFile};

use crate::frame::{CHECKPOINT_MAGIC, RecordType, encode_checkpoint_end, encode_frame};
use crate::writer::{SegmentSeq, segment_name};

/// The file name of the checkpoint standing for the segments below `seq`.
pub fn checkpoint_name(seq: SegmentSeq) -> String {
    format!("checkpoint.{}", segment_name(seq))
}

/// Buffered bytes at which the writer hands them to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Writes one checkpoint. Nothing is visible until [`CheckpointWriter::finish`] returns.
#[derive(Debug)]
pub struct CheckpointWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    seq: SegmentSeq,
    tmp: PathBuf,
    file: Box<dyn WritableFile>,
    buf: Vec<u8>,
    records: u64,
    bytes: u64,
}

impl CheckpointWriter {
    /// Starts checkpoint `seq` in the log directory `dir`.
    pub fn create(
        fs: Arc<dyn Fs>,
        dir: &Path,
        seq: SegmentSeq,
    ) -> Result<CheckpointWriter, StorageError> {
        let tmp = dir.join(format!("{}.tmp", checkpoint_name(seq)));
        let file = fs
            .create(&tmp)
            .map_err(|e| StorageError::io("create wal checkpoint", &tmp, e))?;
        let mut buf = Vec::with_capacity(WRITE_BUFFER_BYTES + (64 << 10));
        buf.extend_from_slice(&encode_file_header(
            CHECKPOINT_MAGIC,
            FileHeader {
                seq: seq.0,
                prev_synced_len: 0,
            },
        ));
        Ok(CheckpointWriter {
            fs,
            dir: dir.to_path_buf(),
            seq,
            tmp,
            file,
            buf,
            records: 0,
            bytes: 0,
        })
    }

    /// Adds one record.
    pub fn add(&mut self, ty: RecordType, payload: &[u8]) -> Result<(), StorageError> {
        debug_assert!(ty != RecordType::CHECKPOINT_END);
        encode_frame(&mut self.buf, ty, payload);
        self.records += 1;
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), StorageError> {
        self.file
            .append(&self.buf)
            .map_err(|e| StorageError::io("write wal checkpoint", &self.tmp, e))?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the end record, makes the checkpoint durable and publishes it. Returns its size
    /// in bytes. On error the temporary file is left for recovery to remove.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        let mut end = Vec::new();
        encode_checkpoint_end(&mut end, self.records);
        encode_frame(&mut self.buf, RecordType::CHECKPOINT_END, &end);
        self.write_out()?;
        self.file
            .sync()
            .map_err(|e| StorageError::io("sync wal checkpoint", &self.tmp, e))?;
        let path = self.dir.join(checkpoint_name(self.seq));
        self.fs
            .rename(&self.tmp, &path)
            .map_err(|e| StorageError::io("publish wal checkpoint", &self.tmp, e))?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| StorageError::io("sync wal directory", &self.dir, e))?;
        Ok(self.bytes)
    }

    /// Removes the unfinished checkpoint (after an error while writing it).
    pub fn abort(self) {
        if let Err(e) = self.fs.remove_file(&self.tmp) {
            tracing::warn!(path = %self.tmp.display(), error = %e, "could not remove an unfinished checkpoint; the next open removes it");
        }
    }
}

/// Removes the segments below `seq` and every checkpoint other than `seq`'s, now that
/// checkpoint `seq` is durable. Returns the number of files removed.
pub fn remove_covered(fs: &dyn Fs, dir: &Path, seq: SegmentSeq) -> Result<usize, StorageError> {
    let names = fs
        .list(dir)
        .map_err(|e| StorageError::io("list wal directory", dir, e))?;
    let keep = checkpoint_name(seq);
    let mut removed = 0;
    for name in names {
        let covered_segment = name.len() == 8
            && name.bytes().all(|b| b.is_ascii_digit())
            && name.as_str() < segment_name(seq).as_str();
        let old_checkpoint =
            name.starts_with("checkpoint.") && !name.ends_with(".tmp") && name != keep;
        if covered_segment || old_checkpoint {
            let path = dir.join(&name);
            fs.remove_file(&path)
                .map_err(|e| StorageError::io("remove covered wal file", &path, e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fs.sync_dir(dir)
            .map_err(|e| StorageError::io("sync wal directory", dir, e))?;
    }
    Ok(removed)
}
