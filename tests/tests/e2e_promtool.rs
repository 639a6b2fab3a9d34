//! Conformance with promtool: every file of `../shared/corpus/promtool-v2.42/` (Prometheus
//! 2.42's own promtool test data, the version Debian installs) and `../shared/corpus/promtool/`
//! (current Prometheus's) goes through `strata rules check` and, when it holds unit tests,
//! `strata rules test`, and through Debian's `promtool check rules` / `promtool test rules`.
//! The verdicts (exit status) must agree, and for a failing unit-test file the failing items
//! (`alertname: A, time: T`, `expr: "E", time: T`, `rule: R, time: T`) too, except for the
//! files listed with a reason in `tests/promtool/known-differences.txt` — which must still
//! differ, so the list only shrinks.
//!
//! Skipped when promtool is missing, a failure under `STRATA_E2E=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_tests::server::{require_program, strata_binary};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

/// Exit status and the failing items a run printed.
fn run(program: &Path, args: &[&str], file: &str) -> (i32, BTreeSet<String>) {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .current_dir(corpus())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let items = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("alertname: ") || l.starts_with("expr: ") || l.starts_with("rule: ")
        })
        .filter_map(|l| {
            // `alertname: A, time: 5m, ` / `expr: "x", time: 0s,` / `rule: r, time: 0s, err: …`
            let time_at = l.find(", time: ")?;
            let rest = &l[time_at + 8..];
            let time = rest.split(',').next()?.trim();
            Some(format!("{} @ {time}", &l[..time_at]))
        })
        .collect();
    (out.status.code().unwrap_or(-1), items)
}

fn known_differences() -> BTreeMap<(String, String), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("promtool/known-differences.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let command = parts.next().unwrap_or_default().to_owned();
            let file = parts.next().unwrap_or_default().to_owned();
            let reason = parts.next().unwrap_or_default().to_owned();
            assert!(
                !reason.is_empty(),
                "{l}: a known difference needs its reason"
            );
            ((command, file), reason)
        })
        .collect()
}

#[test]
fn strata_rules_check_and_test_give_promtools_verdicts_on_its_own_test_data() {
    let Some(promtool) = require_program("promtool", "prometheus") else {
        return;
    };
    let strata = strata_binary();
    let known = known_differences();
    let mut seen = BTreeSet::new();
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for dir in ["promtool-v2.42", "promtool"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        files.sort();
        for path in files {
            let file = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut commands = vec!["check"];
            if text.lines().any(|l| l.starts_with("tests:")) {
                commands.push("test");
            }
            for command in commands {
                let (p_args, s_args): (&[&str], &[&str]) = match command {
                    "check" => (&["check", "rules"], &["rules", "check"]),
                    _ => (&["test", "rules"], &["rules", "test"]),
                };
                let (p_code, p_items) = run(&promtool, p_args, &file);
                let (s_code, s_items) = run(&strata, s_args, &file);
                compared += 1;
                let agree = (p_code == 0) == (s_code == 0) && p_items == s_items;
                let key = (command.to_owned(), file.clone());
                match (agree, known.get(&key)) {
                    (true, None) | (false, Some(_)) => {}
                    (true, Some(reason)) => disagreements.push(format!(
                        "{command} {file}: listed as a known difference ({reason}) but the verdicts agree; remove it from the list"
                    )),
                    (false, None) => disagreements.push(format!(
                        "{command} {file}: promtool exit {p_code} failing {p_items:?}; strata exit {s_code} failing {s_items:?}"
                    )),
                }
                seen.insert(key);
            }
        }
    }
    for key in known.keys() {
        if !seen.contains(key) {
            disagreements.push(format!("{} {}: listed but not in the corpus", key.0, key.1));
        }
    }
    assert!(
        compared > 80,
        "only {compared} runs compared: is the corpus there?"
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Strata's own unit-test files (`tests/rules/*-test.yml`: every template function, the alert
/// state transitions, `keep_firing_for`) pass under `strata rules test`, and under promtool
/// too, so their expectations are Prometheus's, not just Strata's.
#[test]
fn strata_own_rule_unit_tests_pass_under_strata_and_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-test.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let promtool = require_program("promtool", "prometheus");
    for file in &files {
        let name = file.to_string_lossy().into_owned();
        let out = Command::new(strata_binary())
            .args(["rules", "test", &name])
            .output()
            .expect("run strata rules test");
        assert!(
            out.status.success(),
            "strata rules test {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(promtool) = &promtool {
            let out = Command::new(promtool)
                .args(["test", "rules", &name])
                .output()
                .expect("run promtool test rules");
            assert!(
                out.status.success(),
                "promtool test rules {name} (the expectation is not Prometheus's):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
