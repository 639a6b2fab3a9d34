//! PromQL evaluation over the engine's data, with Prometheus 3 semantics.
//!
//! Queries are parsed by the `promql-parser` crate; evaluation is ours. An [`Engine`] holds the
//! settings (lookback, limits, the default subquery step); [`Engine::instant`] and
//! [`Engine::range`] evaluate a query against anything that implements [`Storage`] (a [`Db`]
//! does) and return a [`Value`] with the warnings and infos Prometheus would emit.
//!
//! ```
//! use strata_core::labels::Labels;
//! use strata_promql::{Engine, EngineOptions, Value};
//! use strata_tsdb::{Db, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::default())?;
//! let mut app = db.appender();
//! for i in 0..10 {
//!     let labels = Labels::new([("__name__", "requests_total"), ("job", "api")])?;
//!     app.append(&labels, 1_700_000_000_000 + i * 15_000, (i * 30) as f64)?;
//! }
//! app.commit()?;
//!
//! let engine = Engine::new(EngineOptions::default());
//! let out = engine.instant(&db, "sum by (job) (rate(requests_total[1m]))", 1_700_000_135_000)?;
//! let Value::Vector(v) = out.value else { panic!("a vector") };
//! assert_eq!(v[0].labels.get("job"), Some("api"));
//! assert!((v[0].v - 2.0).abs() < 1e-9); // 30 per 15 s
//! # db.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! # How evaluation works
//!
//! Every expression is evaluated once for all the steps of a query, not once per step: an
//! instant query is a range query of one step. A node's result holds, per output series, one
//! value per step ([`value`]). A selector reads each series' samples once and walks them with
//! the steps; a range function slides its window over them; an aggregation groups series once
//! and then combines values step by step; a binary operator matches series by their labels
//! once. Memory is bounded by the samples a query may load ([`EngineOptions::samples_max`]) and
//! the points a result may hold.
//!
//! Semantics follow Prometheus 3: range selectors and the lookback window are left-open
//! (`(t - range, t]`), the stale marker ends a series, `__name__` is removed from results of
//! operations that change a value's meaning only at the end of evaluation (so `label_replace`
//! of a rate still sees the name), and warnings and infos are collected where Prometheus
//! collects them.
//!
//! # Layout
//!
//! The entry points (`engine`) parse a query and hand it to the evaluator (`eval`), which
//! walks the tree once: it reads selectors through the query's context (`ctx`, `selector`)
//! from any [`Storage`] (`tsdb` adapts the metrics store), evaluates each node's operands,
//! and hands them to the operators that compute a node's value from evaluated operands:
//! `aggregate`, `binary`, `functions` (one table of every function) and `histogram`. Those
//! know nothing of the evaluator or of storage, so a second query language with metric
//! queries (LogQL) can reuse them on its own series. Numeric helpers (`numeric`) and
//! Go-compatible number formatting (`format`) are shared by all of them; `value` is what a
//! node evaluates to, `annotations` the warnings and infos a query collects.

mod aggregate;
mod annotations;
mod binary;
mod ctx;
mod engine;
mod error;
mod eval;
mod format;
mod functions;
mod histogram;
pub mod notation;
mod numeric;
mod options;
mod position;
mod result;
mod selector;
mod stop;
mod storage;
mod syntax;
mod tsdb;
mod value;

pub use engine::{Engine, Query};
pub use error::PromqlError;
pub use options::EngineOptions;
pub use promql_parser::parser::Expr;
pub use result::{InstantSample, QueryOutput, RangeSeries, Value};
pub use selector::selector_matchers;
pub use stop::Stop;
pub use storage::{EachSeries, Storage};
