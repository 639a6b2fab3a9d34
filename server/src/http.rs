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

use crate::api;
use crate::exemplars::ExemplarStore;
use crate::metadata::{MetadataLimits, MetadataStore};
use crate::remote_write::{self, Limits, Rejection, Sinks, Version, Written};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Set once the engine has opened (its WAL replayed); until then the server is not ready.
    pub db: OnceLock<Arc<Db>>,
    /// Remote-write request limits.
    pub write_limits: Limits,
    /// Metric metadata senders reported.
    pub metadata: MetadataStore,
    /// Recent exemplars.
    pub exemplars: ExemplarStore,
    /// Whether `/api/v1/admin/*` may be used.
    pub admin_api: bool,
}

impl AppState {
    /// A state whose engine is still opening, with default stores and the admin API off.
    pub fn new(write_limits: Limits) -> Arc<AppState> {
        Arc::new(AppState {
            db: OnceLock::new(),
            write_limits,
            metadata: MetadataStore::new(MetadataLimits::default()),
            exemplars: ExemplarStore::new(100_000),
            admin_api: false,
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

/// The protocol a remote-write `Content-Type` names: 1.0 without a `proto` parameter or with
/// `proto=prometheus.WriteRequest`, 2.0 with `proto=io.prometheus.write.v2.Request`.
fn remote_write_version(content_type: &str) -> Result<Version, String> {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(format!(
            "Content-Type {content_type:?} is not remote write: send application/x-protobuf"
        ));
    }
    let mut version = Version::V1;
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=") {
            version = match proto.trim_matches('"') {
                "prometheus.WriteRequest" => Version::V1,
                "io.prometheus.write.v2.Request" => Version::V2,
                other => {
                    return Err(format!(
                        "remote-write message {other:?} is not supported; send prometheus.WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)"
                    ));
                }
            };
        }
    }
    Ok(version)
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
    let version = match remote_write_version(content_type) {
        Ok(v) => v,
        Err(message) => {
            return written_headers(
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response(),
                Written::default(),
            );
        }
    };
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
    let shared = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        match remote_write::decode_version(&body, version, &limits) {
            Ok(request) => {
                let sinks = Sinks {
                    metadata: &shared.metadata,
                    exemplars: &shared.exemplars,
                };
                remote_write::ingest(&db, &request, &limits, sinks)
            }
            Err(rejection) => (Written::default(), Err(rejection)),
        }
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
