//! PromQL over HTTP: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query` and
//! `/api/v1/parse_query`, answered as Prometheus answers them.
//!
//! Evaluation runs on the blocking pool (it reads files and takes CPU), at most
//! `query.max_concurrency` at once; a query waits for a turn within its own timeout. When the
//! timeout passes, the query is stopped through the engine's [`Stop`] handle and answered 503
//! `timeout`; a client that goes away stops its query too. Errors carry Prometheus's types and
//! status codes: `bad_data` 400, `execution` 422 (too many samples included), `timeout` 503,
//! `canceled` 499, `internal` 500.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use strata_engine::Db;
use strata_engine::promql::{Engine, EngineOptions, PromqlError, Query, QueryOutput, Stop, Value};

use super::params::Params;
use super::{ApiError, LabelsJson, db, format_value, seconds};
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

/// Runs `work` with a turn, on the blocking pool, within the request's timeout.
async fn evaluate(
    state: &Arc<AppState>,
    options: &RequestOptions,
    work: impl FnOnce(&Engine, &Db, &Stop) -> Result<QueryOutput, PromqlError> + Send + 'static,
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
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: options.lookback_ms.unwrap_or(limits.lookback_delta_ms),
        samples_max: limits.max_samples,
        ..EngineOptions::default()
    });
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
        let out = evaluate(&state, &options, move |engine, db, stop| {
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
        let out = evaluate(&state, &options, move |engine, db, stop| {
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
fn answer(out: &QueryOutput) -> Response {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(rename = "resultType")]
        result_type: &'static str,
        result: ResultJson<'a>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        status: &'static str,
        data: Data<'a>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        warnings: &'a [String],
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        infos: &'a [String],
    }
    let result_type = match out.value {
        Value::Scalar { .. } => "scalar",
        Value::String { .. } => "string",
        Value::Vector(_) => "vector",
        Value::Matrix(_) => "matrix",
    };
    axum::Json(Body {
        status: "success",
        data: Data {
            result_type,
            result: ResultJson(&out.value),
        },
        warnings: &out.warnings,
        infos: &out.infos,
    })
    .into_response()
}

/// `[seconds, "value"]`.
struct Point<'a>(i64, &'a str);

impl Serialize for Point<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&seconds(self.0))?;
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

struct ResultJson<'a>(&'a Value);

impl Serialize for ResultJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Scalar { t, v } => Point(*t, &format_value(*v)).serialize(s),
            Value::String { t, s: text } => Point(*t, text).serialize(s),
            Value::Vector(samples) => {
                let mut seq = s.serialize_seq(Some(samples.len()))?;
                for sample in samples {
                    let value = format_value(sample.v);
                    seq.serialize_element(&Element {
                        metric: LabelsJson(&sample.labels),
                        key: "value",
                        points: Points::One(Point(sample.t, &value)),
                    })?;
                }
                seq.end()
            }
            Value::Matrix(series) => {
                let mut seq = s.serialize_seq(Some(series.len()))?;
                for one in series {
                    seq.serialize_element(&Element {
                        metric: LabelsJson(&one.labels),
                        key: "values",
                        points: Points::Many(&one.samples),
                    })?;
                }
                seq.end()
            }
        }
    }
}

enum Points<'a> {
    One(Point<'a>),
    Many(&'a [strata_engine::Sample]),
}

/// `{"metric": {…}, "value": […]}` or `{"metric": {…}, "values": [[…], …]}`.
struct Element<'a> {
    metric: LabelsJson<'a>,
    key: &'static str,
    points: Points<'a>,
}

impl Serialize for Element<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Many<'a>(&'a [strata_engine::Sample]);
        impl Serialize for Many<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for p in self.0 {
                    seq.serialize_element(&Point(p.t, &format_value(p.v)))?;
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("metric", &self.metric)?;
        match &self.points {
            Points::One(p) => map.serialize_entry(self.key, p)?,
            Points::Many(samples) => map.serialize_entry(self.key, &Many(samples))?,
        }
        map.end()
    }
}
