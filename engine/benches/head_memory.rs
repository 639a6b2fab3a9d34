//! Head memory per active series, at a million series.
//!
//! Appends 4 scrapes of 1,000,000 series (`STRATA_HEAD_SERIES` changes the count) through the
//! public API and divides the growth of the process's resident memory by the number of
//! series. The series look like a Kubernetes fleet's: 2,000 hosts of 500 series each, 10 labels
//! per series (`__name__` from 375 metric names, `job`, `instance`, `node`, `cluster`,
//! `namespace`, `region`, `env`, and two dimensions such as `cpu`/`mode`, `device`/`fstype`,
//! `le`/`handler` or `code`/`method`), with values of realistic lengths.
//!
//! The bench builds each label set from shared strings and drops it after its batch, so what
//! stays resident is the engine's: series, interned strings, indexes and chunks. The WAL is
//! written with `FsyncMode::Interval` in batches of 10,000 samples; its page cache is not part
//! of resident memory.
//!
//! Run with `cargo bench -p strata-engine --bench head_memory`.

use strata_testkit::host;

use arcstr::ArcStr;
use std::time::{Duration, Instant};

use strata_engine::labels::{Label, Labels};
use strata_engine::{Db, FsyncMode, Options};

const SERIES_DEFAULT: u64 = 1_000_000;
const SERIES_PER_HOST: usize = 500;
const SCRAPES: u64 = 4;
const SCRAPE_INTERVAL_MS: i64 = 15_000;
const BATCH_SAMPLES: usize = 10_000;
/// Bytes of resident memory per series that the head may use.
const TARGET_BYTES_PER_SERIES: f64 = 2048.0;

#[rustfmt::skip]
const PREFIXES: [&str; 8] = [
    "node", "container", "kube", "http", "grpc", "process", "go", "apiserver",
];
#[rustfmt::skip]
const SUBSYSTEMS: [&str; 12] = [
    "network", "filesystem", "memory", "cpu", "disk", "server", "client", "scheduler",
    "storage", "runtime", "pod", "request",
];
/// Metric name endings per dimension family; no ending appears in two families.
#[rustfmt::skip]
const SUFFIXES: [[&str; 4]; 4] = [
    ["seconds_total", "throttled_seconds_total", "usage_ratio", "cpu_seconds_total"],
    ["bytes_total", "read_bytes_total", "written_bytes_total", "avail_bytes"],
    ["duration_seconds_bucket", "size_bytes_bucket", "latency_seconds_bucket", "wait_seconds_bucket"],
    ["requests_total", "errors_total", "responses_total", "retries_total"],
];
const METRIC_NAMES: usize = 8 * 12 * 4;
/// Two dimension labels per family: the first varies between a metric's series on one host.
const DIMENSIONS: [(&str, &str); 4] = [
    ("cpu", "mode"),
    ("device", "fstype"),
    ("le", "handler"),
    ("code", "method"),
];
const CPUS: [&str; 4] = ["0", "1", "2", "3"];
const MODES: [&str; 8] = [
    "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice",
];
const DEVICES: [&str; 4] = ["nvme0n1", "nvme1n1", "dm-0", "sda"];
const FSTYPES: [&str; 3] = ["ext4", "xfs", "overlay"];
const BOUNDS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const HANDLERS: [&str; 5] = [
    "/api/v1/query",
    "/metrics",
    "/healthz",
    "/api/v1/write",
    "/",
];
const CODES: [&str; 4] = ["200", "400", "500", "503"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
#[rustfmt::skip]
const JOBS: [&str; 8] = [
    "node-exporter", "kubelet", "cadvisor", "kube-state-metrics", "apiserver", "etcd",
    "coredns", "ingress-nginx",
];
#[rustfmt::skip]
const CLUSTERS: [&str; 8] = [
    "prod-eu-west-1-a", "prod-eu-west-1-b", "prod-us-east-1-a", "prod-us-east-1-b",
    "prod-ap-south-1-a", "staging-eu-west-1", "staging-us-east-1", "dev-eu-west-1",
];
#[rustfmt::skip]
const NAMESPACES: [&str; 6] = [
    "monitoring", "kube-system", "default", "payments", "checkout", "search",
];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];

