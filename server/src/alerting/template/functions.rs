//! Prometheus's template functions (those of alert labels, annotations and notifications):
//! `humanize*`, `toTime`, `toUpper`, `toLower`, `title`, `match`, `reReplaceAll`, `query` with
//! `first`, `label`, `value`, `strvalue`, `sortByLabel`, `args`, `safeHtml`, `stripPort`,
//! `stripDomain`, `pathPrefix`, `externalURL`, `graphLink`, `tableLink`, `parseDuration`.
//! Go's built-ins and the language itself are `strata_template`'s.

use std::collections::BTreeMap;

use strata_engine::template::{
    Functions, Value, format, query_escape, regex, title, to_float, to_str, want,
};

/// Rows of a query's result: each series' labels and value.
pub type Rows = Vec<(Vec<(String, String)>, f64)>;

/// What `query` in a template runs against, and where the links it makes point.
pub trait Host {
    /// An instant PromQL query at the evaluation time: each series' labels and value.
    fn query(&self, query: &str) -> Result<Rows, String>;
    /// The server's external URL (for `externalURL`, `graphLink`, `tableLink`).
    fn external_url(&self) -> String;
}

const NAMES: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toUpper",
    "toLower",
    "title",
    "match",
    "reReplaceAll",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "safeHtml",
    "stripPort",
    "stripDomain",
    "pathPrefix",
    "externalURL",
    "graphLink",
    "tableLink",
    "parseDuration",
];

/// Prometheus's functions; `host` answers `query` and gives the external URL (none: `query`
/// fails, the URL is empty).
#[derive(Clone, Copy, Default)]
pub struct Prometheus<'h> {
    pub host: Option<&'h dyn Host>,
}

impl std::fmt::Debug for Prometheus<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("host", &self.host.map(|h| h.external_url()))
            .finish()
    }
}

