//! The HTTP application: routes, and the mapping from engine outcomes to statuses.
//!
//! Engine calls block (a commit waits for its fsync) or take CPU, so they run on tokio's
//! blocking pool, never on the request-handling threads.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strata_engine::Db;
use tokio::sync::Semaphore;

use crate::api;
use crate::api::query::QueryLimits;
use crate::exemplars::ExemplarStore;
use crate::metadata::{MetadataLimits, MetadataStore};
use crate::metrics::{Metrics, RejectReason};
use crate::remote_write::{self, Limits, Rejection, Sinks, Version, Written};

/// Back-pressure on remote write: at most `in_flight_max` requests are read, decoded and
/// stored at once; more wait for a turn for at most `queue_wait`, then get 503 so the sender
/// backs off and retries. Memory for requests is bounded by the first times the size caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backpressure {
    pub in_flight_max: usize,
    pub queue_wait: Duration,
}

impl Default for Backpressure {
    fn default() -> Backpressure {
        Backpressure {
            in_flight_max: 64,
            queue_wait: Duration::from_secs(10),
        }
    }
}

/// Re-reads the configuration and applies it; `Err` says why nothing changed.
pub type Reloader = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What every handler shares.
pub struct AppState {
    /// Set once the engine has opened (its WAL replayed); until then the server is not ready.
    pub db: OnceLock<Arc<Db>>,
    /// Remote-write request limits (replaced on reload).
    pub write_limits: RwLock<Limits>,
    /// Metric metadata senders reported.
    pub metadata: MetadataStore,
    /// Recent exemplars.
    pub exemplars: ExemplarStore,
    /// Whether `/api/v1/admin/*` may be used (changed on reload).
    pub admin_api: AtomicBool,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Turns for remote-write requests.
    pub writes: Semaphore,
    /// How long a remote-write request waits for a turn.
    pub write_queue_wait: Duration,
    /// What `POST /-/reload` runs (set by the binary when it has a configuration to re-read).
    pub reloader: OnceLock<Reloader>,
    /// PromQL query limits (replaced on reload, but for the concurrency).
    pub query_limits: RwLock<QueryLimits>,
    /// Turns for queries.
    pub queries: Semaphore,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("ready", &self.db.get().is_some())
            .field("write_limits", &self.write_limits)
            .field("admin_api", &self.admin_api)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state whose engine is still opening, with default stores and the admin API off.
    pub fn new(write_limits: Limits) -> Arc<AppState> {
        AppState::with_stores(
            write_limits,
            MetadataStore::new(MetadataLimits::default()),
            ExemplarStore::new(100_000),
            Backpressure::default(),
            QueryLimits::default(),
        )
    }

    /// A state with the given stores and back-pressure.
    pub fn with_stores(
        write_limits: Limits,
        metadata: MetadataStore,
        exemplars: ExemplarStore,
        backpressure: Backpressure,
        query_limits: QueryLimits,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            db: OnceLock::new(),
            write_limits: RwLock::new(write_limits),
            metadata,
            exemplars,
            admin_api: AtomicBool::new(false),
            metrics: Metrics::default(),
            writes: Semaphore::new(backpressure.in_flight_max),
            write_queue_wait: backpressure.queue_wait,
            reloader: OnceLock::new(),
            queries: Semaphore::new(query_limits.max_concurrency),
            query_limits: RwLock::new(query_limits),
        })
    }

    /// The current query limits.
    pub fn query_limits(&self) -> QueryLimits {
        *self.query_limits.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The current remote-write limits.
    pub fn write_limits(&self) -> Limits {
        *self.write_limits.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/write",
            // The handler reads the body itself, within the limit current at the time.
            post(remote_write_handler).layer(DefaultBodyLimit::disable()),
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
    let db = state.db.get().cloned();
    let shared = Arc::clone(&state);
    // Engine statistics walk every series: off the request threads.
    let text = tokio::task::spawn_blocking(move || {
        let stats = db.map(|db| db.stats());
        shared.metrics.render(
            stats.as_ref(),
            shared.exemplars.len(),
            shared.metadata.len(),
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

async fn remote_write_handler(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(db) = state.db.get().cloned() else {
        return body_unread(not_ready());
    };
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let version = match remote_write_version(content_type) {
        Ok(v) => v,
        Err(message) => {
            return body_unread(written_headers(
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response(),
                Written::default(),
            ));
        }
    };
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"snappy")
    {
        return body_unread(written_headers(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be snappy (block format)",
            )
                .into_response(),
            Written::default(),
        ));
    }
    // Back-pressure: a bounded number of requests are read, decoded and stored at once; the
    // others wait here, their bodies unread, and give up with a 503 the sender retries.
    let Ok(Ok(_turn)) = tokio::time::timeout(state.write_queue_wait, state.writes.acquire()).await
    else {
        return body_unread(written_headers(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many remote-write requests in flight; retry later\n",
            )
                .into_response(),
            Written::default(),
        ));
    };
    let limits = state.write_limits();
    let body = match axum::body::to_bytes(request.into_body(), limits.body_bytes_max).await {
        Ok(body) => body,
        Err(e) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let (status, message) = if too_big {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body is larger than the {} bytes allowed\n",
                        limits.body_bytes_max
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {e}\n"),
                )
            };
            return body_unread(written_headers(
                (status, message).into_response(),
                Written::default(),
            ));
        }
    };
    let shared = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        let sinks = Sinks {
            metadata: &shared.metadata,
            exemplars: &shared.exemplars,
        };
        remote_write::receive(&db, &body, version, &limits, sinks)
    })
    .await;
    let metrics = &state.metrics;
    match outcome {
        Ok((written, result)) => {
            metrics.ingested(written.samples, written.exemplars);
            metrics.rejected(RejectReason::NativeHistogram, written.rejected_histograms);
            let Err(rejection) = result else {
                return written_headers(StatusCode::NO_CONTENT.into_response(), written);
            };
            let (status, reason) = match &rejection {
                Rejection::BadData(_) => (StatusCode::BAD_REQUEST, RejectReason::BadData),
                Rejection::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, RejectReason::SeriesLimit),
                Rejection::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, RejectReason::Unavailable)
                }
            };
            metrics.rejected(reason, written.rejected_samples);
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

/// Marks a response sent before the request body was read: the connection closes after it
/// (the unread body cannot be skipped), and saying so lets the client open a new one instead
/// of failing its next request on this one.
fn body_unread(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