/// Every string a label set is built from, allocated once, before the baseline is measured.
struct Vocabulary {
    names: Vec<ArcStr>,
    metric_names: Vec<ArcStr>,
    values: Vec<ArcStr>,
}

impl Vocabulary {
    fn new() -> Vocabulary {
        let mut names: Vec<&str> = vec![
            "__name__",
            "cluster",
            "env",
            "instance",
            "job",
            "namespace",
            "node",
            "region",
        ];
        names.extend(DIMENSIONS.iter().flat_map(|&(a, b)| [a, b]));
        let metric_names = (0..METRIC_NAMES)
            .map(|i| {
                let family = i % 4;
                let suffix = SUFFIXES[family][(i / 96) % 4];
                format!("{}_{}_{suffix}", PREFIXES[i % 8], SUBSYSTEMS[(i / 8) % 12]).into()
            })
            .collect();
        let values = [
            &CPUS[..],
            &MODES,
            &DEVICES,
            &FSTYPES,
            &BOUNDS,
            &HANDLERS,
            &CODES,
            &METHODS,
            &JOBS,
            &CLUSTERS,
            &NAMESPACES,
            &REGIONS,
            &["production", "staging"],
        ]
        .concat();
        Vocabulary {
            names: names.into_iter().map(ArcStr::from).collect(),
            metric_names,
            values: values.into_iter().map(ArcStr::from).collect(),
        }
    }

    fn name(&self, s: &str) -> ArcStr {
        let found = self.names.iter().find(|n| &***n == s);
        ArcStr::clone(found.expect("label name in the vocabulary"))
    }

    fn value(&self, s: &str) -> ArcStr {
        let found = self.values.iter().find(|v| &***v == s);
        ArcStr::clone(found.expect("label value in the vocabulary"))
    }
}

/// The label sets of one host, built when its samples are appended and dropped after.
fn host_series(vocab: &Vocabulary, host: usize, count: usize) -> Vec<Labels> {
    let octets = (host >> 16 & 255, host >> 8 & 255, host & 255);
    let instance: ArcStr = format!("10.{}.{}.{}:9100", octets.0, octets.1, octets.2).into();
    let node: ArcStr = format!(
        "ip-10-{}-{}-{}.{}.compute.internal",
        octets.0,
        octets.1,
        octets.2,
        REGIONS[host % 3]
    )
    .into();
    let env = if host.is_multiple_of(10) {
        "staging"
    } else {
        "production"
    };
    let common = [
        ("cluster", vocab.value(CLUSTERS[host % 8])),
        ("env", vocab.value(env)),
        ("instance", instance),
        ("job", vocab.value(JOBS[host % 8])),
        ("namespace", vocab.value(NAMESPACES[host % 6])),
        ("node", node),
        ("region", vocab.value(REGIONS[host % 3])),
    ];
    let slots = SERIES_PER_HOST / 4;
    (0..count)
        .map(|j| {
            // 125 metrics per host, 4 series each (the `variant`); hosts draw from three
            // thirds of the metric names in turn, so all 384 names occur.
            let (slot, variant) = (j % slots, j / slots);
            let metric = (slot + slots * (host % 3)) % METRIC_NAMES;
            let family = metric % 4;
            let (first, second) = match family {
                0 => (CPUS[variant], MODES[metric % MODES.len()]),
                1 => (DEVICES[variant], FSTYPES[metric % FSTYPES.len()]),
                2 => (BOUNDS[variant + 4 * (metric % 3)], HANDLERS[metric % 5]),
                _ => (CODES[variant], METHODS[metric % 4]),
            };
            let (first_name, second_name) = DIMENSIONS[family];
            let mut labels = vec![Label::new(
                vocab.name("__name__"),
                ArcStr::clone(&vocab.metric_names[metric]),
            )];
            labels.extend(
                common
                    .iter()
                    .map(|(n, v)| Label::new(vocab.name(n), ArcStr::clone(v))),
            );
            labels.push(Label::new(vocab.name(first_name), vocab.value(first)));
            labels.push(Label::new(vocab.name(second_name), vocab.value(second)));
            labels.sort_by(|a, b| a.name().cmp(b.name()));
            Labels::from_sorted(labels).expect("canonical labels")
        })
        .collect()
}

