//! Pushing a generated dataset through Loki's push API, as a shipper does: batches of about
//! 1 MiB of lines (Promtail's and Alloy's default batch size), every stream of a batch in one
//! protobuf `PushRequest`, snappy-compressed, several connections at once.
//!
//! Lines are cut into chunks of consecutive line numbers (so in time order); each worker takes
//! the next chunk, builds its request and sends it, retrying a 429 or 503 with backoff (what
//! shippers do) up to [`RETRIES_MAX`] times. A catch-up push sends chunks back to back; a live
//! push sends chunk `c` at `start + c × chunk / rate` with the lines stamped with the time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strata_testkit::logdata::LogData;
use strata_wire::loki::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};

/// Sends of one batch before it counts as failed.
const RETRIES_MAX: u32 = 20;
/// Error messages kept verbatim.
const EXAMPLES_MAX: usize = 5;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `http://127.0.0.1:PORT/loki/api/v1/push`.
    pub url: String,
    /// Connections, each sending one batch at a time.
    pub workers: usize,
    /// Lines a batch (about 1 MiB of text).
    pub chunk_lines: u64,
    /// Lines per second for a live push; as fast as accepted when `None`.
    pub rate: Option<f64>,
    /// Retry a refused batch (429, 503) with backoff; a live push of a limit test does not.
    pub retry: bool,
    pub request_timeout: Duration,
    /// No batch is sent after this.
    pub deadline: Instant,
}

/// What a push did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PushOutcome {
    /// Lines and raw bytes (each line and a newline) of the batches acknowledged.
    pub lines: u64,
    pub raw_bytes: u64,
    /// Compressed request bytes sent for them.
    pub wire_bytes: u64,
    pub batches: u64,
    /// Answers 429 and 503 (each retried when retrying).
    pub refused: u64,
    /// Batches given up (too many refusals, another status, a transport error, the deadline).
    pub failed: u64,
    pub examples: Vec<String>,
    pub wall_s: f64,
}

/// Pushes every line of `data` and reports what was acknowledged.
pub fn push(data: &LogData, options: &PushOptions) -> PushOutcome {
    let labels: Vec<String> = data
        .streams()
        .iter()
        .map(|s| {
            let pairs: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        })
        .collect();
    let lines = data.spec().lines;
    let chunks = lines.div_ceil(options.chunk_lines.max(1));
    let next = AtomicU64::new(0);
    let total = Mutex::new(PushOutcome::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..options.workers.max(1) {
            scope.spawn(|| {
                let agent: ureq::Agent = crate::http_client(options.request_timeout)
                    .max_idle_connections_per_host(1)
                    .user_agent("strata-bench")
                    .build()
                    .into();
                let mut mine = PushOutcome::default();
                let mut text = String::new();
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks || Instant::now() >= options.deadline {
                        if c < chunks {
                            mine.failed += 1;
                        }
                        break;
                    }
                    if let Some(rate) = options.rate {
                        let due = started
                            + Duration::from_secs_f64((c * options.chunk_lines) as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let range = c * options.chunk_lines..((c + 1) * options.chunk_lines).min(lines);
                    let (body, raw) = batch(data, &labels, range.clone(), &mut text);
                    match send(&agent, options, &body, &mut mine) {
                        Ok(()) => {
                            mine.lines += range.end - range.start;
                            mine.raw_bytes += raw;
                            mine.wire_bytes += body.len() as u64;
                            mine.batches += 1;
                        }
                        Err(e) => {
                            mine.failed += 1;
                            if mine.examples.len() < EXAMPLES_MAX {
                                mine.examples.push(e);
                            }
                        }
                    }
                }
                let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
                total.lines += mine.lines;
                total.raw_bytes += mine.raw_bytes;
                total.wire_bytes += mine.wire_bytes;
                total.batches += mine.batches;
                total.refused += mine.refused;
                total.failed += mine.failed;
                for e in mine.examples {
                    if total.examples.len() < EXAMPLES_MAX {
                        total.examples.push(e);
                    }
                }
            });
        }
    });
    let mut total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    total.wall_s = started.elapsed().as_secs_f64();
    total
}

/// The snappy-compressed push request of lines `range`, and their raw bytes.
fn batch(
    data: &LogData,
    labels: &[String],
    range: std::ops::Range<u64>,
    text: &mut String,
) -> (Vec<u8>, u64) {
    let mut streams: BTreeMap<usize, Vec<EntryAdapter>> = BTreeMap::new();
    let mut raw = 0u64;
    for i in range {
        let info = data.line(i, text);
        raw += text.len() as u64 + 1;
        let structured_metadata = match info.trace_metadata {
            Some(trace) => vec![LabelPairAdapter {
                name: "trace_id".into(),
                value: data.trace_id(trace),
            }],
            None => Vec::new(),
        };
        streams.entry(info.stream).or_default().push(EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(info.ts_ns)),
            line: text.clone(),
            structured_metadata,
        });
    }
    let request = PushRequest {
        streams: streams
            .into_iter()
            .map(|(s, entries)| StreamAdapter {
                labels: labels[s].clone(),
                entries,
                hash: 0,
            })
            .collect(),
    };
    (request.encode_snappy(), raw)
}

/// Sends one batch, retrying refusals when the options say so.
fn send(
    agent: &ureq::Agent,
    options: &PushOptions,
    body: &[u8],
    tally: &mut PushOutcome,
) -> Result<(), String> {
    let mut backoff = Duration::from_millis(50);
    for _ in 0..RETRIES_MAX {
        let mut response = agent
            .post(&options.url)
            .header("Content-Type", "application/x-protobuf")
            .send(body)
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let refused = status.as_u16() == 429 || status.as_u16() == 503;
        if refused {
            tally.refused += 1;
        }
        if !(refused && options.retry) || Instant::now() + backoff >= options.deadline {
            return Err(format!("{status}: {}", text.trim()));
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(format!("refused {RETRIES_MAX} times"))
}
