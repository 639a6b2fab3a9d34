//! `strata-bench`: load tests for metrics pipelines and for any HTTP service.
//!
//! The command line only: it reads the options into a [`strata_bench::load::run::RunOptions`],
//! runs it, and prints and writes the report (`strata_bench::load::report`). `null` starts the
//! do-nothing receiver the generator's own ceiling is measured against.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use strata_bench::load::analysis::Objective;
use strata_bench::load::client::Endpoint;
use strata_bench::load::run::{Fault, Lane, Model, RunOptions};
use strata_bench::load::scenario::Scenario;
use strata_bench::load::scenario::http::{HttpScenario, parse_headers};
use strata_bench::load::scenario::query::{self, QueryScenario};
use strata_bench::load::scenario::write::{Timing, WriteConfig, WriteScenario};
use strata_bench::load::schedule::{Profile, Schedule, ShapeOptions, parse_duration, parse_stages};
use strata_bench::load::selfmetrics::SelfMetrics;
use strata_bench::load::target::TargetWatch;
use strata_bench::load::{null, report, verify};
use strata_testkit::dataset::DatasetSpec;
use strata_testkit::time::now_ms;

/// Load tests for metrics pipelines (Prometheus remote write, PromQL) and any HTTP service.
///
/// Open model by default: requests arrive at the rate the schedule says, whether or not the
/// target keeps up, and latency is measured from when each request was due, so a stall shows
/// as latency. `--model closed` runs a fixed number of workers back to back instead.
///
/// Examples:
///   strata-bench write --rate 500 --duration 2m --verify
///   strata-bench query --profile stress --rate 20 --p99 250ms
///   strata-bench http --url http://127.0.0.1:8080/ --model closed --concurrency 32 --duration 30s
///   strata-bench write --stages 30s:100,2m:100,10s:2000,1m:100 --report out/
#[derive(Parser, Debug)]
#[command(name = "strata-bench", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prometheus remote write of node_exporter-like hosts.
    Write {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// PromQL instant and range queries against the Prometheus query API.
    Query {
        #[command(flatten)]
        load: LoadArgs,
        /// A file of queries, one a line (`range=24h step=60s EXPR` for a range query);
        /// the built-in dashboard mix when not given.
        #[arg(long)]
        queries: Option<PathBuf>,
    },
    /// The same HTTP request over and over, for any service.
    Http {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Remote write and heavy queries at once: writes alone for the first third of the run,
    /// then queries too, so the report shows what slow queries do to ingestion.
    Mixed {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        write: WriteArgs,
        /// Queries per second, in the second part of the run.
        #[arg(long, default_value_t = 2.0)]
        query_rate: f64,
        /// Queries in flight at most.
        #[arg(long, default_value_t = 4)]
        query_concurrency: usize,
        /// A file of queries; the built-in heavy mix (regex selectors, long ranges) when not
        /// given.
        #[arg(long)]
        queries: Option<PathBuf>,
    },
    /// The log benchmark: generate application logs, push them to a Strata server it starts
    /// (Loki push, protobuf + snappy), and measure size, ingest CPU, searches (beside `rg`),
    /// and memory under live load. See docs/perf.md.
    Logs(LogsArgs),
    /// A receiver that accepts any request and answers 204 (or 200 to GET), for measuring
    /// the generator itself.
    Null {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9299")]
        listen: String,
        /// Play a limited server: each request takes this long to answer...
        #[arg(long, value_parser = parse_duration)]
        service_time: Option<Duration>,
        /// ...with this many served at once.
        #[arg(long, default_value_t = 1)]
        slots: usize,
    },
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// The target. write and mixed: its remote-write URL; query: its base URL; http: the URL
    /// to request. [default: Strata's own address, http://127.0.0.1:9201, with the API path]
    #[arg(long)]
    url: Option<String>,
    /// A named load shape: load, endurance, stress or peak (see docs/load-testing.md).
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Explicit stages, `DURATION:TARGET,...` (k6 style: the target ramps linearly to each
    /// stage's value; `0s:N` jumps). Targets are requests/s (open) or workers (closed).
    #[arg(long, conflicts_with = "profile")]
    stages: Option<String>,
    /// Length of the run (profiles and a steady rate). [default: 60s; endurance 1h]
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Requests per second (the base rate of a profile).
    #[arg(long)]
    rate: Option<f64>,
    /// Workers: the most requests in flight (open model) or the workers sending (closed).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// open: requests arrive at the rate, latency counted from when each was due; closed: a
    /// fixed number of workers, each sending when its last request returned.
    #[arg(long, value_enum)]
    model: Option<Model>,
    /// Write report.json, report.html and summary.txt into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The latency objective: a second (or stress step) whose p99 is above it fails.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    p99: Duration,
    /// The error budget: the share of failed requests, in percent, a second may have.
    #[arg(long, default_value_t = 1.0)]
    error_budget: f64,
    /// Stress: the length of each step.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    step: Duration,
    /// Stress: the most steps (the last at this many times the base rate).
    #[arg(long, default_value_t = 20)]
    max_steps: u32,
    /// Stress: time at the base rate after the break; peak: the least time after the burst.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    recovery: Duration,
    /// Peak: the burst's rate as a multiple of the base rate.
    #[arg(long, default_value_t = 10.0)]
    peak_factor: f64,
    /// Peak: the burst's length.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    peak_length: Duration,
    /// Run a shell command at a moment of the run, `AT:COMMAND` (e.g. `30s:systemctl
    /// restart strata`); the report gives the error window and the time to recovery.
    #[arg(long = "fault")]
    faults: Vec<String>,
    /// Track this process's memory (from /proc) once a second; endurance flags growth.
    #[arg(long)]
    target_pid: Option<u32>,
    /// Endurance: memory growth, in percent from the start to the end, that is flagged.
    #[arg(long, default_value_t = 10.0)]
    drift_threshold: f64,
    /// The longest a request may take.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    request_timeout: Duration,
    /// The longest the run may take, whatever the schedule says.
    #[arg(long, value_parser = parse_duration, default_value = "6h")]
    max_duration: Duration,
    /// The most requests the run may send.
    #[arg(long, default_value_t = 1_000_000_000)]
    max_requests: u64,
    /// Runtime threads. [default: the CPUs available]
    #[arg(long)]
    threads: Option<usize>,
    /// Remote-write the generator's own metrics (rates, latency percentiles, errors, the
    /// target's memory) here once a second, to watch the run in Grafana.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    allow_remote: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct WriteArgs {
    /// Hosts to simulate, about 517 series each.
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// The data: `generated` (the node_exporter-like fleet of the engine's benches) or
    /// `template:PATH` (every line of a real scrape, such as `node_exporter-1.5-scrape.txt`,
    /// on every host).
    #[arg(long, default_value = "generated")]
    dataset: DatasetSpec,
    /// Samples per request (Prometheus sends up to 2,000).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Scrape interval: the backfill grid, and the default rate in real time (every series
    /// one sample per interval).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    interval: Duration,
    /// One scrape in ten is late by up to this many milliseconds.
    #[arg(long, default_value_t = 5)]
    jitter_ms: i64,
    /// Write this much history, ending now, time-major, as fast as accepted (closed model
    /// unless a rate is given); the run ends when it is all written.
    #[arg(long, value_parser = parse_duration)]
    backfill: Option<Duration>,
    /// Series churn: every host's series are replaced (a new `pod` label) once per this much
    /// data time.
    #[arg(long, value_parser = parse_duration)]
    churn: Option<Duration>,
    /// Extra series per host (`strata_bench_requests_total{route=...}`), for cardinality.
    #[arg(long, default_value_t = 0)]
    extra_series: usize,
    /// Seed of the data: the same seed gives the same series and values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The `run` label of every series. [default: a new one per run]
    #[arg(long)]
    run_id: Option<String>,
    /// After the run, check through the query API that every acknowledged sample is there.
    #[arg(long)]
    verify: bool,
    /// Series whose samples are checked one by one.
    #[arg(long, default_value_t = 40)]
    verify_series: usize,
    /// The query API's base URL for --verify. [default: the write URL's host]
    #[arg(long)]
    query_url: Option<String>,
}

#[derive(Args, Debug)]
struct LogsArgs {
    /// The Strata binary to start. [default: `strata` beside this program]
    #[arg(long)]
    server: Option<PathBuf>,
    /// Start the server under `taskset -c CPUS` (e.g. 1, with this program on CPU 0).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Scratch directory: the raw files (kept for the next run of the same dataset) and the
    /// servers' data.
    #[arg(long)]
    work: PathBuf,
    /// Raw log bytes to generate: 1GB is the quick mode, 10GB the full one.
    #[arg(long, default_value = "1GB", value_parser = parse_size)]
    size: u64,
    /// Streams of the dataset.
    #[arg(long, default_value_t = 2000)]
    streams: usize,
    /// Time the dataset spans, ending now.
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    span: Duration,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Consecutive lines sharing a trace id.
    #[arg(long, default_value_t = 8)]
    lines_per_trace: u64,
    /// Lines carrying a rare token.
    #[arg(long, default_value_t = 20)]
    needles: usize,
    /// Push connections.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Raw bytes per push (Promtail's batch size is 1 MiB).
    #[arg(long, default_value = "1MB", value_parser = parse_size)]
    batch: u64,
    /// Warm runs of each query.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Skip the cold runs (they restart the server and drop the page cache, as root).
    #[arg(long)]
    no_cold: bool,
    /// `zstd -19` compresses at most this much of the raw text.
    #[arg(long, default_value = "1GB", value_parser = parse_size)]
    zstd19_max: u64,
    /// Live load: lines per second...
    #[arg(long, default_value_t = 100_000.0)]
    live_rate: f64,
    /// ...into this many streams...
    #[arg(long, default_value_t = 20_000)]
    live_streams: usize,
    /// ...for this long (0 skips it).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    live_for: Duration,
    /// Limit load: push this many streams at once (0 skips it).
    #[arg(long, default_value_t = 0)]
    limit_streams: usize,
    /// Write report.json and summary.txt here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// A size: a number of bytes, or with KB, MB, GB (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_uppercase();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (write e.g. 1GB, 512MB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1u64,
        "KB" | "K" | "KIB" => 1 << 10,
        "MB" | "M" | "MIB" => 1 << 20,
        "GB" | "G" | "GIB" => 1 << 30,
        other => return Err(format!("{other:?} is not a unit: use KB, MB or GB")),
    };
    Ok((n * scale as f64) as u64)
}

fn run_logs(args: LogsArgs) -> anyhow::Result<()> {
    use strata_bench::logs::{report, run, server::ServerConfig};
    let binary = match args.server {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .join("strata"),
    };
    let options = run::Options {
        server: ServerConfig {
            binary,
            cpus: args.server_cpus,
        },
        work: args.work,
        bytes: args.size,
        streams: args.streams,
        span: args.span,
        seed: args.seed,
        lines_per_trace: args.lines_per_trace,
        needles: args.needles,
        workers: args.workers,
        batch_bytes: args.batch,
        runs: args.runs,
        cold: !args.no_cold,
        zstd19_max: args.zstd19_max,
        live_rate: args.live_rate,
        live_streams: args.live_streams,
        live_for: args.live_for,
        limit_streams: args.limit_streams,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let r = run::run(&options, command)?;
    let summary = report::text(&r);
    println!("{summary}");
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&r)?)?;
        std::fs::write(dir.join("summary.txt"), &summary)?;
    }
    Ok(())
}

