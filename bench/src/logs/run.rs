//! The whole log benchmark, phase by phase: generate, compress with `zstd`, push, measure the
//! disk, query warm and cold (and `rg` the same), then the live and the streams-limit loads
//! on fresh servers.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strata_testkit::logdata::{LogData, LogSpec};

use super::push::{self, PushOptions, PushOutcome};
use super::queries::{self, LogQuery, QueryRun};
use super::server::{Server, ServerConfig, bytes_by_part};
use crate::ingest::process::Memory;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub server: ServerConfig,
    /// Scratch space: `raw/` (the raw files), `data*/` (the servers' data directories).
    pub work: PathBuf,
    /// Raw bytes to generate (about).
    pub bytes: u64,
    pub streams: usize,
    pub span: Duration,
    pub seed: u64,
    pub lines_per_trace: u64,
    pub needles: usize,
    pub workers: usize,
    pub batch_bytes: u64,
    /// Warm runs of each query (the median is reported).
    pub runs: usize,
    /// Each query once more after a restart with an empty page cache.
    pub cold: bool,
    /// `zstd -19` compresses at most this many raw bytes (it is slow); the ratio is on those.
    pub zstd19_max: u64,
    /// The live load: lines per second, streams and length (no live phase when 0 s).
    pub live_rate: f64,
    pub live_streams: usize,
    pub live_for: Duration,
    /// The limit load: streams pushed at once, beyond the store's limit (none when 0).
    pub limit_streams: usize,
}

