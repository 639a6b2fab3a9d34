//! The PromQL test-script language of Prometheus's `promqltest` (described in
//! `shared/corpus/promqltest/FORMAT.md`): `load`, `clear` and `eval` commands, series
//! descriptions with value sequences, and expectations.

use std::fmt;

pub use strata_engine::promql::notation::{
    Point, parse_duration, parse_float, parse_values as parse_points,
};

/// `name{labels} values…`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLine {
    /// Sorted by name; the metric name as `__name__`.
    pub labels: Vec<(String, String)>,
    pub points: Vec<Point>,
    /// The values include a native histogram (`{{…}}`), which this runner does not load.
    pub histogram: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Series lines (possibly none: an empty result).
    Series(Vec<SeriesLine>),
    Scalar(f64),
    String(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TextMatch {
    Any,
    Exact(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eval {
    /// Line of the `eval` command (1-based).
    pub line: usize,
    pub kind: EvalKind,
    pub expr: String,
    pub fail: Option<TextMatch>,
    pub ordered: bool,
    /// `expect range vector from a to b step s`.
    pub range_vector: Option<(i64, i64, i64)>,
    pub expected: Expected,
    /// `expect warn …` / `expect info …` lines; `None` when none was given.
    pub warn: Option<Vec<TextMatch>>,
    pub info: Option<Vec<TextMatch>>,
    pub no_warn: bool,
    pub no_info: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Clear,
    Load {
        interval: i64,
        series: Vec<SeriesLine>,
        /// `load_with_nhcb`: classic histograms also become native ones.
        nhcb: bool,
        /// Start-timestamp lines (`@st`) were given.
        start_timestamps: bool,
    },
    Eval(Box<Eval>),
}

#[derive(Debug)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError {
        line,
        message: message.into(),
    })
}

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let word = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // The block: following lines up to an empty (or comment) line.
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j].trim();
            if l.is_empty() || l.starts_with('#') {
                break;
            }
            body.push((j + 1, l));
            j += 1;
        }
        if word == "clear" {
            // `clear` has no body: the next line is a command.
            out.push(Command::Clear);
            i += 1;
            continue;
        } else if word.starts_with("load") {
            out.push(parse_load(lineno, line, &body)?);
        } else if word.starts_with("eval") {
            let (eval, used) = parse_eval(lineno, line, &body)?;
            out.push(Command::Eval(Box::new(eval)));
            // A scalar or legacy fail line ends the block early; the rest is ignored.
            let _ = used;
        } else {
            return err(lineno, format!("unknown command {word:?}"));
        }
        i = j;
    }
    Ok(out)
}

fn parse_load(lineno: usize, line: &str, body: &[(usize, &str)]) -> Result<Command, ScriptError> {
    let mut parts = line.split_whitespace();
    let word = parts.next().unwrap_or("").to_ascii_lowercase();
    let nhcb = word == "load_with_nhcb";
    let interval = parts
        .next()
        .ok_or(())
        .and_then(|d| parse_duration(d).ok_or(()))
        .or_else(|_| err(lineno, "load needs an interval"))?;
    let mut series = Vec::new();
    let mut start_timestamps = false;
    for &(n, l) in body {
        let (desc, rest) = split_descriptor(l).ok_or(ScriptError {
            line: n,
            message: "bad series line".into(),
        })?;
        if rest.starts_with("@st") || desc.ends_with("@st") {
            start_timestamps = true;
            continue;
        }
        series.push(series_line(n, desc, rest)?);
    }
    Ok(Command::Load {
        interval,
        series,
        nhcb,
        start_timestamps,
    })
}

