//! Prometheus remote write 1.0 of node_exporter-like hosts, generated as it is sent.
//!
//! The series and their values are the dataset of the engine's benchmarks
//! (`strata_testkit::dataset`): about 517 series a host (counters,
//! `*_seconds_total`, gauges that stay constant or random-walk, histogram buckets), every
//! value computed directly from the seed, the series and the scrape number. On top of it:
//!
//! - a `run` label on every series (one run's series never mix with another's, and the
//!   verification can count them);
//! - `extra_series` more series a host, `strata_bench_requests_total{route="/r/N"}`, to raise
//!   label cardinality;
//! - churn: with `churn` set, each host gets a new `pod` label value every `churn` of data
//!   time (hosts staggered), so its series are replaced, as when pods restart.
//!
//! Series are spread over the workers by a hash, as Prometheus spreads them over its shards;
//! a worker sends its own series round after round (scrape `k` of each, then `k + 1`), in
//! requests of `batch` samples. One request in flight per worker keeps each series' samples
//! in order.
//!
//! Timestamps: in **real time**, a round's samples carry the time the request is due (plus
//! jitter), and each round is strictly later than the one before, so samples are never
//! duplicates; the send rate sets how often a series gets a sample. In **backfill**, round
//! `k` of a host is at `start + phase + k × interval + jitter`, and the run ends when every
//! round up to `end` was sent. Jitter: one scrape in ten is late by 1 ms to `jitter_ms`, as
//! real scrapes are.
//!
//! Bodies are written by `strata_wire`'s streaming encoder, every field on the wire: each
//! series' labels are encoded once, and a sample costs a copy of those bytes and a few for the
//! value and timestamp, then snappy (block format) compresses the request.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};
use strata_wire::remote_write::encode::{EncodedLabels, Fields, RequestEncoder};

use super::{Generator, Request, Scenario};
use crate::load::client::Endpoint;
use strata_testkit::dataset::{Dataset, DatasetSpec, SplitMix64};

/// Where the timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// The time each request is due.
    RealTime,
    /// A grid from `start_ms` to `end_ms`, sent as fast as the schedule allows.
    Backfill { start_ms: i64, end_ms: i64 },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct WriteConfig {
    pub hosts: usize,
    /// Which fleet.
    pub dataset: DatasetSpec,
    pub seed: u64,
    /// Samples per request.
    pub batch: usize,
    /// Scrape interval (backfill grid; in real time, the default rate's).
    pub interval_ms: i64,
    /// Largest delay of a late scrape; 0 for none.
    pub jitter_ms: i64,
    pub timing: Timing,
    /// The value of the `run` label.
    pub run: String,
    /// Extra high-cardinality series per host.
    pub extra_series: usize,
    /// Data time after which a host's series are replaced; `None` for no churn.
    pub churn_ms: Option<i64>,
    /// Series whose acknowledged samples are all kept, to be checked after the run.
    pub verify_series: usize,
}

/// Where a member's values come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Series `index` of the dataset.
    Dataset(usize),
    /// Extra series `route` of the host: a counter.
    Route(usize),
}

/// A series of the universe (every worker's together).
#[derive(Debug, Clone)]
struct SeriesDef {
    host: usize,
    source: Source,
    /// Label pairs sorted by name, `run` included, `pod` not.
    labels: Vec<(String, String)>,
}

