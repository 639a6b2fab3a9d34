//! Blocks in the database: the head's old data moves into blocks, queries span head and
//! blocks, out-of-order data is folded in by compaction, retention removes the oldest blocks,
//! and a crash at any operation of that work loses and doubles nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_engine::clock::ManualClock;
use strata_engine::fs::Fs;
use strata_engine::fs::sim::{SimFs, SplitMix64};
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, MaintenanceReport, Options};

const HOUR: i64 = 3_600_000;
const STEP: i64 = 60_000;
/// Aligned to every block range used here.
const T0: i64 = 1_700_006_400_000 - 1_700_006_400_000 % (24 * HOUR);
const SERIES: usize = 6;

/// (series, t) → value bits: what the database must hold.
type Model = BTreeMap<(String, i64), u64>;

fn labels(s: usize) -> Labels {
    Labels::new([
        ("__name__", if s.is_multiple_of(2) { "up" } else { "load" }),
        ("instance", &format!("host-{s}")),
    ])
    .unwrap()
}

fn value(s: usize, t: i64) -> f64 {
    let mut r = SplitMix64::new((s as u64) << 40 ^ t as u64);
    match r.below(4) {
        0 => (t / STEP) as f64,
        1 => f64::from_bits(0x7ff0_0000_0000_0002),
        _ => f64::from_bits(r.next_u64() >> 2),
    }
}

fn options(fs: &SimFs, clock: &Arc<ManualClock>) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        clock: Arc::clone(clock) as _,
        background_maintenance: false,
        out_of_order_window_ms: 3 * HOUR,
        chunk_samples_max: 40,
        block_ranges_ms: vec![2 * HOUR, 6 * HOUR, 24 * HOUR],
        retention_ms: 0,
        ..Options::default()
    }
}

/// Appends one sample per series every `STEP` in `[from, to)`, one commit per step.
fn write(db: &Db, model: &mut Model, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for s in 0..SERIES {
            app.append(&labels(s), t, value(s, t)).unwrap();
            model.insert((labels(s).to_string(), t), value(s, t).to_bits());
        }
        app.commit().unwrap();
        t += STEP;
    }
}

fn read_all(db: &Db) -> Model {
    let any = Matcher::new(
        strata_engine::labels::matcher::MatchKind::Regex,
        "__name__",
        ".+",
    )
    .unwrap();
    let mut out = Model::new();
    for s in db.querier(i64::MIN, i64::MAX).select(&[any]).unwrap() {
        let mut last = i64::MIN;
        for x in s.samples() {
            assert!(
                x.t > last,
                "{}: timestamps out of order or repeated",
                s.labels()
            );
            last = x.t;
            out.insert((s.labels().to_string(), x.t), x.v.to_bits());
        }
    }
    out
}

/// Bytes of the blocks' `meta.json` files (the one file `Stats::block_bytes` leaves out).
fn meta_bytes(fs: &SimFs) -> u64 {
    fs.files()
        .iter()
        .filter(|f| f.ends_with("meta.json"))
        .map(|f| fs.file_len(f).unwrap())
        .sum()
}

