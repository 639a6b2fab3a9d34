//! WAL framing and record payloads. Layout in `docs/format/wal.md`.
//!
//! A segment or checkpoint file is a 24-byte file header followed by framed records:
//!
//! ```text
//! file header (24 bytes)
//! +-----------+---------+-------------+-----------+------------------------+---------------------+
//! | magic [4] | version | reserved[3] | seq u32LE | prev_synced_len u64LE  | crc32 of bytes 0..20 |
//! +-----------+---------+-------------+-----------+------------------------+---------------------+
//!   prev_synced_len: how many bytes of the previous segment were synced when this one was
//!   started (u64::MAX: unknown, treat the previous segment as whole; 0 in checkpoints).
//! record frame (9 + len bytes)
//! +-------------+-----------+---------+----------------+
//! | crc32 u32LE | len u32LE | type u8 | payload [len]  |
//! +-------------+-----------+---------+----------------+
//!   crc32 (crc32fast, IEEE) covers len, type and payload: every byte after itself.
//! ```
//!
//! Payloads use LEB128 varints (`uvarint`), zigzag for signed deltas (`svarint`), and raw
//! little-endian `u64` for float bits. The three payload kinds:
//!
//! * `Series` (1): `uvarint count`, then per series `uvarint ref`, `uvarint nlabels`, and per
//!   label `uvarint len, name bytes, uvarint len, value bytes`.
//! * `Samples` (2): `uvarint count`, then per sample `svarint ref delta`, `svarint t delta`
//!   (both against the previous sample, the first against 0), `u64 value bits`.
//! * `Chunks` (3, checkpoints only): `uvarint count`, then per chunk `uvarint ref`, `u8 kind`,
//!   `u8 encoding` (the chunk codec's id, as in a chunk frame),
//!   `uvarint num_samples`, `svarint min_t`, `svarint max_t`, `uvarint len`, `data [len]`.
//! * `CheckpointEnd` (4, checkpoints only): `uvarint records` — the number of records before
//!   it, so a checkpoint that lost its tail is recognised as incomplete.

use std::fmt;

use crate::sample::SeriesRef;

/// Bytes in a file header.
pub const FILE_HEADER_BYTES: usize = 24;
/// Bytes in a record frame's header (crc, len, type).
pub const FRAME_HEADER_BYTES: usize = 4 + 4 + 1;
/// The largest payload a record may carry. Writers split larger batches; readers treat a
/// larger length as damage, so a flipped length bit can never make them allocate gigabytes.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 8 << 20;
/// The format version written in every file header.
pub const FORMAT_VERSION: u8 = 1;
/// Magic bytes of a WAL segment.
pub const SEGMENT_MAGIC: [u8; 4] = *b"SWAL";
/// Magic bytes of a checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"SCKP";

const _: () = assert!(FILE_HEADER_BYTES == 4 + 1 + 3 + 4 + 8 + 4);
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX < u32::MAX as usize);

/// The kind of a record, stored in its type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// New series: references and labels.
    Series = 1,
    /// Samples of known series.
    Samples = 2,
    /// Encoded chunks (checkpoints only).
    Chunks = 3,
    /// The last record of a checkpoint.
    CheckpointEnd = 4,
}

impl RecordType {
    fn from_u8(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            3 => Some(RecordType::Chunks),
            4 => Some(RecordType::CheckpointEnd),
            _ => None,
        }
    }
}

/// Why bytes could not be decoded. Converted into a storage corruption error (with file and
/// offset) by the callers, which know where the bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A decoded file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// The number in the file's name.
    pub seq: u32,
    /// Bytes of the previous segment known to be synced when this segment was started; beyond
    /// them the previous segment may hold the torn remains of an abandoned write.
    pub prev_synced_len: u64,
}

/// `prev_synced_len` meaning "the previous segment is whole".
pub const PREV_WHOLE: u64 = u64::MAX;

