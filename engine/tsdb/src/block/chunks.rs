//! Chunk files: where a block keeps its chunks. Format in `docs/format/block.md`.
//!
//! A block's `chunks/` directory holds numbered files (`00000001`, …), each a 24-byte file
//! header (the WAL's header layout with magic `SCHK`) followed by chunk frames
//! ([`crate::chunk`]: encoding, sample count, time range, stream, CRC) back to back. A chunk is
//! addressed by a [`ChunkRef`]: the file's number in the high 32 bits, the frame's offset in
//! the low 32. Files are written once, synced, and then only read, through a read-only map
//! ([`Fs::map`]); a reader checks every reference against the map and every frame's CRC and
//! stream, and reports damage as a corruption error naming the file and offset, never as
//! wrong data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chunk::{
    ChunkError, ChunkMeta, Encoding, Frame, Times, read_frame, read_frame_checksummed, write_frame,
};
use strata_core::codec::{FILE_HEADER_BYTES, FileHeader, decode_file_header, encode_file_header};
use strata_core::error::{StorageError, io_err};
use strata_core::fs::{Fs, Mapped, WritableFile};
use strata_wal::{SegmentSeq, segment_name};

/// Magic bytes of a chunk file.
pub const CHUNKS_MAGIC: [u8; 4] = *b"SCHK";
/// A chunk file is closed once it reaches this size; offsets must fit 32 bits.
pub const CHUNK_FILE_BYTES_MAX: u64 = 512 << 20;
const _: () = assert!(CHUNK_FILE_BYTES_MAX <= u32::MAX as u64);

/// Where a chunk is: file number (high 32 bits) and byte offset in it (low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    fn new(file: u32, offset: u32) -> ChunkRef {
        ChunkRef(u64::from(file) << 32 | u64::from(offset))
    }

    /// The chunk file's number.
    pub fn file(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The frame's byte offset in its file.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// Writes a block's chunk files, starting a new one when the current one is full. Nothing is
/// durable until [`ChunksWriter::finish`] returns.
#[derive(Debug)]
pub struct ChunksWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    current: Option<(u32, PathBuf, Box<dyn WritableFile>)>,
    next_file: u32,
    buf: Vec<u8>,
    /// An encoding-3 frame's data while it is put together.
    scratch: Vec<u8>,
    /// Bytes in the current file, written and buffered.
    len: u64,
    bytes_total: u64,
}

/// Buffered bytes at which the writer hands them to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

impl ChunksWriter {
    /// Starts writing chunk files into `dir` (created if missing).
    pub fn create(fs: Arc<dyn Fs>, dir: &Path) -> Result<ChunksWriter, StorageError> {
        fs.create_dir_all(dir)
            .map_err(io_err("create chunks directory", dir))?;
        Ok(ChunksWriter {
            fs,
            dir: dir.to_path_buf(),
            current: None,
            next_file: 1,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + (64 << 10)),
            scratch: Vec::new(),
            len: 0,
            bytes_total: 0,
        })
    }

    /// Adds one chunk and returns where it will be.
    pub fn append(
        &mut self,
        encoding: Encoding,
        meta: ChunkMeta,
        data: &[u8],
    ) -> Result<ChunkRef, StorageError> {
        let frame_len = (crate::chunk::FRAME_OVERHEAD_BYTES + data.len()) as u64;
        if self.current.is_none() || self.len + frame_len > CHUNK_FILE_BYTES_MAX {
            self.start_file()?;
        }
        let file = self.current.as_ref().expect("a file is open").0;
        let at = ChunkRef::new(file, self.len as u32);
        write_frame(&mut self.buf, encoding, meta, data);
        self.len += frame_len;
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.write_out()?;
        }
        Ok(at)
    }

    /// Adds an encoding-3 chunk: `values`, its values stream, with its timestamps in the times
    /// frame at `times` (an encoding-2 frame with the same header, added before).
    pub fn append_shared(
        &mut self,
        meta: ChunkMeta,
        times: ChunkRef,
        values: &[u8],
    ) -> Result<ChunkRef, StorageError> {
        let mut data = std::mem::take(&mut self.scratch);
        data.clear();
        data.extend_from_slice(&times.0.to_le_bytes());
        data.extend_from_slice(values);
        let at = self.append(Encoding::SharedTimes, meta, &data);
        self.scratch = data;
        at
    }

    fn start_file(&mut self) -> Result<(), StorageError> {
        self.seal_current()?;
        let seq = self.next_file;
        self.next_file += 1;
        let path = self.dir.join(segment_name(SegmentSeq(seq)));
        let file = self
            .fs
            .create(&path)
            .map_err(io_err("create chunk file", &path))?;
        self.buf.extend_from_slice(&encode_file_header(
            CHUNKS_MAGIC,
            FileHeader {
                seq,
                prev_synced_len: 0,
            },
        ));
        self.len = FILE_HEADER_BYTES as u64;
        self.current = Some((seq, path, file));
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), StorageError> {
        if let Some((_, path, file)) = &mut self.current {
            file.append(&self.buf)
                .map_err(io_err("write chunk file", path))?;
            self.bytes_total += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes out and syncs the current file.
    fn seal_current(&mut self) -> Result<(), StorageError> {
        self.write_out()?;
        if let Some((_, path, mut file)) = self.current.take() {
            file.sync().map_err(io_err("sync chunk file", &path))?;
        }
        Ok(())
    }

    /// Syncs every file and the directory. Returns the bytes written.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        self.seal_current()?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_err("sync chunks directory", &self.dir))?;
        Ok(self.bytes_total)
    }
}

