//! `POST /v1/logs`: OTLP log records into the log store, mapped as Loki's OTLP endpoint maps
//! them, so the same LogQL finds them.
//!
//! - The stream's labels are the resource attributes that name where a record came from
//!   (`service.name`, `service.namespace`, `service.instance.id`, `deployment.environment`,
//!   the cloud region and zone, and the Kubernetes cluster, namespace, pod, container and
//!   workload names), with `.` and other characters a label name cannot hold written `_`;
//!   `service_name` is `unknown_service` when the resource has none.
//! - The line is the body: a string as it is, any other value as JSON.
//! - Everything else is structured metadata: the other resource attributes, the scope's name
//!   (`scope_name`), version and attributes, the record's attributes, `trace_id` and `span_id`
//!   in hex, `severity_text`, `severity_number`, and `event_name`.
//! - The time is the record's, else its observed time, else the time it arrived.
//!
//! Answers: 200 with an `ExportLogsServiceResponse` in the request's format, `partial_success`
//! naming the records the store refused (too old, too large, …; the others are written and
//! durable); 400 with a `google.rpc.Status` for a body that cannot be read, 413 over the caps,
//! 415 for another content type, 503 (retryable) before the store opens or when it cannot
//! write.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use strata_engine::labels::Labels;
use strata_engine::logql::pipeline::sanitize as attribute_name;
use strata_engine::logs::{Entry, LogStore};
use strata_wire::otlp::common::{KeyValue, Status, hex};
use strata_wire::otlp::json::logs_request;
use strata_wire::otlp::logs::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};

use crate::body::{BodyError, Compression, InflateError, body_unread, inflate, read_body};
use crate::metrics::{LogProtocol, LogTally};
use crate::rate::RateLimiter;
use crate::state::{AppState, LOG_WRITES_BUSY, NOT_READY};

/// Resource attributes that become stream labels (Loki's defaults).
pub const LABEL_ATTRIBUTES: [&str; 19] = [
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
    "k8s.node.name",
];

/// The body's format, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

/// An answer in the request's format.
fn answer(format: Format, status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = match format {
        Format::Protobuf => "application/x-protobuf",
        Format::Json => "application/json",
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An error answer: a `google.rpc.Status` with `code` and `message`.
fn failure(format: Format, status: StatusCode, code: i32, message: String) -> Response {
    let body = match format {
        Format::Protobuf => Status { code, message }.encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = answer(format, status, body);
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// gRPC's codes for the `Status` body.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

/// `POST /v1/logs`.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let format = if mime.eq_ignore_ascii_case("application/x-protobuf") {
        Format::Protobuf
    } else if mime.eq_ignore_ascii_case("application/json") {
        Format::Json
    } else {
        return body_unread(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {content_type:?}: send application/x-protobuf or \
                     application/json\n"
                ),
            )
                .into_response(),
        );
    };
    let compression = match Compression::from_headers(request.headers()) {
        Ok(c) => c,
        Err(message) => {
            return body_unread(failure(
                format,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                message,
            ));
        }
    };
    let Some(store) = state.logs() else {
        return body_unread(failure(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            NOT_READY.to_owned(),
        ));
    };
    let Some(_turn) = state.log_write_turn().await else {
        return body_unread(failure(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            LOG_WRITES_BUSY.to_owned(),
        ));
    };
    let body_max = state.otlp.body_bytes_max;
    let body = match read_body(request.into_body(), body_max).await {
        Ok(body) => body,
        Err(BodyError::TooBig) => {
            return body_unread(failure(
                format,
                StatusCode::PAYLOAD_TOO_LARGE,
                RESOURCE_EXHAUSTED,
                format!("the body is larger than the {body_max} bytes allowed"),
            ));
        }
        Err(BodyError::Read(e)) => {
            return failure(
                format,
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                format!("reading the body failed: {e}"),
            );
        }
    };
    let decoded_max = state.otlp.decoded_bytes_max;
    let shared = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut tally = LogTally::default();
        let result = decode(&body, format, compression, decoded_max).and_then(|request| {
            within_rate(&shared.log_rate, &request, &mut tally)?;
            store_request(&store, request, &mut tally)
        });
        (result, tally)
    })
    .await
    .map(|(result, tally)| {
        state.metrics.logs(LogProtocol::Otlp, &tally);
        result
    });
    match outcome {
        Ok(Ok(partial)) => {
            let response = ExportLogsServiceResponse {
                partial_success: partial,
            };
            let body = match format {
                Format::Protobuf => response.encode_to_vec(),
                Format::Json => {
                    let json = match &response.partial_success {
                        None => serde_json::json!({}),
                        Some(p) => serde_json::json!({ "partialSuccess": {
                            "rejectedLogRecords": p.rejected_log_records.to_string(),
                            "errorMessage": p.error_message,
                        }}),
                    };
                    json.to_string().into_bytes()
                }
            };
            answer(format, StatusCode::OK, body)
        }
        Ok(Err((status, code, message))) => {
            if status.is_server_error() {
                tracing::warn!(%message, "OTLP logs export failed; the sender will retry");
            }
            failure(format, status, code, message)
        }
        Err(e) => {
            tracing::error!(error = %e, "OTLP logs task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// Decompresses and decodes a body.
fn decode(
    body: &[u8],
    format: Format,
    compression: Compression,
    decoded_max: usize,
) -> Result<ExportLogsServiceRequest, Failure> {
    let raw = inflate(body, compression, decoded_max).map_err(|e| match e {
        InflateError::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            e.to_string(),
        ),
        InflateError::Corrupt { .. } => (StatusCode::BAD_REQUEST, INVALID_ARGUMENT, e.to_string()),
    })?;
    match format {
        Format::Protobuf => ExportLogsServiceRequest::decode(&raw[..]).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                format!("the body is not an OTLP logs export request: {e}"),
            )
        }),
        Format::Json => logs_request(&raw).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                format!("the body is not an OTLP/JSON logs export request: {e}"),
            )
        }),
    }
}

