//! Opening the log: replaying the checkpoint and the segments after it, cutting a torn tail,
//! quarantining damage, and handing back a writer positioned after everything that exists.
//!
//! What recovery may do to files, and nothing more:
//! * a torn tail in the **last** segment (damage that runs to its end, with no whole frame
//!   after it) is cut off: it is the normal trace of a crash during a write;
//! * any other damage is **quarantined**: the file is moved, untouched, into `quarantine/`,
//!   and a clean copy holding every whole frame (the records before *and after* the damage) is
//!   put in its place; the report names both and where the damage was;
//! * leftovers of interrupted work are finished or removed: `*.tmp` (an unpublished
//!   checkpoint), `*.repair` (an unfinished quarantine), segments older than a valid
//!   checkpoint, and empty segments that hold no record.
//!
//! Every move is made durable before the next step, so a crash during recovery leaves files
//! that the next recovery handles the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::codec::{
    DecodeError, FILE_HEADER_BYTES, FileHeader, PREV_WHOLE, decode_file_header, encode_file_header,
};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::Fs;

use crate::checkpoint::checkpoint_name;
use crate::frame::{
    CHECKPOINT_MAGIC, RecordType, SEGMENT_MAGIC, decode_checkpoint_end, encode_checkpoint_end,
    encode_frame,
};
use crate::reader::{Damage, Scan, scan};
use crate::writer::{SegmentSeq, Wal, WalOptions, segment_name};

/// Where a replayed record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The checkpoint, which may hold records a segment never does (encoded chunks, say).
    Checkpoint,
    /// A segment after the checkpoint.
    Segment,
}

/// Receives the records of the log, in order, while it is replayed: the store that owns the
/// log decodes each payload and applies it.
pub trait ReplayHandler {
    /// One record of type `ty` (never [`RecordType::CHECKPOINT_END`], which the log reads
    /// itself). An error (a type the store does not know, a payload that does not decode, a
    /// record that cannot come from `source`) marks the record as damaged.
    fn on_record(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        source: Source,
    ) -> Result<(), DecodeError>;
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the whole frames ended.
    pub offset: u64,
    /// Bytes cut off.
    pub bytes: u64,
}

/// A damaged file that recovery moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the file was.
    pub path: PathBuf,
    /// Where the untouched original is now.
    pub moved_to: PathBuf,
    /// The damaged stretches.
    pub damage: Vec<Damage>,
    /// Whole records recovered from it (from before and after the damage).
    pub records_recovered: u64,
}

/// What replaying the log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The checkpoint loaded, if any.
    pub checkpoint: Option<SegmentSeq>,
    /// Segments replayed.
    pub segments: u32,
    /// Records replayed (checkpoint and segments).
    pub records: u64,
    /// Of those, records replayed from segments (after the checkpoint).
    pub segment_records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Torn tails cut off: the last segment's (a crash during a write), and those of segments
    /// abandoned after a failed write (beyond the length the next segment's header vouches for).
    pub torn_tails: Vec<TornTail>,
    /// Files with damage, moved to `quarantine/`.
    pub quarantined: Vec<Quarantined>,
    /// Segment numbers missing between the first and last segment.
    pub missing_segments: Vec<SegmentSeq>,
    /// Leftover files removed or finished (temporary files, covered segments).
    pub cleaned_up: Vec<PathBuf>,
}

impl ReplayReport {
    /// Whether recovery found damage that may have lost acknowledged data.
    pub fn has_damage(&self) -> bool {
        !self.quarantined.is_empty() || !self.missing_segments.is_empty()
    }
}