/// The write scenario.
#[derive(Debug)]
pub struct WriteScenario {
    pub endpoint: Endpoint,
    pub config: WriteConfig,
    data: Arc<Dataset>,
    series: Arc<Vec<SeriesDef>>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl WriteScenario {
    /// The scenario: builds the labels of every series (the values are computed as sent).
    pub fn new(endpoint: Endpoint, config: WriteConfig) -> WriteScenario {
        assert!(config.batch > 0 && config.hosts > 0 && config.interval_ms > 0);
        let data = config.dataset.build(config.hosts, config.seed);
        let mut series =
            Vec::with_capacity(data.series().len() + config.hosts * config.extra_series);
        for (index, s) in data.series().iter().enumerate() {
            let mut labels = s.labels.clone();
            labels.push(("run".into(), config.run.clone()));
            labels.sort();
            series.push(SeriesDef {
                host: s.host,
                source: Source::Dataset(index),
                labels,
            });
        }
        for host in 0..config.hosts {
            // The extra series carry the host's identifying labels.
            let instance = data
                .series()
                .iter()
                .find(|s| s.host == host)
                .and_then(|s| s.labels.iter().find(|(n, _)| n == "instance"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| format!("host-{host}"));
            for route in 0..config.extra_series {
                let mut labels = vec![
                    ("__name__".into(), "strata_bench_requests_total".into()),
                    ("instance".into(), instance.clone()),
                    ("job".into(), "strata-bench".into()),
                    ("route".into(), format!("/r/{route}")),
                    ("run".into(), config.run.clone()),
                ];
                labels.sort();
                series.push(SeriesDef {
                    host,
                    source: Source::Route(route),
                    labels,
                });
            }
        }
        let headers: Arc<[(HeaderName, HeaderValue)]> = Arc::from(vec![
            (
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            ),
            (
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_static("snappy"),
            ),
            (
                HeaderName::from_static("x-prometheus-remote-write-version"),
                HeaderValue::from_static("0.1.0"),
            ),
            (
                hyper::header::USER_AGENT,
                HeaderValue::from_static("strata-bench"),
            ),
        ]);
        WriteScenario {
            endpoint,
            config,
            data: Arc::new(data),
            series: Arc::new(series),
            headers,
        }
    }

    /// Series in the universe (at one time; churn replaces them).
    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// Requests per second that give every series one sample per scrape interval.
    pub fn natural_rate(&self) -> f64 {
        self.series.len() as f64 * 1000.0
            / self.config.interval_ms as f64
            / self.config.batch as f64
    }

    /// Which worker of `workers` owns series `i`.
    fn owner(&self, i: usize, workers: usize) -> usize {
        (SplitMix64::new(self.config.seed ^ (i as u64).wrapping_mul(0x9E37_79B9)).next_u64()
            % workers as u64) as usize
    }

    /// Whether series `i` is one whose samples are kept for the check.
    fn verified(&self, i: usize) -> bool {
        let n = self.config.verify_series;
        n > 0 && i.is_multiple_of(self.series.len().div_ceil(n).max(1))
    }
}

impl Scenario for WriteScenario {
    fn name(&self) -> &str {
        "write"
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn generator(&self, worker: usize, workers: usize) -> Box<dyn Generator> {
        let mut members = Vec::new();
        for i in 0..self.series.len() {
            if self.owner(i, workers) == worker {
                members.push(Member {
                    def: i,
                    generation: u64::MAX,
                    encoded: EncodedLabels::new(Fields::Every),
                    acked_generation: u64::MAX,
                    last_ts: i64::MIN,
                    kept: self.verified(i).then(Vec::new),
                });
            }
        }
        let rounds = match self.config.timing {
            Timing::RealTime => u64::MAX,
            Timing::Backfill { start_ms, end_ms } => {
                ((end_ms - start_ms).max(0) / self.config.interval_ms) as u64 + 1
            }
        };
        Box::new(WriteGenerator {
            config: self.config.clone(),
            data: self.data.clone(),
            series: self.series.clone(),
            headers: self.headers.clone(),
            members,
            position: 0,
            rounds,
            uri: self.endpoint.uri(),
            request: RequestEncoder::new(Fields::Every),
            pending: Vec::new(),
            ledger: Ledger::default(),
        })
    }
}

/// A worker's series.
struct Member {
    /// Index into the universe.
    def: usize,
    /// The churn generation `encoded` holds the labels of.
    generation: u64,
    /// The series' labels, encoded.
    encoded: EncodedLabels,
    /// The newest generation a request that was acknowledged carried.
    acked_generation: u64,
    /// The timestamp of the series' last sample generated.
    last_ts: i64,
    /// Acknowledged samples, for the series that are checked.
    kept: Option<Vec<(i64, f64)>>,
}

/// What one worker had acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Distinct series (each churn generation its own) with an acknowledged sample.
    pub series: u64,
    /// Acknowledged samples.
    pub samples: u64,
    /// The checked series: labels and every acknowledged sample.
    pub kept: Vec<KeptSeries>,
    /// The newest acknowledged timestamp.
    pub last_ms: i64,
}

/// A checked series: its labels and every acknowledged sample, `(ms, value)`.
pub type KeptSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// One sample of the request in flight, for the ledger.
struct Pending {
    member: u32,
    generation: u64,
    ts: i64,
    value: f64,
}

struct WriteGenerator {
    config: WriteConfig,
    data: Arc<Dataset>,
    series: Arc<Vec<SeriesDef>>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    members: Vec<Member>,
    /// Samples generated so far: member `position % len` of round `position / len` is next.
    position: u64,
    /// Rounds to send (backfill), or `u64::MAX`.
    rounds: u64,
    uri: hyper::Uri,
    request: RequestEncoder,
    pending: Vec<Pending>,
    ledger: Ledger,
}

/// A series' labels (sorted by name) with `pod`, when there is one, in its sorted place.
fn with_pod<'a>(
    labels: &'a [(String, String)],
    pod: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    let split = match pod {
        Some(_) => labels.partition_point(|(name, _)| name.as_str() <= "pod"),
        None => labels.len(),
    };
    let (before, after) = labels.split_at(split);
    let pair = |(n, v): &'a (String, String)| (n.as_str(), v.as_str());
    before
        .iter()
        .map(pair)
        .chain(pod.map(|p| ("pod", p)))
        .chain(after.iter().map(pair))
}

impl WriteGenerator {
    fn value(&self, def: &SeriesDef, k: u64) -> f64 {
        match def.source {
            Source::Dataset(index) => self.data.value(index, k),
            Source::Route(route) => {
                // A counter of whole requests, a few a scrape, more on the first routes.
                let per = 1 + (route % 13) as u64;
                let u = SplitMix64::new(
                    self.config.seed ^ ((def.host as u64) << 32) ^ route as u64 ^ k.rotate_left(17),
                )
                .next_u64()
                    % per;
                (k * per + u) as f64
            }
        }
    }

