//! Size and speed of the XOR chunk codec on node_exporter-like data.
//!
//! Before timing anything, prints the bytes per sample that head chunks of 120 samples take on
//! 20 hosts × 2 h of scrapes, overall and per series class, beside the targets. Then measures
//! encoding, decoding (iterator and into a vector) and frame validation in samples per second.
//!
//! Run with `cargo bench -p strata-engine --bench chunk -- --measurement-time 3`.

#[path = "support/dataset.rs"]
mod dataset;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataset::{Dataset, SeriesClass};
use strata_engine::chunk::xor::{self, XorEncoder, XorIter};
use strata_engine::chunk::{Encoding, FRAME_OVERHEAD_BYTES, read_frame, write_frame};

const HOSTS: usize = 20;
/// Two hours of 15 s scrapes.
const SCRAPES: u64 = 480;
/// Samples per chunk before the head cuts a new one.
const CHUNK_SAMPLES: usize = 120;
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
}

/// The dataset's samples, cut into chunks, raw and encoded.
struct Corpus {
    raw: Vec<(SeriesClass, Vec<(i64, f64)>)>,
    chunks: Vec<Chunk>,
    frames: Vec<u8>,
    samples: u64,
}

impl Corpus {
    fn build() -> Corpus {
        let dataset = Dataset::new(HOSTS, SEED);
        let mut raw = Vec::new();
        let mut chunks = Vec::new();
        let mut frames = Vec::new();
        let mut samples = 0;
        for (index, series) in dataset.series().iter().enumerate() {
            let all = dataset.samples(index, 0..SCRAPES);
            for part in all.chunks(CHUNK_SAMPLES) {
                let encoder = encode(part);
                write_frame(&mut frames, Encoding::Xor, encoder.meta(), encoder.data());
                chunks.push(Chunk {
                    class: series.class,
                    num_samples: encoder.num_samples(),
                    data: encoder.into_data(),
                });
                raw.push((series.class, part.to_vec()));
                samples += part.len() as u64;
            }
        }
        Corpus {
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
            "head chunks: {HOSTS} hosts x {SCRAPES} scrapes, {CHUNK_SAMPLES} samples a chunk, \
             frame overhead {FRAME_OVERHEAD_BYTES} B a chunk"
        );
        println!(
            "{:<14} {:>7} {:>10} {:>12} {:>12} {:>8}",
            "class", "series", "samples", "data B/smp", "frame B/smp", "target"
        );
        let row = |name: &str, chunks: &[&Chunk]| {
            let samples: u64 = chunks.iter().map(|c| u64::from(c.num_samples)).sum();
            let data: usize = chunks.iter().map(|c| c.data.len()).sum();
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
                "{:<14} {:>7} {:>10} {:>12.3} {:>12.3} {:>8}",
                name,
                chunks.len() * CHUNK_SAMPLES / SCRAPES as usize,
                samples,
                per_sample,
                framed as f64 / samples as f64,
                target
            );
        };
        for class in SeriesClass::ALL {
            let chunks: Vec<&Chunk> = self.chunks.iter().filter(|c| c.class == class).collect();
            row(class.name(), &chunks);
        }
        row("all", &self.chunks.iter().collect::<Vec<_>>());
        println!();
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

fn bench_chunks(c: &mut Criterion) {
    let corpus = Corpus::build();
    corpus.print_sizes();

    let mut group = c.benchmark_group("xor");
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
        let mut out = Vec::with_capacity(CHUNK_SAMPLES);
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

    let mut group = c.benchmark_group("xor_decode_by_class");
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
