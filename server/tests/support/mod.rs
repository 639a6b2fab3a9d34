//! Shared by the server's in-process tests: the application over a fresh database, requests
//! through it, and remote-write bodies.
#![allow(dead_code)] // reason: each test file uses a different subset

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, Options};
use strata_server::http::router;
use strata_server::prom::state::PromState;
use strata_server::state::AppState;
use strata_wire::remote_write::v1::{Label, Sample, TimeSeries, WriteRequest};
use tower::ServiceExt;

pub const STALE: u64 = 0x7ff0_0000_0000_0002;

pub use strata_testkit::time::now_ms;

pub struct Server {
    pub dir: tempfile::TempDir,
    pub state: Arc<AppState>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(AppState::new(PromState::default()))
    }

    /// Opens a database in a fresh directory for `state`.
    pub fn start_with(state: Arc<AppState>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        state.db.set(Arc::new(db)).unwrap();
        Server { dir, state }
    }

    /// Opens a log store in `logs/` of the server's directory, as the binary does.
    pub fn with_logs(self) -> Server {
        self.with_logs_options(strata_engine::logs::LogOptions::default())
    }

    /// As [`Server::with_logs`], with `options`.
    pub fn with_logs_options(self, options: strata_engine::logs::LogOptions) -> Server {
        let (store, _) =
            strata_engine::logs::LogStore::open(&self.dir.path().join("logs"), options).unwrap();
        self.state.logs.set(Arc::new(store)).unwrap();
        self
    }

    /// POSTs a Loki JSON push; the status and the body.
    pub async fn push_json(&self, body: &serde_json::Value) -> (StatusCode, String) {
        let (status, text, _) = self
            .send(
                Request::post("/loki/api/v1/push")
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        (status, text)
    }

    /// GETs `uri`, or POSTs its query string as a form when `post`; the status and the body
    /// as JSON.
    pub async fn api(&self, uri: &str, post: bool) -> (StatusCode, serde_json::Value) {
        let request = if post {
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(query.to_owned()))
                .unwrap()
        } else {
            Request::get(uri).body(Body::empty()).unwrap()
        };
        let (status, body, _) = self.send(request).await;
        let json =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {body}"));
        (status, json)
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, String, Option<u64>) {
        let (status, headers, body) = self.exchange(request).await;
        let written = headers
            .get("x-prometheus-remote-write-samples-written")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        (status, body, written)
    }

    /// The answer's status, headers and body.
    pub async fn exchange(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    pub async fn write(&self, body: Vec<u8>) -> (StatusCode, String, Option<u64>) {
        self.send(
            Request::post("/api/v1/write")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "snappy")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// `(labels, [(t, value bits)])` of every stored series.
    pub fn stored(&self) -> Vec<(String, Vec<(i64, u64)>)> {
        let db = self.state.db.get().unwrap();
        let any = Matcher::new(
            strata_engine::labels::matcher::MatchKind::Regex,
            "__name__",
            ".+",
        )
        .unwrap();
        db.querier(i64::MIN, i64::MAX)
            .select(&[any])
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s.labels().to_string(),
                    s.samples().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect()
    }
}

pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

pub fn encode(series: Vec<TimeSeries>) -> Vec<u8> {
    let raw = WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
    .encode_to_vec();
    strata_wire::snappy::compress(&raw)
}
