//! The malformed-input matrix against the real `strata` binary: one row per kind of bad (or
//! unusual but valid) remote-write request, each with the status and the message the sender
//! must get, sent over a real socket.
//!
//! Before the matrix a known set of valid samples is written; after every row the server must
//! still answer `/-/healthy`; after the whole matrix the server is stopped with SIGTERM and the
//! database opened in this process: the samples written first and every row's accepted samples
//! must be there bit for bit, and a row's rejected samples must not. Every series of a row
//! carries the label `case="<row name>"`, so what a row stored is found by that label alone.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, Options};
use strata_testkit::time::now_ms;
use strata_tests::server::{self, Server};
use strata_wire::protobuf::put_varint;
use strata_wire::remote_write::v1::{
    HistogramStub, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
};
use strata_wire::remote_write::v2;

/// Prometheus's stale marker: a NaN with a payload that must survive bit for bit.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// A quiet NaN with a payload of its own (not the one `f64::NAN` has).
const PAYLOAD_NAN: u64 = 0x7ff8_0000_0000_beef;
/// The `Content-Type` of a remote-write 2.0 request.
const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// An HTTP request to send, whole.
struct Req {
    method: &'static str,
    content_type: Option<&'static str>,
    content_encoding: Option<&'static str>,
    body: Vec<u8>,
}

/// One row of the matrix.
struct Row {
    name: &'static str,
    request: Req,
    status: u16,
    /// A substring the answer's body must contain (the sender's only clue).
    message: &'static str,
    /// Every sample the row must leave stored under `case="<name>"`: labels (without `case`)
    /// → `(t, value)`.
    kept: Vec<Kept>,
    /// The `X-Prometheus-Remote-Write-Samples-Written` count the answer must carry, if checked.
    written: Option<u64>,
}

impl Row {
    /// A row that must be answered `status` with `message` in the body and store nothing.
    fn new(name: &'static str, request: Req, status: u16, message: &'static str) -> Row {
        Row {
            name,
            request,
            status,
            message,
            kept: Vec::new(),
            written: None,
        }
    }

    /// The row must leave `samples` stored in the series `labels` (plus `case`).
    fn keep(mut self, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Row {
        self.kept.push((owned(labels), samples.to_vec()));
        self
    }

    /// The answer must count `n` samples written.
    fn written(mut self, n: u64) -> Row {
        self.written = Some(n);
        self
    }
}

/// What the server answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    /// `X-Prometheus-Remote-Write-Samples-Written`, if sent.
    written: Option<u64>,
    /// The `Connection` header, if sent.
    connection: Option<String>,
}

/// A series a row must leave stored: its labels (without `case`) and samples.
type Kept = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Owned label pairs.
fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn series(case: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut all: Vec<Label> = labels
        .iter()
        .map(|&(name, value)| Label {
            name: name.into(),
            value: value.into(),
        })
        .collect();
    all.push(Label {
        name: "case".into(),
        value: case.into(),
    });
    TimeSeries {
        labels: all,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..TimeSeries::default()
    }
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    strata_wire::snappy::compress(raw)
}

/// A remote-write 1.0 POST carrying `body` as is.
fn raw(body: Vec<u8>) -> Req {
    Req {
        method: "POST",
        content_type: Some("application/x-protobuf"),
        content_encoding: Some("snappy"),
        body,
    }
}

/// A well-formed remote-write 1.0 POST of `series`.
fn write(series: &[TimeSeries]) -> Req {
    raw(snappy(&server::encode_exact(series)))
}

