//! The run: workers sending on their own connections, a once-a-second tick that keeps the
//! timeline, prints the progress line, drives the stress profile and runs the fault commands.
//!
//! **Open model** (an arrival rate): the workers of a lane share one counter of requests; a
//! worker takes the next request number, waits until that request is due by the schedule,
//! sends it and records its latency *from when it was due*. If every worker is busy, due
//! requests wait, and the wait counts in their latency — a stalled target shows as latency,
//! not as a sender that politely slowed down. The number of workers bounds the requests in
//! flight (k6's `maxVUs`). Waits use tokio's timer, whose resolution is a millisecond: a
//! request may be sent up to about a millisecond after it was due, and that counts too (the
//! summary shows the mean lateness).
//!
//! **Closed model** (a number of workers): each active worker sends its next request as soon
//! as the last one returned; the latency runs from sending. Stages ramp the active workers.
//!
//! Every run is bounded: by its schedule, by `max_duration` and by `max_requests`; a request
//! by `request_timeout`. Ctrl-C ends a run early with a report of what was done.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::Full;

use super::analysis::{Objective, StressState};
use super::client::{Connection, SendError};
use super::scenario::{Scenario, write::Ledger};
use super::schedule::{Profile, Schedule, ShapeOptions};
use super::selfmetrics::SelfMetrics;
use super::stats::{Outcome, Record, Recorder, Second, Window};
use super::target::TargetWatch;

/// Open or closed model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// The schedule is an arrival rate (requests per second).
    Open,
    /// The schedule is a number of workers, each sending back to back.
    Closed,
}

/// One scenario with its load shape. A run has one lane, or two for `mixed`.
#[derive(Debug)]
pub struct Lane {
    pub scenario: Arc<dyn Scenario>,
    pub model: Model,
    pub schedule: Schedule,
    /// Workers (open model: the most requests in flight; closed: the most active).
    pub workers: usize,
    /// When the lane starts, after the run's start.
    pub offset: Duration,
}

/// A command run at a given moment of the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fault {
    #[serde(serialize_with = "secs")]
    pub at: Duration,
    pub command: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// How a fault command went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultRun {
    pub fault: Fault,
    /// Seconds after the start it began and ended.
    pub started_s: f64,
    pub ended_s: Option<f64>,
    pub exit: Option<String>,
}

/// Everything a run needs.
#[derive(Debug)]
pub struct RunOptions {
    pub lanes: Vec<Lane>,
    pub profile: Option<Profile>,
    pub shape: ShapeOptions,
    pub objective: Objective,
    pub request_timeout: Duration,
    pub max_duration: Duration,
    pub max_requests: u64,
    pub faults: Vec<Fault>,
    pub watch: TargetWatch,
    /// Print the progress line every second (to stderr).
    pub progress: bool,
    /// Runtime threads.
    pub threads: usize,
    /// Where the generator's own metrics are remote-written once a second, if anywhere.
    pub metrics: Option<SelfMetrics>,
}

/// One lane's results.
#[derive(Debug)]
pub struct LaneResult {
    pub name: String,
    pub model: Model,
    pub schedule: Schedule,
    pub workers: usize,
    pub total: Window,
    pub timeline: Vec<Second>,
    /// Mean time requests were sent after they were due (open model).
    pub mean_late_ms: f64,
    pub ledgers: Vec<Ledger>,
    pub connects: u64,
}

/// What a run did.
#[derive(Debug)]
pub struct RunResult {
    pub started_unix_ms: i64,
    pub duration_s: f64,
    pub lanes: Vec<LaneResult>,
    pub faults: Vec<FaultRun>,
    pub stress: Option<StressState>,
    /// Why the run ended.
    pub ended_by: String,
    /// CPU time the generator used (every thread, user and system).
    pub generator_cpu_s: f64,
}

/// When requests are due: the lane's schedule, unless the stress profile has switched to its
/// recovery, which is a constant rate from a given request on.
struct Pacer {
    schedule: Schedule,
    offset_s: f64,
    // Invariant: once set, every request numbered `from` or higher is timed by it.
    rebase: Mutex<Option<Rebase>>,
}

#[derive(Debug, Clone, Copy)]
struct Rebase {
    from: u64,
    at_s: f64,
    target: f64,
    until_s: f64,
}

impl Pacer {
    fn due(&self, i: u64) -> Option<f64> {
        if let Some(r) = *self.rebase.lock().expect("pacer lock")
            && i >= r.from
        {
            let t = r.at_s + (i - r.from) as f64 / r.target.max(1e-9);
            return (t < r.until_s).then_some(t);
        }
        self.schedule.due(i).map(|t| t + self.offset_s)
    }

    fn target_at(&self, t: f64) -> Option<f64> {
        if let Some(r) = *self.rebase.lock().expect("pacer lock")
            && t >= r.at_s
        {
            return (t < r.until_s).then_some(r.target);
        }
        let local = t - self.offset_s;
        if local < 0.0 {
            return Some(0.0);
        }
        (local < self.schedule.duration().as_secs_f64()).then(|| self.schedule.target_at(local))
    }

