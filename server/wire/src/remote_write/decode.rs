//! Remote write 1.0 decoded without copying: label names and values stay slices of the
//! decompressed body, and every series' labels and samples go into two flat vectors, so a
//! request costs a handful of allocations instead of several per series (decoding into
//! prost's owned structs, and freeing them, was half of ingestion's CPU time).
//!
//! It reads exactly the messages [`super::v1::WriteRequest`] declares and accepts and refuses
//! what prost's decoding of them does (a differential test and the `remote_write` fuzz target
//! compare the two): unknown fields skipped, wire types checked for known ones, UTF-8
//! checked for strings, the last value of a repeated scalar field kept. Exemplars and
//! metadata, rare, are decoded by prost from their slices.

use std::ops::Range;

use prost::Message;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use super::v1::{Exemplar, HistogramStub, MetricMetadata, WriteRequest};

/// One series of a [`Request`]: ranges into its flat vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The series' labels in [`Request::labels`]; empty when the series is `known`.
    pub labels: Range<usize>,
    /// Where the series' label fields lie in the body, when they lie together (as every
    /// sender writes them): the bytes that name the series on the wire.
    pub raw_labels: Option<Range<usize>>,
    /// What the caller's lookup of [`Series::raw_labels`] returned (see [`decode_with`]):
    /// the labels were not decoded again.
    pub known: Option<u64>,
    pub samples: Range<usize>,
    pub exemplars: Range<usize>,
    /// Native histogram samples (counted, not decoded).
    pub histograms: usize,
}

/// A decoded request whose strings borrow from the body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Request<'a> {
    /// The decoded body (which `raw_labels` index).
    pub body: &'a [u8],
    pub series: Vec<Series>,
    /// `(name, value)` of every series, in the order sent.
    pub labels: Vec<(&'a str, &'a str)>,
    /// `(timestamp, value)` of every series.
    pub samples: Vec<(i64, f64)>,
    pub exemplars: Vec<Exemplar>,
    pub metadata: Vec<MetricMetadata>,
}

impl<'a> Request<'a> {
    /// The labels of series `s`.
    pub fn labels_of(&self, s: &Series) -> &[(&'a str, &'a str)] {
        &self.labels[s.labels.clone()]
    }

    /// The samples of series `s`.
    pub fn samples_of(&self, s: &Series) -> &[(i64, f64)] {
        &self.samples[s.samples.clone()]
    }

    /// The label fields of series `s` as sent, when they lie together.
    pub fn raw_labels_of(&self, s: &Series) -> Option<&'a [u8]> {
        s.raw_labels.clone().and_then(|r| self.body.get(r))
    }

    /// The labels of series `s`, decoded from its label fields if the series is `known`
    /// (they were not decoded with the request).
    pub fn labels_owned(&self, s: &Series) -> Result<Vec<(&'a str, &'a str)>, DecodeError> {
        match (s.known, self.raw_labels_of(s)) {
            (Some(_), Some(raw)) => {
                let mut pairs = Vec::new();
                decode_labels(raw, &mut Vec::new(), &mut pairs)?;
                Ok(pairs)
            }
            _ => Ok(self.labels_of(s).to_vec()),
        }
    }

    /// The exemplars of series `s`.
    pub fn exemplars_of(&self, s: &Series) -> &[Exemplar] {
        &self.exemplars[s.exemplars.clone()]
    }

    /// A view of a request decoded by prost (remote write 2.0 arrives that way).
    pub fn view(owned: &'a WriteRequest) -> Request<'a> {
        let mut out = Request {
            metadata: owned.metadata.clone(),
            ..Request::default()
        };
        for ts in &owned.timeseries {
            let labels = out.labels.len();
            out.labels.extend(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            let samples = out.samples.len();
            out.samples
                .extend(ts.samples.iter().map(|s| (s.timestamp, s.value)));
            let exemplars = out.exemplars.len();
            out.exemplars.extend(ts.exemplars.iter().cloned());
            out.series.push(Series {
                labels: labels..out.labels.len(),
                raw_labels: None,
                known: None,
                samples: samples..out.samples.len(),
                exemplars: exemplars..out.exemplars.len(),
                histograms: ts.histograms.len(),
            });
        }
        out
    }
}

/// Why a body is not a remote-write 1.0 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A varint, key or unknown field prost's primitives refused.
    #[error("{0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("a field's length runs past the end of the message")]
    LengthPastEnd,
    /// A known field with the wrong wire type.
    #[error("{field}: wire type {got:?}, expected {want:?}")]
    WireType {
        field: &'static str,
        got: WireType,
        want: WireType,
    },
    #[error("a label is not valid UTF-8")]
    NotUtf8,
    #[error("a sample's value is cut short")]
    ValueCutShort,
}

