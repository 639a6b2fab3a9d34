//! On-disk storage through the real [`Db`] API: ingest with periodic maintenance, bytes per
//! sample of the blocks against plain Gorilla, a lossless check of everything the blocks hold,
//! select + decode throughput, and what compaction costs in time and memory.
//!
//! The data is the node_exporter-like fleet of `strata_testkit::dataset` (517 series a host, one
//! scrape every 15 s), by default 100 hosts × 26 h: 51,700 series, 322.6M samples. 26 hours so
//! that the first 24 h window completes (the head keeps up to 1.5 × 2 h, so the 2 h block
//! ending at hour 24 is cut once data reaches hour 25) and is compacted into one 24 h block.
//!
//! 1. **Ingest**, time-major: scrape after scrape, every host, one commit per scrape (a commit
//!    of every series: 51,700 samples at the default size), by labels on the first scrape and
//!    by cached `SeriesRef` afterwards. The database is opened in a temporary directory
//!    (`tempfile`, under the system temp dir: set `TMPDIR` to measure another disk) with
//!    `FsyncMode::Always`, `background_maintenance: false`, retention off, default block
//!    ranges (2 h, 6 h, 24 h, 7 d) and `block_chunk_samples_max`; a manual clock follows the
//!    scrapes. After each simulated hour of data the bench calls `Db::maintain` as the
//!    background thread would (cut 2 h blocks from the head, checkpoint, compact into 6 h and
//!    24 h windows). Appending and maintaining are timed apart; generating the samples is
//!    timed too and counted in neither.
//! 2. **Size**: `Stats::block_bytes / Stats::block_samples`, every file under `<db>/blocks`
//!    counted from the file system (chunk files, index, meta.json), and plain Gorilla in
//!    120-sample chunks (the Prometheus baseline, sized by the model in `strata_testkit::gorilla`,
//!    plus the chunk frame's header and CRC per chunk, as in the `cold_encoding` study) over
//!    exactly the samples the blocks hold. Target: the blocks at least 2× smaller, counting
//!    every block file. The head and the WAL are reported apart.
//! 3. **Lossless**: every series is queried over the blocks' time range and each sample is
//!    compared with the generator (timestamps equal, values bit for bit); the sample count must
//!    equal what was ingested in that range, `Stats::block_samples`, and the head plus the
//!    blocks must hold every sample ingested. Any difference panics.
//! 4. **Select + decode** on one thread: about 10,000 series (the first 20 hosts, by a regex
//!    on `instance`) over the 24 h of the blocks; `Querier::select` plus iterating every
//!    sample, 3 runs, best and median. Target: at least 50M samples/s.
//! 5. **Maintenance cost**: each `maintain` call is split into cutting (the 2 h block
//!    written from the head), the checkpoint after it, and compaction, using the engine's own
//!    `tracing` events ("block cut from the head", "checkpoint written", "blocks compacted",
//!    the latter with the samples of each new block), recorded by a small subscriber here.
//!    Compaction throughput is samples written by compactions per second of the compaction
//!    phase. A thread samples `/proc/self/status` every 2 ms while `maintain` runs: peak
//!    `VmRSS` (which includes the block files' mapped pages) and peak `RssAnon` (heap), against
//!    the figures just before the call. `VmHWM` is printed at the end.
//!
//! Run with `cargo bench -p strata-engine --bench storage`. `STRATA_STORAGE_HOSTS` (default
//! 100) and `STRATA_STORAGE_HOURS` (default 26, at least 4 for a block to be cut) change the
//! size, e.g. `STRATA_STORAGE_HOSTS=4 STRATA_STORAGE_HOURS=8` for a quick run. Progress goes
//! to stderr, the report to stdout. The full size needs about 2 GB of disk and 1 GB of memory
//! and runs for a few minutes.

use strata_testkit::dataset;
use strata_testkit::gorilla;
use strata_testkit::host;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataset::{Dataset, SCRAPE_INTERVAL_MS, START_MS};
use gorilla::gorilla_bits;
use strata_engine::block::meta::{BlockMeta, META_FILE};
use strata_engine::chunk::FRAME_OVERHEAD_BYTES;
use strata_engine::clock::ManualClock;
use strata_engine::labels::Labels;
use strata_engine::labels::matcher::{MatchKind, Matcher};
use strata_engine::{Db, FsyncMode, MaintenanceReport, Options, SeriesRef, Stats};

/// The seed of the chunk and cold_encoding benches, so all look at the same fleet.
const SEED: u64 = 0x5742_a7a0;
const HOSTS_DEFAULT: u64 = 100;
const HOURS_DEFAULT: u64 = 26;
const SCRAPES_PER_HOUR: u64 = 3_600_000 / SCRAPE_INTERVAL_MS as u64;
/// Samples per chunk of the plain Gorilla baseline (what Prometheus cuts).
const GORILLA_CHUNK_SAMPLES: usize = 120;
/// How many times smaller than plain Gorilla the blocks must be, every block file counted.
const RATIO_TARGET: f64 = 2.0;
/// Series the select + decode measurement reads (rounded up to whole hosts).
const QUERY_SERIES: usize = 10_000;
/// Select + decode samples per second on one thread.
const QUERY_TARGET: f64 = 50e6;
const QUERY_RUNS: usize = 3;
/// How often the memory sampler reads `/proc/self/status` while `maintain` runs.
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_millis(2);

