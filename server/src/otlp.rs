//! OTLP over HTTP: `POST /v1/logs` (also at Loki's path, `/otlp/v1/logs`) into the log store,
//! protobuf or JSON, gzip or deflate around either. Traces and metrics come with their stores.
//! [`state`] holds the family's caps.

pub mod logs;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

use crate::state::AppState;

/// The OTLP routes, to be given the shared state by the caller.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        // The handler reads the body itself, within its cap.
        .route(
            "/v1/logs",
            post(logs::handle).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/otlp/v1/logs",
            post(logs::handle).layer(DefaultBodyLimit::disable()),
        )
}
