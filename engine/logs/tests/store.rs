//! The log store through its public API: writing and reading back, limits, reopening, and
//! power cuts and I/O faults on the simulated disk.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use strata_core::clock::{Clock, ManualClock};
use strata_core::fs::Fs;
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

/// Every entry of the streams `m` matches, oldest first.
fn all_of(store: &LogStore, m: Matcher) -> Vec<strata_logs::StreamEntries> {
    store
        .select(&[m], i64::MIN, i64::MAX, Direction::Forward, usize::MAX)
        .unwrap()
}

/// Every entry the store holds.
fn everything(store: &LogStore) -> BTreeSet<Held> {
    all_of(store, any_app())
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

/// How many entries the store returns, duplicates counted.
fn count(store: &LogStore) -> usize {
    all_of(store, any_app())
        .iter()
        .map(|s| s.entries.len())
        .sum()
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

    let errors = store
        .select(
            &[
                Matcher::equal("app", "api"),
                Matcher::equal("level", "error"),
            ],
            i64::MIN,
            i64::MAX,
            Direction::Backward,
            2,
        )
        .unwrap();
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
    let range = store
        .select(
            &[Matcher::equal("app", "api")],
            NOW_NS - 10_000 + 2,
            NOW_NS - 10_000 + 4,
            Direction::Forward,
            100,
        )
        .unwrap();
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
            let opts = LogOptions {
                compact_fan_in: 2,
                ..options(fs.clone())
            };
            let (store, report) = LogStore::open(dir, opts)
                .unwrap_or_else(|e| panic!("seed {seed}: reopening failed: {e}"));
            assert!(
                !report.wal.has_damage(),
                "seed {seed}: a power cut looked like damage: {report:?}"
            );
            let held = everything(&store);
            assert_eq!(
                count(&store),
                held.len(),
                "seed {seed}: an entry read twice (a seal's block and the log both)"
            );
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
                if rng.chance(1, 5) {
                    // A seal may fail or be cut short too; what was acknowledged stays.
                    let _ = store.seal();
                }
                if rng.chance(1, 6) {
                    // And so may a compaction.
                    let _ = store.compact();
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

/// Writes `n` entries per stream of `apps`, `step` ns apart from `from`.
fn write(store: &LogStore, apps: &[&str], from: i64, n: i64, step: i64) {
    let mut app = store.appender();
    for a in apps {
        for i in 0..n {
            let ts = from + i * step;
            app.append(
                &stream(a, "info"),
                Entry::new(ts, format!("{a} request {ts} served in {}ms", i % 97)),
            )
            .unwrap();
        }
    }
    app.commit().unwrap();
}

#[test]
fn a_seal_moves_the_head_into_a_block_and_queries_see_every_entry_once() {
    let fs = SimFs::new(21);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    write(
        &store,
        &["api", "db"],
        NOW_NS - 3_600_000_000_000,
        500,
        1_000_000_000,
    );
    let before = everything(&store);
    assert_eq!(before.len(), 1_000);
    let summary = store.seal().unwrap().expect("a block");
    assert_eq!((summary.streams, summary.entries), (2, 1_000));
    assert_eq!(
        store.stats(),
        (0, 0, 0),
        "the head is empty, its streams forgotten"
    );
    assert_eq!(store.block_stats().0, 1);
    assert_eq!(everything(&store), before);
    assert_eq!(count(&store), 1_000);
    assert!(store.seal().unwrap().is_none(), "nothing to seal");
    // The log before the seal is gone: a checkpoint stands for it.
    let wal: Vec<_> = fs
        .files()
        .into_iter()
        .filter(|p| p.starts_with(dir.join("wal")))
        .collect();
    assert!(
        wal.iter()
            .any(|p| p.to_string_lossy().contains("checkpoint.")),
        "{wal:?}"
    );

    // Newer entries in the head, and one (NOW - 3000 s) between the block's entries.
    write(&store, &["api"], NOW_NS - 1_000_000_000, 3, 1);
    write(&store, &["api", "web"], NOW_NS - 3_000_000_000_000, 1, 1);
    let all = everything(&store);
    assert_eq!(all.len(), 1_005);
    assert_eq!(count(&store), 1_005);
    // A limit takes the newest across head and block, per stream newest first.
    let newest = store
        .select(
            &[Matcher::equal("app", "api")],
            i64::MIN,
            i64::MAX,
            Direction::Backward,
            4,
        )
        .unwrap();
    let ts: Vec<i64> = newest[0].entries.iter().map(|e| e.ts_ns).collect();
    assert_eq!(
        ts,
        [
            NOW_NS - 1_000_000_000 + 2,
            NOW_NS - 1_000_000_000 + 1,
            NOW_NS - 1_000_000_000,
            NOW_NS - 3_000_000_000_000
        ]
    );
    // A range inside the block, oldest first.
    let oldest = store
        .select(
            &[Matcher::equal("app", "db")],
            NOW_NS - 3_600_000_000_000 + 10_000_000_000,
            i64::MAX,
            Direction::Forward,
            2,
        )
        .unwrap();
    let ts: Vec<i64> = oldest[0].entries.iter().map(|e| e.ts_ns).collect();
    assert_eq!(
        ts,
        [
            NOW_NS - 3_600_000_000_000 + 10_000_000_000,
            NOW_NS - 3_600_000_000_000 + 11_000_000_000
        ]
    );
    assert_eq!(store.label_values("app"), ["api", "db", "web"]);

    store.close().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir, options(fs)).unwrap();
    assert_eq!(report.blocks, 1);
    assert_eq!(
        report.entries, 5,
        "only what came after the seal is replayed"
    );
    assert_eq!(everything(&store), all);
    assert_eq!(count(&store), 1_005);
}

#[test]
fn maintain_seals_a_large_or_old_head_and_retention_removes_old_or_excess_blocks() {
    let fs = SimFs::new(22);
    let dir = Path::new("/data/logs");
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let opts = |fs: SimFs| LogOptions {
        clock: clock.clone(),
        seal_bytes: 40_000,
        seal_age_ns: 600 * 1_000_000_000,
        ..options(fs)
    };
    let (store, _) = LogStore::open(dir, opts(fs.clone())).unwrap();
    write(&store, &["api"], NOW_NS - 1_000_000_000_000, 100, 1_000_000);
    let report = store.maintain().unwrap();
    assert_eq!(report.sealed, None, "small and young: {report:?}");
    write(&store, &["api"], NOW_NS - 900_000_000_000, 1_000, 1_000_000);
    assert!(store.stats().2 >= 40_000);
    let report = store.maintain().unwrap();
    assert_eq!(report.sealed.map(|s| s.entries), Some(1_100), "large");
    write(&store, &["db"], NOW_NS - 500_000_000_000, 10, 1_000_000);
    clock.advance_ms(599_000);
    assert_eq!(store.maintain().unwrap().sealed, None);
    clock.advance_ms(1_000);
    assert_eq!(
        store.maintain().unwrap().sealed.map(|s| s.entries),
        Some(10),
        "old"
    );
    assert_eq!(store.block_stats().0, 2);
    drop(store);

    // Retention by time: the first block's newest entry is older than the second's.
    let (first_end, second_end) = (
        NOW_NS - 900_000_000_000 + 999_000_000,
        NOW_NS - 500_000_000_000 + 9_000_000,
    );
    let keep_after = |end: i64| clock.now_ms() * 1_000_000 - end;
    let (store, _) = LogStore::open(
        dir,
        LogOptions {
            retention_ns: Some(keep_after(first_end) - 1),
            ..opts(fs.clone())
        },
    )
    .unwrap();
    assert_eq!(store.maintain().unwrap().expired_blocks, 1);
    assert_eq!(
        count(&store),
        10,
        "only the second block's entries are left"
    );
    drop(store);
    // By size: a budget below one block removes every block.
    let (store, _) = LogStore::open(
        dir,
        LogOptions {
            retention_ns: Some(keep_after(second_end) + 1_000),
            retention_bytes: Some(1),
            ..opts(fs.clone())
        },
    )
    .unwrap();
    assert_eq!(store.maintain().unwrap().expired_blocks, 1);
    assert_eq!(count(&store), 0);
    assert_eq!(store.block_stats(), (0, 0));
}

#[test]
fn a_seal_that_fails_keeps_every_entry_visible_and_the_next_one_succeeds() {
    let dir = Path::new("/data/logs");
    for fault in [
        Fault::Io,
        Fault::NoSpace,
        Fault::ShortWrite,
        Fault::SyncFail,
    ] {
        // Fail each of the seal's operations in turn.
        for k in 0..12 {
            let fs = SimFs::new(23);
            let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
            write(
                &store,
                &["api", "db"],
                NOW_NS - 100_000_000_000,
                50,
                1_000_000,
            );
            let before = everything(&store);
            fs.fail_op(fs.stats().ops + k, fault);
            let first = store.seal();
            assert_eq!(everything(&store), before, "{fault:?} at {k}: {first:?}");
            assert_eq!(count(&store), 100, "{fault:?} at {k}");
            // The log may have moved to a new segment after the failure; write and seal again.
            write(&store, &["web"], NOW_NS - 50_000_000_000, 5, 1);
            store
                .seal()
                .unwrap_or_else(|e| panic!("{fault:?} at {k}: {e}"));
            assert_eq!(count(&store), 105, "{fault:?} at {k}");
            drop(store);
            let (store, report) = LogStore::open(dir, options(fs.crash())).unwrap();
            assert!(!report.wal.has_damage(), "{report:?}");
            assert_eq!(count(&store), 105, "{fault:?} at {k}: after a power cut");
        }
    }
}

#[test]
fn seals_running_beside_commits_keep_every_acknowledged_entry_once_across_a_reopen() {
    let fs = SimFs::new(24);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let sealed = std::sync::atomic::AtomicUsize::new(0);
    // Writers wait at a third and at two thirds of their commits until that many seals have
    // run, so seals fall among the commits however the threads are scheduled.
    let wait_for_seals = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while sealed.load(std::sync::atomic::Ordering::Acquire) < n {
            assert!(std::time::Instant::now() < deadline, "no seal within 30 s");
            std::thread::yield_now();
        }
    };
    let seals = std::thread::scope(|s| {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let store = &store;
                let wait_for_seals = &wait_for_seals;
                s.spawn(move || {
                    for i in 0..300i64 {
                        if i == 100 || i == 200 {
                            wait_for_seals(i as usize / 100);
                        }
                        let mut app = store.appender();
                        for j in 0..3 {
                            let ts = NOW_NS - 1_000_000_000 + i * 10 + j;
                            app.append(
                                &stream(&format!("w{w}"), &format!("l{}", i % 4)),
                                Entry::new(ts, format!("writer {w} commit {i} entry {j}")),
                            )
                            .unwrap();
                        }
                        app.commit().unwrap();
                    }
                })
            })
            .collect();
        let sealer = s.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if store.seal().unwrap().is_some() {
                    n += 1;
                    sealed.store(n, std::sync::atomic::Ordering::Release);
                }
            }
            n
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sealer.join().unwrap()
    });
    assert!(seals >= 2, "seals ran among the commits: {seals}");
    assert_eq!(count(&store), 2_700);
    assert_eq!(everything(&store).len(), 2_700);
    store.close().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir, options(fs.crash())).unwrap();
    assert!(!report.wal.has_damage(), "{report:?}");
    assert_eq!(count(&store), 2_700, "after a power cut: {report:?}");
}

