//! Deterministic node_exporter-like samples for Strata's benchmarks.
//!
//! Compression ratios and decode speeds depend on what the numbers look like, so the benches
//! need data shaped like a real fleet rather than random floats. This module generates it from
//! a seed alone, with no files and no external crates: every host exposes about 500 series, in
//! the proportions and with the metric names of a real node_exporter 1.5 scrape of a small
//! Linux VM (507 series: about 65% constant in practice, 20% moving gauges, 9% integer counters,
//! 4% float counters, 1% summary quantiles). That scrape has no histogram; one request-duration
//! histogram per host stands in for the summary so the benches cover cumulative buckets.
//!
//! Classes and how their values move (one scrape every 15 s):
//!
//! - [`SeriesClass::Constant`]: info metrics, limits, sizes, idle error counters. Some tick
//!   once every few hours or days; most never change.
//! - [`SeriesClass::IntCounter`]: bytes, packets, operations; increments scattered around a
//!   per-host rate, values near `rate × uptime`.
//! - [`SeriesClass::FloatCounter`]: `*_seconds_total`, rounded to 2 (CPU), 3 (disk) or 6
//!   (pressure) decimals as the kernel's units make node_exporter print them.
//! - [`SeriesClass::Gauge`]: random walks quantised like the source: memory in 4 KiB pages,
//!   load averages to 2 decimals, collector durations to the nanosecond, and a clock.
//! - [`SeriesClass::Histogram`]: cumulative `_bucket{le=...}` counters plus `_sum`/`_count`.
//!
//! All series of a host share its scrape timestamps.
//!
//! Every parameter of the generator (the per-metric rate ranges are in the tables below, one
//! row per metric; `U[a, b)` is uniform, log-uniform draws say so):
//!
//! | parameter | value |
//! |---|---|
//! | scrape interval | 15 s ([`SCRAPE_INTERVAL_MS`]) for every host |
//! | grid | scrape `k` of a host is due at [`START_MS`] (2026-01-01T00:00:00Z) + a per-host phase `U[0, 15 s)` + `15 s × k` |
//! | timestamp jitter | [`JITTERED_SCRAPES_PERCENT`] = 10% of scrapes, drawn per host and scrape, are late by 1 to 5 ms (uniform); the others are exactly on the grid |
//! | series per host | 517: 339 constant, 44 integer counters, 20 float counters, 100 gauges, 14 histogram |
//! | host load | log-uniform in [0.3, 3); multiplies every rate |
//! | host uptime | log-uniform in [1, 90) days; a counter starts at `per-scrape rate × uptime × U[0.5, 1)` |
//! | integer counters | `floor(start + p × (k + 0.9 u_k))`, `u_k` `U[0, 1)` per scrape, `p` = rate × load × 15 s with the rate log-uniform in its row of `INT_COUNTERS_LABELLED` / `INT_COUNTERS` (0.001 to 200,000 events/s); the metrics handler's request counter adds exactly 1 a scrape |
//! | float counters | as integer counters with spread 0.5 instead of 0.9, `p` = rate × load (at most 1 s/s) × 15 s with the rate in its row of `CPU_MODES` / `SECONDS_COUNTERS`, rounded to the row's decimals |
//! | idle counters | a third step by 1 once in every window of 2,000 to 17,000 scrapes (8 h to 3 days, log-uniform), from a start in 0..20; the others stay at 0 |
//! | gauges | `base × U[0.5, 1.5)`, plus that × the row's swing × a walk: noise at 11 time scales, each twice as long and √2 times as large, in about [-1, 1]; at least 0; quantised as the row says (4 KiB pages, integers, 2, 6 or 9 decimals); collector durations have a log-uniform base in [10 µs, 1 ms) and swing 0.3 |
//! | clock | `node_time_seconds`: the scrape's timestamp in seconds + `U[0, 3 ms)` |
//! | histogram | `U[1, 3)` requests a scrape, spread 0.9, cumulative shares from `HISTOGRAM_BOUNDS`; `_sum` at a mean of `U[8, 16)` ms a request |
//! | randomness | every draw is a hash of the seed, the host, the series and the scrape |
//!
//! Everything is random access: [`Dataset::value`] and [`Dataset::timestamp`] compute scrape
//! `k` directly from the seed, so generating scrape 1,000 does not need scrapes 0 to 999.

mod recorded;
mod spec;
mod template;

use std::ops::Range;

pub use recorded::Recording;
pub use spec::DatasetSpec;
pub use template::{Template, TemplateLine};

/// Interval between two scrapes of a host.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;
/// Timestamp of scrape 0, before each host's phase: 2026-01-01T00:00:00Z.
pub const START_MS: i64 = 1_767_225_600_000;
/// Share of scrapes whose timestamp is late by 1 to 5 ms, in percent.
pub const JITTERED_SCRAPES_PERCENT: u64 = 10;

/// How a series' values move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesClass {
    /// Never or rarely changes.
    Constant,
    /// Integer-valued counter.
    IntCounter,
    /// Counter of seconds with a fixed number of decimals.
    FloatCounter,
    /// Random walk, quantised.
    Gauge,
    /// Cumulative histogram buckets, sum and count.
    Histogram,
}

impl SeriesClass {
    /// Every class, in display order.
    pub const ALL: [SeriesClass; 5] = [
        SeriesClass::Constant,
        SeriesClass::IntCounter,
        SeriesClass::FloatCounter,
        SeriesClass::Gauge,
        SeriesClass::Histogram,
    ];

    /// A short lowercase name for tables.
    pub fn name(self) -> &'static str {
        match self {
            SeriesClass::Constant => "constant",
            SeriesClass::IntCounter => "int counter",
            SeriesClass::FloatCounter => "float counter",
            SeriesClass::Gauge => "gauge",
            SeriesClass::Histogram => "histogram",
        }
    }
}

