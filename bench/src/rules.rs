//! The rule-evaluation benchmark: what 1,000 recording rules of dashboard shape cost a server
//! over the node_exporter-like fleet, measured from outside the same way for every system.
//!
//! The rule file ([`rule_file`]) is made from the dataset itself: per counter family
//! `sum by (instance) (rate(…[r]))` and `sum(rate(…[r]))` at 1 m and 5 m, per gauge family
//! `avg by (instance)` and `max`, the histogram's `histogram_quantile` at three quantiles and
//! two windows, and ratios of counter rates, cycled until there are enough rules, dealt into
//! groups that all run at one interval.
//!
//! [`run`] against a started server whose configuration file it may rewrite:
//! 1. loads the fleet's history from `start_ms` up to two minutes ahead of the wall clock, then
//!    sends the following scrapes live at the fleet's own pace (one scrape of every series
//!    every 15 s), still ahead of their timestamps, so that an evaluation at time t finds every
//!    sample up to t, whichever system runs it;
//! 2. baseline: `baseline_s` seconds of that live load without rules, CPU measured;
//! 3. writes the rule file into the configuration and asks the server to reload it;
//! 4. measured: `measure_s` seconds with the rules, CPU measured, and the server's `/metrics`
//!    read every second for each group's last evaluation time and duration (every evaluation
//!    counted once, by its timestamp);
//! 5. keeps the last recorded sample of every rule (its series, time and value) and, given
//!    another system's kept samples, evaluates each rule's expression at their times here and
//!    compares the values.
//!
//! CPU per evaluation round = (CPU per second with rules − without) × the interval.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use strata_testkit::dataset::{self, DatasetSpec, SeriesClass};

use crate::ingest::process::Process;
use crate::query::load::{LoadOptions, continuation, load};

/// A rule of the benchmark's file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchRule {
    pub record: String,
    pub expr: String,
}

/// The rules for `hosts` hosts of `spec`: `count` of them.
pub fn rules(spec: &DatasetSpec, count: usize) -> Vec<BenchRule> {
    let data = spec.build(1, 1);
    let mut counters = std::collections::BTreeSet::new();
    let mut gauges = std::collections::BTreeSet::new();
    let mut histograms = std::collections::BTreeSet::new();
    for s in data.series() {
        let name = s.labels.first().map(|(_, v)| v.clone()).unwrap_or_default();
        match s.class {
            SeriesClass::Histogram if name.ends_with("_bucket") => {
                histograms.insert(name.trim_end_matches("_bucket").to_owned());
            }
            SeriesClass::Histogram => {}
            _ if name.ends_with("_total") => {
                counters.insert(name);
            }
            _ => {
                gauges.insert(name);
            }
        }
    }
    let counters: Vec<String> = counters.into_iter().collect();
    let mut shapes: Vec<String> = Vec::new();
    for r in ["1m", "5m"] {
        for c in &counters {
            shapes.push(format!("sum by (instance) (rate({c}[{r}]))"));
            shapes.push(format!("sum(rate({c}[{r}]))"));
        }
        for h in &histograms {
            for q in ["0.5", "0.9", "0.99"] {
                shapes.push(format!(
                    "histogram_quantile({q}, sum by (le, instance) (rate({h}_bucket[{r}])))"
                ));
            }
        }
    }
    for g in &gauges {
        shapes.push(format!("avg by (instance) ({g})"));
        shapes.push(format!("max({g})"));
    }
    for pair in counters.windows(2) {
        shapes.push(format!(
            "sum by (instance) (rate({}[5m])) / sum by (instance) (rate({}[5m]))",
            pair[0], pair[1]
        ));
    }
    // Past the distinct shapes, the same shapes grouped by job (other series, other work), and
    // then scaled, so that every rule is distinct.
    let mut out = Vec::with_capacity(count);
    let mut used = std::collections::BTreeSet::new();
    let mut round = 0;
    while out.len() < count && !shapes.is_empty() {
        for shape in &shapes {
            if out.len() == count {
                break;
            }
            let mut expr = if round % 2 == 0 {
                shape.clone()
            } else {
                shape
                    .replace("by (instance)", "by (job)")
                    .replace("by (le, instance)", "by (le, job)")
                    .replace("sum(", "count(")
            };
            let mut k = round / 2 + 1;
            while !used.insert(expr.clone()) {
                k += 1;
                expr = format!("({shape}) * {k}");
            }
            out.push(BenchRule {
                record: format!("bench:rule_{}", out.len()),
                expr,
            });
        }
        round += 1;
    }
    out
}