/// Everything measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub command: String,
    pub lines: u64,
    pub raw_bytes: u64,
    pub streams: usize,
    pub span_s: u64,
    pub generate_s: f64,
    pub zstd3_bytes: Option<u64>,
    /// (raw bytes compressed, their compressed bytes).
    pub zstd19: Option<(u64, u64)>,
    pub push: PushOutcome,
    pub push_server_cpu_s: f64,
    /// Server CPU after the push until it was idle (seals finishing).
    #[serde(default)]
    pub settle_cpu_s: f64,
    pub push_memory: Memory,
    /// Bytes of the log store's directory, by part (`blocks`, `wal`), right after the push.
    pub disk: Vec<(String, u64)>,
    pub queries: Vec<QueryResult>,
    pub live: Option<LiveResult>,
    pub limit: Option<LimitResult>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QueryResult {
    pub query: LogQuery,
    pub warm: Vec<QueryRun>,
    pub cold: Option<QueryRun>,
    /// `rg` over the raw files: seconds warm (median), cold, and the lines it found.
    pub rg_warm_s: Option<f64>,
    pub rg_cold_s: Option<f64>,
    pub rg_lines: Option<u64>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LiveResult {
    pub rate: f64,
    pub streams: usize,
    pub distinct_traces: u64,
    pub push: PushOutcome,
    pub server_cpu_s: f64,
    /// The server's resident set, once a second.
    pub rss_bytes: Vec<u64>,
    pub memory_end: Memory,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LimitResult {
    pub streams_pushed: usize,
    pub streams_held: u64,
    pub push: PushOutcome,
    pub memory_end: Memory,
}

/// Lines of the dataset: the raw bytes asked for over the mean line of a sample.
fn lines_for(spec: &LogSpec, bytes: u64) -> u64 {
    let sample = LogData::new(LogSpec {
        lines: 1_000_000,
        ..spec.clone()
    });
    let mut text = String::new();
    let mut total = 0u64;
    let n = 20_000;
    for i in 0..n {
        sample.line(i * 50, &mut text);
        total += text.len() as u64 + 1;
    }
    (bytes * n / total.max(1)).max(1)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Runs every phase and returns the report.
pub fn run(options: &Options, command: String) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&options.work)?;
    let span_ns = options.span.as_nanos() as i64;
    // The range ends at least five minutes ago (every entry in the past, none too old) and
    // starts at a whole day, so runs on the same day generate the same text and reuse it.
    const DAY_NS: i64 = 86_400_000_000_000;
    let start_ns = (now_ns() - span_ns - 300_000_000_000).div_euclid(DAY_NS) * DAY_NS;
    let mut spec = LogSpec {
        seed: options.seed,
        streams: options.streams,
        lines: 1,
        start_ns,
        span_ns,
        lines_per_trace: options.lines_per_trace,
        needles: options.needles,
        round_robin: false,
    };
    spec.lines = lines_for(&spec, options.bytes);
    let data = LogData::new(spec.clone());
    let mut report = Report {
        command,
        lines: spec.lines,
        streams: spec.streams,
        span_s: options.span.as_secs(),
        ..Report::default()
    };

    let raw = options.work.join("raw");
    let started = Instant::now();
    report.raw_bytes = write_raw(&data, &raw)?;
    report.generate_s = started.elapsed().as_secs_f64();
    eprintln!(
        "logs: {} lines, {:.0} MiB raw in {} streams, written in {:.1} s",
        spec.lines,
        report.raw_bytes as f64 / (1u64 << 20) as f64,
        spec.streams,
        report.generate_s
    );
    let files = raw_files(&data, &raw);
    report.zstd3_bytes = zstd_cached(&raw, &files, 3, u64::MAX).map(|(_, c)| c);
    report.zstd19 = zstd_cached(&raw, &files, 19, options.zstd19_max);
    eprintln!(
        "logs: zstd -3 {:?} bytes, zstd -19 {:?}",
        report.zstd3_bytes, report.zstd19
    );

    let data_dir = options.work.join("data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let server = Server::start(&options.server, &data_dir, Duration::from_secs(120))?;
    let chunk_lines = (spec.lines * options.batch_bytes / report.raw_bytes.max(1)).max(1);
    let cpu0 = server.process.cpu()?;
    report.push = push::push(
        &data,
        &PushOptions {
            url: format!("{}/loki/api/v1/push", server.base),
            workers: options.workers,
            chunk_lines,
            rate: None,
            retry: true,
            request_timeout: Duration::from_secs(60),
            deadline: Instant::now() + Duration::from_secs(6 * 3600),
        },
    );
    report.push_server_cpu_s = (server.process.cpu()? - cpu0).as_secs_f64();
    report.push_memory = server.process.memory()?;
    eprintln!(
        "logs: pushed {} lines ({} failed batches) in {:.1} s, server CPU {:.1} s",
        report.push.lines, report.push.failed, report.push.wall_s, report.push_server_cpu_s
    );
    if report.push.failed > 0 {
        bail!("batches failed: {:?}", report.push.examples);
    }
    // Seals and merges still running after the last acknowledgement are the push's work too;
    // queries start once the server is idle.
    let agent: ureq::Agent = crate::http_client(queries::QUERY_TIMEOUT).build().into();
    report.settle_cpu_s =
        settle(&agent, &server, &data_dir.join("logs").join("blocks"))?.as_secs_f64();
    // The directory as the store leaves it: read until two readings a second apart agree (a
    // merge's sources are removed just after its block takes their place).
    let mut disk = bytes_by_part(&data_dir.join("logs"))?;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        let again = bytes_by_part(&data_dir.join("logs"))?;
        if again == disk {
            break;
        }
        disk = again;
    }
    report.disk = disk;

    let end_ns = start_ns + span_ns + 1;
    let mix = queries::mix(&data);
    let mut server = Some(server);
    for q in &mix {
        let s = server.as_ref().context("server")?;
        let mut result = QueryResult {
            query: q.clone(),
            warm: Vec::new(),
            cold: None,
            rg_warm_s: None,
            rg_cold_s: None,
            rg_lines: None,
        };
        // One run to warm, then the measured ones.
        queries::run(&agent, &s.base, q, start_ns, end_ns)?;
        for _ in 0..options.runs.max(1) {
            result.warm.push(measured(&agent, s, q, start_ns, end_ns)?);
        }
        if let Ok(Some((_, lines))) = queries::rg(&raw, q) {
            let mut times = Vec::new();
            for _ in 0..3 {
                if let Some((t, _)) = queries::rg(&raw, q)? {
                    times.push(t);
                }
            }
            result.rg_lines = Some(lines);
            result.rg_warm_s = Some(queries::median(&mut times));
        }
        eprintln!(
            "logs: {}: warm {:.3} s, rg warm {:?}",
            q.name,
            queries::median(&mut result.warm.iter().map(|r| r.seconds).collect::<Vec<_>>()),
            result.rg_warm_s
        );
        report.queries.push(result);
    }
    if options.cold {
        for result in &mut report.queries {
            server.take().context("server")?.stop()?;
            queries::drop_page_cache()?;
            let s = Server::start(&options.server, &data_dir, Duration::from_secs(300))?;
            result.cold = Some(measured(&agent, &s, &result.query, start_ns, end_ns)?);
            server = Some(s);
            if result.query.rg.is_some() {
                queries::drop_page_cache()?;
                result.rg_cold_s = queries::rg(&raw, &result.query)?.map(|(t, _)| t);
            }
            eprintln!(
                "logs: {}: cold {:.3} s, rg cold {:?}",
                result.query.name,
                result.cold.as_ref().map_or(0.0, |r| r.seconds),
                result.rg_cold_s
            );
        }
    }
    if let Some(s) = server.take() {
        s.stop()?;
    }

    if !options.live_for.is_zero() && options.live_rate > 0.0 {
        report.live = Some(live(options)?);
    }
    if options.limit_streams > 0 {
        report.limit = Some(limit(options)?);
    }
    Ok(report)
}

/// Waits until the server uses under 5% of a CPU over half a second, no block is being
/// written in `blocks` (a merge that copies pages can use little CPU for seconds) and the
/// server says no merge is due (`strata_log_compaction_due`: between two merges the CPU is
/// quiet too), at most ten minutes, and returns the CPU it used meanwhile.
fn settle(agent: &ureq::Agent, server: &Server, blocks: &Path) -> anyhow::Result<Duration> {
    let process = &server.process;
    let from = process.cpu()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = from;
    let writing = || {
        std::fs::read_dir(blocks).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        })
    };
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = process.cpu()?;
        if now - last < Duration::from_millis(25)
            && !writing()
            && server_metric(agent, &server.base, "strata_log_compaction_due")? == 0.0
        {
            break;
        }
        last = now;
    }
    Ok(process.cpu()? - from)
}

