//! Loki's query API over the log store: `query_range` for log and metric queries, `query`
//! (metric queries at an instant), `labels`, `label/{name}/values`, `series` and
//! `status/buildinfo`, answering in the envelope Grafana's Loki data source reads: `{"status":"success","data":{"resultType":"streams","result":[…]}}`, each stream
//! as `{"stream":{labels},"values":[["<ns>","<line>"],…]}`. Errors are plain text with 400
//! (the query or a parameter is wrong), 503 (not ready) or 500 (the storage failed).
//!
//! Parameters come from the query string or a form-encoded body. Times (`start`, `end`) are
//! read as Loki reads them: a number with a fraction is seconds, an integer of up to ten
//! digits is seconds and a longer one nanoseconds, else RFC 3339. Defaults: `end` now,
//! `start` one hour (or `since`) before it, `limit` 100, `direction` backward.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use strata_engine::logql::{self, EvalError, Expr, LogStream, MetricLimits, MetricSeries};
use strata_engine::logs::{Direction, LogStore};

use crate::prom::api::params::Params;
use crate::prom::json::format_value;
use crate::state::{AppState, NOT_READY};

/// The most entries one query may ask for (Loki's `max_entries_limit_per_query` default).
pub const ENTRIES_LIMIT_MAX: usize = 5000;

/// The range a query without `start` looks back over.
const DEFAULT_SINCE_NS: i64 = 3_600_000_000_000;

/// An error answer: status and plain text.
#[derive(Debug)]
pub(super) struct Failure(pub StatusCode, pub String);

impl Failure {
    pub(super) fn bad(message: impl Into<String>) -> Failure {
        Failure(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, format!("{}\n", self.1)).into_response()
    }
}

pub(super) fn store(state: &AppState) -> Result<Arc<LogStore>, Failure> {
    state
        .logs()
        .ok_or_else(|| Failure(StatusCode::SERVICE_UNAVAILABLE, NOT_READY.to_owned()))
}

/// Reads a time as Loki does, in nanoseconds since the epoch.
pub fn parse_time_ns(s: &str) -> Option<i64> {
    if s.contains('.') {
        let secs: f64 = s.parse().ok()?;
        let ns = secs * 1e9;
        return (ns.is_finite() && ns.abs() < i64::MAX as f64).then_some(ns as i64);
    }
    if let Ok(n) = s.parse::<i64>() {
        let digits = s.trim_start_matches('-').len();
        return Some(if digits <= 10 {
            n.saturating_mul(1_000_000_000)
        } else {
            n
        });
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

pub(super) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub(super) fn time_param(params: &Params, name: &str) -> Result<Option<i64>, Failure> {
    params
        .get(name)
        .map(|s| {
            parse_time_ns(s).ok_or_else(|| {
                Failure::bad(format!(
                    "invalid parameter {name:?}: cannot parse {s:?} as a timestamp \
                     (seconds, nanoseconds or RFC 3339)"
                ))
            })
        })
        .transpose()
}

/// `start` and `end` with Loki's defaults.
pub(super) fn time_range(params: &Params) -> Result<(i64, i64), Failure> {
    let end = time_param(params, "end")?.unwrap_or_else(now_ns);
    let since = match params.get("since") {
        None => DEFAULT_SINCE_NS,
        Some(s) => {
            let d = crate::config::parse_duration(s)
                .map_err(|e| Failure::bad(format!("invalid parameter \"since\": {e}")))?;
            i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
        }
    };
    let start = time_param(params, "start")?.unwrap_or_else(|| end.saturating_sub(since));
    if end < start {
        return Err(Failure::bad(
            "invalid parameter \"end\": the end time must not be before the start time",
        ));
    }
    Ok((start, end))
}

fn limit_param(params: &Params) -> Result<usize, Failure> {
    let limit = match params.get("limit") {
        None => 100,
        Some(s) => s.parse::<usize>().map_err(|_| {
            Failure::bad(format!(
                "invalid parameter \"limit\": {s:?} is not a non-negative integer"
            ))
        })?,
    };
    if limit > ENTRIES_LIMIT_MAX {
        return Err(Failure::bad(format!(
            "max entries limit per query exceeded, limit > max_entries_limit \
             ({limit} > {ENTRIES_LIMIT_MAX})"
        )));
    }
    Ok(limit)
}

fn direction_param(params: &Params) -> Result<Direction, Failure> {
    match params.get("direction") {
        None => Ok(Direction::Backward),
        Some(s) if s.eq_ignore_ascii_case("backward") => Ok(Direction::Backward),
        Some(s) if s.eq_ignore_ascii_case("forward") => Ok(Direction::Forward),
        Some(s) => Err(Failure::bad(format!(
            "invalid parameter \"direction\": {s:?} is neither forward nor backward"
        ))),
    }
}

pub(super) fn parse_query(params: &Params) -> Result<Expr, Failure> {
    let text = params
        .get("query")
        .ok_or_else(|| Failure::bad("missing parameter \"query\""))?;
    logql::parse(text).map_err(|e| Failure::bad(e.to_string()))
}

/// Whether the client asked for structured metadata apart from the stream's labels
/// (`X-Loki-Response-Encoding-Flags: categorize-labels`, as Grafana does).
fn categorize_labels(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|flag| flag.trim().eq_ignore_ascii_case("categorize-labels"))
}

/// `GET|POST /loki/api/v1/query_range`.
pub async fn range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    match run_range(&state, &headers, &params).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn run_range(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, Failure> {
    let store = store(state)?;
    let expr = parse_query(params)?;
    let (start, end) = time_range(params)?;
    match expr {
        Expr::Log(query) => {
            let limit = limit_param(params)?;
            let direction = direction_param(params)?;
            let categorize = categorize_labels(headers);
            let streams =
                blocking(move || logql::select_logs(&store, &query, start, end, direction, limit))
                    .await?;
            Ok(streams_answer(&streams, categorize))
        }
        Expr::Metric(query) => {
            let step = step_param(params, start, end)?;
            let series = blocking(move || {
                logql::eval_metric(&store, &query, start, end, step, &MetricLimits::default())
            })
            .await?;
            Ok(metric_answer("matrix", &series))
        }
    }
}

/// Runs an evaluation on the blocking pool; its errors become answers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EvalError> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            EvalError::Storage(_) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            EvalError::Limit(_) | EvalError::Query(_) | EvalError::Pipeline { .. } => {
                Failure::bad(e.to_string())
            }
        })
}

