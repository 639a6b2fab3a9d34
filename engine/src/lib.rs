//! Strata's storage engine.
pub mod chunk;
pub mod clock;
mod db;
pub mod error;
pub mod fs;
mod head;
pub mod labels;
pub mod sample;
pub mod wal;

pub use clock::{Clock, ManualClock, SystemClock};
pub use db::{
    Appender, CheckpointStats, CommitStats, Db, OpenReport, Options, Querier, Samples,
    SelectedSeries, Stats,
};
pub use error::{AppendError, CommitError, OpenError, QueryError, StorageError};
pub use head::postings::Cardinality;
pub use sample::{Sample, SeriesRef};
pub use wal::FsyncMode;
