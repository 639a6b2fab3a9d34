//! The log benchmark's report as text: each figure beside its target.

use std::fmt::Write;

use super::queries::{QueryKind, median};
use super::run::Report;

const MIB: f64 = (1u64 << 20) as f64;

/// The report as a plain-text table.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let raw = r.raw_bytes as f64;
    let _ = writeln!(out, "strata-bench logs: {}", r.command);
    let _ = writeln!(
        out,
        "data: {} lines, {:.1} MiB raw, {} streams over {} h",
        r.lines,
        raw / MIB,
        r.streams,
        r.span_s / 3600
    );
    let _ = writeln!(out, "\nsize");
    let total: u64 = r.disk.iter().map(|(_, b)| b).sum();
    let blocks: u64 = r
        .disk
        .iter()
        .filter(|(p, _)| p == "blocks")
        .map(|(_, b)| b)
        .sum();
    for (part, bytes) in &r.disk {
        let _ = writeln!(
            out,
            "  log store {part:<8} {:>10.1} MiB",
            *bytes as f64 / MIB
        );
    }
    let _ = writeln!(
        out,
        "  log store, all   {:>10.1} MiB = raw / {:.1}",
        total as f64 / MIB,
        raw / total.max(1) as f64
    );
    let _ = writeln!(
        out,
        "  sealed blocks    {:>10.1} MiB = raw / {:.1}   (target: raw / 15 and below zstd -3)",
        blocks as f64 / MIB,
        raw / blocks.max(1) as f64
    );
    if let Some(z) = r.zstd3_bytes {
        let _ = writeln!(
            out,
            "  zstd -3 of raw   {:>10.1} MiB = raw / {:.1}",
            z as f64 / MIB,
            raw / z.max(1) as f64
        );
    }
    if let Some((fed, z)) = r.zstd19 {
        let _ = writeln!(
            out,
            "  zstd -19 of raw  ratio {:.1} (on {:.0} MiB: the same share of every file)",
            fed as f64 / z.max(1) as f64,
            fed as f64 / MIB
        );
    }
    let _ = writeln!(out, "\ningest (Loki push, protobuf + snappy, fsync on)");
    let cpu = (r.push_server_cpu_s + r.settle_cpu_s).max(1e-9);
    let _ = writeln!(
        out,
        "  {:.1} MB raw and {:.0} lines per server CPU-second, seals included (target 50 MB); {:.1} MB/s wall; server CPU {:.1} s + {:.1} s settling; peak RSS {:.0} MiB",
        r.push.raw_bytes as f64 / 1e6 / cpu,
        r.push.lines as f64 / cpu,
        r.push.raw_bytes as f64 / 1e6 / r.push.wall_s.max(1e-9),
        r.push_server_cpu_s,
        r.settle_cpu_s,
        r.push_memory.hwm_bytes as f64 / MIB
    );
    let _ = writeln!(
        out,
        "\nqueries over the whole range (median of warm runs; cold: restarted, page cache dropped)"
    );
    let _ = writeln!(
        out,
        "  {:<48} {:>9} {:>9} {:>9} {:>9} {:>12} {:>9}",
        "query", "warm s", "cold s", "rg warm", "rg cold", "scanned MiB", "GB/s/core"
    );
    for q in &r.queries {
        let mut warm: Vec<f64> = q.warm.iter().map(|w| w.seconds).collect();
        let mut cpu: Vec<f64> = q.warm.iter().map(|w| w.server_cpu_s).collect();
        let scanned = q.warm.first().map_or(0, |w| w.bytes_read);
        let per_core = if scanned > 0 {
            format!("{:.2}", scanned as f64 / 1e9 / median(&mut cpu).max(0.01))
        } else {
            "-".into()
        };
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |s| format!("{s:.3}"));
        let _ = writeln!(
            out,
            "  {:<48} {:>9.3} {:>9} {:>9} {:>9} {:>12.1} {:>9}",
            q.query.name,
            median(&mut warm),
            opt(q.cold.as_ref().map(|c| c.seconds)),
            opt(q.rg_warm_s),
            opt(q.rg_cold_s),
            scanned as f64 / MIB,
            per_core
        );
        let answer = q.warm.first().map_or(0, |w| w.answer);
        let what = match q.query.kind {
            QueryKind::Log { .. } => "lines",
            QueryKind::Metric { .. } => "series",
        };
        let _ = writeln!(
            out,
            "      {} {what}{}   {}",
            answer,
            q.rg_lines
                .map_or(String::new(), |n| format!(" (rg: {n} lines)")),
            q.query.logql
        );
    }
    if let Some(l) = &r.live {
        let peak = l.rss_bytes.iter().copied().max().unwrap_or(0);
        let _ = writeln!(
            out,
            "\nlive: {:.0} lines/s into {} streams, {} trace ids: {} lines acknowledged, {} refused (429/503), {} failed; RSS read each second: peak {:.0} MiB, at the end {:.0} MiB; highest ever (VmHWM) {:.0} MiB (target 300); server CPU {:.1} s",
            l.rate,
            l.streams,
            l.distinct_traces,
            l.push.lines,
            l.push.refused,
            l.push.failed,
            peak as f64 / MIB,
            l.memory_end.rss_bytes as f64 / MIB,
            l.memory_end.hwm_bytes as f64 / MIB,
            l.server_cpu_s
        );
    }
    if let Some(l) = &r.limit {
        let _ = writeln!(
            out,
            "\nlimit: {} streams pushed, {} held; {} batches refused, e.g. {}; peak RSS {:.0} MiB",
            l.streams_pushed,
            l.streams_held,
            l.push.refused,
            l.push
                .examples
                .first()
                .and_then(|e| e.lines().next())
                .unwrap_or("-"),
            l.memory_end.hwm_bytes as f64 / MIB
        );
    }
    out
}
