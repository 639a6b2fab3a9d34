//! The dashboard queries of Strata's query benchmarks, shared by the engine's `promql` bench
//! (in-process) and `query-compare` (over HTTP, against every system): what node_exporter
//! dashboards ask, over a day at a minute's step and over shorter ranges at finer steps.

/// One benchmark query: an instant query at the end of the data, or a range query over the
/// last `range_s` seconds at `step_s`.
#[derive(Debug, Clone, Copy)]
pub struct QuerySpec {
    pub name: &'static str,
    pub expr: &'static str,
    /// 0 for an instant query.
    pub range_s: i64,
    pub step_s: i64,
}

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

const fn range(name: &'static str, expr: &'static str, range_s: i64, step_s: i64) -> QuerySpec {
    QuerySpec {
        name,
        expr,
        range_s,
        step_s,
    }
}

const fn instant(name: &'static str, expr: &'static str) -> QuerySpec {
    QuerySpec {
        name,
        expr,
        range_s: 0,
        step_s: 0,
    }
}

/// The queries.
pub const QUERIES: &[QuerySpec] = &[
    range(
        "cpu busy by instance, 24h",
        "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))",
        DAY,
        60,
    ),
    range(
        "cpu % used, 24h",
        "100 - (avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m])) * 100)",
        DAY,
        60,
    ),
    range(
        "cpu by mode, regex instance, 24h",
        "sum by (mode) (rate(node_cpu_seconds_total{instance=~\"host-1.*\"}[5m]))",
        DAY,
        60,
    ),
    range(
        "memory available ratio, 24h",
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        DAY,
        60,
    ),
    range(
        "network receive by instance, 24h",
        "sum by (instance) (rate(node_network_receive_bytes_total[5m]))",
        DAY,
        60,
    ),
    range(
        "network transmit, regex device, 24h",
        "sum by (instance) (rate(node_network_transmit_bytes_total{device!~\"lo|veth.*\"}[5m]))",
        DAY,
        60,
    ),
    range(
        "request duration p99, 24h",
        "histogram_quantile(0.99, sum by (le) (rate(promhttp_metric_handler_request_duration_seconds_bucket[5m])))",
        DAY,
        60,
    ),
    range(
        "context switches, 24h",
        "sum(rate(node_context_switches_total[5m]))",
        DAY,
        60,
    ),
    range(
        "load1 hourly average, 24h",
        "avg_over_time(node_load1[1h])",
        DAY,
        60,
    ),
    range(
        "filesystem free ratio, 24h",
        "node_filesystem_avail_bytes{mountpoint=\"/\"} / node_filesystem_size_bytes{mountpoint=\"/\"}",
        DAY,
        60,
    ),
    range(
        "packets received per hour, 24h",
        "increase(node_network_receive_packets_total[1h])",
        DAY,
        60,
    ),
    range(
        "disk io p95 across hosts, 24h",
        "quantile(0.95, rate(node_disk_io_time_seconds_total[5m]))",
        DAY,
        60,
    ),
    range(
        "request duration p90 by instance, 6h",
        "histogram_quantile(0.9, sum by (le, instance) (rate(promhttp_metric_handler_request_duration_seconds_bucket[5m])))",
        6 * HOUR,
        60,
    ),
    range(
        "disk reads, 6h",
        "rate(node_disk_read_bytes_total[5m])",
        6 * HOUR,
        30,
    ),
    range(
        "load5 10m max, 6h",
        "max_over_time(node_load5[10m])",
        6 * HOUR,
        60,
    ),
    range(
        "active memory trend, 6h",
        "deriv(node_memory_Active_bytes[30m])",
        6 * HOUR,
        60,
    ),
    range(
        "memory by kind, 6h",
        "{__name__=~\"node_memory_(MemFree|Cached|Buffers)_bytes\"}",
        6 * HOUR,
        60,
    ),
    range(
        "top 5 cpu, 1h",
        "topk(5, sum by (instance) (rate(node_cpu_seconds_total[5m])))",
        HOUR,
        15,
    ),
    range(
        "cpu irate without cpu, 1h",
        "sum without (cpu) (irate(node_cpu_seconds_total[5m]))",
        HOUR,
        15,
    ),
    range("page faults, 1h", "rate(node_vmstat_pgfault[5m])", HOUR, 15),
    instant(
        "top 10 free filesystems",
        "topk(10, node_filesystem_avail_bytes)",
    ),
    instant("hosts", "count(node_uname_info)"),
    instant(
        "filesystem full in 4h",
        "predict_linear(node_filesystem_avail_bytes[6h], 4 * 3600) < 0",
    ),
    instant(
        "cpu seconds by mode, now",
        "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
    ),
];
