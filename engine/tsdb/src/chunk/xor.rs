//! The series codec: one series' samples as grid-predicted timestamps, runs of repeated
//! samples, and values as scaled decimal integers or Gorilla XORs.
//!
//! Scrapes land on a fixed grid (a few land some milliseconds late) and most series hold still
//! or count whole events, so [`XorEncoder`] spends its bits where the data moves: a sample on
//! the grid with an unchanged value extends a run, a late scrape costs one small code and keeps
//! the grid, and a value that is a short decimal (`14.87`, `8.0e9`) is coded as the change of
//! that integer, Rice-coded against the recent mean change. Anything else falls back to
//! Gorilla's XOR of the bit patterns, so every `f64` round-trips bit for bit. The stream is
//! valid after every append; [`XorIter`] decodes it. It carries no sample count and no framing:
//! the chunk frame (`super`) stores the count and a CRC beside it.
//!
//! Bits are written most significant first; the last byte is padded with zero bits. Which code
//! comes next depends on a context: `C` after a changed value, `R` after an unchanged one (a
//! run follows), `B` right after a run. The full format, the encoder's policy and the
//! measurements behind each choice are in `docs/format/chunk-xor.md`.
//!
//! ```text
//! sample 0   zigzag varint t0 (groups of 7 bits in 8, low first), then
//!            0 + 64 bits                  XOR mode, window (0, 64)
//!            1 + DEC + wide(zigzag(m))    decimal mode: v = f64(m << shift) / 10^exp
//!            DEC = 0 (plain integer) | 1 + exp:5 + shift:6;  wide(x) = (W-1):6 + W bits
//! sample 1   interval = mantissa * 10^e: e:2 + varint mantissa; then a record in context C
//!            predicted at t0 + interval
//!
//! context C  0 + SHORT                    on the grid, value changed
//!            10 + d:3 + SHORT             late by d + 1 ms (the grid stays), value changed
//!            11 + TIME + VALUE
//! context B  d:3, d > 0                   late by d ms, value unchanged
//!            000 + 0 + SHORT | 000 + 1 + TIME + VALUE
//! context R  run of n >= 0 samples on the grid with the value unchanged: Exp-Golomb of
//!            order 2; then context B
//!
//! TIME   0 | 10 + r:6 | 110 + r:14      residual from grid + interval; a late sample keeps
//!                                       the grid, an early or on-time one moves it to itself
//!        111 + varint D + (0 | 1 + a:8) escape: t = last t + D, grid = t,
//!                                       interval = D + a when flagged
//! VALUE  0                              unchanged                -> context R
//!        10 + SHORT                     changed                  -> context C
//!        110 + L:6 + (S-1):6 + S bits   XOR mode, window (L, S)  -> context C
//!        111 + DEC + wide(zigzag(dm))   decimal mode, m = scaled(last v) + dm -> context C
//! SHORT  XOR mode: the XOR's S bits in the current window
//!        decimal mode: Rice code of zigzag(dm - predicted dm), 16 ones escaping to wide()
//! ```
//!
//! Timestamps strictly increase; differences are taken modulo 2^64, so any pair of increasing
//! i64 timestamps round-trips, however far apart.

use std::fmt;
use std::num::NonZeroU16;

use super::{ChunkError, ChunkMeta};
use bits::{BitWriter, bit_len, fits_signed, leading_varint, low_bits, unzigzag, zigzag};

mod bits;
mod decode;
mod packed;

pub(crate) use decode::scan;
pub use decode::{XorIter, decode};
pub use packed::PackedEncoder;

/// Worst-case stream bytes for a full chunk of `u16::MAX` samples: sample 0, sample 1's
/// interval, and the longest record for each later sample (sample 1's record included).
pub const STREAM_BYTES_MAX: usize =
    (FIRST_BITS_MAX + INTERVAL_BITS_MAX + RECORD_BITS_MAX * (u16::MAX as usize - 1)).div_ceil(8);

const VARINT_BITS_MAX: usize = (VARINT_GROUP_BITS * VARINT_GROUPS_MAX) as usize;
const INTERVAL_BITS_MAX: usize = INTERVAL_EXPONENT_BITS as usize + VARINT_BITS_MAX;
/// A raw integer: its width field and 64 bits.
const WIDE_BITS_MAX: usize = WIDTH_BITS as usize + 64;
/// Sample 0: a 10-group varint and the longer of the two value forms.
const FIRST_BITS_MAX: usize =
    VARINT_BITS_MAX + 1 + max(64, DECIMAL_HEADER_BITS as usize + WIDE_BITS_MAX);
