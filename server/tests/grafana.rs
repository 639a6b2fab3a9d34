//! The requests Grafana's Prometheus data source sends, replayed as Grafana sends them (form
//! POST for queries, GET for metadata, Unix seconds as floats or integers, the exemplar probe's
//! milliseconds), each answer checked for what Grafana's streaming parser needs: the envelope,
//! `resultType` before `result` in the raw body, values as strings, times as seconds (three
//! decimals when there is a fraction, as Prometheus writes them), and
//! a build info without `features` (so Grafana treats Strata as Prometheus).

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use support::{Server, encode, now_ms, series};

fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sends and returns the status, the raw body and the body as JSON.
async fn send(s: &Server, r: Request<Body>) -> (StatusCode, String, Value) {
    let (status, body, _) = s.send(r).await;
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, body, json)
}

/// `resultType` comes before `result` in the raw text: Grafana reads the answer as a stream
/// and drops a result whose type it has not seen yet.
fn assert_result_type_first(raw: &str) {
    let (t, r) = (raw.find("\"resultType\""), raw.find("\"result\""));
    assert!(
        matches!((t, r), (Some(t), Some(r)) if t < r),
        "resultType after result: {raw}"
    );
}

#[tokio::test]
async fn grafana_prometheus_data_source_requests() {
    let s = Server::start();
    let t0 = (now_ms() - 3_600_000) / 1000 * 1000;
    let points: Vec<(i64, f64)> = (0..60)
        .map(|i| (t0 + i * 15_000, i as f64 * 30.0))
        .collect();
    let body = encode(vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "a"),
            ],
            &points,
        ),
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "a")],
            &[(t0, 1.0)],
        ),
    ]);
    assert_eq!(s.write(body).await.0, StatusCode::NO_CONTENT);
    let (start, end) = (t0 / 1000, t0 / 1000 + 900);

    // "Save & test": the health check, 1+1 at time=4, and the flavour probe.
    let (status, raw, v) = send(&s, form("/api/v1/query", "query=1%2B1&time=4")).await;
    assert_eq!(status, StatusCode::OK);
    assert_result_type_first(&raw);
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}})
    );
    let (status, _, v) = send(&s, get("/api/v1/status/buildinfo")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["data"]["version"].is_string(), "{v}");
    assert!(
        v["data"].get("features").is_none() && v["data"].get("application").is_none(),
        "{v}"
    );
    // Thanos detection: any answer here would make Grafana treat Strata as Thanos.
    assert_eq!(
        send(&s, get("/api/v1/status/flags")).await.0,
        StatusCode::NOT_FOUND
    );

    // The query editor: label names, metric names, the metrics browser's series, metadata.
    let (status, _, v) = send(&s, get(&format!("/api/v1/labels?start={start}&end={end}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"], json!(["__name__", "instance", "job"]));
    let (_, _, v) = send(
        &s,
        get(&format!(
            "/api/v1/label/__name__/values?start={start}&end={end}"
        )),
    )
    .await;
    assert_eq!(v["data"], json!(["http_requests_total", "up"]));
    let uri = format!(
        "/api/v1/label/job/values?match[]={}&start={start}&end={end}",
        enc("up")
    );
    assert_eq!(send(&s, get(&uri)).await.2["data"], json!(["api"]));
    let body = format!(
        "match%5B%5D={}&start={start}&end={end}&limit=40000",
        enc("{__name__!=\"\"}")
    );
    let (status, _, v) = send(&s, form("/api/v1/series", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");
    let (status, _, v) = send(&s, get("/api/v1/metadata?limit=1000")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["data"].is_object(), "{v}");

    // A graph panel: query_range with float seconds and a step in seconds, from where the
    // 5-minute windows are full (2 requests a second).
    let body = format!(
        "query={}&start={}.0&end={end}.0&step=60",
        enc("sum by (job) (rate(http_requests_total[5m]))"),
        start + 300
    );
    let (status, raw, v) = send(&s, form("/api/v1/query_range", &body)).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_result_type_first(&raw);
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = &v["data"]["result"][0];
    assert_eq!(series["metric"], json!({"job": "api"}));
    let values = series["values"].as_array().unwrap();
    assert_eq!(values.len(), 11, "{values:?}");
    assert_eq!(values[0][0].as_f64(), Some((start + 300) as f64));
    for p in values {
        assert!(p[0].is_f64() || p[0].is_u64(), "{p}");
        let value: f64 = p[1].as_str().expect("values are strings").parse().unwrap();
        assert!((value - 2.0).abs() < 1e-9, "{p}");
    }
    // An instant table panel, within the lookback of `up`'s one sample.
    let body = format!("query={}&time={}", enc("up"), start + 60);
    let (_, raw, v) = send(&s, form("/api/v1/query", &body)).await;
    assert_result_type_first(&raw);
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {"__name__": "up", "instance": "a", "job": "api"}, "value": [start + 60, "1"]}])
    );

    // The exemplar probe at data-source start sends milliseconds by mistake: still a success.
    let body = format!(
        "query={}&start={}&end={}",
        enc("http_requests_total"),
        t0 - 1_800_000,
        t0
    );
    let (status, _, v) = send(&s, form("/api/v1/query_exemplars", &body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "success");

    // A query error as Grafana shows it: errorType and error.
    let (status, _, v) = send(
        &s,
        form("/api/v1/query_range", "query=rate(&start=1&end=2&step=1"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].is_string());
}
