//! Live tail over a real WebSocket: the server, listening on 127.0.0.1, sends what a log query
//! finds as it arrives, and stops when the client closes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Server, now_ms};
use tokio_tungstenite::tungstenite::Message;

/// The next tail message within `limit`, as JSON.
async fn next_message<S>(ws: &mut S, limit: Duration) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(limit, ws.next())
            .await
            .expect("a tail message within the limit")
            .expect("the connection open")
            .expect("a frame");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        }
    }
}

fn lines(message: &Value) -> Vec<String> {
    message["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter())
        .map(|v| v[1].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn tail_sends_matching_entries_as_they_arrive() {
    let server = Server::start().with_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = strata_server::http::router(Arc::clone(&server.state));
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let now = now_ms() * 1_000_000;
    let push = |line: &str, ts: i64| json!({"streams": [{"stream": {"app": "tail"}, "values": [[ts.to_string(), line]]}]});
    assert_eq!(
        server
            .push_json(&push("error: before", now - 2_000_000_000))
            .await
            .0
            .as_u16(),
        204
    );
    assert_eq!(
        server
            .push_json(&push("info: ignored", now - 1_000_000_000))
            .await
            .0
            .as_u16(),
        204
    );

    let query: String = form_urlencoded::byte_serialize(br#"{app="tail"} |= "error""#).collect();
    let url = format!(
        "ws://{addr}/loki/api/v1/tail?query={query}&start={}",
        now - 10_000_000_000
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = next_message(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(lines(&first), ["error: before"]);
    assert_eq!(first["streams"][0]["stream"], json!({"app": "tail"}));

    // An entry pushed now arrives in a later message, even stamped two seconds back (a
    // sender's clock, a retry): the tail looks back for late entries and sends them once.
    let later = now_ms() * 1_000_000 - 2_000_000_000;
    assert_eq!(
        server
            .push_json(&push("error: after", later))
            .await
            .0
            .as_u16(),
        204
    );
    let second = next_message(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(
        lines(&second),
        ["error: after"],
        "sent once, without what came before"
    );

    ws.send(Message::Close(None)).await.unwrap();
    serving.abort();
}

#[tokio::test]
async fn tail_refuses_what_it_cannot_follow() {
    let server = Server::start().with_logs();
    for (uri, expect) in [
        (
            "/loki/api/v1/tail?query=count_over_time(%7Ba%3D%22b%22%7D%5B1m%5D)",
            "log query",
        ),
        (
            "/loki/api/v1/tail?query=%7Ba%3D%22b%22%7D&delay_for=60",
            "delay_for",
        ),
    ] {
        let (status, text, _) = server
            .send(
                axum::http::Request::get(uri)
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status.as_u16(), 400, "{uri}: {text}");
        assert!(text.contains(expect), "{uri}: {text}");
    }
}
