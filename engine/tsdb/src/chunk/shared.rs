//! Encoding 3: a chunk's values in a stream of their own, its timestamps in a frame that other
//! chunks of the same block share. Format: `docs/format/chunk-xor.md`, "Encoding 3".
//!
//! Every series of one scraped target carries the scrape's timestamp, so the hundreds of series
//! of a target hold the same timestamps, jitter included. A block stores that sequence once, as
//! an encoding-2 frame whose values are all zero (the *times frame*), and each chunk as the
//! 8-byte reference to it followed by a values stream: the same XOR stream, coded as if the
//! samples were on a perfect grid ([`VALUES_GRID_MS`] apart), so the timestamp codes cost one
//! bit or nothing and the value codes (decimals, runs, XORs) are unchanged. Only sealed blocks
//! use it; the head, the WAL and checkpoints keep encoding 2.

use super::ChunkError;
use super::xor::{XorEncoder, XorIter};

/// The grid a values stream is coded on: sample `i` at `i × 1000` ms.
pub const VALUES_GRID_MS: i64 = 1000;

/// Chunks with fewer samples stay in encoding 2: a reference and a times frame of their own
/// (8 + 27 bytes) would cost more than their timestamps.
pub const SHARED_SAMPLES_MIN: u16 = 32;

/// Encodes one chunk's samples as a times stream and a values stream.
#[derive(Debug, Default)]
pub struct SplitEncoder {
    /// The timestamps, each with the value 0.
    pub times: XorEncoder,
    /// The values, on the grid of [`VALUES_GRID_MS`].
    pub values: XorEncoder,
}

impl SplitEncoder {
    /// An encoder with no samples.
    pub fn new() -> SplitEncoder {
        SplitEncoder::default()
    }

    /// Appends a sample; `t` must increase, as for [`XorEncoder::append`].
    pub fn append(&mut self, t: i64, v: f64) {
        let i = i64::from(self.values.num_samples());
        self.times.append(t, 0.0);
        self.values.append(i * VALUES_GRID_MS, v);
    }

    /// The streams of `samples` (sorted, each timestamp once, at most `u16::MAX`).
    pub fn of(samples: &[(i64, f64)]) -> SplitEncoder {
        let mut enc = SplitEncoder::new();
        samples.iter().for_each(|&(t, v)| enc.append(t, v));
        enc
    }

    /// The values stream alone of `samples`, as [`SplitEncoder::of`] would write it: for a
    /// chunk whose times frame is already written.
    pub fn values_of(samples: &[(i64, f64)]) -> XorEncoder {
        let mut values = XorEncoder::new();
        for (i, &(_, v)) in (0i64..).zip(samples) {
            values.append(i * VALUES_GRID_MS, v);
        }
        values
    }

    /// Samples appended.
    pub fn num_samples(&self) -> u16 {
        self.times.num_samples()
    }
}

/// The samples of a frame: one encoding-2 stream, or a times stream and a values stream read
/// side by side.
#[derive(Debug, Clone)]
pub struct FrameSamples<'a> {
    times: XorIter<'a>,
    /// Boxed: most frames have none, and the iterator is twice as large with it inline.
    values: Option<Box<XorIter<'a>>>,
    /// What went wrong between the two streams, if anything did.
    failed: Option<&'static str>,
}

impl<'a> FrameSamples<'a> {
    /// An encoding-2 stream of `n` samples.
    pub fn xor(data: &'a [u8], n: u16) -> FrameSamples<'a> {
        FrameSamples {
            times: XorIter::new(data, n),
            values: None,
            failed: None,
        }
    }

    /// Timestamps from `times`, values from `values`, `n` samples of each.
    pub fn shared(times: &'a [u8], values: &'a [u8], n: u16) -> FrameSamples<'a> {
        FrameSamples {
            times: XorIter::new(times, n),
            values: Some(Box::new(XorIter::new(values, n))),
            failed: None,
        }
    }

    /// A frame whose timestamps were not found: yields nothing and reports why.
    pub fn unresolved() -> FrameSamples<'a> {
        FrameSamples {
            times: XorIter::new(&[], 0),
            values: None,
            failed: Some("the chunk's timestamps, which were not read from its block"),
        }
    }

    /// Why iteration stopped before the last sample, if it did.
    pub fn err(&self) -> Option<ChunkError> {
        let between = self.failed.map(|expected| ChunkError::CorruptStream {
            bit_offset: 0,
            expected,
        });
        between
            .or_else(|| self.times.err().cloned())
            .or_else(|| self.values.as_deref().and_then(XorIter::err).cloned())
    }

    #[cold]
    fn values_ended(&mut self) -> Option<(i64, f64)> {
        self.failed.get_or_insert("as many values as timestamps");
        None
    }

    /// The first sample at or after `t`; the ones before it are decoded without their values.
    #[inline]
    pub fn next_from(&mut self, t: i64) -> Option<(i64, f64)> {
        let (t, v) = self.times.next_from(t)?;
        let Some(values) = &mut self.values else {
            return Some((t, v));
        };
        let behind = self.times.decoded() - 1 - values.decoded();
        match values.skip_samples(behind).then(|| values.next()).flatten() {
            Some((_, v)) => Some((t, v)),
            None => self.values_ended(),
        }
    }
}

impl Iterator for FrameSamples<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        let (t, v) = self.times.next()?;
        let Some(values) = &mut self.values else {
            return Some((t, v));
        };
        match values.next() {
            Some((_, v)) => Some((t, v)),
            None => self.values_ended(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(n: usize) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| {
                let late = if i % 5 == 3 { (i % 3) as i64 + 1 } else { 0 };
                (
                    1_000_000 + i as i64 * 15_000 + late,
                    (i * i % 17) as f64 * 0.25,
                )
            })
            .collect()
    }

    #[test]
    fn split_streams_read_back_as_the_samples() {
        let samples = scrape(500);
        let enc = SplitEncoder::of(&samples);
        let n = enc.num_samples();
        let got: Vec<_> = FrameSamples::shared(enc.times.data(), enc.values.data(), n).collect();
        assert_eq!(got, samples);
    }

    #[test]
    fn the_values_stream_alone_is_the_split_ones() {
        let samples = scrape(400);
        let enc = SplitEncoder::of(&samples);
        let values = SplitEncoder::values_of(&samples);
        assert_eq!(values.data(), enc.values.data());
        assert_eq!(values.num_samples(), enc.num_samples());
    }

    #[test]
    fn next_from_skips_both_streams_alike() {
        let samples = scrape(300);
        let enc = SplitEncoder::of(&samples);
        let n = enc.num_samples();
        for from in [0usize, 1, 7, 150, 299] {
            let mut it = FrameSamples::shared(enc.times.data(), enc.values.data(), n);
            let first = it.next_from(samples[from].0);
            assert_eq!(first, Some(samples[from]), "from sample {from}");
            assert_eq!(it.next(), samples.get(from + 1).copied());
        }
    }

    #[test]
    fn values_ending_before_the_times_is_an_error_not_a_guess() {
        let samples = scrape(50);
        let enc = SplitEncoder::of(&samples);
        let mut it = FrameSamples::shared(enc.times.data(), &[], 50);
        assert_eq!(it.next(), None);
        assert!(it.err().is_some());
    }

    #[test]
    fn an_unresolved_frame_yields_nothing_and_says_why() {
        let mut it = FrameSamples::unresolved();
        assert_eq!(it.next(), None);
        assert!(it.err().is_some());
    }
}