/// The blocks on disk as the next open would load them: `(min_t, max_t, level)`, sorted.
/// Leftovers of a failed removal (`.deleting` directories, and sources of a published
/// compaction) are left out: opening removes them.
fn block_ranges(db: &Db, fs: &SimFs) -> Vec<(i64, i64, u32)> {
    let mut metas = Vec::new();
    for name in fs.list(&db.dir().join("blocks")).unwrap() {
        if name.contains('.') {
            continue;
        }
        let meta = fs
            .read(&db.dir().join("blocks").join(&name).join("meta.json"))
            .unwrap();
        metas.push(serde_json::from_slice::<serde_json::Value>(&meta).unwrap());
    }
    let superseded: Vec<serde_json::Value> = metas
        .iter()
        .flat_map(|m| m["sources"].as_array().unwrap().clone())
        .collect();
    let mut out: Vec<(i64, i64, u32)> = metas
        .iter()
        .filter(|m| !superseded.contains(&m["id"]))
        .map(|m| {
            (
                m["min_t"].as_i64().unwrap(),
                m["max_t"].as_i64().unwrap(),
                m["level"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn old_head_data_moves_into_a_block_and_queries_span_both() {
    let fs = SimFs::new(1);
    let clock = Arc::new(ManualClock::new(T0 + 4 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 3 * HOUR + 30 * STEP);
    let before = db.stats();

    let report = db.maintain().unwrap();
    assert_eq!(report.blocks_cut, 1);
    assert_eq!(block_ranges(&db, &fs), vec![(T0, T0 + 2 * HOUR - STEP, 1)]);
    let after = db.stats();
    assert_eq!(after.blocks, 1);
    let on_disk = |dir: &str| -> u64 {
        fs.files()
            .iter()
            .filter(|f| f.starts_with(dir))
            .map(|f| fs.file_len(f).unwrap())
            .sum()
    };
    assert_eq!(after.wal_disk_bytes, on_disk("/db/wal"));
    assert_eq!(after.block_bytes, on_disk("/db/blocks") - meta_bytes(&fs));
    assert_eq!(after.block_samples, SERIES as u64 * 120);
    assert_eq!(after.samples, before.samples - after.block_samples);
    // The head's 40-sample chunks went into the block as one 120-sample chunk a series.
    let blocks = fs.list(&db.dir().join("blocks")).unwrap();
    let meta = fs
        .read(&db.dir().join("blocks").join(&blocks[0]).join("meta.json"))
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["chunks"].as_u64(), Some(SERIES as u64));
    assert_eq!(read_all(&db), model);
    // Every range reads the same across the boundary.
    let q = db.querier(T0 + 2 * HOUR - 3 * STEP, T0 + 2 * HOUR + 2 * STEP);
    for s in q.select(&[Matcher::equal("instance", "host-1")]).unwrap() {
        let ts: Vec<i64> = s.samples().map(|x| x.t).collect();
        assert_eq!(
            ts,
            (-3..=2)
                .map(|k| T0 + 2 * HOUR + k * STEP)
                .collect::<Vec<_>>()
        );
    }
    // Nothing more is due.
    assert_eq!(db.maintain().unwrap(), MaintenanceReport::default());

    db.close().unwrap();
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    assert_eq!(db.open_report().blocks.loaded, 1);
    assert_eq!(read_all(&db), model);
    let names = db
        .querier(T0, T0 + HOUR)
        .label_values("instance", &[])
        .unwrap();
    assert_eq!(names.len(), SERIES);
}

#[test]
fn series_that_share_timestamps_in_a_block_read_them_decoded_once() {
    for cache_bytes in [Options::default().decoded_cache_bytes, 0] {
        let fs = SimFs::new(2);
        let clock = Arc::new(ManualClock::new(T0 + 4 * HOUR));
        let mut opts = options(&fs, &clock);
        opts.decoded_cache_bytes = cache_bytes;
        let db = Db::open("/db", opts).unwrap();
        let mut model = Model::new();
        write(&db, &mut model, T0, T0 + 3 * HOUR + 30 * STEP);
        assert_eq!(db.maintain().unwrap().blocks_cut, 1);
        // The block's range only, through the bulk path a PromQL selector takes.
        let (mint, maxt) = (T0 + 10 * STEP, T0 + 2 * HOUR - 1);
        let mut got = Model::new();
        let any = Matcher::new(
            strata_engine::labels::matcher::MatchKind::Regex,
            "__name__",
            ".+",
        )
        .unwrap();
        for s in db.querier(mint, maxt).select(&[any]).unwrap() {
            let mut bulk = Vec::new();
            s.samples_into(&mut bulk);
            for x in bulk {
                got.insert((s.labels().to_string(), x.t), x.v.to_bits());
            }
        }
        model.retain(|(_, t), _| (mint..=maxt).contains(t));
        assert_eq!(got, model, "cache of {cache_bytes} bytes");
        // One 120-sample chunk a series, all with the same timestamps: one times frame,
        // decoded for the first series and read from the cache by the others.
        let times = db.stats().decoded_times_cache;
        if cache_bytes > 0 {
            assert_eq!((times.misses, times.hits), (1, SERIES as u64 - 1));
        } else {
            assert_eq!((times.misses, times.hits, times.entries), (0, 0, 0));
        }
    }
}

#[test]
fn out_of_order_data_after_a_cut_is_folded_in_by_compaction() {
    let fs = SimFs::new(2);
    let clock = Arc::new(ManualClock::new(T0 + 4 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    // Every other minute, then cut: the block ends before the head's newest data.
    let mut t = T0;
    while t < T0 + 3 * HOUR + 30 * STEP {
        let mut app = db.appender();
        app.append(&labels(0), t, value(0, t)).unwrap();
        app.commit().unwrap();
        model.insert((labels(0).to_string(), t), value(0, t).to_bits());
        t += 2 * STEP;
    }
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    // Fill in odd minutes just before the cut, inside the out-of-order window.
    let mut app = db.appender();
    for k in [-7i64, -5, -3, -1] {
        let t = T0 + 2 * HOUR + k * STEP;
        app.append(&labels(0), t, value(0, t)).unwrap();
        model.insert((labels(0).to_string(), t), value(0, t).to_bits());
    }
    app.commit().unwrap();
    assert_eq!(read_all(&db), model, "head and block merged at query time");

    let report = db.maintain().unwrap();
    assert_eq!(report.blocks_cut, 1, "the late data gets its own block");
    assert_eq!(
        report.compactions, 1,
        "which is merged with the one it overlaps"
    );
    let ranges = block_ranges(&db, &fs);
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].2, 2);
    assert_eq!(read_all(&db), model);
    db.close().unwrap();
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    assert_eq!(read_all(&db), model);
}

#[test]
fn compaction_merges_blocks_into_aligned_windows_and_retention_drops_the_oldest() {
    let fs = SimFs::new(3);
    let clock = Arc::new(ManualClock::new(T0 + 60 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    for h in 0..53 {
        write(&db, &mut model, T0 + h * HOUR, T0 + (h + 1) * HOUR);
        db.maintain().unwrap();
    }
    let ranges = block_ranges(&db, &fs);
    // Two complete days, then 6 h windows, then what is left in 2 h blocks.
    assert_eq!(
        ranges.iter().map(|r| (r.0 - T0) / HOUR).collect::<Vec<_>>(),
        vec![0, 24, 48]
    );
    assert_eq!(ranges[0], (T0, T0 + 24 * HOUR - STEP, 3));
    assert_eq!(ranges[1].2, 3);
    assert_eq!(read_all(&db), model);
    let stats = db.stats();
    assert!(stats.maintenance.compactions >= 8, "{stats:?}");

    // Retention by time: blocks ending more than 28 h before the newest sample go.
    db.close().unwrap();
    let mut opts = options(&fs, &clock);
    opts.retention_ms = 28 * HOUR;
    let db = Db::open("/db", opts).unwrap();
    let earlier = db.querier(i64::MIN, i64::MAX);
    let report = db.maintain().unwrap();
    assert_eq!(report.blocks_expired, 1);
    let seen = earlier
        .select(&[Matcher::equal("instance", "host-0")])
        .unwrap();
    assert_eq!(
        seen[0].samples().next().map(|s| s.t),
        Some(T0 + 24 * HOUR),
        "a querier made before retention removed a block it never opened reads the rest"
    );
    let oldest_kept = T0 + 24 * HOUR;
    model.retain(|(_, t), _| *t >= oldest_kept);
    assert_eq!(read_all(&db), model);

    // Retention by size: the oldest block goes first.
    db.close().unwrap();
    let mut opts = options(&fs, &clock);
    opts.retention_bytes = 1;
    let db = Db::open("/db", opts).unwrap();
    let report = db.maintain().unwrap();
    assert_eq!(report.blocks_expired, 2);
    assert_eq!(db.stats().blocks, 0);
    model.retain(|(_, t), _| *t >= T0 + 50 * HOUR);
    assert_eq!(
        read_all(&db),
        model,
        "the head's data is not subject to retention"
    );
}

/// Builds the same history on a fresh disk every time: 10 h of data, cut and compacted, a
/// late sample older than the last cut, and 10 h more in the head, so that the next round of
/// maintenance cuts five blocks, folds the late sample in and compacts twice.
fn history(fs: &SimFs, clock: &Arc<ManualClock>) -> (Db, Model) {
    let db = Db::open("/db", options(fs, clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 10 * HOUR);
    let report = db.maintain().unwrap();
    assert_eq!((report.blocks_cut, report.compactions), (4, 1));
    let t = T0 + 8 * HOUR - 10 * STEP + 7;
    let mut app = db.appender();
    app.append(&labels(1), t, value(1, t)).unwrap();
    app.commit().unwrap();
    model.insert((labels(1).to_string(), t), value(1, t).to_bits());
    write(&db, &mut model, T0 + 10 * HOUR, T0 + 20 * HOUR);
    (db, model)
}

#[test]
fn a_crash_at_any_operation_of_cutting_and_compacting_loses_and_doubles_nothing() {
    let clock = Arc::new(ManualClock::new(T0 + 30 * HOUR));
    let mut op = 0;
    loop {
        let fs = SimFs::new(op);
        let (db, model) = history(&fs, &clock);
        let start = fs.stats().ops;
        fs.crash_before_op(start + op);
        let finished = db.maintain().is_ok() && fs.crashed().is_none();
        drop(db);
        let disk = match fs.crashed() {
            Some(disk) => disk,
            None if finished => break,
            None => panic!("op {op}: maintenance failed without the planned crash"),
        };
        let db = Db::open("/db", options(&disk, &clock))
            .unwrap_or_else(|e| panic!("op {op}: reopening after the crash failed: {e}"));
        assert!(
            !db.open_report().wal.has_damage(),
            "op {op}: {:?}",
            db.open_report()
        );
        assert_eq!(read_all(&db), model, "op {op}: after the crash");
        // Finishing the work afterwards leaves no overlap behind, and the same data.
        db.maintain().unwrap();
        let ranges = block_ranges(&db, &disk);
        assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "op {op}: overlapping blocks after maintenance: {ranges:?}"
        );
        assert_eq!(read_all(&db), model, "op {op}: after maintenance");
        assert!(
            !disk
                .files()
                .iter()
                .any(|f| f.to_string_lossy().contains(".tmp")
                    || f.to_string_lossy().contains(".deleting")),
            "op {op}: leftovers: {:?}",
            disk.files()
        );
        op += 1;
    }
    assert!(op > 20, "the maintenance round did only {op} operations");
    println!("crashed and recovered at each of {op} operations");
}

#[test]
fn deleted_series_ranges_vanish_from_head_and_blocks_and_compaction_drops_them() {
    let fs = SimFs::new(5);
    let clock = Arc::new(ManualClock::new(T0 + 10 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 6 * HOUR);
    assert_eq!(db.maintain().unwrap().blocks_cut, 2);

    let host1 = [Matcher::equal("instance", "host-1")];
    let stats = db.delete_series(&host1, T0 + HOUR, T0 + 5 * HOUR).unwrap();
    assert_eq!(stats.block_series, 2);
    assert_eq!((stats.head_series, stats.head_samples), (1, 61));
    let deleted = |(s, t): &(String, i64)| {
        *s == labels(1).to_string() && (T0 + HOUR..=T0 + 5 * HOUR).contains(t)
    };
    model.retain(|k, _| !deleted(k));
    assert_eq!(read_all(&db), model);
    // Nothing matches: nothing changes.
    let none = db
        .delete_series(&[Matcher::equal("instance", "nope")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(none, strata_engine::DeleteStats::default());

    // Durable: a crash right after keeps the deletion.
    let disk = fs.crash();
    drop(db);
    let db = Db::open("/db", options(&disk, &clock)).unwrap();
    assert_eq!(read_all(&db), model);

    // Compaction rewrites the blocks without the deleted data.
    let report = db.maintain().unwrap();
    assert_eq!(report.compactions, 2);
    assert!(
        !disk.files().iter().any(|f| f.ends_with("tombstones.json")),
        "tombstones are gone with the blocks they belonged to"
    );
    assert_eq!(read_all(&db), model);
    assert_eq!(
        db.stats().block_samples,
        (SERIES as u64 * 240) - 180,
        "the rewritten blocks hold neither the deleted samples nor tombstones"
    );

    // Deleting a whole series from a block leaves the block without it.
    db.delete_series(&host1, i64::MIN, i64::MAX).unwrap();
    model.retain(|(s, _), _| *s != labels(1).to_string());
    db.maintain().unwrap();
    assert_eq!(read_all(&db), model);
    assert!(
        db.querier(i64::MIN, i64::MAX)
            .select(&host1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_full_disk_fails_maintenance_and_writes_with_a_retryable_error_and_nothing_is_lost() {
    let fs = SimFs::new(6);
    let clock = Arc::new(ManualClock::new(T0 + 10 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 6 * HOUR);

    fs.set_disk_full(true);
    let err = db.maintain().unwrap_err();
    assert!(err.is_disk_full() && err.is_retryable(), "{err}");
    let mut app = db.appender();
    app.append(&labels(0), T0 + 6 * HOUR, 1.0).unwrap();
    let err = app.commit().unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(
        !fs.files()
            .iter()
            .any(|f| f.to_string_lossy().contains(".tmp")),
        "a failed block write leaves nothing behind: {:?}",
        fs.files()
    );
    assert_eq!(read_all(&db), model, "nothing accepted was lost");

    fs.set_disk_full(false);
    assert_eq!(db.maintain().unwrap().blocks_cut, 2);
    write(&db, &mut model, T0 + 6 * HOUR, T0 + 7 * HOUR);
    assert_eq!(read_all(&db), model);
    drop(db);
    let db = Db::open("/db", options(&fs.crash(), &clock)).unwrap();
    assert_eq!(read_all(&db), model);
}

#[test]
fn series_whose_data_all_moved_to_blocks_leave_the_head_and_come_back_when_written() {
    let fs = SimFs::new(7);
    let clock = Arc::new(ManualClock::new(T0 + 10 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    // Series 0..6 for 1 h, then only series 0 for 4 h more.
    write(&db, &mut model, T0, T0 + HOUR);
    let mut t = T0 + HOUR;
    while t < T0 + 5 * HOUR {
        let mut app = db.appender();
        app.append(&labels(0), t, value(0, t)).unwrap();
        app.commit().unwrap();
        model.insert((labels(0).to_string(), t), value(0, t).to_bits());
        t += STEP;
    }
    assert_eq!(db.stats().series, SERIES as u64);
    // An appender built before the series leaves the head commits after it left.
    let late = T0 + HOUR + 30 * STEP;
    let mut pending = db.appender();
    pending.append(&labels(3), late, value(3, late)).unwrap();

    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    let stats = db.stats();
    assert_eq!(
        stats.series, 1,
        "only the series still written stays in the head"
    );
    let instances = db
        .querier(i64::MIN, i64::MAX)
        .label_values("instance", &[])
        .unwrap();
    assert_eq!(
        instances.len(),
        SERIES,
        "the others are still found in the block"
    );
    assert_eq!(read_all(&db), model);

    pending.commit().unwrap();
    model.insert((labels(3).to_string(), late), value(3, late).to_bits());
    assert_eq!(db.stats().series, 2);
    assert_eq!(read_all(&db), model);
    drop(db);
    let db = Db::open("/db", options(&fs.crash(), &clock)).unwrap();
    assert!(!db.open_report().wal.has_damage(), "{:?}", db.open_report());
    assert_eq!(read_all(&db), model);
}

/// Random histories of in-order and late writes, maintenance rounds and deletions; after each
/// step, random time ranges and matchers read exactly what the model holds in them.
#[test]
fn random_ranges_over_head_blocks_and_late_data_read_exactly_the_model() {
    let mut done = MaintenanceReport::default();
    let mut offered = 0;
    let mut head_only = 0;
    for seed in 0..40u64 {
        let fs = SimFs::new(seed);
        let clock = Arc::new(ManualClock::new(T0 + 100 * HOUR));
        let mut opts = options(&fs, &clock);
        opts.block_ranges_ms = vec![HOUR, 3 * HOUR, 12 * HOUR];
        opts.block_chunk_samples_max = 50;
        let db = Db::open("/db", opts).unwrap();
        let mut rng = SplitMix64::new(seed);
        let mut model = Model::new();
        let mut newest = [T0; SERIES];
        for step in 0..60 {
            match rng.below(10) {
                0..=5 => {
                    let mut app = db.appender();
                    let mut added = Vec::new();
                    for _ in 0..1 + rng.below(40) {
                        let s = rng.below(SERIES as u64) as usize;
                        let t = if rng.chance(1, 5) {
                            newest[s] - rng.below(2 * HOUR as u64) as i64
                        } else {
                            newest[s] + rng.below(20 * STEP as u64) as i64 + 1
                        };
                        if app.append(&labels(s), t, value(s, t)).is_ok() {
                            newest[s] = newest[s].max(t);
                            added.push((labels(s).to_string(), t, value(s, t).to_bits()));
                        }
                    }
                    app.commit().unwrap();
                    for (l, t, v) in added {
                        model.insert((l, t), v);
                    }
                }
                6..=8 => {
                    db.maintain().unwrap();
                }
                _ => {
                    let s = rng.below(SERIES as u64) as usize;
                    let lo = T0 + rng.below(20 * HOUR as u64) as i64;
                    let hi = lo + rng.below(3 * HOUR as u64) as i64;
                    let m = [Matcher::equal("instance", &format!("host-{s}"))];
                    db.delete_series(&m, lo, hi).unwrap();
                    let name = labels(s).to_string();
                    model.retain(|(l, t), _| !(*l == name && (lo..=hi).contains(t)));
                }
            }
            for _ in 0..4 {
                let (mint, maxt) = if rng.chance(1, 3) {
                    // Near the newest data, where the head alone may answer.
                    let top = newest.iter().copied().max().unwrap_or(T0);
                    let mint = top - rng.below(2 * HOUR as u64) as i64;
                    (mint, mint + rng.below(2 * HOUR as u64) as i64)
                } else {
                    let mint = T0 + rng.below(24 * HOUR as u64) as i64 - HOUR;
                    (mint, mint + rng.below(8 * HOUR as u64) as i64)
                };
                let name = if rng.chance(1, 2) { "up" } else { "load" };
                let q = db.querier(mint, maxt);
                let mut got = Model::new();
                for s in q.select(&[Matcher::equal("__name__", name)]).unwrap() {
                    for x in s.samples() {
                        assert!(
                            got.insert((s.labels().to_string(), x.t), x.v.to_bits())
                                .is_none(),
                            "seed {seed} step {step}: a timestamp repeated"
                        );
                    }
                    // The bulk path reads the same samples, decoded or from the cache of
                    // decoded chunks (the second read of a chunk is a hit).
                    let merged: Vec<(i64, u64)> =
                        s.samples().map(|x| (x.t, x.v.to_bits())).collect();
                    // The newest sample read without decoding, when offered, is the last one.
                    if let Some(newest) = s.newest_without_decoding() {
                        assert_eq!(
                            Some(&(newest.t, newest.v.to_bits())),
                            merged.last(),
                            "seed {seed} step {step}: newest_without_decoding"
                        );
                        offered += 1;
                    }
                    for _ in 0..2 {
                        let mut bulk = Vec::new();
                        s.samples_into(&mut bulk);
                        let bulk: Vec<(i64, u64)> =
                            bulk.iter().map(|x| (x.t, x.v.to_bits())).collect();
                        assert_eq!(bulk, merged, "seed {seed} step {step}: samples_into");
                    }
                }
                let want: Model = model
                    .iter()
                    .filter(|((l, t), _)| {
                        (mint..=maxt).contains(t) && l.starts_with(&format!("{name}{{"))
                    })
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                // The newest-sample selection, when the head alone answers it, gives each
                // series' last sample in range.
                if let Some(found) = q.select_newest(&[Matcher::equal("__name__", name)]) {
                    let mut last: BTreeMap<String, (i64, u64)> = BTreeMap::new();
                    for ((l, t), v) in &want {
                        last.insert(l.clone(), (*t, *v));
                    }
                    let found: BTreeMap<String, (i64, u64)> = found
                        .iter()
                        .map(|(l, x)| (l.to_string(), (x.t, x.v.to_bits())))
                        .collect();
                    assert_eq!(found, last, "seed {seed} step {step}: select_newest");
                    head_only += 1;
                }
                assert_eq!(
                    got, want,
                    "seed {seed} step {step}: [{mint}, {maxt}] {name}"
                );
            }
        }
        let cache = db.decoded_cache_stats();
        assert!(
            cache.hits > 0 && cache.entries > 0,
            "seed {seed}: {cache:?}"
        );
        let m = db.stats().maintenance;
        done.blocks_cut += m.blocks_cut;
        done.compactions += m.compactions;
    }
    assert!(
        offered > 100,
        "the newest sample was read without decoding {offered} times"
    );
    assert!(
        head_only > 100,
        "the head alone answered the newest-sample selection {head_only} times"
    );
    assert!(
        done.blocks_cut > 1000 && done.compactions > 500,
        "the histories should cut and compact many blocks: {done:?}"
    );
}

#[test]
fn a_failure_at_any_operation_of_maintenance_cleans_up_and_loses_nothing() {
    let clock = Arc::new(ManualClock::new(T0 + 30 * HOUR));
    let mut op = 0;
    loop {
        let fs = SimFs::new(op);
        let (db, model) = history(&fs, &clock);
        fs.fail_op(fs.stats().ops + op, strata_engine::fs::sim::Fault::NoSpace);
        let failed = db.maintain().is_err();
        assert_eq!(read_all(&db), model, "op {op}: after the failure");
        let leftovers: Vec<String> = fs
            .list(Path::new("/db/blocks"))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "op {op}: a failed block write left its output: {leftovers:?}"
        );
        // The next round finishes the work.
        db.maintain().unwrap();
        assert_eq!(read_all(&db), model, "op {op}: after the retry");
        let ranges = block_ranges(&db, &fs);
        assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "op {op}: {ranges:?}"
        );
        if !failed {
            break;
        }
        op += 1;
    }
    assert!(op > 20, "only {op} operations");
}

/// `Querier::series` lists the label sets with samples in range, from blocks and head alike,
/// without reading sample data, and leaves out series whose only data in range is deleted.
#[test]
fn series_lists_label_sets_in_range_from_blocks_and_head() {
    let fs = SimFs::new(7);
    let clock = Arc::new(ManualClock::new(T0 + 5 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 5 * HOUR);
    // Series 0 stops early: it has no sample after the first hour.
    db.delete_series(&[Matcher::equal("instance", "host-0")], T0 + HOUR, i64::MAX)
        .unwrap();
    assert!(db.maintain().unwrap().blocks_cut > 0);
    let names = |mint: i64, maxt: i64, m: &[Matcher]| -> Vec<String> {
        db.querier(mint, maxt)
            .series(m)
            .unwrap()
            .iter()
            .map(|l| l.get("instance").unwrap().to_owned())
            .collect()
    };
    let up = [Matcher::equal("__name__", "up")];
    // In a block only (the first hours), and in the head only (the last minutes).
    assert_eq!(
        names(T0, T0 + 10 * STEP, &up),
        ["host-0", "host-2", "host-4"]
    );
    assert_eq!(
        names(T0 + 5 * HOUR - STEP, T0 + 5 * HOUR, &up),
        ["host-2", "host-4"]
    );
    // Out of every range: nothing.
    assert!(names(T0 - 2 * HOUR, T0 - HOUR, &up).is_empty());
    let all = db
        .querier(i64::MIN, i64::MAX)
        .series(&[Matcher::equal("instance", "host-1")])
        .unwrap();
    assert_eq!(all.len(), 1, "one label set, though in block and head");
    // label_values with matchers goes through the same path.
    assert_eq!(
        db.querier(T0 + 4 * HOUR, T0 + 5 * HOUR)
            .label_values("instance", &up)
            .unwrap(),
        ["host-2", "host-4"]
    );
}

/// A snapshot is a data directory of its own: opening it shows exactly what the database
/// held (blocks linked, the head written as a block), and later writes do not reach it.
#[test]
fn a_snapshot_opens_as_the_database_it_copied() {
    let fs = SimFs::new(8);
    let clock = Arc::new(ManualClock::new(T0 + 5 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    let mut model = Model::new();
    write(&db, &mut model, T0, T0 + 5 * HOUR);
    db.maintain().unwrap();
    let blocks_before = db.stats().blocks;
    assert!(blocks_before > 0);
    let stats = db.snapshot(Path::new("/snap"), false).unwrap();
    assert_eq!(stats.blocks, blocks_before);
    assert!(stats.head_samples > 0);
    let head_only = db.snapshot(Path::new("/snap-no-head"), true).unwrap();
    assert_eq!(head_only.head_samples, 0);
    // Written after the snapshot: not in it.
    write(
        &db,
        &mut Model::new(),
        T0 + 5 * HOUR,
        T0 + 5 * HOUR + 3 * STEP,
    );
    let opened = Db::open("/snap", options(&fs, &clock)).unwrap();
    assert_eq!(read_all(&opened), model);
    opened.close().unwrap();
    let without_head = Db::open("/snap-no-head", options(&fs, &clock)).unwrap();
    let read = read_all(&without_head);
    assert!(!read.is_empty() && read.len() < model.len());
    assert!(read.iter().all(|(k, v)| model.get(k) == Some(v)));
    without_head.close().unwrap();
    db.close().unwrap();
}

/// Retention changed while open applies from the next maintenance round.
#[test]
fn retention_set_while_open_expires_old_blocks() {
    let fs = SimFs::new(9);
    let clock = Arc::new(ManualClock::new(T0 + 9 * HOUR));
    let db = Db::open("/db", options(&fs, &clock)).unwrap();
    write(&db, &mut Model::new(), T0, T0 + 9 * HOUR);
    let first = db.maintain().unwrap();
    assert_eq!(first.blocks_expired, 0, "retention is off in these options");
    let blocks = db.stats().blocks;
    assert!(blocks >= 1);
    db.set_limits(2 * HOUR, 0, u64::MAX);
    let second = db.maintain().unwrap();
    assert!(second.blocks_expired > 0);
    let oldest = db
        .querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("instance", "host-1")])
        .unwrap()[0]
        .samples()
        .next()
        .unwrap()
        .t;
    assert!(oldest >= T0 + 6 * HOUR, "oldest sample left: {oldest}");
}
