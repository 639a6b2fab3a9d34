//! Running a log pipeline over one entry: line filters, parsers that add labels (`json`,
//! `logfmt`, `regexp`, `unpack`), label filters, `drop`, `keep` and `decolorize`, in the
//! order written.
//!
//! An entry's labels in the pipeline are its stream's labels and its structured metadata;
//! parsers add theirs (a name its stream already has gets the suffix `_extracted`, as in
//! Loki). A parser that cannot read the line, or a comparison whose label is not a number,
//! adds `__error__` (and `__error_details__`) and keeps the entry, so `| __error__=""` drops
//! such entries. The labels an entry leaves a log query with are the stream's and the parsed
//! ones (structured metadata stays with the entry); in a metric query its structured metadata
//! is among its series' labels too, as in Loki.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use strata_core::labels::Labels;
use strata_logs::Entry;

use crate::ast::{
    JsonPath, JsonStep, LabelFormatValue, LabelPredicate, LabelSel, PatternPart, Stage, UnwrapKind,
    ValueKind,
};
use crate::template::Context;
use crate::units::{parse_bytes, parse_duration_secs};

/// The label a failed parse or conversion adds.
pub const ERROR_LABEL: &str = "__error__";
/// The label with the failure's message.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// An entry the pipeline kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed<'e> {
    /// Its labels, when a stage may have changed them (`None`: its stream's).
    pub labels: Option<BTreeMap<String, String>>,
    /// Its line, as the stages left it.
    pub line: Cow<'e, str>,
    /// Its sample, when the pipeline unwraps a label that reads as one.
    pub value: Option<f64>,
}

/// The labels a consumer of a pipeline's results needs: all of them, or only some (a metric
/// query grouped `by` a few labels needs those and what the stages themselves read). With
/// only some wanted, the pipeline keeps (and parsers extract) no others: the same answer for
/// those labels, without building the rest.
pub type Wanted = Option<BTreeSet<String>>;

/// The labels the stages and a consumer needing `outputs` read: `None` (all) when a stage may
/// read any label (a template of `line_format` or `label_format`).
pub fn wanted_labels(stages: &[Stage], outputs: &[String]) -> Wanted {
    fn predicate_names(p: &LabelPredicate, out: &mut BTreeSet<String>) {
        match p {
            LabelPredicate::And(a, b) | LabelPredicate::Or(a, b) => {
                predicate_names(a, out);
                predicate_names(b, out);
            }
            LabelPredicate::Matcher(m) => {
                out.insert(m.name().to_owned());
            }
            LabelPredicate::Compare { name, .. } => {
                out.insert(name.clone());
            }
        }
    }
    let mut names: BTreeSet<String> = outputs.iter().cloned().collect();
    names.insert(ERROR_LABEL.to_owned());
    names.insert(ERROR_DETAILS_LABEL.to_owned());
    for stage in stages {
        match stage {
            Stage::LineFormat(_) => return None,
            Stage::LabelFormat(items) => {
                for (name, value) in items {
                    let LabelFormatValue::Rename(old) = value else {
                        return None;
                    };
                    names.insert(name.clone());
                    names.insert(old.clone());
                }
            }
            Stage::Label(p) => predicate_names(p, &mut names),
            Stage::Unwrap { label, .. } => {
                names.insert(label.clone());
            }
            _ => {}
        }
    }
    Some(names)
}

/// The labels while the pipeline runs.
struct LabelState<'a> {
    map: BTreeMap<String, String>,
    /// Names that came from structured metadata (not part of the result's labels).
    metadata: Vec<String>,
    /// The stream's labels and the entry's metadata: a parsed label of one of their names is
    /// renamed.
    stream: &'a Labels,
    entry_metadata: &'a [(String, String)],
    /// The labels kept, when not all.
    wanted: Option<&'a BTreeSet<String>>,
}

