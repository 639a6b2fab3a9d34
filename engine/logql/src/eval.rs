//! Evaluating a parsed query against the log store: log queries ([`select_logs`]) and metric
//! queries ([`eval_metric`]).

use std::collections::{BTreeMap, HashMap};

use strata_core::error::StorageError;
use strata_core::labels::Labels;
use strata_logs::{Direction, Entry, LineFilter as StoreFilter, LogStore};

use crate::ast::{
    AggOp, BinOp, DISTINCT_EXACT_MAX, Grouping, LogExpr, Matching, MetricExpr, RangeOp,
};
use crate::pipeline::{ERROR_DETAILS_LABEL, ERROR_LABEL, process, process_with, wanted_labels};

/// Why a query could not be answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// The store failed (a block page failed its checks).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The query reads or returns more than the limits allow.
    #[error("{0}")]
    Limit(String),
    /// The query cannot be answered as written (series that do not match one to one).
    #[error("{0}")]
    Query(String),
    /// A metric query met entries its pipeline marked with `__error__`.
    #[error(
        "pipeline error: {kind} ({details}) for series {series}; use a label filter such as | __error__=\"\" to skip such entries"
    )]
    Pipeline {
        kind: String,
        details: String,
        series: String,
    },
}

/// One stream of a log query's answer: its labels (the stream's, and those the pipeline
/// added) and its entries, in the query's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    pub labels: BTreeMap<String, String>,
    pub entries: Vec<Entry>,
}

fn to_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

/// Calls `f` with each of the newest `line_limit` entries `query` keeps in
/// `[start_ns, end_ns)`: the lines the Drilldown app's detections read.
pub fn for_each_newest(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    line_limit: usize,
    f: impl FnMut(&Entry),
) -> Result<(), EvalError> {
    let streams = select_logs(
        store,
        query,
        start_ns,
        end_ns,
        Direction::Backward,
        line_limit,
    )?;
    streams.iter().flat_map(|s| &s.entries).for_each(f);
    Ok(())
}

/// The entries of `query` in `[start_ns, end_ns)`: the `limit` newest (`Backward`) or oldest
/// (`Forward`) that its pipeline keeps, as Loki's `query_range` returns a log query, grouped
/// by their labels after the pipeline, lines as the pipeline left them. Block pages that
/// cannot hold a line passing the leading line filters are not read.
pub fn select_logs(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    direction: Direction,
    limit: usize,
) -> Result<Vec<LogStream>, EvalError> {
    // Whether an entry is kept depends only on the labels the stages read.
    let wanted = wanted_labels(&query.stages, &[]);
    let filter = StoreFilter {
        needles: query.needles(),
        keep: Box::new(|labels, e| {
            process_with(&query.stages, labels, e, false, wanted.as_ref()).is_some()
        }),
        must_match: query.must_match(),
    };
    let found = store.select_lines(&query.selector, start_ns, end_ns, direction, limit, &filter)?;
    if query.filters_only() {
        return Ok(found
            .into_iter()
            .map(|s| LogStream {
                labels: to_map(&s.labels),
                entries: s.entries,
            })
            .collect());
    }
    // The entries kept are run through the pipeline again for their labels and lines (at
    // most `limit` of them), then grouped by those labels.
    let mut streams: BTreeMap<BTreeMap<String, String>, Vec<Entry>> = BTreeMap::new();
    for s in found {
        for e in &s.entries {
            let Some(p) = process(&query.stages, &s.labels, e) else {
                continue;
            };
            let labels = p.labels.unwrap_or_else(|| to_map(&s.labels));
            let entry = Entry {
                ts_ns: e.ts_ns,
                line: p.line.into_owned(),
                metadata: e.metadata.clone(),
            };
            streams.entry(labels).or_default().push(entry);
        }
    }
    Ok(streams
        .into_iter()
        .map(|(labels, mut entries)| {
            match direction {
                Direction::Forward => entries.sort_by_key(|e| e.ts_ns),
                Direction::Backward => entries.sort_by_key(|e| std::cmp::Reverse(e.ts_ns)),
            }
            LogStream { labels, entries }
        })
        .collect())
}

/// The limits of a metric query.
#[derive(Debug, Clone, Copy)]
pub struct MetricLimits {
    /// Series in the answer (Loki's `max_query_series`).
    pub series_max: usize,
    /// Entries a query may read.
    pub entries_max: usize,
    /// Steps of a range query.
    pub steps_max: usize,
}

