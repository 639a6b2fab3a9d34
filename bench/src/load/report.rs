//! The run's report: a summary table for the terminal, the same as JSON, and a
//! self-contained HTML page with SVG plots over time (throughput, latency percentiles,
//! errors, the target's memory). No scripts, fonts or styles are loaded from anywhere: the page
//! opens from a file on a machine with no network.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::analysis::{Drift, FaultReport, Objective, PeakReport, StressState};
use super::run::{FaultRun, LaneResult, Model, RunResult};
use super::schedule::{Profile, Schedule};
use super::stats::Second;
use super::verify::Verification;

/// Latency figures, milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    pub avg: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One lane, summed up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LaneReport {
    pub scenario: String,
    pub model: Model,
    pub workers: usize,
    pub schedule: Schedule,
    pub requests: u64,
    pub ok: u64,
    /// Failed requests by outcome (`503`, `timeout`, `transport`).
    pub errors: BTreeMap<String, u64>,
    /// One message per outcome.
    pub error_examples: BTreeMap<String, String>,
    pub requests_per_s: f64,
    pub samples: u64,
    pub samples_per_s: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub latency_ms: Latency,
    /// Requests sent more than 10 ms after they were due.
    pub late_requests: u64,
    pub mean_late_ms: f64,
    pub connections_opened: u64,
    pub timeline: Vec<Second>,
}

/// Everything about a run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub tool: String,
    pub command: String,
    pub target: String,
    pub profile: Option<Profile>,
    pub objective: Objective,
    pub started_unix_ms: i64,
    pub duration_s: f64,
    pub ended_by: String,
    pub lanes: Vec<LaneReport>,
    pub stress: Option<StressState>,
    pub peak: Option<PeakReport>,
    pub faults: Vec<(FaultRun, FaultReport)>,
    pub drift: Option<Drift>,
    pub verification: Option<Verification>,
    /// Set for `mixed`: the write lane's p99 before and while the queries ran.
    pub mixed: Option<MixedReport>,
    /// What the generator itself used.
    pub generator: GeneratorReport,
}

/// The generator's own cost: so a run shows it was not the bottleneck.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratorReport {
    pub cpu_s: f64,
    /// Successful requests and samples per CPU-second of the generator.
    pub requests_per_cpu_s: f64,
    pub samples_per_cpu_s: f64,
    /// Its resident memory in the first and last second, and the most.
    pub rss_start_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    pub rss_max_bytes: Option<u64>,
}

/// What the queries of a mixed run did to the writes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MixedReport {
    pub queries_from_s: f64,
    pub write_p99_before_ms: f64,
    pub write_p99_during_ms: f64,
    pub write_errors_before: u64,
    pub write_errors_during: u64,
}

