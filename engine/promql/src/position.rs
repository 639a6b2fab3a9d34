//! Where each node of a parsed query starts in its text, for the `(line:column)` that
//! Prometheus appends to warnings and infos.
//!
//! The parser keeps no positions, so the query is tokenised again and walked together with
//! the tree it parsed into: each node kind consumes its tokens in a known order (a binary
//! expression its left side, the operator and its modifiers, then its right side), so the
//! token at hand when a node begins is where it starts. Positions are best effort: should the
//! walk lose step (a construct this walk does not know), the nodes after that point have none,
//! and their annotations go without a position.

use std::collections::HashMap;

use promql_parser::parser::{Expr, VectorSelector};

/// A token's kind, as much as the walk needs, and its byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Identifiers and keywords.
    Word,
    /// Numbers and durations.
    Number,
    String,
    /// One punctuation or operator token.
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    at: usize,
}

fn tokenize(q: &str) -> Vec<Token<'_>> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let word_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
        let kind = if word_start(c) || (c == b':' && b.get(i + 1).is_some_and(|&n| word_start(n))) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            Kind::Word
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() {
                let d = b[i];
                let exponent_sign = (d == b'+' || d == b'-')
                    && matches!(b[i - 1], b'e' | b'E')
                    && !q[start..i].starts_with("0x");
                if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            Kind::Number
        } else if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            Kind::String
        } else {
            let two = q.get(i..i + 2).unwrap_or("");
            i += if matches!(two, "==" | "!=" | ">=" | "<=" | "=~" | "!~") {
                2
            } else {
                1
            };
            // A multi-byte character that is not part of a word: one token.
            while i < b.len() && !q.is_char_boundary(i) {
                i += 1;
            }
            Kind::Punct
        };
        out.push(Token {
            kind,
            text: &q[start..i],
            at: start,
        });
    }
    out
}

/// Start offsets of a query's nodes, by node address.
#[derive(Debug, Default)]
pub(super) struct Positions {
    starts: HashMap<usize, (usize, usize)>,
}

fn key(e: &Expr) -> usize {
    e as *const Expr as usize
}

impl Positions {
    /// The positions of `expr`'s nodes in `query` (the text it was parsed from).
    pub fn new(query: &str, expr: &Expr) -> Positions {
        let tokens = tokenize(query);
        let mut w = Walk {
            tokens: &tokens,
            next: 0,
            starts: HashMap::new(),
        };
        let _ = w.node(expr);
        let starts = w
            .starts
            .into_iter()
            .map(|(k, at)| (k, line_column(query, at)))
            .collect();
        Positions { starts }
    }

    /// ` (line:column)` of `e`, or nothing if unknown.
    pub fn suffix(&self, e: &Expr) -> String {
        match self.starts.get(&key(e)) {
            Some((line, col)) => format!(" ({line}:{col})"),
            None => String::new(),
        }
    }
}

/// Prometheus's line and column of a byte offset: both from 1, the column in bytes.
fn line_column(q: &str, at: usize) -> (usize, usize) {
    let before = &q[..at.min(q.len())];
    let line = before.matches('\n').count() + 1;
    let col = match before.rfind('\n') {
        Some(nl) => at - nl,
        None => at + 1,
    };
    (line, col)
}

struct Walk<'t, 'q> {
    tokens: &'t [Token<'q>],
    next: usize,
    starts: HashMap<usize, usize>,
}

/// The walk lost step with the tokens.
struct Lost;

