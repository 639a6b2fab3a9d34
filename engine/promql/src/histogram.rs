//! `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` over classic
//! histograms: series named `…_bucket` with an `le` label, one per bucket upper bound, grouped
//! by their other labels. The metric name is dropped from the result at the end of evaluation,
//! so two histograms that differ only in name are an error there, as in Prometheus. Counts are cumulative; Prometheus's
//! repairs apply (buckets with one bound merged, decreasing counts raised, tiny differences
//! from floating point evened out) and are reported as it reports them.

use std::collections::HashMap;

use strata_core::labels::Labels;

use crate::annotations::Annotations;
use crate::error::PromqlError;
use crate::format::{format_go, format_value, parse_go_float};
use crate::numeric::almost_equal;
use crate::value::{ABSENT, Series, Steps, Val, edit, present};

/// A classic histogram: its labels (without `le`), buckets as (upper bound, input series)
/// and its metric name (for messages).
struct Histogram {
    labels: Labels,
    buckets: Vec<(f64, usize)>,
    name: String,
}

/// The input's histograms; series without a usable `le` are warned about and left out.
fn histograms(notes: &mut Annotations, series: &[Series], v_at: &str) -> Vec<Histogram> {
    let mut out: Vec<Histogram> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for (i, s) in series.iter().enumerate() {
        let name = s.labels.metric_name().unwrap_or("").to_owned();
        let Some(bound) = s.labels.get("le").and_then(parse_go_float) else {
            notes.warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}{v_at}",
                s.labels.get("le").unwrap_or(""),
                name
            ));
            continue;
        };
        let key = edit::remove(&s.labels, &["le".to_owned()], false);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            out.push(Histogram {
                labels: key,
                buckets: Vec::new(),
                name,
            });
            out.len() - 1
        });
        out[g].buckets.push((bound, i));
    }
    out
}

/// Warns about φ outside [0, 1].
fn check_quantiles(notes: &mut Annotations, q: &[f64], at: &str) {
    for &v in q {
        if !(0.0..=1.0).contains(&v) {
            notes.warn(format!(
                "quantile value should be between 0 and 1, got {}{at}",
                format_go(v)
            ));
        }
    }
}

/// Calls `f(step, buckets)` for each step where the histogram has buckets; its result is
/// the step's value.
fn per_step(
    h: &Histogram,
    series: &[Series],
    steps: Steps,
    mut f: impl FnMut(usize, &mut Vec<(f64, f64)>) -> f64,
) -> Vec<f64> {
    let mut values = vec![ABSENT; steps.n];
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (i, v) in values.iter_mut().enumerate() {
        buckets.clear();
        buckets.extend(
            h.buckets
                .iter()
                .map(|&(b, m)| (b, series[m].values[i]))
                .filter(|&(_, c)| present(c)),
        );
        if !buckets.is_empty() {
            *v = f(i, &mut buckets);
        }
    }
    values
}

fn push(out: &mut Vec<Series>, labels: Labels, values: Vec<f64>) {
    let s = Series {
        labels,
        drop_name: true,
        values,
    };
    if s.any_present() {
        out.push(s);
    }
}

fn note_monotonicity(notes: &mut Annotations, name: &str, at: &str) {
    notes.info(format!(
        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?}{at}"
    ));
}

/// `histogram_quantile(φ, buckets)`.
pub(crate) fn quantile(
    notes: &mut Annotations,
    q: &[f64],
    series: Vec<Series>,
    steps: Steps,
    (q_at, v_at): (String, String),
) -> Result<Val, PromqlError> {
    check_quantiles(notes, q, &q_at);
    let mut out = Vec::new();
    for h in histograms(notes, &series, &v_at) {
        let mut forced = false;
        let values = per_step(&h, &series, steps, |i, b| {
            let (r, f) = bucket_quantile(q[i], b);
            forced |= f;
            r
        });
        if forced {
            note_monotonicity(notes, &h.name, &v_at);
        }
        push(&mut out, h.labels, values);
    }
    Ok(Val::Vector(out))
}