fn send(agent: &ureq::Agent, url: &str, req: &Req) -> Answer {
    let url = format!("{url}/api/v1/write");
    let result = match req.method {
        "GET" => agent.get(&url).call(),
        "POST" => {
            let mut r = agent.post(&url);
            if let Some(ct) = req.content_type {
                r = r.header("Content-Type", ct);
            }
            if let Some(enc) = req.content_encoding {
                r = r.header("Content-Encoding", enc);
            }
            let version = if req.content_type == Some(V2_CONTENT_TYPE) {
                "2.0.0"
            } else {
                "0.1.0"
            };
            r.header("X-Prometheus-Remote-Write-Version", version)
                .send(&req.body[..])
        }
        m => panic!("method {m} is not used here"),
    };
    match result {
        Ok(mut r) => Answer {
            status: r.status().as_u16(),
            written: r
                .headers()
                .get("x-prometheus-remote-write-samples-written")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            connection: r
                .headers()
                .get("connection")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: r.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(e) => Answer {
            status: 0,
            body: format!("transport error: {e}"),
            written: None,
            connection: None,
        },
    }
}

/// Rows whose body cannot be decoded at all, or is too big to be.
fn body_rows(t: i64) -> Vec<Row> {
    let valid = server::encode_exact(&[series(
        "truncated protobuf",
        &[("__name__", "m")],
        &[(t, 1.0)],
    )]);
    // Snappy's header: the decompressed length as an unsigned LEB128 varint.
    let declaring = |n: u64| {
        let mut b = Vec::new();
        put_varint(n, &mut b);
        b.extend_from_slice(&[0x00, 0x01, 0x02, 0x03]);
        b
    };
    let row = |name, request, message| Row::new(name, request, 400, message).written(0);
    vec![
        row(
            "truncated protobuf",
            raw(snappy(&valid[..valid.len() - 5])),
            "the body is not a valid remote-write protobuf",
        ),
        row(
            "garbage instead of snappy",
            raw(b"\x0athis is not snappy, just some text".to_vec()),
            "the body is not valid snappy (block format)",
        ),
        row(
            "protobuf sent without snappy",
            raw(valid.clone()),
            "the body is not valid snappy (block format)",
        ),
        row(
            "empty body",
            raw(vec![]),
            "the body is not valid snappy (block format): snappy: corrupt input (empty)",
        ),
        // 2^32 does not fit snappy's 32-bit length: the header itself is rejected.
        row(
            "snappy declaring 4 GiB",
            raw(declaring(1 << 32)),
            "the body is not snappy-compressed (block format)",
        ),
        row(
            "snappy declaring 4 GiB - 1",
            raw(declaring((1 << 32) - 1)),
            "the body declares 4294967295 bytes once decompressed, more than the 134217728 allowed",
        ),
        Row::new(
            "body over the 32 MiB cap",
            raw(vec![0u8; 33 << 20]),
            413,
            "the body is larger than the 33554432 bytes allowed",
        )
        .written(0),
    ]
}

/// `extra` as label pairs, plus the metric name `m`.
fn with_name(extra: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut p: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    p.push(("__name__", "m"));
    p
}

/// Rows about labels.
fn label_rows(t: i64) -> Vec<Row> {
    let huge = "v".repeat(1 << 20);
    let long_name = "n".repeat(1025);
    let extra = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("l{i:02}"), format!("{i}")))
            .collect()
    };
    // `__name__` and `case` plus 62 or 63 more.
    let (at_cap, over_cap) = (extra(62), extra(63));
    let bad = |name, labels: &[(&str, &str)], message| {
        Row::new(
            name,
            write(&[series(name, labels, &[(t, 1.0)])]),
            400,
            message,
        )
        .written(0)
    };
    let mut at_cap_kept = with_name(&at_cap);
    at_cap_kept.sort_unstable();
    vec![
        bad(
            "duplicate label names",
            &[("__name__", "m"), ("job", "a"), ("job", "b")],
            "1 samples were rejected (0 stored); first reasons: label name \"job\" occurs more \
             than once",
        ),
        bad(
            "empty metric name",
            &[("__name__", ""), ("job", "a")],
            "1 samples were rejected (0 stored); first reasons: series {case=\"empty metric \
             name\", job=\"a\"} has no metric name (an empty or missing __name__ label)",
        ),
        bad(
            "missing metric name",
            &[("job", "a")],
            "has no metric name (an empty or missing __name__ label)",
        ),
        bad(
            "empty label name",
            &[("__name__", "m"), ("", "a")],
            "a label has an empty name",
        ),
        bad(
            "1 MiB label value",
            &[("__name__", "m"), ("big", &huge)],
            "the value of label \"big\" is 1048576 bytes long, more than the 16384 allowed",
        ),
        bad(
            "1025-byte label name",
            &[("__name__", "m"), (&long_name, "a")],
            "is 1025 bytes long, more than the 1024 allowed",
        ),
        bad(
            "65 labels",
            &with_name(&over_cap),
            "a series has 65 labels, more than the 64 allowed",
        ),
        Row::new(
            "64 labels",
            write(&[series("64 labels", &with_name(&at_cap), &[(t, 64.0)])]),
            204,
            "",
        )
        .keep(&at_cap_kept, &[(t, 64.0)])
        .written(1),
        // Accepted and stored as the canonical label set, sorted by name (`Labels` holds
        // nothing else; the check after the restart compares whole label sets).
        Row::new(
            "unsorted labels",
            write(&[series(
                "unsorted labels",
                &[("zeta", "z"), ("__name__", "m"), ("alpha", "a")],
                &[(t, 7.0)],
            )]),
            204,
            "",
        )
        .keep(
            &[("alpha", "a"), ("__name__", "m"), ("zeta", "z")],
            &[(t, 7.0)],
        )
        .written(1),
        Row::new(
            "empty label value dropped",
            write(&[series(
                "empty label value dropped",
                &[("__name__", "m"), ("gone", "")],
                &[(t, 8.0)],
            )]),
            204,
            "",
        )
        .keep(&[("__name__", "m")], &[(t, 8.0)])
        .written(1),
    ]
}