impl<'q> Walk<'_, 'q> {
    fn peek(&self) -> Option<Token<'q>> {
        self.tokens.get(self.next).copied()
    }

    fn peek_is(&self, text: &str) -> bool {
        self.peek()
            .is_some_and(|t| t.text.eq_ignore_ascii_case(text))
    }

    fn take(&mut self) -> Result<(), Lost> {
        if self.next < self.tokens.len() {
            self.next += 1;
            Ok(())
        } else {
            Err(Lost)
        }
    }

    fn expect(&mut self, text: &str) -> Result<(), Lost> {
        if self.peek_is(text) {
            self.next += 1;
            Ok(())
        } else {
            Err(Lost)
        }
    }

    /// Skips a bracketed group starting at the current token (`(…)`, `{…}`, `[…]`).
    fn skip_group(&mut self) -> Result<(), Lost> {
        let open = self.peek().ok_or(Lost)?.text;
        let close = match open {
            "(" => ")",
            "{" => "}",
            "[" => "]",
            _ => return Err(Lost),
        };
        let mut depth = 0;
        while let Some(t) = self.peek() {
            self.next += 1;
            if t.kind == Kind::Punct {
                if t.text == open {
                    depth += 1;
                } else if t.text == close {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
            }
        }
        Err(Lost)
    }

    /// `offset d` and `@ t` after a selector or subquery, in either order.
    fn modifiers(&mut self) -> Result<(), Lost> {
        loop {
            if self.peek_is("offset") {
                self.take()?;
                if self.peek_is("-") || self.peek_is("+") {
                    self.take()?;
                }
                self.take()?;
            } else if self.peek_is("@") {
                self.take()?;
                if self.peek_is("start") || self.peek_is("end") {
                    self.take()?;
                    self.expect("(")?;
                    self.expect(")")?;
                } else {
                    if self.peek_is("-") || self.peek_is("+") {
                        self.take()?;
                    }
                    self.take()?;
                }
            } else {
                return Ok(());
            }
        }
    }

    fn selector(&mut self, vs: &VectorSelector) -> Result<(), Lost> {
        if vs.name.is_some() && !self.peek_is("{") {
            self.take()?;
        }
        if self.peek_is("{") {
            self.skip_group()?;
        }
        Ok(())
    }

    fn node(&mut self, e: &Expr) -> Result<(), Lost> {
        // The parser drops a unary `+`.
        while self.peek_is("+") && !matches!(e, Expr::NumberLiteral(_)) {
            self.take()?;
        }
        let at = self.peek().ok_or(Lost)?.at;
        self.starts.insert(key(e), at);
        match e {
            Expr::NumberLiteral(_) => {
                // A negative number is one literal.
                if self.peek_is("-") || self.peek_is("+") {
                    self.take()?;
                }
                self.take()
            }
            Expr::StringLiteral(_) => self.take(),
            Expr::Paren(p) => {
                self.expect("(")?;
                self.node(&p.expr)?;
                self.expect(")")
            }
            Expr::Unary(u) => {
                self.expect("-")?;
                self.node(&u.expr)
            }
            Expr::VectorSelector(vs) => {
                self.selector(vs)?;
                self.modifiers()
            }
            Expr::MatrixSelector(ms) => {
                self.selector(&ms.vs)?;
                self.modifiers()?;
                self.skip_group()?;
                self.modifiers()
            }
            Expr::Subquery(sq) => {
                self.node(&sq.expr)?;
                self.skip_group()?;
                self.modifiers()
            }
            Expr::Call(c) => {
                self.take()?;
                self.expect("(")?;
                for (i, a) in c.args.args.iter().enumerate() {
                    if i > 0 {
                        self.expect(",")?;
                    }
                    self.node(a)?;
                }
                self.expect(")")
            }
            Expr::Aggregate(a) => {
                self.take()?;
                if self.peek_is("by") || self.peek_is("without") {
                    self.take()?;
                    self.skip_group()?;
                }
                self.expect("(")?;
                if let Some(p) = &a.param {
                    self.node(p)?;
                    self.expect(",")?;
                }
                self.node(&a.expr)?;
                self.expect(")")?;
                if self.peek_is("by") || self.peek_is("without") {
                    self.take()?;
                    self.skip_group()?;
                }
                Ok(())
            }
            Expr::Binary(b) => {
                self.node(&b.lhs)?;
                self.take()?; // the operator
                if self.peek_is("bool") {
                    self.take()?;
                }
                if self.peek_is("on") || self.peek_is("ignoring") {
                    self.take()?;
                    self.skip_group()?;
                }
                if self.peek_is("group_left") || self.peek_is("group_right") {
                    self.take()?;
                    if self.peek_is("(") {
                        self.skip_group()?;
                    }
                }
                while self.peek_is("fill")
                    || self.peek_is("fill_left")
                    || self.peek_is("fill_right")
                {
                    self.take()?;
                    self.skip_group()?;
                }
                self.node(&b.rhs)
            }
            Expr::Extension(_) => Err(Lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position_of(query: &str, find: fn(&Expr) -> Option<&Expr>) -> String {
        let expr = promql_parser::parser::parse(query).unwrap();
        let p = Positions::new(query, &expr);
        let mut found = String::new();
        crate::syntax::walk(&expr, &mut |e| {
            if let Some(n) = find(e) {
                found = p.suffix(n);
            }
        });
        found
    }

    fn first_arg(e: &Expr) -> Option<&Expr> {
        match e {
            Expr::Call(c) => Some(&*c.args.args[0]),
            _ => None,
        }
    }

    fn call(e: &Expr) -> Option<&Expr> {
        matches!(e, Expr::Call(_)).then_some(e)
    }

    fn param(e: &Expr) -> Option<&Expr> {
        match e {
            Expr::Aggregate(a) => a.param.as_deref(),
            _ => None,
        }
    }

    fn selector_rhs(e: &Expr) -> Option<&Expr> {
        match e {
            Expr::Binary(b) if matches!(&*b.rhs, Expr::VectorSelector(_)) => Some(&*b.rhs),
            _ => None,
        }
    }

    #[test]
    fn nodes_start_where_prometheus_says() {
        assert_eq!(position_of("rate(foo[5m])", first_arg), " (1:6)");
        assert_eq!(position_of("sum(sort(series))", call), " (1:5)");
        // An aggregation's parameter, after a `without` clause, and on a second line.
        assert_eq!(
            position_of("quantile without(point)(NaN, data)", param),
            " (1:25)"
        );
        assert_eq!(
            position_of("count(\n  limit_ratio(1.1, x) and x)", param),
            " (2:15)"
        );
        // The right side of a binary operator with every modifier.
        assert_eq!(
            position_of(
                "a{x=\"(\"} > bool on(x) group_left(y) b offset -5m",
                selector_rhs
            ),
            " (1:37)"
        );
    }
}