/// One measured run: latency, the server's CPU and the block bytes it read.
fn measured(
    agent: &ureq::Agent,
    server: &Server,
    q: &LogQuery,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<QueryRun> {
    let bytes0 = bytes_read(agent, &server.base)?;
    let cpu0 = server.process.cpu()?;
    let (seconds, answer) = queries::run(agent, &server.base, q, start_ns, end_ns)?;
    let server_cpu_s = (server.process.cpu()? - cpu0).as_secs_f64();
    let bytes_read = bytes_read(agent, &server.base)? - bytes0;
    Ok(QueryRun {
        seconds,
        answer,
        bytes_read,
        server_cpu_s,
    })
}

fn bytes_read(agent: &ureq::Agent, base: &str) -> anyhow::Result<u64> {
    Ok(server_metric(agent, base, "strata_log_page_bytes_read_total")? as u64)
}

/// The value of one of the server's own metrics (0 when it has none yet).
fn server_metric(agent: &ureq::Agent, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = agent
        .get(&format!("{base}/metrics"))
        .call()?
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()?;
    Ok(queries::metric_value(&text, name).unwrap_or(0.0))
}

/// Writes each stream's lines to its file below `raw` (a multi-line entry as its lines) and
/// returns the bytes written. A finished set (its `.done` marker names the dataset) is kept.
fn write_raw(data: &LogData, raw: &Path) -> anyhow::Result<u64> {
    let marker = raw.join(".done");
    let name = format!("{:?}", data.spec());
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((spec, bytes)) = text.rsplit_once('\n')
        && spec == name
    {
        return bytes.parse().context("the .done marker's size");
    }
    let _ = std::fs::remove_dir_all(raw);
    let mut writers: BTreeMap<usize, BufWriter<std::fs::File>> = BTreeMap::new();
    let mut text = String::new();
    let mut bytes = 0u64;
    for i in 0..data.spec().lines {
        let info = data.line(i, &mut text);
        let w = match writers.entry(info.stream) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let path = raw.join(&data.streams()[info.stream].path);
                std::fs::create_dir_all(path.parent().context("a file in a directory")?)?;
                v.insert(BufWriter::with_capacity(
                    32 << 10,
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?,
                ))
            }
        };
        w.write_all(text.as_bytes())?;
        w.write_all(b"\n")?;
        bytes += text.len() as u64 + 1;
    }
    for (_, mut w) in writers {
        w.flush()?;
    }
    std::fs::write(&marker, format!("{name}\n{bytes}"))?;
    Ok(bytes)
}

