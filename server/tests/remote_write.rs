//! Remote write through the HTTP application, one case per row of the malformed-input matrix:
//! the status, the message, and that what was accepted before is still there.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use prost::Message;
use strata_server::http::router;
use strata_server::prom::exemplars::ExemplarStore;
use strata_server::prom::limits::{Backpressure, QueryLimits, WriteLimits};
use strata_server::prom::metadata::{MetadataLimits, MetadataStore};
use strata_server::prom::state::PromState;
use strata_server::state::AppState;
use strata_wire::remote_write::v1::WriteRequest;
use support::{STALE, Server, encode, now_ms, series};
use tower::ServiceExt;

#[tokio::test]
async fn valid_writes_are_stored_exactly_and_answered_204() {
    let s = Server::start();
    let t = now_ms();
    let body = encode(vec![
        series(
            &[
                ("job", "node"),
                ("__name__", "up"),
                ("instance", "a"),
                ("empty", ""),
            ],
            &[
                (t - 30_000, 1.0),
                (t - 15_000, f64::NAN),
                (t, f64::from_bits(STALE)),
            ],
        ),
        series(
            &[("__name__", "temp"), ("city", "x")],
            &[(-5_000, f64::INFINITY), (0, f64::NEG_INFINITY)],
        ),
    ]);
    let (status, text, written) = s.write(body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(written, Some(5));
    let stored = s.stored();
    assert_eq!(
        stored[0],
        (
            r#"temp{city="x"}"#.to_string(),
            vec![
                (-5_000, f64::INFINITY.to_bits()),
                (0, f64::NEG_INFINITY.to_bits())
            ]
        )
    );
    assert_eq!(
        stored[1],
        (
            r#"up{instance="a", job="node"}"#.to_string(),
            vec![
                (t - 30_000, 1f64.to_bits()),
                (t - 15_000, f64::NAN.to_bits()),
                (t, STALE)
            ]
        ),
        "labels sorted, the empty one dropped, NaN and the stale marker bit-exact"
    );
    // A retry of the same request is acknowledged and stores nothing twice.
    let again = encode(vec![series(
        &[("__name__", "temp"), ("city", "x")],
        &[(0, f64::NEG_INFINITY)],
    )]);
    assert_eq!(s.write(again).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.stored(), stored);
}

#[tokio::test]
async fn malformed_requests_get_the_status_and_message_they_deserve_and_lose_nothing() {
    let s = Server::start();
    let t = now_ms();
    let (status, _, _) = s
        .write(encode(vec![series(&[("__name__", "kept")], &[(t, 1.0)])]))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = s.stored();

    let good = encode(vec![series(&[("__name__", "x")], &[(t, 1.0)])]);
    let raw = WriteRequest {
        timeseries: vec![series(&[("__name__", "x")], &[(t, 1.0)])],
        metadata: vec![],
    }
    .encode_to_vec();
    let long = "v".repeat(1 << 20);
    let many: Vec<(String, String)> = (0..100).map(|i| (format!("l{i:03}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut too_many = many.clone();
    too_many.push(("__name__", "m"));
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "truncated protobuf",
            strata_wire::snappy::compress(&raw[..raw.len() - 3]),
            StatusCode::BAD_REQUEST,
            "not a valid remote-write protobuf",
        ),
        ("not snappy", raw.clone(), StatusCode::BAD_REQUEST, "snappy"),
        (
            "snappy declaring 4 GiB",
            vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x01, 0x02], // 4 GiB - 1
            StatusCode::BAD_REQUEST,
            "declares",
        ),
        (
            "body over the cap",
            vec![0u8; (32 << 20) + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "duplicate label names",
            encode(vec![series(
                &[("__name__", "d"), ("a", "1"), ("a", "2")],
                &[(t, 1.0)],
            )]),
            StatusCode::BAD_REQUEST,
            "occurs more than once",
        ),
        (
            "empty metric name",
            encode(vec![series(&[("__name__", ""), ("a", "1")], &[(t, 1.0)])]),
            StatusCode::BAD_REQUEST,
            "no metric name",
        ),
        (
            "1 MiB label value",
            encode(vec![series(
                &[("__name__", "big"), ("a", &long)],
                &[(t, 1.0)],
            )]),
            StatusCode::BAD_REQUEST,
            "bytes long",
        ),
        (
            "too many labels",
            encode(vec![series(&too_many, &[(t, 1.0)])]),
            StatusCode::BAD_REQUEST,
            "labels, more than",
        ),
        (
            "far-future timestamp",
            encode(vec![series(
                &[("__name__", "future")],
                &[(t + 3_600_000, 1.0)],
            )]),
            StatusCode::BAD_REQUEST,
            "ahead of the current time",
        ),
        (
            "conflicting value at a stored timestamp",
            encode(vec![series(&[("__name__", "kept")], &[(t, 2.0)])]),
            StatusCode::BAD_REQUEST,
            "rejected",
        ),
    ];
    for (name, body, want, needle) in cases {
        let (status, text, _) = s.write(body).await;
        assert_eq!(status, want, "{name}: {text}");
        assert!(
            text.contains(needle),
            "{name}: message {text:?} lacks {needle:?}"
        );
        assert_eq!(s.stored(), before, "{name}: stored data changed");
    }

    // Wrong Content-Type, wrong encoding, an unknown message, wrong method.
    for (content_type, encoding, want) in [
        ("text/plain", "snappy", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "application/x-protobuf",
            "gzip",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "snappy",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/x-protobuf;proto=prometheus.WriteRequest",
            "snappy",
            StatusCode::NO_CONTENT,
        ),
    ] {
        let (status, text, written) = s
            .send(
                Request::post("/api/v1/write")
                    .header("content-type", content_type)
                    .header("content-encoding", encoding)
                    .body(Body::from(good.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, want, "{content_type} {encoding}: {text}");
        assert!(
            written.is_some(),
            "the written-count headers are always sent"
        );
    }
    let (status, _, _) = s
        .send(Request::get("/api/v1/write").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn valid_series_of_a_partly_bad_request_are_kept_and_the_sender_told() {
    let s = Server::start();
    let t = now_ms();
    let (status, text, written) = s
        .write(encode(vec![
            series(&[("__name__", "good")], &[(t, 1.0)]),
            series(&[("__name__", "")], &[(t, 1.0)]),
        ]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("1 samples were rejected (1 stored)"),
        "{text}"
    );
    assert_eq!(written, Some(1));
    assert_eq!(s.stored().len(), 1);
}

#[tokio::test]
async fn not_ready_until_the_database_is_open() {
    let state = AppState::new(PromState::default());
    let app = router(Arc::clone(&state));
    let ready = app
        .clone()
        .oneshot(Request::get("/-/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let healthy = app
        .clone()
        .oneshot(Request::get("/-/healthy").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(healthy.status(), StatusCode::OK);
    let write = app
        .oneshot(
            Request::post("/api/v1/write")
                .header("content-type", "application/x-protobuf")
                .body(Body::from(encode(vec![])))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        write.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "senders retry"
    );
}

/// Back-pressure: when every turn is taken, a write waits at most the queue wait and gets 503
/// (which senders retry) with nothing stored and the connection marked for closing; once a
/// turn is free the same write is stored.
#[tokio::test]
async fn writes_beyond_the_in_flight_limit_wait_then_get_503() {
    let state = AppState::new(PromState::new(
        WriteLimits::default(),
        MetadataStore::new(MetadataLimits::default()),
        ExemplarStore::new(0),
        Backpressure {
            in_flight_max: 1,
            queue_wait: Duration::from_millis(50),
        },
        QueryLimits::default(),
    ));
    let s = Server::start_with(state);
    let body = encode(vec![series(&[("__name__", "up")], &[(now_ms(), 1.0)])]);
    let busy = s.state.prom.writes.acquire().await.unwrap();
    let request = || {
        Request::post("/api/v1/write")
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let response = router(Arc::clone(&s.state))
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["connection"], "close");
    assert!(s.stored().is_empty());
    drop(busy);
    let (status, text, written) = s.send(request()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(written, Some(1));
    assert_eq!(s.stored().len(), 1);
}

/// The label fields of a series as a sender writes them (what the known-series table keys).
fn label_fields(labels: &[(&str, &str)]) -> Vec<u8> {
    series(labels, &[]).encode_to_vec()
}

#[tokio::test]
async fn series_sent_again_are_found_by_their_bytes_and_checked_again_under_new_limits() {
    let s = Server::start();
    let prom = &s.state.prom;
    let t = now_ms();
    let labels = [("__name__", "cpu"), ("instance", "a"), ("mode", "idle")];
    let fields = label_fields(&labels);
    let write = |samples: &[(i64, f64)]| encode(vec![series(&labels, samples)]);
    assert_eq!(
        s.write(write(&[(t - 3_000, 1.0)])).await.0,
        StatusCode::NO_CONTENT
    );
    let limits = prom.write_limits();
    let entered = prom.known.reader(&limits).get(&fields);
    assert!(entered.is_some(), "the stored series is entered");
    // Sent again: found by its bytes, its samples go to the same series.
    assert_eq!(
        s.write(write(&[(t - 2_000, 2.0)])).await.0,
        StatusCode::NO_CONTENT
    );
    let expected = |n: usize| {
        vec![(
            r#"cpu{instance="a", mode="idle"}"#.to_string(),
            [(t - 3_000, 1.0), (t - 2_000, 2.0), (t - 1_000, 3.0)][..n]
                .iter()
                .map(|&(t, v): &(i64, f64)| (t, v.to_bits()))
                .collect::<Vec<_>>(),
        )]
    };
    assert_eq!(s.stored(), expected(2));
    // An entry whose series the head does not hold (as after the head dropped it): the labels
    // are decoded and looked up again, the samples stored, and the entry corrected.
    prom.known.insert(&[(&fields, u64::MAX - 1)], &limits, 0);
    assert_eq!(
        s.write(write(&[(t - 1_000, 3.0)])).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.stored(), expected(3));
    assert_eq!(prom.known.reader(&limits).get(&fields), entered);
    // A known series' messages still name it (here a second value at a stored timestamp).
    let (status, text, _) = s.write(write(&[(t - 1_000, 3.5)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains(r#"cpu{instance="a", mode="idle"}"#), "{text}");
    // A reload that lowers a label limit: the same bytes are checked again and refused.
    let mut settings =
        strata_server::config::Settings::resolve(&Default::default(), &Default::default()).unwrap();
    settings.write_limits = WriteLimits {
        label_value_bytes_max: 3,
        ..settings.write_limits
    };
    prom.apply(&settings);
    let (status, text, _) = s.write(write(&[(t, 4.0)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("more than the 3 allowed"), "{text}");
    assert_eq!(s.stored(), expected(3));
}
