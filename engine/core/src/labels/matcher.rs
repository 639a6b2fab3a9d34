//! Label matchers: the `name="value"`, `!=`, `=~` and `!~` selectors of PromQL and LogQL.
//!
//! A [`Matcher`] decides whether a label value is selected, with Prometheus 3 semantics:
//!
//! - A series without the label is matched as if the value were `""`, so `{env=""}` and
//!   `{env!~".+"}` select the series that have no `env` label.
//! - Regexes are fully anchored and `.` matches a newline: the pattern `P` is compiled as
//!   `^(?s:P)$`, exactly what Prometheus compiles.
//! - Patterns use Go's RE2 dialect, whose `\d`, `\w`, `\s` and `\b` are ASCII-only. The Rust
//!   `regex` crate makes them Unicode-aware, so before compiling we rewrite each of them into
//!   its ASCII class (`\d` becomes `[0-9]`, `\s` becomes `[\t\n\f\r ]`, `\b` becomes
//!   `(?-u:\b)`). The `x` flag, which Go does not have, is rejected: its `#` comments would
//!   swallow the `)$` that anchors the pattern.
//!
//! Patterns come from queries, so they are untrusted. The `regex` crate matches in linear
//! time, which leaves compilation as the cost to bound: [`MatcherLimits`] caps the pattern's
//! length before it is parsed and the size of the compiled program while it is built.
//!
//! Most matchers in real queries are simple (`job=~"api|web"`, `path=~"/api/.*"`), and a
//! string comparison beats any regex engine on them. At construction we look at the parsed
//! pattern (regex-syntax's high-level IR, never the pattern text) and pick a plan:
//!
//! - **set**: the pattern accepts a small finite set of strings (`a|b|c`, `(?i)ok`,
//!   `node-[1-3]`); kept sorted and probed by binary search, and offered to the inverted index
//!   through [`Matcher::set_values`];
//! - **shapes**: each branch of the pattern is a literal prefix, then `.*`, `.+` or `.*lit.*`,
//!   then a literal suffix (`api-.*`, `.*-canary`, `.*err.*`, `.+`, `foo.*|bar.*`);
//!   checked with `starts_with`, `ends_with` and `contains`;
//! - **regex**: anything else runs the compiled regex.
//!
//! A plan is chosen only when it accepts exactly the strings the regex accepts; a property test
//! below checks that against the `regex` crate. The regex is compiled even when a faster plan
//! is found, so that [`MatcherLimits`] rejects the same patterns whatever plan they get.

use std::fmt;

use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::{Class, Hir, HirKind};

/// The largest finite set the **set** plan enumerates; a bigger set runs the regex.
const SET_VALUES_MAX: usize = 256;

/// The most bytes, summed over its strings, that the **set** plan enumerates.
const SET_BYTES_MAX: usize = 64 * 1024;

/// The most branches the **shapes** plan tries one after another; more runs the regex,
/// which tests all branches in one pass.
const SHAPES_MAX: usize = 16;

/// The longest literal prefix built by repeating a literal (`x{100}`); longer repetitions
/// contribute one copy.
const PREFIX_BYTES_MAX: usize = 4096;

/// How deeply groups and classes may nest in a pattern (the `regex` crate's default).
const NEST_LIMIT: u32 = 250;

/// The comparison a [`Matcher`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// `=`: the value equals the given string.
    Equal,
    /// `!=`: the value differs from the given string.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchKind {
    /// Whether this kind selects the values its positive form rejects (`!=`, `!~`).
    pub fn is_negative(self) -> bool {
        matches!(self, MatchKind::NotEqual | MatchKind::NotRegex)
    }

    /// Whether the value is a regex pattern (`=~`, `!~`).
    pub fn is_regex(self) -> bool {
        matches!(self, MatchKind::Regex | MatchKind::NotRegex)
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchKind::Equal => "=",
            MatchKind::NotEqual => "!=",
            MatchKind::Regex => "=~",
            MatchKind::NotRegex => "!~",
        })
    }
}

