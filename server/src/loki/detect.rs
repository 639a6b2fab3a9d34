//! What Grafana's Logs Drilldown app asks about the logs beside the logs themselves:
//! `detected_labels` (the stream labels of a selector's streams, each with its number of
//! values), `detected_fields` (the fields of the newest lines a query keeps: JSON keys, logfmt
//! pairs, structured metadata, with type, cardinality and the parser that finds them) and
//! `detected_field/<name>/values`. These answer bare JSON objects, without the
//! `status`/`data` envelope of the query API, as Loki's do. And `patterns` (the Patterns tab:
//! the lines' shapes with their counts over time), in the envelope. The detection runs in the
//! engine ([`strata_engine::logql::detect`], [`strata_engine::logql::patterns`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use strata_engine::logql::detect::{
    FIELD_LIMIT_DEFAULT, LINE_LIMIT_DEFAULT, detect_field_values, detect_fields,
};
use strata_engine::logql::patterns::{self, detect_patterns};
use strata_engine::logql::{EvalError, Expr, LogExpr};
use strata_engine::logs::LogStore;

use super::query::{
    ENTRIES_LIMIT_MAX, Failure, blocking, parse_query, step_param, store, time_range,
};
use crate::prom::api::params::Params;
use crate::state::AppState;

/// The most fields or values one answer lists.
const FIELD_LIMIT_MAX: usize = 10_000;

