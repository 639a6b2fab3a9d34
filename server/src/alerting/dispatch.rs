//! The built-in notifiers: alerts routed to Slack incoming webhooks or generic webhooks with
//! Alertmanager's grouping, timing and de-duplication, so a team needs no Alertmanager.
//!
//! Alerts arrive as the rules send them to Alertmanager (firing ones again every resend
//! delay, resolved ones when they resolve). Each goes to the routes of the `notifiers:`
//! routing tree it matches ([`super::route`]), into the aggregation group of its `group_by`
//! labels. A new group is notified after `group_wait`; then the group is looked at every
//! `group_interval`, and notified when it has a firing alert it did not notify yet, a
//! resolved alert (`send_resolved`), or when `repeat_interval` has passed since the last
//! message. Silenced alerts are left out. What was sent per group (the notification log) is
//! written to `rules/notifications.json` after each message, so a restart sends no duplicate
//! before `repeat_interval` and loses no resolution. Delivery is at least once: a message is
//! recorded once the receiver accepted it, so a crash in the moment between the two sends it
//! again after the restart.
//!
//! Sending: a 429 is tried again after its `Retry-After`, a 5xx or a network error after a
//! growing pause (1 s doubling, at most `group_interval`); another 4xx is logged, counted, and
//! tried again only at the next `group_interval`. One thread sends, one message at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_engine::labels::Labels;

use super::route::{Notifiers, Receiver, group_labels, matching};
use super::rule::Notification;
use super::silences::Silences;
use super::template::{Template, Value};
use super::time::{rfc3339, wall_ms, write_json_durably};
use super::worker::Worker;

/// What was last sent for a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct LogEntry {
    firing: Vec<u64>,
    resolved: Vec<u64>,
    sent_at: i64,
}

#[derive(Debug)]
struct AggGroup {
    receiver: String,
    route: Vec<usize>,
    labels: BTreeMap<String, String>,
    members: BTreeSet<Labels>,
    next_flush: i64,
    /// Failed attempts in a row (for the pause before the next).
    failures: u32,
}

/// Per receiver counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    config: Option<Notifiers>,
    external_url: String,
    alerts: HashMap<Labels, Notification>,
    groups: BTreeMap<String, AggGroup>,
    log: BTreeMap<String, LogEntry>,
    log_path: Option<PathBuf>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    silences: Arc<Silences>,
    counters: Mutex<BTreeMap<String, Arc<ReceiverCounters>>>,
}

