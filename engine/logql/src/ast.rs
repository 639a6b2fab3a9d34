//! What a parsed LogQL query is.

use regex::Regex;
use strata_core::labels::matcher::{MatchKind, Matcher};
use strata_logs::filter::{LineMatch, Needle};

use crate::template::Template;

/// A query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A log query: the lines of the selected streams that pass the pipeline.
    Log(LogExpr),
    /// A metric query: numbers over time made from log lines.
    Metric(MetricExpr),
}

/// A stream selector and the pipeline after it.
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub selector: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

impl LogExpr {
    /// The line filters of the pipeline, in order.
    pub fn line_filters(&self) -> impl Iterator<Item = &LineFilter> {
        self.stages.iter().filter_map(|s| match s {
            Stage::Line(f) => Some(f),
            _ => None,
        })
    }

    /// What every entry the pipeline keeps contains as sent: the needles of the line filters
    /// that come before any stage that changes the line, and of the label filters
    /// `| name="value"` that come before any stage that changes the labels (so the label is
    /// the stream's or the entry's structured metadata: the needle applies to the streams
    /// without such a label).
    pub fn needles(&self) -> Vec<Needle> {
        let mut needles: Vec<Needle> = self
            .stages
            .iter()
            .take_while(|s| !s.changes_line())
            .filter_map(|s| match s {
                Stage::Line(f) => f.needle(),
                _ => None,
            })
            .collect();
        needles.extend(
            self.stages
                .iter()
                .take_while(|s| matches!(s, Stage::Line(_) | Stage::Label(_)))
                .filter_map(|s| match s {
                    Stage::Label(LabelPredicate::Matcher(m))
                        if m.kind() == MatchKind::Equal && !m.name().starts_with("__") =>
                    {
                        Needle::metadata(m.name(), m.value())
                    }
                    _ => None,
                }),
        );
        needles
    }

    /// What every line the pipeline keeps holds a match of, as sent: the first `|=` or `|~`
    /// before any stage that changes the line (`None` when there is none, or its pattern
    /// cannot be searched for across a page's lines exactly; see [`LineMatch`]).
    pub fn must_match(&self) -> Option<LineMatch> {
        self.stages
            .iter()
            .take_while(|s| !s.changes_line())
            .find_map(|s| match s {
                Stage::Line(f) => match f.op {
                    FilterOp::Contains => LineMatch::literal(&f.pattern),
                    FilterOp::Matches => LineMatch::regex(&f.pattern),
                    FilterOp::NotContains | FilterOp::NotMatches => None,
                },
                _ => None,
            })
    }

    /// Whether the pipeline is line filters only (labels and line pass unchanged).
    pub fn filters_only(&self) -> bool {
        self.stages.iter().all(|s| matches!(s, Stage::Line(_)))
    }

    /// Whether the pipeline unwraps a label into samples.
    pub fn unwraps(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Stage::Unwrap { .. }))
    }
}

/// One stage of a log pipeline.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= "s"` and its kin.
    Line(LineFilter),
    /// `| json`, or `| json name="path", …` (only the named fields).
    Json(Vec<(String, JsonPath)>),
    /// `| logfmt [--strict] [--keep-empty]`.
    Logfmt { strict: bool, keep_empty: bool },
    /// `| regexp "re"`: its named groups become labels.
    Regexp(Regex),
    /// `| unpack`: a JSON object's string fields become labels, `_entry` the line.
    Unpack,
    /// `| pattern "<ip> - <_> [<ts>] <rest>"`: literals matched in order, the named
    /// captures between them become labels (`<_>` skips).
    Pattern(Vec<PatternPart>),
    /// `| name op value …`: keeps the entries the predicate accepts.
    Label(LabelPredicate),
    /// `| drop name, name="value", …`.
    Drop(Vec<LabelSel>),
    /// `| keep name, name="value", …`.
    Keep(Vec<LabelSel>),
    /// `| decolorize`: ANSI colour sequences removed from the line.
    Decolorize,
    /// `| line_format "{{.label}} …"`: the line becomes the template's expansion.
    LineFormat(Template),
    /// `| label_format new=old, name="{{ … }}"`: labels renamed or set from templates.
    LabelFormat(Vec<(String, LabelFormatValue)>),
    /// `| unwrap name`, `| unwrap duration(name)`, `| unwrap bytes(name)`: the label's value
    /// becomes the entry's sample (the label leaves the labels); metric queries only.
    Unwrap { label: String, kind: UnwrapKind },
}

