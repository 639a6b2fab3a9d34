//! One maintenance thread for every store: the log store handed to the metrics database's
//! thread is sealed there, on the database's schedule.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_engine::clock::ManualClock;
use strata_engine::fs::sim::SimFs;
use strata_engine::labels::Labels;
use strata_engine::logs::{Entry, LogOptions, LogStore};
use strata_engine::{Db, Options};

const NOW_MS: i64 = 1_800_000_000_000;

/// A metrics database whose maintenance thread runs every `interval`, and a log store sealed
/// at `seal_bytes` handed to it, on one simulated disk.
fn db_with_logs(seed: u64, interval: Duration, seal_bytes: u64) -> (Db, Arc<LogStore>) {
    let fs = SimFs::new(seed);
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let db = Db::open(
        Path::new("/data"),
        Options {
            fs: Arc::new(fs.clone()),
            clock: Arc::clone(&clock) as _,
            maintenance_interval: interval,
            ..Options::default()
        },
    )
    .unwrap();
    let (logs, _) = LogStore::open(
        Path::new("/data/logs"),
        LogOptions {
            fs: Arc::new(fs),
            clock,
            seal_bytes,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let logs = Arc::new(logs);
    db.add_maintained(logs.clone());
    (db, logs)
}

#[test]
fn the_database_s_maintenance_thread_seals_the_log_store_it_was_handed() {
    let (db, logs) = db_with_logs(1, Duration::from_millis(20), 1);
    let mut app = logs.appender();
    app.append(
        &Labels::new([("app", "api")]).unwrap(),
        Entry::new(NOW_MS * 1_000_000, "GET / 200"),
    )
    .unwrap();
    app.commit().unwrap();
    // The thread runs a round every 20 ms.
    await_first_block(&logs, "no seal by the maintenance thread");
    assert_eq!(logs.stats().1, 0, "the head's entry moved into the block");
    db.close().unwrap();
}

/// Waits until the maintenance thread has sealed a block, up to ten seconds on a busy machine.
fn await_first_block(logs: &LogStore, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs.block_stats().0 == 0 {
        assert!(Instant::now() < deadline, "{failure} within 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_log_head_at_its_seal_size_is_sealed_at_once_not_at_the_next_scheduled_round() {
    // An hour between scheduled rounds: only the store's own request can seal it in time.
    let (db, logs) = db_with_logs(2, Duration::from_secs(3600), 4096);
    let labels = Labels::new([("app", "api")]).unwrap();
    // Below the seal size: no round is asked for.
    let mut app = logs.appender();
    app.append(&labels, Entry::new(NOW_MS * 1_000_000, "GET / 200"))
        .unwrap();
    app.commit().unwrap();
    // Past it: the commit asks for a round.
    let mut app = logs.appender();
    for i in 1..100 {
        app.append(
            &labels,
            Entry::new(
                NOW_MS * 1_000_000 + i,
                format!("GET /item/{i} 200 {}", "x".repeat(60)),
            ),
        )
        .unwrap();
    }
    app.commit().unwrap();
    await_first_block(&logs, "the head past its seal size was not sealed");
    assert_eq!(logs.stats().1, 0, "every entry moved into the block");
    db.close().unwrap();
}