/// The rule file: `rules` dealt into `groups` groups evaluated every `interval_s` seconds.
pub fn rule_file(rules: &[BenchRule], groups: usize, interval_s: u64) -> String {
    let per_group = rules.len().div_ceil(groups.max(1));
    let mut out = String::from("groups:\n");
    for (g, chunk) in rules.chunks(per_group.max(1)).enumerate() {
        out.push_str(&format!(
            "  - name: bench-{g}\n    interval: {interval_s}s\n    rules:\n"
        ));
        for r in chunk {
            out.push_str(&format!(
                "      - record: {}\n        expr: {}\n",
                r.record,
                serde_json::to_string(&r.expr).unwrap_or_default()
            ));
        }
    }
    out
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub system: String,
    pub version: String,
    pub url: String,
    pub hosts: usize,
    pub dataset: DatasetSpec,
    pub start_ms: i64,
    pub rules: usize,
    pub groups: usize,
    pub interval_s: u64,
    pub baseline_s: u64,
    pub measure_s: u64,
    pub server_pid: u32,
    /// The server's configuration file, and the text to write into it to add the rules.
    pub config: PathBuf,
    pub config_with_rules: String,
    pub rules_path: PathBuf,
    /// Prefix of the server's rule-group metrics (`strata`, `prometheus`).
    pub metrics_prefix: String,
}

/// A sample value that survives JSON: written as Prometheus spells it (`NaN`, `+Inf`, `1.5`),
/// read from that, from a number, or from null (how an older result wrote NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float(pub f64);

impl Serialize for Float {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let text = if v.is_nan() {
            "NaN".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
        } else {
            v.to_string()
        };
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Float, D::Error> {
        Ok(Float(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            v @ serde_json::Value::String(_) => number(&v),
            _ => f64::NAN,
        }))
    }
}

/// Series of a result: labels (without the name) and value.
pub type SeriesValues = Vec<(BTreeMap<String, String>, Float)>;

/// A rule's last recorded series: labels (without the name), time, value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recorded {
    pub rule: usize,
    pub t_ms: i64,
    pub series: SeriesValues,
}

/// How the values of one system compare with another's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ValueCheck {
    pub against: String,
    pub rules_compared: usize,
    pub series_compared: usize,
    pub mismatched_rules: usize,
    pub max_relative_difference: f64,
    pub examples: Vec<String>,
}

/// What a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RulesResult {
    pub system: String,
    pub version: String,
    /// The dataset's first scrape (ms): a system compared with this one must load the same.
    #[serde(default)]
    pub start_ms: i64,
    pub series: usize,
    pub rules: usize,
    pub groups: usize,
    pub interval_s: u64,
    pub baseline_cpu_per_s: f64,
    pub measured_cpu_per_s: f64,
    pub cpu_s_per_round: f64,
    pub evaluations: usize,
    pub group_eval_ms_p50: f64,
    pub group_eval_ms_p99: f64,
    pub group_eval_ms_max: f64,
    pub recorded: Vec<Recorded>,
    pub values: Option<ValueCheck>,
}

fn get_text(agent: &ureq::Agent, url: &str) -> anyhow::Result<String> {
    let mut r = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string()?;
    if status != 200 {
        bail!("GET {url}: {status} {text}");
    }
    Ok(text)
}

/// Each rule group's last evaluation (timestamp, seconds) and its duration, from `/metrics`.
fn group_figures(text: &str, prefix: &str) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let read = |line: &str, metric: &str| -> Option<(String, f64)> {
        let rest = line.strip_prefix(metric)?.strip_prefix("{rule_group=\"")?;
        let (group, value) = rest.split_once("\"}")?;
        Some((group.to_owned(), value.trim().parse().ok()?))
    };
    let last_eval = format!("{prefix}_rule_group_last_evaluation_timestamp_seconds");
    let last_duration = format!("{prefix}_rule_group_last_duration_seconds");
    for line in text.lines() {
        if let Some((g, v)) = read(line, &last_eval) {
            out.entry(g).or_default().0 = v;
        } else if let Some((g, v)) = read(line, &last_duration) {
            out.entry(g).or_default().1 = v;
        }
    }
    out
}

