//! Checks on a parsed query before it is evaluated: what the parser lets through but
//! Prometheus rejects; and a walk over every node of the tree.

use promql_parser::parser::Expr;

use crate::error::PromqlError;

/// Checks what the parser lets through but Prometheus rejects.
pub(crate) fn check(expr: &Expr) -> Result<(), PromqlError> {
    let mut err = None;
    walk(expr, &mut |e| {
        if let Expr::VectorSelector(vs) = e
            && !vs.matchers.or_matchers.is_empty()
        {
            err = Some(PromqlError::Parse(
                "\"or\" is not allowed inside a vector selector".into(),
            ));
        }
    });
    err.map_or(Ok(()), Err)
}

/// Calls `f` on `expr` and every expression below it.
pub(crate) fn walk(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, f);
            }
            walk(&a.expr, f);
        }
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Subquery(s) => walk(&s.expr, f),
        Expr::MatrixSelector(m) => f(&Expr::VectorSelector(m.vs.clone())),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, f);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::Extension(_) => {}
    }
}
