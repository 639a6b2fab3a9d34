//! The fields a query's newest lines hold, as Grafana's Logs Drilldown lists them beside the
//! lines (`/loki/api/v1/detected_fields` and `/detected_field/<name>/values`): each line of a
//! sample is read as a JSON object if it is one, else as logfmt pairs, and its structured
//! metadata counts too. A field has the name a LogQL parser would give it (JSON keys below
//! the top joined with `_`, every name sanitized), the parser that finds it, the path of JSON
//! keys to it, a type read from its values, and its distinct values in the sample.

use std::collections::{BTreeMap, HashSet};

use strata_core::labels::Labels;
use strata_logs::{Entry, LogStore};

use crate::ast::{LogExpr, Stage};
use crate::eval::{EvalError, for_each_newest};
use crate::pipeline::{ERROR_DETAILS_LABEL, ERROR_LABEL, process, sanitize};
use crate::units::{parse_bytes, parse_duration_secs};

/// How many of the newest lines a detection reads when the caller does not say.
pub const LINE_LIMIT_DEFAULT: usize = 1000;
/// How many fields a detection reports when the caller does not say.
pub const FIELD_LIMIT_DEFAULT: usize = 1000;
/// The distinct values a field keeps count of; past them its cardinality is a floor.
const VALUES_TRACKED_MAX: usize = 10_000;

/// What a field's values read as, most specific first: a field whose values disagree is a
/// `Float` when they are all numbers, else a `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Boolean,
    Int,
    Float,
    Duration,
    Bytes,
    String,
}

impl FieldType {
    /// The name Loki's API gives the type.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
            FieldType::String => "string",
        }
    }

    /// The type of one value.
    pub fn of(value: &str) -> FieldType {
        if value == "true" || value == "false" {
            return FieldType::Boolean;
        }
        if value.parse::<i64>().is_ok() {
            return FieldType::Int;
        }
        if value.parse::<f64>().is_ok_and(f64::is_finite)
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        {
            return FieldType::Float;
        }
        // A unit is required: a bare number was taken above.
        if value.ends_with(|c: char| c.is_ascii_alphabetic() || c == 'µ' || c == 'μ') {
            if parse_duration_secs(value).is_some() {
                return FieldType::Duration;
            }
            if parse_bytes(value).is_some() {
                return FieldType::Bytes;
            }
        }
        FieldType::String
    }

    fn join(self, other: FieldType) -> FieldType {
        match (self, other) {
            (a, b) if a == b => a,
            (FieldType::Int | FieldType::Float, FieldType::Int | FieldType::Float) => {
                FieldType::Float
            }
            _ => FieldType::String,
        }
    }
}

/// Where a field comes from: a parser of the line, or the entry's structured metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldSource {
    Json,
    Logfmt,
    Metadata,
}

impl FieldSource {
    /// The parser's name in LogQL (`None` for structured metadata: no parser is needed).
    pub fn parser(self) -> Option<&'static str> {
        match self {
            FieldSource::Json => Some("json"),
            FieldSource::Logfmt => Some("logfmt"),
            FieldSource::Metadata => None,
        }
    }
}

/// One field found in the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedField {
    /// The label name a parser gives it.
    pub name: String,
    pub kind: FieldType,
    /// Its distinct values in the sample.
    pub cardinality: u64,
    /// Where it was found, each once, in the order of [`FieldSource`].
    pub sources: Vec<FieldSource>,
    /// For a JSON field, its keys from the top of the object (the first path seen).
    pub json_path: Vec<String>,
}

#[derive(Default)]
struct Tally {
    kind: Option<FieldType>,
    values: HashSet<String>,
    sources: Vec<FieldSource>,
    json_path: Vec<String>,
}

impl Tally {
    fn add(&mut self, source: FieldSource, value: &str) {
        let kind = FieldType::of(value);
        self.kind = Some(self.kind.map_or(kind, |k| k.join(kind)));
        if self.values.len() < VALUES_TRACKED_MAX && !self.values.contains(value) {
            self.values.insert(value.to_owned());
        }
        if !self.sources.contains(&source) {
            self.sources.push(source);
            self.sources.sort();
        }
    }
}

