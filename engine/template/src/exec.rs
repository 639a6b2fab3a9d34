//! Running a parsed template: values, pipelines, control flow, Go's built-in functions
//! (`printf`, `eq`, `index`, `len`, …) and the user's ([`Functions`]), and helpers those
//! functions share (conversions with Go's error texts).

use crate::Functions;
use crate::format;
use crate::parse::{Arg, Command, Node, Pipe, is_builtin};
use crate::printf;
use crate::value::Value;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// One run of a template.
pub struct Run<'a> {
    pub functions: &'a dyn Functions,
    pub vars: Vec<(String, Value)>,
    pub out: String,
    /// The command that failed first: its line, column and text.
    pub failed_at: Option<(usize, usize, String)>,
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("vars", &self.vars)
            .field("out", &self.out)
            .field("failed_at", &self.failed_at)
            .finish_non_exhaustive()
    }
}

impl Run<'_> {
    /// Runs `nodes` with `dot`.
    pub fn run(&mut self, nodes: &[Node], dot: &Value) -> Result<(), String> {
        self.nodes(nodes, dot).map(|_| ())
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, String> {
        for node in nodes {
            match node {
                Node::Text(s) => self.out.push_str(s),
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let mut taken = None;
                    for (cond, body) in branches {
                        if self.pipe(cond, dot)?.truth() {
                            taken = Some(body);
                            break;
                        }
                    }
                    let flow = self.nodes(taken.unwrap_or(otherwise), dot);
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let flow = if v.truth() {
                        self.nodes(body, &v)
                    } else {
                        self.nodes(otherwise, dot)
                    };
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let plain = Pipe {
                        vars: Vec::new(),
                        declare: false,
                        ..pipe.clone()
                    };
                    let v = self.pipe(&plain, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
                        Value::Nil => Vec::new(),
                        Value::Int(n) => (0..n.max(0))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        other => return Err(format!("range can't iterate over {other}")),
                    };
                    if items.is_empty() {
                        let flow = self.nodes(otherwise, dot);
                        self.vars.truncate(mark);
                        flow?;
                        continue;
                    }
                    for (key, item) in items {
                        let inner = self.vars.len();
                        match pipe.vars.as_slice() {
                            [one] => self.vars.push((one.clone(), item.clone())),
                            [k, e] => {
                                self.vars.push((k.clone(), key));
                                self.vars.push((e.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        let flow = self.nodes(body, &item);
                        self.vars.truncate(inner);
                        match flow {
                            Ok(Flow::Break) => break,
                            Ok(_) => {}
                            Err(e) => {
                                self.vars.truncate(mark);
                                return Err(e);
                            }
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn var(&self, name: &str) -> Result<Value, String> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut last: Option<Value> = None;
        for command in &pipe.commands {
            last = Some(self.command(command, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &pipe.vars {
            if pipe.declare {
                self.vars.push((name.clone(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        command: &Command,
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value, String> {
        let Some(first) = command.args.first() else {
            return Err("empty command".into());
        };
        let result = if let Arg::Func(name) = first {
            self.call(name, &command.args[1..], dot, last)
        } else if command.args.len() > 1 || last.is_some() {
            Err(format!(
                "can't give argument to non-function {}",
                describe(first)
            ))
        } else {
            self.arg(first, dot)
        };
        if result.is_err() && self.failed_at.is_none() {
            self.failed_at = Some((command.line, command.col, command.shown.clone()));
        }
        result
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value, String> {
        let walk = |mut v: Value, fields: &[String]| -> Result<Value, String> {
            for f in fields {
                v = v.field(f)?;
            }
            Ok(v)
        };
        match arg {
            Arg::Field(fields) => walk(dot.clone(), fields),
            Arg::Var(name, fields) => {
                let v = if name == "$" {
                    self.var("$")?
                } else {
                    self.var(name)?
                };
                walk(v, fields)
            }
            Arg::Func(name) => self.call(name, &[], dot, None),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Int(n) => Ok(Value::Int(*n)),
            Arg::Float(f) => Ok(Value::Float(*f)),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Err("nil is not a command".into()),
            Arg::Group(pipe, fields) => {
                let v = self.pipe(pipe, dot)?;
                walk(v, fields)
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value, String> {
        // `and` and `or` stop at the first argument that decides.
        if name == "and" || name == "or" {
            let mut values = args.iter().map(Some).chain(last.is_some().then_some(None));
            let mut last_value = last.clone();
            let mut result = None;
            for slot in values.by_ref() {
                let v = match slot {
                    Some(a) => self.arg(a, dot)?,
                    None => last_value.take().unwrap_or(Value::Nil),
                };
                let decides = if name == "and" { !v.truth() } else { v.truth() };
                result = Some(v);
                if decides {
                    break;
                }
            }
            return result
                .ok_or_else(|| format!("wrong number of args for {name}: want at least 1 got 0"));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(a, dot)?);
        }
        if let Some(v) = last {
            values.push(v);
        }
        if is_builtin(name) {
            builtin(name, values)
        } else {
            self.functions.call(name, values)
        }
        .map_err(|e| format!("error calling {name}: {e}"))
    }
}

fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Field(f) => format!(".{}", f.join(".")),
        Arg::Var(v, f) if f.is_empty() => v.clone(),
        Arg::Var(v, f) => format!("{v}.{}", f.join(".")),
        Arg::Str(s) => format!("{s:?}"),
        Arg::Int(n) => n.to_string(),
        Arg::Float(x) => format::float(*x),
        Arg::Bool(b) => b.to_string(),
        Arg::Nil => "nil".into(),
        Arg::Func(f) => f.clone(),
        Arg::Group(..) => "(…)".into(),
    }
}

/// An error unless `values` are `n`, in Go's words.
pub fn want(name: &str, values: &[Value], n: usize) -> Result<(), String> {
    if values.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            values.len()
        ));
    }
    Ok(())
}

/// A number from a value, as Prometheus's `convertToFloat` reads one.
pub fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(n) => Ok(*n as f64),
        Value::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        other => Err(format!("can't convert {} to float", other.go_type())),
    }
}

/// A string value, or Go's error for another type.
pub fn to_str(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.go_type()
        )),
    }
}

/// Go's ordering of two basic values of one kind.
fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => {
            x.partial_cmp(y).ok_or_else(|| "NaN is not ordered".into())
        }
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::Time(x), Value::Time(y)) => Ok(x == y),
        _ => compare(a, b).map(|o| o.is_eq()),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\u000A"),
            '\r' => out.push_str("\\u000D"),
            '\t' => out.push_str("\\u0009"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Escapes for a URL query (spaces as `+`), as Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// Joins operands as Go's `fmt.Sprint` does: a space between two operands when neither is a
/// string.
fn sprint(values: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(values[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&v.to_string());
    }
    out
}

/// A regular expression, or its error as text.
pub fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| e.to_string())
}

/// Go's built-in function `name` (see [`is_builtin`]).
fn builtin(name: &str, v: Vec<Value>) -> Result<Value, String> {
    Ok(match name {
        "not" => {
            want(name, &v, 1)?;
            Value::Bool(!v[0].truth())
        }
        "len" => {
            want(name, &v, 1)?;
            Value::Int(match &v[0] {
                Value::Str(s) => s.len(),
                Value::Map(m) => m.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("len of type {}", other.go_type())),
            } as i64)
        }
        "index" => {
            let mut it = v.into_iter();
            let mut item = it.next().ok_or("index of untyped nil")?;
            for key in it {
                item = match (&item, &key) {
                    (Value::Map(m), Value::Str(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Str(s), Value::Int(i)) => s
                        .as_bytes()
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .map(|b| Value::Int(*b as i64))
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    _ => return Err(format!("can't index item of type {}", item.go_type())),
                };
            }
            item
        }
        "slice" => {
            let mut it = v.into_iter();
            let item = it.next().ok_or("slice of untyped nil")?;
            let idx: Vec<usize> = it
                .map(|i| match i {
                    Value::Int(n) if n >= 0 => Ok(n as usize),
                    other => Err(format!("cannot index slice/array with {other}")),
                })
                .collect::<Result<_, _>>()?;
            let len = match &item {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("can't slice item of type {}", other.go_type())),
            };
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len);
            if lo > hi || hi > len {
                return Err(format!("index out of range: {hi}"));
            }
            match item {
                Value::Str(s) => {
                    Value::Str(s.get(lo..hi).ok_or("slice splits a character")?.to_owned())
                }
                Value::List(l) => Value::List(l[lo..hi].to_vec()),
                _ => unreachable!("checked above"),
            }
        }
        "print" => Value::Str(sprint(&v)),
        "println" => {
            let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let format = v
                .first()
                .map(to_str)
                .transpose()?
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            Value::Str(printf::sprintf(&format, &v[1..]))
        }
        "eq" => {
            if v.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            let mut any = false;
            for other in &v[1..] {
                if equal(&v[0], other)? {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" => {
            want(name, &v, 2)?;
            Value::Bool(!equal(&v[0], &v[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, &v, 2)?;
            let o = compare(&v[0], &v[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" => Value::Str(html_escape(&sprint(&v))),
        "js" => Value::Str(js_escape(&sprint(&v))),
        "urlquery" => Value::Str(query_escape(&sprint(&v))),
        other => return Err(format!("function {other:?} not defined")),
    })
}
