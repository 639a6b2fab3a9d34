//! The log store through its public API: writing and reading back, limits, reopening, and
//! power cuts and I/O faults on the simulated disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use strata_core::clock::ManualClock;
use strata_core::fs::sim::{Fault, SimFs, SplitMix64};
use strata_core::labels::Labels;
use strata_core::labels::matcher::{MatchKind, Matcher};
use strata_logs::{AppendError, Direction, Entry, LogOptions, LogStore};
use strata_wal::FsyncMode;

const NOW_MS: i64 = 1_800_000_000_000;
const NOW_NS: i64 = NOW_MS * 1_000_000;

fn options(fs: SimFs) -> LogOptions {
    LogOptions {
        fs: Arc::new(fs),
        clock: Arc::new(ManualClock::new(NOW_MS)),
        fsync: FsyncMode::Always,
        wal_segment_bytes_max: 4096,
        ..LogOptions::default()
    }
}

fn stream(app: &str, level: &str) -> Labels {
    Labels::new([("app", app), ("level", level)]).unwrap()
}

fn any_app() -> Matcher {
    Matcher::new(MatchKind::Regex, "app", ".+").unwrap()
}

/// An entry as the tests compare them: (app, level, ts, line, metadata).
type Held = (String, String, i64, String, Vec<(String, String)>);

/// Every entry the store holds.
fn everything(store: &LogStore) -> BTreeSet<Held> {
    store
        .select(
            &[any_app()],
            i64::MIN,
            i64::MAX,
            Direction::Forward,
            usize::MAX,
        )
        .into_iter()
        .flat_map(|s| {
            let app = s.labels.get("app").unwrap_or("").to_string();
            let level = s.labels.get("level").unwrap_or("").to_string();
            s.entries
                .into_iter()
                .map(move |e| (app.clone(), level.clone(), e.ts_ns, e.line, e.metadata))
        })
        .collect()
}

#[test]
fn written_entries_come_back_by_selector_range_direction_and_limit_and_after_reopening() {
    let fs = SimFs::new(1);
    let dir = Path::new("/data/logs");
    let (store, report) = LogStore::open(dir, options(fs.clone())).unwrap();
    assert_eq!(report.streams, 0);
    let mut app = store.appender();
    for i in 0..10 {
        let mut e = Entry::new(NOW_NS - 10_000 + i, format!("GET /{i} 200"));
        e.metadata.push(("trace_id".into(), format!("{i:032x}")));
        app.append(&stream("api", if i % 3 == 0 { "error" } else { "info" }), e)
            .unwrap();
    }
    app.append(
        &stream("db", "info"),
        Entry::new(NOW_NS - 5_000, "slow query"),
    )
    .unwrap();
    assert_eq!(app.commit().unwrap(), 11);

    let errors = store.select(
        &[
            Matcher::equal("app", "api"),
            Matcher::equal("level", "error"),
        ],
        i64::MIN,
        i64::MAX,
        Direction::Backward,
        2,
    );
    assert_eq!(errors.len(), 1);
    let lines: Vec<&str> = errors[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(
        lines,
        ["GET /9 200", "GET /6 200"],
        "newest first, two of four"
    );
    assert_eq!(
        errors[0].entries[0].metadata,
        [("trace_id".to_string(), format!("{:032x}", 9))]
    );
    let range = store.select(
        &[Matcher::equal("app", "api")],
        NOW_NS - 10_000 + 2,
        NOW_NS - 10_000 + 4,
        Direction::Forward,
        100,
    );
    // Two streams (2 is info, 3 an error), each with its entries.
    let lines: Vec<Vec<&str>> = range
        .iter()
        .map(|s| s.entries.iter().map(|e| e.line.as_str()).collect())
        .collect();
    assert_eq!(
        lines,
        [["GET /3 200"], ["GET /2 200"]],
        "start inclusive, end exclusive"
    );
    assert_eq!(store.label_names(), ["app", "level"]);
    assert_eq!(store.label_values("app"), ["api", "db"]);

    let before = everything(&store);
    store.close().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir, options(fs)).unwrap();
    assert_eq!((report.streams, report.entries), (3, 11));
    assert_eq!(everything(&store), before);
}

#[test]
fn entries_outside_the_limits_are_refused_with_the_reason_and_the_rest_kept() {
    let (store, _) = LogStore::open(Path::new("/l"), options(SimFs::new(2))).unwrap();
    let mut app = store.appender();
    let s = stream("api", "info");
    app.append(&s, Entry::new(NOW_NS, "kept")).unwrap();
    let long = "x".repeat(256 * 1024 + 1);
    let refused = [
        app.append(&s, Entry::new(NOW_NS, long)),
        app.append(
            &s,
            Entry::new(NOW_NS - 8 * 24 * 3600 * 1_000_000_000, "old"),
        ),
        app.append(&s, Entry::new(NOW_NS + 3600 * 1_000_000_000, "future")),
        app.append(&Labels::default(), Entry::new(NOW_NS, "no labels")),
        app.append(
            &Labels::new((0..16).map(|i| (format!("l{i}"), "v".to_string()))).unwrap(),
            Entry::new(NOW_NS, "many labels"),
        ),
    ];
    assert!(matches!(
        refused[0],
        Err(AppendError::LineTooLong { max: 262_144, .. })
    ));
    assert!(matches!(refused[1], Err(AppendError::TooOld { .. })));
    assert!(matches!(refused[2], Err(AppendError::TooNew { .. })));
    assert!(matches!(refused[3], Err(AppendError::NoLabels)));
    assert!(matches!(
        refused[4],
        Err(AppendError::TooManyLabels { count: 16, max: 15 })
    ));
    for r in &refused {
        assert!(!r.as_ref().unwrap_err().to_string().is_empty());
    }
    assert_eq!(app.commit().unwrap(), 1);
    // Within an hour of the stream's newest entry, older ones are still accepted.
    let mut app = store.appender();
    app.append(&s, Entry::new(NOW_NS - 1_800 * 1_000_000_000, "late"))
        .unwrap();
    let too_late = app.append(&s, Entry::new(NOW_NS - 7_200 * 1_000_000_000, "too late"));
    assert!(
        matches!(too_late, Err(AppendError::OutOfOrder { .. })),
        "{too_late:?}"
    );
    assert_eq!(app.commit().unwrap(), 1);
    assert_eq!(everything(&store).len(), 2);
}

