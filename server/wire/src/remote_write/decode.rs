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
    pub labels: Range<usize>,
    pub samples: Range<usize>,
    pub exemplars: Range<usize>,
    /// Native histogram samples (counted, not decoded).
    pub histograms: usize,
}

/// A decoded request whose strings borrow from the body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Request<'a> {
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
pub fn decode(mut buf: &[u8]) -> Result<Request<'_>, DecodeError> {
    // Sized from the body so that a large request does not grow (and copy) its vectors a dozen
    // times: a label takes at least 6 bytes of the body (its key, length, and name's and
    // value's keys and lengths) and ~25 in practice, a series ~150, so these are upper
    // bounds for typical bodies, and untouched capacity costs address space, not memory.
    let mut out = Request {
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
                time_series(ts, &mut out, &mut raw_labels)?;
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
fn time_series<'a>(
    ts: &'a [u8],
    out: &mut Request<'a>,
    raw_labels: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<(), DecodeError> {
    let mut buf = ts;
    raw_labels.clear();
    let labels = out.labels.len();
    let samples = out.samples.len();
    let exemplars = out.exemplars.len();
    let mut histograms = 0;
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        match tag {
            1 => {
                expect(wire, WireType::LengthDelimited, "TimeSeries.labels")?;
                let l = delimited(&mut buf)?;
                raw_labels.push(label(l)?);
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
    label_strings(ts, raw_labels, &mut out.labels)?;
    out.series.push(Series {
        labels: labels..out.labels.len(),
        samples: samples..out.samples.len(),
        exemplars: exemplars..out.exemplars.len(),
        histograms,
    });
    Ok(())
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
                if tag == 1 {
                    name = bytes;
                } else {
                    value = bytes;
                }
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

    /// A request's series, labels and samples (values as bits), to compare decodings.
    type Contents = (Vec<Series>, Vec<(String, String)>, Vec<(i64, u64)>);

    fn bits(r: &Request<'_>) -> Contents {
        (
            r.series.clone(),
            r.labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            r.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
        )
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
        for (name, ts, ok) in [
            ("apart", apart, true),
            ("split", split, false),
            ("bad value", bad_value, false),
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

    #[test]
    fn refuses_what_prost_refuses() {
        // Every truncation and every single-byte corruption of some valid bodies: the two
        // decoders agree on success, and on content when both succeed.
        for seed in 0..40 {
            let body = request(seed).encode_to_vec();
            let mut variants: Vec<Vec<u8>> = (0..body.len()).map(|n| body[..n].to_vec()).collect();
            for i in 0..body.len() {
                for b in [0x00, 0x01, 0x02, 0x05, 0x0a, 0x12, 0x1a, 0x80, 0xff] {
                    let mut v = body.clone();
                    v[i] = b;
                    variants.push(v);
                }
            }
            for v in variants {
                let fast = decode(&v);
                let slow = WriteRequest::decode(v.as_slice());
                assert_eq!(
                    fast.is_ok(),
                    slow.is_ok(),
                    "seed {seed}: {v:02x?}: {fast:?} vs {slow:?}"
                );
                if let (Ok(fast), Ok(slow)) = (fast, slow) {
                    assert_eq!(bits(&fast), bits(&Request::view(&slow)));
                }
            }
        }
    }
}
