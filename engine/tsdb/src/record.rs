//! The metrics store's WAL records: the payloads it frames with [`strata_wal::frame`]. Layout
//! in `docs/format/wal.md`.
//!
//! * `Series` (1): `uvarint count`, then per series `uvarint ref`, `uvarint nlabels`, and per
//!   label `uvarint len, name bytes, uvarint len, value bytes`.
//! * `Samples` (2): `uvarint count`, then per sample `svarint ref delta`, `svarint t delta`
//!   (both against the previous sample, the first against 0), `u64 value bits`.
//! * `Chunks` (3, checkpoints only): `uvarint count`, then per chunk `uvarint ref`, `u8 kind`,
//!   `u8 encoding` (the chunk codec's id, as in a chunk frame),
//!   `uvarint num_samples`, `svarint min_t`, `svarint max_t`, `uvarint len`, `data [len]`.

use strata_core::codec::{
    Cursor, DecodeError, decode_labelled_refs, put_labelled_refs, put_svarint, put_uvarint,
};
use strata_core::sample::SeriesRef;
use strata_wal::frame::RecordType;

/// New series: references and labels.
pub const SERIES: RecordType = RecordType(1);
/// Samples of known series.
pub const SAMPLES: RecordType = RecordType(2);
/// Encoded chunks (checkpoints only).
pub const CHUNKS: RecordType = RecordType(3);

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
    put_labelled_refs(out, series.map(|(r, labels)| (r.0, labels)));
}

/// Decodes a `Series` payload into `out`.
pub fn decode_series<'a>(
    payload: &'a [u8],
    out: &mut Vec<SeriesEntry<'a>>,
) -> Result<(), DecodeError> {
    decode_labelled_refs(payload, "trailing bytes after series", |r, labels| {
        out.push(SeriesEntry {
            series: SeriesRef(r),
            labels,
        })
    })
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
        // Checkpoints hold the head's chunks, always encoding 2 (encoding 3 is for blocks).
        if crate::chunk::Encoding::try_from(c.u8()?) != Ok(crate::chunk::Encoding::Xor) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_wal::frame::{decode_frame, encode_frame};

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
        let mut good = Vec::new();
        encode_frame(&mut good, SAMPLES, &payload);
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
            let _ = decode_samples(&bytes, &mut Vec::new());
            let _ = decode_series(&bytes, &mut Vec::new());
            let _ = decode_chunks(&bytes, &mut Vec::new());
        }
    }
}
