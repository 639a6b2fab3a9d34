//! Building a log page's token filter: bytes of lines per second, the generated log mix of
//! `strata-bench logs` (access, JSON, logfmt and Java lines) in pages of 256 KiB, as a seal
//! and a merge build them. The filter was a fifth of the log ingest's CPU.
//!
//! Run with `cargo bench -p strata-engine --bench log_filter`.

use criterion::{Criterion, Throughput};
use strata_engine::logs::block::PAGE_BYTES;
use strata_engine::logs::filter::FilterBuilder;
use strata_testkit::logdata::{LogData, LogSpec};

/// Bytes of lines the bench builds filters of, in pages.
const BYTES: usize = 8 << 20;

fn pages() -> Vec<Vec<String>> {
    let data = LogData::new(LogSpec {
        seed: 7,
        streams: 1,
        lines: 1 << 20,
        start_ns: 1_700_000_000_000_000_000,
        span_ns: 3_600_000_000_000,
        lines_per_trace: 8,
        needles: 0,
        round_robin: true,
    });
    let mut pages = vec![Vec::new()];
    let (mut total, mut in_page) = (0, 0);
    let mut text = String::new();
    for i in 0.. {
        data.line(i, &mut text);
        if in_page + text.len() > PAGE_BYTES {
            pages.push(Vec::new());
            in_page = 0;
        }
        in_page += text.len();
        total += text.len();
        pages.last_mut().expect("a page").push(text.clone());
        if total >= BYTES {
            break;
        }
    }
    pages
}

fn main() {
    let pages = pages();
    let bytes: usize = pages.iter().flatten().map(String::len).sum();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("log_filter");
    group.throughput(Throughput::Bytes(bytes as u64));
    let mut builder = FilterBuilder::default();
    group.bench_function("build", |b| {
        b.iter(|| {
            let mut filter_bytes = 0;
            for page in &pages {
                builder.begin(page.iter().map(String::len).sum());
                for line in page {
                    builder.add_line(line.as_bytes());
                }
                filter_bytes += builder.finish().len();
            }
            filter_bytes
        })
    });
    group.finish();
    c.final_summary();
}
