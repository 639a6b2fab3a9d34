//! Arithmetic as Prometheus does it where the result depends on how: compensated sums,
//! means that survive overflow, Welford's variance, interpolated quantiles, float comparison
//! with a tolerance, Go's NaN-first `min`/`max`, and NaN's place in orderings.

/// Kahan-Neumaier summation, as Prometheus sums: the running compensation keeps small terms
/// that a plain sum of large ones loses.
#[cfg(test)]
pub(crate) fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for x in values {
        (sum, c) = kahan_inc(x, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// One step of Kahan-Neumaier summation.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
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
pub(crate) fn average(values: &[f64]) -> f64 {
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
pub(crate) fn variance(values: &[f64]) -> f64 {
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
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
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

/// Prometheus's float comparison with a relative tolerance.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
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

/// Orders numbers ascending (descending with `desc`), NaN after every number either way.
pub(crate) fn cmp_nan_last(x: f64, y: f64, desc: bool) -> std::cmp::Ordering {
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
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `a + b` and the rounding error of that addition (Knuth's two-sum).
pub(crate) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
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
