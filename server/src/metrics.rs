//! Strata's own metrics at `/metrics`, in the Prometheus text format (version 0.0.4), so a
//! Prometheus (or Strata itself) can scrape the server.
//!
//! Request counters and latency histograms are kept here as requests finish; storage figures
//! (head series, blocks, compactions, WAL syncs, disk bytes) are read from the engine at
//! scrape time, and process figures from `/proc/self`.

use crate::alerting::alertmanager::SenderFigures;
use crate::alerting::dispatch::ReceiverFigures;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use strata_engine::Stats;
use strata_engine::wal::SYNC_BUCKETS_SECONDS;

use crate::prom::json::format_value;

/// Upper bounds of the request-duration histogram, in seconds.
const REQUEST_BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why remote-write samples were not stored (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// Invalid labels or samples (400).
    BadData,
    /// The active-series limit (429).
    SeriesLimit,
    /// The disk is full or the engine could not write (503).
    Unavailable,
    /// Native histograms, not stored yet.
    NativeHistogram,
}

impl RejectReason {
    const ALL: [RejectReason; 4] = [
        RejectReason::BadData,
        RejectReason::SeriesLimit,
        RejectReason::Unavailable,
        RejectReason::NativeHistogram,
    ];

    fn label(self) -> &'static str {
        match self {
            RejectReason::BadData => "bad_data",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::Unavailable => "unavailable",
            RejectReason::NativeHistogram => "native_histogram",
        }
    }
}

/// Which protocol brought log entries (the `protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogProtocol {
    Loki,
    Otlp,
    Elastic,
}

impl LogProtocol {
    fn label(self) -> &'static str {
        match self {
            LogProtocol::Loki => "loki",
            LogProtocol::Otlp => "otlp",
            LogProtocol::Elastic => "elasticsearch",
        }
    }
}

/// What one push did with its entries: stored (and their bytes), and refused by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogTally {
    pub stored: u64,
    pub bytes: u64,
    pub rejected: BTreeMap<&'static str, u64>,
}

impl LogTally {
    /// Counts `n` entries refused for `reason`.
    pub fn reject(&mut self, reason: &'static str, n: u64) {
        *self.rejected.entry(reason).or_default() += n;
    }
}

/// The log store's figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogFigures {
    pub streams: usize,
    pub head_entries: u64,
    pub head_bytes: u64,
    pub blocks: usize,
    pub block_bytes: u64,
    pub compaction_due: bool,
    pub pages_read: u64,
    pub pages_skipped: u64,
    pub page_bytes_read: u64,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Per bucket of [`REQUEST_BUCKETS_SECONDS`], not cumulative; the last for longer ones.
    buckets: [u64; REQUEST_BUCKETS_SECONDS.len() + 1],
    sum_seconds: f64,
}

/// Counters the server updates as it works.
#[derive(Debug)]
pub struct Metrics {
    samples_ingested: AtomicU64,
    exemplars_ingested: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    /// `(handler, status code)` → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// handler → request durations.
    durations: Mutex<BTreeMap<String, Histogram>>,
    /// protocol → (log entries stored, their bytes).
    logs_stored: Mutex<BTreeMap<LogProtocol, (u64, u64)>>,
    /// (protocol, reason) → log entries refused.
    logs_rejected: Mutex<BTreeMap<(LogProtocol, &'static str), u64>>,
    started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            samples_ingested: AtomicU64::new(0),
            exemplars_ingested: AtomicU64::new(0),
            rejected: Default::default(),
            requests: Mutex::default(),
            durations: Mutex::default(),
            logs_stored: Mutex::default(),
            logs_rejected: Mutex::default(),
            started: SystemTime::now(),
        }
    }
}

/// How much the server's in-memory stores hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreSizes {
    pub exemplars: usize,
    pub metadata: usize,
    pub known_series: usize,
    pub known_series_bytes: usize,
}

impl Metrics {
    /// Counts samples and exemplars a remote write stored.
    pub fn ingested(&self, samples: u64, exemplars: u64) {
        self.samples_ingested.fetch_add(samples, Ordering::Relaxed);
        self.exemplars_ingested
            .fetch_add(exemplars, Ordering::Relaxed);
    }