impl<'a> LabelState<'a> {
    fn new(
        stream: &'a Labels,
        entry: &'a Entry,
        wanted: Option<&'a BTreeSet<String>>,
    ) -> LabelState<'a> {
        let keeps = |name: &str| wanted.is_none_or(|w| w.contains(name));
        let mut map: BTreeMap<String, String> = stream
            .iter()
            .filter(|l| keeps(l.name().as_str()))
            .map(|l| (l.name().to_string(), l.value().to_string()))
            .collect();
        let mut metadata = Vec::new();
        for (k, v) in &entry.metadata {
            if keeps(k) && !map.contains_key(k) && stream.get(k).is_none() {
                map.insert(k.clone(), v.clone());
                metadata.push(k.clone());
            }
        }
        LabelState {
            map,
            metadata,
            stream,
            entry_metadata: &entry.metadata,
            wanted,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Whether a label of this name is kept.
    fn keeps(&self, name: &str) -> bool {
        self.wanted.is_none_or(|w| w.contains(name))
    }

    /// Whether a parser should hand over the value of the key `key` (sanitized): some wanted
    /// label may come from it (itself, renamed, or a nested key below it).
    fn may_want(&self, key: &str) -> bool {
        self.wanted.is_none_or(|w| {
            w.range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
                .next()
                .is_some_and(|first| first.starts_with(key))
        })
    }

    /// Adds a parsed label: its name made a valid label name, renamed when the stream or the
    /// entry's metadata has it; left out when not wanted.
    fn add_parsed(&mut self, name: &str, value: impl Into<String>) {
        let mut name = sanitize(name);
        if name.is_empty() {
            return;
        }
        if self.stream.get(&name).is_some() || self.entry_metadata.iter().any(|(k, _)| *k == name) {
            name.push_str("_extracted");
        }
        if self.keeps(&name) {
            self.map.insert(name, value.into());
        }
    }

    fn set_error(&mut self, kind: &str, details: String) {
        // The first failure is the one reported.
        if !self.map.contains_key(ERROR_LABEL) {
            self.map.insert(ERROR_LABEL.to_owned(), kind.to_owned());
            self.map.insert(ERROR_DETAILS_LABEL.to_owned(), details);
        }
    }

    fn finish(mut self, keep_metadata: bool) -> BTreeMap<String, String> {
        if !keep_metadata {
            for name in &self.metadata {
                self.map.remove(name);
            }
        }
        self.map
    }
}

/// A label name from a JSON key or logfmt key: characters other than ASCII letters, digits and
/// `_` become `_`, and a leading digit gets a `_` before it.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Runs `stages` over `entry` of the stream `stream`; `None` when a stage drops it. The
/// labels it leaves with are the stream's and the parsed ones (a log query's answer keeps
/// structured metadata apart, with the entry).
pub fn process<'e>(stages: &[Stage], stream: &Labels, entry: &'e Entry) -> Option<Processed<'e>> {
    process_with(stages, stream, entry, false, None)
}

