//! Rules against a real Prometheus 2.42: both receive the same remote-written data (Prometheus
//! through its remote-write receiver) and load the same rule file — recording rules of
//! dashboard shape (`sum by`, `rate`, ratios, `histogram_quantile`) and alerts with `for`,
//! label templates and templated annotations. Once both have evaluated past the `for`, the
//! recorded series (labels and values), the `ALERTS` series, and the alerts of
//! `/api/v1/alerts` (labels, annotations, state, value) must agree.
//!
//! The data is written once, so every expression is constant while the evaluations go on
//! (the rate windows hold all samples with gaps at both ends). Skipped when Prometheus is
//! missing, a failure under `STRATA_E2E=1`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_testkit::time::now_ms;
use strata_tests::server::{
    Server, agent, remote_write, require_program, series_of, start_prometheus, try_get_json,
    urlencode,
};
use strata_wire::remote_write::v1::WriteRequest;

const RULES: &str = r#"groups:
  - name: dashboard
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - record: job:http_errors:ratio5m
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))
      - record: job:latency:p90
        expr: histogram_quantile(0.9, sum by (job, le) (rate(latency_seconds_bucket[5m])))
      - record: instance:memory:used_ratio
        expr: 1 - node_memory_free_bytes / node_memory_total_bytes
  - name: alerts
    rules:
      - alert: HighErrorRatio
        expr: job:http_errors:ratio5m > 0.1
        for: 2s
        labels:
          severity: '{{ if gt $value 0.2 }}page{{ else }}ticket{{ end }}'
        annotations:
          summary: '{{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail'
          description: '{{ printf "%.3f" $value }} over 5m in {{ $externalLabels.cluster }}'
      - alert: MemoryHigh
        expr: instance:memory:used_ratio > 0.5
        for: 2s
        annotations:
          summary: '{{ $labels.instance }} uses {{ humanize1024 $value }} of its memory ({{ $value | humanize }})'
      - alert: NeverFires
        expr: instance:memory:used_ratio > 2
"#;

/// Counters over the 90 s before `end` at 15 s steps (first values far from zero, so no
/// extrapolation towards zero), gauges once.
fn data(end: i64) -> WriteRequest {
    let times: Vec<i64> = (0..7).map(|i| end - 90_000 + i * 15_000).collect();
    let counter = |start: f64, per_step: f64| -> Vec<(i64, f64)> {
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, start + per_step * i as f64))
            .collect()
    };
    let mut out = Vec::new();
    for (job, ok, bad) in [("api", 30.0, 6.0), ("web", 50.0, 1.5), ("batch", 10.0, 4.0)] {
        out.push(series_of(
            &[
                ("__name__", "http_requests_total"),
                ("job", job),
                ("code", "200"),
            ],
            &counter(1000.0, ok),
        ));
        out.push(series_of(
            &[
                ("__name__", "http_requests_total"),
                ("job", job),
                ("code", "500"),
            ],
            &counter(500.0, bad),
        ));
        for (le, share) in [("0.1", 0.5), ("0.5", 0.8), ("1", 0.95), ("+Inf", 1.0)] {
            out.push(series_of(
                &[
                    ("__name__", "latency_seconds_bucket"),
                    ("job", job),
                    ("le", le),
                ],
                &counter(2000.0 * share, (ok + bad) * share),
            ));
        }
    }
    for (instance, free, total) in [("h1:9100", 1.5e9, 8e9), ("h2:9100", 6e9, 8e9)] {
        out.push(series_of(
            &[
                ("__name__", "node_memory_free_bytes"),
                ("instance", instance),
            ],
            &[(end, free)],
        ));
        out.push(series_of(
            &[
                ("__name__", "node_memory_total_bytes"),
                ("instance", instance),
            ],
            &[(end, total)],
        ));
    }
    WriteRequest {
        timeseries: out,
        metadata: vec![],
    }
}

fn query(http: &ureq::Agent, base: &str, q: &str) -> Option<Vec<Value>> {
    let (status, body) =
        try_get_json(http, &format!("{base}/api/v1/query?query={}", urlencode(q))).ok()?;
    (status == 200).then(|| {
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    })
}