/// A row of one valid series `{__name__="m"}` with `samples`, all of which must be stored.
fn accepted(name: &'static str, samples: &[(i64, f64)]) -> Row {
    Row::new(
        name,
        write(&[series(name, &[("__name__", "m")], samples)]),
        204,
        "",
    )
    .keep(&[("__name__", "m")], samples)
    .written(samples.len() as u64)
}

/// Rows about sample values and timestamps.
fn sample_rows(t: i64) -> Vec<Row> {
    let future = t + 60 * 60 * 1000;
    let mixed = "one bad series among good ones";
    let ooo = "out of order beyond the window";
    vec![
        accepted("NaN with a payload", &[(t, f64::from_bits(PAYLOAD_NAN))]),
        accepted("+Inf", &[(t, f64::INFINITY)]),
        accepted("-Inf", &[(t, f64::NEG_INFINITY)]),
        accepted("stale marker", &[(t, f64::from_bits(STALE_NAN))]),
        accepted("negative zero", &[(t, -0.0)]),
        accepted(
            "extreme finite values",
            &[(t - 1, f64::MAX), (t, f64::MIN_POSITIVE)],
        ),
        Row::new(
            "far-future timestamp",
            write(&[series(
                "far-future timestamp",
                &[("__name__", "m")],
                &[(future, 1.0)],
            )]),
            400,
            "is more than 600000 ms ahead of the current time",
        )
        .written(0),
        // Five minutes ahead is within the engine's default tolerance of ten.
        accepted("timestamp 5 min ahead", &[(t + 5 * 60 * 1000, 5.0)]),
        // 400, as Prometheus answers "out of bounds": the server refuses samples older than
        // the retention time (15 days by default), which would be deleted at once.
        Row::new(
            "negative timestamps",
            write(&[series(
                "negative timestamps",
                &[("__name__", "m")],
                &[(-86_400_000, 1.5), (-1, 2.5)],
            )]),
            400,
            "2 samples were rejected (0 stored); first reasons: m{case=\"negative timestamps\"}: \
             sample at -86400000 is older than the retention time",
        )
        .written(0),
        Row::new(
            "timestamp 20 days old",
            write(&[series(
                "timestamp 20 days old",
                &[("__name__", "m")],
                &[(t - 20 * 86_400_000, 3.5), (t, 4.5)],
            )]),
            400,
            "1 samples were rejected (1 stored); first reasons: m{case=\"timestamp 20 days \
             old\"}: sample at",
        )
        .keep(&[("__name__", "m")], &[(t, 4.5)])
        .written(1),
        Row::new(
            ooo,
            write(&[series(
                ooo,
                &[("__name__", "m")],
                &[(t, 1.0), (t - 20 * 60 * 1000, 2.0)],
            )]),
            400,
            "1 samples were rejected (1 stored); first reasons: m{case=\"out of order beyond the \
             window\"}: sample at",
        )
        .keep(&[("__name__", "m")], &[(t, 1.0)])
        .written(1),
        Row::new(
            mixed,
            write(&[
                series(mixed, &[("__name__", "m"), ("i", "1")], &[(t, 1.0)]),
                series(mixed, &[("__name__", "")], &[(t, 2.0)]),
                series(mixed, &[("__name__", "m"), ("i", "3")], &[(t, 3.0)]),
            ]),
            400,
            "1 samples were rejected (2 stored); first reasons: series",
        )
        .keep(&[("__name__", "m"), ("i", "1")], &[(t, 1.0)])
        .keep(&[("__name__", "m"), ("i", "3")], &[(t, 3.0)])
        .written(2),
    ]
}

