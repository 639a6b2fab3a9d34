//! Elasticsearch's bulk API in process: documents as Fluent Bit, Vector and Logstash send them
//! in Elasticsearch mode, stored as log entries and read back with LogQL; per-item answers.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use support::{Server, now_ms};

async fn bulk(server: &Server, path: &str, ndjson: &str) -> (StatusCode, Value) {
    let (status, text, _) = server
        .send(
            Request::post(path)
                .header("content-type", "application/x-ndjson")
                .body(Body::from(ndjson.to_owned()))
                .unwrap(),
        )
        .await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v)
}

/// `(ns, line, metadata)` of every entry of `selector`, oldest first.
async fn entries(server: &Server, selector: &str) -> Vec<(String, String, Value)> {
    let (_, body, _) = server
        .send(
            Request::get(format!(
                "/loki/api/v1/query_range?direction=forward&since=1h&query={}",
                form_urlencoded::byte_serialize(selector.as_bytes()).collect::<String>()
            ))
            .header("x-loki-response-encoding-flags", "categorize-labels")
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().clone())
        .map(|e| {
            (
                e[0].as_str().unwrap().to_owned(),
                e[1].as_str().unwrap().to_owned(),
                e[2]["structuredMetadata"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn bulk_documents_become_log_entries_and_each_action_is_answered() {
    let server = Server::start().with_logs();
    let ms = now_ms() - 60_000;
    let rfc3339 = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        json!({"index": {"_index": "app-logs", "_id": "1"}}),
        json!({"@timestamp": rfc3339, "message": "user logged in", "host": {"name": "web-1"}, "level": "info"}),
        json!({"create": {"_index": "app-logs"}}),
        json!({"@timestamp": ms + 1, "log": "second line", "tags": ["a", "b"]}),
        json!({"delete": {"_index": "app-logs", "_id": "1"}}),
        json!({"index": {"_index": "app-logs"}}),
        "[1, 2, 3]",
    );
    let (status, v) = bulk(&server, "/_bulk", &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["errors"], true);
    let statuses: Vec<(String, u64)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let (k, item) = i.as_object().unwrap().iter().next().unwrap();
            (k.clone(), item["status"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("index".to_owned(), 201),
            ("create".to_owned(), 201),
            ("delete".to_owned(), 400),
            ("index".to_owned(), 400),
        ]
    );
    assert!(
        v["items"][2]["delete"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not delete")
    );

    let got = entries(&server, r#"{index="app-logs"}"#).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0].0,
        (ms * 1_000_000).to_string(),
        "@timestamp in RFC 3339"
    );
    assert_eq!(got[0].1, "user logged in");
    assert_eq!(got[0].2, json!({"host_name": "web-1", "level": "info"}));
    assert_eq!(
        got[1].0,
        ((ms + 1) * 1_000_000).to_string(),
        "@timestamp in epoch ms"
    );
    assert_eq!(got[1].1, "second line");
    assert_eq!(got[1].2, json!({"tags": r#"["a","b"]"#}));
}

#[tokio::test]
async fn the_path_names_the_index_and_a_broken_body_is_refused() {
    let server = Server::start().with_logs();
    let ms = now_ms() - 1_000;
    let body = format!(
        "{}\n{}\n",
        json!({"index": {}}),
        json!({"@timestamp": ms, "status": 500, "path": "/pay"})
    );
    let (status, v) = bulk(&server, "/web/_bulk", &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["errors"], false);
    let got = entries(&server, r#"{index="web"}"#).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1, r#"{"path":"/pay","status":500}"#,
        "no message: the document"
    );

    for (body, expect) in [
        ("{not json\n", "not a JSON action"),
        (r#"{"index":{}}"#, "no document after it"),
        (r#"{"explode":{}}"#, "unknown action"),
    ] {
        let (status, v) = bulk(&server, "/_bulk", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["error"]["reason"].as_str().unwrap().contains(expect),
            "{body}: {v}"
        );
    }
}

/// What Vector, Logstash and Elastic's clients ask before they send: the version at `/` (a
/// browser asking for a page is not answered with it), the license, index templates; every
/// answer of the Elasticsearch API, `_bulk`'s too, says it is Elasticsearch's.
#[tokio::test]
async fn elasticsearch_clients_probes_are_answered_as_they_expect() {
    let server = Server::start().with_logs();
    let get = |path: &str, accept: Option<&str>| {
        let mut r = Request::get(path);
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.body(Body::empty()).unwrap()
    };
    let (status, headers, text) = server.exchange(get("/", Some("application/json"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    let v: Value = serde_json::from_str(&text).unwrap();
    let version = v["version"]["number"].as_str().unwrap();
    assert_eq!(version.split('.').next(), Some("8"), "{v}");
    let (status, _, _) = server.send(get("/", None)).await;
    assert_eq!(status, StatusCode::OK, "no Accept header: a client");
    let (status, _, _) = server
        .send(get("/", Some("text/html,application/xhtml+xml")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a browser is not a client");

    let (status, text, _) = server.send(get("/_license", None)).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["license"]["status"], "active");

    for path in ["/_index_template/logstash", "/_template/logstash"] {
        let (status, headers, _) = server.exchange(get(path, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: none kept");
        assert_eq!(headers["x-elastic-product"], "Elasticsearch");
        let (status, text, _) = server
            .send(
                Request::put(path)
                    .header("content-type", "application/json")
                    .body(Body::from(r#"{"index_patterns":["logs-*"]}"#))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"acknowledged": true})
        );
    }

    let (_, headers, _) = server
        .exchange(
            Request::post("/_bulk")
                .header("content-type", "application/x-ndjson")
                .body(Body::from(
                    "{\"index\":{\"_index\":\"app\"}}\n{\"message\":\"hello\"}\n",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    // Other families' answers do not claim it.
    let (_, headers, _) = server.exchange(get("/loki/api/v1/labels", None)).await;
    assert!(headers.get("x-elastic-product").is_none());
}
