//! What Elasticsearch clients ask before they send: the cluster's identity at `GET /` (Vector's
//! `elasticsearch` sink with `api_version: auto` and Logstash read the major version from it,
//! and Elastic's own clients refuse a server whose answers lack the
//! `X-Elastic-Product: Elasticsearch` header, which [`super::router`] adds to every answer),
//! the license Logstash checks, and the index templates Logstash installs. Strata keeps no
//! templates: asking for one answers 404, installing one is acknowledged and has no effect
//! (entries are stored as `_bulk` maps them, whatever a template says).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The Elasticsearch version Strata answers as: the API `_bulk` speaks is 8.x's.
pub const COMPATIBLE_VERSION: &str = "8.11.0";

/// `GET|HEAD /`: the cluster's identity, for clients that do not ask for a web page (a
/// browser's `Accept: text/html` gets a 404 here, the built-in web UI's place).
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({
        "name": "strata",
        "cluster_name": "strata",
        "cluster_uuid": "strata",
        "version": {
            "number": COMPATIBLE_VERSION,
            "build_flavor": "default",
            "build_type": "strata",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "Strata's log store, answering Elasticsearch's bulk API",
    }))
    .into_response()
}

/// `GET /_license`: an active basic license (Logstash warns and retries without one).
pub async fn license() -> Response {
    axum::Json(json!({
        "license": { "status": "active", "type": "basic", "uid": "strata", "issued_to": "strata" }
    }))
    .into_response()
}

/// `GET|HEAD /_index_template/{name}` and `/_template/{name}`: no template is kept.
pub async fn template_missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": { "type": "resource_not_found_exception",
                       "reason": "Strata keeps no index templates" },
            "status": 404
        })),
    )
        .into_response()
}

/// `PUT|POST /_index_template/{name}` and `/_template/{name}`: acknowledged, not kept.
pub async fn template_put() -> Response {
    axum::Json(json!({ "acknowledged": true })).into_response()
}
