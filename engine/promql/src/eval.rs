//! The evaluator: walks the expression tree once for all steps, reads selectors from
//! storage, and turns the root's value into the query's result.

use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp;
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use super::value::{
    Annotations, RangeData, RangeVal, Series, Steps, Val, Windows, canonical, edit, present,
};
use super::{
    EachSeries, EngineOptions, InstantSample, PromqlError, Query, QueryOutput, RangeSeries, Stop,
    Storage, Value, aggregate, binary, functions, position::Positions,
};
use strata_core::labels::Labels;
use strata_core::labels::matcher::{MatchKind, Matcher};
use strata_core::sample::{Sample, is_stale_marker};

/// What [`Ctx::range_series`] calls for each series of a range vector: the windows, its
/// labels, whether its name is to be dropped, and its samples.
pub(super) type EachRangeSeries<'a> =
    dyn FnMut(&Windows, &Labels, bool, &[Sample]) -> Result<(), PromqlError> + 'a;

/// State shared by the nodes of one query.
pub(super) struct Ctx<'a> {
    pub opts: &'a EngineOptions,
    storage: &'a dyn Storage,
    stop: &'a Stop,
    /// The query's first and last evaluation times (`@ start()`, `@ end()`).
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step, milliseconds (0 for an instant query).
    pub query_step: i64,
    pub annotations: Annotations,
    /// Where the query's nodes start, for annotations.
    positions: Positions,
    /// Samples read from storage so far, against `opts.samples_max`.
    samples_loaded: usize,
}

/// Checks what the parser lets through but Prometheus rejects.
pub(super) fn check(expr: &Expr) -> Result<(), PromqlError> {
    let mut err = None;
    walk(expr, &mut |e| {
        if let Expr::VectorSelector(vs) = e
            && !vs.matchers.or_matchers.is_empty()
        {
            err = Some(PromqlError::Parse(
                "\"or\" is not allowed inside a vector selector".into(),
            ));
        }
    });
    err.map_or(Ok(()), Err)
}

/// Calls `f` on `expr` and every expression below it.
pub(super) fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, f);
            }
            walk(&a.expr, f);
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::MatrixSelector(m) => f(&Expr::VectorSelector(m.vs.clone())),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, f);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::Extension(_) => {}
    }
}

