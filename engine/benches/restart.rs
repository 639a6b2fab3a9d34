//! Restart time to ready, with a million active series and an hour of data not yet in blocks.
//!
//! A writer process opens a database with `Options::default()` (real file system, system
//! clock, `FsyncMode::Always`, background checkpoints and maintenance on) and appends one hour
//! of 15 s scrapes of the node_exporter-like fleet of `strata_testkit::dataset` (about 517 series
//! per host, so 1,935 hosts for 1,000,000 series: 240 million samples), shifted so that the
//! hour ends now: no block is due yet and nothing is too far in the future. Once every commit
//! is acknowledged it prints `READY <samples>` and waits. Then:
//!
//! 1. **after `kill -9`**: the bench SIGKILLs the writer (`Child::kill`) and times
//!    `Db::open(dir, Options::default())` in a fresh process: the newest checkpoint the writer's
//!    background thread wrote, plus every WAL segment after it (or more, if the kill landed
//!    during a checkpoint). That process verifies the data and closes the database cleanly,
//!    which writes a checkpoint of the whole head (timed too: that is the clean shutdown).
//! 2. **after a clean shutdown**: a second fresh process times `Db::open` again, now from that
//!    checkpoint alone, and verifies again.
//!
//! Each open runs in a process of its own, as a real restart does, so that its resident memory
//! and its page faults are its own. Verification, after the timing: `Db::stats` must hold
//! every series and every acknowledged sample, the open report must show no damage and no
//! orphaned sample, and a few hundred series spread over the fleet are read back through
//! `Querier::select` and compared with what the generator wrote, values bit for bit.
//!
//! The files are read from the page cache (they were just written, and the machine has room
//! for them): this measures what a restart of the process costs, not a cold disk.
//!
//! Run with `cargo bench -p strata-engine --bench restart`. Environment:
//!
//! - `STRATA_RESTART_SERIES`: active series (default 1,000,000; rounded up to whole hosts);
//! - `STRATA_RESTART_MINUTES`: minutes of data (default 60; 4 scrapes a minute);
//! - `STRATA_RESTART_THREADS`: writer threads, each with its own appender (default 2);
//! - `STRATA_RESTART_DIR`: where the temporary database directory is made (default the
//!   system's temporary directory); `STRATA_RESTART_KEEP=1` keeps it afterwards, with a
//!   copy of the database as the killed writer left it (`db-killed`), to open again by hand
//!   (`STRATA_RESTART_ROLE=open` and the variables the last line names) under a profiler.
//!
//! `STRATA_RESTART_ROLE` (`writer` or `open`) is how the bench runs its own children.

use strata_testkit::dataset;
use strata_testkit::host;
use strata_testkit::time::now_ms;

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dataset::{Dataset, SCRAPE_INTERVAL_MS, START_MS};
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::Matcher;
use strata_engine::{Db, Options, SeriesRef};

const SEED: u64 = 0x2e57_a127;
const SERIES_DEFAULT: u64 = 1_000_000;
const MINUTES_DEFAULT: u64 = 60;
const THREADS_DEFAULT: u64 = 2;
/// Samples per commit.
const BATCH_SAMPLES: usize = 20_000;
/// Series read back and compared sample by sample after each open.
const SPOT_CHECKS: usize = 300;
/// Time to ready after a clean shutdown that the engine must meet.
const TARGET_CLEAN: Duration = Duration::from_secs(5);
/// Time to ready after `kill -9` that the engine must meet.
const TARGET_KILLED: Duration = Duration::from_secs(30);
/// A writer that is never killed (its parent died) exits by itself after this long.
const WRITER_LIFETIME: Duration = Duration::from_secs(600);
/// How often the writer reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

const ROLE_VAR: &str = "STRATA_RESTART_ROLE";
const DATA_VAR: &str = "STRATA_RESTART_DATA";
const OFFSET_VAR: &str = "STRATA_RESTART_OFFSET_MS";
const EXPECT_VAR: &str = "STRATA_RESTART_EXPECT_SAMPLES";
const LABEL_VAR: &str = "STRATA_RESTART_LABEL";

/// The sizes every role agrees on, from the environment.
#[derive(Debug, Clone, Copy)]
struct Config {
    hosts: usize,
    scrapes: u64,
    threads: usize,
}

