//! Runs parsed scripts against the engine: loads into a fresh database on the simulated disk,
//! evaluates each `eval` as the upstream harness does (the instant query, the same query in
//! range mode, and `@`-pinned variants at other times) and compares the results.

use std::sync::Arc;

use promql_parser::parser::{AtModifier, Expr};
use strata_engine::fs::sim::SimFs;
use strata_engine::labels::Labels;
use strata_engine::promql::{Engine, EngineOptions, PromqlError, Query, QueryOutput, Stop, Value};
use strata_engine::sample::STALE_NAN_BITS;
use strata_engine::{Db, ManualClock, Options};

use super::script::{Command, Eval, EvalKind, Expected, Point, SeriesLine, TextMatch};

/// What happened to one eval.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
}

/// The state a script runs in.
pub struct Runner {
    db: Option<Db>,
    engine: Engine,
    /// Metric names loaded as native histograms since the last `clear`.
    pub histogram_names: Vec<String>,
}

fn open_db() -> Db {
    let options = Options {
        fs: Arc::new(SimFs::new(0)),
        clock: Arc::new(ManualClock::new(i64::MAX / 4)),
        out_of_order_window_ms: i64::MAX / 8,
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    };
    Db::open("/promqltest", options).expect("open a database on the simulated disk")
}

