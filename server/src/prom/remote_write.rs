//! Prometheus remote write over HTTP (`POST /api/v1/write`): content negotiation (1.0 or 2.0,
//! snappy), back-pressure (a bounded number of requests in flight, then a bounded wait, then
//! 503), the body read within the current cap, and the outcome of [`ingest`] mapped to the
//! status and the written-count headers a sender expects.

pub mod ingest;
pub mod known;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::body::{BodyError, body_unread, read_body};
use crate::metrics::RejectReason;
use crate::prom::remote_write::ingest::{Rejection, Sinks, Version, Written};
use crate::state::{AppState, NOT_READY};

/// Why a request's headers do not name a remote-write protocol Strata speaks (415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The media type is not protobuf.
    #[error("Content-Type {0:?} is not remote write: send application/x-protobuf")]
    NotProtobuf(String),
    /// The `proto` parameter names a message of another version.
    #[error(
        "remote-write message {0:?} is not supported; send prometheus.WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)"
    )]
    UnknownMessage(String),
    /// The body is compressed some other way.
    #[error("Content-Encoding must be snappy (block format)")]
    NotSnappy,
}

/// The protocol a remote-write `Content-Type` names: 1.0 without a `proto` parameter or with
/// `proto=prometheus.WriteRequest`, 2.0 with `proto=io.prometheus.write.v2.Request`.
pub fn version(content_type: &str) -> Result<Version, NegotiationError> {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(NegotiationError::NotProtobuf(content_type.to_owned()));
    }
    let mut version = Version::V1;
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=") {
            version = match proto.trim_matches('"') {
                "prometheus.WriteRequest" => Version::V1,
                "io.prometheus.write.v2.Request" => Version::V2,
                other => return Err(NegotiationError::UnknownMessage(other.to_owned())),
            };
        }
    }
    Ok(version)
}

/// The protocol of a request, from its `Content-Type` and `Content-Encoding`.
fn negotiate(headers: &HeaderMap) -> Result<Version, NegotiationError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let version = version(content_type)?;
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"snappy")
    {
        return Err(NegotiationError::NotSnappy);
    }
    Ok(version)
}

/// `POST /api/v1/write`.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(db) = state.db() else {
        return body_unread(
            (StatusCode::SERVICE_UNAVAILABLE, format!("{NOT_READY}.\n")).into_response(),
        );
    };
    let version = match negotiate(request.headers()) {
        Ok(v) => v,
        Err(e) => {
            return body_unread(written_headers(
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()).into_response(),
                Written::default(),
            ));
        }
    };
    // Back-pressure: a bounded number of requests are read, decoded and stored at once; the
    // others wait here, their bodies unread, and give up with a 503 the sender retries.
    let Ok(Ok(_turn)) =
        tokio::time::timeout(state.prom.write_queue_wait, state.prom.writes.acquire()).await
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
    let limits = state.prom.write_limits();
    let body = match read_body(request.into_body(), limits.body_bytes_max).await {
        Ok(body) => body,
        Err(e) => {
            let (status, message) = match e {
                BodyError::TooBig => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the body is larger than the {} bytes allowed\n",
                        limits.body_bytes_max
                    ),
                ),
                BodyError::Read(e) => (
                    StatusCode::BAD_REQUEST,
                    format!("reading the body failed: {e}\n"),
                ),
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
            metadata: &shared.prom.metadata,
            exemplars: &shared.prom.exemplars,
            known: &shared.prom.known,
        };
        ingest::receive(&db, &body, version, &limits, sinks)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content_type: &str, want: Result<Version, NegotiationError>) {
        assert_eq!(version(content_type), want, "{content_type:?}");
    }

    #[test]
    fn the_content_type_names_the_version() {
        check("application/x-protobuf", Ok(Version::V1));
        check(
            "Application/X-Protobuf; proto=prometheus.WriteRequest",
            Ok(Version::V1),
        );
        check(
            "application/x-protobuf;proto=\"io.prometheus.write.v2.Request\"",
            Ok(Version::V2),
        );
        check(
            "text/plain",
            Err(NegotiationError::NotProtobuf("text/plain".into())),
        );
        check("", Err(NegotiationError::NotProtobuf(String::new())));
        check(
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            Err(NegotiationError::UnknownMessage(
                "io.prometheus.write.v3.Request".into(),
            )),
        );
        assert_eq!(
            NegotiationError::NotProtobuf("text/plain".into()).to_string(),
            "Content-Type \"text/plain\" is not remote write: send application/x-protobuf"
        );
    }
}