impl Config {
    fn from_env() -> Config {
        let series = host::env_count("STRATA_RESTART_SERIES", SERIES_DEFAULT);
        let minutes = host::env_count("STRATA_RESTART_MINUTES", MINUTES_DEFAULT);
        let threads = host::env_count("STRATA_RESTART_THREADS", THREADS_DEFAULT) as usize;
        // Every host exposes the same number of series.
        let per_host = Dataset::new(1, SEED).series().len() as u64;
        Config {
            hosts: series.div_ceil(per_host) as usize,
            scrapes: minutes * 60_000 / SCRAPE_INTERVAL_MS as u64,
            threads,
        }
    }

    fn dataset(&self) -> Dataset {
        Dataset::new(self.hosts, SEED)
    }
}

fn main() {
    match std::env::var(ROLE_VAR).as_deref() {
        Ok("writer") => writer(),
        Ok("open") => open(),
        Ok(other) => panic!("{ROLE_VAR}={other:?}: expected `writer` or `open`"),
        Err(_) => orchestrate(),
    }
}

fn env_path(name: &str) -> PathBuf {
    std::env::var_os(name)
        .unwrap_or_else(|| panic!("{name} is set by the parent"))
        .into()
}

fn env_i64(name: &str) -> i64 {
    let s = std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"));
    s.parse()
        .unwrap_or_else(|_| panic!("{name}={s:?}: expected an integer"))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// What the WAL directory holds: the checkpoint, segments and any other file, with sizes.
fn describe_wal(data: &Path) -> String {
    // The engine names it `wal` (`WAL_DIR`, not re-exported).
    let wal = data.join("wal");
    let mut checkpoint = Vec::new();
    let (mut segments, mut segment_bytes) = (0u64, 0u64);
    let mut others = Vec::new();
    for entry in std::fs::read_dir(&wal).expect("listing the WAL directory") {
        let entry = entry.expect("reading the WAL directory");
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = entry.metadata().map_or(0, |m| m.len());
        if name.starts_with("checkpoint.") && !name.ends_with(".tmp") {
            checkpoint.push(format!("{name} ({})", mib(bytes)));
        } else if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            segments += 1;
            segment_bytes += bytes;
        } else {
            others.push(format!("{name} ({})", mib(bytes)));
        }
    }
    checkpoint.sort();
    others.sort();
    let checkpoint = if checkpoint.is_empty() {
        "no checkpoint".to_string()
    } else {
        checkpoint.join(", ")
    };
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(", also {}", others.join(", "))
    };
    format!(
        "{checkpoint}, {segments} segments ({}){others}",
        mib(segment_bytes)
    )
}

