//! Function calls: argument evaluation and the functions of instant vectors and scalars
//! (math, clamping and rounding, label manipulation, sorting, `histogram_quantile` over classic
//! buckets, time and date functions, `absent`, `scalar`, `vector`); functions of range
//! vectors are in `range_functions`, called from here window by window.

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::PromqlError;
use super::eval::Ctx;
use super::histogram;
use super::range_functions::{self as rf, Window};
use super::value::{ABSENT, Series, Steps, Val, edit, present};
use strata_core::labels::{Labels, METRIC_NAME};
use strata_core::sample::Sample;

pub(super) fn eval(
    ctx: &mut Ctx<'_>,
    expr: &Expr,
    call: &Call,
    steps: Steps,
) -> Result<Val, PromqlError> {
    let name = call.func.name;
    let args = &call.args.args;
    match name {
        "time" => {
            return Ok(Val::Scalar(
                steps.times().map(|t| t as f64 / 1000.0).collect(),
            ));
        }
        "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; steps.n])),
        // The query's own parameters, in seconds.
        "step" => return Ok(Val::Scalar(vec![ctx.query_step as f64 / 1000.0; steps.n])),
        "range" => {
            let range = (ctx.query_end - ctx.query_start) as f64 / 1000.0;
            return Ok(Val::Scalar(vec![range; steps.n]));
        }
        "start" => return Ok(Val::Scalar(vec![ctx.query_start as f64 / 1000.0; steps.n])),
        "end" => return Ok(Val::Scalar(vec![ctx.query_end as f64 / 1000.0; steps.n])),
        "timestamp" => return timestamp(ctx, &args[0], steps),
        "absent" => return absent(ctx, &args[0], steps),
        "absent_over_time" => return absent_over_time(ctx, &args[0], steps),
        "label_replace" => return label_replace(ctx, args, steps),
        "label_join" => return label_join(ctx, args, steps),
        _ => {}
    }
    // The hot range functions get an evaluation loop of their own (the call inlined); the
    // rest share one through a function pointer.
    match name {
        "rate" => {
            let f = |w: Window<'_>, _: &[f64]| rf::extrapolated_rate(w, true, true);
            return eval_range_function(ctx, name, f, args, steps);
        }
        "increase" => {
            let f = |w: Window<'_>, _: &[f64]| rf::extrapolated_rate(w, true, false);
            return eval_range_function(ctx, name, f, args, steps);
        }
        "irate" => {
            let f = |w: Window<'_>, _: &[f64]| rf::instant_delta(w, true);
            return eval_range_function(ctx, name, f, args, steps);
        }
        _ => {}
    }
    if let Some(f) = range_function(name) {
        return eval_range_function(ctx, name, f, args, steps);
    }
    // Every remaining function takes its arguments evaluated.
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(ctx.eval(a, steps)?);
    }
    if let Some(f) = math_function(name) {
        let v = take_vector(&mut vals, 0)?;
        return Ok(Val::Vector(map_values(v, true, f)));
    }
    match name {
        "vector" => {
            let s = take_scalar(&vals, 0)?;
            Ok(Val::Vector(vec![Series {
                labels: Labels::default(),
                drop_name: false,
                values: s.to_vec(),
            }]))
        }
        "scalar" => {
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
        "min_of" | "max_of" => {
            let (a, b) = (take_scalar(&vals, 0)?, take_scalar(&vals, 1)?);
            let pick = if name == "min_of" { go_min } else { go_max };
            Ok(Val::Scalar(
                a.iter().zip(b).map(|(&x, &y)| pick(x, y)).collect(),
            ))
        }
        "round" => {
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
        "clamp" => {
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
        "clamp_min" => {
            let lo = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| go_max(lo[i], x))))
        }
        "clamp_max" => {
            let hi = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 0)?;
            Ok(Val::Vector(map_indexed(v, true, |i, x| go_min(hi[i], x))))
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
            if steps.n > 1 || ctx.query_step > 0 =>
        {
            ctx.annotations.warn(format!(
                "sort is ineffective for range queries since results are always ordered by labels{}",
                ctx.at(expr)
            ));
            take_vector(&mut vals, 0).map(Val::Vector)
        }
        "sort" | "sort_desc" => {
            let mut v = take_vector(&mut vals, 0)?;
            if steps.n == 1 {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| cmp_nan_last(a.values[0], b.values[0], desc));
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut names = Vec::new();
            for i in 1..vals.len() {
                names.push(take_string(&vals, i)?.to_owned());
            }
            let mut v = take_vector(&mut vals, 0)?;
            let desc = name == "sort_by_label_desc";
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
        "histogram_quantile" => {
            let q = take_scalar(&vals, 0)?.to_vec();
            let v = take_vector(&mut vals, 1)?;
            let at = (ctx.at(&args[0]), ctx.at(&args[1]));
            histogram::quantile(ctx, &q, v, steps, at)
        }
        "histogram_quantiles" => {
            let label = take_string(&vals, 1)?.to_owned();
            let mut qs = Vec::new();
            for (i, arg) in args.iter().enumerate().skip(2) {
                qs.push((take_scalar(&vals, i)?.to_vec(), ctx.at(arg)));
            }
            let v = take_vector(&mut vals, 0)?;
            let v_at = ctx.at(&args[0]);
            histogram::quantiles(ctx, &label, &qs, v, steps, &v_at)
        }
        "histogram_fraction" => {
            let lower = take_scalar(&vals, 0)?.to_vec();
            let upper = take_scalar(&vals, 1)?.to_vec();
            let v = take_vector(&mut vals, 2)?;
            let v_at = ctx.at(&args[2]);
            histogram::fraction(ctx, &lower, &upper, v, steps, &v_at)
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "hour" | "minute" => {
            let v = if vals.is_empty() {
                vec![Series {
                    labels: Labels::default(),
                    drop_name: false,
                    values: steps.times().map(|t| t as f64 / 1000.0).collect(),
                }]
            } else {
                take_vector(&mut vals, 0)?
            };
            let part = date_part(name);
            Ok(Val::Vector(map_values(v, true, part)))
        }
        _ => Err(PromqlError::Execution(format!(
            "function {name}() is not supported"
        ))),
    }
}

/// Orders numbers ascending (descending with `desc`), NaN after every number either way.
pub(super) fn cmp_nan_last(x: f64, y: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
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
fn map_indexed(
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

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        "rad" => |x| x * std::f64::consts::PI / 180.0,
        "sgn" => |x: f64| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        _ => return None,
    })
}

