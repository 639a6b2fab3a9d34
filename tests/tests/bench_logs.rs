//! `strata-bench logs` end to end at a small size: it generates logs, starts the real server,
//! pushes them, and runs its query mix, each query checked against the answer the dataset
//! says it must give (the benchmark fails otherwise); then a short live load. What this test
//! asserts is that the measurement itself works: every line acknowledged and on disk, the
//! needles found exactly, figures present. (`zstd` and `rg` are used when installed; the cold
//! runs, which need root to drop the page cache, are left out.)

use std::time::Duration;

use strata_bench::logs::run::{Options, run};
use strata_bench::logs::server::ServerConfig;
use strata_tests::server::strata_binary;

#[test]
fn the_log_benchmark_pushes_everything_and_finds_every_needle() {
    let work = tempfile::tempdir().unwrap();
    let options = Options {
        server: ServerConfig {
            binary: strata_binary(),
            cpus: None,
        },
        work: work.path().to_path_buf(),
        bytes: 4 << 20,
        streams: 60,
        span: Duration::from_secs(3600),
        seed: 5,
        lines_per_trace: 8,
        needles: 3,
        workers: 2,
        batch_bytes: 256 << 10,
        runs: 1,
        cold: false,
        zstd19_max: 1 << 20,
        live_rate: 2_000.0,
        live_streams: 200,
        live_for: Duration::from_secs(2),
        limit_streams: 0,
    };
    let report = run(&options, "test".into()).unwrap();

    assert!(report.lines > 10_000, "{} lines", report.lines);
    assert_eq!(report.push.lines, report.lines, "every line acknowledged");
    assert_eq!(report.push.raw_bytes, report.raw_bytes);
    assert_eq!(report.push.failed, 0, "{:?}", report.push.examples);
    assert!(report.push_server_cpu_s > 0.0);
    let stored: u64 = report.disk.iter().map(|(_, b)| b).sum();
    assert!(stored > 0, "{:?}", report.disk);

    let names: Vec<&str> = report
        .queries
        .iter()
        .map(|q| q.query.name.as_str())
        .collect();
    assert_eq!(report.queries.len(), 6, "{names:?}");
    for q in &report.queries {
        assert_eq!(q.warm.len(), 1, "{}", q.query.name);
        assert!(q.cold.is_none());
        if let Some(want) = q.query.expect_lines {
            assert_eq!(q.warm[0].answer, want, "{}", q.query.name);
        }
    }
    let needle = &report.queries[0];
    assert_eq!(needle.warm[0].answer, 1, "the rare token is on one line");
    if let Some(found) = needle.rg_lines {
        assert_eq!(found, 1, "rg finds the same line in the raw files");
    }

    let live = report.live.expect("the live load ran");
    assert_eq!(live.push.failed, 0, "{:?}", live.push.examples);
    assert_eq!(
        live.push.lines, 4_000,
        "two seconds at 2,000 lines a second"
    );
    assert!(!live.rss_bytes.is_empty(), "memory read while it ran");
}