impl LaneReport {
    /// Sums up one lane of a run that lasted `duration_s`.
    pub fn of(lane: &LaneResult, duration_s: f64) -> LaneReport {
        let w = &lane.total;
        let h = &w.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = if h.is_empty() {
            Latency {
                avg: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            }
        } else {
            Latency {
                avg: h.mean() / 1000.0,
                p50: ms(h.value_at_quantile(0.5)),
                p90: ms(h.value_at_quantile(0.9)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
            }
        };
        let seconds = duration_s.max(1e-9);
        LaneReport {
            scenario: lane.name.clone(),
            model: lane.model,
            workers: lane.workers,
            schedule: lane.schedule.clone(),
            requests: w.requests(),
            ok: w.requests() - w.errors(),
            errors: w
                .outcomes
                .iter()
                .filter(|(k, _)| **k != super::stats::Outcome::Ok)
                .map(|(k, v)| (k.label(), *v))
                .collect(),
            error_examples: w
                .examples
                .iter()
                .map(|(k, v)| (k.label(), v.clone()))
                .collect(),
            requests_per_s: w.requests() as f64 / seconds,
            samples: w.samples_ok,
            samples_per_s: w.samples_ok as f64 / seconds,
            bytes_sent: w.bytes_sent,
            bytes_received: w.bytes_received,
            latency_ms: latency,
            late_requests: w.late,
            mean_late_ms: lane.mean_late_ms,
            connections_opened: lane.connects,
            timeline: lane.timeline.clone(),
        }
    }
}

/// Builds the report of a run.
pub fn build(
    command: String,
    target: String,
    profile: Option<Profile>,
    objective: Objective,
    run: RunResult,
    verification: Option<Verification>,
    drift_growth_max: f64,
) -> Report {
    let lanes: Vec<LaneReport> = run
        .lanes
        .iter()
        .map(|l| LaneReport::of(l, run.duration_s))
        .collect();
    let first = &run.lanes[0];
    let peak = (profile == Some(Profile::Peak))
        .then(|| super::analysis::peak_report(&first.schedule, &first.timeline, &objective))
        .flatten();
    let faults = run
        .faults
        .iter()
        .map(|f| {
            let at = if f.started_s.is_finite() {
                f.started_s
            } else {
                f.fault.at.as_secs_f64()
            };
            (
                f.clone(),
                super::analysis::fault_report(at, &first.timeline, &objective),
            )
        })
        .collect();
    let ramp = first.schedule.stages.first().map_or(0.0, |s| {
        if first.schedule.start == 0.0 {
            s.duration.as_secs_f64()
        } else {
            0.0
        }
    });
    let drift = (super::analysis::tracks_drift(profile)
        || first.timeline.iter().any(|s| s.target_rss_bytes.is_some()))
    .then(|| {
        let mut d = super::analysis::drift(&first.timeline, ramp, drift_growth_max);
        // Growth is judged only in an endurance run: elsewhere the target's memory grows
        // with the data it is sent, as it should.
        d.flagged &= super::analysis::tracks_drift(profile);
        d
    });
    let mixed = run.lanes.get(1).map(|queries| {
        let from = queries
            .timeline
            .iter()
            .find(|s| s.requests > 0)
            .map_or(f64::INFINITY, |s| s.t - 1.0);
        let (before, during): (Vec<&Second>, Vec<&Second>) =
            first.timeline.iter().partition(|s| s.t - 1.0 < from);
        let p99 = |part: &[&Second]| {
            let mut v: Vec<f64> = part
                .iter()
                .filter(|s| s.requests > 0)
                .map(|s| s.p99_ms)
                .collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        MixedReport {
            queries_from_s: from,
            write_p99_before_ms: p99(&before),
            write_p99_during_ms: p99(&during),
            write_errors_before: before.iter().map(|s| s.errors).sum(),
            write_errors_during: during.iter().map(|s| s.errors).sum(),
        }
    });
    let ok: u64 = lanes.iter().map(|l| l.ok).sum();
    let samples: u64 = lanes.iter().map(|l| l.samples).sum();
    let cpu = run.generator_cpu_s.max(1e-9);
    let own: Vec<u64> = first
        .timeline
        .iter()
        .filter_map(|s| s.generator_rss_bytes)
        .collect();
    let generator = GeneratorReport {
        cpu_s: run.generator_cpu_s,
        requests_per_cpu_s: ok as f64 / cpu,
        samples_per_cpu_s: samples as f64 / cpu,
        rss_start_bytes: own.first().copied(),
        rss_end_bytes: own.last().copied(),
        rss_max_bytes: own.iter().max().copied(),
    };
    Report {
        tool: format!("strata-bench {}", env!("CARGO_PKG_VERSION")),
        command,
        target,
        profile,
        objective,
        started_unix_ms: run.started_unix_ms,
        duration_s: run.duration_s,
        ended_by: run.ended_by,
        lanes,
        stress: run.stress,
        peak,
        faults,
        drift,
        verification,
        mixed,
        generator,
    }
}

fn si(x: f64) -> String {
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

/// One line of a chart: its name, colour and `(seconds, value)` points.
type Line<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart as inline SVG; x in seconds.
fn chart(title: &str, unit: &str, series: &[Line<'_>]) -> String {
    const W: f64 = 860.0;
    const H: f64 = 220.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 28.0;
    const B: f64 = 30.0;
    let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let x_max = xs.fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0_f64, f64::max);
    let y_max = nice(if y_max > 0.0 { y_max * 1.05 } else { 1.0 });
    let px = |x: f64| L + (W - L - R) * x / x_max;
    let py = |y: f64| T + (H - T - B) * (1.0 - y / y_max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">"##
    );
    let _ = write!(
        svg,
        r##"<text x="{L}" y="16" font-size="13" font-weight="bold">{}</text>"##,
        escape(title)
    );
    for i in 0..=4 {
        let y = y_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{L}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 4.0,
            py(y) + 4.0,
            escape(&format!("{}{unit}", si(y))),
            py = py(y)
        );
        let x = x_max * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{:.0} s</text>"##,
            px(x),
            H - 10.0,
            x
        );
    }
    // The legend starts after the title (about 7.5 px a character at 13 px bold).
    let mut legend_x = L + 7.5 * title.chars().count() as f64 + 24.0;
    for (name, colour, points) in series {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"##,
            path.join(" ")
        );
        let _ = write!(
            svg,
            r##"<rect x="{legend_x}" y="8" width="10" height="10" fill="{colour}"/><text x="{}" y="17">{}</text>"##,
            legend_x + 14.0,
            escape(name)
        );
        legend_x += 24.0 + 7.0 * name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `x`.
fn nice(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG plots of a report, one per measure (the HTML page holds them).
pub fn charts(r: &Report) -> Vec<String> {
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
    let mut out = Vec::new();
    for l in &r.lanes {
        let tl = &l.timeline;
        let ok: Vec<(f64, f64)> = tl
            .iter()
            .map(|s| (s.t, (s.requests - s.errors) as f64))
            .collect();
        let target: Vec<(f64, f64)> = if l.model == Model::Open {
            tl.iter().map(|s| (s.t, s.target)).collect()
        } else {
            Vec::new()
        };
        out.push(chart(
            &format!("{}: successful requests per second", l.scenario),
            "/s",
            &[("ok", colours[0], ok), ("target", "#999", target)],
        ));
        let lat = |f: fn(&Second) -> f64| {
            tl.iter()
                .filter(|s| s.requests > 0)
                .map(|s| (s.t, f(s)))
                .collect::<Vec<_>>()
        };
        out.push(chart(
            &format!("{}: latency per second", l.scenario),
            " ms",
            &[
                ("p50", colours[0], lat(|s| s.p50_ms)),
                ("p90", colours[1], lat(|s| s.p90_ms)),
                ("p99", colours[3], lat(|s| s.p99_ms)),
                ("max", "#bbb", lat(|s| s.max_ms)),
            ],
        ));
        out.push(chart(
            &format!("{}: failed requests per second", l.scenario),
            "/s",
            &[(
                "errors",
                colours[3],
                tl.iter().map(|s| (s.t, s.errors as f64)).collect(),
            )],
        ));
    }
    let mib = |f: fn(&Second) -> Option<u64>| -> Vec<(f64, f64)> {
        r.lanes[0]
            .timeline
            .iter()
            .filter_map(|s| f(s).map(|b| (s.t, b as f64 / (1 << 20) as f64)))
            .collect()
    };
    let target = mib(|s| s.target_rss_bytes);
    let own = mib(|s| s.generator_rss_bytes);
    if !target.is_empty() || !own.is_empty() {
        out.push(chart(
            "memory (resident set)",
            " MiB",
            &[
                ("target", colours[4], target),
                ("strata-bench", "#8c564b", own),
            ],
        ));
    }
    out
}

/// The self-contained HTML page.
pub fn html(r: &Report) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>strata-bench: {}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222}}pre{{background:#f6f6f6;padding:12px;overflow-x:auto}}\
         svg{{display:block;margin:12px 0;border:1px solid #eee}}</style></head><body>",
        escape(&r.target)
    );
    let _ = write!(
        page,
        "<h1>strata-bench report</h1><p><code>{}</code></p>",
        escape(&r.command)
    );
    let _ = write!(page, "<pre>{}</pre>", escape(&text(r)));
    for svg in charts(r) {
        page.push_str(&svg);
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_svg_with_every_series() {
        let svg = chart(
            "latency <p99>",
            " ms",
            &[
                ("p50", "#000", vec![(1.0, 2.0), (2.0, 3.0)]),
                ("p99", "#f00", vec![(1.0, 9.0), (2.0, f64::NAN)]),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("latency &lt;p99&gt;"));
        // A NaN point is left out rather than written as NaN.
        assert!(!svg.contains("NaN"));
        assert_eq!(nice(7.3), 10.0);
        assert_eq!(nice(0.021), 0.025);
        assert_eq!(nice(120.0), 200.0);
    }
}
