//! The templates of `line_format` and `label_format`: Go's `text/template`
//! ([`strata_template`], the language of the rule evaluator's alert texts too: conditionals,
//! ranges, variables, `printf`, comparisons) over the entry's labels as fields of dot
//! (`{{ .status }}`; a missing label reads as empty), with Loki's functions (sprig's names
//! and Go's `strings` ones):
//!
//! - the entry: `__line__`, `__timestamp__` (a time: printed as Go prints one);
//! - times ([`strata_template::time`]: Go's reference layouts, in UTC, the server's local
//!   zone here): `now`, `date`, `toDate`, `toDateInZone` (zones `UTC` and `Local`; no zone
//!   database is held, so others are refused with a message), `unixToTime` (days, seconds,
//!   milli-, micro- or nanoseconds by the digits), `unixEpoch`, `unixEpochMillis`,
//!   `unixEpochNanos` (of a time; without one, of the entry's), `duration`/`duration_seconds`,
//!   `bytes`;
//! - strings: `upper`/`ToUpper`, `lower`/`ToLower`, `title`/`Title`, `trim`/`TrimSpace`,
//!   `trimAll`, `Trim`, `TrimLeft`, `TrimRight`, `trimPrefix`/`TrimPrefix`,
//!   `trimSuffix`/`TrimSuffix`, `replace`, `Replace`, `trunc`, `substr`, `repeat`, `nospace`,
//!   `quote`, `squote`, `contains`, `hasPrefix`, `hasSuffix`, `indent`, `nindent`,
//!   `alignLeft`, `alignRight`, `count`, `default`, `urlencode`, `urldecode`, `b64enc`,
//!   `b64dec`, `regexReplaceAll`, `regexReplaceAllLiteral`, `fromJson` (into maps, lists,
//!   float64s, as Go decodes JSON);
//! - numbers: `int`, `float64`, `add`, `mul`, `max`, `min`, `addf`, `subf`, `mulf`, `divf`,
//!   `maxf`, `minf` (of any number of operands), `sub`, `div`, `mod`, `ceil`, `floor`,
//!   `round` (to places, up from a `roundOn`).

use std::collections::BTreeMap;

use base64::Engine;
use strata_template::time::{self, Time};
use strata_template::{Functions, Node, Run, Value, parse, regex, to_float, want};

/// A parsed template (two are equal when their texts are).
#[derive(Debug, Clone)]
pub struct Template {
    text: String,
    nodes: Vec<Node>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.text == other.text
    }
}

impl Eq for Template {}

/// What a template is expanded with.
#[derive(Debug)]
pub struct Context<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub line: &'a str,
    pub ts_ns: i64,
}

impl Template {
    /// Parses `text`; `Err` says what is wrong and where.
    pub fn parse(text: &str) -> Result<Template, String> {
        let nodes = parse(text, &[], &Loki::default())
            .map_err(|e| format!("template: line {}: {}", e.line, e.message))?;
        Ok(Template {
            text: text.to_owned(),
            nodes,
        })
    }

    /// The text the template writes for one entry.
    pub fn expand(&self, ctx: &Context<'_>) -> Result<String, String> {
        let dot = Value::Map(
            ctx.labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        );
        let functions = Loki {
            line: ctx.line,
            ts_ns: ctx.ts_ns,
        };
        let mut run = Run {
            functions: &functions,
            vars: vec![("$".to_owned(), dot.clone())],
            out: String::new(),
            failed_at: None,
        };
        run.run(&self.nodes, &dot)?;
        Ok(run.out)
    }
}

const NAMES: &[&str] = &[
    "__line__",
    "__timestamp__",
    "now",
    "date",
    "toDate",
    "toDateInZone",
    "unixToTime",
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
    "duration",
    "duration_seconds",
    "bytes",
    "fromJson",
    "upper",
    "ToUpper",
    "lower",
    "ToLower",
    "title",
    "Title",
    "trim",
    "TrimSpace",
    "trimAll",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "trimPrefix",
    "TrimPrefix",
    "trimSuffix",
    "TrimSuffix",
    "replace",
    "Replace",
    "trunc",
    "substr",
    "repeat",
    "nospace",
    "quote",
    "squote",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "alignLeft",
    "alignRight",
    "count",
    "default",
    "urlencode",
    "urldecode",
    "b64enc",
    "b64dec",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
];