/// The raw files, in stream order.
fn raw_files(data: &LogData, raw: &Path) -> Vec<PathBuf> {
    data.streams()
        .iter()
        .map(|s| raw.join(&s.path))
        .filter(|p| p.exists())
        .collect()
}

/// [`zstd_size`], kept beside the raw files (which are kept for the same dataset): `zstd -19`
/// of a gigabyte takes ten minutes of a core.
fn zstd_cached(raw: &Path, files: &[PathBuf], level: u32, max: u64) -> Option<(u64, u64)> {
    let cache = raw.join(format!(".zstd-{level}-{max}-every-file"));
    if let Ok(text) = std::fs::read_to_string(&cache)
        && let Some((fed, compressed)) = text.trim().split_once(' ')
        && let (Ok(fed), Ok(compressed)) = (fed.parse(), compressed.parse())
    {
        return Some((fed, compressed));
    }
    match zstd_size(files, level, max) {
        Ok((fed, compressed)) => {
            let _ = std::fs::write(&cache, format!("{fed} {compressed}"));
            Some((fed, compressed))
        }
        Err(e) => {
            eprintln!("logs: zstd -{level}: {e:#}");
            None
        }
    }
}

/// `zstd -LEVEL` of the files one after the other (at most `max` bytes of them, the same
/// share of each): the bytes read and the compressed bytes.
fn zstd_size(files: &[PathBuf], level: u32, max: u64) -> anyhow::Result<(u64, u64)> {
    let mut child = Command::new("zstd")
        .arg(format!("-{level}"))
        .arg("-T0")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running zstd (apt-get install zstd)")?;
    let mut stdin = child.stdin.take().context("zstd's stdin")?;
    let mut stdout = child.stdout.take().context("zstd's stdout")?;
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k as u64,
            }
        }
    });
    // Below `max`, the same share of every file (its first lines): a sample of every stream,
    // not of the first few.
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let share = (max as f64 / total.max(1) as f64).min(1.0);
    let mut fed = 0u64;
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let take = if share >= 1.0 {
            bytes.len()
        } else {
            (bytes.len() as f64 * share) as usize
        };
        stdin.write_all(&bytes[..take])?;
        fed += take as u64;
    }
    drop(stdin);
    let compressed = counter.join().map_err(|_| anyhow::anyhow!("zstd reader"))?;
    if !child.wait()?.success() {
        bail!("zstd -{level} failed");
    }
    Ok((fed, compressed))
}

