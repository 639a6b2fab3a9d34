//! `GET /loki/api/v1/tail`: live tail over a WebSocket, as Grafana's "Live" mode and
//! `logcli --tail` use it. Once a second the server sends what the log query found since the
//! last message (entries older than `delay_for` seconds, at most 5, so that late senders are
//! caught), as `{"streams":[…],"dropped_entries":null}`; an entry up to five seconds older
//! than the last message is still sent, once. It stops when the client closes.
//! Parameters: `query` (a log query), `start` (default an hour ago), `limit` (per message,
//! default 100; a fuller second continues in the next message), `delay_for`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_engine::logql::{self, Expr, LogExpr};
use strata_engine::logs::{Direction, LogStore};

use super::query::{Failure, now_ns, parse_query, store, streams_answer, time_param};
use crate::prom::api::params::Params;
use crate::state::AppState;

/// The longest `delay_for` Loki accepts, in seconds.
const DELAY_MAX_SECS: u64 = 5;

/// `GET /loki/api/v1/tail`.
pub async fn tail(
    State(state): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    params: Params,
) -> Response {
    let setup = (|| {
        let store = store(&state)?;
        let Expr::Log(query) = parse_query(&params)? else {
            return Err(Failure::bad("tail needs a log query, not a metric query"));
        };
        let start = time_param(&params, "start")?.unwrap_or_else(|| now_ns() - 3_600_000_000_000);
        let limit = match params.get("limit") {
            None => 100,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|&l| l > 0 && l <= super::query::ENTRIES_LIMIT_MAX)
                .ok_or_else(|| Failure::bad(format!("invalid parameter \"limit\": {l:?}")))?,
        };
        let delay = match params.get("delay_for") {
            None => 0,
            Some(d) => d
                .parse::<u64>()
                .ok()
                .filter(|&d| d <= DELAY_MAX_SECS)
                .ok_or_else(|| {
                    Failure::bad(format!(
                        "delay_for must be whole seconds from 0 to {DELAY_MAX_SECS}, not {d:?}"
                    ))
                })?,
        };
        Ok((store, query, start, limit, delay))
    })();
    // The parameters are checked first, so a bad one is a 400 whatever the handshake.
    match (setup, ws) {
        (Ok((store, query, start, limit, delay)), Ok(ws)) => {
            ws.on_upgrade(move |socket| follow(socket, store, Arc::new(query), start, limit, delay))
        }
        (Err(f), _) => f.into_response(),
        (Ok(_), Err(rejection)) => rejection.into_response(),
    }
}

/// How far behind the last message an entry's time may be and still be sent: entries that
/// arrive a little late (a sender's clock, a retried push) are looked for again, once.
const LATE_NS: i64 = 5_000_000_000;

/// Sends what the query finds, once a second, until the client goes. Each round reads from
/// [`LATE_NS`] before the last round's end, and skips what it has sent already.
async fn follow(
    mut socket: WebSocket,
    store: Arc<LogStore>,
    query: Arc<LogExpr>,
    start: i64,
    limit: usize,
    delay_secs: u64,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut from = start;
    // What was sent at or after `from - LATE_NS`: (time, hash of stream and line).
    let mut sent: BTreeSet<(i64, u64)> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let to = now_ns() - delay_secs as i64 * 1_000_000_000;
                let window_start = from.saturating_sub(LATE_NS).max(start);
                if to <= window_start {
                    continue;
                }
                let (s, q) = (Arc::clone(&store), Arc::clone(&query));
                let read_limit = limit + sent.len();
                let found = tokio::task::spawn_blocking(move || {
                    logql::select_logs(&s, &q, window_start, to, Direction::Forward, read_limit)
                })
                .await;
                let mut streams = match found {
                    Ok(Ok(streams)) => streams,
                    Ok(Err(e)) => {
                        let _ = socket.send(Message::Text(format!("error: {e}").into())).await;
                        break;
                    }
                    Err(_) => break,
                };
                let mut count = 0usize;
                let mut newest = None;
                for stream in &mut streams {
                    let labels = format!("{:?}", stream.labels);
                    stream.entries.retain(|e| {
                        let key = (e.ts_ns, xxhash_rust::xxh3::xxh3_64(format!("{labels}\u{0}{}", e.line).as_bytes()));
                        if count >= limit || !sent.insert(key) {
                            return false;
                        }
                        count += 1;
                        newest = newest.max(Some(e.ts_ns));
                        true
                    });
                }
                // A full message may have left entries behind: continue after the newest
                // sent; otherwise everything before `to` has been looked at.
                from = match newest {
                    Some(t) if count >= limit => t + 1,
                    _ => to,
                };
                let keep_from = from.saturating_sub(LATE_NS);
                sent.retain(|&(t, _)| t >= keep_from);
                if count == 0 {
                    continue;
                }
                streams.retain(|s| !s.entries.is_empty());
                let answer = streams_answer(&streams, false);
                let message = json!({
                    "streams": answer["data"]["result"],
                    "dropped_entries": null,
                });
                if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
