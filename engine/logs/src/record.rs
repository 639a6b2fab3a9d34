//! The log store's WAL records: the payloads it frames with [`strata_wal::frame`]. Layout in
//! `docs/format/wal.md` ("The log store's payloads").
//!
//! * `Streams` (16): `uvarint count`, then per stream `uvarint ref`, `uvarint nlabels`, and
//!   per label `uvarint len, name bytes, uvarint len, value bytes`.
//! * `Sealed` (18), in checkpoints only: `uvarint seq`, the newest block whose entries the
//!   segments the checkpoint replaced held. A block numbered above it is the remains of a seal
//!   cut short before its checkpoint, and its entries are still in the log.
//! * `Entries` (17): `uvarint count`, then per entry `svarint ref delta`, `svarint ts delta`
//!   (both against the entry before, the first against 0), `uvarint len, line bytes`,
//!   `uvarint nmetadata`, and per pair `uvarint len, name bytes, uvarint len, value bytes`.
//!
//! The numbers differ from the metrics store's (1–3), so a segment put in the wrong store's
//! directory is refused as damage rather than misread.

use strata_core::codec::{
    Cursor, DecodeError, decode_labelled_refs, put_labelled_refs, put_svarint, put_uvarint,
};
use strata_wal::frame::RecordType;

use crate::entry::StreamRef;

/// New streams: references and labels.
pub const STREAMS: RecordType = RecordType(16);
/// Entries of known streams.
pub const ENTRIES: RecordType = RecordType(17);
/// The newest sealed block the checkpoint stands for.
pub const SEALED: RecordType = RecordType(18);

/// Encodes a `Sealed` payload.
pub fn encode_sealed(out: &mut Vec<u8>, seq: u32) {
    put_uvarint(out, u64::from(seq));
}

/// Decodes a `Sealed` payload.
pub fn decode_sealed(payload: &[u8]) -> Result<u32, DecodeError> {
    let mut c = Cursor::new(payload);
    let seq = u32::try_from(c.uvarint()?).map_err(|_| DecodeError("block number overflows"))?;
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after the sealed block number"));
    }
    Ok(seq)
}

/// One stream in a `Streams` record, borrowing its strings from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord<'a> {
    pub stream: StreamRef,
    pub labels: Vec<(&'a str, &'a str)>,
}

/// One entry in an `Entries` record, borrowing its strings from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord<'a> {
    pub stream: StreamRef,
    pub ts_ns: i64,
    pub line: &'a str,
    pub metadata: Vec<(&'a str, &'a str)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Encodes a `Streams` payload.
pub fn encode_streams(out: &mut Vec<u8>, streams: &[(StreamRef, Vec<(&str, &str)>)]) {
    put_labelled_refs(
        out,
        streams
            .iter()
            .map(|(r, labels)| (r.0, labels.iter().copied())),
    );
}

/// Decodes a `Streams` payload into `out`.
pub fn decode_streams<'a>(
    payload: &'a [u8],
    out: &mut Vec<StreamRecord<'a>>,
) -> Result<(), DecodeError> {
    decode_labelled_refs(payload, "trailing bytes after streams", |r, labels| {
        out.push(StreamRecord {
            stream: StreamRef(r),
            labels,
        })
    })
}

/// The bytes [`encode_entries`] writes for one entry at most (its varints at their longest).
pub fn entry_bytes_max(line: &str, metadata: &[(String, String)]) -> usize {
    10 + 10
        + 10
        + line.len()
        + 10
        + metadata
            .iter()
            .map(|(n, v)| 20 + n.len() + v.len())
            .sum::<usize>()
}

