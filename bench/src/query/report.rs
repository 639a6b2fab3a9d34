//! The side-by-side table: per query, each system's median latency, Strata's ratio to each
//! other system, and the series each answered with; then the totals.

use std::fmt::Write;

use super::footprint::Footprint;
use super::run::RunResult;

/// The system the others are compared with.
const BASELINE: &str = "strata";

/// The footprint table: one row per figure, one column per system, then Strata's ratio to
/// each other system; empty when no run measured its server.
pub fn footprint_table(results: &[RunResult]) -> String {
    let mut runs: Vec<(&RunResult, &Footprint)> = results
        .iter()
        .filter_map(|r| r.footprint.as_ref().map(|f| (r, f)))
        .collect();
    if runs.is_empty() {
        return String::new();
    }
    runs.sort_by_key(|(r, _)| r.system != BASELINE);
    let has_base = runs[0].0.system == BASELINE;
    let others = if has_base { runs.len() - 1 } else { 0 };
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let per_series = |r: &RunResult, b: u64| b as f64 / r.load.series.max(1) as f64;
    // The persisted data holds the live phase's samples too (the share of them acknowledged).
    let persisted_samples = |r: &RunResult, f: &Footprint| {
        r.load.samples as f64
            + f.live.as_ref().map_or(0.0, |l| {
                l.samples as f64 * l.requests_ok as f64 / (l.requests_ok + l.errors).max(1) as f64
            })
    };
    type Row<'a> = (&'a str, Box<dyn Fn(&RunResult, &Footprint) -> f64 + 'a>);
    let rows: Vec<Row> = vec![
        (
            "catch-up: samples per server CPU-second",
            Box::new(|r, f| r.load.samples as f64 / f.load_cpu_s),
        ),
        (
            "  same, CPU until idle (merges included)",
            Box::new(|r, f| r.load.samples as f64 / (f.load_cpu_s + f.settle_cpu_s)),
        ),
        (
            "settled: RSS MiB",
            Box::new(|_, f| mib(f.settled.rss_bytes)),
        ),
        (
            "  RSS bytes per series",
            Box::new(|r, f| per_series(r, f.settled.rss_bytes)),
        ),
        (
            "  RssAnon bytes per series",
            Box::new(|r, f| per_series(r, f.settled.rss_anon_bytes)),
        ),
        (
            "  peak RSS MiB (VmHWM)",
            Box::new(|_, f| mib(f.settled.hwm_bytes)),
        ),
        (
            "live: request p50 ms",
            Box::new(|_, f| f.live.as_ref().map_or(f64::NAN, |l| l.latency.p50_ms)),
        ),
        (
            "  request p99 ms",
            Box::new(|_, f| f.live.as_ref().map_or(f64::NAN, |l| l.latency.p99_ms)),
        ),
        (
            "  request max ms",
            Box::new(|_, f| f.live.as_ref().map_or(f64::NAN, |l| l.latency.max_ms)),
        ),
        (
            "  errors",
            Box::new(|_, f| f.live.as_ref().map_or(f64::NAN, |l| l.errors as f64)),
        ),
        (
            "  disk fdatasync p99 ms (probe)",
            Box::new(|_, f| f.fsync.map_or(f64::NAN, |p| p.latency.p99_ms)),
        ),
        (
            "after queries: RSS MiB",
            Box::new(|_, f| mib(f.after_queries.rss_bytes)),
        ),
        (
            "  RSS bytes per series",
            Box::new(|r, f| per_series(r, f.after_queries.rss_bytes)),
        ),
        (
            "disk once settled: bytes per sample",
            Box::new(|r, f| f.settled_disk_bytes as f64 / r.load.samples as f64),
        ),
        (
            "disk persisted: bytes per sample",
            Box::new(|r, f| f.persisted_disk_bytes as f64 / persisted_samples(r, f)),
        ),
    ];
    let mut out = String::new();
    let mut header = format!("{:<42}", "what the server cost");
    for (r, _) in &runs {
        let _ = write!(header, "{:>16}", r.system);
    }
    for (r, _) in runs.iter().skip(1).take(others) {
        let _ = write!(header, "{:>24}", format!("{BASELINE}/{}", r.system));
    }
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for (name, value) in &rows {
        let values: Vec<f64> = runs.iter().map(|(r, f)| value(r, f)).collect();
        let mut line = format!("{name:<42}");
        for v in &values {
            let _ = write!(line, "{:>16}", format_value(*v));
        }
        for v in values.iter().skip(1).take(others) {
            let _ = write!(line, "{:>24}", format!("{:.2}", values[0] / v));
        }
        let _ = writeln!(out, "{line}");
    }
    for (r, f) in &runs {
        let _ = writeln!(
            out,
            "{}: persisted by {}; live {} samples/s for {:.0} s",
            r.system,
            f.persist,
            f.live.as_ref().map_or(0.0, |l| l.samples_per_s),
            f.live.as_ref().map_or(0.0, |l| l.seconds)
        );
    }
    out
}

/// A figure with the precision its size calls for.
fn format_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

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
            "{}: {} — loaded {} series, {} samples in {:.0} s ({} retries) of {}",
            r.system,
            r.version,
            r.load.series,
            r.load.samples,
            r.load.seconds,
            r.load.retries,
            if r.dataset.is_empty() {
                "?"
            } else {
                &r.dataset
            }
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
