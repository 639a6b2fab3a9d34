//! One run against one running server: build the requests, wait until the server is ready, then
//! the create, throughput, settle and fixed-load phases, reading the server's CPU time and
//! memory from `/proc` around each.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::process::{Process, machine_busy_cpu};
use super::report::{MemorySample, Percentiles, PhaseResult, RunResult, RunSetup};
use super::sender::{self, Connection, PhaseOutcome, Target};
use super::workload::{Phase, Workload, WorkloadConfig};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Name and version of the system, for the report.
    pub system: String,
    pub version: String,
    /// Where the server and the generator run, for the report.
    pub pinning: String,
    /// The server's process id.
    pub pid: u32,
    /// Its remote-write URL.
    pub write_url: String,
    /// A URL that answers 200 once the server accepts writes.
    pub ready_url: String,
    pub workload: WorkloadConfig,
    /// Requests per second in the fixed-load phase, over all shards.
    pub latency_rate_per_s: f64,
    /// Idle time after the throughput phase, before memory is read.
    pub settle: Duration,
    /// Longest wait for readiness.
    pub ready_timeout: Duration,
    /// Longest a closed-loop phase may take, and the grace after the fixed-load schedule.
    pub phase_timeout: Duration,
    /// Longest one request may take.
    pub request_timeout: Duration,
    /// Threads that build the requests.
    pub build_threads: usize,
    /// How often the server's resident set is read during the fixed-load phase.
    pub memory_interval: Duration,
}

/// Runs every phase against the server and returns what was measured (errors included: the
/// caller decides what they mean).
pub fn run(options: &RunOptions) -> anyhow::Result<RunResult> {
    let server = Process::new(options.pid);
    let generator = Process::current();
    if !server.is_alive() {
        bail!("no process {} (the server exited?)", options.pid);
    }

    let started = Instant::now();
    let workload = Workload::build(&options.workload, options.build_threads);
    eprintln!(
        "built {} series; {} + {} + {} requests ({:.0} MiB compressed) in {:.1} s",
        workload.series,
        workload.create.requests(),
        workload.throughput.requests(),
        workload.latency.requests(),
        (workload.create.bytes + workload.throughput.bytes + workload.latency.bytes) as f64
            / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );

    let target = Target {
        url: options.write_url.clone(),
        request_timeout: options.request_timeout,
    };
    let connections: Vec<Connection> = (0..options.workload.shards)
        .map(|_| Connection::new(&target))
        .collect();
    wait_ready(&server, &connections[0], options)?;
    let memory_idle = server.memory()?;

    let measure = |phase: &Phase, send: &dyn Fn(&Phase) -> PhaseOutcome| {
        let before = CpuSnapshot::take(&server, &generator)?;
        let outcome = send(phase);
        let after = CpuSnapshot::take(&server, &generator)?;
        anyhow::Ok(phase_result(phase, outcome, &before, &after))
    };

    let deadline = || Instant::now() + options.phase_timeout;
    let closed =
        |phase: &Phase| sender::closed_loop(&target, &connections, &phase.shards, deadline());
    let create = measure(&workload.create, &closed)?;
    progress(&options.system, "create", &create);
    let memory_after_create = server.memory()?;

    let throughput = measure(&workload.throughput, &closed)?;
    progress(&options.system, "throughput", &throughput);

    let settle_from = server.cpu()?;
    std::thread::sleep(options.settle);
    let settle_cpu = server.cpu()? - settle_from;
    let memory_after_throughput = server.memory()?;

    let open = |phase: &Phase| {
        let schedule = Duration::from_secs_f64(
            phase.shards.iter().map(Vec::len).max().unwrap_or(0) as f64 * phase.shards.len() as f64
                / options.latency_rate_per_s,
        );
        let deadline = Instant::now() + schedule + options.phase_timeout;
        sender::open_loop(
            &target,
            &connections,
            &phase.shards,
            options.latency_rate_per_s,
            deadline,
        )
    };
    // The resident set is read at a fixed interval while the fixed load runs, so a long phase
    // shows how memory moves with the samples a series accumulates, not just where it ends.
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (fixed_load, memory_during_fixed_load) = std::thread::scope(|scope| {
        let sampler = scope.spawn(move || {
            let from = Instant::now();
            let mut samples = Vec::new();
            loop {
                if let Ok(m) = server.memory() {
                    samples.push(MemorySample {
                        at_s: from.elapsed().as_secs_f64(),
                        rss_bytes: m.rss_bytes,
                    });
                }
                match stopped.recv_timeout(options.memory_interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break samples,
                }
            }
        });
        let fixed_load = measure(&workload.latency, &open);
        drop(stop);
        let samples = sampler.join().unwrap_or_default();
        (fixed_load, samples)
    });
    let fixed_load = fixed_load?;
    progress(&options.system, "fixed load", &fixed_load);
    let memory_end = server.memory()?;

    let w = &options.workload;
    Ok(RunResult {
        setup: RunSetup {
            system: options.system.clone(),
            version: options.version.clone(),
            pinning: options.pinning.clone(),
            hosts: w.hosts,
            series: workload.series,
            seed: w.seed,
            start_ms: w.start_ms,
            shards: w.shards,
            batch_samples: w.batch_samples,
            throughput_scrapes: w.throughput_scrapes,
            latency_rate_per_s: options.latency_rate_per_s,
            settle_s: options.settle.as_secs_f64(),
        },
        memory_idle,
        create,
        memory_after_create,
        throughput,
        settle_cpu_s: settle_cpu.as_secs_f64(),
        memory_after_throughput,
        fixed_load,
        memory_during_fixed_load,
        memory_end,
    })
}