/// `histogram_quantiles(buckets, "label", φ1, φ2, …)`: one series per φ, told apart by
/// `label`.
pub(crate) fn quantiles(
    notes: &mut Annotations,
    label: &str,
    qs: &[(Vec<f64>, String)],
    series: Vec<Series>,
    steps: Steps,
    v_at: &str,
) -> Result<Val, PromqlError> {
    for (q, at) in qs {
        check_quantiles(notes, q, at);
    }
    let mut out = Vec::new();
    for h in histograms(notes, &series, v_at) {
        let mut forced = false;
        for (q, _) in qs {
            let values = per_step(&h, &series, steps, |i, b| {
                let (r, f) = bucket_quantile(q[i], b);
                forced |= f;
                r
            });
            // The label names the quantile (of the first step: it is a constant in practice),
            // with a decimal point even when whole ("1.0").
            let text = match format_value(q[0]) {
                t if q[0].is_finite() && !t.contains('.') => format!("{t}.0"),
                t => t,
            };
            let labels = edit::set(&h.labels, label, &text);
            push(&mut out, labels, values);
        }
        if forced {
            note_monotonicity(notes, &h.name, v_at);
        }
    }
    Ok(Val::Vector(out))
}

/// `histogram_fraction(lower, upper, buckets)`: the share of observations in [lower, upper],
/// interpolated linearly within a bucket (never within one of infinite width).
pub(crate) fn fraction(
    notes: &mut Annotations,
    lower: &[f64],
    upper: &[f64],
    series: Vec<Series>,
    steps: Steps,
    v_at: &str,
) -> Result<Val, PromqlError> {
    let mut out = Vec::new();
    for h in histograms(notes, &series, v_at) {
        let values = per_step(&h, &series, steps, |i, b| {
            bucket_fraction(lower[i], upper[i], b)
        });
        push(&mut out, h.labels, values);
    }
    Ok(Val::Vector(out))
}

/// Sorts buckets by bound and merges those with one bound; `false` if the last bound is not
/// +Inf (then there is no histogram to read).
fn prepare(buckets: &mut Vec<(f64, f64)>) -> bool {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return false;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(b, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b => last.1 += c,
            _ => merged.push((b, c)),
        }
    }
    *buckets = merged;
    true
}

fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if !prepare(buckets) {
        return f64::NAN;
    }
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    (rank(upper, buckets) - rank(lower, buckets)) / count
}

/// How many observations are at most `v`, interpolating linearly within a bucket. The first
/// bucket starts at zero when its bound is positive, else at -Inf; within a bucket of
/// infinite width nothing is interpolated: `v` counts as at its finite edge.
fn rank(v: f64, buckets: &[(f64, f64)]) -> f64 {
    let mut below = 0.0;
    for (i, &(ub, cumulative)) in buckets.iter().enumerate() {
        let lb = match i {
            0 if ub > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => buckets[i - 1].0,
        };
        if v <= lb {
            return below;
        }
        if v < ub {
            return if lb == f64::NEG_INFINITY {
                cumulative
            } else if ub == f64::INFINITY {
                below
            } else {
                below + (cumulative - below) * (v - lb) / (ub - lb)
            };
        }
        below = cumulative;
    }
    below
}

/// Prometheus's quantile over `(upper bound, cumulative count)` buckets, and whether the
/// counts had to be made monotonic.
fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    if !prepare(buckets) {
        return (f64::NAN, false);
    }
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|x| x.1 < rank);
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_within_the_bucket() {
        let mut b = vec![(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 0.1);
        let mut b = vec![(1.0, 0.0), (2.0, 10.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.5);
    }

    #[test]
    fn fractions_interpolate_except_in_infinite_buckets() {
        let positive = || vec![(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (f64::INFINITY, 100.0)];
        assert_eq!(bucket_fraction(0.0, 1.5, &mut positive()), 0.02);
        assert_eq!(
            bucket_fraction(f64::NEG_INFINITY, f64::INFINITY, &mut positive()),
            1.0
        );
        let negative = || {
            vec![
                (-3.0, 10.0),
                (-2.0, 12.0),
                (-1.0, 15.0),
                (f64::INFINITY, 100.0),
            ]
        };
        assert_eq!(bucket_fraction(-4.0, -2.0, &mut negative()), 0.02);
        assert!((bucket_fraction(f64::NEG_INFINITY, -1.5, &mut negative()) - 0.135).abs() < 1e-12);
        assert_eq!(bucket_fraction(400.0, f64::INFINITY, &mut positive()), 0.94);
        assert_eq!(bucket_fraction(2.0, 5.0, &mut positive()), 0.03);
    }
}
