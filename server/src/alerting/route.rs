//! Where notifications go without an Alertmanager: the `notifiers:` section of the
//! configuration file, in the shape of Alertmanager's own configuration (receivers, a routing
//! tree with `group_by`, `group_wait`, `group_interval`, `repeat_interval`), and label
//! matchers in Alertmanager's syntax (`severity="page"`, `team=~"db|web"`, `env!="dev"`).
//!
//! ```yaml
//! notifiers:
//!   receivers:
//!     - name: team-slack
//!       slack:
//!         webhook_url: https://hooks.slack.com/services/T0/B0/X0   # or webhook_url_file
//!         channel: '#alerts'
//!         username: strata
//!         title: '{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}'   # optional
//!         text: '{{ range .Alerts }}{{ .Annotations.summary }}{{ "\n" }}{{ end }}'
//!         send_resolved: true
//!     - name: other-chat
//!       webhook:                      # Alertmanager's webhook payload
//!         url: http://127.0.0.1:8080/hook
//!         send_resolved: true
//!   route:
//!     receiver: team-slack            # the default
//!     group_by: [alertname]
//!     group_wait: 30s
//!     group_interval: 5m
//!     repeat_interval: 4h
//!     routes:
//!       - matchers: ['severity="page"']
//!         receiver: other-chat
//!         continue: false
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use strata_engine::labels::Labels;

use super::time::parse_duration;

/// `notifiers:` in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifiersFile {
    pub receivers: Vec<ReceiverFile>,
    pub route: Option<RouteFile>,
}

/// One receiver.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverFile {
    pub name: String,
    pub slack: Option<SlackFile>,
    pub webhook: Option<WebhookFile>,
}

/// A Slack incoming webhook.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlackFile {
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub send_resolved: Option<bool>,
}

/// A generic webhook (Alertmanager's payload).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookFile {
    pub url: String,
    pub send_resolved: Option<bool>,
}

/// A node of the routing tree.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteFile {
    pub receiver: Option<String>,
    pub group_by: Option<Vec<String>>,
    pub group_wait: Option<String>,
    pub group_interval: Option<String>,
    pub repeat_interval: Option<String>,
    pub matchers: Vec<String>,
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    pub routes: Vec<RouteFile>,
}

/// A label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub regex: Option<regex::Regex>,
    pub negative: bool,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name
            && self.value == other.value
            && self.regex.is_some() == other.regex.is_some()
            && self.negative == other.negative
    }
}

impl Matcher {
    /// A matcher from its parts (`regex`: `=~`/`!~`; `negative`: `!=`/`!~`).
    pub fn new(name: &str, value: &str, regex: bool, negative: bool) -> Result<Matcher, String> {
        let compiled = if regex {
            Some(
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
            )
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            regex: compiled,
            negative,
        })
    }

    /// Parses `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"` (quotes optional).
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let s = s.trim();
        let at = s
            .find(['=', '!'])
            .ok_or_else(|| format!("matcher {s:?}: expected name=\"value\""))?;
        let name = s[..at].trim();
        let rest = &s[at..];
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| format!("matcher {s:?}: unknown operator"))?;
        if name.is_empty() {
            return Err(format!("matcher {s:?}: no label name"));
        }
        let value = if value.starts_with('"') {
            serde_json::from_str::<String>(value)
                .map_err(|e| format!("matcher {s:?}: bad quoted value: {e}"))?
        } else {
            value.to_owned()
        };
        Matcher::new(name, &value, op.ends_with('~'), op.starts_with('!'))
    }

    /// Whether `labels` satisfy the matcher (a missing label reads as empty).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).unwrap_or("");
        let hit = match &self.regex {
            Some(re) => re.is_match(v),
            None => v == self.value,
        };
        hit != self.negative
    }
}

/// A receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    Slack {
        name: String,
        url: String,
        channel: Option<String>,
        username: Option<String>,
        title: String,
        text: String,
        send_resolved: bool,
    },
    Webhook {
        name: String,
        url: String,
        send_resolved: bool,
    },
}

impl Receiver {
    pub fn name(&self) -> &str {
        match self {
            Receiver::Slack { name, .. } | Receiver::Webhook { name, .. } => name,
        }
    }

    pub fn send_resolved(&self) -> bool {
        match self {
            Receiver::Slack { send_resolved, .. } | Receiver::Webhook { send_resolved, .. } => {
                *send_resolved
            }
        }
    }
}

/// The default Slack title: status, number of firing alerts, the group's labels.
pub const DEFAULT_SLACK_TITLE: &str = "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ range $k, $v := .GroupLabels }}{{ $v }} {{ end }}";
/// The default Slack text: each alert's summary (or its labels), then its description.
pub const DEFAULT_SLACK_TEXT: &str = "{{ range .Alerts }}*{{ .Labels.alertname }}*{{ with .Annotations.summary }}: {{ . }}{{ end }}{{ with .Annotations.description }}\n{{ . }}{{ end }}\n{{ end }}";

