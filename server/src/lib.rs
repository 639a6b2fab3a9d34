//! The Strata server: the HTTP APIs in front of the storage engine.
//!
//! [`http::router`] builds the axum application over an [`http::AppState`]; the `strata`
//! binary (`main.rs`) parses the command line, opens the engine, and serves it.

pub mod api;
pub mod config;
pub mod exemplars;
pub mod http;
pub mod metadata;
pub mod metrics;
pub mod remote_write;