#[derive(Args, Debug)]
struct HttpArgs {
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeat for more).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, from a file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// The status that counts as success. [default: any 2xx]
    #[arg(long)]
    expect_status: Option<u16>,
}

const DEFAULT_BASE: &str = "http://127.0.0.1:9201";

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("strata-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Null {
            listen,
            service_time,
            slots,
        } => null::serve_forever(
            &listen,
            service_time.map(|service| null::Capacity { slots, service }),
        ),
        Command::Logs(args) => run_logs(args),
        Command::Write { load, write } => {
            let url = load
                .url
                .clone()
                .unwrap_or_else(|| format!("{DEFAULT_BASE}/api/v1/write"));
            let endpoint = Endpoint::parse(&url, load.allow_remote)?;
            let scenario = Arc::new(WriteScenario::new(endpoint, write_config(&write)?));
            let natural = scenario.natural_rate();
            let backfill = write.backfill.is_some();
            let lane = lane(&load, scenario.clone(), natural, backfill)?;
            let verify = write.verify.then(|| VerifyPlan {
                base: write.query_url.clone().unwrap_or_else(|| base_of(&url)),
                run: scenario.config.run.clone(),
                first_ms: first_ms(&scenario.config),
            });
            execute(&load, vec![lane], &url, verify)
        }
        Command::Query { load, queries } => {
            let url = load.url.clone().unwrap_or_else(|| DEFAULT_BASE.into());
            let endpoint = Endpoint::parse(&url, load.allow_remote)?;
            let queries = match queries {
                Some(path) => read_queries(&path)?,
                None => query::dashboard(),
            };
            let scenario = Arc::new(QueryScenario {
                endpoint,
                queries: Arc::from(queries),
                name: "query",
            });
            let lane = lane(&load, scenario, 10.0, false)?;
            execute(&load, vec![lane], &url, None)
        }
        Command::Http { load, http } => {
            let url = load.url.clone().context("http needs --url")?;
            let endpoint = Endpoint::parse(&url, load.allow_remote)?;
            let body = match (&http.body, &http.body_file) {
                (Some(b), _) => b.clone().into_bytes(),
                (None, Some(p)) => {
                    std::fs::read(p).with_context(|| format!("reading {}", p.display()))?
                }
                (None, None) => Vec::new(),
            };
            let scenario = Arc::new(HttpScenario {
                endpoint,
                method: http
                    .method
                    .to_uppercase()
                    .parse()
                    .context("--method is not an HTTP method")?,
                headers: parse_headers(&http.headers)?,
                body: body.into(),
                expect: http
                    .expect_status
                    .map(|s| {
                        hyper::StatusCode::from_u16(s).context("--expect-status is not a status")
                    })
                    .transpose()?,
            });
            // Without a rate, http is a closed-model run (as wrk is).
            let closed = load.rate.is_none() && load.profile.is_none() && load.stages.is_none();
            let lane = lane(&load, scenario, 100.0, closed)?;
            execute(&load, vec![lane], &url, None)
        }
        Command::Mixed {
            load,
            write,
            query_rate,
            query_concurrency,
            queries,
        } => {
            let url = load
                .url
                .clone()
                .unwrap_or_else(|| format!("{DEFAULT_BASE}/api/v1/write"));
            let endpoint = Endpoint::parse(&url, load.allow_remote)?;
            let base = write.query_url.clone().unwrap_or_else(|| base_of(&url));
            let query_endpoint = Endpoint::parse(&base, load.allow_remote)?;
            let scenario = Arc::new(WriteScenario::new(endpoint, write_config(&write)?));
            let natural = scenario.natural_rate();
            let writes = lane(&load, scenario, natural, false)?;
            let span = writes.schedule.duration();
            let queries = match queries {
                Some(path) => read_queries(&path)?,
                None => query::heavy(),
            };
            let reads = Lane {
                scenario: Arc::new(QueryScenario {
                    endpoint: query_endpoint,
                    queries: Arc::from(queries),
                    name: "query",
                }),
                model: Model::Open,
                schedule: Schedule::constant(query_rate, span - span / 3),
                workers: query_concurrency,
                offset: span / 3,
            };
            execute(&load, vec![writes, reads], &url, None)
        }
    }
}

