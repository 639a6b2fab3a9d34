//! `POST /_bulk`: newline-delimited pairs of an action and a document, as Elasticsearch
//! takes them. `index` and `create` store the document as a log entry; `delete` and `update`
//! are answered per item with an error (a log store does not change what it holds).
//!
//! A document becomes an entry of the stream `{index="<the action's _index, the path's, or
//! default>"}`:
//! - its time is `@timestamp` (RFC 3339, or epoch milliseconds as a number), else
//!   `timestamp` or `time`, else the time it arrived;
//! - its line is `message`, else `log`, else `msg`, else the whole document as JSON;
//! - its other fields are structured metadata, nested objects flattened with `_` (`host.name`
//!   becomes `host_name`), arrays as JSON.
//!
//! The answer is Elasticsearch's: 200 with `errors` and one item per action, each with its
//! `status` (201 stored, 400 refused with a `reason`); 400 for a body that is not NDJSON, 413
//! over the caps, 429 beyond the ingestion rate, 503 when the store cannot write (senders
//! retry those).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use strata_engine::labels::Labels;
use strata_engine::logql::pipeline::sanitize;
use strata_engine::logs::{Entry, LogStore};

use crate::body::{BodyError, Compression, InflateError, body_unread, inflate, read_body};
use crate::metrics::{LogProtocol, LogTally};
use crate::state::{AppState, LOG_WRITES_BUSY, NOT_READY};

/// The index of documents whose action and path name none.
const DEFAULT_INDEX: &str = "default";

/// `POST /_bulk`.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    run(state, None, request).await
}

/// `POST /{index}/_bulk`.
pub async fn handle_index(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    request: Request,
) -> Response {
    run(state, Some(index), request).await
}

/// An Elasticsearch-shaped error answer.
fn error(status: StatusCode, kind: &str, reason: String) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {"type": kind, "reason": reason},
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

async fn run(state: Arc<AppState>, path_index: Option<String>, request: Request) -> Response {
    let started = Instant::now();
    let compression = match Compression::from_headers(request.headers()) {
        Ok(c) => c,
        Err(message) => {
            return body_unread(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type_header_exception",
                message,
            ));
        }
    };
    let Some(store) = state.logs() else {
        return body_unread(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            NOT_READY.to_owned(),
        ));
    };
    let Some(_turn) = state.log_write_turn().await else {
        return body_unread(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "es_rejected_execution_exception",
            LOG_WRITES_BUSY.to_owned(),
        ));
    };
    let body_max = state.loki.push_body_bytes_max;
    let body = match read_body(request.into_body(), body_max).await {
        Ok(body) => body,
        Err(BodyError::TooBig) => {
            return body_unread(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "content_too_long_exception",
                format!("the body is larger than the {body_max} bytes allowed"),
            ));
        }
        Err(BodyError::Read(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "parse_exception",
                format!("reading the body failed: {e}"),
            );
        }
    };
    let decoded_max = state.loki.push_decoded_bytes_max;
    let shared = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut tally = LogTally::default();
        let result = inflate(&body, compression, decoded_max)
            .map_err(|e| match e {
                InflateError::TooLarge { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "content_too_long_exception",
                    e.to_string(),
                ),
                InflateError::Corrupt { .. } => {
                    (StatusCode::BAD_REQUEST, "parse_exception", e.to_string())
                }
            })
            .and_then(|raw| parse(&raw, path_index.as_deref()))
            .and_then(|actions| {
                let bytes: u64 = actions
                    .iter()
                    .filter_map(|a| a.entry.as_ref().ok())
                    .map(|(_, e)| e.bytes() as u64)
                    .sum();
                if let Err(wait) = shared.log_rate.take(bytes) {
                    tally.reject("rate_limit", actions.len() as u64);
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        "es_rejected_execution_exception",
                        format!(
                            "ingestion rate limit exceeded (limit: {} bytes/s); retry in {:.1} s",
                            shared.log_rate.rate(),
                            wait.as_secs_f64()
                        ),
                    ));
                }
                store_actions(&store, actions, &mut tally)
            });
        (result, tally)
    })
    .await;
    let (result, tally) = match outcome {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "bulk task failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    state.metrics.logs(LogProtocol::Elastic, &tally);
    match result {
        Ok(items) => {
            let errors = items.iter().any(|i| {
                i.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(|v| v["status"].as_u64())
                    .is_some_and(|s| s >= 300)
            });
            axum::Json(json!({
                "took": started.elapsed().as_millis() as u64,
                "errors": errors,
                "items": items,
            }))
            .into_response()
        }
        Err((status, kind, reason)) => error(status, kind, reason),
    }
}

/// One action of the body and what it asks to store.
struct Action {
    /// `index`, `create`, `delete` or `update`.
    kind: String,
    index: String,
    id: Option<String>,
    /// The stream and entry, or why the document cannot be one.
    entry: Result<(String, Entry), String>,
}

