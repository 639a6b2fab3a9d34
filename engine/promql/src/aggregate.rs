//! Aggregation operators (`sum`, `avg`, … `limit_ratio`), grouped `by` or `without` labels.
//!
//! Groups are formed once per query from each series' labels; values are combined step by
//! step. The arithmetic follows Prometheus where it changes results: Kahan-Neumaier summation
//! for `sum` and `avg`, Welford's method for `stddev` and `stdvar`, NaN ordering in `min`,
//! `max`, `topk` and `bottomk`, and the interpolation of `quantile`.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use strata_core::labels::Labels;

use crate::annotations::Annotations;
use crate::error::PromqlError;
use crate::format::{format_go, format_value};
use crate::numeric::{average, cmp_nan_last, kahan_inc, quantile, variance};
use crate::value::{ABSENT, Series, Steps, Val, edit, present};

/// An aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateOp {
    Sum,
    Avg,
    Count,
    Group,
    Min,
    Max,
    Stddev,
    Stdvar,
    /// `quantile(φ, v)`.
    Quantile,
    /// `topk(k, v)`.
    Topk,
    /// `bottomk(k, v)`.
    Bottomk,
    /// `limitk(k, v)`.
    Limitk,
    /// `limit_ratio(r, v)`.
    LimitRatio,
    /// `count_values("label", v)`.
    CountValues,
}

impl AggregateOp {
    /// The operator of a parsed PromQL aggregation; `None` for one Strata does not know.
    pub(crate) fn from_token(id: TokenId) -> Option<AggregateOp> {
        Some(match id {
            T_SUM => AggregateOp::Sum,
            T_AVG => AggregateOp::Avg,
            T_COUNT => AggregateOp::Count,
            T_GROUP => AggregateOp::Group,
            T_MIN => AggregateOp::Min,
            T_MAX => AggregateOp::Max,
            T_STDDEV => AggregateOp::Stddev,
            T_STDVAR => AggregateOp::Stdvar,
            T_QUANTILE => AggregateOp::Quantile,
            T_TOPK => AggregateOp::Topk,
            T_BOTTOMK => AggregateOp::Bottomk,
            T_LIMITK => AggregateOp::Limitk,
            T_LIMIT_RATIO => AggregateOp::LimitRatio,
            T_COUNT_VALUES => AggregateOp::CountValues,
            _ => return None,
        })
    }
}

