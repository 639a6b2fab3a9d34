//! Remote write 1.0 written one series at a time, straight into the request's bytes: the
//! encoder the load generator sends with and the tests build requests with.
//!
//! A series' labels are encoded once ([`EncodedLabels`]) and copied into every series entry
//! that carries them; a sample ([`RequestEncoder::sample`]) then costs that copy and a dozen
//! bytes for its value and timestamp. No prost struct is built, so a generator writes millions
//! of samples a second on one core. The layout (every length is known before its bytes are written):
//!
//! ```text
//! WriteRequest  = { 0x0a len TimeSeries }*                       field 1, repeated
//! TimeSeries    = { 0x0a len Label }* { 0x12 len Sample }* { 0x22 0x00 }*
//!                   labels (1)          samples (2)          histograms (4), empty stubs
//! Label         = 0x0a len name  0x12 len value                  strings
//! Sample        = 0x09 value(8 bytes LE)  0x10 varint(timestamp) double, int64
//! ```
//!
//! [`Fields`] chooses between proto3's canonical form (what prost and Prometheus write: a field
//! holding its default is left out, so -0.0, equal to 0.0, arrives as +0.0) and every field
//! written (a -0.0 arrives as -0.0: what a bit-exact test needs). Exemplars and metadata are
//! not written here; tests that need them encode prost's [`super::v1`] messages.

use crate::protobuf::{
    FIXED64, LEN, VARINT, key, len_field_len, put_len_key, put_varint, varint_len,
};
use crate::snappy;

use super::v1::TimeSeries;

// Field keys of the messages written, as bytes.
const REQUEST_SERIES: u8 = key(1, LEN);
const SERIES_LABEL: u8 = key(1, LEN);
const SERIES_SAMPLE: u8 = key(2, LEN);
const SERIES_HISTOGRAM: u8 = key(4, LEN);
const LABEL_NAME: u8 = key(1, LEN);
const LABEL_VALUE: u8 = key(2, LEN);
const SAMPLE_VALUE: u8 = key(1, FIXED64);
const SAMPLE_TIMESTAMP: u8 = key(2, VARINT);

/// Which fields are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// proto3's canonical form, byte for byte what prost's `encode_to_vec` gives: an empty
    /// string, a value equal to 0.0 (so -0.0 too) and a zero timestamp are left out.
    Canonical,
    /// Every field, defaults included: each sample's value bits reach the receiver.
    Every,
}

/// A series' labels encoded as `TimeSeries` field 1 entries, to be copied into every series
/// entry that carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedLabels {
    fields: Fields,
    bytes: Vec<u8>,
}

impl EncodedLabels {
    /// No labels yet, to be written as `fields` says.
    pub fn new(fields: Fields) -> EncodedLabels {
        EncodedLabels {
            fields,
            bytes: Vec::new(),
        }
    }

    /// `pairs` encoded (in the order given: sort them first if the receiver should not have
    /// to).
    pub fn of<'a>(
        fields: Fields,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> EncodedLabels {
        let mut labels = EncodedLabels::new(fields);
        labels.encode(pairs);
        labels
    }

    /// Replaces the labels with `pairs`, keeping the buffer.
    pub fn encode<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.bytes.clear();
        for (name, value) in pairs {
            let len = string_len(self.fields, name) + string_len(self.fields, value);
            put_len_key(SERIES_LABEL, len, &mut self.bytes);
            string(self.fields, LABEL_NAME, name, &mut self.bytes);
            string(self.fields, LABEL_VALUE, value, &mut self.bytes);
        }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A `prometheus.WriteRequest` being written: call [`RequestEncoder::series`] for each series
/// entry, then take [`RequestEncoder::compress`] (the body to send) and [`RequestEncoder::clear`]
/// for the next request. The buffer is kept between requests.
#[derive(Debug, Clone)]
pub struct RequestEncoder {
    fields: Fields,
    raw: Vec<u8>,
    series: usize,
}

impl RequestEncoder {
    /// An empty request whose fields are written as `fields` says.
    pub fn new(fields: Fields) -> RequestEncoder {
        RequestEncoder::with_capacity(fields, 0)
    }

    /// An empty request with room for `bytes` uncompressed bytes.
    pub fn with_capacity(fields: Fields, bytes: usize) -> RequestEncoder {
        RequestEncoder {
            fields,
            raw: Vec::with_capacity(bytes),
            series: 0,
        }
    }

    /// Appends one `TimeSeries` of `labels` with one sample at `t` (ms): what a generator
    /// writes for every sample, each length computed once.
    #[inline]
    pub fn sample(&mut self, labels: &EncodedLabels, t: i64, v: f64) {
        debug_assert_eq!(
            labels.fields, self.fields,
            "labels encoded for another form"
        );
        let sample_len = self.sample_len(t, v);
        let len = labels.bytes.len() + len_field_len(sample_len);
        put_len_key(REQUEST_SERIES, len, &mut self.raw);
        self.raw.extend_from_slice(&labels.bytes);
        put_len_key(SERIES_SAMPLE, sample_len, &mut self.raw);
        self.sample_fields(t, v);
        self.series += 1;
    }