/// One generated series.
#[derive(Debug, Clone)]
pub struct GenSeries {
    /// Label pairs sorted by name, `__name__` first.
    pub labels: Vec<(String, String)>,
    /// How the values move.
    pub class: SeriesClass,
    /// Index of the host that exposes the series.
    pub host: usize,
    key: u64,
    model: Model,
}

impl GenSeries {
    /// The metric name.
    pub fn name(&self) -> &str {
        &self.labels[0].1
    }
}

#[derive(Debug, Clone, Copy)]
enum Quantum {
    /// Rounded to this many decimals.
    Decimals(i32),
    /// Rounded to a multiple of this.
    Multiple(f64),
}

impl Quantum {
    fn apply(self, x: f64) -> f64 {
        match self {
            // Dividing the rounded integer gives the double nearest the decimal, as parsing the
            // printed text would.
            Quantum::Decimals(d) => {
                let scale = 10f64.powi(d);
                (x * scale).round() / scale
            }
            Quantum::Multiple(m) => (x / m).round() * m,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Model {
    /// `value`, plus `step` once in every window of `every` scrapes (never when `every` is 0).
    Constant { value: f64, step: f64, every: u64 },
    /// `start + per_scrape * (k + spread * u_k)`, `u_k` uniform in [0, 1): non-decreasing for
    /// `spread <= 1`, then quantised (which keeps it non-decreasing).
    Counter {
        start: f64,
        per_scrape: f64,
        spread: f64,
        quantum: Quantum,
    },
    /// `base + scale * walk(k)`, at least `min`, quantised.
    Gauge {
        base: f64,
        scale: f64,
        min: f64,
        quantum: Quantum,
    },
    /// The host's clock in seconds at scrape time, plus up to 3 ms of exposition latency.
    Clock,
    /// `fraction` of a histogram's observations, counted or summed: the family shares `key`,
    /// so buckets stay cumulative.
    Histogram {
        family: u64,
        start: f64,
        per_scrape: f64,
        fraction: f64,
        sum_of: f64,
    },
    /// Line `line` of the fleet's recording: scrape `k` is recorded scrape
    /// `offset + k × stride` moved by up to `wobble` either way (by the hash of `key` and `k`).
    Recorded {
        line: usize,
        offset: u64,
        stride: u64,
        wobble: u64,
        key: u64,
    },
}

/// The SplitMix64 generator: a 64-bit counter through a strong mixing function.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        to_unit(self.next_u64())
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Log-uniform in [lo, hi), for rates spanning orders of magnitude.
    pub fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }
}

/// SplitMix64's output function.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of a key and two coordinates.
pub(crate) fn hash(key: u64, a: u64, b: u64) -> u64 {
    mix(key
        ^ mix(a.wrapping_add(0x632b_e59b_d9b4_e019) ^ mix(b.wrapping_add(0x8cb9_2ba7_2f3d_8dd7))))
}

fn to_unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A bounded random walk: noise at 11 time scales, each twice as long and √2 times as large as
/// the one below, so the value moves every scrape and drifts over hours. Roughly in [-1, 1].
fn walk(key: u64, k: u64) -> f64 {
    let mut sum = 0.0;
    let mut amplitude = 1.0;
    let mut norm = 0.0;
    for level in 0..11 {
        sum += amplitude * (to_unit(hash(key, level, k >> level)) - 0.5);
        norm += amplitude * 0.5;
        amplitude *= std::f64::consts::SQRT_2;
    }
    sum / norm * 2.0
}

/// A fleet of hosts and their series.
#[derive(Debug, Clone)]
pub struct Dataset {
    seed: u64,
    hosts: usize,
    series: Vec<GenSeries>,
    /// Share of scrapes whose timestamp is late, in percent.
    jitter_percent: u64,
    /// The most a late scrape is late by, in milliseconds (at least 1).
    jitter_ms_max: u64,
    /// The scrapes a recorded fleet replays.
    recording: Option<std::sync::Arc<Recording>>,
}

impl Dataset {
    /// A fleet of `series` whose scrapes are late like a template fleet's (20% by 1-3 ms), with
    /// the recording it replays, if any.
    fn jittered_like_a_template(
        seed: u64,
        hosts: usize,
        series: Vec<GenSeries>,
        recording: Option<std::sync::Arc<Recording>>,
    ) -> Dataset {
        Dataset {
            seed,
            hosts,
            series,
            jitter_percent: template::TEMPLATE_JITTERED_SCRAPES_PERCENT,
            jitter_ms_max: template::TEMPLATE_JITTER_MS_MAX,
            recording,
        }
    }