    /// Counts samples a remote write did not store.
    pub fn rejected(&self, reason: RejectReason, samples: u64) {
        let i = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.rejected[i].fetch_add(samples, Ordering::Relaxed);
    }

    /// Counts what a log push stored and refused.
    pub fn logs(&self, protocol: LogProtocol, tally: &LogTally) {
        {
            let mut stored = self.logs_stored.lock().unwrap_or_else(|p| p.into_inner());
            let e = stored.entry(protocol).or_default();
            e.0 += tally.stored;
            e.1 += tally.bytes;
        }
        let mut rejected = self.logs_rejected.lock().unwrap_or_else(|p| p.into_inner());
        for (&reason, &n) in &tally.rejected {
            *rejected.entry((protocol, reason)).or_default() += n;
        }
    }

    /// Records a finished request.
    pub fn request(&self, handler: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((handler.to_owned(), status))
            .or_default() += 1;
        let mut durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let h = durations.entry(handler.to_owned()).or_default();
        let secs = took.as_secs_f64();
        let bucket = REQUEST_BUCKETS_SECONDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(REQUEST_BUCKETS_SECONDS.len());
        h.buckets[bucket] += 1;
        h.sum_seconds += secs;
    }

    /// The exposition: these counters, `stats` of the engine (when open), the stores' sizes,
    /// and the process's.
    #[allow(clippy::too_many_arguments)] // reason: one figure source per part of the server
    pub fn render(
        &self,
        stats: Option<&Stats>,
        logs: Option<&LogFigures>,
        stores: StoreSizes,
        rule_groups: &[RuleGroupFigures],
        alertmanager: &SenderFigures,
        receivers: &[ReceiverFigures],
    ) -> String {
        let mut out = Exposition::default();
        render_rule_groups(&mut out, rule_groups);
        render_sender(&mut out, alertmanager);
        render_receivers(&mut out, receivers);
        out.counter(
            "strata_remote_write_samples_ingested_total",
            "Samples stored by remote write.",
            &[(
                String::new(),
                self.samples_ingested.load(Ordering::Relaxed) as f64,
            )],
        );
        out.counter(
            "strata_remote_write_exemplars_ingested_total",
            "Exemplars kept from remote write.",
            &[(
                String::new(),
                self.exemplars_ingested.load(Ordering::Relaxed) as f64,
            )],
        );
        let rejected: Vec<(String, f64)> = RejectReason::ALL
            .iter()
            .zip(&self.rejected)
            .map(|(r, n)| {
                (
                    format!("reason=\"{}\"", r.label()),
                    n.load(Ordering::Relaxed) as f64,
                )
            })
            .collect();
        out.counter(
            "strata_remote_write_samples_rejected_total",
            "Remote-write samples not stored, by reason.",
            &rejected,
        );
        let requests: Vec<(String, f64)> = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((h, code), n)| (format!("handler=\"{h}\",code=\"{code}\""), *n as f64))
            .collect();
        out.counter(
            "strata_http_requests_total",
            "HTTP requests answered, by handler and status code.",
            &requests,
        );
        let durations = self
            .durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.header(
            "strata_http_request_duration_seconds",
            "Time to answer HTTP requests, by handler.",
            "histogram",
        );
        for (handler, h) in &durations {
            out.histogram_series(
                "strata_http_request_duration_seconds",
                &format!("handler=\"{handler}\""),
                &REQUEST_BUCKETS_SECONDS,
                &h.buckets,
                h.sum_seconds,
            );
        }
        out.gauge(
            "strata_exemplars",
            "Exemplars held in memory.",
            stores.exemplars as f64,
        );
        out.gauge(
            "strata_metadata_families",
            "Metric families with metadata held.",
            stores.metadata as f64,
        );
        out.gauge(
            "strata_remote_write_known_series",
            "Series remote write finds by their label bytes as sent.",
            stores.known_series as f64,
        );
        out.gauge(
            "strata_remote_write_known_series_bytes",
            "Memory of the table of series known by their label bytes.",
            stores.known_series_bytes as f64,
        );
        if let Some(s) = stats {
            render_storage(&mut out, s);
        }
        self.render_logs(&mut out, logs);
        render_process(&mut out, self.started);
        render_allocator(&mut out);
        out.text
    }
}

