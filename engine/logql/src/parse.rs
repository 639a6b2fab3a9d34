//! The LogQL parser: text to [`Expr`], by recursive descent over the bytes. Errors carry the
//! line and column (1-based, in characters) of the offending token, the way Loki reports
//! them: `parse error at line 1, col 8: …`.

use strata_core::labels::matcher::{MatchKind, Matcher};

use crate::ast::{
    AggOp, BinOp, CmpOp, Expr, FilterOp, Grouping, JsonPath, JsonStep, LabelPredicate, LabelSel,
    LineFilter, LogExpr, MatchGroup, Matching, MetricExpr, RangeOp, Stage, UnwrapKind, ValueKind,
};
use crate::ast::{LabelFormatValue, parse_pattern};
use crate::template::Template;
use crate::units::{parse_bytes, parse_duration_secs};

/// Why a query did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// The longest query accepted, in bytes.
pub const QUERY_BYTES_MAX: usize = 64 * 1024;

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let mut p = Parser { src: query, pos: 0 };
    if query.len() > QUERY_BYTES_MAX {
        return Err(p.error(format!(
            "the query is {} bytes, longer than the limit of {QUERY_BYTES_MAX}",
            query.len()
        )));
    }
    p.skip_space();
    let expr = if p.rest().starts_with('{') {
        let log = p.log_expr()?;
        if log.unwraps() {
            return Err(p.error_at(
                0,
                "| unwrap is for metric queries, inside a range aggregation",
            ));
        }
        Expr::Log(log)
    } else {
        Expr::Metric(p.metric_expr()?)
    };
    p.skip_space();
    if p.pos < p.src.len() {
        return Err(p.error(format!("unexpected {}", p.describe_next())));
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            line,
            col,
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    /// Consumes `token` (after any space) if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn describe_next(&self) -> String {
        match self.rest().chars().next() {
            None => "end of query".into(),
            Some(_) => {
                let token: String = self.rest().chars().take(12).collect();
                format!("{token:?}")
            }
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), ParseError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {token:?}, found {}",
                self.describe_next()
            )))
        }
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let selector = self.selector()?;
        let stages = self.pipeline()?;
        Ok(LogExpr { selector, stages })
    }

    /// The stages after a selector, up to what is not one.
    fn pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            self.skip_space();
            let at = self.pos;
            let op = if self.eat("|=") {
                FilterOp::Contains
            } else if self.eat("!=") {
                FilterOp::NotContains
            } else if self.eat("|~") {
                FilterOp::Matches
            } else if self.eat("!~") {
                FilterOp::NotMatches
            } else if self.eat("|") {
                stages.push(self.stage()?);
                continue;
            } else {
                break;
            };
            let pattern = self.string()?;
            let filter = LineFilter::new(op, pattern)
                .map_err(|e| self.error_at(at, format!("invalid regex: {e}")))?;
            stages.push(Stage::Line(filter));
        }
        Ok(stages)
    }

    /// Whether the identifier `word` comes next (as a whole word).
    fn peek_word(&mut self, word: &str) -> bool {
        self.skip_space();
        self.rest().starts_with(word)
            && !self.rest()[word.len()..]
                .starts_with(|c: char| c == '_' || c.is_ascii_alphanumeric())
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// One stage after `|`.
    fn stage(&mut self) -> Result<Stage, ParseError> {
        self.skip_space();
        let at = self.pos;
        if self.eat_word("json") {
            let mut fields = Vec::new();
            while self.next_is_ident() {
                let name_at = self.pos;
                let name = self.ident()?;
                let path = if self.eat("=") {
                    let text = self.string()?;
                    json_path(&text).ok_or_else(|| {
                        self.error_at(name_at, format!("invalid JSON path {text:?}"))
                    })?
                } else {
                    vec![JsonStep::Key(name.clone())]
                };
                fields.push((name, path));
                if !self.eat(",") {
                    break;
                }
            }
            return Ok(Stage::Json(fields));
        }
        if self.eat_word("logfmt") {
            let (mut strict, mut keep_empty) = (false, false);
            loop {
                if self.eat("--strict") {
                    strict = true;
                } else if self.eat("--keep-empty") {
                    keep_empty = true;
                } else {
                    break;
                }
            }
            if self.next_is_ident() {
                return Err(self.error("logfmt with parameters is not supported yet"));
            }
            return Ok(Stage::Logfmt { strict, keep_empty });
        }
        if self.eat_word("regexp") {
            let re_at = self.pos;
            let text = self.string()?;
            let re = regex::RegexBuilder::new(&text)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| self.error_at(re_at, format!("invalid regexp: {e}")))?;
            if re.capture_names().flatten().next().is_none() {
                return Err(self.error_at(re_at, "at least one named capture must be supplied"));
            }
            return Ok(Stage::Regexp(re));
        }
        if self.eat_word("pattern") {
            let pat_at = self.pos;
            let text = self.string()?;
            let parts = parse_pattern(&text)
                .map_err(|e| self.error_at(pat_at, format!("invalid pattern: {e}")))?;
            return Ok(Stage::Pattern(parts));
        }
        if self.eat_word("unpack") {
            return Ok(Stage::Unpack);
        }
        if self.eat_word("decolorize") {
            return Ok(Stage::Decolorize);
        }
        for (word, keep) in [("drop", false), ("keep", true)] {
            if self.eat_word(word) {
                let mut sels = Vec::new();
                loop {
                    let sel_at = self.pos;
                    let name = self.ident()?;
                    self.skip_space();
                    let matcher = if self.rest().starts_with(['=', '!']) {
                        let kind = self.match_op().ok_or_else(|| {
                            self.error(format!("expected =, !=, =~ or !~ after {name:?}"))
                        })?;
                        let value = self.string()?;
                        Some(
                            Matcher::new(kind, &name, &value)
                                .map_err(|e| self.error_at(sel_at, e.to_string()))?,
                        )
                    } else {
                        None
                    };
                    sels.push(LabelSel { name, matcher });
                    if !self.eat(",") {
                        break;
                    }
                }
                return Ok(if keep {
                    Stage::Keep(sels)
                } else {
                    Stage::Drop(sels)
                });
            }
        }
        if self.eat_word("unwrap") {
            for (word, kind) in [
                ("duration_seconds", UnwrapKind::Duration),
                ("duration", UnwrapKind::Duration),
                ("bytes", UnwrapKind::Bytes),
            ] {
                let save = self.pos;
                if self.eat_word(word) {
                    if self.eat("(") {
                        let label = self.ident()?;
                        self.expect(")")?;
                        return Ok(Stage::Unwrap { label, kind });
                    }
                    // A label of that name.
                    self.pos = save;
                }
            }
            let label = self.ident()?;
            return Ok(Stage::Unwrap {
                label,
                kind: UnwrapKind::Number,
            });
        }
        if self.eat_word("line_format") {
            let t_at = self.pos;
            let text = self.string()?;
            let t = Template::parse(&text)
                .map_err(|e| self.error_at(t_at, format!("invalid line_format template: {e}")))?;
            return Ok(Stage::LineFormat(t));
        }
        if self.eat_word("label_format") {
            let mut items = Vec::new();
            loop {
                let name = self.ident()?;
                self.expect("=")?;
                self.skip_space();
                let value_at = self.pos;
                let value = if self.rest().starts_with(['"', '`']) {
                    let text = self.string()?;
                    LabelFormatValue::Template(Template::parse(&text).map_err(|e| {
                        self.error_at(value_at, format!("invalid label_format template: {e}"))
                    })?)
                } else {
                    LabelFormatValue::Rename(self.ident()?)
                };
                items.push((name, value));
                if !self.eat(",") {
                    break;
                }
            }
            return Ok(Stage::LabelFormat(items));
        }
        for word in ["distinct"] {
            if self.peek_word(word) {
                return Err(self.error_at(at, format!("| {word} is not supported yet")));
            }
        }
        if self.next_is_ident() || self.rest().starts_with('(') {
            return Ok(Stage::Label(self.label_or()?));
        }
        Err(self.error(format!(
            "expected a parser, a label filter or a line filter after |, found {}",
            self.describe_next()
        )))
    }

    fn next_is_ident(&mut self) -> bool {
        self.skip_space();
        self.rest()
            .starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
    }

    /// `=`, `!=`, `=~` or `!~` (not `==`).
    fn match_op(&mut self) -> Option<MatchKind> {
        if self.eat("=~") {
            Some(MatchKind::Regex)
        } else if self.eat("!~") {
            Some(MatchKind::NotRegex)
        } else if self.eat("!=") {
            Some(MatchKind::NotEqual)
        } else if self.rest().starts_with("==") {
            None
        } else if self.eat("=") {
            Some(MatchKind::Equal)
        } else {
            None
        }
    }

    fn label_or(&mut self) -> Result<LabelPredicate, ParseError> {
        let mut left = self.label_and()?;
        while self.eat_word("or") {
            let right = self.label_and()?;
            left = LabelPredicate::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_and(&mut self) -> Result<LabelPredicate, ParseError> {
        let mut left = self.label_primary()?;
        while self.eat_word("and") || self.eat(",") {
            let right = self.label_primary()?;
            left = LabelPredicate::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_primary(&mut self) -> Result<LabelPredicate, ParseError> {
        if self.eat("(") {
            let inner = self.label_or()?;
            self.expect(")")?;
            return Ok(inner);
        }
        let at = self.pos;
        let name = self.ident()?;
        self.skip_space();
        let op_at = self.pos;
        let op = ["==", "!=", "=~", "!~", ">=", "<=", ">", "<", "="]
            .into_iter()
            .find(|op| self.rest().starts_with(op))
            .ok_or_else(|| {
                self.error(format!(
                    "expected a comparison after label {name:?}, found {}",
                    self.describe_next()
                ))
            })?;
        self.pos += op.len();
        self.skip_space();
        if self.rest().starts_with(['"', '`']) {
            let value = self.string()?;
            let kind = match op {
                "=" | "==" => MatchKind::Equal,
                "!=" => MatchKind::NotEqual,
                "=~" => MatchKind::Regex,
                "!~" => MatchKind::NotRegex,
                _ => {
                    return Err(self.error_at(
                        op_at,
                        format!("{op} compares numbers, durations or byte sizes, not strings"),
                    ));
                }
            };
            let m =
                Matcher::new(kind, &name, &value).map_err(|e| self.error_at(at, e.to_string()))?;
            return Ok(LabelPredicate::Matcher(m));
        }
        let cmp = match op {
            "=" | "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            _ => {
                return Err(self.error_at(op_at, format!("{op} needs a string to match")));
            }
        };
        let value_at = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '-' | '+' | 'µ')))
            .unwrap_or(self.rest().len());
        let token = &self.rest()[..len];
        let (kind, value) = if let Ok(n) = token.parse::<f64>() {
            (ValueKind::Number, n)
        } else if let Some(d) = parse_duration_secs(token) {
            (ValueKind::Duration, d)
        } else if let Some(b) = parse_bytes(token) {
            (ValueKind::Bytes, b)
        } else {
            return Err(self.error_at(
                value_at,
                format!("expected a number, a duration or a byte size, found {token:?}"),
            ));
        };
        self.pos += len;
        Ok(LabelPredicate::Compare {
            name,
            op: cmp,
            kind,
            value,
        })
    }

    /// A metric query: operands joined by binary operators, by precedence (`^` binds to the
    /// right, the others to the left).
    fn metric_expr(&mut self) -> Result<MetricExpr, ParseError> {
        self.binary(1)
    }

    fn binary(&mut self, min_precedence: u8) -> Result<MetricExpr, ParseError> {
        let mut lhs = self.metric_primary()?;
        loop {
            self.skip_space();
            let symbol = BinOp::ALL
                .iter()
                .find(|(t, _)| self.rest().starts_with(t))
                .copied();
            let found = match symbol {
                Some(s) => Some(s),
                None => BinOp::WORDS.into_iter().find(|(w, _)| self.peek_word(w)),
            };
            let Some((text, op)) = found else {
                break;
            };
            if op.precedence() < min_precedence {
                break;
            }
            let op_at = self.pos;
            self.pos += text.len();
            let return_bool = self.eat_word("bool");
            if return_bool && !op.is_comparison() {
                return Err(self.error("bool is only for comparisons"));
            }
            let matching = self.matching()?;
            if matching.is_some() && op.is_set() {
                return Err(self.error_at(
                    op_at,
                    "on, ignoring and groups with and, or, unless are not supported yet",
                ));
            }
            let next = if op == BinOp::Pow {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let rhs = self.binary(next)?;
            if op.is_set() && (is_scalar(&lhs) || is_scalar(&rhs)) {
                return Err(self.error_at(
                    op_at,
                    format!("set operator {text:?} not allowed in binary scalar expression"),
                ));
            }
            lhs = MetricExpr::Binary {
                op,
                return_bool,
                matching,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    /// A range aggregation, a vector aggregation, a number, `vector(n)`, or a query in
    /// parentheses.
    fn metric_primary(&mut self) -> Result<MetricExpr, ParseError> {
        self.skip_space();
        if self
            .rest()
            .starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
        {
            return Ok(MetricExpr::Number(self.number()?));
        }
        if self.eat_word("vector") {
            self.expect("(")?;
            let n = self.number()?;
            self.expect(")")?;
            return Ok(MetricExpr::Vector(n));
        }
        if self.eat("(") {
            let inner = self.metric_expr()?;
            self.expect(")")?;
            return Ok(inner);
        }
        let at = self.pos;
        let word = self.ident()?;
        if let Some(&(_, mut op)) = RangeOp::ALL.iter().find(|(n, _)| *n == word) {
            self.expect("(")?;
            if let RangeOp::QuantileOverTime(_) = op {
                let phi = self.number()?;
                self.expect(",")?;
                op = RangeOp::QuantileOverTime(phi);
            }
            // `approx_count_distinct_over_time(name, …)`: the label whose values are counted.
            let distinct = if op == RangeOp::ApproxCountDistinct {
                self.skip_space();
                let name = self.ident().map_err(|_| {
                    self.error(format!(
                        "{word} needs the name of the label to count first, found {}",
                        self.describe_next()
                    ))
                })?;
                self.expect(",")?;
                Some(name)
            } else {
                None
            };
            self.skip_space();
            if !self.rest().starts_with('{') {
                return self.subquery(op, &word, at);
            }
            let selector = self.selector()?;
            let mut range = self.range()?;
            let stages = self.pipeline()?;
            if range.is_none() {
                range = self.range()?;
            }
            let range_ns = range.ok_or_else(|| {
                self.error(format!(
                    "expected a range such as [5m] in {word}, found {}",
                    self.describe_next()
                ))
            })?;
            let offset_ns = if self.eat_word("offset") {
                self.duration_ns()?
            } else {
                0
            };
            self.expect(")")?;
            let mut log = LogExpr { selector, stages };
            if let Some(label) = distinct {
                if log.unwraps() {
                    return Err(self.error_at(at, format!("{word} does not take | unwrap")));
                }
                log.stages.push(Stage::Unwrap {
                    label,
                    kind: UnwrapKind::Distinct,
                });
            }
            match op.needs_unwrap() {
                Some(true) if !log.unwraps() => {
                    return Err(self.error_at(at, format!("{word} needs | unwrap <label>")));
                }
                Some(false) if log.unwraps() => {
                    return Err(self.error_at(at, format!("{word} does not take | unwrap")));
                }
                _ => {}
            }
            let grouping = self.grouping()?;
            if grouping.is_some() && !log.unwraps() {
                return Err(self.error_at(
                    at,
                    format!("{word} takes by or without only over unwrapped samples"),
                ));
            }
            return Ok(MetricExpr::Range {
                op,
                log,
                range_ns,
                offset_ns,
                grouping,
            });
        }
        if let Some(&(_, op)) = AggOp::ALL.iter().find(|(n, _)| *n == word) {
            let mut grouping = self.grouping()?;
            self.expect("(")?;
            let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
                self.skip_space();
                let k_at = self.pos;
                let len = self
                    .rest()
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(self.rest().len());
                let k: usize = self.rest()[..len].parse().map_err(|_| {
                    self.error_at(k_at, format!("{word} needs a whole number first"))
                })?;
                self.pos += len;
                self.expect(",")?;
                Some(k)
            } else {
                None
            };
            let inner = self.metric_expr()?;
            self.expect(")")?;
            if let Some(after) = self.grouping()? {
                if grouping.is_some() {
                    return Err(
                        self.error("a grouping may come before or after the operand, not both")
                    );
                }
                grouping = Some(after);
            }
            return Ok(MetricExpr::Aggregate {
                op,
                param,
                grouping: grouping.unwrap_or_default(),
                inner: Box::new(inner),
            });
        }
        Err(self.error_at(at, format!("unknown function or aggregation {word:?}")))
    }

    /// A float literal, optionally signed.
    fn number(&mut self) -> Result<f64, ParseError> {
        self.skip_space();
        let at = self.pos;
        let mut len = 0;
        for (i, c) in self.rest().char_indices() {
            let sign_ok = i == 0 || self.rest()[..i].ends_with(['e', 'E']);
            if c.is_ascii_digit()
                || c == '.'
                || c == 'e'
                || c == 'E'
                || ((c == '-' || c == '+') && sign_ok)
            {
                len = i + c.len_utf8();
            } else {
                break;
            }
        }
        let text = &self.rest()[..len];
        let n: f64 = text.parse().map_err(|_| {
            self.error_at(
                at,
                format!("expected a number, found {}", self.describe_next()),
            )
        })?;
        self.pos += len;
        Ok(n)
    }

    /// `[5m]`, when it comes next.
    fn range(&mut self) -> Result<Option<i64>, ParseError> {
        if !self.eat("[") {
            return Ok(None);
        }
        let ns = self.duration_ns()?;
        self.expect("]")?;
        if ns <= 0 {
            return Err(self.error("a range must be longer than 0"));
        }
        Ok(Some(ns))
    }

    /// A Prometheus duration: `5m`, `1h30m`, `500ms`, `2d`, `1w`, `1y`.
    fn duration_ns(&mut self) -> Result<i64, ParseError> {
        self.skip_space();
        let at = self.pos;
        let len = self
            .rest()
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(self.rest().len());
        let text = &self.rest()[..len];
        let ns = prom_duration_ns(text)
            .ok_or_else(|| self.error_at(at, format!("invalid duration {text:?}")))?;
        self.pos += len;
        Ok(ns)
    }

    /// The rest of `op(<metric query>[range:step] [offset d])`, after `op(`.
    fn subquery(&mut self, op: RangeOp, word: &str, at: usize) -> Result<MetricExpr, ParseError> {
        if matches!(
            op,
            RangeOp::BytesOverTime | RangeOp::BytesRate | RangeOp::AbsentOverTime
        ) {
            return Err(self.error_at(at, format!("{word} takes a log query, not a metric query")));
        }
        let inner = self.metric_expr()?;
        self.expect("[")?;
        let range_ns = self.duration_ns()?;
        self.expect(":")?;
        let step_ns = self.duration_ns()?;
        self.expect("]")?;
        if range_ns <= 0 || step_ns <= 0 {
            return Err(self.error_at(at, "a subquery's range and step must be longer than 0"));
        }
        let offset_ns = if self.eat_word("offset") {
            self.duration_ns()?
        } else {
            0
        };
        self.expect(")")?;
        Ok(MetricExpr::Subquery {
            op,
            inner: Box::new(inner),
            range_ns,
            step_ns,
            offset_ns,
        })
    }

    /// `on (…)` or `ignoring (…)`, then optionally `group_left (…)` or `group_right (…)`.
    fn matching(&mut self) -> Result<Option<Matching>, ParseError> {
        let on = if self.eat_word("on") {
            true
        } else if self.eat_word("ignoring") {
            false
        } else {
            return Ok(None);
        };
        let labels = self.label_list()?;
        let group = if self.eat_word("group_left") {
            Some(true)
        } else if self.eat_word("group_right") {
            Some(false)
        } else {
            None
        };
        let group = match group {
            None => None,
            Some(left) => {
                self.skip_space();
                let include = if self.rest().starts_with('(') {
                    self.label_list()?
                } else {
                    Vec::new()
                };
                Some(MatchGroup { left, include })
            }
        };
        Ok(Some(Matching { on, labels, group }))
    }

    /// `(a, b)`.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect("(")?;
        let mut labels = Vec::new();
        while !self.eat(")") {
            labels.push(self.ident()?);
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        Ok(labels)
    }

    /// `by (a, b)` or `without (a)`, when it comes next.
    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = if self.eat_word("by") {
            false
        } else if self.eat_word("without") {
            true
        } else {
            return Ok(None);
        };
        let labels = self.label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.skip_space();
        let open = self.pos;
        self.expect("{")?;
        let mut matchers = Vec::new();
        loop {
            if self.eat("}") {
                break;
            }
            self.skip_space();
            let at = self.pos;
            let name = self.ident()?;
            self.skip_space();
            let kind = self.match_op().ok_or_else(|| {
                self.error(format!(
                    "expected a matcher (=, !=, =~, !~) after {name:?}, found {}",
                    self.describe_next()
                ))
            })?;
            let value = self.string()?;
            let m =
                Matcher::new(kind, &name, &value).map_err(|e| self.error_at(at, e.to_string()))?;
            matchers.push(m);
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        if !matchers
            .iter()
            .any(|m| !m.kind().is_negative() && !m.matches_empty())
        {
            return Err(self.error_at(
                open,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(matchers)
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        self.skip_space();
        let bytes = self.rest().as_bytes();
        let len = bytes
            .iter()
            .enumerate()
            .take_while(|&(i, &b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            })
            .count();
        if len == 0 {
            return Err(self.error(format!(
                "expected a label name, found {}",
                self.describe_next()
            )));
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Ok(name)
    }

    /// A string: `"…"` with Go's escapes, or `` `…` `` taken as it is.
    fn string(&mut self) -> Result<String, ParseError> {
        self.skip_space();
        let start = self.pos;
        let mut chars = self.rest().char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('"' | '`'))) => q,
            _ => {
                return Err(
                    self.error(format!("expected a string, found {}", self.describe_next()))
                );
            }
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos = start + i + 1;
                    return Ok(out);
                }
                '\\' if quote == '"' => {
                    let Some((j, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '\\' | '"' | '\'' => out.push(e),
                        'x' | 'u' | 'U' => {
                            let digits = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = (0..digits)
                                .filter_map(|_| chars.next())
                                .map(|(_, h)| h)
                                .collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == digits)
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    self.error_at(start + j, format!("invalid escape \\{e}{hex}"))
                                })?;
                            out.push(c);
                        }
                        other => {
                            return Err(self.error_at(
                                start + j,
                                format!("unknown escape sequence \\{other}"),
                            ));
                        }
                    }
                }
                '\n' if quote == '"' => break,
                c => out.push(c),
            }
        }
        Err(self.error_at(start, "unterminated string"))
    }
}

