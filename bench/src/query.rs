//! The PromQL query benchmark: typical dashboard queries timed the same way against every
//! server with the Prometheus query API (Strata, Prometheus, VictoriaMetrics), each loaded
//! with the same data.
//!
//! [`load`] writes the node_exporter-like dataset of the engine's benchmarks
//! (`strata_testkit::dataset`) over a span of hours, time-major, through remote
//! write: one thread and connection per shard, each request sent when the one before it
//! returned. [`run`] then sends each query of [`QUERIES`] a few times, one at a time, and keeps
//! every latency (the median is the figure); it also keeps each answer's series count, so the
//! report shows that every system did the same work. [`report`] puts the systems side by side.

pub mod footprint;
pub mod load;
pub mod report;
pub mod run;

pub use strata_testkit::dashboard::{QUERIES, QuerySpec};
