//! Real remote-write senders against the real server: Prometheus 2.42 scraping itself and
//! vmagent scraping itself, both writing to Strata. Their series must show up through
//! Strata's metadata API with exactly the label sets the sender has.
//!
//! Each needs its program installed (Debian packages `prometheus`, `victoria-metrics`); the
//! test is skipped when it is missing, and fails instead under `STRATA_E2E=1`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_tests::server::{
    Guard, Server, agent, free_port, get_json, require_program, try_get_json, urlencode,
};

/// How long a sender may take to deliver what it scraped.
const DELIVERY_WAIT: Duration = Duration::from_secs(90);

/// A label set as a sorted list of `name=value` strings.
type LabelSet = BTreeSet<String>;

fn label_sets(v: &Value) -> BTreeSet<LabelSet> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a series answer: {v}"))
        .iter()
        .map(|s| {
            s.as_object()
                .expect("a series is an object")
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().expect("label values are strings")))
                .collect()
        })
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list answer: {v}"))
        .iter()
        .map(|s| s.as_str().expect("strings").to_owned())
        .collect()
}

/// Polls `check` every 200 ms until it returns `Ok`, or panics with its last error after
/// `limit`.
fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => {
                panic!("{what}: not true within {limit:?}; last: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Prometheus scrapes itself every second and remote-writes to Strata. Strata's
/// `/api/v1/series` must give the label sets Prometheus's own API gives for the same
/// selector, `/api/v1/label/__name__/values` every metric name Prometheus had, and
/// `/api/v1/metadata` the type and help Prometheus reports.
#[test]
fn prometheus_remote_writes_its_own_series_to_strata() {
    let Some(prometheus) = require_program("prometheus", "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(&dir.path().join("strata"), &[]);
    strata.wait_ready(Duration::from_secs(30));
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n\
             remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n    metadata_config:\n      send_interval: 1s\n",
            strata.url
        ),
    )
    .unwrap();
    let _prometheus = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let http = agent();
    let prom_url = format!("http://127.0.0.1:{port}");

    // The same selector through both APIs, until the answers agree.
    let selector = urlencode(
        r#"{job="prometheus",__name__=~"up|prometheus_build_info|prometheus_tsdb_head_series|go_goroutines|scrape_samples_scraped|prometheus_http_requests_total"}"#,
    );
    let agreed = eventually(DELIVERY_WAIT, "Strata's series equal Prometheus's", || {
        let (_, p) = try_get_json(
            &http,
            &format!("{prom_url}/api/v1/series?match[]={selector}"),
        )?;
        let (status, s) = get_json(
            &http,
            &format!("{}/api/v1/series?match[]={selector}", strata.url),
        );
        let (p, s) = (label_sets(&p), label_sets(&s));
        if status != 200 || p.is_empty() || p != s {
            return Err(format!(
                "status {status}; only in Prometheus: {:?}; only in Strata: {:?}",
                p.difference(&s).collect::<Vec<_>>(),
                s.difference(&p).collect::<Vec<_>>()
            ));
        }
        Ok(p)
    });
    let names: BTreeSet<&str> = agreed
        .iter()
        .flat_map(|set| set.iter().filter_map(|l| l.strip_prefix("__name__=")))
        .collect();
    assert!(
        names.contains("up") && names.contains("prometheus_build_info"),
        "{names:?}"
    );
    println!(
        "{} series agree, e.g. {:?}",
        agreed.len(),
        agreed.iter().next()
    );

    // Every metric name Prometheus has now reaches Strata.
    let (_, p) = get_json(&http, &format!("{prom_url}/api/v1/label/__name__/values"));
    let wanted = strings(&p);
    eventually(DELIVERY_WAIT, "every metric name reaches Strata", || {
        let (_, s) = get_json(
            &http,
            &format!("{}/api/v1/label/__name__/values", strata.url),
        );
        let missing: Vec<_> = wanted.difference(&strings(&s)).cloned().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {missing:?}"))
        }
    });
    println!(
        "all {} metric names of Prometheus are in Strata",
        wanted.len()
    );

    // Metadata, as Prometheus reports it for itself.
    for metric in [
        "prometheus_tsdb_head_series",
        "prometheus_http_requests_total",
    ] {
        let (_, p) = get_json(
            &http,
            &format!("{prom_url}/api/v1/metadata?metric={metric}"),
        );
        eventually(DELIVERY_WAIT, "metadata reaches Strata", || {
            let (_, s) = get_json(
                &http,
                &format!("{}/api/v1/metadata?metric={metric}", strata.url),
            );
            if s["data"][metric] == p["data"][metric] && !s["data"][metric].is_null() {
                Ok(())
            } else {
                Err(format!("Strata {} vs Prometheus {}", s["data"], p["data"]))
            }
        });
    }
    strata.stop();
}

