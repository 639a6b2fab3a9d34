//! Crash simulation: random workloads on the simulated disk, power cuts at random points,
//! injected I/O faults, reopen, and comparison with a model of what was acknowledged.
//!
//! Every seed drives one history: commits (in order, out of order within the window, resent
//! duplicates), checkpoints, maintenance (blocks cut from the head, compaction), syncs, injected faults (EIO, ENOSPC, short writes, failed fsyncs),
//! disk-full stretches and power cuts. After each cut the database is reopened and compared
//! with the model:
//! * with `fsync = always`, every acknowledged sample is present with its exact bits;
//! * with `fsync = interval`, every sample acknowledged before the last completed sync is;
//! * nothing is present that was never appended (values are a pure function of series and
//!   time, so a resurfacing unacknowledged sample can never contradict an acknowledged one);
//! * a power cut never makes the log look corrupt (nothing quarantined, nothing missing).
//!
//! `STRATA_CRASH_SEEDS` sets how many seeds run (default 10,000); `STRATA_CRASH_SEED` runs one.
//! A failure prints its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strata_engine::clock::ManualClock;
use strata_engine::fs::sim::{Fault, SimFs, SplitMix64};
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, FsyncMode, Options};

const SERIES: usize = 12;
const STEP_MS: i64 = 15_000;
const T0: i64 = 1_000_000_000_000;
const WINDOW_MS: i64 = 10 * STEP_MS;

fn labels(s: usize) -> Labels {
    Labels::new([
        (
            "__name__",
            if s.is_multiple_of(3) {
                "up"
            } else {
                "node_cpu_seconds_total"
            },
        ),
        ("instance", &format!("host-{s}:9100")),
    ])
    .unwrap()
}

/// The one value series `s` ever has at `t`.
fn value(seed: u64, s: usize, t: i64) -> f64 {
    let mut r = SplitMix64::new(seed ^ (s as u64) << 48 ^ t as u64);
    match r.below(20) {
        0 => f64::from_bits(0x7ff0_0000_0000_0002), // the stale marker
        1 => f64::from_bits(0x7ff8_dead_beef_0001), // another NaN payload
        2 => -0.0,
        3 => (t / STEP_MS) as f64, // counters
        _ => f64::from_bits(r.next_u64()),
    }
}

#[derive(Default)]
struct Model {
    /// (series, t) acknowledged.
    acked: BTreeSet<(usize, i64)>,
    /// Acknowledged and known to be synced (equal to `acked` with `fsync = always`).
    durable: BTreeSet<(usize, i64)>,
    /// Appended in a commit that failed: may or may not be present.
    maybe: BTreeSet<(usize, i64)>,
    /// Newest timestamp appended per series.
    newest: BTreeMap<usize, i64>,
}

struct Run {
    seed: u64,
    rng: SplitMix64,
    always: bool,
    model: Model,
    clock: Arc<ManualClock>,
}

impl Run {
    fn options(&self, fs: &SimFs) -> Options {
        Options {
            fs: Arc::new(fs.clone()),
            clock: self.clock.clone(),
            fsync: if self.always {
                FsyncMode::Always
            } else {
                // Never fires during a run: syncs happen where the workload says.
                FsyncMode::Interval(Duration::from_secs(3600))
            },
            wal_segment_bytes_max: 4096,
            out_of_order_window_ms: WINDOW_MS,
            chunk_samples_max: 8,
            ooo_buffer_samples_max: 4,
            background_maintenance: false,
            checkpoint_on_close: false,
            // Blocks of 8 steps, compacted into 24 and 96: a run cuts and merges many.
            block_ranges_ms: vec![8 * STEP_MS, 24 * STEP_MS, 96 * STEP_MS],
            retention_ms: 0,
            ..Options::default()
        }
    }

    fn open(&self, fs: &SimFs) -> Result<Db, String> {
        Db::open(Path::new("/db"), self.options(fs)).map_err(|e| format!("open failed: {e}"))
    }