/// The escape, with an interval adjustment.
const TIME_BITS_MAX: usize = 3 + VARINT_BITS_MAX + 1 + ADJUST_BITS as usize;
/// A window's 64 bits, a Rice code of 15 ones and `RICE_K_MAX` bits, or a Rice escape.
const SHORT_BITS_MAX: usize = max(
    64,
    max(
        (RICE_ESCAPE_ONES + RICE_K_MAX) as usize,
        RICE_ESCAPE_ONES as usize + WIDE_BITS_MAX,
    ),
);
const VALUE_BITS_MAX: usize = max(
    2 + SHORT_BITS_MAX,
    max(
        3 + WINDOW_HEADER_BITS as usize + 64,
        3 + DECIMAL_HEADER_BITS as usize + WIDE_BITS_MAX,
    ),
);
/// The longest record a sample can add: an empty run, then context B's escape and the longest
/// time and value codes. Context C's general record is shorter, and so is any run code (which
/// a sample extends rather than adds to).
const RECORD_BITS_MAX: usize =
    (RUN_K + 1 + LATE_BITS + 1) as usize + TIME_BITS_MAX + VALUE_BITS_MAX;
const _: () = assert!(2 + LATE_BITS as usize + SHORT_BITS_MAX <= RECORD_BITS_MAX);
const _: () = assert!((2 * RUN_ZEROS_MAX + RUN_K + 1) as usize <= RECORD_BITS_MAX);

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Payload of a late code: the delay minus 1, so delays of 1 to 8 ms.
const LATE_BITS: u32 = 3;
const LATE_MAX: i64 = 1 << LATE_BITS;
/// After a run the late code holds the delay itself, 1 to 7 ms: a delay of 0 would have
/// extended the run, so `000` escapes to the general code instead.
const BREAK_LATE_END: i64 = 1 << LATE_BITS;
/// Residual widths of the general timestamp code's two buckets.
const SMALL_BITS: u32 = 6;
const MEDIUM_BITS: u32 = 14;
/// The interval adjustment of an escape, two's complement.
const ADJUST_BITS: u32 = 8;
/// Largest distance between a delta and a whole number of seconds that the encoder rounds
/// away when it takes the delta as the interval.
const INTERVAL_ROUNDING_MS: i64 = 8;

/// Decimal mode: exponent (0 to 22, the powers of ten an f64 holds exactly), binary shift and
/// the width field of a raw integer.
const EXPONENT_BITS: u32 = 5;
const EXPONENT_MAX: u32 = 22;
const SHIFT_BITS: u32 = 6;
const WIDTH_BITS: u32 = 6;
/// The longest decimal header: a flag, then exponent and shift (a lone `0` is exponent and
/// shift 0, a plain integer).
const DECIMAL_HEADER_BITS: u32 = 1 + EXPONENT_BITS + SHIFT_BITS;
/// The interval at sample 1 is a varint mantissa times a power of ten with this many bits of
/// exponent (1 ms to 1 s).
const INTERVAL_EXPONENT_BITS: u32 = 2;
/// The encoder uses decimal mode only for integers of at most 53 bits, which an f64 holds
/// exactly; the decoder accepts any i64 and computes whatever it gives.
const DECIMAL_MAGNITUDE_MAX: f64 = (1u64 << 53) as f64;
/// A binary shift pays for its switches only when it removes at least this many bits.
const SHIFT_MIN: u32 = 8;
/// Powers of ten that are exact in an f64.
const POW10: [f64; EXPONENT_MAX as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Rice codes: this many leading ones escape to a raw integer.
const RICE_ESCAPE_ONES: u32 = 16;
/// The predicted change is a moving mean of the changes, in fixed point: `mean += (dm - mean)
/// >> MEAN_SHIFT`, with `MEAN_FRAC_BITS` fractional bits.
const MEAN_FRAC_BITS: u32 = 4;
const MEAN_SHIFT: u32 = 2;
/// The Rice order follows a moving mean of the coded integers' bit lengths.
const SIZE_FRAC_BITS: u32 = 4;
const SIZE_SHIFT: u32 = 2;
const RICE_K_MAX: u32 = 60;
const RICE_K_BIAS: i32 = 4;

/// Runs: Exp-Golomb of order 2, with at most 16 leading zeros (runs of up to 2^19 - 5; a
/// chunk needs 2^16 - 2).
const RUN_K: u32 = 2;
const RUN_ZEROS_MAX: u32 = 16;

/// Bits of a new XOR window's header: leading zeros and width - 1.
const WINDOW_HEADER_BITS: u32 = 12;
/// The encoder leaves the current window for the XOR's own when that saves more bits than the
/// new window's header costs.
const WINDOW_SWITCH_SAVING_BITS: u32 = WINDOW_HEADER_BITS;

/// Number of bits a varint group occupies.
const VARINT_GROUP_BITS: u32 = 8;
/// At most ten 7-bit groups encode a u64.
const VARINT_GROUPS_MAX: u32 = 10;

/// In XOR mode the encoder tries every exponent on every this many samples, to come back to
/// decimal mode after values that were not decimals.
const DECIMAL_RETRY_SAMPLES: u16 = 16;

const ERR_ORDER: &str = "a timestamp greater than the previous one";

/// A run of significant bits inside a 64-bit XOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    // Invariant: 1 <= sig and leading + sig <= 64. Bytes, not words: the active chunk's
    // encoder state is part of every series in the head.
    leading: u8,
    sig: u8,
}