/// A routing-tree node, checked, with inherited settings resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub receiver: String,
    /// `None`: group by every label (Alertmanager's `...`).
    pub group_by: Option<Vec<String>>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub routes: Vec<Route>,
}

/// The checked `notifiers:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Notifiers {
    pub receivers: Vec<Receiver>,
    pub route: Route,
}

impl Notifiers {
    /// Checks the section; `None` when there are no receivers.
    pub fn from_file(file: &NotifiersFile) -> Result<Option<Notifiers>, String> {
        if file.receivers.is_empty() && file.route.is_none() {
            return Ok(None);
        }
        let mut receivers = Vec::new();
        for (i, r) in file.receivers.iter().enumerate() {
            let at = format!("notifiers.receivers[{i}] ({:?})", r.name);
            if r.name.is_empty() {
                return Err(format!("{at}: a receiver needs a name"));
            }
            if receivers.iter().any(|x: &Receiver| x.name() == r.name) {
                return Err(format!("{at}: the name is used twice"));
            }
            receivers.push(match (&r.slack, &r.webhook) {
                (Some(s), None) => {
                    let url = match (&s.webhook_url, &s.webhook_url_file) {
                        (Some(u), None) => u.clone(),
                        (None, Some(path)) => std::fs::read_to_string(path)
                            .map_err(|e| format!("{at}: webhook_url_file {path}: {e}"))?
                            .trim()
                            .to_owned(),
                        _ => {
                            return Err(format!(
                                "{at}: slack needs one of webhook_url and webhook_url_file"
                            ));
                        }
                    };
                    check_url(&url).map_err(|e| format!("{at}: {e}"))?;
                    let title = s
                        .title
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SLACK_TITLE.into());
                    let text = s.text.clone().unwrap_or_else(|| DEFAULT_SLACK_TEXT.into());
                    for t in [&title, &text] {
                        super::template::Template::parse_notification(&r.name, t)
                            .map_err(|e| format!("{at}: {e}"))?;
                    }
                    Receiver::Slack {
                        name: r.name.clone(),
                        url,
                        channel: s.channel.clone(),
                        username: s.username.clone(),
                        title,
                        text,
                        send_resolved: s.send_resolved.unwrap_or(true),
                    }
                }
                (None, Some(w)) => {
                    check_url(&w.url).map_err(|e| format!("{at}: {e}"))?;
                    Receiver::Webhook {
                        name: r.name.clone(),
                        url: w.url.clone(),
                        send_resolved: w.send_resolved.unwrap_or(true),
                    }
                }
                _ => return Err(format!("{at}: give exactly one of slack and webhook")),
            });
        }
        let root = file
            .route
            .as_ref()
            .ok_or("notifiers: a route is needed (at least `route: {receiver: NAME}`)")?;
        let defaults = Route {
            receiver: String::new(),
            group_by: Some(vec!["alertname".into()]),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            matchers: Vec::new(),
            continue_matching: false,
            routes: Vec::new(),
        };
        let route = build_route(root, &defaults, &receivers, "notifiers.route")?;
        if route.receiver.is_empty() {
            return Err("notifiers.route: the top route needs a receiver".into());
        }
        Ok(Some(Notifiers { receivers, route }))
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name() == name)
    }
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} is not an http(s) URL"))
    }
}

fn build_route(
    file: &RouteFile,
    parent: &Route,
    receivers: &[Receiver],
    at: &str,
) -> Result<Route, String> {
    let duration =
        |v: &Option<String>, inherited: Duration, what: &str| -> Result<Duration, String> {
            match v {
                Some(s) => parse_duration(s).map_err(|e| format!("{at}.{what}: {e}")),
                None => Ok(inherited),
            }
        };
    let receiver = file
        .receiver
        .clone()
        .unwrap_or_else(|| parent.receiver.clone());
    if !receiver.is_empty() && !receivers.iter().any(|r| r.name() == receiver) {
        return Err(format!("{at}: no receiver is named {receiver:?}"));
    }
    let group_by = match &file.group_by {
        Some(names) if names.iter().any(|n| n == "...") => None,
        Some(names) => Some(names.clone()),
        None => parent.group_by.clone(),
    };
    let mut route = Route {
        receiver,
        group_by,
        group_wait: duration(&file.group_wait, parent.group_wait, "group_wait")?,
        group_interval: duration(
            &file.group_interval,
            parent.group_interval,
            "group_interval",
        )?,
        repeat_interval: duration(
            &file.repeat_interval,
            parent.repeat_interval,
            "repeat_interval",
        )?,
        matchers: file
            .matchers
            .iter()
            .map(|m| Matcher::parse(m).map_err(|e| format!("{at}.matchers: {e}")))
            .collect::<Result<_, _>>()?,
        continue_matching: file.continue_matching,
        routes: Vec::new(),
    };
    if route.group_interval.is_zero() || route.repeat_interval.is_zero() {
        return Err(format!(
            "{at}: group_interval and repeat_interval must be longer than 0"
        ));
    }
    for (i, child) in file.routes.iter().enumerate() {
        let child = build_route(child, &route, receivers, &format!("{at}.routes[{i}]"))?;
        route.routes.push(child);
    }
    Ok(route)
}

