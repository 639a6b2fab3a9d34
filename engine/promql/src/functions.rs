//! Every PromQL function, in one table: [`lookup`] maps a name to what the function is, and
//! the evaluator calls the implementation with the operands it evaluated.
//!
//! Functions differ in what they need from the evaluator, which is what [`Function`] says:
//! the query's own times (`time()`, `step()`), a selector's sample times (`timestamp`), a
//! range vector walked window by window without being held whole ([`range`]), the syntax of
//! their argument (`absent` takes its labels from the selector's matchers, [`absent`]),
//! string literals read before anything is evaluated (`label_replace`, [`labels`]), or simply
//! their evaluated arguments ([`instant`]). None of them calls back into the evaluator.

pub(crate) mod absent;
mod date;
pub(crate) mod instant;
pub(crate) mod labels;
pub(crate) mod range;
pub(crate) mod window;

use instant::InstantFn;
use range::{ParamCheck, RangeSpec, WindowFn};
use window::Window;

/// What a function is, for the evaluator.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Function {
    /// A number the query itself determines, in seconds.
    Query(QueryValue),
    /// `timestamp(v)`: the time of each value; for a selector, of the sample it selected.
    Timestamp,
    /// `absent(v)`.
    Absent,
    /// `absent_over_time(r)`.
    AbsentOverTime,
    /// `label_replace(v, dst, replacement, src, regex)`.
    LabelReplace,
    /// `label_join(v, dst, separator, src...)`.
    LabelJoin,
    /// A function of a range vector's windows.
    Range(RangeSpec),
    /// A function of its evaluated arguments.
    Instant(InstantFn),
}

/// The numbers of the query itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryValue {
    /// `time()`: each step's time.
    Time,
    /// `pi()`.
    Pi,
    /// `step()`: the query's step (0 for an instant query).
    Step,
    /// `range()`: from the query's first evaluation to its last.
    Range,
    /// `start()`.
    Start,
    /// `end()`.
    End,
}

