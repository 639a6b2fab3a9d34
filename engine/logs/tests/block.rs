//! Sealed log blocks through their public API: what is written reads back, pages and their
//! filters skip what cannot match, a power cut leaves a block whole or absent, and damage is
//! an error naming the file, never a panic.

use std::path::{Path, PathBuf};

use strata_core::error::StorageError;
use strata_core::fs::Fs;
use strata_core::fs::sim::{SimFs, SplitMix64};
use strata_core::labels::Labels;
use strata_core::labels::matcher::{MatchKind, Matcher};
use strata_logs::Entry;
use strata_logs::block::{
    BlockWriter, LogBlock, PAGE_BYTES, ZSTD_LEVEL, block_file_name, write_block,
};
use strata_logs::filter::Needle;

const T0: i64 = 1_800_000_000_000_000_000;

fn stream(app: &str, level: &str) -> Labels {
    Labels::new([("app", app), ("level", level)]).unwrap()
}

/// `n` entries a second apart from `T0 + offset`, some with metadata, lines of varied length
/// and content (a few non-ASCII, one empty).
fn entries(app: &str, n: usize, offset: i64, rng: &mut SplitMix64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut e = Entry::new(
                T0 + offset + i as i64 * 1_000_000_000,
                match i % 7 {
                    0 => String::new(),
                    3 => format!("{app} größe={} ünïcödé", rng.below(1000)),
                    _ => format!(
                        "level=info app={app} msg=\"request served\" path=/api/v1/items/{} status={} duration_ms={}",
                        rng.below(100_000),
                        [200, 200, 200, 404, 500][rng.below(5) as usize],
                        rng.below(2_000)
                    ),
                },
            );
            if i % 3 == 0 {
                e.metadata = vec![
                    ("trace_id".into(), format!("{:032x}", rng.next_u64())),
                    ("user".into(), format!("u{}", rng.below(50))),
                ];
            }
            e
        })
        .collect()
}

fn dir() -> PathBuf {
    PathBuf::from("/data/logs/blocks")
}

fn read_stream(block: &LogBlock, i: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    for p in block.streams()[i].pages.clone() {
        block.read_page(p, &mut out).unwrap();
    }
    out
}

#[test]
fn a_block_reads_back_every_stream_s_entries_in_time_order() {
    let fs = SimFs::new(1);
    let mut rng = SplitMix64::new(2);
    let api = entries("api", 12_000, 0, &mut rng);
    let db = entries("db", 40, 500, &mut rng);
    let (l_api, l_db, l_none) = (
        stream("api", "info"),
        stream("db", "warn"),
        stream("x", "y"),
    );
    // Given in an order other than the labels'; a stream without entries is left out.
    let summary = write_block(
        &fs,
        &dir(),
        7,
        &[(&l_db, &db), (&l_none, &[]), (&l_api, &api)],
    )
    .unwrap();
    assert_eq!(summary.path, dir().join("0000000007.lblk"));
    assert_eq!(summary.streams, 2);
    assert_eq!(summary.entries, 12_040);
    assert_eq!(
        (summary.min_ts, summary.max_ts),
        (T0, T0 + 11_999 * 1_000_000_000)
    );
    let raw: usize = api.iter().map(|e| e.bytes()).sum();
    assert!(raw > 2 * PAGE_BYTES, "the big stream needs several pages");
    assert!(summary.pages >= 3, "{summary:?}");
    assert!(
        summary.bytes < raw as u64 / 3,
        "compressed: {} of {raw}",
        summary.bytes
    );

    let block = LogBlock::open(&fs, &summary.path).unwrap();
    assert_eq!(block.seq(), 7);
    assert_eq!(block.time_range(), (summary.min_ts, summary.max_ts));
    let labels: Vec<&Labels> = block.streams().iter().map(|s| &s.labels).collect();
    assert_eq!(labels, [&l_api, &l_db], "sorted by labels");
    assert_eq!(read_stream(&block, 0), api);
    assert_eq!(read_stream(&block, 1), db);
    for p in block.pages() {
        assert!(p.min_ts <= p.max_ts);
    }
    let api_pages = &block.pages()[block.streams()[0].pages.clone()];
    assert!(
        api_pages.windows(2).all(|w| w[0].max_ts <= w[1].min_ts),
        "a stream's pages follow each other in time"
    );
    assert_eq!(block.select(&[Matcher::equal("app", "db")]), [1]);
    let any = Matcher::new(MatchKind::Regex, "level", "info|warn").unwrap();
    assert_eq!(block.select(&[any]), [0, 1]);
    assert_eq!(block.label_values("app"), ["api", "db"]);
    assert_eq!(block.label_names(), ["app", "level"]);
}