impl Runner {
    /// A runner; `prometheus_2` evaluates with Prometheus 2's left-closed windows (for the
    /// 2.42 scripts, whose expectations assume them).
    pub fn new(prometheus_2: bool) -> Runner {
        let engine = Engine::new(EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            subquery_step_ms: 60 * 1000,
            left_closed_windows: prometheus_2,
            ..EngineOptions::default()
        });
        Runner {
            db: None,
            engine,
            histogram_names: Vec::new(),
        }
    }

    fn db(&mut self) -> &Db {
        self.db.get_or_insert_with(open_db)
    }

    /// Applies a `clear` or `load`; evals go through [`Runner::eval`].
    pub fn apply(&mut self, cmd: &Command) -> Result<(), String> {
        match cmd {
            Command::Clear => {
                if let Some(db) = self.db.take() {
                    let _ = db.close();
                }
                self.histogram_names.clear();
                Ok(())
            }
            Command::Load {
                interval,
                series,
                nhcb,
                ..
            } => {
                for s in series {
                    let name = s
                        .labels
                        .iter()
                        .find(|(n, _)| n == "__name__")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    if s.histogram {
                        self.histogram_names.push(name.clone());
                    }
                    if *nhcb {
                        for suffix in ["_bucket", "_count", "_sum"] {
                            if let Some(base) = name.strip_suffix(suffix) {
                                self.histogram_names.push(base.to_owned());
                            }
                        }
                    }
                }
                self.load(*interval, series)
            }
            Command::Eval(_) => Ok(()),
        }
    }

    fn load(&mut self, interval: i64, series: &[SeriesLine]) -> Result<(), String> {
        let db = self.db();
        let mut app = db.appender();
        // A series given twice in one load is the later line (the upstream harness keys its
        // series by labels).
        let mut last: Vec<&SeriesLine> = Vec::new();
        for s in series {
            last.retain(|o| o.labels != s.labels);
            last.push(s);
        }
        for s in last {
            let labels = Labels::new(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .map_err(|e| e.to_string())?;
            for (i, p) in s.points.iter().enumerate() {
                let t = interval * i as i64;
                let v = match p {
                    Point::Missing => continue,
                    Point::Stale => f64::from_bits(STALE_NAN_BITS),
                    Point::Value(v) => *v,
                };
                app.append(&labels, t, v).map_err(|e| e.to_string())?;
            }
        }
        app.commit().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Runs one eval with the harness's extra checks.
    pub fn eval(&mut self, e: &Eval) -> Outcome {
        let query = match Query::parse(&e.expr) {
            Ok(q) => q,
            Err(err) => {
                return if e.fail.is_some() && !matches!(err, PromqlError::Parse(_)) {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("parse: {err}"))
                };
            }
        };
        match e.kind {
            EvalKind::Range { start, end, step } => {
                let got = self.run_range(&query, start, end, step);
                check_result(e, got, None)
            }
            EvalKind::Instant { at } => {
                let at = e.range_vector.map_or(at, |(_, b, _)| b);
                let got = self.run_instant(&query, at);
                if let Outcome::Fail(why) = check_result(e, got, None) {
                    return Outcome::Fail(why);
                }
                if let Outcome::Fail(why) = self.range_mode_check(e, &query, at) {
                    return Outcome::Fail(format!("in range mode: {why}"));
                }
                self.at_modifier_check(e, &query, at)
            }
        }
    }

    fn run_instant(&mut self, q: &Query, t: i64) -> Result<QueryOutput, PromqlError> {
        let engine = self.engine.clone();
        engine.instant_query(self.db(), q, t, &Stop::new())
    }

    fn run_range(
        &mut self,
        q: &Query,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutput, PromqlError> {
        let engine = self.engine.clone();
        engine.range_query(self.db(), q, start, end, step, &Stop::new())
    }

    /// The instant query again as a range query over `[t - 1m, t + 1m]`, step 1m: its value at
    /// `t` must be the expected one.
    fn range_mode_check(&mut self, e: &Eval, q: &Query, at: i64) -> Outcome {
        if e.ordered
            || e.range_vector.is_some()
            || matches!(e.expected, Expected::String(_))
            || mentions(&e.expr, &["start()", "end()", "range()", "step()"])
        {
            return Outcome::Pass;
        }
        let got = self.run_range(q, at - 60_000, at + 60_000, 60_000);
        let got = match got {
            Ok(out) => match out.value {
                Value::Matrix(m) => {
                    let expect_scalar = matches!(e.expected, Expected::Scalar(_));
                    let mut vector = Vec::new();
                    let mut scalar = None;
                    for s in m {
                        if let Some(p) = s.samples.iter().find(|p| p.t == at) {
                            if expect_scalar && s.labels.is_empty() {
                                scalar = Some(p.v);
                            }
                            vector.push(strata_engine::promql::InstantSample {
                                labels: s.labels,
                                t: at,
                                v: p.v,
                            });
                        }
                    }
                    let value = match scalar {
                        Some(v) if expect_scalar => Value::Scalar { t: at, v },
                        _ => Value::Vector(vector),
                    };
                    Ok(QueryOutput {
                        value,
                        warnings: out.warnings,
                        infos: out.infos,
                    })
                }
                // An instant query of a range vector has no range form.
                _ => return Outcome::Pass,
            },
            Err(err) => Err(err),
        };
        check_result(e, got, Some(()))
    }

    /// Every selector and subquery without `@` gets `@ t`; the query then gives the same
    /// result at other evaluation times.
    fn at_modifier_check(&mut self, e: &Eval, q: &Query, at: i64) -> Outcome {
        if e.range_vector.is_some()
            || mentions(
                &e.expr,
                &[
                    "time(",
                    "timestamp(",
                    "predict_linear(",
                    "year(",
                    "month(",
                    "day_of_",
                    "days_in_month(",
                    "hour(",
                    "minute(",
                    "start()",
                    "end()",
                    "range()",
                    "step()",
                ],
            )
        {
            return Outcome::Pass;
        }
        let mut expr = q.expr().clone();
        if !pin_at(&mut expr, at) {
            return Outcome::Pass;
        }
        let text = expr.to_string();
        let pinned = match promql_parser::parser::parse(&text)
            .map_err(PromqlError::Parse)
            .and_then(Query::from_expr)
        {
            Ok(p) => p,
            Err(err) => {
                return Outcome::Fail(format!("@-pinned form {text:?} does not parse: {err}"));
            }
        };
        let times: Vec<i64> = if at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * at, 0, at / 5, at, 10 * at]
        };
        for t in times {
            let got = self.run_instant(&pinned, t);
            if let Outcome::Fail(why) = check_result(e, got, Some(())) {
                return Outcome::Fail(format!("pinned as {text:?} at {t} ms: {why}"));
            }
        }
        Outcome::Pass
    }
}

