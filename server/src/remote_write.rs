//! Prometheus remote write 1.0: the request messages, decoding them within limits, and
//! appending their samples to the engine.
//!
//! The messages are declared here with `prost` by hand (no `protoc`); field numbers are the
//! wire contract of `prometheus/prompb` (`WriteRequest`, `TimeSeries`, `Label`, `Sample`, and
//! the extensions real senders emit: exemplars, metadata, native histograms). Decoding is
//! bounded before anything is allocated by size: snappy's declared length is checked against
//! the cap first (an 8-byte body can declare gigabytes).
//!
//! What a sender gets back (`docs/reference` of the remote-write spec and Prometheus's own
//! receiver): 204 when every sample is durable; 400 with a readable message for what a retry
//! cannot fix (undecodable body, invalid labels, out-of-order or conflicting samples — the
//! valid samples of the request are kept); 429 when the active-series limit is reached; 503
//! when the disk is full or the engine cannot write, so the sender retries and nothing is lost.

use std::fmt;

use prost::Message;
use strata_engine::labels::Labels;
use strata_engine::{AppendError, CommitError, Db};

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
    /// Native histograms: only counted (not stored yet); their fields are skipped.
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

/// Bounds on what one request may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes a request body may take (compressed).
    pub body_bytes_max: usize,
    /// The most bytes the body may decompress to.
    pub decoded_bytes_max: usize,
    /// The most series one request may carry.
    pub series_per_request_max: usize,
    /// The most labels one series may have.
    pub labels_per_series_max: usize,
    /// The longest label name, in bytes.
    pub label_name_bytes_max: usize,
    /// The longest label value, in bytes.
    pub label_value_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 32 << 20,
            decoded_bytes_max: 128 << 20,
            series_per_request_max: 1_000_000,
            labels_per_series_max: 64,
            label_name_bytes_max: 1024,
            label_value_bytes_max: 16 * 1024,
        }
    }
}