fn read_queries(path: &std::path::Path) -> anyhow::Result<Vec<query::Query>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    query::parse_file(&text).with_context(|| format!("{}", path.display()))
}

/// `http://host:port` of a URL.
fn base_of(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => url[..after + i].to_owned(),
        None => url.to_owned(),
    }
}

fn write_config(w: &WriteArgs) -> anyhow::Result<WriteConfig> {
    if w.hosts == 0 || w.batch == 0 {
        bail!("--hosts and --batch must be at least 1");
    }
    let interval_ms = w.interval.as_millis() as i64;
    if interval_ms <= 0 {
        bail!("--interval must be at least 1ms");
    }
    let timing = match w.backfill {
        Some(span) => {
            let end_ms = now_ms();
            Timing::Backfill {
                start_ms: end_ms - span.as_millis() as i64,
                end_ms,
            }
        }
        None => Timing::RealTime,
    };
    Ok(WriteConfig {
        hosts: w.hosts,
        dataset: w.dataset.clone(),
        seed: w.seed,
        batch: w.batch,
        interval_ms,
        jitter_ms: w.jitter_ms.max(0),
        timing,
        run: w
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{:x}", now_ms())),
        extra_series: w.extra_series,
        churn_ms: w.churn.map(|d| d.as_millis() as i64).filter(|&c| c > 0),
        // Kept samples are for the check only: without it the generator keeps nothing.
        verify_series: if w.verify { w.verify_series } else { 0 },
    })
}