/// What `label_format` sets a label to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFormatValue {
    /// `new=old`: the label `old`, renamed (and removed under its old name).
    Rename(String),
    /// `name="{{ … }}"`: a template's expansion.
    Template(Template),
}

/// A piece of a `pattern`: text that must come next, or a capture up to the next text (or the
/// end of the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    Literal(String),
    /// A named capture; `None` for `<_>`.
    Capture(Option<String>),
}

/// Reads a `pattern` expression; `Err` says why it is not one.
pub fn parse_pattern(text: &str) -> Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let capture = rest.strip_prefix('<').and_then(|r| {
            let end = r.find('>')?;
            let name = &r[..end];
            let valid = name == "_"
                || (!name.is_empty()
                    && name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
                    && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()));
            valid.then(|| (name, &r[end + 1..]))
        });
        match capture {
            Some((name, after)) => {
                if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                    return Err(format!(
                        "captures must be separated by text: <{name}> follows another"
                    ));
                }
                parts.push(PatternPart::Capture((name != "_").then(|| name.to_owned())));
                rest = after;
            }
            None => {
                // Text up to the next capture (a `<` that does not open one is text).
                let next = rest[1..].find('<').map_or(rest.len(), |i| i + 1);
                match parts.last_mut() {
                    Some(PatternPart::Literal(l)) => l.push_str(&rest[..next]),
                    _ => parts.push(PatternPart::Literal(rest[..next].to_owned())),
                }
                rest = &rest[next..];
            }
        }
    }
    if !parts
        .iter()
        .any(|p| matches!(p, PatternPart::Capture(Some(_))))
    {
        return Err("at least one named capture must be supplied".to_owned());
    }
    Ok(parts)
}

/// How `unwrap` reads its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapKind {
    /// A float.
    Number,
    /// `duration(…)` or `duration_seconds(…)`: a Go duration, in seconds.
    Duration,
    /// `bytes(…)`: a byte size, in bytes.
    Bytes,
    /// The value's 64-bit hash, for `approx_count_distinct_over_time(name, …)` (which adds
    /// this stage; no query writes it): an entry without the label is left out.
    Distinct,
}

impl Stage {
    /// Whether the stage may change the line (later line filters see the changed one).
    pub fn changes_line(&self) -> bool {
        matches!(
            self,
            Stage::Unpack | Stage::Decolorize | Stage::LineFormat(_)
        )
    }
}

/// A path into a JSON value: `a.b[0]["c d"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

/// The steps of a path.
pub type JsonPath = Vec<JsonStep>;

/// A label named for `drop` or `keep`, with an optional matcher on its value.
#[derive(Debug, Clone)]
pub struct LabelSel {
    pub name: String,
    pub matcher: Option<Matcher>,
}

/// A comparison of a label filter on numbers, durations or byte sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// `a op b`.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// How a label's value is read for a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A float.
    Number,
    /// A Go duration (`1.5s`, `1h2m`), compared in seconds.
    Duration,
    /// A byte size (`20MB`, `1.5KiB`), compared in bytes.
    Bytes,
}

