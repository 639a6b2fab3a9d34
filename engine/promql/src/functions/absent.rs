//! `absent(v)` and `absent_over_time(r)`: 1 where the argument has no value, labelled from
//! the argument's selector.

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use strata_core::labels::{Labels, METRIC_NAME};

use crate::value::{ABSENT, Series, Val, present};

/// The labels `absent` gives its result: those of the selector's equality matchers (a name
/// given twice is left out), without the metric name.
fn absent_labels(expr: &Expr) -> Labels {
    let mut inner = expr;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let vs = match inner {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        // A name matched more than once, in any way, is left out.
        if pairs.iter().any(|(n, _)| *n == m.name)
            || vs
                .matchers
                .matchers
                .iter()
                .filter(|o| o.name == m.name)
                .count()
                > 1
        {
            repeated.push(m.name.clone());
        } else if matches!(m.op, MatchOp::Equal) {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    pairs.retain(|(n, _)| !repeated.contains(n));
    Labels::new(pairs).unwrap_or_default()
}

/// `absent(v)` of the evaluated `v` (`arg` is its expression).
pub(crate) fn absent(arg: &Expr, v: &[Series], steps_n: usize) -> Val {
    let values = (0..steps_n)
        .map(|i| {
            if v.iter().any(|s| present(s.values[i])) {
                ABSENT
            } else {
                1.0
            }
        })
        .collect();
    absent_result(absent_labels(arg), values)
}

/// `absent_over_time(r)`, given at which steps some series of `r` (`arg`) had samples in its
/// window.
pub(crate) fn absent_over_time(arg: &Expr, any: Vec<bool>) -> Val {
    let values = any
        .into_iter()
        .map(|a| if a { ABSENT } else { 1.0 })
        .collect();
    absent_result(absent_labels(arg), values)
}

fn absent_result(labels: Labels, values: Vec<f64>) -> Val {
    let s = Series {
        labels,
        drop_name: false,
        values,
    };
    Val::Vector(if s.any_present() { vec![s] } else { Vec::new() })
}
