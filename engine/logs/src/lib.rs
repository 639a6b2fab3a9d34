//! Strata's log store: streams of entries, each a nanosecond timestamp, a line and structured
//! metadata (name/value pairs that are not stream labels), a stream named by its label set.
//!
//! The store is a peer of the metrics store over the same lower layers: streams are
//! `strata-core` label sets found through its inverted index ([`strata_core::postings`]),
//! entries are written through `strata-wal` (the same framing, group commit and recovery,
//! with this store's own record types, [`record`]) and acknowledged only once durable, and
//! files go through the same [`strata_core::fs::Fs`] (so the fault-injecting disk tests it
//! too). What is written is kept in memory per stream (the head) and in the WAL; sealed
//! blocks ([`block`]) hold a span of time compressed, each page with a token filter
//! ([`filter`]) so line filters skip what cannot match.
//!
//! Writing: [`LogStore::appender`] → [`LogAppender::append`] (checked against the limits) →
//! [`LogAppender::commit`] (logged, synced, then visible). Reading: [`LogStore::select`] with
//! label matchers, a time range, a direction and a limit, as Loki's queries ask.
//!
//! Layers: this crate depends on `strata-core` and `strata-wal` only.

pub mod block;
mod catalog;
pub mod entry;
pub mod error;
pub mod filter;
pub mod head;
mod load;
mod merge;
pub mod record;
mod replay;
pub mod store;

pub use entry::{Direction, Entry, StreamRef};
pub use error::{AppendError, CommitError, OpenError};
pub use store::{
    LineFilter, LogAppender, LogLimits, LogOptions, LogStore, MaintainReport, OpenReport,
    PageStats, StreamEntries,
};
