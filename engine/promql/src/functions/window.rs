//! Functions of a range vector: the `rate` family with Prometheus's extrapolation and counter
//! resets, the `*_over_time` aggregations, regression (`deriv`, `predict_linear`), smoothing
//! and counting functions. Each takes one window's samples (in time order, stale markers
//! already removed) and returns the step's value, or `None` where Prometheus gives none.

use crate::numeric::{average, kahan_inc, quantile};
use strata_core::sample::Sample;

/// A window and where it lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    pub samples: &'a [Sample],
    /// The window is `(end - range, end]`, milliseconds.
    pub end: i64,
    pub range: i64,
    /// The step's time, whatever `@` and `offset` say: what `predict_linear` predicts from.
    pub ts: i64,
    /// No value in the window is below the one before it (known from a count kept per
    /// series; `false` when unknown).
    pub no_resets: bool,
}

/// `rate`, `increase` (`counter`) and `delta`: the change over the window, extrapolated
/// towards its ends when the samples reach them, per second for `rate`. A window known to
/// hold no reset ([`Window::no_resets`]) is not walked for them.
pub(crate) fn extrapolated_rate(w: Window<'_>, counter: bool, per_second: bool) -> Option<f64> {
    let no_resets = w.no_resets;
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if counter && !no_resets {
        let mut prev = first.v;
        for p in &s[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let range_start = w.end - w.range;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (w.end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let average_interval = sampled / (s.len() - 1) as f64;
    let threshold = average_interval * 1.1;
    if to_start >= threshold {
        to_start = average_interval / 2.0;
    }
    if counter && result > 0.0 && first.v >= 0.0 {
        // A counter starts at zero: do not extrapolate below it.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` (`per_second`) and `idelta`: from the last two samples.
pub(crate) fn instant_delta(w: Window<'_>, per_second: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
    let mut result = last.v - prev.v;
    if per_second {
        if last.v < prev.v {
            // A counter reset: the counter restarted from zero.
            result = last.v;
        }
        let dt = (last.t - prev.t) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        result /= dt;
    }
    Some(result)
}

/// Least squares over `(seconds from intercept_t, value)`, with compensated sums; a constant
/// series has slope 0 (NaN, NaN when the constant is infinite).
pub(crate) fn linear_regression(s: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = s[0].v;
    let mut const_y = true;
    for (i, p) in s.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

pub(crate) fn deriv(w: Window<'_>) -> Option<f64> {
    (w.samples.len() >= 2).then(|| linear_regression(w.samples, w.samples[0].t).0)
}

pub(crate) fn predict_linear(w: Window<'_>, seconds: f64) -> Option<f64> {
    if w.samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(w.samples, w.ts);
    Some(slope * seconds + intercept)
}

/// `double_exponential_smoothing` (`holt_winters` before Prometheus 3): factors already
/// checked to lie in (0, 1).
pub(crate) fn double_exponential_smoothing(w: Window<'_>, sf: f64, tf: f64) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0f64, s[0].v);
    let mut b = s[1].v - s[0].v;
    for (i, p) in s.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

pub(crate) fn changes(w: Window<'_>) -> Option<f64> {
    let s = w.samples;
    let first = s.first()?;
    let mut n = 0.0;
    let mut prev = first.v;
    for p in &s[1..] {
        if !(p.v == prev || (p.v.is_nan() && prev.is_nan())) {
            n += 1.0;
        }
        prev = p.v;
    }
    Some(n)
}

pub(crate) fn resets(w: Window<'_>) -> Option<f64> {
    let s = w.samples;
    let first = s.first()?;
    let mut n = 0.0;
    let mut prev = first.v;
    for p in &s[1..] {
        if p.v < prev {
            n += 1.0;
        }
        prev = p.v;
    }
    Some(n)
}

pub(crate) fn sum_over_time(w: Window<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w.samples {
        (sum, c) = kahan_inc(p.v, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

pub(crate) fn avg_over_time(w: Window<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let values: Vec<f64> = w.samples.iter().map(|p| p.v).collect();
    Some(average(&values))
}

pub(crate) fn count_over_time(w: Window<'_>) -> Option<f64> {
    (!w.samples.is_empty()).then_some(w.samples.len() as f64)
}

pub(crate) fn min_over_time(w: Window<'_>) -> Option<f64> {
    let first = w.samples.first()?;
    Some(
        w.samples
            .iter()
            .fold(first.v, |m, p| if p.v < m || m.is_nan() { p.v } else { m }),
    )
}

pub(crate) fn max_over_time(w: Window<'_>) -> Option<f64> {
    let first = w.samples.first()?;
    Some(
        w.samples
            .iter()
            .fold(first.v, |m, p| if p.v > m || m.is_nan() { p.v } else { m }),
    )
}

/// The time (seconds) of the window's least (`min`) or greatest value, the last such if
/// several; NaN counts only where every value is NaN.
pub(crate) fn ts_of_extreme_over_time(w: Window<'_>, min: bool) -> Option<f64> {
    let first = w.samples.first()?;
    let mut best = *first;
    for p in &w.samples[1..] {
        let better = if min { p.v <= best.v } else { p.v >= best.v };
        if better || best.v.is_nan() {
            best = *p;
        }
    }
    Some(best.t as f64 / 1000.0)
}

pub(crate) fn last_over_time(w: Window<'_>) -> Option<f64> {
    w.samples.last().map(|p| p.v)
}

pub(crate) fn first_over_time(w: Window<'_>) -> Option<f64> {
    w.samples.first().map(|p| p.v)
}

pub(crate) fn ts_of_last_over_time(w: Window<'_>) -> Option<f64> {
    w.samples.last().map(|p| p.t as f64 / 1000.0)
}

pub(crate) fn ts_of_first_over_time(w: Window<'_>) -> Option<f64> {
    w.samples.first().map(|p| p.t as f64 / 1000.0)
}

pub(crate) fn present_over_time(w: Window<'_>) -> Option<f64> {
    (!w.samples.is_empty()).then_some(1.0)
}

pub(crate) fn quantile_over_time(w: Window<'_>, q: f64) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = w.samples.iter().map(|p| p.v).collect();
    Some(quantile(q, &mut values))
}

/// The population variance of the window, with compensated sums as Prometheus computes it.
pub(crate) fn variance_over_time(w: Window<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w.samples {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

/// The median absolute deviation from the median.
pub(crate) fn mad_over_time(w: Window<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = w.samples.iter().map(|p| p.v).collect();
    if values.iter().any(|v| v.is_nan()) {
        return Some(f64::NAN);
    }
    let median = quantile(0.5, &mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    Some(quantile(0.5, &mut deviations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(samples: &[(i64, f64)], end: i64, range: i64) -> (Vec<Sample>, i64, i64) {
        (
            samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
            end,
            range,
        )
    }

    #[test]
    fn rate_extrapolates_to_the_window_and_handles_resets() {
        // 0, 10, … 50 every 10 s in a 60 s window ending at 60 s: 50 over 50 s, extrapolated
        // by half an interval at the start (zero point is closer) and 10 s at the end.
        let (s, end, range) = window(
            &[
                (10_000, 10.0),
                (20_000, 20.0),
                (30_000, 30.0),
                (40_000, 40.0),
                (50_000, 50.0),
            ],
            60_000,
            60_000,
        );
        let w = Window {
            samples: &s,
            end,
            range,
            ts: end,
            no_resets: false,
        };
        // Increase 40 over 40 s; to start 10 s (< 11 s threshold) but zero point at 10 s;
        // to end 10 s: 40 * (40 + 10 + 10) / 40 = 60.
        assert_eq!(extrapolated_rate(w, true, false), Some(60.0));
        assert_eq!(extrapolated_rate(w, true, true), Some(1.0));
        let (s, ..) = window(&[(0, 5.0), (10_000, 8.0), (20_000, 2.0)], 20_000, 30_000);
        let w = Window {
            samples: &s,
            end: 20_000,
            range: 30_000,
            ts: 20_000,
            no_resets: false,
        };
        // A reset from 8 to 2: increase 3 + 2 = 5 over 20 s; the window starts 10 s before the
        // first sample (under the 11 s threshold) and the zero point is 20 s back, so the
        // start extrapolates 10 s: 5 * 30 / 20.
        assert_eq!(extrapolated_rate(w, true, false), Some(7.5));
        assert_eq!(instant_delta(w, true), Some(0.2));
        assert_eq!(resets(w), Some(1.0));
        assert_eq!(changes(w), Some(2.0));
    }

    #[test]
    fn regression_of_a_line_is_exact() {
        let s: Vec<Sample> = (0..5)
            .map(|i| Sample::new(i * 1000, 3.0 + 2.0 * i as f64))
            .collect();
        let (slope, intercept) = linear_regression(&s, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 3.0).abs() < 1e-12);
    }
}