/// Which labels an aggregation's groups keep.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grouping<'a> {
    /// No `by` or `without`: one group of everything, without labels.
    All,
    /// `by (names)`.
    By(&'a [String]),
    /// `without (names)`.
    Without(&'a [String]),
}

/// Aggregates the evaluated `input` with `op` at every step. `param` is the evaluated
/// parameter (`k`, `φ`, the label of `count_values`), `param_at` its position for warnings.
pub(crate) fn apply(
    op: AggregateOp,
    param: Option<Val>,
    input: Vec<Series>,
    grouping: Grouping<'_>,
    steps: Steps,
    notes: &mut Annotations,
    param_at: &str,
) -> Result<Vec<Series>, PromqlError> {
    let groups = group(&input, grouping);
    let scalar_param = |name: &str| -> Result<Vec<f64>, PromqlError> {
        match &param {
            Some(Val::Scalar(v)) => Ok(v.clone()),
            _ => Err(PromqlError::Execution(format!(
                "expected a scalar parameter for {name}"
            ))),
        }
    };
    let out = match op {
        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
            let k = scalar_param("topk")?;
            for &v in &k {
                if v.is_nan() {
                    return Err(PromqlError::Execution("Parameter value is NaN".into()));
                }
                if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
                    return Err(PromqlError::Execution(format!(
                        "Scalar value {} overflows int64",
                        format_go(v)
                    )));
                }
            }
            select_k(op, input, &groups, &k, steps)
        }
        AggregateOp::LimitRatio => {
            let r = scalar_param("limit_ratio")?;
            for &v in &r {
                if v.is_nan() {
                    return Err(PromqlError::Execution("Ratio value is NaN".into()));
                }
                if !(-1.0..=1.0).contains(&v) {
                    notes.warn(format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}{param_at}",
                        format_go(v),
                        if v > 0.0 { 1 } else { -1 }
                    ));
                }
            }
            let r: Vec<f64> = r.into_iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            limit_ratio(input, &r)
        }
        AggregateOp::CountValues => {
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
        AggregateOp::Quantile => {
            let q = scalar_param("quantile")?;
            for &v in &q {
                if !(0.0..=1.0).contains(&v) {
                    notes.warn(format!(
                        "quantile value should be between 0 and 1, got {}{param_at}",
                        format_go(v)
                    ));
                }
            }
            combine(&input, groups, steps, |i, values| {
                quantile(q[i], &mut values.to_vec())
            })
        }
        AggregateOp::Sum
        | AggregateOp::Avg
        | AggregateOp::Count
        | AggregateOp::Group
        | AggregateOp::Min
        | AggregateOp::Max => fold_members(op, &input, groups, steps),
        AggregateOp::Stddev => combine(&input, groups, steps, |_, v| variance(v).sqrt()),
        AggregateOp::Stdvar => combine(&input, groups, steps, |_, v| variance(v)),
    };
    Ok(out)
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
fn group(input: &[Series], grouping: Grouping<'_>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (i, s) in input.iter().enumerate() {
        let labels = match grouping {
            Grouping::All => Labels::default(),
            Grouping::By(names) => edit::keep(&s.labels, names),
            Grouping::Without(names) => edit::remove(&s.labels, names, true),
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

/// `sum`, `avg`, `count`, `group`, `min` and `max`, folded a member series at a time into
/// one accumulator per step: each member's values are read in order, not one step across
/// every member (a cache line of each member per step), and the members of a step are
/// folded in the same order as [`combine`] folds them, so the results are the same to the
/// bit. An `avg` whose compensated sum overflows at a step is computed there by [`average`]
/// over the step's values, as [`combine`] would.
fn fold_members(
    op: AggregateOp,
    input: &[Series],
    groups: Vec<Group>,
    steps: Steps,
) -> Vec<Series> {
    let mut out = Vec::with_capacity(groups.len());
    let mut acc = vec![Acc::default(); steps.n];
    let mut step_values: Vec<f64> = Vec::new();
    for g in groups {
        acc.fill(Acc::default());
        for &m in &g.members {
            for (a, &x) in acc.iter_mut().zip(&input[m].values) {
                if !present(x) {
                    continue;
                }
                a.n += 1;
                match op {
                    AggregateOp::Sum | AggregateOp::Avg if !a.overflowed => {
                        let (sum, c) = kahan_inc(x, a.sum, a.c);
                        if op == AggregateOp::Avg
                            && sum.is_infinite()
                            && !x.is_infinite()
                            && !a.sum.is_infinite()
                        {
                            a.overflowed = true;
                        } else {
                            (a.sum, a.c) = (sum, c);
                        }
                    }
                    AggregateOp::Min if a.n == 1 || a.sum > x || a.sum.is_nan() => a.sum = x,
                    AggregateOp::Max if a.n == 1 || a.sum < x || a.sum.is_nan() => a.sum = x,
                    _ => {}
                }
            }
        }
        let mut any = false;
        let values = acc
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if a.n == 0 {
                    return ABSENT;
                }
                any = true;
                let n = a.n as f64;
                match op {
                    AggregateOp::Sum | AggregateOp::Avg if a.sum.is_infinite() => a.sum,
                    AggregateOp::Sum => a.sum + a.c,
                    AggregateOp::Avg if a.overflowed => {
                        step_values.clear();
                        step_values.extend(
                            g.members
                                .iter()
                                .map(|&m| input[m].values[i])
                                .filter(|&v| present(v)),
                        );
                        average(&step_values)
                    }
                    AggregateOp::Avg => a.sum / n + a.c / n,
                    AggregateOp::Count => n,
                    AggregateOp::Group => 1.0,
                    _ => a.sum,
                }
            })
            .collect();
        if any {
            out.push(Series {
                labels: g.labels,
                drop_name: g.drop_name,
                values,
            });
        }
    }
    out
}

/// One step's accumulator in [`fold_members`]: the values seen, and the compensated sum (or
/// the minimum or maximum in `sum`).
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    sum: f64,
    c: f64,
    n: u32,
    /// `avg`: the compensated sum overflowed where the values did not.
    overflowed: bool,
}

