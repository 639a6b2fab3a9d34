//! The request bodies of a run, encoded and compressed before anything is measured.
//!
//! Prometheus's remote-write queue assigns each series to a shard by a hash of its labels and
//! appends every scraped sample to its shard's queue; a shard sends a request once it holds
//! `max_samples_per_send` samples (2,000 in Prometheus 2.42), one `TimeSeries` per sample.
//! [`Workload::build`] does the same with the dataset's scrapes in time order (every host's
//! scrape `k`, then scrape `k + 1`): a series always travels on the same shard, so its samples
//! arrive in order, and a request mixes series of many hosts. A phase's last request per shard
//! may be short: phases do not share requests.
//!
//! Bodies are the bytes prost's `WriteRequest { timeseries }.encode_to_vec()` would give (the
//! canonical form Prometheus sends too), written one `TimeSeries` at a time by `strata_wire`'s
//! streaming encoder from each series' labels encoded once, so a million series need not be
//! cloned per request, then snappy-compressed (block format).

use std::ops::Range;

use strata_wire::remote_write::encode::{EncodedLabels, Fields, RequestEncoder};

use strata_testkit::dataset::{self, Dataset, DatasetSpec, SplitMix64};

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Hosts of the dataset (about 517 series each).
    pub hosts: usize,
    /// Which fleet.
    pub dataset: DatasetSpec,
    /// Seed of the dataset.
    pub seed: u64,
    /// Timestamp of scrape 0 (before each host's phase of up to 15 s), in ms since the epoch.
    pub start_ms: i64,
    /// Connections, each carrying a fixed share of the series.
    pub shards: usize,
    /// Samples per request (the last of a phase may hold fewer).
    pub batch_samples: usize,
    /// Scrapes sent as fast as possible, after scrape 0.
    pub throughput_scrapes: u64,
    /// Requests per shard in the fixed-load phase.
    pub latency_requests_per_shard: usize,
}

/// The requests of one phase.
#[derive(Debug, Default)]
pub struct Phase {
    /// Compressed request bodies, per shard, in sending order.
    pub shards: Vec<Vec<Vec<u8>>>,
    /// Samples in all the requests.
    pub samples: u64,
    /// Compressed bytes in all the requests.
    pub bytes: u64,
    /// Scrapes the phase covers.
    pub scrapes: Range<u64>,
}

impl Phase {
    /// Number of requests.
    pub fn requests(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }
}

/// Every request of a run.
#[derive(Debug)]
pub struct Workload {
    /// Series in the dataset: every one is active after the create phase.
    pub series: usize,
    /// Scrape 0: creates every series.
    pub create: Phase,
    /// Sent as fast as possible.
    pub throughput: Phase,
    /// Sent at a fixed rate.
    pub latency: Phase,
}

/// One shard's series: their dataset index, host, and their labels encoded.
struct ShardSeries {
    members: Vec<(usize, usize, EncodedLabels)>,
}

/// Accumulates one shard's samples into requests of `batch_samples`.
struct Batcher<'a> {
    batch_samples: usize,
    request: RequestEncoder,
    phase: &'a mut ShardPhase,
}

/// One shard's part of a phase, while it is built.
#[derive(Default)]
struct ShardPhase {
    bodies: Vec<Vec<u8>>,
    /// Samples in each body.
    counts: Vec<u64>,
}

impl Batcher<'_> {
    fn push(&mut self, labels: &EncodedLabels, t: i64, v: f64) {
        self.request.sample(labels, t, v);
        if self.request.series_count() == self.batch_samples {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.request.is_empty() {
            return;
        }
        self.phase.counts.push(self.request.series_count() as u64);
        self.phase.bodies.push(self.request.compress());
        self.request.clear();
    }
}

impl Workload {
    /// Generates the dataset and encodes every request, on up to `threads` threads.
    pub fn build(config: &WorkloadConfig, threads: usize) -> Workload {
        assert!(config.shards > 0 && config.batch_samples > 0 && config.hosts > 0);
        let data = config.dataset.build(config.hosts, config.seed);
        let mut shards = assign_shards(&data, config);

        let throughput_end = 1 + config.throughput_scrapes;
        // Enough scrapes that every shard fills its fixed-load requests; the smallest shard
        // decides.
        let smallest = shards
            .iter()
            .map(|s| s.members.len())
            .min()
            .unwrap_or(0)
            .max(1);
        let latency_samples = config.latency_requests_per_shard * config.batch_samples;
        let latency_scrapes = latency_samples.div_ceil(smallest) as u64;
        let ranges = [
            0..1,
            1..throughput_end,
            throughput_end..throughput_end + latency_scrapes,
        ];
        let built = build_shards(&data, &mut shards, &ranges, config, threads);

        let mut phases: [Phase; 3] = Default::default();
        for (p, phase) in phases.iter_mut().enumerate() {
            phase.scrapes = ranges[p].clone();
        }
        for shard in built {
            for (p, (phase, mut part)) in phases.iter_mut().zip(shard).enumerate() {
                if p == 2 {
                    // The fixed-load phase keeps only the requests it sends.
                    part.bodies.truncate(config.latency_requests_per_shard);
                    part.counts.truncate(config.latency_requests_per_shard);
                }
                phase.samples += part.counts.iter().sum::<u64>();
                phase.bytes += part.bodies.iter().map(|b| b.len() as u64).sum::<u64>();
                phase.shards.push(part.bodies);
            }
        }
        let [create, throughput, latency] = phases;
        Workload {
            series: data.series().len(),
            create,
            throughput,
            latency,
        }
    }
}