/// Takes the request's bytes (bodies and attributes, roughly what will be stored) from the
/// ingestion rate, or refuses it whole with 429 and `Retry-After`, which OTLP senders retry.
fn within_rate(
    limiter: &RateLimiter,
    request: &ExportLogsServiceRequest,
    tally: &mut LogTally,
) -> Result<(), Failure> {
    let records = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records);
    let (n, bytes) = records.fold((0u64, 0u64), |(n, b), r| {
        (n + 1, b + r.encoded_len() as u64)
    });
    limiter.take(bytes).map_err(|wait| {
        tally.reject("rate_limit", n);
        (
            StatusCode::TOO_MANY_REQUESTS,
            RESOURCE_EXHAUSTED,
            format!(
                "ingestion rate limit exceeded (limit: {} bytes/s) while adding {n} records of \
                 {bytes} bytes; retry in {:.1} s",
                limiter.rate(),
                wait.as_secs_f64()
            ),
        )
    })
}

/// The most refusals named in a partial success; the rest are counted.
const REFUSALS_SHOWN: usize = 5;

type Failure = (StatusCode, i32, String);

/// Maps and appends every record, then commits: `Ok(None)` when all were written,
/// `Ok(Some(partial))` naming those refused (the others written), `Err` when the commit failed
/// (nothing written).
fn store_request(
    store: &LogStore,
    request: ExportLogsServiceRequest,
    tally: &mut LogTally,
) -> Result<Option<ExportLogsPartialSuccess>, Failure> {
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut appender = store.appender();
    let (mut pending, mut pending_bytes) = (0u64, 0u64);
    let (mut refused, mut messages) = (0i64, Vec::new());
    for rl in request.resource_logs {
        let resource_attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut resource_metadata: Vec<(String, String)> = Vec::new();
        for kv in &resource_attrs {
            let value = kv.value.as_ref().map(|v| v.to_text()).unwrap_or_default();
            if LABEL_ATTRIBUTES.contains(&kv.key.as_str()) {
                labels.insert(attribute_name(&kv.key), value);
            } else {
                resource_metadata.push((attribute_name(&kv.key), value));
            }
        }
        labels
            .entry("service_name".to_owned())
            .or_insert_with(|| "unknown_service".to_owned());
        let labels = match Labels::new(&labels) {
            Ok(l) => l,
            Err(e) => {
                let n: usize = rl.scope_logs.iter().map(|s| s.log_records.len()).sum();
                refused += n as i64;
                tally.reject("invalid_labels", n as u64);
                messages.push(format!("{n} records refused: invalid resource labels: {e}"));
                continue;
            }
        };
        for sl in rl.scope_logs {
            let mut scope_metadata = Vec::new();
            if let Some(scope) = &sl.scope {
                if !scope.name.is_empty() {
                    scope_metadata.push(("scope_name".to_owned(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_metadata.push(("scope_version".to_owned(), scope.version.clone()));
                }
                push_attributes(&mut scope_metadata, &scope.attributes);
            }
            for record in sl.log_records {
                let ts_ns = [record.time_unix_nano, record.observed_time_unix_nano]
                    .into_iter()
                    .find(|&t| t != 0)
                    .map_or(now_ns, |t| i64::try_from(t).unwrap_or(i64::MAX));
                let mut metadata = resource_metadata.clone();
                metadata.extend(scope_metadata.iter().cloned());
                push_attributes(&mut metadata, &record.attributes);
                if !record.trace_id.is_empty() {
                    metadata.push(("trace_id".to_owned(), hex(&record.trace_id)));
                }
                if !record.span_id.is_empty() {
                    metadata.push(("span_id".to_owned(), hex(&record.span_id)));
                }
                if !record.severity_text.is_empty() {
                    metadata.push(("severity_text".to_owned(), record.severity_text.clone()));
                }
                if record.severity_number != 0 {
                    metadata.push((
                        "severity_number".to_owned(),
                        record.severity_number.to_string(),
                    ));
                }
                if !record.event_name.is_empty() {
                    metadata.push(("event_name".to_owned(), record.event_name.clone()));
                }
                metadata.retain(|(_, v)| !v.is_empty());
                let entry = Entry {
                    ts_ns,
                    line: record.body.map(|b| b.to_text()).unwrap_or_default(),
                    metadata,
                };
                let bytes = entry.bytes() as u64;
                if let Err(e) = appender.append(&labels, entry) {
                    tally.reject(e.reason(), 1);
                    refused += 1;
                    if messages.len() < REFUSALS_SHOWN {
                        messages.push(format!("stream {labels}: {e}"));
                    }
                } else {
                    pending += 1;
                    pending_bytes += bytes;
                }
            }
        }
    }
    appender.commit().map_err(|e| {
        tally.reject("unavailable", pending);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE,
            format!("writing the records failed, none were stored; retry: {e}"),
        )
    })?;
    tally.stored += pending;
    tally.bytes += pending_bytes;
    if refused == 0 {
        return Ok(None);
    }
    Ok(Some(ExportLogsPartialSuccess {
        rejected_log_records: refused,
        error_message: messages.join("; "),
    }))
}

fn push_attributes(out: &mut Vec<(String, String)>, attributes: &[KeyValue]) {
    for kv in attributes {
        let value = kv.value.as_ref().map(|v| v.to_text()).unwrap_or_default();
        out.push((attribute_name(&kv.key), value));
    }
}
