//! Append throughput through the public API, in the shape of remote-write traffic.
//!
//! 20 node_exporter-like hosts (about 10,000 series) are split between appender threads, each
//! owning every `threads`-th series; each thread walks its series scrape by scrape (15 s
//! apart) and commits every 2,000 samples, passing the full label set with every sample as a
//! remote-write receiver does. The database is the default one: `FsyncMode::Always` on a
//! temporary directory (put `TMPDIR` on the disk you want to measure), background checkpoints
//! on. Before timing, one untimed scrape creates every series, so the figures are steady-state
//! appends to existing series.
//!
//! Criterion reports samples per wall-clock second. Beside it, this bench measures the CPU time
//! the whole process spent (every thread, the WAL's and the checkpointer's included) and
//! prints samples per CPU-second against the target, and the ratios between configurations:
//! 8 threads against 1 (what group commit buys), `Interval(1s)` against `Always` (what the
//! fsyncs cost), labels against cached references (what the series lookup costs).
//!
//! Run with
//! `cargo bench -p strata-engine --bench append -- --measurement-time 5 --warm-up-time 1`.

use strata_testkit::dataset;
use strata_testkit::host;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use dataset::{Dataset, START_MS};
use strata_engine::labels::Labels;
use strata_engine::{Db, FsyncMode, Options, SeriesRef};

const HOSTS: usize = 20;
const SEED: u64 = 0x5742_a7a0;
/// Samples per commit: the size of a typical remote-write request.
const BATCH_SAMPLES: usize = 2_000;
/// Batches each thread commits per timed segment; bounds the samples prepared before timing.
const SEGMENT_BATCHES: u64 = 25;
/// How far in the past the dataset's timeline is moved to start: room for about 170,000
/// scrapes (1.7 billion samples) before timestamps would reach the present.
const TIMELINE_BACK: Duration = Duration::from_secs(30 * 24 * 3600);
/// Samples per CPU-second that 8 threads with `FsyncMode::Always` must reach.
const TARGET_PER_CPU_SECOND: f64 = 1_000_000.0;

/// One way of running the appenders.
#[derive(Debug, Clone, Copy)]
struct Config {
    /// Criterion's name for it.
    id: &'static str,
    /// Its name in the summary table.
    label: &'static str,
    threads: usize,
    fsync: FsyncMode,
    /// Append by cached `SeriesRef` instead of by labels.
    by_ref: bool,
}

const BASELINE: Config = Config {
    id: "always/8-threads",
    label: "8 threads, fsync always (target)",
    threads: 8,
    fsync: FsyncMode::Always,
    by_ref: false,
};
const ONE_THREAD: Config = Config {
    id: "always/1-thread",
    label: "1 thread, fsync always",
    threads: 1,
    ..BASELINE
};
const INTERVAL: Config = Config {
    id: "interval-1s/8-threads",
    label: "8 threads, fsync every 1 s",
    fsync: FsyncMode::Interval(Duration::from_secs(1)),
    ..BASELINE
};
const BY_REF: Config = Config {
    id: "always-refs/8-threads",
    label: "8 threads, fsync always, by ref",
    by_ref: true,
    ..BASELINE
};
const CONFIGS: [Config; 4] = [BASELINE, ONE_THREAD, INTERVAL, BY_REF];

/// The dataset, its label sets, and its timeline moved into the recent past.
struct Fleet {
    dataset: Dataset,
    labels: Vec<Labels>,
    base_ms: i64,
}

impl Fleet {
    fn new() -> Fleet {
        let dataset = Dataset::new(HOSTS, SEED);
        let labels = dataset
            .series()
            .iter()
            .map(|s| Labels::new(s.labels.iter().map(|(n, v)| (n, v))).expect("valid labels"))
            .collect();
        Fleet {
            dataset,
            labels,
            base_ms: host::now_ms_minus(TIMELINE_BACK),
        }
    }

    fn timestamp(&self, host: usize, k: u64) -> i64 {
        self.base_ms + (self.dataset.timestamp(host, k) - START_MS)
    }
}

/// One thread's series and how far its stream of scrapes has got.
struct Share {
    /// Indices into the dataset.
    series: Vec<usize>,
    /// The reference of each, learnt from the first append.
    refs: Vec<Option<SeriesRef>>,
    /// The scrape and the position in `series` of the next sample.
    k: u64,
    pos: usize,
}

/// A sample as a thread appends it: position in its share, timestamp, value.
type Planned = (u32, i64, f64);