/// The notifiers and their thread.
pub struct Dispatcher {
    shared: Arc<Shared>,
    thread: Worker,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// What `/metrics` shows of one receiver.
#[derive(Debug, Clone, Default)]
pub struct ReceiverFigures {
    pub receiver: String,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Aggregation groups waiting for their next look.
    pub queued: usize,
}

/// A message ready to go.
struct Outgoing {
    key: String,
    receiver: Receiver,
    body: Vec<u8>,
    entry: LogEntry,
    /// Resolved members to forget once the message is out.
    resolved: Vec<Labels>,
}

enum Sent {
    Ok,
    /// Try again: after the receiver's `Retry-After` (milliseconds), or after a growing pause.
    Retry(Option<i64>),
    /// Do not try again before the next `group_interval`.
    Failed,
}

fn hash_labels(labels: &Labels) -> u64 {
    let mut h = DefaultHasher::new();
    for l in labels.iter() {
        l.name().as_str().hash(&mut h);
        l.value().as_str().hash(&mut h);
    }
    h.finish()
}

fn is_subset(a: &[u64], b: &[u64]) -> bool {
    a.iter().all(|x| b.binary_search(x).is_ok())
}

impl Dispatcher {
    /// A dispatcher checking alerts against `silences`.
    pub fn new(silences: Arc<Silences>) -> Dispatcher {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            silences,
            counters: Mutex::new(BTreeMap::new()),
        });
        let worker = Arc::clone(&shared);
        let thread = Worker::spawn("notifiers", move || run(&worker));
        Dispatcher { shared, thread }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the notification log kept in `data_dir` and keeps it there from now on.
    pub fn open(&self, data_dir: &Path) {
        let path = data_dir.join("rules").join("notifications.json");
        let mut state = self.lock();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(log) => state.log = log,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "notification log not restored: the file does not parse")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "notification log not restored")
            }
        }
        state.log_path = Some(path);
    }

    /// Sets the receivers and routes (on start and reload). Groups of receivers that are gone
    /// are dropped; the rest keep their timers.
    pub fn configure(&self, config: Option<Notifiers>, external_url: &str) {
        let mut state = self.lock();
        if let Some(c) = &config {
            // Groups whose receiver or route is gone go; the rest keep their timers.
            state.groups.retain(|_, g| {
                c.receiver(&g.receiver).is_some()
                    && route_at(&c.route, &g.route).is_some_and(|r| r.receiver == g.receiver)
            });
            let mut counters = self
                .shared
                .counters
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for r in &c.receivers {
                counters.entry(r.name().to_owned()).or_default();
            }
        } else {
            state.groups.clear();
        }
        state.config = config;
        state.external_url = external_url.to_owned();
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Takes the alerts the rules send.
    pub fn notify(&self, alerts: &[Notification]) {
        if alerts.is_empty() {
            return;
        }
        let now = wall_ms();
        let mut state = self.lock();
        let Some(config) = state.config.clone() else {
            return;
        };
        for alert in alerts {
            for (path, route) in matching(&config.route, &alert.labels) {
                let labels = group_labels(route, &alert.labels);
                let key = format!("{}/{path:?}/{labels:?}", route.receiver);
                let group = state.groups.entry(key).or_insert_with(|| AggGroup {
                    receiver: route.receiver.clone(),
                    route: path.clone(),
                    labels,
                    members: BTreeSet::new(),
                    next_flush: now + route.group_wait.as_millis() as i64,
                    failures: 0,
                });
                group.members.insert(alert.labels.clone());
            }
            state.alerts.insert(alert.labels.clone(), alert.clone());
        }
        drop(state);
        self.shared.wake.notify_one();
    }

    pub fn figures(&self) -> Vec<ReceiverFigures> {
        let state = self.lock();
        let counters = self
            .shared
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counters
            .iter()
            .map(|(name, c)| ReceiverFigures {
                receiver: name.clone(),
                sent: c.sent.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                queued: state
                    .groups
                    .values()
                    .filter(|g| &g.receiver == name)
                    .count(),
            })
            .collect()
    }

    /// Stops the thread.
    pub fn shutdown(&self) {
        self.lock().stop = true;
        self.shared.wake.notify_all();
        self.thread.join();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn counters(shared: &Shared, receiver: &str) -> Arc<ReceiverCounters> {
    Arc::clone(
        shared
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(receiver.to_owned())
            .or_default(),
    )
}

fn run(shared: &Shared) {
    loop {
        let now = wall_ms();
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.stop {
            return;
        }
        let due: Option<String> = state
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .min_by_key(|(_, g)| g.next_flush)
            .map(|(k, _)| k.clone());
        let Some(key) = due else {
            let wait = state
                .groups
                .values()
                .map(|g| g.next_flush - now)
                .min()
                .map_or(Duration::from_secs(3600), |ms| {
                    Duration::from_millis(ms.max(1) as u64)
                });
            let _ = shared
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let outgoing = prepare(&mut state, &shared.silences, &key, now);
        let Some(out) = outgoing else { continue };
        let interval = state
            .config
            .as_ref()
            .and_then(|c| route_at(&c.route, &state.groups[&key].route))
            .map_or(300_000, |r| r.group_interval.as_millis() as i64);
        drop(state);
        let counters = counters(shared, out.receiver.name());
        let result = send(&out.receiver, &out.body);
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = wall_ms();
        match result {
            Sent::Ok => {
                state.log.insert(out.key.clone(), out.entry);
                if let Some(g) = state.groups.get_mut(&out.key) {
                    g.failures = 0;
                    g.next_flush = now + interval;
                    for r in &out.resolved {
                        g.members.remove(r);
                    }
                }
                forget_unused(&mut state, &out.resolved);
                if let Some(path) = state.log_path.clone()
                    && let Err(e) = write_json_durably(&path, &state.log)
                {
                    tracing::warn!(path = %path.display(), error = %e, "notification log not saved");
                }
                // Counted once recorded: a crash before this line may send the message again.
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Sent::Retry(after) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(g) = state.groups.get_mut(&out.key) {
                    let pause = after.unwrap_or(1000 << g.failures.min(10));
                    g.failures += 1;
                    g.next_flush = now + pause.min(interval);
                }
            }
            Sent::Failed => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(g) = state.groups.get_mut(&out.key) {
                    g.next_flush = now + interval;
                }
            }
        }
    }
}

fn route_at<'a>(root: &'a super::route::Route, path: &[usize]) -> Option<&'a super::route::Route> {
    let mut node = root;
    for &i in path {
        node = node.routes.get(i)?;
    }
    Some(node)
}

