//! A rule group: its rules evaluated in order at one timestamp (so a rule sees what the rules
//! before it wrote), each rule's output appended and committed through the engine's durable
//! path before the next rule runs, and staleness markers for the series a rule stopped
//! producing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use strata_engine::labels::Labels;
use strata_engine::sample::STALE_NAN_BITS;

use super::rule::{EvalContext, Health, Notification, Rule};
use super::rulefile::GroupSpec;
use super::time::wall_ms;

/// Counters of a group's evaluations, for `/api/v1/rules` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    /// Wall-clock time the last evaluation started, milliseconds.
    pub last_evaluation_ms: Option<i64>,
    /// The timestamp the last evaluation wrote at (its scheduled time minus the offset).
    pub last_eval_t: Option<i64>,
    pub evaluation_time: Duration,
    /// Evaluations of the group (iterations of its schedule that ran).
    pub evaluations: u64,
    /// Evaluations in which at least one rule failed.
    pub failures: u64,
    pub iterations_missed: u64,
    /// Rule evaluations, and those that failed.
    pub rule_evaluations: u64,
    pub rule_failures: u64,
}

/// A group of rules.
#[derive(Debug)]
pub struct Group {
    pub file: String,
    pub name: String,
    pub interval: Duration,
    pub limit: usize,
    pub query_offset: Duration,
    pub rules: Vec<Rule>,
    /// Per rule: the series it wrote at its last successful evaluation.
    written: Vec<HashSet<Labels>>,
    /// Series of rules a reload removed, marked stale at the next evaluation.
    orphans: Vec<Labels>,
    pub stats: GroupStats,
}