impl Metrics {
    fn render_logs(&self, out: &mut Exposition, logs: Option<&LogFigures>) {
        let stored = self
            .logs_stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let by_protocol = |f: fn(&(u64, u64)) -> u64| -> Vec<(String, f64)> {
            stored
                .iter()
                .map(|(p, v)| (format!("protocol=\"{}\"", p.label()), f(v) as f64))
                .collect()
        };
        out.counter(
            "strata_log_entries_received_total",
            "Log entries stored, by the protocol that brought them.",
            &by_protocol(|v| v.0),
        );
        out.counter(
            "strata_log_bytes_received_total",
            "Bytes of the log entries stored (lines and structured metadata), by protocol.",
            &by_protocol(|v| v.1),
        );
        let rejected: Vec<(String, f64)> = self
            .logs_rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((p, reason), n)| {
                (
                    format!("protocol=\"{}\",reason=\"{reason}\"", p.label()),
                    *n as f64,
                )
            })
            .collect();
        out.counter(
            "strata_log_entries_rejected_total",
            "Log entries refused, by protocol and reason.",
            &rejected,
        );
        let Some(f) = logs else { return };
        out.gauge(
            "strata_log_streams",
            "Log streams in the head.",
            f.streams as f64,
        );
        out.gauge(
            "strata_log_head_entries",
            "Log entries in the head, not yet sealed into a block.",
            f.head_entries as f64,
        );
        out.gauge(
            "strata_log_head_bytes",
            "Bytes of the log entries in the head.",
            f.head_bytes as f64,
        );
        out.gauge("strata_log_blocks", "Sealed log blocks.", f.blocks as f64);
        out.gauge(
            "strata_log_block_bytes",
            "Bytes of the sealed log blocks on disk.",
            f.block_bytes as f64,
        );
        out.gauge(
            "strata_log_compaction_due",
            "1 while a run of sealed log blocks waits to be merged.",
            f64::from(u8::from(f.compaction_due)),
        );
        out.counter(
            "strata_log_pages_read_total",
            "Block pages log queries read.",
            &[(String::new(), f.pages_read as f64)],
        );
        out.counter(
            "strata_log_pages_skipped_total",
            "Block pages in a log query's range it skipped: their token filter lacked a needle.",
            &[(String::new(), f.pages_skipped as f64)],
        );
        out.counter(
            "strata_log_page_bytes_read_total",
            "Bytes of the block pages log queries read, once decompressed.",
            &[(String::new(), f.page_bytes_read as f64)],
        );
    }
}

/// What the process's allocator says of its heap: the binary installs an allocator that can
/// tell (see `main.rs`); the library's own tests run on the system allocator and show none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes the program holds.
    pub allocated: u64,
    /// Bytes in the pages those allocations touch (allocated plus fragmentation).
    pub active: u64,
    /// Bytes the allocator has in physical memory, its own metadata and unpurged pages included.
    pub resident: u64,
    /// Bytes of address space kept mapped for reuse but given back to the kernel.
    pub retained: u64,
}

static ALLOCATOR_STATS: OnceLock<fn() -> Option<AllocatorStats>> = OnceLock::new();

/// Registers how to read the allocator's figures for `/metrics` (once per process).
pub fn report_allocator(read: fn() -> Option<AllocatorStats>) {
    // A second registration is the same function again; the first stays.
    let _ = ALLOCATOR_STATS.set(read);
}

fn render_allocator(out: &mut Exposition) {
    let Some(stats) = ALLOCATOR_STATS.get().and_then(|read| read()) else {
        return;
    };
    for (name, help, v) in [
        (
            "strata_allocator_allocated_bytes",
            "Heap bytes the program holds.",
            stats.allocated,
        ),
        (
            "strata_allocator_active_bytes",
            "Bytes in the heap's pages in use: held bytes plus fragmentation.",
            stats.active,
        ),
        (
            "strata_allocator_resident_bytes",
            "Bytes the allocator keeps in physical memory, unpurged free pages included.",
            stats.resident,
        ),
        (
            "strata_allocator_retained_bytes",
            "Address space the allocator keeps mapped for reuse, returned to the kernel.",
            stats.retained,
        ),
    ] {
        out.gauge(name, help, v as f64);
    }
}

