//! The run's report: what it holds (written as JSON as it is), built from the run's results
//! and analyses; shown as a summary table for the terminal ([`text`]) and as a
//! self-contained HTML page with SVG plots ([`html`]).

mod html;
mod text;

use std::collections::BTreeMap;

use super::analysis::{Drift, FaultReport, Objective, PeakReport, StressState};
use super::run::{FaultRun, LaneResult, Model, RunResult};
use super::schedule::{Profile, Schedule};
use super::stats::Second;
use super::verify::Verification;

pub use html::{charts, html};
pub use text::text;

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
