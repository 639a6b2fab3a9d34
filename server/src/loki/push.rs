//! `POST /loki/api/v1/push`: log entries in, as Loki's clients send them.
//!
//! Two bodies: protobuf (`logproto.PushRequest`, snappy-compressed; what Promtail and Grafana
//! Alloy send, and what a request without `Content-Type` is taken to be) and JSON
//! (`Content-Type: application/json`):
//!
//! ```json
//! {"streams": [{"stream": {"app": "api"},
//!               "values": [["1700000000000000000", "a line"],
//!                          ["1700000000000000001", "another", {"trace_id": "abc"}]]}]}
//! ```
//!
//! Timestamps are nanoseconds since the epoch, written as a string (a number is taken too);
//! the optional third element is the entry's structured metadata. Either body may also be
//! gzipped or deflated (`Content-Encoding`).
//!
//! Entries are checked one by one. The valid ones are written (durably before the answer,
//! under `fsync: always`) even when others are refused; a refused entry makes the answer a
//! 400 naming why (a 429 when a new stream was refused for the streams limit), and nothing
//! is lost by a retry: an entry already held is not stored twice. 204 when all were written.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_engine::labels::Labels;
use strata_engine::logs::{AppendError, Entry, LogStore};
use strata_wire::loki::{PushDecodeError, PushRequest};
use strata_wire::snappy::SnappyError;

use crate::body::{BodyError, Compression, InflateError, body_unread, inflate, read_body};
use crate::loki::state::SelectorCache;
use crate::metrics::{LogProtocol, LogTally};
use crate::rate::RateLimiter;
use crate::state::{AppState, LOG_WRITES_BUSY, NOT_READY};

/// The body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

/// Reads the format and the outer compression from the headers.
fn negotiate(headers: &HeaderMap) -> Result<(Format, Compression), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let format = if mime.eq_ignore_ascii_case("application/json") {
        Format::Json
    } else if mime.is_empty() || mime.eq_ignore_ascii_case("application/x-protobuf") {
        Format::Protobuf
    } else {
        return Err(format!(
            "unsupported Content-Type {content_type:?}: send application/x-protobuf \
             (snappy-compressed) or application/json"
        ));
    };
    // A protobuf body's own snappy block, said out loud by some clients, is no outer layer.
    let says_snappy = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("snappy"));
    let outer = if says_snappy && format == Format::Protobuf {
        Compression::Identity
    } else {
        Compression::from_headers(headers)?
    };
    Ok((format, outer))
}