fn first_ms(c: &WriteConfig) -> i64 {
    match c.timing {
        Timing::Backfill { start_ms, .. } => start_ms,
        Timing::RealTime => now_ms(),
    }
}

fn shape(load: &LoadArgs) -> ShapeOptions {
    ShapeOptions {
        step: load.step,
        steps_max: load.max_steps,
        recovery: load.recovery,
        peak_factor: load.peak_factor,
        peak_length: load.peak_length,
    }
}

/// The lane of a single-scenario run: its model and schedule from the options.
/// `default_rate` applies when neither a rate, stages nor a profile is given; `closed` makes
/// the closed model the default (backfill, and http without a rate).
fn lane(
    load: &LoadArgs,
    scenario: Arc<dyn Scenario>,
    default_rate: f64,
    closed: bool,
) -> anyhow::Result<Lane> {
    let model = load
        .model
        .unwrap_or(if closed { Model::Closed } else { Model::Open });
    let default_duration = if load.profile == Some(Profile::Endurance) {
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(60)
    };
    let duration = load.duration.unwrap_or(default_duration);
    let base = match model {
        Model::Open => load.rate.unwrap_or(default_rate),
        Model::Closed => load.rate.unwrap_or(load.concurrency as f64),
    };
    if !(base.is_finite() && base > 0.0) {
        bail!("the rate must be a positive number");
    }
    let schedule = match (&load.stages, load.profile) {
        (Some(stages), _) => Schedule {
            start: 0.0,
            stages: parse_stages(stages)?,
        },
        (None, Some(profile)) => profile.schedule(base, duration, &shape(load)),
        (None, None) => Schedule::constant(base, duration),
    };
    let workers = match model {
        Model::Open => load.concurrency,
        // Enough workers for the schedule's largest target.
        Model::Closed => (schedule.peak().ceil() as usize).max(1),
    };
    Ok(Lane {
        scenario,
        model,
        schedule,
        workers,
        offset: Duration::ZERO,
    })
}

