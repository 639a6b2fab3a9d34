//! The report's summary table for the terminal (also the top of the HTML page).

use std::fmt::Write as _;

use super::Report;
use crate::load::run::Model;

pub(super) fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 || a == a.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.1} MiB", b / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// The summary for the terminal.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "strata-bench → {}  ({}{:.1} s, ended by {})",
        r.target,
        r.profile
            .map(|p| format!("{p:?} profile, ").to_lowercase())
            .unwrap_or_default(),
        r.duration_s,
        r.ended_by
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:>6} {:>9} {:>9} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>11}",
        "scenario",
        "model",
        "requests",
        "req/s",
        "samples/s",
        "errors",
        "avg ms",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "sent"
    );
    for l in &r.lanes {
        let errors: u64 = l.errors.values().sum();
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>9} {:>9} {:>10} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11}",
            l.scenario,
            format!("{:?}", l.model).to_lowercase(),
            l.requests,
            si(l.requests_per_s),
            if l.samples > 0 {
                si(l.samples_per_s)
            } else {
                "-".into()
            },
            errors,
            l.latency_ms.avg,
            l.latency_ms.p50,
            l.latency_ms.p90,
            l.latency_ms.p99,
            l.latency_ms.p999,
            l.latency_ms.max,
            bytes(l.bytes_sent)
        );
    }
    for l in &r.lanes {
        for (kind, n) in &l.errors {
            let example = l.error_examples.get(kind).map(String::as_str).unwrap_or("");
            let _ = writeln!(out, "  {} errors {kind}: {n}  e.g. {example}", l.scenario);
        }
        if l.model == Model::Open && l.late_requests > 0 {
            let _ = writeln!(
                out,
                "  {}: {} requests sent more than 10 ms late (every worker busy: raise --concurrency); their wait is in the latency",
                l.scenario, l.late_requests
            );
        }
    }
    if let Some(s) = &r.stress {
        let _ = writeln!(
            out,
            "\nstress: steps of {:.0}/s, {:.0} s each; objective p99 ≤ {} ms, errors ≤ {}%",
            s.base_rate,
            s.step_s,
            r.objective.p99_ms,
            r.objective.error_ratio * 100.0
        );
        for step in &s.steps {
            let _ = writeln!(
                out,
                "  {:>9.0}/s  achieved {:>9.1}/s  p99 {:>9.2} ms  errors {:>6.2}%  {}",
                step.rate,
                step.achieved_rps,
                step.p99_ms,
                step.error_ratio * 100.0,
                if step.met { "ok" } else { "BROKE" }
            );
        }
        match (s.breaking_rate, s.last_good_rate) {
            (Some(b), good) => {
                let _ = writeln!(
                    out,
                    "  breaking point: {b:.0}/s (last good: {})",
                    good.map_or("none".into(), |g| format!("{g:.0}/s"))
                );
                let _ = writeln!(
                    out,
                    "  recovery after dropping to {:.0}/s: {}",
                    s.base_rate,
                    s.recovery_s.map_or(
                        "did not recover within the recovery time".into(),
                        |t| format!("{t:.0} s")
                    )
                );
            }
            (None, good) => {
                let _ = writeln!(
                    out,
                    "  no breaking point: every step met the objective, up to {}",
                    good.map_or("-".into(), |g| format!("{g:.0}/s"))
                );
            }
        }
    }
    if let Some(p) = &r.peak {
        let _ = writeln!(
            out,
            "\npeak: burst of {:.0}/s from {:.0} s to {:.0} s; worst p99 {:.2} ms; {} errors; recovery {}",
            p.burst_rate,
            p.burst_start_s,
            p.burst_end_s,
            p.worst_p99_ms,
            p.errors,
            p.recovery_s
                .map_or("not within the run".into(), |t| format!(
                    "{t:.0} s after the burst"
                ))
        );
    }
    for (run, f) in &r.faults {
        let _ = writeln!(
            out,
            "\nfault at {:.1} s: `{}` ({})",
            f.at_s,
            run.fault.command,
            run.exit.as_deref().unwrap_or("still running at the end")
        );
        match f.error_window_s {
            Some((a, b)) => {
                let _ = writeln!(
                    out,
                    "  error window {a:.0} s – {b:.0} s ({} failed requests)",
                    f.errors
                );
            }
            None => {
                let _ = writeln!(out, "  no second missed the objective");
            }
        }
        let _ = writeln!(
            out,
            "  time to recovery: {}",
            f.recovery_s
                .map_or("not within the run".into(), |t| format!("{t:.0} s"))
        );
    }
    if let Some(d) = &r.drift {
        let mem = match (d.rss_start_bytes, d.rss_end_bytes, d.rss_growth) {
            (Some(a), Some(b), Some(g)) => format!(
                "target memory {} → {} ({:+.1}%)",
                bytes(a),
                bytes(b),
                g * 100.0
            ),
            _ => "target memory not tracked (pass --target-pid)".into(),
        };
        let _ = writeln!(
            out,
            "\ndrift: {mem}; p99 {:.2} → {:.2} ms{}",
            d.p99_start_ms,
            d.p99_end_ms,
            if d.flagged {
                "  ← GROWTH FLAGGED"
            } else {
                ""
            }
        );
    }
    if let Some(m) = &r.mixed {
        let _ = writeln!(
            out,
            "\nmixed: write p99 {:.2} ms before the queries (first {:.0} s), {:.2} ms while they ran; write errors {} before, {} during",
            m.write_p99_before_ms,
            m.queries_from_s,
            m.write_p99_during_ms,
            m.write_errors_before,
            m.write_errors_during
        );
    }
    if let Some(v) = &r.verification {
        let _ = writeln!(out, "\n{}", v.summary());
    }
    let g = &r.generator;
    let _ = write!(
        out,
        "\ngenerator: {:.2} CPU-s, {} requests and {} samples per CPU-second",
        g.cpu_s,
        si(g.requests_per_cpu_s),
        si(g.samples_per_cpu_s)
    );
    if let (Some(a), Some(b), Some(m)) = (g.rss_start_bytes, g.rss_end_bytes, g.rss_max_bytes) {
        let _ = write!(
            out,
            "; memory {} → {} (most {})",
            bytes(a),
            bytes(b),
            bytes(m)
        );
    }
    let _ = writeln!(out);
    out
}