    /// Appends one `TimeSeries` of `labels` with `samples` (`(timestamp ms, value)`).
    #[inline]
    pub fn series(&mut self, labels: &EncodedLabels, samples: &[(i64, f64)]) {
        self.series_with_histograms(labels, samples, 0);
    }

    /// Appends one `TimeSeries` of `labels` with `samples` and `histograms` native histograms,
    /// written as empty messages (enough for a receiver to count them).
    #[inline]
    pub fn series_with_histograms(
        &mut self,
        labels: &EncodedLabels,
        samples: &[(i64, f64)],
        histograms: usize,
    ) {
        debug_assert_eq!(
            labels.fields, self.fields,
            "labels encoded for another form"
        );
        let mut len = labels.bytes.len() + 2 * histograms;
        for &(t, v) in samples {
            len += len_field_len(self.sample_len(t, v));
        }
        put_len_key(REQUEST_SERIES, len, &mut self.raw);
        self.raw.extend_from_slice(&labels.bytes);
        for &(t, v) in samples {
            put_len_key(SERIES_SAMPLE, self.sample_len(t, v), &mut self.raw);
            self.sample_fields(t, v);
        }
        for _ in 0..histograms {
            put_len_key(SERIES_HISTOGRAM, 0, &mut self.raw);
        }
        self.series += 1;
    }

    /// Appends one prost `TimeSeries`: its labels, samples and (as empty messages) native
    /// histograms.
    ///
    /// # Panics
    ///
    /// If it has exemplars: they are not written here.
    pub fn time_series(&mut self, ts: &TimeSeries) {
        assert!(
            ts.exemplars.is_empty(),
            "exemplars are not written by this encoder: encode the prost message"
        );
        let labels = EncodedLabels::of(
            self.fields,
            ts.labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        );
        let samples: Vec<(i64, f64)> = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
        self.series_with_histograms(&labels, &samples, ts.histograms.len());
    }

    /// Series entries written since the last [`RequestEncoder::clear`].
    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Whether nothing was written since the last [`RequestEncoder::clear`].
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The request's protobuf bytes (before compression).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The request as a snappy block: the body to send.
    pub fn compress(&self) -> Vec<u8> {
        snappy::compress(&self.raw)
    }

    /// Empties the request, keeping its buffer.
    pub fn clear(&mut self) {
        self.raw.clear();
        self.series = 0;
    }

    /// A `Sample`'s fields (its key and length written by the caller).
    #[inline]
    fn sample_fields(&mut self, t: i64, v: f64) {
        if self.fields == Fields::Every || v != 0.0 {
            self.raw.push(SAMPLE_VALUE);
            self.raw.extend_from_slice(&v.to_le_bytes());
        }
        if self.fields == Fields::Every || t != 0 {
            self.raw.push(SAMPLE_TIMESTAMP);
            put_varint(t as u64, &mut self.raw);
        }
    }

