//! The embedding API's promises, case by case: what `append` accepts and rejects, what a query
//! returns, what survives a reopen, and the limits.

use std::sync::Arc;

use strata_engine::clock::ManualClock;
use strata_engine::fs::sim::SimFs;
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::{MatchKind, Matcher};
use strata_engine::sample::STALE_NAN_BITS;
use strata_engine::{AppendError, Db, OpenError, Options, Sample};

const NOW: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn options(fs: &SimFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()),
        clock: Arc::new(ManualClock::new(NOW)),
        background_maintenance: false,
        ..Options::default()
    }
}

fn open(fs: &SimFs) -> Db {
    Db::open("/db", options(fs)).unwrap()
}

fn series(name: &str, instance: &str) -> Labels {
    Labels::new([("__name__", name), ("instance", instance), ("job", "node")]).unwrap()
}

fn read(db: &Db, matchers: &[Matcher]) -> Vec<(String, Vec<(i64, u64)>)> {
    db.querier(i64::MIN, i64::MAX)
        .select(matchers)
        .unwrap()
        .iter()
        .map(|s| {
            (
                s.labels().to_string(),
                s.samples().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

/// An append outcome, without the details of the error.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    OutOfOrder,
    DuplicateTimestamp,
    TooFarInFuture,
}

/// Appends `samples` to one series, one commit each, with an out-of-order window of 10
/// minutes; checks each outcome and the series' final content.
fn check(samples: &[(i64, f64, Outcome)], expected: &[(i64, f64)]) {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let l = series("up", "a");
    for (t, v, want) in samples {
        let mut app = db.appender();
        let got = match app.append(&l, *t, *v) {
            Ok(_) => Outcome::Ok,
            Err(AppendError::OutOfOrder { .. }) => Outcome::OutOfOrder,
            Err(AppendError::DuplicateTimestamp { .. }) => Outcome::DuplicateTimestamp,
            Err(AppendError::TooFarInFuture { .. }) => Outcome::TooFarInFuture,
            Err(e) => panic!("unexpected error {e}"),
        };
        assert_eq!(&got, want, "append ({t}, {v})");
        app.commit().unwrap();
    }
    let want: Vec<(i64, u64)> = expected.iter().map(|(t, v)| (*t, v.to_bits())).collect();
    let got = read(&db, &[Matcher::equal("__name__", "up")]);
    let got = got.first().map(|(_, s)| s.clone()).unwrap_or_default();
    assert_eq!(got, want);
}

#[test]
fn append_accepts_in_order_out_of_order_within_the_window_and_idempotent_duplicates() {
    use Outcome::*;
    let t = NOW - 60 * MIN;
    // In order.
    check(
        &[(t, 1.0, Ok), (t + 15_000, 2.0, Ok)],
        &[(t, 1.0), (t + 15_000, 2.0)],
    );
    // Out of order within 10 minutes: accepted and merged in time order.
    check(
        &[(t, 1.0, Ok), (t + 5 * MIN, 3.0, Ok), (t + MIN, 2.0, Ok)],
        &[(t, 1.0), (t + MIN, 2.0), (t + 5 * MIN, 3.0)],
    );
    // Older than the window: rejected.
    check(
        &[(t + 20 * MIN, 1.0, Ok), (t + 5 * MIN, 2.0, OutOfOrder)],
        &[(t + 20 * MIN, 1.0)],
    );
    // The same sample again (a retry) is accepted and changes nothing, in or out of order.
    check(
        &[
            (t, 1.0, Ok),
            (t + MIN, 2.0, Ok),
            (t + MIN, 2.0, Ok),
            (t, 1.0, Ok),
        ],
        &[(t, 1.0), (t + MIN, 2.0)],
    );
    // Another value at a stored timestamp is rejected: samples are immutable.
    check(
        &[
            (t, 1.0, Ok),
            (t + MIN, 2.0, Ok),
            (t, 5.0, DuplicateTimestamp),
            (t + MIN, 5.0, DuplicateTimestamp),
        ],
        &[(t, 1.0), (t + MIN, 2.0)],
    );
    // Too far ahead of the clock (10 minutes of tolerance).
    check(
        &[
            (NOW + 9 * MIN, 1.0, Ok),
            (NOW + 11 * MIN, 2.0, TooFarInFuture),
        ],
        &[(NOW + 9 * MIN, 1.0)],
    );
    // Any bit pattern is stored exactly: the stale marker, other NaNs, -0.0, infinities.
    let stale = f64::from_bits(STALE_NAN_BITS);
    let nan = f64::from_bits(0x7ff8_0000_0000_1234);
    check(
        &[
            (t, stale, Ok),
            (t + 1, nan, Ok),
            (t + 2, -0.0, Ok),
            (t + 3, f64::INFINITY, Ok),
            (t + 4, f64::NEG_INFINITY, Ok),
        ],
        &[
            (t, stale),
            (t + 1, nan),
            (t + 2, -0.0),
            (t + 3, f64::INFINITY),
            (t + 4, f64::NEG_INFINITY),
        ],
    );
}

#[test]
fn duplicates_within_one_batch_follow_the_same_rules() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let l = series("up", "a");
    let mut app = db.appender();
    app.append(&l, NOW, 1.0).unwrap();
    app.append(&l, NOW, 1.0).unwrap();
    assert!(matches!(
        app.append(&l, NOW, 2.0),
        Err(AppendError::DuplicateTimestamp { .. })
    ));
    let stats = app.commit().unwrap();
    assert_eq!((stats.samples, stats.duplicates), (1, 1));
}

#[test]
fn a_dropped_appender_writes_nothing() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let mut app = db.appender();
    app.append(&series("up", "a"), NOW, 1.0).unwrap();
    drop(app);
    assert!(read(&db, &[Matcher::equal("__name__", "up")]).is_empty());
}

#[test]
fn select_applies_matchers_and_the_time_range() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let mut app = db.appender();
    for (name, inst) in [("up", "a"), ("up", "b"), ("load", "a")] {
        for k in 0..4 {
            app.append(&series(name, inst), NOW - k * MIN, k as f64)
                .unwrap();
        }
    }
    app.commit().unwrap();
    let names =
        |ms: &[Matcher]| -> Vec<String> { read(&db, ms).into_iter().map(|(l, _)| l).collect() };
    assert_eq!(
        names(&[Matcher::equal("__name__", "up")]),
        vec![
            r#"up{instance="a", job="node"}"#,
            r#"up{instance="b", job="node"}"#
        ]
    );
    assert_eq!(
        names(&[Matcher::new(MatchKind::Regex, "instance", "a").unwrap()]),
        vec![
            r#"load{instance="a", job="node"}"#,
            r#"up{instance="a", job="node"}"#
        ]
    );
    assert!(names(&[Matcher::equal("job", "other")]).is_empty());
    // Both ends of the range are inclusive.
    let q = db.querier(NOW - 2 * MIN, NOW - MIN);
    let s = q.select(&[Matcher::equal("instance", "b")]).unwrap();
    let ts: Vec<i64> = s[0].samples().map(|x| x.t).collect();
    assert_eq!(ts, vec![NOW - 2 * MIN, NOW - MIN]);
    // A series with no samples in range is not returned.
    let q = db.querier(NOW + MIN, NOW + 2 * MIN);
    assert!(
        q.select(&[Matcher::equal("job", "node")])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn label_names_and_values() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let mut app = db.appender();
    app.append(&series("up", "a"), NOW, 1.0).unwrap();
    app.append(
        &Labels::new([("__name__", "load"), ("cpu", "0")]).unwrap(),
        NOW,
        1.0,
    )
    .unwrap();
    app.commit().unwrap();
    let q = db.querier(i64::MIN, i64::MAX);
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "cpu", "instance", "job"]
    );
    assert_eq!(
        q.label_names(&[Matcher::equal("__name__", "up")]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["load", "up"]);
    assert_eq!(
        q.label_values("__name__", &[Matcher::equal("cpu", "0")])
            .unwrap(),
        vec!["load"]
    );
    assert!(q.label_values("nope", &[]).unwrap().is_empty());
}

