//! A replay of what Grafana's Loki data source and Explore send, in the order they send it,
//! with the parameters in the forms Grafana writes them (times in nanoseconds, steps in
//! milliseconds), checked against the answer shapes Grafana reads: the health check, label
//! and series discovery, the "will process" stats, a log query, the volume histogram, an
//! instant metric query, and the Drilldown app's volume.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use support::{Server, now_ms};

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// GETs `uri` as Grafana does (with its query tags header); status and JSON.
async fn grafana_get(server: &Server, uri: &str) -> (StatusCode, Value) {
    let (status, body, _) = server
        .send(
            Request::get(uri)
                .header("x-query-tags", "Source=grafana")
                .header("x-loki-response-encoding-flags", "categorize-labels")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let json =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}"));
    (status, json)
}

#[tokio::test]
async fn grafana_s_loki_requests_get_the_shapes_it_reads() {
    let server = Server::start().with_logs();
    // Ten info lines a second apart, two errors, one web line; all in the last minute.
    let t0_s = now_ms() / 1000 - 60;
    let ns = |s: i64| (s * 1_000_000_000).to_string();
    let info: Vec<Value> = (0..10)
        .map(|i| json!([ns(t0_s + i), format!("level=info msg=\"served\" n={i}")]))
        .collect();
    let body = json!({"streams": [
        {"stream": {"app": "api", "level": "info"}, "values": info},
        {"stream": {"app": "api", "level": "error"}, "values": [
            [ns(t0_s + 3), "level=error msg=\"upstream timeout\""],
            [ns(t0_s + 7), "level=error msg=\"upstream timeout\""]]},
        {"stream": {"app": "web", "level": "info"}, "values": [[ns(t0_s + 5), "GET /"]]},
    ]});
    let (status, text) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (start, end) = ((t0_s - 50) * 1_000_000_000, (t0_s + 10) * 1_000_000_000);
    let range = format!("start={start}&end={end}");

    let (status, v) = grafana_get(&server, "/loki/api/v1/status/buildinfo").await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["version"].is_string(), "{v}");

    // The health check: an instant `vector(1)+vector(1)` must answer 2.
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/query?query={}&time={end}",
            enc("vector(1)+vector(1)")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "2");

    let (_, v) = grafana_get(&server, &format!("/loki/api/v1/labels?{range}")).await;
    assert_eq!(v, json!({"status": "success", "data": ["app", "level"]}));
    let (_, v) = grafana_get(&server, &format!("/loki/api/v1/label/app/values?{range}")).await;
    assert_eq!(v["data"], json!(["api", "web"]));
    let (_, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/series?match[]={}&{range}",
            enc(r#"{app="api"}"#)
        ),
    )
    .await;
    assert_eq!(
        v["data"],
        json!([{"app": "api", "level": "error"}, {"app": "api", "level": "info"}])
    );

    // The "will process" banner.
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/index/stats?query={}&{range}",
            enc(r#"{app="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let info_bytes: usize = (0..10)
        .map(|i| format!("level=info msg=\"served\" n={i}").len())
        .sum();
    let error_bytes = 2 * "level=error msg=\"upstream timeout\"".len();
    assert_eq!(v["streams"], 2);
    assert_eq!(v["entries"], 12);
    assert_eq!(v["bytes"], info_bytes + error_bytes);

    // The log query Explore runs.
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/query_range?direction=backward&{range}&limit=1000&step=2000ms&query={}",
            enc(r#"{app="api"} |= "timeout""#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "streams");
    let result = &v["data"]["result"];
    assert_eq!(result[0]["stream"], json!({"app": "api", "level": "error"}));
    assert_eq!(
        result[0]["values"][0][0],
        ns(t0_s + 7),
        "newest first, ns as a string"
    );
    assert!(v["data"]["stats"].is_object());

    // The volume histogram above it.
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/query_range?{range}&step=10000ms&query={}",
            enc(r#"sum by (level, detected_level) (count_over_time({app="api"} | drop __error__[10s]))"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series[0]["metric"], json!({"level": "error"}));
    let total = |s: &Value| -> f64 {
        s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(total(&series[0]), 2.0);
    assert_eq!(total(&series[1]), 10.0);
    assert!(
        series[0]["values"][0][0].is_i64(),
        "times as whole seconds: {v}"
    );

    // An instant metric query (a stat panel).
    let (_, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/query?time={end}&query={}",
            enc(r#"sum(count_over_time({app=~"api|web"}[1m]))"#)
        ),
    )
    .await;
    assert_eq!(v["data"]["result"][0]["value"][1], "13");

    // The Drilldown app's volume, by service and over time.
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/index/volume?query={}&{range}&limit=10",
            enc(r#"{app=~".+"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(
        result[0]["metric"],
        json!({"app": "api"}),
        "the largest first"
    );
    assert_eq!(
        result[0]["value"][1],
        (info_bytes + error_bytes).to_string()
    );
    assert_eq!(result[1]["value"][1], "5");
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/index/volume_range?query={}&{range}&step=30000ms&targetLabels=level",
            enc(r#"{app="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let levels: Vec<&Value> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["metric"])
        .collect();
    assert_eq!(
        levels,
        [&json!({"level": "error"}), &json!({"level": "info"})]
    );
}

/// What the Logs Drilldown app asks for a service's page: its labels with their number of
/// values, the fields of its newest lines (bare JSON objects, no `status`/`data` envelope),
/// and one field's values.
#[tokio::test]
async fn the_drilldown_app_s_label_and_field_lists_have_loki_s_shapes() {
    let server = Server::start().with_logs();
    let t0_s = now_ms() / 1000 - 60;
    let ns = |s: i64| (s * 1_000_000_000).to_string();
    let json_lines: Vec<Value> = (0..6)
        .map(|i| {
            json!([
                ns(t0_s + i),
                format!(r#"{{"level":"{}","status":{},"req":{{"ms":{i}.5}}}}"#,
                    if i % 2 == 0 { "info" } else { "error" }, 200 + i),
                {"trace_id": format!("t{i}")}
            ])
        })
        .collect();
    let body = json!({"streams": [
        {"stream": {"service_name": "api", "pod": "api-1"}, "values": json_lines},
        {"stream": {"service_name": "api", "pod": "api-2"}, "values": [
            [ns(t0_s + 9), "level=warn took=15ms"]]},
        {"stream": {"service_name": "web", "pod": "web-1"}, "values": [[ns(t0_s + 5), "GET /"]]},
    ]});
    let (status, text) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let range = format!(
        "start={}&end={}",
        (t0_s - 50) * 1_000_000_000,
        (t0_s + 10) * 1_000_000_000
    );

    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/detected_labels?query={}&{range}",
            enc(r#"{service_name="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"detectedLabels": [
            {"label": "pod", "cardinality": 2},
            {"label": "service_name", "cardinality": 1}]})
    );
    let (_, all) = grafana_get(&server, &format!("/loki/api/v1/detected_labels?{range}")).await;
    assert_eq!(
        all["detectedLabels"][0],
        json!({"label": "pod", "cardinality": 3})
    );

    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/detected_fields?query={}&{range}&line_limit=1000&field_limit=100",
            enc(r#"{service_name="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"fields": [
            {"label": "level", "type": "string", "cardinality": 3, "parsers": ["json", "logfmt"],
             "jsonPath": ["level"]},
            {"label": "req_ms", "type": "float", "cardinality": 6, "parsers": ["json"],
             "jsonPath": ["req", "ms"]},
            {"label": "status", "type": "int", "cardinality": 6, "parsers": ["json"],
             "jsonPath": ["status"]},
            {"label": "took", "type": "duration", "cardinality": 1, "parsers": ["logfmt"]},
            {"label": "trace_id", "type": "string", "cardinality": 6, "parsers": null}],
         "limit": 100})
    );

    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/detected_field/level/values?query={}&{range}",
            enc(r#"{service_name="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"values": ["error", "info", "warn"], "limit": 1000})
    );

    // No lines: no fields and no limit; a metric query or a bad limit: 400.
    let (_, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/detected_fields?query={}&{range}",
            enc(r#"{service_name="none"}"#)
        ),
    )
    .await;
    assert_eq!(v, json!({"fields": []}));
    for bad in [
        format!(
            "query={}",
            enc(r#"count_over_time({service_name="api"}[1m])"#)
        ),
        format!("query={}&line_limit=0", enc(r#"{service_name="api"}"#)),
        format!("query={}&line_limit=999999", enc(r#"{service_name="api"}"#)),
    ] {
        let (status, body, _) = server
            .send(
                Request::get(format!("/loki/api/v1/detected_fields?{bad}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(!body.trim().is_empty(), "{bad}: the 400 says why");
    }
}

/// The Drilldown app's Patterns tab: `/loki/api/v1/patterns` answers the shapes of a query's
/// lines (variable words as `<_>`) with their lines counted per step, in the `status`/`data`
/// envelope, the most frequent first.
#[tokio::test]
async fn the_patterns_tab_gets_the_lines_shapes_counted_per_step() {
    let server = Server::start().with_logs();
    let t0_s = (now_ms() / 1000 - 600) / 60 * 60;
    let ns = |s: i64| (s * 1_000_000_000).to_string();
    let body = json!({"streams": [
        {"stream": {"service_name": "api", "pod": "api-1"}, "values": [
            [ns(t0_s + 1), "user 42 logged in from 10.0.0.1"],
            [ns(t0_s + 2), "cache miss for key alpha"],
            [ns(t0_s + 61), "user 7 logged in from 10.0.0.2"]]},
        {"stream": {"service_name": "api", "pod": "api-2"}, "values": [
            [ns(t0_s + 3), "user 9 logged in from 10.0.0.9"],
            [ns(t0_s + 4), "cache miss for key beta"]]},
        {"stream": {"service_name": "web", "pod": "web-1"}, "values": [
            [ns(t0_s + 5), "GET / 200"]]},
    ]});
    let (status, text) = server.push_json(&body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let range = format!(
        "start={}&end={}",
        (t0_s - 60) * 1_000_000_000,
        (t0_s + 120) * 1_000_000_000
    );
    let (status, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/patterns?query={}&{range}&step=60s",
            enc(r#"{service_name="api"}"#)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"status": "success", "data": [
            {"pattern": "user <_> logged in from <_>", "samples": [[t0_s, 2], [t0_s + 60, 1]]},
            {"pattern": "cache miss for key <_>", "samples": [[t0_s, 2]]}]})
    );
    // No lines: no patterns; a metric query: 400 with the reason.
    let (_, v) = grafana_get(
        &server,
        &format!(
            "/loki/api/v1/patterns?query={}&{range}&step=60s",
            enc(r#"{service_name="none"}"#)
        ),
    )
    .await;
    assert_eq!(v, json!({"status": "success", "data": []}));
    let (status, body, _) = server
        .send(
            Request::get(format!(
                "/loki/api/v1/patterns?query={}&{range}",
                enc(r#"rate({service_name="api"}[1m])"#)
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("log query"), "{body}");
}
