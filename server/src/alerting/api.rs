//! `/api/v1/rules` and `/api/v1/alerts` in the shape of Prometheus's HTTP API, so Grafana's
//! alert list and scripts written against Prometheus read Strata unchanged; and the silences
//! of the built-in notifiers in the shape of Alertmanager's v2 API (`/api/v2/silences`,
//! `/api/v2/silence/{id}`).
//!
//! `/api/v1/rules` takes Prometheus's filters: `type=alert|record`, `rule_name[]`,
//! `rule_group[]`, `file[]` and `exclude_alerts=true`. Groups that lose every rule to a filter
//! are left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::group::Group;
use super::rule::{Alert, AlertState, Rule, Status};
use super::silences::{MatcherJson, PostableSilence, Silence};
use super::time::{rfc3339, wall_ms};
use crate::prom::api::params::Params;
use crate::prom::error::ApiError;
use crate::prom::json::{LabelsJson, success};
use crate::state::AppState;

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/rules", get(rules).post(rules))
        .route("/api/v1/alerts", get(alerts).post(alerts))
        .route("/api/v2/silences", post(create_silence).get(list_silences))
        .route(
            "/api/v2/silence/{id}",
            get(show_silence).delete(expire_silence),
        )
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence<'a> {
    id: &'a str,
    status: SilenceStatus,
    updated_at: String,
    matchers: &'a [MatcherJson],
    starts_at: String,
    ends_at: String,
    created_by: &'a str,
    comment: &'a str,
}

#[derive(Serialize)]
struct SilenceStatus {
    state: &'static str,
}

fn gettable(s: &Silence, now: i64) -> GettableSilence<'_> {
    GettableSilence {
        id: &s.id,
        status: SilenceStatus {
            state: s.state(now),
        },
        updated_at: rfc3339(Some(s.updated_at)),
        matchers: &s.matchers,
        starts_at: rfc3339(Some(s.starts_at)),
        ends_at: rfc3339(Some(s.ends_at)),
        created_by: &s.created_by,
        comment: &s.comment,
    }
}

async fn create_silence(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let parsed: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("invalid silence: {e}")).into_response();
        }
    };
    let silences = Arc::clone(&state.alerting.silences);
    match tokio::task::spawn_blocking(move || silences.set(parsed)).await {
        Ok(Ok(id)) => axum::Json(serde_json::json!({ "silenceID": id })).into_response(),
        Ok(Err(e)) if e.starts_with("saving") => {
            (StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
        Ok(Err(e)) if e.ends_with("not found") => (StatusCode::NOT_FOUND, e).into_response(),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, e).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn list_silences(State(state): State<Arc<AppState>>) -> Response {
    let now = wall_ms();
    let all = state.alerting.silences.list();
    let body: Vec<GettableSilence<'_>> = all.iter().map(|s| gettable(s, now)).collect();
    axum::Json(body).into_response()
}

async fn show_silence(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let now = wall_ms();
    let all = state.alerting.silences.list();
    match all.iter().find(|s| s.id == id) {
        Some(s) => axum::Json(gettable(s, now)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("silence {id} not found")).into_response(),
    }
}

async fn expire_silence(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let silences = Arc::clone(&state.alerting.silences);
    let target = id.clone();
    match tokio::task::spawn_blocking(move || silences.expire(&target)).await {
        Ok(Ok(true)) => StatusCode::OK.into_response(),
        Ok(Ok(false)) => (StatusCode::NOT_FOUND, format!("silence {id} not found")).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
    }
}
