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
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let result = if counter {
        counter_increase(w)
    } else {
        last.v - first.v
    };
    let range_start = w.end - w.range;
    let (ms_to_start, ms_to_end) = (first.t - range_start, w.end - last.t);
    let mut to_start = ms_to_start as f64 / 1000.0;
    let mut to_end = ms_to_end as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let clamps_at_zero = counter && result > 0.0 && first.v >= 0.0;
    let plain = plainly_inside(
        ms_to_start,
        ms_to_end,
        last.t - first.t,
        s.len() - 1,
        clamps_at_zero.then_some((first.v, result)),
    );
    if !plain {
        let average_interval = sampled / (s.len() - 1) as f64;
        let threshold = average_interval * 1.1;
        if to_start >= threshold {
            to_start = average_interval / 2.0;
        }
        if clamps_at_zero {
            // A counter starts at zero: do not extrapolate below it.
            let to_zero = sampled * (first.v / result);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        if to_end >= threshold {
            to_end = average_interval / 2.0;
        }
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if per_second {
        factor /= w.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `rate` (`per_second`) and `increase` of a counter at every window of a series, the same to
/// the bit as [`extrapolated_rate`] window by window, in passes: the windows are found and
/// their increases summed (with resets) first; those that surely extrapolate to both ends
/// ([`plainly_inside`], nearly all of them) leave their last four divisions for one loop over
/// all of them, which has no branch and no chain from one window to the next, so the
/// divisions overlap; the others are computed on the spot. Scratch vectors are kept between
/// series.
#[derive(Debug, Default)]
pub(crate) struct Rates {
    /// Per plain window: its step, its increase, and the milliseconds from the window's start
    /// to the first sample, from the last sample to its end, and between the two.
    step: Vec<usize>,
    increase: Vec<f64>,
    ms: Vec<[f64; 3]>,
}

impl Rates {
    /// Writes each window's value into `values` (left as they are where a window has fewer
    /// than two samples); `no_resets(lo, hi)` says whether samples `lo..hi` (at least two)
    /// hold no reset. Whether any window had a value.
    pub(crate) fn eval(
        &mut self,
        samples: &[Sample],
        windows: &crate::value::Windows,
        per_second: bool,
        values: &mut [f64],
        no_resets: impl Fn(usize, usize) -> bool,
    ) -> bool {
        self.step.clear();
        self.increase.clear();
        self.ms.clear();
        let mut any = false;
        windows.window_bounds(samples, |i, lo, hi| {
            if hi - lo < 2 {
                return;
            }
            any = true;
            let w = Window {
                samples: &samples[lo..hi],
                end: windows.ends[i],
                range: windows.range_ms,
                ts: windows.ts[i],
                no_resets: no_resets(lo, hi),
            };
            let (first, last) = (samples[lo], samples[hi - 1]);
            let increase = counter_increase(w);
            let clamps_at_zero = increase > 0.0 && first.v >= 0.0;
            let range_start = w.end - w.range;
            let (ms_to_start, ms_to_end) = (first.t - range_start, w.end - last.t);
            let ms_sampled = last.t - first.t;
            let zero = clamps_at_zero.then_some((first.v, increase));
            if plainly_inside(ms_to_start, ms_to_end, ms_sampled, hi - lo - 1, zero) {
                self.step.push(i);
                self.increase.push(increase);
                self.ms
                    .push([ms_to_start as f64, ms_to_end as f64, ms_sampled as f64]);
            } else if let Some(v) = extrapolated_rate(w, true, per_second) {
                values[i] = v;
            }
        });
        let range_seconds = windows.range_ms as f64 / 1000.0;
        for (increase, ms) in self.increase.iter_mut().zip(&self.ms) {
            let to_start = ms[0] / 1000.0;
            let to_end = ms[1] / 1000.0;
            let sampled = ms[2] / 1000.0;
            let mut factor = (sampled + to_start + to_end) / sampled;
            if per_second {
                factor /= range_seconds;
            }
            *increase *= factor;
        }
        for (&i, &v) in self.step.iter().zip(&self.increase) {
            values[i] = v;
        }
        any
    }
}

/// A counter's increase over a window of at least two samples: the last value less the
/// first, plus the value before each reset.
#[inline]
fn counter_increase(w: Window<'_>) -> f64 {
    let s = w.samples;
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if !w.no_resets {
        let mut prev = first.v;
        for p in &s[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    result
}

/// Whether [`extrapolated_rate`] surely extrapolates the whole way to both ends of its window:
/// neither end as far as 1.1 average intervals from the samples, nor (`zero`: a counter's
/// first value and increase) the start beyond where the counter would be zero. Decided from
/// the integer milliseconds with a margin a million times the rounding error of the float
/// comparisons they stand for, so the floats would take the same branches; `false` when
/// unsure, and the floats decide. The common window needs neither the average interval nor
/// the division towards zero, two of its seven divisions and the longest chain of them.
#[inline]
fn plainly_inside(
    ms_to_start: i64,
    ms_to_end: i64,
    ms_sampled: i64,
    gaps: usize,
    zero: Option<(f64, f64)>,
) -> bool {
    const MARGIN: f64 = 1.0 + 1e-9;
    if ms_sampled <= 0 {
        return false;
    }
    // `to >= 1.1 × sampled / gaps`, in integers scaled by 10 × gaps.
    let limit = 11.0 * ms_sampled as f64;
    let scale = 10.0 * gaps as f64 * MARGIN;
    if ms_to_start as f64 * scale >= limit || ms_to_end as f64 * scale >= limit {
        return false;
    }
    match zero {
        // `sampled × first / increase < to_start`, multiplied out by the increase.
        Some((first, increase)) => {
            let (to_zero, to_start) = (
                ms_sampled as f64 * first,
                ms_to_start as f64 * increase * MARGIN,
            );
            to_zero.is_finite() && to_start.is_finite() && to_zero > to_start
        }
        None => true,
    }
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
    let init_y = s[0].v;
    if s[1..].iter().all(|p| p.v == init_y) {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let mut sums = regression_sums(s, intercept_t, neumaier_inc);
    // A sum that is finite at the end was finite at every step, where `kahan_inc` and
    // `neumaier_inc` agree; otherwise the sums are taken again as Prometheus takes them.
    if sums.iter().any(|&(sum, _)| !sum.is_finite()) {
        sums = regression_sums(s, intercept_t, kahan_inc);
    }
    let n = s.len() as f64;
    let [sx, sy, sxy, sx2] = sums.map(|(sum, c)| sum + c);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

/// The compensated sums of x, y, xy and x² (each with its compensation), `inc` the step.
#[inline(always)]
fn regression_sums(
    s: &[Sample],
    intercept_t: i64,
    inc: impl Fn(f64, f64, f64) -> (f64, f64),
) -> [(f64, f64); 4] {
    let [mut x_sum, mut y_sum, mut xy_sum, mut x2_sum] = [(0.0, 0.0); 4];
    for p in s {
        let x = (p.t - intercept_t) as f64 / 1000.0;
        x_sum = inc(x, x_sum.0, x_sum.1);
        y_sum = inc(p.v, y_sum.0, y_sum.1);
        xy_sum = inc(x * p.v, xy_sum.0, xy_sum.1);
        x2_sum = inc(x * x, x2_sum.0, x2_sum.1);
    }
    [x_sum, y_sum, xy_sum, x2_sum]
}

/// [`kahan_inc`] without its care for an infinite sum: the same while the sum is finite.
#[inline(always)]
fn neumaier_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let (big, small) = if sum.abs() >= inc.abs() {
        (sum, inc)
    } else {
        (inc, sum)
    };
    (t, c + ((big - t) + small))
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

    /// [`extrapolated_rate`] as Prometheus writes it, every branch decided by the floats.
    fn rate_by_the_floats(w: Window<'_>, counter: bool, per_second: bool) -> Option<f64> {
        let s = w.samples;
        if s.len() < 2 {
            return None;
        }
        let (first, last) = (s[0], s[s.len() - 1]);
        let mut result = last.v - first.v;
        if counter {
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

    #[test]
    fn rate_without_the_branches_it_surely_skips_is_the_same_to_the_bit() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut plain = 0;
        for case in 0..200_000 {
            // Scrapes 15 s apart with jitter, some missing; windows ending anywhere, some
            // exactly where the thresholds fall; counters from zero, from large values, with
            // resets, and gauges.
            let interval = [1_000, 15_000, 60_000][case % 3];
            let range = interval * (1 + (next() % 8) as i64);
            let end = 1_700_000_000_000 + (next() % 100_000) as i64;
            let mut samples = Vec::new();
            let mut t = end - range + 1 + (next() % interval as u64) as i64;
            let mut v = match next() % 4 {
                0 => 0.0,
                1 => (next() % 1000) as f64 / 8.0,
                2 => 1e15 + (next() % 1000) as f64,
                _ => -((next() % 100) as f64),
            };
            while t <= end {
                if next() % 10 != 0 {
                    samples.push(Sample::new(t, v));
                }
                v += match next() % 20 {
                    0 => -v,
                    1 => 0.0,
                    _ => (next() % 10_000) as f64 / 100.0,
                };
                t += interval + (next() % 5) as i64 - 1;
            }
            // The window's ends a whole number of milliseconds from where 1.1 intervals fall.
            if case % 7 == 0 && samples.len() >= 2 {
                let gaps = (samples.len() - 1) as i64;
                let span = samples[samples.len() - 1].t - samples[0].t;
                let at = 11 * span / (10 * gaps);
                samples[0].t = samples[0].t.max(end - range + 1);
                let start_gap = samples[0].t - (end - range);
                let shift = at - start_gap + (next() % 3) as i64 - 1;
                if shift > 0 && samples.iter().all(|p| p.t + shift <= end) {
                    for p in &mut samples {
                        p.t += shift;
                    }
                }
            }
            for counter in [true, false] {
                for per_second in [true, false] {
                    let w = Window {
                        samples: &samples,
                        end,
                        range,
                        ts: end,
                        no_resets: false,
                    };
                    let want = rate_by_the_floats(w, counter, per_second).map(f64::to_bits);
                    let got = extrapolated_rate(w, counter, per_second).map(f64::to_bits);
                    assert_eq!(
                        got,
                        want,
                        "case {case}: {samples:?} in ({}, {end}]",
                        end - range
                    );
                }
            }
            if samples.len() >= 2 {
                let (first, last) = (samples[0], samples[samples.len() - 1]);
                plain += usize::from(plainly_inside(
                    first.t - (end - range),
                    end - last.t,
                    last.t - first.t,
                    samples.len() - 1,
                    None,
                ));
            }
        }
        // Both paths were taken many times.
        assert!((20_000..180_000).contains(&plain), "{plain} plain windows");
    }

    #[test]
    fn rates_of_every_window_at_once_are_those_of_each_window() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..300 {
            let interval = [1_000i64, 15_000, 60_000][case % 3];
            let mut samples = Vec::new();
            let (mut t, mut v) = (1_700_000_000_000i64, (next() % 3) as f64 * 1e6);
            for _ in 0..(next() % 400) {
                if next() % 8 != 0 {
                    samples.push(Sample::new(t, v));
                }
                v = if next() % 50 == 0 {
                    (next() % 10) as f64
                } else {
                    v + (next() % 1000) as f64 / 10.0
                };
                t += interval + (next() % 5) as i64 - 2;
            }
            let range_ms = interval * (1 + (next() % 6) as i64);
            let step = interval / 2 + (next() % interval as u64) as i64;
            let ends: Vec<i64> = (0..120).map(|k| 1_700_000_000_000 + k * step).collect();
            let windows = crate::value::Windows {
                range_ms,
                ts: ends.clone(),
                ends,
                left_closed: false,
            };
            for per_second in [true, false] {
                let mut want = vec![f64::NAN; windows.ends.len()];
                windows.windows(&samples, |i, s| {
                    let w = Window {
                        samples: s,
                        end: windows.ends[i],
                        range: range_ms,
                        ts: windows.ts[i],
                        no_resets: false,
                    };
                    if let Some(v) = extrapolated_rate(w, true, per_second) {
                        want[i] = v;
                    }
                });
                let mut got = vec![f64::NAN; windows.ends.len()];
                let mut rates = Rates::default();
                let any = rates.eval(&samples, &windows, per_second, &mut got, |lo, hi| {
                    samples[lo..hi].windows(2).all(|p| p[1].v >= p[0].v)
                });
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "case {case}");
                assert_eq!(any, want.iter().any(|x| !x.is_nan()), "case {case}");
            }
        }
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

    /// Prometheus's regression, every sum stepped by `kahan_inc`.
    fn regression_as_prometheus(s: &[Sample], intercept_t: i64) -> (f64, f64) {
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
        let slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
        (slope, sy / n - slope * sx / n)
    }

    /// The regression gives Prometheus's slope and intercept to the bit: jittered gauges,
    /// counters, values so large that a sum overflows (and one that comes back from it
    /// through a NaN), infinities, NaN and constants.
    #[test]
    fn regression_is_prometheus_s_to_the_bit() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let len = 2 + (next() % 130) as usize;
            let kind = round % 7;
            let mut t = (next() % 1_000_000) as i64;
            let s: Vec<Sample> = (0..len)
                .map(|i| {
                    t += 15_000 + (next() % 5) as i64;
                    let r = next();
                    let v = match kind {
                        0 => (r % 100_000) as f64 / 100.0,
                        1 => (i as f64) * 1e3 + (r % 7) as f64,
                        2 => f64::MAX / 4.0 * ((r % 5) as f64 - 2.0),
                        3 if r % 17 == 0 => f64::INFINITY,
                        4 if r % 23 == 0 => f64::NAN,
                        5 => 42.0,
                        _ => f64::from_bits(r >> 2),
                    };
                    Sample::new(t, v)
                })
                .collect();
            for intercept_t in [s[0].t, s[len - 1].t + 60_000] {
                let (a, b) = linear_regression(&s, intercept_t);
                let (c, d) = regression_as_prometheus(&s, intercept_t);
                assert_eq!(
                    (a.to_bits(), b.to_bits()),
                    (c.to_bits(), d.to_bits()),
                    "round {round}: {a} {b} against {c} {d}"
                );
            }
        }
    }
}
