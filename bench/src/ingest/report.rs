//! A run's results (written as JSON by `ingest-compare run`) and the side-by-side table of
//! several runs (`ingest-compare report`), with Strata's ratio to each other system.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::process::Memory;

/// The system whose ratios to the others the table shows.
pub const BASELINE_SYSTEM: &str = "strata";

/// How a run was set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSetup {
    /// `strata`, `victoriametrics`, `prometheus`, or any name.
    pub system: String,
    /// The server's version as the runner found it.
    pub version: String,
    /// Where the server and the generator ran (CPU pinning).
    pub pinning: String,
    pub hosts: usize,
    pub series: usize,
    pub seed: u64,
    pub start_ms: i64,
    pub shards: usize,
    pub batch_samples: usize,
    pub throughput_scrapes: u64,
    pub latency_rate_per_s: f64,
    pub settle_s: f64,
}

/// Latency percentiles of a set of requests, in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of `values` (sorted in place).
    pub fn of(values: &mut [Duration]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let n = values.len();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // Nearest rank: the smallest value with at least q × n values at or below it.
        let rank = |q: f64| ms(values[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        Percentiles {
            count: n,
            mean_ms: values.iter().map(|&d| ms(d)).sum::<f64>() / n as f64,
            p50_ms: rank(0.5),
            p90_ms: rank(0.9),
            p99_ms: rank(0.99),
            p999_ms: rank(0.999),
            max_ms: ms(values[n - 1]),
        }
    }
}

/// One phase, measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    pub requests: u64,
    pub samples: u64,
    pub compressed_bytes: u64,
    pub wall_s: f64,
    /// CPU time of the server process during the phase.
    pub server_cpu_s: f64,
    /// CPU time of the generator during the phase.
    pub generator_cpu_s: f64,
    pub errors: u64,
    pub error_examples: Vec<String>,
    /// Per request: from its start (closed loop) or its due time (open loop) to its answer.
    pub latency: Percentiles,
    /// CPU time of every other process on the machine during the phase (from `/proc/stat`):
    /// what may have competed with the server or the generator.
    pub other_cpu_s: f64,
    /// Open loop only: how late the sender woke for requests it slept for (the generator's
    /// own error, included in the latencies).
    pub timer_lag: Percentiles,
    /// Open loop only: requests due while the previous one on their connection was still
    /// out (their wait counts in their latency).
    pub queued: u64,
}

impl PhaseResult {
    /// Samples per second of wall time.
    pub fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.wall_s
    }

    /// Samples per CPU-second of the server.
    pub fn samples_per_cpu_s(&self) -> f64 {
        self.samples as f64 / self.server_cpu_s
    }
}

/// One reading of the server's resident set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MemorySample {
    /// Seconds since the phase began.
    pub at_s: f64,
    /// `VmRSS`.
    pub rss_bytes: u64,
}

/// Everything measured against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub setup: RunSetup,
    /// Memory once ready, before any write.
    pub memory_idle: Memory,
    /// Scrape 0: every series created.
    pub create: PhaseResult,
    pub memory_after_create: Memory,
    /// The closed-loop phase.
    pub throughput: PhaseResult,
    /// CPU time of the server in the idle seconds after the throughput phase.
    pub settle_cpu_s: f64,
    /// Memory at the end of the settle, the figure per active series.
    pub memory_after_throughput: Memory,
    /// The open-loop phase.
    pub fixed_load: PhaseResult,
    /// The server's resident set read at a fixed interval during the open-loop phase, from
    /// its start.
    #[serde(default)]
    pub memory_during_fixed_load: Vec<MemorySample>,
    /// Memory at the end (its `hwm_bytes` is the peak of the whole run).
    pub memory_end: Memory,
}

impl RunResult {
    /// Errors in every phase.
    pub fn errors(&self) -> u64 {
        self.create.errors + self.throughput.errors + self.fixed_load.errors
    }
}

/// The fixed-load phase's samples over the time its schedule spans.
fn offered_samples_per_s(r: &RunResult) -> f64 {
    r.fixed_load.samples as f64 / (r.fixed_load.requests as f64 / r.setup.latency_rate_per_s)
}

/// Which way a row is better, for the reader.
#[derive(Debug, Clone, Copy)]
enum Better {
    Higher,
    Lower,
    Neither,
    /// A check on the measurement itself, not a property of the system: no ratio.
    Check,
}

struct Row {
    label: &'static str,
    better: Better,
    value: fn(&RunResult) -> f64,
    /// Digits after the decimal point.
    decimals: usize,
}