#[test]
fn page_filters_skip_pages_without_the_needle_and_keep_those_with_it() {
    let fs = SimFs::new(3);
    let l = stream("api", "info");
    let mut es: Vec<Entry> = (0..20_000)
        .map(|i| Entry::new(T0 + i, format!("GET /health 200 took {}us", i % 977)))
        .collect();
    // One line, in one page only, holds the needle.
    es[15_000].line = "POST /checkout 500 upstream timeout after 30s".into();
    let summary = write_block(&fs, &dir(), 1, &[(&l, &es)]).unwrap();
    let block = LogBlock::open(&fs, &summary.path).unwrap();
    assert!(block.pages().len() >= 2, "{summary:?}");
    let needle = Needle::exact("upstream timeout").unwrap();
    let needle = [&needle];
    let maybe: Vec<usize> = (0..block.pages().len())
        .filter(|&p| block.page_may_contain(p, &needle))
        .collect();
    let holder = (0..block.pages().len())
        .find(|&p| {
            let mut out = Vec::new();
            block.read_page(p, &mut out).unwrap();
            out.iter().any(|e| e.line.contains("upstream timeout"))
        })
        .unwrap();
    assert_eq!(maybe, [holder], "only the page holding the line is read");
    let shouting = Needle::case_insensitive("UPSTREAM TIMEOUT").unwrap();
    let shouting = [&shouting];
    assert!(block.page_may_contain(holder, &shouting));
    let (health, checkout) = (
        Needle::exact("/health").unwrap(),
        Needle::exact("checkout").unwrap(),
    );
    let both = [&health, &checkout];
    assert!(block.page_may_contain(holder, &both));
    let other = (holder + 1) % block.pages().len();
    assert!(
        !block.page_may_contain(other, &both),
        "every needle must be there"
    );
}

#[test]
fn a_power_cut_while_writing_leaves_the_block_whole_or_absent() {
    let l = stream("api", "info");
    let mut rng = SplitMix64::new(5);
    let es = entries("api", 3_000, 0, &mut rng);
    // The operations one write takes.
    let probe = SimFs::new(9);
    write_block(&probe, &dir(), 1, &[(&l, &es)]).unwrap();
    let ops = probe.stats().ops;
    assert!(ops >= 4, "create, write, sync, rename, sync dir: {ops}");
    for op in 0..=ops {
        let fs = SimFs::new(9);
        fs.crash_before_op(op);
        let written = write_block(&fs, &dir(), 1, &[(&l, &es)]);
        let after = fs.crashed().unwrap_or_else(|| fs.crash());
        let path = dir().join(block_file_name(1));
        match after.exists(&path).unwrap() {
            true => {
                let block = LogBlock::open(&after, &path).unwrap();
                assert_eq!(read_stream(&block, 0), es, "crash before op {op}");
            }
            false => assert!(
                written.is_err(),
                "acknowledged yet absent, crash before op {op}"
            ),
        }
    }
}

/// A writer holds its filters in memory up to a bound and the rest in a file of their own: a
/// block written through that file is the same bytes as one written without it, its
/// filters' file is gone after, and a power cut at any point leaves the block whole or absent
/// and no filters file that opening the store would not remove (`*.tmp`).
#[test]
fn filters_held_in_a_file_while_writing_give_the_same_block() {
    let mut rng = SplitMix64::new(11);
    let streams: Vec<(Labels, Vec<Entry>)> = (0..30)
        .map(|i| {
            let app = format!("app{i:02}");
            let es = entries(&app, 50 + i * 40, i as i64, &mut rng);
            (stream(&app, "info"), es)
        })
        .collect();
    let write = |fs: &SimFs, buffer: Option<usize>| -> Result<_, StorageError> {
        let mut w = BlockWriter::create(fs, &dir(), 3, ZSTD_LEVEL)?;
        if let Some(b) = buffer {
            w = w.with_filters_buffer(b);
        }
        for (l, es) in &streams {
            w.write_stream(l, es)?;
        }
        w.finish(0, &[], &dir().join(block_file_name(3)))
    };
    let path = dir().join(block_file_name(3));
    let held = SimFs::new(1);
    write(&held, None).unwrap();
    let spilled = SimFs::new(1);
    let probe = SimFs::new(1);
    write(&probe, Some(64)).unwrap();
    let ops = probe.stats().ops;
    assert!(
        ops > held.stats().ops + 10,
        "the filters went through their file: {ops} operations"
    );
    write(&spilled, Some(64)).unwrap();
    assert_eq!(spilled.read(&path).unwrap(), held.read(&path).unwrap());
    assert_eq!(spilled.list(&dir()).unwrap(), [block_file_name(3)]);
    let block = LogBlock::open(&spilled, &path).unwrap();
    assert_eq!(read_stream(&block, 29), streams[29].1);

    for op in (0..=ops).step_by(7) {
        let fs = SimFs::new(1);
        fs.crash_before_op(op);
        let written = write(&fs, Some(64));
        let after = fs.crashed().unwrap_or_else(|| fs.crash());
        for name in after.list(&dir()).unwrap_or_default() {
            assert!(
                name == block_file_name(3) || name.ends_with(".tmp"),
                "crash before op {op}: {name} left"
            );
        }
        match after.exists(&path).unwrap() {
            true => assert_eq!(after.read(&path).unwrap(), held.read(&path).unwrap()),
            false => assert!(
                written.is_err(),
                "acknowledged yet absent, crash before op {op}"
            ),
        }
    }
}

