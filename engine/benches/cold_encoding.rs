//! Cold-data encoding study: how sealed on-disk blocks should store their chunks.
//!
//! Generates node_exporter-like data (`strata_testkit::dataset`: by default 100 hosts × 24 h of
//! 15 s scrapes, about 298M samples), one series at a time in the order a block writes them
//! (series sorted by labels), and stores every series in each of these ways:
//!
//! - plain Gorilla (the codec's first version: delta-of-delta timestamps, XOR values) in chunks
//!   of 120 samples (the baseline), 240 samples and 24 h, sized by a bit model
//!   (`strata_testkit::gorilla`) without being written or decoded;
//! - the chunk codec (`chunk::xor`, "v2") in chunks of 240 samples (what the head cuts), 2 h,
//!   6 h and 24 h (the whole series of a day, at most `u16::MAX` samples);
//! - pages of about 64 KiB of consecutive v2 chunks (240-sample and 24 h chunks), each page
//!   compressed with zstd at levels 1, 3 and 9;
//! - encoding 3 ("v3", what blocks write), 6 h chunks: each chunk's values stream plus an
//!   8-byte reference, and each distinct times frame once (a host's series share their
//!   scrapes' timestamps, as a block's writer finds them);
//! - cheap extras: 256 KiB and 16 KiB pages at level 3 (size against the cost of reading one
//!   series), and each 24 h chunk compressed alone with zstd 3 (kept raw when that does not
//!   make it smaller), which keeps per-series access.
//!
//! Every byte is counted: chunk streams, plus the chunk frame's header and CRC for every chunk
//! (`chunk::FRAME_OVERHEAD_BYTES`, left uncompressed), plus for paged variants the compressed
//! pages and an 8-byte page header each.
//!
//! Speeds are measured on one thread. "decode" reads everything back (zstd decompression
//! included). "1-series" is what reading each series on its own would cost: a paged variant
//! must decompress the whole page for each series in it, so every page's decompression counts
//! once per distinct series it holds. "encode" is the v2 encoding plus, for zstd variants, the
//! compression. Each decode is checked: v2 chunks sample by sample against the generator
//! (timestamps equal, values bit for bit), and every decompressed page byte for byte against
//! the chunks that went in, then its chunks decoded and compared with a fingerprint of the
//! generator's samples. Any difference panics.
//!
//! Memory stays bounded: one series' samples at a time, plus the open pages.
//!
//! Run with `cargo bench -p strata-engine --bench cold_encoding`. `STRATA_COLD_HOSTS`
//! (default 100) and `STRATA_COLD_HOURS` (default 24) change the size, e.g.
//! `STRATA_COLD_HOSTS=5 STRATA_COLD_HOURS=4` for a quick run. Progress goes to stderr.

use strata_testkit::dataset;
use strata_testkit::gorilla;

use std::time::{Duration, Instant};

use dataset::{Dataset, GenSeries, SCRAPE_INTERVAL_MS, SeriesClass};
use gorilla::gorilla_bits;
use strata_engine::chunk::shared::SplitEncoder;
use strata_engine::chunk::xor::{XorEncoder, XorIter};
use strata_engine::chunk::{FRAME_OVERHEAD_BYTES, FrameSamples};

/// The seed of the chunk bench, so both look at the same fleet.
const SEED: u64 = 0x5742_a7a0;
const HOSTS_DEFAULT: usize = 100;
const HOURS_DEFAULT: u64 = 24;
const SCRAPES_PER_HOUR: u64 = 3_600_000 / SCRAPE_INTERVAL_MS as u64;
/// Samples in a chunk of a whole day.
const DAY: usize = 24 * SCRAPES_PER_HOUR as usize;
const _: () = assert!(DAY <= u16::MAX as usize);

