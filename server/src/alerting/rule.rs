//! One rule evaluated at one time: a recording rule's output series, an alerting rule's alert
//! states (Prometheus's state machine, with `for` and `keep_firing_for`) and its `ALERTS` and
//! `ALERTS_FOR_STATE` series.
//!
//! The query language is behind [`EvalContext::query`]: the rule asks for an instant vector
//! at a time and gets labelled values, so a second language (LogQL's metric queries) plugs in
//! as another [`RuleExpr`] variant without touching the state machine.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_engine::Db;
use strata_engine::labels::{Labels, METRIC_NAME};
use strata_engine::promql::{Engine, Query, Stop, Value};

use super::rulefile::{RuleKind, RuleQuery, RuleSpec};
use super::template::{Data, Host, Rows, Template};

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus does.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// What a rule queries with.
#[derive(Debug, Clone)]
pub enum RuleExpr {
    /// A PromQL expression.
    PromQL(Query),
    /// A LogQL metric query, evaluated over the log store.
    LogQL(strata_engine::logql::MetricExpr),
}

/// What evaluating a rule needs from the server.
pub struct EvalContext<'a> {
    pub db: &'a Db,
    pub engine: &'a Engine,
    /// The log store, for log rules (`None`: such rules fail with that reason).
    pub logs: Option<&'a strata_engine::logs::LogStore>,
    /// `global.external_labels`: seen by templates, added to notifications.
    pub external_labels: &'a [(String, String)],
    pub external_url: &'a str,
    /// How often a firing alert is sent again (Prometheus's `--rules.alert.resend-delay`).
    pub resend_delay_ms: i64,
}

impl std::fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

/// A series of a rule's output with its value.
pub type Output = Vec<(Labels, f64)>;

impl EvalContext<'_> {
    /// `expr` as an instant vector at `t` (a scalar becomes one series without labels).
    pub fn query(&self, expr: &RuleExpr, t: i64) -> Result<Output, String> {
        match expr {
            RuleExpr::PromQL(q) => {
                let out = self
                    .engine
                    .instant_query(self.db, q, t, &Stop::new())
                    .map_err(|e| e.to_string())?;
                match out.value {
                    Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
                    Value::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
                    other => Err(format!(
                        "rule result is not a vector or scalar: {}",
                        match other {
                            Value::Matrix(_) => "matrix",
                            Value::String { .. } => "string",
                            _ => "unknown",
                        }
                    )),
                }
            }
            RuleExpr::LogQL(m) => {
                let store = self.logs.ok_or("the log store is not open")?;
                let t_ns = t.saturating_mul(1_000_000);
                let series = strata_engine::logql::eval_metric(
                    store,
                    m,
                    t_ns,
                    t_ns,
                    0,
                    &strata_engine::logql::MetricLimits::default(),
                )
                .map_err(|e| e.to_string())?;
                series
                    .into_iter()
                    .filter_map(|s| s.points.last().map(|p| (s.labels, p.1)))
                    .map(|(labels, v)| {
                        Labels::new(&labels)
                            .map(|l| (l, v))
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            }
        }
    }
}

/// Templates' `query` runs at the evaluation time.
struct TemplateHost<'a, 'b> {
    ctx: &'a EvalContext<'b>,
    t: i64,
}

impl Host for TemplateHost<'_, '_> {
    fn query(&self, query: &str) -> Result<Rows, String> {
        let q = Query::parse(query).map_err(|e| e.to_string())?;
        let rows = self.ctx.query(&RuleExpr::PromQL(q), self.t)?;
        Ok(rows
            .into_iter()
            .map(|(labels, v)| (pairs(&labels), v))
            .collect())
    }

    fn external_url(&self) -> String {
        self.ctx.external_url.to_owned()
    }
}

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

/// A rule's health after its last evaluation, as `/api/v1/rules` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// What every rule reports about its last evaluation.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock time of the last evaluation, milliseconds.
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
}

/// A recording rule: writes its expression's result under its own metric name.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    pub name: String,
    pub expr_text: String,
    pub expr: RuleExpr,
    /// Group labels, then the rule's own (which win); an empty value removes a label.
    pub labels: Vec<(String, String)>,
    pub status: Status,
}