/// Opens the block at `path` on `fs` and reads every page, the way a query would.
fn open_and_read(fs: &dyn Fs, path: &Path) -> Result<usize, StorageError> {
    let block = LogBlock::open(fs, path)?;
    let mut out = Vec::new();
    for p in 0..block.pages().len() {
        block.read_page(p, &mut out)?;
    }
    Ok(out.len())
}

#[test]
fn every_flipped_bit_of_a_block_is_found_or_harmless_and_never_panics() {
    let fs = SimFs::new(11);
    let mut rng = SplitMix64::new(12);
    let a = entries("a", 30, 0, &mut rng);
    let b = entries("b", 12, 7, &mut rng);
    let (la, lb) = (stream("a", "info"), stream("b", "info"));
    let summary = write_block(&fs, &dir(), 3, &[(&la, &a), (&lb, &b)]).unwrap();
    let bytes = fs.read(&summary.path).unwrap();
    let mut found = 0;
    for bit in 0..bytes.len() as u64 * 8 {
        fs.set_content(&summary.path, &bytes).unwrap();
        fs.flip_bit(&summary.path, bit).unwrap();
        match open_and_read(&fs, &summary.path) {
            Err(StorageError::Corruption { path, .. }) => {
                assert_eq!(path, summary.path);
                found += 1;
            }
            Err(e) => panic!("bit {bit}: not a corruption error: {e}"),
            Ok(n) => panic!("bit {bit}: flipped yet {n} entries read without complaint"),
        }
    }
    assert_eq!(found, bytes.len() * 8);
    // Cut short anywhere.
    for len in 0..bytes.len() {
        fs.set_content(&summary.path, &bytes[..len]).unwrap();
        assert!(
            matches!(
                open_and_read(&fs, &summary.path),
                Err(StorageError::Corruption { .. })
            ),
            "cut to {len} bytes"
        );
    }
}

/// A block of the format before filters of any multiple of 64 bits (`SLB3`, every filter a
/// power of two, where `h mod m` is the bit the old reader took) is read as an `SLB4` one;
/// an unknown magic is refused. Made here from a current block, its magic changed (and the
/// header's checksum with it).
#[test]
fn blocks_of_the_previous_magic_are_still_read() {
    let fs = SimFs::new(6);
    let l = stream("api", "info");
    let mut es: Vec<Entry> = (0..64)
        .map(|i| Entry::new(T0 + i, format!("GET /health 200 took {i}us")))
        .collect();
    es[40].line = "POST /checkout 500 upstream timeout".into();
    let summary = write_block(&fs, &dir(), 1, &[(&l, &es)]).unwrap();
    let mut bytes = fs.read(&summary.path).unwrap();
    assert_eq!(&bytes[..4], b"SLB4");
    bytes[..4].copy_from_slice(b"SLB3");
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let old = dir().join(block_file_name(2));
    let mut f = fs.create(&old).unwrap();
    f.append(&bytes).unwrap();
    f.sync().unwrap();
    let block = LogBlock::open(&fs, &old).unwrap();
    assert_eq!(read_stream(&block, 0), es);
    let hit = Needle::exact("upstream timeout").unwrap();
    let miss = Needle::exact("connection refused").unwrap();
    assert!(block.page_may_contain(0, &[&hit]));
    assert!(!block.page_may_contain(0, &[&miss]));
    bytes[..4].copy_from_slice(b"SLBX");
    let crc = crc32fast::hash(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    let unknown = dir().join(block_file_name(3));
    let mut f = fs.create(&unknown).unwrap();
    f.append(&bytes).unwrap();
    assert!(matches!(
        LogBlock::open(&fs, &unknown),
        Err(StorageError::Corruption { .. })
    ));
}