fn main() {
    let series = host::env_count("STRATA_HEAD_SERIES", SERIES_DEFAULT) as usize;
    let hosts = series.div_ceil(SERIES_PER_HOST);
    let vocab = Vocabulary::new();
    let dir = tempfile::Builder::new()
        .prefix("strata-head-memory-")
        .tempdir()
        .expect("creating a temporary directory");
    let options = Options {
        fsync: FsyncMode::Interval(Duration::from_secs(1)),
        background_maintenance: false,
        checkpoint_on_close: false,
        ..Options::default()
    };

    let rss_before = host::resident_bytes();
    let db = Db::open(dir.path(), options).expect("opening the database");
    let rss_opened = host::resident_bytes();
    let base_ms = host::now_ms_minus(Duration::from_secs(3600));
    let began = Instant::now();
    let mut rss_after_scrape = Vec::new();
    for k in 0..SCRAPES {
        let mut app = db.appender();
        for h in 0..hosts {
            let count = SERIES_PER_HOST.min(series - h * SERIES_PER_HOST);
            let phase = (h as i64 * 7_919) % SCRAPE_INTERVAL_MS;
            let t = base_ms + phase + k as i64 * SCRAPE_INTERVAL_MS;
            for (j, labels) in host_series(&vocab, h, count).iter().enumerate() {
                let index = (h * SERIES_PER_HOST + j) as u64;
                app.append(labels, t, value(index, k)).expect("append");
            }
            if app.len() >= BATCH_SAMPLES {
                app.commit().expect("commit");
                app = db.appender();
            }
        }
        app.commit().expect("commit");
        rss_after_scrape.push(host::resident_bytes());
    }
    let elapsed = began.elapsed();
    let rss_after = host::resident_bytes();
    let stats = db.stats();
    assert_eq!(stats.series, series as u64, "every series was created");
    assert_eq!(
        stats.samples,
        series as u64 * SCRAPES,
        "every sample is held"
    );

    let per_series = |bytes: u64| bytes as f64 / series as f64;
    println!(
        "head memory: {} series with 10 labels on {} hosts, {} samples each, appended in {:.1} s ({} samples/s)",
        host::thousands(series as u64),
        host::thousands(hosts as u64),
        SCRAPES,
        elapsed.as_secs_f64(),
        host::rate(stats.samples as f64 / elapsed.as_secs_f64()),
    );
    println!(
        "resident: {} bytes before open, {} after open, {} after appending",
        host::thousands(rss_before),
        host::thousands(rss_opened),
        host::thousands(rss_after),
    );
    for (k, rss) in rss_after_scrape.iter().enumerate() {
        println!(
            "  after scrape {}: {} bytes, {:.0} bytes per series",
            k + 1,
            host::thousands(*rss),
            per_series(rss - rss_before),
        );
    }
    println!(
        "stats: {} series, {} samples, {} chunks, {} chunk bytes ({:.1} per series), {} interned strings",
        host::thousands(stats.series),
        host::thousands(stats.samples),
        host::thousands(stats.chunks),
        host::thousands(stats.chunk_bytes),
        per_series(stats.chunk_bytes),
        host::thousands(stats.interned_strings),
    );
    let growth = per_series(rss_after - rss_before);
    let verdict = if growth <= TARGET_BYTES_PER_SERIES {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "target: <= {:.0} bytes per active series: {growth:.0} bytes per series ({verdict})",
        TARGET_BYTES_PER_SERIES
    );
    drop(db);
}

/// A value that moves a little each scrape, different for every series.
fn value(index: u64, k: u64) -> f64 {
    let start = (index.wrapping_mul(2_654_435_761) % 1_000_000) as f64;
    start + (k * (index % 7)) as f64 * 0.25
}
