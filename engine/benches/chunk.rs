//! Size and speed of the chunk codec on node_exporter-like data.
//!
//! Before timing anything, prints the bytes per sample that head chunks of 120 and of 240
//! samples (the head's default) take on 20 hosts × 2 h of scrapes, per series class and
//! overall, as stream data alone and with the frame around it, beside the targets. Each row
//! also shows what plain Gorilla (delta-of-delta timestamps, XOR values: the codec's first
//! version) takes on the same chunks, sized by a reference model in this file, and the ratio.
//! Then measures encoding, decoding (iterator and into a vector) and frame validation in
//! samples per second, for both chunk sizes, and decoding per class at 240.
//!
//! Run with `cargo bench -p strata-engine --bench chunk -- --measurement-time 3 --warm-up-time 1`.

use strata_testkit::dataset;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataset::{Dataset, SeriesClass};
use strata_engine::chunk::xor::{self, XorEncoder, XorIter};
use strata_engine::chunk::{Encoding, FRAME_OVERHEAD_BYTES, read_frame, write_frame};

const HOSTS: usize = 20;
/// Two hours of 15 s scrapes.
const SCRAPES: u64 = 480;
/// Samples per chunk before the head cuts a new one: the first version's and the default.
const CHUNK_SAMPLES: [usize; 2] = [120, 240];
const SEED: u64 = 0x5742_a7a0;

/// Data-only targets in bytes per sample.
const TARGETS: [(SeriesClass, &str, f64); 2] = [
    (SeriesClass::Constant, "< 0.2", 0.2),
    (SeriesClass::IntCounter, "< 1.5", 1.5),
];

/// One encoded chunk.
struct Chunk {
    class: SeriesClass,
    data: Vec<u8>,
    num_samples: u16,
    /// What plain Gorilla takes for the same samples.
    gorilla_bytes: usize,
}

/// The dataset's samples, cut into chunks of one size, raw and encoded.
struct Corpus {
    chunk_samples: usize,
    raw: Vec<(SeriesClass, Vec<(i64, f64)>)>,
    chunks: Vec<Chunk>,
    frames: Vec<u8>,
    samples: u64,
}

impl Corpus {
    fn build(dataset: &Dataset, chunk_samples: usize) -> Corpus {
        let mut raw = Vec::new();
        let mut chunks = Vec::new();
        let mut frames = Vec::new();
        let mut samples = 0;
        for (index, series) in dataset.series().iter().enumerate() {
            let all = dataset.samples(index, 0..SCRAPES);
            for part in all.chunks(chunk_samples) {
                let encoder = encode(part);
                write_frame(&mut frames, Encoding::Xor, encoder.meta(), encoder.data());
                chunks.push(Chunk {
                    class: series.class,
                    num_samples: encoder.num_samples(),
                    data: encoder.into_data(),
                    gorilla_bytes: gorilla::stream_bits(part).div_ceil(8) as usize,
                });
                raw.push((series.class, part.to_vec()));
                samples += part.len() as u64;
            }
        }
        Corpus {
            chunk_samples,
            raw,
            chunks,
            frames,
            samples,
        }
    }

    fn samples_of(&self, class: SeriesClass) -> u64 {
        let chunks = self.chunks.iter().filter(|c| c.class == class);
        chunks.map(|c| u64::from(c.num_samples)).sum()
    }

    fn print_sizes(&self) {
        println!();
        println!(
            "head chunks of {} samples: {HOSTS} hosts x {SCRAPES} scrapes, frame overhead \
             {FRAME_OVERHEAD_BYTES} B a chunk",
            self.chunk_samples
        );
        println!(
            "{:<14} {:>6} {:>9} {:>10} {:>12} {:>13} {:>7}  target (data)",
            "class", "series", "samples", "data B/smp", "+frame B/smp", "gorilla B/smp", "ratio",
        );
        let row = |name: &str, chunks: &[&Chunk]| {
            let samples: u64 = chunks.iter().map(|c| u64::from(c.num_samples)).sum();
            let data: usize = chunks.iter().map(|c| c.data.len()).sum();
            let gorilla: usize = chunks.iter().map(|c| c.gorilla_bytes).sum();
            let framed = data + chunks.len() * FRAME_OVERHEAD_BYTES;
            let per_sample = data as f64 / samples as f64;
            let target = TARGETS
                .iter()
                .find(|t| t.0.name() == name)
                .map_or(String::new(), |t| {
                    format!(
                        "{} {}",
                        t.1,
                        if per_sample < t.2 { "met" } else { "MISSED" }
                    )
                });
            println!(
                "{:<14} {:>6} {:>9} {:>10.3} {:>12.3} {:>13.3} {:>7.3}  {}",
                name,
                samples / SCRAPES,
                samples,
                per_sample,
                framed as f64 / samples as f64,
                gorilla as f64 / samples as f64,
                data as f64 / gorilla as f64,
                target
            );
        };
        for class in SeriesClass::ALL {
            let chunks: Vec<&Chunk> = self.chunks.iter().filter(|c| c.class == class).collect();
            row(class.name(), &chunks);
        }
        row("all", &self.chunks.iter().collect::<Vec<_>>());
    }
}