#[test]
fn a_commit_past_the_head_s_bound_waits_for_a_seal_and_is_refused_if_none_comes() {
    use strata_core::maintenance::{Maintained, Waker};
    use strata_logs::CommitError;
    let store = LogStore::open(
        Path::new("/data/logs"),
        LogOptions {
            seal_bytes: 1_000,
            ..options(SimFs::new(11))
        },
    )
    .unwrap()
    .0;
    // A maintenance thread that never comes: the waker only counts.
    let wakes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = Arc::clone(&wakes);
    store.set_waker(Waker::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    let batch = |from: i64| {
        let mut app = store.appender();
        for i in 0..20 {
            app.append(
                &stream("api", "info"),
                Entry::new(NOW_NS - 1_000_000 + from + i, format!("line {i:0>90}")),
            )
            .unwrap();
        }
        app.commit()
    };
    // Two kilobytes a batch: the second reaches three seals' worth (3,000 bytes).
    batch(0).unwrap();
    batch(100).unwrap();
    assert!(
        wakes.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "a seal was asked for"
    );
    let held = store.stats().1;
    match batch(200) {
        Err(CommitError::Busy { bytes }) => assert!(bytes >= 3_000, "{bytes}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(
        store.stats().1,
        held,
        "nothing of the refused batch is held"
    );
    // A seal makes room: the next batch is taken (a commit waiting while it runs too).
    std::thread::scope(|s| {
        let waiting = s.spawn(|| batch(300));
        store.seal().unwrap();
        waiting.join().unwrap().unwrap();
    });
    assert_eq!(
        store.stats().1,
        20,
        "the head holds the batch after the seal"
    );
}

#[test]
fn a_limited_query_stops_at_the_blocks_that_can_no_longer_change_its_answer() {
    let store = LogStore::open(Path::new("/data/logs"), options(SimFs::new(12)))
        .unwrap()
        .0;
    // Three blocks an hour apart, two streams each.
    for hour in 0..3i64 {
        let mut app = store.appender();
        for i in 0..100i64 {
            for app_name in ["api", "db"] {
                app.append(
                    &stream(app_name, "info"),
                    Entry::new(
                        NOW_NS - (3 - hour) * 3_600_000_000_000 + i * 1_000_000,
                        format!("{app_name} hour {hour} line {i}"),
                    ),
                )
                .unwrap();
            }
        }
        app.commit().unwrap();
        store.seal().unwrap().unwrap();
    }
    let before = store.page_stats().read;
    let newest = store
        .select(&[any_app()], i64::MIN, i64::MAX, Direction::Backward, 10)
        .unwrap();
    let lines: Vec<&str> = newest
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.line.as_str()))
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines.iter().all(|l| l.contains("hour 2 line 9")),
        "{lines:?}"
    );
    assert_eq!(
        store.page_stats().read - before,
        2,
        "only the newest block's pages (one a stream) are read"
    );
    let before = store.page_stats().read;
    let oldest = store
        .select(&[any_app()], i64::MIN, i64::MAX, Direction::Forward, 10)
        .unwrap();
    assert!(
        oldest
            .iter()
            .flat_map(|s| &s.entries)
            .all(|e| e.line.contains("hour 0 line ")),
        "{oldest:?}"
    );
    assert_eq!(
        store.page_stats().read - before,
        2,
        "only the oldest block's"
    );
    // A limit beyond one block's entries reads on.
    let all = store
        .select(&[any_app()], i64::MIN, i64::MAX, Direction::Backward, 500)
        .unwrap();
    assert_eq!(all.iter().map(|s| s.entries.len()).sum::<usize>(), 500);
}

