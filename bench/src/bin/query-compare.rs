//! `query-compare`: the PromQL query benchmark's command line. `scripts/query-compare.sh`
//! starts each server and calls `load` and `run` against it, then `report` over the results;
//! the method is in `strata_bench::query`.

use std::path::PathBuf;
use std::time::Duration;
use strata_testkit::dataset::DatasetSpec;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_bench::query::footprint::{self, Footprint};
use strata_bench::query::{load, report, run};

#[derive(Parser)]
#[command(
    about = "Load the dataset into a Prometheus-compatible server and time dashboard queries against it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Load the data, then time the queries; write the result as JSON.
    Run {
        /// Name of the system, for the report (`strata` is the one compared with the others).
        #[arg(long)]
        system: String,
        #[arg(long, default_value = "")]
        version: String,
        /// The server's base URL, `http://127.0.0.1:PORT` (its remote write at `/api/v1/write`).
        #[arg(long)]
        url: String,
        /// Where remote write goes, if not `URL/api/v1/write`.
        #[arg(long)]
        write_url: Option<String>,
        /// A URL that answers 200 once the server is ready.
        #[arg(long)]
        ready_url: String,
        /// Hosts of the dataset (about 517 series each).
        #[arg(long, default_value_t = 30)]
        hosts: usize,
        /// The data: `generated` or `template:PATH` (every line of a real scrape on every
        /// host).
        #[arg(long, default_value = "generated")]
        dataset: DatasetSpec,
        /// Hours of data, ending at --end-ms.
        #[arg(long, default_value_t = 26)]
        hours: u64,
        /// The last sample's time, ms since the epoch.
        #[arg(long)]
        end_ms: i64,
        #[arg(long, default_value_t = 8)]
        shards: usize,
        #[arg(long, default_value_t = 2000)]
        batch_samples: usize,
        /// Timed runs of each query (after one warm-up run).
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// Seconds between loading and querying (background work settles).
        #[arg(long, default_value_t = 10.0)]
        settle_seconds: f64,
        /// The server's process: after the settling time, wait (up to five minutes) until
        /// it has been idle for 65 s, so that no compaction after the load runs while the
        /// queries are timed; and measure its CPU and memory (see --data-dir).
        #[arg(long)]
        server_pid: Option<u32>,
        /// The server's data directory: with --server-pid, measure its bytes on disk once
        /// settled and after the system's own persist and merge, and the disk's fdatasync
        /// latency beside it.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seconds of live remote write after the catch-up, at --live-rate (0: none). Its
        /// samples continue the data after --end-ms.
        #[arg(long, default_value_t = 0.0)]
        live_seconds: f64,
        /// Samples per second of the live phase.
        #[arg(long, default_value_t = 50_000.0)]
        live_rate: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Time the queries against a server that already holds the data (loaded by `run` with
    /// the same --end-ms), printing each median; nothing is written.
    Time {
        #[arg(long)]
        url: String,
        /// The data's last sample time, ms since the epoch (as given to `run`).
        #[arg(long)]
        end_ms: i64,
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// Only the queries whose name contains this text.
        #[arg(long, default_value = "")]
        only: String,
        /// A URL that answers 200 once the server is ready; waited for first.
        #[arg(long)]
        ready_url: Option<String>,
    },
    /// Print the side-by-side table of result files.
    Report { results: Vec<PathBuf> },
    /// Print a loopback port that is free now.
    FreePort,
}

/// Polls `url` until it answers 200, for at most two minutes.
fn wait_ready(url: &str) -> anyhow::Result<()> {
    let agent: ureq::Agent = strata_bench::http_client(Duration::from_secs(5))
        .build()
        .into();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = agent.get(url).call()
            && r.status() == 200
        {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{url} did not answer 200 within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the server at `pid` has used under 2% of a CPU over the last 65 seconds, for
/// at most five minutes: its work after the load is done, including a round of background
/// maintenance that was due (Strata's and Prometheus's run every minute).
fn wait_idle(system: &str, pid: u32) -> anyhow::Result<()> {
    const STEP: Duration = Duration::from_secs(5);
    const WINDOW_STEPS: usize = 13;
    let process = strata_bench::ingest::process::Process::new(pid);
    let started = std::time::Instant::now();
    let mut window = std::collections::VecDeque::from([process.cpu()?]);
    loop {
        std::thread::sleep(STEP);
        window.push_back(process.cpu()?);
        if window.len() > WINDOW_STEPS + 1 {
            window.pop_front();
        }
        let span = STEP * (window.len() as u32 - 1);
        let used = window[window.len() - 1].saturating_sub(window[0]);
        if window.len() == WINDOW_STEPS + 1 && used < span / 50 {
            eprintln!(
                "{system}: idle after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(300) {
            eprintln!(
                "{system}: still busy after 5 minutes ({used:?} CPU in {span:?}); timing anyway"
            );
            return Ok(());
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            system,
            version,
            url,
            write_url,
            ready_url,
            hosts,
            dataset,
            hours,
            end_ms,
            shards,
            batch_samples,
            repeats,
            settle_seconds,
            server_pid,
            data_dir,
            live_seconds,
            live_rate,
            out,
        } => {
            let scrapes = hours * 240;
            let start_ms = end_ms - (scrapes as i64 - 1) * 15_000 - 15_000;
            let options = load::LoadOptions {
                write_url: write_url.unwrap_or_else(|| format!("{url}/api/v1/write")),
                hosts,
                dataset,
                seed: 1,
                start_ms,
                scrapes,
                shards,
                batch_samples,
                lockstep_scrapes: 20,
                request_timeout: Duration::from_secs(60),
            };
            let process = server_pid.map(strata_bench::ingest::process::Process::new);
            let mut footprint = process.as_ref().map(|_| Footprint::default());
            let cpu_s = || -> anyhow::Result<f64> {
                process
                    .as_ref()
                    .map_or(Ok(0.0), |p| Ok(p.cpu()?.as_secs_f64()))
            };
            let dataset_name = options.dataset.describe();
            // The live phase's requests are built before anything is timed.
            let live_bodies = (live_seconds > 0.0).then(|| {
                let series = options.dataset.build(hosts, options.seed).series().len();
                let scrapes = (live_rate * live_seconds / series as f64).ceil() as u64;
                load::continuation(&options, scrapes.max(1))
            });
            wait_ready(&ready_url)?;
            eprintln!("{system}: loading {hosts} hosts × {hours} h of {dataset_name}");
            let cpu_before = cpu_s()?;
            let loaded = load::load(&options)?;
            let cpu_loaded = cpu_s()?;
            eprintln!(
                "{system}: loaded {} samples in {:.1} s ({:.0}/s, {} retries)",
                loaded.samples,
                loaded.seconds,
                loaded.samples as f64 / loaded.seconds,
                loaded.retries
            );
            std::thread::sleep(Duration::from_secs_f64(settle_seconds));
            if let Some(pid) = server_pid {
                wait_idle(&system, pid)?;
            }
            if let (Some(f), Some(p)) = (footprint.as_mut(), process.as_ref()) {
                f.load_cpu_s = cpu_loaded - cpu_before;
                f.settle_cpu_s = cpu_s()? - cpu_loaded;
                f.settled = p.memory()?;
                f.settled_disk_bytes = data_dir.as_deref().map_or(0, footprint::disk_bytes);
            }
            if let Some((bodies, samples)) = &live_bodies {
                eprintln!(
                    "{system}: live remote write, {live_rate} samples/s for {live_seconds} s"
                );
                let live = footprint::live(
                    &options.write_url,
                    bodies,
                    *samples,
                    batch_samples,
                    live_rate,
                );
                eprintln!(
                    "{system}: live p50 {:.2} ms, p99 {:.2} ms, {} errors",
                    live.latency.p50_ms, live.latency.p99_ms, live.errors
                );
                if let Some(f) = footprint.as_mut() {
                    f.live = Some(live);
                }
            }
            let queries = run::run(&url, end_ms, repeats, "", Duration::from_secs(300));
            if let (Some(f), Some(p), Some(pid)) =
                (footprint.as_mut(), process.as_ref(), server_pid)
            {
                f.after_queries = p.memory()?;
                if let Some(dir) = &data_dir {
                    let (how, persisted) = footprint::persist(&system, &url, dir)?;
                    wait_idle(&system, pid)?;
                    f.persist = how;
                    f.persisted_disk_bytes = footprint::disk_bytes(&persisted);
                    let probe_dir = dir.parent().unwrap_or(dir);
                    f.fsync = Some(footprint::fdatasync_probe(probe_dir, 500)?);
                }
            }
            let result = run::RunResult {
                system,
                version,
                dataset: dataset_name,
                load: loaded,
                footprint,
                end_ms,
                queries,
            };
            std::fs::write(&out, serde_json::to_string_pretty(&result)?)
                .with_context(|| format!("writing {}", out.display()))?;
            Ok(())
        }
        Command::Time {
            url,
            end_ms,
            repeats,
            only,
            ready_url,
        } => {
            if let Some(ready) = &ready_url {
                wait_ready(ready)?;
            }
            let queries = run::run(&url, end_ms, repeats, &only, Duration::from_secs(300));
            let total: f64 = queries.iter().map(run::QueryTiming::median_ms).sum();
            eprintln!("  {:<40} {total:>9.1} ms", "total of medians");
            Ok(())
        }
        Command::Report { results } => {
            let runs: Vec<run::RunResult> = strata_bench::read_results(&results)?;
            print!("{}", report::table(&runs));
            let footprint = report::footprint_table(&runs);
            if !footprint.is_empty() {
                print!("\n{footprint}");
            }
            Ok(())
        }
        Command::FreePort => strata_bench::print_free_port(),
    }
}
