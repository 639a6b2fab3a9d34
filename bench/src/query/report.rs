//! The side-by-side table: per query, each system's median latency, Strata's ratio to each
//! other system, and the series each answered with; then the totals.

use std::fmt::Write;

use super::run::RunResult;

/// The system the others are compared with.
const BASELINE: &str = "strata";

/// The table for `results` (Strata first if present).
pub fn table(results: &[RunResult]) -> String {
    let mut runs: Vec<&RunResult> = results.iter().collect();
    runs.sort_by_key(|r| r.system != BASELINE);
    let base = runs.iter().copied().find(|r| r.system == BASELINE);
    let others: Vec<&RunResult> = runs
        .iter()
        .copied()
        .filter(|r| r.system != BASELINE)
        .collect();
    let mut out = String::new();
    for r in &runs {
        let _ = writeln!(
            out,
            "{}: {} — loaded {} series, {} samples in {:.0} s ({} retries)",
            r.system, r.version, r.load.series, r.load.samples, r.load.seconds, r.load.retries
        );
    }
    let _ = writeln!(out);
    let mut header = format!("{:<42}", "median ms");
    for r in &runs {
        let _ = write!(header, "{:>16}", r.system);
    }
    for o in &others {
        let _ = write!(header, "{:>22}", format!("{BASELINE}/{}", o.system));
    }
    let _ = write!(header, "  series");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    let queries = runs.first().map_or(0, |r| r.queries.len());
    let mut totals = vec![0.0; runs.len()];
    for i in 0..queries {
        let name = &runs[0].queries[i].name;
        let mut line = format!("{name:<42}");
        for (k, r) in runs.iter().enumerate() {
            let q = &r.queries[i];
            let m = q.median_ms();
            totals[k] += if m.is_finite() { m } else { 0.0 };
            let cell = if q.error.is_some() {
                "error".to_owned()
            } else {
                format!("{m:.1}")
            };
            let _ = write!(line, "{cell:>16}");
        }
        if let Some(b) = base {
            for o in &others {
                let ratio = b.queries[i].median_ms() / o.queries[i].median_ms();
                let _ = write!(line, "{:>22}", format!("{ratio:.2}"));
            }
        }
        let counts: Vec<String> = runs
            .iter()
            .map(|r| r.queries[i].series.to_string())
            .collect();
        let _ = write!(line, "  {}", counts.join("/"));
        let _ = writeln!(out, "{line}");
    }
    let mut line = format!("{:<42}", "total of medians");
    for t in &totals {
        let _ = write!(line, "{:>16}", format!("{t:.1}"));
    }
    if base.is_some() {
        for (k, _) in others.iter().enumerate() {
            let _ = write!(line, "{:>22}", format!("{:.2}", totals[0] / totals[k + 1]));
        }
    }
    let _ = writeln!(out, "{line}");
    // The warm-up runs: each query's first, before any cache of the server held its data.
    let firsts: Vec<Option<f64>> = runs
        .iter()
        .map(|r| r.queries.iter().map(|q| q.first_ms).sum::<Option<f64>>())
        .collect();
    if firsts.iter().all(Option::is_some) {
        let mut line = format!("{:<42}", "total of first runs");
        for t in firsts.iter().flatten() {
            let _ = write!(line, "{:>16}", format!("{t:.1}"));
        }
        if base.is_some() {
            for k in 0..others.len() {
                let ratio = firsts[0].unwrap_or(0.0) / firsts[k + 1].unwrap_or(f64::NAN);
                let _ = write!(line, "{:>22}", format!("{ratio:.2}"));
            }
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(b) = base {
        for (k, o) in others.iter().enumerate() {
            let faster = (0..queries)
                .filter(|&i| b.queries[i].median_ms() < o.queries[i].median_ms())
                .count();
            let _ = writeln!(
                out,
                "{BASELINE} faster than {} on {faster} of {queries} queries; total {:.2}×",
                o.system,
                totals[0] / totals[k + 1]
            );
        }
    }
    out
}