/// The live load: lines stamped with the time at a fixed rate into many streams, on a fresh
/// server, its resident set read once a second.
fn live(options: &Options) -> anyhow::Result<LiveResult> {
    let dir = options.work.join("data-live");
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start(&options.server, &dir, Duration::from_secs(120))?;
    let lines = (options.live_rate * options.live_for.as_secs_f64()) as u64;
    let spec = LogSpec {
        seed: options.seed + 1,
        streams: options.live_streams,
        lines,
        start_ns: now_ns(),
        span_ns: options.live_for.as_nanos() as i64,
        lines_per_trace: options.lines_per_trace,
        needles: 0,
        round_robin: false,
    };
    let data = LogData::new(spec);
    // Batches of a tenth of a second's lines, over enough connections for the rate.
    let chunk_lines = (options.live_rate / 10.0).max(1.0) as u64;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let process = server.process;
    let sampler = std::thread::spawn(move || {
        let mut rss = Vec::new();
        loop {
            if let Ok(m) = process.memory() {
                rss.push(m.rss_bytes);
            }
            if stopped.recv_timeout(Duration::from_secs(1)).is_ok() {
                return rss;
            }
        }
    });
    let cpu0 = server.process.cpu()?;
    let outcome = push::push(
        &data,
        &PushOptions {
            url: format!("{}/loki/api/v1/push", server.base),
            workers: options.workers.max(8),
            chunk_lines,
            rate: Some(options.live_rate),
            retry: false,
            request_timeout: Duration::from_secs(30),
            deadline: Instant::now() + options.live_for + Duration::from_secs(60),
        },
    );
    let server_cpu_s = (server.process.cpu()? - cpu0).as_secs_f64();
    let _ = stop.send(());
    let rss_bytes = sampler.join().map_err(|_| anyhow::anyhow!("sampler"))?;
    let memory_end = server.process.memory()?;
    server.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "logs: live {} lines/s into {} streams: {} lines, {} refused, {} failed, peak RSS {} MiB",
        options.live_rate,
        options.live_streams,
        outcome.lines,
        outcome.refused,
        outcome.failed,
        memory_end.hwm_bytes >> 20
    );
    Ok(LiveResult {
        rate: options.live_rate,
        streams: options.live_streams,
        distinct_traces: lines.div_ceil(options.lines_per_trace.max(1)),
        push: outcome,
        server_cpu_s,
        rss_bytes,
        memory_end,
    })
}

/// The limit load: every line to another stream, more streams than the store holds.
fn limit(options: &Options) -> anyhow::Result<LimitResult> {
    let dir = options.work.join("data-limit");
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start(&options.server, &dir, Duration::from_secs(120))?;
    let spec = LogSpec {
        seed: options.seed + 2,
        streams: options.limit_streams,
        lines: options.limit_streams as u64,
        start_ns: now_ns() - 60_000_000_000,
        span_ns: 60_000_000_000,
        lines_per_trace: options.lines_per_trace,
        needles: 0,
        round_robin: true,
    };
    let data = LogData::new(spec);
    let outcome = push::push(
        &data,
        &PushOptions {
            url: format!("{}/loki/api/v1/push", server.base),
            workers: options.workers,
            chunk_lines: 5_000,
            rate: None,
            retry: false,
            request_timeout: Duration::from_secs(60),
            deadline: Instant::now() + Duration::from_secs(1800),
        },
    );
    let agent: ureq::Agent = crate::http_client(Duration::from_secs(30)).build().into();
    let streams_held = server_metric(&agent, &server.base, "strata_log_streams")? as u64;
    let memory_end = server.process.memory()?;
    server.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "logs: {} streams pushed: {} held, {} batches refused ({:?}), peak RSS {} MiB",
        options.limit_streams,
        streams_held,
        outcome.refused,
        outcome.examples.first(),
        memory_end.hwm_bytes >> 20
    );
    Ok(LimitResult {
        streams_pushed: options.limit_streams,
        streams_held,
        push: outcome,
        memory_end,
    })
}
