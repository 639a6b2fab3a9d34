//! Rule files in Prometheus's format, read and checked.
//!
//! ```yaml
//! groups:
//!   - name: node                 # unique within the file
//!     interval: 30s              # default: the global evaluation interval
//!     limit: 0                   # most series a rule may produce; 0 = no limit
//!     query_offset: 0s           # evaluate this long before the scheduled time
//!     labels: {team: infra}      # added to every rule's output (a rule's own labels win)
//!     rules:
//!       - record: job:up:sum
//!         expr: sum by (job) (up)
//!       - alert: InstanceDown
//!         expr: up == 0
//!         for: 5m
//!         keep_firing_for: 0s
//!         labels: {severity: page}
//!         annotations: {summary: "{{ $labels.instance }} is down"}
//! ```
//!
//! Every problem of a file is reported at once, each with the file, the line (and column) of
//! the node at fault, the group and the rule, and the reason — the checks and wording follow
//! what `promtool check rules` reports, so a file it accepts is accepted here and one it
//! refuses is refused. Unknown keys are errors (a typo must not silently disable a rule).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use strata_engine::promql::Query;

use super::template::Template;
use super::time::parse_duration;

/// A rule file's content, checked.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// The path it was read from, as given.
    pub path: String,
    /// Its groups, in file order.
    pub groups: Vec<GroupSpec>,
}

/// A group of rules evaluated together, in order, at one interval.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group's name, unique within its file.
    pub name: String,
    /// Its own interval; `None` means the global evaluation interval.
    pub interval: Option<Duration>,
    /// Most series one rule may produce (0: no limit); beyond it the rule's whole output is
    /// dropped and the evaluation fails, as Prometheus does.
    pub limit: usize,
    /// Evaluate this long before the scheduled time (data that arrives late).
    pub query_offset: Option<Duration>,
    /// Labels added to every rule's output; a rule's own labels win.
    pub labels: Vec<(String, String)>,
    /// The rules, in file order.
    pub rules: Vec<RuleSpec>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The metric name a recording rule writes, or the alert's name.
    pub name: String,
    /// The expression, as written.
    pub expr: String,
    /// The expression, parsed.
    pub query: RuleQuery,
    /// Labels set on the output (templates for an alert).
    pub labels: Vec<(String, String)>,
    /// What kind of rule.
    pub kind: RuleKind,
    /// Line of the rule in its file (1-based), for messages.
    pub line: u64,
}

/// A rule's expression, parsed in its file's language.
#[derive(Debug, Clone)]
pub enum RuleQuery {
    PromQL(Query),
    /// A LogQL metric query (a log rule file, `log_rule_files`).
    LogQL(strata_engine::logql::MetricExpr),
}

/// The language of a rule file's expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// Prometheus rule files (`rule_files`).
    #[default]
    PromQL,
    /// Loki's ruler files: the same YAML with LogQL metric queries (`log_rule_files`).
    LogQL,
}

/// Recording or alerting, with what only alerts have.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Writes the expression's result as series named after the rule.
    Record,
    /// Raises an alert per output series.
    Alert {
        /// How long a condition must hold before the alert fires.
        hold: Duration,
        /// How long a firing alert keeps firing after its condition cleared.
        keep_firing_for: Duration,
        /// Annotations (templates), in name order.
        annotations: Vec<(String, String)>,
    },
}

impl RuleSpec {
    /// Whether this is an alerting rule.
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alert { .. })
    }
}

/// A problem in a rule file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// The file.
    pub path: String,
    /// Line and column (1-based) of the node at fault; 0 when unknown.
    pub line: u64,
    pub column: u64,
    /// Where in the file, when the problem is in a group or a rule: `group "x", rule 2, "Name"`.
    pub context: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        f.write_str(&self.reason)
    }
}

/// Every problem of a file that does not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileErrors(pub Vec<RuleFileError>);

