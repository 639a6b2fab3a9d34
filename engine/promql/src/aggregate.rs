//! Aggregation operators (`sum`, `avg`, … `limit_ratio`), grouped `by` or `without` labels.
//!
//! Groups are formed once per query from each series' labels; values are combined step by
//! step. The arithmetic follows Prometheus where it changes results: Kahan-Neumaier summation
//! for `sum` and `avg`, Welford's method for `stddev` and `stdvar`, NaN ordering in `min`,
//! `max`, `topk` and `bottomk`, and the interpolation of `quantile`.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::PromqlError;
use super::eval::Ctx;
use super::value::{ABSENT, Series, Steps, Val, edit, present};
use strata_core::labels::Labels;

pub(super) fn eval(ctx: &mut Ctx<'_>, a: &AggregateExpr, steps: Steps) -> Result<Val, PromqlError> {
    let op = a.op.id();
    // The parameter is evaluated first, as Prometheus does.
    let param = match &a.param {
        Some(p) => Some(ctx.eval(p, steps)?),
        None => None,
    };
    let input = ctx.eval_vector(&a.expr, steps)?;
    let param_at = a.param.as_ref().map_or(String::new(), |p| ctx.at(p));
    let groups = group(&input, a.modifier.as_ref());
    let scalar_param = |name: &str| -> Result<Vec<f64>, PromqlError> {
        match &param {
            Some(Val::Scalar(v)) => Ok(v.clone()),
            _ => Err(PromqlError::Execution(format!(
                "expected a scalar parameter for {name}"
            ))),
        }
    };
    let out = match op {
        T_TOPK | T_BOTTOMK | T_LIMITK => {
            let k = scalar_param("topk")?;
            for &v in &k {
                if v.is_nan() {
                    return Err(PromqlError::Execution("Parameter value is NaN".into()));
                }
                if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
                    return Err(PromqlError::Execution(format!(
                        "Scalar value {} overflows int64",
                        super::functions::format_go(v)
                    )));
                }
            }
            select_k(op, input, &groups, &k, steps)
        }
        T_LIMIT_RATIO => {
            let r = scalar_param("limit_ratio")?;
            for &v in &r {
                if v.is_nan() {
                    return Err(PromqlError::Execution("Ratio value is NaN".into()));
                }
                if !(-1.0..=1.0).contains(&v) {
                    ctx.annotations.warn(format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}{param_at}",
                        super::functions::format_go(v),
                        if v > 0.0 { 1 } else { -1 }
                    ));
                }
            }
            let r: Vec<f64> = r.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            limit_ratio(input, &r)
        }
        T_COUNT_VALUES => {
            let Some(Val::String(label)) = &param else {
                return Err(PromqlError::Execution(
                    "expected a string parameter for count_values".into(),
                ));
            };
            if !valid_label_name(label) {
                return Err(PromqlError::Execution(format!(
                    "invalid label name {label:?}"
                )));
            }
            count_values(label, &input, &groups, steps)
        }
        T_QUANTILE => {
            let q = scalar_param("quantile")?;
            for &v in &q {
                if !(0.0..=1.0).contains(&v) {
                    ctx.annotations.warn(format!(
                        "quantile value should be between 0 and 1, got {}{param_at}",
                        super::functions::format_go(v)
                    ));
                }
            }
            combine(&input, groups, steps, |i, values| {
                quantile(q[i], &mut values.to_vec())
            })
        }
        T_SUM => combine(&input, groups, steps, |_, v| kahan_sum(v.iter().copied())),
        T_AVG => combine(&input, groups, steps, |_, v| average(v)),
        T_COUNT => combine(&input, groups, steps, |_, v| v.len() as f64),
        T_GROUP => combine(&input, groups, steps, |_, _| 1.0),
        T_MIN => combine(&input, groups, steps, |_, v| {
            v.iter()
                .copied()
                .fold(f64::NAN, |m, x| if m > x || m.is_nan() { x } else { m })
        }),
        T_MAX => combine(&input, groups, steps, |_, v| {
            v.iter()
                .copied()
                .fold(f64::NAN, |m, x| if m < x || m.is_nan() { x } else { m })
        }),
        T_STDDEV => combine(&input, groups, steps, |_, v| variance(v).sqrt()),
        T_STDVAR => combine(&input, groups, steps, |_, v| variance(v)),
        _ => {
            return Err(PromqlError::Execution(format!(
                "unknown aggregation {}",
                a.op
            )));
        }
    };
    Ok(Val::Vector(out))
}

