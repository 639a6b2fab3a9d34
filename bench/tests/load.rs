//! The load generator against the in-process null receiver: the schedule is kept, a slow
//! target shows as latency in the open model (no coordinated omission), a stress run finds a
//! deliberately limited receiver's breaking point and its recovery, fault commands run on
//! time, and the reports render.

use std::sync::Arc;
use std::time::Duration;

use strata_bench::load::analysis::Objective;
use strata_bench::load::client::Endpoint;
use strata_bench::load::null::{Capacity, NullReceiver};
use strata_bench::load::run::{Fault, Lane, Model, RunOptions, RunResult, run};
use strata_bench::load::scenario::http::HttpScenario;
use strata_bench::load::scenario::write::{Timing, WriteConfig, WriteScenario};
use strata_bench::load::schedule::{Profile, Schedule, ShapeOptions};
use strata_bench::load::target::TargetWatch;
use strata_bench::load::{report, scenario::Scenario};
use strata_testkit::dataset::DatasetSpec;

const OBJECTIVE: Objective = Objective {
    p99_ms: 100.0,
    error_ratio: 0.01,
};

fn shape() -> ShapeOptions {
    ShapeOptions {
        step: Duration::from_secs(2),
        steps_max: 8,
        recovery: Duration::from_secs(6),
        peak_factor: 10.0,
        peak_length: Duration::from_secs(1),
    }
}

fn http(url: &str) -> Arc<dyn Scenario> {
    Arc::new(HttpScenario {
        endpoint: Endpoint::parse(url, false).unwrap(),
        method: hyper::Method::GET,
        headers: Arc::from(vec![]),
        body: bytes::Bytes::new(),
        expect: None,
    })
}

fn options(lane: Lane, profile: Option<Profile>) -> RunOptions {
    RunOptions {
        lanes: vec![lane],
        profile,
        shape: shape(),
        objective: OBJECTIVE,
        request_timeout: Duration::from_secs(10),
        max_duration: Duration::from_secs(60),
        max_requests: 1_000_000,
        faults: Vec::new(),
        watch: TargetWatch::new(Some(std::process::id())),
        progress: false,
        threads: 2,
        metrics: None,
    }
}

fn open(scenario: Arc<dyn Scenario>, schedule: Schedule, workers: usize) -> Lane {
    Lane {
        scenario,
        model: Model::Open,
        schedule,
        workers,
        offset: Duration::ZERO,
    }
}

#[test]
fn an_open_model_run_sends_exactly_the_scheduled_requests() {
    let receiver = NullReceiver::start(1, None).unwrap();
    let schedule = Schedule::constant(200.0, Duration::from_secs(2));
    let r = run(options(open(http(&receiver.url()), schedule, 8), None)).unwrap();
    let lane = &r.lanes[0];
    // 200/s for 2 s is 400 requests due, all sent and all answered.
    assert_eq!(lane.total.requests(), 400);
    assert_eq!(lane.total.errors(), 0);
    assert_eq!(
        receiver
            .counts
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        400
    );
    assert!(
        lane.timeline.len() >= 2,
        "a second of timeline per second of run"
    );
    assert!(lane.timeline.iter().any(|s| s.target_rss_bytes.is_some()));
}

#[test]
fn a_stalled_target_shows_as_latency_in_the_open_model_not_as_a_slower_sender() {
    // The receiver answers one request at a time, 20 ms each: at most ~50 a second.
    let capacity = Capacity {
        slots: 1,
        service: Duration::from_millis(20),
    };
    let receiver = NullReceiver::start(1, Some(capacity)).unwrap();
    // Open model, 100/s for 2 s: twice what it can take. Every request is still sent when
    // due, and its wait for the receiver counts, so latency grows far beyond 20 ms.
    let schedule = Schedule::constant(100.0, Duration::from_secs(2));
    let r = run(options(open(http(&receiver.url()), schedule, 200), None)).unwrap();
    let w = &r.lanes[0].total;
    assert_eq!(w.requests(), 200);
    assert!(
        w.latency_ms(0.99) > 800.0,
        "open-model p99 {} ms",
        w.latency_ms(0.99)
    );
    // Closed model, one worker: the sender waits for each answer, so it only ever sees the
    // 20 ms service time (that is what coordinated omission hides).
    let closed = Lane {
        model: Model::Closed,
        schedule: Schedule::constant(1.0, Duration::from_secs(1)),
        workers: 1,
        ..open(
            http(&receiver.url()),
            Schedule::constant(1.0, Duration::ZERO),
            1,
        )
    };
    let r = run(options(closed, None)).unwrap();
    let w = &r.lanes[0].total;
    assert!(w.requests() >= 20, "{} requests", w.requests());
    assert!(
        w.latency_ms(0.5) < 100.0,
        "closed-model p50 {} ms",
        w.latency_ms(0.5)
    );
}

