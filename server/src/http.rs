//! The HTTP application: routes, and the mapping from engine outcomes to statuses.
//!
//! Engine calls block (a commit waits for its fsync) or take CPU, so they run on tokio's
//! blocking pool, never on the request-handling threads.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strata_engine::Db;

use crate::remote_write::{self, Limits, Rejection, Written};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Set once the engine has opened (its WAL replayed); until then the server is not ready.
    pub db: OnceLock<Arc<Db>>,
    /// Remote-write request limits.
    pub write_limits: Limits,
}

impl AppState {
    /// A state whose engine is still opening.
    pub fn new(write_limits: Limits) -> Arc<AppState> {
        Arc::new(AppState {
            db: OnceLock::new(),
            write_limits,
        })
    }
}

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let body_max = state.write_limits.body_bytes_max;
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route(
            "/api/v1/write",
            post(remote_write_handler).layer(DefaultBodyLimit::max(body_max)),
        )
        .with_state(state)
}

async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.db.get().is_some() {
        "Strata is Ready.\n".into_response()
    } else {
        not_ready()
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "Strata is not ready: the write-ahead log is being replayed.\n",
    )
        .into_response()
}

/// The `Content-Type` of a remote-write 1.0 request, with or without its `proto` parameter.
fn is_remote_write_v1(content_type: &str) -> Result<(), String> {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(format!(
            "Content-Type {content_type:?} is not remote write: send application/x-protobuf"
        ));
    }
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=") {
            let proto = proto.trim_matches('"');
            if proto != "prometheus.WriteRequest" {
                return Err(format!(
                    "remote-write message {proto:?} is not supported; send prometheus.WriteRequest (remote write 1.0)"
                ));
            }
        }
    }
    Ok(())
}

async fn remote_write_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(db) = state.db.get().cloned() else {
        return not_ready();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(message) = is_remote_write_v1(content_type) {
        return written_headers(
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response(),
            Written::default(),
        );
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"snappy")
    {
        return written_headers(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be snappy (block format)",
            )
                .into_response(),
            Written::default(),
        );
    }
    let limits = state.write_limits;
    let outcome = tokio::task::spawn_blocking(move || match remote_write::decode(&body, &limits) {
        Ok(request) => remote_write::ingest(&db, &request, &limits),
        Err(rejection) => (Written::default(), Err(rejection)),
    })
    .await;
    match outcome {
        Ok((written, Ok(()))) => written_headers(StatusCode::NO_CONTENT.into_response(), written),
        Ok((written, Err(rejection))) => {
            let status = match &rejection {
                Rejection::BadData(_) => StatusCode::BAD_REQUEST,
                Rejection::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            if status.is_server_error() {
                tracing::warn!(%rejection, "remote write failed; the sender will retry");
            } else {
                tracing::debug!(%rejection, "remote write rejected");
            }
            written_headers((status, format!("{rejection}\n")).into_response(), written)
        }
        Err(e) => {
            tracing::error!(error = %e, "remote write task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// Adds the counts remote write 2.0 senders expect on every response (harmless for 1.0).
fn written_headers(mut response: Response, written: Written) -> Response {
    let h = response.headers_mut();
    for (name, n) in [
        ("x-prometheus-remote-write-samples-written", written.samples),
        (
            "x-prometheus-remote-write-histograms-written",
            written.histograms,
        ),
        (
            "x-prometheus-remote-write-exemplars-written",
            written.exemplars,
        ),
    ] {
        h.insert(name, HeaderValue::from(n));
    }
    response
}