/// The predicate of a label filter stage.
#[derive(Debug, Clone)]
pub enum LabelPredicate {
    /// `a and b` (also `a, b` and `a b`).
    And(Box<LabelPredicate>, Box<LabelPredicate>),
    /// `a or b`.
    Or(Box<LabelPredicate>, Box<LabelPredicate>),
    /// `name = "s"`, `!=`, `=~`, `!~`: on the value as a string (absent = empty).
    Matcher(Matcher),
    /// `name op 42`, `name op 1.5s`, `name op 20MB`.
    Compare {
        name: String,
        op: CmpOp,
        kind: ValueKind,
        value: f64,
    },
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    /// `count_over_time({…} | … [5m] offset 1h)` and the other range aggregations; those of
    /// unwrapped samples may group their series (`… [5m]) by (a)`).
    Range {
        op: RangeOp,
        log: LogExpr,
        range_ns: i64,
        offset_ns: i64,
        grouping: Option<Grouping>,
    },
    /// `max_over_time(<metric query>[1h:5m])`: a range aggregation over a metric query's
    /// values at every `step` in the window (a subquery; beyond Loki).
    Subquery {
        op: RangeOp,
        inner: Box<MetricExpr>,
        range_ns: i64,
        step_ns: i64,
        offset_ns: i64,
    },
    /// A number: a scalar.
    Number(f64),
    /// `vector(n)`: one series without labels, `n` at every step.
    Vector(f64),
    /// `a op b`: arithmetic or a comparison between metric queries or numbers; series meet
    /// series of the same labels.
    Binary {
        op: BinOp,
        /// `bool`: a comparison gives 1 or 0 instead of filtering.
        return_bool: bool,
        /// `on (…)` / `ignoring (…)`, `group_left` / `group_right`: how series meet.
        matching: Option<Matching>,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    /// `sum by (a) (…)` and the other vector aggregations.
    Aggregate {
        op: AggOp,
        /// `k` of `topk` and `bottomk`.
        param: Option<usize>,
        grouping: Grouping,
        inner: Box<MetricExpr>,
    },
}

/// How the series of two sides meet: by the labels `on` names, or by all but those
/// `ignoring` names; with a group, one series of one side meets many of the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    pub labels: Vec<String>,
    pub group: Option<MatchGroup>,
}

/// `group_left (…)` or `group_right (…)`: the side with many series, and the labels of the
/// other side copied onto the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchGroup {
    pub left: bool,
    pub include: Vec<String>,
}

/// A binary operator, loosest binding first: `or`; `and`, `unless`; comparisons; `+ -`;
/// `* / %`; `^`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Unless,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinOp {
    /// Operators written with symbols, longest first (so `>=` is not read as `>`).
    pub const ALL: [(&'static str, BinOp); 12] = [
        ("==", BinOp::Eq),
        ("!=", BinOp::Ne),
        (">=", BinOp::Ge),
        ("<=", BinOp::Le),
        (">", BinOp::Gt),
        ("<", BinOp::Lt),
        ("+", BinOp::Add),
        ("-", BinOp::Sub),
        ("*", BinOp::Mul),
        ("/", BinOp::Div),
        ("%", BinOp::Mod),
        ("^", BinOp::Pow),
    ];

    /// Operators written as words.
    pub const WORDS: [(&'static str, BinOp); 3] = [
        ("and", BinOp::And),
        ("or", BinOp::Or),
        ("unless", BinOp::Unless),
    ];

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// Whether it is a comparison.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// Whether it is a set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        self.precedence() <= 2
    }

    /// `a op b`, a comparison giving 1 or 0 (a set operator has no value of its own: NaN).
    pub fn apply(self, a: f64, b: f64) -> f64 {
        let truth = |t: bool| if t { 1.0 } else { 0.0 };
        match self {
            BinOp::Eq => truth(a == b),
            BinOp::Ne => truth(a != b),
            BinOp::Gt => truth(a > b),
            BinOp::Lt => truth(a < b),
            BinOp::Ge => truth(a >= b),
            BinOp::Le => truth(a <= b),
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Mod => a % b,
            BinOp::Pow => a.powf(b),
            BinOp::Or | BinOp::And | BinOp::Unless => f64::NAN,
        }
    }
}