/// Runs the writer, kills it, and runs the two opens, each in a child process.
fn orchestrate() {
    let config = Config::from_env();
    let began = Instant::now();
    let parent =
        std::env::var_os("STRATA_RESTART_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("strata-restart-")
        .tempdir_in(&parent)
        .expect("creating a temporary directory");
    let data = tmp.path().join("db");
    // The hour ends now: the last scrape of a host is due at most its phase (under 15 s) plus
    // 5 ms of jitter after the grid's end.
    let offset_ms = now_ms() - (START_MS + config.scrapes as i64 * SCRAPE_INTERVAL_MS);
    println!(
        "restart: {} hosts of the node_exporter-like fleet, {} scrapes of 15 s, {} writer threads; data in {}",
        host::thousands(config.hosts as u64),
        config.scrapes,
        config.threads,
        data.display(),
    );

    let exe = std::env::current_exe().expect("the bench's own path");
    let mut writer = Command::new(&exe)
        .env(ROLE_VAR, "writer")
        .env(DATA_VAR, &data)
        .env(OFFSET_VAR, offset_ms.to_string())
        // The writer exits when this pipe closes: it never outlives the bench.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the writer");
    let mut lines = child_lines(&mut writer);
    let samples: u64 = loop {
        let Some(line) = lines.next() else {
            let status = writer.wait().expect("waiting for the writer");
            panic!("the writer ended before it was ready: {status}");
        };
        let line = line.expect("reading the writer's output");
        match line.strip_prefix("READY ") {
            Some(n) => break n.parse().expect("READY <samples>"),
            None => println!("{line}"),
        }
    };
    writer.kill().expect("killing the writer");
    let status = writer.wait().expect("waiting for the killed writer");
    println!(
        "killed the writer ({status}) with {} samples acknowledged; on disk: {}",
        host::thousands(samples),
        describe_wal(&data),
    );

    let keep = std::env::var_os("STRATA_RESTART_KEEP").is_some();
    if keep {
        // For profiling an open after kill -9 by hand: the first open repairs and checkpoints.
        copy_dir(&data, &tmp.path().join("db-killed"));
    }

    let opener = |label: &str| -> Duration {
        let mut child = Command::new(&exe)
            .env(ROLE_VAR, "open")
            .env(DATA_VAR, &data)
            .env(OFFSET_VAR, offset_ms.to_string())
            .env(EXPECT_VAR, samples.to_string())
            .env(LABEL_VAR, label)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting an opener");
        let mut ready = None;
        for line in child_lines(&mut child) {
            let line = line.expect("reading the opener's output");
            match line.strip_prefix("RESULT ") {
                Some(s) => ready = Some(Duration::from_secs_f64(s.parse().expect("RESULT <s>"))),
                None => println!("{line}"),
            }
        }
        let status = child.wait().expect("waiting for an opener");
        assert!(status.success(), "the open {label} failed: {status}");
        ready.expect("the opener reports its time")
    };
    let killed = opener("after kill -9");
    println!("on disk after the clean shutdown: {}", describe_wal(&data));
    let clean = opener("after a clean shutdown");

    let verdict = |took: Duration, target: Duration| {
        if took <= target { "met" } else { "MISSED" }
    };
    println!(
        "target: ready after kill -9 <= {} s: {:.2} s ({})",
        TARGET_KILLED.as_secs(),
        killed.as_secs_f64(),
        verdict(killed, TARGET_KILLED),
    );
    println!(
        "target: ready after a clean shutdown <= {} s: {:.2} s ({})",
        TARGET_CLEAN.as_secs(),
        clean.as_secs_f64(),
        verdict(clean, TARGET_CLEAN),
    );
    if keep {
        // An opener can be run again by hand on `db`, or on a copy of `db-killed`, with these
        // variables.
        println!(
            "kept {}: db, and db-killed as the writer left it ({DATA_VAR}={} {OFFSET_VAR}={offset_ms} {EXPECT_VAR}={samples})",
            tmp.keep().display(),
            data.display(),
        );
    }
    println!("restart: done in {:.1} s", began.elapsed().as_secs_f64());
}

/// Copies the directory tree `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating a directory");
    for entry in std::fs::read_dir(from).expect("listing a directory") {
        let entry = entry.expect("reading a directory");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying a file");
        }
    }
}

fn child_lines(child: &mut Child) -> Lines<BufReader<ChildStdout>> {
    BufReader::new(child.stdout.take().expect("piped stdout")).lines()
}

/// The hosts of each writer thread, contiguous, with about as many series each.
fn partition(dataset: &Dataset, threads: usize) -> Vec<std::ops::Range<usize>> {
    let hosts = dataset.hosts();
    let threads = threads.clamp(1, hosts);
    (0..threads)
        .map(|i| hosts * i / threads..hosts * (i + 1) / threads)
        .collect()
}

