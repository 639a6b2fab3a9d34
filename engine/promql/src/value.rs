//! What a node of the expression evaluates to: values for every step of the query at once.
//!
//! A series' values are one `f64` a step, with [`ABSENT`] where the series has no value at
//! that step. `ABSENT` is a NaN with a payload of our own: samples read from storage that
//! happen to carry it are turned into the ordinary NaN ([`canonical`]), and arithmetic never
//! makes it from other values (a NaN result carries an input NaN's payload or the default
//! one), so it cannot be confused with data. Every operation tests presence before it computes.

use strata_core::labels::Labels;
use strata_core::sample::Sample;

use crate::error::PromqlError;

/// The bits of [`ABSENT`].
const ABSENT_BITS: u64 = 0x7ff4_5354_5241_5441;

/// "No value at this step."
pub(crate) const ABSENT: f64 = f64::from_bits(ABSENT_BITS);

/// Whether `v` is a value, not [`ABSENT`].
#[inline]
pub(crate) fn present(v: f64) -> bool {
    v.to_bits() != ABSENT_BITS
}

/// `v` as data: [`ABSENT`]'s bits, if a sample has them, become the ordinary NaN.
#[inline]
pub(crate) fn canonical(v: f64) -> f64 {
    if present(v) { v } else { f64::NAN }
}

/// The evaluation times of a node: `start`, `start + step`, …, `n` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Steps {
    /// The time of step `i`.
    #[inline]
    pub fn at(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// Every time, in order.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n).map(|i| self.at(i))
    }
}

/// A series across the steps of a node.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub labels: Labels,
    /// The metric name is to be removed from the result (delayed removal, see the module
    /// docs of `promql`).
    pub drop_name: bool,
    /// One a step; [`ABSENT`] where there is none.
    pub values: Vec<f64>,
}

impl Series {
    /// Whether the series has a value at some step.
    pub fn any_present(&self) -> bool {
        self.values.iter().any(|&v| present(v))
    }
}

/// A series' samples, read once for every window of a range vector.
#[derive(Debug, Clone)]
pub(crate) struct RangeData {
    pub labels: Labels,
    pub drop_name: bool,
    /// In time order, without stale markers.
    pub samples: Vec<Sample>,
}

/// Where a range vector's windows lie: at step `i`, `(ends[i] - range_ms, ends[i]]`.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    pub range_ms: i64,
    /// The window's inclusive right end per step (the step's time after `@` and `offset`);
    /// never decreasing.
    pub ends: Vec<i64>,
    /// The step's time, whatever `@` and `offset` say (what `predict_linear` predicts from).
    pub ts: Vec<i64>,
    /// Windows include their start (`[end - range, end]`, Prometheus 2).
    pub left_closed: bool,
}

/// What a walk over a range vector calls for each series: the windows, its labels, whether
/// its name is to be dropped, and its samples.
pub(crate) type EachRangeSeries<'a> =
    dyn FnMut(&Windows, &Labels, bool, &[Sample]) -> Result<(), PromqlError> + 'a;

/// A range vector: each series' samples, and its windows.
#[derive(Debug, Clone)]
pub(crate) struct RangeVal {
    pub series: Vec<RangeData>,
    pub windows: Windows,
}

impl Windows {
    /// Calls `f(step, window)` for every step's window of `series`, in step order. Windows
    /// are found by two indexes that only move forward.
    pub fn windows<'a>(&self, samples: &'a [Sample], mut f: impl FnMut(usize, &'a [Sample])) {
        self.window_bounds(samples, |i, lo, hi| f(i, &samples[lo..hi]));
    }

    /// [`Windows::windows`], with each window as the bounds `lo..hi` of its samples.
    pub fn window_bounds(&self, samples: &[Sample], mut f: impl FnMut(usize, usize, usize)) {
        let (mut lo, mut hi) = (0, 0);
        for (i, &end) in self.ends.iter().enumerate() {
            let start = end - self.range_ms;
            while hi < samples.len() && samples[hi].t <= end {
                hi += 1;
            }
            while lo < hi
                && (samples[lo].t < start || (!self.left_closed && samples[lo].t == start))
            {
                lo += 1;
            }
            lo = lo.min(hi);
            f(i, lo, hi);
        }
    }
}