/// A range aggregation over log lines, or over the samples `unwrap` made of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeOp {
    /// Entries in the window.
    CountOverTime,
    /// Entries per second; with `unwrap`, the sum of the samples per second.
    Rate,
    /// Bytes of the lines in the window.
    BytesOverTime,
    /// Bytes of the lines per second.
    BytesRate,
    /// 1 where the window holds no entry of any series.
    AbsentOverTime,
    /// Unwrapped: the samples' sum, mean, largest, smallest, first, last, variance,
    /// standard deviation, φ-quantile.
    SumOverTime,
    AvgOverTime,
    MaxOverTime,
    MinOverTime,
    FirstOverTime,
    LastOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime(f64),
    /// Unwrapped: the increase per second of a counter (a drop is a reset).
    RateCounter,
    /// `approx_count_distinct_over_time(name, …)` (beyond Loki): how many distinct values
    /// the label `name` takes in the window; exact up to [`DISTINCT_EXACT_MAX`] entries in
    /// the window, a HyperLogLog estimate (about 0.8% off) beyond.
    ApproxCountDistinct,
}

/// Windows of up to this many entries count distinct values exactly (by their 64-bit
/// hashes); larger ones estimate.
pub const DISTINCT_EXACT_MAX: usize = 4096;

impl RangeOp {
    /// Whether the value of a window over several series' entries together is the sum of the
    /// values of each series' window: then `sum by (…) (op(…))` can group the entries before
    /// the windows are cut.
    pub fn is_additive(self) -> bool {
        matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::SumOverTime
        )
    }
}

impl RangeOp {
    /// The range aggregations by name (`quantile_over_time` with its φ 0 until parsed).
    pub const ALL: [(&'static str, RangeOp); 16] = [
        ("count_over_time", RangeOp::CountOverTime),
        ("rate", RangeOp::Rate),
        ("bytes_over_time", RangeOp::BytesOverTime),
        ("bytes_rate", RangeOp::BytesRate),
        ("absent_over_time", RangeOp::AbsentOverTime),
        ("sum_over_time", RangeOp::SumOverTime),
        ("avg_over_time", RangeOp::AvgOverTime),
        ("max_over_time", RangeOp::MaxOverTime),
        ("min_over_time", RangeOp::MinOverTime),
        ("first_over_time", RangeOp::FirstOverTime),
        ("last_over_time", RangeOp::LastOverTime),
        ("stdvar_over_time", RangeOp::StdvarOverTime),
        ("stddev_over_time", RangeOp::StddevOverTime),
        ("quantile_over_time", RangeOp::QuantileOverTime(0.0)),
        ("rate_counter", RangeOp::RateCounter),
        (
            "approx_count_distinct_over_time",
            RangeOp::ApproxCountDistinct,
        ),
    ];

    /// Whether it needs `unwrap` (`Some(true)`), refuses it (`Some(false)`), or takes
    /// either (`None`: `rate`, `absent_over_time`).
    pub fn needs_unwrap(self) -> Option<bool> {
        match self {
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate => Some(false),
            RangeOp::Rate | RangeOp::AbsentOverTime => None,
            _ => Some(true),
        }
    }
}

/// A vector aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
}

impl AggOp {
    pub const ALL: [(&'static str, AggOp); 9] = [
        ("sum", AggOp::Sum),
        ("avg", AggOp::Avg),
        ("min", AggOp::Min),
        ("max", AggOp::Max),
        ("count", AggOp::Count),
        ("stddev", AggOp::Stddev),
        ("stdvar", AggOp::Stdvar),
        ("topk", AggOp::Topk),
        ("bottomk", AggOp::Bottomk),
    ];
}

/// The labels an aggregation keeps: `by (…)` keeps the named ones, `without (…)` the others;
/// no clause (`by ()`) keeps none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// The comparison of a line filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `|= "s"`: the line contains `s`.
    Contains,
    /// `!= "s"`: the line does not contain `s`.
    NotContains,
    /// `|~ "re"`: the regex matches somewhere in the line.
    Matches,
    /// `!~ "re"`: the regex matches nowhere in the line.
    NotMatches,
}