/// Bounds on the cost of compiling an untrusted regex.
///
/// The defaults follow what other Prometheus-compatible systems found safe: long enough for
/// any hand-written or Grafana-generated selector, small enough that a hostile pattern costs
/// at most a few milliseconds and a few MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatcherLimits {
    /// The longest pattern accepted, in bytes, checked before parsing. Default 4096.
    pub pattern_bytes_max: usize,
    /// The largest compiled program, in bytes (`regex::RegexBuilder::size_limit`). Counted
    /// repetitions such as `(x{1000}){1000}` are what exceed it. Default 1 MiB.
    pub regex_size_max: usize,
    /// The capacity of the lazy DFA's transition cache, in bytes, per regex and per thread
    /// that runs it (`regex::RegexBuilder::dfa_size_limit`). A full cache is reset, and a
    /// regex that keeps filling it switches to a slower engine; nothing fails. Default 2 MiB.
    pub dfa_size_max: usize,
}

impl Default for MatcherLimits {
    fn default() -> MatcherLimits {
        MatcherLimits {
            pattern_bytes_max: 4096,
            regex_size_max: 1 << 20,
            dfa_size_max: 2 << 20,
        }
    }
}

/// Why a regex matcher could not be built. Label matchers come from queries, so every
/// variant is the caller's to fix (HTTP 400), never a server fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The pattern is not a valid regex.
    #[error(
        "invalid regex {pattern:?}: {reason}; fix the pattern (RE2 syntax, matched against the whole value)"
    )]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The pattern is longer than [`MatcherLimits::pattern_bytes_max`].
    #[error(
        "regex pattern is {bytes} bytes, over the limit of {max}; shorten the pattern or raise pattern_bytes_max"
    )]
    PatternTooLong {
        /// The pattern's length in bytes.
        bytes: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The compiled program is larger than [`MatcherLimits::regex_size_max`].
    #[error(
        "regex {pattern:?} compiles to more than {max} bytes; simplify the regex or raise regex_size_max"
    )]
    RegexTooLarge {
        /// The pattern as given.
        pattern: String,
        /// The limit it exceeds.
        max: usize,
    },
}

/// A label matcher: a label name, a comparison and a value or regex pattern.
///
/// Build one with [`Matcher::new`] (or [`Matcher::equal`] / [`Matcher::not_equal`], which
/// cannot fail) and ask [`Matcher::matches`] about a series' value for [`Matcher::name`],
/// passing `""` when the series has no such label.
///
/// Equality compares the kind, name and value. (There is no `Hash`: the compiled regex
/// inside has interior mutability; key a cache by `(kind, name, value)` instead.)
#[derive(Clone, Debug)]
pub struct Matcher {
    kind: MatchKind,
    name: String,
    value: String,
    // Invariant: `plan.accepts(v)` is true exactly for the values the positive form of
    // `kind` accepts: `v == value` for `=`/`!=`, a whole-value match of the pattern for
    // `=~`/`!~`. `matches` negates it for the negative kinds.
    plan: Plan,
    // Invariant: `None` unless `kind` is `Regex`; otherwise a non-empty string that every
    // value `plan` accepts starts with.
    prefix: Option<String>,
}

/// How a matcher tests a value; see the module documentation.
#[derive(Clone, Debug)]
enum Plan {
    // Invariant: sorted and free of duplicates, at most `SET_VALUES_MAX` strings.
    Set(Vec<String>),
    // Invariant: between 1 and `SHAPES_MAX` shapes.
    Shapes(Vec<Shape>),
    Regex(regex::Regex),
}

/// `prefix`, then `middle`, then `suffix`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    prefix: String,
    middle: Middle,
    suffix: String,
}

/// What a [`Shape`] accepts between its prefix and suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Middle {
    /// Nothing: the shape is the literal `prefix + suffix`.
    Empty,
    /// `.*`: any string.
    Any,
    /// `.+`: any non-empty string.
    NonEmpty,
    /// `.*lit.*`: any string containing the (non-empty) literal.
    Contains(String),
}

impl Matcher {
    /// Builds a matcher with the default [`MatcherLimits`].
    ///
    /// For `Equal` and `NotEqual` this cannot fail. For `Regex` and `NotRegex`, `value` is
    /// a pattern matched against the whole label value.
    pub fn new(kind: MatchKind, name: &str, value: &str) -> Result<Matcher, MatcherError> {
        Matcher::with_limits(kind, name, value, &MatcherLimits::default())
    }