    fn end_s(&self) -> f64 {
        match *self.rebase.lock().expect("pacer lock") {
            Some(r) => r.until_s,
            None => self.offset_s + self.schedule.duration().as_secs_f64(),
        }
    }
}

/// Shared by the workers of a lane and the tick.
struct LaneState {
    scenario: Arc<dyn Scenario>,
    model: Model,
    pacer: Pacer,
    next: AtomicU64,
    recorder: Recorder,
    late_us: AtomicU64,
    late_n: AtomicU64,
}

/// Shared by everything in the run.
struct Shared {
    start: Instant,
    start_unix_ms: i64,
    stop: AtomicBool,
    /// Becomes `true` with `stop`, to wake workers waiting for a due time.
    stopped: tokio::sync::watch::Sender<bool>,
    sent: AtomicU64,
    max_requests: u64,
    request_timeout: Duration,
}

impl Shared {
    fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stopped.send_replace(true);
    }

    fn unix_ms(&self, at: Instant) -> i64 {
        self.start_unix_ms + at.saturating_duration_since(self.start).as_millis() as i64
    }

    /// Claims one request of the run's budget.
    fn claim(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && self.sent.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }
}

/// Runs the whole thing on a fresh tokio runtime.
pub fn run(options: RunOptions) -> anyhow::Result<RunResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: RunOptions) -> anyhow::Result<RunResult> {
    // A short lead, so every worker is waiting before the first request is due.
    let start = Instant::now() + Duration::from_millis(50);
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_millis(50);
    let shared = Arc::new(Shared {
        start,
        start_unix_ms: since_epoch.as_millis() as i64,
        stop: AtomicBool::new(false),
        stopped: tokio::sync::watch::channel(false).0,
        sent: AtomicU64::new(0),
        max_requests: options.max_requests,
        request_timeout: options.request_timeout,
    });
    let lanes: Vec<Arc<LaneState>> = options
        .lanes
        .iter()
        .map(|lane| {
            Arc::new(LaneState {
                scenario: lane.scenario.clone(),
                model: lane.model,
                pacer: Pacer {
                    schedule: lane.schedule.clone(),
                    offset_s: lane.offset.as_secs_f64(),
                    rebase: Mutex::new(None),
                },
                next: AtomicU64::new(0),
                recorder: Recorder::default(),
                late_us: AtomicU64::new(0),
                late_n: AtomicU64::new(0),
            })
        })
        .collect();

    let mut workers = tokio::task::JoinSet::new();
    for (lane, spec) in lanes.iter().zip(&options.lanes) {
        for w in 0..spec.workers.max(1) {
            let generator = lane.scenario.generator(w, spec.workers.max(1));
            let (lane, shared) = (lane.clone(), shared.clone());
            workers.spawn(async move { worker(w, lane, shared, generator).await });
        }
    }

    let deadline = start + options.max_duration;
    let mut faults: Vec<FaultRun> = Vec::new();
    let mut fault_tasks = Vec::new();
    for fault in &options.faults {
        let (fault, shared) = (fault.clone(), shared.clone());
        fault_tasks.push(tokio::spawn(async move { run_fault(fault, shared).await }));
    }

    let mut stress = (options.profile == Some(Profile::Stress)).then(|| {
        StressState::new(
            &options.lanes[0].schedule,
            options.objective,
            options.shape.recovery,
        )
    });
    let mut timelines: Vec<Vec<Second>> = vec![Vec::new(); lanes.len()];
    let mut totals: Vec<Window> = lanes.iter().map(|_| Window::default()).collect();
    let me = crate::ingest::process::Process::current();
    let cpu_at_start = me.cpu().unwrap_or_default();
    let mut watch = options.watch;
    let mut metrics = options.metrics;
    let mut tick = 1u64;
    let mut ended_by = String::from("the schedule ended");
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut finished_workers = Vec::new();
    loop {
        let next_tick = start + Duration::from_secs(tick);
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(result) => {
                    finished_workers.push(result.map_err(|e| anyhow::anyhow!("a worker failed: {e}"))?);
                    continue;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(next_tick.into()) => {}
            _ = &mut interrupted => {
                ended_by = "interrupted (Ctrl-C)".into();
                shared.halt();
                continue;
            }
        }
        let t = tick as f64;
        let rss = watch.sample();
        let mut switch = None;
        let mut outcomes = Vec::with_capacity(lanes.len());
        for (i, lane) in lanes.iter().enumerate() {
            let w = lane.recorder.take();
            let target = lane.pacer.target_at(t - 0.5).unwrap_or(0.0);
            let mut second = Second::of(&w, t, target, rss);
            second.generator_rss_bytes = me.memory().ok().map(|m| m.rss_bytes);
            timelines[i].push(second);
            if i == 0 {
                switch = stress.as_mut().and_then(|s| s.observe(&w, t));
            }
            outcomes.push(
                w.outcomes
                    .iter()
                    .map(|(k, v)| (k.label(), *v))
                    .collect::<std::collections::BTreeMap<String, u64>>(),
            );
            totals[i].merge(&w);
        }
        if let Some(m) = &mut metrics {
            let seconds: Vec<_> = lanes
                .iter()
                .zip(&timelines)
                .zip(&outcomes)
                .map(|((lane, tl), o)| (lane.scenario.name(), tl.last().expect("pushed above"), o))
                .collect();
            let body = m.encode(shared.unix_ms(Instant::now()), &seconds);
            m.push(body);
        }
        {
            if let Some(switch) = switch {
                let lane = &lanes[0];
                // Requests due from now on by the old schedule are re-timed, including those
                // workers already hold and wait for: they look again when they wake.
                let due_before = lane
                    .pacer
                    .schedule
                    .arrivals_until(t - lane.pacer.offset_s)
                    .ceil() as u64;
                let from = due_before.min(lane.next.load(Ordering::SeqCst));
                *lane.pacer.rebase.lock().expect("pacer lock") = Some(Rebase {
                    from,
                    at_s: t,
                    target: switch.rate,
                    until_s: t + switch.recovery.as_secs_f64(),
                });
            }
        }
        if options.progress {
            eprintln!("{}", progress_line(t, &lanes, &timelines, rss));
        }
        if Instant::now() >= deadline && !shared.stop.load(Ordering::Relaxed) {
            ended_by = format!(
                "the maximum duration ({} s)",
                options.max_duration.as_secs()
            );
            shared.halt();
        }
        if shared.sent.load(Ordering::Relaxed) >= options.max_requests {
            ended_by = format!("the maximum number of requests ({})", options.max_requests);
        }
        tick += 1;
    }
    // What was recorded after the last tick.
    let end = Instant::now();
    let t_end = end.saturating_duration_since(start).as_secs_f64();
    for (i, lane) in lanes.iter().enumerate() {
        let w = lane.recorder.take();
        if w.requests() > 0 {
            let target = timelines[i].last().map_or(0.0, |s| s.target);
            timelines[i].push(Second::of(&w, t_end, target, None));
        }
        totals[i].merge(&w);
    }
    shared.halt();
    for mut task in fault_tasks {
        // A command still running when the run ends gets a few seconds, then is killed.
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(Ok(run)) => faults.push(run),
            Ok(Err(_)) => {}
            Err(_) => task.abort(),
        }
    }
    if let Some(s) = &mut stress {
        s.finish(&timelines[0]);
    }

    let mut per_lane: Vec<(Vec<Ledger>, u64)> = lanes.iter().map(|_| (Vec::new(), 0)).collect();
    for done in finished_workers {
        let lane_index = lanes
            .iter()
            .position(|l| Arc::ptr_eq(l, &done.lane))
            .expect("a worker of a known lane");
        if let Some(l) = done.ledger {
            per_lane[lane_index].0.push(l);
        }
        per_lane[lane_index].1 += done.connects;
    }
    let results = lanes
        .iter()
        .zip(options.lanes)
        .zip(timelines)
        .zip(totals)
        .zip(per_lane)
        .map(
            |((((state, spec), timeline), total), (ledgers, connects))| {
                let n = state.late_n.load(Ordering::Relaxed).max(1);
                LaneResult {
                    name: state.scenario.name().to_owned(),
                    model: spec.model,
                    schedule: spec.schedule,
                    workers: spec.workers,
                    total,
                    timeline,
                    mean_late_ms: state.late_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0,
                    ledgers,
                    connects,
                }
            },
        )
        .collect();
    Ok(RunResult {
        started_unix_ms: shared.start_unix_ms,
        duration_s: t_end,
        lanes: results,
        faults,
        stress,
        ended_by,
        generator_cpu_s: me
            .cpu()
            .unwrap_or_default()
            .saturating_sub(cpu_at_start)
            .as_secs_f64(),
    })
}