impl Group {
    /// The group of `spec` from `file`, with `default_interval` when it sets none.
    pub fn new(file: &str, spec: &GroupSpec, default_interval: Duration) -> Result<Group, String> {
        let rules = spec
            .rules
            .iter()
            .map(|r| Rule::new(r, &spec.labels))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Group {
            file: file.to_owned(),
            name: spec.name.clone(),
            interval: spec.interval.unwrap_or(default_interval),
            limit: spec.limit,
            query_offset: spec.query_offset.unwrap_or_default(),
            written: vec![HashSet::new(); rules.len()],
            rules,
            orphans: Vec::new(),
            stats: GroupStats::default(),
        })
    }

    /// A group without rules (what is left in a shared slot whose group moved on).
    pub fn empty(file: &str, name: &str) -> Group {
        Group {
            file: file.to_owned(),
            name: name.to_owned(),
            interval: Duration::from_secs(60),
            limit: 0,
            query_offset: Duration::ZERO,
            rules: Vec::new(),
            written: Vec::new(),
            orphans: Vec::new(),
            stats: GroupStats::default(),
        }
    }

    /// Identifies the group across reloads and in the state file.
    pub fn key(&self) -> (String, String) {
        (self.file.clone(), self.name.clone())
    }

    fn interval_ms(&self) -> i64 {
        (self.interval.as_millis() as i64).max(1)
    }

    /// Where in its interval the group evaluates: a hash of its file and name, so that groups
    /// spread over the interval and one group keeps its phase across restarts.
    pub fn offset_ms(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.file.bytes().chain([0xff]).chain(self.name.bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.interval_ms() as u64) as i64
    }

    /// The last evaluation time of this group's schedule at or before `now_ms`.
    pub fn aligned(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms();
        let offset = self.offset_ms();
        let adjusted = now_ms - offset;
        adjusted - adjusted.rem_euclid(interval) + offset
    }

    /// Takes over the state of `old` (the same group before a reload): each rule that is
    /// unchanged keeps its alerts, status and written series; the series of rules that went
    /// away are marked stale at the next evaluation.
    pub fn adopt(&mut self, mut old: Group) {
        let mut old_rules: Vec<Option<(Rule, HashSet<Labels>)>> = old
            .rules
            .drain(..)
            .zip(old.written.drain(..))
            .map(Some)
            .collect();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let found = old_rules.iter_mut().find(|slot| {
                slot.as_ref()
                    .is_some_and(|(r, _)| r.identity() == rule.identity())
            });
            if let Some(slot) = found
                && let Some((previous, written)) = slot.take()
            {
                match (rule, previous) {
                    (Rule::Alerting(new), Rule::Alerting(prev)) => {
                        new.active = prev.active;
                        new.status = prev.status;
                    }
                    (Rule::Recording(new), Rule::Recording(prev)) => new.status = prev.status,
                    _ => {}
                }
                self.written[i] = written;
            }
        }
        self.orphans = old.orphans;
        for (_, written) in old_rules.into_iter().flatten() {
            self.orphans.extend(written);
        }
        self.stats = old.stats;
    }

    /// Every series this group wrote last (to mark stale when the group is removed).
    pub fn written_series(&self) -> Vec<Labels> {
        self.written
            .iter()
            .flatten()
            .chain(&self.orphans)
            .cloned()
            .collect()
    }

    /// Evaluates every rule at the scheduled time `ts` (milliseconds); results are written at
    /// `ts` minus the group's query offset. Returns the notifications due.
    pub fn eval(&mut self, ctx: &EvalContext<'_>, ts: i64) -> Vec<Notification> {
        let mut notifications = Vec::new();
        let interval_ms = self.interval_ms();
        let started = Instant::now();
        let t = ts - self.query_offset.as_millis() as i64;
        self.stats.last_evaluation_ms = Some(wall_ms());
        self.stats.last_eval_t = Some(t);
        self.stats.evaluations += 1;
        if !self.orphans.is_empty() {
            let orphans = std::mem::take(&mut self.orphans);
            let mut app = ctx.db.appender();
            for labels in &orphans {
                let _ = app.append(labels, t, f64::from_bits(STALE_NAN_BITS));
            }
            if let Err(e) = app.commit() {
                tracing::warn!(group = %self.name, error = %e, "staleness markers of removed rules not written");
            }
        }
        let mut failed = false;
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let rule_started = Instant::now();
            let result = rule.eval(ctx, t, self.limit).and_then(|out| {
                let mut app = ctx.db.appender();
                let mut now = HashSet::with_capacity(out.len());
                let mut rejected = 0usize;
                let mut first_problem = None;
                for (labels, v) in out {
                    match app.append(&labels, t, v) {
                        Ok(_) => {
                            now.insert(labels);
                        }
                        Err(e) => {
                            rejected += 1;
                            first_problem.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                for gone in self.written[i].difference(&now) {
                    let _ = app.append(gone, t, f64::from_bits(STALE_NAN_BITS));
                }
                app.commit()
                    .map_err(|e| format!("storing the rule's results failed: {e}"))?;
                self.written[i] = now;
                if let Some(problem) = first_problem {
                    tracing::warn!(group = %self.name, rule = %rule.name(), rejected, %problem, "some results of a rule were not stored");
                }
                Ok(())
            });
            let rule_name = rule.name().to_owned();
            self.stats.rule_evaluations += 1;
            if let (Ok(()), Rule::Alerting(r)) = (&result, &mut *rule) {
                notifications.extend(r.due(ctx, t, interval_ms));
            }
            let status = rule.status_mut();
            status.last_evaluation_ms = Some(wall_ms());
            status.evaluation_time = rule_started.elapsed();
            match result {
                Ok(()) => {
                    status.health = Health::Ok;
                    status.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, rule = %rule_name, error = %e, "rule evaluation failed");
                    status.health = Health::Err;
                    status.last_error = Some(e);
                    self.stats.rule_failures += 1;
                    failed = true;
                }
            }
        }
        if failed {
            self.stats.failures += 1;
        }
        self.stats.evaluation_time = started.elapsed();
        notifications
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rule::AlertState;
    use crate::alerting::rulefile;
    use strata_engine::promql::{Engine, EngineOptions};
    use strata_engine::{Db, Options};

    const MIN: i64 = 60_000;

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        engine: Engine,
        t0: i64,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path(), Options::default()).unwrap();
            let t0 = (wall_ms() - 3 * 3_600_000) / MIN * MIN;
            Fixture {
                _dir: dir,
                db,
                engine: Engine::new(EngineOptions::default()),
                t0,
            }
        }

        fn write(&self, series: &[(&str, &str)], t: i64, v: f64) {
            let mut app = self.db.appender();
            app.append(&Labels::new(series.iter().copied()).unwrap(), t, v)
                .unwrap();
            app.commit().unwrap();
        }

        fn ctx(&self) -> EvalContext<'_> {
            EvalContext {
                db: &self.db,
                engine: &self.engine,
                logs: None,
                external_labels: &[],
                external_url: "http://strata.test",
                resend_delay_ms: 60_000,
            }
        }

        fn query(&self, q: &str, t: i64) -> Vec<(String, f64)> {
            let mut rows: Vec<(String, f64)> = self
                .ctx()
                .query(
                    &crate::alerting::rule::RuleExpr::PromQL(
                        strata_engine::promql::Query::parse(q).unwrap(),
                    ),
                    t,
                )
                .unwrap()
                .into_iter()
                .map(|(l, v)| (l.to_string(), v))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        }
    }

    fn group(yaml: &str) -> Group {
        let file = rulefile::parse("test.yml", yaml).unwrap();
        Group::new("test.yml", &file.groups[0], Duration::from_secs(60)).unwrap()
    }

    fn alert_states(g: &Group, rule: usize) -> Vec<(String, AlertState)> {
        match &g.rules[rule] {
            Rule::Alerting(r) => r
                .active
                .values()
                .map(|a| (a.labels.to_string(), a.state))
                .collect(),
            Rule::Recording(_) => panic!("not an alerting rule"),
        }
    }

    #[test]
    fn recording_rules_write_their_results_and_later_rules_see_them() {
        let f = Fixture::new();
        for (job, inst, v) in [("a", "1", 1.0), ("a", "2", 0.0), ("b", "1", 1.0)] {
            f.write(
                &[("__name__", "up"), ("job", job), ("instance", inst)],
                f.t0,
                v,
            );
        }
        let mut g = group(
            "groups:\n- name: g\n  labels: {team: infra}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - record: up:total\n    expr: sum(job:up:sum)\n    labels: {team: core}\n",
        );
        g.eval(&f.ctx(), f.t0 + MIN);
        assert_eq!(
            f.query("job:up:sum", f.t0 + MIN),
            vec![
                ("job:up:sum{job=\"a\", team=\"infra\"}".to_owned(), 1.0),
                ("job:up:sum{job=\"b\", team=\"infra\"}".to_owned(), 1.0),
            ]
        );
        assert_eq!(
            f.query("up:total", f.t0 + MIN),
            vec![("up:total{team=\"core\"}".to_owned(), 2.0)]
        );
        assert!(g.rules.iter().all(|r| r.status().health == Health::Ok));
    }

    #[test]
    fn a_series_a_rule_stops_producing_is_marked_stale() {
        let f = Fixture::new();
        let (a, b) = (
            [("__name__", "x"), ("k", "a")],
            [("__name__", "x"), ("k", "b")],
        );
        f.write(&a, f.t0, 1.0);
        f.write(&b, f.t0, 2.0);
        f.write(&a, f.t0 + MIN, 1.0);
        // x{k="b"} ends (its sender marks it stale), so y{k="b"} ends too.
        f.write(&b, f.t0 + MIN, f64::from_bits(STALE_NAN_BITS));
        let mut g = group("groups:\n- name: g\n  rules:\n  - record: y\n    expr: x * 10\n");
        g.eval(&f.ctx(), f.t0);
        assert_eq!(f.query("count(y)", f.t0).first().map(|r| r.1), Some(2.0));
        g.eval(&f.ctx(), f.t0 + 2 * MIN);
        // Without a staleness marker, y{k="b"} written at t0 would still be within the 5 m
        // lookback here.
        assert_eq!(
            f.query("y", f.t0 + 2 * MIN + 1),
            vec![("y{k=\"a\"}".to_owned(), 10.0)]
        );
    }

    #[test]
    fn an_alert_goes_pending_then_firing_then_resolved_with_its_alerts_series() {
        let f = Fixture::new();
        let s = [("__name__", "errors"), ("instance", "h1")];
        for m in 0..=3 {
            f.write(&s, f.t0 + m * MIN, 5.0);
        }
        f.write(&s, f.t0 + 4 * MIN, 0.0);
        let mut g = group(
            "groups:\n- name: g\n  rules:\n  - alert: TooManyErrors\n    expr: errors > 1\n    for: 2m\n    labels: {severity: page}\n    annotations: {summary: '{{ $labels.instance }} has {{ $value }} errors'}\n",
        );
        let name = "{alertname=\"TooManyErrors\", instance=\"h1\", severity=\"page\"}";
        g.eval(&f.ctx(), f.t0);
        assert_eq!(
            alert_states(&g, 0),
            vec![(name.to_owned(), AlertState::Pending)]
        );
        assert_eq!(
            f.query("ALERTS", f.t0),
            vec![(
                "ALERTS{alertname=\"TooManyErrors\", alertstate=\"pending\", instance=\"h1\", severity=\"page\"}".to_owned(),
                1.0
            )]
        );
        assert_eq!(
            f.query("ALERTS_FOR_STATE", f.t0),
            vec![(
                "ALERTS_FOR_STATE{alertname=\"TooManyErrors\", instance=\"h1\", severity=\"page\"}"
                    .to_owned(),
                (f.t0 / 1000) as f64
            )]
        );
        g.eval(&f.ctx(), f.t0 + MIN);
        assert_eq!(alert_states(&g, 0)[0].1, AlertState::Pending);
        g.eval(&f.ctx(), f.t0 + 2 * MIN);
        assert_eq!(alert_states(&g, 0)[0].1, AlertState::Firing);
        // The pending series was marked stale when the state changed.
        assert_eq!(
            f.query("ALERTS", f.t0 + 2 * MIN),
            vec![(
                "ALERTS{alertname=\"TooManyErrors\", alertstate=\"firing\", instance=\"h1\", severity=\"page\"}".to_owned(),
                1.0
            )]
        );
        let Rule::Alerting(r) = &g.rules[0] else {
            unreachable!()
        };
        let a = r.active.values().next().unwrap();
        assert_eq!(
            a.annotations,
            vec![("summary".to_owned(), "h1 has 5 errors".to_owned())]
        );
        assert_eq!(a.fired_at, Some(f.t0 + 2 * MIN));
        g.eval(&f.ctx(), f.t0 + 4 * MIN);
        assert_eq!(alert_states(&g, 0)[0].1, AlertState::Inactive);
        assert!(f.query("ALERTS", f.t0 + 4 * MIN).is_empty());
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert_after_its_condition_clears() {
        let f = Fixture::new();
        let s = [("__name__", "bad")];
        f.write(&s, f.t0, 1.0);
        f.write(&s, f.t0 + MIN, 0.0);
        let mut g = group(
            "groups:\n- name: g\n  rules:\n  - alert: Bad\n    expr: bad > 0\n    keep_firing_for: 3m\n",
        );
        g.eval(&f.ctx(), f.t0);
        assert_eq!(
            alert_states(&g, 0)[0].1,
            AlertState::Firing,
            "for: 0 fires at once"
        );
        g.eval(&f.ctx(), f.t0 + MIN);
        g.eval(&f.ctx(), f.t0 + 3 * MIN);
        assert_eq!(alert_states(&g, 0)[0].1, AlertState::Firing);
        g.eval(&f.ctx(), f.t0 + 4 * MIN);
        assert_eq!(alert_states(&g, 0)[0].1, AlertState::Inactive);
    }

    #[test]
    fn a_pending_alert_whose_condition_clears_is_dropped() {
        let f = Fixture::new();
        let s = [("__name__", "bad")];
        f.write(&s, f.t0, 1.0);
        f.write(&s, f.t0 + MIN, 0.0);
        let mut g =
            group("groups:\n- name: g\n  rules:\n  - alert: Bad\n    expr: bad > 0\n    for: 5m\n");
        g.eval(&f.ctx(), f.t0);
        assert_eq!(alert_states(&g, 0).len(), 1);
        g.eval(&f.ctx(), f.t0 + MIN);
        assert!(alert_states(&g, 0).is_empty());
    }

    #[test]
    fn a_rule_over_its_limit_writes_nothing_and_reports_the_error() {
        let f = Fixture::new();
        for k in ["a", "b", "c"] {
            f.write(&[("__name__", "x"), ("k", k)], f.t0, 1.0);
        }
        let mut g = group("groups:\n- name: g\n  limit: 2\n  rules:\n  - record: y\n    expr: x\n");
        g.eval(&f.ctx(), f.t0);
        assert!(f.query("y", f.t0).is_empty());
        let status = g.rules[0].status();
        assert_eq!(status.health, Health::Err);
        assert_eq!(
            status.last_error.as_deref(),
            Some("exceeded limit of 2 with 3 series")
        );
        assert_eq!(g.stats.failures, 1);
    }

    #[test]
    fn the_schedule_is_aligned_to_the_interval_with_a_stable_offset() {
        let g = group("groups:\n- name: g\n  interval: 15s\n  rules: []\n");
        let offset = g.offset_ms();
        assert!((0..15_000).contains(&offset));
        let t = g.aligned(1_000_000_123);
        assert!(t <= 1_000_000_123 && 1_000_000_123 - t < 15_000);
        assert_eq!((t - offset).rem_euclid(15_000), 0);
        assert_eq!(g.aligned(t), t);
    }

    #[test]
    fn log_rules_record_metrics_from_logs_and_raise_alerts() {
        use strata_engine::logs::{Entry, LogOptions, LogStore};
        let f = Fixture::new();
        let (logs, _) = LogStore::open(&f._dir.path().join("logs"), LogOptions::default()).unwrap();
        let t = wall_ms() / MIN * MIN;
        let mut app = logs.appender();
        let api = Labels::new([("app", "api")]).unwrap();
        for i in 0..30i64 {
            let level = if i % 3 == 0 { "error" } else { "info" };
            app.append(
                &api,
                Entry::new(
                    (t - 59_000 + i * 1_000) * 1_000_000,
                    format!("level={level} n={i}"),
                ),
            )
            .unwrap();
        }
        app.commit().unwrap();
        let file = rulefile::parse_as(
            "log-rules.yml",
            "groups:\n- name: logs\n  rules:\n  - record: app:log_errors:count1m\n    expr: sum by (app) (count_over_time({app=\"api\"} | logfmt | level=\"error\" [1m]))\n  - alert: ManyErrors\n    expr: sum by (app) (count_over_time({app=\"api\"} |= \"level=error\" [1m])) > 5\n",
            rulefile::Language::LogQL,
        )
        .unwrap();
        let mut g = Group::new("log-rules.yml", &file.groups[0], Duration::from_secs(60)).unwrap();
        let ctx = EvalContext {
            logs: Some(&logs),
            ..f.ctx()
        };
        g.eval(&ctx, t);
        assert_eq!(
            f.query("app:log_errors:count1m", t),
            vec![("app:log_errors:count1m{app=\"api\"}".to_owned(), 10.0)],
            "written into the metrics store, queryable with PromQL"
        );
        assert_eq!(
            alert_states(&g, 1),
            vec![(
                "{alertname=\"ManyErrors\", app=\"api\"}".to_owned(),
                AlertState::Firing
            )]
        );
        // Without the log store, the rule reports why.
        let mut g = Group::new("log-rules.yml", &file.groups[0], Duration::from_secs(60)).unwrap();
        g.eval(&f.ctx(), t);
        match &g.rules[0] {
            Rule::Recording(r) => assert!(
                r.status
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("log store")),
                "{:?}",
                r.status
            ),
            Rule::Alerting(_) => unreachable!(),
        }
        // The shipped examples check.
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/log-rules.yml"),
        )
        .unwrap();
        let file = rulefile::parse_as("log-rules.yml", &text, rulefile::Language::LogQL)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.groups[0].rules.len(), 3);
        // A log query is not a rule.
        let e = rulefile::parse_as(
            "bad.yml",
            "groups:\n- name: g\n  rules:\n  - record: x\n    expr: '{app=\"api\"}'\n",
            rulefile::Language::LogQL,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs a metric query"), "{e}");
    }
}