    /// Builds a matcher, bounding the cost of compiling a regex by `limits`.
    pub fn with_limits(
        kind: MatchKind,
        name: &str,
        value: &str,
        limits: &MatcherLimits,
    ) -> Result<Matcher, MatcherError> {
        if !kind.is_regex() {
            return Ok(Matcher::literal(kind, name, value));
        }
        let (plan, prefix) = compile(value, limits)?;
        Ok(Matcher {
            kind,
            name: name.to_owned(),
            value: value.to_owned(),
            plan,
            prefix: prefix.filter(|_| kind == MatchKind::Regex),
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher::literal(MatchKind::Equal, name, value)
    }

    /// `name!="value"`.
    pub fn not_equal(name: &str, value: &str) -> Matcher {
        Matcher::literal(MatchKind::NotEqual, name, value)
    }

    fn literal(kind: MatchKind, name: &str, value: &str) -> Matcher {
        Matcher {
            kind,
            name: name.to_owned(),
            value: value.to_owned(),
            plan: Plan::Set(vec![value.to_owned()]),
            prefix: None,
        }
    }

    /// The label name the matcher tests.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The comparison.
    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// The value compared with, or for the regex kinds the pattern as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the matcher selects a series whose label has this value. Pass `""` for a
    /// series that does not have the label.
    pub fn matches(&self, value: &str) -> bool {
        self.plan.accepts(value) != self.kind.is_negative()
    }

    /// Whether the matcher selects series that lack the label (it accepts `""`).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// The exact set of values the matcher accepts, for looking them up in an inverted index
    /// instead of scanning every value of the label.
    ///
    /// `Some` for `=` (the one value) and for `=~` when the pattern accepts a small finite set
    /// of strings, such as `a|b|c`, `(?i)get` or `node-[1-3]` (at most 256 of them). The
    /// slice is sorted in byte order and has no duplicates; it may be empty (the pattern
    /// matches nothing) and may contain `""`, which stands for series without the label.
    /// `None` for `!=`, `!~` and every other pattern.
    pub fn set_values(&self) -> Option<&[String]> {
        match (&self.plan, self.kind) {
            (Plan::Set(values), MatchKind::Equal | MatchKind::Regex) => Some(values),
            _ => None,
        }
    }

    /// A non-empty string that every value an `=~` matcher accepts starts with, so an index
    /// with sorted values can scan only the values with this prefix.
    ///
    /// It is the literal text every match of the pattern begins with: `api-` for `api-.*`,
    /// `api-.+` or `api-[0-9]+`, `ap` for `api|apex`. It narrows the candidates without
    /// deciding them: not every value with the prefix is accepted, so still call
    /// [`Matcher::matches`] on each. `None` for the other kinds, and for patterns with no
    /// literal start, such as `.*x`, `(?i)api.*` or `a?b` (which can accept the empty string
    /// or values with different first characters).
    pub fn literal_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        (self.kind, &self.name, &self.value) == (other.kind, &other.name, &other.value)
    }
}

impl Eq for Matcher {}

/// Formats the matcher as PromQL writes it: `job="api"`, `path=~"/api/.*"`. The value is
/// quoted as Go's `strconv.Quote` does, so the output parses back to the same matcher; the
/// name is quoted too when it is not a classic label name (`"my.label"="x"`), as in
/// Prometheus 3.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_classic_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_go_quoted(f, &self.name)?;
        }
        write!(f, "{}", self.kind)?;
        write_go_quoted(f, &self.value)
    }
}

impl Plan {
    fn accepts(&self, value: &str) -> bool {
        match self {
            Plan::Set(values) => match values.as_slice() {
                [only] => only == value,
                values => values.binary_search_by(|v| v.as_str().cmp(value)).is_ok(),
            },
            Plan::Shapes(shapes) => shapes.iter().any(|shape| shape.accepts(value)),
            Plan::Regex(regex) => regex.is_match(value),
        }
    }
}

