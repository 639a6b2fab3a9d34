//! Remote write 1.0 (`prometheus.WriteRequest`) as prost messages: the series with their
//! labels and samples, and the extensions real senders emit (exemplars, metadata, native
//! histograms). These are the reference the copy-free decoder and the encoder are tested
//! against, and what tests and tools build requests from.

use prost::Message;

use crate::snappy::{self, SnappyError};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histograms: only counted (Strata does not store them yet); their fields are
    /// skipped.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<HistogramStub>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// A native histogram, decoded only far enough to know it is there.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramStub {}

/// Why a body is not a remote-write 1.0 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    #[error("the body is not a valid remote-write protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Decompresses a snappy body of at most `decoded_bytes_max` bytes and decodes it into prost's
/// owned messages: for tests and tools that read what a client sent (the server ingests with
/// [`super::decode`]).
pub fn decode_body(body: &[u8], decoded_bytes_max: usize) -> Result<WriteRequest, BodyError> {
    let raw = snappy::decompress(body, decoded_bytes_max)?;
    Ok(WriteRequest::decode(raw.as_slice())?)
}

/// A deterministic pseudo-random request for differential tests: labels (some values empty,
/// some not ASCII), samples (NaN payloads, -0.0, extreme timestamps), exemplars, histograms,
/// metadata.
#[cfg(test)]
pub(crate) fn arbitrary_request(seed: u64) -> WriteRequest {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut req = WriteRequest::default();
    for s in 0..(next() % 6) {
        let mut ts = TimeSeries::default();
        for l in 0..(next() % 5) {
            ts.labels.push(Label {
                name: format!("n{l}"),
                value: if next() % 4 == 0 {
                    String::new()
                } else {
                    format!("v{s}é{}", next() % 100)
                },
            });
        }
        for _ in 0..(next() % 4) {
            let value = match next() % 4 {
                0 => f64::from_bits(0x7ff0_0000_0000_0002),
                1 => -0.0,
                _ => f64::from_bits(next()),
            };
            let timestamp = match next() % 3 {
                0 => i64::MIN,
                1 => -(next() as i64 >> 3),
                _ => next() as i64,
            };
            ts.samples.push(Sample { value, timestamp });
        }
        if next() % 3 == 0 {
            ts.exemplars.push(Exemplar {
                labels: vec![Label {
                    name: "trace_id".into(),
                    value: format!("{:x}", next()),
                }],
                value: 1.5,
                timestamp: 7,
            });
        }
        if next() % 4 == 0 {
            ts.histograms.push(HistogramStub {});
        }
        req.timeseries.push(ts);
    }
    if next() % 2 == 0 {
        req.metadata.push(MetricMetadata {
            r#type: 1,
            metric_family_name: "m".into(),
            help: "h".into(),
            unit: String::new(),
        });
    }
    req
}