fn mentions(expr: &str, words: &[&str]) -> bool {
    let compact: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    words.iter().any(|w| compact.contains(w))
}

/// Adds `@ at` to every selector and subquery that has none, except inside a subquery that
/// has one. Returns whether anything changed.
fn pin_at(expr: &mut Expr, at: i64) -> bool {
    let time = if at >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(at as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_millis(at.unsigned_abs())
    };
    let mut changed = false;
    fn visit(e: &mut Expr, time: std::time::SystemTime, changed: &mut bool) {
        match e {
            Expr::VectorSelector(vs) if vs.at.is_none() => {
                vs.at = Some(AtModifier::At(time));
                *changed = true;
            }
            Expr::MatrixSelector(ms) if ms.vs.at.is_none() => {
                ms.vs.at = Some(AtModifier::At(time));
                *changed = true;
            }
            // The selectors inside keep their times (the harness pins only the subquery).
            Expr::Subquery(sq) if sq.at.is_none() => {
                sq.at = Some(AtModifier::At(time));
                *changed = true;
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &mut a.param {
                    visit(p, time, changed);
                }
                visit(&mut a.expr, time, changed);
            }
            Expr::Unary(u) => visit(&mut u.expr, time, changed),
            Expr::Binary(b) => {
                visit(&mut b.lhs, time, changed);
                visit(&mut b.rhs, time, changed);
            }
            Expr::Paren(p) => visit(&mut p.expr, time, changed),
            Expr::Call(c) => {
                for a in &mut c.args.args {
                    visit(a, time, changed);
                }
            }
            _ => {}
        }
    }
    visit(expr, time, &mut changed);
    changed
}

/// Relative float comparison with the harness's tolerance; NaN equals NaN.
fn close(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    let eps = 1e-6;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn text_matches(m: &TextMatch, text: &str) -> bool {
    match m {
        TextMatch::Any => true,
        TextMatch::Exact(s) => s.trim() == text.trim(),
        TextMatch::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(text)),
    }
}

fn labels_text(pairs: &[(String, String)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn pairs_of(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

/// Checks a result against the eval's expectations. `variant` is set for the extra checks,
/// which compare values only (not annotations).
fn check_result(e: &Eval, got: Result<QueryOutput, PromqlError>, variant: Option<()>) -> Outcome {
    let out = match (got, &e.fail) {
        (Err(err), Some(m)) => {
            let text = err.to_string();
            return if text_matches(m, &text) {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("failed with {text:?}, expected {m:?}"))
            };
        }
        (Err(err), None) => return Outcome::Fail(format!("unexpected error: {err}")),
        (Ok(_), Some(_)) => return Outcome::Fail("expected the query to fail".into()),
        (Ok(out), None) => out,
    };
    if variant.is_none() {
        if let Outcome::Fail(why) = check_annotations("warn", &out.warnings, &e.warn, e.no_warn) {
            return Outcome::Fail(why);
        }
        if let Outcome::Fail(why) = check_annotations("info", &out.infos, &e.info, e.no_info) {
            return Outcome::Fail(why);
        }
    }
    match (&e.expected, &out.value) {
        (Expected::Scalar(want), Value::Scalar { v, .. }) => {
            if close(*want, *v) {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("expected scalar {want}, got {v}"))
            }
        }
        (Expected::String(want), Value::String { s, .. }) => {
            if want == s {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("expected string {want:?}, got {s:?}"))
            }
        }
        (Expected::Series(want), Value::Vector(v)) if e.range_vector.is_none() => {
            let got: Vec<(Vec<(String, String)>, f64)> =
                v.iter().map(|s| (pairs_of(&s.labels), s.v)).collect();
            compare_vector(want, &got, e.ordered)
        }
        (Expected::Series(want), Value::Matrix(m)) => {
            let (start, step) = match (e.range_vector, &e.kind) {
                (Some((a, _, s)), _) => (a, s),
                (None, EvalKind::Range { start, step, .. }) => (*start, *step),
                (None, EvalKind::Instant { .. }) => {
                    return Outcome::Fail("a range vector result for an instant eval".into());
                }
            };
            compare_matrix(want, m, start, step)
        }
        (Expected::Series(want), Value::Scalar { v, .. })
            if want.len() == 1 && want[0].labels.is_empty() =>
        {
            match want[0].points.first() {
                Some(Point::Value(w)) if close(*w, *v) => Outcome::Pass,
                other => Outcome::Fail(format!("expected {other:?}, got scalar {v}")),
            }
        }
        (want, got) => Outcome::Fail(format!("expected {want:?}, got {got:?}")),
    }
}