/// Reads a varint: the one-byte case (every key and most lengths of a request) inline, the
/// rest by prost.
#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    match buf.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *buf = rest;
            Ok(u64::from(b))
        }
        _ => Ok(decode_varint(buf)?),
    }
}

/// Reads a field's key: a one-byte key with a valid tag and wire type inline, anything else
/// (longer keys, and the keys prost refuses, with its message) by prost.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType), DecodeError> {
    if let Some((&b, rest)) = buf.split_first()
        && b < 0x80
        && b >> 3 != 0
        && let Ok(wire) = WireType::try_from(u64::from(b & 7))
    {
        *buf = rest;
        return Ok((u32::from(b >> 3), wire));
    }
    Ok(decode_key(buf)?)
}

/// Reads a length-delimited field's bytes.
#[inline(always)]
fn delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let len = varint(buf)?;
    if len > buf.len() as u64 {
        return Err(DecodeError::LengthPastEnd);
    }
    let (field, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(field)
}

fn expect(got: WireType, want: WireType, field: &'static str) -> Result<(), DecodeError> {
    if got == want {
        Ok(())
    } else {
        Err(DecodeError::WireType { field, got, want })
    }
}

fn skip(wire: WireType, tag: u32, buf: &mut &[u8]) -> Result<(), DecodeError> {
    Ok(skip_field(wire, tag, buf, DecodeContext::default())?)
}

/// Decodes a `prometheus.WriteRequest`.
pub fn decode(buf: &[u8]) -> Result<Request<'_>, DecodeError> {
    decode_with(buf, |_| None)
}

/// Decodes a `prometheus.WriteRequest`, asking `known` about each series' label fields
/// (when they lie together) before decoding them: where it returns `Some`, the series is
/// marked with that value and its labels are neither decoded nor checked.
///
/// A sender names a series with the same bytes in every request, so a receiver that keeps
/// the label fields of the series it has stored can skip decoding, checking and looking up
/// their labels; `known` must return `Some` only for bytes that decoded as valid labels
/// before, so that the request is accepted or refused exactly as [`decode`] would.
pub fn decode_with(
    body: &[u8],
    mut known: impl FnMut(&[u8]) -> Option<u64>,
) -> Result<Request<'_>, DecodeError> {
    let mut buf = body;
    // Sized from the body so that a large request does not grow (and copy) its vectors a dozen
    // times: a label takes at least 6 bytes of the body (its key, length, and name's and
    // value's keys and lengths) and ~25 in practice, a series ~150, so these are upper
    // bounds for typical bodies, and untouched capacity costs address space, not memory.
    let mut out = Request {
        body,
        series: Vec::with_capacity(buf.len() / 64),
        labels: Vec::with_capacity(buf.len() / 16),
        samples: Vec::with_capacity(buf.len() / 64),
        ..Request::default()
    };
    let mut raw_labels = Vec::new();
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        match tag {
            1 => {
                expect(wire, WireType::LengthDelimited, "WriteRequest.timeseries")?;
                let ts = delimited(&mut buf)?;
                time_series(ts, &mut out, &mut raw_labels, &mut known)?;
            }
            3 => {
                expect(wire, WireType::LengthDelimited, "WriteRequest.metadata")?;
                let m = delimited(&mut buf)?;
                out.metadata.push(MetricMetadata::decode(m)?);
            }
            _ => skip(wire, tag, &mut buf)?,
        }
    }
    Ok(out)
}

