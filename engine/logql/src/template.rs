//! The templates of `line_format` and `label_format`: Go's `text/template`
//! ([`strata_template`], the language of the rule evaluator's alert texts too: conditionals,
//! ranges, variables, `printf`, comparisons) over the entry's labels as fields of dot
//! (`{{ .status }}`; a missing label reads as empty), with Loki's functions (sprig's names
//! and Go's `strings` ones):
//!
//! - the entry: `__line__`, `__timestamp__` (printed as Go prints a time; `unixEpoch`,
//!   `unixEpochMillis`, `unixEpochNanos` of it give numbers);
//! - strings: `upper`/`ToUpper`, `lower`/`ToLower`, `title`/`Title`, `trim`/`TrimSpace`,
//!   `trimAll`, `Trim`, `TrimLeft`, `TrimRight`, `trimPrefix`/`TrimPrefix`,
//!   `trimSuffix`/`TrimSuffix`, `replace`, `Replace`, `trunc`, `substr`, `repeat`, `nospace`,
//!   `quote`, `squote`, `contains`, `hasPrefix`, `hasSuffix`, `indent`, `nindent`,
//!   `alignLeft`, `alignRight`, `count`, `default`, `urlencode`, `urldecode`, `b64enc`,
//!   `b64dec`, `regexReplaceAll`, `regexReplaceAllLiteral`;
//! - numbers: `int`, `float64`, `add`, `sub`, `mul`, `div`, `mod`, `addf`, `subf`, `mulf`,
//!   `divf`, `max`, `min`, `maxf`, `minf`, `ceil`, `floor`, `round`.

use std::collections::BTreeMap;

use base64::Engine;
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
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
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
        let floats = || -> Result<(f64, f64), String> {
            need(2)?;
            Ok((float(&v[0]), float(&v[1])))
        };
        Ok(match name {
            "__line__" => {
                need(0)?;
                Value::Str(self.line.to_owned())
            }
            "__timestamp__" => {
                need(0)?;
                Value::Str(strata_template::format::go_time_ns(self.ts_ns).unwrap_or_default())
            }
            "unixEpoch" | "unixEpochMillis" | "unixEpochNanos" => {
                // The entry's time, as `{{ __timestamp__ | unixEpoch }}` is written in Loki (a
                // piped time is the entry's; a time cannot come from anywhere else here).
                let ns = self.ts_ns;
                Value::Int(match name {
                    "unixEpoch" => ns.div_euclid(1_000_000_000),
                    "unixEpochMillis" => ns.div_euclid(1_000_000),
                    _ => ns,
                })
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
            "add" | "sub" | "mul" | "div" | "mod" | "max" | "min" => {
                let (a, b) = ints()?;
                Value::Int(match name {
                    "add" => a.wrapping_add(b),
                    "sub" => a.wrapping_sub(b),
                    "mul" => a.wrapping_mul(b),
                    "div" | "mod" if b == 0 => return Err("integer divide by zero".into()),
                    "div" => a.wrapping_div(b),
                    "mod" => a.wrapping_rem(b),
                    "max" => a.max(b),
                    _ => a.min(b),
                })
            }
            "addf" | "subf" | "mulf" | "divf" | "maxf" | "minf" => {
                let (a, b) = floats()?;
                Value::Float(match name {
                    "addf" => a + b,
                    "subf" => a - b,
                    "mulf" => a * b,
                    "divf" => a / b,
                    "maxf" => a.max(b),
                    _ => a.min(b),
                })
            }
            "ceil" | "floor" | "round" => {
                need(1)?;
                let x = float(&v[0]);
                Value::Float(match name {
                    "ceil" => x.ceil(),
                    "floor" => x.floor(),
                    _ => x.round(),
                })
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
        let t = Template::parse(r#"{{ div 1 (int .zero) }}"#).unwrap();
        let labels = BTreeMap::new();
        let e = t
            .expand(&Context {
                labels: &labels,
                line: "",
                ts_ns: 0,
            })
            .unwrap_err();
        assert!(e.contains("divide by zero"), "{e}");
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