fn main() {
    let started = Instant::now();
    tracing::subscriber::set_global_default(Recorder)
        .expect("no other tracing subscriber is installed");
    let hosts = host::env_count("STRATA_STORAGE_HOSTS", HOSTS_DEFAULT) as usize;
    let hours = host::env_count("STRATA_STORAGE_HOURS", HOURS_DEFAULT);
    let scrapes = hours * SCRAPES_PER_HOUR;

    let dataset = Dataset::new(hosts, SEED);
    let n = dataset.series().len();
    let labels: Vec<Labels> = dataset
        .series()
        .iter()
        .map(|s| Labels::new(s.labels.iter().map(|(n, v)| (n, v))).expect("valid labels"))
        .collect();
    let dir = tempfile::Builder::new()
        .prefix("strata-storage-")
        .tempdir()
        .expect("creating a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let options = Options {
        clock: Arc::clone(&clock) as _,
        fsync: FsyncMode::Always,
        background_maintenance: false,
        retention_ms: 0,
        ..Options::default()
    };
    let block_chunk_samples_max = options.block_chunk_samples_max;
    let block_ranges_h: Vec<String> = options
        .block_ranges_ms
        .iter()
        .map(|r| format!("{} h", r / 3_600_000))
        .collect();
    let db = Db::open(dir.path(), options).expect("opening the database");
    eprintln!(
        "storage: {hosts} hosts x {hours} h, {} series, {} samples, in {}",
        host::thousands(n as u64),
        host::thousands(n as u64 * scrapes),
        dir.path().display()
    );

    let ingest = ingest(&db, &clock, &dataset, &labels, scrapes);
    let stats = db.stats();
    let blocks = read_blocks(&dir.path().join("blocks"));
    assert!(
        !blocks.metas.is_empty(),
        "no block was cut: STRATA_STORAGE_HOURS must be at least 4"
    );
    let wal = walk(&dir.path().join("wal"));
    let mint = blocks.metas.iter().map(|m| m.min_t).min().expect("blocks");
    let maxt = blocks.metas.iter().map(|m| m.max_t).max().expect("blocks");

    eprintln!("checking every sample in the blocks ...");
    let check = check_lossless(&db, &dataset, &labels, scrapes, mint, maxt);
    assert_eq!(
        check.samples, stats.block_samples,
        "samples read back from the blocks' range differ from Stats::block_samples"
    );
    assert_eq!(
        stats.samples + stats.block_samples,
        ingest.samples,
        "head ({}) plus blocks ({}) do not hold every sample ingested ({})",
        stats.samples,
        stats.block_samples,
        ingest.samples
    );

    eprintln!("select + decode ...");
    let series_per_host = n / hosts;
    let query_hosts = QUERY_SERIES.div_ceil(series_per_host).min(hosts);
    let query = measure_query(&db, &check, series_per_host, query_hosts, mint, maxt);

    let hwm_end = MemStatus::read();
    let run_time = started.elapsed();

    // The report.
    println!();
    println!(
        "storage: {hosts} hosts x {hours} h ({} scrapes of {} s), {} series, {} samples; \
         block ranges {}, block chunks up to {} samples",
        host::thousands(scrapes),
        SCRAPE_INTERVAL_MS / 1000,
        host::thousands(n as u64),
        host::thousands(ingest.samples),
        block_ranges_h.join(", "),
        block_chunk_samples_max,
    );
    print_ingest(&ingest);
    print_maintenance(&ingest.calls);
    print_blocks(&blocks, mint);
    let sizes = print_sizes(&stats, &blocks, &wal, &check);
    println!();
    println!(
        "lossless: {} series x [{}, {}] ({:.2} h): {} samples read back, every timestamp equal \
         and every value bit-exact; = samples ingested in that range = Stats::block_samples; \
         head {} + blocks {} = {} ingested",
        host::thousands(check.series),
        mint,
        maxt,
        (maxt - mint + 1) as f64 / 3_600_000.0,
        host::thousands(check.samples),
        host::thousands(stats.samples),
        host::thousands(stats.block_samples),
        host::thousands(ingest.samples),
    );
    println!(
        "  (select of every series {:.2} s; comparing with the generator, Gorilla model \
         included, {:.1} s)",
        check.select.as_secs_f64(),
        check.total.as_secs_f64()
    );
    print_query(&query, query_hosts);
    print_summary(&ingest, &sizes, &query, &check, hwm_end);
    println!(
        "run: {:.0} s in all (ingest {:.0} s of appending, {:.0} s of maintenance, {:.0} s \
         generating samples)",
        run_time.as_secs_f64(),
        ingest.appending.as_secs_f64(),
        ingest
            .calls
            .iter()
            .map(|c| c.wall)
            .sum::<Duration>()
            .as_secs_f64(),
        ingest.generating.as_secs_f64(),
    );
    db.close().expect("closing the database");
}