/// Decodes one `TimeSeries`; `raw_labels` is scratch space for its labels' bytes.
///
/// The label fields are only delimited on the first pass; if they lie together and `known`
/// recognises their bytes, they are not decoded at all, otherwise a second pass decodes them.
fn time_series<'a>(
    ts: &'a [u8],
    out: &mut Request<'a>,
    raw_labels: &mut Vec<(&'a [u8], &'a [u8])>,
    known: &mut impl FnMut(&[u8]) -> Option<u64>,
) -> Result<(), DecodeError> {
    let mut buf = ts;
    let labels = out.labels.len();
    let samples = out.samples.len();
    let exemplars = out.exemplars.len();
    let mut histograms = 0;
    // The label fields' extent within `ts`, and whether anything else lies inside it.
    let mut span: Option<Range<usize>> = None;
    let mut together = true;
    let at = |b: &[u8]| ts.len() - b.len();
    while !buf.is_empty() {
        let start = at(buf);
        let (tag, wire) = key(&mut buf)?;
        match tag {
            1 => {
                expect(wire, WireType::LengthDelimited, "TimeSeries.labels")?;
                delimited(&mut buf)?;
                let end = at(buf);
                match &mut span {
                    None => span = Some(start..end),
                    Some(s) => {
                        together &= s.end == start;
                        s.end = end;
                    }
                }
                continue;
            }
            2 => {
                expect(wire, WireType::LengthDelimited, "TimeSeries.samples")?;
                let s = delimited(&mut buf)?;
                out.samples.push(sample(s)?);
            }
            3 => {
                expect(wire, WireType::LengthDelimited, "TimeSeries.exemplars")?;
                let e = delimited(&mut buf)?;
                out.exemplars.push(Exemplar::decode(e)?);
            }
            4 => {
                expect(wire, WireType::LengthDelimited, "TimeSeries.histograms")?;
                let h = delimited(&mut buf)?;
                // Checked like prost checks the (fieldless) stub: a well-formed message.
                HistogramStub::decode(h)?;
                histograms += 1;
            }
            _ => skip(wire, tag, &mut buf)?,
        }
    }
    let span = span.filter(|_| together);
    let body_offset = ts.as_ptr() as usize - out.body.as_ptr() as usize;
    let found = span.as_ref().and_then(|s| known(&ts[s.clone()]));
    if found.is_none() {
        decode_labels(ts, raw_labels, &mut out.labels)?;
    }
    out.series.push(Series {
        labels: labels..out.labels.len(),
        raw_labels: span.map(|s| s.start + body_offset..s.end + body_offset),
        known: found,
        samples: samples..out.samples.len(),
        exemplars: exemplars..out.exemplars.len(),
        histograms,
    });
    Ok(())
}

/// Appends the labels among the fields `fields` (of a `TimeSeries`) to `out`, skipping its
/// other fields; `scratch` holds their bytes in between.
fn decode_labels<'a>(
    fields: &'a [u8],
    scratch: &mut Vec<(&'a [u8], &'a [u8])>,
    out: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), DecodeError> {
    scratch.clear();
    let mut buf = fields;
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        if tag == 1 {
            expect(wire, WireType::LengthDelimited, "TimeSeries.labels")?;
            scratch.push(label(delimited(&mut buf)?)?);
        } else {
            skip(wire, tag, &mut buf)?;
        }
    }
    label_strings(fields, scratch, out)
}

/// A label's name and value bytes (UTF-8 is checked by [`label_strings`]).
fn label(mut buf: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        match tag {
            1 | 2 => {
                expect(wire, WireType::LengthDelimited, "Label.name/value")?;
                let bytes = delimited(&mut buf)?;
                let field = if tag == 1 { &mut name } else { &mut value };
                // A repeated field keeps its last value, but prost checks each one it reads:
                // the one replaced is checked here (rare), the last by `label_strings`.
                if !field.is_empty() && std::str::from_utf8(field).is_err() {
                    return Err(DecodeError::NotUtf8);
                }
                *field = bytes;
            }
            _ => skip(wire, tag, &mut buf)?,
        }
    }
    Ok((name, value))
}

