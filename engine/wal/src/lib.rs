//! The write-ahead log: every acknowledged write is in here before it is acknowledged.
//!
//! The log is a directory of numbered segment files (`00000001`, `00000002`, …) holding
//! framed, checksummed records ([`frame`]), plus at most one checkpoint
//! (`checkpoint.NNNNNNNN`, see [`checkpoint`]) that stands for every segment numbered below
//! `NNNNNNNN`. The format is in `docs/format/wal.md`.
//!
//! The log knows frames, not what is in them: each store (the metrics store today, logs and
//! spans next) defines its record types and payloads, writes whole frames through
//! [`Wal::log`], and reads them back through a [`replay::ReplayHandler`] when the log is
//! opened. What the log guarantees is the same for every store: a write is acknowledged only
//! once it is synced ([`FsyncMode::Always`]), one fsync serves every writer waiting on it
//! ([`writer`]), and recovery cuts only a torn tail and quarantines anything else damaged
//! ([`replay`], [`reader`]).
//!
//! Layers: this crate depends on `strata-core` alone.

pub mod checkpoint;
pub mod frame;
pub mod reader;
pub mod replay;
pub mod writer;

pub use writer::{
    FsyncMode, SYNC_BUCKETS_SECONDS, SegmentSeq, Wal, WalOptions, WalStats, segment_name,
};