// ---------------------------------------------------------------------------------------------
// Ingest and maintenance.

/// What ingesting measured.
struct Ingest {
    samples: u64,
    commits: u64,
    /// Appending and committing.
    appending: Duration,
    /// Generating the scrapes (not part of `appending`).
    generating: Duration,
    calls: Vec<MaintainCall>,
}

/// One compaction, timed from the end of the phase before it to its "blocks compacted" event
/// (so removing the previous compaction's sources counts in the next one).
#[derive(Debug, Clone, Copy)]
struct Merge {
    /// Level of the block written.
    level: u64,
    samples: u64,
    time: Duration,
}

/// One `Db::maintain` call.
struct MaintainCall {
    /// Hours of data ingested when it ran.
    hour: u64,
    report: MaintenanceReport,
    wall: Duration,
    /// Writing blocks from the head: from the call's start to the last "block cut" event.
    cutting: Duration,
    /// From the last block cut to the "checkpoint written" event.
    checkpointing: Duration,
    /// From the end of cutting and checkpointing to the call's end, when it compacted.
    compacting: Duration,
    samples_cut: u64,
    /// Samples of the blocks compactions wrote.
    samples_compacted: u64,
    /// Each compaction, in order.
    merges: Vec<Merge>,
    before: MemStatus,
    peak: MemStatus,
}

fn ingest(
    db: &Db,
    clock: &ManualClock,
    dataset: &Dataset,
    labels: &[Labels],
    scrapes: u64,
) -> Ingest {
    let n = labels.len();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; n];
    let mut scrape = Vec::with_capacity(n);
    let mut out = Ingest {
        samples: 0,
        commits: 0,
        appending: Duration::ZERO,
        generating: Duration::ZERO,
        calls: Vec::new(),
    };
    for k in 0..scrapes {
        let start = Instant::now();
        dataset.scrape(k, &mut scrape);
        let newest = scrape
            .iter()
            .map(|s| s.1)
            .max()
            .expect("a scrape has samples");
        out.generating += start.elapsed();

        clock.set_ms(newest);
        let start = Instant::now();
        let mut app = db.appender();
        for &(i, t, v) in &scrape {
            match refs[i] {
                Some(r) => app.append_ref(r, t, v).expect("append by reference"),
                None => refs[i] = Some(app.append(&labels[i], t, v).expect("append")),
            }
        }
        let committed = app.commit().expect("commit");
        out.appending += start.elapsed();
        assert_eq!(
            committed.samples, n as u64,
            "scrape {k}: every sample is new"
        );
        out.samples += committed.samples;
        out.commits += 1;

        if (k + 1) % SCRAPES_PER_HOUR == 0 {
            let hour = (k + 1) / SCRAPES_PER_HOUR;
            let call = maintain(db, hour);
            eprintln!(
                "  hour {hour:>3}: {:>12} samples, append + commit {:>10}/s; maintain {:>6.2} s \
                 (cut {}, compactions {}), peak RSS {:.0} MB",
                host::thousands(out.samples),
                host::rate(out.samples as f64 / out.appending.as_secs_f64()),
                call.wall.as_secs_f64(),
                call.report.blocks_cut,
                call.report.compactions,
                mb(call.peak.rss),
            );
            out.calls.push(call);
        }
    }
    out
}

/// Runs `Db::maintain`, timing its phases from the engine's events and sampling memory.
fn maintain(db: &Db, hour: u64) -> MaintainCall {
    drain_events();
    let before = MemStatus::read();
    let stop = AtomicBool::new(false);
    let (start, report, end, peak) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = MemStatus::default();
            loop {
                peak = peak.max(MemStatus::read());
                if stop.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(MEMORY_SAMPLE_PERIOD);
            }
        });
        let start = Instant::now();
        let report = db.maintain().expect("maintenance");
        let end = Instant::now();
        stop.store(true, Ordering::Relaxed);
        let peak = sampler.join().expect("memory sampler panicked");
        (start, report, end, peak)
    });
    let events = drain_events();
    let last = |kind: Event| events.iter().rfind(|e| e.kind == kind);
    let cut_end = last(Event::Cut).map_or(start, |e| e.at);
    let checkpoint_end = last(Event::Checkpoint).map_or(cut_end, |e| e.at.max(cut_end));
    let sum = |kind: Event| -> u64 {
        events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.samples)
            .sum()
    };
    let mut merges = Vec::new();
    let mut boundary = checkpoint_end;
    for e in events.iter().filter(|e| e.kind == Event::Compacted) {
        merges.push(Merge {
            level: e.level,
            samples: e.samples,
            time: e.at - boundary,
        });
        boundary = e.at;
    }
    assert_eq!(
        merges.len() as u64,
        report.compactions,
        "a \"blocks compacted\" event for each compaction the report counts"
    );
    MaintainCall {
        hour,
        wall: end - start,
        cutting: cut_end - start,
        checkpointing: checkpoint_end - cut_end,
        compacting: if report.compactions > 0 {
            end - checkpoint_end
        } else {
            Duration::ZERO
        },
        samples_cut: sum(Event::Cut),
        samples_compacted: sum(Event::Compacted),
        merges,
        report,
        before,
        peak,
    }
}

