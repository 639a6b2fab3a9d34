//! Label sets: the identity of a series (and of a log stream).
//!
//! A series is named by its labels, a set of `name="value"` pairs such as
//! `{__name__="http_requests_total", job="api"}`. [`Labels`] is that set in the one canonical
//! form the rest of the engine relies on: sorted by name in byte order, each name once, no
//! empty names, no empty values. Because the form is canonical, two equal series have equal
//! `Labels`, so equality, ordering and [`Labels::stable_hash`] identify a series.
//!
//! Input from the network is normalised, not trusted: [`Labels::new`] sorts the pairs and
//! drops those with an empty value, because Prometheus treats an empty value as "label absent";
//! it rejects what cannot be repaired (an empty or repeated name). Decoders of our own files use
//! [`Labels::from_sorted`], which checks the form without fixing it, so corruption is reported
//! rather than silently repaired.
//!
//! The set is immutable and backed by one reference-counted allocation, so cloning a series'
//! labels is a reference-count increment. A [`Label`] is one pointer to a shared `name="value"` pair of
//! `ArcStr`s, so that the head can share pairs (and strings) between series through the
//! [`Interner`]: a series' label set costs 8 bytes a label.
//!
//! The submodules hold the [`Interner`] and the label [`Matcher`]s that select series.

pub mod intern;
pub mod matcher;

use arcstr::ArcStr;
use std::fmt;
use std::sync::Arc;
use triomphe::ThinArc;

use xxhash_rust::xxh3::xxh3_64;

pub use intern::Interner;
pub use matcher::{MatchKind, Matcher, MatcherError, MatcherLimits};

/// The reserved label name that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// The byte written after every name and every value in [`Labels::stable_hash`]. It never
/// occurs in UTF-8 text, so no two different label sets hash the same byte stream.
const HASH_SEPARATOR: u8 = 0xff;

/// One `name="value"` pair.
///
/// A `Label` is one pointer to a shared pair, so a label set costs 8 bytes a label and the
/// head's series share their pairs (every series of a job carries the same `job` and
/// `instance` pairs) through the [`Interner`]. Cloning is a reference-count increment.
/// Equality, ordering and hashing are those of `(name, value)`.
///
/// A `Label` on its own carries no invariant; the invariants hold for the set, [`Labels`].
#[derive(Clone)]
pub struct Label(Arc<Pair>);

#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Pair {
    name: ArcStr,
    value: ArcStr,
}

impl Label {
    /// Creates a label from its name and value.
    pub fn new(name: impl Into<ArcStr>, value: impl Into<ArcStr>) -> Label {
        Label(Arc::new(Pair {
            name: name.into(),
            value: value.into(),
        }))
    }

    /// The label name, such as `job`.
    pub fn name(&self) -> &ArcStr {
        &self.0.name
    }

    /// The label value, such as `api`.
    pub fn value(&self) -> &ArcStr {
        &self.0.value
    }

    /// Whether two labels share one pair (as interned labels with equal contents do).
    pub fn ptr_eq(a: &Label, b: &Label) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Label) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Label {}

impl std::hash::Hash for Label {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Label) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Label) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Label")
            .field("name", &self.0.name)
            .field("value", &self.0.value)
            .finish()
    }
}

/// An immutable, canonical label set. Cloning is cheap (one reference-count increment).
///
/// Ordering compares the labels pairwise (name, then value) and then by length, which is the
/// order Prometheus sorts series in.
#[derive(Clone)]
pub struct Labels {
    // Invariant: sorted by name in byte order with no name repeated (strictly increasing),
    // and every name and every value is non-empty.
    //
    // A thin pointer (8 bytes; the length lives in the allocation) to a reference count
    // without a weak count. (The head keeps its series' labels inline in the series'
    // allocation instead, see `head::series::SeriesArc`.)
    labels: ThinArc<(), Label>,
}

impl Labels {
    fn from_vec(labels: Vec<Label>) -> Labels {
        Labels {
            labels: ThinArc::from_header_and_iter((), labels.into_iter()),
        }
    }
}

