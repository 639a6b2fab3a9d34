//! The template language's text into a tree: the lexer (text, and the tokens inside `{{ }}`)
//! and a recursive-descent parser. Variables are resolved here, as Go's parser does, so
//! `{{ $label.x }}` is refused when the file is checked, not when an alert fires.

use std::fmt;

use crate::Functions;

/// A template's tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: its value is printed (unless it declares variables).
    Action(Pipe),
    /// `{{ if }}` / `{{ else if }}` branches, then the `{{ else }}` part.
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    /// `{{ range }}` over a list or a map; `otherwise` runs when it is empty.
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// `{{ with }}`: the body with dot set to the value, when it is true.
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    /// `{{ break }}` in a range.
    Break,
    /// `{{ continue }}` in a range.
    Continue,
}

/// A pipeline: commands joined by `|`, each one's value passed as the last argument of the
/// next; optionally declaring (`:=`) or assigning (`=`) variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub line: usize,
    pub vars: Vec<String>,
    pub declare: bool,
    pub commands: Vec<Command>,
}

/// A command: a function and its arguments, or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Arg>,
    /// Where it starts: line (1-based) and byte column (0-based), as Go reports them.
    pub line: usize,
    pub col: usize,
    /// The command as Go prints it in messages (`gt $value 1`).
    pub shown: String,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.`, `.Field.key`: fields of dot.
    Field(Vec<String>),
    /// `$x`, `$x.key`.
    Var(String, Vec<String>),
    /// A function's name.
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `( pipeline )`, then fields of its value.
    Group(Box<Pipe>, Vec<String>),
}

/// A parse failure, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    /// `{{` (the line where it starts).
    Open,
    Close,
    Ident(String),
    Field(String),
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// Go's built-in functions, there whatever the template's user adds.
const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery",
];

/// Whether `name` is one of Go's built-in functions.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Splits text into tokens, each with its line.
fn lex(text: &str) -> Result<Vec<(Tok, usize, usize)>, ParseError> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let err = |line, message: String| ParseError { line, message };
    while i < b.len() {
        // Text up to the next action.
        let start = i;
        let open = text[i..].find("{{").map_or(b.len(), |k| i + k);
        let mut chunk = &text[start..open];
        let trim_left = open + 2 < b.len()
            && b[open + 2] == b'-'
            && b.get(open + 3).is_some_and(|c| c.is_ascii_whitespace());
        if trim_left {
            chunk = chunk.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !chunk.is_empty() {
            out.push((Tok::Text(chunk.to_owned()), line, i));
        }
        line += text[start..open].matches('\n').count();
        if open >= b.len() {
            break;
        }
        i = open + 2;
        if trim_left {
            i += 1;
        }
        // A comment is a whole action.
        let rest = text[i..].trim_start_matches([' ', '\t', '\r', '\n']);
        if rest.starts_with("/*") {
            let skipped = text[i..].len() - rest.len();
            let Some(end) = rest.find("*/") else {
                return Err(err(line, "unclosed comment".into()));
            };
            line += text[i..i + skipped + end].matches('\n').count();
            i += skipped + end + 2;
            let after = &text[i..];
            let trimmed = after.trim_start_matches([' ', '\t', '\r', '\n']);
            let (trim_right, close_at) = if let Some(r) = trimmed.strip_prefix("-}}") {
                (true, after.len() - r.len())
            } else if let Some(r) = after.strip_prefix("}}") {
                (false, after.len() - r.len())
            } else {
                return Err(err(line, "comment ends before closing delimiter".into()));
            };
            line += after[..close_at].matches('\n').count();
            i += close_at;
            if trim_right {
                let next = &text[i..];
                let kept = next.trim_start_matches([' ', '\t', '\r', '\n']);
                line += next[..next.len() - kept.len()].matches('\n').count();
                i += next.len() - kept.len();
            }
            continue;
        }
        out.push((Tok::Open, line, i));
        loop {
            // Inside an action.
            while i < b.len() && b[i].is_ascii_whitespace() {
                if b[i] == b'\n' {
                    line += 1;
                }
                i += 1;
            }
            if i >= b.len() {
                return Err(err(line, "unclosed action".into()));
            }
            let c = b[i];
            if c == b'-' && text[i..].starts_with("-}}") && i > 0 && b[i - 1].is_ascii_whitespace()
            {
                out.push((Tok::Close, line, i));
                i += 3;
                let next = &text[i..];
                let kept = next.trim_start_matches([' ', '\t', '\r', '\n']);
                line += next[..next.len() - kept.len()].matches('\n').count();
                i += next.len() - kept.len();
                break;
            }
            if text[i..].starts_with("}}") {
                out.push((Tok::Close, line, i));
                i += 2;
                break;
            }
            match c {
                b'(' => {
                    out.push((Tok::LParen, line, i));
                    i += 1;
                }
                b')' => {
                    out.push((Tok::RParen, line, i));
                    i += 1;
                }
                b'|' => {
                    out.push((Tok::Pipe, line, i));
                    i += 1;
                }
                b',' => {
                    out.push((Tok::Comma, line, i));
                    i += 1;
                }
                b'=' => {
                    out.push((Tok::Assign, line, i));
                    i += 1;
                }
                b':' if b.get(i + 1) == Some(&b'=') => {
                    out.push((Tok::Declare, line, i));
                    i += 2;
                }
                b'"' => {
                    let (s, len) = quoted(&text[i..])
                        .ok_or_else(|| err(line, "unterminated quoted string".into()))?;
                    out.push((Tok::Str(s), line, i));
                    i += len;
                }
                b'`' => {
                    let end = text[i + 1..]
                        .find('`')
                        .ok_or_else(|| err(line, "unterminated raw quoted string".into()))?;
                    let s = &text[i + 1..i + 1 + end];
                    out.push((Tok::Str(s.to_owned()), line, i));
                    line += s.matches('\n').count();
                    i += end + 2;
                }
                b'$' => {
                    let len = 1 + ident_len(&b[i + 1..]);
                    out.push((Tok::Var(text[i..i + len].to_owned()), line, i));
                    i += len;
                    push_fields(text, b, &mut i, &mut out, line);
                }
                b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                    let len = ident_len(&b[i + 1..]);
                    out.push((Tok::Field(text[i + 1..i + 1 + len].to_owned()), line, i));
                    i += 1 + len;
                    push_fields(text, b, &mut i, &mut out, line);
                }
                b'0'..=b'9' | b'-' | b'+' | b'.' => {
                    let len = b[i..]
                        .iter()
                        .enumerate()
                        .take_while(|&(k, c)| {
                            c.is_ascii_alphanumeric()
                                || *c == b'.'
                                || *c == b'_'
                                || (k == 0 && (*c == b'-' || *c == b'+'))
                                || ((*c == b'-' || *c == b'+')
                                    && k > 0
                                    && matches!(b[i + k - 1], b'e' | b'E'))
                        })
                        .count();
                    let s = text[i..i + len].replace('_', "");
                    let tok = number(&s).ok_or_else(|| {
                        err(line, format!("bad number syntax: {:?}", &text[i..i + len]))
                    })?;
                    out.push((tok, line, i));
                    i += len;
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let len = ident_len(&b[i..]);
                    out.push((Tok::Ident(text[i..i + len].to_owned()), line, i));
                    i += len;
                    push_fields(text, b, &mut i, &mut out, line);
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or('?');
                    return Err(err(line, format!("unexpected {ch:?} in command")));
                }
            }
        }
    }
    Ok(out)
}