/// Whether `name` is a label name Prometheus accepts (any non-empty UTF-8 text).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// A group of series: its output labels and members (indexes into the input).
struct Group {
    labels: Labels,
    members: Vec<usize>,
    /// A member's metric name is to be dropped, and the output keeps `__name__` (`by
    /// (__name__)`): the output's is dropped too, at the end of evaluation.
    drop_name: bool,
}

/// Groups the input by the modifier, in order of first appearance. A name that is only
/// marked for removal still groups (as Prometheus's delayed removal does).
fn group(input: &[Series], modifier: Option<&LabelModifier>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (i, s) in input.iter().enumerate() {
        let labels = match modifier {
            None => Labels::default(),
            Some(LabelModifier::Include(l)) => edit::keep(&s.labels, &l.labels),
            Some(LabelModifier::Exclude(l)) => edit::remove(&s.labels, &l.labels, true),
        };
        let drop_name = s.drop_name && labels.metric_name().is_some();
        match index.get(&labels) {
            Some(&g) => {
                groups[g].members.push(i);
                groups[g].drop_name |= drop_name;
            }
            None => {
                index.insert(labels.clone(), groups.len());
                groups.push(Group {
                    labels,
                    members: vec![i],
                    drop_name,
                });
            }
        }
    }
    groups
}

/// One output series per group: `f(step, values present at the step)`, where any are.
fn combine(
    input: &[Series],
    groups: Vec<Group>,
    steps: Steps,
    f: impl Fn(usize, &[f64]) -> f64,
) -> Vec<Series> {
    let mut out = Vec::with_capacity(groups.len());
    let mut values: Vec<f64> = Vec::new();
    for g in groups {
        let mut result = vec![ABSENT; steps.n];
        for (i, r) in result.iter_mut().enumerate() {
            values.clear();
            values.extend(
                g.members
                    .iter()
                    .map(|&m| input[m].values[i])
                    .filter(|&v| present(v)),
            );
            if !values.is_empty() {
                *r = f(i, &values);
            }
        }
        let s = Series {
            labels: g.labels,
            drop_name: g.drop_name,
            values: result,
        };
        if s.any_present() {
            out.push(s);
        }
    }
    out
}