impl Shape {
    fn accepts(&self, value: &str) -> bool {
        // Stripping the prefix and then the suffix from what is left keeps them from
        // overlapping: `ab.*ba` must not accept "aba".
        let Some(middle) = value
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_suffix(self.suffix.as_str()))
        else {
            return false;
        };
        match &self.middle {
            Middle::Empty => middle.is_empty(),
            Middle::Any => true,
            Middle::NonEmpty => !middle.is_empty(),
            Middle::Contains(needle) => middle.contains(needle.as_str()),
        }
    }
}

/// Parses, checks and compiles `pattern`, and picks its plan and literal prefix.
fn compile(pattern: &str, limits: &MatcherLimits) -> Result<(Plan, Option<String>), MatcherError> {
    if pattern.len() > limits.pattern_bytes_max {
        return Err(MatcherError::PatternTooLong {
            bytes: pattern.len(),
            max: limits.pattern_bytes_max,
        });
    }
    let invalid = |reason: String| MatcherError::InvalidRegex {
        pattern: pattern.to_owned(),
        reason,
    };
    let syntax = ast::parse::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(pattern)
        .map_err(|e| invalid(format!("{} at byte {}", e.kind(), e.span().start.offset)))?;
    let go_pattern = to_go_semantics(pattern, &syntax).map_err(invalid)?;
    let hir = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .nest_limit(NEST_LIMIT + 1)
        .build()
        .parse(&go_pattern)
        .map_err(|e| invalid(describe_syntax_error(&e, go_pattern == pattern)))?;
    // The pattern parsed on its own and has no `x` flag, so its parentheses balance and
    // nothing in it can reach past the closing `)`: the anchors apply to the whole pattern.
    // Rewriting a Perl class inside a bracket nests one more class, and the wrapper one more
    // group, hence the extra nesting allowed.
    let regex = regex::RegexBuilder::new(&format!("^(?s:{go_pattern})$"))
        .size_limit(limits.regex_size_max)
        .dfa_size_limit(limits.dfa_size_max)
        .nest_limit(NEST_LIMIT + 2)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => MatcherError::RegexTooLarge {
                pattern: pattern.to_owned(),
                max: limits.regex_size_max,
            },
            regex::Error::Syntax(message) => invalid(last_error_line(&message)),
            other => invalid(other.to_string()),
        })?;
    let prefix = Some(literal_prefix(&hir).0).filter(|p| !p.is_empty());
    let plan = if let Some(values) = finite_set(&hir) {
        Plan::Set(values)
    } else if let Some(shapes) = shapes(&hir) {
        Plan::Shapes(shapes)
    } else {
        Plan::Regex(regex)
    };
    Ok((plan, prefix))
}

/// One line describing a regex-syntax error, with its byte offset when the offsets refer to
/// the pattern as the user wrote it.
fn describe_syntax_error(err: &regex_syntax::Error, offsets_valid: bool) -> String {
    let (kind, offset) = match err {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.offset),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.offset),
        other => return last_error_line(&other.to_string()),
    };
    if offsets_valid {
        format!("{kind} at byte {offset}")
    } else {
        kind
    }
}

/// The `error: ...` line of the regex crates' multi-line messages.
fn last_error_line(message: &str) -> String {
    let line = message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with('~'));
    let line = line.unwrap_or(message).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Rewrites the parts of `pattern` whose meaning differs between Go's RE2 dialect and the Rust
/// `regex` crate, and rejects the `x` flag. Returns `pattern` unchanged when nothing differs.
fn to_go_semantics(pattern: &str, syntax: &Ast) -> Result<String, String> {
    let mut edits = ast::visit(syntax, GoRewrites::default())?;
    if edits.is_empty() {
        return Ok(pattern.to_owned());
    }
    edits.sort_by_key(|edit| edit.0.start);
    let mut out = String::with_capacity(pattern.len() + 16 * edits.len());
    let mut copied = 0;
    for (span, replacement) in edits {
        out.push_str(&pattern[copied..span.start]);
        match replacement {
            Replacement::Text(text) => out.push_str(text),
            Replacement::AsciiOnly => {
                out.push_str("(?-u:");
                out.push_str(&pattern[span.clone()]);
                out.push(')');
            }
        }
        copied = span.end;
    }
    out.push_str(&pattern[copied..]);
    Ok(out)
}

/// Collects the edits [`to_go_semantics`] makes, as byte ranges of the pattern.
#[derive(Default)]
struct GoRewrites {
    edits: Vec<(std::ops::Range<usize>, Replacement)>,
}