/// Spreads the dataset's series over the shards, each with its labels encoded.
fn assign_shards(data: &Dataset, config: &WorkloadConfig) -> Vec<ShardSeries> {
    let mut shards: Vec<ShardSeries> = (0..config.shards)
        .map(|_| ShardSeries {
            members: Vec::new(),
        })
        .collect();
    for (index, series) in data.series().iter().enumerate() {
        // Prometheus shards by a hash of the labels; any hash spreads series the same way.
        let shard = SplitMix64::new(config.seed ^ index as u64).next_u64() % config.shards as u64;
        shards[shard as usize]
            .members
            .push((index, series.host, series_labels(series)));
    }
    shards
}

/// The series' labels encoded in the canonical form, copied into every request the series is
/// in.
pub(crate) fn series_labels(series: &dataset::GenSeries) -> EncodedLabels {
    EncodedLabels::of(
        Fields::Canonical,
        series.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    )
}

/// Encodes every shard's requests for each range of scrapes, shards spread over `threads`
/// threads; the results are in shard order.
fn build_shards(
    data: &Dataset,
    shards: &mut [ShardSeries],
    ranges: &[Range<u64>; 3],
    config: &WorkloadConfig,
    threads: usize,
) -> Vec<[ShardPhase; 3]> {
    let offset_ms = config.start_ms - dataset::START_MS;
    let threads = threads.clamp(1, shards.len());
    std::thread::scope(|scope| {
        let mut chunks: Vec<Vec<&mut ShardSeries>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, shard) in shards.iter_mut().enumerate() {
            chunks[i % threads].push(shard);
        }
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|shard| build_shard(data, shard, ranges, config, offset_ms))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Put the shards back in their order: shard i went to thread i % threads.
        let mut per_thread: Vec<std::vec::IntoIter<[ShardPhase; 3]>> = handles
            .into_iter()
            .map(|h| h.join().expect("a build thread panicked").into_iter())
            .collect();
        (0..config.shards)
            .map(|i| {
                per_thread[i % threads]
                    .next()
                    .expect("one result per shard")
            })
            .collect()
    })
}

/// Encodes one shard's requests for each range of scrapes.
fn build_shard(
    data: &Dataset,
    shard: &mut ShardSeries,
    ranges: &[Range<u64>; 3],
    config: &WorkloadConfig,
    offset_ms: i64,
) -> [ShardPhase; 3] {
    let mut out: [ShardPhase; 3] = Default::default();
    for (range, phase) in ranges.iter().zip(out.iter_mut()) {
        let mut batcher = Batcher {
            batch_samples: config.batch_samples,
            request: RequestEncoder::with_capacity(Fields::Canonical, config.batch_samples * 160),
            phase,
        };
        for k in range.clone() {
            // Members are in dataset order, host by host: compute each host's timestamp once.
            let mut host = usize::MAX;
            let mut timestamp = 0;
            for (index, member_host, labels) in &shard.members {
                if *member_host != host {
                    host = *member_host;
                    timestamp = data.timestamp(host, k) + offset_ms;
                }
                batcher.push(labels, timestamp, data.value(*index, k));
            }
        }
        batcher.flush();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use strata_wire::remote_write::v1::{WriteRequest, decode_body};

    fn decode(body: &[u8]) -> WriteRequest {
        decode_body(body, 128 << 20).expect("strata decodes the body")
    }

    fn config() -> WorkloadConfig {
        WorkloadConfig {
            hosts: 3,
            dataset: DatasetSpec::Generated,
            seed: 7,
            start_ms: 1_800_000_000_000,
            shards: 4,
            batch_samples: 100,
            throughput_scrapes: 2,
            latency_requests_per_shard: 5,
        }
    }

    #[test]
    fn bodies_are_what_prost_encodes_and_strata_decodes() {
        let w = Workload::build(&config(), 2);
        let body = &w.create.shards[0][0];
        let request = decode(body);
        assert_eq!(request.timeseries.len(), 100);
        let raw = strata_wire::snappy::decompress(body, 128 << 20).unwrap();
        assert_eq!(
            WriteRequest::decode(raw.as_slice())
                .unwrap()
                .encode_to_vec(),
            raw
        );
        let labels = &request.timeseries[0].labels;
        assert_eq!(labels[0].name, "__name__");
        assert!(labels.iter().any(|l| l.name == "instance"));
    }

    #[test]
    fn phases_cover_every_series_in_time_order() {
        let c = config();
        let w = Workload::build(&c, 1);
        assert_eq!(w.create.samples, w.series as u64);
        assert_eq!(w.throughput.samples, w.series as u64 * c.throughput_scrapes);
        assert_eq!(
            w.latency.requests(),
            c.shards * c.latency_requests_per_shard
        );
        assert_eq!(
            w.latency.samples,
            (w.latency.requests() * c.batch_samples) as u64
        );
        // Within a shard, each series' timestamps increase from request to request.
        for shard in 0..c.shards {
            let mut last = std::collections::HashMap::new();
            let phases = [&w.create, &w.throughput, &w.latency];
            for body in phases.iter().flat_map(|p| &p.shards[shard]) {
                for ts in decode(body).timeseries {
                    let key: Vec<_> = ts.labels.iter().map(|l| l.value.clone()).collect();
                    let t = ts.samples[0].timestamp;
                    if let Some(prev) = last.insert(key, t) {
                        assert!(t > prev, "timestamps go back in shard {shard}");
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_start_at_the_configured_time() {
        let c = config();
        let w = Workload::build(&c, 1);
        for body in w.create.shards.iter().flatten() {
            for ts in decode(body).timeseries {
                let t = ts.samples[0].timestamp;
                assert!((c.start_ms..c.start_ms + 15_010).contains(&t), "{t}");
            }
        }
    }
}