/// Whether `e` is a scalar: a number, or numbers combined.
fn is_scalar(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::Number(_) => true,
        MetricExpr::Binary { lhs, rhs, .. } => is_scalar(lhs) && is_scalar(rhs),
        _ => false,
    }
}

/// A JSON path as `| json name="path"` writes it: `a.b`, `a[0]`, `a["b c"]`, `["a"].b`.
fn json_path(text: &str) -> Option<JsonPath> {
    let mut steps = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                steps.push(JsonStep::Key(q.to_owned()));
            } else {
                steps.push(JsonStep::Index(inner.parse().ok()?));
            }
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(JsonStep::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// A Prometheus duration in nanoseconds: units y, w, d, h, m, s, ms, in that order.
pub fn prom_duration_ns(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000_000_000),
        ("w", 7 * 86_400_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("ms", 1_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
    ];
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let &(unit, scale) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))?;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(scale)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(q: &str) -> LogExpr {
        match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
            Expr::Log(l) => l,
            Expr::Metric(m) => panic!("{q}: a metric query: {m:?}"),
        }
    }

    #[test]
    fn selectors_and_line_filters_parse_in_their_forms() {
        let l = log(r#"{app="api", level!="debug",env=~"prod|stage", pod!~`canary-.*`}"#);
        let kinds: Vec<(String, MatchKind, String)> = l
            .selector
            .iter()
            .map(|m| (m.name().to_string(), m.kind(), m.value().to_string()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("app".into(), MatchKind::Equal, "api".into()),
                ("level".into(), MatchKind::NotEqual, "debug".into()),
                ("env".into(), MatchKind::Regex, "prod|stage".into()),
                ("pod".into(), MatchKind::NotRegex, "canary-.*".into()),
            ]
        );
        let l = log("{app=\"api\"} |= \"timeout\" != `health` |~ \"(?i)err\\\\d+\" !~ \"^DEBUG\"");
        let ops: Vec<(FilterOp, &str)> = l
            .line_filters()
            .map(|f| (f.op, f.pattern.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                (FilterOp::Contains, "timeout"),
                (FilterOp::NotContains, "health"),
                (FilterOp::Matches, "(?i)err\\d+"),
                (FilterOp::NotMatches, "^DEBUG"),
            ]
        );
        assert_eq!(
            log(r#"{a="\"q\" \u00e9 \x41\t"}"#).selector[0].value(),
            "\"q\" é A\t"
        );
        assert_eq!(log("{ a = \"b\" , }").selector.len(), 1, "a trailing comma");
    }

    #[test]
    fn the_queries_grafana_sends_parse() {
        for q in [
            "vector(1)+vector(1)",
            r#"sum by (level, detected_level) (count_over_time({app="x"} | drop __error__[1m]))"#,
            r#"sum by (level) (count_over_time({app="x"} |= "err" | logfmt | __error__="" [5m]))"#,
            r#"quantile_over_time(0.99, {app="x"} | json | unwrap duration(latency) | __error__="" [5m]) by (route)"#,
            r#"topk(5, sum by (path) (rate({app="x"} | pattern "<_> <path> <_>" [1m])))"#,
        ] {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn mistakes_are_reported_at_their_line_and_column() {
        let err = |q: &str| parse(q).unwrap_err().to_string();
        assert_eq!(
            err(r#"{app="api"} |= timeout"#),
            "parse error at line 1, col 16: expected a string, found \"timeout\""
        );
        assert_eq!(
            err("{app=\"api\",\n level=\"x\" |= \"a\""),
            "parse error at line 2, col 12: expected \"}\", found \"|= \\\"a\\\"\""
        );
        assert!(err(r#"{app=~".*"}"#).contains("at least one regexp or equality matcher"));
        assert!(err(r#"{app!="x"}"#).contains("at least one regexp or equality matcher"));
        assert!(err("{}").contains("col 1: queries require"));
        let e = err(r#"{app="a"} |~ "(unclosed""#);
        assert!(e.contains("col 11: invalid regex"), "{e}");
        assert!(err(r#"{app="a"} |= "\q""#).contains("unknown escape sequence \\q"));
        assert!(err(r#"{app="a"} |= "open"#).contains("col 14: unterminated string"));
        assert!(err(r#"{app="a"} | line_format "{{ .x""#).contains("invalid line_format"));
        assert!(err(r#"{app="a"} | distinct x"#).contains("not supported yet"));
        assert!(err(r#"{app="a"} | status > "5""#).contains("not strings"));
        assert!(err(r#"{app="a"} | regexp "(a)""#).contains("named capture"));
        assert!(err(r#"rate({app="a"})"#).contains("expected a range"));
        assert!(err(r#"sum_over_time({app="a"}[1m])"#).contains("needs | unwrap"));
        assert!(err(r#"count_over_time({app="a"} | unwrap x [1m])"#).contains("does not take"));
        assert!(err(r#"{app="a"} | unwrap x"#).contains("for metric queries"));
        assert!(err(r#"count_over_time({app="a"}[1m]) by (x)"#).contains("only over unwrapped"));
        assert!(err(r#"frobnicate({app="a"}[1m])"#).contains("unknown function"));
        assert!(err(r#"{app="a"} x"#).contains("unexpected \"x\""));
        assert!(err(r#"{app="a"} | 5"#).contains("expected a parser"));
        assert!(err(r#"{9app="a"}"#).contains("expected a label name"));
        assert!(err(&"{a=\"b\"}".repeat(20_000)).contains("longer than the limit"));
    }
}
