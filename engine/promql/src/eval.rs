//! The evaluator: walks the expression tree once for all steps, evaluates each node's
//! operands, and hands them to the operator that computes the node's value (`aggregate`,
//! `binary`, the function table in `functions`); selectors are read through the context
//! (`selector`). The root's value becomes the query's result in `result`.

use promql_parser::parser::{AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, SubqueryExpr};
use strata_core::labels::Labels;
use strata_core::sample::Sample;

use crate::aggregate::{self, AggregateOp, Grouping};
use crate::binary::{self, BinaryOp, Matching};
use crate::ctx::{Ctx, millis};
use crate::error::PromqlError;
use crate::functions::absent;
use crate::functions::instant::{self, CallSite, map_indexed};
use crate::functions::labels::LabelEdit;
use crate::functions::range::{self, note_non_counter};
use crate::functions::{self, Function, QueryValue};
use crate::options::EngineOptions;
use crate::result::{self, QueryOutput};
use crate::stop::Stop;
use crate::storage::Storage;
use crate::value::{EachRangeSeries, RangeData, RangeVal, Series, Steps, Val, Windows, present};

/// Evaluates `expr` (parsed from `text`) at `start`, `start + step`, … `end` and shapes the
/// result: an instant query (`instant`) returns its value at `start`, a range query a matrix.
#[allow(clippy::too_many_arguments)] // reason: the query's whole description, passed once
pub(crate) fn run(
    opts: &EngineOptions,
    storage: &dyn Storage,
    expr: &Expr,
    text: &str,
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
    let query_step = if instant { 0 } else { step };
    let mut ctx = Ctx::new(opts, storage, stop, start, end, query_step, text, expr);
    let val = ctx.eval(expr, steps)?;
    let value = result::shape(val, steps, instant)?;
    Ok(QueryOutput {
        value,
        warnings: ctx.annotations.warnings,
        infos: ctx.annotations.infos,
    })
}

