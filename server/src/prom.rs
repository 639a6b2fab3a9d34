//! Prometheus's protocols: remote write in ([`remote_write`]: 1.0 and 2.0, ingested into the
//! engine), the HTTP API out ([`api`]: series, labels, metadata, exemplars, status, admin, and
//! PromQL in [`api::query`]), the metadata and exemplar stores remote write feeds, and the JSON
//! the API answers in ([`json`]).
//!
//! [`router`] holds every route of the family; the top-level router (`crate::http`) mounts it.
//! The other protocol families go beside this module the same way, each with its router and
//! its part of the state.

pub mod api;
pub mod error;
pub mod exemplars;
pub mod json;
pub mod limits;
pub mod metadata;
pub mod remote_write;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

/// Remote write and the HTTP API, to be given the shared state by the caller.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/write",
            // The handler reads the body itself, within the limit current at the time.
            post(remote_write::handle).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/query",
            get(api::query::instant).post(api::query::instant),
        )
        .route(
            "/api/v1/query_range",
            get(api::query::range).post(api::query::range),
        )
        .route(
            "/api/v1/format_query",
            get(api::query::format).post(api::query::format),
        )
        .route(
            "/api/v1/parse_query",
            get(api::query::parse).post(api::query::parse),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route(
            "/api/v1/labels",
            get(api::label_names).post(api::label_names),
        )
        .route(
            "/api/v1/label/{name}/values",
            get(api::label_values).post(api::label_values),
        )
        .route("/api/v1/metadata", get(api::metadata).post(api::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(api::query_exemplars).post(api::query_exemplars),
        )
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/status/tsdb", get(api::tsdb_status))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(api::delete_series).put(api::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(api::snapshot).put(api::snapshot),
        )
}