    #[inline]
    fn sample_len(&self, t: i64, v: f64) -> usize {
        let every = self.fields == Fields::Every;
        let value = if every || v != 0.0 { 9 } else { 0 };
        let timestamp = if every || t != 0 {
            1 + varint_len(t as u64)
        } else {
            0
        };
        value + timestamp
    }
}

fn string_len(fields: Fields, s: &str) -> usize {
    if fields == Fields::Canonical && s.is_empty() {
        0
    } else {
        len_field_len(s.len())
    }
}

fn string(fields: Fields, key: u8, s: &str, out: &mut Vec<u8>) {
    if fields == Fields::Every || !s.is_empty() {
        put_len_key(key, s.len(), out);
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;
    use crate::remote_write::decode::decode;
    use crate::remote_write::v1::{Label, Sample, WriteRequest, arbitrary_request};

    fn encode(fields: Fields, request: &WriteRequest) -> Vec<u8> {
        let mut e = RequestEncoder::new(fields);
        for ts in &request.timeseries {
            e.time_series(ts);
        }
        assert_eq!(e.series_count(), request.timeseries.len());
        e.raw().to_vec()
    }

    /// Every field written with prost's primitives, the way the tests' exact encoder and the
    /// load generator wrote requests before this encoder was shared.
    fn every_field_by_prost(request: &WriteRequest) -> Vec<u8> {
        use prost::encoding::{bytes, double, int64, string};
        let mut body = Vec::new();
        for ts in &request.timeseries {
            let mut out = Vec::new();
            for l in &ts.labels {
                let mut label = Vec::new();
                string::encode(1, &l.name, &mut label);
                string::encode(2, &l.value, &mut label);
                bytes::encode(1, &label, &mut out);
            }
            for s in &ts.samples {
                let mut sample = Vec::new();
                double::encode(1, &s.value, &mut sample);
                int64::encode(2, &s.timestamp, &mut sample);
                bytes::encode(2, &sample, &mut out);
            }
            for _ in &ts.histograms {
                bytes::encode(4, &Vec::new(), &mut out);
            }
            bytes::encode(1, &out, &mut body);
        }
        body
    }

    /// A request of what this encoder writes: `arbitrary_request` without exemplars and
    /// metadata, plus a series of defaults (empty strings, zero values and timestamps).
    fn series_only(seed: u64) -> WriteRequest {
        let mut r = arbitrary_request(seed);
        r.metadata.clear();
        for ts in &mut r.timeseries {
            ts.exemplars.clear();
        }
        if seed.is_multiple_of(3) {
            r.timeseries.push(TimeSeries {
                labels: vec![
                    Label::default(),
                    Label {
                        name: "n".into(),
                        value: String::new(),
                    },
                ],
                samples: vec![
                    Sample::default(),
                    Sample {
                        value: -0.0,
                        timestamp: 0,
                    },
                ],
                ..TimeSeries::default()
            });
        }
        r
    }

    #[test]
    fn canonical_is_what_prost_writes() {
        for seed in 0..2000 {
            let request = series_only(seed);
            assert_eq!(
                encode(Fields::Canonical, &request),
                request.encode_to_vec(),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn every_writes_each_field_and_decodes_bit_exact() {
        for seed in 0..2000 {
            let request = series_only(seed);
            let raw = encode(Fields::Every, &request);
            assert_eq!(raw, every_field_by_prost(&request), "seed {seed}");
            let decoded = WriteRequest::decode(raw.as_slice()).unwrap();
            assert_eq!(decoded.timeseries.len(), request.timeseries.len());
            for (got, sent) in decoded.timeseries.iter().zip(&request.timeseries) {
                assert_eq!(got.labels, sent.labels, "seed {seed}");
                let bits = |s: &[Sample]| -> Vec<(i64, u64)> {
                    s.iter().map(|s| (s.timestamp, s.value.to_bits())).collect()
                };
                assert_eq!(bits(&got.samples), bits(&sent.samples), "seed {seed}");
                assert_eq!(got.histograms.len(), sent.histograms.len());
            }
        }
    }

    #[test]
    fn cached_labels_and_clear_give_the_same_bytes() {
        for fields in [Fields::Every, Fields::Canonical] {
            let mut e = RequestEncoder::new(fields);
            let labels = EncodedLabels::of(fields, [("__name__", "up"), ("job", ""), ("", "x")]);
            e.series(&labels, &[(1_000, 1.0)]);
            e.series(&labels, &[(0, -0.0)]);
            let first = e.raw().to_vec();
            let body = e.compress();
            e.clear();
            assert!(e.is_empty() && e.series_count() == 0);
            e.sample(&labels, 1_000, 1.0);
            e.sample(&labels, 0, -0.0);
            assert_eq!(
                e.raw(),
                first,
                "{fields:?}: one sample at a time writes what a slice of one writes"
            );
            assert_eq!(crate::snappy::decompress(&body, 1 << 20).unwrap(), first);
            let request = WriteRequest::decode(first.as_slice()).unwrap();
            assert_eq!(request.timeseries.len(), 2);
            assert_eq!(request.timeseries[0].samples[0].timestamp, 1_000);
            let zero = request.timeseries[1].samples[0].value;
            assert_eq!(
                zero.is_sign_negative(),
                fields == Fields::Every,
                "{fields:?}"
            );
            if fields == Fields::Canonical {
                let prost = WriteRequest {
                    timeseries: request.timeseries.clone(),
                    metadata: Vec::new(),
                };
                assert_eq!(prost.encode_to_vec(), first);
            }
        }
    }

    proptest! {
        /// Any series round-trips through the encoder and the copy-free decoder, bit for bit.
        #[test]
        fn round_trips_through_the_decoder(
            series in prop::collection::vec(
                (
                    prop::collection::vec(("[a-z_]{0,8}", "\\PC{0,8}"), 0..5),
                    prop::collection::vec((any::<i64>(), any::<u64>()), 0..5),
                    0usize..3,
                ),
                0..6,
            )
        ) {
            let mut e = RequestEncoder::new(Fields::Every);
            let mut labels = EncodedLabels::new(Fields::Every);
            for (pairs, samples, histograms) in &series {
                labels.encode(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                let samples: Vec<(i64, f64)> =
                    samples.iter().map(|&(t, v)| (t, f64::from_bits(v))).collect();
                e.series_with_histograms(&labels, &samples, *histograms);
            }
            let request = decode(e.raw()).unwrap();
            prop_assert_eq!(request.series.len(), series.len());
            for (s, (pairs, samples, histograms)) in request.series.iter().zip(&series) {
                let got: Vec<(&str, &str)> = request.labels_of(s).to_vec();
                let sent: Vec<(&str, &str)> =
                    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                prop_assert_eq!(got, sent);
                let got: Vec<(i64, u64)> =
                    request.samples_of(s).iter().map(|&(t, v)| (t, v.to_bits())).collect();
                prop_assert_eq!(&got, samples);
                prop_assert_eq!(s.histograms, *histograms);
            }
        }
    }
}
