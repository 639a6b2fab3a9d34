//! `strata-bench` against the real Strata server: a `write` run whose every acknowledged
//! sample is then found through the query API, a `stress` run on a server limited to one
//! write at a time that finds where it breaks and how long it takes to recover, and the
//! dashboard query mix answered without an error.

use std::sync::Arc;
use std::time::Duration;

use strata_bench::load::analysis::Objective;
use strata_bench::load::client::Endpoint;
use strata_bench::load::run::{Lane, Model, RunOptions, run};
use strata_bench::load::scenario::query::{QueryScenario, dashboard};
use strata_bench::load::scenario::write::{Timing, WriteConfig, WriteScenario};
use strata_bench::load::schedule::{Profile, Schedule, ShapeOptions};
use strata_bench::load::target::TargetWatch;
use strata_bench::load::verify;
use strata_testkit::dataset::DatasetSpec;
use strata_tests::server::Server;

fn write_scenario(url: &str, run_id: &str) -> Arc<WriteScenario> {
    write_scenario_of(url, run_id, 1000)
}

fn write_scenario_of(url: &str, run_id: &str, batch: usize) -> Arc<WriteScenario> {
    Arc::new(WriteScenario::new(
        Endpoint::parse(&format!("{url}/api/v1/write"), false).unwrap(),
        WriteConfig {
            hosts: 6,
            dataset: DatasetSpec::Generated,
            seed: 3,
            batch,
            interval_ms: 15_000,
            jitter_ms: 5,
            timing: Timing::RealTime,
            run: run_id.into(),
            extra_series: 20,
            churn_ms: None,
            verify_series: 25,
        },
    ))
}

fn options(lanes: Vec<Lane>, profile: Option<Profile>, pid: u32) -> RunOptions {
    RunOptions {
        lanes,
        profile,
        shape: ShapeOptions {
            step: Duration::from_secs(2),
            steps_max: 20,
            recovery: Duration::from_secs(6),
            peak_factor: 10.0,
            peak_length: Duration::from_secs(1),
        },
        objective: Objective {
            p99_ms: 100.0,
            error_ratio: 0.01,
        },
        request_timeout: Duration::from_secs(20),
        max_duration: Duration::from_secs(90),
        max_requests: 1_000_000,
        faults: Vec::new(),
        watch: TargetWatch::new(Some(pid)),
        progress: false,
        threads: 2,
        metrics: None,
    }
}

#[test]
fn a_write_run_against_strata_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.wait_ready(Duration::from_secs(30));
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let scenario = write_scenario(&server.url, "verify-1");
    let lane = Lane {
        scenario: scenario.clone(),
        model: Model::Open,
        schedule: Schedule::constant(40.0, Duration::from_secs(3)),
        workers: 4,
        offset: Duration::ZERO,
    };
    let mut result = run(options(vec![lane], None, server.pid())).unwrap();
    let lane = &mut result.lanes[0];
    assert_eq!(lane.total.errors(), 0, "{:?}", lane.total.examples);
    assert_eq!(lane.total.samples_ok, 120 * 1000);
    assert!(
        lane.timeline.iter().any(|s| s.target_rss_bytes.is_some()),
        "the server's memory was tracked"
    );
    let ledgers = std::mem::take(&mut lane.ledgers);
    let v = verify::check(&server.url, "verify-1", started_ms - 1000, &ledgers);
    assert!(v.passed(), "{}", v.summary());
    assert_eq!(v.series_expected, scenario.series() as u64);
    assert!(
        v.checked_series >= 20 && v.checked_samples >= 20,
        "{}",
        v.summary()
    );
    assert_eq!(v.samples_acknowledged, 120_000);
    server.stop();
}

#[test]
fn a_stress_run_finds_where_a_one_write_at_a_time_strata_breaks_and_its_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.yml");
    std::fs::write(&config, "remote_write:\n  max_inflight_requests: 1\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    server.wait_ready(Duration::from_secs(30));
    // 40 requests of 4,000 samples a second more at every step, up to 800 (3.2 million
    // samples a second): one write at a time, each synced to disk, cannot keep up with the
    // higher steps on any machine (this one breaks near 200; at 1,000 samples a request a
    // fast one held all the way to 800, so the steps carry four times that).
    let scenario = write_scenario_of(&server.url, "stress-1", 4000);
    let schedule =
        Profile::Stress.schedule(40.0, Duration::ZERO, &options(Vec::new(), None, 0).shape);
    let lane = Lane {
        scenario,
        model: Model::Open,
        schedule,
        workers: 32,
        offset: Duration::ZERO,
    };
    let result = run(options(vec![lane], Some(Profile::Stress), server.pid())).unwrap();
    let stress = result.stress.expect("a stress analysis");
    let breaking = stress
        .breaking_rate
        .unwrap_or_else(|| panic!("no breaking point: {stress:?}"));
    let good = stress
        .last_good_rate
        .unwrap_or_else(|| panic!("even 40/s broke: {stress:?}"));
    assert!(good < breaking, "{stress:?}");
    assert!(
        stress.recovery_s.is_some(),
        "back at 40/s the server should recover within 6 s: {stress:?}"
    );
    server.stop();
}

#[test]
fn the_dashboard_query_mix_runs_against_strata_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.wait_ready(Duration::from_secs(30));
    let writes = Lane {
        scenario: write_scenario(&server.url, "q-1"),
        model: Model::Closed,
        schedule: Schedule::constant(2.0, Duration::from_secs(1)),
        workers: 2,
        offset: Duration::ZERO,
    };
    let queries = Lane {
        scenario: Arc::new(QueryScenario {
            endpoint: Endpoint::parse(&server.url, false).unwrap(),
            queries: Arc::from(dashboard()),
            name: "query",
        }),
        model: Model::Open,
        schedule: Schedule::constant(30.0, Duration::from_secs(2)),
        workers: 4,
        offset: Duration::from_secs(1),
    };
    let result = run(options(vec![writes, queries], None, server.pid())).unwrap();
    let q = &result.lanes[1].total;
    assert_eq!(q.requests(), 60);
    assert_eq!(q.errors(), 0, "{:?}", q.examples);
    server.stop();
}
