//! Values inside a template (strings, numbers, maps of labels, records, lists) and how Go
//! prints them.

use std::collections::BTreeMap;
use std::fmt;

use crate::format;
use crate::time::{self, Time};

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A map of strings (labels): a missing key reads as the empty string.
    Map(BTreeMap<String, Value>),
    /// A structure with named fields (the template's data, a query's sample): a missing field
    /// is an error.
    Record(Vec<(&'static str, Value)>),
    List(Vec<Value>),
    /// Go's `time.Time` (sprig's `now`, `toDate`; LogQL's `__timestamp__`), in UTC.
    Time(Time),
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings, maps and lists are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Record(_) => true,
            Value::List(l) => !l.is_empty(),
            Value::Time(_) => true,
        }
    }

    /// The Go type name `printf` shows for a mismatched argument.
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]string",
            Value::Record(_) => "struct",
            Value::List(_) => "[]interface {}",
            Value::Time(_) => "time.Time",
        }
    }

    /// Labels as a map value.
    pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::Str(v.to_owned())))
                .collect(),
        )
    }

    pub fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Str(String::new()))),
            Value::Record(fields) => fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("can't evaluate field {name} in type {}", self.go_type())),
            Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            // Alertmanager's `.Alerts.Firing` and `.Alerts.Resolved`.
            Value::List(items) if name == "Firing" || name == "Resolved" => {
                let want = name.to_ascii_lowercase();
                Ok(Value::List(
                    items
                        .iter()
                        .filter(|a| matches!(a.field("Status"), Ok(Value::Str(s)) if s == want))
                        .cloned()
                        .collect(),
                ))
            }
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.go_type()
            )),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(v) => f.write_str(&format::float(*v)),
            Value::Str(s) => f.write_str(s),
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
            Value::Record(fields) => {
                f.write_str("{")?;
                for (i, (_, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Time(t) => match time::format(*t, time::GO_STRING) {
                Some(text) => f.write_str(&text),
                None => write!(f, "{}s since 1970", t.secs),
            },
        }
    }
}