    /// The series of `hosts` hosts, all derived from `seed`.
    pub fn new(hosts: usize, seed: u64) -> Self {
        let mut series = Vec::new();
        for host in 0..hosts {
            HostBuilder::new(seed, host, &mut series).build();
        }
        Dataset {
            seed,
            hosts,
            series,
            jitter_percent: JITTERED_SCRAPES_PERCENT,
            jitter_ms_max: 5,
            recording: None,
        }
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Every series, host by host.
    pub fn series(&self) -> &[GenSeries] {
        &self.series
    }

    /// Timestamp in ms of scrape `k` of `host`.
    pub fn timestamp(&self, host: usize, k: u64) -> i64 {
        let phase = (hash(self.seed, host as u64, u64::MAX) % SCRAPE_INTERVAL_MS as u64) as i64;
        let roll = hash(self.seed, host as u64, k);
        let jitter = if roll % 100 < self.jitter_percent {
            1 + (roll >> 32) % self.jitter_ms_max
        } else {
            0
        };
        START_MS + phase + k as i64 * SCRAPE_INTERVAL_MS + jitter as i64
    }

    /// Value of series `index` at scrape `k`.
    pub fn value(&self, index: usize, k: u64) -> f64 {
        let series = &self.series[index];
        match series.model {
            Model::Constant { value, step, every } => {
                if every == 0 {
                    return value;
                }
                let window = k / every;
                let change_at = hash(series.key, window, 0) % every;
                let changes = window + u64::from(k % every >= change_at);
                value + step * changes as f64
            }
            Model::Counter {
                start,
                per_scrape,
                spread,
                quantum,
            } => {
                let u = to_unit(hash(series.key, k, 1));
                let x = start + per_scrape * (k as f64 + spread * u);
                match quantum {
                    // Counters of whole events round down, so they never run ahead.
                    Quantum::Multiple(m) => (x / m).floor() * m,
                    Quantum::Decimals(_) => quantum.apply(x),
                }
            }
            Model::Gauge {
                base,
                scale,
                min,
                quantum,
            } => quantum.apply((base + scale * walk(series.key, k)).max(min)),
            Model::Clock => {
                let t = self.timestamp(series.host, k) as f64 / 1000.0;
                t + 0.003 * to_unit(hash(series.key, k, 2))
            }
            Model::Histogram {
                family,
                start,
                per_scrape,
                fraction,
                sum_of,
            } => {
                // Up to 90% of a scrape's worth of requests may land either side of it.
                let u = to_unit(hash(family, k, 3));
                let observations = start + per_scrape * (k as f64 + 0.9 * u);
                if sum_of > 0.0 {
                    observations * sum_of
                } else {
                    (observations * fraction).floor()
                }
            }
            Model::Recorded {
                line,
                offset,
                stride,
                wobble,
                key,
            } => {
                // offset >= wobble, so this never goes below 0; 2 × wobble < stride, so the
                // recorded scrapes a host replays only move forward.
                let moved = hash(key, k, 0x3a11) % (2 * wobble + 1);
                let j = offset + k * stride + moved - wobble;
                self.recording
                    .as_ref()
                    .map_or(f64::NAN, |r| r.value(line, j))
            }
        }
    }

    /// The samples of scrape `k`, for every series, as `(series index, t_ms, value)`; replaces
    /// the contents of `out`.
    pub fn scrape(&self, k: u64, out: &mut Vec<(usize, i64, f64)>) {
        out.clear();
        let mut host = usize::MAX;
        let mut t = 0;
        for (index, series) in self.series.iter().enumerate() {
            if series.host != host {
                host = series.host;
                t = self.timestamp(host, k);
            }
            out.push((index, t, self.value(index, k)));
        }
    }

    /// The samples of series `index` for scrapes `scrapes`.
    pub fn samples(&self, index: usize, scrapes: Range<u64>) -> Vec<(i64, f64)> {
        let host = self.series[index].host;
        scrapes
            .map(|k| (self.timestamp(host, k), self.value(index, k)))
            .collect()
    }
}

// The tables below list what one host exposes, in the shape of the calibration scrape. They are
// kept one row per line or packed by hand, as data rather than code.

/// A label pair.
type Label = (&'static str, &'static str);
/// A range of rates per second, drawn log-uniformly per host.
type Rate = (f64, f64);

const DEVICES: [&str; 4] = ["eth0", "lo", "ifb0", "ifb1"];

/// The collectors of node_exporter 1.5 and whether they succeed on a small VM.
#[rustfmt::skip]
const COLLECTORS: [(&str, bool); 46] = [
    ("arp", true), ("bcache", true), ("bonding", false), ("btrfs", true), ("conntrack", true),
    ("cpu", true), ("cpufreq", true), ("diskstats", true), ("dmi", false), ("edac", true),
    ("entropy", true), ("fibrechannel", false), ("filefd", true), ("filesystem", true),
    ("hwmon", false), ("infiniband", false), ("ipvs", false), ("loadavg", true),
    ("mdadm", false), ("meminfo", true), ("netclass", true), ("netdev", true),
    ("netstat", true), ("nfs", false), ("nfsd", false), ("nvme", false), ("os", true),
    ("powersupplyclass", true), ("pressure", true), ("rapl", false), ("schedstat", false),
    ("selinux", true), ("sockstat", true), ("softnet", true), ("stat", true),
    ("systemd", false), ("tapestats", false), ("textfile", true), ("thermal_zone", true),
    ("time", true), ("timex", true), ("udp_queues", true), ("uname", true), ("vmstat", true),
    ("xfs", true), ("zfs", false),
];

/// Per-device attributes that never change, one value per entry of [`DEVICES`].
#[rustfmt::skip]
const NETWORK_FIXED: [(&str, [f64; 4]); 14] = [
    ("node_network_address_assign_type", [0.0, 0.0, 3.0, 3.0]),
    ("node_network_carrier", [1.0, 1.0, 0.0, 0.0]),
    ("node_network_device_id", [0.0; 4]),
    ("node_network_dormant", [0.0; 4]),
    ("node_network_flags", [4099.0, 9.0, 130.0, 130.0]),
    ("node_network_iface_id", [4.0, 1.0, 2.0, 3.0]),
    ("node_network_iface_link", [4.0, 1.0, 2.0, 3.0]),
    ("node_network_iface_link_mode", [0.0; 4]),
    ("node_network_info", [1.0; 4]),
    ("node_network_mtu_bytes", [1400.0, 65536.0, 1500.0, 1500.0]),
    ("node_network_name_assign_type", [1.0, 2.0, 4.0, 4.0]),
    ("node_network_net_dev_group", [0.0; 4]),
    ("node_network_protocol_type", [1.0, 772.0, 1.0, 1.0]),
    ("node_network_up", [1.0, 0.0, 0.0, 0.0]),
];

/// Per-device error and event counters, mostly idle.
#[rustfmt::skip]
const NETWORK_IDLE: [&str; 15] = [
    "node_network_carrier_changes_total", "node_network_carrier_down_changes_total",
    "node_network_carrier_up_changes_total", "node_network_receive_compressed_total",
    "node_network_receive_drop_total", "node_network_receive_errs_total",
    "node_network_receive_fifo_total", "node_network_receive_frame_total",
    "node_network_receive_nohandler_total", "node_network_transmit_carrier_total",
    "node_network_transmit_colls_total", "node_network_transmit_compressed_total",
    "node_network_transmit_drop_total", "node_network_transmit_errs_total",
    "node_network_transmit_fifo_total",
];

/// Traffic counters, which stay at zero on the idle ifb devices.
#[rustfmt::skip]
const NETWORK_TRAFFIC: [&str; 4] = [
    "node_network_receive_bytes_total", "node_network_receive_packets_total",
    "node_network_transmit_bytes_total", "node_network_transmit_packets_total",
];

/// `node_memory_*` fields that do not move, with their values (MemTotal and the values derived
/// from it are filled in per host).
#[rustfmt::skip]
const MEMORY_FIXED: [(&str, f64); 31] = [
    ("MemTotal", 0.0), ("SwapTotal", 0.0), ("SwapFree", 0.0), ("CommitLimit", 0.0),
    ("VmallocTotal", 3.5184372087808e13), ("VmallocChunk", 0.0), ("DirectMap1G", 0.0),
    ("DirectMap2M", 2.116026368e9), ("DirectMap4k", 3.145728e7), ("Hugepagesize", 2_097_152.0),
    ("HugePages_Free", 0.0), ("HugePages_Rsvd", 0.0), ("HugePages_Surp", 0.0),
    ("HugePages_Total", 0.0), ("AnonHugePages", 0.0), ("Balloon", 0.0), ("Bounce", 0.0),
    ("FileHugePages", 0.0), ("FilePmdMapped", 0.0), ("Hugetlb", 0.0), ("Mlocked", 1.630208e7),
    ("NFS_Unstable", 0.0), ("Percpu", 974_848.0), ("SecPageTables", 0.0),
    ("ShmemHugePages", 0.0), ("ShmemPmdMapped", 0.0), ("SwapCached", 0.0),
    ("Unevictable", 1.724416e7), ("WritebackTmp", 0.0), ("Zswap", 0.0), ("Zswapped", 0.0),
];

#[rustfmt::skip]
const TIMEX_FIXED: [(&str, f64); 13] = [
    ("loop_time_constant", 2.0), ("pps_calibration_total", 0.0), ("pps_error_total", 0.0),
    ("pps_frequency_hertz", 0.0), ("pps_jitter_seconds", 0.0), ("pps_jitter_total", 0.0),
    ("pps_shift_seconds", 0.0), ("pps_stability_exceeded_total", 0.0),
    ("pps_stability_hertz", 0.0), ("status", 64.0), ("sync_status", 0.0),
    ("tai_offset_seconds", 0.0), ("tick_seconds", 0.01),
];

#[rustfmt::skip]
const NETSTAT_IDLE: [&str; 23] = [
    "Icmp6_InErrors", "Icmp6_InMsgs", "Icmp_InErrors", "Icmp_InMsgs", "Icmp_OutMsgs",
    "TcpExt_ListenDrops", "TcpExt_ListenOverflows", "TcpExt_SyncookiesFailed",
    "TcpExt_SyncookiesRecv", "TcpExt_SyncookiesSent", "Tcp_InErrs", "Udp6_InDatagrams",
    "Udp6_InErrors", "Udp6_NoPorts", "Udp6_OutDatagrams", "Udp6_RcvbufErrors",
    "Udp6_SndbufErrors", "UdpLite6_InErrors", "UdpLite_InErrors", "Udp_InErrors",
    "Udp_NoPorts", "Udp_RcvbufErrors", "Udp_SndbufErrors",
];

#[rustfmt::skip]
const SOCKSTAT_ZERO: [&str; 14] = [
    "FRAG6_inuse", "FRAG6_memory", "FRAG_inuse", "FRAG_memory", "RAW6_inuse", "RAW_inuse",
    "TCP6_inuse", "TCP_orphan", "UDP6_inuse", "UDPLITE6_inuse", "UDPLITE_inuse", "UDP_inuse",
    "UDP_mem", "UDP_mem_bytes",
];

#[rustfmt::skip]
const CONNTRACK_IDLE: [&str; 8] = [
    "drop", "early_drop", "found", "ignore", "insert", "insert_failed", "invalid",
    "search_restart",
];

/// `node_disk_*_total` counters, all zero on the unused zram0 device.
#[rustfmt::skip]
const DISK_COUNTERS: [&str; 16] = [
    "discard_time_seconds", "discarded_sectors", "discards_completed", "discards_merged",
    "flush_requests_time_seconds", "flush_requests", "io_time_seconds",
    "io_time_weighted_seconds", "read_bytes", "read_time_seconds", "reads_completed",
    "reads_merged", "write_time_seconds", "writes_completed", "writes_merged", "written_bytes",
];

/// Unlabelled series that never change, with their values.
#[rustfmt::skip]
const MISC_FIXED: [(&str, f64); 25] = [
    ("node_boot_time_seconds", 1.795552317e9), ("node_entropy_pool_size_bits", 256.0),
    ("node_entropy_available_bits", 256.0), ("node_filefd_maximum", 2.46617e6),
    ("node_os_version", 12.0), ("node_selinux_enabled", 0.0), ("node_textfile_scrape_error", 0.0),
    ("node_timex_frequency_adjustment_ratio", 1.0), ("node_vmstat_oom_kill", 0.0),
    ("node_vmstat_pswpin", 0.0), ("node_vmstat_pswpout", 0.0), ("process_max_fds", 20_000.0),
    ("process_virtual_memory_max_bytes", 1.8446744073709552e19),
    ("process_start_time_seconds", 1.79555265365e9),
    ("promhttp_metric_handler_requests_in_flight", 1.0),
    ("go_memstats_buck_hash_sys_bytes", 1.445929e6), ("go_memstats_gc_sys_bytes", 8.166616e6),
    ("go_memstats_mcache_inuse_bytes", 1200.0), ("go_memstats_mcache_sys_bytes", 15_600.0),
    ("go_memstats_mspan_sys_bytes", 32_544.0), ("go_memstats_other_sys_bytes", 543_735.0),
    ("go_memstats_stack_sys_bytes", 327_680.0), ("go_memstats_sys_bytes", 1.4398728e7),
    ("go_memstats_lookups_total", 0.0), ("go_threads", 6.0),
];

/// Info-style series: value 1 for `*_info`, 0 for the time zone offset.
#[rustfmt::skip]
const INFOS: [(&str, &[Label]); 8] = [
    ("go_info", &[("version", "go1.19.8")]),
    ("node_exporter_build_info", &[("goversion", "go1.19.8"), ("version", "1.5.0")]),
    ("node_os_info", &[("id", "debian"), ("version_id", "12")]),
    ("node_uname_info", &[("machine", "x86_64"), ("release", "6.1.0-18-amd64")]),
    ("node_time_clocksource_available_info", &[("clocksource", "kvm-clock"), ("device", "0")]),
    ("node_time_clocksource_available_info", &[("clocksource", "tsc"), ("device", "0")]),
    ("node_time_clocksource_current_info", &[("clocksource", "tsc"), ("device", "0")]),
    ("node_time_zone_offset_seconds", &[("time_zone", "UTC")]),
];

/// Integer counters with a label, and their rate range in events per second on a typical host.
#[rustfmt::skip]
const INT_COUNTERS_LABELLED: [(&str, Label, Rate); 20] = [
    ("node_network_receive_bytes_total", ("device", "eth0"), (2e3, 5e4)),
    ("node_network_receive_packets_total", ("device", "eth0"), (5.0, 200.0)),
    ("node_network_transmit_bytes_total", ("device", "eth0"), (1e3, 3e4)),
    ("node_network_transmit_packets_total", ("device", "eth0"), (3.0, 150.0)),
    ("node_network_receive_bytes_total", ("device", "lo"), (100.0, 2e3)),
    ("node_network_receive_packets_total", ("device", "lo"), (1.0, 20.0)),
    ("node_network_transmit_bytes_total", ("device", "lo"), (100.0, 2e3)),
    ("node_network_transmit_packets_total", ("device", "lo"), (1.0, 20.0)),
    ("node_network_receive_multicast_total", ("device", "eth0"), (0.01, 0.2)),
    ("node_disk_read_bytes_total", ("device", "vda"), (1e3, 1e5)),
    ("node_disk_written_bytes_total", ("device", "vda"), (1e4, 2e5)),
    ("node_disk_reads_completed_total", ("device", "vda"), (0.1, 5.0)),
    ("node_disk_writes_completed_total", ("device", "vda"), (1.0, 20.0)),
    ("node_disk_reads_merged_total", ("device", "vda"), (0.05, 2.0)),
    ("node_disk_writes_merged_total", ("device", "vda"), (0.5, 10.0)),
    ("node_disk_discarded_sectors_total", ("device", "vda"), (0.1, 5.0)),
    ("node_disk_discards_completed_total", ("device", "vda"), (0.005, 0.05)),
    ("node_disk_flush_requests_total", ("device", "vda"), (0.2, 2.0)),
    ("node_softnet_processed_total", ("cpu", "0"), (5.0, 200.0)),
    ("node_softnet_processed_total", ("cpu", "1"), (5.0, 200.0)),
];

/// Unlabelled integer counters and their rate range in events per second.
#[rustfmt::skip]
const INT_COUNTERS: [(&str, Rate); 23] = [
    ("node_context_switches_total", (200.0, 3e3)), ("node_intr_total", (100.0, 2e3)),
    ("node_forks_total", (0.1, 2.0)), ("node_vmstat_pgfault", (50.0, 2e3)),
    ("node_vmstat_pgmajfault", (0.01, 0.5)), ("node_vmstat_pgpgin", (1.0, 100.0)),
    ("node_vmstat_pgpgout", (10.0, 200.0)), ("node_netstat_Tcp_InSegs", (5.0, 100.0)),
    ("node_netstat_Tcp_OutSegs", (5.0, 100.0)), ("node_netstat_Tcp_ActiveOpens", (0.01, 0.5)),
    ("node_netstat_Tcp_PassiveOpens", (0.01, 0.5)), ("node_netstat_Tcp_OutRsts", (0.01, 0.3)),
    ("node_netstat_Tcp_RetransSegs", (0.01, 0.1)), ("node_netstat_Udp_InDatagrams", (0.1, 5.0)),
    ("node_netstat_Udp_OutDatagrams", (0.1, 5.0)), ("node_netstat_IpExt_InOctets", (1e3, 5e4)),
    ("node_netstat_IpExt_OutOctets", (1e3, 3e4)), ("node_netstat_Ip6_InOctets", (0.01, 1.0)),
    ("node_netstat_Ip6_OutOctets", (0.05, 2.0)), ("node_netstat_TcpExt_TCPTimeouts", (0.001, 0.02)),
    ("go_memstats_alloc_bytes_total", (2e4, 2e5)), ("go_memstats_mallocs_total", (200.0, 2e3)),
    ("go_memstats_frees_total", (200.0, 2e3)),
];

/// CPU modes that accumulate time on a mostly idle VM, with seconds per second per CPU.
#[rustfmt::skip]
const CPU_MODES: [(&str, Rate); 6] = [
    ("idle", (0.80, 0.98)), ("iowait", (0.001, 0.03)), ("softirq", (0.001, 0.01)),
    ("steal", (0.0005, 0.005)), ("system", (0.005, 0.08)), ("user", (0.01, 0.15)),
];

/// Other seconds counters: name, labels, rate range in seconds per second, printed decimals.
#[rustfmt::skip]
const SECONDS_COUNTERS: [(&str, &[Label], Rate, i32); 8] = [
    ("node_disk_read_time_seconds_total", &[("device", "vda")], (0.0005, 0.01), 3),
    ("node_disk_write_time_seconds_total", &[("device", "vda")], (0.002, 0.05), 3),
    ("node_disk_io_time_seconds_total", &[("device", "vda")], (0.002, 0.03), 3),
    ("node_disk_io_time_weighted_seconds_total", &[("device", "vda")], (0.005, 0.1), 3),
    ("node_pressure_cpu_waiting_seconds_total", &[], (0.001, 0.05), 6),
    ("node_pressure_io_waiting_seconds_total", &[], (0.0005, 0.02), 6),
    ("node_pressure_io_stalled_seconds_total", &[], (0.0005, 0.02), 6),
    ("process_cpu_seconds_total", &[], (0.001, 0.01), 2),
];

/// `node_memory_*_bytes` gauges: typical value and relative swing, in pages.
#[rustfmt::skip]
const MEMORY_GAUGES: [(&str, f64, f64); 20] = [
    ("MemFree", 2.4e10, 0.01), ("MemAvailable", 2.48e10, 0.01), ("Cached", 7.8e8, 0.05),
    ("Buffers", 1.26e7, 0.05), ("Active", 1.95e8, 0.05), ("Inactive", 6.0e8, 0.03),
    ("Active_file", 1.94e8, 0.05), ("Inactive_file", 5.88e8, 0.03),
    ("Active_anon", 1.6e6, 0.2), ("Inactive_anon", 1.24e7, 0.05), ("Dirty", 6.75e7, 0.5),
    ("AnonPages", 2.23e7, 0.1), ("Slab", 9.93e7, 0.02), ("SReclaimable", 7.39e7, 0.02),
    ("SUnreclaim", 2.53e7, 0.02), ("KReclaimable", 7.39e7, 0.02), ("Mapped", 3.08e7, 0.05),
    ("Shmem", 9.08e6, 0.05), ("Committed_AS", 1.5e8, 0.05), ("PageTables", 1.7e6, 0.1),
];

/// Other gauges: name, typical value, relative swing, quantum.
#[rustfmt::skip]
const GAUGES: [(&str, f64, f64, Quantum); 29] = [
    ("node_load1", 0.5, 0.6, Quantum::Decimals(2)),
    ("node_load5", 0.3, 0.6, Quantum::Decimals(2)),
    ("node_load15", 0.15, 0.6, Quantum::Decimals(2)),
    ("node_procs_running", 2.0, 0.6, Quantum::Multiple(1.0)),
    ("node_procs_blocked", 0.3, 1.0, Quantum::Multiple(1.0)),
    ("go_goroutines", 8.0, 0.2, Quantum::Multiple(1.0)),
    ("process_open_fds", 11.0, 0.2, Quantum::Multiple(1.0)),
    ("node_filefd_allocated", 567.0, 0.05, Quantum::Multiple(1.0)),
    ("node_sockstat_sockets_used", 21.0, 0.1, Quantum::Multiple(1.0)),
    ("node_sockstat_TCP_inuse", 4.0, 0.3, Quantum::Multiple(1.0)),
    ("node_sockstat_TCP_alloc", 5.0, 0.3, Quantum::Multiple(1.0)),
    ("node_sockstat_TCP_tw", 4.0, 0.5, Quantum::Multiple(1.0)),
    ("node_sockstat_TCP_mem", 184.0, 0.2, Quantum::Multiple(1.0)),
    ("node_sockstat_TCP_mem_bytes", 753_664.0, 0.2, Quantum::Multiple(4096.0)),
    ("node_netstat_Tcp_CurrEstab", 2.0, 0.5, Quantum::Multiple(1.0)),
    ("node_nf_conntrack_entries", 30.0, 0.3, Quantum::Multiple(1.0)),
    ("go_memstats_alloc_bytes", 889_560.0, 0.3, Quantum::Multiple(1.0)),
    ("go_memstats_heap_alloc_bytes", 889_560.0, 0.3, Quantum::Multiple(1.0)),
    ("go_memstats_heap_idle_bytes", 1.703936e6, 0.3, Quantum::Multiple(8192.0)),
    ("go_memstats_heap_inuse_bytes", 2.162688e6, 0.3, Quantum::Multiple(8192.0)),
    ("go_memstats_heap_objects", 8058.0, 0.3, Quantum::Multiple(1.0)),
    ("go_memstats_heap_released_bytes", 1.703936e6, 0.3, Quantum::Multiple(8192.0)),
    ("go_memstats_mspan_inuse_bytes", 28_512.0, 0.3, Quantum::Multiple(1.0)),
    ("go_memstats_next_gc_bytes", 4.194304e6, 0.3, Quantum::Multiple(1.0)),
    ("process_resident_memory_bytes", 1.55648e7, 0.1, Quantum::Multiple(4096.0)),
    ("process_virtual_memory_bytes", 1.046941696e9, 0.02, Quantum::Multiple(4096.0)),
    ("node_timex_offset_seconds", 2e-4, 1.0, Quantum::Decimals(9)),
    ("node_timex_maxerror_seconds", 0.016, 0.5, Quantum::Decimals(6)),
    ("node_timex_estimated_error_seconds", 1e-5, 0.5, Quantum::Decimals(6)),
];

/// The root filesystem's gauges: typical value, relative swing, quantum.
#[rustfmt::skip]
const FILESYSTEM_GAUGES: [(&str, f64, f64, Quantum); 3] = [
    ("node_filesystem_avail_bytes", 8.3960307712e10, 0.001, Quantum::Multiple(4096.0)),
    ("node_filesystem_free_bytes", 2.56940732416e11, 0.0005, Quantum::Multiple(4096.0)),
    ("node_filesystem_files_free", 1.6384479e7, 0.0005, Quantum::Multiple(1.0)),
];

const ROOT_FS: [Label; 3] = [
    ("device", "/dev/vda"),
    ("fstype", "ext4"),
    ("mountpoint", "/"),
];

const HISTOGRAM_NAME: &str = "promhttp_metric_handler_request_duration_seconds";

/// Cumulative share of requests at or under each bound, for a handler that answers in 5 to
/// 25 ms: mostly in the 0.01 and 0.025 buckets, with a small tail.
#[rustfmt::skip]
const HISTOGRAM_BOUNDS: [(&str, f64); 12] = [
    ("0.005", 0.0), ("0.01", 0.35), ("0.025", 0.93), ("0.05", 0.985), ("0.1", 0.997),
    ("0.25", 0.9995), ("0.5", 1.0), ("1", 1.0), ("2.5", 1.0), ("5", 1.0), ("10", 1.0),
    ("+Inf", 1.0),
];

/// Builds one host's series.
struct HostBuilder<'a> {
    host: usize,
    instance: String,
    rng: SplitMix64,
    /// Load factor: the host's rates relative to a typical one.
    load: f64,
    /// How long the host has been up, in scrapes: counters start near `rate × uptime`.
    uptime_scrapes: f64,
    out: &'a mut Vec<GenSeries>,
}

impl<'a> HostBuilder<'a> {
    fn new(seed: u64, host: usize, out: &'a mut Vec<GenSeries>) -> Self {
        let mut rng = SplitMix64::new(hash(seed, host as u64, 0x5eed));
        let load = rng.log_range(0.3, 3.0);
        let uptime_scrapes = rng.log_range(1.0, 90.0) * 86_400.0 / 15.0;
        let instance = format!("host-{host}:9100");
        HostBuilder {
            host,
            instance,
            rng,
            load,
            uptime_scrapes,
            out,
        }
    }

