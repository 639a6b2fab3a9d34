//! The templates of alert labels, annotations and notification texts: Go's `text/template`
//! (`strata_template`, shared with LogQL's `line_format`) with Prometheus's functions
//! ([`functions`]) and variables.
//!
//! A template sees `$labels` (the alert's labels), `$value` (the value of the series that
//! raised it), `$externalLabels` and `$externalURL`, or the same as fields of dot
//! (`.Labels`, `.Value`, …). Parsing (when a rule file is checked) refuses unknown variables and
//! functions; running never stops a rule: [`Template::expand_or_error`] leaves the error text
//! in the result as Prometheus does.

mod functions;

pub use functions::{Host, Prometheus, Rows};
pub use strata_engine::template::Value;
pub use strata_engine::template::format::{float as format_float, shortest_exp};
pub use strata_engine::template::query_escape;
use strata_engine::template::{Node, Run, parse};

/// The variables Prometheus defines for a rule's templates.
const RULE_VARS: [&str; 4] = ["$labels", "$value", "$externalLabels", "$externalURL"];

/// How many bytes Prometheus puts in front of a rule template's first line to define them
/// (`{{$labels := .Labels}}…{{$value := .Value}}`): columns on line 1 of its messages count
/// them, and so do ours.
const RULE_PREFIX: usize = 112;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
    /// Bytes before line 1 in the text Prometheus parses (its variable definitions).
    prefix: usize,
}

/// What a template is expanded with.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub labels: Vec<(String, String)>,
    pub external_labels: Vec<(String, String)>,
    pub external_url: String,
    pub value: f64,
}

impl Template {
    /// Parses `text`; `name` names the template in messages (Prometheus uses
    /// `__alert_<AlertName>`).
    pub fn parse(name: &str, text: &str) -> Result<Template, String> {
        let nodes = parse(text, &RULE_VARS, &Prometheus::default())
            .map_err(|e| format!("template: {name}:{}: {}", e.line, e.message))?;
        Ok(Template {
            name: name.to_owned(),
            nodes,
            prefix: RULE_PREFIX,
        })
    }

    /// Parses a notification text (a Slack title or message): no predefined variables; the
    /// data is dot (`.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`, …).
    pub fn parse_notification(name: &str, text: &str) -> Result<Template, String> {
        let nodes = parse(text, &[], &Prometheus::default())
            .map_err(|e| format!("template: {name}:{}: {}", e.line, e.message))?;
        Ok(Template {
            name: name.to_owned(),
            nodes,
            prefix: 0,
        })
    }

    /// Runs the template with `dot` as its data.
    pub fn expand_dot(&self, dot: Value) -> Result<String, String> {
        let mut run = Run {
            functions: &Prometheus::default(),
            vars: vec![("$".to_owned(), dot.clone())],
            out: String::new(),
            failed_at: None,
        };
        match run.run(&self.nodes, &dot) {
            Ok(()) => Ok(run.out),
            Err(e) => Err(self.located(run.failed_at, &e)),
        }
    }

    /// An execution error as Go's text/template words it, located at the failing command.
    fn located(&self, at: Option<(usize, usize, String)>, e: &str) -> String {
        let name = &self.name;
        match at {
            Some((line, col, shown)) => {
                let col = if line == 1 { col + self.prefix } else { col };
                format!(
                    "error executing template {name}: template: {name}:{line}:{col}: executing {name:?} at <{shown}>: {e}"
                )
            }
            None => format!("error executing template {name}: template: {name}: {e}"),
        }
    }