/// Field accesses right after an operand (`$x.a.b`, `(…).a`).
fn push_fields(
    text: &str,
    b: &[u8],
    i: &mut usize,
    out: &mut Vec<(Tok, usize, usize)>,
    line: usize,
) {
    while *i < b.len() && b[*i] == b'.' {
        let len = ident_len(&b[*i + 1..]);
        if len == 0 {
            break;
        }
        out.push((Tok::Field(text[*i + 1..*i + 1 + len].to_owned()), line, *i));
        *i += 1 + len;
    }
}

fn ident_len(b: &[u8]) -> usize {
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

fn number(s: &str) -> Option<Tok> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Some(Tok::Int(if neg { -n } else { n }));
    }
    let f: f64 = digits.parse().ok().filter(|f: &f64| f.is_finite())?;
    Some(Tok::Float(if neg { -f } else { f }))
}

/// A Go interpreted string literal at the start of `s`: its value and its length in bytes.
fn quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Some((out, k + 1)),
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Parses `text`; `vars` are the variables defined before it (Prometheus defines `$labels`,
/// `$value`, `$externalLabels` and `$externalURL`).
pub fn parse(
    text: &str,
    vars: &[&str],
    functions: &dyn Functions,
) -> Result<Vec<Node>, ParseError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        functions,
        text: text.to_owned(),
        tokens,
        pos: 0,
        scopes: vec![
            vars.iter()
                .map(|v| (*v).to_owned())
                .chain(["$".to_owned()])
                .collect(),
        ],
        in_range: 0,
    };
    let (nodes, end) = p.list()?;
    match end {
        End::Eof => Ok(nodes),
        End::Else(line, _) => Err(ParseError {
            line,
            message: "unexpected {{else}}".into(),
        }),
        End::Closed(line) => Err(ParseError {
            line,
            message: "unexpected {{end}}".into(),
        }),
    }
}

