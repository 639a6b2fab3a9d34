//! The PromQL endpoints in-process: the JSON shapes Prometheus answers with, GET and form
//! POST, times in Unix seconds and RFC 3339, steps as durations and seconds, and every error
//! with Prometheus's type and status.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use strata_server::prom::exemplars::ExemplarStore;
use strata_server::prom::limits::{Backpressure, QueryLimits, WriteLimits};
use strata_server::prom::metadata::{MetadataLimits, MetadataStore};
use strata_server::prom::state::PromState;
use strata_server::state::AppState;
use support::{Server, encode, now_ms, series};

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn secs(t: i64) -> String {
    format!("{}", t as f64 / 1000.0)
}

/// Asserts `[time, "value"]` points: times exact, values within 1e-9 relative (the counters'
/// rates come out as 3.9999999999999996 as they do in Prometheus, which computes the same way).
fn assert_points(got: &serde_json::Value, want: &[(i64, f64)]) {
    let got = got
        .as_array()
        .unwrap_or_else(|| panic!("not points: {got}"));
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, (t, v)) in got.iter().zip(want) {
        assert_eq!(g[0].as_f64(), Some(*t as f64 / 1000.0), "{got:?}");
        let value: f64 = g[1].as_str().unwrap().parse().unwrap();
        assert!(
            (value - v).abs() <= 1e-9 * v.abs(),
            "{got:?} against {want:?}"
        );
    }
}

/// A server holding two counters of one job, sampled every 15 s for ten minutes, ending at
/// the returned time.
async fn populated(limits: QueryLimits) -> (Server, i64) {
    let state = AppState::new(PromState::new(
        WriteLimits::default(),
        MetadataStore::new(MetadataLimits::default()),
        ExemplarStore::new(0),
        Backpressure::default(),
        limits,
    ));
    let s = Server::start_with(state);
    let end = (now_ms() - 3_600_000) / 15_000 * 15_000;
    let start = end - 600_000;
    let points = |rate: f64| -> Vec<(i64, f64)> {
        (0..=40)
            .map(|i| (start + i * 15_000, rate * 15.0 * i as f64))
            .collect()
    };
    let body = encode(vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("instance", "a"),
                ("job", "api"),
            ],
            &points(2.0),
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("instance", "b"),
                ("job", "api"),
            ],
            &points(4.0),
        ),
    ]);
    assert_eq!(s.write(body).await.0, StatusCode::NO_CONTENT);
    (s, end)
}

#[tokio::test]
async fn instant_queries_answer_in_prometheus_shapes() {
    let (s, end) = populated(QueryLimits::default()).await;
    for post in [false, true] {
        // Grafana's health check.
        let (status, body) = s
            .api(
                &format!(
                    "/api/v1/query?query={}&time={}",
                    urlencode("1+1"),
                    secs(end)
                ),
                post,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"status": "success", "data": {"resultType": "scalar", "result": [end / 1000, "2"]}})
        );
        let q = urlencode("sum by (job) (rate(http_requests_total[1m]))");
        let (status, body) = s
            .api(&format!("/api/v1/query?query={q}&time={}", secs(end)), post)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["resultType"], "vector");
        assert_eq!(body["data"]["result"][0]["metric"], json!({"job": "api"}));
        assert_points(&json!([body["data"]["result"][0]["value"]]), &[(end, 6.0)]);
        // A range vector at one time is a matrix; strings and ±Inf are strings too.
        let q = urlencode("http_requests_total{instance=\"a\"}[30s]");
        let (_, body) = s
            .api(&format!("/api/v1/query?query={q}&time={}", secs(end)), post)
            .await;
        assert_eq!(body["data"]["resultType"], "matrix");
        assert_eq!(
            body["data"]["result"][0]["values"],
            json!([[(end - 15_000) / 1000, "1170"], [end / 1000, "1200"]])
        );
        let (_, body) = s.api("/api/v1/query?query=%22hi%22&time=10", post).await;
        assert_eq!(
            body["data"],
            json!({"resultType": "string", "result": [10, "hi"]})
        );
        let (_, body) = s.api("/api/v1/query?query=-1%2F0&time=10", post).await;
        assert_eq!(body["data"]["result"], json!([10, "-Inf"]));
    }
    // RFC 3339 time.
    let (_, body) = s
        .api(
            "/api/v1/query?query=time()&time=2026-01-01T00:00:30Z",
            false,
        )
        .await;
    assert_eq!(body["data"]["result"], json!([1767225630, "1767225630"]));
}

#[tokio::test]
async fn range_queries_return_matrices_with_infos() {
    let (s, end) = populated(QueryLimits::default()).await;
    let start = end - 120_000;
    for step in ["60", "1m", "60.0"] {
        let q = urlencode("rate(http_requests_total{instance=\"b\"}[1m])");
        let (status, body) = s
            .api(
                &format!(
                    "/api/v1/query_range?query={q}&start={}&end={}&step={step}",
                    secs(start),
                    secs(end)
                ),
                true,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["resultType"], "matrix");
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1);
        assert_eq!(result[0]["metric"], json!({"instance": "b", "job": "api"}));
        assert_points(
            &result[0]["values"],
            &[(start, 4.0), (start + 60_000, 4.0), (end, 4.0)],
        );
    }
    // An info, as Prometheus gives one, for a rate of something not named like a counter.
    let q = urlencode(
        "rate(label_replace(http_requests_total, \"__name__\", \"requests\", \"\", \"\")[1m:15s])",
    );
    let (_, body) = s
        .api(
            &format!(
                "/api/v1/query_range?query={q}&start={}&end={}&step=60",
                secs(start),
                secs(end)
            ),
            false,
        )
        .await;
    assert!(body.get("warnings").is_none(), "{body}");
    assert_eq!(
        body["infos"],
        json!([
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"requests\" (1:6)"
        ])
    );
}

