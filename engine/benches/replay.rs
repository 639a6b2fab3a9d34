//! How fast `Db::open` rebuilds the head: from WAL segments alone, and from a checkpoint.
//!
//! Writes 20 node_exporter-like hosts (about 10,000 series) for 800 scrapes (about 8 million
//! samples; `STRATA_REPLAY_SCRAPES` changes it) in commits of 2,000 samples, with background
//! and closing checkpoints off so that everything stays in WAL segments. Then opens the
//! database a few times and reports samples replayed per second against the target. Then
//! writes a checkpoint, closes, and times opening from the checkpoint the same way.
//!
//! The files are read from the page cache (they were just written): this measures decoding
//! and rebuilding the head, not the disk.
//!
//! Run with `cargo bench -p strata-engine --bench replay`.

use strata_testkit::dataset;
use strata_testkit::host;

use std::path::Path;
use std::time::{Duration, Instant};

use dataset::{Dataset, SCRAPE_INTERVAL_MS, START_MS};
use strata_engine::labels::Labels;
use strata_engine::{Db, FsyncMode, Options, SeriesRef};

const HOSTS: usize = 20;
const SEED: u64 = 0x5742_a7a0;
const SCRAPES_DEFAULT: u64 = 800;
const BATCH_SAMPLES: usize = 2_000;
/// Opens timed per configuration; the median is reported.
const OPENS: usize = 3;
/// Samples per second that replaying WAL segments must reach.
const TARGET_PER_SECOND: f64 = 5_000_000.0;

/// One timed open.
#[derive(Debug, Clone, Copy)]
struct Open {
    wall: Duration,
    cpu_seconds: f64,
    /// Samples in the head after opening, from `Db::stats`.
    samples: u64,
    /// Samples `OpenReport` says were replayed.
    reported_samples: u64,
    series: u64,
    records: u64,
    bytes: u64,
}

fn main() {
    let scrapes = host::env_count("STRATA_REPLAY_SCRAPES", SCRAPES_DEFAULT);
    let dataset = Dataset::new(HOSTS, SEED);
    let dir = tempfile::Builder::new()
        .prefix("strata-replay-")
        .tempdir()
        .expect("creating a temporary directory");
    // Interval syncing only makes writing faster: replay reads the same records either way.
    let options = Options {
        fsync: FsyncMode::Interval(Duration::from_secs(1)),
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    };

    let began = Instant::now();
    let written = write(&dataset, dir.path(), &options, scrapes);
    println!(
        "replay: wrote {} samples of {} series in {:.1} s; WAL {} bytes",
        host::thousands(written),
        host::thousands(dataset.series().len() as u64),
        began.elapsed().as_secs_f64(),
        host::thousands(dir_bytes(&dir.path().join("wal"))),
    );
    let from_wal = time_opens(dir.path(), &options, written);
    let wal = report("from WAL segments", &from_wal);

    {
        let db = Db::open(
            dir.path(),
            Options {
                checkpoint_on_close: true,
                ..options.clone()
            },
        )
        .expect("opening to checkpoint");
        let stats = db.checkpoint().expect("writing a checkpoint");
        db.close().expect("closing");
        println!(
            "checkpoint: {} series, {} chunks, {} bytes",
            host::thousands(stats.series),
            host::thousands(stats.chunks),
            host::thousands(stats.bytes),
        );
    }
    let from_checkpoint = time_opens(dir.path(), &options, written);
    let checkpoint = report("from a checkpoint", &from_checkpoint);

    let verdict = if wal.samples as f64 / wal.wall.as_secs_f64() >= TARGET_PER_SECOND {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "target: WAL replay >= {} samples/s: {} samples/s ({verdict})",
        host::rate(TARGET_PER_SECOND),
        host::rate(wal.samples as f64 / wal.wall.as_secs_f64()),
    );
    println!(
        "open from WAL / open from checkpoint: {:.2}x the time",
        wal.wall.as_secs_f64() / checkpoint.wall.as_secs_f64()
    );
    if checkpoint.reported_samples != checkpoint.samples {
        println!(
            "note: OpenReport::samples says {} after the checkpoint open, the head holds {}",
            host::thousands(checkpoint.reported_samples),
            host::thousands(checkpoint.samples),
        );
    }
}

/// Appends `scrapes` scrapes of every series in commits of [`BATCH_SAMPLES`] and closes the
/// database; returns the samples written.
fn write(dataset: &Dataset, dir: &Path, options: &Options, scrapes: u64) -> u64 {
    // End the timeline an hour before now: well inside the engine's future tolerance.
    let span = Duration::from_millis(scrapes * SCRAPE_INTERVAL_MS as u64);
    let base_ms = host::now_ms_minus(span + Duration::from_secs(3600));
    let labels: Vec<Labels> = dataset
        .series()
        .iter()
        .map(|s| Labels::new(s.labels.iter().map(|(n, v)| (n, v))).expect("valid labels"))
        .collect();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    let db = Db::open(dir, options.clone()).expect("opening the database");
    let mut app = db.appender();
    let mut written = 0;
    let mut scrape = Vec::new();
    for k in 0..scrapes {
        dataset.scrape(k, &mut scrape);
        for &(index, t, v) in &scrape {
            let t = base_ms + (t - START_MS);
            match refs[index] {
                Some(r) => app.append_ref(r, t, v).expect("append by ref"),
                None => refs[index] = Some(app.append(&labels[index], t, v).expect("append")),
            }
            written += 1;
            if app.len() == BATCH_SAMPLES {
                app.commit().expect("commit");
                app = db.appender();
            }
        }
    }
    app.commit().expect("commit");
    db.close().expect("closing");
    written
}

/// Opens the database [`OPENS`] times, timing each open (not the close).
fn time_opens(dir: &Path, options: &Options, written: u64) -> Vec<Open> {
    (0..OPENS)
        .map(|_| {
            let cpu0 = host::process_cpu_seconds();
            let t0 = Instant::now();
            let db = Db::open(dir, options.clone()).expect("reopening the database");
            let wall = t0.elapsed();
            let cpu_seconds = host::process_cpu_seconds() - cpu0;
            let stats = db.stats();
            let report = db.open_report();
            assert_eq!(stats.samples, written, "replay lost samples");
            let open = Open {
                wall,
                cpu_seconds,
                samples: stats.samples,
                reported_samples: report.samples,
                series: report.series,
                records: report.wal.records,
                bytes: report.wal.bytes,
            };
            db.close().expect("closing");
            open
        })
        .collect()
}

/// Prints every open and returns the median one (by wall time).
fn report(what: &str, opens: &[Open]) -> Open {
    for (i, o) in opens.iter().enumerate() {
        println!(
            "open {what} #{}: {:.3} s wall, {:.2} s CPU, {} series, {} samples, {} records, {} bytes: {} samples/s, {:.0} MB/s",
            i + 1,
            o.wall.as_secs_f64(),
            o.cpu_seconds,
            host::thousands(o.series),
            host::thousands(o.samples),
            host::thousands(o.records),
            host::thousands(o.bytes),
            host::rate(o.samples as f64 / o.wall.as_secs_f64()),
            o.bytes as f64 / o.wall.as_secs_f64() / 1e6,
        );
    }
    let mut sorted = opens.to_vec();
    sorted.sort_by_key(|o| o.wall);
    let median = sorted[sorted.len() / 2];
    println!(
        "open {what}, median of {}: {:.3} s, {} samples/s",
        opens.len(),
        median.wall.as_secs_f64(),
        host::rate(median.samples as f64 / median.wall.as_secs_f64()),
    );
    median
}

/// Total size of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("listing a directory")
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