/// Plain Gorilla chunk lengths: the baseline first.
const GORILLA_CHUNKS: [(&str, usize); 3] = [("120", 120), ("240", 240), ("24 h", DAY)];
/// v2 chunk lengths.
const V2_CHUNKS: [(&str, usize); 4] = [("240", 240), ("2 h", 480), ("6 h", 1440), ("24 h", DAY)];
/// Paged variants: index into `V2_CHUNKS`, page size, zstd levels.
const PAGED: [(usize, usize, &[i32]); 5] = [
    (0, 64 << 10, &[1, 3, 9]),
    (3, 64 << 10, &[1, 3, 9]),
    (0, 256 << 10, &[3]),
    (3, 256 << 10, &[3]),
    (3, 16 << 10, &[3]),
];
/// The level of the per-chunk zstd variant (on 24 h chunks).
const CHUNK_ZSTD_LEVEL: i32 = 3;
const PAGE_HEADER_BYTES: u64 = 8;
/// Decode speed a block must reach on one core, in samples per second.
const DECODE_TARGET: f64 = 50e6;
/// How many times smaller than plain Gorilla the chosen encoding should be.
const RATIO_TARGET: f64 = 2.0;

/// What one variant took and how fast it went.
#[derive(Default)]
struct Stats {
    name: String,
    /// False for the Gorilla size model.
    timed: bool,
    chunks: u64,
    pages: u64,
    samples: u64,
    bytes: u64,
    /// Bytes and samples per series class, for variants that keep chunks apart.
    by_class: Option<[(u64, u64); 5]>,
    encode: Duration,
    decode: Duration,
    /// Reading each series alone.
    select: Duration,
}

impl Stats {
    fn new(name: String, timed: bool, by_class: bool) -> Stats {
        Stats {
            name,
            timed,
            by_class: by_class.then_some([(0, 0); 5]),
            ..Stats::default()
        }
    }

    fn add_chunk(&mut self, class: SeriesClass, samples: usize, bytes: usize) {
        let bytes = (bytes + FRAME_OVERHEAD_BYTES) as u64;
        self.chunks += 1;
        self.samples += samples as u64;
        self.bytes += bytes;
        if let Some(by_class) = &mut self.by_class {
            let slot = &mut by_class[class_index(class)];
            slot.0 += bytes;
            slot.1 += samples as u64;
        }
    }

    fn per_sample(&self) -> f64 {
        self.bytes as f64 / self.samples as f64
    }

    fn rate(&self, time: Duration) -> f64 {
        self.samples as f64 / time.as_secs_f64()
    }
}

fn class_index(class: SeriesClass) -> usize {
    SeriesClass::ALL
        .iter()
        .position(|&c| c == class)
        .expect("every class is in ALL")
}

/// One encoded chunk.
struct Chunk {
    data: Vec<u8>,
    num_samples: u16,
}

fn encode(samples: &[(i64, f64)], chunk_samples: usize) -> Vec<Chunk> {
    samples
        .chunks(chunk_samples)
        .map(|part| {
            let mut encoder = XorEncoder::new();
            for &(t, v) in part {
                encoder.append(t, v);
            }
            Chunk {
                num_samples: encoder.num_samples(),
                data: encoder.into_data(),
            }
        })
        .collect()
}

/// An order-independent sum the timed decodes fold samples into, so the optimiser keeps the
/// work and a wrong decode shows at once.
fn fold(acc: u64, (t, v): (i64, f64)) -> u64 {
    acc.wrapping_add(t as u64 ^ v.to_bits())
}

/// An order-dependent 64-bit fingerprint of samples.
fn fingerprint(samples: impl Iterator<Item = (i64, f64)>) -> (u64, usize) {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0u64;
    let mut n = 0;
    for (t, v) in samples {
        h = (h.rotate_left(23) ^ t as u64).wrapping_mul(K);
        h = (h.rotate_left(23) ^ v.to_bits()).wrapping_mul(K);
        n += 1;
    }
    (h, n)
}

/// Decodes `chunk` and panics unless it yields exactly `expected`.
fn verify(chunk: &Chunk, expected: &[(i64, f64)], variant: &str, series: &GenSeries) {
    let mut iter = XorIter::new(&chunk.data, chunk.num_samples);
    assert_eq!(
        usize::from(chunk.num_samples),
        expected.len(),
        "{variant}: sample count of a chunk of {:?}",
        series.labels
    );
    for (i, &(t, v)) in expected.iter().enumerate() {
        match iter.next() {
            Some((dt, dv)) if dt == t && dv.to_bits() == v.to_bits() => {}
            got => panic!(
                "{variant}: sample {i} of a chunk of {:?} decoded as {got:?}, generated ({t}, {v:?})",
                series.labels
            ),
        }
    }
    assert!(
        iter.next().is_none() && iter.err().is_none(),
        "{variant}: chunk of {:?} does not end cleanly: {:?}",
        series.labels,
        iter.err()
    );
}