/// A node's value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One number a step.
    Scalar(Vec<f64>),
    /// An instant vector per step.
    Vector(Vec<Series>),
    /// A range vector per step.
    Range(RangeVal),
    /// A string literal.
    String(String),
}

impl Val {
    /// The name Prometheus gives the value's type in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Range(_) => "range vector",
            Val::String(_) => "string",
        }
    }
}

/// Series whose labels became equal are one series, unless both have a value at one step.
pub(crate) fn merge_equal_labels(
    series: Vec<Series>,
    steps: Steps,
) -> Result<Vec<Series>, PromqlError> {
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

/// A label set as Prometheus writes it in messages: `{__name__="up", job="node"}`.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name(), l.value().as_str()))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Label-set edits, each keeping the set canonical.
pub(crate) mod edit {
    use strata_core::labels::{Label, Labels, METRIC_NAME};

    /// Only the labels named in `names`.
    pub fn keep(labels: &Labels, names: &[String]) -> Labels {
        let kept: Vec<Label> = labels
            .iter()
            .filter(|l| names.iter().any(|n| n == l.name().as_str()))
            .cloned()
            .collect();
        Labels::from_canonical_slice(&kept)
    }

    /// The labels that say what a series' values mean: its name, and (Prometheus 3's
    /// metadata labels) its type and unit. An operation that changes the meaning drops all
    /// three.
    pub fn is_metadata(name: &str) -> bool {
        matches!(name, METRIC_NAME | "__type__" | "__unit__")
    }

    /// The labels not named in `names` (and without the metadata labels, if `and_name`).
    pub fn remove(labels: &Labels, names: &[String], and_name: bool) -> Labels {
        let kept: Vec<Label> = labels
            .iter()
            .filter(|l| {
                let named = names.iter().any(|n| n == l.name().as_str());
                let metadata = and_name && is_metadata(l.name());
                !(named || metadata)
            })
            .cloned()
            .collect();
        Labels::from_canonical_slice(&kept)
    }

    /// Without the metric name (and the type and unit labels that go with it).
    pub fn without_name(labels: &Labels) -> Labels {
        if !labels.iter().any(|l| is_metadata(l.name())) {
            return labels.clone();
        }
        remove(labels, &[], true)
    }

    /// With `name` set to `value`; an empty value removes the label. `name` must be non-empty.
    pub fn set(labels: &Labels, name: &str, value: &str) -> Labels {
        let mut out: Vec<Label> = labels
            .iter()
            .filter(|l| l.name() != name)
            .cloned()
            .collect();
        if !value.is_empty() {
            let at = out.partition_point(|l| l.name().as_str() < name);
            out.insert(at, Label::new(name, value));
        }
        Labels::from_canonical_slice(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_no_value_and_data_never_is_absent() {
        assert!(!present(ABSENT));
        assert!(present(f64::NAN));
        assert!(present(f64::from_bits(strata_core::sample::STALE_NAN_BITS)));
        assert!(present(canonical(ABSENT)));
        // Arithmetic on present values never yields the sentinel.
        for v in [f64::NAN, f64::INFINITY, -0.0, 1.0] {
            for w in [f64::NAN, f64::NEG_INFINITY, 0.0] {
                assert!(present(v + w) && present(v * w) && present(v / w) && present(v - w));
            }
        }
    }

    #[test]
    fn windows_are_left_open() {
        let samples: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let r = Windows {
            range_ms: 30,
            ends: vec![0, 25, 30, 30, 95, 200],
            ts: vec![0, 25, 30, 30, 95, 200],
            left_closed: false,
        };
        let mut seen = Vec::new();
        r.windows(&samples, |i, w| {
            seen.push((i, w.iter().map(|s| s.t).collect::<Vec<_>>()))
        });
        assert_eq!(
            seen,
            vec![
                (0, vec![0]),
                (1, vec![0, 10, 20]),
                (2, vec![10, 20, 30]),
                (3, vec![10, 20, 30]),
                (4, vec![70, 80, 90]),
                (5, vec![]),
            ]
        );
    }
}