/// The writer: appends the whole hour, prints `READY <samples>`, and waits to be killed.
fn writer() {
    let config = Config::from_env();
    let data = env_path(DATA_VAR);
    let offset_ms = env_i64(OFFSET_VAR);
    let t0 = Instant::now();
    let dataset = config.dataset();
    let series = dataset.series();
    // Series of one host are contiguous: where each host's start.
    let mut host_start = vec![0usize; dataset.hosts() + 1];
    for (i, s) in series.iter().enumerate() {
        host_start[s.host + 1] = i + 1;
    }
    println!(
        "writer: generated {} series in {:.1} s; appending {} samples",
        host::thousands(series.len() as u64),
        t0.elapsed().as_secs_f64(),
        host::thousands(series.len() as u64 * config.scrapes),
    );

    let opened = Instant::now();
    let db = Db::open(&data, Options::default()).expect("opening the database");
    let written = AtomicU64::new(0);
    let began = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = partition(&dataset, config.threads)
            .into_iter()
            .map(|hosts| {
                let (db, dataset, host_start, written) = (&db, &dataset, &host_start, &written);
                s.spawn(move || {
                    let first = host_start[hosts.start];
                    let mut refs: Vec<SeriesRef> = Vec::new();
                    let mut app = db.appender();
                    for k in 0..config.scrapes {
                        for h in hosts.clone() {
                            let t = dataset.timestamp(h, k) + offset_ms;
                            for i in host_start[h]..host_start[h + 1] {
                                let v = dataset.value(i, k);
                                if k == 0 {
                                    let labels = &dataset.series()[i].labels;
                                    let labels = Labels::new(labels.iter().map(|(n, v)| (n, v)))
                                        .expect("valid labels");
                                    refs.push(app.append(&labels, t, v).expect("append"));
                                } else {
                                    app.append_ref(refs[i - first], t, v)
                                        .expect("append by ref");
                                }
                            }
                            if app.len() >= BATCH_SAMPLES {
                                let stats = app.commit().expect("commit");
                                written.fetch_add(stats.samples, Ordering::Relaxed);
                                app = db.appender();
                            }
                        }
                    }
                    let stats = app.commit().expect("commit");
                    written.fetch_add(stats.samples, Ordering::Relaxed);
                })
            })
            .collect();
        let total = series.len() as u64 * config.scrapes;
        let mut last = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                let n = written.load(Ordering::Relaxed);
                println!(
                    "writer: {:.0}% after {:.0} s, {} samples/s, RSS {}",
                    n as f64 * 100.0 / total as f64,
                    began.elapsed().as_secs_f64(),
                    host::rate(n as f64 / began.elapsed().as_secs_f64()),
                    mib(host::resident_bytes()),
                );
            }
        }
        for w in workers {
            w.join().expect("a writer thread panicked");
        }
    });
    let took = began.elapsed();
    let samples = written.load(Ordering::Relaxed);
    let stats = db.stats();
    assert_eq!(
        stats.samples, samples,
        "the head holds every acknowledged sample"
    );
    println!(
        "writer: {} series, {} samples in {:.1} s after a {:.2} s open ({} samples/s); {} checkpoints, {} blocks, WAL {} written; RSS {}, peak {}",
        host::thousands(stats.series),
        host::thousands(samples),
        took.as_secs_f64(),
        (began - opened).as_secs_f64(),
        host::rate(samples as f64 / took.as_secs_f64()),
        stats.checkpoints,
        stats.blocks,
        mib(stats.wal.bytes_written),
        mib(host::resident_bytes()),
        mib(host::peak_resident_bytes()),
    );
    println!("READY {samples}");
    std::io::stdout().flush().expect("flushing stdout");

    // Wait to be killed, holding the database open (its maintenance thread keeps running).
    // Should the bench die first, its end of stdin closes: exit then, or after a while.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(2);
    });
    std::thread::sleep(WRITER_LIFETIME);
    std::process::exit(3);
}

