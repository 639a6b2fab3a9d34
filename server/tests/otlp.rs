//! OTLP logs over HTTP in process: protobuf and JSON (gzipped too) into the log store, mapped
//! as Loki maps them, read back through LogQL; partial success and refusals.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use serde_json::{Value, json};
use strata_wire::otlp::common::{AnyValue, InstrumentationScope, KeyValue, Resource, Status};
use strata_wire::otlp::logs::{
    ExportLogsServiceRequest, ExportLogsServiceResponse, LogRecord, ResourceLogs, ScopeLogs,
};
use support::{Server, now_ms};

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue::string(value)),
    }
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "checkout"),
                    attr("k8s.pod.name", "checkout-1"),
                    attr("host.arch", "amd64"),
                ],
                dropped_attributes_count: 0,
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "app.logger".into(),
                    version: "2.1".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn record(ts_ns: i64, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: ts_ns as u64,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(AnyValue::string(body)),
        attributes: vec![attr("http.route", "/pay")],
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        ..LogRecord::default()
    }
}

async fn post(
    server: &Server,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::post("/v1/logs").header("content-type", content_type);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let response = strata_server::http::router(std::sync::Arc::clone(&server.state))
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

use tower::ServiceExt;

/// The entries of `{service_name="checkout"}`, oldest first, as `(ns, line, metadata)`.
async fn stored(server: &Server) -> (Value, Vec<(String, String, Value)>) {
    let (status, body, _) = server
        .send(
            Request::get(format!(
                "/loki/api/v1/query_range?direction=forward&start={}&query={}",
                (now_ms() - 3_600_000) * 1_000_000,
                form_urlencoded::byte_serialize(br#"{service_name="checkout"}"#)
                    .collect::<String>()
            ))
            .header("x-loki-response-encoding-flags", "categorize-labels")
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let stream = &answer["data"]["result"][0];
    let entries = stream["values"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e[0].as_str().unwrap().to_owned(),
                        e[1].as_str().unwrap().to_owned(),
                        e[2]["structuredMetadata"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (stream["stream"].clone(), entries)
}

#[tokio::test]
async fn protobuf_records_land_as_loki_maps_them() {
    let server = Server::start().with_logs();
    let t = now_ms() * 1_000_000 - 1_000_000_000;
    let body = request(vec![
        record(t, "payment declined"),
        record(t + 1, "retrying"),
    ])
    .encode_to_vec();
    let (status, answer) = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ExportLogsServiceResponse::decode(&answer[..]).unwrap(),
        ExportLogsServiceResponse::default(),
        "partial_success unset when every record was taken"
    );
    let (labels, entries) = stored(&server).await;
    assert_eq!(
        labels,
        json!({"k8s_pod_name": "checkout-1", "service_name": "checkout"})
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].0, t.to_string());
    assert_eq!(entries[0].1, "payment declined");
    assert_eq!(
        entries[0].2,
        json!({
            "host_arch": "amd64",
            "scope_name": "app.logger",
            "scope_version": "2.1",
            "http_route": "/pay",
            "trace_id": "ab".repeat(16),
            "span_id": "cd".repeat(8),
            "severity_text": "ERROR",
            "severity_number": "17",
        })
    );
}

#[tokio::test]
async fn gzipped_json_records_are_read_and_answered_in_json() {
    use std::io::Write;
    let server = Server::start().with_logs();
    let t = now_ms() * 1_000_000 - 1_000_000_000;
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": t.to_string(), "body": {"stringValue": "from json"},
             "traceId": "0102030405060708090a0b0c0d0e0f10"},
            {"timeUnixNano": (t + 1).to_string(),
             "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "3"}}]}}}
        ]}]
    }]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.to_string().as_bytes()).unwrap();
    let (status, answer) = post(
        &server,
        "application/json",
        Some("gzip"),
        gz.finish().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap(), json!({}));
    let (labels, entries) = stored(&server).await;
    assert_eq!(labels, json!({"service_name": "checkout"}));
    let lines: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        lines,
        ["from json", r#"{"k":3}"#],
        "a body that is not a string, as JSON"
    );
    assert_eq!(entries[0].2["trace_id"], "0102030405060708090a0b0c0d0e0f10");
}

#[tokio::test]
async fn refused_records_are_a_partial_success_and_the_others_are_kept() {
    let server = Server::start().with_logs();
    let now = now_ms() * 1_000_000;
    let ancient = now - 30 * 24 * 3_600 * 1_000_000_000;
    let body = request(vec![record(now - 5, "kept"), record(ancient, "too old")]).encode_to_vec();
    let (status, answer) = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportLogsServiceResponse::decode(&answer[..])
        .unwrap()
        .partial_success
        .expect("a partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("too old"),
        "{}",
        partial.error_message
    );
    let (_, entries) = stored(&server).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, "kept");
}

#[tokio::test]
async fn unreadable_bodies_get_a_status_in_the_request_s_format() {
    let server = Server::start().with_logs();
    let (status, answer) = post(
        &server,
        "application/x-protobuf",
        None,
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let s = Status::decode(&answer[..]).unwrap();
    assert_eq!(s.code, 3);
    assert!(
        s.message.contains("not an OTLP logs export request"),
        "{}",
        s.message
    );
    let (status, answer) = post(
        &server,
        "application/json",
        None,
        b"{\"resourceLogs\": 5}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&answer).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("resourceLogs must be an array"),
        "{v}"
    );
    let (status, _) = post(&server, "text/plain", None, b"x".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(
        &server,
        "application/json",
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
