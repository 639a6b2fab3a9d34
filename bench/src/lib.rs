//! Strata's load generator and benchmark suites, as a library its binaries share.
//!
//! [`ingest`] drives remote-write ingestion against any server that speaks Prometheus remote
//! write 1.0 (Strata, Prometheus, VictoriaMetrics) and measures it from outside, through the
//! network and `/proc`; `src/bin/ingest-compare.rs` is its command line and
//! `scripts/ingest-compare.sh` runs it against the three systems side by side. [`query`]
//! loads hours of the same data into such a server and times typical dashboard queries
//! against its Prometheus query API (`src/bin/query-compare.rs`, `scripts/query-compare.sh`).

pub mod ingest;
pub mod load;
pub mod query;