impl Default for Labels {
    fn default() -> Labels {
        Labels::from_vec(Vec::new())
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        // Clones of one set share their allocation: a push names a stream once for all its
        // entries, and the stores compare it with their own clone of it.
        std::ptr::eq(self.labels.ptr(), other.labels.ptr()) || self.as_slice() == other.as_slice()
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Labels) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Labels")
            .field("labels", &self.as_slice())
            .finish()
    }
}

/// Why a label set was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelsError {
    /// A label has an empty name.
    #[error("a label has an empty name; give every label a non-empty name")]
    EmptyName,
    /// A label name occurs more than once.
    #[error("label name {name:?} occurs more than once; send each label name once per series")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A label has an empty value where the caller promised canonical labels
    /// ([`Labels::from_sorted`]); [`Labels::new`] drops such labels instead.
    #[error("label {name:?} has an empty value; drop the label instead of storing an empty value")]
    EmptyValue {
        /// The name of the label with the empty value.
        name: String,
    },
    /// Labels passed as sorted are out of order ([`Labels::from_sorted`]).
    #[error("label {name:?} follows {previous:?}; sort labels by name in byte order")]
    Unsorted {
        /// The name that is out of place.
        name: String,
        /// The name before it, which sorts after it.
        previous: String,
    },
}

