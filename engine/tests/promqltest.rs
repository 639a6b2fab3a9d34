//! Prometheus's PromQL test scripts run against Strata's evaluator.
//!
//! The scripts are read where they are, never copied: `shared/corpus/promqltest/` (Prometheus
//! main) and `shared/corpus/promqltest-v2.42/` beside the project, or the directory in
//! `STRATA_PROMQLTEST_DIR` alone; then the project's own scripts in `tests/promqltest/scripts/`.
//! Every `eval` is checked as the upstream harness checks it (see `promqltest/run.rs`), and
//! each file's count is printed as `N passed, M failed`. The 2.42 scripts run with
//! Prometheus 2's left-closed windows (`EngineOptions::left_closed_windows`), which their
//! expectations assume; everything else with Prometheus 3's semantics.
//!
//! Evals that fail are listed in `tests/promqltest/known-failures.txt`, each with its reason.
//! The test fails when an eval fails that is not listed, and when a listed one passes: the
//! list only shrinks. `STRATA_PROMQLTEST_UPDATE=1` rewrites it from the run (keeping the
//! reasons already written) for review.

mod promqltest {
    pub mod run;
    pub mod script;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use promqltest::run::{Outcome, Runner};
use promqltest::script::{self, Command, Expected};

const KNOWN: &str = "tests/promqltest/known-failures.txt";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The script directories to run, each with the name its evals are listed under.
fn directories() -> Vec<(String, PathBuf)> {
    if let Ok(dir) = std::env::var("STRATA_PROMQLTEST_DIR") {
        return vec![("custom".into(), PathBuf::from(dir))];
    }
    let corpus = manifest().join("../../shared/corpus");
    let mut out = Vec::new();
    for name in ["promqltest", "promqltest-v2.42"] {
        let dir = corpus.join(name);
        if dir.is_dir() {
            out.push((name.to_owned(), dir));
        } else if std::env::var("STRATA_E2E").is_ok_and(|v| v == "1") {
            panic!(
                "the PromQL corpus {} is missing: put shared/ beside the project (or set STRATA_PROMQLTEST_DIR)",
                dir.display()
            );
        } else {
            eprintln!("promqltest: skipping {} (not found)", dir.display());
        }
    }
    out.push(("strata".into(), manifest().join("tests/promqltest/scripts")));
    out
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Why an eval that fails here fails, for a first entry in the known-failures list.
fn classify(runner: &Runner, eval: &script::Eval, why: &str) -> String {
    let histogram = match &eval.expected {
        Expected::Series(s) => s.iter().any(|l| l.histogram),
        _ => false,
    } || runner
        .histogram_names
        .iter()
        .any(|n| mentions_name(&eval.expr, n));
    if why.starts_with("parse:") {
        format!(
            "promql-parser rejects the expression ({})",
            why.trim_start_matches("parse: ")
        )
    } else if histogram {
        "native histograms: not stored yet".into()
    } else {
        let mut w: String = why.chars().take(160).collect();
        w = w.replace('\n', " ");
        format!("todo: {w}")
    }
}

/// Whether `expr` names the metric `name` (as a whole word), or selects names by a regex
/// that may match it.
fn mentions_name(expr: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let whole = expr.match_indices(name).any(|(i, _)| {
        let before = expr[..i].chars().next_back();
        let after = expr[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    });
    whole || expr.contains("__name__=~")
}

fn load_known() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(manifest().join(KNOWN)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (key, reason) = l.split_once(char::is_whitespace)?;
            Some((key.to_owned(), reason.trim().to_owned()))
        })
        .collect()
}

#[test]
fn prometheus_promql_test_scripts() {
    let known = load_known();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut unexpected: Vec<String> = Vec::new();
    let mut fixed: Vec<String> = Vec::new();
    let (mut total_pass, mut total_fail) = (0, 0);
    for (dialect, dir) in directories() {
        for path in test_files(&dir) {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let commands = match script::parse(&text) {
                Ok(c) => c,
                Err(e) => panic!("{dialect}/{file}: {e}"),
            };
            let mut runner = Runner::new(dialect == "promqltest-v2.42");
            let (mut pass, mut fail) = (0, 0);
            for cmd in &commands {
                let Command::Eval(eval) = cmd else {
                    if let Err(e) = runner.apply(cmd) {
                        panic!("{dialect}/{file}: load failed: {e}");
                    }
                    continue;
                };
                let key = format!("{dialect}/{file}:{}", eval.line);
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.eval(eval)))
                        .unwrap_or_else(|_| Outcome::Fail("panicked".into()));
                match outcome {
                    Outcome::Pass => {
                        pass += 1;
                        if known.contains_key(&key) {
                            fixed.push(key);
                        }
                    }
                    Outcome::Fail(why) => {
                        fail += 1;
                        if std::env::var("STRATA_PROMQLTEST_VERBOSE").is_ok_and(|v| v == "1") {
                            println!("FAIL {key}: {}\n    {why}", eval.expr);
                        }
                        let reason = known
                            .get(&key)
                            .cloned()
                            .unwrap_or_else(|| classify(&runner, eval, &why));
                        if !known.contains_key(&key) {
                            unexpected.push(format!("{key}: {} → {why}", eval.expr));
                        }
                        failures.insert(key, reason);
                    }
                }
            }
            println!("{dialect}/{file}: {pass} passed, {fail} failed");
            total_pass += pass;
            total_fail += fail;
        }
    }
    println!("total: {total_pass} passed, {total_fail} failed");
    if std::env::var("STRATA_PROMQLTEST_UPDATE").is_ok_and(|v| v == "1") {
        let mut text = String::from(
            "# Evals of the PromQL test scripts that fail, each with its reason (see tests/promqltest.rs).\n# This list only shrinks: an eval that passes must leave it.\n",
        );
        for (k, r) in &failures {
            text.push_str(&format!("{k} {r}\n"));
        }
        std::fs::write(manifest().join(KNOWN), text).unwrap();
        return;
    }
    let mut problems = String::new();
    if !unexpected.is_empty() {
        problems.push_str(&format!(
            "{} evals fail that are not in {KNOWN}:\n  {}\n",
            unexpected.len(),
            unexpected
                .iter()
                .take(60)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    if !fixed.is_empty() {
        problems.push_str(&format!(
            "{} evals in {KNOWN} pass now; remove them:\n  {}\n",
            fixed.len(),
            fixed.join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{problems}");
}