/// Appends a series' labels to `out` as strings, refusing any that is not UTF-8. Checking
/// every name and value by itself was 6% of ingestion's CPU: a series' labels usually lie
/// together in its message `ts`, separated only by one-byte keys and lengths (ASCII), so the
/// span from the first to the last is checked once and each string is sliced out of it. When
/// that span is not UTF-8 (a sample between two labels, a length of two bytes, or a label
/// that is not UTF-8) or a string does not start and end on a character boundary of it, each
/// string is checked by itself, so the outcome is exactly that of checking each one.
fn label_strings<'a>(
    ts: &'a [u8],
    raw: &[(&'a [u8], &'a [u8])],
    out: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), DecodeError> {
    // Every non-empty string is a slice of `ts`, so its offset is its address's distance from
    // the start of `ts`.
    let base = ts.as_ptr() as usize;
    let offset = |b: &[u8]| b.as_ptr() as usize - base;
    let (start, end) = raw
        .iter()
        .flat_map(|&(n, v)| [n, v])
        .filter(|b| !b.is_empty())
        .fold((usize::MAX, 0), |(s, e), b| {
            (s.min(offset(b)), e.max(offset(b) + b.len()))
        });
    let span = ts.get(start..end).and_then(|s| std::str::from_utf8(s).ok());
    let string = |b: &'a [u8]| -> Result<&'a str, DecodeError> {
        if b.is_empty() {
            return Ok("");
        }
        if let Some(span) = span {
            let at = offset(b) - start;
            if let Some(s) = span.get(at..at + b.len()) {
                return Ok(s);
            }
        }
        std::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8)
    };
    out.reserve(raw.len());
    for &(name, value) in raw {
        out.push((string(name)?, string(value)?));
    }
    Ok(())
}

