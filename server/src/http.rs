//! The HTTP application: the server's own endpoints (health, readiness, reload, `/metrics`),
//! each protocol family's router mounted beside them, and the middleware that counts and times
//! every routed request.
//!
//! Engine calls block (a commit waits for its fsync) or take CPU, so they run on tokio's
//! blocking pool, never on the request-handling threads.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::{AppState, NOT_READY};
use crate::{alerting, elastic, loki, otlp, prom};

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .merge(prom::router())
        .merge(alerting::api::router())
        .merge(loki::router())
        .merge(otlp::router())
        .merge(elastic::router())
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            track_request,
        ))
        .with_state(state)
}

/// Counts every routed request by handler and status, and times it.
async fn track_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .request(&handler, response.status().as_u16(), started.elapsed());
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let db = state.db();
    let shared = Arc::clone(&state);
    // Engine statistics walk every series: off the request threads.
    let text = tokio::task::spawn_blocking(move || {
        let stats = db.map(|db| db.stats());
        let (known_series, known_series_bytes) = shared.prom.known.footprint();
        let stores = crate::metrics::StoreSizes {
            exemplars: shared.prom.exemplars.len(),
            metadata: shared.prom.metadata.len(),
            known_series,
            known_series_bytes,
        };
        let logs = shared.logs().map(|store| {
            let (streams, head_entries, head_bytes) = store.stats();
            let (blocks, block_bytes) = store.block_stats();
            let pages = store.page_stats();
            crate::metrics::LogFigures {
                streams,
                head_entries,
                head_bytes,
                blocks,
                block_bytes,
                compaction_due: store.compaction_due(),
                pages_read: pages.read,
                pages_skipped: pages.skipped,
                page_bytes_read: pages.bytes_read,
            }
        });
        shared.metrics.render(
            stats.as_ref(),
            logs.as_ref(),
            stores,
            &shared.alerting.figures(),
            &shared.alerting.alertmanager.figures(),
            &shared.alerting.dispatcher.figures(),
        )
    })
    .await;
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    let Some(reloader) = state.reloader.get() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "nothing to reload: Strata was started without --config\n",
        )
            .into_response();
    };
    match reloader() {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.db.get().is_some() {
        "Strata is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{NOT_READY}.\n")).into_response()
    }
}
