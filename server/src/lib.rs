//! The Strata server: the network protocols in front of the storage engine.
//!
//! The code is laid out by protocol family. [`prom`] holds everything Prometheus: remote write
//! in, the HTTP API and PromQL out, and the stores remote write feeds. The families still to
//! come go beside it, one module each with its own router and part of the state: `loki`
//! (log push and LogQL), `otlp` (OTLP over HTTP), `tempo` and `jaeger` (trace ingest and
//! query), `alerting` (rules and notifications), `scrape` (pulling targets) and `ui`.
//!
//! What the families share lives at the top: [`state`] (the [`state::AppState`] built from
//! one part per family, and settings applied to it), [`http`] (the server's own endpoints and
//! the mounting of each family's router), [`metrics`] and [`config`]. Wire formats (protobuf
//! messages, their decoders and encoders) are in the `strata-wire` crate, which the load
//! generator and the tests use too. The `strata` binary (`main.rs`) parses the command line,
//! opens the engine, and serves it.

pub mod alerting;
pub mod config;
pub mod http;
pub mod metrics;
pub mod prom;
pub mod state;
