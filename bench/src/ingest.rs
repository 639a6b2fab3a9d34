//! The end-to-end remote-write ingestion benchmark: one method, applied the same way to every
//! server that accepts Prometheus remote write 1.0.
//!
//! A run against one server has four phases, all driven by [`run::run`]:
//!
//! 1. **create**: scrape 0 of every host, so every series of the dataset exists and is active.
//! 2. **throughput**: the next scrapes as fast as the server takes them, one request in flight
//!    per connection (closed loop): samples per second of wall time, and samples per CPU-second
//!    of the server process (`utime + stime` from `/proc/PID/stat`, every thread counted).
//! 3. **settle**: a few idle seconds, so deferred work (flushes, merges) shows as CPU of its
//!    own; then the resident set (`VmRSS`) divided by the number of active series.
//! 4. **fixed load**: requests at a fixed rate, the same for every server, scheduled at fixed
//!    intervals whether or not earlier ones have returned (open loop); a request's latency runs
//!    from when it was due to be sent, so a stalled server cannot hide its stall by slowing the
//!    sender (no coordinated omission).
//!
//! The data is the node_exporter-like dataset of the engine's benchmarks
//! (`strata_testkit::dataset`, shared, not copied), sent as
//! Prometheus 2.42 sends it: series spread over shards (one connection each) by a hash,
//! time-major, 2,000 samples a request, one sample per series per request, snappy block
//! compression. Every body is encoded and compressed before the first request
//! ([`workload`]), so the generator is not what is measured.

pub mod process;
pub mod report;
pub mod run;
pub mod sender;
pub mod workload;