fn parse_eval(
    lineno: usize,
    line: &str,
    body: &[(usize, &str)],
) -> Result<(Eval, usize), ScriptError> {
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let word = word.to_ascii_lowercase();
    let rest = rest.trim();
    let mut eval = Eval {
        line: lineno,
        kind: EvalKind::Instant { at: 0 },
        expr: String::new(),
        fail: None,
        ordered: false,
        range_vector: None,
        expected: Expected::Series(Vec::new()),
        warn: None,
        info: None,
        no_warn: false,
        no_info: false,
    };
    match word.as_str() {
        "eval" => {}
        "eval_fail" => eval.fail = Some(TextMatch::Any),
        "eval_ordered" => eval.ordered = true,
        "eval_warn" => eval.warn = Some(vec![TextMatch::Any]),
        "eval_info" => eval.info = Some(vec![TextMatch::Any]),
        _ => return err(lineno, format!("unknown eval command {word:?}")),
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let take_rest = |skip: usize| -> String {
        // The expression: the text after `skip` words.
        let mut s = rest;
        for _ in 0..skip {
            s = s.trim_start();
            s = &s[s.find(char::is_whitespace).unwrap_or(s.len())..];
        }
        s.trim().to_owned()
    };
    let time = |w: Option<&&str>| w.and_then(|w| parse_time(w));
    match words.first().copied() {
        Some("instant") => {
            if words.get(1) != Some(&"at") {
                return err(lineno, "expected `instant at`");
            }
            let at = time(words.get(2)).ok_or(ScriptError {
                line: lineno,
                message: "bad time".into(),
            })?;
            eval.kind = EvalKind::Instant { at };
            eval.expr = take_rest(3);
        }
        Some("range") => {
            // range from <a> to <b> step <s> <expr>
            if words.get(1) != Some(&"from")
                || words.get(3) != Some(&"to")
                || words.get(5) != Some(&"step")
            {
                return err(lineno, "expected `range from … to … step …`");
            }
            let (start, end, step) = (
                time(words.get(2)),
                time(words.get(4)),
                words.get(6).and_then(|w| parse_duration(w)),
            );
            let (Some(start), Some(end), Some(step)) = (start, end, step) else {
                return err(lineno, "bad range times");
            };
            eval.kind = EvalKind::Range { start, end, step };
            eval.expr = take_rest(7);
        }
        _ => return err(lineno, "expected `instant` or `range`"),
    }
    let mut series = Vec::new();
    let mut used = 0;
    for &(n, l) in body {
        used += 1;
        if let Some(rest) = l.strip_prefix("expect ") {
            let rest = rest.trim();
            let (what, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let tail = tail.trim();
            let text_match = |tail: &str| -> TextMatch {
                if let Some(m) = tail.strip_prefix("msg:") {
                    TextMatch::Exact(m.trim().to_owned())
                } else if let Some(r) = tail.strip_prefix("regex:") {
                    TextMatch::Regex(r.trim().to_owned())
                } else {
                    TextMatch::Any
                }
            };
            match what {
                "fail" => eval.fail = Some(text_match(tail)),
                "warn" => eval
                    .warn
                    .get_or_insert_with(Vec::new)
                    .push(text_match(tail)),
                "info" => eval
                    .info
                    .get_or_insert_with(Vec::new)
                    .push(text_match(tail)),
                "no_warn" => eval.no_warn = true,
                "no_info" => eval.no_info = true,
                "ordered" => eval.ordered = true,
                "string" => {
                    eval.expected = Expected::String(unquote(tail).map_err(|m| ScriptError {
                        line: n,
                        message: m,
                    })?);
                }
                "range" => {
                    // range vector from a to b step s
                    let w: Vec<&str> = tail.split_whitespace().collect();
                    if w.len() != 7
                        || w[0] != "vector"
                        || w[1] != "from"
                        || w[3] != "to"
                        || w[5] != "step"
                    {
                        return err(n, "bad `expect range vector` line");
                    }
                    let (Some(a), Some(b), Some(s)) =
                        (parse_time(w[2]), parse_time(w[4]), parse_duration(w[6]))
                    else {
                        return err(n, "bad `expect range vector` times");
                    };
                    eval.range_vector = Some((a, b, s));
                }
                other => return err(n, format!("unknown expectation {other:?}")),
            }
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message") {
            eval.fail = Some(TextMatch::Exact(m.trim().to_owned()));
            break;
        }
        if let Some(r) = l.strip_prefix("expected_fail_regexp") {
            eval.fail = Some(TextMatch::Regex(r.trim().to_owned()));
            break;
        }
        if let Some(v) = parse_scalar_line(l) {
            eval.expected = Expected::Scalar(v);
            break;
        }
        let (desc, rest) = split_descriptor(l).ok_or(ScriptError {
            line: n,
            message: "bad expected line".into(),
        })?;
        series.push(series_line(n, desc, rest)?);
    }
    if !series.is_empty() {
        eval.expected = Expected::Series(series);
    }
    Ok((eval, used))
}

/// A series line from its descriptor and values.
fn series_line(n: usize, desc: &str, values: &str) -> Result<SeriesLine, ScriptError> {
    let at = |message| ScriptError { line: n, message };
    let labels = parse_labels(desc).map_err(at)?;
    let (points, histogram) = parse_points(values).map_err(at)?;
    Ok(SeriesLine {
        labels,
        points,
        histogram,
    })
}

/// A bare number line: one token that Go's `ParseInt(s, 0, 64)` or `ParseFloat` reads.
fn parse_scalar_line(l: &str) -> Option<f64> {
    if l.split_whitespace().count() != 1 {
        return None;
    }
    let s = l.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(if neg { -(i as f64) } else { i as f64 });
    }
    parse_float(s)
}

/// Splits `name{…} rest` or `{…} rest` or `name rest`.
fn split_descriptor(l: &str) -> Option<(&str, &str)> {
    let bytes = l.as_bytes();
    let mut i = 0;
    // The name, up to `{` or whitespace.
    while i < bytes.len() && bytes[i] != b'{' && !bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'{' {
        // To the matching brace, skipping quoted strings.
        let mut quote: Option<u8> = None;
        let mut escaped = false;
        while i < bytes.len() {
            let c = bytes[i];
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' && q != b'`' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if c == b'"' || c == b'\'' || c == b'`' {
                        quote = Some(c);
                    } else if c == b'}' {
                        i += 1;
                        break;
                    }
                }
            }
            i += 1;
        }
    }
    let (desc, rest) = l.split_at(i);
    (!desc.is_empty()).then(|| (desc, rest.trim()))
}

