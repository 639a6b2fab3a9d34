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
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
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
            body.push(b'[');
            for (i, one) in series.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(b"{\"metric\":");
                labels(&mut body, &one.labels);
                body.extend_from_slice(b",\"values\":[");
                for (k, p) in one.samples.iter().enumerate() {
                    if k > 0 {
                        body.push(b',');
                    }
                    point(&mut body, p.t, p.v);
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
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
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
/// number, never with an exponent (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
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
        let mut shortest = ryu::Buffer::new();
        fixed_notation(out, shortest.format_finite(v));
    }
}

/// Rewrites ryu's shortest form (`1.5e-7`, `2e21`, `0.25`, `1.0`) without an exponent and
/// without a trailing `.0`.
fn fixed_notation(out: &mut Vec<u8>, text: &str) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let frac = frac.trim_end_matches('0');
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    // The decimal point sits after `point` of `digits`.
    let point = int.len() as i32 + exponent;
    if negative {
        out.push(b'-');
    }
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(&digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
    } else {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    }
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

    fn text(v: f64) -> String {
        let mut out = Vec::new();
        value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    /// Values and timestamps as Prometheus writes them (Go's 'f' format, shortest digits),
    /// the same as Rust's `Display` for every finite value.
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
        ] {
            assert_eq!(text(v), format!("{v}"), "{v:e}");
        }
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
