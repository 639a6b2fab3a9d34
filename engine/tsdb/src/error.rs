//! The metrics store's error types: one enum per operation, sharing [`StorageError`].
//!
//! Expected rejections (a sample out of order, a limit reached) have variants of their own so
//! callers can map them to the right answer (an HTTP 400 for data a retry cannot fix, a 503
//! for a full disk). Messages are lowercase and say what to do where there is something to do.

use std::path::PathBuf;

use strata_core::error::StorageError;
use strata_core::labels::LabelsError;
use strata_core::labels::matcher::MatcherError;
use strata_core::sample::SeriesRef;

/// Why one sample (or its series) was not accepted by [`Appender::append`](crate::Appender::append).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The labels are not a valid series.
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] LabelsError),
    /// The sample is older than the series' newest sample by more than the out-of-order window.
    #[error(
        "sample at {t} for {series} is out of order: the series has data up to {max_t} and the out-of-order window is {window_ms} ms; send samples in time order or raise the window"
    )]
    OutOfOrder {
        /// The series.
        series: SeriesRef,
        /// The sample's timestamp.
        t: i64,
        /// The series' newest timestamp.
        max_t: i64,
        /// The configured window.
        window_ms: i64,
    },
    /// A sample already exists at this timestamp with a different value.
    #[error(
        "{series} already has a different value at {t}: existing bits {existing:#x}, new bits {new:#x}; samples are immutable"
    )]
    DuplicateTimestamp {
        /// The series.
        series: SeriesRef,
        /// The timestamp.
        t: i64,
        /// Bits of the stored value.
        existing: u64,
        /// Bits of the rejected value.
        new: u64,
    },
    /// A series needs at least one label.
    #[error("a series needs at least one label; add a metric name")]
    NoLabels,
    /// The sample's timestamp is too far ahead of the clock.
    #[error(
        "sample at {t} is more than {tolerance_ms} ms ahead of the current time {now_ms}; check the sender's clock and that timestamps are in milliseconds"
    )]
    TooFarInFuture {
        /// The sample's timestamp.
        t: i64,
        /// The engine's clock.
        now_ms: i64,
        /// The configured tolerance.
        tolerance_ms: i64,
    },
    /// A configured limit was reached.
    #[error("{what} limit of {max} reached; raise it in the options or send less")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        max: u64,
    },
    /// The series reference is unknown (never created, or from another database).
    #[error("unknown {0}; append by labels instead")]
    UnknownSeries(SeriesRef),
    /// The database was closed.
    #[error("the database is closed; open it again to write")]
    Closed,
}

/// Why a commit failed. Nothing of a failed commit was acknowledged; it may be retried.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// Writing or syncing the write-ahead log failed.
    #[error("writing the write-ahead log failed: {0}")]
    Storage(#[from] StorageError),
}

impl CommitError {
    /// Whether the disk is full: the same commit can succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            CommitError::Storage(e) => e.is_disk_full(),
        }
    }
}

/// Why a database could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another `Db` in this one) has the directory open.
    #[error("{path} is locked by another strata process; stop it or use another directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The options are inconsistent.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// Reading, repairing or writing storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a query failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A label matcher could not be built.
    #[error(transparent)]
    InvalidMatcher(#[from] MatcherError),
    /// The query would touch more than a configured limit allows.
    #[error("query exceeds the {what} limit of {max}; narrow the selectors or the time range")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        max: u64,
    },
    /// Stored data could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_say_what_to_do() {
        let e = AppendError::OutOfOrder {
            series: SeriesRef(1),
            t: 5,
            max_t: 10,
            window_ms: 0,
        };
        let msg = e.to_string();
        assert!(msg.starts_with("sample at 5"));
        assert!(msg.contains("raise the window"));
        assert!(!msg.ends_with('.'));
    }
}