/// `POST /loki/api/v1/push`.
pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(store) = state.logs() else {
        return body_unread(
            (StatusCode::SERVICE_UNAVAILABLE, format!("{NOT_READY}.\n")).into_response(),
        );
    };
    let (format, outer) = match negotiate(request.headers()) {
        Ok(n) => n,
        Err(message) => {
            return body_unread(
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{message}\n")).into_response(),
            );
        }
    };
    let Some(_turn) = state.log_write_turn().await else {
        return body_unread(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{LOG_WRITES_BUSY}\n"),
            )
                .into_response(),
        );
    };
    let body_max = state.loki.push_body_bytes_max;
    let body = match read_body(request.into_body(), body_max).await {
        Ok(body) => body,
        Err(BodyError::TooBig) => {
            return body_unread(
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than the {body_max} bytes allowed\n"),
                )
                    .into_response(),
            );
        }
        Err(BodyError::Read(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("reading the body failed: {e}\n"),
            )
                .into_response();
        }
    };
    let decoded_max = state.loki.push_decoded_bytes_max;
    let shared = Arc::clone(&state);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut tally = LogTally::default();
        let selectors = &shared.loki.selectors;
        let result = decode(&body, format, outer, decoded_max, selectors).and_then(|streams| {
            within_rate(&shared.log_rate, &streams, &mut tally)?;
            store_streams(&store, streams, &mut tally)
        });
        (result, tally)
    })
    .await;
    if let Ok((_, tally)) = &outcome {
        state.metrics.logs(LogProtocol::Loki, tally);
    }
    match outcome {
        Ok((Ok(()), _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((Err(refusal), _)) => {
            if refusal.status.is_server_error() {
                tracing::warn!(message = %refusal.message, "log push failed; the sender will retry");
            } else {
                tracing::debug!(message = %refusal.message, "log push refused");
            }
            (refusal.status, refusal.message).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "log push task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// A push answered with an error: its status and the text of the answer.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        let mut message = message.into();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        Refusal { status, message }
    }
}

/// One stream of a push: its labels as sent (for messages), read or refused, and its entries.
#[derive(Debug)]
struct PushStream {
    text: String,
    labels: Result<Labels, String>,
    entries: Vec<Entry>,
}

/// Decompresses and parses a body.
fn decode(
    body: &[u8],
    format: Format,
    outer: Compression,
    decoded_max: usize,
    selectors: &SelectorCache,
) -> Result<Vec<PushStream>, Refusal> {
    let raw = inflate(body, outer, decoded_max).map_err(|e| {
        let status = match e {
            InflateError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            InflateError::Corrupt { .. } => StatusCode::BAD_REQUEST,
        };
        Refusal::new(status, e.to_string())
    })?;
    match format {
        Format::Protobuf => decode_protobuf(&raw, decoded_max, selectors),
        Format::Json => decode_json(&raw),
    }
}

fn decode_protobuf(
    raw: &[u8],
    decoded_max: usize,
    selectors: &SelectorCache,
) -> Result<Vec<PushStream>, Refusal> {
    let request = PushRequest::decode_snappy(raw, decoded_max).map_err(|e| {
        let status = match e {
            PushDecodeError::Snappy(SnappyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Refusal::new(status, e.to_string())
    })?;
    Ok(request
        .streams
        .into_iter()
        .map(|s| {
            let labels = selectors.labels(&s.labels);
            let entries = s
                .entries
                .into_iter()
                .map(|e| Entry {
                    ts_ns: e.timestamp.map_or(0, |t| t.as_nanos()),
                    line: e.line,
                    metadata: e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect(),
                })
                .collect();
            PushStream {
                text: s.labels,
                labels,
                entries,
            }
        })
        .collect())
}

/// The JSON body.
#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

fn decode_json(raw: &[u8]) -> Result<Vec<PushStream>, Refusal> {
    let push: JsonPush = serde_json::from_slice(raw).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a Loki JSON push request: {e}"),
        )
    })?;
    let mut streams = Vec::with_capacity(push.streams.len());
    for (i, s) in push.streams.into_iter().enumerate() {
        let text = selector_text(&s.stream);
        let labels = Labels::new(&s.stream).map_err(|e| e.to_string());
        let mut entries = Vec::with_capacity(s.values.len());
        for (j, value) in s.values.into_iter().enumerate() {
            entries.push(json_entry(value).map_err(|reason| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("streams[{i}].values[{j}]: {reason}"),
                )
            })?);
        }
        streams.push(PushStream {
            text,
            labels,
            entries,
        });
    }
    Ok(streams)
}

/// One `[timestamp, line]` or `[timestamp, line, {metadata}]`.
fn json_entry(value: Vec<serde_json::Value>) -> Result<Entry, String> {
    use serde_json::Value;
    if !(2..=3).contains(&value.len()) {
        return Err(format!(
            "an entry is [\"<ns timestamp>\", \"<line>\"] with an optional metadata object, \
             not {} elements",
            value.len()
        ));
    }
    let mut parts = value.into_iter();
    let ts_ns = match parts.next() {
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map_err(|_| format!("timestamp {s:?} is not an integer number of nanoseconds"))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("timestamp {n} is not an integer number of nanoseconds"))?,
        _ => return Err("the timestamp must be a string of nanoseconds".to_owned()),
    };
    let Some(Value::String(line)) = parts.next() else {
        return Err("the line must be a string".to_owned());
    };
    let metadata = match parts.next() {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(format!("structured metadata {k:?} must be a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("structured metadata must be an object of strings".to_owned()),
    };
    Ok(Entry {
        ts_ns,
        line,
        metadata,
    })
}

/// `{a="b", c="d"}`, for messages.
fn selector_text(stream: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = stream.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Takes the push's bytes from the ingestion rate, or refuses the whole push with 429 (the
/// sender retries it later; nothing of it is stored).
fn within_rate(
    limiter: &RateLimiter,
    streams: &[PushStream],
    tally: &mut LogTally,
) -> Result<(), Refusal> {
    let (entries, bytes) = streams
        .iter()
        .flat_map(|s| &s.entries)
        .fold((0u64, 0u64), |(n, b), e| (n + 1, b + e.bytes() as u64));
    limiter.take(bytes).map_err(|wait| {
        tally.reject("rate_limit", entries);
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "ingestion rate limit exceeded (limit: {} bytes/s) while adding {entries} entries \
                 of {bytes} bytes; retry in {:.1} s",
                limiter.rate(),
                wait.as_secs_f64()
            ),
        )
    })
}