/// A range function: its window computation, given the window and the step's scalar
/// arguments.
type RangeFn = fn(Window<'_>, &[f64]) -> Option<f64>;

fn range_function(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => |w, _| rf::extrapolated_rate(w, true, true),
        "increase" => |w, _| rf::extrapolated_rate(w, true, false),
        "delta" => |w, _| rf::extrapolated_rate(w, false, false),
        "irate" => |w, _| rf::instant_delta(w, true),
        "idelta" => |w, _| rf::instant_delta(w, false),
        "deriv" => |w, _| rf::deriv(w),
        "predict_linear" => |w, a| rf::predict_linear(w, a[0]),
        "holt_winters" | "double_exponential_smoothing" => {
            |w, a| rf::double_exponential_smoothing(w, a[0], a[1])
        }
        "changes" => |w, _| rf::changes(w),
        "resets" => |w, _| rf::resets(w),
        "sum_over_time" => |w, _| rf::sum_over_time(w),
        "avg_over_time" => |w, _| rf::avg_over_time(w),
        "count_over_time" => |w, _| rf::count_over_time(w),
        "min_over_time" => |w, _| rf::min_over_time(w),
        "max_over_time" => |w, _| rf::max_over_time(w),
        "last_over_time" => |w, _| rf::last_over_time(w),
        "first_over_time" => |w, _| rf::first_over_time(w),
        "present_over_time" => |w, _| rf::present_over_time(w),
        "quantile_over_time" => |w, a| rf::quantile_over_time(w, a[0]),
        "stddev_over_time" => |w, _| rf::variance_over_time(w).map(f64::sqrt),
        "stdvar_over_time" => |w, _| rf::variance_over_time(w),
        "mad_over_time" => |w, _| rf::mad_over_time(w),
        "ts_of_min_over_time" => |w, _| rf::ts_of_extreme_over_time(w, true),
        "ts_of_max_over_time" => |w, _| rf::ts_of_extreme_over_time(w, false),
        "ts_of_last_over_time" => |w, _| rf::ts_of_last_over_time(w),
        "ts_of_first_over_time" => |w, _| rf::ts_of_first_over_time(w),
        _ => return None,
    })
}