struct VerifyPlan {
    base: String,
    run: String,
    first_ms: i64,
}

fn parse_fault(text: &str) -> anyhow::Result<Fault> {
    let (at, command) = text
        .split_once(':')
        .with_context(|| format!("--fault {text:?}: write AT:COMMAND, e.g. 30s:'kill -9 1234'"))?;
    Ok(Fault {
        at: parse_duration(at).map_err(|e| anyhow::anyhow!("--fault {text:?}: {e}"))?,
        command: command.trim().to_owned(),
    })
}

fn execute(
    load: &LoadArgs,
    lanes: Vec<Lane>,
    target: &str,
    verify_plan: Option<VerifyPlan>,
) -> anyhow::Result<()> {
    let faults = load
        .faults
        .iter()
        .map(|f| parse_fault(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let objective = Objective {
        p99_ms: load.p99.as_secs_f64() * 1000.0,
        error_ratio: load.error_budget / 100.0,
    };
    let threads = load
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = RunOptions {
        lanes,
        profile: load.profile,
        shape: shape(load),
        objective,
        request_timeout: load.request_timeout,
        max_duration: load.max_duration,
        max_requests: load.max_requests,
        faults,
        watch: TargetWatch::new(load.target_pid),
        progress: !load.quiet,
        threads,
        metrics: match &load.metrics_url {
            Some(url) => Some(SelfMetrics::new(
                Endpoint::parse(url, load.allow_remote)?,
                format!("{:x}", now_ms()),
            )),
            None => None,
        },
    };
    let mut result = strata_bench::load::run::run(options)?;
    let verification = verify_plan.map(|plan| {
        let ledgers = std::mem::take(&mut result.lanes[0].ledgers);
        verify::check(&plan.base, &plan.run, plan.first_ms, &ledgers)
    });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let passed = verification.as_ref().is_none_or(|v| v.passed());
    let r = report::build(
        command,
        target.to_owned(),
        load.profile,
        objective,
        result,
        verification,
        load.drift_threshold / 100.0,
    );
    let summary = report::text(&r);
    println!("{summary}");
    if let Some(dir) = &load.report {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&r)?)?;
        std::fs::write(dir.join("report.html"), report::html(&r))?;
        std::fs::write(dir.join("summary.txt"), &summary)?;
        eprintln!("strata-bench: report written to {}", dir.display());
    }
    if !passed {
        bail!("verification failed: acknowledged samples are missing");
    }
    Ok(())
}
