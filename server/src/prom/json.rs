//! The JSON the Prometheus HTTP API answers in: the success envelope, label sets, and sample
//! values and timestamps written as Prometheus writes them. A query's answer is written
//! directly into bytes ([`query_answer`]): it is mostly points, and serde's generic path
//! costs more than the evaluation of a small query.
//!
//! [`format_value`] is also how `/metrics` writes its values (the text exposition uses
//! the same spelling of floats).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::SerializeMap;
use strata_engine::labels::Labels;
use strata_engine::promql::{QueryOutput, Value};
use strata_engine::sample::Sample;

/// A success answer: `data`, and `warnings` when there are any.
pub fn success<T: Serialize>(data: T, warnings: Vec<String>) -> Response {
    #[derive(Serialize)]
    struct Body<T> {
        status: &'static str,
        data: T,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    }
    Json(Body {
        status: "success",
        data,
        warnings,
    })
    .into_response()
}

/// Serialises a label set as a JSON object, in label order.
#[derive(Debug)]
pub struct LabelsJson<'a>(pub &'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for l in self.0.iter() {
            map.serialize_entry(l.name().as_str(), l.value().as_str())?;
        }
        map.end()
    }
}

/// A float as Prometheus writes sample values: shortest round-trip decimal, `+Inf`, `-Inf`,
/// `NaN`.
pub fn format_value(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    value(&mut out, v);
    String::from_utf8(out).expect("digits, signs and points are ASCII")
}

/// Milliseconds as the float seconds Prometheus's JSON uses for timestamps.
pub fn seconds(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// The success envelope of a query: `data` with `resultType` then `result`, and the
/// warnings and infos when there are any.
///
/// Written directly rather than through serde: a range query's answer is mostly points, and
/// each is a timestamp written as Prometheus writes it (whole seconds, then up to three
/// decimals, no float formatting) and a value string (an integer's digits, or the shortest
/// decimal; `+Inf`, `-Inf`, `NaN`). The buffer is sized from the point count up front.
pub fn query_answer(out: &QueryOutput) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer_bytes(out),
    )
        .into_response()
}

fn answer_bytes(out: &QueryOutput) -> Vec<u8> {
    let points = match &out.value {
        Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
        Value::Vector(v) => v.len(),
        _ => 1,
    };
    let mut body = Vec::with_capacity(128 + points * 28);
    body.extend_from_slice(b"{\"status\":\"success\",\"data\":{\"resultType\":\"");
    body.extend_from_slice(match out.value {
        Value::Scalar { .. } => b"scalar",
        Value::String { .. } => b"string",
        Value::Vector(_) => b"vector",
        Value::Matrix(_) => b"matrix",
    });
    body.extend_from_slice(b"\",\"result\":");
    match &out.value {
        Value::Scalar { t, v } => point(&mut body, *t, *v),
        Value::String { t, s } => {
            body.push(b'[');
            timestamp(&mut body, *t);
            body.push(b',');
            json_string(&mut body, s);
            body.push(b']');
        }
        Value::Vector(samples) => {
            body.push(b'[');
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(b"{\"metric\":");
                labels(&mut body, &sample.labels);
                body.extend_from_slice(b",\"value\":");
                point(&mut body, sample.t, sample.v);
                body.push(b'}');
            }
            body.push(b']');
        }
        Value::Matrix(series) => {
            // A range query's series share their steps: each step's time is written once
            // and copied into every series that has a point there.
            let longest = series.iter().max_by_key(|s| s.samples.len());
            let stamps = Stamps::of(longest.map_or(&[][..], |s| &s.samples[..]));
            body.push(b'[');
            for (i, one) in series.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(b"{\"metric\":");
                labels(&mut body, &one.labels);
                body.extend_from_slice(b",\"values\":[");
                let mut at = 0;
                for (k, p) in one.samples.iter().enumerate() {
                    if k > 0 {
                        body.push(b',');
                    }
                    body.push(b'[');
                    stamps.write(&mut body, &mut at, p.t);
                    body.extend_from_slice(b",\"");
                    value(&mut body, p.v);
                    body.extend_from_slice(b"\"]");
                }
                body.extend_from_slice(b"]}");
            }
            body.push(b']');
        }
    }
    body.push(b'}');
    for (key, list) in [("warnings", &out.warnings), ("infos", &out.infos)] {
        if list.is_empty() {
            continue;
        }
        body.extend_from_slice(b",\"");
        body.extend_from_slice(key.as_bytes());
        body.extend_from_slice(b"\":[");
        for (i, text) in list.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            json_string(&mut body, text);
        }
        body.push(b']');
    }
    body.push(b'}');
    body
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn labels(out: &mut Vec<u8>, labels: &Labels) {
    out.push(b'{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, l.name());
        out.push(b':');
        json_string(out, l.value());
    }
    out.push(b'}');
}