/// A v2 chunk waiting in an open page, and what its samples must decode to.
struct PageEntry {
    offset: usize,
    len: usize,
    num_samples: u16,
    /// Position of the series in label order.
    series: usize,
    sum: u64,
    fingerprint: u64,
}

/// One zstd level of a paged variant.
struct Level {
    compressor: zstd::bulk::Compressor<'static>,
    stats: Stats,
}

/// Consecutive v2 chunks gathered into pages and compressed at one or more levels.
struct Pages {
    chunk_index: usize,
    page_bytes: usize,
    levels: Vec<Level>,
    page: Vec<u8>,
    entries: Vec<PageEntry>,
    decompressor: zstd::bulk::Decompressor<'static>,
    out: Vec<u8>,
}

impl Pages {
    fn new(chunk_index: usize, page_bytes: usize, levels: &[i32]) -> Pages {
        let chunk_name = V2_CHUNKS[chunk_index].0;
        let levels = levels
            .iter()
            .map(|&level| Level {
                compressor: zstd::bulk::Compressor::new(level).expect("zstd compressor"),
                stats: Stats::new(
                    format!(
                        "v2 {chunk_name} + zstd-{level}, {} KiB pages",
                        page_bytes >> 10
                    ),
                    true,
                    false,
                ),
            })
            .collect();
        Pages {
            chunk_index,
            page_bytes,
            levels,
            page: Vec::with_capacity(page_bytes * 2),
            entries: Vec::new(),
            decompressor: zstd::bulk::Decompressor::new().expect("zstd decompressor"),
            out: Vec::with_capacity(page_bytes * 2),
        }
    }

    /// Adds a chunk of series `series` (position in label order) whose samples are `samples`.
    fn push(&mut self, series: usize, chunk: &Chunk, samples: &[(i64, f64)]) {
        if !self.page.is_empty() && self.page.len() + chunk.data.len() > self.page_bytes {
            self.flush();
        }
        self.entries.push(PageEntry {
            offset: self.page.len(),
            len: chunk.data.len(),
            num_samples: chunk.num_samples,
            series,
            sum: samples.iter().copied().fold(0, fold),
            fingerprint: fingerprint(samples.iter().copied()).0,
        });
        self.page.extend_from_slice(&chunk.data);
        for level in &mut self.levels {
            level.stats.chunks += 1;
            level.stats.samples += samples.len() as u64;
            level.stats.bytes += FRAME_OVERHEAD_BYTES as u64;
        }
    }

    /// Compresses, times and checks the open page, then empties it.
    fn flush(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let mut distinct = 1;
        for pair in self.entries.windows(2) {
            distinct += u32::from(pair[0].series != pair[1].series);
        }
        let expected_sum = self.entries.iter().fold(0u64, |a, e| a.wrapping_add(e.sum));
        for level in &mut self.levels {
            let start = Instant::now();
            let compressed = level
                .compressor
                .compress(&self.page)
                .expect("zstd compress");
            level.stats.encode += start.elapsed();
            level.stats.pages += 1;
            level.stats.bytes += compressed.len() as u64 + PAGE_HEADER_BYTES;

            // Timed: decompress the page, then decode every chunk in it.
            self.out.clear();
            self.out.reserve(self.page.len());
            let start = Instant::now();
            self.decompressor
                .decompress_to_buffer(&compressed[..], &mut self.out)
                .expect("zstd decompress");
            let decompressed = Instant::now();
            let mut sum = 0;
            for e in &self.entries {
                let data = &self.out[e.offset..e.offset + e.len];
                sum = XorIter::new(data, e.num_samples).fold(sum, fold);
            }
            let decoded = Instant::now();
            level.stats.decode += decoded - start;
            level.stats.select += (decompressed - start) * distinct + (decoded - decompressed);
            let name = &level.stats.name;
            assert_eq!(sum, expected_sum, "{name}: timed decode of a page differs");

            // Checked: the page byte for byte, then each chunk against the generator's samples.
            assert!(
                self.out == self.page,
                "{name}: page does not decompress to its chunks"
            );
            for e in &self.entries {
                let data = &self.out[e.offset..e.offset + e.len];
                let mut iter = XorIter::new(data, e.num_samples);
                let (fp, n) = fingerprint(iter.by_ref());
                assert!(
                    fp == e.fingerprint && n == usize::from(e.num_samples) && iter.err().is_none(),
                    "{name}: a chunk of series #{} decodes to other samples ({:?})",
                    e.series,
                    iter.err()
                );
            }
        }
        self.page.clear();
        self.entries.clear();
    }
}