/// What a worker hands back.
struct WorkerDone {
    lane: Arc<LaneState>,
    ledger: Option<Ledger>,
    connects: u64,
}

async fn worker(
    w: usize,
    lane: Arc<LaneState>,
    shared: Arc<Shared>,
    mut generator: Box<dyn super::scenario::Generator>,
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

async fn run_fault(fault: Fault, shared: Arc<Shared>) -> FaultRun {
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

fn progress_line(
    t: f64,
    lanes: &[Arc<LaneState>],
    timelines: &[Vec<Second>],
    rss: Option<u64>,
) -> String {
    let mut line = format!("[{t:>5.0}s]");
    for (lane, timeline) in lanes.iter().zip(timelines) {
        let Some(s) = timeline.last() else { continue };
        line.push_str(&format!(
            " {} {:>6}/s (target {:.0}) err {} p50 {:.2} p99 {:.2} max {:.2} ms",
            lane.scenario.name(),
            s.requests,
            s.target,
            s.errors,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        ));
        if s.samples > 0 {
            line.push_str(&format!(" {:.0} samples/s", s.samples));
        }
    }
    if let Some(rss) = rss {
        line.push_str(&format!(
            " | target RSS {:.1} MiB",
            rss as f64 / (1 << 20) as f64
        ));
    }
    line
}