/// The written times of one series' points, ascending, for the other series to copy.
struct Stamps {
    times: Vec<i64>,
    /// Each time's text, padded to [`STAMP_BYTES`] so that it is copied whole (a copy of a
    /// fixed size is a few moves, not a call to `memcpy`), and its length.
    texts: Vec<([u8; STAMP_BYTES], u8)>,
}

/// Room for a time's text: `-9999999999.999` and anything to the year 5138.
const STAMP_BYTES: usize = 16;

impl Stamps {
    fn of(samples: &[Sample]) -> Stamps {
        let mut stamps = Stamps {
            times: Vec::with_capacity(samples.len()),
            texts: Vec::with_capacity(samples.len()),
        };
        let mut text = Vec::with_capacity(24);
        for p in samples {
            text.clear();
            timestamp(&mut text, p.t);
            if text.len() > STAMP_BYTES {
                // Far past any real time: this one and the rest are left to `timestamp`.
                break;
            }
            let mut padded = [0; STAMP_BYTES];
            padded[..text.len()].copy_from_slice(&text);
            stamps.times.push(p.t);
            stamps.texts.push((padded, text.len() as u8));
        }
        stamps
    }

    /// Writes `t`, copied when it is one of the times; `at` walks forward through them as
    /// a series' ascending times do.
    #[inline]
    fn write(&self, out: &mut Vec<u8>, at: &mut usize, t: i64) {
        while *at < self.times.len() && self.times[*at] < t {
            *at += 1;
        }
        match self.texts.get(*at) {
            Some((text, len)) if self.times[*at] == t => {
                let end = out.len() + usize::from(*len);
                out.extend_from_slice(text);
                out.truncate(end);
            }
            _ => timestamp(out, t),
        }
    }
}

/// `[seconds,"value"]`.
fn point(out: &mut Vec<u8>, t: i64, v: f64) {
    out.push(b'[');
    timestamp(out, t);
    out.extend_from_slice(b",\"");
    value(out, v);
    out.extend_from_slice(b"\"]");
}

/// Milliseconds as Prometheus writes them: seconds, and `.` with three digits when there
/// is a fraction (`1435781451.781`, `10.050`, `4`).
fn timestamp(out: &mut Vec<u8>, t: i64) {
    let mut digits = itoa::Buffer::new();
    if t < 0 {
        out.push(b'-');
    }
    let abs = t.unsigned_abs();
    out.extend_from_slice(digits.format(abs / 1000).as_bytes());
    let fraction = abs % 1000;
    if fraction != 0 {
        out.push(b'.');
        out.extend_from_slice(&[
            b'0' + (fraction / 100) as u8,
            b'0' + (fraction / 10 % 10) as u8,
            b'0' + (fraction % 10) as u8,
        ]);
    }
}

/// A value as Prometheus writes it: the shortest decimal that reads back as the same
/// number, never with an exponent (Go's `strconv.FormatFloat(v, 'f', -1, 64)`). Where two
/// shortest decimals lie equally near, Go takes the even last digit, and so does `zmij`
/// (Rust's `Display` and `ryu` round such a tie up: `1658206780088562.25` is `…562.3` there,
/// `…562.2` in Prometheus's answer).
fn value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v == v.trunc() && v.abs() < 9.0e15 {
        // Whole numbers (most counters and gauges): integer digits.
        if v == 0.0 && v.is_sign_negative() {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        let mut shortest = zmij::Buffer::new();
        fixed_notation(out, shortest.format_finite(v).as_bytes());
    }
}

/// Rewrites a shortest form (`1.5e-7`, `2e+21`, `0.25`, `1.0`) without an exponent and
/// without a trailing `.0`, with no allocation: most values (`0.8125`, `1234.5`) have
/// neither and are copied as they are.
fn fixed_notation(out: &mut Vec<u8>, text: &[u8]) {
    let Some(e) = text.iter().position(|&b| b == b'e') else {
        out.extend_from_slice(text.strip_suffix(b".0").unwrap_or(text));
        return;
    };
    let (negative, mantissa) = match text[..e].strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, &text[..e]),
    };
    let exponent = exponent_of(&text[e + 1..]);
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
        None => (mantissa, &b""[..]),
    };
    let frac = &frac[..frac.iter().rposition(|&b| b != b'0').map_or(0, |i| i + 1)];
    // The significant digits, `int` then `frac` (at most 17 for an f64), and the decimal
    // point after `point` of them.
    let mut digits = [0u8; 32];
    let n = int.len() + frac.len();
    digits[..int.len()].copy_from_slice(int);
    digits[int.len()..n].copy_from_slice(frac);
    let digits = &digits[..n];
    let point = int.len() as i32 + exponent;
    if negative {
        out.push(b'-');
    }
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
    } else {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    }
}