/// As [`process`], and with `keep_metadata` the entry's structured metadata stays among its
/// labels: a metric query's series are told apart by it, as Loki's are.
///
/// With `wanted`, only those labels are kept (see [`Wanted`]): whether the entry is kept and
/// the wanted labels' values are the same as without.
pub fn process_with<'e>(
    stages: &[Stage],
    stream: &Labels,
    entry: &'e Entry,
    keep_metadata: bool,
    wanted: Option<&BTreeSet<String>>,
) -> Option<Processed<'e>> {
    let mut line: Cow<'e, str> = Cow::Borrowed(entry.line.as_str());
    let mut labels: Option<LabelState> = None;
    let mut value = None;
    for stage in stages {
        if let Stage::Line(f) = stage {
            if !f.keeps(&line) {
                return None;
            }
            continue;
        }
        let state = labels.get_or_insert_with(|| LabelState::new(stream, entry, wanted));
        match stage {
            Stage::Line(_) => unreachable!("handled above"),
            Stage::Json(fields) => json(state, &line, fields),
            Stage::Logfmt { strict, keep_empty } => logfmt(state, &line, *strict, *keep_empty),
            Stage::Regexp(re) => {
                if let Some(caps) = re.captures(&line) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            state.add_parsed(name, m.as_str().to_owned());
                        }
                    }
                }
            }
            Stage::Pattern(parts) => {
                if let Some(found) = pattern_match(parts, &line) {
                    for (name, value) in found {
                        state.add_parsed(name, value.to_owned());
                    }
                }
            }
            Stage::Unpack => {
                if let Some(entry_line) = unpack(state, &line) {
                    line = Cow::Owned(entry_line);
                }
            }
            Stage::Label(p) => {
                if !label_filter(state, p) {
                    return None;
                }
            }
            Stage::Drop(sels) => state
                .map
                .retain(|k, v| !sels.iter().any(|s| s.selects(k, v))),
            Stage::Keep(sels) => state
                .map
                .retain(|k, v| sels.iter().any(|s| s.selects(k, v))),
            Stage::Decolorize => {
                if line.contains('\u{1b}') {
                    line = Cow::Owned(decolorize(&line));
                }
            }
            Stage::LineFormat(t) => {
                let ctx = Context {
                    labels: &state.map,
                    line: &line,
                    ts_ns: entry.ts_ns,
                };
                match t.expand(&ctx) {
                    Ok(new_line) => line = Cow::Owned(new_line),
                    Err(e) => state.set_error("TemplateFormatErr", e),
                }
            }
            Stage::LabelFormat(items) => {
                for (name, value) in items {
                    let new = match value {
                        LabelFormatValue::Rename(old) => state.map.remove(old),
                        LabelFormatValue::Template(t) => {
                            let ctx = Context {
                                labels: &state.map,
                                line: &line,
                                ts_ns: entry.ts_ns,
                            };
                            match t.expand(&ctx) {
                                Ok(v) => Some(v),
                                Err(e) => {
                                    state.set_error("TemplateFormatErr", e);
                                    None
                                }
                            }
                        }
                    };
                    if let Some(v) = new {
                        state.map.insert(name.clone(), v);
                    }
                }
            }
            Stage::Unwrap {
                label,
                kind: UnwrapKind::Distinct,
            } => {
                // Entries without the label have no value to count.
                value = Some(f64::from_bits(hash_value(&state.map.remove(label)?)));
            }
            Stage::Unwrap { label, kind } => {
                let raw = state.map.remove(label).unwrap_or_default();
                let parsed = match kind {
                    UnwrapKind::Number => raw.trim().parse::<f64>().ok(),
                    UnwrapKind::Duration => parse_duration_secs(&raw),
                    UnwrapKind::Bytes => parse_bytes(&raw),
                    UnwrapKind::Distinct => unreachable!("matched above"),
                };
                match parsed {
                    Some(v) => value = Some(v),
                    None => state.set_error(
                        "SampleExtractionErr",
                        format!("cannot unwrap {raw:?} of label {label:?} as a {kind:?}")
                            .to_lowercase(),
                    ),
                }
            }
        }
    }
    if keep_metadata && labels.is_none() && !entry.metadata.is_empty() {
        labels = Some(LabelState::new(stream, entry, wanted));
    }
    Some(Processed {
        labels: labels.map(|l| l.finish(keep_metadata)),
        line,
        value,
    })
}