enum Replacement {
    /// Replace the range with this text.
    Text(&'static str),
    /// Wrap the range in `(?-u:...)`.
    AsciiOnly,
}

impl GoRewrites {
    fn perl_class(&mut self, class: &ast::ClassPerl) {
        use ast::ClassPerlKind::{Digit, Space, Word};
        // Go's classes, written so that each is a single bracketed class: valid both on its
        // own and nested inside another bracket.
        let text = match (&class.kind, class.negated) {
            (Digit, false) => "[0-9]",
            (Digit, true) => "[^0-9]",
            (Space, false) => r"[\t\n\f\r ]",
            (Space, true) => r"[^\t\n\f\r ]",
            (Word, false) => "[0-9A-Za-z_]",
            (Word, true) => "[^0-9A-Za-z_]",
        };
        self.edits
            .push((span_range(&class.span), Replacement::Text(text)));
    }
}

impl ast::Visitor for GoRewrites {
    type Output = Vec<(std::ops::Range<usize>, Replacement)>;
    type Err = String;

    fn finish(self) -> Result<Self::Output, String> {
        Ok(self.edits)
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        use ast::AssertionKind::{EndLine, EndText, StartLine, StartText};
        let flags = match node {
            Ast::ClassPerl(class) => {
                self.perl_class(class);
                None
            }
            // Every word-boundary assertion (`\b`, `\B`, `\<`, `\b{start}`, ...) becomes
            // ASCII-only, like Go's `\b`.
            Ast::Assertion(a) if !matches!(a.kind, StartLine | EndLine | StartText | EndText) => {
                self.edits
                    .push((span_range(&a.span), Replacement::AsciiOnly));
                None
            }
            Ast::Flags(set) => Some(&set.flags),
            Ast::Group(group) => group.flags(),
            _ => None,
        };
        let uses_x = flags.is_some_and(|flags| {
            flags
                .items
                .iter()
                .any(|item| item.kind == ast::FlagsItemKind::Flag(ast::Flag::IgnoreWhitespace))
        });
        if uses_x {
            return Err("the x flag is not supported".to_owned());
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ast::ClassSetItem) -> Result<(), String> {
        if let ast::ClassSetItem::Perl(class) = item {
            self.perl_class(class);
        }
        Ok(())
    }
}

fn span_range(span: &ast::Span) -> std::ops::Range<usize> {
    span.start.offset..span.end.offset
}

/// Whether `hir` matches any character at all, newline included: `(?s:.)`.
fn is_any_char(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            matches!(class.ranges(), [r] if r.start() == '\0' && r.end() == char::MAX)
        }
        _ => false,
    }
}

/// The strings `hir` matches, sorted and deduplicated, if there are at most
/// [`SET_VALUES_MAX`] of them with at most [`SET_BYTES_MAX`] bytes in all.
fn finite_set(hir: &Hir) -> Option<Vec<String>> {
    let mut values = match hir.kind() {
        HirKind::Empty => vec![String::new()],
        HirKind::Literal(lit) => vec![String::from_utf8(lit.0.to_vec()).ok()?],
        HirKind::Class(class) => class_chars(class)?.into_iter().map(String::from).collect(),
        HirKind::Look(_) => return None,
        HirKind::Capture(capture) => finite_set(&capture.sub)?,
        HirKind::Concat(subs) => {
            let mut acc = vec![String::new()];
            for sub in subs {
                acc = product(&acc, &finite_set(sub)?)?;
            }
            acc
        }
        HirKind::Alternation(subs) => {
            let mut acc = Vec::new();
            for sub in subs {
                acc.extend(finite_set(sub)?);
                acc.sort_unstable();
                acc.dedup();
                within_set_budget(&acc)?;
            }
            acc
        }
        HirKind::Repetition(rep) => {
            let max = rep.max?;
            if max as usize > SET_VALUES_MAX {
                return None;
            }
            let unit = finite_set(&rep.sub)?;
            let mut acc = Vec::new();
            let mut power = vec![String::new()];
            for times in 0..=max {
                if times >= rep.min {
                    acc.extend(power.iter().cloned());
                    acc.sort_unstable();
                    acc.dedup();
                    within_set_budget(&acc)?;
                }
                if times < max {
                    power = product(&power, &unit)?;
                }
            }
            acc
        }
    };
    values.sort_unstable();
    values.dedup();
    within_set_budget(&values)?;
    Some(values)
}