/// Drops alerts no group holds any more.
fn forget_unused(state: &mut State, candidates: &[Labels]) {
    for labels in candidates {
        if !state.groups.values().any(|g| g.members.contains(labels)) {
            state.alerts.remove(labels);
        }
    }
}

/// Decides whether group `key` needs a message now; returns it, or updates the group's timer.
fn prepare(state: &mut State, silences: &Silences, key: &str, now: i64) -> Option<Outgoing> {
    let config = state.config.clone()?;
    let (receiver_name, route_path, group_labels_map, members) = {
        let g = state.groups.get(key)?;
        (
            g.receiver.clone(),
            g.route.clone(),
            g.labels.clone(),
            g.members.clone(),
        )
    };
    let route = route_at(&config.route, &route_path)?.clone();
    let receiver = config.receiver(&receiver_name)?.clone();
    let mut firing = Vec::new();
    let mut resolved = Vec::new();
    let mut ended = Vec::new();
    for labels in &members {
        let Some(a) = state.alerts.get(labels) else {
            ended.push(labels.clone());
            continue;
        };
        let is_resolved = a.resolved || a.ends_at <= now;
        if silences.silenced(labels, now) {
            if is_resolved {
                ended.push(labels.clone());
            }
            continue;
        }
        if is_resolved {
            resolved.push(a.clone());
        } else {
            firing.push(a.clone());
        }
    }
    let hashes = |list: &[Notification]| {
        let mut h: Vec<u64> = list.iter().map(|a| hash_labels(&a.labels)).collect();
        h.sort_unstable();
        h
    };
    let (firing_h, resolved_h) = (hashes(&firing), hashes(&resolved));
    let entry = state.log.get(key).cloned();
    let send_resolved = receiver.send_resolved();
    let needed = match &entry {
        _ if firing.is_empty() && resolved.is_empty() => false,
        None => !firing.is_empty(),
        Some(e) => {
            if !is_subset(&firing_h, &e.firing) {
                true
            } else if firing.is_empty() {
                send_resolved && !e.firing.is_empty()
            } else if send_resolved && !is_subset(&resolved_h, &e.resolved) {
                true
            } else {
                now - e.sent_at >= route.repeat_interval.as_millis() as i64
            }
        }
    };
    let resolved_labels: Vec<Labels> = resolved.iter().map(|a| a.labels.clone()).collect();
    let interval = route.group_interval.as_millis() as i64;
    if !needed {
        // Nothing to say: resolved alerts are forgotten, the group looked at again later (or
        // dropped once it holds nothing).
        ended.extend(resolved_labels);
        if let Some(g) = state.groups.get_mut(key) {
            for l in &ended {
                g.members.remove(l);
            }
            g.next_flush = now + interval;
            if g.members.is_empty() {
                state.groups.remove(key);
            }
        }
        forget_unused(state, &ended);
        return None;
    }
    if let Some(g) = state.groups.get_mut(key) {
        for l in &ended {
            g.members.remove(l);
        }
    }
    let mut shown = firing.clone();
    if send_resolved {
        shown.extend(resolved.iter().cloned());
    }
    let body = match &receiver {
        Receiver::Slack {
            channel,
            username,
            title,
            text,
            ..
        } => slack_body(
            &receiver_name,
            &shown,
            &group_labels_map,
            &state.external_url,
            now,
            (channel.as_deref(), username.as_deref(), title, text),
        ),
        Receiver::Webhook { .. } => webhook_body(
            &receiver_name,
            key,
            &shown,
            &group_labels_map,
            &state.external_url,
            now,
        ),
    };
    Some(Outgoing {
        key: key.to_owned(),
        receiver,
        body,
        entry: LogEntry {
            firing: firing_h,
            resolved: resolved_h,
            sent_at: now,
        },
        resolved: resolved_labels,
    })
}

fn status_of(alerts: &[Notification], now: i64) -> &'static str {
    if alerts.iter().any(|a| !a.resolved && a.ends_at > now) {
        "firing"
    } else {
        "resolved"
    }
}

/// Labels every alert shares (name and value).
fn common(maps: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = maps.split_first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|m| m.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn label_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

fn map_value(m: &BTreeMap<String, String>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
            .collect(),
    )
}

