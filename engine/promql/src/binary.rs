//! Binary operators: arithmetic, comparisons (filtering or `bool`) and the set operators
//! `and`, `or`, `unless`, between scalars and instant vectors, with Prometheus's vector
//! matching (`on`, `ignoring`, `group_left`, `group_right`).
//!
//! Two vectors are matched by a signature per series, the labels `on` names or all but those
//! `ignoring` names (and the metric name). Signatures are computed once per series; matching
//! itself is per step, because which series are present changes from step to step, and so do
//! the errors Prometheus raises for duplicate matches.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinModifier, LabelModifier, VectorMatchCardinality};
use strata_core::labels::{Labels, METRIC_NAME};

use crate::error::PromqlError;
use crate::value::{ABSENT, Series, Steps, Val, edit, labels_string, present};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    /// The operator of a parsed PromQL binary expression; `None` for one Strata does not
    /// know.
    pub(crate) fn from_token(id: TokenId) -> Option<BinaryOp> {
        Some(match id {
            T_ADD => BinaryOp::Add,
            T_SUB => BinaryOp::Sub,
            T_MUL => BinaryOp::Mul,
            T_DIV => BinaryOp::Div,
            T_MOD => BinaryOp::Mod,
            T_POW => BinaryOp::Pow,
            T_ATAN2 => BinaryOp::Atan2,
            T_EQLC => BinaryOp::Eq,
            T_NEQ => BinaryOp::Ne,
            T_GTR => BinaryOp::Gt,
            T_LSS => BinaryOp::Lt,
            T_GTE => BinaryOp::Ge,
            T_LTE => BinaryOp::Le,
            T_LAND => BinaryOp::And,
            T_LOR => BinaryOp::Or,
            T_LUNLESS => BinaryOp::Unless,
            _ => return None,
        })
    }

    /// Whether the operator compares (and so filters, unless `bool`).
    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Gt | BinaryOp::Lt | BinaryOp::Ge | BinaryOp::Le
        )
    }
}

/// `lhs op rhs` for arithmetic; for comparisons, whether it holds (1 or 0); NaN for the set
/// operators, which have no value of their own.
pub(crate) fn arith(op: BinaryOp, lhs: f64, rhs: f64) -> f64 {
    let truth = |b: bool| if b { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Add => lhs + rhs,
        BinaryOp::Sub => lhs - rhs,
        BinaryOp::Mul => lhs * rhs,
        BinaryOp::Div => lhs / rhs,
        BinaryOp::Mod => lhs % rhs,
        BinaryOp::Pow => lhs.powf(rhs),
        BinaryOp::Atan2 => lhs.atan2(rhs),
        BinaryOp::Eq => truth(lhs == rhs),
        BinaryOp::Ne => truth(lhs != rhs),
        BinaryOp::Gt => truth(lhs > rhs),
        BinaryOp::Lt => truth(lhs < rhs),
        BinaryOp::Ge => truth(lhs >= rhs),
        BinaryOp::Le => truth(lhs <= rhs),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => f64::NAN,
    }
}

/// Which series of two vectors match, and what their results are labelled with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matching<'a> {
    /// `on` (match on `names`) rather than `ignoring` (match on all but `names`).
    pub on: bool,
    pub names: &'a [String],
    pub card: Card,
    /// The `group_left`/`group_right` labels taken from the "one" side.
    pub include: &'a [String],
    /// `bool`: comparisons give 0 or 1 instead of filtering.
    pub return_bool: bool,
    /// `fill_left`/`fill_right`: the value a missing left (right) side stands in with.
    pub fill_lhs: Option<f64>,
    pub fill_rhs: Option<f64>,
}

/// How many series of each side may match one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// The set operators.
    ManyToMany,
}