/// Writes a file header.
pub fn encode_file_header(magic: [u8; 4], h: FileHeader) -> [u8; FILE_HEADER_BYTES] {
    let mut out = [0u8; FILE_HEADER_BYTES];
    out[0..4].copy_from_slice(&magic);
    out[4] = FORMAT_VERSION;
    out[8..12].copy_from_slice(&h.seq.to_le_bytes());
    out[12..20].copy_from_slice(&h.prev_synced_len.to_le_bytes());
    let crc = crc32fast::hash(&out[0..20]);
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Checks and decodes a file header.
pub fn decode_file_header(bytes: &[u8], magic: [u8; 4]) -> Result<FileHeader, DecodeError> {
    let h = bytes
        .get(..FILE_HEADER_BYTES)
        .ok_or(DecodeError("file shorter than its header"))?;
    let crc = u32::from_le_bytes(h[20..24].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&h[0..20]) {
        return Err(DecodeError("file header checksum mismatch"));
    }
    if h[0..4] != magic {
        return Err(DecodeError("wrong magic bytes in file header"));
    }
    if h[4] != FORMAT_VERSION {
        return Err(DecodeError("unsupported format version in file header"));
    }
    Ok(FileHeader {
        seq: u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")),
        prev_synced_len: u64::from_le_bytes(h[12..20].try_into().expect("8 bytes")),
    })
}

/// Appends one framed record to `out`.
pub fn encode_frame(out: &mut Vec<u8>, ty: RecordType, payload: &[u8]) {
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "record payload of {} bytes exceeds the limit; writers must split",
        payload.len()
    );
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(ty as u8);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `bytes`: its type, payload and total length. Any damage
/// (short input, impossible length, unknown type, checksum mismatch) is an error.
pub fn decode_frame(bytes: &[u8]) -> Result<(RecordType, &[u8], usize), DecodeError> {
    let header = bytes
        .get(..FRAME_HEADER_BYTES)
        .ok_or(DecodeError("record header cut short"))?;
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(DecodeError("record length beyond the maximum"));
    }
    let ty = RecordType::from_u8(header[8]).ok_or(DecodeError("unknown record type"))?;
    let total = FRAME_HEADER_BYTES + len;
    let frame = bytes
        .get(..total)
        .ok_or(DecodeError("record payload cut short"))?;
    let crc = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&frame[4..]) {
        return Err(DecodeError("record checksum mismatch"));
    }
    Ok((ty, &frame[FRAME_HEADER_BYTES..], total))
}

// ---- varints ------------------------------------------------------------------------------

/// Appends `v` as an LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as an LEB128 varint.
pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a payload that decodes without ever panicking.
#[derive(Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    /// Whether every byte was consumed.
    pub fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Reads an LEB128 varint.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or(DecodeError("varint cut short"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    /// Reads a zigzag varint.
    #[inline]
    pub fn svarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a little-endian `u64`.
    #[inline]
    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError("length overflows"))?;
        let b = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError("field cut short"))?;
        self.pos = end;
        Ok(b)
    }

    /// Reads a varint-length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.uvarint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError("string length overflows"))?;
        std::str::from_utf8(self.bytes(len)?).map_err(|_| DecodeError("string is not utf-8"))
    }

    /// Reads a count of items that each take at least `min_item_bytes`, rejecting counts the
    /// remaining bytes cannot hold (so a damaged count cannot cause a huge allocation).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > left {
            return Err(DecodeError("item count exceeds the record's size"));
        }
        Ok(n as usize)
    }
}

// ---- payloads -----------------------------------------------------------------------------

/// One series in a `Series` record, borrowing its strings from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry<'a> {
    /// The series' reference.
    pub series: SeriesRef,
    /// Its labels, as written.
    pub labels: Vec<(&'a str, &'a str)>,
}

/// Encodes a `Series` payload.
pub fn encode_series<'a, I, L>(out: &mut Vec<u8>, series: I)
where
    I: ExactSizeIterator<Item = (SeriesRef, L)>,
    L: ExactSizeIterator<Item = (&'a str, &'a str)>,
{
    put_uvarint(out, series.len() as u64);
    for (r, labels) in series {
        put_uvarint(out, r.0);
        put_uvarint(out, labels.len() as u64);
        for (name, value) in labels {
            put_uvarint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_uvarint(out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
    }
}

/// Decodes a `Series` payload into `out`.
pub fn decode_series<'a>(
    payload: &'a [u8],
    out: &mut Vec<SeriesEntry<'a>>,
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.count(2)?;
    out.reserve(n);
    for _ in 0..n {
        let series = SeriesRef(c.uvarint()?);
        let nl = c.count(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            labels.push((c.str()?, c.str()?));
        }
        out.push(SeriesEntry { series, labels });
    }
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after series"));
    }
    Ok(())
}

/// One sample in a `Samples` record.
#[derive(Debug, Clone, Copy)]
pub struct RefSample {
    /// The series it belongs to.
    pub series: SeriesRef,
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value, bit-exact.
    pub v: f64,
}