// ---------------------------------------------------------------------------------------------
// The engine's events, recorded by a minimal tracing subscriber.

/// An engine event that marks the end of a maintenance phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Cut,
    Checkpoint,
    Compacted,
}

#[derive(Debug)]
struct Logged {
    at: Instant,
    kind: Event,
    /// The `samples` field: of the block cut or compacted.
    samples: u64,
    /// The `level` field of a compaction: the new block's.
    level: u64,
}

static EVENTS: Mutex<Vec<Logged>> = Mutex::new(Vec::new());

fn drain_events() -> Vec<Logged> {
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Records the engine's maintenance events; prints its warnings and errors to stderr.
struct Recorder;

#[derive(Default)]
struct Fields {
    message: String,
    samples: u64,
    level: u64,
    all: Vec<String>,
}

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "samples" => self.samples = value,
            "level" => self.level = value,
            _ => {}
        }
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.all.push(format!("{}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("strata_") && *metadata.level() <= tracing::Level::DEBUG
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let at = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let kind = match fields.message.as_str() {
            "block cut from the head" => Some(Event::Cut),
            "checkpoint written" => Some(Event::Checkpoint),
            "blocks compacted" => Some(Event::Compacted),
            _ => None,
        };
        if let Some(kind) = kind {
            EVENTS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Logged {
                    at,
                    kind,
                    samples: fields.samples,
                    level: fields.level,
                });
        } else if *event.metadata().level() <= tracing::Level::WARN {
            eprintln!(
                "engine {}: {} {}",
                event.metadata().level(),
                fields.message,
                fields.all.join(" ")
            );
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// Figures of `/proc/self/status`, in bytes.
#[derive(Debug, Default, Clone, Copy)]
struct MemStatus {
    /// Resident set: heap, stacks and mapped file pages.
    rss: u64,
    /// Resident anonymous memory: the heap and stacks.
    anon: u64,
    /// Peak resident set since the process started.
    hwm: u64,
}

impl MemStatus {
    fn read() -> MemStatus {
        let status =
            std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("/proc/self/status has {name}"));
            let kib: u64 = line
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .expect("/proc/self/status sizes are integers");
            kib * 1024
        };
        MemStatus {
            rss: field("VmRSS"),
            anon: field("RssAnon"),
            hwm: field("VmHWM"),
        }
    }

    fn max(self, other: MemStatus) -> MemStatus {
        MemStatus {
            rss: self.rss.max(other.rss),
            anon: self.anon.max(other.anon),
            hwm: self.hwm.max(other.hwm),
        }
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// Files.

/// File sizes under a directory, by kind.
#[derive(Debug, Default)]
struct Files {
    /// (kind, files, bytes), kinds in the order first met.
    kinds: Vec<(String, u64, u64)>,
}

impl Files {
    fn add(&mut self, kind: &str, bytes: u64) {
        match self.kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => {
                k.1 += 1;
                k.2 += bytes;
            }
            None => self.kinds.push((kind.to_owned(), 1, bytes)),
        }
    }

    fn bytes(&self) -> u64 {
        self.kinds.iter().map(|k| k.2).sum()
    }

    fn files(&self) -> u64 {
        self.kinds.iter().map(|k| k.1).sum()
    }
}

/// Every file under `dir`, recursively, classified by its path relative to `dir`.
fn walk_into(dir: &Path, files: &mut Files, classify: &dyn Fn(&Path) -> String) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries
            .map(|e| e.expect("reading a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                files.add(&classify(relative), meta.len());
            }
        }
    }
}

/// The WAL directory: segments and checkpoints.
fn walk(dir: &Path) -> Files {
    let mut files = Files::default();
    walk_into(dir, &mut files, &|p| {
        if p.to_string_lossy().contains("checkpoint") {
            "checkpoint".to_owned()
        } else {
            "segments".to_owned()
        }
    });
    files
}

/// The blocks as found on disk.
struct BlocksOnDisk {
    metas: Vec<BlockMeta>,
    files: Files,
}

