//! The running rules: rule files loaded (globs expanded, every file checked before anything
//! changes), one task per group evaluating it on its schedule, reloads that keep the state of
//! unchanged rules, and the alert states kept durable in the data directory so that a restart
//! resumes them.
//!
//! The state file (`rules/alerts.json`) is rewritten (to a temporary file, synced, renamed,
//! and the directory synced) after an evaluation that changed an alert's state, and after
//! every evaluation while an alert is pending (its `for` clock needs the time it was last
//! seen). At start, each rule takes back its alerts:
//! - a firing alert stays firing, whatever its `for` (Prometheus puts alerts whose `for` is
//!   shorter than its grace period back to pending); its `keep_firing_for` clock and whether
//!   its resolution was sent come back with it;
//! - a pending alert keeps the time it had been pending before the stop (the time Strata was
//!   down does not count), and still needs at least the grace period (10 m, or its `for` if
//!   shorter) before it fires, so data missed while down cannot fire it at once; after an
//!   outage longer than the tolerance (1 h) it starts again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_engine::Db;
use strata_engine::promql::{Engine, EngineOptions};

use super::alertmanager::{AlertmanagerSender, Target};
use super::dispatch::Dispatcher;
use super::group::Group;
use super::route::Notifiers;
use super::rule::{Alert, AlertState, EvalContext, Rule};
use super::rulefile::{self, RuleFile};
use super::silences::Silences;
use super::time::{wall_ms, write_json_durably};
use crate::config::Settings;
use crate::metrics::RuleGroupFigures;

/// Pending alerts are not restored after an outage longer than this.
pub const FOR_OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;
/// A restored pending alert fires no sooner than this after the restart.
pub const FOR_GRACE_PERIOD_MS: i64 = 10 * 60 * 1000;

/// What the rules need from the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    pub evaluation_interval: Duration,
    pub external_labels: Vec<(String, String)>,
    pub external_url: String,
    pub lookback_delta_ms: i64,
    pub samples_max: usize,
    pub resend_delay: Duration,
    pub alertmanagers: Vec<Target>,
    pub notifiers: Option<Notifiers>,
}

impl RuleSettings {
    pub fn from_settings(settings: &Settings) -> RuleSettings {
        RuleSettings {
            evaluation_interval: settings.evaluation_interval,
            external_labels: settings.external_labels.clone(),
            external_url: settings.external_url.clone(),
            lookback_delta_ms: settings.query.lookback_delta_ms,
            samples_max: settings.query.max_samples,
            resend_delay: settings.resend_delay,
            alertmanagers: settings.alertmanagers.clone(),
            notifiers: settings.notifiers.clone(),
        }
    }
}

/// Expands the patterns (globs) and reads and checks every file; `Err` lists every problem of
/// every file that does not check.
pub fn load_files(patterns: &[String]) -> Result<Vec<RuleFile>, String> {
    load_files_as(patterns, rulefile::Language::PromQL)
}

/// As [`load_files`], the files' expressions in `language` (LogQL for `log_rule_files`).
pub fn load_files_as(
    patterns: &[String],
    language: rulefile::Language,
) -> Result<Vec<RuleFile>, String> {
    let mut paths = Vec::new();
    for pattern in patterns {
        let matches = glob::glob(pattern)
            .map_err(|e| format!("rule_files: {pattern:?} is not a valid pattern: {e}"))?;
        let mut found: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
        found.sort();
        paths.extend(found);
    }
    paths.dedup();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match rulefile::read_as(&path, language) {
            Ok(f) => files.push(f),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems.join("\n"))
    }
}