#[test]
fn concurrent_batches_cannot_together_pass_the_streams_limit() {
    let mut o = options(SimFs::new(13));
    o.limits.streams_max = 10;
    let (store, _) = LogStore::open(Path::new("/l"), o).unwrap();
    let new_streams = |app: &mut strata_logs::LogAppender<'_>, prefix: &str| {
        (0..8)
            .filter(|i| {
                app.append(
                    &stream(&format!("{prefix}{i}"), "info"),
                    Entry::new(NOW_NS, "x"),
                )
                .is_ok()
            })
            .count()
    };
    // Two batches open at once, each naming eight new streams.
    let mut first = store.appender();
    let mut second = store.appender();
    assert_eq!(new_streams(&mut first, "a"), 8);
    assert_eq!(
        new_streams(&mut second, "b"),
        2,
        "the first batch's eight count against the limit before it commits"
    );
    second.commit().unwrap();
    first.commit().unwrap();
    assert_eq!(store.stats().0, 10, "exactly the limit");
    // A batch dropped without committing gives its streams back.
    let mut dropped = store.appender();
    assert_eq!(new_streams(&mut dropped, "c"), 0, "the store is full");
    drop(dropped);
    assert_eq!(store.stats().0, 10);
}

/// Every entry of `app`'s "info" stream, oldest first, as (time, line).
fn stream_lines(store: &LogStore, app: &str) -> Vec<(i64, String)> {
    all_of(store, Matcher::equal("app", app))
        .into_iter()
        .flat_map(|s| s.entries.into_iter().map(|e| (e.ts_ns, e.line)))
        .collect()
}