#[test]
fn everything_comes_back_after_reopen_with_and_without_a_checkpoint() {
    for checkpoint in [false, true] {
        let fs = SimFs::new(0);
        let db = open(&fs);
        let mut app = db.appender();
        for k in 0..1000 {
            app.append(
                &series("up", &format!("i{}", k % 7)),
                NOW - 1000 * 15_000 + k * 15_000,
                k as f64,
            )
            .unwrap();
        }
        // An out-of-order sample too, so the out-of-order path is checkpointed.
        app.append(
            &series("up", "i0"),
            NOW - 1000 * 15_000 + 15_000 * 994 + 1,
            -1.0,
        )
        .unwrap();
        app.commit().unwrap();
        if checkpoint {
            db.checkpoint().unwrap();
        }
        let before = read(&db, &[Matcher::equal("job", "node")]);
        let stats_before = db.stats();
        drop(db); // closes: a checkpoint unless disabled
        let db = open(&fs);
        assert_eq!(
            read(&db, &[Matcher::equal("job", "node")]),
            before,
            "checkpoint {checkpoint}"
        );
        assert_eq!(db.stats().samples, stats_before.samples);
        // Samples loaded from checkpointed chunks count as replayed.
        assert_eq!(db.open_report().samples, stats_before.samples);
        assert_eq!(db.open_report().series, 7);
        // The clean close wrote a checkpoint: nothing is left to replay from segments.
        assert_eq!(
            db.open_report().wal.segment_records,
            0,
            "{:?}",
            db.open_report()
        );
    }
}