/// Encodes a `Samples` payload.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[RefSample]) {
    put_uvarint(out, samples.len() as u64);
    let (mut prev_ref, mut prev_t) = (0u64, 0i64);
    for s in samples {
        put_svarint(out, s.series.0.wrapping_sub(prev_ref) as i64);
        put_svarint(out, s.t.wrapping_sub(prev_t));
        out.extend_from_slice(&s.v.to_bits().to_le_bytes());
        prev_ref = s.series.0;
        prev_t = s.t;
    }
}

/// Decodes a `Samples` payload, appending to `out`.
pub fn decode_samples(payload: &[u8], out: &mut Vec<RefSample>) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.count(10)?;
    out.reserve(n);
    let (mut r, mut t) = (0u64, 0i64);
    for _ in 0..n {
        r = r.wrapping_add(c.svarint()? as u64);
        t = t.wrapping_add(c.svarint()?);
        let v = f64::from_bits(c.u64_le()?);
        out.push(RefSample {
            series: SeriesRef(r),
            t,
            v,
        });
    }
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after samples"));
    }
    Ok(())
}

/// What a checkpointed chunk is to its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChunkKind {
    /// A full, closed in-order chunk.
    Closed = 0,
    /// The series' open in-order chunk, which appending resumes.
    Active = 1,
    /// Out-of-order samples, sorted by time.
    OutOfOrder = 2,
}

/// One chunk in a `Chunks` record, borrowing its data from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry<'a> {
    /// The series it belongs to.
    pub series: SeriesRef,
    /// Its role.
    pub kind: ChunkKind,
    /// Samples in the chunk.
    pub num_samples: u16,
    /// First timestamp.
    pub min_t: i64,
    /// Last timestamp.
    pub max_t: i64,
    /// The XOR-encoded stream.
    pub data: &'a [u8],
}

/// Appends one chunk to a `Chunks` payload under construction (the count is written by
/// [`finish_chunks`]).
pub fn encode_chunk(out: &mut Vec<u8>, c: &ChunkEntry<'_>) {
    put_uvarint(out, c.series.0);
    out.push(c.kind as u8);
    out.push(crate::chunk::Encoding::Xor as u8);
    put_uvarint(out, u64::from(c.num_samples));
    put_svarint(out, c.min_t);
    put_svarint(out, c.max_t);
    put_uvarint(out, c.data.len() as u64);
    out.extend_from_slice(c.data);
}

/// Prefixes chunk entries encoded with [`encode_chunk`] with their count.
pub fn finish_chunks(count: usize, entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() + 10);
    put_uvarint(&mut out, count as u64);
    out.extend_from_slice(entries);
    out
}

/// Decodes a `Chunks` payload into `out`.
pub fn decode_chunks<'a>(
    payload: &'a [u8],
    out: &mut Vec<ChunkEntry<'a>>,
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.count(7)?;
    out.reserve(n);
    for _ in 0..n {
        let series = SeriesRef(c.uvarint()?);
        let kind = match c.u8()? {
            0 => ChunkKind::Closed,
            1 => ChunkKind::Active,
            2 => ChunkKind::OutOfOrder,
            _ => return Err(DecodeError("unknown chunk kind")),
        };
        if crate::chunk::Encoding::try_from(c.u8()?).is_err() {
            return Err(DecodeError("unknown chunk encoding"));
        }
        let num_samples =
            u16::try_from(c.uvarint()?).map_err(|_| DecodeError("chunk sample count too big"))?;
        let min_t = c.svarint()?;
        let max_t = c.svarint()?;
        let len = usize::try_from(c.uvarint()?).map_err(|_| DecodeError("length overflows"))?;
        let data = c.bytes(len)?;
        out.push(ChunkEntry {
            series,
            kind,
            num_samples,
            min_t,
            max_t,
            data,
        });
    }
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after chunks"));
    }
    Ok(())
}

/// Encodes a `CheckpointEnd` payload.
pub fn encode_checkpoint_end(out: &mut Vec<u8>, records: u64) {
    put_uvarint(out, records);
}