impl RecordingRule {
    /// The series to write at `t`, or why there are none.
    pub fn eval(&self, ctx: &EvalContext<'_>, t: i64, limit: usize) -> Result<Output, String> {
        let rows = ctx.query(&self.expr, t)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut seen = HashSet::with_capacity(rows.len());
        for (labels, v) in rows {
            let mut map: BTreeMap<String, String> = pairs(&labels).into_iter().collect();
            map.insert(METRIC_NAME.to_owned(), self.name.clone());
            for (k, val) in &self.labels {
                map.insert(k.clone(), val.clone());
            }
            let labels = Labels::new(map).map_err(|e| e.to_string())?;
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            out.push((labels, v));
        }
        if limit > 0 && out.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Resolved (kept a while so the resolution is sent).
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule: one output series of its expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The series' labels (without the metric name), the rule's labels and `alertname`.
    #[serde(with = "labels_serde")]
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    /// The value of the series at the last evaluation that returned it.
    #[serde(with = "float_json")]
    pub value: f64,
    /// When the condition started to hold (milliseconds).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// When the condition stopped holding while `keep_firing_for` keeps the alert firing.
    pub keep_firing_since: Option<i64>,
    /// When a notification last went out for it (the notifiers set it).
    pub last_sent_at: Option<i64>,
    /// Whether its resolution has been sent.
    #[serde(default)]
    pub resolved_sent: bool,
    /// Until when the last notification holds (its `endsAt` while firing): receivers resolve
    /// the alert by themselves if no newer notification comes.
    #[serde(default)]
    pub valid_until: Option<i64>,
}

impl Alert {
    /// Whether a notification is due at `ts`: never for pending alerts; for a resolved one
    /// once after it resolved; otherwise when none went out in the last `resend_delay_ms`.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(resolved) = self.resolved_at
            && self.last_sent_at.is_none_or(|sent| resolved > sent)
        {
            return true;
        }
        self.last_sent_at
            .is_none_or(|sent| sent + resend_delay_ms < ts)
    }
}

/// An alert as it goes out to Alertmanager or a chat receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The alert's labels with the external labels it does not set itself.
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    /// When it fired (milliseconds).
    pub starts_at: i64,
    /// When it resolved, or until when this notification holds.
    pub ends_at: i64,
    pub resolved: bool,
    /// A link to the expression in the UI.
    pub generator_url: String,
}

/// A float in JSON, which has no NaN or infinities: those are written as Prometheus spells
/// them (`"NaN"`, `"+Inf"`, `"-Inf"`); read back from those, a number, or null.
mod float_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("+Inf")
        } else {
            s.serialize_str("-Inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            serde_json::Value::String(s) => match s.as_str() {
                "+Inf" | "Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().unwrap_or(f64::NAN),
            },
            _ => f64::NAN,
        })
    }
}

mod labels_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use strata_engine::labels::Labels;

    pub fn serialize<S: Serializer>(labels: &Labels, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            labels
                .iter()
                .map(|l| (l.name().as_str(), l.value().as_str())),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Labels::new(map).map_err(serde::de::Error::custom)
    }
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub name: String,
    pub expr_text: String,
    pub expr: RuleExpr,
    pub hold: Duration,
    pub keep_firing_for: Duration,
    /// Group labels, then the rule's own (templates).
    pub labels: Vec<(String, Template)>,
    pub label_texts: Vec<(String, String)>,
    pub annotations: Vec<(String, Template)>,
    pub annotation_texts: Vec<(String, String)>,
    /// Alerts by their labels.
    pub active: BTreeMap<Labels, Alert>,
    pub status: Status,
}