impl Labels {
    /// Builds a canonical label set from `(name, value)` pairs in any order.
    ///
    /// Pairs with an empty value are dropped (Prometheus treats an empty value as an absent
    /// label), then the rest are sorted by name. An empty name is rejected even when its value
    /// is empty, and so is a name that occurs in two pairs with non-empty values.
    pub fn new<I, N, V>(pairs: I) -> Result<Labels, LabelsError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut labels = Vec::new();
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name.is_empty() {
                return Err(LabelsError::EmptyName);
            }
            if !value.is_empty() {
                labels.push(Label::new(name, value));
            }
        }
        // A stable sort keeps equal names adjacent, which is all the duplicate check needs.
        labels.sort_by(|a, b| a.name().cmp(b.name()));
        if let Some(pair) = labels
            .windows(2)
            .find(|pair| pair[0].name() == pair[1].name())
        {
            return Err(LabelsError::DuplicateName {
                name: pair[0].name().to_string(),
            });
        }
        Ok(Labels::from_vec(labels))
    }

    /// Wraps labels that should already be canonical, checking them without re-sorting.
    ///
    /// Decoders use this: labels read back from our own files were canonical when written,
    /// so any violation is reported (as corruption, by the caller) instead of repaired.
    pub fn from_sorted(labels: Vec<Label>) -> Result<Labels, LabelsError> {
        for (i, label) in labels.iter().enumerate() {
            if label.name().is_empty() {
                return Err(LabelsError::EmptyName);
            }
            if label.value().is_empty() {
                return Err(LabelsError::EmptyValue {
                    name: label.name().to_string(),
                });
            }
            if let Some(previous) = i.checked_sub(1).map(|p| labels[p].name()) {
                if previous == label.name() {
                    return Err(LabelsError::DuplicateName {
                        name: label.name().to_string(),
                    });
                }
                if previous > label.name() {
                    return Err(LabelsError::Unsorted {
                        name: label.name().to_string(),
                        previous: previous.to_string(),
                    });
                }
            }
        }
        Ok(Labels::from_vec(labels))
    }

    /// The value of the label called `name`, if the set has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        let labels = self.as_slice();
        labels
            .binary_search_by(|label| label.name().as_str().cmp(name))
            .ok()
            .map(|i| labels[i].value().as_str())
    }

    /// The series' metric name (the value of [`METRIC_NAME`]), if it has one.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.as_slice().iter()
    }

    /// The labels in name order, as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.labels.slice
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// A 64-bit hash of the label set that is the same in every process, on every platform
    /// and in every version of Strata.
    ///
    /// It is XXH3-64 (seed 0) over `name 0xff value 0xff` for each label in order. The `0xff`
    /// separator never occurs in UTF-8, so different sets never feed the hash the same bytes.
    /// The hash may be persisted and may decide which shard or node owns a series, so this
    /// definition must never change; a test pins its output.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_slice(self.as_slice())
    }

    /// Whether this set is exactly `pairs` (canonical: sorted by name, no empty value).
    pub fn eq_pairs(&self, pairs: &[(&str, &str)]) -> bool {
        eq_pairs_slice(self.as_slice(), pairs)
    }

    /// A set holding `labels`, which are the labels of a set already (the head keeps its
    /// series' labels inline, not as a `Labels`).
    pub fn from_canonical_slice(labels: &[Label]) -> Labels {
        Labels {
            labels: ThinArc::from_header_and_iter((), labels.iter().cloned()),
        }
    }

    /// The same labels with their pairs replaced by the interner's shared copies.
    pub fn interned(&self, interner: &Interner) -> Labels {
        let labels = self
            .iter()
            .map(|label| interner.intern_label(label.name(), label.value()))
            .collect();
        // Interning changes where the strings live, not what they are, so the set stays
        // canonical.
        Labels::from_vec(labels)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Formats the set the way the Prometheus text format writes a series:
/// `http_requests_total{code="200", job="api"}`.
///
/// The metric name stands before the braces and the braces are left out when no other label
/// remains; a set with no labels at all is written `{}`. Values escape backslash, double quote
/// and newline as `\\`, `\"` and `\n`. A metric name or label name outside the classic
/// character set (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, the same without `:` for label
/// names) is written quoted, as Prometheus 3 does, and a quoted metric name moves inside the
/// braces: `{"my.metric", "my.label"="x"}`.
/// Whether `pairs` are a label set as [`Labels::new`] would make it, unchanged: names
/// non-empty and strictly ascending, values non-empty.
pub fn is_canonical(pairs: &[(&str, &str)]) -> bool {
    pairs.iter().all(|(n, v)| !n.is_empty() && !v.is_empty())
        && pairs.windows(2).all(|w| w[0].0 < w[1].0)
}

/// [`Labels::stable_hash`] of a set's labels.
pub fn stable_hash_slice(labels: &[Label]) -> u64 {
    stable_hash_of(
        labels
            .iter()
            .map(|l| (l.name().as_str(), l.value().as_str())),
    )
}

/// [`Labels::eq_pairs`] of a set's labels.
pub fn eq_pairs_slice(labels: &[Label], pairs: &[(&str, &str)]) -> bool {
    labels.len() == pairs.len()
        && labels
            .iter()
            .zip(pairs)
            .all(|(l, (n, v))| l.name() == *n && l.value() == *v)
}

/// [`Labels::stable_hash`] of canonical `pairs`, without building the set.
pub fn stable_hash_pairs(pairs: &[(&str, &str)]) -> u64 {
    stable_hash_of(pairs.iter().copied())
}

fn stable_hash_of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> u64 {
    // One-shot hashing of the joined bytes is several times faster than feeding a streaming
    // hasher forty tiny updates, and gives the same value. Typical label sets fit the stack
    // buffer.
    let len: usize = pairs.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut stack = [0u8; 512];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for (name, value) in pairs {
        for part in [name.as_bytes(), value.as_bytes()] {
            buf[at..at + part.len()].copy_from_slice(part);
            buf[at + part.len()] = HASH_SEPARATOR;
            at += part.len() + 1;
        }
    }
    xxh3_64(buf)
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        let bare_name = name.filter(|name| is_classic_name(name, true));
        if let Some(name) = bare_name {
            f.write_str(name)?;
        }
        let mut items = self
            .iter()
            .filter(|label| label.name() != METRIC_NAME)
            .peekable();
        if bare_name.is_some() && items.peek().is_none() {
            return Ok(());
        }
        f.write_str("{")?;
        let mut first = true;
        if let (Some(name), None) = (name, bare_name) {
            write_quoted(f, name)?;
            first = false;
        }
        for label in items {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_classic_name(label.name(), false) {
                f.write_str(label.name())?;
            } else {
                write_quoted(f, label.name())?;
            }
            f.write_str("=")?;
            write_quoted(f, label.value())?;
        }
        f.write_str("}")
    }
}

/// Whether `name` needs no quoting in the text format: `[a-zA-Z_][a-zA-Z0-9_]*`, with `:`
/// also allowed when it is a metric name.
fn is_classic_name(name: &str, metric: bool) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':');
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| allowed(c) && !c.is_ascii_digit())
        && chars.all(allowed)
}