type Failure = (StatusCode, &'static str, String);

/// Reads the NDJSON body into actions.
fn parse(raw: &[u8], path_index: Option<&str>) -> Result<Vec<Action>, Failure> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "parse_exception",
            format!("the body is not UTF-8: {e}"),
        )
    })?;
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut actions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let bad = |message: String| {
            (
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                format!("line {}: {message}", n + 1),
            )
        };
        let action: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not a JSON action: {e}")))?;
        let Some((kind, meta)) = action
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(bad(
                "an action is an object with one key, such as {\"index\":{}}".into(),
            ));
        };
        let index = meta["_index"]
            .as_str()
            .or(path_index)
            .unwrap_or(DEFAULT_INDEX)
            .to_owned();
        let id = meta["_id"].as_str().map(str::to_owned);
        let kind = kind.clone();
        let entry = match kind.as_str() {
            "index" | "create" => {
                let Some((_, doc)) = lines.next() else {
                    return Err(bad(format!("the {kind} action has no document after it")));
                };
                match serde_json::from_str::<Value>(doc) {
                    Ok(Value::Object(doc)) => Ok((index.clone(), document(doc, now_ns))),
                    Ok(_) => Err("the document is not a JSON object".to_owned()),
                    Err(e) => Err(format!("the document is not JSON: {e}")),
                }
            }
            "update" => {
                // Its partial document follows; skipped.
                lines.next();
                Err("a log store does not update documents".to_owned())
            }
            "delete" => Err("a log store does not delete documents".to_owned()),
            other => return Err(bad(format!("unknown action {other:?}"))),
        };
        actions.push(Action {
            kind,
            index,
            id,
            entry,
        });
    }
    Ok(actions)
}

/// A document as an entry: its time, its line, its other fields as metadata.
fn document(mut doc: Map<String, Value>, now_ns: i64) -> Entry {
    let mut ts_ns = None;
    for key in ["@timestamp", "timestamp", "time"] {
        if let Some(v) = doc.get(key) {
            let parsed = match v {
                Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                    .ok()
                    .and_then(|t| t.timestamp_nanos_opt()),
                Value::Number(n) => match n.as_i64() {
                    Some(ms) => ms.checked_mul(1_000_000),
                    None => n.as_f64().map(|ms| (ms * 1e6) as i64),
                },
                _ => None,
            };
            if parsed.is_some() {
                ts_ns = parsed;
                doc.remove(key);
                break;
            }
        }
    }
    let line = ["message", "log", "msg"]
        .iter()
        .find_map(|k| match doc.get(*k) {
            Some(Value::String(s)) => Some((*k, s.clone())),
            _ => None,
        })
        .map(|(k, line)| {
            doc.remove(k);
            line
        })
        .unwrap_or_else(|| Value::Object(doc.clone()).to_string());
    let mut metadata = Vec::new();
    flatten(&mut metadata, &mut String::new(), &doc);
    metadata.retain(|(_, v)| !v.is_empty());
    Entry {
        ts_ns: ts_ns.unwrap_or(now_ns),
        line,
        metadata,
    }
}

fn flatten(out: &mut Vec<(String, String)>, prefix: &mut String, doc: &Map<String, Value>) {
    for (k, v) in doc {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('_');
        }
        prefix.push_str(&sanitize(k));
        match v {
            Value::Object(o) => flatten(out, prefix, o),
            Value::Null => {}
            Value::String(s) => out.push((prefix.clone(), s.clone())),
            other => out.push((prefix.clone(), other.to_string())),
        }
        prefix.truncate(len);
    }
}

/// Appends the entries, commits, and answers each action.
fn store_actions(
    store: &LogStore,
    actions: Vec<Action>,
    tally: &mut LogTally,
) -> Result<Vec<Value>, Failure> {
    let mut appender = store.appender();
    let (mut pending, mut pending_bytes) = (0u64, 0u64);
    let mut items = Vec::with_capacity(actions.len());
    for action in actions {
        let outcome = action.entry.and_then(|(index, entry)| {
            let labels = Labels::new([("index", index.as_str())]).map_err(|e| e.to_string())?;
            let bytes = entry.bytes() as u64;
            appender.append(&labels, entry).map_err(|e| {
                tally.reject(e.reason(), 1);
                e.to_string()
            })?;
            pending += 1;
            pending_bytes += bytes;
            Ok(())
        });
        let mut item = json!({"_index": action.index, "_id": action.id});
        match outcome {
            Ok(()) => {
                item["status"] = json!(201);
                item["result"] = json!("created");
            }
            Err(reason) => {
                item["status"] = json!(400);
                item["error"] = json!({"type": "illegal_argument_exception", "reason": reason});
            }
        }
        items.push(json!({ action.kind: item }));
    }
    appender.commit().map_err(|e| {
        tally.reject("unavailable", pending);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            format!("writing the documents failed, none were stored; retry: {e}"),
        )
    })?;
    tally.stored += pending;
    tally.bytes += pending_bytes;
    Ok(items)
}
