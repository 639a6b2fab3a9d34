//! The byte-level codecs every store's files share: LEB128 varints and a cursor that decodes
//! them without panicking, and the 24-byte header that opens each numbered file (WAL
//! segments, checkpoints, block chunk files). Layouts in `docs/format/wal.md`.
//!
//! ```text
//! file header (24 bytes)
//! +-----------+---------+-------------+-----------+------------------------+---------------------+
//! | magic [4] | version | reserved[3] | seq u32LE | prev_synced_len u64LE  | crc32 of bytes 0..20 |
//! +-----------+---------+-------------+-----------+------------------------+---------------------+
//!   prev_synced_len: how many bytes of the previous segment were synced when this one was
//!   started (u64::MAX: unknown, treat the previous segment as whole; 0 where unused).
//! ```
//!
//! Payloads use LEB128 varints (`uvarint`), zigzag for signed deltas (`svarint`), and raw
//! little-endian `u64` for float bits.

use std::fmt;

/// Bytes in a file header.
pub const FILE_HEADER_BYTES: usize = 24;
/// The format version written in every file header.
pub const FORMAT_VERSION: u8 = 1;

const _: () = assert!(FILE_HEADER_BYTES == 4 + 1 + 3 + 4 + 8 + 4);

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

/// Appends references with their label pairs: `uvarint count`, then per item `uvarint ref`,
/// `uvarint npairs`, and per pair `uvarint len, name bytes, uvarint len, value bytes`. The
/// layout of the metrics store's `Series` record and the log store's `Streams` record.
pub fn put_labelled_refs<'a, I, L>(out: &mut Vec<u8>, items: I)
where
    I: ExactSizeIterator<Item = (u64, L)>,
    L: ExactSizeIterator<Item = (&'a str, &'a str)>,
{
    put_uvarint(out, items.len() as u64);
    for (r, pairs) in items {
        put_uvarint(out, r);
        put_uvarint(out, pairs.len() as u64);
        for (name, value) in pairs {
            put_uvarint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_uvarint(out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
    }
}

/// Reads what [`put_labelled_refs`] wrote, calling `each(ref, pairs)` per item, the strings
/// borrowed from `payload`; the whole payload must be used (`trailing` is the error when it
/// is not).
pub fn decode_labelled_refs<'a>(
    payload: &'a [u8],
    trailing: &'static str,
    mut each: impl FnMut(u64, Vec<(&'a str, &'a str)>),
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.count(2)?;
    for _ in 0..n {
        let r = c.uvarint()?;
        let np = c.count(2)?;
        let mut pairs = Vec::with_capacity(np);
        for _ in 0..np {
            pairs.push((c.str()?, c.str()?));
        }
        each(r, pairs);
    }
    if !c.is_done() {
        return Err(DecodeError(trailing));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAGIC: [u8; 4] = *b"TEST";

    #[test]
    fn file_header_round_trips_and_rejects_damage() {
        let header = FileHeader {
            seq: 42,
            prev_synced_len: 1234,
        };
        let h = encode_file_header(MAGIC, header);
        assert_eq!(decode_file_header(&h, MAGIC), Ok(header));
        assert!(decode_file_header(&h, *b"ELSE").is_err());
        for bit in 0..h.len() * 8 {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_file_header(&bad, MAGIC).is_err(), "bit {bit}");
        }
    }

    proptest! {
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

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_file_header(&bytes, MAGIC);
            let mut c = Cursor::new(&bytes);
            while c.uvarint().is_ok() {}
            let mut c = Cursor::new(&bytes);
            while c.str().is_ok() {}
        }
    }
}
