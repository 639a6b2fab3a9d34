//! `ingest-compare`: the remote-write ingestion benchmark's command line.
//!
//! `scripts/ingest-compare.sh` starts each server and calls `run` against it, then `report`
//! over the results; `free-port` lends it a loopback port. The method is described in
//! `strata_bench::ingest`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_testkit::dataset::DatasetSpec;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use strata_bench::ingest::report::{self, RunResult};
use strata_bench::ingest::run::{RunOptions, run};
use strata_bench::ingest::workload::WorkloadConfig;

#[derive(Debug, Parser)]
#[command(about = "Remote-write ingestion benchmark: Strata, Prometheus, VictoriaMetrics")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure one running server and write the results as JSON.
    Run(Box<RunArgs>),
    /// Print the side-by-side table of several runs' JSON files.
    Report {
        /// Result files written by `run`.
        #[arg(required = true)]
        results: Vec<PathBuf>,
    },
    /// Print a TCP port on 127.0.0.1 that is free now.
    FreePort,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Name of the system: `strata` is the one the report compares the others to.
    #[arg(long)]
    system: String,
    /// Version of the system, for the report.
    #[arg(long, default_value = "unknown")]
    version: String,
    /// Where the server and the generator run, for the report.
    #[arg(long, default_value = "not pinned")]
    pinning: String,
    /// Process id of the server (CPU time and memory are read from /proc/PID).
    #[arg(long)]
    pid: u32,
    /// Remote-write URL, e.g. http://127.0.0.1:9201/api/v1/write.
    #[arg(long)]
    write_url: String,
    /// URL answering 200 once the server accepts writes.
    #[arg(long)]
    ready_url: String,
    /// Where to write the results (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Hosts in the dataset, ~517 series each.
    #[arg(long, default_value_t = 2000)]
    hosts: usize,
    /// The data: `generated` (the node_exporter-like fleet of the engine's benches) or
    /// `template:PATH` (every line of a real scrape, such as `node_exporter-1.5-scrape.txt`,
    /// on every host).
    #[arg(long, default_value = "generated")]
    dataset: DatasetSpec,
    /// Dataset seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of scrape 0 in ms since the epoch (default: two hours ago).
    #[arg(long)]
    start_ms: Option<i64>,
    /// Connections (remote-write shards).
    #[arg(long, default_value_t = 8)]
    shards: usize,
    /// Samples per request (Prometheus 2.42's max_samples_per_send is 2000).
    #[arg(long, default_value_t = 2000)]
    batch_samples: usize,
    /// Scrapes of every host sent as fast as possible after scrape 0.
    #[arg(long, default_value_t = 8)]
    throughput_scrapes: u64,
    /// Requests per second in the fixed-load phase (all shards together).
    #[arg(long, default_value_t = 20.0)]
    latency_rate: f64,
    /// Length of the fixed-load phase in seconds.
    #[arg(long, default_value_t = 60.0)]
    latency_seconds: f64,
    /// Seconds between two readings of the server's resident set during the fixed load.
    #[arg(long, default_value_t = 30.0)]
    memory_interval_seconds: f64,
    /// Idle seconds after the throughput phase, before memory is read.
    #[arg(long, default_value_t = 5.0)]
    settle_seconds: f64,
    /// Longest wait for the server to become ready, in seconds.
    #[arg(long, default_value_t = 120.0)]
    ready_timeout_seconds: f64,
    /// Longest a closed-loop phase may take (and the grace after the fixed-load schedule).
    #[arg(long, default_value_t = 300.0)]
    phase_timeout_seconds: f64,
    /// Longest one request may take, in seconds.
    #[arg(long, default_value_t = 60.0)]
    request_timeout_seconds: f64,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run_command(*args),
        Command::Report { results } => {
            let runs: Vec<RunResult> = strata_bench::read_results(&results)?;
            print!("{}", report::setup_summary(&runs));
            println!();
            print!("{}", report::table(&runs));
            print!("{}", report::memory_over_time(&runs));
            Ok(())
        }
        Command::FreePort => strata_bench::print_free_port(),
    }
}

fn run_command(args: RunArgs) -> anyhow::Result<()> {
    for url in [&args.write_url, &args.ready_url] {
        let loopback = ["http://127.", "http://localhost:", "http://[::1]:"];
        if !loopback.iter().any(|p| url.starts_with(p)) {
            bail!("{url} is not a loopback address: this benchmark only talks to this machine");
        }
    }
    if !(args.latency_rate > 0.0 && args.latency_seconds > 0.0) {
        bail!("--latency-rate and --latency-seconds must be positive");
    }
    let start_ms = match args.start_ms {
        Some(ms) => ms,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("the clock is before 1970")?;
            now.as_millis() as i64 - 2 * 3600 * 1000
        }
    };
    let latency_requests = (args.latency_rate * args.latency_seconds).ceil() as usize;
    let options = RunOptions {
        system: args.system.clone(),
        version: args.version,
        pinning: args.pinning,
        pid: args.pid,
        write_url: args.write_url,
        ready_url: args.ready_url,
        workload: WorkloadConfig {
            hosts: args.hosts,
            dataset: args.dataset,
            seed: args.seed,
            start_ms,
            shards: args.shards,
            batch_samples: args.batch_samples,
            throughput_scrapes: args.throughput_scrapes,
            latency_requests_per_shard: latency_requests.div_ceil(args.shards),
        },
        latency_rate_per_s: args.latency_rate,
        settle: Duration::from_secs_f64(args.settle_seconds),
        ready_timeout: Duration::from_secs_f64(args.ready_timeout_seconds),
        phase_timeout: Duration::from_secs_f64(args.phase_timeout_seconds),
        request_timeout: Duration::from_secs_f64(args.request_timeout_seconds),
        build_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_interval: Duration::from_secs_f64(args.memory_interval_seconds),
    };
    let result = run(&options)?;
    let json = serde_json::to_string_pretty(&result)?;
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    let errors = result.errors();
    if errors > 0 {
        bail!(
            "{}: {errors} requests failed or were answered with a status other than 2xx",
            args.system
        );
    }
    Ok(())
}