/// Rows about the baseline's samples and the request's shape.
fn shape_rows(baseline: &[TimeSeries]) -> Vec<Row> {
    let mut conflicting = baseline[0].clone();
    // Baseline sample 3 of series 0 is 3.25; the same timestamp with another value.
    conflicting.samples = vec![conflicting.samples[3].clone()];
    conflicting.samples[0].value = 4.25;
    let mut histogram = series("native histogram", &[("__name__", "h")], &[]);
    histogram.histograms.push(HistogramStub {});
    let metadata_only = WriteRequest {
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "m".into(),
            help: "help".into(),
            unit: String::new(),
        }],
        ..WriteRequest::default()
    };
    vec![
        Row::new(
            "conflicting value at a stored timestamp",
            write(&[conflicting]),
            400,
            "1 samples were rejected (0 stored); first reasons: baseline{",
        )
        .written(0),
        // A retry of what is stored is acknowledged (and counted as written) without
        // storing anything twice.
        Row::new("identical resend of the baseline", write(baseline), 204, "").written(50),
        Row::new(
            "native histogram",
            write(&[histogram]),
            400,
            "1 native histogram samples were not stored (0 float samples stored): native \
             histograms are not supported yet",
        ),
        Row::new(
            "metadata only",
            raw(snappy(&prost::Message::encode_to_vec(&metadata_only))),
            204,
            "",
        )
        .written(0),
        Row::new("no series at all", raw(snappy(&[])), 204, "").written(0),
    ]
}

/// Rows about the HTTP envelope: method, `Content-Type`, `Content-Encoding`.
fn envelope_rows(t: i64) -> Vec<Row> {
    let with = |name: &'static str, content_type, content_encoding| Req {
        method: "POST",
        content_type,
        content_encoding,
        body: write(&[series(name, &[("__name__", "m")], &[(t, 1.0)])]).body,
    };
    let refused = |name, content_type, content_encoding, message| {
        Row::new(
            name,
            with(name, content_type, content_encoding),
            415,
            message,
        )
        .written(0)
    };
    let v1_proto = "1.0 proto, no Content-Encoding";
    let v1 = Row::new(
        v1_proto,
        with(
            v1_proto,
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            None,
        ),
        204,
        "",
    )
    .keep(&[("__name__", "m")], &[(t, 1.0)])
    .written(1);
    vec![
        refused(
            "Content-Type text/plain",
            Some("text/plain"),
            Some("snappy"),
            "Content-Type \"text/plain\" is not remote write: send application/x-protobuf",
        ),
        refused(
            "no Content-Type",
            None,
            Some("snappy"),
            "Content-Type \"\" is not remote write: send application/x-protobuf",
        ),
        refused(
            "unknown proto",
            Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"),
            Some("snappy"),
            "remote-write message \"io.prometheus.write.v3.Request\" is not supported",
        ),
        refused(
            "Content-Encoding gzip",
            Some("application/x-protobuf"),
            Some("gzip"),
            "Content-Encoding must be snappy (block format)",
        ),
        v1,
        // axum's method router answers 405 with an empty body (and an `Allow: POST` header).
        Row::new(
            "GET /api/v1/write",
            Req {
                method: "GET",
                content_type: None,
                content_encoding: None,
                body: vec![],
            },
            405,
            "",
        ),
    ]
}