/// Kahan-Neumaier summation, as Prometheus sums: the running compensation keeps small terms
/// that a plain sum of large ones loses.
pub(super) fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for x in values {
        (sum, c) = kahan_inc(x, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// One step of Kahan-Neumaier summation.
#[inline]
pub(super) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // Both choices are computed and one is selected, with no branch to mispredict (the
    // larger magnitude alternates in some sums): the values are those of the branching form.
    let (big, small) = if sum.abs() >= inc.abs() {
        (sum, inc)
    } else {
        (inc, sum)
    };
    let compensated = c + ((big - t) + small);
    (t, if t.is_infinite() { 0.0 } else { compensated })
}

/// The mean of `values`: a compensated sum divided by the count while the sum is finite, an
/// incremental mean where the sum would overflow.
pub(super) fn average(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    let mut overflowed = false;
    for &x in values {
        let (s, k) = kahan_inc(x, sum, c);
        if s.is_infinite() && !x.is_infinite() && !sum.is_infinite() {
            overflowed = true;
            break;
        }
        (sum, c) = (s, k);
    }
    if !overflowed {
        return if sum.is_infinite() {
            sum
        } else {
            sum / n + c / n
        };
    }
    let mut mean = 0.0f64;
    let mut c = 0.0f64;
    for (i, &x) in values.iter().enumerate() {
        let count = (i + 1) as f64;
        if mean.is_infinite() {
            if x.is_infinite() && (mean > 0.0) != (x > 0.0) {
                return f64::NAN;
            }
            continue;
        }
        if x.is_infinite() {
            mean = x;
            continue;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(x / count, q * mean, q * c);
    }
    mean + c
}

/// Population variance by Welford's method.
pub(super) fn variance(values: &[f64]) -> f64 {
    let (mut mean, mut m2, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for &x in values {
        n += 1.0;
        let delta = x - mean;
        mean += delta / n;
        m2 += delta * (x - mean);
    }
    m2 / n
}

/// The φ-quantile of `values` with linear interpolation between the two closest ranks;
/// NaN sorts first. −Inf below 0, +Inf above 1.
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `topk`, `bottomk` and `limitk`: per step and group, the chosen `k` series keep their
/// value; the output is the input series, in the order Prometheus returns them for an instant
/// query (topk descending, bottomk ascending, limitk in input order).
fn select_k(op: u16, input: Vec<Series>, groups: &[Group], k: &[f64], steps: Steps) -> Vec<Series> {
    let mut keep = vec![vec![false; steps.n]; input.len()];
    // For an instant query, the order of the chosen series.
    let mut order: Vec<usize> = Vec::new();
    for (i, &kf) in k.iter().enumerate() {
        let k = kf as i64;
        if k < 1 {
            continue;
        }
        let k = k as usize;
        for g in groups {
            let mut chosen: Vec<usize> = g
                .members
                .iter()
                .copied()
                .filter(|&m| present(input[m].values[i]))
                .collect();
            match op {
                T_LIMITK => chosen.truncate(k),
                _ => {
                    let top = op == T_TOPK;
                    // NaN is the least value for topk and the greatest for bottomk.
                    chosen.sort_by(|&a, &b| {
                        super::functions::cmp_nan_last(input[a].values[i], input[b].values[i], top)
                    });
                    chosen.truncate(k);
                }
            }
            for &m in &chosen {
                keep[m][i] = true;
            }
            if steps.n == 1 {
                order.extend(chosen);
            }
        }
    }
    let mut input: Vec<Option<Series>> = input.into_iter().map(Some).collect();
    let mut out = Vec::new();
    let mut take = |m: usize, input: &mut Vec<Option<Series>>| {
        if let Some(mut s) = input[m].take() {
            for (v, &kept) in s.values.iter_mut().zip(&keep[m]) {
                if !kept {
                    *v = ABSENT;
                }
            }
            if s.any_present() {
                out.push(s);
            }
        }
    };
    for &m in &order {
        take(m, &mut input);
    }
    for m in 0..input.len() {
        take(m, &mut input);
    }
    out
}

/// `limit_ratio`: a series is kept where its label hash, as a fraction of the hash space, is
/// below the ratio (or, for a negative ratio, at least `1 + ratio`): a stable, random-looking
/// sample whose complement `-ratio` takes exactly the rest.
fn limit_ratio(mut input: Vec<Series>, ratio: &[f64]) -> Vec<Series> {
    for s in &mut input {
        let offset = prometheus_hash(&s.labels) as f64 / u64::MAX as f64;
        for (v, &r) in s.values.iter_mut().zip(ratio) {
            let kept = (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r);
            if !kept {
                *v = ABSENT;
            }
        }
    }
    input.retain(Series::any_present);
    input
}

/// The label hash Prometheus's `limit_ratio` samples by: XXH64 over
/// `name 0xff value 0xff` for each label.
fn prometheus_hash(labels: &Labels) -> u64 {
    let mut bytes = Vec::new();
    for l in labels.iter() {
        bytes.extend_from_slice(l.name().as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(l.value().as_bytes());
        bytes.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&bytes, 0)
}

/// `count_values`: per step and group, how many series have each value; the value (as
/// Prometheus formats it) becomes the label `label`.
fn count_values(label: &str, input: &[Series], groups: &[Group], steps: Steps) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for g in groups {
        for i in 0..steps.n {
            let mut counts: Vec<(String, f64)> = Vec::new();
            for &m in &g.members {
                let v = input[m].values[i];
                if !present(v) {
                    continue;
                }
                let text = super::functions::format_value(v);
                match counts.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, c)) => *c += 1.0,
                    None => counts.push((text, 1.0)),
                }
            }
            for (text, c) in counts {
                let labels = edit::set(&g.labels, label, &text);
                let k = *index.entry(labels.clone()).or_insert_with(|| {
                    out.push(Series {
                        labels,
                        drop_name: g.drop_name,
                        values: vec![ABSENT; steps.n],
                    });
                    out.len() - 1
                });
                out[k].values[i] = c;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let mut v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(-0.1, &mut v), f64::NEG_INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn compensated_sums_keep_small_terms() {
        assert_eq!(kahan_sum([1e100, 1.0, -1e100].into_iter()), 1.0);
        assert_eq!(average(&[f64::MAX, f64::MAX]), f64::MAX);
        assert!(average(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(variance(&[1.0, 3.0]), 1.0);
    }
}