fn render_storage(out: &mut Exposition, s: &Stats) {
    out.gauge("strata_head_series", "Series in the head.", s.series as f64);
    out.gauge(
        "strata_head_samples",
        "Samples in the head.",
        s.samples as f64,
    );
    out.gauge("strata_head_chunks", "Chunks in the head.", s.chunks as f64);
    out.gauge(
        "strata_head_chunk_bytes",
        "Bytes of encoded chunk data in the head.",
        s.chunk_bytes as f64,
    );
    out.counter(
        "strata_head_samples_appended_total",
        "Samples appended since start, in order or out of order.",
        &[
            ("order=\"in\"".into(), s.samples_in_order as f64),
            ("order=\"out\"".into(), s.samples_out_of_order as f64),
        ],
    );
    out.counter(
        "strata_head_samples_duplicate_total",
        "Samples acknowledged as duplicates of stored data since start.",
        &[(String::new(), s.samples_duplicate as f64)],
    );
    out.gauge("strata_blocks", "Blocks on disk.", s.blocks as f64);
    out.family(
        "strata_storage_bytes",
        "Bytes on disk, of blocks and of the write-ahead log.",
        "gauge",
        &[
            ("kind=\"blocks\"".into(), s.block_bytes as f64),
            ("kind=\"wal\"".into(), s.wal_disk_bytes as f64),
        ],
    );
    out.family(
        "strata_decoded_cache_bytes",
        "Bytes of decoded block chunks kept for queries: samples, and timestamps that series share.",
        "gauge",
        &[
            ("kind=\"samples\"".into(), s.decoded_cache.bytes as f64),
            ("kind=\"times\"".into(), s.decoded_times_cache.bytes as f64),
        ],
    );
    out.family(
        "strata_decoded_cache_lookups_total",
        "Chunk reads by queries that found the decoded chunk (samples) or its shared timestamps (times) cached (hit) or decoded them (miss).",
        "counter",
        &[
            ("kind=\"samples\",result=\"hit\"".into(), s.decoded_cache.hits as f64),
            ("kind=\"samples\",result=\"miss\"".into(), s.decoded_cache.misses as f64),
            ("kind=\"times\",result=\"hit\"".into(), s.decoded_times_cache.hits as f64),
            ("kind=\"times\",result=\"miss\"".into(), s.decoded_times_cache.misses as f64),
        ],
    );
    out.counter(
        "strata_blocks_cut_total",
        "Blocks cut from the head since start.",
        &[(String::new(), s.maintenance.blocks_cut as f64)],
    );
    out.counter(
        "strata_compactions_total",
        "Block compactions since start.",
        &[(String::new(), s.maintenance.compactions as f64)],
    );
    out.counter(
        "strata_blocks_expired_total",
        "Blocks removed by retention since start.",
        &[(String::new(), s.maintenance.blocks_expired as f64)],
    );
    out.counter(
        "strata_checkpoints_total",
        "WAL checkpoints written since start.",
        &[(String::new(), s.checkpoints as f64)],
    );
    out.counter(
        "strata_wal_bytes_written_total",
        "Bytes of records written to the WAL since start.",
        &[(String::new(), s.wal.bytes_written as f64)],
    );
    out.counter(
        "strata_wal_failed_flushes_total",
        "WAL writes or syncs that failed since start.",
        &[(String::new(), s.wal.failed_flushes as f64)],
    );
    out.header(
        "strata_wal_fsync_duration_seconds",
        "Time the WAL's fsyncs took.",
        "histogram",
    );
    out.histogram_series(
        "strata_wal_fsync_duration_seconds",
        "",
        &SYNC_BUCKETS_SECONDS,
        &s.wal.sync_buckets,
        s.wal.sync_nanos_total as f64 / 1e9,
    );
}