    fn commit(&mut self, db: &Db) {
        let mut app = db.appender();
        let mut appended = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            let s = self.rng.below(SERIES as u64) as usize;
            for _ in 0..1 + self.rng.below(12) {
                let newest = self.model.newest.get(&s).copied();
                let t = match (newest, self.rng.below(10)) {
                    (None, _) => T0,
                    // Out of order, possibly beyond the window (then rejected).
                    (Some(n), 0) => n - self.rng.below(WINDOW_MS as u64 * 2) as i64,
                    // A resend of something appended before.
                    (Some(n), 1) => n - STEP_MS * self.rng.below(3) as i64,
                    (Some(n), _) => n + STEP_MS - 2 + self.rng.below(5) as i64,
                };
                // An out-of-order sample beyond the window is rejected and never stored.
                if app.append(&labels(s), t, value(self.seed, s, t)).is_ok() {
                    appended.push((s, t));
                    let e = self.model.newest.entry(s).or_insert(t);
                    *e = (*e).max(t);
                }
            }
        }
        let result = app.commit();
        if std::env::var("STRATA_CRASH_TRACE").is_ok() {
            eprintln!("  commit {:?}: {appended:?}", result.as_ref().map(|_| ()));
        }
        match result {
            Ok(_) => {
                for k in appended {
                    self.model.maybe.remove(&k);
                    self.model.acked.insert(k);
                    if self.always {
                        self.model.durable.insert(k);
                    }
                }
            }
            Err(_) => {
                for k in appended {
                    if !self.model.acked.contains(&k) {
                        self.model.maybe.insert(k);
                    }
                }
                self.write_failed();
            }
        }
    }

    /// In interval mode a failed write or sync may lose what was acknowledged since the last
    /// successful sync, and a later sync cannot bring it back: those samples are no longer
    /// promised.
    fn write_failed(&mut self) {
        if self.always {
            return;
        }
        let unsure: Vec<_> = self
            .model
            .acked
            .difference(&self.model.durable)
            .copied()
            .collect();
        for k in unsure {
            self.model.acked.remove(&k);
            self.model.maybe.insert(k);
        }
    }

    fn verify(&self, db: &Db, when: &str) -> Result<(), String> {
        let report = db.open_report();
        if report.wal.has_damage() || report.orphaned_samples > 0 {
            return Err(format!(
                "{when}: a power cut looked like corruption: {report:?}"
            ));
        }
        let q = db.querier(i64::MIN, i64::MAX);
        let all = q
            .select(&[Matcher::new(
                strata_engine::labels::matcher::MatchKind::Regex,
                "__name__",
                ".+",
            )
            .unwrap()])
            .map_err(|e| e.to_string())?;
        let mut present = BTreeSet::new();
        for series in &all {
            let s = (0..SERIES)
                .find(|&s| labels(s) == *series.labels())
                .ok_or_else(|| format!("{when}: unknown series {}", series.labels()))?;
            let mut prev = None;
            for sample in series.samples() {
                if prev.is_some_and(|p| p >= sample.t) {
                    return Err(format!(
                        "{when}: series {s} not strictly increasing at {}",
                        sample.t
                    ));
                }
                prev = Some(sample.t);
                if sample.v.to_bits() != value(self.seed, s, sample.t).to_bits() {
                    return Err(format!(
                        "{when}: series {s} at {} holds a wrong value",
                        sample.t
                    ));
                }
                let k = (s, sample.t);
                if !self.model.acked.contains(&k) && !self.model.maybe.contains(&k) {
                    return Err(format!(
                        "{when}: series {s} at {} was never appended",
                        sample.t
                    ));
                }
                present.insert(k);
            }
        }
        if let Some(lost) = self.model.durable.difference(&present).next() {
            return Err(format!(
                "{when}: acknowledged sample lost: series {} at {} ({} durable, {} present); {report:?}",
                lost.0,
                lost.1,
                self.model.durable.len(),
                present.len()
            ));
        }
        Ok(())
    }

    /// After a power cut: what survived becomes the new truth for the unacknowledged samples
    /// (present ones may resurface again later, absent ones are gone).
    fn settle(&mut self, db: &Db) {
        let q = db.querier(i64::MIN, i64::MAX);
        let mut present = BTreeSet::new();
        for series in q
            .select(&[Matcher::new(
                strata_engine::labels::matcher::MatchKind::Regex,
                "__name__",
                ".+",
            )
            .unwrap()])
            .unwrap()
        {
            let s = (0..SERIES)
                .find(|&s| labels(s) == *series.labels())
                .unwrap();
            for sample in series.samples() {
                present.insert((s, sample.t));
            }
        }
        // Acknowledged-but-unsynced samples that did not survive are no longer expected.
        self.model.acked.retain(|k| present.contains(k));
        self.model.durable = self.model.acked.clone();
        self.model.maybe.retain(|k| present.contains(k));
        for k in &present {
            if !self.model.acked.contains(k) {
                self.model.maybe.insert(*k);
            }
        }
        self.model.newest.clear();
        for &(s, t) in self.model.acked.iter().chain(&self.model.maybe) {
            let e = self.model.newest.entry(s).or_insert(t);
            *e = (*e).max(t);
        }
    }
}

