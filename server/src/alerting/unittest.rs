//! `strata rules test FILE...`: rule unit tests in promtool's format, run on Strata's own
//! engine and rule evaluator, reported as `promtool test rules` reports them (the same
//! verdicts, the same failing alerts and expressions, exit status 1 on a failure).
//!
//! ```yaml
//! rule_files: [rules.yml]            # relative to the test file
//! evaluation_interval: 1m
//! group_eval_order: [first, second]  # optional
//! fuzzy_compare: false               # compare values to ~1e-6 relative instead of exactly
//! tests:
//!   - name: optional
//!     interval: 1m                   # between input samples; default evaluation_interval
//!     start_timestamp: 0             # Unix seconds or RFC 3339; time 0 of the test
//!     external_labels: {}
//!     external_url: http://x
//!     input_series:
//!       - series: 'up{job="a"}'
//!         values: '1+0x10 _ stale'   # the expanding notation
//!     alert_rule_test:               # alerts firing at eval_time
//!       - eval_time: 5m
//!         alertname: InstanceDown
//!         exp_alerts: [{exp_labels: {}, exp_annotations: {}}]
//!     promql_expr_test:
//!       - expr: up
//!         eval_time: 1m
//!         exp_samples: [{labels: 'up{job="a"}', value: 1}]
//! ```
//!
//! Each test group gets an empty database of its own (a temporary directory), its input
//! series, and every rule group evaluated at each step of `evaluation_interval` from time 0
//! to the last `eval_time`, in file order (or `group_eval_order`). Windows and lookback follow
//! Prometheus 3, as Strata's PromQL does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use strata_engine::labels::Labels;
use strata_engine::promql::notation::{Point, parse_values};
use strata_engine::promql::{Engine, EngineOptions, Query};
use strata_engine::sample::STALE_NAN_BITS;
use strata_engine::{Db, FsyncMode, Options};

use super::check::Report;
use super::group::Group;
use super::rule::{AlertState, EvalContext, Rule, RuleExpr};
use super::rulefile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    fuzzy_compare: bool,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    start_timestamp: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    histogram: Option<String>,
}

/// Runs each test file.
pub fn run_files(paths: &[impl AsRef<Path>]) -> Report {
    let mut report = Report {
        ok: true,
        ..Report::default()
    };
    for path in paths {
        let path = path.as_ref();
        let _ = writeln!(report.stdout, "Unit Testing:  {}", path.display());
        let errors = run_file(path);
        if errors.is_empty() {
            report.stdout.push_str("  SUCCESS\n\n");
        } else {
            report.ok = false;
            report.stdout.push_str("  FAILED:\n");
            for e in errors {
                let _ = writeln!(report.stderr, "{e}\n");
            }
        }
    }
    report
}

/// The failures of one file (none: it passed).
pub fn run_file(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: cannot read the file: {e}", path.display())],
    };
    let file: TestFile = match serde_saphyr::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            return vec![format!(
                "{}{at}: {}",
                path.display(),
                rulefile::yaml_reason(&e)
            )];
        }
    };
    let interval = match file.evaluation_interval.as_deref().map(parse_ms) {
        None => 60_000,
        Some(Ok(ms)) if ms > 0 => ms,
        Some(Ok(_)) => return vec!["evaluation_interval must be longer than 0".into()],
        Some(Err(e)) => return vec![format!("evaluation_interval: {e}")],
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for pattern in &file.rule_files {
        let full = dir.join(pattern);
        let matches: Vec<PathBuf> = match glob::glob(&full.to_string_lossy()) {
            Ok(m) => m.filter_map(Result::ok).collect(),
            Err(e) => return vec![format!("rule_files: {pattern:?}: {e}")],
        };
        if matches.is_empty() {
            return vec![format!("{}: no such rule file", full.display())];
        }
        for m in matches {
            match rulefile::read(&m) {
                Ok(f) => rule_files.push(f),
                Err(e) => return e.0.iter().map(ToString::to_string).collect(),
            }
        }
    }
    let mut errors = Vec::new();
    for group in &file.tests {
        errors.extend(run_group(group, &file, &rule_files, interval));
    }
    errors
}