/// `step`: a duration or (float) seconds; by default what gives about 250 points, at least 1 s
/// (Loki's default).
pub(super) fn step_param(params: &Params, start: i64, end: i64) -> Result<i64, Failure> {
    let Some(s) = params.get("step") else {
        let secs = ((end - start) / 1_000_000_000 / 250).max(1);
        return Ok(secs * 1_000_000_000);
    };
    let ns = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1e9) as i64,
        _ => crate::config::parse_duration(s)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .map_err(|e| Failure::bad(format!("invalid parameter \"step\": {e}")))?,
    };
    if ns <= 0 {
        return Err(Failure::bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    Ok(ns)
}

/// A time in seconds as a JSON number: whole seconds without a fraction.
pub(super) fn seconds(ns: i64) -> Value {
    if ns % 1_000_000_000 == 0 {
        Value::from(ns / 1_000_000_000)
    } else {
        Value::from(ns as f64 / 1e9)
    }
}

/// A metric answer: `matrix` (every point) or `vector` (each series' last point).
pub(super) fn metric_answer(result_type: &str, series: &[MetricSeries]) -> Value {
    let result: Vec<Value> = series
        .iter()
        .map(|s| {
            let metric: Map<String, Value> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            if result_type == "vector" {
                let (t, v) = s.points.last().copied().unwrap_or((0, f64::NAN));
                json!({ "metric": metric, "value": [seconds(t), format_value(v)] })
            } else {
                let values: Vec<Value> = s
                    .points
                    .iter()
                    .map(|&(t, v)| json!([seconds(t), format_value(v)]))
                    .collect();
                json!({ "metric": metric, "values": values })
            }
        })
        .collect();
    json!({
        "status": "success",
        "data": { "resultType": result_type, "result": result, "stats": { "summary": {} } }
    })
}

/// The `streams` answer (each stream's entries in the query's direction).
pub(super) fn streams_answer(streams: &[LogStream], categorize: bool) -> Value {
    let mut entries_total = 0usize;
    let mut bytes_total = 0usize;
    let result: Vec<Value> = streams
        .iter()
        .filter(|s| !s.entries.is_empty())
        .map(|s| {
            let labels: Map<String, Value> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            let mut values: Vec<Value> = Vec::with_capacity(s.entries.len());
            for e in &s.entries {
                entries_total += 1;
                bytes_total += e.bytes();
                let mut v = vec![
                    Value::from(e.ts_ns.to_string()),
                    Value::from(e.line.as_str()),
                ];
                if categorize && !e.metadata.is_empty() {
                    let md: Map<String, Value> = e
                        .metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                        .collect();
                    v.push(json!({ "structuredMetadata": md }));
                }
                values.push(Value::Array(v));
            }
            json!({ "stream": labels, "values": values })
        })
        .collect();
    json!({
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": result,
            "stats": {
                "summary": {
                    "totalEntriesReturned": entries_total,
                    "totalBytesProcessed": bytes_total,
                }
            }
        }
    })
}

