//! The Gorilla XOR codec: one series' samples as delta-of-delta timestamps and XORed floats.
//!
//! Scrapes arrive at a steady interval and most series change little between them, so a sample
//! usually costs a couple of bits: one saying "the interval did not change" and one saying "the
//! value did not change". [`XorEncoder`] appends samples to a bit stream that is valid after
//! every append; [`XorIter`] decodes it. The stream carries no sample count and no framing: the
//! chunk frame (`super`) stores the count and a CRC beside it.
//!
//! Bits are written most significant bit first within each byte, and multi-bit fields most
//! significant bit first; the last byte is padded with zero bits. The full format, with worked
//! examples, is in `docs/format/chunk-xor.md`.
//!
//! ```text
//! sample 0   t0  zigzag varint (LEB128 groups of 7 bits, 8 bits each, at most 10 groups)
//!            v0  64 bits, the raw f64 bit pattern
//! sample 1   d1  varint of t1 - t0 as u64 (at most 10 groups)
//!            v1  value code (below)
//! sample n   dod timestamp code: dod = d_n - d_{n-1}, with d_n = t_n - t_{n-1}, both mod 2^64
//!            vn  value code
//!
//! timestamp code (dod as two's complement in the payload width)
//!   0                              dod = 0
//!   10   + 6 bits                  dod in [-32, 31]
//!   110  + 13 bits                 dod in [-4096, 4095]
//!   1110 + 20 bits                 dod in [-524288, 524287]
//!   1111 + 64 bits                 any dod
//!
//! value code (x = bits(v_n) XOR bits(v_{n-1}); a window is (leading zeros, significant bits))
//!   0                              x = 0: same bit pattern as the previous sample
//!   10   + s bits                  x's significant bits in the current window (s = its width)
//!   11   + 6 bits leading zeros L  a new window, which becomes current:
//!        + 6 bits s - 1            s significant bits, L + s <= 64, trailing zeros 64 - L - s
//!        + s bits                  x >> (64 - L - s)
//! ```
//!
//! The current window starts as (0, 64). Timestamps are strictly increasing; differences are
//! taken modulo 2^64, so any pair of increasing i64 timestamps round-trips, however far apart.

use std::fmt;

use super::{ChunkError, ChunkMeta};

/// Worst-case stream bytes for a full chunk of `u16::MAX` samples: sample 0 takes 144 bits,
/// sample 1 at most 80 + 78 bits, every later one at most 68 + 78 bits.
pub const STREAM_BYTES_MAX: usize = (144 + 158 + 146 * (u16::MAX as usize - 2)).div_ceil(8);

/// The timestamp code's buckets for a non-zero dod: prefix, prefix bits, payload bits. The
/// decoder picks a bucket by counting the prefix's leading ones (1 to 4).
const DOD_BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 6),
    (0b110, 3, 13),
    (0b1110, 4, 20),
    (0b1111, 4, 64),
];

/// The shortest timestamp code for a non-zero dod.
const DOD_CODE_BITS_MIN: u32 = DOD_BUCKETS[0].1 + DOD_BUCKETS[0].2;

/// The longest timestamp code the decoder's branch-free path handles: those with at most three
/// leading ones, whose lengths and payload widths it computes from the number of ones.
const DOD_SHORT_CODE_BITS_MAX: u32 = 24;
const _: () = {
    let mut ones = 1;
    while ones <= 3 {
        let (_, prefix_bits, payload_bits) = DOD_BUCKETS[ones - 1];
        assert!(prefix_bits == ones as u32 + 1);
        assert!(payload_bits == 7 * ones as u32 - 1);
        assert!(prefix_bits + payload_bits == 8 * ones as u32);
        ones += 1;
    }
    assert!(DOD_BUCKETS[2].1 + DOD_BUCKETS[2].2 == DOD_SHORT_CODE_BITS_MAX);
};

/// Bits of a new window's header after its 2-bit control: leading zeros and width - 1.
const WINDOW_HEADER_BITS: u32 = 12;

/// The encoder leaves the current window for the XOR's own when that saves more bits than the
/// new window's header costs. (On the benchmark's node_exporter-like data this is about 1%
/// smaller than keeping the current window whenever the XOR fits it.)
const WINDOW_SWITCH_SAVING_BITS: u32 = WINDOW_HEADER_BITS;

/// Number of bits a varint group occupies.
const VARINT_GROUP_BITS: u32 = 8;
/// At most ten 7-bit groups encode a u64.
const VARINT_GROUPS_MAX: u32 = 10;

/// A run of significant bits inside a 64-bit XOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    // Invariant: 1 <= sig and leading + sig <= 64.
    leading: u32,
    sig: u32,
}

impl Window {
    /// The window every stream starts with: all 64 bits.
    const FULL: Window = Window {
        leading: 0,
        sig: 64,
    };

    fn trailing(self) -> u32 {
        64 - self.leading - self.sig
    }
}

