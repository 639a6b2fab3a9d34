//! Loki's protocols, over the engine's log store: the push API in ([`push`]: protobuf with
//! snappy, JSON, either gzipped) and the query API out ([`query`]: log queries in LogQL,
//! label names and values), in the shapes Grafana's Loki data source and Loki's clients
//! expect; [`index`] the stats and volume Grafana asks for beside its queries; [`detect`] the
//! labels and fields its Logs Drilldown app lists; [`tail`] live tail over a WebSocket. [`state`]
//! holds the family's part of the server's state.

pub mod detect;
pub mod index;
pub mod push;
pub mod query;
pub mod state;
pub mod tail;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

/// The Loki routes, to be given the shared state by the caller.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/loki/api/v1/push",
            // The handler reads the body itself, within its cap.
            post(push::handle).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/loki/api/v1/query_range",
            get(query::range).post(query::range),
        )
        .route(
            "/loki/api/v1/query",
            get(query::instant).post(query::instant),
        )
        .route(
            "/loki/api/v1/labels",
            get(query::label_names).post(query::label_names),
        )
        .route(
            "/loki/api/v1/label/{name}/values",
            get(query::label_values).post(query::label_values),
        )
        .route(
            "/loki/api/v1/series",
            get(query::series).post(query::series),
        )
        .route("/loki/api/v1/status/buildinfo", get(query::buildinfo))
        .route("/loki/api/v1/tail", get(tail::tail))
        .route(
            "/loki/api/v1/index/stats",
            get(index::stats).post(index::stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(index::volume).post(index::volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(index::volume_range).post(index::volume_range),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(detect::labels).post(detect::labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(detect::fields).post(detect::fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detect::field_values).post(detect::field_values),
        )
        .route(
            "/loki/api/v1/patterns",
            get(detect::patterns).post(detect::patterns),
        )
}