/// Whether a range function's result keeps the series' metric name.
fn keeps_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

/// Whether `rate`-like functions should note that the metric may not be a counter.
fn wants_counter(name: &str) -> bool {
    matches!(name, "rate" | "increase" | "irate")
}

fn eval_range_function(
    ctx: &mut Ctx<'_>,
    name: &str,
    f: impl Fn(Window<'_>, &[f64]) -> Option<f64>,
    args: &[Box<Expr>],
    steps: Steps,
) -> Result<Val, PromqlError> {
    // The range vector is the first argument except for `quantile_over_time(φ, v)`; the
    // others are scalars, evaluated per step (`predict_linear`, smoothing factors).
    let range_at = usize::from(name == "quantile_over_time");
    let mut scalars: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != range_at {
            scalars.push(ctx.eval_scalar(a, steps)?);
        }
    }
    match name {
        "holt_winters" | "double_exponential_smoothing" => {
            for (&sf, &tf) in scalars[0].iter().zip(&scalars[1]) {
                if sf <= 0.0 || sf >= 1.0 {
                    return Err(PromqlError::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if tf <= 0.0 || tf >= 1.0 {
                    return Err(PromqlError::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
            }
        }
        "quantile_over_time" => {
            let at = ctx.at(&args[0]);
            for &q in &scalars[0] {
                if !(0.0..=1.0).contains(&q) {
                    ctx.annotations.warn(format!(
                        "quantile value should be between 0 and 1, got {}{at}",
                        format_go(q)
                    ));
                }
            }
        }
        _ => {}
    }
    let keep_name = keeps_name(name);
    let position = ctx.at(&args[range_at]);
    let mut out = Vec::new();
    let mut step_args = vec![0.0; scalars.len()];
    let counts_resets = matches!(name, "rate" | "increase");
    let mut drops: Vec<u32> = Vec::new();
    // Series whose name does not say they count, for the annotation after the walk.
    let mut not_counters: Vec<Labels> = Vec::new();
    let wants_counters = wants_counter(name);
    // Some(true) for avg_over_time, Some(false) for sum_over_time: the windowed sums come
    // from prefix sums rather than a walk over each window.
    let sliding = match name {
        "avg_over_time" => Some(true),
        "sum_over_time" => Some(false),
        _ => None,
    };
    let mut prefix = PrefixSums::default();
    ctx.range_series(
        &args[range_at],
        steps,
        &mut |windows, labels, drop_name, samples| {
            let mut values = vec![ABSENT; steps.n];
            if counts_resets {
                // drops[k]: values below their predecessor among the first k + 1, so a window
                // lo..hi holds a reset exactly when drops[hi - 1] > drops[lo].
                drops.clear();
                let mut n = 0u32;
                let mut prev = f64::NEG_INFINITY;
                for p in samples {
                    n += u32::from(p.v < prev);
                    prev = p.v;
                    drops.push(n);
                }
            }
            let mut any = false;
            if sliding.is_some() && prefix.fill(samples) {
                // sum_over_time and avg_over_time from prefix sums: every window in O(1).
                let avg = sliding == Some(true);
                windows.window_bounds(samples, |i, lo, hi| {
                    if hi > lo {
                        let sum = prefix.sum(lo, hi).unwrap_or_else(|| {
                            // Too close to zero for the prefixes' error: walk the window.
                            let window = &samples[lo..hi];
                            let (mut sum, mut c) = (0.0, 0.0);
                            for p in window {
                                (sum, c) = super::aggregate::kahan_inc(p.v, sum, c);
                            }
                            sum + c
                        });
                        values[i] = if avg { sum / (hi - lo) as f64 } else { sum };
                        any = true;
                    }
                });
            } else {
                windows.window_bounds(samples, |i, lo, hi| {
                    for (a, sc) in step_args.iter_mut().zip(&scalars) {
                        *a = sc[i];
                    }
                    let window = Window {
                        samples: &samples[lo..hi],
                        end: windows.ends[i],
                        range: windows.range_ms,
                        ts: windows.ts[i],
                        no_resets: counts_resets && hi > lo && drops[hi - 1] == drops[lo],
                    };
                    if let Some(v) = f(window, &step_args) {
                        values[i] = v;
                        any = true;
                    }
                });
            }
            if any {
                if wants_counters {
                    not_counters.push(labels.clone());
                }
                out.push(Series {
                    labels: labels.clone(),
                    drop_name: drop_name || !keep_name,
                    values,
                });
            }
            Ok(())
        },
    )?;
    for labels in &not_counters {
        note_non_counter(ctx, labels, &position);
    }
    ctx.check_stop()?;
    Ok(Val::Vector(out))
}

/// Running sums of a series' values in double-double arithmetic (a `(hi, lo)` pair whose
/// sum carries about 106 bits), so the sum of any window is the difference of two prefixes
/// with an error far below one unit in the last place of a `f64` result: the same value, to
/// the last bit or one off, as the compensated sum over the window Prometheus computes.
///
/// The error of a difference is below `n × max|v| × 2⁻¹⁰⁴`; a window whose sum is not at
/// least 2⁵⁰ times that (`guard`), such as one of values that cancel, is summed directly.
#[derive(Debug, Default)]
struct PrefixSums {
    hi: Vec<f64>,
    lo: Vec<f64>,
    guard: f64,
}

/// `a + b` and the rounding error of that addition (Knuth's two-sum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

impl PrefixSums {
    /// Fills the prefixes of `samples`; `false` (and nothing to use) when a value is not
    /// finite or the sums could overflow, where Prometheus's own summation rules apply.
    fn fill(&mut self, samples: &[Sample]) -> bool {
        let mut max_abs = 0.0f64;
        for p in samples {
            if !p.v.is_finite() {
                return false;
            }
            max_abs = max_abs.max(p.v.abs());
        }
        if max_abs * samples.len() as f64 >= 1e300 {
            return false;
        }
        self.guard = max_abs * samples.len() as f64 * 2f64.powi(-50);
        self.hi.clear();
        self.lo.clear();
        let (mut hi, mut lo) = (0.0, 0.0);
        self.hi.push(hi);
        self.lo.push(lo);
        for p in samples {
            let (s, e) = two_sum(hi, p.v);
            let e = e + lo;
            // Renormalise so `lo` stays below an ulp of `hi`.
            hi = s + e;
            lo = e - (hi - s);
            self.hi.push(hi);
            self.lo.push(lo);
        }
        true
    }

    /// The sum of the values of samples `lo..hi`, or `None` when it is too small to be
    /// exact to the last bit from the prefixes.
    fn sum(&self, lo: usize, hi: usize) -> Option<f64> {
        let (s, e) = two_sum(self.hi[hi], -self.hi[lo]);
        let sum = s + (e + (self.lo[hi] - self.lo[lo]));
        (sum.abs() >= self.guard && sum != 0.0).then_some(sum)
    }
}

/// Prometheus notes, for `rate` and its kin, a metric whose name does not say it counts.
fn note_non_counter(ctx: &mut Ctx<'_>, labels: &Labels, at: &str) {
    let Some(name) = labels.metric_name() else {
        return;
    };
    let counter = ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s));
    if !counter {
        ctx.annotations.info(format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}{at}"
        ));
    }
}