/// 24 h v2 chunks compressed one by one, kept raw when zstd does not shrink them.
struct ChunkZstd {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    out: Vec<u8>,
    stats: Stats,
    compressed_chunks: u64,
}

impl ChunkZstd {
    fn new() -> ChunkZstd {
        ChunkZstd {
            compressor: zstd::bulk::Compressor::new(CHUNK_ZSTD_LEVEL).expect("zstd compressor"),
            decompressor: zstd::bulk::Decompressor::new().expect("zstd decompressor"),
            out: Vec::new(),
            stats: Stats::new(
                format!("v2 24 h + zstd-{CHUNK_ZSTD_LEVEL} per chunk"),
                true,
                true,
            ),
            compressed_chunks: 0,
        }
    }

    /// Stores, times and checks one series' chunks; `encode` is what encoding them took.
    fn add(
        &mut self,
        series: &GenSeries,
        chunks: &[Chunk],
        samples: &[(i64, f64)],
        encode: Duration,
    ) {
        let start = Instant::now();
        let stored: Vec<Option<Vec<u8>>> = chunks
            .iter()
            .map(|c| {
                let z = self.compressor.compress(&c.data).expect("zstd compress");
                (z.len() < c.data.len()).then_some(z)
            })
            .collect();
        self.stats.encode += encode + start.elapsed();
        for (c, z) in chunks.iter().zip(&stored) {
            let len = z.as_ref().map_or(c.data.len(), Vec::len);
            self.stats
                .add_chunk(series.class, usize::from(c.num_samples), len);
            self.compressed_chunks += u64::from(z.is_some());
        }

        let start = Instant::now();
        let mut sum = 0;
        for (c, z) in chunks.iter().zip(&stored) {
            let data = match z {
                Some(z) => {
                    self.out.clear();
                    self.out.reserve(c.data.len());
                    self.decompressor
                        .decompress_to_buffer(&z[..], &mut self.out)
                        .expect("zstd decompress");
                    &self.out[..]
                }
                None => &c.data[..],
            };
            sum = XorIter::new(data, c.num_samples).fold(sum, fold);
        }
        let elapsed = start.elapsed();
        self.stats.decode += elapsed;
        self.stats.select += elapsed;
        let name = &self.stats.name;
        assert_eq!(
            sum,
            samples.iter().copied().fold(0, fold),
            "{name}: timed decode"
        );

        for ((c, z), part) in chunks.iter().zip(&stored).zip(samples.chunks(DAY)) {
            let chunk = match z {
                Some(z) => Chunk {
                    data: zstd::bulk::decompress(z, c.data.len()).expect("zstd decompress"),
                    num_samples: c.num_samples,
                },
                None => Chunk {
                    data: c.data.clone(),
                    num_samples: c.num_samples,
                },
            };
            verify(&chunk, part, name, series);
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must be a positive integer, got {text:?}"),
        },
        Err(_) => default,
    }
}

