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

mod pacer;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::analysis::{Objective, StressState};
use super::scenario::{Scenario, write::Ledger};
use super::schedule::{Profile, Schedule, ShapeOptions};
use super::selfmetrics::SelfMetrics;
use super::stats::{Recorder, Second, Window};
use super::target::TargetWatch;
use pacer::{Pacer, Rebase};
use worker::{run_fault, worker};

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
