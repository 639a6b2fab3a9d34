//! The Prometheus HTTP API through the application: the shapes Grafana and Prometheus's tools
//! parse, GET and form POST alike, the error envelope, and remote write 2.0 with its metadata
//! and exemplars.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use serde_json::json;
use strata_server::prom::exemplars::ExemplarStore;
use strata_server::prom::limits::{Backpressure, QueryLimits, WriteLimits};
use strata_server::prom::metadata::{MetadataLimits, MetadataStore};
use strata_server::prom::state::PromState;
use strata_server::state::AppState;
use strata_wire::remote_write::v1::{MetricMetadata, Sample, WriteRequest};
use strata_wire::remote_write::v2;
use support::{Server, encode, now_ms, series};

/// Writes three series of two metrics, the `up` ones an hour apart.
async fn populated() -> (Server, i64) {
    let state = AppState::new(PromState::new(
        WriteLimits::default(),
        MetadataStore::new(MetadataLimits::default()),
        ExemplarStore::new(1000),
        Backpressure::default(),
        QueryLimits::default(),
    ));
    state.set_admin_api(true);
    let s = Server::start_with(state);
    let t = now_ms() - 2 * 3_600_000;
    let body = encode(vec![
        series(
            &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
            &[(t, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("instance", "b:9100"), ("job", "node")],
            &[(t + 3_600_000, 1.0)],
        ),
        series(
            &[
                ("__name__", "node_load1"),
                ("instance", "a:9100"),
                ("job", "node"),
            ],
            &[(t, 0.5)],
        ),
    ]);
    assert_eq!(s.write(body).await.0, StatusCode::NO_CONTENT);
    (s, t)
}

fn secs(t: i64) -> String {
    format!("{}", t as f64 / 1000.0)
}

/// `/api/v1/series`, `/labels` and `/label/<name>/values` answer the same over GET and form
/// POST, filter by `match[]` and time range, cut at `limit` with a warning.
#[tokio::test]
async fn series_labels_and_values_answer_like_prometheus() {
    let (s, t) = populated().await;
    for post in [false, true] {
        let (status, body) = s
            .api("/api/v1/series?match[]=up&match[]=node_load1", post)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"status": "success", "data": [
                {"__name__": "node_load1", "instance": "a:9100", "job": "node"},
                {"__name__": "up", "instance": "a:9100", "job": "node"},
                {"__name__": "up", "instance": "b:9100", "job": "node"},
            ]})
        );
        // Only the second `up` has a sample in the last hour and a half.
        let uri = format!(
            "/api/v1/series?match[]={}&start={}&end={}",
            urlencode(r#"{__name__="up",job=~"no.e"}"#),
            secs(t + 1_800_000),
            secs(t + 7_200_000)
        );
        let (_, body) = s.api(&uri, post).await;
        assert_eq!(
            body["data"],
            json!([{"__name__": "up", "instance": "b:9100", "job": "node"}])
        );

        let (_, body) = s.api("/api/v1/labels", post).await;
        assert_eq!(body["data"], json!(["__name__", "instance", "job"]));
        let (_, body) = s.api("/api/v1/label/__name__/values", post).await;
        assert_eq!(body["data"], json!(["node_load1", "up"]));
        let uri = format!(
            "/api/v1/label/instance/values?match[]={}",
            urlencode("node_load1")
        );
        let (_, body) = s.api(&uri, post).await;
        assert_eq!(body["data"], json!(["a:9100"]));
        let (_, body) = s.api("/api/v1/label/instance/values?limit=1", post).await;
        assert_eq!(body["data"], json!(["a:9100"]));
        assert_eq!(body["warnings"], json!(["results truncated due to limit"]));
        let (_, body) = s.api("/api/v1/label/nope/values", post).await;
        assert_eq!(body, json!({"status": "success", "data": []}));
        // A `U__`-escaped name is the same label.
        let (_, body) = s.api("/api/v1/label/U__job/values", post).await;
        assert_eq!(body["data"], json!(["node"]));
    }
    // A time in RFC 3339 works as well as Unix seconds.
    let (status, body) = s
        .api(
            "/api/v1/series?match[]=up&start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00.5Z",
            false,
        )
        .await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!([])));
}

