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

mod aggregate;
mod binary;
mod eval;
mod functions;
mod histogram;
mod position;
mod range_functions;
mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use strata_core::labels::Labels;
use strata_core::labels::matcher::Matcher;
use strata_core::sample::Sample;
use strata_tsdb::Db;
use strata_tsdb::QueryError;

pub use eval::selector_matchers;
pub use promql_parser::parser::Expr;

/// Settings of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back a vector selector looks for a series' latest sample. Default 5 minutes.
    pub lookback_delta_ms: i64,
    /// The most samples a query may hold in memory at once (selected samples and result
    /// points), as Prometheus's `--query.max-samples`. Default 50,000,000.
    pub samples_max: usize,
    /// The most points a range query may return per series. Default 11,000.
    pub points_per_series_max: usize,
    /// The step of a subquery that names none (`x[5m:]`). Default 1 minute.
    pub subquery_step_ms: i64,
    /// Prometheus 2's windows: range selectors, subquery ranges and the lookback include
    /// their left end (`[t - range, t]`) instead of excluding it. For comparing results with
    /// Prometheus 2; off by default.
    pub left_closed_windows: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            samples_max: 50_000_000,
            points_per_series_max: 11_000,
            subquery_step_ms: 60 * 1000,
            left_closed_windows: false,
        }
    }
}

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, at the evaluation time.
    Scalar {
        /// Evaluation time, milliseconds.
        t: i64,
        /// The number.
        v: f64,
    },
    /// A string literal, at the evaluation time.
    String {
        /// Evaluation time, milliseconds.
        t: i64,
        /// The string.
        s: String,
    },
    /// One sample per series at the evaluation time (an instant query's vector).
    Vector(Vec<InstantSample>),
    /// Samples over time per series: a range query's result, or an instant query of a range
    /// vector (`foo[5m]`). Sorted by labels.
    Matrix(Vec<RangeSeries>),
}

/// A series' value at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// Milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// A series' values over time.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// In time order.
    pub samples: Vec<Sample>,
}

/// A query's result with what Prometheus would annotate it with.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// The result.
    pub value: Value,
    /// Warnings (`PromQL warning: …`), each once, in the order they were raised.
    pub warnings: Vec<String>,
    /// Infos (`PromQL info: …`), each once.
    pub infos: Vec<String>,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromqlError {
    /// The query text does not parse.
    #[error("{0}")]
    Parse(String),
    /// A parameter of the query is unusable (a range query's step, say).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed on the data (many-to-many matching, duplicate series, …).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples than [`EngineOptions::samples_max`].
    #[error(
        "query processing would load too many samples into memory in {phase} (more than {max}); narrow the selectors, the range or the step"
    )]
    TooManySamples {
        /// `query execution` or `result`.
        phase: &'static str,
        /// The limit.
        max: usize,
    },
    /// The query ran longer than its caller allowed.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The caller canceled the query.
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// Reading the data failed.
    #[error("{0}")]
    Storage(#[from] QueryError),
}

/// A handle to stop a running query: the caller keeps a clone and calls
/// [`Stop::timeout`] or [`Stop::cancel`]; evaluation checks it between steps of work and ends
/// with [`PromqlError::Timeout`] or [`PromqlError::Canceled`]. (The engine reads no clock, so
/// deadlines are the caller's.)
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicU8>);

const RUNNING: u8 = 0;
const TIMED_OUT: u8 = 1;
const CANCELED: u8 = 2;

impl Stop {
    /// A handle that has not stopped anything yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Ends the query as timed out.
    pub fn timeout(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, TIMED_OUT, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Ends the query as canceled.
    pub fn cancel(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, CANCELED, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), PromqlError> {
        match self.0.load(Ordering::Relaxed) {
            RUNNING => Ok(()),
            TIMED_OUT => Err(PromqlError::Timeout),
            _ => Err(PromqlError::Canceled),
        }
    }
}

/// What [`Storage::select_each`] calls for each series: its labels and samples.
pub type EachSeries<'a> = dyn FnMut(&Labels, &[Sample]) -> Result<(), PromqlError> + 'a;

/// Series data a query reads.
pub trait Storage {
    /// The series matching every matcher with their samples in `[mint, maxt]`, in time order
    /// (the stale marker included). At most `samples_max` samples in all; more is
    /// [`PromqlError::TooManySamples`].
    fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
    ) -> Result<Vec<RangeSeries>, PromqlError>;

    /// [`Storage::select`] a series at a time: `each(labels, samples)` for every series with
    /// samples, which the implementation may decode into one buffer it reuses, so a query
    /// never holds every series' samples at once. The default collects [`Storage::select`].
    fn select_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        for s in self.select(mint, maxt, matchers, samples_max)? {
            each(&s.labels, &s.samples)?;
        }
        Ok(())
    }

    /// [`Storage::select_each`] for a caller that needs only each series' newest sample in
    /// range (an instant vector selector at one time): `samples` may hold just that one. The
    /// default passes the last sample of what [`Storage::select_each`] gives.
    fn select_newest_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        self.select_each(mint, maxt, matchers, samples_max, &mut |labels, samples| {
            each(labels, &samples[samples.len().saturating_sub(1)..])
        })
    }
}