fn instant(
    agent: &ureq::Agent,
    base: &str,
    query: &str,
    t_ms: Option<i64>,
) -> anyhow::Result<serde_json::Value> {
    let mut url = format!("{base}/api/v1/query?query={}", crate::urlencode(query));
    if let Some(t) = t_ms {
        url.push_str(&format!("&time={:.3}", t as f64 / 1000.0));
    }
    let v: serde_json::Value = serde_json::from_str(&get_text(agent, &url)?)?;
    if v["status"] != "success" {
        bail!("{query}: {v}");
    }
    Ok(v)
}

fn labels_of(metric: &serde_json::Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn number(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("+Inf") => f64::INFINITY,
        Some("-Inf") => f64::NEG_INFINITY,
        Some(s) => s.parse().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs the benchmark (see the module's documentation).
pub fn run(options: &RunOptions) -> anyhow::Result<RulesResult> {
    let agent: ureq::Agent = crate::http_client(Duration::from_secs(120)).build().into();
    let process = Process::new(options.server_pid);
    let write_url = format!("{}/api/v1/write", options.url);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    // Two minutes ahead: loading takes up to a minute, and a scrape's samples go out over 15 s,
    // so the data stays ahead of every evaluation (a sample still in flight at time t would
    // change a rule's value at t).
    let ahead_ms = 120_000;
    let loaded_scrapes =
        ((now() + ahead_ms - options.start_ms) / dataset::SCRAPE_INTERVAL_MS).max(1) as u64;
    let load_options = LoadOptions {
        write_url: write_url.clone(),
        hosts: options.hosts,
        dataset: options.dataset.clone(),
        seed: 1,
        start_ms: options.start_ms,
        scrapes: loaded_scrapes,
        shards: 2,
        batch_samples: 2000,
        lockstep_scrapes: 40,
        request_timeout: Duration::from_secs(60),
    };
    eprintln!(
        "  loading {loaded_scrapes} scrapes of {} hosts",
        options.hosts
    );
    let loaded = load(&load_options)?;
    // The live phase: scrapes from where the load ended, one every 15 s of wall time, sent
    // as the load was (ahead of their timestamps by the same margin).
    let live_s = options.baseline_s + options.measure_s + 30;
    let live_scrapes = live_s * 1000 / dataset::SCRAPE_INTERVAL_MS as u64 + 1;
    let (bodies, samples) = continuation(&load_options, live_scrapes);
    let rate = loaded.series as f64 * 1000.0 / dataset::SCRAPE_INTERVAL_MS as f64;
    let result = std::thread::scope(|scope| -> anyhow::Result<RulesResult> {
        let sender =
            scope.spawn(|| crate::query::footprint::live(&write_url, &bodies, samples, 2000, rate));
        let measured = measure(options, &agent, &process, loaded.series);
        let live = sender
            .join()
            .map_err(|_| anyhow::anyhow!("the live sender panicked"))?;
        if live.errors > 0 {
            eprintln!(
                "  live phase: {} requests failed ({:?})",
                live.errors, live.error_examples
            );
        }
        measured
    })?;
    Ok(result)
}

fn measure(
    options: &RunOptions,
    agent: &ureq::Agent,
    process: &Process,
    series: usize,
) -> anyhow::Result<RulesResult> {
    eprintln!(
        "  baseline: {} s of live load without rules",
        options.baseline_s
    );
    let (cpu0, t0) = (process.cpu()?, Instant::now());
    std::thread::sleep(Duration::from_secs(options.baseline_s));
    let baseline = (process.cpu()? - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();

    let rules = rules(&options.dataset, options.rules);
    std::fs::write(
        &options.rules_path,
        rule_file(&rules, options.groups, options.interval_s),
    )?;
    std::fs::write(&options.config, &options.config_with_rules)?;
    let mut reply = agent
        .post(format!("{}/-/reload", options.url))
        .send_empty()
        .context("POST /-/reload")?;
    let status = reply.status().as_u16();
    if status != 200 {
        bail!("reload: {status} {}", reply.body_mut().read_to_string()?);
    }
    eprintln!(
        "  measured: {} s with {} rules in {} groups",
        options.measure_s,
        rules.len(),
        options.groups
    );
    // The first evaluations start within one interval: CPU is counted from then.
    std::thread::sleep(Duration::from_secs(options.interval_s));
    let (cpu1, t1) = (process.cpu()?, Instant::now());
    let mut seen: BTreeMap<(String, u64), f64> = BTreeMap::new();
    let metrics_url = format!("{}/metrics", options.url);
    while t1.elapsed() < Duration::from_secs(options.measure_s) {
        let text = get_text(agent, &metrics_url)?;
        for (group, (at, duration)) in group_figures(&text, &options.metrics_prefix) {
            if at > 0.0 {
                seen.insert((group, (at * 1000.0) as u64), duration);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let measured = (process.cpu()? - cpu1).as_secs_f64() / t1.elapsed().as_secs_f64();
    let mut durations: Vec<f64> = seen.values().map(|d| d * 1000.0).collect();
    durations.sort_by(f64::total_cmp);
    // Each rule's last recorded sample.
    let mut recorded = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let v = instant(agent, &options.url, &format!("{}[1m]", rule.record), None)?;
        let mut last_t = 0i64;
        let mut by_t: BTreeMap<i64, SeriesValues> = BTreeMap::new();
        for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let labels = labels_of(&s["metric"]);
            for p in s["values"].as_array().cloned().unwrap_or_default() {
                let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                last_t = last_t.max(t);
                by_t.entry(t)
                    .or_default()
                    .push((labels.clone(), Float(number(&p[1]))));
            }
        }
        if let Some(series) = by_t.remove(&last_t) {
            recorded.push(Recorded {
                rule: i,
                t_ms: last_t,
                series,
            });
        }
    }
    Ok(RulesResult {
        system: options.system.clone(),
        version: options.version.clone(),
        start_ms: options.start_ms,
        series,
        rules: rules.len(),
        groups: options.groups,
        interval_s: options.interval_s,
        baseline_cpu_per_s: baseline,
        measured_cpu_per_s: measured,
        cpu_s_per_round: (measured - baseline) * options.interval_s as f64,
        evaluations: durations.len(),
        group_eval_ms_p50: percentile(&durations, 0.5),
        group_eval_ms_p99: percentile(&durations, 0.99),
        group_eval_ms_max: durations.last().copied().unwrap_or(0.0),
        recorded,
        values: None,
    })
}

fn same(a: f64, b: f64) -> (bool, f64) {
    if a.to_bits() == b.to_bits() || a == b || (a.is_nan() && b.is_nan()) {
        return (true, 0.0);
    }
    let rel = (a - b).abs() / a.abs().max(b.abs());
    (rel <= 1e-9, rel)
}

/// Evaluates each rule of `other` at its recorded time against the server at `url` and
/// compares the values with what `other` recorded.
pub fn check_values(
    url: &str,
    dataset: &DatasetSpec,
    other: &RulesResult,
) -> anyhow::Result<ValueCheck> {
    let agent: ureq::Agent = crate::http_client(Duration::from_secs(120)).build().into();
    let rules = rules(dataset, other.rules);
    let mut check = ValueCheck {
        against: other.system.clone(),
        ..ValueCheck::default()
    };
    for rec in &other.recorded {
        let Some(rule) = rules.get(rec.rule) else {
            continue;
        };
        let v = instant(&agent, url, &rule.expr, Some(rec.t_ms))?;
        let here: BTreeMap<BTreeMap<String, String>, f64> = v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| (labels_of(&s["metric"]), number(&s["value"][1])))
            .collect();
        let there: BTreeMap<BTreeMap<String, String>, f64> =
            rec.series.iter().map(|(l, v)| (l.clone(), v.0)).collect();
        check.rules_compared += 1;
        check.series_compared += there.len();
        let mut ok = here.len() == there.len();
        for (labels, v) in &there {
            match here.get(labels) {
                Some(h) => {
                    let (equal, rel) = same(*v, *h);
                    if rel.is_finite() {
                        check.max_relative_difference = check.max_relative_difference.max(rel);
                    }
                    ok &= equal;
                }
                None => ok = false,
            }
        }
        if !ok {
            check.mismatched_rules += 1;
            if check.examples.len() < 5 {
                check.examples.push(format!(
                    "{} at {}: {} {there:?} vs here {here:?}",
                    rule.expr, rec.t_ms, other.system
                ));
            }
        }
    }
    Ok(check)
}

/// The results side by side, Strata's ratio to each other system.
pub fn report(results: &[RulesResult]) -> String {
    let mut out = String::new();
    out.push_str("| figure |");
    for r in results {
        out.push_str(&format!(" {} |", r.system));
    }
    out.push('\n');
    out.push_str("|---|");
    for _ in results {
        out.push_str("---:|");
    }
    out.push('\n');
    let row = |out: &mut String, name: &str, f: &dyn Fn(&RulesResult) -> String| {
        out.push_str(&format!("| {name} |"));
        for r in results {
            out.push_str(&format!(" {} |", f(r)));
        }
        out.push('\n');
    };
    row(&mut out, "version", &|r| r.version.clone());
    row(&mut out, "series / rules / groups", &|r| {
        format!("{} / {} / {}", r.series, r.rules, r.groups)
    });
    row(&mut out, "CPU-s per second, live load only", &|r| {
        format!("{:.3}", r.baseline_cpu_per_s)
    });
    row(&mut out, "CPU-s per second, with the rules", &|r| {
        format!("{:.3}", r.measured_cpu_per_s)
    });
    row(&mut out, "CPU-s per evaluation round", &|r| {
        format!("{:.3}", r.cpu_s_per_round)
    });
    row(&mut out, "group evaluations seen", &|r| {
        r.evaluations.to_string()
    });
    row(&mut out, "group evaluation p50 / p99 / max (ms)", &|r| {
        format!(
            "{:.1} / {:.1} / {:.1}",
            r.group_eval_ms_p50, r.group_eval_ms_p99, r.group_eval_ms_max
        )
    });
    row(&mut out, "values checked", &|r| match &r.values {
        Some(v) => format!(
            "{} of {}'s rules ({} series): {} differ, max rel. diff {:.1e}",
            v.rules_compared,
            v.against,
            v.series_compared,
            v.mismatched_rules,
            v.max_relative_difference
        ),
        None => "-".into(),
    });
    if let Some(strata) = results.iter().find(|r| r.system == "strata") {
        for other in results.iter().filter(|r| r.system != "strata") {
            out.push_str(&format!(
                "\nStrata / {}: CPU per round {:.2}x, p99 group evaluation {:.2}x\n",
                other.system,
                strata.cpu_s_per_round / other.cpu_s_per_round,
                strata.group_eval_ms_p99 / other.group_eval_ms_p99
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_json_has_no_number_for_survive_a_round_trip() {
        let values = vec![Float(f64::NAN), Float(f64::INFINITY), Float(-2.5)];
        let text = serde_json::to_string(&values).unwrap();
        assert_eq!(text, r#"["NaN","+Inf","-2.5"]"#);
        let back: Vec<Float> = serde_json::from_str(&text).unwrap();
        assert!(back[0].0.is_nan());
        assert_eq!(back[1..], values[1..]);
        let old: Vec<Float> = serde_json::from_str("[null, 1.5]").unwrap();
        assert!(old[0].0.is_nan() && old[1].0 == 1.5);
    }

    #[test]
    fn a_thousand_distinct_rules_of_dashboard_shape_in_twenty_groups() {
        let rules = rules(&DatasetSpec::Generated, 1000);
        assert_eq!(rules.len(), 1000);
        let exprs: std::collections::BTreeSet<&str> =
            rules.iter().map(|r| r.expr.as_str()).collect();
        assert_eq!(exprs.len(), 1000, "every rule distinct");
        assert!(
            rules
                .iter()
                .any(|r| r.expr.starts_with("histogram_quantile(0.99"))
        );
        assert!(rules.iter().any(|r| r.expr.contains(") / sum by")));
        let file = rule_file(&rules, 20, 15);
        assert_eq!(file.matches("  - name: bench-").count(), 20);
        assert_eq!(file.matches("      - record: ").count(), 1000);
    }
}