/// Appends samples to a Gorilla XOR stream.
///
/// The stream in [`XorEncoder::data`] decodes, together with [`XorEncoder::num_samples`], to
/// every sample appended so far, at any moment.
#[derive(Clone)]
pub struct XorEncoder {
    writer: BitWriter,
    num_samples: u16,
    /// Timestamp of sample 0; meaningless while `num_samples` is 0.
    first_t: i64,
    /// Timestamp of the last sample.
    t: i64,
    /// Difference between the last two timestamps, modulo 2^64.
    delta: u64,
    /// Bit pattern of the last value.
    v: u64,
    window: Window,
}

impl fmt::Debug for XorEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XorEncoder")
            .field("num_samples", &self.num_samples)
            .field("bytes", &self.writer.bytes.len())
            .field("last", &self.last())
            .finish_non_exhaustive()
    }
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An encoder with no samples.
    pub fn new() -> Self {
        XorEncoder {
            writer: BitWriter::default(),
            num_samples: 0,
            first_t: 0,
            t: 0,
            delta: 0,
            v: 0,
            window: Window::FULL,
        }
    }

    /// Continues a stream that an encoder produced: decodes `data` as `num_samples` samples and
    /// restores the state that appending needs (used when reloading a half-full head chunk).
    ///
    /// # Errors
    ///
    /// [`ChunkError::CorruptStream`] if the stream is malformed, ends early, or holds anything
    /// after its last sample other than the zero padding of its last byte.
    pub fn resume(data: Vec<u8>, num_samples: u16) -> Result<XorEncoder, ChunkError> {
        let end = scan(&data, num_samples)?;
        Ok(XorEncoder {
            writer: BitWriter {
                bytes: data,
                bit_len: end.bit_len,
            },
            num_samples,
            first_t: end.first_t,
            t: end.state.t,
            delta: end.state.delta,
            v: end.state.v,
            window: end.state.window,
        })
    }

    /// Appends a sample.
    ///
    /// `t` must be greater than the previous sample's timestamp (checked in debug builds);
    /// any gap, up to the full i64 range, is encoded exactly.
    ///
    /// # Panics
    ///
    /// If the encoder already holds `u16::MAX` samples (see [`XorEncoder::is_full`]).
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(!self.is_full(), "xor chunk is full: cut a new chunk first");
        debug_assert!(
            self.num_samples == 0 || t > self.t,
            "timestamps must increase: {t} after {}",
            self.t
        );
        let bits = v.to_bits();
        match self.num_samples {
            0 => {
                self.writer.write_varint(zigzag(t));
                self.writer.write_bits(bits, 64);
                self.first_t = t;
            }
            1 => {
                self.delta = t.wrapping_sub(self.t) as u64;
                self.writer.write_varint(self.delta);
                self.write_value(bits);
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                self.write_dod(delta.wrapping_sub(self.delta) as i64);
                self.delta = delta;
                self.write_value(bits);
            }
        }
        self.t = t;
        self.v = bits;
        self.num_samples += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.writer.write_bits(0, 1);
            return;
        }
        for (prefix, prefix_bits, payload_bits) in DOD_BUCKETS {
            if fits_signed(dod, payload_bits) {
                if payload_bits < 64 {
                    let payload = dod as u64 & ((1 << payload_bits) - 1);
                    let code = (prefix << payload_bits) | payload;
                    self.writer.write_bits(code, prefix_bits + payload_bits);
                } else {
                    self.writer.write_bits(prefix, prefix_bits);
                    self.writer.write_bits(dod as u64, payload_bits);
                }
                return;
            }
        }
        unreachable!("the last bucket holds every i64");
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.v;
        if xor == 0 {
            self.writer.write_bits(0, 1);
            return;
        }
        let leading = xor.leading_zeros();
        let trailing = xor.trailing_zeros();
        let sig = 64 - leading - trailing;
        let current = self.window;
        let fits = leading >= current.leading && trailing >= current.trailing();
        if fits && current.sig <= sig + WINDOW_SWITCH_SAVING_BITS {
            // One write when the code fits a single call's 56 bits.
            let payload = xor >> current.trailing();
            if current.sig <= 54 {
                let code = (0b10 << current.sig) | payload;
                self.writer.write_bits(code, 2 + current.sig);
            } else {
                self.writer.write_bits(0b10, 2);
                self.writer.write_bits(payload, current.sig);
            }
        } else {
            let header =
                (0b11 << WINDOW_HEADER_BITS) | (u64::from(leading) << 6) | u64::from(sig - 1);
            self.writer.write_bits(header, 2 + WINDOW_HEADER_BITS);
            self.writer.write_bits(xor >> trailing, sig);
            self.window = Window { leading, sig };
        }
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> u16 {
        self.num_samples
    }

    /// True when the chunk holds `u16::MAX` samples and takes no more.
    pub fn is_full(&self) -> bool {
        self.num_samples == u16::MAX
    }

    /// The stream so far; decodable with [`XorEncoder::num_samples`] at any moment.
    pub fn data(&self) -> &[u8] {
        &self.writer.bytes
    }

    /// The stream, giving up the encoder.
    pub fn into_data(self) -> Vec<u8> {
        self.writer.bytes
    }

    /// The last sample appended.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.num_samples > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// The timestamp of the first sample.
    pub fn first_t(&self) -> Option<i64> {
        (self.num_samples > 0).then_some(self.first_t)
    }

    /// The frame header describing the stream so far (zeros for the timestamps when empty).
    pub fn meta(&self) -> ChunkMeta {
        ChunkMeta {
            min_t: self.first_t().unwrap_or(0),
            max_t: self.last().map_or(0, |(t, _)| t),
            num_samples: self.num_samples,
        }
    }
}