/// The data of a notification text, as Alertmanager's templates see it.
fn template_data(
    receiver: &str,
    alerts: &[Notification],
    group: &BTreeMap<String, String>,
    external_url: &str,
    now: i64,
) -> Value {
    let labels: Vec<BTreeMap<String, String>> =
        alerts.iter().map(|a| label_map(&a.labels)).collect();
    let annotations: Vec<BTreeMap<String, String>> = alerts
        .iter()
        .map(|a| a.annotations.iter().cloned().collect())
        .collect();
    let list = alerts
        .iter()
        .zip(labels.iter().zip(&annotations))
        .map(|(a, (l, an))| {
            Value::Record(vec![
                (
                    "Status",
                    Value::Str(
                        if !a.resolved && a.ends_at > now {
                            "firing"
                        } else {
                            "resolved"
                        }
                        .into(),
                    ),
                ),
                ("Labels", map_value(l)),
                ("Annotations", map_value(an)),
                ("StartsAt", Value::Str(rfc3339(Some(a.starts_at)))),
                ("EndsAt", Value::Str(rfc3339(Some(a.ends_at)))),
                ("GeneratorURL", Value::Str(a.generator_url.clone())),
                (
                    "Fingerprint",
                    Value::Str(format!("{:016x}", hash_labels(&a.labels))),
                ),
            ])
        })
        .collect();
    Value::Record(vec![
        ("Receiver", Value::Str(receiver.to_owned())),
        ("Status", Value::Str(status_of(alerts, now).into())),
        ("Alerts", Value::List(list)),
        ("GroupLabels", map_value(group)),
        ("CommonLabels", map_value(&common(&labels))),
        ("CommonAnnotations", map_value(&common(&annotations))),
        ("ExternalURL", Value::Str(external_url.to_owned())),
    ])
}