fn sample(mut buf: &[u8]) -> Result<(i64, f64), DecodeError> {
    let (mut t, mut v) = (0i64, 0f64);
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        match tag {
            1 => {
                expect(wire, WireType::SixtyFourBit, "Sample.value")?;
                let Some((bytes, rest)) = buf.split_first_chunk::<8>() else {
                    return Err(DecodeError::ValueCutShort);
                };
                v = f64::from_le_bytes(*bytes);
                buf = rest;
            }
            2 => {
                expect(wire, WireType::Varint, "Sample.timestamp")?;
                t = varint(&mut buf)? as i64;
            }
            _ => skip(wire, tag, &mut buf)?,
        }
    }
    Ok((t, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::v1::arbitrary_request as request;

    /// Each series of a request: its labels, its samples (values as bits), its exemplar and
    /// histogram counts, to compare decodings.
    type Contents = Vec<(Vec<(String, String)>, Vec<(i64, u64)>, usize, usize)>;

    fn bits(r: &Request<'_>) -> Contents {
        r.series
            .iter()
            .map(|s| {
                (
                    r.labels_owned(s)
                        .unwrap()
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    r.samples_of(s)
                        .iter()
                        .map(|&(t, v)| (t, v.to_bits()))
                        .collect(),
                    s.exemplars.len(),
                    s.histograms,
                )
            })
            .collect()
    }

    /// Every truncation and every single-byte corruption of `body`.
    fn variants(body: &[u8]) -> Vec<Vec<u8>> {
        let mut variants: Vec<Vec<u8>> = (0..body.len()).map(|n| body[..n].to_vec()).collect();
        for i in 0..body.len() {
            for b in [0x00, 0x01, 0x02, 0x05, 0x0a, 0x12, 0x1a, 0x80, 0xff] {
                let mut v = body.to_vec();
                v[i] = b;
                variants.push(v);
            }
        }
        variants
    }

    #[test]
    fn decodes_what_prost_decodes() {
        for seed in 0..2000 {
            let owned = request(seed);
            let body = owned.encode_to_vec();
            let fast = decode(&body).unwrap();
            let slow = WriteRequest::decode(body.as_slice()).unwrap();
            let view = Request::view(&slow);
            assert_eq!(bits(&fast), bits(&view), "seed {seed}");
            assert_eq!(fast.exemplars, view.exemplars, "seed {seed}");
            assert_eq!(fast.metadata, view.metadata, "seed {seed}");
        }
    }

    /// A `TimeSeries` field: key, length, bytes.
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![tag << 3 | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn one_series(ts: &[u8]) -> Vec<u8> {
        field(1, ts)
    }

    #[test]
    fn labels_apart_and_odd_bytes_decode_like_prost() {
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0xbf, 0x10, 0x07]; // value -1.0, t 7
        let label = |n: &[u8], v: &[u8]| [field(1, n), field(2, v)].concat();
        // A sample between two labels: the span of the labels holds a double's bytes.
        let apart = [
            field(1, &label(b"__name__", b"up")),
            field(2, &sample),
            field(1, &label(b"job", "n\u{e9}e".as_bytes())),
        ]
        .concat();
        // A name that is the first byte of a two-byte character, followed by an unknown field
        // whose two-byte key completes a valid character, then a value: the span from name to
        // value is UTF-8, the name is not.
        let split = [
            field(
                1,
                &[field(1, &[0xc3]), vec![0x80, 0x01, 0x00], field(2, b"x")].concat(),
            ),
            field(2, &sample),
        ]
        .concat();
        let bad_value = [field(1, &label(b"job", &[b'a', 0xff])), field(2, &sample)].concat();
        // A name given twice, the first not UTF-8: prost refuses it though the last is kept.
        let replaced = [
            field(
                1,
                &[field(1, &[b'2', 0xb7]), field(1, b"job"), field(2, b"x")].concat(),
            ),
            field(2, &sample),
        ]
        .concat();
        for (name, ts, ok) in [
            ("apart", apart, true),
            ("split", split, false),
            ("bad value", bad_value, false),
            ("replaced", replaced, false),
        ] {
            let body = one_series(&ts);
            let fast = decode(&body);
            let slow = WriteRequest::decode(body.as_slice());
            assert_eq!(fast.is_ok(), ok, "{name}: {fast:?}");
            assert_eq!(slow.is_ok(), ok, "{name}: {slow:?}");
            if let (Ok(fast), Ok(slow)) = (fast, slow) {
                assert_eq!(bits(&fast), bits(&Request::view(&slow)), "{name}");
            } else {
                assert!(matches!(decode(&body), Err(DecodeError::NotUtf8)), "{name}");
            }
        }
    }

    /// Asserts that `fast`, a decoding of `body`, succeeds when prost's does, with the same
    /// content.
    fn agrees_with_prost(seed: u64, body: &[u8], fast: Result<Request<'_>, DecodeError>) {
        let slow = WriteRequest::decode(body);
        assert_eq!(
            fast.is_ok(),
            slow.is_ok(),
            "seed {seed}: {body:02x?}: {fast:?} vs {slow:?}"
        );
        if let (Ok(fast), Ok(slow)) = (fast, slow) {
            assert_eq!(bits(&fast), bits(&Request::view(&slow)));
        }
    }

    #[test]
    fn refuses_what_prost_refuses() {
        // Every truncation and every single-byte corruption of some valid bodies: the two
        // decoders agree on success, and on content when both succeed.
        for seed in 0..40 {
            let body = request(seed).encode_to_vec();
            for v in variants(&body) {
                agrees_with_prost(seed, &v, decode(&v));
            }
        }
    }

    #[test]
    fn known_label_fields_decode_as_prost_does() {
        // The label fields of the series of a valid body are known when it, or any truncation
        // or corruption of it, is decoded again: the outcome, and each series' labels, are
        // prost's, and known series are marked, their labels not decoded with the request.
        for seed in 0..40 {
            let body = request(seed).encode_to_vec();
            let first = decode(&body).unwrap();
            let known: std::collections::HashMap<Vec<u8>, u64> = first
                .series
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((first.raw_labels_of(s)?.to_vec(), i as u64)))
                .collect();
            let again = decode_with(&body, |raw| known.get(raw).copied()).unwrap();
            for s in &again.series {
                assert_eq!(s.known.is_some(), s.raw_labels.is_some(), "seed {seed}");
                if s.known.is_some() {
                    assert!(s.labels.is_empty(), "seed {seed}");
                }
            }
            for v in variants(&body) {
                agrees_with_prost(seed, &v, decode_with(&v, |raw| known.get(raw).copied()));
            }
        }
    }
}