impl Window {
    /// The window every XOR-mode stream starts with: all 64 bits.
    const FULL: Window = Window {
        leading: 0,
        sig: 64,
    };

    /// The window of `sig` bits after `leading` zeros; both at most 64.
    fn new(leading: u32, sig: u32) -> Window {
        debug_assert!(sig >= 1 && leading + sig <= 64);
        Window {
            leading: leading as u8,
            sig: sig as u8,
        }
    }

    #[inline(always)]
    fn leading(self) -> u32 {
        u32::from(self.leading)
    }

    #[inline(always)]
    fn sig(self) -> u32 {
        u32::from(self.sig)
    }

    #[inline(always)]
    fn trailing(self) -> u32 {
        64 - self.leading() - self.sig()
    }
}

/// Which code the next record starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The last value changed.
    Change,
    /// The last value was unchanged: a run comes next.
    Run,
    /// A run was just read: the next sample is not one more of it.
    Break,
}

/// How values are coded, and what predicts the next one. Fields are as narrow as their ranges
/// allow (24 bytes): the head holds one per series.
#[derive(Debug, Clone, Copy)]
struct Values {
    decimal: bool,
    /// XOR mode's current window.
    window: Window,
    /// Decimal mode: `v = (m << shift) / 10^exp`. Kept in XOR mode as the last decimal
    /// parameters, which the encoder tries first to return to decimal mode. Invariant:
    /// `exp <= EXPONENT_MAX`, `shift < 64`.
    exp: u8,
    shift: u8,
    /// True once the stream has been in decimal mode.
    decimal_seen: bool,
    m: i64,
    /// Moving mean of the changes of `m`, with `MEAN_FRAC_BITS` fractional bits.
    mean: i64,
    /// Moving mean of the coded integers' bit lengths, with `SIZE_FRAC_BITS` fractional bits:
    /// at most `64 << SIZE_FRAC_BITS`.
    size: i16,
}

impl Values {
    const XOR: Values = Values {
        decimal: false,
        window: Window::FULL,
        exp: 0,
        shift: 0,
        decimal_seen: false,
        m: 0,
        mean: 0,
        size: 0,
    };

    #[inline(always)]
    fn exp(&self) -> u32 {
        u32::from(self.exp)
    }

    #[inline(always)]
    fn shift(&self) -> u32 {
        u32::from(self.shift)
    }

    #[inline(always)]
    fn set_params(&mut self, exp: u32, shift: u32) {
        debug_assert!(exp <= EXPONENT_MAX && shift < 64);
        self.exp = exp as u8;
        self.shift = shift as u8;
    }

    #[inline(always)]
    fn rice_k(&self) -> u32 {
        ((i32::from(self.size) + RICE_K_BIAS).max(0) as u32 >> SIZE_FRAC_BITS).min(RICE_K_MAX)
    }

    #[inline(always)]
    fn predicted(&self) -> i64 {
        self.mean.wrapping_add(1 << (MEAN_FRAC_BITS - 1)) >> MEAN_FRAC_BITS
    }

    /// Applies a decimal short code carrying `z`; returns the new value's bits.
    #[inline(always)]
    fn step_decimal(&mut self, z: u64, escaped: bool) -> u64 {
        self.advance_decimal(z, escaped);
        self.decimal_bits()
    }

    /// [`Values::step_decimal`] without the value: its bits are [`Values::decimal_bits`],
    /// which a decoder computes only for the samples it yields (the division in it is most
    /// of what decoding a decimal sample costs).
    #[inline(always)]
    fn advance_decimal(&mut self, z: u64, escaped: bool) {
        let change = self.predicted().wrapping_add(unzigzag(z));
        self.m = self.m.wrapping_add(change);
        let scaled = change.wrapping_shl(MEAN_FRAC_BITS);
        let size = (bit_len(z) << SIZE_FRAC_BITS) as i16;
        if escaped {
            // An outlier or a new regime: follow it at once.
            self.mean = scaled;
            self.size = size;
        } else {
            self.mean = self
                .mean
                .wrapping_add(scaled.wrapping_sub(self.mean) >> MEAN_SHIFT);
            self.size += (size - self.size) >> SIZE_SHIFT;
        }
    }