/// An opener: times `Db::open`, reports, verifies, closes cleanly (timed), and prints
/// `RESULT <seconds to ready>`.
fn open() {
    let config = Config::from_env();
    let data = env_path(DATA_VAR);
    let offset_ms = env_i64(OFFSET_VAR);
    let expected: u64 = env_i64(EXPECT_VAR) as u64;
    let label = std::env::var(LABEL_VAR).expect("the scenario's name");

    let rss_before = host::resident_bytes();
    let cpu0 = host::process_cpu_seconds();
    let t0 = Instant::now();
    let db = Db::open(&data, Options::default()).expect("opening the database");
    let ready = t0.elapsed();
    let cpu = host::process_cpu_seconds() - cpu0;
    let rss = host::resident_bytes();

    let report = db.open_report().clone();
    let wal = &report.wal;
    println!(
        "open {label}: ready in {:.2} s ({:.2} s CPU), RSS {} ({} before opening)",
        ready.as_secs_f64(),
        cpu,
        mib(rss),
        mib(rss_before),
    );
    println!(
        "  wal: checkpoint {}, {} segments, {} records ({} from segments), {} read ({:.0} MB/s); {} torn tails, {} quarantined, {} missing segments, {} leftovers cleaned up",
        wal.checkpoint
            .map_or_else(|| "none".to_string(), |c| format!("{:08}", c.0)),
        wal.segments,
        host::thousands(wal.records),
        host::thousands(wal.segment_records),
        mib(wal.bytes),
        wal.bytes as f64 / ready.as_secs_f64() / 1e6,
        wal.torn_tails.len(),
        wal.quarantined.len(),
        wal.missing_segments.len(),
        wal.cleaned_up.len(),
    );
    println!(
        "  head: {} series ({} series/s), {} samples replayed ({} samples/s), {} orphaned; {} blocks loaded",
        host::thousands(report.series),
        host::rate(report.series as f64 / ready.as_secs_f64()),
        host::thousands(report.samples),
        host::rate(report.samples as f64 / ready.as_secs_f64()),
        host::thousands(report.orphaned_samples),
        report.blocks.loaded,
    );

    let checked = Instant::now();
    let dataset = config.dataset();
    let stats = db.stats();
    assert_eq!(
        stats.series,
        dataset.series().len() as u64,
        "every series is back"
    );
    assert_eq!(stats.samples, expected, "every acknowledged sample is back");
    assert_eq!(
        report.samples, expected,
        "the open report counts every sample"
    );
    assert_eq!(report.orphaned_samples, 0, "no sample lost its series");
    assert!(!wal.has_damage(), "no damage: {wal:?}");
    assert_eq!(stats.blocks, 0, "the hour is still all in the head");
    let spot = spot_check(&db, &dataset, offset_ms, config.scrapes);
    println!(
        "  verified: {} series, {} samples, {} chunks ({} of chunk data); {} series spot-checked, {} samples bit-exact ({:.1} s)",
        host::thousands(stats.series),
        host::thousands(stats.samples),
        host::thousands(stats.chunks),
        mib(stats.chunk_bytes),
        SPOT_CHECKS,
        host::thousands(spot),
        checked.elapsed().as_secs_f64(),
    );
    drop(dataset);

    let closing = Instant::now();
    db.close().expect("closing the database");
    println!(
        "  clean shutdown (Db::close, writes a checkpoint): {:.2} s; peak RSS of this process {}",
        closing.elapsed().as_secs_f64(),
        mib(host::peak_resident_bytes()),
    );
    println!("RESULT {}", ready.as_secs_f64());
}

/// Reads [`SPOT_CHECKS`] series spread over the fleet back through a querier and compares
/// them with the generator's samples. Returns the samples compared.
fn spot_check(db: &Db, dataset: &Dataset, offset_ms: i64, scrapes: u64) -> u64 {
    let series = dataset.series();
    let mint = START_MS + offset_ms;
    let maxt = mint + (scrapes as i64 + 1) * SCRAPE_INTERVAL_MS;
    let querier = db.querier(mint, maxt);
    let mut compared = 0;
    for j in 0..SPOT_CHECKS {
        // Evenly spread, nudged so that the same position in every host is not always taken.
        let index = (series.len() * j / SPOT_CHECKS + j * 7) % series.len();
        let generated = &series[index];
        let labels =
            Labels::new(generated.labels.iter().map(|(n, v)| (n, v))).expect("valid labels");
        let instance = labels.get("instance").expect("an instance label");
        let found = querier
            .select(&[
                Matcher::equal("__name__", generated.name()),
                Matcher::equal("instance", instance),
            ])
            .expect("selecting");
        let selected = found
            .iter()
            .find(|s| *s.labels() == labels)
            .unwrap_or_else(|| panic!("series {labels:?} is missing"));
        let got: Vec<(i64, u64)> = selected.samples().map(|s| (s.t, s.v.to_bits())).collect();
        let want: Vec<(i64, u64)> = dataset
            .samples(index, 0..scrapes)
            .into_iter()
            .map(|(t, v)| (t + offset_ms, v.to_bits()))
            .collect();
        assert_eq!(got, want, "the samples of {labels:?}");
        compared += got.len() as u64;
    }
    compared
}