/// A vector answer as labels → value.
fn by_labels(result: &[Value]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|s| {
            (
                s["metric"].to_string(),
                s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// `/api/v1/alerts` as labels → (state, value, annotations).
fn alerts(http: &ureq::Agent, base: &str) -> Option<BTreeMap<String, (String, String, String)>> {
    let (status, body) = try_get_json(http, &format!("{base}/api/v1/alerts")).ok()?;
    if status != 200 {
        return None;
    }
    Some(
        body["data"]["alerts"]
            .as_array()?
            .iter()
            .map(|a| {
                (
                    a["labels"].to_string(),
                    (
                        a["state"].as_str().unwrap_or_default().to_owned(),
                        a["value"].as_str().unwrap_or_default().to_owned(),
                        a["annotations"].to_string(),
                    ),
                )
            })
            .collect(),
    )
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn strata_and_prometheus_record_and_alert_alike_on_the_same_rules_and_data() {
    let Some(prometheus) = require_program("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let strata_config = dir.path().join("strata.yml");
    std::fs::write(
        &strata_config,
        format!(
            "global:\n  evaluation_interval: 1s\n  external_labels: {{cluster: eu1}}\nrule_files: [{}]\n",
            rules.display()
        ),
    )
    .unwrap();
    let strata = Server::start(
        &dir.path().join("strata"),
        &["--config", strata_config.to_str().unwrap()],
    );
    strata.wait_ready(Duration::from_secs(30));
    let (_prometheus, prom) = start_prometheus(
        &prometheus,
        dir.path(),
        &format!(
            "global:\n  evaluation_interval: 1s\n  external_labels: {{cluster: eu1}}\nrule_files: [{}]\n",
            rules.display()
        ),
    );
    let http = agent();
    let request = data(now_ms());
    for base in [&strata.url, &prom] {
        let reply = remote_write(&http, base, &request);
        assert!(
            reply.status == 204 || reply.status == 200,
            "{base}: {} {}",
            reply.status,
            reply.body
        );
    }

    // Wait until both fire what they will fire (past `for`, and the rate windows' end gap
    // wider than 1.1 steps), then compare. Both must agree for a few evaluations running.
    let deadline = Instant::now() + Duration::from_secs(90);
    let settled = Instant::now() + Duration::from_secs(20);
    let mut agreed_in_a_row = 0;
    let mut last = String::new();
    while agreed_in_a_row < 3 {
        assert!(
            Instant::now() < deadline,
            "Strata and Prometheus did not agree within 90 s; last difference:\n{last}"
        );
        std::thread::sleep(Duration::from_millis(500));
        if Instant::now() < settled {
            continue;
        }
        let mut differences = Vec::new();
        for q in [
            "job:http_requests:rate5m",
            "job:http_errors:ratio5m",
            "job:latency:p90",
            "instance:memory:used_ratio",
            "ALERTS",
        ] {
            let (Some(s), Some(p)) = (query(&http, &strata.url, q), query(&http, &prom, q)) else {
                differences.push(format!("{q}: a query failed"));
                continue;
            };
            let (s, p) = (by_labels(&s), by_labels(&p));
            if s.is_empty() {
                differences.push(format!("{q}: no result yet"));
            }
            let same = s.len() == p.len()
                && s.iter()
                    .zip(&p)
                    .all(|((ls, vs), (lp, vp))| ls == lp && close(*vs, *vp));
            if !same {
                differences.push(format!("{q}:\n  strata     {s:?}\n  prometheus {p:?}"));
            }
        }
        let (s, p) = (alerts(&http, &strata.url), alerts(&http, &prom));
        if s != p || s.as_ref().is_none_or(|a| a.len() < 3) {
            differences.push(format!("alerts:\n  strata     {s:?}\n  prometheus {p:?}"));
        }
        if differences.is_empty() {
            agreed_in_a_row += 1;
        } else {
            agreed_in_a_row = 0;
            last = differences.join("\n");
        }
    }
    strata.stop();
}