fn run_seed(seed: u64, always: bool) -> Result<(), String> {
    let mut run = Run {
        seed,
        rng: SplitMix64::new(seed),
        always,
        model: Model::default(),
        clock: Arc::new(ManualClock::new(T0 + 365 * 24 * 3_600_000)),
    };
    let mut fs = SimFs::new(seed);
    let mut db = run.open(&fs)?;
    let steps = 20 + run.rng.below(100);
    let trace = std::env::var("STRATA_CRASH_TRACE").is_ok();
    for step in 0..steps {
        let op = run.rng.below(100);
        if trace {
            eprintln!("step {step}: op {op}, disk ops so far {}", fs.stats().ops);
        }
        match op {
            0..=69 => run.commit(&db),
            70..=72 => {
                if db.checkpoint().is_err() {
                    run.write_failed();
                }
            }
            73..=74 => {
                let r = db.maintain();
                if trace {
                    eprintln!("  maintain: {r:?}");
                }
                if r.is_err() {
                    run.write_failed();
                }
            }
            75..=79 => {
                let r = db.sync();
                if trace {
                    eprintln!("  sync: {r:?}");
                }
                match r {
                    Ok(()) => run.model.durable = run.model.acked.clone(),
                    Err(_) => run.write_failed(),
                }
            }
            80..=86 => {
                let fault = match run.rng.below(4) {
                    0 => Fault::Io,
                    1 => Fault::NoSpace,
                    2 => Fault::ShortWrite,
                    _ => Fault::SyncFail,
                };
                let at = fs.stats().ops + run.rng.below(30);
                if trace {
                    eprintln!("  fault {fault:?} at op {at}");
                }
                fs.fail_op(at, fault);
            }
            87..=89 => {
                fs.set_disk_full(true);
                run.commit(&db);
                if db.checkpoint().is_err() {
                    run.write_failed();
                }
                fs.set_disk_full(false);
            }
            _ => {
                let after = fs.crash();
                drop(db);
                fs = after;
                db = run.open(&fs)?;
                run.verify(&db, &format!("after the power cut at step {step}"))?;
                run.settle(&db);
            }
        }
    }
    let after = fs.crash();
    drop(db);
    let db = run.open(&after)?;
    run.verify(&db, "after the final power cut")?;
    // A second recovery from the recovered state finds nothing more to repair.
    let again = after.crash();
    drop(db);
    let db = run.open(&again)?;
    run.verify(&db, "after recovering twice")
}

fn run_many(always: bool) {
    if let Ok(one) = std::env::var("STRATA_CRASH_SEED") {
        let seed: u64 = one.parse().expect("STRATA_CRASH_SEED is a number");
        if let Err(e) = run_seed(seed, always) {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let seeds: u64 = std::env::var("STRATA_CRASH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let base = if always { 0 } else { 1 << 32 };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for seed in (base + k..base + seeds).step_by(threads as usize) {
                        let outcome =
                            std::panic::catch_unwind(AssertUnwindSafe(|| run_seed(seed, always)));
                        match outcome {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => failures.push(format!("seed {seed}: {e}")),
                            Err(_) => failures.push(format!("seed {seed}: panicked")),
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "crash simulation ({}): {seeds} seeds, {} failed",
        if always {
            "fsync=always"
        } else {
            "fsync=interval"
        },
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed (rerun one with STRATA_CRASH_SEED=N):\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_acknowledged_sample_is_lost_with_fsync_always() {
    run_many(true);
}

#[test]
fn loss_stays_within_the_sync_window_with_fsync_interval() {
    run_many(false);
}
