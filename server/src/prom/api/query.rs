//! PromQL over HTTP: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query` and
//! `/api/v1/parse_query`, answered as Prometheus answers them.
//!
//! Evaluation runs on the blocking pool (it reads files and takes CPU), except for instant
//! queries small enough to answer at once on the async worker (see [`INLINE_SAMPLES_MAX`]),
//! at most `query.max_concurrency` at once; a query waits for a turn within its own timeout. When the
//! timeout passes, the query is stopped through the engine's [`Stop`] handle and answered 503
//! `timeout`; a client that goes away stops its query too. Errors carry Prometheus's types and
//! status codes: `bad_data` 400, `execution` 422 (too many samples included), `timeout` 503,
//! `canceled` 499, `internal` 500.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_engine::Db;
use strata_engine::promql::{Engine, EngineOptions, PromqlError, Query, QueryOutput, Stop, Value};

use super::params::Params;
use super::{ApiError, db};
use crate::http::AppState;

/// Limits of PromQL queries (`query:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryLimits {
    /// The longest a query may run, waiting for a turn included.
    pub timeout: Duration,
    /// Queries evaluated at once (fixed at start).
    pub max_concurrency: usize,
    /// Samples a query may hold in memory.
    pub max_samples: usize,
    pub lookback_delta_ms: i64,
    /// The longest query text, in bytes.
    pub max_query_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            max_samples: 50_000_000,
            lookback_delta_ms: 5 * 60 * 1000,
            max_query_bytes: 256 << 10,
        }
    }
}

impl ApiError {
    fn of(status: StatusCode, error_type: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            error_type,
            message,
        }
    }
}

impl From<PromqlError> for ApiError {
    fn from(e: PromqlError) -> ApiError {
        let message = e.to_string();
        match e {
            PromqlError::Parse(_) => {
                ApiError::bad_data(format!("invalid parameter \"query\": {message}"))
            }
            PromqlError::BadData(_) => ApiError::bad_data(message),
            PromqlError::Timeout => {
                ApiError::of(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
            }
            PromqlError::Canceled => ApiError::of(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "canceled",
                message,
            ),
            PromqlError::Storage(_) => ApiError::internal(message),
            _ => ApiError::of(StatusCode::UNPROCESSABLE_ENTITY, "execution", message),
        }
    }
}

/// The query text, checked against the length limit and parsed.
fn parse_query(params: &Params, limits: &QueryLimits) -> Result<Query, ApiError> {
    let text = params
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query given"))?;
    if text.len() > limits.max_query_bytes {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"query\": the query is {} bytes, more than the {} allowed (query.max_query_length)",
            text.len(),
            limits.max_query_bytes
        )));
    }
    Ok(Query::parse(text)?)
}

/// A duration parameter: Prometheus's duration syntax or a number of seconds.
fn duration_param(params: &Params, name: &str) -> Result<Option<Duration>, ApiError> {
    let Some(s) = params.get(name) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_data(format!(
            "invalid parameter \"{name}\": cannot parse {s:?} to a valid duration"
        ))
    };
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
            return Err(bad());
        }
        return Ok(Some(Duration::from_secs_f64(secs)));
    }
    promql_parser::util::parse_duration(s)
        .map(Some)
        .map_err(|_| bad())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Stops its query when dropped before the query finished (the client went away).
struct CancelOnDrop(Option<Stop>);

impl CancelOnDrop {
    /// The query finished: nothing to stop.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = &self.0 {
            stop.cancel();
        }
    }
}

/// What a request may set for its own evaluation.
struct RequestOptions {
    timeout: Duration,
    /// `lookback_delta`, if given.
    lookback_ms: Option<i64>,
    /// `limit`: the most series in the result (0: all).
    limit: usize,
}

fn request_options(params: &Params, limits: &QueryLimits) -> Result<RequestOptions, ApiError> {
    let lookback_ms = duration_param(params, "lookback_delta")?
        .filter(|d| !d.is_zero())
        .map(|d| d.as_millis() as i64);
    Ok(RequestOptions {
        timeout: request_timeout(params, limits)?,
        lookback_ms,
        limit: params.limit("limit")?,
    })
}

/// Samples an instant query may read while it is evaluated on the async worker that received
/// it; one that needs more starts again on the blocking pool. Ten thousand samples take well
/// under a millisecond, and cover a dashboard's "now" panels (a selector over a few thousand
/// series, or a rate over a few hundred).
const INLINE_SAMPLES_MAX: usize = 10_000;