impl Functions for Prometheus<'_> {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name)
    }

    fn call(&self, name: &str, v: Vec<Value>) -> Result<Value, String> {
        let host = self.host;
        let s = |f: fn(f64) -> String, v: &[Value]| -> Result<Value, String> {
            want(name, v, 1)?;
            Ok(Value::Str(f(to_float(&v[0])?)))
        };
        Ok(match name {
            "humanize" => s(format::humanize, &v)?,
            "humanize1024" => s(format::humanize1024, &v)?,
            "humanizeDuration" => s(format::humanize_duration, &v)?,
            "humanizePercentage" => s(format::humanize_percentage, &v)?,
            "humanizeTimestamp" => s(format::humanize_timestamp, &v)?,
            "toTime" => {
                want(name, &v, 1)?;
                let f = to_float(&v[0])?;
                if !f.is_finite() {
                    return Err("value is NaN or Inf".into());
                }
                Value::Str(format::go_time(f))
            }
            "toUpper" | "toLower" | "title" | "safeHtml" | "stripPort" | "stripDomain" => {
                want(name, &v, 1)?;
                let text = to_str(&v[0])?;
                Value::Str(match name {
                    "toUpper" => text.to_uppercase(),
                    "toLower" => text.to_lowercase(),
                    "title" => title(&text),
                    "stripPort" => strip_port(&text),
                    "stripDomain" => strip_domain(&text),
                    _ => text,
                })
            }
            "match" => {
                want(name, &v, 2)?;
                Value::Bool(regex(&to_str(&v[0])?)?.is_match(&to_str(&v[1])?))
            }
            "reReplaceAll" => {
                want(name, &v, 3)?;
                let re = regex(&to_str(&v[0])?)?;
                Value::Str(
                    re.replace_all(&to_str(&v[2])?, to_str(&v[1])?.as_str())
                        .into_owned(),
                )
            }
            "query" => {
                want(name, &v, 1)?;
                let host = host.ok_or("queries are not available here")?;
                let rows = host.query(&to_str(&v[0])?)?;
                Value::List(rows.into_iter().map(|(l, x)| sample(l, x)).collect())
            }
            "first" => {
                want(name, &v, 1)?;
                match &v[0] {
                    Value::List(l) => l
                        .first()
                        .cloned()
                        .ok_or("first() called on vector with no elements")?,
                    other => {
                        return Err(format!(
                            "wrong type for value; expected template.queryResult; got {}",
                            other.go_type()
                        ));
                    }
                }
            }
            "label" => {
                want(name, &v, 2)?;
                let (labels, _) = sample_fields(&v[1])?;
                labels
                    .get(&to_str(&v[0])?)
                    .cloned()
                    .unwrap_or(Value::Str(String::new()))
            }
            "value" => {
                want(name, &v, 1)?;
                Value::Float(sample_fields(&v[0])?.1)
            }
            "strvalue" => {
                want(name, &v, 1)?;
                let (labels, _) = sample_fields(&v[0])?;
                labels
                    .get("__value__")
                    .cloned()
                    .unwrap_or(Value::Str(String::new()))
            }
            "sortByLabel" => {
                want(name, &v, 2)?;
                let label = to_str(&v[0])?;
                let Value::List(mut list) = v[1].clone() else {
                    return Err(format!(
                        "wrong type for value; expected template.queryResult; got {}",
                        v[1].go_type()
                    ));
                };
                let key = |s: &Value| {
                    sample_fields(s)
                        .map(|(l, _)| l.get(&label).map(ToString::to_string).unwrap_or_default())
                        .unwrap_or_default()
                };
                list.sort_by_key(key);
                Value::List(list)
            }
            "args" => Value::Map(
                v.into_iter()
                    .enumerate()
                    .map(|(i, x)| (format!("arg{i}"), x))
                    .collect(),
            ),
            "pathPrefix" => Value::Str(
                host.map(|h| h.external_url())
                    .and_then(|u| {
                        u.split_once("://").map(|(_, rest)| {
                            rest.find('/')
                                .map(|i| rest[i..].to_owned())
                                .unwrap_or_default()
                        })
                    })
                    .unwrap_or_default(),
            ),
            "externalURL" => Value::Str(host.map(|h| h.external_url()).unwrap_or_default()),
            "graphLink" | "tableLink" => {
                want(name, &v, 1)?;
                let base = host.map(|h| h.external_url()).unwrap_or_default();
                let tab = if name == "graphLink" { 0 } else { 1 };
                Value::Str(format!(
                    "{base}/graph?g0.expr={}&g0.tab={tab}",
                    query_escape(&to_str(&v[0])?)
                ))
            }
            "parseDuration" => {
                want(name, &v, 1)?;
                let text = to_str(&v[0])?;
                let d = crate::alerting::time::parse_duration(&text)?;
                Value::Float(d.as_secs_f64())
            }
            other => return Err(format!("function {other:?} not defined")),
        })
    }
}

fn sample_fields(v: &Value) -> Result<(&BTreeMap<String, Value>, f64), String> {
    match v {
        Value::Record(fields) => {
            let labels = fields.iter().find(|(n, _)| *n == "Labels");
            let value = fields.iter().find(|(n, _)| *n == "Value");
            match (labels, value) {
                (Some((_, Value::Map(l))), Some((_, Value::Float(x)))) => Ok((l, *x)),
                _ => Err("not a query sample".into()),
            }
        }
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.go_type()
        )),
    }
}

fn sample(labels: Vec<(String, String)>, value: f64) -> Value {
    Value::Record(vec![
        (
            "Labels",
            Value::Map(
                labels
                    .into_iter()
                    .map(|(k, v)| (k, Value::Str(v)))
                    .collect(),
            ),
        ),
        ("Value", Value::Float(value)),
    ])
}

/// `host:port` → `host` (IPv6 brackets removed).
fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_owned();
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_owned()
        }
        _ => s.to_owned(),
    }
}

/// `host.example.org:9100` → `host:9100`; IP addresses are left alone.
fn strip_domain(s: &str) -> String {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (s, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() || s.starts_with('[') {
        return s.to_owned();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_owned(),
    }
}