/// Why a request was not (wholly) stored, and so which status the sender gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the request or some of its data can never be stored; a retry cannot help.
    BadData(String),
    /// 429: a limit that may clear later (active series).
    TooMany(String),
    /// 503: the disk is full or the engine failed to write; retry later.
    Unavailable(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::BadData(m) | Rejection::TooMany(m) | Rejection::Unavailable(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Decompresses (snappy block format) and decodes a request body, within `limits`.
pub fn decode(body: &[u8], limits: &Limits) -> Result<WriteRequest, Rejection> {
    let bad = |m: String| Rejection::BadData(m);
    let declared = snap::raw::decompress_len(body).map_err(|e| {
        bad(format!(
            "the body is not snappy-compressed (block format): {e}"
        ))
    })?;
    if declared > limits.decoded_bytes_max {
        return Err(bad(format!(
            "the body declares {declared} bytes once decompressed, more than the {} allowed",
            limits.decoded_bytes_max
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| bad(format!("the body is not valid snappy (block format): {e}")))?;
    let request = WriteRequest::decode(raw.as_slice()).map_err(|e| {
        bad(format!(
            "the body is not a valid remote-write protobuf: {e}"
        ))
    })?;
    if request.timeseries.len() > limits.series_per_request_max {
        return Err(bad(format!(
            "the request carries {} series, more than the {} allowed",
            request.timeseries.len(),
            limits.series_per_request_max
        )));
    }
    Ok(request)
}

/// What a request stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub samples: u64,
    pub histograms: u64,
    pub exemplars: u64,
}

/// The labels of a series, checked against `limits` and made canonical (sorted, empty values
/// dropped).
fn series_labels(ts: &TimeSeries, limits: &Limits) -> Result<Labels, String> {
    if ts.labels.len() > limits.labels_per_series_max {
        return Err(format!(
            "a series has {} labels, more than the {} allowed",
            ts.labels.len(),
            limits.labels_per_series_max
        ));
    }
    for l in &ts.labels {
        if l.name.len() > limits.label_name_bytes_max {
            return Err(format!(
                "label name {:?}… is {} bytes long, more than the {} allowed",
                l.name.chars().take(32).collect::<String>(),
                l.name.len(),
                limits.label_name_bytes_max
            ));
        }
        if l.value.len() > limits.label_value_bytes_max {
            return Err(format!(
                "the value of label {:?} is {} bytes long, more than the {} allowed",
                l.name,
                l.value.len(),
                limits.label_value_bytes_max
            ));
        }
    }
    let labels =
        Labels::new(ts.labels.iter().map(|l| (&l.name, &l.value))).map_err(|e| e.to_string())?;
    if labels.get("__name__").is_none() {
        return Err(format!(
            "series {labels} has no metric name (an empty or missing __name__ label)"
        ));
    }
    Ok(labels)
}

/// Appends every sample of `request` and commits them. Valid samples are stored even when
/// others are rejected (the rejection then says what was dropped and why); the first value is
/// what was stored either way.
pub fn ingest(
    db: &Db,
    request: &WriteRequest,
    limits: &Limits,
) -> (Written, Result<(), Rejection>) {
    let mut app = db.appender();
    let mut dropped: Vec<String> = Vec::new();
    let mut dropped_samples = 0u64;
    let mut too_many: Option<String> = None;
    let mut histograms = 0u64;
    for ts in &request.timeseries {
        histograms += ts.histograms.len() as u64;
        if ts.samples.is_empty() {
            continue;
        }
        let labels = match series_labels(ts, limits) {
            Ok(l) => l,
            Err(reason) => {
                dropped_samples += ts.samples.len() as u64;
                dropped.push(reason);
                continue;
            }
        };
        let mut series_ref = None;
        for s in &ts.samples {
            let result = match series_ref {
                Some(r) => app.append_ref(r, s.timestamp, s.value),
                None => app
                    .append(&labels, s.timestamp, s.value)
                    .map(|r| series_ref = Some(r)),
            };
            match result {
                Ok(()) => {}
                Err(e @ AppendError::LimitExceeded { .. }) => {
                    dropped_samples += 1;
                    too_many.get_or_insert_with(|| e.to_string());
                }
                Err(AppendError::Closed) => {
                    return (
                        Written::default(),
                        Err(Rejection::Unavailable(
                            "the database is shutting down; retry".into(),
                        )),
                    );
                }
                Err(e) => {
                    dropped_samples += 1;
                    dropped.push(e.to_string());
                }
            }
        }
    }
    let committed = app.len() as u64;
    let stats = match app.commit() {
        Ok(stats) => stats,
        Err(e) => return (Written::default(), Err(unavailable(&e))),
    };
    let written = Written {
        samples: stats.samples + stats.duplicates,
        histograms: 0,
        exemplars: 0,
    };
    debug_assert_eq!(stats.samples, committed);
    if histograms > 0 {
        dropped.push(format!(
            "{histograms} native histogram samples were not stored: native histograms are not supported yet"
        ));
    }
    if let Some(reason) = too_many {
        let message = format!(
            "{dropped_samples} samples were not stored ({} stored): {reason}",
            written.samples
        );
        return (written, Err(Rejection::TooMany(message)));
    }
    if !dropped.is_empty() {
        let shown: Vec<&str> = dropped.iter().take(3).map(String::as_str).collect();
        let message = format!(
            "{dropped_samples} samples were rejected ({} stored); first reasons: {}",
            written.samples,
            shown.join("; ")
        );
        return (written, Err(Rejection::BadData(message)));
    }
    (written, Ok(()))
}

fn unavailable(e: &CommitError) -> Rejection {
    Rejection::Unavailable(if e.is_disk_full() {
        format!("the disk is full; nothing of this request was stored, retry later: {e}")
    } else {
        format!("storing the samples failed; nothing of this request was stored, retry: {e}")
    })
}
