//! The templates of `line_format` and `label_format`: the part of Go's `text/template` that
//! log pipelines use. Text with actions `{{ … }}`; an action is a pipeline: an operand (a label
//! as `.name`, `__line__`, `__timestamp__`, a quoted string, or a function call) then
//! `| function args…`, each function taking the value before it as its last argument.
//! Functions (Loki's and sprig's names): `upper`/`ToUpper`, `lower`/`ToLower`, `title`/`Title`,
//! `trim`/`TrimSpace`, `trimPrefix`/`TrimPrefix`, `trimSuffix`/`TrimSuffix`, `replace`
//! (`old new s`), `Replace` (`s old new n`, Go's), `default`, `trunc`, `substr`, `len`.
//! Not here: conditionals, ranges, variables, `printf`, date formatting.

use std::collections::BTreeMap;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Action(Vec<Call>),
}

/// One stage of a pipeline: a function and its arguments (an operand alone has no function).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    function: Option<String>,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Label(String),
    Line,
    Timestamp,
    Str(String),
    Int(i64),
}

const FUNCTIONS: [&str; 22] = [
    "upper",
    "ToUpper",
    "lower",
    "ToLower",
    "title",
    "Title",
    "trim",
    "TrimSpace",
    "trimPrefix",
    "TrimPrefix",
    "trimSuffix",
    "TrimSuffix",
    "replace",
    "Replace",
    "default",
    "trunc",
    "substr",
    "len",
    "trimAll",
    "repeat",
    "nospace",
    "quote",
];

/// What a template is expanded with.
#[derive(Debug)]
pub struct Context<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub line: &'a str,
    pub ts_ns: i64,
}

impl Template {
    /// Parses `text`; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| "unclosed action: {{ without }}".to_owned())?;
            let body = after[..close]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-');
            parts.push(Part::Action(pipeline(body.trim())?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The text with every action replaced by its value.
    pub fn expand(&self, ctx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(calls) => out.push_str(&run(calls, ctx)?),
            }
        }
        Ok(out)
    }
}

/// Splits an action on `|` outside quotes, and each stage into its words.
fn pipeline(body: &str) -> Result<Vec<Call>, String> {
    if body.is_empty() {
        return Err("empty action".into());
    }
    let mut stages: Vec<Vec<String>> = vec![Vec::new()];
    let mut word = String::new();
    let mut chars = body.chars().peekable();
    let flush = |word: &mut String, stages: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            stages
                .last_mut()
                .expect("one stage")
                .push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                flush(&mut word, &mut stages);
                let mut s = String::from(c);
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some('\\') if c == '"' => {
                            s.push('\\');
                            s.extend(chars.next());
                        }
                        Some(q) if q == c => {
                            s.push(q);
                            break;
                        }
                        Some(other) => s.push(other),
                    }
                }
                stages.last_mut().expect("one stage").push(s);
            }
            '|' => {
                flush(&mut word, &mut stages);
                stages.push(Vec::new());
            }
            c if c.is_whitespace() => flush(&mut word, &mut stages),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut stages);
    stages
        .into_iter()
        .enumerate()
        .map(|(i, words)| {
            let Some(first) = words.first() else {
                return Err("a pipeline stage is empty".to_owned());
            };
            let is_function = FUNCTIONS.contains(&first.as_str());
            if !is_function && i > 0 {
                return Err(format!("function {first:?} not defined"));
            }
            if !is_function && words.len() > 1 {
                return Err(format!("{first:?} is not a function"));
            }
            let (function, args) = if is_function {
                (Some(first.clone()), &words[1..])
            } else {
                (None, &words[..])
            };
            let args = args.iter().map(|w| arg(w)).collect::<Result<_, _>>()?;
            Ok(Call { function, args })
        })
        .collect()
}

fn arg(word: &str) -> Result<Arg, String> {
    if let Some(name) = word.strip_prefix('.') {
        return Ok(Arg::Label(name.to_owned()));
    }
    match word {
        "__line__" => return Ok(Arg::Line),
        "__timestamp__" => return Ok(Arg::Timestamp),
        _ => {}
    }
    if let Some(inner) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        return Ok(Arg::Str(inner.to_owned()));
    }
    if let Some(inner) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => return Err("dangling escape".into()),
                }
            } else {
                out.push(c);
            }
        }
        return Ok(Arg::Str(out));
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Arg::Int(n));
    }
    Err(format!("unexpected {word:?} in a template"))
}

fn value(arg: &Arg, ctx: &Context<'_>) -> String {
    match arg {
        Arg::Label(name) => ctx.labels.get(name).cloned().unwrap_or_default(),
        Arg::Line => ctx.line.to_owned(),
        Arg::Timestamp => {
            let secs = ctx.ts_ns.div_euclid(1_000_000_000);
            let nanos = ctx.ts_ns.rem_euclid(1_000_000_000) as u32;
            chrono::DateTime::from_timestamp(secs, nanos)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_default()
        }
        Arg::Str(s) => s.clone(),
        Arg::Int(n) => n.to_string(),
    }
}