/// A duration in milliseconds (`0`, `90s`, `1h30m`, `1d`; none is 0).
fn parse_ms(s: &str) -> Result<i64, String> {
    if s.trim().is_empty() {
        return Ok(0);
    }
    super::time::parse_duration(s).map(|d| d.as_millis() as i64)
}

/// Prometheus's way of printing a duration: `0s`, `5m`, `1h30m`, `1d`.
pub fn fmt_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, len) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= len {
            let _ = write!(out, "{}{unit}", rest / len);
            rest %= len;
        }
    }
    out
}

/// Go's `time.Duration` printing: `0s`, `1m0s`, `1h0m0s`, `1.5s`.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let secs = super::template::format_float(s);
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{secs}s")
    }
}

/// Labels as Prometheus 2 prints them: `{__name__="x", a="b"}`.
fn go_labels(pairs: &[(String, String)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn label_pairs(labels: &Labels) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

/// A series descriptor (`up{job="a"}`, `{__name__="x"}`, `x`) as labels.
fn parse_series(s: &str) -> Result<Vec<(String, String)>, String> {
    let t = s.trim();
    if t.is_empty() || t == "{}" {
        return Ok(Vec::new());
    }
    match promql_parser::parser::parse(t)? {
        promql_parser::parser::Expr::VectorSelector(vs) => {
            let mut out = BTreeMap::new();
            if let Some(name) = &vs.name {
                out.insert("__name__".to_owned(), name.clone());
            }
            for m in &vs.matchers.matchers {
                if m.op != promql_parser::label::MatchOp::Equal {
                    return Err(format!("{s:?}: only = matchers describe a series"));
                }
                out.insert(m.name.clone(), m.value.clone());
            }
            Ok(out.into_iter().filter(|(_, v)| !v.is_empty()).collect())
        }
        _ => Err(format!("{s:?} is not a series")),
    }
}

/// A test database: a temporary directory, no background work, no fsync, any timestamps.
struct TestDb {
    db: Db,
    _dir: tempfile::TempDir,
}

impl TestDb {
    fn open() -> Result<TestDb, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let db = Db::open(
            dir.path(),
            Options {
                fsync: FsyncMode::Interval(Duration::from_secs(3600)),
                future_tolerance_ms: i64::MAX / 4,
                retention_ms: 0,
                background_maintenance: false,
                checkpoint_on_close: false,
                out_of_order_window_ms: 0,
                ..Options::default()
            },
        )
        .map_err(|e| format!("opening a test database: {e}"))?;
        Ok(TestDb { db, _dir: dir })
    }
}

fn start_ms(s: &Option<String>) -> Result<i64, String> {
    let Some(s) = s else { return Ok(0) };
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0) as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("start_timestamp {s:?}: {e}"))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AlertView {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

fn alerts_string(list: &[AlertView]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "\n{i}:\n  Labels:{}\n  Annotations:{}",
            go_labels(&a.labels),
            go_labels(&a.annotations)
        );
    }
    s.push_str("\n]");
    s
}

fn indent(text: &str, by: &str) -> String {
    text.replace('\n', &format!("\n{by}"))
}

/// Go's `FormatFloat(v, 'E', -1, 64)`.
fn e_format(v: f64) -> String {
    super::template::shortest_exp(v, true)
}

