//! The store's errors, one enum per operation, around core's [`StorageError`].

use std::path::PathBuf;

use strata_core::error::StorageError;
use strata_core::labels::LabelsError;

/// Why an entry was refused by [`crate::LogAppender::append`]. Nothing of the batch is
/// lost: the entry is not added, the others stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The stream's labels are not a valid label set.
    #[error("invalid stream labels: {0}")]
    Labels(#[from] LabelsError),
    /// A stream needs at least one label.
    #[error("a stream needs at least one label")]
    NoLabels,
    /// More labels than a stream may have.
    #[error("stream has {count} labels, more than the limit of {max}")]
    TooManyLabels { count: usize, max: usize },
    /// The line (with its metadata) is larger than allowed.
    #[error("entry of {bytes} bytes is larger than the limit of {max} bytes")]
    LineTooLong { bytes: usize, max: usize },
    /// More metadata pairs than allowed.
    #[error("entry has {count} structured metadata pairs, more than the limit of {max}")]
    TooMuchMetadata { count: usize, max: usize },
    /// The entry is older than the store accepts.
    #[error("entry at {ts_ns} ns is too old: the store accepts entries from {oldest_ns} ns on")]
    TooOld { ts_ns: i64, oldest_ns: i64 },
    /// The entry lies too far in the future.
    #[error(
        "entry at {ts_ns} ns is too far in the future: the store accepts entries up to {newest_ns} ns"
    )]
    TooNew { ts_ns: i64, newest_ns: i64 },
    /// The entry is older than its stream's out-of-order window allows.
    #[error(
        "entry at {ts_ns} ns is out of order: its stream has entries up to {stream_max_ns} ns and accepts none before {oldest_ns} ns"
    )]
    OutOfOrder {
        ts_ns: i64,
        stream_max_ns: i64,
        oldest_ns: i64,
    },
    /// The store holds as many streams as it may; a new one is refused (an existing stream
    /// still accepts entries).
    #[error("the store holds {max} streams, its limit; a new stream is refused")]
    TooManyStreams { max: usize },
}

impl AppendError {
    /// A short, stable name for the reason, for counters (`reason="too_old"`).
    pub fn reason(&self) -> &'static str {
        match self {
            AppendError::Labels(_) | AppendError::NoLabels => "invalid_labels",
            AppendError::TooManyLabels { .. } => "too_many_labels",
            AppendError::LineTooLong { .. } => "line_too_long",
            AppendError::TooMuchMetadata { .. } => "too_much_metadata",
            AppendError::TooOld { .. } => "too_old",
            AppendError::TooNew { .. } => "too_far_in_future",
            AppendError::OutOfOrder { .. } => "out_of_order",
            AppendError::TooManyStreams { .. } => "stream_limit",
        }
    }
}

/// Why [`crate::LogAppender::commit`] failed: nothing of the batch was acknowledged, and
/// nothing of it is visible.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// Writing or syncing the log failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The head holds as much as it may while seals catch up (a burst faster than blocks
    /// are written); nothing of the batch was stored. Retry shortly.
    #[error(
        "the log head is full while it is sealed into blocks ({bytes} bytes held); retry shortly"
    )]
    Busy { bytes: u64 },
}

/// Why [`crate::LogStore::open`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// Reading or writing the directory failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Options the store cannot honour.
    #[error("invalid log store options: {0}")]
    Options(String),
    /// Another process has the directory open.
    #[error("the log store in {path} is locked by another process")]
    Locked { path: PathBuf },
}