/// Every concatenation of a string of `a` with a string of `b`, deduplicated, if the result
/// stays within the set budget (checked before building it).
fn product(a: &[String], b: &[String]) -> Option<Vec<String>> {
    let bytes = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    let count = a.len().checked_mul(b.len())?;
    let total = bytes(a)
        .checked_mul(b.len())?
        .checked_add(bytes(b).checked_mul(a.len())?)?;
    if count > SET_VALUES_MAX * 4 || total > SET_BYTES_MAX * 4 {
        return None;
    }
    let mut out: Vec<String> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| format!("{x}{y}")))
        .collect();
    out.sort_unstable();
    out.dedup();
    within_set_budget(&out)?;
    Some(out)
}

fn within_set_budget(values: &[String]) -> Option<()> {
    let bytes: usize = values.iter().map(String::len).sum();
    (values.len() <= SET_VALUES_MAX && bytes <= SET_BYTES_MAX).then_some(())
}

/// The characters of a class, if there are at most [`SET_VALUES_MAX`] of them.
fn class_chars(class: &Class) -> Option<Vec<char>> {
    let mut chars = Vec::new();
    match class {
        Class::Unicode(class) => {
            for range in class.ranges() {
                let len = (range.end() as usize) - (range.start() as usize) + 1;
                if chars.len() + len > SET_VALUES_MAX {
                    return None;
                }
                chars.extend(range.start()..=range.end());
            }
        }
        // A byte class in a UTF-8 regex can only hold ASCII; anything else is left to the
        // regex rather than reasoned about.
        Class::Bytes(class) => {
            for range in class.ranges() {
                if !range.end().is_ascii() {
                    return None;
                }
                let len = usize::from(range.end() - range.start()) + 1;
                if chars.len() + len > SET_VALUES_MAX {
                    return None;
                }
                chars.extend((range.start()..=range.end()).map(char::from));
            }
        }
    }
    Some(chars)
}

/// The pattern as a list of [`Shape`]s, one per top-level branch, if every branch is one.
fn shapes(mut hir: &Hir) -> Option<Vec<Shape>> {
    while let HirKind::Capture(capture) = hir.kind() {
        hir = &capture.sub;
    }
    let branches = match hir.kind() {
        HirKind::Alternation(subs) => subs.as_slice(),
        _ => std::slice::from_ref(hir),
    };
    if branches.len() > SHAPES_MAX {
        return None;
    }
    let mut shapes = Vec::with_capacity(branches.len());
    for branch in branches {
        if let Some(shape) = shape(branch) {
            shapes.push(shape);
        } else {
            // A branch like `(?i)ok` is a small set of literals, each an exact shape.
            for value in finite_set(branch)? {
                shapes.push(Shape {
                    prefix: value,
                    middle: Middle::Empty,
                    suffix: String::new(),
                });
            }
        }
        if shapes.len() > SHAPES_MAX {
            return None;
        }
    }
    Some(shapes)
}

/// A piece of a branch, as [`shape`] sees it.
enum Token {
    Literal(String),
    /// `(?s:.)*`, greedy or not (greed does not change what a whole-value match accepts).
    AnyStar,
    /// `(?s:.)+`.
    AnyPlus,
}

/// The branch as a [`Shape`]: an optional literal, then `.*`, `.+` or `.*literal.*`, then an
/// optional literal.
fn shape(branch: &Hir) -> Option<Shape> {
    let mut tokens = Vec::new();
    tokenize(branch, &mut tokens)?;
    let mut rest = tokens.as_slice();
    let mut prefix = String::new();
    if let [Token::Literal(text), others @ ..] = rest {
        prefix.clone_from(text);
        rest = others;
    }
    let mut suffix = String::new();
    if let [others @ .., Token::Literal(text)] = rest {
        suffix.clone_from(text);
        rest = others;
    }
    let middle = match rest {
        [] => Middle::Empty,
        [Token::AnyStar] => Middle::Any,
        [Token::AnyPlus] => Middle::NonEmpty,
        [Token::AnyStar, Token::Literal(needle), Token::AnyStar] => {
            Middle::Contains(needle.clone())
        }
        _ => return None,
    };
    Some(Shape {
        prefix,
        middle,
        suffix,
    })
}