/// Polls the readiness URL until it answers 200, the server exits, or the timeout passes.
fn wait_ready(server: &Process, conn: &Connection, options: &RunOptions) -> anyhow::Result<()> {
    let until = Instant::now() + options.ready_timeout;
    let poll = Duration::from_millis(100);
    // Bounded by the timeout: at most one poll per 100 ms.
    while Instant::now() < until {
        if !server.is_alive() {
            bail!(
                "{} (pid {}) exited before it was ready",
                options.system,
                options.pid
            );
        }
        if conn.get_ok(&options.ready_url) {
            return Ok(());
        }
        std::thread::sleep(poll);
    }
    bail!(
        "{} was not ready at {} after {:?}",
        options.system,
        options.ready_url,
        options.ready_timeout
    )
}

/// CPU time used so far by the server, the generator, and the whole machine.
struct CpuSnapshot {
    server: Duration,
    generator: Duration,
    machine: Duration,
}

impl CpuSnapshot {
    fn take(server: &Process, generator: &Process) -> anyhow::Result<CpuSnapshot> {
        Ok(CpuSnapshot {
            server: server.cpu()?,
            generator: generator.cpu()?,
            machine: machine_busy_cpu()?,
        })
    }
}

fn phase_result(
    phase: &Phase,
    mut outcome: PhaseOutcome,
    before: &CpuSnapshot,
    after: &CpuSnapshot,
) -> PhaseResult {
    let server = (after.server - before.server).as_secs_f64();
    let generator = (after.generator - before.generator).as_secs_f64();
    let machine = (after.machine - before.machine).as_secs_f64();
    PhaseResult {
        requests: phase.requests() as u64,
        samples: phase.samples,
        compressed_bytes: phase.bytes,
        wall_s: outcome.wall.as_secs_f64(),
        server_cpu_s: server,
        generator_cpu_s: generator,
        errors: outcome.errors,
        error_examples: std::mem::take(&mut outcome.error_examples),
        latency: Percentiles::of(&mut outcome.latencies),
        // Ticks are counted per CPU and per process apart, so the difference can dip below 0.
        other_cpu_s: (machine - server - generator).max(0.0),
        timer_lag: Percentiles::of(&mut outcome.timer_lags),
        queued: outcome.queued,
    }
}

fn progress(system: &str, name: &str, p: &PhaseResult) {
    eprintln!(
        "{system} {name}: {} requests, {} samples in {:.2} s: {:.0} samples/s, {:.0} per server CPU-s; p50 {:.2} ms, p99 {:.2} ms; other processes {:.2} CPU-s; {} errors",
        p.requests,
        p.samples,
        p.wall_s,
        p.samples_per_s(),
        p.samples_per_cpu_s(),
        p.latency.p50_ms,
        p.latency.p99_ms,
        p.other_cpu_s,
        p.errors
    );
    for e in &p.error_examples {
        eprintln!("  error: {e}");
    }
}
