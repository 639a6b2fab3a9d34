//! Where a log store's bytes go: every block of a `blocks/` directory read page by page, each
//! page's columns (times, lengths, structured metadata, lines) compressed on their own at the
//! level pages are written at, beside the pages as stored, their token filters and the rest
//! (streams and page index, headers, footers).
//!
//! `cargo run --release -p strata-engine --example log_anatomy -- <data dir>/logs/blocks`
//!
//! The columns compressed apart add up to a little more than the pages as stored (each loses
//! the others as context); they show what each costs, not what a page does.

use std::path::{Path, PathBuf};

use strata_engine::fs::RealFs;
use strata_engine::logs::block::{LogBlock, ZSTD_LEVEL, encode_page_columns};

const COLUMNS: [&str; 4] = ["times", "lengths", "metadata", "lines"];

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: log_anatomy <blocks directory>")?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lblk"))
        .collect();
    paths.sort();
    let (mut file, mut stored, mut filters, mut pages, mut entries) = (0u64, 0u64, 0u64, 0, 0u64);
    let (mut raw, mut packed) = ([0u64; 4], [0u64; 4]);
    let mut read = Vec::new();
    for path in &paths {
        let block = LogBlock::open(&RealFs, Path::new(path))?;
        file += std::fs::metadata(path)?.len();
        for (p, meta) in block.pages().iter().enumerate() {
            stored += meta.len + 4;
            filters += meta.filter_len() as u64;
            pages += 1;
            entries += meta.entries;
            block.read_page_into(p, &mut read)?;
            let (bytes, columns) = encode_page_columns(&read);
            for (k, range) in columns.into_iter().enumerate() {
                raw[k] += range.len() as u64;
                packed[k] += zstd::bulk::compress(&bytes[range], ZSTD_LEVEL)?.len() as u64;
            }
        }
    }
    let rest = file - stored - filters;
    println!(
        "{} blocks, {pages} pages, {entries} entries, {:.1} MiB on disk",
        paths.len(),
        mib(file)
    );
    println!("{:<34} {:>10} {:>10}", "", "raw MiB", "MiB");
    println!(
        "{:<34} {:>10.1} {:>10.1}",
        "pages as stored (zstd frames, CRCs)",
        mib(raw.iter().sum()),
        mib(stored)
    );
    for k in 0..4 {
        println!(
            "{:<34} {:>10.1} {:>10.1}",
            format!("  {} alone", COLUMNS[k]),
            mib(raw[k]),
            mib(packed[k])
        );
    }
    println!("{:<34} {:>10} {:>10.1}", "token filters", "", mib(filters));
    println!(
        "{:<34} {:>10} {:>10.1}",
        "streams, page index, headers",
        "",
        mib(rest)
    );
    Ok(())
}