impl<'a> Matching<'a> {
    /// The matching a parsed PromQL modifier asks for (none: one-to-one on all labels).
    pub(crate) fn from_modifier(modifier: Option<&'a BinModifier>) -> Matching<'a> {
        let Some(m) = modifier else {
            return Matching {
                on: false,
                names: &[],
                card: Card::OneToOne,
                include: &[],
                return_bool: false,
                fill_lhs: None,
                fill_rhs: None,
            };
        };
        let (on, names): (bool, &[String]) = match &m.matching {
            Some(LabelModifier::Include(l)) => (true, &l.labels),
            Some(LabelModifier::Exclude(l)) => (false, &l.labels),
            None => (false, &[]),
        };
        let (card, include): (Card, &[String]) = match &m.card {
            VectorMatchCardinality::OneToOne => (Card::OneToOne, &[]),
            VectorMatchCardinality::ManyToOne(l) => (Card::ManyToOne, &l.labels),
            VectorMatchCardinality::OneToMany(l) => (Card::OneToMany, &l.labels),
            VectorMatchCardinality::ManyToMany => (Card::ManyToMany, &[]),
        };
        Matching {
            on,
            names,
            card,
            include,
            return_bool: m.return_bool,
            fill_lhs: m.fill_values.lhs,
            fill_rhs: m.fill_values.rhs,
        }
    }
}

/// `lhs op rhs` of evaluated operands at every step.
pub(crate) fn apply(
    op: BinaryOp,
    matching: &Matching<'_>,
    lhs: Val,
    rhs: Val,
    steps: Steps,
) -> Result<Val, PromqlError> {
    let return_bool = matching.return_bool;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.into_iter().zip(r).map(|(l, r)| arith(op, l, r)).collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => {
            Ok(Val::Vector(vector_scalar(op, v, &s, false, return_bool)))
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            Ok(Val::Vector(vector_scalar(op, v, &s, true, return_bool)))
        }
        (Val::Vector(l), Val::Vector(r)) => match op {
            BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => {
                Ok(Val::Vector(set_operation(op, l, r, matching, steps)))
            }
            _ => vector_vector(op, l, r, matching, steps).map(Val::Vector),
        },
        (l, r) => Err(PromqlError::Execution(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// A vector and a scalar (`swapped`: the scalar is on the left).
fn vector_scalar(
    op: BinaryOp,
    mut series: Vec<Series>,
    scalar: &[f64],
    swapped: bool,
    return_bool: bool,
) -> Vec<Series> {
    let comparison = op.is_comparison();
    for s in &mut series {
        for (v, &k) in s.values.iter_mut().zip(scalar) {
            if !present(*v) {
                continue;
            }
            let (l, r) = if swapped { (k, *v) } else { (*v, k) };
            let result = arith(op, l, r);
            *v = if !comparison || return_bool {
                result
            } else if result == 1.0 {
                *v
            } else {
                ABSENT
            };
        }
        if !comparison || return_bool {
            s.drop_name = true;
        }
    }
    series.retain(Series::any_present);
    series
}

/// The signature a series is matched by: its labels on (or without) the matching names, as
/// text (exact, no hash collisions).
fn signature(labels: &Labels, on: bool, names: &[String]) -> String {
    let mut key = String::new();
    for l in labels.iter() {
        let listed = names.iter().any(|n| n == l.name().as_str());
        let counted = if on {
            listed
        } else {
            !listed && l.name() != METRIC_NAME
        };
        if counted {
            key.push_str(l.name());
            key.push('\u{ff}');
            key.push_str(l.value());
            key.push('\u{fe}');
        }
    }
    key
}

/// The labels of the signature, for messages.
fn signature_labels(labels: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        edit::keep(labels, names)
    } else {
        edit::remove(labels, names, true)
    }
}

fn set_operation(
    op: BinaryOp,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    matching: &Matching<'_>,
    steps: Steps,
) -> Vec<Series> {
    let (on, names) = (matching.on, matching.names);
    let lsig: Vec<String> = lhs
        .iter()
        .map(|s| signature(&s.labels, on, names))
        .collect();
    let rsig: Vec<String> = rhs
        .iter()
        .map(|s| signature(&s.labels, on, names))
        .collect();
    // Per signature: at which steps the other side has a value.
    fn presence<'a>(
        series: &[Series],
        sigs: &'a [String],
        steps: Steps,
    ) -> HashMap<&'a str, Vec<bool>> {
        let mut at: HashMap<&str, Vec<bool>> = HashMap::new();
        for (s, sig) in series.iter().zip(sigs) {
            let entry = at
                .entry(sig.as_str())
                .or_insert_with(|| vec![false; steps.n]);
            for (e, &v) in entry.iter_mut().zip(&s.values) {
                *e |= present(v);
            }
        }
        at
    }
    match op {
        BinaryOp::And | BinaryOp::Unless => {
            let keep_matched = op == BinaryOp::And;
            let rights = presence(&rhs, &rsig, steps);
            let mut out = lhs;
            for (s, sig) in out.iter_mut().zip(&lsig) {
                let other = rights.get(sig.as_str());
                for (i, v) in s.values.iter_mut().enumerate() {
                    let matched = other.is_some_and(|o| o[i]);
                    if matched != keep_matched {
                        *v = ABSENT;
                    }
                }
            }
            out.retain(Series::any_present);
            out
        }
        _ => {
            let lefts = presence(&lhs, &lsig, steps);
            let mut out = lhs;
            for (mut s, sig) in rhs.into_iter().zip(&rsig) {
                if let Some(l) = lefts.get(sig.as_str()) {
                    for (i, v) in s.values.iter_mut().enumerate() {
                        if l[i] {
                            *v = ABSENT;
                        }
                    }
                }
                if s.any_present() {
                    out.push(s);
                }
            }
            out
        }
    }
}

/// Numbers the distinct signatures of two sides: each series' signature id, and how many
/// there are.
fn signature_ids(
    left: &[Series],
    right: &[Series],
    on: bool,
    names: &[String],
) -> (Vec<usize>, Vec<usize>, usize) {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut id_of = |s: &Series| {
        let n = ids.len();
        *ids.entry(signature(&s.labels, on, names)).or_insert(n)
    };
    let l: Vec<usize> = left.iter().map(&mut id_of).collect();
    let r: Vec<usize> = right.iter().map(&mut id_of).collect();
    (l, r, ids.len())
}

const NONE: usize = usize::MAX;

/// Arithmetic and comparisons between two vectors.
///
/// Signatures are numbered once; each step then works on arrays indexed by signature (which
/// "one"-side series is present, what the "many" side produced), reset only where touched,
/// and each "many"-side series remembers the result series its last match went to.
fn vector_vector(
    op: BinaryOp,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    matching: &Matching<'_>,
    steps: Steps,
) -> Result<Vec<Series>, PromqlError> {
    let (on, names) = (matching.on, matching.names);
    let one_to_many = matching.card == Card::OneToMany;
    let one_to_one = matching.card == Card::OneToOne;
    // Prometheus matches from the "many" side: swap so that it is on the left.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let (many_sig, one_sig, sigs) = signature_ids(&many, &one, on, names);
    if one_to_one && matching.fill_lhs.is_none() && matching.fill_rhs.is_none() {
        let pairs = Pairs {
            many: &many,
            one: &one,
            many_sig: &many_sig,
            one_sig: &one_sig,
            sigs,
        };
        if let Some(out) = pairs.eval(op, matching, steps) {
            return Ok(out);
        }
    }
    stepwise(op, (many, one), (many_sig, one_sig, sigs), matching, steps)
}

/// [`vector_vector`] a step at a time: `sides` are the "many" and the "one" side, `sig_ids`
/// their signatures' numbers and how many there are.
fn stepwise(
    op: BinaryOp,
    (many, one): (Vec<Series>, Vec<Series>),
    (many_sig, one_sig, sigs): (Vec<usize>, Vec<usize>, usize),
    matching: &Matching<'_>,
    steps: Steps,
) -> Result<Vec<Series>, PromqlError> {
    let (on, names) = (matching.on, matching.names);
    let comparison = op.is_comparison();
    let return_bool = matching.return_bool;
    let include = matching.include;
    let one_to_many = matching.card == Card::OneToMany;
    let one_to_one = matching.card == Card::OneToOne;
    let mut one_by_sig: Vec<Vec<usize>> = vec![Vec::new(); sigs];
    for (j, &sig) in one_sig.iter().enumerate() {
        one_by_sig[sig].push(j);
    }
    let one_sigs: Vec<usize> = (0..sigs).filter(|&g| !one_by_sig[g].is_empty()).collect();
    let mut out: Vec<Series> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    // Per "many" series: the one-side match and result series of its last match.
    let mut last_result: Vec<(usize, usize)> = vec![(NONE, NONE); many.len()];
    let mut lone_labels: HashMap<usize, usize> = HashMap::new();
    // Per signature, for the current step: the present one-side series, and the result
    // series the many side produced (one-to-one: at most one).
    let mut one_at: Vec<usize> = vec![NONE; sigs];
    let mut produced: Vec<Vec<usize>> = vec![Vec::new(); sigs];
    let mut touched: Vec<usize> = Vec::new();
    for step in 0..steps.n {
        for &g in &touched {
            produced[g].clear();
        }
        touched.clear();
        for &g in &one_sigs {
            one_at[g] = NONE;
            for &j in &one_by_sig[g] {
                if !present(one[j].values[step]) {
                    continue;
                }
                if one_at[g] != NONE {
                    let prev = one_at[g];
                    let side = if one_to_many { "left" } else { "right" };
                    return Err(PromqlError::Execution(format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_string(&signature_labels(&one[j].labels, on, names)),
                        labels_string(&one[prev].labels),
                        labels_string(&one[j].labels),
                    )));
                }
                one_at[g] = j;
            }
        }
        for (i, m) in many.iter().enumerate() {
            let mv = m.values[step];
            if !present(mv) {
                continue;
            }
            let g = many_sig[i];
            let (j, ov) = match one_at.get(g).copied().filter(|&j| j != NONE) {
                Some(j) => (j, one[j].values[step]),
                // No match: the missing side's fill value, if the query gives one. (With
                // `group_right` the sides are swapped, and so are what the fills refer to.)
                None => match matching.fill_rhs {
                    Some(v) => (NONE, v),
                    None => continue,
                },
            };
            let (l, r) = if one_to_many { (ov, mv) } else { (mv, ov) };
            let value = outcome(op, l, r, comparison, return_bool);
            let k = match last_result[i] {
                (lj, k) if lj == j && k != NONE => k,
                _ => {
                    let none = Labels::default();
                    let labels = result_metric(
                        &m.labels,
                        if j == NONE { &none } else { &one[j].labels },
                        !comparison,
                        (on, names),
                        one_to_one,
                        include,
                    );
                    let k = output(&mut out, &mut out_index, labels, steps);
                    last_result[i] = (j, k);
                    k
                }
            };
            let seen = &mut produced[g];
            if seen.is_empty() {
                touched.push(g);
            }
            if j != NONE {
                if one_to_one {
                    if !seen.is_empty() {
                        return Err(PromqlError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                        ));
                    }
                } else if seen.contains(&k) {
                    return Err(PromqlError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
            seen.push(k);
            if let Some(value) = value {
                let s = &mut out[k];
                s.values[step] = value;
                s.drop_name |= return_bool || m.drop_name;
            }
        }
        // The "one" side's series that matched nothing, with the other side's fill value.
        if let Some(fv) = matching.fill_lhs {
            for &g in &one_sigs {
                let j = one_at[g];
                if j == NONE || !produced[g].is_empty() {
                    continue;
                }
                let ov = one[j].values[step];
                let (l, r) = if one_to_many { (ov, fv) } else { (fv, ov) };
                let Some(value) = outcome(op, l, r, comparison, return_bool) else {
                    continue;
                };
                let k = match lone_labels.get(&j) {
                    Some(&k) => k,
                    None => {
                        let labels = signature_labels(&one[j].labels, on, names);
                        let k = output(&mut out, &mut out_index, labels, steps);
                        lone_labels.insert(j, k);
                        k
                    }
                };
                out[k].values[step] = value;
                out[k].drop_name |= return_bool;
            }
        }
    }
    out.retain(Series::any_present);
    Ok(out)
}

/// The two sides of a one-to-one match where no signature has more than one series on
/// either side (`a / b` of two metrics of the same targets): each pair is fixed for the whole
/// range, so it is computed a pair at a time over all steps rather than a step at a time
/// over all series.
struct Pairs<'a> {
    many: &'a [Series],
    one: &'a [Series],
    many_sig: &'a [usize],
    one_sig: &'a [usize],
    sigs: usize,
}

impl Pairs<'_> {
    /// The result, the same as the step-at-a-time form's, in the same series order (by the
    /// step of a result's first value, then by its "many" series); `None` where that form is
    /// needed: a signature with two series on a side, or two pairs giving the same labels.
    fn eval(&self, op: BinaryOp, matching: &Matching<'_>, steps: Steps) -> Option<Vec<Series>> {
        let mut one_of_sig = vec![NONE; self.sigs];
        for (j, &g) in self.one_sig.iter().enumerate() {
            if one_of_sig[g] != NONE {
                return None;
            }
            one_of_sig[g] = j;
        }
        let mut many_seen = vec![false; self.sigs];
        for &g in self.many_sig {
            if std::mem::replace(&mut many_seen[g], true) {
                return None;
            }
        }
        let comparison = op.is_comparison();
        let return_bool = matching.return_bool;
        let (on, names) = (matching.on, matching.names);
        let mut made: Vec<(usize, Series)> = Vec::new();
        let mut labels_seen: HashSet<Labels> = HashSet::new();
        for (m, &g) in self.many.iter().zip(self.many_sig) {
            let j = one_of_sig[g];
            if j == NONE {
                continue;
            }
            let o = &self.one[j];
            let mut values = vec![ABSENT; steps.n];
            let mut first = NONE;
            for (step, (v, (&mv, &ov))) in values
                .iter_mut()
                .zip(m.values.iter().zip(&o.values))
                .enumerate()
            {
                if !present(mv) || !present(ov) {
                    continue;
                }
                // The step-at-a-time form makes a pair's result series at the first step
                // both are present, even where a filtering comparison then gives nothing.
                first = first.min(step);
                if let Some(value) = outcome(op, mv, ov, comparison, return_bool) {
                    *v = value;
                }
            }
            if first == NONE {
                continue;
            }
            let labels = result_metric(
                &m.labels,
                &o.labels,
                !comparison,
                (on, names),
                true,
                matching.include,
            );
            if !labels_seen.insert(labels.clone()) {
                return None;
            }
            if !values.iter().copied().any(present) {
                continue;
            }
            let drop_name = return_bool || m.drop_name;
            made.push((
                first,
                Series {
                    labels,
                    drop_name,
                    values,
                },
            ));
        }
        made.sort_by_key(|(first, _)| *first);
        Some(made.into_iter().map(|(_, s)| s).collect())
    }
}