/// Bad parameters get 400 with `errorType: bad_data` and a message naming the problem.
#[tokio::test]
async fn bad_parameters_get_bad_data_errors() {
    let (s, _) = populated().await;
    for (uri, message) in [
        ("/api/v1/series", "no match[] parameter provided"),
        (
            "/api/v1/series?match[]=rate(up[5m])",
            "not a series selector",
        ),
        ("/api/v1/series?match[]=up{", "invalid match[]"),
        (
            "/api/v1/series?match[]=up&start=yesterday",
            "cannot parse \"yesterday\"",
        ),
        (
            "/api/v1/series?match[]=up&start=10&end=5",
            "end timestamp must not be before start time",
        ),
        ("/api/v1/labels?limit=-1", "not a non-negative integer"),
        (
            "/api/v1/label/U__a_zz_/values",
            "invalid escaped label name",
        ),
        ("/api/v1/query_exemplars", "no query parameter provided"),
    ] {
        let (status, body) = s.api(uri, false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["status"], "error", "{uri}");
        assert_eq!(body["errorType"], "bad_data", "{uri}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{uri}: {error}");
    }
}

/// Before the engine is open every data endpoint answers 503 `unavailable`.
#[tokio::test]
async fn not_ready_is_unavailable() {
    let state = AppState::new(PromState::default());
    let response = tower::ServiceExt::oneshot(
        strata_server::http::router(state),
        Request::get("/api/v1/series?match[]=up")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Build info has the fields Grafana reads and no `features` key (so Grafana treats Strata
/// as Prometheus); TSDB status has Prometheus's keys and counts.
#[tokio::test]
async fn buildinfo_and_tsdb_status_have_prometheus_shapes() {
    let (s, _) = populated().await;
    let (status, body) = s.api("/api/v1/status/buildinfo", false).await;
    assert_eq!(status, StatusCode::OK);
    let data = body["data"].as_object().unwrap();
    for key in [
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    ] {
        assert!(data[key].is_string(), "{key}");
    }
    assert!(!data.contains_key("features") && !data.contains_key("application"));

    let (_, body) = s.api("/api/v1/status/tsdb?limit=1", false).await;
    let data = &body["data"];
    assert_eq!(data["headStats"]["numSeries"], 3);
    assert_eq!(data["headStats"]["chunkCount"], 3);
    assert!(data["headStats"]["minTime"].as_i64() < data["headStats"]["maxTime"].as_i64());
    assert_eq!(
        data["seriesCountByMetricName"],
        json!([{"name": "up", "value": 2}])
    );
    assert_eq!(
        data["labelValueCountByLabelName"],
        json!([{"name": "__name__", "value": 2}])
    );
    assert_eq!(
        data["seriesCountByLabelValuePair"],
        json!([{"name": "job=node", "value": 3}])
    );
    assert_eq!(
        data["memoryInBytesByLabelName"].as_array().unwrap().len(),
        1
    );
}

/// Remote write 2.0: symbols resolved, per-series metadata kept for `/api/v1/metadata`,
/// exemplars kept for `/api/v1/query_exemplars`, the written counts in the headers; a bad
/// symbol reference is a 400.
#[tokio::test]
async fn remote_write_2_stores_samples_metadata_and_exemplars() {
    let (s, _) = populated().await;
    let t = now_ms() - 60_000;
    let symbols: Vec<String> = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "Requests served.",
        "trace_id",
        "abc123",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let request = v2::Request {
        symbols,
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                Sample {
                    value: 10.0,
                    timestamp: t,
                },
                Sample {
                    value: 12.0,
                    timestamp: t + 15_000,
                },
            ],
            histograms: vec![],
            exemplars: vec![v2::Exemplar {
                labels_refs: vec![6, 7],
                value: 0.042,
                timestamp: t + 15_000,
            }],
            metadata: Some(v2::Metadata {
                r#type: 1,
                help_ref: 5,
                unit_ref: 0,
            }),
        }],
    };
    let send = |body: Vec<u8>| {
        Request::post("/api/v1/write")
            .header(
                "content-type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            )
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "2.0.0")
            .body(Body::from(strata_wire::snappy::compress(&body)))
            .unwrap()
    };
    let response = tower::ServiceExt::oneshot(
        strata_server::http::router(Arc::clone(&s.state)),
        send(request.encode_to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let header = |name: &str| {
        response.headers()[name]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(header("x-prometheus-remote-write-samples-written"), 2);
    assert_eq!(header("x-prometheus-remote-write-exemplars-written"), 1);
    assert_eq!(header("x-prometheus-remote-write-histograms-written"), 0);
    let stored = s.stored();
    let (_, samples) = stored
        .iter()
        .find(|(l, _)| l.contains("http_requests_total"))
        .unwrap();
    assert_eq!(samples.len(), 2);

    let (_, body) = s.api("/api/v1/metadata", false).await;
    assert_eq!(
        body["data"],
        json!({"http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}]})
    );
    let uri = format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        urlencode("sum(rate(http_requests_total{job=\"api\"}[5m]))"),
        secs(t),
        secs(t + 60_000)
    );
    for post in [false, true] {
        let (status, body) = s.api(&uri, post).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["data"],
            json!([{
                "seriesLabels": {"__name__": "http_requests_total", "job": "api"},
                "exemplars": [{"labels": {"trace_id": "abc123"}, "value": "0.042",
                               "timestamp": (t + 15_000) as f64 / 1000.0}]
            }])
        );
    }

    // A reference past the symbol table: 400, nothing stored.
    let mut bad = request.clone();
    bad.timeseries[0].labels_refs = vec![1, 2, 3, 99];
    let response = tower::ServiceExt::oneshot(
        strata_server::http::router(Arc::clone(&s.state)),
        send(bad.encode_to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["x-prometheus-remote-write-samples-written"],
        "0"
    );
}

/// Remote write 1.0's metadata list reaches `/api/v1/metadata`, with `metric` and `limit`.
#[tokio::test]
async fn remote_write_1_metadata_is_served() {
    let s = Server::start();
    let meta = |name: &str, kind: i32| MetricMetadata {
        r#type: kind,
        metric_family_name: name.into(),
        help: format!("help of {name}"),
        unit: String::new(),
    };
    let request = WriteRequest {
        timeseries: vec![],
        metadata: vec![meta("up", 2), meta("http_requests_total", 1)],
    };
    assert_eq!(
        s.write(strata_wire::snappy::compress(&request.encode_to_vec()))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, body) = s.api("/api/v1/metadata?metric=up", false).await;
    assert_eq!(
        body["data"],
        json!({"up": [{"type": "gauge", "help": "help of up", "unit": ""}]})
    );
    let (_, body) = s.api("/api/v1/metadata?limit=1", false).await;
    assert_eq!(body["data"].as_object().unwrap().len(), 1);
    let (_, body) = s.api("/api/v1/metadata?metric=nope", false).await;
    assert_eq!(body["data"], json!({}));
}

/// Admin endpoints: off unless enabled (503); delete_series removes what it matches;
/// a snapshot is a directory Strata can open.
#[tokio::test]
async fn admin_delete_series_and_snapshot() {
    let off = Server::start();
    let (status, body) = off
        .api("/api/v1/admin/tsdb/delete_series?match[]=up", true)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["errorType"], "unavailable");

    let (s, _) = populated().await;
    let response = s
        .send(
            Request::post("/api/v1/admin/tsdb/delete_series")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("match[]=up%7Binstance%3D%22a%3A9100%22%7D"))
                .unwrap(),
        )
        .await;
    assert_eq!(response.0, StatusCode::NO_CONTENT, "{}", response.1);
    let (_, body) = s.api("/api/v1/series?match[]=up", false).await;
    assert_eq!(
        body["data"],
        json!([{"__name__": "up", "instance": "b:9100", "job": "node"}])
    );

    let (status, body) = s.api("/api/v1/admin/tsdb/snapshot", true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let name = body["data"]["name"].as_str().unwrap();
    let snap = s.dir.path().join("snapshots").join(name);
    let db = strata_engine::Db::open(&snap, strata_engine::Options::default()).unwrap();
    let names: Vec<String> = db
        .querier(i64::MIN, i64::MAX)
        .series(&[])
        .unwrap()
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    db.close().unwrap();
    let (status, _) = s
        .api("/api/v1/admin/tsdb/snapshot?skip_head=maybe", true)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