/// `name{a="b", …}` as sorted pairs (the name as `__name__`).
pub fn parse_labels(desc: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let (name, rest) = match desc.find('{') {
        Some(i) => (&desc[..i], &desc[i..]),
        None => (desc, ""),
    };
    if !name.is_empty() {
        out.push(("__name__".into(), name.to_owned()));
    }
    if let Some(inner) = rest.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or("unclosed label set")?;
        let mut s = inner.trim();
        while !s.is_empty() {
            // A label name, bare or quoted; a quoted string alone is the metric name.
            let (lname, after) = if s.starts_with('"') || s.starts_with('\'') {
                let (q, after) = take_quoted(s)?;
                (q, after.trim_start())
            } else {
                let end = s
                    .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
                    .unwrap_or(s.len());
                (s[..end].to_owned(), s[end..].trim_start())
            };
            if let Some(after_eq) = after.strip_prefix('=') {
                let (value, after) = take_quoted(after_eq.trim_start())?;
                out.push((lname, value));
                s = after.trim_start();
            } else {
                out.push(("__name__".into(), lname));
                s = after;
            }
            s = s.strip_prefix(',').unwrap_or(s).trim_start();
        }
    }
    out.retain(|(_, v)| !v.is_empty());
    out.sort();
    Ok(out)
}

/// A quoted string at the front of `s` and what follows it.
fn take_quoted(s: &str) -> Result<(String, &str), String> {
    let q = s.chars().next().ok_or("expected a quoted string")?;
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let bytes = s.as_bytes();
    let mut i = 1;
    let mut escaped = false;
    while i < bytes.len() {
        let c = bytes[i];
        if escaped {
            escaped = false;
        } else if c == b'\\' && q != '`' {
            escaped = true;
        } else if c == q as u8 {
            return Ok((unquote(&s[..=i])?, &s[i + 1..]));
        }
        i += 1;
    }
    Err("unterminated string".into())
}

/// A PromQL string literal's value (Go's `strconv.Unquote` rules).
pub fn unquote(s: &str) -> Result<String, String> {
    let s = s.trim();
    let q = s.chars().next().ok_or("empty string literal")?;
    if s.len() < 2 || !s.ends_with(q) {
        return Err(format!("bad string literal {s:?}"));
    }
    let inner = &s[1..s.len() - 1];
    if q == '`' {
        return Ok(inner.to_owned());
    }
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or("dangling backslash")?;
        let mut hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let d = chars
                    .next()
                    .and_then(|c| c.to_digit(16))
                    .ok_or("bad escape")?;
                v = v * 16 + d;
            }
            Ok(v)
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => out.push(char::from_u32(hex(2)?).ok_or("bad escape")?),
            'u' => out.push(char::from_u32(hex(4)?).ok_or("bad escape")?),
            'U' => out.push(char::from_u32(hex(8)?).ok_or("bad escape")?),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or("bad octal escape")?;
                    v = v * 8 + d;
                }
                out.push(char::from_u32(v).ok_or("bad escape")?);
            }
            other => return Err(format!("unknown escape \\{other}")),
        }
    }
    Ok(out)
}

/// An evaluation time: a duration from the epoch, possibly negative, or seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(d) = s.strip_prefix('-') {
        return parse_time(d).map(|t| -t);
    }
    parse_duration(s).or_else(|| s.parse::<f64>().ok().map(|v| (v * 1000.0).round() as i64))
}
