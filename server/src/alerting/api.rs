//! `/api/v1/rules` and `/api/v1/alerts` in the shape of Prometheus's HTTP API, so Grafana's
//! alert list and scripts written against Prometheus read Strata unchanged.
//!
//! `/api/v1/rules` takes Prometheus's filters: `type=alert|record`, `rule_name[]`,
//! `rule_group[]`, `file[]` and `exclude_alerts=true`. Groups that lose every rule to a filter
//! are left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::group::Group;
use super::rule::{Alert, AlertState, Rule, Status};
use crate::prom::api::params::Params;
use crate::prom::error::ApiError;
use crate::prom::json::{LabelsJson, success};
use crate::state::AppState;

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules))
        .route("/api/v1/alerts", get(alerts).post(alerts))
}

/// Milliseconds as Go writes a time in JSON (RFC 3339, fraction without trailing zeros); Go's
/// zero time when never.
pub fn rfc3339(ms: Option<i64>) -> String {
    let Some(t) = ms.and_then(chrono::DateTime::from_timestamp_millis) else {
        return "0001-01-01T00:00:00Z".to_owned();
    };
    let mut frac = format!(".{:03}", ms.unwrap_or(0).rem_euclid(1000));
    while frac.ends_with('0') {
        frac.pop();
    }
    if frac == "." {
        frac.clear();
    }
    format!("{}{frac}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// An alert's value as Prometheus writes it (`%e` with the shortest mantissa).
fn value_text(v: f64) -> String {
    super::template::shortest_exp(v, false)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertJson<'a> {
    labels: LabelsJson<'a>,
    annotations: BTreeMap<&'a str, &'a str>,
    state: &'static str,
    active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<String>,
    value: String,
}

fn alert_json(a: &Alert) -> AlertJson<'_> {
    AlertJson {
        labels: LabelsJson(&a.labels),
        annotations: a
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        state: a.state.as_str(),
        active_at: rfc3339(Some(a.active_at)),
        keep_firing_since: a.keep_firing_since.map(|t| rfc3339(Some(t))),
        value: value_text(a.value),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    name: &'a str,
    query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<f64>,
    labels: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<Vec<AlertJson<'a>>>,
    health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    evaluation_time: f64,
    last_evaluation: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupJson<'a> {
    name: &'a str,
    file: &'a str,
    rules: Vec<RuleJson<'a>>,
    interval: f64,
    limit: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_offset: Option<f64>,
    evaluation_time: f64,
    last_evaluation: String,
}

fn pairs(p: &[(String, String)]) -> BTreeMap<&str, &str> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn common(status: &Status) -> (&'static str, Option<&str>, f64, String) {
    (
        status.health.as_str(),
        status.last_error.as_deref(),
        status.evaluation_time.as_secs_f64(),
        rfc3339(status.last_evaluation_ms),
    )
}

/// Which rules a request asks for.
struct Filter {
    alerts: bool,
    records: bool,
    names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
    exclude_alerts: bool,
}

impl Filter {
    fn from(params: &Params) -> Result<Filter, ApiError> {
        let (alerts, records) = match params.get("type") {
            None | Some("") => (true, true),
            Some("alert") => (true, false),
            Some("record") => (false, true),
            Some(other) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"type\": not supported value {other:?}"
                )));
            }
        };
        let exclude_alerts = match params.get("exclude_alerts") {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"exclude_alerts\": {other:?} is not a boolean"
                )));
            }
        };
        let all = |name: &str| params.all(name).into_iter().map(str::to_owned).collect();
        Ok(Filter {
            alerts,
            records,
            names: all("rule_name[]"),
            groups: all("rule_group[]"),
            files: all("file[]"),
            exclude_alerts,
        })
    }

    fn group(&self, g: &Group) -> bool {
        (self.groups.is_empty() || self.groups.contains(&g.name))
            && (self.files.is_empty() || self.files.contains(&g.file))
    }

    fn rule(&self, r: &Rule) -> bool {
        let kind = match r {
            Rule::Alerting(_) => self.alerts,
            Rule::Recording(_) => self.records,
        };
        kind && (self.names.is_empty() || self.names.iter().any(|n| n == r.name()))
    }
}

