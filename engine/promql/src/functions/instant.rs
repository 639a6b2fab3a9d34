//! Functions of evaluated arguments (instant vectors, scalars, strings): math, clamping and
//! rounding, sorting, `vector` and `scalar`, the calendar fields, and the classic-histogram
//! functions ([`crate::histogram`]).

use promql_parser::parser::Expr;
use strata_core::labels::Labels;

use super::labels::natural_cmp;
use crate::annotations::Annotations;
use crate::error::PromqlError;
use crate::histogram;
use crate::numeric::{cmp_nan_last, go_max, go_min};
use crate::position::Positions;
use crate::value::{ABSENT, Series, Steps, Val, present};

/// A function of evaluated arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum InstantFn {
    /// `f` on every value of the vector; the name is dropped.
    Math(fn(f64) -> f64),
    /// A calendar field of every value (or of each step's time, without an argument).
    Date(fn(f64) -> f64),
    Vector,
    Scalar,
    MinOf,
    MaxOf,
    Round,
    Clamp,
    ClampMin,
    ClampMax,
    Sort {
        desc: bool,
    },
    SortByLabel {
        desc: bool,
    },
    HistogramQuantile,
    HistogramQuantiles,
    HistogramFraction,
}

/// Where a call stands in the query, for its annotations.
#[derive(Debug)]
pub(crate) struct CallSite<'a> {
    /// The call.
    pub call: &'a Expr,
    /// Its arguments' expressions.
    pub args: &'a [Box<Expr>],
    pub positions: &'a Positions,
    /// The query is a range query (sorting is then pointless).
    pub range_query: bool,
}

impl CallSite<'_> {
    /// ` (line:column)` of argument `i`.
    fn at_arg(&self, i: usize) -> String {
        self.positions.suffix(&self.args[i])
    }
}

/// Applies `f` to the evaluated arguments `vals`.
pub(crate) fn apply(
    f: InstantFn,
    mut vals: Vec<Val>,
    steps: Steps,
    site: &CallSite<'_>,
    notes: &mut Annotations,
) -> Result<Val, PromqlError> {
    match f {
        InstantFn::Math(f) => {
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_values(v, true, f)))
        }
        InstantFn::Date(part) => {
            let v = if vals.is_empty() {
                vec![Series {
                    labels: Labels::default(),
                    drop_name: false,
                    values: steps.times().map(|t| t as f64 / 1000.0).collect(),
                }]
            } else {
                take_vector(&mut vals, 0)?
            };
            Ok(Val::Vector(map_values(v, true, part)))
        }
        InstantFn::Vector => {
            let s = take_scalar(&vals, 0)?;
            Ok(Val::Vector(vec![Series {
                labels: Labels::default(),
                drop_name: false,
                values: s.to_vec(),
            }]))
        }
        InstantFn::Scalar => {
            let v = take_vector(&mut vals, 0)?;
            let mut out = vec![f64::NAN; steps.n];
            for (i, o) in out.iter_mut().enumerate() {
                let mut found = v.iter().map(|s| s.values[i]).filter(|&x| present(x));
                if let (Some(x), None) = (found.next(), found.next()) {
                    *o = x;
                }
            }
            Ok(Val::Scalar(out))
        }
        InstantFn::MinOf | InstantFn::MaxOf => {
            let (a, b) = (take_scalar(&vals, 0)?, take_scalar(&vals, 1)?);
            let pick = if matches!(f, InstantFn::MinOf) {
                go_min
            } else {
                go_max
            };
            Ok(Val::Scalar(
                a.iter().zip(b).map(|(&x, &y)| pick(x, y)).collect(),
            ))
        }
        InstantFn::Round => {
            let to_nearest = if vals.len() > 1 {
                take_scalar(&vals, 1)?.to_vec()
            } else {
                vec![1.0; steps.n]
            };
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| {
                let inverse = 1.0 / to_nearest[i];
                (x * inverse + 0.5).floor() / inverse
            })))
        }
        InstantFn::Clamp => {
            let (lo, hi) = (
                take_scalar(&vals, 1)?.to_vec(),
                take_scalar(&vals, 2)?.to_vec(),
            );
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| {
                if hi[i] < lo[i] {
                    ABSENT
                } else {
                    go_max(lo[i], go_min(hi[i], x))
                }
            })))
        }
        InstantFn::ClampMin => {
            let lo = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| go_max(lo[i], x))))
        }
        InstantFn::ClampMax => {
            let hi = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| go_min(hi[i], x))))
        }
        InstantFn::Sort { .. } | InstantFn::SortByLabel { .. }
            if steps.n > 1 || site.range_query =>
        {
            notes.warn(format!(
                "sort is ineffective for range queries since results are always ordered by labels{}",
                site.positions.suffix(site.call)
            ));
            take_vector(&mut vals, 0).map(Val::Vector)
        }
        InstantFn::Sort { desc } => {
            let mut v = take_vector(&mut vals, 0)?;
            if steps.n == 1 {
                v.sort_by(|a, b| cmp_nan_last(a.values[0], b.values[0], desc));
            }
            Ok(Val::Vector(v))
        }
        InstantFn::SortByLabel { desc } => {
            let mut names = Vec::new();
            for i in 1..vals.len() {
                names.push(take_string(&vals, i)?.to_owned());
            }
            let mut v = take_vector(&mut vals, 0)?;
            v.sort_by(|a, b| {
                for n in &names {
                    let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if x != y {
                        let o = natural_cmp(x, y);
                        return if desc { o.reverse() } else { o };
                    }
                }
                let o = a.labels.cmp(&b.labels);
                if desc { o.reverse() } else { o }
            });
            Ok(Val::Vector(v))
        }
        InstantFn::HistogramQuantile => {
            let q = take_scalar(&vals, 0)?.to_vec();
            let v = take_vector(&mut vals, 1)?;
            let at = (site.at_arg(0), site.at_arg(1));
            histogram::quantile(notes, &q, v, steps, at)
        }
        InstantFn::HistogramQuantiles => {
            let label = take_string(&vals, 1)?.to_owned();
            let mut qs = Vec::new();
            for i in 2..site.args.len() {
                qs.push((take_scalar(&vals, i)?.to_vec(), site.at_arg(i)));
            }
            let v = take_vector(&mut vals, 0)?;
            histogram::quantiles(notes, &label, &qs, v, steps, &site.at_arg(0))
        }
        InstantFn::HistogramFraction => {
            let lower = take_scalar(&vals, 0)?.to_vec();
            let upper = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 2)?;
            histogram::fraction(notes, &lower, &upper, v, steps, &site.at_arg(2))
        }
    }
}