    /// The bits of the value decimal mode holds.
    #[inline(always)]
    fn decimal_bits(&self) -> u64 {
        from_decimal(self.m, self.exp(), self.shift())
    }

    /// Enters decimal mode with the value `scaled(prev) + unzigzag(z)`; returns its bits.
    fn enter_decimal(&mut self, prev: u64, exp: u32, shift: u32, z: u64) -> u64 {
        let change = unzigzag(z);
        self.decimal = true;
        self.decimal_seen = true;
        self.set_params(exp, shift);
        self.m = scaled(prev, exp, shift).wrapping_add(change);
        self.mean = change.wrapping_shl(MEAN_FRAC_BITS);
        self.size = (bit_len(z) << SIZE_FRAC_BITS) as i16;
        from_decimal(self.m, exp, shift)
    }

    /// Enters decimal mode at sample 0 with `m`.
    fn start_decimal(&mut self, exp: u32, shift: u32, m: i64) -> u64 {
        self.decimal = true;
        self.decimal_seen = true;
        self.set_params(exp, shift);
        self.m = m;
        self.mean = 0;
        self.size = 0;
        from_decimal(m, exp, shift)
    }
}

/// Everything the next sample is coded against (56 bytes).
#[derive(Debug, Clone, Copy)]
struct State {
    t: i64,
    /// How far the last sample came after its grid point, `t - late`: the next is predicted
    /// at `t - late + interval`. Only a late residual leaves the grid behind, by at most
    /// 2^13 ms (`MEDIUM_BITS`), so 16 bits hold it.
    late: u16,
    interval: u64,
    /// True when the last timestamp code was an escape.
    escaped: bool,
    /// Bit pattern of the last value.
    v: u64,
    values: Values,
    context: Context,
}

impl State {
    const EMPTY: State = State {
        t: 0,
        late: 0,
        interval: 0,
        escaped: false,
        v: 0,
        values: Values::XOR,
        context: Context::Change,
    };

    #[inline(always)]
    fn predicted_t(&self) -> i64 {
        self.t
            .wrapping_sub(i64::from(self.late))
            .wrapping_add(self.interval as i64)
    }

    /// Moves to the sample `r` ms after the prediction (late, small and medium codes).
    #[inline(always)]
    fn step_time(&mut self, r: i64) -> Result<(), &'static str> {
        let predicted = self.predicted_t();
        let t = predicted.wrapping_add(r);
        if t <= self.t {
            return Err(ERR_ORDER);
        }
        // A late scrape leaves the grid where it was; an early one shows it was late itself.
        debug_assert!(r < 1 << MEDIUM_BITS);
        self.late = if r > 0 { r as u16 } else { 0 };
        self.t = t;
        self.escaped = false;
        Ok(())
    }

    /// Moves to the sample `delta` after the last one (escape code).
    fn step_escape(&mut self, delta: u64, interval: Option<u64>) -> Result<(), &'static str> {
        let t = self.t.wrapping_add(delta as i64);
        if t <= self.t {
            return Err(ERR_ORDER);
        }
        self.t = t;
        self.late = 0;
        if let Some(interval) = interval {
            self.interval = interval;
        }
        self.escaped = true;
        Ok(())
    }
}

/// How the encoder codes one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeCode {
    /// Residual `r` from the prediction; 0 is on the grid.
    Residual(i64),
    /// `delta` after the last timestamp, with a new interval `delta + adjust` if set.
    Escape { delta: u64, adjust: Option<i64> },
}

/// How the encoder codes one value.
#[derive(Debug, Clone, Copy)]
enum ValueCode {
    Same,
    /// Decimal short code, `z` the zigzagged residual.
    Rice(u64),
    /// XOR short code: the payload in the current window.
    InWindow(u64),
    NewWindow(Window, u64),
    Decimal {
        exp: u32,
        shift: u32,
        z: u64,
    },
}

impl ValueCode {
    fn is_short(self) -> bool {
        matches!(self, ValueCode::Rice(_) | ValueCode::InWindow(_))
    }
}

/// The run the stream ends with, which the next sample may extend. 8 bytes with its `Option`:
/// a chunk's stream is far shorter than 2^32 bits ([`STREAM_BYTES_MAX`]) and its runs than
/// 2^16 samples.
#[derive(Debug, Clone, Copy)]
struct OpenRun {
    start_bit: u32,
    len: NonZeroU16,
}

