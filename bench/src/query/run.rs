//! Timing the queries: each sent a warm-up time and then `repeats` times, one at a time, its
//! latency measured from sending to the last byte of the answer.

use std::time::{Duration, Instant};

use super::{QUERIES, QuerySpec};

/// One query's timings against one server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QueryTiming {
    pub name: String,
    pub expr: String,
    pub range_s: i64,
    pub step_s: i64,
    /// Every timed run, milliseconds.
    pub latencies_ms: Vec<f64>,
    /// The first run (the warm-up, not among the timed ones): what a query costs before any
    /// cache of the server's holds its data, milliseconds.
    #[serde(default)]
    pub first_ms: Option<f64>,
    /// Series in the answer, and points in all of them.
    pub series: usize,
    pub points: usize,
    /// Why the query failed, if it did.
    pub error: Option<String>,
}

impl QueryTiming {
    /// The median latency, milliseconds.
    pub fn median_ms(&self) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// Everything measured against one server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    pub system: String,
    pub version: String,
    /// The data, as `DatasetSpec::describe` tells it.
    #[serde(default)]
    pub dataset: String,
    pub load: super::load::LoadResult,
    /// What the load, the live phase and the queries cost the server (when its process was
    /// given).
    #[serde(default)]
    pub footprint: Option<super::footprint::Footprint>,
    /// The data's last sample time the queries end at, ms.
    pub end_ms: i64,
    pub queries: Vec<QueryTiming>,
}

/// The query's URL against `base` (`http://127.0.0.1:PORT`), ending at `end_ms`.
fn url(base: &str, q: &QuerySpec, end_ms: i64) -> String {
    let end = end_ms as f64 / 1000.0;
    if q.range_s == 0 {
        format!(
            "{base}/api/v1/query?query={}&time={end}",
            crate::urlencode(q.expr)
        )
    } else {
        format!(
            "{base}/api/v1/query_range?query={}&start={}&end={end}&step={}",
            crate::urlencode(q.expr),
            end - q.range_s as f64,
            q.step_s
        )
    }
}

/// Sends one query: its latency and answer size, or why it failed.
fn once(agent: &ureq::Agent, url: &str) -> Result<(Duration, usize, usize), String> {
    let started = Instant::now();
    let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if status != 200 || v["status"] != "success" {
        return Err(format!("{status}: {}", v["error"]));
    }
    let result = &v["data"]["result"];
    let (series, points) = match result.as_array() {
        Some(list) if v["data"]["resultType"] == "matrix" => (
            list.len(),
            list.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum(),
        ),
        Some(list) if v["data"]["resultType"] == "vector" => (list.len(), list.len()),
        _ => (1, 1),
    };
    Ok((elapsed, series, points))
}

/// Times every query against `base` whose name contains `only` (every query when empty).
pub fn run(
    base: &str,
    end_ms: i64,
    repeats: usize,
    only: &str,
    timeout: Duration,
) -> Vec<QueryTiming> {
    let agent: ureq::Agent = crate::http_client(timeout).build().into();
    QUERIES
        .iter()
        .filter(|q| q.name.contains(only))
        .map(|q| {
            let u = url(base, q, end_ms);
            let mut timing = QueryTiming {
                name: q.name.into(),
                expr: q.expr.into(),
                range_s: q.range_s,
                step_s: q.step_s,
                latencies_ms: Vec::new(),
                first_ms: None,
                series: 0,
                points: 0,
                error: None,
            };
            match once(&agent, &u) {
                Err(e) => timing.error = Some(e),
                Ok((first, _, _)) => {
                    timing.first_ms = Some(first.as_secs_f64() * 1000.0);
                    for _ in 0..repeats {
                        match once(&agent, &u) {
                            Ok((d, series, points)) => {
                                timing.latencies_ms.push(d.as_secs_f64() * 1000.0);
                                timing.series = series;
                                timing.points = points;
                            }
                            Err(e) => {
                                timing.error = Some(e);
                                break;
                            }
                        }
                    }
                }
            }
            eprintln!(
                "  {:<40} {:>9.2} ms  {} series{}",
                q.name,
                timing.median_ms(),
                timing.series,
                timing
                    .error
                    .as_deref()
                    .map(|e| format!("  ERROR {e}"))
                    .unwrap_or_default()
            );
            timing
        })
        .collect()
}