fn check_annotations(
    kind: &str,
    got: &[String],
    want: &Option<Vec<TextMatch>>,
    none: bool,
) -> Outcome {
    if none && !got.is_empty() {
        return Outcome::Fail(format!("expected no {kind}, got {got:?}"));
    }
    let Some(want) = want else {
        return Outcome::Pass;
    };
    for w in want {
        if !got.iter().any(|g| text_matches(w, g)) {
            return Outcome::Fail(format!("expected {kind} {w:?}, got {got:?}"));
        }
    }
    for g in got {
        if !want.iter().any(|w| text_matches(w, g)) {
            return Outcome::Fail(format!("unexpected {kind} {g:?}"));
        }
    }
    Outcome::Pass
}

fn compare_vector(
    want: &[SeriesLine],
    got: &[(Vec<(String, String)>, f64)],
    ordered: bool,
) -> Outcome {
    if want.len() != got.len() {
        return Outcome::Fail(format!(
            "expected {} series, got {}: {}",
            want.len(),
            got.len(),
            got.iter()
                .map(|(l, v)| format!("{} {v}", labels_text(l)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for (i, w) in want.iter().enumerate() {
        let Some(Point::Value(wv)) = w.points.first().copied() else {
            return Outcome::Fail(format!(
                "expected line {} has no value",
                labels_text(&w.labels)
            ));
        };
        let found = if ordered {
            (got[i].0 == w.labels).then_some(&got[i])
        } else {
            got.iter().find(|(l, _)| *l == w.labels)
        };
        match found {
            None => {
                return Outcome::Fail(format!(
                    "expected series {} {wv} not in the result (or not in order)",
                    labels_text(&w.labels)
                ));
            }
            Some((_, v)) if !close(wv, *v) => {
                return Outcome::Fail(format!(
                    "series {}: expected {wv}, got {v}",
                    labels_text(&w.labels)
                ));
            }
            _ => {}
        }
    }
    Outcome::Pass
}

fn compare_matrix(
    want: &[SeriesLine],
    got: &[strata_engine::promql::RangeSeries],
    start: i64,
    step: i64,
) -> Outcome {
    let want: Vec<&SeriesLine> = want
        .iter()
        .filter(|w| w.points.iter().any(|p| matches!(p, Point::Value(_))))
        .collect();
    if want.len() != got.len() {
        return Outcome::Fail(format!(
            "expected {} series, got {}: {}",
            want.len(),
            got.len(),
            got.iter()
                .map(|s| labels_text(&pairs_of(&s.labels)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    for w in want {
        let Some(g) = got.iter().find(|g| pairs_of(&g.labels) == w.labels) else {
            return Outcome::Fail(format!(
                "expected series {} not in the result",
                labels_text(&w.labels)
            ));
        };
        let expected: Vec<(i64, f64)> = w
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Point::Value(v) => Some((start + step * i as i64, *v)),
                _ => None,
            })
            .collect();
        let actual: Vec<(i64, f64)> = g.samples.iter().map(|s| (s.t, s.v)).collect();
        let same = expected.len() == actual.len()
            && expected
                .iter()
                .zip(&actual)
                .all(|(a, b)| a.0 == b.0 && close(a.1, b.1));
        if !same {
            return Outcome::Fail(format!(
                "series {}: expected {expected:?}, got {actual:?}",
                labels_text(&w.labels)
            ));
        }
    }
    Outcome::Pass
}