/// The fields of the sample, by name.
#[derive(Default)]
struct Fields(BTreeMap<String, Tally>);

impl Fields {
    fn add(&mut self, name: String, source: FieldSource, value: &str, path: Option<&[String]>) {
        let tally = self.0.entry(name).or_default();
        if let Some(path) = path
            && tally.json_path.is_empty()
        {
            tally.json_path = path.to_vec();
        }
        tally.add(source, value);
    }

    fn read(&mut self, entry: &Entry) {
        for (k, v) in &entry.metadata {
            self.add(k.clone(), FieldSource::Metadata, v, None);
        }
        let line = entry.line.trim_start();
        if line.starts_with('{')
            && let Ok(serde_json::Value::Object(o)) = serde_json::from_str(line)
        {
            self.json_object(&o, &mut Vec::new());
            return;
        }
        // The line alone: the pipeline would count the entry's metadata among the labels.
        let line_only = Entry::new(entry.ts_ns, entry.line.as_str());
        let parsed = process(
            &[Stage::Logfmt {
                strict: false,
                keep_empty: false,
            }],
            &Labels::default(),
            &line_only,
        );
        for (k, v) in parsed.and_then(|p| p.labels).into_iter().flatten() {
            if k != ERROR_LABEL && k != ERROR_DETAILS_LABEL {
                self.add(k, FieldSource::Logfmt, &v, None);
            }
        }
    }

    fn json_object(
        &mut self,
        o: &serde_json::Map<String, serde_json::Value>,
        path: &mut Vec<String>,
    ) {
        for (k, v) in o {
            path.push(k.clone());
            let name = || sanitize(&path.join("_"));
            match v {
                serde_json::Value::Object(inner) => self.json_object(inner, path),
                serde_json::Value::Array(_) | serde_json::Value::Null => {}
                serde_json::Value::String(s) => self.add(name(), FieldSource::Json, s, Some(path)),
                serde_json::Value::Bool(b) => {
                    self.add(name(), FieldSource::Json, &b.to_string(), Some(path))
                }
                serde_json::Value::Number(n) => {
                    self.add(name(), FieldSource::Json, &n.to_string(), Some(path))
                }
            }
            path.pop();
        }
    }
}

/// The newest `line_limit` entries `query` keeps in `[start_ns, end_ns)`.
fn sample(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    line_limit: usize,
) -> Result<Fields, EvalError> {
    let mut fields = Fields::default();
    for_each_newest(store, query, start_ns, end_ns, line_limit, |e| {
        fields.read(e)
    })?;
    Ok(fields)
}

/// The fields of the newest `line_limit` lines `query` keeps in `[start_ns, end_ns)`, by
/// name, at most `field_limit` of them.
pub fn detect_fields(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    line_limit: usize,
    field_limit: usize,
) -> Result<Vec<DetectedField>, EvalError> {
    let fields = sample(store, query, start_ns, end_ns, line_limit)?;
    Ok(fields
        .0
        .into_iter()
        .take(field_limit)
        .map(|(name, t)| DetectedField {
            name,
            kind: t.kind.unwrap_or(FieldType::String),
            cardinality: t.values.len() as u64,
            sources: t.sources,
            json_path: t.json_path,
        })
        .collect())
}

/// The distinct values of field `name` in the same sample as [`detect_fields`], sorted, at
/// most `value_limit` of them.
pub fn detect_field_values(
    store: &LogStore,
    query: &LogExpr,
    start_ns: i64,
    end_ns: i64,
    line_limit: usize,
    name: &str,
    value_limit: usize,
) -> Result<Vec<String>, EvalError> {
    let mut fields = sample(store, query, start_ns, end_ns, line_limit)?;
    let mut values: Vec<String> = fields
        .0
        .remove(name)
        .map(|t| t.values.into_iter().collect())
        .unwrap_or_default();
    values.sort();
    values.truncate(value_limit);
    Ok(values)
}