/// The directory (below the log's) that damaged files are moved to.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Opens (creating if needed) the log in `dir`, replays it into `handler`, and returns a writer
/// that continues after it.
pub fn open(
    fs: Arc<dyn Fs>,
    dir: &Path,
    options: WalOptions,
    handler: &mut dyn ReplayHandler,
) -> Result<(Arc<Wal>, ReplayReport), StorageError> {
    let mut report = ReplayReport::default();
    fs.create_dir_all(dir)
        .map_err(io_err("create wal directory", dir))?;
    if let Some(parent) = dir.parent() {
        fs.sync_dir(parent)
            .map_err(io_err("sync data directory", parent))?;
    }
    let mut names = fs.list(dir).map_err(io_err("list wal directory", dir))?;
    finish_leftovers(fs.as_ref(), dir, &mut names, &mut report)?;

    let mut segments: Vec<SegmentSeq> = names.iter().filter_map(|n| parse_segment(n)).collect();
    segments.sort();
    let mut checkpoints: Vec<SegmentSeq> =
        names.iter().filter_map(|n| parse_checkpoint(n)).collect();
    checkpoints.sort();

    // The newest checkpoint stands for every segment below its number.
    let mut first_needed = SegmentSeq(0);
    if let Some(&newest) = checkpoints.last() {
        let intact = replay_checkpoint(fs.as_ref(), dir, newest, handler, &mut report)?;
        report.checkpoint = Some(newest);
        if intact {
            first_needed = newest;
        }
        for &old in &checkpoints[..checkpoints.len() - 1] {
            remove(fs.as_ref(), &dir.join(checkpoint_name(old)), &mut report)?;
        }
    }
    let (covered, needed): (Vec<SegmentSeq>, Vec<SegmentSeq>) =
        segments.iter().partition(|s| **s < first_needed);
    for seq in covered {
        remove(fs.as_ref(), &dir.join(segment_name(seq)), &mut report)?;
    }
    for pair in needed.windows(2) {
        for missing in pair[0].0 + 1..pair[1].0 {
            report.missing_segments.push(SegmentSeq(missing));
        }
    }
    if !report.missing_segments.is_empty() {
        tracing::error!(missing = ?report.missing_segments, "wal segments are missing; data written to them is lost");
    }
    // A crash while a segment was being started can leave it without a whole header and
    // without any record: it holds nothing, so it is removed (and its number used again), and
    // the segment before it is the last one.
    let mut needed = needed;
    while let Some(&seq) = needed.last() {
        let path = dir.join(segment_name(seq));
        let bytes = fs.read(&path).map_err(io_err("read wal segment", &path))?;
        let unstarted = decode_file_header(&bytes, SEGMENT_MAGIC).is_err()
            && scan(&bytes, FILE_HEADER_BYTES.min(bytes.len()), |_, _, _| Ok(()))
                .frames
                .is_empty();
        if !unstarted {
            break;
        }
        if !bytes.is_empty() {
            report.torn_tails.push(TornTail {
                path: path.clone(),
                offset: 0,
                bytes: bytes.len() as u64,
            });
        }
        remove(fs.as_ref(), &path, &mut report)?;
        needed.pop();
    }

    // Each segment is read with the next one in hand: the next one's header says how much of
    // it is known to be on disk.
    let mut last_kept: Option<(SegmentSeq, u64)> = None;
    let mut next_bytes = match needed.first() {
        Some(&seq) => Some(read_segment(fs.as_ref(), dir, seq, &mut report)?),
        None => None,
    };
    for (i, &seq) in needed.iter().enumerate() {
        let bytes = next_bytes.take().expect("read ahead");
        let next = needed.get(i + 1).copied();
        if let Some(n) = next {
            next_bytes = Some(read_segment(fs.as_ref(), dir, n, &mut report)?);
        }
        let known_synced = match (next, &next_bytes) {
            (None, _) => None,
            (Some(n), Some(nb)) if n.0 == seq.0 + 1 => Some(
                decode_file_header(nb, SEGMENT_MAGIC).map_or(PREV_WHOLE, |h| h.prev_synced_len),
            ),
            _ => Some(PREV_WHOLE),
        };
        let ctx = SegmentCtx {
            fs: fs.as_ref(),
            dir,
            seq,
            known_synced,
        };
        if let Some(len) = replay_segment(&ctx, &bytes, handler, &mut report)? {
            last_kept = Some((seq, len));
        }
    }
    if !report.cleaned_up.is_empty() {
        fs.sync_dir(dir)
            .map_err(io_err("sync wal directory", dir))?;
    }

    let after_segments = last_kept.map_or(0, |(s, _)| s.0 + 1);
    let after_checkpoint = report.checkpoint.map_or(0, |c| c.0);
    let next_seq = SegmentSeq(after_segments.max(after_checkpoint).max(1));
    let prev_synced_len = match last_kept {
        Some((seq, len)) if seq.0 + 1 == next_seq.0 => len,
        _ => PREV_WHOLE,
    };
    let wal = Arc::new(Wal::new(
        fs,
        dir.to_path_buf(),
        options,
        next_seq,
        prev_synced_len,
    ));
    wal.start_syncer();
    Ok((wal, report))
}

