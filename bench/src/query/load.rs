//! Loading hours of the dataset through remote write, generated as it is sent.
//!
//! Each shard (a thread with one connection) owns a fixed share of the series and sends their
//! samples scrape by scrape in requests of `batch_samples`. Shards meet at a barrier every
//! `lockstep_scrapes` scrapes, so none runs more than that far ahead of the others: a server
//! that refuses samples much older than the newest it holds (Prometheus refuses those an hour
//! behind) never sees one. A 429 or 5xx answer is retried after a pause; anything else that
//! is not 2xx ends the load.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use strata_wire::remote_write::encode::{EncodedLabels, Fields, RequestEncoder};

use crate::ingest::workload::series_labels;
use strata_testkit::dataset::{self, DatasetSpec};

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub write_url: String,
    pub hosts: usize,
    /// Which fleet.
    pub dataset: DatasetSpec,
    pub seed: u64,
    /// Time of scrape 0, ms since the epoch.
    pub start_ms: i64,
    /// Scrapes of every host (15 s apart).
    pub scrapes: u64,
    pub shards: usize,
    pub batch_samples: usize,
    pub lockstep_scrapes: u64,
    pub request_timeout: Duration,
}

/// What the load did.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct LoadResult {
    pub series: usize,
    pub samples: u64,
    pub requests: u64,
    pub retries: u64,
    pub seconds: f64,
}

/// Sends `body`, retrying 429 and 5xx answers up to `tries` times.
fn send(agent: &ureq::Agent, url: &str, body: &[u8], retries: &AtomicU64) -> anyhow::Result<()> {
    const TRIES: u32 = 20;
    for attempt in 0..TRIES {
        let result = agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(body);
        let retry = match result {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string().unwrap_or_default();
                match status {
                    200..=299 => return Ok(()),
                    429 | 500..=599 => format!("{status}: {}", text.trim()),
                    _ => bail!("{url} answered {status}: {}", text.trim()),
                }
            }
            Err(e) => format!("{e}"),
        };
        retries.fetch_add(1, Ordering::Relaxed);
        if attempt + 1 == TRIES {
            bail!("{url}: gave up after {TRIES} tries; last: {retry}");
        }
        std::thread::sleep(Duration::from_millis(100 << attempt.min(5)));
    }
    unreachable!("the loop returns or bails")
}

/// A shard's series: dataset index, host, and their labels encoded.
type Members = Vec<(usize, usize, EncodedLabels)>;

/// Every series dealt to `shards` shards, round robin.
fn deal(data: &dataset::Dataset, shards: usize) -> Vec<Members> {
    let mut members: Vec<Members> = (0..shards.max(1)).map(|_| Vec::new()).collect();
    let n = members.len();
    for (index, s) in data.series().iter().enumerate() {
        members[index % n].push((index, s.host, series_labels(s)));
    }
    members
}

/// The requests that carry on after the load: the `scrapes` scrapes of every series after
/// the last one loaded, in the same shards and batches, compressed and ready to send at a
/// fixed rate (the live traffic that follows a catch-up); and the samples in them.
pub fn continuation(options: &LoadOptions, scrapes: u64) -> (Vec<Vec<Vec<u8>>>, u64) {
    let data = options.dataset.build(options.hosts, options.seed);
    let offset_ms = options.start_ms - dataset::START_MS;
    let samples = data.series().len() as u64 * scrapes;
    let bodies = deal(&data, options.shards)
        .iter()
        .map(|shard| {
            let mut bodies = Vec::new();
            let mut request = RequestEncoder::new(Fields::Canonical);
            for k in options.scrapes..options.scrapes + scrapes {
                for (index, host, labels) in shard {
                    let t = data.timestamp(*host, k) + offset_ms;
                    request.sample(labels, t, data.value(*index, k));
                    if request.series_count() == options.batch_samples {
                        bodies.push(request.compress());
                        request.clear();
                    }
                }
            }
            if !request.is_empty() {
                bodies.push(request.compress());
            }
            bodies
        })
        .collect();
    (bodies, samples)
}

/// Loads the dataset into the server at `options.write_url`.
pub fn load(options: &LoadOptions) -> anyhow::Result<LoadResult> {
    let data = options.dataset.build(options.hosts, options.seed);
    let offset_ms = options.start_ms - dataset::START_MS;
    let members = deal(&data, options.shards);
    let shards = members.len();
    let barrier = Barrier::new(shards);
    let (requests, samples, retries) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = members
            .iter()
            .map(|shard| {
                let (data, barrier) = (&data, &barrier);
                let (requests, samples, retries) = (&requests, &samples, &retries);
                scope.spawn(move || -> anyhow::Result<()> {
                    let agent: ureq::Agent = crate::http_client(options.request_timeout)
                        .max_idle_connections_per_host(1)
                        .build()
                        .into();
                    let mut request = RequestEncoder::new(Fields::Canonical);
                    let flush = |request: &mut RequestEncoder| -> anyhow::Result<()> {
                        if request.is_empty() {
                            return Ok(());
                        }
                        send(&agent, &options.write_url, &request.compress(), retries)?;
                        requests.fetch_add(1, Ordering::Relaxed);
                        samples.fetch_add(request.series_count() as u64, Ordering::Relaxed);
                        request.clear();
                        Ok(())
                    };
                    let mut failed = None;
                    for k in 0..options.scrapes {
                        if failed.is_none() {
                            for (index, host, labels) in shard {
                                let t = data.timestamp(*host, k) + offset_ms;
                                request.sample(labels, t, data.value(*index, k));
                                if request.series_count() == options.batch_samples
                                    && let Err(e) = flush(&mut request)
                                {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        if (k + 1) % options.lockstep_scrapes.max(1) == 0 {
                            if failed.is_none()
                                && let Err(e) = flush(&mut request)
                            {
                                failed = Some(e);
                            }
                            // Every shard reaches every barrier, failed or not.
                            barrier.wait();
                        }
                    }
                    if failed.is_none() {
                        flush(&mut request)?;
                    }
                    failed.map_or(Ok(()), Err)
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a shard panicked"))??;
        }
        anyhow::Ok(())
    })?;
    Ok(LoadResult {
        series: data.series().len(),
        samples: samples.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}