impl Default for MetricLimits {
    fn default() -> MetricLimits {
        MetricLimits {
            series_max: 500,
            entries_max: 50_000_000,
            steps_max: 11_000,
        }
    }
}

/// One series of a metric query's answer: labels and `(time in ns, value)` points, one per
/// step that has a value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

/// Evaluates `expr` at every step `start_ns, start_ns + step_ns, …` up to `end_ns` (one step
/// when they are equal: an instant query). Series sorted by labels.
pub fn eval_metric(
    store: &LogStore,
    expr: &MetricExpr,
    start_ns: i64,
    end_ns: i64,
    step_ns: i64,
    limits: &MetricLimits,
) -> Result<Vec<MetricSeries>, EvalError> {
    let steps = if end_ns <= start_ns || step_ns <= 0 {
        1
    } else {
        ((end_ns - start_ns) / step_ns) as usize + 1
    };
    if steps > limits.steps_max {
        return Err(EvalError::Limit(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            limits.steps_max
        )));
    }
    let times: Vec<i64> = (0..steps as i64)
        .map(|k| start_ns + k * step_ns.max(0))
        .collect();
    let out = eval_node(store, expr, &times, limits)?.into_series(&times);
    let series: Vec<MetricSeries> = out.into_iter().filter(|s| !s.points.is_empty()).collect();
    if series.len() > limits.series_max {
        return Err(EvalError::Limit(format!(
            "maximum of series ({}) reached for a single query",
            limits.series_max
        )));
    }
    Ok(series)
}

/// What a node of a metric query evaluates to.
enum Value {
    Scalar(f64),
    Vector(Vec<MetricSeries>),
}

impl Value {
    /// As series: a scalar is one series without labels, its value at every step.
    fn into_series(self, times: &[i64]) -> Vec<MetricSeries> {
        match self {
            Value::Vector(v) => v,
            Value::Scalar(n) => vec![MetricSeries {
                labels: BTreeMap::new(),
                points: times.iter().map(|&t| (t, n)).collect(),
            }],
        }
    }
}

fn eval_node(
    store: &LogStore,
    expr: &MetricExpr,
    times: &[i64],
    limits: &MetricLimits,
) -> Result<Value, EvalError> {
    Ok(match expr {
        MetricExpr::Range {
            op,
            log,
            range_ns,
            offset_ns,
            grouping,
        } => Value::Vector(eval_range(
            store,
            *op,
            log,
            (*range_ns, *offset_ns),
            grouping.as_ref(),
            times,
            limits,
        )?),
        MetricExpr::Subquery {
            op,
            inner,
            range_ns,
            step_ns,
            offset_ns,
        } => Value::Vector(subquery(
            store,
            *op,
            inner,
            (*range_ns, *step_ns, *offset_ns),
            times,
            limits,
        )?),
        MetricExpr::Number(n) => Value::Scalar(*n),
        MetricExpr::Vector(n) => Value::Vector(Value::Scalar(*n).into_series(times)),
        // `sum by (…)` of a window op that adds up over entries: the entries are grouped as
        // they are read, so the series of every label combination are never built, and the
        // parsers extract only the labels grouped by (and those the stages read).
        MetricExpr::Aggregate {
            op: AggOp::Sum,
            param: None,
            grouping,
            inner,
        } if matches!(
            inner.as_ref(),
            MetricExpr::Range { op, grouping: None, .. } if op.is_additive()
        ) =>
        {
            let MetricExpr::Range {
                op,
                log,
                range_ns,
                offset_ns,
                ..
            } = inner.as_ref()
            else {
                unreachable!("matched above")
            };
            Value::Vector(eval_range(
                store,
                *op,
                log,
                (*range_ns, *offset_ns),
                Some(grouping),
                times,
                limits,
            )?)
        }
        MetricExpr::Aggregate {
            op,
            param,
            grouping,
            inner,
        } => {
            let inner = eval_node(store, inner, times, limits)?.into_series(times);
            Value::Vector(aggregate(*op, *param, grouping, inner, times))
        }
        MetricExpr::Binary {
            op,
            return_bool,
            matching,
            lhs,
            rhs,
        } => {
            let lhs = eval_node(store, lhs, times, limits)?;
            let rhs = eval_node(store, rhs, times, limits)?;
            match (matching, lhs, rhs) {
                (Some(m), Value::Vector(l), Value::Vector(r)) => {
                    Value::Vector(matched(*op, *return_bool, m, l, r)?)
                }
                (_, lhs, rhs) => binary(*op, *return_bool, lhs, rhs),
            }
        }
    })
}