/// Decodes a `CheckpointEnd` payload: the number of records before it.
pub fn decode_checkpoint_end(payload: &[u8]) -> Result<u64, DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.uvarint()?;
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after checkpoint end"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(ty: RecordType, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, ty, payload);
        out
    }

    #[test]
    fn frame_round_trips_and_reports_its_length() {
        let bytes = frame(RecordType::Samples, b"payload");
        let (ty, payload, len) = decode_frame(&bytes).unwrap();
        assert_eq!(
            (ty, payload, len),
            (RecordType::Samples, &b"payload"[..], 16)
        );
    }

    #[test]
    fn every_single_bit_flip_in_a_frame_is_detected() {
        let mut samples = Vec::new();
        for i in 0..40 {
            samples.push(RefSample {
                series: SeriesRef(i % 7),
                t: 1_700_000_000_000 + i as i64 * 15_000,
                v: i as f64 * 1.5,
            });
        }
        let mut payload = Vec::new();
        encode_samples(&mut payload, &samples);
        let good = frame(RecordType::Samples, &payload);
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&bad).is_err(),
                "flip of bit {bit} went undetected"
            );
        }
    }

    #[test]
    fn every_truncation_of_a_frame_is_detected() {
        let good = frame(RecordType::Series, b"0123456789abcdef");
        for cut in 0..good.len() {
            assert!(decode_frame(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn file_header_round_trips_and_rejects_damage() {
        let header = FileHeader {
            seq: 42,
            prev_synced_len: 1234,
        };
        let h = encode_file_header(SEGMENT_MAGIC, header);
        assert_eq!(decode_file_header(&h, SEGMENT_MAGIC), Ok(header));
        assert!(decode_file_header(&h, CHECKPOINT_MAGIC).is_err());
        for bit in 0..h.len() * 8 {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_file_header(&bad, SEGMENT_MAGIC).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn series_round_trip() {
        let labels = [("__name__", "up"), ("job", "node")];
        let mut payload = Vec::new();
        encode_series(
            &mut payload,
            [(SeriesRef(7), labels.iter().copied())].into_iter(),
        );
        let mut out = Vec::new();
        decode_series(&payload, &mut out).unwrap();
        assert_eq!(
            out,
            vec![SeriesEntry {
                series: SeriesRef(7),
                labels: labels.to_vec()
            }]
        );
    }

    #[test]
    fn chunks_round_trip() {
        let entry = ChunkEntry {
            series: SeriesRef(3),
            kind: ChunkKind::Active,
            num_samples: 2,
            min_t: -5,
            max_t: 10,
            data: b"\x01\x02\x03",
        };
        let mut entries = Vec::new();
        encode_chunk(&mut entries, &entry);
        let payload = finish_chunks(1, &entries);
        let mut out = Vec::new();
        decode_chunks(&payload, &mut out).unwrap();
        assert_eq!(out, vec![entry]);
    }

    #[test]
    fn damaged_counts_do_not_allocate() {
        // A count of 2^60 samples in a 12-byte payload must be refused before reserving.
        let mut payload = Vec::new();
        put_uvarint(&mut payload, 1 << 60);
        payload.extend_from_slice(&[0; 8]);
        assert!(decode_samples(&payload, &mut Vec::new()).is_err());
        assert!(decode_series(&payload, &mut Vec::new()).is_err());
        assert!(decode_chunks(&payload, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn samples_round_trip(raw in proptest::collection::vec((any::<u64>(), any::<i64>(), any::<u64>()), 0..200)) {
            let samples: Vec<RefSample> = raw
                .iter()
                .map(|&(r, t, v)| RefSample { series: SeriesRef(r), t, v: f64::from_bits(v) })
                .collect();
            let mut payload = Vec::new();
            encode_samples(&mut payload, &samples);
            let mut out = Vec::new();
            decode_samples(&payload, &mut out).unwrap();
            prop_assert_eq!(out.len(), samples.len());
            for (a, b) in out.iter().zip(&samples) {
                prop_assert_eq!(a.series, b.series);
                prop_assert_eq!(a.t, b.t);
                prop_assert_eq!(a.v.to_bits(), b.v.to_bits());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes);
            let _ = decode_samples(&bytes, &mut Vec::new());
            let _ = decode_series(&bytes, &mut Vec::new());
            let _ = decode_chunks(&bytes, &mut Vec::new());
            let _ = decode_checkpoint_end(&bytes);
            let _ = decode_file_header(&bytes, SEGMENT_MAGIC);
        }

        #[test]
        fn varints_round_trip(u in any::<u64>(), s in any::<i64>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            put_svarint(&mut out, s);
            let mut c = Cursor::new(&out);
            prop_assert_eq!(c.uvarint().unwrap(), u);
            prop_assert_eq!(c.svarint().unwrap(), s);
            prop_assert!(c.is_done());
        }
    }
}