impl Share {
    /// The next `n` samples of the stream, scrape after scrape.
    fn plan(&mut self, fleet: &Fleet, n: usize, out: &mut Vec<Planned>) {
        out.clear();
        let series = fleet.dataset.series();
        while out.len() < n {
            let index = self.series[self.pos];
            let t = fleet.timestamp(series[index].host, self.k);
            out.push((self.pos as u32, t, fleet.dataset.value(index, self.k)));
            self.pos += 1;
            if self.pos == self.series.len() {
                self.pos = 0;
                self.k += 1;
            }
        }
    }

    /// Appends `samples` in batches of [`BATCH_SAMPLES`], committing each.
    fn append(&mut self, db: &Db, fleet: &Fleet, samples: &[Planned], by_ref: bool) -> u64 {
        let mut commits = 0;
        for batch in samples.chunks(BATCH_SAMPLES) {
            let mut app = db.appender();
            for &(slot, t, v) in batch {
                let slot = slot as usize;
                match self.refs[slot] {
                    Some(r) if by_ref => app.append_ref(r, t, v).expect("append by ref"),
                    _ => {
                        let labels = &fleet.labels[self.series[slot]];
                        let r = app.append(labels, t, v).expect("append");
                        self.refs[slot] = Some(r);
                    }
                }
            }
            app.commit().expect("commit");
            commits += 1;
        }
        commits
    }
}

/// What one configuration measured, summed over every timed segment (warm-up included).
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    samples: u64,
    commits: u64,
    wall: Duration,
    cpu_seconds: f64,
}

/// What the summary prints for one configuration.
#[derive(Debug)]
struct Outcome {
    config: Config,
    totals: Totals,
    wal_flushes: u64,
    wal_syncs: u64,
    checkpoints: u64,
}

/// A database being appended to in one configuration.
struct Run<'f> {
    fleet: &'f Fleet,
    config: Config,
    // Declared before `_dir` so the database closes before its directory is removed.
    db: Db,
    _dir: tempfile::TempDir,
    shares: Vec<Share>,
    plans: Vec<Vec<Planned>>,
    totals: Totals,
    /// WAL flushes and syncs when timing started.
    wal_before: (u64, u64),
}

impl<'f> Run<'f> {
    /// Opens a fresh database and creates every series with one untimed scrape.
    fn new(fleet: &'f Fleet, config: Config) -> Run<'f> {
        let dir = tempfile::Builder::new()
            .prefix("strata-append-")
            .tempdir()
            .expect("creating a temporary directory");
        let options = Options {
            fsync: config.fsync,
            ..Options::default()
        };
        let db = Db::open(dir.path(), options).expect("opening the database");
        let total = fleet.dataset.series().len();
        let shares: Vec<Share> = (0..config.threads)
            .map(|t| {
                let series: Vec<usize> = (t..total).step_by(config.threads).collect();
                Share {
                    refs: vec![None; series.len()],
                    series,
                    k: 0,
                    pos: 0,
                }
            })
            .collect();
        let mut run = Run {
            fleet,
            config,
            db,
            _dir: dir,
            plans: vec![Vec::new(); shares.len()],
            shares,
            totals: Totals::default(),
            wal_before: (0, 0),
        };
        for (share, plan) in run.shares.iter_mut().zip(&mut run.plans) {
            share.plan(fleet, share.series.len(), plan);
            share.append(&run.db, fleet, plan, false);
        }
        let wal = run.db.stats().wal;
        run.wal_before = (wal.flushes, wal.syncs);
        run
    }

    /// Each thread commits `batches` batches; returns the wall time they took together.
    fn time(&mut self, batches: u64) -> Duration {
        let mut elapsed = Duration::ZERO;
        let mut left = batches;
        while left > 0 {
            let n = left.min(SEGMENT_BATCHES);
            left -= n;
            elapsed += self.segment(n as usize * BATCH_SAMPLES);
        }
        elapsed
    }

    /// One timed segment: every thread appends `samples` samples planned beforehand.
    fn segment(&mut self, samples: usize) -> Duration {
        let fleet = self.fleet;
        for (share, plan) in self.shares.iter_mut().zip(&mut self.plans) {
            share.plan(fleet, samples, plan);
        }
        let db = &self.db;
        let by_ref = self.config.by_ref;
        let start = Barrier::new(self.shares.len() + 1);
        let mut began = None;
        let commits: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .shares
                .iter_mut()
                .zip(&self.plans)
                .map(|(share, plan)| {
                    let start = &start;
                    scope.spawn(move || {
                        start.wait();
                        share.append(db, fleet, plan, by_ref)
                    })
                })
                .collect();
            start.wait();
            began = Some((Instant::now(), host::process_cpu_seconds()));
            handles
                .into_iter()
                .map(|h| h.join().expect("appender thread panicked"))
                .sum()
        });
        let (t0, cpu0) = began.expect("timing started");
        let wall = t0.elapsed();
        let cpu = host::process_cpu_seconds() - cpu0;
        self.totals.samples += (samples * self.shares.len()) as u64;
        self.totals.commits += commits;
        self.totals.wall += wall;
        self.totals.cpu_seconds += cpu;
        wall
    }

    fn finish(self) -> Outcome {
        let stats = self.db.stats();
        Outcome {
            config: self.config,
            totals: self.totals,
            wal_flushes: stats.wal.flushes - self.wal_before.0,
            wal_syncs: stats.wal.syncs - self.wal_before.1,
            checkpoints: stats.checkpoints,
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let fleet = Fleet::new();
    let mut outcomes = Vec::new();
    let mut group = criterion.benchmark_group("append");
    // Each iteration commits one batch per thread (milliseconds), so a few flat samples give
    // a stable mean within the measurement time.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for config in CONFIGS {
        let mut run = Run::new(&fleet, config);
        group.throughput(Throughput::Elements(
            (config.threads * BATCH_SAMPLES) as u64,
        ));
        group.bench_function(config.id, |b| b.iter_custom(|batches| run.time(batches)));
        outcomes.push(run.finish());
    }
    group.finish();
    criterion.final_summary();
    summarise(&fleet, &outcomes);
}