fn int(arg: Option<&Arg>, ctx: &Context<'_>) -> Result<i64, String> {
    let v = arg.map(|a| value(a, ctx)).unwrap_or_default();
    v.parse().map_err(|_| format!("{v:?} is not an integer"))
}

fn run(calls: &[Call], ctx: &Context<'_>) -> Result<String, String> {
    let mut piped: Option<String> = None;
    for call in calls {
        let mut args: Vec<Arg> = call.args.clone();
        if let Some(p) = piped.take() {
            args.push(Arg::Str(p));
        }
        let Some(f) = &call.function else {
            piped = Some(args.first().map(|a| value(a, ctx)).unwrap_or_default());
            continue;
        };
        let s = |i: usize| args.get(i).map(|a| value(a, ctx)).unwrap_or_default();
        let last = || args.last().map(|a| value(a, ctx)).unwrap_or_default();
        let need = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{f} takes {n} arguments, got {}", args.len()))
            }
        };
        let out = match f.as_str() {
            "upper" | "ToUpper" => {
                need(1)?;
                last().to_uppercase()
            }
            "lower" | "ToLower" => {
                need(1)?;
                last().to_lowercase()
            }
            "title" | "Title" => {
                need(1)?;
                let mut out = String::new();
                let mut start = true;
                for c in last().chars() {
                    if start && c.is_alphabetic() {
                        out.extend(c.to_uppercase());
                    } else {
                        out.push(c);
                    }
                    start = !c.is_alphanumeric();
                }
                out
            }
            "trim" | "TrimSpace" => {
                need(1)?;
                last().trim().to_owned()
            }
            "nospace" => {
                need(1)?;
                last().chars().filter(|c| !c.is_whitespace()).collect()
            }
            "quote" => {
                need(1)?;
                format!("{:?}", last())
            }
            "trimAll" => {
                need(2)?;
                let cut = s(0);
                last().trim_matches(|c| cut.contains(c)).to_owned()
            }
            "trimPrefix" | "TrimPrefix" => {
                need(2)?;
                let (prefix, text) = if f == "TrimPrefix" {
                    (s(1), s(0))
                } else {
                    (s(0), s(1))
                };
                text.strip_prefix(prefix.as_str())
                    .unwrap_or(&text)
                    .to_owned()
            }
            "trimSuffix" | "TrimSuffix" => {
                need(2)?;
                let (suffix, text) = if f == "TrimSuffix" {
                    (s(1), s(0))
                } else {
                    (s(0), s(1))
                };
                text.strip_suffix(suffix.as_str())
                    .unwrap_or(&text)
                    .to_owned()
            }
            "replace" => {
                need(3)?;
                s(2).replace(&s(0), &s(1))
            }
            "Replace" => {
                need(4)?;
                let n = int(args.get(3), ctx)?;
                if n < 0 {
                    s(0).replace(&s(1), &s(2))
                } else {
                    s(0).replacen(&s(1), &s(2), n as usize)
                }
            }
            "default" => {
                need(2)?;
                let v = s(1);
                if v.is_empty() { s(0) } else { v }
            }
            "repeat" => {
                need(2)?;
                s(1).repeat(int(args.first(), ctx)?.clamp(0, 10_000) as usize)
            }
            "trunc" => {
                need(2)?;
                let n = int(args.first(), ctx)?;
                let text = s(1);
                let count = text.chars().count() as i64;
                if n >= 0 {
                    text.chars().take(n as usize).collect()
                } else {
                    text.chars().skip((count + n).max(0) as usize).collect()
                }
            }
            "substr" => {
                need(3)?;
                let (start, end) = (int(args.first(), ctx)?, int(args.get(1), ctx)?);
                let chars: Vec<char> = s(2).chars().collect();
                let start = start.clamp(0, chars.len() as i64) as usize;
                let end = if end < 0 {
                    chars.len()
                } else {
                    (end as usize).min(chars.len())
                };
                chars[start..end.max(start)].iter().collect()
            }
            "len" => {
                need(1)?;
                last().chars().count().to_string()
            }
            other => return Err(format!("function {other:?} not defined")),
        };
        piped = Some(out);
    }
    Ok(piped.unwrap_or_default())
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
                ts_ns: 1_700_000_000_000_000_000,
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
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(expand("{{ \"a b\" | title }}", &l, ""), "A B");
    }

    #[test]
    fn mistakes_are_refused_when_parsed() {
        for (t, expect) in [
            ("{{ .x", "unclosed"),
            ("{{ nosuch .x }}", "is not a function"),
            ("{{ .x | nosuch }}", "not defined"),
            ("{{ }}", "empty action"),
            ("{{ \"open }}", "unterminated string"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(expect), "{t}: {e}");
        }
    }
}