fn respond(outcome: Result<Value, Failure>) -> Response {
    match outcome {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

/// A count parameter: `default` when absent, at most `max`.
fn count_param(
    params: &Params,
    names: &[&str],
    default: usize,
    max: usize,
) -> Result<usize, Failure> {
    let Some((name, text)) = names.iter().find_map(|n| params.get(n).map(|v| (*n, v))) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(Failure::bad(format!(
            "invalid parameter {name:?}: {text:?} is not a positive integer"
        ))),
        Ok(n) if n > max => Err(Failure::bad(format!(
            "invalid parameter {name:?}: {n} is above the most allowed, {max}"
        ))),
        Ok(n) => Ok(n),
    }
}

/// `query` as a log query (a metric query is refused: it has no lines to read).
fn log_query(params: &Params) -> Result<LogExpr, Failure> {
    match parse_query(params)? {
        Expr::Log(log) => Ok(log),
        Expr::Metric(_) => Err(Failure::bad("a log query is expected, not a metric query")),
    }
}

/// The lines a detection reads: the newest `line_limit` (1,000 for fields, 10,000 for
/// patterns) that `query` keeps between `start` and `end`.
struct Sample {
    store: Arc<LogStore>,
    query: LogExpr,
    start: i64,
    end: i64,
    line_limit: usize,
}

impl Sample {
    fn of(state: &AppState, params: &Params, line_limit: usize) -> Result<Sample, Failure> {
        let (start, end) = time_range(params)?;
        Ok(Sample {
            store: store(state)?,
            query: log_query(params)?,
            start,
            end,
            line_limit: count_param(params, &["line_limit"], line_limit, ENTRIES_LIMIT_MAX)?,
        })
    }
}

/// `GET|POST /loki/api/v1/detected_labels`: `{"detectedLabels":[{"label","cardinality"}]}`
/// for the streams of `query`'s selector (every stream without one) with entries between
/// `start` and `end`, by label name.
pub async fn labels(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let outcome = async {
        let store = store(&state)?;
        let matchers = match params.get("query").map(str::trim) {
            None | Some("") | Some("{}") => Vec::new(),
            Some(_) => log_query(&params)?.selector,
        };
        let (start, end) = time_range(&params)?;
        blocking(move || {
            let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for labels in store.series(&matchers, start, end) {
                for l in labels.iter() {
                    let name = l.name().as_str();
                    match values.get_mut(name) {
                        Some(set) => {
                            set.insert(l.value().to_string());
                        }
                        None => {
                            values.insert(name.to_owned(), [l.value().to_string()].into());
                        }
                    }
                }
            }
            let detected: Vec<Value> = values
                .iter()
                .map(|(label, v)| json!({ "label": label, "cardinality": v.len() }))
                .collect();
            Ok::<_, EvalError>(json!({ "detectedLabels": detected }))
        })
        .await
    };
    respond(outcome.await)
}

/// `GET|POST /loki/api/v1/detected_fields`: the fields of the newest `line_limit` (1,000)
/// lines `query` keeps between `start` and `end`, at most `field_limit` (or `limit`, 1,000):
/// `{"fields":[{"label","type","cardinality","parsers","jsonPath"}],"limit":n}`, `parsers`
/// `null` for structured metadata.
pub async fn fields(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let outcome = async {
        let s = Sample::of(&state, &params, LINE_LIMIT_DEFAULT)?;
        let field_limit = count_param(
            &params,
            &["field_limit", "limit"],
            FIELD_LIMIT_DEFAULT,
            FIELD_LIMIT_MAX,
        )?;
        let fields = blocking(move || {
            detect_fields(
                &s.store,
                &s.query,
                s.start,
                s.end,
                s.line_limit,
                field_limit,
            )
        })
        .await?;
        let listed: Vec<Value> = fields
            .iter()
            .map(|f| {
                let parsers: Vec<&str> = f.sources.iter().filter_map(|s| s.parser()).collect();
                let mut field = json!({
                    "label": f.name,
                    "type": f.kind.as_str(),
                    "cardinality": f.cardinality,
                    "parsers": if parsers.is_empty() { Value::Null } else { json!(parsers) },
                });
                if !f.json_path.is_empty() {
                    field["jsonPath"] = json!(f.json_path);
                }
                field
            })
            .collect();
        // The limit is told only beside fields, as Loki does.
        Ok(if listed.is_empty() {
            json!({ "fields": [] })
        } else {
            json!({ "fields": listed, "limit": field_limit })
        })
    };
    respond(outcome.await)
}

/// `GET|POST /loki/api/v1/detected_field/<name>/values`: the distinct values of field `name`
/// in the same lines as `detected_fields` reads, sorted, at most `limit` (1,000):
/// `{"values":[…],"limit":n}`.
pub async fn field_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    let outcome = async {
        let s = Sample::of(&state, &params, LINE_LIMIT_DEFAULT)?;
        let limit = count_param(&params, &["limit"], FIELD_LIMIT_DEFAULT, FIELD_LIMIT_MAX)?;
        let values = blocking(move || {
            detect_field_values(
                &s.store,
                &s.query,
                s.start,
                s.end,
                s.line_limit,
                &name,
                limit,
            )
        })
        .await?;
        Ok(json!({ "values": values, "limit": limit }))
    };
    respond(outcome.await)
}

/// `GET|POST /loki/api/v1/patterns`: the patterns of the newest `line_limit` (10,000) lines
/// `query` keeps between `start` and `end`, each with its lines counted per `step` (seconds at
/// the step's start), the most frequent first:
/// `{"status":"success","data":[{"pattern":"user <_> logged in","samples":[[t,n],…]}]}`.
pub async fn patterns(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let outcome = async {
        let s = Sample::of(&state, &params, patterns::LINE_LIMIT_DEFAULT)?;
        let step = step_param(&params, s.start, s.end)?;
        let found = blocking(move || {
            detect_patterns(&s.store, &s.query, s.start, s.end, step, s.line_limit)
        })
        .await?;
        let data: Vec<Value> = found
            .iter()
            .map(|p| {
                let samples: Vec<Value> = p
                    .samples
                    .iter()
                    .map(|(t, n)| json!([t.div_euclid(1_000_000_000), n]))
                    .collect();
                json!({ "pattern": p.text, "samples": samples })
            })
            .collect();
        Ok(json!({ "status": "success", "data": data }))
    };
    respond(outcome.await)
}