/// `timestamp(v)`: the time of each value in seconds; for a selector, the time of the sample
/// it selected.
fn timestamp(ctx: &mut Ctx<'_>, arg: &Expr, steps: Steps) -> Result<Val, PromqlError> {
    let mut inner = arg;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let series = if let Expr::VectorSelector(vs) = inner {
        match ctx.vector_selector(vs, steps, true)? {
            Val::Vector(v) => v,
            _ => Vec::new(),
        }
    } else {
        let v = ctx.eval_vector(arg, steps)?;
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

/// The labels `absent` gives its result: those of the selector's equality matchers (a name
/// given twice is left out), without the metric name.
fn absent_labels(expr: &Expr) -> Labels {
    let mut inner = expr;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let vs = match inner {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        // A name matched more than once, in any way, is left out.
        if pairs.iter().any(|(n, _)| *n == m.name)
            || vs
                .matchers
                .matchers
                .iter()
                .filter(|o| o.name == m.name)
                .count()
                > 1
        {
            repeated.push(m.name.clone());
        } else if matches!(m.op, MatchOp::Equal) {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    pairs.retain(|(n, _)| !repeated.contains(n));
    Labels::new(pairs).unwrap_or_default()
}

fn absent(ctx: &mut Ctx<'_>, arg: &Expr, steps: Steps) -> Result<Val, PromqlError> {
    let v = ctx.eval_vector(arg, steps)?;
    let values = (0..steps.n)
        .map(|i| {
            if v.iter().any(|s| present(s.values[i])) {
                ABSENT
            } else {
                1.0
            }
        })
        .collect();
    Ok(absent_result(absent_labels(arg), values))
}

fn absent_over_time(ctx: &mut Ctx<'_>, arg: &Expr, steps: Steps) -> Result<Val, PromqlError> {
    let mut any = vec![false; steps.n];
    ctx.range_series(arg, steps, &mut |windows, _, _, samples| {
        windows.windows(samples, |i, w| any[i] |= !w.is_empty());
        Ok(())
    })?;
    let values = any
        .into_iter()
        .map(|a| if a { ABSENT } else { 1.0 })
        .collect();
    Ok(absent_result(absent_labels(arg), values))
}

fn absent_result(labels: Labels, values: Vec<f64>) -> Val {
    let s = Series {
        labels,
        drop_name: false,
        values,
    };
    Val::Vector(if s.any_present() { vec![s] } else { Vec::new() })
}

/// The string argument at `i` of a call, which the parser made a string literal.
fn string_arg<'a>(args: &'a [Box<Expr>], i: usize, func: &str) -> Result<&'a str, PromqlError> {
    let mut e = args.get(i).map(|b| &**b);
    while let Some(Expr::Paren(p)) = e {
        e = Some(&p.expr);
    }
    match e {
        Some(Expr::StringLiteral(s)) => Ok(&s.val),
        _ => Err(PromqlError::Execution(format!(
            "expected a string literal as argument {} of {func}()",
            i + 1
        ))),
    }
}

fn label_replace(ctx: &mut Ctx<'_>, args: &[Box<Expr>], steps: Steps) -> Result<Val, PromqlError> {
    let dst = string_arg(args, 1, "label_replace")?;
    let replacement = string_arg(args, 2, "label_replace")?;
    let src = string_arg(args, 3, "label_replace")?;
    let pattern = string_arg(args, 4, "label_replace")?;
    let regex = regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|_| {
        PromqlError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })?;
    if dst.is_empty() {
        return Err(PromqlError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut series = ctx.eval_vector(&args[0], steps)?;
    for s in &mut series {
        let value = s.labels.get(src).unwrap_or("");
        if let Some(caps) = regex.captures(value) {
            let mut out = String::new();
            caps.expand(replacement, &mut out);
            s.labels = edit::set(&s.labels, dst, &out);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    merge_equal_labels(series, steps).map(Val::Vector)
}

fn label_join(ctx: &mut Ctx<'_>, args: &[Box<Expr>], steps: Steps) -> Result<Val, PromqlError> {
    let dst = string_arg(args, 1, "label_join")?;
    let sep = string_arg(args, 2, "label_join")?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        srcs.push(string_arg(args, i, "label_join")?);
    }
    if dst.is_empty() {
        return Err(PromqlError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut series = ctx.eval_vector(&args[0], steps)?;
    for s in &mut series {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(sep);
        s.labels = edit::set(&s.labels, dst, &joined);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    merge_equal_labels(series, steps).map(Val::Vector)
}

/// Series whose labels became equal are one series, unless both have a value at one step.
fn merge_equal_labels(series: Vec<Series>, steps: Steps) -> Result<Vec<Series>, PromqlError> {
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for s in series {
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&k) => {
                for i in 0..steps.n {
                    if present(s.values[i]) {
                        if present(out[k].values[i]) {
                            return Err(PromqlError::Execution(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        out[k].values[i] = s.values[i];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Prometheus's float comparison with a relative tolerance.
pub(super) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// A float as Go's `strconv.ParseFloat` reads it (`+Inf`, `inf`, `NaN`, hex floats aside).
pub(super) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// A float as Go's `%g` verb writes it (shortest digits; exponent form below 1e-4 and from
/// 1e6 up).
pub(super) fn format_go(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: shortest digits, never an
/// exponent (`count_values` labels).
pub(super) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Compares label values in natural order: runs of digits by their numeric value.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let lx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ly = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (&x[..lx], &y[..ly]);
                let tx = nx.iter().skip_while(|&&c| c == b'0').count();
                let ty = ny.iter().skip_while(|&&c| c == b'0').count();
                let o = tx.cmp(&ty).then_with(|| nx[lx - tx..].cmp(&ny[ly - ty..]));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                x = &x[lx..];
                y = &y[ly..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// A calendar field of a Unix time in seconds (UTC), as Prometheus's date functions give it.
fn date_part(name: &str) -> fn(f64) -> f64 {
    match name {
        "year" => |v| civil(v).0 as f64,
        "month" => |v| civil(v).1 as f64,
        "day_of_month" => |v| civil(v).2 as f64,
        "day_of_week" => |v| {
            let days = (v as i64).div_euclid(86_400);
            (days + 4).rem_euclid(7) as f64
        },
        "day_of_year" => |v| {
            let (y, m, d) = civil(v);
            (days_before_month(y, m) + d) as f64
        },
        "days_in_month" => |v| {
            let (y, m, _) = civil(v);
            days_in_month(y, m) as f64
        },
        "hour" => |v| (v as i64).rem_euclid(86_400).div_euclid(3600) as f64,
        _ => |v| (v as i64).rem_euclid(3600).div_euclid(60) as f64,
    }
}

/// Year, month (1–12) and day (1–31) of a Unix time in seconds.
fn civil(v: f64) -> (i64, i64, i64) {
    let days = (v as i64).div_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_before_month(y: i64, m: i64) -> i64 {
    (1..m).map(|k| days_in_month(y, k)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sums_from_prefixes_equal_compensated_sums() {
        // Values of very different sizes, where a plain running sum loses the small ones.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let samples: Vec<Sample> = (0..2000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let scale = [1e-3, 1.0, 1e9, 1e15][(x % 4) as usize];
                Sample::new(
                    i,
                    (x >> 11) as f64 / (1u64 << 53) as f64 * scale - scale / 3.0,
                )
            })
            .collect();
        let mut prefix = PrefixSums::default();
        assert!(prefix.fill(&samples));
        for (lo, hi) in [
            (0, 2000),
            (5, 6),
            (100, 340),
            (1999, 2000),
            (17, 1500),
            (7, 7),
        ] {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in &samples[lo..hi] {
                (sum, c) = super::super::aggregate::kahan_inc(p.v, sum, c);
            }
            let want = sum + c;
            let Some(got) = prefix.sum(lo, hi) else {
                // Left to the window walk, which is the compensated sum itself.
                assert!(
                    want.abs() < prefix.guard * 2.0,
                    "window {lo}..{hi}: {want} refused"
                );
                continue;
            };
            assert!(
                (got - want).abs() <= want.abs() * 4.0 * f64::EPSILON,
                "window {lo}..{hi}: {got} against {want}"
            );
        }
        // Not finite, or large enough to overflow: left to the window walk.
        assert!(!prefix.fill(&[Sample::new(0, f64::NAN)]));
        assert!(!prefix.fill(&[Sample::new(0, 1e300), Sample::new(1, 1e300)]));
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(format_go(0.5), "0.5");
        assert_eq!(format_go(1e21), "1e+21");
        assert_eq!(format_go(1234567.0), "1.234567e+06");
        assert_eq!(format_value(1234567.0), "1234567");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_go(1e-5), "1e-05");
        assert_eq!(format_go(123456.0), "123456");
        assert_eq!(format_go(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn calendar_fields() {
        // 2024-02-29T13:45:00Z
        let t = 1_709_214_300.0;
        assert_eq!(civil(t), (2024, 2, 29));
        assert_eq!(date_part("day_of_week")(t), 4.0);
        assert_eq!(date_part("day_of_year")(t), 60.0);
        assert_eq!(date_part("days_in_month")(t), 29.0);
        assert_eq!(date_part("hour")(t), 13.0);
        assert_eq!(date_part("minute")(t), 45.0);
        assert_eq!(civil(-1.0), (1969, 12, 31));
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("a10", "a9"), std::cmp::Ordering::Greater);
        assert_eq!(natural_cmp("abc", "abd"), std::cmp::Ordering::Less);
    }
}