async fn rules(State(state): State<Arc<AppState>>, params: Params) -> Response {
    let filter = match Filter::from(&params) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let groups = state.alerting.groups();
    let guards: Vec<_> = groups
        .iter()
        .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let mut out = Vec::new();
    for g in guards.iter().filter(|g| filter.group(g)) {
        let mut rules = Vec::new();
        for rule in g.rules.iter().filter(|r| filter.rule(r)) {
            let (health, last_error, evaluation_time, last_evaluation) = common(rule.status());
            rules.push(match rule {
                Rule::Alerting(r) => {
                    let state = r
                        .active
                        .values()
                        .map(|a| a.state)
                        .max_by_key(|s| match s {
                            AlertState::Inactive => 0,
                            AlertState::Pending => 1,
                            AlertState::Firing => 2,
                        })
                        .unwrap_or(AlertState::Inactive);
                    RuleJson {
                        state: Some(state.as_str()),
                        name: &r.name,
                        query: &r.expr_text,
                        duration: Some(r.hold.as_secs_f64()),
                        keep_firing_for: Some(r.keep_firing_for.as_secs_f64()),
                        labels: pairs(&r.label_texts),
                        annotations: Some(pairs(&r.annotation_texts)),
                        alerts: (!filter.exclude_alerts).then(|| {
                            r.active
                                .values()
                                .filter(|a| a.state != AlertState::Inactive)
                                .map(alert_json)
                                .collect()
                        }),
                        health,
                        last_error,
                        evaluation_time,
                        last_evaluation,
                        kind: "alerting",
                    }
                }
                Rule::Recording(r) => RuleJson {
                    state: None,
                    name: &r.name,
                    query: &r.expr_text,
                    duration: None,
                    keep_firing_for: None,
                    labels: pairs(&r.labels),
                    annotations: None,
                    alerts: None,
                    health,
                    last_error,
                    evaluation_time,
                    last_evaluation,
                    kind: "recording",
                },
            });
        }
        let filtered = !(filter.names.is_empty() && filter.alerts && filter.records);
        if rules.is_empty() && filtered {
            continue;
        }
        out.push(GroupJson {
            name: &g.name,
            file: &g.file,
            rules,
            interval: g.interval.as_secs_f64(),
            limit: g.limit,
            query_offset: (!g.query_offset.is_zero()).then(|| g.query_offset.as_secs_f64()),
            evaluation_time: g.stats.evaluation_time.as_secs_f64(),
            last_evaluation: rfc3339(g.stats.last_evaluation_ms),
        });
    }
    #[derive(Serialize)]
    struct Data<'a> {
        groups: Vec<GroupJson<'a>>,
    }
    success(Data { groups: out }, Vec::new())
}

async fn alerts(State(state): State<Arc<AppState>>) -> Response {
    let groups = state.alerting.groups();
    let guards: Vec<_> = groups
        .iter()
        .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let mut out = Vec::new();
    for g in &guards {
        for rule in &g.rules {
            if let Rule::Alerting(r) = rule {
                out.extend(
                    r.active
                        .values()
                        .filter(|a| a.state != AlertState::Inactive)
                        .map(alert_json),
                );
            }
        }
    }
    #[derive(Serialize)]
    struct Data<'a> {
        alerts: Vec<AlertJson<'a>>,
    }
    success(Data { alerts: out }, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_are_written_as_prometheus_writes_them() {
        assert_eq!(value_text(1.0), "1e+00");
        assert_eq!(value_text(0.25), "2.5e-01");
        assert_eq!(value_text(12345.0), "1.2345e+04");
        assert_eq!(value_text(f64::NAN), "NaN");
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(1_500)), "1970-01-01T00:00:01.5Z");
    }
}