/// Appends bits, most significant first, to a byte vector that always holds whole bytes.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    // Invariant: `bytes.len() == bit_len.div_ceil(8)`, and the bits of the last byte past
    // `bit_len` are zero, so the next write can OR into it.
    bytes: Vec<u8>,
    bit_len: u64,
}

impl BitWriter {
    /// Writes the low `n` bits of `value`, `n` in 0..=64.
    fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!(n <= 64);
        if n > 56 {
            self.write_bits(value >> 32, n - 32);
            self.write_bits(value, 32);
            return;
        }
        if n == 0 {
            return;
        }
        // Build the last partial byte and the new bits in one big-endian word, then store the
        // bytes they cover: `used + n` is at most 63 bits.
        let used = (self.bit_len % 8) as u32;
        let mut word = (value & ((1 << n) - 1)) << (64 - used - n);
        if used != 0 {
            let last = self.bytes.pop().unwrap_or(0);
            word |= u64::from(last) << 56;
        }
        let bytes = (used + n).div_ceil(8) as usize;
        self.bytes.extend_from_slice(&word.to_be_bytes()[..bytes]);
        self.bit_len += u64::from(n);
    }

    /// Writes `value` as LEB128 groups: 7 bits each, low first, the high bit set on all but
    /// the last group.
    fn write_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, VARINT_GROUP_BITS);
            value >>= 7;
        }
        self.write_bits(value, VARINT_GROUP_BITS);
    }
}

