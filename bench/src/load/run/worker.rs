//! A worker: takes the next request of its lane when it is due (open model) or as soon as its
//! last one returned (closed model), sends it on its own connection and records its latency;
//! and a fault command run at its time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_body_util::Full;

use super::{Fault, FaultRun, LaneState, Model, Shared};
use crate::load::client::{Connection, SendError};
use crate::load::scenario::{Generator, write::Ledger};
use crate::load::stats::{Outcome, Record};

/// What a worker hands back.
pub(super) struct WorkerDone {
    pub lane: Arc<LaneState>,
    pub ledger: Option<Ledger>,
    pub connects: u64,
}

pub(super) async fn worker(
    w: usize,
    lane: Arc<LaneState>,
    shared: Arc<Shared>,
    mut generator: Box<dyn Generator>,
) -> WorkerDone {
    let endpoint = lane.scenario.endpoint().clone();
    let mut conn = Connection::new(endpoint.addr);
    let host = hyper::header::HeaderValue::from_str(&endpoint.authority)
        .expect("the authority came from a parsed URL");
    let mut stopped = shared.stopped.subscribe();
    loop {
        if !shared.claim() {
            break;
        }
        let (i, mut due) = match lane.model {
            Model::Open => {
                let i = lane.next.fetch_add(1, Ordering::SeqCst);
                let Some(due_s) = lane.pacer.due(i) else {
                    break;
                };
                (i, shared.start + Duration::from_secs_f64(due_s))
            }
            Model::Closed => {
                let t = Instant::now()
                    .saturating_duration_since(shared.start)
                    .as_secs_f64();
                let Some(target) = lane.pacer.target_at(t) else {
                    break;
                };
                if w as f64 >= target.ceil() {
                    // Not one of the active workers yet (or any more): look again shortly.
                    shared.sent.fetch_sub(1, Ordering::Relaxed);
                    if t >= lane.pacer.end_s() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                }
                (lane.next.fetch_add(1, Ordering::SeqCst), Instant::now())
            }
        };
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        // Built before its due time, so building it is not counted as the target's latency.
        let Some(request) = generator.next(i, shared.unix_ms(due)) else {
            break;
        };
        match lane.model {
            Model::Open => {
                let mut ended = false;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = stopped.wait_for(|s| *s) => { ended = true; break; }
                    }
                    // The stress profile may have moved this request later (its recovery runs
                    // at the base rate) while the worker waited for it.
                    match lane.pacer.due(i) {
                        Some(d)
                            if shared.start + Duration::from_secs_f64(d)
                                > due + Duration::from_millis(1) =>
                        {
                            due = shared.start + Duration::from_secs_f64(d);
                        }
                        Some(_) => break,
                        None => {
                            ended = true;
                            break;
                        }
                    }
                }
                if ended {
                    break;
                }
            }
            Model::Closed => due = Instant::now(),
        }
        let sent = Instant::now();
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(request.uri)
            .header(hyper::header::HOST, host.clone());
        for (name, value) in request.headers.iter() {
            builder = builder.header(name, value);
        }
        let bytes_sent = request.body.len() as u64;
        let http_request = builder
            .body(Full::new(request.body))
            .expect("the parts were validated when the run was set up");
        let result = conn.send(http_request, shared.request_timeout, false).await;
        let done = Instant::now();
        let (outcome, received, error) = match result {
            Ok(answer) if lane.scenario.expected(answer.status) => {
                (Outcome::Ok, answer.body_bytes, None)
            }
            Ok(answer) => {
                let text = String::from_utf8_lossy(&answer.body).trim().to_owned();
                (
                    Outcome::Status(answer.status.as_u16()),
                    answer.body_bytes,
                    Some(format!("{}: {text}", answer.status)),
                )
            }
            Err(SendError::Timeout) => (Outcome::Timeout, 0, Some(SendError::Timeout.to_string())),
            Err(e @ SendError::Transport(_)) => (Outcome::Transport, 0, Some(e.to_string())),
        };
        let ok = outcome == Outcome::Ok;
        let late = sent.saturating_duration_since(due);
        if lane.model == Model::Open {
            lane.late_us
                .fetch_add(late.as_micros() as u64, Ordering::Relaxed);
            lane.late_n.fetch_add(1, Ordering::Relaxed);
        }
        lane.recorder.record(
            &Record {
                latency: done.saturating_duration_since(due),
                outcome,
                samples: request.samples,
                bytes_sent,
                bytes_received: received,
                late,
            },
            error.as_deref(),
        );
        generator.finished(ok);
    }
    WorkerDone {
        ledger: generator.ledger(),
        connects: conn.connects,
        lane,
    }
}

pub(super) async fn run_fault(fault: Fault, shared: Arc<Shared>) -> FaultRun {
    let mut stopped = shared.stopped.subscribe();
    tokio::select! {
        _ = tokio::time::sleep_until((shared.start + fault.at).into()) => {}
        _ = stopped.wait_for(|s| *s) => {
            return FaultRun { fault, started_s: f64::NAN, ended_s: None, exit: Some("not run: the run ended first".into()) };
        }
    }
    let started_s = shared.start.elapsed().as_secs_f64();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&fault.command)
        .kill_on_drop(true)
        .status()
        .await;
    let ended_s = Some(shared.start.elapsed().as_secs_f64());
    let exit = Some(match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("could not start: {e}"),
    });
    FaultRun {
        fault,
        started_s,
        ended_s,
        exit,
    }
}