/// The exponent after the `e` of a shortest form: `+21`, `21`, `-07`.
fn exponent_of(text: &[u8]) -> i32 {
    let (sign, digits) = match text.first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    sign * digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d.wrapping_sub(b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_prometheus_writes_them() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-2.5e-7), "-0.00000025");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(seconds(1_700_000_000_123), 1_700_000_000.123);
    }

    /// Each point of a matrix keeps its own time where the series' steps differ: the times
    /// copied from the longest series and the ones it lacks.
    #[test]
    fn a_matrix_of_series_with_different_times_writes_each_point_s_own_time() {
        use strata_engine::promql::RangeSeries;
        let series = |name: &str, points: &[(i64, f64)]| RangeSeries {
            labels: Labels::new([("__name__", name)]).unwrap(),
            samples: points.iter().map(|&(t, v)| Sample { t, v }).collect(),
        };
        let out = QueryOutput {
            value: Value::Matrix(vec![
                series(
                    "a",
                    &[(1_000, 1.0), (2_000, 2.5), (3_000, 3.0), (4_000, 4.0)],
                ),
                series(
                    "b",
                    &[(500, 0.5), (2_000, 20.0), (2_500, 25.0), (5_000, 0.1)],
                ),
                series("c", &[]),
                // The longest, whose times the others copy; its last too long to keep.
                series(
                    "d",
                    &[
                        (-1_500, 2.0),
                        (0, 0.0),
                        (1_000, 1.0),
                        (2_000, 3.0),
                        (i64::MAX, 1.0),
                    ],
                ),
            ]),
            warnings: vec![],
            infos: vec![],
        };
        let json: serde_json::Value = serde_json::from_slice(&answer_bytes(&out)).unwrap();
        assert_eq!(
            json["data"]["result"][1]["values"],
            serde_json::json!([[0.5, "0.5"], [2, "20"], [2.5, "25"], [5, "0.1"]])
        );
        assert_eq!(
            json["data"]["result"][0]["values"],
            serde_json::json!([[1, "1"], [2, "2.5"], [3, "3"], [4, "4"]])
        );
        assert_eq!(json["data"]["result"][2]["values"], serde_json::json!([]));
        assert_eq!(
            json["data"]["result"][3]["values"],
            serde_json::json!([
                [-1.5, "2"],
                [0, "0"],
                [1, "1"],
                [2, "3"],
                [9223372036854775.807_f64, "1"]
            ])
        );
    }

    fn text(v: f64) -> String {
        let mut out = Vec::new();
        value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    /// Values and timestamps as Prometheus writes them (Go's 'f' format, shortest digits):
    /// Rust's `Display` for every finite value that is not halfway between two shortest
    /// decimals, and the even one of the two when it is, as Prometheus 2.42 answered.
    #[test]
    fn values_and_times_are_written_as_prometheus_writes_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -17.0,
            0.1,
            0.25,
            1.5e-7,
            2e21,
            123456789.125,
            3.9999999999999996,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            -5e-324,
            9.0e15,
            12345678901234567.0,
            1.0e16,
            1.5e22,
            -1.25e-5,
        ] {
            assert_eq!(text(v), format!("{v}"), "{v:e}");
        }
        // Prometheus 2.42, `query=1658206780088562.25`: a tie between `.2` and `.3`.
        // (Written as a sum: the literal has more digits than clippy lets a literal carry,
        // yet the sum is exact, a 53-bit value.)
        let tie = 1_658_206_780_088_562.0 + 0.25;
        assert_eq!(text(tie), "1658206780088562.2");
        assert_eq!(text(-tie), "-1658206780088562.2");
        // Values from every corner of the exponent range and of the digit counts (the bits
        // of a fixed pseudo-random sequence) and small decimals like a gauge's: each reads
        // back as itself, in as few digits as `Display` uses, and equals it but in a tie.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut ties = 0;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for v in [
                f64::from_bits(x),
                (x % 1_000_000) as f64 / 10f64.powi((i % 9) as i32),
            ] {
                if !v.is_finite() {
                    continue;
                }
                let (ours, display) = (text(v), format!("{v}"));
                assert_eq!(ours.parse::<f64>(), Ok(v), "{v:e}");
                if ours != display {
                    assert_eq!(ours.len(), display.len(), "{v:e}: {ours} against {display}");
                    ties += 1;
                }
            }
        }
        assert!(ties < 100, "{ties} values written unlike Display");
        assert_eq!(text(f64::NAN), "NaN");
        assert_eq!(text(f64::NEG_INFINITY), "-Inf");
        let ts = |t: i64| {
            let mut out = Vec::new();
            timestamp(&mut out, t);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(10_050), "10.050");
        assert_eq!(ts(4_000), "4");
        assert_eq!(ts(-1_500), "-1.500");
    }
}