/// The function named `name`, or `None` for a name PromQL does not know (or Strata does
/// not implement).
pub(crate) fn lookup(name: &str) -> Option<Function> {
    use Function::{Instant, Query};
    use InstantFn as I;
    Some(match name {
        "time" => Query(QueryValue::Time),
        "pi" => Query(QueryValue::Pi),
        "step" => Query(QueryValue::Step),
        "range" => Query(QueryValue::Range),
        "start" => Query(QueryValue::Start),
        "end" => Query(QueryValue::End),
        "timestamp" => Function::Timestamp,
        "absent" => Function::Absent,
        "absent_over_time" => Function::AbsentOverTime,
        "label_replace" => Function::LabelReplace,
        "label_join" => Function::LabelJoin,

        "rate" => range(WindowFn::Rate),
        "increase" => range(WindowFn::Increase),
        "irate" => range(WindowFn::Irate),
        "delta" => window(|w, _| window::extrapolated_rate(w, false, false)),
        "idelta" => window(|w, _| window::instant_delta(w, false)),
        "deriv" => window(|w, _| window::deriv(w)),
        "predict_linear" => window(|w, a| window::predict_linear(w, a[0])),
        "holt_winters" | "double_exponential_smoothing" => Function::Range(RangeSpec {
            check: ParamCheck::Smoothing,
            ..spec(WindowFn::Other(|w, a| {
                window::double_exponential_smoothing(w, a[0], a[1])
            }))
        }),
        "changes" => window(|w, _| window::changes(w)),
        "resets" => window(|w, _| window::resets(w)),
        "sum_over_time" => range(WindowFn::Sum),
        "avg_over_time" => range(WindowFn::Avg),
        "count_over_time" => window(|w, _| window::count_over_time(w)),
        "min_over_time" => window(|w, _| window::min_over_time(w)),
        "max_over_time" => window(|w, _| window::max_over_time(w)),
        "last_over_time" => Function::Range(RangeSpec {
            keeps_name: true,
            ..spec(WindowFn::Other(|w, _| window::last_over_time(w)))
        }),
        "first_over_time" => Function::Range(RangeSpec {
            keeps_name: true,
            ..spec(WindowFn::Other(|w, _| window::first_over_time(w)))
        }),
        "present_over_time" => window(|w, _| window::present_over_time(w)),
        "quantile_over_time" => Function::Range(RangeSpec {
            check: ParamCheck::Quantile,
            range_arg: 1,
            ..spec(WindowFn::Other(|w, a| window::quantile_over_time(w, a[0])))
        }),
        "stddev_over_time" => window(|w, _| window::variance_over_time(w).map(f64::sqrt)),
        "stdvar_over_time" => window(|w, _| window::variance_over_time(w)),
        "mad_over_time" => window(|w, _| window::mad_over_time(w)),
        "ts_of_min_over_time" => window(|w, _| window::ts_of_extreme_over_time(w, true)),
        "ts_of_max_over_time" => window(|w, _| window::ts_of_extreme_over_time(w, false)),
        "ts_of_last_over_time" => window(|w, _| window::ts_of_last_over_time(w)),
        "ts_of_first_over_time" => window(|w, _| window::ts_of_first_over_time(w)),

        "abs" => math(f64::abs),
        "ceil" => math(f64::ceil),
        "floor" => math(f64::floor),
        "exp" => math(f64::exp),
        "sqrt" => math(f64::sqrt),
        "ln" => math(f64::ln),
        "log2" => math(f64::log2),
        "log10" => math(f64::log10),
        "sin" => math(f64::sin),
        "cos" => math(f64::cos),
        "tan" => math(f64::tan),
        "asin" => math(f64::asin),
        "acos" => math(f64::acos),
        "atan" => math(f64::atan),
        "sinh" => math(f64::sinh),
        "cosh" => math(f64::cosh),
        "tanh" => math(f64::tanh),
        "asinh" => math(f64::asinh),
        "acosh" => math(f64::acosh),
        "atanh" => math(f64::atanh),
        "deg" => math(|x| x * 180.0 / std::f64::consts::PI),
        "rad" => math(|x| x * std::f64::consts::PI / 180.0),
        "sgn" => math(|x| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        }),
        "year" => Instant(I::Date(date::year)),
        "month" => Instant(I::Date(date::month)),
        "day_of_month" => Instant(I::Date(date::day_of_month)),
        "day_of_week" => Instant(I::Date(date::day_of_week)),
        "day_of_year" => Instant(I::Date(date::day_of_year)),
        "days_in_month" => Instant(I::Date(date::days_in_month)),
        "hour" => Instant(I::Date(date::hour)),
        "minute" => Instant(I::Date(date::minute)),

        "vector" => Instant(I::Vector),
        "scalar" => Instant(I::Scalar),
        "min_of" => Instant(I::MinOf),
        "max_of" => Instant(I::MaxOf),
        "round" => Instant(I::Round),
        "clamp" => Instant(I::Clamp),
        "clamp_min" => Instant(I::ClampMin),
        "clamp_max" => Instant(I::ClampMax),
        "sort" => Instant(I::Sort { desc: false }),
        "sort_desc" => Instant(I::Sort { desc: true }),
        "sort_by_label" => Instant(I::SortByLabel { desc: false }),
        "sort_by_label_desc" => Instant(I::SortByLabel { desc: true }),
        "histogram_quantile" => Instant(I::HistogramQuantile),
        "histogram_quantiles" => Instant(I::HistogramQuantiles),
        "histogram_fraction" => Instant(I::HistogramFraction),
        _ => return None,
    })
}

/// A range function with everything else at its default.
fn spec(window: WindowFn) -> RangeSpec {
    RangeSpec {
        window,
        range_arg: 0,
        keeps_name: false,
        check: ParamCheck::None,
    }
}

fn range(window: WindowFn) -> Function {
    Function::Range(spec(window))
}

fn window(f: fn(Window<'_>, &[f64]) -> Option<f64>) -> Function {
    range(WindowFn::Other(f))
}

fn math(f: fn(f64) -> f64) -> Function {
    Function::Instant(InstantFn::Math(f))
}