fn rows() -> Vec<Row> {
    fn row(
        label: &'static str,
        better: Better,
        decimals: usize,
        value: fn(&RunResult) -> f64,
    ) -> Row {
        Row {
            label,
            better,
            value,
            decimals,
        }
    }
    use Better::{Check, Higher, Lower, Neither};
    vec![
        row("throughput: samples sent", Neither, 0, |r| {
            r.throughput.samples as f64
        }),
        row("throughput: samples/s", Higher, 0, |r| {
            r.throughput.samples_per_s()
        }),
        row("throughput: server CPU-s", Lower, 2, |r| {
            r.throughput.server_cpu_s
        }),
        row("throughput: samples per CPU-s", Higher, 0, |r| {
            r.throughput.samples_per_cpu_s()
        }),
        row("throughput: server cores busy", Neither, 2, |r| {
            r.throughput.server_cpu_s / r.throughput.wall_s
        }),
        row("throughput: generator cores busy", Check, 2, |r| {
            r.throughput.generator_cpu_s / r.throughput.wall_s
        }),
        row("throughput: request p99 ms (closed loop)", Lower, 2, |r| {
            r.throughput.latency.p99_ms
        }),
        row("settle: server CPU-s after the burst", Lower, 2, |r| {
            r.settle_cpu_s
        }),
        row("create: new series/s (scrape 0)", Higher, 0, |r| {
            r.create.samples_per_s()
        }),
        row("create: series per CPU-s", Higher, 0, |r| {
            r.create.samples_per_cpu_s()
        }),
        row("memory: RSS idle, MiB", Lower, 1, |r| {
            r.memory_idle.rss_bytes as f64 / (1 << 20) as f64
        }),
        row("memory: RSS after ingest, MiB", Lower, 1, |r| {
            r.memory_after_throughput.rss_bytes as f64 / (1 << 20) as f64
        }),
        row("memory: RSS bytes per active series", Lower, 0, |r| {
            r.memory_after_throughput.rss_bytes as f64 / r.setup.series as f64
        }),
        row("memory: peak RSS (VmHWM), MiB", Lower, 1, |r| {
            r.memory_end.hwm_bytes as f64 / (1 << 20) as f64
        }),
        row(
            "memory: RSS bytes per active series at the end",
            Lower,
            0,
            |r| r.memory_end.rss_bytes as f64 / r.setup.series as f64,
        ),
        row(
            "memory: highest RSS bytes per active series during the fixed load",
            Lower,
            0,
            |r| {
                let highest = r
                    .memory_during_fixed_load
                    .iter()
                    .map(|m| m.rss_bytes)
                    .chain([r.memory_end.rss_bytes])
                    .max()
                    .unwrap_or(0);
                highest as f64 / r.setup.series as f64
            },
        ),
        row("memory: peak bytes per active series", Lower, 0, |r| {
            r.memory_end.hwm_bytes as f64 / r.setup.series as f64
        }),
        row(
            "fixed load: samples/s offered",
            Neither,
            0,
            offered_samples_per_s,
        ),
        row("fixed load: % of this system's max", Neither, 1, |r| {
            100.0 * offered_samples_per_s(r) / r.throughput.samples_per_s()
        }),
        row("fixed load: server cores busy", Lower, 3, |r| {
            r.fixed_load.server_cpu_s / r.fixed_load.wall_s
        }),
        row("fixed load: latency p50 ms", Lower, 2, |r| {
            r.fixed_load.latency.p50_ms
        }),
        row("fixed load: latency p90 ms", Lower, 2, |r| {
            r.fixed_load.latency.p90_ms
        }),
        row("fixed load: latency p99 ms", Lower, 2, |r| {
            r.fixed_load.latency.p99_ms
        }),
        row("fixed load: latency p99.9 ms", Lower, 2, |r| {
            r.fixed_load.latency.p999_ms
        }),
        row("fixed load: latency max ms", Lower, 2, |r| {
            r.fixed_load.latency.max_ms
        }),
        row(
            "fixed load: requests due while their connection was busy",
            Check,
            0,
            |r| r.fixed_load.queued as f64,
        ),
        row("fixed load: generator timer lag p99 ms", Check, 3, |r| {
            r.fixed_load.timer_lag.p99_ms
        }),
        row("other processes' CPU-s: throughput phase", Check, 2, |r| {
            r.throughput.other_cpu_s
        }),
        row("other processes' CPU-s: fixed-load phase", Check, 2, |r| {
            r.fixed_load.other_cpu_s
        }),
        row("errors (non-2xx, failed, unsent)", Check, 0, |r| {
            r.errors() as f64
        }),
    ]
}

