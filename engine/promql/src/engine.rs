//! The entry points: parsing a [`Query`] and evaluating it with an [`Engine`], once or at
//! every step of a range.

use crate::error::PromqlError;
use crate::eval;
use crate::options::EngineOptions;
use crate::result::QueryOutput;
use crate::stop::Stop;
use crate::storage::Storage;
use crate::syntax;

use promql_parser::parser::Expr;

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
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
        syntax::check(&expr)?;
        Ok(Query {
            expr,
            text: text.to_owned(),
        })
    }

    /// Wraps an expression parsed elsewhere (positions in annotations then refer to its
    /// printed form).
    pub fn from_expr(expr: Expr) -> Result<Query, PromqlError> {
        syntax::check(&expr)?;
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
        eval::run(
            &self.options,
            storage,
            &query.expr,
            &query.text,
            t,
            t,
            1,
            true,
            stop,
        )
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
        eval::run(
            &self.options,
            storage,
            &query.expr,
            &query.text,
            start,
            end,
            step,
            false,
            stop,
        )
    }
}