/// Encodes an `Entries` payload: the count, then each entry as the module docs lay out, deltas against
/// the entry before.
pub fn encode_entries<'e>(
    out: &mut Vec<u8>,
    entries: impl ExactSizeIterator<Item = (StreamRef, i64, &'e str, &'e [(String, String)])>,
) {
    put_uvarint(out, entries.len() as u64);
    let (mut prev_ref, mut prev_ts) = (0u64, 0i64);
    for (r, ts, line, metadata) in entries {
        put_svarint(out, r.0.wrapping_sub(prev_ref) as i64);
        put_svarint(out, ts.wrapping_sub(prev_ts));
        (prev_ref, prev_ts) = (r.0, ts);
        put_str(out, line);
        put_uvarint(out, metadata.len() as u64);
        for (name, value) in metadata {
            put_str(out, name);
            put_str(out, value);
        }
    }
}

/// Decodes an `Entries` payload into `out`.
pub fn decode_entries<'a>(
    payload: &'a [u8],
    out: &mut Vec<EntryRecord<'a>>,
) -> Result<(), DecodeError> {
    let mut c = Cursor::new(payload);
    let n = c.count(4)?;
    out.reserve(n);
    let (mut r, mut ts) = (0u64, 0i64);
    for _ in 0..n {
        r = r.wrapping_add(c.svarint()? as u64);
        ts = ts.wrapping_add(c.svarint()?);
        let line = c.str()?;
        let nm = c.count(2)?;
        let mut metadata = Vec::with_capacity(nm);
        for _ in 0..nm {
            metadata.push((c.str()?, c.str()?));
        }
        out.push(EntryRecord {
            stream: StreamRef(r),
            ts_ns: ts,
            line,
            metadata,
        });
    }
    if !c.is_done() {
        return Err(DecodeError("trailing bytes after entries"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_entries_decode_to_what_was_encoded() {
        let mut out = Vec::new();
        encode_streams(
            &mut out,
            &[
                (StreamRef(1), vec![("app", "api"), ("level", "info")]),
                (StreamRef(7), vec![("app", "ünïcode")]),
            ],
        );
        let mut streams = Vec::new();
        decode_streams(&out, &mut streams).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[1].stream, StreamRef(7));
        assert_eq!(streams[1].labels, vec![("app", "ünïcode")]);

        let meta = [("trace_id".to_string(), "abc".to_string())];
        let none: Vec<(String, String)> = Vec::new();
        let entries = [
            (
                StreamRef(7),
                1_700_000_000_000_000_001i64,
                "GET / 200",
                &meta[..],
            ),
            (StreamRef(1), -5, "", &none[..]),
            (
                StreamRef(u64::MAX),
                i64::MAX,
                "line\nwith\nbreaks",
                &none[..],
            ),
        ];
        let mut out = Vec::new();
        encode_entries(&mut out, entries.iter().copied());
        assert!(
            out.len()
                <= 10
                    + entries
                        .iter()
                        .map(|e| entry_bytes_max(e.2, e.3))
                        .sum::<usize>()
        );
        let mut got = Vec::new();
        decode_entries(&out, &mut got).unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|e| (e.stream, e.ts_ns, e.line, e.metadata.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    StreamRef(7),
                    1_700_000_000_000_000_001,
                    "GET / 200",
                    vec![("trace_id", "abc")]
                ),
                (StreamRef(1), -5, "", vec![]),
                (StreamRef(u64::MAX), i64::MAX, "line\nwith\nbreaks", vec![]),
            ]
        );
    }

    #[test]
    fn cut_or_padded_payloads_are_refused_not_misread() {
        let meta = [("k".to_string(), "v".to_string())];
        let mut out = Vec::new();
        encode_entries(
            &mut out,
            [(StreamRef(3), 42i64, "hello", &meta[..])].into_iter(),
        );
        for cut in 0..out.len() {
            assert!(
                decode_entries(&out[..cut], &mut Vec::new()).is_err(),
                "cut at {cut}"
            );
        }
        let mut padded = out.clone();
        padded.push(0);
        assert!(decode_entries(&padded, &mut Vec::new()).is_err());
        // A line that is not UTF-8 is damage.
        let mut bad = out.clone();
        let at = bad.iter().position(|&b| b == b'h').unwrap();
        bad[at] = 0xff;
        assert!(decode_entries(&bad, &mut Vec::new()).is_err());
    }
}