impl Ctx<'_> {
    /// Evaluates `expr` at every step of `steps`.
    pub fn eval(&mut self, expr: &Expr, steps: Steps) -> Result<Val, PromqlError> {
        self.check_stop()?;
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
            Expr::MatrixSelector(ms) => {
                let mut series = Vec::new();
                let windows =
                    self.matrix_series(ms, steps, &mut |_, labels, drop_name, samples| {
                        series.push(RangeData {
                            labels: labels.clone(),
                            drop_name,
                            samples: samples.to_vec(),
                        });
                        Ok(())
                    })?;
                Ok(Val::Range(RangeVal { series, windows }))
            }
            Expr::Subquery(sq) => self.subquery(sq, steps),
            Expr::Binary(b) => self.binary(b, steps),
            Expr::Aggregate(a) => self.aggregate(a, steps),
            Expr::Call(c) => self.call(expr, c, steps),
            Expr::Extension(_) => Err(PromqlError::Execution(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// Evaluates `expr`, which must be an instant vector.
    fn eval_vector(&mut self, expr: &Expr, steps: Steps) -> Result<Vec<Series>, PromqlError> {
        match self.eval(expr, steps)? {
            Val::Vector(v) => Ok(v),
            other => Err(PromqlError::Execution(format!(
                "expected an instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr`, which must be a scalar.
    fn eval_scalar(&mut self, expr: &Expr, steps: Steps) -> Result<Vec<f64>, PromqlError> {
        match self.eval(expr, steps)? {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::Execution(format!(
                "expected a scalar, got {}",
                other.type_name()
            ))),
        }
    }

    fn binary(&mut self, b: &BinaryExpr, steps: Steps) -> Result<Val, PromqlError> {
        let lhs = self.eval(&b.lhs, steps)?;
        let rhs = self.eval(&b.rhs, steps)?;
        let op = BinaryOp::from_token(b.op.id())
            .ok_or_else(|| PromqlError::Execution(format!("unknown binary operator {}", b.op)))?;
        binary::apply(
            op,
            &Matching::from_modifier(b.modifier.as_ref()),
            lhs,
            rhs,
            steps,
        )
    }

    fn aggregate(&mut self, a: &AggregateExpr, steps: Steps) -> Result<Val, PromqlError> {
        // The parameter is evaluated first, as Prometheus does.
        let param = match &a.param {
            Some(p) => Some(self.eval(p, steps)?),
            None => None,
        };
        let input = self.eval_vector(&a.expr, steps)?;
        let param_at = a.param.as_ref().map_or(String::new(), |p| self.at(p));
        let op = AggregateOp::from_token(a.op.id())
            .ok_or_else(|| PromqlError::Execution(format!("unknown aggregation {}", a.op)))?;
        let grouping = match &a.modifier {
            None => Grouping::All,
            Some(LabelModifier::Include(l)) => Grouping::By(&l.labels),
            Some(LabelModifier::Exclude(l)) => Grouping::Without(&l.labels),
        };
        aggregate::apply(
            op,
            param,
            input,
            grouping,
            steps,
            &mut self.annotations,
            &param_at,
        )
        .map(Val::Vector)
    }

    /// A function call: its operands evaluated as the function table says it needs them.
    fn call(&mut self, expr: &Expr, call: &Call, steps: Steps) -> Result<Val, PromqlError> {
        let name = call.func.name;
        let args = &call.args.args;
        let Some(function) = functions::lookup(name) else {
            // Every argument is evaluated first, as for any function.
            for a in args {
                self.eval(a, steps)?;
            }
            return Err(PromqlError::Execution(format!(
                "function {name}() is not supported"
            )));
        };
        match function {
            Function::Query(q) => {
                let seconds = |ms: i64| ms as f64 / 1000.0;
                let constant = match q {
                    QueryValue::Time => {
                        return Ok(Val::Scalar(steps.times().map(seconds).collect()));
                    }
                    QueryValue::Pi => std::f64::consts::PI,
                    QueryValue::Step => seconds(self.query_step),
                    QueryValue::Range => seconds(self.query_end - self.query_start),
                    QueryValue::Start => seconds(self.query_start),
                    QueryValue::End => seconds(self.query_end),
                };
                Ok(Val::Scalar(vec![constant; steps.n]))
            }
            Function::Timestamp => self.timestamp(&args[0], steps),
            Function::Absent => {
                let v = self.eval_vector(&args[0], steps)?;
                Ok(absent::absent(&args[0], &v, steps.n))
            }
            Function::AbsentOverTime => {
                let mut any = vec![false; steps.n];
                self.range_series(&args[0], steps, &mut |windows, _, _, samples| {
                    windows.windows(samples, |i, w| any[i] |= !w.is_empty());
                    Ok(())
                })?;
                Ok(absent::absent_over_time(&args[0], any))
            }
            Function::LabelReplace | Function::LabelJoin => {
                let edit = if matches!(function, Function::LabelReplace) {
                    LabelEdit::replace(args)?
                } else {
                    LabelEdit::join(args)?
                };
                let series = self.eval_vector(&args[0], steps)?;
                edit.apply(series, steps).map(Val::Vector)
            }
            Function::Range(spec) => {
                // The range vector is one argument; the others are scalars, evaluated per step
                // (`predict_linear`, smoothing factors, `quantile_over_time`'s φ).
                let mut scalars: Vec<Vec<f64>> = Vec::new();
                for (i, a) in args.iter().enumerate() {
                    if i != spec.range_arg {
                        scalars.push(self.eval_scalar(a, steps)?);
                    }
                }
                let first_at = self.at(&args[0]);
                spec.check_params(&scalars, &mut self.annotations, &first_at)?;
                let arg = &args[spec.range_arg];
                let out = range::eval(&spec, &scalars, steps, |each| {
                    self.range_series(arg, steps, each)
                })?;
                let position = self.at(arg);
                for labels in &out.not_counters {
                    note_non_counter(&mut self.annotations, labels, &position);
                }
                self.check_stop()?;
                Ok(Val::Vector(out.series))
            }
            Function::Instant(f) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, steps)?);
                }
                let site = CallSite {
                    call: expr,
                    args,
                    positions: &self.positions,
                    range_query: self.query_step > 0,
                };
                instant::apply(f, vals, steps, &site, &mut self.annotations)
            }
        }
    }

    /// `timestamp(v)`: the time of each value in seconds; for a selector, the time of the
    /// sample it selected.
    fn timestamp(&mut self, arg: &Expr, steps: Steps) -> Result<Val, PromqlError> {
        let mut inner = arg;
        while let Expr::Paren(p) = inner {
            inner = &p.expr;
        }
        let series = if let Expr::VectorSelector(vs) = inner {
            match self.vector_selector(vs, steps, true)? {
                Val::Vector(v) => v,
                _ => Vec::new(),
            }
        } else {
            let v = self.eval_vector(arg, steps)?;
            map_indexed(v, false, |i, _| steps.at(i) as f64 / 1000.0)
        };
        Ok(Val::Vector(
            series
                .into_iter()
                .map(|mut s| {
                    s.drop_name = true;
                    s
                })
                .collect(),
        ))
    }

    /// Calls `each(windows, labels, drop_name, samples)` for every series of the range
    /// vector `expr` (stale markers removed). A matrix selector is read a series at a time,
    /// never held whole; anything else is evaluated first.
    fn range_series(
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
            return self.matrix_series(ms, steps, each);
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