/// Four seals' blocks whose streams overlap in time (entries of one time in two blocks).
fn four_overlapping_blocks(store: &LogStore) {
    for seal in 0..4i64 {
        let mut app = store.appender();
        for i in 0..300i64 {
            // Each seal's entries interleave with the others' in time.
            let ts = NOW_NS - 3_600_000_000_000 + i * 4_000 + seal * 1_000;
            app.append(
                &stream("api", "info"),
                Entry::new(ts, format!("api {seal} {i} {}", "p".repeat(200))),
            )
            .unwrap();
            if i % 3 == 0 {
                app.append(&stream(&format!("s{seal}"), "info"), Entry::new(ts, "own"))
                    .unwrap();
            }
        }
        // The same time in every seal: the merge keeps the order they were written in.
        app.append(
            &stream("api", "info"),
            Entry::new(NOW_NS - 1_000, format!("same time, seal {seal}")),
        )
        .unwrap();
        app.commit().unwrap();
        store.seal().unwrap().expect("a block");
    }
}

#[test]
fn a_compaction_merges_blocks_into_one_holding_every_entry_once_in_time_order() {
    let fs = SimFs::new(31);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    four_overlapping_blocks(&store);
    let before = everything(&store);
    let api_before = stream_lines(&store, "api");
    assert_eq!(store.block_stats().0, 4);

    let merged = store
        .compact()
        .unwrap()
        .expect("four blocks of level 0 are due");
    assert_eq!(store.block_stats().0, 1, "the four became one");
    assert_eq!(merged.entries as usize, before.len());
    assert_eq!(merged.streams, 5, "api and one stream per seal");
    assert!(
        merged.pages < 4 * 5,
        "api's entries fill fewer, longer pages: {merged:?}"
    );
    assert!(store.compact().unwrap().is_none(), "nothing more is due");
    assert_eq!(everything(&store), before);
    assert_eq!(count(&store), before.len(), "no entry twice");
    let api = stream_lines(&store, "api");
    assert!(
        api.is_sorted_by_key(|(ts, _)| *ts),
        "time order across the sources"
    );
    assert_eq!(api.len(), api_before.len());
    let same_time: Vec<&str> = api
        .iter()
        .filter(|(ts, _)| *ts == NOW_NS - 1_000)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(
        same_time,
        [
            "same time, seal 0",
            "same time, seal 1",
            "same time, seal 2",
            "same time, seal 3"
        ],
        "entries of one time keep the order they were written in"
    );
    let blocks: Vec<_> = fs
        .files()
        .into_iter()
        .filter(|p| p.starts_with(dir.join("blocks")))
        .collect();
    assert_eq!(blocks.len(), 1, "the sources' files are gone: {blocks:?}");
    assert!(blocks[0].ends_with("0000000004.lblk"), "{blocks:?}");

    drop(store);
    let (store, report) = LogStore::open(dir, options(fs.crash())).unwrap();
    assert_eq!((report.blocks, report.merged_blocks), (1, 0));
    assert_eq!(everything(&store), before);
    assert_eq!(stream_lines(&store, "api"), api);
}