fn main() {
    let hosts = env_number("STRATA_COLD_HOSTS", HOSTS_DEFAULT as u64) as usize;
    let hours = env_number("STRATA_COLD_HOURS", HOURS_DEFAULT);
    let scrapes = hours * SCRAPES_PER_HOUR;
    let started = Instant::now();

    let dataset = Dataset::new(hosts, SEED);
    let series = dataset.series();
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by(|&a, &b| series[a].labels.cmp(&series[b].labels));

    let mut gorilla: Vec<Stats> = GORILLA_CHUNKS
        .iter()
        .map(|(name, _)| Stats::new(format!("plain Gorilla {name} (model)"), false, true))
        .collect();
    let mut v2: Vec<Stats> = V2_CHUNKS
        .iter()
        .map(|(name, _)| Stats::new(format!("v2 {name}"), true, true))
        .collect();
    let mut paged: Vec<Pages> = PAGED
        .iter()
        .map(|&(chunk, bytes, levels)| Pages::new(chunk, bytes, levels))
        .collect();
    let mut chunk_zstd = ChunkZstd::new();
    let mut v3 = Stats::new("v3 6 h (shared times)".to_owned(), true, true);
    let mut times_frames = std::collections::HashSet::<Vec<u8>>::new();

    eprintln!(
        "cold_encoding: {hosts} hosts x {hours} h, {} series, {} samples",
        series.len(),
        series.len() as u64 * scrapes
    );
    let mut generate = Duration::ZERO;
    let mut next_report = 0;
    for (position, &index) in order.iter().enumerate() {
        if position * 20 >= next_report * series.len() {
            eprintln!(
                "  {:>3}% of series, {:.0} s",
                next_report * 5,
                started.elapsed().as_secs_f64()
            );
            next_report += 1;
        }
        let s = &series[index];
        let start = Instant::now();
        let samples = dataset.samples(index, 0..scrapes);
        generate += start.elapsed();
        let sum = samples.iter().copied().fold(0, fold);

        for (stats, &(_, len)) in gorilla.iter_mut().zip(&GORILLA_CHUNKS) {
            for part in samples.chunks(len) {
                let bytes = gorilla_bits(part).div_ceil(8) as usize;
                stats.add_chunk(s.class, part.len(), bytes);
            }
        }

        for (i, (stats, &(_, len))) in v2.iter_mut().zip(&V2_CHUNKS).enumerate() {
            let start = Instant::now();
            let chunks = encode(&samples, len);
            let encode_time = start.elapsed();
            stats.encode += encode_time;
            for c in &chunks {
                stats.add_chunk(s.class, usize::from(c.num_samples), c.data.len());
            }

            let start = Instant::now();
            let mut decoded = 0;
            for c in &chunks {
                decoded = XorIter::new(&c.data, c.num_samples).fold(decoded, fold);
            }
            let elapsed = start.elapsed();
            stats.decode += elapsed;
            stats.select += elapsed;
            assert_eq!(
                decoded, sum,
                "{}: timed decode of {:?}",
                stats.name, s.labels
            );
            for (c, part) in chunks.iter().zip(samples.chunks(len)) {
                verify(c, part, &stats.name, s);
            }

            for pages in paged.iter_mut().filter(|p| p.chunk_index == i) {
                for (c, part) in chunks.iter().zip(samples.chunks(len)) {
                    pages.push(position, c, part);
                }
            }
            if len == DAY {
                chunk_zstd.add(s, &chunks, &samples, encode_time);
            }
        }

        // Encoding 3: the values alone, the timestamps once per distinct sequence.
        let start = Instant::now();
        let split: Vec<SplitEncoder> = samples.chunks(1440).map(SplitEncoder::of).collect();
        v3.encode += start.elapsed();
        for enc in &split {
            let n = usize::from(enc.num_samples());
            v3.add_chunk(s.class, n, enc.values.data().len() + 8);
            if times_frames.insert(enc.times.data().to_vec()) {
                v3.bytes += (enc.times.data().len() + FRAME_OVERHEAD_BYTES) as u64;
            }
        }
        let start = Instant::now();
        let mut decoded = 0;
        for enc in &split {
            let n = enc.num_samples();
            decoded =
                FrameSamples::shared(enc.times.data(), enc.values.data(), n).fold(decoded, fold);
        }
        let elapsed = start.elapsed();
        v3.decode += elapsed;
        v3.select += elapsed;
        assert_eq!(decoded, sum, "v3: timed decode of {:?}", s.labels);
    }
    eprintln!("  v3: {} distinct times frames", times_frames.len());
    for pages in &mut paged {
        pages.flush();
    }
    // A paged variant's encoding is the v2 encoding plus its compression.
    for pages in &mut paged {
        for level in &mut pages.levels {
            level.stats.encode += v2[pages.chunk_index].encode;
        }
    }
    let elapsed = started.elapsed();
    eprintln!("  100% of series, {:.0} s", elapsed.as_secs_f64());

    let mut all: Vec<Stats> = gorilla;
    all.extend(v2);
    all.push(v3);
    for pages in paged {
        all.extend(pages.levels.into_iter().map(|l| l.stats));
    }
    let chunk_zstd_compressed = chunk_zstd.compressed_chunks;
    all.push(chunk_zstd.stats);

    report(&all, hosts, hours, scrapes, series.len());
    println!(
        "{} of {} chunks shrank under zstd-{CHUNK_ZSTD_LEVEL} alone (the others are stored raw)",
        chunk_zstd_compressed,
        all[all.len() - 1].chunks
    );
    println!(
        "run: {:.0} s, of which {:.0} s generating samples",
        elapsed.as_secs_f64(),
        generate.as_secs_f64()
    );
}

