//! Go's `text/template`, the language of Prometheus's alert texts and of Loki's `line_format`
//! and `label_format`, written here (no Rust crate speaks it with Go's semantics and error
//! texts): text with actions `{{ … }}`; pipelines of fields (`.Labels.job`), variables
//! (`$x := …`), literals and function calls; `if`/`else if`/`else`, `range` (with `break` and
//! `continue`), `with`, `define`/`template`; comments and `{{-`/`-}}` trimming. Go's built-in
//! functions (`and`, `or`, `not`, `len`, `index`, `slice`, `print`, `printf`, `println`,
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `html`, `js`, `urlquery`) are always there; each user
//! brings the rest as [`Functions`]: the rule evaluator Prometheus's (`humanize`, `query`, …),
//! LogQL Loki's and sprig's (`ToUpper`, `regexReplaceAll`, `__line__`, …).
//!
//! Layers: depends on nothing of Strata's; `strata-logql` and the server's alerting use it.

mod exec;
pub mod format;
mod parse;
mod printf;
pub mod time;
mod value;

pub use exec::{Run, query_escape, regex, title, to_float, to_str, want};
pub use parse::{Node, ParseError, is_builtin, parse};
pub use printf::sprintf;
pub use value::Value;

/// The functions a template may call besides Go's built-ins.
pub trait Functions {
    /// Whether `name` is one of them (asked when a template is parsed: an unknown function
    /// is a parse error, as in Go).
    fn has(&self, name: &str) -> bool;
    /// Calls `name` with `args` (a piped value comes last). An `Err` stops the template with
    /// `error calling <name>: <text>`.
    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, String>;
}

/// No functions but Go's built-ins.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoOnly;

impl Functions for GoOnly {
    fn has(&self, _: &str) -> bool {
        false
    }

    fn call(&self, name: &str, _: Vec<Value>) -> Result<Value, String> {
        Err(format!("function {name:?} not defined"))
    }
}