/// Formats `x` with thousands separators and `decimals` decimals.
fn number(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let text = format!("{:.*}", decimals, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// The side-by-side table of `results` (the baseline system first if present), with the
/// baseline's ratio to each other system.
pub fn table(results: &[RunResult]) -> String {
    let mut runs: Vec<&RunResult> = results.iter().collect();
    runs.sort_by_key(|r| r.setup.system != BASELINE_SYSTEM);
    let baseline = runs
        .iter()
        .copied()
        .find(|r| r.setup.system == BASELINE_SYSTEM);
    let others: Vec<&RunResult> = runs
        .iter()
        .copied()
        .filter(|r| r.setup.system != BASELINE_SYSTEM)
        .collect();

    let mut header: Vec<String> = vec!["".into()];
    header.extend(runs.iter().map(|r| r.setup.system.clone()));
    if baseline.is_some() {
        header.extend(
            others
                .iter()
                .map(|r| format!("{BASELINE_SYSTEM}/{}", r.setup.system)),
        );
    }
    header.push("better".into());

    let mut lines: Vec<Vec<String>> = vec![header];
    for row in rows() {
        let mut line = vec![row.label.to_owned()];
        line.extend(runs.iter().map(|r| number((row.value)(r), row.decimals)));
        if let Some(base) = baseline {
            for other in &others {
                let ratio = (row.value)(base) / (row.value)(other);
                let shown = ratio.is_finite() && !matches!(row.better, Better::Check);
                line.push(if shown {
                    format!("{ratio:.2}")
                } else {
                    "–".into()
                });
            }
        }
        line.push(
            match row.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
                Better::Neither => "",
                Better::Check => "(check)",
            }
            .into(),
        );
        lines.push(line);
    }

    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            let width = widths.iter().sum::<usize>() + 2 * (columns - 1);
            out.push_str(&"-".repeat(width));
            out.push('\n');
        }
    }
    out
}

/// The resident set per active series over the fixed-load phase, one line a system, as text
/// below the table (empty when no run recorded readings).
pub fn memory_over_time(results: &[RunResult]) -> String {
    let mut out = String::new();
    for r in results
        .iter()
        .filter(|r| !r.memory_during_fixed_load.is_empty())
    {
        let _ = write!(
            out,
            "RSS bytes per active series during the fixed load, {} (s: B):",
            r.setup.system
        );
        for m in &r.memory_during_fixed_load {
            let _ = write!(
                out,
                " {:.0}: {:.0}",
                m.at_s,
                m.rss_bytes as f64 / r.setup.series as f64
            );
        }
        out.push('\n');
    }
    out
}

/// What every run shares, and what differs between them, as text above the table.
pub fn setup_summary(results: &[RunResult]) -> String {
    let mut out = String::new();
    if let Some(r) = results.first() {
        let s = &r.setup;
        let _ = writeln!(
            out,
            "dataset: {} hosts × ~517 node_exporter series = {} active series (seed {}), scrape 0 at {} ms",
            number(s.hosts as f64, 0),
            number(s.series as f64, 0),
            s.seed,
            s.start_ms
        );
        let _ = writeln!(
            out,
            "requests: {} samples each, {} shards (connections); throughput phase: {} scrapes ({} samples, closed loop); fixed load: {} requests/s = {} samples/s (open loop); settle {} s",
            number(s.batch_samples as f64, 0),
            s.shards,
            s.throughput_scrapes,
            number(r.throughput.samples as f64, 0),
            s.latency_rate_per_s,
            number(s.latency_rate_per_s * s.batch_samples as f64, 0),
            s.settle_s
        );
        let _ = writeln!(out, "pinning: {}", s.pinning);
    }
    for r in results {
        let _ = writeln!(out, "{}: {}", r.setup.system, r.setup.version);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values_ms: &[u64], expected: (f64, f64, f64)) {
        let mut values: Vec<Duration> = values_ms
            .iter()
            .map(|&v| Duration::from_millis(v))
            .collect();
        let p = Percentiles::of(&mut values);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), expected, "{values_ms:?}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        check(&[5], (5.0, 5.0, 5.0));
        check(&[3, 1, 2, 4], (2.0, 4.0, 4.0));
        let hundred: Vec<u64> = (1..=100).rev().collect();
        check(&hundred, (50.0, 99.0, 100.0));
        let mut empty: Vec<Duration> = Vec::new();
        assert_eq!(Percentiles::of(&mut empty).count, 0);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(1234567.0, 0), "1,234,567");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(1234.5678, 2), "1,234.57");
        assert_eq!(number(-1234.0, 0), "-1,234");
        assert_eq!(number(f64::NAN, 2), "–");
    }
}