/// Appends samples to a chunk stream.
///
/// The stream in [`XorEncoder::data`] decodes, together with [`XorEncoder::num_samples`], to
/// every sample appended so far, at any moment.
///
/// 104 bytes, only while appending: the head keeps its open chunks packed
/// ([`PackedEncoder`]) and unpacks one for the moment of an append.
#[derive(Clone)]
pub struct XorEncoder {
    writer: BitWriter,
    num_samples: u16,
    state: State,
    // Invariant: `Some` only while the stream ends with this run's code.
    open_run: Option<OpenRun>,
    /// The first sample's timestamp (0 while there is none), which the stream also holds as
    /// its leading varint: kept so that checking and packing an open chunk do not read the
    /// stream's first bytes, a cache line of their own once a chunk outgrows one.
    first_t: i64,
}

impl fmt::Debug for XorEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XorEncoder")
            .field("num_samples", &self.num_samples)
            .field("bytes", &self.writer.bytes().len())
            .field("last", &self.last())
            .finish_non_exhaustive()
    }
}

/// Encodes sorted samples into consecutive chunks of at most `max` samples each (and never
/// more than a chunk holds).
pub fn encode_chunks(samples: impl IntoIterator<Item = (i64, f64)>, max: u16) -> Vec<XorEncoder> {
    let mut out = Vec::new();
    let mut enc = XorEncoder::new();
    for (t, v) in samples {
        if enc.num_samples() >= max || enc.is_full() {
            out.push(std::mem::take(&mut enc));
        }
        enc.append(t, v);
    }
    if enc.num_samples() > 0 {
        out.push(enc);
    }
    out
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
            state: State::EMPTY,
            open_run: None,
            first_t: 0,
        }
    }

    /// Continues a stream that an encoder produced: decodes `data` as `num_samples` samples and
    /// restores the state that appending needs (used when reloading a half-full head chunk).
    ///
    /// # Errors
    ///
    /// [`ChunkError::CorruptStream`] if the stream is malformed, ends early, has a run going on
    /// past its last sample, or holds anything after that sample other than the zero padding of
    /// its last byte.
    pub fn resume(data: Vec<u8>, num_samples: u16) -> Result<XorEncoder, ChunkError> {
        let end = scan(&data, num_samples)?;
        // `scan` bounds the stream by its samples, so these conversions cannot fail.
        let corrupt = || ChunkError::CorruptStream {
            bit_offset: end.bit_len,
            expected: "a stream of at most 2^32 bits",
        };
        let bit_len = u32::try_from(end.bit_len).map_err(|_| corrupt())?;
        let open_run = match end.open_run {
            None => None,
            Some(run) => Some(OpenRun {
                start_bit: u32::try_from(run.start_bit).map_err(|_| corrupt())?,
                len: u16::try_from(run.len)
                    .ok()
                    .and_then(NonZeroU16::new)
                    .ok_or_else(corrupt)?,
            }),
        };
        let first_t = leading_varint(&data).map_or(0, unzigzag);
        Ok(XorEncoder {
            writer: BitWriter::resume(data, bit_len),
            num_samples,
            state: end.state,
            open_run,
            first_t,
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
        assert!(!self.is_full(), "chunk is full: cut a new chunk first");
        debug_assert!(
            self.num_samples == 0 || t > self.state.t,
            "timestamps must increase: {t} after {}",
            self.state.t
        );
        let bits = v.to_bits();
        match self.num_samples {
            0 => self.append_first(t, bits),
            1 => {
                let delta = t.wrapping_sub(self.state.t) as u64;
                let interval = round_interval(delta);
                self.write_interval(interval);
                self.state.interval = interval;
                self.state.late = 0;
                self.append_record(t, bits);
            }
            _ => self.append_record(t, bits),
        }
        debug_assert_eq!((self.state.t, self.state.v), (t, bits));
        self.num_samples += 1;
    }

    fn append_first(&mut self, t: i64, bits: u64) {
        self.writer.write_varint(zigzag(t));
        self.state.t = t;
        self.first_t = t;
        match find_decimal(bits, 0, u32::MAX) {
            Some((exp, shift, m)) => {
                self.writer.write_bits(1, 1);
                self.write_decimal_header(exp, shift);
                self.write_wide(zigzag(m));
                self.state.v = self.state.values.start_decimal(exp, shift, m);
            }
            None => {
                self.writer.write_bits(0, 1);
                self.writer.write_bits(bits, 64);
                self.state.v = bits;
            }
        }
    }

    fn append_record(&mut self, t: i64, bits: u64) {
        let time = self.time_code(t);
        let on_grid = time == TimeCode::Residual(0);
        let same = bits == self.state.v;
        if let Some(run) = self.open_run {
            if on_grid && same {
                self.rewrite_run(run.start_bit, run.len.saturating_add(1));
                return;
            }
            self.open_run = None;
            self.append_after_run(time, bits);
            return;
        }
        match self.state.context {
            Context::Run if on_grid && same => {
                // The stream's length fits: see `OpenRun`.
                self.rewrite_run(self.writer.bit_len() as u32, NonZeroU16::MIN);
            }
            Context::Run => {
                self.write_run(0);
                self.append_after_run(time, bits);
            }
            Context::Break => self.append_after_run(time, bits),
            Context::Change => {
                let value = self.value_code(bits);
                match (time, value.is_short()) {
                    (TimeCode::Residual(0), true) => {
                        self.writer.write_bits(0, 1);
                        self.write_short(value);
                    }
                    (TimeCode::Residual(r @ 1..=LATE_MAX), true) => {
                        self.writer
                            .write_bits((0b10 << LATE_BITS) | (r - 1) as u64, 2 + LATE_BITS);
                        self.write_short(value);
                    }
                    _ => {
                        self.writer.write_bits(0b11, 2);
                        self.write_time(time);
                        self.write_value(value);
                    }
                }
                self.apply(time, value);
            }
        }
    }

    /// Codes a sample in context B.
    fn append_after_run(&mut self, time: TimeCode, bits: u64) {
        if bits == self.state.v
            && let TimeCode::Residual(r @ 1..BREAK_LATE_END) = time
        {
            self.writer.write_bits(r as u64, LATE_BITS);
            self.apply(time, ValueCode::Same);
            return;
        }
        let value = self.value_code(bits);
        self.writer.write_bits(0, LATE_BITS);
        if time == TimeCode::Residual(0) && value.is_short() {
            self.writer.write_bits(0, 1);
            self.write_short(value);
        } else {
            self.writer.write_bits(1, 1);
            self.write_time(time);
            self.write_value(value);
        }
        self.apply(time, value);
    }

    /// Makes the run starting at `start_bit` `len` samples long, replacing its code.
    fn rewrite_run(&mut self, start_bit: u32, len: NonZeroU16) {
        self.writer.truncate(start_bit);
        self.write_run(u32::from(len.get()));
        self.open_run = Some(OpenRun { start_bit, len });
        self.state.context = Context::Break;
        let t = self.state.predicted_t();
        self.state.t = t;
        self.state.late = 0;
        self.state.escaped = false;
    }

    fn time_code(&self, t: i64) -> TimeCode {
        let r = t.wrapping_sub(self.state.predicted_t());
        if fits_signed(r, MEDIUM_BITS) {
            return TimeCode::Residual(r);
        }
        let delta = t.wrapping_sub(self.state.t) as u64;
        // Two escapes in a row mean the interval changed; one is a missed scrape or a restart.
        let adjust = self
            .state
            .escaped
            .then(|| round_interval(delta).wrapping_sub(delta) as i64);
        TimeCode::Escape { delta, adjust }
    }

    fn value_code(&self, bits: u64) -> ValueCode {
        let prev = self.state.v;
        if bits == prev {
            return ValueCode::Same;
        }
        let values = &self.state.values;
        if values.decimal {
            if let Some(m) = to_decimal(bits, values.exp(), values.shift()) {
                let change = m.wrapping_sub(values.m);
                let residual = change.wrapping_sub(values.predicted());
                return ValueCode::Rice(zigzag(residual));
            }
            if let Some(code) = self.decimal_switch(bits, values.exp(), values.shift()) {
                return code;
            }
        } else {
            // Back to the last decimal parameters after a value that did not fit them (a stale
            // marker, say), or now and then to any that fit this value and the last one.
            if values.decimal_seen && to_decimal(bits, values.exp(), values.shift()).is_some() {
                return self.decimal_switch_to(bits, values.exp(), values.shift());
            }
            if self.num_samples.is_multiple_of(DECIMAL_RETRY_SAMPLES)
                && let Some((exp, shift, _)) = find_decimal(bits, 0, u32::MAX)
                && to_decimal(prev, exp, shift).is_some()
            {
                return self.decimal_switch_to(bits, exp, shift);
            }
        }
        let xor = bits ^ prev;
        let leading = xor.leading_zeros();
        let trailing = xor.trailing_zeros();
        let sig = 64 - leading - trailing;
        let current = values.window;
        let fits = leading >= current.leading() && trailing >= current.trailing();
        if !values.decimal && fits && current.sig() <= sig + WINDOW_SWITCH_SAVING_BITS {
            ValueCode::InWindow(xor >> current.trailing())
        } else {
            ValueCode::NewWindow(Window::new(leading, sig), xor >> trailing)
        }
    }

    /// The switch to decimal mode for `bits` with an exponent of at least `exp_min`, if any.
    fn decimal_switch(&self, bits: u64, exp_min: u32, shift_max: u32) -> Option<ValueCode> {
        let (exp, shift, _) = find_decimal(bits, exp_min, shift_max)?;
        Some(self.decimal_switch_to(bits, exp, shift))
    }

    /// The switch to decimal mode with `exp` and `shift`, which `bits` must fit.
    fn decimal_switch_to(&self, bits: u64, exp: u32, shift: u32) -> ValueCode {
        let m = to_decimal(bits, exp, shift).expect("the value fits the decimal parameters");
        let prev = scaled(self.state.v, exp, shift);
        ValueCode::Decimal {
            exp,
            shift,
            z: zigzag(m.wrapping_sub(prev)),
        }
    }

    fn write_time(&mut self, time: TimeCode) {
        let w = &mut self.writer;
        match time {
            TimeCode::Residual(0) => w.write_bits(0, 1),
            TimeCode::Residual(r) if fits_signed(r, SMALL_BITS) => w.write_bits(
                (0b10 << SMALL_BITS) | low_bits(r as u64, SMALL_BITS),
                2 + SMALL_BITS,
            ),
            TimeCode::Residual(r) => w.write_bits(
                (0b110 << MEDIUM_BITS) | low_bits(r as u64, MEDIUM_BITS),
                3 + MEDIUM_BITS,
            ),
            TimeCode::Escape { delta, adjust } => {
                w.write_bits(0b111, 3);
                w.write_varint(delta);
                match adjust {
                    Some(a) if fits_signed(a, ADJUST_BITS) => w.write_bits(
                        (1 << ADJUST_BITS) | low_bits(a as u64, ADJUST_BITS),
                        1 + ADJUST_BITS,
                    ),
                    _ => w.write_bits(0, 1),
                }
            }
        }
    }

    fn write_value(&mut self, value: ValueCode) {
        match value {
            ValueCode::Same => self.writer.write_bits(0, 1),
            ValueCode::Rice(_) | ValueCode::InWindow(_) => {
                self.writer.write_bits(0b10, 2);
                self.write_short(value);
            }
            ValueCode::NewWindow(window, payload) => {
                let header = (0b110 << WINDOW_HEADER_BITS)
                    | (u64::from(window.leading) << 6)
                    | u64::from(window.sig - 1);
                self.writer.write_bits(header, 3 + WINDOW_HEADER_BITS);
                self.writer.write_bits(payload, window.sig());
            }
            ValueCode::Decimal { exp, shift, z } => {
                self.writer.write_bits(0b111, 3);
                self.write_decimal_header(exp, shift);
                self.write_wide(z);
            }
        }
    }

    fn write_short(&mut self, value: ValueCode) {
        match value {
            ValueCode::Rice(z) => {
                let k = self.state.values.rice_k();
                let q = z >> k;
                if q < u64::from(RICE_ESCAPE_ONES) {
                    let q = q as u32;
                    // q ones, a zero, then the k low bits.
                    self.writer.write_bits((1 << (q + 1)) - 2, q + 1);
                    self.writer.write_bits(low_bits(z, k), k);
                } else {
                    self.writer
                        .write_bits((1 << RICE_ESCAPE_ONES) - 1, RICE_ESCAPE_ONES);
                    self.write_wide(z);
                }
            }
            ValueCode::InWindow(payload) => self
                .writer
                .write_bits(payload, self.state.values.window.sig()),
            _ => unreachable!("only short codes are written here"),
        }
    }

    fn write_decimal_header(&mut self, exp: u32, shift: u32) {
        if exp == 0 && shift == 0 {
            self.writer.write_bits(0, 1);
        } else {
            let header = (1 << (EXPONENT_BITS + SHIFT_BITS))
                | (u64::from(exp) << SHIFT_BITS)
                | u64::from(shift);
            self.writer.write_bits(header, DECIMAL_HEADER_BITS);
        }
    }

    /// Writes the interval as a power of ten (the largest up to 1,000 that divides it) and
    /// a varint of the rest: 15,000 ms takes 10 bits.
    fn write_interval(&mut self, interval: u64) {
        let mut exp = 0;
        let mut mantissa = interval;
        while exp < (1 << INTERVAL_EXPONENT_BITS) - 1
            && mantissa != 0
            && mantissa.is_multiple_of(10)
        {
            mantissa /= 10;
            exp += 1;
        }
        self.writer.write_bits(exp, INTERVAL_EXPONENT_BITS);
        self.writer.write_varint(mantissa);
    }

    /// Writes `x` as a 6-bit width - 1 and that many bits.
    fn write_wide(&mut self, x: u64) {
        let width = bit_len(x).max(1);
        self.writer.write_bits(u64::from(width - 1), WIDTH_BITS);
        self.writer.write_bits(x, width);
    }

    /// Moves the state past a sample, as the decoder does.
    fn apply(&mut self, time: TimeCode, value: ValueCode) {
        let s = &mut self.state;
        let ordered = match time {
            TimeCode::Residual(r) => s.step_time(r),
            TimeCode::Escape { delta, adjust } => {
                let adjust = adjust.filter(|&a| fits_signed(a, ADJUST_BITS));
                s.step_escape(delta, adjust.map(|a| delta.wrapping_add(a as u64)))
            }
        };
        debug_assert_eq!(ordered, Ok(()));
        let values = &mut s.values;
        let prev = s.v;
        s.v = match value {
            ValueCode::Same => prev,
            ValueCode::Rice(z) => {
                let k = values.rice_k();
                values.step_decimal(z, z >> k >= u64::from(RICE_ESCAPE_ONES))
            }
            ValueCode::InWindow(payload) => prev ^ (payload << values.window.trailing()),
            ValueCode::NewWindow(window, payload) => {
                values.decimal = false;
                values.window = window;
                prev ^ (payload << window.trailing())
            }
            ValueCode::Decimal { exp, shift, z } => values.enter_decimal(prev, exp, shift, z),
        };
        s.context = if matches!(value, ValueCode::Same) {
            Context::Run
        } else {
            Context::Change
        };
    }

    fn write_run(&mut self, n: u32) {
        // Exp-Golomb of order k: n + 2^k in b bits, after b - k - 1 zeros.
        let x = u64::from(n) + (1 << RUN_K);
        let b = bit_len(x);
        self.writer.write_bits(0, b - RUN_K - 1);
        self.writer.write_bits(x, b);
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
        self.writer.bytes()
    }

    /// The stream, giving up the encoder.
    pub fn into_data(self) -> Vec<u8> {
        self.writer.into_bytes()
    }

    /// The last sample appended.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.num_samples > 0).then(|| (self.state.t, f64::from_bits(self.state.v)))
    }

    /// The timestamp of the first sample.
    pub fn first_t(&self) -> Option<i64> {
        if self.num_samples == 0 {
            return None;
        }
        Some(self.first_t)
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

/// The interval the encoder takes from a delta: the delta, rounded to whole seconds when it is
/// within a few milliseconds of them (a late scrape should not skew the grid).
fn round_interval(delta: u64) -> u64 {
    let seconds = delta.saturating_add(500) / 1000 * 1000;
    if seconds > 0 && seconds.abs_diff(delta) <= INTERVAL_ROUNDING_MS as u64 {
        seconds
    } else {
        delta
    }
}

/// The decimal parameters (exponent, shift) and scaled integer that give back exactly `bits`,
/// with the smallest exponent of at least `exp_min` and a shift of at most `shift_max`.
fn find_decimal(bits: u64, exp_min: u32, shift_max: u32) -> Option<(u32, u32, i64)> {
    (exp_min..=EXPONENT_MAX).find_map(|exp| {
        let m = to_decimal(bits, exp, 0)?;
        let shift = if m == 0 {
            0
        } else {
            m.trailing_zeros().min(shift_max)
        };
        let shift = if shift >= SHIFT_MIN { shift } else { 0 };
        Some((exp, shift, m >> shift))
    })
}

/// The integer `m` with `(m << shift) / 10^exp == bits` exactly, if there is one of at most 53
/// bits.
fn to_decimal(bits: u64, exp: u32, shift: u32) -> Option<i64> {
    let x = f64::from_bits(bits) * POW10[exp as usize];
    if x.is_nan() || x.abs() > DECIMAL_MAGNITUDE_MAX {
        return None;
    }
    let m = nearest(x);
    if (m as u64) & ((1 << shift) - 1) != 0 || from_decimal(m >> shift, exp, shift) != bits {
        return None;
    }
    Some(m >> shift)
}

/// The value a decimal-mode integer stands for.
#[inline(always)]
fn from_decimal(m: i64, exp: u32, shift: u32) -> u64 {
    let x = m.wrapping_shl(shift) as f64;
    if exp == 0 {
        x.to_bits()
    } else {
        (x / POW10[exp as usize]).to_bits()
    }
}

/// The integer a value scales to in decimal mode, for a value that need not be exact there:
/// the base of the first change after a mode switch.
fn scaled(bits: u64, exp: u32, shift: u32) -> i64 {
    nearest(f64::from_bits(bits) * POW10[exp as usize]) >> shift
}

/// `x` rounded half away from zero, saturating at the i64 range, 0 for NaN: what
/// `f64::round` then `as i64` give, without the library call that `round` is on the baseline
/// x86-64 target. `x - t` is exact: below 2^53 both are integers or the fraction fits, and
/// above it `x` is an integer.
fn nearest(x: f64) -> i64 {
    let t = x as i64;
    let fraction = x - t as f64;
    t.saturating_add(i64::from(fraction >= 0.5))
        .saturating_sub(i64::from(fraction <= -0.5))
}

#[cfg(test)]
mod tests;