/// Parses the exposition lines of `metric` into label sets (plus `job` and `instance` as a
/// scraper adds them). Handles what vmagent prints: `name{a="x", b="y"} value`, values
/// without escapes.
fn exposed_label_sets(text: &str, metric: &str, job: &str, instance: &str) -> BTreeSet<LabelSet> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let mut set: LabelSet = [
            format!("__name__={metric}"),
            format!("job={job}"),
            format!("instance={instance}"),
        ]
        .into();
        if let Some(inner) = rest.strip_prefix('{') {
            let inner = &inner[..inner.find('}').expect("closing brace")];
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("name=value");
                let v = v.trim_matches('"');
                if !v.is_empty() {
                    set.insert(format!("{k}={v}"));
                }
            }
        } else if !rest.starts_with(' ') {
            continue; // a longer name with this prefix
        }
        out.insert(set);
    }
    out
}

/// vmagent (VictoriaMetrics's remote-write agent) scrapes itself and writes to Strata; its
/// series, multi-label ones included, arrive with the labels it exposes.
#[test]
fn vmagent_remote_writes_to_strata() {
    let Some(vmagent) = require_program("vmagent", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(&dir.path().join("strata"), &[]);
    strata.wait_ready(Duration::from_secs(30));
    let port = free_port();
    let instance = format!("127.0.0.1:{port}");
    let config = dir.path().join("scrape.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vmagent\n    static_configs:\n      - targets: ['{instance}']\n"
        ),
    )
    .unwrap();
    let _vmagent = Guard(
        Command::new(vmagent)
            .arg(format!("-promscrape.config={}", config.display()))
            .arg(format!("-remoteWrite.url={}/api/v1/write", strata.url))
            .arg(format!("-httpListenAddr={instance}"))
            .arg(format!(
                "-remoteWrite.tmpDataPath={}",
                dir.path().join("vmagent-data").display()
            ))
            .arg("-remoteWrite.flushInterval=1s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vmagent"),
    );
    let http = agent();
    let exposition = eventually(Duration::from_secs(30), "vmagent serves /metrics", || {
        let mut r = http
            .get(format!("http://{instance}/metrics"))
            .call()
            .map_err(|e| e.to_string())?;
        r.body_mut().read_to_string().map_err(|e| e.to_string())
    });
    for metric in ["vm_promscrape_targets", "vm_app_start_timestamp", "up"] {
        let expected = if metric == "up" {
            [[
                "__name__=up".to_string(),
                "job=vmagent".into(),
                format!("instance={instance}"),
            ]
            .into_iter()
            .collect()]
            .into()
        } else {
            exposed_label_sets(&exposition, metric, "vmagent", &instance)
        };
        assert!(!expected.is_empty(), "vmagent does not expose {metric}");
        let uri = format!(
            "{}/api/v1/series?match[]={}",
            strata.url,
            urlencode(&format!("{metric}{{job=\"vmagent\"}}"))
        );
        eventually(DELIVERY_WAIT, "vmagent's series reach Strata", || {
            let (_, s) = get_json(&http, &uri);
            let got = label_sets(&s);
            if got == expected {
                Ok(())
            } else {
                Err(format!(
                    "{metric}: expected {} label sets, got {}: missing {:?}, extra {:?}",
                    expected.len(),
                    got.len(),
                    expected.difference(&got).take(3).collect::<Vec<_>>(),
                    got.difference(&expected).take(3).collect::<Vec<_>>()
                ))
            }
        });
        println!(
            "{metric}: {} label sets as vmagent exposes them",
            expected.len()
        );
    }
    strata.stop();
}