#[test]
fn a_merged_block_left_beside_its_compaction_is_removed_on_opening_not_read_twice() {
    let fs = SimFs::new(32);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    four_overlapping_blocks(&store);
    let before = everything(&store);
    let first = dir.join("blocks/0000000001.lblk");
    let first_bytes = fs.read(&first).unwrap();
    store.compact().unwrap().expect("due");
    drop(store);
    // As if the process had stopped after the rename, before removing the other sources.
    let mut file = fs.create(&first).unwrap();
    file.append(&first_bytes).unwrap();
    file.sync().unwrap();
    fs.sync_dir(&dir.join("blocks")).unwrap();
    let (store, report) = LogStore::open(dir, options(fs.clone())).unwrap();
    assert_eq!((report.blocks, report.merged_blocks), (1, 1), "{report:?}");
    assert_eq!(everything(&store), before);
    assert_eq!(count(&store), before.len(), "no entry twice");
    assert!(!fs.exists(&first).unwrap());
}

#[test]
fn maintain_merges_runs_of_blocks_level_by_level() {
    let fs = SimFs::new(33);
    let dir = Path::new("/data/logs");
    let opts = |fs: SimFs| LogOptions {
        compact_fan_in: 2,
        ..options(fs)
    };
    let (store, _) = LogStore::open(dir, opts(fs.clone())).unwrap();
    let mut written = 0;
    for round in 0..8i64 {
        write(
            &store,
            &["api", "db"],
            NOW_NS - 3_600_000_000_000 + round * 100_000_000_000,
            20,
            1_000_000,
        );
        written += 40;
        store.seal().unwrap();
        store.maintain().unwrap();
        assert_eq!(count(&store), written, "after round {round}");
    }
    // A round merges at most two runs: the last seal left two to do, one of them left.
    assert_eq!(store.block_stats().0, 2);
    assert_eq!(store.maintain().unwrap().compacted.len(), 1);
    // Eight seals with a fan-in of two: one block of level three.
    assert_eq!(store.block_stats().0, 1);
    assert_eq!(count(&store), written);
    assert!(store.maintain().unwrap().compacted.is_empty());
    drop(store);
    let (store, report) = LogStore::open(dir, opts(fs.crash())).unwrap();
    assert_eq!(report.blocks, 1);
    assert_eq!(count(&store), written);
}

