//! The Strata server: the network protocols in front of the storage engine.
//!
//! The code is laid out by protocol family. [`prom`] holds everything Prometheus: remote write
//! in, the HTTP API and PromQL out, and the stores remote write feeds. [`loki`] holds log push
//! and LogQL over the log store, [`otlp`] OTLP over HTTP (logs so far), [`elastic`] Elasticsearch's bulk API into the
//! log store, [`alerting`] the rules
//! and notifications. The families still to come go beside them, one module each with its own
//! router and part of the state: `tempo` and `jaeger` (trace ingest and
//! query), `scrape` (pulling targets) and `ui`.
//!
//! What the families share lives at the top: [`state`] (the [`state::AppState`] built from
//! one part per family, and settings applied to it), [`http`] (the server's own endpoints and
//! the mounting of each family's router), [`body`] (reading request bodies within a cap), [`rate`] (a byte rate limiter), [`metrics`] and [`config`]. Wire formats (protobuf
//! messages, their decoders and encoders) are in the `strata-wire` crate, which the load
//! generator and the tests use too. The `strata` binary (`main.rs`) parses the command line,
//! opens the engine, and serves it.

pub mod alerting;
pub mod body;
pub mod config;
pub mod elastic;
pub mod http;
pub mod loki;
pub mod metrics;
pub mod otlp;
pub mod prom;
pub mod rate;
pub mod state;
