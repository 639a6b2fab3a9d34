//! The LogQL query mix, built from the dataset so every search has a known answer, and the
//! same searches as `rg` commands over the raw files.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use strata_testkit::logdata::{Kind, LogData};

/// One query of the mix.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogQuery {
    pub name: String,
    pub logql: String,
    /// A log query (`query_range` with a limit) or a metric query (`query_range` with a step).
    pub kind: QueryKind,
    /// What `rg` runs for the same search over the raw files, if it has an equivalent:
    /// `(pattern, fixed string?, file glob)`.
    pub rg: Option<(String, bool, String)>,
    /// Lines the answer must hold (log queries), when known.
    pub expect_lines: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum QueryKind {
    Log { limit: u64 },
    Metric { step_s: u64 },
}

/// The mix over `data`, whose lines span `[start_ns, end_ns)`.
pub fn mix(data: &LogData) -> Vec<LogQuery> {
    let needle = data.needles().into_iter().next().unwrap_or_default();
    // A trace from the middle of the range, and the lines that print it.
    let spec = data.spec();
    let trace = data.trace_of(spec.lines / 2);
    let trace_id = data.trace_id(trace);
    let per_trace = spec.lines_per_trace.max(1);
    let mut text = String::new();
    let (mut printed, mut in_metadata) = (0u64, 0u64);
    for i in trace * per_trace..((trace + 1) * per_trace).min(spec.lines) {
        let info = data.line(i, &mut text);
        printed += u64::from(text.contains(&trace_id));
        in_metadata += u64::from(info.trace_metadata.is_some());
    }
    let json = Kind::Json.container();
    // The newest 1,000 JSON lines of 5xx, or all of them when there are fewer.
    let errors = (0..spec.lines)
        .rev()
        .filter(|&i| data.json_status(i).is_some_and(|s| s >= 500))
        .take(1000)
        .count() as u64;
    vec![
        LogQuery {
            name: "needle: a rare token".into(),
            logql: format!(r#"{{env="prod"}} |= "{needle}""#),
            kind: QueryKind::Log { limit: 100 },
            rg: Some((needle.clone(), true, "*.log".into())),
            expect_lines: Some(1),
        },
        LogQuery {
            name: "needle: a trace id".into(),
            logql: format!(r#"{{env="prod"}} |= "{trace_id}""#),
            kind: QueryKind::Log { limit: 100 },
            rg: Some((trace_id.clone(), true, "*.log".into())),
            expect_lines: Some(printed),
        },
        LogQuery {
            name: "trace id in structured metadata".into(),
            logql: format!(r#"{{env="prod"}} | trace_id="{trace_id}""#),
            kind: QueryKind::Log { limit: 100 },
            rg: None,
            expect_lines: Some(in_metadata),
        },
        LogQuery {
            name: "regex no index serves (count)".into(),
            logql: r#"sum(count_over_time({env="prod"} |~ "took=[0-9]+\\.[0-9]+9ms" [1h]))"#.into(),
            kind: QueryKind::Metric { step_s: 3600 },
            rg: Some((r"took=[0-9]+\.[0-9]+9ms".into(), false, "*.log".into())),
            expect_lines: None,
        },
        LogQuery {
            name: "sum by (level) (count_over_time(| json [5m]))".into(),
            logql: format!(
                r#"sum by (level) (count_over_time({{container="{json}"}} | json [5m]))"#
            ),
            kind: QueryKind::Metric { step_s: 300 },
            rg: None,
            expect_lines: None,
        },
        LogQuery {
            name: "| json | status >= 500".into(),
            logql: format!(r#"{{container="{json}"}} | json | status >= 500"#),
            kind: QueryKind::Log { limit: 1000 },
            rg: Some((
                r#""status":5[0-9][0-9]"#.into(),
                false,
                format!("{json}.log"),
            )),
            expect_lines: Some(errors),
        },
    ]
}

/// What one run of a query measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct QueryRun {
    pub seconds: f64,
    /// Lines (log queries) or series (metric queries) in the answer.
    pub answer: u64,
    /// Decompressed block bytes the server read for it.
    pub bytes_read: u64,
    /// Server CPU time it took.
    pub server_cpu_s: f64,
}

/// Runs `q` over `[start_ns, end_ns)` against the server at `base` and checks its answer.
pub fn run(
    agent: &ureq::Agent,
    base: &str,
    q: &LogQuery,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<(f64, u64)> {
    let mut url = format!(
        "{base}/loki/api/v1/query_range?query={}&start={start_ns}&end={end_ns}",
        crate::urlencode(&q.logql)
    );
    match q.kind {
        QueryKind::Log { limit } => url.push_str(&format!("&limit={limit}&direction=backward")),
        QueryKind::Metric { step_s } => url.push_str(&format!("&step={step_s}")),
    }
    let started = Instant::now();
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("{}: request failed", q.name))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .with_context(|| format!("{}: reading the answer", q.name))?;
    let seconds = started.elapsed().as_secs_f64();
    if !response.status().is_success() {
        bail!("{}: {} {}", q.name, response.status(), body.trim());
    }
    let answer: Value = serde_json::from_str(&body).context("the answer is not JSON")?;
    let result = answer["data"]["result"]
        .as_array()
        .with_context(|| format!("{}: no data.result in {body:.300}", q.name))?;
    let count = match q.kind {
        QueryKind::Log { .. } => result
            .iter()
            .map(|s| s["values"].as_array().map_or(0, |v| v.len() as u64))
            .sum(),
        QueryKind::Metric { .. } => result.len() as u64,
    };
    if let Some(want) = q.expect_lines
        && count != want
    {
        bail!("{}: {count} lines, expected {want}", q.name);
    }
    if matches!(q.kind, QueryKind::Metric { .. }) && count == 0 {
        bail!("{}: no series", q.name);
    }
    Ok((seconds, count))
}

/// `rg` over the raw files for `q`: seconds and matching lines; `None` when the query has no
/// `rg` form.
pub fn rg(raw: &Path, q: &LogQuery) -> anyhow::Result<Option<(f64, u64)>> {
    let Some((pattern, fixed, glob)) = &q.rg else {
        return Ok(None);
    };
    let mut cmd = Command::new("rg");
    cmd.arg("--count-matches")
        .arg("--no-filename")
        .arg("--no-messages")
        .arg("--glob")
        .arg(glob);
    if *fixed {
        cmd.arg("--fixed-strings");
    }
    cmd.arg("--").arg(pattern).arg(raw);
    let started = Instant::now();
    let out = cmd
        .output()
        .context("running rg (apt-get install ripgrep)")?;
    let seconds = started.elapsed().as_secs_f64();
    // 1: nothing found, which is an answer too.
    if !out.status.success() && out.status.code() != Some(1) {
        bail!("rg {pattern}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let count = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    Ok(Some((seconds, count)))
}

/// Empties the kernel's page cache (root only): what a cold read starts from.
pub fn drop_page_cache() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    if !status.success() {
        bail!("sync failed");
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .context("writing /proc/sys/vm/drop_caches (needs root)")?;
    Ok(())
}

/// The median of `xs` (not empty).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A counter's value in a `/metrics` text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A long timeout for queries over a whole dataset.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