fn zigzag(t: i64) -> u64 {
    ((t << 1) ^ (t >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// True when `x` is representable in `bits`-bit two's complement.
fn fits_signed(x: i64, bits: u32) -> bool {
    bits >= 64 || (-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&x)
}

/// Sign-extends the low `bits` bits of `x`.
fn sign_extend(x: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((x << shift) as i64) >> shift
}

/// Reads bits most significant first through a 64-bit buffer refilled a word at a time.
#[derive(Debug, Clone)]
struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` not yet loaded into `buf`.
    next: usize,
    // Invariant: the top `avail` bits of `buf` are the next unread bits of the stream; the bits
    // below them are zero or the stream bits that follow, so OR-ing a reload in is harmless.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Bits consumed so far.
    fn bit_pos(&self) -> u64 {
        self.next as u64 * 8 - u64::from(self.avail)
    }

    /// Loads as many whole bytes as fit into `buf`.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self
            .data
            .get(self.next..)
            .and_then(|rest| rest.first_chunk::<8>())
        {
            // Callers refill only when they lack bits, so a shift by 64 cannot happen.
            debug_assert!(self.avail < 64);
            self.buf |= u64::from_be_bytes(*word) >> self.avail;
            let bytes = (64 - self.avail) / 8;
            self.next += bytes as usize;
            self.avail += bytes * 8;
        } else {
            self.refill_tail();
        }
    }

    #[cold]
    fn refill_tail(&mut self) {
        while self.avail <= 56 {
            let Some(&byte) = self.data.get(self.next) else {
                break;
            };
            self.buf |= u64::from(byte) << (56 - self.avail);
            self.next += 1;
            self.avail += 8;
        }
    }

    /// Makes at least `n` bits (<= 57) available, or fails.
    #[inline(always)]
    fn ensure(&mut self, n: u32) -> bool {
        if self.avail < n {
            self.refill();
            self.avail >= n
        } else {
            true
        }
    }

    /// Drops `n` available bits, `n` < 64.
    #[inline(always)]
    fn consume(&mut self, n: u32) {
        debug_assert!(n < 64 && n <= self.avail);
        self.buf <<= n;
        self.avail -= n;
    }

    /// Reads `n` bits, 1 <= `n` <= 56.
    #[inline(always)]
    fn read(&mut self, n: u32) -> Option<u64> {
        debug_assert!((1..=56).contains(&n));
        if !self.ensure(n) {
            return None;
        }
        let value = self.buf >> (64 - n);
        self.consume(n);
        Some(value)
    }

    /// Reads `n` bits, 1 <= `n` <= 64.
    #[inline(always)]
    fn read_wide(&mut self, n: u32) -> Option<u64> {
        if n <= 56 {
            self.read(n)
        } else {
            let high = self.read(n - 32)?;
            let low = self.read(32)?;
            Some((high << 32) | low)
        }
    }

    fn read_varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for group in 0..VARINT_GROUPS_MAX {
            let byte = self
                .read(VARINT_GROUP_BITS)
                .ok_or("a varint group, but the stream ended")?;
            let payload = byte & 0x7f;
            if group == VARINT_GROUPS_MAX - 1 && payload > 1 {
                return Err("a varint within 64 bits");
            }
            value |= payload << (7 * group);
            if byte & 0x80 == 0 {
                if group > 0 && payload == 0 {
                    return Err("a varint without trailing zero groups");
                }
                return Ok(value);
            }
        }
        Err("a varint of at most 10 groups")
    }
}

/// Decoder state after a sample: what the next sample is coded against.
#[derive(Debug, Clone, Copy)]
struct State {
    t: i64,
    delta: u64,
    v: u64,
    window: Window,
}

/// Iterates the samples of a Gorilla XOR stream.
///
/// Stops early, setting [`XorIter::err`], when the stream is malformed or ends before
/// `num_samples` samples; samples yielded before that were decoded from valid bits.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    reader: BitReader<'a>,
    state: State,
    /// Samples decoded so far.
    read: u16,
    /// Samples the stream is said to hold.
    num_samples: u16,
    err: Option<ChunkError>,
}

impl<'a> XorIter<'a> {
    /// Iterates `num_samples` samples from `data`.
    pub fn new(data: &'a [u8], num_samples: u16) -> Self {
        XorIter {
            reader: BitReader::new(data),
            state: State {
                t: 0,
                delta: 0,
                v: 0,
                window: Window::FULL,
            },
            read: 0,
            num_samples,
            err: None,
        }
    }

    /// Why iteration stopped before `num_samples` samples, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, expected: &'static str) -> Option<(i64, f64)> {
        self.err = Some(ChunkError::CorruptStream {
            bit_offset: self.reader.bit_pos(),
            expected,
        });
        self.num_samples = self.read;
        None
    }

    /// Decodes sample 0 or 1, whose timestamps are varints.
    #[cold]
    #[inline(never)]
    fn next_head(&mut self) -> Option<(i64, f64)> {
        let result = if self.read == 0 {
            self.read_first()
        } else {
            self.read_second()
        };
        match result {
            Ok(()) => {
                self.read += 1;
                Some((self.state.t, f64::from_bits(self.state.v)))
            }
            Err(expected) => self.fail(expected),
        }
    }

    fn read_first(&mut self) -> Result<(), &'static str> {
        self.state.t = unzigzag(self.reader.read_varint()?);
        self.state.v = self
            .reader
            .read_wide(64)
            .ok_or("the first value's 64 bits, but the stream ended")?;
        Ok(())
    }

    fn read_second(&mut self) -> Result<(), &'static str> {
        let delta = self.reader.read_varint()?;
        let t = self.state.t.wrapping_add(delta as i64);
        if t <= self.state.t {
            return Err("a timestamp greater than the previous one");
        }
        self.state.t = t;
        self.state.delta = delta;
        self.read_value()
    }

    /// Decodes a value code into `self.state`.
    #[inline(always)]
    fn read_value(&mut self) -> Result<(), &'static str> {
        let r = &mut self.reader;
        if !r.ensure(2) {
            // A lone 0 bit ("unchanged") can be the stream's very last bit.
            if r.avail == 1 && r.buf >> 63 == 0 {
                r.consume(1);
                return Ok(());
            }
            return Err("a value code, but the stream ended");
        }
        let control = r.buf >> 62;
        if control < 0b10 {
            r.consume(1);
            return Ok(());
        }
        r.consume(2);
        let window = if control == 0b10 {
            self.state.window
        } else {
            let header = r
                .read(WINDOW_HEADER_BITS)
                .ok_or("a value window header, but the stream ended")?;
            let leading = (header >> 6) as u32;
            let sig = (header & 0x3f) as u32 + 1;
            if leading + sig > 64 {
                return Err("a value window of at most 64 bits");
            }
            self.state.window = Window { leading, sig };
            self.state.window
        };
        let x = r
            .read_wide(window.sig)
            .ok_or("a value's significant bits, but the stream ended")?;
        self.state.v ^= x << window.trailing();
        Ok(())
    }

    /// Decodes a timestamp code near the end of the stream, or a 64-bit one.
    #[cold]
    #[inline(never)]
    fn read_timestamp_slow(&mut self) -> Result<(), &'static str> {
        let r = &mut self.reader;
        if !r.ensure(1) {
            return Err("a timestamp code, but the stream ended");
        }
        if r.buf >> 63 == 0 {
            r.consume(1);
            return Ok(());
        }
        // Every non-zero code is at least 8 bits long; with those loaded, the leading ones
        // of the prefix are all in `buf` and select the bucket.
        if !r.ensure(DOD_CODE_BITS_MIN) {
            return Err("a timestamp code, but the stream ended");
        }
        let ones = (!r.buf).leading_zeros().min(4);
        let (_, prefix_bits, payload_bits) = DOD_BUCKETS[ones as usize - 1];
        r.consume(prefix_bits);
        let payload = r
            .read_wide(payload_bits)
            .ok_or("a timestamp payload, but the stream ended")?;
        let dod = if payload_bits == 64 {
            payload as i64
        } else {
            sign_extend(payload, payload_bits)
        };
        self.state.delta = self.state.delta.wrapping_add(dod as u64);
        Ok(())
    }

    /// Decodes a timestamp code into `self.state`.
    #[inline(always)]
    fn read_timestamp(&mut self) -> Result<(), &'static str> {
        let r = &mut self.reader;
        r.ensure(DOD_SHORT_CODE_BITS_MAX);
        let ones = (!r.buf).leading_zeros();
        if ones < 4 && r.avail >= DOD_SHORT_CODE_BITS_MAX {
            // Without branches: with jittered scrapes, zero and non-zero dods alternate at
            // random, and a mispredicted branch would cost more than this whole sequence.
            // The bucket widths make a code with `ones` leading ones 8 × `ones` bits long (1
            // bit when there are none), with a payload of 7 × `ones` - 1 bits.
            let payload_bits = (7 * ones).saturating_sub(1);
            let mask = -i64::from(ones != 0);
            let dod = (((r.buf << (ones + 1)) as i64) >> (64 - payload_bits.max(1))) & mask;
            r.consume((8 * ones).max(1));
            self.state.delta = self.state.delta.wrapping_add(dod as u64);
        } else {
            self.read_timestamp_slow()?;
        }
        let t = self.state.t.wrapping_add(self.state.delta as i64);
        if t <= self.state.t {
            return Err("a timestamp greater than the previous one");
        }
        self.state.t = t;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.num_samples {
            return None;
        }
        if self.read < 2 {
            return self.next_head();
        }
        // Fast path for the commonest sample: same interval, same value, "00".
        let r = &mut self.reader;
        if r.ensure(2) && r.buf >> 62 == 0 {
            r.consume(2);
            let t = self.state.t.wrapping_add(self.state.delta as i64);
            if t <= self.state.t {
                return self.fail("a timestamp greater than the previous one");
            }
            self.state.t = t;
            self.read += 1;
            return Some((t, f64::from_bits(self.state.v)));
        }
        if let Err(expected) = self.read_timestamp() {
            return self.fail(expected);
        }
        if let Err(expected) = self.read_value() {
            return self.fail(expected);
        }
        self.read += 1;
        Some((self.state.t, f64::from_bits(self.state.v)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.num_samples - self.read)))
    }
}

/// Decodes `num_samples` samples from `data`, appending them to `out`.
///
/// Reserves room for at most `num_samples` samples, fewer when `data` is too short to hold that
/// many.
///
/// # Errors
///
/// [`ChunkError::CorruptStream`] if the stream is malformed or ends before `num_samples`
/// samples; `out` then keeps the samples decoded before the failure. Bytes after the last
/// sample are not read.
pub fn decode(data: &[u8], num_samples: u16, out: &mut Vec<(i64, f64)>) -> Result<(), ChunkError> {
    out.reserve_exact(usize::from(num_samples).min(samples_max(data.len())));
    let mut iter = XorIter::new(data, num_samples);
    out.extend(iter.by_ref());
    match iter.err {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// An upper bound on the samples `len` bytes can hold: sample 0 takes at least 9 bytes and every
/// later sample at least 2 bits.
fn samples_max(len: usize) -> usize {
    len.saturating_sub(8).saturating_mul(4)
}

/// What [`scan`] learns from a complete, well-formed stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamEnd {
    num_samples: u16,
    first_t: i64,
    state: State,
    bit_len: u64,
}

impl StreamEnd {
    /// First and last timestamps, or zeros when the stream is empty (as the frame stores them).
    pub(crate) fn span(&self) -> (i64, i64) {
        if self.num_samples == 0 {
            (0, 0)
        } else {
            (self.first_t, self.state.t)
        }
    }
}

/// Decodes the whole stream, and checks that nothing but zero padding follows the last sample.
pub(crate) fn scan(data: &[u8], num_samples: u16) -> Result<StreamEnd, ChunkError> {
    let mut iter = XorIter::new(data, num_samples);
    let first_t = iter.next().map_or(0, |(t, _)| t);
    for _ in iter.by_ref() {}
    if let Some(err) = iter.err {
        return Err(err);
    }
    let bit_len = iter.reader.bit_pos();
    let corrupt = |expected| ChunkError::CorruptStream {
        bit_offset: bit_len,
        expected,
    };
    if bit_len.div_ceil(8) != data.len() as u64 {
        return Err(corrupt("the end of the stream after the last sample"));
    }
    let used = (bit_len % 8) as u32;
    if used != 0 && data.last().is_some_and(|&last| last & (0xff >> used) != 0) {
        return Err(corrupt("zero padding after the last sample"));
    }
    Ok(StreamEnd {
        num_samples,
        first_t,
        state: iter.state,
        bit_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bit pattern that marks a series as stale.
    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    fn encode(samples: &[(i64, f64)]) -> XorEncoder {
        let mut enc = XorEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        enc
    }

    fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    /// Encodes `samples`, checks the stream's size, and checks that every way of reading it back
    /// (iterator, `decode`, `resume` at every prefix then appending the rest) gives the samples
    /// bit for bit.
    fn check(samples: &[(i64, f64)], expected_bytes: usize) {
        let enc = encode(samples);
        let n = enc.num_samples();
        assert_eq!(usize::from(n), samples.len());
        assert_eq!(enc.data().len(), expected_bytes, "size of {samples:?}");

        let mut iter = XorIter::new(enc.data(), n);
        let got: Vec<_> = iter.by_ref().collect();
        assert_eq!(iter.err(), None);
        assert_eq!(bits(&got), bits(samples));

        let mut out = vec![(7, 7.0)];
        decode(enc.data(), n, &mut out).unwrap();
        assert_eq!(bits(&out[1..]), bits(samples));

        assert_eq!(enc.first_t(), samples.first().map(|s| s.0));
        assert_eq!(
            enc.last().map(|s| bits(&[s])),
            samples.last().map(|&s| bits(&[s]))
        );

        for split in 0..=samples.len() {
            let prefix = encode(&samples[..split]);
            let mut resumed = XorEncoder::resume(prefix.into_data(), split as u16).unwrap();
            for &(t, v) in &samples[split..] {
                resumed.append(t, v);
            }
            assert_eq!(resumed.data(), enc.data(), "resumed after {split} samples");
        }
    }

    /// `n` samples 15 s apart from a 2023 timestamp.
    fn scrapes(n: usize, value: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
        let start = 1_700_000_000_000;
        (0..n)
            .map(|i| (start + 15_000 * i as i64, value(i)))
            .collect()
    }

    #[test]
    fn empty() {
        check(&[], 0);
    }

    #[test]
    fn one_sample() {
        // A 6-byte zigzag varint for a 2023 timestamp in ms, then 8 bytes of value.
        check(&[(1_700_000_000_000, 3.25)], 14);
        check(&[(0, 0.0)], 9);
        check(&[(i64::MIN, -1.0)], 18);
        check(&[(i64::MAX, f64::from_bits(STALE_NAN))], 18);
    }

    #[test]
    fn constant_series() {
        // 14 bytes for sample 0, a 2-byte first delta and 1 bit of value, then 2 bits a sample.
        check(&scrapes(2, |_| 1.0), 17);
        check(&scrapes(120, |_| 1.0), 16 + (1 + 118 * 2usize).div_ceil(8));
        check(&scrapes(120, |_| 0.0), 16 + (1 + 118 * 2usize).div_ceil(8));
    }

    #[test]
    fn counters() {
        // These sizes are pinned: if one moves, the encoder's choices, and so its output, did.
        // An integer counter rising by 1,000 a scrape: about 18 bits a sample, as carries keep
        // widening the XOR window.
        check(&scrapes(120, |i| 5.0e6 + 1_000.0 * i as f64), 269);
        // A float counter printed with 2 decimals, as CPU seconds are: decimal fractions have no
        // short binary form, so nearly every mantissa bit changes.
        let cpu_seconds = |i| ((300.0 + 14.87 * i as f64) * 100.0).round() / 100.0;
        check(&scrapes(120, cpu_seconds), 893);
        // Resets and large jumps take fresh windows.
        check(&scrapes(6, |i| [10.0, 20.0, 0.0, 5.0, 1e18, 3.0][i]), 38);
    }

    #[test]
    fn jittered_timestamps() {
        // Jitter of a few ms takes the 8-bit timestamp code (dods 3, -6, 1, 4); a missed scrape
        // the 24-bit one twice (14,998 then -15,000).
        let ts = [
            0, 15_000, 30_003, 45_000, 59_998, 75_000, 105_000, 120_000, 135_000,
        ];
        let samples: Vec<_> = ts.iter().map(|&t| (1_700_000_000_000 + t, 1.0)).collect();
        let ts_bits = 8 * 4 + 24 * 2 + 1;
        check(&samples, 16 + (1 + ts_bits + 7usize).div_ceil(8));
    }

    #[test]
    fn huge_deltas() {
        // 10 + 8 bytes of sample 0, a 10-byte delta of 2^64 - 1, a 25-bit value code.
        check(&[(i64::MIN, 1.0), (i64::MAX, 2.0)], 32);
        // 18 bytes, a 9-byte delta of 2^63 - 1, then three 68-bit escapes and 4 value bits.
        let samples = [
            (i64::MIN, 1.0),
            (-1, 1.0),
            (0, 1.0),
            (i64::MAX - 1, 1.0),
            (i64::MAX, 1.0),
        ];
        check(&samples, 53);
        // A delta of 1 then one of 2^64 - 2: the dod wraps to -3 and takes the 8-bit code.
        check(&[(i64::MIN, 0.0), (i64::MIN + 1, 0.0), (i64::MAX, 0.0)], 21);
    }

    #[test]
    fn every_timestamp_bucket_boundary() {
        let dods = [
            31, -32, 32, -33, 4095, -4096, 4096, -4097, 524_287, -524_288, 524_288, -524_289,
        ];
        let mut samples = vec![(0, 0.0), (1_000_000, 0.0)];
        let mut delta = 1_000_000i64;
        for dod in dods.into_iter().chain([0]) {
            delta += dod;
            samples.push((samples.last().unwrap().0 + delta, 0.0));
        }
        // 9 bytes of sample 0, a 3-byte first delta, then codes and 14 value bits.
        let ts_bits = 8 + 8 + 16 + 16 + 16 + 16 + 24 + 24 + 24 + 24 + 68 + 68 + 1;
        check(&samples, 9 + 3 + (ts_bits + 14usize).div_ceil(8));
    }

    #[test]
    fn nan_payloads_and_signed_zeros() {
        let values = [
            STALE_NAN,
            f64::NAN.to_bits(),
            0xfff8_0000_0000_0001,
            0x7ff0_0000_0000_0001,
            0x7fff_ffff_ffff_ffff,
            (-0.0f64).to_bits(),
            0,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            1,
            STALE_NAN,
            STALE_NAN,
            1.0f64.to_bits(),
        ];
        // Pinned, like the counters' sizes.
        check(&scrapes(values.len(), |i| f64::from_bits(values[i])), 93);
    }

    /// Sample 0 at t = 0 with value 0.0: a 1-byte varint and 8 zero bytes.
    const ZERO_HEAD: [u8; 9] = [0; 9];

    fn with_head(rest: &[u8]) -> Vec<u8> {
        [&ZERO_HEAD[..], rest].concat()
    }

    #[test]
    fn decoding_stops_at_malformed_streams() {
        let cases: Vec<(Vec<u8>, u16, u64, &str)> = vec![
            (vec![], 1, 0, "a varint group, but the stream ended"),
            (vec![0x80], 1, 8, "a varint group, but the stream ended"),
            (
                vec![0x80, 0x00],
                1,
                16,
                "a varint without trailing zero groups",
            ),
            (vec![0xff; 10], 1, 80, "a varint within 64 bits"),
            (
                vec![0x00, 1, 2, 3],
                1,
                8,
                "the first value's 64 bits, but the stream ended",
            ),
            // A first delta of 0.
            (
                with_head(&[0x00, 0x00]),
                2,
                80,
                "a timestamp greater than the previous one",
            ),
            // A window of 63 leading zeros and 64 significant bits.
            (
                with_head(&[0x01, 0xff, 0xff, 0xff]),
                2,
                94,
                "a value window of at most 64 bits",
            ),
            // Delta 1, then a window (0, 2) holding 0b11 that ends on a byte boundary.
            (
                with_head(&[0x01, 0xc0, 0x07]),
                3,
                96,
                "a timestamp code, but the stream ended",
            ),
            // Delta 1, value unchanged, then a dod of -1: the next delta is 0. Near the end of
            // the stream and away from it, as the decoder reads those differently.
            (
                with_head(&[0x01, 0x5f, 0x80]),
                3,
                89,
                "a timestamp greater than the previous one",
            ),
            (
                with_head(&[0x01, 0x5f, 0x80, 0, 0, 0, 0]),
                3,
                89,
                "a timestamp greater than the previous one",
            ),
            // A value code cut after its control bits.
            (
                with_head(&[0x01, 0x30]),
                3,
                84,
                "a value window header, but the stream ended",
            ),
        ];
        for (data, n, bit_offset, expected) in cases {
            let mut iter = XorIter::new(&data, n);
            iter.by_ref().for_each(drop);
            let want = ChunkError::CorruptStream {
                bit_offset,
                expected,
            };
            assert_eq!(iter.err(), Some(&want), "{data:x?}");
            assert_eq!(decode(&data, n, &mut Vec::new()), Err(want));
        }
    }

    #[test]
    fn decodes_a_hand_written_stream() {
        // The last case above with one sample fewer: delta 1 and a value of 0b11 << 62.
        let mut out = Vec::new();
        decode(&with_head(&[0x01, 0xc0, 0x07]), 2, &mut out).unwrap();
        assert_eq!(bits(&out), vec![(0, 0), (1, 0xc000_0000_0000_0000)]);
    }

    #[test]
    fn resume_rejects_what_the_encoder_never_writes() {
        let data = encode(&scrapes(3, |i| i as f64)).into_data();
        // Zero padding can read as extra unchanged samples, which is why the frame stores the
        // count and the last timestamp; a count past the padding fails.
        assert!(XorEncoder::resume(data.clone(), 3 + 8).is_err());
        assert!(
            XorEncoder::resume(data.clone(), 2).is_err(),
            "bytes after the last sample"
        );
        let mut padded = data.clone();
        padded.push(0);
        assert!(
            XorEncoder::resume(padded, 3).is_err(),
            "a whole byte of padding"
        );
        let mut dirty = data.clone();
        *dirty.last_mut().unwrap() |= 1;
        assert!(XorEncoder::resume(dirty, 3).is_err(), "non-zero padding");
    }

    #[test]
    fn worst_case_stream_fits_the_bound() {
        // Alternating huge and tiny deltas, and values whose XOR spans 62 bits.
        let mut enc = XorEncoder::new();
        let mut t = i64::MIN;
        for i in 0..u64::from(u16::MAX) {
            let v = if i % 2 == 0 {
                0x8000_0000_0000_0001
            } else {
                u64::MAX
            };
            enc.append(t, f64::from_bits(v));
            t += if i % 2 == 0 { 1 } else { 1 << 46 };
        }
        assert!(enc.is_full());
        assert!(enc.data().len() <= STREAM_BYTES_MAX);
        let mut out = Vec::new();
        decode(enc.data(), u16::MAX, &mut out).unwrap();
        assert_eq!(out.len(), usize::from(u16::MAX));
    }

    /// Strictly increasing timestamps from any start.
    fn increasing_timestamps() -> impl Strategy<Value = Vec<i64>> {
        // Mostly scrape-like gaps, and now and then one of any magnitude up to 2^64 - 1.
        let gap = prop_oneof![
            4 => Just(15_000u64),
            4 => 14_990u64..15_010,
            2 => 1u64..100,
            1 => (any::<u64>(), 0u32..64).prop_map(|(gap, shift)| (gap >> shift).max(1)),
        ];
        (any::<i64>(), proptest::collection::vec(gap, 0..300)).prop_map(|(start, gaps)| {
            let mut out = vec![start];
            for gap in gaps {
                match out.last().unwrap().checked_add_unsigned(gap) {
                    Some(t) => out.push(t),
                    None => break,
                }
            }
            out
        })
    }

    /// Any bit pattern, with the interesting ones and small integers overrepresented.
    fn values() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(STALE_NAN),
            Just(0),
            Just(1.0f64.to_bits()),
            (0u64..1_000_000).prop_map(|x| (x as f64).to_bits()),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(
            ts in increasing_timestamps(),
            vs in proptest::collection::vec(values(), 300),
        ) {
            let samples: Vec<(i64, f64)> =
                ts.iter().zip(&vs).map(|(&t, &v)| (t, f64::from_bits(v))).collect();
            let enc = encode(&samples);
            let mut out = Vec::new();
            decode(enc.data(), enc.num_samples(), &mut out).unwrap();
            prop_assert_eq!(bits(&out), bits(&samples));
            // Resuming half way and appending the rest gives the same bytes.
            let half = samples.len() / 2;
            let prefix = encode(&samples[..half]);
            let mut resumed = XorEncoder::resume(prefix.into_data(), half as u16).unwrap();
            for &(t, v) in &samples[half..] {
                resumed.append(t, v);
            }
            prop_assert_eq!(resumed.data(), enc.data());
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            num_samples in any::<u16>(),
        ) {
            let mut out = Vec::new();
            let result = decode(&data, num_samples, &mut out);
            prop_assert!(out.capacity() <= usize::from(num_samples));
            prop_assert_eq!(result.is_ok(), out.len() == usize::from(num_samples));
            let _ = XorEncoder::resume(data, num_samples);
        }

        /// Random bytes fail early; damaged real streams reach deeper into the decoder.
        #[test]
        fn damaged_streams_never_panic(
            ts in increasing_timestamps(),
            vs in proptest::collection::vec(values(), 300),
            flips in proptest::collection::vec(any::<usize>(), 1..4),
            cut in any::<usize>(),
            extra in 0u16..3,
        ) {
            let samples: Vec<(i64, f64)> =
                ts.iter().zip(&vs).map(|(&t, &v)| (t, f64::from_bits(v))).collect();
            let enc = encode(&samples);
            let n = enc.num_samples() + extra;
            let mut data = enc.into_data();
            if !data.is_empty() {
                for flip in flips {
                    let bit = flip % (data.len() * 8);
                    data[bit / 8] ^= 1 << (bit % 8);
                }
                data.truncate(data.len() - cut % data.len());
            }
            let mut out = Vec::new();
            let result = decode(&data, n, &mut out);
            prop_assert!(out.capacity() <= usize::from(n));
            prop_assert_eq!(result.is_ok(), out.len() == usize::from(n));
            prop_assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
            let _ = XorEncoder::resume(data, n);
        }
    }
}