#[test]
fn a_directory_is_opened_once() {
    let fs = SimFs::new(0);
    let _db = open(&fs);
    match Db::open("/db", options(&fs)) {
        Err(OpenError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn invalid_options_are_refused() {
    let fs = SimFs::new(0);
    for bad in [
        Options {
            out_of_order_window_ms: -1,
            ..options(&fs)
        },
        Options {
            chunk_samples_max: 1,
            ..options(&fs)
        },
        Options {
            wal_segment_bytes_max: 10,
            ..options(&fs)
        },
    ] {
        assert!(matches!(
            Db::open("/db", bad),
            Err(OpenError::InvalidOptions(_))
        ));
    }
}

#[test]
fn the_series_limit_rejects_new_series_only() {
    let fs = SimFs::new(0);
    let db = Db::open(
        "/db",
        Options {
            head_series_max: 2,
            ..options(&fs)
        },
    )
    .unwrap();
    let mut app = db.appender();
    app.append(&series("up", "a"), NOW, 1.0).unwrap();
    app.append(&series("up", "b"), NOW, 1.0).unwrap();
    assert!(matches!(
        app.append(&series("up", "c"), NOW, 1.0),
        Err(AppendError::LimitExceeded { .. })
    ));
    app.append(&series("up", "a"), NOW + 1, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(db.stats().series, 2);
    // Raised while open: the new series fits; lowered again: existing series keep working.
    db.set_limits(0, 0, 3);
    let mut app = db.appender();
    app.append(&series("up", "c"), NOW, 1.0).unwrap();
    app.commit().unwrap();
    db.set_limits(0, 0, 1);
    let mut app = db.appender();
    app.append(&series("up", "b"), NOW + 1, 2.0).unwrap();
    assert!(matches!(
        app.append(&series("up", "d"), NOW, 1.0),
        Err(AppendError::LimitExceeded { max: 1, .. })
    ));
    app.commit().unwrap();
    assert_eq!(db.stats().series, 3);
}

#[test]
fn stats_and_cardinality() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let mut app = db.appender();
    for inst in ["a", "b", "c"] {
        app.append(&series("up", inst), NOW, 1.0).unwrap();
    }
    app.append(&series("load", "a"), NOW, 1.0).unwrap();
    app.commit().unwrap();
    let stats = db.stats();
    assert_eq!((stats.series, stats.samples), (4, 4));
    let c = db.cardinality(10);
    assert_eq!(c.series, 4);
    assert_eq!(c.series_count_by_metric_name[0], ("up".to_string(), 3));
    assert_eq!(c.label_value_count_by_name[0], ("instance".to_string(), 3));
}

#[test]
fn sample_equality_is_bitwise() {
    assert_eq!(Sample::new(1, f64::NAN), Sample::new(1, f64::NAN));
    assert_ne!(Sample::new(1, 0.0), Sample::new(1, -0.0));
}

/// `append_pairs` finds the series `append` made, from sorted or unsorted pairs, and makes
/// the same series `Labels::new` would (empty values dropped, duplicates refused).
#[test]
fn append_pairs_is_append_with_labels_built_from_the_pairs() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let up = series("up", "a");
    let mut app = db.appender();
    let r = app.append(&up, NOW, 1.0).unwrap();
    let sorted = [("__name__", "up"), ("instance", "a"), ("job", "node")];
    assert_eq!(
        strata_engine::labels::stable_hash_pairs(&sorted),
        up.stable_hash()
    );
    assert_eq!(app.append_pairs(&sorted, NOW + 1, 2.0).unwrap(), r);
    let unsorted = [
        ("job", "node"),
        ("__name__", "up"),
        ("x", ""),
        ("instance", "a"),
    ];
    assert_eq!(app.append_pairs(&unsorted, NOW + 2, 3.0).unwrap(), r);
    let new = app
        .append_pairs(&[("__name__", "up"), ("instance", "b")], NOW, 4.0)
        .unwrap();
    assert_ne!(new, r);
    assert!(matches!(
        app.append_pairs(&[("a", "1"), ("a", "2")], NOW, 1.0),
        Err(AppendError::InvalidLabels(_))
    ));
    app.commit().unwrap();
    let got = read(&db, &[Matcher::equal("__name__", "up")]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.len(), 3, "{got:?}");
}

/// `resolve` finds the series that exist, from canonical label sets only, and adds them to
/// the batch; a batch that names one series in two runs with another series between applies
/// them in order (the grouped apply stops at a series it already holds, so the later run
/// waits for the earlier), so no sample of it is taken for an out-of-order one.
#[test]
fn resolve_finds_existing_series_and_each_series_applies_in_order() {
    let fs = SimFs::new(0);
    let db = open(&fs);
    let a_pairs = [("__name__", "up"), ("instance", "a")];
    let mut app = db.appender();
    let a = app.append_pairs(&a_pairs, NOW, 1.0).unwrap();
    let b = app
        .append_pairs(&[("__name__", "up"), ("instance", "b")], NOW, 1.0)
        .unwrap();
    app.commit().unwrap();

    let mut app = db.appender();
    let sets: [&[(&str, &str)]; 4] = [
        &a_pairs,
        &[("instance", "b"), ("__name__", "up")],
        &[("__name__", "up"), ("instance", "c")],
        &[],
    ];
    assert_eq!(app.resolve(&sets).unwrap(), vec![Some(a), None, None, None]);
    app.append_ref(a, NOW + 1, 2.0).unwrap();
    app.append_ref(b, NOW + 1, 2.0).unwrap();
    app.append_ref(a, NOW + 2, 3.0).unwrap();
    app.commit().unwrap();

    let got = read(&db, &[Matcher::equal("__name__", "up")]);
    let bits = |v: f64| v.to_bits();
    assert_eq!(
        got,
        vec![
            (
                "up{instance=\"a\"}".to_string(),
                vec![(NOW, bits(1.0)), (NOW + 1, bits(2.0)), (NOW + 2, bits(3.0))]
            ),
            (
                "up{instance=\"b\"}".to_string(),
                vec![(NOW, bits(1.0)), (NOW + 1, bits(2.0))]
            ),
        ]
    );
    let stats = db.stats();
    assert_eq!(stats.samples_in_order, 5);
    assert_eq!(stats.samples_out_of_order, 0);
}