/// The value of `l op r` in the result: arithmetic and `bool` comparisons always give one, a
/// filtering comparison the left value where it holds and nothing where it does not.
fn outcome(op: BinaryOp, l: f64, r: f64, comparison: bool, return_bool: bool) -> Option<f64> {
    let result = arith(op, l, r);
    if !comparison || return_bool {
        Some(result)
    } else {
        (result == 1.0).then_some(l)
    }
}

/// The index of the output series with `labels`, added if new.
fn output(
    out: &mut Vec<Series>,
    index: &mut HashMap<Labels, usize>,
    labels: Labels,
    steps: Steps,
) -> usize {
    *index.entry(labels.clone()).or_insert_with(|| {
        out.push(Series {
            labels,
            drop_name: false,
            values: vec![ABSENT; steps.n],
        });
        out.len() - 1
    })
}

/// The labels of a matched pair's result: the "many" side's, without the metric name for
/// arithmetic (`arithmetic`: the value means something else now), reduced to the matching
/// labels for one-to-one `on`, without the ignored ones for one-to-one `ignoring`, and with
/// the `group_x` labels taken from the "one" side.
fn result_metric(
    many: &Labels,
    one: &Labels,
    arithmetic: bool,
    (on, names): (bool, &[String]),
    one_to_one: bool,
    include: &[String],
) -> Labels {
    let mut labels = if arithmetic {
        edit::without_name(many)
    } else {
        many.clone()
    };
    if one_to_one {
        labels = if on {
            edit::keep(&labels, names)
        } else {
            edit::remove(&labels, names, false)
        };
    }
    for name in include {
        labels = edit::set(&labels, name, one.get(name).unwrap_or(""));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series named `a` (left) or `b` (right) for hosts `0..hosts`, some with a second
    /// series of the same host (so some signatures hold two), values absent at random steps.
    fn side(name: &str, hosts: u64, doubled: &[u64], seed: &mut u64, n: usize) -> Vec<Series> {
        let mut next = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let mut out = Vec::new();
        for h in 0..hosts {
            let copies = if doubled.contains(&h) { 2 } else { 1 };
            for c in 0..copies {
                let host = format!("h{h}");
                let kind = format!("k{c}");
                let mut pairs = vec![("__name__", name), ("host", host.as_str())];
                if c > 0 {
                    pairs.push(("kind", kind.as_str()));
                }
                let values = (0..n)
                    .map(|_| match next() % 8 {
                        0 => ABSENT,
                        r => (next() % 100) as f64 / r as f64,
                    })
                    .collect();
                out.push(Series {
                    labels: Labels::new(pairs).unwrap(),
                    drop_name: false,
                    values,
                });
            }
        }
        out
    }

    /// A one-to-one match computed a pair at a time gives what the step-at-a-time form
    /// gives, to the bit and in the same series order, for arithmetic and comparisons with
    /// and without `bool`, matching on all labels or `on(host)`; where a signature holds two
    /// series the step-at-a-time form decides (its errors included).
    #[test]
    fn pairs_at_a_time_give_what_steps_at_a_time_give() {
        let steps = Steps {
            start: 0,
            step: 1_000,
            n: 40,
        };
        let host = vec!["host".to_string()];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut fast = 0;
        for round in 0..60 {
            let doubled: &[u64] = if round % 3 == 0 { &[2] } else { &[] };
            let lhs = side("a", 12, doubled, &mut seed, steps.n);
            let rhs = side("b", 10 + round % 4, &[], &mut seed, steps.n);
            for (op, return_bool) in [
                (BinaryOp::Div, false),
                (BinaryOp::Sub, false),
                (BinaryOp::Gt, false),
                (BinaryOp::Gt, true),
                (BinaryOp::Le, false),
            ] {
                for on in [false, true] {
                    let names: &[String] = if on { &host } else { &[] };
                    let matching = Matching {
                        on,
                        names,
                        card: Card::OneToOne,
                        include: &[],
                        return_bool,
                        fill_lhs: None,
                        fill_rhs: None,
                    };
                    // `ignoring()` keeps the names apart: match `a` against `b` by host.
                    let (l, r) = if on {
                        (lhs.clone(), rhs.clone())
                    } else {
                        let strip = |s: &[Series]| -> Vec<Series> {
                            s.iter()
                                .map(|x| Series {
                                    labels: edit::without_name(&x.labels),
                                    ..x.clone()
                                })
                                .collect()
                        };
                        (strip(&lhs), strip(&rhs))
                    };
                    let sig = signature_ids(&l, &r, on, names);
                    let want = stepwise(op, (l.clone(), r.clone()), sig, &matching, steps);
                    let got = vector_vector(op, l.clone(), r.clone(), &matching, steps);
                    let (many_sig, one_sig, sigs) = signature_ids(&l, &r, on, names);
                    let pairs = Pairs {
                        many: &l,
                        one: &r,
                        many_sig: &many_sig,
                        one_sig: &one_sig,
                        sigs,
                    };
                    fast += usize::from(pairs.eval(op, &matching, steps).is_some());
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{want:?}"),
                        "round {round} {op:?} bool {return_bool} on {on}"
                    );
                }
            }
        }
        // Both forms were compared: pairs where every signature is single; the
        // step-at-a-time form for `on(host)` where a host has two series (a third of the
        // rounds; matching on all labels, its `kind` label keeps them apart).
        assert_eq!(fast, 60 * 10 - 20 * 5);
    }
}