/// A generation of group tasks: stopped together on a reload.
struct Generation {
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Generation {
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

#[derive(Default)]
struct Inner {
    groups: Vec<Arc<Mutex<Group>>>,
    generation: Option<Generation>,
    settings: Option<RuleSettings>,
    /// Alerts read from the state file at start, handed to their rules at the first install.
    saved: Option<SavedState>,
}

/// The rule groups and their tasks.
pub struct RuleManager {
    inner: Mutex<Inner>,
    /// `<data_dir>/rules/alerts.json`, once the engine has opened.
    state_path: Mutex<Option<PathBuf>>,
    /// Serialises writes of the state file.
    saving: Mutex<()>,
    /// Where alerts go: Alertmanager, and the built-in notifiers.
    pub alertmanager: AlertmanagerSender,
    pub dispatcher: Dispatcher,
    pub silences: Arc<Silences>,
    /// The log store log rules query, once it has opened.
    pub logs: std::sync::OnceLock<Arc<strata_engine::logs::LogStore>>,
}

impl Default for RuleManager {
    fn default() -> RuleManager {
        let silences = Arc::new(Silences::default());
        RuleManager {
            inner: Mutex::default(),
            state_path: Mutex::default(),
            saving: Mutex::default(),
            alertmanager: AlertmanagerSender::default(),
            dispatcher: Dispatcher::new(Arc::clone(&silences)),
            silences,
            logs: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for RuleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager")
            .field("groups", &self.groups().len())
            .finish_non_exhaustive()
    }
}

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedState {
    /// Wall-clock milliseconds when written.
    saved_at: i64,
    groups: Vec<SavedGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedGroup {
    file: String,
    name: String,
    rules: Vec<SavedRule>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRule {
    index: usize,
    name: String,
    alerts: Vec<Alert>,
}

const STATE_DIR: &str = "rules";
const STATE_FILE: &str = "alerts.json";

impl RuleManager {
    /// The groups running now, in file order.
    pub fn groups(&self) -> Vec<Arc<Mutex<Group>>> {
        self.lock().groups.clone()
    }

    /// Each group's figures for `/metrics`.
    pub fn figures(&self) -> Vec<RuleGroupFigures> {
        self.groups()
            .iter()
            .map(|g| {
                let g = g.lock().unwrap_or_else(|p| p.into_inner());
                RuleGroupFigures {
                    key: format!("{};{}", g.file, g.name),
                    rules: g.rules.len(),
                    interval_seconds: g.interval.as_secs_f64(),
                    last_duration_seconds: g.stats.evaluation_time.as_secs_f64(),
                    last_evaluation_seconds: g
                        .stats
                        .last_evaluation_ms
                        .map_or(0.0, |t| t as f64 / 1000.0),
                    iterations: g.stats.evaluations,
                    iterations_missed: g.stats.iterations_missed,
                    rule_evaluations: g.stats.rule_evaluations,
                    rule_failures: g.stats.rule_failures,
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the alert states saved in `data_dir` (before the first [`RuleManager::install`]).
    pub fn open_state(&self, data_dir: &Path) {
        let path = data_dir.join(STATE_DIR).join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<SavedState>(&bytes) {
                Ok(saved) => self.lock().saved = Some(saved),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "alert states not restored: the state file does not parse")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "alert states not restored")
            }
        }
        *self.state_path.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
        self.silences.open(data_dir);
        self.dispatcher.open(data_dir);
    }

    /// Replaces the running groups with those of `files`: unchanged groups and rules keep
    /// their state, removed groups' series are marked stale, and every group's task starts on
    /// its schedule.
    pub fn install(self: &Arc<Self>, files: Vec<RuleFile>, settings: RuleSettings, db: Arc<Db>) {
        self.alertmanager
            .set_targets(settings.alertmanagers.clone());
        self.dispatcher
            .configure(settings.notifiers.clone(), &settings.external_url);
        let mut inner = self.lock();
        let mut old: BTreeMap<(String, String), Group> = BTreeMap::new();
        if let Some(generation) = inner.generation.take() {
            generation.stop();
        }
        for shared in inner.groups.drain(..) {
            // A task of the old generation may still hold it (finishing an evaluation): wait
            // for it, then take the group and leave an empty one behind.
            let mut slot = shared.lock().unwrap_or_else(|p| p.into_inner());
            let empty = Group::empty(&slot.file, &slot.name);
            let g = std::mem::replace(&mut *slot, empty);
            old.insert(g.key(), g);
        }
        let saved = inner.saved.take();
        let mut groups = Vec::new();
        for file in &files {
            for spec in &file.groups {
                let mut group = match Group::new(&file.path, spec, settings.evaluation_interval) {
                    Ok(g) => g,
                    Err(e) => {
                        // The file checked, so its templates parse; keep going without it.
                        tracing::error!(file = %file.path, group = %spec.name, error = %e, "rule group not loaded");
                        continue;
                    }
                };
                if let Some(previous) = old.remove(&group.key()) {
                    group.adopt(previous);
                } else if let Some(saved) = &saved {
                    restore(&mut group, saved, wall_ms());
                }
                groups.push(Arc::new(Mutex::new(group)));
            }
        }
        // Groups that went away: their series end now.
        let removed: Vec<Group> = old.into_values().collect();
        if !removed.is_empty() {
            let t = wall_ms();
            let mut app = db.appender();
            for g in &removed {
                for labels in g.written_series() {
                    let _ = app.append(
                        &labels,
                        t,
                        f64::from_bits(strata_engine::sample::STALE_NAN_BITS),
                    );
                }
            }
            if let Err(e) = app.commit() {
                tracing::warn!(error = %e, "staleness markers of removed rule groups not written");
            }
        }
        let mut generation = Generation {
            stop: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(tokio::sync::Notify::new()),
            tasks: Vec::new(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                for group in &groups {
                    generation.tasks.push(runtime.spawn(run_group(
                        Arc::clone(self),
                        Arc::clone(group),
                        Arc::clone(&db),
                        settings.clone(),
                        Arc::clone(&generation.stop),
                        Arc::clone(&generation.wake),
                    )));
                }
            }
            Err(_) => tracing::error!("rule groups not started: no async runtime"),
        }
        let count: usize = groups
            .iter()
            .map(|g| g.lock().unwrap_or_else(|p| p.into_inner()).rules.len())
            .sum();
        tracing::info!(
            files = files.len(),
            groups = groups.len(),
            rules = count,
            "rules loaded"
        );
        inner.groups = groups;
        inner.generation = Some(generation);
        inner.settings = Some(settings);
    }

    /// Stops every group's task and waits for evaluations under way to finish (at
    /// shutdown, before the engine closes).
    pub async fn shutdown(&self) {
        let generation = self.lock().generation.take();
        if let Some(generation) = generation {
            generation.stop();
            for task in generation.tasks {
                let _ = task.await;
            }
        }
        self.alertmanager.shutdown();
        self.dispatcher.shutdown();
    }

    /// Writes every group's alerts to the state file.
    fn save(&self) {
        let Some(path) = self
            .state_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let _writing = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = SavedState {
            saved_at: wall_ms(),
            groups: Vec::new(),
        };
        for group in self.groups() {
            let g = group.lock().unwrap_or_else(|p| p.into_inner());
            let rules = g
                .rules
                .iter()
                .enumerate()
                .filter_map(|(index, rule)| match rule {
                    Rule::Alerting(r) if !r.active.is_empty() => Some(SavedRule {
                        index,
                        name: r.name.clone(),
                        alerts: r.active.values().cloned().collect(),
                    }),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if !rules.is_empty() {
                state.groups.push(SavedGroup {
                    file: g.file.clone(),
                    name: g.name.clone(),
                    rules,
                });
            }
        }
        if let Err(e) = write_json_durably(&path, &state) {
            tracing::warn!(path = %path.display(), error = %e, "alert states not saved");
        }
    }
}

/// Gives `group`'s alerting rules their alerts from `saved`, adjusted for the time Strata was
/// down (see the module's documentation).
fn restore(group: &mut Group, saved: &SavedState, now: i64) {
    let Some(sg) = saved
        .groups
        .iter()
        .find(|s| s.file == group.file && s.name == group.name)
    else {
        return;
    };
    let down_for = now - saved.saved_at;
    for sr in &sg.rules {
        let Some(Rule::Alerting(rule)) = group.rules.get_mut(sr.index) else {
            continue;
        };
        if rule.name != sr.name {
            continue;
        }
        let hold = rule.hold.as_millis() as i64;
        for alert in &sr.alerts {
            let mut alert = alert.clone();
            if alert.state == AlertState::Pending {
                if down_for > FOR_OUTAGE_TOLERANCE_MS {
                    continue;
                }
                let spent = (saved.saved_at - alert.active_at).max(0);
                let remaining = (hold - spent).max(FOR_GRACE_PERIOD_MS.min(hold));
                alert.active_at = now + remaining - hold;
            }
            rule.active.insert(alert.labels.clone(), alert);
        }
    }
}

/// What changes in the state file when it changes: the alerts' states and clocks.
fn state_digest(group: &Group) -> (u64, bool) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut pending = false;
    for rule in &group.rules {
        if let Rule::Alerting(r) = rule {
            for a in r.active.values() {
                a.labels.hash(&mut h);
                a.state.as_str().hash(&mut h);
                (a.active_at, a.fired_at, a.resolved_at, a.keep_firing_since).hash(&mut h);
                (a.last_sent_at, a.resolved_sent).hash(&mut h);
                pending |= a.state == AlertState::Pending;
            }
        }
    }
    (h.finish(), pending)
}

/// A group's task: evaluate at each point of its schedule until stopped. A point missed
/// because an evaluation overran (or the process was stalled) is counted and skipped.
async fn run_group(
    manager: Arc<RuleManager>,
    group: Arc<Mutex<Group>>,
    db: Arc<Db>,
    settings: RuleSettings,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) {
    let (interval, mut next) = {
        let g = group.lock().unwrap_or_else(|p| p.into_inner());
        let interval = g.interval.as_millis() as i64;
        (interval.max(1), g.aligned(wall_ms()) + interval.max(1))
    };
    let engine = Arc::new(Engine::new(EngineOptions {
        lookback_delta_ms: settings.lookback_delta_ms,
        samples_max: settings.samples_max,
        subquery_step_ms: interval,
        ..EngineOptions::default()
    }));
    let settings = Arc::new(settings);
    let mut last_digest = None;
    loop {
        let wait = Duration::from_millis((next - wall_ms()).max(0) as u64);
        let woken = wake.notified();
        tokio::pin!(woken);
        // Registered before the flag is read, so a stop between the two still wakes us.
        woken.as_mut().enable();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = woken => {}
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let now = wall_ms();
        let behind = (now - next) / interval;
        if behind > 0 {
            next += behind * interval;
        }
        let ts = next;
        next += interval;
        let task = {
            let (group, db, engine, settings) = (
                Arc::clone(&group),
                Arc::clone(&db),
                Arc::clone(&engine),
                Arc::clone(&settings),
            );
            let logs = manager.logs.get().cloned();
            tokio::task::spawn_blocking(move || {
                let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
                g.stats.iterations_missed += behind.max(0) as u64;
                let ctx = EvalContext {
                    db: &db,
                    engine: &engine,
                    logs: logs.as_deref(),
                    external_labels: &settings.external_labels,
                    external_url: &settings.external_url,
                    resend_delay_ms: settings.resend_delay.as_millis() as i64,
                };
                let notifications = g.eval(&ctx, ts);
                (state_digest(&g), notifications)
            })
        };
        match task.await {
            Ok(((digest, pending), notifications)) => {
                manager.dispatcher.notify(&notifications);
                manager.alertmanager.send(notifications);
                if pending || last_digest != Some(digest) {
                    last_digest = Some(digest);
                    let manager = Arc::clone(&manager);
                    let _ = tokio::task::spawn_blocking(move || manager.save()).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "rule group evaluation panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rulefile;
    use strata_engine::labels::Labels;

    const MIN: i64 = 60_000;

    fn group() -> Group {
        let file = rulefile::parse(
            "r.yml",
            "groups:\n- name: g\n  rules:\n  - alert: Short\n    expr: up == 0\n    for: 1m\n    keep_firing_for: 10m\n  - alert: Long\n    expr: up == 0\n    for: 1h\n",
        )
        .unwrap();
        Group::new("r.yml", &file.groups[0], Duration::from_secs(60)).unwrap()
    }

    fn alert(name: &str, state: AlertState, active_at: i64) -> Alert {
        Alert {
            labels: Labels::new([("alertname", name)]).unwrap(),
            annotations: Vec::new(),
            state,
            value: 1.0,
            active_at,
            fired_at: (state == AlertState::Firing).then_some(active_at + MIN),
            resolved_at: None,
            keep_firing_since: (state == AlertState::Firing).then_some(active_at + 5 * MIN),
            last_sent_at: Some(active_at + 2 * MIN),
            resolved_sent: false,
            valid_until: None,
        }
    }

    fn saved(saved_at: i64, short: Alert, long: Alert) -> SavedState {
        SavedState {
            saved_at,
            groups: vec![SavedGroup {
                file: "r.yml".into(),
                name: "g".into(),
                rules: vec![
                    SavedRule {
                        index: 0,
                        name: "Short".into(),
                        alerts: vec![short],
                    },
                    SavedRule {
                        index: 1,
                        name: "Long".into(),
                        alerts: vec![long],
                    },
                ],
            }],
        }
    }

    fn restored(g: &Group, rule: usize) -> Option<Alert> {
        match &g.rules[rule] {
            Rule::Alerting(r) => r.active.values().next().cloned(),
            Rule::Recording(_) => None,
        }
    }

    #[test]
    fn a_restart_keeps_firing_alerts_firing_with_their_clocks_and_pending_ones_their_time() {
        let t0 = 1_000 * MIN;
        let firing = alert("Short", AlertState::Firing, t0);
        // Pending for 20 minutes when saved; Strata down for 5.
        let pending = alert("Long", AlertState::Pending, t0);
        let state = saved(t0 + 20 * MIN, firing.clone(), pending);
        let mut g = group();
        let now = t0 + 25 * MIN;
        restore(&mut g, &state, now);
        let short = restored(&g, 0).unwrap();
        assert_eq!(
            short, firing,
            "firing, with its keep_firing_for clock and send time"
        );
        let long = restored(&g, 1).unwrap();
        assert_eq!(long.state, AlertState::Pending);
        assert_eq!(
            long.active_at,
            now - 20 * MIN,
            "the downtime does not count"
        );
    }

    #[test]
    fn the_state_file_keeps_values_json_has_no_number_for() {
        let mut a = alert("Short", AlertState::Firing, MIN);
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.5] {
            a.value = v;
            let text = serde_json::to_string(&saved(2 * MIN, a.clone(), a.clone())).unwrap();
            let back: SavedState = serde_json::from_str(&text).unwrap();
            let got = back.groups[0].rules[0].alerts[0].value;
            assert!(
                got == v || (got.is_nan() && v.is_nan()),
                "{v} came back as {got}"
            );
        }
    }

    #[test]
    fn a_pending_alert_waits_at_least_the_grace_period_and_an_old_one_starts_again() {
        let t0 = 1_000 * MIN;
        // Pending 55 of its 60 minutes: it may not fire for another 10 after the restart.
        let state = saved(
            t0 + 55 * MIN,
            alert("Short", AlertState::Firing, t0),
            alert("Long", AlertState::Pending, t0),
        );
        let mut g = group();
        let now = t0 + 56 * MIN;
        restore(&mut g, &state, now);
        let long = restored(&g, 1).unwrap();
        assert_eq!(long.active_at + 60 * MIN, now + FOR_GRACE_PERIOD_MS);
        // After more than an hour down, pending alerts start again; firing ones stay.
        let mut g = group();
        restore(&mut g, &state, t0 + 55 * MIN + FOR_OUTAGE_TOLERANCE_MS + 1);
        assert!(restored(&g, 1).is_none());
        assert_eq!(restored(&g, 0).unwrap().state, AlertState::Firing);
    }
}