#[test]
fn acknowledged_entries_survive_power_cuts_and_io_faults() {
    let seeds: u64 = std::env::var("STRATA_LOG_CRASH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = Path::new("/data/logs");
    for seed in 0..seeds {
        let mut rng = SplitMix64::new(seed);
        let mut fs = SimFs::new(seed);
        // What was acknowledged, and everything ever appended.
        let mut acked = BTreeSet::new();
        let mut appended = BTreeSet::new();
        let mut n = 0i64;
        for _round in 0..3 {
            let (store, report) = LogStore::open(dir, options(fs.clone()))
                .unwrap_or_else(|e| panic!("seed {seed}: reopening failed: {e}"));
            assert!(
                !report.wal.has_damage(),
                "seed {seed}: a power cut looked like damage: {report:?}"
            );
            let held = everything(&store);
            for a in &acked {
                assert!(held.contains(a), "seed {seed}: acknowledged {a:?} lost");
            }
            for h in &held {
                assert!(
                    appended.contains(h),
                    "seed {seed}: {h:?} was never appended"
                );
            }
            // An entry whose commit failed may be back (its bytes reached the disk), but
            // only acknowledged ones are promised.
            // A power cut somewhere in the next stretch of work, and a fault or two.
            let ops = fs.stats().ops;
            fs.crash_before_op(ops + rng.below(60));
            for _ in 0..rng.below(3) {
                let fault = [
                    Fault::Io,
                    Fault::NoSpace,
                    Fault::ShortWrite,
                    Fault::SyncFail,
                ][rng.below(4) as usize];
                fs.fail_op(ops + rng.below(60), fault);
            }
            for _commit in 0..20 {
                let mut app = store.appender();
                let mut batch = Vec::new();
                for _ in 0..1 + rng.below(6) {
                    n += 1;
                    let (a, l) = (format!("app{}", rng.below(4)), format!("l{}", rng.below(2)));
                    let line = format!("line {n} {}", "x".repeat(rng.below(300) as usize));
                    let meta = if rng.chance(1, 3) {
                        vec![("trace_id".to_string(), format!("{n:x}"))]
                    } else {
                        Vec::new()
                    };
                    let ts = NOW_NS - 1_000_000 + n;
                    let mut e = Entry::new(ts, line.clone());
                    e.metadata = meta.clone();
                    app.append(&stream(&a, &l), e).unwrap();
                    batch.push((a, l, ts, line, meta));
                }
                appended.extend(batch.iter().cloned());
                if app.commit().is_ok() {
                    acked.extend(batch);
                }
            }
            drop(store);
            fs = match fs.crashed() {
                Some(after) => after,
                None => fs.crash(),
            };
        }
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_while_the_first_holds_it() {
    let fs = SimFs::new(3);
    let dir = Path::new("/data/logs");
    let (first, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    match LogStore::open(dir, options(fs.clone())) {
        Err(strata_logs::OpenError::Locked { path }) => assert_eq!(path, dir.join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    assert!(
        LogStore::open(dir, options(fs)).is_ok(),
        "free again once closed"
    );
}

#[test]
fn a_new_stream_beyond_the_limit_is_refused_while_known_ones_still_write() {
    let mut o = options(SimFs::new(4));
    o.limits.streams_max = 2;
    let (store, _) = LogStore::open(Path::new("/l"), o).unwrap();
    let mut app = store.appender();
    for app_name in ["a", "b", "a", "b"] {
        app.append(&stream(app_name, "info"), Entry::new(NOW_NS, app_name))
            .unwrap();
    }
    let refused = app.append(&stream("c", "info"), Entry::new(NOW_NS, "c"));
    assert!(
        matches!(refused, Err(AppendError::TooManyStreams { max: 2 })),
        "{refused:?}"
    );
    assert_eq!(
        app.commit().unwrap(),
        2,
        "the repeats of a and b were duplicates"
    );
    let mut app = store.appender();
    assert!(
        app.append(&stream("c", "info"), Entry::new(NOW_NS, "c"))
            .is_err()
    );
    app.append(&stream("a", "info"), Entry::new(NOW_NS, "a again"))
        .unwrap();
    assert_eq!(app.commit().unwrap(), 1);
}