struct Parser<'f> {
    functions: &'f dyn Functions,
    text: String,
    tokens: Vec<(Tok, usize, usize)>,
    pos: usize,
    scopes: Vec<Vec<String>>,
    in_range: usize,
}

/// How a list of nodes ended.
enum End {
    Eof,
    /// `{{else}}`, or `{{else if …}}` / `{{else with …}}` (the keyword).
    Else(usize, Option<String>),
    Closed(usize),
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _, _)| t)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .map_or(1, |(_, l, _)| *l)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).map(|(t, _, _)| t.clone());
        self.pos += 1;
        t
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.line(),
            message: message.into(),
        })
    }

    fn expect_close(&mut self, what: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(Tok::Close) => Ok(()),
            _ => {
                self.pos -= 1;
                self.fail(format!("unexpected {} in {what}", self.describe()))
            }
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "EOF".into(),
            Some(Tok::Close) => "\"}}\"".into(),
            Some(Tok::Ident(s)) | Some(Tok::Var(s)) => format!("<{s}>"),
            Some(Tok::Field(s)) => format!("<.{s}>"),
            Some(Tok::RParen) => "\")\"".into(),
            Some(t) => format!("{t:?}"),
        }
    }

    /// Nodes up to `{{end}}`, `{{else…}}` or the end of the text.
    fn list(&mut self) -> Result<(Vec<Node>, End), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let line = self.line();
            match self.next() {
                None => return Ok((nodes, End::Eof)),
                Some(Tok::Text(s)) => nodes.push(Node::Text(s)),
                Some(Tok::Open) => {
                    let keyword = match self.peek() {
                        Some(Tok::Ident(k)) => Some(k.clone()),
                        _ => None,
                    };
                    match keyword.as_deref() {
                        Some("end") => {
                            self.pos += 1;
                            self.expect_close("end")?;
                            return Ok((nodes, End::Closed(line)));
                        }
                        Some("else") => {
                            self.pos += 1;
                            if let Some(Tok::Ident(k)) = self.peek()
                                && (k == "if" || k == "with")
                            {
                                let k = k.clone();
                                self.pos += 1;
                                return Ok((nodes, End::Else(line, Some(k))));
                            }
                            self.expect_close("else")?;
                            return Ok((nodes, End::Else(line, None)));
                        }
                        Some("if") => {
                            self.pos += 1;
                            nodes.push(self.branches("if")?);
                        }
                        Some("with") => {
                            self.pos += 1;
                            nodes.push(self.branches("with")?);
                        }
                        Some("range") => {
                            self.pos += 1;
                            nodes.push(self.range()?);
                        }
                        Some("break") | Some("continue") => {
                            let k = keyword.unwrap_or_default();
                            self.pos += 1;
                            if self.in_range == 0 {
                                return self.fail(format!("{{{{{k}}}}} outside {{{{range}}}}"));
                            }
                            self.expect_close(&k)?;
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Some(k @ ("define" | "template" | "block")) => {
                            return self
                                .fail(format!("{{{{{k}}}}} is not supported in rule templates"));
                        }
                        _ => {
                            let pipe = self.pipeline("command", true)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                Some(_) => return self.fail("unexpected token"),
            }
        }
    }

    /// `if` or `with`: the first condition is read; `else if`/`else with` chains follow.
    fn branches(&mut self, keyword: &str) -> Result<Node, ParseError> {
        let mut branches = Vec::new();
        let otherwise;
        self.scopes.push(Vec::new());
        let mut pipe = self.pipeline(keyword, true)?;
        loop {
            let (body, end) = self.list()?;
            branches.push((pipe, body));
            match end {
                End::Eof => {
                    self.scopes.pop();
                    return self.fail("unexpected EOF");
                }
                End::Closed(_) => {
                    otherwise = Vec::new();
                    break;
                }
                End::Else(_, Some(k)) if k == keyword => {
                    pipe = self.pipeline(keyword, true)?;
                }
                End::Else(line, Some(k)) => {
                    return Err(ParseError {
                        line,
                        message: format!("unexpected {{{{else {k}}}}} in {keyword}"),
                    });
                }
                End::Else(..) => {
                    let (rest, end) = self.list()?;
                    if !matches!(end, End::Closed(_)) {
                        return self.fail(format!("expected end; found {}", self.describe()));
                    }
                    otherwise = rest;
                    break;
                }
            }
        }
        self.scopes.pop();
        Ok(if keyword == "if" {
            Node::If {
                branches,
                otherwise,
            }
        } else {
            // `with … else with …` is a chain of withs.
            let mut node_otherwise = otherwise;
            let mut iter = branches.into_iter().rev();
            let (pipe, body) = iter.next().expect("a with has a first branch");
            let mut node = Node::With {
                pipe,
                body,
                otherwise: node_otherwise,
            };
            for (pipe, body) in iter {
                node_otherwise = vec![node];
                node = Node::With {
                    pipe,
                    body,
                    otherwise: node_otherwise,
                };
            }
            node
        })
    }

    fn range(&mut self) -> Result<Node, ParseError> {
        self.scopes.push(Vec::new());
        let pipe = self.pipeline("range", true)?;
        if pipe.vars.len() > 2 {
            return self.fail("too many declarations in range");
        }
        self.in_range += 1;
        let (body, end) = self.list()?;
        self.in_range -= 1;
        let otherwise = match end {
            End::Closed(_) => Vec::new(),
            End::Else(_, None) => {
                let (rest, end) = self.list()?;
                if !matches!(end, End::Closed(_)) {
                    return self.fail("expected end");
                }
                rest
            }
            _ => return self.fail("unexpected EOF"),
        };
        self.scopes.pop();
        Ok(Node::Range {
            pipe,
            body,
            otherwise,
        })
    }

    fn known(&self, var: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|v| v == var))
    }

    /// A pipeline up to `}}` (or `)` when `top` is false).
    fn pipeline(&mut self, context: &str, top: bool) -> Result<Pipe, ParseError> {
        let line = self.line();
        let mut vars = Vec::new();
        let mut declare = false;
        // Declarations: `$x :=`, `$i, $e :=`, `$x =`.
        let save = self.pos;
        let mut names = Vec::new();
        while let Some(Tok::Var(v)) = self.peek() {
            names.push(v.clone());
            self.pos += 1;
            match self.peek() {
                Some(Tok::Comma) if context == "range" && names.len() < 2 => self.pos += 1,
                Some(Tok::Declare) => {
                    self.pos += 1;
                    declare = true;
                    vars = std::mem::take(&mut names);
                    break;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    vars = std::mem::take(&mut names);
                    break;
                }
                _ => break,
            }
        }
        if vars.is_empty() {
            self.pos = save;
        } else if !declare {
            for v in &vars {
                if !self.known(v) {
                    return self.fail(format!("undefined variable {v:?}"));
                }
            }
        }
        let mut commands = Vec::new();
        loop {
            let command = self.command()?;
            if command.args.is_empty() {
                return self.fail(format!("missing value for {context}"));
            }
            commands.push(command);
            match self.next() {
                Some(Tok::Pipe) => continue,
                Some(Tok::Close) if top => break,
                Some(Tok::RParen) if !top => break,
                _ => {
                    self.pos -= 1;
                    return self.fail(format!("unexpected {} in {context}", self.describe()));
                }
            }
        }
        if declare && let Some(scope) = self.scopes.last_mut() {
            scope.extend(vars.iter().cloned());
        }
        Ok(Pipe {
            line,
            vars,
            declare,
            commands,
        })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let first = self.pos;
        let (line, offset) = self
            .tokens
            .get(self.pos)
            .map_or((self.line(), 0), |(_, l, o)| (*l, *o));
        let col = offset - self.text[..offset].rfind('\n').map_or(0, |n| n + 1);
        let mut args = Vec::new();
        loop {
            let arg = match self.peek() {
                None | Some(Tok::Close) | Some(Tok::RParen) | Some(Tok::Pipe) => break,
                Some(_) => self.operand()?,
            };
            args.push(arg);
        }
        let shown = shown(&self.tokens[first..self.pos]);
        Ok(Command {
            args,
            line,
            col,
            shown,
        })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut fields = Vec::new();
        while let Some(Tok::Field(f)) = self.peek() {
            fields.push(f.clone());
            self.pos += 1;
        }
        fields
    }

    fn operand(&mut self) -> Result<Arg, ParseError> {
        let tok = self.next();
        Ok(match tok {
            Some(Tok::Field(f)) => {
                let mut chain = if f.is_empty() { Vec::new() } else { vec![f] };
                chain.extend(self.fields());
                Arg::Field(chain)
            }
            Some(Tok::Var(v)) => {
                if !self.known(&v) {
                    self.pos -= 1;
                    return self.fail(format!("undefined variable {v:?}"));
                }
                let fields = self.fields();
                Arg::Var(v, fields)
            }
            Some(Tok::Str(s)) => Arg::Str(s),
            Some(Tok::Int(n)) => Arg::Int(n),
            Some(Tok::Float(f)) => Arg::Float(f),
            Some(Tok::Ident(name)) => match name.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => {
                    if !is_builtin(&name) && !self.functions.has(&name) {
                        self.pos -= 1;
                        return self.fail(format!("function {name:?} not defined"));
                    }
                    Arg::Func(name)
                }
            },
            Some(Tok::LParen) => {
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                let fields = self.fields();
                Arg::Group(Box::new(pipe), fields)
            }
            _ => {
                self.pos -= 1;
                return self.fail(format!("unexpected {} in operand", self.describe()));
            }
        })
    }
}