    /// One scrape in ten is late by 1 to `jitter_ms` ms.
    fn jitter(&self, host: usize, k: u64) -> i64 {
        if self.config.jitter_ms <= 0 {
            return 0;
        }
        let roll = SplitMix64::new(self.config.seed ^ (host as u64).rotate_left(40) ^ k).next_u64();
        if roll.is_multiple_of(10) {
            1 + ((roll >> 32) % self.config.jitter_ms as u64) as i64
        } else {
            0
        }
    }

    /// The timestamp of round `k` of a series of `host` whose last sample was at `last_ts`.
    fn timestamp(&self, host: usize, k: u64, last_ts: i64, due_ms: i64) -> i64 {
        match self.config.timing {
            // Strictly after the series' last sample: never a duplicate timestamp.
            Timing::RealTime => (due_ms + self.jitter(host, k)).max(last_ts + 1),
            Timing::Backfill { start_ms, .. } => {
                let phase = (SplitMix64::new(self.config.seed ^ host as u64).next_u64()
                    % self.config.interval_ms as u64) as i64;
                start_ms + phase + k as i64 * self.config.interval_ms + self.jitter(host, k)
            }
        }
    }
}

impl Generator for WriteGenerator {
    fn next(&mut self, _index: u64, due_ms: i64) -> Option<Request> {
        let len = self.members.len() as u64;
        if len == 0 || self.position >= self.rounds.saturating_mul(len) {
            return None;
        }
        self.request.clear();
        self.pending.clear();
        let mut samples = 0;
        // A request may hold several rounds when the worker has fewer series than the batch
        // (as a sender that fell behind sends several scrapes at once).
        let batch = self.config.batch as u64;
        let series = Arc::clone(&self.series);
        while samples < batch && self.position < self.rounds.saturating_mul(len) {
            let slot = (self.position % len) as usize;
            let k = self.position / len;
            let def = &series[self.members[slot].def];
            let ts = self.timestamp(def.host, k, self.members[slot].last_ts, due_ms);
            let value = self.value(def, k);
            let generation = match self.config.churn_ms {
                Some(churn) if churn > 0 => {
                    let stagger = (SplitMix64::new(self.config.seed ^ 0xC0FFEE ^ def.host as u64)
                        .next_u64()
                        % churn as u64) as i64;
                    (ts + stagger).div_euclid(churn) as u64
                }
                _ => 0,
            };
            let member = &mut self.members[slot];
            member.last_ts = ts;
            if member.generation != generation {
                let pod = self
                    .config
                    .churn_ms
                    .map(|_| format!("{}-{generation}", def.host));
                member.encoded.encode(with_pod(&def.labels, pod.as_deref()));
                member.generation = generation;
            }
            self.request.sample(&member.encoded, ts, value);
            self.pending.push(Pending {
                member: slot as u32,
                generation,
                ts,
                value,
            });
            samples += 1;
            self.position += 1;
        }
        let body = self.request.compress();
        Some(Request {
            method: Method::POST,
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body: Bytes::from(body),
            samples,
        })
    }