/// `GET|POST /loki/api/v1/query`: a metric query at one instant (`time`, default now), as a
/// `vector`; a log query is refused there, as Loki refuses it.
pub async fn instant(State(state): State<Arc<AppState>>, params: Params) -> Response {
    match run_instant(&state, &params).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn run_instant(state: &AppState, params: &Params) -> Result<Value, Failure> {
    let store = store(state)?;
    let Expr::Metric(query) = parse_query(params)? else {
        return Err(Failure::bad(
            "log queries are not supported as an instant query type, please change your \
             query to a range query type",
        ));
    };
    let time = time_param(params, "time")?.unwrap_or_else(now_ns);
    let series = blocking(move || {
        logql::eval_metric(&store, &query, time, time, 0, &MetricLimits::default())
    })
    .await?;
    Ok(metric_answer("vector", &series))
}

/// `GET|POST /loki/api/v1/labels`: the label names of every stream held.
pub async fn label_names(State(state): State<Arc<AppState>>, params: Params) -> Response {
    listing(&state, &params, |store| store.label_names()).await
}

/// `GET|POST /loki/api/v1/label/{name}/values`: the values of one label among the streams.
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    listing(&state, &params, move |store| store.label_values(&name)).await
}

/// A list of strings from the store, after the parameters are checked.
async fn listing(
    state: &AppState,
    params: &Params,
    list: impl FnOnce(&LogStore) -> Vec<String> + Send + 'static,
) -> Response {
    let outcome = async {
        let store = store(state)?;
        time_range(params)?;
        let items = tokio::task::spawn_blocking(move || list(&store))
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok::<_, Failure>(json!({ "status": "success", "data": items }))
    };
    match outcome.await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

/// `GET|POST /loki/api/v1/series`: the label sets of the streams matching any `match[]` (or
/// `match`) selector with entries between `start` and `end`.
pub async fn series(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let outcome = (|| {
        let store = store(&state)?;
        let (start, end) = time_range(&params)?;
        let mut raw = params.all("match[]");
        raw.extend(params.all("match"));
        if raw.is_empty() {
            return Err(Failure::bad("at least one match[] selector is required"));
        }
        let mut selectors = Vec::with_capacity(raw.len());
        for text in raw {
            match logql::parse(text) {
                Ok(Expr::Log(q)) if q.stages.is_empty() => selectors.push(q.selector),
                Ok(_) => {
                    return Err(Failure::bad(format!(
                        "invalid match[] {text:?}: a stream selector is expected"
                    )));
                }
                Err(e) => return Err(Failure::bad(format!("invalid match[] {text:?}: {e}"))),
            }
        }
        Ok((store, selectors, start, end))
    })();
    let (store, selectors, start, end) = match outcome {
        Ok(o) => o,
        Err(f) => return f.into_response(),
    };
    let found = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for selector in &selectors {
            all.extend(store.series(selector, start, end));
        }
        all.sort();
        all.dedup();
        all
    })
    .await;
    match found {
        Ok(all) => {
            let data: Vec<Value> = all
                .iter()
                .map(|labels| {
                    Value::Object(
                        labels
                            .iter()
                            .map(|l| (l.name().to_string(), Value::from(l.value().as_str())))
                            .collect(),
                    )
                })
                .collect();
            axum::Json(json!({ "status": "success", "data": data })).into_response()
        }
        Err(e) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /loki/api/v1/status/buildinfo`: the version, which Grafana reads to choose features.
pub async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("STRATA_REVISION").unwrap_or("unknown"),
        "branch": option_env!("STRATA_BRANCH").unwrap_or("unknown"),
        "buildUser": "strata",
        "buildDate": option_env!("STRATA_BUILD_DATE").unwrap_or("unknown"),
        "goVersion": concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_loki_reads_them() {
        assert_eq!(parse_time_ns("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(
            parse_time_ns("1700000000.5"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_time_ns("1700000000123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_time_ns("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_time_ns("yesterday"), None);
    }

    #[test]
    fn parameters_have_loki_defaults_and_bounds() {
        let p = Params::from_pairs([("end", "1700000000")]);
        assert_eq!(
            time_range(&p).unwrap(),
            (
                1_700_000_000_000_000_000 - DEFAULT_SINCE_NS,
                1_700_000_000_000_000_000
            )
        );
        let p = Params::from_pairs([("end", "1700000000"), ("since", "5m")]);
        assert_eq!(time_range(&p).unwrap().0, 1_699_999_700_000_000_000);
        let p = Params::from_pairs([("start", "1700000001"), ("end", "1700000000")]);
        assert!(time_range(&p).unwrap_err().1.contains("before the start"));
        assert_eq!(limit_param(&Params::default()).unwrap(), 100);
        let e = limit_param(&Params::from_pairs([("limit", "5001")])).unwrap_err();
        assert!(e.1.contains("5001 > 5000"), "{}", e.1);
        assert_eq!(
            direction_param(&Params::from_pairs([("direction", "FORWARD")])).unwrap(),
            Direction::Forward
        );
        assert!(direction_param(&Params::from_pairs([("direction", "up")])).is_err());
    }
}