/// Writes `s` in double quotes with the text format's three escapes.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    let mut rest = s;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        f.write_str(&rest[..i])?;
        f.write_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        })?;
        rest = &rest[i + 1..];
    }
    f.write_str(rest)?;
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds labels from `pairs` and checks the result's `Display` form, or the error.
    fn check(pairs: &[(&str, &str)], expected: Result<&str, LabelsError>) {
        let got = Labels::new(pairs.iter().copied()).map(|labels| labels.to_string());
        assert_eq!(got, expected.map(str::to_owned), "pairs: {pairs:?}");
    }

    #[test]
    fn new_and_display() {
        check(&[], Ok("{}"));
        check(&[("__name__", "up")], Ok("up"));
        check(
            &[("__name__", "up"), ("job", "api")],
            Ok(r#"up{job="api"}"#),
        );
        check(&[("job", "api")], Ok(r#"{job="api"}"#));
        // Sorting, in byte order (upper case before lower case).
        check(
            &[("b", "2"), ("a", "1"), ("C", "3")],
            Ok(r#"{C="3", a="1", b="2"}"#),
        );
        check(
            &[("z", "1"), ("__name__", "m"), ("a", "2")],
            Ok(r#"m{a="2", z="1"}"#),
        );
        // Empty values are dropped, including the metric name's.
        check(&[("a", ""), ("b", "x")], Ok(r#"{b="x"}"#));
        check(&[("__name__", ""), ("b", "x")], Ok(r#"{b="x"}"#));
        check(&[("a", "")], Ok("{}"));
        // A name with an empty value next to the same name with a value is no duplicate.
        check(&[("a", ""), ("a", "x")], Ok(r#"{a="x"}"#));
        // Rejected input.
        check(&[("", "x")], Err(LabelsError::EmptyName));
        check(&[("", "")], Err(LabelsError::EmptyName));
        check(&[("a", "1"), ("a", "1")], Err(dup("a")));
        check(&[("b", "1"), ("a", "1"), ("b", "2")], Err(dup("b")));
        // Escaping of values.
        check(&[("a", r"C:\dir")], Ok(r#"{a="C:\\dir"}"#));
        check(&[("a", r#"say "hi""#)], Ok(r#"{a="say \"hi\""}"#));
        check(&[("a", "two\nlines")], Ok(r#"{a="two\nlines"}"#));
        check(&[("a", "tab\there")], Ok("{a=\"tab\there\"}"));
        check(&[("a", "ünïcødé ✓")], Ok(r#"{a="ünïcødé ✓"}"#));
        // Names outside the classic character set are quoted, as in Prometheus 3.
        check(&[("__name__", "ns:metric_total")], Ok("ns:metric_total"));
        check(&[("__name__", "my.metric")], Ok(r#"{"my.metric"}"#));
        check(
            &[("__name__", "my.metric"), ("a", "1")],
            Ok(r#"{"my.metric", a="1"}"#),
        );
        check(&[("__name__", "1up")], Ok(r#"{"1up"}"#));
        check(
            &[("my.label", "1"), ("a:b", "2")],
            Ok(r#"{"a:b"="2", "my.label"="1"}"#),
        );
    }

    fn dup(name: &str) -> LabelsError {
        LabelsError::DuplicateName {
            name: name.to_owned(),
        }
    }

    fn label(name: &str, value: &str) -> Label {
        Label::new(name, value)
    }

    #[test]
    fn from_sorted_checks_without_repairing() {
        let check = |labels: Vec<Label>, expected: Result<(), LabelsError>| {
            let got = Labels::from_sorted(labels.clone()).map(|l| assert_eq!(l.as_slice(), labels));
            assert_eq!(got, expected, "{labels:?}");
        };
        check(vec![], Ok(()));
        check(vec![label("a", "1"), label("b", "2")], Ok(()));
        check(vec![label("", "1")], Err(LabelsError::EmptyName));
        check(
            vec![label("a", "")],
            Err(LabelsError::EmptyValue { name: "a".into() }),
        );
        check(vec![label("a", "1"), label("a", "2")], Err(dup("a")));
        check(
            vec![label("b", "1"), label("a", "2")],
            Err(LabelsError::Unsorted {
                name: "a".into(),
                previous: "b".into(),
            }),
        );
    }

    #[test]
    fn accessors() {
        let labels = Labels::new([("job", "api"), ("__name__", "up"), ("code", "200")]).unwrap();
        assert_eq!(labels.len(), 3);
        assert!(!labels.is_empty());
        assert_eq!(labels.metric_name(), Some("up"));
        assert_eq!(labels.get("code"), Some("200"));
        assert_eq!(labels.get("job"), Some("api"));
        assert_eq!(labels.get("missing"), None);
        assert_eq!(labels.get(""), None);
        let names: Vec<&str> = labels.iter().map(|l| l.name().as_str()).collect();
        assert_eq!(names, ["__name__", "code", "job"]);
        assert_eq!((&labels).into_iter().count(), 3);
        assert!(Labels::default().is_empty());
        assert_eq!(Labels::default().metric_name(), None);
    }

    #[test]
    fn ordering_compares_pairwise_then_by_length() {
        let l = |pairs: &[(&str, &str)]| Labels::new(pairs.iter().copied()).unwrap();
        assert!(l(&[("a", "1")]) < l(&[("a", "2")]));
        assert!(l(&[("a", "1")]) < l(&[("a", "1"), ("b", "1")]));
        assert!(l(&[("a", "9")]) < l(&[("b", "1")]));
        assert!(l(&[]) < l(&[("a", "1")]));
    }

    /// The hash may be persisted and may pick a series' shard, so its definition is frozen.
    /// If this test fails, the change broke every stored hash: revert it.
    #[test]
    fn stable_hash_is_pinned() {
        let labels = Labels::new([("__name__", "up"), ("job", "api")]).unwrap();
        assert_eq!(labels.stable_hash(), 0xb11d_aa6c_4323_c14b);
        assert_eq!(
            Labels::default().stable_hash(),
            xxhash_rust::xxh3::xxh3_64(b"")
        );
        let bytes = b"__name__\xffup\xffjob\xffapi\xff";
        assert_eq!(labels.stable_hash(), xxhash_rust::xxh3::xxh3_64(bytes));
    }

    #[test]
    fn stable_hash_separates_names_from_values() {
        let a = Labels::new([("ab", "c")]).unwrap();
        let b = Labels::new([("a", "bc")]).unwrap();
        assert_ne!(a.stable_hash(), b.stable_hash());
    }

    #[test]
    fn interning_shares_strings() {
        let interner = Interner::new();
        let a = Labels::new([("job", "api"), ("env", "prod")])
            .unwrap()
            .interned(&interner);
        let b = Labels::new([("job", "api"), ("env", "dev")])
            .unwrap()
            .interned(&interner);
        assert_eq!(a, Labels::new([("job", "api"), ("env", "prod")]).unwrap());
        let (a, b) = (a.as_slice(), b.as_slice());
        assert!(Label::ptr_eq(&a[1], &b[1]), "job=api is one pair");
        assert!(!Label::ptr_eq(&a[0], &b[0]));
        assert!(
            ArcStr::ptr_eq(a[0].name(), b[0].name()),
            "env is one string"
        );
        assert_eq!((interner.pair_count(), interner.len()), (3, 5));
    }

    fn arb_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-d_]{0,2}", "[xy\n\"\\\\]{0,2}"), 0..6)
    }

    proptest! {
        #[test]
        fn new_yields_canonical_labels(pairs in arb_pairs()) {
            if let Ok(labels) = Labels::new(pairs.iter().map(|(n, v)| (n, v))) {
                // Whatever `new` accepts, `from_sorted` accepts unchanged.
                let again = Labels::from_sorted(labels.as_slice().to_vec());
                prop_assert_eq!(again.as_ref(), Ok(&labels));
                for (name, value) in &pairs {
                    if !value.is_empty() {
                        prop_assert_eq!(labels.get(name), Some(value.as_str()));
                    }
                }
                // The order of the input does not matter.
                let mut reversed = pairs.clone();
                reversed.reverse();
                let other = Labels::new(reversed.iter().map(|(n, v)| (n, v))).unwrap();
                prop_assert_eq!(other.stable_hash(), labels.stable_hash());
                prop_assert_eq!(other, labels);
            }
        }
    }
}