/// `topk`, `bottomk` and `limitk`: per step and group, the chosen `k` series keep their
/// value; the output is the input series, in the order Prometheus returns them for an instant
/// query (topk descending, bottomk ascending, limitk in input order).
fn select_k(
    op: AggregateOp,
    input: Vec<Series>,
    groups: &[Group],
    k: &[f64],
    steps: Steps,
) -> Vec<Series> {
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
                AggregateOp::Limitk => chosen.truncate(k),
                _ => {
                    let top = op == AggregateOp::Topk;
                    // NaN is the least value for topk and the greatest for bottomk.
                    chosen.sort_by(|&a, &b| {
                        cmp_nan_last(input[a].values[i], input[b].values[i], top)
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
                let text = format_value(v);
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
    use crate::numeric::kahan_sum;

    /// How [`combine`] folds one step's values.
    type PerStep = dyn Fn(&[f64]) -> f64;

    /// Values that exercise the folds: absent steps, NaN, infinities, sums that overflow
    /// only together, large terms that cancel, ordinary numbers.
    fn values(seed: &mut u64, n: usize) -> Vec<f64> {
        const ODD: [f64; 9] = [
            ABSENT,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            -f64::MAX,
            1e100,
            -1e100,
            0.0,
        ];
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                let r = *seed;
                if r.is_multiple_of(3) {
                    ODD[(r >> 8) as usize % ODD.len()]
                } else {
                    (r >> 11) as f64 / (1u64 << 40) as f64 - 1000.0
                }
            })
            .collect()
    }

    #[test]
    fn folding_member_by_member_gives_the_per_step_results_to_the_bit() {
        let steps = Steps {
            start: 0,
            step: 1,
            n: 40,
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for members in [1, 2, 3, 7, 30] {
            let input: Vec<Series> = (0..members)
                .map(|_| Series {
                    labels: Labels::default(),
                    drop_name: false,
                    values: values(&mut seed, steps.n),
                })
                .collect();
            let group = || {
                vec![Group {
                    labels: Labels::default(),
                    members: (0..members).collect(),
                    drop_name: false,
                }]
            };
            let min = |v: &[f64]| {
                v.iter()
                    .fold(f64::NAN, |m, &x| if m > x || m.is_nan() { x } else { m })
            };
            let max = |v: &[f64]| {
                v.iter()
                    .fold(f64::NAN, |m, &x| if m < x || m.is_nan() { x } else { m })
            };
            let per_step: [(AggregateOp, &PerStep); 6] = [
                (AggregateOp::Sum, &|v| kahan_sum(v.iter().copied())),
                (AggregateOp::Avg, &|v| average(v)),
                (AggregateOp::Count, &|v| v.len() as f64),
                (AggregateOp::Group, &|_| 1.0),
                (AggregateOp::Min, &min),
                (AggregateOp::Max, &max),
            ];
            for (op, f) in per_step {
                let want = combine(&input, group(), steps, |_, v| f(v));
                let got = fold_members(op, &input, group(), steps);
                assert_eq!(got.len(), want.len(), "{op:?} over {members} members");
                for (g, w) in got.iter().zip(&want) {
                    // Any NaN is NaN: the sign a NaN gets depends on the order of the
                    // operands of an addition, which the compiler is free to swap.
                    let bits = |s: &Series| {
                        s.values
                            .iter()
                            .map(|v| {
                                if v.is_nan() {
                                    f64::NAN.to_bits()
                                } else {
                                    v.to_bits()
                                }
                            })
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(bits(g), bits(w), "{op:?} over {members} members");
                }
            }
        }
        // The overflowing mean is among the cases above only by chance; pin one.
        let input = vec![
            Series {
                labels: Labels::default(),
                drop_name: false,
                values: vec![f64::MAX],
            },
            Series {
                labels: Labels::default(),
                drop_name: false,
                values: vec![f64::MAX],
            },
        ];
        let group = vec![Group {
            labels: Labels::default(),
            members: vec![0, 1],
            drop_name: false,
        }];
        let one = Steps {
            start: 0,
            step: 1,
            n: 1,
        };
        let got = fold_members(AggregateOp::Avg, &input, group, one);
        assert_eq!(got[0].values, vec![f64::MAX]);
    }
}