#[test]
fn a_compaction_copies_full_pages_that_nothing_else_overlaps_as_they_are() {
    use strata_logs::block::{LogBlock, PAGE_BYTES};
    let fs = SimFs::new(34);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs.clone())).unwrap();
    // A loud stream, each seal's entries after the previous seal's: pages of a seal are
    // full but for its last; a quiet stream whose entries interleave with every seal's.
    let mut n = 0i64;
    for seal in 0..4i64 {
        let mut app = store.appender();
        for _ in 0..3 * PAGE_BYTES / 400 {
            n += 1;
            let ts = NOW_NS - 3_600_000_000_000 + n * 1_000;
            app.append(
                &stream("loud", "info"),
                Entry::new(ts, format!("{n} {}", "x".repeat(380))),
            )
            .unwrap();
        }
        app.append(
            &stream("quiet", "info"),
            Entry::new(NOW_NS - 3_600_000_000_000 + seal, format!("quiet {seal}")),
        )
        .unwrap();
        app.commit().unwrap();
        store.seal().unwrap();
    }
    let sources: Vec<LogBlock> = (1..=4)
        .map(|s| LogBlock::open(&fs, &dir.join(format!("blocks/{s:010}.lblk"))).unwrap())
        .collect();
    let before = everything(&store);
    store.compact().unwrap().expect("due");
    assert_eq!(everything(&store), before);
    let merged = LogBlock::open(&fs, &dir.join("blocks/0000000004.lblk")).unwrap();
    let frames = |b: &LogBlock| -> Vec<Vec<u8>> {
        (0..b.pages().len())
            .map(|p| b.stored_page(p).unwrap().0.to_vec())
            .collect()
    };
    let merged_frames = frames(&merged);
    let mut full = 0;
    for source in &sources {
        for (p, frame) in frames(source).into_iter().enumerate() {
            if source.pages()[p].raw_len as usize >= PAGE_BYTES / 2 {
                full += 1;
                assert!(
                    merged_frames.contains(&frame),
                    "a full page of block {} was rewritten",
                    source.seq()
                );
            }
        }
    }
    assert!(full >= 8, "the loud stream filled pages: {full}");
    assert_eq!(merged.level(), 1);
    assert_eq!(merged.sources(), [1, 2, 3]);
}