/// Tokens as Go prints a command: spaces between operands, none inside parentheses' edges.
fn shown(tokens: &[(Tok, usize, usize)]) -> String {
    let mut out = String::new();
    let mut previous: Option<&Tok> = None;
    for (t, _, _) in tokens {
        let text = match t {
            Tok::Ident(s) | Tok::Var(s) => s.clone(),
            Tok::Field(f) => format!(".{f}"),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Int(n) => n.to_string(),
            Tok::Float(f) => super::format::float(*f),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Pipe => "|".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Comma => ",".into(),
            Tok::Text(_) | Tok::Open | Tok::Close => continue,
        };
        let glued = matches!(t, Tok::RParen | Tok::Field(_))
            && previous.is_some_and(|p| !matches!(p, Tok::LParen | Tok::Pipe))
            || previous.is_some_and(|p| matches!(p, Tok::LParen));
        if previous.is_some() && !glued {
            out.push(' ');
        }
        out.push_str(&text);
        previous = Some(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with Go's built-in functions only.
    fn parse(text: &str, vars: &[&str]) -> Result<Vec<Node>, ParseError> {
        super::parse(text, vars, &crate::GoOnly)
    }

    #[test]
    fn text_and_actions_with_trim_markers_and_comments() {
        let nodes = parse("a  {{- .X -}}  b{{/* note */}}c", &[]).unwrap();
        assert_eq!(
            nodes,
            vec![
                Node::Text("a".into()),
                Node::Action(Pipe {
                    line: 1,
                    vars: vec![],
                    declare: false,
                    commands: vec![Command {
                        args: vec![Arg::Field(vec!["X".into()])],
                        line: 1,
                        col: 7,
                        shown: ".X".into(),
                    }],
                }),
                Node::Text("b".into()),
                Node::Text("c".into()),
            ]
        );
    }

    #[test]
    fn an_undefined_variable_is_refused_at_its_line() {
        let e = parse("x\n{{ $label.foo }}", &["$labels"]).unwrap_err();
        assert_eq!(e.to_string(), "2: undefined variable \"$label\"");
        assert!(parse("{{ $labels.foo }}", &["$labels"]).is_ok());
        assert!(parse("{{ $x := 1 }}{{ $x }}", &[]).is_ok());
        assert!(parse("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}", &[]).is_err());
    }

    #[test]
    fn an_unknown_function_and_unbalanced_blocks_are_refused() {
        assert!(
            parse("{{ nosuch 1 }}", &[])
                .unwrap_err()
                .message
                .contains("function \"nosuch\" not defined")
        );
        assert!(parse("{{ if true }}x", &[]).is_err());
        assert!(parse("x{{ end }}", &[]).is_err());
        assert!(parse("{{ .X", &[]).is_err());
    }

    #[test]
    fn numbers_strings_and_parentheses() {
        let nodes = parse(r#"{{ printf "%d\t%s" 0x10 (len `a"b`) }}{{ -1.5e3 }}"#, &[]).unwrap();
        let Node::Action(p) = &nodes[0] else {
            panic!("not an action")
        };
        assert_eq!(p.commands[0].args[1], Arg::Str("%d\t%s".into()));
        assert_eq!(p.commands[0].args[2], Arg::Int(16));
        let Node::Action(p) = &nodes[1] else {
            panic!("not an action")
        };
        assert_eq!(p.commands[0].args[0], Arg::Float(-1500.0));
    }
}
