//! PromQL evaluation in process: the dashboard queries of `strata_testkit::dashboard`
//! against a database holding hours of the node_exporter-like dataset, each evaluated a few
//! times; the median per query and their total are printed. This is the engine's part of the
//! latency `scripts/query-compare.sh` measures over HTTP against Prometheus and
//! VictoriaMetrics (no HTTP, no JSON here), for profiling and for tracking the evaluator.
//!
//! The data is written time-major through `Appender` (one commit per scrape), with
//! `Db::maintain` after each hour as the background thread would, so the queries read blocks
//! (2 h, compacted to 6 h and 24 h) and the head as a server's would. It is kept in
//! `target/promql-bench-<hosts>x<hours>` and reused by later runs with the same size (delete
//! the directory to rebuild it). `STRATA_PROMQL_HOSTS` (default 30) and `STRATA_PROMQL_HOURS`
//! (default 26) set the size, `STRATA_PROMQL_REPEATS` (default 7) the timed runs per query,
//! `STRATA_PROMQL_ONLY=text` runs only the queries whose name contains `text`.
//!
//! Run with `cargo bench -p strata-engine --bench promql`.

use strata_testkit::dashboard as dashboard_queries;
use strata_testkit::dataset;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use dashboard_queries::QUERIES;
use dataset::{Dataset, SCRAPE_INTERVAL_MS, START_MS};
use strata_engine::clock::ManualClock;
use strata_engine::labels::Labels;
use strata_engine::promql::{Engine, EngineOptions, Query, Stop, Value};
use strata_engine::{Db, FsyncMode, Options, SeriesRef};

const SEED: u64 = 0x5742_a7a0;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options(clock: Arc<ManualClock>) -> Options {
    Options {
        clock,
        fsync: FsyncMode::Interval(std::time::Duration::from_secs(1)),
        background_maintenance: false,
        retention_ms: 0,
        ..Options::default()
    }
}

/// Opens the cached database, writing it first if it is not there. Returns it and the time of
/// its last scrape.
fn database(hosts: u64, hours: u64) -> (Db, i64) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("promql-bench-{hosts}x{hours}"));
    let scrapes = hours * 3_600_000 / SCRAPE_INTERVAL_MS as u64;
    let data = Dataset::new(hosts as usize, SEED);
    let last = (0..hosts as usize)
        .map(|h| data.timestamp(h, scrapes - 1))
        .max()
        .unwrap_or(START_MS);
    let clock = Arc::new(ManualClock::new(START_MS));
    let done = dir.join("complete");
    if done.exists() {
        clock.set_ms(last + 60_000);
        let db = Db::open(&dir, options(clock)).expect("open the cached database");
        return (db, last);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("writing {hosts} hosts × {hours} h into {}", dir.display());
    let started = Instant::now();
    let db = Db::open(&dir, options(Arc::clone(&clock))).expect("open a new database");
    let series = data.series();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let labels: Vec<Labels> = series
        .iter()
        .map(|s| Labels::new(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap())
        .collect();
    for k in 0..scrapes {
        // The clock follows the data, a minute ahead of the scrape.
        clock.set_ms(data.timestamp(0, k) + 60_000);
        let mut app = db.appender();
        for (i, s) in series.iter().enumerate() {
            let t = data.timestamp(s.host, k);
            let v = data.value(i, k);
            match refs[i] {
                Some(r) => app.append_ref(r, t, v).expect("append"),
                None => refs[i] = Some(app.append(&labels[i], t, v).expect("append")),
            }
        }
        app.commit().expect("commit");
        if (k + 1) % 240 == 0 {
            db.maintain().expect("maintain");
        }
    }
    db.maintain().expect("maintain");
    db.checkpoint().expect("checkpoint");
    std::fs::write(&done, b"").expect("mark the database complete");
    eprintln!(
        "written: {} series, {} samples in {:.0} s",
        series.len(),
        series.len() as u64 * scrapes,
        started.elapsed().as_secs_f64()
    );
    (db, last)
}

fn main() {
    let hosts = env("STRATA_PROMQL_HOSTS", 30);
    let hours = env("STRATA_PROMQL_HOURS", 26);
    let repeats = env("STRATA_PROMQL_REPEATS", 7) as usize;
    let only = std::env::var("STRATA_PROMQL_ONLY").unwrap_or_default();
    let (db, last) = database(hosts, hours);
    // The queries end on the minute after the last scrape, as query-compare's do.
    let end = last / 60_000 * 60_000;
    let engine = Engine::new(EngineOptions::default());
    let mut total = 0.0;
    println!(
        "{:<42} {:>10} {:>8} {:>10}",
        "query", "median ms", "series", "points"
    );
    for q in QUERIES.iter().filter(|q| q.name.contains(only.as_str())) {
        let query = Query::parse(q.expr).expect("the benchmark queries parse");
        let run = || {
            if q.range_s == 0 {
                engine.instant_query(&db, &query, end, &Stop::new())
            } else {
                engine.range_query(
                    &db,
                    &query,
                    end - q.range_s * 1000,
                    end,
                    q.step_s * 1000,
                    &Stop::new(),
                )
            }
            .expect("the benchmark queries evaluate")
        };
        let out = run();
        let (series, points) = match &out.value {
            Value::Matrix(m) => (m.len(), m.iter().map(|s| s.samples.len()).sum()),
            Value::Vector(v) => (v.len(), v.len()),
            _ => (1, 1),
        };
        let mut ms: Vec<f64> = (0..repeats)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(run());
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        total += median;
        println!("{:<42} {median:>10.2} {series:>8} {points:>10}", q.name);
    }
    println!("{:<42} {total:>10.2}", "total of medians");
    db.close().expect("close");
}
