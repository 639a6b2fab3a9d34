//! What Grafana asks about a selector before and beside its queries: `index/stats` (how much
//! a query would read: the "will process" banner) and `index/volume`, `index/volume_range`
//! (bytes per stream or per label over a range, for the volume histograms of Explore and the
//! Logs Drilldown app). Volume is `sum by (…) (bytes_over_time(selector [range]))` evaluated by
//! the same engine as any metric query: grouped by `targetLabels` when given, else by the
//! labels the selector names.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_engine::logql::ast::{AggOp, Grouping, LogExpr, MetricExpr, RangeOp};
use strata_engine::logql::{EvalError, Expr, MetricLimits, eval_metric};

use super::query::{Failure, blocking, metric_answer, parse_query, step_param, store, time_range};
use crate::prom::api::params::Params;
use crate::state::AppState;

/// The selector of `query` (its pipeline is not used: these count what the streams hold).
fn selector(params: &Params) -> Result<LogExpr, Failure> {
    match parse_query(params)? {
        Expr::Log(mut log) => {
            log.stages.clear();
            Ok(log)
        }
        Expr::Metric(_) => Err(Failure::bad(
            "a stream selector is expected, not a metric query",
        )),
    }
}

/// `GET|POST /loki/api/v1/index/stats`: streams, chunks (here: streams with entries in the
/// range), entries and bytes that `query`'s selector holds between `start` and `end`.
pub async fn stats(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let outcome = async {
        let store = store(&state)?;
        let log = selector(&params)?;
        let (start, end) = time_range(&params)?;
        blocking(move || {
            let mut streams = std::collections::HashSet::new();
            let (mut entries, mut bytes) = (0u64, 0u64);
            store.scan(&log.selector, start, end, &[], None, &mut |labels, e| {
                if !streams.contains(labels) {
                    streams.insert(labels.clone());
                }
                entries += 1;
                bytes += e.bytes() as u64;
            })?;
            Ok::<_, EvalError>(json!({
                "streams": streams.len(),
                "chunks": streams.len(),
                "entries": entries,
                "bytes": bytes,
            }))
        })
        .await
    };
    match outcome.await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

/// `GET|POST /loki/api/v1/index/volume`: bytes per group over `[start, end]`, a vector.
pub async fn volume(State(state): State<Arc<AppState>>, params: Params) -> Response {
    respond(run_volume(&state, &params, false).await)
}

/// `GET|POST /loki/api/v1/index/volume_range`: bytes per group per `step`, a matrix.
pub async fn volume_range(State(state): State<Arc<AppState>>, params: Params) -> Response {
    respond(run_volume(&state, &params, true).await)
}

fn respond(outcome: Result<serde_json::Value, Failure>) -> Response {
    match outcome {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn run_volume(
    state: &AppState,
    params: &Params,
    over_range: bool,
) -> Result<serde_json::Value, Failure> {
    let store = store(state)?;
    let log = selector(params)?;
    let (start, end) = time_range(params)?;
    let mut targets: Vec<String> = params
        .get("targetLabels")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if targets.is_empty() {
        targets = log.selector.iter().map(|m| m.name().to_owned()).collect();
        targets.dedup();
    }
    let (eval_start, step, range) = if over_range {
        let step = step_param(params, start, end)?;
        (start, step, step)
    } else {
        (end, 0, (end - start).max(1))
    };
    let expr = MetricExpr::Aggregate {
        op: AggOp::Sum,
        param: None,
        grouping: Grouping {
            without: false,
            labels: targets,
        },
        inner: Box::new(MetricExpr::Range {
            op: RangeOp::BytesOverTime,
            log,
            range_ns: range,
            offset_ns: 0,
            grouping: None,
        }),
    };
    let limit: usize = match params.get("limit") {
        None => 100,
        Some(l) => l
            .parse()
            .map_err(|_| Failure::bad(format!("invalid parameter \"limit\": {l:?}")))?,
    };
    let mut series = blocking(move || {
        eval_metric(
            &store,
            &expr,
            eval_start,
            end,
            step,
            &MetricLimits::default(),
        )
    })
    .await?;
    if !over_range {
        // The largest first, at most `limit` of them.
        series.sort_by(|a, b| {
            let v = |s: &strata_engine::logql::MetricSeries| s.points.last().map_or(0.0, |p| p.1);
            v(b).total_cmp(&v(a))
        });
        series.truncate(limit);
    }
    Ok(metric_answer(
        if over_range { "matrix" } else { "vector" },
        &series,
    ))
}