    /// Runs the template over `data`; `host` answers `query` (none: `query` fails).
    pub fn expand(&self, data: &Data, host: Option<&dyn Host>) -> Result<String, String> {
        let labels = |pairs: &[(String, String)]| {
            Value::labels(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        let dot = Value::Record(vec![
            ("Labels", labels(&data.labels)),
            ("ExternalLabels", labels(&data.external_labels)),
            ("ExternalURL", Value::Str(data.external_url.clone())),
            ("Value", Value::Float(data.value)),
        ]);
        let mut run = Run {
            functions: &Prometheus { host },
            vars: vec![
                ("$".to_owned(), dot.clone()),
                ("$labels".to_owned(), labels(&data.labels)),
                ("$value".to_owned(), Value::Float(data.value)),
                ("$externalLabels".to_owned(), labels(&data.external_labels)),
                (
                    "$externalURL".to_owned(),
                    Value::Str(data.external_url.clone()),
                ),
            ],
            out: String::new(),
            failed_at: None,
        };
        if let Err(e) = run.run(&self.nodes, &dot) {
            return Err(self.located(run.failed_at, &e));
        }
        Ok(run.out)
    }

    /// [`Template::expand`], with a failure written into the text as Prometheus does.
    pub fn expand_or_error(&self, data: &Data, host: Option<&dyn Host>) -> String {
        self.expand(data, host)
            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }
}

/// Parses and expands `text` in one step (a template that does not parse gives its error in
/// the text, as one that fails to run does).
pub fn expand_text(name: &str, text: &str, data: &Data, host: Option<&dyn Host>) -> String {
    if !text.contains("{{") {
        return text.to_owned();
    }
    match Template::parse(name, text) {
        Ok(t) => t.expand_or_error(data, host),
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Host for Fixed {
        fn query(&self, query: &str) -> Result<Rows, String> {
            match query {
                "up" => Ok(vec![
                    (vec![("instance".into(), "b:9100".into())], 0.0),
                    (vec![("instance".into(), "a:9100".into())], 1.0),
                ]),
                "none" => Ok(Vec::new()),
                _ => Err(format!("bad query {query:?}")),
            }
        }

        fn external_url(&self) -> String {
            "http://strata.example:9201".into()
        }
    }

    fn data() -> Data {
        Data {
            labels: vec![
                ("instance".into(), "node-1.example.org:9100".into()),
                ("job".into(), "node".into()),
            ],
            external_labels: vec![("cluster".into(), "eu".into())],
            external_url: "http://strata.example:9201".into(),
            value: 0.12345,
        }
    }

    fn expand(text: &str) -> String {
        Template::parse("__alert_Test", text)
            .unwrap()
            .expand_or_error(&data(), Some(&Fixed))
    }

    #[test]
    fn variables_and_fields_of_the_alert() {
        assert_eq!(
            expand(
                "{{ $labels.instance }} of {{ .Labels.job }} = {{ $value }} in {{ $externalLabels.cluster }}"
            ),
            "node-1.example.org:9100 of node = 0.12345 in eu"
        );
        assert_eq!(expand("[{{ $labels.missing }}]"), "[]");
        assert_eq!(expand("{{ .ExternalURL }}"), "http://strata.example:9201");
    }

    #[test]
    fn prometheus_functions() {
        assert_eq!(expand("{{ $value | humanizePercentage }}"), "12.35%");
        assert_eq!(expand("{{ humanize 1234567 }}"), "1.235M");
        assert_eq!(expand("{{ 1048576 | humanize1024 }}"), "1Mi");
        assert_eq!(expand("{{ humanizeDuration 3661 }}"), "1h 1m 1s");
        assert_eq!(
            expand("{{ humanizeTimestamp 0 }}"),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(expand(r#"{{ printf "%.1f" $value }}"#), "0.1");
        assert_eq!(
            expand(r#"{{ "hello world" | title }} {{ toUpper "a" }} {{ toLower "B" }}"#),
            "Hello World A b"
        );
        assert_eq!(
            expand(r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#),
            "node-1.example.org"
        );
        assert_eq!(
            expand(r#"{{ if match "^node" .Labels.job }}yes{{ end }}"#),
            "yes"
        );
        assert_eq!(
            expand("{{ $labels.instance | stripPort }} {{ $labels.instance | stripDomain }}"),
            "node-1.example.org node-1:9100"
        );
        assert_eq!(expand(r#"{{ parseDuration "1m30s" }}"#), "90");
        assert_eq!(
            expand(r#"{{ externalURL }}|{{ pathPrefix }}|{{ graphLink "a b" }}"#),
            "http://strata.example:9201||http://strata.example:9201/graph?g0.expr=a+b&g0.tab=0"
        );
    }

    #[test]
    fn queries_in_templates() {
        assert_eq!(
            expand(r#"{{ with query "up" }}{{ . | first | value }}{{ end }}"#),
            "0"
        );
        assert_eq!(
            expand(
                r#"{{ range query "up" | sortByLabel "instance" }}{{ .Labels.instance }}={{ .Value }};{{ end }}"#
            ),
            "a:9100=1;b:9100=0;"
        );
        assert_eq!(
            expand(r#"{{ query "up" | first | label "instance" }}"#),
            "b:9100"
        );
        assert_eq!(
            expand(r#"{{ range query "none" }}x{{ else }}empty{{ end }}"#),
            "empty"
        );
        assert!(
            expand(r#"{{ query "none" | first }}"#)
                .contains("first() called on vector with no elements")
        );
        assert!(expand(r#"{{ query "boom" }}"#).starts_with("<error expanding template: "));
    }

    #[test]
    fn control_flow_and_variables() {
        assert_eq!(
            expand(
                "{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}"
            ),
            "mid"
        );
        assert_eq!(
            expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"),
            "instance=node-1.example.org:9100,job=node,"
        );
        assert_eq!(expand("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
        assert_eq!(
            expand(
                "{{ range $i, $e := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $i }}{{ end }}"
            ),
            "0"
        );
        assert_eq!(
            expand("{{ with $labels.nothing }}x{{ else }}none{{ end }}"),
            "none"
        );
        assert_eq!(
            expand("{{ and 1 0 }} {{ or 0 \"\" 3 }} {{ not true }}"),
            "0 3 false"
        );
        assert_eq!(
            expand("{{ len $labels }} {{ index $labels \"job\" }}"),
            "2 node"
        );
        assert_eq!(expand("a\n  {{- /* gone */ -}}\n  b"), "ab");
    }

    #[test]
    fn failures_leave_their_text_as_prometheus_does() {
        let out = expand("{{ gt $value 1 }}");
        assert_eq!(
            out,
            "<error expanding template: error executing template __alert_Test: template: __alert_Test:1:115: executing \"__alert_Test\" at <gt $value 1>: error calling gt: incompatible types for comparison>"
        );
        assert!(
            expand("x\n  {{ humanize (printf \"%s\" \"a\") }}")
                .contains(":2:5: executing \"__alert_Test\" at <humanize (printf \"%s\" \"a\")>: error calling humanize"),
        );
        assert!(expand("{{ .Nope }}").contains("can't evaluate field Nope"));
        let e = Template::parse("__alert_Test", "{{ $label.foo }}").unwrap_err();
        assert_eq!(e, "template: __alert_Test:1: undefined variable \"$label\"");
        assert_eq!(
            expand_text("n", "{{ if }}", &data(), None),
            "<error expanding template: template: n:1: missing value for if>"
        );
    }
}
