//! Functions of a range vector, walked series by series: the evaluator streams each series'
//! samples (a matrix selector is never held whole), and each step's window goes to the
//! function's window computation ([`super::window`]).
//!
//! `rate`, `increase` and `irate` get an evaluation loop of their own (the window
//! computation inlined into it); the rest share one through a function pointer.
//! `sum_over_time` and `avg_over_time` take every window from prefix sums instead of a walk.

use strata_core::labels::Labels;
use strata_core::sample::Sample;

use super::window::{self, Window};
use crate::annotations::Annotations;
use crate::error::PromqlError;
use crate::format::format_go;
use crate::numeric::{kahan_inc, two_sum};
use crate::value::{ABSENT, EachRangeSeries, Series, Steps, Windows};

/// A window computation: the window and the step's scalar arguments.
pub(crate) type WindowComputation = fn(Window<'_>, &[f64]) -> Option<f64>;

/// Which window computation, where the evaluation loop treats it apart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WindowFn {
    /// `rate`: a counter's extrapolated per-second increase; notes non-counters.
    Rate,
    /// `increase`: a counter's extrapolated increase; notes non-counters.
    Increase,
    /// `irate`: the per-second change between the last two samples; notes non-counters.
    Irate,
    /// `sum_over_time`, from prefix sums.
    Sum,
    /// `avg_over_time`, from prefix sums.
    Avg,
    /// Any other.
    Other(WindowComputation),
}

/// Which scalar arguments a range function checks before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamCheck {
    /// None.
    None,
    /// Smoothing and trend factors strictly between 0 and 1 (an error otherwise).
    Smoothing,
    /// A quantile between 0 and 1 (a warning otherwise).
    Quantile,
}

/// A range function, as the function table describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RangeSpec {
    pub window: WindowFn,
    /// Which argument is the range vector; the others are scalars.
    pub range_arg: usize,
    /// The result keeps the series' metric name.
    pub keeps_name: bool,
    pub check: ParamCheck,
}

impl RangeSpec {
    /// Checks the scalar arguments (`at`: the position of the first argument, for
    /// warnings).
    pub(crate) fn check_params(
        &self,
        scalars: &[Vec<f64>],
        notes: &mut Annotations,
        at: &str,
    ) -> Result<(), PromqlError> {
        match self.check {
            ParamCheck::None => {}
            ParamCheck::Smoothing => {
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
            ParamCheck::Quantile => {
                for &q in &scalars[0] {
                    if !(0.0..=1.0).contains(&q) {
                        notes.warn(format!(
                            "quantile value should be between 0 and 1, got {}{at}",
                            format_go(q)
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a range function produced: the series, and those whose name does not say they
/// count (for the `rate` family's note).
#[derive(Debug, Default)]
pub(crate) struct RangeOutput {
    pub series: Vec<Series>,
    pub not_counters: Vec<Labels>,
}

/// Evaluates the range function `spec` at every step: `stream` walks the range vector,
/// calling its argument for each series.
pub(crate) fn eval(
    spec: &RangeSpec,
    scalars: &[Vec<f64>],
    steps: Steps,
    stream: impl FnOnce(&mut EachRangeSeries<'_>) -> Result<Windows, PromqlError>,
) -> Result<RangeOutput, PromqlError> {
    let walk = Walk {
        spec,
        scalars,
        steps,
    };
    match spec.window {
        WindowFn::Rate => walk.run(|w, _| window::extrapolated_rate(w, true, true), stream),
        WindowFn::Increase => walk.run(|w, _| window::extrapolated_rate(w, true, false), stream),
        WindowFn::Irate => walk.run(|w, _| window::instant_delta(w, true), stream),
        WindowFn::Sum => walk.run(|w, _| window::sum_over_time(w), stream),
        WindowFn::Avg => walk.run(|w, _| window::avg_over_time(w), stream),
        WindowFn::Other(f) => walk.run(f, stream),
    }
}

/// One range function's evaluation.
struct Walk<'a> {
    spec: &'a RangeSpec,
    scalars: &'a [Vec<f64>],
    steps: Steps,
}

impl Walk<'_> {
    fn run(
        &self,
        f: impl Fn(Window<'_>, &[f64]) -> Option<f64>,
        stream: impl FnOnce(&mut EachRangeSeries<'_>) -> Result<Windows, PromqlError>,
    ) -> Result<RangeOutput, PromqlError> {
        let (steps, scalars) = (self.steps, self.scalars);
        let kind = self.spec.window;
        let keep_name = self.spec.keeps_name;
        let counts_resets = matches!(kind, WindowFn::Rate | WindowFn::Increase);
        let wants_counters = matches!(kind, WindowFn::Rate | WindowFn::Increase | WindowFn::Irate);
        // Some(true) for avg_over_time, Some(false) for sum_over_time: the windowed sums come
        // from prefix sums rather than a walk over each window.
        let sliding = match kind {
            WindowFn::Avg => Some(true),
            WindowFn::Sum => Some(false),
            _ => None,
        };
        let mut out = RangeOutput::default();
        let mut step_args = vec![0.0; scalars.len()];
        let mut drops: Vec<u32> = Vec::new();
        let mut prefix = PrefixSums::default();
        // rate and increase: every window of a series at once (window::Rates).
        let batched = match kind {
            WindowFn::Rate => Some(true),
            WindowFn::Increase => Some(false),
            _ => None,
        };
        let mut rates = window::Rates::default();
        stream(&mut |windows, labels, drop_name, samples| {
            let mut values = vec![ABSENT; steps.n];
            // A counter without a reset in the whole range (the usual case) needs no count.
            let monotone = counts_resets && !samples.windows(2).any(|w| w[1].v < w[0].v);
            if counts_resets && !monotone {
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
                                (sum, c) = kahan_inc(p.v, sum, c);
                            }
                            sum + c
                        });
                        values[i] = if avg { sum / (hi - lo) as f64 } else { sum };
                        any = true;
                    }
                });
            } else if let Some(per_second) = batched {
                any = rates.eval(samples, windows, per_second, &mut values, |lo, hi| {
                    monotone || drops[hi - 1] == drops[lo]
                });
            } else {
                windows.window_bounds(samples, |i, lo, hi| {
                    for (a, sc) in step_args.iter_mut().zip(scalars) {
                        *a = sc[i];
                    }
                    let window = Window {
                        samples: &samples[lo..hi],
                        end: windows.ends[i],
                        range: windows.range_ms,
                        ts: windows.ts[i],
                        no_resets: monotone
                            || (counts_resets && hi > lo && drops[hi - 1] == drops[lo]),
                    };
                    if let Some(v) = f(window, &step_args) {
                        values[i] = v;
                        any = true;
                    }
                });
            }
            if any {
                if wants_counters {
                    out.not_counters.push(labels.clone());
                }
                out.series.push(Series {
                    labels: labels.clone(),
                    drop_name: drop_name || !keep_name,
                    values,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Prometheus notes, for `rate` and its kin, a metric whose name does not say it counts.
pub(crate) fn note_non_counter(notes: &mut Annotations, labels: &Labels, at: &str) {
    let Some(name) = labels.metric_name() else {
        return;
    };
    let counter = ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s));
    if !counter {
        notes.info(format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}{at}"
        ));
    }
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
                (sum, c) = kahan_inc(p.v, sum, c);
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
}
