//! `GET /loki/api/v1/tail`: live tail over a WebSocket, as Grafana's "Live" mode and
//! `logcli --tail` use it. Once a second the server sends what the log query found since the
//! last message (entries older than `delay_for` seconds, at most 5, so that late senders are
//! caught), as `{"streams":[…],"dropped_entries":null}`; it stops when the client closes.
//! Parameters: `query` (a log query), `start` (default an hour ago), `limit` (per message,
//! default 100; a fuller second continues in the next message), `delay_for`.

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

/// Sends what the query finds, once a second, until the client goes.
async fn follow(
    mut socket: WebSocket,
    store: Arc<LogStore>,
    query: Arc<LogExpr>,
    mut from: i64,
    limit: usize,
    delay_secs: u64,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let to = now_ns() - delay_secs as i64 * 1_000_000_000;
                if to <= from {
                    continue;
                }
                let (s, q) = (Arc::clone(&store), Arc::clone(&query));
                let found = tokio::task::spawn_blocking(move || {
                    logql::select_logs(&s, &q, from, to, Direction::Forward, limit)
                })
                .await;
                let streams = match found {
                    Ok(Ok(streams)) => streams,
                    Ok(Err(e)) => {
                        let _ = socket.send(Message::Text(format!("error: {e}").into())).await;
                        break;
                    }
                    Err(_) => break,
                };
                let count: usize = streams.iter().map(|s| s.entries.len()).sum();
                let newest = streams
                    .iter()
                    .flat_map(|s| s.entries.iter().map(|e| e.ts_ns))
                    .max();
                // A full message may have left entries of this second: continue after the
                // newest sent; otherwise everything before `to` has been seen.
                from = match newest {
                    Some(t) if count >= limit => t + 1,
                    _ => to,
                };
                if count == 0 {
                    continue;
                }
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