/// One line filter.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: FilterOp,
    /// The string or regex as written (escapes resolved).
    pub pattern: String,
    regex: Option<Regex>,
}

/// The longest regex program a line filter may compile to (as label matchers).
const REGEX_SIZE_MAX: usize = 1 << 20;

impl LineFilter {
    /// A filter; `Err` when a regex filter's pattern does not compile.
    pub fn new(op: FilterOp, pattern: String) -> Result<LineFilter, regex::Error> {
        let regex = match op {
            FilterOp::Matches | FilterOp::NotMatches => Some(
                regex::RegexBuilder::new(&pattern)
                    .size_limit(REGEX_SIZE_MAX)
                    .build()?,
            ),
            FilterOp::Contains | FilterOp::NotContains => None,
        };
        Ok(LineFilter { op, pattern, regex })
    }

    /// Whether `line` passes.
    pub fn keeps(&self, line: &str) -> bool {
        match (&self.op, &self.regex) {
            (FilterOp::Contains, _) => line.contains(self.pattern.as_str()),
            (FilterOp::NotContains, _) => !line.contains(self.pattern.as_str()),
            (FilterOp::Matches, Some(re)) => re.is_match(line),
            (FilterOp::NotMatches, Some(re)) => !re.is_match(line),
            (FilterOp::Matches | FilterOp::NotMatches, None) => {
                unreachable!("regex filters are built with their regex")
            }
        }
    }

    /// What every line it keeps must contain, when that can be told from the pattern: the
    /// string of `|=`, and the literal of a `|~` whose pattern is one (optionally after
    /// `(?i)`). Negative filters keep lines without their pattern: no needle.
    pub fn needle(&self) -> Option<Needle> {
        match self.op {
            FilterOp::Contains => Needle::exact(&self.pattern),
            FilterOp::Matches => {
                let (insensitive, literal) = match self.pattern.strip_prefix("(?i)") {
                    Some(rest) => (true, rest),
                    None => (false, self.pattern.as_str()),
                };
                if literal.chars().any(regex_syntax_meta) {
                    return None;
                }
                if insensitive {
                    Needle::case_insensitive(literal)
                } else {
                    Needle::exact(literal)
                }
            }
            FilterOp::NotContains | FilterOp::NotMatches => None,
        }
    }
}

/// Whether `c` means something in a regex (what `regex::escape` would escape), or is space
/// that the `x` flag would drop; such patterns are not taken as literals.
fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(op: FilterOp, p: &str) -> LineFilter {
        LineFilter::new(op, p.to_string()).unwrap()
    }

    #[test]
    fn filters_keep_lines_as_loki_does_and_name_their_needles() {
        let line = "level=error msg=\"upstream Timeout\" status=504";
        assert!(filter(FilterOp::Contains, "Timeout").keeps(line));
        assert!(
            !filter(FilterOp::Contains, "timeout").keeps(line),
            "case counts"
        );
        assert!(filter(FilterOp::NotContains, "debug").keeps(line));
        assert!(
            filter(FilterOp::Matches, "status=5\\d\\d").keeps(line),
            "unanchored"
        );
        assert!(filter(FilterOp::Matches, "(?i)timeout").keeps(line));
        assert!(!filter(FilterOp::NotMatches, "error").keeps(line));

        assert_eq!(
            filter(FilterOp::Contains, "Timeout").needle(),
            Needle::exact("Timeout")
        );
        assert_eq!(
            filter(FilterOp::Matches, "upstream").needle(),
            Needle::exact("upstream")
        );
        assert_eq!(
            filter(FilterOp::Matches, "(?i)timeout").needle(),
            Needle::case_insensitive("timeout")
        );
        assert_eq!(filter(FilterOp::Matches, "time.ut").needle(), None);
        assert_eq!(filter(FilterOp::Matches, "a|bcd").needle(), None);
        assert_eq!(filter(FilterOp::NotContains, "debug").needle(), None);
        assert_eq!(
            filter(FilterOp::Contains, "ab").needle(),
            None,
            "shorter than a gram"
        );
    }
}
