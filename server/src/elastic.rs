//! Elasticsearch's bulk API (`POST /_bulk`, `POST /{index}/_bulk`), so that shippers in
//! Elasticsearch mode (Fluent Bit's `es` output, Vector's `elasticsearch` sink, Logstash) can
//! send their logs to the log store unchanged. [`bulk`] has the mapping.

pub mod bulk;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

use crate::state::AppState;

/// The Elasticsearch routes, to be given the shared state by the caller.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        // The handler reads the body itself, within its cap.
        .route(
            "/_bulk",
            post(bulk::handle)
                .put(bulk::handle)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/{index}/_bulk",
            post(bulk::handle_index)
                .put(bulk::handle_index)
                .layer(DefaultBodyLimit::disable()),
        )
}