/// Evaluates `expr` at `start`, `start + step`, … `end` and shapes the result: an instant
/// query (`instant`) returns its value at `start`, a range query a matrix.
#[allow(clippy::too_many_arguments)] // reason: the query's whole description, passed once
pub(super) fn run(
    opts: &EngineOptions,
    storage: &dyn Storage,
    query: &Query,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
    stop: &Stop,
) -> Result<QueryOutput, PromqlError> {
    let steps = Steps {
        start,
        step,
        n: ((end - start) / step + 1) as usize,
    };
    let mut ctx = Ctx {
        opts,
        storage,
        stop,
        query_start: start,
        query_end: end,
        query_step: if instant { 0 } else { step },
        annotations: Annotations::default(),
        positions: Positions::new(&query.text, &query.expr),
        samples_loaded: 0,
    };
    let val = ctx.eval(&query.expr, steps)?;
    let value = match val {
        Val::Scalar(v) if instant => Value::Scalar { t: start, v: v[0] },
        Val::Scalar(v) => Value::Matrix(vec![RangeSeries {
            labels: Labels::default(),
            samples: steps
                .times()
                .zip(v)
                .map(|(t, v)| Sample::new(t, v))
                .collect(),
        }]),
        Val::String(s) if instant => Value::String { t: start, s },
        Val::Vector(series) => {
            let series = finish_names(series, steps)?;
            if instant {
                Value::Vector(
                    series
                        .into_iter()
                        .filter(|s| present(s.values[0]))
                        .map(|s| InstantSample {
                            labels: s.labels,
                            t: start,
                            v: s.values[0],
                        })
                        .collect(),
                )
            } else {
                let mut out: Vec<RangeSeries> = series
                    .into_iter()
                    .filter(Series::any_present)
                    .map(|s| RangeSeries {
                        labels: s.labels,
                        samples: steps
                            .times()
                            .zip(s.values)
                            .filter(|&(_, v)| present(v))
                            .map(|(t, v)| Sample::new(t, v))
                            .collect(),
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        }
        Val::Range(r) if instant => {
            let mut out = Vec::new();
            for s in &r.series {
                let mut window: &[Sample] = &[];
                r.windows.windows(&s.samples, |_, w| window = w);
                if !window.is_empty() {
                    out.push(RangeSeries {
                        labels: s.labels.clone(),
                        samples: window.to_vec(),
                    });
                }
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
        other => {
            return Err(PromqlError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )));
        }
    };
    Ok(QueryOutput {
        value,
        warnings: ctx.annotations.warnings,
        infos: ctx.annotations.infos,
    })
}

/// Removes the metric name where an operation asked for it, then merges series that are left
/// with equal labels (an error where two have a value at the same step).
fn finish_names(series: Vec<Series>, steps: Steps) -> Result<Vec<Series>, PromqlError> {
    if !series.iter().any(|s| s.drop_name) {
        return Ok(series);
    }
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for mut s in series {
        if s.drop_name {
            s.labels = edit::without_name(&s.labels);
            s.drop_name = false;
        }
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let into = &mut out[i];
                for k in 0..steps.n {
                    if present(s.values[k]) {
                        if present(into.values[k]) {
                            return Err(PromqlError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        into.values[k] = s.values[k];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Milliseconds of a parsed duration.
pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch of a parsed time (which may be before it).
fn time_millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The engine's matchers for a parsed selector: the name of `foo{…}` becomes a matcher on
/// `__name__`. The parser's `or` inside braces, which is not PromQL, is refused.
pub fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, PromqlError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::Parse(
            "\"or\" is not allowed inside a vector selector".into(),
        ));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(strata_core::labels::METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        let kind = match m.op {
            MatchOp::Equal => MatchKind::Equal,
            MatchOp::NotEqual => MatchKind::NotEqual,
            MatchOp::Re(_) => MatchKind::Regex,
            MatchOp::NotRe(_) => MatchKind::NotRegex,
        };
        out.push(
            Matcher::new(kind, &m.name, &m.value)
                .map_err(|e| PromqlError::BadData(e.to_string()))?,
        );
    }
    Ok(out)
}

impl Ctx<'_> {
    /// ` (line:column)` of `e` in the query text, for an annotation about it.
    pub fn at(&self, e: &Expr) -> String {
        self.positions.suffix(e)
    }

    /// Ends the query if its caller stopped it.
    pub fn check_stop(&self) -> Result<(), PromqlError> {
        self.stop.check()
    }

    /// Evaluates `expr` at every step of `steps`.
    pub fn eval(&mut self, expr: &Expr, steps: Steps) -> Result<Val, PromqlError> {
        self.stop.check()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; steps.n])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, steps),
            Expr::Unary(u) => match self.eval(&u.expr, steps)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut series) => {
                    for s in &mut series {
                        for v in &mut s.values {
                            if present(*v) {
                                *v = -*v;
                            }
                        }
                        s.drop_name = true;
                    }
                    Ok(Val::Vector(series))
                }
                other => Err(PromqlError::Execution(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => self.vector_selector(vs, steps, false),
            Expr::MatrixSelector(ms) => self.matrix_selector(ms, steps),
            Expr::Subquery(sq) => self.subquery(sq, steps),
            Expr::Binary(b) => binary::eval(self, b, steps),
            Expr::Aggregate(a) => aggregate::eval(self, a, steps),
            Expr::Call(c) => functions::eval(self, expr, c, steps),
            Expr::Extension(_) => Err(PromqlError::Execution(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// Evaluates `expr`, which must be an instant vector.
    pub fn eval_vector(&mut self, expr: &Expr, steps: Steps) -> Result<Vec<Series>, PromqlError> {
        match self.eval(expr, steps)? {
            Val::Vector(v) => Ok(v),
            other => Err(PromqlError::Execution(format!(
                "expected an instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr`, which must be a scalar.
    pub fn eval_scalar(&mut self, expr: &Expr, steps: Steps) -> Result<Vec<f64>, PromqlError> {
        match self.eval(expr, steps)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::Execution(format!(
                "expected a scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// The evaluation time of each step: the `@` time if there is one, else the step's.
    fn eval_times(&self, at: &Option<AtModifier>, steps: Steps) -> Vec<i64> {
        let fixed = match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(time_millis(*t)),
        };
        steps.times().map(|t| fixed.unwrap_or(t)).collect()
    }

    /// The time each step reads data at, after `@` and `offset`: never decreasing.
    fn read_times(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        steps: Steps,
    ) -> Vec<i64> {
        let shift = match offset {
            None => 0,
            Some(Offset::Pos(d)) => millis(*d),
            Some(Offset::Neg(d)) => -millis(*d),
        };
        self.eval_times(at, steps)
            .into_iter()
            .map(|t| t.saturating_sub(shift))
            .collect()
    }

    /// Calls `each(labels, samples)` for the series matching `matchers` with samples in
    /// `[mint, maxt]`, counting them against the query's budget.
    fn select_each(
        &mut self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        self.select_counted(false, matchers, mint, maxt, each)
    }

    /// [`Ctx::select_each`]; with `newest`, `samples` may hold only each series' newest
    /// sample in range ([`Storage::select_newest_each`]).
    fn select_counted(
        &mut self,
        newest: bool,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        let budget = self.opts.samples_max.saturating_sub(self.samples_loaded);
        let mut loaded = 0usize;
        let stop = self.stop;
        let mut counted = |labels: &Labels, samples: &[Sample]| {
            loaded += samples.len();
            stop.check()?;
            each(labels, samples)
        };
        if newest {
            self.storage
                .select_newest_each(mint, maxt, matchers, budget, &mut counted)?;
        } else {
            self.storage
                .select_each(mint, maxt, matchers, budget, &mut counted)?;
        }
        self.samples_loaded += loaded;
        Ok(())
    }

    /// A vector selector's value at every step: each series' newest sample in
    /// `(t - lookback, t]`, unless that is a stale marker. With `timestamps`, the value is
    /// the sample's time in seconds instead (for `timestamp()`).
    pub fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        steps: Steps,
        timestamps: bool,
    ) -> Result<Val, PromqlError> {
        let matchers = selector_matchers(vs)?;
        let times = self.read_times(&vs.at, &vs.offset, steps);
        let (Some(&lo), Some(&hi)) = (times.first(), times.last()) else {
            return Ok(Val::Vector(Vec::new()));
        };
        let lookback = self.opts.lookback_delta_ms;
        // The first time a window reaches back to: its start, or just after it.
        let open = i64::from(!self.opts.left_closed_windows);
        let mut out = Vec::new();
        // At one time only each series' newest sample matters.
        self.select_counted(
            times.len() == 1,
            &matchers,
            lo.saturating_sub(lookback) + open,
            hi,
            &mut |labels, samples| {
                let mut values = vec![super::value::ABSENT; steps.n];
                let mut next = 0;
                let mut any = false;
                for (i, &t) in times.iter().enumerate() {
                    while next < samples.len() && samples[next].t <= t {
                        next += 1;
                    }
                    if next == 0 {
                        continue;
                    }
                    let last = samples[next - 1];
                    if last.t >= t - lookback + open && !is_stale_marker(last.v) {
                        values[i] = if timestamps {
                            last.t as f64 / 1000.0
                        } else {
                            canonical(last.v)
                        };
                        any = true;
                    }
                }
                if any {
                    out.push(Series {
                        labels: labels.clone(),
                        drop_name: false,
                        values,
                    });
                }
                Ok(())
            },
        )?;
        Ok(Val::Vector(out))
    }

    /// Where a matrix selector's windows lie, its matchers and the time range to read.
    fn matrix_windows(
        &self,
        ms: &MatrixSelector,
        steps: Steps,
    ) -> Result<(Windows, Vec<Matcher>, i64, i64), PromqlError> {
        let matchers = selector_matchers(&ms.vs)?;
        let ends = self.read_times(&ms.vs.at, &ms.vs.offset, steps);
        let range_ms = millis(ms.range);
        let lo = ends.first().copied().unwrap_or(0);
        let hi = ends.last().copied().unwrap_or(-1);
        let open = i64::from(!self.opts.left_closed_windows);
        let windows = Windows {
            range_ms,
            ends,
            ts: steps.times().collect(),
            left_closed: self.opts.left_closed_windows,
        };
        Ok((windows, matchers, lo.saturating_sub(range_ms) + open, hi))
    }

    /// Calls `each(windows, labels, drop_name, samples)` for every series of the range
    /// vector `expr` (stale markers removed). A matrix selector is read a series at a time,
    /// never held whole; anything else is evaluated first.
    pub fn range_series(
        &mut self,
        expr: &Expr,
        steps: Steps,
        each: &mut EachRangeSeries<'_>,
    ) -> Result<Windows, PromqlError> {
        let mut inner = expr;
        while let Expr::Paren(p) = inner {
            inner = &p.expr;
        }
        if let Expr::MatrixSelector(ms) = inner {
            let (windows, matchers, mint, maxt) = self.matrix_windows(ms, steps)?;
            if mint > maxt {
                return Ok(windows);
            }
            let mut scratch: Vec<Sample> = Vec::new();
            self.select_each(&matchers, mint, maxt, &mut |labels, samples| {
                let samples = if samples
                    .iter()
                    .any(|s| is_stale_marker(s.v) || !present(s.v))
                {
                    scratch.clear();
                    scratch.extend(
                        samples
                            .iter()
                            .filter(|s| !is_stale_marker(s.v))
                            .map(|s| Sample::new(s.t, canonical(s.v))),
                    );
                    &scratch[..]
                } else {
                    samples
                };
                if samples.is_empty() {
                    return Ok(());
                }
                each(&windows, labels, false, samples)
            })?;
            return Ok(windows);
        }
        match self.eval(expr, steps)? {
            Val::Range(r) => {
                for s in &r.series {
                    each(&r.windows, &s.labels, s.drop_name, &s.samples)?;
                }
                Ok(r.windows)
            }
            other => Err(PromqlError::Execution(format!(
                "expected a range vector, got {}",
                other.type_name()
            ))),
        }
    }

    fn matrix_selector(&mut self, ms: &MatrixSelector, steps: Steps) -> Result<Val, PromqlError> {
        let mut series = Vec::new();
        let windows = self.range_series(
            &Expr::MatrixSelector(ms.clone()),
            steps,
            &mut |_, labels, drop_name, samples| {
                series.push(RangeData {
                    labels: labels.clone(),
                    drop_name,
                    samples: samples.to_vec(),
                });
                Ok(())
            },
        )?;
        Ok(Val::Range(RangeVal { series, windows }))
    }

    /// A subquery: the inner expression at every multiple of the subquery's step that falls in
    /// some window, as the samples of a range vector.
    fn subquery(&mut self, sq: &SubqueryExpr, steps: Steps) -> Result<Val, PromqlError> {
        let ends = self.read_times(&sq.at, &sq.offset, steps);
        let ts: Vec<i64> = steps.times().collect();
        let range_ms = millis(sq.range);
        let step = sq.step.map_or(self.opts.subquery_step_ms, millis).max(1);
        let left_closed = self.opts.left_closed_windows;
        let empty = |ends, ts| {
            Ok(Val::Range(RangeVal {
                series: Vec::new(),
                windows: Windows {
                    range_ms,
                    ends,
                    ts,
                    left_closed,
                },
            }))
        };
        let (Some(&lo), Some(&hi)) = (ends.first(), ends.last()) else {
            return empty(ends, ts);
        };
        // The first multiple of the step in the earliest window (after its start, or at it
        // for left-closed windows).
        let from = lo.saturating_sub(range_ms) + i64::from(!self.opts.left_closed_windows);
        let first = from.saturating_add(step - 1).div_euclid(step) * step;
        if first > hi {
            return empty(ends, ts);
        }
        let n = ((hi - first) / step + 1) as usize;
        if n > self.opts.samples_max {
            return Err(PromqlError::TooManySamples {
                phase: "query execution",
                max: self.opts.samples_max,
            });
        }
        let inner = Steps {
            start: first,
            step,
            n,
        };
        let series = match self.eval(&sq.expr, inner)? {
            Val::Vector(series) => series
                .into_iter()
                .map(|s| RangeData {
                    samples: inner
                        .times()
                        .zip(&s.values)
                        .filter(|&(_, &v)| present(v))
                        .map(|(t, &v)| Sample::new(t, v))
                        .collect(),
                    labels: s.labels,
                    drop_name: s.drop_name,
                })
                .filter(|s| !s.samples.is_empty())
                .collect(),
            Val::Scalar(v) => vec![RangeData {
                labels: Labels::default(),
                drop_name: false,
                samples: inner
                    .times()
                    .zip(v)
                    .map(|(t, v)| Sample::new(t, v))
                    .collect(),
            }],
            other => {
                return Err(PromqlError::Execution(format!(
                    "subquery is only allowed on instant vector, got {}",
                    other.type_name()
                )));
            }
        };
        Ok(Val::Range(RangeVal {
            series,
            windows: Windows {
                range_ms,
                ends,
                ts,
                left_closed,
            },
        }))
    }
}