/// The most refusals named in an answer; the rest are counted.
const REFUSALS_SHOWN: usize = 10;

/// Appends every valid entry and commits them; `Err` names what was refused (after the valid
/// entries were written) or why the commit failed (nothing written).
fn store_streams(
    store: &LogStore,
    streams: Vec<PushStream>,
    tally: &mut LogTally,
) -> Result<(), Refusal> {
    let mut appender = store.appender();
    let (mut pending, mut pending_bytes) = (0u64, 0u64);
    let mut refused: Vec<String> = Vec::new();
    let (mut refused_count, mut total) = (0usize, 0usize);
    let mut too_many_streams = false;
    for stream in streams {
        total += stream.entries.len();
        let labels = match stream.labels {
            Ok(labels) => labels,
            Err(reason) => {
                refused_count += stream.entries.len();
                tally.reject("invalid_labels", stream.entries.len() as u64);
                if !stream.entries.is_empty() && refused.len() < REFUSALS_SHOWN {
                    refused.push(format!(
                        "stream {}: {} entries refused: {reason}",
                        stream.text,
                        stream.entries.len()
                    ));
                }
                continue;
            }
        };
        for entry in stream.entries {
            let bytes = entry.bytes() as u64;
            if let Err(e) = appender.append(&labels, entry) {
                too_many_streams |= matches!(e, AppendError::TooManyStreams { .. });
                tally.reject(e.reason(), 1);
                refused_count += 1;
                if refused.len() < REFUSALS_SHOWN {
                    refused.push(format!("stream {}: {e}", stream.text));
                }
            } else {
                pending += 1;
                pending_bytes += bytes;
            }
        }
    }
    appender.commit().map_err(|e| {
        tally.reject("unavailable", pending);
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("writing the entries failed, none were stored; retry: {e}"),
        )
    })?;
    tally.stored += pending;
    tally.bytes += pending_bytes;
    if refused_count == 0 {
        return Ok(());
    }
    let mut message = format!(
        "{refused_count} of {total} entries refused, the other {} stored:\n",
        total - refused_count
    );
    for line in &refused {
        message.push_str(line);
        message.push('\n');
    }
    if refused_count > refused.len() {
        message.push_str(&format!("(and {} more)\n", refused_count - refused.len()));
    }
    let status = if too_many_streams {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::BAD_REQUEST
    };
    Err(Refusal::new(status, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn content_type_and_encoding_choose_the_decoder() {
        assert_eq!(
            negotiate(&headers(&[])).unwrap(),
            (Format::Protobuf, Compression::Identity)
        );
        assert_eq!(
            negotiate(&headers(&[
                (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                (header::CONTENT_ENCODING, "gzip"),
            ]))
            .unwrap(),
            (Format::Json, Compression::Gzip)
        );
        assert_eq!(
            negotiate(&headers(&[
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ]))
            .unwrap(),
            (Format::Protobuf, Compression::Identity)
        );
        let e = negotiate(&headers(&[(header::CONTENT_TYPE, "text/plain")])).unwrap_err();
        assert!(e.contains("text/plain"), "{e}");
        let e = negotiate(&headers(&[(header::CONTENT_ENCODING, "br")])).unwrap_err();
        assert!(e.contains("br"), "{e}");
    }

    #[test]
    fn json_entries_take_string_or_number_timestamps_and_metadata() {
        let raw = br#"{"streams":[{"stream":{"app":"api"},"values":[
            ["1700000000000000001","one"],
            [1700000000000000002,"two",{"trace_id":"abc"}]]}]}"#;
        let streams = decode_json(raw).unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].text, r#"{app="api"}"#);
        let e = &streams[0].entries;
        assert_eq!(e[0], Entry::new(1_700_000_000_000_000_001, "one"));
        assert_eq!(e[1].ts_ns, 1_700_000_000_000_000_002);
        assert_eq!(e[1].metadata, vec![("trace_id".into(), "abc".into())]);
    }

    #[test]
    fn malformed_json_entries_are_named_by_position() {
        for (raw, expect) in [
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}"#,
                "streams[0].values[0]: timestamp \"x\"",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
                "not 1 elements",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
                "the line must be a string",
            ),
            (r#"{"streams":"#, "not a Loki JSON push request"),
        ] {
            let e = decode_json(raw.as_bytes()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(expect), "{raw}: {}", e.message);
        }
    }
}