fn report(all: &[Stats], hosts: usize, hours: u64, scrapes: u64, series: usize) {
    let baseline = &all[0];
    let gorilla_240 = &all[1];
    println!();
    println!(
        "cold-data encoding study: {hosts} hosts x {hours} h ({scrapes} scrapes of {} s), \
         {series} series in label order, {} samples",
        SCRAPE_INTERVAL_MS / 1000,
        baseline.samples
    );
    println!(
        "bytes: chunk streams + {FRAME_OVERHEAD_BYTES} B frame (header + crc) a chunk; zstd: \
         + compressed pages + {PAGE_HEADER_BYTES} B header a page"
    );
    println!(
        "speeds: one thread, millions of samples/s; decode = everything (zstd decompression \
         included), 1-series = each series read alone"
    );
    println!("x vs G120, x vs G240: how many times fewer bytes than plain Gorilla's 120/240");
    println!();
    println!(
        "{:<36} {:>9} {:>7} {:>9} {:>8} {:>9} {:>9} {:>7} {:>7} {:>8}",
        "variant",
        "chunks",
        "pages",
        "MB",
        "B/sample",
        "x vs G120",
        "x vs G240",
        "encode",
        "decode",
        "1-series"
    );
    for s in all {
        let speeds = if s.timed {
            format!(
                "{:>7.1} {:>7.1} {:>8.1}",
                s.rate(s.encode) / 1e6,
                s.rate(s.decode) / 1e6,
                s.rate(s.select) / 1e6
            )
        } else {
            format!("{:>7} {:>7} {:>8}", "-", "-", "-")
        };
        let pages = if s.pages > 0 {
            s.pages.to_string()
        } else {
            "-".to_owned()
        };
        println!(
            "{:<36} {:>9} {:>7} {:>9.1} {:>8.3} {:>9.2} {:>9.2} {speeds}",
            s.name,
            s.chunks,
            pages,
            s.bytes as f64 / 1e6,
            s.per_sample(),
            baseline.bytes as f64 / s.bytes as f64,
            gorilla_240.bytes as f64 / s.bytes as f64,
        );
    }

    println!();
    println!("bytes/sample by series class (data + frame):");
    print!("{:<36}", "variant");
    for class in SeriesClass::ALL {
        print!(" {:>13}", class.name());
    }
    println!();
    for s in all {
        let Some(by_class) = &s.by_class else {
            continue;
        };
        print!("{:<36}", s.name);
        for (bytes, samples) in by_class {
            print!(" {:>13.3}", *bytes as f64 / *samples as f64);
        }
        println!();
    }
    if let Some(by_class) = &baseline.by_class {
        print!("{:<36}", "  share of samples");
        for (_, samples) in by_class {
            print!(
                " {:>12.1}%",
                100.0 * *samples as f64 / baseline.samples as f64
            );
        }
        println!();
    }

    println!();
    println!(
        "best variants, smallest first (targets: >= {RATIO_TARGET}x smaller than plain Gorilla, \
         >= {:.0}M samples/s decode on one core):",
        DECODE_TARGET / 1e6
    );
    let mut ranked: Vec<&Stats> = all.iter().filter(|s| s.timed).collect();
    ranked.sort_by_key(|s| s.bytes);
    for s in ranked.iter().take(6) {
        let ok = |met: bool| if met { "met" } else { "MISSED" };
        let ratio = baseline.bytes as f64 / s.bytes as f64;
        println!(
            "  {:<36} {:.3} B/sample, {:.2}x smaller than Gorilla 120 ({:.2}x vs 240) [{}], \
             decode {:.1}M/s [{}], 1-series {:.1}M/s [{}]",
            s.name,
            s.per_sample(),
            ratio,
            gorilla_240.bytes as f64 / s.bytes as f64,
            ok(ratio >= RATIO_TARGET),
            s.rate(s.decode) / 1e6,
            ok(s.rate(s.decode) >= DECODE_TARGET),
            s.rate(s.select) / 1e6,
            ok(s.rate(s.select) >= DECODE_TARGET),
        );
    }
    println!();
}