#[test]
fn a_scan_searching_pages_whole_visits_exactly_the_entries_holding_a_match() {
    use strata_logs::filter::LineMatch;
    use strata_logs::store::LineFilter;
    let fs = SimFs::new(35);
    let dir = Path::new("/data/logs");
    let (store, _) = LogStore::open(dir, options(fs)).unwrap();
    let line = |i: i64| match i % 5 {
        0 => format!("GET /api took={}.{}ms", i % 13, (i / 5) % 100),
        1 => format!("{}9ms", i % 7), // ends like a match; the next line may complete one
        2 => "took=".to_string(),
        3 => String::new(),
        _ => format!("é worker {i} done"),
    };
    let mut app = store.appender();
    for i in 0..2_000i64 {
        let mut e = Entry::new(NOW_NS - 3_600_000_000_000 + i * 1_000, line(i));
        e.metadata = vec![("trace_id".into(), format!("{i:x}"))];
        app.append(&stream(["api", "db"][(i % 2) as usize], "info"), e)
            .unwrap();
    }
    app.commit().unwrap();
    store.seal().unwrap();
    write(&store, &["api"], NOW_NS - 1_000_000_000, 50, 1_000); // head entries too
    for pattern in ["took=[0-9]+\\.[0-9]+9ms", "9ms", "é w", "request"] {
        let m = LineMatch::regex(pattern).unwrap();
        let visit = |must_match: Option<&LineMatch>| {
            let mut seen = Vec::new();
            store
                .scan(
                    &[any_app()],
                    i64::MIN,
                    i64::MAX,
                    &[],
                    must_match,
                    &mut |l, e| {
                        if m.is_match(e.line.as_bytes()) {
                            seen.push((l.clone(), e.clone()));
                        }
                    },
                )
                .unwrap();
            seen
        };
        let all = visit(None);
        assert_eq!(visit(Some(&m)), all, "{pattern}");
        assert!(!all.is_empty(), "{pattern} matches something");
        // A limited query keeps the same newest lines searched either way.
        let query = |must_match: Option<LineMatch>| {
            let filter = LineFilter {
                keep: Box::new(|_, e| m.is_match(e.line.as_bytes())),
                must_match,
                ..LineFilter::default()
            };
            store
                .select_lines(
                    &[any_app()],
                    i64::MIN,
                    i64::MAX,
                    Direction::Backward,
                    30,
                    &filter,
                )
                .unwrap()
        };
        assert_eq!(query(Some(m.clone())), query(None), "{pattern}");
    }
}
