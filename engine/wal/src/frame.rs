//! Record framing: how the log stores one record, whatever store wrote it. Layout in
//! `docs/format/wal.md`.
//!
//! A segment or checkpoint file is a file header ([`strata_core::codec`]) followed by framed
//! records:
//!
//! ```text
//! record frame (9 + len bytes)
//! +-------------+-----------+---------+----------------+
//! | crc32 u32LE | len u32LE | type u8 | payload [len]  |
//! +-------------+-----------+---------+----------------+
//!   crc32 (crc32fast, IEEE) covers len, type and payload: every byte after itself.
//! ```
//!
//! The type byte says which store's decoder reads the payload. The log itself owns one type,
//! [`RecordType::CHECKPOINT_END`] (4): `uvarint records`, the number of records before it, so
//! a checkpoint that lost its tail is recognised as incomplete. Every other type belongs to a
//! store, which defines its payloads next to its own code (the metrics store's in
//! `strata_tsdb::record`); `docs/format/wal.md` keeps the table of which store owns which
//! byte, so two stores never share one.

use std::fmt;

use strata_core::codec::{Cursor, DecodeError, put_uvarint};

/// Bytes in a record frame's header (crc, len, type).
pub const FRAME_HEADER_BYTES: usize = 4 + 4 + 1;
/// The largest payload a record may carry. Writers split larger batches; readers treat a
/// larger length as damage, so a flipped length bit can never make them allocate gigabytes.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 8 << 20;
/// Magic bytes of a WAL segment.
pub const SEGMENT_MAGIC: [u8; 4] = *b"SWAL";
/// Magic bytes of a checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"SCKP";

const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX < u32::MAX as usize);

/// The kind of a record, stored in its type byte. Zero is never a record type, so a run of
/// zeroed bytes never reads as a frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordType(pub u8);

impl RecordType {
    /// The last record of a checkpoint (owned by the log itself).
    pub const CHECKPOINT_END: RecordType = RecordType(4);
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordType({})", self.0)
    }
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
    out.push(ty.0);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `bytes`: its type, payload and total length. Any damage
/// (short input, impossible length, type zero, checksum mismatch) is an error; whether the
/// type is one the reader knows is for the reader to say.
pub fn decode_frame(bytes: &[u8]) -> Result<(RecordType, &[u8], usize), DecodeError> {
    let header = bytes
        .get(..FRAME_HEADER_BYTES)
        .ok_or(DecodeError("record header cut short"))?;
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(DecodeError("record length beyond the maximum"));
    }
    if header[8] == 0 {
        return Err(DecodeError("record type zero"));
    }
    let ty = RecordType(header[8]);
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
        let bytes = frame(RecordType(2), b"payload");
        let (ty, payload, len) = decode_frame(&bytes).unwrap();
        assert_eq!((ty, payload, len), (RecordType(2), &b"payload"[..], 16));
    }

    #[test]
    fn every_truncation_of_a_frame_is_detected() {
        let good = frame(RecordType(1), b"0123456789abcdef");
        for cut in 0..good.len() {
            assert!(decode_frame(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn checkpoint_end_round_trips() {
        let mut payload = Vec::new();
        encode_checkpoint_end(&mut payload, 12_345);
        assert_eq!(decode_checkpoint_end(&payload), Ok(12_345));
        payload.push(0);
        assert!(decode_checkpoint_end(&payload).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes);
            let _ = decode_checkpoint_end(&bytes);
        }
    }
}