fn parse_segment(name: &str) -> Option<SegmentSeq> {
    if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok().map(SegmentSeq)
    } else {
        None
    }
}

fn parse_checkpoint(name: &str) -> Option<SegmentSeq> {
    parse_segment(name.strip_prefix("checkpoint.")?)
}

fn remove(fs: &dyn Fs, path: &Path, report: &mut ReplayReport) -> Result<(), StorageError> {
    fs.remove_file(path)
        .map_err(io_err("remove wal leftover", path))?;
    report.cleaned_up.push(path.to_path_buf());
    Ok(())
}

/// Finishes or removes what interrupted work left behind, and drops those names from `names`.
fn finish_leftovers(
    fs: &dyn Fs,
    dir: &Path,
    names: &mut Vec<String>,
    report: &mut ReplayReport,
) -> Result<(), StorageError> {
    let mut changed = false;
    for name in names.clone() {
        if name.ends_with(".tmp") {
            // A checkpoint that was never published: the segments it summarised still exist.
            remove(fs, &dir.join(&name), report)?;
            changed = true;
        } else if let Some(original) = name.strip_suffix(".repair") {
            let repair = dir.join(&name);
            let target = dir.join(original);
            if names.iter().any(|n| n == original) {
                // The original was not moved yet: the quarantine will simply be redone.
                remove(fs, &repair, report)?;
            } else {
                // The original is safe in quarantine/ and the clean copy was complete (it is
                // synced before the original is moved): finish the swap.
                fs.rename(&repair, &target)
                    .map_err(io_err("finish wal repair", &repair))?;
                report.cleaned_up.push(repair);
                names.push(original.to_string());
            }
            changed = true;
        }
    }
    names.retain(|n| !n.ends_with(".tmp") && !n.ends_with(".repair"));
    if changed {
        fs.sync_dir(dir)
            .map_err(io_err("sync wal directory", dir))?;
    }
    Ok(())
}

/// Replays checkpoint `seq`. Returns whether it was intact (if not, it was quarantined and
/// the segments it should have replaced must be replayed too).
fn replay_checkpoint(
    fs: &dyn Fs,
    dir: &Path,
    seq: SegmentSeq,
    handler: &mut dyn ReplayHandler,
    report: &mut ReplayReport,
) -> Result<bool, StorageError> {
    let name = checkpoint_name(seq);
    let path = dir.join(&name);
    let bytes = fs
        .read(&path)
        .map_err(io_err("read wal checkpoint", &path))?;
    report.bytes += bytes.len() as u64;
    let mut header_damage = header_damage(&bytes, CHECKPOINT_MAGIC, seq);
    let mut end_count = None;
    let mut records = 0u64;
    let mut scan = scan(
        &bytes,
        FILE_HEADER_BYTES.min(bytes.len()),
        |ty, payload, _| {
            if end_count.is_some() {
                return Err(DecodeError("record after the checkpoint's end record"));
            }
            if ty == RecordType::CHECKPOINT_END {
                end_count = Some(decode_checkpoint_end(payload)?);
                return Ok(());
            }
            handler.on_record(ty, payload, Source::Checkpoint)?;
            records += 1;
            Ok(())
        },
    );
    report.records += records;
    if end_count != Some(records) {
        scan.damage.push(Damage {
            offset: bytes.len() as u64,
            reason: "checkpoint end record missing or its count is wrong",
            resumed_at: None,
        });
    }
    scan.damage.splice(0..0, header_damage.take());
    if scan.damage.is_empty() {
        return Ok(true);
    }
    // Keep the good records under the checkpoint's name, with a fresh end record, so the data
    // recovered from it is not lost when the segments it covered are removed later.
    let frames: Vec<_> = scan
        .frames
        .iter()
        .filter(|r| bytes.get(r.start + 8) != Some(&RecordType::CHECKPOINT_END.0))
        .cloned()
        .collect();
    let mut tail = Vec::new();
    encode_checkpoint_end(&mut tail, frames.len() as u64);
    let mut end_frame = Vec::new();
    encode_frame(&mut end_frame, RecordType::CHECKPOINT_END, &tail);
    let header = encode_file_header(
        CHECKPOINT_MAGIC,
        FileHeader {
            seq: seq.0,
            prev_synced_len: 0,
        },
    );
    let moved_to = quarantine(fs, dir, &name, &bytes, &header, &frames, &end_frame)?;
    tracing::error!(checkpoint = %path.display(), moved_to = %moved_to.display(), damage = ?scan.damage, "wal checkpoint damaged: moved to quarantine, good records kept");
    report.quarantined.push(Quarantined {
        path,
        moved_to,
        damage: scan.damage,
        records_recovered: records,
    });
    Ok(false)
}