/// Go's zero time, January 1 of year 1, UTC: what sprig's `toDate` gives for a value that
/// does not fit its layout.
const ZERO_TIME: Time = Time {
    secs: -62_135_596_800,
    nanos: 0,
};

/// A JSON value as Go's `encoding/json` decodes one into an `interface{}`: numbers are
/// float64s, objects maps.
fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(fields) => {
            Value::Map(fields.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// The most bytes `repeat`, `indent` and the alignments may make.
const MADE_BYTES_MAX: usize = 1 << 20;

/// Loki's functions, over one entry's line and time.
#[derive(Debug, Default)]
struct Loki<'a> {
    line: &'a str,
    ts_ns: i64,
}

/// A value as a string, numbers printed as Go prints them.
fn text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An integer, as sprig's `toInt` reads one: numbers cut, strings parsed (else 0).
fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

/// A float, as sprig's `toFloat64` reads one (else 0).
fn float(v: &Value) -> f64 {
    match v {
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        other => to_float(other).unwrap_or(0.0),
    }
}

fn bounded(s: String) -> Result<Value, String> {
    if s.len() > MADE_BYTES_MAX {
        return Err(format!(
            "the result would be {} bytes, more than {MADE_BYTES_MAX}",
            s.len()
        ));
    }
    Ok(Value::Str(s))
}

impl Functions for Loki<'_> {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name)
    }

    fn call(&self, name: &str, v: Vec<Value>) -> Result<Value, String> {
        let s = |i: usize| v.get(i).map(text).unwrap_or_default();
        let need = |n: usize| want(name, &v, n);
        let ints = || -> Result<(i64, i64), String> {
            need(2)?;
            Ok((int(&v[0]), int(&v[1])))
        };
        // sprig's variadic functions: the first operand and any number more.
        let operands = || -> Result<(&Value, &[Value]), String> {
            v.split_first()
                .ok_or_else(|| format!("wrong number of args for {name}: want at least 1 got 0"))
        };
        Ok(match name {
            "__line__" => {
                need(0)?;
                Value::Str(self.line.to_owned())
            }
            "__timestamp__" => {
                need(0)?;
                Value::Time(Time::from_nanos(self.ts_ns))
            }
            "now" => {
                need(0)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                Value::Time(Time::from_nanos(now))
            }
            "date" => {
                need(2)?;
                // sprig's: a time, or an integer of seconds; anything else is now.
                let t = match &v[1] {
                    Value::Time(t) => *t,
                    Value::Int(secs) => Time {
                        secs: *secs,
                        nanos: 0,
                    },
                    _ => return self.call("date", vec![v[0].clone(), self.call("now", vec![])?]),
                };
                Value::Str(time::format(t, &s(0)).ok_or("the time is out of range")?)
            }
            "toDate" | "toDateInZone" => {
                let (layout, zone, value) = if name == "toDate" {
                    need(2)?;
                    (s(0), "UTC".to_owned(), s(1))
                } else {
                    need(3)?;
                    (s(0), s(1), s(2))
                };
                // Strata's local zone is UTC, and it holds no zone database.
                if !matches!(zone.as_str(), "" | "UTC" | "Local") {
                    return Err(format!(
                        "unknown time zone {zone:?}: Strata reads times in UTC or Local (which is UTC)"
                    ));
                }
                // A value that does not fit the layout is Go's zero time, as sprig gives it.
                Value::Time(time::parse(&layout, &value, 0).unwrap_or(ZERO_TIME))
            }
            "unixToTime" => {
                need(1)?;
                let epoch = s(0);
                let n: i64 = epoch
                    .parse()
                    .map_err(|_| format!("unable to parse time {epoch:?}: not an integer"))?;
                // The epoch's unit is told by its digits: days, seconds, milli-, micro-,
                // nanoseconds.
                let digits = epoch.trim_start_matches('-').len();
                Value::Time(match digits {
                    5 => Time {
                        secs: n.saturating_mul(86_400),
                        nanos: 0,
                    },
                    10 => Time { secs: n, nanos: 0 },
                    13 => Time::from_nanos(n.saturating_mul(1_000_000)),
                    16 => Time::from_nanos(n.saturating_mul(1_000)),
                    19 => Time::from_nanos(n),
                    _ => {
                        return Err(format!(
                            "unable to parse time {epoch:?}: unknown epoch length"
                        ));
                    }
                })
            }
            "unixEpoch" | "unixEpochMillis" | "unixEpochNanos" => {
                // Of the time given (`{{ unixEpoch now }}`, `{{ __timestamp__ | unixEpoch }}`);
                // without one, of the entry's time.
                let ns = match v.first() {
                    Some(Value::Time(t)) => t.unix_nanos(),
                    Some(other) => {
                        return Err(format!(
                            "wrong type for value; expected time.Time; got {}",
                            other.go_type()
                        ));
                    }
                    None => self.ts_ns,
                };
                Value::Int(match name {
                    "unixEpoch" => ns.div_euclid(1_000_000_000),
                    "unixEpochMillis" => ns.div_euclid(1_000_000),
                    _ => ns,
                })
            }
            "duration" | "duration_seconds" => {
                need(1)?;
                Value::Float(crate::units::parse_duration_secs(&s(0)).unwrap_or(0.0))
            }
            "bytes" => {
                need(1)?;
                Value::Int(crate::units::parse_bytes(&s(0)).unwrap_or(0.0) as i64)
            }
            "fromJson" => {
                need(1)?;
                // Not JSON: the empty string, as Loki gives it.
                serde_json::from_str::<serde_json::Value>(&s(0))
                    .map_or(Value::Str(String::new()), from_json)
            }
            "upper" | "ToUpper" => {
                need(1)?;
                Value::Str(s(0).to_uppercase())
            }
            "lower" | "ToLower" => {
                need(1)?;
                Value::Str(s(0).to_lowercase())
            }
            "title" | "Title" => {
                need(1)?;
                Value::Str(strata_template::title(&s(0)))
            }
            "trim" | "TrimSpace" => {
                need(1)?;
                Value::Str(s(0).trim().to_owned())
            }
            "nospace" => {
                need(1)?;
                Value::Str(s(0).chars().filter(|c| !c.is_whitespace()).collect())
            }
            "quote" => {
                need(1)?;
                Value::Str(format!("{:?}", s(0)))
            }
            "squote" => {
                need(1)?;
                Value::Str(format!("'{}'", s(0)))
            }
            // sprig: the cut set first, the string last.
            "trimAll" => {
                need(2)?;
                let cut = s(0);
                Value::Str(s(1).trim_matches(|c| cut.contains(c)).to_owned())
            }
            // Go's strings: the string first.
            "Trim" | "TrimLeft" | "TrimRight" => {
                need(2)?;
                let (text, cut) = (s(0), s(1));
                let cuts = |c: char| cut.contains(c);
                Value::Str(
                    match name {
                        "Trim" => text.trim_matches(cuts),
                        "TrimLeft" => text.trim_start_matches(cuts),
                        _ => text.trim_end_matches(cuts),
                    }
                    .to_owned(),
                )
            }
            "trimPrefix" | "TrimPrefix" | "trimSuffix" | "TrimSuffix" => {
                need(2)?;
                let (affix, text) = if name.starts_with('T') {
                    (s(1), s(0))
                } else {
                    (s(0), s(1))
                };
                let cut = if name.ends_with("refix") {
                    text.strip_prefix(affix.as_str())
                } else {
                    text.strip_suffix(affix.as_str())
                };
                Value::Str(cut.unwrap_or(&text).to_owned())
            }
            "replace" => {
                need(3)?;
                Value::Str(s(2).replace(&s(0), &s(1)))
            }
            "Replace" => {
                need(4)?;
                let n = int(&v[3]);
                Value::Str(if n < 0 {
                    s(0).replace(&s(1), &s(2))
                } else {
                    s(0).replacen(&s(1), &s(2), n as usize)
                })
            }
            "default" => {
                need(2)?;
                if v[1].truth() {
                    v[1].clone()
                } else {
                    v[0].clone()
                }
            }
            "repeat" => {
                need(2)?;
                let n = int(&v[0]).max(0) as usize;
                let one = s(1);
                if one.len().saturating_mul(n) > MADE_BYTES_MAX {
                    return Err(format!(
                        "repeating {n} times makes more than {MADE_BYTES_MAX} bytes"
                    ));
                }
                Value::Str(one.repeat(n))
            }
            "trunc" => {
                need(2)?;
                let n = int(&v[0]);
                let text = s(1);
                let count = text.chars().count() as i64;
                Value::Str(if n >= 0 {
                    text.chars().take(n as usize).collect()
                } else {
                    text.chars().skip((count + n).max(0) as usize).collect()
                })
            }
            "substr" => {
                need(3)?;
                let (start, end) = (int(&v[0]), int(&v[1]));
                let chars: Vec<char> = s(2).chars().collect();
                let start = start.clamp(0, chars.len() as i64) as usize;
                let end = if end < 0 {
                    chars.len()
                } else {
                    (end as usize).min(chars.len())
                };
                Value::Str(chars[start..end.max(start)].iter().collect())
            }
            "contains" | "hasPrefix" | "hasSuffix" => {
                need(2)?;
                let (part, text) = (s(0), s(1));
                Value::Bool(match name {
                    "contains" => text.contains(&part),
                    "hasPrefix" => text.starts_with(&part),
                    _ => text.ends_with(&part),
                })
            }
            "indent" | "nindent" => {
                need(2)?;
                let pad = " ".repeat(int(&v[0]).clamp(0, 1024) as usize);
                let body = s(1).replace('\n', &format!("\n{pad}"));
                let nl = if name == "nindent" { "\n" } else { "" };
                bounded(format!("{nl}{pad}{body}"))?
            }
            "alignLeft" | "alignRight" => {
                need(2)?;
                let width = int(&v[0]).clamp(0, MADE_BYTES_MAX as i64) as usize;
                let text = s(1);
                let chars: Vec<char> = text.chars().collect();
                Value::Str(if chars.len() >= width {
                    chars[..width].iter().collect()
                } else if name == "alignLeft" {
                    format!("{text:<width$}")
                } else {
                    format!("{text:>width$}")
                })
            }
            "count" => {
                need(2)?;
                Value::Int(regex(&s(0))?.find_iter(&s(1)).count() as i64)
            }
            "urlencode" => {
                need(1)?;
                Value::Str(strata_template::query_escape(&s(0)))
            }
            "urldecode" => {
                need(1)?;
                let text = s(0).replace('+', " ");
                let bytes = text.as_bytes();
                let mut out = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' {
                        let hex = text
                            .get(i + 1..i + 3)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| format!("invalid URL escape {:?}", &text[i..]))?;
                        out.push(hex);
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                Value::Str(String::from_utf8_lossy(&out).into_owned())
            }
            "b64enc" => {
                need(1)?;
                Value::Str(base64::engine::general_purpose::STANDARD.encode(s(0)))
            }
            "b64dec" => {
                need(1)?;
                let text = s(0);
                Value::Str(
                    base64::engine::general_purpose::STANDARD
                        .decode(&text)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .map_err(|e| format!("illegal base64 data in {text:?}: {e}"))?,
                )
            }
            "regexReplaceAll" | "regexReplaceAllLiteral" => {
                need(3)?;
                let re = regex(&s(0))?;
                let (text, with) = (s(1), s(2));
                Value::Str(if name == "regexReplaceAll" {
                    re.replace_all(&text, with.as_str()).into_owned()
                } else {
                    re.replace_all(&text, regex::NoExpand(&with)).into_owned()
                })
            }
            "int" => {
                need(1)?;
                Value::Int(int(&v[0]))
            }
            "float64" => {
                need(1)?;
                Value::Float(float(&v[0]))
            }
            "sub" | "div" | "mod" => {
                let (a, b) = ints()?;
                Value::Int(match name {
                    "sub" => a.wrapping_sub(b),
                    _ if b == 0 => return Err("integer divide by zero".into()),
                    "div" => a.wrapping_div(b),
                    _ => a.wrapping_rem(b),
                })
            }
            // sprig's: any number of operands, the first alone allowed.
            "add" | "mul" | "max" | "min" => {
                let (first, rest) = operands()?;
                Value::Int(rest.iter().map(int).fold(int(first), |a, b| match name {
                    "add" => a.wrapping_add(b),
                    "mul" => a.wrapping_mul(b),
                    "max" => a.max(b),
                    _ => a.min(b),
                }))
            }
            "addf" | "subf" | "mulf" | "divf" | "maxf" | "minf" => {
                let (first, rest) = operands()?;
                Value::Float(
                    rest.iter()
                        .map(float)
                        .fold(float(first), |a, b| match name {
                            "addf" => a + b,
                            "subf" => a - b,
                            "mulf" => a * b,
                            "divf" => a / b,
                            "maxf" => a.max(b),
                            _ => a.min(b),
                        }),
                )
            }
            "ceil" | "floor" => {
                need(1)?;
                let x = float(&v[0]);
                Value::Float(if name == "ceil" { x.ceil() } else { x.floor() })
            }
            "round" => {
                // sprig's `round x places [roundOn]`: up from `roundOn` (0.5) of the last place.
                if v.is_empty() || v.len() > 3 {
                    return Err(format!(
                        "wrong number of args for round: want 1 to 3 got {}",
                        v.len()
                    ));
                }
                let pow = 10f64.powf(v.get(1).map_or(0.0, float));
                let on = v.get(2).map_or(0.5, float);
                let digits = float(&v[0]) * pow;
                let up = digits.fract() >= on;
                Value::Float(if up { digits.ceil() } else { digits.floor() } / pow)
            }
            other => return Err(format!("function {other:?} not defined")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, labels: &[(&str, &str)], line: &str) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .expand(&Context {
                labels: &labels,
                line,
                ts_ns: 1_700_000_000_123_000_000,
            })
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn labels_lines_and_functions_expand() {
        let l = [("method", "get"), ("path", "/api/v1/pay "), ("status", "")];
        assert_eq!(
            expand("{{.method}} {{ .path }}", &l, ""),
            "get /api/v1/pay "
        );
        assert_eq!(expand("{{ .method | ToUpper }}", &l, ""), "GET");
        assert_eq!(expand("{{ upper .method }}", &l, ""), "GET");
        assert_eq!(
            expand("{{ .path | trim | trimPrefix \"/api\" }}", &l, ""),
            "/v1/pay"
        );
        assert_eq!(expand("{{ .status | default \"none\" }}", &l, ""), "none");
        assert_eq!(
            expand("{{ replace \"/\" \"_\" .path }}", &l, ""),
            "_api_v1_pay "
        );
        assert_eq!(
            expand("{{ Replace .path \"/\" \"_\" 1 }}", &l, ""),
            "_api/v1/pay "
        );
        assert_eq!(
            expand("{{ __line__ | trunc 5 }}", &l, "hello world"),
            "hello"
        );
        assert_eq!(expand("{{ .missing }}x", &l, ""), "x");
        assert_eq!(
            expand("{{ __timestamp__ }}", &l, ""),
            "2023-11-14 22:13:20.123 +0000 UTC"
        );
        assert_eq!(expand("{{ unixEpochMillis }}", &l, ""), "1700000000123");
        assert_eq!(expand("{{ \"a b\" | title }}", &l, ""), "A B");
    }

    /// The language of alert texts: conditionals, comparisons, variables, ranges, `printf`.
    #[test]
    fn conditionals_variables_and_printf_are_go_s() {
        let l = [("status", "503"), ("took", "0.25"), ("user", "ann")];
        assert_eq!(
            expand(
                r#"{{ if ge (int .status) 500 }}ERR{{ else if eq .status "404" }}MISS{{ else }}ok{{ end }}"#,
                &l,
                ""
            ),
            "ERR"
        );
        assert_eq!(
            expand(
                r#"{{ printf "%s took %.0fms" .user (mulf .took 1000) }}"#,
                &l,
                ""
            ),
            "ann took 250ms"
        );
        assert_eq!(
            expand(
                r#"{{ $u := .user | upper }}{{ $u }}-{{ $u | len }}"#,
                &l,
                ""
            ),
            "ANN-3"
        );
        assert_eq!(
            expand(
                r#"{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}"#,
                &l,
                ""
            ),
            "status=503;took=0.25;user=ann;"
        );
        assert_eq!(
            expand(r#"{{ with .nothing }}x{{ else }}empty{{ end }}"#, &l, ""),
            "empty"
        );
        assert_eq!(
            expand(
                r#"{{ if and (contains "nn" .user) (hasPrefix "a" .user) }}yes{{ end }}"#,
                &l,
                ""
            ),
            "yes"
        );
        assert_eq!(
            expand(r#"{{ regexReplaceAll "([a-z])n+" .user "${1}N" }}"#, &l, ""),
            "aN"
        );
        assert_eq!(expand(r#"{{ add 2 (int .status) }}"#, &l, ""), "505");
        assert_eq!(expand(r#"{{ .user | b64enc }}"#, &l, ""), "YW5u");
        assert_eq!(expand(r#"{{ "YW5u" | b64dec }}"#, &l, ""), "ann");
        assert_eq!(expand(r#"{{ alignRight 5 .user }}|"#, &l, ""), "  ann|");
        assert_eq!(
            expand(r#"{{ "a b&c" | urlencode | urldecode }}"#, &l, ""),
            "a b&c"
        );
    }

    /// sprig's and Loki's functions of times (Go's reference layouts), JSON and numbers.
    #[test]
    fn times_json_and_operands_as_loki_reads_them() {
        let l = [
            ("created", "2021-11-02 10:00:00"),
            ("epoch", "1679577215"),
            ("ms", "1679577215123"),
            ("queries", r#"[{"query":"up"},{"query":"rate(x[5m])"}]"#),
        ];
        // The entry's time is 2023-11-14 22:13:20.123 UTC; a value that does not fit its
        // layout is Go's zero time.
        for (t, want) in [
            (
                "{{ __timestamp__ | date \"Mon Jan _2 15:04:05.000 2006\" }}",
                "Tue Nov 14 22:13:20.123 2023",
            ),
            ("{{ unixEpoch __timestamp__ }}", "1700000000"),
            (
                "{{ .created | toDate \"2006-01-02 15:04:05\" | unixEpoch }}",
                "1635847200",
            ),
            (
                "{{ .created | toDateInZone \"2006-01-02 15:04:05\" \"UTC\" | date \"02/01/06 3PM\" }}",
                "02/11/21 10AM",
            ),
            (
                "{{ toDate \"2006-01-02\" \"yesterday\" | date \"2006-01-02\" }}",
                "0001-01-01",
            ),
            (
                "{{ date \"2006-01-02\" (unixToTime .epoch) }}",
                "2023-03-23",
            ),
            ("{{ unixToTime .ms | unixEpochMillis }}", "1679577215123"),
            ("{{ date \"2006\" 0 }}", "1970"),
            (
                "{{ range $q := fromJson .queries }}[{{ $q.query }}]{{ end }}",
                "[up][rate(x[5m])]",
            ),
            ("{{ fromJson \"{\\\"foo\\\": 55}\" }}", "map[foo:55]"),
            ("{{ fromJson \"not json\" }}x", "x"),
            ("{{ add 3 2 5 }} {{ mul 5 2 3 }} {{ max 1 7 3 }}", "10 30 7"),
            (
                "{{ addf 3.5 2 5 }} {{ subf 5.5 2 1.5 }} {{ divf 10 2 4 }}",
                "10.5 2 1.25",
            ),
            (
                "{{ round 123.555555 3 }} {{ round 123.88571428571 5 0.2 }} {{ round 2.5 }}",
                "123.556 123.88572 3",
            ),
            ("{{ duration \"1m30s\" }} {{ bytes \"2 KiB\" }}", "90 2048"),
        ] {
            assert_eq!(expand(t, &l, ""), want, "{t}");
        }
        // `now` is a time of this year or later.
        let year: i32 = expand("{{ now | date \"2006\" }}", &l, "").parse().unwrap();
        assert!(year >= 2024, "{year}");
    }

    #[test]
    fn mistakes_are_refused_when_parsed_and_failures_when_run() {
        for (t, expect) in [
            ("{{ .x", "unclosed"),
            ("{{ nosuch .x }}", "not defined"),
            ("{{ .x | nosuch }}", "not defined"),
            ("{{ }}", "missing"),
            ("{{ \"open }}", "unterminated"),
            ("{{ if true }}x", "unexpected EOF"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(expect), "{t}: {e}");
        }
        let labels = BTreeMap::new();
        for (t, expect) in [
            (r#"{{ div 1 (int .zero) }}"#, "divide by zero"),
            (
                r#"{{ toDateInZone "2006" "Mars/Olympus" "2021" }}"#,
                "Mars/Olympus",
            ),
            (r#"{{ unixToTime "123" }}"#, "unknown epoch length"),
            (r#"{{ unixEpoch "today" }}"#, "expected time.Time"),
        ] {
            let e = Template::parse(t)
                .unwrap()
                .expand(&Context {
                    labels: &labels,
                    line: "",
                    ts_ns: 0,
                })
                .unwrap_err();
            assert!(e.contains(expect), "{t}: {e}");
        }
        let t = Template::parse(r#"{{ repeat 100000000 "xx" }}"#).unwrap();
        assert!(
            t.expand(&Context {
                labels: &labels,
                line: "",
                ts_ns: 0
            })
            .is_err(),
            "bounded"
        );
    }
}
