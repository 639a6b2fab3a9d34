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
use axum::response::{IntoResponse, Response};
use strata_engine::Db;
use strata_engine::promql::{Engine, EngineOptions, PromqlError, Query, QueryOutput, Stop, Value};

use crate::prom::api::params::Params;
use crate::prom::error::ApiError;
use crate::prom::json::{query_answer, success};
use crate::prom::limits::QueryLimits;
use crate::state::AppState;

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
    let db = state.db().ok_or_else(ApiError::not_ready)?;
    let limits = state.prom.query_limits();
    let timeout = options.timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let _turn = tokio::time::timeout_at(deadline, state.prom.queries.acquire())
        .await
        .map_err(|_| ApiError::timeout("query timed out in query queue"))?
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
        let limits = state.prom.query_limits();
        let query = parse_query(&params, &limits)?;
        let t = params.time("time", now_ms())?;
        let options = request_options(&params, &limits)?;
        let out = evaluate(&state, &options, true, move |engine, db, stop| {
            engine.instant_query(db, &query, t, stop)
        })
        .await?;
        Ok::<_, ApiError>(query_answer(&out))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/query_range`: a query at every `step` from `start` to `end`.
pub async fn range(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = async {
        let limits = state.prom.query_limits();
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
        Ok::<_, ApiError>(query_answer(&out))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/format_query`: the query pretty-printed.
pub async fn format(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let query = parse_query(&params, &state.prom.query_limits())?;
        Ok::<_, ApiError>(success(query.expr().prettify(), Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON.
pub async fn parse(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let run = || {
        let query = parse_query(&params, &state.prom.query_limits())?;
        let tree = serde_json::to_value(query.expr())
            .map_err(|e| ApiError::internal(format!("encoding the syntax tree: {e}")))?;
        Ok::<_, ApiError>(success(tree, Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}
