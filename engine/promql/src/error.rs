//! Why a query failed, typed the way the HTTP API maps errors to statuses.

use strata_tsdb::QueryError;

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