/// Runs `work` with a turn, within the request's timeout, on the blocking pool. With `inline`
/// (instant queries) it is first tried right here, within [`INLINE_SAMPLES_MAX`]: a small
/// query then answers without the two thread switches of a hand-off to the pool, which cost
/// more than its evaluation. Evaluation only reads, so starting again on the pool after the
/// budget ran out changes nothing but the time taken.
async fn evaluate(
    state: &Arc<AppState>,
    options: &RequestOptions,
    inline: bool,
    work: impl Fn(&Engine, &Db, &Stop) -> Result<QueryOutput, PromqlError> + Send + Sync + 'static,
) -> Result<QueryOutput, ApiError> {
    let db = db(state)?;
    let limits = state.query_limits();
    let timeout = options.timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let _turn = tokio::time::timeout_at(deadline, state.queries.acquire())
        .await
        .map_err(|_| {
            ApiError::of(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "query timed out in query queue".into(),
            )
        })?
        .map_err(|_| ApiError::unavailable("shutting down"))?;
    let engine = |samples_max: usize| {
        Engine::new(EngineOptions {
            lookback_delta_ms: options.lookback_ms.unwrap_or(limits.lookback_delta_ms),
            samples_max,
            ..EngineOptions::default()
        })
    };
    if inline && INLINE_SAMPLES_MAX < limits.max_samples {
        match work(&engine(INLINE_SAMPLES_MAX), &db, &Stop::new()) {
            Err(PromqlError::TooManySamples { .. }) => {}
            done => {
                let mut out = done.map_err(ApiError::from)?;
                truncate(&mut out, options.limit);
                return Ok(out);
            }
        }
    }
    let engine = engine(limits.max_samples);
    let stop = Stop::new();
    let guard = CancelOnDrop(Some(stop.clone()));
    let task = tokio::task::spawn_blocking({
        let stop = stop.clone();
        move || work(&engine, &db, &stop)
    });
    tokio::pin!(task);
    let result = match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(joined) => joined,
        Err(_) => {
            // The evaluation sees the stop at its next check and ends with a timeout.
            stop.timeout();
            task.await
        }
    };
    guard.disarm();
    let mut out = match result {
        Ok(out) => out.map_err(ApiError::from)?,
        Err(e) => return Err(ApiError::internal(format!("the query failed: {e}"))),
    };
    truncate(&mut out, options.limit);
    Ok(out)
}

/// Keeps the first `limit` series of a vector or matrix (0: all), with Prometheus's warning.
fn truncate(out: &mut QueryOutput, limit: usize) {
    let cut = |len: usize| limit > 0 && len > limit;
    let truncated = match &mut out.value {
        Value::Vector(v) if cut(v.len()) => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if cut(m.len()) => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        out.warnings.push("results truncated due to limit".into());
    }
}

/// The timeout of a request: the server's, or shorter if the request asks.
fn request_timeout(params: &Params, limits: &QueryLimits) -> Result<Duration, ApiError> {
    Ok(duration_param(params, "timeout")?
        .filter(|t| !t.is_zero())
        .map_or(limits.timeout, |t| t.min(limits.timeout)))
}

/// `/api/v1/query`: an instant query at `time` (default now).
pub async fn instant(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let limits = state.query_limits();
        let query = parse_query(&params, &limits)?;
        let t = params.time("time", now_ms())?;
        let options = request_options(&params, &limits)?;
        let out = evaluate(&state, &options, true, move |engine, db, stop| {
            engine.instant_query(db, &query, t, stop)
        })
        .await?;
        Ok::<_, ApiError>(answer(&out))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/query_range`: a query at every `step` from `start` to `end`.
pub async fn range(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let limits = state.query_limits();
        let query = parse_query(&params, &limits)?;
        let required = |name: &str| -> Result<i64, ApiError> {
            if params.get(name).is_none() {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse \"\" to a valid timestamp"
                )));
            }
            params.time(name, 0)
        };
        let (start, end) = (required("start")?, required("end")?);
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        let step = duration_param(&params, "step")?.ok_or_else(|| {
            ApiError::bad_data("invalid parameter \"step\": cannot parse \"\" to a valid duration")
        })?;
        let step_ms = step.as_millis() as i64;
        if step_ms <= 0 {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let options = request_options(&params, &limits)?;
        let out = evaluate(&state, &options, false, move |engine, db, stop| {
            engine.range_query(db, &query, start, end, step_ms, stop)
        })
        .await?;
        Ok::<_, ApiError>(answer(&out))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/format_query`: the query pretty-printed.
pub async fn format(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let query = parse_query(&params, &state.query_limits())?;
        Ok::<_, ApiError>(super::success(query.expr().prettify(), Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON.
pub async fn parse(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let query = parse_query(&params, &state.query_limits())?;
        let tree = serde_json::to_value(query.expr())
            .map_err(|e| ApiError::internal(format!("encoding the syntax tree: {e}")))?;
        Ok::<_, ApiError>(super::success(tree, Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// The success envelope of a query: `data` with `resultType` then `result`, and the
/// warnings and infos when there are any.
///
/// Written directly rather than through serde: a range query's answer is mostly points, and
/// each is a timestamp written as Prometheus writes it (whole seconds, then up to three
/// decimals, no float formatting) and a value string (an integer's digits, or the shortest
/// decimal; `+Inf`, `-Inf`, `NaN`). The buffer is sized from the point count up front.
fn answer(out: &QueryOutput) -> Response {
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

fn labels(out: &mut Vec<u8>, labels: &strata_engine::labels::Labels) {
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