fn header_damage(bytes: &[u8], magic: [u8; 4], seq: SegmentSeq) -> Option<Damage> {
    let reason = match decode_file_header(bytes, magic) {
        Ok(h) if h.seq == seq.0 => return None,
        Ok(_) => "file header names another sequence number",
        Err(e) => e.0,
    };
    Some(Damage {
        offset: 0,
        reason,
        resumed_at: Some(FILE_HEADER_BYTES.min(bytes.len()) as u64),
    })
}

fn read_segment(
    fs: &dyn Fs,
    dir: &Path,
    seq: SegmentSeq,
    report: &mut ReplayReport,
) -> Result<Vec<u8>, StorageError> {
    let path = dir.join(segment_name(seq));
    let bytes = fs.read(&path).map_err(io_err("read wal segment", &path))?;
    report.bytes += bytes.len() as u64;
    Ok(bytes)
}

/// Where a segment is and what its successor says about it.
struct SegmentCtx<'a> {
    fs: &'a dyn Fs,
    dir: &'a Path,
    seq: SegmentSeq,
    /// `None` for the last segment; otherwise how many bytes of it the next segment's header
    /// vouches were synced ([`PREV_WHOLE`] when all of them).
    known_synced: Option<u64>,
}

/// Replays one segment and repairs it. Returns its length as kept on disk (synced), or `None`
/// if it was removed.
fn replay_segment(
    ctx: &SegmentCtx<'_>,
    bytes: &[u8],
    handler: &mut dyn ReplayHandler,
    report: &mut ReplayReport,
) -> Result<Option<u64>, StorageError> {
    let (fs, dir, seq) = (ctx.fs, ctx.dir, ctx.seq);
    let name = segment_name(seq);
    let path = dir.join(&name);
    report.segments += 1;

    if bytes.len() < FILE_HEADER_BYTES {
        if ctx.known_synced.is_none() {
            // The last segment, created but never written past its header: a crash while it
            // was being started. It holds no record; removing it loses nothing, and its number
            // is used again.
            if !bytes.is_empty() {
                report.torn_tails.push(TornTail {
                    path: path.clone(),
                    offset: 0,
                    bytes: bytes.len() as u64,
                });
            }
            remove(fs, &path, report)?;
            return Ok(None);
        }
        if bytes.is_empty() {
            return Ok(Some(0));
        }
    }

    let header = decode_file_header(bytes, SEGMENT_MAGIC);
    let header_damage = header_damage(bytes, SEGMENT_MAGIC, seq);
    let mut records = 0u64;
    let mut scan: Scan = scan(
        bytes,
        FILE_HEADER_BYTES.min(bytes.len()),
        |ty, payload, _| {
            if ty == RecordType::CHECKPOINT_END {
                return Err(DecodeError("checkpoint record in a segment"));
            }
            handler.on_record(ty, payload, Source::Segment)?;
            records += 1;
            Ok(())
        },
    );
    report.records += records;
    report.segment_records += records;

    if header_damage.is_none() && scan.damage.is_empty() {
        if ctx.known_synced.is_none() {
            // What a killed process left in the page cache may not be on disk yet; the next
            // segment's header will vouch for all of it.
            sync_file(fs, &path)?;
        }
        return Ok(Some(bytes.len() as u64));
    }
    // A torn tail: damage from which nothing whole follows in the last segment, or damage
    // past the synced length the next segment vouches for (a segment abandoned after a
    // failed write whose remains could not be cut). Whole frames before it are kept.
    let torn_at = scan.damage.first().filter(|first| {
        header.is_ok()
            && match ctx.known_synced {
                None => scan.damage.len() == 1 && first.resumed_at.is_none(),
                Some(synced) => synced != PREV_WHOLE && first.offset >= synced,
            }
    });
    if let Some(first) = torn_at {
        let cut = first.offset;
        let mut file = fs
            .open_append(&path)
            .map_err(io_err("open wal segment", &path))?;
        file.truncate(cut)
            .and_then(|()| file.sync())
            .map_err(io_err("truncate torn wal tail", &path))?;
        let tail = TornTail {
            path,
            offset: cut,
            bytes: bytes.len() as u64 - cut,
        };
        tracing::info!(segment = %tail.path.display(), offset = tail.offset, bytes = tail.bytes, "cut the torn tail of a wal segment (an interrupted or failed write)");
        report.torn_tails.push(tail);
        return Ok(Some(cut));
    }
    scan.damage.splice(0..0, header_damage);
    let prev_synced_len = header.map_or(PREV_WHOLE, |h| h.prev_synced_len);
    let clean_header = encode_file_header(
        SEGMENT_MAGIC,
        FileHeader {
            seq: seq.0,
            prev_synced_len,
        },
    );
    let kept: u64 =
        FILE_HEADER_BYTES as u64 + scan.frames.iter().map(|r| r.len() as u64).sum::<u64>();
    let moved_to = quarantine(fs, dir, &name, bytes, &clean_header, &scan.frames, &[])?;
    tracing::error!(segment = %path.display(), moved_to = %moved_to.display(), damage = ?scan.damage, "wal segment damaged: moved to quarantine, good records kept");
    report.quarantined.push(Quarantined {
        path,
        moved_to,
        damage: scan.damage,
        records_recovered: records,
    });
    Ok(Some(kept))
}

