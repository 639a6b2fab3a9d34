//! Strata's storage engine: a time-series database you can embed.
//!
//! Samples (a millisecond timestamp and a float) belong to series named by label sets. They
//! are appended in batches; a committed batch is in the write-ahead log (synced to disk by
//! default) before [`Appender::commit`] returns, and survives a crash. Recent data lives in the
//! head: compressed chunks in memory, indexed by label. Older data moves into immutable blocks
//! on disk, which background maintenance ([`Db::maintain`]) compacts and expires; queries see
//! head and blocks as one.
//!
//! ```
//! use strata_engine::labels::Labels;
//! use strata_engine::labels::matcher::Matcher;
//! use strata_engine::{Db, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::default())?;
//!
//! let up = Labels::new([("__name__", "up"), ("job", "node")])?;
//! let now = 1_700_000_000_000; // milliseconds since the epoch
//! let mut app = db.appender();
//! app.append(&up, now - 15_000, 1.0)?;
//! app.append(&up, now, 0.0)?;
//! app.commit()?; // durable from here on
//!
//! let series = db.querier(now - 60_000, now).select(&[Matcher::equal("job", "node")])?;
//! let values: Vec<f64> = series[0].samples().map(|s| s.v).collect();
//! assert_eq!(values, [1.0, 0.0]);
//! db.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Logs are the same shape: a [`logs::LogStore`] in a directory of its own, entries (a
//! nanosecond timestamp, a line, structured metadata) of streams named by label sets,
//! committed durably in batches, sealed into blocks and expired by the database's background
//! thread once handed to it, and read with LogQL ([`logql`]).
//!
//! ```
//! use std::sync::Arc;
//! use strata_engine::labels::Labels;
//! use strata_engine::logql::{self, Expr};
//! use strata_engine::logs::{Direction, Entry, LogOptions, LogStore};
//! use strata_engine::{Db, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path(), Options::default())?;
//! let (logs, _report) = LogStore::open(&dir.path().join("logs"), LogOptions::default())?;
//! let logs = Arc::new(logs);
//! db.add_maintained(logs.clone()); // seals and retention on the database's thread
//!
//! let api = Labels::new([("app", "api")])?;
//! let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i64;
//! let mut app = logs.appender();
//! app.append(&api, Entry::new(now_ns - 2_000, "level=info msg=ok"))?;
//! app.append(&api, Entry::new(now_ns - 1_000, "level=error msg=\"upstream timeout\""))?;
//! app.commit()?; // durable from here on
//!
//! let Expr::Log(query) = logql::parse(r#"{app="api"} | logfmt | level="error""#)? else {
//!     unreachable!()
//! };
//! let found = logql::select_logs(&logs, &query, 0, i64::MAX, Direction::Backward, 100)?;
//! assert_eq!(found[0].entries[0].line, "level=error msg=\"upstream timeout\"");
//! db.close()?;
//! logs.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Everything the engine does with files goes through [`fs::Fs`], and "now" comes from
//! [`Clock`], both given in [`Options`]: tests run it on a simulated disk that loses, tears and
//! fails writes (`fs::sim`, feature `sim`) and on a manual clock. The engine starts no async
//! runtime and opens no socket; its only threads are the WAL's interval syncer (when
//! configured) and the background maintenance thread (checkpoints, block cuts, compaction,
//! retention).
//!
//! This crate is the engine's one front door. It holds no code of its own: it re-exports the
//! layers below, each a crate of its own that depends only downward (see `ARCHITECTURE.md`):
//! `strata-core` (labels, the label index, files, clock, codecs, the maintenance seam),
//! `strata-wal` (the write-ahead log), `strata-tsdb` (the metrics store), `strata-promql`
//! (PromQL over it), `strata-logs` (the log store) and `strata-logql` (LogQL over it).

pub use strata_core::{clock, codec, fs, labels, maintenance, postings, sample};
pub use strata_logql as logql;
pub use strata_logs as logs;
pub use strata_promql as promql;
pub use strata_template as template;
pub use strata_tsdb::{block, chunk, record};
pub use strata_wal as wal;

/// The engine's errors: the storage error every store shares, and the metrics store's one
/// enum per operation.
pub mod error {
    pub use strata_core::error::StorageError;
    pub use strata_tsdb::error::{AppendError, CommitError, OpenError, QueryError};
}

pub use strata_core::clock::{Clock, ManualClock, SystemClock};
pub use strata_core::error::StorageError;
pub use strata_core::postings::Cardinality;
pub use strata_core::sample::{Sample, SeriesRef};
pub use strata_tsdb::{
    AppendError, Appender, BlocksReport, CheckpointStats, CommitError, CommitStats, Db,
    DecodedCacheStats, DeleteStats, MaintenanceReport, OpenError, OpenReport, Options, Querier,
    QueryError, Samples, SelectedSeries, SnapshotStats, Stats,
};
pub use strata_wal::FsyncMode;
