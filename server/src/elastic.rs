//! Elasticsearch's bulk API (`POST /_bulk`, `POST /{index}/_bulk`), so that shippers in
//! Elasticsearch mode (Fluent Bit's `es` output, Vector's `elasticsearch` sink, Logstash) can
//! send their logs to the log store unchanged. [`bulk`] has the mapping; [`probe`] answers
//! what those clients ask first (the version at `/`, the license, index templates). Every
//! answer carries `X-Elastic-Product: Elasticsearch`, without which Elastic's clients stop.

pub mod bulk;
pub mod probe;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{get, post};

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
        .route("/", get(probe::root))
        .route("/_license", get(probe::license))
        .route(
            "/_index_template/{name}",
            get(probe::template_missing)
                .put(probe::template_put)
                .post(probe::template_put),
        )
        .route(
            "/_template/{name}",
            get(probe::template_missing)
                .put(probe::template_put)
                .post(probe::template_put),
        )
        .layer(axum::middleware::map_response(product_header))
}

async fn product_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}
