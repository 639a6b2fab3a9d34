//! A query's result, as callers receive it: the value and its annotations; and how the root
//! node's value becomes it ([`shape`]).

use strata_core::labels::Labels;
use strata_core::sample::Sample;

use crate::error::PromqlError;
use crate::value::{Series, Steps, Val, edit, merge_equal_labels, present};

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, at the evaluation time.
    Scalar {
        /// Evaluation time, milliseconds.
        t: i64,
        /// The number.
        v: f64,
    },
    /// A string literal, at the evaluation time.
    String {
        /// Evaluation time, milliseconds.
        t: i64,
        /// The string.
        s: String,
    },
    /// One sample per series at the evaluation time (an instant query's vector).
    Vector(Vec<InstantSample>),
    /// Samples over time per series: a range query's result, or an instant query of a range
    /// vector (`foo[5m]`). Sorted by labels.
    Matrix(Vec<RangeSeries>),
}

/// A series' value at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// Milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// A series' values over time.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// In time order.
    pub samples: Vec<Sample>,
}

/// A query's result with what Prometheus would annotate it with.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// The result.
    pub value: Value,
    /// Warnings (`PromQL warning: …`), each once, in the order they were raised.
    pub warnings: Vec<String>,
    /// Infos (`PromQL info: …`), each once.
    pub infos: Vec<String>,
}

/// The query's result from its root node's value `val` at `steps`: an instant query
/// (`instant`) returns its value at the first step, a range query a matrix sorted by labels.
/// Metric names marked for removal go here, at the end of evaluation.
pub(crate) fn shape(val: Val, steps: Steps, instant: bool) -> Result<Value, PromqlError> {
    let start = steps.start;
    Ok(match val {
        Val::Scalar(v) if instant => Value::Scalar { t: start, v: v[0] },
        Val::Scalar(v) => Value::Matrix(vec![RangeSeries {
            labels: Labels::default(),
            samples: steps
                .times()
                .zip(v)
                .map(|(t, v)| Sample::new(t, v))
                .collect(),
        }]),
        Val::String(s) if instant => Value::String { t: start, s },
        Val::Vector(series) => {
            let series = finish_names(series, steps)?;
            if instant {
                Value::Vector(
                    series
                        .into_iter()
                        .filter(|s| present(s.values[0]))
                        .map(|s| InstantSample {
                            labels: s.labels,
                            t: start,
                            v: s.values[0],
                        })
                        .collect(),
                )
            } else {
                let mut out: Vec<RangeSeries> = series
                    .into_iter()
                    .filter(Series::any_present)
                    .map(|s| RangeSeries {
                        labels: s.labels,
                        samples: steps
                            .times()
                            .zip(s.values)
                            .filter(|&(_, v)| present(v))
                            .map(|(t, v)| Sample::new(t, v))
                            .collect(),
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        }
        Val::Range(r) if instant => {
            let mut out = Vec::new();
            for s in &r.series {
                let mut window: &[Sample] = &[];
                r.windows.windows(&s.samples, |_, w| window = w);
                if !window.is_empty() {
                    out.push(RangeSeries {
                        labels: s.labels.clone(),
                        samples: window.to_vec(),
                    });
                }
            }
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(out)
        }
        other => {
            return Err(PromqlError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                other.type_name()
            )));
        }
    })
}

/// Removes the metric name where an operation asked for it, then merges series that are left
/// with equal labels (an error where two have a value at the same step).
fn finish_names(series: Vec<Series>, steps: Steps) -> Result<Vec<Series>, PromqlError> {
    if !series.iter().any(|s| s.drop_name) {
        return Ok(series);
    }
    let series = series
        .into_iter()
        .map(|mut s| {
            if s.drop_name {
                s.labels = edit::without_name(&s.labels);
                s.drop_name = false;
            }
            s
        })
        .collect();
    merge_equal_labels(series, steps)
}