fn read_blocks(dir: &Path) -> BlocksOnDisk {
    let mut metas = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listing the blocks directory") {
        let path = entry.expect("reading a directory entry").path();
        let name = path.file_name().expect("a name").to_string_lossy();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let meta_path = path.join(META_FILE);
        let bytes = std::fs::read(&meta_path).expect("reading a block's meta.json");
        metas.push(BlockMeta::decode(&meta_path, &bytes).expect("a valid meta.json"));
    }
    metas.sort_by_key(|m| (m.min_t, m.id.clone()));
    let mut files = Files::default();
    walk_into(dir, &mut files, &|p| {
        let mut parts = p.iter().skip(1);
        match parts.next().map(|s| s.to_string_lossy().into_owned()) {
            Some(s) if s == "chunks" => "chunk files".to_owned(),
            Some(s) => s,
            None => "other".to_owned(),
        }
    });
    BlocksOnDisk { metas, files }
}

// ---------------------------------------------------------------------------------------------
// Lossless check and the Gorilla baseline.

/// What reading every block sample back found.
struct Check {
    series: u64,
    samples: u64,
    /// Plain Gorilla bytes over the same samples, 120-sample chunks, frame included.
    gorilla_bytes: u64,
    gorilla_chunks: u64,
    /// Per dataset series: samples in the range, and their order-independent fold.
    per_series: Vec<(u64, u64)>,
    select: Duration,
    total: Duration,
}

/// An order-independent sum the query measurement folds samples into.
fn fold(acc: u64, t: i64, v: f64) -> u64 {
    acc.wrapping_add(t as u64 ^ v.to_bits())
}

fn check_lossless(
    db: &Db,
    dataset: &Dataset,
    labels: &[Labels],
    scrapes: u64,
    mint: i64,
    maxt: i64,
) -> Check {
    let started = Instant::now();
    // Per host, the scrapes in [mint, maxt] (timestamps increase with the scrape number).
    let ranges: Vec<std::ops::Range<u64>> = (0..dataset.hosts())
        .map(|h| {
            let lo = (0..scrapes)
                .find(|&k| dataset.timestamp(h, k) >= mint)
                .unwrap_or(scrapes);
            let hi = (lo..scrapes)
                .find(|&k| dataset.timestamp(h, k) > maxt)
                .unwrap_or(scrapes);
            lo..hi
        })
        .collect();
    let any = Matcher::new(MatchKind::Regex, "__name__", ".+").expect("a valid regex");
    let querier = db.querier(mint, maxt);
    let start = Instant::now();
    let selected = querier.select(&[any]).expect("select");
    let select = start.elapsed();
    assert_eq!(
        selected.len(),
        labels.len(),
        "every series has samples in the blocks"
    );
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| labels[a].cmp(&labels[b]));

    let mut check = Check {
        series: 0,
        samples: 0,
        gorilla_bytes: 0,
        gorilla_chunks: 0,
        per_series: vec![(0, 0); labels.len()],
        select,
        total: Duration::ZERO,
    };
    for (got, &index) in selected.iter().zip(&order) {
        assert_eq!(got.labels(), &labels[index], "series in label order");
        let host = dataset.series()[index].host;
        let expected = dataset.samples(index, ranges[host].clone());
        for part in expected.chunks(GORILLA_CHUNK_SAMPLES) {
            check.gorilla_bytes += gorilla_bits(part).div_ceil(8) + FRAME_OVERHEAD_BYTES as u64;
            check.gorilla_chunks += 1;
        }
        let mut samples = got.samples();
        let mut sum = 0;
        for (i, &(t, v)) in expected.iter().enumerate() {
            match samples.next() {
                Some(s) if s.t == t && s.v.to_bits() == v.to_bits() => sum = fold(sum, t, v),
                other => panic!(
                    "{}: sample {i} read back as {other:?}, generated ({t}, {v:?})",
                    labels[index]
                ),
            }
        }
        if let Some(extra) = samples.next() {
            panic!(
                "{}: sample {extra:?} read back after the {} generated",
                labels[index],
                expected.len()
            );
        }
        check.series += 1;
        check.samples += expected.len() as u64;
        check.per_series[index] = (expected.len() as u64, sum);
    }
    check.total = started.elapsed();
    check
}

// ---------------------------------------------------------------------------------------------
// Select + decode.

/// One run of the select + decode measurement.
#[derive(Debug, Clone, Copy)]
struct QueryRun {
    select: Duration,
    iterate: Duration,
    series: usize,
    samples: u64,
}

impl QueryRun {
    fn total(&self) -> Duration {
        self.select + self.iterate
    }

    fn rate(&self) -> f64 {
        self.samples as f64 / self.total().as_secs_f64()
    }
}