    fn finished(&mut self, acknowledged: bool) {
        if !acknowledged {
            return;
        }
        for p in &self.pending {
            let member = &mut self.members[p.member as usize];
            if member.acked_generation != p.generation {
                member.acked_generation = p.generation;
                self.ledger.series += 1;
                // A checked series keeps the samples of its newest generation only.
                if let Some(kept) = &mut member.kept {
                    kept.clear();
                }
            }
            if let Some(kept) = &mut member.kept {
                kept.push((p.ts, p.value));
            }
            self.ledger.last_ms = self.ledger.last_ms.max(p.ts);
        }
        self.ledger.samples += self.pending.len() as u64;
    }

    fn ledger(&mut self) -> Option<Ledger> {
        let mut ledger = std::mem::take(&mut self.ledger);
        for m in &mut self.members {
            if let Some(kept) = m.kept.take() {
                if kept.is_empty() {
                    continue;
                }
                let mut labels = self.series[m.def].labels.clone();
                if self.config.churn_ms.is_some() {
                    // Only the newest generation is checked: its pod label is known here.
                    labels.push((
                        "pod".into(),
                        format!("{}-{}", self.series[m.def].host, m.acked_generation),
                    ));
                    labels.sort();
                }
                ledger.kept.push((labels, kept));
            }
        }
        Some(ledger)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use strata_wire::remote_write::v1::decode_body;

    fn config(timing: Timing) -> WriteConfig {
        WriteConfig {
            hosts: 3,
            dataset: DatasetSpec::Generated,
            seed: 7,
            batch: 500,
            interval_ms: 15_000,
            jitter_ms: 5,
            timing,
            run: "t1".into(),
            extra_series: 4,
            churn_ms: None,
            verify_series: 10,
        }
    }

    fn scenario(c: WriteConfig) -> WriteScenario {
        WriteScenario::new(
            Endpoint::parse("http://127.0.0.1:1/api/v1/write", false).unwrap(),
            c,
        )
    }

    /// Every sample of `requests` bodies of each of `workers` workers, per label set.
    fn written(
        s: &WriteScenario,
        workers: usize,
        requests: usize,
        due: impl Fn(usize) -> i64,
    ) -> HashMap<String, Vec<(i64, f64)>> {
        let mut out: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
        for w in 0..workers {
            let mut g = s.generator(w, workers);
            for j in 0..requests {
                let Some(r) = g.next(j as u64, due(j)) else {
                    break;
                };
                let decoded = decode_body(&r.body, 128 << 20).expect("a valid remote-write body");
                assert_eq!(decoded.timeseries.len() as u64, r.samples);
                for ts in decoded.timeseries {
                    let key: Vec<String> = ts
                        .labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect();
                    let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
                    let mut sorted = names.clone();
                    sorted.sort();
                    assert_eq!(names, sorted, "labels are sent sorted");
                    for sample in ts.samples {
                        out.entry(key.join(","))
                            .or_default()
                            .push((sample.timestamp, sample.value));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_bodies() {
        let a = scenario(config(Timing::RealTime));
        let b = scenario(config(Timing::RealTime));
        let (mut ga, mut gb) = (a.generator(1, 4), b.generator(1, 4));
        for j in 0..5 {
            assert_eq!(
                ga.next(j, 1_000_000 + j as i64).unwrap().body,
                gb.next(j, 1_000_000 + j as i64).unwrap().body
            );
        }
        let mut other = config(Timing::RealTime);
        other.seed = 8;
        let c = scenario(other);
        assert_ne!(
            a.generator(1, 4).next(0, 5).unwrap().body,
            c.generator(1, 4).next(0, 5).unwrap().body
        );
    }

    #[test]
    fn every_series_goes_to_one_worker_in_order_and_counters_only_grow() {
        let s = scenario(config(Timing::RealTime));
        assert_eq!(s.series(), 3 * 517 + 3 * 4);
        // Twenty requests of 500 per worker, due a millisecond apart: several rounds of each
        // series, some in one request.
        let got = written(&s, 3, 20, |j| 1_700_000_000_000 + j as i64);
        assert_eq!(got.len(), s.series(), "every series written");
        let mut counters = 0;
        for (key, samples) in &got {
            assert!(key.contains("run=t1"));
            assert!(samples.len() >= 2, "{key}: {} samples", samples.len());
            assert!(
                samples.windows(2).all(|w| w[0].0 < w[1].0),
                "{key}: timestamps strictly increase"
            );
            if key.contains("_total") && !key.contains("node_time") {
                counters += 1;
                assert!(
                    samples.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{key}: a counter went down: {samples:?}"
                );
            }
        }
        assert!(counters > 100, "{counters} counters checked");
        // Gauges move: the dataset's load averages are not all constant.
        let moving = got
            .iter()
            .filter(|(k, _)| k.contains("node_load1,") || k.starts_with("__name__=node_load1,"))
            .filter(|(_, v)| v.windows(2).any(|w| w[0].1 != w[1].1))
            .count();
        assert!(moving > 0, "some load gauge moved");
    }

    #[test]
    fn backfill_writes_the_grid_and_ends() {
        let start = 1_700_000_000_000;
        let c = WriteConfig {
            batch: 2000,
            ..config(Timing::Backfill {
                start_ms: start,
                end_ms: start + 10 * 15_000,
            })
        };
        let s = scenario(c);
        let got = written(&s, 2, 10_000, |_| 0);
        for (key, samples) in &got {
            assert_eq!(samples.len(), 11, "{key}: rounds 0 to 10");
            for (k, (t, _)) in samples.iter().enumerate() {
                let on_grid = start + k as i64 * 15_000;
                assert!(
                    (on_grid..on_grid + 15_000 + 5).contains(t),
                    "{key}: round {k} at {t}"
                );
            }
            // Jitter keeps the interval within 5 ms of 15 s.
            assert!(
                samples
                    .windows(2)
                    .all(|w| (w[1].0 - w[0].0 - 15_000).abs() <= 5)
            );
        }
    }

    #[test]
    fn churn_replaces_series_and_extra_series_add_cardinality() {
        let mut c = config(Timing::RealTime);
        c.churn_ms = Some(60_000);
        c.extra_series = 50;
        let s = scenario(c);
        // Ten minutes of data time over the run: every host churns several times.
        let got = written(&s, 1, 60, |j| 1_700_000_000_000 + j as i64 * 10_000);
        let routes = got.keys().filter(|k| k.contains("route=/r/")).count();
        assert!(routes >= 3 * 50, "{routes} route series");
        let pods: std::collections::HashSet<&str> = got
            .keys()
            .filter_map(|k| k.split(',').find(|l| l.starts_with("pod=")))
            .collect();
        assert!(pods.len() > 3 * 5, "pods seen: {pods:?}");
    }

    #[test]
    fn the_ledger_counts_only_acknowledged_requests() {
        let s = scenario(config(Timing::RealTime));
        let mut g = s.generator(0, 1);
        let r = g.next(0, 1_000).unwrap();
        g.finished(true);
        let _lost = g.next(1, 2_000).unwrap();
        g.finished(false);
        let ledger = g.ledger().unwrap();
        assert_eq!(ledger.samples, r.samples);
        assert_eq!(
            ledger.series, r.samples,
            "the first request holds distinct series"
        );
        assert!(!ledger.kept.is_empty());
        assert!(
            ledger
                .kept
                .iter()
                .all(|(_, samples)| samples.iter().all(|(t, _)| *t < 2_000))
        );
    }
}