fn summarise(fleet: &Fleet, outcomes: &[Outcome]) {
    println!();
    println!(
        "append: {} series on {} hosts, batches of {} samples, timed segments only (warm-up included)",
        host::thousands(fleet.dataset.series().len() as u64),
        fleet.dataset.hosts(),
        host::thousands(BATCH_SAMPLES as u64),
    );
    println!(
        "cores: CPU-seconds per wall-second; commits/flush: commits served by one WAL write (and, with fsync always, one fsync)"
    );
    println!(
        "{:<34} {:>12} {:>14} {:>14} {:>6} {:>14} {:>6}",
        "configuration", "samples", "per wall-s", "per CPU-s", "cores", "commits/flush", "ckpts"
    );
    let per_wall = |o: &Outcome| o.totals.samples as f64 / o.totals.wall.as_secs_f64();
    let per_cpu = |o: &Outcome| o.totals.samples as f64 / o.totals.cpu_seconds;
    let ran: Vec<&Outcome> = outcomes.iter().filter(|o| o.totals.samples > 0).collect();
    for o in &ran {
        println!(
            "{:<34} {:>12} {:>14} {:>14} {:>6.2} {:>14.1} {:>6}",
            o.config.label,
            host::thousands(o.totals.samples),
            host::rate(per_wall(o)),
            host::rate(per_cpu(o)),
            o.totals.cpu_seconds / o.totals.wall.as_secs_f64(),
            o.totals.commits as f64 / o.wal_flushes.max(1) as f64,
            o.checkpoints,
        );
        if matches!(o.config.fsync, FsyncMode::Always) && o.wal_syncs > 0 {
            println!(
                "{:<34} {} fsyncs, one per {} samples",
                "",
                host::thousands(o.wal_syncs),
                host::thousands(o.totals.samples / o.wal_syncs),
            );
        }
    }
    let find = |c: Config| ran.iter().find(|o| o.config.id == c.id);
    if let Some(base) = find(BASELINE) {
        let cpu = per_cpu(base);
        let verdict = if cpu >= TARGET_PER_CPU_SECOND {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "target: >= {} samples per CPU-second at 8 threads, fsync always: {} ({})",
            host::rate(TARGET_PER_CPU_SECOND),
            host::rate(cpu),
            verdict
        );
        // Each ratio divides the first-named configuration's throughput by the second's.
        let ratio = |what: &str, first: Config, second: Config| {
            if let (Some(a), Some(b)) = (find(first), find(second)) {
                println!(
                    "{what}: {:.2}x samples per wall-second, {:.2}x per CPU-second",
                    per_wall(a) / per_wall(b),
                    per_cpu(a) / per_cpu(b),
                );
            }
        };
        ratio("group commit, 8 threads / 1 thread", BASELINE, ONE_THREAD);
        ratio("fsync cost, always / every 1 s", BASELINE, INTERVAL);
        ratio("series lookup cost, by labels / by ref", BASELINE, BY_REF);
    }
}