#[test]
fn a_stress_run_finds_the_breaking_point_of_a_limited_receiver_and_its_recovery() {
    // One slot, 25 ms a request: about 38 requests a second at most.
    let capacity = Capacity {
        slots: 1,
        service: Duration::from_millis(25),
    };
    let receiver = NullReceiver::start(1, Some(capacity)).unwrap();
    // Steps of 24/s: 24 (under two thirds of the capacity), then 48 (a quarter over it: the
    // queue grows by about ten requests a second, and with it the latency).
    let schedule = Profile::Stress.schedule(24.0, Duration::ZERO, &shape());
    let mut o = options(
        open(http(&receiver.url()), schedule, 100),
        Some(Profile::Stress),
    );
    o.objective = Objective {
        p99_ms: 150.0,
        error_ratio: 0.01,
    };
    let r = run(o).unwrap();
    let stress = r.stress.as_ref().expect("a stress state");
    assert_eq!(stress.last_good_rate, Some(24.0), "{stress:?}");
    assert_eq!(stress.breaking_rate, Some(48.0), "{stress:?}");
    let recovery = stress.recovery_s.expect("it recovers once the load drops");
    assert!(recovery < 3.0, "recovery took {recovery} s");
    // The run ended with the recovery (6 s after the break), not after all eight steps.
    assert!(r.duration_s < 4.0 + 6.0 + 2.0, "ran {} s", r.duration_s);
    let text = report::text(&build(r, Some(Profile::Stress)));
    assert!(
        text.contains("breaking point: 48/s (last good: 24/s)"),
        "{text}"
    );
}

fn build(r: RunResult, profile: Option<Profile>) -> report::Report {
    report::build(
        "test".into(),
        "null".into(),
        profile,
        OBJECTIVE,
        r,
        None,
        0.1,
    )
}

#[test]
fn a_fault_command_runs_at_its_moment_and_its_effect_is_reported() {
    let receiver = NullReceiver::start(1, None).unwrap();
    let marker = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&marker).unwrap();
    let mut o = options(
        open(
            http(&receiver.url()),
            Schedule::constant(50.0, Duration::from_secs(6)),
            4,
        ),
        None,
    );
    o.faults = vec![Fault {
        at: Duration::from_secs(1),
        command: format!("touch {}", marker.display()),
    }];
    let r = run(o).unwrap();
    assert!(marker.exists(), "the command ran");
    let f = &r.faults[0];
    assert!(
        (1.0..1.5).contains(&f.started_s),
        "started at {} s",
        f.started_s
    );
    assert_eq!(f.exit.as_deref(), Some("exit status: 0"));
    let timeline = format!("{:?}", r.lanes[0].timeline);
    let rep = build(r, None);
    // The receiver kept answering: nothing broke, recovered at once.
    assert_eq!(rep.faults[0].1.error_window_s, None);
    assert_eq!(rep.faults[0].1.recovery_s, Some(0.0), "{timeline}");
}

#[test]
fn write_load_reaches_the_receiver_as_valid_remote_write() {
    let receiver = NullReceiver::start(1, None).unwrap();
    let scenario = Arc::new(WriteScenario::new(
        Endpoint::parse(&format!("{}/api/v1/write", receiver.url()), false).unwrap(),
        WriteConfig {
            hosts: 4,
            dataset: DatasetSpec::Generated,
            seed: 1,
            batch: 1000,
            interval_ms: 15_000,
            jitter_ms: 5,
            timing: Timing::RealTime,
            run: "w".into(),
            extra_series: 0,
            churn_ms: None,
            verify_series: 0,
        },
    ));
    let schedule = Schedule::constant(50.0, Duration::from_secs(2));
    let r = run(options(open(scenario, schedule, 4), None)).unwrap();
    let w = &r.lanes[0].total;
    assert_eq!(w.requests(), 100);
    assert_eq!(w.errors(), 0);
    assert_eq!(w.samples_ok, 100 * 1000);
    let sent = receiver
        .counts
        .body_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sent, w.bytes_sent);
    let rep = build(r, None);
    assert_eq!(rep.lanes[0].samples, 100_000);
    // The HTML page is self-contained and its plots are well-formed SVG.
    let html = report::html(&rep);
    assert!(
        !html.contains("http-equiv") && !html.contains("<script") && !html.contains("src=\"http")
    );
    let charts = report::charts(&rep);
    assert!(
        charts.len() >= 4,
        "throughput, latency, errors and memory plots"
    );
    for svg in charts {
        roxmltree::Document::parse(&svg).expect("an SVG plot parses as XML");
    }
    let json = serde_json::to_value(&rep).unwrap();
    assert_eq!(json["lanes"][0]["requests"], 100);
    assert!(json["lanes"][0]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}