fn sync_file(fs: &dyn Fs, path: &Path) -> Result<(), StorageError> {
    fs.open_append(path)
        .and_then(|mut f| f.sync())
        .map_err(io_err("sync wal segment", path))
}

/// Moves `dir/name` into the quarantine directory untouched and puts a clean copy made of
/// `header`, the good `frames` of `bytes` and `trailer` in its place. Returns where the
/// original went.
fn quarantine(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    bytes: &[u8],
    header: &[u8],
    frames: &[std::ops::Range<usize>],
    trailer: &[u8],
) -> Result<PathBuf, StorageError> {
    let qdir = dir.join(QUARANTINE_DIR);
    fs.create_dir_all(&qdir)
        .map_err(io_err("create quarantine directory", &qdir))?;
    fs.sync_dir(dir)
        .map_err(io_err("sync wal directory", dir))?;

    let repair = dir.join(format!("{name}.repair"));
    let mut clean = Vec::with_capacity(bytes.len());
    clean.extend_from_slice(header);
    for r in frames {
        clean.extend_from_slice(&bytes[r.clone()]);
    }
    clean.extend_from_slice(trailer);
    let mut file = fs
        .create(&repair)
        .map_err(io_err("create wal repair file", &repair))?;
    file.append(&clean)
        .and_then(|()| file.sync())
        .map_err(io_err("write wal repair file", &repair))?;
    drop(file);

    let taken = fs
        .list(&qdir)
        .map_err(io_err("list quarantine directory", &qdir))?;
    let moved_to = (1u32..)
        .map(|k| format!("{name}.{k}"))
        .find(|n| !taken.contains(n))
        .map(|n| qdir.join(n))
        .expect("an unused quarantine name exists");
    let original = dir.join(name);
    // The original must be durably in quarantine/ before the clean copy replaces its name.
    fs.rename(&original, &moved_to)
        .map_err(io_err("move damaged wal file to quarantine", &original))?;
    fs.sync_dir(&qdir)
        .map_err(io_err("sync quarantine directory", &qdir))?;
    fs.sync_dir(dir)
        .map_err(io_err("sync wal directory", dir))?;
    fs.rename(&repair, &original)
        .map_err(io_err("put repaired wal file in place", &repair))?;
    fs.sync_dir(dir)
        .map_err(io_err("sync wal directory", dir))?;
    Ok(moved_to)
}
