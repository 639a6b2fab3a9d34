//! The load generator behind `strata-bench`: workloads ([`scenario`]), load shapes
//! ([`schedule`]), the run itself ([`run`]) with its measurements ([`stats`]), what the
//! measurements say ([`analysis`]), the target's memory ([`target`]) and one connection per
//! worker ([`client`]).
//!
//! Nothing here knows which system it loads: remote write and the Prometheus query API are
//! spoken the same way to Strata, Prometheus, VictoriaMetrics or anything compatible, and the
//! `http` scenario loads any HTTP service.

pub mod analysis;
pub mod client;
pub mod null;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod selfmetrics;
pub mod stats;
pub mod target;
pub mod verify;