/// `lhs op rhs`. A comparison without `bool` keeps the points where it holds (with the
/// vector's value) instead of giving 1 or 0. Between two vectors, each series meets the one of
/// the same labels on the other side, at the steps both have.
fn binary(op: BinOp, return_bool: bool, lhs: Value, rhs: Value) -> Value {
    if op.is_set() {
        return Value::Vector(set_operation(op, lhs, rhs));
    }
    let filter = op.is_comparison() && !return_bool;
    let combine = |a: f64, b: f64, keep: f64| -> Option<f64> {
        let v = op.apply(a, b);
        if filter {
            (v == 1.0).then_some(keep)
        } else {
            Some(v)
        }
    };
    match (lhs, rhs) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(op.apply(a, b)),
        (Value::Vector(v), Value::Scalar(b)) => Value::Vector(
            v.into_iter()
                .map(|s| MetricSeries {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, a)| combine(a, b, a).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .collect(),
        ),
        (Value::Scalar(a), Value::Vector(v)) => Value::Vector(
            v.into_iter()
                .map(|s| MetricSeries {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, b)| combine(a, b, b).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .collect(),
        ),
        (Value::Vector(l), Value::Vector(r)) => {
            let right: HashMap<&BTreeMap<String, String>, &Vec<(i64, f64)>> =
                r.iter().map(|s| (&s.labels, &s.points)).collect();
            Value::Vector(
                l.iter()
                    .filter_map(|s| {
                        let other = right.get(&s.labels)?;
                        let points = s
                            .points
                            .iter()
                            .filter_map(|&(t, a)| {
                                let i = other.binary_search_by_key(&t, |p| p.0).ok()?;
                                combine(a, other[i].1, a).map(|v| (t, v))
                            })
                            .collect();
                        Some(MetricSeries {
                            labels: s.labels.clone(),
                            points,
                        })
                    })
                    .collect(),
            )
        }
    }
}

/// `lhs op on|ignoring (…) [group_left|group_right (…)] rhs`: series meet by their
/// signature (the `on` labels, or all but the `ignoring` ones); without a group each
/// signature must be one series a side, with one the side named by the group may have many,
/// and the result takes the many side's labels plus the `include` labels of the other.
fn matched(
    op: BinOp,
    return_bool: bool,
    m: &Matching,
    l: Vec<MetricSeries>,
    r: Vec<MetricSeries>,
) -> Result<Vec<MetricSeries>, EvalError> {
    let sig = |labels: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        labels
            .iter()
            .filter(|(k, _)| m.labels.iter().any(|n| n == *k) == m.on)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    // The many side iterates; the one side is looked up by signature.
    let many_left = m.group.as_ref().is_none_or(|g| g.left);
    let (many, one) = if many_left { (&l, &r) } else { (&r, &l) };
    let mut index: HashMap<BTreeMap<String, String>, &MetricSeries> = HashMap::new();
    for s in one.iter() {
        if index.insert(sig(&s.labels), s).is_some() {
            return Err(EvalError::Query(format!(
                "found duplicate series for the match group {} on the {} side of the operation; many-to-many matching not allowed",
                format_labels(&sig(&s.labels)),
                if many_left { "right" } else { "left" }
            )));
        }
    }
    let filter = op.is_comparison() && !return_bool;
    let mut out: Vec<MetricSeries> = Vec::new();
    let mut seen: HashMap<BTreeMap<String, String>, ()> = HashMap::new();
    for s in many.iter() {
        let Some(other) = index.get(&sig(&s.labels)) else {
            continue;
        };
        let mut labels = match &m.group {
            None if m.on => sig(&s.labels),
            None => s
                .labels
                .iter()
                .filter(|(k, _)| !m.labels.iter().any(|n| n == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            Some(_) => s.labels.clone(),
        };
        if let Some(g) = &m.group {
            for name in &g.include {
                match other.labels.get(name) {
                    Some(v) => {
                        labels.insert(name.clone(), v.clone());
                    }
                    None => {
                        labels.remove(name);
                    }
                }
            }
        }
        if seen.insert(labels.clone(), ()).is_some() {
            return Err(EvalError::Query(format!(
                "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                format_labels(&labels)
            )));
        }
        let points = s
            .points
            .iter()
            .filter_map(|&(t, v)| {
                let i = other.points.binary_search_by_key(&t, |p| p.0).ok()?;
                let w = other.points[i].1;
                let (a, b) = if many_left { (v, w) } else { (w, v) };
                let result = op.apply(a, b);
                if filter {
                    (result == 1.0).then_some((t, a))
                } else {
                    Some((t, result))
                }
            })
            .collect();
        out.push(MetricSeries { labels, points });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// `and`, `or`, `unless`, step by step: a series meets the one of the same labels on the
/// other side at the same step.
fn set_operation(op: BinOp, lhs: Value, rhs: Value) -> Vec<MetricSeries> {
    // A scalar is one series without labels, present at every step.
    let as_series = |v: Value| match v {
        Value::Vector(v) => (v, false),
        Value::Scalar(n) => (
            vec![MetricSeries {
                labels: BTreeMap::new(),
                points: vec![(i64::MIN, n)],
            }],
            true,
        ),
    };
    let ((l, _), (r, r_scalar)) = (as_series(lhs), as_series(rhs));
    let has = |side: &[MetricSeries], always: bool, labels: &BTreeMap<String, String>, t: i64| {
        side.iter().any(|s| {
            &s.labels == labels && (always || s.points.binary_search_by_key(&t, |p| p.0).is_ok())
        })
    };
    let keep = |side: &[MetricSeries], other: &[MetricSeries], always: bool, want: bool| {
        side.iter()
            .map(|s| MetricSeries {
                labels: s.labels.clone(),
                points: s
                    .points
                    .iter()
                    .filter(|p| has(other, always, &s.labels, p.0) == want)
                    .copied()
                    .collect(),
            })
            .collect::<Vec<_>>()
    };
    match op {
        BinOp::And => keep(&l, &r, r_scalar, true),
        BinOp::Unless => keep(&l, &r, r_scalar, false),
        _ => {
            let mut out = keep(&r, &l, false, false);
            let mut all = l;
            all.append(&mut out);
            all
        }
    }
}

/// The entries of one series in a range aggregation: times, line bytes, and the unwrapped
/// samples.
#[derive(Default)]
struct Points {
    ts: Vec<i64>,
    bytes: Vec<u64>,
    values: Vec<f64>,
}

fn eval_range(
    store: &LogStore,
    op: RangeOp,
    log: &LogExpr,
    (range_ns, offset_ns): (i64, i64),
    grouping: Option<&Grouping>,
    times: &[i64],
    limits: &MetricLimits,
) -> Result<Vec<MetricSeries>, EvalError> {
    let unwrapped = log.unwraps();
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Ok(Vec::new());
    };
    // Windows are (t - range, t], shifted back by the offset.
    let from = first
        .saturating_sub(offset_ns)
        .saturating_sub(range_ns)
        .saturating_add(1);
    let to = last.saturating_sub(offset_ns).saturating_add(1);
    let mut series: HashMap<BTreeMap<String, String>, Points> = HashMap::new();
    // Streams whose labels the pipeline leaves alone keep one key for all their entries.
    let mut stream_keys: HashMap<Labels, BTreeMap<String, String>> = HashMap::new();
    let mut read = 0usize;
    let mut failure: Option<EvalError> = None;
    let needles = log.needles();
    let must_match = log.must_match();
    let wanted = grouping
        .filter(|g| !g.without)
        .and_then(|g| wanted_labels(&log.stages, &g.labels));
    store.scan(
        &log.selector,
        from,
        to,
        &needles,
        must_match.as_ref(),
        &mut |labels, entry| {
            if failure.is_some() {
                return;
            }
            let Some(p) = process_with(&log.stages, labels, entry, true, wanted.as_ref()) else {
                return;
            };
            read += 1;
            if read > limits.entries_max {
                failure = Some(EvalError::Limit(format!(
                    "the query reads more than {} entries; narrow the selector or the range",
                    limits.entries_max
                )));
                return;
            }
            let bytes = p.line.len() as u64;
            let value = p.value.unwrap_or(0.0);
            let key = match p.labels {
                Some(key) => {
                    if let Some(kind) = key.get(ERROR_LABEL) {
                        failure = Some(EvalError::Pipeline {
                            kind: kind.clone(),
                            details: key.get(ERROR_DETAILS_LABEL).cloned().unwrap_or_default(),
                            series: format_labels(&key),
                        });
                        return;
                    }
                    match grouping {
                        Some(g) => group_key(g, &key),
                        None => key,
                    }
                }
                None => stream_keys
                    .entry(labels.clone())
                    .or_insert_with(|| {
                        let key = to_map(labels);
                        match grouping {
                            Some(g) => group_key(g, &key),
                            None => key,
                        }
                    })
                    .clone(),
            };
            let points = series.entry(key).or_default();
            points.ts.push(entry.ts_ns);
            points.bytes.push(bytes);
            if unwrapped {
                points.values.push(value);
            }
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    if op == RangeOp::AbsentOverTime {
        return Ok(absent(log, &series, range_ns, offset_ns, times));
    }
    let range_secs = range_ns as f64 / 1e9;
    let mut out = Vec::with_capacity(series.len());
    for (labels, mut p) in series {
        // The store gives each stream's entries in order per source; sort the pairs by time.
        let mut order: Vec<usize> = (0..p.ts.len()).collect();
        order.sort_by_key(|&i| p.ts[i]);
        p.ts = order.iter().map(|&i| p.ts[i]).collect();
        p.bytes = order.iter().map(|&i| p.bytes[i]).collect();
        if unwrapped {
            p.values = order.iter().map(|&i| p.values[i]).collect();
        }
        // Prefix sums of bytes, for the windows.
        let mut cum = Vec::with_capacity(p.bytes.len() + 1);
        cum.push(0u64);
        for b in &p.bytes {
            cum.push(cum.last().copied().unwrap_or(0) + b);
        }
        let mut points = Vec::new();
        for &t in times {
            let hi_t = t - offset_ns;
            let lo = p.ts.partition_point(|&x| x <= hi_t - range_ns);
            let hi = p.ts.partition_point(|&x| x <= hi_t);
            if hi <= lo {
                continue;
            }
            let count = (hi - lo) as f64;
            let bytes = (cum[hi] - cum[lo]) as f64;
            let window = &p.values[lo.min(p.values.len())..hi.min(p.values.len())];
            let v = match op {
                RangeOp::CountOverTime => count,
                RangeOp::Rate if unwrapped => window.iter().sum::<f64>() / range_secs,
                RangeOp::Rate => count / range_secs,
                RangeOp::BytesOverTime => bytes,
                RangeOp::BytesRate => bytes / range_secs,
                RangeOp::AbsentOverTime => unreachable!("handled above"),
                _ => over_window(op, window, range_secs),
            };
            points.push((t, v));
        }
        out.push(MetricSeries { labels, points });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// `op(inner[range:step] offset o)` at `times`: `inner` evaluated at every multiple of `step`
/// the windows `(t - o - range, t - o]` hold, then `op` over each window's values per series.
fn subquery(
    store: &LogStore,
    op: RangeOp,
    inner: &MetricExpr,
    (range_ns, step_ns, offset_ns): (i64, i64, i64),
    times: &[i64],
    limits: &MetricLimits,
) -> Result<Vec<MetricSeries>, EvalError> {
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return Ok(Vec::new());
    };
    let lo = first - offset_ns - range_ns;
    let hi = last - offset_ns;
    // Multiples of the step, as Prometheus aligns a subquery's steps.
    let mut t = lo.div_euclid(step_ns) * step_ns;
    if t <= lo {
        t += step_ns;
    }
    let mut inner_times = Vec::new();
    while t <= hi {
        inner_times.push(t);
        if inner_times.len() > limits.steps_max {
            return Err(EvalError::Limit(format!(
                "the subquery would take more than {} steps; use a longer step",
                limits.steps_max
            )));
        }
        t += step_ns;
    }
    let series = eval_node(store, inner, &inner_times, limits)?.into_series(&inner_times);
    let range_secs = range_ns as f64 / 1e9;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let mut points = Vec::new();
        for &t in times {
            let end = t - offset_ns;
            let a = s.points.partition_point(|p| p.0 <= end - range_ns);
            let b = s.points.partition_point(|p| p.0 <= end);
            if b <= a {
                continue;
            }
            let window: Vec<f64> = s.points[a..b].iter().map(|p| p.1).collect();
            let v = match op {
                RangeOp::CountOverTime => window.len() as f64,
                RangeOp::Rate => {
                    // As a counter's increase per second, a drop a reset.
                    over_window(RangeOp::RateCounter, &window, range_secs)
                }
                _ => over_window(op, &window, range_secs),
            };
            points.push((t, v));
        }
        out.push(MetricSeries {
            labels: s.labels,
            points,
        });
    }
    Ok(out)
}

/// An unwrapped range aggregation over one window's samples (in time order, not empty).
fn over_window(op: RangeOp, window: &[f64], range_secs: f64) -> f64 {
    let n = window.len() as f64;
    let mean = window.iter().sum::<f64>() / n;
    let variance = window.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    match op {
        RangeOp::SumOverTime => window.iter().sum(),
        RangeOp::AvgOverTime => mean,
        RangeOp::MaxOverTime => window.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        RangeOp::MinOverTime => window.iter().copied().fold(f64::INFINITY, f64::min),
        RangeOp::FirstOverTime => window[0],
        RangeOp::LastOverTime => window[window.len() - 1],
        RangeOp::StdvarOverTime => variance,
        RangeOp::StddevOverTime => variance.sqrt(),
        RangeOp::QuantileOverTime(phi) => quantile(phi, window),
        RangeOp::ApproxCountDistinct => count_distinct(window),
        RangeOp::RateCounter => {
            // The increase, a drop counted as a reset to zero.
            let mut increase = 0.0;
            for pair in window.windows(2) {
                increase += if pair[1] >= pair[0] {
                    pair[1] - pair[0]
                } else {
                    pair[1]
                };
            }
            increase / range_secs
        }
        RangeOp::CountOverTime
        | RangeOp::Rate
        | RangeOp::BytesOverTime
        | RangeOp::BytesRate
        | RangeOp::AbsentOverTime => unreachable!("not over samples"),
    }
}

/// How many distinct values `window` holds, by their bits (hashes, for
/// `approx_count_distinct_over_time`): exact up to [`DISTINCT_EXACT_MAX`] values, else a
/// HyperLogLog estimate over 2^14 registers (a standard error of about 0.8%).
fn count_distinct(window: &[f64]) -> f64 {
    if window.len() <= DISTINCT_EXACT_MAX {
        let mut bits: Vec<u64> = window.iter().map(|v| v.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        return bits.len() as f64;
    }
    const P: u32 = 14;
    const M: usize = 1 << P;
    let mut registers = vec![0u8; M];
    for v in window {
        let h = v.to_bits();
        let i = (h >> (64 - P)) as usize;
        // The rank of the first 1 among the other bits (a 1 past them bounds it).
        let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        registers[i] = registers[i].max(rank);
    }
    let m = M as f64;
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let estimate = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    // Few values: linear counting over the empty registers is the better estimate.
    let estimate = if estimate <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        estimate
    };
    estimate.round()
}

/// The φ-quantile of `values` as Prometheus's `quantile_over_time` takes it: linear
/// interpolation between the closest ranks; below 0 is -Inf, above 1 +Inf.
fn quantile(phi: f64, values: &[f64]) -> f64 {
    if phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = phi * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(sorted.len() - 1);
    let weight = rank - rank.floor();
    sorted[lower] * (1.0 - weight) + sorted[upper] * weight
}

/// `absent_over_time`: 1 at the steps whose window holds no entry of any series, labelled
/// with the selector's equality matchers.
fn absent(
    log: &LogExpr,
    series: &HashMap<BTreeMap<String, String>, Points>,
    range_ns: i64,
    offset_ns: i64,
    times: &[i64],
) -> Vec<MetricSeries> {
    let mut all: Vec<i64> = series.values().flat_map(|p| p.ts.iter().copied()).collect();
    all.sort_unstable();
    let points: Vec<(i64, f64)> = times
        .iter()
        .filter(|&&t| {
            let hi_t = t - offset_ns;
            let lo = all.partition_point(|&x| x <= hi_t - range_ns);
            let hi = all.partition_point(|&x| x <= hi_t);
            hi <= lo
        })
        .map(|&t| (t, 1.0))
        .collect();
    let labels = log
        .selector
        .iter()
        .filter(|m| m.kind() == strata_core::labels::matcher::MatchKind::Equal)
        .map(|m| (m.name().to_owned(), m.value().to_owned()))
        .collect();
    vec![MetricSeries { labels, points }]
}

fn group_key(grouping: &Grouping, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| grouping.labels.iter().any(|g| g == *k) != grouping.without)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn aggregate(
    op: AggOp,
    param: Option<usize>,
    grouping: &Grouping,
    inner: Vec<MetricSeries>,
    times: &[i64],
) -> Vec<MetricSeries> {
    let index: HashMap<i64, usize> = times.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        let k = param.unwrap_or(0);
        // Per group and step, the k largest (smallest) series keep their point.
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
        for (i, s) in inner.iter().enumerate() {
            groups
                .entry(group_key(grouping, &s.labels))
                .or_default()
                .push(i);
        }
        let dense: Vec<Vec<Option<f64>>> = inner
            .iter()
            .map(|s| {
                let mut d = vec![None; times.len()];
                for &(t, v) in &s.points {
                    if let Some(&i) = index.get(&t) {
                        d[i] = Some(v);
                    }
                }
                d
            })
            .collect();
        let mut kept: Vec<Vec<(i64, f64)>> = vec![Vec::new(); inner.len()];
        for members in groups.values() {
            for (step, &t) in times.iter().enumerate() {
                let mut at: Vec<(f64, usize)> = members
                    .iter()
                    .filter_map(|&i| dense[i][step].map(|v| (v, i)))
                    .collect();
                at.sort_by(|a, b| {
                    let o = a.0.total_cmp(&b.0);
                    if op == AggOp::Topk { o.reverse() } else { o }
                });
                for &(v, i) in at.iter().take(k) {
                    kept[i].push((t, v));
                }
            }
        }
        return inner
            .into_iter()
            .zip(kept)
            .map(|(s, points)| MetricSeries {
                labels: s.labels,
                points,
            })
            .filter(|s| !s.points.is_empty())
            .collect();
    }
    // Per group, per step: count, sum, min, max, and the sum of squares about the running mean.
    #[derive(Clone, Copy)]
    struct Acc {
        n: f64,
        sum: f64,
        min: f64,
        max: f64,
        mean: f64,
        m2: f64,
    }
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Option<Acc>>> = BTreeMap::new();
    for s in inner {
        let accs = groups
            .entry(group_key(grouping, &s.labels))
            .or_insert_with(|| vec![None; times.len()]);
        for (t, v) in s.points {
            let Some(&i) = index.get(&t) else { continue };
            let acc = accs[i].get_or_insert(Acc {
                n: 0.0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                mean: 0.0,
                m2: 0.0,
            });
            acc.n += 1.0;
            acc.sum += v;
            acc.min = acc.min.min(v);
            acc.max = acc.max.max(v);
            let delta = v - acc.mean;
            acc.mean += delta / acc.n;
            acc.m2 += delta * (v - acc.mean);
        }
    }
    groups
        .into_iter()
        .map(|(labels, accs)| MetricSeries {
            labels,
            points: times
                .iter()
                .zip(accs)
                .filter_map(|(&t, acc)| {
                    let a = acc?;
                    let v = match op {
                        AggOp::Sum => a.sum,
                        AggOp::Avg => a.sum / a.n,
                        AggOp::Min => a.min,
                        AggOp::Max => a.max,
                        AggOp::Count => a.n,
                        AggOp::Stdvar => a.m2 / a.n,
                        AggOp::Stddev => (a.m2 / a.n).sqrt(),
                        AggOp::Topk | AggOp::Bottomk => unreachable!("handled above"),
                    };
                    Some((t, v))
                })
                .collect(),
        })
        .collect()
}

/// `{a="b", c="d"}`, for messages.
fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::hash_value;

    fn hashes(values: impl Iterator<Item = String>) -> Vec<f64> {
        values.map(|v| f64::from_bits(hash_value(&v))).collect()
    }

    #[test]
    fn distinct_counts_are_exact_for_small_windows_and_close_beyond() {
        // Repeats do not count.
        let small = hashes((0..4_000).map(|i| format!("user-{}", i % 1_234)));
        assert_eq!(count_distinct(&small), 1_234.0);
        for distinct in [5_000usize, 60_000, 1_000_000] {
            let window = hashes((0..distinct * 2).map(|i| format!("{:032x}", i % distinct)));
            let estimate = count_distinct(&window);
            let error = (estimate - distinct as f64).abs() / distinct as f64;
            assert!(error < 0.03, "{distinct}: {estimate} ({error:.4})");
        }
    }
}