    fn push(&mut self, name: &str, labels: &[(&str, &str)], class: SeriesClass, model: Model) {
        let mut pairs: Vec<(String, String)> = vec![
            ("__name__".into(), name.into()),
            ("instance".into(), self.instance.clone()),
            ("job".into(), "node".into()),
        ];
        pairs.extend(labels.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())));
        pairs.sort();
        let key = self.rng.next_u64();
        let host = self.host;
        self.out.push(GenSeries {
            labels: pairs,
            class,
            host,
            key,
            model,
        });
    }

    /// A series that never changes.
    fn fixed(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let model = Model::Constant {
            value,
            step: 0.0,
            every: 0,
        };
        self.push(name, labels, SeriesClass::Constant, model);
    }

    /// An error or event counter that is mostly idle: a third of them tick once every 8 h to
    /// 3 days, the rest never.
    fn idle(&mut self, name: &str, labels: &[(&str, &str)]) {
        let model = if self.rng.unit() < 0.33 {
            let every = self.rng.log_range(2_000.0, 17_000.0) as u64;
            let value = (self.rng.unit() * 20.0).floor();
            Model::Constant {
                value,
                step: 1.0,
                every,
            }
        } else {
            Model::Constant {
                value: 0.0,
                step: 0.0,
                every: 0,
            }
        };
        self.push(name, labels, SeriesClass::Constant, model);
    }

    /// A counter of whole events at `rate` per second, scaled by the host's load factor.
    fn int_counter(&mut self, name: &str, labels: &[(&str, &str)], rate: (f64, f64)) {
        let per_scrape = self.rng.log_range(rate.0, rate.1) * self.load * 15.0;
        let start = (per_scrape * self.uptime_scrapes * self.rng.range(0.5, 1.0)).floor();
        let quantum = Quantum::Multiple(1.0);
        let model = Model::Counter {
            start,
            per_scrape,
            spread: 0.9,
            quantum,
        };
        self.push(name, labels, SeriesClass::IntCounter, model);
    }

    /// A counter of seconds at `rate` seconds per second, printed with `decimals` decimals.
    fn seconds_counter(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        rate: (f64, f64),
        decimals: i32,
    ) {
        let per_scrape = (self.rng.log_range(rate.0, rate.1) * self.load).min(1.0) * 15.0;
        let start = per_scrape * self.uptime_scrapes * self.rng.range(0.5, 1.0);
        let quantum = Quantum::Decimals(decimals);
        let model = Model::Counter {
            start,
            per_scrape,
            spread: 0.5,
            quantum,
        };
        self.push(name, labels, SeriesClass::FloatCounter, model);
    }

    /// A random walk around about `base`, swinging by about `swing × base`.
    fn gauge(&mut self, name: &str, labels: &[(&str, &str)], base: f64, swing: f64, q: Quantum) {
        let base = base * self.rng.range(0.5, 1.5);
        let model = Model::Gauge {
            base,
            scale: base * swing,
            min: 0.0,
            quantum: q,
        };
        self.push(name, labels, SeriesClass::Gauge, model);
    }

    fn build(mut self) {
        self.constants();
        self.counters();
        self.gauges();
        self.histogram();
    }

    fn constants(&mut self) {
        for (collector, ok) in COLLECTORS {
            let labels = [("collector", collector)];
            self.fixed(
                "node_scrape_collector_success",
                &labels,
                f64::from(u8::from(ok)),
            );
        }
        for (name, values) in NETWORK_FIXED {
            for (device, value) in DEVICES.into_iter().zip(values) {
                self.fixed(name, &[("device", device)], value);
            }
        }
        for name in NETWORK_IDLE {
            for device in DEVICES {
                self.idle(name, &[("device", device)]);
            }
        }
        for name in NETWORK_TRAFFIC {
            for device in &DEVICES[2..] {
                self.fixed(name, &[("device", device)], 0.0);
            }
        }
        let mem_total = [8.0, 16.0, 32.0, 64.0][self.host % 4] * 1_073_741_824.0 - 2.03e9;
        for (field, value) in MEMORY_FIXED {
            let value = match field {
                "MemTotal" => mem_total,
                "CommitLimit" => mem_total / 2.0,
                "DirectMap1G" => mem_total - 2.147483648e9,
                _ => value,
            };
            let name = if field.starts_with("HugePages_") {
                format!("node_memory_{field}")
            } else {
                format!("node_memory_{field}_bytes")
            };
            self.fixed(&name, &[], value);
        }
        for (field, value) in TIMEX_FIXED {
            self.fixed(&format!("node_timex_{field}"), &[], value);
        }
        for field in NETSTAT_IDLE {
            self.idle(&format!("node_netstat_{field}"), &[]);
        }
        self.fixed("node_netstat_Ip_Forwarding", &[], 2.0);
        for field in SOCKSTAT_ZERO {
            self.fixed(&format!("node_sockstat_{field}"), &[], 0.0);
        }
        self.fixed("node_nf_conntrack_entries_limit", &[], 262_144.0);
        for field in CONNTRACK_IDLE {
            self.idle(&format!("node_nf_conntrack_stat_{field}"), &[]);
        }
        for field in DISK_COUNTERS {
            self.fixed(
                &format!("node_disk_{field}_total"),
                &[("device", "zram0")],
                0.0,
            );
        }
        self.idle("node_disk_discards_merged_total", &[("device", "vda")]);
        for (device, major) in [("vda", "254"), ("zram0", "253")] {
            let labels = [("device", device), ("major", major), ("minor", "0")];
            self.fixed("node_disk_info", &labels, 1.0);
            self.fixed("node_disk_io_now", &[("device", device)], 0.0);
        }
        for cpu in ["0", "1"] {
            for mode in ["nice", "user"] {
                self.fixed(
                    "node_cpu_guest_seconds_total",
                    &[("cpu", cpu), ("mode", mode)],
                    0.0,
                );
            }
            for mode in ["irq", "nice"] {
                self.fixed(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu), ("mode", mode)],
                    0.0,
                );
            }
            self.idle("node_softnet_dropped_total", &[("cpu", cpu)]);
            self.idle("node_softnet_times_squeezed_total", &[("cpu", cpu)]);
        }
        self.fixed("node_filesystem_size_bytes", &ROOT_FS, 2.70553174016e11);
        self.fixed("node_filesystem_files", &ROOT_FS, 1.6777216e7);
        self.fixed("node_filesystem_readonly", &ROOT_FS, 0.0);
        self.fixed("node_filesystem_device_error", &ROOT_FS, 0.0);
        for (name, value) in MISC_FIXED {
            self.fixed(name, &[], value);
        }
        for (name, labels) in INFOS {
            self.fixed(
                name,
                labels,
                if name.ends_with("_info") { 1.0 } else { 0.0 },
            );
        }
        for (ip, queue) in [("v4", "rx"), ("v4", "tx"), ("v6", "rx"), ("v6", "tx")] {
            self.fixed("node_udp_queues", &[("ip", ip), ("queue", queue)], 0.0);
        }
        for cause in ["encoding", "gathering"] {
            self.idle("promhttp_metric_handler_errors_total", &[("cause", cause)]);
        }
        for code in ["500", "503"] {
            self.idle("promhttp_metric_handler_requests_total", &[("code", code)]);
        }
    }

    fn counters(&mut self) {
        for (name, label, rate) in INT_COUNTERS_LABELLED {
            self.int_counter(name, &[label], rate);
        }
        for (name, rate) in INT_COUNTERS {
            self.int_counter(name, &[], rate);
        }
        // Every scrape is exactly one request to the metrics handler.
        let start = (self.uptime_scrapes * self.rng.range(0.5, 1.0)).floor();
        let quantum = Quantum::Multiple(1.0);
        let model = Model::Counter {
            start,
            per_scrape: 1.0,
            spread: 0.0,
            quantum,
        };
        let labels = [("code", "200")];
        self.push(
            "promhttp_metric_handler_requests_total",
            &labels,
            SeriesClass::IntCounter,
            model,
        );

        for cpu in ["0", "1"] {
            for (mode, rate) in CPU_MODES {
                let labels = [("cpu", cpu), ("mode", mode)];
                self.seconds_counter("node_cpu_seconds_total", &labels, rate, 2);
            }
        }
        for (name, labels, rate, decimals) in SECONDS_COUNTERS {
            self.seconds_counter(name, labels, rate, decimals);
        }
    }

    fn gauges(&mut self) {
        for (collector, _) in COLLECTORS {
            let base = self.rng.log_range(1e-5, 1e-3);
            let labels = [("collector", collector)];
            let name = "node_scrape_collector_duration_seconds";
            self.gauge(name, &labels, base, 0.3, Quantum::Decimals(9));
        }
        for (field, base, swing) in MEMORY_GAUGES {
            let name = format!("node_memory_{field}_bytes");
            self.gauge(&name, &[], base, swing, Quantum::Multiple(4096.0));
        }
        for (name, base, swing, quantum) in GAUGES {
            self.gauge(name, &[], base, swing, quantum);
        }
        self.gauge(
            "node_arp_entries",
            &[("device", "eth0")],
            2.0,
            0.4,
            Quantum::Multiple(1.0),
        );
        for (name, base, swing, quantum) in FILESYSTEM_GAUGES {
            self.gauge(name, &ROOT_FS, base, swing, quantum);
        }
        self.push("node_time_seconds", &[], SeriesClass::Gauge, Model::Clock);
    }

    fn histogram(&mut self) {
        let family = self.rng.next_u64();
        let per_scrape = self.rng.range(1.0, 3.0);
        let start = (per_scrape * self.uptime_scrapes * self.rng.range(0.5, 1.0)).floor();
        let mean_seconds = self.rng.range(0.008, 0.016);
        let class = SeriesClass::Histogram;
        for (le, fraction) in HISTOGRAM_BOUNDS {
            let model = Model::Histogram {
                family,
                start,
                per_scrape,
                fraction,
                sum_of: 0.0,
            };
            self.push(
                &format!("{HISTOGRAM_NAME}_bucket"),
                &[("le", le)],
                class,
                model,
            );
        }
        let sum_of = mean_seconds;
        let sum = Model::Histogram {
            family,
            start,
            per_scrape,
            fraction: 1.0,
            sum_of,
        };
        self.push(&format!("{HISTOGRAM_NAME}_sum"), &[], class, sum);
        let count = Model::Histogram {
            family,
            start,
            per_scrape,
            fraction: 1.0,
            sum_of: 0.0,
        };
        self.push(&format!("{HISTOGRAM_NAME}_count"), &[], class, count);
    }
}