fn too_many_samples(max: usize) -> PromqlError {
    PromqlError::TooManySamples {
        phase: "query execution",
        max,
    }
}

impl Storage for Db {
    fn select(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
    ) -> Result<Vec<RangeSeries>, PromqlError> {
        let mut out = Vec::new();
        self.select_each(mint, maxt, matchers, samples_max, &mut |labels, samples| {
            out.push(RangeSeries {
                labels: labels.clone(),
                samples: samples.to_vec(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    fn select_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        db_select_each(self, mint, maxt, matchers, samples_max, false, each)
    }

    fn select_newest_each(
        &self,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
        samples_max: usize,
        each: &mut EachSeries<'_>,
    ) -> Result<(), PromqlError> {
        db_select_each(self, mint, maxt, matchers, samples_max, true, each)
    }
}

/// Both selections of [`Db`]: every sample of each series, decoded into one buffer reused
/// from series to series, or with `newest` only the newest one.
fn db_select_each(
    db: &Db,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    samples_max: usize,
    newest: bool,
    each: &mut EachSeries<'_>,
) -> Result<(), PromqlError> {
    let querier = db.querier(mint, maxt);
    if newest && let Some(found) = querier.select_newest(matchers) {
        if found.len() > samples_max {
            return Err(too_many_samples(samples_max));
        }
        for (labels, sample) in &found {
            each(labels, std::slice::from_ref(sample))?;
        }
        return Ok(());
    }
    let selected = querier.select(matchers)?;
    let mut total = 0usize;
    let mut buffer: Vec<Sample> = Vec::new();
    for s in &selected {
        buffer.clear();
        // The head's open chunk knows its last sample: a query at "now" decodes nothing.
        match s.newest_without_decoding().filter(|_| newest) {
            Some(sample) => buffer.push(sample),
            None => {
                s.samples_into(&mut buffer);
                if newest {
                    let keep = buffer.len().saturating_sub(1);
                    buffer.drain(..keep);
                }
            }
        }
        total += buffer.len();
        if total > samples_max {
            return Err(too_many_samples(samples_max));
        }
        if !buffer.is_empty() {
            each(s.labels(), &buffer)?;
        }
    }
    Ok(())
}

/// A parsed query, ready to evaluate (possibly many times).
#[derive(Debug, Clone)]
pub struct Query {
    expr: Expr,
    /// The text the expression was parsed from (annotations give positions in it).
    text: String,
}

/// Teaches the parser the names it lacks: `holt_winters`, Prometheus 2's name for
/// `double_exponential_smoothing` (dashboards written for Prometheus 2 still use it).
fn register_compat_functions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use promql_parser::parser::value::ValueType;
        let _ = promql_parser::parser::register_extra_functions(vec![
            promql_parser::parser::Function::new(
                "holt_winters",
                vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
                0,
                ValueType::Vector,
                false,
            ),
        ]);
    });
}

impl Query {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Query, PromqlError> {
        register_compat_functions();
        let expr = promql_parser::parser::parse(text).map_err(PromqlError::Parse)?;
        eval::check(&expr)?;
        Ok(Query {
            expr,
            text: text.to_owned(),
        })
    }

    /// Wraps an expression parsed elsewhere (positions in annotations then refer to its
    /// printed form).
    pub fn from_expr(expr: Expr) -> Result<Query, PromqlError> {
        eval::check(&expr)?;
        let text = expr.to_string();
        Ok(Query { expr, text })
    }

    /// The expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl Engine {
    /// An engine with these settings.
    pub fn new(options: EngineOptions) -> Engine {
        Engine { options }
    }

    /// The settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluates `query` at `t` (milliseconds).
    pub fn instant(
        &self,
        storage: &dyn Storage,
        query: &str,
        t: i64,
    ) -> Result<QueryOutput, PromqlError> {
        self.instant_query(storage, &Query::parse(query)?, t, &Stop::new())
    }

    /// Evaluates `query` at every `step` from `start` to `end` (milliseconds, inclusive).
    pub fn range(
        &self,
        storage: &dyn Storage,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutput, PromqlError> {
        self.range_query(
            storage,
            &Query::parse(query)?,
            start,
            end,
            step,
            &Stop::new(),
        )
    }

    /// [`Engine::instant`] of a parsed query, stoppable through `stop`.
    pub fn instant_query(
        &self,
        storage: &dyn Storage,
        query: &Query,
        t: i64,
        stop: &Stop,
    ) -> Result<QueryOutput, PromqlError> {
        eval::run(&self.options, storage, query, t, t, 1, true, stop)
    }

    /// [`Engine::range`] of a parsed query, stoppable through `stop`.
    pub fn range_query(
        &self,
        storage: &dyn Storage,
        query: &Query,
        start: i64,
        end: i64,
        step: i64,
        stop: &Stop,
    ) -> Result<QueryOutput, PromqlError> {
        if step <= 0 {
            return Err(PromqlError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(PromqlError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let points = (end - start) / step + 1;
        if points as u64 > self.options.points_per_series_max as u64 {
            return Err(PromqlError::BadData(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.options.points_per_series_max
            )));
        }
        eval::run(&self.options, storage, query, start, end, step, false, stop)
    }
}
