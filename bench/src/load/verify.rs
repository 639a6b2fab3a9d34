//! After a `write` run: is every acknowledged sample queryable?
//!
//! Two checks through the target's Prometheus query API, which Strata, Prometheus and
//! VictoriaMetrics all answer:
//!
//! 1. **Series**: `count(last_over_time({run="ID"}[RANGE]))` must equal the number of series
//!    (each churn generation its own) that had a sample in an acknowledged request.
//! 2. **Samples**: for a spread-out set of series, every acknowledged `(timestamp, value)` must
//!    come back from a range selector over the run, with the exact value (the same float bits).
//!    Samples the target holds beyond those (from requests that failed after being stored,
//!    which a retrying sender would have sent again) are counted but are not a loss.

use std::time::Duration;

use super::scenario::write::Ledger;

/// What the check found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verification {
    pub series_expected: u64,
    pub series_found: Option<u64>,
    pub samples_acknowledged: u64,
    pub checked_series: usize,
    pub checked_samples: u64,
    /// Acknowledged samples the target did not return.
    pub missing_samples: u64,
    /// Returned with another value.
    pub wrong_values: u64,
    /// Returned, but not acknowledged.
    pub extra_samples: u64,
    /// Queries that failed, with why.
    pub errors: Vec<String>,
}

impl Verification {
    /// Whether nothing acknowledged was lost.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
            && self.missing_samples == 0
            && self.wrong_values == 0
            && self.series_found == Some(self.series_expected)
    }

    /// One paragraph for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "verification: {} — series {} of {} found; {} acknowledged samples of {} series checked: {} missing, {} with another value, {} extra{}",
            if self.passed() {
                "PASSED, no acknowledged sample lost"
            } else {
                "FAILED"
            },
            self.series_found.map_or("?".into(), |n| n.to_string()),
            self.series_expected,
            self.checked_samples,
            self.checked_series,
            self.missing_samples,
            self.wrong_values,
            self.extra_samples,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!("; errors: {}", self.errors.join("; "))
            }
        )
    }
}

fn get_json(agent: &ureq::Agent, base: &str, path: &str) -> Result<serde_json::Value, String> {
    let url = format!("{base}{path}");
    let mut r = agent.get(&url).call().map_err(|e| format!("{path}: {e}"))?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(512 << 20)
        .read_to_string()
        .map_err(|e| format!("{path}: reading the answer: {e}"))?;
    if status != 200 {
        return Err(format!(
            "{path}: {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    serde_json::from_str(&body).map_err(|e| format!("{path}: not JSON: {e}"))
}

fn selector(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Checks the ledgers against the target at `base` (`http://127.0.0.1:PORT`). `run` is the
/// run label's value; `first_ms` is no later than the oldest sample written.
pub fn check(base: &str, run: &str, first_ms: i64, ledgers: &[Ledger]) -> Verification {
    let agent: ureq::Agent = crate::http_client(Duration::from_secs(60)).build().into();
    let mut v = Verification {
        series_expected: ledgers.iter().map(|l| l.series).sum(),
        samples_acknowledged: ledgers.iter().map(|l| l.samples).sum(),
        ..Verification::default()
    };
    let last_ms = ledgers.iter().map(|l| l.last_ms).max().unwrap_or(first_ms);
    // A range that covers every sample written, in whole seconds.
    let range_s = ((last_ms - first_ms).max(0) / 1000) + 120;
    let time = format!("{:.3}", last_ms as f64 / 1000.0);
    let count = format!(
        "count(last_over_time({{run={}}}[{range_s}s]))",
        serde_json::Value::String(run.into())
    );
    match get_json(
        &agent,
        base,
        &format!("/api/v1/query?query={}&time={time}", encode(&count)),
    ) {
        Ok(j) => {
            let n = j["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            v.series_found = Some(n as u64);
        }
        Err(e) => v.errors.push(e),
    }
    for ledger in ledgers {
        for (labels, samples) in &ledger.kept {
            v.checked_series += 1;
            v.checked_samples += samples.len() as u64;
            let expr = format!("{}[{range_s}s]", selector(labels));
            let path = format!("/api/v1/query?query={}&time={time}", encode(&expr));
            let found = match get_json(&agent, base, &path) {
                Ok(j) => j,
                Err(e) => {
                    v.errors.push(e);
                    continue;
                }
            };
            let mut got: Vec<(i64, u64)> = Vec::new();
            if let Some(series) = found["data"]["result"].as_array() {
                for s in series {
                    for point in s["values"].as_array().into_iter().flatten() {
                        let t = point[0].as_f64().unwrap_or(f64::NAN);
                        let value = point[1].as_str().and_then(|x| x.parse::<f64>().ok());
                        if let Some(value) = value {
                            got.push(((t * 1000.0).round() as i64, value.to_bits()));
                        }
                    }
                }
            }
            got.sort_unstable();
            let mut matched = 0u64;
            for &(t, value) in samples {
                match got.binary_search_by_key(&t, |p| p.0) {
                    Ok(i) => {
                        matched += 1;
                        if got[i].1 != value.to_bits() {
                            v.wrong_values += 1;
                        }
                    }
                    Err(_) => v.missing_samples += 1,
                }
            }
            v.extra_samples += (got.len() as u64).saturating_sub(matched);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_quote_values_as_promql_strings() {
        let labels = vec![
            ("__name__".to_owned(), "m".to_owned()),
            ("path".to_owned(), r#"/a"b\c"#.to_owned()),
        ];
        assert_eq!(selector(&labels), r#"{__name__="m",path="/a\"b\\c"}"#);
    }

    #[test]
    fn a_check_passes_only_when_nothing_is_missing() {
        let mut v = Verification {
            series_expected: 3,
            series_found: Some(3),
            ..Verification::default()
        };
        assert!(v.passed());
        v.missing_samples = 1;
        assert!(!v.passed());
        assert!(v.summary().contains("FAILED"));
        v.missing_samples = 0;
        v.series_found = Some(2);
        assert!(!v.passed());
    }
}
