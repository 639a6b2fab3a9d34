//! LogQL over Strata's log store ([`strata_logs`]): [`parse`] turns a query into an
//! [`Expr`], [`eval`] runs it.
//!
//! So far: log queries, a stream selector (`=`, `!=`, `=~`, `!~`, at least one matcher that
//! does not match the empty value, as Loki requires) followed by a pipeline ([`pipeline`]):
//! line filters (`|=`, `!=`, `|~`, `!~`), the parsers `json` (with or without fields),
//! `logfmt` (`--strict`, `--keep-empty`), `regexp`, `pattern` and `unpack`, label filters on strings,
//! numbers, durations and byte sizes with `and`, `or` and parentheses, `drop`, `keep` and
//! `decolorize`, with `__error__` on failed parses. A line filter whose every kept line
//! must contain a substring gives that substring to the store as a needle, so sealed pages
//! whose token filter lacks it are skipped unread. Metric queries: `count_over_time`,
//! `rate`, `bytes_over_time`, `bytes_rate` and `absent_over_time` with `offset`; over the
//! samples `| unwrap` makes of a label, `sum_`, `avg_`, `min_`, `max_`, `first_`, `last_`,
//! `stdvar_`, `stddev_`, `quantile_over_time`, `rate` and `rate_counter`, grouped by `by` or
//! `without`; under `sum`, `avg`, `min`, `max`, `count`, `stddev`, `stdvar`, `topk` and
//! `bottomk` with `by` or `without`; numbers, `vector(n)`, arithmetic, comparisons and the
//! set operators `and`, `or`, `unless`, with `on`/`ignoring` and `group_left`/`group_right`; subqueries
//! (`max_over_time(<metric query>[1h:5m])`) and `approx_count_distinct_over_time(label, …)`, both
//! beyond Loki. `line_format` and `label_format` with the templates of
//! [`template`]. [`detect`] lists the fields a query's newest lines hold (Grafana's Logs
//! Drilldown).
//!
//! Layers: this crate depends on `strata-core` and `strata-logs` only.

pub mod ast;
pub mod detect;
pub mod eval;
pub mod parse;
pub mod patterns;
pub mod pipeline;
pub mod template;
pub mod units;

pub use ast::{Expr, FilterOp, LineFilter, LogExpr, MetricExpr};
pub use eval::{EvalError, LogStream, MetricLimits, MetricSeries, eval_metric, select_logs};
pub use parse::{ParseError, parse};