/// A remote-write 2.0 POST of `series` over the symbol table `symbols`.
fn write_v2(symbols: &[&str], series: Vec<v2::TimeSeries>) -> Req {
    let request = v2::Request {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        timeseries: series,
    };
    Req {
        content_type: Some(V2_CONTENT_TYPE),
        ..raw(snappy(&prost::Message::encode_to_vec(&request)))
    }
}

/// Rows in remote write 2.0 (symbol table, label references).
fn v2_rows(t: i64) -> Vec<Row> {
    const CASE: &str = "remote write 2.0";
    // 0 "", 1 __name__, 2 m, 3 case, 4 <row name>, 5 k, 6 v
    let symbols = |case: &'static str| ["", "__name__", "m", "case", case, "k", "v"];
    let one = |refs: &[u32], samples: &[(i64, f64)]| v2::TimeSeries {
        labels_refs: refs.to_vec(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..v2::TimeSeries::default()
    };
    let samples = [(t, 1.25), (t + 1, f64::from_bits(STALE_NAN))];
    let valid = Row::new(
        CASE,
        write_v2(&symbols(CASE), vec![one(&[1, 2, 3, 4, 5, 6], &samples)]),
        204,
        "",
    )
    .keep(&[("__name__", "m"), ("k", "v")], &samples)
    .written(2);
    let bad = |case: &'static str, table: [&'static str; 7], refs: &[u32], message| {
        Row::new(
            case,
            write_v2(&table, vec![one(refs, &[(t, 1.0)])]),
            400,
            message,
        )
        .written(0)
    };
    let mut first_not_empty = symbols("2.0: symbols[0] not empty");
    first_not_empty[0] = "x";
    // A 1.0 body labelled 2.0: its fields 1 and 3 are unknown to `io.prometheus.write.v2.Request`
    // and skipped, so it decodes as an empty request. The server answers 204 with
    // `X-Prometheus-Remote-Write-Samples-Written: 0`, as the 2.0 spec has receivers do; that
    // header is how a 2.0 sender learns nothing was written.
    let mislabelled = "1.0 body labelled 2.0";
    let v1_body = Req {
        content_type: Some(V2_CONTENT_TYPE),
        ..write(&[series(mislabelled, &[("__name__", "m")], &[(t, 1.0)])])
    };
    vec![
        valid,
        bad(
            "2.0: symbol reference out of range",
            symbols("2.0: symbol reference out of range"),
            &[1, 2, 3, 4, 5, 99],
            "symbol reference 99 is out of range (the table has 7 symbols)",
        ),
        bad(
            "2.0: symbols[0] not empty",
            first_not_empty,
            &[1, 2, 3, 4],
            "symbols[0] must be the empty string",
        ),
        bad(
            "2.0: odd labels_refs",
            symbols("2.0: odd labels_refs"),
            &[1, 2, 3],
            "labels_refs has 3 entries; it must hold name/value pairs",
        ),
        Row::new(mislabelled, v1_body, 204, "").written(0),
    ]
}

/// The baseline written before the matrix: 10 series × 5 samples, distinct values, with NaN
/// payloads, infinities and a negative zero among them.
fn baseline(t: i64) -> Vec<TimeSeries> {
    (0..10)
        .map(|s| {
            let samples: Vec<(i64, f64)> = (0..5)
                .map(|i| {
                    let v = match (s + i) % 7 {
                        0 => f64::from_bits(STALE_NAN),
                        1 => -0.0,
                        2 => f64::INFINITY,
                        _ => s as f64 * 100.0 + i as f64 + 0.25,
                    };
                    (t - 60_000 + i as i64 * 15_000, v)
                })
                .collect();
            series(
                "baseline",
                &[("__name__", "baseline"), ("s", &s.to_string())],
                &samples,
            )
        })
        .collect()
}