/// Flattens a branch into [`Token`]s, merging adjacent literals, or `None` if it holds
/// anything else.
fn tokenize(hir: &Hir, tokens: &mut Vec<Token>) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0).ok()?;
            match tokens.last_mut() {
                Some(Token::Literal(previous)) => previous.push_str(text),
                _ => tokens.push(Token::Literal(text.to_owned())),
            }
        }
        HirKind::Capture(capture) => tokenize(&capture.sub, tokens)?,
        HirKind::Concat(subs) => {
            for sub in subs {
                tokenize(sub, tokens)?;
            }
        }
        HirKind::Repetition(rep) if rep.max.is_none() && is_any_char(&rep.sub) => {
            tokens.push(match rep.min {
                0 => Token::AnyStar,
                1 => Token::AnyPlus,
                _ => return None,
            });
        }
        _ => return None,
    }
    Some(())
}

/// The literal text every string `hir` matches starts with, and whether `hir` matches
/// nothing but that text (so whatever follows it in a concatenation extends the prefix).
fn literal_prefix(hir: &Hir) -> (String, bool) {
    match hir.kind() {
        // Both match only the empty string (a look-around when its condition holds).
        HirKind::Empty | HirKind::Look(_) => (String::new(), true),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(text) => (text.to_owned(), true),
            Err(_) => (String::new(), false),
        },
        HirKind::Class(_) => (String::new(), false),
        HirKind::Capture(capture) => literal_prefix(&capture.sub),
        HirKind::Concat(subs) => {
            let mut prefix = String::new();
            for sub in subs {
                let (text, exact) = literal_prefix(sub);
                prefix.push_str(&text);
                if !exact {
                    return (prefix, false);
                }
            }
            (prefix, true)
        }
        HirKind::Alternation(subs) => {
            let mut branches = subs.iter().map(literal_prefix);
            let Some((mut prefix, mut exact)) = branches.next() else {
                return (String::new(), false);
            };
            for (text, branch_exact) in branches {
                exact &= branch_exact && text == prefix;
                prefix.truncate(common_prefix_len(&prefix, &text));
            }
            (prefix, exact)
        }
        // With at least one repetition, every match starts with a match of the sub-expression,
        // and with `min` of them if that sub-expression is a literal.
        HirKind::Repetition(rep) if rep.min >= 1 => {
            let (text, exact) = literal_prefix(&rep.sub);
            let repeated = text.len().saturating_mul(rep.min as usize);
            if exact && repeated <= PREFIX_BYTES_MAX {
                (text.repeat(rep.min as usize), rep.max == Some(rep.min))
            } else {
                (text, false)
            }
        }
        HirKind::Repetition(_) => (String::new(), false),
    }
}

/// The length in bytes of the longest common prefix of `a` and `b` that ends on a character
/// boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    let mut len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// Whether `name` can be written unquoted in PromQL: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_classic_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes `s` in double quotes with Go's escapes, as `strconv.Quote` does: `\"`, `\\`, the
/// named control escapes, `\xNN` for other ASCII controls and `\uNNNN` / `\UNNNNNNNN` for
/// other characters that do not print. (Which characters print is approximated: controls,
/// whitespace other than the space, and the common invisible format characters are escaped.
/// Any choice parses back to the same string.)
fn write_go_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\u{7}' => f.write_str("\\a")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{b}' => f.write_str("\\v")?,
            c if c.is_ascii_control() => write!(f, "\\x{:02x}", u32::from(c))?,
            c if prints(c) => write!(f, "{c}")?,
            c if u32::from(c) < 0x1_0000 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => write!(f, "\\U{:08x}", u32::from(c))?,
        }
    }
    f.write_str("\"")
}

fn prints(c: char) -> bool {
    let format_char = matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    );
    !(c.is_control() || (c.is_whitespace() && c != ' ') || format_char)
}

#[cfg(test)]
mod tests;
