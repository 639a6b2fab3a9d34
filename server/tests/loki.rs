//! Loki's push and query APIs in process: bodies as Loki's clients send them (JSON, protobuf
//! with snappy, gzipped JSON), partial refusals, and the answers Grafana's Loki data source
//! reads.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use strata_wire::loki::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use support::{Server, now_ms};

fn now_ns() -> i64 {
    now_ms() * 1_000_000
}

/// `query_range` of `query` over the last hour, with extra parameters.
async fn query_range(server: &Server, query: &str, extra: &str) -> (StatusCode, Value) {
    let q: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    server
        .api(&format!("/loki/api/v1/query_range?query={q}{extra}"), false)
        .await
}

/// `(labels, [(ts, line)])` of each stream of a `streams` answer.
fn streams(answer: &Value) -> Vec<(Value, Vec<(String, String)>)> {
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(answer["data"]["resultType"], "streams", "{answer}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let values = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v[0].as_str().unwrap().to_owned(),
                        v[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (s["stream"].clone(), values)
        })
        .collect()
}

#[tokio::test]
async fn json_push_is_queryable_newest_first_or_oldest_first_within_the_limit() {
    let server = Server::start().with_logs();
    let t = now_ns() - 60_000_000_000;
    let values: Vec<Value> = (0..5)
        .map(|i| json!([(t + i).to_string(), format!("line {i}")]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": "api", "env": "prod"}, "values": values}]});
    let (status, text) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");

    let (status, answer) = query_range(&server, r#"{app="api"}"#, "&limit=3").await;
    assert_eq!(status, StatusCode::OK);
    let got = streams(&answer);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, json!({"app": "api", "env": "prod"}));
    let lines: Vec<&str> = got[0].1.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(lines, ["line 4", "line 3", "line 2"]);
    assert_eq!(got[0].1[0].0, (t + 4).to_string());

    let (_, answer) = query_range(
        &server,
        r#"{app="api"} |= "line" != "3""#,
        "&limit=3&direction=forward",
    )
    .await;
    let lines: Vec<String> = streams(&answer)[0]
        .1
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(lines, ["line 0", "line 1", "line 2"]);
    assert_eq!(
        answer["data"]["stats"]["summary"]["totalEntriesReturned"],
        3
    );
}

#[tokio::test]
async fn protobuf_and_gzipped_json_pushes_are_read() {
    use std::io::Write;
    let server = Server::start().with_logs();
    let t = now_ns() - 1_000_000_000;
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{app="proto", host="h\"1"}"#.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(Timestamp::from_nanos(t)),
                line: "from protobuf".into(),
                structured_metadata: vec![LabelPairAdapter {
                    name: "trace_id".into(),
                    value: "abc".into(),
                }],
            }],
            hash: 0,
        }],
    };
    let (status, text, _) = server
        .send(
            Request::post("/loki/api/v1/push")
                .header("content-type", "application/x-protobuf")
                .body(Body::from(request.encode_snappy()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");

    let json = json!({"streams": [{"stream": {"app": "gz"},
        "values": [[(t + 1).to_string(), "from gzip"]]}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.to_string().as_bytes()).unwrap();
    let (status, text, _) = server
        .send(
            Request::post("/loki/api/v1/push")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(gz.finish().unwrap()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");

    let (_, answer) = query_range(&server, r#"{app=~"proto|gz"}"#, "").await;
    let mut got = streams(&answer);
    got.sort_by_key(|(labels, _)| labels.to_string());
    assert_eq!(got.len(), 2, "{answer}");
    assert_eq!(got[0].0, json!({"app": "gz"}));
    assert_eq!(got[0].1, [((t + 1).to_string(), "from gzip".to_owned())]);
    assert_eq!(got[1].0, json!({"app": "proto", "host": "h\"1"}));
    assert_eq!(got[1].1, [(t.to_string(), "from protobuf".to_owned())]);

    // Structured metadata comes back apart from the labels when the client asks for it.
    let (status, body, _) = server
        .send(
            Request::get(format!(
                "/loki/api/v1/query_range?query={}",
                form_urlencoded::byte_serialize(br#"{app="proto"}"#).collect::<String>()
            ))
            .header("x-loki-response-encoding-flags", "categorize-labels")
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["data"]["result"][0]["values"][0][2],
        json!({"structuredMetadata": {"trace_id": "abc"}})
    );
}

#[tokio::test]
async fn a_push_with_refused_entries_keeps_the_valid_ones_and_names_the_others() {
    let server = Server::start().with_logs();
    let now = now_ns();
    let ancient = now - 30 * 24 * 3600 * 1_000_000_000;
    let body = json!({"streams": [
        {"stream": {"app": "ok"}, "values": [[(now - 5).to_string(), "kept"],
                                             [ancient.to_string(), "too old"]]},
        {"stream": {}, "values": [[now.to_string(), "no labels"]]},
    ]});
    let (status, text) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.starts_with("2 of 3 entries refused, the other 1 stored"),
        "{text}"
    );
    assert!(text.contains("too old"), "{text}");
    assert!(text.contains("at least one label"), "{text}");

    let (_, answer) = query_range(&server, r#"{app="ok"}"#, "").await;
    let got = streams(&answer);
    assert_eq!(got[0].1, [((now - 5).to_string(), "kept".to_owned())]);

    // /metrics counts what was stored and what was refused, by reason.
    let (_, metrics, _) = server
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    for line in [
        r#"strata_log_entries_received_total{protocol="loki"} 1"#,
        r#"strata_log_entries_rejected_total{protocol="loki",reason="invalid_labels"} 1"#,
        r#"strata_log_entries_rejected_total{protocol="loki",reason="too_old"} 1"#,
        "strata_log_streams 1",
        "strata_log_head_entries 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }

    // A retry of the same push stores nothing twice.
    let (status, _) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, answer) = query_range(&server, r#"{app="ok"}"#, "").await;
    assert_eq!(streams(&answer)[0].1.len(), 1, "{answer}");
}

#[tokio::test]
async fn malformed_pushes_are_refused_with_the_reason() {
    let server = Server::start().with_logs();
    for (content_type, body, status, expect) in [
        (
            "application/json",
            r#"{"streams":[{"stream":{"a":"b"},"values":[["soon","x"]]}]}"#,
            StatusCode::BAD_REQUEST,
            "streams[0].values[0]",
        ),
        (
            "application/json",
            "{",
            StatusCode::BAD_REQUEST,
            "not a Loki JSON push",
        ),
        (
            "application/x-protobuf",
            "not snappy",
            StatusCode::BAD_REQUEST,
            "snappy",
        ),
        (
            "text/plain",
            "hello",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        ),
    ] {
        let (got, text, _) = server
            .send(
                Request::post("/loki/api/v1/push")
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(got, status, "{content_type} {body}: {text}");
        assert!(text.contains(expect), "{content_type} {body}: {text}");
    }
}

#[tokio::test]
async fn labels_and_label_values_list_the_streams() {
    let server = Server::start().with_logs();
    let t = (now_ns() - 1_000).to_string();
    let body = json!({"streams": [
        {"stream": {"app": "api", "env": "prod"}, "values": [[t, "a"]]},
        {"stream": {"app": "web"}, "values": [[t, "b"]]},
    ]});
    assert_eq!(server.push_json(&body).await.0, StatusCode::NO_CONTENT);
    let (status, answer) = server.api("/loki/api/v1/labels", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"status": "success", "data": ["app", "env"]}));
    let (_, answer) = server.api("/loki/api/v1/label/app/values", true).await;
    assert_eq!(answer, json!({"status": "success", "data": ["api", "web"]}));
}

#[tokio::test]
async fn bad_queries_get_400_with_the_reason() {
    let server = Server::start().with_logs();
    for (uri, expect) in [
        (
            "/loki/api/v1/query_range?query=%7Bapp%3D%22a%22",
            "parse error at line 1",
        ),
        ("/loki/api/v1/query_range", "missing parameter \"query\""),
        (
            "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&limit=9999",
            "max entries limit",
        ),
        (
            "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D&start=later",
            "invalid parameter \"start\"",
        ),
        (
            "/loki/api/v1/query?query=%7Ba%3D%22b%22%7D",
            "not supported as an instant query",
        ),
    ] {
        let (status, text, _) = server
            .send(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {text}");
        assert!(text.contains(expect), "{uri}: {text}");
    }
}

#[tokio::test]
async fn before_the_log_store_opens_the_api_answers_503() {
    let server = Server::start();
    let (status, text) = server.push_json(&json!({"streams": []})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let (status, _, _) = server
        .send(
            Request::get("/loki/api/v1/labels")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metric_queries_answer_a_matrix_over_a_range_and_a_vector_at_an_instant() {
    let server = Server::start().with_logs();
    let t0_s = now_ms() / 1000 - 120;
    let values: Vec<Value> = (0..10i64)
        .map(|i| {
            let level = if i % 2 == 0 { "error" } else { "info" };
            json!([
                ((t0_s + i) * 1_000_000_000).to_string(),
                format!("level={level} i={i}")
            ])
        })
        .collect();
    let body = json!({"streams": [{"stream": {"app": "api"}, "values": values}]});
    assert_eq!(server.push_json(&body).await.0, StatusCode::NO_CONTENT);

    let (status, answer) = query_range(
        &server,
        r#"sum by (level) (count_over_time({app="api"} | logfmt [1m]))"#,
        &format!("&start={t0_s}&end={}&step=1", t0_s + 9),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["resultType"], "matrix");
    let result = answer["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{answer}");
    assert_eq!(result[0]["metric"], json!({"level": "error"}));
    assert_eq!(result[0]["values"][0], json!([t0_s, "1"]));
    assert_eq!(result[0]["values"][9], json!([t0_s + 9, "5"]));
    assert_eq!(result[1]["metric"], json!({"level": "info"}));
    assert_eq!(
        result[1]["values"][0],
        json!([t0_s + 1, "1"]),
        "no point before the first entry"
    );

    let q: String =
        form_urlencoded::byte_serialize(br#"sum(count_over_time({app="api"}[1m]))"#).collect();
    let (status, answer) = server
        .api(
            &format!("/loki/api/v1/query?query={q}&time={}", t0_s + 9),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["resultType"], "vector");
    assert_eq!(
        answer["data"]["result"],
        json!([{"metric": {}, "value": [t0_s + 9, "10"]}])
    );

    // A pipeline error in a metric query is the client's to fix.
    let (status, text, _) = server
        .send(
            Request::get(format!(
                "/loki/api/v1/query?query={}&time={}",
                form_urlencoded::byte_serialize(br#"count_over_time({app="api"} | json [1m])"#)
                    .collect::<String>(),
                t0_s + 9
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("JSONParserErr"), "{text}");
}

#[tokio::test]
async fn series_lists_the_matching_streams_and_buildinfo_answers() {
    let server = Server::start().with_logs();
    let t = (now_ns() - 1_000).to_string();
    let body = json!({"streams": [
        {"stream": {"app": "api", "env": "prod"}, "values": [[t, "a"]]},
        {"stream": {"app": "web", "env": "prod"}, "values": [[t, "b"]]},
        {"stream": {"app": "db", "env": "dev"}, "values": [[t, "c"]]},
    ]});
    assert_eq!(server.push_json(&body).await.0, StatusCode::NO_CONTENT);
    let m1: String = form_urlencoded::byte_serialize(br#"{env="prod"}"#).collect();
    let m2: String = form_urlencoded::byte_serialize(br#"{app="db"}"#).collect();
    let (status, answer) = server
        .api(
            &format!("/loki/api/v1/series?match[]={m1}&match[]={m2}"),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["data"],
        json!([
            {"app": "api", "env": "prod"},
            {"app": "db", "env": "dev"},
            {"app": "web", "env": "prod"},
        ])
    );
    let (status, text, _) = server
        .send(
            Request::get("/loki/api/v1/series")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, answer) = server.api("/loki/api/v1/status/buildinfo", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["version"], env!("CARGO_PKG_VERSION"));
}