#[tokio::test]
async fn errors_carry_prometheus_types_and_statuses() {
    let (s, end) = populated(QueryLimits {
        max_query_bytes: 64,
        ..QueryLimits::default()
    })
    .await;
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        (
            "/api/v1/query?query=sum(".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "no query given",
        ),
        (
            "/api/v1/query?query=up&time=yesterday".to_string(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            format!("/api/v1/query?query={}", urlencode(&"a+".repeat(40))),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "max_query_length",
        ),
        (
            "/api/v1/query_range?query=up&end=10&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"start\"",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=20".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid parameter \"step\"",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=20&step=0".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "zero or negative query resolution step",
        ),
        (
            "/api/v1/query_range?query=up&start=20&end=10&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "exceeded maximum resolution of 11000 points",
        ),
        (
            "/api/v1/query_range?query=%22s%22&start=0&end=10&step=1".into(),
            StatusCode::BAD_REQUEST,
            "bad_data",
            "invalid expression type \"string\" for range query",
        ),
        (
            format!(
                "/api/v1/query?query={}&time={}",
                urlencode("http_requests_total + on(job) http_requests_total"),
                secs(end)
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "many-to-many matching not allowed",
        ),
    ];
    for (uri, status, error_type, message) in cases {
        let (got, body) = s.api(&uri, false).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(body["status"], "error", "{uri}");
        assert_eq!(body["errorType"], error_type, "{uri}: {body}");
        let text = body["error"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{uri}: {text:?} lacks {message:?}");
    }
}

/// Samples beyond `query.max_samples` are a 422 `execution` error; a query that finds no turn
/// within its timeout is a 503 `timeout`, and runs once a turn is free.
#[tokio::test]
async fn limits_answer_422_and_503() {
    let (s, end) = populated(QueryLimits {
        max_samples: 50,
        max_concurrency: 1,
        ..QueryLimits::default()
    })
    .await;
    let q = urlencode("sum_over_time(http_requests_total[10m])");
    let (status, body) = s
        .api(
            &format!("/api/v1/query?query={q}&time={}", secs(end)),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errorType"], "execution");
    assert!(
        body["error"].as_str().unwrap().contains("too many samples"),
        "{body}"
    );

    let turn = s.state.prom.queries.acquire().await.unwrap();
    let uri = format!("/api/v1/query?query=up&time={}&timeout=50ms", secs(end));
    let (status, body) = s.api(&uri, false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errorType"], "timeout");
    drop(turn);
    let (status, _) = s.api(&uri, false).await;
    assert_eq!(status, StatusCode::OK);
}

/// An instant query that reads more samples than are tried on the async worker (10,000)
/// starts again on the blocking pool and answers in full; `query.max_samples` still holds
/// for it there.
#[tokio::test]
async fn instant_queries_beyond_the_inline_budget_answer_in_full() {
    let end = (now_ms() - 3_600_000) / 15_000 * 15_000;
    let body = encode(
        (0..30)
            .map(|i| {
                let points: Vec<(i64, f64)> = (0..400)
                    .map(|k| (end - k * 15_000, k as f64))
                    .rev()
                    .collect();
                series(
                    &[("__name__", "bulk"), ("instance", &format!("host-{i}"))],
                    &points,
                )
            })
            .collect(),
    );
    let q = urlencode("sum(count_over_time(bulk[2h]))");
    let uri = format!("/api/v1/query?query={q}&time={}", secs(end));
    for (max_samples, want) in [(50_000_000, Some("12000")), (11_000, None)] {
        let state = AppState::new(PromState::new(
            WriteLimits::default(),
            MetadataStore::new(MetadataLimits::default()),
            ExemplarStore::new(0),
            Backpressure::default(),
            QueryLimits {
                max_samples,
                ..QueryLimits::default()
            },
        ));
        let s = Server::start_with(state);
        assert_eq!(s.write(body.clone()).await.0, StatusCode::NO_CONTENT);
        let (status, answer) = s.api(&uri, false).await;
        match want {
            Some(total) => {
                assert_eq!(status, StatusCode::OK, "{answer}");
                assert_eq!(answer["data"]["result"][0]["value"][1], total, "{answer}");
            }
            None => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
                assert_eq!(answer["errorType"], "execution", "{answer}");
            }
        }
    }
}

#[tokio::test]
async fn format_and_parse_query() {
    let (s, _) = populated(QueryLimits::default()).await;
    let q = urlencode("sum(rate(foo{job=\"a\"}[5m])) by (job)");
    let (status, body) = s
        .api(&format!("/api/v1/format_query?query={q}"), true)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], "sum by (job) (rate(foo{job=\"a\"}[5m]))");
    let (status, body) = s
        .api(&format!("/api/v1/parse_query?query={q}"), false)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["type"], "aggregation");
    assert_eq!(body["data"]["op"], "sum");
    let (status, body) = s.api("/api/v1/format_query?query=sum(", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorType"], "bad_data");
}
