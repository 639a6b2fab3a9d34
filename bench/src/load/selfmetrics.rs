//! The generator's own metrics, remote-written once a second to a Strata or Prometheus
//! endpoint while a run goes on, so a load test can be watched in Grafana next to the
//! target's own dashboards.
//!
//! Series (every one with `job="strata-bench"` and the scenario): `strata_bench_requests_total`
//! by `outcome`, `strata_bench_samples_total`, `strata_bench_target_rate` (the schedule's
//! target), `strata_bench_latency_seconds` by `quantile` (0.5, 0.9, 0.99, 1 over the last
//! second), and `strata_bench_target_resident_memory_bytes` when the target's memory is
//! tracked. A push that fails is counted and dropped; it never slows the load.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use strata_wire::remote_write::encode::{EncodedLabels, Fields, RequestEncoder};

use super::client::{Connection, Endpoint};
use super::stats::Second;

/// Pushes the generator's metrics to a remote-write endpoint.
#[derive(Debug)]
pub struct SelfMetrics {
    endpoint: Endpoint,
    run: String,
    /// Cumulative requests by (scenario, outcome), and samples by scenario.
    requests: BTreeMap<(String, String), u64>,
    samples: BTreeMap<String, u64>,
    conn: Arc<tokio::sync::Mutex<Connection>>,
    /// Pushes that failed.
    pub failures: Arc<AtomicU64>,
}

/// Writes one series of metric `name` with `labels` (and `job`) and one sample.
fn series(out: &mut RequestEncoder, name: &str, labels: &[(&str, &str)], t_ms: i64, v: f64) {
    let mut all: Vec<(&str, &str)> = vec![("__name__", name), ("job", "strata-bench")];
    all.extend_from_slice(labels);
    all.sort();
    out.sample(&EncodedLabels::of(Fields::Canonical, all), t_ms, v);
}

impl SelfMetrics {
    /// Metrics of run `run` (a label on every series), pushed to `endpoint`.
    pub fn new(endpoint: Endpoint, run: String) -> SelfMetrics {
        let conn = Arc::new(tokio::sync::Mutex::new(Connection::new(endpoint.addr)));
        SelfMetrics {
            endpoint,
            run,
            requests: BTreeMap::new(),
            samples: BTreeMap::new(),
            conn,
            failures: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The series for one second of each scenario, at `t_ms`.
    pub fn encode(
        &mut self,
        t_ms: i64,
        seconds: &[(&str, &Second, &BTreeMap<String, u64>)],
    ) -> Vec<u8> {
        let mut out = RequestEncoder::new(Fields::Canonical);
        let run = self.run.clone();
        for (scenario, s, outcomes) in seconds {
            for (outcome, n) in *outcomes {
                let total = self
                    .requests
                    .entry((scenario.to_string(), outcome.clone()))
                    .or_default();
                *total += n;
                series(
                    &mut out,
                    "strata_bench_requests_total",
                    &[("scenario", scenario), ("outcome", outcome), ("run", &run)],
                    t_ms,
                    *total as f64,
                );
            }
            let samples = self.samples.entry(scenario.to_string()).or_default();
            *samples += s.samples;
            series(
                &mut out,
                "strata_bench_samples_total",
                &[("scenario", scenario), ("run", &run)],
                t_ms,
                *samples as f64,
            );
            series(
                &mut out,
                "strata_bench_target_rate",
                &[("scenario", scenario), ("run", &run)],
                t_ms,
                s.target,
            );
            if s.requests > 0 {
                for (q, ms) in [
                    ("0.5", s.p50_ms),
                    ("0.9", s.p90_ms),
                    ("0.99", s.p99_ms),
                    ("1", s.max_ms),
                ] {
                    series(
                        &mut out,
                        "strata_bench_latency_seconds",
                        &[("scenario", scenario), ("quantile", q), ("run", &run)],
                        t_ms,
                        ms / 1000.0,
                    );
                }
            }
            if let Some(rss) = s.target_rss_bytes {
                series(
                    &mut out,
                    "strata_bench_target_resident_memory_bytes",
                    &[("scenario", scenario), ("run", &run)],
                    t_ms,
                    rss as f64,
                );
            }
        }
        out.compress()
    }

    /// Sends `body` in the background; a failure is only counted.
    pub fn push(&self, body: Vec<u8>) {
        let (conn, failures, endpoint) = (
            self.conn.clone(),
            self.failures.clone(),
            self.endpoint.clone(),
        );
        tokio::spawn(async move {
            // One push at a time: a slow endpoint drops pushes rather than queueing them.
            let Ok(mut conn) = conn.try_lock() else {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let request = hyper::Request::post(endpoint.uri())
                .header(hyper::header::HOST, endpoint.authority.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
                .header(hyper::header::CONTENT_ENCODING, "snappy")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(Full::new(Bytes::from(body)))
                .expect("a valid request");
            match conn.send(request, Duration::from_secs(5), false).await {
                Ok(a) if a.status.is_success() => {}
                _ => {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_wire::remote_write::v1::decode_body;

    #[test]
    fn counters_accumulate_across_seconds_and_bodies_decode() {
        let mut m = SelfMetrics::new(
            Endpoint::parse("http://127.0.0.1:1/api/v1/write", false).unwrap(),
            "r".into(),
        );
        let second = Second {
            t: 1.0,
            target: 100.0,
            requests: 10,
            errors: 2,
            samples: 500,
            late: 0,
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.0,
            target_rss_bytes: Some(1 << 20),
            generator_rss_bytes: None,
        };
        let outcomes: BTreeMap<String, u64> = [("ok".to_owned(), 8), ("503".to_owned(), 2)].into();
        m.encode(1000, &[("write", &second, &outcomes)]);
        let body = m.encode(2000, &[("write", &second, &outcomes)]);
        let req = decode_body(&body, 128 << 20).unwrap();
        let find = |name: &str, extra: Option<(&str, &str)>| {
            req.timeseries
                .iter()
                .find(|ts| {
                    ts.labels
                        .iter()
                        .any(|l| l.name == "__name__" && l.value == name)
                        && extra.is_none_or(|(n, v)| {
                            ts.labels.iter().any(|l| l.name == n && l.value == v)
                        })
                })
                .map(|ts| ts.samples[0].value)
        };
        assert_eq!(
            find("strata_bench_requests_total", Some(("outcome", "ok"))),
            Some(16.0)
        );
        assert_eq!(
            find("strata_bench_requests_total", Some(("outcome", "503"))),
            Some(4.0)
        );
        assert_eq!(find("strata_bench_samples_total", None), Some(1000.0));
        assert_eq!(
            find("strata_bench_latency_seconds", Some(("quantile", "0.99"))),
            Some(0.003)
        );
        assert_eq!(
            find("strata_bench_target_resident_memory_bytes", None),
            Some(1048576.0)
        );
    }
}