fn take_vector(vals: &mut [Val], i: usize) -> Result<Vec<Series>, PromqlError> {
    match vals.get_mut(i) {
        Some(Val::Vector(v)) => Ok(std::mem::take(v)),
        other => Err(PromqlError::Execution(format!(
            "expected an instant vector argument, got {}",
            other.map_or("nothing", |v| v.type_name())
        ))),
    }
}

fn take_scalar(vals: &[Val], i: usize) -> Result<&[f64], PromqlError> {
    match vals.get(i) {
        Some(Val::Scalar(v)) => Ok(v),
        other => Err(PromqlError::Execution(format!(
            "expected a scalar argument, got {}",
            other.map_or("nothing", |v| v.type_name())
        ))),
    }
}

fn take_string(vals: &[Val], i: usize) -> Result<&str, PromqlError> {
    match vals.get(i) {
        Some(Val::String(s)) => Ok(s),
        other => Err(PromqlError::Execution(format!(
            "expected a string argument, got {}",
            other.map_or("nothing", |v| v.type_name())
        ))),
    }
}

/// `f` on every present value; the metric name is dropped (`drop_name`).
fn map_values(series: Vec<Series>, drop_name: bool, f: impl Fn(f64) -> f64) -> Vec<Series> {
    map_indexed(series, drop_name, |_, x| f(x))
}

/// `f(step, value)` on every present value; [`ABSENT`] results remove the point.
pub(crate) fn map_indexed(
    mut series: Vec<Series>,
    drop_name: bool,
    f: impl Fn(usize, f64) -> f64,
) -> Vec<Series> {
    for s in &mut series {
        for (i, v) in s.values.iter_mut().enumerate() {
            if present(*v) {
                *v = f(i, *v);
            }
        }
        s.drop_name |= drop_name;
    }
    series.retain(Series::any_present);
    series
}