/// What is stored under `case="<case>"`: labels → `(t, value bits)`.
fn stored(db: &Db, case: &str) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    db.querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("case", case)])
        .expect("select a case's series")
        .iter()
        .map(|s| {
            (
                s.labels().clone(),
                s.samples().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .filter(|(_, samples): &(Labels, Vec<_>)| !samples.is_empty())
        .collect()
}

/// What `series` would store, in the same shape as [`stored`].
fn expected(
    case: &str,
    series: impl IntoIterator<Item = Kept>,
) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    series
        .into_iter()
        .map(|(mut labels, samples)| {
            labels.push(("case".into(), case.to_string()));
            let labels = Labels::new(labels).expect("valid labels");
            let mut samples: Vec<(i64, u64)> =
                samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            samples.sort_unstable();
            (labels, samples)
        })
        .collect()
}

/// Sends every row of the malformed-input matrix to a real server: each gets its status and a
/// message that says what is wrong, the server stays healthy throughout, and afterwards (a
/// clean stop, the database opened in-process) the baseline written first and every row's
/// accepted samples are stored bit-exactly while nothing of the rejected samples is.
#[test]
fn malformed_remote_writes_get_their_status_and_message_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms() - 2 * 60 * 1000;
    let agent = server::agent();
    let server = Server::start(dir.path(), &[]);
    server.wait_ready(Duration::from_secs(30));

    let base = baseline(t);
    let reply = send(&agent, &server.url, &write(&base));
    assert_eq!(reply.status, 204, "the baseline: {reply:?}");

    let rows: Vec<Row> = [
        body_rows(t),
        label_rows(t),
        sample_rows(t),
        shape_rows(&base),
        envelope_rows(t),
        v2_rows(t),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut failures = Vec::new();
    for row in &rows {
        let reply = send(&agent, &server.url, &row.request);
        println!(
            "{:>40}: {} {}",
            row.name,
            reply.status,
            reply.body.trim_end()
        );
        if reply.status != row.status
            || !reply.body.contains(row.message)
            || row.written.is_some_and(|n| reply.written != Some(n))
        {
            failures.push(format!(
                "{}: expected {} with {:?} (samples written: {:?}), got {reply:?}",
                row.name, row.status, row.message, row.written
            ));
        }
        if reply.status == 413 || reply.status == 415 {
            // Answered before the body was read: the server closes the connection and must
            // say so, or a client reusing it fails its next request.
            assert_eq!(
                reply.connection.as_deref(),
                Some("close"),
                "row {:?}: no `Connection: close` on an answer that left the body unread",
                row.name
            );
        }
        let healthy = agent
            .get(format!("{}/-/healthy", server.url))
            .call()
            .map(|r| r.status().as_u16());
        assert!(
            matches!(healthy, Ok(200)),
            "the server is not healthy after row {:?}: {healthy:?}",
            row.name
        );
    }
    assert!(
        failures.is_empty(),
        "rows answered wrongly:\n{}",
        failures.join("\n")
    );
    let row_count = rows.len();
    server.stop();

    let options = Options {
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).expect("open after the matrix");
    let base_kept = base.iter().map(|ts| {
        let labels = ts
            .labels
            .iter()
            .filter(|l| l.name != "case")
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        (
            labels,
            ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
        )
    });
    assert_eq!(
        stored(&db, "baseline"),
        expected("baseline", base_kept),
        "the baseline written before the matrix changed"
    );
    let mut samples = 0;
    for row in rows {
        let want = expected(row.name, row.kept);
        samples += want.values().map(Vec::len).sum::<usize>();
        assert_eq!(
            stored(&db, row.name),
            want,
            "row {:?}: stored samples differ from the accepted ones",
            row.name
        );
    }
    db.close().expect("close");
    println!(
        "malformed matrix: {} rows answered as expected, server healthy after each, baseline \
         (50 samples) and {samples} accepted samples stored bit-exactly after restart",
        row_count
    );
}