fn render_process(out: &mut Exposition, started: SystemTime) {
    let start = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    out.gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch, in seconds.",
        start,
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    if let Some(rss) = kib("VmRSS:") {
        out.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            rss * 1024.0,
        );
    }
    if let Some(vm) = kib("VmSize:") {
        out.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            vm * 1024.0,
        );
    }
    // utime and stime are fields 14 and 15 of /proc/self/stat, after the parenthesised name.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12))
            && let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>())
        {
            // The kernel counts in clock ticks, 100 per second on Linux.
            out.counter(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                &[(String::new(), (u + s) / 100.0)],
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
}

/// What `/metrics` shows of one rule group.
#[derive(Debug, Clone, Default)]
pub struct RuleGroupFigures {
    /// `file;name`, as Prometheus labels its rule-group metrics.
    pub key: String,
    pub rules: usize,
    pub interval_seconds: f64,
    pub last_duration_seconds: f64,
    pub last_evaluation_seconds: f64,
    pub iterations: u64,
    pub iterations_missed: u64,
    pub rule_evaluations: u64,
    pub rule_failures: u64,
}

fn render_sender(out: &mut Exposition, f: &SenderFigures) {
    let per = |pick: fn(&(String, u64, u64)) -> u64| -> Vec<(String, f64)> {
        f.targets
            .iter()
            .map(|t| (format!("alertmanager={:?}", t.0), pick(t) as f64))
            .collect()
    };
    out.counter(
        "strata_notifications_sent_total",
        "Alerts sent to each Alertmanager.",
        &per(|t| t.1),
    );
    out.counter(
        "strata_notifications_errors_total",
        "Sends to each Alertmanager that failed.",
        &per(|t| t.2),
    );
    out.counter(
        "strata_notifications_dropped_total",
        "Alerts dropped because the queue was full.",
        &[(String::new(), f.dropped as f64)],
    );
    out.gauge(
        "strata_notifications_queue_length",
        "Alerts waiting to be sent to Alertmanager.",
        f.queue_length as f64,
    );
    out.gauge(
        "strata_notifications_queue_capacity",
        "Alerts the queue holds at most.",
        f.queue_capacity as f64,
    );
}

fn render_receivers(out: &mut Exposition, receivers: &[ReceiverFigures]) {
    let per = |pick: fn(&ReceiverFigures) -> f64| -> Vec<(String, f64)> {
        receivers
            .iter()
            .map(|r| (format!("receiver={:?}", r.receiver), pick(r)))
            .collect()
    };
    out.counter(
        "strata_notifier_messages_sent_total",
        "Messages each built-in receiver (Slack, webhook) accepted.",
        &per(|r| r.sent as f64),
    );
    out.counter(
        "strata_notifier_messages_failed_total",
        "Attempts to send a message that failed (tried again unless the receiver refused it).",
        &per(|r| r.failed as f64),
    );
    out.counter(
        "strata_notifier_messages_dropped_total",
        "Messages a receiver refused (4xx other than 429), left until the next group interval.",
        &per(|r| r.dropped as f64),
    );
    out.family(
        "strata_notifier_groups",
        "Alert groups each receiver holds (waiting for their next message or look).",
        "gauge",
        &per(|r| r.queued as f64),
    );
}

fn render_rule_groups(out: &mut Exposition, groups: &[RuleGroupFigures]) {
    let series = |f: &dyn Fn(&RuleGroupFigures) -> f64| -> Vec<(String, f64)> {
        groups
            .iter()
            .map(|g| (format!("rule_group={:?}", g.key), f(g)))
            .collect()
    };
    out.family(
        "strata_rule_group_rules",
        "Rules in the group.",
        "gauge",
        &series(&|g| g.rules as f64),
    );
    out.family(
        "strata_rule_group_interval_seconds",
        "The group's evaluation interval.",
        "gauge",
        &series(&|g| g.interval_seconds),
    );
    out.family(
        "strata_rule_group_last_duration_seconds",
        "How long the group's last evaluation took.",
        "gauge",
        &series(&|g| g.last_duration_seconds),
    );
    out.family(
        "strata_rule_group_last_evaluation_timestamp_seconds",
        "When the group was last evaluated (Unix seconds).",
        "gauge",
        &series(&|g| g.last_evaluation_seconds),
    );
    out.counter(
        "strata_rule_group_iterations_total",
        "Scheduled evaluations of the group that ran.",
        &series(&|g| g.iterations as f64),
    );
    out.counter(
        "strata_rule_group_iterations_missed_total",
        "Scheduled evaluations skipped because an earlier one overran or the process stalled.",
        &series(&|g| g.iterations_missed as f64),
    );
    out.counter(
        "strata_rule_evaluations_total",
        "Rule evaluations in the group.",
        &series(&|g| g.rule_evaluations as f64),
    );
    out.counter(
        "strata_rule_evaluation_failures_total",
        "Rule evaluations in the group that failed.",
        &series(&|g| g.rule_failures as f64),
    );
}

/// Builds the text exposition.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// A family of counters or gauges: `(labels, value)` per series.
    fn family(&mut self, name: &str, help: &str, kind: &str, series: &[(String, f64)]) {
        self.header(name, help, kind);
        for (labels, v) in series {
            self.sample(name, labels, *v);
        }
    }

    fn counter(&mut self, name: &str, help: &str, series: &[(String, f64)]) {
        self.family(name, help, "counter", series);
    }

    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, help, "gauge", &[(String::new(), v)]);
    }

    fn sample(&mut self, name: &str, labels: &str, v: f64) {
        let value = format_value(v);
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {value}");
        }
    }

    /// One histogram's `_bucket` (cumulative), `_sum` and `_count` lines; `counts` has one
    /// entry per bound plus one for larger values.
    fn histogram_series(
        &mut self,
        name: &str,
        labels: &str,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (bound, n) in bounds.iter().zip(counts) {
            cumulative += n;
            let _ = writeln!(
                self.text,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += counts.get(bounds.len()).copied().unwrap_or(0);
        let _ = writeln!(
            self.text,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(self.text, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(self.text, "{name}_count{} {cumulative}", braces(labels));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_prometheus_text_with_cumulative_buckets() {
        let m = Metrics::default();
        m.ingested(10, 1);
        m.rejected(RejectReason::BadData, 3);
        m.request("/api/v1/write", 204, Duration::from_millis(3));
        m.request("/api/v1/write", 204, Duration::from_millis(30));
        m.request("/api/v1/write", 400, Duration::from_secs(20));
        let stats = Stats {
            series: 5,
            block_bytes: 100,
            wal_disk_bytes: 7,
            ..Stats::default()
        };
        let stores = StoreSizes {
            exemplars: 2,
            metadata: 1,
            known_series: 4,
            known_series_bytes: 1000,
        };
        let text = m.render(
            Some(&stats),
            None,
            stores,
            &[],
            &SenderFigures::default(),
            &[],
        );
        for line in [
            "# TYPE strata_remote_write_samples_ingested_total counter",
            "strata_remote_write_samples_ingested_total 10",
            "strata_remote_write_samples_rejected_total{reason=\"bad_data\"} 3",
            "strata_remote_write_known_series 4",
            "strata_remote_write_samples_rejected_total{reason=\"series_limit\"} 0",
            "strata_http_requests_total{handler=\"/api/v1/write\",code=\"204\"} 2",
            "strata_http_requests_total{handler=\"/api/v1/write\",code=\"400\"} 1",
            "strata_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"0.005\"} 1",
            "strata_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"0.05\"} 2",
            "strata_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"10\"} 2",
            "strata_http_request_duration_seconds_bucket{handler=\"/api/v1/write\",le=\"+Inf\"} 3",
            "strata_http_request_duration_seconds_count{handler=\"/api/v1/write\"} 3",
            "strata_head_series 5",
            "strata_storage_bytes{kind=\"blocks\"} 100",
            "strata_storage_bytes{kind=\"wal\"} 7",
            "strata_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 0",
            "strata_wal_fsync_duration_seconds_count 0",
            "strata_exemplars 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("process_cpu_seconds_total "));
        // Every sample line belongs to a family announced by a TYPE line before it.
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    typed.iter().any(|t| name == t
                        || name
                            .strip_prefix(t.as_str())
                            .is_some_and(|s| { ["_bucket", "_sum", "_count"].contains(&s) })),
                    "{line}"
                );
            }
        }
    }
}