/// Reads chunks from a block's sealed chunk files.
#[derive(Debug, Clone)]
pub struct ChunksReader {
    files: BTreeMap<u32, (PathBuf, Mapped)>,
}

/// `read_frame` or `read_frame_checksummed`.
type FrameReader<'a> = fn(&'a [u8]) -> Result<(Frame<'a>, usize), ChunkError>;

/// A decoded chunk read from a chunk file.
pub type ChunkRead<'a> = Frame<'a>;

impl ChunksReader {
    /// Maps every chunk file in `dir` and checks its header.
    pub fn open(fs: &dyn Fs, dir: &Path) -> Result<ChunksReader, StorageError> {
        let mut files = BTreeMap::new();
        for name in fs.list(dir).map_err(io_err("list chunks directory", dir))? {
            let Some(seq) = name
                .parse::<u32>()
                .ok()
                .filter(|_| name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let path = dir.join(&name);
            let map = fs.map(&path).map_err(io_err("map chunk file", &path))?;
            match decode_file_header(&map, CHUNKS_MAGIC) {
                Ok(h) if h.seq == seq => {}
                Ok(_) => {
                    return Err(corruption(
                        &path,
                        0,
                        "chunk file header names another number",
                    ));
                }
                Err(e) => return Err(corruption(&path, 0, e.0)),
            }
            files.insert(seq, (path, map));
        }
        Ok(ChunksReader { files })
    }

    /// The chunk at `r`, checked: its CRC, its stream, and that it decodes to what its header
    /// says; for encoding 3, the same of its times frame, and that both headers agree. Damage is
    /// a corruption error naming the file and offset.
    pub fn read(&self, r: ChunkRef) -> Result<ChunkRead<'_>, StorageError> {
        self.read_with(r, read_frame)
    }

    /// The chunk at `r` with its bounds and CRC checked but its stream not decoded (see
    /// [`crate::chunk::read_frame_checksummed`]): damage to the file is still a corruption
    /// error naming file and offset.
    pub fn read_checksummed(&self, r: ChunkRef) -> Result<ChunkRead<'_>, StorageError> {
        self.read_with(r, read_frame_checksummed)
    }

    fn read_with<'a>(
        &'a self,
        r: ChunkRef,
        read: FrameReader<'a>,
    ) -> Result<ChunkRead<'a>, StorageError> {
        let mut frame = self.read_one(r, read)?;
        if let Times::Ref(at) = frame.times {
            let times = self.read_one(ChunkRef(at), read)?;
            if times.encoding != Encoding::Xor || times.meta != frame.meta {
                let (path, _) = &self.files[&r.file()];
                return Err(corruption(
                    path,
                    u64::from(r.offset()),
                    "chunk's times frame does not hold its timestamps",
                ));
            }
            frame.times = Times::Stream(times.data);
        }
        Ok(frame)
    }

    fn read_one<'a>(
        &'a self,
        r: ChunkRef,
        read: FrameReader<'a>,
    ) -> Result<ChunkRead<'a>, StorageError> {
        let Some((path, map)) = self.files.get(&r.file()) else {
            return Err(StorageError::Corruption {
                path: PathBuf::from(format!("chunks/{}", segment_name(SegmentSeq(r.file())))),
                offset: u64::from(r.offset()),
                reason: "chunk reference names a chunk file that does not exist",
            });
        };
        let offset = r.offset() as usize;
        if offset < FILE_HEADER_BYTES || offset >= map.len() {
            return Err(corruption(
                path,
                offset as u64,
                "chunk reference points outside its file",
            ));
        }
        read(&map[offset..])
            .map(|(frame, _)| frame)
            .map_err(|e| corruption(path, offset as u64, chunk_error_reason(&e)))
    }

    /// The chunk at `r` without checking it again: for a reference [`ChunksReader::read`]
    /// already accepted. An empty stream if it does not fit (which that check rules out).
    pub fn read_checked_before(&self, r: ChunkRef) -> ChunkRead<'_> {
        let mut frame = self.read_checked_before_unresolved(r);
        if let Times::Ref(at) = frame.times {
            match self.unchecked(ChunkRef(at)) {
                Some(times) => frame.times = Times::Stream(times.data),
                None => return empty_frame(),
            }
        }
        frame
    }

    /// As [`ChunksReader::read_checked_before`], but an encoding-3 chunk's times frame is left
    /// a [`Times::Ref`], for a reader that keeps decoded timestamps by that reference; it
    /// reads the frame with [`ChunksReader::times_checked_before`].
    pub fn read_checked_before_unresolved(&self, r: ChunkRef) -> ChunkRead<'_> {
        self.unchecked(r).unwrap_or_else(empty_frame)
    }

    /// The timestamps stream of the times frame at `at` (a [`Times::Ref`] of a chunk that
    /// [`ChunksReader::read`] accepted); empty if it does not fit.
    pub fn times_checked_before(&self, at: u64) -> &[u8] {
        self.unchecked(ChunkRef(at)).map_or(&[], |f| f.data)
    }

    fn unchecked(&self, r: ChunkRef) -> Option<ChunkRead<'_>> {
        self.files
            .get(&r.file())
            .and_then(|(_, map)| map.get(r.offset() as usize..))
            .and_then(crate::chunk::frame_unchecked)
    }

    /// Total bytes of the mapped files.
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|(_, m)| m.len() as u64).sum()
    }
}