fn measure_query(
    db: &Db,
    check: &Check,
    series_per_host: usize,
    hosts: usize,
    mint: i64,
    maxt: i64,
) -> Vec<QueryRun> {
    let alternatives: Vec<String> = (0..hosts).map(|h| h.to_string()).collect();
    let pattern = format!("host-({}):9100", alternatives.join("|"));
    let matcher = Matcher::new(MatchKind::Regex, "instance", &pattern).expect("a valid regex");
    let wanted = &check.per_series[..hosts * series_per_host];
    let expected_samples: u64 = wanted.iter().map(|s| s.0).sum();
    let expected_sum = wanted.iter().fold(0u64, |a, s| a.wrapping_add(s.1));
    (0..QUERY_RUNS)
        .map(|_| {
            let start = Instant::now();
            let querier = db.querier(mint, maxt);
            let selected = querier
                .select(std::slice::from_ref(&matcher))
                .expect("select");
            let selected_at = Instant::now();
            let mut samples = 0u64;
            let mut sum = 0u64;
            for s in &selected {
                for x in s.samples() {
                    samples += 1;
                    sum = fold(sum, x.t, x.v);
                }
            }
            let end = Instant::now();
            let sum = std::hint::black_box(sum);
            assert_eq!(samples, expected_samples, "select + decode sample count");
            assert_eq!(sum, expected_sum, "select + decode read other samples");
            QueryRun {
                select: selected_at - start,
                iterate: end - selected_at,
                series: selected.len(),
                samples,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The report.

fn print_ingest(ingest: &Ingest) {
    println!();
    println!(
        "ingest: time-major, one commit per scrape (by labels on the first, by cached \
         reference after), fsync always, maintain once per simulated hour"
    );
    println!(
        "  {} samples in {} commits: append + commit {:.1} s, {} samples/s (generating the \
         samples {:.1} s, not included)",
        host::thousands(ingest.samples),
        host::thousands(ingest.commits),
        ingest.appending.as_secs_f64(),
        host::rate(ingest.samples as f64 / ingest.appending.as_secs_f64()),
        ingest.generating.as_secs_f64(),
    );
}

fn print_maintenance(calls: &[MaintainCall]) {
    let wall: Duration = calls.iter().map(|c| c.wall).sum();
    println!();
    println!(
        "maintenance: {} calls, {:.2} s in all; calls that cut or compacted (ms; memory in MB, \
         sampled every {} ms: RSS = VmRSS incl. mapped block pages, anon = RssAnon):",
        calls.len(),
        wall.as_secs_f64(),
        MEMORY_SAMPLE_PERIOD.as_millis()
    );
    println!(
        "  {:>4} {:>3} {:>4} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6}",
        "hour",
        "cut",
        "comp",
        "samples cut",
        "compacted",
        "wall",
        "cut",
        "ckpt",
        "compact",
        "RSS<",
        "RSS^",
        "dRSS",
        "anon<",
        "anon^",
        "danon"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for c in calls
        .iter()
        .filter(|c| c.report.blocks_cut + c.report.compactions > 0)
    {
        println!(
            "  {:>4} {:>3} {:>4} {:>12} {:>12} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>7.0} {:>7.0} {:>6.0} {:>7.0} {:>7.0} {:>6.0}",
            c.hour,
            c.report.blocks_cut,
            c.report.compactions,
            host::thousands(c.samples_cut),
            host::thousands(c.samples_compacted),
            ms(c.wall),
            ms(c.cutting),
            ms(c.checkpointing),
            ms(c.compacting),
            mb(c.before.rss),
            mb(c.peak.rss),
            mb(c.peak.rss.saturating_sub(c.before.rss)),
            mb(c.before.anon),
            mb(c.peak.anon),
            mb(c.peak.anon.saturating_sub(c.before.anon)),
        );
    }
    let cut: Duration = calls.iter().map(|c| c.cutting).sum();
    let checkpoint: Duration = calls.iter().map(|c| c.checkpointing).sum();
    let compacting: Duration = calls.iter().map(|c| c.compacting).sum();
    let samples_cut: u64 = calls.iter().map(|c| c.samples_cut).sum();
    let compacted: u64 = calls.iter().map(|c| c.samples_compacted).sum();
    let compacting_calls: Duration = calls
        .iter()
        .filter(|c| c.report.compactions > 0)
        .map(|c| c.wall)
        .sum();
    println!(
        "  cutting: {} blocks, {} samples in {:.2} s ({} samples/s); checkpoints after cuts \
         {:.2} s",
        calls.iter().map(|c| c.report.blocks_cut).sum::<u64>(),
        host::thousands(samples_cut),
        cut.as_secs_f64(),
        host::rate(samples_cut as f64 / cut.as_secs_f64()),
        checkpoint.as_secs_f64(),
    );
    println!(
        "  compaction: {} merges wrote {} samples in {:.2} s: {} samples/s ({} samples/s over \
         the whole calls that compacted, cuts and checkpoints included)",
        calls.iter().map(|c| c.report.compactions).sum::<u64>(),
        host::thousands(compacted),
        compacting.as_secs_f64(),
        host::rate(compacted as f64 / compacting.as_secs_f64()),
        host::rate(compacted as f64 / compacting_calls.as_secs_f64()),
    );
    let merges: Vec<Merge> = calls.iter().flat_map(|c| c.merges.clone()).collect();
    let mut levels: Vec<u64> = merges.iter().map(|m| m.level).collect();
    levels.sort_unstable();
    levels.dedup();
    for level in levels {
        let of_level = merges.iter().filter(|m| m.level == level);
        let count = of_level.clone().count();
        let samples: u64 = of_level.clone().map(|m| m.samples).sum();
        let time: Duration = of_level.map(|m| m.time).sum();
        println!(
            "    into level {level}: {count} merge(s), {} samples in {:.2} s: {} samples/s",
            host::thousands(samples),
            time.as_secs_f64(),
            host::rate(samples as f64 / time.as_secs_f64()),
        );
    }
}

fn print_blocks(blocks: &BlocksOnDisk, mint: i64) {
    println!();
    println!("blocks on disk (range in hours from the first block's first sample):");
    println!(
        "  {:<10} {:>5} {:>15} {:>8} {:>8} {:>12} {:>12} {:>12}",
        "id", "level", "range", "series", "chunks", "samples", "index B", "chunks B"
    );
    let hours = |t: i64| (t - mint) as f64 / 3_600_000.0;
    for m in &blocks.metas {
        println!(
            "  {:<10} {:>5} {:>6.2} - {:>6.2} {:>8} {:>8} {:>12} {:>12} {:>12}",
            m.id,
            m.level,
            hours(m.min_t),
            hours(m.max_t),
            m.series,
            m.chunks,
            host::thousands(m.samples),
            host::thousands(m.index_bytes),
            host::thousands(m.chunk_bytes),
        );
    }
}

/// The size figures the summary needs.
struct Sizes {
    stats_per_sample: f64,
    files_per_sample: f64,
    gorilla_per_sample: f64,
    ratio_files: f64,
    ratio_stats: f64,
}

fn print_sizes(stats: &Stats, blocks: &BlocksOnDisk, wal: &Files, check: &Check) -> Sizes {
    let samples = stats.block_samples as f64;
    let files = blocks.files.bytes();
    let sizes = Sizes {
        stats_per_sample: stats.block_bytes as f64 / samples,
        files_per_sample: files as f64 / samples,
        gorilla_per_sample: check.gorilla_bytes as f64 / check.samples as f64,
        ratio_files: check.gorilla_bytes as f64 / files as f64,
        ratio_stats: check.gorilla_bytes as f64 / stats.block_bytes as f64,
    };
    println!();
    println!(
        "size of the blocks ({} blocks, {} samples):",
        stats.blocks,
        host::thousands(stats.block_samples)
    );
    println!(
        "  Stats::block_bytes (index + chunk files)  {:>14} B  {:.3} B/sample",
        host::thousands(stats.block_bytes),
        sizes.stats_per_sample
    );
    for (kind, n, bytes) in &blocks.files.kinds {
        println!(
            "    {:<38} {:>14} B  {:.3} B/sample  ({n} files)",
            kind,
            host::thousands(*bytes),
            *bytes as f64 / samples
        );
    }
    println!(
        "  every file under blocks/                 {:>14} B  {:.3} B/sample  ({} files)",
        host::thousands(files),
        sizes.files_per_sample,
        blocks.files.files()
    );
    println!(
        "  plain Gorilla, 120-sample chunks (model) {:>14} B  {:.3} B/sample  ({} chunks, \
         {FRAME_OVERHEAD_BYTES} B frame each, no index)",
        host::thousands(check.gorilla_bytes),
        sizes.gorilla_per_sample,
        host::thousands(check.gorilla_chunks),
    );
    let gorilla_data = check.gorilla_bytes - check.gorilla_chunks * FRAME_OVERHEAD_BYTES as u64;
    println!(
        "  Gorilla / blocks: {:.2}x counting every block file, {:.2}x counting \
         Stats::block_bytes; Gorilla's chunk data alone (no frames, {:.3} B/sample) / every \
         block file: {:.2}x",
        sizes.ratio_files,
        sizes.ratio_stats,
        gorilla_data as f64 / check.samples as f64,
        gorilla_data as f64 / files as f64,
    );
    println!(
        "  head (not in blocks): {} series, {} samples, {} B of chunk data ({:.3} B/sample)",
        host::thousands(stats.series),
        host::thousands(stats.samples),
        host::thousands(stats.chunk_bytes),
        stats.chunk_bytes as f64 / stats.samples.max(1) as f64,
    );
    let wal_kinds: Vec<String> = wal
        .kinds
        .iter()
        .map(|(kind, n, bytes)| format!("{kind} {} B in {n} files", host::thousands(*bytes)))
        .collect();
    println!(
        "  WAL: {} B ({})",
        host::thousands(wal.bytes()),
        wal_kinds.join(", ")
    );
    sizes
}

fn print_query(runs: &[QueryRun], hosts: usize) {
    let first = runs[0];
    println!();
    println!(
        "select + decode, one thread: {} series (instance=~ the first {hosts} hosts) x the \
         blocks' range, {} samples a run:",
        host::thousands(first.series as u64),
        host::thousands(first.samples)
    );
    for (i, r) in runs.iter().enumerate() {
        println!(
            "  run {}: select {:>7.1} ms + iterate {:>7.1} ms = {:>7.1} ms: {:>12} samples/s \
             (select alone {} samples/s, iterate alone {} samples/s)",
            i + 1,
            r.select.as_secs_f64() * 1e3,
            r.iterate.as_secs_f64() * 1e3,
            r.total().as_secs_f64() * 1e3,
            host::rate(r.rate()),
            host::rate(r.samples as f64 / r.select.as_secs_f64()),
            host::rate(r.samples as f64 / r.iterate.as_secs_f64()),
        );
    }
}

fn sorted_rates(runs: &[QueryRun]) -> Vec<f64> {
    let mut rates: Vec<f64> = runs.iter().map(QueryRun::rate).collect();
    rates.sort_by(f64::total_cmp);
    rates
}

fn print_summary(
    ingest: &Ingest,
    sizes: &Sizes,
    query: &[QueryRun],
    check: &Check,
    end: MemStatus,
) {
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let rates = sorted_rates(query);
    let best = rates[rates.len() - 1];
    let median = rates[rates.len() / 2];
    let calls = &ingest.calls;
    let compacted: u64 = calls.iter().map(|c| c.samples_compacted).sum();
    let compacting: Duration = calls.iter().map(|c| c.compacting).sum();
    let worst = calls
        .iter()
        .max_by_key(|c| c.peak.rss)
        .expect("maintain ran");
    let worst_delta = calls
        .iter()
        .max_by_key(|c| c.peak.rss.saturating_sub(c.before.rss))
        .expect("maintain ran");
    let worst_anon = calls
        .iter()
        .max_by_key(|c| c.peak.anon.saturating_sub(c.before.anon))
        .expect("maintain ran");

    println!();
    println!("summary:");
    println!(
        "  {:<56} {:>12} {:>22} {:>7}",
        "figure", "target", "measured", ""
    );
    let row = |figure: &str, target: &str, measured: String, met: Option<bool>| {
        println!(
            "  {:<56} {:>12} {:>22} {:>7}",
            figure,
            target,
            measured,
            met.map_or("", verdict)
        );
    };
    row(
        "block bytes/sample (Stats::block_bytes / block_samples)",
        "-",
        format!("{:.3}", sizes.stats_per_sample),
        None,
    );
    row(
        "block bytes/sample, every file under blocks/",
        "-",
        format!("{:.3}", sizes.files_per_sample),
        None,
    );
    row(
        "plain Gorilla 120 bytes/sample (model)",
        "-",
        format!("{:.3}", sizes.gorilla_per_sample),
        None,
    );
    row(
        "times smaller than plain Gorilla 120, every block file",
        &format!(">= {RATIO_TARGET:.1}x"),
        format!("{:.2}x", sizes.ratio_files),
        Some(sizes.ratio_files >= RATIO_TARGET),
    );
    // A difference would have panicked: reaching here means every sample matched.
    row(
        "lossless: block samples read back, each one bit-exact",
        "all",
        host::thousands(check.samples),
        Some(true),
    );
    row(
        &format!(
            "select + decode, {} series, best of {QUERY_RUNS} (samples/s)",
            host::thousands(query[0].series as u64)
        ),
        &format!(">= {:.0}M", QUERY_TARGET / 1e6),
        host::rate(best),
        Some(best >= QUERY_TARGET),
    );
    row(
        &format!("select + decode, median of {QUERY_RUNS} (samples/s)"),
        &format!(">= {:.0}M", QUERY_TARGET / 1e6),
        host::rate(median),
        Some(median >= QUERY_TARGET),
    );
    row(
        "append + commit, one thread, by reference (samples/s)",
        "-",
        host::rate(ingest.samples as f64 / ingest.appending.as_secs_f64()),
        None,
    );
    row(
        "compaction, samples written / s of compaction phase",
        "-",
        host::rate(compacted as f64 / compacting.as_secs_f64()),
        None,
    );
    row(
        &format!("peak VmRSS during maintain (hour {})", worst.hour),
        "-",
        format!(
            "{:.0} MB (before {:.0})",
            mb(worst.peak.rss),
            mb(worst.before.rss)
        ),
        None,
    );
    row(
        &format!(
            "largest VmRSS rise during one maintain (hour {})",
            worst_delta.hour
        ),
        "-",
        format!(
            "+{:.0} MB",
            mb(worst_delta.peak.rss.saturating_sub(worst_delta.before.rss))
        ),
        None,
    );
    row(
        &format!(
            "largest RssAnon rise during one maintain (hour {})",
            worst_anon.hour
        ),
        "-",
        format!(
            "+{:.0} MB",
            mb(worst_anon.peak.anon.saturating_sub(worst_anon.before.anon))
        ),
        None,
    );
    row(
        "VmHWM of the process at the end",
        "-",
        format!("{:.0} MB", mb(end.hwm)),
        None,
    );
}