/// Slack's escaping of `&`, `<` and `>` in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn expand(receiver: &str, text: &str, data: &Value) -> String {
    match Template::parse_notification(receiver, text) {
        Ok(t) => t
            .expand_dot(data.clone())
            .unwrap_or_else(|e| format!("<error expanding template: {e}>")),
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

fn slack_body(
    receiver: &str,
    alerts: &[Notification],
    group: &BTreeMap<String, String>,
    external_url: &str,
    now: i64,
    (channel, username, title, text): (Option<&str>, Option<&str>, &str, &str),
) -> Vec<u8> {
    let data = template_data(receiver, alerts, group, external_url, now);
    let title = slack_escape(expand(receiver, title, &data).trim());
    let text = slack_escape(expand(receiver, text, &data).trim());
    let firing = status_of(alerts, now) == "firing";
    let mut body = serde_json::json!({
        "text": title,
        "attachments": [{
            "color": if firing { "danger" } else { "good" },
            "title": title,
            "title_link": external_url,
            "text": text,
            "fallback": title,
            "mrkdwn_in": ["text"],
        }],
    });
    if let Some(c) = channel {
        body["channel"] = serde_json::Value::from(c);
    }
    if let Some(u) = username {
        body["username"] = serde_json::Value::from(u);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Alertmanager's webhook payload (version 4).
fn webhook_body(
    receiver: &str,
    key: &str,
    alerts: &[Notification],
    group: &BTreeMap<String, String>,
    external_url: &str,
    now: i64,
) -> Vec<u8> {
    let labels: Vec<BTreeMap<String, String>> =
        alerts.iter().map(|a| label_map(&a.labels)).collect();
    let annotations: Vec<BTreeMap<String, String>> = alerts
        .iter()
        .map(|a| a.annotations.iter().cloned().collect())
        .collect();
    let list: Vec<serde_json::Value> = alerts
        .iter()
        .zip(labels.iter().zip(&annotations))
        .map(|(a, (l, an))| {
            serde_json::json!({
                "status": if !a.resolved && a.ends_at > now { "firing" } else { "resolved" },
                "labels": l,
                "annotations": an,
                "startsAt": rfc3339(Some(a.starts_at)),
                "endsAt": if a.resolved || a.ends_at <= now { rfc3339(Some(a.ends_at)) } else { "0001-01-01T00:00:00Z".to_owned() },
                "generatorURL": a.generator_url,
                "fingerprint": format!("{:016x}", hash_labels(&a.labels)),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": status_of(alerts, now),
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": common(&labels),
        "commonAnnotations": common(&annotations),
        "externalURL": external_url,
        "alerts": list,
    }))
    .unwrap_or_default()
}

/// Seconds of a `Retry-After` header (a number of seconds; a date reads as one second).
fn retry_after_ms(value: Option<&str>) -> i64 {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(1000, |s| (s * 1000.0) as i64)
}

fn send(receiver: &Receiver, body: &[u8]) -> Sent {
    let url = match receiver {
        Receiver::Slack { url, .. } | Receiver::Webhook { url, .. } => url,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("Strata/", env!("CARGO_PKG_VERSION")))
        .send(body);
    let name = receiver.name();
    match response {
        Err(e) => {
            tracing::warn!(receiver = name, error = %e, "sending a notification failed; trying again");
            Sent::Retry(None)
        }
        Ok(mut r) => {
            let status = r.status().as_u16();
            match status {
                200..=299 => Sent::Ok,
                429 => {
                    let after = retry_after_ms(
                        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                    );
                    tracing::warn!(
                        receiver = name,
                        retry_after_ms = after,
                        "the receiver is rate limiting; trying again after Retry-After"
                    );
                    Sent::Retry(Some(after))
                }
                500..=599 => {
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    tracing::warn!(receiver = name, status, body = %text.trim(), "the receiver failed; trying again");
                    Sent::Retry(None)
                }
                _ => {
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    tracing::error!(receiver = name, status, body = %text.trim(), "the receiver refused the notification");
                    Sent::Failed
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::route::NotifiersFile;
    use std::sync::mpsc;
    use std::time::Instant;

    fn receiver(
        answers: Vec<(u16, Option<&'static str>)>,
    ) -> (String, mpsc::Receiver<(Instant, serde_json::Value)>) {
        let (base, raw) = strata_testkit::receiver::receiver(answers);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(r) = raw.recv() {
                if tx
                    .send((
                        r.at,
                        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
                    ))
                    .is_err()
                {
                    return;
                }
            }
        });
        (format!("{base}/hook"), rx)
    }

    fn config(kind: &str, url: &str, route: &str) -> Notifiers {
        let yaml = format!(
            "receivers:\n- name: r\n  {kind}: {{{url_key}: '{url}'}}\nroute: {route}\n",
            url_key = if kind == "slack" {
                "webhook_url"
            } else {
                "url"
            }
        );
        let file: NotifiersFile = serde_saphyr::from_str(&yaml).unwrap();
        Notifiers::from_file(&file).unwrap().unwrap()
    }

    fn alert(name: &str, instance: &str, resolved: bool) -> Notification {
        let now = wall_ms();
        Notification {
            labels: Labels::new([("alertname", name), ("instance", instance)]).unwrap(),
            annotations: vec![("summary".into(), format!("{instance} <is> down & out"))],
            starts_at: now - 60_000,
            ends_at: if resolved { now } else { now + 240_000 },
            resolved,
            generator_url: "http://strata.test/graph".into(),
        }
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_groups_alerts_go_out_in_one_message_after_group_wait() {
        let (url, rx) = receiver(vec![]);
        let d = Dispatcher::new(Arc::new(Silences::default()));
        d.configure(
            Some(config(
                "webhook",
                &url,
                "{receiver: r, group_by: [alertname], group_wait: 300ms}",
            )),
            "http://strata.test",
        );
        let start = Instant::now();
        d.notify(&[
            alert("Down", "a", false),
            alert("Down", "b", false),
            alert("Down", "c", false),
        ]);
        let (at, body) = rx.recv_timeout(WAIT).unwrap();
        assert!(
            at - start >= Duration::from_millis(300),
            "sent before group_wait"
        );
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "r");
        assert_eq!(
            body["groupLabels"],
            serde_json::json!({"alertname": "Down"})
        );
        assert_eq!(
            body["commonLabels"],
            serde_json::json!({"alertname": "Down"})
        );
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(3));
        assert_eq!(body["alerts"][0]["labels"]["instance"], "a");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "one message only"
        );
    }

    #[test]
    fn a_firing_group_is_repeated_after_repeat_interval_and_its_resolution_sent() {
        let (url, rx) = receiver(vec![]);
        let d = Dispatcher::new(Arc::new(Silences::default()));
        d.configure(
            Some(config(
                "webhook",
                &url,
                "{receiver: r, group_wait: 50ms, group_interval: 100ms, repeat_interval: 3s}",
            )),
            "",
        );
        d.notify(&[alert("Down", "a", false)]);
        let (first, _) = rx.recv_timeout(WAIT).unwrap();
        // The rules send the firing alert again (their resend): no message before 3 s.
        d.notify(&[alert("Down", "a", false)]);
        let (second, body) = rx.recv_timeout(WAIT).unwrap();
        assert!(
            second - first >= Duration::from_secs(3),
            "{:?}",
            second - first
        );
        assert_eq!(body["status"], "firing");
        // A new alert in the group goes out at the next group interval, not after 3 s.
        d.notify(&[alert("Down", "b", false)]);
        let (third, body) = rx.recv_timeout(WAIT).unwrap();
        assert!(
            third - second < Duration::from_millis(2500),
            "{:?}",
            third - second
        );
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(2));
        // Both resolve: one resolved message.
        d.notify(&[alert("Down", "a", true), alert("Down", "b", true)]);
        let (_, body) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["alerts"][0]["status"], "resolved");
        assert!(
            rx.recv_timeout(Duration::from_millis(400)).is_err(),
            "resolved once"
        );
    }

    #[test]
    fn a_429_is_tried_again_after_its_retry_after_and_a_5xx_again_soon() {
        let (url, rx) = receiver(vec![(429, Some("1")), (503, None)]);
        let d = Dispatcher::new(Arc::new(Silences::default()));
        d.configure(
            Some(config(
                "slack",
                &url,
                "{receiver: r, group_wait: 0s, group_interval: 1m}",
            )),
            "http://strata.test",
        );
        d.notify(&[alert("Down", "a", false)]);
        let (first, _) = rx.recv_timeout(WAIT).unwrap();
        let (second, _) = rx.recv_timeout(WAIT).unwrap();
        assert!(
            second - first >= Duration::from_secs(1),
            "Retry-After ignored: {:?}",
            second - first
        );
        let (third, body) = rx.recv_timeout(WAIT).unwrap();
        assert!(third - second < Duration::from_secs(5));
        // Slack's payload: text beside the attachment, escaped.
        assert_eq!(body["attachments"][0]["color"], "danger");
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("[FIRING:1] Down"),
            "{body}"
        );
        let text = body["attachments"][0]["text"].as_str().unwrap();
        assert_eq!(text, "*Down*: a &lt;is&gt; down &amp; out");
        // The counters move once the dispatcher has read the answer.
        let deadline = Instant::now() + WAIT;
        while d.figures()[0].sent == 0 {
            assert!(Instant::now() < deadline, "the message was not counted");
            std::thread::yield_now();
        }
        assert_eq!(d.figures()[0].failed, 2);
    }

    #[test]
    fn a_silenced_alert_sends_nothing_and_a_refused_message_is_counted() {
        let silences = Arc::new(Silences::default());
        let now = wall_ms();
        silences
            .set(
                serde_json::from_value(serde_json::json!({
                    "matchers": [{"name": "instance", "value": "a", "isRegex": false}],
                    "startsAt": rfc3339(Some(now - 1000)),
                    "endsAt": rfc3339(Some(now + 3_600_000)),
                    "createdBy": "t",
                    "comment": "c",
                }))
                .unwrap(),
            )
            .unwrap();
        let (url, rx) = receiver(vec![(400, None)]);
        let d = Dispatcher::new(silences);
        d.configure(
            Some(config(
                "webhook",
                &url,
                "{receiver: r, group_by: [instance], group_wait: 0s, group_interval: 1m}",
            )),
            "",
        );
        d.notify(&[alert("Down", "a", false)]);
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "silenced"
        );
        d.notify(&[alert("Down", "b", false)]);
        let (_, body) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(body["alerts"][0]["labels"]["instance"], "b");
        let deadline = Instant::now() + WAIT;
        while d.figures()[0].dropped == 0 {
            assert!(Instant::now() < deadline, "the refusal was not counted");
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_notification_log_survives_a_restart_so_nothing_is_sent_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (url, rx) = receiver(vec![]);
        let route = "{receiver: r, group_wait: 0s, group_interval: 100ms, repeat_interval: 1h}";
        let d = Dispatcher::new(Arc::new(Silences::default()));
        d.open(dir.path());
        d.configure(Some(config("webhook", &url, route)), "");
        d.notify(&[alert("Down", "a", false)]);
        rx.recv_timeout(WAIT).unwrap();
        drop(d);
        let d = Dispatcher::new(Arc::new(Silences::default()));
        d.open(dir.path());
        d.configure(Some(config("webhook", &url, route)), "");
        d.notify(&[alert("Down", "a", false)]);
        assert!(
            rx.recv_timeout(Duration::from_millis(600)).is_err(),
            "sent again after a restart"
        );
        d.notify(&[alert("Down", "a", true)]);
        let (_, body) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(body["status"], "resolved");
    }
}