/// A label value's 64-bit hash (FNV-1a, then a finalizer that spreads every bit: the
/// HyperLogLog estimate reads the high bits), carried as a sample's bits.
pub(crate) fn hash_value(value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl LabelSel {
    /// Whether the label `name` with `value` is the one named (and its value matches).
    fn selects(&self, name: &str, value: &str) -> bool {
        self.name == name && self.matcher.as_ref().is_none_or(|m| m.matches(value))
    }
}

fn json(state: &mut LabelState, line: &str, fields: &[(String, JsonPath)]) {
    if fields.is_empty() && state.wanted.is_some() {
        return json_wanted(state, line);
    }
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            state.set_error("JSONParserErr", "the line is not a JSON object".to_owned());
            return;
        }
        Err(e) => {
            state.set_error("JSONParserErr", e.to_string());
            return;
        }
    };
    if fields.is_empty() {
        let mut prefix = String::new();
        flatten(state, &mut prefix, &value);
        return;
    }
    for (name, path) in fields {
        let mut at = Some(&value);
        for step in path {
            at = match (step, at) {
                (JsonStep::Key(k), Some(serde_json::Value::Object(o))) => o.get(k),
                (JsonStep::Index(i), Some(serde_json::Value::Array(a))) => a.get(*i),
                _ => None,
            };
        }
        match at {
            Some(serde_json::Value::String(s)) => state.add_parsed(name, s.clone()),
            Some(serde_json::Value::Null) | None => {}
            Some(v) => state.add_parsed(name, v.to_string()),
        }
    }
}

/// `| json` when only some labels are wanted: the whole line is still read (so a line that is
/// not JSON fails the same way), but only the values of keys a wanted label may come from are
/// built.
fn json_wanted(state: &mut LabelState, line: &str) {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// A key, borrowed from the line unless it has escapes.
    struct Key<'de>(Cow<'de, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v)))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    /// The top-level object: wanted keys' values collected, the rest skipped.
    struct Object<'s, 'a>(&'s LabelState<'a>);
    impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
        type Value = Option<Vec<(String, serde_json::Value)>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Object<'_, '_> {
        /// `None`: not an object.
        type Value = Option<Vec<(String, serde_json::Value)>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut found = Vec::new();
            while let Some(Key(key)) = map.next_key::<Key>()? {
                if self.0.may_want(&sanitize(&key)) {
                    found.push((key.into_owned(), map.next_value::<serde_json::Value>()?));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Some(found))
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(
            self,
            mut seq: S,
        ) -> Result<Self::Value, S::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    let mut de = serde_json::Deserializer::from_str(line);
    let found = Object(state)
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found));
    match found {
        Ok(Some(found)) => {
            let mut object = serde_json::Map::new();
            object.extend(found);
            let mut prefix = String::new();
            flatten(state, &mut prefix, &serde_json::Value::Object(object));
        }
        Ok(None) => state.set_error("JSONParserErr", "the line is not a JSON object".to_owned()),
        Err(e) => state.set_error("JSONParserErr", e.to_string()),
    }
}

/// The named captures of `parts` in `line`, or `None` when a literal is not where the pattern
/// puts it. A capture takes the text up to the next literal's first occurrence, the last one
/// the rest of the line.
fn pattern_match<'a, 'l>(
    parts: &'a [PatternPart],
    line: &'l str,
) -> Option<Vec<(&'a str, &'l str)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            PatternPart::Literal(l) => {
                if !line[pos..].starts_with(l.as_str()) {
                    return None;
                }
                pos += l.len();
            }
            PatternPart::Capture(name) => {
                let end = match parts.get(i + 1) {
                    Some(PatternPart::Literal(l)) => pos + line[pos..].find(l.as_str())?,
                    _ => line.len(),
                };
                if let Some(name) = name {
                    out.push((name.as_str(), &line[pos..end]));
                }
                pos = end;
            }
        }
    }
    Some(out)
}

/// Every scalar of a JSON object as a label, nested keys joined with `_`; arrays are skipped.
fn flatten(state: &mut LabelState, prefix: &mut String, value: &serde_json::Value) {
    let serde_json::Value::Object(o) = value else {
        return;
    };
    for (k, v) in o {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('_');
        }
        prefix.push_str(k);
        match v {
            serde_json::Value::Object(_) => flatten(state, prefix, v),
            serde_json::Value::Array(_) | serde_json::Value::Null => {}
            serde_json::Value::String(s) => state.add_parsed(prefix, s.clone()),
            serde_json::Value::Bool(b) => state.add_parsed(prefix, b.to_string()),
            serde_json::Value::Number(n) => state.add_parsed(prefix, n.to_string()),
        }
        prefix.truncate(len);
    }
}