impl fmt::Display for RuleFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleFileErrors {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNode {
    #[serde(default)]
    groups: Vec<Spanned<GroupNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupNode {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    limit: Option<Spanned<i64>>,
    #[serde(default)]
    query_offset: Option<Spanned<String>>,
    #[serde(default)]
    labels: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleNode {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    hold: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    annotations: Option<Spanned<BTreeMap<String, String>>>,
}

/// Reads and checks the rule file at `path`.
pub fn read(path: &Path) -> Result<RuleFile, RuleFileErrors> {
    read_as(path, Language::PromQL)
}

/// As [`read`], its expressions in `language`.
pub fn read_as(path: &Path, language: Language) -> Result<RuleFile, RuleFileErrors> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        RuleFileErrors(vec![RuleFileError {
            path: shown.clone(),
            line: 0,
            column: 0,
            context: String::new(),
            reason: format!("cannot read the file: {e}"),
        }])
    })?;
    parse_as(&shown, &text, language)
}

/// Checks the text of a rule file; `path` names it in messages.
pub fn parse(path: &str, text: &str) -> Result<RuleFile, RuleFileErrors> {
    parse_as(path, text, Language::PromQL)
}

/// As [`parse`], its expressions in `language`.
pub fn parse_as(path: &str, text: &str, language: Language) -> Result<RuleFile, RuleFileErrors> {
    let error = |line: u64, column: u64, context: String, reason: String| RuleFileError {
        path: path.to_owned(),
        line,
        column,
        context,
        reason,
    };
    let node: FileNode = if text.trim().is_empty() {
        FileNode { groups: Vec::new() }
    } else {
        let located = |e: serde_saphyr::Error| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            RuleFileErrors(vec![error(line, column, String::new(), yaml_reason(&e))])
        };
        match serde_saphyr::from_str(text) {
            Ok(node) => node,
            // Only the first document of a file holds rules, as Prometheus reads it.
            Err(e) if e.to_string().contains("multiple YAML documents") => {
                tracing::warn!(
                    file = path,
                    "only the first YAML document of a rule file is read"
                );
                let mut docs: Vec<FileNode> =
                    serde_saphyr::from_str_multiple(text).map_err(located)?;
                if docs.is_empty() {
                    FileNode { groups: Vec::new() }
                } else {
                    docs.swap_remove(0)
                }
            }
            Err(e) => return Err(located(e)),
        }
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for group in node.groups {
        let at = group.referenced;
        let group = group.value;
        let name = group.name.as_ref().map_or("", |n| n.value.as_str());
        let context = format!("group {name:?}");
        let mut fail = |at: &serde_saphyr::Location, reason: String| {
            errors.push(error(at.line(), at.column(), context.clone(), reason));
        };
        if name.is_empty() {
            fail(&at, "Groupname must not be empty".into());
        } else if !names.insert(name.to_owned()) {
            let at = group.name.as_ref().map_or(at, |n| n.referenced);
            fail(
                &at,
                format!("groupname: {name:?} is repeated in the same file"),
            );
        }
        let interval = duration_field(group.interval.as_ref(), "interval", &mut fail);
        let query_offset = duration_field(group.query_offset.as_ref(), "query_offset", &mut fail);
        let limit = match &group.limit {
            Some(l) if l.value < 0 => {
                fail(&l.referenced, format!("limit {} is negative", l.value));
                0
            }
            Some(l) => l.value as usize,
            None => 0,
        };
        if interval == Some(Duration::ZERO) {
            let at = group.interval.as_ref().map_or(at, |i| i.referenced);
            fail(&at, "interval must be longer than zero".into());
        }
        let labels = match &group.labels {
            Some(labels) => {
                for name in labels.value.keys() {
                    if !valid_label_name(name) || name == "__name__" {
                        fail(&labels.referenced, format!("invalid label name: {name}"));
                    }
                }
                labels.value.clone().into_iter().collect()
            }
            None => Vec::new(),
        };
        let mut rules = Vec::new();
        for (i, rule) in group.rules.iter().enumerate() {
            match check_rule(&rule.value, rule.referenced, language) {
                Ok(spec) => rules.push(spec),
                Err(problems) => {
                    let rule_name = rule
                        .value
                        .alert
                        .as_ref()
                        .or(rule.value.record.as_ref())
                        .map_or("", |n| n.value.as_str());
                    for (at, reason) in problems {
                        errors.push(error(
                            at.line(),
                            at.column(),
                            format!("group {name:?}, rule {}, {rule_name:?}", i + 1),
                            reason,
                        ));
                    }
                }
            }
        }
        groups.push(GroupSpec {
            name: name.to_owned(),
            interval,
            limit,
            query_offset,
            labels,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(RuleFile {
            path: path.to_owned(),
            groups,
        })
    } else {
        Err(RuleFileErrors(errors))
    }
}

/// The YAML error's message without the location (the caller shows it in front).
pub fn yaml_reason(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let mut reason = text.lines().next().unwrap_or_default().trim();
    reason = reason.strip_prefix("error: ").unwrap_or(reason);
    if let Some(rest) = reason.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        reason = after;
    }
    reason
        .split_once(" at line ")
        .map_or(reason, |(r, _)| r)
        .trim()
        .to_owned()
}

/// A duration field: `None` when absent, its value when it parses; a problem otherwise.
fn duration_field(
    field: Option<&Spanned<String>>,
    what: &str,
    fail: &mut impl FnMut(&serde_saphyr::Location, String),
) -> Option<Duration> {
    let field = field?;
    match parse_duration(&field.value) {
        Ok(d) => Some(d),
        Err(reason) => {
            fail(&field.referenced, format!("{what}: {reason}"));
            None
        }
    }
}

type Problems = Vec<(serde_saphyr::Location, String)>;

fn check_rule(
    rule: &RuleNode,
    at: serde_saphyr::Location,
    language: Language,
) -> Result<RuleSpec, Problems> {
    let mut problems: Problems = Vec::new();
    let given = |f: &Option<Spanned<String>>| f.as_ref().filter(|s| !s.value.is_empty()).cloned();
    let record = given(&rule.record);
    let alert = given(&rule.alert);
    let spot = |f: &Option<Spanned<String>>| f.as_ref().map_or(at, |s| s.referenced);
    match (&record, &alert) {
        (Some(r), Some(_)) => problems.push((
            r.referenced,
            "only one of 'record' and 'alert' must be set".into(),
        )),
        (None, None) => problems.push((at, "one of 'record' or 'alert' must be set".into())),
        _ => {}
    }
    let expr = given(&rule.expr);
    let query = match &expr {
        None => {
            problems.push((spot(&rule.expr), "field 'expr' must be set in rule".into()));
            None
        }
        Some(e) => match language {
            Language::PromQL => match Query::parse(&e.value) {
                Ok(q) => Some(RuleQuery::PromQL(q)),
                Err(err) => {
                    problems.push((e.referenced, format!("could not parse expression: {err}")));
                    None
                }
            },
            Language::LogQL => match strata_engine::logql::parse(&e.value) {
                Ok(strata_engine::logql::Expr::Metric(m)) => Some(RuleQuery::LogQL(m)),
                Ok(strata_engine::logql::Expr::Log(_)) => {
                    problems.push((
                        e.referenced,
                        "a log rule needs a metric query (such as count_over_time), not a log query"
                            .into(),
                    ));
                    None
                }
                Err(err) => {
                    problems.push((e.referenced, format!("could not parse expression: {err}")));
                    None
                }
            },
        },
    };
    let mut hold = Duration::ZERO;
    let mut keep_firing_for = Duration::ZERO;
    for (field, what, slot) in [
        (&rule.hold, "for", &mut hold),
        (
            &rule.keep_firing_for,
            "keep_firing_for",
            &mut keep_firing_for,
        ),
    ] {
        if let Some(f) = field {
            match parse_duration(&f.value) {
                Ok(d) => *slot = d,
                Err(reason) => problems.push((f.referenced, format!("{what}: {reason}"))),
            }
        }
    }
    if let Some(r) = &record {
        if rule
            .annotations
            .as_ref()
            .is_some_and(|a| !a.value.is_empty())
        {
            problems.push((
                r.referenced,
                "invalid field 'annotations' in recording rule".into(),
            ));
        }
        if !hold.is_zero() {
            problems.push((
                spot(&rule.hold),
                "invalid field 'for' in recording rule".into(),
            ));
        }
        if !keep_firing_for.is_zero() {
            problems.push((
                spot(&rule.keep_firing_for),
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
        if !valid_metric_name(&r.value) {
            problems.push((
                r.referenced,
                format!("invalid recording rule name: {}", r.value),
            ));
        }
    }
    let labels: Vec<(String, String)> = match &rule.labels {
        Some(l) => {
            for name in l.value.keys() {
                if !valid_label_name(name) || name == "__name__" {
                    problems.push((l.referenced, format!("invalid label name: {name}")));
                }
            }
            l.value.clone().into_iter().collect()
        }
        None => Vec::new(),
    };
    let annotations: Vec<(String, String)> = match &rule.annotations {
        Some(a) => {
            for name in a.value.keys() {
                if !valid_label_name(name) {
                    problems.push((a.referenced, format!("invalid annotation name: {name}")));
                }
            }
            a.value.clone().into_iter().collect()
        }
        None => Vec::new(),
    };
    // Templates are checked as Prometheus does: labels and annotations of alerts only.
    if let Some(a) = &alert {
        let mut check = |kind: &str, fields: &[(String, String)], node: &Option<Spanned<_>>| {
            let at = node
                .as_ref()
                .map_or(at, |n: &Spanned<BTreeMap<String, String>>| n.referenced);
            for (name, text) in fields {
                if let Err(e) = Template::parse(&format!("__alert_{}", a.value), text) {
                    problems.push((at, format!("{kind} {name:?}: {e}")));
                }
            }
        };
        check("label", &labels, &rule.labels);
        check("annotation", &annotations, &rule.annotations);
    }
    match (problems.is_empty(), query, record.or(alert)) {
        (true, Some(query), Some(name)) => Ok(RuleSpec {
            name: name.value,
            expr: expr.map(|e| e.value).unwrap_or_default(),
            query,
            labels,
            kind: if rule.alert.as_ref().is_some_and(|a| !a.value.is_empty()) {
                RuleKind::Alert {
                    hold,
                    keep_firing_for,
                    annotations,
                }
            } else {
                RuleKind::Record
            },
            line: at.line(),
        }),
        _ => Err(problems),
    }
}

/// A label name as Prometheus 2 accepts it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A metric name as Prometheus 2 accepts it: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse("rules.yml", text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_file_with_recording_and_alerting_rules_reads_into_groups_in_order() {
        let file = parse(
            "rules.yml",
            "groups:\n  - name: a\n    interval: 30s\n    labels: {team: infra}\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels: {severity: page}\n        annotations: {summary: 'x {{ $labels.instance }}'}\n  - name: b\n    rules:\n      - record: fixed\n        expr: 1\n",
        )
        .unwrap();
        assert_eq!(file.groups.len(), 2);
        let a = &file.groups[0];
        assert_eq!(a.interval, Some(Duration::from_secs(30)));
        assert_eq!(a.labels, vec![("team".to_owned(), "infra".to_owned())]);
        assert_eq!(a.rules[0].name, "job:up:sum");
        assert!(!a.rules[0].is_alert());
        assert_eq!(a.rules[1].line, 8);
        match &a.rules[1].kind {
            RuleKind::Alert {
                hold,
                keep_firing_for,
                annotations,
            } => {
                assert_eq!(*hold, Duration::from_secs(300));
                assert_eq!(*keep_firing_for, Duration::from_secs(60));
                assert_eq!(annotations[0].0, "summary");
            }
            RuleKind::Record => panic!("an alert read as a recording rule"),
        }
        assert_eq!(file.groups[1].rules[0].expr, "1");
        assert_eq!(file.groups[1].interval, None);
    }

    #[test]
    fn only_the_first_document_of_a_file_holds_rules() {
        let file = parse(
            "m.yml",
            "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n---\ngroups: []\n",
        )
        .unwrap();
        assert_eq!(file.groups.len(), 1);
    }

    #[test]
    fn an_empty_file_has_no_groups() {
        assert!(parse("e.yml", "").unwrap().groups.is_empty());
        assert!(parse("e.yml", "groups: []\n").unwrap().groups.is_empty());
    }

    #[test]
    fn a_promql_syntax_error_is_reported_at_the_line_of_its_expression() {
        let e =
            errors("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: 'test +'\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("rules.yml:5:"), "{}", e[0]);
        assert!(e[0].contains("group \"g\", rule 1, \"x\": could not parse expression"));
    }

    #[test]
    fn an_unknown_field_is_reported_with_its_line() {
        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n        unexpected_field: 1\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("rules.yml:6:"), "{}", e[0]);
        assert!(
            e[0].contains(": unknown field `unexpected_field`"),
            "{}",
            e[0]
        );
        assert!(!e[0].contains("line 6 column"), "{}", e[0]);
    }

    #[test]
    fn a_group_name_repeated_in_one_file_is_refused() {
        let e = errors(
            "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules:\n      - record: x\n        expr: up\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("rules.yml:4:"), "{}", e[0]);
        assert!(e[0].contains("\"g\" is repeated in the same file"));
    }

    #[test]
    fn a_for_that_is_not_a_duration_is_refused_at_its_line() {
        let e = errors(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: soon\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("rules.yml:6:"), "{}", e[0]);
        assert!(
            e[0].contains("for: not a valid duration string"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn rules_that_break_the_data_model_are_refused_with_prometheus_reasons() {
        let cases = [
            (
                "- record: x\n  alert: y\n  expr: up",
                "only one of 'record' and 'alert' must be set",
            ),
            ("- expr: up", "one of 'record' or 'alert' must be set"),
            ("- record: x", "field 'expr' must be set in rule"),
            (
                "- record: 'bad-name'\n  expr: up",
                "invalid recording rule name: bad-name",
            ),
            (
                "- record: x\n  expr: up\n  for: 1m",
                "invalid field 'for' in recording rule",
            ),
            (
                "- record: x\n  expr: up\n  annotations: {a: b}",
                "invalid field 'annotations' in recording rule",
            ),
            (
                "- alert: x\n  expr: up\n  labels: {'a-b': c}",
                "invalid label name: a-b",
            ),
            (
                "- alert: x\n  expr: up\n  labels: {__name__: c}",
                "invalid label name: __name__",
            ),
            (
                "- alert: x\n  expr: up\n  annotations: {'1a': c}",
                "invalid annotation name: 1a",
            ),
            (
                "- alert: x\n  expr: up\n  annotations: {a: '{{ $label.foo }}'}",
                "undefined variable \"$label\"",
            ),
        ];
        for (rules, reason) in cases {
            let rules: String = rules.lines().map(|l| format!("      {l}\n")).collect();
            let e = errors(&format!("groups:\n  - name: g\n    rules:\n{rules}"));
            assert!(
                e.iter().any(|e| e.contains(reason)),
                "{rules}: expected {reason:?}, got {e:?}"
            );
            assert!(e.iter().all(|e| e.starts_with("rules.yml:")), "{e:?}");
        }
    }

    #[test]
    fn names_follow_prometheus_2_character_sets() {
        assert!(valid_metric_name("job:http_requests:rate5m"));
        assert!(!valid_metric_name("5xx"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("a:b"));
    }
}