fn encode(samples: &[(i64, f64)]) -> XorEncoder {
    let mut encoder = XorEncoder::new();
    for &(t, v) in samples {
        encoder.append(t, v);
    }
    encoder
}

/// Folds samples into a value the optimiser cannot drop.
fn fold(acc: u64, (t, v): (i64, f64)) -> u64 {
    acc.wrapping_add(t as u64 ^ v.to_bits())
}

/// A size model of plain Gorilla, the baseline of the size table: it counts the bits the
/// codec's first version wrote, without writing them.
mod gorilla {
    /// Stream bits for `samples`: sample 0 as a zigzag varint and 64 raw bits, sample 1's delta
    /// as a varint, then per sample a delta-of-delta code (1, 8, 16, 24 or 68 bits) and an XOR
    /// code (1 bit unchanged, 2 + S in the current window, 14 + S for a new one, taken when it
    /// saves more than 12 bits).
    pub fn stream_bits(samples: &[(i64, f64)]) -> u64 {
        let varint = |x: u64| 8 * u64::from((64 - x.leading_zeros()).max(1).div_ceil(7));
        let mut bits = 0;
        let (mut t, mut delta, mut v) = (0i64, 0u64, 0u64);
        let (mut leading, mut sig) = (0, 64);
        for (i, &(ts, value)) in samples.iter().enumerate() {
            let x = value.to_bits() ^ v;
            v = value.to_bits();
            if i == 0 {
                bits += varint(((ts << 1) ^ (ts >> 63)) as u64) + 64;
                t = ts;
                continue;
            }
            let d = ts.wrapping_sub(t) as u64;
            let dod = d.wrapping_sub(delta) as i64;
            bits += match (i, dod) {
                (1, _) => varint(d),
                (_, 0) => 1,
                (_, -32..32) => 8,
                (_, -4096..4096) => 16,
                (_, -524_288..524_288) => 24,
                _ => 68,
            };
            (t, delta) = (ts, d);
            if x == 0 {
                bits += 1;
                continue;
            }
            let (l, trailing) = (x.leading_zeros(), x.trailing_zeros());
            let s = 64 - l - trailing;
            if l >= leading && trailing >= 64 - leading - sig && sig <= s + 12 {
                bits += 2 + u64::from(sig);
            } else {
                bits += 14 + u64::from(s);
                (leading, sig) = (l, s);
            }
        }
        bits
    }
}

fn bench_corpus(c: &mut Criterion, corpus: &Corpus) {
    let mut group = c.benchmark_group(format!("chunk_{}", corpus.chunk_samples));
    group.throughput(Throughput::Elements(corpus.samples));
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for (_, samples) in &corpus.raw {
                bytes += encode(samples).data().len();
            }
            black_box(bytes)
        })
    });
    group.bench_function("decode_iter", |b| {
        b.iter(|| {
            let mut acc = 0;
            for chunk in &corpus.chunks {
                acc = XorIter::new(&chunk.data, chunk.num_samples).fold(acc, fold);
            }
            black_box(acc)
        })
    });
    group.bench_function("decode_vec", |b| {
        let mut out = Vec::with_capacity(corpus.chunk_samples);
        b.iter(|| {
            let mut acc = 0;
            for chunk in &corpus.chunks {
                out.clear();
                xor::decode(&chunk.data, chunk.num_samples, &mut out).unwrap();
                acc = out.iter().copied().fold(acc, fold);
            }
            black_box(acc)
        })
    });
    group.bench_function("read_frame", |b| {
        b.iter(|| {
            let mut rest = &corpus.frames[..];
            let mut samples = 0u64;
            while !rest.is_empty() {
                let (frame, len) = read_frame(rest).unwrap();
                samples += u64::from(frame.meta.num_samples);
                rest = &rest[len..];
            }
            black_box(samples)
        })
    });
    group.finish();
}

fn bench_chunks(c: &mut Criterion) {
    let dataset = Dataset::new(HOSTS, SEED);
    let corpora: Vec<Corpus> = CHUNK_SAMPLES
        .iter()
        .map(|&n| Corpus::build(&dataset, n))
        .collect();
    for corpus in &corpora {
        corpus.print_sizes();
    }
    println!();
    for corpus in &corpora {
        bench_corpus(c, corpus);
    }

    let corpus = corpora.last().expect("two chunk sizes");
    let mut group = c.benchmark_group(format!("decode_by_class_{}", corpus.chunk_samples));
    for class in SeriesClass::ALL {
        group.throughput(Throughput::Elements(corpus.samples_of(class)));
        group.bench_function(class.name().replace(' ', "_"), |b| {
            b.iter(|| {
                let mut acc = 0;
                for chunk in corpus.chunks.iter().filter(|c| c.class == class) {
                    acc = XorIter::new(&chunk.data, chunk.num_samples).fold(acc, fold);
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1));
    targets = bench_chunks
}
criterion_main!(benches);