impl AlertingRule {
    /// The alerts at `t` after this evaluation, and the `ALERTS` and `ALERTS_FOR_STATE`
    /// series to write.
    pub fn eval(&mut self, ctx: &EvalContext<'_>, t: i64, limit: usize) -> Result<Output, String> {
        let rows = ctx.query(&self.expr, t)?;
        let host = TemplateHost { ctx, t };
        let mut now: BTreeMap<Labels, (f64, Vec<(String, String)>)> = BTreeMap::new();
        for (series, v) in rows {
            let data = Data {
                labels: pairs(&series),
                external_labels: ctx.external_labels.to_vec(),
                external_url: ctx.external_url.to_owned(),
                value: v,
            };
            let mut map: BTreeMap<String, String> = pairs(&series)
                .into_iter()
                .filter(|(k, _)| k != METRIC_NAME)
                .collect();
            for (k, tmpl) in &self.labels {
                map.insert(k.clone(), tmpl.expand_or_error(&data, Some(&host)));
            }
            map.insert("alertname".into(), self.name.clone());
            let labels = Labels::new(map).map_err(|e| e.to_string())?;
            let annotations = self
                .annotations
                .iter()
                .map(|(k, tmpl)| (k.clone(), tmpl.expand_or_error(&data, Some(&host))))
                .collect();
            if now.insert(labels, (v, annotations)).is_some() {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
        }
        for (labels, (value, annotations)) in &now {
            match self.active.get_mut(labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = *value;
                    a.annotations.clone_from(annotations);
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: annotations.clone(),
                            state: AlertState::Pending,
                            value: *value,
                            active_at: t,
                            fired_at: None,
                            resolved_at: None,
                            keep_firing_since: None,
                            last_sent_at: None,
                            resolved_sent: false,
                            valid_until: None,
                        },
                    );
                }
            }
        }
        let hold = self.hold.as_millis() as i64;
        let keep = self.keep_firing_for.as_millis() as i64;
        let mut gone = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if !now.contains_key(labels) {
                if a.state == AlertState::Firing && keep > 0 {
                    let since = *a.keep_firing_since.get_or_insert(t);
                    if t - since < keep {
                        continue;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| t - r > RESOLVED_RETENTION_MS)
                {
                    gone.push(labels.clone());
                }
                if a.state != AlertState::Inactive {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(t);
                    a.keep_firing_since = None;
                }
                continue;
            }
            a.keep_firing_since = None;
            if a.state == AlertState::Pending && t - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(t);
            }
        }
        for labels in gone {
            self.active.remove(&labels);
        }
        let live = self
            .active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
            .count();
        if limit > 0 && live > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {live} alerts"));
        }
        let mut out = Vec::with_capacity(live * 2);
        for a in self.active.values() {
            if a.state == AlertState::Inactive {
                continue;
            }
            let with = |extra: &[(&str, &str)], name: &str| {
                let mut map: BTreeMap<String, String> = pairs(&a.labels).into_iter().collect();
                map.insert(METRIC_NAME.into(), name.into());
                for (k, v) in extra {
                    map.insert((*k).into(), (*v).into());
                }
                Labels::new(map).unwrap_or_default()
            };
            out.push((with(&[("alertstate", a.state.as_str())], "ALERTS"), 1.0));
            out.push((with(&[], "ALERTS_FOR_STATE"), (a.active_at / 1000) as f64));
        }
        Ok(out)
    }

    /// The notifications due at `ts`, the alerts they carry marked as sent (as Prometheus
    /// does when it hands them to its notifier).
    pub fn due(&mut self, ctx: &EvalContext<'_>, ts: i64, interval_ms: i64) -> Vec<Notification> {
        let resend = ctx.resend_delay_ms;
        let hold_for = 4 * resend.max(interval_ms);
        let link = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            ctx.external_url,
            super::template::query_escape(&self.expr_text)
        );
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(ts, resend) {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = Some(ts + hold_for);
            if a.resolved_at.is_some() {
                a.resolved_sent = true;
            }
            let mut labels: BTreeMap<String, String> =
                ctx.external_labels.iter().cloned().collect();
            labels.extend(pairs(&a.labels));
            out.push(Notification {
                labels: Labels::new(labels).unwrap_or_else(|_| a.labels.clone()),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at.unwrap_or(a.active_at),
                ends_at: a.resolved_at.unwrap_or(ts + hold_for),
                resolved: a.resolved_at.is_some(),
                generator_url: link.clone(),
            });
        }
        out
    }
}

/// A rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    /// The rule from its checked specification, with its group's labels (the rule's own win).
    pub fn new(spec: &RuleSpec, group_labels: &[(String, String)]) -> Result<Rule, String> {
        let mut labels: BTreeMap<String, String> = group_labels.iter().cloned().collect();
        for (k, v) in &spec.labels {
            labels.insert(k.clone(), v.clone());
        }
        let labels: Vec<(String, String)> = labels.into_iter().collect();
        let expr = match &spec.query {
            RuleQuery::PromQL(q) => RuleExpr::PromQL(q.clone()),
            RuleQuery::LogQL(m) => RuleExpr::LogQL(m.clone()),
        };
        Ok(match &spec.kind {
            RuleKind::Record => Rule::Recording(RecordingRule {
                name: spec.name.clone(),
                expr_text: spec.expr.clone(),
                expr,
                labels,
                status: Status::default(),
            }),
            RuleKind::Alert {
                hold,
                keep_firing_for,
                annotations,
            } => {
                let name = format!("__alert_{}", spec.name);
                let parse = |fields: &[(String, String)]| {
                    fields
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), Template::parse(&name, v)?)))
                        .collect::<Result<Vec<_>, String>>()
                };
                Rule::Alerting(AlertingRule {
                    name: spec.name.clone(),
                    expr_text: spec.expr.clone(),
                    expr,
                    hold: *hold,
                    keep_firing_for: *keep_firing_for,
                    labels: parse(&labels)?,
                    label_texts: labels,
                    annotations: parse(annotations)?,
                    annotation_texts: annotations.clone(),
                    active: BTreeMap::new(),
                    status: Status::default(),
                })
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn status(&self) -> &Status {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub fn status_mut(&mut self) -> &mut Status {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }

    /// What identifies a rule across a reload (its state carries over when this is equal).
    pub fn identity(&self) -> String {
        match self {
            Rule::Recording(r) => format!("record\0{}\0{}\0{:?}", r.name, r.expr_text, r.labels),
            Rule::Alerting(r) => format!("alert\0{}\0{}\0{:?}", r.name, r.expr_text, r.label_texts),
        }
    }

    /// Evaluates at `t`.
    pub fn eval(&mut self, ctx: &EvalContext<'_>, t: i64, limit: usize) -> Result<Output, String> {
        match self {
            Rule::Recording(r) => r.eval(ctx, t, limit),
            Rule::Alerting(r) => r.eval(ctx, t, limit),
        }
    }
}