/// The `_entry` field of a JSON object becomes the line (returned); its other string fields
/// become labels.
fn unpack(state: &mut LabelState, line: &str) -> Option<String> {
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            state.set_error("JSONParserErr", e.to_string());
            return None;
        }
    };
    let serde_json::Value::Object(o) = value else {
        state.set_error("JSONParserErr", "the line is not a JSON object".to_owned());
        return None;
    };
    let mut entry = None;
    for (k, v) in o {
        if let serde_json::Value::String(s) = v {
            if k == "_entry" {
                entry = Some(s);
            } else {
                state.add_parsed(&k, s);
            }
        }
    }
    entry
}

/// `key=value`, `key="quoted value"` and bare `key` pairs, separated by spaces.
fn logfmt(state: &mut LabelState, line: &str, strict: bool, keep_empty: bool) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b' ' && bytes[i] != b'"' {
            i += 1;
        }
        let key = &line[key_start..i];
        if key.is_empty() {
            // `=value` or a stray quote: no key.
            if strict {
                state.set_error(
                    "LogfmtParserErr",
                    format!(
                        "logfmt syntax error at pos {}: unexpected '{}'",
                        i + 1,
                        bytes[i] as char
                    ),
                );
                return;
            }
            while i < bytes.len() && bytes[i] != b' ' {
                i += 1;
            }
            continue;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            // A bare key.
            if keep_empty {
                state.add_parsed(key, String::new());
            }
            continue;
        }
        i += 1;
        let value = if i < bytes.len() && bytes[i] == b'"' {
            match unquote(&line[i..]) {
                Some((value, used)) => {
                    i += used;
                    value
                }
                None => {
                    if strict {
                        state.set_error(
                            "LogfmtParserErr",
                            format!(
                                "logfmt syntax error at pos {}: unterminated quoted value",
                                i + 1
                            ),
                        );
                        return;
                    }
                    break;
                }
            }
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b' ' {
                i += 1;
            }
            line[start..i].to_owned()
        };
        if !value.is_empty() || keep_empty {
            state.add_parsed(key, value);
        }
    }
}

/// A `"…"` value with Go's simple escapes at the start of `s`: the value and the bytes used.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn label_filter(state: &mut LabelState, p: &LabelPredicate) -> bool {
    match p {
        LabelPredicate::And(a, b) => label_filter(state, a) && label_filter(state, b),
        LabelPredicate::Or(a, b) => label_filter(state, a) || label_filter(state, b),
        LabelPredicate::Matcher(m) => m.matches(state.get(m.name()).unwrap_or("")),
        LabelPredicate::Compare {
            name,
            op,
            kind,
            value,
        } => {
            let Some(raw) = state.get(name) else {
                return false;
            };
            let parsed = match kind {
                ValueKind::Number => raw.trim().parse::<f64>().ok(),
                ValueKind::Duration => parse_duration_secs(raw),
                ValueKind::Bytes => parse_bytes(raw),
            };
            match parsed {
                Some(v) => op.holds(v, *value),
                None => {
                    let details = format!(
                        "cannot read {raw:?} of label {name:?} as a {}",
                        match kind {
                            ValueKind::Number => "number",
                            ValueKind::Duration => "duration",
                            ValueKind::Bytes => "byte size",
                        }
                    );
                    state.set_error("LabelFilterErr", details);
                    // Loki keeps the entry, marked, so the error can be seen or filtered.
                    true
                }
            }
        }
    }
}

/// `line` without its ANSI escape sequences (`ESC [ … final`).
fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameter and intermediate bytes, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decolorize_removes_escape_sequences_only() {
        assert_eq!(
            decolorize("\u{1b}[31mred\u{1b}[0m and [plain]"),
            "red and [plain]"
        );
    }

    #[test]
    fn sanitized_names_are_label_names() {
        assert_eq!(sanitize("user-agent.name"), "user_agent_name");
        assert_eq!(sanitize("1st"), "_1st");
    }
}
