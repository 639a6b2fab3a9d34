//! `strata rules check FILE...`: what `promtool check rules` does — each file read and
//! checked, its rules counted, duplicate rules reported — with the same verdicts and exit
//! status (1 when a file does not check; duplicates are a warning).

use std::fmt::Write as _;
use std::path::Path;

use super::rulefile::{self, RuleFile};

/// What a command printed (for standard output and standard error) and whether every file
/// checked or passed.
#[derive(Debug, Default)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub ok: bool,
}

/// Checks each file.
pub fn check_files(paths: &[impl AsRef<Path>]) -> Report {
    let mut report = Report {
        ok: true,
        ..Report::default()
    };
    for path in paths {
        let path = path.as_ref();
        let _ = writeln!(report.stdout, "Checking {}", path.display());
        match rulefile::read(path) {
            Ok(file) => {
                let count: usize = file.groups.iter().map(|g| g.rules.len()).sum();
                let _ = writeln!(report.stdout, "  SUCCESS: {count} rules found");
                let duplicates = duplicates(&file);
                if !duplicates.is_empty() {
                    let _ = writeln!(
                        report.stdout,
                        "lint warning: {} duplicate rule(s) found.",
                        duplicates.len()
                    );
                    for (name, labels) in duplicates {
                        let _ = writeln!(report.stdout, "Metric: {name}\nLabel(s):");
                        for (k, v) in labels {
                            let _ = writeln!(report.stdout, "\t{k}: {v}");
                        }
                    }
                    let _ = writeln!(
                        report.stdout,
                        "Might cause inconsistency while recording expressions"
                    );
                }
            }
            Err(errors) => {
                report.ok = false;
                let _ = writeln!(report.stderr, "  FAILED:");
                for e in &errors.0 {
                    let _ = writeln!(report.stderr, "{e}");
                }
            }
        }
        report.stdout.push('\n');
    }
    report
}

/// Rules with the same name and labels (anywhere in the file): each repeat once.
fn duplicates(file: &RuleFile) -> Vec<(String, Vec<(String, String)>)> {
    let mut keys: Vec<(String, Vec<(String, String)>)> = file
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| (r.name.clone(), r.labels.clone()))
        .collect();
    keys.sort();
    keys.windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_counts_its_rules_and_a_bad_one_fails_with_its_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yml");
        let bad = dir.path().join("bad.yml");
        std::fs::write(
            &good,
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n  - record: a\n    expr: up\n  - alert: B\n    expr: up == 0\n",
        )
        .unwrap();
        std::fs::write(
            &bad,
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: 'up +'\n",
        )
        .unwrap();
        let r = check_files(&[&good]);
        assert!(r.ok);
        assert!(
            r.stdout.contains("  SUCCESS: 3 rules found"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("1 duplicate rule(s) found.\nMetric: a\n"),
            "{}",
            r.stdout
        );
        let r = check_files(&[&good, &bad]);
        assert!(!r.ok);
        assert!(r.stderr.contains("  FAILED:\n"), "{}", r.stderr);
        assert!(r.stderr.contains("bad.yml:5:"), "{}", r.stderr);
        let r = check_files(&[dir.path().join("missing.yml")]);
        assert!(!r.ok);
        assert!(r.stderr.contains("cannot read the file"), "{}", r.stderr);
    }
}