/// The routes an alert goes to: the deepest matching ones, as Alertmanager walks its tree
/// (children in order, the first match wins unless it says `continue`; no matching child
/// means the node itself). Each route is named by its path of child indexes.
pub fn matching<'a>(root: &'a Route, labels: &Labels) -> Vec<(Vec<usize>, &'a Route)> {
    fn walk<'a>(
        node: &'a Route,
        path: Vec<usize>,
        labels: &Labels,
        out: &mut Vec<(Vec<usize>, &'a Route)>,
    ) -> bool {
        if !node.matchers.iter().all(|m| m.matches(labels)) {
            return false;
        }
        let mut any = false;
        for (i, child) in node.routes.iter().enumerate() {
            let mut p = path.clone();
            p.push(i);
            if walk(child, p, labels, out) {
                any = true;
                if !child.continue_matching {
                    break;
                }
            }
        }
        if !any {
            out.push((path, node));
        }
        true
    }
    let mut out = Vec::new();
    walk(root, Vec::new(), labels, &mut out);
    out
}

/// The labels an alert is grouped by on `route`.
pub fn group_labels(route: &Route, labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|l| {
            route
                .group_by
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == l.name().as_str()))
        })
        .map(|l| (l.name().to_string(), l.value().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn matchers_in_alertmanagers_syntax() {
        let m = Matcher::parse(r#"severity="page""#).unwrap();
        assert!(m.matches(&labels(&[("severity", "page")])));
        assert!(!m.matches(&labels(&[("severity", "ticket")])));
        let m = Matcher::parse(r#"team=~"db|web""#).unwrap();
        assert!(m.matches(&labels(&[("team", "web")])));
        assert!(!m.matches(&labels(&[("team", "webby")])));
        let m = Matcher::parse("env!=dev").unwrap();
        assert!(m.matches(&labels(&[])));
        assert!(!m.matches(&labels(&[("env", "dev")])));
        assert!(Matcher::parse("novalue").is_err());
        assert!(Matcher::parse(r#"a=~"(""#).is_err());
    }

    fn notifiers(yaml: &str) -> Result<Option<Notifiers>, String> {
        let file: NotifiersFile = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        Notifiers::from_file(&file)
    }

    #[test]
    fn routes_inherit_and_the_first_matching_child_wins() {
        let n = notifiers(
            "receivers:\n- name: a\n  webhook: {url: 'http://127.0.0.1:1/a'}\n- name: b\n  webhook: {url: 'http://127.0.0.1:1/b'}\nroute:\n  receiver: a\n  group_wait: 1s\n  routes:\n  - matchers: ['severity=\"page\"']\n    receiver: b\n    group_by: ['...']\n  - matchers: ['team=\"db\"']\n    continue: true\n",
        )
        .unwrap()
        .unwrap();
        let page = matching(&n.route, &labels(&[("severity", "page"), ("team", "db")]));
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].0, vec![0]);
        assert_eq!(page[0].1.receiver, "b");
        assert_eq!(page[0].1.group_wait, Duration::from_secs(1), "inherited");
        assert_eq!(page[0].1.group_by, None);
        let other = matching(&n.route, &labels(&[("severity", "info")]));
        assert_eq!(other[0].0, Vec::<usize>::new());
        assert_eq!(other[0].1.receiver, "a");
        assert_eq!(
            group_labels(other[0].1, &labels(&[("alertname", "X"), ("job", "j")])),
            BTreeMap::from([("alertname".to_owned(), "X".to_owned())])
        );
    }

    #[test]
    fn a_broken_section_is_refused_with_its_place() {
        let e =
            notifiers("receivers:\n- name: a\n  webhook: {url: 'ftp://x'}\nroute: {receiver: a}\n")
                .unwrap_err();
        assert!(e.contains("notifiers.receivers[0]"), "{e}");
        let e = notifiers(
            "receivers:\n- name: a\n  webhook: {url: 'http://x'}\nroute: {receiver: b}\n",
        )
        .unwrap_err();
        assert!(e.contains("no receiver is named \"b\""), "{e}");
        let e = notifiers(
            "receivers:\n- name: a\n  slack: {webhook_url: 'http://x', text: '{{ .Nope'}\nroute: {receiver: a}\n",
        )
        .unwrap_err();
        assert!(e.contains("unclosed action"), "{e}");
        assert_eq!(notifiers("{}").unwrap(), None);
    }
}