fn empty_frame<'a>() -> ChunkRead<'a> {
    Frame {
        encoding: Encoding::Xor,
        meta: ChunkMeta {
            min_t: 0,
            max_t: 0,
            num_samples: 0,
        },
        data: &[],
        times: Times::Own,
    }
}

fn corruption(path: &Path, offset: u64, reason: &'static str) -> StorageError {
    StorageError::Corruption {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

fn chunk_error_reason(e: &ChunkError) -> &'static str {
    match e {
        ChunkError::Truncated { .. } => "chunk frame runs past the end of its file",
        ChunkError::ChecksumMismatch { .. } => "chunk checksum mismatch",
        ChunkError::UnknownEncoding(_) => "unknown chunk encoding",
        ChunkError::DataTooLarge { .. } => "chunk data length beyond the maximum",
        ChunkError::CorruptStream { .. } => "chunk stream does not decode",
        ChunkError::HeaderMismatch { .. } => "chunk stream disagrees with its header",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::xor::XorEncoder;
    use strata_core::fs::sim::SimFs;

    fn chunk(series: u64, n: u16) -> (ChunkMeta, Vec<u8>, Vec<(i64, u64)>) {
        let mut enc = XorEncoder::new();
        let mut samples = Vec::new();
        for i in 0..i64::from(n) {
            let t = 1_700_000_000_000 + i * 15_000;
            let v = (series as f64) * 1000.0 + i as f64 * 0.25;
            enc.append(t, v);
            samples.push((t, v.to_bits()));
        }
        (enc.meta(), enc.into_data(), samples)
    }

    fn write(fs: &SimFs, chunks: usize) -> (Vec<ChunkRef>, Vec<Vec<(i64, u64)>>) {
        let mut w = ChunksWriter::create(Arc::new(fs.clone()), Path::new("/b/chunks")).unwrap();
        let mut refs = Vec::new();
        let mut expected = Vec::new();
        for s in 0..chunks {
            let (meta, data, samples) = chunk(s as u64, 120);
            refs.push(w.append(Encoding::Xor, meta, &data).unwrap());
            expected.push(samples);
        }
        w.finish().unwrap();
        (refs, expected)
    }

    fn decoded(frame: &ChunkRead<'_>) -> Vec<(i64, u64)> {
        frame.samples().map(|(t, v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn chunks_round_trip() {
        let fs = SimFs::new(0);
        let (refs, expected) = write(&fs, 50);
        let r = ChunksReader::open(&fs, Path::new("/b/chunks")).unwrap();
        for (at, want) in refs.iter().zip(&expected) {
            assert_eq!(&decoded(&r.read(*at).unwrap()), want);
        }
    }

    #[test]
    fn every_bit_flip_in_a_chunk_is_a_corruption_error_naming_file_and_offset() {
        let fs = SimFs::new(0);
        let (refs, expected) = write(&fs, 3);
        let path = Path::new("/b/chunks/00000001");
        let original = fs.read(path).unwrap();
        let target = refs[1];
        let end = refs[2].offset() as usize;
        for bit in (target.offset() as usize * 8)..(end * 8) {
            let mut bytes = original.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            fs.set_content(path, &bytes).unwrap();
            let r = ChunksReader::open(&fs, Path::new("/b/chunks")).unwrap();
            // The full check and the query path's CRC-only check both catch it.
            for result in [r.read(target), r.read_checksummed(target)] {
                match result {
                    Err(StorageError::Corruption {
                        path: p, offset, ..
                    }) => {
                        assert_eq!(p, path);
                        assert_eq!(offset, u64::from(target.offset()));
                    }
                    Err(e) => panic!("bit {bit}: wrong error {e}"),
                    Ok(frame) => {
                        panic!("bit {bit}: damage went undetected: {:?}", decoded(&frame))
                    }
                }
            }
            // The neighbours are untouched.
            assert_eq!(decoded(&r.read(refs[0]).unwrap()), expected[0]);
            assert_eq!(decoded(&r.read(refs[2]).unwrap()), expected[2]);
        }
    }

    /// Two encoding-3 chunks over one times frame, and a third whose reference names a frame
    /// of other timestamps.
    #[test]
    fn shared_times_chunks_read_their_times_frame_and_a_wrong_one_is_corruption() {
        use crate::chunk::shared::SplitEncoder;
        let fs = SimFs::new(0);
        let mut w = ChunksWriter::create(Arc::new(fs.clone()), Path::new("/b/chunks")).unwrap();
        let times: Vec<i64> = (0..200).map(|i| 1_000 + i * 15_000 + i % 4).collect();
        let split = |series: f64| {
            let mut enc = SplitEncoder::new();
            for (i, &t) in times.iter().enumerate() {
                enc.append(t, series + i as f64 / 8.0);
            }
            enc
        };
        let (a, b) = (split(1.0), split(2.0));
        let meta = a.times.meta();
        let times_at = w.append(Encoding::Xor, meta, a.times.data()).unwrap();
        let ra = w.append_shared(meta, times_at, a.values.data()).unwrap();
        let rb = w.append_shared(meta, times_at, b.values.data()).unwrap();
        let (other_meta, other_data, _) = chunk(9, 200);
        let other_at = w.append(Encoding::Xor, other_meta, &other_data).unwrap();
        let wrong = w.append_shared(meta, other_at, a.values.data()).unwrap();
        let dangling = w
            .append_shared(meta, ChunkRef::new(7, 24), a.values.data())
            .unwrap();
        w.finish().unwrap();

        let r = ChunksReader::open(&fs, Path::new("/b/chunks")).unwrap();
        for (at, series) in [(ra, 1.0), (rb, 2.0)] {
            let want: Vec<(i64, u64)> = times
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, (series + i as f64 / 8.0).to_bits()))
                .collect();
            assert_eq!(decoded(&r.read(at).unwrap()), want);
            assert_eq!(decoded(&r.read_checksummed(at).unwrap()), want);
            assert_eq!(decoded(&r.read_checked_before(at)), want);
            assert_eq!(r.read(at).unwrap().encoding, Encoding::SharedTimes);
        }
        for bad in [wrong, dangling] {
            for result in [r.read(bad), r.read_checksummed(bad)] {
                assert!(
                    matches!(result, Err(StorageError::Corruption { .. })),
                    "{bad:?} accepted"
                );
            }
        }
    }

    #[test]
    fn bad_references_and_headers_are_errors() {
        let fs = SimFs::new(0);
        let (refs, _) = write(&fs, 2);
        let r = ChunksReader::open(&fs, Path::new("/b/chunks")).unwrap();
        for bad in [
            ChunkRef::new(2, 24),
            ChunkRef::new(1, 0),
            ChunkRef::new(1, u32::MAX),
            ChunkRef::new(1, refs[1].offset() + 1),
        ] {
            assert!(
                matches!(r.read(bad), Err(StorageError::Corruption { .. })),
                "{bad:?}"
            );
        }
        let path = Path::new("/b/chunks/00000001");
        let mut bytes = fs.read(path).unwrap();
        bytes[2] ^= 1;
        fs.set_content(path, &bytes).unwrap();
        assert!(matches!(
            ChunksReader::open(&fs, Path::new("/b/chunks")),
            Err(StorageError::Corruption { offset: 0, .. })
        ));
    }

    #[test]
    fn a_new_file_starts_when_the_current_one_is_full() {
        // Many large chunks would take a while; check the reference arithmetic instead.
        let r = ChunkRef::new(7, 123_456);
        assert_eq!((r.file(), r.offset()), (7, 123_456));
        assert!(CHUNK_FILE_BYTES_MAX < u64::from(u32::MAX));
    }
}