fn samples_string(list: &[(Vec<(String, String)>, f64)]) -> String {
    if list.is_empty() {
        return "nil".into();
    }
    list.iter()
        .map(|(l, v)| format!("{} {}", go_labels(l), e_format(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Equal, or with `fuzzy_compare` neighbours: at most one unit in the last place apart (the
/// off-by-one rounding that differs between machines).
fn close(a: f64, b: f64, fuzzy: bool) -> bool {
    if a.to_bits() == b.to_bits() || a == b {
        return true;
    }
    if !fuzzy || !a.is_finite() || !b.is_finite() || a.is_sign_negative() != b.is_sign_negative() {
        return false;
    }
    a.to_bits().abs_diff(b.to_bits()) <= 1
}

fn run_group(
    tg: &TestGroup,
    file: &TestFile,
    rule_files: &[rulefile::RuleFile],
    eval_interval: i64,
) -> Vec<String> {
    let prefix = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let fail = |e: String| vec![format!("{prefix}{e}")];
    let interval = match tg.interval.as_deref().map(parse_ms) {
        None => eval_interval,
        Some(Ok(ms)) if ms > 0 => ms,
        Some(Ok(_)) => return fail("    interval must be longer than 0".into()),
        Some(Err(e)) => return fail(format!("    interval: {e}")),
    };
    let start = match start_ms(&tg.start_timestamp) {
        Ok(s) => s,
        Err(e) => return fail(format!("    {e}")),
    };
    let test_db = match TestDb::open() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let db = &test_db.db;
    // Input series.
    let mut app = db.appender();
    for input in &tg.input_series {
        let labels = match parse_series(&input.series)
            .and_then(|p| Labels::new(p).map_err(|e| e.to_string()))
        {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let (points, histogram) = match parse_values(&input.values) {
            Ok(p) => p,
            Err(e) => return fail(format!("{}: {e}", input.series)),
        };
        if histogram {
            return fail(format!(
                "{}: native histograms are not supported yet",
                input.series
            ));
        }
        for (i, p) in points.iter().enumerate() {
            let t = start + i as i64 * interval;
            let v = match p {
                Point::Missing => continue,
                Point::Stale => f64::from_bits(STALE_NAN_BITS),
                Point::Value(v) => *v,
            };
            if let Err(e) = app.append(&labels, t, v) {
                return fail(format!("{}: {e}", input.series));
            }
        }
    }
    if let Err(e) = app.commit() {
        return fail(format!("loading the input series: {e}"));
    }
    // The rule groups, in the order asked for.
    let mut groups = Vec::new();
    for f in rule_files {
        for spec in &f.groups {
            match Group::new(&f.path, spec, Duration::from_millis(eval_interval as u64)) {
                Ok(g) => groups.push(g),
                Err(e) => return fail(e),
            }
        }
    }
    if !file.group_eval_order.is_empty() {
        let rank = |g: &Group| {
            file.group_eval_order
                .iter()
                .position(|n| *n == g.name)
                .unwrap_or(usize::MAX)
        };
        groups.sort_by_key(rank);
    }
    let engine = Engine::new(EngineOptions {
        subquery_step_ms: eval_interval,
        ..EngineOptions::default()
    });
    let external: Vec<(String, String)> = tg
        .external_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let url = tg.external_url.clone().unwrap_or_default();
    let ctx = EvalContext {
        db,
        engine: &engine,
        logs: None,
        external_labels: &external,
        external_url: &url,
        resend_delay_ms: 60_000,
    };
    // Alert tests by evaluation time.
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTest>> = BTreeMap::new();
    for t in &tg.alert_rule_test {
        match parse_ms(&t.eval_time) {
            Ok(ms) => alert_tests.entry(ms).or_default().push(t),
            Err(e) => return fail(format!("    alertname: {}, eval_time: {e}", t.alertname)),
        }
    }
    let mut expr_times = Vec::new();
    for t in &tg.promql_expr_test {
        match parse_ms(&t.eval_time) {
            Ok(ms) => expr_times.push(ms),
            Err(e) => return fail(format!("    expr: {:?}, eval_time: {e}", t.expr)),
        }
    }
    let max_eval = alert_tests
        .keys()
        .copied()
        .chain(expr_times.iter().copied())
        .max()
        .unwrap_or(0);
    let mut errors = Vec::new();
    let mut pending_checks = alert_tests.into_iter().peekable();
    let mut ts = 0i64;
    while ts <= max_eval {
        let mut rule_errors = Vec::new();
        for g in &mut groups {
            g.eval(&ctx, start + ts);
            for r in &g.rules {
                if let Some(e) = &r.status().last_error {
                    rule_errors.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        go_duration(ts)
                    ));
                }
            }
        }
        if !rule_errors.is_empty() {
            return rule_errors;
        }
        // Alert checks whose time falls in [ts, ts + interval).
        while let Some((t, _)) = pending_checks.peek() {
            if !(ts <= *t && *t < ts + eval_interval) {
                break;
            }
            let Some((t, tests)) = pending_checks.next() else {
                break;
            };
            for test in tests {
                let mut got: Vec<AlertView> = groups
                    .iter()
                    .flat_map(|g| g.rules.iter())
                    .filter_map(|r| match r {
                        Rule::Alerting(a) if a.name == test.alertname => Some(a),
                        _ => None,
                    })
                    .flat_map(|a| a.active.values())
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| AlertView {
                        labels: label_pairs(&a.labels),
                        annotations: {
                            let mut v = a.annotations.clone();
                            v.sort();
                            v
                        },
                    })
                    .collect();
                let mut exp: Vec<AlertView> = test
                    .exp_alerts
                    .iter()
                    .map(|e| {
                        let mut labels = e.exp_labels.clone();
                        labels.insert("alertname".into(), test.alertname.clone());
                        AlertView {
                            labels: labels.into_iter().collect(),
                            annotations: e.exp_annotations.clone().into_iter().collect(),
                        }
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let pad = "            ";
                    errors.push(format!(
                        "{prefix}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        test.alertname,
                        fmt_duration(t),
                        indent(&alerts_string(&exp), pad),
                        indent(&alerts_string(&got), pad)
                    ));
                }
            }
        }
        ts += eval_interval;
    }
    // Expressions, after every evaluation.
    'tests: for (test, at) in tg.promql_expr_test.iter().zip(expr_times) {
        let time = fmt_duration(at);
        let query = match Query::parse(&test.expr) {
            Ok(q) => q,
            Err(e) => {
                errors.push(format!("    expr: {:?}, time: {time}, err: {e}", test.expr));
                continue;
            }
        };
        let mut got: Vec<(Vec<(String, String)>, f64)> =
            match ctx.query(&RuleExpr::PromQL(query), start + at) {
                Ok(rows) => rows
                    .into_iter()
                    .map(|(l, v)| (label_pairs(&l), v))
                    .collect(),
                Err(e) => {
                    errors.push(format!("    expr: {:?}, time: {time}, err: {e}", test.expr));
                    continue;
                }
            };
        let mut exp = Vec::new();
        for s in &test.exp_samples {
            if s.histogram.is_some() {
                errors.push(format!(
                    "    expr: {:?}, time: {time}, err: native histograms are not supported yet",
                    test.expr
                ));
                continue 'tests;
            }
            match parse_series(&s.labels) {
                Ok(l) => exp.push((l, s.value.unwrap_or(0.0))),
                Err(e) => {
                    errors.push(format!(
                        "    expr: {:?}, time: {time}, err: labels {:?}: {e}",
                        test.expr, s.labels
                    ));
                    continue 'tests;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && close(g.1, e.1, file.fuzzy_compare));
        if !same {
            errors.push(format!(
                "{prefix}    expr: {:?}, time: {time},\n        exp: {}\n        got: {}",
                test.expr,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, rules: &str, tests: &str) -> Vec<String> {
        std::fs::write(dir.join("rules.yml"), rules).unwrap();
        std::fs::write(dir.join("test.yml"), tests).unwrap();
        run_file(&dir.join("test.yml"))
    }

    const RULES: &str = "groups:
- name: g
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: Down
    expr: up == 0
    for: 2m
    labels: {severity: page}
    annotations: {summary: '{{ $labels.instance }} down'}
";

    #[test]
    fn a_passing_file_has_no_failures() {
        let dir = tempfile::tempdir().unwrap();
        let errors = run(
            dir.path(),
            RULES,
            "rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'up{job=\"a\", instance=\"h1\"}'
    values: '1 1 0x5'
  - series: 'up{job=\"a\", instance=\"h2\"}'
    values: '1x7'
  alert_rule_test:
  - eval_time: 2m
    alertname: Down
    exp_alerts: []
  - eval_time: 4m
    alertname: Down
    exp_alerts:
    - exp_labels: {job: a, instance: h1, severity: page}
      exp_annotations: {summary: h1 down}
  promql_expr_test:
  - expr: job:up:sum
    eval_time: 1m
    exp_samples:
    - labels: 'job:up:sum{job=\"a\"}'
      value: 2
  - expr: job:up:sum
    eval_time: 3m
    exp_samples:
    - labels: 'job:up:sum{job=\"a\"}'
      value: 1
",
        );
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[test]
    fn failures_name_the_alert_or_expression_and_time_as_promtool_does() {
        let dir = tempfile::tempdir().unwrap();
        let errors = run(
            dir.path(),
            RULES,
            "rule_files: [rules.yml]
tests:
- name: broken
  input_series:
  - series: 'up{job=\"a\", instance=\"h1\"}'
    values: '0x5'
  alert_rule_test:
  - eval_time: 5m
    alertname: Down
    exp_alerts: []
  promql_expr_test:
  - expr: up
    eval_time: 0
    exp_samples:
    - labels: 'up{job=\"a\", instance=\"h1\"}'
      value: 1
",
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(
            errors[0],
            "    name: broken,
    alertname: Down, time: 5m, 
        exp:[], 
        got:[
            0:
              Labels:{alertname=\"Down\", instance=\"h1\", job=\"a\", severity=\"page\"}
              Annotations:{summary=\"h1 down\"}
            ]"
        );
        assert_eq!(
            errors[1],
            "    name: broken,
    expr: \"up\", time: 0s,
        exp: {__name__=\"up\", instance=\"h1\", job=\"a\"} 1E+00
        got: {__name__=\"up\", instance=\"h1\", job=\"a\"} 0E+00"
        );
    }

    #[test]
    fn a_rule_that_fails_to_evaluate_fails_the_test_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let errors = run(
            dir.path(),
            "groups:\n- name: g\n  rules:\n  - record: joined\n    expr: a + on(k) b\n",
            "rule_files: [rules.yml]
tests:
- input_series:
  - series: 'a{k=\"1\"}'
    values: 1
  - series: 'b{k=\"1\", x=\"1\"}'
    values: 1
  - series: 'b{k=\"1\", x=\"2\"}'
    values: 1
  promql_expr_test:
  - expr: joined
    eval_time: 0
    exp_samples: []
",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with("    rule: joined, time: 0s, err: "),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn durations_print_as_prometheus_and_go_print_them() {
        assert_eq!(fmt_duration(0), "0s");
        assert_eq!(fmt_duration(300_000), "5m");
        assert_eq!(fmt_duration(5_400_000), "1h30m");
        assert_eq!(fmt_duration(86_400_000), "1d");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(e_format(61.0), "6.1E+01");
    }

    #[test]
    fn fuzzy_comparison_allows_one_unit_in_the_last_place() {
        assert!(close(2.9999999999999996, 3.0, true));
        assert!(close(3.0000000000000004, 3.0, true));
        assert!(!close(2.9999999999999987, 3.0, true));
        assert!(!close(2.9999999999999996, 3.0, false));
    }
}
