//! Bad input to the log push APIs: each kind gets its status and a message that says what is
//! wrong, nothing already stored is lost, and what a request holds beyond the caps is never
//! decoded into memory.

mod support;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use serde_json::{Value, json};
use strata_engine::logs::{LogLimits, LogOptions};
use strata_wire::loki::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
use support::{Server, now_ms};
use tower::ServiceExt;

fn now_ns() -> i64 {
    now_ms() * 1_000_000
}

async fn push(
    server: &Server,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut req = Request::post("/loki/api/v1/push").header("content-type", content_type);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let (status, text, _) = server.send(req.body(Body::from(body)).unwrap()).await;
    (status, text)
}

fn one(labels: Value, ts: i64, line: &str) -> Value {
    json!({"streams": [{"stream": labels, "values": [[ts.to_string(), line]]}]})
}

/// Every line stored under `{app="keep"}`.
async fn kept(server: &Server) -> Vec<String> {
    let q: String = form_urlencoded::byte_serialize(br#"{app="keep"}"#).collect();
    let (_, v) = server
        .api(
            &format!("/loki/api/v1/query_range?query={q}&since=1h&direction=forward"),
            false,
        )
        .await;
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[1].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn every_kind_of_bad_push_gets_its_status_and_reason_and_nothing_stored_is_lost() {
    let server = Server::start().with_logs();
    let now = now_ns();
    let (status, _) = server
        .push_json(&one(json!({"app": "keep"}), now - 10, "before"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A 100 MB line: over the body cap as sent, and over the decoded cap when gzipped.
    let huge = "a".repeat(100 << 20);
    let raw = one(json!({"app": "big"}), now, &huge)
        .to_string()
        .into_bytes();
    let (status, text) = push(&server, "application/json", None, raw.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("larger than"), "{text}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let (status, text) = push(
        &server,
        "application/json",
        Some("gzip"),
        gz.finish().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("once decompressed"), "{text}");
    // A 1 MB line fits the body but not the line limit.
    let (status, text) = server
        .push_json(&one(json!({"app": "big"}), now, &"b".repeat(1 << 20)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.contains("larger than the limit of 262144 bytes"),
        "{text}"
    );

    // Invalid UTF-8, in JSON and in protobuf.
    let mut bad = br#"{"streams":[{"stream":{"app":"x"},"values":[["1","#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""]]}]}"#);
    let (status, text) = push(&server, "application/json", None, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("not a Loki JSON push request"), "{text}");
    let mut proto = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{app="x"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp::from_nanos(now)),
                line: "MARK".into(),
                structured_metadata: vec![],
            }],
            hash: 0,
        }],
    }
    .encode_to_vec();
    let at = proto.windows(4).position(|w| w == b"MARK").unwrap();
    proto[at] = 0xff;
    let (status, text) = push(
        &server,
        "application/x-protobuf",
        None,
        strata_wire::snappy::compress(&proto),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("not a Loki push request"), "{text}");

    // 10,000 labels on one stream.
    let labels: serde_json::Map<String, Value> = (0..10_000)
        .map(|i| (format!("l{i}"), Value::from("v")))
        .collect();
    let (status, text) = server
        .push_json(&one(Value::Object(labels), now, "x"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.contains("stream has 10000 labels, more than the limit of 15"),
        "{text}"
    );

    // Far in the past, far in the future.
    let (status, text) = server
        .push_json(&one(json!({"app": "t"}), 1_000, "1970"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("is too old"), "{text}");
    let (status, text) = server
        .push_json(&one(
            json!({"app": "t"}),
            now + 86_400_000_000_000,
            "tomorrow",
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("too far in the future"), "{text}");

    // Not a timestamp, not a list, no streams key.
    for body in [
        r#"{"streams":[{"stream":{"a":"b"},"values":[[1.5e3,"x"]]}]}"#,
        r#"{"streams":5}"#,
        "[]",
    ] {
        let (status, text) =
            push(&server, "application/json", None, body.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
    }

    assert_eq!(
        kept(&server).await,
        ["before"],
        "what was stored before is all there"
    );
}

#[tokio::test]
async fn a_label_cardinality_explosion_stops_at_the_streams_limit_with_429() {
    let options = LogOptions {
        limits: LogLimits {
            streams_max: 100,
            ..LogLimits::default()
        },
        ..LogOptions::default()
    };
    let server = Server::start().with_logs_options(options);
    let now = now_ns();
    let (status, _) = server
        .push_json(&one(json!({"app": "keep"}), now - 10, "before"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // 150 new streams in one push, a request id as a label.
    let streams: Vec<Value> = (0..150)
        .map(|i| json!({"stream": {"app": "boom", "request_id": format!("r{i}")}, "values": [[now.to_string(), "x"]]}))
        .collect();
    let (status, text) = server.push_json(&json!({ "streams": streams })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.starts_with("51 of 150 entries refused, the other 99 stored"),
        "{text}"
    );
    assert!(text.contains("a new stream is refused"), "{text}");
    // An existing stream still takes entries.
    let (status, _) = server
        .push_json(&one(json!({"app": "keep"}), now - 5, "after"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kept(&server).await, ["before", "after"]);
    let (_, metrics, _) = server
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert!(
        metrics.lines().any(|l| l
            == r#"strata_log_entries_rejected_total{protocol="loki",reason="stream_limit"} 51"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn pushes_beyond_the_ingestion_rate_get_429_and_store_nothing() {
    let server = Server::start().with_logs();
    server.state.log_rate.set(1_000, 2_000);
    let now = now_ns();
    let line = "x".repeat(1_500);
    let (status, _) = server
        .push_json(&one(json!({"app": "keep"}), now - 10, &line))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "within the burst");
    let (status, text) = server
        .push_json(&one(json!({"app": "keep"}), now - 5, &line))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.contains("ingestion rate limit exceeded (limit: 1000 bytes/s)"),
        "{text}"
    );
    assert_eq!(
        kept(&server).await.concat(),
        line,
        "the refused push stored nothing"
    );

    // OTLP shares the budget, and says when to retry.
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": now.to_string(), "body": {"stringValue": line}}]}]}]});
    let response = strata_server::http::router(std::sync::Arc::clone(&server.state))
        .oneshot(
            Request::post("/v1/logs")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let (_, metrics, _) = server
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    for line in [
        r#"strata_log_entries_rejected_total{protocol="loki",reason="rate_limit"} 1"#,
        r#"strata_log_entries_rejected_total{protocol="otlp",reason="rate_limit"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
}
