//! `label_replace` and `label_join`: label edits whose string arguments are literals, read
//! (and the regex compiled) before the vector is evaluated, as Prometheus does; and the
//! natural order `sort_by_label` uses.

use promql_parser::parser::Expr;
use regex::Regex;
use strata_core::labels::METRIC_NAME;

use crate::error::PromqlError;
use crate::value::{Series, Steps, edit, merge_equal_labels};

/// A label edit, read from a call's literal arguments.
#[derive(Debug)]
pub(crate) enum LabelEdit<'a> {
    /// `label_replace(v, dst, replacement, src, regex)`.
    Replace {
        dst: &'a str,
        replacement: &'a str,
        src: &'a str,
        regex: Regex,
    },
    /// `label_join(v, dst, separator, src...)`.
    Join {
        dst: &'a str,
        separator: &'a str,
        srcs: Vec<&'a str>,
    },
}

impl<'a> LabelEdit<'a> {
    /// `label_replace`'s edit, from the call's arguments.
    pub(crate) fn replace(args: &'a [Box<Expr>]) -> Result<LabelEdit<'a>, PromqlError> {
        let dst = string_arg(args, 1, "label_replace")?;
        let replacement = string_arg(args, 2, "label_replace")?;
        let src = string_arg(args, 3, "label_replace")?;
        let pattern = string_arg(args, 4, "label_replace")?;
        let regex = Regex::new(&format!("^(?s:{pattern})$")).map_err(|_| {
            PromqlError::Execution(format!(
                "invalid regular expression in label_replace(): {pattern}"
            ))
        })?;
        if dst.is_empty() {
            return Err(PromqlError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        Ok(LabelEdit::Replace {
            dst,
            replacement,
            src,
            regex,
        })
    }

    /// `label_join`'s edit, from the call's arguments.
    pub(crate) fn join(args: &'a [Box<Expr>]) -> Result<LabelEdit<'a>, PromqlError> {
        let dst = string_arg(args, 1, "label_join")?;
        let separator = string_arg(args, 2, "label_join")?;
        let mut srcs = Vec::new();
        for i in 3..args.len() {
            srcs.push(string_arg(args, i, "label_join")?);
        }
        if dst.is_empty() {
            return Err(PromqlError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        Ok(LabelEdit::Join {
            dst,
            separator,
            srcs,
        })
    }

    /// The edit applied to every series of the evaluated vector.
    pub(crate) fn apply(
        &self,
        mut series: Vec<Series>,
        steps: Steps,
    ) -> Result<Vec<Series>, PromqlError> {
        for s in &mut series {
            let dst = match self {
                LabelEdit::Replace {
                    dst,
                    replacement,
                    src,
                    regex,
                } => {
                    let value = s.labels.get(src).unwrap_or("");
                    let Some(caps) = regex.captures(value) else {
                        continue;
                    };
                    let mut out = String::new();
                    caps.expand(replacement, &mut out);
                    s.labels = edit::set(&s.labels, dst, &out);
                    *dst
                }
                LabelEdit::Join {
                    dst,
                    separator,
                    srcs,
                } => {
                    let joined = srcs
                        .iter()
                        .map(|n| s.labels.get(n).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(separator);
                    s.labels = edit::set(&s.labels, dst, &joined);
                    *dst
                }
            };
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        merge_equal_labels(series, steps)
    }
}

/// The string argument at `i` of a call, which the parser made a string literal.
fn string_arg<'a>(args: &'a [Box<Expr>], i: usize, func: &str) -> Result<&'a str, PromqlError> {
    let mut e = args.get(i).map(|b| &**b);
    while let Some(Expr::Paren(p)) = e {
        e = Some(&p.expr);
    }
    match e {
        Some(Expr::StringLiteral(s)) => Ok(&s.val),
        _ => Err(PromqlError::Execution(format!(
            "expected a string literal as argument {} of {func}()",
            i + 1
        ))),
    }
}

/// Compares label values in natural order: runs of digits by their numeric value.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let lx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ly = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (&x[..lx], &y[..ly]);
                let tx = nx.iter().skip_while(|&&c| c == b'0').count();
                let ty = ny.iter().skip_while(|&&c| c == b'0').count();
                let o = tx.cmp(&ty).then_with(|| nx[lx - tx..].cmp(&ny[ly - ty..]));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                x = &x[lx..];
                y = &y[ly..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        assert_eq!(natural_cmp("a2", "a10"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("a10", "a9"), std::cmp::Ordering::Greater);
        assert_eq!(natural_cmp("abc", "abd"), std::cmp::Ordering::Less);
    }
}
